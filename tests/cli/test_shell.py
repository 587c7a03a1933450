"""rtppctl shell in a real pseudo-terminal (pexpect), rewriting SDP through a real relay.

Each test drives the shell the way a person does: types commands, pastes text, presses the arrow
keys, Ctrl-C and Ctrl-D, and reads what the terminal shows. Output is read up to the next prompt,
so a test never races the shell; the line editor's history file is a temp file of the test.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

pytestmark = pytest.mark.relay

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"

#: The shell's prompt: `rtppctl> ` or `rtppctl [c1@host ft/tt flags=o]> `.
PROMPT = re.compile(r"rtppctl(?: \[[^\]\r\n]*\])?> ")
PASTE_READY = "single '.'"
UP = "\x1b[A"

OFFER = (
    "v=0\no=- 7 7 IN IP4 10.7.0.1\ns=-\nc=IN IP4 10.7.0.1\nt=0 0\n"
    "m=audio 40000 RTP/AVP 0 101\na=rtpmap:101 telephone-event/8000\n"
)
ANSWER = "v=0\no=- 8 8 IN IP4 10.7.0.2\ns=-\nc=IN IP4 10.7.0.2\nt=0 0\nm=audio 50000 RTP/AVP 0\n"
PORT = re.compile(r"^m=audio (\d+) ", re.MULTILINE)

# Until the lead registers the command in COMMANDS, a child process registers it for itself.
_REGISTER = (
    "from rtppctl.cli.app import run, COMMANDS; "
    "COMMANDS['shell'] = ('rtppctl.cli.shell_cmd', 'shell', 'SDP'); "
    "import sys; sys.exit(run(sys.argv[1:]))"
)


def shell_argv(*args: str) -> list[str]:
    """Python's arguments for `rtppctl shell ARGS`, however the command is registered today."""
    from rtppctl.cli import app

    if "shell" in app.COMMANDS:
        return ["-m", "rtppctl", "shell", *args]
    return ["-c", _REGISTER, "shell", *args]


class Shell:
    """One shell on a pseudo-terminal; `run` types a line and returns what it printed."""

    def __init__(self, relay, history: Path | None, *extra: str) -> None:
        self.child = pexpect.spawn(
            sys.executable,
            shell_argv("-t", relay.udp, *(["--history", str(history)] if history else []), *extra),
            cwd=str(ROOT),
            env={**os.environ, "NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "200"},
            encoding="utf-8",
            timeout=10,
            dimensions=(50, 200),
        )
        self.child.expect(PROMPT)
        self.greeting = _text(self.child.before)

    def run(self, line: str) -> str:
        self.child.sendline(line)
        return self.wait()

    def wait(self) -> str:
        """Everything printed up to the next prompt (the echoed line included)."""
        self.child.expect(PROMPT)
        return _text(self.child.before)

    @property
    def prompt(self) -> str:
        return self.child.after

    def paste(self, text: str) -> str:
        self.child.sendline("paste")
        self.child.expect_exact(PASTE_READY)
        for line in text.splitlines():
            self.child.sendline(line)
        self.child.sendline(".")
        return self.wait()

    def finish(self, how: str = "quit") -> int:
        if how == "eof":
            self.child.sendeof()
        else:
            self.child.sendline(how)
        self.child.expect(pexpect.EOF)
        self.child.close()
        return self.child.exitstatus

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)


@pytest.fixture
def open_shell(relay, tmp_path):
    shells: list[Shell] = []

    def start(*extra: str, history: Path | None | str = "temp") -> Shell:
        shell = Shell(relay, tmp_path / "history" if history == "temp" else history, *extra)
        shells.append(shell)
        return shell

    yield start
    for shell in shells:
        shell.close()


def _text(output: str) -> str:
    return output.replace("\r\n", "\n")


def port_of(text: str) -> int:
    match = PORT.search(text)
    assert match, text
    return int(match[1])


