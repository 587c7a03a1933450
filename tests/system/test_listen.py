"""listen against real relays: timeouts and DTMF over tcp and unix, bursts, bad peers, --exec,
odd bytes, the end of a run (count, Ctrl-C, SIGTERM) and running out of file descriptors.

Sources read for what a relay sends and what the module makes of it (nothing copied):
OpenSIPS `modules/rtpproxy/notification_process.c` (a line is told by its first character: T, D,
I, anything else "Unhandled command"), RTPProxy `src/rtpp_notify.c` (the decoded tag is copied
with memcpy and `\\n` appended: any byte, NUL included, reaches the listener; one persistent
connection per target, lost notifications on a closed one) and `modules/catch_dtmf/rtpp_catch_dtmf.c`.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, unquote_to_bytes

import pexpect
import pytest

from rtppctl.net.client import RelayClient
from rtppctl.proto.url import parse_node
from tests.cli.helpers import cli
from tests.conftest import write
from tests.relay import free_port, stop_process
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
        # An empty config file: config paths are opened only when they are regular files.
        config = write(tmp_path / "empty.toml", "")
        result = cli(capsys, "--config", str(config), "listen", f"tcp:127.0.0.1:{port}", "--duration", "1")
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
    assert [(e["type"], e["socket"], e["set"], e["status"], e["state"]) for e in events] == [
        ("status", relay.udp, 0, "inactive", "disabled"), ("status", relay.udp, 0, "active", "enabled")], err
    # One shape with show --watch and the stderr notes: E_RTPPROXY_STATUS's names, and no `relay`.
    assert all(list(e) == ["type", "time", "socket", "set", "status", "state", "reason"] for e in events)
    assert events[0]["reason"].startswith("probe failed: ") and events[1]["reason"] == "probe ok"
    again.stop()


# ------------------------------------------------------------------ helpers for the tests below


class Pipe:
    """A child's pipe read line by line on a thread, so the child never blocks on a full pipe."""

    def __init__(self, stream) -> None:  # noqa: ANN001
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:  # noqa: ANN001
        for line in stream:
            self.lines.append(line)

    def wait_for(self, wanted: Callable[[str], bool], timeout: float) -> str | None:
        """The first line for which `wanted` holds, waiting at most `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            for line in list(self.lines):
                if wanted(line):
                    return line
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.01)

    def text(self, timeout: float = 5.0) -> str:
        self._thread.join(timeout)
        return "".join(self.lines)


class Child:
    """`rtppctl ARGS` in a process of its own, both pipes drained; ready once it says where it listens."""

    def __init__(self, env: dict[str, str], *args: str, max_fds: int | None = None) -> None:
        def low_limit() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max_fds, max_fds))

        self.process = subprocess.Popen([sys.executable, "-m", "rtppctl", *args], env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, errors="replace",
                                        preexec_fn=low_limit if max_fds else None)
        self.stdout, self.stderr = Pipe(self.process.stdout), Pipe(self.process.stderr)
        assert self.stderr.wait_for(lambda line: "listening on" in line, 20), self.stderr.text(0)

    def end(self, timeout: float) -> tuple[int, list[dict], str]:
        """Exit code, the NDJSON records on stdout, stderr; the child is killed if it outlives `timeout`."""
        try:
            code = self.process.wait(timeout)
        finally:
            stop_process(self.process, grace=1)
        out = self.stdout.text()
        return code, [json.loads(line) for line in out.splitlines() if line.startswith("{")], self.stderr.text()

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def notify_session(relay, target: str, encoded_tag: str, port: int) -> None:  # noqa: ANN001
    """A session that only had a U with notify arguments, written as given (the tag percent-encoded,
    as the relay URL-decodes it): with -W 1 the relay sends the decoded tag about 2 s later."""
    call_id = f"n-{uuid.uuid4().hex[:8]}"
    with RelayClient.open(parse_node(relay.udp), timeout=1.0, retries=3) as client:
        assert client.call(f"U {call_id} 127.0.0.1 {port} ft;1 {target} {encoded_tag}").split()[0] != "0"


def hook(tmp_path: Path, body: str) -> str:
    """An --exec command: this Python running `body`, with `out` the folder it may write to."""
    out = tmp_path / "hook-out"
    out.mkdir(exist_ok=True)
    script = write(tmp_path / "hook.py", f"import os, pathlib, sys, time\nout = pathlib.Path({str(out)!r})\n{body}\n")
    return f"{sys.executable} {script}"


def send_lines(address: str, data: bytes) -> None:
    """Connect to the listener at `address` (tcp:HOST:PORT or unix:PATH) and send `data`."""
    if address.startswith("unix:"):
        peer = socket.socket(socket.AF_UNIX)
        peer.settimeout(5)
        peer.connect(address[5:])
    else:
        host, port = address[4:].rsplit(":", 1)
        peer = socket.create_connection((host, int(port)), timeout=5)
    with peer:
        peer.sendall(data)
        time.sleep(0.2)  # closing at once could reset the connection before the listener read it


ODD = b"Tnul\x00byte\xff\x1b[31m%\r"  # NUL, a byte that is not UTF-8, an escape sequence, a % and a CR


# ------------------------------------------------------------------ odd bytes and unknown lines


def test_a_nul_and_other_odd_bytes_from_a_real_relay_reach_exec_and_nothing_after_them_is_lost(relays, tmp_path):
    port = free_port()
    notify = f"tcp:127.0.0.1:{port}"
    relay = relays.start(extra_args=["-n", notify, "-W", "1"])
    config = write(tmp_path / "c.toml", f'rtpproxy_sock = ["{relay.udp}"]\n')
    command = hook(tmp_path, "n = len(list(out.iterdir()))\n"
                             "(out / str(n)).write_text(os.environ['RTPPCTL_TYPE'] + '\\n' + os.environ['RTPPCTL_TAG']"
                             " + '\\n' + os.environ['RTPPCTL_RAW'])")
    listener = Child(listen_env(tmp_path, config), "--json", "listen", notify, "--count", "3", "--exec", command,
                     "--exec-limit", "1")
    try:
        # The relay URL-decodes the tags: it sends a NUL, a 0xFF and an ESC back as raw bytes, and a tag
        # that starts with X as it is (the module would log "Unhandled command" for it).
        notify_session(relay, notify, "Tnul%00byte%FF%1B", 30000)
        notify_session(relay, notify, "Xnot-a-timeout", 30002)
        notify_session(relay, notify, "Tplain", 30004)
        code, records, err = listener.end(timeout=10)
    finally:
        relay.stop()
    assert code == 0, err
    assert "internal error" not in err
    events, summary = records[:-1], records[-1]
    by_tag = {record.get("tag") or record.get("raw"): record for record in events}
    assert by_tag["Tnul\x00byte\ufffd\x1b"]["type"] == "timeout"
    assert by_tag["Tplain"]["type"] == "timeout"
    assert by_tag["Xnot-a-timeout"]["type"] == "unknown"  # never a timeout
    # --exec ran for the two timeouts, not for the unknown line; each got its values percent-encoded.
    assert summary["exec"] == {"events": 2, "started": 2, "dropped": 0, "failed": 0, "timed_out": 0}
    runs = [path.read_text().split("\n") for path in (tmp_path / "hook-out").iterdir()]
    got = {unquote_to_bytes(raw): (kind, unquote(tag)) for kind, tag, raw in runs}
    assert got == {b"Tnul\x00byte\xff\x1b": ("timeout", "Tnul\x00byte\ufffd\x1b"), b"Tplain": ("timeout", "Tplain")}


@pytest.mark.parametrize("mode", ["--json", "--no-color"])
def test_odd_bytes_break_neither_the_json_nor_the_plain_renderer(tmp_path, mode):
    config = write(tmp_path / "c.toml", 'rtpproxy_sock = ["udp:127.0.0.1:22222"]\n')
    address = f"tcp:127.0.0.1:{free_port()}"
    listener = Child(listen_env(tmp_path, config), mode, "listen", address, "--count", "3")
    send_lines(address, ODD + b"\n\x00\xfe\n" + b"Dc\x00call 5 10 800 1\nTafter\n")
    code, records, err = listener.end(timeout=10)
    out = listener.stdout.text()
    assert code == 0, err
    assert "internal error" not in err and "Traceback" not in err
    if mode == "--json":
        assert [r["type"] for r in records] == ["timeout", "unknown", "dtmf", "summary"]
        assert records[0]["tag"] == "Tnul\x00byte\ufffd\x1b[31m%"  # the CR before the LF ends the line
        assert records[2]["id"] == "\x00call" and records[2]["digit"] == "5"
    else:
        assert "1 dtmf, 1 timeout, 1 unknown" in out


def test_unknown_lines_run_exec_only_with_exec_unknown(tmp_path):
    config = write(tmp_path / "c.toml", 'rtpproxy_sock = ["udp:127.0.0.1:22222"]\n')
    address = f"tcp:127.0.0.1:{free_port()}"
    command = hook(tmp_path, "(out / os.environ['RTPPCTL_TYPE']).write_text(os.environ['RTPPCTL_RAW'])")
    listener = Child(listen_env(tmp_path, config), "--json", "listen", address, "--count", "2", "--exec", command,
                     "--exec-unknown")
    send_lines(address, b"Xodd\nTa1.b2\n")
    code, records, err = listener.end(timeout=10)
    assert code == 0, err
    assert records[-1]["exec"]["started"] == 2
    assert {p.name: p.read_text() for p in (tmp_path / "hook-out").iterdir()} == {"unknown": "Xodd", "timeout": "Ta1.b2"}


# ------------------------------------------------------------------ the end of a run and --exec


def test_after_count_the_queued_commands_still_run_and_the_summary_comes_after_them(tmp_path):
    config = write(tmp_path / "c.toml", 'rtpproxy_sock = ["udp:127.0.0.1:22222"]\n')
    address = f"tcp:127.0.0.1:{free_port()}"
    command = hook(tmp_path, "time.sleep(0.3)\n(out / os.environ['RTPPCTL_TAG']).write_text('')")
    listener = Child(listen_env(tmp_path, config), "--json", "listen", address, "--count", "3", "--exec", command,
                     "--exec-limit", "1")
    send_lines(address, b"Tone\nTtwo\nTthree\n")
    summary_line = listener.stdout.wait_for(lambda line: '"summary"' in line, 15)
    # One at a time, 0.3 s each: had the summary come before the drain, they could not all be done yet.
    done_when_summary_came = sorted(p.name for p in (tmp_path / "hook-out").iterdir())
    code, records, err = listener.end(timeout=10)
    assert code == 0 and summary_line, err
    assert done_when_summary_came == ["Tone", "Tthree", "Ttwo"]
    assert records[-1]["exec"] == {"events": 3, "started": 3, "dropped": 0, "failed": 0, "timed_out": 0}


def test_a_command_past_exec_timeout_is_stopped_with_what_it_started(tmp_path):
    config = write(tmp_path / "c.toml", 'rtpproxy_sock = ["udp:127.0.0.1:22222"]\n')
    address = f"tcp:127.0.0.1:{free_port()}"
    command = hook(tmp_path, "import subprocess\n"
                             "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
                             "(out / 'grandchild').write_text(str(child.pid))\ntime.sleep(60)")
    started = time.monotonic()
    listener = Child(listen_env(tmp_path, config), "--json", "listen", address, "--count", "1", "--exec", command,
                     "--exec-timeout", "0.5")
    send_lines(address, b"Tslow\n")
    code, records, err = listener.end(timeout=20)
    assert code == 0, err
    assert time.monotonic() - started < 15
    assert records[-1]["exec"] == {"events": 1, "started": 1, "dropped": 0, "failed": 1, "timed_out": 1}
    assert "--exec-timeout" in err
    grandchild = int((tmp_path / "hook-out" / "grandchild").read_text())
    deadline = time.monotonic() + 5
    while Path(f"/proc/{grandchild}").exists() and "Z" not in Path(f"/proc/{grandchild}/stat").read_text().split()[2]:
        assert time.monotonic() < deadline, "the command's own child outlived its --exec-timeout"
        time.sleep(0.05)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_drops_what_waits_lets_what_runs_finish_removes_the_socket_and_ends_with_the_summary(tmp_path, stop):
    config = write(tmp_path / "c.toml", 'rtpproxy_sock = ["udp:127.0.0.1:22222"]\n')
    path = tmp_path / "n.sock"
    command = hook(tmp_path, "tag = os.environ['RTPPCTL_TAG']\n(out / (tag + '.started')).write_text('')\n"
                             "time.sleep(0.8)\n(out / (tag + '.done')).write_text('')")
    listener = Child(listen_env(tmp_path, config), "--json", "listen", f"unix:{path}", "--exec", command,
                     "--exec-limit", "1")
    send_lines(f"unix:{path}", b"".join(f"Tn{n}\n".encode() for n in range(5)))
    deadline = time.monotonic() + 10
    while not (tmp_path / "hook-out" / "Tn0.started").exists():
        assert time.monotonic() < deadline, listener.stderr.text(0)
        time.sleep(0.02)
    os.kill(listener.process.pid, stop)
    code, records, err = listener.end(timeout=10)
    assert code == 130, err
    assert "rtppctl: interrupted" in err
    summary = records[-1]
    assert summary["type"] == "summary" and summary["events"] == 5
    exec_counts = summary["exec"]
    assert exec_counts["started"] + exec_counts["dropped"] == exec_counts["events"] == 5
    assert exec_counts["dropped"] >= 3 and exec_counts["failed"] == 0
    # What had started was let finish before the summary; what waited never ran.
    done = sorted(p.name for p in (tmp_path / "hook-out").iterdir() if p.name.endswith(".done"))
    assert len(done) == exec_counts["started"]
    assert not path.exists()


def test_sigterm_on_a_terminal_ends_like_ctrl_c(tmp_path):
    config = write(tmp_path / "c.toml", 'rtpproxy_sock = ["udp:127.0.0.1:22222"]\n')
    path = tmp_path / "n.sock"
    child = pexpect.spawn(sys.executable, ["-m", "rtppctl", "listen", f"unix:{path}"],
                          env={**listen_env(tmp_path, config), "COLUMNS": "140"}, encoding="utf-8",
                          codec_errors="replace", timeout=20, dimensions=(40, 140))
    child.expect("start RTPProxy with -n unix:")
    send_lines(f"unix:{path}", ODD + b"\nDcterm-call 9 10 800 0\n")
    child.expect("term-call")
    child.kill(signal.SIGTERM)
    child.expect(r"1 dtmf, 1 timeout in [0-9.]+ s \(unix#1\(pid=[0-9]+\): 2\)")
    child.expect("interrupted")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    assert not path.exists()


# ------------------------------------------------------------------ many relays, few descriptors


def test_two_relays_on_one_unix_socket_are_told_apart_by_their_pid(relays, tmp_path):
    path = tmp_path / "n.sock"
    notify = f"unix:{path}"
    first = relays.start(extra_args=["-n", notify, "-W", "1"])
    second = relays.start(extra_args=["-n", notify, "-W", "1"])
    config = write(tmp_path / "c.toml", f'rtpproxy_sock = ["{first.udp}", "{second.udp}"]\n')
    listener = Child(listen_env(tmp_path, config), "--json", "listen", notify, "--count", "2")
    try:
        notify_session(first, notify, "Tfrom-first", 30000)
        notify_session(second, notify, "Tfrom-second", 30002)
        code, records, err = listener.end(timeout=10)
    finally:
        first.stop()
        second.stop()
    assert code == 0, err
    relay_of = {record["tag"]: record["relay"] for record in records[:-1]}
    assert relay_of["Tfrom-first"].endswith(f"(pid={first.process.pid})")
    assert relay_of["Tfrom-second"].endswith(f"(pid={second.process.pid})")
    assert relay_of["Tfrom-first"] != relay_of["Tfrom-second"]
    assert set(records[-1]["peers"]) == set(relay_of.values())


def test_out_of_file_descriptors_the_listener_neither_spins_nor_delays_a_relay(relays, tmp_path):
    port = free_port()
    notify = f"tcp:127.0.0.1:{port}"
    relay = relays.start(extra_args=["-n", notify, "-W", "1"])
    config = write(tmp_path / "c.toml", f'rtpproxy_sock = ["{relay.udp}"]\n')
    # 40 descriptors: the interpreter, the state file and the sockets take about 26, so about a
    # dozen peers fit; --max-peers (256 by default) is not what stops the flood here.
    listener = Child(listen_env(tmp_path, config), "-v", "--json", "listen", notify, "--count", "2", max_fds=40)
    held: list[socket.socket] = []
    try:
        notify_session(relay, notify, "Tfirst", 30000)
        assert listener.stdout.wait_for(lambda line: "Tfirst" in line, 8), listener.stderr.text(0)
        for _ in range(150):  # far more than fit: the rest wait in the backlog
            try:
                held.append(socket.create_connection(("127.0.0.1", port), timeout=0.5))
            except OSError:
                break
        sent = time.monotonic()
        notify_session(relay, notify, "Tsecond", 30002)
        before = listener.cpu_seconds()
        time.sleep(1.0)
        spent = listener.cpu_seconds() - before
        second = listener.stdout.wait_for(lambda line: "Tsecond" in line, 8)
        arrived = time.monotonic() - sent
        code, records, err = listener.end(timeout=10)
    finally:
        for peer in held:
            peer.close()
        relay.stop()
    assert code == 0 and second, err[-2000:]
    assert len(held) > 40  # the flood really outran the descriptors
    assert spent < 0.3, f"{spent:.2f} s of CPU in 1 s: the listener spins"
    assert arrived < 1 + 1 + 1.5  # -W 1 plus the relay's second tick, and some slack, not tens of seconds
    # Both notifications came over the relay's one connection, which was kept all along.
    assert records[0]["relay"] == records[1]["relay"]
    assert err.count("cannot accept a connection") == 1
    # Said once, counted every time: the summary says how often accepting was paused.
    assert records[-1]["type"] == "summary" and records[-1]["accept_pauses"] >= 1
    assert len(err.splitlines()) < len(held) + 40  # -v: a line per peer at most, not one per attempt


def test_a_second_signal_stops_the_commands_still_running(tmp_path):
    config = write(tmp_path / "c.toml", 'rtpproxy_sock = ["udp:127.0.0.1:22222"]\n')
    address = f"tcp:127.0.0.1:{free_port()}"
    command = hook(tmp_path, "(out / 'started').write_text('')\ntime.sleep(60)")
    listener = Child(listen_env(tmp_path, config), "--json", "listen", address, "--exec", command,
                     "--exec-timeout", "60")
    send_lines(address, b"Tlong\n")
    deadline = time.monotonic() + 10
    while not (tmp_path / "hook-out" / "started").exists():
        assert time.monotonic() < deadline, listener.stderr.text(0)
        time.sleep(0.02)
    os.kill(listener.process.pid, signal.SIGTERM)
    assert listener.stderr.wait_for(lambda line: "waiting up to 60 s" in line, 5)
    stopped_at = time.monotonic()
    os.kill(listener.process.pid, signal.SIGTERM)
    code, records, err = listener.end(timeout=10)
    assert code == 130 and time.monotonic() - stopped_at < 5, err
    assert records[-1]["exec"] == {"events": 1, "started": 1, "dropped": 0, "failed": 1, "timed_out": 0}
    assert "stopped 1 command(s)" in err
