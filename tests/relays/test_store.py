"""The state store: every field round-trips, the ledger's rules, the state path, refusing files that
are not rtppctl's (byte-for-byte untouched), and eight processes changing one file at once."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
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
    NodeInfo,
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
    # Examples share the store: an earlier example's call may hold this one's tags, so every
    # other entry is pruned by the same write (as an offer prunes the expired ones).
    store.write_entry(ledger_entry, unused_before=1e18)
    assert store.session(ledger_entry.call_id) == ledger_entry
    assert ledger_entry in store.sessions(ledger_entry.node_url)


nodes = st.builds(
    NodeInfo,
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
    assert store.update_node(record.set_id, record.url, lambda old: record) == record
    assert [n for n in store.nodes() if (n.set_id, n.url) == (record.set_id, record.url)] == [record]


def keep(store: StateStore, record: NodeInfo) -> None:
    """Write `record` over the node's earlier one, as the relay service writes health."""
    store.update_node(record.set_id, record.url, lambda old: record)


def test_nodes_are_kept_between_opens_and_replaced_by_set_and_url(tmp_path):
    path = tmp_path / "state.sqlite3"
    first = NodeInfo(0, "udp:10.0.0.5:7722", Health(State.DISABLED, NOW + 60), (), 1.5, NOW)
    second = NodeInfo(0, "unix:/run/rtpproxy.sock", Health(), ("CODECS", "STATS"), None, NOW)
    # The same relay in another set is another node, with health of its own (as in the module).
    other_set = NodeInfo(1, first.url, Health(), None, None, NOW)
    with StateStore.open(path) as store:
        for record in (first, second, other_set):
            keep(store, record)
    enabled = NodeInfo(0, first.url, Health(State.ENABLED, None), ("CODECS",), 0.75, NOW + 61)
    with StateStore.open(path) as store:
        assert store.nodes() == [first, second, other_set]
        assert store.update_node(0, first.url, lambda old: replace(old, health=enabled.health, capabilities=("CODECS",),
                                                                   last_rtt_ms=0.75, updated_at=NOW + 61)) == enabled
        assert store.nodes() == [enabled, second, other_set]


def test_update_node_changes_the_current_record(store):
    assert store.update_node(0, "udp:a:1", lambda old: NodeInfo(0, "udp:a:1", Health(), None, None, NOW)).updated_at == NOW
    changed = store.update_node(0, "udp:a:1", lambda old: NodeInfo(0, old.url, old.health, ("STATS",), 2.0, old.updated_at + 1))
    assert store.nodes() == [changed]
    assert changed.capabilities == ("STATS",) and changed.updated_at == NOW + 1


# -- the ledger's rules ------------------------------------------------------------------------------


def test_a_new_offer_for_a_call_id_replaces_its_entry(store):
    store.write_entry(entry(to_tag="to-1", notify_tag="n", dtmf_tag="d", advertised="192.0.2.1"))
    again = entry(from_tag="from-2", node_url="udp:10.0.0.6:7722", streams=(), created_at=NOW + 5, last_used_at=NOW + 5)
    store.write_entry(again)
    assert store.session("call-1") == again
    assert store.sessions() == [again]
    assert store.sessions("udp:10.0.0.5:7722") == []


def test_sessions_are_listed_by_offer_time_and_by_node(store):
    late = entry("b", created_at=NOW + 10)
    early = entry("c", created_at=NOW - 10, node_url="udp:10.0.0.6:7722")
    middle = entry("a")
    for each in (late, early, middle):
        store.write_entry(each)
    assert store.sessions() == [early, middle, late]
    assert store.sessions("udp:10.0.0.5:7722") == [middle, late]


def test_touch_moves_last_use_forward_only(store):
    store.write_entry(entry())
    assert store.touch("call-1", NOW + 30)
    assert store.session("call-1").last_used_at == NOW + 30
    assert store.touch("call-1", NOW + 10)  # a slower process's older clock reading
    assert store.session("call-1").last_used_at == NOW + 30
    assert store.session("call-1").created_at == NOW
    assert not store.touch("no-such-call", NOW)


