"""The root command: global options, the command groups, and the mapping of errors to exit codes.

`main()` is the console script. It runs the Typer app without Click's standalone handling so that
every outcome goes through one place: an `RtppctlError` becomes its one-line message (and hint)
on stderr and the exit code of its class (design.md); a usage error exits 2; Ctrl-C exits 130;
anything else is a bug, reported in one line (with the traceback from -vv on) and exit 1.
Command modules are imported here but keep their own heavy imports inside their functions, so
`rtppctl --help` and one-shot commands start fast.
"""


import sys
from importlib import import_module
from typing import Annotated

import typer

from rtppctl import __version__
from rtppctl.cli.common import Session
from rtppctl.proto.errors import ExitCode, RtppctlError

_APP_SETTINGS = dict(
    name="rtppctl",
    help="Operator toolkit for RTPProxy media relays: what the OpenSIPS rtpproxy module does, from a shell.\n\n"
    "Examples:\n\n"
    "  rtppctl embedded start            # a real relay on udp:127.0.0.1:22222\n\n"
    "  rtppctl ping --all                # every configured relay\n\n"
    "  rtppctl version -t udp:10.0.0.5:22222\n\n"
    "  rtppctl --json info               # counters as one JSON object\n\n"
    "Global options may also be given after the command.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

#: Top-level commands: name -> (module, function, help panel).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "version": ("rtppctl.cli.relay_cmd", "version", "Relays"),
    "ping": ("rtppctl.cli.relay_cmd", "ping", "Relays"),
    "info": ("rtppctl.cli.relay_cmd", "info", "Relays"),
    "raw": ("rtppctl.cli.relay_cmd", "raw", "Relays"),
    "offer": ("rtppctl.cli.sdp_cmd", "offer", "SDP"),
    "answer": ("rtppctl.cli.sdp_cmd", "answer", "SDP"),
    "engage": ("rtppctl.cli.sdp_cmd", "engage", "SDP"),
    "unforce": ("rtppctl.cli.sdp_cmd", "unforce", "SDP"),
    "shell": ("rtppctl.cli.shell_cmd", "shell", "SDP"),
}
#: Command groups: name -> (module, Typer attribute, one-line help).
GROUPS: dict[str, tuple[str, str, str]] = {
    "config": ("rtppctl.cli.config_cmd", "config_app", "Show, locate and create the configuration file."),
    "embedded": ("rtppctl.cli.embedded_cmd", "embedded_app", "Run the real RTPProxy engine (rtp.io) on loopback."),
}


def _print_version(value: bool) -> None:
    if value:
        print(f"rtppctl {__version__}")
        raise typer.Exit(0)


def root(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Data as JSON on stdout (one object per command, NDJSON for streams).")] = False,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="-v: notes on stderr; -vv: every datagram/line sent and received, tracebacks.")] = 0,
    timeout: Annotated[float | None, typer.Option("--timeout", metavar="SECONDS", min=0.001, help="Wait for each reply (default: rtpproxy_timeout, 1 s).", show_default=False)] = None,
    retries: Annotated[int | None, typer.Option("--retries", metavar="N", min=1, help="Sends per command on datagram relays (default: rtpproxy_retr, 5).", show_default=False)] = None,
    no_color: Annotated[bool, typer.Option("--no-color", help="No colour (also when NO_COLOR is set or stdout is not a terminal).")] = False,
    config: Annotated[str | None, typer.Option("--config", metavar="FILE", help="Config file (default: $RTPPCTL_CONFIG, then ~/.config/rtppctl/config.toml, then /etc/rtppctl/config.toml).", show_default=False)] = None,
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print rtppctl's version and exit.")] = False,
) -> None:
    ctx.obj = Session(
        json=json_output,
        verbose=verbose,
        timeout=timeout,
        retries=retries,
        color=False if no_color else None,
        config_path=config,
    )


