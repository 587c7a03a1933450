"""Start-up of one-shot commands as users run them, against a minimal Typer app measured in the same run.

What is compared (wall time of the whole process, the console script as installed):

    rtppctl version -t URL                                                 vs  minimal version -t URL
    rtppctl --state none offer FILE -t URL --call-id C --from-tag F        vs  minimal offer (same arguments)
    rtppctl --help                                                         vs  minimal --help

The minimal app (MINIMAL_APP below) is a two-command Typer app doing the same work by hand:
`version` sends one `V` and prints the reply; `offer` reads the same one-stream SDP file, sends the
same `U` (cookie, codecs, address, port, tag and stream number as rtppctl sends them) over UDP,
puts the reply's address and port into c= and m=, adds the nortpproxy marker and prints the SDP.
Before timing, the bench checks that both send the same `U` and print the same SDP. Both talk to
a real engine (`_engine.py`).

Targets (issue 15, section 5), as medians of interleaved runs (at least 15, default 21): each
one-shot command at most 1.10x its minimal command; `--help` at most 1.2x. The bench exits 1
when a target is missed.

After the timings it reports, per command, where rtppctl's time goes:
- rtppctl's own modules at import (`python -X importtime`, median of several runs, garbage
  collection off so that a collection does not land on whichever module allocates at that
  moment): self time, the standard-library and third-party modules each pulled in first
  ("+deps"), the dataclasses and regexes each builds at import, and whether any of its code ran
  in the command at all. `importlib.import_module` is invisible to `-X importtime` (it bypasses
  the instrumented C import path), so these runs route it through `__import__`: the command
  modules `app.py` imports by name are counted like every other module.
- the phases of one run, for rtppctl and the minimal app side by side (instrumented runs,
  interleaved, medians): interpreter start-up, importing Typer and the app, building the command
  tree, Typer/Click parsing (with the pydantic TypeAdapters Typer >= 0.29 builds for each
  parameter as it parses, typer/_adapters.py: each parameter of the root callback and of the
  command costs one, and the first one imports pydantic), the command's own work (imports it does
  lazily, waits for the relay), help rendering, exit (mostly the interpreter's final garbage
  collection), and the collections during the run. The import hook adds a little to every
  import; the wall-time medians at the top are the measure, the phases say where it goes.

    .venv/bin/python bench/bench_startup.py [--runs 21] [--report-runs 7] [--no-report]
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _engine import engine, precompile  # noqa: E402

VERSION_TARGET = 1.10
OFFER_TARGET = 1.10
HELP_TARGET = 1.2
CALL_ID = "bench-startup-call@example.invalid"
FROM_TAG = "bench-from-tag"

#: One audio stream, as a phone offers it (CRLF lines); documentation addresses only.
OFFER_SDP = (
    "v=0\r\n"
    "o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n"
    "s=-\r\n"
    "c=IN IP4 192.0.2.10\r\n"
    "t=0 0\r\n"
    "m=audio 49170 RTP/AVP 0 8 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-15\r\n"
    "a=ptime:20\r\n"
)

MINIMAL_APP = '''
import os, socket, sys
from pathlib import Path
import typer

app = typer.Typer()


def request(target: str, command: str) -> str:
    host, port = target.split(":", 1)[1].rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(1.0)
    cookie = f"{os.getpid()}_1"
    sock.sendto(f"{cookie} {command}".encode(), (host, int(port)))
    reply = sock.recv(65535).decode()
    if reply.split(" ", 1)[0] != cookie:
        raise SystemExit("foreign reply")
    return reply.split(" ", 1)[1]


@app.command()
def version(target: str = typer.Option(..., "--target", "-t")) -> None:
    """Send V and print the reply."""
    print(request(target, "V"), end="")


@app.command()
def offer(
    file: Path = typer.Argument(...),
    target: str = typer.Option(..., "--target", "-t"),
    call_id: str = typer.Option(..., "--call-id"),
    from_tag: str = typer.Option(..., "--from-tag"),
) -> None:
    """Send U for a one-stream SDP and print the SDP rewritten to the relay's address and port."""
    text = file.read_bytes().decode()
    eol = "\\r\\n" if "\\r\\n" in text else "\\n"
    lines = text.split(eol)
    address = next(line for line in lines if line.startswith("c=")).split()[2]
    media = next(index for index, line in enumerate(lines) if line.startswith("m="))
    kind, port, proto, *formats = lines[media][2:].split()
    command = f"Uc{','.join(formats)} {call_id} {address} {port} {from_tag};1"
    if os.environ.get("BENCH_SHOW_U"):
        print(command, file=sys.stderr)
    reply = request(target, command).split()
    relay_port, relay_address = reply[0], reply[1] if len(reply) > 1 else target.split(":")[1]
    family = "IP6" if ":" in relay_address else "IP4"
    lines = [f"c=IN {family} {relay_address}" if line.startswith("c=") else line for line in lines]
    lines[media] = " ".join([f"m={kind}", relay_port, proto, *formats])
    lines.insert(len(lines) - 1 if lines[-1] == "" else len(lines), "a=nortpproxy:yes")
    sys.stdout.write(eol.join(lines))


