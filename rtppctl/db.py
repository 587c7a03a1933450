"""Database plumbing shared by the state store (`relays/store.py`) and OpenSIPS's relay table
(`sources.py`): a small class per database saying how it is connected to and driven with every
wait bounded, and the one transaction core both run their SQL through. Neither of those two
modules imports the other for any of this.

It owns:

- the drivers: sqlite3, psycopg and PyMySQL are imported here, inside the functions that use them
  (start-up imports no database module); a missing one is a ConfigError with the extra that
  installs it;
- connecting (`Database.open`): the parts `dburl` read go to the driver, never the URL, so a driver
  never reads a password differently or echoes a URL; a connect timeout (CONNECT_TIMEOUT); on
  PostgreSQL TCP keepalives and application_name (what the URL says wins); a refused connection
  is a ConfigError with the one connect hint;
- the transaction core (`Database.transaction`): one BEGIN ... COMMIT per piece of work, retried
  with growing, jittered pauses while the database says "busy, try again", all within one budget
  (RETRY_SECONDS). Each try's waits come out of what is left of it: SQLite's busy timeout;
  PostgreSQL's statement, lock and idle-in-transaction timeouts (SET LOCAL: this transaction
  only); MySQL's lock waits and statement time. The server's limits fire first, so it names the
  cause; a client-side deadline ends a wait on a server that went silent (PostgreSQL: the
  connection is cut; MySQL: the socket's read and write timeouts);
- what a failure says: a ConfigError (exit 5) naming the database (password masked) and the
  cause (a lock held, a statement too slow, a server that did not answer), a driver's own words
  only through `dburl.first_line`.

Which backend a URL means is `dburl`'s to say (`DbUrl.backend`). The SQL is the caller's, written
with `?` placeholders (a backend translates), and so are the names its messages give the database
(`Wording`).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from rtppctl.proto.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path
    from types import TracebackType

    from rtppctl.dburl import DbUrl

#: Seconds to wait for a database server to accept the connection.
CONNECT_TIMEOUT = 5

#: Seconds one try waits for a lock another session holds: SQLite's busy timeout, PostgreSQL's
#: lock_timeout, MySQL's lock waits. A try that times out is retried while the budget lasts.
BUSY_TIMEOUT = 5.0

#: Seconds one operation (a transaction and all its retries) may take: the budget. A lock held by
#: another process is waited out in tries of BUSY_TIMEOUT; PostgreSQL also aborts one of two
#: conflicting serializable writers, and a short, growing, randomised pause and another try are
#: cheaper than a failed command. A budget of time rather than a number of tries: on a loaded host
#: many writers may each lose several rounds before their turn. When it runs out the operation
#: fails with a ConfigError (exit 5) saying why.
RETRY_SECONDS = 15.0

#: Seconds a PostgreSQL session of ours may sit idle inside a transaction before the server ends
#: it: a process stopped (or hung) in the middle of one must not hold its locks for ever.
IDLE_IN_TRANSACTION_TIMEOUT = 5.0

#: TCP keepalives on PostgreSQL connections (seconds idle before the first probe, between probes,
#: probes lost before the connection counts as dead): a server host that vanished while a
#: long-running command (`shell`, `listen`) kept its connection is noticed in about 11 s.
KEEPALIVE = (5, 2, 3)

#: What a connection a server refused suggests.
CONNECT_HINT = "check that the server runs and the URL, user and password are right"

#: Seconds before the client-side deadline at which the server's own timeouts fire, so that the
#: server names the cause (a lock, a slow statement) before the client has to cut the connection.
_SERVER_MARGIN = 0.2

#: A retry is not started with less than this left of the budget: it could not finish anyway.
_MIN_TRY = 0.3

_T = TypeVar("_T")


@dataclass(frozen=True)
class Wording:
    """How messages speak of one database, and the way out their hints offer."""

    #: "the state database", "the database".
    database: str
    #: What a SQLite file is called: "the state file", "the database file".
    file: str
    #: Whose tables another session's lock holds: "rtppctl's tables", "rtpproxy_sockets".
    tables: str
    #: The way out that ends the hints of a database held up (a lock, a slow or silent server).
    way_out: str | None = None
    #: The hint of a database that cannot be used for any other reason.
    unusable: str | None = None

    def hint(self, text: str) -> str:
        return f"{text}; {self.way_out}" if self.way_out else text


class Backend:
    """How one kind of database is connected to and driven; the SQL is the caller's."""

    #: Its name in `DbUrl.backend`.
    name = ""
    #: The driver module, how messages call the database, and what installs the driver.
    module = ""
    title = ""
    install: str | None = None
    #: What a failed connection is, and what it suggests.
    refused = "cannot connect to"
    connect_hint: str | None = CONNECT_HINT
    #: The least of the budget a retry is started with.
    min_try = _MIN_TRY

    def __init__(self, where: str, secret: str | None) -> None:
        #: What messages name: the file, or the URL with its password masked (and what it is).
        self.where = where
        #: The URL whose secrets a driver's message may quote (None for a file given as a path).
        self.secret = secret

    @classmethod
    def of(cls, url: DbUrl, *, where: str | None, prepare: Callable[[Path], None] | None) -> Backend:
        """The backend for `url`, named `where` in messages (default: the URL, password masked)."""
        raise NotImplementedError

    def driver(self) -> Any:
        import importlib  # noqa: PLC0415

        try:
            return importlib.import_module(self.module)
        except ImportError:
            raise ConfigError(f"{self.where}: {self.title} needs the {self.module} package", self.install) from None

    def connect(self) -> Any:
        raise NotImplementedError

    def dialect(self, query: str) -> str:
        # The callers' SQL has no literal '?' or '%' (names are plain identifiers): only
        # placeholders change.
        return query.replace("?", "%s")

    def execute(self, connection: Any, query: str, parameters: tuple[Any, ...]) -> Any:
        return connection.execute(self.dialect(query), parameters)

    def bound(self, db: Statements, remaining: float) -> None:
        """Bound the waits of a statement run outside a transaction (a setting)."""

    def begin(self, db: Statements, write: bool, remaining: float) -> None:
        """Start a transaction that waits for nothing longer than `remaining` seconds."""
        raise NotImplementedError

    def deadline(self, connection: Any, deadline: float) -> Any:
        """A context whose `fired` says the connection was cut at `deadline` (time.monotonic)."""
        return _NoWatch()

    def is_error(self, exc: Exception) -> bool:
        return isinstance(exc, self.driver().Error)

    def retryable(self, exc: Exception) -> bool:
        raise NotImplementedError

    def broken(self, connection: Any) -> bool:
        """The connection can no longer be used."""
        return False

    def undefined(self, exc: Exception) -> str | None:
        """What `exc` says a statement named that does not exist: "table", "column", or None."""
        return None

    def gave_up(self, exc: Exception, budget: float, says: Wording) -> tuple[str, str]:
        """Message and hint when tries still answered `exc` (retryable) as the budget ran out."""
        return (f"{says.database} stayed busy with other processes' changes for {budget:g} s",
                "another rtppctl kept changing the same rows; try again")

    def cause(self, exc: Exception, budget: float, says: Wording) -> tuple[str, str] | None:
        """Message and hint for an error that is not retried and has a cause worth naming."""
        return None


