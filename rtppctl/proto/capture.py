"""Captured SIP traffic as values: what a trace reader (`rtppctl/captures.py`, pcap and pcapng
through dpkt; `proto/text_trace.py`, text traces) hands the replay, and the decoder that turns
captured frames into it.

This module owns the records a trace is read into (`SipPacket`: one whole SIP message with where
and when it travelled; `MediaPacket`: a UDP datagram that is not SIP, for `replay --media`), the
counters of what a reading met (`CaptureStats`), and `Decoder`, which takes captured frames one at
a time and gives back the records each one completes. Pure: bytes in, values out; the files are
`rtppctl/captures.py`'s.

`Decoder(media=False, stats=None)`; `decoder.frame(time, link_type, data, interface=0,
original_length=None)` returns the records that frame completes (often none), in capture order;
`decoder.finish()` at the end of the capture returns what was still held and is complete enough.
The rules it keeps:

- Link types (the pcap LINKTYPE numbers): Ethernet (1) with any stack of 802.1Q / 802.1ad tags,
  Linux cooked SLL (113) and SLL2 (276), raw IP (101, 228, 229, and the BSDs' 12 and 14), BSD
  loopback NULL (0) and LOOP (108). Another link type is counted by number in
  `stats.unknown_link_types` and its frame skipped. IPv4 and IPv6 (extension headers skipped).
- A frame captured shorter than it was (`original_length`), or whose headers do not parse, is
  counted in `stats.truncated` and skipped. Nothing a capture holds makes the decoder raise.
- IP fragments are put back together (IPv4 by source, destination, identification and protocol;
  IPv6 by its Fragment header), holding at most `max_pending_datagrams` datagrams and
  `max_fragment_bytes` bytes for at most `fragment_window` seconds of capture time; a datagram
  that does not complete within those is dropped and counted.
- A UDP payload whose first line is a SIP request line or status line is one SIP message, on any
  port; bytes past its Content-Length are cut off. Datagrams of CR and LF only (or empty) are
  keep-alives: neither SIP nor media. Any other datagram is a `MediaPacket` when the decoder was
  made with `media=True`, else only counted.
- TCP: each direction of each connection is put back in sequence order (retransmitted and
  overlapping bytes dropped, early segments held up to `max_stream_bytes`, a connection seen
  mid-stream taken from its first segment), then cut into SIP messages: the headers up to the
  empty line and the body Content-Length gives (`l:` too; none on TCP means no body). CR LF
  keep-alives between messages are skipped; bytes that do not start a message are skipped up to
  the next line that does. A message comes out with the frame its last byte arrived in. At most
  `max_tcp_streams` directions and `max_tcp_bytes` bytes are held; the least recently active
  direction goes first. FIN and RST end a direction.

Counters in `stats.other` (only those that happened are present): `not_ip` (frames of a known link
type carrying neither IPv4 nor IPv6), `other_ip_protocols` (neither UDP nor TCP),
`fragments_reassembled`, `fragments_dropped` (datagrams given up incomplete), `keepalives`,
`udp_not_sip` (non-SIP datagrams when media is not kept), `sip_trailing_bytes` (UDP messages cut
at their Content-Length), `sip_short_body` (UDP messages with less body than Content-Length says),
`tcp_midstream` (directions first seen without their SYN), `tcp_retransmissions`, `tcp_gaps` (held
bytes given up on, or skipped at the end), `tcp_junk` (runs of bytes skipped to the next start
line), `tcp_oversized` (messages over `max_stream_bytes`, skipped), `tcp_incomplete` (a direction
ended or dropped in the middle of a message), `tcp_streams_dropped` (directions dropped to keep
within the bounds).
"""

from __future__ import annotations

