"""Channels when things go wrong: silence, refusal, lost datagrams, garbage, slow and split replies.

The lossy forwarder sits in front of the real engine; the fake relays stand in for faults the real
one cannot produce.
"""

from __future__ import annotations

import re
import socket
import threading
import time

import pytest

import rtppctl.net.channel as channel_module
from rtppctl.net.channel import open_channel
from rtppctl.proto.errors import TransportError
from rtppctl.proto.url import parse_node
from tests.net.conftest import read_line
from tests.relay import free_port

INFO_PIECES = (
    b"sessions created: 7\nactive ses",
    b"sions: 2\nactive streams: 4\npackets rec",
    b"eived: 10\npackets transmitted: 9\n",
)
LOAD_LINE = b"average load: 0.250000\n"


def sessions_created(relay) -> int:
    with open_channel(parse_node(relay.specs["tcp"])) as chan:
        match = re.match(rb"sessions created: (\d+)\n", chan.request("I"))
    assert match
    return int(match.group(1))


# -- (1) nothing there ----------------------------------------------------------------------------


def test_udp_silence_fails_after_timeout_times_retries(silent_udp) -> None:
    spec = silent_udp()
    with open_channel(parse_node(spec), timeout=0.2, retries=3) as chan:
        started = time.monotonic()
        with pytest.raises(TransportError) as caught:
            chan.request("V")
        elapsed = time.monotonic() - started
    assert 0.55 <= elapsed <= 1.5, elapsed
    assert str(caught.value) == f"no reply from {spec} after 3 tries of 0.2 s"
    assert "RTPProxy running" in caught.value.hint


def test_udp6_silence_names_the_node(silent_udp) -> None:
    spec = silent_udp("::1")
    with open_channel(parse_node(spec), timeout=0.1, retries=1) as chan, pytest.raises(TransportError) as caught:
        chan.request("V")
    assert str(caught.value) == f"no reply from {spec} after 1 try of 0.1 s"


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_udp_closed_port_is_refused_at_once(host) -> None:
    # Nothing listens on the port: the host answers ICMP port unreachable, which must end the
    # request at once instead of after timeout x retries (10 s here).
    scheme = "udp6" if ":" in host else "udp"
    spec = f"{scheme}:{host}:{free_port(host=host)}"
    with open_channel(parse_node(spec), timeout=2.0, retries=5) as chan:
        started = time.monotonic()
        with pytest.raises(TransportError) as caught:
            chan.request("V")
        elapsed = time.monotonic() - started
    assert elapsed < 2.0 / 2, elapsed
    assert caught.value.exit_code == 4
    assert str(caught.value) == f"{spec} refused the request: nothing listens on that udp port"
    assert "port unreachable" in caught.value.hint


def test_udp_closed_port_is_refused_at_once_when_pipelining() -> None:
    spec = f"udp:127.0.0.1:{free_port()}"
    with open_channel(parse_node(spec), timeout=2.0, retries=5) as chan:
        started = time.monotonic()
        with pytest.raises(TransportError, match="refused the request: nothing listens on that udp port"):
            chan.request_many(["V", "VF 20050322", "I"])
        assert time.monotonic() - started < 1.0


def test_udp_channel_still_works_once_a_refusing_node_comes_up(fake_udp) -> None:
    # The refusal is reported once; it must not poison the socket for the node's return.
    port = free_port()
    with open_channel(parse_node(f"udp:127.0.0.1:{port}"), timeout=0.5, retries=2) as chan:
        with pytest.raises(TransportError, match="refused"):
            chan.request("V")

        def answer(sock: socket.socket, data: bytes, client: tuple) -> None:
            sock.sendto(data.split(b" ", 1)[0] + b" 20040107\n", client)

        fake_udp(answer, port=port)
        assert chan.request("V") == b"20040107\n"


def test_a_refusal_left_over_from_an_earlier_datagram_does_not_fail_the_next_command(fake_udp) -> None:
    # A refusal earned by an earlier datagram (here: sent while the relay was down, then never
    # read) is reported by the kernel on the next send, which it does not carry out. The channel
    # must send again and go by what happens to this command, not by the stale error.
    port = free_port()
    with open_channel(parse_node(f"udp:127.0.0.1:{port}"), timeout=0.5, retries=1) as chan:
        chan._sock.send(b"old_1 V")
        time.sleep(0.05)  # the ICMP error is now pending on the socket

        def answer(sock: socket.socket, data: bytes, client: tuple) -> None:
            sock.sendto(data.split(b" ", 1)[0] + b" 20040107\n", client)

        fake = fake_udp(answer, port=port)
        assert chan.request("V") == b"20040107\n"
    assert len(fake.received) == 1


