"""The pipelined engine (net/pipeline.py) against real relays over every transport; fake relays
only for the faults a real one cannot make (lost datagrams, late replies, held replies, resets)."""

from __future__ import annotations

import re
import socket
import struct
import threading
import time
from collections import Counter

import pytest

from rtppctl.net.pipeline import Outcome, Pipeline, Request
from rtppctl.proto import command as cmd
from rtppctl.proto import limits
from rtppctl.proto.errors import InputError, MalformedReply, ReplyTimeout, TransportError
from rtppctl.proto.url import parse_node
from tests.cli.helpers import cli
from tests.net.conftest import read_line
from tests.relay import free_port


def info(spec: str) -> dict[str, int | float]:
    with Pipeline(window=1) as pipeline:
        (outcome,) = pipeline.run([Request(parse_node(spec), "I")])
    assert outcome.ok, outcome
    return cmd.parse_info(outcome.reply)


def run_all(pipeline: Pipeline, requests: list[Request]) -> list[Outcome]:
    """Every outcome, in the requests' order (each request's tag is its index)."""
    outcomes = list(pipeline.run(requests))
    assert sorted(o.request.tag for o in outcomes) == list(range(len(requests)))
    return sorted(outcomes, key=lambda o: o.request.tag)


def cookie_of(data: bytes) -> bytes:
    return data.split(b" ", 1)[0]


# -- many in flight, every transport -----------------------------------------------------------------


