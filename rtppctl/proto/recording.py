"""The files RTPProxy writes when it records a stream without -P: `<callid>=<tag>.o.rtp` / `.a.rtp`.

Each packet the relay received is stored behind a fixed 30-byte header, `struct pkt_hdr_adhoc` of
the relay's src/rtpp_record_adhoc.h (packed): the sender's address as a 20-byte union of two
stripped-down sockaddrs, the arrival time as a double (seconds since the epoch), and the packet's
length as a 16-bit number; then the RTP packet itself. The address block starts with the family
(16 bits in the relay's byte order; on the BSDs an 8-bit family and a zero pad byte read the same
way), then the port in network order and the address: 4 bytes and 12 zero bytes for IPv4, 16
bytes for IPv6 (prepare_pkt_hdr_adhoc in src/rtpp_record.c zeroes the header first). The numbers
are the relay host's: little endian on every platform the relay runs on in practice. Pure: bytes
in, packets out. A file that does not follow this layout is an `InputError` naming the offset
where it stops making sense.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from rtppctl.proto.errors import InputError

HEADER = struct.Struct("<H2s16sdH")
HEADER_SIZE = HEADER.size  # 30
_AF_INET = 2
#: AF_INET6 is the one constant that differs between the systems the relay builds on.
_AF_INET6 = {10: "Linux", 24: "NetBSD/OpenBSD", 28: "FreeBSD", 30: "macOS"}


@dataclass(frozen=True)
class RecordedPacket:
    #: Arrival time at the relay, seconds since the epoch.
    time: float
    #: The sender's address (IPv4 or IPv6, as text) and port.
    address: str
    port: int
    #: The whole RTP packet as received.
    packet: bytes


def _address(family: int, raw: bytes) -> str | None:
    if family == _AF_INET:
        return str(ipaddress.IPv4Address(raw[:4]))
    if family in _AF_INET6:
        return str(ipaddress.IPv6Address(raw))
    return None


def parse_recording(data: bytes, source: str = "the recording") -> list[RecordedPacket]:
    """Every packet of a recording file, in the order the relay wrote them."""
    packets = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < HEADER_SIZE:
            raise InputError(f"{source}: {len(data) - offset} stray bytes at offset {offset}, short of a packet header",
                             "is it a file RTPProxy wrote without -P (CALLID=TAG.o.rtp or .a.rtp)?")
        family, port, raw, arrived, length = HEADER.unpack_from(data, offset)
        address = _address(family, raw)
        if address is None:
            raise InputError(f"{source}: offset {offset}: address family {family} is neither IPv4 nor IPv6",
                             "is it a file RTPProxy wrote without -P (CALLID=TAG.o.rtp or .a.rtp)?")
        start = offset + HEADER_SIZE
        if length < 12 or start + length > len(data):
            raise InputError(f"{source}: offset {offset}: a packet of {length} bytes does not fit the file",
                             "the file is cut short or is not an RTPProxy recording")
        packet = data[start:start + length]
        if packet[0] >> 6 != 2:
            raise InputError(f"{source}: offset {start}: not an RTP packet (version {packet[0] >> 6})",
                             "is it an .rtp file (not .rtcp, not a pcap)?")
        packets.append(RecordedPacket(arrived, address, int.from_bytes(port, "big"), packet))
        offset = start + length
    return packets


__all__ = ["HEADER_SIZE", "RecordedPacket", "parse_recording"]
