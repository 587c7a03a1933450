"""Relay sets against three real relays: the module's choice, failover, health, the ledger.

Every offer goes through the real selection, health table, state file and relays; the node a call
should reach is worked out independently with the pure selector, and where the call really went
is read back from the relays themselves (`I` counts active sessions).
"""

from __future__ import annotations

import json
import os
import random
import string
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from rtppctl.proto.select import Candidate, choose
from tests.cli.helpers import cli, cli_process
from tests.conftest import write
from tests.relay import free_port

SDP = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 4000 RTP/AVP 0 8\n"
ANSWER_SDP = "v=0\no=- 2 2 IN IP4 10.0.0.2\ns=-\nc=IN IP4 10.0.0.2\nt=0 0\nm=audio 5000 RTP/AVP 0\n"
WEIGHTS = (2, 1, 1)


@pytest.fixture(scope="module")
def trio(relays):
    """Three relays that every test of the module may use but none stops."""
    return [relays.start() for _ in WEIGHTS]


def config_for(tmp_path: Path, urls: list[str], weights=WEIGHTS, disable_tout: int = 60) -> Path:
    nodes = " ".join(f"{url}={weight}" for url, weight in zip(urls, weights))
    return write(tmp_path / "sets.toml", (
        f'rtpproxy_sock = ["{nodes}"]\n'
        f"rtpproxy_timeout = 0.2\nrtpproxy_retr = 2\nrtpproxy_disable_tout = {disable_tout}\n"
    ))


def call_ids(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choices(string.ascii_letters + string.digits, k=rng.randint(6, 24))) + "@host"
            for _ in range(count)]


def expected(call_id: str, urls: list[str], weights=WEIGHTS, disabled=()) -> str:
    choice = choose(call_id, [Candidate(w, url not in disabled) for url, w in zip(urls, weights, strict=True)])
    assert choice.index is not None
    return urls[choice.index]


def offer(capsys, config: Path, sdp: Path, call_id: str, *extra: str):
    return cli(capsys, "--config", str(config), "--json", "offer", str(sdp), "--call-id", call_id, "--from-tag", "ft", *extra)


def show(capsys, config: Path) -> dict[str, dict]:
    result = cli(capsys, "--config", str(config), "--json", "show")
    assert result.code == 0, result.stderr
    return {node["url"]: node for state in result.json()["sets"] for node in state["nodes"]}


def active_sessions(capsys, url: str) -> int:
    return cli(capsys, "--json", "info", "-t", url).json()["relays"][0]["info"]["active_sessions"]


@pytest.fixture
def sdp(tmp_path) -> Path:
    return write(tmp_path / "offer.sdp", SDP)


# -- selection ------------------------------------------------------------------------------------


def test_each_offer_reaches_the_node_of_the_hash_and_the_weights_hold(capsys, trio, tmp_path, sdp):
    urls = [relay.udp for relay in trio]
    config = config_for(tmp_path, urls)
    before = {url: active_sessions(capsys, url) for url in urls}
    went = Counter()
    for call_id in call_ids(160, seed=7):
        result = offer(capsys, config, sdp, call_id)
        assert result.code == 0, result.stderr
        node = result.json()["node"]
        assert node == expected(call_id, urls), call_id
        went[node] += 1
    # The relays themselves hold the sessions where the selector said they would go.
    assert {url: active_sessions(capsys, url) - before[url] for url in urls} == dict(went)
    # Weight 2 of 4 takes about half the calls; the hash is coarse, so the bounds are wide.
    assert 0.35 < went[urls[0]] / 160 < 0.65
    assert all(went[url] > 0 for url in urls)


