"""version, ping, info and raw against a real relay, through the whole command line."""

from __future__ import annotations

import socket
import time

import pytest

from rtppctl.proto import command as cmd
from tests.cli.helpers import cli, cli_process
from tests.relay import free_port

pytestmark = pytest.mark.relay


def dead_udp_target() -> str:
    return f"udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}"


def write_config(path, *lines: str) -> str:
    path.write_text("\n".join(lines) + "\n")
    return str(path)


# -- version --------------------------------------------------------------------------------------


def test_version_json_lists_every_capability_with_the_relays_answer(capsys, relay):
    result = cli(capsys, "version", "-t", relay.udp, "--json")
    assert result.code == 0, result.stderr
    data = result.json()["relays"][0]
    assert data["node"] == relay.udp and data["version"] == 20040107 and data["error"] is None
    supported = {c["date"]: c["supported"] for c in data["capabilities"]}
    assert len(supported) == len(cmd.CAPABILITIES)
    assert supported["20081224"] is True and supported["20191015"] is True
    assert supported["20170313"] is False  # TTL_CHANGE: upstream answers 0


@pytest.mark.parametrize("transport", ["udp", "udp6", "tcp", "unix", "cunix"])
def test_version_over_every_transport(capsys, relay, transport):
    result = cli(capsys, "--json", "version", "-t", relay.specs[transport])
    assert result.code == 0, result.stderr
    assert result.json()["relays"][0]["version"] == 20040107


def test_version_plain_text_in_a_pipe_has_no_escape_codes(capsys, relay):
    result = cli(capsys, "version", "-t", relay.udp)
    assert result.code == 0
    assert "protocol 20040107" in result.stdout
    assert "TTL_CHANGE" in result.stdout and "\x1b[" not in result.stdout


# -- ping -----------------------------------------------------------------------------------------


def test_ping_counts_round_trips_and_reports_module_capabilities(capsys, relay):
    result = cli(capsys, "ping", "-t", relay.udp, "--count", "3", "--json")
    assert result.code == 0, result.stderr
    (only,) = result.json()["relays"]
    assert only["reachable"] is True and only["received"] == 3 and only["sent"] == 3
    assert 0 < only["rtt_min_ms"] <= only["rtt_avg_ms"] <= only["rtt_max_ms"]
    assert {"CODECS", "NOTIFY", "STATS", "SUBCOMMAND"} <= set(only["capabilities"])
    assert "TTL_CHANGE" not in only["capabilities"]


def test_ping_exits_4_when_any_relay_is_down_and_names_it(capsys, relay):
    dead = dead_udp_target()
    result = cli(capsys, "--timeout", "0.1", "--retries", "2", "ping", "-t", relay.udp, "-t", dead, "--json")
    assert result.code == 4
    by_node = {r["node"]: r for r in result.json()["relays"]}
    assert by_node[relay.udp]["reachable"] is True
    assert by_node[dead]["reachable"] is False and by_node[dead]["received"] == 0
    assert dead in by_node[dead]["error"]
    assert result.json()["ok"] is False


@pytest.fixture
def silent_udp_target():
    """silent_udp_target() -> a udp node that swallows every datagram: a bound socket nobody reads.

    Unlike a closed port it sends no ICMP refusal either, so a client waits out every try.
    """
    sockets: list[socket.socket] = []

    def open_one() -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sockets.append(sock)
        sock.bind(("127.0.0.1", 0))
        return f"udp:127.0.0.1:{sock.getsockname()[1]}"

    yield open_one
    for sock in sockets:
        sock.close()


