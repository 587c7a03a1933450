"""listen against real relays: timeouts and DTMF over tcp and unix, bursts, bad peers, --exec."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pexpect
import pytest

from tests.cli.helpers import cli
from tests.conftest import write
from tests.relay import free_port
from tests.ua import Dialog


def start_listener(env: dict[str, str], *args: str) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "rtppctl", *args], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    # The listener says where it listens once it is bound.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if "listening on" in line or not line:
            break
    return process


def listen_env(tmp_path: Path, config: Path) -> dict[str, str]:
    return {**os.environ, "RTPPCTL_CONFIG": str(config), "RTPPCTL_STATE": str(tmp_path / "state.sqlite3")}


@pytest.mark.parametrize("kind", ["tcp", "unix"])
def test_a_session_timeout_is_reported_within_the_ttl_naming_the_call(capsys, relays, tmp_path, monkeypatch, kind):
    notify = f"tcp:127.0.0.1:{free_port()}" if kind == "tcp" else f"unix:{tmp_path / 'notify.sock'}"
    relay = relays.start(extra_args=["-n", notify, "-W", "2", "-T", "2"])
    config = write(tmp_path / "c.toml", f'rtpproxy_sock = ["{relay.udp}"]\nrtpp_notify_socket = "{notify}"\n')
    env = listen_env(tmp_path, config)
    listener = start_listener(env, "--json", "listen", "--count", "1")
    try:
        monkeypatch.setenv("RTPPCTL_CONFIG", str(config))
        monkeypatch.setenv("RTPPCTL_STATE", env["RTPPCTL_STATE"])
        sdp = write(tmp_path / "o.sdp", "v=0\no=- 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 4000 RTP/AVP 0\n")
        call_id = f"timeout-{uuid.uuid4().hex[:6]}@test"
        offered = cli(capsys, "--json", "offer", str(sdp), "--call-id", call_id, "--from-tag", "ft", "--flags", "n")
        assert offered.code == 0, offered.stderr
        sent_at = time.monotonic()
        out, err = listener.communicate(timeout=2 + 2 + 5)
        arrived = time.monotonic() - sent_at
    finally:
        listener.kill()
    event, summary = [json.loads(line) for line in out.splitlines()]
    assert event["type"] == "timeout" and event["call_id"] == call_id and event["tag"].startswith("T")
    assert event["dialog"] is not None and arrived < 2 + 2 + 1
    assert summary["type"] == "summary" and summary["counts"] == {"timeout": 1}
    if kind == "unix":
        assert not (tmp_path / "notify.sock").exists()  # the listener removes the file it made


def test_dtmf_from_both_parties_arrives_with_digit_duration_volume_and_stream(capsys, relays, tmp_path, monkeypatch):
    notify = f"tcp:127.0.0.1:{free_port()}"
    relay = relays.start(extra_args=["-n", notify])
    config = write(tmp_path / "c.toml", f'rtpproxy_sock = ["{relay.udp}"]\nrtpp_notify_socket = "{notify}"\n')
    env = listen_env(tmp_path, config)
    monkeypatch.setenv("RTPPCTL_CONFIG", str(config))
    monkeypatch.setenv("RTPPCTL_STATE", env["RTPPCTL_STATE"])
    listener = start_listener(env, "--json", "listen", "--count", "2")
    call = Dialog(capsys, tmp_path, f"dtmf-{uuid.uuid4().hex[:6]}@test").establish(flags="d")
    try:
        call.caller.send_event("5", volume=10, duration=640)
        call.callee.send_event("#", volume=7, duration=960)
        out, err = listener.communicate(timeout=10)
    finally:
        listener.kill()
        call.close()
    events = [json.loads(line) for line in out.splitlines()][:2]
    got = sorted((e["digit"], e["volume"], e["duration"], e["stream"], e["call_id"]) for e in events)
    assert got == sorted([("5", 10, 640, 0, call.call_id), ("#", 7, 960, 1, call.call_id)]), err
    assert all(e["type"] == "dtmf" and e["is_callid"] and e["id"] == call.call_id for e in events)


def test_a_burst_over_ten_connections_is_counted_whole_and_an_endless_line_harms_nobody(tmp_path):
    port = free_port()
    config = write(tmp_path / "c.toml", 'rtpproxy_sock = ["udp:127.0.0.1:22222"]\n')
    env = listen_env(tmp_path, config)
    listener = start_listener(env, "--json", "listen", f"tcp:127.0.0.1:{port}", "--count", "10000")

    def flood(worker: int) -> None:
        with socket.create_connection(("127.0.0.1", port)) as peer:
            lines = b"".join(f"Tw{worker}.{n}\n".encode() for n in range(1000))
            for start in range(0, len(lines), 777):  # pieces that cut lines anywhere
                peer.sendall(lines[start:start + 777])

    def endless() -> None:
        with socket.create_connection(("127.0.0.1", port)) as peer:
            try:
                for _ in range(200):
                    peer.sendall(b"x" * 10000)
            except OSError:
                pass

    threads = [threading.Thread(target=flood, args=(w,)) for w in range(10)] + [threading.Thread(target=endless)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    out, err = listener.communicate(timeout=60)
    records = [json.loads(line) for line in out.splitlines()]
    summary = records[-1]
    timeouts = [r for r in records if r["type"] == "timeout"]
    assert summary["type"] == "summary" and summary["events"] == 10000
    assert len(timeouts) == 10000 - sum(1 for r in records[:-1] if r["type"] == "unknown")
    assert len({r["tag"] for r in timeouts}) == len(timeouts)


def test_a_peer_not_among_the_relays_is_refused_and_reported_once(tmp_path):
    port = free_port()
    config = write(tmp_path / "c.toml", 'rtpproxy_sock = ["udp:192.0.2.7:22222"]\n')
    listener = start_listener(listen_env(tmp_path, config), "listen", f"tcp:127.0.0.1:{port}", "--duration", "2")
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", port)) as peer:
            peer.sendall(b"Tsneaky\n")
        time.sleep(0.1)
    out, err = listener.communicate(timeout=20)
    assert err.count("refused a connection from 127.0.0.1") == 1
    assert "Tsneaky" not in out and "refused 3" in out


def test_exec_runs_per_event_with_the_fields_in_the_environment_and_no_shell(tmp_path):
    port = free_port()
    config = write(tmp_path / "c.toml", 'rtpproxy_sock = ["udp:127.0.0.1:22222"]\n')
    seen = tmp_path / "seen"
    seen.mkdir()
    script = write(tmp_path / "hook.py", "import os, pathlib, sys\n"
                   "pathlib.Path(sys.argv[1], os.environ['RTPPCTL_TAG'].replace('/', '_')).write_text("
                   "os.environ['RTPPCTL_TYPE'] + ' ' + os.environ['RTPPCTL_DIGIT'])\n")
    listener = start_listener(listen_env(tmp_path, config), "listen", f"tcp:127.0.0.1:{port}", "--count", "2",
                              "--exec", f"{sys.executable} {script} {seen}")
    with socket.create_connection(("127.0.0.1", port)) as peer:
        peer.sendall(b"Tone;$(touch pwned)\nDcabc 7 10 800 1\n")
    listener.communicate(timeout=20)
    files = {p.name: p.read_text() for p in seen.iterdir()}
    assert files == {"Tone;$(touch pwned)": "timeout ", "Dcabc": "dtmf 7"}
    assert not (tmp_path / "pwned").exists()


def test_a_busy_socket_is_the_exit_code_embedded_start_gives(capsys, tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = cli(capsys, "--config", os.devnull, "listen", f"tcp:127.0.0.1:{port}", "--duration", "1")
    assert result.code == 5 and "is busy" in result.stderr


def test_the_live_table_on_a_terminal_and_ctrl_c(tmp_path):
    port = free_port()
    config = write(tmp_path / "c.toml", 'rtpproxy_sock = ["udp:127.0.0.1:22222"]\n')
    child = pexpect.spawn(sys.executable, ["-m", "rtppctl", "listen", f"tcp:127.0.0.1:{port}"],
                          env={**listen_env(tmp_path, config), "COLUMNS": "140"}, encoding="utf-8", timeout=20,
                          dimensions=(40, 140))
    child.expect("start RTPProxy with -n tcp:127.0.0.1:")
    with socket.create_connection(("127.0.0.1", port)) as peer:
        peer.sendall(b"Dcterm-call 9 10 800 0\n")
        child.expect("term-call")
        child.expect("9")
    child.sendintr()
    child.expect(r"1 dtmf in")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130


def test_embedded_start_gives_the_relay_rtpp_notify_socket_as_its_n(capsys, tmp_path):
    from rtppctl import embedded

    notify = f"tcp:127.0.0.1:{free_port()}"
    control = f"udp:127.0.0.1:{free_port()}"
    config = write(tmp_path / "c.toml", f'rtpp_notify_socket = "{notify}"\n')
    try:
        started = cli(capsys, "--config", str(config), "--json", "embedded", "start", "--control", control)
        assert started.code == 0, started.stderr
        args = started.json()["engine_args"]
        assert args[args.index("-n") + 1] == notify
    finally:
        embedded.stop()


def test_status_interval_reports_a_relay_going_inactive_and_coming_back(relays, tmp_path):
    relay = relays.start()
    port = int(relay.udp.rsplit(":", 1)[1])
    config = write(tmp_path / "c.toml", f'rtpproxy_sock = ["{relay.udp}"]\nrtpproxy_timeout = 0.2\nrtpproxy_retr = 1\n'
                                        "rtpproxy_disable_tout = 1\n")
    listener = start_listener(listen_env(tmp_path, config), "--json", "listen", f"tcp:127.0.0.1:{free_port()}",
                              "--status-interval", "0.5", "--count", "2")
    time.sleep(1.0)
    relay.stop()
    time.sleep(1.5)
    again = relays.start(udp_port=port)
    out, err = listener.communicate(timeout=30)
    events = [json.loads(line) for line in out.splitlines()][:2]
    assert [(e["type"], e["relay"], e["status"]) for e in events] == [
        ("status", relay.udp, "inactive"), ("status", relay.udp, "active")], err
    again.stop()
