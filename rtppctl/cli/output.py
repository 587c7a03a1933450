"""The one renderer: decides between Rich on a terminal, plain text in a pipe, and JSON.

Commands never print and never ask which mode is on. A one-shot command hands `emit` its data (what
`--json` prints, one object) and its human view (tables, lines, verbatim text, a diff); a command
that reports events as they happen (`show --watch`, `stats --watch`, `listen`) opens a `stream`
and hands it each event's data and row, then a summary. Data goes to stdout, diagnostics (errors,
warnings, notes, status lines, -vv wire traces) to stderr.

Modes: `--json` prints exactly one JSON object per command, or one object per line (NDJSON) for a
stream, flushed per event so a `jq` downstream sees each at once. Without it a terminal gets Rich
tables (a stream's table refreshes in place), a pipe gets plain aligned text (a stream prints one
line per event), so scripts see no escape codes and one-shot commands do not pay for importing
Rich. Tables have one plain style, like kamcmd's and rtpengine-ctl's, and columns marked `keep`
(relay URLs, numbers) are never cut at 80 columns: the other columns wrap. No colour when stdout
is not a terminal, when NO_COLOR is set, or with --no-color.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TextIO

from rtppctl.proto.errors import RtppctlError

Row = Sequence[Any]


class Column(NamedTuple):
    """One table column: its header, how its cells are aligned, and whether they may be cut."""

    header: str
    justify: str = "left"  # "left" or "right"
    #: Never wrap or cut this column's cells (relay URLs, numbers); other columns give way.
    keep: bool = False


@dataclass
class Table:
    """A titled table, rendered by Rich on a terminal and as aligned text in a pipe."""

    columns: list[Column]
    rows: list[Row] = field(default_factory=list)
    title: str | None = None
    caption: str | None = None


@dataclass(frozen=True)
class Verbatim:
    """Text printed exactly as given (SDP bodies, SIP messages, relay replies)."""

    text: str


@dataclass(frozen=True)
class Diff:
    """A unified diff of two texts, for people."""

    before: str
    after: str
    before_name: str = "before"
    after_name: str = "after"


#: What a human view is made of: tables, lines of text, verbatim text and diffs.
View = Table | str | Verbatim | Diff


def plain_cell(value: Any) -> str:
    """A cell as text: None is "-", booleans are yes/no, floats lose trailing zeros."""
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


_encoder: Any = None
_quote: Any = None
#: JSON text of an object with these keys, by its keys in order: '{"a": %s, "b": %s}'.
_templates: dict[tuple[str, ...], str] = {}
_LITERALS = {None: "null", True: "true", False: "false"}


def _dumps(data: Any) -> str:
    """`data` as JSON, exactly as json.dumps writes it.

    Event streams write flat objects of strings, integers, booleans, nulls and finite floats by
    the tens of thousands a second (`listen`): those are written through a template cached per
    key set, several times faster than json.dumps. Anything else goes to json.dumps (its cached C
    encoder), and a path, set or tuple to the encoder that knows them.
    """
    global _encoder, _quote
    if type(data) is dict:
        if _quote is None:
            from json.encoder import encode_basestring_ascii  # noqa: PLC0415 - only --json pays for it

            _quote = encode_basestring_ascii
        values = []
        for value in data.values():
            kind = type(value)
            if kind is str:
                values.append(_quote(value))
            elif value is None or kind is bool:
                values.append(_LITERALS[value])
            elif kind is int:
                values.append(int.__repr__(value))
            elif kind is float and value - value == 0.0:  # finite: NaN and inf take json's spelling
                values.append(float.__repr__(value))
            else:
                break
        else:
            keys = tuple(data)
            template = _templates.get(keys)
            if template is None:
                if not all(type(key) is str for key in keys) or len(_templates) > 256:
                    return _slow_dumps(data)
                template = _templates[keys] = "{" + ", ".join(_quote(key).replace("%", "%%") + ": %s" for key in keys) + "}"
            return template % tuple(values)
    return _slow_dumps(data)


def _slow_dumps(data: Any) -> str:
    global _encoder
    import json  # noqa: PLC0415 - only --json pays for it

    try:
        return json.dumps(data)
    except TypeError:
        if _encoder is None:
            _encoder = json.JSONEncoder(default=_json_default)
        return _encoder.encode(data)


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
        self.rich = is_tty  # tables and live views only on a terminal
        self._console = None

    # -- data ---------------------------------------------------------------------------------

    def emit(self, data: dict[str, Any], *views: View) -> None:
        """Print one command's result: `data` as one JSON object, or the human `views` in order."""
        if self.json_mode:
            self.stdout.write(_dumps(data) + "\n")
            self.stdout.flush()
            return
        previous: View | None = None
        for view in views:
            if isinstance(view, Table):
                if previous is not None and not self.rich:
                    self.stdout.write("\n")  # tables in a pipe stay apart, as Rich keeps them
                self._table(view)
            elif isinstance(view, Verbatim):
                self.stdout.write(view.text)
            elif isinstance(view, Diff):
                self._diff(view)
            else:
                self.line(view)
            previous = view
        self.stdout.flush()

    def stream(self, columns: list[Column], *, title: str | None = None) -> EventStream:
        """An event stream: NDJSON with --json, a live table on a terminal, plain lines in a pipe."""
        return EventStream(self, columns, title)

    # -- the interactive shell's conversation (never data a script reads) ----------------------

    def watch(self) -> Watch:
        """A view refreshed in place with events in between (`show --watch`)."""
        return Watch(self)

    def line(self, text: str = "", style: str | None = None) -> None:
        """A line of text for people; styled on a terminal when a style is given (the shell)."""
        if self.rich and style:
            self.console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)
        else:
            self.stdout.write(text + "\n")

    def raw(self, text: str) -> None:
        """Text exactly as given (SDP bodies) for the person at the shell."""
        self.stdout.write(text)

    def diff(self, before: str, after: str, before_name: str, after_name: str) -> None:
        self._diff(Diff(before, after, before_name, after_name))

    def _diff(self, diff: Diff) -> None:
        """Line endings shown as they are (a CRLF line ends in \\r); coloured on a terminal."""
        import difflib  # noqa: PLC0415

        lines = difflib.unified_diff(
            diff.before.splitlines(keepends=True), diff.after.splitlines(keepends=True),
            diff.before_name, diff.after_name,
        )
        colour = self.color and self.rich
        for line in lines:
            header = line.startswith(("---", "+++"))
            shown = line.rstrip("\r\n") + ("\\r" if line.endswith("\r\n") and not header else "")
            if colour and line.startswith(("+", "-")) and not header:
                code = "32" if line.startswith("+") else "31"
                self.stdout.write(f"\x1b[{code}m{shown}\x1b[0m\n")
            else:
                self.stdout.write(shown + "\n")

    def _table(self, table: Table) -> None:
        if self.rich:
            self.console.print(_rich_table(table))
        else:
            self.stdout.write(plain_table(table))

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

    def status(self, message: str) -> None:
        """A line for people that is not data (a section header, progress); always on stderr."""
        self._diag(message, "bold")

    def note(self, message: str, level: int = 1) -> None:
        """A diagnostic shown from -v (level 1) or -vv (level 2) on."""
        if self.verbose >= level:
            self._diag(message, "dim")

    def trace(self, direction: str, node: str, data: bytes) -> None:
        """Wire trace for -vv: every datagram or line sent (>) and received (<); dropped (!)."""
        text = data.decode("utf-8", "backslashreplace")
        self.stderr.write(f"{direction} {node} {text!r}\n")
        self.stderr.flush()

    def _diag(self, text: str, style: str) -> None:
        if self.color and _isatty(self.stderr):
            code = {"bold red": "1;31", "yellow": "33", "dim": "2", "bold": "1"}.get(style, "0")
            self.stderr.write(f"\x1b[{code}m{text}\x1b[0m\n")
        else:
            self.stderr.write(text + "\n")
        self.stderr.flush()


