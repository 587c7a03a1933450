"""A relay node's health, as one table of (standing, event) -> (actions, next state), and the
status event every change of usability raises.

The OpenSIPS module keeps a node enabled, or disabled until a recheck time (after a failure, or by
MI `rtpproxy_enable url 2`, "probing mode"), or disabled for good (`enable 0`); the first selection
after the recheck time probes the node again (docs/protocol.md §2.2, §11). Every rule is a row of
`TRANSITIONS`, in the manner of h2's state machine: a pair that is not in the table is a bug and
raises. Pure: the caller supplies the clock and the node's name, and carries out the actions
(probe the node, keep what the probe learned) and nothing else; whether a probe may be sent, and
whether its answer counts, is decided here and only here.

The rule the table keeps: a node that is off is never probed; one in probing mode is judged only
once its recheck time has come, whoever asked for the probe (selection, `ping`, `show --probe`,
`listen --status-interval`); a disabled one comes back as soon as any probe finds it answering.
The one exception is the module's own: when selection finds no node of a set enabled, it probes
every node that is not off, and their answers count whatever their recheck time
(`select_rtpp_node`, §3 step 3). So the table reads a node that is out as "waiting" or "due"
(`Standing`), and the answer to a probe says which question it answers (`outcome`).

A disable timeout (`rtpproxy_disable_tout`) of 0 or less puts the recheck time at or before the
failure, so every selection probes a node that is out, as the module's code does (§2.2: it always
sets `now + tout`; the old "-1 disables rechecks" of its changelog no longer holds);
`recheck_due` says so even of a recheck time an earlier run stored with a longer timeout.

Every change of usability yields one `StatusEvent` (E_RTPPROXY_STATUS, the right way round:
`inactive` when a node stops being usable, `active` when it becomes usable again; the module's MI
path reports them inverted, §15), whether this process made the change (`apply`) or another one
did and it was seen in the state store (`status_event`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar


class State(Enum):
    """Where a node stands, as the state store keeps it."""

    #: Chosen by selection.
    ENABLED = "enabled"
    #: Failed; probed again by the first selection after `recheck_at`.
    DISABLED = "disabled"
    #: Taken out by `enable 2`; probed again after `recheck_at`, back by itself when it answers.
    PROBING = "probing"
    #: Taken out by `enable 0`; never probed until enabled again.
    OFF = "off"


class Standing(Enum):
    """A node's state as the table reads it: for a node that is out, whether its recheck is due."""

    ENABLED = "enabled"
    DISABLED_WAITING = "disabled, recheck not due"
    DISABLED_DUE = "disabled, recheck due"
    PROBING_WAITING = "probing, recheck not due"
    PROBING_DUE = "probing, recheck due"
    OFF = "off"


class Event(Enum):
    """What can happen to a node: a question (may it be probed now?) or an answer or a command."""

    #: Selection met the node (the module's walk re-probes a node that is out once its time has come).
    SELECTION = "selection"
    #: Selection found no node of the set enabled: the module re-probes every node but the ones
    #: off, whatever their recheck time, once, and walks again (§3 step 3).
    NONE_ENABLED = "no node of the set enabled"
    #: An operator asked for a probe: `show --probe`, `ping`, `listen --status-interval`.
    OPERATOR_PROBE = "operator probe"
    #: The node passed a probe asked by SELECTION or OPERATOR_PROBE (or the capability probe of a
    #: node nothing is known about): it counts only where the guard lets it.
    PROBE_OK = "probe ok"
    PROBE_FAILED = "probe failed"
    #: The node passed or failed the probe of NONE_ENABLED: it counts whatever the recheck time.
    NONE_ENABLED_PROBE_OK = "probe ok, no node of the set was enabled"
    NONE_ENABLED_PROBE_FAILED = "probe failed, no node of the set was enabled"
    #: A command got no usable reply (timeout, refused, I/O error) or E7-E10 to U (§2.2).
    COMMAND_FAILED = "command failed"
    ENABLE_OFF = "enable 0"
    ENABLE_ON = "enable 1"
    ENABLE_PROBING = "enable 2"


