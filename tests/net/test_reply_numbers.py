"""Numbers in relay replies that a real RTPProxy never writes: a counter past 64 bits, inf, nan,
1e999. The relay prints counters with %d/%lu and floats with %f (src/commands/rpcpv1_query.c of
sippy/rtpproxy), so these come only from a broken or hostile peer: a fake relay sends them.

Each ends as one line on stderr and exit 4 (MalformedReply), never an internal error, and no JSON
rtppctl prints holds Infinity or NaN.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.cli.helpers import cli

CALL = ("--call-id", "c1@test", "--from-tag", "ft", "--to-tag", "tt")


def _strict(text: str):
    """json.loads that refuses NaN and Infinity, as any other JSON reader would."""
    def refuse(constant: str):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def relay_saying(fake_udp):
    """relay_saying(reply) -> the spec of a fake relay that answers every command with `reply`."""
    said = {"reply": "0"}

    def answer(sock, data, address):
        cookie = data.split(b" ", 1)[0]
        sock.sendto(cookie + b" " + said["reply"].encode() + b"\n", address)

    relay = fake_udp(answer)

    def start(reply: str) -> str:
        said["reply"] = reply
        return relay.spec

    return start


@pytest.mark.parametrize(("reply", "says"), [
    ("60 1.0e999 0 0 0", "counter 'npkts_ina' in '60 1.0e999 0 0 0' is '1.0e999': not a whole number"),
    ("60 nan 0 0 0", "counter 'npkts_ina' in '60 nan 0 0 0' is 'nan': not a whole number"),
    ("60 " + "9" * 30 + " 0 0 0", "is 999999999999999999999999999999: out of range"),
    ("60 0 0 0 18446744073709551616", "counter 'ndropped'"),
    ("inf 0 0 0 0", "counter 'ttl'"),
])
def test_stats_with_an_impossible_counter_is_one_line_and_exit_4(capsys, relay_saying, reply, says):
    result = cli(capsys, "stats", *CALL, "-t", relay_saying(reply))
    assert result.code == 4 and result.stdout == ""
    assert result.stderr.startswith("rtppctl: error: ") and says in result.stderr, result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr


def test_the_largest_counter_a_relay_can_have_is_shown_exactly(capsys, relay_saying):
    result = cli(capsys, "--json", "stats", *CALL, "-t", relay_saying("60 18446744073709551615 0 0 0"))
    assert result.code == 0, result.stderr
    assert _strict(result.stdout)["up"] == 2**64 - 1


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "-nan", "1e999", "1.0e999", "Infinity", "1" + "0" * 309 + ".000000"])
def test_query_json_never_prints_infinity_or_nan(capsys, relay_saying, value):
    result = cli(capsys, "--json", "query", "rtpa_jmax", *CALL, "-t", relay_saying(value))
    assert result.code == 4 and result.stdout == "", result.stdout
    assert "counter 'rtpa_jmax'" in result.stderr and "\n" == result.stderr[-1] and result.stderr.count("\n") <= 2


number_words = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(lambda x: f"{x:f}"),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["nan", "-nan", "inf", "1e999", "9" * 400, "0.000000", "x"]),
)


def test_whatever_numbers_a_relay_sends_json_output_stays_json(capsys, relay_saying):
    spec = relay_saying("0")

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(number_words, min_size=1, max_size=3))
    def check(words):
        result = cli(capsys, "--json", "query", *[f"rtpa_j{n}" for n in ("last", "max", "avg")[:len(words)]], *CALL,
                     "-t", relay_saying(" ".join(words)))
        assert result.code in (0, 4), result.stderr
        assert "internal error" not in result.stderr
        if result.code == 0:
            counters = _strict(result.stdout)["counters"]
            assert all(isinstance(value, (int, float)) for value in counters.values())

    assert spec
    check()