@pytest.mark.parametrize("transport", ["udp", "udp6", "tcp", "unix", "cunix"])
def test_many_requests_in_flight_are_all_answered_with_their_round_trips(relay, transport) -> None:
    node = parse_node(relay.specs[transport])
    count = 60 if transport == "unix" else 400
    commands = ["V", "VF 20050322", "VF 20081224", "G nsess_created"]
    requests = [Request(node, commands[n % 4], tag=n) for n in range(count)]
    started = time.monotonic()
    with Pipeline(window=16, timeout=2.0) as pipeline:
        outcomes = run_all(pipeline, requests)
        stats = pipeline.stats
    took = time.monotonic() - started
    replies = [o.reply for o in outcomes]
    assert replies[0::4] == ["20040107"] * (count // 4)
    assert replies[1::4] == ["1"] * (count // 4) and replies[2::4] == ["1"] * (count // 4)
    assert all(re.fullmatch(r"\d+", reply) for reply in replies[3::4]), replies[3::4][:5]
    assert all(o.ok and o.error is None and o.retransmits == 0 for o in outcomes)
    for outcome in outcomes:
        assert started <= outcome.scheduled <= outcome.sent_at <= outcome.done_at <= started + took
        assert 0 < outcome.rtt_ms <= outcome.latency_ms <= took * 1000
    assert (stats.sent, stats.replied, stats.failed, stats.retransmits, stats.timeouts) == (count, count, 0, 0, 0)


def test_an_error_reply_is_an_outcome_with_its_code_not_a_failure(relay) -> None:
    node = parse_node(relay.udp)
    with Pipeline() as pipeline:
        missing, fine = run_all(pipeline, [Request(node, "D nosuch@pipe ft", tag=0), Request(node, "V", tag=1)])
    assert (missing.reply, missing.error, missing.error_code, missing.ok) == ("E50", None, 50, False)
    assert (fine.reply, fine.error_code, fine.ok) == ("20040107", None, True)


def test_run_pulls_requests_lazily(relay) -> None:
    node = parse_node(relay.udp)
    pulled = 0

    def requests():
        nonlocal pulled
        for n in range(200):
            pulled += 1
            yield Request(node, "V", tag=n)

    with Pipeline(window=8) as pipeline:
        outcomes = pipeline.run(requests())
        next(outcomes)
        # A window in flight, one queued behind it, and one more in case the next request is for
        # a node not seen yet: not the whole input.
        assert pulled <= 4 * 8
        assert len(list(outcomes)) == 199
    assert pulled == 200


def test_the_wire_trace_shows_every_datagram_sent_and_used(relay) -> None:
    lines: list[tuple[str, str, bytes]] = []
    node = parse_node(relay.udp)
    with Pipeline(trace=lambda *line: lines.append(line)) as pipeline:
        run_all(pipeline, [Request(node, "V", tag=n) for n in range(5)])
    sent = [data for direction, _url, data in lines if direction == ">"]
    used = [data for direction, _url, data in lines if direction == "<"]
    assert len(sent) == len(used) == 5 and {url for _d, url, _x in lines} == {relay.udp}
    assert all(data.endswith(b" V") for data in sent) and all(data.endswith(b" 20040107\n") for data in used)
    assert {cookie_of(data) for data in sent} == {cookie_of(data) for data in used}


# -- ordering by key -------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_requests_on_one_call_id_go_out_one_after_another_in_order(quiet_relay, transport) -> None:
    node = parse_node(quiet_relay.specs[transport])
    before = info(quiet_relay.specs["tcp"])
    calls = [f"order-{transport}-{n}@pipe" for n in range(12)]
    requests: list[Request] = []
    # U, L and D of every call submitted at once, with keyless V in between, all in one window.
    for n, call in enumerate(calls):
        for command in (f"U {call} 127.0.0.1 {30000 + 2 * n} ft;1", f"L {call} 127.0.0.1 {31000 + 2 * n} ft;1 tt;1",
                        f"D {call} ft tt"):
            requests.append(Request(node, command, key=call, tag=len(requests)))
            requests.append(Request(node, "V", tag=len(requests)))
    with Pipeline(window=16) as pipeline:
        outcomes = run_all(pipeline, requests)
    by_call: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        if outcome.request.key is not None:
            by_call.setdefault(outcome.request.key, []).append(outcome)
    for call, (offer, answer, delete) in by_call.items():
        assert re.fullmatch(r"[1-9]\d* 127\.0\.0\.1", offer.reply), (call, offer.reply)
        assert re.fullmatch(r"[1-9]\d* 127\.0\.0\.1", answer.reply), (call, answer.reply)  # 0: no session yet
        assert delete.reply == "0", (call, delete.reply)
        # Never in flight together: each went out after the one before it was answered.
        assert offer.done_at <= answer.sent_at and answer.done_at <= delete.sent_at
    after = info(quiet_relay.specs["tcp"])
    assert after["sessions_created"] - before["sessions_created"] == len(calls)
    assert after["active_sessions"] == before["active_sessions"]


def test_a_key_waits_only_for_itself(relay) -> None:
    # Other keys' requests and keyless ones pass a key whose holder is slow to answer: here the
    # holder's node is silent, so everything else finishes long before it fails.
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        slow = parse_node(f"udp:127.0.0.1:{silent.getsockname()[1]}")
        node = parse_node(relay.udp)
        requests = [Request(slow, "V", key="k1", tag=0), Request(node, "V", key="k1", tag=1),
                    Request(node, "V", key="k2", tag=2), Request(node, "V", tag=3)]
        with Pipeline(timeout=0.3, retries=1) as pipeline:
            outcomes = list(pipeline.run(requests))
    finally:
        silent.close()
    order = [o.request.tag for o in outcomes]
    assert order.index(0) < order.index(1)  # k1's second request waited for the first
    assert order.index(2) < order.index(0) and order.index(3) < order.index(0)
    assert isinstance(outcomes[order.index(0)].error, TransportError)
    assert outcomes[order.index(1)].ok


# -- the window ------------------------------------------------------------------------------------


class HoldingRelay:
    """A fake UDP relay that answers nothing until `hold` requests wait (or 20 ms pass without one),
    then answers them all: the most it ever held is the most the client had in flight."""

    def __init__(self, fake_udp, hold: int) -> None:
        self.held: list[tuple[bytes, tuple]] = []
        self.most = 0
        self.hold = hold
        self.fake = fake_udp(self._request, max_datagrams=10_000, on_idle=self._release)

    def _request(self, sock: socket.socket, data: bytes, address: tuple) -> None:
        self.held.append((data, address))
        self.most = max(self.most, len(self.held))
        if len(self.held) >= self.hold:
            self._release(sock)

    def _release(self, sock: socket.socket) -> None:
        held, self.held = self.held, []
        for data, address in held:
            sock.sendto(cookie_of(data) + b" 20040107\n", address)


def test_no_node_ever_has_more_than_the_window_in_flight(fake_udp) -> None:
    # Each holds one more than the window, so a sixth request in flight would be seen.
    first, second = HoldingRelay(fake_udp, hold=6), HoldingRelay(fake_udp, hold=6)
    nodes = [parse_node(first.fake.spec), parse_node(second.fake.spec)]
    requests = [Request(nodes[n % 2], "V", tag=n) for n in range(60)]
    with Pipeline(window=5, timeout=2.0) as pipeline:
        outcomes = run_all(pipeline, requests)
    assert all(o.ok for o in outcomes)
    # Each node had its own window full (5), never more, while the other's was full too.
    assert (first.most, second.most) == (5, 5)


def test_a_window_of_one_sends_the_next_request_only_after_the_reply(fake_udp) -> None:
    holder = HoldingRelay(fake_udp, hold=1)
    node = parse_node(holder.fake.spec)
    with Pipeline(window=1) as pipeline:
        outcomes = run_all(pipeline, [Request(node, "V", tag=n) for n in range(10)])
    assert holder.most == 1
    assert all(a.done_at <= b.sent_at for a, b in zip(outcomes, outcomes[1:]))


def test_the_one_shot_socket_gets_at_most_a_window_of_connections_at_once(tmp_path) -> None:
    # A fake unix relay that answers nobody while fewer than 4 connections wait (or 20 ms pass).
    path = str(tmp_path / "oneshot.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    listener.settimeout(0.02)
    most = 0
    commands: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        nonlocal most
        waiting: list[socket.socket] = []
        deadline = time.monotonic() + 20
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                conn, _ = listener.accept()
                conn.settimeout(2)
                commands.append(conn.recv(100))
                waiting.append(conn)
                most = max(most, len(waiting))
                if len(waiting) < 4:
                    continue
            except TimeoutError:
                pass
            for conn in waiting:
                conn.sendall(b"20040107\n")
                conn.close()
            waiting = []

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        with Pipeline(window=3, timeout=2.0) as pipeline:
            outcomes = run_all(pipeline, [Request(parse_node(f"unix:{path}"), "V", tag=n) for n in range(12)])
    finally:
        stop.set()
        server.join(5)
        listener.close()
    assert [o.reply for o in outcomes] == ["20040107"] * 12
    assert most == 3 and commands == [b"V"] * 12  # bare commands, one per connection


@pytest.mark.parametrize("window", [0, limits.MAX_WINDOW + 1, 2.5, True])
def test_a_window_out_of_bounds_is_refused(window) -> None:
    with pytest.raises(InputError, match="window"):
        Pipeline(window=window)


# -- lost datagrams and late replies -----------------------------------------------------------------


def test_a_lost_datagram_is_resent_with_the_same_cookie(fake_udp) -> None:
    seen: Counter[bytes] = Counter()

    def drop_first_of_each_cookie(sock: socket.socket, data: bytes, address: tuple) -> None:
        seen[cookie_of(data)] += 1
        if seen[cookie_of(data)] > 1:
            sock.sendto(cookie_of(data) + b" 20040107\n", address)

    fake = fake_udp(drop_first_of_each_cookie)
    node = parse_node(fake.spec)
    with Pipeline(window=4, timeout=0.2, retries=3) as pipeline:
        outcomes = run_all(pipeline, [Request(node, "V", tag=n) for n in range(6)])
        stats = pipeline.stats
    assert [o.reply for o in outcomes] == ["20040107"] * 6
    assert [o.retransmits for o in outcomes] == [1] * 6
    assert all(o.rtt_ms >= 200 for o in outcomes)  # measured from the first send
    assert (stats.sent, stats.retransmits, stats.timeouts) == (6, 6, 0)
    # Six cookies, each seen exactly twice: the resend reused it (the relay's reply cache answers it).
    assert len(seen) == 6 and set(seen.values()) == {2}
    assert all(packet.endswith(b" V") and packet.count(b" ") == 1 for packet in fake.received)


def test_a_lossy_link_to_a_real_relay_still_makes_one_session_per_offer(quiet_relay, lossy_forwarder) -> None:
    # Every datagram is lost once each way: only the reply cache answering the same cookie keeps
    # the resent U from making a second session.
    engine = parse_node(quiet_relay.specs["udp"])
    forwarder = lossy_forwarder((engine.host, engine.port))
    before = info(quiet_relay.specs["tcp"])["sessions_created"]
    node = parse_node(forwarder.spec)
    requests = [Request(node, f"U lossy-pipe{n}@t 127.0.0.1 {24000 + 2 * n} ft;1", tag=n) for n in range(30)]
    with Pipeline(window=8, timeout=0.05, retries=20) as pipeline:
        outcomes = run_all(pipeline, requests)
        retransmits = pipeline.stats.retransmits
    assert all(o.ok and re.fullmatch(r"[1-9]\d* 127\.0\.0\.1", o.reply) for o in outcomes), outcomes[:2]
    assert len({o.reply for o in outcomes}) == 30
    # Half of the client's datagrams never reach the relay, and each command needs one that does.
    assert retransmits >= 30 and sum(o.retransmits for o in outcomes) == retransmits
    assert info(quiet_relay.specs["tcp"])["sessions_created"] - before == 30


def test_a_reply_after_the_timeout_is_dropped_and_counted(fake_udp) -> None:
    held: list[bytes] = []

    def answer_late(sock: socket.socket, data: bytes, address: tuple) -> None:
        # The first request is answered only when the next one comes, after it has timed out.
        if not held:
            held.append(data)
            return
        sock.sendto(cookie_of(held[0]) + b" 20040107\n", address)
        sock.sendto(cookie_of(data) + b" 1\n", address)

    fake = fake_udp(answer_late)
    node = parse_node(fake.spec)
    with Pipeline(timeout=0.2, retries=1) as pipeline:
        (first,) = pipeline.run([Request(node, "V")])
        (second,) = pipeline.run([Request(node, "VF 20050322")])
        stats = pipeline.stats
    assert first.reply is None and isinstance(first.error, TransportError)
    assert str(first.error) == f"no reply from {fake.spec} after 1 try of 0.2 s"
    assert second.ok and second.reply == "1"
    assert (stats.timeouts, stats.replies_dropped, stats.replied, stats.failed) == (1, 1, 1, 1)


def test_a_reply_that_is_not_text_is_a_malformed_reply(fake_udp) -> None:
    fake = fake_udp(lambda sock, data, address: sock.sendto(cookie_of(data) + b" 2004\x000107\n", address))
    with Pipeline() as pipeline:
        (outcome,) = pipeline.run([Request(parse_node(fake.spec), "V")])
    assert isinstance(outcome.error, MalformedReply) and "NUL" in str(outcome.error)


# -- dead nodes, concurrency -----------------------------------------------------------------------


def test_dead_nodes_fail_their_requests_at_once_while_others_answer(relay, silent_udp) -> None:
    live = parse_node(relay.udp)
    refused_udp = f"udp:127.0.0.1:{free_port()}"
    refused_tcp = f"tcp:127.0.0.1:{free_port(socket.SOCK_STREAM)}"
    silent_a, silent_b = silent_udp(), silent_udp()
    dead = [parse_node(spec) for spec in (refused_udp, refused_tcp, silent_a, silent_b)]
    requests = []
    for n in range(40):
        requests.append(Request(live, "V", tag=len(requests)))
        if n < 6:
            for node in dead:
                requests.append(Request(node, "V", tag=len(requests)))
    started = time.monotonic()
    with Pipeline(window=8, timeout=0.5, retries=2) as pipeline:
        outcomes = run_all(pipeline, requests)
    took = time.monotonic() - started
    by_node: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        by_node.setdefault(outcome.request.node.url, []).append(outcome)
    assert [o.reply for o in by_node[relay.udp]] == ["20040107"] * 40
    # The live node was never held up by the dead ones: all answered well within one timeout.
    assert max(o.done_at for o in by_node[relay.udp]) - started < 0.5
    assert {str(o.error) for o in by_node[refused_udp]} == {
        f"{refused_udp} refused the request: nothing listens on that udp port"}
    assert {str(o.error) for o in by_node[refused_tcp]} == {f"connection refused by {refused_tcp}"}
    for spec in (silent_a, silent_b):
        assert {str(o.error) for o in by_node[spec]} == {f"no reply from {spec} after 2 tries of 0.5 s"}
        assert all(o.retransmits == 1 for o in by_node[spec])
        assert all(isinstance(o.error, ReplyTimeout) for o in by_node[spec])  # silence, told apart
    for spec in (refused_udp, refused_tcp):
        assert not any(isinstance(o.error, ReplyTimeout) for o in by_node[spec])  # ... from a refusal
    assert all(len(by_node[spec]) == 6 for spec in (refused_udp, refused_tcp, silent_a, silent_b))
    # The silent nodes waited out their tries side by side: about one node's 1 s, not the sum.
    assert 1.0 <= took < 1.8, took


def test_a_node_whose_host_does_not_resolve_fails_only_its_requests(relay) -> None:
    bad = parse_node("udp:no-such-host.invalid:22222")
    with Pipeline(timeout=0.5) as pipeline:
        outcomes = run_all(pipeline, [Request(bad, "V", tag=0), Request(parse_node(relay.udp), "V", tag=1)])
    assert isinstance(outcomes[0].error, TransportError) and "cannot resolve" in str(outcomes[0].error)
    assert outcomes[1].ok


# -- streams -----------------------------------------------------------------------------------------


def _close(conn: socket.socket, *, reset: bool) -> None:
    if reset:
        # SO_LINGER 0: close() sends RST instead of FIN.
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


@pytest.mark.parametrize(("reset", "words"), [(True, "reset the connection"),
                                               (False, "closed the connection without answering")])
def test_a_stream_lost_mid_flight_fails_what_was_in_flight_then_reconnects(fake_tcp, reset, words) -> None:
    lines: list[bytes] = []

    def serve(conn: socket.socket, index: int) -> None:
        if index == 1:
            for _ in range(3):
                lines.append(read_line(conn))
            conn.sendall(b"20040107\n")  # the first of three answered, then the connection dies
            time.sleep(0.2)
            _close(conn, reset=reset)
        else:
            lines.append(read_line(conn))
            conn.sendall(b"1\n")

    fake = fake_tcp(serve)
    node = parse_node(fake.spec)
    with Pipeline(window=4, timeout=2.0) as pipeline:
        first = run_all(pipeline, [Request(node, "V", tag=n) for n in range(3)])
        (later,) = pipeline.run([Request(node, "VF 20050322")])
    assert first[0].ok and first[0].reply == "20040107"
    for outcome in first[1:]:
        assert isinstance(outcome.error, TransportError) and words in str(outcome.error), outcome.error
        assert str(outcome.error).startswith(fake.spec)
    assert later.ok and later.reply == "1" and fake.accepted == 2
    assert lines == [b"V\n", b"V\n", b"V\n", b"VF 20050322\n"]  # each sent once: no resend on a stream


def test_a_stream_that_stops_answering_times_out_and_drops_the_connection(fake_tcp) -> None:
    def serve(conn: socket.socket, index: int) -> None:
        read_line(conn)
        if index == 2:
            conn.sendall(b"20040107\n")
        else:
            conn.recv(1)  # no answer: wait until the client gives up and closes (b"" then)

    fake = fake_tcp(serve)
    node = parse_node(fake.spec)
    with Pipeline(timeout=0.3) as pipeline:
        (stuck,) = pipeline.run([Request(node, "V")])
        (fresh,) = pipeline.run([Request(node, "V")])
        stats = pipeline.stats
    assert str(stuck.error) == f"no reply from {fake.spec} within 0.3 s" and isinstance(stuck.error, ReplyTimeout)
    assert fresh.ok and fake.accepted == 2 and stats.timeouts == 1


# -- threads: start, call, close -------------------------------------------------------------------


def test_call_from_eight_threads_with_a_driver_thread(relay) -> None:
    node = parse_node(relay.udp)
    results: dict[int, list[Outcome]] = {}

    def worker(number: int) -> None:
        results[number] = [pipeline.call(Request(node, "V" if n % 2 else "VF 20050322", key=f"w{number}"))
                           for n in range(30)]

    with Pipeline(window=16) as pipeline:
        pipeline.start()
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert pipeline.pending == 0
        sent = pipeline.stats.sent
    assert len(results) == 8 and sent == 240
    for outcomes in results.values():
        assert [o.reply for o in outcomes] == ["1", "20040107"] * 15
        assert all(o.rtt_ms > 0 for o in outcomes)


def test_serve_forever_drives_callers_in_a_thread_of_the_callers_choosing(relay) -> None:
    node = parse_node(relay.specs["tcp"])
    pipeline = Pipeline(window=4)
    driver = threading.Thread(target=pipeline.serve_forever)
    driver.start()
    try:
        while pipeline._thread is None:  # noqa: SLF001 - wait until the driver has claimed it
            time.sleep(0.001)
        with pytest.raises(RuntimeError, match="driver thread"):
            pipeline.poll()
        with pytest.raises(RuntimeError, match="driver thread"):
            list(pipeline.run([Request(node, "V")]))
        outcomes = [pipeline.call(Request(node, "VF 20050322")) for _ in range(5)]
    finally:
        pipeline.close()
        driver.join(5)
    assert not driver.is_alive()
    assert [o.reply for o in outcomes] == ["1"] * 5


def test_close_with_requests_pending_returns_at_once_and_fails_them(silent_udp) -> None:
    node = parse_node(silent_udp())
    pipeline = Pipeline(window=4, timeout=5.0, retries=5)
    pipeline.start()
    called: list[Outcome] = []
    callers = [threading.Thread(target=lambda: called.append(pipeline.call(Request(node, "V", key="k"))))
               for _ in range(3)]
    for caller in callers:
        caller.start()
    for n in range(10):
        pipeline.submit(Request(node, "V", tag=n))
    time.sleep(0.2)  # some in flight, some queued, two callers waiting for their key
    assert pipeline.pending == 13
    started = time.monotonic()
    pipeline.close()
    took = time.monotonic() - started
    for caller in callers:
        caller.join(2)
    assert took < 1.0, took
    assert len(called) == 3
    assert all(isinstance(o.error, TransportError) and str(o.error) == f"closed before {node.url} answered"
               for o in called)
    left = pipeline.poll()
    assert len(left) == 13 and all(o.reply is None and str(o.error).startswith("closed") for o in left)
    assert pipeline.poll() == []
    late = pipeline.call(Request(node, "V"))
    assert str(late.error) == f"closed before {node.url} answered"


def test_close_without_a_driver_thread_fails_what_was_sent(silent_udp) -> None:
    node = parse_node(silent_udp())
    pipeline = Pipeline(window=2, timeout=5.0)
    for n in range(5):
        pipeline.submit(Request(node, "V", tag=n))
    assert pipeline.poll(0.05) == []  # two sent, three queued
    pipeline.close()
    outcomes = pipeline.poll()
    assert sorted(o.request.tag for o in outcomes) == [0, 1, 2, 3, 4]
    assert all(isinstance(o.error, TransportError) for o in outcomes)
    assert pipeline.pending == 0


def test_call_gives_up_after_its_own_timeout(silent_udp) -> None:
    node = parse_node(silent_udp())
    with Pipeline(timeout=5.0) as pipeline:
        started = time.monotonic()
        outcome = pipeline.call(Request(node, "V"), timeout=0.2)
        took = time.monotonic() - started
    assert 0.2 <= took < 1.0
    assert isinstance(outcome.error, TransportError) and "within 0.2 s" in str(outcome.error)


# -- raw -f --window -----------------------------------------------------------------------------------


def test_raw_with_a_window_prints_what_raw_prints_in_the_same_order(capsys, relay, tmp_path) -> None:
    batch = tmp_path / "batch.txt"
    lines = ["# probes", "V", "VF 20050322", "", "VF 20081224", "VF 20170313", "G nosuchstat"] + [
        "V" if n % 3 else "VF 20071218" for n in range(60)]
    batch.write_text("\n".join(lines) + "\n")
    plain = cli(capsys, "--state", "none", "raw", "-t", relay.udp, "-f", str(batch))
    windowed = cli(capsys, "--state", "none", "raw", "-t", relay.udp, "-f", str(batch), "--window", "16")
    assert (windowed.code, windowed.stdout) == (plain.code, plain.stdout)
    assert plain.code == 3 and "G nosuchstat -> E" in plain.stdout  # one error reply: exit 3
    assert windowed.stdout.splitlines()[:3] == ["V -> 20040107", "VF 20050322 -> 1", "VF 20081224 -> 1"]
    as_json = cli(capsys, "--state", "none", "--json", "raw", "-t", relay.udp, "-f", str(batch))
    windowed_json = cli(capsys, "--state", "none", "--json", "raw", "-t", relay.udp, "-f", str(batch), "--window", "16")
    one, many = as_json.json(), windowed_json.json()
    assert list(one) == list(many) and one["node"] == many["node"] and one["ok"] is many["ok"] is False
    assert [list(r) for r in one["replies"]] == [list(r) for r in many["replies"]]
    strip = [{k: v for k, v in r.items() if k != "rtt_ms"} for r in one["replies"]]
    assert strip == [{k: v for k, v in r.items() if k != "rtt_ms"} for r in many["replies"]]
    assert all(r["rtt_ms"] > 0 for r in many["replies"])


def test_raw_with_a_window_over_a_stream_and_its_verbose_note(capsys, relay, tmp_path) -> None:
    batch = tmp_path / "batch.txt"
    batch.write_text("V\nI\n" * 20)
    result = cli(capsys, "--state", "none", "-v", "--json", "raw", "-t", relay.specs["tcp"], "-f", str(batch),
                 "--window", "8")
    assert result.code == 0, result.stderr
    replies = result.json()["replies"]
    assert [r["command"] for r in replies] == ["V", "I"] * 20
    assert all(r["reply"].startswith("sessions created: ") for r in replies[1::2])
    assert "40 commands, window 8: 0 retransmitted" in result.stderr


def test_raw_with_a_window_fails_on_a_dead_relay_as_raw_does(capsys, tmp_path) -> None:
    batch = tmp_path / "batch.txt"
    batch.write_text("V\n" * 30)
    dead = f"udp:127.0.0.1:{free_port()}"
    result = cli(capsys, "--state", "none", "raw", "-t", dead, "-f", str(batch), "--window", "16")
    assert result.code == 4 and result.stdout == ""
    assert "nothing listens on that udp port" in result.stderr


def test_raw_help_says_a_window_lets_commands_cross(capsys) -> None:
    result = cli(capsys, "raw", "--help")
    assert result.code == 0
    assert "--window" in result.stdout and "cross" in result.stdout
    assert cli(capsys, "raw", "-t", "udp:127.0.0.1:9", "V", "--window", str(limits.MAX_WINDOW + 1)).code == 2


def test_raw_with_a_window_opens_no_channel_beside_its_engine(capsys, relays, tmp_path) -> None:
    # The engine has its own connection: the run's channel (a TCP connect here) is never opened.
    relay = relays.start(transports=("tcp",))
    batch = tmp_path / "batch.txt"
    batch.write_text("V\nV\nV\n")
    result = cli(capsys, "--state", "none", "-v", "raw", "-t", relay.specs["tcp"], "-f", str(batch), "--window", "4")
    assert result.code == 0 and result.stdout.count("20040107") == 3, result.stderr
    assert "channel:" not in result.stderr
    one_at_a_time = cli(capsys, "--state", "none", "-v", "raw", "-t", relay.specs["tcp"], "-f", str(batch))
    assert f"channel: {relay.specs['tcp']}" in one_at_a_time.stderr  # the note the test looks for exists
