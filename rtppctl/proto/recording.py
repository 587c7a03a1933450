"""The files RTPProxy writes when it records or copies a stream: their names, and, without -P, their
contents.

Names (docs/protocol.md §7, src/rtpp_record.c): `R` writes into the record directory (-r) files named
after the session, not after whom it records: `<callid>=<creator tag>.o.rtp` holds the media of
the party whose offer created the session, `.a.rtp` the other party's, the tag cut at its first `;`;
with -P, `Rs` writes both directions into `<callid>=<creator tag>.pcap`. A `C` to a name writes
`<name>.rtp`. Which tag is the creator's is the relay's to say (`command.creator_query`).

Contents, without -P: each packet the relay received is stored behind a fixed 30-byte header,
`struct pkt_hdr_adhoc` of the relay's src/rtpp_record_adhoc.h (packed): the sender's address as a
20-byte union of two stripped-down sockaddrs, the arrival time as a double (seconds since the
epoch), and the packet's length as a 16-bit number; then the RTP packet itself. The address block
starts with the family (16 bits in the relay's byte order; on the BSDs an 8-bit family and a zero
pad byte read the same way), then the port in network order and the address: 4 bytes and 12 zero
bytes for IPv4, 16 bytes for IPv6 (prepare_pkt_hdr_adhoc in src/rtpp_record.c zeroes the header
first). The numbers are the relay host's: little endian on every platform the relay runs on in
practice. A file that does not follow this layout is an `InputError` naming the offset where it
stops making sense. Pure: names and bytes in, names and packets out.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from rtppctl.proto.errors import InputError


def _session_name(call_id: str, creator_tag: str) -> str:
    return f"{call_id}={creator_tag.split(';', 1)[0]}"


def recording_name(call_id: str, creator_tag: str, recorded_tag: str) -> str:
    """The file an `R` that records `recorded_tag`'s media (its first tag) writes without -P:
    `.o.rtp` when that is the session creator's media, `.a.rtp` when it is the other party's."""
    side = "o" if recorded_tag.split(";", 1)[0] == creator_tag.split(";", 1)[0] else "a"
    return f"{_session_name(call_id, creator_tag)}.{side}.rtp"


def pcap_name(call_id: str, creator_tag: str) -> str:
    """The one file `Rs` writes for both directions on a relay run with -P."""
    return f"{_session_name(call_id, creator_tag)}.pcap"


def copy_name(target: str) -> str:
    """The file a `C` to the file name `target` writes in the record directory."""
    return f"{target}.rtp"


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


__all__ = ["HEADER_SIZE", "RecordedPacket", "copy_name", "parse_recording", "pcap_name", "recording_name"]
