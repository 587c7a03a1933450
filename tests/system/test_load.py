"""`load`: offer/answer/delete cycles against real relays, and the pure parts that decide them.

The first half needs no relay: the command template against the planner, call for call; the
scheduler (which call, when, to which node, failover, clean-up) fed with outcomes by hand. The
second half runs real engines (tests/relay.py): shares over a weighted set against the weights and
against `lb explain`, a relay killed mid-run, held sessions counted by the relay, Ctrl-C in a pty,
two worker processes, E72 from a relay with a tiny port range, and --find-max against a relay
slowed on purpose (a UDP forwarder on loopback that serves its control commands at a fixed pace).
Sessions left behind are counted by the relays themselves (`I`: active sessions).
"""

from __future__ import annotations

import json
import math
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import pexpect
import pytest

from rtppctl.ops import load as L
from rtppctl.proto import command as cmd
from rtppctl.proto import offer as planner
from rtppctl.proto.errors import InputError, ReplyTimeout, TransportError
from rtppctl.proto.flags import parse_flags
from rtppctl.proto.sdp import parse_sdp
from rtppctl.proto.url import parse_node
from tests.cli.helpers import cli, cli_process
from tests.conftest import write
from tests.relay import free_port, free_port_range

EVERY_CAPABILITY = frozenset({"REPACK", "CODECS", "AUTOBRIDGE", "NOTIFY", "STATS", "NOTIFY_WILD", "STATS_EXTRA",
                              "TTL_CHANGE", "RECORD", "SUBCOMMAND"})


# -- the commands of a call: the template is the planner ---------------------------------------


def planned(flags: str, capabilities: frozenset[str], family: str, call_id: str, from_tag: str, to_tag: str,
            notify_socket: str | None = None) -> tuple[str, str, str]:
    """What offer, answer and unforce build for this call, from the planner and encoders directly."""
    parsed = parse_flags(flags)
    offer = planner.plan(parse_sdp(L.party_sdp(family, 0)), parsed, planner.CallLeg(call_id, from_tag),
                         offer=True, capabilities=capabilities, notify_socket=notify_socket)
    answer = planner.plan(parse_sdp(L.party_sdp(family, 1)), parsed,
                          planner.CallLeg(call_id, from_tag, to_tag, in_reply=True), offer=False,
                          capabilities=capabilities, notify_socket=notify_socket)
    return offer.commands[0].command, answer.commands[0].command, cmd.delete(call_id, from_tag, to_tag)


@pytest.mark.parametrize("flags", ["", "s", "swz20", "ai", "l", "rco", "aet30T20", "n", "d101", "nd"])
@pytest.mark.parametrize("capabilities", [frozenset(), frozenset({"CODECS"}), EVERY_CAPABILITY])
@pytest.mark.parametrize("family", ["IP4", "IP6"])
def test_the_template_builds_what_the_planner_builds_call_for_call(flags, capabilities, family):
    notify = "tcp:127.0.0.1:9999" if "n" in flags or "d" in flags else None
    template = L.CallTemplate(parse_flags(flags), capabilities, family, notify_socket=notify)
    # n and d put Call-ID-derived tags into the commands: no template, each call planned.
    assert template.per_call == ("n" in flags or "d" in flags)
    names = L.CallNames(2**62 + 12345, 10**6)
    for number in (0, 1, 9, 77, 4096, 999_999):
        call_id, from_tag, to_tag = names(number)
        assert template.commands(call_id, from_tag, to_tag, checked=True) == planned(
            flags, capabilities, family, call_id, from_tag, to_tag, notify)
    # Any call's values, not only load's own, go through the validators and the same substitution.
    odd = ("a%b%%c@h.example", "f%s", "t%(c)s")
    assert template.commands(*odd) == planned(flags, capabilities, family, *odd, notify)
    with pytest.raises(InputError):
        template.commands("has space", "f", "t")
    with pytest.raises(InputError):
        template.commands("c@h", "f;2", "t")


