"""Whole SIP messages pasted from a trace: what identifies them in a dialog, and their SDP body.

This module owns the little of SIP (RFC 3261 §7, §20) that rtppctl needs to rewrite the SDP of a
message an operator pasted from sngrep, tcpdump or an OpenSIPS log: the start line (request or
reply decides U or L and the tag order, docs/protocol.md §4.1 and §4.8; that choice belongs to `ops`),
the Call-ID, the From and To tags, the CSeq method, the address the top Via says the message came
from, and the body framing (Content-Type, Content-Length). Traces are messy, so it takes CRLF or LF
line endings, compact header names, folded lines and bodies cut short. The rule it keeps: a message
is rebuilt byte for byte except the body and the value of Content-Length, so what goes back to the
operator differs from what came in only where rtppctl meant it to; and parsing raises nothing but
InputError, whatever was pasted.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from rtppctl.proto.errors import InputError
from rtppctl.proto.text import ip_literal, shown

__all__ = ["SipMessage", "TraceSummary", "Via", "looks_like_sip", "parse_sip", "summarize", "with_body"]

_T = TypeVar("_T")

#: RFC 3261 `token`: header names, methods, parameter names.
_TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
#: Linear white space inside a line; other Unicode spaces are data, not separators.
_WSP = " \t"

_REQUEST_LINE = re.compile(
    rf"(?P<method>{_TOKEN})[ \t]+[A-Za-z][A-Za-z0-9+.\-]*:[^ \t\r]+[ \t]+(?i:SIP/2\.0)[ \t]*"
)
# A lone CR is not a line end, and no start line holds one: a trace that lost its LFs is not SIP.
_STATUS_LINE = re.compile(r"(?i:SIP/2\.0)[ \t]+(?P<status>[1-6][0-9][0-9])(?:[ \t][^\r]*)?")
_HEADER_NAME = re.compile(rf"(?P<name>{_TOKEN})[ \t]*:")
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_PARAMETER = re.compile(
    rf'[ \t]*;[ \t]*(?P<name>{_TOKEN})(?:[ \t]*=[ \t]*(?P<value>"(?:[^"\\]|\\.)*"|[^ \t;,"]*))?'
)
_VIA = re.compile(
    rf"(?P<protocol>{_TOKEN}[ \t]*/[ \t]*{_TOKEN}[ \t]*/[ \t]*{_TOKEN})[ \t]+(?P<sent_by>[^ \t;,]+)"
)
_CSEQ = re.compile(rf"[0-9]+[ \t]+(?P<method>{_TOKEN})")
_CONTENT_LENGTH = re.compile(r"[0-9]+")
_CONTENT_TYPE = re.compile(rf"(?P<type>{_TOKEN})[ \t]*/[ \t]*(?P<subtype>{_TOKEN})[ \t]*(?:;.*)?")
_PORT = re.compile(r"[0-9]{1,5}")

#: Header names as written (lower-cased, compact forms of RFC 3261 §7.3.3 included) -> the
#: canonical name, for the headers this module reads. Every other header is carried, not read.
_READ_HEADERS = {
    "call-id": "Call-ID", "i": "Call-ID",
    "from": "From", "f": "From",
    "to": "To", "t": "To",
    "via": "Via", "v": "Via",
    "cseq": "CSeq",
    "content-length": "Content-Length", "l": "Content-Length",
    "content-type": "Content-Type", "c": "Content-Type",
}


@dataclass(frozen=True)
class SipMessage:
    """One SIP request or reply as pasted, with what rtppctl reads from it and what rebuilds it."""

    #: True for a request (INVITE, ACK, ...), False for a reply (SIP/2.0 200 OK, ...).
    is_request: bool
    #: The request's method; for a reply, the method in CSeq (None when there is no CSeq).
    method: str | None
    #: The reply's status code; None for a request.
    status: int | None
    #: The Call-ID (a message without one is refused, so never empty).
    call_id: str
    #: The From header's `tag` parameter (not a `;tag=` inside the <URI>); None when absent.
    from_tag: str | None
    #: The To header's `tag` parameter; None when absent (an initial request has none).
    to_tag: str | None
    #: The method named in CSeq; None when there is no CSeq header.
    cseq_method: str | None
    #: The address the message came from as the proxy saw it: the top Via's `received`, else its
    #: sent-by host when that is an IP literal (brackets of IPv6 stripped), else None.
    top_via_source: str | None
    #: Content-Type's media type, lower-cased, without parameters; None when there is none.
    content_type: str | None
    #: The body: everything after the empty line, cut to Content-Length when that is shorter.
    body: str
    #: True when Content-Length promises more bytes than follow (a cut trace, or CRLF turned into
    #: LF by a terminal); the body is then what is there.
    content_length_mismatch: bool
    #: The text before the body: any empty lines before the start line, the start line and every
    #: header line, each with its own line ending as given, without the empty line after them.
    header_block: str
    #: "\r\n" or "\n": the start line's ending (CRLF when it has none); used for added lines.
    line_ending: str
    #: The empty line that ended the headers, exactly as given (it may hold spaces from a
    #: terminal); "" when the text ended without one.
    blank_line: str
    #: 0-based index, among the lines of `header_block` (split after each "\n"), of the first line
    #: of the Content-Length header; None when there is none.
    content_length_line: int | None


class _Malformed(Exception):
    """A header value that cannot be read; turned into InputError with source and line."""


@dataclass
class _Header:
    """One header while the block is read: folded lines are gathered into `parts`."""

    #: 1-based line number in the pasted text of the header's first line.
    line: int
    #: The name as written.
    name: str
    #: The value of the first line and of each continuation line, stripped of LWS.
    parts: list[str]

    @property
    def value(self) -> str:
        # A fold (CRLF followed by white space) means one space (RFC 3261 §7.3.1).
        return " ".join(part for part in self.parts if part)


def _next_line(text: str, pos: int) -> tuple[int, str]:
    """The line starting at `pos`: (offset just after its "\\n", its content without CR LF)."""
    newline = text.find("\n", pos)
    if newline < 0:
        end = stop = len(text)
    else:
        stop, end = newline, newline + 1
    content = text[pos:stop]
    return end, content.removesuffix("\r")


def _is_blank(content: str) -> bool:
    # A line of spaces ends the headers too: terminals add them, and a real fold never is one.
    return not content.strip(_WSP)


def _start_line(content: str) -> tuple[bool, str | None, int | None] | None:
    """(is_request, method, status) for a request or status line, else None."""
    request = _REQUEST_LINE.fullmatch(content)
    if request:
        return True, request["method"], None
    status = _STATUS_LINE.fullmatch(content)
    if status:
        return False, None, int(status["status"])
    return None


def looks_like_sip(text: str) -> bool:
    """True when the first non-empty line is a SIP request line or status line.

    An SDP body (it starts with `v=`) is not SIP; neither is anything that is not text.
    """
    if not isinstance(text, str):
        return False
    pos = 0
    while pos < len(text):
        pos_after, content = _next_line(text, pos)
        if not _is_blank(content):
            return _start_line(content) is not None
        pos = pos_after
    return False


def _shown(value: str) -> str:
    return shown(value, 40)


def _parameters(text: str) -> list[tuple[str, str | None]]:
    """`;name[=value]` pairs of a header after its address or sent-by; anything else is malformed."""
    found: list[tuple[str, str | None]] = []
    pos = 0
    while text[pos:].strip(_WSP):
        match = _PARAMETER.match(text, pos)
        if not match:
            raise _Malformed(f"unexpected {_shown(text[pos:].strip(_WSP))} where ';parameter' belongs")
        found.append((match["name"], match["value"]))
        pos = match.end()
    return found


def _separating_commas(value: str) -> Iterator[int]:
    """Where the commas between a header's values are (commas inside quotes are not)."""
    quoted = escaped = False
    for index, char in enumerate(value):
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            yield index


