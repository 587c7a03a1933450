"""Database URLs as the module and rtppctl write them: which backend, its parts, and how to show one.

`db_url` (the relay table) and `state_url` (shared state) take `sqlite:///path`, `postgresql://...`
(`postgres://` too) and, for the table only, `mysql://...`. This module is the one place that
reads them (which backend a scheme means is `DbUrl.backend`, and nothing else looks at a
scheme) and the one place that keeps their secrets out of messages. No database module is
imported here: connecting is `rtppctl.db`'s.

Reading (`parse_db_url`): every part is checked, and a malformed one is a `ConfigError` (exit 5)
naming the part, with the password masked:

- `user:password@` ends at the last `@`; the user name ends at the first `:`. The password may
  hold `/ : ? #` unencoded, as OpenSIPS's own URL parser allows (db/db_id.c: "Only @ terminates
  password"), but not `@`: OpenSIPS would end the password at the first one, so it must be
  written `%40`.
- Host and port: a host name, an IPv4 address or `[IPv6]`; a port 1..65535. PostgreSQL also
  takes several `host:port` separated by commas, and an empty host or a `%2F`-encoded directory
  (libpq's unix socket); MySQL needs one host.
- Every part's `%xx` escapes must be whole and decode to UTF-8 text without NUL.
- `sqlite:///relative.db` and `sqlite:////absolute.db` as in SQLAlchemy; the path's `%xx` escapes
  are decoded and `?` and `#` are part of the file name (`sqlite_uri` escapes them again).
- The parts, not the URL, go to the drivers (`libpq_params`, `mysql_params`), so a driver never
  reads a password rtppctl read differently, and never echoes a URL it could not read.

Showing: `mask(url)` replaces the password of any URL form with `***`: `user:password@` (up to the
last `@`, whatever the password holds), and the value of every query key that names a password
(`password=`, `pass=`, `passwd=`, `pwd=`, `sslpassword=`, any case), parseable or not.
`scrub(text, *urls)` is the one function every message that can carry a URL goes through, ours or
a driver's: it removes each URL's secrets literally (as written, percent-decoded, and every piece
of four characters or more between URL delimiters, which is what a driver quoting a fragment of
a connection string can show), masks every URL-looking word and every `password=value` pair.
`first_line(exc, *urls)` is a driver's error, scrubbed, as one bounded line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

from rtppctl.proto.errors import ConfigError
from rtppctl.proto.text import clip, ip_literal, shown

SCHEMES = {"sqlite": "sqlite", "postgresql": "postgresql", "postgres": "postgresql", "mysql": "mysql"}

#: The most characters of a URL a message shows (masked first, then cut).
URL_ECHO_LIMIT = 300
#: The most characters of a driver's message a message shows.
DRIVER_ECHO_LIMIT = 300
#: Pieces of a secret at least this long are removed from a driver's message on their own.
MIN_SECRET_PIECE = 4

_HINT = "use sqlite:///path/to/file.db, postgresql://user:password@host/dbname or mysql://user:password@host/dbname"
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_HOST_NAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9._-]*[A-Za-z0-9_.])?")
# A key naming a password, in a URL query or a driver's "key=value" text.
_SECRET_KEY = r"(?<![A-Za-z0-9_])[A-Za-z_]*(?:pass(?:word|wd)?|pwd)"
_QUERY_SECRET = re.compile(rf"(?i){_SECRET_KEY}\s*=")
_PAIR_SECRET = re.compile(rf"""(?i)({_SECRET_KEY}\s*=\s*)('(?:[^'\\]|\\.)*'?|"(?:[^"\\]|\\.)*"?|[^\s&,;)]*)""")
_SCHEME_PREFIX = re.compile(r"(?i)(?:sqlite|postgresql|postgres|mysql):/*")
_ANY_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")
_PIECE_DELIMITERS = re.compile(r"[@/:?#&=%\s'\"]+")


