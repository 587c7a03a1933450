"""listen's options: --exec usage errors found before anything is bound, the --exec queue's
accounting, --max-peers in the summary. Real sockets on loopback; relays in tests/system."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time

import pytest

from tests.cli.helpers import cli
from tests.conftest import write
from tests.relay import free_port


@pytest.fixture
def config(tmp_path):
    return write(tmp_path / "c.toml", 'rtpproxy_sock = ["udp:127.0.0.1:22222"]\n')


@pytest.mark.parametrize(("command", "says"), [
    ('"x', "no closing quotation"),
    ("run 'it", "no closing quotation"),
    ("x\\", "no escaped character"),
    ("", "an empty command"),
    ("   ", "an empty command"),
    ("/nonexistent/hook.sh", "no such program"),
])
def test_a_bad_exec_command_is_a_usage_error_before_the_socket_is_bound(capsys, tmp_path, config, command, says):
    path = tmp_path / "n.sock"
    result = cli(capsys, "--config", str(config), "listen", f"unix:{path}", "--duration", "0.2", "--exec", command)
    assert result.code == 2, result.stderr
    assert "--exec" in result.stderr and says in result.stderr
    assert "internal error" not in result.stderr
    assert not path.exists() and "listening on" not in result.stderr


def send_when_listening(port: int, data: bytes, deadline: float = 10.0) -> threading.Thread:
    """A peer that connects as soon as the listener is up and sends `data`."""

    def run() -> None:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as peer:
                    peer.sendall(data)
                    time.sleep(0.3)
                return
            except OSError:
                time.sleep(0.02)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_events_over_the_queue_are_dropped_and_counted_and_the_rest_still_run_after_count(capsys, tmp_path, config,
                                                                                           monkeypatch):
    from rtppctl.ops import exec_runner

    monkeypatch.setattr(exec_runner, "MAX_WAITING", 2)
    port = free_port()
    done = tmp_path / "done"
    done.mkdir()
    hook = write(tmp_path / "hook.py", "import os, pathlib, sys, time\ntime.sleep(0.2)\n"
                 "pathlib.Path(sys.argv[1], os.environ['RTPPCTL_TAG']).write_text('')\n")
    peer = send_when_listening(port, b"".join(f"Tn{n}\n".encode() for n in range(6)))
    result = cli(capsys, "--config", str(config), "--json", "listen", f"tcp:127.0.0.1:{port}", "--count", "6",
                 "--exec-limit", "1", "--exec", f"{sys.executable} {hook} {done}")
    peer.join(5)
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout.splitlines()[-1])
    # One started at once, two queued, three dropped; after --count the queued ones still ran.
    assert summary["exec"] == {"events": 6, "started": 3, "dropped": 3, "failed": 0, "timed_out": 0}
    assert sorted(p.name for p in done.iterdir()) == ["Tn0", "Tn1", "Tn2"]


def test_max_peers_refuses_the_connections_over_it_and_says_so_once(capsys, config):
    port = free_port()

    def flood() -> None:
        end = time.monotonic() + 10
        held: list[socket.socket] = []
        while time.monotonic() < end and len(held) < 5:
            try:
                held.append(socket.create_connection(("127.0.0.1", port), timeout=1))
            except OSError:
                time.sleep(0.02)
        time.sleep(1.0)
        for peer in held:
            peer.close()

    thread = threading.Thread(target=flood, daemon=True)
    thread.start()
    result = cli(capsys, "--config", str(config), "--json", "listen", f"tcp:127.0.0.1:{port}", "--duration", "1.0",
                 "--max-peers", "2")
    thread.join(5)
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["refused_max_peers"] == 3 and summary["refused_connections"] == 0
    assert result.stderr.count("--max-peers") == 1
