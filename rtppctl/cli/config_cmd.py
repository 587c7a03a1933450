"""`rtppctl config`: create the config file, show the effective configuration, say which file is used.

Each command parses its options, calls one function of `rtppctl.config` and hands plain data to the
renderer; what a key means and where files are looked up is known only to `rtppctl.config`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from rtppctl.cli.common import PlainCommand, run_context

config_app = typer.Typer(
    help="Show, locate and create the configuration file (keys named as the OpenSIPS rtpproxy module's parameters).",
    no_args_is_help=True,
)


@config_app.command(cls=PlainCommand)
def init(
    ctx: typer.Context,
    path: Annotated[
        Path | None,
        typer.Argument(metavar="PATH", help="File to write (default: $XDG_CONFIG_HOME/rtppctl/config.toml).", show_default=False),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
) -> None:
    """Write a starter config file: every key at its default, each with a comment saying what it is.

    Refuses to replace an existing file unless --force is given.

    Examples:

      rtppctl config init

      rtppctl config init /etc/rtppctl/config.toml

      rtppctl config init ./rtppctl.toml --force
    """
    from rtppctl.config import user_config_path, write_starter_config  # noqa: PLC0415

    out = run_context(ctx).output
    written = write_starter_config(path if path is not None else user_config_path(), force=force)
    out.emit({"path": str(written), "written": True}, f"wrote {written}", "check it with: rtppctl config show")


@config_app.command(cls=PlainCommand)
def show(ctx: typer.Context) -> None:
    """The effective configuration: every key, its value and where it came from; the relay sets.

    A key not in the file shows its default. The sets are the rtpproxy_sock values parsed into
    relays, with weight and advertised address, merged per set id as the module does.

    Examples:

      rtppctl config show

      rtppctl --config ./rtppctl.toml config show --json
    """
    from rtppctl.cli.output import Column, Table  # noqa: PLC0415
    from rtppctl.config import toml_spelling  # noqa: PLC0415
    from rtppctl.proto.url import format_node  # noqa: PLC0415

    s = run_context(ctx)
    out = s.output
    config = s.config
    settings = config.as_dict()
    embedded = settings.pop("embedded")
    rows: list[list[Any]] = [[key, toml_spelling(value, None), config.source(key)] for key, value in settings.items()]
    rows += [[f"embedded.{key}", toml_spelling(value, None), config.source(f"embedded.{key}")] for key, value in embedded.items()]
    sets = config.sets()
    set_rows = [
        [set_id, node.url, node.weight, node.advertised, format_node(node)]
        for set_id, nodes in sorted(sets.items())
        for node in nodes
    ]
    data = {
        "path": str(config.path) if config.path else None,
        "settings": {**settings, "embedded": embedded},
        "sources": {row[0]: row[2] for row in rows},
        "default_set": config.default_set,
        "sets": [
            {
                "set": set_id,
                "nodes": [{"url": n.url, "weight": n.weight, "advertised": n.advertised} for n in nodes],
            }
            for set_id, nodes in sorted(sets.items())
        ],
    }
    title = f"configuration from {config.path}" if config.path else "configuration: no file, every key at its default"
    out.emit(
        data,
        Table([Column("key"), Column("value"), Column("source")], rows, title=title),
        Table(
            [Column("set", "right"), Column("relay"), Column("weight", "right"), Column("advertised"), Column("spec")],
            set_rows,
            title=f"relay sets (default set {config.default_set})",
        ),
    )


@config_app.command("path", cls=PlainCommand)
def path_(ctx: typer.Context) -> None:
    """Which config file is used, and every place looked at, in order, with whether it exists.

    Fails (exit 5) when --config or $RTPPCTL_CONFIG names a file that does not exist, after
    showing the lookup.

    Examples:

      rtppctl config path

      RTPPCTL_CONFIG=./rtppctl.toml rtppctl config path --json
    """
    from rtppctl.cli.output import Column, Table  # noqa: PLC0415
    from rtppctl.config import config_candidates, find_config  # noqa: PLC0415
    from rtppctl.proto.errors import ConfigError  # noqa: PLC0415

    s = run_context(ctx)
    out = s.output
    candidates = config_candidates(s.config_path)
    try:
        used = find_config(s.config_path)
        failure = None
    except ConfigError as exc:
        used, failure = None, exc
    lookup = [
        {"origin": c.origin, "path": str(c.path), "exists": c.exists, "required": c.required, "used": c.path == used}
        for c in candidates
    ]
    summary = f"using {used}" if used else "no config file: every key at its default"
    out.emit(
        {"path": str(used) if used else None, "lookup": lookup},
        summary if failure is None else "no usable config file",
        Table(
            [Column("#", "right"), Column("from"), Column("path"), Column("exists"), Column("used")],
            [[i, c["origin"], c["path"], c["exists"], c["used"]] for i, c in enumerate(lookup, 1)],
            title="lookup order",
        ),
    )
    if failure is not None:
        raise failure