def build_app(only: str | None = None) -> typer.Typer:
    """The command tree, or just the root and the command `only` when one is named.

    Typer turns every registered function into a Click command on each run, which costs time in
    proportion to the number of commands; a one-shot command needs only its own.
    """
    tree = typer.Typer(**_APP_SETTINGS)  # type: ignore[arg-type]
    tree.callback()(root)
    for name, (module, function, panel) in COMMANDS.items():
        if only in (None, name):
            tree.command(name=name, rich_help_panel=panel)(getattr(import_module(module), function))
    for name, (module, attribute, help_text) in GROUPS.items():
        if only in (None, name):
            tree.add_typer(getattr(import_module(module), attribute), name=name, help=help_text)
    return tree


_full_tree: typer.Typer | None = None


def __getattr__(name: str) -> typer.Typer:
    # `app`, the whole tree (what --help lists, what completions and the man page are generated
    # from), is built on first use: a one-shot command never imports the other command modules.
    global _full_tree
    if name == "app":
        if _full_tree is None:
            _full_tree = build_app()
        return _full_tree
    raise AttributeError(name)


def _verbosity(argv: list[str]) -> int:
    """-v count from the raw arguments, for errors raised before the callback ran."""
    count = 0
    for arg in argv:
        if arg == "--verbose":
            count += 1
        elif arg.startswith("-") and not arg.startswith("--") and set(arg[1:]) == {"v"}:
            count += len(arg) - 1
    return count


#: Global options that may also be written after the command (`rtppctl ping --timeout 0.2`), and
#: whether each takes a value. Operators add them at the end of a command line they are editing.
_GLOBAL_FLAGS = {"--json": False, "--verbose": False, "--no-color": False, "--timeout": True, "--retries": True, "--config": True}


def hoist_global_options(args: list[str]) -> list[str]:
    """Move global options found after the command name to the front, so Click sees them as global."""
    front, rest = _split_global_options(args)
    return front + rest


def _split_global_options(args: list[str]) -> tuple[list[str], list[str]]:
    """(the global options with their values, everything else in order)."""
    front: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            rest.extend(args[index:])
            break
        name = arg.split("=", 1)[0]
        if name in _GLOBAL_FLAGS:
            front.append(arg)
            if _GLOBAL_FLAGS[name] and "=" not in arg and index + 1 < len(args):
                front.append(args[index + 1])
                index += 1
        elif len(arg) > 1 and arg[0] == "-" and arg[1] != "-" and set(arg[1:]) == {"v"}:
            front.append(arg)
        else:
            rest.append(arg)
        index += 1
    return front, rest


def run(argv: list[str] | None = None) -> int:
    """Run the command line with `argv` and return the exit code (never raises, never exits)."""
    from typer._click.exceptions import ClickException  # noqa: PLC0415 - Typer vendors Click

    front, rest = _split_global_options(list(sys.argv[1:] if argv is None else argv))
    args = front + rest
    # With the global options out of the way, the command's name comes first.
    name = rest[0] if rest and (rest[0] in COMMANDS or rest[0] in GROUPS) else None
    try:
        tree = build_app(name) if name else __getattr__("app")
        result = tree(args=args, prog_name="rtppctl", standalone_mode=False)
    except RtppctlError as err:
        _report(err, args)
        return int(err.exit_code)
    except ClickException as err:
        err.show()
        return err.exit_code
    except typer.Exit as err:
        return err.exit_code
    except (KeyboardInterrupt, typer.Abort):
        sys.stderr.write("rtppctl: interrupted\n")
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        # The reader went away (e.g. `| head`); nothing more to say.
        return 0
    except Exception as err:  # noqa: BLE001 - the last line of defence: a bug, said in one line
        if _verbosity(args) >= 2:
            import traceback  # noqa: PLC0415

            traceback.print_exc()
        sys.stderr.write(f"rtppctl: internal error: {type(err).__name__}: {err} (run with -vv for the traceback)\n")
        return int(ExitCode.UNEXPECTED)
    return result if isinstance(result, int) else 0


def _report(err: RtppctlError, args: list[str]) -> None:
    from rtppctl.cli.output import Output  # noqa: PLC0415

    Output(color=False if "--no-color" in args else None, verbose=_verbosity(args)).error(err)


def main() -> None:
    code = run()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    sys.exit(code)
