"""Peers for the channel tests: fake relays and forwarders for faults the real engine cannot make.

Each helper is a thread on loopback that stops when the test ends, after a fixed deadline, or after
a fixed number of packets or connections, whichever comes first, so a broken test cannot hang the run.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tests.relay import Relay

#: No helper thread lives longer than this, whatever the test does.
HELPER_LIFETIME = 30.0


class _Helper:
    """A bounded background thread with a stop flag."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.deadline = time.monotonic() + HELPER_LIFETIME
        self.thread = threading.Thread(target=self._run, daemon=True)

    def running(self) -> bool:
        return not self.stopping.is_set() and time.monotonic() < self.deadline

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(5)

    def _run(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class FakeUdpRelay(_Helper):
    """A UDP peer that hands every datagram to `on_request(sock, data, address)`."""

    def __init__(
        self,
        on_request: Callable[[socket.socket, bytes, tuple], None],
        max_datagrams: int = 1000,
        on_idle: Callable[[socket.socket], None] | None = None,
        port: int = 0,
    ) -> None:
        super().__init__()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.sock.settimeout(0.02)
        self.on_request = on_request
        self.max_datagrams = max_datagrams
        self.received: list[bytes] = []
        #: Called on every idle tick (no datagram within 20 ms), for peers that talk unprompted.
        self.on_idle = on_idle

    @property
    def spec(self) -> str:
        return f"udp:127.0.0.1:{self.sock.getsockname()[1]}"

    def _run(self) -> None:
        try:
            while self.running() and len(self.received) < self.max_datagrams:
                try:
                    data, address = self.sock.recvfrom(65535)
                except TimeoutError:
                    if self.on_idle is not None:
                        self.on_idle(self.sock)
                    continue
                self.received.append(data)
                self.on_request(self.sock, data, address)
        finally:
            self.sock.close()


class FakeTcpRelay(_Helper):
    """A TCP peer that hands each accepted connection to `on_connection(conn, index)`."""

    def __init__(self, on_connection: Callable[[socket.socket, int], None], max_connections: int = 10) -> None:
        super().__init__()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.listener.settimeout(0.05)
        self.on_connection = on_connection
        self.max_connections = max_connections
        self.accepted = 0

    @property
    def spec(self) -> str:
        return f"tcp:127.0.0.1:{self.listener.getsockname()[1]}"

    def _run(self) -> None:
        try:
            while self.running() and self.accepted < self.max_connections:
                try:
                    conn, _ = self.listener.accept()
                except TimeoutError:
                    continue
                self.accepted += 1
                with conn:
                    conn.settimeout(2.0)
                    try:
                        self.on_connection(conn, self.accepted)
                    except OSError:
                        pass
        finally:
            self.listener.close()


def read_line(conn: socket.socket, limit: int = 4096) -> bytes:
    """One newline-terminated command from a client (b"" on EOF)."""
    data = b""
    while not data.endswith(b"\n") and len(data) < limit:
        chunk = conn.recv(1)
        if not chunk:
            return b""
        data += chunk
    return data


class LossyUdpForwarder(_Helper):
    """Sits between one client and a real engine; drops every other datagram in each direction.

    Deterministic: the 1st, 3rd, 5th... datagram from the client is dropped and the 2nd, 4th...
    forwarded; the same pattern, counted separately, applies to the engine's replies. So every
    command is lost once, and its first answer is lost too: the retry that finally gets through
    must be answered from the engine's reply cache, not run a second time.
    """

    def __init__(self, upstream: tuple[str, int], max_datagrams: int = 2000) -> None:
        super().__init__()
        self.upstream = upstream
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.02)
        self.max_datagrams = max_datagrams
        self.from_client = 0
        self.from_engine = 0
        #: Client datagrams that reached the engine, in order.
        self.forwarded: list[bytes] = []
        self.client: tuple | None = None

    @property
    def spec(self) -> str:
        return f"udp:127.0.0.1:{self.sock.getsockname()[1]}"

    def _run(self) -> None:
        try:
            while self.running() and self.from_client + self.from_engine < self.max_datagrams:
                try:
                    data, address = self.sock.recvfrom(65535)
                except TimeoutError:
                    continue
                if address[:2] == self.upstream:
                    self.from_engine += 1
                    if self.from_engine % 2 == 0 and self.client is not None:
                        self.sock.sendto(data, self.client)
                else:
                    self.client = address
                    self.from_client += 1
                    if self.from_client % 2 == 0:
                        self.forwarded.append(data)
                        self.sock.sendto(data, self.upstream)
        finally:
            self.sock.close()


class OneExchangeTcpProxy(FakeTcpRelay):
    """Forwards one request and its reply per client connection to a real engine, then hangs up.

    To the client this is a relay that closes idle connections: its next command on the same
    connection finds the peer gone.
    """

    def __init__(self, upstream: tuple[str, int], max_connections: int = 10) -> None:
        super().__init__(self._forward_one, max_connections)
        self.upstream = upstream

    def _forward_one(self, conn: socket.socket, _index: int) -> None:
        with socket.create_connection(self.upstream, timeout=2.0) as engine:
            line = read_line(conn)
            if line:
                engine.sendall(line)
                conn.sendall(read_line(engine))


@pytest.fixture
def silent_udp() -> Iterator[Callable[..., str]]:
    """silent_udp(host="127.0.0.1") -> the spec of a bound UDP socket nobody reads, closed after the test.

    A relay that swallows every datagram: no answer and, unlike a closed port, no ICMP refusal
    either, so a client waits out every try.
    """
    sockets: list[socket.socket] = []

    def open_one(host: str = "127.0.0.1") -> str:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sockets.append(sock)
        sock.bind((host, 0))
        scheme = "udp6" if family == socket.AF_INET6 else "udp"
        return f"{scheme}:{host}:{sock.getsockname()[1]}"

    yield open_one
    for sock in sockets:
        sock.close()


@pytest.fixture
def _started() -> Iterator[list[_Helper]]:
    started: list[_Helper] = []
    yield started
    for helper in started:
        helper.stop()


def _starter(started: list[_Helper], cls: type) -> Callable[..., _Helper]:
    def start(*args, **kwargs) -> _Helper:
        helper = cls(*args, **kwargs)
        started.append(helper)
        helper.start()
        return helper

    return start


@pytest.fixture
def fake_udp(_started) -> Callable[..., FakeUdpRelay]:
    """fake_udp(on_request) -> a started FakeUdpRelay, stopped after the test."""
    return _starter(_started, FakeUdpRelay)


@pytest.fixture
def fake_tcp(_started) -> Callable[..., FakeTcpRelay]:
    """fake_tcp(on_connection) -> a started FakeTcpRelay, stopped after the test."""
    return _starter(_started, FakeTcpRelay)


@pytest.fixture
def lossy_forwarder(_started) -> Callable[..., LossyUdpForwarder]:
    """lossy_forwarder((host, port)) -> a started LossyUdpForwarder in front of that engine."""
    return _starter(_started, LossyUdpForwarder)


@pytest.fixture
def one_exchange_proxy(_started) -> Callable[..., OneExchangeTcpProxy]:
    """one_exchange_proxy((host, port)) -> a started OneExchangeTcpProxy in front of that engine."""
    return _starter(_started, OneExchangeTcpProxy)


@pytest.fixture(scope="module")
def quiet_relay(relays) -> Relay:
    """An engine of its own, for tests that count sessions and must not see anyone else's."""
    return relays.start(transports=("udp", "tcp"))
