"""listen: the relays' timeout and DTMF notifications, live (the module's notification side).

The command binds the socket, says what the relays must be given to match it, then renders each
event as it comes: a live table on a terminal, plain lines in a pipe, NDJSON with --json; runs
--exec per event; ends on --count, --duration, Ctrl-C or SIGTERM with a summary. The rules it keeps:

- --exec is split with the shell's quoting rules but never run through a shell. An empty
  command, an unclosed quote or a program that is not found is a usage error (exit 2), found
  before the socket is bound.
- --exec runs one process per event (not for `unknown` ones unless --exec-unknown), at most
  --exec-limit at once, each in a process group of its own, with the event in RTPPCTL_*
  variables (`ops.listen.exec_environment`: percent-encoded where a value holds `%` or a
  character that is not printable, since an environment variable cannot hold NUL). A command still running after
  --exec-timeout gets SIGTERM, then SIGKILL EXEC_GRACE seconds later. The reader never waits for
  them: up to MAX_WAITING events wait for a free slot, more are dropped.
- The end. --count or --duration: the socket is closed, then every waiting command still runs
  (each bounded by --exec-timeout), then the summary. Ctrl-C or SIGTERM (the same for both; exit
  130, the code for "interrupted" whatever the signal, so that a script sees one code): the
  socket is closed (a unix socket file removed), waiting commands are not run and are counted as
  dropped, running ones get the rest of their --exec-timeout, and a second Ctrl-C or SIGTERM kills
  them; then the summary. The signals are counted, not raised, so no event is half-counted.
- The summary's exec counts always add up: `started + dropped == events` (the events --exec was
  for); `failed` counts the started ones that exited non-zero, ran out of time, were killed or
  could not be started, and `timed_out` those of them that ran out of time.
"""

from __future__ import annotations

import signal
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from rtppctl.cli.common import finite, run_context
from rtppctl.proto import limits

#: Events waiting for an --exec slot; more are dropped (and counted).
MAX_WAITING = 1000
#: Seconds between SIGTERM and SIGKILL for a command past its --exec-timeout.
EXEC_GRACE = 1.0
#: Bounds of --exec-timeout, in seconds.
MIN_EXEC_TIMEOUT, MAX_EXEC_TIMEOUT = 0.1, 3600.0
#: How often waiting commands are started and running ones checked while there are any.
EXEC_POLL = 0.05


