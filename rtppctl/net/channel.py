"""One synchronous request/reply channel to one RTPProxy node, one class per framing.

`DatagramChannel` (udp, udp6) sends `<cookie> <command>`, retransmits with the SAME cookie so the
engine's reply cache keeps retries idempotent, and accepts only the datagram that echoes the
cookie; its socket is connected to the node, so the kernel drops datagrams from anyone else and a
port nobody listens on fails at once. `StreamChannel` (tcp, tcp6, cunix) keeps one connection open,
sends newline-framed commands once (docs/protocol.md §1.3) and reconnects once when the idle connection
turns out to be dead. `OneShotChannel` (unix) opens a connection per command, as the engine
requires. Every channel turns every failure into a `TransportError` that names the node and says
what happened; framing rules come from `rtppctl.proto.framing`. `open_channel` picks the class.

A channel is not thread-safe: one outstanding request at a time. The request path is benchmarked
against a raw-socket loop, so it avoids logging, clocks and syscalls it does not need.
"""

from __future__ import annotations

import binascii
import math
import os
import socket
import stat
from collections.abc import Callable, Sequence
from time import monotonic
from typing import TYPE_CHECKING

from rtppctl.proto.errors import InputError, ReplyTimeout, TransportError
from rtppctl.proto.framing import (
    CookieSequence,
    datagram_reply_prefix,
    encode_datagram,
    encode_oneshot,
    encode_stream,
    reply_length,
)

if TYPE_CHECKING:
    from types import TracebackType

    from rtppctl.proto.url import NodeSpec

#: trace(direction, node_url, raw_bytes): ">" sent, "<" received and used, "!" received and dropped.
Trace = Callable[[str, str, bytes], None]

#: Large enough for any datagram, so a long reply (G with many counters, I) is never truncated.
_DATAGRAM_BUFFER = 65535
_STREAM_CHUNK = 65536
#: Commands in flight at once when pipelining over udp: the engine's control socket has a 32 KB
#: receive buffer and starts losing datagrams past about 24 outstanding requests.
_WINDOW = 16

_NO_REPLY_HINT = (
    "is RTPProxy running and listening there? check the address, the firewall, and --timeout/--retries"
)
_REFUSED_HINT = "is RTPProxy running with a control socket (-s) at that address?"
_UDP_REFUSED_HINT = (
    "the host answered ICMP port unreachable: is RTPProxy running there, with -s on that address and port?"
)
_UNIX_PERMISSION_HINT = (
    "the socket's owner and mode do not let this user connect: run as its owner or a member of its "
    "group, or have RTPProxy create it with a wider mode"
)
_INET_PERMISSION_HINT = "a local firewall or security policy refused the connection"
_RESOLVE_HINT = "check the host name in the node spec, or use an IP address"


#: Random bytes in a cookie prefix: 9 bytes are 72 bits, written as 12 URL-safe base64 characters.
_COOKIE_PREFIX_BYTES = 9
_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _new_cookie_sequence() -> CookieSequence:
    # The engine caches replies by cookie alone, not by sender, for about 35 s (docs/protocol.md §16.1):
    # two clients that ever share a prefix in that window get each other's replies and their own
    # commands never run. A pid is no help across hosts and containers (small pids repeat), so the
    # prefix is random only, and wide enough that no two processes anywhere share one. Base64
    # keeps it short (it is sent in every datagram) and free of the engine's separators. This is
    # secrets.token_urlsafe (same os.urandom source) without importing secrets, hmac and hashlib
    # on every one-shot command.
    raw = binascii.b2a_base64(os.urandom(_COOKIE_PREFIX_BYTES), newline=False).translate(_URLSAFE)
    return CookieSequence(raw.decode("ascii"))


# One cookie sequence per process, not per channel: one random prefix and one counter shared by
# every channel is the simplest way to never hand out the same cookie twice.
_process_cookies = _new_cookie_sequence()


def _renew_cookies_after_fork() -> None:
    # A forked child must not replay its parent's cookies (same prefix, same counter), and that
    # includes channels it inherited: they look the sequence up on every command.
    global _process_cookies
    _process_cookies = _new_cookie_sequence()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_renew_cookies_after_fork)


def _seconds(value: float) -> str:
    return f"{value:g} s"


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _timed_out(url: str, timeout: float, partial: bytes) -> TransportError:
    what = "no complete reply" if partial else "no reply"
    return ReplyTimeout(f"{what} from {url} within {_seconds(timeout)}", hint=_NO_REPLY_HINT)


