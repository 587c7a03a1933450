"""The pipelined engine: many requests in flight per node, on one thread, over `selectors`.

A `Pipeline` keeps up to `window` requests in flight per node and matches each reply to its
request: by cookie on datagram nodes (udp, udp6), by order on stream nodes (tcp, tcp6, cunix, one
connection each), by connection on the one-shot unix socket (one connection per request, at most
`window` at once). A datagram with no reply is re-sent with the SAME cookie after `timeout`, so the
relay answers the repeat from its reply cache and never runs a command twice; a stream request is
sent once, since a stream has no cookie and the relay may already have run it. Requests that share
a key (a Call-ID) are never in flight together and go out in the order they were submitted. Every
request ends in one `Outcome`: the reply text (an `E<n>` included) or a `TransportError` worded as
the channels word it, with its round trip and its resends.

Synchronous: one thread drives the I/O (`poll`, `run`, or the driver thread of `start`); other
threads may `submit` and `call`, and wake the driver through a socket pair. No thread per request,
no asyncio. Framing comes from `rtppctl.proto.framing`, cookies from the process-wide sequence of
`rtppctl.net.channel` (so forked workers never share one), messages from the channel's helpers.
The per-request path is benchmarked against a raw-socket client (bench/bench_raw_window.py), so it
allocates little, reads every waiting datagram per wakeup and keeps deadlines in send order
instead of scanning what is in flight.
"""

from __future__ import annotations

import math
import os
import selectors
import socket
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from time import monotonic
from typing import TYPE_CHECKING, Any

from rtppctl.net import channel as _channel
from rtppctl.net.channel import (
    _NO_REPLY_HINT,
    _connect_failure,
    _reason,
    _resolve,
    _seconds,
    _timed_out,
    _udp_refused,
)
from rtppctl.proto import command as cmd
from rtppctl.proto import limits
from rtppctl.proto.errors import InputError, MalformedReply, ReplyTimeout, TransportError
from rtppctl.proto.framing import (
    datagram_reply_prefix,
    encode_datagram,
    encode_oneshot,
    encode_stream,
    reply_length,
)

if TYPE_CHECKING:
    from rtppctl.net.channel import Trace
    from rtppctl.proto.url import NodeSpec

__all__ = ["Outcome", "Pipeline", "PipelineStats", "Request"]

_decode_reply = cmd.decode_reply_bytes
_DATAGRAM_BUFFER = 65535
_STREAM_CHUNK = 65536
_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE
#: How long the driver thread of `start()` sleeps at most between looks at its stop flag.
_DRIVER_WAIT = 0.5
#: How soon a one-shot connect that met a full accept queue (EAGAIN) is tried again.
_CONNECT_RETRY = 0.002
#: `run()` keeps pulling requests while a node could send one, up to this many not yet done: a
#: dead node's backlog must not starve the others, nor grow without bound.
_RUN_BACKLOG = 8192


@dataclass(frozen=True, slots=True)
class Request:
    """One command for one node."""

    #: The relay it goes to (`rtppctl.proto.url.parse_node`).
    node: NodeSpec
    #: One command line as the proto/ encoders build it: no cookie, no newline.
    command: str
    #: Ordering key (a Call-ID): two requests with the same key are never in flight together and
    #: go out in submission order; None: no constraint.
    key: str | None = None
    #: The caller's own data, handed back in the Outcome.
    tag: Any = None
    #: time.monotonic() when the caller meant it to go out (an open loop measures latency from
    #: here, so a late send is not hidden); None: the time of submit().
    scheduled: float | None = None

    def __init__(self, node: NodeSpec, command: str, key: str | None = None, tag: Any = None,
                 scheduled: float | None = None) -> None:
        # Written out (dataclass keeps an __init__ it finds) to set each slot through its own
        # descriptor: the generated one calls object.__setattr__ per field, which made building
        # requests and outcomes a fifth of the engine's cost per request. Same object, same fields.
        _request_node(self, node)
        _request_command(self, command)
        _request_key(self, key)
        _request_tag(self, tag)
        _request_scheduled(self, scheduled)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one request ended: a reply or a transport error, and when."""

    request: Request
    #: The reply text without its final newline (`E<n>` replies included); None on failure.
    reply: str | None
    #: Why there is no usable reply: timeout after every try, refused, reset, closed...
    error: TransportError | None
    #: Monotonic times: when it was meant to go out, first sent, done.
    scheduled: float
    sent_at: float
    done_at: float
    #: Datagram resends of this request (same cookie).
    retransmits: int

    def __init__(self, request: Request, reply: str | None, error: TransportError | None, scheduled: float,
                 sent_at: float, done_at: float, retransmits: int) -> None:
        # As Request's: one slot descriptor per field, no object.__setattr__.
        _outcome_request(self, request)
        _outcome_reply(self, reply)
        _outcome_error(self, error)
        _outcome_scheduled(self, scheduled)
        _outcome_sent_at(self, sent_at)
        _outcome_done_at(self, done_at)
        _outcome_retransmits(self, retransmits)

    @property
    def rtt_ms(self) -> float:
        """First send to outcome, in milliseconds (resends included)."""
        return (self.done_at - self.sent_at) * 1000.0

    @property
    def latency_ms(self) -> float:
        """Scheduled time to outcome, in milliseconds (queueing included)."""
        return (self.done_at - self.scheduled) * 1000.0

    @property
    def error_code(self) -> int | None:
        """n when the relay answered `E<n>`, else None."""
        reply = self.reply
        # Only a reply holding an E can be E<n>: the others (nearly all) skip the parse.
        return cmd.error_code(reply) if reply is not None and "E" in reply else None

    @property
    def ok(self) -> bool:
        """A reply that is not `E<n>`."""
        return self.error is None and self.error_code is None


def _slot_setters(cls: type, names: tuple[str, ...]) -> tuple[Any, ...]:
    """The `__set__` of each named slot of `cls`, checked against its dataclass fields."""
    if tuple(cls.__dataclass_fields__) != names:  # type: ignore[attr-defined]
        raise AssertionError(f"{cls.__name__}'s fields changed: update its __init__")
    return tuple(cls.__dict__[name].__set__ for name in names)


_request_node, _request_command, _request_key, _request_tag, _request_scheduled = _slot_setters(
    Request, ("node", "command", "key", "tag", "scheduled"))
(_outcome_request, _outcome_reply, _outcome_error, _outcome_scheduled, _outcome_sent_at, _outcome_done_at,
 _outcome_retransmits) = _slot_setters(
    Outcome, ("request", "reply", "error", "scheduled", "sent_at", "done_at", "retransmits"))


@dataclass(slots=True)
class PipelineStats:
    """Counters over a pipeline's life (read them from the thread that polls, or after close)."""

    #: Requests put on the wire (first sends; a one-shot retry after a reset counts again).
    sent: int = 0
    #: Datagram resends with the same cookie.
    retransmits: int = 0
    #: Requests that failed for want of a reply within their time (every try of a datagram).
    timeouts: int = 0
    #: Replies that matched nothing in flight (late, stale, foreign, garbage), dropped.
    replies_dropped: int = 0
    #: Outcomes with a reply, and outcomes with an error.
    replied: int = 0
    failed: int = 0


