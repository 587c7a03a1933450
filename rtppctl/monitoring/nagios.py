"""The Nagios/Icinga monitoring-plugin contract, as the Monitoring Plugins Development Guidelines
state it: the four exit states, the status line (`RTPPCTL CHECK <STATE> - <summary> | <perfdata>`,
then detail lines), performance data (`'label'=value[UOM];[warn];[crit];[min];[max]`) and
threshold ranges (`[@][start:][end]`).

The rule it keeps: whatever the report holds, the output is one status line a monitoring system
reads as intended. Text from outside (node urls, reasons) can add no line, no `|` (which would
start performance data) and no control character, and it is bounded; numbers are written in the
C locale's form without an exponent. Pure: dicts and strings in, strings out; no I/O, no clock.
`evaluate` reads the object `rtppctl check --json` prints (ops/check.py); the CLI prints
`PluginOutput.text` and exits with `PluginOutput.state`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from rtppctl.proto.errors import InputError
from rtppctl.proto.text import shown

#: What starts every status line, so an operator sees which plugin spoke.
PLUGIN_NAME = "RTPPCTL CHECK"
#: The most characters of the status line before its ` | ` (the part every monitoring UI shows).
STATUS_LIMIT = 200
#: The most characters of a perfdata label (before `'` is doubled); graphers key files on it.
LABEL_LIMIT = 100
#: The most characters of one detail line after the status line.
DETAIL_LIMIT = 300
#: How much of a node's url and of a reason one problem in the summary may take, so that one
#: long text cannot push every other problem out of the bounded summary.
_NAME_LIMIT = 80
_REASON_LIMIT = 120
#: How many characters of a bad option value an error message quotes.
_ECHO_LIMIT = 40

#: The units of measurement the guidelines allow (none, seconds, percent, bytes, a counter).
UNITS = ("", "s", "ms", "us", "%", "B", "KB", "MB", "TB", "c")


class State(IntEnum):
    """A plugin's exit state; the process exits with its value."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


#: How bad each state is. Not the exit codes' order: a known problem outranks an unknown one, so
#: a relay that is down (CRITICAL) or degraded (WARNING) is reported even when another relay's
#: check did not finish (UNKNOWN) -- the unfinished check says nothing about the broken relay.
_SEVERITY = {State.OK: 0, State.UNKNOWN: 1, State.WARNING: 2, State.CRITICAL: 3}


def worst(*states: State) -> State:
    """The most severe of `states` (OK < UNKNOWN < WARNING < CRITICAL); OK when none is given."""
    return max(states, key=_SEVERITY.__getitem__, default=State.OK)


# -- threshold ranges ---------------------------------------------------------------------------

#: A number as the guidelines write one: digits, an optional fraction, an optional minus sign.
#: ASCII digits only (float() would take other scripts' digits), no exponent, no inf/nan.
_NUMBER = r"-?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)"
_RANGE = re.compile(rf"(?P<inside>@)?(?:(?P<start>~|{_NUMBER}):)?(?P<end>{_NUMBER})?")
_RANGE_HINT = (
    "a range is [@][START:][END]: 10 alerts outside 0..10, 10: below 10, ~:10 above 10, "
    "10:20 outside 10..20, @10:20 inside 10..20"
)


@dataclass(frozen=True)
class Range:
    """A threshold range: values outside start..end alert, or, with `inside`, values within it
    (bounds included either way)."""

    #: The lower bound; None is minus infinity (`~`).
    start: float | None = 0.0
    #: The upper bound; None is plus infinity (an empty end).
    end: float | None = None
    #: `@`: alert inside the range instead of outside it.
    inside: bool = False

    def __post_init__(self) -> None:
        for bound in (self.start, self.end):
            if bound is not None and not math.isfinite(bound):
                raise ValueError(f"a range bound must be finite or None, not {bound!r}")
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ValueError(f"range start {self.start!r} is above its end {self.end!r}")

    def alerts(self, value: float) -> bool:
        """Whether `value` (a finite number) raises this threshold's alert."""
        within = (self.start is None or value >= self.start) and (self.end is None or value <= self.end)
        return within if self.inside else not within

    def __str__(self) -> str:
        """The canonical text: `parse_range` reads it back to an equal Range. A start of 0 is left
        out when there is an end (`10`, not `0:10`), as the guidelines write it."""
        end = "" if self.end is None else _exact_number(self.end)
        if self.start == 0 and self.end is not None:
            text = end
        else:
            text = ("~" if self.start is None else _exact_number(self.start)) + ":" + end
        return ("@" if self.inside else "") + text


