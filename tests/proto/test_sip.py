"""SIP messages pasted from traces: dialog identifiers read right, bodies swapped byte for byte."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtppctl.proto.errors import InputError
from rtppctl.proto.sip import SipMessage, looks_like_sip, parse_sip, with_body

SDP = (
    "v=0\r\n"
    "o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n"
    "s=-\r\n"
    "c=IN IP4 192.0.2.10\r\n"
    "t=0 0\r\n"
    "m=audio 49170 RTP/AVP 0 8 101\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
)
ANSWER_SDP = SDP.replace("alice", "bob").replace("192.0.2.10", "192.0.2.20").replace("49170", "3456")


def message(*lines: str, body: str = "", ending: str = "\r\n", length: int | None | str = "auto") -> str:
    """A message from its start line and headers; Content-Length appended unless `length` is None."""
    headers = list(lines)
    if length == "auto":
        headers.append(f"Content-Length: {len(body.encode())}")
    elif length is not None:
        headers.append(f"Content-Length: {length}")
    return ending.join(headers) + ending + ending + body


INVITE = message(
    "INVITE sip:bob@192.0.2.20:5060 SIP/2.0",
    "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport",
    "Max-Forwards: 70",
    "To: Bob <sip:bob@example.com>",
    'From: "Alice" <sip:alice@example.com>;tag=1928301774',
    "Call-ID: a84b4c76e66710@pc33.example.com",
    "CSeq: 314159 INVITE",
    "Contact: <sip:alice@192.0.2.10>",
    "Content-Type: application/sdp",
    body=SDP,
)

OK_200 = message(
    "SIP/2.0 200 OK",
    "Via: SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bKnashds8;received=198.51.100.7",
    "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds",
    "To: Bob <sip:bob@example.com>;tag=a6c85cf",
    'From: "Alice" <sip:alice@example.com>;tag=1928301774',
    "Call-ID: a84b4c76e66710@pc33.example.com",
    "CSeq: 314159 INVITE",
    "Contact: <sip:bob@192.0.2.20>",
    "Content-Type: application/sdp",
    body=ANSWER_SDP,
)


def error_of(text: str, **kwargs: str) -> InputError:
    with pytest.raises(InputError) as caught:
        parse_sip(text, **kwargs)
    return caught.value


# ------------------------------------------------------------------------------ looks_like_sip


@pytest.mark.parametrize(
    "text",
    [
        INVITE,
        OK_200,
        "\r\n\r\nBYE sip:alice@192.0.2.10 SIP/2.0\r\n",
        "  \n\nSIP/2.0 180 Ringing\n",
        "SIP/2.0 200 OK",
        "SIP/2.0 200 \r\n",
        "sip/2.0 183 Session Progress\r\n",  # the version is case-insensitive
        "ACK sips:bob@example.com;transport=tls SIP/2.0\r\n",
        "MESSAGE tel:+15551234567 SIP/2.0\n",
    ],
)
def test_looks_like_sip(text):
    assert looks_like_sip(text)


@pytest.mark.parametrize(
    "text",
    [
        SDP,
        "v=0\no=- 1 1 IN IP4 127.0.0.1\n",
        "",
        "\r\n  \n",
        "HTTP/1.1 200 OK\r\n",
        "SIP/2.0 OK\r\n",
        "SIP/2.0 2000 OK\r\n",
        "SIP/3.0 200 OK\r\n",
        "INVITE sip:bob@example.com\r\n",
        "INVITE bob@example.com SIP/2.0\r\n",  # a Request-URI has a scheme
        "INVITE sip:bob@example.com SIP/2.0 extra\r\n",
        "Via: SIP/2.0/UDP 192.0.2.1\r\n",
        "\tINVITE sip:bob@example.com SIP/2.0\r\n",
        "SIP/2.0 200 OK\rVia: x",  # a lone CR does not end a line
    ],
)
def test_does_not_look_like_sip(text):
    assert not looks_like_sip(text)


def test_looks_like_sip_refuses_non_text():
    assert not looks_like_sip(None)  # type: ignore[arg-type]
    assert not looks_like_sip(INVITE.encode())  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ parse_sip


def test_invite_with_sdp():
    m = parse_sip(INVITE)
    assert m.is_request
    assert (m.method, m.status, m.cseq_method) == ("INVITE", None, "INVITE")
    assert m.call_id == "a84b4c76e66710@pc33.example.com"
    assert (m.from_tag, m.to_tag) == ("1928301774", None)
    assert m.top_via_source == "192.0.2.10"
    assert m.content_type == "application/sdp"
    assert m.body == SDP
    assert not m.content_length_mismatch
    assert m.line_ending == "\r\n"
    assert m.blank_line == "\r\n"
    assert m.header_block + m.blank_line + m.body == INVITE
    assert m.header_block.splitlines()[m.content_length_line] == f"Content-Length: {len(SDP)}"


def test_reply_with_to_tag():
    m = parse_sip(OK_200)
    assert not m.is_request
    assert m.status == 200
    assert m.method == m.cseq_method == "INVITE"  # a reply's method comes from CSeq
    assert (m.from_tag, m.to_tag) == ("1928301774", "a6c85cf")
    assert m.top_via_source == "198.51.100.7"  # the TOP Via's received=
    assert m.body == ANSWER_SDP


def test_reply_without_cseq_has_no_method():
    m = parse_sip(message("SIP/2.0 100 Trying", "Call-ID: x", length=None))
    assert (m.method, m.cseq_method, m.status) == (None, None, 100)


def test_ack_with_sdp_late_negotiation():
    # Late negotiation: the INVITE had no SDP, the offer came in the 200 OK and the answer rides on
    # the ACK, a request that carries both tags (docs/protocol.md §4.8).
    m = parse_sip(message(
        "ACK sip:bob@192.0.2.20:5060 SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-ack-1",
        "From: <sip:alice@example.com>;tag=1928301774",
        "To: <sip:bob@example.com>;tag=a6c85cf",
        "Call-ID: late-1@pc33",
        "CSeq: 1 ACK",
        "Content-Type: application/sdp",
        body=SDP,
    ))
    assert m.is_request and m.method == "ACK" and m.cseq_method == "ACK"
    assert (m.from_tag, m.to_tag) == ("1928301774", "a6c85cf")
    assert m.body == SDP


def test_invite_without_sdp():
    m = parse_sip(message(
        "INVITE sip:bob@example.com SIP/2.0", "Call-ID: x", "From: <sip:a@b>;tag=1", length=0,
    ))
    assert m.body == "" and m.content_type is None and not m.content_length_mismatch


def test_compact_headers():
    m = parse_sip(message(
        "INVITE sip:bob@example.com SIP/2.0",
        "v: SIP/2.0/TCP 192.0.2.10:5060;branch=z9hG4bK1",
        "f: <sip:alice@example.com>;tag=ff",
        "t: <sip:bob@example.com>",
        "i: compact@host",
        "CSeq: 2 INVITE",
        "c: Application/SDP; charset=utf-8",
        f"l: {len(SDP)}",
        body=SDP, length=None,
    ))
    assert (m.call_id, m.from_tag, m.to_tag) == ("compact@host", "ff", None)
    assert m.top_via_source == "192.0.2.10"
    assert m.content_type == "application/sdp"
    assert m.body == SDP
    assert m.content_length_line == 7


def test_header_names_and_tag_parameter_are_case_insensitive():
    m = parse_sip(message(
        "INVITE sip:bob@example.com SIP/2.0",
        "VIA: SIP/2.0/UDP 192.0.2.10;BRANCH=z9hG4bK1;Received=198.51.100.9",
        "FROM: <sip:alice@example.com>;TAG=upper",
        "call-ID: mixed",
        "CONTENT-TYPE: application/sdp",
        body=SDP,
    ))
    assert (m.call_id, m.from_tag, m.top_via_source) == ("mixed", "upper", "198.51.100.9")


def test_folded_headers():
    m = parse_sip(message(
        "INVITE sip:bob@example.com SIP/2.0",
        "Via: SIP/2.0/UDP",
        "    192.0.2.10:5060",
        "\t;branch=z9hG4bK1",
        "From: \"Alice\"",
        " <sip:alice@example.com>",
        " ;tag=folded",
        "To:",
        "  <sip:bob@example.com>",
        "Call-ID:",
        "\tfolded-call-id",
        "Subject: a subject",
        "  over two lines",
        "Content-Type: application/sdp",
        body=SDP,
    ))
    assert (m.call_id, m.from_tag, m.to_tag) == ("folded-call-id", "folded", None)
    assert m.top_via_source == "192.0.2.10"
    assert m.body == SDP


def test_lf_only_input():
    text = INVITE.replace("\r\n", "\n")  # a trace pasted in a terminal
    m = parse_sip(text)
    assert m.line_ending == "\n"
    assert m.body == SDP.replace("\r\n", "\n")
    # The Content-Length counted the CRs the terminal dropped: the body is kept and flagged.
    assert m.content_length_mismatch
    rebuilt = with_body(m, m.body)
    assert "\r" not in rebuilt
    assert f"Content-Length: {len(m.body)}\n" in rebuilt
    assert not parse_sip(rebuilt).content_length_mismatch


def test_blank_line_with_spaces_from_a_terminal_ends_the_headers():
    text = "SIP/2.0 200 OK  \nCall-ID: x  \n   \nv=0\n"
    m = parse_sip(text)
    assert (m.blank_line, m.body, m.call_id, m.line_ending) == ("   \n", "v=0\n", "x", "\n")
    assert with_body(m, m.body) == "SIP/2.0 200 OK  \nCall-ID: x  \nContent-Length: 4\n   \nv=0\n"


def test_leading_empty_lines_are_kept_and_counted():
    text = "\r\n\r\n" + INVITE
    m = parse_sip(text)
    assert m.header_block.startswith("\r\n\r\nINVITE ")
    assert m.header_block.split("\n")[m.content_length_line].startswith("Content-Length:")
    assert with_body(m, m.body) == text
    error = error_of("\n\n" + INVITE.replace("CSeq: 314159 INVITE", "CSeq: INVITE"))
    assert error.message.startswith("message: line 9: malformed CSeq header")


# ---------------------------------------------------------------------------- top Via source


@pytest.mark.parametrize(
    ("via", "source"),
    [
        ("SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK1", "192.0.2.10"),
        ("SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1", "192.0.2.10"),
        ("SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1;received=203.0.113.9;rport=61000", "203.0.113.9"),
        ("SIP/2.0/UDP pc33.example.com;branch=z9hG4bK1", None),
        ("SIP/2.0/UDP pc33.example.com:5060;received=203.0.113.9;branch=z9hG4bK1", "203.0.113.9"),
        ("SIP/2.0/UDP [2001:db8::10]:5060;branch=z9hG4bK1", "2001:db8::10"),
        ("SIP/2.0/TLS [2001:db8::10];branch=z9hG4bK1", "2001:db8::10"),
        ("SIP/2.0/UDP [2001:db8::10]:5060;received=2001:db8::99", "2001:db8::99"),
        ("SIP/2.0/UDP [2001:db8::10]:5060;received=[2001:db8::99]", "2001:db8::99"),
        ("SIP/2.0/UDP 2001:db8::10;branch=z9hG4bK1", "2001:db8::10"),  # unbracketed, seen in the wild
        ("SIP/2.0/UDP 192.0.2.10 ; branch=z9hG4bK1 ; received=198.51.100.1", "198.51.100.1"),
        ("SIP / 2.0 / UDP 192.0.2.10:5060", "192.0.2.10"),
        # Several values in one header: the first one is the top.
        ("SIP/2.0/UDP proxy.example.net;branch=z9hG4bK2, SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1", None),
        ("SIP/2.0/UDP 198.51.100.3;branch=z9hG4bK2,SIP/2.0/UDP 192.0.2.10;received=192.0.2.99",
         "198.51.100.3"),
        ("SIP/2.0/UDP 198.51.100.3;x=\"a,b\";received=192.0.2.1, SIP/2.0/UDP 192.0.2.10", "192.0.2.1"),
    ],
)
def test_top_via_source(via, source):
    m = parse_sip(message("BYE sip:a@b SIP/2.0", f"Via: {via}", "Via: SIP/2.0/UDP 192.0.2.200", "i: x"))
    assert m.top_via_source == source


def test_top_via_is_the_first_via_header():
    m = parse_sip(message(
        "SIP/2.0 180 Ringing",
        "v: SIP/2.0/UDP host.example.org;branch=z9hG4bK2",
        "Via: SIP/2.0/UDP 192.0.2.10;received=192.0.2.77",
        "Call-ID: x",
    ))
    assert m.top_via_source is None


@pytest.mark.parametrize(
    "via",
    [
        "",
        "192.0.2.10:5060",
        "SIP/2.0/UDP",
        "SIP/2.0/UDP [2001:db8::10:5060",
        "SIP/2.0/UDP [pc33.example.com]:5060",
        "SIP/2.0/UDP [2001:db8::10]x",
        "SIP/2.0/UDP 192.0.2.10:port",
        "SIP/2.0/UDP 192.0.2.10:",
        "SIP/2.0/UDP 1:2:3",
        "SIP/2.0/UDP 192.0.2.10;received=somehost",
        "SIP/2.0/UDP 192.0.2.10;received=",
        "SIP/2.0/UDP 192.0.2.10 junk",
    ],
)
def test_malformed_top_via(via):
    error = error_of(message("BYE sip:a@b SIP/2.0", "Call-ID: x", f"Via: {via}"))
    assert error.message.startswith("message: line 3: malformed Via header")


# ------------------------------------------------------------------------------ From / To tags


@pytest.mark.parametrize(
    ("value", "tag"),
    [
        ("<sip:alice@example.com>;tag=real", "real"),
        ("<sip:alice@example.com;tag=trap>", None),  # a URI parameter, not the dialog tag
        ("<sip:alice@example.com;tag=trap>;tag=real", "real"),
        ("<sip:alice@example.com?tag=trap>;x=1;tag=real;y", "real"),
        ('"Alice ;tag=trap <x>" <sip:alice@example.com;tag=trap>;tag=real', "real"),
        ('"A \\"quoted\\" name" <sip:alice@example.com>;tag=q', "q"),
        ("Alice Smith <sip:alice@example.com>;tag=plain", "plain"),
        ("sip:alice@example.com;tag=addrspec", "addrspec"),
        ("sip:alice@example.com", None),
        ("sip:alice@example.com ; tag = spaced ", "spaced"),
        ("<sip:alice@example.com>;Tag=Mixed-Case.1", "Mixed-Case.1"),
        ("<tel:+15551234567>;tag=tel", "tel"),
    ],
)
def test_from_tag(value, tag):
    m = parse_sip(message("INVITE sip:b@c SIP/2.0", "Call-ID: x", f"From: {value}", f"To: {value}"))
    assert m.from_tag == m.to_tag == tag


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "no address"),
        ("<sip:alice@example.com;tag=1", "no closing '>'"),
        ('"Alice <sip:alice@example.com>;tag=1', "closing '\"'"),
        ('"Alice" sip:alice@example.com;tag=1', "followed by <URI>"),
        ("<>;tag=1", "empty <URI>"),
        ("<sip:alice@example.com>;tag=", "no value"),
        ("<sip:alice@example.com>;tag", "no value"),
        ("<sip:alice@example.com>;tag=1;tag=2", "more than one tag"),
        ('<sip:alice@example.com>;tag="q"', "cannot be quoted"),
        ("<sip:alice@example.com> junk;tag=1", "unexpected 'junk;tag=1'"),
        ("<sip:alice@example.com>;tag=a,b", "unexpected ',b'"),
        ("Alice sip:alice@example.com;tag=1", "not one URI"),
        ("Al;ce <sip:alice@example.com>;tag=1", "before <URI>"),
    ],
)
def test_malformed_from(value, problem):
    text = message("INVITE sip:b@c SIP/2.0", "Via: SIP/2.0/UDP 192.0.2.1", "Call-ID: x", f"From: {value}")
    error = error_of(text)
    assert error.message.startswith("message: line 4: malformed From header: ")
    assert problem in error.message


def test_malformed_to_names_to():
    error = error_of(message("SIP/2.0 200 OK", "Call-ID: x", "t: <sip:b@c"), source="paste.sip")
    assert error.message == "paste.sip: line 3: malformed To header: '<' has no closing '>'"


# ------------------------------------------------------------------------------ Content-Length


def test_content_length_smaller_cuts_the_body():
    text = message("SIP/2.0 200 OK", "Call-ID: x", "Content-Type: application/sdp", body=SDP,
                   length=len(SDP) - 2)
    m = parse_sip(text + "trailing junk from the next packet")
    assert m.body == SDP[:-2]
    assert not m.content_length_mismatch


def test_content_length_counts_utf8_bytes():
    body = "v=0\r\ns=Überweisung ☎\r\n"
    text = message("SIP/2.0 200 OK", "Call-ID: x", body=body)
    assert parse_sip(text + "\r\n").body == body
    assert parse_sip(text).body == body


def test_content_length_inside_a_character_is_refused():
    body = "v=0\r\ns=☎\r\n"
    text = message("SIP/2.0 200 OK", "Call-ID: x", "Content-Type: application/sdp", body=body, length=9)
    error = error_of(text)
    assert error.message == (
        "message: line 4: Content-Length 9 ends inside a multi-byte character of the body"
    )


def test_content_length_larger_keeps_the_body_and_flags_it():
    cut = SDP[: len(SDP) // 2]  # the capture stopped half way
    text = message("SIP/2.0 200 OK", "Call-ID: x", "Content-Type: application/sdp", body=cut,
                   length=len(SDP))
    m = parse_sip(text)
    assert m.body == cut
    assert m.content_length_mismatch


def test_body_without_content_length_runs_to_the_end():
    m = parse_sip(message("SIP/2.0 200 OK", "Call-ID: x", body=SDP + "\r\n\r\n", length=None))
    assert m.body == SDP + "\r\n\r\n"
    assert m.content_length_line is None and not m.content_length_mismatch


@pytest.mark.parametrize("value", ["", "abc", "-1", "1 2", "١٢"])
def test_malformed_content_length(value):
    error = error_of(message("SIP/2.0 200 OK", "Call-ID: x", f"l: {value}", length=None))
    assert error.message.startswith("message: line 3: malformed Content-Length header")


def test_absurd_content_length_is_an_input_error():
    error = error_of(message("SIP/2.0 200 OK", "Call-ID: x", length="9" * 5000))
    assert error.message.startswith("message: line 3: malformed Content-Length header")


# ------------------------------------------------------------------------------ bodies refused


def test_multipart_body_is_refused():
    body = (
        "--unique-boundary-1\r\nContent-Type: application/sdp\r\n\r\n" + SDP
        + "--unique-boundary-1\r\nContent-Type: application/isup\r\n\r\nxx\r\n--unique-boundary-1--\r\n"
    )
    text = message(
        "INVITE sip:bob@example.com SIP/2.0",
        "Call-ID: x",
        "Content-Type: multipart/mixed;boundary=unique-boundary-1",
        body=body,
    )
    error = error_of(text)
    assert error.message == (
        "message: line 3: the body is multipart/mixed: multipart SIP bodies are not supported yet"
    )
    assert "extract the application/sdp part" in error.hint


def test_other_body_type_is_refused():
    text = message("MESSAGE sip:bob@example.com SIP/2.0", "Call-ID: x", "Content-Type: text/plain",
                   body="hello")
    error = error_of(text)
    assert error.message == "message: line 3: the body is text/plain, not application/sdp"


def test_other_type_with_empty_body_is_fine():
    m = parse_sip(message("SIP/2.0 200 OK", "Call-ID: x", "Content-Type: text/plain", body="\r\n",
                          length=None))
    assert m.content_type == "text/plain" and m.body == "\r\n"


# ------------------------------------------------------------------------------ other errors


def test_missing_call_id():
    error = error_of(message("INVITE sip:bob@example.com SIP/2.0", "From: <sip:a@b>;tag=1", body=SDP))
    assert error.message == "message: no Call-ID header"
    assert error.hint


def test_not_sip():
    error = error_of("hello\r\n")
    assert error.message == "message: line 1: not a SIP request or status line"
    error = error_of("\n\nv=0\no=- 1 1 IN IP4 127.0.0.1\n", source="offer.txt")
    assert error.message == "offer.txt: line 3: not a SIP request or status line"
    assert "SDP" in error.hint
    assert error_of("").message.startswith("message: empty")
    assert error_of(b"INVITE").message.startswith("message: expected text")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "start"),
    [
        ("SIP/2.0 200 OK\r\n continued\r\nCall-ID: x\r\n\r\n", "message: line 2: a continuation line"),
        ("SIP/2.0 200 OK\r\nCall-ID: x\r\nno colon here\r\n\r\n", "message: line 3: not a header line"),
        ("SIP/2.0 200 OK\r\nCall-ID: x\r\nBad Name: y\r\n\r\n", "message: line 3: not a header line"),
        ("SIP/2.0 200 OK\r\nCall-ID: x\r\ni: y\r\n\r\n",
         "message: line 3: a second Call-ID header (the first is on line 2)"),
        ("SIP/2.0 200 OK\r\nCall-ID: x\r\nl: 0\r\nContent-Length: 0\r\n\r\n",
         "message: line 4: a second Content-Length header (the first is on line 3)"),
        ("SIP/2.0 200 OK\r\nCall-ID: a b\r\n\r\n", "message: line 2: malformed Call-ID header"),
        ("SIP/2.0 200 OK\r\nCall-ID:\r\n\r\n", "message: line 2: malformed Call-ID header: empty"),
        ("SIP/2.0 200 OK\r\nCall-ID: x\r\nCSeq: INVITE 1\r\n\r\n", "message: line 3: malformed CSeq"),
        ("SIP/2.0 200 OK\r\nCall-ID: x\r\nc: sdp\r\n\r\n", "message: line 3: malformed Content-Type"),
    ],
)
def test_header_errors(text, start):
    assert error_of(text).message.startswith(start)


def test_body_with_a_lone_surrogate_is_refused():
    error = error_of("SIP/2.0 200 OK\r\nCall-ID: x\r\n\r\nv=0\ud800")
    assert "not valid UTF-8" in error.message


def test_message_without_the_empty_line():
    m = parse_sip("SIP/2.0 180 Ringing\r\nCall-ID: x\r\nTo: <sip:b@c>;tag=t")
    assert (m.body, m.blank_line, m.to_tag) == ("", "", "t")
    assert with_body(m, "") == "SIP/2.0 180 Ringing\r\nCall-ID: x\r\nTo: <sip:b@c>;tag=t\r\nContent-Length: 0\r\n\r\n"


# ------------------------------------------------------------------------------ with_body


def test_with_body_replaces_body_and_content_length():
    m = parse_sip(INVITE)
    new = SDP.replace("192.0.2.10", "203.0.113.50").replace("49170", "35000")
    text = with_body(m, new)
    before, after = INVITE.split("\r\n"), text.split("\r\n")
    changed = [(a, b) for a, b in zip(before, after, strict=False) if a != b]
    assert changed[0] == (f"Content-Length: {len(SDP)}", f"Content-Length: {len(new)}")
    assert all(a.startswith(("o=", "c=", "m=")) for a, _ in changed[1:])
    head = text[: text.index("\r\n\r\n")]
    assert head == INVITE[: INVITE.index("\r\n\r\n")].replace(f"Length: {len(SDP)}", f"Length: {len(new)}")
    assert text.endswith("\r\n\r\n" + new)
    assert parse_sip(text).body == new


def test_with_body_counts_bytes_and_keeps_compact_name_and_place():
    text = message("SIP/2.0 200 OK", "l:  7 ", "i: x", "Content-Type: application/sdp",
                   body="v=0\r\n\r\n", length=None)
    m = parse_sip(text)
    assert m.body == "v=0\r\n\r\n"
    rebuilt = with_body(m, "v=0\r\ns=☎\r\n")
    assert rebuilt == "SIP/2.0 200 OK\r\nl:  12 \r\ni: x\r\nContent-Type: application/sdp\r\n\r\nv=0\r\ns=☎\r\n"


def test_with_body_adds_content_length_as_last_header():
    text = message("SIP/2.0 200 OK", "Call-ID: x", "Content-Type: application/sdp", body=SDP, length=None)
    rebuilt = with_body(parse_sip(text), SDP)
    assert rebuilt == text.replace(
        "application/sdp\r\n\r\n", f"application/sdp\r\nContent-Length: {len(SDP)}\r\n\r\n",
    )
    lf = with_body(parse_sip(text.replace("\r\n", "\n")), "")
    assert lf == "SIP/2.0 200 OK\nCall-ID: x\nContent-Type: application/sdp\nContent-Length: 0\n\n"


def test_with_body_keeps_a_folded_content_length_and_leading_zeros():
    text = "SIP/2.0 200 OK\r\nContent-Length:\r\n  003\r\nCall-ID: x\r\n\r\nv=0"
    m = parse_sip(text)
    assert with_body(m, "v=0") == text
    assert with_body(m, "v=0\r\n") == text.replace("003", "5")[:-3] + "v=0\r\n"


def test_with_body_is_identity_on_a_well_formed_message():
    for text in (INVITE, OK_200, INVITE.replace("\r\n", "\n").replace(f": {len(SDP)}", f": {len(SDP) - 7}")):
        m = parse_sip(text)
        assert with_body(m, m.body) == text
        assert parse_sip(with_body(m, m.body)) == m


def test_with_body_refuses_what_cannot_be_sent():
    m = parse_sip(INVITE)
    with pytest.raises(InputError, match="not valid UTF-8"):
        with_body(m, "v=0\ud800")
    with pytest.raises(InputError, match="must be text"):
        with_body(m, b"v=0")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ properties

TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
tokens = st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=16)
bodies = st.text(st.characters(blacklist_categories=("Cs",)), max_size=80)
line_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=30)

#: Fields that describe how the text was laid out and whether it was whole, not what it says.
LAYOUT_FIELDS = ("header_block", "blank_line", "content_length_line", "content_length_mismatch")


def meaning(m: SipMessage) -> dict[str, object]:
    return {k: v for k, v in dataclasses.asdict(m).items() if k not in LAYOUT_FIELDS}


@st.composite
def pasted_messages(draw):
    """(text, expected fields, how Content-Length was written) for a varied well-formed message."""
    ending = draw(st.sampled_from(["\r\n", "\n"]))

    def name(full: str, compact: str | None = None) -> str:
        return draw(st.sampled_from([full, full.lower(), full.upper()] + ([compact] if compact else [])))

    def fold() -> str:
        return draw(st.sampled_from(["", ending + " ", ending + "\t"]))

    method = draw(st.sampled_from(["INVITE", "ACK", "UPDATE", "PRACK", "BYE"]))
    is_request = draw(st.booleans())
    status = draw(st.integers(100, 699))
    start = f"{method} sip:bob@example.com SIP/2.0" if is_request else f"SIP/2.0 {status} {draw(line_text)}"

    sent_by, source = draw(st.sampled_from([
        ("192.0.2.10", "192.0.2.10"), ("192.0.2.10:5060", "192.0.2.10"),
        ("[2001:db8::1]:5062", "2001:db8::1"), ("proxy.example.net", None),
    ]))
    if draw(st.booleans()):
        source = draw(st.sampled_from(["198.51.100.7", "2001:db8::77"]))
        sent_by += f";received={source}"
    from_tag = draw(st.none() | tokens)
    to_tag = draw(st.none() | tokens)
    call_id = draw(tokens) + draw(st.sampled_from(["", "@pc33.example.com"]))

    def address(tag: str | None) -> str:
        trap = draw(st.sampled_from(["", ";tag=trap", ";transport=udp"]))
        display = draw(st.sampled_from(["", '"Alice" ', "Bob ", '"x;tag=y <z>" ']))
        return f"{display}<sip:user@example.com{trap}>{fold()};tag={tag}" if tag else f"{display}<sip:u@h{trap}>"

    body = draw(st.sampled_from(["", "v=0" + ending])) + draw(bodies)
    headers = [
        f"{name('Via', 'v')}: SIP/2.0/UDP {fold()}{sent_by};branch=z9hG4bK{draw(tokens)}",
        f"{name('From', 'f')}: {address(from_tag)}",
        f"{name('To', 't')}: {address(to_tag)}",
        f"{name('Call-ID', 'i')}:{fold()} {call_id}",
        f"{name('CSeq')}: {draw(st.integers(1, 2**31))} {method}",
        f"Subject: {draw(line_text)}{fold()}z{draw(line_text)}",
        f"X-Other: {draw(line_text)}",
    ]
    if body.strip() or draw(st.booleans()):
        headers.append(f"{name('Content-Type', 'c')}: application/sdp" + draw(st.sampled_from(["", ";x=1"])))
    length_mode = draw(st.sampled_from(["exact", "absent", "smaller", "larger"]))
    size = len(body.encode())
    tail = ""
    if length_mode != "absent":
        length = size + draw(st.integers(1, 40)) if length_mode == "larger" else size
        headers.append(f"{name('Content-Length', 'l')}: {length}")
        if length_mode == "smaller":
            tail = draw(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=10))
    headers = draw(st.permutations(headers))
    lead = draw(st.sampled_from(["", ending, ending + ending]))
    text = lead + start + ending + ending.join(headers) + ending + ending + body + tail
    expected = {
        "is_request": is_request,
        "method": method,
        "status": None if is_request else status,
        "call_id": call_id,
        "from_tag": from_tag,
        "to_tag": to_tag,
        "cseq_method": method,
        "top_via_source": source,
        "body": body,
        "content_length_mismatch": length_mode == "larger",
        "line_ending": ending,
    }
    return text, expected, length_mode


@settings(max_examples=300)
@given(pasted_messages())
def test_generated_messages_parse_and_round_trip(case):
    text, expected, length_mode = case
    assert looks_like_sip(text)
    m = parse_sip(text)
    assert {k: getattr(m, k) for k in expected} == expected

    rebuilt = with_body(m, m.body)
    again = parse_sip(rebuilt)
    if length_mode in ("exact", "smaller"):
        # The text was a whole message: nothing but a trailing cut changes.
        assert again == m
        assert rebuilt == m.header_block + m.blank_line + m.body
        if length_mode == "exact":
            assert rebuilt == text
    else:
        # Content-Length was added or corrected: what the message says is unchanged, and the
        # rebuilt text is a fixed point.
        assert meaning(again) == meaning(m)
        assert not again.content_length_mismatch
        assert with_body(again, again.body) == rebuilt


@settings(max_examples=200)
@given(pasted_messages(), bodies)
def test_with_body_changes_only_body_and_content_length(case, new_body):
    text, _, _ = case
    m = parse_sip(text)
    rebuilt = with_body(m, new_body)
    again = parse_sip(rebuilt)
    assert again.body == new_body
    assert not again.content_length_mismatch
    assert meaning(again) | {"body": m.body} == meaning(m)
    old_lines = m.header_block.split("\n")
    new_lines = again.header_block.split("\n")
    assert again.content_length_line is not None
    assert f"{len(new_body.encode())}" in new_lines[again.content_length_line]
    if m.content_length_line is not None:
        assert again.content_length_line == m.content_length_line
        new_lines = new_lines[: again.content_length_line] + new_lines[again.content_length_line + 1:]
        old_lines = old_lines[: m.content_length_line] + old_lines[m.content_length_line + 1:]
        assert new_lines == old_lines
    else:
        assert new_lines[: len(old_lines) - 1] == old_lines[:-1]


FRAGMENTS = [
    "INVITE sip:a@b SIP/2.0", "ACK sip:a@b SIP/2.0", "SIP/2.0 200 OK", "\r\n", "\n", "\r", " ", "\t",
    "Via: ", "v:", "SIP/2.0/UDP ", "[::1]", "[2001:db8::1]:5060", "1.2.3.4", ":5060", ";received=",
    ";branch=z9", ",", "From: ", "t:", "<sip:x@y", ">", ";tag=", "tag", "=", '"', "\\", "Call-ID: ",
    "i: c1", "x", "CSeq: 1 INVITE", "l: ", "0", "5", "99999", "Content-Type: ", "c: ",
    "multipart/mixed", "application/sdp", "text/plain", "v=0", "é", "☎", ";", ":",
]


START_LINES = ["INVITE sip:a@b SIP/2.0", "ACK sip:a@b SIP/2.0", "SIP/2.0 200 OK", "SIP/2.0 180", "v=0"]
HEADER_NAMES = [
    "Via:", "v:", "From:", "f:", "To:", "t:", "Call-ID:", "i:", "CSeq:", "Content-Length:", "l:",
    "Content-Type:", "c:", "X-Other:", " ", "\t", "Bad Name:", "",
]
VALUE_PIECES = [
    " ", "\t", "\r", "SIP/2.0/UDP ", "1.2.3.4", "host", "[::1]", "[2001:db8::1]:5060", "::1", ":5060",
    ";received=", ";branch=z9", ",", "<sip:x@y", "<", ">", ";tag=", ";TAG=a", "tag", "=", '"', "\\",
    "x", "1 INVITE", "0", "5", "99999", "multipart/mixed", "application/sdp", "text/plain", "é", "☎",
    ";", ":",
]
COMPACT = {"v:": "via:", "f:": "from:", "t:": "to:", "i:": "call-id:", "l:": "content-length:", "c:": "content-type:"}
#: Mostly one header of each kind (a second one is refused, which the fuzzing need not hit often).
header_lines = st.lists(
    st.tuples(st.sampled_from(HEADER_NAMES), st.lists(st.sampled_from(VALUE_PIECES), max_size=5)),
    max_size=10,
    unique_by=lambda header: COMPACT.get(header[0].lower(), header[0].lower()),
).map(lambda headers: [name + "".join(pieces) for name, pieces in headers])
#: Messages built line by line from pieces, so that the fuzzing reaches every header reader.
sip_like = st.builds(
    lambda lead, start, lines, ending, cut, blank, body: (
        lead + start + ending + ending.join(lines if "i:" in "".join(lines) else [*lines, "i: call"])
        + ending + blank + body
    )[: None if cut is None else -cut],
    st.sampled_from(["", "\n", "\r\n \r\n"]),
    st.sampled_from(START_LINES),
    header_lines,
    st.sampled_from(["\r\n", "\n"]),
    st.none() | st.integers(1, 30),
    st.sampled_from(["", "\r\n", "\n", " \n"]),
    st.text(max_size=20),
)


@settings(max_examples=1000)
@given(st.one_of(st.text(), st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join), sip_like))
def test_arbitrary_text_raises_only_input_error(text):
    try:
        m = parse_sip(text)
    except InputError as error:
        assert error.message.startswith("message: ")
        assert looks_like_sip(text) or "request or status line" in error.message or "empty" in error.message
        return
    assert looks_like_sip(text)
    # Whatever parsed can be rebuilt, and the rebuilt text is stable.
    again = parse_sip(with_body(m, m.body))
    assert meaning(again) == meaning(m)
    assert with_body(again, again.body) == with_body(m, m.body)
