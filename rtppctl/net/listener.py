"""The notification listener: one socket, many relay connections, events out (protocol.md §9).

Relays connect to it (TCP or a unix socket) and keep one connection each; this module accepts
them all on one thread with `selectors` (no thread per peer), gives each connection its own
`proto.notify.NotifyParser`, and yields what happens: notifications, peers connecting and leaving,
peers refused. The rules it keeps:

- A TCP peer is accepted only from the relays' addresses unless every peer is allowed (the
  module's rule, §9.1); a refused address is reported once, not per connection.
- Each connection holds at most one line's worth of bytes (the parser's bound) and a slow or
  half-open peer blocks nobody: reads are non-blocking, a peer that resets is dropped with a note.
- A unix socket file the listener created is removed when it closes; an address another program
  listens on is a `ConfigError` (exit 5), as for `embedded start`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import socket
import stat
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from rtppctl.proto.errors import ConfigError, InputError
from rtppctl.proto.notify import MAX_LINE, Event, NotifyParser

#: Bytes read from a peer at once.
READ_SIZE = 65536


@dataclass(frozen=True)
class ListenAddress:
    """Where the listener binds: ("tcp", host, port) or ("unix", path)."""

    kind: str
    host: str | None = None
    port: int | None = None
    path: str | None = None

    @property
    def text(self) -> str:
        """As RTPProxy's `-n` and the U command write it."""
        return f"tcp:{self.host}:{self.port}" if self.kind == "tcp" else f"unix:{self.path}"


def parse_listen_address(text: str) -> ListenAddress:
    """`tcp:IPv4:PORT`, `unix:/path` or a bare `/path`, as `rtpp_notify_socket` takes them."""
    import ipaddress  # noqa: PLC0415

    if text.startswith("tcp:"):
        host, sep, port = text[4:].rpartition(":")
        try:
            ipaddress.IPv4Address(host)
            number = int(port)
        except ValueError:
            raise InputError(f"{text!r}: write tcp:IPv4:PORT, e.g. tcp:127.0.0.1:9999",
                             "the module binds an IPv4 literal only (§9.1)") from None
        if not sep or not 1 <= number <= 65535:
            raise InputError(f"{text!r}: the port must be 1..65535")
        return ListenAddress("tcp", host, number)
    path = text[5:] if text.startswith("unix:") else text
    if not path.startswith("/"):
        raise InputError(f"{text!r}: write tcp:IPv4:PORT, unix:/path or an absolute /path")
    return ListenAddress("unix", path=path)


class Notifications(NamedTuple):
    """The lines one read from one peer completed, parsed; one per read, not per line, as a relay
    may send thousands in one segment."""

    peer: str
    events: list[Event]
    time: float


@dataclass(frozen=True)
class PeerNews:
    """A peer connected, left, or was refused."""

    peer: str
    #: "connected", "closed", "reset" or "refused".
    what: str
    detail: str | None
    time: float