def parse_range(text: str, where: str) -> Range:
    """The Range `text` spells (`[@][start:][end]`), or InputError naming `where` (an option, e.g.
    "--warning loss") and the bad text."""
    if not text:
        raise InputError(f"{where}: empty range", _RANGE_HINT)
    match = _RANGE.fullmatch(text)
    if match is None or (match["start"] is None and match["end"] is None):
        raise InputError(f"{where}: {shown(text, _ECHO_LIMIT)} is not a range", _RANGE_HINT)
    inside, start_text, end_text = match["inside"] is not None, match["start"], match["end"]
    # No start means 0 (`10`); `~` means minus infinity; no end means plus infinity (`10:`).
    start = 0.0 if start_text is None else None if start_text == "~" else float(start_text)
    end = None if end_text is None else float(end_text)
    # A number of hundreds of digits passes the pattern and overflows to inf.
    if (start is not None and not math.isfinite(start)) or (end is not None and not math.isfinite(end)):
        raise InputError(f"{where}: {shown(text, _ECHO_LIMIT)} holds a number too large", _RANGE_HINT)
    if start is not None and end is not None and start > end:
        raise InputError(f"{where}: {shown(text, _ECHO_LIMIT)} starts above its end", _RANGE_HINT)
    return Range(start=start, end=end, inside=inside)


#: The measurements a threshold may name, and the unit its range is written in.
THRESHOLD_KEYS = ("loss", "latency", "jitter")
THRESHOLD_UNITS = {"loss": "%", "latency": "ms", "jitter": "ms"}


def parse_thresholds(text: str | None, option: str) -> dict[str, Range]:
    """An option's thresholds (`loss=1,latency=50:,jitter=~:30`) by key; {} when the option was
    not given (None). Spaces around items, keys and ranges are allowed. InputError for an empty
    value, an item without `=`, an unknown or repeated key, or a bad range (named "OPTION KEY")."""
    if text is None:
        return {}
    usage = f"give KEY=RANGE[,KEY=RANGE...] with KEY one of {', '.join(THRESHOLD_KEYS)}; {_RANGE_HINT}"
    if not text.strip():
        raise InputError(f"{option}: no threshold given", usage)
    thresholds: dict[str, Range] = {}
    # A range never holds a comma (numbers have no thousands separator), so ',' splits items.
    for item in (item.strip() for item in text.split(",")):
        if not item:
            raise InputError(f"{option}: empty item in {shown(text, _ECHO_LIMIT)}", usage)
        key, equals, range_text = item.partition("=")
        key = key.strip()
        if not equals:
            raise InputError(f"{option}: {shown(item, _ECHO_LIMIT)} is not KEY=RANGE", usage)
        if key not in THRESHOLD_KEYS:
            raise InputError(
                f"{option}: unknown key {shown(key, _ECHO_LIMIT)}; the keys are {', '.join(THRESHOLD_KEYS)}", usage,
            )
        if key in thresholds:
            raise InputError(f"{option}: {key} given twice", usage)
        thresholds[key] = parse_range(range_text.strip(), f"{option} {key}")
    return thresholds


# -- numbers and performance data ---------------------------------------------------------------


def format_number(value: float) -> str:
    """A perfdata number: a decimal point, never an exponent, at most 3 decimals, trailing zeros
    trimmed ("0.5", "12", "0.001"; 1e-7 is "0"). The same in every locale: Python's own
    formatting never reads LC_NUMERIC. ValueError for inf and nan, which have no such form."""
    if not math.isfinite(value):
        raise ValueError(f"{value!r} has no perfdata form; write U instead")
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text  # -0.0004 rounds to "-0", which reads as 0 anyway


