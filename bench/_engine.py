"""A real engine for the benchmarks: `python -m rtppctl.embedded serve` on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path


def precompile() -> None:
    """Write rtppctl's bytecode once, as an installed package has it.

    With PYTHONDONTWRITEBYTECODE set (some shells and CI set it) every run would otherwise compile
    every module from source, and the benchmark would measure the compiler.
    """
    import compileall  # noqa: PLC0415

    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "rtppctl"), quiet=1)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def engine() -> Iterator[str]:
    """Yields the node spec of a running engine; stops it afterwards."""
    port = free_udp_port()
    spec = f"udp:127.0.0.1:{port}"
    workdir = tempfile.mkdtemp(prefix="bench-engine-")
    process = subprocess.Popen(
        [sys.executable, "-m", "rtppctl.embedded", "serve", "--", "-F", "-d", "err", "-l", "127.0.0.1", "-s", spec],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        # The engine ends with the benchmark, even when the benchmark is killed.
        env={**os.environ, "RTPPCTL_ENGINE_EXIT_WITH_PARENT": "1"},
    )
    try:
        if process.stdout is None or process.stdout.readline().strip() != b"ready":
            raise SystemExit("benchmark engine did not start")
        yield spec
    finally:
        process.terminate()
        process.wait(5)
