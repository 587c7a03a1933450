"""The root command: global options, the command groups, and the mapping of outcomes to exit codes.

`main()` (in `rtppctl.cli`) calls `run()`, which never raises: every outcome goes through one
place. An `RtppctlError` becomes its one-line message (and hint) on stderr and the exit code of its
class; a usage error exits 2; Ctrl-C exits 130 with one line; a reader that went away (`| head`)
ends the run silently with 0; anything else is a bug, reported in one line (with the traceback
from -vv on) and exit 1. Click's own `main()` is not used, because it turns a closed pipe into
exit 1 and Ctrl-C into a silent 130.

Global options may be written anywhere on the line. Before Click parses anything, they are moved
to the front; the pre-parser knows which of the command's own options take a value, so
`embedded start --engine-arg -v` keeps its `-v`. Command modules are imported only for the command
being run (the whole tree only for `--help` and the docs), so one-shot commands start fast.
"""

import inspect
import re
import sys
from importlib import import_module
from typing import Annotated, Any

import typer

from rtppctl import __version__
from rtppctl.cli.common import PlainCommand, PlainGroup, RunContext, finite
from rtppctl.proto import limits
from rtppctl.proto.errors import ExitCode, RtppctlError

# Click's exception base (public: batch turns a command's usage errors into line errors), reached
# through a public name: Typer vendors Click from 0.29 on
# (typer._click) and depends on it before; BadParameter derives from ClickException in both.
ClickException: type[Exception] = next(
    cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "ClickException"
)

_APP_SETTINGS = dict(
    name="rtppctl",
    help="Operator toolkit for RTPProxy media relays: what the OpenSIPS rtpproxy module does, from a shell.\n\n"
    "Examples:\n\n"
    "  rtppctl embedded start            # a real relay on udp:127.0.0.1:22222\n\n"
    "  rtppctl ping --all                # every configured relay\n\n"
    "  rtppctl version -t udp:10.0.0.5:22222\n\n"
    "  rtppctl info --json               # counters as one JSON object\n\n"
    "  rtppctl show                      # relay sets, health and calls\n\n"
    "  rtppctl listen tcp:127.0.0.1:9999 # timeout and DTMF notifications, live\n\n"
    "Global options may also be given after the command.",
    no_args_is_help=True,
    # Said explicitly: Typer before 0.2x leaves its default unresolved (a placeholder that is
    # neither "rich" nor None), and then prints paragraphs without the blank lines between them
    # and examples without their indentation. Every group and command below inherits it.
    rich_markup_mode="rich",
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
    "check": ("rtppctl.cli.check_cmd", "check", "Monitoring"),
    "metrics": ("rtppctl.cli.metrics_cmd", "metrics", "Monitoring"),
    "load": ("rtppctl.cli.load_cmd", "load", "Load and batch"),
    "batch": ("rtppctl.cli.batch_cmd", "batch", "Load and batch"),
    "replay": ("rtppctl.cli.replay_cmd", "replay", "Load and batch"),
    "offer": ("rtppctl.cli.sdp_cmd", "offer", "SDP"),
    "answer": ("rtppctl.cli.sdp_cmd", "answer", "SDP"),
    "engage": ("rtppctl.cli.sdp_cmd", "engage", "SDP"),
    "unforce": ("rtppctl.cli.sdp_cmd", "unforce", "SDP"),
    "shell": ("rtppctl.cli.shell_cmd", "shell", "SDP"),
    "show": ("rtppctl.cli.sets_cmd", "show", "Relay sets"),
    "enable": ("rtppctl.cli.sets_cmd", "enable", "Relay sets"),
    "sessions": ("rtppctl.cli.sets_cmd", "sessions", "Relay sets"),
    "reload": ("rtppctl.cli.db_cmd", "reload", "Relay sets"),
    "play": ("rtppctl.cli.media_cmd", "play", "Media"),
    "stop-play": ("rtppctl.cli.media_cmd", "stop_play", "Media"),
    "stop-record": ("rtppctl.cli.media_cmd", "stop_record", "Media"),
    "stats": ("rtppctl.cli.media_cmd", "stats", "Media"),
    "query": ("rtppctl.cli.media_cmd", "query", "Media"),
    "listen": ("rtppctl.cli.listen_cmd", "listen", "Media"),
}
#: Command groups: name -> (module, Typer attribute, one-line help).
GROUPS: dict[str, tuple[str, str, str]] = {
    "config": ("rtppctl.cli.config_cmd", "config_app", "Show, locate and create the configuration file."),
    "embedded": ("rtppctl.cli.embedded_cmd", "embedded_app", "Run the real RTPProxy engine (rtp.io) on loopback."),
    "lb": ("rtppctl.cli.lb_cmd", "lb_app", "Explain and simulate the module's choice of relay for a call."),
    "record": ("rtppctl.cli.media_cmd", "record_app", ""),
    "db": ("rtppctl.cli.db_cmd", "db_app", "Manage the relays in the db_url table (OpenSIPS's rtpproxy_sockets)."),
    "prompt": ("rtppctl.cli.prompt_cmd", "prompt_app", "Encode WAV files into RTPProxy prompt files, and describe them."),
}


