"""Start real RTPProxy engines (rtp.io) for tests, each in its own process on free loopback ports.

`RelayFactory.start()` returns a `Relay` whose `specs` map a transport name to the node spec that
reaches it (`"udp" -> "udp:127.0.0.1:41234"`). The engine runs from a temp directory, because it
writes `rtpproxy_acct.csv` into its working directory, with `-d err` because the default log level
is slow and noisy.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ALL_TRANSPORTS = ("udp", "udp6", "tcp", "unix", "cunix")


def stop_process(process: subprocess.Popen, grace: float = 5.0) -> None:
    """Terminate a server the tests started; kill it if it does not end within `grace` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(grace)


def free_port(kind: int = socket.SOCK_DGRAM, host: str = "127.0.0.1") -> int:
    """A port that is free for both UDP and TCP on `host` right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(50):
        with socket.socket(family, kind) as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
        other = socket.SOCK_STREAM if kind == socket.SOCK_DGRAM else socket.SOCK_DGRAM
        try:
            with socket.socket(family, other) as check:
                check.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port found")


def free_port_range(size: int, hosts: tuple[str, ...] = ("127.0.0.1",)) -> range:
    """`size` consecutive UDP ports, starting on an even one (RTP's), free on every one of `hosts`
    right now: a relay's media range (-m/-M), and a forwarder's in front of it."""
    for _ in range(50):
        base = free_port(socket.SOCK_DGRAM) & ~1
        ports = range(base, base + size)
        try:
            for port in ports:
                for host in hosts:
                    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                        probe.bind((host, port))
        except OSError:
            continue
        return ports
    raise RuntimeError("no free port range")


def datagrams_received(sock: socket.socket, wait: float) -> list[bytes]:
    """Every datagram `sock` (a silent stand-in for a relay) receives until `wait` seconds pass
    without one."""
    sock.settimeout(wait)
    got = []
    try:
        while True:
            got.append(sock.recv(65535))
    except TimeoutError:
        return got


@dataclass
class Relay:
    """One running engine."""

    process: subprocess.Popen
    workdir: Path
    specs: dict[str, str]
    args: list[str]
    log: Path
    extra: dict = field(default_factory=dict)

    @property
    def udp(self) -> str:
        return self.specs["udp"]

    def stop(self) -> None:
        stop_process(self.process)

    def alive(self) -> bool:
        return self.process.poll() is None


class RelayFactory:
    """Starts engines on demand and stops every one of them at teardown."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.relays: list[Relay] = []

    def start(
        self,
        transports: tuple[str, ...] = ("udp",),
        extra_args: list[str] | None = None,
        listen: str = "127.0.0.1",
        ipv6: bool = False,
        udp_port: int | None = None,
    ) -> Relay:
        workdir = Path(tempfile.mkdtemp(prefix="relay-", dir=self.base))
        args = ["-F", "-d", "err"]
        if listen:
            args += ["-l", listen]
        if ipv6 or "udp6" in transports:
            args += ["-6", "v6@::1"]
        specs: dict[str, str] = {}
        for transport in transports:
            if transport == "udp":
                spec = f"udp:127.0.0.1:{udp_port or free_port(socket.SOCK_DGRAM)}"
            elif transport == "udp6":
                spec = f"udp6:::1:{free_port(socket.SOCK_DGRAM, '::1')}"
            elif transport == "tcp":
                spec = f"tcp:127.0.0.1:{free_port(socket.SOCK_STREAM)}"
            elif transport == "unix":
                spec = f"unix:{workdir}/rtpp.sock"
            elif transport == "cunix":
                spec = f"cunix:{workdir}/rtpp_c.sock"
            else:
                raise ValueError(transport)
            specs[transport] = spec
            args += ["-s", spec]
        args += extra_args or []
        log = workdir / "engine.log"
        with open(log, "wb") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "rtppctl.embedded", "serve", "--", *args],
                cwd=workdir,
                stdout=subprocess.PIPE,
                stderr=log_file,
                stdin=subprocess.DEVNULL,
                # The engine ends with this process, even when a timeout kills the test run.
                env={**os.environ, "PYTHONUNBUFFERED": "1", "RTPPCTL_ENGINE_EXIT_WITH_PARENT": "1"},
            )
        relay = Relay(process, workdir, specs, args, log)
        self.relays.append(relay)
        line = process.stdout.readline().decode().strip() if process.stdout else ""
        if line != "ready":
            relay.stop()
            raise RuntimeError(f"relay did not start ({args}): {log.read_text(errors='replace')}")
        # Unix sockets appear when the engine binds them; "ready" is printed after that.
        deadline = time.monotonic() + 2
        for transport in ("unix", "cunix"):
            if transport in specs:
                path = specs[transport].split(":", 1)[1]
                while not os.path.exists(path) and time.monotonic() < deadline:
                    time.sleep(0.01)
        return relay

    def stop_all(self) -> None:
        for relay in self.relays:
            relay.stop()
