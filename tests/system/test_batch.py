"""rtppctl batch: NDJSON in, one result per operation out, against a real relay.

The format and the run's order rules are tested with values in and values out (`parse_line`,
`worst_exit`, `BatchRun` over a function standing in for the operations); the command itself
runs against a real relay of this module's own (a recording dir and a prompt file), so that its
session count says whether every session was deleted at the end.
"""

from __future__ import annotations

import io
import json
import random
import threading
import time

import pytest

from rtppctl.ops.batch import (
    MAX_LINE_BYTES,
    BadLine,
    BatchRun,
    Done,
    Operation,
    parse_line,
    worst_exit,
)
from rtppctl.proto.errors import ExitCode, InputError
from tests.cli.helpers import cli, cli_process

OFFER = (
    "v=0\r\no=- 1 1 IN IP4 10.7.0.1\r\ns=-\r\nc=IN IP4 10.7.0.1\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
)
ANSWER = "v=0\no=- 2 2 IN IP4 10.7.0.2\ns=-\nc=IN IP4 10.7.0.2\nt=0 0\nm=audio 50000 RTP/AVP 0\n"
INVITE = (
    "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.7.0.1:5060;branch=z9hG4bK1\r\n"
    "From: <sip:alice@example.com>;tag=ft\r\nTo: <sip:bob@example.com>\r\nCall-ID: {call}\r\nCSeq: 1 INVITE\r\n"
    "Content-Type: application/sdp\r\nContent-Length: {length}\r\n\r\n{body}"
)


def line(**keys) -> bytes:
    return (json.dumps(keys) + "\n").encode()


def ndjson(*objects: dict) -> str:
    return "".join(json.dumps(o) + "\n" for o in objects)


def records(stdout: str) -> tuple[list[dict], dict]:
    """(the result objects, the summary) of a batch's output."""
    rows = [json.loads(row) for row in stdout.splitlines()]
    assert rows and rows[-1]["type"] == "summary", stdout[-500:]
    return rows[:-1], rows[-1]


