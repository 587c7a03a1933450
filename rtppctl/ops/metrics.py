"""`metrics`: every relay observed at once within a time budget, for Prometheus. Here are the
readings and the serving loop; `monitoring/prometheus.py` turns readings into the exposition and
owns the HTTP server.

A scrape asks each node, from a thread of its own and over a client of its own
(`RelayService.own_client`), what `ping` and `info` ask: the module's probe (`V`, `VF`: version,
capabilities, round trip), then `I` (active sessions) and the global statistics (`G`), pipelined.
Nothing goes through the run's channels, the health table or the ledger's writes: a relay that
does not answer is reported down, and its health in the state store stays what it was. What the
state store knows is read beside the probes: each node's health state, and the ledger's sessions
per node. Every node is asked whatever its health (an observer wants to know whether a relay that
is out is running), as `check` does.

The rule it keeps: a scrape returns at its budget, whatever the relays do. All nodes are asked at
once (at most `MAX_PARALLEL` at a time); a node not done by the budget is down with a reason. Its
thread (a daemon) sends nothing more after the budget and ends by itself soon after, because its
client's waits come from the budget too: each command waits at most half the budget, as two sends
of a quarter on a datagram relay or one wait of a half on a stream. Scrapes are serialised, and a
node whose probe from an earlier scrape still runs is not asked again until it has ended: no relay
is ever asked by two of rtppctl's probes at once.

`serve` runs `metrics --serve`: every scrape runs on the calling (main) thread, where the run's
relay service and its state store live; the HTTP threads only ask for a scrape and wait for it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rtppctl.proto import limits
from rtppctl.proto.errors import InputError, RtppctlError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from rtppctl.net.probe import RelayCapabilities
    from rtppctl.proto.url import NodeSpec
    from rtppctl.relays.service import Member, RelayService

#: Nodes asked at once, in all scrapes together (threads of an earlier scrape that still wait out
#: a dead relay hold their place): the bound `net.probe` keeps for the same reason.
MAX_PARALLEL = 16
#: Seconds between looks at the clock, the probes and the signals while a scrape or a server waits.
_POLL = 0.1
#: Seconds an HTTP request waits for its scrape beyond the budget (encoding, a busy state store).
SERVE_GRACE = 1.0


@dataclass(frozen=True)
class NodeReading:
    """What one scrape saw of one node: the JSON object `metrics --json` prints per node."""

    node: str
    #: The set it was taken from; None for a --target.
    set_id: int | None
    #: It answered V, VF, I and G within the budget.
    up: bool
    #: Its health in the state store (enabled, disabled, probing, off); None for a target.
    state: str | None
    #: Its weight in its set (1 for a target without one).
    weight: int
    #: Round trip of the probe's `V`, in milliseconds.
    rtt_ms: float | None = None
    version: int | None = None
    #: Module capability names the relay has (REPACK, STATS, ...), in the module's probe order.
    capabilities: list[str] = field(default_factory=list)
    #: "active sessions" of the relay's `I`.
    sessions_active: int | None = None
    #: The relay's global statistics (`G`), by the relay's own names.
    stats: dict[str, int | float] = field(default_factory=dict)
    #: Calls the session ledger holds on this node (of this set; for a target, of any).
    ledger_sessions: int = 0
    #: Why it is down; None when up.
    error: str | None = None


@dataclass(frozen=True)
class Scrape:
    """One scrape: a reading per node, in the members' order."""

    nodes: list[NodeReading]
    #: Seconds the scrape took.
    elapsed_s: float
    #: Its budget in seconds.
    budget_s: float

    @property
    def answered(self) -> int:
        return sum(1 for node in self.nodes if node.up)

    @property
    def ok(self) -> bool:
        """Every node answered."""
        return all(node.up for node in self.nodes)


class _OutOfTime(Exception):
    """The scrape's budget ran out: the probe sends nothing more (the scrape has reported it)."""


class _Probe:
    """One node's probe in a thread of its own. Its fields are written and read under the
    scraper's condition; the scrape reads them at most once, at its end."""

    __slots__ = ("node", "done", "found", "info", "stats", "error", "fault")

    def __init__(self, node: NodeSpec) -> None:
        self.node = node
        self.done = False
        self.found: RelayCapabilities | None = None
        self.info: dict[str, int | float] = {}
        self.stats: dict[str, int | float] = {}
        self.error: str | None = None
        #: An exception that is nobody's doing but rtppctl's (a bug): raised by the scrape.
        self.fault: BaseException | None = None


def _in_time(deadline: float) -> None:
    if time.monotonic() >= deadline:
        raise _OutOfTime


