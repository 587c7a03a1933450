"""Sequential round-trip latency of `rtppctl raw` batch mode over udp, against a minimal loop.

Target (issue 2): p50 round trip with one command outstanding at most 1.3x a minimal loop, written
here, that sends and receives the same datagrams directly on a socket. rtppctl reports each
command's round trip in `raw --json` (`rtt_ms`, measured around the channel's request: encode,
send, wait, match the cookie, decode), so both sides time the same thing.

    .venv/bin/python bench/bench_latency.py [--commands 3000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _engine import engine, precompile  # noqa: E402

COMMANDS = ["V", "VF 20081224", "G nsess_created", "I"]


MINIMAL_LOOP = """
import json, os, socket, sys, time

def minimal_loop(spec, commands):
    host, port = spec.split(":", 1)[1].rsplit(":", 1)
    address = (host, int(port))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(1.0)
    rtts = []
    for number, command in enumerate(commands):
        started = time.perf_counter()
        cookie = f"b{os.getpid()}_{number}"
        sock.sendto(f"{cookie} {command}".encode(), address)
        while True:
            data = sock.recv(65535)
            if data.startswith(cookie.encode() + b" "):
                break
        rtts.append((time.perf_counter() - started) * 1000.0)
    return rtts

spec, path = sys.argv[1], sys.argv[2]
with open(path) as batch:
    commands = [line.strip() for line in batch if line.strip()]
print(json.dumps(minimal_loop(spec, commands)))
"""


def minimal_loop(spec: str, batch: Path) -> list[float]:
    """The baseline: a bare socket loop, one datagram out, its reply in, timed per command.

    It runs as its own process, like rtppctl, so both sides pay the same scheduling costs.
    """
    result = subprocess.run([sys.executable, "-c", MINIMAL_LOOP, spec, str(batch)], capture_output=True, check=True)
    return json.loads(result.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=3000)
    args = parser.parse_args()
    rtppctl = shutil.which("rtppctl", path=str(Path(sys.executable).parent)) or "rtppctl"
    precompile()
    commands = [COMMANDS[i % len(COMMANDS)] for i in range(args.commands)]
    batch = Path(tempfile.mkdtemp(prefix="bench-latency-")) / "batch.txt"
    batch.write_text("\n".join(commands) + "\n")
    env = {**os.environ, "XDG_CONFIG_HOME": str(batch.parent)}
    env.pop("RTPPCTL_CONFIG", None)
    with engine() as spec:
        ours_p50, base_p50 = [], []
        for _ in range(3):  # alternate, and keep the best of three rounds for each side
            result = subprocess.run([rtppctl, "raw", "--json", "-t", spec, "-f", str(batch)],
                                    capture_output=True, env=env, check=False)
            if result.returncode != 0:
                raise SystemExit(f"rtppctl raw failed: {result.stderr.decode()}")
            replies = json.loads(result.stdout)["replies"]
            ours_p50.append(statistics.median(r["rtt_ms"] for r in replies))
            base_p50.append(statistics.median(minimal_loop(spec, batch)))
    ours, base = min(ours_p50), min(base_p50)
    ratio = ours / base
    verdict = "ok" if ratio <= 1.3 else "OVER TARGET"
    print(f"raw batch p50 round trip     rtppctl {ours * 1000:7.1f} us  baseline {base * 1000:7.1f} us  ratio {ratio:5.2f}x  (target <= 1.3x) {verdict}")
    return 0 if ratio <= 1.3 else 1


if __name__ == "__main__":
    sys.exit(main())
