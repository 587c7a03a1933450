"""`rtppctl batch` over many calls against one real relay, beside a minimal pipelined client.

Target: a batch of 5,000 calls, each written as three lines (offer, answer, unforce: U, L and D
on the relay), runs at least 0.6x as many calls per second as `_minimal_client.cycles` does U, L,
D cycles, both with 16 in flight, against the same relay in the same run. The minimal client
sends bare commands from a raw socket and checks nothing; rtppctl runs each line as the one-shot
command does (SDP parsed, every token checked, the commands planned for every capability set, the
SDP rewritten, the whole --json object built and written), so the ratio is what all of that
costs when the network waits overlap.

rtppctl runs as its own process (`python -m rtppctl --state none batch FILE`), as a user runs it;
its rate is calls / the summary's elapsed_s (from the run's start to its last result: the
process's start-up is measured by bench_startup.py). `--state none`: the minimal client keeps no
ledger either; `--ledger` also runs the batch with a state file (a transaction per operation),
for information. Rounds alternate between the two sides; the best of 3 counts for each.

For information too, the run's own ceiling: the same number of lines, each a `raw` `V` (one
command, no SDP, a small result), in calls of three lines. No batch of offers, answers and
unforces can go faster than that on this machine, whatever the ops cost.

    .venv/bin/python bench/bench_batch.py [--calls 5000] [--window 16] [--rounds 3] [--ledger]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _engine import engine, precompile  # noqa: E402
from _minimal_client import cycles  # noqa: E402

TARGET = 0.6

OFFER = ("v=0\r\no=- 1 1 IN IP4 10.7.0.1\r\ns=-\r\nc=IN IP4 10.7.0.1\r\nt=0 0\r\n"
         "m=audio 30000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n")
ANSWER = "v=0\r\no=- 2 2 IN IP4 10.7.0.2\r\ns=-\r\nc=IN IP4 10.7.0.2\r\nt=0 0\r\nm=audio 30010 RTP/AVP 0\r\n"


def batch_file(path: Path, spec: str, calls: int, tag: str) -> None:
    """`calls` calls as offer, answer and unforce lines, each call's three in a row."""
    with path.open("w") as out:
        for number in range(calls):
            call = {"call_id": f"{tag}-{number}@bench", "from_tag": "ft", "target": spec}
            out.write(json.dumps({"op": "offer", "sdp": OFFER, **call}) + "\n")
            out.write(json.dumps({"op": "answer", "sdp": ANSWER, "to_tag": "tt", **call}) + "\n")
            out.write(json.dumps({"op": "unforce", "to_tag": "tt", **call}) + "\n")


def ceiling_file(path: Path, spec: str, calls: int) -> None:
    """`calls` calls of three `raw` V lines each: the batch's machinery with the least op work."""
    with path.open("w") as out:
        for _ in range(calls * 3):
            out.write(json.dumps({"op": "raw", "command": "V", "target": spec}) + "\n")


def run_batch(path: Path, window: int, env: dict[str, str], state: str) -> tuple[float, float]:
    """(calls per second by the summary's elapsed_s, wall seconds of the whole process)."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "rtppctl", "--state", state, "batch", "--window", str(window),
                             str(path)], capture_output=True, env=env, check=False)
    wall = time.perf_counter() - started
    lines = result.stdout.decode().splitlines()
    summary = json.loads(lines[-1]) if lines else {}
    if result.returncode != 0 or summary.get("failed"):
        raise SystemExit(f"rtppctl batch failed (exit {result.returncode}): {result.stderr.decode()[-2000:]}"
                         f" {lines[-1] if lines else ''}")
    ops = summary["ops"]
    calls = ops["unforce"]["ok"] if "unforce" in ops else ops["raw"]["ok"] / 3
    return calls / summary["elapsed_s"], wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ledger", action="store_true", help="also run the batch with a state file")
    args = parser.parse_args()
    precompile()
    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    env = {**os.environ, "XDG_CONFIG_HOME": str(work), "XDG_STATE_HOME": str(work)}
    env.pop("RTPPCTL_CONFIG", None)
    env.pop("RTPPCTL_STATE", None)
    ours, base, walls, ledger, ceiling = [], [], [], [], []
    with engine() as spec:
        host, port = spec.split(":", 1)[1].rsplit(":", 1)
        for round_ in range(args.rounds):
            base.append(cycles((host, int(port)), args.calls, args.window)[0])
            path = work / f"calls-{round_}.ndjson"
            batch_file(path, spec, args.calls, f"r{round_}-{os.getpid()}")
            rate, wall = run_batch(path, args.window, env, "none")
            ours.append(rate)
            walls.append(wall)
            ceiling_file(path, spec, args.calls)
            ceiling.append(run_batch(path, args.window, env, "none")[0])
            if args.ledger:
                batch_file(path, spec, args.calls, f"l{round_}-{os.getpid()}")
                ledger.append(run_batch(path, args.window, env, str(work / "state.sqlite3"))[0])
    best, baseline = max(ours), max(base)
    ratio = best / baseline
    verdict = "ok" if ratio >= TARGET else "UNDER TARGET"
    print(f"batch {args.calls} calls (offer, answer, unforce), window {args.window}: rtppctl {best:7.0f} calls/s "
          f"(whole process {args.calls / min(walls):.0f}/s)  minimal client {baseline:7.0f} cycles/s  "
          f"ratio {ratio:4.2f}x  (target >= {TARGET}x) {verdict}")
    print(f"  the run's own ceiling (3 raw V lines a call): {max(ceiling):7.0f} calls/s "
          f"({max(ceiling) / baseline:4.2f}x)")
    if ledger:
        print(f"  with a state file (SQLite ledger): {max(ledger):7.0f} calls/s ({max(ledger) / baseline:4.2f}x)")
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
