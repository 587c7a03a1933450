"""SIP messages read out of text traces, as `SipPacket`s in the order the trace holds them.

This module owns the text forms of a SIP trace that operators keep: sngrep's text export, ngrep's
byline output, Kamailio's sipdump files and OpenSIPS's tracer files. Pure: lines in (text or
bytes, as iterating a file gives them), records out; no file is opened here. Each form is read as
the tool's own source prints it, and `kind` names it:

- "sngrep": sngrep's "Save as .txt" and `sngrep -N -T FILE`. irontec/sngrep `src/curses/ui_save.c`
  (`save_msg_txt`), `src/main.c` (-T), `src/sip_msg.c` (`msg_get_attribute`), `src/util.c`
  (`timeval_to_date`, `timeval_to_time`). Each message is a line `YYYY/MM/DD HH:MM:SS.UUUUUU SRC ->
  DST` (local time; `ip:port`, `[ipv6]:port`; before sngrep 1.4.8 IPv6 without brackets), the
  message as captured, and "\\n\\n". No transport is written: "udp". sngrep writes the messages
  call by call, not in time order.
- "ngrep": `ngrep -W byline`, with or without -q, -t, -T. jpr5/ngrep `ngrep.c` (`dump_packet`,
  `dump_byline`, `print_time_absolute`, `print_time_diff`, `print_time_offset`). A record is
  `U|T [time ]SRC:PORT -> DST:PORT[ [flags]] #N` (an IPv6 address without brackets, the port after
  its last colon; -t: `YYYY/MM/DD HH:MM:SS.UUUUUU ` local time; -T: `+S.UUUUUU ` since the record
  before, added up from 0; -TT: the same form since the first record, told by the first record's
  `+0.000000`; no time: 0.0), then the payload with every byte that is not printable shown as
  '.', so a CR is the '.' at the end of each line. A message whose start line ends with '.' gets
  those CRs back. Without -q, '#' lines (one per frame seen), `interface:`, `filter:`, `exit` and
  `N received, M matched` lines surround the records. A TCP segment may hold several messages.
- "sipdump": Kamailio's sipdump module, text mode (`*.data` files). kamailio
  `src/modules/sipdump/sipdump_write.c` (`sipdump_data_print`): a `====================` line,
  `tag:`, `pid:`, `process:`, `time: S.UUUUUU` (seconds since the epoch), `date:`, `proto: udp
  ipv4`, `srcip:`, `srcport:`, `dstip:`, `dstport:`, a `~~~~~~~~~~~~~~~~~~~~` line, the message
  as sent or received, and `||||||||||||||||||||` right after its last byte.
- "siptrace": OpenSIPS's tracer module (the siptrace of old) with a file destination
  (`trace_id` `uri=file:/path`). OpenSIPS `modules/tracer/tracer.c` (`trace_write_file`): a line
  `in|out PROTO YYYY-MM-DD HH:MM:SS FROMIP:PORT -> TOIP:PORT` (local time, whole seconds; an IPv6
  address written by `ip_addr2a`, without brackets), the message, and "\\n\\n".

The rules it keeps:

- `data` is one SIP message, byte for byte as the tool had it where the form keeps the bytes, with
  CRLF line ends: read a file in binary (or text with newline="") and the CRs are kept as they
  were; read it as text with universal newlines and a record without any CR gets CRLF back for
  each LF. The body is cut to Content-Length; a body shorter than Content-Length is a cut record.
- A record that cannot be read is counted and skipped, never raised: `stats.truncated` for one cut
  short or whose head does not parse (a bad address, port or time, a missing field, a body
  shorter than Content-Length), and by name in `stats.other`: "not_sip" (a payload that is no SIP
  message: RTP, ICMP, a continued TCP segment, OpenSIPS's "No request buffer"), "keepalives"
  (CRLFs only), "ip_fragments" (ngrep shows each IP fragment as a record; they are not put back
  together), "not_byline" (ngrep without -W byline), "unsupported_transport" (SCTP...) and
  "oversized_records" (over `max_record_bytes`). `stats.frames` counts records, `frame` is the
  record's 1-based number.
- Memory is one record: a record longer than `max_record_bytes` characters is dropped as it grows.
- Only input that is no text trace at all (none of the forms' record heads in its first
  `DETECT_BYTES`, or none in the whole input when `kind` is given) raises InputError, and so does
  a `kind` that is none of FORMATS; an empty input holds no messages and raises nothing.
- Local times are read in `local_zone`, or in this machine's zone when it is None: the tools write
  the zone of the machine that wrote the trace, which is usually the one reading it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, tzinfo

from rtppctl.proto.capture import CaptureStats, SipPacket
from rtppctl.proto.errors import InputError
from rtppctl.proto.sip import looks_like_sip
from rtppctl.proto.text import ip_literal, shown

__all__ = ["DETECT_BYTES", "FORMATS", "MAX_RECORD_BYTES", "detect_text_format", "read_text_trace"]

#: The forms `kind` names, in the order detection tries them on a line.
FORMATS = ("sngrep", "ngrep", "sipdump", "siptrace")
#: The most characters one record may take (its head line included); a longer one is dropped.
MAX_RECORD_BYTES = 1 << 20
#: How much of the input's beginning detection looks at: enough for ngrep's preamble and a few
#: records, little enough to hold before the first record is known.
DETECT_BYTES = 16 * 1024

#: What the hint of an unreadable input lists.
_SUPPORTED = ("sngrep's text export (sngrep -N -T FILE, or Save as .txt), ngrep -W byline output "
              "(with or without -q, -t, -T), Kamailio sipdump .data files, OpenSIPS tracer files "
              "(uri=file:...)")

# ASCII digits and spaces only: a record head is what a C printf wrote.
_SNGREP_HEAD = re.compile(
    r"(?a)(?P<year>\d{4})/(?P<month>\d\d)/(?P<day>\d\d) (?P<hour>\d\d):(?P<minute>\d\d):(?P<second>\d\d)"
    r"\.(?P<usec>\d{6}) (?P<src>\S+) -> (?P<dst>\S+)"
)
_NGREP_HEAD = re.compile(
    r"(?a)(?P<ident>[TUIG?])(?:\(\d+\))? "
    r"(?:(?P<year>\d{4})/(?P<month>\d\d)/(?P<day>\d\d) (?P<hour>\d\d):(?P<minute>\d\d):(?P<second>\d\d)"
    r"\.(?P<usec>\d{6}) |\+(?P<elapsed>\d+)\.(?P<elapsed_usec>\d{6}) )?"
    r"(?P<src>\S+) -> (?P<dst>\S+)(?P<extra>(?: \S+)*) #\d+"
)
#: ngrep's fragment mark after the addresses: `[+]id@offset:length` (the + on all but the first).
_NGREP_FRAGMENT = re.compile(r"(?a) \+?\d+@\d+:\d+")
#: Lines ngrep prints around records without -q: the '#' of each frame seen (no line end of its
#: own, so it shares a line with whatever comes next), and the end of the run.
_NGREP_NOISE = re.compile(r"(?a)#+|#*exit|#*\d+ received, \d+ matched")
_SIPDUMP_START = "=" * 20
_SIPDUMP_META_END = "~" * 20
_SIPDUMP_END = "|" * 20
_SIPTRACE_HEAD = re.compile(
    r"(?a)(?P<direction>in|out) (?P<proto>\S+) (?P<year>\d{4})-(?P<month>\d\d)-(?P<day>\d\d) "
    r"(?P<hour>\d\d):(?P<minute>\d\d):(?P<second>\d\d) (?P<src>\S+) -> (?P<dst>\S+)"
)
_PORT = re.compile(r"[0-9]{1,5}")
_WHOLE_NUMBER = re.compile(r"[0-9]{1,20}")
_SIX_DIGITS = re.compile(r"[0-9]{6}")

#: Transports as the tools name them -> what the message travelled over. TLS and WebSocket
#: messages are the decrypted or unframed SIP of a stream connection.
_TRANSPORTS = {"udp": "udp", "tcp": "tcp", "tls": "tcp", "ws": "tcp", "wss": "tcp"}

#: Content-Length, compact form `l` too (RFC 3261 §20.14), as a header line of the head block.
_CONTENT_LENGTH = re.compile(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*(?P<value>[^\r\n]*?)[ \t]*\r?$")
_DIGITS = re.compile(rb"[0-9]+")


class _Unreadable(Exception):
    """A record that is skipped; its argument is the counter it goes to ("truncated" or a name)."""


@dataclass(frozen=True)
class _Record:
    """What a form's reader takes out of one record, before the SIP framing."""

    time: float
    src: tuple[str, int]
    dst: tuple[str, int]
    transport: str
    #: The payload as text, every line end as the record gives it.
    payload: str
    #: True when the payload's CRs are known (ngrep shows each one); else a payload without any
    #: CR lost them to a text-mode read, and each LF gets its CR back.
    line_ends_known: bool = False
    #: True for a stream segment that may hold several messages (ngrep TCP).
    stream: bool = False


