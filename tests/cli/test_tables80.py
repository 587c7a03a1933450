"""Every table rtppctl prints, at 80 columns, with the longest values its columns can hold (issue 14,
section 8), through the real commands in a pseudo-terminal, against real relays where one is needed.

What each asserts: no relay URL, address or number is broken over lines or cut; no column is
dropped (a table has every header, records have every key); a line is wider than 80 columns only
when it holds a single value wider than that (printed whole, wrapped by the terminal); and where
the values are ordinary the table keeps its shape. The longest values: `unix:` and a 100-character
path (105), a full IPv6 `udp6:` URL with its port and an advertised IPv6 address, weights of
4294967295, rtt floats, `disabled, probed again in 60 s`, a 255-byte Call-ID.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys

import pexpect
import pytest

from tests.cli.helpers import cli_process
from tests.conftest import write
from tests.relay import free_port

#: Rich's own codes on a terminal (SGR, the live view's cursor moves) and the pty's CR before LF.
TERMINAL_CODES = re.compile(r"\x1b\[(?:[0-9;]*m|\?25[lh]|2K|1A)|\r(?=\x1b\[2K|\n)")
#: The rule under a table's header in rtppctl's plain style.
RULE = re.compile(r"^\s*─{3,}")
WIDEST_V6 = "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"  # documentation prefix: config text only
WIDEST_WEIGHT = "4294967295"
CALL_ID = "c" * 240 + "@example.invalid"[:15]  # 255 bytes, the longest token the relay takes


def terminal(args: list[str], env: dict[str, str], *, columns: int = 80, rows: int = 50) -> tuple[str, int]:
    child = pexpect.spawn(sys.executable, ["-m", "rtppctl", *args], env={**env, "COLUMNS": str(columns)},
                          encoding="utf-8", timeout=60, dimensions=(rows, columns))
    child.expect(pexpect.EOF)
    child.close()
    return TERMINAL_CODES.sub("", child.before), child.exitstatus


def check(output: str, headers: list[str], values: list[str], *, rows: int | None = None, shape: str | None = None) -> str:
    """Assert the 80-column promise of one table in `output`; returns its shape: "table" or "records"."""
    assert "\x1b" not in output, "a code left that is not Rich's own"
    # stderr shares the pseudo-terminal: diagnostics are lines, not tables.
    lines = [line for line in output.split("\n") if not line.startswith(("rtppctl: ", "  hint: "))]
    for value in values:
        assert any(value in line for line in lines), f"{value!r} is broken over lines or cut:\n{output}"
    named = [header for header in headers if header]
    for line in lines:
        if len(line) > 80:
            # Only a single word wider than the room, left whole for the terminal to wrap.
            rest = line.split(":", 1)[1] if line.startswith(tuple(f"{h}:" for h in named)) else line
            assert len(rest.split()) == 1, f"a line wider than 80 columns: {line!r}"
    found = None
    for index, line in enumerate(lines):
        if RULE.match(line):
            words = " ".join(lines[max(0, index - 3):index]).split()
            if all(word in words for header in named for word in header.split()):
                found = "table"
                assert all(len(line) <= 80 for line in lines[index - 1:]
                           if line and not line.startswith(tuple(f"{h}:" for h in named)))
                break
    if found is None:
        counts = {header: sum(1 for line in lines if line.startswith(f"{header}:")) for header in named}
        assert all(counts.values()), f"a column dropped: {counts}\n{output}"
        if rows is not None:
            assert set(counts.values()) == {rows}, counts
        found = "records"
    if shape is not None:
        assert found == shape, output
    return found


@pytest.fixture(scope="module")
def long_relay(relays, tmp_path_factory):
    """A real relay reached over a unix socket whose URL is 105 characters long, over udp and udp6."""
    directory = tmp_path_factory.mktemp("tables80") / ("d" * 20)
    directory.mkdir()
    name = "s" * (100 - len(str(directory)) - 1)
    assert len(name) > 0
    path = f"{directory}/{name}"
    assert len(path) == 100
    relay = relays.start(transports=("udp", "udp6"), extra_args=["-s", f"unix:{path}"])
    relay.specs["long"] = f"unix:{path}"
    return relay


@pytest.fixture
def widest(long_relay, tmp_path):
    """A config whose set 0 has the widest values of every column `show` has, and an environment
    with a state file of the test's own."""
    dead = f"udp:127.0.0.1:{free_port()}"
    sock = (f"{long_relay.specs['long']}={WIDEST_WEIGHT} {long_relay.specs['udp6']}|{WIDEST_V6}={WIDEST_WEIGHT} "
            f"{long_relay.udp}|203.0.113.255 {dead}")
    config = write(tmp_path / "widest.toml", f'rtpproxy_sock = ["{sock}", "1 == {long_relay.udp} {long_relay.specs["udp6"]}"]\n')
    env = {**os.environ, "RTPPCTL_CONFIG": str(config), "RTPPCTL_STATE": str(tmp_path / "state.sqlite3")}
    return env, dead


