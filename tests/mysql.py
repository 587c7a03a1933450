"""A throwaway MariaDB server for the MySQL table-source tests: Debian's mariadb-server binaries, a
temp dir, loopback. As root the server drops to the `mysql` user (its `--user` switch), so the
data directory belongs to that user. `MariaDb.database()` gives each test a database of its own;
`database_for(password)` one whose user has a password of the test's choosing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path


def _binary(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
        if found:
            return found
    return None


class MariaDbUnavailable(RuntimeError):
    """The server cannot run here; the reason says why."""


class MariaDb:
    def __init__(self) -> None:
        server = _binary("mariadbd", "mysqld")
        install = _binary("mariadb-install-db", "mysql_install_db")
        if server is None or install is None:
            raise MariaDbUnavailable("MariaDB server binaries not found (Debian package mariadb-server; .ci/run installs it)")
        self.as_root = os.geteuid() == 0
        # The server drops to `mysql`, which cannot enter pytest's private temp tree.
        self.dir = Path(tempfile.mkdtemp(prefix="rtppctl-mariadb-"))
        self.dir.chmod(0o755)
        self.data = self.dir / "data"
        user = ["--user=mysql"] if self.as_root else []
        if self.as_root:
            shutil.chown(self.dir, "mysql", "mysql")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        done = subprocess.run([install, "--no-defaults", f"--datadir={self.data}", *user,
                               "--auth-root-authentication-method=normal", "--skip-test-db"],
                              capture_output=True, text=True, timeout=180)
        if done.returncode != 0:
            raise MariaDbUnavailable(f"mariadb-install-db failed: {done.stderr.strip()[-500:]}")
        self.log = self.dir / "server.log"
        self.process = subprocess.Popen(
            [server, "--no-defaults", f"--datadir={self.data}", f"--port={self.port}", "--bind-address=127.0.0.1",
             f"--socket={self.dir / 'mysqld.sock'}", f"--pid-file={self.dir / 'mysqld.pid'}", f"--log-error={self.log}",
             "--skip-log-bin", "--innodb-buffer-pool-size=16M", *user],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise MariaDbUnavailable(f"mariadbd exited: {self.log.read_text(errors='replace')[-500:]}")
            try:
                self._connect().close()
                return
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.2)
        self.stop()
        raise MariaDbUnavailable("mariadbd did not accept connections within 60 s")

    def _connect(self, database: str | None = None):  # noqa: ANN202
        import pymysql

        return pymysql.connect(host="127.0.0.1", port=self.port, user="root", password="", database=database,
                               autocommit=True)

    def database(self) -> str:
        """A new database with a user of its own (with a password, to check it is masked); its URL."""
        name = "t_" + uuid.uuid4().hex[:12]
        with self._connect() as connection, connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name}")
            cursor.execute(f"CREATE USER '{name}'@'%' IDENTIFIED BY 'pw-{name}'")
            cursor.execute(f"GRANT ALL ON {name}.* TO '{name}'@'%'")
        return f"mysql://{name}:pw-{name}@127.0.0.1:{self.port}/{name}"

    def database_for(self, password: str) -> tuple[str, str]:
        """A new database whose user has `password` (any text); (its name, host:port/name) for
        the caller to write the URL with the password spelled as the test needs."""
        name = "t_" + uuid.uuid4().hex[:12]
        with self._connect() as connection, connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name}")
            cursor.execute(f"CREATE USER '{name}'@'%%' IDENTIFIED BY %s", (password,))
            cursor.execute(f"GRANT ALL ON {name}.* TO '{name}'@'%'")
        return name, f"127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        from tests.relay import stop_process

        stop_process(self.process, grace=30)
        shutil.rmtree(self.dir, ignore_errors=True)