class _Entry:
    """A request on its way: where it waits, its cookie and packet, its deadline."""

    __slots__ = ("request", "scheduled", "node", "sent_at", "deadline", "marks", "retransmits", "prefix",
                 "packet", "conn", "tries", "waiter", "outcome", "done")

    def __init__(self, request: Request, scheduled: float) -> None:
        self.request = request
        self.scheduled = scheduled
        self.node: _Node | None = None
        self.sent_at: float | None = None
        self.deadline: float | None = None
        #: Copies of this entry in the pipeline's expiry deque.
        self.marks = 0
        self.retransmits = 0
        self.prefix = b""
        self.packet = b""
        self.conn: _OneShotConn | None = None
        self.tries = 0
        self.waiter: Any = None
        self.outcome: Outcome | None = None
        self.done = False


class _Node:
    """One relay's queue and connection(s); the subclasses know its framing."""

    def __init__(self, pipeline: Pipeline, spec: NodeSpec) -> None:
        self.pipeline = pipeline
        self.spec = spec
        self.url = spec.url
        #: Requests admitted (their key free) and not yet sent, in order.
        self.queue: deque[_Entry] = deque()

    def in_flight(self) -> int:
        raise NotImplementedError

    def fill(self) -> None:
        """Send queued requests while the window has room."""
        raise NotImplementedError

    def expired(self, entry: _Entry, now: float) -> None:
        """`entry`'s deadline has passed while it was in flight."""
        raise NotImplementedError

    def abort(self, error: TransportError) -> None:
        """Fail everything in flight on this node."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the node's sockets."""
        raise NotImplementedError

    def _dropped(self, data: bytes) -> None:
        self.pipeline.stats.replies_dropped += 1
        trace = self.pipeline._trace
        if trace is not None:
            trace("!", self.url, data)


