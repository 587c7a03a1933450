"""Which relays a command talks to: `--target` specs, a configured set, or every set.

Sets come from the configuration (`rtpproxy_sock` values, merged per set id as the module does).
A `--target` bypasses the sets entirely and needs no config file. Until weighted selection and
relay health land, a one-relay command uses the first node of its set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from rtppctl.proto.errors import ConfigError, InputError
from rtppctl.proto.url import NodeSpec, parse_node

if TYPE_CHECKING:
    from rtppctl.config import Config


class Member(NamedTuple):
    """A node and the set it was taken from (None for a --target)."""

    set_id: int | None
    node: NodeSpec


def resolve_nodes(
    config: Config,
    *,
    targets: list[str] | None = None,
    set_id: int | None = None,
    all_sets: bool = False,
) -> list[Member]:
    """The relays named by the options: targets first, else every set (`all_sets`), else one set."""
    if targets:
        return [Member(None, parse_node(spec)) for spec in targets]
    sets = config.sets()
    if all_sets:
        members = [Member(sid, node) for sid in sorted(sets) for node in sets[sid]]
        if not members:
            raise _no_relays(config)
        return members
    wanted = config.default_set if set_id is None else set_id
    if wanted not in sets or not sets[wanted]:
        known = ", ".join(str(s) for s in sorted(sets)) or "none"
        raise ConfigError(
            f"no relay set {wanted} is configured (sets: {known})",
            "use --target udp:HOST:PORT, pick a set with --set, or add rtpproxy_sock to the config "
            "(rtppctl config init)",
        )
    return [Member(wanted, node) for node in sets[wanted]]


def pick_node(config: Config, *, targets: list[str] | None = None, set_id: int | None = None) -> Member:
    """The relay a one-relay command uses: the single --target, or the first node of the set."""
    if targets and len(targets) > 1:
        raise InputError(f"this command talks to one relay, but {len(targets)} --target options were given")
    return resolve_nodes(config, targets=targets, set_id=set_id)[0]


def _no_relays(config: Config) -> ConfigError:
    where = f" in {config.path}" if config.path else ""
    return ConfigError(f"no relays are configured{where}", "add rtpproxy_sock to the config, or use --target")
