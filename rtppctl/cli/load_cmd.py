"""`load`: offer, answer and delete cycles over a relay set, measured: rate, latency, shares, limits."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from rtppctl.cli.common import SetOption, TargetOption, finite, run_context
from rtppctl.proto import limits
from rtppctl.proto.errors import ExitCode

if TYPE_CHECKING:
    from rtppctl.ops import load as L  # noqa: N812


def load(
    ctx: typer.Context,
    target: TargetOption = None,
    set_id: SetOption = None,
    calls: Annotated[int | None, typer.Option("--calls", metavar="N", min=1, max=limits.LOAD_MAX_CALLS, show_default=False,
                                              help=f"Calls to make (default {limits.LOAD_DEFAULT_CALLS} without --duration).")] = None,
    duration: Annotated[float | None, typer.Option("--duration", metavar="SECONDS", min=limits.LOAD_MIN_DURATION, max=limits.LOAD_MAX_DURATION,
                                                   callback=finite, show_default=False,
                                                   help="Start calls for this long (with --find-max: each step's length, default 5).")] = None,
    rate: Annotated[float | None, typer.Option("--rate", metavar="CALLS/S", min=limits.LOAD_MIN_RATE, max=limits.LOAD_MAX_RATE, callback=finite,
                                               show_default=False,
                                               help="Start this many calls a second, whatever the replies (open loop); default: as fast as the window allows.")] = None,
    hold: Annotated[float, typer.Option("--hold", metavar="SECONDS", min=0.0, max=limits.LOAD_MAX_HOLD, callback=finite,
                                        help="Hold each session this long between its answer and its delete.")] = 0.0,
    flags: Annotated[str, typer.Option("--flags", metavar="FLAGS", help="The module's flags for the offer and the answer, as offer --flags.")] = "",
    window: Annotated[int, typer.Option("--window", metavar="N", min=1, max=limits.MAX_WINDOW,
                                        help="Requests in flight per relay at most.")] = limits.DEFAULT_WINDOW,
    workers: Annotated[int, typer.Option("--workers", metavar="N", min=1, max=limits.LOAD_MAX_WORKERS,
                                         help="Processes sending at once, each with every Nth call (for several relays and spare cores).")] = 1,
    seed: Annotated[int | None, typer.Option("--seed", metavar="N", min=0, max=limits.MAX_INT64, show_default=False,
                                             help="Make the same Call-IDs and tags as an earlier run (default: random, reported).")] = None,
    failover: Annotated[bool, typer.Option("--failover", help="Move the calls of a relay that fails to the module's next choice, as the module does.")] = False,
    find_max: Annotated[bool, typer.Option("--find-max", help="Raise the rate step by step; report the highest rate whose p99 and failures stay under --max-p99 and --max-errors.")] = False,
    start_rate: Annotated[float | None, typer.Option("--start-rate", metavar="CALLS/S", min=limits.LOAD_MIN_RATE, max=limits.LOAD_MAX_RATE, callback=finite,
                                                     show_default=False, help=f"With --find-max: the first step's rate (default {limits.LOAD_DEFAULT_START_RATE:g}).")] = None,
    step: Annotated[float | None, typer.Option("--step", metavar="CALLS/S", min=limits.LOAD_MIN_RATE, max=limits.LOAD_MAX_RATE, callback=finite,
                                               show_default=False, help=f"With --find-max: the rate added per step (default {limits.LOAD_DEFAULT_STEP:g}).")] = None,
    steps: Annotated[int | None, typer.Option("--steps", metavar="N", min=1, max=limits.LOAD_MAX_STEPS, show_default=False,
                                              help=f"With --find-max: steps at most (default {limits.LOAD_DEFAULT_STEPS}).")] = None,
    max_p99: Annotated[float | None, typer.Option("--max-p99", metavar="MS", min=0.001, max=limits.LOAD_MAX_P99_MS, callback=finite,
                                                  show_default=False, help=f"With --find-max: a step passes while every command's p99 stays at or under this (default {limits.LOAD_DEFAULT_MAX_P99_MS:g}).")] = None,
    max_errors: Annotated[float | None, typer.Option("--max-errors", metavar="PCT", min=0.0, max=100.0, callback=finite,
                                                     show_default=False, help=f"With --find-max: ... and its failed calls at or under this percentage (default {limits.LOAD_DEFAULT_MAX_ERRORS_PCT:g}).")] = None,
    interval: Annotated[float, typer.Option("--interval", metavar="SECONDS", min=limits.LOAD_MIN_INTERVAL, max=limits.LOAD_MAX_INTERVAL, callback=finite,
                                            help="Seconds between progress objects (--json).")] = limits.LOAD_DEFAULT_INTERVAL,
) -> int:
    """Load a relay set with calls: offer, answer and delete, as offer, answer and unforce send them.

    Each call is a U with a caller's SDP, an L with the callee's once the U is answered, and a D once the L is answered (after --hold). Its relay is the module's weighted choice for its Call-ID over the set's nodes and their health in the state store; the report shows each relay's share of calls against its weight. Call-IDs and tags are reproducible with --seed. Latency is measured from each request's scheduled time (no coordinated omission) and reported per command as p50/p90/p99/p99.9/max, with calls/s, errors by E<n> and by timeout, resends, and each relay's own command counters before and after.

    Like check, load only observes: no health change, no ledger entry. A relay that fails during the run is failed for this run only and named; with --failover its calls go to the module's next choice. Every session made is deleted before the run ends, also on Ctrl-C or SIGTERM (exit 130 afterwards) and when a relay dies (its sessions are deleted at the end if it answers again, else named).

    Exit codes: 0 every call completed; 4 a call failed or was missed (due under --duration and never started: the rate was not reached), or a relay failed; with --find-max 0 when a step passed, 4 when even the first failed.

    Examples:

      rtppctl load --calls 10000

      rtppctl load --set 1 --rate 500 --duration 60 --hold 30

      rtppctl load -t udp:10.0.0.5:22222 --find-max --step 500 --max-p99 20

      rtppctl load --json --rate 200 --duration 10 | jq 'select(.type=="summary")'
    """
    from rtppctl.ops import as_dict  # noqa: PLC0415
    from rtppctl.ops import load as L  # noqa: PLC0415, N812 - the run itself; its bounds are in limits
    from rtppctl.ops.interrupts import Interrupts  # noqa: PLC0415

    s = run_context(ctx)
    fm = _find_max(find_max, calls, rate, duration, start_rate, step, steps, max_p99, max_errors)
    if fm is None and calls is None and duration is None:
        calls = limits.LOAD_DEFAULT_CALLS
    settings = L.LoadSettings(
        calls=None if fm else calls, duration_s=None if fm else duration, rate=None if fm else rate, hold_s=hold,
        flags=flags, window=window, workers=workers, seed=L.new_seed() if seed is None else seed, failover=failover,
        interval_s=interval, notify_socket=s.config.rtpp_notify_socket, find_max=fm,
        command_seconds=s.effective_timeout * s.effective_retries,
    )
    members = s.relays.members(target, set_id)
    out = s.output
    with _Progress(out, interval) as progress, Interrupts() as interrupts:
        report = L.run_load(s.relays, members, settings, interrupted=lambda: interrupts.signals > 0 or progress.gone,
                            on_progress=progress.update)
        if progress.gone:
            raise BrokenPipeError  # the reader went away: every session is deleted, nothing more to say
        progress.close(as_dict(report), *_views(report))
    if report.interrupted:
        raise KeyboardInterrupt  # every session is deleted: now the usual one line and exit 130
    return int(ExitCode.OK) if report.ok else int(ExitCode.TRANSPORT)


def _find_max(on: bool, calls: int | None, rate: float | None, duration: float | None, start_rate: float | None,
              step: float | None, steps: int | None, max_p99: float | None, max_errors: float | None) -> L.FindMax | None:
    given = {"--start-rate": start_rate, "--step": step, "--steps": steps, "--max-p99": max_p99, "--max-errors": max_errors}
    if not on:
        named = [name for name, value in given.items() if value is not None]
        if named:
            raise typer.BadParameter("goes with --find-max only", param_hint=named[0])
        return None
    for name, value in (("--calls", calls), ("--rate", rate)):
        if value is not None:
            raise typer.BadParameter("--find-max sets the rate and the calls of each step: leave it out", param_hint=name)
    from rtppctl.ops import load as L  # noqa: PLC0415, N812

    return L.FindMax(
        start_rate=limits.LOAD_DEFAULT_START_RATE if start_rate is None else start_rate,
        step=limits.LOAD_DEFAULT_STEP if step is None else step, steps=limits.LOAD_DEFAULT_STEPS if steps is None else steps,
        step_s=limits.LOAD_DEFAULT_STEP_SECONDS if duration is None else duration,
        max_p99_ms=limits.LOAD_DEFAULT_MAX_P99_MS if max_p99 is None else max_p99,
        max_errors_pct=limits.LOAD_DEFAULT_MAX_ERRORS_PCT if max_errors is None else max_errors,
    )


class _Progress:
    """The run's progress: NDJSON objects with --json; a Rich progress bar (calls/s, p99) on a
    terminal, gone once the summary is printed; nothing in a pipe, where the summary is the data.

    The renderer has no progress bar of its own yet (a note for cli/output.py): this is the one
    place load looks at the output mode."""

    def __init__(self, output: Any, interval: float) -> None:
        self.output = output
        self.stream = output.stream([]) if output.json_mode else None
        self.bar: Any = None
        self.task: Any = None
        #: The reader of the NDJSON went away (`| head`): the run stops, as on Ctrl-C.
        self.gone = False

    def __enter__(self) -> _Progress:
        if self.stream is not None:
            self.stream.__enter__()
        return self

    def update(self, record: dict[str, Any]) -> None:
        if self.stream is not None:
            if not self.gone:
                try:
                    self.stream.event(record, ())
                except BrokenPipeError:
                    self.gone = True
            return
        if not self.output.rich:
            return
        if self.bar is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: PLC0415

            self.bar = Progress(
                TextColumn("{task.description}"), BarColumn(bar_width=16), MofNCompleteColumn(),
                TextColumn("{task.fields[per_s]} calls/s  p99 {task.fields[p99]} ms  {task.fields[failed]} failed"),
                TimeElapsedColumn(), console=self.output.console, auto_refresh=False, transient=True,
            )
            self.bar.start()
        description = "load" if record["step"] is None else f"step {record['step']} at {record['rate']:g}/s"
        over = record["calls_started"]
        fields = {"per_s": f"{record['calls_per_s']:g}", "failed": record["calls_failed"],
                  "p99": "-" if record["p99_ms"] is None else f"{record['p99_ms']:.2f}"}
        if self.task is None or record["step"] != getattr(self, "_step", None):
            if self.task is not None:
                self.bar.remove_task(self.task)
            self._step = record["step"]
            self._base = over if record["step"] is not None else 0
            self.task = self.bar.add_task(description, total=record["calls_planned"], **fields)
        self.bar.update(self.task, completed=over - self._base, description=description, **fields)
        self.bar.refresh()

    def close(self, summary: dict[str, Any], *views: Any) -> None:
        self._stop_bar()
        if self.stream is not None:
            self.stream.close(summary)
        else:
            self.output.emit(summary, *views)

    def _stop_bar(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def __exit__(self, *exc: object) -> None:
        self._stop_bar()
        if self.stream is not None:
            self.stream.__exit__(*exc)


def _ms(value: float | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def _views(report: L.LoadReport) -> list[Any]:
    from rtppctl.cli.output import Column, Lines, Table  # noqa: PLC0415

    views: list[Any] = []
    rows = []
    for command in report.commands:
        latency = command.latency_ms or {}
        failures = sum(command.errors.values()) + command.timeouts + command.unreachable + command.malformed
        rows.append([f"{command.name} ({command.command})", command.sent, failures,
                     *(_ms(latency.get(key)) for key in ("p50", "p90", "p99", "p99.9", "max"))])
    views.append(Table(
        [Column("command", keep=True), Column("sent", "right", keep=True), Column("failed", "right", keep=True),
         *(Column(h, "right", keep=True) for h in ("p50", "p90", "p99", "p99.9", "max"))],
        rows, title="latency in ms, from each request's scheduled time"))
    rows = []
    for node in report.nodes:
        result = "disabled" if not node.enabled else "failed" if node.failure else "ok"
        rows.append([node.node, node.weight, f"{100 * node.expected_share:.1f}", node.calls, f"{100 * node.share:.1f}",
                     node.sessions_peak, result])
    views.append(Table(
        [Column("relay", keep=True), Column("weight", "right", keep=True), Column("want%", "right", keep=True),
         Column("calls", "right", keep=True), Column("got%", "right", keep=True), Column("peak", "right", keep=True),
         Column("result", keep=True)],
        rows, title="relays: each one's share of calls against its weight; peak sessions held"))
    rows = []
    for node in report.nodes:
        during = node.relay_during or {}
        rows.append([node.node, node.client["replies"], during.get("ncmds_rcvd"), node.client["error_replies"],
                     during.get("ncmds_errs"), node.client["retransmits"], during.get("ncmds_rcvd_ndups")])
    views.append(Table(
        [Column("relay", keep=True), Column("replies", "right", keep=True), Column("rcvd", "right", keep=True),
         Column("E<n>", "right", keep=True), Column("errs", "right", keep=True), Column("resent", "right", keep=True),
         Column("dups", "right", keep=True)],
        rows, title="commands: replies rtppctl got against what the relay counted (G: rcvd, errs, dups)"))
    if report.find_max is not None:
        rows = [[s.step, f"{s.rate:g}", s.calls_started, s.calls_failed + s.calls_missed, f"{s.calls_per_s:g}",
                 _ms(s.p99_ms), f"{s.errors_pct:g}", "pass" if s.passed else "fail"] for s in report.find_max.steps]
        views.append(Table(
            [Column("step", "right", keep=True), Column("rate", "right", keep=True), Column("calls", "right", keep=True),
             Column("failed", "right", keep=True), Column("calls/s", "right", keep=True), Column("p99", "right", keep=True),
             Column("err%", "right", keep=True), Column("result", keep=True)],
            rows, title=f"--find-max: p99 at most {report.find_max.max_p99_ms:g} ms, "
                        f"failed calls at most {report.find_max.max_errors_pct:g}%"))
    lines = []
    if report.errors:
        lines.append("errors: " + ", ".join(f"{kind} x{count}" for kind, count in report.errors.items()))
    lines.extend(report.limits)
    if report.find_max is not None:
        lines.extend(f"step {s.step} ({s.rate:g} calls/s) failed: {s.reason}" for s in report.find_max.steps
                     if s.reason)
    for left in report.sessions_left[:5]:
        lines.append(f"may remain on {left['node']}: rtppctl unforce -t {left['node']} --call-id {left['call_id']} "
                     f"--from-tag {left['from_tag']} --to-tag {left['to_tag']}")
    if report.sessions_left_count > 5:
        lines.append(f"... and {report.sessions_left_count - 5} more sessions (--json lists them)")
    lines.extend(report.notes)
    lines.append(report.verdict)
    views.append(Lines(tuple(lines)))
    return views