def listen(
    ctx: typer.Context,
    socket_spec: Annotated[str | None, typer.Argument(metavar="SOCKET", help="tcp:IPv4:PORT, unix:/path or /path (default: rtpp_notify_socket).", show_default=False)] = None,
    any_peer: Annotated[bool, typer.Option("--any-peer", help="Accept TCP connections from any address (default: the configured relays' only, as the module does).")] = False,
    max_peers: Annotated[int, typer.Option("--max-peers", metavar="N", min=1, max=65536, help="Connections held at once; more are refused (idle ones are never closed).")] = 256,
    raw: Annotated[bool, typer.Option("--raw", help="Show each line as received instead of the table.")] = False,
    exec_command: Annotated[str | None, typer.Option("--exec", metavar="CMD", help="Run CMD per event (no shell), with the fields in RTPPCTL_* environment variables (percent-encoded where a value holds % or an unprintable character such as NUL).", show_default=False)] = None,
    exec_limit: Annotated[int, typer.Option("--exec-limit", metavar="N", min=1, max=64, help="Commands from --exec running at once.")] = 4,
    exec_timeout: Annotated[float, typer.Option("--exec-timeout", metavar="SECONDS", min=MIN_EXEC_TIMEOUT, max=MAX_EXEC_TIMEOUT, callback=finite, help="Stop a command from --exec that runs longer (SIGTERM, then SIGKILL).")] = 10.0,
    exec_unknown: Annotated[bool, typer.Option("--exec-unknown", help="Also run --exec for unknown lines (by default only timeout, dtmf and status events).")] = False,
    count: Annotated[int | None, typer.Option("--count", "-c", metavar="N", min=1, max=limits.MAX_TTL, help="Stop after N events.", show_default=False)] = None,
    duration: Annotated[float | None, typer.Option("--duration", metavar="SECONDS", min=0.1, max=limits.MAX_DISABLE_SECONDS, callback=finite, help="Stop after SECONDS.", show_default=False)] = None,
    status_interval: Annotated[float | None, typer.Option("--status-interval", metavar="SECONDS", min=limits.MIN_WATCH_SECONDS, max=limits.MAX_WATCH_SECONDS, callback=finite, help="Also probe the configured relays every SECONDS and report status events.", show_default=False)] = None,
) -> None:
    """Show the relays' timeout and DTMF notifications as they arrive.

    Give RTPProxy the -n value printed at start, byte for byte: a mismatch silently disables notifications. Events name the Call-ID when the session ledger knows the tag. After --count or --duration, commands from --exec still waiting are run; Ctrl-C or SIGTERM drops them. Either way the summary comes last; Ctrl-C and SIGTERM exit 130.

    Examples:

      rtppctl listen tcp:127.0.0.1:9999

      rtppctl listen --json --count 10 | jq .digit

      rtppctl listen /run/rtppctl/notify.sock --exec ./on-event.sh --exec-timeout 5
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
    runner = None
    if exec_command is not None:
        runner = _Runner(_exec_argv(exec_command), exec_limit, exec_timeout, exec_unknown, out)
    allowed = None if any_peer or address.kind == "unix" else ops_listen.relay_addresses(s.relays)
    counts: Counter[str] = Counter()
    peers: Counter[str] = Counter()
    # Without a state store there is no ledger to name calls from: no lookup per event.
    lookup = s.relays.ledger_by_tag if s.relays.state_path is not None else None
    started = time.monotonic()
    seen = 0
    columns = [Column("time", keep=True, width=12), Column("relay", keep=True, width=21), Column("kind", width=7),
               Column("call or dialog", width=40), Column("digit", width=5), Column("duration", "right", keep=True),
               Column("volume", "right", keep=True), Column("stream", "right", keep=True)]
    if raw:
        columns = [Column("time", keep=True, width=12), Column("relay", keep=True, width=21), Column("raw")]
    # Signals are caught before the socket is bound, so a SIGTERM at any point still removes it.
    with _Stop() as stop, Listener(address, allowed=allowed, max_peers=max_peers) as listener:
        stop.wake(listener.wakeup_fd)
        _announce(out, listener.bound, address)
        stream = out.stream(columns, title=f"notifications on {listener.bound}")

        def end(*, drop_waiting: bool) -> None:
            # Nothing is taken in while commands drain: relays see the socket gone, not ignored.
            stop.wake(None)
            listener.close()
            if runner is not None:
                runner.drain(stop, drop_waiting=drop_waiting)

        with stream:
            try:
                next_probe = time.monotonic() + status_interval if status_interval else None
                while (count is None or seen < count) and not stop.signals:
                    now = time.monotonic()
                    if duration is not None and now - started >= duration:
                        break
                    wait = EXEC_POLL if runner is not None and runner.busy else 0.5
                    if duration is not None:
                        wait = max(0.0, min(wait, duration - (now - started)))
                    if next_probe is not None:
                        wait = max(0.0, min(wait, next_probe - now))
                    # (records, the keys they share, the events they came from) per read, and the
                    # status events of a probe.
                    groups: list[tuple[list[dict[str, Any]], dict[str, Any] | None, list[Any] | None]] = []
                    for item in listener.events(wait):
                        if isinstance(item, Notifications):
                            groups.append((ops_listen.event_records(item, lookup, raw=raw), ops_listen.batch_common(item),
                                           item.events if runner is not None else None))
                        elif item.what in ("refused", "full"):
                            out.warn(f"refused a connection from {item.peer}: {item.detail}")
                        elif item.what in ("exhausted", "error"):
                            out.warn(f"{item.peer}: {item.detail}")
                        else:
                            out.note(f"peer {item.peer} {item.what}" + (f": {item.detail}" if item.detail else ""))
                    if next_probe is not None and time.monotonic() >= next_probe:
                        groups.append((_probe(s), None, None))
                        next_probe = time.monotonic() + status_interval  # type: ignore[operator]
                    for records, common, events in groups:
                        if count is not None and seen + len(records) > count:
                            records = records[: count - seen]
                        seen += len(records)
                        counts.update([record["type"] for record in records])
                        if common is not None:
                            peers[common["relay"]] += len(records)
                        else:
                            peers.update([_source(record) for record in records])
                        if runner is not None:
                            for index, record in enumerate(records):
                                runner.submit({**common, **record} if common else record,
                                              events[index].raw if events is not None else None)
                        # What arrived together is shown together.
                        stream.events(records, lambda record: _row(record, raw), common=common)
                    if runner is not None:
                        runner.pump()
            except BaseException:
                end(drop_waiting=True)
                raise
            end(drop_waiting=False)
            stream.close(*_summary(counts, peers, listener, time.monotonic() - started, runner))
    if stop.signals:
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


class _Stop:
    """SIGINT and SIGTERM while listening: counted, never raised (so no event is half-counted),
    and, once `wake` is given the listener's descriptor, ending its wait at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signals = 0
        self._previous: dict[int, Any] = {}
        self._wakeup: int | None = None

    def __enter__(self) -> _Stop:
        try:
            for number in self.SIGNALS:
                self._previous[number] = signal.signal(number, self._caught)
        except ValueError:  # not the main thread (rtppctl run from a thread): signals stay as they are
            pass
        return self

    def _caught(self, number: int, frame: object) -> None:
        self.signals += 1

    def wake(self, fd: int | None) -> None:
        """Have a signal write to `fd` (None: no longer); only while handlers are ours."""
        if not self._previous:
            return
        if fd is None:
            if self._wakeup is not None:
                signal.set_wakeup_fd(self._wakeup)
                self._wakeup = None
        elif self._wakeup is None:
            self._wakeup = signal.set_wakeup_fd(fd, warn_on_full_buffer=False)

    def __exit__(self, *exc: object) -> None:
        self.wake(None)
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()


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


