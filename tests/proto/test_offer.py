"""The offer/answer planner: bare tags with `;N` added per stream, the DTMF tag encoded, bare t/T, and
`check` finding before any I/O every refusal `plan` could make with any relay (docs/protocol.md §4, §9, §16)."""

from __future__ import annotations

import itertools
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtppctl.proto import offer as planner
from rtppctl.proto.errors import InputError
from rtppctl.proto.flags import parse_flags
from rtppctl.proto.sdp import parse_sdp
from tests.proto.test_command import relay_url_decode

EVERY = frozenset({"REPACK", "CODECS", "NOTIFY", "NOTIFY_WILD", "SUBCOMMAND", "TTL_CHANGE", "AUTOBRIDGE",
                   "STATS", "STATS_EXTRA", "RECORD"})
#: The capabilities that change what an offer or answer sends.
RELEVANT = ("REPACK", "CODECS", "NOTIFY", "NOTIFY_WILD", "SUBCOMMAND", "TTL_CHANGE")
EVERY_SUBSET = [frozenset(combo) for size in range(len(RELEVANT) + 1) for combo in itertools.combinations(RELEVANT, size)]


def body(formats: str = "0 101", port: str = "4000", address: str = "10.0.0.1", family: str = "IP4") -> str:
    return (f"v=0\no=- 1 1 IN {family} {address}\ns=-\nc=IN {family} {address}\nt=0 0\n"
            f"m=audio {port} RTP/AVP {formats}\nm=video 0 RTP/AVP 31\nm=video 5000 RTP/AVP 31\n")


SDP = parse_sdp(body())
LEG = planner.CallLeg("c@h", "ft", "tt")


def test_tags_go_bare_to_the_encoders_and_each_stream_adds_its_number():
    steps = planner.plan(SDP, parse_flags(""), LEG, offer=True, capabilities=frozenset({"CODECS"}))
    assert steps.tags == ("ft", "tt")
    assert [s.command for s in steps.commands] == [
        "Uc0,101 c@h 10.0.0.1 4000 ft;1 tt;1",
        "Uc31 c@h 10.0.0.1 5000 ft;3 tt;3",
    ]
    answer = planner.plan(SDP, parse_flags(""), LEG, offer=False, capabilities=frozenset())
    assert [s.command for s in answer.commands] == ["L c@h 10.0.0.1 4000 tt;1 ft;1", "L c@h 10.0.0.1 5000 tt;3 ft;3"]


def test_the_m_line_port_goes_out_in_canonical_form():
    sdp = parse_sdp(body(port="04000/2"))
    steps = planner.plan(sdp, parse_flags(""), LEG, offer=True, capabilities=frozenset())
    assert steps.commands[0].command == "U c@h 10.0.0.1 4000 ft;1 tt;1"


@pytest.mark.parametrize("call_id", ["a%41b@h", "a+b@h", "100%", "a&&b", "ü@h"])
def test_the_dtmf_tag_survives_any_call_id(call_id):
    # OpenSIPS sends Dc<callid> raw, so the relay's URL-decoding changes a call-id with % or + (§16.3).
    leg = planner.CallLeg(call_id, "ft")
    steps = planner.plan(SDP, parse_flags("d"), leg, offer=True,
                         capabilities=frozenset({"SUBCOMMAND", "NOTIFY_WILD"}), notify_socket="tcp:127.0.0.1:9")
    words = steps.commands[0].command.split()
    assert words[5:7] == ["tcp:127.0.0.1:9", "I"]
    assert words[-3:-1] == ["&&", "M3:1"]
    sent = words[-1]
    assert set(sent) <= set(string.ascii_letters + string.digits + "._~-%")
    assert relay_url_decode(sent) == ("Dc" + call_id).encode()


@pytest.mark.parametrize("text", ["t", "T", "t30", "tT20"])
def test_ttl_flags_without_ttl_change_are_dropped_with_a_warning(text):
    steps = planner.plan(SDP, parse_flags(text), LEG, offer=True, capabilities=frozenset())
    assert steps.warnings == (f"flags {text}: the relay has no TTL_CHANGE capability; t/T not sent",)
    assert steps.commands[0].command == "U c@h 10.0.0.1 4000 ft;1 tt;1"


@pytest.mark.parametrize(("text", "head"), [("t", "Ut"), ("T", "UT"), ("t30", "Ut30"), ("tT20", "UtT20")])
def test_ttl_flags_with_ttl_change_are_copied_as_given(text, head):
    steps = planner.plan(SDP, parse_flags(text), LEG, offer=True, capabilities=frozenset({"TTL_CHANGE"}))
    assert steps.warnings == ()
    assert steps.commands[0].command.split()[0] == head


