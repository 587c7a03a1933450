"""Captures for replay tests, written by the tests themselves.

`write_pcap` writes records (SipPacket, MediaPacket) as Ethernet/IPv4/UDP frames with dpkt.
`capture_calls` makes real calls and records them as a capture taken on the proxy's host would:
two agents with real media sockets, rtppctl as the proxy (`engage` on the INVITE and the 200 OK,
`unforce` on the BYE, against a real relay), every SIP message as the proxy received it and as it forwarded it (the
rewritten one, with its own Via), and the RTP the agents really sent. The addresses in the frames
are 127.0.0.x: a capture is a file, nothing in it is sent anywhere.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from rtppctl.proto.capture import MediaPacket, SipPacket
from tests.cli.helpers import cli
from tests.sipmsg import Msg
from tests.ua import Agent

CALLER_IP, PROXY_IP, CALLEE_IP = "127.0.0.11", "127.0.0.12", "127.0.0.13"


def write_pcap(path: Path, records: list[SipPacket | MediaPacket]) -> Path:
    """`records` as a pcap of Ethernet frames, in order."""
    import dpkt

    with path.open("wb") as out:
        writer = dpkt.pcap.Writer(out, linktype=dpkt.pcap.DLT_EN10MB)
        for record in records:
            udp = dpkt.udp.UDP(sport=record.src[1], dport=record.dst[1], data=record.data)
            udp.ulen = len(udp)
            ip = dpkt.ip.IP(src=socket.inet_aton(record.src[0]), dst=socket.inet_aton(record.dst[0]), p=dpkt.ip.IP_PROTO_UDP,
                            data=udp, ttl=64)
            ip.len = len(ip)
            frame = dpkt.ethernet.Ethernet(src=b"\x02\x00\x00\x00\x00\x01", dst=b"\x02\x00\x00\x00\x00\x02",
                                           type=dpkt.ethernet.ETH_TYPE_IP, data=ip)
            writer.writepkt(bytes(frame), ts=record.time)
    return path


@dataclass
class CapturedCall:
    """One call made by `capture_calls`: what rtppctl did as the proxy."""

    call_id: str
    node: str
    #: The SDP bodies rtppctl sent on (offer to the callee, answer to the caller).
    forwarded_offer: str
    forwarded_answer: str
    records: list[SipPacket | MediaPacket] = field(default_factory=list)


def _sdp(agent: Agent) -> str:
    return (f"v=0\r\no=- 1 1 IN IP4 {agent.address}\r\ns=-\r\nc=IN IP4 {agent.address}\r\nt=0 0\r\n"
            f"m=audio {agent.port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n")


def _body(message: str) -> str:
    return message.split("\r\n\r\n", 1)[1]


def capture_calls(capsys, tmp_path: Path, base: list[str], count: int, *, packets: int = 5,
                  tag: str = "cap") -> list[CapturedCall]:
    """`count` calls through rtppctl (`base`: options added after each command, e.g. --config
    FILE or -t SPEC), each recorded as the proxy's host sees it."""
    calls = []
    clock = time.time()
    for number in range(count):
        call_id = f"{tag}-{number}@127.0.0.11"
        # The agents bind the addresses the frames name, so their SDP, their media and the capture agree.
        caller, callee = Agent("caller", address=CALLER_IP), Agent("callee", address=CALLEE_IP)
        records: list[SipPacket | MediaPacket] = []
        try:
            a_via = f"{CALLER_IP}:5060;branch=z9hG4bK{tag}{number}a"
            p_via = f"{PROXY_IP}:5060;branch=z9hG4bK{tag}{number}p"
            b, p, a = (CALLEE_IP, 5060), (PROXY_IP, 5060), (CALLER_IP, 5060)

            def both_legs(message: Msg, rewritten: str | None, *, request: bool) -> None:
                """The message as the proxy received it, then as it forwarded it."""
                nonlocal clock
                clock += 0.002
                text = message.text()
                if request:
                    forwarded = Msg(message.start, message.call_id, message.from_tag, message.to_tag, message.cseq,
                                    message.cseq_method, [p_via, *message.vias], message.body)
                    fwd_text = forwarded.text() if rewritten is None else _with_via(rewritten, p_via)
                    records.append(SipPacket(clock, a, p, "udp", text.encode()))
                    records.append(SipPacket(clock + 0.001, p, b, "udp", fwd_text.encode()))
                else:
                    received = Msg(message.start, message.call_id, message.from_tag, message.to_tag, message.cseq,
                                   message.cseq_method, [p_via, *message.vias], message.body)
                    records.append(SipPacket(clock, b, p, "udp", received.text().encode()))
                    records.append(SipPacket(clock + 0.001, p, a, "udp",
                                             (message.text() if rewritten is None else rewritten).encode()))

            # rtppctl as the proxy: the INVITE and the callee's 200 OK through `engage`.
            invite = Msg("INVITE", call_id, "ft", None, 1, "INVITE", [a_via], _sdp(caller))
            ok = Msg("200", call_id, "ft", "tt", 1, "INVITE", [p_via, a_via], _sdp(callee))
            invite_file, ok_file = tmp_path / f"{call_id}.invite", tmp_path / f"{call_id}.200"
            invite_file.write_text(invite.text(), newline="")
            ok_file.write_text(ok.text(), newline="")
            result = cli(capsys, "--json", "engage", "--offer", str(invite_file), "--answer", str(ok_file), *base)
            assert result.code == 0, result.stderr
            offered, answered = result.json()["offer"], result.json()["answer"]
            # The offer's port is where the callee sends; the answer's where the caller sends.
            callee.relay_port = offered["streams"][0]["port"]
            caller.relay_port = answered["streams"][0]["port"]
            both_legs(invite, offered["message"], request=True)
            both_legs(Msg("100", call_id, "ft", None, 1, "INVITE", [a_via]), None, request=False)
            # The 200 as the proxy forwards it: its own Via removed, the rewritten body.
            forwarded_ok = Msg("200", call_id, "ft", "tt", 1, "INVITE", [a_via], _body(answered["message"]))
            received_ok = Msg("200", call_id, "ft", "tt", 1, "INVITE", [a_via], ok.body)
            both_legs(received_ok, forwarded_ok.text(), request=False)
            ack = Msg("ACK", call_id, "ft", "tt", 1, "ACK", [f"{CALLER_IP}:5060;branch=z9hG4bK{tag}{number}k"])
            both_legs(ack, None, request=True)
            # Real media: each agent sends, the relay forwards; the frames name the parties' addresses.
            for _ in range(packets):
                for sender, receiver, src_ip, dst_ip in ((caller, callee, CALLER_IP, CALLEE_IP),
                                                        (callee, caller, CALLEE_IP, CALLER_IP)):
                    sender.send(1)
                    clock += 0.02
                    got = receiver.receive(0.05)
                    for data in got:
                        records.append(MediaPacket(clock, (src_ip, sender.port), (dst_ip, receiver.port), data))
            bye = Msg("BYE", call_id, "ft", "tt", 2, "BYE", [f"{CALLER_IP}:5060;branch=z9hG4bK{tag}{number}b"])
            path = tmp_path / f"{call_id}.bye"
            path.write_text(bye.text(), newline="")
            result = cli(capsys, "--json", "unforce", "--message", str(path), *base)
            assert result.code == 0, result.stderr
            both_legs(bye, None, request=True)
            both_legs(Msg("200", call_id, "ft", "tt", 2, "BYE", bye.vias), None, request=False)
            calls.append(CapturedCall(call_id, offered["node"], _body(offered["message"]), _body(answered["message"]),
                                      records))
        finally:
            caller.close()
            callee.close()
    return calls


