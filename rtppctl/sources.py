"""Where relay nodes come from: the config's `rtpproxy_sock` values and the `db_url` table.

The OpenSIPS module reads OpenSIPS's `rtpproxy_sockets` table (protocol.md §10) when its sets are
loaded and again on MI `rtpproxy_reload`, never per call. rtppctl does the same with a snapshot in
the state store: commands use the snapshot (no database connection per command), the first command
with no snapshot reads the table once, and `rtppctl reload` replaces it. This module owns:

- reading the table on SQLite, PostgreSQL (psycopg) and MySQL/MariaDB (PyMySQL, an optional
  extra): one query, every row checked on its own, so a bad row is reported with its number and
  never hides the good ones;
- merging the table's nodes with the configured ones: added to them, as the module's documentation
  says (`db_mode = "add"`), or instead of them (`db_mode = "replace"`, what OpenSIPS's code does);
  the built-in default relay only applies when neither `rtpproxy_sock` nor `db_url` is set;
- what a reload changes (added, removed, changed nodes);
- managing the table itself (`rtppctl db init|add|remove|list`) on SQLite and PostgreSQL, with
  OpenSIPS's own schema so OpenSIPS can read the same table.

Every failure is a `ConfigError` (exit 5) naming the URL with its password masked, the table,
and the column or row; a driver's message goes through `dburl.first_line` with the URL, so no
secret of it is shown. A row is echoed bounded (`proto.text`), however long it is. A row whose
words do not look like socket paths (`;`, `DROP`, `--`: the module takes any bare word for a unix
socket) is used, as the module would, and warned about.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rtppctl.dburl import DbUrl, first_line, parse_db_url, scrub
from rtppctl.proto.errors import ConfigError, InputError
from rtppctl.proto.text import shown, shown_any
from rtppctl.proto.url import NodeSpec, doubtful_paths, format_node, parse_node, parse_table_row
from rtppctl.relays.store import DbSnapshot, SnapshotNode

if TYPE_CHECKING:
    from rtppctl.config import Config
    from rtppctl.relays.store import StateStore

#: OpenSIPS's version of the `rtpproxy_sockets` table, kept in its `version` table (§10).
TABLE_VERSION = 0
#: How much of a row a message quotes.
ROW_ECHO = 120


@dataclass(frozen=True)
class BadRow:
    """A row of the table that gives no usable node."""

    #: The row's id, or (a table without one) its 1-based position in the query's order.
    number: int
    set_id: Any
    text: Any
    reason: str
    #: `number` is the id column's value.
    is_id: bool = True

    def describe(self, table: str) -> str:
        return f"{table} {_row_name(self.number, self.is_id)} (set_id {shown_any(self.set_id, 40)}, " \
               f"{shown_any(self.text, ROW_ECHO)}): {self.reason}"


def _row_name(number: int, is_id: bool) -> str:
    return f"row id {number}" if is_id else f"row {number}"


def row_warning(text: str, nodes: list[NodeSpec]) -> str | None:
    """What to say about a row (or `db add` value) whose bare words do not look like socket paths;
    None when every word does."""
    doubtful = doubtful_paths(nodes)
    if not doubtful:
        return None
    words = ", ".join(shown(word, 40) for word in doubtful[:5])
    words += f" and {len(doubtful) - 5} more" if len(doubtful) > 5 else ""
    return (f"{shown(text, ROW_ECHO)}: {words} {'does' if len(doubtful) == 1 else 'do'} not look like a socket path; "
            "read as unix sockets in the working directory, as the module does (write unix:NAME or ./NAME if meant)")


@dataclass(frozen=True)
class TableRead:
    """What one read of the table gave."""

    snapshot: DbSnapshot
    bad_rows: list[BadRow] = field(default_factory=list)
    #: Rows used whose words deserve a second look ("TABLE row id N: ..."), in row order.
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TableRow:
    """One row as `db list` shows it."""

    id: int
    set_id: int
    sock: str


@dataclass(frozen=True)
class NodeChange:
    """One node a reload adds, removes or changes."""

    set_id: int
    url: str
    #: The spec before and after ("udp:10.0.0.5:22222|1.2.3.4=2"); None when absent on that side.
    before: str | None
    after: str | None


@dataclass(frozen=True)
class SnapshotDiff:
    added: list[NodeChange]
    removed: list[NodeChange]
    changed: list[NodeChange]

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


# -- which sets --------------------------------------------------------------------------------------


def uses_table(config: Config) -> bool:
    return bool(config.db_url)


def relay_sets(config: Config, snapshot: DbSnapshot | None) -> dict[int, list[NodeSpec]]:
    """The sets commands use: the configured ones and the table's (per `db_mode`).

    Without `db_url` this is `config.sets()`. With it, the built-in default relay is dropped
    unless `rtpproxy_sock` was written in the config, and with `db_mode = "replace"` every
    configured node is.
    """
    if not uses_table(config):
        return config.sets()
    from rtppctl.config import DEFAULT  # noqa: PLC0415

    configured = config.source("rtpproxy_sock") != DEFAULT and config.db_mode != "replace"
    sets: dict[int, list[NodeSpec]] = {sid: list(nodes) for sid, nodes in config.sets().items()} if configured else {}
    for node in snapshot.nodes if snapshot is not None else ():
        sets.setdefault(node.set_id, []).append(parse_node(node.spec))
    return sets


def current_snapshot(config: Config, store: StateStore | None, *, warn: Any = None) -> DbSnapshot | None:
    """The table's nodes as commands use them: the store's snapshot, read from the table (and
    kept) when there is none yet. Without a store the table is read every time. `warn` gets the
    bad rows of a fresh read."""
    if not uses_table(config):
        return None
    if store is not None:
        kept = store.db_snapshot()
        if kept is not None:
            return kept
    read = read_table(config)
    if warn is not None:
        for bad in read.bad_rows:
            warn(bad.describe(config.db_table) + " (skipped)")
        for note in read.warnings:
            warn(note)
    if store is not None:
        store.replace_db_snapshot(read.snapshot)
    return read.snapshot


def diff(before: DbSnapshot | None, after: DbSnapshot) -> SnapshotDiff:
    """What replacing `before` with `after` adds, removes and changes, by (set, url)."""

    def keyed(snapshot: DbSnapshot | None) -> dict[tuple[int, str], str]:
        nodes: dict[tuple[int, str], str] = {}
        for node in snapshot.nodes if snapshot is not None else ():
            spec = parse_node(node.spec)
            nodes.setdefault((node.set_id, spec.url), format_node(spec))
        return nodes

    old, new = keyed(before), keyed(after)
    added = [NodeChange(s, u, None, new[(s, u)]) for (s, u) in new if (s, u) not in old]
    removed = [NodeChange(s, u, old[(s, u)], None) for (s, u) in old if (s, u) not in new]
    changed = [NodeChange(s, u, old[(s, u)], new[(s, u)]) for (s, u) in new if (s, u) in old and old[(s, u)] != new[(s, u)]]
    return SnapshotDiff(added, removed, changed)


# -- reading the table -------------------------------------------------------------------------------


def read_table(config: Config, *, now: float | None = None) -> TableRead:
    """Every row of the `db_url` table, checked row by row."""
    import time  # noqa: PLC0415

    url = parse_db_url(config.db_url or "")
    table, sock_col, set_col = config.db_table, config.rtpp_socket_col, config.set_id_col
    # The module reads only the two columns, in this order (§10); the id, which OpenSIPS's schema
    # has, only names a bad row.
    query = f"SELECT {sock_col}, {set_col}, id FROM {table} ORDER BY {set_col}, id"
    with _connection(url) as connection:
        try:
            rows = _fetch(url, connection, query, table, (sock_col, set_col, "id"))
        except ConfigError:
            with contextlib.suppress(Exception):
                connection.rollback()  # PostgreSQL refuses further queries in a failed transaction
            rows = [(*row, None) for row in _fetch(url, connection, f"SELECT {sock_col}, {set_col} FROM {table} "
                                                   f"ORDER BY {set_col}", table, (sock_col, set_col))]
    nodes: list[SnapshotNode] = []
    bad: list[BadRow] = []
    warnings: list[str] = []
    for number, (text, set_value, row_id) in enumerate(rows, start=1):
        label = number if row_id is None else row_id
        try:
            set_id = _set_id(set_value)
            specs = parse_table_row(text)
        except InputError as err:
            bad.append(BadRow(label, set_value, text, err.message, row_id is not None))
            continue
        note = row_warning(text, specs)
        if note is not None:
            warnings.append(f"{table} {_row_name(label, row_id is not None)}: {note}")
        nodes.extend(SnapshotNode(set_id, format_node(spec), f"id {row_id}" if row_id is not None else f"row {number}")
                     for spec in specs)
    source = f"{url.shown} {table}"
    return TableRead(DbSnapshot(source, time.time() if now is None else now, tuple(nodes)), bad, warnings)


def _set_id(value: Any) -> int:
    from rtppctl.proto import limits  # noqa: PLC0415

    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limits.MAX_SET_ID:
        raise InputError(f"set id {shown_any(value, 40)} is not a whole number 0..{limits.MAX_SET_ID}")
    return value


@contextlib.contextmanager
def _connection(url: DbUrl) -> Iterator[Any]:
    """An open connection to the table's database; ConfigError naming the masked URL."""
    if url.backend == "sqlite":
        import sqlite3  # noqa: PLC0415

        if url.path is None or not url.path.is_file():
            # The path is the URL's text: what masks the URL masks it too.
            raise ConfigError(f"db_url {url.shown}: no such database file {scrub(shown(str(url.path), ROW_ECHO), url.url)}",
                              "create it with rtppctl db init")
        try:
            # The URI names exactly the file: '?', '#' and '%' in the path are escaped.
            connection = sqlite3.connect(url.sqlite_uri("rw"), uri=True, timeout=5.0)
        except sqlite3.Error as exc:
            raise ConfigError(f"db_url {url.shown}: cannot open the database: {first_line(exc, url.url)}") from None
    elif url.backend == "postgresql":
        psycopg = _module("psycopg", "pg", url)
        try:
            # The parts rtppctl read, not the URL: libpq would read a password holding '/' or '#'
            # differently, and quote the URL in its error.
            connection = psycopg.connect("", **{**url.libpq_params(), "connect_timeout": "5"})
        except psycopg.Error as exc:
            raise ConfigError(f"db_url {url.shown}: cannot connect: {first_line(exc, url.url)}",
                              "check that the server runs and the URL, user and password are right") from None
    else:
        connection = _mysql_connect(url)
    try:
        yield connection
    finally:
        with contextlib.suppress(Exception):
            connection.close()


