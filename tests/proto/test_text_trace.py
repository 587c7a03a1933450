"""Text traces (sngrep's export, ngrep -W byline, Kamailio sipdump, OpenSIPS tracer files) read
back into the SIP messages they show, byte for byte; what cannot be read is counted, not raised.

The writers below print records as each tool's source prints them (see the module's docstring),
so the samples in tests/data/traces and the hypothesis round trips share one definition."""

from __future__ import annotations

import io
import ipaddress
import time as clock
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtppctl.proto.capture import CaptureStats, SipPacket
from rtppctl.proto.errors import InputError
from rtppctl.proto.text_trace import FORMATS, MAX_RECORD_BYTES, detect_text_format, read_text_trace

TRACES = Path(__file__).resolve().parent.parent / "data" / "traces"
UTC = timezone.utc

# -- one call, as the samples hold it ----------------------------------------------------------------


def sdp(user: str, address: str, port: int) -> str:
    family = "IP6" if ":" in address else "IP4"
    return (f"v=0\r\no={user} 2890844526 2890844526 IN {family} {address}\r\ns=-\r\n"
            f"c=IN {family} {address}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 8 101\r\n"
            "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
            "a=sendrecv\r\n")


def sip(first: str, headers: list[str], body: str = "") -> bytes:
    lines = [first, *headers]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body.encode())}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def call(alice: tuple[str, int], bob: tuple[str, int], *, via_transport: str = "UDP",
         call_id: str = "a84b4c76e66710@192.0.2.10") -> list[tuple[str, bytes]]:
    """INVITE with SDP, 100, 180, 200 with SDP, ACK, BYE (from Bob), 200: (sender, message)."""

    def host(address: tuple[str, int]) -> str:
        return f"[{address[0]}]" if ":" in address[0] else address[0]

    a, b = f"{host(alice)}:{alice[1]}", f"{host(bob)}:{bob[1]}"
    via_a = f"Via: SIP/2.0/{via_transport} {a};branch=z9hG4bK776asdhds"
    from_a = f'From: "Alice" <sip:alice@{host(alice)}>;tag=1928301774'
    to_b, to_b_tagged = f"To: <sip:bob@{host(bob)}>", f"To: <sip:bob@{host(bob)}>;tag=a6c85cf"
    common = [f"Call-ID: {call_id}"]
    invite = sip(f"INVITE sip:bob@{b} SIP/2.0",
                 [via_a, "Max-Forwards: 70", from_a, to_b, *common, "CSeq: 314159 INVITE",
                  f"Contact: <sip:alice@{a}>"], sdp("alice", alice[0], 49170))
    trying = sip("SIP/2.0 100 Trying", [via_a, from_a, to_b, *common, "CSeq: 314159 INVITE"])
    ringing = sip("SIP/2.0 180 Ringing", [via_a, from_a, to_b_tagged, *common, "CSeq: 314159 INVITE",
                                          f"Contact: <sip:bob@{b}>"])
    ok = sip("SIP/2.0 200 OK", [via_a, from_a, to_b_tagged, *common, "CSeq: 314159 INVITE",
                                f"Contact: <sip:bob@{b}>"], sdp("bob", bob[0], 3456))
    ack = sip(f"ACK sip:bob@{b} SIP/2.0",
              [f"Via: SIP/2.0/{via_transport} {a};branch=z9hG4bK776asdhdt", "Max-Forwards: 70", from_a,
               to_b_tagged, *common, "CSeq: 314159 ACK"])
    via_b = f"Via: SIP/2.0/{via_transport} {b};branch=z9hG4bKnashds10"
    from_b = f"From: <sip:bob@{host(bob)}>;tag=a6c85cf"
    to_a = f'To: "Alice" <sip:alice@{host(alice)}>;tag=1928301774'
    bye = sip(f"BYE sip:alice@{a} SIP/2.0", [via_b, "Max-Forwards: 70", from_b, to_a, *common, "CSeq: 231 BYE"])
    bye_ok = sip("SIP/2.0 200 OK", [via_b, from_b, to_a, *common, "CSeq: 231 BYE"])
    return [("alice", invite), ("bob", trying), ("bob", ringing), ("bob", ok), ("alice", ack),
            ("bob", bye), ("alice", bye_ok)]


#: When each message of the call was seen, in microseconds after the call's start.
OFFSETS = (0, 1_204, 250_881, 4_812_007, 4_890_112, 33_001_950, 33_064_499)
#: 2024-03-05 14:30:00.123456 UTC.
START_US = 1_709_649_000_123_456


