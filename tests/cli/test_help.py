"""Every command's --help at 80 columns reads as prose wrapped by the terminal (issue 15, section 5).

Typer's Rich help keeps the line breaks of a docstring in every paragraph after the first, so a
paragraph wrapped at 100 columns in the source broke short at 80 ("log and" / "accounting file"
in `embedded start --help`). `rtppctl.cli.app.reflow_help` joins the prose lines of every help text
where the Click tree is built; these tests render the help of every command and group, in a pipe
and in a pseudo-terminal, both with COLUMNS=80, and assert that no line of a paragraph ends where
the next word would still have fitted. Examples and list items keep their own lines.

All the help texts are rendered by one child process per mode (the real `run()`, the real Rich
console deciding the width), so the whole tree costs two interpreter start-ups, not seventy.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pexpect
import pytest
import typer

from rtppctl.cli.app import build_app, click_command, reflow_help

WIDTH = 80
#: Rich's codes on a terminal (SGR styles, cursor show/hide) and the pty's CR before LF.
TERMINAL_CODES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")
#: What Typer prints after an option's help in the same cell: notes, not a paragraph's next line.
NOTE = re.compile(r"\[(?:default|required|env var)\b")
LIST_ITEM = re.compile(r"(?:[-*\u2022]|\d{1,2}[.)])\s")

#: Prints every command's --help, each after a marker line, through the real `run()`.
RENDER_ALL = """
import json, sys
from rtppctl.cli.app import run
for path in json.loads(sys.argv[1]):
    print("@@@ " + " ".join(path), flush=True)
    code = run([*path, "--help"])
    sys.stdout.flush()
    print("@@@ exit", code, flush=True)
"""


def help_paths() -> list[tuple[str, ...]]:
    """Every command path with a --help of its own: the root, each group, each command."""
    root = typer.main.get_command(build_app())
    paths: list[tuple[str, ...]] = []

    def walk(command, path: tuple[str, ...]) -> None:
        paths.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, (*path, name))

    walk(root, ())
    return paths


def child_env() -> dict[str, str]:
    env = {**os.environ, "COLUMNS": str(WIDTH), "NO_COLOR": "1"}
    # Typer's own width override and terminal switches would decide the width instead of COLUMNS.
    for name in ("TERMINAL_WIDTH", "_TYPER_FORCE_DISABLE_TERMINAL", "FORCE_COLOR", "TTY_COMPATIBLE"):
        env.pop(name, None)
    return env


def split_helps(output: str) -> dict[tuple[str, ...], str]:
    """The rendered help of each command path, from the output of RENDER_ALL."""
    helps: dict[tuple[str, ...], str] = {}
    current: tuple[str, ...] | None = None
    lines: list[str] = []
    for line in TERMINAL_CODES.sub("", output).split("\n"):
        if line.startswith("@@@ exit"):
            assert line.split()[-1] == "0", f"rtppctl {' '.join(current or ())} --help failed:\n" + "\n".join(lines)
            helps[current] = "\n".join(lines)
            current, lines = None, []
        elif line.startswith("@@@"):
            current, lines = tuple(line[4:].split()), []
        elif current is not None:
            lines.append(line)
    return helps


def _first_word(text: str) -> str:
    return text.split()[0] if text.split() else ""


def short_breaks(rendered: str, width: int = WIDTH) -> list[str]:
    """Every place in a rendered help where a line of prose ends although the next line's first
    word would have fitted on it: a line break that came from the source, not from the width.

    Two places hold prose: the description under the usage (Rich pads it one column on each side)
    and the last column of each panel (a command's summary, an option's help). Lines that are
    indented further (examples), list items and Typer's notes ([default: ...]) are not
    continuations; a line that Rich wrapped ends where the next word did not fit.
    """
    problems: list[str] = []
    lines = [line.rstrip() for line in rendered.split("\n")]
    # The description: from the first blank line after "Usage:" to the first panel.
    start = next((i for i, line in enumerate(lines) if line.strip().startswith("Usage:")), 0)
    while start < len(lines) and lines[start].strip():
        start += 1
    end = next((i for i, line in enumerate(lines) if line.startswith("╭")), len(lines))
    description = lines[start:end]
    for above, below in zip(description, description[1:]):
        if not above.strip() or not below.strip():
            continue
        a, b = above[1:], below[1:]  # one column of padding on the left
        if a[:1].isspace() or b[:1].isspace() or LIST_ITEM.match(b):
            continue  # an example, or the line after one; a list item starts a line of its own
        if len(a) + 1 + len(_first_word(b)) <= width - 2:
            problems.append(f"{above.strip()!r} / {below.strip()!r}")
    # Panels: the cell that starts in `above` at the column where `below`'s text starts.
    rows = [line[1:-1] if line.startswith("│") and line.endswith("│") else None for line in lines]
    for above, below in zip(rows, rows[1:]):
        if above is None or below is None or not below.strip():
            continue
        column = len(below) - len(below.lstrip())
        if column == 0 or len(above) <= column or above[column - 1] != " " or above[column] == " ":
            continue
        cell, rest = above[column:].rstrip(), below[column:].rstrip()
        if "  " in cell or "  " in rest or NOTE.match(rest) or LIST_ITEM.match(rest):
            continue  # another column to the right, or a note Typer puts on a line of its own
        room = len(above) - 1 - column  # the panel's padding on the right
        if len(cell) + 1 + len(_first_word(rest)) <= room:
            problems.append(f"{cell.strip()!r} / {rest.strip()!r}")
    return problems


@pytest.fixture(scope="module")
def paths() -> list[tuple[str, ...]]:
    found = help_paths()
    assert len(found) > 30 and ("embedded", "start") in found
    return found


def _check_every_help(helps: dict[tuple[str, ...], str], paths: list[tuple[str, ...]]) -> None:
    assert set(helps) == set(paths), f"missing: {set(paths) - set(helps)}"
    broken = {" ".join(("rtppctl", *path)): found for path, text in helps.items() if (found := short_breaks(text))}
    assert not broken, "help lines broken short at 80 columns:\n" + json.dumps(broken, indent=2)
    for path, text in helps.items():
        # Rich wraps at the width: a longer line would mean the width was not 80.
        assert all(len(line) <= WIDTH for line in text.split("\n")), path
        assert "Usage: rtppctl" in text, path


def test_every_help_in_a_pipe_at_80_columns_is_wrapped_by_width_not_by_source(paths):
    result = subprocess.run([sys.executable, "-c", RENDER_ALL, json.dumps(paths)], capture_output=True, text=True,
                            env=child_env(), timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    _check_every_help(split_helps(result.stdout), paths)


def test_every_help_in_a_terminal_at_80_columns_is_wrapped_by_width_not_by_source(paths):
    child = pexpect.spawn(sys.executable, ["-c", RENDER_ALL, json.dumps(paths)], env=child_env(), encoding="utf-8",
                          timeout=120, dimensions=(50, WIDTH), maxread=65536)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before[-2000:]
    _check_every_help(split_helps(child.before), paths)


def test_embedded_start_help_keeps_its_paragraph_whole_in_a_terminal():
    # The case the issue names, through the console module as a user runs it.
    child = pexpect.spawn(sys.executable, ["-m", "rtppctl", "embedded", "start", "--help"], env=child_env(),
                          encoding="utf-8", timeout=60, dimensions=(50, WIDTH))
    child.expect(pexpect.EOF)
    child.close()
    text = TERMINAL_CODES.sub("", child.before)
    assert child.exitstatus == 0
    assert not short_breaks(text)
    prose = " ".join(line.strip() for line in text.split("\n") if line.startswith(" ") and not line.startswith("   "))
    assert "Its pid, log and accounting file live in $XDG_STATE_HOME/rtppctl/embedded/." in prose
    # The examples are still one per line, each starting the line.
    assert re.search(r"^   rtppctl embedded start -n tcp:127\.0\.0\.1:9999 ", text, re.MULTILINE)


def test_the_check_finds_paragraphs_broken_where_the_source_line_ended():
    # The checker itself, on a plain Typer app (no reflow): what it caught in rtppctl's help, in
    # the description and in the commands panel (a summary written over two source lines).
    program = """