def _mysql_connect(url: DbUrl) -> Any:
    pymysql = _module("pymysql", "mysql", url)
    try:
        # Every wait has a deadline: connecting, and each statement's reply.
        return pymysql.connect(**url.mysql_params(), connect_timeout=5, read_timeout=30, write_timeout=30)
    except pymysql.Error as exc:
        raise ConfigError(f"db_url {url.shown}: cannot connect: {first_line(exc, url.url)}",
                          "check that the server runs and the URL, user and password are right") from None


def _fetch(url: DbUrl, connection: Any, query: str, table: str, columns: tuple[str, ...]) -> list[tuple[Any, ...]]:
    try:
        cursor = connection.cursor()
        cursor.execute(query)
        return [tuple(row) for row in cursor.fetchall()]
    except Exception as exc:  # noqa: BLE001 - each driver has its own error tree; all mean the same here
        if not _is_db_error(exc):
            raise
        text = first_line(exc, url.url)
        lowered = text.lower()
        # sqlite: "no such table"; PostgreSQL: 'relation "x" does not exist'; MySQL: "Table 'x' doesn't exist".
        missing_table = "no such table" in lowered or "doesn't exist" in lowered or (
            "does not exist" in lowered and "column" not in lowered)
        if missing_table:
            raise ConfigError(f"db_url {url.shown}: table {table!r} does not exist ({text})",
                              "create it with rtppctl db init, or set db_table") from None
        if "column" in lowered:
            raise ConfigError(f"db_url {url.shown}: table {table!r} lacks a column: {text}",
                              f"the columns read are {', '.join(columns)} (rtpp_socket_col, set_id_col)") from None
        raise ConfigError(f"db_url {url.shown}: reading {table!r} failed: {text}") from None