def packets(alice: tuple[str, int], bob: tuple[str, int], *, transport: str = "udp",
            whole_seconds: bool = False, **call_options: str) -> list[SipPacket]:
    result = []
    for number, ((sender, data), offset) in enumerate(zip(call(alice, bob, **call_options), OFFSETS), 1):
        micros = START_US + offset
        if whole_seconds:
            micros -= micros % 1_000_000
        src, dst = (alice, bob) if sender == "alice" else (bob, alice)
        result.append(SipPacket(micros / 1_000_000, src, dst, transport, data, frame=number))
    return result


def sample_packets() -> dict[str, list[SipPacket]]:
    """What each sample of tests/data/traces holds."""
    return {
        "sngrep.txt": packets(("192.0.2.10", 5060), ("198.51.100.20", 5060)),
        "ngrep.txt": packets(("192.0.2.10", 5060), ("198.51.100.20", 5060),
                             call_id="3848276298220188511@192.0.2.10"),
        # Kamailio on 2001:db8::1 with a UA over TCP: what it received and what it sent.
        "sipdump.data": packets(("2001:db8::10", 50712), ("2001:db8::1", 5060), transport="tcp",
                                call_id="b5ef1e97-2d8c-4b0a@2001:db8::10", via_transport="TCP"),
        "siptrace.log": packets(("198.51.100.7", 5060), ("192.0.2.1", 5060), whole_seconds=True,
                                call_id="4f9c1b07d0e3a2c6@198.51.100.7"),
    }


# -- the tools' printing -------------------------------------------------------------------------------


def _micros(packet: SipPacket) -> int:
    return round(packet.time * 1_000_000)


