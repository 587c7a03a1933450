"""Every command on a call the ledger knows marks it used, so the call outlives `ledger_ttl` after
its offer for as long as it is played to, recorded, watched or looked at (issue 15, section 4).

The call is set up through rtppctl against a real relay; its ledger entry is then aged past the
ttl in the state file, as if the offer were hours old, before the command runs; `sessions
--prune` afterwards drops what nobody used since.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace

import pytest

from rtppctl.proto.limits import DEFAULT_LEDGER_TTL
from tests.cli.helpers import cli
from tests.ua import Dialog, sdp_for

pytestmark = pytest.mark.relay

#: An offer older than the default ledger_ttl by ten minutes.
AGE = DEFAULT_LEDGER_TTL + 600


@pytest.fixture(scope="module")
def recording_relay(relays, tmp_path_factory):
    relay = relays.start(extra_args=["-r", str(tmp_path_factory.mktemp("records"))])
    (relay.workdir / "used.0").write_bytes(b"\xd5" * 800)
    return relay


@pytest.fixture
def dialog(capsys, tmp_path, recording_relay):
    call = Dialog(capsys, tmp_path, f"used-{uuid.uuid4().hex[:8]}@test", recording_relay.udp).establish()
    yield call
    call.close()


def store():
    from rtppctl.relays.store import StateStore, resolve_state_path

    return StateStore.open(resolve_state_path(None))


def age(call_id: str) -> float:
    """Make the call's entry look as if its offer and last use were AGE seconds ago; that time."""
    with store() as state:
        entry = state.session(call_id)
        assert entry is not None
        old = time.time() - AGE
        state.write_entry(replace(entry, created_at=old, last_used_at=old))
    return old


def last_used(call_id: str) -> float | None:
    with store() as state:
        entry = state.session(call_id)
    return None if entry is None else entry.last_used_at


COMMANDS = {
    "play": ("play", "used", "--to", "uac", "--count", "1"),
    "stop-play": ("stop-play", "--to", "uas"),
    "record": ("record",),
    "stop-record": ("stop-record",),
    "stats": ("stats",),
    "query": ("query", "npkts_ina"),
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_call_only_used_by_a_media_command_survives_a_prune_past_its_offers_ttl(capsys, dialog, command):
    old = age(dialog.call_id)
    done = cli(capsys, *COMMANDS[command], "--call-id", dialog.call_id, "-t", dialog.spec)
    assert done.code == 0, done.stderr
    assert last_used(dialog.call_id) > old + AGE - 60
    pruned = cli(capsys, "--json", "sessions", "--prune")
    assert pruned.code == 0, pruned.stderr
    assert dialog.call_id not in [p["call_id"] for p in pruned.json()["pruned"]]
    assert dialog.call_id in [s["call_id"] for s in pruned.json()["sessions"]]


def test_a_call_nobody_used_is_pruned_past_its_offers_ttl(capsys, dialog):
    """What the test above would see without the use: the aged entry goes."""
    age(dialog.call_id)
    pruned = cli(capsys, "--json", "sessions", "--prune")
    assert [(p["call_id"], p["reason"]) for p in pruned.json()["pruned"]] == [(dialog.call_id, "expired")]


def test_raw_with_call_id_and_answer_mark_the_call_used(capsys, dialog, tmp_path):
    old = age(dialog.call_id)
    # Without --target: the call's relay comes from the ledger, which is marked used too.
    raw = cli(capsys, "raw", "--call-id", dialog.call_id, f"Q {dialog.call_id} {dialog.from_tag};1")
    assert raw.code == 0, raw.stderr
    assert last_used(dialog.call_id) > old + AGE - 60
    old = age(dialog.call_id)
    answer = tmp_path / "again.sdp"
    answer.write_text(sdp_for(dialog.callee))
    again = cli(capsys, "answer", str(answer), "--call-id", dialog.call_id, "--from-tag", dialog.from_tag,
                "--to-tag", dialog.to_tag, "-t", dialog.spec)
    assert again.code == 0, again.stderr
    assert last_used(dialog.call_id) > old + AGE - 60


def test_stats_watch_marks_the_call_used_at_every_refresh(dialog):
    import json
    import os
    import subprocess
    import sys
    import threading

    watcher = subprocess.Popen(
        [sys.executable, "-m", "rtppctl", "--json", "stats", "--watch", "0.3", "--call-id", dialog.call_id,
         "-t", dialog.spec],
        env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = threading.Timer(30, watcher.kill)  # a watcher that stops printing cannot hang the test
    deadline.start()
    try:
        assert json.loads(watcher.stdout.readline())["type"] == "stats"
        old = age(dialog.call_id)  # after the first refresh: only a later one can mark it used again
        json.loads(watcher.stdout.readline())
        json.loads(watcher.stdout.readline())
    finally:
        deadline.cancel()
        watcher.terminate()
        watcher.wait(10)
    assert last_used(dialog.call_id) > old + AGE - 60
