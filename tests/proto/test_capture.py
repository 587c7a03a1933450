"""The capture decoder: frames as a capture holds them (built here byte by byte, documentation
addresses only) in, SIP messages and media datagrams out, and the counters of everything else.

The frame builders below are shared with tests/test_captures.py, which writes them into files."""

from __future__ import annotations

import random
import re
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtppctl.proto.capture import Decoder, MediaPacket, SipPacket

# -- frames, byte by byte -----------------------------------------------------------------------

ALICE, BOB = "192.0.2.10", "192.0.2.20"  # RFC 5737 documentation addresses
ALICE6, BOB6 = "2001:db8::10", "2001:db8::20"  # RFC 3849
T0 = 1_700_000_000.25
ACK, PSH, SYN, FIN, RST = 0x10, 0x08, 0x02, 0x01, 0x04


def _address(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6 if ":" in text else socket.AF_INET, text)


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(payload: bytes, protocol: int = 17, src: str = ALICE, dst: str = BOB, *, ident: int = 7,
         flags_offset: int = 0x4000) -> bytes:
    """An IPv4 packet; `flags_offset` is the 16-bit flags and fragment offset field."""
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, flags_offset, 64, protocol, 0,
                         _address(src), _address(dst))
    return header[:10] + struct.pack("!H", _checksum(header)) + header[12:] + payload


def ipv6(payload: bytes, next_header: int = 17, src: str = ALICE6, dst: str = BOB6) -> bytes:
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), next_header, 64, _address(src), _address(dst)) + payload


def udp(payload: bytes, sport: int = 5060, dport: int = 5060) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def tcp(payload: bytes, seq: int, flags: int = ACK | PSH, sport: int = 5060, dport: int = 5060) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, 1, 5 << 4, flags, 65535, 0, 0) + payload


def ethernet(payload: bytes, ethertype: int = 0x0800, tags: tuple[int, ...] = ()) -> bytes:
    tagged = b"".join(struct.pack("!HH", tag, 100 + n) for n, tag in enumerate(tags))
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01" + tagged + struct.pack("!H", ethertype) + payload


def sll(payload: bytes, ethertype: int = 0x0800) -> bytes:
    return struct.pack("!HHH8sH", 0, 1, 6, b"\x02\x00\x00\x00\x00\x01\x00\x00", ethertype) + payload


def sll2(payload: bytes, ethertype: int = 0x0800) -> bytes:
    return struct.pack("!HHIHBB8s", ethertype, 0, 2, 1, 0, 6, b"\x02\x00\x00\x00\x00\x01\x00\x00") + payload


def sip_message(start_line: str = "INVITE sip:bob@example.com SIP/2.0", body: bytes = b"", *, call_id: str = "c1",
                length_header: str = "Content-Length") -> bytes:
    headers = (f"{start_line}\r\nVia: SIP/2.0/UDP {ALICE}:5060;branch=z9hG4bK{call_id}\r\n"
               f"From: <sip:alice@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: {call_id}\r\n"
               f"CSeq: 1 INVITE\r\n{length_header}: {len(body)}\r\n\r\n")
    return headers.encode() + body


