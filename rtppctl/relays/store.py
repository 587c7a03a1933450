"""The relay service's state between runs: node health, the session ledger and the snapshot of
the database's relays, in one SQLite file or one PostgreSQL database.

This module owns the state store (`--state FILE|URL`, `RTPPCTL_STATE`, the `state_url` key, else
`$XDG_STATE_HOME/rtppctl/state.sqlite3`; "none" keeps no state), its schema and every SQL
statement on it. Both backends run the same statements through the same code; a backend only
says how to connect, how a transaction starts, where the schema version is kept and which errors
mean "try again". The rules it keeps:

- What is not rtppctl's is never changed: a non-SQLite file, a damaged database, another
  program's SQLite database, or a store from a newer rtppctl is refused with a `ConfigError`
  (exit 5) naming the file or the URL (password masked), before the first write. On PostgreSQL
  only the tables named `rtppctl_*` are rtppctl's: the database may be shared with OpenSIPS.
- Older schemas are migrated forward in one transaction; newer ones are refused.
- Many rtppctl processes (on many hosts, with PostgreSQL) may share the store: one short
  transaction per change; SQLite takes the write lock at BEGIN (WAL, busy timeout), PostgreSQL
  runs writes SERIALIZABLE; a conflict is retried, so no update is lost and no row doubled.
- One ledger entry per Call-ID: a new offer replaces the entry; entries unused for longer than a
  caller-chosen time are pruned. Every time is given by the caller; there is no clock in here.

The SQL is deliberately plain (TEXT, DOUBLE PRECISION, BIGINT, DELETE + INSERT instead of upserts,
JSON as text) so that both databases read it alike.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rtppctl.files import user_dir
from rtppctl.proto import limits
from rtppctl.proto.errors import ConfigError
from rtppctl.relays.health import Health, State

if TYPE_CHECKING:
    from types import TracebackType

#: The schema version this rtppctl writes (SQLite: `PRAGMA user_version`; PostgreSQL: the
#: `rtppctl_schema` table). A newer store is refused, never migrated down; an older one is migrated up.
SCHEMA_VERSION = 2

#: How long a ledger entry lives unused (seconds) unless configured otherwise (`ledger_ttl`).
DEFAULT_LEDGER_TTL = limits.DEFAULT_LEDGER_TTL

#: The environment variable naming the state store, below `--state` and above `state_url`.
STATE_ENV = "RTPPCTL_STATE"

#: The value of `--state` or `RTPPCTL_STATE` that keeps no state at all.
NO_STATE = "none"

#: Seconds SQLite waits for another process's lock before answering "database is locked".
BUSY_TIMEOUT = 5.0

#: Seconds one transaction keeps being retried. SQLite answers "locked" without waiting in a few
#: cases the busy timeout does not cover, and PostgreSQL aborts one of two conflicting serializable
#: writers; a short, growing, randomised pause and another try are cheaper than a failed command.
#: A budget of time rather than a number of tries: on a loaded host many writers may each lose
#: several rounds before their turn.
RETRY_SECONDS = 15.0

#: Seconds to wait for a PostgreSQL server to accept the connection.
CONNECT_TIMEOUT = 5

_SQLITE_MAGIC = b"SQLite format 3\x00"

_PREFIX = "rtppctl_"
_NODE_TABLE = "rtppctl_nodes"
_SESSION_TABLE = "rtppctl_sessions"
_DB_NODE_TABLE = "rtppctl_db_nodes"
_META_TABLE = "rtppctl_meta"
_TABLES = frozenset({_NODE_TABLE, _SESSION_TABLE, _DB_NODE_TABLE, _META_TABLE})

# Version 2 added the snapshot of the database's relays and a key/value table for its bookkeeping.
_V2_TABLES = (
    f"""CREATE TABLE {_DB_NODE_TABLE} (
        set_id BIGINT NOT NULL,
        position INTEGER NOT NULL,
        spec TEXT NOT NULL,
        source_row TEXT NOT NULL,
        PRIMARY KEY (set_id, position)
    )""",
    f"""CREATE TABLE {_META_TABLE} (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
)

