"""Per-command cost of the state store: one `rtppctl offer` process with the state file (health
read, capabilities from the cache, ledger entry written, old entries pruned) against the same
process with `--state none`, measured in the same run.

Target (relay sets issue): the process with state at most 1.3x the one without. Runs alternate so
machine noise hits both alike; medians are compared. Each offer is a new call, so the ledger grows
as it would in use.

    .venv/bin/python bench/bench_state.py [--runs 21]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _engine import engine, precompile  # noqa: E402

TARGET = 1.3
SDP = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 4000 RTP/AVP 0 8\n"


def timed(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    options = parser.parse_args()
    precompile()
    work = Path(tempfile.mkdtemp(prefix="bench-state-"))
    sdp = work / "offer.sdp"
    sdp.write_text(SDP)
    state = work / "state.sqlite3"
    with engine() as spec:
        config = work / "config.toml"
        config.write_text(f'rtpproxy_sock = ["{spec}"]\n')
        env = {**os.environ, "RTPPCTL_CONFIG": str(config)}
        base = [sys.executable, "-m", "rtppctl", "offer", str(sdp), "--from-tag", "ft"]
        # One offer first, so the state file exists and knows the relay's capabilities.
        timed([*base, "--call-id", "warm-up", "--state", str(state)], env)
        with_state, without = [], []
        for run in range(options.runs):
            with_state.append(timed([*base, "--call-id", f"s{run}", "--state", str(state)], env))
            without.append(timed([*base, "--call-id", f"n{run}", "--state", "none"], env))
    ratio = statistics.median(with_state) / statistics.median(without)
    print(f"offer with state:  median {statistics.median(with_state) * 1000:.1f} ms")
    print(f"offer --state none: median {statistics.median(without) * 1000:.1f} ms")
    print(f"ratio {ratio:.2f}x (target <= {TARGET}x): {'ok' if ratio <= TARGET else 'TOO SLOW'}")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
