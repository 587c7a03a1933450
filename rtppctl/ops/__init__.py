"""The operations behind the commands, as plain functions over the relay service.

Each takes the run's `RelayService` (the only way to a relay) and the nodes or call it is about,
speaks through the protocol core and returns a result dataclass; none of them prints. The command
line renders the results, and scripts or tests can call these directly.

The package loads nothing itself: `rtppctl.ops.version` or `rtppctl.ops.Call` load the module that
defines them (`relay`, `offer_answer`) on first use, so a command pays only for its own.
"""

from __future__ import annotations

from typing import Any


def as_dict(result: Any) -> dict[str, Any]:
    """A result dataclass as the JSON object `--json` prints: what `dataclasses.asdict` gives (nested
    dataclasses as dicts, lists, tuples and dicts rebuilt), without its deep copy of every leaf.
    The leaves of a result are numbers, text and None, which a copy would only make slower (a
    batch or a 20,000-line `raw` prints one object per line)."""
    return _plain(result)


#: Field names per dataclass type, read once.
_FIELDS: dict[type, tuple[str, ...]] = {}


#: The leaves of a result, returned as they are.
_LEAVES = frozenset({str, int, float, bool, type(None)})


def _plain(value: Any) -> Any:
    kind = type(value)
    if kind in _LEAVES:
        return value
    names = _FIELDS.get(kind)
    if names is None and hasattr(kind, "__dataclass_fields__"):
        from dataclasses import fields  # noqa: PLC0415

        names = _FIELDS[kind] = tuple(field.name for field in fields(value))
    if names is not None:
        return {name: _plain(getattr(value, name)) for name in names}
    if kind is list:
        return [_plain(item) for item in value]
    if kind is dict:
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, tuple):
        items = [_plain(item) for item in value]
        return kind(*items) if hasattr(value, "_fields") else kind(items)
    return value


#: Names defined in rtppctl.ops.offer_answer, loaded when first asked for (start-up time).
_OFFER_ANSWER = {
    "NoSession", "RewriteRequest", "StreamResult", "RewriteResult", "Route", "rewrite_sdp",
    "EngageResult", "engage", "UnforceResult", "unforce", "Sourced", "ResolvedCall", "read_message",
    "resolve_call", "PreparedRewrite", "prepare_rewrite", "send_rewrite", "Call", "find_call", "call_node",
}


#: Names defined in rtppctl.ops.relay, loaded when first asked for.
_RELAY = {
    "CapabilityStatus", "VersionResult", "version", "PingResult", "ping", "InfoResult", "info", "RawReply",
    "parse_raw_batch", "raw",
}


def __getattr__(name: str) -> Any:
    if name in _OFFER_ANSWER:
        from rtppctl.ops import offer_answer as home  # noqa: PLC0415
    elif name in _RELAY:
        from rtppctl.ops import relay as home  # noqa: PLC0415
    else:
        raise AttributeError(f"module 'rtppctl.ops' has no attribute {name!r}")
    value = globals()[name] = getattr(home, name)  # found here from now on, without this call
    return value
