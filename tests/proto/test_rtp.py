"""RTP packets, RFC 4733 telephone events and G.711, checked against known values, against an
independent encoder (audioop, or audioop-lts on Python 3.13+), and by round-trip properties."""

from __future__ import annotations

import struct
import warnings
from array import array

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtppctl.proto import rtp
from rtppctl.proto.errors import InputError
from rtppctl.proto.rtp import (
    MalformedPacket,
    RtpPacket,
    TelephoneEvent,
    build_rtp,
    build_telephone_event,
    digit_to_event,
    event_to_digit,
    packetize,
    parse_rtp,
    parse_telephone_event,
)


def pcm(*samples: int) -> bytes:
    return struct.pack(f"<{len(samples)}h", *samples)


def samples_of(data: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(data) // 2}h", data))


EVERY_SAMPLE = pcm(*range(-32768, 32768))
EVERY_CODE = bytes(range(256))


@pytest.fixture(scope="module")
def audioop():
    """The standard library's audioop (3.11, 3.12) or the audioop-lts package (3.13+)."""
    with warnings.catch_warnings():
        # audioop is deprecated on 3.11 and 3.12; the warning says nothing about the test.
        warnings.simplefilter("ignore", DeprecationWarning)
        return pytest.importorskip("audioop")


# -- G.711 known values ------------------------------------------------------------------------------


def test_zero_and_full_scale():
    assert rtp.ulaw_encode(pcm(0)) == b"\xff"
    assert rtp.alaw_encode(pcm(0)) == b"\xd5"
    assert rtp.ulaw_encode(pcm(32767, -32768)) == b"\x80\x00"
    assert rtp.alaw_encode(pcm(32767, -32768)) == b"\xaa\x2a"
    assert samples_of(rtp.ulaw_decode(b"\xff\x7f\x80\x00")) == [0, 0, 32124, -32124]
    assert samples_of(rtp.alaw_decode(b"\xd5\x55\xaa\x2a")) == [8, -8, 32256, -32256]


# The first 16-bit sample of each µ-law segment: in 14 bits, the magnitude plus 33 reaches a power
# of two (31 + 33 = 64, 95 + 33 = 128, ...), times 4 for the two bits µ-law drops.
ULAW_SEGMENT_STARTS = [4 * ((32 << segment) - 33) for segment in range(1, 8)]
# A-law's segments start where the 13-bit magnitude reaches 32, 64, ... 2048 (times 8).
ALAW_SEGMENT_STARTS = [8 * (16 << segment) for segment in range(1, 8)]


@pytest.mark.parametrize("segment", range(1, 8))
def test_ulaw_segment_boundaries(segment):
    start = ULAW_SEGMENT_STARTS[segment - 1]
    below, at = rtp.ulaw_encode(pcm(start - 1, start))
    # Codes are sent inverted: segment in bits 4-6, mantissa in bits 0-3, sign bit set for >= 0.
    assert below ^ 0xFF == ((segment - 1) << 4) | 0x0F
    assert at ^ 0xFF == segment << 4
    # The two dropped bits are cut by an arithmetic shift (a floor): -(start - 3) already has the
    # 14-bit magnitude of start.
    negative_below, negative_at = rtp.ulaw_encode(pcm(-(start - 4), -(start - 3)))
    assert negative_below ^ 0x7F == ((segment - 1) << 4) | 0x0F
    assert negative_at ^ 0x7F == segment << 4


@pytest.mark.parametrize("segment", range(1, 8))
def test_alaw_segment_boundaries(segment):
    start = ALAW_SEGMENT_STARTS[segment - 1]
    below, at = rtp.alaw_encode(pcm(start - 1, start))
    assert below ^ 0xD5 == ((segment - 1) << 4) | 0x0F
    assert at ^ 0xD5 == segment << 4
    # Negatives use the one's complement of their 13 bits: -start - 1 has the magnitude of start.
    negative_below, negative_at = rtp.alaw_encode(pcm(-start, -start - 1))
    assert negative_below ^ 0x55 == ((segment - 1) << 4) | 0x0F
    assert negative_at ^ 0x55 == segment << 4


def test_the_smallest_steps():
    assert rtp.ulaw_encode(pcm(1, 3, 4, 11, 12, -1, -4)) == b"\xff\xff\xfe\xfe\xfd\x7e\x7e"
    assert rtp.alaw_encode(pcm(1, 15, 16, -1, -16, -17)) == b"\xd5\xd5\xd4\x55\x55\x54"


def test_the_sample_functions_agree_with_the_tables():
    every = range(-32768, 32768)
    assert bytes(map(rtp.ulaw_encode_sample, every)) == rtp.ulaw_encode(EVERY_SAMPLE)
    assert bytes(map(rtp.alaw_encode_sample, every)) == rtp.alaw_encode(EVERY_SAMPLE)
    assert [rtp.ulaw_decode_sample(code) for code in EVERY_CODE] == samples_of(rtp.ulaw_decode(EVERY_CODE))
    assert [rtp.alaw_decode_sample(code) for code in EVERY_CODE] == samples_of(rtp.alaw_decode(EVERY_CODE))


# -- G.711 against an independent encoder --------------------------------------------------------------


def test_every_sample_encodes_as_audioop_does(audioop):
    assert rtp.ulaw_encode(EVERY_SAMPLE) == audioop.lin2ulaw(EVERY_SAMPLE, 2)
    assert rtp.alaw_encode(EVERY_SAMPLE) == audioop.lin2alaw(EVERY_SAMPLE, 2)


def test_every_code_decodes_as_audioop_does(audioop):
    assert rtp.ulaw_decode(EVERY_CODE) == audioop.ulaw2lin(EVERY_CODE, 2)
    assert rtp.alaw_decode(EVERY_CODE) == audioop.alaw2lin(EVERY_CODE, 2)


@given(st.binary(max_size=2000).map(lambda data: data[: len(data) // 2 * 2]))
def test_any_buffer_encodes_as_audioop_does(audioop, data):
    assert rtp.ulaw_encode(data) == audioop.lin2ulaw(data, 2)
    assert rtp.alaw_encode(data) == audioop.lin2alaw(data, 2)


# -- G.711 properties ---------------------------------------------------------------------------------


def test_decoding_then_encoding_gives_the_code_back():
    assert rtp.alaw_encode(rtp.alaw_decode(EVERY_CODE)) == EVERY_CODE
    # µ-law has two zeros; 0x7F (negative zero) decodes to 0, which encodes as 0xFF.
    assert rtp.ulaw_encode(rtp.ulaw_decode(EVERY_CODE)) == EVERY_CODE.replace(b"\x7f", b"\xff")


@pytest.mark.parametrize(("encode", "decode"), [(rtp.ulaw_encode, rtp.ulaw_decode), (rtp.alaw_encode, rtp.alaw_decode)])
def test_quantising_is_monotonic(encode, decode):
    values = samples_of(decode(encode(EVERY_SAMPLE)))
    assert all(a <= b for a, b in zip(values, values[1:]))


def _ulaw_step(code: int) -> int:
    return 1 << (((~code >> 4) & 0x07) + 3)


def _alaw_step(code: int) -> int:
    segment = ((code ^ 0x55) >> 4) & 0x07
    return 16 if segment < 2 else 1 << (segment + 3)


@given(st.lists(st.integers(-32768, 32767), max_size=200))
def test_a_round_trip_stays_within_one_step(values):
    data = pcm(*values)
    for encode, decode, step in ((rtp.ulaw_encode, rtp.ulaw_decode, _ulaw_step), (rtp.alaw_encode, rtp.alaw_decode, _alaw_step)):
        codes = encode(data)
        assert len(codes) == len(values)
        back = samples_of(decode(codes))
        for value, restored, code in zip(values, back, codes):
            assert abs(value - restored) <= step(code), (value, restored, hex(code))


@given(st.binary(max_size=500))
def test_decoding_doubles_the_length(codes):
    assert len(rtp.ulaw_decode(codes)) == len(rtp.alaw_decode(codes)) == 2 * len(codes)


def test_an_odd_number_of_pcm_bytes_is_refused():
    with pytest.raises(InputError, match="16-bit samples need an even number"):
        rtp.ulaw_encode(b"\x00\x00\x00")


def test_codecs_by_name_and_payload_type():
    assert rtp.codec_named("PCMU") is rtp.PCMU and rtp.codec_named("0") is rtp.PCMU
    assert rtp.codec_named(" pcma ") is rtp.PCMA and rtp.codec_named("8") is rtp.PCMA
    assert rtp.encode("pcma", pcm(0)) == b"\xd5" and rtp.decode(rtp.PCMU, b"\x80") == pcm(32124)
    with pytest.raises(InputError, match="unknown codec 'g729': use pcmu, pcma"):
        rtp.codec_named("g729")


def test_a_few_minutes_of_audio_encode_quickly():
    import time

    three_minutes = array("h", range(-32768, 32768)).tobytes() * 22  # 1.44 M samples, 3 min at 8 kHz
    started = time.perf_counter()
    codes = rtp.ulaw_encode(three_minutes)
    rtp.alaw_decode(rtp.alaw_encode(three_minutes))
    assert len(codes) == len(three_minutes) // 2
    assert time.perf_counter() - started < 10  # about half a second on a small machine


# -- RTP packets ----------------------------------------------------------------------------------------


def test_build_a_packet_byte_by_byte():
    packet = build_rtp(0, 1, 160, 0x12345678, b"\xff" * 4, marker=True)
    assert packet == bytes.fromhex("80800001000000a012345678ffffffff")
    assert build_rtp(8, 0xFFFF, 0xFFFFFFFF, 0) == bytes.fromhex("8008ffffffffffff00000000")


def test_parse_a_packet():
    packet = parse_rtp(bytes.fromhex("80800001000000a012345678ffffffff"))
    assert packet == RtpPacket(0, True, 1, 160, 0x12345678, b"\xff" * 4)
    assert packet.to_bytes() == bytes.fromhex("80800001000000a012345678ffffffff")


def test_parse_csrcs_extension_and_padding():
    data = (bytes([0x80 | 0x20 | 0x10 | 2, 101]) + struct.pack("!HII", 7, 8000, 42) + struct.pack("!II", 1, 2)
            + struct.pack("!HH", 0xBEDE, 1) + b"abcd" + b"payload" + b"\x00\x00\x03")
    packet = parse_rtp(data)
    assert (packet.payload_type, packet.marker, packet.sequence, packet.timestamp, packet.ssrc) == (101, False, 7, 8000, 42)
    assert packet.csrcs == (1, 2)
    assert packet.extension == (0xBEDE, b"abcd")
    assert (packet.payload, packet.padding) == (b"payload", 3)
    assert packet.to_bytes() == data


rtp_packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127),
    marker=st.booleans(),
    sequence=st.integers(0, 0xFFFF),
    timestamp=st.integers(0, 0xFFFFFFFF),
    ssrc=st.integers(0, 0xFFFFFFFF),
    payload=st.binary(max_size=300),
    csrcs=st.lists(st.integers(0, 0xFFFFFFFF), max_size=15).map(tuple),
    extension=st.none() | st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=40).map(lambda b: b[: len(b) // 4 * 4])),
    padding=st.integers(0, 255),
)


@given(rtp_packets)
def test_build_then_parse_gives_the_packet_back(packet):
    data = packet.to_bytes()
    assert parse_rtp(data) == packet
    assert len(data) == 12 + 4 * len(packet.csrcs) + (4 + len(packet.extension[1]) if packet.extension else 0) \
        + len(packet.payload) + packet.padding


@given(st.binary(max_size=64))
def test_any_bytes_parse_or_raise_malformed_packet(data):
    try:
        packet = parse_rtp(data)
    except MalformedPacket as exc:
        assert "\n" not in str(exc) and str(exc).startswith(("RTP packet",))
    else:
        assert parse_rtp(packet.to_bytes()) == packet


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "RTP packet of 0 bytes: shorter than the 12-byte header"),
        (bytes.fromhex("8000000100000000000000"), "RTP packet of 11 bytes: shorter than the 12-byte header"),
        (bytes.fromhex("400000010000000000000000"), "RTP packet with version 1: only version 2 exists"),
        (bytes.fromhex("000000010000000000000000"), "RTP packet with version 0"),
        (bytes.fromhex("c00000010000000000000000"), "RTP packet with version 3"),
        (bytes.fromhex("830000010000000000000000") + bytes(8), "too short for its 3 CSRCs (24 bytes)"),
        (bytes.fromhex("900000010000000000000000"), "the X bit is set but the extension header is missing"),
        (bytes.fromhex("900000010000000000000000") + struct.pack("!HH", 0, 2) + bytes(4), "its header extension claims 8 bytes"),
        (bytes.fromhex("a00000010000000000000000"), "padding count 0: the packet has 0 bytes after its header"),
        (bytes.fromhex("a00000010000000000000000") + b"ab\x00", "padding count 0"),
        (bytes.fromhex("a00000010000000000000000") + b"ab\x04", "padding count 4: the packet has 3 bytes after its header"),
    ],
)
def test_malformed_packets(data, message):
    with pytest.raises(MalformedPacket) as caught:
        parse_rtp(data)
    assert message in str(caught.value)
    assert isinstance(caught.value, InputError) and caught.value.exit_code == 6


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"payload_type": 128}, "RTP payload type 128 is out of range 0..127"),
        ({"payload_type": -1}, "RTP payload type -1 is out of range"),
        ({"sequence": 65536}, "RTP sequence number 65536 is out of range 0..65535"),
        ({"timestamp": 2**32}, "RTP timestamp 4294967296 is out of range"),
        ({"ssrc": -5}, "RTP SSRC -5 is out of range"),
        ({"marker": False, "csrcs": list(range(16))}, "16 CSRCs: at most 15"),
        ({"extension": (0, b"abc")}, "header extension of 3 bytes: it must be a multiple of 4"),
        ({"padding": 256}, "RTP padding 256 is out of range 0..255"),
        ({"sequence": True}, "RTP sequence number True is out of range"),
    ],
)
def test_building_refuses_fields_out_of_range(kwargs, message):
    fields = {"payload_type": 0, "sequence": 0, "timestamp": 0, "ssrc": 0, **kwargs}
    args = [fields.pop(name) for name in ("payload_type", "sequence", "timestamp", "ssrc")]
    with pytest.raises(InputError, match=message):
        build_rtp(*args, b"", **fields)