# -- detection ---------------------------------------------------------------------------------------


def _line_content(line: str) -> str:
    return line.removesuffix("\n").removesuffix("\r")


def detect_text_format(head: str) -> str | None:
    """The form (one of FORMATS) of the first record head found in `head`, the first few KB of an
    input; None when it holds none (a pcap, prose, an empty file)."""
    if not isinstance(head, str):
        return None
    lines = [_line_content(line) for line in head.split("\n")]
    for index, content in enumerate(lines):
        if _SNGREP_HEAD.fullmatch(content):
            return "sngrep"
        if _NGREP_HEAD.fullmatch(content):
            return "ngrep"
        # The head line alone would be any row of '='; the field after it is sipdump's own.
        if content == _SIPDUMP_START and index + 1 < len(lines) and lines[index + 1].startswith("tag: "):
            return "sipdump"
        if _SIPTRACE_HEAD.fullmatch(content):
            return "siptrace"
    return None


# -- the pieces of a record head ---------------------------------------------------------------------


def _endpoint(text: str) -> tuple[str, int]:
    """`ip:port`, `[ipv6]:port` or an IPv6 address without brackets before `:port` -> (address as
    Python writes it, port)."""
    if text.startswith("["):
        host, separator, port = text[1:].partition("]:")
    else:
        host, separator, port = text.rpartition(":")
    return _address(host), _port(port if separator else "")