import ipaddress
import re
import struct
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class SipPacket:
    """One whole SIP message as captured."""

    #: Capture time, seconds since the epoch.
    time: float
    #: (IP address, port) it came from and went to; the address as text ("10.0.0.1", "2001:db8::1").
    src: tuple[str, int]
    dst: tuple[str, int]
    #: "udp" or "tcp".
    transport: str
    #: Exactly one SIP message: start line, headers and the body Content-Length gives it.
    data: bytes
    #: The capture's interface (pcapng); 0 for pcap and text traces.
    interface: int = 0
    #: 1-based number of the frame (text traces: the record) the message ended in.
    frame: int = 0


@dataclass(frozen=True, slots=True)
class MediaPacket:
    """A UDP datagram that is not SIP (RTP, RTCP, anything): kept only when media is asked for."""

    time: float
    src: tuple[str, int]
    dst: tuple[str, int]
    data: bytes
    interface: int = 0
    frame: int = 0


@dataclass
class CaptureStats:
    """What a reading met besides the messages; never a reason to stop reading."""

    #: Frames (text traces: records) read.
    frames: int = 0
    sip_messages: int = 0
    media_packets: int = 0
    #: Frames of a link type the reader does not decode, by link type number.
    unknown_link_types: dict[int, int] = field(default_factory=dict)
    #: Frames cut short (snap length, a file ending mid-record) or whose headers do not parse.
    truncated: int = 0
    #: Other counters a reader keeps (fragments reassembled, TCP gaps...), by name.
    other: dict[str, int] = field(default_factory=dict)

    def count(self, name: str, by: int = 1) -> None:
        self.other[name] = self.other.get(name, 0) + by

    def as_dict(self) -> dict[str, Any]:
        return {"frames": self.frames, "sip_messages": self.sip_messages, "media_packets": self.media_packets,
                "unknown_link_types": {str(k): v for k, v in sorted(self.unknown_link_types.items())},
                "truncated": self.truncated, **dict(sorted(self.other.items()))}


Record = SipPacket | MediaPacket

# -- SIP framing ---------------------------------------------------------------------------------

# RFC 3261 §7.1 and §7.2, as bytes: a request line (a method token, a URI with a scheme, SIP/2.0)
# or a status line (SIP/2.0 and three digits), each ending its line. Tabs and a lower-case
# "sip/2.0" are taken, as proto/sip.py takes them in pasted traces.
_METHOD = rb"[A-Za-z0-9\-.!%*_+`'~]+"
_REQUEST_LINE = _METHOD + rb"[ \t]+[A-Za-z][A-Za-z0-9+.\-]*:[^ \t\r\n]+[ \t]+(?i:SIP/2\.0)[ \t]*\r?\n"
_STATUS_LINE = rb"(?i:SIP/2\.0)[ \t]+[1-6][0-9][0-9](?:[ \t][^\r\n]*)?\r?\n"
_START_LINE = re.compile(rb"(?:" + _STATUS_LINE + rb"|" + _REQUEST_LINE + rb")")
#: The "\n" before a line that starts a message: where a stream that lost its way picks up again.
_NEXT_START_LINE = re.compile(rb"\n(?=" + _STATUS_LINE + rb"|" + _REQUEST_LINE + rb")")
#: The empty line after the headers (a bare LF taken as a line end, as traces have them).
_HEADERS_END = re.compile(rb"\n\r?\n")
#: Content-Length, or its compact form `l`, at the start of a header line.
_CONTENT_LENGTH = re.compile(rb"\n(?i:content-length|l)[ \t]*:[ \t]*([0-9]{1,10})(?![0-9])")
#: A start line longer than this is not waited for on a stream: those bytes are no SIP.
_MAX_START_LINE = 8192
_CRLF = b"\r\n"


def _body_length(message: bytes | bytearray, start: int, headers_end: int) -> int | None:
    """Content-Length of the message whose headers span [start, headers_end); None if absent."""
    length = _CONTENT_LENGTH.search(message, start, headers_end)
    return None if length is None else int(length[1])


# -- link and network layers ---------------------------------------------------------------------

