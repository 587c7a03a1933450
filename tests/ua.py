"""Two user agents on loopback sockets, for media tests through a real relay.

`Dialog.establish()` puts an offer and an answer through rtppctl (the caller's SDP names the
caller's socket, the callee's SDP the callee's), so the relay holds a session whose ports the two
agents then send RTP to. Each agent sends real RTP (and RFC 4733 events) and collects what the
relay forwards to it.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass, field

from tests.cli.helpers import cli


def rtp_packet(seq: int, timestamp: int, ssrc: int, payload: bytes, payload_type: int = 0, marker: bool = False) -> bytes:
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | payload_type, seq & 0xFFFF, timestamp & 0xFFFFFFFF,
                       ssrc) + payload


def parse_rtp(data: bytes) -> tuple[int, int, int, int, bytes]:
    """(payload type, sequence, timestamp, ssrc, payload) of a plain RTP packet."""
    first, second, seq, timestamp, ssrc = struct.unpack("!BBHII", data[:12])
    assert first >> 6 == 2, data[:12]
    header = 12 + 4 * (first & 0x0F)
    return second & 0x7F, seq, timestamp, ssrc, data[header:]


@dataclass
class Agent:
    """One party: a socket for its media, what it sent and received."""

    name: str
    sock: socket.socket = field(default_factory=lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    #: Where the relay expects this party's packets: set by `Dialog.establish`.
    relay_port: int = 0
    ssrc: int = 0
    seq: int = 0
    #: The loopback address it binds (any of 127.0.0.0/8 on Linux).
    address: str = "127.0.0.1"

    def __post_init__(self) -> None:
        self.sock.bind((self.address, 0))
        self.sock.settimeout(0.05)
        self.ssrc = (hash(self.name) & 0x7FFFFFFF) or 1

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def send(self, count: int, payload_type: int = 0, payload: bytes = b"\xd5" * 160, spacing: float = 0.0) -> list[int]:
        """Send `count` RTP packets to the relay; their sequence numbers."""
        sent = []
        for _ in range(count):
            self.seq += 1
            self.sock.sendto(rtp_packet(self.seq, self.seq * 160, self.ssrc, payload, payload_type), ("127.0.0.1", self.relay_port))
            sent.append(self.seq)
            if spacing:
                time.sleep(spacing)
        return sent

    def send_event(self, digit: str, *, payload_type: int = 101, volume: int = 10, duration: int = 800) -> None:
        """One RFC 4733 telephone event as a phone sends it: a start packet with the marker bit,
        one update, and three end packets (retransmitted, as RFC 4733 asks)."""
        from rtppctl.proto.rtp import build_telephone_event

        timestamp = (self.seq + 1) * 160
        steps = [(False, duration // 2, True), (False, duration, False)] + [(True, duration, False)] * 3
        for end, length, marker in steps:
            self.seq += 1
            body = build_telephone_event(digit, end=end, volume=volume, duration=length)
            self.sock.sendto(rtp_packet(self.seq, timestamp, self.ssrc, body, payload_type, marker),
                             ("127.0.0.1", self.relay_port))
            time.sleep(0.005)

    def send_sequence(self, sequence: list[int], payload: bytes = b"\xd5" * 160) -> None:
        """Packets with exactly these sequence numbers, in this order (gaps and duplicates)."""
        for seq in sequence:
            self.sock.sendto(rtp_packet(seq, seq * 160, self.ssrc, payload), ("127.0.0.1", self.relay_port))
            time.sleep(0.002)

    def receive(self, duration: float) -> list[bytes]:
        """Everything that arrives within `duration` seconds."""
        got = []
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            try:
                got.append(self.sock.recv(65535))
            except TimeoutError:
                continue
        return got

    def close(self) -> None:
        self.sock.close()


def sdp_for(agent: Agent, codecs: str = "0 8 101") -> str:
    return (f"v=0\no=- 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\n"
            f"m=audio {agent.port} RTP/AVP {codecs}\na=rtpmap:101 telephone-event/8000\n")


@dataclass
class Dialog:
    """A call between `caller` and `callee` through the relay `spec` (or the configured sets)."""

    capsys: object
    tmp_path: object
    call_id: str
    spec: str | None = None
    extra: tuple[str, ...] = ()
    caller: Agent = field(default_factory=lambda: Agent("caller"))
    callee: Agent = field(default_factory=lambda: Agent("callee"))
    from_tag: str = "caller-tag"
    to_tag: str = "callee-tag"

    def _cli(self, *args: str):  # noqa: ANN202
        target = ("-t", self.spec) if self.spec else ()
        return cli(self.capsys, *self.extra, *args, *target)

    def establish(self, flags: str = "") -> Dialog:
        offer = self.tmp_path / f"{self.call_id}-offer.sdp"
        offer.write_text(sdp_for(self.caller))
        result = self._cli("--json", "offer", str(offer), "--call-id", self.call_id, "--from-tag", self.from_tag,
                           "--flags", flags)
        assert result.code == 0, result.stderr
        # The offer's port is where the callee sends; the answer's where the caller sends.
        self.callee.relay_port = result.json()["streams"][0]["port"]
        answer = self.tmp_path / f"{self.call_id}-answer.sdp"
        answer.write_text(sdp_for(self.callee))
        result = self._cli("--json", "answer", str(answer), "--call-id", self.call_id, "--from-tag", self.from_tag,
                           "--to-tag", self.to_tag, "--flags", flags)
        assert result.code == 0, result.stderr
        self.caller.relay_port = result.json()["streams"][0]["port"]
        # Both send first, so the relay latches onto both addresses.
        self.caller.send(2)
        self.callee.send(2)
        self.caller.receive(0.1)
        self.callee.receive(0.1)
        return self

    def close(self) -> None:
        self.caller.close()
        self.callee.close()
