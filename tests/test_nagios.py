"""The Nagios/Icinga plugin contract: every output is read back with a parser written here from
the Monitoring Plugins Development Guidelines (not from the module), ranges behave as the
guidelines' examples say, and text from outside never breaks the status line."""

from __future__ import annotations

import math
import re
from typing import Any, NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtppctl.monitoring.nagios import (
    LABEL_LIMIT, THRESHOLD_KEYS, PluginOutput, Range, State, evaluate, format_number, parse_range, parse_thresholds,
    perfdata_item, unknown_output, worst,
)
from rtppctl.proto.errors import InputError

# -- a reader of the published syntax, independent of the module --------------------------------

#: The guidelines' units of measurement.
GUIDELINE_UNITS = {"", "s", "ms", "us", "%", "B", "KB", "MB", "TB", "c"}
#: value, min and max: characters of [-0-9.], a decimal number, no exponent.
NUMBER = r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
RANGE_TEXT = re.compile(rf"@?(?:(?:~|{NUMBER}):)?(?:{NUMBER})?")
STATUS_LINE = re.compile(r"RTPPCTL CHECK (OK|WARNING|CRITICAL|UNKNOWN) - ([^|]*?)(?: \| (.*))?")


class PerfSyntaxError(AssertionError):
    pass


class PerfItem(NamedTuple):
    label: str
    value: float | None  # None for U
    uom: str
    warn: str
    crit: str
    minimum: str
    maximum: str


def _label(text: str, pos: int) -> tuple[str, int]:
    """A label at `pos`: quoted ('' is a quote) or bare (no space, quote or =); then its `=`."""
    if text.startswith("'", pos):
        pos += 1
        chars = []
        while True:
            if pos >= len(text):
                raise PerfSyntaxError(f"unterminated label in {text!r}")
            if text.startswith("''", pos):
                chars.append("'")
                pos += 2
            elif text[pos] == "'":
                pos += 1
                break
            else:
                chars.append(text[pos])
                pos += 1
        label = "".join(chars)
    else:
        match = re.compile(r"[^\s'=]+").match(text, pos)
        if match is None:
            raise PerfSyntaxError(f"no label at {pos} in {text!r}")
        label, pos = match.group(), match.end()
    if "=" in label or not label:
        raise PerfSyntaxError(f"label {label!r}: empty or holds '='")
    if not text.startswith("=", pos):
        raise PerfSyntaxError(f"no '=' after the label at {pos} in {text!r}")
    return label, pos + 1


def parse_perfdata(text: str) -> list[PerfItem]:
    """Items `'label'=value[UOM];[warn];[crit];[min];[max]`, one space apart."""
    items, pos = [], 0
    while True:
        label, pos = _label(text, pos)
        end = text.find(" ", pos)
        end = len(text) if end < 0 else end
        fields = text[pos:end].split(";")
        if len(fields) > 5:
            raise PerfSyntaxError(f"more than 5 fields: {text[pos:end]!r}")
        fields += [""] * (5 - len(fields))
        if fields[0] == "U":
            value, uom = None, ""
        else:
            match = re.fullmatch(rf"({NUMBER})(.*)", fields[0])
            if match is None or match[2] not in GUIDELINE_UNITS:
                raise PerfSyntaxError(f"bad value {fields[0]!r}")
            value, uom = float(match[1]), match[2]
        for threshold in fields[1:3]:
            if threshold and not RANGE_TEXT.fullmatch(threshold) or threshold == "@":
                raise PerfSyntaxError(f"bad range {threshold!r}")
        for bound in fields[3:5]:
            if bound and not re.fullmatch(NUMBER, bound):
                raise PerfSyntaxError(f"bad min/max {bound!r}")
        items.append(PerfItem(label, value, uom, *fields[1:]))
        if end == len(text):
            return items
        pos = end + 1


class Parsed(NamedTuple):
    state: str
    summary: str
    perfdata: list[PerfItem]
    details: list[str]