def _first_value(value: str) -> str:
    """The first of comma-separated values (the top Via)."""
    for index in _separating_commas(value):
        return value[:index].strip(_WSP)
    return value


def _address_tag(value: str) -> str | None:
    """The `tag` parameter of a From or To value, read after the address, never inside <...>."""
    rest = value
    if rest.startswith('"'):
        quoted = _QUOTED.match(rest)
        if not quoted:
            raise _Malformed("the quoted display name has no closing '\"'")
        rest = rest[quoted.end():].lstrip(_WSP)
        if not rest.startswith("<"):
            raise _Malformed("a quoted display name must be followed by <URI>")
    opening = rest.find("<")
    if opening >= 0:
        display = rest[:opening]
        if any(char in display for char in '";>'):
            raise _Malformed(f"unexpected {_shown(display.strip(_WSP))} before <URI>")
        closing = rest.find(">", opening + 1)
        if closing < 0:
            raise _Malformed("'<' has no closing '>'")
        if not rest[opening + 1:closing].strip(_WSP):
            raise _Malformed("empty <URI>")
        after = rest[closing + 1:]
    else:
        # addr-spec form: the URI cannot carry parameters, so the first ';' starts the header's.
        semicolon = rest.find(";")
        uri = rest if semicolon < 0 else rest[:semicolon]
        after = "" if semicolon < 0 else rest[semicolon:]
        uri = uri.strip(_WSP)
        if not uri:
            raise _Malformed("no address")
        if any(char in uri for char in _WSP + '">'):
            raise _Malformed(f"{_shown(uri)} is not one URI (a display name needs <URI>)")
    tags = [tag for name, tag in _parameters(after) if name.lower() == "tag"]
    if len(tags) > 1:
        raise _Malformed("more than one tag parameter")
    if not tags:
        return None
    tag = tags[0]
    if not tag or tag.startswith('"'):
        raise _Malformed("the tag parameter has no value" if not tag else "a tag cannot be quoted")
    return tag


