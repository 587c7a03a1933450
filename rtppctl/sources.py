"""OpenSIPS's relay table: the `rtpproxy_sockets` table `db_url` names (docs/protocol.md §10).

The OpenSIPS module reads the table when its sets are loaded and again on MI `rtpproxy_reload`,
never per call. rtppctl does the same: the relay service (`relays.service.RelaySources`) keeps
what a read gave as a snapshot in the state store and merges it with `rtpproxy_sock`; this module
is the table itself. It owns:

- reading the table on SQLite, PostgreSQL (psycopg) and MySQL/MariaDB (PyMySQL, an optional
  extra): one query, every row checked on its own, so a bad row is reported with its number and
  never hides the good ones; what a read gives (`TableRead`, `DbSnapshot`: the value the state
  store keeps);
- what a reload changes (`diff`: added, removed, changed nodes);
- managing the table itself (`rtppctl db init|add|remove|list`) with OpenSIPS's own schema, so
  OpenSIPS can read the same table.

Each database is a small `_Dialect` saying what differs (OpenSIPS's column types, how to ask
whether the table exists, how an insert tells its id); connecting, bounding every wait and the
transactions are `rtppctl.db`'s, as for the state store: connecting waits at most
`db.CONNECT_TIMEOUT`, and every read or write ends within `db.RETRY_SECONDS`, a lock or a silent
server included.

Every failure is a `ConfigError` (exit 5) naming the URL with its password masked, the table,
and the column or row; a driver's message goes through `dburl.first_line` with the URL, so no
secret of it is shown. A row is echoed bounded (`proto.text`), however long it is. A row whose
words do not look like socket paths (`;`, `DROP`, `--`: the module takes any bare word for a unix
socket) is used, as the module would, and warned about.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rtppctl.dburl import DbUrl, parse_db_url, scrub
from rtppctl.proto.errors import ConfigError, InputError
from rtppctl.proto.text import shown, shown_any
from rtppctl.proto.url import NodeSpec, doubtful_paths, format_node, parse_node, parse_table_row

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from rtppctl.config import Config
    from rtppctl.db import Database, Statements

#: OpenSIPS's version of the `rtpproxy_sockets` table, kept in its `version` table (§10).
TABLE_VERSION = 0
#: How much of a row a message quotes.
ROW_ECHO = 120


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
    """The relays read from the `db_url` table at one moment (what the state store keeps)."""

    #: The table's URL (password masked) and name.
    source: str
    loaded_at: float
    nodes: tuple[SnapshotNode, ...]


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


# -- what a reload changes ---------------------------------------------------------------------------


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

    url = _table_url(config)
    table, sock_col, set_col = config.db_table, config.rtpp_socket_col, config.set_id_col
    # The module reads only the two columns, in this order (§10); the id, which OpenSIPS's schema
    # has, only names a bad row.
    with _open(url, table) as database:
        try:
            rows = _select(database, f"SELECT {sock_col}, {set_col}, id FROM {table} ORDER BY {set_col}, id",
                           table, (sock_col, set_col, "id"))
        except _MissingColumn:
            rows = [(*row, None) for row in _select(database, f"SELECT {sock_col}, {set_col} FROM {table} "
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


def _table_url(config: Config) -> DbUrl:
    if not config.db_url:
        raise ConfigError("no db_url is configured", "set db_url in the config, or give --db-url")
    return parse_db_url(config.db_url)


def _open(url: DbUrl, table: str, *, create: bool = False) -> Database:
    """A connection to the table's database (a SQLite file made first when `create`); ConfigError
    naming the masked URL."""
    from rtppctl.db import Database, Wording, backend_for  # noqa: PLC0415 - databases when used

    where = f"db_url {url.shown}"

    def prepare(path: Path) -> None:
        # OpenSIPS's file is never made by a read; only db init makes one.
        if create and not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        elif not path.is_file():
            # The path is the URL's text: what masks the URL masks it too.
            raise ConfigError(f"{where}: no such database file {scrub(shown(str(path), ROW_ECHO), url.url)}",
                              "create it with rtppctl db init")

    says = Wording("the database", "the database file", table)
    return Database.open(backend_for(url, where=where, prepare=prepare), says)


class _MissingColumn(ConfigError):
    """The table lacks a column a statement named."""


def _run(database: Database, work: Callable[[Statements], Any], table: str, columns: tuple[str, ...], *,
         write: bool) -> Any:
    """`work` in one transaction on the table's database, a missing table or column named."""

    def explain(exc: Exception, line: str) -> ConfigError | None:
        missing = database.backend.undefined(exc)
        if missing == "table":
            return ConfigError(f"{database.where}: table {table!r} does not exist ({line})",
                               "create it with rtppctl db init, or set db_table")
        if missing == "column":
            return _MissingColumn(f"{database.where}: table {table!r} lacks a column: {line}",
                                  f"the columns read are {', '.join(columns)} (rtpp_socket_col, set_id_col)")
        return None

    return database.transaction(work, write=write, explain=explain)


def _select(database: Database, query: str, table: str, columns: tuple[str, ...]) -> list[tuple[Any, ...]]:
    return _run(database, lambda db: [tuple(row) for row in db.execute(query).fetchall()], table, columns, write=False)


