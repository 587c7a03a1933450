"""The state store never loses a call and never hangs: real relays, real SQLite, real PostgreSQL.

- A lock another process holds is waited out (longer than SQLite's own 5 s wait), and given up on
  when the budget runs out, with exit 5 and the cause named.
- A PostgreSQL server that stops answering in the middle of a command ends the command within the
  budget (a forwarder that goes silent once it sees the ledger write).
- When the relay holds a session the command made and the ledger cannot record it, the session is
  deleted again (D) and the command says so: the relay keeps nothing the ledger does not know.
- An answer and an unforce of one call at once never bring the call back into the ledger, and an
  older write never lands over a re-offer that moved the call.
- Notify tags of different calls never meet in the ledger; a dialog id the user gives is kept.
- A FIFO named as the state file is refused at once, also by `offer -t`; commands that do not
  need the ledger never touch it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

import rtppctl.db as db_module
from rtppctl.proto import offer as planner
from rtppctl.relays.store import StateStore
from tests.cli.helpers import cli, cli_process
from tests.conftest import write
from tests.relays.test_store import hold_sqlite_lock

SDP = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 4000 RTP/AVP 0 8\n"
ANSWER_SDP = "v=0\no=- 2 2 IN IP4 10.0.0.2\ns=-\nc=IN IP4 10.0.0.2\nt=0 0\nm=audio 5000 RTP/AVP 0\n"

#: The budget the failing commands get here, instead of 15 s.
BUDGET = 1.5


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    return {
        "config": write(tmp_path / "config.toml", 'rtpp_notify_socket = "tcp:127.0.0.1:9"\nrtpproxy_timeout = 0.5\n'),
        "offer": write(tmp_path / "offer.sdp", SDP),
        "answer": write(tmp_path / "answer.sdp", ANSWER_SDP),
    }


def offer(capsys, files, state: str, relay, call_id: str, *extra: str):
    return cli(capsys, "--config", str(files["config"]), "--state", state, "--json", "offer", str(files["offer"]),
               "--call-id", call_id, "--from-tag", "ft", "-t", relay.udp, *extra)


def relay_has(capsys, relay, call_id: str) -> bool:
    """Whether the relay itself holds the call's session (Q of its first stream answers E50 when
    it does not; Q looks a stream up by its tag with the `;N` suffix)."""
    result = cli(capsys, "--json", "raw", "-t", relay.udp, f"Q {call_id} ft;1")
    assert result.code in (0, 3), result.stderr
    return result.json()["replies"][0]["reply"] != "E50"


def ledger(location: Path | str) -> dict[str, dict]:
    with StateStore.open(location) as store:
        return {entry.call_id: entry for entry in store.sessions()}


@pytest.fixture(params=["sqlite", "postgresql"])
def state(request, tmp_path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "state.sqlite3"
        StateStore.open(path).close()
        return str(path)
    url = request.getfixturevalue("pg_url")
    StateStore.open(url).close()
    return url


class StoreLock:
    """Another client blocking the ledger's writes (reads go on): SQLite's write lock held by
    another process, or PostgreSQL's EXCLUSIVE lock on the ledger's table in an open transaction."""

    def __init__(self, location: str) -> None:
        self.location = location
        self._holder = None

    def __enter__(self) -> StoreLock:
        if self.location.startswith("postgresql://"):
            import psycopg

            self._holder = psycopg.connect(self.location)
            self._holder.execute("LOCK TABLE rtppctl_sessions IN EXCLUSIVE MODE")
        else:
            self._holder = hold_sqlite_lock(Path(self.location), 60)
        return self

    def __exit__(self, *exc) -> None:
        if isinstance(self._holder, subprocess.Popen):
            self._holder.kill()
            self._holder.wait(10)
        else:
            self._holder.close()


# -- a lock held by another client ------------------------------------------------------------------


def test_a_sqlite_lock_held_longer_than_sqlites_own_wait_is_waited_out(capsys, relay, files, tmp_path):
    path = tmp_path / "state.sqlite3"
    StateStore.open(path).close()
    assert db_module.BUSY_TIMEOUT == 5.0 and db_module.RETRY_SECONDS == 15.0  # the documented values
    holder = hold_sqlite_lock(path, 6.5)
    try:
        started = time.monotonic()
        result = offer(capsys, files, str(path), relay, "waited@h")
        took = time.monotonic() - started
    finally:
        holder.wait(30)
    assert result.code == 0, result.stderr
    # The first try gave up after SQLite's 5 s; the next one got the lock when it went.
    assert 6.0 < took < 12
    assert ledger(path)["waited@h"].node_url == relay.udp
    assert relay_has(capsys, relay, "waited@h")


def test_when_the_ledger_write_fails_for_good_the_new_session_is_deleted_again(capsys, monkeypatch, relay, files,
                                                                                state):
    monkeypatch.setattr(db_module, "RETRY_SECONDS", BUDGET)
    assert offer(capsys, files, state, relay, "known@h").code == 0
    with StoreLock(state):
        started = time.monotonic()
        result = offer(capsys, files, state, relay, "lost@h")
        took = time.monotonic() - started
        # A re-offer of a call the ledger has on this node: the session is the ledger's already,
        # so it stays (deleting it would end a live call).
        again = offer(capsys, files, state, relay, "known@h")
    assert result.code == 5 and result.stdout == ""
    cause = ("the state file stayed locked by another process" if "sqlite" in state
             else "another session held a lock on rtppctl's tables")
    assert f"{cause} for {BUDGET:g} s; so that no call is left that the ledger does not know, the session " \
           f"{relay.udp} had just made for call 'lost@h' was deleted again (D)" in result.stderr
    assert "--state none to run without the ledger" in result.stderr
    assert took < BUDGET + 1.5
    assert not relay_has(capsys, relay, "lost@h")
    assert again.code == 5 and cause in again.stderr and "deleted again" not in again.stderr
    assert relay_has(capsys, relay, "known@h")
    assert set(ledger(state)) == {"known@h"}
    # Without the ledger the same offer goes through while the store is locked.
    with StoreLock(state):
        assert offer(capsys, files, "none", relay, "lost@h").code == 0


class DropDeletes:
    """A loopback UDP forwarder to a real relay that passes every command but `D`: a relay that
    stops answering between the offer's U and the D that would undo it."""

    def __init__(self, relay_port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.spec = f"udp:127.0.0.1:{self.sock.getsockname()[1]}"
        self.upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.upstream.connect(("127.0.0.1", relay_port))
        self.client = None
        self.dropped = 0
        threading.Thread(target=self._requests, daemon=True).start()
        threading.Thread(target=self._replies, daemon=True).start()

    def _requests(self) -> None:
        while True:
            try:
                data, self.client = self.sock.recvfrom(65535)
            except OSError:
                return
            if data.split(b" ", 2)[1:2] == [b"D"]:  # "COOKIE D callid ..."
                self.dropped += 1
                continue
            self.upstream.send(data)

    def _replies(self) -> None:
        while True:
            try:
                data = self.upstream.recv(65535)
            except OSError:
                return
            if self.client is not None:
                self.sock.sendto(data, self.client)

    def close(self) -> None:
        self.sock.close()
        self.upstream.close()


def test_when_the_undoing_delete_fails_too_the_error_says_the_relay_holds_an_unknown_call(capsys, monkeypatch,
                                                                                         relay, files, tmp_path):
    monkeypatch.setattr(db_module, "RETRY_SECONDS", BUDGET)
    path = tmp_path / "state.sqlite3"
    StateStore.open(path).close()
    port = int(relay.udp.rsplit(":", 1)[1])
    forwarder = DropDeletes(port)
    try:
        with StoreLock(str(path)):
            result = cli(capsys, "--config", str(files["config"]), "--state", str(path), "--retries", "2", "offer",
                         str(files["offer"]), "--call-id", "stuck@h", "--from-tag", "ft", "-t", forwarder.spec)
    finally:
        forwarder.close()
    assert result.code == 5, result.stderr
    assert forwarder.dropped >= 1
    assert (f"deleting the session {forwarder.spec} had just made for call 'stuck@h' failed too" in result.stderr
            and "the relay holds a call the ledger does not know" in result.stderr)
    # The hint is a command that removes it; run against the relay itself, it does.
    assert f"rtppctl --state none unforce -t {forwarder.spec} --call-id stuck@h --from-tag ft" in result.stderr
    assert relay_has(capsys, relay, "stuck@h")
    assert cli(capsys, "--state", "none", "unforce", "-t", relay.udp, "--call-id", "stuck@h",
               "--from-tag", "ft").code == 0
    assert not relay_has(capsys, relay, "stuck@h")


# -- a PostgreSQL server that stops answering ---------------------------------------------------------


class Forwarder:
    """A loopback TCP forwarder to the PostgreSQL server that goes silent, both ways, from the
    moment a client sends `freeze_on`, keeping every connection open: to the client it is a
    server that stopped answering in the middle of a command (as a stopped or hung server is)."""

    def __init__(self, target_port: int, freeze_on: bytes) -> None:
        self.target_port = target_port
        self.freeze_on = freeze_on
        self.frozen = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            server.settimeout(None)
            self.sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                return
            if from_client and self.freeze_on in data:
                self.frozen.set()
            if self.frozen.is_set():
                continue  # read and dropped: the peer's TCP sees every byte acknowledged
            try:
                sink.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self.listener.close()
        for each in self.sockets:
            each.close()


def test_a_postgresql_server_that_stops_answering_at_the_ledger_write_ends_the_command_within_the_budget(
        capsys, monkeypatch, relay, files, pg_url, pg_server):
    monkeypatch.setattr(db_module, "RETRY_SECONDS", BUDGET)
    forwarder = Forwarder(pg_server.port, b"INSERT INTO rtppctl_sessions")
    try:
        url = pg_url.replace(f":{pg_server.port}/", f":{forwarder.port}/")
        started = time.monotonic()
        result = offer(capsys, files, url, relay, "silent@h")
        took = time.monotonic() - started
        assert forwarder.frozen.is_set()
    finally:
        forwarder.close()
    assert result.code == 5, result.stderr
    assert f"the state database did not answer within {BUDGET:g} s; so that no call is left that the ledger " \
           f"does not know, the session {relay.udp} had just made for call 'silent@h' was deleted again (D)" \
           in result.stderr
    assert took < BUDGET + 1.5
    assert not relay_has(capsys, relay, "silent@h")
    assert ledger(pg_url) == {}


# -- one call, two commands at once -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def other_relay(relays):
    """A second relay, for a re-offer that moves a call."""
    return relays.start()


def between(monkeypatch, letter: str, *command: str) -> list:
    """Run `rtppctl *command` in a process of its own right after this process's command with
    `letter` got the relay's reply, before it writes the ledger: the interleaving two processes
    working on one call produce by chance, made certain. The relays, the store and the other
    process are all real; only the moment is chosen."""
    from rtppctl.relays.service import RelayService

    original = RelayService.attempt
    results = []

    def attempt(self, member, work, *, letter: str | None = None):
        result = original(self, member, work, letter=letter)
        if letter == wanted and not results:
            results.append(cli_process(*command, timeout=60))
        return result

    wanted = letter
    monkeypatch.setattr(RelayService, "attempt", attempt)
    return results


def test_an_unforce_between_an_answer_and_its_ledger_write_is_not_undone(capsys, monkeypatch, relay, files, state):
    base = ["--config", str(files["config"]), "--state", state]
    assert offer(capsys, files, state, relay, "ended@h").code == 0
    done = between(monkeypatch, "L", *base, "unforce", "--call-id", "ended@h", "--from-tag", "ft", "-t", relay.udp)
    answer = cli(capsys, *base, "answer", str(files["answer"]), "--call-id", "ended@h", "--from-tag", "ft",
                 "--to-tag", "tt", "-t", relay.udp)
    assert done and done[0].code == 0, done
    assert answer.code == 0, answer.stderr
    assert "the ledger's entry for call 'ended@h' was removed or moved by another command while this answer ran" \
           in answer.stderr
    # The call stays ended: not on the relay, not in the ledger.
    assert not relay_has(capsys, relay, "ended@h")
    assert "ended@h" not in ledger(state)


def test_a_re_offer_that_moved_the_call_is_not_overwritten_by_an_older_write(capsys, monkeypatch, relay, other_relay,
                                                                              files, state):
    base = ["--config", str(files["config"]), "--state", state]
    move = [*base, "offer", str(files["offer"]), "--call-id", "moved@h", "--from-tag", "ft", "-t", other_relay.udp]
    assert offer(capsys, files, state, relay, "moved@h").code == 0
    # An answer that read the old node: its To tag does not go onto the moved call's entry.
    done = between(monkeypatch, "L", *move)
    answer = cli(capsys, *base, "answer", str(files["answer"]), "--call-id", "moved@h", "--from-tag", "ft",
                 "--to-tag", "tt", "-t", relay.udp)
    assert done[0].code == 0 and answer.code == 0, (done, answer.stderr)
    entry = ledger(state)["moved@h"]
    assert (entry.node_url, entry.to_tag) == (other_relay.udp, None)
    monkeypatch.undo()
    # An offer that read no entry, while another moved the call elsewhere: its session goes.
    assert cli(capsys, *base, "unforce", "--call-id", "moved@h", "--from-tag", "ft").code == 0
    done = between(monkeypatch, "U", *move)
    late = offer(capsys, files, state, relay, "moved@h")
    assert done[0].code == 0
    assert late.code == 5 and late.stdout == ""
    assert f"the ledger's entry for call 'moved@h' changed while this command ran: it now names {other_relay.udp}; " \
           f"so that no call is left that the ledger does not know, the session {relay.udp} had just made for call " \
           "'moved@h' was deleted again (D)" in late.stderr
    assert ledger(state)["moved@h"].node_url == other_relay.udp
    assert not relay_has(capsys, relay, "moved@h") and relay_has(capsys, other_relay, "moved@h")


# -- notify tags ------------------------------------------------------------------------------------------


def test_notify_tags_of_different_calls_never_meet_in_the_ledger(capsys, relay, files, tmp_path):
    state = str(tmp_path / "state.sqlite3")
    first, second, third = "tag-a@h", "tag-b@h", "tag-c@h"
    wanted = planner.derived_dialog_id(second)  # the tag the second call would be derived
    taken = planner.notify_tag(wanted)
    given = f"{wanted[0]}.{wanted[1]}"
    assert offer(capsys, files, state, relay, first, "--flags", "n", "--dialog-id", given).code == 0
    result = offer(capsys, files, state, relay, second, "--flags", "nd")
    assert result.code == 0, result.stderr
    moved_on = planner.derived_dialog_id(second, 1)
    u_line = result.json()["commands"][0]["command"]
    assert f" {planner.notify_tag(moved_on)} " in u_line and taken not in u_line
    assert u_line.endswith(f"D{planner.dtmf_tag(second, moved_on)[1:]}")
    entries = ledger(state)
    assert (entries[first].notify_tag, entries[second].notify_tag) == (taken, planner.notify_tag(moved_on))
    # The call keeps its tag: a re-offer and its answer (DTMF tag on L) use the same dialog id.
    assert f" {planner.notify_tag(moved_on)} " in offer(capsys, files, state, relay, second, "--flags", "nd").json()[
        "commands"][0]["command"]
    answered = cli(capsys, "--config", str(files["config"]), "--state", state, "--json", "answer", str(files["answer"]),
                   "--call-id", second, "--from-tag", "ft", "--to-tag", "tt", "--flags", "nd", "-t", relay.udp)
    assert answered.code == 0, answered.stderr
    assert answered.json()["commands"][0]["command"].endswith(planner.dtmf_tag(second, moved_on))
    # A dialog id the user gives is theirs, even when a live call has its tag: kept, with a warning.
    result = offer(capsys, files, state, relay, third, "--flags", "n", "--dialog-id", given)
    assert result.code == 0, result.stderr
    assert result.json()["commands"][0]["command"].endswith(f" {taken}")
    assert f"the tag {taken!r} is also live call {first!r}'s" in result.stderr
    entries = ledger(state)
    assert (entries[first].notify_tag, entries[third].notify_tag) == (None, taken)


# -- special files and the --target rule --------------------------------------------------------------------


def test_a_fifo_as_the_state_file_is_refused_at_once_and_commands_without_the_ledger_never_touch_it(
        relay, files, tmp_path):
    fifo = tmp_path / "state.fifo"
    os.mkfifo(fifo)
    base = ["--config", str(files["config"]), "--state", str(fifo)]
    # In child processes with a deadline: a regression would wait for a writer for ever.
    refused = cli_process(*base, "offer", str(files["offer"]), "--call-id", "fifo@h", "--from-tag", "ft", "-t",
                          relay.udp, timeout=20)
    assert refused.code == 5 and refused.stdout == ""
    assert f"{fifo}: is a FIFO, not a state file" in refused.stderr and "--state none" in refused.stderr
    # Refused before the U: the relay has nothing.
    q = cli_process("--json", "raw", "-t", relay.udp, "Q fifo@h ft;1", timeout=20)
    assert json.loads(q.stdout)["replies"][0]["reply"] == "E50"
    for command in (["version"], ["ping"]):
        result = cli_process(*base, *command, "-t", relay.udp, timeout=20)
        assert result.code == 0, result.stderr
