"""Print the lowest version of each runtime dependency that pyproject.toml allows, as pins.

    pip install $(python scripts/lowest_deps.py)

CI installs these and runs the tests that need no relay (`make test-lowest`), so a lower bound
that the code does not really support fails there instead of on a user's machine.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def lowest_pins(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    pins = []
    for requirement in project["dependencies"]:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.\-\[\]]+)\s*>=\s*([0-9][^,;\s]*)\s*(?:,.*)?", requirement)
        if not match:
            raise SystemExit(f"{pyproject}: {requirement!r} has no lower bound (name>=version)")
        pins.append(f"{match[1]}=={match[2]}")
    return pins


if __name__ == "__main__":
    print(" ".join(lowest_pins()))
    sys.exit(0)
