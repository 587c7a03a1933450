"""Operations on a relay itself rather than on a call: version (V and every VF), ping, info (I
and G), raw commands. Each takes the run's `RelayService` and the nodes it is about, and returns
result dataclasses; `rtppctl.ops` re-exports every name here on first use.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rtppctl.proto import command as cmd
from rtppctl.proto.errors import InputError, RtppctlError, describe_error_code

if TYPE_CHECKING:
    from rtppctl.net.client import RelayClient
    from rtppctl.net.probe import ProbeResult
    from rtppctl.relays.service import Member, RelayService


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
    """What `V` and every `VF` said, for one relay."""

    node: str
    set_id: int | None
    #: The base protocol version (`V`); 20040107 for every RTPProxy; None when it did not answer.
    version: int | None
    capabilities: list[CapabilityStatus]
    error: str | None = None


def version(service: RelayService, members: Sequence[Member], dates: Iterable[str] | None = None) -> list[VersionResult]:
    """`V`, then `VF <date>` for every known capability (or the given dates), on every member at once."""
    wanted = [cmd.capability(d) for d in dates] if dates else list(cmd.CAPABILITIES)

    def ask(client: RelayClient) -> tuple[int, list[CapabilityStatus]]:
        base = cmd.parse_version(client.call(cmd.version()))
        answers = client.replies([cmd.version_feature(cap.date) for cap in wanted])
        return base, [
            CapabilityStatus(cap.date, cap.name, cap.meaning, cmd.parse_capability(answer), cap.module_bit)
            for cap, answer in zip(wanted, answers, strict=True)
        ]

    results = []
    for member, probed in zip(members, service.each(members, ask), strict=True):
        if probed.answer is None:
            results.append(VersionResult(member.node.url, member.set_id, None, [], _failure(probed)))
        else:
            results.append(VersionResult(member.node.url, member.set_id, probed.answer[0], probed.answer[1]))
    return results


def _failure(probed: ProbeResult[Any]) -> str:
    return probed.error.message if probed.error is not None else "no answer"


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
    #: True for a node that is off (`enable 0`): the health table never has it probed, so nothing
    #: was sent to it (sent 0, not reachable).
    off: bool = False


def ping(service: RelayService, members: Sequence[Member], count: int = 1) -> list[PingResult]:
    """Probe every member the health table lets an operator probe, at once: `count` x `V` timed,
    then the module's probe (§2.1). A node that is off is not asked: its result says so.

    Results come in the members' order; a dead relay costs one timeout x retries, not one each.
    Each outcome is a probe for the node's health: a relay that answers comes back, one that does
    not is disabled (see `RelayService.observe_probe`).
    """
    if count < 1:
        raise InputError(f"--count must be at least 1, got {count}")
    allowed = [service.may_probe(member) for member in members]
    answers = iter(service.each([m for m, ok in zip(members, allowed) if ok], lambda client: _ping_one(client, count)))
    results = []
    for member, ok in zip(members, allowed, strict=True):
        if not ok:
            results.append(PingResult(member.node.url, member.set_id, False, 0, 0, off=True,
                                      error="off (enable 0): not probed; rtppctl enable URL 1 (or 2) brings it back"))
            continue
        result = next(answers)
        ping_result = _ping_result(member, count, result)
        found = result.answer.found if result.answer is not None else None
        service.observe_probe(member, found, None if found is not None else ping_result.error or "no answer")
        results.append(ping_result)
    return results


class _PingAnswer:
    """What one relay said to ping; a plain class, as it is made at every import of ops."""

    __slots__ = ("rtts", "version", "capabilities", "error", "found")

    def __init__(self, rtts: list[float], version: int | None, capabilities: list[str], error: str | None,
                 found: Any = None) -> None:
        self.rtts = rtts
        self.version = version
        self.capabilities = capabilities
        self.error = error
        #: The module probe's result (RelayCapabilities) when it passed.
        self.found = found


def _ping_one(client: RelayClient, count: int) -> _PingAnswer:
    """`count` timed `V`s, then the module's probe; a failed `V` is counted, not raised, so one
    lost request among several still leaves the relay reachable."""
    from rtppctl.net.probe import module_probe  # noqa: PLC0415

    rtts: list[float] = []
    base: int | None = None
    error: str | None = None
    found = None
    try:
        for _ in range(count):
            try:
                exchange = client.exchange(cmd.version())
            except RtppctlError as err:
                error = err.message
                continue
            rtts.append(exchange.rtt_ms)
            base = cmd.parse_version(exchange.reply)
        if rtts and base == int(cmd.BASE_VERSION):
            found = module_probe(client)
    except RtppctlError as err:
        error = err.message
    return _PingAnswer(rtts, base, list(found.capabilities) if found else [], error, found)


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
    """One relay's `I` summary and its global `G` counters."""

    node: str
    set_id: int | None
    info: dict[str, int | float]
    stats: dict[str, int | float]
    error: str | None = None


