"""The OpenSIPS flag string (`rtpproxy_offer("swz20")`) read into one value.

This module owns the flag letters of the module's offer/answer/engage functions (docs/protocol.md
§4.2, where the module's flag table is restated): what each letter means, which U/L slot-0
modifier it becomes and in what order. It reads a flag string left to right, case-insensitively as
the module does, except `t` (caller ttl) and `T` (callee ttl), which differ only by case; like the
module it takes `t`/`T` with or without a number, but `z` only with one. The rule it
keeps: a flag string either reads completely into a `Flags` value or is refused with an `InputError`
that names the letter and its position; nothing in it reaches the relay unchecked.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtppctl.proto.command import validate_notify_socket
from rtppctl.proto import limits
from rtppctl.proto.errors import InputError
from rtppctl.proto.text import shown as _shown

#: Every flag letter rtppctl reads, as error messages list them.
KNOWN_FLAGS = "a l k i e f r o c s w n[<SOCKET>] d[PT] t[NN] T[NN] zNN"



@dataclass(frozen=True, kw_only=True)
class Flags:
    """A parsed flag string. `Flags()` is the empty string: every feature off."""

    #: The flag string as given ("" when none).
    text: str = ""
    #: `a`: the sender does not do symmetric RTP (modifier A); implies trust_address.
    asymmetric: bool = False
    #: `l`: force a lookup (`L`) whatever the message type.
    force_lookup: bool = False
    #: `k`: create or update the session but leave the SDP alone (no rewrite, no marker).
    keep_sdp: bool = False
    #: `i`/`e`: bridge-mode interfaces, upper-cased in the order given, e.g. "EI".
    interfaces: str = ""
    #: `f`: go on even when the body already carries the nortpproxy marker.
    ignore_marker: bool = False
    #: `r` (or `a`): send the SDP's own c= address rather than the SIP source address.
    trust_address: bool = False
    #: `o`: rewrite the o= address too.
    rewrite_origin: bool = False
    #: `c`: rewrite the session-level c= even when the media section has its own c=.
    rewrite_session_connection: bool = False
    #: How many `s`/`w` letters were given; each one sends an `S` (the module maps w to S, §15.4).
    symmetric: int = 0
    #: `n`: ask for session timeout notifications.
    notify: bool = False
    #: `n<SOCKET>`: the notify socket between < and >, verbatim; None when not given.
    notify_socket: str | None = None
    #: `d`: catch DTMF (catch_dtmf sub-command).
    dtmf: bool = False
    #: `d<PT>`: the DTMF payload type, 0..127; None lets the relay use its default (101).
    dtmf_payload_type: int | None = None
    #: `t[NN]`: caller ttl in seconds; None when t was not given, or given without a number.
    ttl_caller: int | None = None
    #: `t` without a number (the module accepts it and copies the bare letter).
    ttl_caller_bare: bool = False
    #: `T[NN]`: callee ttl in seconds; None when T was not given, or given without a number.
    ttl_callee: int | None = None
    #: `T` without a number.
    ttl_callee_bare: bool = False
    #: `zNN`: repacketize to NN milliseconds, 1..999.
    repacketize_ms: int | None = None
    #: The U/L slot-0 letters in the order the module writes them while reading the flags:
    #: a -> A, i -> I, e -> E, s/w -> S (so "swz20" gives "SS", "aie" gives "AIE", "ei" gives "EI").
    slot0: str = ""

    @property
    def ttl_modifiers(self) -> str:
        """The slot-3 ttl modifiers, caller first, e.g. "t30T20", "t" or "tT20"; "" when none was given."""
        return _ttl_modifier("t", self.ttl_caller, self.ttl_caller_bare) + _ttl_modifier(
            "T", self.ttl_callee, self.ttl_callee_bare
        )


def _ttl_modifier(letter: str, seconds: int | None, bare: bool) -> str:
    if seconds is not None:
        return f"{letter}{seconds}"
    return letter if bare else ""


def _digits(text: str, start: int) -> str:
    """The run of ASCII digits at `start` ("" when there is none); str.isdigit would take '²'."""
    end = start
    while end < len(text) and "0" <= text[end] <= "9":
        end += 1
    return text[start:end]


def _number(text: str, digits: str, letter: str, position: int, low: int, high: int, what: str) -> int:
    # Leading zeros go first; a run still longer than `high` has digits cannot be in range, and
    # checking the length keeps int() away from runs long enough to hit Python's digit limit.
    significant = digits.lstrip("0") or "0"
    if len(significant) > len(str(high)) or not low <= int(significant) <= high:
        shown = digits if len(digits) <= 12 else digits[:12] + "..."
        raise InputError(
            f"flag {letter}{shown} at position {position} in {_shown(text)}: {what} must be {low}..{high}"
        )
    return int(significant)


def parse_flags(text: str | None) -> Flags:
    """Read a flag string as the module does; None or "" gives `Flags()`."""
    if text is None:
        return Flags()
    if not isinstance(text, str):
        raise InputError(f"flags must be text, not {type(text).__name__} ({text!r})")
    for index, char in enumerate(text):
        if char.isspace():
            raise InputError(
                f"flags {_shown(text)} contain whitespace at position {index + 1}",
                "write the flags as one word, e.g. swz20",
            )

    values: dict[str, object] = {}
    interfaces: list[str] = []
    slot0: list[str] = []
    symmetric = 0
    index = 0
    while index < len(text):
        char = text[index]
        position = index + 1
        index += 1
        # t and T are two flags; every other letter is read case-insensitively. Only ASCII is
        # folded: 'İ'.lower() is two characters and no flag letter is outside ASCII anyway.
        letter = char if char in "tT" or not char.isascii() else char.lower()
        if letter == "a":
            values["asymmetric"] = True
            slot0.append("A")
        elif letter == "l":
            values["force_lookup"] = True
        elif letter == "k":
            values["keep_sdp"] = True
        elif letter in ("i", "e"):
            interfaces.append(letter.upper())
            slot0.append(letter.upper())
        elif letter == "f":
            values["ignore_marker"] = True
        elif letter == "r":
            values["trust_address"] = True
        elif letter == "o":
            values["rewrite_origin"] = True
        elif letter == "c":
            values["rewrite_session_connection"] = True
        elif letter in ("s", "w"):
            symmetric += 1
            slot0.append("S")
        elif letter == "n":
            values["notify"] = True
            if index < len(text) and text[index] == "<":
                close = text.find(">", index + 1)
                if close < 0:
                    raise InputError(
                        f"flag n at position {position} in {_shown(text)}: '<' has no closing '>'",
                        "write the socket as n<tcp:127.0.0.1:9999>",
                    )
                # A later n<...> replaces an earlier one, as a later setting does in the module.
                values["notify_socket"] = validate_notify_socket(text[index + 1 : close])
                index = close + 1
        elif letter == "d":
            values["dtmf"] = True
            digits = _digits(text, index)
            if digits:
                values["dtmf_payload_type"] = _number(text, digits, "d", position, 0, 127, "the payload type")
                index += len(digits)
        elif letter == "z":
            digits = _digits(text, index)
            if not digits:
                raise InputError("flag z needs a number of milliseconds, e.g. z20")
            index += len(digits)
            values["repacketize_ms"] = _number(text, digits, "z", position, 1, 999, "the packet time (ms)")
        elif letter in ("t", "T"):
            # The number is optional, as in the module; a later t (or T) replaces an earlier one.
            digits = _digits(text, index)
            index += len(digits)
            field = "ttl_caller" if letter == "t" else "ttl_callee"
            values[field] = (
                _number(text, digits, letter, position, 1, limits.MAX_TTL, "the ttl (seconds)") if digits else None
            )
            values[field + "_bare"] = not digits
        else:
            # A deliberate difference: the module copies an unknown letter into the U/L modifiers
            # and the relay then refuses the whole command with E35 (docs/protocol.md §15.5). Saying so
            # here, before anything is sent, is the more useful answer.
            raise InputError(
                f"unknown flag {char!r} at position {position} in {_shown(text)} (known: {KNOWN_FLAGS})",
                "the relay would refuse an unknown modifier with E35",
            )

    if values.get("asymmetric"):
        values["trust_address"] = True  # the module sets r along with a
    return Flags(
        text=text,
        interfaces="".join(interfaces),
        symmetric=symmetric,
        slot0="".join(slot0),
        **values,  # type: ignore[arg-type]
    )


__all__ = ["KNOWN_FLAGS", "Flags", "parse_flags"]
