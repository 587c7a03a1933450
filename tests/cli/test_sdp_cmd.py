"""offer, answer, engage and unforce through the command line, against a real relay."""

from __future__ import annotations

import math
import os
import re
import stat
from pathlib import Path

import pytest

from rtppctl.proto.command import GLOBAL_STATS, MAX_STATS_PER_QUERY
from tests.cli.helpers import cli, cli_process

pytestmark = pytest.mark.relay

DATA = Path(__file__).parent.parent / "data"
OFFER = (
    "v=0\r\no=- 1 1 IN IP4 10.7.0.1\r\ns=-\r\nc=IN IP4 10.7.0.1\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
)
ANSWER = "v=0\no=- 2 2 IN IP4 10.7.0.2\ns=-\nc=IN IP4 10.7.0.2\nt=0 0\nm=audio 50000 RTP/AVP 0\n"
PORT_LINE = re.compile(r"^m=audio (\d+) RTP/AVP", re.M)


@pytest.fixture
def work(tmp_path) -> Path:
    """An empty folder for the test's files (tmp_path also holds the isolated XDG dirs)."""
    path = tmp_path / "work"
    path.mkdir()
    return path


def relay_port(sdp: str) -> int:
    match = PORT_LINE.search(sdp)
    assert match, sdp
    return int(match[1])


def call(name: str) -> list[str]:
    return ["--call-id", f"{name}@cli", "--from-tag", "ft"]


def sessions(capsys, relay) -> int:
    return cli(capsys, "info", "-t", relay.udp, "--json").json()["relays"][0]["info"]["active_sessions"]


def test_offer_from_a_file_prints_the_rewritten_sdp(capsys, relay, work):
    body = work / "offer.sdp"
    body.write_bytes(OFFER.encode())
    result = cli(capsys, "offer", str(body), "-t", relay.udp, *call("file"))
    assert result.code == 0, result.stderr
    port = relay_port(result.stdout)
    assert result.stdout == OFFER.replace("c=IN IP4 10.7.0.1", "c=IN IP4 127.0.0.1").replace(
        "m=audio 40000", f"m=audio {port}"
    ) + "a=nortpproxy:yes\r\n"
    assert body.read_bytes() == OFFER.encode()


def test_offer_then_answer_from_stdin_reach_the_same_session(relay):
    first = cli_process("offer", "-t", relay.udp, *call("stdin"), input=OFFER)
    assert first.code == 0, first.stderr
    second = cli_process("answer", "-", "-t", relay.udp, *call("stdin"), "--to-tag", "tt", input=ANSWER)
    assert second.code == 0, second.stderr
    assert relay_port(first.stdout) != relay_port(second.stdout)
    gone = cli_process("unforce", "-t", relay.udp, *call("stdin"), "--to-tag", "tt", "--json")
    assert gone.code == 0 and gone.json()["had_session"] is True


def test_json_carries_node_ret_commands_and_replies(capsys, relay, work):
    body = work / "o.sdp"
    body.write_text(ANSWER)
    result = cli(capsys, "offer", str(body), "-t", relay.udp, *call("json"), "--json")
    data = result.json()
    port = data["streams"][0]["port"]
    assert data["node"] == relay.udp and data["ret"] == f"127.0.0.1:{port}"
    assert data["letter"] == "U"
    assert data["commands"] == [{"command": "Uc0 json@cli 10.7.0.2 50000 ft;1", "reply": f"{port} 127.0.0.1"}]
    assert data["sdp"].endswith("a=nortpproxy:yes\n") and data["original_sdp"] == ANSWER


def test_output_file_is_written_and_stdout_stays_empty(capsys, relay, work):
    body, out = work / "in.sdp", work / "out.sdp"
    body.write_text(ANSWER)
    result = cli(capsys, "offer", str(body), "-o", str(out), "-t", relay.udp, *call("out"))
    assert result.code == 0 and result.stdout == ""
    assert relay_port(out.read_text()) > 0 and body.read_text() == ANSWER


