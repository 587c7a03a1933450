"""What one direction of media through a relay did to the packets sent through it: the meter behind
`rtppctl check`'s "directions" entries (README, JSON keys); no I/O.

The sender asks a `DirectionMeter` for each datagram (`packet`), which remembers what it built, and
says when it went out (`sent`); the receiver hands it every datagram that arrived (`received`).
`result()` turns that into the per-direction counts, latency and jitter. Clocks, sockets and threads
stay with the caller: times come in as nanosecond readings of one clock (a send time and the
kernel's receive time, both CLOCK_REALTIME), so the same inputs always give the same result.

The rules it keeps:

- Every payload is distinct (`payload_for`), and each arrival is compared byte for byte with what
  was built for its sequence number, so a packet from another stream, or altered on the way, is
  never taken for a good one.
- Each datagram lands in exactly one bucket, tried in this order: `stray` (not RTP, another SSRC, a
  sequence number never built), `corrupted` (payload type, timestamp or payload differs from what
  was built: every altered copy counts, and none counts as received), `duplicates` (an intact copy
  of a packet already received), else received. `reordered` and `late` are kinds of received.
  So `received + lost == sent` while every packet arrived at most once and all were recorded sent.
- Sequence numbers are 16 bits and wrap; they are mapped back to packet indices through what was
  built, which is why one meter holds at most 65536 packets (the caller sends at most 10,000).
- An arrival may be handed over before its send time is recorded (sender and receiver on two
  threads): latency, lateness and jitter are worked out in `result()`, when both are known.
- Jitter is RFC 3550's interarrival jitter (§6.4.1: J += (|D| - J) / 16 over packets in arrival
  order) with the packets' real send times as the sender's clock: D is the difference of two
  packets' transit times. With the RTP timestamps instead, how evenly this host paced its sending
  (a thread woken by the OS, a fraction of a millisecond off) would be charged to the relay.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import asdict, dataclass
from typing import Any

from rtppctl.proto.errors import InputError
from rtppctl.proto.rtp import MalformedPacket, build_rtp, parse_rtp

#: The two directions of a call, in the order check reports them.
DIRECTIONS = ("caller-to-callee", "callee-to-caller")

#: Sequence numbers are 16 bits: past this many packets two of them would share one.
MAX_PACKETS = 0x10000

# The latency histogram (hdrhistogram): microseconds from 1 µs to one minute, 3 significant digits.
_LATENCY_LOWEST_US = 1
_LATENCY_HIGHEST_US = 60_000_000
_LATENCY_DIGITS = 3

# RFC 3550 §6.4.1: the jitter estimate moves 1/16 of the way towards each new difference.
_JITTER_GAIN = 16


def _check_int(name: str, value: int, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bound = f"{low}..{high}" if high is not None else f"at least {low}"
        raise InputError(f"{name} {value!r} is out of range ({bound})")


_PAYLOAD_KEY = struct.Struct("!BIQ")  # direction index, packet index, 64-byte block number


def payload_marker(direction_index: int) -> bytes:
    """What a check's payload starts with (`rtppctl check caller-to-callee `): someone reading a
    capture on the relay's host sees whose packets these are and which way they go."""
    return b"rtppctl check " + DIRECTIONS[direction_index].encode() + b" "


#: Random bytes a payload keeps after its marker, at least: below that it is all random.
_MIN_RANDOM_TAIL = 16


