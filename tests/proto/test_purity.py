"""The protocol core stays pure (design.md, "Layers"): no module of rtppctl/proto imports anything
that does I/O, runs threads or processes, or belongs to another layer. Read from the sources, so a
new module is held to it as soon as it exists."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PROTO = Path(__file__).resolve().parents[2] / "rtppctl" / "proto"

#: Modules a pure core has no use for: sockets and polling, files and processes, threads, the
#: other layers of rtppctl and the command line's libraries.
FORBIDDEN = ("socket", "selectors", "select", "ssl", "os", "io", "shutil", "subprocess", "threading",
             "multiprocessing", "asyncio", "signal", "tempfile", "pathlib", "sqlite3", "typer", "click", "rich",
             "dpkt", "greenlet", "rtppctl.net", "rtppctl.cli", "rtppctl.relays", "rtppctl.ops", "rtppctl.monitoring",
             "rtppctl.files", "rtppctl.db", "rtppctl.embedded", "rtppctl.captures", "rtppctl.config")


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", sorted(PROTO.glob("*.py")), ids=lambda path: path.name)
def test_a_proto_module_imports_nothing_with_io_or_from_another_layer(path):
    bad = {name for name in imports(path) for forbidden in FORBIDDEN
           if name == forbidden or name.startswith(forbidden + ".")}
    assert not bad, f"{path.name} imports {sorted(bad)}"
