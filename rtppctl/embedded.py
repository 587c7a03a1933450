"""The real RTPProxy engine shipped by the `rtp.io` package, run in a process of its own.

Two halves live here. `serve()` is the engine process: it starts librtpproxy with RTPProxy's own
switches, prints one `ready` line on stdout once the control sockets are bound, and then lives until
SIGTERM or SIGINT. The engine object lives only as long as the Python object, and a stopped engine
keeps its ports bound until the process exits, so one engine per process is the only clean way to
stop it. Both `rtppctl embedded start` and the test suite's relay fixture run engines through it.

`engine_args` turns `EmbeddedOptions` into RTPProxy's switches: media on IPv4 loopback (`-l`) and,
where this host can bind it, IPv6 loopback (`-6`) too; the status says which families are served.

The management half (`start`, `stop`, `status`) keeps at most one such process per user, detached
from the shell that started it, with its pid, its command line, its log and its working directory
(where the engine writes `rtpproxy_acct.csv`) in `$XDG_STATE_HOME/rtppctl/embedded/`. The rule it
keeps: a record in that directory describes a live engine or is removed; a pid that is gone, or that
now belongs to another program, is a stale record and is cleaned up without fuss.

Run the engine by hand as: `python -m rtppctl.embedded serve -- -F -l 127.0.0.1 -s udp:127.0.0.1:22222`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

# The engine's options are part of the configuration (its [embedded] table), defaults included.
from rtppctl.config import EmbeddedOptions

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Mapping

    from rtppctl.proto.url import NodeSpec

#: The line the engine process prints once its sockets are bound.
READY_LINE = "ready"

INSTALL_HINT = "install the embedded relay with: pip install 'rtppctl[embedded]'  (or: pip install rtp.io)"

#: Seconds `start` waits for the engine's ready line (it usually takes a few hundredths).
START_TIMEOUT = 5.0
#: Seconds `stop` waits after SIGTERM before it sends SIGKILL.
STOP_TIMEOUT = 5.0

PID_FILE = "embedded.pid"
RECORD_FILE = "embedded.json"
LOG_FILE = "embedded.log"
LOCK_FILE = "embedded.lock"
#: Engine log lines quoted in a start failure; the full log stays on disk.
_LOG_TAIL_LINES = 6
#: Marks our engine in /proc/PID/cmdline, so a pid reused by another program is not taken for it.
_ENGINE_MODULE = "rtppctl.embedded"


# ------------------------------------------------------------------------------------------------
# The engine process
# ------------------------------------------------------------------------------------------------


#: Set to 1 by whoever starts engines as helpers of its own (the tests, the benchmarks): the engine
#: then ends with its parent, even when the parent is killed and cannot stop it (a test run cut by
#: a timeout would otherwise leave engines behind, holding ports and memory). `embedded start`
#: leaves it unset: that engine is meant to outlive the command that started it.
EXIT_WITH_PARENT_ENV = "RTPPCTL_ENGINE_EXIT_WITH_PARENT"


def _exit_with_parent() -> None:
    """Have the kernel send SIGTERM when the parent process ends (Linux prctl PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes  # noqa: PLC0415

    pr_set_pdeathsig = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent ended before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


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
    if os.environ.get(EXIT_WITH_PARENT_ENV) == "1":
        _exit_with_parent()
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


# ------------------------------------------------------------------------------------------------
# What to run
# ------------------------------------------------------------------------------------------------


#: The label the engine needs on its -6 address when -l is given too ("address label is missing").
IPV6_LABEL = "v6"


def engine_args(options: EmbeddedOptions) -> list[str]:
    """RTPProxy's command line for `options`.

    `-F` lets the engine run as root (containers, CI); `-d err` because the default log level costs
    about 40% of the engine's command rate and fills the log (docs/protocol.md, Engine notes). `-6` carries
    `listen6` unless `extra_args` bring their own `-6`, which then wins.
    """
    args = ["-F", "-d", "err", "-l", options.listen]
    if options.listen6 and not _switch_values(options.extra_args, "-6"):
        listen6 = options.listen6 if "@" in options.listen6 else f"{IPV6_LABEL}@{options.listen6}"
        args += ["-6", listen6]
    args += ["-m", str(options.port_min), "-M", str(options.port_max)]
    for spec in options.control:
        args += ["-s", spec]
    for target in options.notify:
        args += ["-n", target]
    if options.record_dir is not None:
        args += ["-r", options.record_dir]
    if options.pcap:
        args.append("-P")
    if options.ttl is not None:
        args += ["-T", str(options.ttl)]
    if options.setup_ttl is not None:
        args += ["-W", str(options.setup_ttl)]
    return args + list(options.extra_args)


def _switch_values(args: list[str], switch: str) -> list[str]:
    """The values given to a one-letter `switch` in `args` ("-6 X" or "-6X"), in order."""
    values = []
    for index, arg in enumerate(args):
        if arg == switch and index + 1 < len(args):
            values.append(args[index + 1])
        elif arg.startswith(switch) and len(arg) > len(switch) and not arg.startswith("--"):
            values.append(arg[len(switch):])
    return values


def media_addresses(args: list[str]) -> dict[str, str | None]:
    """The media addresses an engine command line serves, by family: {"ipv4": ..., "ipv6": ...}.

    From `-l` (IPv4) and `-6` (IPv6), the last of each winning as in the engine; labels ("v6@")
    dropped, "=ADVERTISED" and "A/B" bridging forms kept. None for a family the engine does not serve.
    """
    media: dict[str, str | None] = {"ipv4": None, "ipv6": None}
    for family, switch in (("ipv4", "-l"), ("ipv6", "-6")):
        values = _switch_values(args, switch)
        if values:
            media[family] = values[-1].split("@", 1)[-1]
    return media


def ipv6_unavailable(listen6: str) -> str | None:
    """Why the engine could not relay media on `listen6` here (no IPv6 on this host, or not one
    of its addresses); None when every address in it can be bound."""
    import socket  # noqa: PLC0415

    if not socket.has_ipv6:
        return "this Python was built without IPv6"
    # "label@ADDR=ADVERTISED" and "ADDR_A/ADDR_B": only the local addresses are bound.
    local = listen6.split("@", 1)[-1].split("=", 1)[0]
    for address in local.split("/"):
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
                probe.bind((address, 0))
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            return f"cannot bind {address} ({reason})"
    return None


def default_state_dir(env: Mapping[str, str] | None = None) -> Path:
    """`$XDG_STATE_HOME/rtppctl/embedded`, XDG_STATE_HOME defaulting to ~/.local/state."""
    from rtppctl.files import user_dir  # noqa: PLC0415

    return user_dir("state", env) / "embedded"


# ------------------------------------------------------------------------------------------------
# What runs
# ------------------------------------------------------------------------------------------------


@dataclass
class EmbeddedStatus:
    """What the state directory says runs, checked against the process table."""

    running: bool
    state_dir: Path
    pid: int | None = None
    #: The control sockets as given to the engine (unix paths made absolute).
    control: list[str] = field(default_factory=list)
    #: The engine's full switch list.
    engine_args: list[str] = field(default_factory=list)
    #: Wall-clock start time (seconds since the epoch).
    started_at: float | None = None
    #: The engine's answer to `V` right after start (its protocol version), when checked over udp.
    protocol_version: str | None = None
    #: Why a media family the options asked for is not served (IPv6 missing on this host), or None.
    media_note: str | None = None

    @property
    def log_path(self) -> Path:
        return self.state_dir / LOG_FILE

    @property
    def workdir(self) -> Path:
        return self.state_dir

    @property
    def media(self) -> dict[str, str | None]:
        """Media addresses by family ("ipv4", "ipv6"), None for a family not served."""
        return media_addresses(self.engine_args)

    @property
    def uptime(self) -> float | None:
        if not self.running or self.started_at is None:
            return None
        return max(0.0, time.time() - self.started_at)

    def as_dict(self) -> dict[str, Any]:
        started = None
        if self.started_at is not None:
            from datetime import UTC, datetime  # noqa: PLC0415

            started = datetime.fromtimestamp(self.started_at, UTC).isoformat(timespec="seconds")
        uptime = self.uptime
        return {
            "running": self.running,
            "pid": self.pid,
            "control": list(self.control),
            "engine_args": list(self.engine_args),
            "started_at": started,
            "uptime": round(uptime, 1) if uptime is not None else None,
            "protocol_version": self.protocol_version,
            "media": self.media if self.running else None,
            "media_note": self.media_note,
            "state_dir": str(self.state_dir),
            "log": str(self.log_path),
            "workdir": str(self.workdir),
        }


# ------------------------------------------------------------------------------------------------
# Start, stop, status
# ------------------------------------------------------------------------------------------------

#: Engines started by this process, so liveness checks can reap them (a zombie still answers kill 0).
_spawned: dict[int, subprocess.Popen] = {}


def start(options: EmbeddedOptions | None = None, state_dir: Path | None = None) -> EmbeddedStatus:
    """Start the embedded relay detached from the caller and return what runs.

    Raises `ConfigError` (exit 5) when the local set-up is in the way: one already runs, a control
    socket is busy, the engine refuses its switches or dies at start. `InputError` (exit 6) for
    options that cannot be right (bad socket spec, empty port range); `TransportError` (exit 4)
    when the engine started but does not answer `V` on its first udp control socket; a missing
    rtp.io is a `ConfigError` carrying INSTALL_HINT.
    """
    from dataclasses import replace  # noqa: PLC0415

    from rtppctl.proto.errors import ConfigError  # noqa: PLC0415

    options = options or EmbeddedOptions()
    state_dir = _prepare_state_dir(state_dir)
    if not _engine_installed():
        raise ConfigError("the embedded relay needs the rtp.io package, which is not installed", INSTALL_HINT)
    options, nodes = _checked(options)
    media_note = None
    if options.listen6 and not _switch_values(options.extra_args, "-6"):
        # The engine refuses to start on an address it cannot bind; an IPv4-only relay is still
        # useful, so IPv6 media is left out where it is missing and the status says so.
        problem = ipv6_unavailable(options.listen6)
        if problem is not None:
            media_note = f"no IPv6 media: {problem}"
            options = replace(options, listen6=None)
    with _locked(state_dir):
        current = _load_status(state_dir)
        if current.running:
            raise ConfigError(
                f"the embedded relay is already running (pid {current.pid}, {', '.join(current.control)})",
                "stop it with: rtppctl embedded stop",
            )
        for spec, node in zip(options.control, nodes):
            _check_control_socket_free(spec, node)
        args = engine_args(options)
        process = _spawn(state_dir, args)
        started_at = time.time()
        status = EmbeddedStatus(
            running=True, state_dir=state_dir, pid=process.pid, control=list(options.control),
            engine_args=args, started_at=started_at, media_note=media_note,
        )
        _write_record(status)
    first = nodes[0]
    if first.is_datagram:
        reply = _ask_version(first)
        if reply is None:
            stop(state_dir)
            from rtppctl.proto.errors import TransportError  # noqa: PLC0415

            raise TransportError(
                f"the embedded relay started but does not answer on {options.control[0]}; stopped it again",
                f"see its log: {state_dir / LOG_FILE}",
            )
        status.protocol_version = reply
        _write_record(status)
    return status


def stop(state_dir: Path | None = None) -> dict[str, Any]:
    """Stop the embedded relay: SIGTERM, then SIGKILL after STOP_TIMEOUT. Idempotent.

    Returns {"stopped": False, "reason": "not running"} when nothing runs, so scripts can call it
    unconditionally.
    """
    state_dir = _prepare_state_dir(state_dir)
    with _locked(state_dir):
        current = _load_status(state_dir)
        if not current.running or current.pid is None:
            return {"stopped": False, "reason": "not running", "state_dir": str(state_dir)}
        pid = current.pid
        forced = False
        _signal(pid, signal.SIGTERM)
        if not _wait_gone(pid, STOP_TIMEOUT):
            # The engine ignored SIGTERM (a signal landed on one of its threads, or it hangs):
            # the whole session goes, so nothing it started outlives it.
            forced = True
            _signal(pid, signal.SIGKILL, group=True)
            _wait_gone(pid, STOP_TIMEOUT)
        _remove_record(state_dir)
        return {
            "stopped": True,
            "pid": pid,
            "forced": forced,
            "control": current.control,
            "state_dir": str(state_dir),
        }


def status(state_dir: Path | None = None) -> EmbeddedStatus:
    """What runs now; a record whose process is gone is removed and reported as not running."""
    state_dir = _prepare_state_dir(state_dir)
    with _locked(state_dir):
        return _load_status(state_dir)


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------


def _prepare_state_dir(state_dir: Path | None) -> Path:
    from rtppctl.proto.errors import ConfigError  # noqa: PLC0415

    path = Path(state_dir) if state_dir is not None else default_state_dir()
    try:
        # 0700: the log and the accounting file name call-ids and addresses.
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(f"cannot create the state directory {path}: {exc.strerror}") from None
    return path


def _engine_installed() -> bool:
    import importlib.util  # noqa: PLC0415

    try:
        return importlib.util.find_spec("rtp.io") is not None
    except (ImportError, ValueError):
        # find_spec imports the parent package "rtp"; a missing or broken one means no engine.
        return False


def _checked(options: EmbeddedOptions) -> tuple[EmbeddedOptions, list[NodeSpec]]:
    """Options the engine will take, and the parsed control sockets; InputError otherwise."""
    from dataclasses import replace  # noqa: PLC0415

    from rtppctl.proto import limits  # noqa: PLC0415
    from rtppctl.proto.errors import InputError  # noqa: PLC0415
    from rtppctl.proto.url import parse_node  # noqa: PLC0415

    if not options.control:
        raise InputError("the embedded relay needs at least one control socket", "e.g. --control udp:127.0.0.1:22222")
    control: list[str] = []
    nodes: list[NodeSpec] = []
    for spec in options.control:
        node = parse_node(spec)
        if node.advertised is not None or "=" in spec:
            raise InputError(
                f"control socket {spec!r}: a control socket takes no |advertised address or =weight",
                "those belong in rtpproxy_sock; give the socket only, e.g. udp:127.0.0.1:22222",
            )
        if node.path is not None:
            # The engine runs in the state directory; a relative path must mean the caller's cwd.
            path = os.path.abspath(node.path)
            spec = f"{node.scheme}:{path}"
            node = parse_node(spec)
        control.append(spec)
        nodes.append(node)
    if not limits.MIN_PORT <= options.port_min < options.port_max <= limits.MAX_PORT:
        raise InputError(
            f"media port range {options.port_min}-{options.port_max} is not a range within "
            f"{limits.MIN_PORT}-{limits.MAX_PORT}",
            "e.g. --ports 35000-65000",
        )
    if options.pcap and options.record_dir is None:
        raise InputError("pcap recording needs a record directory", "add --record-dir DIR")
    record_dir = options.record_dir
    if record_dir is not None:
        record_dir = os.path.abspath(record_dir)
        if not os.path.isdir(record_dir):
            raise InputError(f"record directory {record_dir} does not exist", "create it first")
    for value, what in ((options.ttl, "ttl"), (options.setup_ttl, "setup ttl")):
        if value is not None and not limits.MIN_TTL <= value <= limits.MAX_TTL:
            raise InputError(f"{what} must be {limits.MIN_TTL}..{limits.MAX_TTL} seconds, got {value}")
    return replace(options, control=control, record_dir=record_dir), nodes


def _check_control_socket_free(spec: str, node: NodeSpec) -> None:
    """Refuse a control socket another program holds, before the engine trips over it."""
    import errno  # noqa: PLC0415
    import socket  # noqa: PLC0415
    import stat  # noqa: PLC0415

    from rtppctl.proto.errors import ConfigError  # noqa: PLC0415

    hint = "pick another with --control, or stop the program that holds it"
    if node.path is not None:
        try:
            mode = os.stat(node.path).st_mode
        except FileNotFoundError:
            if not os.path.isdir(os.path.dirname(node.path)):
                raise ConfigError(f"control socket {spec}: the directory {os.path.dirname(node.path)} does not exist") from None
            return
        if not stat.S_ISSOCK(mode):
            # The engine unlinks whatever is at the path before binding: never let it eat a file.
            raise ConfigError(f"control socket {spec}: {node.path} exists and is not a socket", hint)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(0.5)
            try:
                probe.connect(node.path)
            except OSError:
                return  # a socket file nobody listens on: left over, the engine replaces it
        raise ConfigError(f"control socket {spec} is busy: another relay or program listens there", hint)
    family = socket.AF_INET6 if node.family == "inet6" else socket.AF_INET
    kind = socket.SOCK_DGRAM if node.is_datagram else socket.SOCK_STREAM
    with socket.socket(family, kind) as probe:
        if kind == socket.SOCK_STREAM:
            # As a listener does: connections in TIME_WAIT do not make the port busy.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((node.host, node.port))
        except socket.gaierror as exc:
            raise ConfigError(f"control socket {spec}: cannot resolve {node.host!r} ({exc.strerror})") from None
        except OSError as exc:
            reason = exc.strerror or str(exc)
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"control socket {spec} is busy ({reason}): another relay or program listens there", hint,
                ) from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise ConfigError(f"control socket {spec}: {node.host} is not an address of this host ({reason})") from None
            if exc.errno == errno.EACCES:
                raise ConfigError(f"control socket {spec}: not allowed to bind ({reason})", "use a port above 1023") from None
            raise ConfigError(f"control socket {spec}: cannot bind ({reason})") from None


