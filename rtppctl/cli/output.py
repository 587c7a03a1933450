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
Rich. No colour when stdout is not a terminal, when NO_COLOR is set, or with --no-color.

Text from outside is never written raw. Database rows, Call-IDs and tags (which a SIP caller
chooses), relay replies, SIP headers and file names reach people through this module only, and
everything it shows them is escaped here, in `escape`: C0 controls (but tab), DEL and C1 controls
become `\\xNN` (so no ESC sequence can clear the screen or retitle the terminal), as do bytes of a
file name that were not UTF-8; bidi embeddings, overrides, isolates and marks and the line and
paragraph separators become `\\uNNNN` (so no text can reorder what is shown around it). That holds
for table cells, titles and captions (where a tab and a newline are escaped too: a cell is one
line), lines of text (whose newlines are the command's own line breaks), diffs, and every
diagnostic (one line each: a newline in a message is escaped). Rich never reads markup or emoji
codes from them: `[bold]` in a cell prints as itself. What is printed exactly is what the user
asked for as a document: `Verbatim` (the rewritten SDP or SIP message with its CRLFs, `raw`
replies, generated TOML) and `raw()`; JSON escapes by itself.

Tables keep their shape or change it; they never lose a column or break a word. On a terminal a
table is laid out at the terminal's width: columns marked `keep` (relay URLs, numbers) never wrap,
the others wrap between words but never inside one (a URL, an address, a number, a state name).
When even that does not fit, the table is shown as records instead: one block of `key: value`
lines per row, values lined up, a long value wrapped between words under itself. A word wider than
the whole screen (a 105-character unix socket URL) is printed whole on a line of its own for the
terminal to wrap, never cut by rtppctl; only a view redrawn in place (a live stream, a watch),
which the terminal must not wrap behind Rich's back, folds it at the edge. Titles and captions
wrap between words the same way. A column marked `crop` (a decoration such as a bar, whose data
is in other columns) is the one exception: it is cut at the edge with an ellipsis rather than
change the shape. A live stream shows the newest rows that fit the screen, in the shape that fits
them. In a pipe there is no width: a table is always one header line and one line per row,
aligned by the columns characters take on a terminal and never wrapped, so `awk` and `cut` see the
same shape whatever the terminal. A stream's columns are fixed from its first line (the header,
or the `width` a column expects) because each event is written and flushed as it comes: a value
wider than its column pushes the rest of its own line only, and the next line is aligned again.
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
    """One table column: its header, how its cells are aligned, and whether they may wrap."""

    header: str
    justify: str = "left"  # "left" or "right"
    #: Never wrap this column's cells, not even between words (relay URLs, numbers); the other
    #: columns wrap between words, and the table turns into records when that is not enough.
    keep: bool = False
    #: The width a stream's cells are expected to take: in a pipe, where a stream's columns are
    #: fixed by the first line, a column this wide keeps later lines aligned (default: the header,
    #: at least 8).
    width: int | None = None
    #: A decoration (a bar) whose data is in other columns: on a terminal it is cut at the edge
    #: with an ellipsis rather than make the table change shape. Printed whole in a pipe.
    crop: bool = False


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
class Lines:
    """Lines for people, one per item. An item may quote text from outside (a database row, a
    relay URL), so a newline inside one is escaped, never a line of its own that could pass for
    rtppctl's."""

    items: tuple[str, ...]


@dataclass(frozen=True)
class Diff:
    """A unified diff of two texts, for people."""

    before: str
    after: str
    before_name: str = "before"
    after_name: str = "after"


#: What a human view is made of: tables, lines of text, verbatim text and diffs.
View = Table | str | Lines | Verbatim | Diff


# -- text from outside ---------------------------------------------------------------------------

#: What is never written raw: C0 controls but tab and newline (each caller decides on those), DEL,
#: C1 controls (CSI and OSC among them: an ESC sequence needs one of these), the bidi marks,
#: embeddings, overrides and isolates (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069),
#: the line and paragraph separators, and lone surrogates (the bytes of a file name that were not
#: UTF-8, which would also fail to encode on the way out).
_UNSAFE = "\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff"
_patterns: dict[tuple[bool, bool], Any] = {}