def _with_via(message: str, via: str) -> str:
    """`message` with `via` added as the top Via (the proxy forwarding a request)."""
    first, rest = message.split("\r\n", 1)
    return f"{first}\r\nVia: SIP/2.0/UDP {via}\r\n{rest}"


class OwnCapture:
    """What `capsys` gives `tests.cli.helpers.cli`, for a fixture wider than one test: stdout and
    stderr caught while the block runs."""

    def __enter__(self) -> OwnCapture:
        import io
        import sys

        self._saved = (sys.stdout, sys.stderr)
        sys.stdout, sys.stderr = io.StringIO(), io.StringIO()
        return self

    def readouterr(self):  # noqa: ANN201 - the shape capsys returns
        import sys
        from types import SimpleNamespace

        out, err = sys.stdout.getvalue(), sys.stderr.getvalue()
        sys.stdout.seek(0), sys.stdout.truncate()
        sys.stderr.seek(0), sys.stderr.truncate()
        return SimpleNamespace(out=out, err=err)

    def __exit__(self, *exc: object) -> None:
        import sys

        sys.stdout, sys.stderr = self._saved



def write_big_capture(path: Path, *, size: int, calls: int, start: float = 1_700_000_000.0) -> int:
    """A pcap of about `size` bytes: `calls` whole calls (INVITE and 200 with SDP, ACK, BYE and
    its 200) spread through it, the rest 172-byte RTP; written frame by frame, never held.
    Returns the number of frames."""
    import struct

    from tests.proto.test_capture import ethernet, ipv4, udp
    from tests.sipmsg import sdp as sdp_body

    def frame(payload: bytes, source: tuple[str, int], destination: tuple[str, int]) -> bytes:
        return ethernet(ipv4(udp(payload, source[1], destination[1]), 17, source[0], destination[0]))

    caller, proxy = (CALLER_IP, 5060), (PROXY_IP, 5060)
    rtp = frame(struct.pack("!BBHII", 0x80, 0, 1, 160, 0x1234ABCD) + bytes(160), (CALLER_IP, 40000), (CALLEE_IP, 20000))
    frames = max(1, (size - 24) // (16 + len(rtp)))
    every = max(5, frames // (calls * 5))
    messages: list[tuple[bytes, bool]] = []
    made = 0
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for number in range(frames):
            when = start + number * 0.0001
            data = rtp
            if number % every == 0 and made < calls or messages:
                if not messages:
                    call_id, via = f"big-{made}@t", f"{CALLER_IP}:5060;branch=z9hG4bKbig{made}"
                    made += 1
                    messages = [
                        (Msg("INVITE", call_id, "ft", None, 1, "INVITE", [via], sdp_body("192.0.2.1", 4000)).text().encode(), True),
                        (Msg("200", call_id, "ft", "tt", 1, "INVITE", [via], sdp_body("192.0.2.9", 5000)).text().encode(), False),
                        (Msg("ACK", call_id, "ft", "tt", 1, "ACK", [via + "k"]).text().encode(), True),
                        (Msg("BYE", call_id, "ft", "tt", 2, "BYE", [via + "b"]).text().encode(), True),
                        (Msg("200", call_id, "ft", "tt", 2, "BYE", [via + "b"]).text().encode(), False)]
                payload, mine = messages.pop(0)
                data = frame(payload, caller if mine else proxy, proxy if mine else caller)
            seconds = int(when)
            out.write(struct.pack("<IIII", seconds, int((when - seconds) * 1e6), len(data), len(data)))
            out.write(data)
    return frames


def write_edge_pcapng(path: Path, records: list[SipPacket | MediaPacket]) -> Path:
    """The SIP `records` as a harder capture of the same traffic: a pcapng with two interfaces
    (Ethernet with a VLAN tag, and Linux cooked capture v2), every INVITE in three IPv4 fragments
    sent last piece first, every 200 OK to an INVITE over TCP in three segments (the second before
    the first, after the connection's SYN), the rest over UDP. Media records are left out."""
    from tests.proto.test_capture import ACK, PSH, SYN, ethernet, ipv4, sll2, tcp, udp
    from tests.test_captures import enhanced, interface, section

    order = "<"
    blocks = [section(order), interface(order, 1), interface(order, 276)]
    ident = 0
    for number, record in enumerate(records):
        if not isinstance(record, SipPacket):
            continue
        stamp = int(record.time * 1_000_000)
        src, dst = record.src[0], record.dst[0]
        if record.data.startswith(b"INVITE"):
            ident += 1
            datagram = udp(record.data, record.src[1], record.dst[1])
            size = -(-len(datagram) // 3 // 8) * 8
            pieces = [datagram[at:at + size] for at in range(0, len(datagram), size)]
            packets = [ipv4(piece, 17, src, dst, ident=ident, flags_offset=(0x2000 if n < len(pieces) - 1 else 0) | (n * size // 8))
                       for n, piece in enumerate(pieces)]
            blocks += [enhanced(order, 1, stamp, sll2(packet)) for packet in reversed(packets)]
        elif record.data.startswith(b"SIP/2.0 200") and b" INVITE\r\n" in record.data:
            third = len(record.data) // 3
            parts = [record.data[:third], record.data[third:2 * third], record.data[2 * third:]]
            seq, sport = 1000, 20000 + number  # a connection of its own, its SYN captured
            syn = ipv4(tcp(b"", seq - 1, SYN, sport, record.dst[1]), 6, src, dst)
            blocks.append(enhanced(order, 0, stamp, ethernet(syn, tags=(0x8100,))))
            segments = []
            for part in parts:
                segments.append(ipv4(tcp(part, seq, ACK | PSH, sport, record.dst[1]), 6, src, dst))
                seq += len(part)
            for segment in (segments[1], segments[0], segments[2]):
                blocks.append(enhanced(order, 0, stamp, ethernet(segment, tags=(0x8100,))))
        else:
            frame = ethernet(ipv4(udp(record.data, record.src[1], record.dst[1]), 17, src, dst), tags=(0x8100,))
            blocks.append(enhanced(order, 0, stamp, frame))
    path.write_bytes(b"".join(blocks))
    return path
