"""The relay service: sets, selection, health, capabilities and channels, the only way operations
reach a relay (`service`); the node health rules as one table (`health`); the state between runs
(`store`) and where it is kept (`location`)."""
