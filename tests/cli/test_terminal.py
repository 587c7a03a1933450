"""What a person sees in a real terminal (a pseudo-terminal driven by pexpect)."""

from __future__ import annotations

import os
import re
import sys

import pexpect
import pytest

pytestmark = pytest.mark.relay


#: SGR sequences that set a colour (foreground or background, 8/16/256/true colour). Bold and
#: the like are not colour: NO_COLOR (no-color.org) asks for no colour, not for no emphasis.
COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-9]|4[0-9]|9[0-7]|10[0-7])(?:;[0-9;]*)?m")


def run_in_terminal(args: list[str], **env: str) -> tuple[str, int]:
    child = pexpect.spawn(
        sys.executable, ["-m", "rtppctl", *args], env={**os.environ, "COLUMNS": "160", **env},
        encoding="utf-8", timeout=30, dimensions=(50, 160),
    )
    child.expect(pexpect.EOF)
    child.close()
    return child.before, child.exitstatus


def test_tables_and_colour_on_a_terminal(relay):
    output, code = run_in_terminal(["ping", "-t", relay.udp])
    assert code == 0
    assert "┃" in output or "│" in output  # a Rich table, not the plain text of a pipe
    assert COLOUR.search(output)  # coloured
    assert relay.udp in output


@pytest.mark.parametrize("how", ["env", "flag"])
def test_no_color_keeps_tables_but_drops_escape_codes(relay, how):
    args = ["ping", "-t", relay.udp] + (["--no-color"] if how == "flag" else [])
    output, code = run_in_terminal(args, **({"NO_COLOR": "1"} if how == "env" else {}))
    assert code == 0
    assert "┃" in output or "│" in output
    assert not COLOUR.search(output)


def test_errors_on_a_terminal_are_one_line_with_a_hint(tmp_path):
    output, code = run_in_terminal(["version", "-t", "udp6:[::1]:22222"], NO_COLOR="1")
    assert code == 6
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines[0].startswith("rtppctl: error: ") and "udp6:[::1]:22222" in lines[0]
    assert all(line.startswith(("rtppctl: error:", "  hint:")) for line in lines)