def test_forget(store):
    store.write_entry(entry())
    assert store.forget("call-1")
    assert store.session("call-1") is None
    assert not store.forget("call-1")


def test_writes_drop_entries_unused_for_longer_than_the_ttl(store):
    # An offer's write prunes every other call unused since before the cutoff (strictly), and an
    # expiry drops one call only while it is still unused: the two ways the ledger is pruned.
    cutoff = NOW - DEFAULT_LEDGER_TTL
    store.write_entry(entry("old", last_used_at=cutoff - 1))
    store.write_entry(entry("edge", last_used_at=cutoff))
    store.write_entry(entry("touched", last_used_at=cutoff - 100))
    store.touch("touched", NOW - 1)
    store.write_entry(entry("fresh"), unused_before=cutoff)
    assert [each.call_id for each in store.sessions()] == ["edge", "fresh", "touched"]
    assert not store.forget("edge", unused_before=cutoff)
    assert store.forget("edge", unused_before=cutoff + 1)
    store.write_entry(entry("newest", last_used_at=NOW + 1), unused_before=NOW + 1)
    assert [each.call_id for each in store.sessions()] == ["newest"]


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
        store.write_entry(entry())
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
    from rtppctl.relays.store import LedgerEntry, LedgerStream, NodeInfo, StateStore

    path, worker, start_at = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    now = 1_700_000_000.0
    time.sleep(max(0.0, start_at - time.time()))  # all eight begin together, on a missing file
    with StateStore.open(path) as store:
        for n in range(50):
            stream = (LedgerStream(0, 20000 + n, (0, 8)),)
            store.write_entry(LedgerEntry(
                f"stale-{worker}-{n}", "f", None, 1, "udp:node-0", None, (), None, None, now - 99, now - 99))
            # An offer's write prunes the calls unused for 10 s: every stale one, any worker's.
            store.write_entry(LedgerEntry(
                f"call-{worker}-{n}", "f", None, 1, f"udp:node-{n % 3}", None, stream, None, None, now, now),
                unused_before=now - 10)
            store.update_node(1, f"udp:node-{n % 3}", lambda old: NodeInfo(
                1, f"udp:node-{n % 3}", Health(State.ENABLED), ("CODECS",), float(worker), now + n))
            # A read-modify-write counter: a lost update would leave it short of 8 x 50.
            store.update_node(2, "udp:counter", lambda old: NodeInfo(
                2, "udp:counter", Health(), None, (old.last_rtt_ms if old else 0.0) + 1, now))
            store.touch(f"call-{worker}-{n}", now + n)
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
        found = {each.call_id: each for each in store.sessions()}
        assert set(found) == {f"call-{w}-{n}" for w in range(8) for n in range(50)}
        assert all(found[f"call-{w}-{n}"].last_used_at == NOW + n for w in range(8) for n in range(50))
        assert [node.url for node in store.nodes()] == ["udp:node-0", "udp:node-1", "udp:node-2", "udp:counter"]
        assert store.nodes()[-1].last_rtt_ms == 8 * 50
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
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    db.close()


def test_the_database_snapshot_round_trips_and_is_replaced_whole(store):
    from rtppctl.sources import DbSnapshot, SnapshotNode

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
        store.write_entry(entry())
    with psycopg.connect(pg_url, autocommit=True) as db:
        assert db.execute("SELECT rtpproxy_sock FROM rtpproxy_sockets").fetchall() == [("udp:10.0.0.5:22222",)]
        assert db.execute("SELECT version FROM rtppctl_schema").fetchall() == [(SCHEMA_VERSION,)]


def test_a_newer_postgresql_schema_is_refused_and_untouched(pg_url):
    import psycopg

    with StateStore.open(pg_url) as store:
        store.write_entry(entry())
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
    store.write_entry(entry(call_id="old", last_used_at=NOW - 100, created_at=NOW - 100))
    store.write_entry(entry(call_id="new"), unused_before=NOW - 10)
    assert [e.call_id for e in store.sessions()] == ["new"]