SDP = (b"v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
       b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
INVITE = sip_message(body=SDP)
OK = sip_message("SIP/2.0 200 OK", SDP)
BYE = sip_message("BYE sip:bob@example.com SIP/2.0", call_id="c1")
RTP = struct.pack("!BBHII", 0x80, 0, 1, 160, 0x1234) + bytes(160)


def sip_frame(message: bytes = INVITE) -> bytes:
    return ethernet(ipv4(udp(message)))


def decode(*frames: bytes | tuple[bytes, int], link_type: int = 1, media: bool = False,
           decoder: Decoder | None = None) -> tuple[list[SipPacket | MediaPacket], Decoder]:
    """Feeds frames (or (frame, link type)) one second apart, then finishes."""
    decoder = decoder or Decoder(media=media)
    records: list[SipPacket | MediaPacket] = []
    for number, frame in enumerate(frames):
        data, link = frame if isinstance(frame, tuple) else (frame, link_type)
        records += decoder.frame(T0 + number, link, data)
    records += decoder.finish()
    return records, decoder


# -- link and network layers -------------------------------------------------------------------


def test_a_sip_message_over_ethernet_ipv4_udp():
    decoder = Decoder()
    assert decoder.frame(T0, 1, sip_frame(), interface=3) == [
        SipPacket(T0, (ALICE, 5060), (BOB, 5060), "udp", INVITE, 3, 1)]
    assert decoder.frame(T0 + 1, 1, ethernet(ipv4(udp(OK, 5080, 5070), src=BOB, dst=ALICE))) == [
        SipPacket(T0 + 1, (BOB, 5080), (ALICE, 5070), "udp", OK, 0, 2)]
    assert (decoder.stats.frames, decoder.stats.sip_messages, decoder.stats.truncated) == (2, 2, 0)


def test_a_sip_message_is_sip_on_any_port_and_ethernet_padding_is_not_part_of_it():
    records, _ = decode(ethernet(ipv4(udp(BYE, 40000, 33333))) + b"\0" * 6)
    assert records[0].data == BYE
    assert (records[0].src, records[0].dst) == ((ALICE, 40000), (BOB, 33333))


def test_ipv6():
    records, _ = decode(ethernet(ipv6(udp(INVITE, 5062, 5064)), 0x86DD))
    assert [(r.src, r.dst, r.data) for r in records] == [((ALICE6, 5062), (BOB6, 5064), INVITE)]


def test_ipv6_extension_headers_are_skipped():
    # Hop-by-hop (8 bytes, padding), then destination options of 16 bytes, then UDP.
    hop_by_hop = bytes([60, 0, 1, 4, 0, 0, 0, 0])
    options = bytes([17, 1]) + bytes([1, 12]) + bytes(12)
    records, _ = decode(ethernet(ipv6(hop_by_hop + options + udp(BYE), 0), 0x86DD))
    assert [r.data for r in records] == [BYE]


@pytest.mark.parametrize("tags", [(0x8100,), (0x88A8, 0x8100), (0x8100, 0x8100), (0x9100, 0x8100)])
def test_vlan_tags_and_qinq(tags):
    records, decoder = decode(ethernet(ipv4(udp(INVITE)), tags=tags),
                              ethernet(ipv6(udp(BYE)), 0x86DD, tags=tags))
    assert [r.data for r in records] == [INVITE, BYE]
    assert decoder.stats.truncated == 0


@pytest.mark.parametrize(("link_type", "wrap"), [(113, sll), (276, sll2)])
def test_linux_cooked_captures(link_type, wrap):
    records, _ = decode(wrap(ipv4(udp(INVITE))), wrap(ipv6(udp(BYE)), 0x86DD), link_type=link_type)
    assert [(r.src[0], r.data) for r in records] == [(ALICE, INVITE), (ALICE6, BYE)]


@pytest.mark.parametrize("link_type", [101, 12, 14])
def test_raw_ip_tells_the_version_by_its_first_nibble(link_type):
    records, _ = decode(ipv4(udp(INVITE)), ipv6(udp(BYE)), link_type=link_type)
    assert [(r.dst[0], r.data) for r in records] == [(BOB, INVITE), (BOB6, BYE)]


def test_raw_ipv4_and_ipv6_link_types():
    records, _ = decode((ipv4(udp(INVITE)), 228), (ipv6(udp(BYE)), 229))
    assert [r.data for r in records] == [INVITE, BYE]


@pytest.mark.parametrize(("link_type", "family_bytes", "ip"), [
    (0, struct.pack("<I", 2), ipv4),  # NULL, little-endian host
    (0, struct.pack(">I", 2), ipv4),  # NULL, big-endian host
    (0, struct.pack("<I", 30), ipv6),  # macOS AF_INET6
    (0, struct.pack("<I", 24), ipv6),  # NetBSD, OpenBSD
    (108, struct.pack(">I", 28), ipv6),  # LOOP: network order (FreeBSD AF_INET6)
    (108, struct.pack(">I", 2), ipv4),
])
def test_bsd_loopback(link_type, family_bytes, ip):
    records, _ = decode(family_bytes + ip(udp(BYE)), link_type=link_type)
    assert [r.data for r in records] == [BYE]


def test_an_unknown_link_type_is_counted_by_number_and_skipped():
    records, decoder = decode((sip_frame(), 147), (sip_frame(), 147), (sip_frame(), 105), sip_frame())
    assert [r.frame for r in records] == [4]
    assert decoder.stats.unknown_link_types == {147: 2, 105: 1}
    assert decoder.stats.as_dict()["unknown_link_types"] == {"105": 1, "147": 2}


def test_frames_that_carry_no_ip_or_no_udp_and_tcp_are_counted():
    arp = ethernet(bytes(28), 0x0806)
    icmp = ethernet(ipv4(b"\x08\x00" + bytes(30), protocol=1))
    records, decoder = decode(arp, icmp, sip_frame())
    assert len(records) == 1
    assert decoder.stats.other == {"not_ip": 1, "other_ip_protocols": 1}


def test_a_frame_captured_short_is_counted_and_skipped():
    decoder = Decoder()
    frame = sip_frame()
    assert decoder.frame(T0, 1, frame[:100], original_length=len(frame)) == []
    assert decoder.frame(T0, 1, frame, original_length=len(frame)) != []
    assert (decoder.stats.truncated, decoder.stats.frames, decoder.stats.sip_messages) == (1, 2, 1)


@pytest.mark.parametrize("cut", [5, 13, 20, 33, 40, 60])
def test_headers_that_do_not_parse_are_counted_as_truncated(cut):
    # Cut inside Ethernet, inside IPv4, inside UDP, and inside the UDP payload (the IP and UDP
    # lengths promise more than there is).
    records, decoder = decode(sip_frame()[:cut])
    assert records == []
    assert decoder.stats.truncated == 1


def test_bad_ip_headers_are_counted():
    bad_version = bytearray(ipv4(udp(BYE)))
    bad_version[0] = 0x55
    short_ihl = bytearray(ipv4(udp(BYE)))
    short_ihl[0] = 0x44
    udp_too_long = ipv4(struct.pack("!HHHH", 5060, 5060, 2000, 0) + BYE)
    records, decoder = decode(ethernet(bytes(bad_version)), ethernet(bytes(short_ihl)), ethernet(udp_too_long),
                              ethernet(ipv6(udp(BYE))[:30], 0x86DD))
    assert records == []
    assert decoder.stats.truncated == 4


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([0, 1, 12, 101, 108, 113, 228, 229, 276]), st.binary(max_size=200),
       st.integers(0, 120))