# Table names carry a prefix so that the store can share a PostgreSQL database with others.
_SCHEMA = (
    # A node's health is per set, as in the module: one relay in two sets is two nodes.
    f"""CREATE TABLE {_NODE_TABLE} (
        set_id BIGINT NOT NULL,
        url TEXT NOT NULL,
        state TEXT NOT NULL,
        recheck_at DOUBLE PRECISION,
        capabilities TEXT,
        last_rtt_ms DOUBLE PRECISION,
        updated_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (set_id, url)
    )""",
    f"""CREATE TABLE {_SESSION_TABLE} (
        call_id TEXT PRIMARY KEY,
        from_tag TEXT NOT NULL,
        to_tag TEXT,
        set_id BIGINT,
        node_url TEXT NOT NULL,
        advertised TEXT,
        streams TEXT NOT NULL,
        notify_tag TEXT,
        dtmf_tag TEXT,
        created_at DOUBLE PRECISION NOT NULL,
        last_used_at DOUBLE PRECISION NOT NULL
    )""",
    # prune scans by last use; sessions(node_url) lists one node's calls in order.
    f"CREATE INDEX rtppctl_sessions_last_used ON {_SESSION_TABLE} (last_used_at)",
    f"CREATE INDEX rtppctl_sessions_node ON {_SESSION_TABLE} (node_url, created_at)",
    *_V2_TABLES,
)

#: Statements taking a store from version N to N + 1.
_MIGRATIONS: dict[int, tuple[str, ...]] = {1: _V2_TABLES}

_SESSION_COLUMNS = (
    "call_id, from_tag, to_tag, set_id, node_url, advertised, streams, notify_tag, dtmf_tag, created_at, last_used_at"
)
_NODE_COLUMNS = "set_id, url, state, recheck_at, capabilities, last_rtt_ms, updated_at"

_HINT_OTHER_FILE = f"move the file aside, or give another one with --state FILE (--state {NO_STATE} keeps no state)"
_HINT_OTHER_DB = f"give another database with --state URL or state_url (--state {NO_STATE} keeps no state)"

_T = TypeVar("_T")


def default_state_path(env: Mapping[str, str] | None = None) -> Path:
    """`$XDG_STATE_HOME/rtppctl/state.sqlite3` (`~/.local/state/...` when unset)."""
    return user_dir("state", env) / "state.sqlite3"


def resolve_state_path(option: str | None, env: Mapping[str, str] | None = None,
                       state_url: str | None = None) -> Path | str | None:
    """The state store to use: `--state`, else `RTPPCTL_STATE`, else the config's `state_url`,
    else the default file; None for "none". A database URL is returned as a string, a file as a
    Path.

    An empty value counts as unset, as is the custom for environment variables. `~` is expanded
    because `--state=~/x` and a quoted variable reach rtppctl unexpanded.
    """
    from rtppctl.dburl import is_db_url, parse_db_url  # noqa: PLC0415

    environ = os.environ if env is None else env
    for value in (option, environ.get(STATE_ENV), state_url):
        if not value:
            continue
        if value == NO_STATE:
            return None
        if is_db_url(value):
            url = parse_db_url(value, "the state store")
            if url.backend == "sqlite":
                return url.path
            if url.backend != "postgresql":
                raise ConfigError(f"the state store cannot be kept in {url.backend}: {url.shown}",
                                  "use a file, or postgresql://user:password@host/dbname")
            return value
        return Path(value).expanduser()
    return default_state_path(env)


@dataclass(frozen=True)
class NodeRecord:
    """What is kept about one relay node between runs."""

    #: The set the node belongs to; with `url`, the key.
    set_id: int
    #: The node's URL as configured, e.g. "udp:10.0.0.5:7722".
    url: str
    #: Its health (state, and when it is probed again).
    health: Health
    #: The module capability names its last successful probe found, e.g. ("CODECS", "STATS");
    #: None while no probe has succeeded.
    capabilities: tuple[str, ...] | None
    #: Round-trip time of the last command that got a reply, in milliseconds; None before any.
    last_rtt_ms: float | None
    #: When this record was written (seconds since the epoch, the caller's clock).
    updated_at: float


