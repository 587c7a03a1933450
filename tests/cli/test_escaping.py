"""Text from outside never reaches the terminal raw (issue 14, section 3).

Every renderer of `cli/output.py` is given the same hostile text: an OSC that retitles the
terminal, a CSI that clears the screen, a BEL, a C1 CSI, a right-to-left override, CR/LF, a byte
that was not UTF-8, Rich markup and an emoji code. What people see has none of it acting; what is a
document (Verbatim, `raw()`, JSON) is byte for byte what was given. Then the same through real
commands: a Call-ID chosen by a caller, delivered by a real relay to `listen`, in a pipe and in a
pseudo-terminal; a database row in `db list` and `reload`; a file name in an error and its hint.
"""

from __future__ import annotations

import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import time

import pexpect
import pytest

from rtppctl.cli.app import run
from rtppctl.cli.output import Column, Diff, Output, Table, Verbatim, escape
from rtppctl.proto.errors import InputError
from tests.cli.helpers import cli, cli_process
from tests.conftest import write

#: Retitles the terminal (OSC 0 ... BEL), clears the screen (CSI 2J), a C1 CSI, a right-to-left
#: override, a CR that would overwrite the line, a byte of a file name that was not UTF-8.
HOSTILE = "a\x1b]0;pwned\x07b\x1b[2Jc\x9b2Jd\u202eevil\re\udcff"
#: How it is shown: every one of those spelled out, the rest as it was.
SHOWN = "a\\x1b]0;pwned\\x07b\\x1b[2Jc\\x9b2Jd\\u202eevil\\x0de\\xff"
#: Rich markup and an emoji code: shown as themselves, never read.
MARKUP = "[bold]x[/] [/] :cat: [link=http://x]y[/link]"

#: What Rich itself writes on a terminal: SGR (bold), and the live view's cursor moves (a CR, then
#: erase the line, up a line); and a pseudo-terminal's CR before each LF.
RICH_OWN = re.compile(r"\x1b\[(?:[0-9;]*m|\?25[lh]|2K|1A)|\r(?=\x1b\[2K|\n)")
#: What must never reach a terminal from data.
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as a pty would."""

    def isatty(self) -> bool:
        return True


def visible(text: str) -> str:
    """What is left of terminal output once Rich's own codes are taken out."""
    return RICH_OWN.sub("", text)


def assert_safe(text: str, *, tabs: bool = True) -> None:
    rest = visible(text)
    assert not UNSAFE.search(rest), repr(UNSAFE.search(rest))
    if not tabs:
        assert "\t" not in rest


# -- the rule -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("char", "spelled"), [
    ("\x00", "\\x00"), ("\x07", "\\x07"), ("\x08", "\\x08"), ("\x1b", "\\x1b"), ("\r", "\\x0d"), ("\x7f", "\\x7f"),
    ("\x85", "\\x85"), ("\x9b", "\\x9b"), ("\x9d", "\\x9d"), ("\u061c", "\\u061c"), ("\u200e", "\\u200e"),
    ("\u200f", "\\u200f"), ("\u202a", "\\u202a"), ("\u202e", "\\u202e"), ("\u2066", "\\u2066"), ("\u2069", "\\u2069"),
    ("\u2028", "\\u2028"), ("\u2029", "\\u2029"), ("\udc80", "\\x80"), ("\udcff", "\\xff"), ("\ud800", "\\ud800"),
])
def test_each_control_bidi_and_undecodable_character_is_spelled_out(char, spelled):
    assert escape(f"x{char}y") == f"x{spelled}y"
    assert escape(f"x{char}y", newlines=True, tabs=True) == f"x{spelled}y"


def test_tab_and_newline_are_escaped_in_a_cell_and_kept_where_the_caller_says():
    assert escape("a\tb\nc") == "a\\x09b\\x0ac"  # a cell is one line
    assert escape("a\tb\nc", tabs=True) == "a\tb\\x0ac"  # a diagnostic is one line
    assert escape("a\tb\nc", newlines=True, tabs=True) == "a\tb\nc"  # lines of text