def test_in_place_rewrites_the_file_and_keeps_its_mode(capsys, relay, work):
    body = work / "in.sdp"
    body.write_text(ANSWER)
    body.chmod(0o640)
    result = cli(capsys, "offer", "--in-place", str(body), "-t", relay.udp, *call("inplace"))
    assert result.code == 0, result.stderr
    assert "a=nortpproxy:yes" in body.read_text()
    assert stat.S_IMODE(body.stat().st_mode) == 0o640
    assert [p.name for p in work.iterdir()] == ["in.sdp"]  # no temp file left behind


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nt=0 0\nm=audio 4000 RTP/AVP 0\n", "no c= line"),
        ("v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 4x00 RTP/AVP 0\n", "line 6"),
        ("hello\n", "v="),
        ("", "empty"),
    ],
)
def test_in_place_failure_leaves_the_file_identical_and_sends_nothing(capsys, relays, work, text, message):
    fresh = relays.start()
    body = work / "bad.sdp"
    body.write_bytes(text.encode())
    before = body.stat().st_mtime_ns
    result = cli(capsys, "offer", "--in-place", str(body), "-t", fresh.udp, *call("bad"))
    assert result.code == 6
    assert message in result.stderr and result.stdout == ""
    assert body.read_bytes() == text.encode() and body.stat().st_mtime_ns == before
    assert [p.name for p in work.iterdir()] == ["bad.sdp"]
    assert cli(capsys, "info", "-t", fresh.udp, "--json").json()["relays"][0]["info"]["sessions_created"] == 0


def test_relay_failure_leaves_the_in_place_file_untouched(capsys, work):
    body = work / "in.sdp"
    body.write_text(ANSWER)
    result = cli(capsys, "--timeout", "0.05", "--retries", "1", "offer", "-i", str(body), "-t", "udp:127.0.0.1:9", *call("down"))
    assert result.code == 4 and body.read_text() == ANSWER and result.stdout == ""


def test_a_whole_sip_invite_is_rewritten_with_content_length_corrected(capsys, relay):
    invite = (DATA / "sip" / "invite.txt").read_bytes().decode()
    result = cli(capsys, "offer", str(DATA / "sip" / "invite.txt"), "-t", relay.udp, "--json")
    assert result.code == 0, result.stderr
    data = result.json()
    # Call-ID, From tag (not the URI's tag=x) and the top Via's received= came from the message.
    assert data["commands"][0]["command"] == "Uc0,8,101 a84b4c76e66710@pc33.example.com 192.0.2.77 49170 1928301774;1"
    head, body = data["message"].split("\r\n\r\n", 1)
    assert body == data["sdp"]
    assert f"Content-Length: {len(body.encode())}\r\n" in head + "\r\n"
    assert head == invite.split("\r\n\r\n", 1)[0].replace("Content-Length: 114", f"Content-Length: {len(body.encode())}")


def test_a_sip_reply_is_an_answer_in_a_reply(capsys, relay):
    offer = cli(capsys, "offer", str(DATA / "sip" / "invite.txt"), "-t", relay.udp, "--json")
    assert offer.code == 0, offer.stderr
    result = cli(capsys, "answer", str(DATA / "sip" / "200ok.txt"), "-t", relay.udp, "--json")
    assert result.code == 0, result.stderr
    # A reply's top Via describes the INVITE's path (its received= is the caller's proxy), not where
    # the 200 OK or its media came from: the SDP's own address goes to the relay.
    assert result.json()["commands"][0]["command"] == (
        "Lc0,101 a84b4c76e66710@pc33.example.com 10.8.8.8 51372 1928301774;1 a6c85cf;1"
    )
    given = cli(capsys, "answer", str(DATA / "sip" / "200ok.txt"), "-t", relay.udp, "--json", "--source-ip", "192.0.2.99")
    assert given.json()["commands"][0]["command"].split()[2] == "192.0.2.99"
    cli(capsys, "unforce", "-t", relay.udp, "--call-id", "a84b4c76e66710@pc33.example.com", "--from-tag", "1928301774")