def _spawn(state_dir: Path, args: list[str]) -> subprocess.Popen:
    """Run the engine detached, wait for its ready line; ConfigError with the log's tail otherwise."""
    import subprocess  # noqa: PLC0415

    from rtppctl.proto.errors import ConfigError  # noqa: PLC0415

    log_path = state_dir / LOG_FILE
    if log_path.exists():
        # Keep one previous log: the reason the last engine died is often what the operator wants.
        os.replace(log_path, state_dir / (LOG_FILE + ".1"))
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", _ENGINE_MODULE, "serve", "--", *args],
            cwd=state_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log_file,
            # Its own session: Ctrl-C in the starting shell, or the shell exiting, leaves it alone.
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    _spawned[process.pid] = process
    assert process.stdout is not None
    try:
        line = _read_line(process.stdout.fileno(), START_TIMEOUT)
    finally:
        # The engine writes nothing after the ready line; Python ignores SIGPIPE, so a late write
        # would fail quietly rather than kill it.
        process.stdout.close()
    if line == READY_LINE:
        return process
    if line is None and process.poll() is None:
        _signal(process.pid, signal.SIGKILL, group=True)
        process.wait()
        _spawned.pop(process.pid, None)
        raise ConfigError(
            f"the embedded relay did not report ready within {START_TIMEOUT:g} s; stopped it",
            f"see its log: {log_path}",
        )
    try:
        code = process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        _signal(process.pid, signal.SIGKILL, group=True)
        code = process.wait()
    _spawned.pop(process.pid, None)
    reason = "; ".join(_log_tail(log_path)) or f"exit status {code}, nothing in the log"
    raise ConfigError(f"the embedded relay did not start: {reason}", f"full log: {log_path}")