# -- ledger changes that state what they expect ---------------------------------------------------------


def test_an_offer_replaces_the_entry_it_read_and_nothing_else(store):
    from rtppctl.relays.store import LedgerChanged

    first = entry(notify_tag="T1.2")
    store.write_entry(first, replacing=None)
    # A re-offer of the same call, read before it asked the relay: replaces it (last use moved meanwhile too).
    store.touch("call-1", NOW + 5)
    again = entry(streams=(), last_used_at=NOW + 9, notify_tag="T1.2")
    store.write_entry(again, replacing=first)
    assert store.session("call-1") == again
    # Another process moved the call to another node meanwhile: a write based on the old entry
    # (the old node) must not land over the new one.
    moved = entry(node_url="udp:10.0.0.6:7722", created_at=NOW + 20, last_used_at=NOW + 20)
    store.write_entry(moved, replacing=again)
    stale = entry(last_used_at=NOW + 30)
    with pytest.raises(LedgerChanged, match="now names udp:10.0.0.6:7722") as caught:
        store.write_entry(stale, replacing=again)
    assert caught.value.current == moved and caught.value.exit_code is ExitCode.CONFIG
    assert store.session("call-1") == moved
    # Removed meanwhile (unforce): not brought back.
    assert store.forget("call-1")
    with pytest.raises(LedgerChanged, match="was removed"):
        store.write_entry(stale, replacing=moved)
    assert store.session("call-1") is None
    # Read none, but one appeared on another node meanwhile (a second first offer elsewhere).
    store.write_entry(moved, replacing=None)
    with pytest.raises(LedgerChanged):
        store.write_entry(stale, replacing=None)
    # The same node and From tag: the same session on the relay, whoever wrote first.
    same = entry(node_url=moved.node_url, created_at=NOW + 40, last_used_at=NOW + 40)
    store.write_entry(same, replacing=None)
    assert store.session("call-1") == same


def test_an_answer_adds_its_to_tag_only_to_the_entry_it_read(store):
    offered = entry()
    store.write_entry(offered)
    answered = store.add_to_tag("call-1", node_url=offered.node_url, from_tag="from-1", to_tag="to-1", now=NOW + 3)
    assert answered == entry(to_tag="to-1", last_used_at=NOW + 3) == store.session("call-1")
    # A second answer keeps the first To tag, and time only moves forward.
    assert store.add_to_tag("call-1", node_url=offered.node_url, from_tag="from-1", to_tag="to-2", now=NOW + 1) == answered
    # Another node or From tag than the one read: the call was moved or re-offered meanwhile.
    assert store.add_to_tag("call-1", node_url="udp:10.0.0.6:7722", from_tag="from-1", to_tag="x", now=NOW + 9) is None
    assert store.add_to_tag("call-1", node_url=offered.node_url, from_tag="from-9", to_tag="x", now=NOW + 9) is None
    assert store.session("call-1") == answered
    # Removed meanwhile (unforce): the answer does not bring it back.
    store.forget("call-1")
    assert store.add_to_tag("call-1", node_url=offered.node_url, from_tag="from-1", to_tag="to-1", now=NOW + 9) is None
    assert store.session("call-1") is None and store.sessions() == []


def test_forget_removes_only_the_entry_of_the_node_named(store):
    store.write_entry(entry(node_url="udp:10.0.0.6:7722"))
    # unforce sent D to the old node while a re-offer moved the call: the new entry stays.
    assert not store.forget("call-1", node_url="udp:10.0.0.5:7722")
    assert store.session("call-1") is not None
    assert not store.forget("call-1", unused_before=NOW)  # used since: kept by an expiry prune
    assert store.forget("call-1", node_url="udp:10.0.0.6:7722", unused_before=NOW + 1)
    assert store.session("call-1") is None


