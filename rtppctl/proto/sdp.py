"""SDP bodies: what rtppctl reads from them, and the rewrite that puts a relay in the media path.

This module owns the SDP side of offer and answer (docs/protocol.md §4.4-§4.7): sessions
(one per `v=`), streams and their medianum, the effective connection address of each stream, the
nortpproxy marker, and the module's rewrite. The rule it keeps: a body is taken as the bytes it is.
Parsing a body and serialising it unchanged gives it back byte for byte, and a rewrite changes only
the tokens the module changes (the m= port, the c= and o= address and family, the a=rtcp: value)
and adds at most one marker line; every other byte, line ending and line order stays as it came.
Lines are recognised only at the start of a line, as the module finds them.

How, cheaply: one regex split cuts the body at the lines the module reads (v= o= c= m= a=rtcp:),
giving [text, line, text, line, ..., text] whose join is the body. `parse_sdp` checks the whole
body and reads each of those lines with one match, keeping a small record per session and per m=
line; `rewrite` copies the list, replaces the lines it changes and joins. The `Line`, `Session`
and `Stream` values (with their line indices) are built only when asked for. bench/bench_sdp.py
holds parse + rewrite to at least half the speed of a naive split/replace/join.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple, NoReturn

from rtppctl.proto.command import validate_token
from rtppctl.proto.errors import InputError
from rtppctl.proto.limits import DEFAULT_MARKER
from rtppctl.proto.text import shown as _shown

#: Largest body accepted, in bytes. Real SDP is a few kilobytes; this only bounds the work.
MAX_SDP_BYTES = 1_048_576

#: Protos carried over RTP: their numeric formats are payload types (the `c` modifier).
RTP_PROTOS = frozenset({
    "RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF",
    "UDP/TLS/RTP/SAVP", "UDP/TLS/RTP/SAVPF", "DCCP/TLS/RTP/SAVP", "DCCP/TLS/RTP/SAVPF",
})
#: Protos the module proxies without a codec list.
PLAIN_PROTOS = frozenset({"UDP", "UDPTL", "UDP/BFCP"})

# A str body up to this long is within MAX_SDP_BYTES whatever its characters.
_FAST_LIMIT = MAX_SDP_BYTES // 4

#: Proxyable protos (upper case) -> True when carried over RTP.
_PROXYABLE = {**dict.fromkeys(RTP_PROTOS, True), **dict.fromkeys(PLAIN_PROTOS, False)}

# Each line the module reads, with the "\n" before it and the CR of its CRLF. A line at the very
# start of the body has no "\n" before it and stays in the first text piece: only v= can be there.
_LINES_RE = re.compile(r"(\n(?:[vocm]=|a=rtcp:)[^\n]*)")

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
# Written out rather than as (...){3}: sre runs a counted group through its general repeat
# machinery, and the plain sequence makes an o= or c= match about an eighth cheaper.
_IPV4 = rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}"
_IPV4_RE = re.compile(_IPV4)
# The common shapes of a captured o= and c= line, read with one match (group 1: an IPv4 address,
# group 2: what may be an IPv6 one). Anything else (tabs, lower case, a multicast /ttl suffix, or
# an error to explain) goes through _address_slowly.
_ADDRESS = rf"IN (?:IP4 ({_IPV4})|IP6 ([0-9A-Fa-f:.]+))[ \t]*\r?\Z"
_ORIGIN_RE = re.compile(rf"\no=[^ \t\r]+ [^ \t\r]+ [^ \t\r]+ {_ADDRESS}")
_CONNECTION_RE = re.compile(rf"\nc={_ADDRESS}")
# m=<media> <port>[/<count>] <proto>[ <format>...] with the port in 0..65535 (leading zeros let
# through); a line that does not match is read again loosely to say what is wrong.
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[0-5]?[0-9]{1,4})"
# Groups: the port token, its number, the proto; the media name and formats are read when asked for.
# The /count is "(?:...|)", the same as "(?:...)?" but a plain branch: sre runs an optional group
# through its general repeat machinery, and the branch makes the match about an eighth cheaper.
_MEDIA_RE = re.compile(rf"\nm=[^ \t\r]+[ \t]+(({_PORT})(?:/[0-9]{{1,5}}|))[ \t]+([^ \t\r]+)")
_PORT_TOKEN_RE = re.compile(rf"{_PORT}(?:/[0-9]{{1,5}})?")
_TOKEN_RE = re.compile(r"[^ \t]+")
_IPV4_MULTICAST_SUFFIX_RE = re.compile(r"[0-9]{1,3}(?:/[0-9]{1,5})?")
_IPV6_MULTICAST_SUFFIX_RE = re.compile(r"[0-9]{1,5}")
# Control characters refused in a body: C0 except tab, CR and LF; DEL; C1; lone surrogates.
_BINARY_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# Every ASCII byte but the refused controls.
_ALLOWED_ASCII = bytes([9, 10, 13, *range(0x20, 0x7F)])
# A bytes.translate table that turns each refused control into 0xFF and keeps every other byte: an
# ASCII body holds no refused byte when translating gives it back unchanged. One C call, several
# times faster than a regex search over the body, and cheaper than deleting the allowed bytes:
# translate without deletions builds no deletion table and runs its simplest loop.
_MARK_REFUSED = bytes(b if b in _ALLOWED_ASCII or b > 0x7F else 0xFF for b in range(256))
# parse_sdp runs these on every body; bound once, they skip two lookups a call.
_new_sdp = _new_record = object.__new__  # an Sdp or a record below, without an __init__ frame
_split_lines = _LINES_RE.split
_match_media = _MEDIA_RE.match
_match_connection = _CONNECTION_RE.match
_match_origin = _ORIGIN_RE.match


# --------------------------------------------------------------------------------------------
# The model


class Line(NamedTuple):
    """One line of the body."""

    #: The line without its ending.
    text: str
    #: "\r\n", "\n", or "" for a last line without one.
    ending: str


# Stream and Session are NamedTuples rather than frozen dataclasses: just as immutable, and built
# several times faster when a caller walks the streams of many bodies.


class Stream(NamedTuple):
    """One m= line and its media section."""

    #: The `;N` suffix of the stream's tags: 1, 2, ... over every proxyable m= line of the whole
    #: body (all sessions, port-0 lines included); None for an m= line the module skips.
    medianum: int | None
    #: "audio", "video", ... as written.
    media: str
    #: The port token verbatim, e.g. "49170", "0" or "49170/2".
    port: str
    #: The proto as written, e.g. "RTP/AVP".
    proto: str
    #: The format tokens after the proto, as written.
    formats: tuple[str, ...]
    #: The module proxies this proto (RTP protos, udp, udptl, udp/bfcp; any case).
    proxyable: bool
    #: A command is sent for this stream: proxyable and the port number is not 0.
    proxied: bool
    #: Index in `Sdp.lines` of the m= line.
    line_index: int
    #: Index of the media-level c= (the first c= in the media section), or None.
    media_connection_index: int | None
    #: Index of the first `a=rtcp:` in the media section, or None.
    rtcp_index: int | None
    #: The effective connection address (media c= if present, else session c=), without any
    #: multicast /ttl suffix; "" for a skipped m= line without any c=.
    address: str
    #: "IP4" or "IP6" for `address`; "" when `address` is "".
    family: str
    #: The address is null: 0.0.0.0, or for IPv6 only zeros and colons.
    on_hold: bool
    #: Index in `Sdp.sessions` of the session holding this stream.
    session_index: int

    @property
    def codecs(self) -> tuple[int, ...]:
        """Payload types for an RTP proto: the format tokens that are digit runs; () otherwise."""
        if not _PROXYABLE.get(self.proto.upper()):
            return ()
        # Runs longer than 9 digits are no payload type, and int() refuses runs over 4300 digits.
        return tuple(int(f) for f in self.formats if f.isascii() and f.isdigit() and len(f) <= 9)


class Session(NamedTuple):
    """One `v=` session of the body."""

    #: Index in `Sdp.lines` of the v= line.
    index: int
    #: Index of the o= line (the first in the session, wherever it is, as the module looks).
    origin_index: int
    #: The o= address.
    origin_address: str
    #: "IP4" or "IP6", from the o= line.
    origin_family: str
    #: Index of the session-level c= (the first c= between o= and the first m=), or None.
    connection_index: int | None
    #: Its address without any multicast /ttl suffix, or None.
    connection_address: str | None
    #: "IP4" or "IP6" for `connection_address`, or None.
    connection_family: str | None
    #: The session's m= lines, in order.
    streams: tuple[Stream, ...]


# What parse_sdp keeps, besides the split body `parts` (captured lines at odd indices). A "part"
# is an index in `parts`, -1 for a line that is not there; rewrite works from parts alone, and
# Sdp turns them into line indices only when the model is asked for.
#
# Slotted dataclasses rather than NamedTuples: CPython 3.11 specialises reading a slot but not a
# NamedTuple field, and rewrite reads several per stream. They are mutable because parse_sdp fills
# a session or stream record in as it meets the lines of the section; once it returns, nothing
# changes them. The records every body needs (the first session, each stream, the common c= place)
# parse_sdp makes with _new_record and sets every field itself: a call to __init__ costs a frame,
# more than the rest of making one, and a slot left unset would raise when read.


@dataclass(slots=True, eq=False)
class _Place:
    """Where a captured c= or o= line has its family and address: the values and their offsets."""

    #: "IP4" or "IP6".
    family: str
    #: Without any multicast /ttl suffix, which the address token (address_start..address_end) holds.
    address: str
    #: Offsets within the captured line (which starts with its "\n"), end exclusive.
    family_start: int
    family_end: int
    address_start: int
    address_end: int


@dataclass(slots=True, eq=False)
class _SessionRecord:
    """One `v=` session as parse_sdp found it."""

    #: The v= line's part; 0 when the v= is in the first text piece.
    v_part: int
    #: Index in `Sdp._streams` of the session's first m= line (the count of m= lines before it).
    first_stream: int
    #: The first o= of the session, wherever it is.
    o_part: int = -1
    #: The session c= (the first c= between o= and the first m=) and where its address is.
    c_part: int = -1
    c_place: _Place | None = None


@dataclass(slots=True, eq=False)
class _StreamRecord:
    """One m= line and what parse_sdp found in its media section."""

    #: The m= line's part.
    m_part: int
    #: The _MEDIA_RE match of the m= line: its port token, port number and proto.
    m_match: re.Match[str]
    #: Index in `Sdp._sessions` of the session holding the stream.
    session_number: int
    #: The stream's medianum when the module proxies its proto; None for an m= line it skips.
    medianum: int | None = None
    #: A command is sent for the stream: its proto is proxied and its port number is not 0.
    proxied: bool = False
    #: The media c= (the first c= in the section) and where its address is.
    c_part: int = -1
    c_place: _Place | None = None
    #: The first `a=rtcp:` in the section.
    rtcp_part: int = -1


class Sdp:
    """A parsed body, made by parse_sdp; read-only. `str(sdp)` gives the body back exactly.

    Not a frozen dataclass: one is built on every parse and its parts only on first use, which a
    slotted class with read-only properties does cheaply. parse_sdp sets `_text`, `_parts`,
    `_sessions` (a _SessionRecord list) and `_streams` (a _StreamRecord list); `_lines` and
    `_model` stay unset until first asked for.
    """

    __slots__ = ("_lines", "_model", "_parts", "_sessions", "_streams", "_text")

    @property
    def text(self) -> str:
        """The body as text (decoded from UTF-8 when bytes were given)."""
        return self._text

    @property
    def lines(self) -> tuple[Line, ...]:
        """Every line with its own ending. A line ends only at LF; with a CR before it, at CRLF."""
        try:
            return self._lines
        except AttributeError:
            pass
        pieces = self._text.split("\n")
        lines = [Line(p[:-1], "\r\n") if p.endswith("\r") else Line(p, "\n") for p in pieces[:-1]]
        if pieces[-1]:
            lines.append(Line(pieces[-1], ""))
        self._lines: tuple[Line, ...] = tuple(lines)
        return self._lines

    @property
    def sessions(self) -> tuple[Session, ...]:
        """One per `v=`, in order."""
        return self._build_model()[0]

    @property
    def streams(self) -> tuple[Stream, ...]:
        """Every m= line of the body, in order."""
        return self._build_model()[1]

    def _build_model(self) -> tuple[tuple[Session, ...], tuple[Stream, ...]]:
        try:
            return self._model
        except AttributeError:
            pass
        parts = self._parts
        # Line index of each captured line: the "\n"s before it, its own leading one included.
        line_of = [0] * len(parts)
        newlines = 0
        for number, part in enumerate(parts):
            if number % 2:
                line_of[number] = newlines + 1
            newlines += part.count("\n")
        text = self._text
        line_of[0] = text.count("\n", 0, len(text) - len(text.lstrip()))  # a v= in the first piece

        def optional(part: int) -> int | None:
            return None if part < 0 else line_of[part]

        # Stream and Session take their fields in order: a NamedTuple given keywords is built at
        # less than half the speed.
        streams: list[Stream] = []
        for record in self._streams:
            place = record.c_place or self._sessions[record.session_number].c_place
            address, family = (place.address, place.family) if place else ("", "")
            media_line = parts[record.m_part]
            match = record.m_match
            port, proto = match.group(1, 3)
            formats = tuple(media_line[match.end():].split())
            streams.append(Stream(
                record.medianum, _media_name(media_line), port, proto, formats, record.medianum is not None,
                record.proxied, line_of[record.m_part], optional(record.c_part), optional(record.rtcp_part),
                address, family, _is_null(address), record.session_number,
            ))
        sessions = []
        for number, session in enumerate(self._sessions):
            following = (self._sessions[number + 1].first_stream if number + 1 < len(self._sessions)
                         else len(streams))
            origin = _address(parts[session.o_part], "o")
            connection = session.c_place
            sessions.append(Session(
                line_of[session.v_part], line_of[session.o_part], origin.address, origin.family,
                optional(session.c_part), connection.address if connection else None,
                connection.family if connection else None, tuple(streams[session.first_stream:following]),
            ))
        self._model: tuple[tuple[Session, ...], tuple[Stream, ...]] = (tuple(sessions), tuple(streams))
        return self._model

    def marker_line(self, marker: str | None) -> int | None:
        """Index of a line starting with `marker` (trailing CR/LF of the marker ignored), or None.

        An empty marker never matches.
        """
        known = _marker(marker)
        if known is None:
            return None
        if self._text.startswith(known[0]):
            return 0
        found = self._text.find(known[1])
        return None if found < 0 else self._text.count("\n", 0, found + 1)

    def __str__(self) -> str:
        return serialise(self)

    def __repr__(self) -> str:
        return (f"<Sdp: {len(self._text)} characters, {len(self._sessions)} session(s), "
                f"{len(self._streams)} m= line(s)>")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sdp) and other._text == self._text

    def __hash__(self) -> int:
        return hash(self._text)


def serialise(sdp: Sdp) -> str:
    """The body from its lines; an unchanged `Sdp` gives back its input exactly."""
    return "".join([line.text + line.ending for line in sdp.lines])


# --------------------------------------------------------------------------------------------
# Parsing


class _LineError(Exception):
    """A bad line; parse_sdp adds the source name and the line number."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def _is_null(address: str) -> bool:
    return address == "0.0.0.0" or (":" in address and not address.strip("0:"))


