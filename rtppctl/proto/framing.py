"""How commands and replies are framed on RTPProxy's control sockets (docs/protocol.md §1.2).

Three framings, one per transport family, and nothing else: datagrams (`udp:`, `udp6:`) carry
`<cookie> SP <command>` and come back as `<cookie> SP <reply>\\n`; persistent streams (`tcp:`,
`tcp6:`, `cunix:`) carry `<command>\\n` and return newline-terminated replies in order; the one-shot
`unix:` socket takes the bare command and answers once. Every reply is one line except the `I`
report, whose end this module recognises so a stream reader never stops early or waits forever.
The cookie sequence lives here too, because the cookie's shape is part of the framing; choosing
its random prefix is I/O and belongs to the net layer. Pure: bytes in, values out.
"""

from __future__ import annotations

import itertools

#: First line of every `I` report (docs/protocol.md §12.2); anything else means a one-line answer.
_INFO_FIRST_LINE = b"sessions created:"
#: Last line of a plain `I` / `Ib` report.
_INFO_LAST_LINE = b"packets transmitted:"
#: Last line of an `I` report asked for with the `l` modifier.
_INFO_LAST_LINE_LOAD = b"average load:"


def encode_datagram(cookie: str, command: str) -> bytes:
    """`<cookie> <command>` with no trailing newline, the way the OpenSIPS module sends it."""
    return f"{cookie} {command}".encode()


def datagram_reply_prefix(cookie: str) -> bytes:
    """What the reply to a datagram sent with `cookie` starts with: the cookie and one space.

    The engine echoes the cookie followed by exactly one space; everything after it, final newline
    included, is the reply body. Anything else (another cookie, garbage) answers something else.
    """
    return f"{cookie} ".encode()


def encode_stream(command: str) -> bytes:
    """A command on a persistent stream: newline-terminated, no cookie."""
    return f"{command}\n".encode()


def encode_oneshot(command: str) -> bytes:
    """A command on the one-shot `unix:` socket: the bare command, as the module sends it."""
    return command.encode()


def _info_last_line(command: str) -> bytes | None:
    """The line that ends the reply to an `I` command, or None when `command` is not `I`."""
    command = command.lstrip()
    if command[:1] not in ("I", "i"):
        return None
    modifiers = command.split(None, 1)[0][1:].lower()
    return _INFO_LAST_LINE_LOAD if "l" in modifiers else _INFO_LAST_LINE


def reply_length(command: str, buffer: bytes) -> int | None:
    """How many bytes at the start of `buffer` make the whole reply to `command`; None: read more.

    Only `I` answers with several lines. An `E<n>` line, or any first line that is not the start of
    an `I` report, is taken as the whole reply so that an unexpected answer cannot hang the reader.
    """
    first_end = buffer.find(b"\n")
    if first_end < 0:
        return None
    if not buffer.startswith(_INFO_FIRST_LINE):
        return first_end + 1
    last_line = _info_last_line(command)
    if last_line is None:
        return first_end + 1
    start = first_end + 1
    while True:
        end = buffer.find(b"\n", start)
        if end < 0:
            return None
        if buffer.startswith(last_line, start):
            return end + 1
        start = end + 1


class CookieSequence:
    """Cookies `<prefix>_<n>` with n counting from 1; unique as long as the prefix is.

    The engine caches replies by cookie and answers a repeat from that cache without running the
    command again, which makes retransmits safe and makes a reused cookie silently wrong.
    """

    __slots__ = ("prefix", "_counter")

    def __init__(self, prefix: str) -> None:
        if not prefix or any(ch.isspace() for ch in prefix):
            # The engine takes the first whitespace-delimited token as the cookie.
            raise ValueError(f"cookie prefix must be one non-empty token, not {prefix!r}")
        self.prefix = prefix
        self._counter = itertools.count(1)

    def next(self) -> str:
        """The next cookie; itertools.count makes this atomic under the GIL."""
        return f"{self.prefix}_{next(self._counter)}"
