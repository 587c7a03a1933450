"""Capture files read into records: pcap of every magic (dpkt's writer and a byte-by-byte one for
what dpkt does not write), pcapng with several interfaces and sections, files cut short or broken,
and paths that are no capture file."""

from __future__ import annotations

import io
import os
import struct
import sys

import dpkt
import dpkt.pcapng as ng
import pytest

from rtppctl import captures
from rtppctl.captures import capture_kind, read_capture
from rtppctl.proto.capture import CaptureStats, MediaPacket, SipPacket
from rtppctl.proto.errors import InputError
from tests.proto.test_capture import (
    ALICE, ALICE6, BOB, BYE, INVITE, OK, RTP, T0, ethernet, ipv4, ipv6, sip_frame, sll, tcp, udp,
)

SECONDS = 1_700_000_000


def dpkt_pcap(path, frames, *, nano: bool = False, linktype: int = 1) -> None:
    """frames: (time, bytes) pairs, through dpkt's pcap writer."""
    with open(path, "wb") as handle:
        writer = dpkt.pcap.Writer(handle, snaplen=65535, linktype=linktype, nano=nano)
        for when, frame in frames:
            writer.writepkt(frame, when)


def own_pcap(path, records, *, order: str = "<", magic: int = 0xA1B2C3D4, linktype: int = 1,
             modified: bool = False) -> None:
    """records: (seconds, fraction, bytes[, original length]); any magic and byte order, and the
    24-byte records of the modified pcap."""
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)]
    for seconds, fraction, data, *original in records:
        out.append(struct.pack(order + "IIII", seconds, fraction, len(data), original[0] if original else len(data)))
        if modified:
            out.append(struct.pack(order + "IHBB", 2, 0x0800, 0, 0))
        out.append(data)
    path.write_bytes(b"".join(out))


def block(order: str, kind: int, body: bytes) -> bytes:
    """A pcapng block: type, length, body padded to 4 bytes, length."""
    body += b"\0" * (-len(body) % 4)
    length = 12 + len(body)
    return struct.pack(order + "II", kind, length) + body + struct.pack(order + "I", length)


def section(order: str) -> bytes:
    return block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def interface(order: str, linktype: int, options: bytes = b"") -> bytes:
    return block(order, 1, struct.pack(order + "HHI", linktype, 0, 65535) + options)


def option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def enhanced(order: str, index: int, stamp: int, data: bytes, original: int | None = None) -> bytes:
    return block(order, 6, struct.pack(order + "IIIII", index, stamp >> 32, stamp & 0xFFFFFFFF, len(data),
                                       len(data) if original is None else original) + data)


def simple(order: str, data: bytes) -> bytes:
    return block(order, 3, struct.pack(order + "I", len(data)) + data)


def read(path, **options):
    stats = CaptureStats()
    return list(read_capture(path, stats=stats, **options)), stats


# -- kinds --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("head", "kind"), [
    (b"\xd4\xc3\xb2\xa1", "pcap"), (b"\xa1\xb2\xc3\xd4", "pcap"),  # microseconds, both byte orders
    (b"\x4d\x3c\xb2\xa1", "pcap"), (b"\xa1\xb2\x3c\x4d", "pcap"),  # nanoseconds
    (b"\x34\xcd\xb2\xa1", "pcap"), (b"\xa1\xb2\xcd\x34", "pcap"),  # modified pcap
    (b"\x0a\x0d\x0d\x0a", "pcapng"),
    (b"INVITE sip:bob@example.com SIP/2.0\r\n", "text"), (b"\xd4\xc3\xb2", "text"), (b"", "text"),
])
def test_capture_kind_by_the_first_bytes(tmp_path, head, kind):
    path = tmp_path / "trace"
    path.write_bytes(head + b"\0" * 20 if len(head) >= 4 else head)
    assert capture_kind(path) == kind


# -- pcap ----------------------------------------------------------------------------------------