def _checked_text(body: str | bytes, source: str) -> str:
    """The body as text: not empty, within the size limit, UTF-8, no binary data."""
    if isinstance(body, str):
        text = body
        if not text:
            raise InputError(f"{source} is empty")
        # Four UTF-8 bytes per character at most: only a long text needs encoding to be measured.
        if len(text) > MAX_SDP_BYTES // 4:
            size = len(text.encode("utf-8", "surrogatepass"))
            if size > MAX_SDP_BYTES:
                raise InputError(f"{source} is {size} bytes; the limit is {MAX_SDP_BYTES}")
    elif isinstance(body, (bytes, bytearray, memoryview)):
        raw = bytes(body)
        if not raw:
            raise InputError(f"{source} is empty")
        if len(raw) > MAX_SDP_BYTES:
            raise InputError(f"{source} is {len(raw)} bytes; the limit is {MAX_SDP_BYTES}")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{source} contains binary data at byte {exc.start} (not valid UTF-8)") from None
    else:
        raise InputError(f"{source} must be text or bytes, not {type(body).__name__}")
    # Tab, CR and LF are the only control characters let through. A CR not followed by LF stays
    # part of its line (lines end only at LF); the module would start a line after it, but no SDP
    # writer puts one there.
    if text.isascii() and (raw := text.encode("ascii")).translate(_MARK_REFUSED) == raw:
        return text
    found = _BINARY_RE.search(text)
    if found:
        line = text.count("\n", 0, found.start()) + 1
        raise InputError(
            f"{source} contains binary data at line {line} (control character {found.group()!r})"
        )
    return text