def _print_version(value: bool) -> None:
    if value:
        print(f"rtppctl {__version__}")
        raise typer.Exit(0)


def root(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Data as JSON on stdout: one object per command, one per line (NDJSON) for streams.")] = False,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="-v: notes on stderr; -vv: every datagram/line sent and received, tracebacks.")] = 0,
    timeout: Annotated[float | None, typer.Option("--timeout", metavar="SECONDS", min=limits.MIN_TIMEOUT, max=limits.MAX_TIMEOUT, callback=finite, help=f"Wait for each reply, {limits.MIN_TIMEOUT:g} to {limits.MAX_TIMEOUT:g} (default: rtpproxy_timeout, 1 s).", show_default=False)] = None,
    retries: Annotated[int | None, typer.Option("--retries", metavar="N", min=1, max=limits.MAX_RETRIES, help=f"Sends per command on datagram relays, 1 to {limits.MAX_RETRIES} (default: rtpproxy_retr, 5).", show_default=False)] = None,
    no_color: Annotated[bool, typer.Option("--no-color", help="No colour (also when NO_COLOR is set or stdout is not a terminal).")] = False,
    config: Annotated[str | None, typer.Option("--config", metavar="FILE", help="Config file (default: $RTPPCTL_CONFIG, then ~/.config/rtppctl/config.toml, then /etc/rtppctl/config.toml).", show_default=False)] = None,
    state: Annotated[str | None, typer.Option("--state", metavar="FILE|none", help="State store: relay health and the session ledger, a file or postgresql://... (default: $RTPPCTL_STATE, then state_url, then ~/.local/state/rtppctl/state.sqlite3); none keeps no state.", show_default=False)] = None,
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print rtppctl's version and exit.")] = False,
) -> None:
    run = RunContext(
        json=json_output,
        verbose=verbose,
        timeout=timeout,
        retries=retries,
        color=False if no_color else None,
        config_path=config,
        state=state,
    )
    ctx.obj = run
    # Channels and the state file close when the run ends, however it ends.
    ctx.call_on_close(run.close)


def build_app(only: str | None = None) -> typer.Typer:
    """The command tree, or just the root and the command `only` when one is named.

    Typer turns every registered function into a Click command on each run, which costs time in
    proportion to the number of commands; a one-shot command needs only its own.
    """
    tree = typer.Typer(cls=PlainGroup, **_APP_SETTINGS)  # type: ignore[arg-type]
    tree.callback()(root)
    for name, (module, function, panel) in COMMANDS.items():
        if only in (None, name):
            tree.command(name=name, cls=PlainCommand, rich_help_panel=panel)(getattr(import_module(module), function))
    for name, (module, attribute, help_text) in GROUPS.items():
        if only in (None, name):
            # A group whose callback does the work (record) is described by the callback's own
            # docstring: no help text here; it is listed with the media commands.
            extra = {"help": help_text} if help_text else {"rich_help_panel": "Media"}
            tree.add_typer(getattr(import_module(module), attribute), name=name, cls=PlainGroup, **extra)
    return tree