def test_ping_probes_every_relay_at_once(capsys, relay, silent_udp_target):
    dead = [silent_udp_target() for _ in range(3)]
    targets = [dead[0], relay.udp, dead[1], dead[2]]
    options = [arg for target in targets for arg in ("-t", target)]
    started = time.monotonic()
    result = cli(capsys, "--timeout", "0.5", "--retries", "1", "ping", *options, "--json")
    elapsed = time.monotonic() - started
    # One after another this costs 3 x 0.5 s; at once, one timeout.
    assert elapsed < 1.2, elapsed
    assert result.code == 4
    relays = result.json()["relays"]
    assert [r["node"] for r in relays] == targets
    assert [r["reachable"] for r in relays] == [False, True, False, False]
    assert relays[1]["received"] == 1 and relays[1]["error"] is None and "CODECS" in relays[1]["capabilities"]
    for r in (relays[0], relays[2], relays[3]):
        assert r["received"] == 0 and r["error"] == f"no reply from {r['node']} after 1 try of 0.5 s"


def test_ping_of_a_closed_udp_port_fails_at_once(capsys):
    dead = dead_udp_target()  # nothing listens there: the host answers ICMP port unreachable
    started = time.monotonic()
    result = cli(capsys, "--timeout", "2", "--retries", "5", "ping", "-t", dead, "--json")
    assert time.monotonic() - started < 1.0
    assert result.code == 4
    (only,) = result.json()["relays"]
    assert only["reachable"] is False
    assert only["error"] == f"{dead} refused the request: nothing listens on that udp port"


def test_ping_all_sets_from_a_config_file(capsys, relay, tmp_path):
    config = write_config(
        tmp_path / "c.toml",
        f'rtpproxy_sock = ["{relay.udp} {relay.specs["tcp"]}=2", "7 == {relay.specs["cunix"]}"]',
    )
    result = cli(capsys, "--config", config, "ping", "--all", "--json")
    assert result.code == 0, result.stderr
    assert [(r["set_id"], r["node"]) for r in result.json()["relays"]] == [
        (0, relay.udp), (0, relay.specs["tcp"]), (7, relay.specs["cunix"])
    ]
    one_set = cli(capsys, "--config", config, "ping", "--set", "7", "--json")
    assert [r["node"] for r in one_set.json()["relays"]] == [relay.specs["cunix"]]


def test_unknown_set_is_a_config_error(capsys, relay, tmp_path):
    config = write_config(tmp_path / "c.toml", f'rtpproxy_sock = ["{relay.udp}"]')
    result = cli(capsys, "--config", config, "ping", "--set", "3")
    assert result.code == 5
    assert "no relay set 3" in result.stderr and result.stdout == ""


# -- info -----------------------------------------------------------------------------------------


def test_info_reports_sessions_and_global_stats(capsys, relays):
    fresh = relays.start()
    assert cli(capsys, "raw", "-t", fresh.udp, "U info1@t 127.0.0.1 30000 a;1").code == 0
    result = cli(capsys, "info", "-t", fresh.udp, "--json")
    assert result.code == 0, result.stderr
    data = result.json()["relays"][0]
    assert data["info"]["sessions_created"] == 1 and data["info"]["active_sessions"] == 1
    assert "average_load" in data["info"]
    assert data["stats"]["nsess_created"] == 1
    assert set(data["stats"]) == set(cmd.GLOBAL_STATS)


# -- raw ------------------------------------------------------------------------------------------


def test_raw_single_command_prints_the_reply(capsys, relay):
    result = cli(capsys, "raw", "-t", relay.udp, "VF", "20050322")
    assert (result.code, result.stdout) == (0, "1\n")


def test_raw_error_reply_exits_3_and_explains_the_code(capsys, relay):
    result = cli(capsys, "raw", "-t", relay.udp, "D", "nosuch@t", "tag")
    assert result.code == 3
    assert result.stdout.startswith("E50") and "SESUNKN" in result.stdout


def test_raw_batch_from_file_keeps_order_and_skips_comments(capsys, relay, tmp_path):
    batch = tmp_path / "batch.txt"
    batch.write_text("# probe\nV\n\nVF 20170313\nI\n")
    result = cli(capsys, "raw", "--json", "-t", relay.specs["tcp"], "-f", str(batch))
    assert result.code == 0, result.stderr
    replies = result.json()["replies"]
    assert [r["command"] for r in replies] == ["V", "VF 20170313", "I"]
    assert [r["reply"] for r in replies[:2]] == ["20040107", "0"]
    assert replies[2]["reply"].startswith("sessions created: ")
    assert all(r["rtt_ms"] > 0 for r in replies)