def escape(text: str, *, newlines: bool = False, tabs: bool = False) -> str:
    """`text` with everything that could act on a terminal or reorder a line spelled out: `\\xNN`
    for a control character or a byte that was not UTF-8, `\\uNNNN` for a bidi control. Newlines
    and tabs are escaped too unless kept (`newlines=True` for lines of text, whose breaks are the
    command's own; `tabs=True` outside tables, where a tab harms nothing)."""
    if text.isprintable():  # the common case, one C loop: none of those characters is printable
        return text
    pattern = _patterns.get((newlines, tabs))
    if pattern is None:
        import re  # noqa: PLC0415 - only text that needs escaping pays for it

        extra = ("" if newlines else "\n") + ("" if tabs else "\t")
        pattern = _patterns[(newlines, tabs)] = re.compile(f"[{_UNSAFE}{extra}]")
    return pattern.sub(_escaped, text)


def _escaped(match: Any) -> str:
    code = ord(match.group())
    if code < 0x100:
        return f"\\x{code:02x}"
    if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's spelling of a byte that is not UTF-8
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}"


def plain_cell(value: Any) -> str:
    """A cell as text: None is "-", booleans are yes/no, floats lose trailing zeros; text escaped,
    newlines and tabs too (a cell is one line)."""
    if value is None:
        return "-"
    kind = type(value)
    if kind is str:
        return escape(value)
    if kind is bool:
        return "yes" if value else "no"
    if kind is int:
        return int.__repr__(value)
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:.0f}"
    return escape(str(value))


def text_width(text: str) -> int:
    """Columns `text` takes on a terminal: East Asian wide characters take two, combining marks
    and zero-width characters none (how a pipe's plain tables stay aligned)."""
    if text.isascii():
        return len(text)
    import unicodedata  # noqa: PLC0415 - only text outside ASCII pays for it

    width = 0
    for char in text:
        if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


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
    global _quote
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

    def emit(self, data: dict[str, Any], *views: View, flush: bool = True) -> None:
        """Print one command's result: `data` as one JSON object, or the human `views` in order.
        `flush=False` (JSON only): the caller flushes (`flush`), e.g. a batch when it waits."""
        if self.json_mode:
            self.stdout.write(_dumps(data) + "\n")
            if flush:
                self.stdout.flush()
            return
        previous: View | None = None
        for view in views:
            if isinstance(view, Table):
                if previous is not None:
                    self.stdout.write("\n")  # a table stands apart from what came before it
                self._table(view)
            elif isinstance(view, Verbatim):
                self.stdout.write(view.text)  # a document: byte for byte, never escaped
            elif isinstance(view, Diff):
                self._diff(view)
            elif isinstance(view, Lines):
                for item in view.items:
                    self.stdout.write(escape(item, tabs=True) + "\n")
            else:
                self.line(view)
            previous = view
        self.stdout.flush()

    def flush(self) -> None:
        """Write out what `emit(..., flush=False)` left in the buffer."""
        self.stdout.flush()

    def stream(self, columns: list[Column], *, title: str | None = None) -> EventStream:
        """An event stream: NDJSON with --json, a live table on a terminal, plain lines in a pipe."""
        return EventStream(self, columns, title)

    # -- the interactive shell's conversation (never data a script reads) ----------------------

    def watch(self) -> Watch:
        """A view refreshed in place with events in between (`show --watch`)."""
        return Watch(self)

    def line(self, text: str = "", style: str | None = None) -> None:
        """Lines of text for people (a newline in `text` starts a line); styled on a terminal when
        a style is given (the shell). Escaped: the text may carry what a relay or a file said."""
        text = escape(text, newlines=True, tabs=True)
        if self.rich and style:
            from rich.text import Text  # noqa: PLC0415

            self.console.print(Text(text, style=style), soft_wrap=True)
        else:
            self.stdout.write(text + "\n")

    def raw(self, text: str) -> None:
        """Text exactly as given (SDP bodies) for the person at the shell: a document, not escaped."""
        self.stdout.write(text)

    def diff(self, before: str, after: str, before_name: str, after_name: str) -> None:
        self._diff(Diff(before, after, before_name, after_name))

    def _diff(self, diff: Diff) -> None:
        """Line endings shown as they are (a CRLF line ends in \\r); coloured on a terminal. A diff
        is for people, not the document: what else is unprintable in a line is escaped."""
        import difflib  # noqa: PLC0415

        lines = difflib.unified_diff(
            diff.before.splitlines(keepends=True), diff.after.splitlines(keepends=True),
            diff.before_name, diff.after_name,
        )
        colour = self.color and self.rich
        for line in lines:
            header = line.startswith(("---", "+++"))
            if line.endswith("\r\n") and not header:
                shown = escape(line[:-2], tabs=True) + "\\r"
            else:
                shown = escape(line[:-1] if line.endswith("\n") else line, tabs=True)
            if colour and line.startswith(("+", "-")) and not header:
                code = "32" if line.startswith("+") else "31"
                self.stdout.write(f"\x1b[{code}m{shown}\x1b[0m\n")
            else:
                self.stdout.write(shown + "\n")

    def _table(self, table: Table) -> None:
        if not self.rich:
            self.stdout.write(plain_table(table))
            return
        console = self.console
        for part in _rich_parts(table, console.width, live=False):
            # Soft wrap: a title or a record's value wider than the screen is wrapped by the
            # terminal, never cut or broken by Rich (a table fits the width by construction).
            console.print(part, soft_wrap=True)

    @property
    def console(self):  # noqa: ANN201 - rich.console.Console, imported lazily
        if self._console is None:
            from rich.console import Console  # noqa: PLC0415

            # No markup, emoji codes or highlighting: nothing in data is read as an instruction.
            self._console = Console(file=self.stdout, no_color=not self.color, highlight=False, markup=False,
                                    emoji=False)
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
        self.stderr.write(f"{direction} {escape(node)} {text!r}\n")
        self.stderr.flush()

    def _diag(self, text: str, style: str) -> None:
        """One line on stderr, whatever the message holds: its newlines are escaped too."""
        text = escape(text, tabs=True)
        if self.color and _isatty(self.stderr):
            code = {"bold red": "1;31", "yellow": "33", "dim": "2", "bold": "1"}.get(style, "0")
            self.stderr.write(f"\x1b[{code}m{text}\x1b[0m\n")
        else:
            self.stderr.write(text + "\n")
        self.stderr.flush()


