"""The module's relay choice as `rtppctl lb simulate --calls 1000000` runs it, against a bare loop.

Target (relay sets issue): at least 0.2x the rate of a loop that only computes the 8-bit hash of
the same Call-IDs, measured in the same run (best of a few rounds each, alternated).

    .venv/bin/python bench/bench_select.py [--calls 1000000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rtppctl.ops.lb import generated_call_ids, simulate  # noqa: E402
from rtppctl.proto.url import parse_node  # noqa: E402

TARGET = 0.2
NODES = [parse_node(spec) for spec in ("udp:10.0.0.5:22222=3", "udp:10.0.0.6:22222=2", "udp:10.0.0.7:22222=1")]


def bare(call_ids: list[str]) -> list[int]:
    counts = [0] * 256
    for call_id in call_ids:
        counts[sum(call_id.encode()) & 0xFF] += 1
    return counts


def ours(call_ids: list[str]) -> object:
    return simulate(call_ids, NODES, disabled=("udp:10.0.0.6:22222",))


def rate(function, call_ids: list[str]) -> float:
    gc.disable()
    try:
        started = time.perf_counter()
        function(call_ids)
        return len(call_ids) / (time.perf_counter() - started)
    finally:
        gc.enable()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    call_ids = list(generated_call_ids(args.calls, 1))
    ours_best = bare_best = 0.0
    for _ in range(args.rounds):
        ours_best = max(ours_best, rate(ours, call_ids))
        bare_best = max(bare_best, rate(bare, call_ids))
    ratio = ours_best / bare_best
    verdict = "ok" if ratio >= TARGET else "UNDER TARGET"
    print(f"lb selector  rtppctl {ours_best:,.0f} calls/s  bare hash loop {bare_best:,.0f}/s  "
          f"ratio {ratio:.2f} (target >= {TARGET}) {verdict}")
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
