"""listen: the relays' timeout and DTMF notifications, live (the module's notification side).

The command reads its options, says what the relays must be given to match the socket, and renders
what the run (`ops.listen.Listening`) hands over: a live table on a terminal, plain lines in a pipe,
NDJSON with --json; peers' news on stderr; the summary last. How a run ends, and what becomes of
the commands --exec runs (`ops.exec_runner`), is the run's business. Here --exec is only split with
the shell's quoting rules (it is never run through a shell): an empty command, an unclosed quote or
a program that is not found is a usage error (exit 2), found before the socket is bound.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rtppctl.cli.common import finite, run_context
from rtppctl.proto import limits

if TYPE_CHECKING:
    from rtppctl.cli.output import Column, Output
    from rtppctl.net.listener import PeerNews
    from rtppctl.ops.listen import ListenSummary


def listen(
    ctx: typer.Context,
    socket_spec: Annotated[str | None, typer.Argument(metavar="SOCKET", help="tcp:IPv4:PORT, unix:/path or /path (default: rtpp_notify_socket).", show_default=False)] = None,
    any_peer: Annotated[bool, typer.Option("--any-peer", help="Accept TCP connections from any address (default: the configured relays' only, as the module does).")] = False,
    max_peers: Annotated[int, typer.Option("--max-peers", metavar="N", min=1, max=limits.MAX_LISTEN_PEERS, help="Connections held at once; more are refused (idle ones are never closed).")] = limits.DEFAULT_LISTEN_PEERS,
    raw: Annotated[bool, typer.Option("--raw", help="Show each line as received instead of the table.")] = False,
    exec_command: Annotated[str | None, typer.Option("--exec", metavar="CMD", help="Run CMD per event (no shell), with the fields in RTPPCTL_* environment variables (percent-encoded where a value holds % or an unprintable character such as NUL).", show_default=False)] = None,
    exec_limit: Annotated[int, typer.Option("--exec-limit", metavar="N", min=1, max=limits.MAX_EXEC_RUNNING, help="Commands from --exec running at once.")] = 4,
    exec_timeout: Annotated[float, typer.Option("--exec-timeout", metavar="SECONDS", min=limits.MIN_EXEC_TIMEOUT, max=limits.MAX_EXEC_TIMEOUT, callback=finite, help="Stop a command from --exec that runs longer (SIGTERM, then SIGKILL).")] = 10.0,
    exec_unknown: Annotated[bool, typer.Option("--exec-unknown", help="Also run --exec for unknown lines (by default only timeout, dtmf and status events).")] = False,
    count: Annotated[int | None, typer.Option("--count", "-c", metavar="N", min=1, max=limits.MAX_LISTEN_EVENTS, help="Stop after N events.", show_default=False)] = None,
    duration: Annotated[float | None, typer.Option("--duration", metavar="SECONDS", min=limits.MIN_LISTEN_SECONDS, max=limits.MAX_LISTEN_SECONDS, callback=finite, help="Stop after SECONDS.", show_default=False)] = None,
    status_interval: Annotated[float | None, typer.Option("--status-interval", metavar="SECONDS", min=limits.MIN_WATCH_SECONDS, max=limits.MAX_WATCH_SECONDS, callback=finite, help="Also probe the configured relays every SECONDS and report status events.", show_default=False)] = None,
) -> None:
    """Show the relays' timeout and DTMF notifications as they arrive.

    Give RTPProxy the -n value printed at start, byte for byte: a mismatch silently disables notifications. Events name the Call-ID when the session ledger knows the tag. After --count or --duration, commands from --exec still waiting are run; Ctrl-C or SIGTERM drops them. Either way the summary comes last; Ctrl-C and SIGTERM exit 130.

    Examples:

      rtppctl listen tcp:127.0.0.1:9999

      rtppctl listen --json --count 10 | jq .digit

      rtppctl listen /run/rtppctl/notify.sock --exec ./on-event.sh --exec-timeout 5
    """
    from rtppctl.ops.exec_runner import ExecRunner  # noqa: PLC0415
    from rtppctl.ops.listen import Batch, Listening  # noqa: PLC0415
    from rtppctl.proto.notify import parse_notify_socket  # noqa: PLC0415

    s = run_context(ctx)
    out = s.output
    spec = socket_spec or s.config.rtpp_notify_socket
    if not spec:
        raise typer.BadParameter("no SOCKET given and no rtpp_notify_socket configured", param_hint="SOCKET")
    address = parse_notify_socket(spec)
    runner = None
    if exec_command is not None:
        runner = ExecRunner(_exec_argv(exec_command), limit=exec_limit, timeout=exec_timeout, unknown=exec_unknown,
                            warn=out.warn, status=out.status)
    with Listening(s.relays, address, any_peer=any_peer, max_peers=max_peers, raw=raw, runner=runner, count=count,
                   duration=duration, status_interval=status_interval) as run:
        _announce(out, run.bound)
        with out.stream(_columns(raw), title=f"notifications on {run.bound}") as stream:
            for item in run.events():
                if isinstance(item, Batch):
                    # What arrived together is shown together.
                    stream.events(item.records, lambda record: _row(record, raw), common=item.common)
                else:
                    _peer_news(out, item)
            stream.close(*_summary(run.summary()))
    if run.interrupted:
        raise KeyboardInterrupt  # the one "interrupted" line and exit 130, as for Ctrl-C anywhere


def _exec_argv(command: str) -> list[str]:
    """--exec's words, or a usage error naming what is wrong."""
    import shlex  # noqa: PLC0415
    import shutil  # noqa: PLC0415

    try:
        argv = shlex.split(command)
    except ValueError as exc:  # shlex says "No closing quotation" or "No escaped character"
        raise typer.BadParameter(f"{command!r} cannot be split into words: {str(exc).lower()}",
                                 param_hint="'--exec'") from None
    if not argv:
        raise typer.BadParameter("an empty command: give the program to run per event", param_hint="'--exec'")
    if shutil.which(argv[0]) is None:
        raise typer.BadParameter(f"{argv[0]!r}: no such program, or not executable", param_hint="'--exec'")
    return argv