def _is_db_error(exc: Exception) -> bool:
    # DB-API 2 drivers all name their base class Error; sqlite3's is DatabaseError's parent.
    return any(cls.__name__ in ("Error", "DatabaseError") and cls.__module__.split(".")[0] in ("sqlite3", "psycopg", "pymysql")
               for cls in type(exc).__mro__)


def _module(name: str, extra: str, url: DbUrl) -> Any:
    import importlib  # noqa: PLC0415

    try:
        return importlib.import_module(name)
    except ImportError:
        raise ConfigError(f"db_url {url.shown}: {url.backend} needs the {name} package",
                          f"pip install 'rtppctl[{extra}]'") from None



# -- managing the table ------------------------------------------------------------------------------

# OpenSIPS's own schema (§10), per backend, so OpenSIPS can read the table rtppctl manages.
_CREATE = {
    "sqlite": "CREATE TABLE {table} (id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, {sock} TEXT NOT NULL, {set} INTEGER NOT NULL)",
    "postgresql": "CREATE TABLE {table} (id SERIAL PRIMARY KEY NOT NULL, {sock} TEXT NOT NULL, {set} INTEGER NOT NULL)",
    "mysql": "CREATE TABLE {table} (id INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL, {sock} TEXT NOT NULL, "
             "{set} INT(10) UNSIGNED NOT NULL)",
}
_CREATE_VERSION = {
    "sqlite": "CREATE TABLE IF NOT EXISTS version (table_name CHAR(32) NOT NULL, table_version INTEGER DEFAULT 0 NOT NULL)",
    "postgresql": "CREATE TABLE IF NOT EXISTS version (table_name VARCHAR(32) NOT NULL, table_version INTEGER DEFAULT 0 NOT NULL)",
    "mysql": "CREATE TABLE IF NOT EXISTS version (table_name CHAR(32) NOT NULL, table_version INT UNSIGNED DEFAULT 0 NOT NULL)",
}