def parse_output(output: PluginOutput) -> Parsed:
    """The plugin's stdout: a status line (at most 200 characters before ` | `), detail lines
    without `|`, every line printable, every line ended by a newline."""
    text = output.text
    assert text.endswith("\n")
    lines = text[:-1].split("\n")
    assert text.splitlines() == lines  # no other line break (\r, \x85, U+2028...) anywhere
    assert all(line.isprintable() for line in lines), lines
    match = STATUS_LINE.fullmatch(lines[0])
    assert match is not None, lines[0]
    assert len(lines[0].partition(" | ")[0]) <= 200
    assert match[1] == output.state.name
    perfdata = parse_perfdata(match[3]) if match[3] is not None else []
    for line in lines[1:]:
        assert "|" not in line and 0 < len(line) <= 300, line
    return Parsed(match[1], match[2], perfdata, lines[1:])


def test_the_reader_refuses_what_the_guidelines_refuse():
    for bad in ["'a=1", "a b=1", "'a'=1e3", "'a'=1x", "'a'=1;2;3;4;5;6", "'a'=inf", "'a'=1;;;1e2", "=1",
                "'a'=1 ", "'a'=1;@", "'a'='1'"]:
        with pytest.raises(PerfSyntaxError):
            parse_perfdata(bad)
    assert parse_perfdata("'a ''b'''=0.5%;10;~:5;0;100 c=U") == [
        PerfItem("a 'b'", 0.5, "%", "10", "~:5", "0", "100"), PerfItem("c", None, "", "", "", "", ""),
    ]


# -- states -------------------------------------------------------------------------------------


def test_exit_states_are_the_guidelines_codes():
    assert [(s.name, int(s)) for s in State] == [("OK", 0), ("WARNING", 1), ("CRITICAL", 2), ("UNKNOWN", 3)]


def test_worst_ranks_known_problems_above_unknown():
    assert worst() is State.OK
    assert worst(State.OK, State.UNKNOWN) is State.UNKNOWN
    assert worst(State.UNKNOWN, State.WARNING) is State.WARNING
    assert worst(State.CRITICAL, State.UNKNOWN, State.WARNING) is State.CRITICAL
    assert worst(State.UNKNOWN, State.OK, State.UNKNOWN) is State.UNKNOWN


# -- ranges -------------------------------------------------------------------------------------

# The guidelines' examples, with values on and around each edge: (range, alerting, not alerting).
RANGE_EXAMPLES = [
    ("10", [-0.001, -1, 10.001, 11, 1e9], [0, 0.5, 5, 10]),
    ("10:", [9.999, 0, -5], [10, 10.001, 1e9]),
    ("~:10", [10.001, 11, 1e9], [10, 9.999, -1e9]),
    ("10:20", [9.999, 20.001, -15], [10, 15, 20]),
    ("@10:20", [10, 15, 20], [9.999, 20.001, -15]),
    ("-1.5:-0.5", [-1.501, -0.499, 0], [-1.5, -1, -0.5]),
    ("@~:", [-1e9, 0, 1e9], []),
    ("0:", [-0.001], [0, 1e9]),
]


@pytest.mark.parametrize(("text", "alerting", "quiet"), RANGE_EXAMPLES)
def test_range_semantics(text, alerting, quiet):
    threshold = parse_range(text, "--warning loss")
    for value in alerting:
        assert threshold.alerts(value), (text, value)
    for value in quiet:
        assert not threshold.alerts(value), (text, value)
    assert str(threshold) == text


@pytest.mark.parametrize(
    ("text", "expected", "canonical"),
    [
        ("10", Range(0, 10), "10"),
        ("0:10", Range(0, 10), "10"),
        ("10:", Range(10, None), "10:"),
        ("~:10", Range(None, 10), "~:10"),
        ("10:20", Range(10, 20), "10:20"),
        ("@10:20", Range(10, 20, inside=True), "@10:20"),
        ("@10", Range(0, 10, inside=True), "@10"),
        ("-1.5", None, None),  # an end below the implied start of 0
        ("-2:-1.5", Range(-2, -1.5), "-2:-1.5"),
        ("10.50:20.0", Range(10.5, 20), "10.5:20"),
        (".5", Range(0, 0.5), "0.5"),
        ("~:", Range(None, None), "~:"),
        ("0.0000001", Range(0, 1e-7), "0.0000001"),
    ],
)
def test_range_parse_and_canonical_text(text, expected, canonical):
    if expected is None:
        with pytest.raises(InputError, match="starts above its end"):
            parse_range(text, "--critical loss")
        return
    assert parse_range(text, "--critical loss") == expected
    assert str(expected) == canonical