def test_call_ids_and_tags_are_reproducible_distinct_and_checked():
    first = [L.call_identity(7, n) for n in range(2000)]
    assert first == [L.call_identity(7, n) for n in range(2000)]
    assert len({c for c, _, _ in first}) == 2000 and first[5] == ("load-7-5-" + first[5][0][9:], "lf5", "lt5")
    assert L.call_identity(8, 5)[0] != first[5][0]
    names = L.CallNames(7, 1999)
    assert [names(n) for n in range(2000)] == first
    with pytest.raises(InputError):
        names(2000)
    # The module's 8-bit hash spreads them: every value is hit by 20,000 consecutive calls.
    hashes = {sum(L.call_identity(7, n)[0].encode()) & 0xFF for n in range(20_000)}
    assert len(hashes) == 256


# -- the scheduler, fed by hand ---------------------------------------------------------------


@dataclass(frozen=True)
class FakeRequest:
    node: Any
    command: str
    key: str | None = None
    tag: Any = None
    scheduled: float | None = None


@dataclass(frozen=True)
class FakeOutcome:
    request: FakeRequest
    reply: str | None
    error: TransportError | None
    scheduled: float
    done_at: float
    retransmits: int = 0


class Harness:
    """A Scheduler over nodes A, B (weights 1, 1) whose requests land in `sent`."""

    def __init__(self, *, rate=None, hold=0.0, failover=False, calls=4, end=None, weights=(1, 1), cap=8):
        self.specs = [parse_node(f"udp:127.0.0.1:{port}={weight}") for port, weight in zip((1001, 1002, 1003), weights)]
        nodes = [L.LoadNode(i, spec, 0, spec.weight, True, frozenset({"CODECS"})) for i, spec in enumerate(self.specs)]
        template = L.CallTemplate(parse_flags(""), frozenset({"CODECS"}))
        self.sent: list[FakeRequest] = []
        #: Every request ever submitted, in order.
        self.log: list[FakeRequest] = []
        self.scheduler = L.Scheduler(nodes, [template] * len(nodes), seed=1, numbers=range(calls), offset=0,
                                     start=10.0, rate=rate, end=end, hold=hold, failover=failover, cap=cap,
                                     submit=self._submit, request=FakeRequest)

    def _submit(self, request: FakeRequest) -> None:
        self.sent.append(request)
        self.log.append(request)

    def take(self) -> list[FakeRequest]:
        sent, self.sent[:] = list(self.sent), []
        return sent

    def answer(self, request: FakeRequest, at: float, reply: str | None = None, error: str | None = None) -> None:
        if reply is None and error is None:
            reply = {"U": "40000 127.0.0.1", "L": "40002 127.0.0.1", "D": "0", "V": "20040107", "C": "0"}[request.tag[1]]
        scheduled = request.scheduled if request.scheduled is not None else at
        # The engine words a timeout so and raises it as ReplyTimeout; a refusal is a plain TransportError.
        failure = (ReplyTimeout if error.startswith("no reply") else TransportError)(error) if error else None
        self.scheduler.completed(FakeOutcome(request, reply, failure, scheduled, at))

    def node_of(self, number: int) -> int:
        return self.scheduler.choose(L.call_identity(1, number)[0])


def test_an_open_loop_sends_each_call_at_its_time_and_chains_answer_and_delete_from_the_replies():
    h = Harness(rate=100.0, hold=1.0, calls=3)
    s = h.scheduler
    s.due(10.0)
    (offer,) = h.take()
    assert offer.command.startswith("Uc0,101 load-1-0-") and offer.scheduled == 10.0 and offer.key == offer.tag[0].call_id
    s.due(10.0099)
    assert h.take() == []  # call 1 is due at 10.01
    h.answer(offer, 10.002)
    (answer,) = h.take()
    assert answer.command.startswith("Lc0,101 load-1-0-") and answer.scheduled == 10.002
    h.answer(answer, 10.003)
    assert h.take() == []  # held for 1 s
    s.due(10.0101)
    assert [r.tag[0].number for r in h.take()] == [1]
    assert s.next_wakeup(10.0101) == pytest.approx(10.02)
    s.due(11.003)
    deletes = [r for r in h.take() if r.tag[1] == "D"]
    assert len(deletes) == 1 and deletes[0].scheduled == pytest.approx(11.003) and deletes[0].command.startswith("D load-1-0-")
    assert s.sessions == 1 and s.peak_sessions == 1


