"""reload, and `rtppctl db init|add|remove|list`: the relays kept in OpenSIPS's rtpproxy_sockets
table. Each parses options, calls `rtppctl.sources` (the table) or `rtppctl.ops.sets` (reload,
through the relay service), renders."""

from __future__ import annotations

from typing import Annotated

import typer

from rtppctl.cli.common import PlainCommand, run_context
from rtppctl.proto import limits

db_app = typer.Typer(
    help="Manage the relays in the db_url table (OpenSIPS's rtpproxy_sockets): init, add, remove, list.",
    no_args_is_help=True,
)

DbUrlOption = Annotated[
    str | None,
    typer.Option("--db-url", metavar="URL", show_default=False,
                 help="The database (sqlite:///path, postgresql://..., mysql://...) instead of the config's db_url."),
]


def _config(ctx: typer.Context, db_url: str | None):  # noqa: ANN202 - a Config
    """The run's config, with --db-url in place of db_url when given (checked as the file's is)."""
    from dataclasses import replace  # noqa: PLC0415

    from rtppctl.dburl import parse_db_url  # noqa: PLC0415

    config = run_context(ctx).config
    if db_url is None:
        return config
    try:
        parse_db_url(db_url, "")
    except Exception as exc:  # ConfigError: a usage error here, the option was typed
        raise typer.BadParameter(getattr(exc, "message", str(exc)), param_hint="--db-url") from None
    return replace(config, db_url=db_url)


def reload(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change; keep the current relays.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Refuse the whole table when a row is bad (default: report it, use the rest).")] = False,
) -> None:
    """Read the db_url table again and use its relays from now on (the module's rtpproxy_reload).

    Prints the relays added, removed and changed. Health and calls of the relays that stayed are kept; calls on a removed relay still reach it for answer and unforce. Needs a state store.

    Examples:

      rtppctl reload --dry-run

      rtppctl reload --strict --json
    """
    from rtppctl import ops  # noqa: PLC0415
    from rtppctl.cli.output import Column, Table  # noqa: PLC0415
    from rtppctl.ops import sets as ops_sets  # noqa: PLC0415

    s = run_context(ctx)
    if s.relays.state_path is None and not dry_run:
        raise typer.BadParameter("reload keeps the table's relays in the state store; with --state none every command "
                                 "reads the table itself", param_hint="--state")
    result = ops_sets.reload(s.relays, dry_run=dry_run, strict=strict)
    for bad in result.bad_rows:
        s.output.warn(bad["message"] + " (skipped)")
    for note in result.warnings:
        s.output.warn(note)
    rows = [["added", c.set_id, c.url, None, c.after] for c in result.added]
    rows += [["removed", c.set_id, c.url, c.before, None] for c in result.removed]
    rows += [["changed", c.set_id, c.url, c.before, c.after] for c in result.changed]
    verb = "would use" if dry_run else "now uses"
    summary = (f"{result.source}: {verb} {result.nodes} relay(s); {len(result.added)} added, {len(result.removed)} removed, "
               f"{len(result.changed)} changed")
    views: list = [summary]
    if rows:
        views.append(Table([Column("change"), Column("set", "right", keep=True), Column("relay", keep=True),
                            Column("before", keep=True), Column("after", keep=True)], rows))
    s.output.emit(ops.as_dict(result), *views)


@db_app.command(cls=PlainCommand)
def init(ctx: typer.Context, db_url: DbUrlOption = None) -> None:
    """Create the table with OpenSIPS's schema (and its version row), so OpenSIPS can read it too.

    A sqlite file is created if missing. An existing table is left as it is.

    Examples:

      rtppctl db init --db-url sqlite:///var/lib/rtppctl/relays.db

      rtppctl db init               # the config's db_url and db_table
    """
    from rtppctl import sources  # noqa: PLC0415

    config = _config(ctx, db_url)
    done = sources.init_table(config)
    run_context(ctx).output.emit({"table": config.db_table, "result": done}, done)


