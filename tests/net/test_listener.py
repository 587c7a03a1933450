"""The notification listener on real loopback sockets: the peer cap, unix peer labels, the wake-up
descriptor, and connections that stay open however long they are idle."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator

import pytest

from rtppctl.net.listener import Listener, Notifications, PeerNews
from rtppctl.proto.notify import NotifySocket


def collect(listener: Listener, until, deadline: float = 5.0) -> list:  # noqa: ANN001
    """What the listener reports until `until(items)` holds (or the deadline passes)."""
    items: list = []
    end = time.monotonic() + deadline
    while time.monotonic() < end and not until(items):
        items += list(listener.events(0.05))
    return items


def news(items: list, what: str) -> list[PeerNews]:
    return [item for item in items if isinstance(item, PeerNews) and item.what == what]


def lines(items: list) -> list[tuple[str, bytes]]:
    return [(item.peer, event.raw) for item in items if isinstance(item, Notifications) for event in item.events]


@pytest.fixture
def tcp_listener() -> Iterator[Listener]:
    with Listener(NotifySocket("tcp", "127.0.0.1", 0), max_peers=2) as listener:
        yield listener


def test_peers_over_the_cap_are_refused_and_reported_once_and_the_others_still_heard(tcp_listener):
    host, port = tcp_listener.bound.split(":")[1:]
    peers = [socket.create_connection((host, int(port)), timeout=2) for _ in range(5)]
    try:
        items = collect(tcp_listener, lambda items: tcp_listener.refused_max_peers == 3)
        assert len(news(items, "connected")) == 2 and tcp_listener.peers == 2
        assert len(news(items, "full")) == 1 and tcp_listener.refused_max_peers == 3
        assert "--max-peers" in news(items, "full")[0].detail
        for peer in peers:
            peer.sendall(b"Tstill-heard\n")
        heard = collect(tcp_listener, lambda items: len(lines(items)) == 2)
        assert [raw for _, raw in lines(heard)] == [b"Tstill-heard"] * 2
        # The refused ones were closed at once, not left waiting in the backlog.
        for peer in peers[2:]:
            peer.settimeout(2)
            assert peer.recv(1) == b""
    finally:
        for peer in peers:
            peer.close()


def test_an_idle_connection_is_never_closed(tcp_listener):
    # RTPProxy keeps one connection per target and learns it was closed only by losing a notification.
    host, port = tcp_listener.bound.split(":")[1:]
    with socket.create_connection((host, int(port)), timeout=2) as peer:
        collect(tcp_listener, lambda items: tcp_listener.peers == 1)
        idle = collect(tcp_listener, lambda items: False, deadline=1.0)
        assert not news(idle, "closed") and not news(idle, "reset") and tcp_listener.peers == 1
        peer.sendall(b"Tafter-a-pause\n")
        assert [raw for _, raw in lines(collect(tcp_listener, lines))] == [b"Tafter-a-pause"]


def test_each_unix_peer_has_a_label_of_its_own_with_its_pid(tmp_path):
    path = str(tmp_path / "n.sock")
    with Listener(NotifySocket("unix", path=path)) as listener:
        first, second = socket.socket(socket.AF_UNIX), socket.socket(socket.AF_UNIX)
        with first, second:
            first.connect(path)
            second.connect(path)
            first.sendall(b"Tone\n")
            second.sendall(b"Ttwo\n")
            heard = dict((raw, peer) for peer, raw in lines(collect(listener, lambda items: len(lines(items)) == 2)))
    assert heard[b"Tone"] != heard[b"Ttwo"]
    assert {heard[b"Tone"], heard[b"Ttwo"]} == {f"unix#1(pid={os.getpid()})", f"unix#2(pid={os.getpid()})"}


def test_a_write_to_the_wakeup_descriptor_ends_a_long_wait_at_once(tcp_listener):
    os.write(tcp_listener.wakeup_fd, b"\x0f")
    started = time.monotonic()
    assert list(tcp_listener.events(10.0)) == []
    assert time.monotonic() - started < 1.0
    # The byte was taken: the next wait is a real one again.
    started = time.monotonic()
    assert list(tcp_listener.events(0.2)) == []
    assert time.monotonic() - started >= 0.15


def test_closing_twice_is_harmless_and_removes_the_socket_file(tmp_path):
    path = tmp_path / "n.sock"
    listener = Listener(NotifySocket("unix", path=str(path)))
    listener.open()
    assert path.exists()
    listener.close()
    listener.close()
    assert not path.exists()