def _is_address(address: str, family: str) -> bool:
    if family == "IP4" and _IPV4_RE.fullmatch(address):
        return True
    if "%" in address:
        return False  # a zone id is no SDP address (and RTPProxy takes plain numeric ones)
    import ipaddress  # only for IPv6 and what the IPv4 pattern did not settle

    try:
        (ipaddress.IPv4Address if family == "IP4" else ipaddress.IPv6Address)(address)
    except ValueError:
        return False
    return True


def _address(line: str, kind: str) -> _Place:
    """Where a captured o= or c= line has its family and address, and what they are."""
    match = (_ORIGIN_RE if kind == "o" else _CONNECTION_RE).match(line)
    if match is not None:
        group = match.lastindex
        start, end = match.span(group)
        address = line[start:end]
        if group == 1 or _is_address(address, "IP6"):
            family = "IP4" if group == 1 else "IP6"
            return _Place(family, address, start - 4, start - 1, start, end)
    return _address_slowly(line, kind)


def _address_slowly(line: str, kind: str) -> _Place:
    end = len(line) - 1 if line.endswith("\r") else len(line)
    tokens = list(_TOKEN_RE.finditer(line, 3, end))
    if kind == "o":
        shape = "o=<user> <session id> <version> IN IP4|IP6 <address>"
        tokens = tokens[3:] if len(tokens) >= 5 else []
    else:
        shape = "c=IN IP4|IP6 <address>"
    if (len(tokens) < 2 or tokens[0].group().upper() != "IN"
            or tokens[1].group().upper() not in ("IP4", "IP6")):
        raise _LineError(f"{kind}= line is not {shape}: {_shown(line[1:end])}")
    if len(tokens) < 3:
        raise _LineError(f"{kind}= line has no address")
    family = tokens[1].group().upper()
    token = tokens[2].group()
    address, slash, suffix = token.partition("/")
    if not _is_address(address, family):
        raise _LineError(f"{kind}= line has a bad {family} address {_shown(token)}")
    if slash:
        # RFC 4566: c=IN IP4 <multicast>/<ttl>[/<count>], c=IN IP6 <multicast>[/<count>].
        if family == "IP4":
            multicast = 224 <= int(address.split(".", 1)[0]) <= 239
            suffix_ok = _IPV4_MULTICAST_SUFFIX_RE.fullmatch(suffix)
        else:
            multicast = address[:2].lower() == "ff"
            suffix_ok = _IPV6_MULTICAST_SUFFIX_RE.fullmatch(suffix)
        if kind != "c" or not multicast or not suffix_ok:
            raise _LineError(f"{kind}= line has a bad address {_shown(token)}",
                             "a /ttl suffix belongs only after a multicast address on a c= line")
    return _Place(family, address, *tokens[1].span(), *tokens[2].span())