@dataclass(frozen=True)
class DbUrl:
    """A parsed database URL: its parts decoded."""

    #: "sqlite", "postgresql" or "mysql".
    backend: str
    #: The URL as given.
    url: str
    #: For sqlite: the database file.
    path: Path | None = None
    user: str | None = None
    #: None when the URL has no `:password`.
    password: str | None = None
    #: Host names or addresses, brackets removed ("" for libpq's default); one for MySQL.
    hosts: tuple[str, ...] = ()
    #: The port of each host, None where none is written.
    ports: tuple[int | None, ...] = ()
    database: str | None = None
    #: The query's key=value pairs, decoded, in order.
    params: tuple[tuple[str, str], ...] = ()

    @property
    def shown(self) -> str:
        """The URL with its password masked, bounded: safe for messages."""
        return mask(self.url)

    def libpq_params(self) -> dict[str, str]:
        """Keyword arguments for `psycopg.connect`: the URL's meaning, never re-read by libpq."""
        params: dict[str, str] = {}
        if any(self.hosts):
            params["host"] = ",".join(self.hosts)
        if any(port is not None for port in self.ports):
            params["port"] = ",".join("" if port is None else str(port) for port in self.ports)
        if self.user:
            params["user"] = self.user
        if self.password is not None:
            params["password"] = self.password
        if self.database:
            params["dbname"] = self.database
        params.update(self.params)  # as in a libpq URI, the query has the last word
        return params

    def mysql_params(self) -> dict[str, object]:
        """Keyword arguments for `pymysql.connect`. The password goes as UTF-8 bytes: PyMySQL
        would encode text as Latin-1, and fail on any other character."""
        return {
            "host": self.hosts[0] if self.hosts else "localhost",
            "port": (self.ports[0] if self.ports else None) or 3306,
            "user": self.user or "",
            "password": (self.password or "").encode("utf-8"),
            "database": self.database,
        }

    def sqlite_uri(self, mode: str = "rw") -> str:
        """A `file:` URI for sqlite3 naming exactly `path`: `?`, `#`, `%` and the rest escaped."""
        assert self.path is not None
        return sqlite_uri(self.path, mode)


def sqlite_uri(path: Path, mode: str = "rw") -> str:
    """A `file:` URI for sqlite3 naming exactly the file `path`: `?`, `#`, `%` and the rest escaped."""
    # file:// + an absolute path: an empty authority, so even a path starting with // is a path.
    return f"file://{quote(str(path.absolute()), safe='/')}?mode={mode}"


def is_db_url(value: str) -> bool:
    """True when `value` is written as a database URL (scheme://...), not as a file path."""
    scheme, sep, _ = value.partition("://")
    return bool(sep) and scheme.lower() in SCHEMES


def parse_db_url(value: str, what: str = "db_url") -> DbUrl:
    """`value` as a DbUrl; ConfigError naming `what` and the malformed part otherwise."""
    scheme, sep, rest = value.partition("://")
    backend = SCHEMES.get(scheme.lower()) if sep else None
    if backend is None:
        raise ConfigError(f"{_prefix(what)}{_quoted(value)} is not a database URL rtppctl knows", _HINT)
    if backend == "sqlite":
        return _sqlite(value, rest, what)
    return _server(backend, value, rest, what)


def _prefix(what: str) -> str:
    return f"{what}: " if what else ""


def _quoted(url: str) -> str:
    return shown(_masked(url), 120)


def _bad(what: str, url: str, problem: str, hint: str | None = None) -> ConfigError:
    return ConfigError(f"{_prefix(what)}{_quoted(url)}: {problem}", hint)


def _echo(value: str, url: str) -> str:
    """" 'value'" for a message, or nothing when `value` may be a piece of a password: a URL read
    one way can put part of the password where the host or port is read."""
    if any(value in url[begin:end] for begin, end in _secret_spans(url)):
        return ""
    return " " + shown(value, 60)


def _decode(raw: str, part: str, what: str, url: str) -> str:
    """A part's %xx escapes decoded; the messages never quote the part (it may be the password)."""
    if _BAD_ESCAPE.search(raw):
        raise _bad(what, url, f"{part} has a bad percent-escape: '%' must start two hex digits",
                   "write % itself as %25")
    try:
        text = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise _bad(what, url, f"{part} is not UTF-8 text once its %-escapes are decoded") from None
    if "\x00" in text:
        raise _bad(what, url, f"{part} holds a NUL character (%00)")
    return text


