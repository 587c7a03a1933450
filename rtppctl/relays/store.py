"""The relay service's state between runs: node health, the session ledger and the snapshot of
the database's relays, in one SQLite file or one PostgreSQL database.

This module owns the state store (where it is, `--state FILE|URL` and the rest, is
`relays/location.py`'s), its schema and every SQL statement on it. Both backends run the same statements through the same code: connecting, the
transaction core and its time budget are `rtppctl.db`'s, shared with the relay table's reader;
what this module adds per backend (`_Schema`) is where the schema version is kept, which tables
count as rtppctl's and the file's own settings. The rules it keeps:

- What is not rtppctl's is never changed: a non-SQLite file, a damaged database, another
  program's SQLite database, or a store from a newer rtppctl is refused with a `ConfigError`
  (exit 5) naming the file or the URL (password masked), before the first write. On PostgreSQL
  only the tables named `rtppctl_*` are rtppctl's: the database may be shared with OpenSIPS. A
  FIFO, socket or device named as the state file is refused before anything opens it in a way
  that could wait.
- Older schemas are migrated forward in one transaction; newer ones are refused.
- Many rtppctl processes (on many hosts, with PostgreSQL) may share the store: one short
  transaction per change; SQLite takes the write lock at BEGIN (WAL, busy timeout), PostgreSQL
  runs writes SERIALIZABLE; a conflict is retried, so no update is lost and no row doubled.
- No operation waits for ever: each one (a transaction with all its retries) ends within
  `db.RETRY_SECONDS`, or fails with a `ConfigError` naming the cause (a lock another process
  held, a server that stopped answering, other writers that kept winning). SQLite waits
  `db.BUSY_TIMEOUT` per try, never past the budget. PostgreSQL gets, per transaction, a
  `statement_timeout` and a `lock_timeout` inside the budget and an
  `idle_in_transaction_session_timeout` (so a process of ours that stops in the middle of a
  transaction frees its locks), TCP keepalives, a connect timeout, and a client-side deadline
  that cuts the connection when the server does not answer (all `rtppctl.db`).
- Every ledger change is one transaction that says what it expects to find, and changes nothing
  (`LedgerChanged`) when another process changed the call meanwhile: an offer replaces the entry
  it read (or writes one where it read none), an answer adds its To tag to the entry of the node
  and From tag it read, unforce removes the entry of the node it sent `D` to. A removed call is
  never brought back, and an older write never lands over a newer one.
- One ledger entry per Call-ID; a notify tag belongs to one call at most (a unique index), and
  the write that records a call's tags refuses tags another call holds unless told to take them.
  Entries unused for longer than a caller-chosen time are pruned by the writes that say so (an
  offer's, an expiry's). Every time kept is given by the caller; the store reads no clock.
- The snapshot of the `db_url` table is kept whole (`sources.DbSnapshot`, the table reader's
  value, imported where it is read back: the reader never imports the store).

The SQL is deliberately plain (TEXT, DOUBLE PRECISION, BIGINT, DELETE + INSERT instead of upserts,
JSON as text) so that both databases read it alike.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rtppctl.relays.location import NO_STATE, STATE_ENV, default_state_path, resolve_state_path
from rtppctl.proto import limits
from rtppctl.proto.errors import ConfigError
from rtppctl.relays.health import Health, NodeInfo, State

if TYPE_CHECKING:
    from types import TracebackType

    from rtppctl.db import Database, Statements
    from rtppctl.dburl import DbUrl
    from rtppctl.sources import DbSnapshot

#: The schema version this rtppctl writes (SQLite: `PRAGMA user_version`; PostgreSQL: the
#: `rtppctl_schema` table). A newer store is refused, never migrated down; an older one is migrated up.
SCHEMA_VERSION = 3

#: How long a ledger entry lives unused (seconds) unless configured otherwise (`ledger_ttl`).
DEFAULT_LEDGER_TTL = limits.DEFAULT_LEDGER_TTL



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

# Version 3 made a notify tag belong to one call at most. Tags from older versions (derived from
# 4,096 values) may repeat: the call that used its tag last keeps it, as the ledger's lookup by tag
# already chose; the others lose a tag that could not be told apart anyway.
_V3_NOTIFY_TAGS = (
    f"""UPDATE {_SESSION_TABLE} SET notify_tag = NULL
        WHERE notify_tag IS NOT NULL AND EXISTS (
            SELECT 1 FROM {_SESSION_TABLE} AS newer
            WHERE newer.notify_tag = {_SESSION_TABLE}.notify_tag
              AND (newer.last_used_at > {_SESSION_TABLE}.last_used_at
                   OR (newer.last_used_at = {_SESSION_TABLE}.last_used_at
                       AND newer.call_id > {_SESSION_TABLE}.call_id)))""",
    f"CREATE UNIQUE INDEX rtppctl_sessions_notify_tag ON {_SESSION_TABLE} (notify_tag)",
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
    _V3_NOTIFY_TAGS[1],
)

#: Statements taking a store from version N to N + 1.
_MIGRATIONS: dict[int, tuple[str, ...]] = {1: _V2_TABLES, 2: _V3_NOTIFY_TAGS}

_SESSION_COLUMNS = (
    "call_id, from_tag, to_tag, set_id, node_url, advertised, streams, notify_tag, dtmf_tag, created_at, last_used_at"
)
_NODE_COLUMNS = "set_id, url, state, recheck_at, capabilities, last_rtt_ms, updated_at"

_HINT_OTHER_FILE = f"move the file aside, or give another one with --state FILE (--state {NO_STATE} keeps no state)"
_HINT_OTHER_DB = f"give another database with --state URL or state_url (--state {NO_STATE} keeps no state)"

_T = TypeVar("_T")


def state_database_url(value: str, what: str = "the state store") -> DbUrl:
    """`value` read as the state store's URL; refused (ConfigError naming `what`) when the store
    cannot be kept in its database. The one rule of which databases hold the state: the config's
    `state_url` check asks it too."""
    from rtppctl.dburl import parse_db_url  # noqa: PLC0415

    url = parse_db_url(value, what)
    if url.backend not in _SCHEMAS:
        raise ConfigError(f"the state store cannot be kept in {url.backend}: {url.shown}",
                          "use a file, or postgresql://user:password@host/dbname")
    return url


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


class LedgerChanged(ConfigError):
    """A ledger write found the call (or a tag) not as the caller expected: another process
    changed it meanwhile, and nothing was written."""

    def __init__(self, message: str, hint: str | None = None, *, current: LedgerEntry | None = None,
                 holder: str | None = None) -> None:
        super().__init__(message, hint)
        #: The call's entry as the write found it (None: there was none).
        self.current = current
        #: The Call-ID of the call holding a tag the write wanted, when that was the change.
        self.holder = holder


#: `write_entry(replacing=...)` left out: replace whatever the ledger holds.
_ANY: Any = object()


def _same_call(found: LedgerEntry | None, expected: LedgerEntry | None, written: LedgerEntry, *,
               strict: bool) -> bool:
    """Whether a write of `written` may replace `found`, having read `expected` before.

    The same entry as read (same node, set, From tag and first offer; its last use may have
    moved), or no entry where none was read. Unless `strict`, an entry naming the written node
    and From tag is fine too: another offer of the same call on the same relay, whose session is
    this one.
    """
    if found is None:
        return expected is None
    if not strict and (found.node_url, found.from_tag) == (written.node_url, written.from_tag):
        return True
    return expected is not None and (found.node_url, found.set_id, found.from_tag, found.created_at) == (
        expected.node_url, expected.set_id, expected.from_tag, expected.created_at)


class StateStore:
    """One open state store. Open with `StateStore.open(path_or_url)`; use as a context manager."""

    def __init__(self, database: Database, schema: _Schema) -> None:
        self._database = database
        self._schema = schema
        #: The file, or the URL with its password masked: what messages name.
        self.where = database.where

    # -- opening ---------------------------------------------------------------------------------

    @classmethod
    def open(cls, location: Path | str) -> StateStore:
        """Open (and, if new, create or migrate) the store at `location`, a file or a database
        URL (sqlite:// or postgresql://); ConfigError if it cannot be used."""
        from rtppctl.db import Database, Sqlite, Wording, backend_for  # noqa: PLC0415 - sqlite3 when used
        from rtppctl.dburl import is_db_url  # noqa: PLC0415

        if isinstance(location, str) and is_db_url(location):
            url = state_database_url(location)
            backend = backend_for(url, prepare=_prepare_file)
        else:
            backend = Sqlite(Path(location), prepare=_prepare_file)
        schema = _SCHEMAS[backend.name]
        says = Wording("the state database", "the state file", "rtppctl's tables",
                       way_out=f"--state {NO_STATE} runs without the ledger", unusable=schema.hint)
        store = cls(Database.open(backend, says), schema)
        try:
            store._attach()
        except BaseException:
            store.close()
            raise
        return store

    def _attach(self) -> None:
        """Check the store is rtppctl's (or empty), then make it ready; no write before the check."""
        if self._transaction(self._check, write=False) != SCHEMA_VERSION:
            self._schema.before_create(self._database)
            self._transaction(self._create, write=True)
        self._schema.tune(self._database)

    def _check(self, db: Any) -> int:
        """Raise if the store is not usable; its schema version (0: empty, to be created)."""
        # Tables first, version second: a store another process is creating right now shows its
        # tables and its version row in one commit, so a version read after the tables were seen
        # cannot miss it (PostgreSQL reads each statement's snapshot anew).
        names = self._schema.tables(db)
        version = self._schema.version(db)
        if (version == 0) == bool(names):
            # Half a store: another process's creation committed between the two reads (both
            # parts come in one commit). Read again: now both are visible.
            names = self._schema.tables(db)
            version = self._schema.version(db)
        if version > SCHEMA_VERSION:
            raise ConfigError(
                f"{self.where}: the state database is version {version}, newer than this rtppctl"
                f" understands ({SCHEMA_VERSION})",
                f"upgrade rtppctl, or {self._schema.hint}",
            )
        if version == 0 and not names:
            return 0
        needed = _NODE_TABLE in names and _SESSION_TABLE in names
        if version == 0 or not needed or (version >= 2 and not _TABLES <= set(names)):
            shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            raise ConfigError(
                f"{self.where}: {self._schema.kind}, but not rtppctl's state (it holds {shown or 'no tables'})",
                self._schema.hint,
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
        self._schema.set_version(db, SCHEMA_VERSION)

    # -- node health -----------------------------------------------------------------------------

    def update_node(self, set_id: int, url: str, change: Callable[[NodeInfo | None], NodeInfo]) -> NodeInfo:
        """Read the node's record, `change` it and write the result, in one write transaction, so
        that two processes changing the same node never lose one of the changes; the record
        written is returned. `change` gets None when the node has no record yet."""

        def update(db: Any) -> NodeInfo:
            rows = db.execute(
                f"SELECT {_NODE_COLUMNS} FROM {_NODE_TABLE} WHERE set_id = ? AND url = ?", (set_id, url)
            ).fetchall()
            record = change(self._node(rows[0]) if rows else None)
            self._write_node(db, record)
            return record

        return self._transaction(update, write=True)

    def nodes(self) -> list[NodeInfo]:
        """Every saved node, by set and URL."""
        query = f"SELECT {_NODE_COLUMNS} FROM {_NODE_TABLE} ORDER BY set_id, url"
        return [self._node(row) for row in self._read(query)]

    def _write_node(self, db: Any, record: NodeInfo) -> None:
        capabilities = None if record.capabilities is None else json.dumps(list(record.capabilities))
        row = (record.set_id, record.url, record.health.state.value, record.health.recheck_at, capabilities,
               record.last_rtt_ms, record.updated_at)
        db.execute(f"DELETE FROM {_NODE_TABLE} WHERE set_id = ? AND url = ?", (record.set_id, record.url))
        db.execute(f"INSERT INTO {_NODE_TABLE} ({_NODE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", row)

    # -- session ledger --------------------------------------------------------------------------

    def write_entry(self, entry: LedgerEntry, *, replacing: LedgerEntry | None = _ANY, strict: bool = False,
                    take_tags: bool = False, unused_before: float | None = None) -> None:
        """Keep `entry`; a new offer for the same Call-ID replaces the old entry whole, in one
        transaction.

        `replacing` states what the write expects to find: the entry the caller read before it
        asked the relay (None: it read none). When the call's entry is no longer that one (see
        `_same_call`; `strict` for a write that is not an offer's), nothing is written and
        LedgerChanged says what is there now; left out, whatever is there is replaced. A notify
        or DTMF tag of `entry` that another call holds is refused the same way, unless
        `take_tags`: then that call loses it (the user gave both calls one dialog id). With `unused_before`, entries last used before that time are
        dropped first, in the same transaction (every offer keeps the ledger pruned without a
        second write, and an expired call holds no tag).
        """
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
            if unused_before is not None:
                db.execute(f"DELETE FROM {_SESSION_TABLE} WHERE last_used_at < ? AND call_id <> ?",
                           (unused_before, entry.call_id))
            if replacing is not _ANY:
                found = self._session_in(db, entry.call_id)
                if not _same_call(found, replacing, entry, strict=strict):
                    raise self._changed(entry.call_id, found)
            for column, tag in (("notify_tag", entry.notify_tag), ("dtmf_tag", entry.dtmf_tag)):
                if tag is None:
                    continue
                if take_tags:
                    db.execute(f"UPDATE {_SESSION_TABLE} SET {column} = NULL WHERE {column} = ? AND call_id <> ?",
                               (tag, entry.call_id))
                    continue
                holders = db.execute(f"SELECT call_id FROM {_SESSION_TABLE} WHERE {column} = ? AND call_id <> ?",
                                     (tag, entry.call_id)).fetchall()
                if holders:
                    raise LedgerChanged(
                        f"{self.where}: the tag {tag!r} of call {entry.call_id!r} belongs to call {holders[0][0]!r}"
                        " in the ledger",
                        "another rtppctl recorded that call meanwhile; run the command again (it picks another tag)",
                        current=self._session_in(db, entry.call_id), holder=holders[0][0])
            db.execute(f"DELETE FROM {_SESSION_TABLE} WHERE call_id = ?", (entry.call_id,))
            db.execute(f"INSERT INTO {_SESSION_TABLE} ({_SESSION_COLUMNS}) VALUES ({', '.join('?' * 11)})", row)

        self._transaction(record, write=True)

    def add_to_tag(self, call_id: str, *, node_url: str, from_tag: str, to_tag: str | None,
                   now: float) -> LedgerEntry | None:
        """An answer's change, in one transaction: the entry of `call_id` held by `node_url` and
        created by the offer with `from_tag` gets `to_tag` (unless it has one) and is marked used
        at `now` (never earlier). None, and nothing written, when there is no such entry any more:
        the call was removed or moved meanwhile, and an answer must not bring it back."""

        def add(db: Any) -> LedgerEntry | None:
            changed = db.execute(
                f"UPDATE {_SESSION_TABLE} SET to_tag = COALESCE(to_tag, ?),"
                " last_used_at = CASE WHEN last_used_at < ? THEN ? ELSE last_used_at END"
                " WHERE call_id = ? AND node_url = ? AND from_tag = ?",
                (to_tag or None, now, now, call_id, node_url, from_tag),
            ).rowcount
            return self._session_in(db, call_id) if changed else None

        return self._transaction(add, write=True)

    def _session_in(self, db: Any, call_id: str) -> LedgerEntry | None:
        rows = db.execute(f"SELECT {_SESSION_COLUMNS} FROM {_SESSION_TABLE} WHERE call_id = ?", (call_id,)).fetchall()
        return self._entry(rows[0]) if rows else None

    def _changed(self, call_id: str, found: LedgerEntry | None) -> LedgerChanged:
        what = "was removed (the call was ended or pruned)" if found is None else f"now names {found.node_url}"
        return LedgerChanged(
            f"{self.where}: the ledger's entry for call {call_id!r} changed while this command ran: it {what}",
            "another rtppctl changed the call at the same time; look at it with rtppctl sessions, then run the "
            "command again if it is still wanted",
            current=found,
        )

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

    def forget(self, call_id: str, *, node_url: str | None = None, unused_before: float | None = None) -> bool:
        """Drop the entry of `call_id`; False if there was none. With `node_url`, only while the
        entry names that node (the one a `D` went to: a call another command moved meanwhile
        keeps its entry); with `unused_before`, only while it was last used before that time."""
        where, parameters = "call_id = ?", [call_id]
        if node_url is not None:
            where += " AND node_url = ?"
            parameters.append(node_url)
        if unused_before is not None:
            where += " AND last_used_at < ?"
            parameters.append(unused_before)

        def forget(db: Any) -> int:
            return db.execute(f"DELETE FROM {_SESSION_TABLE} WHERE {where}", tuple(parameters)).rowcount

        return self._transaction(forget, write=True) > 0

    # -- the database's relays ---------------------------------------------------------------------

    def db_snapshot(self) -> DbSnapshot | None:
        """The relays last read from the `db_url` table, or None when none was ever read."""
        from rtppctl.sources import DbSnapshot, SnapshotNode  # noqa: PLC0415 - the reader's value

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
        self._database.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    # -- rows --------------------------------------------------------------------------------------

    def _node(self, row: tuple[Any, ...]) -> NodeInfo:
        set_id, url, state, recheck_at, capabilities, last_rtt_ms, updated_at = row
        with self._decoding(f"node {url!r}"):
            return NodeInfo(
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
            from rtppctl.proto.text import clip  # noqa: PLC0415

            raise ConfigError(f"{self.where}: {what} cannot be read: {clip(str(exc))}", self._schema.hint) from None

    # -- transactions ------------------------------------------------------------------------------

    def _read(self, query: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self._transaction(lambda db: db.execute(query, parameters).fetchall(), write=False)

    def _transaction(self, work: Callable[[Statements], _T], *, write: bool) -> _T:
        """`work` in one transaction of the shared core (`db.Database.transaction`): retried
        while the database is busy, within the budget, failures named."""
        return self._database.transaction(work, write=write)


class _Schema:
    """What the store keeps per kind of database beside the shared SQL: where the schema version
    lives, which tables are rtppctl's, and the database's own settings."""

    #: How messages call the database: "a SQLite database", "a PostgreSQL database".
    kind = ""
    #: What to do about a store that cannot be used.
    hint = _HINT_OTHER_FILE

    def version(self, db: Statements) -> int:
        raise NotImplementedError

    def set_version(self, db: Statements, version: int) -> None:
        raise NotImplementedError

    def tables(self, db: Statements) -> list[str]:
        raise NotImplementedError

    def before_create(self, database: Database) -> None:
        """Settings of a new store that live outside transactions."""

    def tune(self, database: Database) -> None:
        """Per-connection settings."""


class _SqliteSchema(_Schema):
    kind = "a SQLite database"
    hint = _HINT_OTHER_FILE

    def version(self, db: Statements) -> int:
        return int(db.execute("PRAGMA user_version").fetchone()[0])

    def set_version(self, db: Statements, version: int) -> None:
        db.execute(f"PRAGMA user_version = {int(version)}")

    def tables(self, db: Statements) -> list[str]:
        # Every table counts: a SQLite file is rtppctl's alone.
        rows = db.execute("SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite!_%' ESCAPE '!'").fetchall()
        return sorted(row[0] for row in rows)

    def before_create(self, database: Database) -> None:
        # WAL is a property of the file and survives; it needs no transaction around it. A
        # filesystem without shared memory keeps the old journal mode, which is still correct.
        database.outside("PRAGMA journal_mode=WAL")

    def tune(self, database: Database) -> None:
        # With WAL, NORMAL loses at most the last commits on power loss and never corrupts the
        # file; FULL would cost an fsync per command for a ledger that new calls rebuild.
        database.outside("PRAGMA synchronous=NORMAL")


class _PostgresSchema(_Schema):
    kind = "a PostgreSQL database"
    hint = _HINT_OTHER_DB

    def version(self, db: Statements) -> int:
        if "rtppctl_schema" not in self._all_tables(db):
            return 0
        rows = db.execute("SELECT version FROM rtppctl_schema").fetchall()
        return int(rows[0][0]) if rows else 0

    def set_version(self, db: Statements, version: int) -> None:
        db.execute("CREATE TABLE IF NOT EXISTS rtppctl_schema (version INTEGER NOT NULL)")
        db.execute("DELETE FROM rtppctl_schema")
        db.execute("INSERT INTO rtppctl_schema (version) VALUES (?)", (int(version),))

    def tables(self, db: Statements) -> list[str]:
        # Only rtppctl's own tables count: the database may hold OpenSIPS's and others'.
        return sorted(name for name in self._all_tables(db) if name.startswith(_PREFIX) and name != "rtppctl_schema")

    def _all_tables(self, db: Statements) -> list[str]:
        rows = db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()").fetchall()
        return [row[0] for row in rows]


#: The databases a state store can be kept in, by `DbUrl.backend` (MySQL holds only the table).
_SCHEMAS: dict[str, _Schema] = {"sqlite": _SqliteSchema(), "postgresql": _PostgresSchema()}


def _prepare_file(path: Path) -> None:
    """Create the folder (0o700) and an empty file (0o600) when missing; refuse what is not a
    SQLite file before SQLite sees it. The ledger names calls and tags: private to the user.

    A FIFO, socket or device is refused before anything opens it in a way that could wait: a
    FIFO opened for reading waits for a writer, and SQLite would then wait in its first read. The
    path (and SQLite's companions beside it) is judged first; the file is then opened without
    blocking and judged again by what was opened, so nothing swapped in between gets through.
    """
    from rtppctl.files import special_kind  # noqa: PLC0415

    folder = path.parent
    if not folder.exists():
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot create the folder {folder}: {exc.strerror or exc}") from None
    for each in (path, *(path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal"))):
        try:
            mode = os.stat(each).st_mode
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise ConfigError(f"{each}: cannot open the state file: {exc.strerror or exc}") from None
        _refuse_special(each, mode, special_kind)
    try:
        # O_CREAT without O_TRUNC: an existing file keeps every byte. O_NONBLOCK: a FIFO swapped
        # in since the check opens at once instead of waiting (and is refused below).
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0), 0o600)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # what open() answers for a unix socket
            raise ConfigError(f"{path}: is a socket, not a state file", _HINT_SPECIAL) from None
        if exc.errno == errno.EISDIR:
            _refuse_special(path, stat.S_IFDIR, special_kind)
        raise ConfigError(f"{path}: cannot open the state file: {exc.strerror or exc}") from None
    try:
        _refuse_special(path, os.fstat(fd).st_mode, special_kind)
        header = os.read(fd, len(_SQLITE_MAGIC))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot open the state file: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    # An empty file is a new database; anything else must start as SQLite does.
    if header and header != _SQLITE_MAGIC:
        raise ConfigError(f"{path}: not a SQLite database, so not rtppctl's state", _HINT_OTHER_FILE)


_HINT_SPECIAL = f"give the path of a regular file with --state FILE (--state {NO_STATE} keeps no state)"


def _refuse_special(path: Path, mode: int, special_kind: Callable[[int], str | None]) -> None:
    if stat.S_ISDIR(mode):
        raise ConfigError(f"{path}: is a directory, not a state file", "give the path of a file with --state FILE")
    kind = special_kind(mode)
    if kind is not None:
        raise ConfigError(f"{path}: is {kind}, not a state file", _HINT_SPECIAL)


__all__ = [
    "DEFAULT_LEDGER_TTL",
    "LedgerChanged",
    "NO_STATE",
    "SCHEMA_VERSION",
    "STATE_ENV",
    "LedgerEntry",
    "LedgerStream",
    "NodeInfo",
    "StateStore",
    "default_state_path",
    "resolve_state_path",
]