def test_a_backlog_is_measured_from_the_schedule_not_from_when_the_window_had_room():
    h = Harness(rate=1000.0, calls=5, cap=1)
    h.scheduler.due(10.0)
    (first,) = h.take()
    h.scheduler.due(10.004)  # calls 1..4 are due, but the cap holds one call at a time
    assert h.take() == []
    h.answer(first, 10.0045)
    h.answer(h.take()[0], 10.0046)
    h.answer(h.take()[0], 10.0047)  # the D: the call is over, the next may start
    h.scheduler.due(10.005)
    (second,) = h.take()
    assert second.tag[0].number == 1 and second.scheduled == pytest.approx(10.001)


def test_a_failed_offer_goes_to_the_next_choice_with_failover_and_later_calls_follow():
    h = Harness(failover=True, calls=40)
    s = h.scheduler
    s.due(10.0)
    offers = h.take()
    victim = next(r for r in offers if r.tag[2] == 0)
    h.answer(victim, 10.01, error="no reply from udp:127.0.0.1:1001 after 5 tries of 1 s")
    (moved,) = h.take()
    assert moved.tag[1] == "U" and moved.tag[2] == 1 and moved.scheduled == victim.scheduled
    assert moved.tag[0] is victim.tag[0] and s.counts[0].moved == 1 and "did not answer" in s.counts[0].failure
    assert all(s.choose(L.call_identity(1, n)[0]) == 1 for n in range(100))  # the failed node is out
    # The failed node may hold the offer's session: once the calls are over it is asked V, then D.
    for request in offers:
        if request is not victim:
            h.answer(request, 10.02)
    h.answer(moved, 10.02)
    for _ in range(100):
        s.due(11.0)
        pending = h.take()
        assert pending, "the scheduler waits for nothing"
        for request in pending:
            h.answer(request, 11.0)
        if s.finished:
            break
    assert s.finished
    assert s.completed_calls == 40 and s.failed == 0
    # Its V was answered, so the offer's possible session got its D there: nothing is left.
    # Every later D for A waited for the end too (one V, not a timeout per session); answered, the
    # calls completed.
    cleanup = [(r.tag[1], r.tag[2], r.command) for r in h.log if r.tag[1] in ("V", "C")]
    call = victim.tag[0]
    assert cleanup[0] == ("V", 0, "V") and all(node == 0 for _, node, _ in cleanup)
    assert ("C", 0, f"D {call.call_id} {call.from_tag} {call.to_tag}") in cleanup
    assert len(cleanup) == 1 + sum(1 for r in offers if r.tag[2] == 0)
    assert s.counts[0].left == [] and s.sessions == 0