# -- managing the table ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Dialect:
    """OpenSIPS's table on one kind of database (§10): what differs in making and filling it."""

    #: OpenSIPS's CREATE TABLE, with {table}, {sock} and {set} for the configured names.
    create: str
    #: OpenSIPS's `version` table.
    create_version: str
    #: A query that gives a row when the table named by its parameter exists.
    exists: str
    #: An INSERT tells its id with RETURNING (else the cursor's lastrowid does).
    returning: bool = False


_DIALECTS = {
    "sqlite": _Dialect(
        "CREATE TABLE {table} (id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, {sock} TEXT NOT NULL, {set} INTEGER NOT NULL)",
        "CREATE TABLE IF NOT EXISTS version (table_name CHAR(32) NOT NULL, table_version INTEGER DEFAULT 0 NOT NULL)",
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"),
    "postgresql": _Dialect(
        "CREATE TABLE {table} (id SERIAL PRIMARY KEY NOT NULL, {sock} TEXT NOT NULL, {set} INTEGER NOT NULL)",
        "CREATE TABLE IF NOT EXISTS version (table_name VARCHAR(32) NOT NULL, table_version INTEGER DEFAULT 0 NOT NULL)",
        "SELECT 1 WHERE to_regclass(?) IS NOT NULL", returning=True),
    "mysql": _Dialect(
        "CREATE TABLE {table} (id INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL, {sock} TEXT NOT NULL, "
        "{set} INT(10) UNSIGNED NOT NULL)",
        "CREATE TABLE IF NOT EXISTS version (table_name CHAR(32) NOT NULL, table_version INT UNSIGNED DEFAULT 0 NOT NULL)",
        "SELECT 1 FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?"),
}


def init_table(config: Config) -> str:
    """Create OpenSIPS's table (and its `version` row) if missing; what was done, in words."""
    url = _table_url(config)
    table = config.db_table
    dialect = _DIALECTS[url.backend]

    def create(db: Statements) -> str:
        if db.execute(dialect.exists, (table,)).fetchall():
            return f"{table} already exists in {url.shown}"
        db.execute(dialect.create.format(table=table, sock=config.rtpp_socket_col, set=config.set_id_col))
        db.execute(dialect.create_version)
        db.execute("DELETE FROM version WHERE table_name = ?", (table,))
        db.execute("INSERT INTO version (table_name, table_version) VALUES (?, ?)", (table, TABLE_VERSION))
        return f"created {table} in {url.shown}"

    with _open(url, table, create=True) as database:
        return _run(database, create, table, (), write=True)


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
    url = _table_url(config)
    columns = (config.rtpp_socket_col, config.set_id_col)
    insert = f"INSERT INTO {config.db_table} ({columns[0]}, {columns[1]}) VALUES (?, ?)"

    def add(db: Statements) -> int:
        if _DIALECTS[url.backend].returning:
            return int(db.execute(insert + " RETURNING id", (text, set_id)).fetchone()[0])
        return int(db.execute(insert, (text, set_id)).lastrowid)

    with _open(url, config.db_table) as database:
        return TableRow(_run(database, add, config.db_table, columns, write=True), set_id, text)


def remove_rows(config: Config, *, row_id: int | None = None, url_or_spec: str | None = None,
                set_id: int | None = None) -> list[TableRow]:
    """Remove the row `row_id`, or every row whose socket column holds the node `url_or_spec`
    (in set `set_id` when given); the rows removed. The rows are chosen and removed in one
    transaction, so a row changed meanwhile is judged as it is."""
    url = _table_url(config)
    wanted = None if row_id is not None else parse_node(url_or_spec or "").url

    def remove(db: Statements) -> list[TableRow]:
        rows = [_row(found) for found in db.execute(_list_query(config)).fetchall()]
        if wanted is None:
            doomed = [row for row in rows if row.id == row_id]
        else:
            doomed = [row for row in rows if (set_id is None or row.set_id == set_id)
                      and any(node.url == wanted for node in _nodes_or_none(row.sock))]
        for row in doomed:
            db.execute(f"DELETE FROM {config.db_table} WHERE id = ?", (row.id,))
        return doomed

    with _open(url, config.db_table) as database:
        return _run(database, remove, config.db_table, _list_columns(config), write=True)


def _nodes_or_none(text: str) -> list[NodeSpec]:
    try:
        return parse_table_row(text)
    except InputError:
        return []


def list_rows(config: Config) -> list[TableRow]:
    """Every row with its id, by set and id."""
    url = _table_url(config)
    with _open(url, config.db_table) as database:
        return [_row(found) for found in _select(database, _list_query(config), config.db_table, _list_columns(config))]


def _list_columns(config: Config) -> tuple[str, ...]:
    return ("id", config.rtpp_socket_col, config.set_id_col)


def _list_query(config: Config) -> str:
    return f"SELECT {', '.join(_list_columns(config))} FROM {config.db_table} ORDER BY {config.set_id_col}, id"


def _row(found: tuple[Any, ...]) -> TableRow:
    return TableRow(int(found[0]), found[2], found[1])


__all__ = [
    "ROW_ECHO", "BadRow", "DbSnapshot", "NodeChange", "SnapshotDiff", "SnapshotNode", "TABLE_VERSION", "TableRead",
    "TableRow", "add_row", "diff", "init_table", "list_rows", "read_table", "remove_rows", "row_warning",
    "sock_warning",
]
