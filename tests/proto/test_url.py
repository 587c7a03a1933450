"""Node specs are read as the OpenSIPS module reads them (docs/protocol.md §1.1), with clearer errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtppctl.proto.errors import InputError
from rtppctl.proto.url import (
    DEFAULT_PORT, SCHEMES, NodeSpec, doubtful_paths, format_node, parse_node, parse_sock_line, parse_table_row,
)


def test_constants():
    assert SCHEMES == ("unix", "cunix", "udp", "udp6", "tcp", "tcp6")
    assert DEFAULT_PORT == 22222


@pytest.mark.parametrize(
    ("token", "scheme", "host", "port", "path", "family", "kind"),
    [
        ("udp:127.0.0.1:22222", "udp", "127.0.0.1", 22222, None, "inet", "datagram"),
        ("udp6:::1:22223", "udp6", "::1", 22223, None, "inet6", "datagram"),
        ("tcp:relay.example.net:9000", "tcp", "relay.example.net", 9000, None, "inet", "stream"),
        ("tcp6:2001:db8::5:9000", "tcp6", "2001:db8::5", 9000, None, "inet6", "stream"),
        ("unix:/var/run/rtpproxy.sock", "unix", None, None, "/var/run/rtpproxy.sock", "unix", "oneshot"),
        ("cunix:/var/run/rtpproxy.sock", "cunix", None, None, "/var/run/rtpproxy.sock", "unix", "stream"),
        ("/var/run/rtpproxy.sock", "unix", None, None, "/var/run/rtpproxy.sock", "unix", "oneshot"),
        ("rtpproxy.sock", "unix", None, None, "rtpproxy.sock", "unix", "oneshot"),
        ("./dir:x/sock", "unix", None, None, "./dir:x/sock", "unix", "oneshot"),
        ("UDP:localhost:1", "udp", "localhost", 1, None, "inet", "datagram"),
        ("Tcp6::::", "tcp6", "::", 22222, None, "inet6", "stream"),  # last-colon split, as the module does
    ],
)
def test_every_scheme(token, scheme, host, port, path, family, kind):
    node = parse_node(token)
    assert (node.scheme, node.host, node.port, node.path, node.family) == (scheme, host, port, path, family)
    assert (node.is_datagram, node.is_stream, node.is_oneshot) == (
        kind == "datagram", kind == "stream", kind == "oneshot",
    )
    assert node.url == token
    assert node.weight == 1
    assert node.advertised is None


@pytest.mark.parametrize("token", ["udp:localhost", "udp:localhost:", "tcp:10.0.0.1", "udp6:2001:db8::1:"])
def test_default_port(token):
    assert parse_node(token).port == 22222


def test_last_colon_split_and_udp6_without_brackets():
    node = parse_node("udp6:::1:22222")
    assert (node.host, node.port) == ("::1", 22222)
    assert node.address == "::1:22222"
    node = parse_node("udp6:fe80::1%eth0:5000")
    assert (node.host, node.port) == ("fe80::1%eth0", 5000)


@pytest.mark.parametrize(
    ("token", "example"),
    [("udp6:[::1]:22222", "udp6:::1:22222"), ("udp6:[::1]", "udp6:::1:22222"),
     ("tcp6:[2001:db8::1]:5060", "tcp6:2001:db8::1:5060"), ("udp6:[::1", "udp6:::1:22222")],
)
def test_brackets_are_refused_with_the_fix(token, example):
    with pytest.raises(InputError) as info:
        parse_node(token)
    assert repr(token) in info.value.message
    assert "without brackets" in info.value.message
    assert example in info.value.hint


def test_advertised_weight_url_and_address():
    node = parse_node("udp:localhost:22222|8.8.8.8=2")
    assert node.url == "udp:localhost:22222"
    assert node.address == "localhost:22222"
    assert node.weight == 2
    assert node.advertised == "8.8.8.8"
    assert (node.host, node.port) == ("localhost", 22222)
    node = parse_node("unix:/tmp/r.sock|2001:db8::7")
    assert (node.url, node.address, node.path, node.advertised) == (
        "unix:/tmp/r.sock", "/tmp/r.sock", "/tmp/r.sock", "2001:db8::7",
    )
    assert parse_node("/tmp/r.sock=0").weight == 0
    assert parse_node("/tmp/r.sock=0").address == "/tmp/r.sock"
    # the | is searched backwards before the first =
    node = parse_node("udp:h:1|1.2.3.4=5")
    assert (node.url, node.advertised, node.weight) == ("udp:h:1", "1.2.3.4", 5)
    assert parse_node("UDP:h:7").address == "h:7"


def test_nodespec_is_frozen():
    node = parse_node("udp:h")
    with pytest.raises(AttributeError):
        node.port = 1  # type: ignore[misc]
    assert node == NodeSpec(scheme="udp", host="h", port=22222, url="udp:h")


@pytest.mark.parametrize(
    "token", ["udp:localhost:22222|8.8.8.8=2", "udp:h", "udp:h=3", "cunix:/x|::1", "/x=0", "UDP:h:1=1"]
)
def test_format_node_round_trip(token):
    node = parse_node(token)
    assert parse_node(format_node(node)) == node
    assert format_node(parse_node("udp:h=1")) == "udp:h"
    assert format_node(parse_node("udp:h=7")) == "udp:h=7"


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        ("foo:bar",
         "unknown scheme 'foo' in 'foo:bar' (expected unix, cunix, udp, udp6, tcp, tcp6, or a socket path)"),
        ("localhost:22222", "unknown scheme 'localhost'"),
        ("rtp.io:auto", "only meaningful inside OpenSIPS"),
        ("udp:", "host"),
        ("udp::22222", "host is empty"),
        ("udp:h:0", "port '0'"),
        ("udp:h:65536", "port '65536'"),
        ("udp:h:x", "port 'x'"),
        ("udp:h:-1", "port"),
        ("udp:h=", "weight ''"),
        ("udp:h=-1", "weight"),
        ("udp:h=x", "weight 'x'"),
        ("udp:h|", "advertised"),
        ("udp:h|=2", "advertised"),
        ("udp:h|host.example", "advertised address 'host.example'"),
        ("udp:::1:5", "IPv6 address but udp: is IPv4 only"),
        ("udp6:127.0.0.1:5", "IPv4 address but udp6: is IPv6 only"),
        ("udp:a:b:1", "not a valid IPv6"),
        ("udp6:::1", "host ':' is not a valid IPv6 address"),
        ("udp:bad/host:1", "not a host name"),
        ("unix:", "socket path is empty"),
        ("|1.2.3.4", "relay address is empty"),
        ("=2", "relay address is empty"),
        ("udp:h\x00", "control"),
        ("udp:a b", "whitespace"),
        ("", "empty"),
    ],
)
def test_errors_quote_the_spec(token, problem):
    with pytest.raises(InputError) as info:
        parse_node(token)
    assert problem in info.value.message
    if token.strip() and "\x00" not in token and " " not in token:
        assert repr(token) in info.value.message
        assert info.value.hint


def test_sock_line_with_and_without_set():
    set_id, nodes = parse_sock_line("udp:127.0.0.1:22222 udp:127.0.0.1:22223=2")
    assert set_id == 0
    assert [n.url for n in nodes] == ["udp:127.0.0.1:22222", "udp:127.0.0.1:22223"]
    assert [n.weight for n in nodes] == [1, 2]
    assert parse_sock_line("udp:h", default_set=4)[0] == 4
    for text in ("1 == udp:a unix:/b", "1==udp:a unix:/b", "  1 ==\tudp:a\n unix:/b  "):
        set_id, nodes = parse_sock_line(text)
        assert set_id == 1
        assert [n.url for n in nodes] == ["udp:a", "unix:/b"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [("", "empty"), ("   ", "empty"), ("1 ==", "no relay node"), ("x == udp:a", "set id 'x'"),
     ("-1 == udp:a", "set id '-1'"), ("== udp:a", "set id ''"), ("1 == foo:bar", "unknown scheme"),
     ("99999999999 == udp:a", "set id")],
)
def test_sock_line_errors(text, problem):
    with pytest.raises(InputError, match=problem):
        parse_sock_line(text)


@settings(max_examples=500)
@given(st.one_of(
    st.text(),
    st.text(alphabet=st.sampled_from(list("udptcpunix6:/|=[].0123456789:hab \n\x00"))),
    st.builds(lambda s, r: s + ":" + r, st.sampled_from(("udp", "udp6", "tcp", "tcp6", "unix", "cunix", "x")),
              st.text(alphabet=st.sampled_from(list(":.|=0123456789abf[]")))),
))
def test_parse_node_raises_only_input_error(token):
    try:
        node = parse_node(token)
    except InputError:
        return
    assert node.scheme in SCHEMES
    assert parse_node(format_node(node)) == node


@settings(max_examples=200)
@given(st.text())
def test_parse_sock_line_raises_only_input_error(text):
    try:
        parse_sock_line(text)
    except InputError:
        pass


def test_nodes_split_at_c_isspace_only_as_the_module_splits_them():
    # modules/rtpproxy/rtpproxy.c, add_rtpproxy_socks: `while (*p && isspace((int)*p))` and
    # `while (*p && !isspace((int)*p))`: space, \t, \n, \v, \f, \r separate nodes (C locale).
    _, nodes = parse_sock_line("udp:a\nudp:b\x0budp:c\x0cudp:d\rudp:e\tudp:f")
    assert [n.url for n in nodes] == ["udp:a", "udp:b", "udp:c", "udp:d", "udp:e", "udp:f"]
    # A no-break space is no C space: it stays in the word, which is then refused as whitespace
    # (Python's str.split() would have made two nodes of it).
    with pytest.raises(InputError, match="whitespace"):
        parse_sock_line("udp:a\xa0udp:b")
    with pytest.raises(InputError, match="whitespace"):
        parse_table_row("udp:a\u2028udp:b")


def test_bare_words_that_do_not_look_like_socket_paths_are_named():
    # A word without a known scheme is a unix socket path to the module (rtpproxy.c falls through
    # its strncasecmp list with rn_umode CM_UNIX): accepted, but named for a warning.
    nodes = parse_table_row("udp:10.0.0.5:22222 ; DROP -- /run/r.sock ./r.sock unix:x cunix:y rtpproxy.sock DROP|1.2.3.4=2")
    assert doubtful_paths(nodes) == [";", "DROP", "--", "rtpproxy.sock", "DROP"]
    assert doubtful_paths(parse_table_row("udp:h unix:/r.sock /r.sock")) == []


def test_messages_quote_a_long_spec_or_row_bounded():
    row = "x" * 10_000_000
    with pytest.raises(InputError) as info:
        parse_table_row(row + " ==")
    assert len(info.value.message) < 300 and "(10000003 characters)" in info.value.message
    with pytest.raises(InputError) as info:
        parse_table_row(row)
    assert len(info.value.message) < 300 and "is 10000000 bytes long; the limit is 1024" in info.value.message
    with pytest.raises(InputError) as info:
        parse_node("udp:h:" + "9" * 1000)
    assert len(info.value.message) < 400
    with pytest.raises(InputError) as info:
        parse_table_row(b"x" * 100_000)  # type: ignore[arg-type]
    assert len(info.value.message) < 200