def test_packetize_cuts_20_ms_packets():
    packets = [parse_rtp(data) for data in packetize(bytes(400), payload_type=8, ssrc=9, sequence=65535, timestamp=2**32 - 160)]
    assert [len(p.payload) for p in packets] == [160, 160, 80]
    assert [p.sequence for p in packets] == [65535, 0, 1]
    assert [p.timestamp for p in packets] == [2**32 - 160, 0, 160]
    assert [p.marker for p in packets] == [True, False, False]
    assert {(p.payload_type, p.ssrc) for p in packets} == {(8, 9)}
    assert packetize(b"", payload_type=0, ssrc=1) == []


# -- RFC 4733 telephone events --------------------------------------------------------------------------


def test_digits_and_events():
    assert [digit_to_event(digit) for digit in "0123456789*#ABCD"] == list(range(16))
    assert digit_to_event("a") == 12 and digit_to_event("d") == 15
    assert "".join(event_to_digit(event) for event in range(16)) == "0123456789*#ABCD"


@pytest.mark.parametrize("digit", ["E", "", "12", " ", "e"])
def test_a_key_that_is_not_dtmf_is_refused(digit):
    with pytest.raises(InputError, match="is not a DTMF key: use one of 0123456789\\*#ABCD"):
        digit_to_event(digit)


