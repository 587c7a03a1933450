"""`rtppctl lb`: the module's load balancing over a relay set, explained and simulated.

Both commands read the set from the configuration (or from `--target` specs with their weights)
and call `rtppctl.ops.lb`; no relay is contacted.
"""

from __future__ import annotations

from typing import Annotated

import typer

from rtppctl.cli.common import PlainCommand, SetOption, run_context
from rtppctl.proto import limits

lb_app = typer.Typer(
    help="Predict and simulate which relay of a set the module picks for a call (no relay is contacted).",
    no_args_is_help=True,
)

SetTargetOption = Annotated[
    list[str] | None,
    typer.Option("--target", "-t", metavar="SPEC", show_default=False,
                 help="A node of an ad hoc set instead of the configured one, with its weight, e.g. "
                      "udp:10.0.0.5:22222=2 (repeatable, in set order)."),
]
DisableOption = Annotated[
    list[str] | None,
    typer.Option("--disable", metavar="URL", show_default=False,
                 help="Treat this relay as disabled, as the module does after a failure (repeatable)."),
]

_BAR_WIDTH = 30


def set_nodes(ctx: typer.Context, targets: list[str] | None, set_id: int | None, disable: list[str] | None):  # noqa: ANN202
    """The set's id and nodes, and the nodes to count as disabled: those given with --disable and,
    for a configured set, those out of selection in the state file (disabled, probing, off)."""
    s = run_context(ctx)
    members = s.relays.members(targets, set_id)
    disabled = list(disable or ())
    if not targets:
        for member in members:
            health = s.relays.node_info(member).health
            if not health.selectable and member.node.url not in disabled:
                disabled.append(member.node.url)
                s.output.status(f"{member.node.url} is {health.state.value} in the state file (rtppctl show): counted as disabled")
    return (members[0].set_id if members else set_id), [member.node for member in members], disabled


@lb_app.command(cls=PlainCommand)
def explain(
    ctx: typer.Context,
    call_id: Annotated[str, typer.Argument(metavar="CALL-ID", help="The Call-ID, as in the SIP message.")],
    set_id: SetOption = None,
    target: SetTargetOption = None,
    disable: DisableOption = None,
) -> None:
    """Which relay a Call-ID goes to, and why: the hash, the cut, each node's range and state.

    A configured set's relays count as disabled when the state file says they are out of
    selection (see rtppctl show); --disable adds more. No relay is contacted.

    Examples:

      rtppctl lb explain a84b4c76e66710@pc33.example.com

      rtppctl lb explain call-0001 -t udp:10.0.0.5:22222=2 -t udp:10.0.0.6:22222 --disable udp:10.0.0.5:22222

      rtppctl lb explain call-0001 --set 1 --json
    """
    from rtppctl.cli.output import Column, Table  # noqa: PLC0415
    from rtppctl.ops import as_dict, lb  # noqa: PLC0415

    s = run_context(ctx)
    set_id, nodes, disabled = set_nodes(ctx, target, set_id, disable)
    result = lb.explain(call_id, nodes, set_id=set_id, disabled=disabled)
    for warning in result.warnings:
        s.output.warn(warning)
    chosen = result.node or "no relay"
    summary = f"{result.call_id}: hash {result.hash}; {result.walk}; chosen: {chosen} ({result.reason})"
    table = Table(
        [Column("#", "right", keep=True), Column("relay", keep=True), Column("weight", "right", keep=True),
         Column("cuts", "right", keep=True), Column("state", keep=True), Column("chosen", keep=True)],
        [[index, node.url, node.weight, f"{node.range_start}-{node.range_end - 1}" if node.weight else "-",
          "enabled" if node.enabled else "disabled", "<-" if node.chosen else ""]
         for index, node in enumerate(result.nodes)],
        title=f"set {set_id}" if set_id is not None else "set given with --target",
    )
    s.output.emit(as_dict(result), summary, table)


@lb_app.command(cls=PlainCommand)
def simulate(
    ctx: typer.Context,
    calls: Annotated[int, typer.Option("--calls", metavar="N", min=1, max=limits.MAX_SIMULATED_CALLS, help="Generated Call-IDs to spread.")] = 100_000,
    call_ids: Annotated[str | None, typer.Option("--call-ids", metavar="FILE", show_default=False,
                                                 help="Real Call-IDs instead, one a line ('-' for stdin).")] = None,
    seed: Annotated[int, typer.Option("--seed", metavar="S", min=0, max=limits.MAX_INT64, help="Seed of the generated Call-IDs.")] = 1,
    set_id: SetOption = None,
    target: SetTargetOption = None,
    disable: DisableOption = None,
) -> None:
    """The share of calls each relay of a set gets, against the share its weight promises.

    Warns when the weights add up to more than 256 (the hash cannot reach every node) and when a
    weight-0 node is unreachable.

    Examples:

      rtppctl lb simulate --calls 1000000

      rtppctl lb simulate --call-ids callids.txt --set 1 --json

      rtppctl lb simulate -t udp:10.0.0.5:22222=3 -t udp:10.0.0.6:22222=1 --disable udp:10.0.0.5:22222
    """
    from rtppctl.cli.output import Column, Table  # noqa: PLC0415
    from rtppctl.ops import as_dict, lb  # noqa: PLC0415

    s = run_context(ctx)
    set_id, nodes, disabled = set_nodes(ctx, target, set_id, disable)
    if call_ids is not None:
        from rtppctl.files import read_input  # noqa: PLC0415

        text, source = read_input(call_ids)
        stream = (line for line in text.splitlines() if line.strip())
        result = lb.simulate(stream, nodes, set_id=set_id, disabled=disabled, source=source)
    else:
        result = lb.simulate(lb.generated_call_ids(calls, seed), nodes, set_id=set_id, disabled=disabled, seed=seed)
    for warning in result.warnings:
        s.output.warn(warning)
    top = max((node.share for node in result.nodes), default=0.0) or 1.0
    table = Table(
        [Column("relay", keep=True), Column("weight", "right", keep=True), Column("expected", "right", keep=True),
         Column("calls", "right", keep=True), Column("share", "right", keep=True), Column("", crop=True)],
        [[node.url, node.weight, f"{node.expected_share:.1%}", node.calls, f"{node.share:.1%}",
          "█" * round(_BAR_WIDTH * node.share / top)] for node in result.nodes],
        title=f"{result.calls} calls ({result.source}) over "
              + (f"set {set_id}" if set_id is not None else "the set given with --target"),
        caption=f"{result.unassigned} calls found no enabled relay" if result.unassigned else None,
    )
    s.output.emit(as_dict(result), table)