def _udp_refused(url: str) -> TransportError:
    return TransportError(f"{url} refused the request: nothing listens on that udp port", hint=_UDP_REFUSED_HINT)


def _not_a_socket(path: str) -> str | None:
    """What is at `path` when it exists and is not a socket ("a regular file"...); else None."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISSOCK(mode):
        return None
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    return "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a special file"


def _connect_failure(
    url: str, exc: BaseException, timeout: float, *, unix: bool, path: str | None = None
) -> TransportError:
    """A TransportError that says how connecting to `url` failed and what to check."""
    if isinstance(exc, ConnectionRefusedError):
        # Linux refuses a connect() to a path that holds anything but a socket with the same
        # ECONNREFUSED as a dead relay's socket; only a look at the path tells them apart.
        what = _not_a_socket(path) if unix and path is not None else None
        if what is not None:
            return TransportError(
                f"{url} is not a socket ({path} is {what})",
                hint="point the node spec at the socket RTPProxy creates with -s unix:PATH or -s cunix:PATH",
            )
        if unix:
            return TransportError(
                f"connection refused by {url} (the socket file exists but nothing accepts on it)",
                hint="RTPProxy may have stopped and left a stale socket file; is it running?",
            )
        return TransportError(f"connection refused by {url}", hint=_REFUSED_HINT)
    if isinstance(exc, FileNotFoundError):
        return TransportError(
            f"no socket at {url} ({_reason(exc)})",
            hint="is RTPProxy running with -s pointing at this path?",
        )
    if isinstance(exc, PermissionError):
        return TransportError(
            f"permission denied on {url}",
            hint=_UNIX_PERMISSION_HINT if unix else _INET_PERMISSION_HINT,
        )
    if isinstance(exc, TimeoutError):
        return ReplyTimeout(f"timed out connecting to {url} after {_seconds(timeout)}", hint=_NO_REPLY_HINT)
    if isinstance(exc, socket.gaierror):
        return TransportError(f"cannot resolve the host of {url} ({_reason(exc)})", hint=_RESOLVE_HINT)
    return TransportError(f"cannot connect to {url} ({_reason(exc)})", hint=_NO_REPLY_HINT)


def _resolve(node: NodeSpec, kind: int) -> list[tuple]:
    """Socket addresses for an inet node, restricted to the node's family (udp6/tcp6 -> IPv6)."""
    family = socket.AF_INET6 if node.family == "inet6" else socket.AF_INET
    # An IP literal of the right family needs no resolver; skipping getaddrinfo also skips its
    # IDNA encoding of the host name, which imports unicode tables on every one-shot command.
    try:
        literal = socket.inet_pton(family, node.host or "")
    except (OSError, ValueError):
        literal = None
    if literal is not None:
        return [(node.host, node.port, 0, 0) if family == socket.AF_INET6 else (node.host, node.port)]
    try:
        infos = socket.getaddrinfo(node.host, node.port, family, kind)
    except (socket.gaierror, UnicodeError) as exc:
        raise TransportError(f"cannot resolve the host of {node.url} ({_reason(exc)})", hint=_RESOLVE_HINT) from None
    if not infos:
        raise TransportError(f"cannot resolve the host of {node.url}", hint=_RESOLVE_HINT)
    return [info[4] for info in infos]