@pytest.mark.parametrize(
    "text",
    ["", "@", "~", "~10", ":10", "10::", "10:20:30", " 10", "10 ", "1e3", "1E3", "inf", "nan", "-inf:", "1,5",
     "--1", "+1", "20:10", "@20:10", "1.", "\u0661\u0660", "10\n", "x", "1" * 400, "~:" + "9" * 400],
)
def test_bad_ranges_are_input_errors_naming_the_option(text):
    with pytest.raises(InputError) as caught:
        parse_range(text, "--warning loss")
    message = caught.value.message
    assert message.startswith("--warning loss: ")
    assert "\n" not in message and len(message) < 160
    assert caught.value.hint and "[@][START:][END]" in caught.value.hint


def test_a_bad_range_is_quoted_bounded():
    with pytest.raises(InputError) as caught:
        parse_range("x" * 10_000 + "\x1b", "--warning jitter")
    message = caught.value.message
    assert "'" + "x" * 40 + "'" in message and "x" * 41 not in message
    assert "10001 characters" in message and "\x1b" not in message


def test_range_refuses_impossible_bounds():
    with pytest.raises(ValueError):
        Range(2, 1)
    with pytest.raises(ValueError):
        Range(None, math.inf)


finite = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def ranges(draw):
    start = draw(st.none() | finite)
    end = draw(st.none() | finite)
    if start is not None and end is not None and start > end:
        start, end = end, start
    return Range(start, end, draw(st.booleans()))


@given(ranges())
def test_range_text_round_trips(threshold):
    text = str(threshold)
    assert "e" not in text.lower() and "inf" not in text
    assert RANGE_TEXT.fullmatch(text)
    assert parse_range(text, "--warning loss") == threshold


@given(ranges(), finite)
def test_inside_is_the_opposite_of_outside(threshold, value):
    opposite = Range(threshold.start, threshold.end, not threshold.inside)
    assert threshold.alerts(value) != opposite.alerts(value)


# -- thresholds ---------------------------------------------------------------------------------


def test_thresholds_parse_by_key():
    assert THRESHOLD_KEYS == ("loss", "latency", "jitter")
    assert parse_thresholds("loss=1,latency=50:,jitter=~:30", "--warning") == {
        "loss": Range(0, 1), "latency": Range(50, None), "jitter": Range(None, 30),
    }
    assert parse_thresholds(" loss = @1:2 , jitter=0:", "--critical") == {
        "loss": Range(1, 2, inside=True), "jitter": Range(0, None),
    }
    assert parse_thresholds(None, "--warning") == {}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("loss=1,loss=2", "loss given twice"),
        ("loss=1,rtt=5", "unknown key 'rtt'; the keys are loss, latency, jitter"),
        ("loss", "'loss' is not KEY=RANGE"),
        ("loss=1,,jitter=2", "empty item"),
        ("loss=1,", "empty item"),
        ("", "no threshold given"),
        ("latency=50:10", "--warning latency: '50:10' starts above its end"),
        ("jitter=", "--warning jitter: empty range"),
        ("loss=1e2", "--warning loss: '1e2' is not a range"),
    ],
)
def test_bad_thresholds(text, words):
    with pytest.raises(InputError) as caught:
        parse_thresholds(text, "--warning")
    assert caught.value.message.startswith("--warning")
    assert words in caught.value.message


# -- numbers and perfdata items -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.5, "0.5"), (12, "12"), (12.0, "12"), (0.001, "0.001"), (1e-7, "0"), (-1e-7, "0"), (0.0004, "0"),
     (0.0006, "0.001"), (-1.25, "-1.25"), (100.0, "100"), (1e20, "100000000000000000000"), (-0.0, "0")],
)
def test_format_number(value, text):
    assert format_number(value) == text


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_format_number_refuses_what_has_no_decimal_form(value):
    with pytest.raises(ValueError):
        format_number(value)


@given(finite)
def test_format_number_is_decimal_and_close(value):
    text = format_number(value)
    assert "e" not in text and "E" not in text
    assert re.fullmatch(r"-?[0-9]+(\.[0-9]{1,3})?", text)
    assert not text.endswith("0") or "." not in text
    assert abs(float(text) - value) <= 0.001