def _media_name(line: str) -> str:
    """The media token of a captured m= line ("audio")."""
    return _TOKEN_RE.match(line, 3).group()  # type: ignore[union-attr]


def _refuse_media_line(line: str) -> NoReturn:
    """Say why a captured m= line did not match _MEDIA_RE: too few fields, a bad port, or else."""
    text = line[1:].rstrip("\r")
    fields = _TOKEN_RE.findall(text, 2)
    if len(fields) < 3:
        raise _LineError(f"m= line needs at least media, port and proto: {_shown(text)}")
    if not _PORT_TOKEN_RE.fullmatch(fields[1]):
        raise _LineError(f"m= line has a bad port {_shown(fields[1])}")
    raise _LineError(f"m= line is not m=<media> <port> <proto> [<format>...]: {_shown(text)}")


def _first_content(text: str, source: str) -> int:
    """Offset of the v= that starts the body after leading whitespace (the module trims it)."""
    start = len(text) - len(text.lstrip())
    if start == len(text):
        raise InputError(f"{source} is empty (only whitespace)")
    if not text.startswith("v=", start):
        end = text.find("\n", start)
        first = text[start:end if end >= 0 else len(text)].rstrip("\r")
        line = text.count("\n", 0, start) + 1
        raise InputError(f"{source}: line {line}: the body does not start with v= ({_shown(first)})")
    return start