SHOW = ["relay", "weight", "advertised", "state", "caps", "rtt ms", "calls"]


def test_show_at_80_columns_turns_to_records_and_keeps_every_url_address_and_number_whole(long_relay, widest):
    env, dead = widest
    output, code = terminal(["show", "--set", "0", "--probe"], env)
    assert code == 4  # the dead node
    rtts = re.findall(r"^rtt ms:\s+(\S+)$", output, re.MULTILINE)
    assert len(rtts) == 4 and sum(bool(re.fullmatch(r"\d+\.\d{3}", rtt)) for rtt in rtts) == 3
    check(output, [*SHOW, "probe"], [long_relay.specs["long"], long_relay.specs["udp6"], WIDEST_V6, WIDEST_WEIGHT,
                                      "203.0.113.255", dead, "disabled, probed again in 60 s", *rtts],
          rows=4, shape="records")


def test_show_at_80_columns_keeps_its_table_shape_for_ordinary_values(long_relay, widest):
    env, _ = widest
    output, code = terminal(["show", "--set", "1", "--probe"], env)
    assert code == 0
    check(output, [*SHOW, "probe"], [long_relay.udp, long_relay.specs["udp6"]], shape="table")
    assert len(re.findall(r"\b\d+\.\d{3}\b", output)) == 2  # both rtts, whole


def test_show_in_a_pipe_is_one_aligned_line_per_relay_whatever_the_width(long_relay, widest):
    env, dead = widest
    result = cli_process("show", "--set", "0", env={**env, "COLUMNS": "80"})
    lines = result.stdout.splitlines()
    assert lines[0] == "set 0 (default)" and lines[1].split()[:2] == ["relay", "weight"]
    assert [line.split()[0] for line in lines[2:]] == [long_relay.specs["long"], long_relay.specs["udp6"],
                                                     long_relay.udp, dead]
    # Aligned: every weight ends where the header's does.
    end = lines[1].index("weight") + len("weight")
    assert all(line[end - 1] != " " and line[end] == " " for line in lines[2:])


def test_show_watch_at_80_columns_redraws_records_in_place(long_relay, tmp_path):
    sock = f"{long_relay.specs['udp6']}|{WIDEST_V6}={WIDEST_WEIGHT} {long_relay.udp}|203.0.113.255"
    config = write(tmp_path / "watch.toml", f'rtpproxy_sock = ["{sock}"]\n')
    env = {**os.environ, "RTPPCTL_CONFIG": str(config), "RTPPCTL_STATE": str(tmp_path / "s.sqlite3"), "COLUMNS": "80"}
    child = pexpect.spawn(sys.executable, ["-m", "rtppctl", "show", "--watch", "0.2", "--probe"], env=env,
                          encoding="utf-8", timeout=30, dimensions=(40, 80))
    child.expect(re.escape(WIDEST_V6))
    child.expect("calls:")
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    output = TERMINAL_CODES.sub("", child.before).replace("^C", "\n")
    check(output, SHOW, [long_relay.specs["udp6"], WIDEST_V6, WIDEST_WEIGHT, "203.0.113.255"], shape="records")


