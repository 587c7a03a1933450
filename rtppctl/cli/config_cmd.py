"""`rtppctl config`: create the config file, show the effective configuration, say which file is used,
and import the rtpproxy parameters of an OpenSIPS config.

Each command parses its options, calls one function of `rtppctl.config` (or, for import-opensips,
of `rtppctl.opensips_cfg`) and hands plain data to the renderer; what a key means and where files
are looked up is known only to `rtppctl.config`, how an OpenSIPS config is read only to
`rtppctl.opensips_cfg`.
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
        typer.Argument(metavar="PATH", help="File to write (default: $XDG_CONFIG_HOME/rtppctl/config.toml; '-': stdout).", show_default=False),
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
    from rtppctl.config import starter_config_text, user_config_path, write_starter_config  # noqa: PLC0415
    from rtppctl.files import write_atomically, writes_through, writes_to_stdout  # noqa: PLC0415
    from rtppctl.proto.errors import ConfigError  # noqa: PLC0415

    out = run_context(ctx).output
    target = path if path is not None else user_config_path()
    if writes_through(target):
        # "-", /dev/stdout, a FIFO, a device: written through, nothing there to keep or replace.
        write_atomically(target, starter_config_text(), error=ConfigError)
        if writes_to_stdout(target):
            out.status("wrote the starter config to stdout")  # stdout holds the TOML: nothing may follow it
            return
        written = target
    else:
        written = write_starter_config(target, force=force)
    out.emit({"path": str(written), "written": True}, f"wrote {written}", "check it with: rtppctl config show")


@config_app.command(cls=PlainCommand)
def show(ctx: typer.Context) -> None:
    """The effective configuration: every key, its value and where it came from; the relay sets.

    A key not in the file shows its default; "of" says whether a key is the OpenSIPS module's parameter of that name or rtppctl's own. The sets are the rtpproxy_sock values parsed into relays, with weight and advertised address, merged per set id as the module does (the db_url table's relays: rtppctl show).

    Examples:

      rtppctl config show

      rtppctl --config ./rtppctl.toml config show --json
    """
    from rtppctl.cli.output import Column, Table  # noqa: PLC0415
    from rtppctl.config import PARAMETERS, toml_spelling  # noqa: PLC0415
    from rtppctl.proto.url import format_node  # noqa: PLC0415

    s = run_context(ctx)
    out = s.output
    config = s.config
    settings = config.as_dict()
    embedded = settings.pop("embedded")
    owners = {parameter.name: parameter.owner for parameter in PARAMETERS}
    rows: list[list[Any]] = [[key, toml_spelling(value, None), config.source(key), owners.get(key, "rtppctl")]
                             for key, value in settings.items()]
    rows += [[f"embedded.{key}", toml_spelling(value, None), config.source(f"embedded.{key}"), "rtppctl"]
             for key, value in embedded.items()]
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
        # "module": the OpenSIPS module's parameter of that name; "rtppctl": rtppctl's own key.
        "owners": {row[0]: row[3] for row in rows},
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
        Table([Column("key"), Column("value"), Column("source"), Column("of")], rows, title=title),
        Table(
            [Column("set", "right", keep=True), Column("relay", keep=True), Column("weight", "right", keep=True),
             Column("advertised", keep=True), Column("spec", keep=True)],
            set_rows,
            title=f"relay sets (default set {config.default_set})",
        ),
    )


@config_app.command("path", cls=PlainCommand)
def path_(ctx: typer.Context) -> None:
    """Which config file is used, and every place looked at, in order, with whether it exists.

    Fails (exit 5) when --config or $RTPPCTL_CONFIG names a file that does not exist, after showing the lookup.

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


@config_app.command("import-opensips", cls=PlainCommand)
def import_opensips(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(metavar="FILE", help="The OpenSIPS config to read ('-': stdin).")],
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", metavar="FILE", show_default=False,
                     help="Write the TOML to FILE ('-': stdout): atomically; a new file gets mode 0600."),
    ] = None,
) -> None:
    """Carry an OpenSIPS config's modparam("rtpproxy", ...) lines over into an rtppctl config file.

    Every parameter of the module becomes the key of the same name: each rtpproxy_sock line one element of the rtpproxy_sock list, in order; rtpproxy_timeout "0.2" becomes 0.2, rtpproxy_autobridge 0/1 false/true, nortpproxy_str loses its trailing \\r\\n.

    Strings, numbers and comments are read as OpenSIPS's lexer (cfg.lex) reads them: the escapes of double-quoted strings (\\n \\r \\a \\t \\" \\\\ \\xHH \\ooo), none in single quotes, 0x hex and 0-leading octal numbers, yes/no, nested /* */ comments; strings in a row are joined. A line break inside a string stays in the value, where the module splits rtpproxy_sock relays at it; such a string is reported. // is no comment to OpenSIPS: skipped, with a warning. #!define names standing alone are replaced; #!ifdef blocks follow the file's own defines (a statement inside one is reported).

    A rtpproxy_sock word without a scheme that does not look like a socket path (";", "DROP") is carried over, as the module reads it, with a warning.

    Anything that cannot be carried over (an unknown name, a value of the wrong kind or one rtppctl refuses, an unknown define, a module pattern such as "rtpproxy|nathelper") is left out and named on stderr with its line, and as a comment in the TOML.

    The TOML goes to stdout unless -o is given.

    Examples:

      rtppctl config import-opensips /etc/opensips/opensips.cfg

      rtppctl config import-opensips opensips.cfg -o ~/.config/rtppctl/config.toml

      rtppctl config import-opensips - --json < opensips.cfg
    """
    from rtppctl.cli.output import Verbatim  # noqa: PLC0415
    from rtppctl.files import check_writable, read_input, stdin_is_terminal, write_atomically, writes_to_stdout  # noqa: PLC0415
    from rtppctl.opensips_cfg import import_opensips_config  # noqa: PLC0415

    out = run_context(ctx).output
    destination = None if output in (None, "-") else output
    if destination is not None:
        check_writable(destination)
        _refuse_replacing_the_input(file, destination)
    if file == "-" and stdin_is_terminal():
        out.status("reading an OpenSIPS config from stdin; end it with Ctrl-D (or give a FILE)")
    text, name = read_input(file)
    result = import_opensips_config(text, name)
    for message in result.messages:  # skipped entries and warnings, in line order
        out.warn(message)
    if destination is not None:
        # 0600 for a new file, as `config init` writes one: it may hold db_url with a password.
        write_atomically(destination, result.toml, mode=None if Path(destination).exists() else 0o600)
    data = {
        "path": destination,
        "settings": result.settings,
        "toml": result.toml,
        "skipped": [entry._asdict() for entry in result.skipped],
        "warnings": result.warnings,
    }
    if destination is None:
        out.emit(data, Verbatim(result.toml))
    else:
        count = len(result.settings)
        line = f"wrote {destination} ({count} key{'' if count == 1 else 's'})"
        if writes_to_stdout(destination):
            out.status(line)  # -o /dev/stdout: stdout holds the TOML, nothing may follow it
        else:
            out.emit(data, line)


def _refuse_replacing_the_input(file: str, destination: str) -> None:
    """`-o opensips.cfg` on opensips.cfg would replace the OpenSIPS config with rtppctl's."""
    from rtppctl.files import same_file  # noqa: PLC0415
    from rtppctl.proto.errors import InputError  # noqa: PLC0415

    if same_file(file, destination):
        raise InputError(f"{destination} is the OpenSIPS config being read", "give -o another FILE")
