"""`check` against real relays: real RTP both ways, measured, and every session deleted.

The relays are real engines (tests/relay.py). Faults a relay cannot make are made around it, on
loopback only: an advertised address where nothing listens (127.0.0.3), and a UDP forwarder in
front of the relay's media ports (on 127.0.0.5) that drops one direction. Sessions left behind
are counted by the relay itself (`I`: active sessions).
"""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import socket
import sys
import threading
import time

import pexpect
import pytest

from tests.cli.helpers import cli, cli_process
from tests.conftest import write
from tests.relay import free_port, free_port_range


@pytest.fixture(scope="module")
def check_relay(relays):
    """A relay of this module's own, so its session counts are this module's alone."""
    return relays.start()


def active_sessions(capsys, spec: str) -> int:
    result = cli(capsys, "--state", "none", "--json", "info", "-t", spec)
    assert result.code == 0, result.stderr
    return result.json()["relays"][0]["info"]["active_sessions"]


def dead_udp_port() -> int:
    return free_port(socket.SOCK_DGRAM)


def test_a_healthy_relay_passes_with_no_loss_both_ways_and_keeps_no_session(capsys, check_relay):
    result = cli(capsys, "--state", "none", "--json", "check", "-t", check_relay.udp, "--packets", "40", "--ptime", "10")
    assert result.code == 0, result.stdout + result.stderr
    report = result.json()
    assert report["ok"] is True and report["verdict"] == "1/1 relays forward media both ways"
    (node,) = report["nodes"]
    assert node["status"] == "pass" and node["reason"] is None and node["version"] == 20040107
    assert node["media_address"] == "127.0.0.1" and node["address_source"] == "reply"
    assert [d["direction"] for d in node["directions"]] == ["caller-to-callee", "callee-to-caller"]
    for way in node["directions"]:
        assert (way["sent"], way["received"], way["lost"], way["loss_pct"]) == (40, 40, 0, 0.0), way
        assert (way["duplicates"], way["corrupted"], way["stray"]) == (0, 0, 0)
        # The relay counted every packet it got from the sender: nothing was lost on either side of it.
        assert (way["relay_received"], way["lost_before_relay"], way["lost_after_relay"]) == (40, 0, 0)
        assert way["latched"] is True  # the parties send from a port their SDP does not name
        assert 0 <= way["latency_ms"]["min"] <= way["latency_ms"]["avg"] <= way["latency_ms"]["p99"] < 150
        assert way["jitter_ms"] is not None and way["jitter_ms"] >= 0
    assert node["relay_counters"]["nrelayed"] == 80
    assert active_sessions(capsys, check_relay.udp) == 0


def test_an_advertised_address_that_goes_nowhere_fails_and_names_it(capsys, check_relay):
    # 127.0.0.3 is loopback, but the relay binds 127.0.0.1 only: media sent there reaches nothing.
    spec = f"{check_relay.udp}|127.0.0.3"
    result = cli(capsys, "--state", "none", "--json", "check", "-t", spec, "--packets", "10", "--ptime", "10")
    assert result.code == 4
    (node,) = result.json()["nodes"]
    assert node["status"] == "fail" and node["address_source"] == "advertised"
    assert node["reason"] == ("no media reached the relay at 127.0.0.3 (the advertised address): "
                              "this host cannot reach that address")
    assert [d["relay_received"] for d in node["directions"]] == [0, 0]
    assert active_sessions(capsys, check_relay.udp) == 0


class OneWayForwarder:
    """A NAT-like UDP forwarder on 127.0.0.5 for every port of a relay's media range: what a
    party sends to 127.0.0.5:P goes to 127.0.0.1:P from a socket of the party's own, and what the
    relay sends back goes out of 127.0.0.5:P to the party. Datagrams of the dropped direction
    (told by check's payload marker) are not forwarded."""

    def __init__(self, ports: range, drop_marker: bytes) -> None:
        self.drop_marker = drop_marker
        self.selector = selectors.DefaultSelector()
        self.fronts = {}
        self.backs = {}  # (front port, client address) -> back socket
        for port in ports:
            front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            front.bind(("127.0.0.5", port))
            self.fronts[port] = front
            self.selector.register(front, selectors.EVENT_READ, ("front", port, None))
        self.dropped = 0
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while self.running:
            for key, _ in self.selector.select(0.05):
                kind, port, client = key.data
                data, source = key.fileobj.recvfrom(4096)
                if kind == "front":
                    if data[12:12 + len(self.drop_marker)] == self.drop_marker:
                        self.dropped += 1
                        continue
                    back = self.backs.get((port, source))
                    if back is None:
                        back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        back.bind(("127.0.0.1", 0))
                        self.backs[(port, source)] = back
                        self.selector.register(back, selectors.EVENT_READ, ("back", port, source))
                    back.sendto(data, ("127.0.0.1", port))
                else:
                    self.fronts[port].sendto(data, client)

    def close(self) -> None:
        self.running = False
        self.thread.join(2)
        for sock in [*self.fronts.values(), *self.backs.values()]:
            sock.close()