class EventStream:
    """Events as they happen. Use as a context manager; `event()` for each, `close()` once.

    --json: one object per event, one line each, flushed at once (NDJSON), then the summary
    object. Terminal: the title once, then a table that grows and refreshes in place (the last
    rows that fit the screen, as records when the table does not fit its width), then the summary
    views. Pipe: the title and the header once, then one plain line per event in columns fixed
    from the start, flushed, then the summary views.
    """

    #: Rows kept on a terminal's live table; older ones scroll away.
    LIVE_ROWS = 50

    def __init__(self, output: Output, columns: list[Column], title: str | None) -> None:
        self.output = output
        self.columns = columns
        self.title = title
        self.rows: list[list[str]] = []
        self.count = 0
        self._live = None
        # Fixed for the whole stream: a line once written is never realigned (no buffering).
        self._widths = [max(text_width(column.header), column.width or 8) for column in columns]
        self._header_written = False
        self._closed = False

    def __enter__(self) -> EventStream:
        out = self.output
        if not out.json_mode and out.rich:
            from rich.live import Live  # noqa: PLC0415
            from rich.text import Text  # noqa: PLC0415

            if self.title:
                # Above the live view, once: it never changes, and printed on its own it is
                # soft-wrapped by the terminal instead of folded by the view.
                out.console.print(Text(escape(self.title), style="bold"), soft_wrap=True)
            self._live = Live(self._view(), console=out.console, auto_refresh=False, transient=False)
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
            texts = [plain_cell(value) for value in cells]
            if self._live is not None:
                self.rows.append(texts)
                del self.rows[: -self.LIVE_ROWS]
            else:
                if not self._header_written:
                    if self.title:
                        out.stdout.write(escape(self.title) + "\n")
                    out.stdout.write(_plain_row([escape(c.header) for c in self.columns], self.columns, self._widths) + "\n")
                    self._header_written = True
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
            self._live.update(self._view(), refresh=True)
        else:
            self.output.stdout.flush()

    def _view(self):  # noqa: ANN202 - a Rich renderable
        """The newest rows that fit the screen, in the shape that fits its width."""
        from rich.console import Group  # noqa: PLC0415

        console = self.output.console
        width, height = console.width, console.height
        # The shape is decided by what can be on screen: at most a row per line.
        rows = self.rows[-max(1, height - 3):]
        table = Table(self.columns, rows)
        layout = _layout(table, _cells(table), width, _rich_measure())
        rows = _tail(table, layout, width, height - 1)
        return Group(*_rich_parts(Table(self.columns, rows), width, live=True, layout=layout))

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
    Terminal: the tables redrawn in place (each as records when it does not fit the width), each
    event printed above them as it happens. Pipe: the tables once, then one plain line per event,
    flushed.
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
                out.stdout.write("\n".join(plain_table(table) for table in tables))
                out.stdout.flush()
                self._shown = True
            return
        from rich.console import Group  # noqa: PLC0415
        from rich.text import Text  # noqa: PLC0415

        width = out.console.width
        parts: list[Any] = []
        for table in tables:
            if parts:
                parts.append(Text(""))
            parts.extend(_rich_parts(table, width, live=True))
        view = Group(*parts)
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

            self._live.console.print(Text(escape(text, tabs=True)), soft_wrap=True)
            return
        else:
            out.stdout.write(escape(text, tabs=True) + "\n")
        out.stdout.flush()

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


