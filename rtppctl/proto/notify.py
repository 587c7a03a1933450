"""The relays' notifications (docs/protocol.md §9, §16.3): where they are sent, and what arrives there as
events, through an incremental parser; no I/O.

`parse_notify_socket` reads the notification socket as the module's `rtpp_notify_socket` takes it
(§9.1): `tcp:IPv4:PORT` (an IPv4 literal: the module binds it with inet_addr), `unix:/path` or a
bare absolute `/path`. The config key and `listen`'s SOCKET are both read by it, so a socket the
config accepts is one the listener can bind, and the other way round.

RTPProxy sends, on one stream connection per target, one line per notification: the decoded
notify tag alone when a session times out, or `<dtmf tag> <digit> <volume> <duration> <stream>`
when the catch_dtmf module saw a digit end. `NotifyParser` takes bytes as they arrive, in any
pieces, and gives back events, in the manner of h11: `feed(data)` returns the events of the lines
completed so far, and a partial line waits for the next piece. The rules it keeps:

- Lines end at `\\n` (a `\\r` before it is dropped); a line longer than `max_line` bytes is one
  `Overlong` event and the rest of it, up to the next `\\n`, is skipped, so a peer sending an
  endless line costs bounded memory.
- A line is told by its first byte, as the module's notification process does
  (OpenSIPS `modules/rtpproxy/notification_process.c`, `notification_handler`): `T` is a timeout,
  `D` DTMF, `I` the placeholder the module ignores, and any other first byte is `Unknown`, never a
  timeout (the module logs "Unhandled command" and drops it).
- A timeout line is `T<h_entry>.<h_id>` for the module's dialog tags (each number written in
  OpenSIPS's reversed hex, decoded here) or any other `T` tag, given back as received (the relay has
  already URL-decoded it). A DTMF line is split from the right, so a tag with spaces in it (an
  OpenSIPS `c<callid>` tag goes out raw) still gives the right digit, volume, duration and stream; a
  `D` line without them is `Unknown`.
- Any byte may arrive, NUL included: the relay writes the decoded tag back unescaped
  (RTPProxy `src/rtpp_notify.c` copies it with memcpy). Text fields are the line decoded as UTF-8
  with invalid bytes replaced (U+FFFD), `raw` keeps the exact bytes; nothing here raises.

Events are named tuples: a relay may send tens of thousands a second, and they are made per line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from rtppctl.proto import limits
from rtppctl.proto.errors import InputError
# catch_dtmf writes an RFC 4733 event 0-15 as that event's key, and ignores the others (§9.3).
from rtppctl.proto.rtp import DTMF_DIGITS
from rtppctl.proto.text import ip_literal

#: The module closes a connection on a line longer than 255 bytes (§9.1); rtppctl's own tags are
#: longer (percent-decoded Call-IDs), so it takes up to this many before it gives up on a line.
MAX_LINE = 4096

_INT = re.compile(r"-?[0-9]{1,9}")

# -- the socket --------------------------------------------------------------------------------------

#: The forms a notification socket takes, for messages.
NOTIFY_SOCKET_FORMS = 'tcp:IPv4:PORT, unix:/PATH or /PATH, e.g. "tcp:127.0.0.1:9999"'
_PORT_DIGITS = re.compile(r"[0-9]{1,5}")


@dataclass(frozen=True)
class NotifySocket:
    """Where notifications go: ("tcp", host, port) or ("unix", path)."""

    kind: str
    host: str | None = None
    port: int | None = None
    path: str | None = None

    @property
    def text(self) -> str:
        """As RTPProxy's `-n` and the U command write it."""
        return f"tcp:{self.host}:{self.port}" if self.kind == "tcp" else f"unix:{self.path}"


def parse_notify_socket(text: str) -> NotifySocket:
    """`tcp:IPv4:PORT`, `unix:/path` or a bare `/path`, as `rtpp_notify_socket` takes them (§9.1);
    InputError naming what is wrong otherwise. No whitespace anywhere: the socket travels as one
    argument of U and is compared with the relay's `-n` byte for byte."""
    if not isinstance(text, str) or not text or any(char.isspace() for char in text):
        raise InputError(f"notification socket {text!r}: write {NOTIFY_SOCKET_FORMS}",
                         "no spaces: the socket is one argument of U, compared with the relay's -n byte for byte")
    if text.startswith("tcp:"):
        host, sep, port = text[4:].rpartition(":")
        address = ip_literal(host)
        if not sep or address is None or address.version != 4:
            raise InputError(f"notification socket {text!r}: write tcp:IPv4:PORT, e.g. tcp:127.0.0.1:9999",
                             "the module binds an IPv4 literal only (inet_addr)")
        if not _PORT_DIGITS.fullmatch(port) or not limits.MIN_PORT <= int(port) <= limits.MAX_PORT:
            raise InputError(f"notification socket {text!r}: the port must be {limits.MIN_PORT}..{limits.MAX_PORT}")
        return NotifySocket("tcp", host, int(port))
    path = text.removeprefix("unix:")
    if not path.startswith("/"):
        raise InputError(f"notification socket {text!r}: write {NOTIFY_SOCKET_FORMS}",
                         "a unix socket is given by its absolute path")
    return NotifySocket("unix", path=path)


# -- the lines ---------------------------------------------------------------------------------------


