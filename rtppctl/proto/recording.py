"""The files RTPProxy writes when it records a stream without -P: `<callid>=<tag>.o.rtp` / `.a.rtp`.

Each packet the relay received is stored behind a fixed 30-byte header (read off files a real
relay wrote, IPv4 calls): the sender's address block (20 bytes: a `sockaddr_in`, family 2 little
endian, port and address in network order, then padding), the arrival time as a little-endian
double (seconds since the epoch), and the packet's length as a little-endian 16-bit number; then
the RTP packet itself. Pure: bytes in, packets out. A file that does not follow this layout is an
`InputError` naming the offset where it stops making sense.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from rtppctl.proto.errors import InputError

HEADER = struct.Struct("<H2s4s12sdH")
HEADER_SIZE = HEADER.size  # 30
_AF_INET = 2


@dataclass(frozen=True)
class RecordedPacket:
    #: Arrival time at the relay, seconds since the epoch.
    time: float
    #: The sender's address and port.
    address: str
    port: int
    #: The whole RTP packet as received.
    packet: bytes


def parse_recording(data: bytes, source: str = "the recording") -> list[RecordedPacket]:
    """Every packet of a recording file, in the order the relay wrote them."""
    packets = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < HEADER_SIZE:
            raise InputError(f"{source}: {len(data) - offset} stray bytes at offset {offset}, short of a packet header",
                             "is it a file RTPProxy wrote without -P (CALLID=TAG.o.rtp or .a.rtp)?")
        family, port, address, _, arrived, length = HEADER.unpack_from(data, offset)
        if family != _AF_INET:
            raise InputError(f"{source}: offset {offset}: address family {family} is not IPv4",
                             "only recordings of IPv4 calls (the relay's adhoc format) are read")
        start = offset + HEADER_SIZE
        if length < 12 or start + length > len(data):
            raise InputError(f"{source}: offset {offset}: a packet of {length} bytes does not fit the file",
                             "the file is cut short or is not an RTPProxy recording")
        packet = data[start:start + length]
        if packet[0] >> 6 != 2:
            raise InputError(f"{source}: offset {start}: not an RTP packet (version {packet[0] >> 6})",
                             "is it an .rtp file (not .rtcp, not a pcap)?")
        packets.append(RecordedPacket(arrived, ".".join(str(b) for b in address), int.from_bytes(port, "big"), packet))
        offset = start + length
    return packets


__all__ = ["HEADER_SIZE", "RecordedPacket", "parse_recording"]