def payload_for(direction_index: int, seq_index: int, size: int, seed: bytes) -> bytes:
    """The payload of packet `seq_index` of direction `direction_index`: the direction's marker
    (`payload_marker`, when `size` leaves room for 16 more bytes), then BLAKE2b output keyed by
    the run's `seed`, so each packet of each direction of each run differs (for sizes of 8 bytes
    and more, with overwhelming probability) and anyone holding the seed can rebuild it. Any byte
    is a valid G.711 sample, so it travels as PCMU or PCMA."""
    _check_int("direction index", direction_index, 0, len(DIRECTIONS) - 1)
    _check_int("packet index", seq_index, 0, 0xFFFF_FFFF)
    _check_int("payload size", size, 0)
    # The seed comes first and the fixed-size key last, so no two (seed, key) pairs hash the same text.
    base = hashlib.blake2b(bytes(seed))
    marker = payload_marker(direction_index)
    if size < len(marker) + _MIN_RANDOM_TAIL:
        marker = b""
    blocks = [marker]
    for block in range((size + 63) // 64):
        digest = base.copy()
        digest.update(_PAYLOAD_KEY.pack(direction_index, seq_index, block))
        blocks.append(digest.digest())
    return b"".join(blocks)[:size]


def relay_split(sent: int, relay_received: int | None, received: int) -> tuple[int | None, int | None]:
    """(lost_before_relay, lost_after_relay) from the relay's own count of packets it got from the
    sender; (None, None) when that count is unknown. Each is clamped at 0: the relay counts every
    datagram it took in, a corrupted or duplicated one too, which the meter does not count as
    received."""
    if relay_received is None:
        return None, None
    return max(0, sent - relay_received), max(0, relay_received - received)


@dataclass(frozen=True)
class DirectionResult:
    """One "directions" entry of check's JSON, without the relay's keys (see `relay_split`)."""

    #: "caller-to-callee" or "callee-to-caller".
    direction: str
    #: Packets whose send time was recorded.
    sent: int
    #: Distinct packets that arrived intact.
    received: int
    #: sent - received, never negative.
    lost: int
    #: 100 * lost / sent; 0.0 when nothing was sent.
    loss_pct: float
    #: Intact copies of a packet already received.
    duplicates: int
    #: Received after a packet sent later (a higher index) had already been received.
    reordered: int
    #: Received more than late_ms after being sent (they count as received too).
    late: int
    #: Datagrams of this stream whose payload type, timestamp or payload was altered.
    corrupted: int
    #: Datagrams that were not this stream's: not RTP, another SSRC, a sequence number never built.
    stray: int
    #: {"min", "avg", "p99", "max"} in ms over received packets with a send time; None when none.
    latency_ms: dict[str, float] | None
    #: RFC 3550 interarrival jitter in ms; None when fewer than 2 packets were received.
    jitter_ms: float | None
    #: Whether the last intact datagram arrived at the receiver's sending socket (the relay latched
    #: onto the real source port) rather than at the port its SDP named; None when none arrived.
    latched: bool | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Expected:
    """What was built for one packet, to compare its arrival with."""

    sequence: int
    timestamp: int
    payload: bytes


class DirectionMeter:
    """The packets of one direction: what was built and sent, and what arrived.

    `sent()` may be called from another thread than `received()`: it is one dict store. `packet()`
    for an index happens before that packet can arrive; `received()` and `result()` are meant for
    one thread at a time."""

    def __init__(self, direction: str, *, ssrc: int, payload_type: int = 0, clock_rate: int = 8000,
                 late_ms: float = 150.0) -> None:
        if direction not in DIRECTIONS:
            raise InputError(f"direction {direction!r}: use one of {', '.join(DIRECTIONS)}")
        _check_int("SSRC", ssrc, 0, 0xFFFF_FFFF)
        _check_int("payload type", payload_type, 0, 127)
        _check_int("clock rate", clock_rate, 1)
        if isinstance(late_ms, bool) or not isinstance(late_ms, (int, float)) or not late_ms >= 0:
            raise InputError(f"late_ms {late_ms!r} must be a number of milliseconds, at least 0")
        self.direction = direction
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.clock_rate = clock_rate
        self.late_ms = float(late_ms)
        self._expected: dict[int, _Expected] = {}  # by packet index
        self._index_of_sequence: dict[int, int] = {}
        self._send_ns: dict[int, int] = {}  # by packet index
        self._arrival_ns: dict[int, int] = {}  # by packet index, the first intact copy; in arrival order
        self._highest_index = -1
        self._reordered = 0
        self._duplicates = 0
        self._corrupted = 0
        self._stray = 0
        self._latched: bool | None = None

    def packet(self, index: int, *, first_seq: int, first_timestamp: int, samples_per_packet: int,
               payload: bytes) -> bytes:
        """The RTP datagram of packet `index` (the marker on the first, sequence number and
        timestamp wrapping as RFC 3550 says), remembered as what should arrive."""
        _check_int("packet index", index, 0, MAX_PACKETS - 1)
        _check_int("first sequence number", first_seq, 0, 0xFFFF)
        _check_int("first timestamp", first_timestamp, 0, 0xFFFF_FFFF)
        _check_int("samples per packet", samples_per_packet, 0)
        sequence = (first_seq + index) % 0x10000
        timestamp = (first_timestamp + index * samples_per_packet) % 0x1_0000_0000
        owner = self._index_of_sequence.get(sequence, index)
        if owner != index:
            # Two indices on one sequence number would make arrivals ambiguous.
            raise InputError(f"packet {index} would reuse sequence number {sequence} of packet {owner}")
        datagram = build_rtp(self.payload_type, sequence, timestamp, self.ssrc, payload, marker=index == 0)
        previous = self._expected.get(index)
        if previous is not None and previous.sequence != sequence:
            del self._index_of_sequence[previous.sequence]
        self._expected[index] = _Expected(sequence, timestamp, bytes(payload))
        self._index_of_sequence[sequence] = index
        return datagram

    def sent(self, index: int, send_ns: int) -> None:
        """Packet `index` (built by `packet`) left at `send_ns`, a nanosecond clock reading."""
        if index not in self._expected:
            raise InputError(f"packet {index!r} was recorded as sent but never built")
        self._send_ns[index] = send_ns

    def received(self, data: bytes, arrival_ns: int, *, at_source: bool) -> None:
        """One datagram that arrived at this direction's receiver at `arrival_ns` (the same clock as
        the send times); `at_source` when it came to the receiver's sending socket. Never raises
        for what the network delivers: anything that is not this stream is counted as stray."""
        try:
            packet = parse_rtp(data)
        except MalformedPacket:
            self._stray += 1
            return
        index = self._index_of_sequence.get(packet.sequence) if packet.ssrc == self.ssrc else None
        if index is None:
            self._stray += 1
            return
        expected = self._expected[index]
        # Marker, CSRCs and extensions are not compared: a relay may set them without harm to what
        # the far end plays, which is the payload at its timestamp.
        if (packet.payload_type != self.payload_type or packet.timestamp != expected.timestamp
                or packet.payload != expected.payload):
            self._corrupted += 1
            return
        # The last intact datagram says where the relay sends now (a duplicate too: during latching
        # the relay may still be sending copies to the SDP's port).
        self._latched = bool(at_source)
        if index in self._arrival_ns:
            self._duplicates += 1
            return
        self._arrival_ns[index] = arrival_ns
        if index < self._highest_index:
            self._reordered += 1
        else:
            self._highest_index = index

    def result(self) -> DirectionResult:
        """The counts so far; it may be called again as more arrives."""
        latencies_ns = [arrival_ns - self._send_ns[index]
                        for index, arrival_ns in list(self._arrival_ns.items()) if index in self._send_ns]
        return _result(self.direction, len(self._send_ns), len(self._arrival_ns), latencies_ns, self.late_ms,
                       duplicates=self._duplicates, reordered=self._reordered, corrupted=self._corrupted,
                       stray=self._stray, latched=self._latched)


def _result(direction: str, sent: int, received: int, latencies_ns: list[int], late_ms: float, *, duplicates: int,
            reordered: int, corrupted: int, stray: int, latched: bool | None) -> DirectionResult:
    """A direction's counts, with what follows from them: loss, lateness, latency and jitter."""
    lost = max(0, sent - received)
    late_ns = late_ms * 1_000_000
    return DirectionResult(
        direction=direction,
        sent=sent,
        received=received,
        lost=lost,
        loss_pct=round(100 * lost / sent, 3) if sent else 0.0,
        duplicates=duplicates,
        reordered=reordered,
        late=sum(1 for latency in latencies_ns if latency > late_ns),
        corrupted=corrupted,
        stray=stray,
        latency_ms=_latency_summary(latencies_ns),
        jitter_ms=_jitter_ms(latencies_ns) if len(latencies_ns) >= 2 else None,
        latched=latched,
    )


def _jitter_ms(transits_ns: list[int]) -> float:
    """RFC 3550 §6.4.1's estimate over transit times in arrival order, in ms."""
    jitter = 0.0
    for previous, current in zip(transits_ns, transits_ns[1:]):
        jitter += (abs(current - previous) - jitter) / _JITTER_GAIN
    return round(jitter / 1e6, 3)


def _latency_summary(latencies_ns: list[int]) -> dict[str, float] | None:
    """min, avg and max exactly from the readings; p99 from an HDR histogram of microseconds."""
    if not latencies_ns:
        return None
    from hdrh.histogram import HdrHistogram  # noqa: PLC0415 -- 10 ms at import; only check uses it

    histogram = HdrHistogram(_LATENCY_LOWEST_US, _LATENCY_HIGHEST_US, _LATENCY_DIGITS)
    for latency_ns in latencies_ns:
        # A negative latency (the clock stepped back between send and arrival) or one past a minute
        # would fall outside the histogram: it is recorded at the nearer bound.
        histogram.record_value(min(max(round(latency_ns / 1000), 0), _LATENCY_HIGHEST_US))
    lowest, highest = min(latencies_ns) / 1e6, max(latencies_ns) / 1e6
    # The histogram answers with the top of a bucket, which may lie past the largest reading.
    p99 = min(max(histogram.get_value_at_percentile(99) / 1000, lowest), highest)
    return {
        "min": round(lowest, 3),
        "avg": round(sum(latencies_ns) / len(latencies_ns) / 1e6, 3),
        "p99": round(p99, 3),
        "max": round(highest, 3),
    }


class CapturedMeter:
    """One direction of a replayed stream (`replay --media`): the captured datagrams as they were
    sent again, and what arrived, matched byte for byte (a relay forwards RTP unchanged).

    The same counts as `DirectionMeter` (`DirectionResult`), for packets this meter did not build:
    an arrival is the earliest sent datagram with the same bytes not yet received; an arrival
    matching none is stray (another stream, or altered on the way: without a builder's record the
    two cannot be told apart, so `corrupted` stays 0)."""

    def __init__(self, direction: str, *, late_ms: float = 150.0) -> None:
        if direction not in DIRECTIONS:
            raise InputError(f"direction {direction!r}: use one of {', '.join(DIRECTIONS)}")
        self.direction = direction
        self.late_ms = float(late_ms)
        self._send_ns: list[int] = []
        #: A datagram's hash -> the indices sent with it, not yet received, oldest first (hashes,
        #: not the bytes: a long stream's memory is a few numbers a packet).
        self._waiting: dict[int, list[int]] = {}
        self._received: set[int] = set()
        self._arrivals: list[tuple[int, int]] = []  # (index, arrival_ns) in arrival order
        self._highest = -1
        self._reordered = self._duplicates = self._stray = 0
        self._latched: bool | None = None
        self._seen: set[int] = set()

    def sent(self, datagram: bytes, send_ns: int) -> None:
        """A captured datagram went out again at `send_ns`."""
        index = len(self._send_ns)
        self._send_ns.append(send_ns)
        self._waiting.setdefault(hash(bytes(datagram)), []).append(index)

    def received(self, data: bytes, arrival_ns: int, *, at_source: bool) -> None:
        key = hash(data)
        waiting = self._waiting.get(key)
        if not waiting:
            if key in self._seen:
                self._duplicates += 1
                self._latched = bool(at_source)
            else:
                self._stray += 1
            return
        index = waiting.pop(0)
        self._seen.add(key)
        self._latched = bool(at_source)
        self._received.add(index)
        self._arrivals.append((index, arrival_ns))
        if index < self._highest:
            self._reordered += 1
        else:
            self._highest = index

    def result(self) -> DirectionResult:
        latencies_ns = [arrival - self._send_ns[index] for index, arrival in self._arrivals]
        return _result(self.direction, len(self._send_ns), len(self._received), latencies_ns, self.late_ms,
                       duplicates=self._duplicates, reordered=self._reordered, corrupted=0, stray=self._stray,
                       latched=self._latched)
