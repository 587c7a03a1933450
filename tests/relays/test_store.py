"""The state store: every field round-trips, the ledger's rules, the state path, refusing files that
are not rtppctl's (byte-for-byte untouched), and eight processes changing one file at once."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtppctl.proto.errors import ConfigError, ExitCode
from rtppctl.relays.health import Health, State
from rtppctl.relays.store import (
    DEFAULT_LEDGER_TTL,
    SCHEMA_VERSION,
    LedgerEntry,
    LedgerStream,
    NodeRecord,
    StateStore,
    default_state_path,
    resolve_state_path,
)

NOW = 1_700_000_000.0


def entry(call_id: str = "call-1", **changes) -> LedgerEntry:
    fields = dict(
        call_id=call_id,
        from_tag="from-1",
        to_tag=None,
        set_id=0,
        node_url="udp:10.0.0.5:7722",
        advertised=None,
        streams=(LedgerStream(0, 30000, (0, 8, 101)),),
        notify_tag=None,
        dtmf_tag=None,
        created_at=NOW,
        last_used_at=NOW,
    )
    fields.update(changes)
    return LedgerEntry(**fields)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    """The same store interface on both backends: every test using it runs on each."""
    location = tmp_path / "state.sqlite3" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    with StateStore.open(location) as opened:
        yield opened


# -- round trips -------------------------------------------------------------------------------------

# Any Unicode text but NUL and lone surrogates: the token validators refuse NUL before a tag reaches
# the ledger (and PostgreSQL text cannot hold it); surrogates are not text that UTF-8 can carry.
texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
times = st.floats(min_value=0, max_value=4e9, allow_nan=False)
streams = st.builds(
    LedgerStream,
    medianum=st.integers(0, 64),
    port=st.integers(1, 65535),
    codecs=st.lists(st.integers(0, 127), max_size=8).map(tuple),
)
entries = st.builds(
    LedgerEntry,
    call_id=texts,
    from_tag=texts,
    to_tag=st.none() | texts,
    set_id=st.none() | st.integers(0, 2**31 - 1),
    node_url=texts,
    advertised=st.none() | texts,
    streams=st.lists(streams, max_size=4).map(tuple),
    notify_tag=st.none() | texts,
    dtmf_tag=st.none() | texts,
    created_at=times,
    last_used_at=times,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries)
def test_every_ledger_field_round_trips(store, ledger_entry):
    store.record_session(ledger_entry)
    assert store.session(ledger_entry.call_id) == ledger_entry
    assert ledger_entry in store.sessions(ledger_entry.node_url)


nodes = st.builds(
    NodeRecord,
    set_id=st.integers(0, 2**31 - 1),
    url=texts,
    health=st.builds(Health, st.sampled_from(State), st.none() | times),
    capabilities=st.none() | st.lists(texts, max_size=6).map(tuple),
    last_rtt_ms=st.none() | st.floats(min_value=0, max_value=1e6, allow_nan=False),
    updated_at=times,
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(nodes)
def test_every_node_field_round_trips(store, record):
    store.save_node(record)
    assert store.load_node(record.set_id, record.url) == record


def test_nodes_are_kept_between_opens_and_replaced_by_set_and_url(tmp_path):
    path = tmp_path / "state.sqlite3"
    first = NodeRecord(0, "udp:10.0.0.5:7722", Health(State.DISABLED, NOW + 60), (), 1.5, NOW)
    second = NodeRecord(0, "unix:/run/rtpproxy.sock", Health(), ("CODECS", "STATS"), None, NOW)
    # The same relay in another set is another node, with health of its own (as in the module).
    other_set = NodeRecord(1, first.url, Health(), None, None, NOW)
    with StateStore.open(path) as store:
        store.save_node(first)
        store.save_node(second)
        store.save_node(other_set)
    enabled = NodeRecord(0, first.url, Health(State.ENABLED, None), ("CODECS",), 0.75, NOW + 61)
    with StateStore.open(path) as store:
        assert store.load_node(0, first.url) == first
        store.save_node(enabled)
        assert store.nodes() == [enabled, second, other_set]
        assert store.load_node(0, "udp:10.0.0.6:7722") is None


def test_update_node_changes_the_current_record(store):
    assert store.update_node(0, "udp:a:1", lambda old: NodeRecord(0, "udp:a:1", Health(), None, None, NOW)).updated_at == NOW
    changed = store.update_node(0, "udp:a:1", lambda old: NodeRecord(0, old.url, old.health, ("STATS",), 2.0, old.updated_at + 1))
    assert changed == store.load_node(0, "udp:a:1")
    assert changed.capabilities == ("STATS",) and changed.updated_at == NOW + 1


# -- the ledger's rules ------------------------------------------------------------------------------


def test_a_new_offer_for_a_call_id_replaces_its_entry(store):
    store.record_session(entry(to_tag="to-1", notify_tag="n", dtmf_tag="d", advertised="192.0.2.1"))
    again = entry(from_tag="from-2", node_url="udp:10.0.0.6:7722", streams=(), created_at=NOW + 5, last_used_at=NOW + 5)
    store.record_session(again)
    assert store.session("call-1") == again
    assert store.sessions() == [again]
    assert store.sessions("udp:10.0.0.5:7722") == []


def test_sessions_are_listed_by_offer_time_and_by_node(store):
    late = entry("b", created_at=NOW + 10)
    early = entry("c", created_at=NOW - 10, node_url="udp:10.0.0.6:7722")
    middle = entry("a")
    for each in (late, early, middle):
        store.record_session(each)
    assert store.sessions() == [early, middle, late]
    assert store.sessions("udp:10.0.0.5:7722") == [middle, late]


def test_touch_moves_last_use_forward_only(store):
    store.record_session(entry())
    assert store.touch("call-1", NOW + 30)
    assert store.session("call-1").last_used_at == NOW + 30
    assert store.touch("call-1", NOW + 10)  # a slower process's older clock reading
    assert store.session("call-1").last_used_at == NOW + 30
    assert store.session("call-1").created_at == NOW
    assert not store.touch("no-such-call", NOW)


def test_forget(store):
    store.record_session(entry())
    assert store.forget("call-1")
    assert store.session("call-1") is None
    assert not store.forget("call-1")


def test_prune_drops_entries_unused_for_longer_than_the_ttl(store):
    store.record_session(entry("old", last_used_at=NOW - DEFAULT_LEDGER_TTL - 1))
    store.record_session(entry("edge", last_used_at=NOW - DEFAULT_LEDGER_TTL))
    store.record_session(entry("touched", last_used_at=NOW - DEFAULT_LEDGER_TTL - 100))
    store.record_session(entry("fresh"))
    store.touch("touched", NOW - 1)
    assert store.prune(DEFAULT_LEDGER_TTL, NOW) == 1
    assert [each.call_id for each in store.sessions()] == ["edge", "fresh", "touched"]
    assert store.prune(DEFAULT_LEDGER_TTL, NOW) == 0
    assert store.prune(0, NOW + 1) == 3
    assert store.sessions() == []


def test_default_ttl_is_a_few_hours():
    assert DEFAULT_LEDGER_TTL == 4 * 3600


# -- the state path ----------------------------------------------------------------------------------


def test_state_path_precedence(tmp_path):
    env = {"XDG_STATE_HOME": str(tmp_path / "xdg"), "RTPPCTL_STATE": str(tmp_path / "env.sqlite3")}
    assert default_state_path(env) == tmp_path / "xdg" / "rtppctl" / "state.sqlite3"
    assert resolve_state_path(str(tmp_path / "opt.sqlite3"), env) == tmp_path / "opt.sqlite3"
    assert resolve_state_path(None, env) == tmp_path / "env.sqlite3"
    assert resolve_state_path(None, {"XDG_STATE_HOME": env["XDG_STATE_HOME"]}) == default_state_path(env)
    assert resolve_state_path(None, {**env, "RTPPCTL_STATE": ""}) == default_state_path(env)
    # A relative XDG value is ignored (files.user_dir), so the default lands under the home folder.
    assert default_state_path({"XDG_STATE_HOME": "rel"}) == Path.home() / ".local/state/rtppctl/state.sqlite3"
    assert resolve_state_path("~/s.sqlite3", env) == Path.home() / "s.sqlite3"


def test_none_keeps_no_state_from_either_place(tmp_path):
    env = {"RTPPCTL_STATE": "none"}
    assert resolve_state_path("none", {}) is None
    assert resolve_state_path(None, env) is None
    # The option still wins over the variable, both ways.
    assert resolve_state_path(str(tmp_path / "s"), env) == tmp_path / "s"
    assert resolve_state_path("none", {"RTPPCTL_STATE": str(tmp_path / "s")}) is None


def test_open_creates_a_private_folder_and_file(tmp_path):
    path = tmp_path / "a" / "rtppctl" / "state.sqlite3"
    with StateStore.open(path) as store:
        store.record_session(entry())
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert path.stat().st_mode & 0o077 == 0
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_an_empty_file_becomes_a_new_store(tmp_path):
    path = tmp_path / "state.sqlite3"
    path.touch()
    with StateStore.open(path) as store:
        assert store.sessions() == []


# -- files that are not rtppctl's: refused, untouched -------------------------------------------------


def _newer(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE rtppctl_sessions (call_id TEXT PRIMARY KEY, more TEXT)")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()


def _newer_in_wal(path: Path) -> None:
    _newer(path)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.close()


def _foreign(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE moz_places (id INTEGER PRIMARY KEY, url TEXT)")
    db.execute("INSERT INTO moz_places (url) VALUES ('https://example.org')")
    db.commit()
    db.close()


def _foreign_with_a_version(path: Path) -> None:
    _foreign(path)
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    db.close()


def _damaged(path: Path) -> None:
    _foreign(path)
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * 3996  # the schema page, after a valid header
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: p.write_bytes(os.urandom(4096)), "not a SQLite database"),
        (lambda p: p.write_text("[nodes]\nurl = 'udp:10.0.0.5:7722'\n"), "not a SQLite database"),
        (lambda p: p.write_bytes(b"SQLite"), "not a SQLite database"),
        (_newer, f"version {SCHEMA_VERSION + 1}, newer than this rtppctl"),
        (_newer_in_wal, f"version {SCHEMA_VERSION + 1}, newer than this rtppctl"),
        (_foreign, "not rtppctl's state (it holds moz_places)"),
        (_foreign_with_a_version, "not rtppctl's state"),
        (_damaged, "cannot be used"),
    ],
    ids=["random-bytes", "text", "short", "newer-version", "newer-version-wal", "foreign", "foreign-version", "damaged"],
)
def test_a_file_that_is_not_rtppctls_is_refused_and_untouched(tmp_path, make, says):
    path = tmp_path / "state.sqlite3"
    make(path)
    before, listing = path.read_bytes(), sorted(os.listdir(tmp_path))
    with pytest.raises(ConfigError) as caught:
        StateStore.open(path)
    assert str(path) in caught.value.message
    assert says in caught.value.message
    assert caught.value.hint and "--state" in caught.value.hint
    assert caught.value.exit_code is ExitCode.CONFIG
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == listing


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        StateStore.open(tmp_path)


def test_importing_the_store_does_not_import_sqlite3():
    code = "import sys, rtppctl.relays.store; print('sqlite3' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# -- eight processes at once -------------------------------------------------------------------------

WORKER = textwrap.dedent(
    """
    import sys, time
    from rtppctl.relays.health import Health, State
    from rtppctl.relays.store import LedgerEntry, LedgerStream, NodeRecord, StateStore

    path, worker, start_at = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    now = 1_700_000_000.0
    time.sleep(max(0.0, start_at - time.time()))  # all eight begin together, on a missing file
    with StateStore.open(path) as store:
        for n in range(50):
            stream = (LedgerStream(0, 20000 + n, (0, 8)),)
            store.record_session(LedgerEntry(
                f"call-{worker}-{n}", "f", None, 1, f"udp:node-{n % 3}", None, stream, None, None, now, now))
            store.record_session(LedgerEntry(
                f"stale-{worker}-{n}", "f", None, 1, "udp:node-0", None, (), None, None, now - 99, now - 99))
            store.save_node(NodeRecord(
                1, f"udp:node-{n % 3}", Health(State.ENABLED), ("CODECS",), float(worker), now + n))
            # A read-modify-write counter: a lost update would leave it short of 8 x 50.
            store.update_node(2, "udp:counter", lambda old: NodeRecord(
                2, "udp:counter", Health(), None, (old.last_rtt_ms if old else 0.0) + 1, now))
            store.touch(f"call-{worker}-{n}", now + n)
            store.prune(10, now)
            assert store.session(f"call-{worker}-{n}") is not None
    """
)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_eight_processes_at_once_leave_the_state_consistent(request, tmp_path, backend):
    path = tmp_path / "shared" / "state.sqlite3" if backend == "sqlite" else request.getfixturevalue("pg_url")
    start_at = time.time() + 1.0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(path), str(worker), str(start_at)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for worker in range(8)
    ]
    for process in workers:
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
    with StateStore.open(path) as store:
        store.prune(10, NOW)
        found = {each.call_id: each for each in store.sessions()}
        assert set(found) == {f"call-{w}-{n}" for w in range(8) for n in range(50)}
        assert all(found[f"call-{w}-{n}"].last_used_at == NOW + n for w in range(8) for n in range(50))
        assert [node.url for node in store.nodes()] == ["udp:node-0", "udp:node-1", "udp:node-2", "udp:counter"]
        assert store.load_node(2, "udp:counter").last_rtt_ms == 8 * 50
    if backend == "sqlite":
        db = sqlite3.connect(path)
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        db.close()



# -- schema versions and the database's relays ---------------------------------------------------------

V1_SCHEMA = (
    "CREATE TABLE rtppctl_nodes (set_id INTEGER NOT NULL, url TEXT NOT NULL, state TEXT NOT NULL, recheck_at REAL,"
    " capabilities TEXT, last_rtt_ms REAL, updated_at REAL NOT NULL, PRIMARY KEY (set_id, url))",
    "CREATE TABLE rtppctl_sessions (call_id TEXT PRIMARY KEY, from_tag TEXT NOT NULL, to_tag TEXT, set_id INTEGER,"
    " node_url TEXT NOT NULL, advertised TEXT, streams TEXT NOT NULL, notify_tag TEXT, dtmf_tag TEXT,"
    " created_at REAL NOT NULL, last_used_at REAL NOT NULL)",
)


def test_a_version_1_file_is_migrated_forward_keeping_its_rows(tmp_path):
    path = tmp_path / "state.sqlite3"
    db = sqlite3.connect(path)
    for statement in V1_SCHEMA:
        db.execute(statement)
    db.execute("INSERT INTO rtppctl_sessions VALUES ('c1', 'ft', NULL, 0, 'udp:a:1', NULL, '[]', NULL, NULL, 1.0, 2.0)")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    with StateStore.open(path) as store:
        assert [e.call_id for e in store.sessions()] == ["c1"]
        assert store.db_snapshot() is None
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    db.close()


def test_the_database_snapshot_round_trips_and_is_replaced_whole(store):
    from rtppctl.relays.store import DbSnapshot, SnapshotNode

    assert store.db_snapshot() is None
    first = DbSnapshot("sqlite:///x.db rtpproxy_sockets", NOW,
                       (SnapshotNode(0, "udp:10.0.0.5:22222=2", "id 1"), SnapshotNode(0, "udp:10.0.0.6:22222", "id 1"),
                        SnapshotNode(7, "tcp:10.0.1.5:22222|192.0.2.1", "id 4")))
    store.replace_db_snapshot(first)
    assert store.db_snapshot() == first
    empty = DbSnapshot(first.source, NOW + 1, ())
    store.replace_db_snapshot(empty)
    assert store.db_snapshot() == empty  # an empty table is a snapshot too, not "never read"


def test_postgresql_keeps_to_its_own_tables_in_a_shared_database(pg_url):
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute("CREATE TABLE rtpproxy_sockets (id SERIAL PRIMARY KEY, rtpproxy_sock TEXT NOT NULL, set_id INTEGER NOT NULL)")
        db.execute("INSERT INTO rtpproxy_sockets (rtpproxy_sock, set_id) VALUES ('udp:10.0.0.5:22222', 0)")
    with StateStore.open(pg_url) as store:
        store.record_session(entry())
    with psycopg.connect(pg_url, autocommit=True) as db:
        assert db.execute("SELECT rtpproxy_sock FROM rtpproxy_sockets").fetchall() == [("udp:10.0.0.5:22222",)]
        assert db.execute("SELECT version FROM rtppctl_schema").fetchall() == [(SCHEMA_VERSION,)]


def test_a_newer_postgresql_schema_is_refused_and_untouched(pg_url):
    import psycopg

    with StateStore.open(pg_url) as store:
        store.record_session(entry())
    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute("UPDATE rtppctl_schema SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(ConfigError, match=f"version {SCHEMA_VERSION + 1}, newer than this rtppctl"):
        StateStore.open(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as db:
        assert db.execute("SELECT count(*) FROM rtppctl_sessions").fetchone() == (1,)


def test_a_postgresql_server_that_is_down_is_a_config_error_with_the_password_masked():
    from tests.relay import free_port

    url = f"postgresql://ops:s3cret@127.0.0.1:{free_port()}/rtppctl"
    with pytest.raises(ConfigError) as caught:
        StateStore.open(url)
    assert "ops:***@127.0.0.1" in caught.value.message and "s3cret" not in caught.value.message
    assert caught.value.exit_code is ExitCode.CONFIG


def test_recording_a_session_can_prune_in_the_same_transaction(store):
    store.record_session(entry(call_id="old", last_used_at=NOW - 100, created_at=NOW - 100))
    store.record_session(entry(call_id="new"), unused_before=NOW - 10)
    assert [e.call_id for e in store.sessions()] == ["new"]
