"""Relay sets as operators manage them: show, enable, the session ledger, reload.

`show` is the module's MI `rtpproxy_show` with what it leaves out (advertised address,
capabilities, round trip, when a node is probed again, the calls it holds); `enable` is MI
`rtpproxy_enable`; `sessions` lists the ledger and prunes the calls relays no longer have. Each
works through the relay service and returns result dataclasses; none prints.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rtppctl.proto import command as cmd
from rtppctl.proto.errors import ProxyError, TransportError

if TYPE_CHECKING:
    from rtppctl.relays.service import Member, RelayService
    from rtppctl.relays.health import NodeInfo
    from rtppctl.relays.store import LedgerEntry


# -- show -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeState:
    """One node of a set as `show` reports it."""

    set_id: int
    url: str
    weight: int
    #: The address written into SDP instead of the relay's own (`|advertised`), if any.
    advertised: str | None
    #: "enabled", "disabled", "probing" or "off".
    state: str
    #: When a disabled or probing node is probed again (seconds since the epoch); None otherwise.
    recheck_at: float | None
    #: Seconds until then, never negative (0: at the next selection); None when no recheck is due.
    recheck_in: float | None
    #: What its last successful probe found (module names); None while never probed.
    capabilities: list[str] | None
    last_rtt_ms: float | None
    #: Calls in the ledger held by this node.
    sessions: int
    #: With --probe: why the probe failed, or "off: not probed"; None when it passed.
    probe_error: str | None = None


@dataclass(frozen=True)
class SetState:
    set_id: int
    #: The set commands use without --set.
    default: bool
    nodes: list[NodeState] = field(default_factory=list)


def show(service: RelayService, set_id: int | None = None, *, probe: bool = False) -> list[SetState]:
    """Every set (or one) and its nodes; `probe` runs the module's probe on each node first, as an
    operator's probe: the health table judges each answer (a node that is off is not probed, one
    in probing mode counts only once its recheck is due)."""
    members = service.members(set_id=set_id) if set_id is not None else service.members(all_sets=True)
    errors: dict[tuple[int | None, str], str] = {}
    if probe:
        for member, result in zip(members, service.probe(members), strict=True):
            if result is None:
                errors[(member.set_id, member.node.url)] = "off: not probed"
            elif result.error is not None:
                errors[(member.set_id, member.node.url)] = result.error.message
    held = Counter((entry.set_id, entry.node_url) for entry in service.sessions())
    now = service.now()
    sets: dict[int, SetState] = {}
    for member in members:
        assert member.set_id is not None  # members of sets, never targets
        state = sets.setdefault(member.set_id, SetState(member.set_id, member.set_id == service.relay_sets.default_set))
        state.nodes.append(_node_state(member, service.node_info(member), held, now, errors))
    return list(sets.values())


def _node_state(member: Member, record: NodeInfo, held: Counter, now: float,
                errors: dict[tuple[int | None, str], str]) -> NodeState:
    health = record.health
    recheck_in = None if health.recheck_at is None else max(0.0, health.recheck_at - now)
    key = (member.set_id, member.node.url)
    return NodeState(
        set_id=member.set_id,
        url=member.node.url,
        weight=member.node.weight,
        advertised=member.node.advertised,
        state=health.state.value,
        recheck_at=health.recheck_at,
        recheck_in=recheck_in,
        capabilities=list(record.capabilities) if record.capabilities is not None else None,
        last_rtt_ms=record.last_rtt_ms,
        sessions=held[key],
        probe_error=errors.get(key),
    )


# -- enable ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnableChange:
    """One node `enable` changed."""

    set_id: int
    url: str
    before: str
    after: str
    #: When it is probed again (probing mode); None otherwise.
    recheck_at: float | None
    #: The E_RTPPROXY_STATUS event raised, the right way round: "active" when the node became
    #: usable, "inactive" when it stopped; None when its usability did not change.
    status: str | None


def enable(service: RelayService, url: str, mode: int, set_id: int | None = None) -> list[EnableChange]:
    """MI rtpproxy_enable: 0 off for good, 1 on at once (no probe), 2 probing mode."""
    changes = []
    for member, before, after, raised in service.enable(url, mode, set_id):
        changes.append(EnableChange(
            member.set_id, member.node.url, before.health.state.value, after.health.state.value,
            after.health.recheck_at, raised.status if raised else None,
        ))
    return changes


# -- sessions -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pruned:
    """A ledger entry `sessions --prune` dropped, and why."""

    call_id: str
    node: str
    #: "expired" (unused longer than ledger_ttl) or "gone" (the relay has no such session).
    reason: str


@dataclass(frozen=True)
class SessionsResult:
    sessions: list[LedgerEntry]
    pruned: list[Pruned] = field(default_factory=list)
    #: Calls whose relay could not be asked, with the reason; kept in the ledger.
    unchecked: dict[str, str] = field(default_factory=dict)


def sessions(service: RelayService, *, prune: bool = False) -> SessionsResult:
    """The ledger, oldest offer first. `prune` drops the entries unused longer than ledger_ttl
    and asks each call's relay with a harmless query (`Q`) whether it still has the call: an
    `E50` (no such session) drops the entry; a relay that does not answer keeps it."""
    entries = service.sessions()
    if not prune:
        return SessionsResult(entries)
    pruned: list[Pruned] = []
    unchecked: dict[str, str] = {}
    now = service.now()
    ttl = service.relay_sets.ledger_ttl
    live = []
    for entry in entries:
        if entry.last_used_at < now - ttl:
            # Only while it is still unused: another command may have used the call meanwhile.
            if service.forget(entry.call_id, entry=entry, unused_before=now - ttl):
                pruned.append(Pruned(entry.call_id, entry.node_url, "expired"))
        else:
            live.append(entry)
    unreachable: dict[str, str] = {}
    for entry in live:
        # One relay that does not answer costs one timeout, not one per call it holds.
        if entry.node_url in unreachable:
            unchecked[entry.call_id] = unreachable[entry.node_url]
            continue
        try:
            gone = _session_gone(service, entry)
        except TransportError as err:
            unreachable[entry.node_url] = unchecked[entry.call_id] = err.message
            continue
        if isinstance(gone, str):
            unchecked[entry.call_id] = gone
        elif gone:
            # Only the entry the relay was asked about: a re-offer or a command on the call since
            # (another node, a later use) means the call lives on, and its entry stays.
            not_used_since = math.nextafter(entry.last_used_at, math.inf)
            if service.forget(entry.call_id, entry=entry, unused_before=not_used_since):
                pruned.append(Pruned(entry.call_id, entry.node_url, "gone"))
    return SessionsResult(service.sessions(), pruned, unchecked)


def _session_gone(service: RelayService, entry: LedgerEntry) -> bool | str:
    """True when the relay says it has no such session, False when it has, else the error it
    answered; TransportError when it does not answer."""
    line = cmd.query(entry.call_id, entry.from_tag, entry.to_tag, medianum=1)
    member = service.member_of(entry)  # the entry is in hand: no second ledger read
    reply = service.attempt(member, lambda client: client.exchange(line).reply)
    code = cmd.error_code(reply)
    if code == cmd.SESSION_NOT_FOUND:
        return True
    if code is not None:
        return ProxyError(code, command=line, node=member.node.url).message
    return False




# -- reload ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReloadResult:
    """What `reload` found in the table and did with it."""

    #: The table read: its URL (password masked) and name.
    source: str
    #: The new snapshot replaced the old one (False with --dry-run).
    applied: bool
    #: Nodes of the table now, all sets.
    nodes: int
    added: list[Any]
    removed: list[Any]
    changed: list[Any]
    #: Rows that gave no node: {"row" (its id), "set_id", "text", "length", "reason", "message"}; the
    #: row's text and set_id are bounded excerpts ("... (N characters)"), "length" the text's own length.
    bad_rows: list[dict[str, Any]]
    #: Rows used whose words do not look like socket paths, one message each.
    warnings: list[str] = field(default_factory=list)


def reload(service: RelayService, *, dry_run: bool = False, strict: bool = False) -> ReloadResult:
    """MI rtpproxy_reload: read the `db_url` table again and replace the snapshot commands use
    (the service's `reload`).

    Health and ledger entries are keyed by (set, url) and Call-ID, so the nodes that stayed keep
    theirs, and calls on a removed node still reach it through the ledger. A bad row is reported
    and the others are used, unless `strict`.
    """
    from rtppctl.proto.text import excerpt  # noqa: PLC0415
    from rtppctl.sources import ROW_ECHO  # noqa: PLC0415

    done = service.reload(dry_run=dry_run, strict=strict)
    read = done.read
    # A row is outside text of any size: bounded here, once, for the JSON and the warnings alike.
    bad = [{"row": b.number, "set_id": excerpt(b.set_id, 40), "text": excerpt(b.text, ROW_ECHO),
            "length": len(b.text) if isinstance(b.text, str) else None, "reason": b.reason,
            "message": b.describe(done.table)}
           for b in read.bad_rows]
    return ReloadResult(read.snapshot.source, done.applied, len(read.snapshot.nodes), done.changes.added,
                        done.changes.removed, done.changes.changed, bad, read.warnings)


__all__ = ["EnableChange", "NodeState", "Pruned", "ReloadResult", "SessionsResult", "SetState", "enable", "reload",
           "sessions", "show"]
