"""Notifications parsed and written as NDJSON, end to end over local TCP, against a minimal reader.

Target (listen issue): `rtppctl --json listen --count N` takes in N timeout and DTMF lines sent
over one TCP connection and writes one JSON line per notification at no less than 0.5x the rate of
a minimal socket reader, written here, that splits lines and writes one `json.dumps` line per
notification, flushing per read. Both run as processes of their own; the clock runs from the
connection to the process's exit, so start-up is left out for both.

    .venv/bin/python bench/bench_listen.py [--lines 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _engine import precompile  # noqa: E402

TARGET = 0.5

MINIMAL_READER = """
import json, socket, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
server.listen()
print("listening on", flush=True, file=sys.stderr)
peer, _ = server.accept()
seen, rest, out = 0, b"", sys.stdout
while seen < count:
    data = peer.recv(65536)
    if not data:
        break
    lines = (rest + data).split(b"\\n")
    rest = lines.pop()
    for line in lines:
        out.write(json.dumps({"type": "timeout", "raw": line.decode("utf-8", "replace")}) + "\\n")
        seen += 1
    out.flush()
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def payload(lines: int) -> bytes:
    return b"".join((f"Ta{n:x}.1\n" if n % 4 else f"Dcbench-{n} {n % 10} 10 800 {n % 2}\n").encode() for n in range(lines))


def run(argv: list[str], port: int, data: bytes, env: dict[str, str]) -> float:
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while "listening on" not in (process.stderr.readline() or "listening on"):
        pass
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as peer:
        peer.sendall(data)
        process.wait(120)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    precompile()
    data = payload(options.lines)
    work = Path(tempfile.mkdtemp(prefix="bench-listen-"))
    reader = work / "reader.py"
    reader.write_text(MINIMAL_READER)
    env = {**os.environ, "RTPPCTL_STATE": "none", "RTPPCTL_CONFIG": os.devnull}
    ours, theirs = [], []
    for _ in range(options.rounds):
        port = free_port()
        theirs.append(run([sys.executable, str(reader), str(port), str(options.lines)], port, data, env))
        port = free_port()
        ours.append(run([sys.executable, "-m", "rtppctl", "--json", "listen", f"tcp:127.0.0.1:{port}", "--any-peer",
                         "--count", str(options.lines)], port, data, env))
    rate_ours = options.lines / statistics.median(ours)
    rate_theirs = options.lines / statistics.median(theirs)
    ratio = rate_ours / rate_theirs
    print(f"minimal reader: {rate_theirs:,.0f} notifications/s")
    print(f"rtppctl listen: {rate_ours:,.0f} notifications/s")
    print(f"ratio {ratio:.2f}x (target >= {TARGET}x): {'ok' if ratio >= TARGET else 'TOO SLOW'}")
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
