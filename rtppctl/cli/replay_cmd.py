"""`replay`: a captured SIP trace, call by call, through a relay, as the proxy would have done it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from rtppctl.cli.common import SetOption, TargetOption, finite, run_context
from rtppctl.cli.sdp_cmd import FlagsOption, IpOption

if TYPE_CHECKING:
    from collections.abc import Iterator

    from rtppctl.cli.common import RunContext
    from rtppctl.ops.replay import CallReport, ReplaySummary
    from rtppctl.proto.capture import CaptureStats


def replay(
    ctx: typer.Context,
    trace: Annotated[str, typer.Argument(metavar="TRACE", help="A pcap or pcapng capture, or a text trace (sngrep, ngrep, siptrace).")],
    list_calls: Annotated[bool, typer.Option("--list", help="Only list the calls found (Call-ID, caller, callee, times, messages, SDP).")] = False,
    call_id: Annotated[list[str] | None, typer.Option("--call-id", metavar="ID", show_default=False, help="Replay this call only (repeatable).")] = None,
    since: Annotated[str | None, typer.Option("--since", metavar="TIME", show_default=False,
                                              help="Calls starting at or after TIME: ISO 8601 (UTC unless it says), or seconds from the trace's first SIP message.")] = None,
    until: Annotated[str | None, typer.Option("--until", metavar="TIME", show_default=False,
                                              help="Calls starting at or before TIME (as --since).")] = None,
    flags: FlagsOption = "",
    ip: IpOption = None,
    target: TargetOption = None,
    set_id: SetOption = None,
    speed: Annotated[float | None, typer.Option("--speed", metavar="X", min=0.001, max=1000.0, show_default=False,
                                                callback=finite, help="Keep the capture's timing scaled by X (1: real time); default: as fast as possible.")] = None,
    diff: Annotated[bool, typer.Option("--diff", help="Show each rewritten SDP as a diff against the captured one (the proxy's forwarded copy when the capture has it).")] = False,
    proxy_ip: Annotated[str | None, typer.Option("--proxy-ip", metavar="ADDR", show_default=False,
                                                 help="The proxy's address in a capture of both its legs: messages it sent are skipped.")] = None,
    emit_batch: Annotated[str | None, typer.Option("--emit-batch", metavar="FILE", show_default=False,
                                                   help="Also write the operations as `rtppctl batch` input, one a line.")] = None,
    media: Annotated[bool, typer.Option("--media", help="Also send each call's captured RTP through the relay at the captured pace (--speed 1 unless given) and measure what it forwards; the parties are local sockets.")] = False,
) -> int:
    """Replay a captured SIP trace through a relay, call by call, as rtpproxy_engage would have.

    Each message with SDP becomes the module's offer or answer, BYE and CANCEL (and a failed INVITE) an unforce, through the relay service: the configured relays, -t, or --set; with no relay configured, the embedded relay, started for the run and stopped after it. Retransmissions are replayed once; a capture taken on the proxy's host holds each message as received and as forwarded, and only the received one is replayed (the proxy is found from the Via it adds, or named with --proxy-ip). Each call's report gives the rewritten SDP, the relay's replies and findings in words (a stream the relay refused, a port 0 stream, an address family change, a missing answer, a dialog that never ended); every session replay made and the trace never ended is deleted at the end, and the report says so.

    Exit codes: 0 every operation succeeded, 3 the relay refused one, 6 a message it could not use or a trace it cannot read, 4 no relay to talk to, 130 interrupted (after the clean-up).

    Examples:

      rtppctl replay call.pcap

      rtppctl replay --list proxy.pcapng

      rtppctl replay trace.txt --call-id 5f3a@192.0.2.1 --diff

      rtppctl replay call.pcap --speed 1 --json --emit-batch ops.ndjson
    """
    from rtppctl.ops.interrupts import Interrupts  # noqa: PLC0415
    from rtppctl.ops.replay import ReplayOptions  # noqa: PLC0415

    s = run_context(ctx)
    if media and speed is None:
        speed = 1.0  # media at the pace it was captured
    options = ReplayOptions(flags=flags, ip=ip, speed=speed, diff=diff,
                            call_ids=frozenset(call_id) if call_id else None, since=_time(since, "--since"),
                            until=_time(until, "--until"), proxy_ip=_address(proxy_ip), media=media)
    from rtppctl.proto.capture import CaptureStats  # noqa: PLC0415

    stats = CaptureStats()
    if list_calls:
        return _list(s, trace, _records(trace, stats), stats, options)
    if emit_batch is not None:
        from rtppctl.files import check_writable  # noqa: PLC0415

        check_writable(emit_batch)  # before any relay is asked
    records = _records(trace, stats, media=media)
    operations: list[dict[str, Any]] | None = [] if emit_batch is not None else None
    with _relay(s, target, set_id) as route, Interrupts() as interrupts:
        summary = _run(s, records, stats, route, options, operations, lambda: interrupts.signals)
    if emit_batch is not None and operations is not None:
        _write_batch(emit_batch, operations)
    _render_summary(s, summary, stats)
    if summary.interrupted:
        raise KeyboardInterrupt  # every session is deleted: now the usual one line and exit 130
    return summary.exit_code


def _run(s: RunContext, records: Iterator[Any], stats: CaptureStats, route: Any, options: Any,
         operations: list[dict[str, Any]] | None, signals: Any) -> ReplaySummary:
    from rtppctl.ops.batch import worst_exit  # noqa: PLC0415
    from rtppctl.ops.replay import Replay  # noqa: PLC0415

    codes: list[int] = []

    def on_call(report: CallReport) -> None:
        codes.extend(step.error["exit_code"] for step in report.steps if step.error)
        _render_call(s, report)

    run = Replay(route, options, on_call=on_call, signals=signals, emit_batch=operations)
    summary = run.run(records, stats)
    if not summary.interrupted:
        summary.exit_code = worst_exit(codes)
    return summary


def _records(trace: str, stats: CaptureStats, *, media: bool = False) -> Iterator[Any]:
    """The trace's records, streaming (pcap and pcapng through dpkt, else a text trace), the first
    one already read: a missing file, a folder, a header that is no capture's, a text that is no
    trace, fail here, naming the file, before any relay is asked."""
    import itertools  # noqa: PLC0415

    from rtppctl.captures import capture_kind, read_capture  # noqa: PLC0415

    kind = capture_kind(trace)
    if kind == "text" and media:
        raise typer.BadParameter("--media needs a pcap or pcapng capture: a text trace holds no RTP",
                                 param_hint="--media")
    records = read_capture(trace, media=media, stats=stats) if kind != "text" else _text_records(trace, stats)
    first = next(records, None)
    return iter(()) if first is None else itertools.chain((first,), records)


def _text_records(trace: str, stats: CaptureStats) -> Any:
    from rtppctl.files import open_input  # noqa: PLC0415
    from rtppctl.proto.text_trace import MAX_RECORD_BYTES, read_text_trace  # noqa: PLC0415

    def lines(source: Any) -> Any:
        # Bytes as they are (every CR kept), a line never longer than a record may be.
        while True:
            line = source.readline(MAX_RECORD_BYTES + 1)
            if not line:
                return
            yield line

    with open_input(trace) as source:
        yield from read_text_trace(lines(source), stats=stats, source=trace)


def _list(s: RunContext, trace: str, records: Iterator[Any], stats: CaptureStats, options: Any) -> int:
    from rtppctl.cli.output import Column, Table  # noqa: PLC0415
    from rtppctl.ops.replay import list_calls  # noqa: PLC0415

    calls = list_calls(records, options)
    if s.json:
        s.output.emit({"calls": calls, "capture": stats.as_dict()})
        return 0
    columns = [Column("call-id"), Column("caller"), Column("callee"), Column("first"), Column("last"),
               Column("messages", "right"), Column("sdp")]
    rows = [[call["call_id"], call["caller"], call["callee"], _clock(call["first_time"]), _clock(call["last_time"]),
             call["messages"], "yes" if call["sdp"] else "no"] for call in calls]
    s.output.emit({}, Table(columns, rows, title=f"{len(calls)} calls in {trace}", caption=_capture_line(stats)))
    return 0


class _relay:
    """The route a replay uses; with no relay configured (and no -t or --set), the embedded relay,
    started for the run when it is not running and stopped after it."""

    def __init__(self, s: RunContext, target: list[str] | None, set_id: int | None) -> None:
        self.s, self.target, self.set_id = s, target, set_id
        self.started = False

    def __enter__(self) -> Any:
        from rtppctl.cli.common import route_for  # noqa: PLC0415

        s = self.s
        config = s.config
        target = self.target
        if not target and self.set_id is None and config.source("rtpproxy_sock") == "default" and not config.db_url:
            from rtppctl import embedded  # noqa: PLC0415

            status = embedded.status()
            if not status.running:
                status = embedded.start(config.embedded)
                self.started = True
                s.output.status("no relay configured: started the embedded relay for this replay (stopped after it)")
            # Its own control socket, whatever [embedded] says it is.
            target = status.control[:1] or None
        return route_for(s, target, self.set_id)

    def __exit__(self, *exc: object) -> None:
        if self.started:
            from rtppctl import embedded  # noqa: PLC0415

            self.s.close()  # the run's channels first: the relay goes away next
            embedded.stop()


def _time(text: str | None, option: str) -> tuple[float, bool] | None:
    """--since/--until: (epoch seconds, False) for an ISO 8601 time, (seconds, True) for a number."""
    if text is None:
        return None
    value = text.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if seconds != seconds or seconds in (float("inf"), float("-inf")) or seconds < 0:
            raise typer.BadParameter(f"{text!r} is not a number of seconds from the capture's start", param_hint=option)
        return seconds, True
    from datetime import datetime, timezone  # noqa: PLC0415

    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is neither an ISO 8601 time (2026-12-06T10:00:00Z) nor seconds "
                                 "from the capture's start", param_hint=option) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp(), False


def _address(text: str | None) -> str | None:
    if text is None:
        return None
    from rtppctl.proto.text import ip_literal  # noqa: PLC0415

    address = ip_literal(text.strip().strip("[]"))
    if address is None:
        raise typer.BadParameter(f"{text!r} is not an IP address", param_hint="--proxy-ip")
    return str(address)


def _write_batch(path: str, operations: list[dict[str, Any]]) -> None:
    import json  # noqa: PLC0415

    from rtppctl.files import write_atomically  # noqa: PLC0415

    write_atomically(path, "".join(json.dumps(line) + "\n" for line in operations).encode())


# -- rendering ------------------------------------------------------------------------------------


def _clock(moment: float) -> str:
    from datetime import datetime, timezone  # noqa: PLC0415

    return datetime.fromtimestamp(moment, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _render_call(s: RunContext, report: CallReport) -> None:
    from rtppctl.cli.output import Column, Lines, Table, Verbatim  # noqa: PLC0415
    from rtppctl.ops import as_dict  # noqa: PLC0415

    if s.json:
        s.output.emit({"type": "call", **as_dict(report)})
        return
    skipped = []
    if report.retransmissions:
        skipped.append(f"{report.retransmissions} retransmissions")
    if report.forwarded:
        skipped.append(f"{report.forwarded} forwarded copies")
    title = (f"call {report.call_id}: {report.caller or '?'} -> {report.callee or '?'} "
             f"({report.messages} messages, {report.last_time - report.first_time:.3f} s"
             + (f"; skipped {' and '.join(skipped)})" if skipped else ")"))
    columns = [Column("step", "right"), Column("time", "right"), Column("message"), Column("op"), Column("relay", keep=True),
               Column("result")]
    rows = []
    for step in report.steps:
        result = "ok" if step.ok else (step.error or {}).get("message", "failed")
        command = f"{step.op} ({step.letter})" if step.letter else step.op
        rows.append([step.step, f"{step.time - report.first_time:.3f}", step.message, command, step.node or "-", result])
    views: list[Any] = [Table(columns, rows, title=title)]
    for step in report.steps:
        if step.diff:
            views += [f"step {step.step}: the rewritten SDP against the {step.diff_against} one:", Verbatim(step.diff)]
        elif step.sdp is not None:
            views += [f"step {step.step}: the SDP the proxy would send:", Verbatim(step.sdp)]
    if report.media:
        media_columns = [Column("stream", "right"), Column("direction"), Column("sent", "right"),
                         Column("received", "right"), Column("lost", "right"), Column("dup", "right"),
                         Column("reord", "right"), Column("latency ms", "right"), Column("jitter ms", "right")]
        media_rows = [[m["stream"], m["direction"], m["sent"], m["received"], m["lost"], m["duplicates"], m["reordered"],
                       "-" if m["latency_ms"] is None else f"{m['latency_ms']['avg']:.3f}",
                       "-" if m["jitter_ms"] is None else f"{m['jitter_ms']:.3f}"] for m in report.media]
        views.append(Table(media_columns, media_rows, title="captured RTP through the relay"))
    if report.findings:
        views.append(Lines(tuple(f"- {finding}" for finding in report.findings)))
    s.output.emit({}, *views)


def _capture_line(stats: CaptureStats) -> str:
    data = stats.as_dict()
    parts = [f"{data['frames']} frames", f"{data['sip_messages']} SIP messages"]
    if data["truncated"]:
        parts.append(f"{data['truncated']} truncated")
    for link, count in data["unknown_link_types"].items():
        parts.append(f"{count} of unknown link type {link}")
    return ", ".join(parts)


def _render_summary(s: RunContext, summary: ReplaySummary, stats: CaptureStats) -> None:
    from rtppctl.ops import as_dict  # noqa: PLC0415

    if s.json:
        s.output.emit({"type": "summary", **as_dict(summary)})
        return
    lines = [f"{summary.calls} calls, {summary.steps} operations, {summary.failed} failed, {summary.findings} findings; "
             f"capture: {_capture_line(stats)}"]
    for proxy in summary.proxies:
        lines.append(f"the capture holds both legs of the proxy at {proxy}: the messages it received were replayed, "
                     "its forwarded copies skipped")
    if summary.unreadable:
        lines.append(f"{summary.unreadable} messages were not SIP a replay can follow (no start line or Call-ID)")
    from rtppctl.cli.output import Lines  # noqa: PLC0415

    s.output.emit({}, Lines(tuple(lines)))