@dataclass(frozen=True)
class LedgerStream:
    """One media stream of a call as the relay set it up."""

    #: The stream's position in the SDP (the module's medianum), from 0.
    medianum: int
    #: The relay port the relay answered with.
    port: int
    #: The payload types offered on the stream.
    codecs: tuple[int, ...]


@dataclass(frozen=True)
class LedgerEntry:
    """One call the relay service has set up: which node holds it and what it was given."""

    #: The SIP Call-ID; the key (a new offer for it replaces the entry).
    call_id: str
    #: The From tag of the offer.
    from_tag: str
    #: The To tag, once the answer is known.
    to_tag: str | None
    #: The relay set the node was chosen from; None for an explicit target.
    set_id: int | None
    #: The node's URL (its key in the node table).
    node_url: str
    #: The address the node advertises in SDP instead of its own, if configured.
    advertised: str | None
    #: The streams, in SDP order.
    streams: tuple[LedgerStream, ...]
    #: The notify tag sent with U, if any, as the relay reports it in notifications.
    notify_tag: str | None
    #: The DTMF tag sent, if any, as the relay reports it (before rtppctl percent-encoded it).
    dtmf_tag: str | None
    #: When the offer was recorded (seconds since the epoch, the caller's clock).
    created_at: float
    #: When the call was last used by a command; prune drops entries by this time.
    last_used_at: float