def _via_source(value: str) -> str | None:
    """`received` of the top Via, else its sent-by host when that is an IP literal, else None."""
    top = _first_value(value)
    match = _VIA.match(top)
    if not match:
        raise _Malformed(f"{_shown(top)} is not 'SIP/2.0/<transport> <host>[:<port>]'")
    sent_by = match["sent_by"]
    if sent_by.startswith("["):
        closing = sent_by.find("]")
        host, port = sent_by[1:closing], sent_by[closing + 1:]
        if closing < 0 or not isinstance(ip_literal(host), ipaddress.IPv6Address):
            raise _Malformed(f"sent-by {_shown(sent_by)} is not a bracketed IPv6 address")
        if port and not (port.startswith(":") and _PORT.fullmatch(port[1:])):
            raise _Malformed(f"sent-by {_shown(sent_by)} has a bad port")
        sent_by_ip: str | None = host
    elif sent_by.count(":") > 1:
        # An unbracketed IPv6 sent-by is wrong but seen in the wild; the address is unambiguous.
        if not isinstance(ip_literal(sent_by), ipaddress.IPv6Address):
            raise _Malformed(f"sent-by {_shown(sent_by)} is neither host:port nor an IPv6 address")
        sent_by_ip = sent_by
    else:
        host, colon, port = sent_by.partition(":")
        if not host or (colon and not _PORT.fullmatch(port)):
            raise _Malformed(f"sent-by {_shown(sent_by)} is not host[:port]")
        sent_by_ip = host if isinstance(ip_literal(host), ipaddress.IPv4Address) else None
    received = [param for name, param in _parameters(top[match.end():]) if name.lower() == "received"]
    if not received:
        return sent_by_ip
    address = received[0] or ""
    if address.startswith("[") and address.endswith("]"):
        address = address[1:-1]
    if ip_literal(address) is None:
        raise _Malformed(f"received={_shown(received[0] or '')} is not an IP address")
    return address


def _call_id(value: str) -> str:
    if not value or any(char in _WSP for char in value):
        raise _Malformed(f"{_shown(value)} is not one word" if value else "empty")
    return value


def _cseq_method(value: str) -> str:
    match = _CSEQ.fullmatch(value)
    if not match:
        raise _Malformed(f"{_shown(value)} is not '<number> <method>'")
    return match["method"]


def _content_length(value: str) -> int:
    if not _CONTENT_LENGTH.fullmatch(value):
        raise _Malformed(f"{_shown(value)} is not a number of bytes")
    try:
        return int(value)
    except ValueError:  # more digits than int() takes: no body is that long anyway
        raise _Malformed(f"{_shown(value)} is not a plausible number of bytes") from None


def _media_type(value: str) -> str:
    match = _CONTENT_TYPE.fullmatch(value)
    if not match:
        raise _Malformed(f"{_shown(value)} is not 'type/subtype[;parameters]'")
    return f"{match['type']}/{match['subtype']}".lower()