_ETHERTYPE_IPV4 = 0x0800
_ETHERTYPE_IPV6 = 0x86DD
#: 802.1Q, 802.1ad (QinQ) and the older 0x9100 QinQ tag: 4 bytes each, the real type after them.
_VLAN_TAGS = frozenset({0x8100, 0x88A8, 0x9100})
#: BSD loopback (NULL, LOOP) address families meaning IPv4 and IPv6, in either byte order; the
#: IPv6 value differs by system (Linux 10, NetBSD/OpenBSD 24, FreeBSD 28, macOS 30).
_LOOPBACK_FAMILIES = {2: _ETHERTYPE_IPV4, 10: _ETHERTYPE_IPV6, 24: _ETHERTYPE_IPV6, 28: _ETHERTYPE_IPV6,
                      30: _ETHERTYPE_IPV6}
LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LOOP = 0, 1, 101, 108
LINKTYPE_LINUX_SLL, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL2 = 113, 228, 229, 276
#: Raw IP, the IP version told by the first nibble: LINKTYPE_RAW, its IPv4 and IPv6 forms, and the
#: DLT_RAW values some BSDs wrote into files (12, and 14 on OpenBSD).
_RAW_LINKS = frozenset({LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6, 12, 14})

_UDP, _TCP, _IPV6_FRAGMENT, _IPV6_AH = 17, 6, 44, 51
#: IPv6 extension headers that carry their length as (8-octet units - 1): hop-by-hop, routing,
#: destination options, mobility, HIP, shim6.
_IPV6_EXTENSIONS = frozenset({0, 43, 60, 135, 139, 140})
_MAX_DATAGRAM = 65535

_TCP_FIN, _TCP_SYN, _TCP_RST = 0x01, 0x02, 0x04
_SEQ_MASK = 0xFFFFFFFF

_u16 = struct.Struct("!H").unpack_from
_u32 = struct.Struct("!I").unpack_from
_ipv4_fields = struct.Struct("!2xHHHxB").unpack_from  # total length, id, flags+offset, protocol
_udp_header = struct.Struct("!HHH").unpack_from  # source port, destination port, length
_tcp_header = struct.Struct("!HHI4xH").unpack_from  # ports, sequence number, data offset+flags