def test_perfdata_item_shapes():
    assert perfdata_item("a", 0.5, "%", Range(0, 1), Range(0, 10), 0, 100) == "'a'=0.5%;1;10;0;100"
    assert perfdata_item("a", 0.21, "ms", minimum=0) == "'a'=0.21ms;;;0"
    assert perfdata_item("a", 3) == "'a'=3"
    assert perfdata_item("a", None, "ms", None, Range(None, 30), 0) == "'a'=U;;~:30;0"
    assert perfdata_item("a", math.nan, "ms") == "'a'=U"
    assert perfdata_item("it's a=b\n", 1) == "'it''s a_b?'=1"
    assert perfdata_item("", 1) == "'?'=1"
    with pytest.raises(ValueError):
        perfdata_item("a", 1, "kB")


def expected_label(label: str) -> str:
    """The documented replacements: bounded, '=' to '_', what is not printable to '?'."""
    text = "".join("_" if c == "=" else c if c.isprintable() else "?" for c in label[:LABEL_LIMIT])
    return text or "?"


@given(
    st.text(), st.none() | finite, st.sampled_from(sorted(GUIDELINE_UNITS)), st.none() | ranges(),
    st.none() | ranges(), st.none() | finite, st.none() | finite,
)
def test_any_perfdata_item_parses_and_keeps_its_label(label, value, uom, warn, crit, minimum, maximum):
    item = perfdata_item(label, value, uom, warn, crit, minimum, maximum)
    (parsed,) = parse_perfdata(item)
    assert parsed.label == expected_label(label)
    assert len(parsed.label) <= LABEL_LIMIT
    if value is None:
        assert parsed.value is None
    else:
        assert parsed.uom == uom and abs(parsed.value - value) <= 0.001
    assert parsed.warn == ("" if warn is None else str(warn))
    assert parsed.crit == ("" if crit is None else str(crit))


@given(st.text(alphabet=st.sampled_from("'=ab |\n\x1b\u2028"), max_size=30))
def test_labels_of_quotes_and_equals_parse(label):
    (parsed,) = parse_perfdata(perfdata_item(label, 1.0))
    assert parsed.label == expected_label(label)


# -- evaluate -----------------------------------------------------------------------------------


def direction(name: str, *, sent: int = 50, received: int = 50, latency: float = 0.09, jitter: float = 0.01,
              loss_pct: Any = "computed") -> dict[str, Any]:
    """One direction as notes/check-spec.md shapes it."""
    lost = sent - received
    return {
        "direction": name, "sent": sent, "received": received, "lost": lost,
        "loss_pct": (100.0 * lost / sent if sent else 0.0) if loss_pct == "computed" else loss_pct,
        "duplicates": 0, "reordered": 0, "late": 0, "corrupted": 0, "stray": 0,
        "latency_ms": None if received == 0 else {"min": latency / 2, "avg": latency, "p99": latency * 2,
                                                    "max": latency * 3},
        "jitter_ms": None if received < 2 else jitter,
        "latched": None if received == 0 else True,
        "relay_received": sent, "lost_before_relay": 0, "lost_after_relay": lost,
    }


def both(**kwargs: Any) -> list[dict[str, Any]]:
    return [direction("caller-to-callee", **kwargs), direction("callee-to-caller", **kwargs)]


def node(url: str = "udp:127.0.0.1:22222", status: str = "pass", *, reason: str | None = None,
         rtt: float | None = 0.21, directions: list[dict[str, Any]] | None = None, set_id: int | None = 0):
    answered = rtt is not None
    return {
        "node": url, "set_id": set_id, "state": "enabled", "status": status, "reason": reason, "rtt_ms": rtt,
        "version": 20040107 if answered else None, "capabilities": ["REPACK"] if answered else [],
        "call_id": "rtppctl-check-1", "media_address": "127.0.0.1" if answered else None,
        "address_source": "advertised" if answered else None,
        "directions": both() if directions is None else directions,
        "relay_counters": {"ttl": 60, "npkts_ina": 50, "npkts_ino": 50, "nrelayed": 100, "ndropped": 0}
        if answered else None,
    }


def report(*nodes: dict[str, Any]) -> dict[str, Any]:
    passed = sum(n["status"] == "pass" for n in nodes)
    return {
        "ok": passed == len(nodes), "verdict": f"{passed}/{len(nodes)} relays forward media both ways",
        "packets": 50, "ptime_ms": 20, "late_ms": 150, "max_loss_pct": 5.0, "deadline_s": 45.0, "elapsed_s": 1.32,
        "nodes": list(nodes),
    }