PING = ["set", "relay", "ok", "recv", "rtt min/avg/max ms", "caps", "error"]


def test_ping_at_80_columns(long_relay, widest):
    env, dead = widest
    output, code = terminal(["ping", "--set", "0", "--count", "2"], env)
    assert code == 4
    rtts = re.findall(r"\d+\.\d{3}/\d+\.\d{3}/\d+\.\d{3}", output)
    assert len(rtts) == 3
    check(output, PING, [long_relay.specs["long"], long_relay.specs["udp6"], dead, *rtts], rows=4, shape="records")
    output, code = terminal(["ping", "--set", "1"], widest[0])
    assert code == 0
    check(output, PING, [long_relay.udp, long_relay.specs["udp6"]], shape="table")


def test_version_and_info_at_80_columns_keep_the_relay_in_their_titles_whole(long_relay, widest):
    env, _ = widest
    long = long_relay.specs["long"]
    output, code = terminal(["version", "-t", long], env)
    assert code == 0
    assert re.search(re.escape(long) + r":\s+protocol \d+", output)  # the title broken between words only
    check(output, ["date", "capability", "supported", "module", "meaning"], [long, "20040107"])
    output, code = terminal(["info", "-t", long], env)
    assert code == 0
    check(output, ["counter", "value"], [long, "packets_transmitted"], shape="table")
    check(output, ["statistic", "value"], [long, "npkts_resizer_discard"], shape="table")


@pytest.fixture
def long_call(long_relay, widest, tmp_path):
    """A call with the longest Call-ID and tags, on the relay with the longest URL, in the ledger."""
    env, _ = widest
    env = {**env, "RTPPCTL_CONFIG": str(write(tmp_path / "one.toml", f'rtpproxy_sock = ["{long_relay.specs["long"]}"]\n'))}
    sdp = write(tmp_path / "o.sdp", "v=0\no=- 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\n"
                                    "m=audio 4000 RTP/AVP 0\nm=audio 4002 RTP/AVP 8\n")
    from_tag, to_tag = "f" * 64, "t" * 64
    result = cli_process("--json", "offer", str(sdp), "--call-id", CALL_ID, "--from-tag", from_tag, env=env)
    assert result.code == 0, result.stderr
    ports = [str(stream["port"]) for stream in result.json()["streams"]]
    result = cli_process("answer", str(sdp), "--call-id", CALL_ID, "--from-tag", from_tag, "--to-tag", to_tag, env=env)
    assert result.code == 0, result.stderr
    yield env, [from_tag, to_tag], ports
    cli_process("unforce", "--call-id", CALL_ID, "--from-tag", from_tag, env=env)


def test_sessions_at_80_columns(long_relay, long_call):
    env, tags, ports = long_call
    output, code = terminal(["sessions"], env)
    assert code == 0
    check(output, ["call-id", "from-tag", "to-tag", "set", "relay", "ports", "idle"],
          [CALL_ID, *tags, long_relay.specs["long"], f"1:{ports[0]} 2:{ports[1]}"], rows=1, shape="records")


def test_stats_and_query_at_80_columns(long_relay, long_call):
    env, (from_tag, to_tag), _ = long_call
    parties = ["--call-id", CALL_ID, "--from-tag", from_tag, "--to-tag", to_tag]
    output, code = terminal(["stats", *parties], env)
    assert code == 0, output
    # The title, broken between words only.
    title = [CALL_ID, "on", long_relay.specs["long"] + ",", "stream 1"]
    assert "\n".join(title) in output.split("\ncounter")[0], output
    check(output, ["counter", "value"], ["down (from uas)", CALL_ID, long_relay.specs["long"]], shape="table")
    output, code = terminal(["query", "npkts_ina", "rtpa_perrs", "rtpa_nsent", *parties], env)
    assert code == 0, output
    check(output, ["counter", "value"], ["npkts_ina", "rtpa_perrs"], shape="table")