def _sqlite(value: str, rest: str, what: str) -> DbUrl:
    if not rest.startswith("/"):
        raise _bad(what, value, "a sqlite URL has no host or user before the path",
                   "write sqlite:///relative/file.db or sqlite:////absolute/file.db")
    # sqlite:///relative.db and sqlite:////absolute.db as in SQLAlchemy; sqlite:///:memory: is
    # no use for a table other processes read.
    raw = rest[1:]
    if not raw or raw == ":memory:":
        raise _bad(what, value, "names no database file", "write sqlite:///path/to/file.db")
    return DbUrl("sqlite", value, Path(_decode(raw, "the path", what, value)).expanduser())


def _server(backend: str, value: str, rest: str, what: str) -> DbUrl:
    # user:password@ ends at the last '@' (the password may hold '/', '?' and '#', as OpenSIPS
    # allows), unless that '@' is in a key=value of the query (application_name=a@b); an '@'
    # after a '/', '?' or '#' of the user name belongs to the path or query too.
    userinfo = None
    at = rest.rfind("@")
    query_at = rest.find("?")
    if 0 <= query_at < at and "=" in rest[query_at:at]:
        at = rest.rfind("@", 0, query_at)
    if at >= 0 and not any(char in rest[:at].partition(":")[0] for char in "/?#"):
        userinfo, rest = rest[:at], rest[at + 1 :]
    authority = re.match(r"[^/?]*", rest).group()  # type: ignore[union-attr] - always matches
    tail = rest[len(authority) :]
    if tail.startswith("/"):
        database_raw, _, query = tail[1:].partition("?")
    else:  # "?query" or nothing
        database_raw, query = "", tail[1:]

    user = password = None
    if userinfo is not None:
        user_raw, colon, password_raw = userinfo.partition(":")
        if "@" in user_raw:
            raise _bad(what, value, "the user name holds an unencoded '@'", "write it as %40")
        if "@" in password_raw:
            raise _bad(what, value, "the password holds an unencoded '@' (OpenSIPS ends the password at the first '@')",
                       "write it as %40")
        user = _decode(user_raw, "the user name", what, value)
        password = _decode(password_raw, "the password", what, value) if colon else None

    pieces = authority.split(",")
    if backend == "mysql" and len(pieces) > 1:
        raise _bad(what, value, "names several hosts; MySQL takes one")
    hosts: list[str] = []
    ports: list[int | None] = []
    for piece in pieces:
        host, port = _host_port(backend, piece, what, value)
        hosts.append(host)
        ports.append(port)

    database = _decode(database_raw, "the database name", what, value) if database_raw else None
    if backend == "mysql" and not database:
        raise _bad(what, value, "names no database", "write mysql://user:password@host/dbname")
    params: list[tuple[str, str]] = []
    for item in query.split("&") if query else ():
        if not item:
            continue
        key_raw, eq, value_raw = item.partition("=")
        if not eq or not key_raw:
            # Not quoted: a bare item may be a password written without its key.
            raise _bad(what, value, "a query parameter is not written key=value")
        key = _decode(key_raw, "a query parameter's name", what, value)
        params.append((key, _decode(value_raw, f"the query parameter {shown(key, 40)}", what, value)))
    return DbUrl(backend, value, None, user, password, tuple(hosts), tuple(ports), database, tuple(params))


def _host_port(backend: str, piece: str, what: str, url: str) -> tuple[str, int | None]:
    if piece.startswith("["):
        end = piece.find("]")
        if end < 0:
            raise _bad(what, url, "the IPv6 host has no closing ']'")
        host, after = piece[1:end], piece[end + 1 :]
        literal = ip_literal(host, allow_zone=True)
        if literal is None or literal.version != 6:
            raise _bad(what, url, f"the host{_echo(f'[{host}]', url)} is not an IPv6 address")
        if after and not after.startswith(":"):
            raise _bad(what, url, f"text{_echo(after, url)} follows the IPv6 host; expected ':port'")
        port_raw = after[1:] if after else None
    else:
        host_raw, colon, port_raw_text = piece.partition(":")
        port_raw = port_raw_text if colon else None
        host = _decode(host_raw, "the host", what, url)
        unix_dir = backend == "postgresql" and host.startswith("/")
        if host and not unix_dir and not (_HOST_NAME.fullmatch(host) or ip_literal(host)):
            raise _bad(what, url, f"the host{_echo(host, url)} is not a host name or IP address",
                       "an IPv6 address goes in brackets: [2001:db8::1]:5432")
    if not host and backend == "mysql":
        raise _bad(what, url, "names no host", "write mysql://user:password@host/dbname")
    if port_raw is None:
        return host, None
    if not port_raw:
        raise _bad(what, url, "the port after ':' is empty")
    if not (len(port_raw) <= 5 and port_raw.isascii() and port_raw.isdigit() and 1 <= int(port_raw) <= 65535):
        raise _bad(what, url, f"the port{_echo(port_raw, url)} is not a number 1..65535")
    return host, int(port_raw)


