"""Exit codes are a documented interface: each value and each error class's code is pinned here."""

from __future__ import annotations

import pytest

from rtppctl.proto.errors import (
    ERROR_CODES,
    ConfigError,
    ExitCode,
    InputError,
    MalformedReply,
    ProxyError,
    RtppctlError,
    TransportError,
    describe_error_code,
)


@pytest.mark.parametrize(
    ("member", "value"),
    [("OK", 0), ("UNEXPECTED", 1), ("USAGE", 2), ("PROXY_ERROR", 3), ("TRANSPORT", 4), ("CONFIG", 5),
     ("INPUT", 6), ("INTERRUPTED", 130)],
)
def test_exit_code_values(member, value):
    assert ExitCode[member] == value
    assert int(ExitCode[member]) == value


def test_exit_codes_are_exactly_the_documented_ones():
    assert sorted(int(code) for code in ExitCode) == [0, 1, 2, 3, 4, 5, 6, 130]


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (RtppctlError("x"), ExitCode.UNEXPECTED),
        (InputError("x"), ExitCode.INPUT),
        (ConfigError("x"), ExitCode.CONFIG),
        (TransportError("x"), ExitCode.TRANSPORT),
        (MalformedReply("x"), ExitCode.TRANSPORT),
        (ProxyError(50), ExitCode.PROXY_ERROR),
    ],
)
def test_error_class_exit_codes(error, code):
    assert error.exit_code == code
    assert isinstance(error, RtppctlError)


def test_message_and_hint():
    error = InputError("bad tag", "remove the space")
    assert str(error) == "bad tag"
    assert error.message == "bad tag"
    assert error.hint == "remove the space"
    assert InputError("x").hint is None


def test_malformed_reply_is_a_transport_error():
    error = MalformedReply("reply '??' is not a port", hint="check the relay version")
    assert isinstance(error, TransportError)
    assert error.message == "reply '??' is not a port"
    assert error.hint == "check the relay version"
    with pytest.raises(TransportError):
        raise error


def test_proxy_error_known_code():
    error = ProxyError(50, command="D call1@h ft", node="udp:127.0.0.1:22222")
    assert error.code == 50
    assert error.name == "SESUNKN"
    assert "E50" in error.message and "SESUNKN" in error.message
    assert "'D'" in error.message and "udp:127.0.0.1:22222" in error.message
    assert error.meaning == ERROR_CODES[50].meaning
    assert error.hint


def test_proxy_error_unknown_code():
    error = ProxyError(77)
    assert isinstance(error, ProxyError)
    assert error.code == 77
    assert error.name == "UNKNOWN"
    assert "E77" in error.message
    assert error.hint is None
    assert describe_error_code(77).name == "UNKNOWN"


def test_every_table_row_is_keyed_by_its_code():
    assert all(code == row.code for code, row in ERROR_CODES.items())
    assert describe_error_code(89).name == "NOMEM_9"