@pytest.mark.parametrize("event", [16, -1, 255, True])
def test_an_event_that_is_not_a_key_has_no_digit(event):
    with pytest.raises(InputError, match="is not a DTMF key"):
        event_to_digit(event)


def test_build_and_parse_a_telephone_event():
    payload = build_telephone_event("5", end=True, volume=10, duration=800)
    assert payload == bytes([5, 0x80 | 10, 0x03, 0x20])
    assert parse_telephone_event(payload) == TelephoneEvent(5, True, 10, 800)
    assert parse_telephone_event(payload).digit == "5"
    assert build_telephone_event(11) == bytes([11, 10, 0, 0])
    # The reserved R bit is ignored; events past 15 (flash, tones) have no digit.
    assert parse_telephone_event(bytes([16, 0x40 | 63, 0xFF, 0xFF])) == TelephoneEvent(16, False, 63, 65535)
    assert parse_telephone_event(bytes([16, 0, 0, 0])).digit is None


@given(st.integers(0, 255), st.booleans(), st.integers(0, 63), st.integers(0, 65535))
def test_telephone_events_round_trip(event, end, volume, duration):
    payload = build_telephone_event(event, end=end, volume=volume, duration=duration)
    assert len(payload) == 4
    assert parse_telephone_event(payload) == TelephoneEvent(event, end, volume, duration)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"event": 256}, "telephone event 256 is out of range 0..255"),
        ({"event": "X"}, "'X' is not a DTMF key"),
        ({"event": 1, "volume": 64}, "volume 64 is out of range 0..63"),
        ({"event": 1, "duration": 65536}, "duration 65536 is out of range 0..65535"),
        ({"event": 1, "duration": -1}, "duration -1 is out of range"),
    ],
)
def test_telephone_event_fields_out_of_range(kwargs, message):
    event = kwargs.pop("event")
    with pytest.raises(InputError, match=message):
        build_telephone_event(event, **kwargs)


@pytest.mark.parametrize("size", [0, 3, 5, 8])
def test_a_telephone_event_payload_is_four_bytes(size):
    with pytest.raises(MalformedPacket, match=f"telephone-event payload of {size} bytes: it must be 4"):
        parse_telephone_event(bytes(size))


def test_a_telephone_event_inside_an_rtp_packet():
    packet = parse_rtp(build_rtp(101, 7, 8000, 1, build_telephone_event("#", end=True, duration=1280), marker=True))
    event = parse_telephone_event(packet.payload)
    assert (event.digit, event.end, event.duration) == ("#", True, 1280)
