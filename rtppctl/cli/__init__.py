"""The command line. `main` is the console script; it lives here, in a module that imports
nothing heavy, so that a Ctrl-C while Typer and Rich are still loading still ends in one line and
exit 130 rather than a traceback."""

import sys


def main() -> None:
    try:
        from rtppctl.cli.app import main as run_app  # noqa: PLC0415 - the heavy imports start here
    except KeyboardInterrupt:
        sys.stderr.write("rtppctl: interrupted\n")
        sys.exit(130)
    run_app()
