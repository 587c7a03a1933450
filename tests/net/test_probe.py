"""Probing many nodes at once: real relays, silent and refusing peers, answers in the nodes' order."""

from __future__ import annotations

import threading
import time

import pytest

from rtppctl.net.client import RelayClient
from rtppctl.net.probe import MAX_PARALLEL, ProbeResult, RelayCapabilities, module_probe, probe_nodes
from rtppctl.proto import command as cmd
from rtppctl.proto.errors import MalformedReply, ProxyError, TransportError
from rtppctl.proto.url import parse_node
from tests.relay import ALL_TRANSPORTS, free_port

pytestmark = pytest.mark.relay

MODULE_NAMES = [cmd.capability(date).name for date in cmd.MODULE_PROBE_ORDER]


def answering(replies: dict[bytes, bytes]):
    """A fake relay's handler: the reply to each known command, with the request's cookie."""

    def on_request(sock, data: bytes, client: tuple) -> None:
        cookie, _, command = data.partition(b" ")
        sock.sendto(cookie + b" " + replies.get(command, b"0\n"), client)

    return on_request


@pytest.mark.parametrize("transport", ALL_TRANSPORTS)
def test_module_probe_of_a_real_relay(relay, transport) -> None:
    with RelayClient.open(parse_node(relay.specs[transport]), timeout=2.0) as client:
        found = module_probe(client)
    assert isinstance(found, RelayCapabilities)
    assert found.node == relay.specs[transport] and found.version == 20040107 and found.rtt_ms > 0
    # Upstream has every capability the module asks for but TTL_CHANGE; the order is the module's.
    assert list(found.capabilities) == [name for name in MODULE_NAMES if name != "TTL_CHANGE"]


def test_every_kind_of_failure_is_a_result_in_node_order(relay, fake_udp, silent_udp, tmp_path) -> None:
    not_rtpproxy = fake_udp(answering({b"V": b"20040107\n", b"VF 20050322": b"0\n"}))
    error_reply = fake_udp(answering({b"V": b"E1\n"}))
    specs = [
        relay.specs["udp"],
        silent_udp(),
        f"udp:127.0.0.1:{free_port()}",
        relay.specs["tcp"],
        f"cunix:{tmp_path}/missing.sock",
        error_reply.spec,
        not_rtpproxy.spec,
        "udp:no-such-host.invalid:22222",
        relay.specs["unix"],
    ]
    started = time.monotonic()
    results = probe_nodes([parse_node(spec) for spec in specs], timeout=0.3, retries=2)
    elapsed = time.monotonic() - started
    # The silent node alone costs 2 x 0.3 s; the others finish within it, not after it.
    assert elapsed < 1.1, elapsed
    assert [result.node.url for result in results] == specs
    assert all(isinstance(result, ProbeResult) for result in results)
    ok = [result.ok for result in results]
    assert ok == [True, False, False, True, False, False, False, False, True]
    for result in results:
        assert (result.answer is None) == (result.error is not None)
        assert result.elapsed_ms >= 0
    assert results[0].answer.version == 20040107 and "CODECS" in results[0].answer.capabilities
    assert str(results[1].error) == f"no reply from {specs[1]} after 2 tries of 0.3 s"
    assert "refused" in str(results[2].error) and results[2].elapsed_ms < 300
    assert str(results[4].error).startswith(f"no socket at {specs[4]}")
    assert isinstance(results[5].error, ProxyError) and results[5].error.code == 1
    assert isinstance(results[6].error, MalformedReply) and "extended protocol" in str(results[6].error)
    assert isinstance(results[7].error, TransportError) and "cannot resolve" in str(results[7].error)


def test_at_most_parallel_probes_run_at_once(silent_udp) -> None:
    nodes = [parse_node(silent_udp()) for _ in range(4)]
    started = time.monotonic()
    results = probe_nodes(nodes, timeout=0.2, retries=1, parallel=2)
    elapsed = time.monotonic() - started
    assert 0.38 <= elapsed < 0.75, elapsed  # two rounds of one timeout
    assert not any(result.ok for result in results)

    started = time.monotonic()
    probe_nodes(nodes, timeout=0.2, retries=1)
    assert time.monotonic() - started < 0.38  # all four in one round
    assert MAX_PARALLEL >= 4


def test_a_custom_probe_and_connect(relay) -> None:
    opened: list[str] = []
    clients: list[RelayClient] = []
    threads: set[str] = set()

    def connect(node) -> RelayClient:
        opened.append(node.url)
        client = RelayClient.open(node, timeout=2.0)
        clients.append(client)
        return client

    def probe(client: RelayClient) -> str:
        threads.add(threading.current_thread().name)
        return client.call("VF 20081224")

    specs = [relay.specs[transport] for transport in ("udp", "tcp", "cunix")]
    results = probe_nodes([parse_node(spec) for spec in specs], probe, connect=connect)
    assert [result.answer for result in results] == ["1", "1", "1"]
    assert sorted(opened) == sorted(specs)
    assert all(name.startswith("rtppctl-probe-") for name in threads)
    # Each client is closed once its probe has ended.
    assert len(clients) == 3
    assert all(client.channel._sock is None or client.channel._sock.fileno() == -1 for client in clients)


def test_one_node_is_probed_in_the_calling_thread(relay) -> None:
    names: list[str] = []

    def probe(client: RelayClient) -> None:
        names.append(threading.current_thread().name)

    (result,) = probe_nodes([parse_node(relay.specs["udp"])], probe)
    assert result.ok and result.answer is None
    assert names == [threading.current_thread().name]
    assert probe_nodes([]) == []


def test_a_fault_that_is_no_nodes_doing_reaches_the_caller_after_every_probe(relay, silent_udp) -> None:
    finished: list[str] = []

    def probe(client: RelayClient) -> str:
        if client.node.scheme == "tcp":
            raise ValueError("a bug in the probe")
        try:
            return client.call("V")
        finally:
            finished.append(client.node.url)

    specs = [relay.specs["udp"], relay.specs["tcp"], silent_udp()]
    with pytest.raises(ValueError, match="a bug in the probe"):
        probe_nodes([parse_node(spec) for spec in specs], probe, timeout=0.2, retries=1)
    assert sorted(finished) == sorted([specs[0], specs[2]])