def _placeholder(url: DbUrl) -> str:
    return "?" if url.backend == "sqlite" else "%s"


@contextlib.contextmanager
def _writing(config: Config, *, create: bool = False) -> Iterator[tuple[DbUrl, Any]]:
    """A connection to the table's database, committed when the block ends without error."""
    if not config.db_url:
        raise ConfigError("no db_url is configured", "set db_url in the config, or give --db-url")
    url = parse_db_url(config.db_url)
    if create and url.backend == "sqlite" and url.path is not None and not url.path.exists():
        url.path.parent.mkdir(parents=True, exist_ok=True)
        url.path.touch()
    with _connection(url) as connection:
        try:
            yield url, connection
            connection.commit()
        except Exception as exc:
            with contextlib.suppress(Exception):
                connection.rollback()
            if _is_db_error(exc):
                raise ConfigError(f"db_url {url.shown}: {config.db_table}: {first_line(exc, url.url)}") from None
            raise


def init_table(config: Config) -> str:
    """Create OpenSIPS's table (and its `version` row) if missing; what was done, in words."""
    with _writing(config, create=True) as (url, connection):
        cursor = connection.cursor()
        table = config.db_table
        if _table_exists(url, cursor, table):
            return f"{table} already exists in {url.shown}"
        cursor.execute(_CREATE[url.backend].format(table=table, sock=config.rtpp_socket_col, set=config.set_id_col))
        cursor.execute(_CREATE_VERSION[url.backend])
        mark = _placeholder(url)
        cursor.execute(f"DELETE FROM version WHERE table_name = {mark}", (table,))
        cursor.execute(f"INSERT INTO version (table_name, table_version) VALUES ({mark}, {mark})", (table, TABLE_VERSION))
        return f"created {table} in {url.shown}"


