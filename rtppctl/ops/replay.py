"""replay: the calls of a captured trace through the relay service, message by message.

This module owns the run: records of a trace in (`proto.capture` records from `captures.py` or
`proto.text_trace`), `proto.replay.Follower` saying which message is which operation, each step
made with the same ops as the one-shot commands (`rewrite_sdp` for offers and answers, `unforce`),
and one `CallReport` per call: what the proxy would have sent (the rewritten SDP), the relay's
replies, and findings in words. Every session replay created and did not see deleted is deleted
when the trace ends, or when the run is interrupted, and the report says so.

A call's report is handed out once the call is over: ended in the trace and quiet for
`SETTLE_SECONDS` of capture time (retransmissions and forwarded copies come within that), or at
the end of the trace. Only open calls are held, so memory follows the calls in progress, not the
size of the trace.
"""

from __future__ import annotations

import contextlib
import difflib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rtppctl.proto.capture import CaptureStats, SipPacket
from rtppctl.proto.errors import ExitCode, ProxyError, RtppctlError, TransportError
from rtppctl.proto.text import clip

if TYPE_CHECKING:
    from rtppctl.ops.offer_answer import Route
    from rtppctl.ops.replay_media import MediaPlayer
    from rtppctl.proto.replay import CallTrace, Follower, Step

#: Capture seconds after a call's last message before its report is final (SIP's Timer H: a
#: retransmission or a forwarded copy comes within it).
SETTLE_SECONDS = 32.0
#: Longest single wait of --speed pacing before the run looks at its signals again.
_PACE_SLICE = 0.2


@dataclass(frozen=True)
class ReplayOptions:
    """What `rtppctl replay` was told."""

    flags: str = ""
    ip: str | None = None
    #: Scale of the capture's timing (1: real time); None: as fast as possible, in order.
    speed: float | None = None
    diff: bool = False
    #: Only these Call-IDs (None: every call).
    call_ids: frozenset[str] | None = None
    #: Calls whose first message is in [since, until]: (seconds, relative to the capture's start?).
    since: tuple[float, bool] | None = None
    until: tuple[float, bool] | None = None
    proxy_ip: str | None = None
    #: Also send each call's captured RTP through the relay and measure what it forwards.
    media: bool = False


@dataclass
class StepReport:
    """One operation of a call and what came of it."""

    step: int
    frame: int
    time: float
    #: The message's start line (request line or status line).
    message: str
    why: str
    #: "offer", "answer" or "unforce".
    op: str
    ok: bool = False
    node: str | None = None
    #: "U", "L" or "D".
    letter: str | None = None
    commands: list[dict[str, str]] = field(default_factory=list)
    #: The rewritten SDP (offers and answers).
    sdp: str | None = None
    #: With --diff: a unified diff of the captured SDP (`diff_against`) and `sdp`.
    diff: str | None = None
    #: "forwarded copy" (the proxy's own output, in the trace) or "captured" (the message's SDP).
    diff_against: str | None = None
    warnings: list[str] = field(default_factory=list)
    #: {"message", "exit_code"} when the operation failed.
    error: dict[str, Any] | None = None


@dataclass
class CallReport:
    """One call: what the trace holds, what replay did, what it found."""

    call_id: str
    caller: str
    callee: str
    first_time: float
    last_time: float
    messages: int
    retransmissions: int
    forwarded: int
    steps: list[StepReport]
    findings: list[str]
    #: replay deleted a session of this call that the trace never ended.
    cleaned_up: bool = False
    #: With --media: per stream and direction, what the relay forwarded of the captured RTP.
    media: list[dict[str, Any]] | None = None


@dataclass
class ReplaySummary:
    """The whole run."""

    calls: int = 0
    steps: int = 0
    failed: int = 0
    findings: int = 0
    #: Addresses found to be a proxy forwarding the trace's messages (both legs captured).
    proxies: list[str] = field(default_factory=list)
    #: Messages that are not SIP a replay can follow (no start line or Call-ID).
    unreadable: int = 0
    capture: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False
    exit_code: int = 0


@dataclass
class _Open:
    """A call in progress: its report so far and what replay holds on the relay for it."""

    report: CallReport
    #: A step created or updated a session (an offer or answer that succeeded).
    session: bool = False
    #: An unforce deleted it (the relay said it had one).
    deleted: bool = False
    #: The first offer's and answer's SDP families, for the family-change finding.
    families: dict[str, str] = field(default_factory=dict)
    #: With --diff: each rewritten step's captured SDP, by step number.
    captured: dict[int, str] = field(default_factory=dict)