def _line_number(parts: list[str], part: int) -> int:
    """1-based line number of a captured line (or of the v= in the first text piece)."""
    if part == 0:
        text = parts[0]
        return text.count("\n", 0, len(text) - len(text.lstrip())) + 1
    return sum(piece.count("\n") for piece in parts[:part]) + 2


#: Bodies read lately, by their text: an Sdp is read-only, so one read serves every later
#: request with the same body (a batch of many calls often carries a few SDPs), and the plans
#: keyed on it (`proto.offer`) are found again. Small and bounded: cleared when full.
_READ: dict[str, Sdp] = {}
_READ_LIMIT = 64


def parse_sdp(body: str | bytes, *, source: str = "SDP") -> Sdp:
    """Read a body (text or UTF-8 bytes). Raises InputError, and nothing else, on a bad body.

    `source` names the body in error messages, e.g. the file name.
    """
    if type(body) is str:
        known = _READ.get(body)
        if known is not None:
            return known
        if len(_READ) >= _READ_LIMIT:
            _READ.clear()
        sdp = _READ[body] = _parse(body, source)
        return sdp
    return _parse(body, source)


def _parse(body: str | bytes, source: str) -> Sdp:
    if (type(body) is str and len(body) <= _FAST_LIMIT and body.startswith("v=") and body.isascii()
            and (raw := body.encode()).translate(_MARK_REFUSED) == raw):
        text, start = body, 0  # the common case, checked inline: no call is cheaper than one
    else:
        text = _checked_text(body, source)
        start = 0 if text.startswith("v=") else _first_content(text, source)
    parts = _split_lines(text)
    sessions: list[_SessionRecord] = []
    streams: list[_StreamRecord] = []
    medianum = session_number = 0
    stream: _StreamRecord | None = None
    # Proxyable streams of a session without c=: each needs a media c=, checked at the session's end.
    unconnected: list[_StreamRecord] = []
    # The first v= is in the first text piece unless a LF comes right before it.
    session = _new_record(_SessionRecord)
    session.v_part, session.first_stream = (1 if start and text[start - 1] == "\n" else 0), 0
    session.o_part = session.c_part = -1
    session.c_place = None
    part = 0
    try:
        for part in range(1, len(parts), 2):
            line = parts[part]
            kind = line[1]
            if kind == "a":  # a=rtcp:
                if stream is not None and stream.rtcp_part < 0:
                    stream.rtcp_part = part
            elif kind == "c":
                # The first c= of a media section is the media c=; the session c= is the first
                # one between o= and the first m=. Any other c= is not read, as in the module.
                if stream is not None:
                    if stream.c_part >= 0:
                        continue
                elif session.c_part >= 0 or session.o_part < 0:
                    continue
                match = _match_connection(line)
                if match is not None and match.lastindex == 1:
                    address = match[1]  # "\nc=IN IP4 <address>": the offsets are known
                    place = _new_record(_Place)
                    place.family, place.address, place.family_start, place.family_end = "IP4", address, 6, 9
                    place.address_start, place.address_end = 10, 10 + len(address)
                else:
                    place = _address(line, "c")
                if stream is not None:
                    stream.c_part, stream.c_place = part, place
                else:
                    session.c_part, session.c_place = part, place
            elif kind == "o":
                if session.o_part < 0:  # the first o= of the session, wherever it is
                    match = _match_origin(line)
                    if match is None or (match.lastindex == 2 and not _is_address(match[2], "IP6")):
                        _address_slowly(line, "o")  # explains what is wrong, or reads an odd shape
                    session.o_part = part
            elif kind == "v":
                if part != session.v_part:  # the next session (not the first v=, when a LF is before it)
                    _end_session(session, len(streams), unconnected, parts, source)
                    sessions.append(session)
                    stream = None
                    unconnected = []
                    session_number += 1
                    session = _SessionRecord(part, len(streams))  # v_part, first_stream
            else:
                # m=. It comes last, untested: CPython 3.11 leaves a test unspecialised when its
                # jump is as long as this branch, and every line after it would pay for that.
                match = _match_media(line)
                if match is None:
                    _refuse_media_line(line)
                stream = _new_record(_StreamRecord)
                stream.m_part, stream.m_match, stream.session_number = part, match, session_number
                stream.c_part = stream.rtcp_part = -1
                stream.c_place = None
                proto = match[3]
                if proto in _PROXYABLE or proto.upper() in _PROXYABLE:
                    medianum += 1
                    number = match[2]
                    stream.medianum = medianum
                    stream.proxied = number[0] != "0" or number.strip("0") != ""  # leading zeros are allowed
                    if session.c_part < 0:
                        unconnected.append(stream)
                else:
                    stream.medianum, stream.proxied = None, False
                streams.append(stream)
    except _LineError as error:
        raise InputError(f"{source}: line {_line_number(parts, part)}: {error}", error.hint) from None
    if session.o_part < 0 or len(streams) == session.first_stream or unconnected:
        _end_session(session, len(streams), unconnected, parts, source)
    sessions.append(session)
    sdp = _new_sdp(Sdp)  # built without a call to __init__: one fewer frame on every parse
    sdp._text, sdp._parts, sdp._sessions, sdp._streams = text, parts, sessions, streams
    return sdp


