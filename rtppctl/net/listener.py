"""The notification listener: one socket, many relay connections, events out (docs/protocol.md §9).

Relays connect to it (TCP or a unix socket: a `proto.notify.NotifySocket`) and keep one connection
each; this module accepts them all on one thread with `selectors` (no thread per peer), gives each
connection its own `proto.notify.NotifyParser`, and yields what happens: notifications, peers
connecting and leaving, peers refused. The rules it keeps:

- A TCP peer is accepted only from the relays' addresses unless every peer is allowed (the
  module's rule, §9.1); a refused address is reported once, not per connection.
- At most `max_peers` connections are held: one more is accepted and closed at once (counted,
  reported once), so a flood cannot take every file descriptor. A connection is never closed
  for being idle: RTPProxy keeps one connection per target and finds out it was closed only when
  its next notification is lost.
- Out of file descriptors (EMFILE, ENFILE, ENOBUFS, ENOMEM on accept), the listening socket is
  left out of the selector for a short, growing pause (up to `MAX_ACCEPT_PAUSE`) instead of being
  polled again at once: no busy loop, connected relays are still read at once, and new ones wait
  in the kernel's backlog with their notifications. Reported once per kind of error.
- Each connection holds at most one line's worth of bytes (the parser's bound) and a slow or
  half-open peer blocks nobody: reads are non-blocking, a peer that resets is dropped with a note.
- Peers are labelled by address (`127.0.0.1:40312`); unix peers have none, so each gets its own
  number and, where the system tells (SO_PEERCRED), the relay's pid: `unix#2(pid=4242)`.
- `wakeup_fd` is a descriptor to hand `signal.set_wakeup_fd`: a signal ends a wait at once.
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
import struct
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from rtppctl.proto import limits
from rtppctl.proto.errors import ConfigError
from rtppctl.proto.notify import MAX_LINE, Event, NotifyParser, NotifySocket

#: Bytes read from a peer at once.
READ_SIZE = 65536
#: Connections held at once unless told otherwise (`listen --max-peers`).
MAX_PEERS = limits.DEFAULT_LISTEN_PEERS
#: The first and the longest pause in accepting when the process is out of file descriptors.
FIRST_ACCEPT_PAUSE = 0.05
MAX_ACCEPT_PAUSE = 1.0
#: accept() errors that say the process or the system is out of descriptors or memory.
_NO_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
#: accept() errors about the one connection at hand (it went away first): take the next one.
_GONE = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.ECONNRESET})
#: The selector key data of the wake-up socket (peers have their label, the server None).
_WAKE = object()


class Notifications(NamedTuple):
    """The lines one read from one peer completed, parsed; one per read, not per line, as a relay
    may send thousands in one segment."""

    peer: str
    events: list[Event]
    time: float


@dataclass(frozen=True)
class PeerNews:
    """A peer connected, left, or was refused; or accepting stopped for a while."""

    peer: str
    #: "connected", "closed", "reset", "refused" (not a relay's address), "full" (over max_peers),
    #: "exhausted" (out of file descriptors: accepting paused) or "error" (another accept error).
    what: str
    detail: str | None
    time: float


class Listener:
    """A bound notification socket; iterate `events()` for what arrives."""

    def __init__(self, address: NotifySocket, *, allowed: Iterable[str] | None = None, max_line: int = MAX_LINE,
                 max_peers: int = MAX_PEERS) -> None:
        self.address = address
        #: IP addresses TCP peers may connect from; None: any.
        self.allowed = None if allowed is None else frozenset(allowed)
        self.max_line = max_line
        self.max_peers = max_peers
        self._selector = selectors.DefaultSelector()
        self._server: socket.socket | None = None
        self._peers: dict[socket.socket, tuple[str, NotifyParser]] = {}
        self._refused_before: set[str] = set()
        #: accept() errnos already reported, so a long shortage is one line, not one per attempt.
        self._reported_errors: set[int | None] = set()
        self._created_path: str | None = None
        self._unix_peers = 0
        #: While out of descriptors: when to poll the listening socket again, and the pause.
        self._resume_at: float | None = None
        self._pause = 0.0
        self._wake_read: socket.socket | None = None
        self._wake_write: socket.socket | None = None
        #: Connections refused for their address, and for being over max_peers.
        self.refused = 0
        self.refused_max_peers = 0
        #: Times accepting was paused for want of file descriptors (or another accept error).
        self.accept_pauses = 0

    def __enter__(self) -> Listener:
        try:
            self.open()
        except BaseException:
            self.close()  # what was opened before the failure (the wake-up pair)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        # The wake-up pair first: if even that fails (out of descriptors), nothing is bound yet.
        self._wake_read, self._wake_write = socket.socketpair()
        for end in (self._wake_read, self._wake_write):
            end.setblocking(False)
        self._selector.register(self._wake_read, selectors.EVENT_READ, _WAKE)
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

    @property
    def wakeup_fd(self) -> int:
        """A descriptor whose writes end the current wait (for `signal.set_wakeup_fd`)."""
        assert self._wake_write is not None, "open() first"
        return self._wake_write.fileno()

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
        """What happened within `timeout` seconds (None: wait for something); a signal written to
        `wakeup_fd` ends the wait early, with nothing."""
        if self._resume_at is not None:
            left = self._resume_at - time.monotonic()
            if left <= 0:
                self._resume_accepting()
            else:
                timeout = left if timeout is None else min(timeout, left)
        for key, _ in self._selector.select(timeout):
            if key.data is None:
                yield from self._accept()
            elif key.data is _WAKE:
                with contextlib.suppress(OSError):
                    while self._wake_read.recv(4096):  # type: ignore[union-attr]
                        pass
            elif key.fileobj in self._peers:  # not dropped earlier in this round
                yield from self._read(key.fileobj)  # type: ignore[arg-type]

    def _accept(self) -> Iterator[PeerNews]:
        assert self._server is not None
        while self._resume_at is None:
            try:
                connection, address = self._server.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _GONE:
                    continue
                yield from self._pause_accepting(exc)
                return
            self._pause = 0.0
            ip = address[0] if isinstance(address, tuple) and address else None
            if ip is not None and self.allowed is not None and ip not in self.allowed:
                connection.close()
                self.refused += 1
                if ip not in self._refused_before:
                    self._refused_before.add(ip)
                    yield PeerNews(f"{ip}:{address[1]}", "refused",
                                   f"{ip} is not a configured relay's address (--any-peer takes any)", time.time())
                continue
            peer = f"{ip}:{address[1]}" if ip is not None else self._unix_label(connection)
            if len(self._peers) >= self.max_peers:
                # Refused at once rather than left in the backlog: a relay there would block in connect().
                connection.close()
                self.refused_max_peers += 1
                if self.refused_max_peers == 1:
                    yield PeerNews(peer, "full", f"{self.max_peers} peers are connected already (--max-peers); "
                                   "new connections are refused, connected ones kept", time.time())
                continue
            connection.setblocking(False)
            self._peers[connection] = (peer, NotifyParser(self.max_line))
            self._selector.register(connection, selectors.EVENT_READ, peer)
            yield PeerNews(peer, "connected", None, time.time())

    def _unix_label(self, connection: socket.socket) -> str:
        """`unix#N`, with the peer's pid where SO_PEERCRED tells it, so that two relays on one
        socket are told apart."""
        self._unix_peers += 1
        label = f"unix#{self._unix_peers}"
        option = getattr(socket, "SO_PEERCRED", None)
        if option is not None:
            with contextlib.suppress(OSError, struct.error):
                pid = struct.unpack("3i", connection.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i")))[0]
                if pid > 0:
                    label += f"(pid={pid})"
        return label

    def _pause_accepting(self, exc: OSError) -> Iterator[PeerNews]:
        """Stop polling the listening socket for a while: it stays readable while the process has
        no descriptor to accept with, and polling it again at once would spin."""
        assert self._server is not None
        self._pause = min(MAX_ACCEPT_PAUSE, self._pause * 2 or FIRST_ACCEPT_PAUSE)
        self._resume_at = time.monotonic() + self._pause
        self.accept_pauses += 1
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(self._server)
        if exc.errno in self._reported_errors:
            return
        self._reported_errors.add(exc.errno)
        reason = exc.strerror or str(exc)
        if exc.errno in _NO_RESOURCES:
            yield PeerNews(self.address.text, "exhausted",
                           f"cannot accept a connection: {reason}; connected relays are still read, new ones wait "
                           f"(retried every {MAX_ACCEPT_PAUSE:g} s at most)", time.time())
        else:
            yield PeerNews(self.address.text, "error", f"cannot accept a connection: {reason}", time.time())

    def _resume_accepting(self) -> None:
        self._resume_at = None
        if self._server is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.register(self._server, selectors.EVENT_READ, None)

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
        """Close every connection and the socket (removing a unix socket file it made); again: nothing."""
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
        for end in (self._wake_read, self._wake_write):
            if end is not None:
                with contextlib.suppress(Exception):
                    self._selector.unregister(end)
                end.close()
        self._wake_read = self._wake_write = None
        if self._created_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._created_path)
            self._created_path = None
        self._selector.close()


__all__ = ["MAX_PEERS", "Listener", "Notifications", "PeerNews"]
