"""Following the calls of a captured trace: which message becomes which operation of the module.

This module owns the SIP side of `replay`: messages (`SipPacket`s, in capture order) in, `Step`s
out, each an offer, an answer or an unforce as `rtpproxy_engage` would have made it
(docs/protocol.md §4.8), with the reasons in words. Pure: no relay, no clock, no file.

- A call is a Call-ID; its dialogs are told apart by their tags (a forked INVITE gets replies
  with several To tags; each reply's SDP is an answer for its own tag pair).
- Offer and answer, as engage decides them (docs/protocol.md §4.8): the SDP of an initial
  INVITE is the offer (U). Every later SDP of the call (18x and 2xx replies, re-INVITEs, UPDATE,
  PRACK, ACK) goes through the same function with `offer` set while a late negotiation is open
  (an initial INVITE without SDP, until its ACK): then U (an offer, in a reply with the tags
  swapped), else L (an answer). A re-INVITE of a normally negotiated dialog is therefore an L,
  as the module sends it.
- The end: BYE, CANCEL, or a final failure (3xx-6xx) of the initial INVITE that no 2xx answered,
  is an unforce with the dialog's tags (the caller's, then the callee's: `D <callid> <caller tag>
  <callee tag>`, whoever sent the BYE), once.
- Retransmissions (same Call-ID, CSeq, start line, tags and every Via) are replayed once.
- A capture taken on the proxy's host holds each message twice: as the proxy received it and as
  it forwarded it. A forwarded request carries one Via more (the proxy's own, on top); a
  forwarded reply one Via less (the proxy's, which it removed). A message that is another one's
  forwarded copy is not replayed: the copy the proxy received is (its SDP is what the proxy had
  to rewrite); the copy's text is kept for `--diff`, and the address it came from is the proxy's.
  `proxy_ip` names the proxy instead: messages it sent are its forwarded copies.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from rtppctl.proto.capture import SipPacket
from rtppctl.proto.errors import InputError
from rtppctl.proto.sip import TraceSummary, summarize

#: Requests whose SDP is an offer, and whose replies' SDP is its answer.
_OFFERING = frozenset({"INVITE", "UPDATE", "PRACK"})
#: The most messages of one call whose Via sets are remembered (to find retransmissions and
#: forwarded copies): a call of more messages than that is a loop or an attack, not a call.
MAX_REMEMBERED = 512


@dataclass(frozen=True)
class Step:
    """One operation for one captured message."""

    #: "offer", "answer" or "unforce".
    kind: str
    packet: SipPacket
    summary: TraceSummary
    #: The message as text (what the operation is given).
    text: str
    #: Why this message is this operation, in words.
    why: str
    #: 1-based number of the step in its call.
    number: int = 0
    #: For an unforce: the dialog's tags (the caller's, the callee's or None).
    tags: tuple[str | None, str | None] = (None, None)


class _Decision(NamedTuple):
    """What a message is: the kind of step, why, and an unforce's tags."""

    kind: str
    why: str
    tags: tuple[str | None, str | None] = (None, None)