def test_one_channel_per_node_in_a_raw_batch_and_in_the_shell(trio, tmp_path):
    urls = [relay.udp for relay in trio]
    config = config_for(tmp_path, urls)
    batch = write(tmp_path / "batch.txt", "V\nVF 20050322\nI\nV\n")
    env = {**os.environ, "RTPPCTL_STATE": str(tmp_path / "state.sqlite3")}
    raw = subprocess.run([sys.executable, "-m", "rtppctl", "-v", "--config", str(config), "raw", "-f", str(batch)],
                         capture_output=True, text=True, env=env, timeout=60)
    assert raw.returncode == 0, raw.stderr
    assert raw.stderr.count("channel: ") == 1
    script = "".join(
        f"load {write(tmp_path / f'o{n}.sdp', SDP)}\ncall-id shell-{n}@h\nfrom-tag ft\noffer\nunforce\n" for n in range(6)
    )
    shell = subprocess.run([sys.executable, "-m", "rtppctl", "-v", "--config", str(config), "shell"],
                           input=script, capture_output=True, text=True, env=env, timeout=60)
    assert shell.returncode == 0, shell.stderr
    opened = [line.split()[1] for line in shell.stderr.splitlines() if line.startswith("channel: ")]
    used = {expected(f"shell-{n}@h", urls) for n in range(6)}
    # Twelve commands (an offer and an unforce per call), one channel per node they used.
    assert sorted(opened) == sorted(used)


# -- failover and health ----------------------------------------------------------------------------


def test_an_offer_fails_over_when_its_node_is_killed_and_the_node_stays_disabled(capsys, relays, tmp_path, sdp):
    trio = [relays.start() for _ in WEIGHTS]
    urls = [relay.udp for relay in trio]
    config = config_for(tmp_path, urls)
    victim = trio[0]
    call_id = next(c for c in call_ids(200, seed=3) if expected(c, urls) == victim.udp)
    victim.stop()
    result = offer(capsys, config, sdp, call_id)
    assert result.code == 0, result.stderr
    fallback = expected(call_id, urls, disabled={victim.udp})
    assert result.json()["node"] == fallback != victim.udp
    assert f"relay {victim.udp} (set 0) is now disabled" in result.stderr
    assert active_sessions(capsys, fallback) == 1
    nodes = show(capsys, config)
    assert nodes[victim.udp]["state"] == "disabled" and nodes[victim.udp]["recheck_in"] > 50
    # Later calls skip the dead node at once: no timeout spent on it.
    started = time.monotonic()
    again = offer(capsys, config, sdp, call_id + "x" if expected(call_id + "x", urls) == victim.udp else call_id)
    assert again.code == 0 and again.json()["node"] != victim.udp
    assert time.monotonic() - started < 0.4
    for relay in trio[1:]:
        relay.stop()


def test_a_disabled_node_is_probed_again_after_the_timeout_and_comes_back(capsys, relays, tmp_path, sdp):
    port = free_port()
    late = f"udp:127.0.0.1:{port}"
    others = [relays.start() for _ in range(2)]
    urls = [late, others[0].udp, others[1].udp]
    config = config_for(tmp_path, urls, disable_tout=1)
    call_id, fresh_call, third_call = [c for c in call_ids(300, seed=5) if expected(c, urls) == late][:3]
    first = offer(capsys, config, sdp, call_id)
    assert first.code == 0 and first.json()["node"] != late
    assert show(capsys, config)[late]["state"] == "disabled"
    started = relays.start(udp_port=port)
    time.sleep(1.1)
    second = offer(capsys, config, sdp, fresh_call, "--set", "0")
    assert second.code == 0, second.stderr
    assert second.json()["node"] == late
    assert show(capsys, config)[late]["state"] == "enabled"
    assert f"relay {late} (set 0) is active again (probe ok)" in second.stderr
    assert offer(capsys, config, sdp, third_call).json()["node"] == late
    # The first call stays where its offer went: a re-offer follows the ledger while that node is up.
    assert offer(capsys, config, sdp, call_id).json()["node"] == first.json()["node"]
    started.stop()
    for relay in others:
        relay.stop()


