"""`ops.find_call`: one `Call` from a SIP message or the options and the ledger, with no relay.

Who is the uac, who sent the message and who created the session are decided here; the relay
tests (tests/system/test_media.py) check what the relay then does with them.
"""

from __future__ import annotations

import pytest

from rtppctl import ops
from rtppctl.proto.errors import InputError
from rtppctl.proto.sip import parse_sip
from rtppctl.proto.url import parse_node
from rtppctl.relays.service import RelayService, RelaySets
from rtppctl.relays.store import LedgerEntry

CALLER, CALLEE = "caller-tag", "callee-tag"


def refusing_connect(node):
    raise AssertionError(f"nothing may be sent to {node.url} to build a call")


#: The service's clock: tests move it.
NOW = [1000.0]


@pytest.fixture
def relay(tmp_path):
    NOW[0] = 1000.0
    service = RelayService(lambda: RelaySets({0: [parse_node("udp:127.0.0.1:9")]}, 0), refusing_connect,
                           state_path=tmp_path / "state.sqlite3", clock=lambda: NOW[0])
    yield ops.Route(service)
    service.close()


def remember(relay, call_id: str, from_tag: str = CALLER, to_tag: str | None = CALLEE) -> None:
    relay.service.store.write_entry(LedgerEntry(call_id, from_tag, to_tag, 0, "udp:127.0.0.1:9", None, (), None,
                                                   None, 1000.0, 1000.0))


def message(first_line: str, from_tag: str, to_tag: str | None, call_id: str = "c1@h"):
    to = f"<sip:b@h>;tag={to_tag}" if to_tag else "<sip:b@h>"
    return parse_sip(f"{first_line}\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag={from_tag}\r\n"
                     f"To: {to}\r\nCall-ID: {call_id}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n", source="bye.txt")


BYE = "BYE sip:x@h SIP/2.0"
REPLY = "SIP/2.0 200 OK"


def test_a_callees_bye_makes_the_callee_the_uac_and_leaves_the_caller_the_creator(relay):
    remember(relay, "c1@h")
    call = ops.find_call(relay, message=message(BYE, CALLEE, CALLER))
    assert (call.uac_tag, call.uas_tag, call.creator_tag, call.other_tag) == (CALLEE, CALLER, CALLER, CALLEE)
    assert (call.sender, call.source) == ("uac", "message")
    assert call.tags_to("uac") == (CALLEE, CALLER) and call.tags_to("uas") == (CALLER, CALLEE)


def test_a_reply_was_sent_by_the_uas(relay):
    call = ops.find_call(relay, message=message(REPLY, CALLER, CALLEE))
    assert (call.uac_tag, call.uas_tag, call.sender) == (CALLER, CALLEE, "uas")
    assert call.creator_tag is None and call.entry is None  # the ledger does not know it: the relay is asked later


@pytest.mark.parametrize(("from_tag", "to_tag", "uac", "uas"), [
    (None, None, CALLER, CALLEE),      # the ledger's: the creator is the uac
    (CALLEE, None, CALLEE, CALLER),    # as if the callee sent a request: the ledger gives the other tag
    (None, "other", CALLER, "other"),  # an option wins over the ledger
])
def test_without_a_message_the_options_stand_for_a_request_and_the_ledger_fills_in(relay, from_tag, to_tag, uac, uas):
    remember(relay, "c1@h")
    call = ops.find_call(relay, call_id="c1@h", from_tag=from_tag, to_tag=to_tag)
    assert (call.uac_tag, call.uas_tag, call.creator_tag, call.sender) == (uac, uas, CALLER, "uac")


def test_before_the_answer_the_ledger_gives_the_creator_alone(relay):
    remember(relay, "c1@h", to_tag=None)
    call = ops.find_call(relay, call_id="c1@h")
    assert (call.uac_tag, call.uas_tag, call.source) == (CALLER, None, "ledger")
    with pytest.raises(InputError, match="has no To tag yet"):
        call.tags_to("uas")


def test_tags_that_are_not_the_ledgers_call_are_refused(relay):
    remember(relay, "c1@h")
    with pytest.raises(InputError) as refused:
        ops.find_call(relay, message=message(BYE, "stranger", "other"))
    assert "its session was created by 'caller-tag'" in refused.value.message
    assert "--state none" in refused.value.hint


@pytest.mark.parametrize(("given", "says"), [
    ({}, "no call given"),
    ({"call_id": "unknown@h"}, "the ledger has no call 'unknown@h'"),
])
def test_a_call_that_cannot_be_named_is_refused(relay, given, says):
    with pytest.raises(InputError, match=says):
        ops.find_call(relay, **given)


def test_a_call_is_marked_used_only_when_the_ledger_knows_it(relay):
    remember(relay, "c1@h")
    NOW[0] = 5000.0
    ops.find_call(relay, call_id="c1@h").used()
    assert relay.service.ledger("c1@h").last_used_at == 5000.0
    ops.find_call(relay, call_id="c2@h", from_tag="x").used()  # not in the ledger: nothing written
    assert relay.service.ledger("c2@h") is None