class Channel:
    """A request/reply channel to one node; use as a context manager or call `close()`."""

    def __init__(self, node: NodeSpec, *, timeout: float, trace: Trace | None) -> None:
        self.node = node
        #: The node's identity, used in every message and trace line.
        self.url = node.url
        self._timeout = timeout
        self._trace = trace

    def request(self, command: str) -> bytes:
        """Send one command; return the reply body bytes, final newline included."""
        raise NotImplementedError

    def request_many(self, commands: Sequence[str]) -> list[bytes]:
        """Replies to several independent commands, in order. Channels that can pipeline do."""
        return [self.request(command) for command in commands]

    def close(self) -> None:
        """Release the socket; safe to call twice."""

    def _read_reply(self, sock: socket.socket, command: str, *, reset_ends_reply: bool) -> tuple[bytes, bool]:
        """Read from a stream socket until the reply to `command` is complete: (reply, True); or
        until the peer closed it first: (what came, False). The whole wait is one `timeout`.

        A timeout or read error raises TransportError (after tracing what had arrived); a reset
        counts as a close when `reset_ends_reply`, else it propagates (the one-shot socket retries).
        """
        started = monotonic()
        buffer = b""
        try:
            while True:
                try:
                    chunk = sock.recv(_STREAM_CHUNK)
                except TimeoutError:
                    self._trace_dropped(buffer)
                    raise _timed_out(self.url, self._timeout, buffer) from None
                except ConnectionResetError:
                    if not reset_ends_reply:
                        raise
                    chunk = b""
                except OSError as exc:
                    self._trace_dropped(buffer)
                    raise TransportError(f"cannot read from {self.url} ({_reason(exc)})", hint=_NO_REPLY_HINT) from None
                if not chunk:
                    return buffer, False
                buffer = buffer + chunk if buffer else chunk
                length = reply_length(command, buffer)
                if length is not None:
                    # Nothing should follow a complete reply; keeping it would shift every later answer.
                    self._trace_dropped(buffer[length:])
                    return buffer[:length], True
                remaining = started + self._timeout - monotonic()
                if remaining <= 0:
                    self._trace_dropped(buffer)
                    raise _timed_out(self.url, self._timeout, buffer)
                sock.settimeout(remaining)
        finally:
            if sock.fileno() >= 0 and sock.gettimeout() != self._timeout:
                sock.settimeout(self._timeout)

    def _trace_dropped(self, data: bytes) -> None:
        if data and self._trace is not None:
            self._trace("!", self.url, data)

    def __enter__(self) -> Channel:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