def _address(text: str) -> str:
    # One spelling per address: OpenSIPS and Kamailio write IPv6 uncompressed and upper-case.
    address = ip_literal(text)
    if address is None:
        raise _Unreadable("truncated")
    return str(address)


def _port(text: str) -> int:
    if not _PORT.fullmatch(text) or int(text) > 65535:
        raise _Unreadable("truncated")
    return int(text)


def _micros(seconds: int, usec: str) -> float:
    # From whole microseconds, so that the same stamp always gives the same float.
    return (seconds * 1_000_000 + int(usec)) / 1_000_000


_DATE_FIELDS = ("year", "month", "day", "hour", "minute", "second")


def _local_seconds(fields: dict[str, str | None], zone: tzinfo | None) -> int:
    """Seconds since the epoch of a local date and time (year..second of a head's match)."""
    try:
        moment = datetime(*(int(fields[name] or "") for name in _DATE_FIELDS), tzinfo=zone)
        # A naive datetime is the machine's local time to timestamp().
        return int(moment.timestamp())
    except (ValueError, OverflowError, OSError):
        raise _Unreadable("truncated") from None


def _transport(name: str) -> str:
    transport = _TRANSPORTS.get(name.lower())
    if transport is None:
        raise _Unreadable("unsupported_transport")
    return transport


# -- the forms ---------------------------------------------------------------------------------------


class _Form:
    """How one form tells where a record starts and what a record holds."""

    def __init__(self, zone: tzinfo | None) -> None:
        self.zone = zone

    def starts_record(self, content: str) -> bool:
        raise NotImplementedError

    def read(self, lines: list[str], *, followed: bool) -> _Record:
        """The record of `lines` (its head line first, each line with its "\\n"); `followed` is
        True when another record came after it. Raises _Unreadable."""
        raise NotImplementedError


