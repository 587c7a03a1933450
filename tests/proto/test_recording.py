"""The relay's recording files (adhoc format, IPv4 and IPv6), read packet by packet.

The layout is `struct pkt_hdr_adhoc` of sippy/rtpproxy's src/rtpp_record_adhoc.h, filled in by
prepare_pkt_hdr_adhoc (src/rtpp_record.c); the headers below are copied from files rtp.io 1.1.1
wrote, and tests/system/test_media.py decodes fresh ones made through a real relay.
"""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtppctl.proto.errors import InputError
from rtppctl.proto.recording import HEADER_SIZE, copy_name, parse_recording, pcap_name, recording_name

# The first packet of a file a real relay (rtp.io) wrote: 127.0.0.1:49413, then a PCMU packet.
REAL_HEADER = bytes.fromhex("0200c1057f000001000000000000000000000000f70124752bc3da41ac00")
# The same over IPv6 (relay run with -6 v6@::1, a call offered with c=IN IP6 ::1): [::1]:59463,
# family 10 (Linux's AF_INET6), the 16-byte address where IPv4 has 4 and 12 zero bytes.
REAL_HEADER6 = bytes.fromhex("0a00e8470000000000000000000000000000000131097f0a28c5da41ac00")


def rtp(seq: int, payload: bytes) -> bytes:
    return struct.pack("!BBHII", 0x80, 0, seq, seq * 160, 0x1E035C3) + payload


def record(packet: bytes, port: int = 49413, when: float = 1_795_991_000.5, address: str = "127.0.0.1",
           family: int | None = None) -> bytes:
    """One packet as the relay stores it, built from the struct's definition."""
    ip = ipaddress.ip_address(address)
    if family is None:
        family = 2 if ip.version == 4 else 10
    block = ip.packed.ljust(16, b"\x00")
    return struct.pack("<H", family) + port.to_bytes(2, "big") + block + struct.pack("<dH", when, len(packet)) + packet


def test_the_header_layout_matches_a_file_the_relay_wrote():
    assert HEADER_SIZE == len(REAL_HEADER) == 30
    packet = rtp(3, b"\x11" * 160)
    [parsed] = parse_recording(REAL_HEADER + packet)
    assert (parsed.address, parsed.port, parsed.packet) == ("127.0.0.1", 49413, packet)
    assert 1.7e9 < parsed.time < 1.9e9
    assert REAL_HEADER == record(packet, when=parsed.time)[:30]


def test_an_ipv6_recording_has_the_same_header_size_with_a_16_byte_address():
    assert len(REAL_HEADER6) == HEADER_SIZE
    packet = rtp(1, b"\x11" * 160)
    [parsed] = parse_recording(REAL_HEADER6 + packet)
    assert (parsed.address, parsed.port, parsed.packet) == ("::1", 59463, packet)
    assert 1.7e9 < parsed.time < 1.9e9
    assert REAL_HEADER6 == record(packet, port=59463, when=parsed.time, address="::1")[:30]


@pytest.mark.parametrize("family", [10, 24, 28, 30])
def test_ipv6_is_read_with_the_family_number_of_each_system(family):
    # AF_INET6 is 10 on Linux, 24 on NetBSD/OpenBSD, 28 on FreeBSD, 30 on macOS.
    [parsed] = parse_recording(record(rtp(1, b"x"), address="2001:db8::5", family=family, port=4000))
    assert (parsed.address, parsed.port) == ("2001:db8::5", 4000)


addresses = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).map(str)


@given(st.lists(st.tuples(st.integers(0, 65535), st.binary(min_size=0, max_size=400), addresses), max_size=20))
def test_packets_of_both_families_come_back_in_order(packets):
    data = b"".join(record(rtp(seq, payload), port=seq, address=address) for seq, payload, address in packets)
    parsed = parse_recording(data)
    assert [p.packet for p in parsed] == [rtp(seq, payload) for seq, payload, _ in packets]
    assert [(p.address, p.port) for p in parsed] == [(str(ipaddress.ip_address(a)), seq) for seq, _, a in packets]


@pytest.mark.parametrize(("data", "says"), [
    (REAL_HEADER[:20], "stray bytes at offset 0"),
    (record(rtp(1, b"x"))[:-1], "does not fit the file"),
    (b"\x03\x00" + REAL_HEADER[2:] + rtp(1, b"x"), "offset 0: address family 3 is neither IPv4 nor IPv6"),
    (record(rtp(1, b"x")) + b"\x00\x00" + REAL_HEADER6[2:] + rtp(2, b"y"), "offset 43: address family 0"),
    (record(b"\x00" * 20), "not an RTP packet"),
    (record(b"\x80" * 20, address="::1")[:40], "does not fit the file"),
])
def test_a_file_that_is_not_a_recording_is_refused_with_the_offset(data, says):
    with pytest.raises(InputError, match=says):
        parse_recording(data, "x.rtp")


# -- names -------------------------------------------------------------------------------------------


def test_files_are_named_after_the_sessions_creator_whoever_is_recorded():
    # docs/protocol.md §7, §17: from the caller `R cid ft tt` writes cid=ft.o.rtp; from the callee
    # `R cid tt ft` writes cid=ft.a.rtp: the creator (ft) names both.
    assert recording_name("cid@h", "ft", "ft") == "cid@h=ft.o.rtp"
    assert recording_name("cid@h", "ft", "tt") == "cid@h=ft.a.rtp"
    # The relay cuts a tag at its first ';' (a stream number is no part of the name).
    assert recording_name("cid@h", "ft;1", "ft;2") == "cid@h=ft.o.rtp"
    assert pcap_name("cid@h", "ft") == "cid@h=ft.pcap"
    assert copy_name("mycopy") == "mycopy.rtp"
