"""The operations behind the commands, as plain functions over relay clients.

Each takes what it needs (a client, or a way to open one), speaks through the protocol core and
returns a result dataclass; none of them prints. The command line renders the results, and scripts
or tests can call these directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from rtppctl.proto import command as cmd
from rtppctl.proto.errors import InputError, MalformedReply, RtppctlError, describe_error_code

if TYPE_CHECKING:
    from rtppctl.net.client import RelayClient
    from rtppctl.nodes import Member
    from rtppctl.proto.url import NodeSpec

Connect = Callable[["NodeSpec"], "RelayClient"]


def as_dict(result: Any) -> dict[str, Any]:
    return asdict(result)


# -- version ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CapabilityStatus:
    """A capability date and whether the relay answered `VF <date>` with 1."""

    date: str
    name: str
    meaning: str
    supported: bool
    #: The OpenSIPS module's name for it, when the module asks for it.
    module_bit: str | None = None


@dataclass(frozen=True)
class VersionResult:
    """What `V` and every `VF` said."""

    node: str
    #: The base protocol version (`V`); 20040107 for every RTPProxy.
    version: int
    capabilities: list[CapabilityStatus]


def version(client: RelayClient, dates: Iterable[str] | None = None) -> VersionResult:
    """`V`, then `VF <date>` for every known capability (or the given dates)."""
    base = cmd.parse_version(client.call(cmd.version()))
    wanted = [cmd.capability(d) for d in dates] if dates else list(cmd.CAPABILITIES)
    answers = client.replies([cmd.version_feature(cap.date) for cap in wanted])
    statuses = [
        CapabilityStatus(cap.date, cap.name, cap.meaning, cmd.parse_capability(answer), cap.module_bit)
        for cap, answer in zip(wanted, answers, strict=True)
    ]
    return VersionResult(client.node.url, base, statuses)


# -- ping ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PingResult:
    """One relay's answer to `count` version requests and the module's capability probe."""

    node: str
    set_id: int | None
    reachable: bool
    sent: int
    received: int
    rtt_min_ms: float | None = None
    rtt_avg_ms: float | None = None
    rtt_max_ms: float | None = None
    version: int | None = None
    #: Names of the capabilities the module probes for that the relay has.
    capabilities: list[str] = field(default_factory=list)
    error: str | None = None


def ping(connect: Connect, members: list[Member], count: int = 1) -> list[PingResult]:
    """Probe every member: `count` x `V` timed, then the module's capability probe (`VF`s)."""
    if count < 1:
        raise InputError(f"--count must be at least 1, got {count}")
    return [_ping_one(connect, member, count) for member in members]


def _ping_one(connect: Connect, member: Member, count: int) -> PingResult:
    url = member.node.url
    rtts: list[float] = []
    base: int | None = None
    error: str | None = None
    caps: list[str] = []
    try:
        with connect(member.node) as client:
            for _ in range(count):
                try:
                    exchange = client.exchange(cmd.version())
                except RtppctlError as err:
                    error = err.message
                    continue
                rtts.append(exchange.rtt_ms)
                base = cmd.parse_version(exchange.reply)
            if rtts:
                answers = client.replies([cmd.version_feature(date) for date in cmd.MODULE_PROBE_ORDER])
                caps = [
                    cmd.capability(date).name
                    for date, answer in zip(cmd.MODULE_PROBE_ORDER, answers, strict=True)
                    if cmd.parse_capability(answer)
                ]
    except RtppctlError as err:
        error = err.message
    reachable = bool(rtts) and base == int(cmd.BASE_VERSION)
    if rtts and not reachable and error is None:
        error = f"unexpected protocol version {base} (expected {cmd.BASE_VERSION})"
    return PingResult(
        node=url,
        set_id=member.set_id,
        reachable=reachable,
        sent=count,
        received=len(rtts),
        rtt_min_ms=min(rtts) if rtts else None,
        rtt_avg_ms=sum(rtts) / len(rtts) if rtts else None,
        rtt_max_ms=max(rtts) if rtts else None,
        version=base,
        capabilities=caps,
        error=error if not reachable or len(rtts) < count else None,
    )


# -- info ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InfoResult:
    """The relay's `I` summary and its global `G` counters."""

    node: str
    info: dict[str, int | float]
    stats: dict[str, int | float]


def info(client: RelayClient, with_load: bool = True) -> InfoResult:
    summary = cmd.parse_info(client.call(cmd.info(load=with_load)))
    stats: dict[str, int | float] = {}
    names = list(cmd.GLOBAL_STATS)
    # The engine refuses commands with too many arguments (E5), so ask in batches.
    for start in range(0, len(names), cmd.MAX_STATS_PER_QUERY):
        batch = names[start : start + cmd.MAX_STATS_PER_QUERY]
        stats.update(cmd.parse_stats(client.call(cmd.get_stats(batch, verbose=True)), batch))
    return InfoResult(client.node.url, summary, stats)


# -- raw ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawReply:
    """One raw command and its reply, with the decoded error when the reply is `E<n>`."""

    command: str
    reply: str
    rtt_ms: float
    error_code: int | None = None
    error_name: str | None = None
    error_meaning: str | None = None


def parse_raw_batch(text: str, source: str) -> list[str]:
    """Commands of a batch, one per line; blank lines and `#` comments skipped.

    Each command is checked as a whole line: control characters would let one line carry a
    second command on a stream transport.
    """
    commands = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        cmd.validate_raw_command(stripped, f"{source}, line {number}")
        commands.append(stripped)
    return commands


def raw(client: RelayClient, commands: list[str]) -> list[RawReply]:
    """Send each command in order, one outstanding at a time; replies as they came."""
    replies = []
    for command in commands:
        exchange = client.exchange(command)
        code = exchange.error_code
        described = describe_error_code(code) if code is not None else None
        replies.append(
            RawReply(
                command,
                exchange.reply,
                exchange.rtt_ms,
                code,
                described.name if described else None,
                described.meaning if described else None,
            )
        )
    return replies


# -- capabilities -------------------------------------------------------------------------------


def probe_capabilities(client: RelayClient) -> frozenset[str]:
    """The module's probe (§2.1): V must be 20040107 and VF 20050322 must be 1, then one VF per
    optional capability; returns the module bit names the relay has."""
    base = cmd.parse_version(client.call(cmd.version()))
    if base != int(cmd.BASE_VERSION):
        raise MalformedReply(f"{client.node.url} answered V with {base}, not {cmd.BASE_VERSION}: not an RTPProxy")
    dates = [cmd.EXTENDED_VERSION, *cmd.MODULE_PROBE_ORDER]
    answers = client.replies([cmd.version_feature(date) for date in dates])
    if not cmd.parse_capability(answers[0]):
        raise MalformedReply(f"{client.node.url} does not support the extended protocol (VF {cmd.EXTENDED_VERSION})")
    return frozenset(
        cmd.capability(date).name for date, answer in zip(dates[1:], answers[1:], strict=True) if cmd.parse_capability(answer)
    )


#: Names defined in rtppctl.ops.offer_answer, loaded when first asked for (start-up time).
_OFFER_ANSWER = {
    "NoSession", "RewriteRequest", "StreamResult", "RewriteResult", "Relay", "rewrite_sdp",
    "EngageResult", "engage", "UnforceResult", "unforce",
}


def __getattr__(name: str) -> Any:
    if name in _OFFER_ANSWER:
        from rtppctl.ops import offer_answer  # noqa: PLC0415

        return getattr(offer_answer, name)
    raise AttributeError(f"module 'rtppctl.ops' has no attribute {name!r}")
