"""Every encoder gives the exact wire text; every decoder reads the real relay's replies.

Expected strings and replies come from docs/protocol.md §4.3 and §13 (raw exchanges with a real relay).
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
    assert info.value.hint
    assert "\n" not in info.value.message


def test_validate_token_names_the_limit_and_shows_value_with_repr():
    with pytest.raises(InputError, match=r"is 256 bytes long; the limit is 255"):
        c.validate_token("x" * 256, "tag")
    with pytest.raises(InputError) as info:
        c.validate_token("abc\nX", "call-id")
    assert "'abc\\nX'" in info.value.message


def test_validate_token_accepts():
    assert c.validate_token("x" * 255, "call-id") == "x" * 255
    assert c.validate_token("a;1", "token") == "a;1"
    assert c.validate_token("ünïcødé@h", "call-id") == "ünïcødé@h"
    assert c.validate_token("a&&b", "tag") == "a&&b"
    assert c.validate_token("x" * 300, "path", max_length=300) == "x" * 300


def test_validate_token_refuses_non_text():
    with pytest.raises(InputError, match="must be text"):
        c.validate_token(123, "call-id")  # type: ignore[arg-type]


def test_newline_in_call_id_never_reaches_the_wire():
    with pytest.raises(InputError):
        c.update("abc\nX", "127.0.0.1", 30000, "ft", medianum=1)
    with pytest.raises(InputError):
        c.delete("abc\nX", "ft")


# One validator per kind of token; each refuses what every token refuses, and names its kind.
VALIDATORS = {
    "call-id": c.validate_call_id,
    "tag": c.validate_tag,
    "notify socket": c.validate_notify_socket,
    "notify tag": c.encode_notify_tag,
    "DTMF tag": c.encode_dtmf_tag,
    "prompt name": c.validate_prompt_name,
    "copy target": c.validate_copy_target,
    "counter name": c.validate_counter_name,
    "statistic name": c.validate_stat_name,
}


@pytest.mark.parametrize("kind", sorted(VALIDATORS))
@pytest.mark.parametrize("value", ["", "a\nb", "a\rb", "a\tb", "a\x00b", "a\x85b", "a\u2028b", "a\u200bb", "&&"])
def test_every_kind_of_token_refuses_what_would_split_or_end_a_command(kind, value):
    with pytest.raises(InputError) as info:
        VALIDATORS[kind](value)
    assert kind in info.value.message
    assert info.value.hint


@pytest.mark.parametrize("value", ["f;2", ";", "f;", ";1", "a;b;c"])
def test_tags_refuse_a_semicolon_because_it_starts_the_media_number(value):
    with pytest.raises(InputError) as info:
        c.validate_tag(value, "from-tag")
    message = info.value.message
    assert message.startswith("from-tag ") and repr(value) in message and "media number" in message
    assert "adds ';N' itself" in (info.value.hint or "")


def test_a_pre_suffixed_tag_never_reaches_the_wire():
    # The reviewer's example: f;2 would go out as f;2;1, read by the relay as tag f, stream 2.
    for build in (
        lambda: c.update("a", "127.0.0.1", 4000, "f;2", medianum=1),
        lambda: c.lookup("a", "127.0.0.1", 4000, "f", "t;2", medianum=1),
        lambda: c.query("a", "f;2", "t", medianum=1),
        lambda: c.play("a", "p", "f;2", medianum=1),
        lambda: c.stop_play("a", "f", "t;2", medianum=1),
        lambda: c.copy("a", "udp:127.0.0.1:5000", "f;2", medianum=1),
        lambda: c.delete("a", "f;2"),
        lambda: c.record("a", "f", "t;2"),
        lambda: c.stop_record("a", "f;2"),
    ):
        with pytest.raises(InputError, match="media number"):
            build()


@pytest.mark.parametrize(
    ("value", "problem"),
    [("a/b", "contains '/'"), ("../x", "contains '/'"), ("a..b", "contains '..'"), ("..", "contains '..'"),
     (".hidden", "starts with '.'"), ("~root", "starts with '~'")],
)
def test_names_that_become_record_files_stay_in_the_record_directory(value, problem):
    with pytest.raises(InputError) as info:
        c.validate_record_name(value, "call-id")
    assert info.value.message == f"call-id {value!r} {problem}: the relay would write outside its record directory"
    assert info.value.hint
    for build in (lambda: c.record(value, "f"), lambda: c.record("a", value), lambda: c.record("a", "f", value),
                  lambda: c.copy("a", value, "f", medianum=1)):
        with pytest.raises(InputError, match="outside its record directory"):
            build()


def test_record_name_rules_apply_only_where_a_file_name_is_made():
    # Not a file name: U, L, D, Q, N and a remote copy pass them; the relay compares them exactly.
    assert c.update("a/../b", "127.0.0.1", 1, "~t", medianum=1) == "U a/../b 127.0.0.1 1 ~t;1"
    assert c.delete(".a", "../f") == "D .a ../f"
    assert c.copy("a/b", "udp:127.0.0.1:5000", ".f", medianum=1) == "C a/b udp:127.0.0.1:5000 .f;1"
    # A copy to a file is named after the target alone: rtpp_record_ctor (src/rtpp_record.c of
    # sippy/rtpproxy) builds "<rdir>/<rname><suffix>" when it is given a name, and
    # "<rdir>/<call-id>=<from tag>..." only for R, which gives none.
    assert c.copy("a/b", "myfile", "../f", "~t", medianum=1) == "C a/b myfile ../f;1 ~t;1"
    # Prompt names are the operator's own words: the relay only reads them.
    assert c.play("a", "../prompts/hello", "f", medianum=1) == "P1 a ../prompts/hello session f;1"
    assert c.record("a.b@h", "f.t", "t~") == "R a.b@h f.t t~"


# What the relay makes of a C target (src/commands/rpcpv1_copy.c and src/rtpp_record.c of
# sippy/rtpproxy): exactly "udp:" starts a remote target, split at its last ':', the host resolved
# for AF_INET only, RTP sent to PORT and RTCP to PORT+1, which ropen_remote_ctor_pa refuses above
# 65534 (rtp.io 1.1.1 answers E65 to udp:127.0.0.1:70000, :0 and :65535; run with -R it answers 0
# and copies nowhere). Anything else is written as "<record dir>/<target>.rtp" and ".rtcp".
@pytest.mark.parametrize(("target", "sent"), [
    ("udp:127.0.0.1:40000", "udp:127.0.0.1:40000"),
    ("udp:127.0.0.1:04000", "udp:127.0.0.1:4000"),
    ("udp:127.0.0.1:1", "udp:127.0.0.1:1"),
    ("udp:127.0.0.1:65534", "udp:127.0.0.1:65534"),
    ("myrec", "myrec"),
    ("call-1@host=ft", "call-1@host=ft"),
    ("x" * 250, "x" * 250),
])
def test_copy_targets_the_relay_reads_as_meant(target, sent):
    assert c.validate_copy_target(target) == sent
    assert c.copy("a", target, "f", medianum=1) == f"C a {sent} f;1"
    assert c.is_remote_copy_target(sent) == target.startswith("udp:")


@pytest.mark.parametrize(("target", "problem"), [
    ("udp:127.0.0.1:70000", "port 70000 is out of range 1..65534"),
    ("udp:127.0.0.1:65535", "port 65535 is out of range 1..65534"),
    ("udp:127.0.0.1:0", "port 0 is out of range 1..65534"),
    ("udp:127.0.0.1:sip", "port 'sip' is not a decimal number"),
    ("udp:127.0.0.1:", "port '' is not a decimal number"),
    ("udp:127.0.0.1:123456", "port '123456' is not a decimal number"),
    ("udp:127.0.0.1", "has no port"),
    ("udp::5000", "has no host"),
    ("udp:", "has no port"),
    ("udp:localhost:40000", "'localhost' is not a numeric IPv4 address"),
    ("udp:[::1]:40000", "copies over IPv4 only"),
    ("udp:::1:40000", "copies over IPv4 only"),
    ("udp:0.0.0.0:40000", "0.0.0.0 is not an address packets can go to"),
    ("../x", "contains '/'"),
    ("/abs", "contains '/'"),
    ("sub/x", "contains '/'"),
    ("a..b", "contains '..'"),
    (".hidden", "starts with '.'"),
    ("~x", "starts with '~'"),
    ("udp6:127.0.0.1:40000", "starts with 'udp6:'"),
    ("UDP:127.0.0.1:40000", "starts with 'UDP:'"),
    ("tcp:127.0.0.1:40000", "starts with 'tcp:'"),
    ("x" * 251, "251 bytes long; the limit is 250"),
])
def test_copy_targets_the_relay_would_misread_are_refused(target, problem):
    with pytest.raises(InputError) as info:
        c.copy("a", target, "f", medianum=1)
    assert info.value.message.startswith(f"copy target {target[:60]!r}"), info.value.message
    assert problem in info.value.message, info.value.message
    assert info.value.hint and "\n" not in info.value.message


def test_only_a_remote_copy_replies_with_its_port():
    # handle_copy (rpcpv1_copy.c) fails a file copy that carries `p`.
    assert c.copy("a", "udp:127.0.0.1:5000", "f", reply_port=True) == "Cp a udp:127.0.0.1:5000 f"
    with pytest.raises(InputError, match="only a udp: copy replies with its port"):
        c.copy("a", "myrec", "f", reply_port=True)


@settings(max_examples=300)
@given(st.one_of(st.text(), st.text(alphabet=st.sampled_from(list("udpUDP:./~0123456789x[]")))
                 .map(lambda text: "udp:" + text), st.text(alphabet=st.sampled_from(list("udp:./~09x")))))
def test_an_accepted_copy_target_is_an_ipv4_port_or_one_file_in_the_record_dir(target):
    import ipaddress
    import posixpath

    try:
        sent = c.validate_copy_target(target)
    except InputError as refused:
        assert refused.hint and "\n" not in refused.message
        return
    if sent.startswith("udp:"):
        host, port = sent[4:].rsplit(":", 1)
        assert ipaddress.ip_address(host).version == 4 and 1 <= int(port) <= 65534 and str(int(port)) == port
        return
    for suffix in (".rtp", ".rtcp"):
        path = posixpath.normpath(posixpath.join("/rec", sent + suffix))
        assert posixpath.dirname(path) == "/rec" and not posixpath.basename(path).startswith(".")
        assert len(posixpath.basename(path).encode()) <= 255


# ------------------------------------------------------------------------------ notify and DTMF tags


def relay_url_decode(text: str) -> bytes:
    """What the relay makes of a notify or DTMF tag (§9.1, §16.2): %XX -> byte, + -> space."""
    out = bytearray()
    index = 0
    while index < len(text):
        char = text[index]
        if char == "%":
            digits = text[index + 1 : index + 3]
            assert len(digits) == 2 and all(d in "0123456789abcdefABCDEF" for d in digits), text
            out.append(int(digits, 16))
            index += 3
            continue
        out += b" " if char == "+" else char.encode()
        index += 1
    return bytes(out)


@pytest.mark.parametrize(
    ("tag", "sent"),
    [("Ta1.b2", "Ta1.b2"), ("T%41", "T%2541"), ("a+b", "a%2Bb"), ("T a", "T%20a"), ("x~y_z-1.", "x~y_z-1."),
     ("é", "%C3%A9"), ("a&&b", "a%26%26b"), ("a;b/c:d", "a%3Bb%2Fc%3Ad")],
)
def test_notify_tags_are_percent_encoded(tag, sent):
    assert c.encode_notify_tag(tag) == sent
    assert relay_url_decode(sent) == tag.encode()


@pytest.mark.parametrize(
    ("tag", "sent"),
    [("Ddff.ee", "Ddff.ee"), ("Dcx%41", "Dcx%2541"), ("Dca+b@h", "Dca%2Bb%40h"), ("Dcé", "Dc%C3%A9")],
)
def test_dtmf_tags_are_percent_encoded(tag, sent):
    assert c.encode_dtmf_tag(tag) == sent
    assert c.dtmf_subcommand(tag, 101) == f"M3:1 {sent} 101"


@pytest.mark.parametrize(
    ("encode", "tag", "problem"),
    [
        (c.encode_notify_tag, "T\nI", "whitespace"),  # would forge a second notification line
        (c.encode_notify_tag, "T\tI", "whitespace"),
        (c.encode_notify_tag, "T\x00", "control"),
        (c.encode_notify_tag, "T\u2028", "whitespace"),
        (c.encode_notify_tag, "x" * 256, "256 bytes"),
        (c.encode_notify_tag, "é" * 128, "256 bytes"),
        (c.encode_notify_tag, "", "empty"),
        (c.encode_notify_tag, "&&", "'&&'"),
        (c.encode_dtmf_tag, "D a", "whitespace"),  # would shift the DTMF line's fields
        (c.encode_dtmf_tag, "D\n", "whitespace"),
        (c.encode_dtmf_tag, "D" + "x" * 255, "256 bytes"),
        (c.encode_dtmf_tag, "dff.ee", "start with 'D'"),
    ],
)
def test_notify_and_dtmf_tags_refuse_what_would_break_the_notification_line(encode, tag, problem):
    with pytest.raises(InputError) as info:
        encode(tag)
    assert problem in info.value.message and "tag" in info.value.message
    assert info.value.hint


def test_a_space_in_a_notify_tag_is_sent_encoded():
    # The timeout line is the decoded tag alone, so a space cannot shift anything there.
    assert c.update("a", "127.0.0.1", 1, "f", medianum=1, notify_socket="/s", notify_tag="T a b").endswith(
        " /s T%20a%20b"
    )


@settings(max_examples=300)
@given(st.text())
def test_percent_encoded_tags_decode_back_to_the_original(tag):
    for encode in (c.encode_notify_tag, lambda t: c.encode_dtmf_tag("D" + t)):
        try:
            sent = encode(tag)
        except InputError:
            continue
        assert set(sent) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-%")
        assert relay_url_decode(sent).decode() in (tag, "D" + tag)
        assert len(sent.split()) == 1


# ------------------------------------------------------------------------------ addresses, ports, names


@pytest.mark.parametrize(
    ("address", "ipv6", "problem"),
    [
        ("::1", False, "is IPv6 but the command has no 6 modifier"),
        ("::ffff:127.0.0.1", False, "is IPv6 but the command has no 6 modifier"),
        ("127.0.0.1", True, "is IPv4 but the command carries the 6 modifier"),
        ("localhost", False, "not a numeric"),
        ("[::1]", True, "not a numeric"),
        ("fe80::1%eth0", True, "zone id"),
        ("1.2.3", False, "not a numeric"),
    ],
)
def test_media_address_is_numeric_and_of_the_modifiers_family(address, ipv6, problem):
    with pytest.raises(InputError) as info:
        c.validate_media_address(address, ipv6=ipv6)
    assert "media address" in info.value.message and problem in info.value.message and info.value.hint
    with pytest.raises(InputError, match=problem.replace("(", r"\(")):
        c.update("a", address, 4000, "f", medianum=1, modifiers=c.Modifiers(ipv6=ipv6))


def test_media_address_accepts():
    assert c.validate_media_address("0.0.0.0", ipv6=False) == "0.0.0.0"
    assert c.validate_media_address("::", ipv6=True) == "::"
    long_v6 = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"
    assert c.validate_media_address(long_v6, ipv6=True) == long_v6


@pytest.mark.parametrize(("port", "sent"), [(1, "1"), (65535, "65535"), ("4000", "4000"), ("04000", "4000"),
                                            ("00001", "1")])
def test_ports_are_sent_in_canonical_decimal(port, sent):
    assert c.validate_port(port) == sent
    assert c.update("a", "127.0.0.1", port, "f").split()[3] == sent


@pytest.mark.parametrize("port", [0, "0", "00000", 65536, "65536", -1, "-1", "+1", "sip", "1e3", " 1", "",
                                  "٣", "000001", True, 1.0, None])
def test_ports_refuse_anything_but_decimal_1_to_65535(port):
    with pytest.raises(InputError) as info:
        c.validate_port(port)
    assert "port" in info.value.message and info.value.hint


@pytest.mark.parametrize("name", ["ttl;", "a-b", "n.m", "ttl=1", "é", "x" * 65])
def test_counter_and_stat_names_are_plain_names(name):
    with pytest.raises(InputError, match="counter name"):
        c.validate_counter_name(name)
    with pytest.raises(InputError, match="statistic name"):
        c.validate_stat_name(name)


@pytest.mark.parametrize(("codecs", "sent"), [("session", "session"), ("0,8", "0,8"), ("08,000", "8,0"),
                                              ((0, 8, 127), "0,8,127"), ([101], "101")])
def test_play_codec_lists(codecs, sent):
    assert c.validate_codec_list(codecs) == sent


@pytest.mark.parametrize("codecs", ["0, 8", "0;8", "0/8", "128", "0,,8", ",0", "0,", "Session", "", (), (128,),
                                    (-1,), (True,), ("0",), b"0", 0])
def test_play_codec_lists_refuse(codecs):
    with pytest.raises(InputError, match="codecs|payload type"):
        c.validate_codec_list(codecs)


# ------------------------------------------------------------------------------ whole commands


def test_a_command_stays_under_the_relay_buffer_with_its_cookie():
    limit = c.MAX_COMMAND_BYTES - c.COOKIE_ALLOWANCE  # the longest command is one byte less
    longest = "M3:1 " + "x" * (limit - 1 - len("U a 127.0.0.1 1 f;1 && M3:1 "))
    line = c.update("a", "127.0.0.1", 1, "f", medianum=1, subcommands=[longest])
    assert len(line.encode()) == limit - 1
    with pytest.raises(InputError) as info:
        c.update("a", "127.0.0.1", 1, "f", medianum=1, subcommands=[longest + "x"])
    assert info.value.message.startswith("command 'U a 127.0.0.1 1 f;1 && M3:1 xxx")
    assert f"{limit} bytes; with its cookie it must stay under 8191" in info.value.message
    assert info.value.hint


def test_long_modifiers_are_caught_by_the_command_size():
    with pytest.raises(InputError, match="must stay under 8191"):
        c.update("a", "127.0.0.1", 1, "f", modifiers=c.Modifiers(letters="S" * 8200))


def test_at_most_23_tokens_per_command_and_sub_command():
    assert len(c.get_stats(["ttl"] * 22).split()) == 23
    with pytest.raises(InputError, match="24 tokens in one .sub-.command; the relay reads at most 23"):
        c.get_stats(["ttl"] * 23)
    # Each sub-command has its own 23.
    sub = " ".join(["M3:1", *["a"] * 22])
    assert c.update("a", "127.0.0.1", 1, "f", subcommands=[sub, sub]).count("&&") == 2
    with pytest.raises(InputError, match="24 tokens"):
        c.update("a", "127.0.0.1", 1, "f", subcommands=[sub + " a"])


def test_at_most_15_sub_commands():
    assert c.update("a", "127.0.0.1", 1, "f", subcommands=["D"] * 15).count("&&") == 15
    with pytest.raises(InputError, match="at most 15"):
        c.update("a", "127.0.0.1", 1, "f", subcommands=["D"] * 16)


def test_validate_command_counts_tokens_as_the_relay_splits_them():
    assert c.validate_command("G" + " a" * 22) == "G" + " a" * 22
    with pytest.raises(InputError):
        c.validate_command("G" + "\ta" * 23)
    assert c.validate_command("U a b c d && " + " ".join(["x"] * 23)) == "U a b c d && " + " ".join(["x"] * 23)


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
        (c.Modifiers(ttl="t"), "t"),  # the module copies a bare t or T as given
        (c.Modifiers(ttl="tT20"), "tT20"),
        (c.Modifiers(codecs=(0,), ttl="T"), "c0T"),
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
        {"ttl": "x"},
        {"ttl": "t-1"},
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
        c.update("call1@h", "127.0.0.1", 30000, "fromtag1", medianum=1, modifiers=c.Modifiers(codecs=(0, 8, 101)))
        == "Uc0,8,101 call1@h 127.0.0.1 30000 fromtag1;1"
    )
    assert (
        c.update("c@h", "10.0.0.1", "4000", "ft", medianum=1,
                 modifiers=c.Modifiers(letters="SS", repacketize_ms=20, codecs=(18, 101)))
        == "USSZ20c18,101 c@h 10.0.0.1 4000 ft;1"
    )
    assert c.update("call1@h", "127.0.0.1", 30010, "totag1", "fromtag1", medianum=1) == (
        "U call1@h 127.0.0.1 30010 totag1;1 fromtag1;1"
    )
    assert c.update("tcall6", "::1", 5000, "ft", medianum=1, modifiers=c.Modifiers(ipv6=True)) == (
        "U6 tcall6 ::1 5000 ft;1"
    )
    # on hold; the media number of a later stream
    assert c.update("call4@h", "0.0.0.0", 30040, "ft4", medianum=3) == "U call4@h 0.0.0.0 30040 ft4;3"
    # without a media number the tags go bare
    assert c.update("a", "10.0.0.1", 1, "f", "t") == "U a 10.0.0.1 1 f t"
    # an empty to-tag is left out
    assert c.update("a", "10.0.0.1", 1, "f", "", medianum=1) == "U a 10.0.0.1 1 f;1"


@pytest.mark.parametrize("medianum", [0, -1, True, "1", 1.0, 2**31])
def test_media_number_is_a_positive_integer(medianum):
    with pytest.raises(InputError, match="media number"):
        c.update("a", "127.0.0.1", 1, "f", medianum=medianum)


def test_update_with_notify_and_dtmf():
    assert (
        c.update("ntf1@h", "127.0.0.1", 30100, "ft1", medianum=1,
                 notify_socket="tcp:127.0.0.1:24000", notify_tag="Ta1.b2")
        == "U ntf1@h 127.0.0.1 30100 ft1;1 tcp:127.0.0.1:24000 Ta1.b2"
    )
    assert (
        c.update("dtmf1@h", "127.0.0.1", 57994, "dft", medianum=1, modifiers=c.Modifiers(codecs=(0, 101)),
                 notify_socket="tcp:127.0.0.1:24000", notify_tag="Tff.ee",
                 subcommands=[c.dtmf_subcommand("Ddff.ee")])
        == "Uc0,101 dtmf1@h 127.0.0.1 57994 dft;1 tcp:127.0.0.1:24000 Tff.ee && M3:1 Ddff.ee"
    )
    assert (
        c.update("cid0", "127.0.0.1", 5000, "ftag", "ttag", medianum=1, notify_socket="unix:/nonexistent",
                 notify_tag="Tabc")
        == "U cid0 127.0.0.1 5000 ftag;1 ttag;1 unix:/nonexistent Tabc"
    )
    # The tag is the text the notification will carry: a % in it is sent as %25.
    assert c.update("a", "127.0.0.1", 1, "f", medianum=1, notify_socket="/tmp/n.sock",
                    notify_tag="T%41bc").endswith(" /tmp/n.sock T%2541bc")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"notify_socket": "tcp:127.0.0.1:24000"}, "give both or neither"),
        ({"notify_tag": "Tx"}, "give both or neither"),
        ({"notify_socket": "tcp:1.2.3.4:1", "notify_tag": "T\ta"}, "whitespace"),
        ({"notify_socket": "tcp:1.2.3.4:1", "notify_tag": "T\nI"}, "whitespace"),
        ({"notify_socket": "tcp:1.2.3.4:1", "notify_tag": "T\x00"}, "control character"),
        ({"notify_socket": "tcp:1.2.3.4:1\n", "notify_tag": "T1"}, "notify socket"),
        ({"notify_socket": "&&", "notify_tag": "T1"}, "notify socket"),
        ({"notify_socket": "tcp:1.2.3.4:1", "notify_tag": "T" * 256}, "256 bytes"),
    ],
)
def test_update_notify_errors(kwargs, match):
    with pytest.raises(InputError, match=match):
        c.update("a", "127.0.0.1", 1, "f", medianum=1, **kwargs)


@pytest.mark.parametrize(
    ("address", "port"),
    [("localhost", 1), ("[::1]", 1), ("1.2.3", 1), ("fe80::1%eth0", 1), ("::1", 1), ("127.0.0.1", 65536),
     ("127.0.0.1", 0), ("127.0.0.1", "0"), ("127.0.0.1", -1), ("127.0.0.1", "abc"), ("127.0.0.1", "99999"),
     ("127.0.0.1", ""), ("127.0.0.1", True), ("127.0.0.1", 1.5), ("127.0.0.1", "٣"), ("127.0.0.1", "sip")],
)
def test_update_address_and_port_errors(address, port):
    with pytest.raises(InputError):
        c.update("a", address, port, "f", medianum=1)


def test_lookup():
    assert (
        c.lookup("call1@h", "127.0.0.1", 30010, "fromtag1", "totag1", medianum=1,
                 modifiers=c.Modifiers(codecs=(8, 101)))
        == "Lc8,101 call1@h 127.0.0.1 30010 fromtag1;1 totag1;1"
    )
    assert (
        c.lookup("dtmf1@h", "127.0.0.1", 58535, "dft", "dtt", medianum=1, modifiers=c.Modifiers(codecs=(0, 101)),
                 subcommands=[c.dtmf_subcommand("Ddff.ee")])
        == "Lc0,101 dtmf1@h 127.0.0.1 58535 dft;1 dtt;1 && M3:1 Ddff.ee"
    )
    assert c.lookup("nd3@h", "::1", 30000, "ft", "tt", medianum=2, modifiers=c.Modifiers(ipv6=True)) == (
        "L6 nd3@h ::1 30000 ft;2 tt;2"
    )
    with pytest.raises(TypeError):
        c.lookup("a", "127.0.0.1", 1, "f", "t", notify_socket="x", notify_tag="y")  # type: ignore[call-arg]


def test_delete():
    assert c.delete("call1@h", "fromtag1", "totag1") == "D call1@h fromtag1 totag1"
    assert c.delete("call2@h", "ft2", weak=True) == "Dw call2@h ft2"
    assert c.delete("call2@h", "ft2", None) == "D call2@h ft2"
    with pytest.raises(TypeError):
        c.delete("a", "f", medianum=1)  # type: ignore[call-arg]


def test_play_and_stop():
    assert (
        c.play("call1@h", "/nonexistent/prompt", "fromtag1", "totag1", medianum=1)
        == "P1 call1@h /nonexistent/prompt session fromtag1;1 totag1;1"
    )
    assert (
        c.play("call1@h", "/nonexistent/prompt", "fromtag1", "totag1", medianum=1, count=-1)
        == "P-1 call1@h /nonexistent/prompt session fromtag1;1 totag1;1"
    )
    assert (
        c.play("call1@h", "/nonexistent/prompt", "fromtag1", "totag1", medianum=1, codecs=(0, 8))
        == "P1 call1@h /nonexistent/prompt 0,8 fromtag1;1 totag1;1"
    )
    assert c.play("call2@h", "p", "ft2", medianum=1, codecs="8,0", count=0) == "P0 call2@h p 8,0 ft2;1"
    assert c.stop_play("call1@h", "fromtag1", "totag1", medianum=1) == "S call1@h fromtag1;1 totag1;1"
    for kwargs in ({"count": -2}, {"count": True}, {"count": "1"}, {"codecs": "0, 8"}, {"codecs": ()},
                   {"codecs": "sessions"}, {"codecs": (200,)}, {"codecs": "200"}):
        with pytest.raises(InputError):
            c.play("a", "p", "f", medianum=1, **kwargs)
    with pytest.raises(InputError, match="prompt"):
        c.play("a", "my prompt", "f", medianum=1)


def test_recording_commands():
    assert c.record("call1@h", "fromtag1", "totag1") == "R call1@h fromtag1 totag1"
    assert c.record("call1@h", "fromtag1", "totag1", single_file=True) == "Rs call1@h fromtag1 totag1"
    assert c.record("call1@h", "fromtag1") == "R call1@h fromtag1"
    assert (
        c.copy("call1@h", "udp:127.0.0.1:45000", "fromtag1", "totag1", medianum=1)
        == "C call1@h udp:127.0.0.1:45000 fromtag1;1 totag1;1"
    )
    assert (
        c.copy("call1@h", "udp:127.0.0.1:45002", "fromtag1", "totag1", medianum=2, reply_port=True)
        == "Cp call1@h udp:127.0.0.1:45002 fromtag1;2 totag1;2"
    )
    assert c.copy("c", "myrec", "f", medianum=2, single_file=True) == "Cs c myrec f;2"
    assert c.copy("c", "udp:127.0.0.1:9", "f", "g", single_file=True, reply_port=True) == "Csp c udp:127.0.0.1:9 f g"
    assert c.stop_record("call1@h", "fromtag1", "totag1") == "N call1@h fromtag1 totag1"
    assert c.stop_record("call1@h", "fromtag1", "totag1", all_streams=True) == "Na call1@h fromtag1 totag1"
    with pytest.raises(InputError, match="copy target"):
        c.copy("c", "my file", "f")
    for build in (lambda: c.record("a", "f", medianum=1), lambda: c.stop_record("a", "f", medianum=1)):
        with pytest.raises(TypeError):
            build()  # type: ignore[call-arg]


def test_query():
    assert c.query("call1@h", "fromtag1", "totag1", medianum=1) == "Q call1@h fromtag1;1 totag1;1"
    assert c.query("call1@h", "fromtag1", "totag1", medianum=1, verbose=True) == "Qv call1@h fromtag1;1 totag1;1"
    assert c.query("call1@h", "fromtag1", medianum=1) == "Q call1@h fromtag1;1"
    assert (
        c.query("call1@h", "fromtag1", "totag1",
                ("rtpa_nsent", "rtpa_nrcvd", "rtpa_ndups", "rtpa_nlost", "rtpa_perrs"), medianum=1)
        == "Q call1@h fromtag1;1 totag1;1 rtpa_nsent rtpa_nrcvd rtpa_ndups rtpa_nlost rtpa_perrs"
    )
    assert c.query("nd6@h", "ft", medianum=1, subcommands=["D"]) == "Q nd6@h ft;1 && D"
    assert len(c.query("a", "f", "t", ["ttl"] * 11).split()) == 15
    with pytest.raises(InputError, match="at most 11"):
        c.query("a", "f", "t", ["ttl"] * 12)
    with pytest.raises(InputError, match="need a to-tag"):
        c.query("a", "f", None, ["ttl"])
    with pytest.raises(InputError, match="single string"):
        c.query("a", "f", "t", "ttl")
    with pytest.raises(InputError, match="counter name"):
        c.query("a", "f", "t", ["ttl npkts_ina"])


def test_stats_and_info():
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


# ------------------------------------------------------------------------------ sub-commands


def test_subcommand_builders():
    assert c.dtmf_subcommand("Ddff.ee", 101) == "M3:1 Ddff.ee 101"
    assert c.dtmf_subcommand("Dcdtmf2@h", 100) == "M3:1 Dcdtmf2%40h 100"
    assert c.dtmf_subcommand("Ddff.ee") == "M3:1 Ddff.ee"
    assert c.dtmf_subcommand("Dx", module_id=9, instance=2) == "M9:2 Dx"
    with pytest.raises(InputError, match="start with 'D'"):
        c.dtmf_subcommand("dff.ee")
    for bad in ((lambda: c.dtmf_subcommand("Dx", 128)), (lambda: c.dtmf_subcommand("D x")),
                (lambda: c.dtmf_subcommand("Dx", module_id=-1)), (lambda: c.dtmf_subcommand("&&"))):
        with pytest.raises(InputError):
            bad()


def test_a_dtmf_tag_with_the_longest_call_id_still_fits():
    # Dc + a 253-byte call-id of bytes that all need escaping: 765 bytes on the wire, one token.
    call_id = "%" * 253
    line = c.update(call_id, "127.0.0.1", 1, "f", medianum=1, notify_socket="/s", notify_tag="I",
                    subcommands=[c.dtmf_subcommand("Dc" + call_id)])
    assert line.split()[-1] == "Dc" + "%25" * 253


def test_several_subcommands_join_in_order():
    assert (
        c.update("a", "127.0.0.1", 1, "f", medianum=1,
                 subcommands=[c.dtmf_subcommand("Dca"), "S ttl=30"])
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
        c.update("a", "127.0.0.1", 1, "f", medianum=1, subcommands=[sub])


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


# ------------------------------------------------------------------------------ numbers from relays
#
# The relay writes counters with %d / %lu / PRIu64 and jitter, gaps, loads and durations with %f
# (src/commands/rpcpv1_query.c, src/rtpp_stats.c, src/rtpp_command.c of sippy/rtpproxy): an int of
# at most 64 bits, or a decimal float. Anything else comes from a broken or hostile peer.

@pytest.mark.parametrize(("text", "value"), [
    ("0", 0), ("60", 60), ("-1", -1), ("18446744073709551615", 2**64 - 1), ("-9223372036854775808", -(2**63)),
    ("0.000000", 0.0), ("24.795882", 24.795882), ("1e3", 1000.0), (".5", 0.5), ("1.797e308", 1.797e308),
])
def test_relay_numbers_within_bounds_are_read(text, value):
    number = c.relay_number(text, "x")
    assert number == value and type(number) is type(value)


@pytest.mark.parametrize(("text", "integer", "problem"), [
    ("nan", False, "not a number"), ("-nan", False, "not a number"), ("inf", False, "not a number"),
    ("-inf", False, "not a number"), ("Infinity", False, "not a number"), ("1e999", False, "too large"),
    ("1.0e999", False, "too large"), ("-1e400", False, "too large"),
    ("18446744073709551616", False, "out of range"), ("-9223372036854775809", False, "out of range"),
    ("9" * 64, False, "out of range"), ("1" + "0" * 309 + ".000000", False, "longer than any number"),
    ("9" * 5000, False, "longer than any number"), ("1.5", True, "not a whole number"),
    ("0x10", False, "not a number"), ("+5", False, "not a number"), (" 5", False, "not a number"),
    ("", False, "not a number"), ("\u0664\u0660", False, "not a number"), ("1_000", False, "not a number"),
])
def test_relay_numbers_out_of_bounds_are_malformed_replies(text, integer, problem):
    with pytest.raises(MalformedReply) as info:
        c.relay_number(text, "counter 'x'", integer=integer)
    assert info.value.message.startswith("counter 'x' is ") and problem in info.value.message
    assert "\n" not in info.value.message


def test_counters_the_relay_writes_as_integers_must_be_whole_numbers():
    with pytest.raises(MalformedReply, match="npkts_ina.*not a whole number"):
        c.parse_counters("60 1.5 0 0 0")
    with pytest.raises(MalformedReply, match="npkts_ina.*1.0e999.: not a whole number"):
        c.parse_counters("60 1.0e999 0 0 0")
    assert c.parse_counters("rtpa_jmax=12.500000", ("rtpa_jmax",)) == {"rtpa_jmax": 12.5}
    assert c.parse_counters("7", ("newer_counter",)) == {"newer_counter": 7}
    with pytest.raises(MalformedReply, match="rtpa_jmax.*not a number"):
        c.parse_counters("inf", ("rtpa_jmax",))
    with pytest.raises(MalformedReply, match="nsess_created.*not a whole number"):
        c.parse_stats("0.5", ("nsess_created",))
    assert c.parse_stats("12.250000", ("total_duration",)) == {"total_duration": 12.25}
    with pytest.raises(MalformedReply, match="out of range 0..65535"):
        c.parse_port_reply("65536 127.0.0.1")
    with pytest.raises(MalformedReply, match="active sessions.*not a whole number"):
        c.parse_info(INFO.replace("active sessions: 0", "active sessions: 0.5"))
    with pytest.raises(MalformedReply, match="average load.*not a number"):
        c.parse_info(INFO + "average load: nan\n")


number_words = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda x: f"{x:f}"),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "-nan", "inf", "-inf", "1e999", "1.0e999", "9" * 400, "0.000000", "E62", "x"]),
)
counter_names = st.sampled_from(["ttl", "npkts_ina", "rtpa_jmax", "longest_ipi", "nsess_created", "total_duration",
                                 "new_one"])
number_replies = st.one_of(
    st.lists(number_words, min_size=0, max_size=6).map(" ".join),
    st.lists(st.tuples(counter_names, number_words), min_size=1, max_size=4).map(
        lambda pairs: " ".join(f"{name}={value}" for name, value in pairs)),
    st.lists(st.tuples(st.sampled_from(sorted(c.INFO_FIELDS) + ["ports in use"]), number_words), min_size=1,
             max_size=6).map(lambda pairs: "".join(f"{label}: {value}\n" for label, value in pairs)),
)
NUMBER_DECODERS = [
    c.parse_counters, c.parse_stats, c.parse_info, c.parse_port_reply, c.parse_version, c.parse_result,
    c.parse_copy_reply,
    lambda reply: c.parse_counters(reply, ("ttl", "npkts_ina", "rtpa_jmax", "longest_ipi")),
    lambda reply: c.parse_counters(reply, ("new_one",)),
    lambda reply: c.parse_stats(reply, ("nsess_created", "total_duration")),
]


def _numbers_in(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _numbers_in(item)
    elif hasattr(value, "__dataclass_fields__"):
        yield from (getattr(value, name) for name in value.__dataclass_fields__ if name == "port")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


@settings(max_examples=400)
@given(number_replies)
def test_every_number_a_decoder_gives_is_bounded_and_valid_json(reply):
    import json
    import math

    for decode in NUMBER_DECODERS:
        try:
            result = decode(reply)
        except RtppctlError:
            continue
        json.dumps(result, allow_nan=False, default=lambda value: value.__dict__)
        for number in _numbers_in(result):
            assert math.isfinite(number)
            assert c.MIN_RELAY_INT <= number <= c.MAX_RELAY_INT or isinstance(number, float)


class Decodes:
    """Equal to a token the relay URL-decodes into exactly `text` (for notify and DTMF tags)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, token: object) -> bool:
        return isinstance(token, str) and relay_url_decode(token) == self.text.encode()

    def __repr__(self) -> str:
        return f"Decodes({self.text!r})"