class EventStream:
    """Events as they happen. Use as a context manager; `event()` for each, `close()` once.

    --json: one object per event, one line each, flushed at once (NDJSON), then the summary
    object. Terminal: a table that grows and refreshes in place (the last rows that fit the
    screen), then the summary views. Pipe: the header once, then one plain line per event,
    flushed, then the summary views.
    """

    #: Rows kept on a terminal's live table; older ones scroll away.
    LIVE_ROWS = 50

    def __init__(self, output: Output, columns: list[Column], title: str | None) -> None:
        self.output = output
        self.columns = columns
        self.title = title
        self.rows: list[Row] = []
        self.count = 0
        self._live = None
        self._widths = [max(len(column.header), 8) for column in columns]
        self._header_written = False
        self._closed = False

    def __enter__(self) -> EventStream:
        out = self.output
        if not out.json_mode and out.rich:
            from rich.live import Live  # noqa: PLC0415

            self._live = Live(_rich_table(Table(self.columns, [], self.title)), console=out.console,
                              auto_refresh=False, transient=False)
            self._live.start()
        return self

    def event(self, data: dict[str, Any], row: Row | Callable[[], Row], *, flush: bool = True) -> None:
        """One event: `data` for --json, `row` (one cell per column, or a function making it, called
        only when people see it) for people. `flush=False` for all but the last of a batch that
        arrived together: the last one (or `flush()`) shows them all at once."""
        out = self.output
        self.count += 1
        if out.json_mode:
            out.stdout.write(_dumps(data) + "\n")
        else:
            cells = row() if callable(row) else row
            if self._live is not None:
                self.rows.append(cells)
                del self.rows[: -self.LIVE_ROWS]
            else:
                if not self._header_written:
                    if self.title:
                        out.stdout.write(self.title + "\n")
                    out.stdout.write(_plain_row([c.header for c in self.columns], self.columns, self._widths) + "\n")
                    self._header_written = True
                texts = [plain_cell(value) for value in cells]
                # Widths only grow, so columns stay aligned as long as the values allow.
                self._widths = [max(width, len(text)) for width, text in zip(self._widths, texts)]
                out.stdout.write(_plain_row(texts, self.columns, self._widths) + "\n")
        if flush:
            self.flush()

    def events(self, items: list[dict[str, Any]], row: Callable[[dict[str, Any]], Row], *,
               common: dict[str, Any] | None = None) -> None:
        """Events that arrived together, shown at once: with --json one write for all of them;
        `row(data)` makes a row only when people see them. `common` holds keys every item shares
        (when and from where they came): written into each JSON object, but encoded once."""
        if self.output.json_mode:
            self.count += len(items)
            if not items:
                return
            if common:
                head = _dumps(common)[:-1] + ", "
                lines = [head + _dumps(data)[1:] if data else head[:-2] + "}" for data in items]
            else:
                lines = [_dumps(data) for data in items]
            self.output.stdout.write("\n".join(lines) + "\n")
            self.output.stdout.flush()
            return
        for data in items:
            full = {**common, **data} if common else data
            self.event(full, lambda full=full: row(full), flush=False)
        if items:
            self.flush()

    def flush(self) -> None:
        """Show what came so far: the live table redrawn, or the lines written out."""
        if self._live is not None:
            self._live.update(_rich_table(Table(self.columns, list(self.rows), self.title)), refresh=True)
        else:
            self.output.stdout.flush()

    def close(self, summary: dict[str, Any] | None = None, *views: View) -> None:
        """End the stream: the live table stays as it is; then the summary (object or views)."""
        if self._closed:
            return
        self._closed = True
        if self._live is not None:
            self._live.stop()
            self._live = None
        if summary is not None or views:
            self.output.emit(summary or {}, *views)

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