def _read_line(fd: int, timeout: float) -> str | None:
    """The first line on `fd` within `timeout`; None on timeout. "" when it closed without one."""
    import select  # noqa: PLC0415

    buffer = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in buffer:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        readable, _, _ = select.select([fd], [], [], remaining)
        if not readable:
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            return buffer.decode(errors="replace").strip()
        buffer += chunk
    return buffer.split(b"\n", 1)[0].decode(errors="replace").strip()


def _log_tail(log_path: Path) -> list[str]:
    """The engine's last words, without its program-name prefix ("python: can't bind ...")."""
    import re  # noqa: PLC0415

    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return []
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return [re.sub(r"^[\w.-]*python[\w.]*: ", "", line) for line in lines[-_LOG_TAIL_LINES:]]


def _ask_version(node: NodeSpec, timeout: float = 1.0, attempts: int = 3) -> str | None:
    """One `V` through the real client (retransmitted with the same cookie); the reply, or None."""
    from rtppctl.net.client import RelayClient  # noqa: PLC0415
    from rtppctl.proto import command as cmd  # noqa: PLC0415
    from rtppctl.proto.errors import ProxyError, TransportError  # noqa: PLC0415
    from rtppctl.proto.url import parse_node  # noqa: PLC0415

    # A wildcard bind answers on loopback.
    loopback = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(node.host or "")  # noqa: S104
    if loopback is not None:
        node = parse_node(f"{node.scheme}:{loopback}:{node.port}")
    try:
        with RelayClient.open(node, timeout=timeout / attempts, retries=attempts) as client:
            return client.call(cmd.version()).strip()
    except (TransportError, ProxyError):
        return None