THREE = ("udp:10.0.0.3:22222", "udp:10.0.0.4:22222", "udp:10.0.0.5:22222")
WARN = {"loss": Range(0, 1), "latency": Range(0, 50), "jitter": Range(None, 30)}
CRIT = {"loss": Range(0, 10), "latency": Range(0, 200), "jitter": Range(None, 60)}


def perf_by_label(parsed: Parsed) -> dict[str, PerfItem]:
    labels = [item.label for item in parsed.perfdata]
    assert len(labels) == len(set(labels))
    return {item.label: item for item in parsed.perfdata}


def test_all_pass_is_ok():
    output = evaluate(report(*(node(url) for url in THREE)), WARN, CRIT)
    parsed = parse_output(output)
    assert output.state is State.OK and int(output.state) == 0
    assert parsed.summary == "3/3 relays forward media" and parsed.details == []
    perf = perf_by_label(parsed)
    assert len(perf) == 12
    assert perf["udp:10.0.0.5:22222 loss"] == PerfItem("udp:10.0.0.5:22222 loss", 0, "%", "1", "10", "0", "100")
    assert perf["udp:10.0.0.5:22222 latency"] == PerfItem("udp:10.0.0.5:22222 latency", 0.09, "ms", "50", "200",
                                                          "0", "")
    assert perf["udp:10.0.0.5:22222 jitter"][1:4] == (0.01, "ms", "~:30")
    assert perf["udp:10.0.0.5:22222 rtt"] == PerfItem("udp:10.0.0.5:22222 rtt", 0.21, "ms", "", "", "0", "")


def test_without_thresholds_perfdata_has_no_ranges():
    parsed = parse_output(evaluate(report(node()), {}, {}))
    assert all(item.warn == item.crit == "" for item in parsed.perfdata)
    assert parsed.state == "OK"


def test_one_failed_node_is_critical():
    nodes = [node(THREE[0]), node(THREE[1]), node(THREE[2], "fail", reason="relay answered E71 to 'U'")]
    output = evaluate(report(*nodes), WARN, CRIT)
    parsed = parse_output(output)
    assert output.state is State.CRITICAL
    assert parsed.summary == "2/3 relays forward media; udp:10.0.0.5:22222: relay answered E71 to 'U'"
    assert parsed.details == ["udp:10.0.0.5:22222: relay answered E71 to 'U'"]


def test_unfinished_only_is_unknown():
    nodes = [node(THREE[0]), node(THREE[1], "unfinished", reason="cut by --deadline", directions=[])]
    output = evaluate(report(*nodes), WARN, CRIT)
    parsed = parse_output(output)
    assert output.state is State.UNKNOWN
    assert parsed.summary == "1/2 relays forward media; udp:10.0.0.4:22222: cut by --deadline"
    assert perf_by_label(parsed)["udp:10.0.0.4:22222 loss"].value is None


def test_a_failed_node_outranks_an_unfinished_one_and_comes_first():
    nodes = [node(THREE[0], "unfinished", reason="interrupted"), node(THREE[1], "fail", reason="no reply to V")]
    output = evaluate(report(*nodes), {}, {})
    parsed = parse_output(output)
    assert output.state is State.CRITICAL
    assert parsed.summary == ("0/2 relays forward media; udp:10.0.0.4:22222: no reply to V; "
                              "udp:10.0.0.3:22222: interrupted")
    assert len(parsed.details) == 2


def test_loss_over_warning_is_warning():
    lossy = node(THREE[2], directions=[direction("caller-to-callee"), direction("callee-to-caller", received=49)])
    output = evaluate(report(node(THREE[0]), node(THREE[1]), lossy), WARN, CRIT)
    parsed = parse_output(output)
    assert output.state is State.WARNING
    assert parsed.summary == "3/3 relays forward media; udp:10.0.0.5:22222: loss 2% (warning 1)"
    assert perf_by_label(parsed)["udp:10.0.0.5:22222 loss"].value == 2


