"""Wire framing: bytes in, values out, no sockets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtppctl.proto.framing import (
    CookieSequence,
    datagram_reply_prefix,
    encode_datagram,
    encode_oneshot,
    encode_stream,
    reply_length,
)

INFO = (
    b"sessions created: 6\nactive sessions: 5\nactive streams: 10\n"
    b"packets received: 0\npackets transmitted: 0\n"
)
INFO_LOAD = INFO + b"average load: 0.000000\n"


def test_encode_datagram_has_cookie_and_no_newline() -> None:
    assert encode_datagram("13417_1234_1", "V") == b"13417_1234_1 V"
    assert encode_datagram("c", "U call 127.0.0.1 5000 ft;1") == b"c U call 127.0.0.1 5000 ft;1"


def test_encode_stream_and_oneshot() -> None:
    assert encode_stream("VF 20050322") == b"VF 20050322\n"
    assert encode_oneshot("VF 20050322") == b"VF 20050322"


@pytest.mark.parametrize(
    ("reply", "body"),
    [
        (b"13417_1234_1 20040107\n", b"20040107\n"),
        (b"13417_1234_1 41708 127.0.0.1\n", b"41708 127.0.0.1\n"),
        # Only the one separating space belongs to the framing; G with no names answers an empty line.
        (b"13417_1234_1 \n", b"\n"),
        (b"13417_1234_1  two spaces\n", b" two spaces\n"),
        (b"13417_1234_1 " + INFO, INFO),
    ],
)
def test_reply_prefix_matches_the_echoed_cookie(reply: bytes, body: bytes) -> None:
    prefix = datagram_reply_prefix("13417_1234_1")
    assert reply.startswith(prefix) and reply[len(prefix):] == body


@pytest.mark.parametrize("other", [b"13417_1234_10 1\n", b"13417_1234_ 1\n", b"V E5\n", b"13417_1234_1", b""])
def test_reply_prefix_does_not_match_other_cookies_or_garbage(other: bytes) -> None:
    assert not other.startswith(datagram_reply_prefix("13417_1234_1"))


def test_prefix_round_trips_encode() -> None:
    packet = encode_datagram("99_1000_7", "V")
    assert packet.startswith(datagram_reply_prefix("99_1000_7"))


@pytest.mark.parametrize(
    ("command", "buffer", "expected"),
    [
        ("V", b"", None),
        ("V", b"2004", None),
        ("V", b"20040107\n", 9),
        ("VF 20050322", b"1\n", 2),
        ("G", b"\n", 1),
        ("U c 127.0.0.1 5000 ft;1", b"41208 127.0.0.1\n", 16),
        # Pipelined replies: only the first line belongs to this command.
        ("V", b"20040107\n1\n", 9),
        ("D c ft", b"E50\n", 4),
    ],
)
def test_reply_length_one_line(command: str, buffer: bytes, expected: int | None) -> None:
    assert reply_length(command, buffer) == expected


@pytest.mark.parametrize("command", ["I", "i", "Ib", " I"])
def test_reply_length_info_needs_the_last_line(command: str) -> None:
    for cut in range(len(INFO)):
        assert reply_length(command, INFO[:cut]) is None, INFO[:cut]
    assert reply_length(command, INFO) == len(INFO)
    assert reply_length(command, INFO + b"20040107\n") == len(INFO)


@pytest.mark.parametrize("command", ["Il", "Ibl", "IL"])
def test_reply_length_info_with_load_ends_at_average_load(command: str) -> None:
    for cut in range(len(INFO_LOAD)):
        assert reply_length(command, INFO_LOAD[:cut]) is None, INFO_LOAD[:cut]
    assert reply_length(command, INFO_LOAD) == len(INFO_LOAD)


@pytest.mark.parametrize("command", ["I", "Il", "Ix"])
def test_reply_length_info_error_is_one_line(command: str) -> None:
    assert reply_length(command, b"E18") is None
    assert reply_length(command, b"E18\n") == 4
    assert reply_length(command, b"E18\nsessions created: 1\n") == 4


def test_reply_length_info_unexpected_first_line_does_not_hang() -> None:
    assert reply_length("I", b"something else\n") == len(b"something else\n")


def test_reply_length_one_line_command_whose_reply_looks_like_info() -> None:
    assert reply_length("V", INFO) == len(b"sessions created: 6\n")


@given(st.text(max_size=20), st.binary(max_size=300))
def test_reply_length_never_raises_nor_overshoots(command: str, buffer: bytes) -> None:
    length = reply_length(command, buffer)
    assert length is None or 0 < length <= len(buffer)
    if length is not None:
        assert buffer[length - 1 : length] == b"\n"


@given(
    st.sampled_from(["I", "Il", "V", "G"]),
    st.lists(st.binary(min_size=0, max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=8),
)
def test_reply_length_on_generated_lines(command: str, lines: list[bytes]) -> None:
    buffer = b"sessions created: 1\n" + b"\n".join(lines)
    length = reply_length(command, buffer)
    assert length is None or length <= len(buffer)


def test_cookie_sequence_counts_from_one() -> None:
    cookies = CookieSequence("4242_1234")
    assert [cookies.next() for _ in range(3)] == ["4242_1234_1", "4242_1234_2", "4242_1234_3"]


def test_cookie_sequences_are_independent_and_unique() -> None:
    first, second = CookieSequence("a"), CookieSequence("b")
    drawn = [first.next() for _ in range(1000)] + [second.next() for _ in range(1000)]
    assert len(set(drawn)) == 2000
    assert first.prefix == "a"


@pytest.mark.parametrize("prefix", ["", "a b", "tab\there", "nl\n"])
def test_cookie_prefix_must_be_one_token(prefix: str) -> None:
    with pytest.raises(ValueError):
        CookieSequence(prefix)
