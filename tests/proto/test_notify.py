"""The notification side: where notifications go (the socket), and the parser: lines as the relay
sends them, in any pieces, and any bytes at all."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rtppctl.proto.errors import InputError
from rtppctl.proto.notify import (
    Dtmf, Ignored, NotifyParser, NotifySocket, Overlong, Timeout, Unknown, dialog_id, parse_line, parse_notify_socket,
    reverse_hex_value,
)
from rtppctl.proto.offer import reverse_hex


def test_lines_seen_on_a_real_listener():
    # docs/protocol.md §9.2 and §17: raw bytes as a real relay sent them.
    events = NotifyParser().feed(b"Ta1.b2\nTAbc d\nI\nDdff.ee 5 10 640 0\nDdff.ee # 7 640 1\nDcabc@host 9 10 800 1\n")
    assert events[0] == Timeout("Ta1.b2", (0x1A, 0x2B), b"Ta1.b2")
    assert events[1] == Timeout("TAbc d", None, b"TAbc d")
    assert isinstance(events[2], Ignored)
    assert events[3] == Dtmf("Ddff.ee", "5", 10, 640, 0, "ff.ee", False, b"Ddff.ee 5 10 640 0")
    assert (events[4].digit, events[4].stream) == ("#", 1)
    assert (events[5].id, events[5].is_callid) == ("abc@host", True)


def test_a_dtmf_tag_with_spaces_is_split_from_the_right():
    event = parse_line(b"Dcmy call id@host 7 12 960 0")
    assert isinstance(event, Dtmf)
    assert (event.id, event.digit, event.volume, event.duration, event.stream) == ("my call id@host", "7", 12, 960, 0)


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_the_modules_dialog_ids_decode(entry, ident):
    text = reverse_hex(entry) + "." + reverse_hex(ident)
    assert dialog_id(text) == (entry, ident)
    assert reverse_hex_value(reverse_hex(entry)) == entry


def test_odd_lines_are_unknown_not_errors():
    assert isinstance(parse_line(b""), Unknown)
    assert isinstance(parse_line(b"D5 x"), Unknown)
    assert isinstance(parse_line(b"Dcabc 5 10 640 7"), Unknown)  # stream is 0 or 1


def test_a_line_is_told_by_its_first_byte_as_the_module_tells_it():
    # OpenSIPS modules/rtpproxy/notification_process.c, notification_handler(): a switch on the
    # first character, 'I' ignored, 'T' ends a dialog, 'D' raises E_RTPPROXY_DTMF, and the default
    # case only warns "Unhandled command". A line that does not start with T is no timeout.
    for line in (b"abc", b"tlower", b"1.2", b" Tspace-first", b"\x00Tnul-first", b"X" * 40):
        event = parse_line(line)
        assert isinstance(event, Unknown) and event.raw == line, line
    # The module ignores every line that starts with I, not only "I".
    assert isinstance(parse_line(b"Ixyz"), Ignored)
    # Any T line is a timeout, even one whose tag is not the module's T<did>.
    assert parse_line(b"T") == Timeout("T", None, b"T")
    assert parse_line(b"Tnot a did") == Timeout("Tnot a did", None, b"Tnot a did")


# No line feed inside a line; everything else, NUL, CR, DEL and bytes that are not UTF-8 included.
any_line = st.binary(max_size=80).map(lambda data: data.replace(b"\n", b""))


@given(any_line)
@example(b"T\x00")
@example(b"\x00T")
@example(b"Dc\x00 5 10 800 1")
@example(b"T\xff\xfe\r")
def test_any_line_of_any_bytes_is_one_event_kept_byte_for_byte(line):
    event = parse_line(line)
    assert event.raw == line
    first = line[:1]
    if first == b"T":
        assert isinstance(event, Timeout) and event.tag == line.decode("utf-8", "replace")
    elif first == b"I":
        assert isinstance(event, Ignored)
    elif first == b"D":
        assert isinstance(event, (Dtmf, Unknown))
    else:
        assert isinstance(event, Unknown)  # never a timeout, whatever follows


@given(st.lists(any_line, min_size=1, max_size=20), st.lists(st.integers(0, 2000), max_size=12))
def test_a_stream_of_any_lines_in_any_pieces_loses_nothing(lines, cuts):
    # A NUL, a lone CR or an invalid UTF-8 sequence never merges, splits or drops a line.
    lines = [line.rstrip(b"\r") for line in lines]  # a CR before the LF is part of the line end
    data = b"".join(line + b"\n" for line in lines)
    parser = NotifyParser()
    events = []
    for start, end in zip([0, *sorted(cuts)], [*sorted(cuts), len(data)]):
        events += parser.feed(data[start:end])
    events += parser.close()
    assert [event.raw for event in events] == lines


STREAM = b"Ta1.b2\nDcx 1 10 800 0\r\nI\nTagain\n" * 3


@given(st.lists(st.integers(0, len(STREAM)), max_size=12))
def test_any_split_gives_the_same_events(cuts):
    whole = NotifyParser().feed(STREAM)
    parser = NotifyParser()
    pieces = []
    for start, end in zip([0, *sorted(cuts)], [*sorted(cuts), len(STREAM)]):
        pieces += parser.feed(STREAM[start:end])
    assert pieces == whole and parser.buffered == 0 and len(whole) == 12


@given(st.binary(max_size=3000), st.lists(st.integers(1, 500), max_size=10))
def test_any_bytes_in_any_pieces_never_raise_and_stay_bounded(data, sizes):
    parser = NotifyParser(max_line=256)
    offset = 0
    for size in [*sizes, len(data)]:
        parser.feed(data[offset:offset + size])
        offset += size
        assert parser.buffered <= 256
    parser.close()


def test_an_endless_line_is_cut_off_and_the_next_line_still_parses():
    parser = NotifyParser(max_line=100)
    events = []
    for _ in range(50):
        events += parser.feed(b"x" * 1000)
    assert events == [] and parser.buffered == 0
    events += parser.feed(b"tail\nTnext\n")
    assert isinstance(events[0], Overlong) and events[0].skipped == 50_004
    assert events[1] == Timeout("Tnext", None, b"Tnext")


def test_a_line_cut_off_by_the_end_of_the_connection_is_reported():
    parser = NotifyParser()
    parser.feed(b"Tpart")
    [event] = parser.close()
    assert isinstance(event, Unknown) and event.raw == b"Tpart"


# -- the DTMF keys ---------------------------------------------------------------------------------


def test_a_dtmf_line_takes_exactly_the_rfc_4733_keys():
    # The notification's digit is catch_dtmf's name for events 0-15: the same keys, in the same
    # order, as the RTP side (proto.rtp) sends and reads them.
    from rtppctl.proto.rtp import event_to_digit

    for event in range(16):
        digit = event_to_digit(event)
        line = parse_line(f"Dcx {digit} 10 800 0".encode())
        assert isinstance(line, Dtmf) and line.digit == digit
    for other in ("E", "F", "a", "10", "*#", "+"):
        assert isinstance(parse_line(f"Dcx {other} 10 800 0".encode()), Unknown), other


# -- the socket ------------------------------------------------------------------------------------


def test_the_notify_socket_forms():
    assert parse_notify_socket("tcp:127.0.0.1:9999") == NotifySocket("tcp", "127.0.0.1", 9999)
    assert parse_notify_socket("unix:/run/n.sock") == NotifySocket("unix", path="/run/n.sock")
    assert parse_notify_socket("/run/n.sock") == NotifySocket("unix", path="/run/n.sock")
    assert parse_notify_socket("tcp:10.0.0.1:65535").text == "tcp:10.0.0.1:65535"
    assert parse_notify_socket("/run/n.sock").text == "unix:/run/n.sock"


@pytest.mark.parametrize(("text", "says"), [
    ("tcp:notify.example.net:9999", "tcp:IPv4:PORT"),  # the module binds an IPv4 literal (inet_addr)
    ("tcp:::1:9999", "tcp:IPv4:PORT"),
    ("tcp:10.0.0.1", "tcp:IPv4:PORT"),
    ("tcp:10.0.0.1:0", "1..65535"),
    ("tcp:10.0.0.1:65536", "1..65535"),
    ("tcp:10.0.0.1:+99", "1..65535"),
    ("tcp:10.0.0.1:\u00b2", "1..65535"),  # a digit to str.isdigit(), not to the module
    ("relative.sock", "unix:/PATH"),
    ("unix:relative.sock", "unix:/PATH"),
    ("/tmp/a b", "unix:/PATH"),
    ("", "unix:/PATH"),
])
def test_a_notify_socket_the_module_could_not_bind_is_refused(text, says):
    with pytest.raises(InputError, match=re.escape(says)):
        parse_notify_socket(text)


@given(st.one_of(st.text(max_size=30), st.builds(lambda h, p: f"tcp:{h}:{p}", st.text(max_size=12), st.text(max_size=6)),
                 st.builds("tcp:127.0.0.1:{}".format, st.integers(-5, 70000))))
def test_the_config_key_and_the_listener_take_the_same_sockets(text):
    # One grammar: rtpp_notify_socket loads exactly when `listen` can bind what it names.
    from pathlib import Path

    from rtppctl.config import config_from_mapping
    from rtppctl.proto.errors import ConfigError

    try:
        parse_notify_socket(text)
        listener_takes = True
    except InputError:
        listener_takes = False
    try:
        config_from_mapping({"rtpp_notify_socket": text}, Path("c.toml"))
        config_takes = True
    except ConfigError:
        config_takes = False
    assert config_takes == listener_takes
