"""Start-up cost of one-shot commands, against a minimal Typer app measured in the same run.

Targets (issue 2): `rtppctl version -t udp:...` at most 1.15x the wall time of a minimal Typer app
that sends the same `V` and prints the reply; `rtppctl --help` at most 1.2x that app's `--help`.
Runs alternate between the two programs so machine noise hits both alike; medians are compared.

    .venv/bin/python bench/bench_startup.py [--runs 21]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _engine import engine, precompile  # noqa: E402

MINIMAL_APP = '''
import os, socket
import typer

app = typer.Typer()

@app.command()
def version(target: str = typer.Option(..., "--target", "-t")) -> None:
    """Send V and print the reply."""
    host, port = target.split(":", 1)[1].rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(1.0)
    cookie = f"{os.getpid()}_1"
    sock.sendto(f"{cookie} V".encode(), (host, int(port)))
    print(sock.recv(65535).decode().split(" ", 1)[1], end="")

@app.command()
def other() -> None:
    """A second command, so that the app is a group like rtppctl."""

if __name__ == "__main__":
    app()
'''


def wall_time(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{argv} failed: {result.stderr.decode()}")
    return elapsed


def compare(name: str, ours: list[str], baseline: list[str], runs: int, target: float, env: dict[str, str]) -> bool:
    ours_times, base_times = [], []
    for _ in range(2):  # warm the page cache and .pyc files
        wall_time(ours, env)
        wall_time(baseline, env)
    for _ in range(runs):
        ours_times.append(wall_time(ours, env))
        base_times.append(wall_time(baseline, env))
    ours_med, base_med = statistics.median(ours_times), statistics.median(base_times)
    ratio = ours_med / base_med
    verdict = "ok" if ratio <= target else "OVER TARGET"
    print(f"{name:<28} rtppctl {ours_med * 1000:7.1f} ms  baseline {base_med * 1000:7.1f} ms  ratio {ratio:5.2f}x  (target <= {target}x) {verdict}")
    return ratio <= target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    rtppctl = shutil.which("rtppctl", path=str(Path(sys.executable).parent)) or "rtppctl"
    precompile()
    workdir = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    app_path = workdir / "minimal_app.py"
    app_path.write_text(MINIMAL_APP)
    # No config file and no colour: measure the program, not the environment.
    env = {**os.environ, "XDG_CONFIG_HOME": str(workdir), "NO_COLOR": "1"}
    env.pop("RTPPCTL_CONFIG", None)
    ok = True
    with engine() as spec:
        ok &= compare("version -t (one-shot)", [rtppctl, "version", "-t", spec],
                      [sys.executable, str(app_path), "version", "-t", spec], args.runs, 1.15, env)
        ok &= compare("--help", [rtppctl, "--help"], [sys.executable, str(app_path), "--help"], args.runs, 1.2, env)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