@db_app.command(cls=PlainCommand)
def add(
    ctx: typer.Context,
    specs: Annotated[list[str], typer.Argument(metavar="SPEC...", help="Node specs for one row: scheme:host:port[|advertised][=weight].")],
    set_id: Annotated[int, typer.Option("--set", metavar="ID", min=0, max=limits.MAX_SET_ID, help="The row's set.")] = 0,
    db_url: DbUrlOption = None,
) -> None:
    """Add one row: node specs (several make one row, as OpenSIPS allows) in a set.

    Commands use the new relays after rtppctl reload.

    Examples:

      rtppctl db add udp:10.0.0.5:22222=2 udp:10.0.0.6:22222 --set 1

      rtppctl db add 'udp:10.0.0.7:22222|203.0.113.7'
    """
    from rtppctl import ops, sources  # noqa: PLC0415

    sock = " ".join(specs)
    row = sources.add_row(_config(ctx, db_url), sock, set_id)
    note = sources.sock_warning(sock)
    if note is not None:
        run_context(ctx).output.warn(note)
    run_context(ctx).output.emit(ops.as_dict(row), f"added row {row.id} (set {row.set_id}): {row.sock}; "
                                                   "rtppctl reload puts it to use")


@db_app.command(cls=PlainCommand)
def remove(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Argument(metavar="URL", help="Remove the rows holding this relay.", show_default=False)] = None,
    row_id: Annotated[int | None, typer.Option("--id", metavar="N", min=1, max=limits.MAX_INT64, help="Remove the row with this id.", show_default=False)] = None,
    set_id: Annotated[int | None, typer.Option("--set", metavar="ID", min=0, max=limits.MAX_SET_ID, help="Only rows of this set.", show_default=False)] = None,
    db_url: DbUrlOption = None,
) -> int:
    """Remove rows: by id, or every row holding a relay. Exits 6 when nothing matched.

    Commands stop using the relays after rtppctl reload.

    Examples:

      rtppctl db remove udp:10.0.0.6:22222

      rtppctl db remove --id 7
    """
    from rtppctl import ops, sources  # noqa: PLC0415
    from rtppctl.proto.errors import ExitCode  # noqa: PLC0415
    from rtppctl.proto.text import shown  # noqa: PLC0415

    if (url is None) == (row_id is None):
        raise typer.BadParameter("give either a URL or --id", param_hint="URL")
    config = _config(ctx, db_url)
    removed = sources.remove_rows(config, row_id=row_id, url_or_spec=url, set_id=set_id)
    out = run_context(ctx).output
    lines = [f"removed row {row.id} (set {row.set_id}): {row.sock}" for row in removed]
    if not removed:
        out.warn(f"no row of {config.db_table} matched " + (f"id {row_id}" if row_id is not None else shown(url or "", 120)))
    from rtppctl.cli.output import Lines  # noqa: PLC0415

    out.emit({"removed": [ops.as_dict(row) for row in removed]}, Lines(tuple(lines)))
    return 0 if removed else int(ExitCode.INPUT)


@db_app.command("list", cls=PlainCommand)
def list_(ctx: typer.Context, db_url: DbUrlOption = None) -> None:
    """Every row of the table: id, set and node specs.

    Examples:

      rtppctl db list

      rtppctl db list --db-url postgresql://opensips@db/opensips --json
    """
    from rtppctl import ops, sources  # noqa: PLC0415
    from rtppctl.cli.output import Column, Table  # noqa: PLC0415

    config = _config(ctx, db_url)
    rows = sources.list_rows(config)
    table = Table([Column("id", "right", keep=True), Column("set", "right", keep=True), Column(config.rtpp_socket_col)],
                  [[row.id, row.set_id, row.sock] for row in rows], title=config.db_table)
    run_context(ctx).output.emit({"rows": [ops.as_dict(row) for row in rows]}, table)
