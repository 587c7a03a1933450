"""The node health table: every (standing, event) pair, the guard on probes, the status event of
every change of usability, and invariants over any run of events."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtppctl.relays.health import (
    TRANSITIONS,
    Action,
    Event,
    Health,
    InvalidTransition,
    Standing,
    State,
    StatusEvent,
    apply,
    outcome,
    status_event,
)

TOUT = 60.0
URL = "udp:127.0.0.1:22222"

#: A health of each standing, read at NOW.
NOW = 1000.0
OF_STANDING = {
    Standing.ENABLED: Health(),
    Standing.DISABLED_WAITING: Health(State.DISABLED, NOW + 30),
    Standing.DISABLED_DUE: Health(State.DISABLED, NOW - 1),
    Standing.PROBING_WAITING: Health(State.PROBING, NOW + 30),
    Standing.PROBING_DUE: Health(State.PROBING, NOW),
    Standing.OFF: Health(State.OFF),
}
QUESTIONS = (Event.SELECTION, Event.NONE_ENABLED, Event.OPERATOR_PROBE)
ANSWERS = (Event.PROBE_OK, Event.PROBE_FAILED, Event.NONE_ENABLED_PROBE_OK, Event.NONE_ENABLED_PROBE_FAILED)
ENABLES = (Event.ENABLE_OFF, Event.ENABLE_ON, Event.ENABLE_PROBING)


def step(health: Health, event: Event, now: float = NOW, tout: float = TOUT):
    return apply(health, event, now, disable_timeout=tout, socket=URL, set_id=3)


def test_every_standing_is_read_from_the_health_at_its_time():
    assert {state: health.standing(NOW, TOUT) for state, health in OF_STANDING.items()} == {s: s for s in Standing}


def test_every_pair_is_in_the_table_and_a_pair_it_lacks_raises(monkeypatch):
    # Every pair can happen: the state store can change a node between a question and its answer
    # (another process's `enable 0` while a probe is on its way), and `ping` asks any node.
    assert set(TRANSITIONS) == {(standing, event) for standing in Standing for event in Event}
    monkeypatch.delitem(TRANSITIONS, (Standing.OFF, Event.PROBE_OK))
    with pytest.raises(InvalidTransition, match="'probe ok' cannot happen to a node that is off"):
        step(Health(State.OFF), Event.PROBE_OK)


@pytest.mark.parametrize(("standing", "event"), sorted(TRANSITIONS, key=lambda pair: (pair[0].name, pair[1].name)),
                         ids=lambda value: value.name)
def test_every_pair_keeps_the_rules(standing, event):
    """The README's rules ("Relay sets"), pair by pair: off is never probed and never leaves off
    but by `enable`; probing mode is judged only once its recheck is due, save by the module's
    "no node enabled" rule; a disabled node comes back on any probe that finds it answering."""
    health = OF_STANDING[standing]
    result = step(health, event)
    state = result.health.state
    if event in QUESTIONS:
        # A question changes nothing; it only says whether to probe.
        assert result.health == health and result.status_event is None
        assert set(result.actions) <= {Action.PROBE}
    probes = Action.PROBE in result.actions
    if standing is Standing.OFF:
        assert not probes
        assert state is State.OFF or event in ENABLES
    if event is Event.SELECTION:
        # select_rtpp_node probes a node that is out once its rn_recheck_ticks <= now, and an
        # enabled node not at all (rtpp_test returns at once for it).
        assert probes == (standing in (Standing.DISABLED_DUE, Standing.PROBING_DUE))
    if event is Event.NONE_ENABLED:
        # OpenSIPS modules/rtpproxy/rtpproxy.c (8f4f1e1b), select_rtpp_node: when no node of the
        # set is enabled, "Force all to be re-detected": rtpp_test(node, 1, 1) on every node,
        # which probes whatever the recheck time (force) and returns "disabled" at once, sending
        # nothing, only for a node whose rn_recheck_ticks is MI_MAX_RECHECK_TICKS (MI enable 0).
        # So it probes disabled and probing nodes, and never one that is off.
        assert probes == (standing not in (Standing.ENABLED, Standing.OFF))
    if event is Event.OPERATOR_PROBE:
        assert probes == (standing is not Standing.OFF)
    if standing is Standing.PROBING_WAITING:
        # The guard: only enable, the "no node enabled" probe or a command that failed touch it,
        # and a failed command only moves its recheck.
        if event in (Event.PROBE_OK, Event.PROBE_FAILED):
            assert result.health == health and result.status_event is None
        elif event not in (*ENABLES, Event.NONE_ENABLED_PROBE_OK, Event.NONE_ENABLED_PROBE_FAILED):
            assert state is State.PROBING
    if event in (Event.PROBE_OK, Event.NONE_ENABLED_PROBE_OK):
        assert Action.STORE_CAPABILITIES in result.actions  # what a probe learned is kept in any state
        if standing not in (Standing.OFF, Standing.PROBING_WAITING) or event is Event.NONE_ENABLED_PROBE_OK:
            assert state is (State.OFF if standing is Standing.OFF else State.ENABLED)
    if event in (Event.PROBE_FAILED, Event.NONE_ENABLED_PROBE_FAILED, Event.COMMAND_FAILED):
        assert state is not State.ENABLED and Action.STORE_CAPABILITIES not in result.actions
    if event is Event.COMMAND_FAILED and standing is not Standing.OFF:
        assert result.health.recheck_at == NOW + TOUT  # out for another timeout
    # The health the table leaves is always a consistent one.
    assert (result.health.recheck_at is None) == (state in (State.ENABLED, State.OFF))


def test_outcome_pairs_each_question_with_its_answers():
    assert [outcome(q, ok) for q in QUESTIONS for ok in (True, False)] == [
        Event.PROBE_OK, Event.PROBE_FAILED, Event.NONE_ENABLED_PROBE_OK, Event.NONE_ENABLED_PROBE_FAILED,
        Event.PROBE_OK, Event.PROBE_FAILED]
    with pytest.raises(InvalidTransition, match="asks for no probe"):
        outcome(Event.COMMAND_FAILED, True)


def test_a_failure_disables_until_the_timeout_then_the_next_selection_probes():
    failed = step(Health(), Event.COMMAND_FAILED, now=1000.0)
    assert failed.health == Health(State.DISABLED, 1060.0)
    assert failed.status_event == StatusEvent(1000.0, URL, 3, "inactive", "disabled", "command failed")
    assert not failed.health.selectable
    assert step(failed.health, Event.SELECTION, now=1059.9).actions == ()
    due = step(failed.health, Event.SELECTION, now=1060.0)
    assert due.actions == (Action.PROBE,) and due.status_event is None and due.health == failed.health
    back = step(due.health, outcome(Event.SELECTION, True), now=1061.0)
    assert back.health == Health(State.ENABLED, None) and back.status_event.status == "active"
    assert back.status_event.reason == "probe ok" and Action.STORE_CAPABILITIES in back.actions


def test_a_disabled_node_comes_back_on_any_probe_before_its_recheck():
    disabled = Health(State.DISABLED, NOW + 50)
    assert step(disabled, Event.SELECTION).actions == ()  # selection waits for the recheck
    assert step(disabled, Event.OPERATOR_PROBE).actions == (Action.PROBE,)  # an operator does not
    assert step(disabled, Event.PROBE_OK).health == Health()


def test_a_failed_recheck_waits_another_timeout():
    out = step(Health(State.DISABLED, 1000.0), Event.PROBE_FAILED, now=1005.0)
    assert out.health == Health(State.DISABLED, 1065.0) and out.status_event is None


def test_probing_mode_is_judged_only_once_its_recheck_is_due_whoever_probes():
    probing = step(Health(), Event.ENABLE_PROBING, now=2000.0).health
    assert probing == Health(State.PROBING, 2060.0)
    # Issue 15: `show --probe` then `listen --status-interval` brought it back early.
    for now in (2000.0, 2030.0, 2059.9):
        assert step(probing, Event.OPERATOR_PROBE, now).actions == (Action.PROBE,)
        early = step(probing, Event.PROBE_OK, now)
        assert early.health == probing and early.status_event is None
        assert early.actions == (Action.STORE_CAPABILITIES,)
        assert step(probing, Event.PROBE_FAILED, now).health == probing
        assert step(probing, Event.SELECTION, now).actions == ()
    assert step(probing, Event.SELECTION, 2060.0).actions == (Action.PROBE,)
    back = step(probing, Event.PROBE_OK, 2060.0)
    assert back.health == Health() and back.status_event.status == "active"
    failed = step(probing, Event.PROBE_FAILED, 2061.0)
    assert failed.health == Health(State.DISABLED, 2121.0) and failed.status_event is None
    # The module's own rule: with no node of the set enabled, its answer counts at once.
    rescued = step(probing, Event.NONE_ENABLED_PROBE_OK, 2001.0)
    assert rescued.health == Health() and rescued.status_event.reason == "probe ok, no node of the set was enabled"


def test_enable_0_1_2_as_the_mi_command_with_events_the_right_way_round():
    off = step(Health(), Event.ENABLE_OFF)
    assert off.health == Health(State.OFF, None)
    assert off.status_event == StatusEvent(NOW, URL, 3, "inactive", "off", "enable 0")
    assert not off.health.recheck_due(10**12)
    probing = step(off.health, Event.ENABLE_PROBING, now=2000.0)
    assert probing.health == Health(State.PROBING, 2060.0) and probing.status_event is None
    on = step(Health(State.OFF), Event.ENABLE_ON)
    assert on.health == Health(State.ENABLED, None) and on.status_event.status == "active"
    assert Action.PROBE not in on.actions
    again = step(Health(), Event.ENABLE_ON)
    assert again.status_event is None  # no event when nothing changes


def test_enable_2_on_an_enabled_node_takes_it_out():
    out = step(Health(), Event.ENABLE_PROBING, now=0.0)
    assert out.health == Health(State.PROBING, TOUT) and out.status_event.status == "inactive"
    assert out.status_event.state == "probing"


def test_the_status_event_has_one_record_shape():
    event = StatusEvent(1700000000.25, URL, 1, "inactive", "disabled", "no usable reply: timeout")
    assert event.as_record() == {"type": "status", "time": 1700000000.25, "socket": URL, "set": 1,
                                 "status": "inactive", "state": "disabled", "reason": "no usable reply: timeout"}
    assert list(event.as_record()) == ["type", "time", "socket", "set", "status", "state", "reason"]
    # A change another process made goes through the same function as the table's.
    seen = status_event(State.ENABLED, State.OFF, time=5.0, socket=URL, set_id=0, reason="seen")
    assert seen == StatusEvent(5.0, URL, 0, "inactive", "off", "seen")
    assert status_event(State.DISABLED, State.OFF, time=5.0, socket=URL, set_id=0, reason="seen") is None


@given(st.lists(st.tuples(st.sampled_from(list(Event)), st.floats(0, 100)), max_size=40), st.floats(0, 1e6))
def test_invariants_hold_over_any_run_of_events(events, start):
    health, now, enabled = Health(), start, True
    for event, later in events:
        now += later
        before = health
        result = step(health, event, now)
        health = result.health
        assert health.selectable == (health.state is State.ENABLED)
        assert (health.recheck_at is None) == (health.state in (State.ENABLED, State.OFF))
        if result.status_event is not None:
            raised = result.status_event
            assert raised.status == ("active" if health.selectable else "inactive") and enabled != health.selectable
            assert (raised.time, raised.socket, raised.set, raised.state) == (now, URL, 3, health.state.value)
        else:
            assert enabled == health.selectable
        if before.state is State.OFF and event not in ENABLES:
            assert health == before  # off stays off, untouched
        enabled = health.selectable


@pytest.mark.parametrize("tout", [0, -1, -3600])
def test_a_disable_timeout_of_zero_or_less_makes_every_selection_probe_again(tout):
    # OpenSIPS rtpproxy.c sets recheck = now + rtpproxy_disable_tout whatever its sign (§2.2).
    failed = step(Health(), Event.COMMAND_FAILED, now=1000.0, tout=tout)
    assert failed.health == Health(State.DISABLED, 1000.0 + tout) and not failed.health.selectable
    assert failed.health.recheck_due(1000.0, tout)
    assert step(failed.health, Event.SELECTION, now=1000.0, tout=tout).actions == (Action.PROBE,)
    still = step(failed.health, Event.PROBE_FAILED, now=1001.0, tout=tout)
    assert still.health.recheck_due(1001.0, tout)
    # A recheck time an earlier run stored with a longer timeout does not hold the node out.
    stored = Health(State.DISABLED, 5000.0)
    assert not stored.recheck_due(1000.0, 60) and stored.recheck_due(1000.0, tout)
    probing = step(Health(), Event.ENABLE_PROBING, now=1000.0, tout=tout).health
    assert probing.recheck_due(1000.0, tout)
    assert step(probing, Event.PROBE_OK, now=1000.0, tout=tout).health == Health()
    # Enabled and off are never due, whatever the timeout.
    assert not Health().recheck_due(1000.0, tout) and not Health(State.OFF).recheck_due(1000.0, tout)
