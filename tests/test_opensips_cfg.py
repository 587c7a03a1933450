"""Reading an OpenSIPS config's modparam("rtpproxy", ...) lines: values in, settings, TOML and reasons out."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtppctl.config import PARAMETERS, config_from_mapping
from rtppctl.opensips_cfg import MODULE_PARAMETER_KINDS, ImportedConfig, Skipped, import_opensips_config
from rtppctl.proto import limits
from rtppctl.proto.errors import ExitCode, InputError


def imported(text: str, source: str = "opensips.cfg") -> ImportedConfig:
    return import_opensips_config(text, source)


def refused(text: str, source: str = "opensips.cfg") -> str:
    with pytest.raises(InputError) as info:
        import_opensips_config(text, source)
    assert info.value.exit_code == ExitCode.INPUT
    assert "\n" not in info.value.message
    return info.value.message


def modparam(name: str, value: str, module: str = '"rtpproxy"') -> str:
    return f'modparam({module}, "{name}", {value})\n'


# -- the parameters ---------------------------------------------------------------------------------


#: Section 1.5 of the module's documentation, in its order.
SECTION_1_5 = [
    "rtpproxy_sock", "rtpproxy_disable_tout", "rtpproxy_timeout", "rtpproxy_autobridge", "rtpproxy_retr", "default_set",
    "nortpproxy_str", "db_url", "db_table", "rtpp_socket_col", "set_id_col", "rtpp_notify_socket",
    "generated_sdp_port_min", "generated_sdp_port_max", "generated_sdp_media_ip",
]


def test_the_module_parameters_are_those_of_section_1_5_and_each_is_an_rtppctl_key():
    assert list(MODULE_PARAMETER_KINDS) == SECTION_1_5
    assert set(SECTION_1_5) <= {parameter.name for parameter in PARAMETERS}


def test_the_import_reads_the_module_parameters_from_the_config_table():
    # One list: a key the config marks as the module's is a modparam the import carries over, with
    # the kind the config gives it; any other key is rtppctl's own.
    assert MODULE_PARAMETER_KINDS == {p.name: p.kind for p in PARAMETERS if p.owner == "module"}
    assert {p.name for p in PARAMETERS if p.owner == "rtppctl"} == {"ledger_ttl", "db_mode", "state_url"}
    assert set(MODULE_PARAMETER_KINDS.values()) == {str, int}


EVERY_PARAMETER = (
    modparam("rtpproxy_sock", '"udp:10.0.0.1:22222"')
    + modparam("rtpproxy_disable_tout", "20")
    + modparam("rtpproxy_timeout", '"0.2"')
    + modparam("rtpproxy_autobridge", "1")
    + modparam("rtpproxy_retr", "2")
    + modparam("default_set", "1")
    + modparam("nortpproxy_str", r'"a=sdpmangled:yes\r\n"')
    + modparam("db_url", '"mysql://opensips:opensipsrw@192.168.2.132/opensips"')
    + modparam("db_table", '"nh_sockets"')
    + modparam("rtpp_socket_col", '"rtpp_socket"')
    + modparam("set_id_col", '"rtpp_set_id"')
    + modparam("rtpp_notify_socket", '"tcp:10.10.10.10:9999"')
    + modparam("generated_sdp_port_min", "10000")
    + modparam("generated_sdp_port_max", "30000")
    + modparam("generated_sdp_media_ip", '"10.0.0.1"')
)


def test_every_parameter_is_carried_over_with_the_conversions_of_the_validator():
    result = imported(EVERY_PARAMETER)
    assert result.skipped == [] and result.warnings == []
    assert result.settings == {
        "rtpproxy_sock": ["udp:10.0.0.1:22222"],
        "rtpproxy_disable_tout": 20,
        "rtpproxy_timeout": 0.2,
        "rtpproxy_autobridge": True,
        "rtpproxy_retr": 2,
        "default_set": 1,
        "nortpproxy_str": "a=sdpmangled:yes",
        "db_url": "mysql://opensips:opensipsrw@192.168.2.132/opensips",
        "db_table": "nh_sockets",
        "rtpp_socket_col": "rtpp_socket",
        "set_id_col": "rtpp_set_id",
        "rtpp_notify_socket": "tcp:10.10.10.10:9999",
        "generated_sdp_port_min": 10000,
        "generated_sdp_port_max": 30000,
        "generated_sdp_media_ip": "10.0.0.1",
    }
    assert isinstance(result.settings["rtpproxy_timeout"], float)
    assert type(result.settings["rtpproxy_retr"]) is int


def test_settings_follow_the_order_of_the_parameter_table_not_of_the_file():
    text = "".join(reversed(EVERY_PARAMETER.splitlines(keepends=True)))
    order = [parameter.name for parameter in PARAMETERS if parameter.name in MODULE_PARAMETER_KINDS]
    assert list(imported(text).settings) == order


def test_autobridge_zero_is_false_and_an_empty_marker_disables_it():
    result = imported(modparam("rtpproxy_autobridge", "0") + modparam("nortpproxy_str", '""'))
    assert result.settings == {"rtpproxy_autobridge": False, "nortpproxy_str": ""}
    assert "nortpproxy_str = \"\"\n" in result.toml


def test_every_rtpproxy_sock_value_is_one_element_in_file_order():
    text = (
        modparam("rtpproxy_sock", '"2 == udp:10.0.0.3:22222"')
        + modparam("rtpproxy_retr", "3")
        + modparam("rtpproxy_sock", '"udp:10.0.0.1:22222|198.51.100.1=3 udp:10.0.0.2:22222=1"')
        + modparam("rtpproxy_sock", '"2 == tcp:10.0.0.4:22223"')
    )
    assert imported(text).settings["rtpproxy_sock"] == [
        "2 == udp:10.0.0.3:22222",
        "udp:10.0.0.1:22222|198.51.100.1=3 udp:10.0.0.2:22222=1",
        "2 == tcp:10.0.0.4:22223",
    ]


def test_a_parameter_set_twice_keeps_the_last_value_and_says_so():
    result = imported(modparam("rtpproxy_retr", "2") + "\n" + modparam("rtpproxy_retr", "4"))
    assert result.settings == {"rtpproxy_retr": 4}
    assert result.warnings == ["line 3: rtpproxy_retr: set again (also at line 1); the last value counts, as in OpenSIPS"]


def test_a_reversed_port_range_is_kept_as_written_with_a_warning():
    result = imported(modparam("generated_sdp_port_min", "30000") + modparam("generated_sdp_port_max", "20000"))
    assert result.settings == {"generated_sdp_port_min": 30000, "generated_sdp_port_max": 20000}
    assert result.warnings == [
        "line 2: generated_sdp_port_max (20000) is below generated_sdp_port_min (30000); the module swaps them, and so does rtppctl"
    ]


def test_one_end_of_the_port_range_is_not_swapped_with_the_other_ends_default():
    # 30000 alone is below the default minimum (35000): it must still read as the maximum.
    assert imported(modparam("generated_sdp_port_max", "30000")).settings == {"generated_sdp_port_max": 30000}


# -- values, read as OpenSIPS's lexer reads them ------------------------------------------------------
# Each rule below is a rule of OpenSIPS's cfg.lex (github.com/OpenSIPS/opensips, master, read with
# `git show HEAD:cfg.lex`): <STRING1> is a double-quoted string, <STRING2> a single-quoted one.


@pytest.mark.parametrize(
    ("written", "value"),
    [
        (r'"a=x:\"quoted\"\r\n"', 'a=x:"quoted"'),  # <STRING1>\\{QUOTES}, <STRING1>\\r, <STRING1>\\n
        (r'"a=x:back\\slash"', "a=x:back\\slash"),  # <STRING1>\\\\
        (r'"a=x:tab\there"', "a=x:tab\there"),  # <STRING1>\\t
        (r'"a=x:\x41\x4"', "a=x:A\x04"),  # <STRING1>\\x{HEX}{1,2}: one or two hex digits, one byte
        (r'"a=x:\x414"', "a=x:A4"),  # ... never three
        (r'"a=x:\101\60"', "a=x:A0"),  # <STRING1>\\[0-7]{2,3}: two or three octal digits
        (r'"a=x:\1014"', "a=x:A4"),  # ... never four
        (r'"a=x:\xc3\xa9"', "a=x:é"),  # the bytes of UTF-8 text make that text
        (r"'a=x:\"double\" in single'", r'a=x:\"double\" in single'),  # <STRING2>.: no escapes at all
        (r"'a=x:tab\t'", r"a=x:tab\t"),
        (r'"a=x\a"', "a=x\a"),  # <STRING1>\\a: a BEL character
        (r"'a=x\' 'b'", "a=x\\b"),  # <STRING2>{TICK} ends 'a=x\' at its quote; then 'b' is folded on
    ],
)
def test_strings_have_the_escapes_of_cfg_lex_and_single_quotes_none(written, value):
    result = imported(modparam("nortpproxy_str", written))
    assert result.settings == {"nortpproxy_str": value}


@pytest.mark.parametrize(("written", "value", "escape"), [
    (r'"mysql://u:p\q@db/opensips"', r"mysql://u:p\q@db/opensips", r"\q"),  # <STRING1>.: the backslash is kept
    (r'"mysql://u:p\1@db/opensips"', r"mysql://u:p\1@db/opensips", r"\1"),  # one octal digit is no escape
    (r'"mysql://u:p\x@db/opensips"', r"mysql://u:p\x@db/opensips", r"\x"),  # \x without a hex digit is none
    (r"""'mysql://u:p"w@db/opensips'""", 'mysql://u:p"w@db/opensips', None),
])
def test_an_unknown_escape_keeps_its_backslash_as_opensips_does_and_is_reported(written, value, escape):
    result = imported(modparam("db_url", written))
    assert result.settings == {"db_url": value}
    if escape is None:
        assert result.warnings == []
    else:
        assert result.warnings == [f"line 1: db_url: {escape} is no escape OpenSIPS knows (cfg.lex); the backslash is kept, "
                                   "as OpenSIPS keeps it"]


def test_a_backslash_does_not_escape_a_single_quote():
    # <STRING2>{TICK} ends the string at the first quote, whatever comes before it: 'nh\' + 1 is
    # the string "nh\", a plus and a number.
    result = imported(modparam("db_table", r"'nh\' + 1") + modparam("rtpproxy_retr", "2"))
    assert result.settings == {"rtpproxy_retr": 2}
    assert result.skipped[0].reason.endswith(
        "is not one string: OpenSIPS knows no escapes between single quotes (cfg.lex <STRING2>), so the quote after "
        "the backslash ends the string")


def test_a_nul_escape_ends_the_value_as_opensipss_c_string_does():
    # <STRING1>\\x{HEX}{1,2} and \\[0-7]{2,3} can make a NUL; modparam gets a char *, which ends there.
    result = imported(modparam("db_table", r'"nh_sockets\x00; drop"') + modparam("set_id_col", r'"set_id\000x"'))
    assert result.settings == {"db_table": "nh_sockets", "set_id_col": "set_id"}
    assert result.warnings == [
        r'line 1: db_table: \x00 is a NUL character, where OpenSIPS' "'" r's C string ends; read up to it: "nh_sockets"',
        r'line 2: set_id_col: \000 is a NUL character, where OpenSIPS' "'" r's C string ends; read up to it: "set_id"',
    ]


def test_escapes_that_make_no_utf8_text_are_not_carried_over():
    result = imported(modparam("db_table", r'"nh_\xff"'))
    assert result.settings == {}
    assert result.skipped == [Skipped(1, "db_table", r'the escapes in "nh_\xff" make bytes that are not UTF-8 text')]


def test_strings_in_a_row_are_one_value():
    # cfg.y: MODPARAM LPAREN STRING COMMA STRING COMMA folded_string RPAREN, folded_string being
    # STRING STRING | folded_string STRING, joined with strcpy/strcat.
    text = modparam("rtpproxy_sock", '"udp:10.0.0.1:22222 "\n   \'udp:10.0.0.2:22222\' "=2"')
    assert imported(text).settings == {"rtpproxy_sock": ["udp:10.0.0.1:22222 udp:10.0.0.2:22222=2"]}


def test_there_are_no_backtick_strings():
    # cfg.lex has QUOTES (\") and TICK (\') and no other string start: a backtick is no quote.
    result = imported(modparam("db_table", "`nh_sockets`"))
    assert result.settings == {}
    assert result.skipped[0].reason == "the value `nh_sockets` is not a quoted string, an integer or a #!define name"


@pytest.mark.parametrize(("written", "value"), [
    ("7", 7), ("0", 0), ("+3", 3),  # {NUMBER} 0|([1-9]{DIGIT}*); cfg.y snumber: PLUS NUMBER
    ("0x1E", 30), ("0x1e", 30),  # {HEXNUMBER} 0x{HEX}+
    ("010", 8),  # {OCTNUMBER} 0[0-7]+
    ("yes", 1), ("true", 1), ("on", 1), ("enable", 1),  # {YES}
])
def test_integers_are_read_as_cfg_lex_reads_them(written, value):
    assert imported(modparam("default_set", written)).settings == {"default_set": value}


def test_the_no_words_are_zero_and_an_octal_number_is_reported():
    result = imported(modparam("rtpproxy_autobridge", "off") + modparam("rtpproxy_retr", "010"))
    assert result.settings == {"rtpproxy_autobridge": False, "rtpproxy_retr": 8}
    assert result.warnings == ["line 2: rtpproxy_retr: 010 is octal to OpenSIPS (cfg.lex OCTNUMBER): read as 8"]


@pytest.mark.parametrize(("written", "reason"), [
    ("-1", f"expected an integer 0..{limits.MAX_SET_ID}, got -1"),
    # "0X10", "08", "1e3": no {NUMBER}, {HEXNUMBER} or {OCTNUMBER} spells them whole (OpenSIPS would
    # read two tokens, a syntax error); "YES": the {YES} words are lower case.
    ("0X10", "the value 0X10 is not a quoted string, an integer or a #!define name"),
    ("08", "the value 08 is not a quoted string, an integer or a #!define name"),
    ("1e3", "the value 1e3 is not a quoted string, an integer or a #!define name"),
    ("YES", "YES is not a #!define of this file (defined elsewhere, or by a preprocessor?)"),
    ("1 2", "the value 1 2 is not a quoted string, an integer or a #!define name"),
    ("", "no value"),
])
def test_anything_else_is_skipped(written, reason):
    assert imported(modparam("default_set", written)).skipped == [Skipped(1, "default_set", reason)]


def test_a_signed_integer_is_an_integer():
    assert imported(modparam("default_set", "+3") + modparam("rtpproxy_retr", "- 4")).settings == {"default_set": 3}


def test_values_of_the_other_kind_are_skipped_with_the_kind_the_module_takes():
    result = imported(modparam("rtpproxy_retr", '"2"') + modparam("rtpproxy_timeout", "1"))
    assert result.settings == {}
    assert result.skipped == [
        Skipped(1, "rtpproxy_retr", 'the module takes an integer here, not the string "2" (write it without quotes)'),
        Skipped(2, "rtpproxy_timeout", "the module takes a string here, not the integer 1 (write it in quotes)"),
    ]


def test_values_the_config_validator_refuses_are_skipped_with_its_reason_and_their_line():
    text = (
        "# relays\n"
        + modparam("rtpproxy_sock", '"udp:10.0.0.1:70000"')
        + modparam("rtpproxy_sock", '"   "')
        + modparam("rtpproxy_timeout", '"soon"')
        + modparam("rtpproxy_autobridge", "2")
        + modparam("rtpp_notify_socket", '"tcp:[::1]:9999"')
        + modparam("generated_sdp_port_min", "0")
        + modparam("nortpproxy_str", r'"a=one\r\na=two"')
        + modparam("rtpproxy_sock", '"udp:10.0.0.2:22222"')
    )
    result = imported(text)
    assert result.settings == {"rtpproxy_sock": ["udp:10.0.0.2:22222"]}
    assert [(entry.line, entry.name) for entry in result.skipped] == [
        (2, "rtpproxy_sock"), (3, "rtpproxy_sock"), (4, "rtpproxy_timeout"), (5, "rtpproxy_autobridge"),
        (6, "rtpp_notify_socket"), (7, "generated_sdp_port_min"), (8, "nortpproxy_str"),
    ]
    reasons = [entry.reason for entry in result.skipped]
    assert "port '70000' is not a whole number 1..65535" in reasons[0]
    assert reasons[1] == "an empty value (the module ignores it)"
    assert reasons[2].startswith("expected a number of seconds") and reasons[2].endswith('got "soon"')
    assert reasons[3] == "expected true or false (or 0 or 1), got 2"
    assert reasons[5].startswith("expected an integer 1..") and reasons[5].endswith("got 0")
    # The reason names neither the file nor the key again: the entry has both.
    assert not any(reason.startswith(("opensips.cfg", "rtpproxy_")) for reason in reasons)


def test_unknown_parameter_names_are_skipped_with_a_suggestion():
    result = imported(modparam("rtpproxy_socket", '"udp:10.0.0.1:22222"') + modparam("ledger_ttl", "600"))
    assert result.skipped == [
        Skipped(1, "rtpproxy_socket", "not a parameter of the OpenSIPS rtpproxy module; did you mean rtpproxy_sock?"),
        Skipped(2, "ledger_ttl", "not a parameter of the OpenSIPS rtpproxy module"),
    ]


# -- statements over several lines ---------------------------------------------------------------------


def test_a_statement_over_several_lines_takes_the_line_of_modparam():
    text = 'loadmodule "rtpproxy.so"\nmodparam(\n  "rtpproxy",\n  "rtpproxy_retr",\n  0\n);\n'
    assert imported(text).skipped == [Skipped(2, "rtpproxy_retr", "expected an integer 1..100, got 0")]


def test_a_line_break_stays_in_the_string_and_the_module_splits_relays_at_it():
    # cfg.lex <STRING1>{CR} and <STRING2>{CR}: the line break is added to the string (eatback_pp_tok
    # only removes the preprocessor's own __OSSPP_ marker lines). modules/rtpproxy/rtpproxy.c,
    # add_rtpproxy_socks, then splits nodes at every isspace() character, line breaks included.
    text = (
        'modparam("rtpproxy", "rtpproxy_sock", "1 == udp:10.0.0.1:22222\n'
        '        udp:10.0.0.2:22222=2")\n'
        "modparam(\"rtpproxy\", \"rtpproxy_sock\", '2 == udp:10.0.0.3:22222\n"
        "udp:10.0.0.4:22222')\n"
    )
    result = imported(text)
    assert result.settings["rtpproxy_sock"] == [
        "1 == udp:10.0.0.1:22222\n        udp:10.0.0.2:22222=2", "2 == udp:10.0.0.3:22222\nudp:10.0.0.4:22222"]
    config = config_from_mapping(result.settings, Path("imported.toml"))
    assert [[node.url for node in nodes] for _, nodes in sorted(config.sets().items())] == [
        ["udp:10.0.0.1:22222", "udp:10.0.0.2:22222"], ["udp:10.0.0.3:22222", "udp:10.0.0.4:22222"]]
    assert result.warnings[0] == (
        "line 1: rtpproxy_sock: the string goes on over a line break (onto line 2); OpenSIPS keeps the break in the "
        'value (cfg.lex), and the module splits relays at it as at any blank: "1 == udp:10.0.0.1:22222\\n        '
        'udp:10.0.0.2:22222=2"')


def test_the_documentations_wrapped_examples_name_the_relays_opensips_reads():
    # The module's documentation prints these values wrapped inside their quotes; OpenSIPS keeps the
    # break, so they name `tcp6:` and `remote2:32322`, `udp:loca` and `lhost:22223`: not carried over.
    text = (
        'modparam("rtpproxy", "rtpproxy_sock",\n'
        '        "udp:localhost:22222 udp:localhost:22223 tcp:remote1:33422 tcp6:\n'
        'remote2:32322")\n'
        'modparam("rtpproxy", "rtpproxy_sock", "1 == udp:localhost:22222 udp:loca\n'
        'lhost:22223")\n'
    )
    result = imported(text)
    assert result.settings == {}
    assert result.skipped == [
        Skipped(1, "rtpproxy_sock", "node spec 'tcp6:': the host after 'tcp6:' is empty"),
        Skipped(4, "rtpproxy_sock", "node spec 'lhost:22223': unknown scheme 'lhost' in 'lhost:22223' "
                                    "(expected unix, cunix, udp, udp6, tcp, tcp6, or a socket path)"),
    ]
    assert [warning.split(";")[0] for warning in result.warnings] == [
        "line 1: rtpproxy_sock: the string goes on over a line break (onto line 3)",
        "line 4: rtpproxy_sock: the string goes on over a line break (onto line 5)",
    ]


def test_a_backslash_before_a_line_break_removes_both_and_only_in_double_quotes():
    # cfg.lex <STRING1>\\{CR}: "eat escaped CRs" (the indentation after it stays); <STRING2> has no
    # such rule; before a CRLF the backslash meets \r, no escape, and stays with the break.
    text = (
        'modparam("rtpproxy", "rtpproxy_sock", "udp:10.0.0.1:22222\\\n   udp:10.0.0.2:22222")\n'
        "modparam(\"rtpproxy\", \"db_table\", 'nh\\\nsockets')\n"
        'modparam("rtpproxy", "set_id_col", "set\\\r\nid")\n'
    )
    result = imported(text)
    assert result.settings == {"rtpproxy_sock": ["udp:10.0.0.1:22222   udp:10.0.0.2:22222"]}
    assert [entry.line for entry in result.skipped] == [3, 5]
    assert result.skipped[0].reason.endswith('got "nh\\\\\\nsockets"')
    assert result.skipped[1].reason.endswith('got "set\\\\\\r\\nid"')
    assert "line 5: set_id_col: \\\\x0d is no escape OpenSIPS knows" in result.warnings[-1]


def test_crlf_line_endings_count_lines_like_lf():
    text = "# a\r\n\r\n" + modparam("rtpproxy_retr", "0").replace("\n", "\r\n")
    assert imported(text).skipped[0].line == 3


# -- comments --------------------------------------------------------------------------------------------


def test_comments_of_every_kind_hide_statements_and_do_not_count_inside_strings():
    text = (
        "/* modparam(\"rtpproxy\", \"rtpproxy_retr\", 9)\n"
        "   still the comment */ # modparam(\"rtpproxy\", \"rtpproxy_retr\", 8)\n"
        "// modparam(\"rtpproxy\", \"rtpproxy_retr\", 7)\n"
        "modparam(\"rtpproxy\", /* inline */ \"db_url\", // after the name\n"
        "  \"mysql://u:p#w//x/*y*/@db/opensips\")  # after the statement\n"
    )
    result = imported(text)
    assert result.settings == {"db_url": "mysql://u:p#w//x/*y*/@db/opensips"}
    # cfg.lex knows {COM_LINE} # and {COM_START}/{COM_END} only: '//' is skipped, and said so.
    assert result.skipped == [] and result.warnings == [
        f"line {line}: '//' starts no comment for OpenSIPS (cfg.lex knows only # and /* */), which reads the rest of "
        "the line as code; skipped here" for line in (3, 4)]


def test_block_comments_nest():
    # cfg.lex: <INITIAL,COMMENT>{COM_START} counts comment_nest up, <COMMENT>{COM_END} down, and
    # only a count of 0 leaves the comment.
    text = ("/* outer /* inner */ " + modparam("rtpproxy_retr", "9") + "*/\n" + modparam("rtpproxy_retr", "2")
            + "/* /* /* */ */ */" + modparam("default_set", "1"))
    assert imported(text).settings == {"rtpproxy_retr": 2, "default_set": 1}
    assert refused("/* a /* b */ " + modparam("rtpproxy_retr", "2")) == "opensips.cfg: line 1: a /* comment is never closed with */"


def test_a_string_or_block_comment_never_closed_is_bad_input_naming_file_and_line():
    assert refused('# x\nmodparam("rtpproxy", "db_url", "mysql://db\n\n') == (
        'opensips.cfg: line 2: a string opened with " is never closed'
    )
    assert refused("\n\n/* modparam(\"rtpproxy\", ...)\n", "stdin") == "stdin: line 3: a /* comment is never closed with */"


def test_a_modparam_never_closed_or_without_three_arguments_is_bad_input():
    assert refused('\nmodparam("rtpproxy", "rtpproxy_retr", 2\n') == "opensips.cfg: line 2: modparam( is never closed with )"
    assert refused('modparam("rtpproxy", "rtpproxy_retr")\n') == (
        'opensips.cfg: line 1: modparam("rtpproxy", ...) needs three arguments (module, parameter, value), got 2'
    )
    assert "parameter name" in refused('modparam("rtpproxy", 12, 2)\n')


# -- modules -------------------------------------------------------------------------------------------------


def test_other_modules_are_ignored_and_a_text_without_rtpproxy_is_bad_input():
    text = (
        modparam("rtpengine_sock", '"udp:127.0.0.1:2223"', module='"rtpengine"')
        + modparam("natping_interval", "10", module='"nathelper"')
        + modparam("x", "1", module='"rtp"')
        + 'route { rtpproxy_offer("co"); xlog("modparam(\\"rtpproxy\\", \\"rtpproxy_retr\\", 1)"); }\n'
    )
    assert refused(text, "/etc/opensips/opensips.cfg") == 'no modparam("rtpproxy", ...) in /etc/opensips/opensips.cfg'
    assert refused("", "stdin") == 'no modparam("rtpproxy", ...) in stdin'


@pytest.mark.parametrize("module", ['"rtpproxy|nathelper"', '".*"', '"rtp(proxy|engine)"', '"RTPProxy"'])
def test_module_patterns_that_name_rtpproxy_are_reported_not_carried_over(module):
    result = imported(modparam("rtpproxy_retr", "3", module=module) + modparam("rtpproxy_disable_tout", "9"))
    assert result.settings == {"rtpproxy_disable_tout": 9}
    assert result.skipped == [Skipped(1, "rtpproxy_retr", (
        f"the module name {module} is not \"rtpproxy\" (OpenSIPS reads it as a regular expression); "
        "write it as modparam(\"rtpproxy\", ...) to carry it over"
    ))]


def test_a_file_whose_only_rtpproxy_statement_is_a_pattern_is_not_an_error():
    result = imported(modparam("rtpproxy_retr", "3", module='"rtpproxy|nathelper"'))
    assert result.settings == {} and len(result.skipped) == 1


def test_a_pattern_that_is_no_valid_regular_expression_is_just_another_module():
    with pytest.raises(InputError):
        imported(modparam("x", "1", module='"rtp[("'))


# -- #!define and #!ifdef ------------------------------------------------------------------------------------


def test_plain_defines_are_replaced_where_they_stand_alone_and_never_inside_strings():
    text = (
        '#!define RTPP_SOCK "udp:10.0.0.1:22222" # the relay\n'
        "#!define RETRIES 3\n"
        "#!define PARAM \"rtpproxy_disable_tout\"\n"
        + modparam("rtpproxy_sock", "RTPP_SOCK")
        + modparam("rtpproxy_retr", "RETRIES")
        + 'modparam("rtpproxy", PARAM, 7)\n'
        + modparam("db_table", '"RETRIES"')
    )
    assert imported(text).settings == {
        "rtpproxy_sock": ["udp:10.0.0.1:22222"], "rtpproxy_disable_tout": 7, "rtpproxy_retr": 3, "db_table": "RETRIES",
    }


def test_defines_that_are_not_plain_or_not_there_yet_are_skipped():
    text = (
        "#!define SOCK udp:10.0.0.1:22222\n"
        + modparam("rtpproxy_sock", "SOCK")
        + modparam("rtpproxy_retr", "LATER")
        + "#!define LATER 2\n"
        + modparam("rtpproxy_disable_tout", "NOWHERE")
    )
    result = imported(text)
    assert result.settings == {}
    assert result.skipped == [
        Skipped(2, "rtpproxy_sock", "SOCK is defined as udp:10.0.0.1:22222 (line 1), not as one quoted string or integer"),
        Skipped(3, "rtpproxy_retr", "LATER is not a #!define of this file (defined elsewhere, or by a preprocessor?)"),
        Skipped(5, "rtpproxy_disable_tout", "NOWHERE is not a #!define of this file (defined elsewhere, or by a preprocessor?)"),
    ]


def test_undef_trydef_redefine_and_continued_define_lines():
    text = (
        "#!define A 1\n#!trydef A 2\n" + modparam("rtpproxy_retr", "A")
        + "#!redefine A 4\n" + modparam("rtpproxy_disable_tout", "A")
        + "#!undef A\n" + modparam("default_set", "A")
        + '#!define SOCK "udp:10.0.0.1:22222 \\\n  udp:10.0.0.2:22222"\n' + modparam("rtpproxy_sock", "SOCK")
    )
    result = imported(text)
    assert result.settings == {
        "rtpproxy_sock": ["udp:10.0.0.1:22222   udp:10.0.0.2:22222"], "rtpproxy_disable_tout": 4, "rtpproxy_retr": 1,
    }
    assert [entry.line for entry in result.skipped] == [7]


def test_ifdef_blocks_follow_the_files_own_defines_and_say_so():
    text = (
        "#!define WITH_NAT\n"                                 # 1
        "#!ifdef WITH_NAT\n"                                  # 2
        + modparam("rtpproxy_retr", "2")                      # 3
        + "#!ifndef WITH_TLS\n"                               # 4
        + modparam("rtpproxy_disable_tout", "5")              # 5
        + "#!endif\n"                                         # 6
        + "#!else\n"                                          # 7
        + modparam("rtpproxy_retr", "9")                      # 8
        + "#!endif\n"                                         # 9
        + "#!ifdef WITH_TLS\n"                                # 10
        + "#!define RETRIES 1\n"                              # 11: not applied, the branch is not taken
        + modparam("default_set", "3")                        # 12
        + "#!endif\n"                                         # 13
        + modparam("rtpproxy_autobridge", "1")                # 14: outside every block: no warning
    )
    result = imported(text)
    assert result.settings == {"rtpproxy_disable_tout": 5, "rtpproxy_autobridge": True, "rtpproxy_retr": 2}
    assert result.skipped == [
        Skipped(8, "rtpproxy_retr", "inside the #!else of #!ifdef WITH_NAT (line 2), a branch not taken: WITH_NAT is defined in this file"),
        Skipped(12, "default_set", "inside #!ifdef WITH_TLS (line 10), a branch not taken: WITH_TLS is not defined in this file"),
    ]
    assert result.warnings == [
        "line 3: rtpproxy_retr: inside #!ifdef WITH_NAT (line 2); carried over because WITH_NAT is defined in this file "
        "(a define given when OpenSIPS starts could change that)",
        "line 5: rtpproxy_disable_tout: inside #!ifdef WITH_NAT (line 2) and #!ifndef WITH_TLS (line 4); carried over because "
        "WITH_NAT is defined in this file and WITH_TLS is not defined in this file (a define given when OpenSIPS starts could change that)",
    ]


def test_unbalanced_conditionals_are_warnings():
    result = imported("#!endif\n" + modparam("rtpproxy_retr", "2") + "#!else\n#!ifndef X\n")
    assert result.settings == {"rtpproxy_retr": 2}
    assert result.warnings == [
        "line 1: #!endif without an open #!ifdef or #!ifndef; ignored",
        "line 3: #!else without an open #!ifdef or #!ifndef; ignored",
        "line 4: #!ifndef X is never closed with #!endif",
    ]


def test_a_hash_bang_line_not_at_the_start_of_a_line_is_a_comment():
    result = imported(modparam("rtpproxy_retr", "2").rstrip("\n") + " #!define X 1\n" + modparam("default_set", "X"))
    assert result.skipped[0].reason.startswith("X is not a #!define")


# -- the result --------------------------------------------------------------------------------------------


def test_the_toml_names_the_source_and_every_skipped_statement_and_loads_as_the_settings():
    text = modparam("rtpproxy_sock", '"1 == udp:10.0.0.1:22222|198.51.100.1=2"') + modparam("bogus", "1") + EVERY_PARAMETER
    result = imported(text, "/etc/opensips/opensips.cfg")
    lines = result.toml.splitlines()
    assert lines[0] == "# rtppctl configuration imported from /etc/opensips/opensips.cfg by `rtppctl config import-opensips`."
    assert "# Not carried over:" in lines
    assert "#   line 2: bogus: not a parameter of the OpenSIPS rtpproxy module" in lines
    loaded = tomllib.loads(result.toml)
    assert loaded == result.settings
    config = config_from_mapping(loaded, Path("imported.toml"))
    assert config.rtpproxy_sock == tuple(result.settings["rtpproxy_sock"])
    assert sorted(config.sets()) == [1]  # default_set is 1: the set of a value without "N =="


def test_names_with_line_breaks_stay_inside_their_comment():
    result = imported('modparam("rtpproxy", "bad\\nname\\x", 1)\n' + modparam("rtpproxy_retr", "2"), "odd\nname.cfg")
    assert tomllib.loads(result.toml) == {"rtpproxy_retr": 2}
    assert "#   line 1: bad\\x0aname\\x: not a parameter" in result.toml
    assert "imported from odd\\x0aname.cfg" in result.toml


def test_messages_are_every_skipped_entry_and_warning_in_line_order():
    text = modparam("rtpproxy_retr", "2") + modparam("rtpproxy_retr", "0") + modparam("rtpproxy_retr", "3")
    assert imported(text).messages == [
        "line 2: rtpproxy_retr: expected an integer 1..100, got 0",
        "line 3: rtpproxy_retr: set again (also at line 1); the last value counts, as in OpenSIPS",
    ]


def test_a_result_with_nothing_carried_over_is_only_the_header():
    result = imported(modparam("nothing", "1"))
    assert result.settings == {} and tomllib.loads(result.toml) == {}
    assert result.toml.endswith("#   line 1: nothing: not a parameter of the OpenSIPS rtpproxy module\n")


# -- anything at all ----------------------------------------------------------------------------------------

_PIECES = st.sampled_from([
    'modparam("rtpproxy", ', 'modparam("rtpproxy|x", ', 'modparam("tm", ', '"rtpproxy_sock", ', '"rtpproxy_retr", ',
    '"nortpproxy_str", ', '"rtpproxy_timeout", ', '"udp:10.0.0.1:22222"', '"0.2"', "'x'", "2", "-1", ")", "(", ",", ";",
    "\n", " ", "#", "//", "/*", "*/", '"', "'", "\\", "#!define X 1\n", "#!ifdef X\n", "#!else\n", "#!endif\n", "X",
    r'"a=x\r\n"', "=", "|",
])


@given(st.lists(st.one_of(_PIECES, st.text(max_size=4)), max_size=30))
def test_any_text_gives_a_loadable_result_or_one_line_of_bad_input(pieces):
    text = "".join(pieces)
    try:
        result = import_opensips_config(text, "fuzz.cfg")
    except InputError as exc:
        assert "\n" not in exc.message
        return
    assert tomllib.loads(result.toml) == result.settings
    config_from_mapping(result.settings, Path("fuzz.toml")).sets()
    assert all(entry.line >= 1 for entry in result.skipped)


# -- bounded echoes -------------------------------------------------------------------------------------------


def test_every_echo_of_the_files_text_is_bounded():
    huge = "x" * 1_000_000
    text = (
        modparam(huge, "1")
        + modparam("rtpproxy_sock", f'"udp:{huge}"')
        + modparam("db_table", f'"{huge}\n"')
        + modparam("rtpproxy_retr", huge.upper())
        + modparam("rtpproxy_sock", f'"udp:10.0.0.1:22222 {huge[:500]}"')
    )
    result = imported(text)
    assert result.settings == {"rtpproxy_sock": [f"udp:10.0.0.1:22222 {huge[:500]}"]}
    assert len(result.messages) == 6
    assert all(len(message) < 600 for message in result.messages), [len(message) for message in result.messages]
    assert len(result.toml) < 3_000  # the value carried over (500 characters) and bounded comments
