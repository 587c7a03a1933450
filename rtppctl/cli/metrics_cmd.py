"""`metrics`: the relays as Prometheus metrics, printed once, written to a file, or served over HTTP."""

from __future__ import annotations

from typing import Annotated

import typer

from rtppctl.cli.common import EverySetOption, TargetOption, finite, observed_members, run_context
from rtppctl.proto import limits
from rtppctl.proto.errors import ExitCode


def metrics(
    ctx: typer.Context,
    target: TargetOption = None,
    set_id: EverySetOption = None,
    budget: Annotated[float, typer.Option("--budget", metavar="SECONDS", min=limits.MIN_SCRAPE_BUDGET, max=limits.MAX_SCRAPE_BUDGET, callback=finite,
                                          help="The most one scrape may take; a relay not done by then is down.")] = limits.DEFAULT_SCRAPE_BUDGET,
    output: Annotated[str | None, typer.Option("--output", "-o", metavar="FILE", show_default=False,
                                               help="Write the exposition to FILE, atomically (node_exporter's textfile collector).")] = None,
    serve: Annotated[str | None, typer.Option("--serve", metavar="[HOST:]PORT", show_default=False,
                                              help="Serve GET /metrics over HTTP on PORT (host default 127.0.0.1; [::1]:PORT for IPv6) until Ctrl-C or SIGTERM.")] = None,
) -> int:
    """The relays as Prometheus metrics: up, health state, weight, probe round trip, version and capabilities, the relay's own counters (G) and the session ledger's calls.

    Every node (default: every node of every configured set; --set ID: that set; -t: those relays) is asked at once (V, VF, I, G) over a connection of its own; a relay that has not answered when --budget runs out is up 0, never a hung scrape. Only an observation: no health changes, nothing written to the ledger. The metric names are listed in the README.

    Prints the exposition once and exits 0 when every relay answered, 4 when any did not; -o writes it to FILE instead (no reader ever sees half a file) and says so on stderr. --serve answers GET /metrics with a fresh scrape each time (requests that overlap share one), logs requests only with -v, and ends on Ctrl-C or SIGTERM with exit 130. --json prints one object instead of the exposition.

    Examples:

      rtppctl metrics

      rtppctl metrics --set 1 -o /var/lib/node_exporter/textfile/rtppctl.prom

      rtppctl metrics --serve 9100

      rtppctl metrics --serve '[::1]:9100' --budget 2
    """
    from rtppctl import ops  # noqa: PLC0415
    from rtppctl.ops.metrics import Scraper, metrics as scrape_once, serve as serve_metrics  # noqa: PLC0415

    s = run_context(ctx)
    out = s.output
    if serve is not None:
        if output is not None:
            raise typer.BadParameter("--serve answers over HTTP: leave -o out", param_hint="--serve")
        from rtppctl.monitoring.prometheus import parse_serve_address  # noqa: PLC0415

        host, port = parse_serve_address(serve)
        scraper = Scraper(s.relays, observed_members(s, target, set_id), budget=budget)
        serve_metrics(scraper, host, port, log=out.note, warn=out.warn,
                      announce=lambda url: out.status(f"serving {url} ({_relays(len(scraper.members))}, "
                                                      f"budget {budget:g} s a scrape); Ctrl-C or SIGTERM stops"))
        raise KeyboardInterrupt  # the one "interrupted" line and exit 130, as listen ends on a signal

    destination = None if output in (None, "-") else output
    if destination is not None:
        from rtppctl.files import check_writable  # noqa: PLC0415

        check_writable(destination)
    scrape = scrape_once(s.relays, observed_members(s, target, set_id), budget=budget)
    for node in scrape.nodes:
        if not node.up:
            error = node.error or "no answer"
            out.warn(error if node.node in error else f"{node.node}: {error}")
    data = {"nodes": [ops.as_dict(node) for node in scrape.nodes], "elapsed_s": scrape.elapsed_s,
            "budget_s": scrape.budget_s, "ok": scrape.ok}
    summary = f"{scrape.answered}/{_relays(len(scrape.nodes))} answered in {scrape.elapsed_s:.2f} s"
    if destination is not None:
        from rtppctl.files import write_atomically  # noqa: PLC0415
        from rtppctl.monitoring.prometheus import relay_exposition  # noqa: PLC0415

        write_atomically(destination, relay_exposition(scrape))
        out.status(f"wrote {destination}: {summary}")
        if out.json_mode:
            out.emit({**data, "output": destination})
    else:
        from rtppctl.cli.output import Verbatim  # noqa: PLC0415
        from rtppctl.monitoring.prometheus import relay_exposition  # noqa: PLC0415

        out.emit({**data, "output": None}, Verbatim(relay_exposition(scrape).decode("utf-8")))
    return 0 if scrape.ok else int(ExitCode.TRANSPORT)


def _relays(count: int) -> str:
    return f"{count} relay" if count == 1 else f"{count} relays"