def test_loss_over_critical_is_critical():
    lossy = node(THREE[2], directions=[direction("caller-to-callee", received=44), direction("callee-to-caller")])
    output = evaluate(report(node(THREE[0]), node(THREE[1]), lossy), WARN, CRIT)
    parsed = parse_output(output)
    assert output.state is State.CRITICAL
    assert parsed.summary == "3/3 relays forward media; udp:10.0.0.5:22222: loss 12% (critical 10)"


def test_latency_and_jitter_take_the_worse_direction():
    slow = node(directions=[direction("caller-to-callee", latency=80, jitter=1),
                            direction("callee-to-caller", latency=5, jitter=45)])
    parsed = parse_output(evaluate(report(slow), WARN, CRIT))
    assert parsed.state == "WARNING"
    assert parsed.summary.endswith("latency 80ms (warning 50), jitter 45ms (warning ~:30)")
    perf = perf_by_label(parsed)
    assert perf["udp:127.0.0.1:22222 latency"].value == 80 and perf["udp:127.0.0.1:22222 jitter"].value == 45


def test_inside_range_threshold():
    parsed = parse_output(evaluate(report(node()), {}, {"latency": Range(0, 1, inside=True)}))
    assert parsed.state == "CRITICAL" and parsed.summary.endswith("latency 0.09ms (critical @1)")


def test_a_threshold_on_an_unmeasured_value_is_unknown():
    one_packet = node(directions=both(sent=1, received=1))
    parsed = parse_output(evaluate(report(one_packet), {"jitter": Range(None, 30)}, {}))
    assert parsed.state == "UNKNOWN" and parsed.summary.endswith("jitter not measured")
    # without a threshold on it, nobody asked: the node is OK
    assert evaluate(report(one_packet), {"loss": Range(0, 1)}, {}).state is State.OK


def test_a_dead_node_is_critical_with_undetermined_perfdata():
    dead = node(THREE[1], "fail", reason="no answer to V", rtt=None, directions=[])
    output = evaluate(report(node(THREE[0]), dead), WARN, CRIT)
    parsed = parse_output(output)
    assert output.state is State.CRITICAL
    perf = perf_by_label(parsed)
    for metric in ("loss", "latency", "jitter", "rtt"):
        assert perf[f"udp:10.0.0.4:22222 {metric}"].value is None
    assert perf["udp:10.0.0.3:22222 rtt"].value == 0.21
    assert "'udp:10.0.0.4:22222 loss'=U;1;10;0;100" in output.text


def test_a_failed_node_keeps_what_it_measured():
    silent = node("udp:10.0.0.9:22222", "fail", reason="no media came back",
                  directions=both(received=0, loss_pct=None))
    perf = perf_by_label(parse_output(evaluate(report(silent), WARN, CRIT)))
    assert perf["udp:10.0.0.9:22222 loss"].value == 100
    assert perf["udp:10.0.0.9:22222 latency"].value is None
    assert perf["udp:10.0.0.9:22222 rtt"].value == 0.21


def test_no_node_is_unknown():
    for empty in (report(), {}, {"nodes": None}):
        output = evaluate(empty, WARN, CRIT)
        assert output.state is State.UNKNOWN
        assert output.text == "RTPPCTL CHECK UNKNOWN - no relay to check\n"


def test_an_unknown_status_is_unknown():
    parsed = parse_output(evaluate(report(node(status="maybe")), {}, {}))
    assert parsed.state == "UNKNOWN" and "status 'maybe' not known" in parsed.summary


def test_thresholds_with_unknown_keys_are_a_bug():
    with pytest.raises(ValueError):
        evaluate(report(node()), {"rtt": Range(0, 1)}, {})


def test_the_same_url_in_two_sets_has_labels_apart():
    parsed = parse_output(evaluate(report(node(set_id=0), node(set_id=1)), {}, {}))
    assert {"udp:127.0.0.1:22222 set 0 rtt", "udp:127.0.0.1:22222 set 1 rtt"} <= set(perf_by_label(parsed))


HOSTILE = [
    "udp:1.2.3.4:1\nRTPPCTL CHECK OK - all fine | 'x'=1",
    "udp:1.2.3.4:2'; x'=1",
    "udp:\x1b[2J\x1b]0;pwned\x07:3",
    "udp:1.2.3.4:4\r\u2028\u202e|=",
]