def test_raw_batch_from_stdin(relay):
    result = cli_process("raw", "-t", relay.udp, "-f", "-", input="V\nVF 20081224\n")
    assert result.code == 0, result.stderr
    assert result.stdout == "V -> 20040107\nVF 20081224 -> 1\n"


def test_raw_refuses_a_command_that_would_smuggle_a_second_line(capsys, relay):
    result = cli(capsys, "raw", "-t", relay.udp, "V\nX")
    assert result.code == 6
    assert "control character" in result.stderr and result.stdout == ""


def test_raw_without_a_command_is_a_usage_error(capsys, relay):
    assert cli(capsys, "raw", "-t", relay.udp).code == 2


def test_verbose_2_traces_every_datagram_on_stderr(capsys, relay):
    result = cli(capsys, "-vv", "raw", "-t", relay.udp, "V")
    assert result.stdout == "20040107\n"
    sent = [line for line in result.stderr.splitlines() if line.startswith(f"> {relay.udp} ")]
    received = [line for line in result.stderr.splitlines() if line.startswith(f"< {relay.udp} ")]
    assert len(sent) == 1 and sent[0].endswith(" V'")
    assert len(received) == 1 and "20040107" in received[0]


# -- failures and global options ------------------------------------------------------------------


def test_unreachable_relay_exits_4_naming_the_node(capsys):
    dead = dead_udp_target()
    result = cli(capsys, "--timeout", "0.1", "--retries", "2", "version", "-t", dead)
    assert result.code == 4
    assert dead in result.stderr and result.stdout == ""


def test_bad_target_spec_exits_6_quoting_it(capsys):
    result = cli(capsys, "version", "-t", "udp6:[::1]:22222")
    assert result.code == 6
    assert "udp6:[::1]:22222" in result.stderr


def test_unknown_option_is_a_usage_error(capsys):
    assert cli(capsys, "version", "--bogus").code == 2


def test_version_flag_and_entry_points():
    from rtppctl import __version__

    result = cli_process("--version")
    assert (result.code, result.stdout) == (0, f"rtppctl {__version__}\n")
    assert "Usage" in cli_process("--help").stdout


def test_json_output_is_one_object_with_data_only(relay):
    result = cli_process("--json", "raw", "-t", relay.udp, "V")
    assert result.code == 0
    assert result.stdout.count("\n") == 1 and result.json()["replies"][0]["reply"] == "20040107"


def test_global_options_work_after_the_command(capsys):
    # A bound socket nobody reads: the datagrams vanish, so the timeout and tries are what end it.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        target = f"udp:127.0.0.1:{silent.getsockname()[1]}"
        result = cli(capsys, "version", "-t", target, "--timeout", "0.1", "--retries=1", "--json")
    assert result.code == 4 and "after 1 try of 0.1 s" in result.stderr


def test_hoisting_leaves_arguments_after_double_dash_alone():
    from rtppctl.cli.app import hoist_global_options

    assert hoist_global_options(["raw", "-t", "x", "--timeout", "2", "-vv", "--", "--json"]) == [
        "--timeout", "2", "-vv", "raw", "-t", "x", "--", "--json"
    ]


def test_verbose_notes_say_which_config_and_relay(capsys, relay):
    result = cli(capsys, "-v", "raw", "-t", relay.udp, "V")
    assert result.stdout == "20040107\n"
    assert "config: none found, built-in defaults" in result.stderr
    assert f"channel: {relay.udp} (timeout 1 s, 5 tries)" in result.stderr
    assert cli(capsys, "raw", "-t", relay.udp, "V").stderr == ""