def test_a_pcap_written_by_dpkt(tmp_path):
    path = tmp_path / "calls.pcap"
    dpkt_pcap(path, [(T0, sip_frame(INVITE)), (T0 + 0.02, ethernet(ipv4(udp(RTP, 40000, 20000)))),
                     (T0 + 1.5, ethernet(ipv4(udp(OK), src=BOB, dst=ALICE), tags=(0x8100,))),
                     (T0 + 2, ethernet(ipv4(tcp(BYE, 1), 6)))])
    records, stats = read(path)
    assert records == [SipPacket(T0, (ALICE, 5060), (BOB, 5060), "udp", INVITE, 0, 1),
                       SipPacket(T0 + 1.5, (BOB, 5060), (ALICE, 5060), "udp", OK, 0, 3),
                       SipPacket(T0 + 2, (ALICE, 5060), (BOB, 5060), "tcp", BYE, 0, 4)]
    assert (stats.frames, stats.sip_messages, stats.truncated, stats.other) == (
        4, 3, 0, {"udp_not_sip": 1, "tcp_midstream": 1})


def test_media_from_a_file(tmp_path):
    path = tmp_path / "calls.pcap"
    dpkt_pcap(path, [(T0, sip_frame(INVITE)), (T0 + 0.02, ethernet(ipv6(udp(RTP, 40000, 20000)), 0x86DD))])
    records, stats = read(path, media=True)
    assert records[1] == MediaPacket(T0 + 0.02, (ALICE6, 40000), ("2001:db8::20", 20000), RTP, 0, 2)
    assert stats.media_packets == 1


def test_a_nanosecond_pcap_keeps_its_nanoseconds(tmp_path):
    path = tmp_path / "ns.pcap"
    own_pcap(path, [(SECONDS, 123_456_789, sip_frame(INVITE))], magic=0xA1B23C4D)
    records, _ = read(path)
    assert abs(records[0].time - (SECONDS + 0.123456789)) < 1e-6
    dpkt_pcap(path, [(SECONDS + 0.5, sip_frame(BYE))], nano=True)
    records, _ = read(path)
    assert records[0].time == SECONDS + 0.5 and type(records[0].time) is float


@pytest.mark.parametrize("order", ["<", ">"])
def test_both_byte_orders_and_the_modified_pcap(tmp_path, order):
    path = tmp_path / "trace.pcap"
    own_pcap(path, [(SECONDS, 250_000, ipv4(udp(INVITE))), (SECONDS + 1, 0, ipv6(udp(BYE)))], order=order,
             linktype=101)
    assert capture_kind(path) == "pcap"
    records, _ = read(path)
    assert [(r.time, r.src[0], r.data) for r in records] == [
        (SECONDS + 0.25, ALICE, INVITE), (SECONDS + 1, ALICE6, BYE)]
    own_pcap(path, [(SECONDS, 0, sip_frame(OK)), (SECONDS, 5, sip_frame(BYE))], order=order, magic=0xA1B2CD34,
             modified=True)
    records, _ = read(path)
    assert [(r.data, r.frame) for r in records] == [(OK, 1), (BYE, 2)]


def test_a_frame_cut_at_the_snap_length_is_counted(tmp_path):
    path = tmp_path / "snap.pcap"
    frame = sip_frame(INVITE)
    own_pcap(path, [(SECONDS, 0, frame[:96], len(frame)), (SECONDS, 1, sip_frame(BYE))])
    records, stats = read(path)
    assert [(r.data, r.frame) for r in records] == [(BYE, 2)]
    assert (stats.frames, stats.truncated) == (2, 1)


@pytest.mark.parametrize("cut", [1, 10, 15, 16, 17, 200])
def test_a_file_that_ends_in_a_record_gives_what_came_before(tmp_path, cut):
    path = tmp_path / "cut.pcap"
    dpkt_pcap(path, [(T0, sip_frame(INVITE)), (T0 + 1, sip_frame(OK)), (T0 + 2, sip_frame(BYE))])
    path.write_bytes(path.read_bytes()[:-cut])
    records, stats = read(path)
    assert [r.data for r in records] == [INVITE, OK]
    assert stats.other == {"file_truncated": 1}
    assert stats.truncated == 1


def test_a_record_length_that_cannot_be_right_ends_the_reading(tmp_path):
    path = tmp_path / "broken.pcap"
    dpkt_pcap(path, [(T0, sip_frame(INVITE))])
    path.write_bytes(path.read_bytes() + struct.pack("<IIII", SECONDS, 0, 0xFFFFFFF0, 100) + sip_frame(BYE))
    records, stats = read(path)
    assert [r.data for r in records] == [INVITE]
    assert stats.other == {"corrupt_records": 1}