def shape(value):
    """The keys of a JSON value, nested; the values themselves left out."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return None


# -- the format (pure) ----------------------------------------------------------------------------


def test_a_good_line_becomes_an_operation_with_its_call_id_as_the_order_key():
    parsed = parse_line(3, line(op="stop-play", id="x", to=" UAS ", call_id="c1@h", target="udp:127.0.0.1:9",
                                from_tag=None))
    assert parsed == Operation(3, "x", "stop-play", {"to": "uas", "call_id": "c1@h", "target": ["udp:127.0.0.1:9"]},
                               "c1@h")
    assert parse_line(1, line(op="lb explain", call_id="c1")).key is None  # free: no relay, no order
    message = INVITE.format(call="from-msg@h", length=len(OFFER), body=OFFER)
    assert parse_line(1, line(op="offer", sdp=message)).key == "from-msg@h"


@pytest.mark.parametrize(("data", "code", "key", "words"), [
    (b"not json\n", ExitCode.INPUT, None, "not JSON"),
    (b"[1, 2]\n", ExitCode.INPUT, None, "not a JSON object"),
    (b"\xff\xfe{}\n", ExitCode.INPUT, None, "not UTF-8"),
    (line(call_id="c"), ExitCode.USAGE, "op", "no op"),
    (line(op="delete", call_id="c"), ExitCode.USAGE, "op", "'delete' is not an op"),
    (line(op="unforce", call_id="c", colour="red"), ExitCode.USAGE, "colour", "unforce has no key 'colour'"),
    (line(op="offer", call_id="c"), ExitCode.USAGE, "sdp", "offer needs sdp"),
    (line(op="stats", call_id="c", stream=0), ExitCode.USAGE, "stream", "stream 0 is not in the range 1 to"),
    (line(op="stats", call_id="c", all="yes"), ExitCode.USAGE, "all", "all must be true or false"),
    (line(op="play", call_id="c", prompt="p", to="caller"), ExitCode.USAGE, "to", "give uac or uas"),
    (line(op="play", call_id="c", prompt="p", to="uac", count=True), ExitCode.USAGE, "count", "must be an integer"),
    (line(op="query", call_id="c", counters=[]), ExitCode.USAGE, "counters", "empty list"),
    (line(op="unforce", id={"a": 1}, call_id="c"), ExitCode.USAGE, "id", "id must be"),
    (b'{"op": "unforce", "call_id": "a", "call_id": "b"}\n', ExitCode.USAGE, "call_id", "given twice"),
    (line(op="unforce", call_id="c1\x07\x1b[2J"), ExitCode.INPUT, "call_id", "control character"),
    (line(op="answer", sdp=ANSWER, call_id="c", to_tag="t;2"), ExitCode.INPUT, "to_tag", "';'"),
    (line(op="raw", command="V", target="udp:127.0.0.1:9\x00"), ExitCode.INPUT, "target", "target 'udp"),
    (line(op="lb explain", call_id="c", disable=["a", 3]), ExitCode.USAGE, "disable", "disable[1] must be a string"),
    (line(op="stats", call_id="c", watch=1), ExitCode.USAGE, "watch", "no key 'watch'"),
])
def test_a_bad_line_is_an_error_naming_its_line_and_key(data, code, key, words):
    bad = parse_line(7, data)
    assert isinstance(bad, BadLine)
    assert bad.exit_code == code and bad.key == key and bad.line == 7
    assert bad.message.startswith("line 7: ") and words in bad.message, bad.message
    error = bad.record()["error"]
    assert error["line"] == 7 and error["exit_code"] == int(code) and error["key"] == key


def test_an_id_is_echoed_in_the_error_of_a_line_whose_op_is_bad():
    record = parse_line(1, line(op="nope", id=42)).record()
    assert record["id"] == 42 and record["op"] is None
    assert record["error"]["message"] == "line 1: op 'nope' is not an op a batch runs"
    assert record["error"]["exit_code"] == 2 and record["error"]["key"] == "op"
    assert "lb explain" in record["error"]["hint"]


def test_the_most_severe_failure_gives_the_exit_code():
    assert worst_exit([]) == 0
    assert worst_exit([0, 0]) == 0
    assert worst_exit([2, 6]) == 6
    assert worst_exit([2, 6, 3]) == 3
    assert worst_exit([3, 4, 6]) == 4
    assert worst_exit([4, 5]) == 5
    assert worst_exit([5, 1, 2]) == 1


def test_only_an_operation_of_the_run_waits_through_it():
    # The hub's thread, or a run not started, has no operation to suspend: waiting there would
    # stop the whole batch, so it is refused at once.
    batch = BatchRun(lambda operation: Done({}), lambda record: None)
    with pytest.raises(RuntimeError, match="only an operation of the batch"):
        batch.pause(0.01)
    seen = []

    def operate(operation: Operation) -> Done:
        seen.append(threading.current_thread() is threading.main_thread())
        failures = []
        thread = threading.Thread(target=lambda: failures.append(_refused(lambda: batch.pause(0.01))))
        thread.start()
        thread.join(5)
        seen.append(failures == [True])
        return Done({})

    batch = BatchRun(operate, lambda record: None)
    batch.run(io.BytesIO(play("a")))
    assert seen == [True, True]  # operations run on the batch's own thread; another thread is refused


def _refused(wait) -> bool:
    try:
        wait()
    except RuntimeError:
        return True
    return False


# -- the run's order rules (a function stands in for the operations) ------------------------------


def run_batch(data: bytes, *, delays: dict[str, float] | None = None, **options) -> tuple[list[dict], object, list]:
    """A batch over `data` whose operations 'wait for the relay' (by prompt: `delays`, else a
    random while) through the run, as the pipelined client does; (results, summary, a log of when
    each line started and ended)."""
    out: list[dict] = []
    log: list = []
    rng = random.Random(7)

    def operate(operation: Operation) -> Done:
        log.append(("start", operation.line))
        wait = (delays or {}).get(operation.params.get("prompt"), rng.random() * 0.004)
        batch.pause(wait)
        log.append(("end", operation.line))
        if operation.params.get("prompt") == "fail":
            raise InputError("it failed")
        return Done({"line": operation.line})

    batch = BatchRun(operate, out.append, **options)
    summary = batch.run(io.BytesIO(data))
    return out, summary, log


def play(call: str, prompt: str = "p", **extra) -> bytes:
    return line(op="play", call_id=call, prompt=prompt, to="uac", **extra)


def test_operations_on_one_call_id_run_one_after_another_in_input_order():
    data = b"".join(play(f"c{n % 7}", id=n) for n in range(140))
    out, summary, log = run_batch(data, window=16)
    assert [r["id"] for r in out] == list(range(140))  # input order
    running: dict[str, int] = {}
    by_line = {n + 1: f"c{n % 7}" for n in range(140)}
    last_started: dict[str, int] = {}
    for event, number in log:
        call = by_line[number]
        if event == "start":
            assert running.get(call) is None, f"two operations on {call} at once"
            assert number > last_started.get(call, 0), "out of input order"
            running[call], last_started[call] = number, number
        else:
            running[call] = None
    assert summary.ok == 140 and summary.exit_code == 0
    # Different calls did run at once: the window was used.
    at_once = most = 0
    for event, _ in log:
        at_once += 1 if event == "start" else -1
        most = max(most, at_once)
    assert most >= 4


def test_as_completed_writes_a_result_when_its_operation_ends():
    data = play("slow", "slowly") + b"".join(play(f"c{n}") for n in range(5))
    out, summary, _ = run_batch(data, window=4, as_completed=True, delays={"slowly": 0.3, "p": 0.0})
    assert sorted(r["result"]["line"] for r in out) == [1, 2, 3, 4, 5, 6]
    assert out[-1]["result"]["line"] == 1  # the slow first line came last
    in_order, _, _ = run_batch(data, window=4, delays={"slowly": 0.3, "p": 0.0})
    assert [r["result"]["line"] for r in in_order] == [1, 2, 3, 4, 5, 6]


def test_fail_fast_stops_after_the_first_bad_line():
    data = play("a") + play("b") + b"{oops\n" + play("c") + play("d")
    out, summary, log = run_batch(data, window=2, fail_fast=True)
    assert [r.get("error", {}).get("line") for r in out] == [None, None, 3]
    assert {n for _, n in log} == {1, 2}  # lines 4 and 5 never started
    assert summary.exit_code == ExitCode.INPUT and summary.failed == 1 and summary.ok == 2
    assert summary.record()["total"] == 3


def test_without_fail_fast_the_batch_goes_on_and_counts_per_op():
    data = play("a") + b"\n# a comment\n" + b"{oops\n" + play("b", "fail") + line(op="bogus") + play("c")
    out, summary, _ = run_batch(data, window=2)
    assert [("error" in r, r.get("error", {}).get("line")) for r in out] == [
        (False, None), (True, 4), (True, 5), (True, 6), (False, None)]
    assert summary.record()["ops"] == {"play": {"ok": 2, "error": 1}, "(unknown)": {"ok": 0, "error": 2}}
    assert summary.exit_code == ExitCode.INPUT  # 6 (bad JSON, the failed play) before 2 (unknown op)


def test_an_overlong_line_is_an_error_and_the_next_line_still_runs():
    data = b'{"op": "play", "x": "' + b"a" * (MAX_LINE_BYTES + 10) + b'"}\n' + play("a")
    out, summary, _ = run_batch(data)
    assert out[0]["error"]["line"] == 1 and "bytes long" in out[0]["error"]["message"]
    assert out[1]["result"] == {"line": 2}


def test_fail_fast_starts_nothing_after_a_failed_operation():
    data = play("a", "fail") + b"".join(play(f"c{n}") for n in range(30))
    out, summary, log = run_batch(data, window=1, fail_fast=True)
    assert out[0]["error"]["message"] == "it failed"
    assert summary.skipped + summary.ok + summary.failed <= 31 and summary.skipped >= 1
    assert len(out) == summary.ok + summary.failed


# -- the command against a real relay -------------------------------------------------------------


@pytest.fixture(scope="module")
def media_relay(relays, tmp_path_factory):
    """A relay of this module's own (its session count is ours), recording into a dir, with a
    prompt file to play."""
    relay = relays.start(extra_args=["-r", str(tmp_path_factory.mktemp("batch-records"))])
    (relay.workdir / "hello.0").write_bytes(b"\xff" * 1600)
    yield relay
    relay.stop()


def active_sessions(capsys, relay) -> int:
    result = cli(capsys, "--state", "none", "info", "-t", relay.udp, "--json")
    return result.json()["relays"][0]["info"]["active_sessions"]


def run(capsys, tmp_path, text: str, *args: str):
    path = tmp_path / "ops.ndjson"
    path.write_text(text)
    return cli(capsys, "batch", str(path), *args)


@pytest.mark.relay
def test_a_mixed_file_gives_one_result_per_line_in_order_and_leaves_no_session(capsys, tmp_path, media_relay):
    target = media_relay.udp
    rows_in: list[tuple[str, str | None]] = []  # (the line, its op; None for a bad line)
    for n in range(12):
        call = {"call_id": f"mixed-{n}@t", "from_tag": "ft", "target": target}
        rows_in.append((json.dumps({"op": "offer", "id": f"o{n}", "sdp": OFFER, **call}), "offer"))
        if n == 0:
            rows_in.append(("not json at all", None))
        rows_in.append((json.dumps({"op": "answer", "sdp": ANSWER, "to_tag": "tt", **call}), "answer"))
        if n % 4 == 0:
            rows_in.append((json.dumps({"op": "stats", "to_tag": "tt", **call}), "stats"))
            rows_in.append((json.dumps({"op": "stats", "to_tag": "tt", "stream": -1, **call}), None))
            rows_in.append(("# a comment: no operation", "skip"))
            rows_in.append(("", "skip"))
        rows_in.append((json.dumps({"op": "unforce", "to_tag": "tt", **call}), "unforce"))
    result = run(capsys, tmp_path, "".join(text + "\n" for text, _ in rows_in), "--state", "none")
    rows, summary = records(result.stdout)
    expected = [(number, op) for number, (_, op) in enumerate(rows_in, start=1) if op != "skip"]
    assert len(rows) == len(expected)
    for row, (number, op) in zip(rows, expected, strict=True):
        if op is None:
            assert row["error"]["line"] == number, row
        else:
            assert row["op"] == op and "result" in row, row
    assert [row["id"] for row in rows if row["op"] == "offer"] == [f"o{n}" for n in range(12)]
    assert all(row["result"]["had_session"] for row in rows if row["op"] == "unforce")
    assert summary["ops"]["offer"] == {"ok": 12, "error": 0} and summary["ops"]["stats"] == {"ok": 3, "error": 3}
    assert summary["ops"]["(unknown)"] == {"ok": 0, "error": 1}
    assert summary["total"] == len(rows) and summary["failed"] == 4
    assert result.code == ExitCode.INPUT == summary["exit_code"]  # bad JSON (6) before a bad stream (2)
    assert active_sessions(capsys, media_relay) == 0


@pytest.mark.relay
def test_each_result_has_the_keys_of_the_one_shot_commands_json(capsys, tmp_path, media_relay):
    target = media_relay.udp
    prompt = str(media_relay.workdir / "hello")
    offer_file, answer_file = tmp_path / "offer.sdp", tmp_path / "answer.sdp"
    offer_file.write_text(OFFER)
    answer_file.write_text(ANSWER)

    def one_shot(call: str) -> dict[str, dict]:
        tags = ["--call-id", call, "--from-tag", "ft", "--to-tag", "tt", "-t", target]
        shots = {
            "offer": ["offer", str(offer_file), "--call-id", call, "--from-tag", "ft", "-t", target],
            "answer": ["answer", str(answer_file), *tags],
            "play": ["play", prompt, "--to", "uac", *tags],
            "stop-play": ["stop-play", "--to", "uac", *tags],
            "record": ["record", *tags],
            "stop-record": ["stop-record", *tags],
            "stats": ["stats", "--all", *tags],
            "query": ["query", "npkts_ina", "ttl", *tags],
            "raw": ["raw", "-t", target, "--call-id", call, "V"],
            "unforce": ["unforce", *tags],
            "lb explain": ["lb", "explain", call, "-t", target],
            "engage": ["engage", "--offer", str(offer_file), "--answer", str(answer_file), "--call-id", call + "e",
                       "--from-tag", "ft", "--to-tag", "tt", "-t", target],
            "unforce engaged": ["unforce", "--call-id", call + "e", "--from-tag", "ft", "-t", target],
        }
        out = {}
        for name, args in shots.items():
            result = cli(capsys, "--json", "--state", "none", *args)
            assert result.code == 0, (name, result.stderr)
            out[name] = result.json()
        return out

    def batched(call: str) -> list[dict]:
        tags = {"call_id": call, "from_tag": "ft", "to_tag": "tt", "target": target}
        return [
            {"op": "offer", "sdp": OFFER, "call_id": call, "from_tag": "ft", "target": target},
            {"op": "answer", "sdp": ANSWER, **tags},
            {"op": "play", "prompt": prompt, "to": "uac", **tags},
            {"op": "stop-play", "to": "uac", **tags},
            {"op": "record", **tags},
            {"op": "stop-record", **tags},
            {"op": "stats", "all": True, **tags},
            {"op": "query", "counters": ["npkts_ina", "ttl"], **tags},
            {"op": "raw", "command": "V", "call_id": call, "target": target},
            {"op": "unforce", **tags},
            {"op": "lb explain", "call_id": call, "target": [target]},
            {"op": "engage", "offer": OFFER, "answer": ANSWER, "call_id": call + "e", "from_tag": "ft", "to_tag": "tt",
             "target": target},
            {"op": "unforce", "call_id": call + "e", "from_tag": "ft", "target": target},
        ]

    expected = one_shot("shape-1@t")
    result = run(capsys, tmp_path, ndjson(*batched("shape-2@t")), "--state", "none")
    rows, summary = records(result.stdout)
    assert result.code == 0, result.stdout
    assert summary["failed"] == 0 and summary["ok"] == len(expected)
    for (name, one), row in zip(expected.items(), rows, strict=True):
        assert row["op"] == name.split(" engaged")[0]
        assert shape(row["result"]) == shape(one), name
    assert rows[1]["result"]["letter"] == "L" and rows[3]["result"]["commands"] == ["S shape-2@t ft;1 tt;1"]
    assert active_sessions(capsys, media_relay) == 0


@pytest.mark.relay
def test_calls_keep_their_order_under_a_window_of_16_with_results_as_completed(capsys, tmp_path, media_relay):
    target = media_relay.udp
    lines = []
    for n in range(60):
        call = {"call_id": f"order-{n}@t", "from_tag": "ft", "target": target}
        lines += [{"op": "offer", "id": n * 3, "sdp": OFFER, **call},
                  {"op": "answer", "id": n * 3 + 1, "sdp": ANSWER, "to_tag": "tt", **call},
                  {"op": "unforce", "id": n * 3 + 2, "to_tag": "tt", **call}]
    result = run(capsys, tmp_path, ndjson(*lines), "--state", "none", "--window", "16", "--as-completed")
    rows, summary = records(result.stdout)
    assert result.code == 0 and summary["ok"] == 180, result.stdout[-2000:]
    # An answer before its offer would find no session (port 0: exit 3); an unforce before the
    # answer would delete a session the answer then cannot find.
    assert all(row["result"]["had_session"] for row in rows if row["op"] == "unforce")
    seen = [row["id"] for row in rows]
    assert sorted(seen) == list(range(180))
    position = {ident: index for index, ident in enumerate(seen)}
    for n in range(60):
        assert position[n * 3] < position[n * 3 + 1] < position[n * 3 + 2]
    assert active_sessions(capsys, media_relay) == 0


@pytest.mark.relay
def test_the_ledger_fills_in_the_tags_across_interleaved_operations(capsys, tmp_path, media_relay):
    """With a state file, an offer writes the ledger and a later unforce reads the tags from it,
    while other operations run between their waits: one SQLite connection, used in turn."""
    target = media_relay.udp
    lines = []
    for n in range(20):
        lines += [{"op": "offer", "sdp": OFFER, "call_id": f"ledger-{n}@t", "from_tag": "ft", "target": target},
                  {"op": "lb explain", "call_id": f"ledger-{n}@t", "target": target}]
    lines += [{"op": "unforce", "call_id": f"ledger-{n}@t", "target": target} for n in range(20)]
    result = run(capsys, tmp_path, ndjson(*lines))
    rows, summary = records(result.stdout)
    assert result.code == 0, result.stdout[-2000:] + result.stderr
    unforced = [row["result"] for row in rows if row["op"] == "unforce"]
    assert len(unforced) == 20 and all(r["had_session"] and r["command"].endswith(" ft") for r in unforced)
    assert cli(capsys, "sessions", "--json").json()["sessions"] == []
    assert active_sessions(capsys, media_relay) == 0


@pytest.mark.relay
def test_offers_over_a_set_with_a_dead_node_fail_over_and_the_node_is_disabled(capsys, tmp_path, media_relay):
    """Selection over a set probes its nodes (RelayService.each): in a batch they are asked one
    after another on the run's own thread while other operations wait for their replies; the
    offers the dead node gets fail over, as the one-shot offer does, and its health says so."""
    from tests.conftest import write
    from tests.system.test_check import dead_udp_port

    dead = f"udp:127.0.0.1:{dead_udp_port()}"
    config = write(tmp_path / "c.toml", f'rtpproxy_sock = ["{media_relay.udp} {dead}"]\n'
                                        "rtpproxy_timeout = 0.2\nrtpproxy_retr = 1\n")
    base = ["--config", str(config), "--state", str(tmp_path / "state.sqlite3")]
    for node in (media_relay.udp, dead):  # probing: the first selection asks both nodes at once
        assert cli(capsys, *base, "enable", node, "2").code == 0
    calls = [f"set-{n}@t" for n in range(24)]
    lines = [{"op": "offer", "sdp": OFFER, "call_id": call, "from_tag": "ft"} for call in calls]
    lines += [{"op": "unforce", "call_id": call, "from_tag": "ft"} for call in calls]
    path = tmp_path / "ops.ndjson"
    path.write_text(ndjson(*lines))
    result = cli(capsys, *base, "batch", str(path))
    rows, summary = records(result.stdout)
    assert result.code == 0 and summary["ok"] == 48, result.stdout[-2000:] + result.stderr
    assert {row["result"]["node"] for row in rows if row["op"] == "offer"} == {media_relay.udp}
    nodes = {n["url"]: n["state"] for s in cli(capsys, *base, "--json", "show").json()["sets"] for n in s["nodes"]}
    assert nodes == {media_relay.udp: "enabled", dead: "disabled"}
    assert active_sessions(capsys, media_relay) == 0


@pytest.mark.relay
def test_stdin_and_the_exit_code_of_the_most_severe_failure(media_relay):
    from tests.relay import free_port

    target = media_relay.udp
    text = ndjson(
        {"op": "unforce", "call_id": "sev-1@t", "from_tag": "ft", "target": target},  # ok: nothing to delete
        {"op": "stats", "call_id": "sev-1@t", "from_tag": "ft", "stream": 0, "target": target},  # 2
        {"op": "unforce", "call_id": "sev\x01@t", "from_tag": "ft", "target": target},  # 6
        {"op": "answer", "sdp": ANSWER, "call_id": "sev-2@t", "from_tag": "ft", "to_tag": "tt",
         "target": target},  # 3: no session
    )
    result = cli_process("--state", "none", "batch", "-", input=text)
    rows, summary = records(result.stdout)
    assert [row.get("error", {}).get("exit_code") for row in rows] == [None, 2, 6, 3]
    assert rows[2]["error"]["key"] == "call_id" and "line 3" in rows[2]["error"]["message"]
    assert "control character" in rows[2]["error"]["message"]
    assert result.code == 3 and summary["exit_code"] == 3
    dead = f"udp:127.0.0.1:{free_port()}"
    text += ndjson({"op": "raw", "command": "V", "target": dead})  # 4: nothing listens there
    result = cli_process("--state", "none", "--retries", "1", "batch", "-", input=text)
    rows, summary = records(result.stdout)
    assert rows[-1]["error"]["exit_code"] == 4 and result.code == 4


@pytest.mark.relay
def test_a_raw_error_reply_is_a_result_counted_as_a_failure(capsys, tmp_path, media_relay):
    text = ndjson({"op": "raw", "command": "D nosuch@t ft", "target": media_relay.udp, "id": "r"},
                  {"op": "raw", "command": "V", "target": media_relay.udp})
    result = run(capsys, tmp_path, text, "--state", "none")
    rows, summary = records(result.stdout)
    assert rows[0]["result"]["ok"] is False and rows[0]["result"]["replies"][0]["error_code"] == 50
    assert rows[1]["result"]["replies"][0]["reply"] == "20040107"
    assert summary["ops"]["raw"] == {"ok": 1, "error": 1} and result.code == 3


@pytest.mark.relay
def test_ctrl_c_lets_what_ran_finish_writes_the_summary_and_exits_130(media_relay):
    import signal
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-m", "rtppctl", "--state", "none", "batch", "-"], text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        process.stdin.write(ndjson({"op": "raw", "command": "V", "target": media_relay.udp, "id": "before"}))
        process.stdin.flush()
        first = json.loads(process.stdout.readline())  # its result is out: stdin stays open
        process.send_signal(signal.SIGINT)
        rest, errors = process.communicate(timeout=20)
    finally:
        process.kill()
    assert first["id"] == "before" and first["result"]["ok"] is True
    summary = json.loads(rest)
    assert summary["type"] == "summary" and summary["interrupted"] is True and summary["ok"] == 1
    assert process.returncode == 130 and errors.rstrip().endswith("rtppctl: interrupted")


@pytest.mark.relay
def test_fail_fast_on_the_command_line_reads_nothing_after_the_bad_line(capsys, tmp_path, media_relay):
    unforce = {"op": "unforce", "call_id": "ff@t", "from_tag": "ft", "target": media_relay.udp}
    text = ndjson(unforce) + '{"op": "unforce", "call_id": 7}\n' + ndjson(unforce, unforce)
    result = run(capsys, tmp_path, text, "--state", "none", "--fail-fast")
    rows, summary = records(result.stdout)
    assert [("result" in row, row.get("error", {}).get("key")) for row in rows] == [(True, None), (False, "call_id")]
    assert rows[1]["error"]["message"] == "line 2: call_id must be a string, not a number"
    assert summary["total"] == 2 and result.code == 2
    without = run(capsys, tmp_path, text, "--state", "none")
    assert records(without.stdout)[1]["total"] == 4 and without.code == 2
