"""What the validators accept means to the real relay exactly what rtppctl meant (docs/protocol.md §16).

For any call-id and tags the token validators let through, the relay must find the session by
exactly those tokens and by nothing else: a call-id or tag one character off, or the same tag with
another media number, finds nothing. Notify and DTMF tags are URL-decoded by the relay, so a `%`,
`+` or space in them must come back in the notification lines exactly as given.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rtppctl.net.client import RelayClient
from rtppctl.proto import command as cmd
from rtppctl.proto.errors import InputError, ProxyError
from rtppctl.proto.url import parse_node

pytestmark = pytest.mark.relay

ADDRESS = "127.0.0.1"
CALLER_PORT, CALLEE_PORT = 30000, 30010

# Every printable ASCII character (the relay's own separators are refused anyway) and a few
# non-ASCII ones, so that %, +, &, ;, /, = and friends turn up often.
ALPHABET = st.characters(min_codepoint=0x21, max_codepoint=0x7E) | st.sampled_from(list("é€ü漢\u00a0"))
values = st.text(ALPHABET, min_size=1, max_size=24)


def accepted(validate, value: str) -> bool:  # type: ignore[no-untyped-def]
    try:
        validate(value)
    except InputError:
        return False
    return True


def one_off(value: str) -> str:
    """`value` with its last character changed (still a valid token of the same kind)."""
    return value[:-1] + ("x" if value[-1] != "x" else "y")


def lookup_port(client: RelayClient, call_id: str, from_tag: str, to_tag: str, medianum: int = 1) -> int:
    line = cmd.lookup(call_id, ADDRESS, CALLEE_PORT, from_tag, to_tag, medianum=medianum)
    return cmd.parse_port_reply(client.call(line)).port


def query_code(client: RelayClient, call_id: str, from_tag: str, to_tag: str, medianum: int = 1) -> int | None:
    """None when Q found the session, else the E-code."""
    try:
        cmd.parse_counters(client.call(cmd.query(call_id, from_tag, to_tag, medianum=medianum)))
    except ProxyError as error:
        return error.code
    return None


@pytest.fixture(scope="module")
def client(relay):
    with RelayClient.open(parse_node(relay.udp), timeout=1.0, retries=3) as opened:
        yield opened


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.filter_too_much])
@given(values, values, values)
def test_the_relay_finds_a_session_by_exactly_the_tokens_given(client, call_id, from_tag, to_tag):
    assume(accepted(cmd.validate_call_id, call_id))
    assume(accepted(cmd.validate_tag, from_tag) and accepted(cmd.validate_tag, to_tag))
    assume(from_tag != to_tag and one_off(from_tag) != to_tag and one_off(to_tag) != from_tag)
    created = cmd.parse_port_reply(client.call(cmd.update(call_id, ADDRESS, CALLER_PORT, from_tag, medianum=1)))
    try:
        assert created.port > 0
        assert lookup_port(client, call_id, from_tag, to_tag) > 0
        assert query_code(client, call_id, from_tag, to_tag) is None

        # Nothing else finds it: another call-id, another tag, another media number.
        assert lookup_port(client, one_off(call_id), from_tag, to_tag) == 0
        assert lookup_port(client, call_id, one_off(from_tag), one_off(to_tag)) == 0
        assert lookup_port(client, call_id, from_tag, to_tag, medianum=2) == 0
        assert query_code(client, one_off(call_id), from_tag, to_tag) == 50
        assert query_code(client, call_id, one_off(from_tag), to_tag) == 50
        assert query_code(client, call_id, from_tag, to_tag, medianum=2) == 50
        # The session is still there, unchanged by the misses.
        assert query_code(client, call_id, from_tag, to_tag) is None
    finally:
        deleted = cmd.parse_result(client.exchange(cmd.delete(call_id, from_tag, to_tag)).reply)
    assert deleted == 0
    assert query_code(client, call_id, from_tag, to_tag) == 50
    assert lookup_port(client, call_id, from_tag, to_tag) == 0


# ------------------------------------------------------------------------------ notify and DTMF tags


class Listener:
    """A notification target (`-n tcp:127.0.0.1:<port>`): the relay connects once and writes lines."""

    def __init__(self) -> None:
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.bind((ADDRESS, 0))
        self.server.listen(4)
        self.port = self.server.getsockname()[1]
        self.target = f"tcp:{ADDRESS}:{self.port}"
        self.connection: socket.socket | None = None
        self.buffer = b""

    def wait_for_line(self, wanted: bytes, timeout: float) -> list[bytes]:
        """Every line received until one starts with `wanted` (or the time is up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.buffer.split(b"\n")[:-1]
            if any(line.startswith(wanted) for line in lines):
                return lines
            remaining = max(0.01, deadline - time.monotonic())
            if self.connection is None:
                self.server.settimeout(remaining)
                with contextlib.suppress(TimeoutError):
                    self.connection, _ = self.server.accept()
                continue
            self.connection.settimeout(remaining)
            with contextlib.suppress(TimeoutError):
                self.buffer += self.connection.recv(4096)
        return self.buffer.split(b"\n")[:-1]

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
        self.server.close()


@pytest.fixture(scope="module")
def notifying(relays):
    """A relay of its own that notifies a listener, with a 1 s ttl for sessions that only had a U."""
    listener = Listener()
    engine = relays.start(transports=("udp",), extra_args=["-n", listener.target, "-W", "1"])
    with RelayClient.open(parse_node(engine.udp), timeout=1.0, retries=3) as client:
        yield client, listener
    listener.close()
    engine.stop()


@pytest.mark.parametrize("tag", ["T%41+b c~é", "T100%", "T%zz", "T a+b"])
def test_notify_tags_with_percent_plus_or_space_are_accepted_by_the_relay(client, tag):
    # Without the encoding the relay reads %zz as a bad escape (E10) and %41 as "A".
    call_id = f"ntag-{tag}".replace(" ", "_")
    line = cmd.update(call_id, ADDRESS, CALLER_PORT, "ft", medianum=1, notify_socket="tcp:127.0.0.1:9",
                      notify_tag=tag)
    assert cmd.parse_port_reply(client.call(line)).port > 0
    client.call(cmd.delete(call_id, "ft"))


def test_a_notify_tag_comes_back_in_the_timeout_notification_as_given(notifying):
    client, listener = notifying
    tag = "T%41+b c~é&&"
    line = cmd.update("notify%41+x@h", ADDRESS, CALLER_PORT, "ft", medianum=1, notify_socket=listener.target,
                      notify_tag=tag)
    assert cmd.parse_port_reply(client.call(line)).port > 0
    # Only a U: the session times out after -W 1 and the relay writes the decoded tag as one line.
    lines = listener.wait_for_line(b"T", timeout=6.0)
    assert tag.encode() in lines, lines


def rtp_event(seq: int, timestamp: int, digit: int, duration: int, *, end: bool, marker: bool) -> bytes:
    """An RTP packet carrying an RFC 4733 telephone-event (payload type 101), volume 10."""
    header = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | 101, seq, timestamp, 0x1234ABCD)
    return header + struct.pack("!BBH", digit, (0x80 if end else 0) | 10, duration)