def info(service: RelayService, members: Sequence[Member], with_load: bool = True) -> list[InfoResult]:
    """`I` and the global statistics of every member at once."""

    def ask(client: RelayClient) -> tuple[dict[str, int | float], dict[str, int | float]]:
        summary = cmd.parse_info(client.call(cmd.info(load=with_load)))
        stats: dict[str, int | float] = {}
        names = list(cmd.GLOBAL_STATS)
        # The engine refuses commands with too many arguments (E5), so ask in batches.
        for start in range(0, len(names), cmd.MAX_STATS_PER_QUERY):
            batch = names[start : start + cmd.MAX_STATS_PER_QUERY]
            stats.update(cmd.parse_stats(client.call(cmd.get_stats(batch, verbose=True)), batch))
        return summary, stats

    results = []
    for member, probed in zip(members, service.each(members, ask), strict=True):
        if probed.answer is None:
            results.append(InfoResult(member.node.url, member.set_id, {}, {}, _failure(probed)))
        else:
            results.append(InfoResult(member.node.url, member.set_id, *probed.answer))
    return results


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


def raw_records(replies: Sequence[RawReply]) -> list[dict[str, Any]]:
    """The replies as `--json` shows them: `as_dict`'s records without its deep copy, which cost
    more than the I/O of a pipelined batch. A RawReply (frozen, no slots) keeps exactly its fields
    in its __dict__, in order, and each is a string, a number or None: a copy is the record."""
    return [vars(reply).copy() for reply in replies]


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


def raw(service: RelayService, member: Member, commands: list[str], window: int = 1) -> list[RawReply]:
    """Send each command to `member` and return the replies in the commands' order.

    With `window` 1, in order and one outstanding at a time. With more, through the pipelined
    engine (`raw_pipelined`): up to `window` commands in flight, so a command may reach the relay
    before the one above it has been answered.
    """
    if window > 1:
        return raw_pipelined(service, member, commands, window).replies
    return service.attempt(member, lambda client: _raw(client, commands))


def _raw(client: RelayClient, commands: list[str]) -> list[RawReply]:
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


@dataclass(frozen=True)
class RawRun:
    """A pipelined raw batch: the replies in the commands' order, and what it took on the wire."""

    replies: list[RawReply]
    #: Commands re-sent (datagram relays, same cookie) and replies that matched nothing, dropped.
    retransmits: int = 0
    replies_dropped: int = 0


def raw_pipelined(service: RelayService, member: Member, commands: list[str], window: int) -> RawRun:
    """`raw` with up to `window` commands in flight (`RelayService.pipeline`), replies in the
    commands' order, each with its own round trip. The first command without a usable reply ends
    the batch as `raw` does (the node is reported failed; commands still in flight are abandoned).
    """
    return service.guarded(member, lambda: _raw_pipelined(service, member, commands, window))


def _raw_pipelined(service: RelayService, member: Member, commands: list[str], window: int) -> RawRun:
    from rtppctl.net.pipeline import Request  # noqa: PLC0415

    node = member.node
    replies: list[RawReply | None] = [None] * len(commands)
    described: dict[int, Any] = {}
    pipeline = service.pipeline(window)
    try:
        requests = (Request(node, command, tag=index) for index, command in enumerate(commands))
        for outcome in pipeline.run(requests):
            if outcome.error is not None:
                raise outcome.error
            reply = outcome.reply
            request = outcome.request
            # Only a reply holding an E can be E<n>: the others skip the parse.
            code = cmd.error_code(reply) if "E" in reply else None
            if code is None:
                replies[request.tag] = RawReply(request.command, reply, outcome.rtt_ms)
                continue
            if code not in described:
                described[code] = describe_error_code(code)
            error = described[code]
            replies[outcome.request.tag] = RawReply(outcome.request.command, reply, outcome.rtt_ms, code,
                                                    error.name if error else None, error.meaning if error else None)
    finally:
        pipeline.close()
    stats = pipeline.stats
    return RawRun(replies, stats.retransmits, stats.replies_dropped)  # type: ignore[arg-type] - all filled