@dataclass
class CallTrace:
    """What the trace says about one call; the replay adds what the relay did."""

    call_id: str
    #: The From and To of the first request, as written (for people).
    caller: str
    callee: str
    first_time: float
    last_time: float
    #: Messages of the call in the trace, retransmissions and forwarded copies included.
    messages: int = 0
    #: Messages with an SDP body.
    with_sdp: int = 0
    retransmissions: int = 0
    forwarded: int = 0
    #: The offer of the initial INVITE while no SDP answered it: its step number.
    awaiting: int | None = None
    #: A late negotiation is open: an initial INVITE without SDP, until its ACK.
    late: bool = False
    #: A late negotiation whose ACK came without SDP (it never completed).
    late_unfinished: bool = False
    #: The dialog's tags: the caller's (the initial INVITE's From tag) and the callee's (the To
    #: tag of the first 2xx, else of the latest reply that had one).
    caller_tag: str | None = None
    callee_tag: str | None = None
    #: (CSeq, method) of the initial INVITEs, and of the requests a 2xx answered.
    initial: set[tuple[int | None, str | None]] = field(default_factory=set)
    succeeded: set[tuple[int | None, str | None]] = field(default_factory=set)
    #: An unforce was made (BYE, CANCEL or a failed INVITE): later ones add nothing.
    ended: bool = False
    #: Steps made so far.
    steps: int = 0
    #: Step number -> the forwarded copy's text, when the trace has it (for --diff).
    forwarded_text: dict[int, str] = field(default_factory=dict)
    #: Via sets seen, by (CSeq, method, request?, status), with the step number they made (0: none).
    _seen: dict[tuple[object, ...], dict[tuple[object, ...], int]] = field(default_factory=dict, repr=False)
    _remembered: int = field(default=0, repr=False)

    @property
    def findings(self) -> list[str]:
        """What the trace itself says is wrong or unfinished, in words."""
        found = [] if self.awaiting is None else [f"the offer (step {self.awaiting}) got no answer in the trace"]
        if self.late or self.late_unfinished:
            found.append("the late negotiation never completed (no ACK with SDP)")
        if not self.ended:
            found.append("the dialog never ended in the trace (no BYE, CANCEL or failure)")
        return found

    def listing(self) -> dict[str, object]:
        """The call as `replay --list` shows it."""
        return {"call_id": self.call_id, "caller": self.caller, "callee": self.callee, "first_time": self.first_time,
                "last_time": self.last_time, "messages": self.messages, "sdp": self.with_sdp > 0}


@dataclass(frozen=True)
class Skipped:
    """A message that is no operation, and why (for the report's counters)."""

    call_id: str
    #: "retransmission", "forwarded" or "no call" (not SIP a replay can follow).
    reason: str
    #: For a forwarded copy: the proxy's address (the one that sent it).
    proxy: str | None = None