class DatagramChannel(Channel):
    """udp / udp6: cookie framing, retransmits with the same cookie, foreign datagrams dropped."""

    def __init__(self, node: NodeSpec, *, timeout: float, retries: int, trace: Trace | None) -> None:
        super().__init__(node, timeout=timeout, trace=trace)
        self._retries = max(1, retries)
        peer = _resolve(node, socket.SOCK_DGRAM)[0]
        family = socket.AF_INET6 if node.family == "inet6" else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.settimeout(timeout)
        # Connected, for two reasons. The kernel then drops every datagram that does not come from
        # the node's address and port, so only the cookie is left to check here. And an ICMP
        # port-unreachable from the node comes back as ECONNREFUSED on the next recv or send: a
        # relay with nothing on that port fails at once, not after timeout x retries. A node that
        # is merely silent or lossy still gets every try, and nothing is sent by connecting.
        try:
            self._sock.connect(peer)
        except OSError as exc:
            self._sock.close()
            raise TransportError(f"cannot send to {self.url} ({_reason(exc)})", hint=_NO_REPLY_HINT) from None

    def request(self, command: str) -> bytes:
        # No draining of late replies before sending (the module does it): a late or foreign
        # datagram can never match the fresh cookie, and skipping the extra syscall keeps the
        # sequential round trip close to a bare socket loop.
        cookie = _process_cookies.next()
        packet = encode_datagram(cookie, command)
        prefix = datagram_reply_prefix(cookie)
        for _ in range(self._retries):
            self._send(packet)
            body = self._await_reply(prefix)
            if body is not None:
                return body
        tries = f"{self._retries} tr{'y' if self._retries == 1 else 'ies'}"
        raise TransportError(
            f"no reply from {self.url} after {tries} of {_seconds(self._timeout)}", hint=_NO_REPLY_HINT
        )

    def request_many(self, commands: Sequence[str]) -> list[bytes]:
        """Pipelined: up to _WINDOW commands in flight, each with its own cookie, replies matched
        by cookie whatever their order, missing ones retransmitted with the same cookie.

        Worth it for a distant relay: `version` asks 27 questions, one round trip instead of 27.
        """
        replies: list[bytes | None] = [None] * len(commands)
        for start in range(0, len(commands), _WINDOW):
            waiting: dict[bytes, tuple[int, bytes]] = {}
            for index in range(start, min(start + _WINDOW, len(commands))):
                cookie = _process_cookies.next()
                waiting[datagram_reply_prefix(cookie)] = (index, encode_datagram(cookie, commands[index]))
            for _ in range(self._retries):
                for _index, packet in waiting.values():
                    self._send(packet)
                self._collect(waiting, replies)
                if not waiting:
                    break
            if waiting:
                raise TransportError(
                    f"no reply from {self.url} to {len(waiting)} of {len(commands)} commands after "
                    f"{self._retries} tr{'y' if self._retries == 1 else 'ies'} of {_seconds(self._timeout)}",
                    hint=_NO_REPLY_HINT,
                )
        return replies  # type: ignore[return-value] - every slot is filled once nothing waits

    def _collect(self, waiting: dict[bytes, tuple[int, bytes]], replies: list[bytes | None]) -> None:
        """Take replies for `waiting` cookies until none waits or this try's timeout has passed."""
        sock = self._sock
        deadline = monotonic() + self._timeout
        try:
            while waiting:
                remaining = deadline - monotonic()
                if remaining <= 0:
                    return
                sock.settimeout(remaining)
                try:
                    data = sock.recv(_DATAGRAM_BUFFER)
                except TimeoutError:
                    return
                except ConnectionRefusedError:
                    raise _udp_refused(self.url) from None
                prefix = data[: data.find(b" ") + 1]
                if prefix and prefix in waiting:
                    index, _packet = waiting.pop(prefix)
                    replies[index] = data[len(prefix) :]
                    if self._trace is not None:
                        self._trace("<", self.url, data)
                elif self._trace is not None:
                    self._trace("!", self.url, data)
        finally:
            sock.settimeout(self._timeout)

    def _send(self, packet: bytes) -> None:
        try:
            self._sock.send(packet)
        except ConnectionRefusedError:
            # A refusal reported on send was earned by an earlier datagram (say a late retransmit
            # that met a relay restarting); the kernel cleared it and did not send this one. Send
            # again: whether the node refuses THIS command is what counts, and recv will tell.
            try:
                self._sock.send(packet)
            except ConnectionRefusedError:
                raise _udp_refused(self.url) from None
            except OSError as exc:
                raise TransportError(f"cannot send to {self.url} ({_reason(exc)})", hint=_NO_REPLY_HINT) from None
        except OSError as exc:
            raise TransportError(f"cannot send to {self.url} ({_reason(exc)})", hint=_NO_REPLY_HINT) from None
        if self._trace is not None:
            self._trace(">", self.url, packet)

    def _await_reply(self, prefix: bytes) -> bytes | None:
        """The body of the reply starting with `prefix` (cookie and space), or None once this try's
        timeout has passed."""
        sock = self._sock
        started = monotonic()
        shortened = False
        try:
            while True:
                try:
                    data = sock.recv(_DATAGRAM_BUFFER)
                except TimeoutError:
                    return None
                except ConnectionRefusedError:
                    raise _udp_refused(self.url) from None
                if data.startswith(prefix):
                    if self._trace is not None:
                        self._trace("<", self.url, data)
                    return data[len(prefix) :]
                # Garbage, or a foreign or stale cookie: drop it and keep waiting, but only for
                # what is left of this try, so a flood cannot stall us.
                if self._trace is not None:
                    self._trace("!", self.url, data)
                remaining = started + self._timeout - monotonic()
                if remaining <= 0:
                    return None
                sock.settimeout(remaining)
                shortened = True
        finally:
            if shortened:
                sock.settimeout(self._timeout)

    def close(self) -> None:
        self._sock.close()