def test_a_disable_timeout_below_zero_probes_a_disabled_node_on_every_call(capsys, relays, tmp_path, sdp):
    # OpenSIPS modules/rtpproxy/rtpproxy.c (8f4f1e1b), select_rtpp_node: a disabled node whose
    # rn_recheck_ticks <= get_ticks() is probed (rtpp_test) and, failing, gets get_ticks() +
    # rtpproxy_disable_tout again; with a negative value that is in the past, so the next call
    # probes it again (docs/protocol.md §2.2). The silent socket stands in for a dead relay and counts
    # the probes; then a real relay comes up on its port.
    import socket

    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    silent.settimeout(0)
    dead = f"udp:127.0.0.1:{silent.getsockname()[1]}"
    others = [relays.start() for _ in range(2)]
    urls = [dead, others[0].udp, others[1].udp]
    config = config_for(tmp_path, urls, disable_tout=-1)
    calls = [c for c in call_ids(300, seed=29) if expected(c, urls) == dead][:4]

    def probes() -> int:
        count = 0
        while True:
            try:
                data = silent.recv(4096)
            except BlockingIOError:
                return count
            count += data.split(b" ", 1)[1].strip() == b"V"

    try:
        first = offer(capsys, config, sdp, calls[0])
        assert first.code == 0 and first.json()["node"] == expected(calls[0], urls, disabled={dead})
        assert show(capsys, config)[dead]["state"] == "disabled"
        probes()
        for call_id in calls[1:3]:
            # Still dead: every call probes it again (2 sends: rtpproxy_retr), then goes elsewhere.
            result = offer(capsys, config, sdp, call_id)
            assert result.code == 0 and result.json()["node"] != dead
            assert probes() == 2
    finally:
        port = silent.getsockname()[1]
        silent.close()
    started = relays.start(udp_port=port)
    try:
        # No waiting for a timeout: the very next call finds it back.
        back = offer(capsys, config, sdp, calls[3])
        assert back.code == 0 and back.json()["node"] == dead
        assert f"relay {dead} (set 0) is active again (probe ok)" in back.stderr
    finally:
        started.stop()
        for relay in others:
            relay.stop()


def test_probing_mode_and_off(capsys, trio, tmp_path, sdp):
    urls = [relay.udp for relay in trio]
    config = config_for(tmp_path, urls, disable_tout=1)
    target = urls[1]
    # Distinct calls: a call the ledger knows stays on its node while that node is up.
    call_id, back_call, off_call, on_call = [c for c in call_ids(400, seed=11) if expected(c, urls) == target][:4]
    base = ["--config", str(config)]

    result = cli(capsys, *base, "--json", "enable", target, "2")
    assert result.code == 0, result.stderr
    assert result.json()["changes"] == [{
        "set_id": 0, "url": target, "before": "enabled", "after": "probing",
        "recheck_at": pytest.approx(time.time() + 1, abs=1), "status": "inactive",
    }]
    assert show(capsys, config)[target]["state"] == "probing"
    assert offer(capsys, config, sdp, call_id).json()["node"] == expected(call_id, urls, disabled={target})
    time.sleep(1.1)
    # The recheck is due: the next selection probes it, and it answers.
    assert offer(capsys, config, sdp, back_call).json()["node"] == target
    assert show(capsys, config)[target]["state"] == "enabled"

    off = cli(capsys, *base, "enable", target, "0")
    assert off.code == 0 and f"{target} in set 0: enabled -> off; E_RTPPROXY_STATUS inactive" in off.stdout
    time.sleep(1.1)
    assert offer(capsys, config, sdp, off_call).json()["node"] != target  # off is never probed
    assert show(capsys, config)[target]["state"] == "off"
    on = cli(capsys, *base, "--json", "enable", target, "1")
    assert on.json()["changes"][0]["status"] == "active"
    assert offer(capsys, config, sdp, on_call).json()["node"] == target


def test_a_node_in_probing_mode_stays_out_until_its_recheck_whatever_probes_it(capsys, trio, tmp_path):
    # Issue 15: `show --probe` and then `listen --status-interval` brought a node in probing mode
    # back before its recheck time. Only the recheck (or the module's "no node enabled" rule) may.
    urls = [relay.udp for relay in trio]
    config = config_for(tmp_path, urls, disable_tout=60)
    target = urls[1]
    base = ["--config", str(config), "--json"]
    assert cli(capsys, *base, "enable", target, "2").code == 0
    probed = cli(capsys, *base, "show", "--probe")
    assert probed.code == 0, probed.stderr
    node = next(n for s in probed.json()["sets"] for n in s["nodes"] if n["url"] == target)
    assert node["state"] == "probing" and node["probe_error"] is None  # it answered; it is not judged yet
    listened = cli_process(*base, "listen", f"tcp:127.0.0.1:{free_port()}", "--status-interval", "0.5",
                           "--duration", "1.5", timeout=30)
    assert listened.code == 0, listened.stderr
    records = [json.loads(line) for line in listened.stdout.splitlines()]
    assert records[-1]["type"] == "summary" and records[-1]["seconds"] >= 1.5
    assert [r for r in records if r["type"] == "status"] == []
    assert show(capsys, config)[target]["state"] == "probing"