def test_tcp_refused_fails_fast() -> None:
    spec = f"tcp:127.0.0.1:{free_port(socket.SOCK_STREAM)}"
    with open_channel(parse_node(spec), timeout=1.0) as chan:
        started = time.monotonic()
        with pytest.raises(TransportError) as caught:
            chan.request("V")
        assert time.monotonic() - started < 0.5
    assert str(caught.value) == f"connection refused by {spec}"
    assert caught.value.hint


@pytest.mark.parametrize("scheme", ["unix", "cunix"])
def test_missing_unix_socket(tmp_path, scheme) -> None:
    spec = f"{scheme}:{tmp_path}/nope.sock"
    with open_channel(parse_node(spec)) as chan, pytest.raises(TransportError) as caught:
        chan.request("V")
    assert str(caught.value) == f"no socket at {spec} (No such file or directory)"


@pytest.mark.parametrize("scheme", ["unix", "cunix"])
@pytest.mark.parametrize("kind", ["a regular file", "a directory"])
def test_a_unix_node_path_that_is_not_a_socket_says_so(tmp_path, scheme, kind) -> None:
    path = tmp_path / "rtpp.sock"
    if kind == "a directory":
        path.mkdir()
    else:
        path.write_text("keep me")
    spec = f"{scheme}:{path}"
    with open_channel(parse_node(spec)) as chan, pytest.raises(TransportError) as caught:
        chan.request("V")
    assert str(caught.value) == f"{spec} is not a socket ({path} is {kind})"
    assert caught.value.exit_code == 4 and "-s unix:PATH" in caught.value.hint
    assert path.is_dir() if kind == "a directory" else path.read_text() == "keep me"


@pytest.mark.parametrize("scheme", ["unix", "cunix"])
def test_unix_socket_file_nobody_listens_on(tmp_path, scheme) -> None:
    path = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as leftover:
        leftover.bind(str(path))  # bound, never listening: what a dead relay leaves behind
        spec = f"{scheme}:{path}"
        with open_channel(parse_node(spec)) as chan, pytest.raises(TransportError) as caught:
            chan.request("V")
    assert str(caught.value).startswith(f"connection refused by {spec}")


@pytest.mark.parametrize("scheme", ["unix", "cunix"])
def test_permission_denied_message(monkeypatch, tmp_path, scheme) -> None:
    # Runs as root too: connect() is made to fail the way it does for a user without access.
    class DeniedSocket(socket.socket):
        def connect(self, address) -> None:
            raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(channel_module.socket, "socket", DeniedSocket)
    spec = f"{scheme}:{tmp_path}/locked.sock"
    with open_channel(parse_node(spec)) as chan, pytest.raises(TransportError) as caught:
        chan.request("V")
    assert str(caught.value) == f"permission denied on {spec}"
    assert "owner" in caught.value.hint


# -- (2) lost datagrams ---------------------------------------------------------------------------


def test_lossy_link_creates_exactly_one_session_per_offer(quiet_relay, lossy_forwarder) -> None:
    engine = parse_node(quiet_relay.specs["udp"])
    forwarder = lossy_forwarder((engine.host, engine.port))
    before = sessions_created(quiet_relay)
    replies = []
    with open_channel(parse_node(forwarder.spec), timeout=0.05, retries=10) as chan:
        for n in range(20):
            replies.append(chan.request(f"U lossy{n}@t 127.0.0.1 {20000 + 2 * n} ft;1"))
    assert all(re.fullmatch(rb"[1-9]\d* 127\.0\.0\.1\n", reply) for reply in replies), replies
    assert len(set(replies)) == 20
    assert sessions_created(quiet_relay) - before == 20
    # Every command reached the engine at least twice, with the same cookie each time (its first
    # answer was lost); the repeat was answered from the reply cache, not run again.
    assert forwarder.from_client >= 80 and forwarder.from_engine >= 40
    cookies = [packet.split(b" ", 1)[0] for packet in forwarder.forwarded]
    assert len(set(cookies)) == 20
    assert all(cookies.count(cookie) >= 2 for cookie in set(cookies))
    assert all(packet.count(b" U lossy") == 1 for packet in forwarder.forwarded)


# -- (3) garbage, foreign and stale datagrams before the answer ----------------------------------