class Watch:
    """A view refreshed in place, with events between refreshes. Use as a context manager.

    --json: only the events, one object per line, flushed (NDJSON); the view is for people.
    Terminal: the tables redrawn in place, each event printed above them as it happens. Pipe:
    the tables once, then one plain line per event, flushed.
    """

    def __init__(self, output: Output) -> None:
        self.output = output
        self._live = None
        self._shown = False

    def __enter__(self) -> Watch:
        return self

    def update(self, *tables: Table) -> None:
        out = self.output
        if out.json_mode:
            return
        if not out.rich:
            if not self._shown:
                for table in tables:
                    out.stdout.write(plain_table(table))
                out.stdout.flush()
                self._shown = True
            return
        from rich.console import Group  # noqa: PLC0415

        view = Group(*(_rich_table(table) for table in tables))
        if self._live is None:
            from rich.live import Live  # noqa: PLC0415

            self._live = Live(view, console=out.console, auto_refresh=False, transient=False)
            self._live.start()
        self._live.update(view, refresh=True)

    def sample(self, data: dict[str, Any], text: str, *tables: Table) -> None:
        """One reading of something watched: --json an NDJSON line, a terminal the tables
        redrawn in place, a pipe one plain line."""
        out = self.output
        if out.rich and not out.json_mode:
            self.update(*tables)
        else:
            self.event(data, text)

    def event(self, data: dict[str, Any], text: str) -> None:
        out = self.output
        if out.json_mode:
            out.stdout.write(_dumps(data) + "\n")
        elif self._live is not None:
            from rich.text import Text  # noqa: PLC0415

            self._live.console.print(Text(text))
            return
        else:
            out.stdout.write(text + "\n")
        out.stdout.flush()

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def _plain_row(cells: list[str], columns: list[Column], widths: list[int]) -> str:
    parts = [
        cell.rjust(width) if column.justify == "right" else cell.ljust(width)
        for cell, column, width in zip(cells, columns, widths)
    ]
    return "  ".join(parts).rstrip()