def test_printable_text_is_left_as_it_is():
    for text in ("udp:127.0.0.1:22222", "café 日本語 😀", "back\\slash", "", "[bold]x[/]"):
        assert escape(text) is text


# -- every renderer ---------------------------------------------------------------------------------


def hostile_table() -> Table:
    return Table([Column(HOSTILE), Column("n", "right", keep=True), Column("markup")],
                 [[HOSTILE, 1, MARKUP], [f"tab\there{HOSTILE}", 2, None]], title=HOSTILE, caption=HOSTILE)


@pytest.mark.parametrize("width", [200, 40])  # a table, and the same as records
def test_a_table_on_a_terminal_shows_the_text_escaped_and_the_markup_as_itself(width):
    screen = Terminal()
    out = Output(stdout=screen, color=True)
    out.console.width = width
    out.emit({}, hostile_table())
    text = screen.getvalue()
    assert_safe(text, tabs=False)
    shown = visible(text)
    assert shown.count(SHOWN) >= 3  # a cell, the title, the caption (the header too, as a table)
    assert "tab\\x09here" in shown
    assert MARKUP in " ".join(shown.split())  # as records, it may be wrapped between words
    assert "🐱" not in shown


def test_a_table_in_a_pipe_shows_the_text_escaped_and_stays_one_line_per_row():
    sink = io.StringIO()
    Output(stdout=sink).emit({}, hostile_table())
    text = sink.getvalue()
    assert_safe(text, tabs=False)
    lines = text.splitlines()
    assert lines[0] == SHOWN and lines[-1] == SHOWN  # title and caption
    assert len(lines) == 5 and lines[1].startswith(SHOWN)  # title, header, two rows, caption
    assert MARKUP in lines[2]


@pytest.mark.parametrize("terminal", [False, True])
def test_lines_keep_their_own_line_breaks_and_nothing_else(terminal):
    screen = Terminal() if terminal else io.StringIO()
    out = Output(stdout=screen, color=True)
    out.emit({}, f"first {HOSTILE}\nsecond\tcolumn {MARKUP}")
    out.line(f"styled {HOSTILE} {MARKUP}", style="bold")
    text = screen.getvalue()
    assert_safe(text)
    lines = visible(text).splitlines()
    assert lines == [f"first {SHOWN}", f"second\tcolumn {MARKUP}", f"styled {SHOWN} {MARKUP}"]


def test_documents_are_printed_byte_for_byte():
    document = f"v=0\r\ns={HOSTILE}\r\n"
    for screen in (Terminal(), io.StringIO()):
        out = Output(stdout=screen, color=True)
        out.emit({}, Verbatim(document))
        out.raw(document)
        assert screen.getvalue() == document * 2
    as_json = io.StringIO()
    Output(json_mode=True, stdout=as_json).emit({"reply": "x\x1b[2J\u202e"})
    assert json.loads(as_json.getvalue()) == {"reply": "x\x1b[2J\u202e"}
    assert "\x1b" not in as_json.getvalue()  # JSON escapes it itself


@pytest.mark.parametrize("terminal", [False, True])
def test_a_diff_escapes_what_it_shows_and_still_marks_crlf(terminal):
    screen = Terminal() if terminal else io.StringIO()
    Output(stdout=screen, color=True).emit({}, Diff("s=old\r\n", f"s={HOSTILE}\r\n", "before\x1b[2J", "after"))
    text = screen.getvalue()
    assert_safe(text)
    shown = visible(text)
    assert "--- before\\x1b[2J" in shown and "-s=old\\r" in shown
    # A lone CR ends a line for splitlines: shown at the end of the first part, the CRLF marked.
    head, tail = SHOWN.split("\\x0d")
    assert f"+s={head}\\x0d\n+{tail}\\r\n" in shown