def test_a_notify_tag_belongs_to_one_call(store):
    from rtppctl.relays.store import LedgerChanged

    store.write_entry(entry("a", notify_tag="T5.1", dtmf_tag="Dd5.1"))
    with pytest.raises(LedgerChanged, match="belongs to call 'a'") as caught:
        store.write_entry(entry("b", notify_tag="T5.1"), replacing=None)
    assert caught.value.holder == "a" and store.session("b") is None
    with pytest.raises(LedgerChanged, match="belongs to call 'a'"):
        store.write_entry(entry("b", dtmf_tag="Dd5.1"))
    # The user gave both calls one dialog id: the newer call takes the tags.
    store.write_entry(entry("b", notify_tag="T5.1", dtmf_tag="Dd5.1"), replacing=None, take_tags=True)
    assert (store.session("a").notify_tag, store.session("a").dtmf_tag) == (None, None)
    assert store.session_by_tag("T5.1").call_id == "b"
    # A call keeps its own tag through a re-offer; an expired call holds none (pruned first).
    store.write_entry(entry("b", notify_tag="T5.1", last_used_at=NOW + 1))
    store.write_entry(entry("c", notify_tag="T5.1", created_at=NOW + 99, last_used_at=NOW + 99),
                         replacing=None, unused_before=NOW + 50)
    assert store.session("b") is None and store.session_by_tag("T5.1").call_id == "c"


def test_the_schema_itself_refuses_a_second_call_with_a_notify_tag(tmp_path):
    path = tmp_path / "state.sqlite3"
    with StateStore.open(path) as store:
        store.write_entry(entry("a", notify_tag="T5.1"))
        store.write_entry(entry("b"))
        store.write_entry(entry("c"))  # calls without a tag are any number
    db = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("UPDATE rtppctl_sessions SET notify_tag = 'T5.1' WHERE call_id = 'b'")
    db.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_version_2_store_with_repeated_notify_tags_is_migrated_keeping_the_newest(request, tmp_path, backend):
    location = tmp_path / "state.sqlite3" if backend == "sqlite" else request.getfixturevalue("pg_url")
    with StateStore.open(location) as store:
        for name, used in (("old", NOW), ("newest", NOW + 20), ("middle", NOW + 10), ("own", NOW)):
            store.write_entry(entry(name, notify_tag=None, last_used_at=used))
    tags = {"old": "T5.1", "newest": "T5.1", "middle": "T5.1", "own": "T6.1"}
    statements = ["DROP INDEX rtppctl_sessions_notify_tag",
                  *(f"UPDATE rtppctl_sessions SET notify_tag = '{tag}' WHERE call_id = '{name}'" for name, tag in tags.items())]
    if backend == "sqlite":
        db = sqlite3.connect(location)
        for statement in statements:
            db.execute(statement)
        db.execute("PRAGMA user_version = 2")
        db.commit()
        db.close()
    else:
        import psycopg

        with psycopg.connect(location, autocommit=True) as db:
            for statement in [*statements, "UPDATE rtppctl_schema SET version = 2"]:
                db.execute(statement)
    with StateStore.open(location) as store:
        found = {e.call_id: e.notify_tag for e in store.sessions()}
        assert found == {"old": None, "middle": None, "newest": "T5.1", "own": "T6.1"}
        from rtppctl.relays.store import LedgerChanged

        with pytest.raises(LedgerChanged):
            store.write_entry(entry("old", notify_tag="T5.1"))


# -- special files, refused at once --------------------------------------------------------------------

OPEN_SCRIPT = textwrap.dedent(
    """
    import sys
    from rtppctl.proto.errors import ConfigError
    from rtppctl.relays.store import StateStore
    try:
        StateStore.open(sys.argv[1]).close()
    except ConfigError as err:
        print(err.message)
    """
)