class Action(Enum):
    """What the caller does on a transition."""

    #: Send V and the VF questions now; feed `outcome(event, ok)` back.
    PROBE = "probe"
    #: Keep what the probe learned: the capabilities and the round trip.
    STORE_CAPABILITIES = "store capabilities"
    #: recheck_at = now + rtpproxy_disable_tout (done by `apply`).
    SCHEDULE_RECHECK = "schedule recheck"
    #: recheck_at = None: no recheck (enabled, or off for good; done by `apply`).
    CLEAR_RECHECK = "clear recheck"


_WAITING = (Standing.DISABLED_WAITING, Standing.PROBING_WAITING)
_DUE = (Standing.DISABLED_DUE, Standing.PROBING_DUE)
_DISABLED = (Standing.DISABLED_WAITING, Standing.DISABLED_DUE)
_PROBING = (Standing.PROBING_WAITING, Standing.PROBING_DUE)
_OUT = _DISABLED + _PROBING
#: The state a standing is of.
_STATE = {Standing.ENABLED: State.ENABLED, Standing.OFF: State.OFF,
          **{s: State.DISABLED for s in _DISABLED}, **{s: State.PROBING for s in _PROBING}}

_BACK = (Action.STORE_CAPABILITIES, Action.CLEAR_RECHECK)

#: Every rule. A (standing, event) pair that is missing cannot happen; `apply` raises on it.
TRANSITIONS: dict[tuple[Standing, Event], tuple[tuple[Action, ...], State]] = {
    # -- may the node be probed now? A question never changes the node.
    # Selection: only a node that is out and due (an enabled node is not probed before use: the
    # module's rtpp_test returns at once for it).
    **{(s, Event.SELECTION): ((), _STATE[s]) for s in (Standing.ENABLED, *_WAITING, Standing.OFF)},
    **{(s, Event.SELECTION): ((Action.PROBE,), _STATE[s]) for s in _DUE},
    # No node enabled: every node but the ones off (the module's rtpp_test(node, 1, 1) returns "disabled"
    # at once for a node disabled for ever). An enabled one is asked here only if another
    # process enabled it since: selection will find it.
    **{(s, Event.NONE_ENABLED): ((Action.PROBE,), _STATE[s]) for s in _OUT},
    (Standing.ENABLED, Event.NONE_ENABLED): ((), State.ENABLED),
    (Standing.OFF, Event.NONE_ENABLED): ((), State.OFF),
    # An operator's probe: every node but the ones off; its answer is judged below.
    **{(s, Event.OPERATOR_PROBE): ((Action.PROBE,), _STATE[s]) for s in (Standing.ENABLED, *_OUT)},
    (Standing.OFF, Event.OPERATOR_PROBE): ((), State.OFF),
    # -- the answer to a probe of selection or of an operator.
    (Standing.ENABLED, Event.PROBE_OK): ((Action.STORE_CAPABILITIES,), State.ENABLED),
    (Standing.ENABLED, Event.PROBE_FAILED): ((Action.SCHEDULE_RECHECK,), State.DISABLED),
    # A disabled node comes back as soon as any probe finds it answering: the disable timeout
    # spares a dead relay, not a live one.
    **{(s, Event.PROBE_OK): (_BACK, State.ENABLED) for s in _DISABLED},
    **{(s, Event.PROBE_FAILED): ((Action.SCHEDULE_RECHECK,), State.DISABLED) for s in _DISABLED},
    # Probing mode is judged once its recheck is due, as the operator asked (`enable 2`), and
    # not before: what an early probe learned is kept, the node stays out, its recheck unmoved.
    (Standing.PROBING_DUE, Event.PROBE_OK): (_BACK, State.ENABLED),
    (Standing.PROBING_DUE, Event.PROBE_FAILED): ((Action.SCHEDULE_RECHECK,), State.DISABLED),
    (Standing.PROBING_WAITING, Event.PROBE_OK): ((Action.STORE_CAPABILITIES,), State.PROBING),
    (Standing.PROBING_WAITING, Event.PROBE_FAILED): ((), State.PROBING),
    # The table never has a node that is off probed; an answer still comes when `ping` asks one,
    # or when `enable 0` came while a probe was on its way: it changes nothing.
    (Standing.OFF, Event.PROBE_OK): ((Action.STORE_CAPABILITIES,), State.OFF),
    (Standing.OFF, Event.PROBE_FAILED): ((), State.OFF),
    # -- the answer to the probe of "no node enabled": it counts for every node that is out.
    **{(s, Event.NONE_ENABLED_PROBE_OK): (_BACK, State.ENABLED) for s in _OUT},
    **{(s, Event.NONE_ENABLED_PROBE_FAILED): ((Action.SCHEDULE_RECHECK,), State.DISABLED) for s in _OUT},
    (Standing.ENABLED, Event.NONE_ENABLED_PROBE_OK): ((Action.STORE_CAPABILITIES,), State.ENABLED),
    (Standing.ENABLED, Event.NONE_ENABLED_PROBE_FAILED): ((Action.SCHEDULE_RECHECK,), State.DISABLED),
    (Standing.OFF, Event.NONE_ENABLED_PROBE_OK): ((Action.STORE_CAPABILITIES,), State.OFF),
    (Standing.OFF, Event.NONE_ENABLED_PROBE_FAILED): ((), State.OFF),
    # -- a command failed.
    (Standing.ENABLED, Event.COMMAND_FAILED): ((Action.SCHEDULE_RECHECK,), State.DISABLED),
    # A command can still reach a node that is out: an answer follows its offer's node (ledger).
    **{(s, Event.COMMAND_FAILED): ((Action.SCHEDULE_RECHECK,), _STATE[s]) for s in _OUT},
    (Standing.OFF, Event.COMMAND_FAILED): ((), State.OFF),
    # -- MI rtpproxy_enable, from any state. `enable 1` does not probe: the node keeps whatever
    # capabilities earlier probes found (§11).
    **{(s, Event.ENABLE_ON): ((Action.CLEAR_RECHECK,), State.ENABLED) for s in Standing},
    **{(s, Event.ENABLE_PROBING): ((Action.SCHEDULE_RECHECK,), State.PROBING) for s in Standing},
    **{(s, Event.ENABLE_OFF): ((Action.CLEAR_RECHECK,), State.OFF) for s in Standing},
}