# A line that starts an item of a list ("- x", "* x", "1. x"): it keeps its line break.
_LIST_ITEM = re.compile(r"(?:[-*\u2022]|\d{1,2}[.)])\s")


def reflow_help(text: str) -> str:
    """Help text with the line breaks of the source removed from its prose, for the terminal to wrap.

    Typer's Rich help (markup mode "rich", its default) prints every paragraph after the first with
    the line breaks of the docstring, so a paragraph wrapped at 100 columns in the source breaks
    short at 80 ("log and" / "accounting file"). Here a prose line is joined to the line before it
    when that one is prose too. Intentional breaks stay: an indented line (examples) and a list
    item ("- ", "* ", "1. ") start a line of their own, blank lines still separate paragraphs, a
    paragraph opened by Click's \\b is left as written, and whatever follows a form feed (text
    Click does not show) is untouched. It is the rule tools/docgen.py applies for the man page
    (indented lines are examples, the rest is prose), so --help and the man page read alike.
    """
    shown, cut, hidden = text.partition("\f")
    paragraphs = []
    for paragraph in re.split(r"(\n[ \t]*\n)", shown):
        if paragraph.lstrip(" \t").startswith(("\b", "\n")) or "\n" not in paragraph:
            paragraphs.append(paragraph)  # \b paragraph, blank separator, or a single line
            continue
        lines: list[str] = []
        joinable = False  # whether the previous line is prose (or a list item) a line may continue
        for line in paragraph.split("\n"):
            indented = line[:1] in (" ", "\t")
            item = not indented and _LIST_ITEM.match(line) is not None
            if joinable and line.strip() and not indented and not item:
                lines[-1] = f"{lines[-1].rstrip()} {line.strip()}"
                continue
            lines.append(line)
            joinable = bool(line.strip()) and not indented
        paragraphs.append("\n".join(lines))
    return "".join(paragraphs) + cut + hidden


def click_command(tree: typer.Typer) -> Any:
    """The Click command Typer builds from `tree`, with every command's help text reflowed.

    The one place help is prepared for display: every command and group of the tree, whoever
    wrote its docstring, gets `reflow_help`, so no docstring has to be written for a width.
    """
    command = typer.main.get_command(tree)
    pending = [command]
    while pending:
        current = pending.pop()
        for attribute in ("help", "short_help"):
            text = getattr(current, attribute, None)
            if isinstance(text, str) and "\n" in text:
                setattr(current, attribute, reflow_help(inspect.cleandoc(text)))
        pending.extend(getattr(current, "commands", {}).values())
    return command


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


_global_options: dict[str, bool] | None = None


def global_options() -> dict[str, bool]:
    """The global options, by each of their names, and whether each takes a value: every option of
    `root`, read from its signature (a flag is a bool or a count), so the pre-parser knows exactly
    the options the root command has. They may also be written after the command (`rtppctl ping
    --timeout 0.2`): operators add them at the end of a command line they are editing."""
    global _global_options
    if _global_options is None:
        import typing  # noqa: PLC0415

        found: dict[str, bool] = {}
        for parameter in inspect.signature(root).parameters.values():
            base, *extras = typing.get_args(parameter.annotation) or (None,)
            for info in extras:
                if not isinstance(info, typer.models.OptionInfo):
                    continue
                # Annotated options carry their first name as `default` until Typer moves it.
                names = [info.default] if isinstance(info.default, str) and info.default.startswith("-") else []
                takes_value = base is not bool and not info.count
                found.update(dict.fromkeys([*names, *(info.param_decls or ())], takes_value))
        _global_options = found
    return _global_options