def test_paste_offer_show_the_rewrite_and_a_diff_then_save_it_exactly(open_shell, tmp_path):
    shell = open_shell()
    assert "udp:127.0.0.1:" in shell.greeting
    shell.run("call-id paste@shell")
    shell.run("from-tag ft")
    shell.run("flags o")
    assert shell.prompt == "rtppctl [paste@shell ft/- flags=o no input]> "
    loaded = shell.paste(OFFER)
    assert "loaded pasted text: SDP, 7 lines, LF line endings" in loaded
    assert shell.prompt == "rtppctl [paste@shell ft/- flags=o]> "

    shown = shell.run("offer")
    assert "# offer (U) via udp:127.0.0.1:" in shown
    assert "a=nortpproxy:yes" in shown and "c=IN IP4 127.0.0.1" in shown
    assert re.search(r"^\+o=- 7 7 IN IP4 127\.0\.0\.1$", shown, re.MULTILINE)
    assert re.search(r"^-c=IN IP4 10\.7\.0\.1$", shown, re.MULTILINE)
    port = port_of(shown.split("+++")[0])
    expected = (
        OFFER.replace("IN IP4 10.7.0.1", "IN IP4 127.0.0.1").replace("m=audio 40000", f"m=audio {port}")
        + "a=nortpproxy:yes\n"
    )

    saved = tmp_path / "out" / "offer.sdp"
    saved.parent.mkdir()
    assert f"saved the offer to {saved}" in shell.run(f"save {saved}")
    assert saved.read_bytes() == expected.encode()
    assert shell.run("result").split("\n", 1)[1] == expected
    assert "+a=nortpproxy:yes" in shell.run("diff")
    assert shell.finish() == 0


def test_offer_then_answer_from_files_reach_one_session(open_shell, tmp_path):
    offer_file, answer_file = tmp_path / "offer.sdp", tmp_path / "answer.sdp"
    offer_file.write_text(OFFER)
    answer_file.write_bytes(ANSWER.replace("\n", "\r\n").encode())
    shell = open_shell()
    shell.run("call-id files@shell")
    shell.run("from-tag ft")
    assert "SDP, 7 lines, LF line endings" in shell.run(f"load {offer_file}")
    offered = shell.run("offer")
    assert "# offer (U)" in offered

    shell.run("to-tag tt")
    assert "SDP, 6 lines, CRLF line endings" in shell.run(f"load {answer_file}")
    answered = shell.run("answer")
    assert "# answer (L)" in answered and "c=IN IP4 127.0.0.1" in answered
    assert port_of(answered) != port_of(offered)
    # The answer's line endings are kept: the diff shows them.
    assert re.search(r"^\+c=IN IP4 127\.0\.0\.1\\r$", answered, re.MULTILINE)
    assert "# answer (L)" in shell.run("rerun")
    assert "deleted the session of files@shell" in shell.run("unforce")
    assert "had no session" in shell.run("unforce")
    assert shell.finish("exit") == 0


def test_sip_messages_give_the_call_and_tags(open_shell):
    shell = open_shell()
    shell.run(f"load {DATA / 'sip' / 'invite.txt'}")
    assert shell.prompt == "rtppctl [a84b4c76e66710@pc33.e... 1928301774/-]> "
    settings = shell.run("settings")
    assert "call-id    a84b4c76e66710@pc33.example.com (from the message)" in settings
    assert "source-ip  192.0.2.77 (from the message)" in settings
    offered = shell.run("offer")
    assert "# offer (U)" in offered and "INVITE sip:bob@example.com SIP/2.0" in offered
    assert "a=nortpproxy:yes" in offered

    shell.run(f"load {DATA / 'sip' / '200ok.txt'}")
    assert "1928301774/a6c85cf" in shell.prompt
    answered = shell.run("answer")
    assert "# answer (L)" in answered and "SIP/2.0 200 OK" in answered
    assert "deleted the session" in shell.run("unforce")
    assert shell.finish() == 0


def test_errors_print_one_line_and_the_shell_goes_on(open_shell, tmp_path):
    shell = open_shell()
    no_input = shell.run("offer")
    assert "error: no input yet" in no_input and "hint: load FILE" in no_input
    bad_flag = shell.run("flags x")
    assert "error: unknown flag 'x'" in bad_flag
    assert "error: unknown command 'bogus'" in shell.run("bogus")
    assert "type paste first" in shell.run("v=0")
    assert "error: cannot read" in shell.run(f"load {tmp_path / 'missing.sdp'}")
    assert "error:" in shell.run("call-id")  # usage
    assert "error: nothing to run again yet" in shell.run("rerun")
    assert "contains ';'" in shell.run("from-tag ft;2")  # the relay would read ';2' as a stream number
    settings = shell.run("settings")
    assert re.search(r"^from-tag +-$", settings, re.MULTILINE)
    assert re.search(r"^flags +-$", settings, re.MULTILINE)  # the refused flags were not taken
    assert re.search(r"^input +none", settings, re.MULTILINE)
    assert shell.finish() == 0


def test_a_relay_error_keeps_the_session(open_shell, tmp_path):
    shell = open_shell()
    shell.run("call-id lookup@shell")
    shell.run("from-tag ft")
    shell.run("to-tag nobody")
    shell.paste(ANSWER)
    failed = shell.run("answer")
    assert "error:" in failed and "no session" in failed
    assert "answer" in shell.run("settings")
    assert shell.finish() == 0