def test_stats_watch_at_80_columns(long_relay, widest, tmp_path):
    env = {**widest[0], "RTPPCTL_CONFIG": str(write(tmp_path / "u.toml", f'rtpproxy_sock = ["{long_relay.udp}"]\n')),
           "COLUMNS": "80"}
    call_id = "w" * 60 + "@example.invalid"
    sdp = write(tmp_path / "o.sdp", "v=0\no=- 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 4000 RTP/AVP 0\n")
    assert cli_process("offer", str(sdp), "--call-id", call_id, "--from-tag", "ft", env=env).code == 0
    child = pexpect.spawn(sys.executable, ["-m", "rtppctl", "stats", "--call-id", call_id, "--from-tag", "ft",
                                           "--watch", "0.2"], env=env, encoding="utf-8", timeout=30, dimensions=(40, 80))
    child.expect("per s")
    child.expect("dropped")
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    output = TERMINAL_CODES.sub("", child.before).replace("^C", "\n")  # the terminal's echo of Ctrl-C
    check(output, ["counter", "value", "per s"], [call_id, long_relay.udp, "up (from uac)"], shape="table")
    cli_process("unforce", "--call-id", call_id, "--from-tag", "ft", env=env)


LB_EXPLAIN = ["#", "relay", "weight", "cuts", "state", "chosen"]


def test_lb_explain_at_80_columns_never_loses_the_chosen_column():
    env = {**os.environ, "RTPPCTL_STATE": "none"}
    long = "unix:/" + "p" * 99
    udp6 = "udp6:ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:65535"
    output, code = terminal(["lb", "explain", "call-1", "-t", f"{long}={WIDEST_WEIGHT}", "-t", f"{udp6}=255",
                             "--disable", long], env)
    assert code == 0, output
    output = output.split("\nset given with --target\n")[1]  # the table, after the summary line
    check(output, LB_EXPLAIN, [long, udp6, WIDEST_WEIGHT, "disabled", "enabled", "<-"], rows=2, shape="records")
    assert re.search(r"^chosen: +<-$", output, re.MULTILINE)
    output, code = terminal(["lb", "explain", "call-1", "-t", "udp:192.0.2.10:22222=255", "-t",
                             "tcp:192.0.2.11:22222=255", "--disable", "udp:192.0.2.10:22222"], env)
    assert code == 0, output
    output = output.split("\nset given with --target\n")[1]
    check(output, LB_EXPLAIN, ["udp:192.0.2.10:22222", "tcp:192.0.2.11:22222", "disabled", "<-"], shape="table")


def test_lb_simulate_at_80_columns_cuts_only_its_bars():
    env = {**os.environ, "RTPPCTL_STATE": "none"}
    headers = ["relay", "weight", "expected", "calls", "share"]
    output, code = terminal(["lb", "simulate", "--calls", "100000", "-t", "udp:192.0.2.10:22222=3",
                             "-t", "udp:192.0.2.11:22222"], env)
    assert code == 0, output
    check(output, headers, ["udp:192.0.2.10:22222", "udp:192.0.2.11:22222", "75.0%", "25.0%"], shape="table")
    assert "█…" in output  # the longest bar is cut at the edge, said so with an ellipsis
    long = "unix:/" + "p" * 99
    output, code = terminal(["lb", "simulate", "--calls", "100000", "-t", f"{long}={WIDEST_WEIGHT}",
                             "-t", "udp6:ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:65535"], env)
    assert code == 0, output
    check(output, headers, [long, WIDEST_WEIGHT, "100.0%"], rows=2, shape="records")
    assert "█" * 30 in output  # in records the bar is whole


