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
from rtppctl.proto.errors import InputError, RtppctlError, describe_error_code

if TYPE_CHECKING:
    from rtppctl.net.client import RelayClient
    from rtppctl.net.probe import ProbeResult
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
    """Probe every member at once: `count` x `V` timed, then the module's capability probe (`VF`s).

    Results come in the members' order; a dead relay costs one timeout x retries, not one each.
    """
    if count < 1:
        raise InputError(f"--count must be at least 1, got {count}")
    from rtppctl.net.probe import probe_nodes  # noqa: PLC0415 - threads only when pinging

    probed = probe_nodes([member.node for member in members], lambda client: _ping_one(client, count), connect=connect)
    return [_ping_result(member, count, result) for member, result in zip(members, probed, strict=True)]


class _PingAnswer:
    """What one relay said to ping; a plain class, as it is made at every import of ops."""

    __slots__ = ("rtts", "version", "capabilities", "error")

    def __init__(self, rtts: list[float], version: int | None, capabilities: list[str], error: str | None) -> None:
        self.rtts = rtts
        self.version = version
        self.capabilities = capabilities
        self.error = error


def _ping_one(client: RelayClient, count: int) -> _PingAnswer:
    """`count` timed `V`s, then the capabilities; a failed `V` is counted, not raised, so one lost
    request among several still leaves the relay reachable."""
    from rtppctl.net.probe import supported_capabilities  # noqa: PLC0415

    rtts: list[float] = []
    base: int | None = None
    error: str | None = None
    caps: list[str] = []
    try:
        for _ in range(count):
            try:
                exchange = client.exchange(cmd.version())
            except RtppctlError as err:
                error = err.message
                continue
            rtts.append(exchange.rtt_ms)
            base = cmd.parse_version(exchange.reply)
        if rtts:
            caps = list(supported_capabilities(client, cmd.MODULE_PROBE_ORDER))
    except RtppctlError as err:
        error = err.message
    return _PingAnswer(rtts, base, caps, error)


def _ping_result(member: Member, count: int, probed: ProbeResult[_PingAnswer]) -> PingResult:
    # No answer: opening the client failed (an unresolvable host); its error is the ping's.
    answer = probed.answer
    if answer is None:
        answer = _PingAnswer([], None, [], probed.error.message if probed.error else None)
    rtts, base = answer.rtts, answer.version
    error = answer.error
    reachable = bool(rtts) and base == int(cmd.BASE_VERSION)
    if rtts and not reachable and error is None:
        error = f"unexpected protocol version {base} (expected {cmd.BASE_VERSION})"
    return PingResult(
        node=member.node.url,
        set_id=member.set_id,
        reachable=reachable,
        sent=count,
        received=len(rtts),
        rtt_min_ms=min(rtts) if rtts else None,
        rtt_avg_ms=sum(rtts) / len(rtts) if rtts else None,
        rtt_max_ms=max(rtts) if rtts else None,
        version=base,
        capabilities=answer.capabilities,
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
    from rtppctl.net.probe import module_probe  # noqa: PLC0415

    return frozenset(module_probe(client).capabilities)


#: Names defined in rtppctl.ops.offer_answer, loaded when first asked for (start-up time).
_OFFER_ANSWER = {
    "NoSession", "RewriteRequest", "StreamResult", "RewriteResult", "Relay", "rewrite_sdp",
    "EngageResult", "engage", "UnforceResult", "unforce", "Sourced", "ResolvedCall", "read_message",
    "resolve_call", "PreparedRewrite", "prepare_rewrite", "send_rewrite",
}


def __getattr__(name: str) -> Any:
    if name in _OFFER_ANSWER:
        from rtppctl.ops import offer_answer  # noqa: PLC0415

        return getattr(offer_answer, name)
    raise AttributeError(f"module 'rtppctl.ops' has no attribute {name!r}")