class StreamChannel(Channel):
    """tcp / tcp6 / cunix: one persistent connection, newline framing, one try per command."""

    def __init__(self, node: NodeSpec, *, timeout: float, trace: Trace | None) -> None:
        super().__init__(node, timeout=timeout, trace=trace)
        self._unix = node.family == "unix"
        self._sock: socket.socket | None = None

    def request(self, command: str) -> bytes:
        packet = encode_stream(command)
        reused = self._sock is not None
        try:
            if not reused:
                self._connect()
            try:
                return self._exchange(command, packet)
            except _StaleConnection as stale:
                if not reused:
                    raise TransportError(stale.message, hint=_NO_REPLY_HINT) from None
            # The relay had closed the connection while it sat idle (restart, idle timeout), so
            # the command met a dead socket; sending it on a fresh connection is still one try.
            self._connect()
            try:
                return self._exchange(command, packet)
            except _StaleConnection as stale:
                raise TransportError(stale.message, hint=_NO_REPLY_HINT) from None
        except BaseException:
            # Failed or interrupted (Ctrl-C in a shell) mid-exchange: the reply may still arrive
            # and would be read as the answer to the next command, so the connection must go.
            self._drop()
            raise

    def _connect(self) -> None:
        if self._unix:
            targets: list = [self.node.path]
            family = socket.AF_UNIX
        else:
            targets = _resolve(self.node, socket.SOCK_STREAM)
            family = socket.AF_INET6 if self.node.family == "inet6" else socket.AF_INET
        failure: BaseException | None = None
        for target in targets:
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(self._timeout)
                sock.connect(target)
            except (OSError, ValueError) as exc:
                sock.close()
                failure = exc
                continue
            if not self._unix:
                # One small write per command: never let Nagle hold it back.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = sock
            return
        assert failure is not None
        raise _connect_failure(self.url, failure, self._timeout, unix=self._unix, path=self.node.path) from None

    def _exchange(self, command: str, packet: bytes) -> bytes:
        sock = self._sock
        assert sock is not None
        try:
            sock.sendall(packet)
        except (BrokenPipeError, ConnectionResetError) as exc:
            self._drop()
            raise _StaleConnection(f"{self.url} closed the connection ({_reason(exc)})") from None
        except OSError as exc:
            self._drop()
            raise TransportError(f"cannot send to {self.url} ({_reason(exc)})", hint=_NO_REPLY_HINT) from None
        if self._trace is not None:
            self._trace(">", self.url, packet)
        # On a timeout or read error request() drops the connection: a reply arriving after we
        # gave up would be read as the answer to the next command.
        buffer, complete = self._read_reply(sock, command, reset_ends_reply=True)
        if not complete:
            self._drop(buffer)
            if not buffer:
                raise _StaleConnection(f"{self.url} closed the connection without answering")
            raise TransportError(f"{self.url} closed the connection in the middle of a reply", hint=_NO_REPLY_HINT)
        if self._trace is not None:
            self._trace("<", self.url, buffer)
        return buffer

    def _drop(self, partial: bytes = b"") -> None:
        if partial and self._trace is not None:
            self._trace("!", self.url, partial)
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def close(self) -> None:
        self._drop()


class _StaleConnection(Exception):
    """The peer closed the connection before answering; worth one reconnect if it had been idle."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class OneShotChannel(Channel):
    """unix: a fresh connection per command, bare command, reply read until EOF."""

    def request(self, command: str) -> bytes:
        packet = encode_oneshot(command)
        try:
            return self._exchange(command, packet)
        except ConnectionResetError:
            # Retried once, as the OpenSIPS module does: a reset means no answer was read.
            pass
        try:
            return self._exchange(command, packet)
        except ConnectionResetError as exc:
            raise TransportError(f"{self.url} reset the connection ({_reason(exc)})", hint=_NO_REPLY_HINT) from None

    def _exchange(self, command: str, packet: bytes) -> bytes:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            # The OpenSIPS module blocks forever here (docs/protocol.md §15.15); a command-line tool must
            # not hang on a stuck relay, so the same timeout as every other transport applies.
            sock.settimeout(self._timeout)
            try:
                sock.connect(self.node.path)
            except (OSError, ValueError) as exc:
                raise _connect_failure(self.url, exc, self._timeout, unix=True, path=self.node.path) from None
            try:
                sock.sendall(packet)
            except OSError as exc:
                raise TransportError(f"cannot send to {self.url} ({_reason(exc)})", hint=_NO_REPLY_HINT) from None
            if self._trace is not None:
                self._trace(">", self.url, packet)
            # End of file is the end of the reply on this transport.
            buffer, _complete = self._read_reply(sock, command, reset_ends_reply=False)
            if not buffer:
                raise TransportError(f"{self.url} closed the connection without answering", hint=_NO_REPLY_HINT)
        finally:
            sock.close()
        if self._trace is not None:
            self._trace("<", self.url, buffer)
        return buffer


def open_channel(
    node: NodeSpec, *, timeout: float = 1.0, retries: int = 5, trace: Trace | None = None
) -> Channel:
    """A channel for `node`, by its scheme. `retries` counts datagram sends (< 1 means 1).

    Raises TransportError when a udp host does not resolve or has no route; stream channels
    connect lazily, on the first request.
    """
    if not (isinstance(timeout, (int, float)) and timeout > 0 and math.isfinite(timeout)):
        raise InputError(f"timeout must be a positive number of seconds, not {timeout!r}")
    if node.is_datagram:
        return DatagramChannel(node, timeout=timeout, retries=retries, trace=trace)
    if node.is_stream:
        return StreamChannel(node, timeout=timeout, trace=trace)
    if node.is_oneshot:
        return OneShotChannel(node, timeout=timeout, trace=trace)
    raise InputError(f"no channel for the scheme of {node.url}")
