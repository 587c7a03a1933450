"""The one renderer: one-shot results, event streams, and the plain table style."""

from __future__ import annotations

import io
import json
import os
import re
import threading

from rtppctl.cli.output import Column, Diff, Output, Table, Verbatim


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as a pty would."""

    def isatty(self) -> bool:
        return True


def test_emit_prints_one_json_object_or_the_views_never_both():
    data = {"node": "udp:127.0.0.1:1", "ok": True}
    views = (Table([Column("a")], [[1]]), "a line", Verbatim("v=0\n"), Diff("a\n", "b\n"))
    as_json = io.StringIO()
    Output(json_mode=True, stdout=as_json).emit(data, *views)
    assert as_json.getvalue().count("\n") == 1 and json.loads(as_json.getvalue()) == data
    plain = io.StringIO()
    Output(stdout=plain).emit(data, *views)
    text = plain.getvalue()
    assert "node" not in text and "a line\n" in text and "v=0\n" in text and "-a\n+b\n" in text


def test_a_stream_in_json_mode_is_ndjson_flushed_per_event():
    read_end, write_end = os.pipe()
    reader = os.fdopen(read_end, "r")
    writer = os.fdopen(write_end, "w")
    out = Output(json_mode=True, stdout=writer)
    seen: list[dict] = []
    with out.stream([Column("n")]) as stream:
        for n in range(3):
            stream.event({"n": n}, [n])
            # Readable at once, while the stream is still open: each event was flushed.
            line: list[str] = []
            thread = threading.Thread(target=lambda: line.append(reader.readline()))
            thread.start()
            thread.join(5)
            assert line, f"event {n} was not flushed"
            seen.append(json.loads(line[0]))
        stream.close({"events": 3})
    writer.close()
    assert seen == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert json.loads(reader.readline()) == {"events": 3}


def test_a_stream_in_a_pipe_is_a_header_then_one_plain_line_per_event():
    sink = io.StringIO()
    out = Output(stdout=sink)
    with out.stream([Column("relay", keep=True), Column("count", "right")], title="events") as stream:
        stream.event({}, ["udp:127.0.0.1:22222", 5])
        stream.event({}, ["tcp:10.0.0.1:22222", 12345])
        stream.close(None, "2 events")
    lines = sink.getvalue().splitlines()
    assert lines[0] == "events"
    assert lines[1].split() == ["relay", "count"]
    assert lines[2].split() == ["udp:127.0.0.1:22222", "5"]
    assert lines[3].split() == ["tcp:10.0.0.1:22222", "12345"]
    assert lines[4] == "2 events"
    assert "\x1b" not in sink.getvalue()


def test_a_stream_on_a_terminal_is_a_live_table_holding_every_row():
    screen = Terminal()
    out = Output(stdout=screen, color=False)
    with out.stream([Column("relay", keep=True), Column("digit")]) as stream:
        for digit in "123":
            stream.event({}, ["udp:127.0.0.1:22222", digit])
        stream.close()
    text = screen.getvalue()
    final = text[text.rfind("relay"):]  # the last refresh of the table
    assert final.count("udp:127.0.0.1:22222") == 3
    assert "─" in text and "│" not in text


def test_tables_keep_urls_and_numbers_whole_at_80_columns():
    screen = Terminal()
    out = Output(stdout=screen, color=False)
    out.console.width = 80
    long_text = "a long explanation that has to wrap somewhere " * 4
    out.emit({}, Table([Column("relay", keep=True), Column("packets", "right", keep=True), Column("note")],
                       [["udp6:2001:db8:ffff:ffff:ffff:ffff:ffff:1:22222", 123456789012, long_text]]))
    lines = re.sub(r"\x1b\[[0-9;]*m", "", screen.getvalue()).splitlines()
    assert any("udp6:2001:db8:ffff:ffff:ffff:ffff:ffff:1:22222" in line for line in lines)
    assert any("123456789012" in line for line in lines)
    assert all(len(line.rstrip()) <= 80 for line in lines)


def test_cells_are_data_never_markup():
    screen = Terminal()
    Output(stdout=screen, color=False).emit({}, Table([Column("value")], [["[bold]x[/bold] [1, 2]"]]))
    assert "[bold]x[/bold] [1, 2]" in screen.getvalue()


def test_the_fast_json_writer_is_exactly_json_dumps():
    import json

    from hypothesis import given
    from hypothesis import strategies as st

    from rtppctl.cli.output import _dumps

    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
    values = scalars | st.lists(scalars, max_size=3) | st.dictionaries(st.text(max_size=5), scalars, max_size=3)

    @given(st.dictionaries(st.text(max_size=10), values, max_size=12))
    def check(data):
        assert _dumps(data) == json.dumps(data)

    check()