class StateStore:
    """One open state store. Open with `StateStore.open(path_or_url)`; use as a context manager."""

    def __init__(self, backend: _Backend, connection: Any) -> None:
        self._backend = backend
        self._connection: Any = connection
        #: The file, or the URL with its password masked: what messages name.
        self.where = backend.where

    # -- opening ---------------------------------------------------------------------------------

    @classmethod
    def open(cls, location: Path | str) -> StateStore:
        """Open (and, if new, create or migrate) the store at `location`, a file or a
        postgresql:// URL; ConfigError if it cannot be used."""
        backend: _Backend
        if isinstance(location, str) and location.startswith(("postgresql://", "postgres://")):
            backend = _Postgres(location)
        else:
            backend = _Sqlite(Path(location))
        store = cls(backend, backend.connect())
        try:
            store._attach()
        except BaseException:
            store.close()
            raise
        return store

    def _attach(self) -> None:
        """Check the store is rtppctl's (or empty), then make it ready; no write before the check."""
        if self._transaction(self._check, write=False) != SCHEMA_VERSION:
            self._backend.before_create(self._db, self._retrying)
            self._transaction(self._create, write=True)
        self._backend.tune(self._db, self._retrying)

    def _check(self, db: Any) -> int:
        """Raise if the store is not usable; its schema version (0: empty, to be created)."""
        # Tables first, version second: a store another process is creating right now shows its
        # tables and its version row in one commit, so a version read after the tables were seen
        # cannot miss it (PostgreSQL reads each statement's snapshot anew).
        names = self._backend.tables(db)
        version = self._backend.version(db)
        if (version == 0) == bool(names):
            # Half a store: another process's creation committed between the two reads (both
            # parts come in one commit). Read again: now both are visible.
            names = self._backend.tables(db)
            version = self._backend.version(db)
        if version > SCHEMA_VERSION:
            raise ConfigError(
                f"{self.where}: the state database is version {version}, newer than this rtppctl"
                f" understands ({SCHEMA_VERSION})",
                f"upgrade rtppctl, or {self._backend.hint}",
            )
        if version == 0 and not names:
            return 0
        needed = _NODE_TABLE in names and _SESSION_TABLE in names
        if version == 0 or not needed or (version >= 2 and not _TABLES <= set(names)):
            shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            raise ConfigError(
                f"{self.where}: {self._backend.kind}, but not rtppctl's state (it holds {shown or 'no tables'})",
                self._backend.hint,
            )
        return version

    def _create(self, db: Any) -> None:
        # Checked again under the write lock: another process may have created it meanwhile.
        version = self._check(db)
        if version == SCHEMA_VERSION:
            return
        if version == 0:
            for statement in _SCHEMA:
                db.execute(statement)
        else:
            for step in range(version, SCHEMA_VERSION):
                for statement in _MIGRATIONS[step]:
                    db.execute(statement)
        self._backend.set_version(db, SCHEMA_VERSION)

    # -- node health -----------------------------------------------------------------------------

    def load_node(self, set_id: int, url: str) -> NodeRecord | None:
        """The record of the node `url` in set `set_id`, or None if none was saved."""
        rows = self._read(f"SELECT {_NODE_COLUMNS} FROM {_NODE_TABLE} WHERE set_id = ? AND url = ?", (set_id, url))
        return self._node(rows[0]) if rows else None

    def save_node(self, record: NodeRecord) -> None:
        """Keep `record`, replacing the node's earlier one."""
        self._transaction(lambda db: self._write_node(db, record), write=True)

    def update_node(self, set_id: int, url: str, change: Callable[[NodeRecord | None], NodeRecord]) -> NodeRecord:
        """Read the node's record, `change` it and write the result, in one write transaction, so
        that two processes changing the same node never lose one of the changes; the record
        written is returned. `change` gets None when the node has no record yet."""

        def update(db: Any) -> NodeRecord:
            rows = db.execute(
                f"SELECT {_NODE_COLUMNS} FROM {_NODE_TABLE} WHERE set_id = ? AND url = ?", (set_id, url)
            ).fetchall()
            record = change(self._node(rows[0]) if rows else None)
            self._write_node(db, record)
            return record

        return self._transaction(update, write=True)

    def nodes(self) -> list[NodeRecord]:
        """Every saved node, by set and URL."""
        query = f"SELECT {_NODE_COLUMNS} FROM {_NODE_TABLE} ORDER BY set_id, url"
        return [self._node(row) for row in self._read(query)]

    def _write_node(self, db: Any, record: NodeRecord) -> None:
        capabilities = None if record.capabilities is None else json.dumps(list(record.capabilities))
        row = (record.set_id, record.url, record.health.state.value, record.health.recheck_at, capabilities,
               record.last_rtt_ms, record.updated_at)
        db.execute(f"DELETE FROM {_NODE_TABLE} WHERE set_id = ? AND url = ?", (record.set_id, record.url))
        db.execute(f"INSERT INTO {_NODE_TABLE} ({_NODE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", row)

    # -- session ledger --------------------------------------------------------------------------

    def record_session(self, entry: LedgerEntry, *, unused_before: float | None = None) -> None:
        """Keep `entry`; a new offer for the same Call-ID replaces the old entry whole. With
        `unused_before`, entries last used before that time are dropped in the same transaction
        (every offer keeps the ledger pruned without a second write)."""
        streams = [{"medianum": s.medianum, "port": s.port, "codecs": list(s.codecs)} for s in entry.streams]
        row = (
            entry.call_id,
            entry.from_tag,
            entry.to_tag,
            entry.set_id,
            entry.node_url,
            entry.advertised,
            json.dumps(streams),
            entry.notify_tag,
            entry.dtmf_tag,
            entry.created_at,
            entry.last_used_at,
        )

        def record(db: Any) -> None:
            db.execute(f"DELETE FROM {_SESSION_TABLE} WHERE call_id = ?", (entry.call_id,))
            db.execute(f"INSERT INTO {_SESSION_TABLE} ({_SESSION_COLUMNS}) VALUES ({', '.join('?' * 11)})", row)
            if unused_before is not None:
                db.execute(f"DELETE FROM {_SESSION_TABLE} WHERE last_used_at < ?", (unused_before,))

        self._transaction(record, write=True)

    def session(self, call_id: str) -> LedgerEntry | None:
        """The entry of `call_id`, or None."""
        rows = self._read(f"SELECT {_SESSION_COLUMNS} FROM {_SESSION_TABLE} WHERE call_id = ?", (call_id,))
        return self._entry(rows[0]) if rows else None

    def session_by_tag(self, tag: str) -> LedgerEntry | None:
        """The call whose notify or DTMF tag is `tag` (as the relay reports it), or None."""
        rows = self._read(f"SELECT {_SESSION_COLUMNS} FROM {_SESSION_TABLE} WHERE notify_tag = ? OR dtmf_tag = ? "
                          "ORDER BY last_used_at DESC", (tag, tag))
        return self._entry(rows[0]) if rows else None

    def touch(self, call_id: str, now: float) -> bool:
        """Mark the call used at `now`; False if there is no such entry.

        The time only moves forward: a slower process touching with an earlier clock reading must
        not make a live call look older than it is.
        """

        def touch(db: Any) -> int:
            cursor = db.execute(
                f"UPDATE {_SESSION_TABLE} SET last_used_at = CASE WHEN last_used_at < ? THEN ? ELSE last_used_at END"
                " WHERE call_id = ?",
                (now, now, call_id),
            )
            return cursor.rowcount

        return self._transaction(touch, write=True) > 0

    def sessions(self, node_url: str | None = None) -> list[LedgerEntry]:
        """Every entry, or those held by `node_url`, oldest offer first."""
        where, parameters = ("WHERE node_url = ? ", (node_url,)) if node_url is not None else ("", ())
        query = f"SELECT {_SESSION_COLUMNS} FROM {_SESSION_TABLE} {where}ORDER BY created_at, call_id"
        return [self._entry(row) for row in self._read(query, parameters)]

    def forget(self, call_id: str) -> bool:
        """Drop the entry of `call_id`; False if there was none."""

        def forget(db: Any) -> int:
            return db.execute(f"DELETE FROM {_SESSION_TABLE} WHERE call_id = ?", (call_id,)).rowcount

        return self._transaction(forget, write=True) > 0

    def prune(self, older_than: float, now: float) -> int:
        """Drop the entries unused since `now - older_than` (strictly before it); how many went."""
        cutoff = now - older_than

        def prune(db: Any) -> int:
            return db.execute(f"DELETE FROM {_SESSION_TABLE} WHERE last_used_at < ?", (cutoff,)).rowcount

        return self._transaction(prune, write=True)

    # -- the database's relays ---------------------------------------------------------------------

    def db_snapshot(self) -> DbSnapshot | None:
        """The relays last read from the `db_url` table, or None when none was ever read."""

        def read(db: Any) -> DbSnapshot | None:
            meta = db.execute(f"SELECT value FROM {_META_TABLE} WHERE name = ?", ("db_snapshot",)).fetchall()
            if not meta:
                return None
            rows = db.execute(
                f"SELECT set_id, spec, source_row FROM {_DB_NODE_TABLE} ORDER BY set_id, position").fetchall()
            with self._decoding("the snapshot of the database's relays"):
                info = json.loads(meta[0][0])
                return DbSnapshot(str(info["source"]), float(info["loaded_at"]),
                                  tuple(SnapshotNode(int(r[0]), str(r[1]), str(r[2])) for r in rows))

        return self._transaction(read, write=False)

    def replace_db_snapshot(self, snapshot: DbSnapshot) -> None:
        """Keep `snapshot` as the database's relays, replacing the last one whole."""

        def replace(db: Any) -> None:
            db.execute(f"DELETE FROM {_DB_NODE_TABLE}")
            positions: dict[int, int] = {}
            for node in snapshot.nodes:
                position = positions[node.set_id] = positions.get(node.set_id, -1) + 1
                db.execute(f"INSERT INTO {_DB_NODE_TABLE} (set_id, position, spec, source_row) VALUES (?, ?, ?, ?)",
                           (node.set_id, position, node.spec, node.source_row))
            db.execute(f"DELETE FROM {_META_TABLE} WHERE name = ?", ("db_snapshot",))
            db.execute(f"INSERT INTO {_META_TABLE} (name, value) VALUES (?, ?)",
                       ("db_snapshot", json.dumps({"source": snapshot.source, "loaded_at": snapshot.loaded_at})))

        self._transaction(replace, write=True)

    # -- closing ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the store; closing twice is harmless."""
        if self._connection is not None:
            connection, self._connection = self._connection, None
            with contextlib.suppress(Exception):
                connection.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    # -- rows --------------------------------------------------------------------------------------

    def _node(self, row: tuple[Any, ...]) -> NodeRecord:
        set_id, url, state, recheck_at, capabilities, last_rtt_ms, updated_at = row
        with self._decoding(f"node {url!r}"):
            return NodeRecord(
                set_id=int(set_id),
                url=url,
                health=Health(State(state), recheck_at),
                capabilities=None if capabilities is None else tuple(str(c) for c in json.loads(capabilities)),
                last_rtt_ms=last_rtt_ms,
                updated_at=updated_at,
            )

    def _entry(self, row: tuple[Any, ...]) -> LedgerEntry:
        call_id, from_tag, to_tag, set_id, node_url, advertised, streams, notify_tag, dtmf_tag, created, used = row
        with self._decoding(f"session {call_id!r}"):
            return LedgerEntry(
                call_id=call_id,
                from_tag=from_tag,
                to_tag=to_tag,
                set_id=set_id,
                node_url=node_url,
                advertised=advertised,
                streams=tuple(
                    LedgerStream(int(s["medianum"]), int(s["port"]), tuple(int(c) for c in s["codecs"]))
                    for s in json.loads(streams)
                ),
                notify_tag=notify_tag,
                dtmf_tag=dtmf_tag,
                created_at=created,
                last_used_at=used,
            )

    @contextlib.contextmanager
    def _decoding(self, what: str) -> Iterator[None]:
        # Only another program editing the file can make a row unreadable; say so, do not crash.
        try:
            yield
        except (ValueError, TypeError, KeyError) as exc:
            raise ConfigError(f"{self.where}: {what} cannot be read: {exc}", self._backend.hint) from None

    # -- transactions ------------------------------------------------------------------------------

    @property
    def _db(self) -> _Statements:
        if self._connection is None:
            raise ValueError(f"the state store {self.where} is closed")
        return _Statements(self._connection, self._backend)

    def _read(self, query: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self._transaction(lambda db: db.execute(query, parameters).fetchall(), write=False)

    def _transaction(self, work: Callable[[Any], _T], *, write: bool) -> _T:
        """Run `work` in one transaction; a write takes its lock (SQLite) or runs SERIALIZABLE
        (PostgreSQL) from the start, so a conflict shows at once and is retried whole."""

        def attempt() -> _T:
            db = self._db
            self._backend.begin(db, write)
            try:
                result = work(db)
                db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):
                    db.execute("ROLLBACK")
                raise
            return result

        return self._retrying(attempt)

    def _retrying(self, attempt: Callable[[], _T]) -> _T:
        """`attempt()`, again after a pause while the database says "conflict, try again" (for up
        to RETRY_SECONDS); database errors as ConfigError naming the store."""
        import random  # noqa: PLC0415

        backend = self._backend
        deadline = time.monotonic() + RETRY_SECONDS
        pause = 0.005
        while True:
            try:
                return attempt()
            except Exception as exc:
                if not backend.is_error(exc):
                    raise
                if not backend.retryable(exc):
                    raise self._failure(exc) from None
                if time.monotonic() >= deadline:
                    raise ConfigError(
                        f"{self.where}: the state database stayed busy with other processes' changes",
                        "another rtppctl held it too long; try again",
                    ) from None
                # Growing pauses with jitter, so the waiting processes do not all come back at once.
                time.sleep(pause * (0.5 + random.random()))
                pause = min(pause * 2, 0.2)

    def _failure(self, exc: Exception) -> ConfigError:
        from rtppctl.dburl import first_line  # noqa: PLC0415

        return ConfigError(f"{self.where}: the state database cannot be used: {first_line(exc)}", self._backend.hint)