def test_reading_goes_in_bounded_chunks_and_any_chunk_size_gives_the_same_records(tmp_path, monkeypatch):
    path = tmp_path / "calls.pcap"
    frames = [(T0 + n, sip_frame(message)) for n, message in enumerate([INVITE, OK, BYE] * 20)]
    frames += [(T0 + 100, ethernet(ipv4(tcp(INVITE + BYE, 1), 6)))]
    dpkt_pcap(path, frames)
    expected, _ = read(path)
    assert len(expected) == 62
    reads: list[int] = []

    class Watched(io.FileIO):
        def read(self, size=-1):
            reads.append(size)
            return super().read(size)

    real_open = captures.open_input
    monkeypatch.setattr(captures, "open_input", lambda name, **kw: (real_open(name, **kw).close(), Watched(name))[1])
    for chunk in (7, 100, 1000):
        monkeypatch.setattr(captures, "CHUNK_BYTES", chunk)
        reads.clear()
        assert read(path)[0] == expected
        # Every read names its size: never the whole file; only a record larger than a chunk reads more.
        assert 0 < max(reads) <= max(chunk, 16 + max(len(f) for _, f in frames))


def test_the_caller_s_stats_are_filled_and_the_file_closed_when_done(tmp_path, monkeypatch):
    path = tmp_path / "calls.pcap"
    dpkt_pcap(path, [(T0, sip_frame(INVITE)), (T0, sip_frame(b"\r\n\r\n"))])
    opened = []
    real_open = captures.open_input
    monkeypatch.setattr(captures, "open_input", lambda name, **kw: opened.append(real_open(name, **kw)) or opened[-1])
    stats = CaptureStats()
    records = read_capture(path, stats=stats)
    assert not opened[0].closed
    assert [r.data for r in records] == [INVITE]
    assert opened[0].closed
    assert stats.as_dict() == {"frames": 2, "sip_messages": 1, "media_packets": 0, "unknown_link_types": {},
                               "truncated": 0, "keepalives": 1}


# -- pcapng --------------------------------------------------------------------------------------


def test_pcapng_with_two_interfaces_of_different_link_types(tmp_path):
    path = tmp_path / "two.pcapng"
    order_le = sys.byteorder == "little"  # dpkt writes in the host's order, with the classes of that order
    shb, idb, epb, opt = ((ng.SectionHeaderBlockLE, ng.InterfaceDescriptionBlockLE, ng.EnhancedPacketBlockLE,
                           ng.PcapngOptionLE) if order_le else
                          (ng.SectionHeaderBlock, ng.InterfaceDescriptionBlock, ng.EnhancedPacketBlock,
                           ng.PcapngOption))
    nanoseconds = idb(linktype=113, snaplen=65535, opts=[opt(code=9, data=b"\x09"), opt(code=0)])
    with open(path, "wb") as handle:
        writer = ng.Writer(handle, shb=shb(), idb=[idb(linktype=1, snaplen=65535), nanoseconds])
        stamp = SECONDS * 10**9 + 123_456_789
        writer.writepkt(epb(iface_id=1, ts_high=stamp >> 32, ts_low=stamp & 0xFFFFFFFF, pkt_data=sll(ipv4(udp(OK)))))
        writer.writepkt(sip_frame(INVITE), ts=T0)
        writer.writepkt(epb(iface_id=0, ts_high=0, ts_low=1, pkt_data=sll(ipv4(udp(BYE)))))  # SLL read as Ethernet
    assert capture_kind(path) == "pcapng"
    records, stats = read(path)
    assert [(r.data, r.interface, r.frame) for r in records] == [(OK, 1, 1), (INVITE, 0, 2)]
    assert abs(records[0].time - (SECONDS + 0.123456789)) < 1e-6
    assert records[1].time == T0
    assert stats.frames == 3


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_sections_simple_blocks_resolutions_and_unknown_interfaces(tmp_path, order):
    other = ">" if order == "<" else "<"
    path = tmp_path / "sections.pcapng"
    path.write_bytes(b"".join([
        section(order),
        interface(order, 101, option(order, 9, b"\x83") + option(order, 14, struct.pack(order + "q", SECONDS))
                  + option(order, 0, b"")),  # 1/8 s units, offset of SECONDS
        block(order, 5, b"\0" * 8),  # an Interface Statistics Block: skipped
        enhanced(order, 0, 20, ipv4(udp(INVITE))),  # 20/8 s
        simple(order, ipv4(udp(OK))),  # no time of its own: the one before
        enhanced(order, 3, 0, ipv4(udp(BYE))),  # no such interface
        section(other),  # a new section in the other byte order: its interfaces start again
        interface(other, 1),
        enhanced(other, 0, T0_MICROSECONDS, sip_frame(BYE)),
        enhanced(other, 0, T0_MICROSECONDS, sip_frame(INVITE)[:80], len(sip_frame(INVITE))),
    ]))
    records, stats = read(path)
    assert [(r.time, r.data, r.interface, r.frame) for r in records] == [
        (SECONDS + 2.5, INVITE, 0, 1), (SECONDS + 2.5, OK, 0, 2), (T0, BYE, 0, 3)]
    assert stats.other == {"pcapng_unknown_interface": 1}
    assert (stats.frames, stats.truncated) == (4, 1)