def test_help_lists_every_command(open_shell):
    shell = open_shell()
    listing = shell.run("help")
    for name in ("load", "paste", "show", "result", "flags", "ip", "call-id", "from-tag", "to-tag", "source-ip",
                 "reply", "target", "set", "settings", "offer", "answer", "rerun", "diff", "save", "unforce", "quit"):
        assert re.search(rf"^  {re.escape(name)}\b", listing, re.MULTILINE), name
    assert "call-id ID|-: the Call-ID" in shell.run("help call-id")
    # Tab completes command names, dashes included.
    shell.child.send("from-t\t")
    shell.child.expect_exact("from-tag ")
    shell.child.send("tabbed\r")
    shell.wait()
    assert shell.prompt == "rtppctl [tabbed/- no input]> "
    assert shell.finish() == 0


def test_up_arrow_reruns_a_line_and_history_is_kept_across_sessions(open_shell, tmp_path):
    history = tmp_path / "state" / "history"
    history.parent.mkdir()
    # An old history longer than the bound: the file is cut to its last 1000 lines at exit.
    history.write_text("".join(f"call-id old{n}@h\n" for n in range(1200)))
    shell = open_shell(history=history)

    shell.child.send(UP + "\r")  # the last line of the file, recalled and run
    shell.wait()
    assert shell.prompt.startswith("rtppctl [old1199@h ")
    shell.run("call-id first@h")
    shell.run("call-id second@h")
    assert shell.prompt.startswith("rtppctl [second@h ")
    shell.child.send(UP + UP + "\r")
    assert "call-id first@h" in shell.wait()
    assert shell.prompt.startswith("rtppctl [first@h ")
    shell.paste(OFFER)
    assert shell.finish() == 0

    lines = history.read_text().splitlines()
    assert len(lines) == 1000
    assert lines[-5:] == ["call-id first@h", "call-id second@h", "call-id first@h", "paste", "quit"]
    assert "v=0" not in lines and "." not in lines  # pasted text is not history


def test_history_lives_in_the_state_directory_by_default(open_shell, isolated_dirs):
    shell = open_shell(history=None)
    assert "history    " + str(isolated_dirs / "state" / "rtppctl" / "shell_history") in shell.run("settings")
    assert shell.finish() == 0
    saved = isolated_dirs / "state" / "rtppctl" / "shell_history"
    assert saved.read_text().splitlines() == ["settings", "quit"]
    assert saved.stat().st_mode & 0o077 == 0  # call ids and addresses are the user's business


def test_ctrl_c_cancels_the_line_and_ctrl_d_leaves(open_shell, tmp_path):
    shell = open_shell()
    shell.child.send("call-id never@h")
    # As a person would, press Ctrl-C once the line is on the screen: Python's line editor only
    # notices a signal that arrives while it waits for a key (CPython's readline module).
    shell.child.expect_exact("never@h")
    shell.child.sendintr()
    shell.wait()
    assert "never@h" not in shell.prompt
    # Ctrl-C while pasting cancels the paste and keeps the input as it was.
    shell.child.sendline("paste")
    shell.child.expect_exact(PASTE_READY)
    shell.child.sendline("v=0")
    shell.child.expect_exact("v=0\r\n")
    shell.child.sendintr()
    assert "interrupted" in shell.wait()
    assert re.search(r"^input +none", shell.run("settings"), re.MULTILINE)
    assert shell.finish("eof") == 0
    assert (tmp_path / "history").read_text().splitlines() == ["paste", "settings"]


def test_a_script_on_stdin_runs_without_prompts(relay, tmp_path):
    script = "call-id piped@shell\nfrom-tag ft\npaste\n" + OFFER + ".\noffer\nunforce\n"
    history = tmp_path / "history"
    completed = subprocess.run(
        [sys.executable, *shell_argv("-t", relay.udp, "--history", str(history))],
        input=script, capture_output=True, text=True, timeout=30, cwd=str(ROOT), check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "rtppctl>" not in completed.stdout and "rtppctl [" not in completed.stdout
    assert "a=nortpproxy:yes" in completed.stdout and "c=IN IP4 127.0.0.1" in completed.stdout
    assert "deleted the session of piped@shell" in completed.stdout
    assert not history.exists()  # only a terminal session keeps history


def test_a_bad_target_on_the_command_line_is_refused(tmp_path):
    completed = subprocess.run(
        [sys.executable, *shell_argv("-t", "bogus:1", "--history", str(tmp_path / "h"))],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30, cwd=str(ROOT), check=False,
    )
    assert completed.returncode == 6
    assert completed.stderr.startswith("rtppctl: error:")