def test_enable_refuses_an_unknown_url_naming_the_configured_ones(capsys, trio, tmp_path):
    urls = [relay.udp for relay in trio]
    config = config_for(tmp_path, urls)
    result = cli(capsys, "--config", str(config), "enable", "udp:127.0.0.1:1", "0")
    assert result.code == 6
    assert "no relay 'udp:127.0.0.1:1' in any set" in result.stderr and urls[0] in result.stderr


# -- the ledger -----------------------------------------------------------------------------------------


def test_answer_and_unforce_follow_the_offer_even_when_its_node_is_off(capsys, trio, tmp_path, sdp):
    urls = [relay.udp for relay in trio]
    config = config_for(tmp_path, urls)
    call_id = next(c for c in call_ids(200, seed=13) if expected(c, urls) == urls[2])
    assert offer(capsys, config, sdp, call_id).json()["node"] == urls[2]
    assert cli(capsys, "--config", str(config), "enable", urls[2], "0").code == 0
    answer_file = write(tmp_path / "answer.sdp", ANSWER_SDP)
    base = ["--config", str(config), "--json"]
    answer = cli(capsys, *base, "answer", str(answer_file), "--call-id", call_id, "--from-tag", "ft", "--to-tag", "tt")
    assert answer.code == 0, answer.stderr
    assert answer.json()["node"] == urls[2]
    listed = cli(capsys, *base, "sessions").json()["sessions"]
    entry = next(e for e in listed if e["call_id"] == call_id)
    assert (entry["node_url"], entry["from_tag"], entry["to_tag"], entry["set_id"]) == (urls[2], "ft", "tt", 0)
    assert [s["codecs"] for s in entry["streams"]] == [[0, 8]] and entry["streams"][0]["port"] > 0
    # Without a ledger the module's way applies: the hash over the health known (none: all enabled).
    stateless = cli(capsys, "--state", "none", *base, "answer", str(answer_file), "--call-id", call_id,
                    "--from-tag", "ft", "--to-tag", "tt")
    assert stateless.code == 0 and stateless.json()["node"] == urls[2]
    gone = cli(capsys, *base, "unforce", "--call-id", call_id, "--from-tag", "ft")
    assert gone.code == 0 and gone.json()["node"] == urls[2] and gone.json()["had_session"]
    assert call_id not in [e["call_id"] for e in cli(capsys, *base, "sessions").json()["sessions"]]
    assert cli(capsys, "--config", str(config), "enable", urls[2], "1").code == 0


def test_sessions_prune_drops_the_calls_a_relay_no_longer_has(capsys, trio, tmp_path, sdp):
    urls = [relay.udp for relay in trio]
    config = config_for(tmp_path, urls)
    base = ["--config", str(config), "--json"]
    kept, dropped = "prune-kept@h", "prune-dropped@h"
    for call_id in (kept, dropped):
        assert offer(capsys, config, sdp, call_id).code == 0
    node = expected(dropped, urls)
    assert cli(capsys, "raw", "-t", node, f"D {dropped} ft").code == 0  # behind rtppctl's back
    result = cli(capsys, *base, "sessions", "--prune")
    assert result.code == 0, result.stderr
    data = result.json()
    assert data["pruned"] == [{"call_id": dropped, "node": node, "reason": "gone"}]
    assert [e["call_id"] for e in data["sessions"]] == [kept]