def test_a_stream_in_a_pipe_escapes_its_title_header_and_rows():
    sink = io.StringIO()
    with Output(stdout=sink).stream([Column("call", width=40), Column(HOSTILE)], title=HOSTILE) as stream:
        stream.event({}, [HOSTILE, MARKUP])
        stream.close(None, f"summary {HOSTILE}")
    text = sink.getvalue()
    assert_safe(text, tabs=False)
    lines = text.splitlines()
    assert lines[0] == SHOWN and lines[1].split() == ["call", SHOWN]
    assert lines[2].startswith(SHOWN) and lines[2].endswith(MARKUP) and lines[3] == f"summary {SHOWN}"


@pytest.mark.parametrize("width", [200, 30])
def test_a_live_stream_on_a_terminal_escapes_its_title_and_rows(width):
    screen = Terminal()
    out = Output(stdout=screen, color=True)
    out.console.width = width
    with out.stream([Column("call"), Column("n", "right", keep=True)], title=HOSTILE) as stream:
        stream.event({}, [HOSTILE, 1])
        stream.event({}, [MARKUP, 2])
        stream.close(None, f"summary {HOSTILE}")
    text = screen.getvalue()
    assert_safe(text)
    # At 30 columns the rows are records, and a view redrawn in place folds what is wider.
    shown = visible(text)
    assert shown.replace("\n", "").count(SHOWN) >= 3 and MARKUP in " ".join(shown.split())


@pytest.mark.parametrize("terminal", [False, True])
def test_a_watched_view_escapes_its_tables_and_events(terminal):
    screen = Terminal() if terminal else io.StringIO()
    out = Output(stdout=screen, color=True)
    with out.watch() as view:
        view.update(hostile_table())
        view.event({}, f"event {HOSTILE}")
        view.sample({}, f"sample {HOSTILE}", hostile_table())
    text = screen.getvalue()
    assert_safe(text, tabs=False)
    shown = visible(text)
    assert f"event {SHOWN}" in shown and SHOWN in shown
    assert (f"sample {SHOWN}" in shown) is not terminal  # a terminal redraws the tables instead


@pytest.mark.parametrize("colour", [False, True])
def test_diagnostics_are_one_line_each_and_escaped(colour):
    errors = Terminal() if colour else io.StringIO()
    out = Output(stdout=io.StringIO(), stderr=errors, color=colour, verbose=2)
    out.error(InputError(f"bad {HOSTILE}\nsecond line", f"try {HOSTILE}"))
    out.warn(f"warn {HOSTILE}\n{MARKUP}")
    out.status(f"status {HOSTILE}")
    out.note(f"note {HOSTILE}", level=2)
    out.trace(">", f"unix:/tmp/{HOSTILE}", HOSTILE.encode("utf-8", "surrogateescape"))
    text = errors.getvalue()
    assert_safe(text)
    lines = visible(text).splitlines()
    assert lines[:5] == [
        f"rtppctl: error: bad {SHOWN}\\x0asecond line", f"  hint: try {SHOWN}", f"rtppctl: warning: warn {SHOWN}\\x0a{MARKUP}",
        f"status {SHOWN}", f"note {SHOWN}",
    ]
    assert lines[5].startswith(f"> unix:/tmp/{SHOWN} ") and len(lines) == 6
    assert ("\x1b[1;31m" in text) is colour  # colour stays where it was asked for


