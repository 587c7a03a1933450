"""listen's records and the --exec environment: any bytes a relay sends become values a renderer
and an environment variable can hold, and nothing is lost on the way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from urllib.parse import unquote, unquote_to_bytes

from hypothesis import given
from hypothesis import strategies as st

from rtppctl.net.listener import Notifications
from rtppctl.ops.listen import ALL_KEYS, batch_common, event_records, exec_environment, exec_value, fires_exec
from rtppctl.proto.notify import NotifyParser

any_line = st.binary(max_size=80).map(lambda data: data.replace(b"\n", b""))
#: Lines that parse as each kind, with hostile bytes where the grammar leaves room for them.
shaped_line = st.one_of(
    any_line,
    any_line.map(lambda data: b"T" + data),
    st.tuples(any_line, st.sampled_from("0123456789*#ABCD"), st.integers(0, 63), st.integers(0, 9999),
              st.sampled_from("01")).map(lambda t: b"Dc" + t[0] + f" {t[1]} {t[2]} {t[3]} {t[4]}".encode()),
)


def records_of(lines: list[bytes]) -> tuple[list[dict], list]:
    events = NotifyParser().feed(b"".join(line.rstrip(b"\r") + b"\n" for line in lines))
    batch = Notifications("127.0.0.1:4000", events, 1700000000.5)
    return [{**batch_common(batch), **record} for record in event_records(batch, None)], events


@given(st.lists(shaped_line, min_size=1, max_size=8))
def test_every_value_of_any_record_reaches_exec_and_decodes_back_to_what_json_shows(lines):
    records, events = records_of(lines)
    assert len(records) == len(events)  # one record per event, in order: --exec pairs them
    for record, event in zip(records, events):
        shown = json.loads(json.dumps(record))  # what --json writes
        environment = exec_environment(record, event.raw)
        assert set(environment) == {f"RTPPCTL_{key.upper()}" for key in ALL_KEYS}
        for name, value in environment.items():
            assert "\0" not in value and value.isprintable(), (name, value)
        for key in ALL_KEYS:
            value = shown.get(key)
            if key == "raw" or value is None:
                continue
            expected = json.dumps(value) if isinstance(value, bool) else str(value)
            assert unquote(environment[f"RTPPCTL_{key.upper()}"], errors="strict") == expected
        # RTPPCTL_RAW is the line exactly as received, whatever bytes it holds.
        assert unquote_to_bytes(environment["RTPPCTL_RAW"]) == event.raw


def test_a_value_without_percent_or_control_characters_is_passed_as_it_is():
    assert exec_value("Tab.cd Call-ID@host é") == "Tab.cd Call-ID@host é"
    assert exec_value("T\x00%\x1b[31m\x7f") == "T%00%25%1B[31m%7F"


def test_unknown_events_do_not_run_exec_unless_asked():
    records, _ = records_of([b"Xnot-a-timeout", b"I", b"Ta1.b2"])
    assert [record["type"] for record in records] == ["unknown", "unknown", "timeout"]
    assert [fires_exec(record) for record in records] == [False, False, True]
    assert all(fires_exec(record, unknown=True) for record in records)


def test_a_real_process_gets_a_nul_tag_through_its_environment():
    # The failure this guards against: Popen refuses an environment value with a NUL in it.
    [record], [event] = records_of([b"Tnul\x00here\xff%"])
    environment = {**os.environ, **exec_environment(record, event.raw)}
    shown = subprocess.run([sys.executable, "-c", "import os; print(os.environ['RTPPCTL_TAG']);"
                            "print(os.environ['RTPPCTL_RAW'])"],
                           env=environment, capture_output=True, text=True, timeout=20, check=True).stdout.split()
    assert unquote(shown[0]) == "Tnul\x00here\ufffd%"  # as --json shows it
    assert unquote_to_bytes(shown[1]) == b"Tnul\x00here\xff%"  # as it came
