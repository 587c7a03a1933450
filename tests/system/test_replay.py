"""rtppctl replay against real relays, over captures the tests write themselves.

The main capture holds real calls: two agents with real media sockets, rtppctl as the proxy
(`engage` on the INVITE and the 200 OK, `unforce` on the BYE, against real relays in a weighted
set), every message as the proxy's host captures it (received, and forwarded with the rewritten
SDP) and the RTP the agents really sent (tests/traces.py). Replaying it must give every call the same node, the
same sessions on the relays, and the SDP rtppctl wrote then, apart from the relay's ports.
"""

from __future__ import annotations

import json
import re

import pytest

from rtppctl.proto.capture import SipPacket
from tests.cli.helpers import cli
from tests.conftest import write
from tests.sipmsg import Msg, sdp
from tests.traces import OwnCapture, capture_calls, write_pcap


def relay_stats(capsys, base: list[str]) -> dict[str, dict[str, int]]:
    result = cli(capsys, *base, "--json", "info")
    assert result.code == 0, result.stderr
    return {relay["node"]: {"created": relay["stats"]["nsess_created"], "active": relay["info"]["active_sessions"]}
            for relay in result.json()["relays"]}


def records(stdout: str) -> tuple[list[dict], dict]:
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert rows and rows[-1]["type"] == "summary", stdout[-800:]
    return rows[:-1], rows[-1]


def ports_out(body: str) -> str:
    """An SDP with the relay's choices taken out: m= ports (the address is the relay's, the same)."""
    return re.sub(r"(?m)^m=(\w+) \d+", r"m=\1 PORT", body)


def replayed_as_made(call: dict, original) -> None:
    """A replayed call did what rtppctl did as the proxy: U, L and D, all on the call's node, and
    the SDP engage wrote then, the relay's ports aside; no finding; the proxy's 6 copies skipped."""
    assert [(s["op"], s["letter"], s["ok"]) for s in call["steps"]] == [
        ("offer", "U", True), ("answer", "L", True), ("unforce", "D", True)]
    assert {s["node"] for s in call["steps"]} == {original.node}
    assert ports_out(call["steps"][0]["sdp"]) == ports_out(original.forwarded_offer)
    assert ports_out(call["steps"][1]["sdp"]) == ports_out(original.forwarded_answer)
    assert call["findings"] == [] and call["forwarded"] == 6


@pytest.fixture(scope="module")
def farm(relays, tmp_path_factory):
    """Two relays of this module's own, weighted 2 and 1 in one set, and the config naming them."""
    first, second = relays.start(), relays.start()
    home = tmp_path_factory.mktemp("replay-farm")
    config = write(home / "c.toml", f'rtpproxy_sock = ["{first.udp}=2 {second.udp}=1"]\n')
    yield {"relays": (first, second), "config": config, "home": home}
    first.stop()
    second.stop()


@pytest.fixture(scope="module")
def captured(farm, tmp_path_factory):
    """Eight real calls through the farm, captured on the proxy's host; the relays' session
    counters over the capture."""
    home = tmp_path_factory.mktemp("replay-capture")
    base = ["--config", str(farm["config"]), "--state", "none"]
    with OwnCapture() as capsys:
        before = relay_stats(capsys, base)
        calls = capture_calls(capsys, home, base, 8)
        after = relay_stats(capsys, base)
    path = write_pcap(home / "calls.pcap", [record for call in calls for record in call.records])
    created = {node: after[node]["created"] - before[node]["created"] for node in after}
    return {"path": path, "calls": calls, "created": created, "base": base}


