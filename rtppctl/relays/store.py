"""The relay service's state between runs: node health and the session ledger, in one SQLite file.

This module owns the state file (`--state FILE`, `RTPPCTL_STATE`, else `$XDG_STATE_HOME/rtppctl/
state.sqlite3`; "none" keeps no state), its schema and every SQL statement on it. The rules it
keeps:

- A file that is not rtppctl's is never changed: a non-SQLite file, a damaged database, another
  program's database, or one from a newer rtppctl is refused with a `ConfigError` (exit 5) naming
  the file, before the first write. The checks run on a connection that has written nothing yet.
- Many rtppctl processes may share the file at once: WAL journal (readers never wait for the
  writer), a busy timeout, one short `BEGIN IMMEDIATE` transaction per change, and a few retries
  when SQLite still answers "database is locked".
- One ledger entry per Call-ID: a new offer replaces the entry; entries unused for longer than a
  caller-chosen time are pruned. Every time is given by the caller; there is no clock in here.

The SQL is deliberately plain (TEXT, REAL, INTEGER, DELETE + INSERT instead of upserts, JSON as
text) so the same interface can sit on PostgreSQL later with only the placeholders changed.
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
    import sqlite3
    from types import TracebackType

#: `PRAGMA user_version` of the files this rtppctl writes. A newer file is refused, never migrated
#: down; an older one will be migrated up when there is one.
SCHEMA_VERSION = 1

#: How long a ledger entry lives unused (seconds) unless configured otherwise (`ledger_ttl`).
DEFAULT_LEDGER_TTL = limits.DEFAULT_LEDGER_TTL

#: The environment variable naming the state file, below `--state` and above the default.
STATE_ENV = "RTPPCTL_STATE"

#: The value of `--state` or `RTPPCTL_STATE` that keeps no state at all.
NO_STATE = "none"

#: Seconds SQLite waits for another process's lock before answering "database is locked".
BUSY_TIMEOUT = 5.0

#: Attempts of one transaction. SQLite answers "locked" without waiting in a few cases the busy
#: timeout does not cover (WAL recovery by another process, a journal mode switch), so a short,
#: growing pause and another try are cheaper than a failed command.
ATTEMPTS = 5

_SQLITE_MAGIC = b"SQLite format 3\x00"

_NODE_TABLE = "rtppctl_nodes"
_SESSION_TABLE = "rtppctl_sessions"
_TABLES = frozenset({_NODE_TABLE, _SESSION_TABLE})

# Table names carry a prefix so that the PostgreSQL store can share a database with others.
_SCHEMA = (
    # A node's health is per set, as in the module: one relay in two sets is two nodes.
    f"""CREATE TABLE {_NODE_TABLE} (
        set_id INTEGER NOT NULL,
        url TEXT NOT NULL,
        state TEXT NOT NULL,
        recheck_at REAL,
        capabilities TEXT,
        last_rtt_ms REAL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (set_id, url)
    )""",
    f"""CREATE TABLE {_SESSION_TABLE} (
        call_id TEXT PRIMARY KEY,
        from_tag TEXT NOT NULL,
        to_tag TEXT,
        set_id INTEGER,
        node_url TEXT NOT NULL,
        advertised TEXT,
        streams TEXT NOT NULL,
        notify_tag TEXT,
        dtmf_tag TEXT,
        created_at REAL NOT NULL,
        last_used_at REAL NOT NULL
    )""",
    # prune scans by last use; sessions(node_url) lists one node's calls in order.
    f"CREATE INDEX rtppctl_sessions_last_used ON {_SESSION_TABLE} (last_used_at)",
    f"CREATE INDEX rtppctl_sessions_node ON {_SESSION_TABLE} (node_url, created_at)",
)

_SESSION_COLUMNS = (
    "call_id, from_tag, to_tag, set_id, node_url, advertised, streams, notify_tag, dtmf_tag, created_at, last_used_at"
)
_NODE_COLUMNS = "set_id, url, state, recheck_at, capabilities, last_rtt_ms, updated_at"

_HINT_OTHER_FILE = f"move the file aside, or give another one with --state FILE (--state {NO_STATE} keeps no state)"

_T = TypeVar("_T")


def default_state_path(env: Mapping[str, str] | None = None) -> Path:
    """`$XDG_STATE_HOME/rtppctl/state.sqlite3` (`~/.local/state/...` when unset)."""
    return user_dir("state", env) / "state.sqlite3"


def resolve_state_path(option: str | None, env: Mapping[str, str] | None = None) -> Path | None:
    """The state file to use: `--state`, else `RTPPCTL_STATE`, else the default; None for "none".

    An empty value counts as unset, as is the custom for environment variables. `~` is expanded
    because `--state=~/x` and a quoted variable reach rtppctl unexpanded.
    """
    environ = os.environ if env is None else env
    for value in (option, environ.get(STATE_ENV)):
        if value:
            return None if value == NO_STATE else Path(value).expanduser()
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
    """One open state file. Open with `StateStore.open(path)`; use as a context manager."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._connection: sqlite3.Connection | None = connection
        self.path = path

    # -- opening ---------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path | str) -> StateStore:
        """Open (and, if new, create) the state file at `path`; ConfigError if it cannot be used."""
        import sqlite3  # noqa: PLC0415  (databases are imported where used: fast start-up)

        path = Path(path)
        _prepare_file(path)
        try:
            # isolation_level=None: the module starts no transactions of its own; we say BEGIN.
            connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None)
        except sqlite3.Error as exc:
            raise ConfigError(f"{path}: cannot open the state database: {exc}") from None
        store = cls(connection, path)
        try:
            store._attach()
        except BaseException:
            store.close()
            raise
        return store

    def _attach(self) -> None:
        """Check the file is rtppctl's (or empty), then make it ready; no write before the check."""
        if self._transaction(self._check, write=False):
            # WAL is a property of the file and survives; it needs no transaction around it. A
            # filesystem without shared memory keeps the old journal mode, which is still correct.
            self._retrying(lambda: self._db.execute("PRAGMA journal_mode=WAL").fetchone())
            self._transaction(self._create, write=True)
        # With WAL, NORMAL loses at most the last commits on power loss and never corrupts the
        # file; FULL would cost an fsync per command for a ledger that new calls rebuild.
        self._retrying(lambda: self._db.execute("PRAGMA synchronous=NORMAL").fetchall())

    def _inspect(self, db: sqlite3.Connection) -> tuple[int, list[str]]:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        names = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite!_%' ESCAPE '!'")]
        return version, sorted(names)

    def _check(self, db: sqlite3.Connection) -> bool:
        """Raise if the file is not usable; True when the schema must still be created."""
        version, names = self._inspect(db)
        if version > SCHEMA_VERSION:
            raise ConfigError(
                f"{self.path}: the state database is version {version}, newer than this rtppctl"
                f" understands ({SCHEMA_VERSION})",
                f"upgrade rtppctl, or {_HINT_OTHER_FILE}",
            )
        if version == 0 and not names:
            return True
        if version == 0 or not _TABLES <= set(names):
            shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            raise ConfigError(
                f"{self.path}: a SQLite database, but not rtppctl's state (it holds {shown or 'no tables'})",
                _HINT_OTHER_FILE,
            )
        return False

    def _create(self, db: sqlite3.Connection) -> None:
        # Checked again under the write lock: another process may have created it meanwhile.
        if not self._check(db):
            return
        for statement in _SCHEMA:
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

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

        def update(db: sqlite3.Connection) -> NodeRecord:
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

    def _write_node(self, db: sqlite3.Connection, record: NodeRecord) -> None:
        capabilities = None if record.capabilities is None else json.dumps(list(record.capabilities))
        row = (record.set_id, record.url, record.health.state.value, record.health.recheck_at, capabilities,
               record.last_rtt_ms, record.updated_at)
        db.execute(f"DELETE FROM {_NODE_TABLE} WHERE set_id = ? AND url = ?", (record.set_id, record.url))
        db.execute(f"INSERT INTO {_NODE_TABLE} ({_NODE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", row)

    # -- session ledger --------------------------------------------------------------------------

    def record_session(self, entry: LedgerEntry) -> None:
        """Keep `entry`; a new offer for the same Call-ID replaces the old entry whole."""
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

        def record(db: sqlite3.Connection) -> None:
            db.execute(f"DELETE FROM {_SESSION_TABLE} WHERE call_id = ?", (entry.call_id,))
            db.execute(f"INSERT INTO {_SESSION_TABLE} ({_SESSION_COLUMNS}) VALUES ({', '.join('?' * 11)})", row)

        self._transaction(record, write=True)

    def session(self, call_id: str) -> LedgerEntry | None:
        """The entry of `call_id`, or None."""
        rows = self._read(f"SELECT {_SESSION_COLUMNS} FROM {_SESSION_TABLE} WHERE call_id = ?", (call_id,))
        return self._entry(rows[0]) if rows else None

    def touch(self, call_id: str, now: float) -> bool:
        """Mark the call used at `now`; False if there is no such entry.

        The time only moves forward: a slower process touching with an earlier clock reading must
        not make a live call look older than it is.
        """

        def touch(db: sqlite3.Connection) -> int:
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

        def forget(db: sqlite3.Connection) -> int:
            return db.execute(f"DELETE FROM {_SESSION_TABLE} WHERE call_id = ?", (call_id,)).rowcount

        return self._transaction(forget, write=True) > 0

    def prune(self, older_than: float, now: float) -> int:
        """Drop the entries unused since `now - older_than` (strictly before it); how many went."""
        cutoff = now - older_than

        def prune(db: sqlite3.Connection) -> int:
            return db.execute(f"DELETE FROM {_SESSION_TABLE} WHERE last_used_at < ?", (cutoff,)).rowcount

        return self._transaction(prune, write=True)

    # -- closing ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the file; closing twice is harmless."""
        if self._connection is not None:
            connection, self._connection = self._connection, None
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
            raise ConfigError(f"{self.path}: {what} cannot be read: {exc}", _HINT_OTHER_FILE) from None

    # -- transactions ------------------------------------------------------------------------------

    @property
    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ValueError(f"the state store {self.path} is closed")
        return self._connection

    def _read(self, query: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self._transaction(lambda db: db.execute(query, parameters).fetchall(), write=False)

    def _transaction(self, work: Callable[[sqlite3.Connection], _T], *, write: bool) -> _T:
        """Run `work` in one transaction; `BEGIN IMMEDIATE` for a write, so the write lock is taken
        at the start (a deferred transaction that upgrades later gets "locked" with no waiting)."""

        def attempt() -> _T:
            db = self._db
            db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                result = work(db)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    with contextlib.suppress(Exception):
                        db.execute("ROLLBACK")
                raise
            return result

        return self._retrying(attempt)

    def _retrying(self, attempt: Callable[[], _T]) -> _T:
        """`attempt()`, again after a pause while SQLite says locked; SQLite errors as ConfigError."""
        import sqlite3  # noqa: PLC0415

        for number in range(1, ATTEMPTS + 1):
            try:
                return attempt()
            except sqlite3.OperationalError as exc:
                if not _is_locked(exc):
                    raise self._failure(exc) from None
                if number == ATTEMPTS:
                    raise ConfigError(
                        f"{self.path}: the state database stayed locked by another process",
                        "another rtppctl held it too long; try again",
                    ) from None
                # Growing pauses, spread by the process id so the waiting processes do not all
                # come back at the same moment.
                time.sleep(0.02 * 2**number + (os.getpid() % 7) / 1000)
            except sqlite3.DatabaseError as exc:
                raise self._failure(exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _failure(self, exc: Exception) -> ConfigError:
        return ConfigError(f"{self.path}: the state database cannot be used: {exc}", _HINT_OTHER_FILE)


def _is_locked(exc: Exception) -> bool:
    # SQLITE_BUSY (5) and SQLITE_LOCKED (6), primary codes; the text as a fallback.
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (5, 6)
    return "locked" in str(exc) or "busy" in str(exc)


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