def test_an_error_raised_in_a_command_is_printed_escaped(capsys, tmp_path):
    missing = str(tmp_path / f"conf{HOSTILE}.toml")
    result = cli(capsys, "--config", missing, "show")
    assert result.code == 5
    assert_safe(result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and SHOWN in lines[0] and SHOWN in lines[1] and lines[1].startswith("  hint: ")


def test_a_usage_error_quoting_what_was_typed_is_escaped(capsys):
    capsys.readouterr()
    assert run(["ping", f"--x{HOSTILE}"]) == 2
    err = capsys.readouterr().err
    assert_safe(err)
    # Click up to 8.1 quotes the name with repr() (\r, \udcff), later ones as typed, which we
    # escape; either way no control character is left and the name can be read.
    assert f"--x{SHOWN}" in err or "--xa\\x1b]0;pwned\\x07b" in err


def test_an_internal_error_is_one_escaped_line(capsys, monkeypatch):
    import rtppctl.cli.app as app_module

    def broken(*args, **kwargs):
        raise RuntimeError(f"boom {HOSTILE}\nmore")

    monkeypatch.setattr(app_module, "build_app", broken)
    capsys.readouterr()
    assert run(["ping"]) == 1
    err = capsys.readouterr().err
    assert_safe(err)
    assert err.count("\n") == 1 and f"boom {SHOWN}\\x0amore" in err


# -- real commands ----------------------------------------------------------------------------------


def test_an_error_naming_a_hostile_file_is_escaped_in_a_real_terminal(tmp_path):
    name = str(tmp_path / "conf\x1b]0;pwned\x07\x1b[2J\u202e.toml")
    child = pexpect.spawn(sys.executable, ["-m", "rtppctl", "--config", name, "show"], encoding="utf-8",
                          env={**os.environ, "COLUMNS": "80"}, timeout=30, dimensions=(24, 80))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 5
    assert_safe(child.before)
    assert "conf\\x1b]0;pwned\\x07\\x1b[2J\\u202e.toml" in visible(child.before)


@pytest.fixture
def hostile_rows(tmp_path):
    """A db_url table (OpenSIPS's schema, made by `db init`) holding one good row and two that
    carry escape sequences, as a database anyone can write to might."""
    database = tmp_path / "relays.db"
    config = write(tmp_path / "c.toml", f'db_url = "sqlite:///{database}"\n')
    assert cli_process("--config", str(config), "db", "init").code == 0
    with sqlite3.connect(database) as connection:
        connection.executemany("INSERT INTO rtpproxy_sockets (rtpproxy_sock, set_id) VALUES (?, ?)", [
            ("udp:127.0.0.1:22222", 0), ("udp:127.0.0.1:1\x1b]0;pwned\x07", 0), ("\x1b[2J\u202eudp:x", 1)])
    return config


def test_db_list_and_reload_show_hostile_rows_escaped_in_a_pipe(hostile_rows, tmp_path):
    env = {"RTPPCTL_STATE": str(tmp_path / "state.sqlite3")}
    listed = cli_process("--config", str(hostile_rows), "db", "list", env=env)
    assert listed.code == 0, listed.stderr
    assert_safe(listed.stdout, tabs=False)
    assert "udp:127.0.0.1:1\\x1b]0;pwned\\x07" in listed.stdout and "\\x1b[2J\\u202eudp:x" in listed.stdout
    assert len(listed.stdout.splitlines()) == 5  # title, header, three rows: still one line each
    reloaded = cli_process("--config", str(hostile_rows), "reload", "--dry-run", env=env)
    assert reloaded.code == 0, reloaded.stderr
    assert_safe(reloaded.stderr)
    assert "\\x1b]0;pwned\\x07" in reloaded.stderr and "\\x1b[2J\\u202eudp:x" in reloaded.stderr
    assert_safe(reloaded.stdout)


def test_a_row_with_a_newline_cannot_pass_for_a_line_of_rtppctls_own(tmp_path):
    # `db remove` says one line per row it removed; a newline inside the row is escaped, so the
    # row cannot add a line that reads as if rtppctl had said it.
    database = tmp_path / "relays.db"
    config = write(tmp_path / "c.toml", f'db_url = "sqlite:///{database}"\n')
    assert cli_process("--config", str(config), "db", "init").code == 0
    forged = "udp:127.0.0.1:1\nremoved row 99 (set 0): udp:127.0.0.1:2"
    with sqlite3.connect(database) as connection:
        connection.execute("INSERT INTO rtpproxy_sockets (rtpproxy_sock, set_id) VALUES (?, 0)", (forged,))
    removed = cli_process("--config", str(config), "db", "remove", "--id", "1")
    assert removed.code == 0, removed.stderr
    assert removed.stdout.splitlines() == ["removed row 1 (set 0): udp:127.0.0.1:1\\x0aremoved row 99 (set 0): udp:127.0.0.1:2"]
    assert json.loads(cli_process("--config", str(config), "--json", "db", "list").stdout)["rows"] == []


def test_db_list_shows_hostile_rows_escaped_in_a_real_terminal(hostile_rows, tmp_path):
    child = pexpect.spawn(sys.executable, ["-m", "rtppctl", "--config", str(hostile_rows), "db", "list"],
                          env={**os.environ, "COLUMNS": "80", "RTPPCTL_STATE": str(tmp_path / "s.sqlite3")},
                          encoding="utf-8", timeout=30, dimensions=(24, 80))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert_safe(child.before)
    shown = visible(child.before)
    assert "─" * 10 in shown  # a Rich table
    assert "udp:127.0.0.1:1\\x1b]0;pwned\\x07" in shown and "\\x1b[2J\\u202eudp:x" in shown


#: A notify tag a caller could have chosen (the relay URL-decodes it): OSC retitle, clear screen,
#: a right-to-left override.
TAG_SENT = "%1B%5D0%3Bpwned%07%1B%5B2J%E2%80%AEevil"
TAG_SHOWN = "\\x1b]0;pwned\\x07\\x1b[2J\\u202eevil"


def test_listen_shows_a_hostile_tag_from_a_real_relay_escaped_in_a_pipe(notifying_relay):
    env = notifying_relay.env
    listener = subprocess.Popen([sys.executable, "-m", "rtppctl", "listen", "--count", "1"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "listening on" in listener.stderr.readline()
        notifying_relay.timeout("pipe@test", "ft", "T" + TAG_SENT)
        out, err = listener.communicate(timeout=20)
    finally:
        listener.kill()
    assert_safe(out, tabs=False)
    assert_safe(err)
    lines = out.splitlines()
    assert lines[1].split()[:3] == ["time", "relay", "kind"]
    assert TAG_SHOWN in lines[2] and "timeout" in lines[2]


def test_listen_shows_a_hostile_tag_from_a_real_relay_escaped_in_a_real_terminal(notifying_relay):
    env = notifying_relay.env
    child = pexpect.spawn(sys.executable, ["-m", "rtppctl", "listen", "--count", "1"], env=env, encoding="utf-8",
                          timeout=30, dimensions=(24, 80))
    try:
        child.expect("notifications on")
        started = time.monotonic()
        notifying_relay.timeout("tty@test", "ft", "T" + TAG_SENT)
        child.expect(pexpect.EOF, timeout=20)
    finally:
        child.close(force=True)
    assert time.monotonic() - started < 20
    assert child.exitstatus == 0
    assert_safe(child.before)
    assert TAG_SHOWN in visible(child.before)


def test_a_file_name_that_is_not_utf8_is_shown_escaped_instead_of_failing(tmp_path):
    # The environment hands Python the byte 0xff as a lone surrogate; a strict UTF-8 stdout (a
    # UTF-8 locale) cannot write that, so it must be spelled out before it is written.
    name = os.fsdecode(bytes(tmp_path) + b"/conf\xff\x1b[2J.toml")
    result = cli_process("config", "path", env={"RTPPCTL_CONFIG": name, "LC_ALL": "C.UTF-8", "PYTHONUTF8": "0"})
    assert result.code == 5, result.stderr
    assert "conf\\xff\\x1b[2J.toml" in result.stdout and "conf\\xff\\x1b[2J.toml" in result.stderr
    assert_safe(result.stdout)
    assert_safe(result.stderr)