def _header_block(
    text: str, source: str,
) -> tuple[tuple[bool, str | None, int | None], list[_Header], int, str, int, str]:
    """Read the start line and headers.

    Returns ((is_request, method, status), headers, offset where the header block ends, the empty
    line as given, offset where the body starts, line ending).
    """
    pos = 0
    number = 0
    while True:
        if pos >= len(text):
            raise InputError(
                f"{source}: empty: no SIP request or status line",
                "paste the whole message, from its first line (e.g. 'INVITE sip:...' or 'SIP/2.0 200 OK')",
            )
        pos_after, content = _next_line(text, pos)
        number += 1
        if not _is_blank(content):
            break
        pos = pos_after
    start = _start_line(content)
    if start is None:
        if content.startswith("v="):
            hint = "this looks like an SDP body, not a SIP message: give it as SDP"
        else:
            hint = "a SIP message starts like 'INVITE sip:bob@example.com SIP/2.0' or 'SIP/2.0 200 OK'"
        raise InputError(f"{source}: line {number}: not a SIP request or status line", hint)
    start_raw = text[pos:pos_after]
    ending = "\n" if start_raw.endswith("\n") and not start_raw.endswith("\r\n") else "\r\n"
    pos = pos_after
    headers: list[_Header] = []
    header_end = body_start = len(text)
    blank_line = ""
    while pos < len(text):
        pos_after, content = _next_line(text, pos)
        number += 1
        if _is_blank(content):
            header_end, blank_line, body_start = pos, text[pos:pos_after], pos_after
            break
        if content[0] in _WSP:
            if not headers:
                raise InputError(
                    f"{source}: line {number}: a continuation line (it starts with white space) "
                    "right after the start line",
                    "only a header can be folded onto the next line",
                )
            headers[-1].parts.append(content.strip(_WSP))
        else:
            name = _HEADER_NAME.match(content)
            if not name:
                raise InputError(
                    f"{source}: line {number}: not a header line: {_shown(content)}",
                    "headers are 'Name: value' up to the first empty line; was a line broken or cut?",
                )
            headers.append(_Header(number, name["name"], [content[name.end():].strip(_WSP)]))
        pos = pos_after
    return start, headers, header_end, blank_line, body_start, ending


def parse_sip(text: str, *, source: str = "message") -> SipMessage:
    """Read a pasted SIP request or reply; errors name `source` and the line.

    Raises InputError for anything that is not a SIP message rtppctl can rewrite: no start line,
    a broken header line, a malformed From, To, Via, CSeq, Content-Length or Content-Type, two of
    a header that may appear once, no Call-ID, a multipart body, a body that is not SDP.
    """
    if not isinstance(text, str):
        raise InputError(f"{source}: expected text, not {type(text).__name__}")
    (is_request, method, status), headers, header_end, blank_line, body_start, ending = (
        _header_block(text, source)
    )

    read: dict[str, _Header] = {}
    for header in headers:
        canonical = _READ_HEADERS.get(header.name.lower())
        if canonical is None or (canonical == "Via" and "Via" in read):
            continue  # only the first Via header, the top one, is read
        if canonical in read:
            raise InputError(
                f"{source}: line {header.line}: a second {canonical} header "
                f"(the first is on line {read[canonical].line})",
                f"a SIP message has one {canonical}; were two messages pasted together?",
            )
        read[canonical] = header

    def value_of(canonical: str, reader: Callable[[str], _T]) -> _T | None:
        header = read.get(canonical)
        if header is None:
            return None
        try:
            return reader(header.value)
        except _Malformed as error:
            raise InputError(f"{source}: line {header.line}: malformed {canonical} header: {error}") from None

    call_id = value_of("Call-ID", _call_id)
    if call_id is None:
        raise InputError(f"{source}: no Call-ID header",
                         "every SIP message has one (compact form 'i:'); was the trace cut?")
    from_tag = value_of("From", _address_tag)
    to_tag = value_of("To", _address_tag)
    top_via_source = value_of("Via", _via_source)
    cseq_method = value_of("CSeq", _cseq_method)
    length = value_of("Content-Length", _content_length)
    media_type = value_of("Content-Type", _media_type)

    body = text[body_start:]
    try:
        body_bytes = body.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InputError(
            f"{source}: the body holds {body[error.start]!r}, which is not valid UTF-8 text"
        ) from None
    mismatch = False
    if length is not None and length < len(body_bytes):
        try:
            body = body_bytes[:length].decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(
                f"{source}: line {read['Content-Length'].line}: Content-Length {length} ends inside "
                "a multi-byte character of the body",
                "the body or its Content-Length was changed; paste the message as captured",
            ) from None
    elif length is not None and length > len(body_bytes):
        mismatch = True

    if media_type is not None and body.strip():
        line = read["Content-Type"].line
        if media_type.startswith("multipart/"):
            raise InputError(
                f"{source}: line {line}: the body is {media_type}: multipart SIP bodies are not supported yet",
                "extract the application/sdp part (between its boundary lines) and give it as SDP",
            )
        if media_type != "application/sdp":
            raise InputError(f"{source}: line {line}: the body is {media_type}, not application/sdp",
                             "rtppctl rewrites SDP bodies only")

    return SipMessage(
        is_request=is_request,
        method=method if is_request else cseq_method,
        status=status,
        call_id=call_id,
        from_tag=from_tag,
        to_tag=to_tag,
        cseq_method=cseq_method,
        top_via_source=top_via_source,
        content_type=media_type,
        body=body,
        content_length_mismatch=mismatch,
        header_block=text[:header_end],
        line_ending=ending,
        blank_line=blank_line,
        content_length_line=read["Content-Length"].line - 1 if "Content-Length" in read else None,
    )