def _probe(s) -> list[dict[str, Any]]:  # noqa: ANN001
    """An operator's probe of every configured relay (the health table judges each answer); the
    status events it raised, as records."""
    service = s.relays
    with service.capturing_status() as events:
        service.probe(service.members(all_sets=True))
    return [event.as_record() for event in events]


def _source(record: dict[str, Any]) -> str:
    """Where a record came from: the peer of a notification, the relay of a status event."""
    return record.get("relay") or record["socket"]


def _row(record: dict[str, Any], raw: bool) -> list[Any]:
    when = time.strftime("%H:%M:%S", time.localtime(record["time"])) + f".{int(record['time'] * 1000) % 1000:03d}"
    if raw:
        return [when, _source(record), record.get("raw")]
    who = record.get("call_id") or record.get("dialog") or record.get("tag") or record.get("reason")
    kind = record["type"] if record["type"] != "status" else f"status {record.get('status')}"
    return [when, _source(record), kind, who, record.get("digit"), record.get("duration"), record.get("volume"),
            record.get("stream")]


def _summary(counts: Counter[str], peers: Counter[str], listener, elapsed: float, runner) -> tuple:  # noqa: ANN001
    refused = listener.refused
    summary = {"type": "summary", "events": sum(counts.values()), "counts": dict(counts), "peers": dict(peers),
               "refused_connections": refused, "refused_max_peers": listener.refused_max_peers,
               "seconds": round(elapsed, 3)}
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "no events"
    by_peer = ", ".join(f"{peer}: {n}" for peer, n in sorted(peers.items()))
    text = f"{kinds} in {elapsed:.1f} s" + (f" ({by_peer})" if by_peer else "") + (f"; refused {refused}" if refused else "")
    if listener.refused_max_peers:
        text += f"; refused {listener.refused_max_peers} over --max-peers"
    if runner is not None:
        summary["exec"] = {"events": runner.events, "started": runner.started, "dropped": runner.dropped,
                           "failed": runner.failed, "timed_out": runner.timed_out}
        text += f"; --exec: {runner.started} started, {runner.dropped} dropped, {runner.failed} failed"
    return summary, text


@dataclass
class _Job:
    """One running command from --exec."""

    process: Any
    record: dict[str, Any]
    deadline: float
    #: Signals sent so far: 0, then SIGTERM at the deadline, then SIGKILL.
    stage: int = 0
    timed_out: bool = False
    killed: bool = False


