"""Real RTP through a relay, both ways, from two local parties: the I/O half of `check`.

Each party has two UDP sockets: the one its SDP names (`declared`) and the one it sends from
(`source`), as a phone behind NAT has. Media for a party that arrives at its source socket shows
that the relay latched to where the party really sends from; media arriving at the declared one
shows it did not (yet). Both count as received: the meters (`proto.media_path`) say which.

`exchange` paces both directions on one thread with `selectors`: at each send time the next packet
of each direction goes out, and in between every datagram that arrived is handed to its meter
with its arrival time. Arrival times come from the kernel (`SO_TIMESTAMPNS`, the moment the
datagram was queued), not from when this thread got round to reading it: with many nodes checked
at once, threads wait for the interpreter lock, and that wait is not the relay's latency. Send
times are read just before each `sendto` on the same clock (CLOCK_REALTIME). Every wait is bounded
by the run's deadline and its stop event.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import threading
    from collections.abc import Sequence

    from rtppctl.proto.media_path import CapturedMeter, DirectionMeter

# Linux's SO_TIMESTAMPNS (asm-generic; the socket module does not name it). Elsewhere, or when
# the kernel does not attach a timestamp, the reading thread's clock stands in.
_SO_TIMESTAMPNS = 35 if sys.platform.startswith("linux") else None
_TIMESPEC = struct.Struct("@qq")
_ANCILLARY_SIZE = socket.CMSG_SPACE(_TIMESPEC.size)
#: Larger than any packet `check` sends (200 ms of G.711 plus the header), so nothing is cut.
_MAX_DATAGRAM = 4096
_MAX_READS = 256


def local_address_towards(host: str | None, port: int | None, family: int) -> str:
    """The address this host sends from towards `host` (its routing table's choice: a UDP
    connect sends nothing); loopback for a relay reached over a unix socket."""
    loopback = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    if not host:
        return loopback
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((host.strip("[]"), port or 9))
            return probe.getsockname()[0]
    except OSError:
        return loopback


@dataclass
class Party:
    """One side of the call: the socket its SDP names and the one it sends from."""

    declared: socket.socket
    source: socket.socket

    @classmethod
    def open(cls, address: str) -> Party:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sockets: list[socket.socket] = []
        try:
            for _ in range(2):
                sock = socket.socket(family, socket.SOCK_DGRAM)
                sockets.append(sock)
                sock.setblocking(False)
                sock.bind((address, 0))
                if _SO_TIMESTAMPNS is not None:
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        except OSError:
            for sock in sockets:
                sock.close()
            raise
        return cls(sockets[0], sockets[1])

    @property
    def declared_port(self) -> int:
        return self.declared.getsockname()[1]

    def close(self) -> None:
        self.declared.close()
        self.source.close()


@dataclass
class ExchangeOutcome:
    """How the sending went: per direction, the first error `sendto` raised (None: every packet
    left), and whether the run was cut by the stop event or the deadline."""

    send_errors: list[str | None] = field(default_factory=lambda: [None, None])
    cut: bool = False


def exchange(parties: Sequence[Party], destinations: Sequence[tuple[str, int]], meters: Sequence[DirectionMeter],
             datagrams: Sequence[Sequence[bytes]], *, interval: float, settle: float,
             stop: threading.Event, deadline: float) -> ExchangeOutcome:
    """Send `datagrams[d][i]` from party d's source socket to `destinations[d]` every `interval`
    seconds for both directions d (0: caller to callee, 1: callee to caller), feed what arrives
    to the meters (`meters[d]` gets what party 1-d receives), and keep reading `settle` seconds
    after the last send. `deadline` is a `time.monotonic()` reading."""
    outcome = ExchangeOutcome()
    selector = selectors.DefaultSelector()
    # What arrives at the callee belongs to direction 0, at the caller to direction 1.
    for direction, party in ((0, parties[1]), (1, parties[0])):
        selector.register(party.declared, selectors.EVENT_READ, (meters[direction], False))
        selector.register(party.source, selectors.EVENT_READ, (meters[direction], True))
    count = max(len(d) for d in datagrams)
    start = time.monotonic()
    sent = 0
    try:
        while True:
            now = time.monotonic()
            if stop.is_set() or now >= deadline:
                outcome.cut = True
                return outcome
            if sent < count and now >= start + sent * interval:
                for direction in (0, 1):
                    if sent < len(datagrams[direction]) and outcome.send_errors[direction] is None:
                        _send(parties[direction].source, datagrams[direction][sent], destinations[direction],
                              meters[direction], sent, outcome, direction)
                sent += 1
                continue
            wake = start + sent * interval if sent < count else start + (count - 1) * interval + settle
            if sent >= count and now >= wake:
                return outcome
            for key, _ in selector.select(max(0.0, min(wake, deadline) - now)):
                meter, at_source = key.data
                drain(key.fileobj, meter, at_source)  # type: ignore[arg-type]
    finally:
        selector.close()


def _send(sock: socket.socket, datagram: bytes, destination: tuple[str, int], meter: DirectionMeter, index: int,
          outcome: ExchangeOutcome, direction: int) -> None:
    send_ns = time.time_ns()
    try:
        sock.sendto(datagram, destination)
    except BlockingIOError:
        return  # the socket's buffer is full: this packet is lost on our side, and counted as never sent
    except OSError as err:
        # An unreachable network or host fails at once and every later packet would fail the
        # same way: the direction stops and says why.
        outcome.send_errors[direction] = err.strerror or errno.errorcode.get(err.errno or 0, str(err))
        return
    meter.sent(index, send_ns)


def drain(sock: socket.socket, meter: DirectionMeter | CapturedMeter, at_source: bool) -> None:
    """The datagrams queued on `sock` (at most `_MAX_READS` at a time: a flood cannot starve the
    sending), each with its kernel arrival time."""
    for _ in range(_MAX_READS):
        try:
            data, ancillary, _flags, _address = sock.recvmsg(_MAX_DATAGRAM, _ANCILLARY_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            # An ICMP error for an earlier send (port unreachable) surfaces here on some
            # systems: it is about our sending, not a datagram to read.
            continue
        meter.received(data, _arrival_ns(ancillary), at_source=at_source)


def _arrival_ns(ancillary: list[tuple[int, int, bytes]]) -> int:
    for level, kind, value in ancillary:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(value) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(value)
            return seconds * 1_000_000_000 + nanoseconds
    return time.time_ns()


__all__ = ["ExchangeOutcome", "Party", "exchange", "local_address_towards"]
