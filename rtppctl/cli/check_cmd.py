"""`check`: real RTP both ways through every relay, for people, scripts, Nagios and Prometheus."""

from typing import Annotated

import typer

from rtppctl.cli.common import EverySetOption, TargetOption, finite, observed_members, run_context
from rtppctl.proto import limits
from rtppctl.proto.errors import ExitCode


def check(
    ctx: typer.Context,
    target: TargetOption = None,
    set_id: EverySetOption = None,
    packets: Annotated[int, typer.Option("--packets", metavar="N", min=limits.MIN_CHECK_PACKETS, max=limits.MAX_CHECK_PACKETS,
                                         help="RTP packets each way per relay.")] = limits.DEFAULT_CHECK_PACKETS,
    ptime: Annotated[int, typer.Option("--ptime", metavar="MS", min=limits.MIN_CHECK_PTIME_MS, max=limits.MAX_CHECK_PTIME_MS,
                                       help="Milliseconds of audio per packet (PCMU), the pace of sending.")] = limits.DEFAULT_CHECK_PTIME_MS,
    late: Annotated[float, typer.Option("--late", metavar="MS", min=0.0, max=limits.MAX_CHECK_LATE_MS, callback=finite,
                                        help="A packet slower than this one way is counted late.")] = limits.DEFAULT_CHECK_LATE_MS,
    max_loss: Annotated[float, typer.Option("--max-loss", metavar="PCT", min=0.0, max=100.0, callback=finite,
                                            help="A direction losing more than this percentage fails its relay.")] = limits.DEFAULT_CHECK_MAX_LOSS_PCT,
    deadline: Annotated[float, typer.Option("--deadline", metavar="SECONDS", min=limits.MIN_CHECK_DEADLINE, max=limits.MAX_CHECK_DEADLINE,
                                            callback=finite, help="The whole run's limit (the plugin timeout under --nagios).")] = limits.DEFAULT_CHECK_DEADLINE,
    parallel: Annotated[int, typer.Option("--parallel", metavar="N", min=1, max=limits.MAX_CHECK_PARALLEL,
                                          help="Relays checked at once.")] = limits.DEFAULT_CHECK_PARALLEL,
    nagios: Annotated[bool, typer.Option("--nagios", help="Speak the monitoring-plugin contract: one status line with perfdata, exit 0-3.")] = False,
    warning: Annotated[str | None, typer.Option("--warning", "-w", metavar="THRESHOLDS", show_default=False,
                                                help="With --nagios: loss=RANGE,latency=RANGE,jitter=RANGE for WARNING.")] = None,
    critical: Annotated[str | None, typer.Option("--critical", "-c", metavar="THRESHOLDS", show_default=False,
                                                 help="With --nagios: the same for CRITICAL.")] = None,
    prometheus: Annotated[str | None, typer.Option("--prometheus", metavar="FILE", show_default=False,
                                                   help="Also write the figures in the Prometheus text format, atomically (node-exporter textfile collector).")] = None,
) -> int:
    """Prove that each relay carries a call's media, both ways, with real RTP.

    For every node (default: every configured node, whatever its health; --set N: that set; -t: those relays), a fresh call is offered and answered as the module would, two local parties send --packets RTP packets to each other through the relay, and the session is deleted whatever happens (Ctrl-C and --deadline included). Per direction: packets sent and received, loss, duplicates, reordering, late packets, one-way latency, RFC 3550 jitter, whether the relay latched to the real source port, and the relay's own counters, so a loss is placed before the relay or inside it. A check only observes: no health change, no ledger entry, no failover.

    Exit codes: 0 every relay passes, 4 any relay fails or did not finish. With --nagios: 0 OK, 1 WARNING, 2 CRITICAL (a relay fails, or a value is over a critical threshold), 3 UNKNOWN (anything else: a usage or config error, an interruption). Nagios reserves -t for the timeout; here -t names a relay, as everywhere in rtppctl, and --deadline is the timeout. Thresholds use the plugin range syntax [@][start:][end] and apply per relay to the worse direction: loss in %, latency (average one-way) and jitter in ms.

    Examples:

      rtppctl check

      rtppctl check -t udp:10.0.0.5:22222 --packets 200 --json

      rtppctl check --set 1 --nagios -w loss=1,latency=50 -c loss=5,latency=150

      rtppctl check --prometheus /var/lib/node_exporter/rtppctl_check.prom
    """
    from rtppctl.ops.check import CheckSettings, check as run_check  # noqa: PLC0415
    from rtppctl.ops.interrupts import Interrupts  # noqa: PLC0415

    s = run_context(ctx)
    if nagios and s.json:
        raise typer.BadParameter("--nagios prints the plugin's own lines: leave --json out", param_hint="--nagios")
    if not nagios and (warning or critical):
        raise typer.BadParameter("thresholds need --nagios", param_hint="--warning/--critical")
    thresholds = _thresholds(warning, critical) if nagios else ({}, {})
    if prometheus:
        from rtppctl.files import check_writable  # noqa: PLC0415

        check_writable(prometheus)  # before any call is made
    members = observed_members(s, target, set_id)
    settings = CheckSettings(packets, ptime, late, max_loss, deadline, parallel,
                             command_seconds=s.effective_timeout * s.effective_retries)
    with Interrupts() as interrupts:
        report = run_check(s.relays, members, settings, interrupted=lambda: interrupts.signals > 0)
    if prometheus:
        _write_prometheus(prometheus, report)
    if report.interrupted:
        raise KeyboardInterrupt  # every session is deleted: now the usual one line and exit 130
    if nagios:
        return _nagios(s, report, thresholds)
    _render(s, report)
    return 0 if report.ok else int(ExitCode.TRANSPORT)


