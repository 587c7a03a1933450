"""SIP messages and SDP bodies for trace tests: a call's messages as a UA, a proxy and a capture
would see them, built from a few facts (method or status, tags, CSeq, Vias, body)."""

from __future__ import annotations

from dataclasses import dataclass, field

from rtppctl.proto.capture import SipPacket


def sdp(address: str, port: int, *, family: str = "IP4", extra: str = "") -> str:
    return (f"v=0\r\no=- 1 1 IN {family} {address}\r\ns=-\r\nc=IN {family} {address}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n{extra}")


@dataclass
class Party:
    """A UA or a proxy: its address, port and the Via host it writes."""

    ip: str
    port: int = 5060

    @property
    def addr(self) -> tuple[str, int]:
        return (self.ip, self.port)


@dataclass
class Msg:
    """One SIP message's facts; `text()` writes it."""

    start: str  # "INVITE", "ACK", "BYE", ... or a status code as text ("200")
    call_id: str
    from_tag: str
    to_tag: str | None
    cseq: int
    cseq_method: str
    vias: list[str] = field(default_factory=list)  # "host:port;branch=..." values, top first
    body: str = ""

    def text(self) -> str:
        if self.start.isdigit():
            reasons = {"100": "Trying", "180": "Ringing", "183": "Session Progress", "200": "OK", "407": "Proxy Authentication Required",
                       "486": "Busy Here", "487": "Request Terminated", "491": "Request Pending"}
            first = f"SIP/2.0 {self.start} {reasons.get(self.start, 'Whatever')}"
        else:
            first = f"{self.start} sip:bob@example.com SIP/2.0"
        lines = [first, *(f"Via: SIP/2.0/UDP {via}" for via in self.vias),
                 f"From: \"Alice\" <sip:alice@example.com>;tag={self.from_tag}",
                 "To: <sip:bob@example.com>" + (f";tag={self.to_tag}" if self.to_tag else ""),
                 f"Call-ID: {self.call_id}", f"CSeq: {self.cseq} {self.cseq_method}", "Max-Forwards: 70"]
        if self.body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(self.body.encode())}")
        return "\r\n".join(lines) + "\r\n\r\n" + self.body

    def packet(self, time: float, src: tuple[str, int], dst: tuple[str, int], frame: int = 0) -> SipPacket:
        return SipPacket(time, src, dst, "udp", self.text().encode(), frame=frame)