def test_z_still_needs_its_number():
    with pytest.raises(InputError, match="flag z needs a number"):
        parse_flags("tz")


# ------------------------------------------------------------------------------ check before any I/O

LONG_CALL_ID = "c" * 254  # Dc + 254 bytes: one byte over the DTMF tag's limit


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"leg": planner.CallLeg("c h", "ft")}, "call-id"),
        ({"leg": planner.CallLeg("c@h", "f;2")}, "from-tag 'f;2' contains ';'"),
        ({"leg": planner.CallLeg("c@h", "ft", "t;1")}, "to-tag 't;1' contains ';'"),
        ({"leg": planner.CallLeg("c@h", "&&")}, "'&&'"),
        ({"flags": "n"}, "flag n needs a notification socket"),
        ({"flags": "d"}, "flag d needs a notification socket"),
        # A configured socket goes through the one grammar (proto/notify.parse_notify_socket),
        # whatever reached the planner: nothing but tcp:IPv4:PORT or a unix path is sent.
        ({"flags": "n", "notify_socket": "tcp:"}, "notification socket 'tcp:': write tcp:IPv4:PORT"),
        ({"flags": "n", "notify_socket": "tcp:&&"}, "notification socket 'tcp:&&': write tcp:IPv4:PORT"),
        ({"flags": "n", "dialog_id": (-1, 2)}, "dialog id"),
        ({"dialog_id": (1, "2")}, "dialog id"),
        # Dd<did> with NOTIFY; without it the tag is Dc<call-id>, too long.
        ({"flags": "nd", "notify_socket": "tcp:127.0.0.1:9", "leg": planner.CallLeg(LONG_CALL_ID, "ft")},
         "DTMF tag"),
        ({"flags": "n", "notify_socket": "tcp:127.0.0.1:9", "dialog_id": (16**300, 1)}, "notify tag"),
        ({"sdp": parse_sdp(body(formats="0 200"))}, "payload type 200"),  # only sent with CODECS
        ({"sdp": parse_sdp(body(formats="0 0"))}, "duplicate payload type"),
        ({"source_ip": "relay.example"}, "not a numeric"),
        ({"source_ip": "[::1]"}, "not a numeric"),
        ({"flags": "s" * 9000}, "must stay under 8191"),
    ],
)
def test_check_raises_what_plan_would_for_some_relay(kwargs, message):
    args = {"sdp": SDP, "flags": "", "leg": LEG, **kwargs}
    args["flags"] = parse_flags(args["flags"])
    with pytest.raises(InputError) as refused:
        planner.check(args.pop("sdp"), args.pop("flags"), args.pop("leg"), offer=True, **args)
    assert message in refused.value.message
    assert "\n" not in refused.value.message


def test_check_sees_refusals_that_only_some_capabilities_cause():
    leg = planner.CallLeg(LONG_CALL_ID, "ft")
    flags = parse_flags("nd")
    # With every capability the DTMF tag is Dd<did>: fine. Without NOTIFY it is Dc<call-id>: too long.
    planner.plan(SDP, flags, leg, offer=True, capabilities=EVERY, notify_socket="tcp:127.0.0.1:9")
    with pytest.raises(InputError, match="DTMF tag"):
        planner.plan(SDP, flags, leg, offer=True, capabilities=EVERY - {"NOTIFY"}, notify_socket="tcp:127.0.0.1:9")
    with pytest.raises(InputError, match="DTMF tag"):
        planner.check(SDP, flags, leg, offer=True, notify_socket="tcp:127.0.0.1:9")
    # A payload type over 127 only matters when CODECS sends the list.
    sdp = parse_sdp(body(formats="0 200"))
    planner.plan(sdp, parse_flags(""), LEG, offer=True, capabilities=frozenset())
    with pytest.raises(InputError, match="payload type"):
        planner.check(sdp, parse_flags(""), LEG, offer=True)


def test_check_passes_what_every_relay_accepts():
    for text in ("", "swz20", "t", "tT20", "nd101", "aie", "lrock"):
        planner.check(SDP, parse_flags(text), LEG, offer=True, notify_socket="tcp:127.0.0.1:9", dialog_id=(1, 2))
        planner.check(SDP, parse_flags(text), LEG, offer=False, notify_socket="tcp:127.0.0.1:9")


