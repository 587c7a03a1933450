"""Shared fixtures: real relays started on free loopback ports, isolated XDG dirs for every test."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

from tests.relay import Relay, RelayFactory

# Machines here are small and noisy: a slow example is not a failure, so no per-example deadline;
# a failure prints the blob that reproduces it.
settings.register_profile("rtppctl", deadline=None, print_blob=True)
settings.load_profile("rtppctl")


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """No test reads or writes the developer's real config or state."""
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state"), ("XDG_CACHE_HOME", "cache")):
        path = tmp_path / "xdg" / sub
        path.mkdir(parents=True)
        monkeypatch.setenv(var, str(path))
    monkeypatch.delenv("RTPPCTL_CONFIG", raising=False)
    monkeypatch.delenv("RTPPCTL_STATE", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return tmp_path / "xdg"


@pytest.fixture(autouse=True)
def system_config(tmp_path, monkeypatch) -> Path:
    """The machine's /etc/rtppctl/config.toml never leaks into a test; this path (not created) stands in."""
    import rtppctl.config as config_module

    path = tmp_path / "etc" / "rtppctl" / "config.toml"
    monkeypatch.setattr(config_module, "SYSTEM_CONFIG", path)
    return path


def write(path: Path, text: str) -> Path:
    """Write `text` to `path`, creating its folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture(scope="session")
def relays(tmp_path_factory):
    """Factory for real engines; every engine it started is stopped at the end of the session."""
    factory = RelayFactory(tmp_path_factory.mktemp("relays"))
    yield factory
    factory.stop_all()


@pytest.fixture(scope="session")
def relay(relays) -> Relay:
    """One engine shared by the session, reachable over every control transport."""
    return relays.start(transports=("udp", "udp6", "tcp", "unix", "cunix"))


def pytest_collection_modifyitems(items):
    """Mark every test that starts or uses a real engine `relay`, so that `-m "not relay"` is the
    set that needs neither rtp.io nor a relay (CI runs it with the lowest allowed dependencies)."""
    for item in items:
        if {"relay", "relays"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.relay)


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    """A throwaway PostgreSQL cluster for the session (tests/pg.py); each test takes a database."""
    from tests.pg import PgServer

    server = PgServer(tmp_path_factory.mktemp("pg"))
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server) -> str:
    """The URL of a new, empty PostgreSQL database of this test's own."""
    return pg_server.database()


@pytest.fixture(scope="session")
def mariadb_server():
    """A throwaway MariaDB server (tests/mysql.py), or a skip saying why it cannot run here."""
    from tests.mysql import MariaDb, MariaDbUnavailable

    try:
        server = MariaDb()
    except MariaDbUnavailable as reason:
        pytest.skip(f"MariaDB cannot run here: {reason}")
    yield server
    server.stop()


class NotifyingRelay:
    """A real relay that sends timeout notifications (`-n` to a free loopback port, ttls of 1 s so
    they come at once), a config naming both, and the environment a child rtppctl runs with."""

    def __init__(self, relay: Relay, notify: str, env: dict[str, str]) -> None:
        self.relay, self.notify, self.env = relay, notify, env

    def timeout(self, call: str, from_tag: str, tag: str) -> None:
        """Make a session whose timeout the relay reports with notify tag `tag` (sent as given:
        percent-escapes in it reach the listener decoded)."""
        import subprocess
        import sys

        command = f"U {call} 127.0.0.1 4000 {from_tag} {self.notify} {tag}"
        result = subprocess.run([sys.executable, "-m", "rtppctl", "--state", "none", "raw", "-t", self.relay.udp,
                                 command], env=self.env, capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr


@pytest.fixture
def notifying_relay(relays, tmp_path):
    import os

    from tests.relay import free_port

    notify = f"tcp:127.0.0.1:{free_port()}"
    relay = relays.start(extra_args=["-n", notify, "-W", "1", "-T", "1"])
    config = write(tmp_path / "notifying.toml", f'rtpproxy_sock = ["{relay.udp}"]\nrtpp_notify_socket = "{notify}"\n')
    env = {**os.environ, "RTPPCTL_CONFIG": str(config), "RTPPCTL_STATE": "none", "COLUMNS": "80"}
    yield NotifyingRelay(relay, notify, env)
    relay.stop()
