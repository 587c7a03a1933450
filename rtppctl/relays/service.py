"""The relay service: the one way operations reach relays.

The run context builds one per run from the config and the options. It owns:

- which relays, from where (`RelaySources`): the sets assembled from `rtpproxy_sock` and the
  `db_url` table's snapshot in the state store (`db_mode` add or replace; the built-in default
  relay only when neither is set), the table read when there is no snapshot yet, and reload
  (read the table, say what changes, keep the new snapshot); and the nodes a `--target` names;
- selection: the module's hash and weighted walk (`proto.select`) over each node's health, with the
  re-probes the module does on the way (docs/protocol.md §2.2, §3);
- health: every event goes through the table in `relays.health`; with a state store the new
  record is written in the same transaction that read the current one, so processes working at
  once lose no change;
- the capability cache: what the last successful probe of a node found, kept with its health. A
  node is probed when nothing is known about it or when its recheck is due, not on every command;
- the channels: one client per node, opened on first use, reused by every command of the run
  (`raw -f`, `shell`, `engage`), closed by `close()`; a channel that failed is dropped;
- failover: an offer whose node fails (no usable reply, or `E7`-`E10` to `U`) disables the node and
  goes to the node the module picks next; every other command stays on its node and fails naming it;
- the session ledger: which node holds each call, so a call's later commands follow its offer.
  Every change to it says what it expects to find (`remember(replacing=)`, `add_to_tag`,
  `forget(node_url=)`), so commands on one call at once never bring a removed call back or
  write an older node over a newer one (`relays.store`).

The health table, the selector and the store are imported where they are used: a one-shot
command given `--target` needs none of them and starts faster without.

Nodes named by `--target` are the operator's explicit choice: they bypass selection and are never
disabled, but an offer through one is still recorded in the ledger. Nothing here prints; status
events (`relays.health.StatusEvent`) go to the `on_status` callback.

Health is the table's alone (`relays.health.apply`): whether a node may be probed now (asked as
the table's questions: selection, "no node of the set enabled", an operator's probe), what a
probe's answer or a failed command does to it, and the status event each change raises. The
service asks, carries out the actions the table returns (probe, keep what was learned) and writes
the result; it has no rule of its own, but one: a node that failed during this command is not
asked again by the same command (the module would, and with a relay that answers E7-E10 to U it
would go round for ever). A change another process made is seen when the state store is read
again (`REFRESH_SECONDS`) and raises its status event through the same function
(`relays.health.status_event`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from rtppctl.proto import limits
from rtppctl.proto.errors import NODE_FAILURE_CODES, ConfigError, InputError, ProxyError, TransportError

if TYPE_CHECKING:
    from pathlib import Path

    from rtppctl.config import Config
    from rtppctl.net.client import RelayClient
    from rtppctl.net.pipeline import Pipeline
    from rtppctl.net.probe import ProbeResult, RelayCapabilities
    from rtppctl.proto.select import Candidate
    from rtppctl.proto.url import NodeSpec
    from rtppctl.relays.health import Event, NodeInfo, StatusEvent
    from rtppctl.relays.store import LedgerEntry, StateStore
    from rtppctl.sources import DbSnapshot, SnapshotDiff, TableRead

T = TypeVar("T")

#: `offer(read=...)` or `remember(replacing=...)` left out.
_UNREAD: Any = object()

#: Seconds the health read from the store is trusted before it is read again: long-running
#: commands (`shell`, `show --watch`) see what other processes changed, one-shot ones read once.
REFRESH_SECONDS = 1.0


class Member(NamedTuple):
    """A node and the set it was taken from (None for a --target)."""

    set_id: int | None
    node: NodeSpec


@dataclass(frozen=True)
class RelaySets:
    """The configured sets, as the service needs them."""

    sets: Mapping[int, Sequence[NodeSpec]]
    default_set: int
    #: Where they came from, for messages: " in /etc/rtppctl/config.toml", or "".
    origin: str = ""
    #: Seconds a failed node stays disabled (rtpproxy_disable_tout).
    disable_timeout: float = limits.DEFAULT_DISABLE_SECONDS
    #: Seconds a ledger entry lives unused.
    ledger_ttl: float = limits.DEFAULT_LEDGER_TTL


@dataclass(frozen=True)
class Reloaded:
    """What a reload read from the table and did with it."""

    #: The table's name (`db_table`), for messages about its rows.
    table: str
    #: The read: its snapshot, the bad rows and the warnings.
    read: TableRead
    #: What the new snapshot adds, removes and changes against the one kept.
    changes: SnapshotDiff
    #: The new snapshot replaced the old one in the state store.
    applied: bool


class RelaySources:
    """Where a run's relays come from (docs/protocol.md §10): the config's `rtpproxy_sock`, and the
    `db_url` table through its snapshot in the state store.

    The table's nodes are added to the configured ones, as the module's documentation says
    (`db_mode = "add"`), or used instead of them (`"replace"`, what OpenSIPS's code does); the
    built-in default relay applies only when neither `rtpproxy_sock` nor `db_url` is set. Like
    the module, rtppctl reads the table when the sets are loaded, not per command: the snapshot
    is read from the store, and the table only when the store has none (or there is no store),
    the read then kept. The config is asked for on first use, and the state store (`store`, a
    function) only when the table is used: a command given `--target` needs neither.
    """

    def __init__(self, config: Callable[[], Config], *, warn: Callable[[str], None] | None = None) -> None:
        self._get_config = config
        self._config: Config | None = None
        #: Gets each bad row and doubtful row of a read made for the sets, one message each.
        self._warn = warn

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = self._get_config()
        return self._config

    def sets(self, store: Callable[[], StateStore | None]) -> RelaySets:
        """The sets commands use: the configured ones and the table's (per `db_mode`)."""
        from rtppctl.config import DEFAULT  # noqa: PLC0415
        from rtppctl.proto.url import parse_node  # noqa: PLC0415

        config = self.config
        origin = f" in {config.path}" if config.path else ""
        if config.db_url:
            origin += f" or the {config.db_table} table"
            # Written in the config, rtpproxy_sock stays beside the table (unless replaced); the
            # built-in default yields to the table.
            kept = config.source("rtpproxy_sock") != DEFAULT and config.db_mode != "replace"
            sets = {sid: list(nodes) for sid, nodes in config.sets().items()} if kept else {}
            for node in self._snapshot(store()).nodes:
                sets.setdefault(node.set_id, []).append(parse_node(node.spec))
        else:
            sets = config.sets()
        return RelaySets(sets, config.default_set, origin, disable_timeout=config.rtpproxy_disable_tout,
                         ledger_ttl=config.ledger_ttl)

    def _snapshot(self, store: StateStore | None) -> DbSnapshot:
        if store is not None:
            kept = store.db_snapshot()
            if kept is not None:
                return kept
        from rtppctl import sources  # noqa: PLC0415

        read = sources.read_table(self.config)
        if self._warn is not None:
            for bad in read.bad_rows:
                self._warn(bad.describe(self.config.db_table) + " (skipped)")
            for note in read.warnings:
                self._warn(note)
        if store is not None:
            store.replace_db_snapshot(read.snapshot)
        return read.snapshot

    def reload(self, store: Callable[[], StateStore | None], *, dry_run: bool = False,
               strict: bool = False) -> Reloaded:
        """MI rtpproxy_reload: read the table again and keep its nodes as the snapshot (not with
        `dry_run`, nor without a store); with `strict`, a bad row refuses the whole table. The
        store is opened once the table was read: a table that cannot be read changes nothing."""
        from rtppctl import sources  # noqa: PLC0415

        config = self.config
        if not config.db_url:
            raise _no_table()
        read = sources.read_table(config)
        if strict and read.bad_rows:
            first = read.bad_rows[0]
            more = f" (and {len(read.bad_rows) - 1} more)" if len(read.bad_rows) > 1 else ""
            raise ConfigError(f"{read.snapshot.source}: {first.describe(config.db_table)}{more}; nothing reloaded",
                              "fix the row, or reload without --strict to use the good rows")
        kept = store()
        changes = sources.diff(kept.db_snapshot() if kept is not None else None, read.snapshot)
        applied = not dry_run and kept is not None
        if applied:
            kept.replace_db_snapshot(read.snapshot)
        return Reloaded(config.db_table, read, changes, applied)


def _no_table() -> ConfigError:
    return ConfigError("reload reads the db_url table, and no db_url is configured",
                       "set db_url (and db_table) in the config; rtpproxy_sock values are read on every command")


#: The reason of a status event for a change another process made.
SEEN_IN_STORE = "changed by another process (seen in the state store)"


class NodeFailed(TransportError):
    """A command to a node got no usable reply, or an answer the module counts as a node failure."""

    def __init__(self, member: Member, cause: TransportError | ProxyError, hint: str | None = None) -> None:
        self.member = member
        self.cause = cause
        super().__init__(cause.message, hint or cause.hint)
        self.exit_code = cause.exit_code


class RelayService:
    """Sets, selection, health, capabilities, channels and the ledger of one run."""

    def __init__(
        self,
        sets: RelaySources | Callable[[], RelaySets],
        open_client: Callable[..., RelayClient],
        *,
        state_path: Path | str | None | Callable[[], Path | str | None],
        on_status: Callable[[StatusEvent], None] | None = None,
        on_note: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
        open_pipeline: Callable[[int], Pipeline] | None = None,
    ) -> None:
        # A run's relays come from its config (RelaySources, with the state store this service
        # opens); fixed sets, from a function, serve tests and callers of their own.
        self._sources = sets if isinstance(sets, RelaySources) else None
        self._load_sets: Callable[[], RelaySets] = (
            (lambda: sets.sets(lambda: self.store)) if isinstance(sets, RelaySources) else sets)
        self._open_client = open_client
        self._open_pipeline = open_pipeline
        # A callable is asked on first use: working out the default path costs imports that a
        # command given --target never needs.
        self._state_path = state_path
        self._on_status = on_status
        self._on_note = on_note
        self._clock = clock
        self._sets: RelaySets | None = None
        self._clients: dict[str, RelayClient] = {}
        #: How many nodes `each` asks at once (None: probe_nodes' own bound; see clients_from).
        self._probe_parallel: int | None = None
        self._store: StateStore | None = None
        self._records: dict[tuple[int | None, str], NodeInfo] = {}
        self._records_read_at: float | None = None

    # -- configuration -----------------------------------------------------------------------------

    @property
    def relay_sets(self) -> RelaySets:
        """The sets this run uses, assembled on first use (rtpproxy_sock, the db_url snapshot)."""
        if self._sets is None:
            self._sets = self._load_sets()
        return self._sets

    def reload(self, *, dry_run: bool = False, strict: bool = False) -> Reloaded:
        """MI rtpproxy_reload (`RelaySources.reload`) with this run's state store; the sets are
        assembled again from the new snapshot on their next use."""
        if self._sources is None:
            raise _no_table()
        done = self._sources.reload(lambda: self.store, dry_run=dry_run, strict=strict)
        if done.applied:
            self._sets = None
        return done

    def members(self, targets: Sequence[str] | None = None, set_id: int | None = None, *,
                all_sets: bool = False) -> list[Member]:
        """The relays the options name: the targets, else every set (`all_sets`), else one set."""
        if targets:
            from rtppctl.proto.url import parse_node  # noqa: PLC0415

            return [Member(None, parse_node(spec)) for spec in targets]
        sets = self.relay_sets.sets
        if all_sets:
            members = [Member(sid, node) for sid in sorted(sets) for node in sets[sid]]
            if not members:
                raise ConfigError(f"no relays are configured{self.relay_sets.origin}",
                                  "add rtpproxy_sock to the config, or use --target")
            return members
        wanted = self.relay_sets.default_set if set_id is None else set_id
        if not sets.get(wanted):
            known = ", ".join(str(s) for s in sorted(sets)) or "none"
            raise ConfigError(
                f"no relay set {wanted} is configured{self.relay_sets.origin} (sets: {known})",
                "use --target udp:HOST:PORT, pick a set with --set, or add rtpproxy_sock to the config "
                "(rtppctl config init)",
            )
        return [Member(wanted, node) for node in sets[wanted]]

    def one_target(self, targets: Sequence[str] | None) -> Member | None:
        """The --target of a one-relay command, or None when none was given."""
        if not targets:
            return None
        if len(targets) > 1:
            raise InputError(f"this command talks to one relay, but {len(targets)} --target options were given")
        return self.members(targets)[0]

    # -- channels ------------------------------------------------------------------------------------

    def client(self, node: NodeSpec) -> RelayClient:
        """The run's client for `node`, opened on first use."""
        client = self._clients.get(node.url)
        if client is None:
            client = self._clients[node.url] = self._open_client(node)
        return client

    def own_client(self, node: NodeSpec, *, timeout: float | None = None, retries: int | None = None) -> RelayClient:
        """A client of the caller's own for `node`, beside the run's channel; the caller closes it.

        For observers that work on many nodes from threads of their own (`check`'s workers,
        `metrics`' scrapes): a slow or dead node then never holds a channel another thread or a
        later scrape needs. `timeout` and `retries` override the run's (a scrape's budget)."""
        overrides = {key: value for key, value in (("timeout", timeout), ("retries", retries)) if value is not None}
        return self._open_client(node, **overrides)

    def pipeline(self, window: int = 16) -> Pipeline:
        """A pipelined engine (`net.pipeline`) with the run's timeout, retries and trace, keeping up
        to `window` requests in flight per node; the caller closes it."""
        if self._open_pipeline is None:
            from rtppctl.net.pipeline import Pipeline  # noqa: PLC0415

            return Pipeline(window=window)
        return self._open_pipeline(window)

    def clients_from(self, open_client: Callable[..., RelayClient], *, threads: bool = True) -> None:
        """From now on, the run's channels come from `open_client` (batch: clients whose commands
        go through one pipelined engine); the channels opened so far are closed. `threads=False`:
        those clients may only be used from the calling thread, so `each` asks the nodes one
        after another instead of from threads of its own."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            with contextlib.suppress(Exception):
                client.close()
        self._open_client = open_client
        self._probe_parallel = None if threads else 1

    def _drop_client(self, node: NodeSpec) -> None:
        # A stream that failed may be half-read; the next command reconnects, as the module does.
        client = self._clients.pop(node.url, None)
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    def close(self) -> None:
        """Close every channel and the state store; closing twice is harmless."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            with contextlib.suppress(Exception):
                client.close()
        if self._store is not None:
            store, self._store = self._store, None
            store.close()

    # -- state ---------------------------------------------------------------------------------------

    @property
    def state_path(self) -> Path | str | None:
        """The state file or postgresql:// URL; None with `--state none`."""
        if callable(self._state_path):
            self._state_path = self._state_path()
        return self._state_path

    @property
    def state_shown(self) -> str | None:
        """The state store as messages show it: the file, or the URL with its password masked."""
        location = self.state_path
        if location is None:
            return None
        if isinstance(location, str):
            from rtppctl.dburl import mask  # noqa: PLC0415

            return mask(location)
        return str(location)

    @property
    def store(self) -> StateStore | None:
        """The state store, opened on first use; None with `--state none`."""
        if self._store is None and self.state_path is not None:
            from rtppctl.relays.store import StateStore  # noqa: PLC0415 - sqlite3 only when state is used

            self._store = StateStore.open(self.state_path)
            self._note(f"state: {self.state_shown}")
        return self._store

    def node_info(self, member: Member) -> NodeInfo:
        """What is known about `member`: its health, capabilities and last round trip."""
        from rtppctl.relays.health import Health, NodeInfo  # noqa: PLC0415

        if member.set_id is not None:
            self._refresh()  # a --target is never in the store: a one-shot `-t` does not open it
        key = (member.set_id, member.node.url)
        record = self._records.get(key)
        if record is None:
            # A --target's NodeInfo lives in memory only (set None: it belongs to no set).
            record = NodeInfo(member.set_id, member.node.url, Health(), None, None, self._clock())
            self._records[key] = record
        return record

    def _refresh(self) -> None:
        now = time.monotonic()
        if self._records_read_at is not None and now - self._records_read_at < REFRESH_SECONDS:
            return
        self._records_read_at = now
        store = self.store
        if store is None:
            return
        configured = {(sid, node.url) for sid, nodes in self.relay_sets.sets.items() for node in nodes}
        seen = []
        for record in store.nodes():
            key = (record.set_id, record.url)
            known = self._records.get(key)
            self._records[key] = record
            # Only a change to what this run knew is news; the first read is where it starts.
            if known is not None and key in configured:
                seen.append(self._seen(known, record))
        self._report(seen)

    def _seen(self, known: NodeInfo, stored: NodeInfo) -> StatusEvent | None:
        """The status event of a change another process made: `known` is what this run had,
        `stored` what the state store has now."""
        from rtppctl.relays.health import status_event  # noqa: PLC0415

        return status_event(known.health.state, stored.health.state, time=self._clock(), socket=stored.url,
                            set_id=stored.set_id, reason=SEEN_IN_STORE)

    def _report(self, events: Sequence[StatusEvent | None]) -> None:
        for event in events:
            if event is not None and self._on_status is not None:
                self._on_status(event)

    def may_probe(self, member: Member, event: Event | None = None) -> bool:
        """Whether the health table lets `event` (default: an operator's probe, as `ping` sends)
        probe the node now; a question, nothing is written. A node that is off: no."""
        from rtppctl.relays.health import Event  # noqa: PLC0415

        return self._ask(member, Event.OPERATOR_PROBE if event is None else event, self._clock())

    def _ask(self, member: Member, event: Event, now: float) -> bool:
        """Whether the table has the node probed on `event` (a question: nothing is written)."""
        from rtppctl.relays.health import Action, apply  # noqa: PLC0415

        if member.set_id is None:
            return True  # a --target has no health: the operator named it, it is asked
        transition = apply(self.node_info(member).health, event, now, disable_timeout=self.relay_sets.disable_timeout,
                           socket=member.node.url, set_id=member.set_id)
        return Action.PROBE in transition.actions

    def _event(self, member: Member, event: Event, reason: str | None = None, *,
               found: RelayCapabilities | None = None, quiet: bool = False) -> tuple[NodeInfo, StatusEvent | None]:
        """Feed `event` to the node's health table, on the record as stored now (another process
        may have changed it since this run read it: that change is reported first), keep what a
        probe `found` where the table says so, and report the status event it raises, unless
        `quiet` (the caller shows it). The record written, and that event."""
        from rtppctl.relays.health import Action, apply  # noqa: PLC0415

        cached = self.node_info(member)
        if member.set_id is None:
            # A --target is not part of a set: only what a probe learned about it is kept (this run).
            record = self._learned(cached, found)
            self._records[(member.set_id, member.node.url)] = record
            return record, None
        set_id = member.set_id
        now = self._clock()
        seen: list[StatusEvent | None] = []
        raised: list[StatusEvent | None] = []

        def change(stored: NodeInfo | None) -> NodeInfo:
            seen.clear()  # the store may run this again, on a record read again
            raised.clear()
            current = cached
            if stored is not None:
                seen.append(self._seen(cached, stored))
                current = stored
            transition = apply(current.health, event, now, disable_timeout=self.relay_sets.disable_timeout,
                               socket=member.node.url, set_id=set_id, reason=reason)
            raised.append(transition.status_event)
            record = replace(current, health=transition.health, updated_at=now)
            if Action.STORE_CAPABILITIES in transition.actions:
                record = self._learned(record, found)
            return record

        store = self.store
        record = change(None) if store is None else store.update_node(set_id, member.node.url, change)
        self._records[(set_id, member.node.url)] = record
        self._report(seen if quiet else seen + raised)
        return record, raised[0]

    @staticmethod
    def _learned(record: NodeInfo, found: RelayCapabilities | None) -> NodeInfo:
        if found is not None:
            record = replace(record, capabilities=found.capabilities, last_rtt_ms=found.rtt_ms)
        return record

    @contextlib.contextmanager
    def capturing_status(self) -> Iterator[list[StatusEvent]]:
        """Status events inside the block go into the list yielded instead of `on_status`: for a
        caller that reports them its own way (`listen --status-interval`, `show --watch`)."""
        changes: list[StatusEvent] = []
        previous, self._on_status = self._on_status, changes.append
        try:
            yield changes
        finally:
            self._on_status = previous

    def enable(self, url: str, mode: int,
               set_id: int | None = None) -> list[tuple[Member, NodeInfo, NodeInfo, StatusEvent | None]]:
        """MI rtpproxy_enable: `mode` 0 (off for good), 1 (on, no probe), 2 (probing mode) for the
        node `url` in set `set_id`, or in every set holding it; (member, before, after, the status
        event it raised) per node. The event is returned, not reported: the caller shows it."""
        from rtppctl.relays.health import Event  # noqa: PLC0415

        event = {0: Event.ENABLE_OFF, 1: Event.ENABLE_ON, 2: Event.ENABLE_PROBING}.get(mode)
        if event is None:
            raise InputError(f"enable takes 0 (off), 1 (on) or 2 (probing), not {mode}")
        sets = self.relay_sets.sets
        if set_id is not None and set_id not in sets:
            self.members(set_id=set_id)  # raises, naming the sets there are
        members = [Member(sid, node) for sid in sorted(sets) if set_id in (None, sid)
                   for node in sets[sid] if node.url == url]
        if not members:
            where = f"set {set_id}" if set_id is not None else "any set"
            known = sorted({node.url for sid in sets if set_id in (None, sid) for node in sets[sid]})
            raise InputError(
                f"no relay {url!r} in {where}{self.relay_sets.origin}",
                "give the url exactly as configured, without |advertised or =weight"
                + (f" (configured: {', '.join(known)})" if known else ""),
            )
        changed = []
        for member in members:
            before = self.node_info(member)
            after, raised = self._event(member, event, quiet=True)
            changed.append((member, before, after, raised))
        return changed

    # -- probing -------------------------------------------------------------------------------------

    def each(self, members: Sequence[Member], work: Callable[[RelayClient], T]) -> list[ProbeResult[T]]:
        """Run `work` on every member at once over the run's channels; one result per member, in
        order. A node in several sets is asked once. A failed node's channel is dropped."""
        from rtppctl.net.probe import probe_nodes  # noqa: PLC0415

        unique: dict[str, NodeSpec] = {}
        for member in members:
            unique.setdefault(member.node.url, member.node)
        nodes = list(unique.values())
        parallel = {} if self._probe_parallel is None else {"parallel": self._probe_parallel}
        results = probe_nodes(nodes, work, connect=lambda node: contextlib.nullcontext(self.client(node)), **parallel)
        by_url = {result.node.url: result for result in results}
        for result in results:
            if not result.ok and isinstance(result.error, TransportError):
                self._drop_client(result.node)
        return [by_url[member.node.url] for member in members]

    def probe(self, members: Sequence[Member]) -> list[ProbeResult[RelayCapabilities] | None]:
        """An operator's probe (`show --probe`, `listen --status-interval`): the module's probe
        (§2.1) on every member the table lets be probed, at once, each answer fed to its health.
        One result per member, in order; None for a node the table does not probe (off)."""
        from rtppctl.relays.health import Event  # noqa: PLC0415

        return self._probe(members, Event.OPERATOR_PROBE)

    def _probe(self, members: Sequence[Member], asked: Event) -> list[ProbeResult[RelayCapabilities] | None]:
        """Probe the members the table says to probe on the question `asked`, and feed each one
        the answer to that question."""
        from rtppctl.net.probe import module_probe  # noqa: PLC0415
        from rtppctl.relays.health import outcome  # noqa: PLC0415

        now = self._clock()
        wanted = [m for m in members if self._ask(m, asked, now)]
        if not wanted:
            return [None] * len(members)
        results = dict(zip([(m.set_id, m.node.url) for m in wanted], self.each(wanted, module_probe), strict=True))
        for member in wanted:
            result = results[(member.set_id, member.node.url)]
            if result.ok and result.answer is not None:
                self._event(member, outcome(asked, True), found=result.answer)
            else:
                failure = result.error.message if result.error is not None else "no answer"
                self._event(member, outcome(asked, False), f"probe failed: {failure}")
        return [results.get((m.set_id, m.node.url)) for m in members]

    def observe_probe(self, member: Member, found: RelayCapabilities | None, failure: str | None) -> None:
        """Feed the answer to a probe an operator made on their own (`ping`) to the node's health:
        what it `found`, or why it failed (`failure`). The table judges it as any operator's probe."""
        from rtppctl.relays.health import Event, outcome  # noqa: PLC0415

        if failure is None and found is not None:
            self._event(member, outcome(Event.OPERATOR_PROBE, True), found=found)
        else:
            self._event(member, outcome(Event.OPERATOR_PROBE, False), f"probe failed: {failure or 'no answer'}")

    def capabilities(self, member: Member) -> frozenset[str]:
        """The node's capabilities: cached, else probed now (a failed probe disables the node and
        raises NodeFailed)."""
        from rtppctl.relays.health import Event  # noqa: PLC0415

        known = self.node_info(member).capabilities
        if known is not None:
            return frozenset(known)
        from rtppctl.net.probe import module_probe  # noqa: PLC0415

        try:
            found = module_probe(self.client(member.node))
        except (TransportError, ProxyError) as err:
            self._failed(member, err, "probe failed")
            raise NodeFailed(member, err) from None
        record, _ = self._event(member, Event.PROBE_OK, found=found)
        return frozenset(record.capabilities or ())

    # -- selection -----------------------------------------------------------------------------------

    def select(self, call_id: str, set_id: int | None = None, *, exclude: Mapping[str, str] | None = None) -> Member:
        """The node the module picks for `call_id` in the set (§3), re-probing the disabled nodes
        whose time has come; nodes in `exclude` (url -> why it failed during this command) count
        as disabled. TransportError when no node of the set is usable."""
        from rtppctl.proto.select import choose  # noqa: PLC0415

        members = self.members(set_id=set_id)
        skipped = dict(exclude or {})
        self._recheck(members, skipped)
        choice = choose(call_id, self._candidates(members, skipped))
        if choice.index is None and len(members) > 1:
            # None enabled: the module re-probes every node once and tries again (a set of one
            # node has no such step, select_rtpp_node's first case).
            self._recheck(members, skipped, none_enabled=True)
            choice = choose(call_id, self._candidates(members, skipped))
        if choice.index is None:
            raise self._none_available(members, skipped)
        member = members[choice.index]
        self._note(f"relay: {member.node.url} for call {call_id!r} (set {member.set_id}, hash {choice.hash}, {choice.reason})")
        return member

    def first_enabled(self, set_id: int | None = None) -> Member:
        """The first usable node of the set in configuration order (after due re-probes)."""
        members = self.members(set_id=set_id)
        self._recheck(members, {})
        for member in members:
            if self.node_info(member).health.selectable:
                return member
        raise self._none_available(members, {})

    def _candidates(self, members: Sequence[Member], skipped: Mapping[str, str]) -> list[Candidate]:
        from rtppctl.proto.select import Candidate  # noqa: PLC0415

        return [Candidate(m.node.weight, self.node_info(m).health.selectable and m.node.url not in skipped) for m in members]

    def _recheck(self, members: Sequence[Member], skipped: Mapping[str, str], *, none_enabled: bool = False) -> None:
        """Selection's probes: the table is asked about each node (SELECTION, or NONE_ENABLED when
        no node of the set is enabled) and the ones it says are probed; nodes that failed during
        this command are left alone."""
        from rtppctl.relays.health import Event  # noqa: PLC0415

        asked = Event.NONE_ENABLED if none_enabled else Event.SELECTION
        self._probe([m for m in members if m.node.url not in skipped], asked)

    def _none_available(self, members: Sequence[Member], skipped: Mapping[str, str]) -> TransportError:
        from rtppctl.relays.health import State  # noqa: PLC0415

        now = self._clock()
        states = []
        for member in members:
            health = self.node_info(member).health
            if member.node.url in skipped:
                states.append(f"{member.node.url} failed: {skipped[member.node.url]}")
            elif health.state is State.OFF:
                states.append(f"{member.node.url} off")
            else:
                wait = f", recheck in {max(0, round(health.recheck_at - now))} s" if health.recheck_at else ""
                states.append(f"{member.node.url} {health.state.value}{wait}")
        set_id = members[0].set_id if members else None
        return TransportError(
            f"no relay of set {set_id} is available: {'; '.join(states)}",
            "see rtppctl show; rtppctl enable URL 1 puts a relay back at once",
        )

    # -- running commands ----------------------------------------------------------------------------

    def attempt(self, member: Member, work: Callable[[RelayClient], T], *, letter: str | None = None) -> T:
        """`work` on the member's channel. No usable reply (or `E7`-`E10` to `U`) disables the node
        and raises NodeFailed naming it; any other error passes through unchanged."""
        return self.guarded(member, lambda: work(self.client(member.node)), letter=letter)

    def guarded(self, member: Member, work: Callable[[], T], *, letter: str | None = None) -> T:
        """`work`, which talks to `member` by its own means (a pipelined engine), judged as
        `attempt` judges its channel's commands."""
        try:
            return work()
        except NodeFailed:
            raise  # already counted (the capability probe inside `work`)
        except TransportError as err:
            self._failed(member, err, "no usable reply")
            # A call's commands (every letter but U) stay on the node holding its session, as in
            # the module; commands with no letter (raw, probes) are about the node itself.
            hint = None if letter in (None, "U") else (
                f"the call's session is on {member.node.url}; rtppctl does not look it up on another relay "
                "(see rtppctl show)")
            raise NodeFailed(member, err, hint) from None
        except ProxyError as err:
            if letter == "U" and err.code in NODE_FAILURE_CODES:
                self._failed(member, err, f"E{err.code} to U")
                raise NodeFailed(member, err) from None
            raise

    def _failed(self, member: Member, err: TransportError | ProxyError, what: str) -> None:
        from rtppctl.relays.health import Event  # noqa: PLC0415

        if isinstance(err, TransportError):
            self._drop_client(member.node)
        self._event(member, Event.COMMAND_FAILED, f"{what}: {err.message}")

    def offer(self, call_id: str, work: Callable[[Member, RelayClient], T], *,
              targets: Sequence[str] | None = None, set_id: int | None = None,
              read: LedgerEntry | None = _UNREAD) -> T:
        """An offer: to the target, else to the node selection picks; when that node fails, to the
        node the module would pick next, until one succeeds or none is left. `read` is the call's
        ledger entry (or None) when the caller has read it already."""
        target = self.one_target(targets)
        if target is not None:
            return self.attempt(target, lambda client: work(target, client), letter="U")
        failed: dict[str, str] = {}
        # A call the ledger knows (a re-INVITE, a late offer's second U) stays on its node while
        # that node is usable, even if the weights changed since.
        entry = self.ledger(call_id) if read is _UNREAD else read
        if entry is not None:
            known = self.member_of(entry)
            if known.set_id == (self.relay_sets.default_set if set_id is None else set_id) and self.node_info(known).health.selectable:
                self._note(f"relay: {known.node.url} for call {call_id!r} (the ledger: its earlier offer went there)")
                try:
                    return self.attempt(known, lambda client: work(known, client), letter="U")
                except NodeFailed as err:
                    failed[known.node.url] = err.message
        while True:
            # Raises, listing every node and why, once no node is left to try.
            member = self.select(call_id, set_id, exclude=failed)
            try:
                return self.attempt(member, lambda client, m=member: work(m, client), letter="U")
            except NodeFailed as err:
                failed[member.node.url] = err.message
                self._note(f"relay: {member.node.url} failed ({err.message}); the offer goes to the next node")

    def for_call(self, call_id: str | None, *, targets: Sequence[str] | None = None,
                 set_id: int | None = None) -> Member:
        """The node a call's command goes to: the target, else the node the ledger has for the
        call (even if it is disabled now, or no longer configured), else the hash's node (without
        a Call-ID: the first enabled node)."""
        target = self.one_target(targets)
        if target is not None:
            return target
        if call_id is None:
            return self.first_enabled(set_id)
        entry = self.ledger(call_id)
        if entry is not None:
            member = self.member_of(entry)
            self._note(f"relay: {member.node.url} for call {call_id!r} (the ledger: its offer went there)")
            return member
        return self.select(call_id, set_id)

    def member_of(self, entry: LedgerEntry) -> Member:
        """The node holding the call of a ledger `entry`: its set's node, or (a target, or a node
        no longer configured) one rebuilt from the entry."""
        sets = self.relay_sets.sets
        for node in sets.get(entry.set_id, ()) if entry.set_id is not None else ():
            if node.url == entry.node_url:
                return Member(entry.set_id, node)
        # A target, or a node no longer configured: rebuilt from the entry.
        from rtppctl.proto.url import parse_node  # noqa: PLC0415

        node = parse_node(entry.node_url)
        if entry.advertised:
            node = replace(node, advertised=entry.advertised)
        return Member(None, node)

    # -- the ledger ----------------------------------------------------------------------------------

    def ledger(self, call_id: str) -> LedgerEntry | None:
        store = self.store
        return store.session(call_id) if store is not None else None

    def ledger_by_tag(self, tag: str) -> LedgerEntry | None:
        """The call a notification's tag belongs to, when rtppctl set it up."""
        store = self.store
        return store.session_by_tag(tag) if store is not None else None

    def tag_holder(self, tag: str, call_id: str) -> LedgerEntry | None:
        """The live call other than `call_id` whose notify or DTMF tag is `tag`, if any (an
        entry unused for longer than the ledger ttl is not live: the next write prunes it)."""
        entry = self.ledger_by_tag(tag)
        if entry is None or entry.call_id == call_id or entry.last_used_at < self._clock() - self.relay_sets.ledger_ttl:
            return None
        return entry

    def remember(self, entry: LedgerEntry, *, replacing: LedgerEntry | None = _UNREAD, offer: bool = True,
                 take_tags: bool = False) -> None:
        """Keep a call's entry (a new offer replaces the old one) and drop entries unused too
        long, in one transaction. `replacing` is the entry read before the relay was asked (None:
        none): when the call changed meanwhile, nothing is written and `store.LedgerChanged` is
        raised (an offer may still replace an entry of its own node and From tag: one session).
        `take_tags`: tags another call holds move to this one instead of failing."""
        store = self.store
        if store is None:
            return
        options: dict[str, Any] = {} if replacing is _UNREAD else {"replacing": replacing}
        store.write_entry(entry, unused_before=self._clock() - self.relay_sets.ledger_ttl, take_tags=take_tags,
                             strict=not offer, **options)

    def add_to_tag(self, expected: LedgerEntry, to_tag: str | None) -> LedgerEntry | None:
        """An answer's change to the entry it read (`expected`): the To tag added, the use time
        moved, in one transaction, only while the entry still names the same node and From tag;
        None when it does not (the call was removed or moved meanwhile: nothing is written)."""
        store = self.store
        if store is None:
            return None
        return store.add_to_tag(expected.call_id, node_url=expected.node_url, from_tag=expected.from_tag,
                                to_tag=to_tag, now=self._clock())

    def touch(self, call_id: str) -> None:
        store = self.store
        if store is not None:
            store.touch(call_id, self._clock())

    def forget(self, call_id: str, *, node_url: str | None = None, entry: LedgerEntry | None = None,
               unused_before: float | None = None) -> bool:
        """Drop the call's entry, in one transaction stating what it expects: with `node_url`
        (the node a `D` went to) or `entry` (the entry read before), only while the ledger still
        has the call on that node (a call another command moved meanwhile keeps its entry); with
        `unused_before`, only while it was not used since (an expiry prune must not drop a call
        another command just used)."""
        store = self.store
        if store is None:
            return False
        if entry is not None:
            node_url = entry.node_url
        return store.forget(call_id, node_url=node_url, unused_before=unused_before)

    def sessions(self) -> list[LedgerEntry]:
        store = self.store
        return store.sessions() if store is not None else []

    def now(self) -> float:
        return self._clock()

    def _note(self, text: str) -> None:
        if self._on_note is not None:
            self._on_note(text)


__all__ = ["SEEN_IN_STORE", "Member", "NodeFailed", "RelayService", "RelaySets", "RelaySources", "Reloaded"]