# Mostly values that pass, so that plan runs with every capability subset; some that fail.
call_ids = st.one_of(st.sampled_from(["c@h", "a%b+c", "c" * 250, "c" * 253, "c" * 254, "c h", "&&", "c;1", ""]),
                     st.text(alphabet="ab%+&é", min_size=1, max_size=8))
tag_values = st.one_of(st.sampled_from(["ft", "tt", "t;1", "&&", "", "x" * 256]),
                       st.text(alphabet="ab%+&~", min_size=1, max_size=6))
flag_texts = st.one_of(st.sampled_from(["", "n", "d", "nd", "d101", "t", "T20", "tT", "z20", "swz20", "l", "s" * 9000,
                                        "n<tcp:&&>d", "n<x>d", "lnd"]),
                       st.text(alphabet="alkiefrocswndtT", max_size=10))
sockets = st.sampled_from([None, "tcp:", "unix:", "tcp:127.0.0.1:9", "unix:/run/n.sock", "tcp:&&", "&&", "tcp:a b"])
dialogs = st.sampled_from([None, (1, 2), (-1, 2), (16**300, 1), (0, 0)])
bodies = st.sampled_from([body(), body("0 200"), body("0 0"), body("0 8 " + " ".join(map(str, range(9, 127)))),
                          body(address="::1", family="IP6"), body(port="00001")])
source_ips = st.sampled_from([None, "192.0.2.1", "2001:db8::1", "relay.example", "[::1]"])


def planning_inputs(flag_text, sdp_text, call_id, from_tag, to_tag, in_reply):
    """(flags, sdp, leg) for a generated example; None when the flag string is refused already."""
    try:
        flags = parse_flags(flag_text)
    except InputError:
        return None
    return flags, parse_sdp(sdp_text), planner.CallLeg(call_id, from_tag, to_tag, in_reply)


@settings(max_examples=500)
@given(call_ids, tag_values, st.one_of(st.none(), tag_values), st.booleans(), flag_texts, sockets, dialogs,
       bodies, source_ips, st.booleans())
def test_plan_refuses_nothing_check_let_through(call_id, from_tag, to_tag, in_reply, flag_text, socket, dialog,
                                                sdp_text, source_ip, offer):
    inputs = planning_inputs(flag_text, sdp_text, call_id, from_tag, to_tag, in_reply)
    if inputs is None:
        return
    flags, sdp, leg = inputs
    context = {"source_ip": source_ip, "notify_socket": socket, "dialog_id": dialog}
    try:
        planner.check(sdp, flags, leg, offer=offer, **context)
    except InputError:
        return
    for capabilities in EVERY_SUBSET:
        planner.plan(sdp, flags, leg, offer=offer, capabilities=capabilities, **context)


def _outcome(build):
    try:
        return build()
    except InputError as err:
        return ("refused", err.message, err.hint)


# Names around the size limits (a command grows with them), with ';' and braces (what the
# template's stand-ins look like), and the ordinary ones.
template_names = st.one_of(st.sampled_from(["c@h", "{call-id}", "{from-tag}", "%(c)s", "a%b", "c" * 254, "c" * 255,
                                            "t;1", "{to-tag};1", "x" * 200, "&&", "é", "a b"]),
                           st.text(alphabet="ab%{}();&é", min_size=1, max_size=12))
template_flags = st.one_of(st.sampled_from(["", "t", "T20", "tT", "z20", "swz20", "l", "lrock", "aie", "o", "c", "f"]),
                           st.text(alphabet="alkiefrocswtTz0123456789", max_size=8))


@settings(max_examples=400)
@given(template_names, template_names, st.one_of(st.none(), template_names), st.booleans(), template_flags, bodies,
       source_ips, st.booleans(), st.sampled_from(EVERY_SUBSET))
def test_a_plan_from_its_template_is_the_plan_the_encoders_build(call_id, from_tag, to_tag, in_reply, flag_text,
                                                                  sdp_text, source_ip, offer, capabilities):
    # Without flags n and d a plan is filled in from a template planned once per shape; it must be
    # exactly what `_plan` builds command by command, and refuse what it refuses with the same words.
    inputs = planning_inputs(flag_text, sdp_text, call_id, from_tag, to_tag, in_reply)
    if inputs is None:
        return
    flags, sdp, leg = inputs
    context = {"offer": offer, "capabilities": capabilities, "source_ip": source_ip}
    slow = _outcome(lambda: _checked_slow_plan(sdp, flags, leg, **context))
    for _ in range(2):  # the first builds the template, the second finds it
        assert _outcome(lambda: planner.plan(sdp, flags, leg, **context)) == slow