def test_every_captured_call_replays_to_the_same_node_with_the_same_sessions(capsys, captured):
    base = captured["base"]
    before = relay_stats(capsys, base)
    result = cli(capsys, *base, "--json", "replay", str(captured["path"]))
    assert result.code == 0, result.stderr + result.stdout[-2000:]
    calls, summary = records(result.stdout)
    after = relay_stats(capsys, base)
    assert {node: after[node]["created"] - before[node]["created"] for node in after} == captured["created"]
    assert all(stats["active"] == 0 for stats in after.values())
    by_id = {call["call_id"]: call for call in calls}
    assert len(by_id) == 8 and summary["calls"] == 8 and summary["failed"] == 0
    for original in captured["calls"]:
        call = by_id[original.call_id]
        replayed_as_made(call, original)
        assert call["cleaned_up"] is False and call["messages"] == 12
    assert summary["proxies"] == ["127.0.0.12"]
    assert summary["capture"]["sip_messages"] == 96
    # The keys the README documents (an API scripts read).
    assert set(calls[0]) == {"type", "call_id", "caller", "callee", "first_time", "last_time", "messages",
                             "retransmissions", "forwarded", "steps", "findings", "cleaned_up", "media"}
    assert set(calls[0]["steps"][0]) == {"step", "frame", "time", "message", "why", "op", "ok", "node", "letter",
                                         "commands", "sdp", "diff", "diff_against", "warnings", "error"}
    assert set(summary) == {"type", "calls", "steps", "failed", "findings", "proxies", "unreadable", "capture",
                            "interrupted", "exit_code"}