# -- tables ----------------------------------------------------------------------------------------

#: Between two columns of a Rich table in the plain style: a space of padding after a column and
#: the one-space rule (no edges, no edge padding). Two, as in a pipe: three would cost a table
#: of eight columns seven more, enough to turn `show --probe` into records at 80 columns.
_RICH_GAP = 2
#: Between two columns of plain text.
_PLAIN_GAP = 2


def _cells(table: Table) -> list[list[str]]:
    return [[plain_cell(value) for value in row] for row in table.rows]


def _plain_row(cells: list[str], columns: list[Column], widths: list[int]) -> str:
    """One line of aligned text. Each cell starts (or, right-aligned, ends) where its column does;
    a cell wider than its column pushes the rest of the line only as far as it must, and the
    next columns take the push back out of their spare room."""
    parts: list[str] = []
    position = start_of_column = 0
    for index, (cell, column, width) in enumerate(zip(cells, columns, widths)):
        size = text_width(cell)
        start = start_of_column + width - size if column.justify == "right" else start_of_column
        if index:
            start = max(start, position + _PLAIN_GAP)
        start = max(start, position)
        parts.append(" " * (start - position))
        parts.append(cell)
        position = start + size
        start_of_column += width + _PLAIN_GAP
    return "".join(parts).rstrip()


def plain_table(table: Table) -> str:
    """A table as aligned text with a header line, for pipes and logs: never wrapped, whatever
    its width (one line per row is what a script reading it relies on)."""
    cells = _cells(table)
    headers = [escape(column.header) for column in table.columns]
    widths = [text_width(h) for h in headers]
    for row in cells:
        widths = [max(width, text_width(cell)) for width, cell in zip(widths, row)]
    lines = [escape(table.title)] if table.title else []
    lines.append(_plain_row(headers, table.columns, widths))
    lines.extend(_plain_row(row, table.columns, widths) for row in cells)
    if table.caption:
        lines.append(escape(table.caption))
    return "\n".join(lines) + "\n"


def _rich_measure() -> Callable[[str], int]:
    from rich.cells import cell_len  # noqa: PLC0415 - Rich's own measure, so that its layout agrees

    return cell_len


def _longest_word(text: str, measure: Callable[[str], int]) -> int:
    return max(map(measure, text.split()), default=0)


def _layout(table: Table, cells: list[list[str]], width: int, measure: Callable[[str], int]) -> list[int] | None:
    """The width of each column of `table` laid out in `width` terminal columns, or None when it
    cannot fit without breaking a word or a `keep` cell (then it is shown as records).

    Each column wants its widest cell. A `keep` column gets it; any other column may shrink down
    to its longest word (wrapping between words), widest first; a `crop` column down to its header.
    """
    columns = table.columns
    headers = [escape(column.header) for column in columns]
    natural, least = [], []
    for index, column in enumerate(columns):
        texts = [headers[index], *(row[index] for row in cells)]
        widest = max(map(measure, texts))
        natural.append(widest)
        if column.keep:
            least.append(widest)
        elif column.crop:
            least.append(max(measure(headers[index]), 1))
        else:
            least.append(max(1, max(_longest_word(text, measure) for text in texts)))
    room = width - _RICH_GAP * (len(columns) - 1)
    if sum(least) > room:
        return None
    widths = list(natural)
    excess = sum(widths) - room
    while excess > 0:
        # Take from the widest column that can give, down to the next widest, so that the
        # columns that shrink end up about as wide as each other.
        shrinkable = [index for index in range(len(widths)) if widths[index] > least[index]]
        index = max(shrinkable, key=lambda i: widths[i])
        others = [widths[i] for i in shrinkable if i != index and widths[i] < widths[index]]
        step = min(excess, widths[index] - least[index], max(1, widths[index] - max(others, default=0)))
        widths[index] -= step
        excess -= step
    return widths


def _wrapped_lines(text: str, width: int, measure: Callable[[str], int]) -> int:
    """How many lines `text` takes wrapped between words in `width` columns (as Rich wraps)."""
    if measure(text) <= width:
        return 1
    lines, used = 1, 0
    for word in text.split():
        size = measure(word)
        if used and used + 1 + size > width:
            lines, used = lines + 1, size
        else:
            used = used + 1 + size if used else size
    return lines