class _DatagramNode(_Node):
    """udp / udp6: one connected non-blocking socket, replies matched by cookie."""

    def __init__(self, pipeline: Pipeline, spec: NodeSpec) -> None:
        super().__init__(pipeline, spec)
        peer = _resolve(spec, socket.SOCK_DGRAM)[0]
        family = socket.AF_INET6 if spec.family == "inet6" else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        # Connected, as DatagramChannel is: the kernel drops datagrams from anyone else, and an ICMP
        # port unreachable shows as ECONNREFUSED, so a dead port fails at once.
        try:
            sock.connect(peer)
        except OSError as exc:
            sock.close()
            raise TransportError(f"cannot send to {self.url} ({_reason(exc)})", hint=_NO_REPLY_HINT) from None
        sock.setblocking(False)
        self.sock = sock
        self.sock_send = sock.send
        #: In flight: reply prefix (cookie and space) -> entry.
        self.waiting: dict[bytes, _Entry] = {}
        # The pipeline's, at hand for the per-request path.
        self.timeout = pipeline._timeout
        self.expiry = pipeline._expiry
        self.stats = pipeline.stats
        self.trace = pipeline._trace
        #: Datagrams read per wakeup at most.
        self.burst = max(64, 4 * pipeline.window)
        pipeline._selector.register(sock, _READ, self)

    def in_flight(self) -> int:
        return len(self.waiting)

    def fill(self) -> None:
        queue = self.queue
        waiting = self.waiting
        window = self.pipeline.window
        send = self._send
        while queue and len(waiting) < window:
            send(queue.popleft())

    def _send(self, entry: _Entry) -> None:
        # Looked up each time: a forked child renews the process's sequence.
        cookie = _channel._process_cookies.next()
        packet = entry.packet = encode_datagram(cookie, entry.request.command)
        prefix = entry.prefix = datagram_reply_prefix(cookie)
        self.waiting[prefix] = entry
        now = monotonic()
        entry.sent_at = now
        entry.deadline = now + self.timeout
        entry.marks += 1
        self.expiry.append(entry)
        self.stats.sent += 1
        try:
            self.sock_send(packet)
        except BlockingIOError:
            pass  # the socket's buffer is full: as good as lost, and the retransmit recovers it
        except OSError as exc:
            if not self._send_failed(packet, exc):
                return
        if self.trace is not None:
            self.trace(">", self.url, packet)

    def _send_failed(self, packet: bytes, exc: OSError) -> bool:
        """After a failed send: True when `packet` went out on a second try; else the node's
        requests in flight have failed."""
        if isinstance(exc, ConnectionRefusedError):
            # Earned by an earlier datagram (the kernel cleared it and did not send this one):
            # send again; whether the node refuses THIS command is what counts.
            try:
                self.sock.send(packet)
                return True
            except BlockingIOError:
                return True
            except ConnectionRefusedError:
                self.abort(_udp_refused(self.url))
                return False
            except OSError as again:
                exc = again
        self.abort(TransportError(f"cannot send to {self.url} ({_reason(exc)})", hint=_NO_REPLY_HINT))
        return False

    def on_event(self, _mask: int) -> None:
        # Every datagram waiting is read now: one wakeup, as many replies as arrived. Bounded, so
        # a busy node cannot hold up the others, deadlines or the caller: the selector reports
        # what is left at once.
        recv = self.sock.recv
        waiting = self.waiting
        queue = self.queue
        pipeline = self.pipeline
        trace = pipeline._trace
        finish = pipeline._finish
        for _ in range(self.burst):
            try:
                data = recv(_DATAGRAM_BUFFER)
            except BlockingIOError:
                return
            except ConnectionRefusedError:
                self.abort(_udp_refused(self.url))
                return
            except OSError as exc:
                self.abort(TransportError(f"cannot read from {self.url} ({_reason(exc)})", hint=_NO_REPLY_HINT))
                return
            cut = data.find(b" ") + 1
            entry = waiting.pop(data[:cut], None) if cut else None
            if entry is None:
                # A late reply to a request that timed out, a stale or foreign cookie, garbage.
                self._dropped(data)
                continue
            done_at = monotonic()
            if trace is not None:
                trace("<", self.url, data)
            if queue:
                # The freed slot is refilled before this reply is decoded: the relay never waits
                # for a batch of replies to be handled.
                self._send(queue.popleft())
            finish(entry, data[cut:], done_at)

    def expired(self, entry: _Entry, now: float) -> None:
        pipeline = self.pipeline
        if entry.retransmits + 1 < pipeline._retries:
            entry.retransmits += 1
            pipeline.stats.retransmits += 1
            entry.deadline = now + pipeline._timeout
            entry.marks += 1
            pipeline._expiry.append(entry)
            try:
                self.sock.send(entry.packet)
            except BlockingIOError:
                pass
            except OSError as exc:
                if not self._send_failed(entry.packet, exc):
                    return
            if pipeline._trace is not None:
                pipeline._trace(">", self.url, entry.packet)
            return
        del self.waiting[entry.prefix]
        tries = pipeline._retries
        pipeline.stats.timeouts += 1
        pipeline._fail(entry, ReplyTimeout(
            f"no reply from {self.url} after {tries} tr{'y' if tries == 1 else 'ies'} of {_seconds(pipeline._timeout)}",
            hint=_NO_REPLY_HINT))

    def abort(self, error: TransportError) -> None:
        entries = list(self.waiting.values())
        self.waiting.clear()
        for entry in entries:
            self.pipeline._fail(entry, error)

    def close(self) -> None:
        self.pipeline._unregister(self.sock)
        self.sock.close()