def _is_verbose_cluster(arg: str) -> bool:
    return len(arg) > 1 and arg[0] == "-" and arg[1] != "-" and set(arg[1:]) == {"v"}


def _verbosity(argv: list[str]) -> int:
    """-v count from the raw arguments, for errors raised before the callback ran."""
    return sum(1 if arg == "--verbose" else len(arg) - 1 for arg in argv if arg == "--verbose" or _is_verbose_cluster(arg))


def command_name(args: list[str]) -> str | None:
    """The top-level command or group on the line: the first word that is not a global option,
    its value, or another option."""
    _, rest = split_global_options(args)
    for arg in rest:
        if arg == "--":
            return None
        if not arg.startswith("-"):
            return arg if arg in COMMANDS or arg in GROUPS else None
    return None


def _value_options(command: Any) -> set[str]:
    """The option names of a Click command that take a value (so the next word is theirs)."""
    names: set[str] = set()
    for param in getattr(command, "params", ()):
        if getattr(param, "param_type_name", "") != "option":
            continue
        if getattr(param, "is_flag", False) or getattr(param, "count", False):
            continue
        names.update(param.opts)
    return names


def split_global_options(args: list[str], root_command: Any = None) -> tuple[list[str], list[str]]:
    """(the global options with their values, everything else in order).

    With `root_command` (the Click tree being run), the value of a command's own option is never
    taken for a global option, whatever it looks like.
    """
    known = global_options()
    front: list[str] = []
    rest: list[str] = []
    current = root_command
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            rest.extend(args[index:])
            break
        name = arg.split("=", 1)[0]
        if name in known:
            front.append(arg)
            if known[name] and "=" not in arg and index + 1 < len(args):
                front.append(args[index + 1])
                index += 1
        elif _is_verbose_cluster(arg):
            front.append(arg)
        else:
            rest.append(arg)
            if current is not None and arg.startswith("-") and "=" not in arg:
                if arg in _value_options(current) and index + 1 < len(args):
                    rest.append(args[index + 1])
                    index += 1
            elif current is not None and not arg.startswith("-"):
                # Into a group's sub-command; a command's positional argument changes nothing.
                current = getattr(current, "commands", {}).get(arg, current)
        index += 1
    return front, rest


def hoist_global_options(args: list[str], root_command: Any = None) -> list[str]:
    """Move global options found after the command name to the front, so Click sees them as global."""
    front, rest = split_global_options(args, root_command)
    return front + rest


def run(argv: list[str] | None = None) -> int:
    """Run the command line with `argv` and return the exit code (never raises, never exits)."""
    args = list(sys.argv[1:] if argv is None else argv)
    plugin = _plugin_mode(args)
    try:
        return _run(args, plugin)
    except KeyboardInterrupt:
        return _failed(interrupted(), "interrupted", plugin)
    except BrokenPipeError:
        return reader_gone()


def _plugin_mode(args: list[str]) -> bool:
    """`check --nagios`: every outcome is one of the plugin states 0-3, said on stdout, where the
    monitoring system reads it (a usage error is UNKNOWN, never Click's 2 = CRITICAL)."""
    words = args[: args.index("--")] if "--" in args else args
    return "--nagios" in words and command_name(args) == "check"


def _failed(code: int, message: str, plugin: bool) -> int:
    """The exit code of a run that did not complete: `code`, or UNKNOWN (3) for a plugin, with
    its one status line on stdout (the diagnostic on stderr stays as it is)."""
    if not plugin or code == int(ExitCode.OK):
        return code
    from rtppctl.monitoring.nagios import unknown_output  # noqa: PLC0415

    output = unknown_output(message)
    try:
        sys.stdout.write(output.text.rstrip("\n") + "\n")
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    return int(output.state)


