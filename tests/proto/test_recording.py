"""The relay's recording files (adhoc format, IPv4), read packet by packet."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtppctl.proto.errors import InputError
from rtppctl.proto.recording import HEADER_SIZE, parse_recording

# The first packet of a file a real relay (rtp.io) wrote: 127.0.0.1:49413, then a PCMU packet.
REAL_HEADER = bytes.fromhex("0200c1057f000001000000000000000000000000f70124752bc3da41ac00")


def rtp(seq: int, payload: bytes) -> bytes:
    return struct.pack("!BBHII", 0x80, 0, seq, seq * 160, 0x1E035C3) + payload


def record(packet: bytes, port: int = 49413, when: float = 1_795_991_000.5) -> bytes:
    return struct.pack("<H", 2) + port.to_bytes(2, "big") + bytes([127, 0, 0, 1]) + bytes(12) + struct.pack("<dH", when, len(packet)) + packet


def test_the_header_layout_matches_a_file_the_relay_wrote():
    assert HEADER_SIZE == len(REAL_HEADER) == 30
    packet = rtp(3, b"\x11" * 160)
    [parsed] = parse_recording(REAL_HEADER + packet)
    assert (parsed.address, parsed.port, parsed.packet) == ("127.0.0.1", 49413, packet)
    assert 1.7e9 < parsed.time < 1.9e9


@given(st.lists(st.tuples(st.integers(0, 65535), st.binary(min_size=0, max_size=400)), max_size=20))
def test_packets_come_back_in_order(packets):
    data = b"".join(record(rtp(seq, payload), port=seq or 1) for seq, payload in packets)
    parsed = parse_recording(data)
    assert [p.packet for p in parsed] == [rtp(seq, payload) for seq, payload in packets]


@pytest.mark.parametrize(("data", "says"), [
    (REAL_HEADER[:20], "stray bytes at offset 0"),
    (record(rtp(1, b"x"))[:-1], "does not fit the file"),
    (b"\x0a\x00" + REAL_HEADER[2:] + rtp(1, b"x"), "address family 10 is not IPv4"),
    (record(b"\x00" * 20), "not an RTP packet"),
])
def test_a_file_that_is_not_a_recording_is_refused_with_the_offset(data, says):
    with pytest.raises(InputError, match=says):
        parse_recording(data, "x.rtp")
