"""`metrics` against real relays (tests/relay.py) beside silent ones: a UDP socket that never
answers and a TCP listener that never accepts, both on loopback. The exposition is read back by
prometheus-client's own parser; `--serve` runs as a process of its own and is scraped over real
HTTP with urllib; the health the state store keeps is compared before and after.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rtppctl.monitoring.prometheus import check_exposition, parse_serve_address
from rtppctl.proto.errors import InputError
from tests.cli.helpers import cli
from tests.conftest import write
from tests.relay import datagrams_received, stop_process

#: What a scrape may take beyond its budget here (a loaded test machine, a Python process).
MARGIN = 0.5


@pytest.fixture(scope="module")
def live(relays):
    """Two real relays of this module's own, so that their counters are this module's."""
    return relays.start(), relays.start()


@pytest.fixture
def silent_udp():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield f"udp:127.0.0.1:{sock.getsockname()[1]}", sock
    sock.close()


@pytest.fixture
def silent_tcp():
    """A listener that never accepts: a connection completes (the kernel's backlog), no reply ever comes."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield f"tcp:127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def config(tmp_path, *nodes: str) -> list[str]:
    """The global options of a run over one set holding `nodes`, with a state file of its own."""
    path = write(tmp_path / "c.toml", f'rtpproxy_sock = ["{" ".join(nodes)}"]\nrtpproxy_timeout = 0.3\nrtpproxy_retr = 1\n')
    return ["--config", str(path), "--state", str(tmp_path / "state.sqlite3")]


def families(text: str) -> dict:
    return {family.name: family for family in text_string_to_metric_families(text)}


def value(found: dict, name: str, sample: str | None = None, **labels: str) -> float | None:
    """The value of the sample `sample` (default `name`) of family `name` with these labels."""
    for item in found[name].samples:
        if item.name == (sample or name) and all(item.labels.get(k) == v for k, v in labels.items()):
            return item.value
    return None


def nodes_shown(capsys, base: list[str]) -> dict:
    result = cli(capsys, *base, "--json", "show")
    assert result.code == 0, result.stderr
    return {(n["set_id"], n["url"]): (n["state"], n["recheck_at"], n["sessions"]) for s in result.json()["sets"] for n in s["nodes"]}


# -- one scrape -----------------------------------------------------------------------------------


def test_the_exposition_parses_and_says_which_relays_are_up(capsys, tmp_path, live, silent_udp):
    dead, _ = silent_udp
    base = config(tmp_path, live[0].udp, f"{live[1].udp}=3", dead)
    started = time.monotonic()
    result = cli(capsys, *base, "metrics", "--budget", "1")
    took = time.monotonic() - started
    assert result.code == 4, result.stderr  # a relay is down, as `info` says it
    assert took < 1 + MARGIN
    assert result.stderr == f"rtppctl: warning: no reply from {dead} after 2 tries of 0.25 s\n"  # half the budget
    found = families(result.stdout)
    for node in (live[0].udp, live[1].udp):
        assert value(found, "rtppctl_relay_up", node=node, set="0") == 1
        assert value(found, "rtppctl_relay_info", node=node, set="0", version="20040107") == 1
        assert value(found, "rtppctl_relay_probe_rtt_seconds", node=node) > 0
        assert value(found, "rtppctl_relay_sessions_active", node=node) is not None
        assert value(found, "rtppctl_relay_ncmds_rcvd", "rtppctl_relay_ncmds_rcvd_total", node=node) > 0
        assert found["rtppctl_relay_ncmds_rcvd"].type == "counter"
    assert value(found, "rtppctl_relay_up", node=dead, set="0") == 0
    assert value(found, "rtppctl_relay_weight", node=live[1].udp) == 3
    # Health: one series per state, the one it is in at 1; the dead relay stays as the store has it.
    assert {s.labels["state"]: s.value for s in found["rtppctl_relay_health_state"].samples if s.labels["node"] == dead} == {
        "enabled": 1, "disabled": 0, "probing": 0, "off": 0}
    # A node that is down has no counters, no info, no round trip: nothing stale.
    for name in ("rtppctl_relay_info", "rtppctl_relay_probe_rtt_seconds", "rtppctl_relay_nsess_created",
                 "rtppctl_relay_sessions_active", "rtppctl_relay_total_duration_seconds"):
        assert all(s.labels["node"] != dead for s in found[name].samples), name
    assert value(found, "rtppctl_ledger_sessions", node=dead) == 0
    assert value(found, "rtppctl_scrape_nodes") == 2
    assert 0 < value(found, "rtppctl_scrape_duration_seconds") < 1 + MARGIN
    # Capability dates: the optional ones the module probes for, e.g. REPACK (20071116).
    info = next(s for s in found["rtppctl_relay_info"].samples if s.labels["node"] == live[0].udp)
    assert "20071116" in info.labels["capabilities"].split(",")


def test_json_is_one_object_with_a_reading_per_node(capsys, tmp_path, live, silent_udp):
    dead, _ = silent_udp
    result = cli(capsys, *config(tmp_path, live[0].udp, dead), "--json", "metrics", "--budget", "0.6")
    assert result.code == 4
    data = result.json()
    assert set(data) == {"nodes", "elapsed_s", "budget_s", "ok", "output"} and data["ok"] is False
    up, down = data["nodes"]
    assert list(up) == ["node", "set_id", "up", "state", "weight", "rtt_ms", "version", "capabilities",
                        "sessions_active", "stats", "ledger_sessions", "error"]
    assert (up["node"], up["set_id"], up["up"], up["state"], up["version"], up["error"]) == (
        live[0].udp, 0, True, "enabled", 20040107, None)
    assert "REPACK" in up["capabilities"] and isinstance(up["stats"]["nsess_created"], int)
    assert (down["node"], down["up"], down["stats"], down["rtt_ms"]) == (dead, False, {}, None)
    assert down["error"]


def test_counters_are_the_relays_own(capsys, tmp_path, relays):
    relay = relays.start()
    base = config(tmp_path, relay.udp)
    call_id = f"metrics-{uuid.uuid4().hex[:8]}@test"
    sdp = write(tmp_path / "offer.sdp", "v=0\no=- 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 40000 RTP/AVP 0\n")
    offered = cli(capsys, *base, "offer", str(sdp), "--call-id", call_id, "--from-tag", "ft1")
    assert offered.code == 0, offered.stderr

    scraped = cli(capsys, *base, "metrics", "--budget", "2")
    assert scraped.code == 0, scraped.stderr
    info = cli(capsys, *base, "--json", "info")
    assert info.code == 0, info.stderr
    said = info.json()["relays"][0]
    found = families(scraped.stdout)
    where = {"node": relay.udp, "set": "0"}
    assert value(found, "rtppctl_relay_nsess_created", "rtppctl_relay_nsess_created_total", **where) == said["stats"]["nsess_created"] == 1
    assert value(found, "rtppctl_relay_sessions_active", **where) == said["info"]["active_sessions"] == 1
    # Commands keep coming (info's own among them): the relay counted no fewer for info than before.
    assert 0 < value(found, "rtppctl_relay_ncmds_rcvd", "rtppctl_relay_ncmds_rcvd_total", **where) < said["stats"]["ncmds_rcvd"]
    assert value(found, "rtppctl_relay_ncmds_errs", "rtppctl_relay_ncmds_errs_total", **where) == said["stats"]["ncmds_errs"]
    for name in ("npkts_rcvd", "npkts_relayed", "npkts_discard", "ncmds_succd", "ncmds_rcvd_ndups"):
        assert value(found, f"rtppctl_relay_{name}", f"rtppctl_relay_{name}_total", **where) is not None, name
    # The ledger holds the call on this node of set 0.
    assert value(found, "rtppctl_ledger_sessions", **where) == 1
    # Without the state store, no ledger: 0.
    none = cli(capsys, "--state", "none", "--config", base[1], "metrics", "--budget", "2")
    assert value(families(none.stdout), "rtppctl_ledger_sessions", **where) == 0


def test_a_scrape_changes_no_health(capsys, tmp_path, live, silent_udp, silent_tcp):
    dead, sock = silent_udp
    base = config(tmp_path, live[0].udp, dead, silent_tcp)
    assert cli(capsys, *base, "enable", live[0].udp, "2").code == 0  # probing mode: its recheck not due
    before = nodes_shown(capsys, base)
    started = time.monotonic()
    result = cli(capsys, *base, "metrics", "--budget", "0.8")
    assert time.monotonic() - started < 0.8 + MARGIN  # a relay that accepts and never answers hangs nothing either
    assert result.code == 4
    found = families(result.stdout)
    assert value(found, "rtppctl_relay_up", node=silent_tcp) == 0 and value(found, "rtppctl_relay_up", node=dead) == 0
    # Every node is asked whatever its health (as check does); a live one in probing mode answers.
    assert value(found, "rtppctl_relay_up", node=live[0].udp) == 1
    assert value(found, "rtppctl_relay_health_state", node=live[0].udp, state="probing") == 1
    assert nodes_shown(capsys, base) == before  # nothing disabled, nothing enabled, no recheck moved
    assert any(datagram.endswith(b" V") for datagram in datagrams_received(sock, 0.2))  # the dead one was asked


def test_a_target_has_no_set_and_no_health(capsys, tmp_path, live):
    result = cli(capsys, "--state", str(tmp_path / "s.sqlite3"), "metrics", "-t", live[1].udp, "--budget", "2")
    assert result.code == 0, result.stderr
    found = families(result.stdout)
    assert value(found, "rtppctl_relay_up", node=live[1].udp, set="") == 1
    assert found["rtppctl_relay_health_state"].samples == []


def test_output_file_is_replaced_atomically(capsys, tmp_path, live):
    target = tmp_path / "textfile" / "rtppctl.prom"
    target.parent.mkdir()
    target.write_text("# stale\n")
    os.chmod(target, 0o644)
    base = config(tmp_path, live[0].udp)
    result = cli(capsys, *base, "metrics", "-o", str(target), "--budget", "2")
    assert result.code == 0, result.stderr
    assert result.stdout == ""  # the exposition went to the file only
    assert re.search(rf"^wrote {re.escape(str(target))}: 1/1 relay answered in \d+\.\d+ s$", result.stderr, re.M)
    found = families(target.read_text())
    assert value(found, "rtppctl_relay_up", node=live[0].udp) == 1
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)
    assert [p.name for p in target.parent.iterdir()] == ["rtppctl.prom"]  # no temp file left behind
    as_json = cli(capsys, *base, "--json", "metrics", "-o", str(target), "--budget", "2")
    assert as_json.json()["output"] == str(target)
    # An output path that cannot be written is refused before any relay is asked (exit 6).
    refused = cli(capsys, *base, "metrics", "-o", str(tmp_path / "missing" / "x.prom"))
    assert refused.code == 6 and refused.stderr.startswith("rtppctl: error: ")