def test_garbage_foreign_and_stale_datagrams_are_dropped(fake_udp) -> None:
    previous: dict[str, bytes] = {}
    spoofer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    spoofer.bind(("127.0.0.1", 0))

    def on_request(sock: socket.socket, data: bytes, client: tuple) -> None:
        cookie, _, command = data.partition(b" ")
        sock.sendto(b"\xff\xfe\x00 garbage", client)
        sock.sendto(b"", client)
        sock.sendto(b"nospace\n", client)
        sock.sendto(b"foreign_1 E0\n", client)
        if "cookie" in previous:
            sock.sendto(previous["cookie"] + b" " + previous["reply"], client)
        # Right cookie, wrong sender: must not be taken for the relay's answer.
        spoofer.sendto(cookie + b" SPOOFED\n", client)
        time.sleep(0.005)
        reply = b"ANSWER " + command + b"\n"
        sock.sendto(cookie + b" " + reply, client)
        previous.update(cookie=cookie, reply=reply)

    fake = fake_udp(on_request)
    dropped: list[bytes] = []

    def trace(direction: str, _url: str, data: bytes) -> None:
        if direction == "!":
            dropped.append(data)

    try:
        with open_channel(parse_node(fake.spec), timeout=1.0, retries=2, trace=trace) as chan:
            for n in range(4):
                assert chan.request(f"V{n}") == f"ANSWER V{n}\n".encode()
    finally:
        spoofer.close()
    assert len(fake.received) == 4  # never needed a retry
    assert b"foreign_1 E0\n" in dropped and b"" in dropped and b"nospace\n" in dropped
    # The channel's socket is connected to the node: the kernel drops the spoofer's datagrams
    # before the channel could see them.
    assert not any(data.endswith(b" SPOOFED\n") for data in dropped)
    assert sum(b" ANSWER V" in data for data in dropped) == 3  # the stale ones


# -- (4) a flood of garbage and no answer -------------------------------------------------------


def test_garbage_flood_does_not_extend_the_wait(fake_udp) -> None:
    client: dict[str, tuple] = {}
    sent = [0]

    def flood(sock: socket.socket) -> None:
        if "address" in client and sent[0] < 200_000:
            for n in range(100):
                sock.sendto(b"flood_%d junk\n" % n if n % 2 else b"garbage", client["address"])
            sent[0] += 100

    def on_request(sock: socket.socket, _data: bytes, address: tuple) -> None:
        client["address"] = address
        flood(sock)

    fake = fake_udp(on_request, on_idle=flood)
    # A shorter idle tick than the default makes the flood denser than the client's timeout.
    fake.sock.settimeout(0.002)
    dropped = [0]

    def trace(direction: str, _url: str, _data: bytes) -> None:
        dropped[0] += direction == "!"

    with open_channel(parse_node(fake.spec), timeout=0.2, retries=3, trace=trace) as chan:
        started = time.monotonic()
        with pytest.raises(TransportError) as caught:
            chan.request("V")
        elapsed = time.monotonic() - started
    assert 0.55 <= elapsed <= 1.2, elapsed
    assert "after 3 tries of 0.2 s" in str(caught.value)
    assert dropped[0] > 100
    assert len(fake.received) == 3


# -- (5) streams: split, slow, extra, silent, closing --------------------------------------------


def test_tcp_info_reply_in_pieces_is_reassembled(fake_tcp) -> None:
    def on_connection(conn: socket.socket, _index: int) -> None:
        for _ in range(3):
            line = read_line(conn)
            if not line:
                return
            pieces = INFO_PIECES + ((LOAD_LINE,) if line == b"Il\n" else ())
            if line == b"V\n":
                pieces = (b"2004", b"0107\n")
            for piece in pieces:
                conn.sendall(piece)
                time.sleep(0.03)

    fake = fake_tcp(on_connection)
    with open_channel(parse_node(fake.spec), timeout=1.0) as chan:
        assert chan.request("I") == b"".join(INFO_PIECES)
        assert chan.request("Il") == b"".join(INFO_PIECES) + LOAD_LINE
        assert chan.request("V") == b"20040107\n"
    assert fake.accepted == 1


def test_tcp_extra_bytes_after_a_reply_are_discarded(fake_tcp) -> None:
    def on_connection(conn: socket.socket, _index: int) -> None:
        assert read_line(conn) == b"V\n"
        conn.sendall(b"20040107\nJUNK\n")
        assert read_line(conn) == b"VF 20050322\n"
        conn.sendall(b"1\n")
        read_line(conn)

    fake = fake_tcp(on_connection)
    seen: list[tuple[str, bytes]] = []
    with open_channel(parse_node(fake.spec), trace=lambda d, _u, b: seen.append((d, b))) as chan:
        assert chan.request("V") == b"20040107\n"
        assert chan.request("VF 20050322") == b"1\n"
    assert ("!", b"JUNK\n") in seen