def _announce(out: Output, bound: str) -> None:
    """What the relays need, so that their -n and rtppctl's U match byte for byte (§9.1)."""
    from rtppctl.proto.flags import parse_flags  # noqa: PLC0415
    from rtppctl.proto.offer import notify_socket_for  # noqa: PLC0415

    sent = notify_socket_for(bound, parse_flags(""), notify_wild=True)
    without_wild = notify_socket_for(bound, parse_flags(""), notify_wild=False)
    out.status(f"listening on {bound}: start RTPProxy with -n {bound}")
    line = f"offers with flag n send {sent}"
    if without_wild != sent:
        line += f" ({without_wild} to relays without NOTIFY_WILD)"
    out.status(line + f"; set rtpp_notify_socket = \"{bound}\" so that they do")


def _peer_news(out: Output, news: PeerNews) -> None:
    if news.what in ("refused", "full"):
        out.warn(f"refused a connection from {news.peer}: {news.detail}")
    elif news.what in ("exhausted", "error"):
        out.warn(f"{news.peer}: {news.detail}")
    else:
        out.note(f"peer {news.peer} {news.what}" + (f": {news.detail}" if news.detail else ""))


def _columns(raw: bool) -> list[Column]:
    from rtppctl.cli.output import Column  # noqa: PLC0415

    if raw:
        return [Column("time", keep=True, width=12), Column("relay", keep=True, width=21), Column("raw")]
    return [Column("time", keep=True, width=12), Column("relay", keep=True, width=21), Column("kind", width=7),
            Column("call or dialog", width=40), Column("digit", width=5), Column("duration", "right", keep=True),
            Column("volume", "right", keep=True), Column("stream", "right", keep=True)]


def _row(record: dict[str, Any], raw: bool) -> list[Any]:
    from rtppctl.ops.listen import source  # noqa: PLC0415

    when = time.strftime("%H:%M:%S", time.localtime(record["time"])) + f".{int(record['time'] * 1000) % 1000:03d}"
    if raw:
        return [when, source(record), record.get("raw")]
    who = record.get("call_id") or record.get("dialog") or record.get("tag") or record.get("reason")
    kind = record["type"] if record["type"] != "status" else f"status {record.get('status')}"
    return [when, source(record), kind, who, record.get("digit"), record.get("duration"), record.get("volume"),
            record.get("stream")]


def _summary(summary: ListenSummary) -> tuple[dict[str, Any], str]:
    """The summary record, and the line people read."""
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(summary.counts.items())) or "no events"
    by_peer = ", ".join(f"{peer}: {n}" for peer, n in sorted(summary.peers.items()))
    text = f"{kinds} in {summary.seconds:.1f} s" + (f" ({by_peer})" if by_peer else "")
    if summary.refused_connections:
        text += f"; refused {summary.refused_connections}"
    if summary.refused_max_peers:
        text += f"; refused {summary.refused_max_peers} over --max-peers"
    if summary.accept_pauses:
        text += f"; accepting paused {summary.accept_pauses} time(s)"
    if summary.exec is not None:
        text += f"; --exec: {summary.exec.started} started, {summary.exec.dropped} dropped, {summary.exec.failed} failed"
    return summary.as_record(), text