class Decoder:
    """Captured frames in, SIP messages (and with `media`, other UDP datagrams) out; see the module.

    The bounds are class attributes, so a caller (or a test) can narrow them in a subclass.
    """

    #: IP datagrams waiting for fragments, bytes they hold, and how long (capture time) they wait.
    max_pending_datagrams = 1024
    max_fragment_bytes = 8 << 20
    fragment_window = 30.0
    #: TCP directions followed at once, bytes held per direction (a message being gathered and
    #: segments that came early), and bytes held over all of them.
    max_tcp_streams = 4096
    max_stream_bytes = 1 << 20
    max_tcp_bytes = 64 << 20

    def __init__(self, *, media: bool = False, stats: CaptureStats | None = None) -> None:
        #: What the decoding met; shared with the caller when it passed its own.
        self.stats = stats if stats is not None else CaptureStats()
        #: Whether non-SIP UDP datagrams come out as MediaPacket.
        self.media = media
        self._fragments = _Reassembly(self)
        self._streams = _TcpStreams(self)
        # Addresses as text, by their bytes: a capture has few of them and many packets.
        self._names: dict[bytes, str] = {}

    def frame(self, time: float, link_type: int, data: bytes, *, interface: int = 0,
              original_length: int | None = None) -> list[Record]:
        """The records this frame completes: usually none or one, in capture order."""
        stats = self.stats
        stats.frames += 1
        if original_length is not None and original_length > len(data):
            stats.truncated += 1
            return []
        try:
            # The common case first and inline: Ethernet, IPv4, no tag.
            if link_type == LINKTYPE_ETHERNET:
                ethertype = (data[12] << 8) | data[13]
                offset = 14
                while ethertype in _VLAN_TAGS:
                    ethertype = (data[offset + 2] << 8) | data[offset + 3]
                    offset += 4
            elif link_type in _RAW_LINKS:
                version = data[0] >> 4
                ethertype = _ETHERTYPE_IPV4 if version == 4 else _ETHERTYPE_IPV6 if version == 6 else 0
                offset = 0
            elif link_type == LINKTYPE_LINUX_SLL:
                ethertype, offset = _u16(data, 14)[0], 16
            elif link_type == LINKTYPE_LINUX_SLL2:
                ethertype, offset = _u16(data, 0)[0], 20
            elif link_type == LINKTYPE_NULL or link_type == LINKTYPE_LOOP:
                # NULL writes the family in the capturing host's byte order, LOOP in network order.
                if len(data) < 4:
                    raise IndexError
                family = int.from_bytes(data[:4], "little")
                if family > 0xFFFF:
                    family = int.from_bytes(data[:4], "big")
                ethertype, offset = _LOOPBACK_FAMILIES.get(family, 0), 4
            else:
                stats.unknown_link_types[link_type] = stats.unknown_link_types.get(link_type, 0) + 1
                return []
            if link_type != LINKTYPE_ETHERNET:
                while ethertype in _VLAN_TAGS:
                    ethertype = (data[offset + 2] << 8) | data[offset + 3]
                    offset += 4
            if ethertype == _ETHERTYPE_IPV4:
                return self._ipv4(time, data, offset, interface)
            if ethertype == _ETHERTYPE_IPV6:
                return self._ipv6(time, data, offset, interface)
            stats.count("not_ip")
            return []
        except (IndexError, struct.error):
            stats.truncated += 1
            return []

    def finish(self) -> list[Record]:
        """At the end of the capture: TCP bytes still held past a gap, cut into messages as far
        as they go; the rest (fragments, partial messages) counted and let go."""
        self._fragments.drop_all()
        return self._streams.finish()

    # -- network layer ----------------------------------------------------------------------------

    def _ipv4(self, time: float, data: bytes, offset: int, interface: int) -> list[Record]:
        version_length = data[offset]
        header_length = (version_length & 0x0F) << 2
        total_length, ident, fragment, protocol = _ipv4_fields(data, offset)
        end = offset + total_length
        if version_length >> 4 != 4 or header_length < 20 or total_length < header_length or end > len(data):
            self.stats.truncated += 1
            return []
        source, destination = data[offset + 12:offset + 16], data[offset + 16:offset + 20]
        start = offset + header_length
        if fragment & 0x3FFF:  # more fragments, or an offset: a piece of a datagram
            whole = self._fragments.add((4, source, destination, ident, protocol), time,
                                        (fragment & 0x1FFF) << 3, data[start:end], fragment & 0x2000)
            if whole is None:
                return []
            data, start, end = whole, 0, len(whole)
        if protocol == _UDP:
            return self._udp(time, source, destination, data, start, end, interface)
        if protocol == _TCP:
            return self._tcp(time, source, destination, data, start, end, interface)
        self.stats.count("other_ip_protocols")
        return []

    def _ipv6(self, time: float, data: bytes, offset: int, interface: int) -> list[Record]:
        if data[offset] >> 4 != 6:
            self.stats.truncated += 1
            return []
        payload_length = _u16(data, offset + 4)[0]
        start = offset + 40
        end = start + payload_length
        # A zero payload length is a jumbogram's (a hop-by-hop option has the length); not SIP.
        if end > len(data) or payload_length == 0:
            self.stats.truncated += 1
            return []
        source, destination = data[offset + 8:offset + 24], data[offset + 24:offset + 40]
        next_header = data[offset + 6]
        next_header, start = _skip_ipv6_extensions(data, next_header, start, end)
        if next_header == _IPV6_FRAGMENT:
            if start + 8 > end:
                self.stats.truncated += 1
                return []
            inner, fragment, ident = data[start], _u16(data, start + 2)[0], _u32(data, start + 4)[0]
            start += 8
            if fragment & 0xFFF9:  # an offset or more fragments: a piece (else an atomic fragment)
                whole = self._fragments.add((6, source, destination, ident), time, fragment & 0xFFF8,
                                            data[start:end], fragment & 1)
                if whole is None:
                    return []
                data, start, end = whole, 0, len(whole)
            next_header, start = _skip_ipv6_extensions(data, inner, start, end)
        if start > end:
            self.stats.truncated += 1
            return []
        if next_header == _UDP:
            return self._udp(time, source, destination, data, start, end, interface)
        if next_header == _TCP:
            return self._tcp(time, source, destination, data, start, end, interface)
        self.stats.count("other_ip_protocols")
        return []

    def _name(self, address: bytes) -> str:
        name = self._names.get(address)
        if name is None:
            if len(self._names) >= 65536:
                self._names.clear()
            # ipaddress, not socket: the protocol core opens nothing and needs no I/O module.
            name = str(ipaddress.IPv4Address(address) if len(address) == 4 else ipaddress.IPv6Address(address))
            self._names[address] = name
        return name

    # -- transport layer --------------------------------------------------------------------------

    def _udp(self, time: float, source: bytes, destination: bytes, data: bytes, start: int, end: int,
             interface: int) -> list[Record]:
        source_port, destination_port, length = _udp_header(data, start)
        payload_end = start + length
        if length < 8 or payload_end > end:
            self.stats.truncated += 1
            return []
        start += 8
        if _START_LINE.match(data, start):
            message = self._udp_message(data[start:payload_end])
            self.stats.sip_messages += 1
            return [SipPacket(time, (self._name(source), source_port), (self._name(destination), destination_port),
                              "udp", message, interface, self.stats.frames)]
        if payload_end - start <= 8 and not data[start:payload_end].strip(_CRLF):
            self.stats.count("keepalives")
            return []
        if not self.media:
            self.stats.count("udp_not_sip")
            return []
        self.stats.media_packets += 1
        return [MediaPacket(time, (self._name(source), source_port), (self._name(destination), destination_port),
                            data[start:payload_end], interface, self.stats.frames)]

    def _udp_message(self, message: bytes) -> bytes:
        """One datagram's message, cut at the end of the body its Content-Length gives."""
        headers_end = _HEADERS_END.search(message)
        if headers_end is None:
            return message
        body_start = headers_end.end()
        length = _body_length(message, 0, body_start)
        if length is not None:
            if body_start + length < len(message):
                self.stats.count("sip_trailing_bytes")
                return message[:body_start + length]
            if body_start + length > len(message):
                self.stats.count("sip_short_body")
        return message

    def _tcp(self, time: float, source: bytes, destination: bytes, data: bytes, start: int, end: int,
             interface: int) -> list[Record]:
        source_port, destination_port, sequence, offset_flags = _tcp_header(data, start)
        header_length = (offset_flags >> 12) << 2
        if header_length < 20 or start + header_length > end:
            self.stats.truncated += 1
            return []
        return self._streams.segment((source, source_port, destination, destination_port), time, sequence,
                                     offset_flags & 0x3F, data[start + header_length:end], interface)