class Sqlite(Backend):
    name = "sqlite"
    module = "sqlite3"
    title = "SQLite"
    refused = "cannot open"
    connect_hint = None

    def __init__(self, path: Path, *, where: str | None = None, secret: str | None = None,
                 prepare: Callable[[Path], None] | None = None) -> None:
        super().__init__(str(path) if where is None else where, secret)
        self.path = path
        # What must hold of the file before SQLite opens it (it exists; it is no FIFO): the caller's.
        self._prepare = prepare
        self._busy_ms = 0

    @classmethod
    def of(cls, url: DbUrl, *, where: str | None, prepare: Callable[[Path], None] | None) -> Backend:
        assert url.path is not None
        return cls(url.path, where=where, secret=url.url, prepare=prepare)

    def connect(self) -> Any:
        from rtppctl.dburl import sqlite_uri  # noqa: PLC0415

        sqlite3 = self.driver()
        if self._prepare is not None:
            self._prepare(self.path)
        # The URI names exactly the file ('?', '#' and '%' in the path escaped) and never creates
        # one. isolation_level=None: the module starts no transactions of its own; we say BEGIN.
        # check_same_thread=False: a connection may be closed by another thread than the one that
        # opened it (a run's end); no two threads ever use it at once.
        connection = sqlite3.connect(sqlite_uri(self.path, "rw"), uri=True, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
        self._busy_ms = int(BUSY_TIMEOUT * 1000)
        return connection

    def dialect(self, query: str) -> str:
        return query

    def bound(self, db: Statements, remaining: float) -> None:
        # The busy timeout is how long SQLite waits for another process's lock; no try may wait
        # past the budget, so the last ones wait less.
        wait_ms = max(1, int(min(BUSY_TIMEOUT, remaining) * 1000))
        if wait_ms != self._busy_ms:
            db.execute(f"PRAGMA busy_timeout = {wait_ms}")
            self._busy_ms = wait_ms

    def begin(self, db: Statements, write: bool, remaining: float) -> None:
        self.bound(db, remaining)
        # IMMEDIATE takes the write lock at once: a deferred transaction that upgrades later gets
        # "locked" with no waiting.
        db.execute("BEGIN IMMEDIATE" if write else "BEGIN")

    def retryable(self, exc: Exception) -> bool:
        return isinstance(exc, self.driver().OperationalError) and _is_locked(exc)

    def undefined(self, exc: Exception) -> str | None:
        # sqlite3 gives one code (SQLITE_ERROR) for both: its words tell them apart.
        text = str(exc) if isinstance(exc, self.driver().OperationalError) else ""
        return "table" if "no such table" in text else "column" if "no such column" in text else None

    def gave_up(self, exc: Exception, budget: float, says: Wording) -> tuple[str, str]:
        return (f"{says.file} stayed locked by another process for {budget:g} s",
                says.hint("a process holds a transaction open on it (fuser shows which)"))


def _is_locked(exc: Exception) -> bool:
    """SQLite's "busy" or "locked": another connection holds a lock this one needs."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        # The primary code is the low byte; the extended ones (BUSY_RECOVERY, BUSY_SNAPSHOT,
        # LOCKED_SHAREDCACHE, ...) are variants of the same two.
        return code & 0xFF in (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class _Server(Backend):
    """A database behind a server, reached with the parts of its URL."""

    def __init__(self, url: DbUrl, where: str) -> None:
        super().__init__(where, url.url)
        self.url = url

    @classmethod
    def of(cls, url: DbUrl, *, where: str | None, prepare: Callable[[Path], None] | None) -> Backend:
        return cls(url, url.shown if where is None else where)


class Postgres(_Server):
    name = "postgresql"
    module = "psycopg"
    title = "PostgreSQL"
    install = "pip install 'rtppctl[pg]' (or: pip install 'psycopg[binary]')"

    def connect(self) -> Any:
        psycopg = self.driver()
        # The URL's parts as rtppctl read them (a password may hold / ? # as OpenSIPS allows),
        # handed over as keywords: libpq never re-reads the URL, so it cannot misread it.
        given = self.url.libpq_params()
        idle, interval, count = KEEPALIVE
        ours: dict[str, Any] = {
            "connect_timeout": CONNECT_TIMEOUT,
            "application_name": "rtppctl",
            "keepalives": 1, "keepalives_idle": idle, "keepalives_interval": interval, "keepalives_count": count,
        }
        if psycopg.pq.version() >= 120000:
            # Data sent and not acknowledged for this long ends the connection (libpq 12+).
            ours["tcp_user_timeout"] = int(RETRY_SECONDS * 1000)
        # What the URL says wins: an operator may have reasons (a pooler, a slow link).
        extra = {key: value for key, value in ours.items() if key not in given}
        # autocommit: transactions are our own BEGIN ... COMMIT, as with SQLite.
        return psycopg.connect("", autocommit=True, **given, **extra)

    def begin(self, db: Statements, write: bool, remaining: float) -> None:
        # SERIALIZABLE: two hosts reading and changing one row cannot both commit; the loser is
        # retried with the winner's row, so no update is lost.
        # The limits are SET LOCAL, for this transaction only (a pooler may hand the session to
        # someone else next), and sent with BEGIN in one round trip.
        statement = max(remaining - _SERVER_MARGIN, 0.05)
        lock = max(min(BUSY_TIMEOUT, statement - _SERVER_MARGIN), 0.02)
        db.execute(
            ("BEGIN ISOLATION LEVEL SERIALIZABLE" if write else "BEGIN")
            + f"; SET LOCAL statement_timeout = {int(statement * 1000)}"
            + f"; SET LOCAL lock_timeout = {int(lock * 1000)}"
            + f"; SET LOCAL idle_in_transaction_session_timeout = {int(IDLE_IN_TRANSACTION_TIMEOUT * 1000)}"
        )

    def deadline(self, connection: Any, deadline: float) -> Any:
        return _Watchdog(connection.fileno, deadline)

    def retryable(self, exc: Exception) -> bool:
        errors = self.driver().errors
        # A lost serializable race, a deadlock, two processes creating the same table at once, or
        # a lock another session held past one try's lock_timeout.
        return isinstance(exc, (errors.SerializationFailure, errors.DeadlockDetected, errors.UniqueViolation,
                                errors.DuplicateTable, errors.DuplicateObject, errors.LockNotAvailable))

    def broken(self, connection: Any) -> bool:
        return bool(getattr(connection, "broken", False) or getattr(connection, "closed", False))

    def undefined(self, exc: Exception) -> str | None:
        errors = self.driver().errors
        return "table" if isinstance(exc, errors.UndefinedTable) else "column" if isinstance(
            exc, errors.UndefinedColumn) else None

    def gave_up(self, exc: Exception, budget: float, says: Wording) -> tuple[str, str]:
        if isinstance(exc, self.driver().errors.LockNotAvailable):
            return (f"another session held a lock on {says.tables} for {budget:g} s",
                    says.hint("look for it in pg_stat_activity (a LOCK TABLE, or a session idle in transaction)"))
        return super().gave_up(exc, budget, says)

    def cause(self, exc: Exception, budget: float, says: Wording) -> tuple[str, str] | None:
        if isinstance(exc, self.driver().errors.QueryCanceled):
            # Our statement_timeout (or an operator's pg_cancel_backend): the server was too slow.
            return (f"{says.database} did not finish a statement within {budget:g} s",
                    says.hint("the server is overloaded or something holds it up"))
        return None


# MySQL's error numbers this module tells apart.
_MYSQL_LOCK_WAIT, _MYSQL_DEADLOCK = 1205, 1213
_MYSQL_NO_TABLE, _MYSQL_NO_COLUMN = 1146, 1054
_MYSQL_STATEMENT_TIME = (1969, 3024)  # MariaDB's max_statement_time, MySQL's max_execution_time
_MYSQL_LOST = (2006, 2013)  # the server has gone away; lost connection during a query


class Mysql(_Server):
    """MySQL and MariaDB through PyMySQL, which has no way to cut a blocked read from outside: the
    client-side deadline is its socket timeouts, one budget per read or write."""

    name = "mysql"
    module = "pymysql"
    title = "MySQL"
    install = "pip install 'rtppctl[mysql]' (or: pip install PyMySQL)"
    # A lock wait is a second at least: a try with less left would end by the statement limit,
    # and its message would hide the lock.
    min_try = 1.0 + _SERVER_MARGIN

    def __init__(self, url: DbUrl, where: str) -> None:
        super().__init__(url, where)
        self._statement_limit = "max_execution_time"

    def connect(self) -> Any:
        pymysql = self.driver()
        connection = pymysql.connect(**self.url.mysql_params(), autocommit=True, connect_timeout=CONNECT_TIMEOUT,
                                     read_timeout=RETRY_SECONDS, write_timeout=RETRY_SECONDS)
        # MariaDB bounds every statement (seconds, fractions allowed); MySQL only SELECTs (ms).
        if "mariadb" in connection.get_server_info().lower():
            self._statement_limit = "max_statement_time"
        return connection

    def execute(self, connection: Any, query: str, parameters: tuple[Any, ...]) -> Any:
        cursor = connection.cursor()
        # No parameters: None, so that PyMySQL does not %-format the statement.
        cursor.execute(self.dialect(query), parameters or None)
        return cursor

    def begin(self, db: Statements, write: bool, remaining: float) -> None:
        statement = max(remaining - _SERVER_MARGIN, 0.05)
        # Lock waits are whole seconds in MySQL and MariaDB (at least one); the statement limit
        # ends a longer one within the budget.
        lock = max(1, int(min(BUSY_TIMEOUT, statement)))
        limit = f"{statement:.3f}" if self._statement_limit == "max_statement_time" else str(int(statement * 1000))
        db.execute(f"SET SESSION innodb_lock_wait_timeout = {lock}, lock_wait_timeout = {lock}, "
                   f"{self._statement_limit} = {limit}")
        db.execute("START TRANSACTION")

    def retryable(self, exc: Exception) -> bool:
        return _mysql_code(exc) in (_MYSQL_LOCK_WAIT, _MYSQL_DEADLOCK)

    def broken(self, connection: Any) -> bool:
        return not getattr(connection, "open", False)

    def undefined(self, exc: Exception) -> str | None:
        code = _mysql_code(exc)
        return "table" if code == _MYSQL_NO_TABLE else "column" if code == _MYSQL_NO_COLUMN else None

    def gave_up(self, exc: Exception, budget: float, says: Wording) -> tuple[str, str]:
        if _mysql_code(exc) == _MYSQL_LOCK_WAIT:
            return (f"another session held a lock on {says.tables} for {budget:g} s",
                    says.hint("look for it in SHOW PROCESSLIST (a LOCK TABLES, or a transaction left open)"))
        return super().gave_up(exc, budget, says)

    def cause(self, exc: Exception, budget: float, says: Wording) -> tuple[str, str] | None:
        code = _mysql_code(exc)
        if code in _MYSQL_STATEMENT_TIME:
            return (f"{says.database} did not finish a statement within {budget:g} s",
                    says.hint("the server is overloaded or something holds it up"))
        if code in _MYSQL_LOST and "timed out" in str(exc):
            return _silent(budget, says)
        return None


def _mysql_code(exc: Exception) -> int | None:
    code = exc.args[0] if exc.args else None
    return code if isinstance(code, int) else None


def _silent(budget: float, says: Wording) -> tuple[str, str]:
    return (f"{says.database} did not answer within {budget:g} s", says.hint("check the server and the network to it"))


_KINDS: dict[str, type[Backend]] = {kind.name: kind for kind in (Sqlite, Postgres, Mysql)}


def backend_for(url: DbUrl, *, where: str | None = None, prepare: Callable[[Path], None] | None = None) -> Backend:
    """The backend of `url` (its scheme read by `dburl`); `where` names it in messages (default:
    the URL, password masked, or the SQLite file); `prepare` is run on a SQLite file before
    every connection."""
    return _KINDS[url.backend].of(url, where=where, prepare=prepare)


class _NoWatch:
    """The deadline of a backend that needs no watchdog (SQLite bounds its own waits)."""

    fired = False

    def __enter__(self) -> _NoWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class _Watchdog:
    """Cuts a connection at a deadline, so a call blocked on a server that stopped answering (a
    stopped backend, a network that drops everything) returns with an error.

    libpq offers no per-query deadline that holds when the server goes silent: keepalives need
    an idle connection and statement_timeout a server that runs. Shutting the socket down makes
    the blocked read return at once; the connection is then dropped and the next operation
    connects again.
    """

    def __init__(self, fileno: Callable[[], int], deadline: float) -> None:
        import threading  # noqa: PLC0415

        self._fileno = fileno
        self._lock = threading.Lock()
        self._done = False
        self.fired = False
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()

    def _fire(self) -> None:
        import socket  # noqa: PLC0415

        with self._lock:
            if self._done:
                return
            self.fired = True
            with contextlib.suppress(Exception):
                # A duplicate of the descriptor: shutting it down ends the connection for the
                # blocked reader, closing it leaves the connection's own descriptor alone.
                with socket.socket(fileno=os.dup(self._fileno())) as sock:
                    sock.shutdown(socket.SHUT_RDWR)


class Statements:
    """A connection whose `execute` takes the callers' one SQL dialect (`?` placeholders)."""

    __slots__ = ("_connection", "_backend")

    def __init__(self, connection: Any, backend: Backend) -> None:
        self._connection = connection
        self._backend = backend

    def execute(self, query: str, parameters: tuple[Any, ...] = ()) -> Any:
        return self._backend.execute(self._connection, query, parameters)


class Database:
    """One connection to one database, and the transaction core that runs work on it. Open with
    `Database.open(backend, wording)`; use as a context manager."""

    def __init__(self, backend: Backend, says: Wording) -> None:
        self.backend = backend
        self.says = says
        #: The file, or the URL with its password masked: what messages name.
        self.where = backend.where
        self._connection: Any = None
        # The connection was cut (a server that did not answer in time): the next operation
        # connects again rather than failing for the rest of a long run.
        self._lost = False

    @classmethod
    def open(cls, backend: Backend, says: Wording) -> Database:
        database = cls(backend, says)
        database._connection = database._connect()
        return database

    def _connect(self) -> Any:
        from rtppctl.dburl import first_line  # noqa: PLC0415

        try:
            return self.backend.connect()
        except ConfigError:
            raise
        except Exception as exc:
            if not self.backend.is_error(exc):
                raise
            raise ConfigError(f"{self.where}: {self.backend.refused} {self.says.database}: "
                              f"{first_line(exc, self.backend.secret)}", self.backend.connect_hint) from None

    @property
    def connection(self) -> Any:
        """The connection; a new one after the last was cut."""
        if self._connection is None:
            if not self._lost:
                raise ValueError(f"{self.says.database} {self.where} is closed")
            self._connection = self._connect()
            self._lost = False
        return self._connection

    def statements(self) -> Statements:
        return Statements(self.connection, self.backend)

    def close(self) -> None:
        """Close the connection; closing twice is harmless."""
        self._lost = False
        if self._connection is not None:
            connection, self._connection = self._connection, None
            with contextlib.suppress(Exception):
                connection.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def _lose_connection(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            self._lost = True
            with contextlib.suppress(Exception):
                connection.close()

    def transaction(self, work: Callable[[Statements], _T], *, write: bool,
                    explain: Callable[[Exception, str], ConfigError | None] | None = None) -> _T:
        """Run `work` in one transaction; a write takes its lock (SQLite) or runs SERIALIZABLE
        (PostgreSQL) from the start, so a conflict shows at once and is retried whole. `explain`
        may name what a driver's error (given with its scrubbed first line) means to the caller."""

        def attempt(remaining: float) -> _T:
            db = self.statements()
            self.backend.begin(db, write, remaining)
            try:
                result = work(db)
                db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):
                    db.execute("ROLLBACK")
                raise
            return result

        return self.retrying(attempt, explain=explain)

    def outside(self, statement: str) -> list[tuple[Any, ...]]:
        """One statement outside any transaction (a setting such as SQLite's journal mode), its
        waits bounded and retried as a transaction's are."""

        def attempt(remaining: float) -> list[tuple[Any, ...]]:
            db = self.statements()
            self.backend.bound(db, remaining)
            return db.execute(statement).fetchall()

        return self.retrying(attempt)

    def retrying(self, attempt: Callable[[float], _T], *,
                 explain: Callable[[Exception, str], ConfigError | None] | None = None) -> _T:
        """`attempt(seconds left)`, again after a pause while the database says "busy, try again",
        all within RETRY_SECONDS; database errors as ConfigError naming the database and the cause."""
        import random  # noqa: PLC0415

        backend = self.backend
        budget = RETRY_SECONDS
        deadline = time.monotonic() + budget
        pause = 0.005
        connection = self.connection
        with backend.deadline(connection, deadline) as watch:
            while True:
                try:
                    return attempt(deadline - time.monotonic())
                except Exception as exc:
                    if watch.fired:
                        # The client-side deadline cut the connection: the server did not answer.
                        self._lose_connection()
                        message, hint = _silent(budget, self.says)
                        raise ConfigError(f"{self.where}: {message}", hint) from None
                    if not backend.is_error(exc):
                        raise
                    if backend.broken(connection):
                        # Cut (the server ended the session, the network went): no try can work
                        # on it; the next operation connects again.
                        self._lose_connection()
                        raise self._failure(exc, budget, explain) from None
                    if not backend.retryable(exc):
                        raise self._failure(exc, budget, explain) from None
                    left = deadline - time.monotonic()
                    if left < backend.min_try:
                        message, hint = backend.gave_up(exc, budget, self.says)
                        raise ConfigError(f"{self.where}: {message}", hint) from None
                    # Growing pauses with jitter, so the waiting processes do not all come back at once.
                    time.sleep(min(pause * (0.5 + random.random()), left - backend.min_try))
                    pause = min(pause * 2, 0.2)

    def _failure(self, exc: Exception, budget: float,
                 explain: Callable[[Exception, str], ConfigError | None] | None) -> ConfigError:
        from rtppctl.dburl import first_line  # noqa: PLC0415

        cause = self.backend.cause(exc, budget, self.says)
        if cause is not None:
            return ConfigError(f"{self.where}: {cause[0]}", cause[1])
        line = first_line(exc, self.backend.secret)
        explained = explain(exc, line) if explain is not None else None
        if explained is not None:
            return explained
        return ConfigError(f"{self.where}: {self.says.database} cannot be used: {line}", self.says.unusable)


__all__ = [
    "BUSY_TIMEOUT", "CONNECT_HINT", "CONNECT_TIMEOUT", "IDLE_IN_TRANSACTION_TIMEOUT", "KEEPALIVE", "RETRY_SECONDS",
    "Backend", "Database", "Mysql", "Postgres", "Sqlite", "Statements", "Wording", "backend_for",
]