class _Statements:
    """A connection whose `execute` takes the store's one SQL dialect (`?` placeholders)."""

    __slots__ = ("_connection", "_backend")

    def __init__(self, connection: Any, backend: _Backend) -> None:
        self._connection = connection
        self._backend = backend

    def execute(self, query: str, parameters: tuple[Any, ...] = ()) -> Any:
        return self._connection.execute(self._backend.dialect(query), parameters)


@dataclass(frozen=True)
class SnapshotNode:
    """One node spec of the `db_url` table, as read."""

    set_id: int
    #: The spec as written in the row ("udp:10.0.0.5:22222|1.2.3.4=2").
    spec: str
    #: Which row it came from, for messages ("id 7").
    source_row: str


@dataclass(frozen=True)
class DbSnapshot:
    """The relays read from the `db_url` table at one moment."""

    #: The table's URL (password masked) and name.
    source: str
    loaded_at: float
    nodes: tuple[SnapshotNode, ...]


class _Backend:
    """How one kind of database is opened and driven; the SQL is the store's own."""

    #: How messages call the database: "a SQLite database", "a PostgreSQL database".
    kind = ""
    #: What to do about a store that cannot be used.
    hint = _HINT_OTHER_FILE
    where = ""

    def connect(self) -> Any:
        raise NotImplementedError

    def dialect(self, query: str) -> str:
        return query

    def begin(self, db: _Statements, write: bool) -> None:
        raise NotImplementedError

    def version(self, db: _Statements) -> int:
        raise NotImplementedError

    def set_version(self, db: _Statements, version: int) -> None:
        raise NotImplementedError

    def tables(self, db: _Statements) -> list[str]:
        raise NotImplementedError

    def before_create(self, db: _Statements, retrying: Callable[[Callable[[], Any]], Any]) -> None:
        """Settings of a new store that live outside transactions."""

    def tune(self, db: _Statements, retrying: Callable[[Callable[[], Any]], Any]) -> None:
        """Per-connection settings."""

    def is_error(self, exc: Exception) -> bool:
        raise NotImplementedError

    def retryable(self, exc: Exception) -> bool:
        raise NotImplementedError