def _skip_ipv6_extensions(data: bytes, next_header: int, start: int, end: int) -> tuple[int, int]:
    """(upper-layer or Fragment header type, its offset) past the extension headers at `start`."""
    while start < end:
        if next_header in _IPV6_EXTENSIONS:
            length = (data[start + 1] + 1) << 3
        elif next_header == _IPV6_AH:
            length = (data[start + 1] + 2) << 2
        else:
            break
        next_header = data[start]
        start += length
    return next_header, start


# -- IP fragments --------------------------------------------------------------------------------


class _Datagram:
    """The pieces of one fragmented datagram seen so far."""

    __slots__ = ("first_seen", "pieces", "size", "total")

    def __init__(self, first_seen: float) -> None:
        self.first_seen = first_seen
        #: (offset, bytes), in arrival order.
        self.pieces: list[tuple[int, bytes]] = []
        #: Bytes held.
        self.size = 0
        #: The datagram's length, known once its last piece came.
        self.total: int | None = None


class _Reassembly:
    """Fragmented IP datagrams waiting for their pieces, within the decoder's bounds.

    Insertion order is first-seen order, so the oldest datagram is the first key: the one given up
    when a bound is reached, and the first whose window runs out."""

    def __init__(self, decoder: Decoder) -> None:
        self._stats = decoder.stats
        self._max_datagrams = decoder.max_pending_datagrams
        self._max_bytes = decoder.max_fragment_bytes
        self._window = decoder.fragment_window
        self._pending: dict[tuple[Any, ...], _Datagram] = {}
        self._bytes = 0

    def add(self, key: tuple[Any, ...], time: float, offset: int, piece: bytes, more: int) -> bytes | None:
        """The whole datagram's payload if this piece completes it, else None."""
        pending = self._pending
        while pending:
            oldest = next(iter(pending))
            if pending[oldest].first_seen >= time - self._window:
                break
            self._drop(oldest)
        end = offset + len(piece)
        datagram = pending.get(key)
        if datagram is None:
            if len(pending) >= self._max_datagrams:
                self._drop(next(iter(pending)))
            datagram = pending[key] = _Datagram(time)
        if end > _MAX_DATAGRAM or (not more and datagram.total is not None and datagram.total != end) or (
                datagram.total is not None and end > datagram.total):
            self._drop(key)  # pieces that cannot belong together
            return None
        if not more:
            datagram.total = end
        datagram.pieces.append((offset, piece))
        datagram.size += len(piece)
        self._bytes += len(piece)
        while self._bytes > self._max_bytes:
            oldest = next(iter(pending))
            self._drop(oldest)
            if oldest == key:
                return None
        if datagram.total is None:
            return None
        covered = 0
        for piece_offset, piece_bytes in sorted(datagram.pieces, key=lambda held: held[0]):
            if piece_offset > covered:
                return None  # a hole
            covered = max(covered, piece_offset + len(piece_bytes))
        whole = bytearray(datagram.total)
        # Overlapping pieces: the later one wins, as it would in most stacks; they rarely differ.
        for piece_offset, piece_bytes in datagram.pieces:
            whole[piece_offset:piece_offset + len(piece_bytes)] = piece_bytes
        del pending[key]
        self._bytes -= datagram.size
        self._stats.count("fragments_reassembled")
        return bytes(whole)

    def _drop(self, key: tuple[Any, ...]) -> None:
        self._bytes -= self._pending.pop(key).size
        self._stats.count("fragments_dropped")

    def drop_all(self) -> None:
        while self._pending:
            self._drop(next(iter(self._pending)))


