"""replay --media: each call's captured RTP sent again through the relay, and what it forwarded.

This module owns the media half of a replay. The parties of a call are played by local sockets
(`net.rtp_path.Party`, on 127.0.0.1): before an offer or answer goes to the relay, the SDP's
streams are pointed at the sending party's socket (`prepare`), so the relay forwards to this host
and nowhere else; the relay's ports in the rewritten SDP say where the other party sends. A
captured datagram sent from a party's captured address (the one its SDP named) is sent again,
byte for byte, from that party's socket to the relay (`packet`); what arrives at the other party
is matched to it (`proto.media_path.CapturedMeter`). Datagrams the capture holds from anywhere
else (the relay that forwarded them then, RTCP ports no SDP named) are not sent.

Per stream and direction, the report has the `check` measurements: sent, received, lost,
duplicates, reordered, late, latency, jitter, latched.
"""

from __future__ import annotations

import contextlib
import selectors
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rtppctl.proto.errors import RtppctlError

if TYPE_CHECKING:
    from rtppctl.net.rtp_path import Party
    from rtppctl.ops.offer_answer import RewriteResult
    from rtppctl.proto.capture import MediaPacket
    from rtppctl.proto.media_path import CapturedMeter
    from rtppctl.proto.sip import TraceSummary

#: The parties' address: the relay sends media only here.
LOCAL_ADDRESS = "127.0.0.1"
SIDES = ("caller", "callee")


@dataclass
class _CallMedia:
    #: (side, medianum) -> the party's sockets.
    parties: dict[tuple[str, int], Party] = field(default_factory=dict)
    #: (side, medianum) -> where that side sends: the relay's address and port.
    destinations: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)
    #: (side, medianum) -> the meter of what that side sends.
    meters: dict[tuple[str, int], CapturedMeter] = field(default_factory=dict)
    #: Captured (address, port) of each party's stream, for finding the datagrams it sent.
    sources: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)
    #: Datagrams sent from a captured source before the relay's port for it was known.
    early: int = 0


class MediaPlayer:
    """The media of every open call of one replay."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._calls: dict[str, _CallMedia] = {}
        #: Captured (address, port) -> (Call-ID, side, medianum).
        self._by_source: dict[tuple[str, int], tuple[str, str, int]] = {}

    @staticmethod
    def side_of(summary: TraceSummary, caller_tag: str | None) -> str:
        """Whose SDP a message carries: a request's sender, or for a reply the other party."""
        from_caller = caller_tag is None or summary.from_tag == caller_tag
        return "caller" if summary.is_request == from_caller else "callee"

    def prepare(self, call_id: str, side: str, text: str) -> str:
        """The message `text` with its SDP's proxied streams pointed at `side`'s local sockets
        (opened here on first use); the text unchanged when it cannot be read as SDP to rewrite
        (the step then fails on it as it would have)."""
        from rtppctl.net.rtp_path import Party  # noqa: PLC0415
        from rtppctl.proto import sdp as sdp_mod  # noqa: PLC0415
        from rtppctl.proto.sip import parse_sip, with_body  # noqa: PLC0415

        try:
            message = parse_sip(text)
            sdp = sdp_mod.parse_sdp(message.body)
        except RtppctlError:
            return text
        call = self._calls.setdefault(call_id, _CallMedia())
        targets = {}
        for stream in sdp.streams:
            if not stream.proxied or stream.medianum is None:
                continue
            key = (side, stream.medianum)
            party = call.parties.get(key)
            if party is None:
                party = call.parties[key] = Party.open(LOCAL_ADDRESS)
                for sock, at_source in ((party.declared, False), (party.source, True)):
                    self._selector.register(sock, selectors.EVENT_READ, (call_id, side, stream.medianum, at_source))
            with contextlib.suppress(ValueError):
                source = (stream.address, int(stream.port.split("/", 1)[0]))
                call.sources[key] = source
                self._by_source[source] = (call_id, side, stream.medianum)
            targets[stream.medianum] = sdp_mod.MediaTarget(party.declared_port, LOCAL_ADDRESS, "IP4")
        if not targets:
            return text
        body = sdp_mod.rewrite(sdp, targets, rewrite_session_connection=True, marker=None)
        return with_body(message, body)

    def relay_ports(self, call_id: str, side: str, result: RewriteResult, relay_host: str) -> None:
        """After `side`'s SDP went through the relay: the other side sends to the ports it wrote."""
        from rtppctl.proto import command as cmd  # noqa: PLC0415
        from rtppctl.proto.media_path import DIRECTIONS, CapturedMeter  # noqa: PLC0415

        call = self._calls.get(call_id)
        if call is None:
            return
        other = SIDES[1 - SIDES.index(side)]
        for stream, sent in zip(result.streams, result.commands, strict=False):
            with contextlib.suppress(RtppctlError):
                # The relay's own address from its reply (not --ip or an advertised one).
                address = cmd.parse_port_reply(sent["reply"]).address or relay_host
                call.destinations[(other, stream.medianum)] = (address, stream.port)
                direction = DIRECTIONS[SIDES.index(other)]
                call.meters.setdefault((other, stream.medianum), CapturedMeter(direction))

    def packet(self, packet: MediaPacket) -> None:
        """A captured datagram: sent again from its party's socket when it is one of theirs."""
        owner = self._by_source.get(packet.src)
        if owner is None:
            return
        call_id, side, medianum = owner
        call = self._calls.get(call_id)
        if call is None:
            return
        key = (side, medianum)
        destination, party, meter = call.destinations.get(key), call.parties.get(key), call.meters.get(key)
        if destination is None or party is None or meter is None:
            call.early += 1
            return
        send_ns = time.time_ns()
        try:
            party.source.sendto(packet.data, destination)
        except OSError:
            return  # counted as never sent
        meter.sent(packet.data, send_ns)

    def poll(self, timeout: float) -> None:
        """Hand every datagram that arrived (waiting at most `timeout`) to its direction's meter."""
        from rtppctl.net.rtp_path import drain  # noqa: PLC0415

        if not self._calls:
            if timeout > 0:
                time.sleep(timeout)
            return
        for key, _ in self._selector.select(max(0.0, timeout)):
            call_id, side, medianum, at_source = key.data
            call = self._calls.get(call_id)
            # What arrives at a side was sent by the other one.
            other = SIDES[1 - SIDES.index(side)]
            meter = call.meters.get((other, medianum)) if call is not None else None
            if meter is None:
                _discard(key.fileobj)  # type: ignore[arg-type]
            else:
                drain(key.fileobj, meter, at_source)  # type: ignore[arg-type]

    def finish(self, call_id: str) -> list[dict[str, Any]]:
        """The call's streams, each direction measured; its sockets closed."""
        if call_id not in self._calls:
            return []
        self.poll(0.0)
        call = self._calls.pop(call_id)
        results = []
        for (side, medianum), meter in sorted(call.meters.items(), key=lambda item: (item[0][1], SIDES.index(item[0][0]))):
            results.append({"stream": medianum, **meter.result().as_dict()})
        for party in call.parties.values():
            for sock in (party.declared, party.source):
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.unregister(sock)
            party.close()
        for source in call.sources.values():
            self._by_source.pop(source, None)
        return results

    def close(self) -> None:
        for call_id in list(self._calls):
            self.finish(call_id)
        self._selector.close()


def _discard(sock: Any) -> None:
    for _ in range(256):
        try:
            sock.recv(65535)
        except OSError:
            return