def _end_session(session: _SessionRecord, streams: int, unconnected: list[_StreamRecord],
                 parts: list[str], source: str) -> None:
    """Refuse a session without o= or m=, or with a proxied stream that has no c= anywhere.

    `streams` is how many m= lines the body has up to the session's end.
    """
    if session.o_part < 0:
        raise InputError(f"{source}: line {_line_number(parts, session.v_part)}: the session has no o= line")
    if streams == session.first_stream:
        raise InputError(f"{source}: line {_line_number(parts, session.v_part)}: the session has no m= line")
    for stream in unconnected:
        if stream.c_part < 0:
            raise InputError(
                f"{source}: line {_line_number(parts, stream.m_part)}: m={_media_name(parts[stream.m_part])} "
                "has no c= line (neither in the media section nor at session level)"
            )


# --------------------------------------------------------------------------------------------
# Rewriting


@dataclass(frozen=True)
class MediaTarget:
    """What one proxied stream is rewritten to: the relay's side of it."""

    #: The relay's port for this stream (from the U/L reply), 1..65535.
    port: int
    #: The address to write (see choose_media_address): an IPv4 or IPv6 literal.
    address: str
    #: "IP4" or "IP6": always the family of the relay's reply (docs/protocol.md §4.5), even when the
    #: address came from an override of the other family, as the module does.
    family: str

    def __post_init__(self) -> None:
        if not isinstance(self.port, int) or isinstance(self.port, bool) or not 1 <= self.port <= 65535:
            raise InputError(f"relay port {self.port!r} is not 1..65535")
        validate_token(self.address, "media address")
        if not (_is_address(self.address, "IP4") or _is_address(self.address, "IP6")):
            raise InputError(f"media address {self.address!r} is not a numeric IPv4 or IPv6 address")
        if self.family not in ("IP4", "IP6"):
            raise InputError(f"address family {self.family!r} must be IP4 or IP6")


