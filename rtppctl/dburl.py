"""Database URLs as the module and rtppctl write them: which backend, where, and how to show one.

It also gives a database driver's error in one line (`first_line`), the form every message takes.

`db_url` (the relay table) and `state_url` (shared state) take `sqlite:///path`, `postgresql://...`
(`postgres://` too) and, for the table only, `mysql://...`. This module is the one place that
tells them apart and that masks a password before a URL reaches a message or a log line. No
database module is imported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from rtppctl.proto.errors import ConfigError

SCHEMES = {"sqlite": "sqlite", "postgresql": "postgresql", "postgres": "postgresql", "mysql": "mysql"}


@dataclass(frozen=True)
class DbUrl:
    """A parsed database URL."""

    #: "sqlite", "postgresql" or "mysql".
    backend: str
    #: The URL as given.
    url: str
    #: For sqlite: the database file.
    path: Path | None = None

    @property
    def shown(self) -> str:
        """The URL with its password masked: safe for messages."""
        return mask(self.url)


def is_db_url(value: str) -> bool:
    """True when `value` is written as a database URL (scheme://...), not as a file path."""
    scheme, sep, _ = value.partition("://")
    return bool(sep) and scheme.lower() in SCHEMES


def parse_db_url(value: str, what: str = "db_url") -> DbUrl:
    """`value` as a DbUrl; ConfigError naming `what` when it is not one rtppctl can use."""
    scheme, sep, rest = value.partition("://")
    backend = SCHEMES.get(scheme.lower()) if sep else None
    if backend is None:
        raise ConfigError(
            f"{what + ': ' if what else ''}{mask(value)!r} is not a database URL rtppctl knows",
            "use sqlite:///path/to/file.db, postgresql://user:password@host/dbname or mysql://user:password@host/dbname",
        )
    if backend == "sqlite":
        # sqlite:///relative.db and sqlite:////absolute.db as in SQLAlchemy; sqlite:///:memory: is
        # no use for a table other processes read.
        path = rest[1:] if rest.startswith("/") else rest
        if not path or path == ":memory:":
            raise ConfigError(f"{what + ': ' if what else ''}{value!r} names no database file",
                              "write sqlite:///path/to/file.db")
        return DbUrl(backend, value, Path(unquote(path)).expanduser())
    return DbUrl(backend, value)


def mask(url: str) -> str:
    """`url` with the password replaced by ***; anything that does not parse is returned as is."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        port = parts.port
    except ValueError:
        # Unparseable: hide everything between the scheme and the host rather than risk a password.
        scheme, sep, rest = url.partition("://")
        return f"{scheme}{sep}***@{rest.rpartition('@')[2]}" if "@" in rest else url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{port}" if port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def first_line(exc: BaseException) -> str:
    """A driver's error as one line: drivers add hints and context on further lines."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


__all__ = ["DbUrl", "SCHEMES", "first_line", "is_db_url", "mask", "parse_db_url"]