class _StreamNode(_Node):
    """tcp / tcp6 / cunix: one connection, newline framing, replies matched in order, sent once."""

    def __init__(self, pipeline: Pipeline, spec: NodeSpec) -> None:
        super().__init__(pipeline, spec)
        self.unix = spec.family == "unix"
        self.sock: socket.socket | None = None
        self.connecting = False
        self.targets: list[Any] = []
        #: Sent (or written to `out`), waiting for their replies, oldest first.
        self.sent: deque[_Entry] = deque()
        self.out = bytearray()
        self.buffer = b""
        self.interest = 0

    def in_flight(self) -> int:
        return len(self.sent)

    def fill(self) -> None:
        queue = self.queue
        pipeline = self.pipeline
        window = pipeline.window
        sent = self.sent
        while queue and len(sent) < window:
            if self.sock is None:
                # Reconnected lazily: a connection that failed took only its own requests along.
                error = self._connect()
                if error is not None:
                    for _ in range(min(window, len(queue))):
                        pipeline._fail(queue.popleft(), error)
                    continue
            timeout = pipeline._timeout
            expiry = pipeline._expiry
            out = self.out
            now = monotonic()
            while queue and len(sent) < window:
                entry = queue.popleft()
                packet = encode_stream(entry.request.command)
                out += packet
                sent.append(entry)
                entry.sent_at = now
                entry.deadline = now + timeout
                entry.marks += 1
                expiry.append(entry)
                pipeline.stats.sent += 1
                if pipeline._trace is not None:
                    pipeline._trace(">", self.url, packet)
            if not self.connecting:
                self._flush()

    def _connect(self, failure: BaseException | None = None) -> TransportError | None:
        """Connect (or start to) to the node's next address; an error once none is left.

        `failure` is how the previous address failed; None starts from the first address.
        """
        pipeline = self.pipeline
        if self.unix:
            family = socket.AF_UNIX
            if failure is None:
                self.targets = [self.spec.path]
        else:
            family = socket.AF_INET6 if self.spec.family == "inet6" else socket.AF_INET
            if failure is None:
                try:
                    self.targets = _resolve(self.spec, socket.SOCK_STREAM)
                except TransportError as err:
                    return err
        while self.targets:
            target = self.targets.pop(0)
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                sock.connect(target)
                self.connecting = False
            except BlockingIOError as exc:
                if self.unix:
                    # EAGAIN: the relay's accept queue is full; a unix connect does not go on by itself.
                    sock.close()
                    failure = exc
                    continue
                # tcp: in progress; the socket turns writable when it is connected or has failed.
                self.connecting = True
            except (OSError, ValueError) as exc:
                sock.close()
                failure = exc
                continue
            if not self.unix:
                # One small write per burst of commands: never let Nagle hold it back.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock = sock
            self.interest = _READ | _WRITE if self.connecting else _READ
            pipeline._selector.register(sock, self.interest, self)
            return None
        assert failure is not None
        return _connect_failure(self.url, failure, pipeline._timeout, unix=self.unix, path=self.spec.path)

    def _want(self, interest: int) -> None:
        if interest != self.interest and self.sock is not None:
            self.interest = interest
            self.pipeline._selector.modify(self.sock, interest, self)

    def _flush(self) -> None:
        out = self.out
        if not out or self.sock is None:
            return
        try:
            written = self.sock.send(out)
        except BlockingIOError:
            written = 0
        except (BrokenPipeError, ConnectionResetError) as exc:
            self._lost(TransportError(f"{self.url} closed the connection ({_reason(exc)})", hint=_NO_REPLY_HINT))
            return
        except OSError as exc:
            self._lost(TransportError(f"cannot send to {self.url} ({_reason(exc)})", hint=_NO_REPLY_HINT))
            return
        del out[:written]
        self._want(_READ | _WRITE if out else _READ)

    def on_event(self, mask: int) -> None:
        if self.connecting:
            if not mask & _WRITE:
                return
            sock = self.sock
            assert sock is not None
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                # This address failed: the same requests try the next one, or fail.
                self._drop_socket()
                error = self._connect(OSError(code, os.strerror(code)))
                if error is not None:
                    self._lost(error)
                    return
                if self.connecting:
                    return
            self.connecting = False
            self._flush()
            return
        if mask & _WRITE:
            self._flush()
        if mask & _READ and self.sock is not None:
            self._read()

    def _read(self) -> None:
        sock = self.sock
        assert sock is not None
        chunks = []
        closed: TransportError | None = None
        while True:
            try:
                chunk = sock.recv(_STREAM_CHUNK)
            except BlockingIOError:
                break
            except ConnectionResetError as exc:
                closed = TransportError(f"{self.url} reset the connection ({_reason(exc)})", hint=_NO_REPLY_HINT)
                break
            except OSError as exc:
                closed = TransportError(f"cannot read from {self.url} ({_reason(exc)})", hint=_NO_REPLY_HINT)
                break
            if not chunk:
                closed = TransportError(f"{self.url} closed the connection without answering", hint=_NO_REPLY_HINT)
                break
            chunks.append(chunk)
            if len(chunk) < _STREAM_CHUNK:
                break  # drained: spare the syscall that would only say so
        if chunks:
            buffer = self.buffer + b"".join(chunks) if self.buffer else b"".join(chunks)
            sent = self.sent
            pipeline = self.pipeline
            trace = pipeline._trace
            while sent:
                entry = sent[0]
                length = reply_length(entry.request.command, buffer)
                if length is None:
                    break
                sent.popleft()
                body = buffer[:length]
                buffer = buffer[length:]
                if trace is not None:
                    trace("<", self.url, body)
                pipeline._finish(entry, body)
            if buffer and not sent:
                # Nothing asked for this: keeping it would shift every later answer.
                self._dropped(buffer)
                buffer = b""
            self.buffer = buffer
        if closed is not None:
            if self.buffer:
                closed = TransportError(f"{self.url} closed the connection in the middle of a reply",
                                        hint=_NO_REPLY_HINT)
            self._lost(closed)

    def _lost(self, error: TransportError) -> None:
        """The connection is gone: what was in flight on it fails; later requests reconnect."""
        if self.buffer:
            self._dropped(self.buffer)
        self.buffer = b""
        self.out.clear()
        self._drop_socket()
        sent = list(self.sent)
        self.sent.clear()
        for entry in sent:
            self.pipeline._fail(entry, error)

    def _drop_socket(self) -> None:
        self.connecting = False
        if self.sock is not None:
            self.pipeline._unregister(self.sock)
            self.sock.close()
            self.sock = None

    def expired(self, entry: _Entry, now: float) -> None:
        pipeline = self.pipeline
        if self.connecting:
            error = _connect_failure(self.url, TimeoutError(), pipeline._timeout, unix=self.unix, path=self.spec.path)
        else:
            error = _timed_out(self.url, pipeline._timeout, self.buffer)
        # The oldest request went unanswered: a later reply on this connection could be read as
        # the answer to the wrong request, so the connection and all it carried go.
        pipeline.stats.timeouts += len(self.sent)
        self._lost(error)

    def abort(self, error: TransportError) -> None:
        self._lost(error)

    def close(self) -> None:
        self.out.clear()
        self._drop_socket()