# -- --serve --------------------------------------------------------------------------------------


class Served:
    """`rtppctl metrics --serve` in a process of its own, on a free port of loopback."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "rtppctl", *args], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        self.head: list[str] = []
        watchdog = threading.Timer(20, self.process.kill)  # no status line in time: the test fails, it never hangs
        watchdog.start()
        try:
            for line in self.process.stderr:
                self.head.append(line)
                found = re.match(r"serving (http://\S+)/metrics ", line)
                if found:
                    self.base = found.group(1)
                    return
        finally:
            watchdog.cancel()
        raise AssertionError(f"metrics --serve did not start: {''.join(self.head)}")

    def get(self, path: str = "/metrics", accept: str | None = None) -> tuple[int, str, str, float]:
        request = urllib.request.Request(self.base + path, headers={"Accept": accept} if accept else {})
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.headers["Content-Type"], response.read().decode(), time.monotonic() - started
        except urllib.error.HTTPError as err:
            return err.code, err.headers["Content-Type"], err.read().decode(), time.monotonic() - started

    def stop(self, number: int = signal.SIGTERM) -> tuple[int, str, str]:
        self.process.send_signal(number)
        out, err = self.process.communicate(timeout=10)
        return self.process.returncode, out, "".join(self.head) + err


@pytest.fixture
def served():
    started: list[Served] = []

    def start(*args: str) -> Served:
        started.append(Served(*args))
        return started[-1]

    yield start
    for server in started:
        stop_process(server.process)


def test_serve_answers_each_scrape_within_its_budget(tmp_path, live, silent_udp, served):
    dead, _ = silent_udp
    server = served(*config(tmp_path, live[0].udp, live[1].udp, dead), "metrics", "--serve", "127.0.0.1:0", "--budget", "1")
    for _ in range(2):
        status, content_type, text, took = server.get()
        assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
        assert took < 1 + MARGIN
        found = families(text)
        assert [value(found, "rtppctl_relay_up", node=n) for n in (live[0].udp, live[1].udp, dead)] == [1, 1, 0]
    # Prometheus asks for OpenMetrics: it gets it.
    status, content_type, text, _ = server.get(accept="application/openmetrics-text; version=1.0.0; charset=utf-8")
    assert status == 200 and content_type.startswith("application/openmetrics-text") and text.endswith("# EOF\n")
    assert server.get("/")[0] == 200 and "/metrics" in server.get("/")[2]
    assert server.get("/nothing")[0] == 404
    code, out, err = server.stop(signal.SIGTERM)
    assert code == 130 and out == ""
    assert err.strip().splitlines()[-1] == "rtppctl: interrupted" and "Traceback" not in err
    assert "GET" not in err  # requests are logged with -v only


def test_overlapping_scrapes_share_one_and_ctrl_c_ends_it(tmp_path, live, silent_udp, served):
    dead, sock = silent_udp
    server = served(*config(tmp_path, live[0].udp, dead), "-v", "metrics", "--serve", "127.0.0.1:0", "--budget", "1")
    results: list[tuple] = []
    threads = [threading.Thread(target=lambda: results.append(server.get())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [r[0] for r in results] == [200] * 4
    assert all(r[3] < 2 * (1 + MARGIN) for r in results)
    # The silent relay was never asked twice at once: V went out at most twice (one send and its
    # resend) per scrape, and the four requests took at most two scrapes.
    asked = [d for d in datagrams_received(sock, 0.2) if d.endswith(b" V")]
    assert 1 <= len(asked) <= 4
    code, _, err = server.stop(signal.SIGINT)
    assert code == 130 and "Traceback" not in err
    assert "scrape: 1/2 relays answered" in err and '"GET /metrics HTTP/1.1" 200' in err  # -v logs them


def test_serve_refuses_bad_addresses_and_a_busy_port(capsys, tmp_path, live):
    base = config(tmp_path, live[0].udp)
    for bad in ("localhost:9100", "99999", "::1:9100", "[::1]9100", "1.2.3.4:", "", "9100 "):
        result = cli(capsys, *base, "metrics", "--serve", bad)
        assert result.code == 6, (bad, result.stderr)
        assert result.stderr.startswith("rtppctl: error: --serve ") and "Traceback" not in result.stderr
    assert cli(capsys, *base, "metrics", "--serve", "9100", "-o", str(tmp_path / "x")).code == 2
    assert cli(capsys, *base, "metrics", "--budget", "0").code == 2
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = cli(capsys, *base, "metrics", "--serve", f"127.0.0.1:{busy.getsockname()[1]}")
    assert result.code == 5, result.stderr
    assert "the port is busy" in result.stderr and len(result.stderr.strip().splitlines()) == 2  # error and hint


def test_serve_addresses():
    assert parse_serve_address("9100") == ("127.0.0.1", 9100)
    assert parse_serve_address("127.0.0.1:9100") == ("127.0.0.1", 9100)
    assert parse_serve_address("0.0.0.0:9100") == ("0.0.0.0", 9100)
    assert parse_serve_address("[::1]:9100") == ("::1", 9100)
    assert parse_serve_address("0") == ("127.0.0.1", 0)
    for bad in ("[127.0.0.1]:1", "-1", "+9100", "１２３", "65536", "[::1]:x"):
        with pytest.raises(InputError):
            parse_serve_address(bad)


# -- check's figures ---------------------------------------------------------------------------------


def test_a_check_report_as_gauges():
    direction = {"direction": "caller-to-callee", "sent": 50, "received": 49, "lost": 1, "loss_pct": 2.0,
                 "duplicates": 0, "reordered": 1, "late": 0, "corrupted": 0, "stray": 0,
                 "latency_ms": {"min": 0.05, "avg": 0.09, "p99": 0.2, "max": 0.3}, "jitter_ms": 0.01, "latched": True,
                 "relay_received": 50, "lost_before_relay": 0, "lost_after_relay": 1}
    silent = {**direction, "direction": "callee-to-caller", "received": 0, "lost": 50, "loss_pct": 100.0,
              "latency_ms": None, "jitter_ms": None, "latched": None}
    report = {
        "ok": False, "verdict": "1/2 relays forward media both ways", "packets": 50, "ptime_ms": 20, "late_ms": 150,
        "max_loss_pct": 5.0, "deadline_s": 45.0, "elapsed_s": 1.32,
        "nodes": [
            {"node": "udp:127.0.0.1:22222", "set_id": 0, "state": "enabled", "status": "fail", "reason": "lost",
             "rtt_ms": 0.21, "version": 20040107, "capabilities": ["REPACK"], "directions": [direction, silent]},
            {"node": "udp:127.0.0.1:22223", "set_id": None, "state": None, "status": "pass", "reason": None,
             "rtt_ms": None, "directions": []},
        ],
    }
    found = families(check_exposition(report, 1_700_000_000.5))
    one = {"node": "udp:127.0.0.1:22222", "set": "0"}
    assert value(found, "rtppctl_check_up", **one) == 0
    assert value(found, "rtppctl_check_up", node="udp:127.0.0.1:22223", set="") == 1
    assert value(found, "rtppctl_check_rtt_seconds", **one) == pytest.approx(0.00021)
    assert [s.labels["node"] for s in found["rtppctl_check_rtt_seconds"].samples] == [one["node"]]  # null left out
    forward = {**one, "direction": "caller-to-callee"}
    assert [value(found, f"rtppctl_check_packets_{k}", **forward) for k in
            ("sent", "received", "lost", "duplicates", "reordered", "late", "corrupted")] == [50, 49, 1, 0, 1, 0, 0]
    assert value(found, "rtppctl_check_loss_ratio", **forward) == pytest.approx(0.02)
    assert value(found, "rtppctl_check_loss_ratio", **one, direction="callee-to-caller") == 1
    assert [value(found, f"rtppctl_check_latency_{s}_seconds", **forward) for s in ("min", "avg", "p99", "max")] == \
        pytest.approx([0.00005, 0.00009, 0.0002, 0.0003])
    assert value(found, "rtppctl_check_jitter_seconds", **forward) == pytest.approx(0.00001)
    assert value(found, "rtppctl_check_latched", **forward) == 1
    for name in ("rtppctl_check_latency_avg_seconds", "rtppctl_check_jitter_seconds", "rtppctl_check_latched"):
        assert all(s.labels["direction"] == "caller-to-callee" for s in found[name].samples), name
    assert value(found, "rtppctl_check_success") == 0
    assert value(found, "rtppctl_check_duration_seconds") == 1.32
    assert value(found, "rtppctl_check_last_run_timestamp_seconds") == 1_700_000_000.5
    assert all(family.type == "gauge" for family in found.values())
    json.dumps(report)  # the report is the JSON object check prints, nothing more