def numbered(tag: str, medianum: int | None) -> str:
    return tag if medianum is None else f"{tag};{medianum}"


def tags(*values: str, n: int | None) -> list[str]:
    return [numbered(value, n) for value in values if value]


ADDRESS = "127.0.0.1"

# (build from one user text t and a media number n, the exact tokens the relay must read)
ENCODERS = [
    (lambda t, n: c.update(t, ADDRESS, 1, "f", medianum=n), lambda t, n: ["U", t, ADDRESS, "1", *tags("f", n=n)]),
    (lambda t, n: c.update("a", ADDRESS, 1, t, "g", medianum=n, notify_socket="/s", notify_tag="T1"),
     lambda t, n: ["U", "a", ADDRESS, "1", *tags(t, "g", n=n), "/s", "T1"]),
    (lambda t, n: c.update("a", ADDRESS, 1, "f", medianum=n, notify_socket=t, notify_tag=t),
     lambda t, n: ["U", "a", ADDRESS, "1", *tags("f", n=n), t, Decodes(t)]),
    (lambda t, n: c.update("a", t, 1, "f", medianum=n), lambda t, n: ["U", "a", t, "1", *tags("f", n=n)]),
    (lambda t, n: c.update("a", t, 1, "f", medianum=n, modifiers=c.Modifiers(ipv6=True)),
     lambda t, n: ["U6", "a", t, "1", *tags("f", n=n)]),
    (lambda t, n: c.update("a", ADDRESS, t, "f", medianum=n),
     lambda t, n: ["U", "a", ADDRESS, str(int(t)), *tags("f", n=n)]),
    (lambda t, n: c.update("a", ADDRESS, 1, "f", medianum=n, modifiers=c.Modifiers(local_address=t)),
     lambda t, n: ["U" + c.Modifiers(local_address=t).encode(), "a", ADDRESS, "1", *tags("f", n=n)]),
    # an empty to-tag is left out, one word fewer
    (lambda t, n: c.lookup("a", ADDRESS, 1, "f", t, medianum=n), lambda t, n: ["L", "a", ADDRESS, "1", *tags("f", t, n=n)]),
    (lambda t, n: c.delete(t, "f", "g"), lambda t, n: ["D", t, "f", "g"]),
    (lambda t, n: c.delete("a", t), lambda t, n: ["D", "a", t]),
    (lambda t, n: c.play("a", t, "f", "g", medianum=n), lambda t, n: ["P1", "a", t, "session", *tags("f", "g", n=n)]),
    (lambda t, n: c.play("a", "p", "f", medianum=n, codecs=t),
     lambda t, n: ["P1", "a", "p", t if t == "session" else ",".join(str(int(x)) for x in t.split(",")),
                   *tags("f", n=n)]),
    (lambda t, n: c.stop_play("a", "f", t, medianum=n), lambda t, n: ["S", "a", *tags("f", t, n=n)]),
    (lambda t, n: c.record("a", t), lambda t, n: ["R", "a", t]),
    (lambda t, n: c.record(t, "f", "g"), lambda t, n: ["R", t, "f", "g"]),
    (lambda t, n: c.copy("a", t, "f", "g", medianum=n),
     lambda t, n: ["C", "a", c.validate_copy_target(t), *tags("f", "g", n=n)]),
    (lambda t, n: c.copy(t, "udp:127.0.0.1:5000", "f", medianum=n),
     lambda t, n: ["C", t, "udp:127.0.0.1:5000", *tags("f", n=n)]),
    (lambda t, n: c.stop_record(t, "f"), lambda t, n: ["N", t, "f"]),
    (lambda t, n: c.query("a", "f", "g", [t, "ttl"], medianum=n), lambda t, n: ["Q", "a", *tags("f", "g", n=n), t, "ttl"]),
    (lambda t, n: c.query("a", "f", t, medianum=n), lambda t, n: ["Q", "a", *tags("f", t, n=n)]),
    (lambda t, n: c.get_stats([t]), lambda t, n: ["G", t]),
    (lambda t, n: c.update("a", ADDRESS, 1, "f", medianum=n, subcommands=[c.dtmf_subcommand(t, 101)]),
     lambda t, n: ["U", "a", ADDRESS, "1", *tags("f", n=n), "&&", "M3:1", Decodes(t), "101"]),
    (lambda t, n: c.lookup("a", ADDRESS, 1, "f", "g", medianum=n, subcommands=[c.dtmf_subcommand("Dc" + t)]),
     lambda t, n: ["L", "a", ADDRESS, "1", *tags("f", "g", n=n), "&&", "M3:1", Decodes("Dc" + t)]),
]