class _Sngrep(_Form):
    def starts_record(self, content: str) -> bool:
        return _SNGREP_HEAD.fullmatch(content) is not None

    def read(self, lines: list[str], *, followed: bool) -> _Record:
        head = _SNGREP_HEAD.fullmatch(_line_content(lines[0]))
        assert head is not None  # a record starts only at such a line
        seconds = _local_seconds(head.groupdict(), self.zone)
        src, dst = _endpoint(head["src"]), _endpoint(head["dst"])
        # save_msg_txt writes "%s\n\n" after the payload; a file cut short lacks some of it.
        payload = "".join(lines[1:]).removesuffix("\n\n")
        return _Record(_micros(seconds, head["usec"]), src, dst, "udp", payload)


class _Siptrace(_Form):
    def starts_record(self, content: str) -> bool:
        return _SIPTRACE_HEAD.fullmatch(content) is not None

    def read(self, lines: list[str], *, followed: bool) -> _Record:
        head = _SIPTRACE_HEAD.fullmatch(_line_content(lines[0]))
        assert head is not None
        seconds = _local_seconds(head.groupdict(), self.zone)
        transport = _transport(head["proto"])
        src, dst = _endpoint(head["src"]), _endpoint(head["dst"])
        # trace_write_file writes the message, then "\n\n".
        payload = "".join(lines[1:]).removesuffix("\n\n")
        return _Record(float(seconds), src, dst, transport, payload)


class _Sipdump(_Form):
    _FIELDS = ("time", "proto", "srcip", "srcport", "dstip", "dstport")

    def starts_record(self, content: str) -> bool:
        return content == _SIPDUMP_START

    def read(self, lines: list[str], *, followed: bool) -> _Record:
        fields: dict[str, str] = {}
        index = 1
        while index < len(lines) and _line_content(lines[index]) != _SIPDUMP_META_END:
            name, separator, value = _line_content(lines[index]).partition(": ")
            if separator:
                fields.setdefault(name, value)
            index += 1
        if index >= len(lines) or any(name not in fields for name in self._FIELDS):
            raise _Unreadable("truncated")
        # The end mark follows the message's last byte, on that line when it has no line end.
        payload: list[str] = []
        for line in lines[index + 1:]:
            content = _line_content(line)
            if content.endswith(_SIPDUMP_END):
                payload.append(content.removesuffix(_SIPDUMP_END))
                break
            payload.append(line)
        else:
            raise _Unreadable("truncated")  # no end mark: cut, or over sipdump's 64 KB buffer
        seconds, dot, usec = fields["time"].partition(".")
        if not (_WHOLE_NUMBER.fullmatch(seconds) and dot and _SIX_DIGITS.fullmatch(usec)):
            raise _Unreadable("truncated")
        proto = fields["proto"].split(" ")[0]
        return _Record(
            _micros(int(seconds), usec),
            (_address(fields["srcip"]), _port(fields["srcport"])),
            (_address(fields["dstip"]), _port(fields["dstport"])),
            _transport(proto),
            "".join(payload),
        )


class _Ngrep(_Form):
    def __init__(self, zone: tzinfo | None) -> None:
        super().__init__(zone)
        # -T's deltas add up; -TT's offsets (first one +0.000000) do not.
        self.offsets: bool | None = None
        self.elapsed = 0

    def starts_record(self, content: str) -> bool:
        return _NGREP_HEAD.fullmatch(content) is not None

    def _time(self, head: re.Match[str]) -> float:
        if head["year"] is not None:
            return _micros(_local_seconds(head.groupdict(), self.zone), head["usec"])
        if head["elapsed"] is None:
            return 0.0
        micros = int(head["elapsed"]) * 1_000_000 + int(head["elapsed_usec"])
        if self.offsets is None:
            self.offsets = micros == 0
        if self.offsets:
            return micros / 1_000_000
        self.elapsed += micros
        return self.elapsed / 1_000_000

    def read(self, lines: list[str], *, followed: bool) -> _Record:
        head = _NGREP_HEAD.fullmatch(_line_content(lines[0]))
        assert head is not None
        time = self._time(head)  # every record counts towards -T's sum, read or not
        if head["ident"] not in "UT":
            raise _Unreadable("not_sip")
        if _NGREP_FRAGMENT.search(head["extra"]):
            raise _Unreadable("ip_fragments")
        src, dst = _endpoint(head["src"]), _endpoint(head["dst"])
        shown_lines = [_line_content(line) for line in lines[1:]]
        # dump_byline prints the payload and "\n"; then the next record starts with "\n" (-q) or
        # the next frame's '#' line; the last record ends the output, maybe before ngrep's `exit`.
        noise = False
        while shown_lines and _NGREP_NOISE.fullmatch(shown_lines[-1]):
            shown_lines.pop()
            noise = True
        if followed and not noise and shown_lines and shown_lines[-1] == "":
            shown_lines.pop()
        if shown_lines and shown_lines[0].startswith("  "):
            raise _Unreadable("not_byline")  # -W normal: indented, wrapped, line ends as '.'
        return _Record(time, src, dst, "udp" if head["ident"] == "U" else "tcp",
                       _ngrep_payload(shown_lines), line_ends_known=True, stream=head["ident"] == "T")


