"""Every encoder gives the exact wire text; every decoder reads the real relay's replies.

Expected strings and replies come from protocol.md §4.3, §13 and the probe transcripts.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtppctl.proto import command as c
from rtppctl.proto.errors import InputError, MalformedReply, ProxyError, RtppctlError

# ------------------------------------------------------------------------------ tokens

BAD_TOKENS = [
    ("", "empty"),
    ("a b", "whitespace"),
    ("abc\nX", "whitespace"),
    ("abc\r", "whitespace"),
    ("a\tb", "whitespace"),
    ("a\x0bb", "whitespace"),
    ("a\x0cb", "whitespace"),
    ("a\x00b", "control"),
    ("a\x01b", "control"),
    ("a\x7fb", "control"),
    ("a\u200bb", "control"),  # zero-width space (Cf)
    ("a\u00a0b", "whitespace"),  # no-break space
    ("a\u2028b", "whitespace"),  # line separator
    ("a\u3000b", "whitespace"),  # ideographic space
    ("a\ud800b", "surrogate"),
    ("&&", "sub-command"),
    ("x" * 256, "256 bytes"),
    ("é" * 128, "256 bytes"),
]


@pytest.mark.parametrize(("value", "problem"), BAD_TOKENS)
def test_validate_token_refuses(value, problem):
    with pytest.raises(InputError) as info:
        c.validate_token(value, "call-id")
    assert "call-id" in info.value.message
    assert problem in info.value.message


def test_validate_token_names_the_limit_and_shows_value_with_repr():
    with pytest.raises(InputError, match=r"is 256 bytes long; the limit is 255"):
        c.validate_token("x" * 256, "tag")
    with pytest.raises(InputError) as info:
        c.validate_token("abc\nX", "call-id")
    assert "'abc\\nX'" in info.value.message


def test_validate_token_accepts():
    assert c.validate_token("x" * 255, "call-id") == "x" * 255
    assert c.validate_token("a;1", "tag") == "a;1"
    assert c.validate_token("ünïcødé@h", "call-id") == "ünïcødé@h"
    assert c.validate_token("a&&b", "tag") == "a&&b"
    assert c.validate_token("x" * 300, "path", max_length=300) == "x" * 300


def test_validate_token_refuses_non_text():
    with pytest.raises(InputError, match="must be text"):
        c.validate_token(123, "call-id")  # type: ignore[arg-type]


def test_newline_in_call_id_never_reaches_the_wire():
    with pytest.raises(InputError):
        c.update("abc\nX", "127.0.0.1", 30000, "ft;1")
    with pytest.raises(InputError):
        c.delete("abc\nX", "ft")


# ------------------------------------------------------------------------------ capabilities

UPSTREAM_DATES = (
    "20040107 20050322 20060704 20071116 20071218 20080403 20081102 20081224 20090810 20140323 "
    "20140617 20141004 20150330 20150420 20150617 20191015 20200226 20230205 20230314 20230424 "
    "20250523 20251015 20260306 20260308 20260309"
).split()


def test_capabilities_cover_every_upstream_date_and_ttl_change():
    dates = [cap.date for cap in c.CAPABILITIES]
    assert set(dates) == set(UPSTREAM_DATES) | {"20170313"}
    assert len(dates) == len(set(dates))
    assert len({cap.name for cap in c.CAPABILITIES}) == len(c.CAPABILITIES)
    assert dates == sorted(dates)


def test_capability_bits_and_probe_order():
    bits = {cap.date: cap.module_bit for cap in c.CAPABILITIES if cap.module_bit}
    assert bits == {
        "20071116": "REPACK", "20081102": "CODECS", "20090810": "AUTOBRIDGE", "20081224": "NOTIFY",
        "20080403": "STATS", "20150617": "NOTIFY_WILD", "20150420": "STATS_EXTRA",
        "20170313": "TTL_CHANGE", "20071218": "RECORD", "20191015": "SUBCOMMAND",
    }
    assert c.MODULE_PROBE_ORDER == (
        "20071116", "20081102", "20090810", "20081224", "20080403",
        "20150617", "20150420", "20170313", "20071218", "20191015",
    )
    assert c.BASE_VERSION == "20040107"
    assert c.EXTENDED_VERSION == "20050322"


def test_capability_lookup():
    assert c.capability("20071116").name == "REPACK"
    assert c.capability("repack").date == "20071116"
    assert c.capability(" STATS_EXTRA ").date == "20150420"
    assert c.capability("20251015").meaning == "'&& S ttl=<n>' sub-command"
    assert c.capability("20060704").meaning == "capability 20060704"
    with pytest.raises(InputError, match="unknown capability '19990101'"):
        c.capability("19990101")
    with pytest.raises(InputError):
        c.capability(20071116)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ modifiers


@pytest.mark.parametrize(
    ("modifiers", "text"),
    [
        (c.Modifiers(), ""),
        (c.Modifiers(letters="SS", repacketize_ms=20, codecs=(18, 101)), "SSZ20c18,101"),
        (c.Modifiers(codecs=(0, 8, 101)), "c0,8,101"),
        (c.Modifiers(letters="A", codecs=(0,)), "Ac0"),
        (c.Modifiers(letters="W"), "W"),
        (c.Modifiers(letters="N"), "N"),
        (c.Modifiers(letters="EI"), "EI"),
        (c.Modifiers(ipv6=True), "6"),
        (c.Modifiers(ipv6=True, local_address="::1"), "6l[::1]"),
        (c.Modifiers(ipv6=True, local_address="[1:2:3::4]"), "6l[1:2:3::4]"),
        (c.Modifiers(local_address="127.0.0.1"), "l127.0.0.1"),
        (c.Modifiers(local_address="{v6}"), "l{v6}"),
        (c.Modifiers(bridge_to="2001:db8::1"), "R[2001:db8::1]"),
        (c.Modifiers(bridge_to="192.0.2.1", repacketize_ms=30), "Z30R192.0.2.1"),
        (c.Modifiers(ttl="t30T20"), "t30T20"),
        (
            c.Modifiers(letters="AS", ipv6=True, local_address="::1", repacketize_ms=20,
                        bridge_to="::2", codecs=(0, 101), ttl="t30"),
            "AS6l[::1]Z20R[::2]c0,101t30",
        ),
    ],
)
def test_modifiers_encode_in_slot_order(modifiers, text):
    assert modifiers.encode() == text


def test_modifiers_codecs_from_list_become_tuple():
    assert c.Modifiers(codecs=[0, 8]).codecs == (0, 8)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"letters": "x"},
        {"letters": "s"},
        {"letters": "6"},
        {"repacketize_ms": 0},
        {"repacketize_ms": 1000},
        {"repacketize_ms": True},
        {"codecs": (128,)},
        {"codecs": (-1,)},
        {"codecs": (0, 0)},
        {"codecs": "0,8"},
        {"ttl": "30"},
        {"ttl": "t"},
        {"ttl": "t30 "},
        {"local_address": "::1 "},
        {"local_address": "host.example"},
        {"local_address": "[127.0.0.1]"},
        {"bridge_to": "{v6}"},
        {"bridge_to": "nohost"},
        {"ipv6": 1},
    ],
)
def test_modifiers_refuse(kwargs):
    with pytest.raises(InputError):
        c.Modifiers(**kwargs)


# ------------------------------------------------------------------------------ encoders


def test_version_commands():
    assert c.version() == "V"
    assert c.version_feature("20050322") == "VF 20050322"
    for bad in ("2005032", "200503221", "2005032x", "", " 20050322"):
        with pytest.raises(InputError):
            c.version_feature(bad)


def test_update_as_the_module_sends_it():
    assert (
        c.update("call1@h", "127.0.0.1", 30000, "fromtag1;1", modifiers=c.Modifiers(codecs=(0, 8, 101)))
        == "Uc0,8,101 call1@h 127.0.0.1 30000 fromtag1;1"
    )
    assert (
        c.update("c@h", "10.0.0.1", "4000", "ft;1",
                 modifiers=c.Modifiers(letters="SS", repacketize_ms=20, codecs=(18, 101)))
        == "USSZ20c18,101 c@h 10.0.0.1 4000 ft;1"
    )
    assert c.update("call1@h", "127.0.0.1", 30010, "totag1;1", "fromtag1;1") == (
        "U call1@h 127.0.0.1 30010 totag1;1 fromtag1;1"
    )
    assert c.update("tcall6", "::1", 5000, "ft;1", modifiers=c.Modifiers(ipv6=True)) == "U6 tcall6 ::1 5000 ft;1"
    # on hold and port 0
    assert c.update("call4@h", "0.0.0.0", 30040, "ft4;1") == "U call4@h 0.0.0.0 30040 ft4;1"
    assert c.update("call4b@h", "10.0.0.1", 0, "ft4b;1") == "U call4b@h 10.0.0.1 0 ft4b;1"
    # the m= port string passes through verbatim
    assert c.update("a", "10.0.0.1", "04000", "f;1") == "U a 10.0.0.1 04000 f;1"
    # an empty to-tag is left out
    assert c.update("a", "10.0.0.1", 1, "f;1", "") == "U a 10.0.0.1 1 f;1"


def test_update_with_notify_and_dtmf():
    assert (
        c.update("ntf1@h", "127.0.0.1", 30100, "ft1;1",
                 notify_socket="tcp:127.0.0.1:24000", notify_tag="Ta1.b2")
        == "U ntf1@h 127.0.0.1 30100 ft1;1 tcp:127.0.0.1:24000 Ta1.b2"
    )
    assert (
        c.update("dtmf1@h", "127.0.0.1", 57994, "dft;1", modifiers=c.Modifiers(codecs=(0, 101)),
                 notify_socket="tcp:127.0.0.1:24000", notify_tag="Tff.ee",
                 subcommands=[c.dtmf_subcommand("Ddff.ee")])
        == "Uc0,101 dtmf1@h 127.0.0.1 57994 dft;1 tcp:127.0.0.1:24000 Tff.ee && M3:1 Ddff.ee"
    )
    assert (
        c.update("cid0", "127.0.0.1", 5000, "ftag;1", "ttag;1", notify_socket="unix:/nonexistent",
                 notify_tag="Tabc")
        == "U cid0 127.0.0.1 5000 ftag;1 ttag;1 unix:/nonexistent Tabc"
    )
    assert c.update("a", "127.0.0.1", 1, "f;1", notify_socket="/tmp/n.sock", notify_tag="T%41bc%20d").endswith(
        " /tmp/n.sock T%41bc%20d"
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"notify_socket": "tcp:127.0.0.1:24000"}, "give both or neither"),
        ({"notify_tag": "Tx"}, "give both or neither"),
        ({"notify_socket": "tcp:1.2.3.4:1", "notify_tag": "T a"}, "whitespace"),
        ({"notify_socket": "tcp:1.2.3.4:1", "notify_tag": "T%zz"}, "bad %-escape"),
        ({"notify_socket": "tcp:1.2.3.4:1", "notify_tag": "T%4"}, "bad %-escape"),
        ({"notify_socket": "tcp:1.2.3.4:1", "notify_tag": "T%0aI"}, "control character"),
        ({"notify_socket": "tcp:1.2.3.4:1", "notify_tag": "T%00"}, "control character"),
        ({"notify_socket": "tcp:1.2.3.4:1\n", "notify_tag": "T1"}, "notify socket"),
    ],
)
def test_update_notify_errors(kwargs, match):
    with pytest.raises(InputError, match=match):
        c.update("a", "127.0.0.1", 1, "f;1", **kwargs)


@pytest.mark.parametrize(
    ("address", "port"),
    [("localhost", 1), ("[::1]", 1), ("1.2.3", 1), ("fe80::1%eth0", 1), ("127.0.0.1", 65536),
     ("127.0.0.1", -1), ("127.0.0.1", "abc"), ("127.0.0.1", "99999"), ("127.0.0.1", ""),
     ("127.0.0.1", True), ("127.0.0.1", 1.5), ("127.0.0.1", "٣")],
)
def test_update_address_and_port_errors(address, port):
    with pytest.raises(InputError):
        c.update("a", address, port, "f;1")


def test_lookup():
    assert (
        c.lookup("call1@h", "127.0.0.1", 30010, "fromtag1;1", "totag1;1", modifiers=c.Modifiers(codecs=(8, 101)))
        == "Lc8,101 call1@h 127.0.0.1 30010 fromtag1;1 totag1;1"
    )
    assert (
        c.lookup("dtmf1@h", "127.0.0.1", 58535, "dft;1", "dtt;1", modifiers=c.Modifiers(codecs=(0, 101)),
                 subcommands=[c.dtmf_subcommand("Ddff.ee")])
        == "Lc0,101 dtmf1@h 127.0.0.1 58535 dft;1 dtt;1 && M3:1 Ddff.ee"
    )
    assert c.lookup("nd3@h", "::1", 30000, "ft;1", "tt;1") == "L nd3@h ::1 30000 ft;1 tt;1"
    with pytest.raises(TypeError):
        c.lookup("a", "127.0.0.1", 1, "f;1", "t;1", notify_socket="x", notify_tag="y")  # type: ignore[call-arg]


def test_delete():
    assert c.delete("call1@h", "fromtag1", "totag1") == "D call1@h fromtag1 totag1"
    assert c.delete("call2@h", "ft2", weak=True) == "Dw call2@h ft2"
    assert c.delete("call2@h", "ft2", None) == "D call2@h ft2"


def test_play_and_stop():
    assert (
        c.play("call1@h", "/nonexistent/prompt", "fromtag1;1", "totag1;1")
        == "P1 call1@h /nonexistent/prompt session fromtag1;1 totag1;1"
    )
    assert (
        c.play("call1@h", "/nonexistent/prompt", "fromtag1;1", "totag1;1", count=-1)
        == "P-1 call1@h /nonexistent/prompt session fromtag1;1 totag1;1"
    )
    assert (
        c.play("call1@h", "/nonexistent/prompt", "fromtag1;1", "totag1;1", codecs=(0, 8))
        == "P1 call1@h /nonexistent/prompt 0,8 fromtag1;1 totag1;1"
    )
    assert c.play("call2@h", "p", "ft2;1", codecs="8,0", count=0) == "P0 call2@h p 8,0 ft2;1"
    assert c.stop_play("call1@h", "fromtag1;1", "totag1;1") == "S call1@h fromtag1;1 totag1;1"
    for kwargs in ({"count": -2}, {"count": True}, {"count": "1"}, {"codecs": "0, 8"}, {"codecs": ()},
                   {"codecs": "sessions"}, {"codecs": (200,)}):
        with pytest.raises(InputError):
            c.play("a", "p", "f;1", **kwargs)
    with pytest.raises(InputError, match="prompt"):
        c.play("a", "my prompt", "f;1")


def test_recording_commands():
    assert c.record("call1@h", "fromtag1", "totag1") == "R call1@h fromtag1 totag1"
    assert c.record("call1@h", "fromtag1", "totag1", single_file=True) == "Rs call1@h fromtag1 totag1"
    assert c.record("call1@h", "fromtag1") == "R call1@h fromtag1"
    assert (
        c.copy("call1@h", "udp:127.0.0.1:45000", "fromtag1;1", "totag1;1")
        == "C call1@h udp:127.0.0.1:45000 fromtag1;1 totag1;1"
    )
    assert (
        c.copy("call1@h", "udp:127.0.0.1:45002", "fromtag1;2", "totag1;2", reply_port=True)
        == "Cp call1@h udp:127.0.0.1:45002 fromtag1;2 totag1;2"
    )
    assert c.copy("c", "myrec", "f;2", single_file=True) == "Cs c myrec f;2"
    assert c.copy("c", "t", "f", "g", single_file=True, reply_port=True) == "Csp c t f g"
    assert c.stop_record("call1@h", "fromtag1;1", "totag1;1") == "N call1@h fromtag1;1 totag1;1"
    assert c.stop_record("call1@h", "fromtag1;1", "totag1;1", all_streams=True) == "Na call1@h fromtag1;1 totag1;1"
    with pytest.raises(InputError, match="copy target"):
        c.copy("c", "my file", "f")


def test_query():
    assert c.query("call1@h", "fromtag1;1", "totag1;1") == "Q call1@h fromtag1;1 totag1;1"
    assert c.query("call1@h", "fromtag1;1", "totag1;1", verbose=True) == "Qv call1@h fromtag1;1 totag1;1"
    assert c.query("call1@h", "fromtag1;1") == "Q call1@h fromtag1;1"
    assert (
        c.query("call1@h", "fromtag1;1", "totag1;1",
                ("rtpa_nsent", "rtpa_nrcvd", "rtpa_ndups", "rtpa_nlost", "rtpa_perrs"))
        == "Q call1@h fromtag1;1 totag1;1 rtpa_nsent rtpa_nrcvd rtpa_ndups rtpa_nlost rtpa_perrs"
    )
    assert c.query("nd6@h", "ft;1", subcommands=[c.delete_subcommand()]) == "Q nd6@h ft;1 && D"
    assert len(c.query("a", "f", "t", ["ttl"] * 11).split()) == 15
    with pytest.raises(InputError, match="at most 11"):
        c.query("a", "f", "t", ["ttl"] * 12)
    with pytest.raises(InputError, match="need a to-tag"):
        c.query("a", "f", None, ["ttl"])
    with pytest.raises(InputError, match="single string"):
        c.query("a", "f", "t", "ttl")
    with pytest.raises(InputError, match="counter name"):
        c.query("a", "f", "t", ["ttl npkts_ina"])


def test_stats_info_and_delete_all():
    assert c.get_stats() == "G"
    assert c.get_stats(["nsess_created", "nsess_destroyed", "npkts_rcvd"]) == (
        "G nsess_created nsess_destroyed npkts_rcvd"
    )
    assert c.get_stats(("nsess_created",), verbose=True) == "Gv nsess_created"
    with pytest.raises(InputError, match="statistic name"):
        c.get_stats(["a\nX"])
    assert c.info() == "I"
    assert c.info(brief=True) == "Ib"
    assert c.info(load=True) == "Il"
    assert c.info(brief=True, load=True) == "Ibl"
    assert c.delete_all() == "X"


# ------------------------------------------------------------------------------ sub-commands


def test_subcommand_builders():
    assert c.dtmf_subcommand("Ddff.ee", 101) == "M3:1 Ddff.ee 101"
    assert c.dtmf_subcommand("Dcdtmf2@h", 100) == "M3:1 Dcdtmf2@h 100"
    assert c.dtmf_subcommand("Ddff.ee") == "M3:1 Ddff.ee"
    assert c.dtmf_subcommand("Dx", module_id=9, instance=2) == "M9:2 Dx"
    assert c.module_subcommand(3, 1, "Dcdtmf4", "101", "h") == "M3:1 Dcdtmf4 101 h"
    assert c.delete_subcommand() == "D"
    assert c.delete_subcommand(weak=True) == "Dw"
    assert c.session_ttl_subcommand(30) == "S ttl=30"
    with pytest.raises(InputError, match="start with 'D'"):
        c.dtmf_subcommand("dff.ee")
    for bad in ((lambda: c.dtmf_subcommand("Dx", 128)), (lambda: c.dtmf_subcommand("D x")),
                (lambda: c.module_subcommand(-1, 1)), (lambda: c.module_subcommand(3, 1, "a b")),
                (lambda: c.module_subcommand(3, 1, "&&")), (lambda: c.session_ttl_subcommand(-1)),
                (lambda: c.session_ttl_subcommand("30"))):
        with pytest.raises(InputError):
            bad()


def test_several_subcommands_join_in_order():
    assert (
        c.update("a", "127.0.0.1", 1, "f;1", subcommands=[c.dtmf_subcommand("Dca"), c.session_ttl_subcommand(30)])
        == "U a 127.0.0.1 1 f;1 && M3:1 Dca && S ttl=30"
    )


@pytest.mark.parametrize("command", ["D a f", "P1 a p session f", "S a f", "R a f", "C a t f", "N a f",
                                     "G", "I", "X", "V", "VF 20050322"])
def test_subcommands_only_after_u_l_q(command):
    with pytest.raises(InputError, match="only after U, L and Q"):
        c.with_subcommands(command, ["D"])
    assert c.with_subcommands(command, []) == command


@pytest.mark.parametrize("sub", ["", "D\nX", "D  x", " D", "D && X", "M3:1 D\x00"])
def test_subcommand_text_is_checked(sub):
    with pytest.raises(InputError):
        c.update("a", "127.0.0.1", 1, "f;1", subcommands=[sub])


def test_with_subcommands_accepts_a_single_string():
    assert c.with_subcommands("U a 127.0.0.1 1 f;1", "D") == "U a 127.0.0.1 1 f;1 && D"
    assert c.with_subcommands("Qv a f;1", ["D"]) == "Qv a f;1 && D"
    assert c.with_subcommands("l a 1.2.3.4 1 f;1 t;1", ["D"]).endswith(" && D")


# ------------------------------------------------------------------------------ decoders


def test_decode_reply_bytes():
    assert c.decode_reply_bytes(b"40614 127.0.0.1\n") == "40614 127.0.0.1"
    assert c.decode_reply_bytes(b"0") == "0"
    assert c.decode_reply_bytes(b"\n") == ""
    assert c.decode_reply_bytes(b"a\n\n") == "a\n"
    assert c.decode_reply_bytes(bytearray(b"E50\n")) == "E50"
    assert c.decode_reply_bytes("caf\u00e9\n".encode()) == "caf\u00e9"
    with pytest.raises(MalformedReply, match="UTF-8"):
        c.decode_reply_bytes(b"\xff\xfe\n")
    with pytest.raises(MalformedReply, match="NUL"):
        c.decode_reply_bytes(b"0\x00\n")
    with pytest.raises(MalformedReply):
        c.decode_reply_bytes("0\n")  # type: ignore[arg-type]


def test_error_code_and_raise_for_error():
    assert c.error_code("E50") == 50
    assert c.error_code("E0") == 0
    assert c.error_code("E3 && -1") == 3
    assert c.error_code("0") is None
    assert c.error_code("40614 127.0.0.1") is None
    assert c.error_code("E") is None
    assert c.error_code("E5x") is None
    c.raise_for_error("0")
    with pytest.raises(ProxyError) as info:
        c.raise_for_error("E60", command="P1 call1@h p session f;1", node="udp:127.0.0.1:22222")
    assert info.value.code == 60
    assert info.value.name == "PLRFAIL"
    assert "'P1'" in info.value.message and "udp:127.0.0.1:22222" in info.value.message
    with pytest.raises(ProxyError) as info:
        c.raise_for_error("E77")
    assert info.value.name == "UNKNOWN"


def test_split_subcommand_results():
    assert c.split_subcommand_results("43394 127.0.0.1 && -1") == ("43394 127.0.0.1", ("-1",))
    assert c.split_subcommand_results("43394 127.0.0.1") == ("43394 127.0.0.1", ())
    assert c.split_subcommand_results("1 && 0 && -1") == ("1", ("0", "-1"))


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("40614 127.0.0.1", c.PortReply(40614, "127.0.0.1", False, ())),
        ("41704 ::1 6", c.PortReply(41704, "::1", True, ())),
        ("42192", c.PortReply(42192, None, False, ())),
        ("43394 127.0.0.1 && -1", c.PortReply(43394, "127.0.0.1", False, ("-1",))),
        ("44190 203.0.113.7", c.PortReply(44190, "203.0.113.7", False, ())),
        ("0", c.PortReply(0, None, False, ())),
        (" 40614  127.0.0.1 ", c.PortReply(40614, "127.0.0.1", False, ())),
    ],
)
def test_parse_port_reply(reply, expected):
    assert c.parse_port_reply(reply) == expected


@pytest.mark.parametrize("reply", ["", "abc", "65536", "-1", "40614 localhost", "40614 127.0.0.1 4",
                                   "40614 ::1 6 x", "40614x", "٤٠٦١٤", "1" * 5000])
def test_parse_port_reply_malformed(reply):
    with pytest.raises(MalformedReply) as info:
        c.parse_port_reply(reply)
    assert "port reply" in info.value.message


def test_parse_port_reply_error():
    with pytest.raises(ProxyError) as info:
        c.parse_port_reply("E36")
    assert info.value.code == 36


def test_parse_version_and_capability():
    assert c.parse_version("20040107") == 20040107
    with pytest.raises(ProxyError):
        c.parse_version("E5")
    for bad in ("", "2004", "x20040107"):
        with pytest.raises(MalformedReply):
            c.parse_version(bad)
    assert c.parse_capability("1") is True
    assert c.parse_capability("0") is False
    assert c.parse_capability("E2") is False
    with pytest.raises(MalformedReply, match="capability"):
        c.parse_capability("yes")


def test_parse_result_and_copy_reply():
    assert c.parse_result("0") == 0
    with pytest.raises(ProxyError) as info:
        c.parse_result("E50")
    assert info.value.name == "SESUNKN"
    with pytest.raises(ProxyError) as info:
        c.parse_result("E60")
    assert info.value.code == 60
    with pytest.raises(MalformedReply):
        c.parse_result("ok")
    assert c.parse_copy_reply("0") is None
    assert c.parse_copy_reply("40020 127.0.0.1") == c.PortReply(40020, "127.0.0.1", False, ())
    with pytest.raises(ProxyError):
        c.parse_copy_reply("E65")


def test_parse_counters():
    assert c.parse_counters("60 0 0 0 0") == {
        "ttl": 60, "npkts_ina": 0, "npkts_ino": 0, "nrelayed": 0, "ndropped": 0,
    }
    assert c.parse_counters("ttl=60 npkts_ina=0 npkts_ino=0 nrelayed=0 ndropped=0") == {
        "ttl": 60, "npkts_ina": 0, "npkts_ino": 0, "nrelayed": 0, "ndropped": 0,
    }
    names = ("rtpa_nsent", "rtpa_nrcvd", "rtpa_ndups", "rtpa_nlost", "rtpa_perrs")
    assert c.parse_counters("10 8 1 2 0", names) == dict(zip(names, (10, 8, 1, 2, 0)))
    verbose = c.parse_counters(
        "ttl=60 rtpa_nsent=0 rtpa_perrs=0 longest_ipi=0.000000 rtpa_jlast=0.000000 rtpa_jmax=0.000000 "
        "rtpa_javg=0.000000",
        ("ttl", "rtpa_nsent", "rtpa_perrs", "longest_ipi", "rtpa_jlast", "rtpa_jmax", "rtpa_javg"),
    )
    assert verbose["ttl"] == 60 and isinstance(verbose["ttl"], int)
    assert verbose["longest_ipi"] == 0.0 and isinstance(verbose["longest_ipi"], float)
    assert c.parse_counters("longest_ipi=0.020357 rtpa_jlast=24.795882")["rtpa_jlast"] == pytest.approx(24.795882)
    with pytest.raises(ProxyError) as info:
        c.parse_counters("E62", ("bogus",))
    assert info.value.name == "QRYFAIL"
    for reply, asked in (("60 0 0 0", ()), ("60 0 0 0 0 0", ()), ("60 x 0 0 0", ()), ("ttl=60 0", ()),
                         ("ttl=60", ("npkts_ina",)), ("=60", ()), ("ttl=", ()), ("", ())):
        with pytest.raises(MalformedReply):
            c.parse_counters(reply, asked)


def test_parse_stats():
    assert c.parse_stats("", ()) == {}
    names = ("nsess_created", "nsess_destroyed", "npkts_rcvd")
    assert c.parse_stats("0 0 0", names) == dict.fromkeys(names, 0)
    assert c.parse_stats("nsess_created=0 nsess_destroyed=0 npkts_rcvd=0", names) == dict.fromkeys(names, 0)
    with pytest.raises(ProxyError) as info:
        c.parse_stats("E68", ("nosuchstat",))
    assert info.value.name == "STSFAIL"
    with pytest.raises(MalformedReply):
        c.parse_stats("0 0", names)
    with pytest.raises(MalformedReply):
        c.parse_stats("0", ())


INFO = ("sessions created: 6\nactive sessions: 0\nactive streams: 0\npackets received: 18\n"
        "packets transmitted: 18\n")


def test_parse_info():
    expected = {"sessions_created": 6, "active_sessions": 0, "active_streams": 0, "packets_received": 18,
                "packets_transmitted": 18}
    assert c.parse_info(INFO) == expected
    assert c.parse_info(c.decode_reply_bytes(INFO.encode())) == expected
    loaded = c.parse_info(INFO + "average load: 0.250000\n")
    assert loaded["average_load"] == 0.25
    assert set(c.INFO_FIELDS.values()) == set(expected) | {"average_load"}
    assert c.parse_info(INFO + "Ports In Use: 12\nbuild: v3.2\n")["ports_in_use"] == 12
    with pytest.raises(ProxyError):
        c.parse_info("E18")
    for bad in ("", "sessions created 6", "sessions created: many", ": 5"):
        with pytest.raises(MalformedReply):
            c.parse_info(bad)


# ------------------------------------------------------------------------------ properties

DECODERS = [
    c.parse_port_reply, c.parse_version, c.parse_capability, c.parse_result, c.parse_copy_reply,
    c.parse_counters, c.parse_stats, c.parse_info, c.error_code, c.raise_for_error,
    c.split_subcommand_results,
    lambda reply: c.parse_counters(reply, ("ttl", "rtpa_jmax")),
    lambda reply: c.parse_stats(reply, ("nsess_created",)),
]

reply_text = st.one_of(
    st.text(),
    st.text(alphabet="0123456789 .=E&-6:\nabc"),
    st.lists(st.sampled_from(["E50", "0", "6", "&&", "ttl=1", "1.5", "127.0.0.1", "::1", "x", "a: 1", "\n"]))
    .map(" ".join),
)


@settings(max_examples=300)
@given(reply_text)
def test_decoders_raise_only_rtppctl_errors(reply):
    for decode in DECODERS:
        try:
            decode(reply)
        except RtppctlError:
            pass


@settings(max_examples=300)
@given(st.binary())
def test_decode_reply_bytes_raises_only_malformed_reply(data):
    try:
        text = c.decode_reply_bytes(data)
    except MalformedReply:
        return
    assert "\x00" not in text


ENCODERS = [
    # (build from one user token, number of whitespace-separated words expected)
    (lambda t: c.update(t, "127.0.0.1", 1, "f;1"), 5),
    (lambda t: c.update("a", "127.0.0.1", 1, t, "g;1", notify_socket="/s", notify_tag="T1"), 8),
    (lambda t: c.update("a", "127.0.0.1", 1, "f;1", notify_socket=t, notify_tag=t), 7),
    (lambda t: c.update("a", t, 1, "f;1"), 5),
    (lambda t: c.update("a", "127.0.0.1", t, "f;1"), 5),
    (lambda t: c.update("a", "127.0.0.1", 1, "f;1", modifiers=c.Modifiers(local_address=t)), 5),
    # an empty to-tag is left out, one word fewer
    (lambda t: c.lookup("a", "127.0.0.1", 1, "f;1", t), lambda t: 6 if t else 5),
    (lambda t: c.delete(t, "f", "g"), 4),
    (lambda t: c.play("a", t, "f;1", "g;1"), 6),
    (lambda t: c.play(t, "p", "f;1", codecs=t), 5),
    (lambda t: c.stop_play("a", "f", t), lambda t: 4 if t else 3),
    (lambda t: c.record("a", t), 3),
    (lambda t: c.copy("a", t, "f", "g"), 5),
    (lambda t: c.stop_record(t, "f"), 3),
    (lambda t: c.query("a", "f", "g", [t, "ttl"]), 6),
    (lambda t: c.get_stats([t]), 2),
    (lambda t: c.update("a", "127.0.0.1", 1, "f;1", subcommands=[c.dtmf_subcommand(t, 101)]), 9),
    (lambda t: c.update("a", "127.0.0.1", 1, "f;1", subcommands=[c.module_subcommand(3, 1, t)]), 8),
]

user_text = st.one_of(
    st.text(),
    st.text(alphabet=st.sampled_from(list("ab;%0A1.:\n\r\t \x00\x85\u2028\u200b&D[]{}"))),
    st.sampled_from(["&&", "D&&", "Dx", "127.0.0.1", "::1", "{v6}", "T%0a", "x" * 256, "x" * 255]),
)


@settings(max_examples=200)
@given(user_text, st.integers(0, len(ENCODERS) - 1))
def test_user_tokens_never_add_lines_or_arguments(token, which):
    build, words = ENCODERS[which]
    try:
        line = build(token)
    except InputError:
        return
    assert "\n" not in line and "\r" not in line and "\x00" not in line
    expected = words(token) if callable(words) else words
    assert len(line.split()) == expected, line


@settings(max_examples=200)
@given(user_text)
def test_free_subcommand_text_adds_exactly_one_subcommand(text):
    try:
        line = c.update("a", "127.0.0.1", 1, "f;1", subcommands=[text])
    except InputError:
        return
    assert "\n" not in line and "\r" not in line and "\x00" not in line
    assert line.split().count("&&") == 1
    assert line == "U a 127.0.0.1 1 f;1 && " + text