class Listener:
    """A bound notification socket; iterate `events()` for what arrives."""

    def __init__(self, address: ListenAddress, *, allowed: Iterable[str] | None = None, max_line: int = MAX_LINE) -> None:
        self.address = address
        #: IP addresses TCP peers may connect from; None: any.
        self.allowed = None if allowed is None else frozenset(allowed)
        self.max_line = max_line
        self._selector = selectors.DefaultSelector()
        self._server: socket.socket | None = None
        self._peers: dict[socket.socket, tuple[str, NotifyParser]] = {}
        self._refused_before: set[str] = set()
        self._created_path: str | None = None
        self.refused = 0

    def __enter__(self) -> Listener:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        address = self.address
        if address.kind == "unix":
            server = self._bind_unix(address.path or "")
        else:
            server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                server.bind((address.host, address.port))
            except OSError as exc:
                server.close()
                raise self._bind_error(exc) from None
        server.listen(128)
        server.setblocking(False)
        self._server = server
        self._selector.register(server, selectors.EVENT_READ, None)

    def _bind_unix(self, path: str) -> socket.socket:
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            mode = None
        if mode is not None:
            if not stat.S_ISSOCK(mode):
                raise ConfigError(f"notification socket {self.address.text}: {path} exists and is not a socket",
                                  "give another path")
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                try:
                    probe.connect(path)
                except OSError:
                    os.unlink(path)  # left over by a listener that died: nobody listens there
                else:
                    raise ConfigError(f"notification socket {self.address.text} is busy: another listener holds it",
                                      "stop it, or give another path")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            server.bind(path)
        except OSError as exc:
            server.close()
            raise self._bind_error(exc) from None
        self._created_path = path
        return server

    def _bind_error(self, exc: OSError) -> ConfigError:
        reason = exc.strerror or str(exc)
        if exc.errno == errno.EADDRINUSE:
            return ConfigError(f"notification socket {self.address.text} is busy ({reason}): another program listens there",
                               "stop it, or give another address")
        if exc.errno == errno.EADDRNOTAVAIL:
            return ConfigError(f"notification socket {self.address.text}: not an address of this host ({reason})")
        return ConfigError(f"notification socket {self.address.text}: cannot bind ({reason})")

    @property
    def bound(self) -> str:
        """The address as bound (the real port when 0 was asked)."""
        if self._server is None:
            return self.address.text
        if self.address.kind == "tcp":
            host, port = self._server.getsockname()[:2]
            return f"tcp:{host}:{port}"
        return self.address.text

    @property
    def peers(self) -> int:
        return len(self._peers)

    def events(self, timeout: float | None = None) -> Iterator[Notifications | PeerNews]:
        """What happened within `timeout` seconds (None: wait for something)."""
        for key, _ in self._selector.select(timeout):
            if key.data is None:
                yield from self._accept()
            else:
                yield from self._read(key.fileobj)  # type: ignore[arg-type]

    def _accept(self) -> Iterator[PeerNews]:
        assert self._server is not None
        while True:
            try:
                connection, address = self._server.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                yield PeerNews(self.address.text, "error", exc.strerror or str(exc), time.time())
                return
            ip = address[0] if isinstance(address, tuple) else None
            peer = f"{address[0]}:{address[1]}" if ip else "unix"
            if ip is not None and self.allowed is not None and ip not in self.allowed:
                connection.close()
                self.refused += 1
                if ip not in self._refused_before:
                    self._refused_before.add(ip)
                    yield PeerNews(peer, "refused", f"{ip} is not a configured relay's address (--any-peer takes any)",
                                   time.time())
                continue
            connection.setblocking(False)
            self._peers[connection] = (peer, NotifyParser(self.max_line))
            self._selector.register(connection, selectors.EVENT_READ, peer)
            yield PeerNews(peer, "connected", None, time.time())

    def _read(self, connection: socket.socket) -> Iterator[Notifications | PeerNews]:
        peer, parser = self._peers[connection]
        try:
            data = connection.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            yield from self._drop(connection, "reset", exc.strerror or str(exc))
            return
        if not data:
            yield from self._drop(connection, "closed", None)
            return
        events = parser.feed(data)
        if events:
            yield Notifications(peer, events, time.time())

    def _drop(self, connection: socket.socket, what: str, detail: str | None) -> Iterator[Notifications | PeerNews]:
        peer, parser = self._peers.pop(connection)
        with contextlib.suppress(Exception):
            self._selector.unregister(connection)
        connection.close()
        now = time.time()
        left = parser.close()
        if left:
            yield Notifications(peer, left, now)
        yield PeerNews(peer, what, detail, now)

    def close(self) -> None:
        for connection in list(self._peers):
            with contextlib.suppress(Exception):
                self._selector.unregister(connection)
            connection.close()
        self._peers.clear()
        if self._server is not None:
            with contextlib.suppress(Exception):
                self._selector.unregister(self._server)
            self._server.close()
            self._server = None
        if self._created_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._created_path)
            self._created_path = None
        self._selector.close()


__all__ = ["ListenAddress", "Listener", "Notifications", "PeerNews", "parse_listen_address"]