def test_db_list_and_reload_at_80_columns(long_relay, tmp_path):
    database = tmp_path / "relays.db"
    config = write(tmp_path / "db.toml", f'db_url = "sqlite:///{database}"\n')
    env = {**os.environ, "RTPPCTL_CONFIG": str(config), "RTPPCTL_STATE": str(tmp_path / "s.sqlite3")}
    assert cli_process("db", "init", env=env).code == 0
    long = long_relay.specs["long"]
    rows = [(f"{long}={WIDEST_WEIGHT}", 4294967295), (f"udp:192.0.2.10:22222|{WIDEST_V6}=2 tcp:192.0.2.11:22222", 1)]
    with sqlite3.connect(database) as connection:
        connection.executemany("INSERT INTO rtpproxy_sockets (rtpproxy_sock, set_id) VALUES (?, ?)", rows)
    output, code = terminal(["db", "list"], env)
    assert code == 0, output
    check(output, ["id", "set", "rtpproxy_sock"], [f"{long}={WIDEST_WEIGHT}", "4294967295",
                                                   f"udp:192.0.2.10:22222|{WIDEST_V6}=2", "tcp:192.0.2.11:22222"],
          rows=2, shape="records")
    output, code = terminal(["reload", "--dry-run"], env)
    assert code == 0, output
    assert output.startswith(f"sqlite:///{database} rtpproxy_sockets: would use 3 relay(s)")
    output = output.split("\n", 1)[1]  # the table, after the summary line
    check(output, ["change", "set", "relay", "before", "after"], [long, f"{long}={WIDEST_WEIGHT}", "4294967295"],
          rows=3, shape="records")


def test_config_show_and_path_at_80_columns(long_relay, tmp_path):
    directory = tmp_path / ("c" * 40)
    long = long_relay.specs["long"]
    config = write(directory / "config.toml",
                   f'rtpproxy_sock = ["{long}={WIDEST_WEIGHT}", "7 == udp:192.0.2.10:22222|{WIDEST_V6}=2"]\n')
    env = {**os.environ, "RTPPCTL_STATE": "none"}
    output, code = terminal(["--config", str(config), "config", "show"], env)
    assert code == 0, output
    assert re.search(f"^configuration from\\s+{re.escape(str(config))}$", output, re.MULTILINE)
    tables = output.split("\nrelay sets (default set 0)\n")
    assert len(tables) == 2
    check(tables[0], ["key", "value", "source", "of"], [str(config), "rtpproxy_disable_tout"])
    check(tables[1], ["set", "relay", "weight", "advertised", "spec"],
          [long, f"{long}={WIDEST_WEIGHT}", WIDEST_V6, f"udp:192.0.2.10:22222|{WIDEST_V6}=2"], rows=2, shape="records")
    output, code = terminal(["--config", str(config), "config", "path"], env)
    assert code == 0, output
    check(output.split("\nlookup order\n")[1], ["#", "from", "path", "exists", "used"], [str(config)])


@pytest.mark.relay  # runs the real engine
def test_embedded_status_at_80_columns(tmp_path):
    state = tmp_path / ("x" * 60)
    env = {**os.environ, "XDG_STATE_HOME": str(state), "RTPPCTL_STATE": "none"}
    control = f"udp:127.0.0.1:{free_port()}"
    started = cli_process("embedded", "start", "--control", control, env=env)
    assert started.code == 0, started.stderr
    try:
        output, code = terminal(["embedded", "status"], env)
        assert code == 0, output
        workdir = str(state / "rtppctl" / "embedded")
        check(output, ["what", "value"], [control, workdir])
    finally:
        assert cli_process("embedded", "stop", env=env).code == 0


@pytest.fixture
def notifying(notifying_relay):
    def timeouts(*tags: str) -> None:
        for index, tag in enumerate(tags):
            notifying_relay.timeout(f"call{index}@test", f"ft{index}", tag)

    return notifying_relay.env, timeouts


LISTEN = ["time", "relay", "kind", "call or dialog", "digit", "duration", "volume", "stream"]