def test_without_failover_a_failed_relay_keeps_its_calls_unsent_and_its_sessions_are_named():
    h = Harness(calls=40, hold=5.0)
    s = h.scheduler
    s.due(10.0)
    for request in h.take():
        h.answer(request, 10.001)
    for request in h.take():
        h.answer(request, 10.002)  # every L: all held now
    held_on_a = sum(1 for n in range(8) if h.node_of(n) == 0)
    s.due(10.003)
    news = h.take()
    refused = "udp:127.0.0.1:1001 refused the request: nothing listens on that udp port"
    victim = next(r for r in news if r.tag[2] == 0)
    h.answer(victim, 10.004, error=refused)
    assert "went away after" in s.counts[0].failure and h.take() == []
    s.stop()  # Ctrl-C: the held sessions' deletes go out now; A's wait for the end
    pending = [r for r in news if r is not victim]
    for _ in range(20):
        s.due(10.1)
        pending += h.take()
        for request in pending:
            h.answer(request, 10.1, error=refused if request.tag[2] == 0 else None)
        pending = []
        if s.finished:
            break
    assert s.finished
    later_on_a = sum(1 for r in news if r.tag[2] == 0)
    assert s.counts[0].not_sent == 0  # stopped before another call chose A
    # Named: the sessions held on A, and those the later offers to A may have made.
    assert len(s.counts[0].left) == held_on_a + later_on_a
    assert s.failed == held_on_a + later_on_a and s.sessions == held_on_a


def test_after_a_relay_fails_its_later_calls_are_not_sent_without_failover():
    h = Harness(calls=30)
    s = h.scheduler
    s.due(10.0)
    first = h.take()
    victim = next(r for r in first if r.tag[2] == 0)
    h.answer(victim, 10.01, error="no reply from A after 5 tries of 1 s")
    for request in first:
        if request is not victim:
            h.answer(request, 10.01)  # A's other offers were answered before it failed
    for _ in range(100):
        s.due(10.02)
        for request in h.take():
            h.answer(request, 10.02)
        if s.finished:
            break
    assert s.finished
    on_a = sum(1 for n in range(30) if h.node_of(n) == 0)
    sent_to_a = sum(1 for r in first if r.tag[2] == 0)
    assert s.counts[0].chosen == on_a and s.counts[0].not_sent == on_a - sent_to_a
    assert s.call_failures == {"not sent": on_a - sent_to_a} and s.failed == on_a - sent_to_a + 1
    assert s.commands["U"].timeouts == 1
    # The calls A answered before it failed completed: their D waited for the end, when A answered V.
    assert s.completed_calls == 30 - s.failed and s.counts[0].left == []


def test_an_e72_reply_records_the_limit_and_the_sessions_held():
    h = Harness(calls=3, hold=9.0, cap=3, weights=(1, 0))
    s = h.scheduler
    s.due(10.0)
    offers = h.take()
    assert [r.tag[2] for r in offers] == [0, 0, 0]
    h.answer(offers[0], 10.001)
    h.answer(offers[1], 10.001)
    for request in h.take():
        h.answer(request, 10.002)
    h.answer(offers[2], 10.003, reply="E72")
    (delete,) = h.take()
    assert delete.tag[1] == "D" and delete.tag[0] is offers[2].tag[0]
    h.answer(delete, 10.004, reply="E50")  # nothing was made: as expected, not an error
    assert s.counts[0].refusals == {72: 2} and s.commands["U"].errors == {72: 1} and s.commands["D"].errors == {}
    assert s.failed == 1


# -- real relays -----------------------------------------------------------------------------


def active_sessions(spec: str) -> int:
    """The relay's own count (`I`), over a socket of the test's own (no rtppctl in between)."""
    host, port = spec.split(":")[1], int(spec.split(":")[2])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.connect((host, port))
        # A fresh cookie each time: the relay answers a repeated one from its reply cache.
        sock.send(f"i{time.monotonic_ns()}{os.getpid()} I".encode())
        reply = sock.recv(65535).decode()
    return int(re.search(r"active sessions: (\d+)", reply).group(1))


def summary_of(stdout: str) -> dict:
    """The summary object: the last line of load's NDJSON (progress objects come before it)."""
    summary = json.loads(stdout.splitlines()[-1])
    assert summary["type"] == "summary"
    return summary


def holds(spec: str, call_id: str, from_tag: str) -> bool:
    """Does the relay hold a session created by this call's offer? (`Q` with the creator's tag)"""
    host, port = spec.split(":")[1], int(spec.split(":")[2])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.connect((host, port))
        cookie = f"q{time.monotonic_ns()}"
        sock.send(f"{cookie} {cmd.creator_query(call_id, from_tag)}".encode())
        reply = sock.recv(65535).decode().split(" ", 1)[1].strip()
    return reply != "E50"


