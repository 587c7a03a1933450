"""Relays from OpenSIPS's rtpproxy_sockets table, on SQLite and on a real PostgreSQL server; reload;
shared state on PostgreSQL between two "hosts".

Every table test runs on both backends through the same commands; rows are written through
rtppctl and through plain SQL, as OpenSIPS or an operator would.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.helpers import cli
from tests.conftest import write
from tests.relay import free_port

SDP = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 4000 RTP/AVP 0 8\n"
ANSWER_SDP = "v=0\no=- 2 2 IN IP4 10.0.0.2\ns=-\nc=IN IP4 10.0.0.2\nt=0 0\nm=audio 5000 RTP/AVP 0\n"


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def table_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'opensips.db'}"
    if request.param == "mysql":
        return request.getfixturevalue("mariadb_server").database()
    return request.getfixturevalue("pg_url")


def plain_sql(url: str, statement: str, parameters: tuple = ()) -> list[tuple]:
    """Run SQL on the table's database the way OpenSIPS's tools would, without rtppctl."""
    if url.startswith("sqlite:///"):
        db = sqlite3.connect(url[len("sqlite:///"):])
        try:
            rows = db.execute(statement, parameters).fetchall()
            db.commit()
            return rows
        finally:
            db.close()
    if url.startswith("mysql://"):
        from urllib.parse import urlsplit

        import pymysql

        parts = urlsplit(url)
        db = pymysql.connect(host=parts.hostname, port=parts.port, user=parts.username, password=parts.password,
                             database=parts.path.lstrip("/"), autocommit=True)
        try:
            with db.cursor() as cursor:
                cursor.execute(statement.replace("?", "%s"), parameters)
                return list(cursor.fetchall()) if cursor.description else []
        finally:
            db.close()
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        cursor = db.execute(statement.replace("?", "%s"), parameters)
        return cursor.fetchall() if cursor.description else []


def config_with(tmp_path: Path, url: str, extra: str = "") -> Path:
    return write(tmp_path / "db.toml", f'db_url = "{url}"\nrtpproxy_timeout = 0.2\nrtpproxy_retr = 1\n{extra}')


def run(capsys, config: Path, *args: str):
    return cli(capsys, "--config", str(config), *args)


def shown_sets(capsys, config: Path) -> dict[int, list[str]]:
    result = run(capsys, config, "--json", "show")
    assert result.code == 0, result.stderr
    return {s["set_id"]: [n["url"] for n in s["nodes"]] for s in result.json()["sets"]}


def test_init_creates_opensipss_schema_and_rows_from_rtppctl_and_sql_are_read(capsys, tmp_path, table_url):
    config = config_with(tmp_path, table_url)
    assert run(capsys, config, "db", "init").code == 0
    assert plain_sql(table_url, "SELECT table_version FROM version WHERE table_name = 'rtpproxy_sockets'") == [(0,)]
    added = run(capsys, config, "--json", "db", "add", "udp:10.0.0.5:22222=2", "udp:10.0.0.6:22222", "--set", "1")
    assert added.code == 0, added.stderr
    assert added.json() == {"id": 1, "set_id": 1, "sock": "udp:10.0.0.5:22222=2 udp:10.0.0.6:22222"}
    # OpenSIPS's own query (§10) reads what rtppctl wrote.
    assert plain_sql(table_url, "SELECT rtpproxy_sock, set_id FROM rtpproxy_sockets ORDER BY set_id") == [
        ("udp:10.0.0.5:22222=2 udp:10.0.0.6:22222", 1)]
    plain_sql(table_url, "INSERT INTO rtpproxy_sockets (rtpproxy_sock, set_id) VALUES (?, ?)", ("tcp:10.0.1.5:22222|192.0.2.9", 2))
    assert shown_sets(capsys, config) == {1: ["udp:10.0.0.5:22222", "udp:10.0.0.6:22222"], 2: ["tcp:10.0.1.5:22222"]}
    listed = run(capsys, config, "--json", "db", "list").json()["rows"]
    assert [(r["id"], r["set_id"]) for r in listed] == [(1, 1), (2, 2)]
    assert run(capsys, config, "db", "init").stdout.startswith("rtpproxy_sockets already exists")


def test_the_table_adds_to_rtpproxy_sock_or_replaces_it_and_the_default_relay_yields(capsys, tmp_path, table_url):
    config = config_with(tmp_path, table_url)
    run(capsys, config, "db", "init")
    run(capsys, config, "db", "add", "udp:10.0.0.5:22222")
    # db_url alone: the built-in udp:127.0.0.1:22222 does not apply.
    assert shown_sets(capsys, config) == {0: ["udp:10.0.0.5:22222"]}
    added = config_with(tmp_path, table_url, 'rtpproxy_sock = ["udp:10.0.0.9:22222"]\n')
    assert shown_sets(capsys, added) == {0: ["udp:10.0.0.9:22222", "udp:10.0.0.5:22222"]}
    replaced = config_with(tmp_path, table_url, 'rtpproxy_sock = ["udp:10.0.0.9:22222"]\ndb_mode = "replace"\n')
    assert shown_sets(capsys, replaced) == {0: ["udp:10.0.0.5:22222"]}


def test_commands_use_the_snapshot_and_reload_replaces_it(capsys, tmp_path, table_url):
    config = config_with(tmp_path, table_url)
    run(capsys, config, "db", "init")
    run(capsys, config, "db", "add", "udp:10.0.0.5:22222=2", "udp:10.0.0.6:22222")
    assert shown_sets(capsys, config) == {0: ["udp:10.0.0.5:22222", "udp:10.0.0.6:22222"]}
    # Changed behind rtppctl's back: commands keep the snapshot until reload.
    plain_sql(table_url, "UPDATE rtpproxy_sockets SET rtpproxy_sock = ? WHERE id = 1", ("udp:10.0.0.5:22222=3 udp:10.0.0.7:22222",))
    assert shown_sets(capsys, config) == {0: ["udp:10.0.0.5:22222", "udp:10.0.0.6:22222"]}
    dry = run(capsys, config, "--json", "reload", "--dry-run")
    assert dry.code == 0, dry.stderr
    data = dry.json()
    assert data["applied"] is False
    assert [(c["url"], c["before"], c["after"]) for c in data["changed"]] == [
        ("udp:10.0.0.5:22222", "udp:10.0.0.5:22222=2", "udp:10.0.0.5:22222=3")]
    assert [c["url"] for c in data["added"]] == ["udp:10.0.0.7:22222"]
    assert [c["url"] for c in data["removed"]] == ["udp:10.0.0.6:22222"]
    assert shown_sets(capsys, config) == {0: ["udp:10.0.0.5:22222", "udp:10.0.0.6:22222"]}
    done = run(capsys, config, "reload")
    assert done.code == 0 and "1 added, 1 removed, 1 changed" in done.stdout
    assert shown_sets(capsys, config) == {0: ["udp:10.0.0.5:22222", "udp:10.0.0.7:22222"]}


def test_the_snapshot_spares_the_database_a_connection_per_command(capsys, tmp_path, pg_server):
    url = pg_server.database()
    config = config_with(tmp_path, url)
    run(capsys, config, "db", "init")
    run(capsys, config, "db", "add", "udp:10.0.0.5:22222")
    assert shown_sets(capsys, config) == {0: ["udp:10.0.0.5:22222"]}
    # The table's database goes away entirely: commands still have their relays.
    dead = config_with(tmp_path, f"postgresql://ops:s3cret@127.0.0.1:{free_port()}/gone")
    assert shown_sets(capsys, dead) == {0: ["udp:10.0.0.5:22222"]}
    refused = run(capsys, dead, "reload")
    assert refused.code == 5 and "ops:***@127.0.0.1" in refused.stderr and "s3cret" not in refused.stderr
    assert shown_sets(capsys, dead) == {0: ["udp:10.0.0.5:22222"]}  # state untouched


def test_a_bad_row_is_reported_and_never_hides_the_good_ones(capsys, tmp_path, table_url):
    config = config_with(tmp_path, table_url)
    run(capsys, config, "db", "init")
    run(capsys, config, "db", "add", "udp:10.0.0.5:22222")
    plain_sql(table_url, "INSERT INTO rtpproxy_sockets (rtpproxy_sock, set_id) VALUES (?, ?)", ("1 == udp:10.0.0.6:22222", 0))
    plain_sql(table_url, "INSERT INTO rtpproxy_sockets (rtpproxy_sock, set_id) VALUES (?, ?)", ("foo:bar", 0))
    plain_sql(table_url, "INSERT INTO rtpproxy_sockets (rtpproxy_sock, set_id) VALUES (?, ?)", ("udp:10.0.0.8:22222", 0))
    result = run(capsys, config, "--json", "show")
    assert result.code == 0
    assert [n["url"] for n in result.json()["sets"][0]["nodes"]] == ["udp:10.0.0.5:22222", "udp:10.0.0.8:22222"]
    assert "rtpproxy_sockets row id 2" in result.stderr and "set prefix" in result.stderr
    assert "rtpproxy_sockets row id 3" in result.stderr and "unknown scheme 'foo'" in result.stderr
    strict = run(capsys, config, "reload", "--strict")
    assert strict.code == 5 and "row id 2" in strict.stderr and "(and 1 more); nothing reloaded" in strict.stderr
    plain_sql(table_url, "DELETE FROM rtpproxy_sockets WHERE id IN (2, 3)")
    assert "0 added, 0 removed" in run(capsys, config, "reload", "--strict").stdout


@pytest.mark.parametrize(("change", "says"), [
    ('db_table = "nh_sockets"\n', "table 'nh_sockets' does not exist"),
    ('rtpp_socket_col = "rtpp_socket"\n', "lacks a column"),
])
def test_a_missing_table_or_column_is_a_config_error_naming_it(capsys, tmp_path, table_url, change, says):
    run(capsys, config_with(tmp_path, table_url), "db", "init")
    config = config_with(tmp_path, table_url, change)
    result = run(capsys, config, "show")
    assert result.code == 5 and says in result.stderr and result.stdout == ""


def test_a_database_that_is_down_is_exit_5_with_the_password_masked(capsys, tmp_path):
    config = config_with(tmp_path, f"postgresql://opensips:opensipsrw@127.0.0.1:{free_port()}/opensips")
    result = run(capsys, config, "show")
    assert result.code == 5
    assert "postgresql://opensips:***@127.0.0.1" in result.stderr and "opensipsrw" not in result.stderr


def test_calls_on_a_removed_relay_keep_working_and_health_of_the_others_stays(capsys, relays, tmp_path, table_url):
    first, second = relays.start(), relays.start()
    config = config_with(tmp_path, table_url)
    run(capsys, config, "db", "init")
    run(capsys, config, "db", "add", first.udp)
    sdp = write(tmp_path / "o.sdp", SDP)
    assert run(capsys, config, "offer", str(sdp), "--call-id", "kept@h", "--from-tag", "ft").code == 0
    plain_sql(table_url, "DELETE FROM rtpproxy_sockets")
    run(capsys, config, "db", "add", second.udp)
    run(capsys, config, "db", "add", first.udp, "--set", "3")
    assert run(capsys, config, "enable", second.udp, "2").code == 6  # not in the sets until the reload
    assert run(capsys, config, "reload").code == 0
    assert run(capsys, config, "enable", second.udp, "2").code == 0
    answer = write(tmp_path / "a.sdp", ANSWER_SDP)
    result = run(capsys, config, "--json", "answer", str(answer), "--call-id", "kept@h", "--from-tag", "ft", "--to-tag", "tt")
    assert result.code == 0, result.stderr
    assert result.json()["node"] == first.udp  # the ledger still knows where the call is
    assert run(capsys, config, "unforce", "--call-id", "kept@h", "--from-tag", "ft").code == 0
    run(capsys, config, "reload")  # a reload with no change keeps health
    nodes = {n["url"]: n for s in run(capsys, config, "--json", "show").json()["sets"] for n in s["nodes"]}
    assert nodes[second.udp]["state"] == "probing"
    first.stop()
    second.stop()


# -- shared state on PostgreSQL -----------------------------------------------------------------------


def host_env(tmp_path: Path, name: str, config: Path) -> dict[str, str]:
    """A separate "host": its own config and state dirs; the shared state only through state_url."""
    home = tmp_path / name
    env = {**os.environ, "XDG_CONFIG_HOME": str(home / "config"), "XDG_STATE_HOME": str(home / "state"),
           "RTPPCTL_CONFIG": str(config)}
    env.pop("RTPPCTL_STATE", None)
    return env


def rtppctl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rtppctl", *args], env=env, capture_output=True, text=True, timeout=120)


def test_two_hosts_share_health_and_the_ledger_through_state_url(relays, tmp_path, pg_server):
    relay = relays.start()
    state = pg_server.database()
    config = write(tmp_path / "shared.toml", f'rtpproxy_sock = ["{relay.udp} udp:127.0.0.1:{free_port()}"]\n'
                                             f'state_url = "{state}"\nrtpproxy_timeout = 0.2\nrtpproxy_retr = 1\n')
    one, two = host_env(tmp_path, "one", config), host_env(tmp_path, "two", config)
    sdp = write(tmp_path / "o.sdp", SDP)
    offered = rtppctl(one, "--json", "offer", str(sdp), "--call-id", "shared@h", "--from-tag", "ft", "-t", relay.udp)
    assert offered.returncode == 0, offered.stderr
    assert rtppctl(one, "enable", relay.udp, "0").returncode == 0
    seen = json.loads(rtppctl(two, "--json", "sessions").stdout)["sessions"]
    assert [(e["call_id"], e["node_url"]) for e in seen] == [("shared@h", relay.udp)]
    nodes = {n["url"]: n for s in json.loads(rtppctl(two, "--json", "show").stdout)["sets"] for n in s["nodes"]}
    assert nodes[relay.udp]["state"] == "off"
    # Neither host wrote a state file of its own.
    assert not list((tmp_path / "one").rglob("*.sqlite3")) and not list((tmp_path / "two").rglob("*.sqlite3"))
    relay.stop()


def test_concurrent_hosts_changing_health_and_the_ledger_lose_nothing(tmp_path, pg_server):
    state = pg_server.database()
    urls = [f"udp:127.0.0.1:{free_port()}" for _ in range(3)]
    config = write(tmp_path / "c.toml", f'rtpproxy_sock = ["{" ".join(urls)}"]\nstate_url = "{state}"\n')
    script = (
        "import sys\nfrom rtppctl.cli.app import run\n"
        "worker = int(sys.argv[1])\n"
        "for n in range(6):\n"
        "    assert run(['enable', sys.argv[2 + (n % 3)], str(n % 3)]) == 0\n"
    )
    workers = [subprocess.Popen([sys.executable, "-c", script, str(w), *urls], env=host_env(tmp_path, f"h{w}", config),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for w in range(6)]
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
    import psycopg

    with psycopg.connect(state) as db:
        assert db.execute("SELECT count(*), count(DISTINCT url) FROM rtppctl_nodes").fetchone() == (3, 3)
        states = dict(db.execute("SELECT url, state FROM rtppctl_nodes").fetchall())
    # Each worker's last change to a node wins whole: every node ends in a state one of them set.
    assert states == {urls[0]: "off", urls[1]: "enabled", urls[2]: "probing"}


def test_state_precedence_option_over_variable_over_state_url_over_the_file(capsys, tmp_path, monkeypatch, pg_server):
    state = pg_server.database()
    config = write(tmp_path / "p.toml", f'state_url = "{state}"\n')
    monkeypatch.setenv("RTPPCTL_STATE", str(tmp_path / "env.sqlite3"))
    assert cli(capsys, "--config", str(config), "--json", "sessions").json()["state"] == str(tmp_path / "env.sqlite3")
    assert cli(capsys, "--config", str(config), "--state", str(tmp_path / "opt.sqlite3"), "--json", "sessions").json()["state"] \
        == str(tmp_path / "opt.sqlite3")
    monkeypatch.delenv("RTPPCTL_STATE")
    shown = cli(capsys, "--config", str(config), "--json", "sessions").json()["state"]
    assert shown.startswith("postgresql://") and shown.endswith(state.rsplit("/", 1)[1])


def test_db_remove_by_relay_or_by_id_and_nothing_matched_is_exit_6(capsys, tmp_path, table_url):
    config = config_with(tmp_path, table_url)
    run(capsys, config, "db", "init")
    run(capsys, config, "db", "add", "udp:10.0.0.5:22222=2", "udp:10.0.0.6:22222")
    run(capsys, config, "db", "add", "udp:10.0.0.6:22222", "--set", "1")
    run(capsys, config, "db", "add", "udp:10.0.0.7:22222")
    by_url = run(capsys, config, "--json", "db", "remove", "udp:10.0.0.6:22222", "--set", "1")
    assert by_url.code == 0 and [r["id"] for r in by_url.json()["removed"]] == [2]
    by_id = run(capsys, config, "--json", "db", "remove", "--id", "3")
    assert by_id.code == 0 and by_id.json()["removed"] == [{"id": 3, "set_id": 0, "sock": "udp:10.0.0.7:22222"}]
    assert plain_sql(table_url, "SELECT id FROM rtpproxy_sockets ORDER BY id") == [(1,)]
    missing = run(capsys, config, "db", "remove", "--id", "99")
    assert missing.code == 6 and "no row of rtpproxy_sockets matched id 99" in missing.stderr
    both = run(capsys, config, "db", "remove", "udp:10.0.0.5:22222", "--id", "1")
    assert both.code == 2
    bad_spec = run(capsys, config, "db", "add", "foo:bar")
    assert bad_spec.code == 6 and plain_sql(table_url, "SELECT count(*) FROM rtpproxy_sockets") == [(1,)]


# -- db_url: every part checked, secrets never shown ------------------------------------------------------


@pytest.mark.parametrize(("url", "says"), [
    # The case: a MySQL port out of range was an internal error (exit 1).
    ("mysql://ops:s3cret@127.0.0.1:99999/opensips", "the port '99999' is not a number 1..65535"),
    ("mysql://ops:s3cret@127.0.0.1:3306x/opensips", "the port '3306x' is not a number 1..65535"),
    ("postgresql://ops:s3cret@127.0.0.1:0/opensips", "the port '0' is not a number 1..65535"),
    ("mysql://ops:s3cret@/opensips", "names no host"),
    ("postgresql://ops:s3%zzret@127.0.0.1/opensips", "the password has a bad percent-escape"),
    ("postgresql://ops:s3cret@127.0.0.1/opensips?sslmode=%x", "the query parameter 'sslmode' has a bad percent-escape"),
    ("postgresql://ops:s3c@ret@127.0.0.1/opensips", "the password holds an unencoded '@'"),
    ("sqlite:///relays%2.db?password=s3cret", "the path has a bad percent-escape"),
])
def test_a_malformed_db_url_is_exit_5_naming_the_part_with_the_password_masked(capsys, tmp_path, url, says):
    for command in (["show"], ["reload"], ["db", "list"]):
        result = run(capsys, config_with(tmp_path, url), *command)
        assert result.code == 5, (command, result.stderr)
        assert says in result.stderr and "s3cret" not in result.stderr and "Traceback" not in result.stderr


def test_a_malformed_db_url_option_is_a_usage_error_with_the_password_masked(capsys, tmp_path):
    result = cli(capsys, "db", "list", "--db-url", "mysql://ops:s3cret@127.0.0.1:99999/opensips")
    assert result.code == 2 and "the port '99999' is not a number" in result.stderr and "s3cret" not in result.stderr


def test_a_sqlite_path_with_question_mark_hash_and_escapes_uses_the_file_it_names(capsys, tmp_path):
    # %41 is decoded to A as in SQLAlchemy; '?' and '#' are part of the name; the file: URI given to
    # sqlite3 escapes them, so no other file (relays) is created or read.
    folder = tmp_path / "dbs"
    folder.mkdir()
    config = config_with(tmp_path, f"sqlite:///{folder}/relays?mode=ro#x%41%25.db")
    assert run(capsys, config, "db", "init").code == 0
    assert run(capsys, config, "db", "add", "udp:10.0.0.5:22222").code == 0
    assert [path.name for path in folder.iterdir()] == ["relays?mode=ro#xA%.db"]
    assert plain_sql(f"sqlite:///{folder}/relays?mode=ro#xA%.db", "SELECT rtpproxy_sock FROM rtpproxy_sockets") == [
        ("udp:10.0.0.5:22222",)]
    assert shown_sets(capsys, config) == {0: ["udp:10.0.0.5:22222"]}


def test_a_password_with_url_delimiters_reaches_mariadb_as_written(capsys, tmp_path, mariadb_server):
    # OpenSIPS ends the password at the '@' only (db/db_id.c): '/', '?', '#' and ':' stay in it; an
    # '@' and a non-ASCII character are written %-encoded.
    password = "p/w?d#x:y@zé"
    name, where = mariadb_server.database_for(password)
    good = config_with(tmp_path, f"mysql://{name}:p/w?d#x:y%40z%C3%A9@{where}")
    result = run(capsys, good, "db", "init")
    assert result.code == 0, result.stderr
    wrong = config_with(tmp_path, f"mysql://{name}:p/w?d#x:y%40q@{where}")
    result = run(capsys, wrong, "db", "list")
    assert result.code == 5 and "Access denied" in result.stderr
    assert f"mysql://{name}:***@127.0.0.1" in result.stderr
    for piece in ("p/w", "d#x", "y@q", "y%40q"):
        assert piece not in result.stderr


def test_a_postgresql_password_with_url_delimiters_is_given_to_libpq_whole(capsys, tmp_path, pg_server):
    # libpq would read "postgresql://postgres:p/w#d?x@..." as host "postgres", port "p": rtppctl gives
    # it the parts instead. (The test cluster trusts every password: this proves the URL is read right.)
    database = pg_server.database().rsplit("/", 1)[1]
    config = config_with(tmp_path, f"postgresql://postgres:p/w#d?x@127.0.0.1:{pg_server.port}/{database}")
    assert run(capsys, config, "db", "init").code == 0
    assert run(capsys, config, "db", "add", "udp:10.0.0.5:22222").code == 0
    assert shown_sets(capsys, config) == {0: ["udp:10.0.0.5:22222"]}


def test_a_password_in_the_query_is_masked_when_the_server_is_down(capsys, tmp_path):
    config = config_with(tmp_path, f"postgresql://ops@127.0.0.1:{free_port()}/opensips?sslmode=disable&PassWord=s3cret")
    result = run(capsys, config, "show")
    assert result.code == 5 and "PassWord=***" in result.stderr and "s3cret" not in result.stderr


# -- rows: bounded echoes, junk words ------------------------------------------------------------------------


def test_a_huge_bad_row_is_echoed_bounded_in_warnings_and_in_reload_json(capsys, tmp_path, table_url):
    # MariaDB's TEXT holds 64 KB; SQLite and PostgreSQL take the 10 MB row.
    size = 60_000 if table_url.startswith("mysql") else 10_000_000
    config = config_with(tmp_path, table_url)
    run(capsys, config, "db", "init")
    run(capsys, config, "db", "add", "udp:10.0.0.5:22222")
    plain_sql(table_url, "INSERT INTO rtpproxy_sockets (rtpproxy_sock, set_id) VALUES (?, ?)", ("x" * size + " foo:bar", 0))
    shown = run(capsys, config, "--json", "show")
    assert shown.code == 0 and [n["url"] for n in shown.json()["sets"][0]["nodes"]] == ["udp:10.0.0.5:22222"]
    assert "rtpproxy_sockets row id 2" in shown.stderr and f"({size + 8} characters)" in shown.stderr
    assert len(shown.stderr) < 2_000
    reloaded = run(capsys, config, "--json", "reload", "--dry-run")
    assert reloaded.code == 0 and len(reloaded.stdout) + len(reloaded.stderr) < 5_000
    [bad] = reloaded.json()["bad_rows"]
    assert bad["length"] == size + 8 and bad["text"].endswith(f"... ({size + 8} characters)") and len(bad["text"]) < 300
    assert len(bad["message"]) < 600


def test_junk_words_in_a_row_become_unix_sockets_as_in_the_module_with_a_warning(capsys, tmp_path, table_url):
    config = config_with(tmp_path, table_url)
    run(capsys, config, "db", "init")
    added = run(capsys, config, "db", "add", "--", "udp:10.0.0.5:22222", ";", "DROP", "--")
    assert added.code == 0
    assert "';', 'DROP', '--' do not look like a socket path" in added.stderr
    plain_sql(table_url, "INSERT INTO rtpproxy_sockets (rtpproxy_sock, set_id) VALUES (?, ?)", ("/run/rtpproxy.sock ./rtpp.sock", 1))
    result = run(capsys, config, "--json", "show")
    assert result.code == 0
    # The module's rule: a word without a scheme is a unix socket path (rtpproxy.c, add_rtpproxy_socks).
    assert {s["set_id"]: [n["url"] for n in s["nodes"]] for s in result.json()["sets"]} == {
        0: ["udp:10.0.0.5:22222", ";", "DROP", "--"], 1: ["/run/rtpproxy.sock", "./rtpp.sock"]}
    assert result.stderr.count("do not look like a socket path") == 1 and "row id 1" in result.stderr
    reloaded = run(capsys, config, "--json", "reload", "--dry-run").json()
    assert len(reloaded["warnings"]) == 1 and reloaded["warnings"][0].startswith("rtpproxy_sockets row id 1: ")



# -- every wait on the table's database is bounded ---------------------------------------------------------

#: The budget the table's reads get here, instead of 15 s.
BUDGET = 1.5


@pytest.fixture(params=["postgresql", "mysql"])
def server_url(request) -> str:
    """The table on a database server (the waits SQLite has are its file's, tested with the store)."""
    return request.getfixturevalue("mariadb_server").database() if request.param == "mysql" else \
        request.getfixturevalue("pg_url")


class TableLock:
    """Another session holding a lock on the table that blocks rtppctl's reads: PostgreSQL's
    ACCESS EXCLUSIVE lock in an open transaction, MariaDB's LOCK TABLES ... WRITE."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._holder = None

    def __enter__(self) -> TableLock:
        if self.url.startswith("mysql://"):
            from urllib.parse import urlsplit

            import pymysql

            parts = urlsplit(self.url)
            self._holder = pymysql.connect(host=parts.hostname, port=parts.port, user=parts.username,
                                           password=parts.password, database=parts.path.lstrip("/"))
            self._holder.cursor().execute("LOCK TABLES rtpproxy_sockets WRITE")
        else:
            import psycopg

            self._holder = psycopg.connect(self.url)
            self._holder.execute("LOCK TABLE rtpproxy_sockets IN ACCESS EXCLUSIVE MODE")
        return self

    def __exit__(self, *exc) -> None:
        self._holder.close()


def test_a_lock_on_the_table_ends_the_read_within_the_budget_naming_the_cause(capsys, monkeypatch, tmp_path,
                                                                             server_url):
    import rtppctl.db as db_module

    config = config_with(tmp_path, server_url)
    run(capsys, config, "db", "init")
    run(capsys, config, "db", "add", "udp:10.0.0.5:22222")
    monkeypatch.setattr(db_module, "RETRY_SECONDS", BUDGET)
    with TableLock(server_url):
        started = time.monotonic()
        result = run(capsys, config, "db", "list")
        took = time.monotonic() - started
    assert result.code == 5 and result.stdout == "", result.stderr
    assert took < BUDGET + 1.5
    first, hint = result.stderr.splitlines()[:2]
    assert first.endswith(f"another session held a lock on rtpproxy_sockets for {BUDGET:g} s")
    assert ("pg_stat_activity" if server_url.startswith("postgresql") else "SHOW PROCESSLIST") in hint
    # The lock gone, the same table reads again.
    assert run(capsys, config, "db", "list").code == 0


def test_a_server_that_stops_answering_ends_the_read_within_the_budget(capsys, monkeypatch, tmp_path, server_url):
    # The server goes silent once it sees the table's query (a stopped server, a network that
    # drops everything): PostgreSQL's connection is cut by the deadline on rtppctl's side, PyMySQL's
    # socket timeouts end the wait.
    from urllib.parse import urlsplit

    import rtppctl.db as db_module
    from tests.system.test_store_faults import Forwarder

    run(capsys, config_with(tmp_path, server_url), "db", "init")
    port = urlsplit(server_url).port
    forwarder = Forwarder(port, b"FROM rtpproxy_sockets")
    monkeypatch.setattr(db_module, "RETRY_SECONDS", BUDGET)
    try:
        config = config_with(tmp_path, server_url.replace(f":{port}/", f":{forwarder.port}/"))
        started = time.monotonic()
        result = run(capsys, config, "reload", "--dry-run")
        took = time.monotonic() - started
        assert forwarder.frozen.is_set()
    finally:
        forwarder.close()
    assert result.code == 5, result.stderr
    assert f"the database did not answer within {BUDGET:g} s" in result.stderr.splitlines()[0]
    assert "check the server and the network to it" in result.stderr
    assert took < BUDGET + 1.5