def test_hostile_node_text_cannot_break_the_status_line():
    nodes = [node(url, "fail", reason="E\n| 'ok'=1\x1b[31m\r" * 3) for url in HOSTILE] + [node(HOSTILE[1] + "!")]
    output = evaluate(report(*nodes), WARN, CRIT)
    parsed = parse_output(output)
    assert output.state is State.CRITICAL
    assert len(parsed.details) == len(HOSTILE)
    assert "\x1b" not in output.text and "\r" not in output.text and "\u202e" not in output.text
    # the url's fake status line is inside the real one, never a line of its own
    assert [line for line in output.text.splitlines() if line.startswith("RTPPCTL CHECK")] == [
        output.text.splitlines()[0]]
    assert parsed.summary.startswith("1/5 relays forward media; udp:1.2.3.4:1 RTPPCTL CHECK OK - all fine / 'x'=1: ")
    labels = perf_by_label(parsed)
    assert len(labels) == 20
    assert "udp:1.2.3.4:2'; x'_1! loss" in labels
    assert "udp:1.2.3.4:4???|_ rtt" in labels  # in a quoted label a | is data, not a separator


def test_a_long_summary_is_bounded_and_the_worst_survive():
    nodes = [node(f"udp:10.0.0.{i}:22222", "unfinished", reason="x" * 1000) for i in range(20)]
    nodes.append(node("udp:10.9.9.9:22222", "fail", reason="no answer to V"))
    output = evaluate(report(*nodes), {}, {})
    parsed = parse_output(output)
    assert output.state is State.CRITICAL
    assert parsed.summary.startswith("0/21 relays forward media; udp:10.9.9.9:22222: no answer to V; ")
    assert parsed.summary.endswith("...")
    assert len(parsed.details) == 21 and all(len(line) <= 300 for line in parsed.details)
    assert len(parsed.perfdata) == 84


def test_long_urls_keep_their_metric_names_in_labels():
    parsed = parse_output(evaluate(report(node("unix:/" + "d" * 500)), {}, {}))
    labels = [item.label for item in parsed.perfdata]
    assert [label.rsplit(" ", 1)[1] for label in labels] == ["loss", "latency", "jitter", "rtt"]
    assert all(len(label) <= LABEL_LIMIT for label in labels)


def test_unknown_output():
    output = unknown_output("config error:\n\x1b[31mbad | key")
    assert output.state is State.UNKNOWN
    assert output.text == "RTPPCTL CHECK UNKNOWN - config error: ?[31mbad / key\n"
    assert parse_output(output).perfdata == []
    long = unknown_output("y" * 5000)
    assert len(long.text) <= 201 and long.text.endswith("...\n")
    assert parse_output(unknown_output("")).summary == "no result"


any_text = st.text(max_size=60)
optional_number = st.none() | st.floats(min_value=0, max_value=1e6) | st.integers(0, 100)
random_direction = st.fixed_dictionaries({
    "direction": st.sampled_from(["caller-to-callee", "callee-to-caller"]),
    "sent": st.integers(0, 100), "received": st.integers(0, 100), "loss_pct": optional_number,
    "latency_ms": st.none() | st.fixed_dictionaries({"avg": optional_number}), "jitter_ms": optional_number,
})
random_node = st.fixed_dictionaries({
    "node": any_text, "set_id": st.none() | st.integers(0, 3),
    "status": st.sampled_from(["pass", "fail", "unfinished"]), "reason": st.none() | any_text,
    "rtt_ms": optional_number, "directions": st.lists(random_direction, max_size=2),
})
random_thresholds = st.dictionaries(st.sampled_from(THRESHOLD_KEYS), ranges())


@given(st.lists(random_node, max_size=6), random_thresholds, random_thresholds)
def test_every_report_gives_a_well_formed_output(nodes, warning, critical):
    output = evaluate({"nodes": nodes}, warning, critical)
    parsed = parse_output(output)
    statuses = [n["status"] for n in nodes]
    if not nodes:
        assert output.state is State.UNKNOWN
        return
    assert len(parsed.perfdata) == 4 * len(nodes)
    assert len(parsed.details) >= sum(status != "pass" for status in statuses)
    if "fail" in statuses:
        assert output.state is State.CRITICAL
    elif "unfinished" in statuses:
        assert output.state is not State.OK
    if not warning and not critical and set(statuses) == {"pass"}:
        assert output.state is State.OK and parsed.details == []