def choose_media_address(stream: Stream, *, reply_address: str | None, reply_ipv6: bool,
                         ip_override: str | None = None, advertised: str | None = None,
                         local_address: str | None = None) -> tuple[str, str]:
    """(address, family) to write for a proxied stream, by the precedence of docs/protocol.md §4.5.

    The family always comes from the reply. An on-hold stream keeps a null address; otherwise the
    first given of: the function's ip_address (`ip_override`), the node's advertised address, the
    reply's address, the local address the SIP message arrived on.
    """
    family = "IP6" if reply_ipv6 else "IP4"
    if stream.on_hold:
        return ("::" if reply_ipv6 else "0.0.0.0"), family
    for address in (ip_override, advertised, reply_address, local_address):
        if address:
            return address, family
    raise InputError("the relay replied without an address; give --ip",
                     "a relay started without -l answers with the port only")


# marker as given -> (marker as searched, "\n" + it, it + CRLF, it + LF), or None when empty.
# Markers are config values, so this stays tiny; the bound keeps an odd caller from growing it.
_MARKERS: dict[str, tuple[str, str, str, str] | None] = {}


def _marker(marker: str | None) -> tuple[str, str, str, str] | None:
    """The marker with trailing CR/LF dropped (as the module does), its search needle and lines."""
    if marker is None:
        return None
    known = _MARKERS.get(marker, False)
    if known is not False:
        return known  # type: ignore[return-value]
    if not isinstance(marker, str):
        raise InputError(f"the nortpproxy marker must be text, not {marker!r}")
    text = marker.rstrip("\r\n")
    if "\n" in text or "\r" in text or _BINARY_RE.search(text):
        raise InputError(f"the nortpproxy marker {text!r} must be one line without control characters")
    result = (text, "\n" + text, text + "\r\n", text + "\n") if text else None
    if len(_MARKERS) < 16:
        _MARKERS[marker] = result
    return result


def _replace_address(out: list[str], parts: list[str], part: int, place: _Place, family: str,
                     address: str) -> None:
    """Put `address` (and `family` when it changes) into a c=/o= line, unless nothing changes.

    Nothing changes when address and family are the same, or when a null (on-hold) address stays
    null in the same family: the module leaves such a line as it is (docs/protocol.md §4.5). The whole
    address token is replaced, a multicast /ttl suffix included: the relay's address is unicast.
    """
    line = parts[part]
    if family != place.family:
        out[part] = (line[:place.family_start] + family + line[place.family_end:place.address_start]
                     + address + line[place.address_end:])
    elif address != place.address and not (_is_null(address) and _is_null(place.address)):
        out[part] = line[:place.address_start] + address + line[place.address_end:]


