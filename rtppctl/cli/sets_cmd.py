"""show, enable, sessions: relay sets, their health and the session ledger. Each parses options,
calls `rtppctl.ops.sets`, renders."""

import time
from typing import Annotated

import typer

from rtppctl.cli.common import SetOption, finite, run_context
from rtppctl.proto import limits
from rtppctl.proto.errors import ExitCode


def show(
    ctx: typer.Context,
    set_id: Annotated[int | None, typer.Option("--set", metavar="ID", min=0, max=limits.MAX_SET_ID, help="Only this set (default: every set).", show_default=False)] = None,
    probe: Annotated[bool, typer.Option("--probe", help="Probe every node first (V and the VF questions), as the module does; updates their health.")] = False,
    watch: Annotated[float | None, typer.Option("--watch", metavar="SECONDS", min=limits.MIN_WATCH_SECONDS, max=limits.MAX_WATCH_SECONDS, callback=finite, help="Refresh every SECONDS until Ctrl-C, and print each state change as an E_RTPPROXY_STATUS event.", show_default=False)] = None,
) -> int:
    """Relay sets and their nodes: weight, advertised address, state, capabilities, round trip, calls.

    The module's rtpproxy_show, with what it leaves out. State is enabled, disabled (probed again after rtpproxy_disable_tout), probing (enable 2) or off (enable 0). Health is kept between runs in the state file (--state). Exits 4 when --probe finds a node that does not answer.

    Examples:

      rtppctl show

      rtppctl show --set 1 --probe

      rtppctl show --watch 5 --probe --json     # status events as NDJSON
    """
    from rtppctl import ops  # noqa: PLC0415
    from rtppctl.ops import sets as ops_sets  # noqa: PLC0415

    s = run_context(ctx)
    out = s.output
    if watch is None:
        result = ops_sets.show(s.relays, set_id, probe=probe)
        failed = [n for state in result for n in state.nodes if n.probe_error and n.state != "off"]
        out.emit({"sets": [ops.as_dict(state) for state in result], "ok": not failed}, *_tables(result, probe))
        return int(ExitCode.TRANSPORT) if failed else 0
    with out.watch() as view:
        while True:
            # The status events of this refresh: its own probes' and, read from the state store,
            # the changes other processes made.
            with s.relays.capturing_status() as events:
                result = ops_sets.show(s.relays, set_id, probe=probe)
            for event in events:
                record = event.as_record()
                view.event(record, _status_line(record))
            view.update(*_tables(result, probe))
            time.sleep(watch)


def _status_line(record: dict) -> str:
    when = time.strftime("%H:%M:%S", time.localtime(record["time"]))
    return f"{when}  {record['socket']} (set {record['set']}) {record['status']} ({record['state']}): {record['reason']}"


def _state_text(node) -> str:  # noqa: ANN001
    if node.recheck_in is None:
        return node.state
    return f"{node.state}, probed again in {round(node.recheck_in)} s" if node.recheck_in >= 1 else f"{node.state}, probed at next use"


def _tables(result, probe: bool) -> list:  # noqa: ANN001
    from rtppctl.cli.output import Column, Table  # noqa: PLC0415

    columns = [Column("relay", keep=True), Column("weight", "right", keep=True), Column("advertised", keep=True),
               Column("state"), Column("caps", "right", keep=True), Column("rtt ms", "right", keep=True),
               Column("calls", "right", keep=True)]
    if probe:
        columns.append(Column("probe"))
    tables = []
    for state in result:
        rows = []
        for node in state.nodes:
            caps = len(node.capabilities) if node.capabilities is not None else "?"
            rtt = f"{node.last_rtt_ms:.3f}" if node.last_rtt_ms is not None else None
            row = [node.url, node.weight, node.advertised, _state_text(node), caps, rtt, node.sessions]
            if probe:
                row.append(node.probe_error or "ok")
            rows.append(row)
        title = f"set {state.set_id}" + (" (default)" if state.default else "")
        tables.append(Table(columns, rows, title=title))
    return tables


def enable(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(metavar="URL", help="The node's url exactly as configured, without |advertised or =weight.")],
    mode: Annotated[int, typer.Argument(metavar="0|1|2", min=0, max=2, help="0: off for good; 1: on at once (no probe); 2: probing mode (probed after rtpproxy_disable_tout, back when it answers).")],
    set_id: SetOption = None,
) -> None:
    """Take a relay out of selection or put it back (the module's rtpproxy_enable).

    Without --set, every set holding URL changes, as in the module. Prints the status event each change raises, the right way round (the module's MI reports it inverted).

    Examples:

      rtppctl enable udp:10.0.0.5:22222 0        # drain: no new calls

      rtppctl enable udp:10.0.0.5:22222 1 --set 1

      rtppctl enable udp:10.0.0.5:22222 2 --json
    """
    from rtppctl import ops  # noqa: PLC0415
    from rtppctl.ops import sets as ops_sets  # noqa: PLC0415

    s = run_context(ctx)
    if s.relays.state_path is None:
        # The change would last as long as this process: no later command would see it.
        raise typer.BadParameter("enable needs the state file; with --state none the change would end with this run",
                                 param_hint="--state")
    changes = ops_sets.enable(s.relays, url, mode, set_id)
    lines = []
    for change in changes:
        event = f"; E_RTPPROXY_STATUS {change.status}" if change.status else ""
        lines.append(f"{change.url} in set {change.set_id}: {change.before} -> {change.after}{event}")
    from rtppctl.cli.output import Lines  # noqa: PLC0415

    s.output.emit({"changes": [ops.as_dict(c) for c in changes]}, Lines(tuple(lines)))


def sessions(
    ctx: typer.Context,
    prune: Annotated[bool, typer.Option("--prune", help="Drop calls unused longer than ledger_ttl, and calls their relay no longer has (asked with a harmless Q).")] = False,
) -> None:
    """The session ledger: which relay holds each call rtppctl set up, its tags, ports and codecs.

    Answer, unforce and a call's later commands go to the node in the ledger, even if health or weights changed since. Kept in the state file (--state).

    Examples:

      rtppctl sessions

      rtppctl sessions --prune --json
    """
    from rtppctl import ops  # noqa: PLC0415
    from rtppctl.cli.output import Column, Table  # noqa: PLC0415
    from rtppctl.ops import sets as ops_sets  # noqa: PLC0415

    s = run_context(ctx)
    result = ops_sets.sessions(s.relays, prune=prune)
    now = time.time()
    rows = [
        [e.call_id, e.from_tag, e.to_tag, e.set_id, e.node_url,
         " ".join(f"{st.medianum}:{st.port}" for st in e.streams) or None, _age(now - e.last_used_at)]
        for e in result.sessions
    ]
    views: list = [Table(
        [Column("call-id", keep=True), Column("from-tag"), Column("to-tag"), Column("set", "right", keep=True),
         Column("relay", keep=True), Column("ports"), Column("idle", "right", keep=True)],
        rows, caption=f"{len(rows)} call(s) in {s.relays.state_shown or 'no state file (--state none)'}",
    )]
    for pruned in result.pruned:
        views.append(f"pruned {pruned.call_id} on {pruned.node}: {pruned.reason}")
    for call_id, why in result.unchecked.items():
        views.append(f"kept {call_id}: could not ask its relay ({why})")
    data = {
        "sessions": [ops.as_dict(e) for e in result.sessions],
        "pruned": [ops.as_dict(p) for p in result.pruned],
        "unchecked": result.unchecked,
        "state": s.relays.state_shown,
    }
    s.output.emit(data, *views)


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"