# -- TCP -----------------------------------------------------------------------------------------


class _Direction:
    """One direction of one TCP connection: bytes in sequence order, cut into SIP messages."""

    __slots__ = ("next_sequence", "early", "early_bytes", "buffer", "fin_sequence", "in_junk", "skip")

    def __init__(self, next_sequence: int) -> None:
        #: Sequence number of the next byte the stream needs.
        self.next_sequence = next_sequence
        #: Segments that came before the bytes ahead of them: sequence -> (bytes, time, frame, interface).
        self.early: dict[int, tuple[bytes, float, int, int]] = {}
        self.early_bytes = 0
        #: In-order bytes not yet cut into messages.
        self.buffer = bytearray()
        #: Where the sender's FIN is, once seen.
        self.fin_sequence: int | None = None
        #: Skipping bytes that start no message (counted once per run).
        self.in_junk = False
        #: Bytes of an oversized message's body still to skip.
        self.skip = 0

    @property
    def held(self) -> int:
        return len(self.buffer) + self.early_bytes


def _after(sequence: int, reference: int) -> int:
    """How far `sequence` is past `reference`, in 32-bit sequence space (negative: before it)."""
    distance = (sequence - reference) & _SEQ_MASK
    return distance - (1 << 32) if distance & 0x80000000 else distance