def _physical_lines(text: str) -> list[str]:
    """`text` split after each "\\n" (not str.splitlines: a lone CR or U+2028 is data here)."""
    pieces = text.split("\n")
    lines = [piece + "\n" for piece in pieces[:-1]]
    if pieces[-1]:
        lines.append(pieces[-1])
    return lines


def _terminated(line: str, ending: str) -> str:
    """`line` with a line ending, for a text that stopped in the middle of its last line."""
    if line.endswith("\n"):
        return line
    return line + ("\n" if line.endswith("\r") else ending)


def with_body(message: SipMessage, new_body: str) -> str:
    """The whole message text with `new_body` and Content-Length set to its UTF-8 length.

    Content-Length keeps its name as written (`l` stays `l`), its place and everything around the
    number; without one, `Content-Length: N` is added as the last header. Every other byte of the
    start line and headers, their line endings and the empty line after them is kept; a text that
    stopped before the empty line (or in the middle of a line) is completed with the message's
    line ending.
    """
    if not isinstance(new_body, str):
        raise InputError(f"the new body must be text, not {type(new_body).__name__}")
    try:
        length = len(new_body.encode("utf-8"))
    except UnicodeEncodeError as error:
        raise InputError(f"the new body holds {new_body[error.start]!r}, which is not valid UTF-8 text") from None
    lines = _physical_lines(message.header_block)
    lines[-1] = _terminated(lines[-1], message.line_ending)
    if message.content_length_line is None:
        lines.append(f"Content-Length: {length}{message.line_ending}")
    else:
        first = message.content_length_line
        last = first + 1
        while last < len(lines) and lines[last][:1] in (" ", "\t"):
            last += 1
        field = "".join(lines[first:last])
        colon = field.find(":")
        number = _CONTENT_LENGTH.search(field, colon + 1) if colon >= 0 else None
        if number is None:
            raise ValueError(f"content_length_line {first} is not a Content-Length header: {field!r}")
        # An unchanged length keeps its digits as written (leading zeros too): byte for byte.
        if (number.group().lstrip("0") or "0") != str(length):
            field = field[:number.start()] + str(length) + field[number.end():]
        lines[first:last] = [field]
    return "".join(lines) + _terminated(message.blank_line, message.line_ending) + new_body


# -- messages of a captured trace ---------------------------------------------------------------


@dataclass(frozen=True)
class Via:
    """One Via value: who sent the message on that hop, and the transaction it belongs to."""

    #: The sent-by host as written (brackets of IPv6 stripped) and its port (None when absent).
    host: str
    port: int | None
    #: The `branch` parameter; None when absent.
    branch: str | None
    #: The `received` parameter; None when absent.
    received: str | None