# -- keeping secrets out of messages ------------------------------------------------------------------


def _secret_spans(url: str, *, merged: bool = True) -> list[tuple[int, int]]:
    """Where `url` may hold a password: user:PASSWORD@ (to the last '@') and password-like query
    values (to the next '&'); in order, overlapping ones merged unless told not to."""
    spans = []
    # Where user:password may start: after "scheme://", after a known scheme written with fewer
    # slashes ("postgresql:/u:p@h" is no URL, but its message must not show p either), else at 0.
    prefix = _SCHEME_PREFIX.match(url) or _ANY_SCHEME.match(url)
    start = prefix.end() if prefix else 0
    at = url.rfind("@", start)
    colon = url.find(":", start, at) if at >= 0 else -1
    if colon >= 0:
        spans.append((colon + 1, at))
    for match in _QUERY_SECRET.finditer(url, start):
        end = url.find("&", match.end())
        spans.append((match.end(), len(url) if end < 0 else end))
    if not merged:
        return spans
    joined: list[tuple[int, int]] = []
    for begin, end in sorted(spans):
        if joined and begin <= joined[-1][1]:
            joined[-1] = (joined[-1][0], max(end, joined[-1][1]))
        else:
            joined.append((begin, end))
    return joined


def mask(url: str) -> str:
    """`url` with every password replaced by `***`, bounded for a message; works on any text."""
    return clip(_masked(url), URL_ECHO_LIMIT)


def _masked(url: str) -> str:
    spans = _secret_spans(url)
    pieces, last = [], 0
    for begin, end in spans:
        pieces += [url[last:begin], "***"]
        last = end
    pieces.append(url[last:])
    return "".join(pieces)


def secrets(url: str) -> list[str]:
    """The texts a message must not show for `url`: each password as written and decoded, and
    their pieces of MIN_SECRET_PIECE characters or more; longest first."""
    found: set[str] = set()
    for begin, end in _secret_spans(url, merged=False):
        raw = url[begin:end]
        # The span runs to the last '@'; a reader (OpenSIPS, libpq) may end the password at an
        # earlier one, and that shorter password is as secret.
        shorter = [raw[:index] for index, char in enumerate(raw) if char == "@"]
        for text in (raw, unquote(raw), *shorter, *map(unquote, shorter)):
            found.add(text)
            found.update(piece for piece in _PIECE_DELIMITERS.split(text) if len(piece) >= MIN_SECRET_PIECE)
    found.discard("")
    return sorted(found, key=lambda text: (-len(text), text))


def scrub(text: str, *urls: str | None) -> str:
    """`text` (a message, ours or a driver's) without any secret of `urls` and with every
    URL-looking word and `password=value` pair masked. Not bounded: see `first_line`."""
    for secret in sorted({s for url in urls if url for s in secrets(url)}, key=lambda s: (-len(s), s)):
        text = text.replace(secret, "***")
    text = _URL_IN_TEXT.sub(lambda match: mask(match.group()), text)
    return _PAIR_SECRET.sub(lambda match: match.group(1) + "***", text)


def first_line(exc: BaseException, *urls: str | None) -> str:
    """A driver's error as one line, scrubbed of `urls`' secrets (and of any password it shows)
    and bounded: drivers add hints and context on further lines, and may quote the URL."""
    text = scrub(str(exc), *urls).strip()
    return clip(text.splitlines()[0], DRIVER_ECHO_LIMIT) if text else type(exc).__name__


__all__ = [
    "DRIVER_ECHO_LIMIT", "DbUrl", "SCHEMES", "URL_ECHO_LIMIT", "first_line", "is_db_url", "mask", "parse_db_url",
    "scrub", "secrets", "sqlite_uri",
]