class _TcpStreams:
    """Every TCP direction being followed, least recently active first (dict order), and where
    the recently ended ones stopped, so that their retransmissions open nothing."""

    def __init__(self, decoder: Decoder) -> None:
        self._decoder = decoder
        self._stats = decoder.stats
        self._max_streams = decoder.max_tcp_streams
        self._max_stream_bytes = decoder.max_stream_bytes
        self._max_bytes = decoder.max_tcp_bytes
        self._directions: dict[tuple[bytes, int, bytes, int], _Direction] = {}
        self._ended: dict[tuple[bytes, int, bytes, int], int] = {}
        self._bytes = 0

    def segment(self, key: tuple[bytes, int, bytes, int], time: float, sequence: int, flags: int,
                payload: bytes, interface: int) -> list[Record]:
        directions = self._directions
        direction = directions.pop(key, None)  # put back last: the most recently active
        records: list[Record] = []
        if flags & _TCP_SYN:
            if direction is not None:  # the port pair is reused by a new connection
                self._end(key, direction)
            self._ended.pop(key, None)
            sequence = (sequence + 1) & _SEQ_MASK
            direction = _Direction(sequence)
        elif direction is None:
            if not payload:
                return records  # a bare ACK or FIN opens nothing
            ended_at = self._ended.pop(key, None)
            if ended_at is not None and _after((sequence + len(payload)) & _SEQ_MASK, ended_at) <= 0:
                self._ended[key] = ended_at
                self._stats.count("tcp_retransmissions")
                return records
            self._stats.count("tcp_midstream")
            direction = _Direction(sequence)
        if len(directions) >= self._max_streams:
            oldest = next(iter(directions))
            self._end(oldest, directions.pop(oldest), dropped=True)
        held = direction.held
        if payload:
            self._add(key, direction, sequence, payload, (time, self._stats.frames, interface), records)
        self._bytes += direction.held - held
        if flags & _TCP_FIN:
            direction.fin_sequence = (sequence + len(payload)) & _SEQ_MASK
        if flags & _TCP_RST or direction.fin_sequence == direction.next_sequence:
            self._end(key, direction)
            return records
        directions[key] = direction
        while self._bytes > self._max_bytes and len(directions) > 1:
            oldest = next(iter(directions))
            self._end(oldest, directions.pop(oldest), dropped=True)
        return records

    def _add(self, key: tuple[bytes, int, bytes, int], direction: _Direction, sequence: int, payload: bytes,
             arrival: tuple[float, int, int], records: list[Record]) -> None:
        ahead = _after(sequence, direction.next_sequence)
        if ahead > 0:
            known = direction.early.get(sequence)
            if known is not None:
                if len(known[0]) >= len(payload):
                    self._stats.count("tcp_retransmissions")
                    return
                direction.early_bytes -= len(known[0])
            direction.early[sequence] = (payload, *arrival)
            direction.early_bytes += len(payload)
            if direction.held > self._max_stream_bytes:
                self._skip_gaps(key, direction, records, arrival)
            return
        if -ahead >= len(payload):
            self._stats.count("tcp_retransmissions")
            return
        self._append(direction, payload[-ahead:] if ahead else payload)
        self._drain(direction)
        self._cut(key, direction, arrival, records)

    def _append(self, direction: _Direction, data: bytes) -> None:
        direction.buffer += data
        direction.next_sequence = (direction.next_sequence + len(data)) & _SEQ_MASK

    def _drain(self, direction: _Direction) -> None:
        """Move the early segments the stream has now reached into the buffer."""
        early = direction.early
        moved = True
        while early and moved:
            moved = False
            for sequence in list(early):
                ahead = _after(sequence, direction.next_sequence)
                if ahead <= 0:
                    payload = early.pop(sequence)[0]
                    direction.early_bytes -= len(payload)
                    if -ahead < len(payload):
                        self._append(direction, payload[-ahead:] if ahead else payload)
                    moved = True

    def _skip_gaps(self, key: tuple[bytes, int, bytes, int], direction: _Direction, records: list[Record],
                   arrival: tuple[float, int, int] | None) -> None:
        """Give up on the bytes missing before the earliest held segment, and go on from there:
        while the direction holds too much, or, at the end (`arrival` None), until nothing is held.

        What was being gathered before a gap is lost. Messages that come out now carry `arrival`
        (they became whole with this frame), at the end the held segment's own."""
        early = direction.early
        while early and (arrival is None or direction.held > self._max_stream_bytes):
            self._stats.count("tcp_gaps")
            if direction.buffer.strip(_CRLF):
                self._stats.count("tcp_incomplete")
            direction.buffer.clear()
            # A gap lands anywhere in a message: skip to the next start line, the gap counted.
            direction.in_junk = True
            direction.skip = 0
            sequence = min(early, key=lambda held: _after(held, direction.next_sequence))
            payload, *held_arrival = early.pop(sequence)
            direction.early_bytes -= len(payload)
            direction.next_sequence = sequence
            self._append(direction, payload)
            self._drain(direction)
            self._cut(key, direction, arrival or tuple(held_arrival), records)

    def _cut(self, key: tuple[bytes, int, bytes, int], direction: _Direction, arrival: tuple[float, int, int],
             records: list[Record]) -> None:
        """Cut the buffer's complete messages off into records; keep what is still coming."""
        buffer = direction.buffer
        size = len(buffer)
        position = 0
        stats = self._stats
        if direction.skip:
            position = min(direction.skip, size)
            direction.skip -= position
        while True:
            while position < size and buffer[position] in _CRLF:
                position += 1  # keep-alives between messages
            if position >= size:
                break
            start_line = _START_LINE.match(buffer, position)
            if start_line is None:
                line_end = buffer.find(b"\n", position)
                if line_end < 0:
                    if size - position > _MAX_START_LINE:
                        self._junk(direction)
                        position = size
                    break
                self._junk(direction)
                resume = _NEXT_START_LINE.search(buffer, line_end)
                if resume is None:
                    position = buffer.rfind(b"\n") + 1  # the last line may yet become a start line
                    break
                position = resume.start() + 1
                continue
            headers_end = _HEADERS_END.search(buffer, start_line.end() - 1)
            if headers_end is None:
                break
            body_start = headers_end.end()
            length = _body_length(buffer, position, body_start) or 0
            if body_start - position + length > self._max_stream_bytes:
                stats.count("tcp_oversized")
                # Its body is skipped as it comes, and the stream goes on after it.
                direction.skip = max(body_start + length - size, 0)
                position = min(body_start + length, size)
                continue
            message_end = body_start + length
            if message_end > size:
                break
            direction.in_junk = False
            stats.sip_messages += 1
            name = self._decoder._name
            time, frame, interface = arrival
            records.append(SipPacket(time, (name(key[0]), key[1]), (name(key[2]), key[3]), "tcp",
                                     bytes(buffer[position:message_end]), interface, frame))
            position = message_end
        del buffer[:position]
        if len(buffer) > self._max_stream_bytes:  # headers that never end
            stats.count("tcp_oversized")
            buffer.clear()
            direction.in_junk = True

    def _junk(self, direction: _Direction) -> None:
        if not direction.in_junk:
            self._stats.count("tcp_junk")
            direction.in_junk = True

    def _end(self, key: tuple[bytes, int, bytes, int], direction: _Direction, dropped: bool = False) -> None:
        self._bytes -= direction.held
        if dropped:
            self._stats.count("tcp_streams_dropped")
        if direction.buffer.strip(_CRLF) or direction.early:
            self._stats.count("tcp_incomplete")
        if len(self._ended) >= self._max_streams:
            del self._ended[next(iter(self._ended))]
        self._ended[key] = direction.next_sequence

    def finish(self) -> list[Record]:
        records: list[Record] = []
        for key, direction in self._directions.items():
            self._skip_gaps(key, direction, records, None)
            self._end(key, direction)
        self._directions.clear()
        self._bytes = 0
        # Each direction gave its own in order; together they go in capture order.
        records.sort(key=lambda record: record.frame)
        return records
