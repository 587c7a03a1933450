"""The relay service: sets, selection, health, capabilities and channels, the only way operations
reach a relay. `health` holds the node health rules as one table; the service that applies them
to live relays and keeps them between runs comes with the relay-sets work."""