@dataclass(frozen=True)
class TraceSummary:
    """What following a dialog needs of any captured SIP message, whatever its body.

    `parse_sip` reads a message to rewrite; a trace also holds messages no rewrite applies to
    (100 Trying, BYE, OPTIONS, bodies of other types), so this reads what identifies a message in
    its dialog and transaction and keeps a header it cannot read as None instead of refusing the
    message. Only a message without a start line or a Call-ID is refused.
    """

    is_request: bool
    #: The request's method; for a reply, the method of CSeq (None without a CSeq).
    method: str | None
    status: int | None
    call_id: str
    from_tag: str | None
    to_tag: str | None
    #: The From and To values as written (display name and URI), for people; "" when absent.
    from_value: str
    to_value: str
    cseq: int | None
    cseq_method: str | None
    #: Every Via value, the top one first.
    vias: tuple[Via, ...]
    #: True when the body is SDP (Content-Type application/sdp, or none and a body starting v=).
    has_sdp: bool
    #: The body, cut to Content-Length.
    body: str


def _via_values(value: str) -> list[str]:
    """The comma-separated values of a Via header, empty ones left out."""
    values, start = [], 0
    for index in _separating_commas(value):
        values.append(value[start:index].strip(_WSP))
        start = index + 1
    values.append(value[start:].strip(_WSP))
    return [item for item in values if item]


def _via(value: str) -> Via | None:
    match = _VIA.match(value)
    if not match:
        return None
    sent_by = match["sent_by"]
    port: int | None = None
    if sent_by.startswith("["):
        host, _, rest = sent_by[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif sent_by.count(":") > 1:
        host, port_text = sent_by, ""
    else:
        host, _, port_text = sent_by.partition(":")
    if _PORT.fullmatch(port_text):
        port = int(port_text)
    try:
        parameters = dict((name.lower(), item) for name, item in _parameters(value[match.end():]))
    except _Malformed:
        parameters = {}
    received = parameters.get("received")
    if received and received.startswith("[") and received.endswith("]"):
        received = received[1:-1]
    return Via(host, port, parameters.get("branch"), received)


def summarize(text: str, *, source: str = "message") -> TraceSummary:
    """A captured message read for following its dialog (`TraceSummary`); InputError only for a
    text without a SIP start line or without a Call-ID."""
    (is_request, method, status), headers, _, _, body_start, _ = _header_block(text, source)
    first: dict[str, _Header] = {}
    vias: list[Via] = []
    for header in headers:
        canonical = _READ_HEADERS.get(header.name.lower())
        if canonical == "Via":
            vias.extend(via for via in map(_via, _via_values(header.value)) if via is not None)
        elif canonical is not None:
            first.setdefault(canonical, header)

    def value_of(canonical: str, reader: Callable[[str], _T]) -> _T | None:
        header = first.get(canonical)
        if header is None:
            return None
        try:
            return reader(header.value)
        except (_Malformed, InputError):
            return None

    call_id = value_of("Call-ID", _call_id)
    if call_id is None:
        raise InputError(f"{source}: no readable Call-ID header", "every SIP message has one (compact form 'i:')")
    cseq_header = first.get("CSeq")
    cseq = cseq_method = None
    if cseq_header is not None and _CSEQ.fullmatch(cseq_header.value):
        number, cseq_method = cseq_header.value.split(None, 1)
        cseq, cseq_method = int(number[:10]), cseq_method.strip(_WSP)
    body = text[body_start:]
    length = value_of("Content-Length", _content_length)
    if length is not None:
        body = body.encode("utf-8", "surrogateescape")[:length].decode("utf-8", "replace")
    media_type = value_of("Content-Type", _media_type)
    has_sdp = bool(body.strip()) and (media_type == "application/sdp"
                                      or media_type is None and body.lstrip().startswith("v="))
    return TraceSummary(
        is_request=is_request,
        method=method if is_request else cseq_method,
        status=status,
        call_id=call_id,
        from_tag=value_of("From", _address_tag),
        to_tag=value_of("To", _address_tag),
        from_value=first["From"].value if "From" in first else "",
        to_value=first["To"].value if "To" in first else "",
        cseq=cseq,
        cseq_method=cseq_method,
        vias=tuple(vias),
        has_sdp=has_sdp,
        body=body,
    )
