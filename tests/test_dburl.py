"""Database URLs: every part checked (exit 5 naming it), parts given to the drivers, and no password
of any URL form in any message, ours or a real driver's (psycopg, PyMySQL, sqlite3).

The drivers run for real: psycopg and PyMySQL against 127.0.0.1 on a closed port (libpq is given
hostaddr=127.0.0.1, so whatever it makes of a URL it never resolves a name or leaves loopback),
sqlite3 on files in a temp dir.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rtppctl import sources
from rtppctl.config import config_from_mapping
from rtppctl.dburl import (
    DRIVER_ECHO_LIMIT, URL_ECHO_LIMIT, first_line, mask, parse_db_url, scrub, secrets,
)
from rtppctl.proto.errors import ConfigError, ExitCode
from tests.relay import free_port

#: A TCP port nothing listens on, for the drivers to be refused at once.
CLOSED = free_port()


def refused(url: str, what: str = "db_url") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_db_url(url, what)
    assert info.value.exit_code == ExitCode.CONFIG
    assert "\n" not in info.value.message
    return info.value


# -- reading ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "problem"), [
    ("mysql://u:s3cret@db:99999/opensips", "the port '99999' is not a number 1..65535"),
    ("mysql://u:s3cret@db:0/opensips", "the port '0' is not a number 1..65535"),
    ("mysql://u:s3cret@db:33o6/opensips", "the port '33o6' is not a number 1..65535"),
    ("postgresql://u:s3cret@db:/opensips", "the port after ':' is empty"),
    ("postgresql://u:s3cret@db:" + "9" * 5000 + "/x", "is not a number 1..65535"),
    ("mysql://u:s3cret@/opensips", "names no host"),
    ("mysql://u:s3cret@db", "names no database"),
    ("mysql://u:s3cret@a,b/opensips", "names several hosts; MySQL takes one"),
    ("postgresql://u:s3cret@db host/x", "the host 'db host' is not a host name or IP address"),
    ("postgresql://u:s3cret@[::1/x", "the IPv6 host has no closing ']'"),
    ("postgresql://u:s3cret@[10.0.0.1]/x", "the host '[10.0.0.1]' is not an IPv6 address"),
    ("postgresql://u:s3cret@[::1]x/x", "text 'x' follows the IPv6 host; expected ':port'"),
    ("postgresql://u:s3%zzret@db/x", "the password has a bad percent-escape"),
    ("postgresql://u:s3cret%@db/x", "the password has a bad percent-escape"),
    ("postgresql://u%2:s3cret@db/x", "the user name has a bad percent-escape"),
    ("postgresql://u:s3cret@db/x%4", "the database name has a bad percent-escape"),
    ("postgresql://u:s3cret@d%zzb/x", "the host has a bad percent-escape"),
    ("postgresql://u:s3cret@db/x?sslmode=%", "the query parameter 'sslmode' has a bad percent-escape"),
    ("postgresql://u:s3cret@db/x?sslmode", "a query parameter is not written key=value"),
    ("postgresql://u:s3%ffret@db/x", "the password is not UTF-8 text once its %-escapes are decoded"),
    ("postgresql://u:s3%00ret@db/x", "the password holds a NUL character (%00)"),
    ("postgresql://u:s3c@ret@db/x", "the password holds an unencoded '@'"),
    ("postgresql://u@x:s3cret@db/x", "the user name holds an unencoded '@'"),
    ("postgresql://u:pa?s=s@db/x", "the port is not a number 1..65535"),  # 'pa' is not echoed: a piece of the password
    ("sqlite://u:s3cret@/x.db", "a sqlite URL has no host or user before the path"),
    ("sqlite:///", "names no database file"),
    ("sqlite:///:memory:", "names no database file"),
    ("sqlite:///x%zz.db", "the path has a bad percent-escape"),
    ("sqlite:///x%00.db", "the path holds a NUL character (%00)"),
    ("redis://u:s3cret@db/0", "is not a database URL rtppctl knows"),
    ("postgresql:/u:s3cret@db/x", "is not a database URL rtppctl knows"),
])
def test_every_malformed_part_is_a_config_error_naming_it_with_the_password_masked(url, problem):
    error = refused(url)
    assert problem in error.message
    assert error.message.startswith("db_url: '")
    assert "s3cret" not in error.message
    assert "s3cret" not in (error.hint or "")
    assert len(error.message) < 400


def test_the_password_may_hold_what_opensips_allows_and_the_drivers_get_the_parts():
    # OpenSIPS's db/db_id.c, parse_db_url: "to allow support for '/' characters in password" the
    # password runs to the '@' ("Only @ terminates password"); ':' , '?' and '#' are no delimiters there.
    url = parse_db_url("postgres://ops:p#ss//w?r:d%40x@db.example.net:6432/opensips?sslmode=require&application_name=rtppctl")
    assert (url.user, url.password, url.hosts, url.ports, url.database) == (
        "ops", "p#ss//w?r:d@x", ("db.example.net",), (6432,), "opensips")
    assert url.libpq_params() == {
        "host": "db.example.net", "port": "6432", "user": "ops", "password": "p#ss//w?r:d@x", "dbname": "opensips",
        "sslmode": "require", "application_name": "rtppctl",
    }
    mysql = parse_db_url("mysql://opensips:opensipsrw@192.168.2.132/opensips")
    assert mysql.mysql_params() == {"host": "192.168.2.132", "port": 3306, "user": "opensips", "password": b"opensipsrw",
                                    "database": "opensips"}


@pytest.mark.parametrize(("url", "params"), [
    ("postgresql:///opensips", {"dbname": "opensips"}),  # libpq's default unix socket
    ("postgresql://%2Frun%2Fpostgresql/opensips", {"host": "/run/postgresql", "dbname": "opensips"}),
    ("postgresql://u@[::1]:5433,10.0.0.2/db", {"host": "::1,10.0.0.2", "port": "5433,", "user": "u", "dbname": "db"}),
    ("postgresql://h/db?application_name=a@b", {"host": "h", "dbname": "db", "application_name": "a@b"}),
    ("postgresql://h/db?password=s3cret", {"host": "h", "dbname": "db", "password": "s3cret"}),
])
def test_postgresql_forms_libpq_takes(url, params):
    assert parse_db_url(url).libpq_params() == params


def test_an_empty_what_leaves_the_prefix_out():
    assert refused("mysql://u:pw@h:0/db", "").message == "'mysql://u:***@h:0/db': the port '0' is not a number 1..65535"


# -- sqlite: the file named, whatever its name holds --------------------------------------------------


@pytest.mark.parametrize("name", ["a?mode=ro.db", "b#frag.db", "c%41.db", "d e.db", "é.db", "f?g#h%25i.db"])
def test_sqlite_opens_exactly_the_file_the_url_names(tmp_path, name):
    # The path's %xx escapes are decoded (c%41.db names cA.db); ?, # and % of the decoded name are
    # escaped again in the file: URI, so sqlite3 opens that file and no other.
    tmp_path = tmp_path / "db"
    tmp_path.mkdir()
    url = parse_db_url(f"sqlite:///{tmp_path}/{name}")
    expected = tmp_path / name.replace("%41", "A").replace("%25", "%")
    assert url.path == expected
    sqlite3.connect(expected).close()  # the file exists, empty
    connection = sqlite3.connect(url.sqlite_uri("rw"), uri=True)
    connection.execute("CREATE TABLE t (x)")
    connection.commit()
    connection.close()
    assert sorted(path.name for path in tmp_path.iterdir()) == [expected.name]
    assert sqlite3.connect(expected).execute("SELECT name FROM sqlite_master").fetchall() == [("t",)]


def test_sqlite_refuses_to_create_a_file_by_mode_rw(tmp_path):
    tmp_path = tmp_path / "db"
    tmp_path.mkdir()
    url = parse_db_url(f"sqlite:///{tmp_path}/missing?x.db")
    with pytest.raises(sqlite3.OperationalError):
        sqlite3.connect(url.sqlite_uri("rw"), uri=True)
    assert list(tmp_path.iterdir()) == []


# -- mask: any URL form ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://ops:s3cret@db/x", "postgresql://ops:***@db/x"),
    ("postgresql://ops:s3c@r/et@db:5432/x", "postgresql://ops:***@db:5432/x"),  # '@' and '/' in it: to the last '@'
    ("mysql://ops:a:b?c#d@db/x", "mysql://ops:***@db/x"),
    ("postgresql://ops@db/x?sslmode=require&PassWord=s3cret&x=1", "postgresql://ops@db/x?sslmode=require&PassWord=***&x=1"),
    ("postgresql://db/x?pass=s3cret", "postgresql://db/x?pass=***"),
    ("postgresql://db/x?sslpassword=s3cret", "postgresql://db/x?sslpassword=***"),
    ("postgresql://db/x?passfile=/home/u/.pgpass", "postgresql://db/x?passfile=/home/u/.pgpass"),
    ("postgresql:/ops:s3cret@db/x", "postgresql:/ops:***@db/x"),  # a slash short: still masked
    ("mysql:ops:s3cret@db/x", "mysql:ops:***@db/x"),
    ("ops:s3cret@db", "ops:***@db"),
    ("sqlite:///var/lib/relays.db", "sqlite:///var/lib/relays.db"),
    ("postgresql://h:5432/db", "postgresql://h:5432/db"),
])
def test_mask_examples(url, shown):
    assert mask(url) == shown


def test_mask_is_bounded():
    shown = mask("postgresql://ops:s3cret@db/" + "x" * 10_000_000)
    assert len(shown) < URL_ECHO_LIMIT + 40 and shown.endswith("(10000024 characters)") and "s3cret" not in shown


_SCHEMES = st.sampled_from(["postgresql", "postgres", "mysql", "sqlite", "PostgreSQL", "MYSQL"])
_USERS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-", max_size=8)
_HOSTS = st.sampled_from(["127.0.0.1", "db.example.net", "[::1]", "", "localhost", "[::1", "d b"])
_PORTS = st.sampled_from(["", ":5432", ":99999", ":x", ":"])
_DATABASES = st.sampled_from(["", "/opensips", "/db?sslmode=require", "/a/b", "/x?y=a@b"])
#: URL delimiters, escapes and unicode: what breaks naive masking.
_PASSWORD_CHARS = st.one_of(
    st.sampled_from(list("/@:?#%&=[]; '\"\\\n")), st.sampled_from(["%40", "%2F", "%zz", "%", "é", "пароль", "🔑"]),
    st.characters(blacklist_categories=("Cs",)),
)
_PASSWORDS = st.lists(_PASSWORD_CHARS, min_size=3, max_size=12).map("".join)
_QUERY_PASSWORDS = _PASSWORDS.filter(lambda password: "&" not in password)
_KEYS = st.sampled_from(["password", "PASSWORD", "Password", "pass", "PASS", "passwd", "pwd", "sslpassword"])


@st.composite
def url_forms(draw) -> tuple[str, str, str]:
    """(url, the same URL with the password as ***, the password): in the userinfo, in the query,
    or both; parseable or not."""
    scheme, user, host, port, database = draw(_SCHEMES), draw(_USERS), draw(_HOSTS), draw(_PORTS), draw(_DATABASES)
    form = draw(st.sampled_from(["userinfo", "query", "both", "no-slashes"]))
    if form in ("userinfo", "no-slashes"):
        password = draw(_PASSWORDS)
        start = f"{scheme}:/" if form == "no-slashes" else f"{scheme}://"
        def build(secret: str) -> str:
            return f"{start}{user}:{secret}@{host}{port}{database}"
    else:
        password = draw(_QUERY_PASSWORDS)
        key, before, after = draw(_KEYS), draw(st.sampled_from(["", "sslmode=require&"])), draw(st.sampled_from(["", "&x=1"]))
        userinfo = f"{user}:{draw(_QUERY_PASSWORDS)}@" if form == "both" else ""
        def build(secret: str) -> str:
            return f"{scheme}://{userinfo}{host}{port}/db?{before}{key}={secret}{after}"
    url, starred = build(password), build("***")
    assume(password not in starred)
    return url, starred, password


def _hidden(password: str, text: str) -> bool:
    """Neither the password nor its decoded form is in text."""
    return password not in text and unquote(password) not in text


@settings(max_examples=500)
@given(url_forms())
def test_mask_never_shows_the_password(form):
    url, _, password = form
    assert _hidden(password, mask(url))


@settings(max_examples=300)
@given(url_forms(), st.sampled_from(['invalid dsn: "{url}"', "failed to resolve host '{piece}'", "{decoded} rejected",
                                     "connection to {url} failed: password={password} ({quoted})"]))
def test_scrub_removes_the_password_from_a_drivers_message(form, template):
    url, starred, password = form
    pieces = [piece for piece in secrets(url) if len(piece) >= 4] or [password]
    message = template.format(url=url, piece=pieces[-1] + "@127.0.0.1", decoded=unquote(password), password=password,
                              quoted=quote(password))
    skeleton = template.format(url=starred, piece="***@127.0.0.1", decoded="***", password="***", quoted="***")
    assume(password not in skeleton and unquote(password) not in skeleton)
    scrubbed = scrub(message, url)
    assert _hidden(password, scrubbed)
    for piece in secrets(url):
        assert piece in "***" or piece not in scrubbed


def test_scrub_without_the_url_still_masks_urls_and_password_pairs():
    text = "dsn postgresql://u:s3cret@h/db and password=hunter2 and password='a b' and PWD=\"x y\""
    assert scrub(text) == "dsn postgresql://u:***@h/db and password=*** and password=*** and PWD=***"


def test_first_line_is_one_bounded_scrubbed_line():
    error = RuntimeError("bad: postgresql://u:s3cret@h/db " + "x" * 5000 + "\nDETAIL: s3cret")
    line = first_line(error, "postgresql://u:s3cret@h/db")
    assert "\n" not in line and "s3cret" not in line and len(line) < DRIVER_ECHO_LIMIT + 40
    assert first_line(RuntimeError("")) == "RuntimeError"


# -- the real drivers ----------------------------------------------------------------------------------------


def _psycopg_says(url: str) -> str:
    import psycopg

    try:
        psycopg.connect(url, hostaddr="127.0.0.1", connect_timeout=2, sslmode="disable").close()
    except psycopg.Error as exc:
        return first_line(exc, url) + "\n" + scrub(str(exc), url)
    except Exception:  # noqa: BLE001 - not a PostgreSQL URL at all (sqlite:, mysql:): libpq refuses it otherwise
        return ""
    return ""


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(url_forms())
def test_psycopg_given_the_raw_url_says_nothing_of_the_password_once_scrubbed(form):
    # rtppctl gives libpq the parts, but the state store and any future caller may hand it a URL:
    # whatever libpq quotes of it (the URI, a percent-token, a fragment it took for a host) is scrubbed.
    # The same URL with *** for the password says what the driver's own words are.
    url, starred, password = form
    url, starred = url.replace(":5432", f":{CLOSED}"), starred.replace(":5432", f":{CLOSED}")
    own_words = _psycopg_says(starred)
    assume(password not in own_words and unquote(password) not in own_words)
    assert _hidden(password, _psycopg_says(url))


def _rtppctl_says(url: str) -> str:
    """What reading the table at `url` says: the whole path a db_url takes (the config validator,
    parse_db_url, then sqlite3, psycopg or PyMySQL for real)."""
    try:
        config = config_from_mapping({"db_url": url}, Path("test.toml"))
        # Packets only to loopback: a URL read with a host of another name is not connected to.
        assume(all(host in ("127.0.0.1", "::1", "") for host in parse_db_url(url).hosts))
        sources.read_table(config)
    except ConfigError as exc:
        assert len(exc.message) < 1000
        return exc.message + "\n" + (exc.hint or "")
    pytest.fail(f"{url!r} gave a table")


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(url_forms(), st.sampled_from(["127.0.0.1", "[::1]"]))
def test_rtppctl_reading_the_table_never_shows_the_password(tmp_path_factory, form, host):
    # Hosts are replaced by loopback addresses, ports by a closed one, sqlite paths put in a temp dir.
    url, starred, password = form

    def local(text: str) -> str:
        for other in ("db.example.net", "d b"):
            text = text.replace(f"@{other}", f"@{host}").replace(f"://{other}", f"://{host}")
        return text.replace(":5432", f":{CLOSED}").replace("sqlite:///", f"sqlite:///{tmp_path_factory.getbasetemp()}/")

    url, starred = local(url), local(starred)
    own_words = _rtppctl_says(starred)
    assume(password not in own_words and unquote(password) not in own_words)
    assert _hidden(password, _rtppctl_says(url))


def test_pymysql_refused_says_nothing_of_the_password():
    url = f"mysql://ops:p%40ss/w?rd#x@127.0.0.1:{CLOSED}/opensips"
    with pytest.raises(ConfigError) as info:
        sources.read_table(config_from_mapping({"db_url": url}, Path("test.toml")))
    assert "cannot connect" in info.value.message and "Connection refused" in info.value.message
    assert "p@ss" not in info.value.message and "p%40ss" not in info.value.message and "w?rd" not in info.value.message


def test_sqlite3_errors_go_through_the_same_scrub(tmp_path):
    (tmp_path / "x.db").write_bytes(b"not a database, password=s3cret")
    url = f"sqlite:///{tmp_path}/x.db?password=s3cret"
    (tmp_path / "x.db?password=s3cret").write_bytes(b"garbage garbage garbage garbage garbage garbage")
    with pytest.raises(ConfigError) as info:
        sources.read_table(config_from_mapping({"db_url": url}, Path("test.toml")))
    assert "file is not a database" in info.value.message and "s3cret" not in info.value.message
    assert "?password=***" in info.value.message
