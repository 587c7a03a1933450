"""The relay service's rules against real relays, with a clock the test moves.

What the health table says in the abstract, checked here as the service carries it out: which
errors fail an offer over, when a disabled node is probed again, which probes may bring a node
back, that a node that is off is never asked, that a change another process made raises the same
status event, what the capability cache spares, and that a single-node set sends nothing while its
node is out. And where the sets come from: `rtpproxy_sock` and the db_url table's snapshot (a real
SQLite table), which a reload renews within the run.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from rtppctl.net.client import RelayClient
from rtppctl.net.probe import module_probe
from rtppctl.proto.errors import ConfigError, TransportError
from rtppctl.proto.select import Candidate, choose
from rtppctl.proto.url import parse_node
from rtppctl.relays.service import NodeFailed, RelayService, RelaySets


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Harness:
    """A service over real relays, recording the channels it opens and the status events."""

    def __init__(self, urls: list[str], weights: list[int], state, clock: Clock) -> None:
        self.nodes = [parse_node(f"{url}={weight}") for url, weight in zip(urls, weights)]
        self.opened: list[str] = []
        self.statuses = []
        self.sent: list[str] = []

        def open_client(node):
            self.opened.append(node.url)
            return RelayClient.open(node, timeout=0.2, retries=1, trace=self._trace)

        self.service = RelayService(
            lambda: RelaySets({0: self.nodes}, 0, disable_timeout=60), open_client,
            state_path=state, on_status=self.statuses.append, clock=clock,
        )

    def _trace(self, direction: str, node: str, data: bytes) -> None:
        if direction == ">":
            self.sent.append(data.decode(errors="replace"))

    def members(self):
        return self.service.members(set_id=0)


@pytest.fixture(scope="module")
def pair(relays):
    return [relays.start(), relays.start()]


@pytest.fixture
def clock() -> Clock:
    return Clock()


def good_update(call_id: str) -> str:
    return f"U {call_id} 127.0.0.1 4000 ft;1"


def test_e10_to_an_offer_disables_the_node_and_the_offer_goes_to_the_next(pair, tmp_path, clock):
    urls = [relay.udp for relay in pair]
    harness = Harness(urls, [1, 1], tmp_path / "state.sqlite3", clock)
    call_id = next(f"e10-{n}@h" for n in range(100) if choose(f"e10-{n}@h", [Candidate(1, True)] * 2).index == 0)

    def work(member, client):
        if member.node.url == urls[0]:
            # A real E10 from the relay: bad URL-encoding in the notify tag (§2.2 counts it as broken).
            return client.call(f"U {call_id} 127.0.0.1 4000 ft;1 %%CC_SELF%% %zz")
        return member.node.url, client.call(good_update(call_id))

    node, reply = harness.service.offer(call_id, work)
    assert node == urls[1] and int(reply.split()[0]) > 0
    assert [(s.socket, s.set, s.status, s.state) for s in harness.statuses] == [(urls[0], 0, "inactive", "disabled")]
    assert "E10" in harness.statuses[0].reason
    assert harness.service.node_info(harness.members()[0]).health.recheck_at == clock.now + 60


def test_other_errors_to_an_offer_are_not_failed_over(pair, tmp_path, clock):
    urls = [relay.udp for relay in pair]
    harness = Harness(urls, [1, 1], tmp_path / "state.sqlite3", clock)
    from rtppctl.proto.errors import ProxyError

    with pytest.raises(ProxyError) as caught:
        harness.service.offer("e35@h", lambda member, client: client.call("Ux e35@h 127.0.0.1 4000 ft;1"))
    assert caught.value.code == 35 and not isinstance(caught.value, NodeFailed)
    assert harness.statuses == []


def test_a_single_node_set_sends_nothing_while_its_node_is_out_then_probes_it_when_due(pair, tmp_path, clock):
    harness = Harness([pair[0].udp], [1], tmp_path / "state.sqlite3", clock)
    harness.service.enable(pair[0].udp, 2)  # probing mode: out until now + 60
    with pytest.raises(TransportError, match="no relay of set 0 is available"):
        harness.service.select("any@h")
    assert harness.opened == []  # not hashed, not probed: refused at once, as the module does
    clock.now += 61
    assert harness.service.select("any@h").node.url == pair[0].udp
    assert harness.sent and harness.sent[0].split(" ", 1)[1].startswith("V")
    assert [(s.status, s.reason) for s in harness.statuses] == [("active", "probe ok")]


def test_with_no_node_enabled_every_node_that_is_out_is_probed_once_but_off_never(pair, tmp_path, clock):
    urls = [relay.udp for relay in pair]
    harness = Harness(urls, [1, 1], tmp_path / "state.sqlite3", clock)
    harness.service.enable(urls[0], 0)
    harness.service.enable(urls[1], 2)
    chosen = harness.service.select("forced@h")
    assert chosen.node.url == urls[1]  # probed although its recheck is not due: none was enabled
    assert harness.opened == [urls[1]]
    states = [harness.service.node_info(m).health.state.value for m in harness.members()]
    assert states == ["off", "enabled"]


def test_a_probe_brings_back_a_probing_node_only_when_its_recheck_is_due(pair, tmp_path, clock):
    urls = [relay.udp for relay in pair]
    harness = Harness(urls, [1, 1], tmp_path / "state.sqlite3", clock)
    harness.service.enable(urls[0], 2)
    member = harness.members()[0]
    # An operator's probe (show --probe, listen --status-interval) and ping's answer: it answers,
    # what it said is kept, and it stays out until its recheck.
    [result] = harness.service.probe([member])
    assert result is not None and result.ok
    harness.service.observe_probe(member, result.answer, None)
    record = harness.service.node_info(member)
    assert record.health.state.value == "probing" and record.health.recheck_at == clock.now + 60
    assert record.capabilities and harness.statuses == []
    clock.now += 61
    harness.service.probe([member])
    assert harness.service.node_info(member).health.state.value == "enabled"
    assert [(s.status, s.state, s.reason) for s in harness.statuses] == [("active", "enabled", "probe ok")]


def test_a_node_that_is_off_is_never_probed(pair, tmp_path, clock):
    harness = Harness([pair[0].udp, pair[1].udp], [1, 1], tmp_path / "state.sqlite3", clock)
    harness.service.enable(pair[0].udp, 0)
    clock.now += 3600
    assert harness.service.probe(harness.members()[:1]) == [None]
    assert harness.service.select("off@h").node.url == pair[1].udp
    assert harness.opened == [] and harness.sent == []


def test_a_change_another_process_made_raises_the_same_status_event(pair, tmp_path, clock, monkeypatch):
    from rtppctl.relays import service as service_module
    from rtppctl.relays.health import StatusEvent

    state = tmp_path / "state.sqlite3"
    urls = [relay.udp for relay in pair]
    watcher, other = Harness(urls, [1, 1], state, clock), Harness(urls, [1, 1], state, clock)
    member = watcher.members()[0]
    assert watcher.service.node_info(member).health.state.value == "enabled"
    other.service.enable(urls[0], 0)
    monkeypatch.setattr(service_module, "REFRESH_SECONDS", 0.0)
    assert watcher.service.node_info(member).health.state.value == "off"
    assert watcher.statuses == [StatusEvent(clock.now, urls[0], 0, "inactive", "off", service_module.SEEN_IN_STORE)]
    # Met inside a write too: this run still thought it enabled and probed it (ping asks any
    # node); the answer finds it off in the store, reports what changed, and leaves it off.
    monkeypatch.setattr(service_module, "REFRESH_SECONDS", 3600.0)
    other.service.enable(urls[0], 1)
    other.service.enable(urls[1], 0)
    second = watcher.members()[1]
    watcher.statuses.clear()
    [result] = watcher.service.each([second], module_probe)
    watcher.service.observe_probe(second, result.answer, None)
    assert watcher.service.node_info(second).health.state.value == "off"
    assert [(s.socket, s.status, s.state, s.reason) for s in watcher.statuses] == [
        (urls[1], "inactive", "off", service_module.SEEN_IN_STORE)]


def test_capabilities_are_probed_once_and_kept_in_the_state_file(pair, tmp_path, clock):
    state = tmp_path / "state.sqlite3"
    first = Harness([pair[0].udp], [1], state, clock)
    member = first.members()[0]
    found = first.service.capabilities(member)
    assert {"CODECS", "STATS", "NOTIFY"} <= found
    # VF 20050322 and the ten optional capabilities (§2.1).
    assert sum(line.split(" ", 1)[1].startswith("VF") for line in first.sent) == 11
    first.service.close()
    second = Harness([pair[0].udp], [1], state, clock)
    assert second.service.capabilities(second.members()[0]) == found
    assert second.opened == []  # nothing asked: the cache answered


def test_without_a_state_file_nothing_is_kept_between_services(pair, clock):
    first = Harness([pair[0].udp], [1], None, clock)
    first.service.enable(pair[0].udp, 0)
    second = Harness([pair[0].udp], [1], None, clock)
    assert second.service.select("c@h").node.url == pair[0].udp


# -- which relays, from where ---------------------------------------------------------------------------


def table_config(tmp_path, **keys):
    from rtppctl import sources
    from rtppctl.config import config_from_mapping

    config = config_from_mapping({"db_url": f"sqlite:///{tmp_path / 'opensips.db'}", **keys}, tmp_path / "c.toml")
    sources.init_table(config)
    return config


def urls(service: RelayService) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for member in service.members(all_sets=True):
        found.setdefault(member.set_id, []).append(member.node.url)
    return found


def refused(_node):
    raise AssertionError("no relay is contacted")


def test_the_service_takes_its_sets_from_rtpproxy_sock_and_the_tables_snapshot(tmp_path):
    from rtppctl import sources
    from rtppctl.relays.service import RelaySources

    config = table_config(tmp_path, rtpproxy_sock=["udp:10.0.0.9:22222"])
    sources.add_row(config, "udp:10.0.0.5:22222", 0)
    state = tmp_path / "state.sqlite3"
    added = RelayService(RelaySources(lambda: config), refused, state_path=state)
    assert urls(added) == {0: ["udp:10.0.0.9:22222", "udp:10.0.0.5:22222"]}
    added.close()
    # The snapshot, not the table: a row added since changes nothing until a reload.
    sources.add_row(config, "udp:10.0.0.6:22222", 1)
    replaced = RelayService(RelaySources(lambda: replace(config, db_mode="replace")), refused, state_path=state)
    assert urls(replaced) == {0: ["udp:10.0.0.5:22222"]}
    replaced.close()


def test_a_reload_renews_the_sets_of_the_same_run_and_a_dry_run_keeps_them(tmp_path):
    from rtppctl import sources
    from rtppctl.relays.service import RelaySources

    config = table_config(tmp_path)
    sources.add_row(config, "udp:10.0.0.5:22222", 0)
    warned: list[str] = []
    service = RelayService(RelaySources(lambda: config, warn=warned.append), refused,
                           state_path=tmp_path / "state.sqlite3")
    assert urls(service) == {0: ["udp:10.0.0.5:22222"]} and warned == []
    sources.add_row(config, "udp:10.0.0.6:22222=2", 1)
    sources.add_row(config, "udp:10.0.0.7:22222", 1)
    sources.remove_rows(config, row_id=3)
    dry = service.reload(dry_run=True)
    assert not dry.applied and [(c.set_id, c.after) for c in dry.changes.added] == [(1, "udp:10.0.0.6:22222=2")]
    assert urls(service) == {0: ["udp:10.0.0.5:22222"]}
    done = service.reload()
    assert done.applied and done.table == "rtpproxy_sockets" and done.changes == dry.changes
    assert urls(service) == {0: ["udp:10.0.0.5:22222"], 1: ["udp:10.0.0.6:22222"]}
    service.close()


def test_fixed_sets_have_no_table_to_reload(tmp_path):
    service = RelayService(lambda: RelaySets({0: [parse_node("udp:10.0.0.5:22222")]}, 0), refused,
                           state_path=tmp_path / "state.sqlite3")
    with pytest.raises(ConfigError, match="reload reads the db_url table, and no db_url is configured"):
        service.reload()
    assert not (tmp_path / "state.sqlite3").exists()  # refused before the state store was opened
