"""`listen --exec`: one process per event, never through a shell, never in the listener's way.

`ExecRunner` takes event records as they come (`submit`) and runs the command once per record
(`ops.listen.fires_exec` says which), with the record in RTPPCTL_* variables
(`ops.listen.exec_environment`). The rules it keeps:

- At most `limit` commands run at once; the listener never waits for them: up to MAX_WAITING
  events wait for a free slot, more are dropped (and counted).
- Each command runs in a process group of its own, so that a timeout or a second signal stops what
  it started too. One still running after its timeout gets SIGTERM, then SIGKILL EXEC_GRACE
  seconds later.
- The end (`drain`): what waits is run, unless the run was interrupted (a signal) or failed, then
  it is dropped; what runs gets the rest of its timeout, and a second signal kills it.
- The counts always add up: `started + dropped == events` (the events the command was for);
  `failed` counts the started ones that exited non-zero, ran out of time, were killed or could not
  be started, and `timed_out` those of them that ran out of time.

Nothing here prints: what goes wrong with a command is said through the `warn` and `status`
callables the caller gives (the command line's `Output.warn` and `Output.status`).
"""

from __future__ import annotations

import os
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Events waiting for an --exec slot; more are dropped (and counted).
MAX_WAITING = 1000
#: Seconds between SIGTERM and SIGKILL for a command past its --exec-timeout.
EXEC_GRACE = 1.0
#: How often waiting commands are started and running ones checked while there are any.
EXEC_POLL = 0.05


@dataclass
class _Job:
    """One running command."""

    process: Any
    record: dict[str, Any]
    deadline: float
    #: Signals sent so far: 0, then SIGTERM at the deadline, then SIGKILL.
    stage: int = 0
    timed_out: bool = False
    killed: bool = False


@dataclass(frozen=True)
class ExecCounts:
    """What became of the events --exec was for (the summary's `exec`)."""

    events: int
    started: int
    dropped: int
    failed: int
    timed_out: int


class ExecRunner:
    """--exec: one process per event, at most `limit` at once, each stopped after `timeout` seconds."""

    def __init__(self, argv: list[str], *, limit: int, timeout: float, unknown: bool,
                 warn: Callable[[str], None], status: Callable[[str], None]) -> None:
        self.argv = argv
        self.limit = limit
        self.timeout = timeout
        #: Run for unknown lines too (--exec-unknown).
        self.unknown = unknown
        self._warn = warn
        self._status = status
        self.running: list[_Job] = []
        self.waiting: deque[tuple[dict[str, Any], bytes | None]] = deque()
        #: events: what --exec was for; each one is started or dropped, never both, never neither.
        self.events = self.started = self.dropped = self.failed = self.timed_out = 0
        self._environment = dict(os.environ)

    @property
    def busy(self) -> bool:
        return bool(self.waiting or self.running)

    @property
    def counts(self) -> ExecCounts:
        return ExecCounts(self.events, self.started, self.dropped, self.failed, self.timed_out)

    def submit(self, record: dict[str, Any], raw: bytes | None) -> None:
        """One event's record (and its line as received): run for it now, or when a slot is free."""
        from rtppctl.ops.listen import fires_exec  # noqa: PLC0415

        if not fires_exec(record, unknown=self.unknown):
            return
        self.events += 1
        if len(self.waiting) >= MAX_WAITING:
            self.dropped += 1
            return
        self.waiting.append((record, raw))
        self.pump()

    def pump(self) -> None:
        """Reap what ended, signal what ran out of time, start what waits while slots are free."""
        now = time.monotonic()
        still = []
        for job in self.running:
            code = job.process.poll()
            if code is not None:
                self._ended(job, code)
                continue
            if job.stage == 0 and now >= job.deadline:
                job.timed_out = True
                self._signal(job, signal.SIGTERM)
            elif job.stage == 1 and now >= job.deadline + EXEC_GRACE:
                self._signal(job, signal.SIGKILL)
            still.append(job)
        self.running = still
        while self.waiting and len(self.running) < self.limit:
            self._start(*self.waiting.popleft())

    def _start(self, record: dict[str, Any], raw: bytes | None) -> None:
        import subprocess  # noqa: PLC0415

        from rtppctl.ops.listen import exec_environment  # noqa: PLC0415

        self.started += 1
        try:
            # A group of its own: a timeout or a second Ctrl-C stops what the command started too.
            process = subprocess.Popen(self.argv, env={**self._environment, **exec_environment(record, raw)},
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            self.failed += 1
            self._warn(f"--exec cannot run {self.argv[0]!r}: {getattr(exc, 'strerror', None) or exc}")
            return
        self.running.append(_Job(process, record, time.monotonic() + self.timeout))

    def _signal(self, job: _Job, number: int) -> None:
        job.stage = 1 if number == signal.SIGTERM else 2
        try:
            os.killpg(job.process.pid, number)
        except (ProcessLookupError, PermissionError):
            pass  # the group is gone already; the next poll reaps the command

    def _ended(self, job: _Job, code: int) -> None:
        record = job.record
        event = f"the {record['type']} event at {record['time']:.3f}"
        if job.timed_out:
            self.failed += 1
            self.timed_out += 1
            self._warn(f"--exec ran longer than --exec-timeout {self.timeout:g} s for {event}: stopped")
        elif job.killed:
            self.failed += 1
        elif code != 0:
            self.failed += 1
            self._warn(f"--exec exited {code} for {event}")

    def drain(self, signals: Callable[[], int], *, drop_waiting: bool) -> None:
        """At the end: run what waits (unless `drop_waiting`, or a signal came: `signals()` counts
        them; dropped then), wait for what runs, each within its timeout; a second signal kills
        what runs."""
        told = False
        while self.busy:
            caught = signals()
            if (caught or drop_waiting) and self.waiting:
                self.dropped += len(self.waiting)
                self.waiting.clear()
            if caught >= 2:
                left = [job for job in self.running if not job.killed]
                for job in left:
                    job.killed = True
                    self._signal(job, signal.SIGKILL)
                if left:
                    self._warn(f"stopped {len(left)} command(s) from --exec before they ended")
            elif caught and self.running and not told:
                told = True
                self._status(f"waiting up to {self.timeout:g} s for {len(self.running)} command(s) from --exec; "
                             "Ctrl-C or SIGTERM again stops them")
            self.pump()
            if self.busy:
                time.sleep(0.02)


__all__ = ["EXEC_GRACE", "EXEC_POLL", "MAX_WAITING", "ExecCounts", "ExecRunner"]