def _client_waits(node: NodeSpec, budget: float) -> tuple[float, int]:
    """(timeout, sends) of a probe's client: each command waits at most half the budget, so a
    dead relay's thread ends by itself soon after the scrape, and a datagram lost once is sent
    again within it."""
    if node.is_datagram:
        return budget / 4, 2
    return budget / 2, 1


def _observe(service: RelayService, probe: _Probe, budget: float, deadline: float) -> None:
    """The module's probe, then `I` and every global statistic (pipelined), on one node."""
    from rtppctl.net.probe import module_probe  # noqa: PLC0415
    from rtppctl.proto import command as cmd  # noqa: PLC0415 - not for `--help`, which loads this module

    node = probe.node
    timeout, sends = _client_waits(node, budget)
    client = service.own_client(node, timeout=timeout, retries=sends)
    try:
        found = module_probe(client)
        _in_time(deadline)
        names = list(cmd.GLOBAL_STATS)
        # The engine refuses a command with too many arguments (E5): G in batches, sent at once.
        batches = [names[start:start + cmd.MAX_STATS_PER_QUERY] for start in range(0, len(names), cmd.MAX_STATS_PER_QUERY)]
        commands = [cmd.info(), *(cmd.get_stats(batch, verbose=True) for batch in batches)]
        replies = client.replies(commands)
        for command, reply in zip(commands, replies, strict=True):
            cmd.raise_for_error(reply, command, node.url)
        info = cmd.parse_info(replies[0])
        stats: dict[str, int | float] = {}
        for batch, reply in zip(batches, replies[1:], strict=True):
            stats.update(cmd.parse_stats(reply, batch))
    finally:
        client.close()
    probe.found, probe.info, probe.stats = found, info, stats


class Scraper:
    """Scrapes of `members` within `budget` seconds each; `scrape()` may be called again and
    again (`metrics --serve`), from one thread at a time (the service is that thread's)."""

    def __init__(self, service: RelayService, members: Sequence[Member], *, budget: float = limits.DEFAULT_SCRAPE_BUDGET) -> None:
        if not (isinstance(budget, (int, float)) and limits.MIN_SCRAPE_BUDGET <= budget <= limits.MAX_SCRAPE_BUDGET):
            raise InputError(f"the budget must be {limits.MIN_SCRAPE_BUDGET:g} to {limits.MAX_SCRAPE_BUDGET:g} seconds, not {budget!r}")
        self.service = service
        self.members = list(members)
        self.budget = float(budget)
        #: One scrape at a time.
        self._serial = threading.Lock()
        #: Guards `_running` and every probe's fields; notified when a probe ends.
        self._changed = threading.Condition()
        #: Urls of the nodes whose probe thread still runs (this scrape's or an earlier one's).
        self._running: set[str] = set()
        self._slots = threading.BoundedSemaphore(MAX_PARALLEL)

    def scrape(self, cancelled: Callable[[], bool] | None = None) -> Scrape:
        """Ask every node at once and read the state store meanwhile; return at the budget at the
        latest (sooner when every node is done, or when `cancelled()` says so: the nodes not done
        are then down). A fault of rtppctl's in a probe is raised once the scrape has ended."""
        with self._serial:
            return self._scrape(cancelled)

    def _scrape(self, cancelled: Callable[[], bool] | None) -> Scrape:
        started = time.monotonic()
        deadline = started + self.budget
        probes: dict[str, _Probe] = {}
        busy: set[str] = set()
        with self._changed:
            for member in self.members:
                url = member.node.url
                if url in probes or url in busy:
                    continue  # one node in two sets is one relay: asked once
                if url in self._running:
                    busy.add(url)
                    continue
                probes[url] = _Probe(member.node)
                self._running.add(url)
        for url, probe in probes.items():
            threading.Thread(target=self._run, args=(probe, deadline), name=f"rtppctl-metrics {url}", daemon=True).start()
        # The state store is read while the relays answer.
        states = [self._state(member) for member in self.members]
        held = self._ledger()
        with self._changed:
            while not all(probe.done for probe in probes.values()):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (cancelled is not None and cancelled()):
                    break
                self._changed.wait(min(remaining, _POLL))
            elapsed = time.monotonic() - started
            readings = [self._reading(member, state, held, probes.get(member.node.url))
                        for member, state in zip(self.members, states, strict=True)]
            faults = [probe.fault for probe in probes.values() if probe.done and probe.fault is not None]
        if faults:
            raise faults[0]
        return Scrape(readings, round(elapsed, 6), self.budget)

    def _run(self, probe: _Probe, deadline: float) -> None:
        error: str | None = None
        fault: BaseException | None = None
        try:
            if not self._slots.acquire(timeout=max(0.0, deadline - time.monotonic())):
                raise _OutOfTime
            try:
                _observe(self.service, probe, self.budget, deadline)
            finally:
                self._slots.release()
        except _OutOfTime:
            error = None  # the scrape has ended and said so
        except RtppctlError as err:
            error = err.message
        except BaseException as exc:  # noqa: BLE001 - a bug: handed to the scrape
            fault = exc
        with self._changed:
            probe.error, probe.fault, probe.done = error, fault, True
            self._running.discard(probe.node.url)
            self._changed.notify_all()

    def _state(self, member: Member) -> str | None:
        # A --target has no health: it belongs to no set, and its record lives in memory only.
        if member.set_id is None:
            return None
        return self.service.node_info(member).health.state.value

    def _ledger(self) -> tuple[Counter[tuple[int | None, str]], Counter[str]]:
        """The ledger's calls per (set, node), as `show` counts them, and per node (for targets)."""
        entries = self.service.sessions()
        return Counter((entry.set_id, entry.node_url) for entry in entries), Counter(entry.node_url for entry in entries)

    def _reading(self, member: Member, state: str | None, held: tuple[Counter[Any], Counter[str]],
                 probe: _Probe | None) -> NodeReading:
        """One node's reading (called under `_changed`)."""
        url = member.node.url
        base: dict[str, Any] = {
            "node": url, "set_id": member.set_id, "state": state, "weight": member.node.weight,
            "ledger_sessions": held[0][(member.set_id, url)] if member.set_id is not None else held[1][url],
        }
        if probe is None:
            return NodeReading(up=False, error="its probe from an earlier scrape has not ended yet: not asked again", **base)
        if not probe.done:
            return NodeReading(up=False, error=f"no answer within the scrape's budget of {self.budget:g} s", **base)
        found = probe.found
        if found is None or probe.error is not None or probe.fault is not None:
            return NodeReading(up=False, error=probe.error or "no answer", **base)
        active = probe.info.get("active_sessions")
        return NodeReading(
            up=True, rtt_ms=round(found.rtt_ms, 3), version=found.version, capabilities=list(found.capabilities),
            sessions_active=int(active) if active is not None else None, stats=dict(probe.stats), **base,
        )