class _Sqlite(_Backend):
    kind = "a SQLite database"
    hint = _HINT_OTHER_FILE

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)

    def connect(self) -> Any:
        import sqlite3  # noqa: PLC0415  (databases are imported where used: fast start-up)

        _prepare_file(self.path)
        try:
            # isolation_level=None: the module starts no transactions of its own; we say BEGIN.
            return sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
        except sqlite3.Error as exc:
            raise ConfigError(f"{self.path}: cannot open the state database: {exc}") from None

    def begin(self, db: _Statements, write: bool) -> None:
        # IMMEDIATE takes the write lock at once: a deferred transaction that upgrades later gets
        # "locked" with no waiting.
        db.execute("BEGIN IMMEDIATE" if write else "BEGIN")

    def version(self, db: _Statements) -> int:
        return int(db.execute("PRAGMA user_version").fetchone()[0])

    def set_version(self, db: _Statements, version: int) -> None:
        db.execute(f"PRAGMA user_version = {int(version)}")

    def tables(self, db: _Statements) -> list[str]:
        # Every table counts: a SQLite file is rtppctl's alone.
        rows = db.execute("SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite!_%' ESCAPE '!'").fetchall()
        return sorted(row[0] for row in rows)

    def before_create(self, db: _Statements, retrying: Callable[[Callable[[], Any]], Any]) -> None:
        # WAL is a property of the file and survives; it needs no transaction around it. A
        # filesystem without shared memory keeps the old journal mode, which is still correct.
        retrying(lambda: db.execute("PRAGMA journal_mode=WAL").fetchone())

    def tune(self, db: _Statements, retrying: Callable[[Callable[[], Any]], Any]) -> None:
        # With WAL, NORMAL loses at most the last commits on power loss and never corrupts the
        # file; FULL would cost an fsync per command for a ledger that new calls rebuild.
        retrying(lambda: db.execute("PRAGMA synchronous=NORMAL").fetchall())

    def is_error(self, exc: Exception) -> bool:
        import sqlite3  # noqa: PLC0415

        return isinstance(exc, sqlite3.DatabaseError)

    def retryable(self, exc: Exception) -> bool:
        import sqlite3  # noqa: PLC0415

        return isinstance(exc, sqlite3.OperationalError) and _is_locked(exc)


