"""The node health table: every rule, the impossible pairs, and invariants over any run of events."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtppctl.relays.health import TRANSITIONS, Action, Event, Health, InvalidTransition, State, apply

TOUT = 60.0


def step(health: Health, event: Event, now: float = 1000.0):
    return apply(health, event, now=now, disable_timeout=TOUT)


def test_the_only_missing_pairs_are_the_impossible_ones():
    missing = {(state, event) for state in State for event in Event} - set(TRANSITIONS)
    assert missing == {
        (State.ENABLED, Event.RECHECK_DUE),  # only a node that is out has a recheck time
        (State.OFF, Event.RECHECK_DUE),  # off for good is never probed
        (State.OFF, Event.PROBE_OK),
        (State.OFF, Event.PROBE_FAILED),
    }
    for state, event in missing:
        with pytest.raises(InvalidTransition, match=event.value):
            step(Health(state), event)


def test_a_failure_disables_until_the_timeout_then_the_next_selection_probes():
    failed = step(Health(), Event.COMMAND_FAILED, now=1000.0)
    assert failed.health == Health(State.DISABLED, 1060.0) and failed.status == "inactive"
    assert not failed.health.selectable
    assert not failed.health.recheck_due(1059.9) and failed.health.recheck_due(1060.0)
    due = step(failed.health, Event.RECHECK_DUE, now=1061.0)
    assert due.actions == (Action.PROBE,) and due.status is None
    back = step(due.health, Event.PROBE_OK, now=1061.0)
    assert back.health == Health(State.ENABLED, None) and back.status == "active"
    assert Action.STORE_CAPABILITIES in back.actions


def test_a_failed_recheck_waits_another_timeout():
    out = step(Health(State.DISABLED, 1000.0), Event.PROBE_FAILED, now=1005.0)
    assert out.health == Health(State.DISABLED, 1065.0) and out.status is None


def test_enable_0_1_2_as_the_mi_command_with_events_the_right_way_round():
    off = step(Health(), Event.ENABLE_OFF)
    assert off.health == Health(State.OFF, None) and off.status == "inactive"
    assert not off.health.recheck_due(10**12)
    probing = step(off.health, Event.ENABLE_PROBING, now=2000.0)
    assert probing.health == Health(State.PROBING, 2060.0) and probing.status is None
    returned = step(probing.health, Event.PROBE_OK)
    assert returned.health.state is State.ENABLED and returned.status == "active"
    on = step(Health(State.OFF), Event.ENABLE_ON)
    assert on.health == Health(State.ENABLED, None) and on.status == "active" and Action.PROBE not in on.actions
    again = step(Health(), Event.ENABLE_ON)
    assert again.status is None  # no event when nothing changes


def test_enable_2_on_an_enabled_node_takes_it_out():
    out = step(Health(), Event.ENABLE_PROBING, now=0.0)
    assert out.health == Health(State.PROBING, TOUT) and out.status == "inactive"


@given(st.lists(st.sampled_from(list(Event)), max_size=40), st.floats(0, 1e6))
def test_invariants_hold_over_any_run_of_possible_events(events, start):
    health, now, enabled = Health(), start, True
    for number, event in enumerate(events):
        now += number
        if (health.state, event) not in TRANSITIONS:
            continue
        result = apply(health, event, now=now, disable_timeout=TOUT)
        health = result.health
        assert health.selectable == (health.state is State.ENABLED)
        assert (health.recheck_at is None) == (health.state in (State.ENABLED, State.OFF))
        if result.status is not None:
            assert result.status == ("active" if health.selectable else "inactive") and enabled != health.selectable
        else:
            assert enabled == health.selectable
        enabled = health.selectable


@pytest.mark.parametrize("tout", [0, -1, -3600])
def test_a_disable_timeout_of_zero_or_less_makes_every_selection_probe_again(tout):
    # OpenSIPS rtpproxy.c sets recheck = now + rtpproxy_disable_tout whatever its sign (§2.2).
    failed = apply(Health(), Event.COMMAND_FAILED, now=1000.0, disable_timeout=tout)
    assert failed.health == Health(State.DISABLED, 1000.0 + tout) and not failed.health.selectable
    assert failed.health.recheck_due(1000.0, tout)
    still = apply(failed.health, Event.PROBE_FAILED, now=1001.0, disable_timeout=tout)
    assert still.health.recheck_due(1001.0, tout)
    # A recheck time an earlier run stored with a longer timeout does not hold the node out.
    stored = Health(State.DISABLED, 5000.0)
    assert not stored.recheck_due(1000.0, 60) and stored.recheck_due(1000.0, tout)
    probing = apply(Health(), Event.ENABLE_PROBING, now=1000.0, disable_timeout=tout).health
    assert probing.recheck_due(1000.0, tout)
    # Enabled and off are never due, whatever the timeout.
    assert not Health().recheck_due(1000.0, tout) and not Health(State.OFF).recheck_due(1000.0, tout)
