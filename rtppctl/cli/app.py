"""The root command: global options, the command groups, and the mapping of errors to exit codes.

`main()` is the console script. It runs the Typer app without Click's standalone handling so that
every outcome goes through one place: an `RtppctlError` becomes its one-line message (and hint)
on stderr and the exit code of its class (design.md); a usage error exits 2; Ctrl-C exits 130;
anything else is a bug, reported in one line (with the traceback from -vv on) and exit 1.
Command modules are imported here but keep their own heavy imports inside their functions, so
`rtppctl --help` and one-shot commands start fast.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from rtppctl import __version__
from rtppctl.cli import config_cmd, embedded_cmd, relay_cmd
from rtppctl.cli.common import Session
from rtppctl.proto.errors import ExitCode, RtppctlError

app = typer.Typer(
    name="rtppctl",
    help="Operator toolkit for RTPProxy media relays: what the OpenSIPS rtpproxy module does, from a shell.\n\n"
    "Examples:\n\n"
    "  rtppctl embedded start            # a real relay on udp:127.0.0.1:22222\n\n"
    "  rtppctl ping --all                # every configured relay\n\n"
    "  rtppctl version -t udp:10.0.0.5:22222\n\n"
    "  rtppctl --json info               # counters as one JSON object",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        print(f"rtppctl {__version__}")
        raise typer.Exit(0)


@app.callback()
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


relay_cmd.register(app)
app.add_typer(config_cmd.config_app, name="config", help="Show, locate and create the configuration file.")
app.add_typer(embedded_cmd.embedded_app, name="embedded", help="Run the real RTPProxy engine (rtp.io) on loopback.")


def _verbosity(argv: list[str]) -> int:
    """-v count from the raw arguments, for errors raised before the callback ran."""
    count = 0
    for arg in argv:
        if arg == "--verbose":
            count += 1
        elif arg.startswith("-") and not arg.startswith("--") and set(arg[1:]) == {"v"}:
            count += len(arg) - 1
    return count


def run(argv: list[str] | None = None) -> int:
    """Run the command line with `argv` and return the exit code (never raises, never exits)."""
    from typer._click.exceptions import ClickException  # noqa: PLC0415 - Typer vendors Click

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        result = app(args=args, prog_name="rtppctl", standalone_mode=False)
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
