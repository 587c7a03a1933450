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
    """A result dataclass as the JSON object `--json` prints."""
    from dataclasses import asdict  # noqa: PLC0415

    return asdict(result)


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
        from rtppctl.ops import offer_answer  # noqa: PLC0415

        return getattr(offer_answer, name)
    if name in _RELAY:
        from rtppctl.ops import relay  # noqa: PLC0415

        return getattr(relay, name)
    raise AttributeError(f"module 'rtppctl.ops' has no attribute {name!r}")