def _load_status(state_dir: Path) -> EmbeddedStatus:
    """The record in `state_dir` if its engine lives; otherwise clean up and say not running."""
    import json  # noqa: PLC0415

    pid = _read_pid(state_dir / PID_FILE)
    record: dict[str, Any] = {}
    try:
        loaded = json.loads((state_dir / RECORD_FILE).read_text())
        if isinstance(loaded, dict):
            record = loaded
    except (OSError, ValueError):
        pass
    if pid is None or not _engine_alive(pid):
        _remove_record(state_dir)
        return EmbeddedStatus(running=False, state_dir=state_dir)
    return EmbeddedStatus(
        running=True,
        state_dir=state_dir,
        pid=pid,
        control=[str(item) for item in record.get("control", [])],
        engine_args=[str(item) for item in record.get("engine_args", [])],
        started_at=record.get("started_at") if isinstance(record.get("started_at"), (int, float)) else None,
        protocol_version=record.get("protocol_version"),
        media_note=record.get("media_note") if isinstance(record.get("media_note"), str) else None,
    )


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def _write_record(status: EmbeddedStatus) -> None:
    """The pid file and what runs where, each written atomically."""
    import json  # noqa: PLC0415

    from rtppctl.files import write_atomically  # noqa: PLC0415
    from rtppctl.proto.errors import ConfigError  # noqa: PLC0415

    record = {
        "pid": status.pid,
        "control": status.control,
        "engine_args": status.engine_args,
        "started_at": status.started_at,
        "protocol_version": status.protocol_version,
        "media_note": status.media_note,
        "workdir": str(status.workdir),
        "log": str(status.log_path),
    }
    write_atomically(status.state_dir / RECORD_FILE, json.dumps(record, indent=2) + "\n", error=ConfigError)
    write_atomically(status.state_dir / PID_FILE, f"{status.pid}\n", error=ConfigError)