user_text = st.one_of(
    st.text(),
    st.text(alphabet=st.sampled_from(list("ab;%+0A1.:/~=@\n\r\t \x00\x85\u2028\u200b&D[]{}é,"))),
    st.sampled_from(["&&", "D&&", "Dx", "127.0.0.1", "::1", "{v6}", "T%0a", "x" * 256, "x" * 255, "f;2", "..",
                     "~x", "sip", "04000", "0", "65535", "session", "0,8,101", "08,1"]),
)
media_numbers = st.one_of(st.none(), st.integers(1, 2**31 - 1))


@settings(max_examples=400)
@given(user_text, media_numbers, st.integers(0, len(ENCODERS) - 1))
def test_user_text_is_refused_or_becomes_exactly_the_intended_arguments(text, medianum, which):
    build, expected = ENCODERS[which]
    try:
        line = build(text, medianum)
    except InputError as refused:
        assert "\n" not in refused.message and refused.hint
        return
    # The relay splits on space, TAB, CR, LF only; refused values hold none of these, nor any other
    # whitespace, so str.split() reads the line as the relay does.
    assert "\n" not in line and "\r" not in line and "\x00" not in line
    assert line.split() == expected(text, medianum), line
    assert len(line.encode()) + c.COOKIE_ALLOWANCE < c.MAX_COMMAND_BYTES


