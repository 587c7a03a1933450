"""The one renderer: decides between Rich on a terminal, plain text in a pipe, and JSON.

Commands hand it plain data (dicts, lists, rows) and never print themselves. Data goes to stdout,
diagnostics (errors, warnings, -v notes, -vv wire traces) to stderr. `--json` prints exactly one
JSON object per command (NDJSON, one object per line, for streams). Without `--json`, a terminal
gets Rich tables; a pipe gets plain aligned text, so scripts and `grep` see no escape codes and
one-shot commands do not pay for importing Rich. No colour when stdout is not a terminal, when
NO_COLOR is set, or with --no-color.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TextIO

from rtppctl.proto.errors import RtppctlError

Row = Sequence[Any]


class Column(NamedTuple):
    """One table column: its header and how its cells are aligned."""

    header: str
    justify: str = "left"  # "left" or "right"


@dataclass
class Table:
    """A titled table, rendered by Rich on a terminal and as aligned text in a pipe."""

    columns: list[Column]
    rows: list[Row] = field(default_factory=list)
    title: str | None = None
    caption: str | None = None


def _plain_cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:.0f}"
    return str(value)


def _json_default(value: Any) -> Any:
    if hasattr(value, "__fspath__"):
        return os.fspath(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class Output:
    """Owns stdout and stderr for one command run."""

    def __init__(
        self,
        *,
        json_mode: bool = False,
        color: bool | None = None,
        verbose: int = 0,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.json_mode = json_mode
        self.verbose = verbose
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        is_tty = _isatty(self.stdout)
        if color is None:
            color = is_tty and not os.environ.get("NO_COLOR")
        self.color = bool(color)
        self.rich = is_tty  # tables and panels only on a terminal
        self._console = None
        self._err_console = None

    # -- data ---------------------------------------------------------------------------------

    def emit(self, data: dict[str, Any], *tables: Table | str, ok: bool = True) -> None:
        """Print one command's result: `data` as JSON, or `tables` (and lines) for people."""
        if self.json_mode:
            import json  # noqa: PLC0415 - only --json pays for it

            self.stdout.write(json.dumps(data, default=_json_default, sort_keys=False) + "\n")
            self.stdout.flush()
            return
        for number, item in enumerate(tables):
            if isinstance(item, Table):
                if number and not self.rich:
                    self.stdout.write("\n")  # tables in a pipe stay apart, as Rich keeps them
                self.table(item)
            else:
                self.line(item)

    def line(self, text: str = "", style: str | None = None) -> None:
        if self.rich and style:
            self.console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)
        else:
            self.stdout.write(text + "\n")

    def raw(self, text: str) -> None:
        """Text printed exactly as given (SDP bodies, relay replies)."""
        self.stdout.write(text)

    def diff(self, before: str, after: str, before_name: str, after_name: str) -> None:
        """A unified diff of two texts, line endings shown as they are; coloured on a terminal."""
        import difflib  # noqa: PLC0415

        lines = difflib.unified_diff(
            before.splitlines(keepends=True), after.splitlines(keepends=True), before_name, after_name
        )
        colour = self.color and self.rich
        for line in lines:
            shown = line.rstrip("\r\n") + ("\\r" if line.endswith("\r\n") and not line.startswith(("---", "+++")) else "")
            if colour and line.startswith(("+", "-")) and not line.startswith(("+++", "---")):
                code = "32" if line.startswith("+") else "31"
                self.stdout.write(f"\x1b[{code}m{shown}\x1b[0m\n")
            else:
                self.stdout.write(shown + "\n")

    def table(self, table: Table) -> None:
        if self.rich:
            self._rich_table(table)
        else:
            self._plain_table(table)

    def _plain_table(self, table: Table) -> None:
        cells = [[_plain_cell(value) for value in row] for row in table.rows]
        headers = [column.header for column in table.columns]
        widths = [len(h) for h in headers]
        for row in cells:
            for i, cell in enumerate(row):
                widths[i] = max(widths[i], len(cell))
        out = self.stdout
        if table.title:
            out.write(table.title + "\n")

        def fmt(row: list[str]) -> str:
            parts = []
            for i, cell in enumerate(row):
                if table.columns[i].justify == "right":
                    parts.append(cell.rjust(widths[i]))
                else:
                    parts.append(cell.ljust(widths[i]))
            return "  ".join(parts).rstrip()

        out.write(fmt(headers) + "\n")
        for row in cells:
            out.write(fmt(row) + "\n")
        if table.caption:
            out.write(table.caption + "\n")

    def _rich_table(self, table: Table) -> None:
        from rich.table import Table as RichTable  # noqa: PLC0415 - only terminals pay for Rich

        rich_table = RichTable(title=table.title, caption=table.caption, title_justify="left")
        for column in table.columns:
            rich_table.add_column(column.header, justify=column.justify)  # type: ignore[arg-type]
        for row in table.rows:
            rich_table.add_row(*(_rich_cell(value) for value in row))
        self.console.print(rich_table)

    @property
    def console(self):  # noqa: ANN201 - rich.console.Console, imported lazily
        if self._console is None:
            from rich.console import Console  # noqa: PLC0415

            self._console = Console(file=self.stdout, no_color=not self.color, highlight=False)
        return self._console

    # -- diagnostics ----------------------------------------------------------------------------

    def error(self, err: RtppctlError) -> None:
        self._diag(f"rtppctl: error: {err.message}", "bold red")
        if err.hint:
            self._diag(f"  hint: {err.hint}", "yellow")

    def warn(self, message: str) -> None:
        self._diag(f"rtppctl: warning: {message}", "yellow")

    def note(self, message: str, level: int = 1) -> None:
        """A diagnostic shown from -v (level 1) or -vv (level 2) on."""
        if self.verbose >= level:
            self._diag(message, "dim")

    def trace(self, direction: str, node: str, data: bytes) -> None:
        """Wire trace for -vv: every datagram or line sent (>) and received (<); dropped (!)."""
        text = data.decode("utf-8", "backslashreplace")
        self.stderr.write(f"{direction} {node} {text!r}\n")

    def _diag(self, text: str, style: str) -> None:
        if self.color and _isatty(self.stderr):
            code = {"bold red": "1;31", "yellow": "33", "dim": "2"}.get(style, "0")
            self.stderr.write(f"\x1b[{code}m{text}\x1b[0m\n")
        else:
            self.stderr.write(text + "\n")
        self.stderr.flush()


def _rich_cell(value: Any) -> Any:
    if value is True:
        return "[green]yes[/green]"
    if value is False:
        return "[red]no[/red]"
    return _plain_cell(value)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
