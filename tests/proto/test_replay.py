"""Following captured calls (proto/replay.py): which message becomes which operation, as
rtpproxy_engage decides it (docs/protocol.md §4.8), with retransmissions once and a proxy host's
two legs told apart. Messages in, steps out: no relay."""

from __future__ import annotations

from rtppctl.proto.capture import SipPacket
from rtppctl.proto.replay import Follower, Skipped, Step
from tests.sipmsg import Msg, Party, sdp

ALICE, PROXY, BOB = Party("192.0.2.1"), Party("192.0.2.5"), Party("192.0.2.9")
A_VIA = "192.0.2.1:5060;branch=z9hG4bKa1"
P_VIA = "192.0.2.5:5060;branch=z9hG4bKp1"


def feed(packets: list[SipPacket], follower: Follower | None = None) -> tuple[Follower, list[Step], list[Skipped]]:
    follower = follower or Follower()
    steps, skipped = [], []
    for packet in packets:
        result = follower.feed(packet)
        if isinstance(result, Step):
            steps.append(result)
        elif isinstance(result, Skipped):
            skipped.append(result)
    return follower, steps, skipped


def basic_call(call_id: str = "c1@a", *, invite_sdp: bool = True) -> list[Msg]:
    """A call as Alice's side of the proxy sees it: INVITE, 100, 180, 200, ACK, BYE, 200."""
    offer = sdp("192.0.2.1", 4000) if invite_sdp else ""
    answer = sdp("192.0.2.9", 5000)
    return [
        Msg("INVITE", call_id, "ft", None, 1, "INVITE", [A_VIA], offer),
        Msg("100", call_id, "ft", None, 1, "INVITE", [A_VIA]),
        Msg("180", call_id, "ft", "tt", 1, "INVITE", [A_VIA]),
        Msg("200", call_id, "ft", "tt", 1, "INVITE", [A_VIA], answer if invite_sdp else sdp("192.0.2.9", 5000)),
        Msg("ACK", call_id, "ft", "tt", 1, "ACK", ["192.0.2.1:5060;branch=z9hG4bKa2"],
            "" if invite_sdp else sdp("192.0.2.1", 4000)),
        Msg("BYE", call_id, "ft", "tt", 2, "BYE", ["192.0.2.1:5060;branch=z9hG4bKa3"]),
        Msg("200", call_id, "ft", "tt", 2, "BYE", ["192.0.2.1:5060;branch=z9hG4bKa3"]),
    ]


def one_leg(messages: list[Msg], start: float = 1000.0) -> list[SipPacket]:
    """The messages between Alice and the proxy: requests from Alice, replies to her."""
    return [m.packet(start + n * 0.01, ALICE.addr if not m.start.isdigit() else PROXY.addr,
                     PROXY.addr if not m.start.isdigit() else ALICE.addr, frame=n + 1)
            for n, m in enumerate(messages)]


def test_a_call_is_an_offer_an_answer_and_an_unforce_with_the_dialogs_tags():
    follower, steps, skipped = feed(one_leg(basic_call()))
    assert [(s.kind, s.summary.method, s.summary.status) for s in steps] == [
        ("offer", "INVITE", None), ("answer", "INVITE", 200), ("unforce", "BYE", None)]
    assert [s.number for s in steps] == [1, 2, 3]
    assert steps[2].tags == ("ft", "tt")
    call = follower.calls["c1@a"]
    assert call.messages == 7 and call.with_sdp == 2 and call.findings == [] and skipped == []
    assert call.caller.startswith('"Alice"') and call.callee == "<sip:bob@example.com>"


def test_a_bye_from_the_callee_deletes_with_the_caller_tag_first():
    messages = basic_call()
    messages[5] = Msg("BYE", "c1@a", "tt", "ft", 1, "BYE", ["192.0.2.9:5060;branch=z9hG4bKb9"])
    _, steps, _ = feed(one_leg(messages[:6]))
    assert steps[-1].kind == "unforce" and steps[-1].tags == ("ft", "tt")