#: The answer that goes with each question: (passed, failed).
_OUTCOMES = {
    Event.SELECTION: (Event.PROBE_OK, Event.PROBE_FAILED),
    Event.OPERATOR_PROBE: (Event.PROBE_OK, Event.PROBE_FAILED),
    Event.NONE_ENABLED: (Event.NONE_ENABLED_PROBE_OK, Event.NONE_ENABLED_PROBE_FAILED),
}


def outcome(asked: Event, ok: bool) -> Event:
    """The event to feed back after the probe `asked` led to: passed (`ok`) or failed."""
    try:
        passed, failed = _OUTCOMES[asked]
    except KeyError:
        raise InvalidTransition(f"{asked.value!r} asks for no probe") from None
    return passed if ok else failed


class InvalidTransition(Exception):
    """An event that cannot happen in the node's state: a bug in the caller."""


@dataclass(frozen=True)
class Health:
    """A node's state and, when it is out for a while, when it is probed again."""

    state: State = State.ENABLED
    #: Seconds since the epoch after which the next selection probes it; None when no recheck is due.
    recheck_at: float | None = None

    @property
    def selectable(self) -> bool:
        return self.state is State.ENABLED

    def recheck_due(self, now: float, disable_timeout: float | None = None) -> bool:
        """Its recheck time has come: it is out, and its time has come, or the `disable_timeout`
        in force is 0 or less (every selection probes it then)."""
        if self.state not in (State.DISABLED, State.PROBING) or self.recheck_at is None:
            return False
        return self.recheck_at <= now or (disable_timeout is not None and disable_timeout <= 0)

    def standing(self, now: float, disable_timeout: float) -> Standing:
        """The row of the table this health is read by at `now`."""
        if self.state is State.ENABLED:
            return Standing.ENABLED
        if self.state is State.OFF:
            return Standing.OFF
        due = self.recheck_due(now, disable_timeout)
        if self.state is State.DISABLED:
            return Standing.DISABLED_DUE if due else Standing.DISABLED_WAITING
        return Standing.PROBING_DUE if due else Standing.PROBING_WAITING


