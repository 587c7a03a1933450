"""Properties of the offer/answer operation that need no relay: what is refused before sending."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rtppctl import ops
from rtppctl.proto.errors import InputError
from rtppctl.proto.sdp import DEFAULT_MARKER, parse_sdp
from rtppctl.proto.url import parse_node
from rtppctl.relays.service import RelayService, RelaySets
from tests.proto.test_sdp import sdp_bodies


def refusing_connect(node):
    raise AssertionError(f"nothing may be sent to {node.url} for this input")


ROUTE = ops.Route(RelayService(
    lambda: RelaySets({0: [parse_node("udp:127.0.0.1:9")]}, 0), refusing_connect, state_path=None,
))


def marked(body: str, position: int) -> str:
    """`body` with the marker as one more line, inserted after line `position`."""
    lines = body.splitlines(keepends=True)
    ending = "\r\n" if "\r\n" in body else "\n"
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += ending
    position = min(position, len(lines))
    return "".join(lines[:position] + [DEFAULT_MARKER + ending] + lines[position:])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sdp_bodies(), st.integers(1, 40), st.booleans())
def test_an_offer_on_a_marked_body_is_refused_without_f_and_nothing_is_sent(body, position, as_offer):
    text = marked(body, position)
    try:
        sdp = parse_sdp(text)
    except InputError:
        assume(False)
    assume(sdp.marker_line(DEFAULT_MARKER) is not None)
    request = ops.RewriteRequest(text=text, call_id="c@h", from_tag="ft", to_tag="tt")
    with pytest.raises(InputError) as refused:
        ops.rewrite_sdp(ROUTE, request, offer=as_offer)
    assert "already carries" in refused.value.message and refused.value.hint and "flag f" in refused.value.hint


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"call_id": None}, "no Call-ID"),
        ({"from_tag": None}, "no From tag"),
        ({"call_id": "a b"}, "whitespace"),
        ({"to_tag": "t\r\n"}, "whitespace"),
        ({"flags": "oq"}, "unknown flag 'q'"),
        ({"ip": "relay.example.com"}, "not a numeric"),
        ({"source_ip": "10.0.0.300"}, "not a numeric"),
        ({"dialog_id": "12"}, "ENTRY.ID"),
        ({"text": "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nt=0 0\nm=audio 4000 RTP/AVP 0\n"}, "no c= line"),
    ],
)
def test_bad_input_is_refused_before_anything_is_sent(change, message):
    base = dict(text="v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 4000 RTP/AVP 0\n",
                call_id="c@h", from_tag="ft", to_tag="tt")
    with pytest.raises(InputError) as refused:
        ops.rewrite_sdp(ROUTE, ops.RewriteRequest(**{**base, **change}), offer=True)
    assert message in refused.value.message
