"""`check` of ten relays against `check` of one, measured in the same run.

Target: checking 10 real relays with 50 packets each way takes at most 1.3x the time of checking
one of them. The media phase of a check is paced (50 packets at 20 ms is a second whatever the
machine), so the ratio says whether the nodes are really checked at once: one bounded pool of
workers, each pacing its own RTP, none waiting for another. Both sides run `rtppctl --state none
check` as a process, alternately, so machine noise hits both alike; the median of the rounds
counts.

    .venv/bin/python bench/bench_check.py [--rounds 5] [--relays 10] [--packets 50]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _engine import engine, precompile  # noqa: E402

TARGET = 1.3


def run_check(specs: list[str], packets: int) -> float:
    args = [sys.executable, "-m", "rtppctl", "--state", "none", "--json", "check", "--packets", str(packets)]
    for spec in specs:
        args += ["-t", spec]
    started = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False,
                          cwd=Path(__file__).resolve().parent.parent)
    took = time.perf_counter() - started
    if done.returncode != 0 or not json.loads(done.stdout)["ok"]:
        raise SystemExit(f"check of {len(specs)} relays failed (exit {done.returncode}): {done.stdout[-400:]}{done.stderr[-400:]}")
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--relays", type=int, default=10)
    parser.add_argument("--packets", type=int, default=50)
    options = parser.parse_args()
    precompile()
    with contextlib.ExitStack() as stack:
        specs = [stack.enter_context(engine()) for _ in range(options.relays)]
        run_check(specs[:1], options.packets)  # warm-up: bytecode, caches
        one, many = [], []
        for _ in range(options.rounds):
            one.append(run_check(specs[:1], options.packets))
            many.append(run_check(specs, options.packets))
    single, all_of_them = statistics.median(one), statistics.median(many)
    ratio = all_of_them / single
    load = os.getloadavg()[0]
    print(f"check of 1 relay        {single * 1000:8.1f} ms (median of {options.rounds})")
    print(f"check of {options.relays} relays      {all_of_them * 1000:8.1f} ms")
    verdict = "ok" if ratio <= TARGET else "MISSED"
    print(f"ratio {ratio:.2f}x (target <= {TARGET}x) {verdict}; {options.packets} packets each way; load average {load:.2f}")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