import sys
import typer
app = typer.Typer(rich_markup_mode="rich")  # Typer's default, said as rtppctl says it

@app.command()
def start() -> None:
    \"\"\"Start it, a summary written in the source
    over two lines, as a docstring may be.

    Refused (exit 5) when it already runs or a control socket is busy. Its pid, log and
    accounting file live in $XDG_STATE_HOME/rtppctl/embedded/.
    \"\"\"

@app.command()
def other() -> None:
    \"\"\"Another.\"\"\"

app(sys.argv[1:], prog_name="rtppctl")
"""

    def render(*args: str) -> str:
        return subprocess.run([sys.executable, "-c", program, *args], capture_output=True, text=True,
                              env=child_env(), timeout=60, check=False).stdout

    assert short_breaks(render("start", "--help")) == [
        "'log and' / 'accounting file live in $XDG_STATE_HOME/rtppctl/embedded/.'"
    ]
    assert short_breaks(render("--help")) == [
        "'Start it, a summary written in the source' / 'over two lines, as a docstring may be.'"
    ]


# -- the reflow rule ---------------------------------------------------------------------------------


def test_reflow_joins_prose_and_keeps_examples_lists_and_hidden_text():
    text = ("First line\nof the summary.\n\nA paragraph wrapped\nin the source.\n\nExamples:\n\n"
            "  rtppctl a\n  rtppctl b   # two lines of one block\n\nSteps:\n- one\n  more of one\n- two\nthen prose\n"
            "joined.\n\n1. first\n2) second\n\n\b\nkept\nas is\n\fhidden\nnot\nshown")
    assert reflow_help(text) == (
        "First line of the summary.\n\nA paragraph wrapped in the source.\n\nExamples:\n\n"
        "  rtppctl a\n  rtppctl b   # two lines of one block\n\nSteps:\n- one\n  more of one\n- two then prose joined."
        "\n\n1. first\n2) second\n\n\b\nkept\nas is\n\fhidden\nnot\nshown"
    )
    assert reflow_help("One line.") == "One line."
    # A negative number or an option at the start of a line is prose, not a list item.
    assert reflow_help("an RMS of\n-3 dBFS, see\n--flags.") == "an RMS of -3 dBFS, see --flags."


def test_every_help_text_the_app_shows_is_reflowed():
    root = click_command(build_app())
    pending = [((), root)]
    while pending:
        path, command = pending.pop()
        assert reflow_help(command.help or "") == (command.help or ""), path
        pending.extend(((*path, name), sub) for name, sub in getattr(command, "commands", {}).items())


def test_the_man_page_reads_the_help_as_the_terminal_shows_it():
    # tools/docgen.py makes prose and examples of the raw docstrings; the reflowed text must give
    # the same blocks, so the generated man page does not change and says what --help says.
    from tools import docgen

    raw = typer.main.get_command(build_app())
    shown = click_command(build_app())
    pending = [((), raw, shown)]
    while pending:
        path, before, after = pending.pop()
        assert docgen._blocks(docgen._clean_help(before.help or "")) == docgen._blocks(docgen._clean_help(after.help or "")), path
        for name, sub in getattr(before, "commands", {}).items():
            pending.append(((*path, name), sub, after.commands[name]))