def _open_in_child(path: Path) -> str:
    # A child with a deadline: a regression would wait for a FIFO's writer for ever.
    result = subprocess.run([sys.executable, "-c", OPEN_SCRIPT, str(path)], capture_output=True, text=True,
                            timeout=20, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_fifo_socket_or_device_as_the_state_file_is_refused_at_once(tmp_path):
    import socket

    fifo = tmp_path / "state.fifo"
    os.mkfifo(fifo)
    started = time.monotonic()
    assert _open_in_child(fifo) == f"{fifo}: is a FIFO, not a state file"
    link = tmp_path / "link.sqlite3"
    link.symlink_to(fifo)
    assert _open_in_child(link) == f"{link}: is a FIFO, not a state file"
    assert _open_in_child(Path("/dev/null")) == "/dev/null: is a character device, not a state file"
    bound = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(bound))
        assert _open_in_child(bound) == f"{bound}: is a socket, not a state file"
    # SQLite's companion beside the file would be read the same way.
    (tmp_path / "ok.sqlite3").touch()
    os.mkfifo(tmp_path / "ok.sqlite3-wal")
    assert _open_in_child(tmp_path / "ok.sqlite3") == f"{tmp_path / 'ok.sqlite3-wal'}: is a FIFO, not a state file"
    assert time.monotonic() - started < 15
    assert stat_kind(fifo) == "fifo"  # untouched


def stat_kind(path: Path) -> str:
    import stat

    return "fifo" if stat.S_ISFIFO(os.stat(path).st_mode) else "other"


# -- waits end within the budget ---------------------------------------------------------------------------

HOLD_SQLITE = textwrap.dedent(
    """
    import sqlite3, sys, time
    db = sqlite3.connect(sys.argv[1], isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    db.execute("COMMIT")
    """
)


def hold_sqlite_lock(path: Path, seconds: float) -> subprocess.Popen:
    """Another process holding the state file's write lock for `seconds`; returns once it holds it."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_SQLITE, str(path), str(seconds)], stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_sqlite_lock_held_past_the_budget_fails_within_it_naming_the_cause(tmp_path, monkeypatch):
    import rtppctl.db as db_module

    path = tmp_path / "state.sqlite3"
    with StateStore.open(path) as store:
        store.write_entry(entry())
        monkeypatch.setattr(db_module, "RETRY_SECONDS", 1.5)  # SQLite's own wait stays 5 s
        holder = hold_sqlite_lock(path, 30)
        try:
            started = time.monotonic()
            with pytest.raises(ConfigError) as caught:
                store.forget("call-1")
            took = time.monotonic() - started
            assert store.session("call-1") is not None  # reads go on beside the lock (WAL)
        finally:
            holder.kill()
            holder.wait(10)
        assert 1.2 < took < 2.5
        assert caught.value.message == f"{path}: the state file stayed locked by another process for 1.5 s"
        assert "--state none" in caught.value.hint and caught.value.exit_code is ExitCode.CONFIG
        assert store.forget("call-1")  # the lock gone, the same store works


def _backend_of(url: str) -> int:
    """The pid of the PostgreSQL backend serving rtppctl's (only) connection to `url`'s database."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url, autocommit=True) as db:
        rows = db.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = 'rtppctl'",
                          (name,)).fetchall()
    assert len(rows) == 1, rows
    return rows[0][0]