def _checked_slow_plan(sdp, flags, leg, **context):
    from rtppctl.proto import command as cmd

    cmd.validate_call_id(leg.call_id)
    cmd.validate_tag(leg.from_tag, "from-tag")
    if leg.to_tag:
        cmd.validate_tag(leg.to_tag, "to-tag")
    return planner._plan(sdp, flags, leg, notify_socket=None, dialog_id=None, derived_dialog=None, **context)


# -- derived dialog ids and their tags ---------------------------------------------------------------------


def test_derived_dialog_ids_are_stable_fit_the_module_and_are_distinct_per_call():
    assert planner.derived_dialog_id("c@h") == planner.derived_dialog_id("c@h")
    seen: dict[str, str] = {}
    for n in range(100_000):
        call_id = f"{n}@host"
        entry, ident = planner.derived_dialog_id(call_id)
        assert 0 <= entry < planner.DIALOG_HASH_SIZE and 0 <= ident < 2**32
        tag = planner.notify_tag((entry, ident))
        assert len(tag) <= 30  # the module's limit (§9.1)
        # 4,096 values (the old crc32 % 4096) would have given each tag to about 24 of these calls.
        assert seen.setdefault(tag, call_id) == call_id, f"{call_id} and {seen[tag]} share {tag}"
    longest = planner.notify_tag((planner.DIALOG_HASH_SIZE - 1, 2**32 - 1))
    assert longest == "Tfff.ffffffff"


def test_further_attempts_give_other_stable_ids_and_tags_read_back():
    ids = [planner.derived_dialog_id("c@h", attempt) for attempt in range(8)]
    assert len(set(ids)) == 8 and ids == [planner.derived_dialog_id("c@h", attempt) for attempt in range(8)]
    for did in ids:
        notify, dtmf = planner.dialog_tags(did)
        assert (notify, dtmf) == (planner.notify_tag(did), planner.dtmf_tag("c@h", did))
        assert planner.dialog_id_of_tag(notify) == planner.dialog_id_of_tag(dtmf) == did
    for other in (None, "Dcc@h", "Tx.1", "T1", "I", "T1.", "TA.1", "Dd1.2.3"):
        assert planner.dialog_id_of_tag(other) is None
    with pytest.raises(ValueError):
        planner.derived_dialog_id("c@h", -1)


def test_plan_takes_the_derived_dialog_the_caller_chose_unless_one_was_given():
    flags = parse_flags("nd")
    chosen = planner.derived_dialog_id("c@h", 3)
    steps = planner.plan(SDP, flags, LEG, offer=True, capabilities=EVERY, notify_socket="tcp:127.0.0.1:9",
                         derived_dialog=chosen)
    assert (steps.notify_tag, steps.dtmf_tag) == planner.dialog_tags(chosen)
    default = planner.plan(SDP, flags, LEG, offer=True, capabilities=EVERY, notify_socket="tcp:127.0.0.1:9")
    assert default.notify_tag == planner.notify_tag(planner.derived_dialog_id("c@h"))
    given = planner.plan(SDP, flags, LEG, offer=True, capabilities=EVERY, notify_socket="tcp:127.0.0.1:9",
                         dialog_id=(1, 2), derived_dialog=chosen)
    assert (given.notify_tag, given.dtmf_tag) == ("T1.2", "Dd1.2")
    # Without flag n there is no dialog to stand in for: the DTMF tag is the Call-ID's, as in the module.
    dtmf_only = planner.plan(SDP, parse_flags("d"), LEG, offer=True, capabilities=EVERY,
                             notify_socket="tcp:127.0.0.1:9", derived_dialog=chosen)
    assert dtmf_only.dtmf_tag == "Dcc@h" and dtmf_only.notify_tag is None


def test_a_dialog_id_part_past_an_unsigned_int_is_refused_and_tags_read_back():
    # OpenSIPS keeps h_entry and h_id as unsigned int (modules/dialog/dlg_hash.h) and writes them
    # with int2reverse_hex (ut.h): 8 hex digits at most. The tag's reader is proto/notify's.
    assert planner.parse_dialog_id("4294967295.1") == (2**32 - 1, 1)
    with pytest.raises(InputError, match="at most 4294967295"):
        planner.parse_dialog_id("4294967296.1")
    for dialog in [(0, 0), (4095, 2**32 - 1), (123, 456)]:
        notify, dtmf = planner.dialog_tags(dialog)
        assert planner.dialog_id_of_tag(notify) == dialog == planner.dialog_id_of_tag(dtmf)
    assert planner.dialog_id_of_tag("T" + "f" * 9 + ".1") is None
