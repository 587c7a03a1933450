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


# -- tables at any width: the shape changes, a word never breaks (issue 14, section 8) -------------

#: Rich's own codes on a terminal: SGR, and the live view's cursor moves.
RICH_CODES = re.compile(r"\x1b\[(?:[0-9;]*m|\?25[lh]|2K|1A)|\r(?=\x1b\[2K)")


def on_terminal(width: int, height: int = 25) -> tuple[Output, Terminal]:
    screen = Terminal()
    out = Output(stdout=screen, color=False)
    out.console.width = width
    out.console.height = height
    return out, screen


def test_a_table_that_cannot_fit_becomes_records_with_every_column():
    out, screen = on_terminal(40)
    url = "unix:/" + "p" * 60
    out.emit({}, Table([Column("relay", keep=True), Column("weight", "right", keep=True), Column("state"), Column("")],
                       [[url, 4294967295, "disabled, probed again in 60 s", "███"], ["udp:10.0.0.1:5", 1, None, ""]],
                       title="set 0 (default)", caption="2 relays"))
    assert RICH_CODES.sub("", screen.getvalue()).splitlines() == [
        "set 0 (default)",
        f"relay:  {url}",  # wider than the screen: whole, for the terminal to wrap
        "weight: 4294967295",
        "state:  disabled, probed again in 60 s",
        "        ███",  # a column without a header: its value, lined up
        "",
        "relay:  udp:10.0.0.1:5",
        "weight: 1",
        "state:  -",  # and no line for the empty decoration
        "",
        "2 relays",
    ]


def test_a_record_value_wraps_between_words_under_itself():
    out, screen = on_terminal(30)
    out.emit({}, Table([Column("relay", keep=True), Column("error")],
                       [["udp:192.0.2.1:22222" * 2, "udp:192.0.2.1:22222 refused the request: nothing listens"]]))
    assert RICH_CODES.sub("", screen.getvalue()).splitlines() == [
        "relay: " + "udp:192.0.2.1:22222" * 2,
        "error: udp:192.0.2.1:22222",
        "       refused the request:",
        "       nothing listens",
    ]


def test_a_table_that_fits_wraps_only_between_words_and_keeps_its_kept_columns_whole():
    out, screen = on_terminal(45)  # 20 + 9 + the state's 12 + two gaps of 2
    out.emit({}, Table([Column("relay", keep=True), Column("rtt", "right", keep=True), Column("state")],
                       [["udp:192.0.2.10:22222", 12345.678, "disabled, probed again in 60 s"]]))
    lines = RICH_CODES.sub("", screen.getvalue()).splitlines()
    assert lines[0].split() == ["relay", "rtt", "state"] and set(lines[1].strip()) == {"─"}
    assert lines[2].split() == ["udp:192.0.2.10:22222", "12345.678", "disabled,"]
    assert [line.strip() for line in lines[3:]] == ["probed again", "in 60 s"]
    assert all(len(line.rstrip()) <= 45 for line in lines)
    out, screen = on_terminal(40)  # two columns short of the state's longest word: records
    out.emit({}, Table([Column("relay", keep=True), Column("rtt", "right", keep=True), Column("state")],
                       [["udp:192.0.2.10:22222", 12345.678, "disabled, probed again in 60 s"]]))
    assert RICH_CODES.sub("", screen.getvalue()).splitlines()[0] == "relay: udp:192.0.2.10:22222"


def test_a_crop_column_is_cut_at_the_edge_instead_of_changing_the_shape():
    out, screen = on_terminal(40)
    out.emit({}, Table([Column("relay", keep=True), Column("share", "right", keep=True), Column("", crop=True)],
                       [["udp:192.0.2.10:22222", "75.0%", "█" * 30], ["udp:192.0.2.11:22222", "25.0%", "█" * 10]]))
    lines = RICH_CODES.sub("", screen.getvalue()).splitlines()
    assert lines[2].startswith("udp:192.0.2.10:22222") and lines[2].rstrip().endswith("█…")
    assert lines[3].rstrip().endswith("█" * 10) and all(len(line.rstrip()) <= 40 for line in lines)
    piped = io.StringIO()
    Output(stdout=piped).emit({}, Table([Column("relay"), Column("", crop=True)], [["udp:192.0.2.10:22222", "█" * 30]]))
    assert piped.getvalue().splitlines()[1].endswith("█" * 30)  # a pipe has no edge