def test_one_direction_blocked_fails_naming_that_direction_and_where_it_was_lost(capsys, relays):
    ports = free_port_range(8, hosts=("127.0.0.1", "127.0.0.5"))
    relay = relays.start(extra_args=["-m", str(ports.start), "-M", str(ports.stop - 1)])
    forwarder = OneWayForwarder(ports, b"rtppctl check callee-to-caller")
    try:
        result = cli(capsys, "--state", "none", "--json", "check", "-t", f"{relay.udp}|127.0.0.5",
                     "--packets", "20", "--ptime", "10")
    finally:
        forwarder.close()
    assert result.code == 4, result.stdout + result.stderr
    (node,) = result.json()["nodes"]
    forward, back = node["directions"]
    assert (forward["received"], forward["relay_received"]) == (20, 20), forward
    assert (back["received"], back["relay_received"], back["lost_before_relay"]) == (0, 0, 20), back
    assert node["reason"] == "callee to caller: none of 20 packets arrived (the relay received none of them)"
    assert forwarder.dropped >= 20
    assert active_sessions(capsys, relay.udp) == 0


def test_a_table_for_people_fits_an_80_column_terminal(check_relay):
    dead = f"udp:127.0.0.1:{dead_udp_port()}"
    child = pexpect.spawn(sys.executable, ["-m", "rtppctl", "--state", "none", "--timeout", "0.2", "--retries", "1",
                                           "check", "-t", check_relay.udp, "-t", dead, "--packets", "5", "--ptime", "10"],
                          encoding="utf-8", env={**os.environ, "COLUMNS": "80"}, timeout=30, dimensions=(40, 80))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 4
    lines = [re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", line) for line in child.before.splitlines()]
    table = lines[: next(n for n, line in enumerate(lines) if line.startswith(f"{dead}: "))]
    assert table[0].split() == ["relay", "way", "recv", "loss%", "ms", "min/avg/p99", "jitter", "result"]
    assert len(table) == 5 and max(len(line) for line in table) <= 80, child.before  # header, rule, 3 rows
    assert lines[-1] == "1/2 relays forward media both ways"
    assert any("to callee" in line for line in lines) and any("to caller" in line for line in lines)
    assert any(line.startswith(f"{dead}: cannot reach the relay") for line in lines)


# -- the plugin contract ------------------------------------------------------------------------


def test_a_dead_relay_is_critical_and_its_perfdata_still_parses(capsys, check_relay):
    from rtppctl.monitoring.nagios import PluginOutput, State
    from tests.test_nagios import parse_output  # a reader written from the guidelines' syntax

    dead = f"udp:127.0.0.1:{dead_udp_port()}"
    result = cli(capsys, "--state", "none", "--timeout", "0.2", "--retries", "1", "check", "--nagios",
                 "-t", check_relay.udp, "-t", dead, "--packets", "10", "--ptime", "10",
                 "-w", "loss=1", "-c", "loss=5")
    assert result.code == 2, result.stdout + result.stderr
    status, summary, perfdata, details = parse_output(PluginOutput(State(result.code), result.stdout))
    assert status == "CRITICAL" and summary.startswith("1/2 relays forward media")
    assert details == [f"{dead}: cannot reach the relay: {dead} refused the request: nothing listens on that udp port"]
    by_label = {item.label: item for item in perfdata}
    assert by_label[f"{check_relay.udp} loss"].value == 0 and by_label[f"{check_relay.udp} loss"].uom == "%"
    assert by_label[f"{dead} loss"].value in (None, 100)
    assert by_label[f"{dead} rtt"].value is None  # U: it never answered


@pytest.mark.parametrize("args, config", [
    (["--packets", "0"], None),                      # a usage error: Click would exit 2 (CRITICAL)
    (["-w", "bogus=1"], None),                       # a bad threshold
    (["-w", "loss=5:1"], None),                      # a range whose start is above its end
    ([], "rtpproxy_sock = [1, 2\n"),                 # a config file that is not TOML
    (["--json"], None),                              # --json does not go with --nagios
])
def test_under_nagios_every_other_outcome_is_unknown(capsys, tmp_path, check_relay, args, config):
    base = ["--state", "none"]
    if config is not None:
        base += ["--config", str(write(tmp_path / "c.toml", config))]
    result = cli(capsys, *base, "check", "--nagios", "-t", check_relay.udp, "--packets", "3", "--ptime", "10", *args)
    assert result.code == 3, result.stdout + result.stderr
    assert result.stdout.startswith("RTPPCTL CHECK UNKNOWN - ") and result.stdout.count("\n") == 1, result.stdout


def test_an_internal_error_under_nagios_is_unknown_too(capsys, check_relay, monkeypatch):
    import rtppctl.ops.check as check_module

    def broken(*args, **kwargs):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(check_module, "check", broken)
    result = cli(capsys, "--state", "none", "check", "--nagios", "-t", check_relay.udp)
    assert result.code == 3 and result.stdout.startswith("RTPPCTL CHECK UNKNOWN - internal error: ZeroDivisionError")


# -- deadlines, interruptions, observation only ---------------------------------------------------


def test_a_check_cut_by_its_deadline_leaves_no_session(capsys, check_relay):
    started = time.monotonic()
    result = cli(capsys, "--state", "none", "--json", "check", "-t", check_relay.udp, "--packets", "1000",
                 "--deadline", "1")
    took = time.monotonic() - started
    assert result.code == 4 and took < 5, (took, result.stderr)
    (node,) = result.json()["nodes"]
    assert node["status"] == "unfinished" and node["reason"] == "not finished within --deadline 1 s"
    assert 0 < node["directions"][0]["sent"] < 1000
    assert active_sessions(capsys, check_relay.udp) == 0


def test_ctrl_c_deletes_every_session_before_exit_130(capsys, check_relay, tmp_path):
    child = pexpect.spawn(sys.executable, ["-m", "rtppctl", "--state", "none", "check", "-t", check_relay.udp,
                                           "--packets", "1000"], env={**os.environ, "COLUMNS": "80"}, timeout=20)
    try:
        deadline = time.monotonic() + 10
        while active_sessions(capsys, check_relay.udp) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert active_sessions(capsys, check_relay.udp) == 1  # the check's call is up
        child.sendintr()
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 130, child.before
    assert b"rtppctl: interrupted" in child.before
    assert active_sessions(capsys, check_relay.udp) == 0


def test_sigterm_ends_a_check_like_ctrl_c(capsys, check_relay):
    import subprocess

    process = subprocess.Popen([sys.executable, "-m", "rtppctl", "--state", "none", "check", "-t", check_relay.udp,
                                "--packets", "1000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while active_sessions(capsys, check_relay.udp) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130 and err.decode().strip() == "rtppctl: interrupted"
    assert active_sessions(capsys, check_relay.udp) == 0


def test_a_check_of_a_dead_node_changes_no_shared_state(capsys, check_relay, tmp_path):
    dead = f"udp:127.0.0.1:{dead_udp_port()}"
    config = write(tmp_path / "c.toml", f'rtpproxy_sock = ["{check_relay.udp} {dead}"]\n'
                                        "rtpproxy_timeout = 0.2\nrtpproxy_retr = 1\n")
    base = ["--config", str(config), "--state", str(tmp_path / "state.sqlite3")]
    assert cli(capsys, *base, "enable", check_relay.udp, "2").code == 0  # probing: a state a check must not end
    before = cli(capsys, *base, "--json", "show").json()
    result = cli(capsys, *base, "--json", "check", "--packets", "5", "--ptime", "10")
    assert result.code == 4
    states = {n["node"]: (n["status"], n["state"]) for n in result.json()["nodes"]}
    assert states == {check_relay.udp: ("pass", "probing"), dead: ("fail", "enabled")}
    after = cli(capsys, *base, "--json", "show").json()

    def health(shown):  # all but `recheck_in`, which counts down by itself
        return [{k: v for k, v in node.items() if k != "recheck_in"} for s in shown["sets"] for node in s["nodes"]]

    assert health(after) == health(before)
    assert cli(capsys, *base, "--json", "sessions").json()["sessions"] == []


def test_prometheus_output_parses_with_prometheus_client(capsys, check_relay, tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    path = tmp_path / "check.prom"
    path.write_text("old\n")
    dead = f"udp:127.0.0.1:{dead_udp_port()}"
    result = cli(capsys, "--state", "none", "--timeout", "0.2", "--retries", "1", "check", "-t", check_relay.udp,
                 "-t", dead, "--packets", "5", "--ptime", "10", "--prometheus", str(path))
    assert result.code == 4
    families = {f.name: f for f in text_string_to_metric_families(path.read_text())}
    up = {s.labels["node"]: s.value for s in families["rtppctl_check_up"].samples}
    assert up == {check_relay.udp: 1.0, dead: 0.0}
    received = {(s.labels["node"], s.labels["direction"]): s.value
                for s in families["rtppctl_check_packets_received"].samples}
    assert received[(check_relay.udp, "caller-to-callee")] == 5.0


def test_a_prometheus_file_that_cannot_be_written_stops_the_check_before_any_call(capsys, check_relay, tmp_path):
    result = cli(capsys, "--state", "none", "check", "-t", check_relay.udp,
                 "--prometheus", str(tmp_path / "missing" / "x.prom"))
    assert result.code == 6 and result.stdout == ""
    assert active_sessions(capsys, check_relay.udp) == 0


def test_check_as_a_subprocess_prints_one_json_object(check_relay):
    result = cli_process("--state", "none", "--json", "check", "-t", check_relay.udp, "--packets", "3", "--ptime", "10")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["ok"] is True


def test_no_local_port_leaves_the_node_unchecked_and_is_unknown_under_nagios(capsys, check_relay, monkeypatch):
    import errno

    from rtppctl.net import rtp_path

    def no_port(cls, address):
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(rtp_path.Party, "open", classmethod(no_port))
    result = cli(capsys, "--state", "none", "--json", "check", "-t", check_relay.udp)
    assert result.code == 4
    (node,) = result.json()["nodes"]
    assert (node["status"], node["reason"]) == ("unfinished", "no local UDP port for the media: Too many open files")
    plugin = cli(capsys, "--state", "none", "check", "--nagios", "-t", check_relay.udp)
    assert plugin.code == 3 and plugin.stdout.startswith("RTPPCTL CHECK UNKNOWN - ")


def test_every_control_transport_and_ipv6_media_pass(capsys, relays):
    # One relay reached over udp, udp6 (its media then on ::1), tcp, unix and cunix: the control
    # channel differs, the RTP through the relay is the same.
    relay = relays.start(transports=("udp", "udp6", "tcp", "unix", "cunix"))
    targets = [arg for spec in relay.specs.values() for arg in ("-t", spec)]
    result = cli(capsys, "--state", "none", "--json", "check", *targets, "--packets", "10", "--ptime", "10")
    assert result.code == 0, result.stdout + result.stderr
    nodes = {node["node"]: node for node in result.json()["nodes"]}
    assert set(nodes) == set(relay.specs.values())
    assert nodes[relay.specs["udp6"]]["media_address"] == "::1"
    for node in nodes.values():
        assert node["status"] == "pass" and [d["received"] for d in node["directions"]] == [10, 10], node
    assert active_sessions(capsys, relay.udp) == 0


def test_a_relay_that_refuses_the_session_fails_with_its_error_and_keeps_nothing(capsys, relays):
    # Two media ports are too few for the offer's U: the engine answers E72 (checked against rtp.io
    # 1.1.1: "cannot allocate ports for a new session").
    ports = free_port_range(2)
    relay = relays.start(extra_args=["-m", str(ports.start), "-M", str(ports.stop - 1)])
    result = cli(capsys, "--state", "none", "--json", "check", "-t", relay.udp, "--packets", "5", "--ptime", "10")
    assert result.code == 4, result.stdout + result.stderr
    (node,) = result.json()["nodes"]
    assert node["status"] == "fail" and node["directions"] == []
    assert node["reason"].startswith("the relay refused the session: relay answered E72 (LSTFAIL_2: cannot allocate "
                                     "ports for a new session) to 'U"), node["reason"]
    assert active_sessions(capsys, relay.udp) == 0


def test_a_hostile_relay_reply_is_escaped_in_the_table_and_the_plugin_line(capsys):
    # A fake relay (a fault the real one cannot make): it answers every command with an escape
    # sequence. What the check says of it reaches people and Nagios with the controls spelled out.
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    spec = f"udp:127.0.0.1:{sock.getsockname()[1]}"
    running = True

    def answer():
        sock.settimeout(0.05)
        while running:
            try:
                data, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            sock.sendto(data.split(b" ", 1)[0] + b" \x1b]0;pwned\x07\x1b[2J", peer)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        human = cli(capsys, "--state", "none", "check", "-t", spec, "--packets", "3", "--ptime", "10")
        plugin = cli(capsys, "--state", "none", "check", "--nagios", "-t", spec, "--packets", "3", "--ptime", "10")
    finally:
        running = False
        thread.join(2)
        sock.close()
    assert human.code == 4 and plugin.code == 2
    for text in (human.stdout, human.stderr, plugin.stdout):
        assert "\x1b" not in text and "\x07" not in text, text
    assert "\\x1b]0;pwned" in human.stdout  # the reason is there, spelled out