def test_retransmissions_are_replayed_once():
    messages = basic_call()
    packets = one_leg([messages[0], messages[0], messages[1], messages[3], messages[3], messages[3], *messages[4:]])
    follower, steps, skipped = feed(packets)
    assert [s.kind for s in steps] == ["offer", "answer", "unforce"]
    assert [s.reason for s in skipped] == ["retransmission"] * 3
    assert follower.calls["c1@a"].retransmissions == 3


def test_a_proxy_hosts_capture_replays_what_the_proxy_received_and_keeps_its_copies_for_diff():
    packets: list[SipPacket] = []
    time = 1000.0
    for message in basic_call():
        time += 0.01
        if message.start.isdigit():  # a reply: from Bob to the proxy (with the proxy's Via), then to Alice
            received = Msg(message.start, message.call_id, message.from_tag, message.to_tag, message.cseq,
                           message.cseq_method, [P_VIA, *message.vias], message.body.replace("192.0.2.9", "192.0.2.9"))
            packets.append(received.packet(time, BOB.addr, PROXY.addr))
            packets.append(message.packet(time + 0.001, PROXY.addr, ALICE.addr))
        else:  # a request: from Alice to the proxy, then from the proxy to Bob with its Via on top
            packets.append(message.packet(time, ALICE.addr, PROXY.addr))
            forwarded = Msg(message.start, message.call_id, message.from_tag, message.to_tag, message.cseq,
                            message.cseq_method, [P_VIA, *message.vias], message.body.replace("4000", "30000"))
            packets.append(forwarded.packet(time + 0.001, PROXY.addr, BOB.addr))
    follower, steps, skipped = feed(packets)
    assert [s.kind for s in steps] == ["offer", "answer", "unforce"]
    assert all(s.packet.dst == PROXY.addr for s in steps)  # the copies the proxy received
    assert {s.reason for s in skipped} == {"forwarded"} and len(skipped) == 7
    assert follower.proxies == {"192.0.2.5"}
    call = follower.calls["c1@a"]
    assert "m=audio 30000" in call.forwarded_text[1]  # the proxy's own output for step 1


def test_proxy_ip_names_the_proxy_whose_messages_are_skipped():
    packets = one_leg(basic_call())
    follower, steps, skipped = feed(packets, Follower(proxy_ip="192.0.2.5"))
    # Replies in this leg come from the proxy: only Alice's requests are replayed.
    assert [s.kind for s in steps] == ["offer", "unforce"]
    assert len(skipped) == 4 and all(s.proxy == "192.0.2.5" for s in skipped)


def test_a_late_offer_is_the_replys_sdp_and_the_acks_sdp_goes_as_engage_sends_it():
    follower, steps, _ = feed(one_leg(basic_call(invite_sdp=False)))
    assert [(s.kind, s.summary.method, s.summary.status) for s in steps] == [
        ("offer", "INVITE", 200), ("offer", "ACK", None), ("unforce", "BYE", None)]
    assert follower.calls["c1@a"].findings == []


def test_a_late_negotiation_without_sdp_in_the_ack_is_a_finding():
    messages = basic_call(invite_sdp=False)
    messages[4].body = ""
    follower, steps, _ = feed(one_leg(messages))
    assert [s.kind for s in steps] == ["offer", "unforce"]
    assert follower.calls["c1@a"].findings == ["the late negotiation never completed (no ACK with SDP)"]


def test_a_reinvite_of_a_normal_dialog_is_an_answer_as_engage_sends_it():
    messages = basic_call()[:5]
    messages += [Msg("INVITE", "c1@a", "ft", "tt", 2, "INVITE", ["192.0.2.1:5060;branch=z9hG4bKr1"], sdp("192.0.2.1", 4002)),
                 Msg("200", "c1@a", "ft", "tt", 2, "INVITE", ["192.0.2.1:5060;branch=z9hG4bKr1"], sdp("192.0.2.9", 5002)),
                 Msg("491", "c1@a", "ft", "tt", 3, "INVITE", ["192.0.2.1:5060;branch=z9hG4bKr2"])]
    follower, steps, _ = feed(one_leg(messages))
    assert [(s.kind, s.summary.cseq, s.summary.status) for s in steps] == [
        ("offer", 1, None), ("answer", 1, 200), ("answer", 2, None), ("answer", 2, 200)]
    assert follower.calls["c1@a"].findings == ["the dialog never ended in the trace (no BYE, CANCEL or failure)"]