def test_diff_is_against_the_proxys_forwarded_copy_and_shows_only_the_ports(capsys, captured):
    original = captured["calls"][0]
    result = cli(capsys, *captured["base"], "--json", "replay", str(captured["path"]), "--call-id", original.call_id,
                 "--diff")
    assert result.code == 0, result.stderr
    (call,), summary = records(result.stdout)
    offer = call["steps"][0]
    assert offer["diff_against"] == "forwarded copy"
    changed = [line for line in offer["diff"].splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changed and all(line[1:].startswith("m=audio ") for line in changed), offer["diff"]
    assert summary["calls"] == 1


def test_list_names_every_call_with_its_times_and_sdp(capsys, captured):
    result = cli(capsys, "--json", "replay", "--list", str(captured["path"]))
    assert result.code == 0, result.stderr
    listed = result.json()["calls"]
    assert [call["call_id"] for call in listed] == [call.call_id for call in captured["calls"]]
    assert all(call["messages"] == 12 and call["sdp"] is True and call["first_time"] <= call["last_time"]
               for call in listed)
    assert listed[0]["caller"].startswith('"Alice"')
    table = cli(capsys, "replay", "--list", str(captured["path"]))
    assert table.code == 0 and captured["calls"][0].call_id in table.stdout and "8 calls" in table.stdout


def test_since_and_until_choose_calls_by_their_first_message(capsys, captured):
    path = str(captured["path"])
    listed = cli(capsys, "--json", "replay", "--list", path).json()["calls"]
    start = listed[0]["first_time"]
    third = listed[2]["first_time"] - start
    # A microsecond before the third call (the capture's resolution): printing the offset rounds it.
    later = cli(capsys, "--json", "replay", "--list", path, "--since", f"{third - 1e-6:.6f}").json()["calls"]
    assert [call["call_id"] for call in later] == [call["call_id"] for call in listed[2:]]
    from datetime import datetime, timezone

    until = datetime.fromtimestamp(listed[1]["first_time"], tz=timezone.utc).isoformat()
    early = cli(capsys, "--json", "replay", "--list", path, "--until", until).json()["calls"]
    assert [call["call_id"] for call in early] == [call["call_id"] for call in listed[:2]]
    bad = cli(capsys, "replay", "--list", path, "--since", "yesterday")
    assert bad.code == 2 and "--since" in bad.stderr


def test_emit_batch_writes_operations_that_batch_runs_again(capsys, captured, tmp_path):
    base = captured["base"]
    original = captured["calls"][1]
    ops_file = tmp_path / "ops.ndjson"
    result = cli(capsys, *base, "--json", "replay", str(captured["path"]), "--call-id", original.call_id,
                 "--emit-batch", str(ops_file))
    assert result.code == 0, result.stderr
    lines = [json.loads(line) for line in ops_file.read_text().splitlines()]
    assert [line["op"] for line in lines] == ["offer", "answer", "unforce"]
    again = cli(capsys, *base, "batch", str(ops_file))
    rows = [json.loads(line) for line in again.stdout.splitlines()]
    assert again.code == 0, again.stdout
    assert [row.get("op") for row in rows[:-1]] == ["offer", "answer", "unforce"]
    assert rows[2]["result"]["had_session"] is True
    assert all(stats["active"] == 0 for stats in relay_stats(capsys, base).values())


# -- findings, against a relay of its own -------------------------------------------------------------


@pytest.fixture(scope="module")
def v4_relay(relays):
    """A relay of this module's own with IPv4 media only (no -6): it refuses an IPv6 stream."""
    relay = relays.start()
    yield relay
    relay.stop()


def one_leg_capture(tmp_path, messages: list[tuple[Msg, bool]], start: float = 1_700_000_000.0):
    """A capture of messages between a caller and the proxy: (message, sent by the caller?)."""
    caller, proxy = ("127.0.0.11", 5060), ("127.0.0.12", 5060)
    packets = [SipPacket(start + n * 0.01, caller if mine else proxy, proxy if mine else caller, "udp",
                         message.text().encode()) for n, (message, mine) in enumerate(messages)]
    return write_pcap(tmp_path / "findings.pcap", packets)


def test_findings_in_words_and_what_replay_cleans_up(capsys, tmp_path, v4_relay):
    via = "127.0.0.11:5060;branch=z9hG4bKf1"
    both = sdp("192.0.2.1", 4000, extra="m=video 0 RTP/AVP 31\r\n")
    v6 = sdp("2001:db8::9", 5000, family="IP6")
    messages = [
        # A call whose answer is IPv6 (the relay has no IPv6 media: it refuses the stream) and
        # which never ends: its session is deleted by replay.
        (Msg("INVITE", "open@t", "ft", None, 1, "INVITE", [via], both), True),
        (Msg("200", "open@t", "ft", "tt", 1, "INVITE", [via], v6), False),
        # A call whose offer nobody answered.
        (Msg("INVITE", "second@t", "ft2", None, 1, "INVITE", ["127.0.0.11:5060;branch=z9hG4bKf2"],
             sdp("192.0.2.1", 4002)), True),
    ]
    path = one_leg_capture(tmp_path, messages)
    result = cli(capsys, "--state", "none", "--json", "replay", str(path), "-t", v4_relay.udp)
    calls, summary = records(result.stdout)
    assert result.code == 3, result.stderr  # the relay refused a stream
    by_id = {call["call_id"]: call for call in calls}
    first, second = by_id["open@t"], by_id["second@t"]
    assert "step 1: stream 2 (video) has port 0: disabled, the relay is not asked for it" in first["findings"]
    assert ("step 2: the address family changes: the offer is IP4, the answer IP6 (the relay bridges them)"
            in first["findings"])
    assert any(f.startswith("step 2: the relay refused the answer: relay answered E36") for f in first["findings"])
    assert "the dialog never ended in the trace (no BYE, CANCEL or failure)" in first["findings"]
    assert first["steps"][1]["error"]["exit_code"] == 3 and first["cleaned_up"] is True
    assert "replay deleted the session it created, which the trace never ended" in first["findings"]
    assert "the offer (step 1) got no answer in the trace" in second["findings"] and second["cleaned_up"] is True
    assert summary["failed"] == 1 and summary["calls"] == 2
    info = cli(capsys, "--state", "none", "--json", "info", "-t", v4_relay.udp).json()
    assert info["relays"][0]["info"]["active_sessions"] == 0


def test_a_human_report_per_call_and_the_legs_said(capsys, captured):
    result = cli(capsys, *captured["base"], "replay", str(captured["path"]), "--call-id", captured["calls"][0].call_id)
    assert result.code == 0, result.stderr
    out = result.stdout
    assert f"call {captured['calls'][0].call_id}" in out and "offer (U)" in out and "answer (L)" in out
    assert "skipped 6 forwarded copies" in out
    assert "both legs of the proxy at 127.0.0.12" in out
    assert "m=audio" in out  # the SDP the proxy would send


def test_hostile_text_in_a_trace_is_spelled_out(capsys, tmp_path, relay):
    call_id = "evil\x1b[31m@t"
    messages = [(Msg("INVITE", call_id, "ft", None, 1, "INVITE", ["127.0.0.11:5060;branch=z9hG4bKe"],
                     sdp("192.0.2.1", 4000)), True)]
    text = messages[0][0].text().replace("From: \"Alice\"", "From: \"Al\x1b]0;pwned\x07ice\"")
    packets = [SipPacket(1.0, ("127.0.0.11", 5060), ("127.0.0.12", 5060), "udp", text.encode())]
    path = write_pcap(tmp_path / "evil.pcap", packets)
    result = cli(capsys, "--state", "none", "replay", "--list", str(path))
    assert result.code == 0
    assert "\x1b" not in result.stdout and "\\x1b" in result.stdout
    assert call_id not in result.stdout
    # The whole report too: the title, the start line in the table, the refusal naming the Call-ID.
    replayed = cli(capsys, "--state", "none", "replay", str(path), "-t", relay.udp)
    assert replayed.code == 6
    out = replayed.stdout + replayed.stderr
    assert "\x1b" not in out and "\x07" not in out
    assert "Al\\x1b]0;pwned\\x07ice" in out and "contains the control character" in out


def test_a_missing_or_unreadable_trace_is_refused_before_any_relay_is_asked(capsys, tmp_path, relay):
    missing = cli(capsys, "--state", "none", "replay", str(tmp_path / "nope.pcap"), "-t", relay.udp)
    assert missing.code == 6 and "nope.pcap" in missing.stderr and missing.stdout == ""
    prose = write(tmp_path / "notes.txt", "this is not a trace\n")
    result = cli(capsys, "--state", "none", "replay", str(prose), "-t", relay.udp)
    assert result.code == 6 and "notes.txt" in result.stderr and result.stdout == ""


def test_media_sends_the_captured_rtp_through_the_relay_and_measures_it(capsys, captured):
    original = captured["calls"][2]
    result = cli(capsys, *captured["base"], "--json", "replay", str(captured["path"]), "--call-id", original.call_id,
                 "--media", "--speed", "20")
    assert result.code == 0, result.stderr
    (call,), _ = records(result.stdout)
    media = {(m["stream"], m["direction"]): m for m in call["media"]}
    assert set(media) == {(1, "caller-to-callee"), (1, "callee-to-caller")}
    for direction in media.values():
        # The capture holds the 5 packets each agent sent; all 5 come through, once, in order.
        assert (direction["sent"], direction["received"], direction["lost"], direction["duplicates"]) == (5, 5, 0, 0)
        assert direction["latched"] is True and direction["latency_ms"]["max"] < 1000
    # The parties were local sockets: the offer named 127.0.0.1, not the captured 127.0.0.11.
    assert call["steps"][0]["commands"][0]["command"].split()[2] == "127.0.0.1"


def test_media_needs_a_capture_not_a_text_trace(capsys, tmp_path):
    path = write(tmp_path / "t.txt", "U 192.0.2.1:5060 -> 192.0.2.2:5060\n")
    result = cli(capsys, "--state", "none", "replay", str(path), "--media", "-t", "udp:127.0.0.1:9")
    assert result.code == 2 and "--media" in result.stderr


def quiet_call_capture(tmp_path, call_id: str, *, bye_after: float) -> object:
    """One call: INVITE and 200 at once, the BYE `bye_after` seconds later."""
    via = "127.0.0.11:5060;branch=z9hG4bKq1"
    messages = [(Msg("INVITE", call_id, "ft", None, 1, "INVITE", [via], sdp("192.0.2.1", 4000)), True),
                (Msg("200", call_id, "ft", "tt", 1, "INVITE", [via], sdp("192.0.2.9", 5000)), False)]
    path = one_leg_capture(tmp_path, messages)
    bye = Msg("BYE", call_id, "ft", "tt", 2, "BYE", ["127.0.0.11:5060;branch=z9hG4bKq2"])
    packets = [SipPacket(1_700_000_000.0 + n * 0.01, ("127.0.0.11", 5060), ("127.0.0.12", 5060), "udp",
                         m.text().encode()) for n, (m, _) in enumerate(messages)]
    packets.append(SipPacket(1_700_000_000.0 + bye_after, ("127.0.0.11", 5060), ("127.0.0.12", 5060), "udp",
                             bye.text().encode()))
    return write_pcap(path, packets)


def test_ctrl_c_deletes_what_replay_made_and_exits_130(tmp_path, v4_relay):
    import signal
    import subprocess
    import sys
    import time

    path = quiet_call_capture(tmp_path, "slow@t", bye_after=60.0)
    process = subprocess.Popen([sys.executable, "-m", "rtppctl", "--state", "none", "--json", "replay", str(path),
                                "-t", v4_relay.udp, "--speed", "1"], text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and active(v4_relay) == 0:
            time.sleep(0.05)  # the offer and the answer are made at once; the BYE is a minute away
        assert active(v4_relay) == 1
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 130 and err.rstrip().endswith("rtppctl: interrupted")
    (call,), summary = records(out)
    assert call["cleaned_up"] is True and summary["interrupted"] is True
    assert [step["op"] for step in call["steps"]] == ["offer", "answer"]
    assert active(v4_relay) == 0


def active(relay) -> int:
    from tests.cli.helpers import cli_process

    result = cli_process("--state", "none", "--json", "info", "-t", relay.udp)
    return result.json()["relays"][0]["info"]["active_sessions"]


def test_without_a_configured_relay_replay_starts_and_stops_the_embedded_one(tmp_path):
    from tests.cli.helpers import cli_process
    from tests.relay import free_port, free_port_range

    port, media = free_port(), free_port_range(20)
    config = write(tmp_path / "c.toml", f'[embedded]\ncontrol = ["udp:127.0.0.1:{port}"]\nlisten6 = ""\n'
                                        f"port_min = {media.start}\nport_max = {media.stop - 1}\n")
    path = quiet_call_capture(tmp_path, "emb@t", bye_after=0.5)
    env = {"XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
           "RTPPCTL_ENGINE_EXIT_WITH_PARENT": "1"}
    result = cli_process("--config", str(config), "--state", "none", "--json", "replay", str(path), env=env)
    assert result.code == 0, result.stderr
    (call,), summary = records(result.stdout)
    assert {step["node"] for step in call["steps"]} == {f"udp:127.0.0.1:{port}"}
    assert [step["ok"] for step in call["steps"]] == [True, True, True]
    assert "started the embedded relay for this replay" in result.stderr
    status = cli_process("--config", str(config), "--json", "embedded", "status", env=env)
    assert status.json()["running"] is False


#: The peak resident memory a replay of a 100 MB capture may take (README, "replay"): less than
#: the capture itself, so a run that held it would fail. Measured: about 45 MB (the interpreter and
#: rtppctl's modules, the reader's 1 MiB chunk, the calls in progress).
MEMORY_BOUND_MB = 100


def test_a_100_mb_capture_replays_within_the_memory_bound(tmp_path, v4_relay):
    import subprocess
    import sys

    from tests.traces import write_big_capture

    path = tmp_path / "big.pcap"
    write_big_capture(path, size=100 * 1024 * 1024, calls=300)
    assert path.stat().st_size > 95 * 1024 * 1024
    # The child reports its own peak after the run: VmHWM, the high-water mark of the program's own
    # memory (ru_maxrss would also count the pages of this big test process it was forked from).
    code = ("import re, sys\nfrom rtppctl.cli.app import run\nstatus = run(sys.argv[1:])\n"
            "peak = re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read())[1]\n"
            "sys.stderr.write(f'peak-kb={peak}\\n')\nsys.exit(status)\n")
    completed = subprocess.run([sys.executable, "-c", code, "--state", "none", "--json", "replay", str(path), "-t",
                                v4_relay.udp], capture_output=True, text=True, timeout=240, check=False)
    assert completed.returncode == 0, completed.stderr[-2000:]
    _, summary = records(completed.stdout)
    assert summary["calls"] == 300 and summary["steps"] == 900 and summary["failed"] == 0
    assert summary["capture"]["sip_messages"] == 1500 and summary["capture"]["frames"] > 400_000
    peak_mb = int(completed.stderr.rsplit("peak-kb=", 1)[1].split()[0]) / 1024
    assert peak_mb < MEMORY_BOUND_MB, f"peak {peak_mb:.0f} MB"


@pytest.mark.parametrize("name", ["sngrep.txt", "ngrep.txt", "sipdump.data", "siptrace.log"])
def test_text_traces_replay_like_captures(capsys, name, relay):
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "data" / "traces" / name
    result = cli(capsys, "--state", "none", "--json", "replay", str(path), "-t", relay.udp)
    assert result.code == 0, result.stderr + result.stdout[-1500:]
    (call,), summary = records(result.stdout)
    assert [(step["op"], step["letter"], step["ok"]) for step in call["steps"]] == [
        ("offer", "U", True), ("answer", "L", True), ("unforce", "D", True)]
    assert call["steps"][2]["commands"][0]["reply"] == "0"  # the relay had the session, and deleted it
    assert call["findings"] == [] and summary["capture"]["sip_messages"] == 7


def test_a_relay_that_does_not_answer_ends_the_run_with_exit_4(capsys, tmp_path):
    from tests.system.test_check import dead_udp_port

    path = quiet_call_capture(tmp_path, "dead@t", bye_after=0.5)
    result = cli(capsys, "--state", "none", "--timeout", "0.2", "--retries", "1", "--json", "replay", str(path),
                 "-t", f"udp:127.0.0.1:{dead_udp_port()}")
    assert result.code == 4 and "refused the request" in result.stderr
    (call,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert call["steps"][0]["error"]["exit_code"] == 4 and len(call["steps"]) == 1
    assert call["findings"] == ["the replay stopped (the relay stopped answering) before the rest of this call was read"]


def test_the_same_calls_in_a_harder_capture_replay_the_same(capsys, captured, tmp_path):
    """pcapng with two interfaces (VLAN-tagged Ethernet, SLL2), INVITEs in IPv4 fragments out of
    order, 200 OKs over TCP in segments out of order: the same steps, nodes and SDP."""
    from tests.traces import write_edge_pcapng

    path = write_edge_pcapng(tmp_path / "edge.pcapng", [r for call in captured["calls"][:4] for r in call.records])
    result = cli(capsys, *captured["base"], "--json", "replay", str(path))
    assert result.code == 0, result.stderr + result.stdout[-1500:]
    calls, summary = records(result.stdout)
    assert summary["capture"]["fragments_reassembled"] == 8  # 4 calls, each INVITE received and forwarded
    assert summary["capture"]["sip_messages"] == 48 and summary["capture"]["truncated"] == 0
    by_id = {call["call_id"]: call for call in calls}
    for original in captured["calls"][:4]:
        replayed_as_made(by_id[original.call_id], original)
