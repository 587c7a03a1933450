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


def run_in_terminal(args: list[str], columns: int = 160, **env: str) -> tuple[str, int]:
    child = pexpect.spawn(
        sys.executable, ["-m", "rtppctl", *args], env={**os.environ, "COLUMNS": str(columns), **env},
        encoding="utf-8", timeout=30, dimensions=(50, columns),
    )
    child.expect(pexpect.EOF)
    child.close()
    return child.before, child.exitstatus


#: The rule Rich draws under a table's header in rtppctl's one plain style (no boxes).
HEADER_RULE = re.compile(r"^\s*─{10,}", re.MULTILINE)


def test_tables_on_a_terminal_are_plain_and_keep_urls_and_numbers_whole_at_80_columns(relay):
    output, code = run_in_terminal(["ping", "-t", relay.udp], columns=80)
    assert code == 0
    assert HEADER_RULE.search(output)  # a Rich table, not the plain text of a pipe
    assert not re.search(r"[│┃╭╮╰╯┏┓┗┛]", output)  # one plain style: no boxes
    assert not COLOUR.search(output)  # data is not coloured
    assert relay.udp in output  # the relay URL is never cut or wrapped
    assert re.search(r"\b1/1\b", output) and re.search(r"\d+\.\d{3}/\d+\.\d{3}/\d+\.\d{3}", output)
    visible = re.sub(r"\x1b\[[0-9;]*m", "", output)
    assert all(len(line.rstrip("\r")) <= 80 for line in visible.splitlines())


def test_diagnostics_on_a_terminal_are_coloured(tmp_path):
    output, code = run_in_terminal(["version", "-t", "udp6:[::1]:22222"])
    assert code == 6
    assert COLOUR.search(output)


@pytest.mark.parametrize("how", ["env", "flag"])
def test_no_color_drops_colour_codes(relay, how):
    args = ["version", "-t", "udp6:[::1]:22222"] + (["--no-color"] if how == "flag" else [])
    output, code = run_in_terminal(args, **({"NO_COLOR": "1"} if how == "env" else {}))
    assert code == 6
    assert "rtppctl: error:" in output
    assert not COLOUR.search(output)


def test_errors_on_a_terminal_are_one_line_with_a_hint(tmp_path):
    output, code = run_in_terminal(["version", "-t", "udp6:[::1]:22222"], NO_COLOR="1")
    assert code == 6
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines[0].startswith("rtppctl: error: ") and "udp6:[::1]:22222" in lines[0]
    assert all(line.startswith(("rtppctl: error:", "  hint:")) for line in lines)


def test_show_watch_redraws_in_place_prints_status_events_and_ctrl_c_exits_130(relays, tmp_path):
    first, second = relays.start(), relays.start()
    config = tmp_path / "watch.toml"
    config.write_text(f'rtpproxy_sock = ["{first.udp} {second.udp}"]\n')
    env = {**os.environ, "COLUMNS": "120", "RTPPCTL_STATE": str(tmp_path / "state.sqlite3")}
    child = pexpect.spawn(sys.executable, ["-m", "rtppctl", "--config", str(config), "show", "--watch", "0.3"],
                          env=env, encoding="utf-8", timeout=30, dimensions=(40, 120))
    child.expect("set 0 \\(default\\)")
    child.expect(re.escape(second.udp))
    import subprocess  # noqa: PLC0415

    subprocess.run([sys.executable, "-m", "rtppctl", "--config", str(config), "enable", second.udp, "0"],
                   env=env, check=True, capture_output=True, timeout=60)
    child.expect(re.escape(second.udp) + r" \(set 0\) inactive \(off\)")
    child.expect(r"\boff\b")  # the table redrawn with the new state
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    first.stop()
    second.stop()
