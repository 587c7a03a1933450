"""The command line. `main` is the console script; it lives here, in a module that imports
nothing heavy, so that a Ctrl-C while Typer and Rich are still loading still ends in one line and
exit 130 rather than a traceback.

The cyclic garbage collector is off while the program loads: importing Typer, Click and rtppctl's
modules makes tens of thousands of objects, none of them garbage, and the collector would walk
them again and again (a fifth of a one-shot command's time). `cli.common.collect_garbage_from_now`
turns it back on, with what was loaded frozen out of its sight, when a command starts to run.
"""

import gc
import sys


def main() -> None:
    gc.disable()
    try:
        from rtppctl.cli.app import main as run_app  # noqa: PLC0415 - the heavy imports start here
    except KeyboardInterrupt:
        sys.stderr.write("rtppctl: interrupted\n")
        sys.exit(130)
    run_app()