@pytest.fixture(scope="module")
def trio(relays):
    """Three relays of this module's own (A, B, C), weights 3/2/2 in set 0."""
    return [relays.start() for _ in range(3)]


def weighted_config(tmp_path, specs, weights=(3, 2, 2), extra=""):
    nodes = " ".join(f"{spec}={weight}" for spec, weight in zip(specs, weights))
    return write(tmp_path / "load.toml", f'rtpproxy_sock = ["{nodes}"]\n{extra}')


def test_a_weighted_set_gets_its_shares_and_each_relay_counts_what_was_sent(capsys, tmp_path, trio):
    specs = [relay.udp for relay in trio]
    config = weighted_config(tmp_path, specs)
    calls = 1400
    result = cli(capsys, "--config", str(config), "--state", "none", "--json", "load", "--calls", str(calls),
                 "--seed", "20240607", "--interval", "0.2")
    assert result.code == 0, result.stdout[-2000:] + result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert all(line["type"] == "progress" for line in lines[:-1]) and lines[-1]["type"] == "summary"
    summary = lines[-1]
    assert summary["calls_completed"] == calls and summary["calls_failed"] == 0 and summary["errors"] == {}
    assert summary["seed"] == 20240607 and summary["sessions_left"] == [] and summary["ok"] is True
    # The documented tolerance: each share within 3 standard deviations of a binomial draw around
    # its weight's share, plus 0.01 for the 8-bit hash's own bias (256 values over weights of 7).
    for node, weight in zip(summary["nodes"], (3, 2, 2)):
        expected = weight / 7
        assert node["expected_share"] == round(expected, 4)
        assert abs(node["share"] - expected) <= 3 * math.sqrt(expected * (1 - expected) / calls) + 0.01, node
        # The relay's own counters agree with rtppctl's, command for command.
        assert node["relay_during"]["ncmds_rcvd"] == node["client"]["replies"] == 3 * node["calls"], node
        assert node["relay_during"]["ncmds_errs"] == node["client"]["error_replies"] == 0
    assert sum(node["calls"] for node in summary["nodes"]) == calls
    assert [c["sent"] for c in summary["commands"]] == [calls] * 3
    assert all(c["latency_ms"]["p50"] <= c["latency_ms"]["p99"] <= c["latency_ms"]["max"] for c in summary["commands"])
    assert [active_sessions(spec) for spec in specs] == [0, 0, 0]