@dataclass(frozen=True)
class StatusEvent:
    """E_RTPPROXY_STATUS, the right way round: a node became usable or stopped being usable.

    Named after the module's event parameters (`socket`, `status`) with what rtppctl adds. Its
    one dict form, `as_record()`, is what `listen`, `show --watch` and `--exec` get."""

    #: Always "status": the record's type among listen's events.
    type: ClassVar[str] = "status"
    #: When the change was made, or seen in the state store (seconds since the epoch).
    time: float
    #: The node's url as configured (the module's `socket`, `rn_url`).
    socket: str
    #: The set the node belongs to.
    set: int
    #: "active" when the node became usable, "inactive" when it stopped being usable.
    status: str
    #: The node's state afterwards: "enabled", "disabled", "probing" or "off".
    state: str
    #: Why, in words: "probe ok", "no usable reply: timeout ...", "enable 0", ...
    reason: str

    def as_record(self) -> dict[str, Any]:
        """The event as JSON writes it: type, time, socket, set, status, state, reason."""
        return {"type": self.type, "time": self.time, "socket": self.socket, "set": self.set,
                "status": self.status, "state": self.state, "reason": self.reason}


def status_event(before: State, after: State, *, time: float, socket: str, set_id: int,
                 reason: str) -> StatusEvent | None:
    """The status event of a node going from `before` to `after`; None when its usability did
    not change. The one place a StatusEvent is made: by `apply`, and for a change another process
    made (seen in the state store)."""
    was, is_now = before is State.ENABLED, after is State.ENABLED
    if was == is_now:
        return None
    return StatusEvent(time, socket, set_id, "active" if is_now else "inactive", after.value, reason)


@dataclass(frozen=True)
class NodeInfo:
    """What is known about one relay node: its health, and what its probes learned (kept between
    runs by the state store for the nodes of a set; here, beside `Health`, so that a run that
    keeps no state never loads the store)."""

    #: The set the node belongs to; with `url`, the key. None for a --target, which belongs to no
    #: set: its NodeInfo lives for the run only, never in the store ("no set" is always None).
    set_id: int | None
    #: The node's URL as configured, e.g. "udp:10.0.0.5:7722".
    url: str
    #: Its health (state, and when it is probed again).
    health: Health
    #: The module capability names its last successful probe found, e.g. ("CODECS", "STATS");
    #: None while no probe has succeeded.
    capabilities: tuple[str, ...] | None
    #: Round-trip time of the last command that got a reply, in milliseconds; None before any.
    last_rtt_ms: float | None
    #: When this record was written (seconds since the epoch, the caller's clock).
    updated_at: float


@dataclass(frozen=True)
class Transition:
    """The outcome of one event."""

    health: Health
    actions: tuple[Action, ...]
    #: The status event raised, when the node became usable or stopped being usable; else None.
    status_event: StatusEvent | None


def apply(health: Health, event: Event, now: float, *, disable_timeout: float, socket: str, set_id: int,
          reason: str | None = None) -> Transition:
    """The node's health after `event` at `now`, the actions to carry out, and the status event to
    raise (for the node `socket` of set `set_id`, saying `reason`, else the event's name)."""
    standing = health.standing(now, disable_timeout)
    try:
        actions, state = TRANSITIONS[(standing, event)]
    except KeyError:
        raise InvalidTransition(f"{event.value!r} cannot happen to a node that is {standing.value}") from None
    recheck_at = health.recheck_at
    if Action.SCHEDULE_RECHECK in actions:
        recheck_at = now + disable_timeout
    if Action.CLEAR_RECHECK in actions:
        recheck_at = None
    raised = status_event(health.state, state, time=now, socket=socket, set_id=set_id,
                          reason=reason or event.value)
    return Transition(Health(state, recheck_at), actions, raised)


__all__ = ["TRANSITIONS", "Action", "Event", "Health", "NodeInfo", "InvalidTransition", "Standing", "State", "StatusEvent",
           "Transition", "apply", "outcome", "status_event"]
