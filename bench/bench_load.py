"""`rtppctl load` against a minimal pipelined client doing the same cycles, same relay, same run.

Targets (issue "load and batch"): offer+answer+delete cycles per second at least 0.8x those of
`_minimal_client.cycles` (a raw UDP socket, window 16: per call U, then L once U answered, then D
once L answered), and CPU time per call at most 2x the minimal client's.

What is timed on rtppctl's side: `rtppctl --state none --json load -t SPEC --calls N --window 16` as
a process, minus the same command with `--calls 1`, which is the start-up (interpreter, imports,
config, the module's probe, the relay's counters read before and after) and one call. So the rate
is (N - 1) / (t(N) - t(1)) and the CPU per call (cpu(N) - cpu(1)) / (N - 1), the CPU being the
child's own (user + system, from getrusage): every per-call cost a user pays counts (planning,
checking each Call-ID, scheduling, the engine, histograms, progress, the summary), start-up does
not, since the minimal client has none. The minimal client's CPU is this process's time in it
(time.process_time). For scale it also runs the same cycles over rtppctl's engine alone (a bare loop
over `net.pipeline`, in this process): what part of load's cost is the engine's. Rounds alternate
between them all, so machine noise hits all alike; the best of each counts (noise only ever slows a
run down).

    .venv/bin/python bench/bench_load.py [--calls 20000] [--rounds 5] [--window 16]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _engine import engine, precompile  # noqa: E402
from _minimal_client import cycles  # noqa: E402

RATE_TARGET = 0.8
CPU_TARGET = 2.0


def engine_cycles(spec: str, n: int, window: int) -> tuple[float, float]:
    """The same cycles over rtppctl's engine (`net.pipeline`) with nothing else: fixed command
    lines, no planning, checking, scheduling or histograms. Not a target: it says how much of
    load's cost is the engine's (cycles per second, CPU seconds per cycle of this process)."""
    from rtppctl.net.pipeline import Pipeline, Request  # noqa: PLC0415
    from rtppctl.proto.url import parse_node  # noqa: PLC0415

    node = parse_node(spec)
    prefix = f"e{os.getpid()}x{time.monotonic_ns()}"
    pipeline = Pipeline(window=window)
    started = finished = in_progress = 0

    def send(number: int, step: int) -> None:
        call = f"{prefix}-{number}@bench"
        command = (f"U {call} 127.0.0.1 30000 ft;1", f"L {call} 127.0.0.1 30010 ft;1 tt;1", f"D {call} ft tt")[step]
        pipeline.submit(Request(node, command, call, (number, step)))

    cpu, wall = time.process_time(), time.perf_counter()
    try:
        while finished < n:
            while started < n and in_progress < window * 3 // 2:
                send(started, 0)
                started += 1
                in_progress += 1
            for outcome in pipeline.poll(1.0):
                number, step = outcome.request.tag
                if outcome.reply is None:
                    raise SystemExit(f"the engine-only loop failed: {outcome.error}")
                if step < 2:
                    send(number, step + 1)
                else:
                    finished += 1
                    in_progress -= 1
        return n / (time.perf_counter() - wall), (time.process_time() - cpu) / n
    finally:
        pipeline.close()


def timed_load(spec: str, calls: int, window: int, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of one `rtppctl load` run; checks every call completed."""
    args = [sys.executable, "-m", "rtppctl", "--state", "none", "--json", "load", "-t", spec, "--calls", str(calls),
            "--window", str(window), "--seed", "1"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(args, capture_output=True, env=env, timeout=600, check=False,
                          cwd=Path(__file__).resolve().parent.parent)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"rtppctl load failed (exit {done.returncode}): {done.stderr.decode()[-400:]}")
    summary = json.loads(done.stdout.splitlines()[-1])
    if summary["calls_completed"] != calls:
        raise SystemExit(f"rtppctl load completed {summary['calls_completed']} of {calls} calls: {summary['verdict']}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--window", type=int, default=16)
    args = parser.parse_args()
    precompile()
    workdir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    env = {**os.environ, "XDG_CONFIG_HOME": str(workdir), "XDG_STATE_HOME": str(workdir)}
    env.pop("RTPPCTL_CONFIG", None)
    ones: list[tuple[float, float]] = []
    wholes: list[tuple[float, float]] = []
    base: list[tuple[float, float]] = []
    bare: list[tuple[float, float]] = []
    with engine() as spec:
        host, port = spec.split(":")[1], int(spec.split(":")[2])
        cycles((host, port), 2000, args.window)  # warm the relay and the page cache
        timed_load(spec, 100, args.window, env)
        for _ in range(args.rounds):
            ones.append(timed_load(spec, 1, args.window, env))
            wholes.append(timed_load(spec, args.calls, args.window, env))
            base.append(cycles((host, port), args.calls, args.window))
            bare.append(engine_cycles(spec, args.calls, args.window))
    # Noise only ever adds time: the shortest start-up and the best of each side are the closest
    # to the truth.
    one_wall, one_cpu = min(w for w, _ in ones), min(c for _, c in ones)
    ours = [((args.calls - 1) / max(wall - one_wall, 1e-9), max(cpu - one_cpu, 1e-9) / (args.calls - 1))
            for wall, cpu in wholes]
    best_rate, best_cpu = max(r for r, _ in ours), min(c for _, c in ours)
    base_rate, base_cpu = max(r for r, _ in base), min(c for _, c in base)
    rate_ratio, cpu_ratio = best_rate / base_rate, best_cpu / base_cpu
    rate_ok, cpu_ok = rate_ratio >= RATE_TARGET, cpu_ratio <= CPU_TARGET
    print(f"load --calls {args.calls} --window {args.window}   rtppctl {best_rate:7.0f} calls/s "
          f"{best_cpu * 1e6:6.1f} us CPU/call   minimal client {base_rate:7.0f} calls/s {base_cpu * 1e6:6.1f} us CPU/call")
    print(f"  calls/s ratio {rate_ratio:4.2f}x (target >= {RATE_TARGET}x) {'ok' if rate_ok else 'UNDER TARGET'}; "
          f"CPU/call ratio {cpu_ratio:4.2f}x (target <= {CPU_TARGET}x) {'ok' if cpu_ok else 'OVER TARGET'}")
    bare_rate, bare_cpu = max(r for r, _ in bare), min(c for _, c in bare)
    print(f"  of which the engine alone (net.pipeline, bare cycles): {bare_rate:7.0f} calls/s {bare_cpu * 1e6:6.1f} us "
          f"CPU/call ({bare_cpu / base_cpu:4.2f}x the minimal client's CPU)")
    print(f"  start-up (1 call) {one_wall * 1000:.0f} ms, {one_cpu * 1000:.0f} ms CPU; load average {os.getloadavg()[0]:.2f}")
    print("  rounds, rtppctl:", " ".join(f"{r:.0f}/s {c * 1e6:.0f}us" for r, c in ours))
    print("  rounds, minimal:", " ".join(f"{r:.0f}/s {c * 1e6:.0f}us" for r, c in base))
    print("  rounds, engine alone:", " ".join(f"{r:.0f}/s {c * 1e6:.0f}us" for r, c in bare))
    return 0 if rate_ok and cpu_ok else 1


if __name__ == "__main__":
    sys.exit(main())