def _table_exists(url: DbUrl, cursor: Any, table: str) -> bool:
    if url.backend == "sqlite":
        cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
    elif url.backend == "postgresql":
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
        return bool(cursor.fetchone()[0])
    else:
        cursor.execute("SELECT 1 FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = %s", (table,))
    return cursor.fetchone() is not None


def sock_warning(sock: str) -> str | None:
    """`row_warning` for a value `db add` is given; None when it is no valid row at all (add_row says why)."""
    try:
        return row_warning(sock, parse_table_row(sock))
    except InputError:
        return None


def add_row(config: Config, sock: str, set_id: int) -> TableRow:
    """One row: the node specs in `sock` (checked first), in set `set_id`."""
    parse_table_row(sock)  # a bad spec is refused before the database is touched
    text = " ".join(sock.split())
    with _writing(config) as (url, connection):
        cursor = connection.cursor()
        mark = _placeholder(url)
        insert = f"INSERT INTO {config.db_table} ({config.rtpp_socket_col}, {config.set_id_col}) VALUES ({mark}, {mark})"
        if url.backend == "postgresql":
            cursor.execute(insert + " RETURNING id", (text, set_id))
            row_id = cursor.fetchone()[0]
        else:
            cursor.execute(insert, (text, set_id))
            row_id = cursor.lastrowid
        return TableRow(int(row_id), set_id, text)


def remove_rows(config: Config, *, row_id: int | None = None, url_or_spec: str | None = None,
                set_id: int | None = None) -> list[TableRow]:
    """Remove the row `row_id`, or every row whose socket column holds the node `url_or_spec`
    (in set `set_id` when given); the rows removed."""
    rows = list_rows(config)
    if row_id is not None:
        doomed = [row for row in rows if row.id == row_id]
    else:
        wanted = parse_node(url_or_spec or "").url
        doomed = [row for row in rows if (set_id is None or row.set_id == set_id)
                  and any(node.url == wanted for node in _nodes_or_none(row.sock))]
    if not doomed:
        return []
    with _writing(config) as (url, connection):
        cursor = connection.cursor()
        mark = _placeholder(url)
        for row in doomed:
            cursor.execute(f"DELETE FROM {config.db_table} WHERE id = {mark}", (row.id,))
    return doomed


def _nodes_or_none(text: str) -> list[NodeSpec]:
    try:
        return parse_table_row(text)
    except InputError:
        return []


def list_rows(config: Config) -> list[TableRow]:
    """Every row with its id, by set and id."""
    if not config.db_url:
        raise ConfigError("no db_url is configured", "set db_url in the config, or give --db-url")
    url = parse_db_url(config.db_url)
    table = config.db_table
    query = f"SELECT id, {config.rtpp_socket_col}, {config.set_id_col} FROM {table} ORDER BY {config.set_id_col}, id"
    with _connection(url) as connection:
        rows = _fetch(url, connection, query, table, ("id", config.rtpp_socket_col, config.set_id_col))
    return [TableRow(int(row[0]), row[2], row[1]) for row in rows]


__all__ = [
    "ROW_ECHO", "BadRow", "NodeChange", "SnapshotDiff", "TABLE_VERSION", "TableRead", "TableRow", "add_row",
    "current_snapshot", "diff", "init_table", "list_rows", "read_table", "relay_sets", "remove_rows", "row_warning",
    "sock_warning", "uses_table",
]