def test_forked_answers_each_go_with_their_own_to_tag_and_the_2xx_tag_ends_the_call():
    invite, *_ = basic_call()
    messages = [invite,
                Msg("183", "c1@a", "ft", "fork-a", 1, "INVITE", [A_VIA], sdp("192.0.2.9", 5000)),
                Msg("183", "c1@a", "ft", "fork-b", 1, "INVITE", [A_VIA], sdp("192.0.2.10", 5004)),
                Msg("200", "c1@a", "ft", "fork-b", 1, "INVITE", [A_VIA], sdp("192.0.2.10", 5004)),
                Msg("BYE", "c1@a", "ft", "fork-b", 2, "BYE", ["192.0.2.1:5060;branch=z9hG4bKa3"])]
    _, steps, _ = feed(one_leg(messages))
    assert [(s.kind, s.summary.to_tag) for s in steps] == [
        ("offer", None), ("answer", "fork-a"), ("answer", "fork-b"), ("answer", "fork-b"), ("unforce", "fork-b")]
    assert steps[-1].tags == ("ft", "fork-b")


def test_cancel_ends_the_call_once_and_a_failed_invite_ends_it_too():
    invite = basic_call()[0]
    cancelled = [invite, Msg("180", "c1@a", "ft", "tt", 1, "INVITE", [A_VIA]),
                 Msg("CANCEL", "c1@a", "ft", None, 1, "CANCEL", [A_VIA]),
                 Msg("200", "c1@a", "ft", None, 1, "CANCEL", [A_VIA]),
                 Msg("487", "c1@a", "ft", "tt", 1, "INVITE", [A_VIA])]
    follower, steps, _ = feed(one_leg(cancelled))
    assert [s.kind for s in steps] == ["offer", "unforce"] and steps[1].tags == ("ft", "tt")
    assert follower.calls["c1@a"].findings == []
    busy = [Msg("INVITE", "c2@a", "ft", None, 1, "INVITE", [A_VIA], sdp("192.0.2.1", 4000)),
            Msg("486", "c2@a", "ft", "tb", 1, "INVITE", [A_VIA])]
    follower, steps, _ = feed(one_leg(busy))
    assert [s.kind for s in steps] == ["offer", "unforce"] and steps[1].tags == ("ft", "tb")


def test_a_challenged_invite_sent_again_starts_the_call_again():
    first = Msg("INVITE", "c3@a", "ft", None, 1, "INVITE", [A_VIA], sdp("192.0.2.1", 4000))
    again = Msg("INVITE", "c3@a", "ft", None, 2, "INVITE", ["192.0.2.1:5060;branch=z9hG4bKa9"], sdp("192.0.2.1", 4000))
    messages = [first, Msg("407", "c3@a", "ft", "px", 1, "INVITE", [A_VIA]), again,
                Msg("200", "c3@a", "ft", "tt", 2, "INVITE", ["192.0.2.1:5060;branch=z9hG4bKa9"], sdp("192.0.2.9", 5000))]
    follower, steps, _ = feed(one_leg(messages))
    assert [s.kind for s in steps] == ["offer", "unforce", "offer", "answer"]
    assert follower.calls["c3@a"].findings == ["the dialog never ended in the trace (no BYE, CANCEL or failure)"]


def test_an_offer_nobody_answered_is_a_finding_and_unreadable_messages_are_counted():
    follower, steps, _ = feed(one_leg(basic_call()[:2]) + [SipPacket(2000.0, ALICE.addr, PROXY.addr, "udp", b"GARBAGE\r\n\r\n")])
    assert [s.kind for s in steps] == ["offer"]
    assert follower.calls["c1@a"].findings == ["the offer (step 1) got no answer in the trace",
                                              "the dialog never ended in the trace (no BYE, CANCEL or failure)"]
    assert follower.unreadable == 1