class _Postgres(_Backend):
    kind = "a PostgreSQL database"
    hint = _HINT_OTHER_DB

    def __init__(self, url: str) -> None:
        from rtppctl.dburl import mask  # noqa: PLC0415

        self.url = url
        self.where = mask(url)

    def connect(self) -> Any:
        from rtppctl.dburl import first_line  # noqa: PLC0415

        psycopg = _psycopg(self.where)
        try:
            # autocommit: transactions are the store's own BEGIN ... COMMIT, as with SQLite.
            return psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
        except psycopg.Error as exc:
            raise ConfigError(f"{self.where}: cannot open the state database: {first_line(exc)}",
                              "check that the server runs and the URL, user and password are right") from None

    def dialect(self, query: str) -> str:
        # The store's SQL has no literal '?' or '%': only placeholders change.
        return query.replace("?", "%s")

    def begin(self, db: _Statements, write: bool) -> None:
        # SERIALIZABLE: two hosts reading and changing one node cannot both commit; the loser
        # is retried with the winner's row, so no update is lost.
        db.execute("BEGIN ISOLATION LEVEL SERIALIZABLE" if write else "BEGIN")

    def version(self, db: _Statements) -> int:
        if "rtppctl_schema" not in self._all_tables(db):
            return 0
        rows = db.execute("SELECT version FROM rtppctl_schema").fetchall()
        return int(rows[0][0]) if rows else 0

    def set_version(self, db: _Statements, version: int) -> None:
        db.execute("CREATE TABLE IF NOT EXISTS rtppctl_schema (version INTEGER NOT NULL)")
        db.execute("DELETE FROM rtppctl_schema")
        db.execute("INSERT INTO rtppctl_schema (version) VALUES (?)", (int(version),))

    def tables(self, db: _Statements) -> list[str]:
        # Only rtppctl's own tables count: the database may hold OpenSIPS's and others'.
        return sorted(name for name in self._all_tables(db) if name.startswith(_PREFIX) and name != "rtppctl_schema")

    def _all_tables(self, db: _Statements) -> list[str]:
        rows = db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()").fetchall()
        return [row[0] for row in rows]

    def is_error(self, exc: Exception) -> bool:
        return isinstance(exc, _psycopg(self.where).Error)

    def retryable(self, exc: Exception) -> bool:
        errors = _psycopg(self.where).errors
        # A lost serializable race, a deadlock, or two processes creating the schema at once.
        return isinstance(exc, (errors.SerializationFailure, errors.DeadlockDetected, errors.UniqueViolation,
                                errors.DuplicateTable, errors.DuplicateObject, errors.LockNotAvailable))