def _local(packet: SipPacket, zone: timezone) -> tuple[datetime, int]:
    micros = _micros(packet)
    return datetime.fromtimestamp(micros // 1_000_000, zone), micros % 1_000_000


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def write_sngrep(records: list[SipPacket], zone: timezone = UTC) -> str:
    # save_msg_txt: "%s %s %s -> %s\n%s\n\n"; msg_get_attribute brackets IPv6.
    def endpoint(address: tuple[str, int]) -> str:
        return f"[{address[0]}]:{address[1]}" if ":" in address[0] else f"{address[0]}:{address[1]}"

    out = []
    for packet in records:
        when, usec = _local(packet, zone)
        out.append(f"{when:%Y/%m/%d %H:%M:%S}.{usec:06d} {endpoint(packet.src)} -> {endpoint(packet.dst)}\n"
                   f"{_text(packet.data)}\n\n")
    return "".join(out)


def byline(data: bytes) -> str:
    # dump_byline: LF as itself, printable ASCII as itself, any other byte as '.'.
    return "".join(chr(byte) if byte == 10 or 32 <= byte < 127 else "." for byte in data)


def write_ngrep(records: list[SipPacket], *, quiet: bool = False, stamps: str = "", zone: timezone = UTC,
                start_us: int = 0, frames: list[int] | None = None, received: int | None = None) -> str:
    """`ngrep [-q] [-t|-T|-TT] -W byline -d any port 5060`, stopped by Ctrl-C. For -T the first
    delta counts from `start_us` (ngrep's own start); for -TT each stamp counts from the first
    record. `frames`: the frame number of each record (frames between them were seen, not shown)."""
    out = [] if quiet else ["interface: any\n", "filter: ( port 5060 ) and (ip || ip6)\n"]
    previous, seen = start_us, 0
    for index, packet in enumerate(records):
        frame = frames[index] if frames else index + 1
        if not quiet:
            out.append("#" * (frame - seen))  # one per frame seen, matched or not
        seen = frame
        micros = _micros(packet)
        if stamps == "t":
            when, usec = _local(packet, zone)
            stamp = f"{when:%Y/%m/%d %H:%M:%S}.{usec:06d} "
        elif stamps == "T":
            delta, previous = micros - previous, micros
            stamp = f"+{delta // 1_000_000}.{delta % 1_000_000:06d} "
        elif stamps == "TT":
            offset = micros - _micros(records[0])
            stamp = f"+{offset // 1_000_000}.{offset % 1_000_000:06d} "
        else:
            stamp = ""
        ident, flags = ("U", "") if packet.transport == "udp" else ("T", " [AP]")
        out.append(f"\n{ident} {stamp}{packet.src[0]}:{packet.src[1]} -> {packet.dst[0]}:{packet.dst[1]}{flags}"
                   f" #{frame}\n{byline(packet.data)}\n")
    if not quiet:
        out.append("exit\n")
        if received is not None:
            out.append(f"{received} received, {len(records)} matched\n")
    return "".join(out)


def write_sipdump(records: list[SipPacket], tags: list[str] | None = None, zone: timezone = UTC) -> str:
    # sipdump_data_print; the address family follows the receiving or sending socket.
    out = []
    for index, packet in enumerate(records):
        micros = _micros(packet)
        when = datetime.fromtimestamp(micros // 1_000_000, zone)
        family = "ipv6" if ":" in packet.src[0] else "ipv4"
        out.append(
            "====================\n"
            f"tag: {tags[index] if tags else 'rcv'}\npid: 2947\nprocess: 9\n"
            f"time: {micros // 1_000_000}.{micros % 1_000_000:06d}\n"
            f"date: {clock.asctime(when.timetuple())}\n"
            f"proto: {packet.transport} {family}\n"
            f"srcip: {packet.src[0]}\nsrcport: {packet.src[1]}\ndstip: {packet.dst[0]}\ndstport: {packet.dst[1]}\n"
            "~~~~~~~~~~~~~~~~~~~~\n"
            f"{_text(packet.data)}||||||||||||||||||||\n"
        )
    return "".join(out)


def opensips_address(address: str) -> str:
    # OpenSIPS ip_addr2a: IPv6 as eight groups, upper-case, no leading zeros, no "::".
    parsed = ipaddress.ip_address(address)
    if parsed.version == 4:
        return address
    packed = parsed.packed
    return ":".join(f"{(packed[i] << 8) | packed[i + 1]:X}" for i in range(0, 16, 2))


def write_siptrace(records: list[SipPacket], directions: list[str] | None = None, zone: timezone = UTC) -> str:
    # trace_write_file: "<in|out> <proto> %F %T <ip>:<port> -> <ip>:<port>\n<msg>\n\n".
    out = []
    for index, packet in enumerate(records):
        when = datetime.fromtimestamp(_micros(packet) // 1_000_000, zone)
        direction = directions[index] if directions else "in"
        out.append(f"{direction} {packet.transport} {when:%Y-%m-%d %H:%M:%S} "
                   f"{opensips_address(packet.src[0])}:{packet.src[1]} -> "
                   f"{opensips_address(packet.dst[0])}:{packet.dst[1]}\n{_text(packet.data)}\n\n")
    return "".join(out)


def sample_texts() -> dict[str, str]:
    """The samples' text, as tests/data/traces holds it (the README says which command)."""
    samples = sample_packets()
    return {
        "sngrep.txt": write_sngrep(samples["sngrep.txt"]),
        "ngrep.txt": write_ngrep(samples["ngrep.txt"], stamps="t", frames=[3, 4, 5, 8, 9, 14, 15], received=17),
        "sipdump.data": write_sipdump(samples["sipdump.data"],
                                      tags=["rcv", "snd", "snd", "snd", "rcv", "snd", "rcv"]),
        "siptrace.log": write_siptrace(samples["siptrace.log"],
                                       directions=["in", "out", "out", "out", "in", "out", "in"]),
    }


def read(text: str | bytes, **options: object) -> tuple[list[SipPacket], CaptureStats]:
    stats = CaptureStats()
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    options.setdefault("local_zone", UTC)
    found = list(read_text_trace(io.BytesIO(data), stats=stats, **options))  # type: ignore[arg-type]
    return found, stats


# -- the samples ---------------------------------------------------------------------------------------

SAMPLES = ("sngrep.txt", "ngrep.txt", "sipdump.data", "siptrace.log")


def test_the_samples_are_what_the_writers_print():
    # The samples are checked in; the writers are how the tests make more of them.
    for name, text in sample_texts().items():
        assert (TRACES / name).read_bytes() == text.encode(), name


@pytest.mark.parametrize("name", SAMPLES)
def test_each_sample_reads_back_as_the_call(name):
    expected = sample_packets()[name]
    with (TRACES / name).open("rb") as trace:
        stats = CaptureStats()
        found = list(read_text_trace(trace, stats=stats, local_zone=UTC))
    assert found == expected
    assert (stats.frames, stats.sip_messages, stats.truncated, stats.other) == (7, 7, 0, {})
    invite = found[0].data
    assert invite.startswith(b"INVITE sip:bob@") and invite.endswith(b"a=sendrecv\r\n")
    assert invite.count(b"\r\n") == invite.count(b"\n")


@pytest.mark.parametrize("name", SAMPLES)
def test_a_sample_read_as_text_gets_its_crlf_back(name):
    # Text mode turns every CRLF into LF; the reader puts the CRs back.
    with (TRACES / name).open(encoding="utf-8") as trace:
        found = list(read_text_trace(trace, local_zone=UTC))
    assert found == sample_packets()[name]
    lines_without_ends = (TRACES / name).read_text(encoding="utf-8").splitlines()
    assert list(read_text_trace(lines_without_ends, local_zone=UTC)) == sample_packets()[name]


@pytest.mark.parametrize(("name", "kind"), [("sngrep.txt", "sngrep"), ("ngrep.txt", "ngrep"),
                                            ("sipdump.data", "sipdump"), ("siptrace.log", "siptrace")])
def test_each_sample_is_detected(name, kind):
    text = (TRACES / name).read_text(encoding="utf-8")
    assert detect_text_format(text[:4096]) == kind
    assert list(read_text_trace(io.StringIO(text), kind=kind, local_zone=UTC)) == sample_packets()[name]


def test_what_is_no_text_trace_is_not_detected():
    pcap = b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00" + bytes(16) + b"\xff\xff\x00\x00\x01\x00\x00\x00"
    for head in (pcap.decode("latin-1"), "\n\x0a\r\n\x00\x00\x00\x01M<+\x00\x00",
                 "Here is the trace of last night's call, as I remember it.\nIt failed -> twice.\n",
                 _text(call(("192.0.2.10", 5060), ("198.51.100.20", 5060))[0][1]),
                 "", "=" * 20 + "\nnot sipdump\n"):
        assert detect_text_format(head) is None, head


def test_input_that_is_no_text_trace_raises_with_the_formats_named():
    with pytest.raises(InputError) as error:
        list(read_text_trace(["We captured the call with a phone.\n", "It was fine.\n"], source="notes.txt"))
    assert error.value.message.startswith("notes.txt: ")
    assert all(word in error.value.hint for word in ("sngrep", "ngrep", "sipdump", "OpenSIPS"))
    with pytest.raises(InputError, match="^x.pcap: "):
        list(read_text_trace([b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00\n"], source="x.pcap"))
    with pytest.raises(InputError, match="unknown text trace format"):
        read_text_trace([], kind="wireshark")  # at once, before anything is read
    # A kind given for a file of another form: nothing of that kind in it.
    with pytest.raises(InputError, match="no sipdump record"):
        list(read_text_trace(io.StringIO(sample_texts()["sngrep.txt"]), kind="sipdump"))


def test_an_empty_trace_holds_no_messages():
    stats = CaptureStats()
    assert list(read_text_trace([], stats=stats)) == []
    assert list(read_text_trace(["\n", "   \n"], stats=stats)) == []
    assert stats.frames == 0


# -- what goes wrong -----------------------------------------------------------------------------------

ALICE, BOB = ("192.0.2.10", 5060), ("198.51.100.20", 5060)


def test_a_malformed_record_between_two_good_ones_is_counted_and_skipped():
    good = packets(ALICE, BOB)
    text = write_sngrep(good[:1])
    # Port past 65535, then a month that does not exist: both heads start records, neither reads.
    text += "2024/03/05 14:30:00.124660 198.51.100.20:75060 -> 192.0.2.10:5060\n" + _text(good[1].data) + "\n\n"
    text += "2024/13/05 14:30:00.124660 198.51.100.20:5060 -> 192.0.2.10:5060\n" + _text(good[1].data) + "\n\n"
    text += write_sngrep(good[2:3])
    found, stats = read(text)
    assert [packet.data for packet in found] == [good[0].data, good[2].data]
    assert [packet.frame for packet in found] == [1, 4]
    assert (stats.frames, stats.sip_messages, stats.truncated) == (4, 2, 2)


@pytest.mark.parametrize("writer", [write_sngrep, write_ngrep, write_sipdump, write_siptrace])
def test_a_record_whose_body_was_cut_is_counted_and_skipped(writer):
    good = packets(ALICE, BOB)
    cut = good[3].data[:-40]  # the 200's SDP, 40 bytes short of its Content-Length
    records = [good[0], SipPacket(good[3].time, BOB, ALICE, "udp", cut, frame=2), good[4]]
    found, stats = read(writer(records))
    assert [packet.data for packet in found] == [good[0].data, good[4].data]
    assert (stats.frames, stats.truncated) == (3, 1)


def test_a_body_longer_than_its_content_length_is_cut_to_it():
    invite = packets(ALICE, BOB)[0]
    padded = SipPacket(invite.time, ALICE, BOB, "udp", invite.data + b"a=garbage\r\n\r\n")
    for writer in (write_sngrep, write_ngrep, write_sipdump, write_siptrace):
        found, _ = read(writer([padded]))
        assert [packet.data for packet in found] == [invite.data], writer


def test_a_record_over_the_size_bound_is_dropped_and_the_next_one_read():
    good = packets(ALICE, BOB)
    body = "".join(f"a=x-filler:{index:08d} {'z' * 80}\r\n" for index in range(MAX_RECORD_BYTES // 90 + 10))
    huge = sip(f"INVITE sip:bob@{BOB[0]} SIP/2.0", ["Call-ID: huge@192.0.2.10", "CSeq: 1 INVITE"], body)
    assert len(huge) > MAX_RECORD_BYTES
    records = [good[0], SipPacket(good[1].time, ALICE, BOB, "udp", huge), good[2]]
    for writer in (write_sngrep, write_sipdump):
        found, stats = read(writer(records))
        assert [packet.data for packet in found] == [good[0].data, good[2].data]
        assert (stats.frames, stats.other) == (3, {"oversized_records": 1})
    # The bound is a parameter: here just under the 200 OK with its SDP.
    small = [good[1], SipPacket(good[1].time, ALICE, BOB, "udp", good[3].data), good[2]]
    found, stats = read(write_siptrace(small), max_record_bytes=len(good[3].data) - 10)
    assert [packet.data for packet in found] == [good[1].data, good[2].data]
    assert stats.other == {"oversized_records": 1}


def test_an_oversized_ngrep_record_still_counts_towards_the_deltas():
    good = packets(ALICE, BOB)
    start = START_US - 500_000
    records = [good[1], SipPacket(good[2].time, ALICE, BOB, "udp", good[0].data), good[4]]
    found, stats = read(write_ngrep(records, quiet=True, stamps="T", start_us=start),
                        max_record_bytes=len(good[0].data) - 10)
    assert [round(packet.time * 1e6) for packet in found] == [_micros(good[1]) - start, _micros(good[4]) - start]
    assert stats.other == {"oversized_records": 1}


# -- ngrep's shapes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("quiet", [True, False])
def test_ngrep_deltas_add_up_from_zero(quiet):
    good = packets(ALICE, BOB)
    start = START_US - 2_000_000  # ngrep started two seconds before the INVITE
    found, _ = read(write_ngrep(good, quiet=quiet, stamps="T", start_us=start))
    assert [round(packet.time * 1e6) for packet in found] == [START_US + offset - start for offset in OFFSETS]
    assert [packet.data for packet in found] == [packet.data for packet in good]


def test_ngrep_offsets_since_the_first_record_are_not_added_up():
    good = packets(ALICE, BOB)
    found, _ = read(write_ngrep(good, quiet=True, stamps="TT"))
    assert [round(packet.time * 1e6) for packet in found] == list(OFFSETS)


def test_ngrep_without_stamps_gives_time_zero():
    found, _ = read(write_ngrep(packets(ALICE, BOB), quiet=True))
    assert {packet.time for packet in found} == {0.0} and len(found) == 7


def test_ngrep_absolute_stamps_are_local_time():
    good = packets(ALICE, BOB)
    zone = timezone(timedelta(hours=-5))
    found, _ = read(write_ngrep(good, stamps="t", zone=zone), local_zone=zone)
    assert found == good
    shifted, _ = read(write_ngrep(good, stamps="t", zone=zone), local_zone=UTC)
    # The clock read 09:30 in New York; taken as UTC, that is five hours early.
    assert [_micros(packet) + 5 * 3600 * 10**6 for packet in shifted] == [_micros(packet) for packet in good]


def test_ngrep_ipv6_over_tcp_with_two_messages_in_one_segment():
    alice, bob = ("2001:db8::10", 50712), ("2001:db8:0:1::20", 5060)
    good = packets(alice, bob, transport="tcp", via_transport="TCP")
    segment = SipPacket(good[4].time, alice, bob, "tcp", good[4].data + good[5].data)
    text = ("interface: any\nfilter: ( port 5060 ) and (ip || ip6)\n#\n"
            "T 2024/03/05 14:30:04.923568 2001:db8::10:50712 -> 2001:db8:0:1::20:5060 [AP] #1\n"
            f"{byline(segment.data)}\n####\n"
            "T 2024/03/05 14:30:33.125406 2001:db8:0:1::20:5060 -> 2001:db8::10:50712 [AP] #6\n"
            f"{byline(good[6].data)}\n")
    found, stats = read(text)
    assert [packet.data for packet in found] == [good[4].data, good[5].data, good[6].data]
    assert [packet.frame for packet in found] == [1, 1, 2]
    assert {(packet.src, packet.dst, packet.transport) for packet in found[:2]} == {(alice, bob, "tcp")}
    assert found[2].src == bob and found[2].time == 1_709_649_033.125406
    assert (stats.frames, stats.sip_messages) == (2, 3)


def test_ngrep_records_that_hold_no_whole_message_are_counted():
    invite = packets(ALICE, BOB)[0]
    tail = invite.data[600:]
    text = (
        "\nU 192.0.2.10:5060 -> 198.51.100.20:5060 #1\n" + byline(invite.data) + "\n"
        "\nI 198.51.100.20 -> 192.0.2.10 3:3 #2\n" + byline(b"E\x00\x00\x1c" + bytes(24)) + "\n"
        "\nU 192.0.2.10:5060 -> 198.51.100.20:5060 3348@0:1480 #3\n" + byline(invite.data[:500]) + "\n"
        "\nU 192.0.2.10 -> 198.51.100.20 +3348@1480:300 #4\n" + byline(tail) + "\n"
        "\nT 192.0.2.10:5060 -> 198.51.100.20:5060 [AP] #5\n" + byline(b"\r\n\r\n") + "\n"
        "\nT 192.0.2.10:5060 -> 198.51.100.20:5060 [AP] #6\n" + byline(tail) + "\n"
        "\nU 192.0.2.10:5060 -> 198.51.100.20:5060 #7\n" + byline(b"\x80\x00\x12\x34" + bytes(30)) + "\n"
        "\nU 192.0.2.10:5060 -> 198.51.100.20:5060 #8\n  INVITE sip:bob@198.51.100.20 SIP/2.0..Via: SIP/2.0/\n"
        "  UDP 192.0.2.10:5060\n"
        "\nU 192.0.2.10:5060 -> 198.51.100.20:5060 #9\n" + byline(invite.data) + "\n"
    )
    found, stats = read(text)
    assert [packet.frame for packet in found] == [1, 9]
    assert stats.frames == 9
    assert stats.other == {"not_sip": 3, "ip_fragments": 2, "keepalives": 1, "not_byline": 1}


def test_ngrep_keeps_a_message_sent_with_bare_lf_as_it_was():
    data = b"OPTIONS sip:198.51.100.20 SIP/2.0\nCall-ID: lf-only.\nContent-Length: 0\n\n"
    found, _ = read("\nU 192.0.2.10:5060 -> 198.51.100.20:5060 #1\n" + byline(data) + "\n")
    assert [packet.data for packet in found] == [data]


def test_ngrep_shows_cr_and_other_bytes_as_dots_and_only_the_crs_come_back():
    data = sip("MESSAGE sip:bob@198.51.100.20 SIP/2.0",
               ["Call-ID: dots@192.0.2.10", "Subject: ends with a dot.", "X-Tab:\tvalue"])
    found, _ = read("\nU 192.0.2.10:5060 -> 198.51.100.20:5060 #1\n" + byline(data) + "\n")
    assert found[0].data == data.replace(b"\t", b".")


def test_bytes_that_are_not_utf8_come_back_as_they_were():
    # sngrep, sipdump and OpenSIPS write the message's bytes as they are; a lone CR is no line end.
    data = (b"MESSAGE sip:bob@198.51.100.20 SIP/2.0\r\nCall-ID: bytes@192.0.2.10\r\n"
            b"Subject: caf\xc3\xa9 \xff\xfe\rx\r\nContent-Length: 0\r\n\r\n")
    record = SipPacket(2.0, ALICE, BOB, "udp", data, frame=1)
    for writer in (write_sngrep, write_sipdump, write_siptrace):
        assert read(writer([record]))[0] == [record], writer


# -- sipdump and siptrace ------------------------------------------------------------------------------


def test_sipdump_end_mark_right_after_a_body_without_line_end():
    data = sip("MESSAGE sip:bob@198.51.100.20 SIP/2.0", ["Call-ID: glued@192.0.2.10"], "")
    data = data.replace(b"Content-Length: 0", b"Content-Length: 5") + b"hello"
    record = SipPacket(1.5, ALICE, BOB, "tcp", data, frame=1)
    text = write_sipdump([record])
    assert "hello||||||||||||||||||||\n" in text
    assert read(text)[0] == [record]
    # TLS is SIP over a stream: tcp; SCTP is not something a SipPacket carries.
    found, stats = read(text.replace("proto: tcp", "proto: tls") + text.replace("proto: tcp", "proto: sctp"))
    assert [packet.transport for packet in found] == ["tcp"]
    assert stats.other == {"unsupported_transport": 1}


def test_sipdump_record_without_its_end_mark_or_fields_is_truncated():
    good = packets(ALICE, BOB)
    text = write_sipdump(good[:3])
    first, second, third = ("====================" + part for part in text.split("====================")[1:])
    cut_mark = second.replace("||||||||||||||||||||\n", "")
    no_port = third.replace("srcport: 5060\n", "")
    found, stats = read(first + cut_mark + no_port + first)
    assert len(found) == 2 and stats.truncated == 2


def test_siptrace_ipv6_addresses_as_opensips_writes_them_are_read():
    alice, bob = ("2001:db8::a", 5060), ("2001:db8:0:77::1", 5080)
    good = packets(alice, bob, whole_seconds=True)
    text = write_siptrace(good)
    assert "2001:DB8:0:0:0:0:0:A:5060 -> 2001:DB8:0:77:0:0:0:1:5080" in text
    assert read(text)[0] == good


def test_siptrace_placeholders_for_missing_buffers_are_not_sip():
    invite = packets(ALICE, BOB, whole_seconds=True)[0]
    text = (write_siptrace([invite]) + "out udp 2024-03-05 14:30:01 192.0.2.1:5060 -> 255.255.255.255:9\n"
            "No request buffer\n\n" + write_siptrace([invite], directions=["out"]))
    found, stats = read(text)
    assert found == [invite, SipPacket(invite.time, ALICE, BOB, "udp", invite.data, frame=3)]
    assert stats.other == {"not_sip": 1}


def test_local_time_is_this_machines_unless_a_zone_is_given():
    good = packets(ALICE, BOB)[:1]
    text = write_sngrep(good)  # written in UTC
    assert read(text, local_zone=timezone(timedelta(hours=2)))[0][0].time == good[0].time - 7200
    naive = int(datetime(2024, 3, 5, 14, 30, 0).timestamp()) * 10**6 + 123_456
    assert _micros(read(text, local_zone=None)[0][0]) == naive


# -- round trips ---------------------------------------------------------------------------------------

# Printable ASCII but '|': a line ending in twenty of them would be sipdump's end mark.
_VALUE = st.text(st.characters(min_codepoint=32, max_codepoint=126, blacklist_characters="|"), max_size=30)
_TOKEN = st.text("abcdefghijklmnopqrstuvwxyz0123456789-.", min_size=1, max_size=20)
_ADDRESS = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).map(str)
_ENDPOINT = st.tuples(_ADDRESS, st.integers(0, 65535))


@st.composite
def messages(draw: st.DrawFn, *, stream: bool) -> bytes:
    if draw(st.booleans()):
        method = draw(st.sampled_from(["INVITE", "ACK", "BYE", "OPTIONS", "INFO"]))
        first = f"{method} sip:{draw(_TOKEN)}@example.net SIP/2.0"
    else:
        first = f"SIP/2.0 {draw(st.integers(100, 699))} {draw(_VALUE.map(str.strip)) or 'OK'}".rstrip()
    extra = draw(st.lists(_VALUE, max_size=4))
    headers = [f"Call-ID: {draw(_TOKEN)}", *(f"X-{draw(_TOKEN)}: {value}" for value in extra)]
    lines = [f"a={line}" for line in draw(st.lists(_VALUE, max_size=5))]
    body = "\r\n".join(lines) + ("\r\n" if lines and draw(st.booleans()) else "")
    # A datagram may leave Content-Length out; a stream may not.
    if stream or draw(st.booleans()):
        headers.append(f"{draw(st.sampled_from(['Content-Length', 'l', 'content-length']))}: {len(body)}")
    return ("\r\n".join([first, *headers]) + "\r\n\r\n" + body).encode()


@st.composite
def traces(draw: st.DrawFn, *, transports: tuple[str, ...], micros: st.SearchStrategy[int]) -> list[SipPacket]:
    records = []
    for number, when in enumerate(draw(st.lists(micros, min_size=1, max_size=6)), 1):
        transport = draw(st.sampled_from(transports))
        records.append(SipPacket(when / 1_000_000, draw(_ENDPOINT), draw(_ENDPOINT), transport,
                                 draw(messages(stream=transport == "tcp")), frame=number))
    return records


_EPOCH_MICROS = st.integers(946_684_800_000_000, 4_102_444_800_000_000)  # 2000..2100


@settings(max_examples=60, deadline=None)
@given(traces(transports=("udp",), micros=_EPOCH_MICROS))
def test_sngrep_round_trip(records):
    assert read(write_sngrep(records))[0] == records


@settings(max_examples=60, deadline=None)
@given(traces(transports=("udp", "tcp"), micros=_EPOCH_MICROS), st.booleans())
def test_ngrep_absolute_round_trip(records, quiet):
    assert read(write_ngrep(records, quiet=quiet, stamps="t"))[0] == records


@settings(max_examples=60, deadline=None)
@given(st.data(), st.booleans())
def test_ngrep_delta_round_trip(data, quiet):
    deltas = data.draw(st.lists(st.integers(0, 10**9), min_size=1, max_size=6))
    deltas[0] += 1  # a first stamp of +0.000000 is -TT's
    records = data.draw(traces(transports=("udp", "tcp"), micros=st.just(0)))[:len(deltas)]
    total, timed = 0, []
    for record, delta in zip(records, deltas):
        total += delta
        timed.append(SipPacket(total / 1_000_000, record.src, record.dst, record.transport, record.data,
                               frame=record.frame))
    assert read(write_ngrep(timed, quiet=quiet, stamps="T"))[0] == timed


@settings(max_examples=60, deadline=None)
@given(traces(transports=("udp", "tcp"), micros=_EPOCH_MICROS))
def test_sipdump_round_trip(records):
    assert read(write_sipdump(records))[0] == records


@settings(max_examples=60, deadline=None)
@given(traces(transports=("udp", "tcp"), micros=_EPOCH_MICROS.map(lambda micros: micros - micros % 1_000_000)))
def test_siptrace_round_trip(records):
    assert read(write_siptrace(records))[0] == records


def test_every_format_has_a_sample_and_a_writer():
    assert set(FORMATS) == {"sngrep", "ngrep", "sipdump", "siptrace"}
    assert {detect_text_format(text[:4096]) for text in sample_texts().values()} == set(FORMATS)


_PIECES = st.sampled_from([
    "2024/03/05 14:30:00.123456 192.0.2.10:5060 -> 198.51.100.20:5060", "U 192.0.2.10:5060 -> [::1]:5 #1",
    "T +1.000000 2001:db8::1:5060 -> 2001:db8::2:5060 [AP] #2", "====================", "tag: rcv",
    "time: 1.000001", "proto: udp ipv4", "srcip: 192.0.2.1", "srcport: 5060", "dstip: ::1", "dstport: 1",
    "~~~~~~~~~~~~~~~~~~~~", "||||||||||||||||||||", "in udp 2024-03-05 14:30:00 192.0.2.1:5060 -> ::1:1",
    "INVITE sip:bob@192.0.2.1 SIP/2.0", "SIP/2.0 200 OK.", "Content-Length: 3", "l: x", "", ".", "#", "exit",
    "v=0\r", "\r", "  wrapped",
])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_PIECES, st.text(max_size=40)), max_size=30), st.sampled_from(FORMATS))
def test_any_lines_are_read_or_counted_never_raised(lines, kind):
    stats = CaptureStats()
    try:
        found = list(read_text_trace([line + "\n" for line in lines], kind=kind, stats=stats, local_zone=UTC))
    except InputError as error:
        assert "record in it" in error.message  # only a trace without a single record of `kind`
        return
    assert stats.sip_messages == len(found)
    assert all(packet.data and packet.transport in ("udp", "tcp") for packet in found)