def reverse_hex_value(text: str) -> int | None:
    """The number OpenSIPS's int2reverse_hex wrote as `text` (lower-case hex, least significant
    digit first); None when `text` is not one."""
    # isalnum() keeps out what int() would take besides hex digits (signs, spaces, underscores).
    if not 0 < len(text) <= 8 or not text.isalnum() or text != text.lower():
        return None
    try:
        return int(text[::-1], 16)
    except ValueError:
        return None


def dialog_id(text: str) -> tuple[int, int] | None:
    """(h_entry, h_id) of `<rhex>.<rhex>`, else None."""
    entry, dot, ident = text.partition(".")
    if not dot:
        return None
    first, second = reverse_hex_value(entry), reverse_hex_value(ident)
    return None if first is None or second is None else (first, second)


class Timeout(NamedTuple):
    """A session's ttl ran out: the tag sent with U, as the relay decoded it."""

    tag: str
    #: (h_entry, h_id) when the tag is the module's `T<did>`, else None.
    dialog: tuple[int, int] | None
    raw: bytes
    kind: str = "timeout"


class Dtmf(NamedTuple):
    """A digit ended (E_RTPPROXY_DTMF): the module's parameters, plus the tag as received."""

    tag: str
    digit: str
    volume: int
    duration: int
    #: 0: the session creator's side (the caller) sent it; 1: the other side.
    stream: int
    #: The Call-ID (`Dc<callid>`) or dialog id (`Dd<did>`), without the `Dc`/`Dd`.
    id: str
    #: True for a Call-ID, False for a dialog id (the event's is_callid).
    is_callid: bool
    raw: bytes
    kind: str = "dtmf"


class Ignored(NamedTuple):
    """`I`: the placeholder tag sent when only DTMF was asked for; the module ignores it."""

    raw: bytes
    kind: str = "ignored"


class Unknown(NamedTuple):
    """A line that is none of the above, kept as received."""

    raw: bytes
    reason: str
    kind: str = "unknown"


class Overlong(NamedTuple):
    """A line longer than the parser takes; its first bytes, and how many were skipped."""

    raw: bytes
    skipped: int
    kind: str = "overlong"


Event = Timeout | Dtmf | Ignored | Unknown | Overlong


def parse_line(line: bytes) -> Event:
    """One complete line (without its `\n`) as an event."""
    text = line.decode("utf-8", "replace")
    first = text[:1]
    if first == "T":
        # A timeout carries exactly the tag sent with U; the module's own are T<h_entry>.<h_id>.
        return Timeout(text, dialog_id(text[1:]), line)
    if first == "D":
        dtmf = _dtmf(text, line)
        return dtmf if dtmf is not None else Unknown(line, "a D line without digit, volume, duration and stream")
    if first == "I":
        # The module ignores every line that starts with I, not only a bare "I".
        return Ignored(line)
    if not text:
        return Unknown(line, "empty line")
    # The module dispatches on the first byte and only T ends a dialog: a tag that starts with
    # anything else was never a timeout tag (rtppctl's and OpenSIPS's all start with T).
    return Unknown(line, "neither a timeout (T...), DTMF (D...) nor the placeholder I")


def _dtmf(text: str, line: bytes) -> Dtmf | None:
    parts = text.rsplit(" ", 4)
    if len(parts) != 5:
        return None
    tag, digit, volume, duration, stream = parts
    if len(tag) < 2 or len(digit) != 1 or digit not in DTMF_DIGITS:
        return None
    if not (_INT.fullmatch(volume) and _INT.fullmatch(duration) and stream in ("0", "1")):
        return None
    kind = tag[1]
    return Dtmf(tag, digit, int(volume), int(duration), int(stream), tag[2:], kind == "c", line)


class NotifyParser:
    """Bytes in, events out, for one peer's connection."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self._buffer = bytearray()
        #: Bytes of an overlong line dropped so far (its head is kept for the event).
        self._skipping: int | None = None
        self._head = b""

    @property
    def buffered(self) -> int:
        """Bytes held for a line not yet complete."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        if self._skipping is not None:
            # The rest of an overlong line: dropped up to its end.
            end = data.find(b"\n")
            if end < 0:
                self._skipping += len(data)
                return events
            events.append(Overlong(self._head, self._skipping + end))
            self._skipping, self._head = None, b""
            data = data[end + 1:]
        chunk = bytes(self._buffer) + data if self._buffer else data
        self._buffer.clear()
        lines = chunk.split(b"\n")
        rest = lines.pop()
        limit = self.max_line
        append = events.append
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if len(line) > limit:
                append(Overlong(line[:64], len(line)))
            else:
                append(parse_line(line))
        if len(rest) > limit:
            self._head, self._skipping = rest[:64], len(rest)
        else:
            self._buffer += rest
        return events

    def close(self) -> list[Event]:
        """The connection ended: a line left without its `\\n` is reported, not lost."""
        if self._skipping is not None:
            event: list[Event] = [Overlong(self._head, self._skipping)]
        elif self._buffer:
            event = [Unknown(bytes(self._buffer), "cut off: the connection ended inside a line")]
        else:
            event = []
        self._buffer.clear()
        self._skipping, self._head = None, b""
        return event


__all__ = ["Dtmf", "Event", "Ignored", "MAX_LINE", "NOTIFY_SOCKET_FORMS", "NotifyParser", "NotifySocket", "Overlong",
           "Timeout", "Unknown", "dialog_id", "parse_line", "parse_notify_socket", "reverse_hex_value"]
