"""The real RTPProxy engine shipped by the `rtp.io` package, run in a process of its own.

`serve()` is the engine process: it starts librtpproxy with RTPProxy's own switches, prints one
`ready` line on stdout once the control sockets are bound, and then lives until SIGTERM or SIGINT.
The engine object lives only as long as the Python object, and a stopped engine keeps its ports
bound until the process exits, so one engine per process is the only clean way to stop it.
Both `rtppctl embedded start` and the test suite's relay fixture run engines through this module.

Run it by hand as: `python -m rtppctl.embedded serve -- -F -l 127.0.0.1 -s udp:127.0.0.1:22222`.
"""

from __future__ import annotations

import signal
import sys

#: The line the engine process prints once its sockets are bound.
READY_LINE = "ready"

INSTALL_HINT = "install the embedded relay with: pip install 'rtppctl[embedded]'  (or: pip install rtp.io)"


def serve(engine_args: list[str]) -> int:
    """Run one engine in this process until a signal stops it; returns the exit status."""
    try:
        from rtp.io import rtpproxy  # noqa: PLC0415 - heavy, and optional
    except ImportError:
        print(f"rtp.io is not installed; {INSTALL_HINT}", file=sys.stderr, flush=True)
        return 3
    stop = {"signal": 0}

    def on_signal(signum: int, _frame: object) -> None:
        stop["signal"] = signum

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        # The engine prints its own reason (busy port, bad switch) on stderr before raising.
        engine = rtpproxy(extra_args=engine_args, modules=("catch_dtmf",))
    except RuntimeError as exc:
        print(f"engine failed to start: {exc}", file=sys.stderr, flush=True)
        return 2
    print(READY_LINE, flush=True)
    while not stop["signal"]:
        signal.pause()
    del engine
    return 0


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] != "serve":
        print("usage: python -m rtppctl.embedded serve -- RTPPROXY_ARGS...", file=sys.stderr)
        return 2
    args = args[1:]
    if args and args[0] == "--":
        args = args[1:]
    return serve(args)


if __name__ == "__main__":
    # Leave the engine's working directory (where it writes rtpproxy_acct.csv) to the caller.
    sys.exit(main())
