"""Node specs: the `rtpproxy_sock` syntax that names a relay and the set it belongs to.

This module owns the text form of a relay node (docs/protocol.md §1.1):
`[N ==] [scheme:]address[|advertised][=weight] ...`. It reads that text exactly as the OpenSIPS
module does (modules/rtpproxy/rtpproxy.c, add_rtpproxy_socks: nodes split at C `isspace`
characters, first `=` starts the weight, `|` searched backwards before it; host and port split at
the last `:`, port 22222 by default, no brackets around IPv6) and refuses, with an `InputError` that
quotes the spec (bounded), anything the module would silently misread or that cannot reach a relay.
A word written without a scheme is a unix socket path, as in the module; `doubtful_paths` names
the ones that do not look like one (`;`, `DROP`, `--`), for a warning. Nothing here resolves names
or opens sockets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from rtppctl.proto import limits
from rtppctl.proto.command import validate_token
from rtppctl.proto.errors import InputError
from rtppctl.proto.text import ip_literal, shown, shown_any

SCHEMES = ("unix", "cunix", "udp", "udp6", "tcp", "tcp6")
DEFAULT_PORT = 22222

_NETWORK_SCHEMES = ("udp", "udp6", "tcp", "tcp6")
_MAX_UINT = 2**32 - 1
_EXAMPLES = "e.g. udp:127.0.0.1:22222, udp6:::1:22222, tcp:relay.example.net, unix:/var/run/rtpproxy.sock"
_UINT_RE = re.compile(r"[0-9]{1,10}")
_BRACKETED_RE = re.compile(r"\[([^\[\]]+)\](?::([0-9]*))?")
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9._-]*[A-Za-z0-9_.])?")
#: Longest spec accepted; far beyond any real one, it keeps messages and parsing bounded.
_MAX_SPEC_LENGTH = 1024
#: How much of a spec or a value a message quotes.
_ECHO = 120
#: The module splits nodes at C's isspace() characters (rtpproxy.c, add_rtpproxy_socks), not at
#: Unicode's: a no-break space is part of a word there (and refused here as whitespace in a node).
_C_SPACE = re.compile(r"[ \t\n\v\f\r]+")


@dataclass(frozen=True, kw_only=True)
class NodeSpec:
    """One relay node as written in a `rtpproxy_sock` value."""

    #: Lower-case scheme, one of SCHEMES; "unix" when the spec had none (a bare socket path).
    scheme: str
    #: Host for the udp/tcp family, as written (a name or an IP literal, not resolved); else None.
    host: str | None = None
    #: Port for the udp/tcp family (22222 when the spec had none); else None.
    port: int | None = None
    #: Socket path for unix/cunix; else None.
    path: str | None = None
    #: The `|advertised` IP literal put into SDP instead of the relay's own address, or None.
    advertised: str | None = None
    #: Weight inside the set (`=weight`; 1 when absent).
    weight: int = 1
    #: The node's identity (the module's rn_url): the spec without `|adv` and `=weight`, as written.
    url: str

    @property
    def address(self) -> str:
        """The url without its `scheme:` prefix (the module's rn_address)."""
        head, sep, rest = self.url.partition(":")
        if sep and head.lower() == self.scheme:
            return rest
        return self.url

    @property
    def is_datagram(self) -> bool:
        """udp/udp6: cookies and retransmits."""
        return self.scheme in ("udp", "udp6")

    @property
    def is_oneshot(self) -> bool:
        """unix: a new connection for every command."""
        return self.scheme == "unix"

    @property
    def is_stream(self) -> bool:
        """tcp/tcp6/cunix: one persistent, newline-framed connection."""
        return self.scheme in ("tcp", "tcp6", "cunix")

    @property
    def family(self) -> str:
        """"inet" (udp, tcp), "inet6" (udp6, tcp6) or "unix"."""
        if self.scheme in ("udp", "tcp"):
            return "inet"
        if self.scheme in ("udp6", "tcp6"):
            return "inet6"
        return "unix"


def _fail(token: str, problem: str, hint: str | None = None) -> InputError:
    return InputError(f"node spec {shown(token, _ECHO)}: {problem}", hint or _EXAMPLES)


def _uint(text: str, token: str, what: str, low: int, high: int) -> int:
    if not _UINT_RE.fullmatch(text) or not low <= int(text) <= high:
        raise _fail(token, f"{what} {shown(text, 60)} is not a whole number {low}..{high}")
    return int(text)


def _split_scheme(url: str, token: str) -> tuple[str, str]:
    """(scheme, rest); a spec without a known scheme is a unix socket path."""
    head, sep, rest = url.partition(":")
    lowered = head.lower()
    if sep and lowered in SCHEMES:
        return lowered, rest
    if sep and lowered == "rtp.io":
        raise _fail(
            token, "rtp.io nodes are only meaningful inside OpenSIPS (the relay runs in its process)",
            "give the relay's own control socket instead, e.g. udp:127.0.0.1:22222",
        )
    # The module would take "foo:bar" or "localhost:22222" for a unix socket path and fail
    # much later with "connection refused". A colon before any slash is almost always a typo'd or
    # missing scheme, so we refuse it here (a deliberate, helpful difference from the module).
    if sep and "/" not in head:
        raise _fail(
            token,
            f"unknown scheme {shown(head, 60)} in {shown(url, 60)} "
            "(expected unix, cunix, udp, udp6, tcp, tcp6, or a socket path)",
        )
    return "unix", url


def _host_port(scheme: str, address: str, token: str) -> tuple[str, int]:
    if "[" in address or "]" in address:
        bracketed = _BRACKETED_RE.fullmatch(address)
        if bracketed:
            example = f"{scheme}:{bracketed.group(1)}:{bracketed.group(2) or DEFAULT_PORT}"
        else:
            example = f"{scheme}:::1:{DEFAULT_PORT}"
        raise _fail(
            token,
            "IPv6 addresses are written without brackets (host and port split at the last ':')",
            f"e.g. {example}",
        )
    host, sep, port_text = address.rpartition(":")
    if not sep:
        host, port_text = address, ""
    port = _uint(port_text, token, "port", limits.MIN_PORT, limits.MAX_PORT) if port_text else DEFAULT_PORT
    if not host:
        raise _fail(token, "the host is empty")
    literal = ip_literal(host, allow_zone=True)
    if literal is None:
        if ":" in host:
            raise _fail(token, f"host {shown(host, 60)} is not a valid IPv6 address",
                        f"host and port split at the last ':', so write the port too, e.g. {scheme}:::1:22222")
        if not _HOSTNAME_RE.fullmatch(host):
            raise _fail(token, f"host {shown(host, 60)} is not a host name or IP address")
    if literal is not None and literal.version == 6 and scheme in ("udp", "tcp"):
        raise _fail(token, f"{shown(host, 60)} is an IPv6 address but {scheme}: is IPv4 only",
                    f"use {scheme}6:{host}:{port}")
    if literal is not None and literal.version == 4 and scheme in ("udp6", "tcp6"):
        raise _fail(token, f"{shown(host, 60)} is an IPv4 address but {scheme}: is IPv6 only",
                    f"use {scheme[:-1]}:{host}:{port}")
    return host, port


def parse_node(token: str) -> NodeSpec:
    """One node spec: see `_parse_node`. The same spec is read again and again (a --target on
    every operation of a batch, every call of a load run): a spec read once is handed back as it
    was (a NodeSpec is immutable); a bad one raises every time."""
    if isinstance(token, str):
        return _parse_node_cached(token)
    return _parse_node(token)


@lru_cache(maxsize=1024)
def _parse_node_cached(token: str) -> NodeSpec:
    return _parse_node(token)


def _parse_node(token: str) -> NodeSpec:
    """One node spec: `[scheme:]address[|advertised][=weight]`.

    Host and port split at the last `:`, as the module and RTPProxy do, so `udp6:::1` reads as host
    `:` port 1 and is refused; write `udp6:::1:22222`.
    """
    if not isinstance(token, str):
        raise InputError(f"node spec must be text, not {shown_any(token)}")
    token = token.strip()
    if not token:
        raise InputError("node spec is empty", _EXAMPLES)
    if len(token) > _MAX_SPEC_LENGTH:
        # Before the character checks: a 10 MB database row is refused without reading it through.
        raise InputError(f"node spec {shown(token, _ECHO)} is {len(token.encode('utf-8', 'surrogatepass'))} bytes long; "
                         f"the limit is {_MAX_SPEC_LENGTH}", f"use a node spec of at most {_MAX_SPEC_LENGTH} bytes")
    validate_token(token, "node spec", max_length=_MAX_SPEC_LENGTH)

    head, eq, weight_text = token.partition("=")
    weight = _uint(weight_text, token, "weight", 0, _MAX_UINT) if eq else 1
    url, bar, advertised = head.rpartition("|")
    if not bar:
        url, advertised = head, None
    elif not advertised:
        raise _fail(token, "the advertised address after '|' is empty", "e.g. udp:10.0.0.5:22222|203.0.113.7")
    elif ip_literal(advertised) is None:
        raise _fail(token, f"advertised address {shown(advertised, 60)} is not an IPv4 or IPv6 address",
                    "e.g. udp:10.0.0.5:22222|203.0.113.7")
    if not url:
        raise _fail(token, "the relay address is empty")

    scheme, rest = _split_scheme(url, token)
    if scheme in _NETWORK_SCHEMES:
        if not rest:
            raise _fail(token, f"the host after '{scheme}:' is empty")
        host, port = _host_port(scheme, rest, token)
        return NodeSpec(scheme=scheme, host=host, port=port, advertised=advertised, weight=weight, url=url)
    if not rest:
        raise _fail(token, "the socket path is empty", "e.g. unix:/var/run/rtpproxy.sock")
    return NodeSpec(scheme=scheme, path=rest, advertised=advertised, weight=weight, url=url)


def parse_sock_line(text: str, default_set: int = 0) -> tuple[int, list[NodeSpec]]:
    """One `rtpproxy_sock` value: `[N ==] node [node ...]` -> (set id, nodes)."""
    if not isinstance(text, str):
        raise InputError(f"rtpproxy_sock value must be text, not {shown_any(text)}")
    set_text, sep, nodes_text = text.partition("==")
    if sep:
        set_text = set_text.strip(" \t\n\v\f\r")  # C isspace, as rtpproxy_add_rtpproxy_set trims
        if not _UINT_RE.fullmatch(set_text) or int(set_text) > _MAX_UINT:
            raise InputError(
                f"set id {shown(set_text)} in {shown(text.strip(), _ECHO)} is not a whole number",
                "write the set as '1 == udp:127.0.0.1:22222'",
            )
        set_id = int(set_text)
    else:
        set_id, nodes_text = default_set, text
    tokens = _words(nodes_text)
    if not tokens:
        raise InputError(
            f"no relay node in {shown(text.strip(), _ECHO)}" if text.strip() else "empty rtpproxy_sock value",
            "e.g. '1 == udp:127.0.0.1:22222 udp:127.0.0.1:22223=2'",
        )
    return set_id, [parse_node(token) for token in tokens]


def parse_table_row(text: str) -> list[NodeSpec]:
    """The socket column of one `rtpproxy_sockets` row (§10): node specs separated by
    whitespace, with `|advertised` and `=weight`, but no `N ==` prefix (the set is a column)."""
    if not isinstance(text, str):
        raise InputError(f"the socket column must be text, not {shown_any(text)}")
    if "==" in text:
        raise InputError(
            f"{shown(text.strip(), _ECHO)} starts with a set prefix 'N ==', which the table does not take",
            "put the set in the set_id column and only the nodes in the socket column",
        )
    tokens = _words(text)
    if not tokens:
        raise InputError("the socket column is empty", "e.g. 'udp:10.0.0.5:22222 udp:10.0.0.6:22222=2'")
    return [parse_node(token) for token in tokens]


def _words(text: str) -> list[str]:
    return [word for word in _C_SPACE.split(text) if word]


def doubtful_paths(nodes: list[NodeSpec]) -> list[str]:
    """The nodes written as a bare word without a `/`: the module takes any word without a known
    scheme for a unix socket in its working directory, so `;`, `DROP` or `--` in a value become
    relays. Such a word is accepted (it is the module's rule) but worth a warning; `unix:NAME` or
    `./NAME` says the socket is meant."""
    return [node.url for node in nodes if node.scheme == "unix" and node.url == node.path and "/" not in node.url]


def format_node(node: NodeSpec) -> str:
    """Back to text: `url[|advertised][=weight]`, the weight left out when it is 1."""
    text = node.url
    if node.advertised is not None:
        text += "|" + node.advertised
    if node.weight != 1:
        text += f"={node.weight}"
    return text