def test_each_call_is_on_the_relay_lb_explain_names(capsys, tmp_path, trio):
    specs = [relay.udp for relay in trio]
    config = weighted_config(tmp_path, specs)
    process = subprocess.Popen([sys.executable, "-m", "rtppctl", "--config", str(config), "--state", "none", "--json",
                                "load", "--calls", "60", "--rate", "300", "--hold", "2.5", "--seed", "99"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while sum(active_sessions(spec) for spec in specs) < 60 and time.monotonic() < deadline:
            time.sleep(0.05)
        found = {}
        for number in range(0, 60, 3):  # a sample of 20 calls, while every one is held
            call_id, from_tag, _ = L.call_identity(99, number)
            found[call_id] = [spec for spec in specs if holds(spec, call_id, from_tag)]
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err.decode()
    for call_id, where in found.items():
        explained = cli(capsys, "--config", str(config), "--state", "none", "--json", "lb", "explain", call_id)
        assert where == [explained.json()["node"]], call_id
    assert len({where[0] for where in found.values()}) == 3  # the sample reached every relay
    assert [active_sessions(spec) for spec in specs] == [0, 0, 0]


def test_a_relay_killed_mid_run_is_named_its_calls_fail_over_and_nothing_is_left(capsys, tmp_path, relays, trio):
    victim = relays.start()
    specs = [trio[0].udp, victim.udp, trio[2].udp]
    config = weighted_config(tmp_path, specs, extra="rtpproxy_timeout = 0.2\nrtpproxy_retr = 2\n")
    killer = threading.Timer(1.0, victim.process.kill)
    killer.start()
    try:
        result = cli(capsys, "--config", str(config), "--state", "none", "--json", "load", "--calls", "1200",
                     "--rate", "400", "--hold", "0.4", "--failover", "--seed", "5")
    finally:
        killer.cancel()
    assert result.code == 4, result.stderr
    summary = summary_of(result.stdout)
    a, b, c = summary["nodes"]
    assert b["failure"] is not None and b["failure"].startswith("went away after"), b
    assert any(text.startswith(f"{victim.udp} went away after") for text in summary["limits"])
    # Its held sessions could not be deleted: they are named (the relay died with them).
    assert b["sessions_left"] > 0 and summary["sessions_left_count"] == b["sessions_left"]
    assert {s["node"] for s in summary["sessions_left"]} == {victim.udp}
    assert all(s["call_id"].startswith("load-5-") for s in summary["sessions_left"])
    assert summary["calls_failed"] > 0 and summary["calls_started"] == 1200
    # After the kill its share went to the module's next choices; A and C took every later call.
    assert b["calls"] < 0.2 * 1200 and a["calls"] + c["calls"] + b["calls"] == 1200
    assert a["failure"] is None and c["failure"] is None
    for node in (a, c):
        assert node["relay_during"]["ncmds_rcvd"] == node["client"]["replies"], node
    assert [active_sessions(trio[0].udp), active_sessions(trio[2].udp)] == [0, 0]


def test_a_run_with_a_dead_relay_changes_no_shared_state(capsys, tmp_path, trio):
    dead = f"udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
    config = write(tmp_path / "c.toml", f'rtpproxy_sock = ["{trio[0].udp} {dead}"]\n'
                                        "rtpproxy_timeout = 0.2\nrtpproxy_retr = 1\n")
    base = ["--config", str(config), "--state", str(tmp_path / "state.sqlite3")]
    before = cli(capsys, *base, "--json", "show").json()
    result = cli(capsys, *base, "--json", "load", "--calls", "200", "--failover")
    assert result.code == 4
    summary = summary_of(result.stdout)
    live, gone = summary["nodes"]
    assert gone["failure"].startswith("did not answer the probe") and gone["calls"] == 0
    assert live["calls"] == live["carried"] == summary["calls_completed"] == 200  # --failover: all on the live one
    after = cli(capsys, *base, "--json", "show").json()

    def health(shown):  # all but `recheck_in`, which counts down by itself
        return [{k: v for k, v in node.items() if k != "recheck_in"} for s in shown["sets"] for node in s["nodes"]]

    assert health(after) == health(before) and all(n["state"] == "enabled" for n in health(after))
    assert cli(capsys, *base, "--json", "sessions").json()["sessions"] == []


def test_hold_keeps_every_session_open_as_the_relay_counts_them(capsys, trio):
    spec = trio[0].udp
    seen = []
    process = subprocess.Popen([sys.executable, "-m", "rtppctl", "--state", "none", "--json", "load", "-t", spec,
                                "--calls", "150", "--rate", "500", "--hold", "2"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while (not seen or seen[-1] < 150) and time.monotonic() < deadline:
            seen.append(active_sessions(spec))
            time.sleep(0.05)
        time.sleep(0.5)
        seen.append(active_sessions(spec))  # still all of them, held
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err.decode()
    assert seen[-2:] == [150, 150] and max(seen) == 150
    summary = summary_of(out.decode())
    assert summary["sessions_peak"] == 150 and summary["hold_s"] == 2.0
    assert active_sessions(spec) == 0


def test_ctrl_c_on_a_terminal_deletes_every_session_then_exits_130(trio):
    spec = trio[0].udp
    child = pexpect.spawn(sys.executable, ["-m", "rtppctl", "--state", "none", "load", "-t", spec, "--rate", "200",
                                           "--duration", "30", "--hold", "5", "--interval", "0.2"],
                          env={**os.environ, "COLUMNS": "80"}, timeout=30, dimensions=(40, 80), encoding="utf-8")
    try:
        child.expect("calls/s")  # the progress bar, with its rate
        deadline = time.monotonic() + 10
        while active_sessions(spec) < 50 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert active_sessions(spec) >= 50
        child.sendintr()
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 130, child.before
    lines = [re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", line) for line in child.before.splitlines()]
    assert lines[-1].strip() == "rtppctl: interrupted"
    assert any(line.startswith("offer (U)") for line in lines)
    assert max(len(line) for line in lines if line.startswith(("offer", "answer", "delete", "udp:"))) <= 80
    assert active_sessions(spec) == 0


def test_two_workers_over_two_relays_add_up_exactly(capsys, trio):
    specs = [trio[0].udp, trio[2].udp]
    result = cli(capsys, "--state", "none", "--json", "load", "-t", specs[0], "-t", specs[1], "--calls", "3000",
                 "--workers", "2", "--seed", "31", "--interval", "0.2")
    assert result.code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    summary = lines[-1]
    assert summary["workers"] == 2 and summary["calls_completed"] == 3000 and summary["calls_started"] == 3000
    assert any(line["type"] == "progress" for line in lines[:-1])
    single = [sum(1 for n in range(3000) if sum(L.call_identity(31, n)[0].encode()) & 0xFF & 1 == i) for i in (0, 1)]
    assert [node["calls"] for node in summary["nodes"]] == single  # equal weights: the hash's parity decides
    for node in summary["nodes"]:
        assert node["relay_during"]["ncmds_rcvd"] == node["client"]["replies"] == 3 * node["calls"]
    assert all(command["replies"] == command["sent"] == 3000 for command in summary["commands"])
    assert [active_sessions(spec) for spec in specs] == [0, 0]


def test_sigterm_to_the_parent_stops_every_worker_and_each_deletes_its_sessions(trio):
    specs = [trio[0].udp, trio[2].udp]
    process = subprocess.Popen([sys.executable, "-m", "rtppctl", "--state", "none", "--json", "load", "-t", specs[0],
                                "-t", specs[1], "--workers", "2", "--rate", "200", "--duration", "30", "--hold", "5"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while sum(active_sessions(spec) for spec in specs) < 60 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sum(active_sessions(spec) for spec in specs) >= 60
        process.send_signal(signal.SIGTERM)  # the parent only: it tells its workers
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130 and err.decode().strip() == "rtppctl: interrupted"
    summary = summary_of(out.decode())
    assert summary["interrupted"] is True and summary["sessions_left_count"] == 0 and summary["workers"] == 2
    assert summary["calls_started"] == summary["calls_completed"] + summary["calls_failed"] > 60
    assert [active_sessions(spec) for spec in specs] == [0, 0]


def test_a_relay_out_of_ports_is_named_with_the_sessions_it_held(capsys, relays):
    ports = free_port_range(8)  # two answered calls hold 4 ports each
    relay = relays.start(extra_args=["-m", str(ports.start), "-M", str(ports.stop - 1)])
    result = cli(capsys, "--state", "none", "--json", "load", "-t", relay.udp, "--calls", "4", "--rate", "100",
                 "--hold", "1")
    assert result.code == 4
    summary = summary_of(result.stdout)
    # Which command meets the end of the range depends on how the relay hands out its ports: the
    # offer of a new session (E72) or the answer of one it holds (E71).
    assert summary["calls_failed"] >= 2 and summary["calls_completed"] + summary["calls_failed"] == 4
    assert set(summary["errors"]) <= {"E71", "E72"} and sum(summary["errors"].values()) == summary["calls_failed"]
    assert summary["limits"]
    for words in summary["limits"]:
        assert words.startswith((f"{relay.udp}: the relay refused new sessions (E72: no ports or file descriptors",
                                 f"{relay.udp}: the relay ran out of ports for a session's answer (E71")), words
        assert int(re.search(r"; (\d+) sessions? held here when it first did$", words).group(1)) <= 2
    assert active_sessions(relay.udp) == 0


class PacedControl:
    """A relay slowed on purpose: a UDP forwarder on loopback in front of its control port that
    passes one command every 1/`per_second` seconds, in order, and every reply at once."""

    def __init__(self, relay_spec: str, per_second: float) -> None:
        host, port = relay_spec.split(":")[1], int(relay_spec.split(":")[2])
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.connect((host, port))
        self.spec = f"udp:127.0.0.1:{self.front.getsockname()[1]}"
        self.gap = 1.0 / per_second
        self.queue: deque[bytes] = deque()
        self.client = None
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self.front, selectors.EVENT_READ, "front")
        selector.register(self.back, selectors.EVENT_READ, "back")
        free_at = 0.0
        while self.running:
            now = time.monotonic()
            wait = 0.05 if not self.queue else max(0.0, free_at - now)
            for key, _ in selector.select(wait):
                if key.data == "front":
                    data, self.client = self.front.recvfrom(65535)
                    self.queue.append(data)
                else:
                    self.front.sendto(self.back.recv(65535), self.client)
            now = time.monotonic()
            while self.queue and now >= free_at:
                self.back.send(self.queue.popleft())
                free_at = max(free_at, now - self.gap) + self.gap
        selector.close()

    def close(self) -> None:
        self.running = False
        self.thread.join(2)
        self.front.close()
        self.back.close()


@pytest.fixture
def paced(trio):
    # 300 commands a second: 100 calls a second, each a U, an L and a D.
    forwarder = PacedControl(trio[1].udp, 300)
    yield forwarder
    forwarder.close()


def test_find_max_finds_the_knee_of_a_relay_slowed_on_purpose(paced, trio):
    # 40 calls/s keeps the relay 40% busy; 140 asks 1.4 times what it can do, so its queue grows
    # by 120 commands a second and the step's p99 ends far above 100 ms.
    result = cli_process("--state", "none", "--timeout", "2", "--json", "load", "-t", paced.spec, "--find-max",
                         "--start-rate", "40", "--step", "100", "--steps", "4", "--duration", "1", "--max-p99", "100",
                         "--max-errors", "1", timeout=60)
    assert result.code == 0, result.stderr
    summary = summary_of(result.stdout)
    steps = summary["find_max"]["steps"]
    assert [(s["rate"], s["passed"]) for s in steps] == [(40.0, True), (140.0, False)], steps
    assert steps[1]["reason"].startswith("p99 ") and steps[1]["p99_ms"] > 200 and steps[0]["p99_ms"] < 50
    assert [s["calls_started"] for s in steps] == [40, 140] and steps[1]["calls_failed"] == 0
    assert summary["find_max"]["knee_rate"] == 40.0
    assert summary["verdict"].startswith("highest rate that passed: 40 calls/s")
    assert summary["sessions_left_count"] == 0 and active_sessions(trio[1].udp) == 0


def test_find_max_exits_4_when_even_the_first_step_fails(paced, trio):
    result = cli_process("--state", "none", "--timeout", "2", "--json", "load", "-t", paced.spec, "--find-max",
                         "--start-rate", "200", "--duration", "1", "--max-p99", "100", timeout=60)
    assert result.code == 4, result.stderr
    summary = summary_of(result.stdout)
    (step,) = summary["find_max"]["steps"]
    assert step["rate"] == 200.0 and not step["passed"] and summary["find_max"]["knee_rate"] is None
    assert summary["verdict"].startswith("no step passed")
    assert active_sessions(trio[1].udp) == 0