def test_no_frame_makes_the_decoder_raise(link_type, tail, cut):
    # Random bytes, and real frames cut anywhere with random bytes after them.
    decoder = Decoder(media=True)
    decoder.frame(T0, link_type, tail)
    decoder.frame(T0, link_type, sip_frame()[:cut] + tail)
    decoder.frame(T0, link_type, ethernet(ipv4(tcp(INVITE, 1)))[:cut] + tail)
    decoder.frame(T0, link_type, ethernet(ipv6(udp(INVITE)), 0x86DD)[:cut] + tail)
    decoder.finish()
    assert decoder.stats.frames == 4


# -- UDP -----------------------------------------------------------------------------------------


def test_only_a_sip_start_line_makes_a_datagram_sip():
    not_sip = [b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", b"SIP/2.0 OK\r\n\r\n", b"INVITE SIP/2.0\r\n\r\n",
               b"INVITE sip:bob@example.com HTTP/1.1\r\n\r\n", b"SIP/2.0 200 OK"]
    records, decoder = decode(*(ethernet(ipv4(udp(payload))) for payload in not_sip),
                              sip_frame(b"sip/2.0 180 Ringing\r\n\r\n"),
                              sip_frame(b"OPTIONS sip:192.0.2.20 SIP/2.0\n\n"))
    assert [r.data for r in records] == [b"sip/2.0 180 Ringing\r\n\r\n", b"OPTIONS sip:192.0.2.20 SIP/2.0\n\n"]
    assert decoder.stats.other == {"udp_not_sip": 5}


def test_keepalives_are_neither_sip_nor_media_nor_errors():
    records, decoder = decode(sip_frame(b"\r\n\r\n"), sip_frame(b"\r\n"), sip_frame(b""), media=True)
    assert records == []
    assert decoder.stats.other == {"keepalives": 3}
    assert (decoder.stats.sip_messages, decoder.stats.media_packets, decoder.stats.truncated) == (0, 0, 0)


def test_a_datagram_is_one_message_cut_at_its_content_length():
    records, decoder = decode(sip_frame(INVITE + b"\r\n\r\ngarbage after the body"),
                              sip_frame(sip_message("SIP/2.0 200 OK", SDP, length_header="l") + b"xx"))
    assert [r.data for r in records] == [INVITE, sip_message("SIP/2.0 200 OK", SDP, length_header="l")]
    assert decoder.stats.other == {"sip_trailing_bytes": 2}