@settings(max_examples=200)
@given(user_text)
def test_free_subcommand_text_adds_exactly_one_subcommand(text):
    try:
        line = c.update("a", "127.0.0.1", 1, "f", medianum=1, subcommands=[text])
    except InputError:
        return
    assert "\n" not in line and "\r" not in line and "\x00" not in line
    assert line.split().count("&&") == 1
    assert line == "U a 127.0.0.1 1 f;1 && " + text


@settings(max_examples=200)
@given(user_text)
def test_a_tag_the_validator_accepts_reads_back_as_tag_and_media_number(tag):
    try:
        c.validate_tag(tag)
    except InputError:
        return
    line = c.update("a", "127.0.0.1", 1, tag, tag, medianum=7)
    for token in line.split()[4:6]:
        assert token.rsplit(";", 1) == [tag, "7"]
        assert token.split(";", 1) == [tag, "7"]  # whichever ; the relay splits at


# ------------------------------------------------------------------------------ one home per fact


def test_a_raw_command_has_the_same_size_limit_as_an_encoded_one():
    # One rule for every command sent: it fits the relay's buffer with its cookie (§16.1).
    limit = c.MAX_COMMAND_BYTES - c.COOKIE_ALLOWANCE
    longest = "G " + "x" * (limit - 3)
    assert c.validate_raw_command(longest, "line 1") == longest
    with pytest.raises(InputError) as info:
        c.validate_raw_command(longest + "x", "line 1")
    assert info.value.message.startswith("line 1: command 'G xxx")
    assert "must stay under 8191" in info.value.message and "split it" in info.value.hint
    with pytest.raises(InputError, match="must stay under"):
        c.update("a", "127.0.0.1", 1, "f", subcommands=["M3:1 " + "x" * limit])


