"""Run the command line in-process (fast) or as a real subprocess (entry points, TTY-free pipes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass

from rtppctl.cli.app import run


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


def cli(capsys, *args: str) -> Result:
    """Run rtppctl in this process with `args`; returns exit code and captured output."""
    capsys.readouterr()
    code = run(list(args))
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def cli_process(*args: str, input: str | None = None, env: dict[str, str] | None = None, timeout: float = 60) -> Result:
    """Run `python -m rtppctl` as a child process with the test's environment."""
    completed = subprocess.run(
        [sys.executable, "-m", "rtppctl", *args],
        input=input,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
    )
    return Result(completed.returncode, completed.stdout, completed.stderr)