def test_diff_shows_before_and_after(capsys, relay, work):
    body = work / "d.sdp"
    body.write_text(ANSWER)
    result = cli(capsys, "offer", str(body), "--diff", "-t", relay.udp, *call("diff"))
    assert result.code == 0
    assert "-c=IN IP4 10.7.0.2" in result.stdout and "+c=IN IP4 127.0.0.1" in result.stdout
    assert "+a=nortpproxy:yes" in result.stdout and "\x1b[" not in result.stdout


def test_answer_for_an_unknown_session_exits_3(capsys, relay, work):
    body = work / "a.sdp"
    body.write_text(ANSWER)
    result = cli(capsys, "answer", str(body), "-t", relay.udp, "--call-id", "never@cli", "--from-tag", "a", "--to-tag", "b")
    assert result.code == 3
    assert "has no session" in result.stderr and result.stdout == ""


def test_missing_call_id_and_bad_flags_are_input_errors(capsys, relay, work):
    body = work / "a.sdp"
    body.write_text(ANSWER)
    assert cli(capsys, "offer", str(body), "-t", relay.udp).code == 6
    bad = cli(capsys, "offer", str(body), "-t", relay.udp, *call("flags"), "--flags", "ox")
    assert bad.code == 6 and "'x'" in bad.stderr


def test_tags_with_whitespace_never_reach_the_relay(capsys, relays, work):
    fresh = relays.start()
    body = work / "a.sdp"
    body.write_text(ANSWER)
    commands_seen = lambda: cli(capsys, "info", "-t", fresh.udp, "--json").json()["relays"][0]["stats"]["ncmds_rcvd"]  # noqa: E731
    before = commands_seen()
    result = cli(capsys, "offer", str(body), "-t", fresh.udp, "--call-id", "a\nX", "--from-tag", "ft")
    assert result.code == 6
    # Between the two readings the relay saw exactly one `info` run (I and the G batches), nothing else.
    info_commands = 1 + math.ceil(len(GLOBAL_STATS) / MAX_STATS_PER_QUERY)
    assert commands_seen() - before == info_commands