def test_the_creator_query_is_a_q_with_one_tag_on_stream_1():
    assert c.creator_query("c@h", "ft") == "Q c@h ft;1"
    with pytest.raises(InputError):
        c.creator_query("c@h", "f;t")


def test_all_stats_are_the_default_counters_then_the_rtp_analysis_ones():
    assert c.ALL_STATS == (c.QUERY_DEFAULT_COUNTERS, c.QUERY_RTPA_COUNTERS)
    assert c.QUERY_DEFAULT_COUNTERS == ("ttl", "npkts_ina", "npkts_ino", "nrelayed", "ndropped")
    assert c.QUERY_INTEGER_COUNTERS == set(c.ALL_STATS[0] + c.ALL_STATS[1])
    assert not set(c.QUERY_FLOAT_COUNTERS) & c.QUERY_INTEGER_COUNTERS
    # rtpproxy_stats reads the answer of a Q without names as the first group.
    assert c.parse_counters("60 1 2 3 4") == dict(zip(c.ALL_STATS[0], (60, 1, 2, 3, 4)))


def test_the_relays_c_ints_bound_play_counts_and_media_numbers():
    from rtppctl.proto import limits

    assert c.play("a", "p", "f", count=limits.MAX_PLAY_COUNT).startswith(f"P{limits.MAX_PLAY_COUNT} ")
    assert c.play("a", "p", "f", count=limits.MIN_PLAY_COUNT).startswith("P-1 ")
    with pytest.raises(InputError, match="play count"):
        c.play("a", "p", "f", count=limits.MAX_PLAY_COUNT + 1)
    assert c.validate_media_number(limits.MAX_MEDIA_NUMBER) == limits.MAX_MEDIA_NUMBER
    with pytest.raises(InputError, match="media number"):
        c.validate_media_number(limits.MAX_MEDIA_NUMBER + 1)


@pytest.mark.parametrize("code", range(0x80))
def test_each_ascii_character_in_a_token_is_accepted_exactly_when_printable(code):
    # The fast path (printable ASCII) and the character walk must agree: a token with a space or
    # any control character is refused, with the character named, whichever path sees it.
    value = f"a{chr(code)}b"
    if 0x21 <= code <= 0x7E:
        assert c.validate_token(value, "tag") == value
    else:
        with pytest.raises(InputError, match=r"contains (whitespace|the control character)"):
            c.validate_token(value, "tag")