def test_a_datagram_with_less_body_than_its_content_length_is_kept_as_it_is_and_counted():
    short = INVITE[:-10]
    records, decoder = decode(sip_frame(short))
    assert [r.data for r in records] == [short]
    assert decoder.stats.other == {"sip_short_body": 1}


def test_media_comes_out_only_when_asked_for():
    frames = [sip_frame(), ethernet(ipv4(udp(RTP, 40000, 20000))), ethernet(ipv6(udp(RTP, 40002, 20002)), 0x86DD)]
    records, decoder = decode(*frames)
    assert [type(r) for r in records] == [SipPacket]
    assert decoder.stats.other == {"udp_not_sip": 2}
    records, decoder = decode(*frames, media=True)
    assert records[1:] == [MediaPacket(T0 + 1, (ALICE, 40000), (BOB, 20000), RTP, 0, 2),
                           MediaPacket(T0 + 2, (ALICE6, 40002), (BOB6, 20002), RTP, 0, 3)]
    assert (decoder.stats.media_packets, decoder.stats.sip_messages, decoder.stats.other) == (2, 1, {})


# -- IP fragments --------------------------------------------------------------------------------


def _ipv4_fragments(payload: bytes, size: int, ident: int = 99, protocol: int = 17) -> list[bytes]:
    """The IPv4 packets of one datagram cut in pieces of `size` bytes (a multiple of 8)."""
    pieces = [payload[at:at + size] for at in range(0, len(payload), size)]
    return [ipv4(piece, protocol, ident=ident, flags_offset=(0x2000 if n < len(pieces) - 1 else 0) | (n * size // 8))
            for n, piece in enumerate(pieces)]


def test_ipv4_fragments_out_of_order_are_put_back_together():
    pieces = [ethernet(p) for p in _ipv4_fragments(udp(INVITE), 96)]
    assert len(pieces) == 4
    records, decoder = decode(pieces[2], pieces[0], pieces[3], pieces[1])
    assert [(r.data, r.frame, r.time) for r in records] == [(INVITE, 4, T0 + 3)]
    assert decoder.stats.other == {"fragments_reassembled": 1}


def test_ipv4_fragments_of_two_datagrams_interleaved_and_one_piece_twice():
    first = [ethernet(p) for p in _ipv4_fragments(udp(INVITE), 128, ident=1)]
    second = [ethernet(p) for p in _ipv4_fragments(udp(OK), 128, ident=2)]
    records, decoder = decode(first[0], second[1], first[0], second[0], first[1], second[2], first[2])
    assert [r.data for r in records] == [OK, INVITE]
    assert decoder.stats.other == {"fragments_reassembled": 2}


def _ipv6_fragments(payload: bytes, size: int, ident: int = 0x1234, next_header: int = 17) -> list[bytes]:
    pieces = [payload[at:at + size] for at in range(0, len(payload), size)]
    return [ipv6(struct.pack("!BBHI", next_header, 0, (n * size) | (n < len(pieces) - 1), ident) + piece, 44)
            for n, piece in enumerate(pieces)]


def test_ipv6_fragments_are_put_back_together():
    pieces = [ethernet(p, 0x86DD) for p in _ipv6_fragments(udp(INVITE), 128)]
    records, decoder = decode(pieces[1], *pieces[2:], pieces[0])
    assert [(r.src, r.data, r.frame) for r in records] == [((ALICE6, 5060), INVITE, len(pieces))]
    assert decoder.stats.other == {"fragments_reassembled": 1}


def test_an_atomic_ipv6_fragment_is_read_as_it_is():
    records, decoder = decode(ethernet(ipv6(struct.pack("!BBHI", 17, 0, 0, 5) + udp(BYE), 44), 0x86DD))
    assert [r.data for r in records] == [BYE]
    assert decoder.stats.other == {}


def test_a_datagram_that_never_completes_is_dropped_and_counted():
    pieces = [ethernet(p) for p in _ipv4_fragments(udp(INVITE), 96)]
    records, decoder = decode(*pieces[:3], sip_frame(BYE))
    assert [r.data for r in records] == [BYE]
    assert decoder.stats.other == {"fragments_dropped": 1}


def test_fragments_wait_at_most_the_window():
    pieces = [ethernet(p) for p in _ipv4_fragments(udp(INVITE), 96)]
    decoder = Decoder()
    for piece in pieces[:3]:
        decoder.frame(T0, 1, piece)
    late = decoder.frame(T0 + Decoder.fragment_window + 1, 1, pieces[3])  # the rest of it is gone by then
    assert late == [] and decoder.finish() == []
    assert decoder.stats.other == {"fragments_dropped": 2}


def test_pending_datagrams_are_bounded_oldest_dropped_first():
    class Narrow(Decoder):
        max_pending_datagrams = 2

    first, second, third = (_ipv4_fragments(udp(message), 128, ident=n) for n, message in
                            enumerate([INVITE, OK, sip_message(body=SDP, call_id="c3")]))
    records, decoder = decode(*(ethernet(p) for p in (first[0], second[0], third[0], second[1], second[2],
                                                      third[1], third[2], first[1], first[2])),
                              decoder=Narrow())
    assert [r.data for r in records] == [OK, sip_message(body=SDP, call_id="c3")]
    # The first datagram was dropped when the third came; its later pieces start a new one that
    # never completes.
    assert decoder.stats.other == {"fragments_dropped": 2, "fragments_reassembled": 2}


def test_fragment_bytes_are_bounded():
    class Narrow(Decoder):
        max_fragment_bytes = 500

    first, second = _ipv4_fragments(udp(INVITE), 128, ident=1), _ipv4_fragments(udp(OK), 128, ident=2)
    records, decoder = decode(*(ethernet(p) for p in (first[0], first[1], second[0], second[1], second[2])),
                              decoder=Narrow())
    assert [r.data for r in records] == [OK]
    assert decoder.stats.other == {"fragments_dropped": 1, "fragments_reassembled": 1}


def test_tcp_in_fragments():
    records, _ = decode(*(ethernet(p) for p in _ipv4_fragments(tcp(INVITE, 1000), 200, protocol=6)))
    assert [(r.transport, r.data) for r in records] == [("tcp", INVITE)]


# -- TCP -----------------------------------------------------------------------------------------


def _segments(stream: bytes, cuts: list[int], seq: int = 1000, **addresses) -> list[bytes]:
    """The stream cut at `cuts` into TCP segments in IPv4 over Ethernet."""
    bounds = [0, *cuts, len(stream)]
    return [ethernet(ipv4(tcp(stream[a:b], seq + a, **addresses), 6)) for a, b in zip(bounds, bounds[1:])]


def test_one_message_in_three_segments():
    records, decoder = decode(*_segments(INVITE, [50, 300]))
    assert [(r.transport, r.data, r.frame, r.src, r.dst) for r in records] == [
        ("tcp", INVITE, 3, (ALICE, 5060), (BOB, 5060))]
    assert decoder.stats.sip_messages == 1


def test_three_messages_in_one_segment_with_keepalives_between():
    stream = INVITE + b"\r\n\r\n" + BYE + b"\r\n" + OK
    records, decoder = decode(*_segments(stream, []))
    assert [(r.data, r.frame) for r in records] == [(INVITE, 1), (BYE, 1), (OK, 1)]
    assert decoder.stats.other == {"tcp_midstream": 1}


def test_a_connection_from_its_syn():
    syn = ethernet(ipv4(tcp(b"", 999, SYN), 6))
    fin = ethernet(ipv4(tcp(b"", 1000 + len(INVITE + BYE), FIN | ACK), 6))
    records, decoder = decode(syn, *_segments(INVITE + BYE, [100]), fin)
    assert [r.data for r in records] == [INVITE, BYE]
    assert decoder.stats.other == {}


def test_no_content_length_on_tcp_means_no_body_and_compact_l_is_read():
    bare = b"OPTIONS sip:192.0.2.20 SIP/2.0\r\nCall-ID: x\r\n\r\n"
    compact = sip_message("SIP/2.0 200 OK", SDP, length_header="l")
    records, _ = decode(*_segments(bare + compact, [len(bare) + 40]))
    assert [(r.data, r.frame) for r in records] == [(bare, 1), (compact, 2)]


def test_segments_out_of_order_and_retransmitted():
    one, two, three, four = _segments(INVITE + BYE, [100, 250, len(INVITE) + 20])
    records, decoder = decode(one, three, one, four, two, three, two, four)
    assert [(r.data, r.frame) for r in records] == [(INVITE, 5), (BYE, 5)]
    assert decoder.stats.other == {"tcp_midstream": 1, "tcp_retransmissions": 4}


def test_an_overlapping_retransmission_gives_its_new_bytes_only():
    stream = INVITE + BYE
    first = ethernet(ipv4(tcp(stream[:300], 1000), 6))
    overlap = ethernet(ipv4(tcp(stream[200:], 1200), 6))
    records, _ = decode(first, overlap)
    assert [r.data for r in records] == [INVITE, BYE]


def test_a_capture_that_starts_mid_stream_skips_to_the_first_start_line():
    stream = INVITE[200:] + OK + BYE
    records, decoder = decode(*_segments(stream, [50, len(INVITE) - 150]))
    assert [r.data for r in records] == [OK, BYE]
    assert decoder.stats.other == {"tcp_midstream": 1, "tcp_junk": 1}


def test_junk_between_messages_is_skipped_and_counted_once_per_run():
    stream = INVITE + b"junk line\r\nmore junk\r\n" + BYE + b"\x00\x01binary\n" + OK
    records, decoder = decode(*_segments(stream, [len(INVITE) + 5]))
    assert [r.data for r in records] == [INVITE, BYE, OK]
    assert decoder.stats.other["tcp_junk"] == 2


def test_the_two_directions_and_two_connections_are_apart():
    a = _segments(INVITE, [100], seq=10)
    b = _segments(OK, [100], seq=5000, sport=5060, dport=5070)
    back = [ethernet(ipv4(tcp(OK[:60], 77, sport=5060, dport=5060), 6, src=BOB, dst=ALICE)),
            ethernet(ipv4(tcp(OK[60:], 77 + 60, sport=5060, dport=5060), 6, src=BOB, dst=ALICE))]
    records, _ = decode(a[0], b[0], back[0], a[1], back[1], b[1])
    assert [(r.src[0], r.dst[1], r.data, r.frame) for r in records] == [
        (ALICE, 5060, INVITE, 4), (BOB, 5060, OK, 5), (ALICE, 5070, OK, 6)]


def test_a_stream_over_ipv6_with_sequence_numbers_wrapping():
    stream = INVITE + BYE
    start = 0xFFFFFFFF - 150
    frames = [ethernet(ipv6(tcp(stream[a:b], start + a), 6), 0x86DD)
              for a, b in [(0, 100), (100, 400), (400, len(stream))]]
    records, _ = decode(*frames)
    assert [(r.src[0], r.data) for r in records] == [(ALICE6, INVITE), (ALICE6, BYE)]


def test_fin_and_rst_end_a_stream_and_what_was_half_sent_is_counted():
    half = ethernet(ipv4(tcp(INVITE[:100], 1000, ACK | FIN), 6))
    reset = ethernet(ipv4(tcp(BYE[:50], 1, RST | ACK, sport=5070), 6))
    # After the FIN the rest is a new (mid-stream) direction: the bytes do not start a message.
    rest = ethernet(ipv4(tcp(INVITE[100:], 1100), 6))
    records, decoder = decode(half, reset, rest)
    assert records == []
    assert decoder.stats.other["tcp_incomplete"] == 2
    assert decoder.stats.other["tcp_junk"] == 1


def test_a_retransmission_after_the_end_opens_nothing():
    segment = _segments(BYE, [])[0]
    fin = ethernet(ipv4(tcp(b"", 1000 + len(BYE), FIN | ACK), 6))
    records, decoder = decode(segment, fin, segment)
    assert [r.data for r in records] == [BYE]
    assert decoder.stats.other == {"tcp_midstream": 1, "tcp_retransmissions": 1}


def test_a_gap_held_at_the_end_is_skipped_and_what_follows_it_read():
    one, _lost, three = _segments(INVITE + OK, [100, len(INVITE) - 5])
    records, decoder = decode(one, three)
    assert [(r.data, r.frame) for r in records] == [(OK, 2)]
    assert decoder.stats.other == {"tcp_midstream": 1, "tcp_gaps": 1, "tcp_incomplete": 1}


def test_a_gap_beyond_the_stream_bound_is_given_up_on_at_once():
    class Narrow(Decoder):
        max_stream_bytes = 800

    stream = INVITE + OK + BYE + INVITE
    cuts = [100, len(INVITE) + 10, len(INVITE + OK), len(INVITE + OK + BYE)]
    one, _lost, *later = _segments(stream, cuts)
    decoder = Narrow()
    out = [decoder.frame(T0 + n, 1, frame) for n, frame in enumerate([one, *later])]
    # The held bytes pass the bound with the fourth frame: the gap is given up on then, the
    # INVITE's start is lost, and so is the OK's (in the lost segment).
    assert [[r.data for r in records] for records in out] == [[], [], [], [BYE, INVITE]]
    assert decoder.stats.other == {"tcp_midstream": 1, "tcp_gaps": 1, "tcp_incomplete": 1}


def test_a_message_larger_than_the_bound_is_skipped():
    class Narrow(Decoder):
        max_stream_bytes = 400

    big = sip_message(body=b"x" * 1000)
    records, decoder = decode(*_segments(big + BYE, [300, 600, 900, 1200]), decoder=Narrow())
    assert [r.data for r in records] == [BYE]
    assert decoder.stats.other["tcp_oversized"] == 1


def test_the_number_of_streams_is_bounded_least_recently_active_dropped():
    class Narrow(Decoder):
        max_tcp_streams = 2

    a, b, c = (_segments(INVITE, [100], sport=port) for port in (5001, 5002, 5003))
    records, decoder = decode(a[0], b[0], a[1], c[0], c[1], b[1], decoder=Narrow())
    # b was the least recently active when c came: dropped with half a message; when its rest
    # comes, a (done, idle) goes, and that rest is junk.
    assert [r.src[1] for r in records] == [5001, 5003]
    assert decoder.stats.other == {"tcp_midstream": 4, "tcp_streams_dropped": 2, "tcp_incomplete": 1,
                                   "tcp_junk": 1}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 1500), max_size=12), st.randoms(use_true_random=False))