def metrics(service: RelayService, members: Sequence[Member], *, budget: float = limits.DEFAULT_SCRAPE_BUDGET) -> Scrape:
    """One scrape of `members` (`metrics` without --serve)."""
    return Scraper(service, members, budget=budget).scrape()


def serve(scraper: Scraper, host: str, port: int, *, announce: Callable[[str], None],
          log: Callable[[str], None] | None = None, warn: Callable[[str], None] | None = None) -> int:
    """`metrics --serve`: answer GET /metrics on HOST:PORT, a scrape per request, until SIGINT or
    SIGTERM; returns the number of signals (at least 1: the caller says "interrupted").

    Signals are caught before the socket is bound. Scrapes run here, on the calling thread, one at
    a time: a request that comes while one runs gets that one's readings. `announce` gets the URL
    once bound; `log` each request and scrape (-v); `warn` a scrape that failed (the state store
    could not be read: the request gets 503)."""
    from rtppctl.monitoring.prometheus import MetricsServer  # noqa: PLC0415
    from rtppctl.ops.interrupts import Interrupts  # noqa: PLC0415

    with Interrupts() as interrupts, \
            MetricsServer(host, port, wait=scraper.budget + SERVE_GRACE, log=log) as server:
        announce(server.url)

        def stopped() -> bool:
            return interrupts.signals > 0

        while not stopped():
            request = server.next_scrape(_POLL)
            if request is None:
                continue
            try:
                scrape = scraper.scrape(cancelled=stopped)
            except RtppctlError as err:
                if warn is not None:
                    warn(f"scrape failed: {err.message}")
                server.answer(request, None, f"the scrape failed: {err.message}")
            except Exception as exc:  # noqa: BLE001 - a bug must not end the server: said, and answered 500
                if warn is not None:
                    warn(f"scrape failed: internal error: {type(exc).__name__}: {exc}")
                server.answer(request, None, "internal error", status=500)
            else:
                if log is not None:
                    log(f"scrape: {scrape.answered}/{len(scrape.nodes)} relays answered in {scrape.elapsed_s:.3f} s")
                server.answer(request, scrape)
        return interrupts.signals


__all__ = ["MAX_PARALLEL", "NodeReading", "Scrape", "Scraper",
           "metrics", "serve"]
