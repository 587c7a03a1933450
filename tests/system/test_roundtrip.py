"""Encoder -> transport -> real relay -> decoder, over every control transport."""

from __future__ import annotations

import pytest

from rtppctl.net.client import RelayClient
from rtppctl.proto import command as cmd
from rtppctl.proto.errors import ProxyError
from rtppctl.proto.url import parse_node

TRANSPORTS = ("udp", "udp6", "tcp", "unix", "cunix")


@pytest.mark.relay
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_offer_answer_query_delete_round_trip(relay, transport):
    call_id = f"rt-{transport}@test"
    with RelayClient.open(parse_node(relay.specs[transport]), timeout=1.0, retries=3) as client:
        offer = cmd.parse_port_reply(client.call(cmd.update(call_id, "127.0.0.1", 30000, "caller", medianum=1,
                                                            modifiers=cmd.Modifiers(codecs=(0, 8, 101)))))
        assert 1 <= offer.port <= 65535
        assert offer.address == "127.0.0.1" and not offer.ipv6

        answer = cmd.parse_port_reply(client.call(cmd.lookup(call_id, "127.0.0.1", 30010, "caller", "callee", medianum=1)))
        assert 1 <= answer.port <= 65535 and answer.port != offer.port

        # A repeated offer on the same session gets the same relay port back.
        again = cmd.parse_port_reply(client.call(cmd.update(call_id, "127.0.0.1", 30000, "caller", medianum=1)))
        assert again.port == offer.port

        counters = cmd.parse_counters(client.call(cmd.query(call_id, "caller", "callee", medianum=1)))
        assert set(counters) == set(cmd.QUERY_DEFAULT_COUNTERS)
        assert counters["npkts_ina"] == 0 and counters["ttl"] > 0

        assert cmd.parse_result(client.call(cmd.delete(call_id, "caller", "callee"))) == 0
        with pytest.raises(ProxyError) as gone:
            client.call(cmd.delete(call_id, "caller", "callee"))
        assert gone.value.code == 50 and gone.value.name == "SESUNKN"


@pytest.mark.relay
def test_ipv6_offer_reply_carries_the_family_marker(relay):
    with RelayClient.open(parse_node(relay.specs["udp6"])) as client:
        reply = cmd.parse_port_reply(client.call(cmd.update("v6@test", "::1", 5000, "ft", medianum=1,
                                                            modifiers=cmd.Modifiers(ipv6=True))))
        assert reply.ipv6 and reply.address == "::1" and reply.port > 0
        client.call(cmd.delete("v6@test", "ft"))


@pytest.mark.relay
def test_lookup_of_unknown_session_answers_port_zero(relay):
    with RelayClient.open(parse_node(relay.udp)) as client:
        reply = cmd.parse_port_reply(client.call(cmd.lookup("nosuch@test", "127.0.0.1", 5000, "a", "b", medianum=1)))
        assert reply.port == 0


@pytest.mark.relay
def test_multiline_info_and_stats_decode(relay):
    with RelayClient.open(parse_node(relay.specs["cunix"])) as client:
        info = cmd.parse_info(client.call(cmd.info(load=True)))
        assert {"sessions_created", "active_sessions", "average_load"} <= set(info)
        names = cmd.GLOBAL_STATS[: cmd.MAX_STATS_PER_QUERY]
        stats = cmd.parse_stats(client.call(cmd.get_stats(names, verbose=True)), names)
        assert list(stats) == list(names)


@pytest.mark.relay
def test_every_global_stat_name_is_known_to_the_engine(relay):
    names = list(cmd.GLOBAL_STATS)
    with RelayClient.open(parse_node(relay.udp)) as client:
        for start in range(0, len(names), cmd.MAX_STATS_PER_QUERY):
            batch = names[start : start + cmd.MAX_STATS_PER_QUERY]
            assert set(cmd.parse_stats(client.call(cmd.get_stats(batch)), batch)) == set(batch)