class _OneShotConn:
    """One request on its own unix connection."""

    __slots__ = ("node", "sock", "entry", "out", "writing", "buffer")

    def __init__(self, node: _OneShotNode, sock: socket.socket, entry: _Entry, out: bytes) -> None:
        self.node = node
        self.sock = sock
        self.entry = entry
        #: What is left to send, and whether the selector watches for room to send it.
        self.out = out
        self.writing = False
        self.buffer = b""

    def on_event(self, mask: int) -> None:
        if mask & _WRITE and self.out:
            self.node._write(self)
        if mask & _READ:
            self.node._read(self)


class _OneShotNode(_Node):
    """unix: a connection per request (the relay reads one command and closes), `window` at once."""

    def __init__(self, pipeline: Pipeline, spec: NodeSpec) -> None:
        super().__init__(pipeline, spec)
        self.conns: set[_OneShotConn] = set()

    def in_flight(self) -> int:
        return len(self.conns)

    def fill(self) -> None:
        queue = self.queue
        pipeline = self.pipeline
        while queue and len(self.conns) < pipeline.window:
            entry = queue.popleft()
            now = monotonic()
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                sock.connect(self.spec.path)
            except BlockingIOError:
                # The relay's accept queue is full: try again shortly, within the request's time.
                sock.close()
                if entry.deadline is None:
                    entry.deadline = now + pipeline._timeout
                elif now >= entry.deadline:
                    pipeline.stats.timeouts += 1
                    pipeline._fail(entry, _connect_failure(self.url, TimeoutError(), pipeline._timeout, unix=True,
                                                           path=self.spec.path))
                    continue
                queue.appendleft(entry)
                pipeline._retry_soon = True
                return
            except (OSError, ValueError) as exc:
                sock.close()
                pipeline._fail(entry, _connect_failure(self.url, exc, pipeline._timeout, unix=True,
                                                       path=self.spec.path))
                continue
            packet = encode_oneshot(entry.request.command)
            conn = _OneShotConn(self, sock, entry, packet)
            entry.conn = conn
            if entry.sent_at is None:
                entry.sent_at = now
            entry.deadline = now + pipeline._timeout
            entry.marks += 1
            pipeline._expiry.append(entry)
            pipeline.stats.sent += 1
            self.conns.add(conn)
            pipeline._selector.register(sock, _READ, conn)
            self._write(conn)

    def _write(self, conn: _OneShotConn) -> None:
        try:
            written = conn.sock.send(conn.out)
        except BlockingIOError:
            written = 0
        except OSError as exc:
            self._end(conn, TransportError(f"cannot send to {self.url} ({_reason(exc)})", hint=_NO_REPLY_HINT))
            return
        if written and self.pipeline._trace is not None:
            self.pipeline._trace(">", self.url, conn.out[:written])
        conn.out = conn.out[written:]
        if bool(conn.out) != conn.writing:  # a command rarely needs a second write
            conn.writing = bool(conn.out)
            self.pipeline._selector.modify(conn.sock, _READ | _WRITE if conn.out else _READ, conn)

    def _read(self, conn: _OneShotConn) -> None:
        entry = conn.entry
        while True:
            try:
                chunk = conn.sock.recv(_STREAM_CHUNK)
            except BlockingIOError:
                return
            except ConnectionResetError as exc:
                if not conn.buffer and entry.tries == 0:
                    # Retried once, as the module and OneShotChannel do: a reset means no answer.
                    entry.tries = 1
                    self._end(conn, None)
                    self.queue.appendleft(entry)
                    return
                error = TransportError(f"{self.url} reset the connection ({_reason(exc)})", hint=_NO_REPLY_HINT)
                self._end(conn, error)
                return
            except OSError as exc:
                self._end(conn, TransportError(f"cannot read from {self.url} ({_reason(exc)})", hint=_NO_REPLY_HINT))
                return
            if not chunk:
                # End of file is the end of the reply on this transport.
                if conn.buffer:
                    self._replied(conn, conn.buffer)
                else:
                    self._end(conn, TransportError(f"{self.url} closed the connection without answering",
                                                   hint=_NO_REPLY_HINT))
                return
            conn.buffer += chunk
            length = reply_length(entry.request.command, conn.buffer)
            if length is not None:
                if length < len(conn.buffer):
                    self._dropped(conn.buffer[length:])
                self._replied(conn, conn.buffer[:length])
                return

    def _replied(self, conn: _OneShotConn, body: bytes) -> None:
        if self.pipeline._trace is not None:
            self.pipeline._trace("<", self.url, body)
        self._release(conn)
        self.pipeline._finish(conn.entry, body)

    def _end(self, conn: _OneShotConn, error: TransportError | None) -> None:
        self._release(conn)
        if error is not None:
            if conn.buffer and self.pipeline._trace is not None:
                self.pipeline._trace("!", self.url, conn.buffer)
            self.pipeline._fail(conn.entry, error)

    def _release(self, conn: _OneShotConn) -> None:
        if conn in self.conns:
            self.conns.discard(conn)
            self.pipeline._unregister(conn.sock)
            conn.sock.close()

    def expired(self, entry: _Entry, now: float) -> None:
        conn = entry.conn
        if conn is None or conn not in self.conns:
            return
        self.pipeline.stats.timeouts += 1
        self._end(conn, _timed_out(self.url, self.pipeline._timeout, conn.buffer))

    def abort(self, error: TransportError) -> None:
        for conn in list(self.conns):
            self._end(conn, error)

    def close(self) -> None:
        for conn in list(self.conns):
            self._release(conn)


