"""First relay commands: version, ping, info, raw. Each parses options, calls ops, renders."""


from typing import Annotated

import typer

from rtppctl.cli.common import SetOption, TargetOption, run_context
from rtppctl.cli.options import CallIdOption
from rtppctl.proto import limits
from rtppctl.proto.errors import ExitCode


def version(ctx: typer.Context, target: TargetOption = None, set_id: SetOption = None) -> int:
    """Protocol version (V) and every capability date (VF) of each relay of a set.

    Without --target, every node of the set (default: default_set), one table each. Exits 4 when any relay does not answer.

    Examples:

      rtppctl version -t udp:127.0.0.1:22222

      rtppctl version --set 1 --json
    """
    from rtppctl import ops  # noqa: PLC0415
    from rtppctl.cli.output import Column, Table  # noqa: PLC0415

    s = run_context(ctx)
    results = ops.version(s.relays, s.relays.members(target, set_id))
    tables = [
        Table(
            [Column("date", keep=True), Column("capability", keep=True), Column("supported"), Column("module"), Column("meaning")],
            [[c.date, c.name, c.supported, c.module_bit, c.meaning] for c in result.capabilities],
            title=f"{result.node}: protocol {result.version}",
        )
        for result in results
        if result.error is None  # a failed node is named on stderr
    ]
    failed = [r for r in results if r.error is not None]
    for result in failed:
        s.output.warn(result.error)
    s.output.emit({"relays": [ops.as_dict(r) for r in results], "ok": not failed}, *tables)
    return int(ExitCode.TRANSPORT) if failed else 0


def ping(
    ctx: typer.Context,
    target: TargetOption = None,
    set_id: SetOption = None,
    all_sets: Annotated[bool, typer.Option("--all", help="Every relay of every configured set.")] = False,
    count: Annotated[int, typer.Option("--count", "-c", metavar="N", min=1, max=limits.MAX_PING_COUNT, help="Version requests per relay.")] = 1,
) -> int:
    """Is each relay of a set reachable? Round-trip time, version and key capabilities.

    Exits 4 when any relay does not answer.

    Examples:

      rtppctl ping                        # the default set

      rtppctl ping --all --count 5

      rtppctl ping -t udp:10.0.0.5:22222 -t tcp:10.0.0.6:22222
    """
    from rtppctl import ops  # noqa: PLC0415
    from rtppctl.cli.output import Column, Table  # noqa: PLC0415
    from rtppctl.proto.command import MODULE_PROBE_ORDER  # noqa: PLC0415

    s = run_context(ctx)
    out = s.output
    results = ops.ping(s.relays, s.relays.members(target, set_id, all_sets=all_sets), count)
    # Narrow enough for 80 columns: the capability names and the version are in --json and in
    # `rtppctl version`; here their count says whether the relay has what the module probes for.
    probed = len(MODULE_PROBE_ORDER)
    table = Table(
        [Column("set", "right", keep=True), Column("relay", keep=True), Column("ok", keep=True), Column("recv", "right", keep=True),
         Column("rtt min/avg/max ms", "right", keep=True), Column("caps", "right", keep=True), Column("error")],
        [
            [r.set_id, r.node, "off" if r.off else r.reachable, f"{r.received}/{r.sent}", _rtt(r), f"{len(r.capabilities)}/{probed}" if r.reachable else None, r.error]
            for r in results
        ],
    )
    # A relay that is off was not asked (the operator took it out): not a failure of ping's.
    failed = [r for r in results if not r.reachable and not r.off]
    out.emit({"relays": [ops.as_dict(r) for r in results], "ok": not failed}, table)
    return int(ExitCode.TRANSPORT) if failed else 0


def _rtt(result) -> str | None:  # noqa: ANN001
    if result.rtt_avg_ms is None:
        return None
    return f"{result.rtt_min_ms:.3f}/{result.rtt_avg_ms:.3f}/{result.rtt_max_ms:.3f}"