def _ngrep_payload(shown_lines: list[str]) -> str:
    """The payload `dump_byline` printed as `shown_lines` (split at its LFs), CRs put back: in a
    message whose start line ends with '.', the '.' ending a line is the CR before its LF."""
    # CRLFs before the message (stream keepalives) show as lines of a lone '.', and a segment
    # of nothing else is CRLFs.
    start = next((line for line in shown_lines if line not in ("", ".")), ".")
    crlf = start.endswith(".")
    last = len(shown_lines) - 1
    pieces = []
    for index, line in enumerate(shown_lines):
        if index == last:
            pieces.append(line)  # after the payload's last LF: what came without a line end
        elif crlf and line.endswith("."):
            pieces.append(line[:-1] + "\r\n")
        else:
            pieces.append(line + "\n")
    return "".join(pieces)


_FORMS: dict[str, type[_Form]] = {"sngrep": _Sngrep, "ngrep": _Ngrep, "sipdump": _Sipdump, "siptrace": _Siptrace}


# -- SIP framing -------------------------------------------------------------------------------------


def _content_length(head_block: bytes) -> int | None:
    match = _CONTENT_LENGTH.search(head_block)
    if match is None:
        return None
    if not _DIGITS.fullmatch(match["value"]):
        raise _Unreadable("truncated")
    return int(match["value"])


def _messages(payload: bytes, *, stream: bool) -> Iterator[bytes]:
    """The SIP messages of one record's payload: one for a datagram or a message-level trace,
    as many as the segment holds for a stream. Raises _Unreadable for what is left unread."""
    pos, found = 0, False
    while True:
        # CRLFs before a message are keepalives (RFC 5626 §3.5.1) or padding, never part of it.
        while pos < len(payload) and payload[pos] in b"\r\n":
            pos += 1
        if pos >= len(payload):
            if found:
                return
            raise _Unreadable("keepalives" if payload else "not_sip")
        line_end = payload.find(b"\n", pos)
        start_line = payload[pos:line_end if line_end >= 0 else len(payload)]
        if not looks_like_sip(start_line.decode("utf-8", "surrogateescape")):
            raise _Unreadable("not_sip")
        crlf_blank, lf_blank = payload.find(b"\r\n\r\n", pos), payload.find(b"\n\n", pos)
        if crlf_blank < 0 and lf_blank < 0:
            raise _Unreadable("truncated")
        if crlf_blank >= 0 and (lf_blank < 0 or crlf_blank < lf_blank):
            head_end, body_start = crlf_blank + 2, crlf_blank + 4
        else:
            head_end, body_start = lf_blank + 1, lf_blank + 2
        length = _content_length(payload[pos:head_end])
        if length is None:
            # A datagram's body runs to its end (RFC 3261 §18.3); a stream needs the length.
            end = body_start if stream else len(payload)
        else:
            end = body_start + length
            if end > len(payload):
                raise _Unreadable("truncated")
        yield payload[pos:end]
        if not stream:
            return
        pos, found = end, True


# -- reading -----------------------------------------------------------------------------------------