class Follower:
    """Feed it a trace's SIP messages in order; it says what each one is."""

    def __init__(self, *, proxy_ip: str | None = None) -> None:
        self.proxy_ip = proxy_ip
        self.calls: dict[str, CallTrace] = {}
        #: Addresses found to be a proxy forwarding messages of the trace.
        self.proxies: set[str] = set()
        #: Messages that could not be read as SIP (no start line or no Call-ID).
        self.unreadable = 0
        #: The call of the message fed last (None when it was unreadable).
        self.last: CallTrace | None = None

    def feed(self, packet: SipPacket) -> Step | Skipped | None:
        """What `packet` is: a Step to replay, a Skipped copy, or None (a message that asks for
        nothing: 100 Trying, an ACK without SDP, OPTIONS...). Unreadable messages are counted."""
        text = packet.data.decode("utf-8", "replace")
        try:
            summary = summarize(text, source=f"frame {packet.frame}")
        except InputError:
            self.unreadable += 1
            self.last = None
            return None
        call = self.calls.get(summary.call_id)
        if call is None:
            call = self.calls[summary.call_id] = CallTrace(
                summary.call_id, summary.from_value if summary.is_request else "", summary.to_value if summary.is_request else "",
                packet.time, packet.time)
        self.last = call
        call.messages += 1
        call.last_time = max(call.last_time, packet.time)
        if summary.has_sdp:
            call.with_sdp += 1
        if not call.caller and summary.is_request:
            call.caller, call.callee = summary.from_value, summary.to_value
        if self.proxy_ip is not None and packet.src[0] == self.proxy_ip:
            call.forwarded += 1
            return Skipped(call.call_id, "forwarded", self.proxy_ip)
        copy = self._copy_of(call, summary, packet)
        if copy is not None:
            return copy
        decided = self._decide(call, summary)
        step = None
        if decided is not None:
            call.steps += 1
            step = Step(decided.kind, packet, summary, text, decided.why, call.steps, decided.tags)
            self._remember(call, summary, call.steps)
        else:
            self._remember(call, summary, 0)
        return step

    def _key(self, summary: TraceSummary) -> tuple[object, ...]:
        # The tags too: forked replies share a CSeq, a status and Vias, not a To tag.
        return (summary.cseq, summary.cseq_method, summary.is_request, summary.status, summary.from_tag, summary.to_tag)

    def _copy_of(self, call: CallTrace, summary: TraceSummary, packet: SipPacket) -> Skipped | None:
        seen = call._seen.get(self._key(summary))
        if not seen:
            return None
        vias = tuple((via.host, via.port, via.branch) for via in summary.vias)
        if vias in seen:
            call.retransmissions += 1
            return Skipped(call.call_id, "retransmission")
        # One Via more on a request (the forwarder's own on top), one less on a reply (removed).
        original = vias[1:] if summary.is_request else None
        for earlier, number in seen.items():
            if (original is not None and vias and earlier == original) or (
                    original is None and earlier and earlier[1:] == vias):
                call.forwarded += 1
                proxy = packet.src[0]
                self.proxies.add(proxy)
                if number:
                    call.forwarded_text.setdefault(number, packet.data.decode("utf-8", "replace"))
                return Skipped(call.call_id, "forwarded", proxy)
        return None

    def _remember(self, call: CallTrace, summary: TraceSummary, number: int) -> None:
        if call._remembered >= MAX_REMEMBERED:
            return
        call._remembered += 1
        vias = tuple((via.host, via.port, via.branch) for via in summary.vias)
        call._seen.setdefault(self._key(summary), {})[vias] = number

    def _decide(self, call: CallTrace, summary: TraceSummary) -> _Decision | None:
        """What `summary`'s message is in its call (None: nothing to do), the call's state moved on."""
        transaction = (summary.cseq, summary.cseq_method)
        method = summary.method
        if summary.is_request:
            if method in ("BYE", "CANCEL"):
                return self._end(call, summary, f"{method}: the call ends")
            if method == "INVITE" and not summary.to_tag:
                # The call starts (again, after a 407 say): engage takes it from here.
                call.initial.add(transaction)
                call.ended = False
                call.caller_tag = summary.from_tag
                if not summary.has_sdp:
                    call.late = True
                    return None
                call.late = call.late_unfinished = False
                call.awaiting = call.steps + 1
                return _Decision("offer", "INVITE with SDP: the offer")
            # Decided before the ACK closes a late negotiation: its SDP is still the late offer.
            decided = self._negotiated(call, f"{method} with SDP") if summary.has_sdp else None
            if method == "ACK" and call.late:
                call.late = False
                call.late_unfinished = not summary.has_sdp
            return decided
        status = summary.status or 0
        if summary.to_tag and 101 <= status < 300 and (call.callee_tag is None or not call.succeeded):
            call.callee_tag = summary.to_tag
        if 200 <= status < 300:
            call.succeeded.add(transaction)
        if status >= 300:
            if transaction in call.initial and transaction not in call.succeeded and call.steps:
                # A failed re-INVITE leaves the dialog up; the first INVITE's failure ends the call.
                if summary.to_tag and not call.succeeded:
                    call.callee_tag = summary.to_tag
                call.awaiting = None
                return self._end(call, summary, f"{status} to the INVITE: the call failed")
            return None
        if not summary.has_sdp or status < 101:
            return None
        if transaction in call.initial:
            call.awaiting = None
        return self._negotiated(call, f"{status} to {summary.cseq_method} with SDP")

    @staticmethod
    def _negotiated(call: CallTrace, what: str) -> _Decision:
        if call.late:
            return _Decision("offer", f"{what}: an offer (late negotiation)")
        return _Decision("answer", f"{what}: an answer")

    @staticmethod
    def _end(call: CallTrace, summary: TraceSummary, why: str) -> _Decision | None:
        if call.ended:
            return None
        call.ended = True
        caller = call.caller_tag or summary.from_tag
        callee = call.callee_tag
        if callee is None:
            # No reply named the callee: the message's other tag, if it has one.
            callee = summary.to_tag if summary.from_tag == caller else summary.from_tag
        return _Decision("unforce", why, (caller, callee))

    def finish(self) -> Iterator[CallTrace]:
        """Every call of the trace, in the order first seen."""
        yield from self.calls.values()