@pytest.mark.parametrize("raw", [False, True])
def test_listen_at_80_columns(notifying, raw):
    env, timeouts = notifying
    tags = ["Tshort", "T" + "x" * 70]
    child = pexpect.spawn(sys.executable, ["-m", "rtppctl", "listen", "--count", "2", *(["--raw"] if raw else [])],
                          env=env, encoding="utf-8", timeout=30, dimensions=(40, 80))
    try:
        child.expect("notifications on")
        timeouts(*tags)
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    output = TERMINAL_CODES.sub("", child.before)
    headers = ["time", "relay", "raw"] if raw else LISTEN
    # The last redraw holds both events.
    last = output[output.rfind("time:", 0, output.rfind("time:")):]
    check(last, headers, ["x" * 70, "short"], rows=2, shape="records")


def test_listen_in_a_pipe_is_aligned_from_the_first_line_and_flushed_per_event(notifying):
    env, timeouts = notifying
    listener = subprocess.Popen([sys.executable, "-m", "rtppctl", "listen", "--count", "3"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "listening on" in listener.stderr.readline()
        timeouts("Tshort")
        lines = [listener.stdout.readline() for _ in range(3)]  # title, header, the event: at once
        assert "short" in lines[2]
        timeouts("T" + "x" * 70, "Tend")
        out, _ = listener.communicate(timeout=20)
    finally:
        listener.kill()
    header, short = (line.rstrip("\n") for line in lines[1:])
    later = out.splitlines()[:2]  # the two timeouts fall due together, in either order
    long = next(line for line in later if "x" * 70 in line)
    end = next(line for line in later if "Tend" in line)
    # Every column starts where the header's does, except after a value wider than its column,
    # which pushes the rest of its own line only.
    for name in ("relay", "kind", "call or dialog", "digit"):
        start = header.index(name)
        assert short[start - 2:start] == "  " and short[start] != " "
        assert end[start - 2:start] == "  " and end[start] != " "
    duration_end = header.index("duration") + len("duration")
    assert short[duration_end - 1] == "-" and end[duration_end - 1] == "-" and long[duration_end - 1] != "-"


def long_call_capture(tmp_path):
    """One whole call whose Call-ID is the longest token, with a long From display name."""
    from rtppctl.proto.capture import SipPacket
    from tests.sipmsg import Msg, sdp
    from tests.traces import write_pcap

    via = "127.0.0.11:5060;branch=z9hG4bK80"
    messages = [(Msg("INVITE", CALL_ID, "ft", None, 1, "INVITE", [via], sdp("192.0.2.1", 4000)), True),
                (Msg("200", CALL_ID, "ft", "tt", 1, "INVITE", [via], sdp("192.0.2.9", 5000)), False),
                (Msg("BYE", CALL_ID, "ft", "tt", 2, "BYE", [via + "b"]), True)]
    caller, proxy = ("127.0.0.11", 5060), ("127.0.0.12", 5060)
    packets = [SipPacket(1_700_000_000.0 + n, caller if mine else proxy, proxy if mine else caller, "udp",
                         message.text().replace('"Alice"', '"' + "Alice " * 12 + '"').encode())
               for n, (message, mine) in enumerate(messages)]
    return write_pcap(tmp_path / "long.pcap", packets)


REPLAY = ["step", "time", "message", "op", "relay", "result"]
REPLAY_LIST = ["call-id", "caller", "callee", "first", "last", "messages", "sdp"]


def test_replay_at_80_columns_keeps_the_relay_and_the_call_id_whole(long_relay, tmp_path):
    path = long_call_capture(tmp_path)
    env = {**os.environ, "RTPPCTL_STATE": "none"}
    output, code = terminal(["replay", str(path), "-t", long_relay.specs["long"]], env)
    assert code == 0, output
    check(output, REPLAY, [long_relay.specs["long"], "offer (U)", "answer (L)", "unforce (D)"])
    assert CALL_ID in output  # the report's title names the call, unbroken
    listed, code = terminal(["replay", "--list", str(path)], env)
    assert code == 0, listed
    check(listed, REPLAY_LIST, [CALL_ID, "2023-11-14 22:13:20.000", "2023-11-14 22:13:22.000"], rows=1)