def _as_text(line: str | bytes) -> str:
    text = line.decode("utf-8", "surrogateescape") if isinstance(line, bytes) else line
    return text if text.endswith("\n") else text + "\n"


def read_text_trace(
    lines: Iterable[str | bytes],
    *,
    kind: str | None = None,
    stats: CaptureStats | None = None,
    source: str = "trace",
    local_zone: tzinfo | None = None,
    max_record_bytes: int = MAX_RECORD_BYTES,
) -> Iterator[SipPacket]:
    """The SIP messages of a text trace, one record at a time, in the trace's order.

    `lines` as iterating the file gives them (binary keeps every CR; text lines may come with or
    without their line ends; a line arrives whole, so the iterator bounds a single line). `kind`
    is one of FORMATS, or None to tell it from the first DETECT_BYTES. What is skipped is counted
    in `stats` (see the module's rules). Raises InputError for an unknown `kind` at once, and,
    while reading, for input that is no text trace of a known form (or of `kind`).
    """
    if kind is not None and kind not in _FORMS:
        raise InputError(f"{source}: unknown text trace format {shown(str(kind))}",
                         f"give one of {', '.join(FORMATS)}: {_SUPPORTED}")
    return _read(iter(lines), kind, CaptureStats() if stats is None else stats, source, local_zone,
                 max_record_bytes)


def _read(given: Iterator[str | bytes], kind: str | None, stats: CaptureStats, source: str,
          local_zone: tzinfo | None, max_record_bytes: int) -> Iterator[SipPacket]:
    if kind is None:
        head: list[str] = []
        size = 0
        for line in given:
            head.append(_as_text(line))
            size += len(head[-1])
            if size >= DETECT_BYTES:
                break
        kind = detect_text_format("".join(head))
        if kind is None:
            if not "".join(head).strip():
                return  # an empty trace holds no messages; nothing is wrong with it
            raise InputError(f"{source}: not a text trace rtppctl reads (no record head of a known form "
                             f"in its first {DETECT_BYTES // 1024} KB)", f"supported: {_SUPPORTED}")
        texts: Iterator[str] = _chained(head, given)
    else:
        texts = (_as_text(line) for line in given)
    form = _FORMS[kind](local_zone)

    record: list[str] = []
    size = number = 0
    oversized = seen_text = False
    for text in texts:
        content = _line_content(text)
        if form.starts_record(content):
            if record:
                yield from _finish(form, record, number, oversized, stats, followed=True)
            number += 1
            record, size, oversized = [text], len(text), False
            continue
        if not record:
            seen_text = seen_text or bool(content.strip())
            continue  # before the first record: ngrep's preamble, or nothing a form writes
        size += len(text)
        if oversized or size > max_record_bytes:
            oversized = True
            del record[1:]  # the head is kept: -T's sum needs every record's stamp
            continue
        record.append(text)
    if record:
        yield from _finish(form, record, number, oversized, stats, followed=False)
    elif seen_text:
        raise InputError(f"{source}: no {kind} record in it", f"supported: {_SUPPORTED}")


def _chained(head: list[str], rest: Iterator[str | bytes]) -> Iterator[str]:
    yield from head
    head.clear()  # the detection buffer is not kept while the rest is read
    for line in rest:
        yield _as_text(line)


def _finish(form: _Form, lines: list[str], number: int, oversized: bool, stats: CaptureStats,
            *, followed: bool) -> Iterator[SipPacket]:
    stats.frames += 1
    try:
        record = form.read(lines, followed=followed)  # even when oversized: -T's sum needs its stamp
        if oversized:
            raise _Unreadable("oversized_records")
        payload = record.payload
        if not record.line_ends_known and "\r" not in payload:
            payload = payload.replace("\n", "\r\n")
        try:
            data = payload.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # text that no file could have held (lone surrogates)
            raise _Unreadable("truncated") from None
        for message in _messages(data, stream=record.stream):
            stats.sip_messages += 1
            yield SipPacket(record.time, record.src, record.dst, record.transport, message, frame=number)
    except _Unreadable as unreadable:
        counter = "oversized_records" if oversized else unreadable.args[0]
        if counter == "truncated":
            stats.truncated += 1
        else:
            stats.count(counter)