def _psycopg(where: str) -> Any:
    try:
        import psycopg  # noqa: PLC0415
    except ImportError:
        raise ConfigError(f"{where}: PostgreSQL needs the psycopg package",
                          "pip install 'rtppctl[pg]' (or: pip install 'psycopg[binary]')") from None
    return psycopg



def _prepare_file(path: Path) -> None:
    """Create the folder (0o700) and an empty file (0o600) when missing; refuse what is not a
    SQLite file before SQLite sees it. The ledger names calls and tags: private to the user."""
    folder = path.parent
    if not folder.exists():
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot create the folder {folder}: {exc.strerror or exc}") from None
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, not a state file", "give the path of a file with --state FILE")
    try:
        # O_CREAT without O_TRUNC: an existing file keeps every byte.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        with open(path, "rb") as handle:
            header = handle.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot open the state file: {exc.strerror or exc}") from None
    # An empty file is a new database; anything else must start as SQLite does.
    if header and header != _SQLITE_MAGIC:
        raise ConfigError(f"{path}: not a SQLite database, so not rtppctl's state", _HINT_OTHER_FILE)


__all__ = [
    "DEFAULT_LEDGER_TTL",
    "DbSnapshot",
    "SnapshotNode",
    "NO_STATE",
    "SCHEMA_VERSION",
    "STATE_ENV",
    "LedgerEntry",
    "LedgerStream",
    "NodeRecord",
    "StateStore",
    "default_state_path",
    "resolve_state_path",
]