def _exact_number(value: float) -> str:
    """`value` without exponent and without rounding: the shortest decimal that reads back as the
    same float (repr's digits, spelled out positionally), so a threshold survives str/parse."""
    if value == 0:
        return "0"
    from decimal import Decimal  # noqa: PLC0415 - only a threshold's text needs it

    text = format(Decimal(repr(float(value))), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _printable(char: str) -> str:
    return char if char.isprintable() else "?"


def perfdata_label(label: str) -> str:
    """`label` quoted for perfdata: at most LABEL_LIMIT characters, `=` replaced by `_` (the
    guidelines forbid it), every character str.isprintable refuses (controls, line breaks, bidi
    and other format characters, surrogates) replaced by `?`, an empty label `?`; then in single
    quotes, a `'` inside doubled."""
    text = "".join("_" if char == "=" else _printable(char) for char in label[:LABEL_LIMIT]) or "?"
    return "'" + text.replace("'", "''") + "'"


def perfdata_item(
    label: str,
    value: float | None,
    uom: str = "",
    warn: Range | None = None,
    crit: Range | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
) -> str:
    """One perfdata item, `'label'=value[UOM];[warn];[crit];[min];[max]`, trailing empty fields
    dropped. A value that is None (or not finite) is `U`, "could not be determined", written
    without its unit."""
    if uom not in UNITS:
        raise ValueError(f"{uom!r} is not a perfdata unit ({', '.join(repr(u) for u in UNITS)})")
    fields = [
        format_number(value) + uom if value is not None and math.isfinite(value) else "U",
        "" if warn is None else str(warn),
        "" if crit is None else str(crit),
        "" if minimum is None else format_number(minimum),
        "" if maximum is None else format_number(maximum),
    ]
    while fields[-1] == "":
        fields.pop()
    return perfdata_label(label) + "=" + ";".join(fields)


# -- the status line ----------------------------------------------------------------------------

#: Every character str.splitlines breaks a line at.
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def _bounded(text: str, limit: int) -> str:
    """`text`, cut to at most `limit` characters with "..." marking the cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _one_line(text: str, limit: int) -> str:
    """Outside text made safe for a status or detail line and bounded: a line break becomes a
    space (it would start a line of its own), `|` becomes `/` (Nagios reads what follows the
    first `|` of a line as perfdata), anything else not printable becomes `?`."""
    text = _bounded(text, limit)  # before the loop: a 10 MB reason costs `limit` characters
    if text.isprintable() and "|" not in text:
        return text
    return "".join(
        " " if char in _LINE_BREAKS else "/" if char == "|" else _printable(char) for char in text
    )


@dataclass(frozen=True)
class PluginOutput:
    """What a monitoring plugin run gives its caller."""

    #: The exit state; the process exits with int(state).
    state: State
    #: The whole stdout, each line ending in "\n": the status line, then detail lines.
    text: str


def unknown_output(message: str) -> PluginOutput:
    """An UNKNOWN result saying `message` (a usage, config or internal error, an interruption):
    one line, escaped and bounded like a report's summary."""
    prefix = f"{PLUGIN_NAME} {State.UNKNOWN.name} - "
    return PluginOutput(State.UNKNOWN, prefix + _one_line(message or "no result", STATUS_LIMIT - len(prefix)) + "\n")


@dataclass(frozen=True)
class _Verdict:
    """One node as the status line tells it."""

    name: str
    state: State
    #: Why the node is not OK; None when it is.
    problem: str | None
    perfdata: tuple[str, ...]


def _number(value: Any) -> float | None:
    """A finite float from a report field, or None for null, text, booleans, inf and nan."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        return None
    return number if math.isfinite(number) else None


def _highest(values: Iterable[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return max(known) if known else None


def _direction_loss(direction: Mapping[str, Any]) -> float | None:
    """A direction's loss in percent: its loss_pct, or, when that is missing, what its counts
    say (packets sent and none arrived is 100)."""
    loss = _number(direction.get("loss_pct"))
    if loss is not None:
        return loss
    sent, received = _number(direction.get("sent")), _number(direction.get("received"))
    if sent is not None and sent > 0 and received is not None:
        return min(100.0, max(0.0, 100.0 * (sent - received) / sent))
    return None


def _direction_latency(direction: Mapping[str, Any]) -> float | None:
    latency = direction.get("latency_ms")
    return _number(latency.get("avg")) if isinstance(latency, Mapping) else None


def _measurements(node: Mapping[str, Any]) -> dict[str, float | None]:
    """A node's loss, latency and jitter: for each, the worse of its two directions (a relay is
    as good as its worse direction), None when neither direction measured it."""
    directions = node.get("directions")
    directions = [d for d in directions if isinstance(d, Mapping)] if isinstance(directions, list) else []
    return {
        "loss": _highest(_direction_loss(d) for d in directions),
        "latency": _highest(_direction_latency(d) for d in directions),
        "jitter": _highest(_number(d.get("jitter_ms")) for d in directions),
    }


def _judge(
    measured: Mapping[str, float | None], warning: Mapping[str, Range], critical: Mapping[str, Range],
) -> tuple[State, str | None]:
    """A node that forwarded media, against the thresholds: its state and what breached."""
    states, breaches = [State.OK], []
    for key in THRESHOLD_KEYS:
        value, warn, crit = measured[key], warning.get(key), critical.get(key)
        if warn is None and crit is None:
            continue
        if value is None:
            # A threshold asked for a measurement the check could not make: say so rather than
            # pass a relay nobody measured.
            states.append(State.UNKNOWN)
            breaches.append(f"{key} not measured")
            continue
        shown_value = format_number(value) + THRESHOLD_UNITS[key]
        if crit is not None and crit.alerts(value):
            states.append(State.CRITICAL)
            breaches.append(f"{key} {shown_value} (critical {crit})")
        elif warn is not None and warn.alerts(value):
            states.append(State.WARNING)
            breaches.append(f"{key} {shown_value} (warning {warn})")
    return worst(*states), ", ".join(breaches) or None


def _node_names(nodes: list[Mapping[str, Any]]) -> list[str]:
    """Each node's name in the output: its url, and its set when the same url is in several sets
    (perfdata labels must be unique, or graphs mix two series)."""
    urls = [str(node.get("node", "?")) for node in nodes]
    return [
        f"{url} set {node.get('set_id')}" if urls.count(url) > 1 else url
        for url, node in zip(urls, nodes)
    ]


def _node_verdict(
    node: Mapping[str, Any], name: str, warning: Mapping[str, Range], critical: Mapping[str, Range],
) -> _Verdict:
    status = node.get("status")
    measured = _measurements(node)
    reason = node.get("reason")
    reason = str(reason) if reason not in (None, "") else None
    if status == "pass":
        state, problem = _judge(measured, warning, critical)
    elif status == "fail":
        state, problem = State.CRITICAL, reason or "failed"
    elif status == "unfinished":
        state, problem = State.UNKNOWN, reason or "check did not finish"
    else:
        state, problem = State.UNKNOWN, f"status {shown(str(status), _ECHO_LIMIT)} not known"
    # The node part is cut, not the metric's name, so the four labels of a node stay apart.
    label = _bounded(name, LABEL_LIMIT - len(" latency"))
    perfdata = (
        perfdata_item(f"{label} loss", measured["loss"], "%", warning.get("loss"), critical.get("loss"), 0, 100),
        perfdata_item(
            f"{label} latency", measured["latency"], "ms", warning.get("latency"), critical.get("latency"), 0,
        ),
        perfdata_item(f"{label} jitter", measured["jitter"], "ms", warning.get("jitter"), critical.get("jitter"), 0),
        perfdata_item(f"{label} rtt", _number(node.get("rtt_ms")), "ms", None, None, 0),
    )
    return _Verdict(name, state, problem, perfdata)


def evaluate(report: Mapping[str, Any], warning: Mapping[str, Range], critical: Mapping[str, Range]) -> PluginOutput:
    """The plugin's result for a `check` report (the object `rtppctl check --json` prints) and
    thresholds keyed by THRESHOLD_KEYS (loss in %, latency and jitter in ms, each the worse of a
    node's two directions). A failed node is CRITICAL, an unfinished one UNKNOWN; a node that passed is
    CRITICAL or WARNING when a critical or warning range alerts; the result is the worst node's
    state (`worst`), UNKNOWN when there is no node."""
    for thresholds in (warning, critical):
        unknown = set(thresholds) - set(THRESHOLD_KEYS)
        if unknown:
            raise ValueError(f"thresholds for {sorted(unknown)}; the keys are {THRESHOLD_KEYS}")
    nodes = report.get("nodes")
    nodes = [node for node in nodes if isinstance(node, Mapping)] if isinstance(nodes, list) else []
    if not nodes:
        return unknown_output("no relay to check")
    verdicts = [
        _node_verdict(node, name, warning, critical) for node, name in zip(nodes, _node_names(nodes))
    ]
    state = worst(*(verdict.state for verdict in verdicts))
    passed = sum(node.get("status") == "pass" for node in nodes)
    # The worst problems first: the summary is bounded, and what is cut should be the least of them.
    problems = sorted((v for v in verdicts if v.problem is not None), key=lambda v: -_SEVERITY[v.state])
    summary = "; ".join([
        f"{passed}/{len(nodes)} relays forward media",
        *(f"{_one_line(v.name, _NAME_LIMIT)}: {_one_line(v.problem or '', _REASON_LIMIT)}" for v in problems),
    ])
    prefix = f"{PLUGIN_NAME} {state.name} - "
    status_line = prefix + _one_line(summary, STATUS_LIMIT - len(prefix))
    perfdata = " ".join(item for verdict in verdicts for item in verdict.perfdata)
    # One detail line per node that is not OK, whole (the summary may have cut it short).
    details = [_one_line(f"{v.name}: {v.problem}", DETAIL_LIMIT) for v in problems]
    return PluginOutput(state, "".join(line + "\n" for line in [f"{status_line} | {perfdata}", *details]))
