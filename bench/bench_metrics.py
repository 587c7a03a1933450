"""A `metrics --serve` scrape of 10 relays, one of them silent, against the scrape's budget.

Nine real engines (`_engine.py`) and one UDP socket on loopback that never answers form one set;
`rtppctl metrics --serve 127.0.0.1:0 --budget B` runs as a process of its own with the state file
in use, and is scraped over HTTP with urllib, one scrape after another. The clock runs from the
request to the last byte of the answer. For scale, the same number of scrapes of the nine live
relays alone (a second server, same budget) is measured in the same run, interleaved.

Target (metrics issue): the median scrape with the silent relay takes at most 1.10x the budget
(a dead relay makes its `up` 0, never a hung scrape). The bench exits 1 when it is missed.

    .venv/bin/python bench/bench_metrics.py [--budget 2] [--scrapes 7]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _engine import engine, precompile  # noqa: E402

TARGET = 1.10
RELAYS = 9


@contextlib.contextmanager
def served(config: Path, state: Path, budget: float, env: dict[str, str]):
    """The base URL of a `metrics --serve` process over `config`; stopped with SIGTERM afterwards."""
    process = subprocess.Popen(
        [sys.executable, "-m", "rtppctl", "--config", str(config), "--state", str(state), "metrics",
         "--serve", "127.0.0.1:0", "--budget", str(budget)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert process.stderr is not None
        for line in process.stderr:
            found = re.match(r"serving (http://\S+) ", line)
            if found:
                break
        else:
            raise SystemExit("metrics --serve did not start")
        yield found.group(1)
    finally:
        process.terminate()
        process.communicate(timeout=10)


def scrape(url: str) -> tuple[float, str]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        text = response.read().decode()
    return time.perf_counter() - started, text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=2.0)
    parser.add_argument("--scrapes", type=int, default=7)
    options = parser.parse_args()
    precompile()
    work = Path(tempfile.mkdtemp(prefix="bench-metrics-"))
    env = {**os.environ, "RTPPCTL_CONFIG": os.devnull}
    with contextlib.ExitStack() as stack:
        live = [stack.enter_context(engine()) for _ in range(RELAYS)]
        silent = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        silent.bind(("127.0.0.1", 0))
        dead = f"udp:127.0.0.1:{silent.getsockname()[1]}"
        with_dead = work / "with-silent.toml"
        with_dead.write_text(f'rtpproxy_sock = ["{" ".join([*live, dead])}"]\n')
        all_live = work / "live.toml"
        all_live.write_text(f'rtpproxy_sock = ["{" ".join(live)}"]\n')
        slow_url = stack.enter_context(served(with_dead, work / "a.sqlite3", options.budget, env))
        fast_url = stack.enter_context(served(all_live, work / "b.sqlite3", options.budget, env))
        # One scrape each first: the state file is created, every module loaded.
        _, text = scrape(slow_url)
        if f'rtppctl_relay_up{{node="{dead}",set="0"}} 0.0' not in text or "rtppctl_scrape_nodes 9.0" not in text:
            raise SystemExit("the scrape did not report 9 relays up and the silent one down")
        scrape(fast_url)
        slow, fast = [], []
        for _ in range(options.scrapes):
            slow.append(scrape(slow_url)[0])
            fast.append(scrape(fast_url)[0])
    ratio = statistics.median(slow) / options.budget
    print(f"9 live relays:              median scrape {statistics.median(fast) * 1000:.1f} ms")
    print(f"9 live relays + 1 silent:   median scrape {statistics.median(slow) * 1000:.1f} ms "
          f"(max {max(slow) * 1000:.1f} ms), budget {options.budget:g} s")
    print(f"ratio to the budget {ratio:.2f}x (target <= {TARGET}x): {'ok' if ratio <= TARGET else 'TOO SLOW'}")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
