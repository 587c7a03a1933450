"""The shared database plumbing (`rtppctl.db`): which backend a URL gets, where a missing driver is
reported, and the import rules that keep start-up fast and the store and the table reader apart.
The waits it bounds are tested against real servers: the state store in tests/relays/test_store.py
and tests/system/test_store_faults.py, the relay table in tests/system/test_databases.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rtppctl import db, sources
from rtppctl.config import config_from_mapping
from rtppctl.dburl import parse_db_url
from rtppctl.proto.errors import ConfigError, ExitCode
from rtppctl.relays.store import StateStore
from tests.relay import free_port


@pytest.mark.parametrize(("url", "kind"), [
    ("sqlite:///relays.db", db.Sqlite),
    ("postgresql://ops:s3cret@127.0.0.1/opensips", db.Postgres),
    ("POSTGRES://ops:s3cret@127.0.0.1/opensips", db.Postgres),
    ("mysql://ops:s3cret@127.0.0.1/opensips", db.Mysql),
])
def test_the_backend_is_the_one_dburl_reads_from_the_scheme(url, kind):
    backend = db.backend_for(parse_db_url(url))
    assert type(backend) is kind and backend.name == parse_db_url(url).backend
    assert "s3cret" not in backend.where and backend.secret == url


def test_the_state_store_refuses_a_database_it_cannot_be_kept_in():
    with pytest.raises(ConfigError, match=r"cannot be kept in mysql: mysql://ops:\*\*\*@127.0.0.1/x") as caught:
        StateStore.open("mysql://ops:s3cret@127.0.0.1/x")
    assert caught.value.exit_code is ExitCode.CONFIG


@pytest.mark.parametrize(("scheme", "module", "title", "extra"), [
    ("postgresql", "psycopg", "PostgreSQL", "rtppctl[pg]"),
    ("mysql", "pymysql", "MySQL", "rtppctl[mysql]"),
])
def test_a_missing_driver_is_exit_5_naming_the_extra_that_installs_it(monkeypatch, scheme, module, title, extra):
    # No connection is tried: the port is closed anyway, and the message would say "cannot connect".
    monkeypatch.setitem(sys.modules, module, None)
    url = f"{scheme}://ops:s3cret@127.0.0.1:{free_port()}/opensips"
    openers = [lambda: sources.read_table(config_from_mapping({"db_url": url}, Path("t.toml")))]
    if scheme == "postgresql":
        openers.append(lambda: StateStore.open(url))
    for opener in openers:
        with pytest.raises(ConfigError) as caught:
            opener()
        assert caught.value.message.endswith(f"{title} needs the {module} package")
        assert "ops:***@127.0.0.1" in caught.value.message and "s3cret" not in caught.value.message
        assert extra in caught.value.hint


IMPORTS = """
import sys
import {modules}
print(sorted(name for name in ("sqlite3", "psycopg", "pymysql", "rtppctl.sources", "rtppctl.relays.store",
                               "rtppctl.db") if name in sys.modules))
"""


@pytest.mark.parametrize(("modules", "loaded"), [
    # The plumbing and both of its users import no database module until they connect.
    ("rtppctl.db, rtppctl.sources, rtppctl.relays.store, rtppctl.relays.service",
     ["rtppctl.db", "rtppctl.relays.store", "rtppctl.sources"]),
    # The table reader never imports the state store, nor the store the reader.
    ("rtppctl.sources", ["rtppctl.sources"]),
    ("rtppctl.relays.store", ["rtppctl.relays.store"]),
])
def test_imports_stay_light_and_one_way(modules, loaded):
    result = subprocess.run([sys.executable, "-c", IMPORTS.format(modules=modules)], capture_output=True, text=True,
                            check=True, timeout=60)
    assert result.stdout.strip() == repr(loaded)