def test_any_cut_and_any_order_of_segments_gives_the_same_messages(cuts, shuffle):
    stream = INVITE + b"\r\n\r\n" + OK + BYE
    bounds = sorted({min(cut, len(stream) - 1) for cut in cuts})
    in_order = _segments(stream, bounds)
    records, _ = decode(*in_order)
    assert [r.data for r in records] == [INVITE, OK, BYE]
    assert records[-1].frame == len(in_order)  # the BYE's last byte is in the last segment
    # Any order, the first segment first (where a capture starts is where the stream starts).
    rest = in_order[1:]
    shuffle.shuffle(rest)
    records, decoder = decode(in_order[0], *rest)
    assert [r.data for r in records] == [INVITE, OK, BYE]
    assert "tcp_gaps" not in decoder.stats.other and "tcp_junk" not in decoder.stats.other


def test_records_of_several_streams_come_out_in_capture_order():
    rng = random.Random(5)
    streams = {port: _segments(INVITE + BYE, sorted(rng.sample(range(1, 700), 3)), sport=port)
               for port in (5001, 5002, 5003)}
    frames = [frame for group in zip(*streams.values()) for frame in group]
    records, _ = decode(*frames)
    assert [r.frame for r in records] == sorted(r.frame for r in records)
    assert sorted((r.src[1], r.data) for r in records) == sorted(
        (port, message) for port in streams for message in (INVITE, BYE))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2000), st.sampled_from([ACK, ACK | PSH, SYN, FIN, RST]),
                          st.integers(0, len(INVITE + BYE)), st.integers(0, 400)), max_size=40))