def info(ctx: typer.Context, target: TargetOption = None, set_id: SetOption = None) -> int:
    """Session and packet counters of each relay of a set (I, and the global G statistics).

    Without --target, every node of the set (default: default_set). Exits 4 when any relay does not answer.

    Examples:

      rtppctl info

      rtppctl info -t tcp:127.0.0.1:22223 --json
    """
    from rtppctl import ops  # noqa: PLC0415
    from rtppctl.cli.output import Column, Table  # noqa: PLC0415

    s = run_context(ctx)
    results = ops.info(s.relays, s.relays.members(target, set_id))
    views = []
    for result in results:
        if result.error is not None:
            continue  # named on stderr
        views.append(Table([Column("counter", keep=True), Column("value", "right", keep=True)],
                           [[k, v] for k, v in result.info.items()], title=result.node))
        views.append(Table([Column("statistic", keep=True), Column("value", "right", keep=True)],
                           [[k, v] for k, v in result.stats.items()]))
    failed = [r for r in results if r.error is not None]
    for result in failed:
        s.output.warn(result.error)
    s.output.emit({"relays": [ops.as_dict(r) for r in results], "ok": not failed}, *views)
    return int(ExitCode.TRANSPORT) if failed else 0


def raw(
    ctx: typer.Context,
    words: Annotated[list[str] | None, typer.Argument(metavar="COMMAND", help="One command, e.g. V or 'VF 20050322'.", show_default=False)] = None,
    batch: Annotated[str | None, typer.Option("--file", "-f", metavar="FILE", help="A batch: one command per line ('-' for stdin); blank lines and # comments skipped.", show_default=False)] = None,
    window: Annotated[int, typer.Option("--window", metavar="N", min=1, max=limits.MAX_WINDOW, help=f"Commands of a batch in flight at once (1..{limits.MAX_WINDOW}); above 1 a command may reach the relay before the one above it is answered, so a U and the D after it can cross: keep 1 for a batch whose order matters.")] = 1,
    call_id: CallIdOption = None,
    target: TargetOption = None,
    set_id: SetOption = None,
) -> int:
    """Send raw control commands to one relay and print the replies in order (debugging and scripts).

    The cookie (datagram relays) and line framing are added for you. A batch goes over one channel, one command outstanding at a time; with --window N, up to N at once (datagram relays resend a lost one with its cookie), replies still printed in the batch's order, each with its own round trip. With --call-id, the call's relay (the call is marked used in the ledger unless --target is given); with neither, the set's first enabled node. Exits 3 when any reply is an error E<n>.

    Examples:

      rtppctl raw V

      rtppctl raw VF 20081224

      printf 'V\\nI\\n' | rtppctl raw -f -

      rtppctl raw --json -f commands.txt

      rtppctl raw -f many-queries.txt --window 16

      rtppctl raw --call-id 'abc@host' 'Q abc@host ft tt'
    """
    from rtppctl import ops  # noqa: PLC0415
    from rtppctl.proto import command as cmd  # noqa: PLC0415

    s = run_context(ctx)
    out = s.output
    if words and batch:
        raise typer.BadParameter("give either a COMMAND or --file, not both")
    if batch:
        from rtppctl.files import read_input  # noqa: PLC0415

        commands = ops.parse_raw_batch(*read_input(batch))
    elif words:
        line = " ".join(words)
        cmd.validate_raw_command(line, "the command")
        commands = [line]
    else:
        raise typer.BadParameter("no command given; e.g. rtppctl raw V, or rtppctl raw -f FILE")
    member = ops.call_node(s.relays, call_id, targets=target, set_id=set_id)
    if window > 1:
        from rtppctl.ops.relay import raw_pipelined  # noqa: PLC0415

        run = raw_pipelined(s.relays, member, commands, window)
        replies = run.replies
        out.note(f"{len(replies)} commands, window {window}: {run.retransmits} retransmitted, "
                 f"{run.replies_dropped} late or stray replies dropped")
    else:
        replies = ops.raw(s.relays, member, commands)
    from rtppctl.cli.output import Verbatim  # noqa: PLC0415
    from rtppctl.ops.relay import raw_records  # noqa: PLC0415

    failed = any(r.error_code is not None for r in replies)
    lines = []
    for reply in replies:
        text = reply.reply
        if reply.error_code is not None:
            text += f"    # {reply.error_name}: {reply.error_meaning}"
        lines.append(text + "\n" if len(replies) == 1 else f"{reply.command} -> {text}\n")
    out.emit({"node": member.node.url, "replies": raw_records(replies), "ok": not failed}, Verbatim("".join(lines)))
    return int(ExitCode.PROXY_ERROR) if failed else 0