def test_every_table_at_any_width_keeps_its_words_whole_and_its_columns():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    words = st.text("abc:/.0123456789", min_size=1, max_size=30)
    cells = st.lists(words, min_size=1, max_size=3).map(" ".join)

    headers = ["relay", "rtt ms", "state", "call or dialog", "#", "weight", "advertised"]

    @settings(max_examples=60)
    @given(st.lists(st.tuples(st.sampled_from(headers), st.booleans()), min_size=1, max_size=7,
                    unique_by=lambda spec: spec[0]),
           st.lists(st.lists(cells, min_size=7, max_size=7), min_size=1, max_size=3),
           st.integers(20, 120))
    def check(spec, rows, width):
        columns = [Column(header, keep=keep) for header, keep in spec]
        rows = [row[: len(columns)] for row in rows]
        out, screen = on_terminal(width)
        out.emit({}, Table(columns, rows))
        lines = RICH_CODES.sub("", screen.getvalue()).splitlines()
        tokens = {token for line in lines for token in line.split()}
        for row in rows:
            for column, cell in zip(columns, row):
                if column.keep:
                    assert any(cell in line for line in lines), (cell, lines)
                assert set(cell.split()) <= tokens, (cell, lines)  # no word broken
        if any(set(line.strip()) == {"─"} for line in lines):  # a table: every header, within the width
            assert all(len(line.rstrip()) <= width for line in lines)
            assert {word for column in columns for word in column.header.split()} <= tokens
        else:  # records: every key for every row
            for column in columns:
                assert sum(line.startswith(f"{column.header}:") for line in lines) == len(rows)
            keys = tuple(f"{column.header}:" for column in columns)
            kept = tuple(f"{column.header}:" for column in columns if column.keep)
            for line in lines:
                if len(line) > width and not line.startswith(kept):  # a kept value is one line, and
                    rest = line.split(":", 1)[1] if line.startswith(keys) else line  # any other is
                    assert len(rest.split()) == 1, line  # wider only when it is a single word

    check()


def test_a_plain_table_is_aligned_by_what_the_terminal_shows_and_never_wrapped():
    sink = io.StringIO()
    long = "unix:/" + "p" * 200
    Output(stdout=sink).emit({}, Table([Column("name"), Column("n", "right")], [["日本語", 1], ["abc", 22], [long, 3]]))
    lines = sink.getvalue().splitlines()
    assert len(lines) == 4 and lines[3].startswith(long)  # one line per row, whatever its width
    # The CJK characters take two columns each: their row ends where the others do.
    assert lines[1] == "日本語" + " " * (len(long) - 6) + "   1"
    assert lines[2] == "abc" + " " * (len(long) - 3) + "  22"


def test_a_stream_in_a_pipe_keeps_its_columns_where_the_header_put_them_and_flushes_each_line():
    read_end, write_end = os.pipe()
    reader = os.fdopen(read_end, "r")
    writer = os.fdopen(write_end, "w")
    columns = [Column("time", width=12), Column("call", width=10), Column("digit"), Column("n", "right")]

    def next_line() -> str:
        line: list[str] = []
        thread = threading.Thread(target=lambda: line.append(reader.readline()))
        thread.start()
        thread.join(5)
        assert line, "not flushed"
        return line[0].rstrip("\n")

    with Output(stdout=writer).stream(columns) as stream:
        stream.event({}, ["12:00:00.000", "short", "5", 1])
        header, first = next_line(), next_line()
        stream.event({}, ["12:00:00.001", "c" * 25, "#", 22])
        wide = next_line()
        stream.event({}, ["12:00:00.002", "x", None, 333])
        after = next_line()
    writer.close()
    starts = [header.index(name) for name in ("call", "digit")]
    assert starts == [14, 26]  # time 12 wide, call 10 (its width), then two spaces each
    assert [first.index("short"), first.index("5")] == starts
    assert [after.index("x"), after.index("-")] == starts  # aligned again after the wide line
    assert wide.index("#") == wide.index("c" * 25) + 25 + 2  # pushed, as little as it must be
    ends = {len(line) for line in (header, first, after)}
    assert len(ends) == 1  # right-aligned numbers end under the header's end


def test_a_live_stream_shows_the_newest_rows_that_fit_the_screen():
    for width, per_row in ((80, 1), (20, 3)):  # a table; records of two keys and a blank line
        out, screen = on_terminal(width, height=24)
        with out.stream([Column("n", keep=True), Column("what")]) as stream:
            for n in range(100):
                stream.event({}, [f"row-{n:03d}", "event"])
            frame_start = len(screen.getvalue())
            stream.flush()
            last = RICH_CODES.sub("", screen.getvalue()[frame_start:])
        assert "row-099" in last and "row-000" not in last
        assert len(last.rstrip("\n").splitlines()) <= 24  # nothing left for the terminal to scroll
        assert last.count("row-") >= (24 - 3) // per_row - 1