def test_a_postgresql_server_that_stops_answering_mid_command_fails_within_the_budget(pg_url, monkeypatch):
    import signal

    import rtppctl.db as db_module

    with StateStore.open(pg_url) as store:
        store.write_entry(entry())
        monkeypatch.setattr(db_module, "RETRY_SECONDS", 1.5)
        backend = _backend_of(pg_url)
        os.kill(backend, signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(ConfigError) as caught:
                store.write_entry(entry(last_used_at=NOW + 1))
            took = time.monotonic() - started
        finally:
            os.kill(backend, signal.SIGCONT)
        assert 1.2 < took < 2.5
        assert caught.value.message == f"{pg_url}: the state database did not answer within 1.5 s"
        assert caught.value.exit_code is ExitCode.CONFIG
        # The cut connection is replaced on the next operation; the stopped write never landed.
        assert store.session("call-1") == entry()


def test_a_postgresql_table_lock_is_waited_out_in_tries_and_given_up_on_at_the_budget(pg_url, monkeypatch):
    import threading

    import psycopg

    import rtppctl.db as db_module

    with StateStore.open(pg_url) as store:
        store.write_entry(entry())
        monkeypatch.setattr(db_module, "RETRY_SECONDS", 1.5)
        locker = psycopg.connect(pg_url)
        try:
            locker.execute("LOCK TABLE rtppctl_sessions IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            with pytest.raises(ConfigError) as caught:
                store.sessions()
            took = time.monotonic() - started
            assert 1.2 < took < 2.5
            assert caught.value.message == f"{pg_url}: another session held a lock on rtppctl's tables for 1.5 s"
            assert "pg_stat_activity" in caught.value.hint
            # Each try waits 0.3 s for the lock; one held for a second is waited out.
            monkeypatch.setattr(db_module, "BUSY_TIMEOUT", 0.3)
            monkeypatch.setattr(db_module, "RETRY_SECONDS", 5.0)
            threading.Timer(1.0, locker.rollback).start()
            started = time.monotonic()
            assert store.forget("call-1")
            assert 0.9 < time.monotonic() - started < 3
        finally:
            locker.close()


HOLD_PG = textwrap.dedent(
    """
    import os, signal, sys
    import rtppctl.db as db_module
    import rtppctl.relays.store as store_module
    db_module.IDLE_IN_TRANSACTION_TIMEOUT = float(sys.argv[2])

    def stop_inside(db):
        db.execute("DELETE FROM rtppctl_sessions WHERE call_id = 'call-1'")  # the row is locked now
        print("holding", flush=True)
        os.kill(os.getpid(), signal.SIGSTOP)  # a process that stops mid-transaction, connection open

    with store_module.StateStore.open(sys.argv[1]) as store:
        store._transaction(stop_inside, write=True)
    """
)


def test_a_postgresql_session_of_ours_stopped_in_a_transaction_frees_its_locks(pg_url):
    import signal

    with StateStore.open(pg_url) as store:
        store.write_entry(entry())
        holder = subprocess.Popen([sys.executable, "-c", HOLD_PG, pg_url, "1"], stdout=subprocess.PIPE, text=True,
                                  env={**os.environ, "PYTHONPATH": os.getcwd()})
        try:
            assert holder.stdout.readline().strip() == "holding"
            started = time.monotonic()
            # Blocked by the stopped process's row lock until the server ends its idle transaction.
            assert store.touch("call-1", NOW + 1)
            assert 0.5 < time.monotonic() - started < 5
        finally:
            holder.send_signal(signal.SIGKILL)
            holder.wait(10)
        assert store.session("call-1").last_used_at == NOW + 1  # the stopped delete never landed


def test_postgresql_connections_carry_keepalives_and_a_name(pg_url):
    with StateStore.open(pg_url) as store:
        info = store._database.connection.info.get_parameters()
        assert (info["keepalives"], info["keepalives_idle"], info["application_name"]) == ("1", "5", "rtppctl")
        limits = store._transaction(lambda db: [db.execute(f"SHOW {name}").fetchone()[0] for name in (
            "statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")], write=False)
        assert limits[1] == "5s" and limits[2] == "5s" and limits[0].endswith("ms")
    # What the URL says wins.
    with StateStore.open(pg_url + "?application_name=ops&keepalives_idle=30") as store:
        info = store._database.connection.info.get_parameters()
        assert (info["keepalives_idle"], info["application_name"]) == ("30", "ops")


def test_a_write_that_is_not_an_offer_never_replaces_an_entry_it_did_not_read(store):
    from rtppctl.relays.store import LedgerChanged

    # An answer for a call the ledger did not know writes an entry only where there is none: the
    # offer that recorded the call meanwhile (with its notify tag) keeps its entry.
    offered = entry(notify_tag="T7.1")
    store.write_entry(offered, replacing=None)
    with pytest.raises(LedgerChanged):
        store.write_entry(entry(to_tag="to-1"), replacing=None, strict=True)
    assert store.session("call-1") == offered
