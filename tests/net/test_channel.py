"""Channels against the real engine, on every control transport it offers."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time

import pytest

import rtppctl.net.channel as channel_module
from rtppctl.net.channel import (
    DatagramChannel,
    OneShotChannel,
    StreamChannel,
    open_channel,
)
from rtppctl.proto.errors import InputError, TransportError
from rtppctl.proto.url import parse_node
from tests.relay import ALL_TRANSPORTS

pytestmark = pytest.mark.relay

INFO_RE = re.compile(
    rb"sessions created: \d+\nactive sessions: \d+\nactive streams: \d+\n"
    rb"packets received: \d+\npackets transmitted: \d+\n"
)
LOAD_RE = re.compile(INFO_RE.pattern + rb"average load: \d+\.\d+\n")
PORT_ADDR_RE = re.compile(rb"[1-9]\d* 127\.0\.0\.1\n")


@pytest.fixture(params=ALL_TRANSPORTS)
def channel(request, relay):
    with open_channel(parse_node(relay.specs[request.param]), timeout=2.0) as chan:
        yield chan


def test_open_channel_picks_the_class_by_scheme(relay) -> None:
    expected = {
        "udp": DatagramChannel,
        "udp6": DatagramChannel,
        "tcp": StreamChannel,
        "cunix": StreamChannel,
        "unix": OneShotChannel,
    }
    for transport, cls in expected.items():
        with open_channel(parse_node(relay.specs[transport])) as chan:
            assert type(chan) is cls
            assert chan.url == relay.specs[transport]
            assert chan.node == parse_node(relay.specs[transport])


def test_version(channel) -> None:
    assert channel.request("V") == b"20040107\n"


def test_capability(channel) -> None:
    assert channel.request("VF 20050322") == b"1\n"


def test_info_is_read_whole(channel) -> None:
    assert INFO_RE.fullmatch(channel.request("I"))
    # The next command still gets its own reply: nothing of the report was left behind.
    assert channel.request("V") == b"20040107\n"


def test_info_with_load_is_read_whole(channel) -> None:
    assert LOAD_RE.fullmatch(channel.request("Il"))
    assert channel.request("V") == b"20040107\n"


def test_info_bad_modifier_is_one_error_line(channel) -> None:
    assert channel.request("Ix") == b"E18\n"
    assert channel.request("V") == b"20040107\n"


def test_statistics(channel) -> None:
    assert channel.request("G") == b"\n"
    assert re.fullmatch(rb"nsess_created=\d+\n", channel.request("Gv nsess_created"))
    assert channel.request("G no_such_counter") == b"E68\n"


def test_offer_answer_delete(channel) -> None:
    call_id = f"c1-{channel.node.scheme}@t"
    offered = channel.request(f"U {call_id} 127.0.0.1 30000 ft;1")
    assert PORT_ADDR_RE.fullmatch(offered), offered
    answered = channel.request(f"L {call_id} 127.0.0.1 30010 ft;1 tt;1")
    assert PORT_ADDR_RE.fullmatch(answered), answered
    assert answered != offered
    assert channel.request(f"D {call_id} ft tt") == b"0\n"
    assert channel.request(f"D {call_id} ft tt") == b"E50\n"


def test_many_sequential_requests_stay_in_step(channel) -> None:
    for n in range(50):
        command, reply = ("V", b"20040107\n") if n % 2 else ("VF 20050322", b"1\n")
        assert channel.request(command) == reply


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_trace_sees_sent_and_received_bytes(relay, transport) -> None:
    seen: list[tuple[str, str, bytes]] = []
    spec = relay.specs[transport]
    with open_channel(parse_node(spec), trace=lambda *event: seen.append(event)) as chan:
        assert chan.request("V") == b"20040107\n"
    assert [(direction, url) for direction, url, _ in seen] == [(">", spec), ("<", spec)]
    sent, received = seen[0][2], seen[1][2]
    if transport == "udp":
        cookie = sent.split(b" ", 1)[0]
        assert sent == cookie + b" V"
        assert received == cookie + b" 20040107\n"
    else:
        assert (sent, received) == (b"V\n", b"20040107\n")


def test_udp_cookies_are_fresh_for_every_command_and_channel(relay) -> None:
    sent: list[bytes] = []

    def trace(direction: str, _url: str, data: bytes) -> None:
        if direction == ">":
            sent.append(data.split(b" ", 1)[0])

    for _ in range(2):
        with open_channel(parse_node(relay.specs["udp"]), trace=trace) as chan:
            for _ in range(3):
                chan.request("V")
    assert len(sent) == 6 and len(set(sent)) == 6
    # One process-wide random prefix, then a counter.
    assert all(re.fullmatch(rb"[A-Za-z0-9_-]{12}_\d+", cookie) for cookie in sent)
    assert len({cookie.rsplit(b"_", 1)[0] for cookie in sent}) == 1


_PRINT_PREFIX = "from rtppctl.net import channel; print(channel._process_cookies.prefix)"


def test_cookie_prefixes_of_separate_processes_differ() -> None:
    # The engine's reply cache is keyed by cookie alone: two processes (on two hosts, say) must
    # never share a prefix. Both children here are likely to get pids close to each other.
    prefixes = {
        subprocess.run([sys.executable, "-c", _PRINT_PREFIX], capture_output=True, text=True, check=True).stdout.strip()
        for _ in range(3)
    }
    assert len(prefixes) == 3 and channel_module._process_cookies.prefix not in prefixes


def test_cookie_prefix_carries_at_least_64_random_bits() -> None:
    assert channel_module._COOKIE_PREFIX_BYTES * 8 >= 64
    prefixes = [channel_module._new_cookie_sequence().prefix for _ in range(5000)]
    # URL-safe base64: 6 bits per character, no separators, and short (sent in every datagram).
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", prefix) for prefix in prefixes)
    assert all(64 <= len(prefix) * 6 and len(prefix) <= 16 for prefix in prefixes)
    assert len(set(prefixes)) == len(prefixes)
    # Every character position varies: no fixed part (such as a pid) takes up the width.
    for position in range(len(prefixes[0])):
        assert len({prefix[position] for prefix in prefixes}) > 32


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_a_new_cookie_prefix() -> None:
    parent = channel_module._process_cookies.prefix
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.write(write_end, channel_module._process_cookies.next().encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        child_cookie = pipe.read().decode()
    os.waitpid(pid, 0)
    child_prefix, counter = child_cookie.rsplit("_", 1)
    assert child_prefix != parent and re.fullmatch(r"[A-Za-z0-9_-]{12}", child_prefix)
    assert counter == "1"  # and a counter of its own
    assert channel_module._process_cookies.prefix == parent


def test_udp_late_replies_are_dropped_and_never_taken_for_the_next_reply(relay) -> None:
    dropped: list[bytes] = []

    def trace(direction: str, _url: str, data: bytes) -> None:
        if direction == "!":
            dropped.append(data)

    spec = parse_node(relay.specs["udp"])
    with open_channel(spec, trace=trace) as chan:
        assert isinstance(chan, DatagramChannel)
        # A reply nobody waits for, as a late answer to an abandoned try would be.
        chan._sock.sendto(b"stale_1 V", (spec.host, spec.port))
        time.sleep(0.05)  # the stale reply is now queued ahead of the next one
        assert chan.request("VF 20050322") == b"1\n"
    assert dropped == [b"stale_1 20040107\n"]


def test_stream_reconnects_after_the_relay_closes_an_idle_connection(relay, one_exchange_proxy) -> None:
    host, port = relay.specs["tcp"].split(":")[1:]
    proxy = one_exchange_proxy((host, int(port)))
    seen: list[tuple[str, bytes]] = []
    with open_channel(parse_node(proxy.spec), trace=lambda d, _u, b: seen.append((d, b))) as chan:
        assert chan.request("V") == b"20040107\n"
        # The proxy hung up after that answer; the next command must find out and reconnect.
        assert chan.request("VF 20050322") == b"1\n"
        assert chan.request("V") == b"20040107\n"
    assert proxy.accepted == 3
    assert [d for d, _ in seen].count(">") == 5  # each later command was sent twice: stale, fresh


@pytest.mark.parametrize("transport", ["tcp", "cunix"])
def test_stream_reconnects_after_its_socket_is_shut_down(relay, transport) -> None:
    with open_channel(parse_node(relay.specs[transport])) as chan:
        assert chan.request("V") == b"20040107\n"
        # The test plays the peer's part: the connection is dead before the next command.
        chan._sock.shutdown(socket.SHUT_RDWR)
        assert chan.request("V") == b"20040107\n"
        assert chan.request("VF 20050322") == b"1\n"


def test_close_is_idempotent_and_stream_reopens_lazily(relay) -> None:
    chan = open_channel(parse_node(relay.specs["tcp"]))
    assert chan.request("V") == b"20040107\n"
    chan.close()
    chan.close()
    assert chan.request("V") == b"20040107\n"
    chan.close()


def test_retries_below_one_still_send_once(relay) -> None:
    with open_channel(parse_node(relay.specs["udp"]), retries=0) as chan:
        assert chan.request("V") == b"20040107\n"


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf")])
def test_bad_timeout_is_refused(relay, timeout) -> None:
    with pytest.raises(InputError):
        open_channel(parse_node(relay.specs["udp"]), timeout=timeout)


def test_unresolvable_host_names_the_node() -> None:
    with pytest.raises(TransportError) as caught:
        open_channel(parse_node("udp:no-such-host.invalid:22222"))
    assert "udp:no-such-host.invalid:22222" in str(caught.value)
    assert caught.value.hint


@pytest.mark.parametrize("transport", ["udp", "udp6", "tcp", "unix", "cunix"])
def test_request_many_answers_in_command_order(relay, transport) -> None:
    commands = ["V", "VF 20170313", "I", "VF 20050322"] * 10  # more than one udp window
    with open_channel(parse_node(relay.specs[transport])) as chan:
        replies = chan.request_many(commands)
    assert len(replies) == len(commands)
    for command, reply in zip(commands, replies):
        if command == "I":
            assert reply.startswith(b"sessions created: ") and reply.endswith(b"\n")
        else:
            assert reply == {"V": b"20040107\n", "VF 20170313": b"0\n", "VF 20050322": b"1\n"}[command]
