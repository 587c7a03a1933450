"""A throwaway PostgreSQL cluster for the tests: Debian's server binaries, a temp dir, loopback.

The server refuses to run as root, so as root the cluster belongs to the `postgres` user and every
server command runs through `runuser`; as anyone else it runs as that user. pytest-postgresql
starts its server as the current user, which is why this small starter exists instead. Each test
gets a database of its own (`PgServer.database()`), so tests sharing the server stay independent.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path


def server_bin() -> Path | None:
    """The directory holding initdb and pg_ctl: Debian's versioned one, else PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PgServer:
    """One running cluster; `url(db)` for a database on it."""

    def __init__(self, base: Path) -> None:
        self.as_root = os.geteuid() == 0
        binaries = server_bin()
        if binaries is None:
            raise RuntimeError("PostgreSQL server binaries not found (Debian package postgresql; .ci/run installs it)")
        self.bin = binaries
        # As root the cluster belongs to postgres, which cannot enter pytest's private (0700)
        # temp tree: the directory then goes to the system temp dir, and is removed at stop().
        self.dir = Path(tempfile.mkdtemp(prefix="rtppctl-pg-", dir=None if self.as_root else base))
        self.data = self.dir / "data"
        self.port = _free_tcp_port()
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        self.dir.chmod(0o755)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        options = f"-h 127.0.0.1 -p {self.port} -k {self.dir} -F -c fsync=off -c max_connections=100"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.dir / "server.log"), "-w", "start")

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=self.dir)
        if result.returncode != 0:
            log = self.dir / "server.log"
            raise RuntimeError(f"{program} failed: {result.stderr or result.stdout}"
                               + (log.read_text(errors="replace") if log.exists() else ""))

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        user = "postgres" + (f":{password}" if password else "")
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def database(self) -> str:
        """A new, empty database; its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
