"""Flag strings are read as the OpenSIPS module reads them (docs/protocol.md §4.2)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtppctl.proto.errors import InputError
from rtppctl.proto.flags import KNOWN_FLAGS, Flags, parse_flags


@pytest.mark.parametrize("text", [None, ""])
def test_no_flags_is_every_default(text):
    flags = parse_flags(text)
    assert flags == Flags()
    assert flags.text == ""
    assert flags.slot0 == "" and flags.interfaces == "" and flags.symmetric == 0
    assert flags.ttl_modifiers == ""
    assert not (flags.asymmetric or flags.force_lookup or flags.keep_sdp or flags.ignore_marker
                or flags.trust_address or flags.rewrite_origin or flags.rewrite_session_connection
                or flags.notify or flags.dtmf)
    assert flags.notify_socket is None and flags.dtmf_payload_type is None
    assert flags.ttl_caller is None and flags.ttl_callee is None and flags.repacketize_ms is None
    assert not (flags.ttl_caller_bare or flags.ttl_callee_bare)


@pytest.mark.parametrize(
    ("text", "field", "value"),
    [
        ("a", "asymmetric", True),
        ("l", "force_lookup", True),
        ("k", "keep_sdp", True),
        ("f", "ignore_marker", True),
        ("r", "trust_address", True),
        ("o", "rewrite_origin", True),
        ("c", "rewrite_session_connection", True),
        ("n", "notify", True),
        ("d", "dtmf", True),
        ("i", "interfaces", "I"),
        ("e", "interfaces", "E"),
        ("s", "symmetric", 1),
        ("w", "symmetric", 1),
        ("t30", "ttl_caller", 30),
        ("T20", "ttl_callee", 20),
        ("t", "ttl_caller_bare", True),
        ("T", "ttl_callee_bare", True),
        ("z20", "repacketize_ms", 20),
    ],
)
def test_every_letter(text, field, value):
    flags = parse_flags(text)
    assert getattr(flags, field) == value
    assert flags.text == text
    # Only that letter's field moved (a also sets trust_address, checked below).
    defaults = Flags()
    changed = {name for name in Flags.__dataclass_fields__ if getattr(flags, name) != getattr(defaults, name)}
    assert changed <= {field, "text", "slot0", "trust_address" if text == "a" else field}


def test_a_implies_r():
    assert parse_flags("a").trust_address
    assert not parse_flags("s").trust_address


@pytest.mark.parametrize(
    ("text", "slot0"),
    [("swz20", "SS"), ("aie", "AIE"), ("aei", "AEI"), ("ie", "IE"), ("ei", "EI"), ("ws", "SS"), ("rlokcfn", ""),
     ("sa", "SA"), ("eisa", "EISA"), ("ss", "SS"), ("AEIW", "AEIS")],
)
def test_slot0_in_the_order_the_module_writes_it(text, slot0):
    # Left to right, one letter per flag: i/e keep the order given (docs/protocol.md §4.2: "ei").
    assert parse_flags(text).slot0 == slot0


def test_interfaces_keep_their_order_upper_cased():
    assert parse_flags("ei").interfaces == "EI"
    assert parse_flags("IE").interfaces == "IE"
    assert parse_flags("ee").interfaces == "EE"


def test_w_counts_as_symmetric_like_s():
    flags = parse_flags("sws")
    assert flags.symmetric == 3
    assert flags.slot0 == "SSS"


@pytest.mark.parametrize("text", ["SWZ20", "Swz20", "sWz20"])
def test_letters_are_case_insensitive(text):
    flags = parse_flags(text)
    assert (flags.symmetric, flags.repacketize_ms, flags.slot0) == (2, 20, "SS")


def test_upper_case_letters_mean_the_same():
    flags = parse_flags("ALKFROCND")
    assert (flags.asymmetric, flags.force_lookup, flags.keep_sdp, flags.ignore_marker, flags.trust_address,
            flags.rewrite_origin, flags.rewrite_session_connection, flags.notify, flags.dtmf) == (True,) * 9


def test_t_and_T_differ_by_case():
    flags = parse_flags("t30T20")
    assert (flags.ttl_caller, flags.ttl_callee) == (30, 20)
    assert flags.ttl_modifiers == "t30T20"
    assert parse_flags("T20t30").ttl_modifiers == "t30T20"  # caller first
    assert parse_flags("T5").ttl_modifiers == "T5"
    assert parse_flags("t5").ttl_modifiers == "t5"


@pytest.mark.parametrize(
    ("text", "modifiers"),
    [("t", "t"), ("T", "T"), ("tT", "tT"), ("Tt", "tT"), ("tT20", "tT20"), ("t30T", "t30T"), ("st", "t"),
     ("ts", "t"), ("tz20", "t"), ("t30t", "t"), ("tt30", "t30")],
)
def test_t_and_T_take_their_number_or_none(text, modifiers):
    # The module accepts a bare t or T (the number is optional) and copies the letters as given.
    flags = parse_flags(text)
    assert flags.ttl_modifiers == modifiers


def test_bare_t_leaves_the_number_unset():
    flags = parse_flags("ts")
    assert flags.ttl_caller is None and flags.ttl_caller_bare
    assert flags.symmetric == 1
    flags = parse_flags("t30")
    assert flags.ttl_caller == 30 and not flags.ttl_caller_bare


def test_notify_socket_between_angle_brackets_verbatim():
    flags = parse_flags("n<tcp:127.0.0.1:9999>s")
    assert flags.notify and flags.notify_socket == "tcp:127.0.0.1:9999"
    assert flags.symmetric == 1
    assert parse_flags("N<unix:/run/notify.sock>").notify_socket == "unix:/run/notify.sock"
    # Letters inside the socket are not flags.
    assert parse_flags("n<udp:zz:1>").repacketize_ms is None
    assert parse_flags("n").notify_socket is None


def test_a_later_notify_socket_replaces_an_earlier_one():
    assert parse_flags("n<a:1>n<b:2>").notify_socket == "b:2"
    assert parse_flags("n<a:1>n").notify_socket == "a:1"


def test_leading_zeros_are_read_as_numbers():
    assert parse_flags("d0101").dtmf_payload_type == 101
    assert parse_flags("z" + "0" * 5000 + "20").repacketize_ms == 20
    assert parse_flags("d" + "0" * 5000).dtmf_payload_type == 0


def test_dtmf_with_and_without_payload_type():
    assert parse_flags("d").dtmf_payload_type is None
    flags = parse_flags("d101s")
    assert (flags.dtmf, flags.dtmf_payload_type, flags.symmetric) == (True, 101, 1)
    assert parse_flags("D0").dtmf_payload_type == 0
    assert parse_flags("d127").dtmf_payload_type == 127


def test_repeated_letters_are_allowed():
    flags = parse_flags("ssoo")
    assert flags.symmetric == 2 and flags.rewrite_origin
    assert parse_flags("z20z30").repacketize_ms == 30


def test_everything_at_once():
    flags = parse_flags("aeiswlkfrocn<tcp:10.0.0.1:5000>d101t30T20z20")
    assert flags.slot0 == "AEISS"
    assert flags.interfaces == "EI"
    assert flags.notify_socket == "tcp:10.0.0.1:5000"
    assert (flags.dtmf_payload_type, flags.ttl_caller, flags.ttl_callee, flags.repacketize_ms) == (101, 30, 20, 20)
    assert flags.ttl_modifiers == "t30T20"


def test_flags_are_frozen():
    flags = parse_flags("s")
    with pytest.raises(AttributeError):
        flags.symmetric = 2  # type: ignore[misc]


# ------------------------------------------------------------------------------ errors


def test_unknown_letter_names_it_its_position_and_the_known_letters():
    with pytest.raises(InputError) as info:
        parse_flags("asx")
    assert info.value.message == (
        "unknown flag 'x' at position 3 in 'asx' "
        "(known: a l k i e f r o c s w n[<SOCKET>] d[PT] t[NN] T[NN] zNN)"
    )
    assert "E35" in (info.value.hint or "")
    assert KNOWN_FLAGS == "a l k i e f r o c s w n[<SOCKET>] d[PT] t[NN] T[NN] zNN"


@pytest.mark.parametrize(("text", "char", "position"), [("6", "6", 1), ("s-", "-", 2), ("sé", "é", 2), ("s\x00", "\x00", 2),
                                                        ("b", "b", 1), ("x", "x", 1), ("n>", ">", 2)])
def test_unknown_characters(text, char, position):
    with pytest.raises(InputError, match=rf"unknown flag {char!r} at position {position}".replace("\\", "\\\\")):
        parse_flags(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("z", "flag z needs a number of milliseconds, e.g. z20"),
        ("sZ", "flag z needs a number of milliseconds, e.g. z20"),
        ("zs", "flag z needs a number of milliseconds, e.g. z20"),
        ("tz", "flag z needs a number of milliseconds, e.g. z20"),
    ],
)
def test_missing_digits(text, message):
    with pytest.raises(InputError) as info:
        parse_flags(text)
    assert info.value.message == message


@pytest.mark.parametrize(
    ("text", "words"),
    [("z0", "1..999"), ("z1000", "1..999"), ("d128", "0..127"), ("t0", "ttl"), ("T99999999999", "ttl"),
     ("z" + "9" * 5000, "1..999"), ("d" + "1" * 5000, "0..127"), ("d" + "0" * 5000 + "128", "0..127")],
)
def test_numbers_out_of_range(text, words):
    with pytest.raises(InputError, match=words):
        parse_flags(text)


def test_unclosed_notify_socket():
    with pytest.raises(InputError, match=r"flag n at position 2 .*'<' has no closing '>'"):
        parse_flags("sn<tcp:127.0.0.1:9999")


@pytest.mark.parametrize("text", ["n<>", "n<a\x01b>", "n<&&>"])
def test_bad_notify_socket_is_refused_as_a_token(text):
    with pytest.raises(InputError, match="notify socket"):
        parse_flags(text)


@pytest.mark.parametrize(("text", "position"), [("s w", 2), (" s", 1), ("s\t", 2), ("s\n", 2), ("n<a b>", 4)])
def test_whitespace_is_refused(text, position):
    with pytest.raises(InputError, match=f"whitespace at position {position}"):
        parse_flags(text)


def test_non_text_is_refused():
    with pytest.raises(InputError, match="must be text"):
        parse_flags(42)  # type: ignore[arg-type]


@settings(max_examples=500)
@given(st.text())
def test_any_text_gives_flags_or_input_error(text):
    try:
        flags = parse_flags(text)
    except InputError:
        return
    assert flags.text == text


@settings(max_examples=500)
@given(st.text(alphabet="alkiefrocswdAEISW0123456789", max_size=30))
def test_slot0_has_one_letter_per_a_i_e_s_w(text):
    try:
        flags = parse_flags(text)
    except InputError:
        return  # e.g. d followed by a number over 127
    assert flags.slot0 == "".join({"a": "A", "i": "I", "e": "E", "s": "S", "w": "S"}.get(c.lower(), "") for c in text)
    assert flags.symmetric == sum(c in "swSW" for c in text)


@settings(max_examples=300)
@given(st.text(alphabet="alkiefrocswndtTz0123456789<>:.AZ", max_size=30))
def test_flag_like_text_gives_flags_or_input_error(text):
    try:
        parse_flags(text)
    except InputError:
        pass
