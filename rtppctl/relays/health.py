"""A relay node's health, as one table of (state, event) -> (actions, next state).

The OpenSIPS module keeps a node enabled, or disabled until a recheck time (after a failure, or by
MI `rtpproxy_enable url 2`, "probing mode"), or disabled for good (`enable 0`); the first selection
after the recheck time probes the node again (protocol.md §2.2, §11). Every rule is a row of
`TRANSITIONS`, in the manner of h2's state machine: a pair that is not in the table is a bug and
raises. Pure: the caller supplies the clock and carries out the actions (probe the node, raise the
status event). The status event is the right way round here: `inactive` when a node stops being
usable, `active` when it becomes usable again (the module's MI path reports them inverted, §15).

A disable timeout (`rtpproxy_disable_tout`) of 0 or less puts the recheck time at or before the
failure, so every selection probes a node that is out, as the module's code does (§2.2: it always
sets `now + tout`; the old "-1 disables rechecks" of its changelog no longer holds);
`recheck_due` says so even of a recheck time an earlier run stored with a longer timeout.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class State(Enum):
    """Where a node stands."""

    #: Chosen by selection.
    ENABLED = "enabled"
    #: Failed; probed again by the first selection after `recheck_at`.
    DISABLED = "disabled"
    #: Taken out by `enable 2`; probed again after `recheck_at`, back by itself when it answers.
    PROBING = "probing"
    #: Taken out by `enable 0`; never probed until enabled again.
    OFF = "off"


class Event(Enum):
    """What can happen to a node."""

    PROBE_OK = "probe ok"
    PROBE_FAILED = "probe failed"
    #: A command got no usable reply (timeout, refused, I/O error) or E7-E10 to U (§2.2).
    COMMAND_FAILED = "command failed"
    #: Selection met the node after its recheck time.
    RECHECK_DUE = "recheck time reached"
    ENABLE_OFF = "enable 0"
    ENABLE_ON = "enable 1"
    ENABLE_PROBING = "enable 2"


class Action(Enum):
    """What the caller does on a transition."""

    #: Send V and the VF questions now; feed PROBE_OK or PROBE_FAILED back.
    PROBE = "probe"
    #: Keep the capabilities the probe learned.
    STORE_CAPABILITIES = "store capabilities"
    #: recheck_at = now + rtpproxy_disable_tout.
    SCHEDULE_RECHECK = "schedule recheck"
    #: recheck_at = None: no recheck (enabled, or off for good).
    CLEAR_RECHECK = "clear recheck"


_OUT = (State.DISABLED, State.PROBING)

#: Every rule. A (state, event) pair that is missing cannot happen; `apply` raises on it.
TRANSITIONS: dict[tuple[State, Event], tuple[tuple[Action, ...], State]] = {
    (State.ENABLED, Event.PROBE_OK): ((Action.STORE_CAPABILITIES,), State.ENABLED),
    (State.ENABLED, Event.PROBE_FAILED): ((Action.SCHEDULE_RECHECK,), State.DISABLED),
    (State.ENABLED, Event.COMMAND_FAILED): ((Action.SCHEDULE_RECHECK,), State.DISABLED),
    **{(state, Event.RECHECK_DUE): ((Action.PROBE,), state) for state in _OUT},
    **{(state, Event.PROBE_OK): ((Action.STORE_CAPABILITIES, Action.CLEAR_RECHECK), State.ENABLED) for state in _OUT},
    **{(state, Event.PROBE_FAILED): ((Action.SCHEDULE_RECHECK,), State.DISABLED) for state in _OUT},
    # A command can still reach a node that is out: an answer follows its offer's node (ledger).
    **{(state, Event.COMMAND_FAILED): ((Action.SCHEDULE_RECHECK,), state) for state in _OUT},
    (State.OFF, Event.COMMAND_FAILED): ((), State.OFF),
    # MI rtpproxy_enable, from any state. `enable 1` does not probe: the node keeps whatever
    # capabilities earlier probes found (§11).
    **{(state, Event.ENABLE_ON): ((Action.CLEAR_RECHECK,), State.ENABLED) for state in State},
    **{(state, Event.ENABLE_PROBING): ((Action.SCHEDULE_RECHECK,), State.PROBING) for state in State},
    **{(state, Event.ENABLE_OFF): ((Action.CLEAR_RECHECK,), State.OFF) for state in State},
}


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
        """Selection must probe the node before deciding: it is out, and its time has come, or
        the `disable_timeout` in force is 0 or less (every selection probes it then)."""
        if self.state not in _OUT or self.recheck_at is None:
            return False
        return self.recheck_at <= now or (disable_timeout is not None and disable_timeout <= 0)


@dataclass(frozen=True)
class Transition:
    """The outcome of one event."""

    health: Health
    actions: tuple[Action, ...]
    #: "active" when the node became usable, "inactive" when it stopped being usable, else None
    #: (the E_RTPPROXY_STATUS event, the right way round).
    status: str | None


def apply(health: Health, event: Event, *, now: float, disable_timeout: float) -> Transition:
    """The node's health after `event`, the actions to carry out, and the status event to raise."""
    try:
        actions, state = TRANSITIONS[(health.state, event)]
    except KeyError:
        raise InvalidTransition(f"{event.value!r} cannot happen to a node that is {health.state.value}") from None
    recheck_at = health.recheck_at
    if Action.SCHEDULE_RECHECK in actions:
        recheck_at = now + disable_timeout
    if Action.CLEAR_RECHECK in actions:
        recheck_at = None
    was, is_now = health.state is State.ENABLED, state is State.ENABLED
    status = None if was == is_now else ("active" if is_now else "inactive")
    return Transition(Health(state, recheck_at), actions, status)


__all__ = ["TRANSITIONS", "Action", "Event", "Health", "InvalidTransition", "State", "Transition", "apply"]
