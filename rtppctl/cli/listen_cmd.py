"""listen: the relays' timeout and DTMF notifications, live (the module's notification side).

The command binds the socket, says what the relays must be given to match it, then renders each
event as it comes: a live table on a terminal, plain lines in a pipe, NDJSON with --json; runs
--exec per event; ends on --count, --duration or Ctrl-C with a summary.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Annotated, Any

import typer

from rtppctl.cli.common import finite, run_context
from rtppctl.proto import limits

#: Commands from --exec running at once, and events waiting for one to finish.
MAX_WAITING = 1000


def listen(
    ctx: typer.Context,
    socket_spec: Annotated[str | None, typer.Argument(metavar="SOCKET", help="tcp:IPv4:PORT, unix:/path or /path (default: rtpp_notify_socket).", show_default=False)] = None,
    any_peer: Annotated[bool, typer.Option("--any-peer", help="Accept TCP connections from any address (default: the configured relays' only, as the module does).")] = False,
    raw: Annotated[bool, typer.Option("--raw", help="Show each line as received instead of the table.")] = False,
    exec_command: Annotated[str | None, typer.Option("--exec", metavar="CMD", help="Run CMD per event (no shell), with the fields in RTPPCTL_* environment variables.", show_default=False)] = None,
    exec_limit: Annotated[int, typer.Option("--exec-limit", metavar="N", min=1, max=64, help="Commands from --exec running at once.")] = 4,
    count: Annotated[int | None, typer.Option("--count", "-c", metavar="N", min=1, max=limits.MAX_TTL, help="Stop after N events.", show_default=False)] = None,
    duration: Annotated[float | None, typer.Option("--duration", metavar="SECONDS", min=0.1, max=limits.MAX_DISABLE_SECONDS, callback=finite, help="Stop after SECONDS.", show_default=False)] = None,
    status_interval: Annotated[float | None, typer.Option("--status-interval", metavar="SECONDS", min=limits.MIN_WATCH_SECONDS, max=limits.MAX_WATCH_SECONDS, callback=finite, help="Also probe the configured relays every SECONDS and report status events.", show_default=False)] = None,
) -> None:
    """Show the relays' timeout and DTMF notifications as they arrive.

    Give RTPProxy the -n value printed at start, byte for byte: a mismatch silently disables notifications. Events name the Call-ID when the session ledger knows the tag. Ctrl-C prints a summary and exits 130.

    Examples:

      rtppctl listen tcp:127.0.0.1:9999

      rtppctl listen --json --count 10 | jq .digit

      rtppctl listen /run/rtppctl/notify.sock --exec ./on-event.sh
    """
    from rtppctl.cli.output import Column  # noqa: PLC0415
    from rtppctl.net.listener import Listener, Notifications, parse_listen_address  # noqa: PLC0415
    from rtppctl.ops import listen as ops_listen  # noqa: PLC0415

    s = run_context(ctx)
    out = s.output
    spec = socket_spec or s.config.rtpp_notify_socket
    if not spec:
        raise typer.BadParameter("no SOCKET given and no rtpp_notify_socket configured", param_hint="SOCKET")
    address = parse_listen_address(spec)
    runner = _Runner(exec_command, exec_limit, out) if exec_command else None
    allowed = None if any_peer or address.kind == "unix" else ops_listen.relay_addresses(s.relays)
    counts: Counter[str] = Counter()
    peers: Counter[str] = Counter()
    # Without a state store there is no ledger to name calls from: no lookup per event.
    lookup = s.relays.ledger_by_tag if s.relays.state_path is not None else None
    started = time.monotonic()
    seen = 0
    columns = [Column("time", keep=True), Column("relay", keep=True), Column("kind"), Column("call or dialog"),
               Column("digit"), Column("duration", "right"), Column("volume", "right"), Column("stream", "right")]
    if raw:
        columns = [Column("time", keep=True), Column("relay", keep=True), Column("raw")]
    with Listener(address, allowed=allowed) as listener:
        _announce(out, listener.bound, address)
        stream = out.stream(columns, title=f"notifications on {listener.bound}")
        with stream:
            try:
                next_probe = time.monotonic() + status_interval if status_interval else None
                while count is None or seen < count:
                    now = time.monotonic()
                    if duration is not None and now - started >= duration:
                        break
                    wait = 0.5 if duration is None else max(0.0, min(0.5, duration - (now - started)))
                    if next_probe is not None:
                        wait = max(0.0, min(wait, next_probe - now))
                    # (records, the keys they share) per read, and the status events of a probe.
                    groups: list[tuple[list[dict[str, Any]], dict[str, Any] | None]] = []
                    for item in listener.events(wait):
                        if isinstance(item, Notifications):
                            groups.append((ops_listen.event_records(item, lookup, raw=raw), ops_listen.batch_common(item)))
                        elif item.what == "refused":
                            out.warn(f"refused a connection from {item.peer}: {item.detail}")
                        else:
                            out.note(f"peer {item.peer} {item.what}" + (f": {item.detail}" if item.detail else ""))
                    if next_probe is not None and time.monotonic() >= next_probe:
                        groups.append((_probe(s, ops_listen), None))
                        next_probe = time.monotonic() + status_interval  # type: ignore[operator]
                    for records, common in groups:
                        if count is not None and seen + len(records) > count:
                            records = records[: count - seen]
                        seen += len(records)
                        counts.update([record["type"] for record in records])
                        if common is not None:
                            peers[common["relay"]] += len(records)
                        else:
                            peers.update([record["relay"] for record in records])
                        if runner is not None:
                            for record in records:
                                runner.submit({**common, **record} if common else record)
                        # What arrived together is shown together.
                        stream.events(records, lambda record: _row(record, raw), common=common)
                    if runner is not None:
                        runner.reap()
            except KeyboardInterrupt:
                stream.close(*_summary(counts, peers, listener.refused, time.monotonic() - started, runner))
                raise
            stream.close(*_summary(counts, peers, listener.refused, time.monotonic() - started, runner))
    if runner is not None:
        runner.finish()


def _announce(out, bound: str, address) -> None:  # noqa: ANN001
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


def _probe(s, ops_listen) -> list[dict[str, Any]]:  # noqa: ANN001
    """Probe every configured relay once; status events for the ones that changed."""
    service = s.relays
    with service.capturing_status() as changes:
        service.probe(service.members(all_sets=True), forced=True)
    now = time.time()
    return [ops_listen.status_record(change, now) for change in changes]


def _row(record: dict[str, Any], raw: bool) -> list[Any]:
    when = time.strftime("%H:%M:%S", time.localtime(record["time"])) + f".{int(record['time'] * 1000) % 1000:03d}"
    if raw:
        return [when, record["relay"], record.get("raw")]
    who = record.get("call_id") or record.get("dialog") or record.get("tag") or record.get("reason")
    kind = record["type"] if record["type"] != "status" else f"status {record.get('status')}"
    return [when, record["relay"], kind, who, record.get("digit"), record.get("duration"), record.get("volume"),
            record.get("stream")]


def _summary(counts: Counter[str], peers: Counter[str], refused: int, elapsed: float, runner) -> tuple:  # noqa: ANN001
    summary = {"type": "summary", "events": sum(counts.values()), "counts": dict(counts), "peers": dict(peers),
               "refused_connections": refused, "seconds": round(elapsed, 3)}
    if runner is not None:
        summary["exec"] = {"started": runner.started, "failed": runner.failed, "dropped": runner.dropped}
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "no events"
    by_peer = ", ".join(f"{peer}: {n}" for peer, n in sorted(peers.items()))
    text = f"{kinds} in {elapsed:.1f} s" + (f" ({by_peer})" if by_peer else "") + (f"; refused {refused}" if refused else "")
    return summary, text


class _Runner:
    """--exec: one process per event, at most `limit` at once, never through a shell; the
    reader never waits for them (events queue, and beyond MAX_WAITING are dropped and counted)."""

    def __init__(self, command: str, limit: int, out) -> None:  # noqa: ANN001
        import shlex  # noqa: PLC0415

        self.argv = shlex.split(command)
        if not self.argv:
            raise typer.BadParameter("an empty command", param_hint="--exec")
        self.limit = limit
        self.out = out
        self.running: list[Any] = []
        self.waiting: list[dict[str, Any]] = []
        self.started = self.failed = self.dropped = 0

    def submit(self, record: dict[str, Any]) -> None:
        if len(self.waiting) >= MAX_WAITING:
            self.dropped += 1
            return
        self.waiting.append(record)
        self.reap()

    def reap(self) -> None:
        import os  # noqa: PLC0415
        import subprocess  # noqa: PLC0415

        from rtppctl.ops.listen import ALL_KEYS  # noqa: PLC0415

        still = []
        for process, record in self.running:
            code = process.poll()
            if code is None:
                still.append((process, record))
            elif code != 0:
                self.failed += 1
                self.out.warn(f"--exec exited {code} for the {record['type']} event at {record['time']:.3f}")
        self.running = still
        while self.waiting and len(self.running) < self.limit:
            record = self.waiting.pop(0)
            env = {**os.environ, **{f"RTPPCTL_{key.upper()}": "" if record.get(key) is None else str(record[key])
                                    for key in ALL_KEYS}}
            try:
                process = subprocess.Popen(self.argv, env=env, stdin=subprocess.DEVNULL)
            except OSError as exc:
                self.failed += 1
                self.out.warn(f"--exec cannot run {self.argv[0]!r}: {exc.strerror or exc}")
                continue
            self.started += 1
            self.running.append((process, record))

    def finish(self, timeout: float = 10.0) -> None:
        """At the end: start what waits, and give running commands a moment to end."""
        deadline = time.monotonic() + timeout
        while (self.waiting or self.running) and time.monotonic() < deadline:
            self.reap()
            time.sleep(0.02)