def test_tcp_silence_times_out_and_the_next_command_reconnects(fake_tcp) -> None:
    def on_connection(conn: socket.socket, index: int) -> None:
        line = read_line(conn)
        if index == 1:
            conn.sendall(b"2004")  # half an answer, then nothing until the client gives up
            read_line(conn)
            return
        assert line == b"V\n"
        conn.sendall(b"20040107\n")
        read_line(conn)

    fake = fake_tcp(on_connection)
    with open_channel(parse_node(fake.spec), timeout=0.2) as chan:
        started = time.monotonic()
        with pytest.raises(TransportError) as caught:
            chan.request("V")
        assert 0.15 <= time.monotonic() - started <= 0.6
        assert str(caught.value) == f"no complete reply from {fake.spec} within 0.2 s"
        # The late half must not become the next answer: a fresh connection is used instead.
        assert chan.request("V") == b"20040107\n"
    assert fake.accepted == 2


def test_tcp_peer_closing_a_fresh_connection_is_an_error_not_a_retry(fake_tcp) -> None:
    def on_connection(conn: socket.socket, _index: int) -> None:
        read_line(conn)  # and hang up without answering

    fake = fake_tcp(on_connection)
    with open_channel(parse_node(fake.spec), timeout=1.0) as chan, pytest.raises(TransportError) as caught:
        chan.request("U x 127.0.0.1 5000 ft;1")
    assert str(caught.value) == f"{fake.spec} closed the connection without answering"
    assert fake.accepted == 1  # a command that may have run is never sent twice


def test_tcp_peer_closing_in_the_middle_of_a_reply(fake_tcp) -> None:
    def on_connection(conn: socket.socket, _index: int) -> None:
        read_line(conn)
        conn.sendall(INFO_PIECES[0])

    fake = fake_tcp(on_connection)
    with open_channel(parse_node(fake.spec), timeout=1.0) as chan, pytest.raises(TransportError) as caught:
        chan.request("I")
    assert "in the middle of a reply" in str(caught.value)


def test_unix_oneshot_times_out_on_a_stuck_relay(tmp_path) -> None:
    path = tmp_path / "stuck.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen(1)  # accepts in the backlog, never answers
        spec = f"unix:{path}"
        with open_channel(parse_node(spec), timeout=0.2) as chan:
            started = time.monotonic()
            with pytest.raises(TransportError) as caught:
                chan.request("V")
            assert time.monotonic() - started <= 0.6
    assert str(caught.value) == f"no reply from {spec} within 0.2 s"


def test_unix_oneshot_retries_once_after_a_reset(tmp_path) -> None:
    path = tmp_path / "flaky.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(2)
    server.settimeout(2.0)
    commands: list[bytes] = []

    def serve() -> None:
        with server:
            first, _ = server.accept()
            time.sleep(0.05)  # let the command arrive, then close without reading it: a reset
            first.close()
            second, _ = server.accept()
            with second:
                second.settimeout(2.0)
                commands.append(second.recv(100))
                second.sendall(b"20040107\n")

    helper = threading.Thread(target=serve, daemon=True)
    helper.start()
    with open_channel(parse_node(f"unix:{path}"), timeout=1.0) as chan:
        assert chan.request("V") == b"20040107\n"
    helper.join(3)
    assert commands == [b"V"]  # no newline on the one-shot socket


def test_pipelined_requests_over_a_lossy_link_create_one_session_each(quiet_relay, lossy_forwarder) -> None:
    engine = parse_node(quiet_relay.specs["udp"])
    forwarder = lossy_forwarder((engine.host, engine.port))
    before = sessions_created(quiet_relay)
    commands = [f"U pipe{n}@t 127.0.0.1 {22000 + 2 * n} ft;1" for n in range(40)]
    with open_channel(parse_node(forwarder.spec), timeout=0.05, retries=20) as chan:
        replies = chan.request_many(commands)
    assert len(replies) == 40 and len(set(replies)) == 40
    assert all(re.fullmatch(rb"[1-9]\d* 127\.0\.0\.1\n", reply) for reply in replies), replies
    assert sessions_created(quiet_relay) - before == 40


def test_pipelined_requests_fail_naming_how_many_went_unanswered(silent_udp) -> None:
    dead = silent_udp()
    with open_channel(parse_node(dead), timeout=0.05, retries=2) as chan, pytest.raises(TransportError) as caught:
        chan.request_many(["V", "VF 20050322", "I"])
    assert str(caught.value) == f"no reply from {dead} to 3 of 3 commands after 2 tries of 0.05 s"