def test_eight_processes_offering_at_once_leave_a_consistent_ledger(trio, tmp_path):
    urls = [relay.udp for relay in trio]
    config = config_for(tmp_path, urls)
    state = tmp_path / "shared.sqlite3"
    sdp = write(tmp_path / "offer.sdp", SDP)
    env = {**os.environ, "RTPPCTL_STATE": str(state)}
    batches = {worker: [f"w{worker}-{n}@host" for n in range(4)] for worker in range(8)}
    script = "import sys\nfrom rtppctl.cli.app import run\nfor call_id in sys.argv[3:]:\n" \
             "    code = run(['--config', sys.argv[1], '--json', 'offer', sys.argv[2], '--call-id', call_id, '--from-tag', 'ft'])\n" \
             "    assert code == 0, code\n"
    workers = [subprocess.Popen([sys.executable, "-c", script, str(config), str(sdp), *ids], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
               for ids in batches.values()]
    # Meanwhile, an operator takes a node out and puts it back: no change may be lost.
    assert subprocess.run([sys.executable, "-m", "rtppctl", "--config", str(config), "enable", urls[1], "2"],
                          env=env, capture_output=True, timeout=60).returncode == 0
    for process in workers:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
    listed = subprocess.run([sys.executable, "-m", "rtppctl", "--config", str(config), "--json", "sessions"],
                            env=env, capture_output=True, text=True, timeout=60)
    entries = {e["call_id"]: e for e in json.loads(listed.stdout)["sessions"]}
    assert set(entries) == {c for ids in batches.values() for c in ids}
    for call_id, entry in entries.items():
        # Each call is on the node it hashes to with the middle node in or out of selection.
        assert entry["node_url"] in {expected(call_id, urls), expected(call_id, urls, disabled={urls[1]})}
    shown = subprocess.run([sys.executable, "-m", "rtppctl", "--config", str(config), "--json", "show"],
                           env=env, capture_output=True, text=True, timeout=60)
    nodes = {n["url"]: n for s in json.loads(shown.stdout)["sets"] for n in s["nodes"]}
    assert nodes[urls[1]]["state"] == "probing"
    assert sum(n["sessions"] for n in nodes.values()) == 32


# -- which commands use the state file -------------------------------------------------------------------


def test_with_a_target_the_state_file_holds_the_ledger_and_never_health(capsys, relay, isolated_dirs, tmp_path, sdp):
    """The documented rule: commands given --target that act on a call (offer, answer, unforce,
    stats, record...) keep the ledger in the state file, on purpose; nothing given --target ever
    writes a node's health there; commands about the relay alone (version, ping, raw, info) never
    open it; --state none keeps a run off it entirely."""
    import sqlite3

    empty = write(tmp_path / "empty.toml", "")
    state_file = isolated_dirs / "state" / "rtppctl" / "state.sqlite3"
    for command in (["version"], ["ping"], ["raw", "V"], ["info"]):
        assert cli(capsys, "--config", str(empty), *command, "-t", relay.udp).code == 0
    assert not state_file.exists()
    assert offer(capsys, empty, sdp, "nostate@h", "--state", "none", "-t", relay.udp).code == 0
    assert not state_file.exists()
    assert offer(capsys, empty, sdp, "state@h", "-t", relay.udp).code == 0
    db = sqlite3.connect(state_file)
    try:
        assert db.execute("SELECT call_id, node_url, set_id FROM rtppctl_sessions").fetchall() == [
            ("state@h", relay.udp, None)]
        assert db.execute("SELECT count(*) FROM rtppctl_nodes").fetchone() == (0,)
    finally:
        db.close()
    assert cli(capsys, "--config", str(empty), "unforce", "--call-id", "state@h", "--from-tag", "ft",
               "-t", relay.udp).code == 0
    assert cli(capsys, "--config", str(empty), "--json", "sessions").json()["sessions"] == []


def test_a_state_file_that_is_not_rtppctls_is_refused_and_left_alone(capsys, relay, tmp_path, sdp):
    foreign = write(tmp_path / "notes.txt", "my notes\n")
    empty = write(tmp_path / "empty.toml", "")
    result = offer(capsys, empty, sdp, "c@h", "--state", str(foreign), "-t", relay.udp)
    assert result.code == 5 and str(foreign) in result.stderr and result.stdout == ""
    assert foreign.read_text() == "my notes\n"


# -- show, ping, version, info over a set ---------------------------------------------------------------


def test_ping_version_and_info_cover_every_node_and_ping_updates_health(capsys, trio, tmp_path):
    dead = f"udp:127.0.0.1:{free_port()}"
    urls = [trio[0].udp, dead, trio[1].udp]
    config = config_for(tmp_path, urls)
    base = ["--config", str(config), "--json"]
    ping = cli(capsys, *base, "ping")
    assert ping.code == 4
    assert [(r["node"], r["reachable"]) for r in ping.json()["relays"]] == [(urls[0], True), (dead, False), (urls[2], True)]
    nodes = show(capsys, config)
    assert nodes[dead]["state"] == "disabled" and nodes[urls[0]]["state"] == "enabled"
    assert nodes[urls[0]]["capabilities"] and "CODECS" in nodes[urls[0]]["capabilities"]
    for command in ("version", "info"):
        result = cli(capsys, *base, command)
        assert result.code == 4 and dead in result.stderr
        rows = result.json()["relays"]
        assert [r["node"] for r in rows] == urls and [r["error"] is None for r in rows] == [True, False, True]


def test_show_watch_prints_a_status_event_when_a_node_changes(trio, tmp_path):
    urls = [relay.udp for relay in trio]
    config = config_for(tmp_path, urls)
    env = {**os.environ, "RTPPCTL_STATE": str(tmp_path / "watch.sqlite3")}
    watcher = subprocess.Popen([sys.executable, "-m", "rtppctl", "--config", str(config), "--json", "show", "--watch", "0.2"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        assert subprocess.run([sys.executable, "-m", "rtppctl", "--config", str(config), "enable", urls[2], "0"],
                              env=env, capture_output=True, timeout=60).returncode == 0
        event = json.loads(watcher.stdout.readline())
    finally:
        watcher.terminate()
        watcher.wait(10)
    assert {k: event[k] for k in ("type", "socket", "set", "status", "state")} == {
        "type": "status", "socket": urls[2], "set": 0, "status": "inactive", "state": "off"}
    # The one status event shape (listen's too), the change seen in the state store as its reason.
    assert list(event) == ["type", "time", "socket", "set", "status", "state", "reason"]
    assert event["reason"] == "changed by another process (seen in the state store)"
    assert abs(event["time"] - time.time()) < 30


def test_an_answer_is_not_moved_when_the_calls_relay_is_dead(capsys, relays, tmp_path, sdp):
    pair = [relays.start(), relays.start()]
    urls = [relay.udp for relay in pair]
    config = config_for(tmp_path, urls, weights=(1, 1))
    call_id = "not-moved@h"
    first = offer(capsys, config, sdp, call_id)
    holder = first.json()["node"]
    next(relay for relay in pair if relay.udp == holder).stop()
    answer_file = write(tmp_path / "answer.sdp", ANSWER_SDP)
    result = cli(capsys, "--config", str(config), "answer", str(answer_file), "--call-id", call_id,
                 "--from-tag", "ft", "--to-tag", "tt")
    assert result.code == 4 and result.stdout == ""
    assert holder in result.stderr and "does not look it up on another relay" in result.stderr
    assert show(capsys, config)[holder]["state"] == "disabled"
    for relay in pair:
        relay.stop()


def test_enable_without_a_state_file_is_refused(capsys, trio, tmp_path):
    config = config_for(tmp_path, [relay.udp for relay in trio])
    result = cli(capsys, "--config", str(config), "--state", "none", "enable", trio[0].udp, "0")
    assert result.code == 2 and "--state none" in result.stderr and result.stdout == ""


def test_lb_explain_counts_the_relays_the_state_file_has_out(capsys, trio, tmp_path):
    urls = [relay.udp for relay in trio]
    config = config_for(tmp_path, urls)
    call_id = next(c for c in call_ids(200, seed=17) if expected(c, urls) == urls[0])
    assert cli(capsys, "--config", str(config), "enable", urls[0], "0").code == 0
    result = cli(capsys, "--config", str(config), "--json", "lb", "explain", call_id)
    assert result.code == 0, result.stderr
    assert result.json()["node"] == expected(call_id, urls, disabled={urls[0]}) != urls[0]
    assert f"{urls[0]} is off in the state file" in result.stderr
    cli(capsys, "--config", str(config), "enable", urls[0], "1")


def test_sessions_prune_keeps_the_calls_of_a_dead_relay_and_asks_it_once(capsys, relays, tmp_path, sdp):
    pair = [relays.start(), relays.start()]
    urls = [relay.udp for relay in pair]
    config = config_for(tmp_path, urls, weights=(1, 1))
    on_first = [c for c in call_ids(100, seed=23) if expected(c, urls, weights=(1, 1)) == urls[0]][:3]
    for call_id in on_first:
        assert offer(capsys, config, sdp, call_id).code == 0
    pair[0].stop()
    started = time.monotonic()
    result = cli(capsys, "--config", str(config), "--json", "sessions", "--prune")
    assert result.code == 0, result.stderr
    data = result.json()
    assert data["pruned"] == [] and sorted(data["unchecked"]) == sorted(on_first)
    assert sorted(e["call_id"] for e in data["sessions"]) == sorted(on_first)
    assert time.monotonic() - started < 2.0
    pair[1].stop()