def _run(args: list[str], plugin: bool = False) -> int:
    # The global options alone decide how a failure is reported (-vv, --no-color): a '-vv' given as
    # the value of a command's own option is not one. Until the split, the raw line stands in.
    options = args
    try:
        name = command_name(args)
        tree = build_app(name) if name else __getattr__("app")
        command = click_command(tree)
        options, rest = split_global_options(args, command)
        with command.make_context("rtppctl", options + rest) as ctx:
            result = command.invoke(ctx)
    except RtppctlError as err:
        _report(err, options)
        return _failed(int(err.exit_code), err.message, plugin)
    except ClickException as err:
        _escape_click_message(err)
        err.show()  # type: ignore[attr-defined]
        return _failed(int(err.exit_code), err.format_message(), plugin)  # type: ignore[attr-defined]
    except typer.Exit as err:
        return _failed(int(err.exit_code), f"exit {err.exit_code}", plugin)
    except (KeyboardInterrupt, typer.Abort, EOFError):
        return _failed(interrupted(), "interrupted", plugin)
    except BrokenPipeError:
        return reader_gone()
    except SystemExit as exit_:
        # Rich (which renders --help) handles a closed pipe itself: it points stdout at /dev/null
        # and exits 1. The reader going away is not a failure here either.
        return int(ExitCode.OK) if _stdout_is_null() else _failed(_exit_status(exit_.code), "exit", plugin)
    except Exception as err:  # noqa: BLE001 - the last line of defence: a bug, said in one line
        if _verbosity(options) >= 2:
            import traceback  # noqa: PLC0415

            traceback.print_exc()
        from rtppctl.cli.output import escape  # noqa: PLC0415 - the message may quote anything

        sys.stderr.write(escape(f"rtppctl: internal error: {type(err).__name__}: {err} (run with -vv for the traceback)",
                                tabs=True) + "\n")
        return _failed(int(ExitCode.UNEXPECTED), f"internal error: {type(err).__name__}: {err}", plugin)
    return result if isinstance(result, int) else 0


def interrupted() -> int:
    """Ctrl-C: one line, exit 130, whatever was going on."""
    try:
        sys.stderr.write("rtppctl: interrupted\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    return int(ExitCode.INTERRUPTED)


def reader_gone() -> int:
    """The reader of stdout went away (`| head`): what it did not read is not an error.

    stdout is pointed at /dev/null so that the interpreter's final flush of what is still
    buffered does not fail a second time on the way out.
    """
    import os  # noqa: PLC0415

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return int(ExitCode.OK)


def _stdout_is_null() -> bool:
    import os  # noqa: PLC0415

    try:
        out, null = os.fstat(sys.stdout.fileno()), os.stat(os.devnull)
    except (OSError, ValueError):
        return False
    return (out.st_dev, out.st_ino) == (null.st_dev, null.st_ino)


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    return code if isinstance(code, int) else int(ExitCode.UNEXPECTED)


def _report(err: RtppctlError, options: list[str]) -> None:
    """The error and its hint, one line each, escaped by the renderer like every diagnostic: a
    message may quote a Call-ID, a relay's reply, a database row or a file name."""
    from rtppctl.cli.output import Output  # noqa: PLC0415

    Output(color=False if "--no-color" in options else None, verbose=_verbosity(options)).error(err)


def _escape_click_message(err: Exception) -> None:
    """A usage error quotes what was typed (an option name, a value): shown escaped, as every
    diagnostic is; Click prints its usage lines around it."""
    message = getattr(err, "message", None)
    if isinstance(message, str):
        from rtppctl.cli.output import escape  # noqa: PLC0415

        err.message = escape(message, newlines=True, tabs=True)  # type: ignore[attr-defined]


def main() -> None:
    """The console script: run, flush, exit with the run's code."""
    import gc  # noqa: PLC0415

    code = run()
    # The interpreter's last collection at exit would walk every object the run made; none of
    # them needs finalising by it (files and sockets were closed by the run).
    gc.freeze()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        reader_gone()  # the run's own outcome stands
    except KeyboardInterrupt:
        code = interrupted()
    sys.exit(code)