def rewrite(sdp: Sdp, targets: Mapping[int, MediaTarget], *, rewrite_origin: bool = False,
            rewrite_session_connection: bool = False, marker: str | None = DEFAULT_MARKER) -> str:
    """The body with every targeted stream pointed at the relay; returns the new text.

    `targets` maps medianum -> MediaTarget for proxied streams; streams without a target are left
    alone, and a target for a medianum that is not a proxied stream is an InputError.

    This is the module's direct-message (lump) path, which rtppctl follows everywhere: the session
    c= is replaced once per session when a targeted stream has no media c= (and, with
    `rewrite_session_connection`, also when it has one). The module's body_var path differs: it
    replaces the session c= only with flag c and only without a media c=, so there an SDP with
    only a session c= keeps its old address (docs/protocol.md §4.5, §15.10). rtppctl does not copy that.

    Per targeted stream: the m= port token becomes the relay port (a `/count` suffix goes too: the
    relay gave one port, not a run of them); the media c= address, and its family when that
    changes; `a=rtcp:` becomes `<port+1> IN IP4|IP6 <address>` whatever it was; the o= line, with
    `rewrite_origin`, once per session at its first targeted stream.

    The marker (trailing CR/LF dropped; None or "" for none) is added unless a line already starts
    with it: `marker` + the body's line ending (that of its last terminated line) goes after the
    last line ending, so before a final line that has none, as the module inserts it after the
    last CRLF. The module's other odd case, a body with no line ending at all (appended at the
    end), cannot occur: such a body does not parse, since o= and m= must start lines.
    """
    parts = sdp._parts
    sessions = sdp._sessions
    out = parts[:]
    # Streams come in session order, so "once per session" is "not yet for this session number".
    connection_session = origin_session = -1
    used = 0
    for stream in sdp._streams:
        if not stream.proxied:
            continue
        medianum = stream.medianum
        target = targets.get(medianum)
        if target is None:
            continue
        used += 1
        try:
            port, address, family = target.port, target.address, target.family
        except AttributeError:
            raise InputError(
                f"the target of medianum {medianum} must be a MediaTarget, not {target!r}"
            ) from None
        m_part = stream.m_part
        line = parts[m_part]
        start, end = stream.m_match.span(1)
        out[m_part] = f"{line[:start]}{port}{line[end:]}"
        session_number = stream.session_number
        # The c= to point at the relay: the media c=, else the session c= (None for neither).
        c_part, c_place = stream.c_part, stream.c_place
        if c_place is None:
            if session_number != connection_session:  # the session c= is replaced once per session
                session = sessions[session_number]
                c_part, c_place = session.c_part, session.c_place
            connection_session = session_number
        elif rewrite_session_connection and session_number != connection_session:
            connection_session = session_number
            session = sessions[session_number]
            if session.c_place is not None:
                _replace_address(out, parts, session.c_part, session.c_place, family, address)
        if c_place is not None:
            # Inline for the common case: same family, another address.
            if family == c_place.family and address != c_place.address and not _is_null(address):
                line = parts[c_part]
                out[c_part] = f"{line[:c_place.address_start]}{address}{line[c_place.address_end:]}"
            else:
                _replace_address(out, parts, c_part, c_place, family, address)
        if rewrite_origin and session_number != origin_session:
            origin_session = session_number
            o_part = sessions[session_number].o_part
            _replace_address(out, parts, o_part, _address(parts[o_part], "o"), family, address)
        rtcp_part = stream.rtcp_part
        if rtcp_part >= 0:
            cr = "\r" if parts[rtcp_part][-1] == "\r" else ""
            out[rtcp_part] = f"\na=rtcp:{port + 1} IN {family} {address}{cr}"
    if used != len(targets):
        _refuse_unknown_targets(sdp, targets)

    if marker is not None:
        known = _MARKERS.get(marker, False)
        if known is False:
            known = _marker(marker)
        text = sdp._text
        if known is not None and known[1] not in text and not text.startswith(known[0]):
            if text[-1] == "\n":
                out.append(known[2] if text[-2] == "\r" else known[3])
            else:
                _insert_before_last_line(out, text, known[0])
    return "".join(out)


def _insert_before_last_line(out: list[str], text: str, marker: str) -> None:
    """Put the marker line after the body's last LF, which is inside the last piece holding one."""
    last = text.rfind("\n")
    line = marker + ("\r\n" if text[last - 1] == "\r" else "\n")
    for index in range(len(out) - 1, -1, -1):
        piece = out[index]
        if "\n" in piece:
            # A captured line starts with its LF, and a changed one still does; a text piece's
            # last LF is the body's last one, since nothing after it holds any.
            cut = piece.rfind("\n") + 1
            out[index] = piece[:cut] + line + piece[cut:]
            return


def _refuse_unknown_targets(sdp: Sdp, targets: Mapping[int, MediaTarget]) -> None:
    proxied = [stream.medianum for stream in sdp._streams if stream.proxied]
    for medianum in targets:
        if medianum not in proxied:
            raise InputError(
                f"no proxied stream has medianum {medianum!r}",
                f"the proxied streams are {proxied}" if proxied else "the body has no proxied stream",
            )


def ret_value(targets: Mapping[int, MediaTarget], sdp: Sdp) -> str | None:
    """The module's ret_var: "<address>:<port>" of the last proxied stream with a target, or None.

    IPv6 is written plainly, without brackets ("2001:db8::1:35000"), as the module writes it.
    """
    last = None
    for stream in sdp._streams:
        if stream.proxied and stream.medianum in targets:
            last = targets[stream.medianum]
    return None if last is None else f"{last.address}:{last.port}"


__all__ = [
    "DEFAULT_MARKER", "MAX_SDP_BYTES", "PLAIN_PROTOS", "RTP_PROTOS", "Line", "MediaTarget", "Sdp",
    "Session", "Stream", "choose_media_address", "parse_sdp", "ret_value", "rewrite", "serialise",
]