def plain_table(table: Table) -> str:
    """A table as aligned text with a header line, for pipes and logs."""
    cells = [[plain_cell(value) for value in row] for row in table.rows]
    headers = [column.header for column in table.columns]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row)]
    lines = [table.title] if table.title else []
    lines.append(_plain_row(headers, table.columns, widths))
    lines.extend(_plain_row(row, table.columns, widths) for row in cells)
    if table.caption:
        lines.append(table.caption)
    return "\n".join(lines) + "\n"


def _rich_table(table: Table):  # noqa: ANN202 - rich.table.Table, imported lazily
    """One plain style: a rule under the header, no boxes, no colour in the cells."""
    from rich import box  # noqa: PLC0415 - only terminals pay for Rich
    from rich.table import Table as RichTable  # noqa: PLC0415

    from rich.text import Text  # noqa: PLC0415 - cells are data, never markup

    rich_table = RichTable(
        title=Text(table.title) if table.title else None, caption=Text(table.caption) if table.caption else None, title_justify="left", caption_justify="left",
        box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title_style="bold", header_style="bold",
    )
    cells = [[plain_cell(value) for value in row] for row in table.rows]
    for index, column in enumerate(table.columns):
        if column.keep:
            widest = max([len(column.header), *(len(row[index]) for row in cells)])
            rich_table.add_column(Text(column.header), justify=column.justify, no_wrap=True, min_width=widest)  # type: ignore[arg-type]
        else:
            rich_table.add_column(Text(column.header), justify=column.justify, overflow="fold")  # type: ignore[arg-type]
    for row in cells:
        rich_table.add_row(*(Text(cell) for cell in row))
    return rich_table


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