if __name__ == "__main__":
    app()
'''

#: Runs rtppctl's console entry point with `importlib.import_module` routed through `__import__`,
#: so that `-X importtime` sees the command modules app.py imports by name. Garbage collection is
#: off in these runs: its cost is reported among the phases, not spread over random modules.
IMPORTTIME_SHIM = """
import gc, importlib, sys
gc.disable()  # a collection would land on whichever module happens to allocate at that moment
_import_module = importlib.import_module
def import_module(name, package=None):
    if name.startswith("."):
        return _import_module(name, package)
    __import__(name)
    return sys.modules[name]
importlib.import_module = import_module
sys.argv[0] = "rtppctl"
from rtppctl.cli import main
main()
"""

#: One instrumented run: `python probe.py OUT PROGRAM MODE ARGS...`, PROGRAM "rtppctl" or the
#: minimal app's path, MODE "timing" or "usage". Writes repr() of a dict to OUT (no json import:
#: the probe must not import what the program would import later).
PROBE = r'''
import sys, time
T_START = time.perf_counter()
import builtins, gc, importlib

out_path, program, mode, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
IMPORTS = " > imports"
totals, counts, stack, per_module = {}, {}, [], {}
collections = [0.0, [0, 0, 0], [0.0]]  # started, runs per generation, seconds in all


def collected(phase, info):
    if phase == "start":
        collections[0] = time.perf_counter()
    else:
        collections[1][info["generation"]] += 1
        collections[2][0] += time.perf_counter() - collections[0]


gc.callbacks.append(collected)


def enter(label):
    frame = [label, time.perf_counter(), 0.0]
    stack.append(frame)
    return frame


def leave(frame):
    stack.pop()
    elapsed = time.perf_counter() - frame[1]
    totals[frame[0]] = totals.get(frame[0], 0.0) + elapsed - frame[2]
    counts[frame[0]] = counts.get(frame[0], 0) + 1
    if stack:
        stack[-1][2] += elapsed


def timed(label, function):
    def wrapper(*a, **k):
        frame = enter(label)
        try:
            return function(*a, **k)
        finally:
            leave(frame)
    return wrapper


real_import = builtins.__import__
patched = set()


def patch_late():
    # Patched as soon as the program has imported them, so the probe imports nothing early.
    if "socket" not in patched and "socket" in sys.modules:
        patched.add("socket")
        cls = sys.modules["socket"].socket
        cls.recv = timed("waiting for the relay (recv)", cls.recv)


def hooked_import(name, globals=None, locals=None, fromlist=(), level=0):
    if not stack or stack[-1][0].endswith(IMPORTS):
        return real_import(name, globals, locals, fromlist, level)
    frame = enter(stack[-1][0] + IMPORTS)
    try:
        return real_import(name, globals, locals, fromlist, level)
    finally:
        leave(frame)
        patch_late()