def test_any_segments_at_all_never_raise_and_stay_within_the_bounds(segments):
    class Narrow(Decoder):
        max_tcp_streams = 2
        max_stream_bytes = 600
        max_tcp_bytes = 1000

    stream = INVITE + b"junk\r\n" + BYE
    decoder = Narrow()
    for port, seq, flags, at, size in segments:
        records = decoder.frame(T0, 1, ethernet(ipv4(tcp(stream[at:at + size], seq, flags, sport=5000 + port), 6)))
        assert all(_whole(record.data) for record in records)
        streams = decoder._streams
        assert len(streams._directions) <= 2
        assert all(direction.held <= 600 for direction in streams._directions.values())
        assert streams._bytes == sum(direction.held for direction in streams._directions.values()) <= 1000
    assert all(_whole(record.data) for record in decoder.finish())


def _whole(message: bytes) -> bool:
    """A start line, headers, and exactly the body its Content-Length gives, none without one
    (any segments may make one: "NVITE sip:..." is a request line too, and a cut stream may
    resume inside a header block that has no Content-Length)."""
    headers, _, body = message.partition(b"\r\n\r\n")
    length = re.search(rb"\nContent-Length: ([0-9]+)", headers)
    return re.match(rb"[A-Za-z]+ sip:|SIP/2.0 ", message) is not None and len(body) == (int(length[1]) if length else 0)
