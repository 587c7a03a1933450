"""ping asks the health table before it sends anything: a relay that is off (`enable 0`) is never
probed (relays/health.py, Event.OPERATOR_PROBE), and ping says it is off instead.

The relay taken off is a bare UDP socket, so that anything sent to it is seen; the other is a real
relay (tests/relay.py).
"""

from __future__ import annotations

import socket

import pytest

from tests.cli.helpers import cli
from tests.conftest import write
from tests.relay import datagrams_received


@pytest.fixture
def listening_socket():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


def test_ping_sends_nothing_to_a_relay_that_is_off_and_says_it_is_off(capsys, relay, tmp_path, listening_socket):
    off = f"udp:127.0.0.1:{listening_socket.getsockname()[1]}"
    config = write(tmp_path / "c.toml", f'rtpproxy_sock = ["{relay.udp} {off}"]\nrtpproxy_timeout = 0.2\nrtpproxy_retr = 1\n')
    base = ["--config", str(config), "--state", str(tmp_path / "state.sqlite3")]
    assert cli(capsys, *base, "enable", off, "0").code == 0

    result = cli(capsys, *base, "--json", "ping", "--count", "2")
    # The operator took it out: ping did not fail for it (exit 0, ok), it says it is off.
    assert result.code == 0 and result.json()["ok"] is True, result.stderr
    rows = result.json()["relays"]
    assert [(r["node"], r["reachable"], r["off"], r["sent"], r["received"]) for r in rows] == [
        (relay.udp, True, False, 2, 2), (off, False, True, 0, 0)], result.stderr
    assert rows[1]["error"].startswith("off (enable 0): not probed")
    assert datagrams_received(listening_socket, 0.3) == []
    nodes = {n["url"]: n for s in cli(capsys, *base, "--json", "show").json()["sets"] for n in s["nodes"]}
    assert nodes[off]["state"] == "off" and nodes[relay.udp]["state"] == "enabled"

    # Back in probing mode, it is probed again: ping sends it its V.
    assert cli(capsys, *base, "enable", off, "2").code == 0
    again = cli(capsys, *base, "--json", "ping")
    assert [r["off"] for r in again.json()["relays"]] == [False, False]
    assert any(datagram.endswith(b" V") for datagram in datagrams_received(listening_socket, 0.5))


def test_a_target_is_pinged_whatever_the_sets_say(capsys, relay, tmp_path):
    # A --target belongs to no set and has no health: it is always asked.
    config = write(tmp_path / "c.toml", f'rtpproxy_sock = ["{relay.udp}"]\n')
    base = ["--config", str(config), "--state", str(tmp_path / "state.sqlite3")]
    assert cli(capsys, *base, "enable", relay.udp, "0").code == 0
    result = cli(capsys, *base, "--json", "ping", "-t", relay.udp)
    assert result.code == 0 and result.json()["relays"][0]["reachable"] is True