builtins.__import__ = hooked_import
_import_module = importlib.import_module


def import_module(name, package=None):
    if name.startswith("."):
        return _import_module(name, package)
    __import__(name)
    return sys.modules[name]


importlib.import_module = import_module


def initializing(module_name):
    module = sys.modules.get(module_name)
    return bool(getattr(getattr(module, "__spec__", None), "_initializing", False))


def count_for(module_name, slot, started, collecting):
    # A collection that happens to run inside is not the cost of the dataclass or regex.
    entry = per_module.setdefault(module_name, [0, 0.0, 0, 0.0])
    entry[slot] += 1
    entry[slot + 1] += time.perf_counter() - started - (collections[2][0] - collecting)


frame = enter("import typer")
import typer
import typer.main
leave(frame)

import dataclasses, re  # both loaded by typer already

_process_class = getattr(dataclasses, "_process_class", None)
if _process_class is not None:
    def process_class(cls, *a, **k):
        started, collecting = time.perf_counter(), collections[2][0]
        try:
            return _process_class(cls, *a, **k)
        finally:
            if cls.__module__.startswith("rtppctl"):
                count_for(cls.__module__, 0, started, collecting)
    dataclasses._process_class = process_class

_compile = re.compile


def compile_(pattern, flags=0):
    started, collecting = time.perf_counter(), collections[2][0]
    try:
        return _compile(pattern, flags)
    finally:
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if caller.startswith("rtppctl") and initializing(caller):
            count_for(caller, 2, started, collecting)


re.compile = compile_

_get_command = typer.main.get_command


def instrument(command, root=True):
    command.make_context = timed("parse global options" if root else "parse command options", command.make_context)
    if command.callback is not None:
        command.callback = timed("root callback" if root else "command body (own work)", command.callback)
    for sub in getattr(command, "commands", {}).values():
        instrument(sub, root=False)
    return command


typer.main.get_command = timed("Typer -> Click commands", lambda tree: instrument(_get_command(tree)))
import typer.core
if hasattr(typer.core, "build_runtime_param"):  # Typer >= 0.29: a pydantic TypeAdapter per parameter
    typer.core.build_runtime_param = timed("pydantic TypeAdapters", typer.core.build_runtime_param)
for cls in (typer.core.TyperCommand, typer.core.TyperGroup):
    cls.format_help = timed("render help (Rich)", cls.format_help)

used = set()
if mode == "usage":
    def profile(frame, event, arg):
        if event != "call":
            return
        name = frame.f_globals.get("__name__", "")
        if name.startswith("rtppctl") and frame.f_code.co_name != "<module>" and not initializing(name):
            used.add(name)


frame = enter("import the app module")
if program == "rtppctl":
    import rtppctl.cli.app as app_module
else:
    namespace = {"__name__": "minimal_app", "__file__": program}
    with open(program, encoding="utf-8") as source:
        code = compile(source.read(), program, "exec")
    exec(code, namespace)
leave(frame)

if program == "rtppctl":
    app_module.build_app = timed("build the Typer tree", app_module.build_app)
    from rtppctl.cli.common import RunContext
    RunContext.close = timed("close the run", RunContext.close)

frame = enter("dispatch (Click/Typer, the rest)")
if mode == "usage":
    sys.setprofile(profile)
try:
    if program == "rtppctl":
        code = app_module.run(args)
    else:
        namespace["app"](args, prog_name="minimal")
        code = 0
except SystemExit as exit_:
    code = exit_.code or 0
finally:
    sys.setprofile(None)
    leave(frame)
    sys.stdout.flush()
T_END = time.perf_counter()
result = {
    "start": T_START, "end": T_END, "code": code, "totals": totals, "counts": counts,
    "per_module": per_module, "used": sorted(used), "gc": collections[2][0], "gc_runs": collections[1],
    "loaded": sorted(name for name in sys.modules if name.startswith("rtppctl")),
}
with open(out_path, "w", encoding="utf-8") as out:
    out.write(repr(result))