class _Waker:
    """The read end of the socket pair that `submit` and `close` write to, to end a wait."""

    __slots__ = ("sock",)

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def on_event(self, _mask: int) -> None:
        try:
            while self.sock.recv(4096):
                pass
        except OSError:
            pass


class Pipeline:
    """Up to `window` requests in flight per node; one outcome per request.

    Drive it from one thread with `run` (an iterable of requests in, outcomes out as they come) or
    `submit` + `poll`; or `start` a driver thread and `call` from any number of threads. `close`
    ends it: whatever is still pending fails with TransportError, and `poll` hands those outcomes
    over once.
    """

    def __init__(self, *, window: int = limits.DEFAULT_WINDOW, timeout: float = 1.0, retries: int = 5,
                 trace: Trace | None = None) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= limits.MAX_WINDOW:
            raise InputError(f"the window must be a whole number from 1 to {limits.MAX_WINDOW}, not {window!r}")
        if not (isinstance(timeout, (int, float)) and timeout > 0 and math.isfinite(timeout)):
            raise InputError(f"timeout must be a positive number of seconds, not {timeout!r}")
        #: Requests in flight per node at most.
        self.window = window
        self._timeout = float(timeout)
        #: Sends per datagram request (< 1 means 1), as the channels count them.
        self._retries = max(1, int(retries))
        self._trace = trace
        self.stats = PipelineStats()
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._wake_write.setblocking(False)
        self._selector.register(self._wake_read, _READ, _Waker(self._wake_read))
        self._nodes: dict[str, _Node] = {}
        #: Submitted, not yet seen by the polling thread (deque appends are thread-safe).
        self._incoming: deque[_Entry] = deque()
        #: Entries whose key just became free, to be queued at the front of their node's queue.
        self._promoted: deque[_Entry] = deque()
        #: key -> the requests waiting for it (None: one is active, none waits).
        self._keys: dict[str, deque[_Entry] | None] = {}
        #: Entries in flight in the order their deadlines were set: one timeout for all, so the
        #: deadlines only grow. A resent entry is appended again; its older copy, and the copies
        #: of entries done, are skipped when they reach the front (`_next_deadline`).
        self._expiry: deque[_Entry] = deque()
        self._done: list[Outcome] = []
        #: Admitted and not done (queued, waiting for a key, in flight).
        self._active = 0
        self._sleeping = False
        self._retry_soon = False
        self._closed = False
        self._stopping = False
        #: The thread that drives the I/O (start's, or the caller of serve_forever), once there is one.
        self._thread: threading.Thread | None = None
        self._driver_done = threading.Event()
        self._driver_error: BaseException | None = None
        self._lock = threading.Lock()

    # -- submitting -------------------------------------------------------------------------------

    def submit(self, request: Request) -> None:
        """Queue `request`; thread-safe, never blocks. Its outcome comes from `poll` (or `call`)."""
        entry = _Entry(request, monotonic() if request.scheduled is None else request.scheduled)
        self._enqueue(entry)

    def _enqueue(self, entry: _Entry) -> None:
        with self._lock:  # so that close() cannot drain the queue between the check and the append
            if self._closed:
                self._done.append(self._closed_outcome(entry))
                return
            self._incoming.append(entry)
        if self._sleeping:
            self._wake()

    def wake(self) -> None:
        """Make a `poll` waiting in another thread return now (thread-safe; a caller that drives
        the engine from its own loop calls it when that loop has other work, e.g. input read)."""
        if self._sleeping:
            self._wake()

    def _wake(self) -> None:
        try:
            self._wake_write.send(b"\0")
        except OSError:
            pass  # full (a wakeup is pending anyway) or closed

    @property
    def pending(self) -> int:
        """Requests submitted and not done: queued, waiting for their key, or in flight."""
        return len(self._incoming) + self._active

    # -- driving ----------------------------------------------------------------------------------

    def poll(self, timeout: float = 0.0) -> list[Outcome]:
        """Send what the windows and keys allow, read what arrived, resend or fail what is due;
        the outcomes completed now (any order). Waits at most `timeout` seconds for something to
        happen. One thread at a time."""
        if self._closed:
            done, self._done = self._done, []
            return done
        if self._thread is not None and self._thread is not threading.current_thread():
            raise RuntimeError("only the pipeline's driver thread may poll it")
        self._admit()
        self._fill()
        wait = 0.0 if self._done else max(0.0, timeout)
        if wait:
            deadline = self._next_deadline()
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - monotonic()))
            if self._retry_soon:
                wait = min(wait, _CONNECT_RETRY)
            # A submit() that saw _sleeping False put its entry in _incoming before this check.
            self._sleeping = True
            if self._incoming:
                wait = 0.0
        try:
            events = self._selector.select(wait)
        finally:
            self._sleeping = False
        for key, mask in events:
            key.data.on_event(mask)
        if self._expiry:
            self._expire()
        self._retry_soon = False
        self._admit()
        self._fill()
        done, self._done = self._done, []
        return done

    def run(self, requests: Iterable[Request]) -> Iterator[Outcome]:
        """Every request's outcome, as they complete: pulls `requests` lazily, keeping each node's
        window full, until all are done. For one driver thread (not with `start`)."""
        if self._thread is not None:
            raise RuntimeError("run() cannot be used while a driver thread runs (start, serve_forever)")
        source = iter(requests)
        exhausted = False
        window = self.window
        route = self._route
        while True:
            # Pulled a window's worth at a time: the condition is looked at once per poll, not once
            # per request.
            while not exhausted and self._want_more(window):
                # The node of the last request without a key is remembered: most requests of a
                # run go to one node, and they skip the routing.
                spec = node = None
                for _ in range(window):
                    try:
                        request = next(source)
                    except StopIteration:
                        exhausted = True
                        break
                    entry = _Entry(request, monotonic() if request.scheduled is None else request.scheduled)
                    if self._closed:
                        self._done.append(self._closed_outcome(entry))
                        continue
                    self._active += 1
                    if request.node is spec and request.key is None:
                        entry.node = node
                        node.queue.append(entry)  # type: ignore[union-attr] - set with spec
                        continue
                    route(entry)
                    if request.key is None and entry.node is not None:
                        spec, node = request.node, entry.node
                if self._closed:
                    continue
                self._admit()  # promoted keys, so the window check sees them queued
            if exhausted and not self._active and not self._incoming and not self._done:
                return
            done = self.poll(self._timeout)
            if done:
                yield from done
            elif self._closed and exhausted:
                return

    def _want_more(self, window: int) -> bool:
        """Pull more while a node could use it: a window in flight and one queued behind it (sent as
        replies free slots, without a trip through the caller). A node not seen yet may be next,
        so a little more is pulled beyond the known nodes' needs; never more than _RUN_BACKLOG."""
        if self._closed:
            return True  # every further request fails at once
        active = self._active
        if active >= _RUN_BACKLOG:
            return False
        enough = 2 * window
        for node in self._nodes.values():
            if len(node.queue) + node.in_flight() < enough:
                return True
        return active < enough * (len(self._nodes) + 1)

    def call(self, request: Request, timeout: float | None = None) -> Outcome:
        """Submit `request` and wait for its outcome, from any thread while the driver thread of
        `start` runs (started here if it is not). The wait is bounded by the request's own
        deadlines (timeout x retries once it is sent) and by `timeout` when given: past it, the
        outcome is a TransportError and the request's eventual reply is dropped."""
        entry = _Entry(request, monotonic() if request.scheduled is None else request.scheduled)
        if self._closed:
            return self._closed_outcome(entry)
        waiter = threading.Lock()
        waiter.acquire()
        entry.waiter = waiter
        if self._thread is None:
            self.start()
        self._enqueue(entry)
        limit = None if timeout is None else monotonic() + max(0.0, timeout)
        while True:
            slice_ = _DRIVER_WAIT if limit is None else min(_DRIVER_WAIT, max(0.0, limit - monotonic()))
            if waiter.acquire(timeout=slice_):
                assert entry.outcome is not None
                return entry.outcome
            stopped = self._closed or self._driver_done.is_set()
            if not stopped and (limit is None or monotonic() < limit):
                continue
            entry.waiter = None
            if entry.outcome is not None:
                return entry.outcome
            if stopped:
                return self._closed_outcome(entry, self._driver_error)
            now = monotonic()
            return Outcome(request, None, ReplyTimeout(
                f"no outcome from {request.node.url} within {_seconds(timeout or 0.0)}", hint=_NO_REPLY_HINT),
                entry.scheduled, entry.sent_at or now, now, entry.retransmits)

    def start(self) -> None:
        """A daemon thread that drives the I/O (`serve_forever`) until `close`; a second call does
        nothing."""
        with self._lock:
            if self._thread is not None or self._closed:
                return
            self._thread = threading.Thread(target=self._drive, name="rtppctl-pipeline", daemon=True)
            self._thread.start()

    def serve_forever(self) -> None:
        """Drive the I/O in the calling thread until `close` (from another thread): what the
        thread of `start` runs, for a caller that brings its own. Outcomes reach `call` through
        their waiters; the others are dropped."""
        with self._lock:
            if self._thread is not None or self._closed:
                raise RuntimeError("this pipeline already has a driver thread")
            self._thread = threading.current_thread()
        self._drive()

    def _drive(self) -> None:
        try:
            while not self._stopping:
                self.poll(_DRIVER_WAIT)
        except BaseException as exc:
            # A waiter must never hang on a dead driver: call() sees _driver_done and gives up.
            self._driver_error = exc
            raise
        finally:
            self._driver_done.set()

    def close(self) -> None:
        """Stop the driver thread, close every socket; what is still pending fails with
        TransportError ("closed ..."), and the next `poll` returns those outcomes. Never hangs."""
        with self._lock:
            if self._closed:
                return
            self._stopping = True
        self._wake()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            # The driver wakes up at once (the socket pair) and ends after the poll it is in.
            self._driver_done.wait(_DRIVER_WAIT * 4)
        with self._lock:
            self._closed = True
        closed = "closed before {} answered"
        # Requests waiting for a key fail here, so that failing the one holding it promotes none.
        leftovers: list[_Entry] = [entry for waiting in self._keys.values() if waiting for entry in waiting]
        self._keys.clear()
        for node in self._nodes.values():
            node.abort(TransportError(closed.format(node.url)))
        leftovers.extend(self._promoted)
        self._promoted.clear()
        for node in self._nodes.values():
            leftovers.extend(node.queue)
            node.queue.clear()
        while self._incoming:
            leftovers.append(self._incoming.popleft())
            self._active += 1
        for entry in leftovers:
            self._fail(entry, TransportError(closed.format(entry.request.node.url)))
        for node in self._nodes.values():
            node.close()
        self._nodes.clear()
        self._expiry.clear()
        self._selector.close()
        self._wake_read.close()
        self._wake_write.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- inside the polling thread -------------------------------------------------------------------

    def _admit(self) -> None:
        incoming = self._incoming
        while incoming:
            entry = incoming.popleft()
            self._active += 1
            self._route(entry)
        promoted = self._promoted
        while promoted:
            entry = promoted.popleft()
            node = entry.node
            if node is not None:
                node.queue.appendleft(entry)
            else:
                self._place(entry)

    def _route(self, entry: _Entry) -> None:
        """Queue `entry` on its node, or behind the request that holds its key."""
        key = entry.request.key
        if key is not None:
            keys = self._keys
            if key in keys:
                waiting = keys[key]
                if waiting is None:
                    waiting = keys[key] = deque()
                waiting.append(entry)
                return
            keys[key] = None
        self._place(entry)

    def _place(self, entry: _Entry) -> None:
        spec = entry.request.node
        node = self._nodes.get(spec.url)
        if node is None:
            try:
                node = self._open_node(spec)
            except TransportError as err:
                self._fail(entry, err)
                return
        entry.node = node
        node.queue.append(entry)

    def _open_node(self, spec: NodeSpec) -> _Node:
        if spec.is_datagram:
            node: _Node = _DatagramNode(self, spec)
        elif spec.is_stream:
            node = _StreamNode(self, spec)
        elif spec.is_oneshot:
            node = _OneShotNode(self, spec)
        else:
            raise TransportError(f"no channel for the scheme of {spec.url}")
        self._nodes[spec.url] = node
        return node

    def _fill(self) -> None:
        for node in self._nodes.values():
            if node.queue:
                node.fill()

    def _next_deadline(self) -> float | None:
        """The earliest deadline of an entry in flight; drops the copies that no longer count
        (the entry is done, or was re-sent and has a later copy) from the front."""
        expiry = self._expiry
        while expiry:
            entry = expiry[0]
            if entry.done or entry.marks > 1:
                expiry.popleft()
                entry.marks -= 1
                continue
            return entry.deadline
        return None

    def _expire(self) -> None:
        expiry = self._expiry
        now = monotonic()
        while True:
            deadline = self._next_deadline()
            if deadline is None or deadline > now:
                return
            entry = expiry.popleft()
            entry.marks -= 1
            entry.node.expired(entry, now)  # type: ignore[union-attr] - sent, so placed

    def _finish(self, entry: _Entry, body: bytes, done_at: float | None = None) -> None:
        """`entry` got its reply `body` (cookie removed, final newline included), at `done_at`
        (now when None)."""
        try:
            reply = _decode_reply(body)
        except MalformedReply as err:
            self._complete(entry, None, err)
            return
        if entry.done:
            return
        entry.done = True
        self.stats.replied += 1
        self._settle(entry, Outcome(entry.request, reply, None, entry.scheduled, entry.sent_at,
                                    monotonic() if done_at is None else done_at, entry.retransmits))

    def _fail(self, entry: _Entry, error: TransportError) -> None:
        self._complete(entry, None, error)

    def _complete(self, entry: _Entry, reply: str | None, error: TransportError | None) -> None:
        if entry.done:
            return
        entry.done = True
        now = monotonic()
        sent_at = entry.sent_at
        if error is None:
            self.stats.replied += 1
        else:
            self.stats.failed += 1
        self._settle(entry, Outcome(entry.request, reply, error, entry.scheduled, now if sent_at is None else sent_at,
                                    now, entry.retransmits))

    def _settle(self, entry: _Entry, outcome: Outcome) -> None:
        """`entry` is done with `outcome`: handed to `poll`, its key freed, its waiter woken."""
        self._done.append(outcome)
        self._active -= 1
        key = entry.request.key
        if key is not None:
            self._release_key(key)
        waiter = entry.waiter
        if waiter is not None:
            entry.outcome = outcome
            waiter.release()

    def _release_key(self, key: str) -> None:
        keys = self._keys
        waiting = keys.get(key)
        if waiting:
            # The next request on this key goes out next: it has waited longest.
            self._promoted.append(waiting.popleft())
        else:
            keys.pop(key, None)

    def _closed_outcome(self, entry: _Entry, cause: BaseException | None = None) -> Outcome:
        now = monotonic()
        url = entry.request.node.url
        error = TransportError(f"closed before {url} answered" if cause is None else
                               f"no reply from {url}: the pipeline's driver thread failed ({cause!r})")
        return Outcome(entry.request, None, error, entry.scheduled, entry.sent_at or now, now, entry.retransmits)

    def _unregister(self, sock: socket.socket) -> None:
        try:
            self._selector.unregister(sock)
        except (KeyError, ValueError):
            pass

    def __repr__(self) -> str:
        return f"Pipeline(window={self.window}, nodes={len(self._nodes)}, pending={self.pending})"