def test_binary_and_oversized_input_are_refused(capsys, relay, work):
    binary = work / "b.sdp"
    binary.write_bytes(b"v=0\x00\xff\xfe")
    assert cli(capsys, "offer", str(binary), "-t", relay.udp, *call("bin")).code == 6
    huge = work / "h.sdp"
    huge.write_bytes(b"v=0\n" + b"a=x\n" * (10 * 1024 * 1024 // 4))
    result = cli(capsys, "offer", str(huge), "-t", relay.udp, *call("huge"))
    assert result.code == 6 and "limit" in result.stderr


def test_empty_marker_config_adds_no_marker(capsys, relay, work):
    config = work / "c.toml"
    config.write_text('nortpproxy_str = ""\n')
    body = work / "a.sdp"
    body.write_text(ANSWER)
    result = cli(capsys, "--config", str(config), "offer", str(body), "-t", relay.udp, *call("nomarker"))
    assert result.code == 0 and "nortpproxy" not in result.stdout


def test_engage_with_two_sip_messages(capsys, relay):
    result = cli(capsys, "engage", "--offer", str(DATA / "sip" / "invite.txt"), "--answer", str(DATA / "sip" / "200ok.txt"),
                 "-t", relay.udp, "--json")
    assert result.code == 0, result.stderr
    data = result.json()
    assert data["late"] is False
    assert data["offer"]["letter"] == "U" and data["answer"]["letter"] == "L"
    assert data["answer"]["commands"][0]["command"].endswith("1928301774;1 a6c85cf;1")
    gone = cli(capsys, "unforce", "-t", relay.udp, "--call-id", "a84b4c76e66710@pc33.example.com",
               "--from-tag", "1928301774", "--to-tag", "a6c85cf", "--json")
    assert gone.json()["had_session"] is True


def test_engage_plain_sdps_prints_both_bodies(capsys, relay, work):
    offer, answer = work / "o.sdp", work / "a.sdp"
    offer.write_text(ANSWER.replace("50000", "40000"))
    answer.write_text(ANSWER)
    result = cli(capsys, "engage", "--offer", str(offer), "--answer", str(answer), "-t", relay.udp, *call("engage"), "--to-tag", "tt")
    assert result.code == 0, result.stderr
    assert result.stdout.count("a=nortpproxy:yes") == 2
    # stdout is the two bodies and nothing else; which is which is said on stderr.
    assert result.stdout.startswith("v=0\n") and result.stdout.count("v=0\n") == 2 and "#" not in result.stdout
    assert "# offer (U, normal negotiation)" in result.stderr and "the answer (L)" in result.stderr


def test_engage_late_negotiation(capsys, relay, work):
    offer, answer = work / "o.sdp", work / "a.sdp"
    offer.write_text(ANSWER)
    answer.write_text(ANSWER.replace("10.7.0.2", "10.7.0.3"))
    result = cli(capsys, "engage", "--late", "--offer", str(offer), "--answer", str(answer), "-t", relay.udp,
                 *call("late"), "--to-tag", "tt", "--json")
    assert result.code == 0, result.stderr
    data = result.json()
    assert data["late"] is True
    assert data["offer"]["commands"][0]["command"] == "Uc0 late@cli 10.7.0.2 50000 tt;1 ft;1"
    assert data["answer"]["commands"][0]["command"] == "Uc0 late@cli 10.7.0.3 50000 ft;1 tt;1"


def test_unforce_reports_whether_the_relay_had_the_session(capsys, relay, work):
    body = work / "a.sdp"
    body.write_text(ANSWER)
    assert cli(capsys, "offer", str(body), "-t", relay.udp, *call("unforce")).code == 0
    first = cli(capsys, "unforce", "-t", relay.udp, *call("unforce"))
    assert first.code == 0 and "deleted the session" in first.stdout
    second = cli(capsys, "unforce", "-t", relay.udp, *call("unforce"), "--json")
    assert second.code == 0
    assert second.json() == {"node": relay.udp, "command": "D unforce@cli ft", "reply": "E50", "had_session": False}


def test_in_place_with_stdin_is_a_usage_error(capsys, relay):
    assert cli(capsys, "offer", "--in-place", "-t", relay.udp, *call("x")).code == 2


def test_output_never_partial_on_error(capsys, relay, work):
    out = work / "out.sdp"
    body = work / "a.sdp"
    body.write_text(ANSWER)
    result = cli(capsys, "answer", str(body), "-o", str(out), "-t", relay.udp, "--call-id", "none@cli", "--from-tag", "a", "--to-tag", "b")
    assert result.code == 3 and not out.exists() and os.listdir(work) == ["a.sdp"]


def test_set_picks_the_relay_set_from_the_config(capsys, relays, relay, work):
    other = relays.start()
    config = work / "c.toml"
    config.write_text(f'rtpproxy_sock = ["{relay.udp}", "3 == {other.udp}"]\n')
    body = work / "a.sdp"
    body.write_text(ANSWER)
    result = cli(capsys, "--config", str(config), "offer", str(body), "--set", "3", *call("set"), "--json")
    assert result.code == 0, result.stderr
    assert result.json()["node"] == other.udp
    assert cli(capsys, "info", "-t", other.udp, "--json").json()["relays"][0]["info"]["active_sessions"] == 1


def test_a_custom_marker_is_checked_and_inserted(capsys, relay, work):
    config = work / "c.toml"
    config.write_text('nortpproxy_str = "a=sdpmangled:yes\\r\\n"\n')
    body = work / "a.sdp"
    body.write_text(ANSWER)
    first = cli(capsys, "--config", str(config), "offer", str(body), "-t", relay.udp, *call("marker"))
    assert first.code == 0, first.stderr
    assert first.stdout.endswith("a=sdpmangled:yes\n") and "nortpproxy" not in first.stdout
    body.write_text(first.stdout)
    again = cli(capsys, "--config", str(config), "offer", str(body), "-t", relay.udp, *call("marker"))
    assert again.code == 6 and "already carries 'a=sdpmangled:yes'" in again.stderr


# -- every local check before the first command --------------------------------------------------


def refused_before_the_relay(capsys, relay, *args: str, code: int = 6) -> str:
    """Run a command that must fail locally: with -vv, no datagram may appear in the trace."""
    result = cli(capsys, "-vv", *args, "-t", relay.udp)
    assert result.code == code, result.stderr
    assert not re.search(r"^[>!<] ", result.stderr, re.M), result.stderr
    assert result.stdout == ""
    return result.stderr


def test_output_into_a_missing_directory_is_refused_before_the_relay(capsys, relay, work):
    body = work / "offer.sdp"
    body.write_bytes(OFFER.encode())
    for command in ("offer", "answer"):
        tags = [*call("missing-dir"), "--to-tag", "tt"]
        stderr = refused_before_the_relay(capsys, relay, command, str(body), *tags, "-o", str(work / "nope" / "x.sdp"))
        assert "does not exist" in stderr
        stderr = refused_before_the_relay(capsys, relay, command, str(body), *tags, "-o", str(work))
        assert "is a directory" in stderr
    assert body.read_bytes() == OFFER.encode()


def test_engage_of_two_calls_is_refused_before_the_relay(capsys, relay, work):
    invite = (DATA / "sip" / "invite.txt").read_text()
    reply = (DATA / "sip" / "200ok.txt").read_text()
    other_call = reply.replace("a84b4c76e66710@pc33.example.com", "someone-else@example.net")
    other_tag = reply.replace("tag=1928301774", "tag=77777")
    for name, text in (("call.txt", other_call), ("tag.txt", other_tag)):
        (work / name).write_text(text)
        (work / "invite.txt").write_text(invite)
        stderr = refused_before_the_relay(capsys, relay, "engage", "--offer", str(work / "invite.txt"),
                                          "--answer", str(work / name))
        assert "different calls" in stderr


def test_engage_with_a_bad_answer_leaves_no_offer_behind(capsys, relay, work):
    (work / "o.sdp").write_text(ANSWER.replace("50000", "40000"))
    (work / "a.sdp").write_text("v=0\nthis is not sdp\n")
    stderr = refused_before_the_relay(capsys, relay, "engage", "--offer", str(work / "o.sdp"), "--answer",
                                      str(work / "a.sdp"), *call("bad-answer"), "--to-tag", "tt")
    assert "a.sdp" in stderr


def test_output_dash_is_stdout_and_special_files_are_written_through(capsys, relay, work):
    body = work / "offer.sdp"
    body.write_text(OFFER)
    result = cli(capsys, "offer", str(body), "-t", relay.udp, *call("dash"), "-o", "-")
    assert result.code == 0 and result.stdout.startswith("v=0")
    result = cli(capsys, "offer", str(body), "-t", relay.udp, *call("devnull"), "-o", "/dev/null")
    assert result.code == 0 and result.stdout == ""
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    link = work / "link.sdp"
    real = work / "real.sdp"
    real.write_text("old")
    real.chmod(0o604)
    link.symlink_to(real)
    result = cli(capsys, "offer", str(body), "-t", relay.udp, *call("link"), "-o", str(link))
    assert result.code == 0
    assert link.is_symlink() and real.read_text().startswith("v=0") and stat.S_IMODE(real.stat().st_mode) == 0o604


def test_offer_reading_a_terminal_says_it_waits_for_sdp(relay):
    import sys

    import pexpect

    child = pexpect.spawn(sys.executable, ["-m", "rtppctl", "offer", "-t", relay.udp, *call("tty")],
                          encoding="utf-8", timeout=20, env={**os.environ, "NO_COLOR": "1"})
    child.expect("reading an SDP body or a SIP message from stdin; end it with Ctrl-D")
    child.send(OFFER.replace("\r\n", "\n"))
    child.sendeof()
    child.expect("a=nortpproxy:yes")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