def test_a_dtmf_tag_with_any_call_id_comes_back_in_the_dtmf_notification_as_given(notifying):
    client, listener = notifying
    call_id = "dtmf%41+x y@h".replace(" ", "")  # % and + would be decoded if sent raw
    dtmf_tag = "Dc" + call_id
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as caller:
        caller.bind((ADDRESS, 0))
        caller_port = caller.getsockname()[1]
        subcommands = [cmd.dtmf_subcommand(dtmf_tag)]
        modifiers = cmd.Modifiers(codecs=(0, 101))
        offer = cmd.update(call_id, ADDRESS, caller_port, "ft", medianum=1, modifiers=modifiers,
                           notify_socket=listener.target, notify_tag="I", subcommands=subcommands)
        offered = cmd.parse_port_reply(client.call(offer))
        # No "&& -1": catch_dtmf took the tag (it would refuse a bad %-escape as the relay did).
        assert offered.port > 0 and offered.subcommand_results == ()
        answer = cmd.lookup(call_id, ADDRESS, CALLEE_PORT, "ft", "tt", medianum=1, modifiers=modifiers,
                            subcommands=subcommands)
        answered = cmd.parse_port_reply(client.call(answer))
        assert answered.port > 0 and answered.subcommand_results == ()
        # The caller presses 5: the relay's port for the caller is the one L answered.
        for seq, (duration, end) in enumerate([(160, False), (320, False), (480, False), (640, True), (640, True)]):
            caller.sendto(rtp_event(seq + 1, 8000, 5, duration, end=end, marker=seq == 0), (ADDRESS, answered.port))
            time.sleep(0.02)
        lines = listener.wait_for_line(b"D", timeout=3.0)
    client.call(cmd.delete(call_id, "ft", "tt"))
    assert any(line.startswith(dtmf_tag.encode() + b" 5 ") for line in lines), lines