def _thresholds(warning: str | None, critical: str | None) -> tuple[dict, dict]:
    from rtppctl.monitoring.nagios import parse_thresholds  # noqa: PLC0415

    return parse_thresholds(warning, "--warning"), parse_thresholds(critical, "--critical")


def _nagios(s, report, thresholds: tuple[dict, dict]) -> int:  # noqa: ANN001
    from rtppctl.monitoring.nagios import evaluate  # noqa: PLC0415
    from rtppctl.ops import as_dict  # noqa: PLC0415

    result = evaluate(as_dict(report), *thresholds)
    s.output.raw(result.text if result.text.endswith("\n") else result.text + "\n")
    return int(result.state)


def _write_prometheus(path: str, report) -> None:  # noqa: ANN001
    import time  # noqa: PLC0415

    from rtppctl.files import write_atomically  # noqa: PLC0415
    from rtppctl.monitoring.prometheus import check_exposition  # noqa: PLC0415
    from rtppctl.ops import as_dict  # noqa: PLC0415

    write_atomically(path, check_exposition(as_dict(report), time.time()))


def _render(s, report) -> None:  # noqa: ANN001
    from rtppctl.cli.output import Column, Lines, Table  # noqa: PLC0415
    from rtppctl.ops import as_dict  # noqa: PLC0415
    from rtppctl.ops.check import direction_words  # noqa: PLC0415

    rows = []
    notes = []
    for node in report.nodes:
        result = node.status if node.state in (None, "enabled") else f"{node.status} ({node.state})"
        if not node.directions:
            rows.append([node.node, None, None, None, None, None, result])
        for index, way in enumerate(node.directions):
            latency = way["latency_ms"]
            rows.append([
                node.node if index == 0 else "",
                "to callee" if way["direction"] == "caller-to-callee" else "to caller",
                f"{way['received']}/{way['sent']}",
                f"{way['loss_pct']:g}",
                f"{latency['min']:.2f}/{latency['avg']:.2f}/{latency['p99']:.2f}" if latency else None,
                f"{way['jitter_ms']:.2f}" if way["jitter_ms"] is not None else None,
                result if index == 0 else "",
            ])
            # Counts that are usually 0, said only when they are not (the table stays in 80 columns).
            odd = [f"{way[key]} {words}" for key, words in _ODD_COUNTS if way[key]]
            if odd:
                notes.append(f"{node.node}: {direction_words(way['direction'])}: {', '.join(odd)}")
            if way["latched"] is False:
                notes.append(f"{node.node}: {direction_words(way['direction'])}: media went to the port the SDP named: "
                             "the relay did not latch to the real source port")
        if node.reason:
            notes.append(f"{node.node}: {node.reason}")
    table = Table(
        [Column("relay", keep=True), Column("way", keep=True), Column("recv", "right", keep=True),
         Column("loss%", "right", keep=True), Column("ms min/avg/p99", "right", keep=True),
         Column("jitter", "right", keep=True), Column("result", keep=True)],
        rows,
    )
    s.output.emit(as_dict(report), table, Lines((*notes, report.verdict)))


_ODD_COUNTS = (("duplicates", "duplicated"), ("reordered", "reordered"), ("late", "late"),
               ("corrupted", "altered"), ("stray", "stray datagrams"))