'''

#: Phase labels in the order a run goes through them.
PHASES = [
    "interpreter start-up",
    "import typer",
    "import the app module",
    "build the Typer tree",
    "Typer -> Click commands",
    "parse global options",
    "parse command options",
    "pydantic TypeAdapters",
    "root callback",
    "command body (own work)",
    "waiting for the relay (recv)",
    "render help (Rich)",
    "close the run",
    "dispatch (Click/Typer, the rest)",
    "interpreter exit",
]


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
    print(f"{name:<24} rtppctl {ours_med * 1000:6.1f} ms  minimal {base_med * 1000:6.1f} ms  "
          f"ratio {ratio:4.2f}x  (target <= {target:.2f}x) {verdict}", flush=True)
    return ratio <= target


def check_same_work(rtppctl_args: list[str], minimal_args: list[str], env: dict[str, str]) -> None:
    """The two offers send the same U and print the same SDP, or the comparison means nothing."""
    ours = subprocess.run([*rtppctl_args[:1], "-vv", *rtppctl_args[1:]], capture_output=True, text=True, env=env,
                          check=False)
    theirs = subprocess.run(minimal_args, capture_output=True, text=True, env={**env, "BENCH_SHOW_U": "1"}, check=False)
    if ours.returncode or theirs.returncode:
        raise SystemExit(f"offer failed:\n{ours.stderr}\n{theirs.stderr}")
    sent = [m.group(1) for m in re.finditer(r"^> \S+ '\S+ (U[^']*)'$", ours.stderr, re.MULTILINE)]
    if sent != [theirs.stderr.strip()]:
        raise SystemExit(f"the minimal app does not send what rtppctl sends: {sent} vs {theirs.stderr.strip()!r}")
    if ours.stdout != theirs.stdout:
        raise SystemExit(f"the minimal app prints another SDP:\n{ours.stdout}\n---\n{theirs.stdout}")


# -- where the time goes -----------------------------------------------------------------------------------


def import_times(args: list[str], env: dict[str, str], runs: int) -> dict[str, tuple[float, float]]:
    """rtppctl's modules -> (self ms, ms of the other modules it imported first), medians over runs."""
    samples: dict[str, list[tuple[float, float]]] = {}
    line = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")
    for _ in range(runs):
        result = subprocess.run([sys.executable, "-X", "importtime", "-c", IMPORTTIME_SHIM, *args],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, check=False)
        rows = [(int(m[1]), int(m[2]), len(m[3]) // 2, m[4]) for m in map(line.match, result.stderr.splitlines()) if m]
        # -X importtime prints a module after its children: the children of a row are the rows
        # just above it one level deeper, back to the previous row at its own level.
        for index, (self_us, cumulative, depth, name) in enumerate(rows):
            if not name.startswith("rtppctl"):
                continue
            ours_below = 0
            for child in reversed(rows[:index]):
                if child[2] <= depth:
                    break
                if child[2] == depth + 1 and child[3].startswith("rtppctl"):
                    ours_below += child[1]
            deps = max(0, cumulative - self_us - ours_below)
            samples.setdefault(name, []).append((self_us / 1000, deps / 1000))
    return {name: (statistics.median(s for s, _ in values), statistics.median(d for _, d in values))
            for name, values in samples.items()}


def probe(script: Path, program: str, args: list[str], env: dict[str, str], mode: str, workdir: Path) -> dict:
    out = workdir / "probe.out"
    started = time.perf_counter()
    result = subprocess.run([sys.executable, str(script), str(out), program, mode, *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, check=False)
    ended = time.perf_counter()
    if result.returncode != 0 or not out.exists():
        raise SystemExit(f"probe of {program} {args} failed: {result.stderr}")
    data = ast.literal_eval(out.read_text(encoding="utf-8"))
    out.unlink()
    data["totals"]["interpreter start-up"] = data["start"] - started
    data["totals"]["interpreter exit"] = ended - data["end"]
    data["wall"] = ended - started
    return data


def phases(script: Path, programs: list[tuple[str, list[str]]], env: dict[str, str], runs: int,
           workdir: Path) -> list[dict]:
    """Median phase times of each (program, args), the programs' runs interleaved."""
    samples: list[list[dict]] = [[] for _ in programs]
    for _ in range(runs):
        for index, (program, args) in enumerate(programs):
            samples[index].append(probe(script, program, args, env, "timing", workdir))
    results = []
    for runs_of_one in samples:
        labels = {label for sample in runs_of_one for label in sample["totals"]}
        median = {label: statistics.median(s["totals"].get(label, 0.0) for s in runs_of_one) * 1000 for label in labels}
        median["total"] = statistics.median(s["wall"] for s in runs_of_one) * 1000
        median["gc"] = statistics.median(s["gc"] for s in runs_of_one) * 1000
        modules: dict[str, list[float]] = {}
        for name in {n for s in runs_of_one for n in s["per_module"]}:
            values = [s["per_module"].get(name, [0, 0.0, 0, 0.0]) for s in runs_of_one]
            modules[name] = [statistics.median(v[i] for v in values) for i in range(4)]
        results.append({
            "ms": median,
            "adapters": statistics.median(s["counts"].get("pydantic TypeAdapters", 0) for s in runs_of_one),
            "gc_runs": [statistics.median(s["gc_runs"][generation] for s in runs_of_one) for generation in range(3)],
            "per_module": modules,
        })
    return results


def report(name: str, rtppctl_args: list[str], minimal_args: list[str], env: dict[str, str], runs: int,
           script: Path, workdir: Path) -> None:
    ours, theirs = phases(script, [("rtppctl", rtppctl_args), (minimal_args[0], minimal_args[1:])], env, runs, workdir)
    used = set(probe(script, "rtppctl", rtppctl_args, env, "usage", workdir)["used"])
    imports = import_times(rtppctl_args, env, runs)

    print(f"\n== {name}: rtppctl's modules at import (python -X importtime, GC off, median of {runs} runs)")
    print("   self ms  +deps ms  dataclasses  regexes   code ran  module")
    ranked = sorted(imports.items(), key=lambda item: -item[1][0])
    for module, (self_ms, deps_ms) in ranked[:15]:
        dc_n, dc_s, rx_n, rx_s = ours["per_module"].get(module, [0, 0.0, 0, 0.0])
        dataclasses = f"{dc_n:3.0f} {dc_s * 1000:4.1f}ms" if dc_n else ""
        regexes = f"{rx_n:2.0f} {rx_s * 1000:4.1f}ms" if rx_n else ""
        ran = "yes" if module in used else "NO"
        print(f"   {self_ms:7.1f}  {deps_ms:8.1f}  {dataclasses:>11}  {regexes:>8}  {ran:>8}  {module}")
    if len(ranked) > 15:
        rest = ranked[15:]
        print(f"   {sum(s for _, (s, _) in rest):7.1f}  {sum(d for _, (_, d) in rest):8.1f}  "
              f"{'':>11}  {'':>8}  {'':>8}  ({len(rest)} more modules)")
    total_self = sum(s for s, _ in imports.values())
    total_deps = sum(d for _, d in imports.values())
    print(f"   total: {len(imports)} modules, {total_self:.1f} ms self, {total_self + total_deps:.1f} ms with the "
          "modules they import first")
    idle = [(module, imports[module][0]) for module in imports if module not in used and module != "rtppctl.cli"]
    if idle:
        idle.sort(key=lambda item: -item[1])
        print(f"   imported but none of their code ran ({sum(ms for _, ms in idle):.1f} ms self; a module used only "
              "for constants or types shows here too):")
        print("     " + ", ".join(f"{module} {ms:.1f}" for module, ms in idle))

    print(f"\n== {name}: phases of one run (instrumented, median of {runs} interleaved runs), ms")
    print(f"   {'':<44} {'rtppctl':>8} {'minimal':>8} {'extra':>7}")

    def row(label: str, ours_ms: float, theirs_ms: float) -> None:
        print(f"   {label:<44} {ours_ms:8.1f} {theirs_ms:8.1f} {ours_ms - theirs_ms:+7.1f}")

    for label in PHASES:
        # A phase's time with the imports done inside it; those imports again on a line of their own.
        inner = [ours["ms"].get(label + " > imports", 0.0), theirs["ms"].get(label + " > imports", 0.0)]
        whole = [ours["ms"].get(label, 0.0) + inner[0], theirs["ms"].get(label, 0.0) + inner[1]]
        shown = label
        if label == "pydantic TypeAdapters":
            shown = f"pydantic TypeAdapters ({ours['adapters']:.0f} / {theirs['adapters']:.0f} built)"
        if max(whole) >= 0.05:
            row(shown, *whole)
        if max(inner) >= 0.05 and not label.startswith("import "):
            row("  of which imports", *inner)
    row("total wall (instrumented)", ours["ms"]["total"], theirs["ms"]["total"])
    runs_ours, runs_theirs = ("/".join(f"{n:.0f}" for n in side["gc_runs"]) for side in (ours, theirs))
    row("garbage collection, inside the phases above", ours["ms"]["gc"], theirs["ms"]["gc"])
    print(f"   (collections of generation 0/1/2: {runs_ours} | {runs_theirs}; interpreter exit is mostly the final "
          "collection over every object start-up made)", flush=True)


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    found = []
    for name in ("typer", "click", "rich", "pydantic"):
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            pass
    return ", ".join(found)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="interleaved timed runs per program (at least 15)")
    parser.add_argument("--report-runs", type=int, default=7, help="runs per program for the import and phase reports")
    parser.add_argument("--no-report", action="store_true", help="timings and verdicts only")
    args = parser.parse_args()
    if args.runs < 15:
        parser.error("--runs must be at least 15")
    rtppctl = shutil.which("rtppctl", path=str(Path(sys.executable).parent)) or "rtppctl"
    precompile()
    workdir = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    app_path = workdir / "minimal_app.py"
    app_path.write_text(MINIMAL_APP)
    probe_path = workdir / "probe.py"
    probe_path.write_text(PROBE)
    sdp_path = workdir / "offer.sdp"
    sdp_path.write_bytes(OFFER_SDP.encode())
    # No config file and no colour: measure the program, not the environment.
    env = {**os.environ, "XDG_CONFIG_HOME": str(workdir), "XDG_STATE_HOME": str(workdir / "state"), "NO_COLOR": "1"}
    for name in ("RTPPCTL_CONFIG", "RTPPCTL_STATE", "PYTHONDONTWRITEBYTECODE", "PYTHONPROFILEIMPORTTIME"):
        env.pop(name, None)
    minimal = [sys.executable, str(app_path)]
    ok = True
    print(f"python {sys.version.split()[0]}, {versions()}; load average {os.getloadavg()[0]:.2f} (a busy machine "
          "makes every ratio noisier)", flush=True)
    try:
        with engine() as spec:
            offer_args = [str(sdp_path), "-t", spec, "--call-id", CALL_ID, "--from-tag", FROM_TAG]
            cases = [
                ("version -t (one-shot)", ["version", "-t", spec], ["version", "-t", spec], VERSION_TARGET),
                ("offer (one-shot)", ["--state", "none", "offer", *offer_args], ["offer", *offer_args], OFFER_TARGET),
                ("--help", ["--help"], ["--help"], HELP_TARGET),
            ]
            check_same_work([rtppctl, *cases[1][1]], [*minimal, *cases[1][2]], env)
            for name, ours, theirs, target in cases:
                ok &= compare(name, [rtppctl, *ours], [*minimal, *theirs], args.runs, target, env)
            if not args.no_report:
                for name, ours, theirs, _ in cases:
                    report(name, ours, [str(app_path), *theirs], env, args.report_runs, probe_path, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}; {'all targets met' if ok else 'a target was missed'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
