"""Reading a pcap for `replay`: `rtppctl.captures.read_capture` against a minimal dpkt loop, same run.

Target (issue "replay from captures"): at least 0.5x the packets per second of the minimal loop
below (dpkt.pcap.Reader, dpkt.ethernet.Ethernet on every frame, the UDP payload checked against a
compiled SIP start-line regex, matches counted) over the same file.

The file is written by the benchmark to a temp folder: 1,000,000 Ethernet/IPv4/UDP frames, one in
ten a SIP message (a call's INVITE, 200 with SDP, ACK and BYE, 600-900 bytes each, a Call-ID per
call), the others 172-byte RTP packets (12-byte header, 160 bytes of G.711). What is timed on
rtppctl's side: `read_capture(path)` consumed whole (media off, as `replay` reads without
--media), SIP records counted; the file is opened inside the timing on both sides, and both
must count every SIP message. The rounds alternate between the two sides, so machine noise hits
both alike; the fastest of each counts (noise only ever slows a run down).

    .venv/bin/python bench/bench_replay_read.py [--packets 1000000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import re
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path

import dpkt

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _engine import precompile  # noqa: E402

from rtppctl.captures import read_capture  # noqa: E402
from rtppctl.proto.capture import CaptureStats, SipPacket  # noqa: E402

TARGET = 0.5
SIP_EVERY = 10  # one frame in ten is SIP

_START_LINE = re.compile(rb"(?:[A-Z]+ [^ ]+ SIP/2\.0\r\n|SIP/2\.0 [0-9]{3} )")

_SDP = (
    "v=0\r\no=- 3849265312 3849265312 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
    "m=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
)
_COMMON = (
    "From: \"Alice\" <sip:alice@example.com>;tag=a73kszlfl\r\n"
    "Call-ID: {call_id}@192.0.2.10\r\n"
    "Max-Forwards: 70\r\nUser-Agent: bench-ua/1.0\r\n"
)
_REQUEST = (
    "{method} sip:bob@192.0.2.20:5060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK{call_id}{method}\r\n"
    "Route: <sip:192.0.2.1;lr>\r\nRecord-Route: <sip:192.0.2.1;lr;ftag=a73kszlfl>\r\n"
    + _COMMON +
    "To: <sip:bob@example.com>{to_tag}\r\nCSeq: {cseq} {method}\r\n"
    "Contact: <sip:alice@192.0.2.10:5060>\r\n"
    "Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, INFO\r\n"
    "{body_headers}Content-Length: {length}\r\n\r\n{body}"
)
_REPLY = (
    "SIP/2.0 200 OK\r\n"
    "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK{call_id}INVITE;received=192.0.2.10\r\n"
    "Record-Route: <sip:192.0.2.1;lr;ftag=a73kszlfl>\r\n"
    + _COMMON +
    "To: <sip:bob@example.com>;tag=b9230xq\r\nCSeq: 1 INVITE\r\n"
    "Contact: <sip:bob@192.0.2.20:5060>\r\n"
    "Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, INFO\r\n"
    "Content-Type: application/sdp\r\nContent-Length: {length}\r\n\r\n{body}"
)


def _request(method: str, call_id: int, cseq: int, sdp: str = "") -> bytes:
    body_headers = "Content-Type: application/sdp\r\n" if sdp else "Supported: replaces, timer\r\n"
    to_tag = "" if method == "INVITE" else ";tag=b9230xq"
    return _REQUEST.format(method=method, call_id=call_id, cseq=cseq, to_tag=to_tag, body_headers=body_headers,
                           length=len(sdp), body=sdp).encode()


def _call(call_id: int) -> list[bytes]:
    """A call's four messages: INVITE and 200 with SDP, ACK, BYE."""
    offer = _SDP.format(host="192.0.2.10", port=40000 + call_id % 10000 * 2)
    answer = _SDP.format(host="192.0.2.20", port=20000 + call_id % 10000 * 2)
    return [_request("INVITE", call_id, 1, offer),
            _REPLY.format(call_id=call_id, length=len(answer), body=answer).encode(),
            _request("ACK", call_id, 1), _request("BYE", call_id, 2)]


def _frame(payload: bytes, source: bytes, destination: bytes, source_port: int, destination_port: int) -> bytes:
    """Ethernet, IPv4 (checksum left 0: no reader here checks it), UDP."""
    udp = struct.pack("!HHHH", source_port, destination_port, 8 + len(payload), 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28 + len(payload), 0, 0x4000, 64, 17, 0, source, destination)
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + udp + payload


def write_capture(path: Path, packets: int) -> int:
    """Writes the capture; returns how many SIP messages it holds."""
    caller, callee = bytes([192, 0, 2, 10]), bytes([192, 0, 2, 20])
    rtp_payload = bytes(range(160))

    def frames():
        sip, call, sequence = 0, 0, 0
        messages: list[bytes] = []
        started = 1_700_000_000.0
        for number in range(packets):
            when = started + number * 0.0001
            if number % SIP_EVERY == 0:
                if not messages:
                    messages = _call(call)
                    call += 1
                message = messages.pop(0)
                sip += 1
                yield when, _frame(message, caller, callee, 5060, 5060)
            else:
                sequence += 1
                rtp = struct.pack("!BBHII", 0x80, 0, sequence & 0xFFFF, sequence * 160 & 0xFFFFFFFF, 0x1234ABCD)
                yield when, _frame(rtp + rtp_payload, caller, callee, 40000, 20000)
        counted.append(sip)

    counted: list[int] = []
    with path.open("wb") as handle:
        dpkt.pcap.Writer(handle, snaplen=65535).writepkts(frames())
    return counted[0]


def minimal_loop(path: Path) -> tuple[float, int]:
    """(packets per second, SIP messages) of the minimal dpkt loop."""
    started = time.perf_counter()
    frames = sip = 0
    with path.open("rb") as handle:
        for _, buf in dpkt.pcap.Reader(handle):
            frames += 1
            ip = dpkt.ethernet.Ethernet(buf).data
            if _START_LINE.match(ip.data.data):
                sip += 1
    return frames / (time.perf_counter() - started), sip


def ours(path: Path) -> tuple[float, int]:
    """(packets per second, SIP messages) of read_capture."""
    stats = CaptureStats()
    started = time.perf_counter()
    sip = sum(1 for record in read_capture(path, stats=stats) if type(record) is SipPacket)
    return stats.frames / (time.perf_counter() - started), sip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    precompile()
    workdir = Path(tempfile.mkdtemp(prefix="bench-replay-read-"))
    try:
        path = workdir / "calls.pcap"
        expected = write_capture(path, args.packets)
        ours(path)  # warm the page cache
        rates_ours: list[float] = []
        rates_base: list[float] = []
        for _ in range(args.rounds):
            for rates, run in ((rates_base, minimal_loop), (rates_ours, ours)):
                rate, sip = run(path)
                if sip != expected:
                    raise SystemExit(f"{run.__name__} counted {sip} SIP messages of {expected}")
                rates.append(rate)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    best_ours, best_base = max(rates_ours), max(rates_base)
    ratio = best_ours / best_base
    verdict = "ok" if ratio >= TARGET else "UNDER TARGET"
    print(f"read pcap of {args.packets} frames ({expected} SIP)   read_capture {best_ours:9.0f} pkt/s   "
          f"minimal dpkt {best_base:9.0f} pkt/s   ratio {ratio:4.2f}x  (target >= {TARGET}x) {verdict}")
    print("  rounds, read_capture:", " ".join(f"{r:.0f}" for r in rates_ours))
    print("  rounds, minimal:", " ".join(f"{r:.0f}" for r in rates_base))
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