def _remove_record(state_dir: Path) -> None:
    for name in (PID_FILE, RECORD_FILE):
        with contextlib.suppress(OSError):
            (state_dir / name).unlink()


def _engine_alive(pid: int) -> bool:
    """Is `pid` a live embedded engine (not a zombie, not a stranger that inherited the pid)?"""
    process = _spawned.get(pid)
    if process is not None:
        if process.poll() is None:
            return True
        _spawned.pop(pid, None)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # another user's process: not the engine this user started
    proc = Path("/proc") / str(pid)
    try:
        # Field 3 of /proc/PID/stat is the state; the name before it may contain spaces: split after ")".
        if (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
        return _ENGINE_MODULE.encode() in (proc / "cmdline").read_bytes()
    except (OSError, IndexError):
        return True  # no /proc (not Linux): kill 0 is all we can know


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _engine_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def _signal(pid: int, signum: int, *, group: bool = False) -> None:
    try:
        if group:
            # start_new_session made the engine its group's leader: the group id is its pid.
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)
    except ProcessLookupError:
        pass


class _locked:
    """An exclusive lock on the state directory: one start/stop/status at a time per user."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOCK_FILE
        self.fd = -1

    def __enter__(self) -> None:
        import fcntl  # noqa: PLC0415

        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *_exc: object) -> None:
        os.close(self.fd)  # closing releases the lock


if __name__ == "__main__":
    # Leave the engine's working directory (where it writes rtpproxy_acct.csv) to the caller.
    sys.exit(main())