T0_MICROSECONDS = int(T0 * 10**6)


@pytest.mark.parametrize("cut", [2, 8, 20])
def test_a_pcapng_file_cut_short_gives_what_came_before(tmp_path, cut):
    path = tmp_path / "cut.pcapng"
    data = (section("<") + interface("<", 1) + enhanced("<", 0, 1, sip_frame(INVITE))
            + enhanced("<", 0, 2, sip_frame(BYE)))
    path.write_bytes(data[:-cut])
    records, stats = read(path)
    assert [r.data for r in records] == [INVITE]
    assert stats.other == {"file_truncated": 1}


def test_a_pcapng_block_whose_lengths_disagree_ends_the_reading(tmp_path):
    path = tmp_path / "broken.pcapng"
    broken = bytearray(enhanced("<", 0, 2, sip_frame(BYE)))
    broken[-4:] = struct.pack("<I", 12)
    path.write_bytes(section("<") + interface("<", 1) + enhanced("<", 0, 1, sip_frame(INVITE)) + bytes(broken))
    records, stats = read(path)
    assert [r.data for r in records] == [INVITE]
    assert stats.other == {"corrupt_records": 1}


# -- paths that are no capture -------------------------------------------------------------------


def _error(path) -> str:
    with pytest.raises(InputError) as caught:
        read_capture(path)
    return str(caught.value)


def test_a_folder_a_fifo_and_a_missing_file_are_refused_naming_them(tmp_path):
    assert _error(tmp_path) == f"{tmp_path}: is a directory, not a capture file"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert _error(fifo).startswith(f"{fifo}: is a FIFO")  # at once: no writer is waited for
    with pytest.raises(InputError, match="is a FIFO"):
        capture_kind(fifo)
    assert _error(tmp_path / "nope.pcap").startswith(f"cannot read {tmp_path / 'nope.pcap'}")


def test_files_that_are_no_capture_are_refused_naming_them(tmp_path):
    text = tmp_path / "trace.txt"
    text.write_bytes(INVITE)
    assert _error(text).startswith(f"{text}: not a pcap or pcapng file")
    short = tmp_path / "short.pcap"
    short.write_bytes(b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00")
    assert _error(short).startswith(f"{short}: not a pcap file, or its header is cut short (8 of 24 bytes)")
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    assert _error(empty).startswith(f"{empty}: not a pcap or pcapng file")
    no_order = tmp_path / "bad.pcapng"
    no_order.write_bytes(b"\x0a\x0d\x0d\x0a" + struct.pack("<I", 28) + b"\0" * 20)
    assert "no byte-order magic" in _error(no_order)
    version_2 = tmp_path / "v2.pcapng"
    version_2.write_bytes(block("<", 0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 2, 0, -1)))
    assert _error(version_2) == f"{version_2}: pcapng version 2 is not supported, only 1"
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(section("<")[:20])
    assert _error(cut) == f"{cut}: a pcapng file cut short in its Section Header Block"
