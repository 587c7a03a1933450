"""The notification parser: lines as the relay sends them, in any pieces, and any bytes at all."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rtppctl.proto.notify import (
    Dtmf, Ignored, NotifyParser, Overlong, Timeout, Unknown, dialog_id, parse_line, reverse_hex_value,
)
from rtppctl.proto.offer import reverse_hex


def test_lines_seen_on_a_real_listener():
    # protocol.md §9.2 and §17: raw bytes as a real relay sent them.
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