class _Runner:
    """--exec: one process per event, at most `limit` at once, never through a shell; the
    reader never waits for them (events queue, and beyond MAX_WAITING are dropped and counted)."""

    def __init__(self, argv: list[str], limit: int, timeout: float, unknown: bool, out) -> None:  # noqa: ANN001
        import os  # noqa: PLC0415

        self.argv = argv
        self.limit = limit
        self.timeout = timeout
        self.unknown = unknown
        self.out = out
        self.running: list[_Job] = []
        self.waiting: deque[tuple[dict[str, Any], bytes | None]] = deque()
        #: events: what --exec was for; each one is started or dropped, never both, never neither.
        self.events = self.started = self.dropped = self.failed = self.timed_out = 0
        self._environment = dict(os.environ)

    @property
    def busy(self) -> bool:
        return bool(self.waiting or self.running)

    def submit(self, record: dict[str, Any], raw: bytes | None) -> None:
        from rtppctl.ops.listen import fires_exec  # noqa: PLC0415

        if not fires_exec(record, unknown=self.unknown):
            return
        self.events += 1
        if len(self.waiting) >= MAX_WAITING:
            self.dropped += 1
            return
        self.waiting.append((record, raw))
        self.pump()

    def pump(self) -> None:
        """Reap what ended, signal what ran out of time, start what waits while slots are free."""
        now = time.monotonic()
        still = []
        for job in self.running:
            code = job.process.poll()
            if code is not None:
                self._ended(job, code)
                continue
            if job.stage == 0 and now >= job.deadline:
                job.timed_out = True
                self._signal(job, signal.SIGTERM)
            elif job.stage == 1 and now >= job.deadline + EXEC_GRACE:
                self._signal(job, signal.SIGKILL)
            still.append(job)
        self.running = still
        while self.waiting and len(self.running) < self.limit:
            self._start(*self.waiting.popleft())

    def _start(self, record: dict[str, Any], raw: bytes | None) -> None:
        import subprocess  # noqa: PLC0415

        from rtppctl.ops.listen import exec_environment  # noqa: PLC0415

        self.started += 1
        try:
            # A group of its own: a timeout or a second Ctrl-C stops what the command started too.
            process = subprocess.Popen(self.argv, env={**self._environment, **exec_environment(record, raw)},
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            self.failed += 1
            self.out.warn(f"--exec cannot run {self.argv[0]!r}: {getattr(exc, 'strerror', None) or exc}")
            return
        self.running.append(_Job(process, record, time.monotonic() + self.timeout))

    def _signal(self, job: _Job, number: int) -> None:
        import os  # noqa: PLC0415

        job.stage = 1 if number == signal.SIGTERM else 2
        try:
            os.killpg(job.process.pid, number)
        except (ProcessLookupError, PermissionError):
            pass  # the group is gone already; the next poll reaps the command

    def _ended(self, job: _Job, code: int) -> None:
        record = job.record
        event = f"the {record['type']} event at {record['time']:.3f}"
        if job.timed_out:
            self.failed += 1
            self.timed_out += 1
            self.out.warn(f"--exec ran longer than --exec-timeout {self.timeout:g} s for {event}: stopped")
        elif job.killed:
            self.failed += 1
        elif code != 0:
            self.failed += 1
            self.out.warn(f"--exec exited {code} for {event}")

    def drain(self, stop: _Stop, *, drop_waiting: bool) -> None:
        """At the end: run what waits (unless interrupted or `drop_waiting`: dropped then), wait for
        what runs, each within its --exec-timeout; a second signal kills what runs."""
        told = False
        while self.busy:
            if (stop.signals or drop_waiting) and self.waiting:
                self.dropped += len(self.waiting)
                self.waiting.clear()
            if stop.signals >= 2:
                left = [job for job in self.running if not job.killed]
                for job in left:
                    job.killed = True
                    self._signal(job, signal.SIGKILL)
                if left:
                    self.out.warn(f"stopped {len(left)} command(s) from --exec before they ended")
            elif stop.signals and self.running and not told:
                told = True
                self.out.status(f"waiting up to {self.timeout:g} s for {len(self.running)} command(s) from --exec; "
                                "Ctrl-C or SIGTERM again stops them")
            self.pump()
            if self.busy:
                time.sleep(0.02)