def _wrap(head: str, text: str, width: int, measure: Callable[[str], int]) -> list[str]:
    """`head` then `text` in lines of `width` columns, broken between words only; the lines after
    the first are indented as far as `head` goes. A word wider than the room stays whole, on a
    line of its own, for the terminal to wrap (a URL is never cut in two by rtppctl)."""
    indent = measure(head)
    if indent + measure(text) <= width:
        return [text]
    lines: list[str] = []
    line, used = "", indent
    for word in text.split():
        size = measure(word)
        if line and used + 1 + size > width:
            lines.append(line)
            line, used = "", indent
        line, used = (line + " " + word, used + 1 + size) if line else (word, used + size)
    lines.append(line)
    return lines


def _record_lines(table: Table, row: Sequence[str], width: int, measure: Callable[[str], int]) -> list[tuple[str, str]]:
    """One row as records: (key, text) per line, the key padded so that the values line up, and
    blank on a value's further lines. A `keep` value is one line, as it is in a table."""
    keys = [escape(column.header) + ":" if column.header else "" for column in table.columns]
    size = max(map(measure, keys), default=0) + 1
    lines = []
    for column, key, text in zip(table.columns, keys, row):
        if not key and not text:
            continue  # nothing to show: a decoration without a header, empty in this row
        head = key + " " * (size - measure(key))
        parts = [text] if column.keep else _wrap(head, text, width, measure)
        for number, part in enumerate(parts):
            lines.append((head if number == 0 else " " * size, part))
    return lines


def _tail(table: Table, layout: list[int] | None, width: int, height: int) -> list[Row]:
    """The newest rows of `table` (kept as cell texts) that fit `height` lines in that shape."""
    measure = _rich_measure()
    rows = list(table.rows)
    if layout is not None:
        def row_height(texts: Sequence[str]) -> int:
            return max(1 if column.keep or column.crop else _wrapped_lines(text, size, measure)
                       for text, column, size in zip(texts, table.columns, layout))

        used = row_height([escape(column.header) for column in table.columns]) + 1  # the rule
    else:
        def row_height(texts: Sequence[str]) -> int:
            lines = _record_lines(table, texts, width, measure)
            # A blank line between records; a line wider than the screen is folded in a live view.
            return 1 + sum(-(-max(1, measure(key + text)) // max(1, width)) for key, text in lines)

        used = -1
    shown = 0
    for texts in reversed(rows):
        used += row_height(texts)
        if used > height and shown:
            break
        shown += 1
    return rows[len(rows) - shown:]


def _rich_parts(table: Table, width: int, *, live: bool, layout: Any = ...) -> list[Any]:
    """What a terminal shows for `table`: its title, then the table laid out in `width` (or its
    records), then its caption; `layout` when the caller has decided it already. Text is broken
    between words only; a word wider than the screen is left whole for the terminal to wrap when
    printed once, and folded in a live view (`live`), where a region redrawn in place must not be
    wrapped by the terminal behind Rich's back."""
    from rich import box  # noqa: PLC0415 - only terminals pay for Rich
    from rich.table import Table as RichTable  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415 - cells are data, never markup

    overflow = "fold" if live else "ignore"
    measure = _rich_measure()
    cells = _cells(table)
    if layout is ...:
        layout = _layout(table, cells, width, measure)
    parts: list[Any] = []
    if table.title:
        parts.extend(Text(line, style="bold", overflow=overflow) for line in _wrap("", escape(table.title), width, measure))
    if layout is not None:
        rich_table = RichTable(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0),
                               header_style="bold")
        for column, size in zip(table.columns, layout):
            rich_table.add_column(
                Text(escape(column.header)), justify=column.justify, width=size,  # type: ignore[arg-type]
                no_wrap=column.keep or column.crop, overflow="ellipsis" if column.crop else "fold",
            )
        for row in cells:
            rich_table.add_row(*(Text(cell) for cell in row))
        parts.append(rich_table)
    else:
        for index, row in enumerate(cells):
            if index:
                parts.append(Text(""))
            parts.extend(Text.assemble((key, "bold"), text, overflow=overflow)
                         for key, text in _record_lines(table, row, width, measure))
    if table.caption:
        if layout is None:
            parts.append(Text(""))
        parts.extend(Text(line, overflow=overflow) for line in _wrap("", escape(table.caption), width, measure))
    return parts


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