class Replay:
    """One run: feed it the trace's records (`run`); reports go to `on_call` as calls end."""

    def __init__(self, route: Route, options: ReplayOptions, *, on_call: Callable[[CallReport], None],
                 signals: Callable[[], int] = lambda: 0, emit_batch: list[dict[str, Any]] | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        from rtppctl.proto.replay import Follower  # noqa: PLC0415

        self.route = route
        self.options = options
        self._on_call = on_call
        self._signals = signals
        self._batch = emit_batch
        self._clock = clock
        self._sleep = sleep
        self.follower: Follower = Follower(proxy_ip=options.proxy_ip)
        self.summary = ReplaySummary()
        self._open: dict[str, _Open] = {}
        #: Call-IDs decided on (selected or not) when first seen.
        self._selected: dict[str, bool] = {}
        self._capture_start: float | None = None
        #: (capture time, clock time) of the first replayed message, for --speed.
        self._pace_origin: tuple[float, float] | None = None
        self._transport_failure: TransportError | None = None
        #: Capture time the open calls were last looked at (`_settle`).
        self._settled_at = float("-inf")
        self.media: MediaPlayer | None = None
        if options.media:
            from rtppctl.ops.replay_media import MediaPlayer  # noqa: PLC0415

            self.media = MediaPlayer()

    # -- the run ----------------------------------------------------------------------------------

    def run(self, records: Iterable[Any], stats: CaptureStats) -> ReplaySummary:
        """Replay every SIP record of `records` (media records too with --media; else they are
        skipped); the summary."""
        try:
            for record in records:
                if self._signals():
                    self.summary.interrupted = True
                    break
                if isinstance(record, SipPacket):
                    self._record(record)
                elif self.media is not None and self._pace(record.time):
                    self.media.packet(record)
                if self.summary.interrupted:
                    break
                if self.media is not None:
                    self.media.poll(0.0)
                if self._transport_failure is not None:
                    break
        finally:
            # Whatever ended the run, every call still open is reported and its sessions deleted.
            self._close_all()
            if self.media is not None:
                self.media.close()
            self.summary.unreadable = self.follower.unreadable
            self.summary.proxies = sorted(self.follower.proxies)
            self.summary.capture = stats.as_dict()
        if self._transport_failure is not None:
            raise self._transport_failure
        if self.summary.interrupted:
            self.summary.exit_code = int(ExitCode.INTERRUPTED)
        return self.summary

    def _record(self, packet: SipPacket) -> None:
        from rtppctl.proto.replay import Step  # noqa: PLC0415

        if self._capture_start is None:
            self._capture_start = packet.time
        result = self.follower.feed(packet)
        call = self.follower.last
        if call is not None and call.call_id not in self._selected:
            self._selected[call.call_id] = selected(self.options, call.call_id, call.first_time, self._capture_start)
        if isinstance(result, Step) and self._selected.get(result.summary.call_id) and self._pace(packet.time):
            self._make(result)
        self._settle(packet.time)

    def _pace(self, capture_time: float) -> bool:
        """Wait until the record is due (--speed); False when the run was interrupted meanwhile:
        the record is then not replayed."""
        speed = self.options.speed
        if not speed:
            return True
        if self._pace_origin is None:
            self._pace_origin = (capture_time, self._clock())
            return True
        due = self._pace_origin[1] + (capture_time - self._pace_origin[0]) / speed
        while True:
            if self._signals():
                self.summary.interrupted = True
                return False
            wait = due - self._clock()
            if wait <= 0:
                return True
            if self.media is not None:
                self.media.poll(min(wait, _PACE_SLICE))  # what arrives meanwhile is measured
            else:
                self._sleep(min(wait, _PACE_SLICE))

    # -- one step -----------------------------------------------------------------------------------

    def _make(self, step: Step) -> None:
        summary = step.summary
        call = self.follower.calls[summary.call_id]
        opened = self._open.get(call.call_id)
        if opened is None:
            opened = self._open[call.call_id] = _Open(CallReport(
                call.call_id, clip(call.caller, 200), clip(call.callee, 200), call.first_time, call.last_time, 0, 0,
                0, [], []))
        report = StepReport(step.number, step.packet.frame, step.packet.time, _start_line(step.text), step.why, step.kind)
        opened.report.steps.append(report)
        self.summary.steps += 1
        self._note_sdp_findings(opened, step)
        try:
            if step.kind == "unforce":
                self._unforce(opened, step, report)
            else:
                self._rewrite(opened, step, report)
            report.ok = True
        except TransportError as err:
            report.error = {"message": err.message, "exit_code": int(err.exit_code)}
            self.summary.failed += 1
            self._transport_failure = err  # no relay to talk to: the run ends here, after cleanup
        except RtppctlError as err:
            report.error = {"message": err.message, "exit_code": int(err.exit_code)}
            self.summary.failed += 1
            if isinstance(err, ProxyError):
                opened.report.findings.append(f"step {step.number}: the relay refused the {step.kind}: {err.message}")

    def _rewrite(self, opened: _Open, step: Step, report: StepReport) -> None:
        from rtppctl import ops  # noqa: PLC0415

        options = self.options
        # The late ACK goes as an offer, as engage sends it (a second U).
        offer = step.kind == "offer"
        text, source_ip, side = step.text, None, ""
        if self.media is not None:
            from rtppctl.ops.replay_media import LOCAL_ADDRESS, MediaPlayer  # noqa: PLC0415

            # The parties are local sockets: the SDP and the address sent to the relay name them.
            side = MediaPlayer.side_of(step.summary, self.follower.calls[step.summary.call_id].caller_tag)
            text, source_ip = self.media.prepare(step.summary.call_id, side, text), LOCAL_ADDRESS
        request = ops.RewriteRequest(text=text, source=f"frame {step.packet.frame}", flags=options.flags,
                                     ip=options.ip, source_ip=source_ip)
        if self._batch is not None:
            self._batch.append({"op": "offer" if offer else "answer", "sdp": step.text,
                                **self._batch_route()})
        result = ops.rewrite_sdp(self.route, request, offer=offer)
        opened.session = True
        if self.media is not None:
            from rtppctl.proto.url import parse_node  # noqa: PLC0415

            self.media.relay_ports(step.summary.call_id, side, result, parse_node(result.node).host or "127.0.0.1")
        report.node, report.letter, report.commands = result.node, result.letter, result.commands
        report.sdp, report.warnings = result.sdp, list(result.warnings)
        if options.diff:
            # Made when the call is over: the proxy's forwarded copy comes after the message.
            opened.captured[step.number] = step.summary.body

    def _unforce(self, opened: _Open, step: Step, report: StepReport) -> None:
        from rtppctl import ops  # noqa: PLC0415

        caller, callee = step.tags
        if self.media is not None:
            self.media.poll(0.05)  # what is still on its way belongs to the call
        if self._batch is not None:
            self._batch.append({"op": "unforce", "call_id": step.summary.call_id, "from_tag": caller,
                                **({"to_tag": callee} if callee else {}), **self._batch_route()})
        call = ops.find_call(self.route, call_id=step.summary.call_id, from_tag=caller, to_tag=callee or None,
                             source=f"frame {step.packet.frame}")
        result = ops.unforce(call)
        report.node, report.letter = result.node, "D"
        report.commands = [{"command": result.command, "reply": result.reply}]
        if result.had_session:
            opened.deleted = True

    def _batch_route(self) -> dict[str, Any]:
        route, options = self.route, self.options
        keys: dict[str, Any] = {}
        if route.targets:
            keys["target"] = list(route.targets)
        elif route.set_id is not None:
            keys["set"] = route.set_id
        if options.flags:
            keys["flags"] = options.flags
        if options.ip:
            keys["ip"] = options.ip
        return keys

    @staticmethod
    def _diff(report: StepReport, captured: str, forwarded: str | None) -> None:
        """The rewritten SDP against the proxy's own output when the trace has it (a capture on
        the proxy's host), else against the captured message's SDP (a capture after a proxy)."""
        from rtppctl.proto.sip import summarize  # noqa: PLC0415

        against, label = captured, "captured"
        if forwarded is not None:
            with contextlib.suppress(RtppctlError):
                against, label = summarize(forwarded).body, "forwarded copy"
        report.diff_against = label
        report.diff = "".join(difflib.unified_diff(
            against.splitlines(keepends=True), (report.sdp or "").splitlines(keepends=True),
            fromfile=f"frame {report.frame} ({label})", tofile="replayed"))

    def _note_sdp_findings(self, opened: _Open, step: Step) -> None:
        """Findings the captured SDP itself gives: streams with port 0, an address family change."""
        if step.kind == "unforce" or not step.summary.has_sdp:
            return
        from rtppctl.proto.sdp import parse_sdp  # noqa: PLC0415

        try:
            sdp = parse_sdp(step.summary.body, source=f"frame {step.packet.frame}")
        except RtppctlError as err:
            opened.report.findings.append(f"step {step.number}: the SDP cannot be read: {err.message}")
            return
        families = set()
        for number, stream in enumerate(sdp.streams, start=1):
            if stream.port.split("/", 1)[0].lstrip("0") == "":
                opened.report.findings.append(f"step {step.number}: stream {number} ({clip(stream.media, 20)}) has "
                                              "port 0: disabled, the relay is not asked for it")
            elif stream.family:
                families.add(stream.family)
        role = "offer" if step.kind == "offer" else "answer"
        if families and role not in opened.families:
            opened.families[role] = "/".join(sorted(families))
            other = opened.families.get("answer" if role == "offer" else "offer")
            if other is not None and other != opened.families[role]:
                offer, answer = opened.families.get("offer"), opened.families.get("answer")
                opened.report.findings.append(f"step {step.number}: the address family changes: the offer is {offer}, "
                                              f"the answer {answer} (the relay bridges them)")

    # -- the end of calls -------------------------------------------------------------------------

    def _settle(self, now: float) -> None:
        """Report the calls that ended and have been quiet for SETTLE_SECONDS of capture time
        (looked at once a second of capture time: the open calls are many in a big trace)."""
        if not self.follower.calls or now - self._settled_at < 1.0:
            return
        self._settled_at = now
        for call_id in [c for c, call in self.follower.calls.items()
                        if call.ended and now - call.last_time > SETTLE_SECONDS]:
            self._finish(call_id)

    def _close_all(self) -> None:
        for call_id in list(self.follower.calls):
            self._finish(call_id)

    def _finish(self, call_id: str) -> None:
        call = self.follower.calls.pop(call_id)
        opened = self._open.pop(call_id, None)
        # Forgotten with the call: what the run holds follows the calls in progress.
        if not self._selected.pop(call_id, False) or opened is None:
            return
        report = opened.report
        _fill(report, call)
        for step in report.steps:
            if step.step in opened.captured and step.sdp is not None:
                self._diff(step, opened.captured[step.step], call.forwarded_text.get(step.step))
        if self._transport_failure is not None or self.summary.interrupted:
            # What the trace says of a call read only in part (no answer, no end) would be wrong.
            stopped = "the relay stopped answering" if self._transport_failure is not None else "it was interrupted"
            report.findings = [f"the replay stopped ({stopped}) before the rest of this call was read",
                               *report.findings]
        else:
            report.findings = [*call.findings, *report.findings]
        if self.media is not None:
            report.media = self.media.finish(call_id)
        if opened.session and not opened.deleted and self._transport_failure is None:
            report.cleaned_up = self._clean_up(call)
            if report.cleaned_up:
                report.findings.append("replay deleted the session it created, which the trace never ended")
        self.summary.calls += 1
        self.summary.findings += len(report.findings)
        self._on_call(report)

    def _clean_up(self, call: CallTrace) -> bool:
        """Delete what replay made for `call` (every stream of the caller's tag); True when the
        relay had something to delete."""
        from rtppctl import ops  # noqa: PLC0415

        tag = call.caller_tag
        if not tag:
            return False
        try:
            found = ops.find_call(self.route, call_id=call.call_id, from_tag=tag, source="clean-up")
            return ops.unforce(found).had_session
        except RtppctlError:
            return False


def _fill(report: CallReport, call: CallTrace) -> None:
    report.caller, report.callee = clip(call.caller, 200), clip(call.callee, 200)
    report.first_time, report.last_time = call.first_time, call.last_time
    report.messages, report.retransmissions, report.forwarded = call.messages, call.retransmissions, call.forwarded


def _start_line(text: str) -> str:
    line = text.lstrip("\r\n").split("\n", 1)[0].rstrip("\r")
    return clip(line, 200)


def selected(options: ReplayOptions, call_id: str, first_time: float, capture_start: float) -> bool:
    """The call is one the options ask for: its Call-ID given (or none given), its first message
    within --since and --until (each absolute, or seconds from the trace's first SIP message)."""
    if options.call_ids is not None and call_id not in options.call_ids:
        return False
    for bound, later in ((options.since, True), (options.until, False)):
        if bound is None:
            continue
        value, relative = bound
        limit = capture_start + value if relative else value
        if (first_time < limit) if later else (first_time > limit):
            return False
    return True


def list_calls(records: Iterable[Any], options: ReplayOptions) -> list[dict[str, Any]]:
    """The calls of a trace as `replay --list` shows them (Call-ID, caller, callee, first and last
    time, messages, SDP), chosen as a replay would choose them."""
    from rtppctl.proto.replay import Follower  # noqa: PLC0415

    follower = Follower(proxy_ip=options.proxy_ip)
    start: float | None = None
    for record in records:
        if isinstance(record, SipPacket):
            start = record.time if start is None else start
            follower.feed(record)
    return [call.listing() for call in follower.finish()
            if start is not None and selected(options, call.call_id, call.first_time, start)]
