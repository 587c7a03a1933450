"""Every RTPProxy control command rtppctl sends, and every reply it reads.

This module owns the wire text of the control protocol (docs/protocol.md §2, §4-§9, §12, §16):
the capability dates, the U/L modifier slots, one validator per kind of token, one encoder per
command letter rtppctl sends (V VF U L D P S R C N Q G I), the catch_dtmf `&&` sub-command, the
counters `Q` answers, and one decoder per reply shape. The rule it keeps: nothing a user gives can
change a command's meaning. Every value is checked against what the relay's parser makes of it
(§16) before it becomes one argument, so it cannot add an argument, a sub-command, a media number
or a second command line, leave the relay's record directory or send a copy where the relay
cannot, or push the command past the relay's buffer. A decoder raises nothing but `RtppctlError`
subclasses, whatever the relay sent, and every number it gives passes one bounded reader
(`relay_number`): 64-bit integers and finite floats. Encoders return the command without cookie
and without trailing newline: framing belongs to the transport.
"""

from __future__ import annotations

import ipaddress
import re
import string
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from rtppctl.proto import limits
from rtppctl.proto.errors import InputError, MalformedReply, ProxyError
from rtppctl.proto.text import ip_literal
from rtppctl.proto.text import shown as _shown

# --------------------------------------------------------------------------------------------
# Tokens (docs/protocol.md §16)

#: Longest token accepted from a user, in UTF-8 bytes. The module's reply buffer is 256 bytes and
#: RTPProxy's stream reader stops at 255 without a newline, so anything longer cannot be sane.
MAX_TOKEN_LENGTH = 255

#: Longest notify or DTMF tag, in bytes once the relay has URL-decoded it. The relay writes the
#: decoded tag into its notification lines: the module's listener drops lines over 255 bytes, and
#: catch_dtmf appears to over-read a 512-byte buffer for tags over about 480 (§16.3).
MAX_NOTIFY_TAG_LENGTH = 255

#: The relay reads a command into an 8192-byte buffer: a longer datagram is cut short and still run,
#: a longer stream line drops the connection (§16.1). Every command rtppctl sends, encoded or typed
#: by hand (`raw`), stays under this, with COOKIE_ALLOWANCE bytes kept for the cookie and its
#: separator that the transport adds.
MAX_COMMAND_BYTES = 8191
COOKIE_ALLOWANCE = 40

#: The relay's tokeniser keeps at most 23 tokens per command or sub-command (the cookie not counted).
MAX_TOKENS_PER_COMMAND = 23

#: The error code of a command for a session the relay does not have (SESUNKN, §12.4).
SESSION_NOT_FOUND = 50

#: At most this many `&&` sub-commands follow one command.
MAX_SUBCOMMANDS = 15

#: RTPProxy treats an argument that is exactly `&&` as the start of a sub-command.
_SUBCOMMAND_SEPARATOR = "&&"

#: In a tag, `;` starts the media number; the encoders add `;N` themselves.
_MEDIANUM_SEPARATOR = ";"

#: The relay's own separators (§16.1): nothing else splits a command into tokens.
_RELAY_SEPARATORS_RE = re.compile(r"[ \t\r\n]+")

#: What a notify or DTMF tag keeps as it is; every other byte is sent as %XX (§16.4 rule 3).
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "._~-")


#: Printable ASCII without (or with) the space: nothing in it is refused, so the character-by-character
#: walk below (which finds and names the first bad character) is skipped for the usual token.
_PLAIN_TOKEN_RE = re.compile(r"[\x21-\x7e]+")
_PLAIN_TEXT_RE = re.compile(r"[\x20-\x7e]+")


def _check_characters(value: str, what: str, *, allow_space: bool = False) -> None:
    """Refuse non-text, empty values, whitespace, control and format characters, lone surrogates."""
    if isinstance(value, str) and (_PLAIN_TEXT_RE if allow_space else _PLAIN_TOKEN_RE).fullmatch(value):
        return
    if not isinstance(value, str):
        raise InputError(f"{what} must be text, not {type(value).__name__} ({value!r})",
                         f"give the {what} as a string")
    if not value:
        raise InputError(f"{what} is empty", f"give a non-empty {what}: the relay would drop it and "
                         "read every later argument one place early")
    for index, char in enumerate(value):
        if char.isspace() and not (allow_space and char == " "):
            raise InputError(
                f"{what} {_shown(value)} contains whitespace ({char!r} at position {index})",
                "the control protocol separates arguments with whitespace; remove it",
            )
        category = unicodedata.category(char)
        if char == "\x00" or category in ("Cc", "Cf"):
            raise InputError(
                f"{what} {_shown(value)} contains the control character {char!r} at position {index}",
                "control characters cannot be sent to the relay; remove them",
            )
        if category == "Cs":
            raise InputError(f"{what} {_shown(value)} contains a lone surrogate {char!r} (not valid UTF-8)",
                             "give the value as proper text")


def _check_size(value: str, what: str, max_length: int) -> None:
    size = len(value.encode("utf-8"))
    if size > max_length:
        raise InputError(
            f"{what} {_shown(value)} is {size} bytes long; the limit is {max_length}",
            f"use a {what} of at most {max_length} bytes",
        )


def validate_token(value: str, what: str, *, max_length: int = MAX_TOKEN_LENGTH) -> str:
    """Return `value` if it can travel as exactly one protocol argument, else raise InputError.

    Refused: non-strings, empty values, any whitespace (unicode spaces and line separators too),
    control and format characters (NUL, DEL, zero-width marks), lone surrogates (not encodable),
    a bare `&&` (it would start a sub-command), and values longer than `max_length` UTF-8 bytes.
    This is the rule every kind of token shares; the validators below add what their kind means
    to the relay.
    """
    if value.__class__ is str and len(value) <= max_length and _PLAIN_TOKEN_RE.fullmatch(value) and value != _SUBCOMMAND_SEPARATOR:
        return value  # printable ASCII (a byte a character) within the limit: the usual token
    _check_characters(value, what)
    if value == _SUBCOMMAND_SEPARATOR:
        raise InputError(f"{what} cannot be '&&': RTPProxy reads it as the start of a sub-command",
                         f"give another {what}")
    _check_size(value, what, max_length)
    return value


def validate_call_id(call_id: str) -> str:
    """A Call-ID: any single token; the relay compares it byte for byte."""
    return validate_token(call_id, "call-id")


def validate_tag(tag: str, what: str = "tag") -> str:
    """A From or To tag, bare: `;` is refused because the relay reads what follows it as the media
    number (`f;2` sent as `f;2;1` would be tag `f`, stream 2); the encoders add `;N` themselves."""
    validate_token(tag, what)
    if _MEDIANUM_SEPARATOR in tag:
        raise InputError(
            f"{what} {_shown(tag)} contains ';' at position {tag.index(';')}: the relay reads what "
            "follows it as a media number",
            "give the bare tag; the media number is a separate argument and rtppctl adds ';N' itself",
        )
    return tag


def validate_record_name(value: str, what: str) -> str:
    """A call-id or tag that the relay puts into a file name (R): the file is
    `<record dir>/<call-id>=<tag>...`, written unescaped (§16.2, src/rtpp_record.c), so `/`, `..`
    and a leading `.` or `~` are refused."""
    validate_token(value, what)
    _check_file_name(value, what)
    return value


def _check_file_name(value: str, what: str) -> None:
    """Refuse what would take a name the relay joins to its record directory out of it."""
    problem = None
    if "/" in value:
        problem = "contains '/'"
    elif ".." in value:
        problem = "contains '..'"
    elif value[:1] in (".", "~"):
        problem = f"starts with {value[0]!r}"
    if problem:
        raise InputError(
            f"{what} {_shown(value)} {problem}: the relay would write outside its record directory",
            "give a plain file name" if what == "copy target" else
            "such values usually come from captured SIP traffic; record this call by other means",
        )


def validate_media_number(medianum: int) -> int:
    """The `;N` stream number of a tag: 1 for the first m= line the module proxies, then 2, ..."""
    return _int_in(medianum, "media number", 1, limits.MAX_MEDIA_NUMBER)


def _numbered_tag(tag: str, what: str, medianum: int | None) -> str:
    """`tag;N`, or the bare tag when there is no media number."""
    validate_tag(tag, what)
    if medianum is None:
        return tag
    return f"{tag}{_MEDIANUM_SEPARATOR}{validate_media_number(medianum)}"


def validate_notify_socket(socket: str) -> str:
    """The notify socket of U: one token, compared byte for byte with the relay's `-n` values."""
    return validate_token(socket, "notify socket")


def _percent_encode(text: str) -> str:
    """Every UTF-8 byte outside A-Z a-z 0-9 . _ ~ - as %XX, so the relay's URL-decoding (which
    also reads `+` as a space) gives back exactly `text`."""
    return "".join(
        char if char in _UNRESERVED else "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))
        for char in text
    )


def encode_notify_tag(tag: str) -> str:
    """The timeout notify tag as sent on U: `tag` percent-encoded, since the relay URL-decodes it.

    `tag` is the text the notification line will carry. It may hold `%`, `+` and spaces (they are
    encoded), but no other whitespace or control character: the decoded tag is written back
    unescaped as one notification line, so a line feed would forge a second one.
    """
    _check_characters(tag, "notify tag", allow_space=True)
    if tag == _SUBCOMMAND_SEPARATOR:
        # Encoded it would be harmless, but no value rtppctl sends may be `&&` (§16.4 rule 2).
        raise InputError("notify tag cannot be '&&'", "give another notify tag")
    _check_size(tag, "notify tag", MAX_NOTIFY_TAG_LENGTH)
    return _percent_encode(tag)


def encode_dtmf_tag(tag: str) -> str:
    """The catch_dtmf tag (`M3:1 <tag>`) as sent: percent-encoded, since the relay URL-decodes it.

    The decoded tag starts every DTMF notification line, `<tag> <digit> <volume> <duration>
    <stream>`, so besides control characters a space is refused too: it would shift the fields. The
    tag must start with `D`, the letter listeners recognise DTMF lines by.
    """
    _check_characters(tag, "DTMF tag")
    _check_size(tag, "DTMF tag", MAX_NOTIFY_TAG_LENGTH)
    if not tag.startswith("D"):
        raise InputError(
            f"DTMF tag {_shown(tag)} must start with 'D'",
            "DTMF notifications start with their tag, and listeners recognise them by the D (e.g. Dcmycall)",
        )
    return _percent_encode(tag)


def validate_prompt_name(prompt: str) -> str:
    """P's prompt: the operator's own words, passed as they are; the relay opens `<prompt>.<pt>`
    read-only, relative to its working directory."""
    return validate_token(prompt, "prompt name")


#: What makes a C target remote: exactly these four characters, lower case (the relay compares
#: them with strncmp, src/commands/rpcpv1_copy.c); anything else is a file name.
_REMOTE_COPY_PREFIX = "udp:"
#: The relay copies RTCP to PORT+1 and refuses a port above 65534 for it (src/rtpp_record.c,
#: ropen_remote_ctor_pa); the RTP copy's port goes to getaddrinfo unchecked.
MAX_COPY_PORT = 65534
#: Longest file-name target in bytes: the relay appends `.rtcp` (src/rtpp_record.c) and the whole
#: name must fit NAME_MAX (255), or the copy fails with E65.
MAX_COPY_NAME_BYTES = 250
#: `tcp:`, `udp6:`, `UDP:`...: meant as an address, but the relay would make a file of it.
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def is_remote_copy_target(target: str) -> bool:
    """True when the relay sends C's copy over UDP (`udp:IP:PORT`), False when it writes a file."""
    return isinstance(target, str) and target.startswith(_REMOTE_COPY_PREFIX)


def validate_copy_target(target: str) -> str:
    """C's target as sent: `udp:IPv4:PORT` (canonical) sends a copy there, anything else is a file
    name in the relay's record directory.

    The relay (src/commands/rpcpv1_copy.c, src/rtpp_record.c) splits a remote target at its last
    `:`, resolves the host for IPv4 only and connects to PORT for RTP and PORT+1 for RTCP; a file
    target becomes `<record dir>/<target>.rtp` and `.rtcp`, unescaped. So a remote target needs a
    numeric IPv4 address and a port 1..65534 (refused here, where the relay would answer E65 or,
    run with -R, reply 0 and copy nowhere), and a file name must stay one name in the record
    directory: no `/`, no `..`, no leading `.` or `~`, nothing that reads like another scheme.
    """
    validate_token(target, "copy target")
    if is_remote_copy_target(target):
        return _remote_copy_target(target)
    return _copy_file_name(target)


def _remote_copy_target(target: str) -> str:
    host, sep, port = target[len(_REMOTE_COPY_PREFIX):].rpartition(":")
    form = "give udp:IPv4:PORT, e.g. udp:192.0.2.10:40000"
    if not sep:
        raise InputError(f"copy target {_shown(target)} has no port", form)
    if not host:
        raise InputError(f"copy target {_shown(target)} has no host", form)
    if host.startswith("[") or ":" in host:
        raise InputError(f"copy target {_shown(target)}: the relay copies over IPv4 only",
                         "give an IPv4 address the relay can reach, e.g. udp:192.0.2.10:40000")
    address = ip_literal(host)
    if address is None:
        raise InputError(f"copy target {_shown(target)}: {_shown(host)} is not a numeric IPv4 address",
                         "the relay would look the name up on its own host; " + form)
    if address.is_unspecified:
        raise InputError(f"copy target {_shown(target)}: {host} is not an address packets can go to", form)
    if not _PORT_DIGITS_RE.fullmatch(port):
        raise InputError(f"copy target {_shown(target)}: port {_shown(port)} is not a decimal number "
                         f"{limits.MIN_PORT}..{MAX_COPY_PORT}", form)
    number = int(port)
    if not limits.MIN_PORT <= number <= MAX_COPY_PORT:
        raise InputError(f"copy target {_shown(target)}: port {number} is out of range "
                         f"{limits.MIN_PORT}..{MAX_COPY_PORT}",
                         f"the relay sends RTP to PORT and RTCP to PORT+1, so PORT is at most {MAX_COPY_PORT}")
    return f"{_REMOTE_COPY_PREFIX}{address}:{number}"


def _copy_file_name(target: str) -> str:
    scheme = _SCHEME_RE.match(target)
    if scheme:
        raise InputError(
            f"copy target {_shown(target)} starts with {scheme.group(0)!r}: the relay would write a file of "
            "that name, it copies to an address only for 'udp:' (lower case) and IPv4",
            "give udp:IPv4:PORT for a copy over the network, or a plain file name",
        )
    _check_file_name(target, "copy target")
    _check_size(target, "copy target", MAX_COPY_NAME_BYTES)
    return target


_NAME_RE = re.compile(r"[A-Za-z0-9_]{1,64}")


def _name(value: str, what: str) -> str:
    validate_token(value, what)
    if not _NAME_RE.fullmatch(value):
        raise InputError(
            f"{what} {_shown(value)} is not a name of letters, digits and '_'",
            "the relay matches these names exactly, e.g. ttl, npkts_ina, nsess_created",
        )
    return value


def validate_counter_name(name: str) -> str:
    """A Q counter name (`ttl`, `npkts_ina`, `rtpa_nlost`, ...); the relay answers E62 to unknown ones."""
    return _name(name, "counter name")


def validate_stat_name(name: str) -> str:
    """A G statistic name (`nsess_created`, ...); the relay answers E68 to unknown ones."""
    return _name(name, "statistic name")


def _names(values: Iterable[str], what: str, validate: Callable[[str], str]) -> list[str]:
    if isinstance(values, str):
        # A bare string would be iterated character by character: almost certainly a mistake.
        raise InputError(f"{what} must be a list of names, not the single string {values!r}",
                         "give a list, e.g. ['ttl']")
    return [validate(value) for value in values]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_in(value: object, what: str, low: int, high: int | None = None) -> int:
    if not _is_int(value):
        raise InputError(f"{what} must be an integer, not {value!r}", f"give the {what} as a number")
    assert isinstance(value, int)
    if value < low or (high is not None and value > high):
        bounds = f"{low}..{high}" if high is not None else f">= {low}"
        raise InputError(f"{what} {value} is out of range ({bounds})", f"give a {what} in {bounds}")
    return value


def _ip_literal(value: str, what: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    validate_token(value, what)
    if "%" in value:
        raise InputError(f"{what} {_shown(value)} has a zone id; RTPProxy takes plain numeric addresses",
                         "drop the %zone part")
    address = ip_literal(value)
    if address is None:
        raise InputError(
            f"{what} {_shown(value)} is not a numeric IPv4 or IPv6 address",
            "RTPProxy does not resolve names: give an address like 192.0.2.10 or 2001:db8::10",
        )
    return address


def validate_address(value: str, what: str) -> str:
    """`value` if it is a numeric IPv4 or IPv6 address (RTPProxy resolves no names), else InputError."""
    _ip_literal(value, what)
    return value


#: Lengths the relay takes an address of (§16.2); it silently ignores one of any other length.
_ADDRESS_LENGTHS = {4: range(7, 16), 6: range(2, 46)}


def validate_media_address(address: str, *, ipv6: bool) -> str:
    """The media address of U/L: numeric, IPv6 exactly when the command carries the `6` modifier
    (without it the relay reads the address as IPv4, with it as IPv6)."""
    parsed = _ip_literal(address, "media address")
    if (parsed.version == 6) != ipv6:
        if ipv6:
            raise InputError(f"media address {address!r} is IPv4 but the command carries the 6 modifier",
                             "leave out the 6 modifier for an IPv4 address")
        raise InputError(f"media address {address!r} is IPv6 but the command has no 6 modifier",
                         "add the 6 modifier (Modifiers(ipv6=True)) for an IPv6 address")
    if len(address) not in _ADDRESS_LENGTHS[parsed.version]:
        raise InputError(f"media address {address!r} is {len(address)} characters long; the relay "
                         "would ignore it", "write the address in its usual short form")
    return address


_PORT_DIGITS_RE = re.compile(r"[0-9]{1,5}")


def validate_port(port: int | str) -> str:
    """The media port as sent: decimal 1..65535 in canonical form. An int, or a digit string such as
    the SDP's m= port ("04000" is sent as 4000). Port 0 is never sent: a port-0 stream is not
    proxied, and the relay would hand the port to getaddrinfo as it is (a name like `sip` resolves)."""
    if isinstance(port, str):
        if not _PORT_DIGITS_RE.fullmatch(port):
            raise InputError(f"port {_shown(port)} is not a decimal number {limits.MIN_PORT}..{limits.MAX_PORT}",
                             "give the port in decimal digits, e.g. 4000")
        port = int(port)
    return str(_int_in(port, "port", limits.MIN_PORT, limits.MAX_PORT))


def _check_command_size(line: str, hint: str) -> None:
    """Refuse a command the relay's buffer cannot hold whole, with its cookie (§16.1)."""
    size = len(line.encode("utf-8", "surrogatepass"))
    if size + COOKIE_ALLOWANCE >= MAX_COMMAND_BYTES:
        raise InputError(
            f"command {_shown(line)} is {size} bytes; with its cookie it must stay under "
            f"{MAX_COMMAND_BYTES}",
            f"the relay would cut it short and run what is left, or drop the connection: {hint}",
        )


def validate_command(line: str) -> str:
    """A finished command, as an encoder returns it: under MAX_COMMAND_BYTES with COOKIE_ALLOWANCE,
    and at most MAX_TOKENS_PER_COMMAND tokens in the command and in each sub-command."""
    _check_command_size(line, "use shorter values or fewer of them")
    tokens = _RELAY_SEPARATORS_RE.split(line.strip(" \t\r\n"))
    count = 0
    for token in [*tokens, _SUBCOMMAND_SEPARATOR]:
        if token != _SUBCOMMAND_SEPARATOR:
            count += 1
            continue
        if count > MAX_TOKENS_PER_COMMAND:
            raise InputError(
                f"command {_shown(line)} has {count} tokens in one (sub-)command; the relay reads "
                f"at most {MAX_TOKENS_PER_COMMAND}",
                "split it into several commands",
            )
        count = 0
    return line


# --------------------------------------------------------------------------------------------
# Capabilities (VF)


class Capability(NamedTuple):
    """One protocol version date that `VF <date>` asks about (a row of CAPABILITIES)."""

    #: The date as sent after `VF`, eight digits (YYYYMMDD).
    date: str
    #: A short upper-case name, unique in CAPABILITIES (the module's bit name where it has one).
    name: str
    #: What RTPProxy supports when it answers 1, as far as the reference says.
    meaning: str
    #: The OpenSIPS module's capability bit set by this date, or None when the module does not ask.
    module_bit: str | None


BASE_VERSION = "20040107"
EXTENDED_VERSION = "20050322"

#: Every date upstream RTPProxy answers 1 to (docs/protocol.md §2.1), plus 20170313 which the module
#: asks about and upstream answers 0. Meanings come from the reference; where it says nothing the
#: meaning says so rather than guess.
CAPABILITIES: tuple[Capability, ...] = (
    Capability(BASE_VERSION, "BASE", "base protocol (the answer to V)", None),
    Capability(EXTENDED_VERSION, "EXTENDED", "extended protocol (required by the module)", None),
    Capability("20060704", "CAP_20060704", "capability 20060704", None),
    Capability("20071116", "REPACK", "RTP re-packetization (Z<ms> modifier)", "REPACK"),
    Capability("20071218", "RECORD", "stream copying and recording (R, C, N)", "RECORD"),
    Capability("20080403", "STATS", "session statistics (Q command)", "STATS"),
    Capability("20081102", "CODECS", "codec list in U/L (c modifier), used by P ... session", "CODECS"),
    Capability("20081224", "NOTIFY", "session timeout notifications (notify socket and tag on U)", "NOTIFY"),
    Capability("20090810", "AUTOBRIDGE", "automatic bridging (R<addr> modifier)", "AUTOBRIDGE"),
    Capability("20140323", "CAP_20140323", "capability 20140323", None),
    Capability("20140617", "CAP_20140617", "capability 20140617", None),
    Capability("20141004", "CAP_20141004", "capability 20141004", None),
    Capability("20150330", "CAP_20150330", "capability 20150330", None),
    Capability("20150420", "STATS_EXTRA", "Q with counter names, rtpa_* counters", "STATS_EXTRA"),
    Capability("20150617", "NOTIFY_WILD", "%%CC_SELF%% wildcard notify target", "NOTIFY_WILD"),
    Capability("20170313", "TTL_CHANGE", "per-stream ttl modifiers t/T (not in upstream: answers 0)",
               "TTL_CHANGE"),
    Capability("20191015", "SUBCOMMAND", "&& sub-commands", "SUBCOMMAND"),
    Capability("20200226", "CAP_20200226", "capability 20200226", None),
    Capability("20230205", "RTPA_NLOST", "rtpa_nlost counter in Q", None),
    Capability("20230314", "CAP_20230314", "capability 20230314", None),
    Capability("20230424", "CAP_20230424", "capability 20230424", None),
    Capability("20250523", "CAP_20250523", "capability 20250523", None),
    Capability("20251015", "SUBC_SESSION_TTL", "'&& S ttl=<n>' sub-command", None),
    Capability("20260306", "CAP_20260306", "capability 20260306", None),
    Capability("20260308", "SUBC_LOOKUP", "'&& L <addr> <port>' sub-command", None),
    Capability("20260309", "SUBC_COPY", "'&& C <callid> <ftag> <ttag>' sub-command", None),
)

#: The optional capability dates in the order the module probes them (docs/protocol.md §2.1 table),
#: after `V` and the required `VF 20050322`.
MODULE_PROBE_ORDER: tuple[str, ...] = (
    "20071116", "20081102", "20090810", "20081224", "20080403",
    "20150617", "20150420", "20170313", "20071218", "20191015",
)

_CAPABILITY_INDEX: dict[str, Capability] = {
    **{cap.date: cap for cap in CAPABILITIES},
    **{cap.name: cap for cap in CAPABILITIES},
}


def capability(date_or_name: str) -> Capability:
    """The capability with this date (`"20071116"`) or name (`"repack"`, any case)."""
    key = date_or_name.strip().upper() if isinstance(date_or_name, str) else ""
    try:
        return _CAPABILITY_INDEX[key]
    except KeyError:
        names = ", ".join(cap.name for cap in CAPABILITIES if cap.module_bit)
        raise InputError(
            f"unknown capability {date_or_name!r}",
            f"give a date like 20071116 or a name such as {names}",
        ) from None


# --------------------------------------------------------------------------------------------
# U/L modifiers

_SLOT0_LETTERS = "AIESWN"
# Slot 3 as the module copies it: t/T, each with or without its number of seconds.
_TTL_RE = re.compile(r"(?:[tT][0-9]{0,9})*")
_LABEL_RE = re.compile(r"\{[A-Za-z0-9_.\-]+\}")


def _bracketed_address(value: str, what: str, *, allow_label: bool) -> str:
    """The address as RTPProxy wants it inside a modifier: IPv4 bare, IPv6 in brackets."""
    validate_token(value, what)
    if allow_label and _LABEL_RE.fullmatch(value):
        return value
    inner = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    if "%" in inner:
        raise InputError(f"{what} {value!r} has a zone id; RTPProxy takes plain numeric addresses",
                         "drop the %zone part")
    address = ip_literal(inner)
    if address is None:
        extra = " or a {label}" if allow_label else ""
        raise InputError(
            f"{what} {_shown(value)} is not a numeric IP address{extra}",
            "e.g. 192.0.2.1 or [2001:db8::1]",
        )
    if address.version == 6:
        return f"[{inner}]"
    if inner != value:
        raise InputError(f"{what} {value!r}: only IPv6 addresses go in brackets", "write it without brackets")
    return value


@dataclass(frozen=True)
class Modifiers:
    """The letters after `U`/`L`, in RTPProxy's four slots (docs/protocol.md §4.2). Validated on creation."""

    #: Slot-0 letters in the order given, each one of A (asymmetric), I/E (bridge interface),
    #: S (symmetric), W (weak), N (allocate a new port).
    letters: str = ""
    #: `6`: the remote address is IPv6.
    ipv6: bool = False
    #: `l<addr>`: local address to use: IPv4, IPv6 (written in brackets) or `{label}`.
    local_address: str | None = None
    #: `Z<ms>`: re-packetize to this many milliseconds (1..999).
    repacketize_ms: int | None = None
    #: `R<addr>`: pick the local address that reaches this remote IP (IPv6 written in brackets).
    bridge_to: str | None = None
    #: `c<pt>,<pt>,...`: the stream's RTP payload types, used later by `P ... session`.
    codecs: tuple[int, ...] = ()
    #: Slot-3 ttl modifiers as the module copies them, e.g. "t30T20" or a bare "t" (upstream
    #: refuses them: E35).
    ttl: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.letters, str):
            raise InputError(f"modifier letters must be text, not {self.letters!r}", "give letters like 'SS'")
        for char in self.letters:
            if char not in _SLOT0_LETTERS:
                raise InputError(
                    f"unknown modifier letter {char!r} in {_shown(self.letters)}",
                    "U/L slot-0 letters are A, I, E, S, W and N",
                )
        if not isinstance(self.ipv6, bool):
            raise InputError(f"ipv6 must be True or False, not {self.ipv6!r}", "give a bool")
        if self.local_address is not None:
            object.__setattr__(
                self, "local_address",
                _bracketed_address(self.local_address, "local address", allow_label=True),
            )
        if self.repacketize_ms is not None:
            _int_in(self.repacketize_ms, "repacketization time (ms)", 1, 999)
        if self.bridge_to is not None:
            object.__setattr__(
                self, "bridge_to", _bracketed_address(self.bridge_to, "bridge address", allow_label=False)
            )
        if isinstance(self.codecs, (str, bytes)) or not isinstance(self.codecs, Iterable):
            raise InputError(f"codecs must be a sequence of payload type numbers, not {self.codecs!r}",
                             "give e.g. (0, 8, 101)")
        codecs = tuple(self.codecs)
        for pt in codecs:
            _int_in(pt, "payload type", 0, 127)
        if len(set(codecs)) != len(codecs):
            raise InputError(f"duplicate payload type in codecs {codecs!r}", "RTPProxy answers E14 to this")
        object.__setattr__(self, "codecs", codecs)
        if not isinstance(self.ttl, str) or not _TTL_RE.fullmatch(self.ttl):
            raise InputError(f"ttl modifiers {self.ttl!r} must look like t, t30 or t30T20",
                             "t is the caller's ttl, T the callee's, each with an optional number of seconds")

    def encode(self) -> str:
        """The modifier string in slot order, e.g. "SSZ20c18,101"."""
        parts = [self.letters]
        if self.ipv6:
            parts.append("6")
        if self.local_address is not None:
            parts.append("l" + self.local_address)
        if self.repacketize_ms is not None:
            parts.append(f"Z{self.repacketize_ms}")
        if self.bridge_to is not None:
            parts.append("R" + self.bridge_to)
        if self.codecs:
            parts.append("c" + ",".join(str(pt) for pt in self.codecs))
        parts.append(self.ttl)
        return "".join(parts)


# --------------------------------------------------------------------------------------------
# Sub-commands (&&)

_SUBCOMMAND_HOSTS = ("U", "L", "Q")


def dtmf_subcommand(dtmf_tag: str, payload_type: int | None = None, *, module_id: int = 3,
                    instance: int = 1) -> str:
    """catch_dtmf: `M3:1 <dtmf_tag>[ <pt>]`. `dtmf_tag` is the tag as DTMF lines will carry it (it
    starts with D); it is sent percent-encoded, see `encode_dtmf_tag`."""
    _int_in(module_id, "module id", 0)
    _int_in(instance, "module instance", 0)
    words = [f"M{module_id}:{instance}", encode_dtmf_tag(dtmf_tag)]
    if payload_type is not None:
        words.append(str(_int_in(payload_type, "DTMF payload type", 0, 127)))
    return " ".join(words)


def _check_subcommand(text: str) -> str:
    """One sub-command's text: single-space separated tokens, at most MAX_TOKENS_PER_COMMAND."""
    if not isinstance(text, str):
        raise InputError(f"sub-command must be text, not {text!r}", "give the sub-command as a string")
    words = text.split(" ")
    for word in words:
        # Words may be longer than a user token: an encoded DTMF tag takes up to three bytes per
        # byte. The whole command's size is bounded by validate_command.
        validate_token(word, "sub-command word", max_length=MAX_COMMAND_BYTES)
    if len(words) > MAX_TOKENS_PER_COMMAND:
        raise InputError(
            f"sub-command {_shown(text)} has {len(words)} tokens; the relay reads at most {MAX_TOKENS_PER_COMMAND}",
            "give fewer arguments",
        )
    return text


def with_subcommands(command: str, subcommands: Iterable[str]) -> str:
    """`command` followed by ` && <sub>` for each sub-command; only U, L and Q take them."""
    if isinstance(subcommands, str):
        subcommands = (subcommands,)
    subs = [_check_subcommand(sub) for sub in subcommands]
    if not subs:
        return validate_command(command)
    letter = command[:1].upper()
    if letter not in _SUBCOMMAND_HOSTS:
        raise InputError(
            f"sub-commands are allowed only after U, L and Q, not after {command.split(' ')[0]!r}",
            "send it as a command of its own",
        )
    if len(subs) > MAX_SUBCOMMANDS:
        raise InputError(f"{len(subs)} sub-commands; the relay takes at most {MAX_SUBCOMMANDS} after one command",
                         "send the rest after another command")
    return validate_command(command + "".join(" && " + sub for sub in subs))


# --------------------------------------------------------------------------------------------
# Encoders
#
# Tags are given bare. U, L, P, S, Q and C take an optional media number and send `<tag>;<N>`
# (the module always sends one, §15.13); D, R and N take bare tags only, which the relay matches
# against every stream of the call (§5, §12.1).

_DATE_RE = re.compile(r"[0-9]{8}")
_CODEC_LIST_RE = re.compile(r"[0-9]{1,3}(?:,[0-9]{1,3})*")
MAX_QUERY_COUNTERS = 11


def _tags(from_tag: str, to_tag: str | None, medianum: int | None = None) -> list[str]:
    """The tag arguments; a to-tag of None or "" is left out (an empty argument would vanish)."""
    tags = [_numbered_tag(from_tag, "from-tag", medianum)]
    if to_tag is not None and to_tag != "":
        tags.append(_numbered_tag(to_tag, "to-tag", medianum))
    return tags


def _recorded(call_id: str, from_tag: str, to_tag: str | None) -> None:
    """Refuse a call-id or tag that would take a record file outside the record directory."""
    validate_record_name(call_id, "call-id")
    validate_record_name(from_tag, "from-tag")
    if to_tag:
        validate_record_name(to_tag, "to-tag")


def validate_codec_list(codecs: str | Iterable[int]) -> str:
    """P's codecs argument: `session`, or payload types 0..127 (given as "0,8" or (0, 8)) written
    as digits and commas."""
    if isinstance(codecs, str):
        if codecs == "session":
            return codecs
        if not _CODEC_LIST_RE.fullmatch(codecs):
            raise InputError(f"codecs {_shown(codecs)} must be 'session' or a list like 0,8",
                             "payload types in decimal, separated by commas, no spaces")
        pts: tuple[object, ...] = tuple(int(pt) for pt in codecs.split(","))
    else:
        if isinstance(codecs, bytes) or not isinstance(codecs, Iterable):
            raise InputError(f"codecs must be 'session' or payload type numbers, not {codecs!r}",
                             "use 'session' or a list like (0, 8)")
        pts = tuple(codecs)
        if not pts:
            raise InputError("codecs must not be empty", "use 'session' or a list like (0, 8)")
    return ",".join(str(_int_in(pt, "payload type", 0, 127)) for pt in pts)


def version() -> str:
    """`V`: the base protocol version."""
    return "V"


def version_feature(date: str) -> str:
    """`VF <date>`: does the relay support this capability date?"""
    if not isinstance(date, str) or not _DATE_RE.fullmatch(date):
        raise InputError(f"capability date {date!r} must be eight digits (YYYYMMDD)", "e.g. 20071116")
    return f"VF {date}"


def _update_lookup(letter: str, call_id: str, address: str, port: int | str, tags: list[str],
                   modifiers: Modifiers | None, extra: list[str], subcommands: Iterable[str]) -> str:
    if modifiers is not None and not isinstance(modifiers, Modifiers):
        raise InputError(f"modifiers must be a Modifiers value, not {modifiers!r}", "build them with Modifiers(...)")
    mods = modifiers.encode() if modifiers else ""
    validate_media_address(address, ipv6=bool(modifiers and modifiers.ipv6))
    words = [letter + mods, validate_call_id(call_id), address, validate_port(port), *tags, *extra]
    return with_subcommands(" ".join(words), subcommands)


def update(call_id: str, address: str, port: int | str, from_tag: str, to_tag: str | None = None, *,
           medianum: int | None = None, modifiers: Modifiers | None = None, notify_socket: str | None = None,
           notify_tag: str | None = None, subcommands: Iterable[str] = ()) -> str:
    """`U`: create or update the session; carries the first tag's media address.

    Tags are bare; with `medianum` each goes out as `<tag>;<medianum>`. `notify_tag` is the text
    the timeout notification will carry; it is sent percent-encoded (`encode_notify_tag`).
    """
    tags = _tags(from_tag, to_tag, medianum)
    if (notify_socket is None) != (notify_tag is None):
        raise InputError("notify socket and notify tag go together: give both or neither",
                         "add the missing one, or drop both")
    extra = []
    if notify_socket is not None and notify_tag is not None:
        extra = [validate_notify_socket(notify_socket), encode_notify_tag(notify_tag)]
    return _update_lookup("U", call_id, address, port, tags, modifiers, extra, subcommands)


def lookup(call_id: str, address: str, port: int | str, from_tag: str, to_tag: str | None, *,
           medianum: int | None = None, modifiers: Modifiers | None = None,
           subcommands: Iterable[str] = ()) -> str:
    """`L`: answer side of a session; carries the second tag's media address. Never notify args."""
    return _update_lookup("L", call_id, address, port, _tags(from_tag, to_tag, medianum), modifiers, [],
                          subcommands)


def _session_command(head: str, call_id: str, from_tag: str, to_tag: str | None,
                     medianum: int | None = None) -> str:
    return validate_command(" ".join([head, validate_call_id(call_id), *_tags(from_tag, to_tag, medianum)]))


def delete(call_id: str, from_tag: str, to_tag: str | None = None, *, weak: bool = False) -> str:
    """`D` / `Dw`: delete every stream of the session (weak: only drop the weak flag). Bare tags."""
    return _session_command("Dw" if weak else "D", call_id, from_tag, to_tag)


def play(call_id: str, prompt: str, from_tag: str, to_tag: str | None = None, *, medianum: int | None = None,
         codecs: str | tuple[int, ...] = "session", count: int = 1) -> str:
    """`P<count>`: play `<prompt>.<pt>` to the first-tag party; count -1 loops, 0 only stops. The
    relay reads the count into a C int (src/commands/rpcpv1_play.c)."""
    _int_in(count, "play count", limits.MIN_PLAY_COUNT, limits.MAX_PLAY_COUNT)
    words = [f"P{count}", validate_call_id(call_id), validate_prompt_name(prompt), validate_codec_list(codecs),
             *_tags(from_tag, to_tag, medianum)]
    return validate_command(" ".join(words))


def stop_play(call_id: str, from_tag: str, to_tag: str | None = None, *, medianum: int | None = None) -> str:
    """`S`: stop the player."""
    return _session_command("S", call_id, from_tag, to_tag, medianum)


def record(call_id: str, from_tag: str, to_tag: str | None = None, *, single_file: bool = False) -> str:
    """`R` / `Rs`: record the first-tag party's media into the relay's record dir. Bare tags; the
    call-id and tags become the file name, see `validate_record_name`."""
    command = _session_command("Rs" if single_file else "R", call_id, from_tag, to_tag)
    _recorded(call_id, from_tag, to_tag)
    return command


def copy(call_id: str, target: str, from_tag: str, to_tag: str | None = None, *, medianum: int | None = None,
         single_file: bool = False, reply_port: bool = False) -> str:
    """`C[s][p]`: copy the first-tag party's media to `udp:IPv4:PORT` or to a file name in the
    record dir (`validate_copy_target`). Unlike R, the file is named after the target alone, not
    the call-id and tags (src/rtpp_record.c). `p` (reply with the copy's local port) is for remote
    targets only: the relay fails a file copy that asks for it."""
    head = "C" + ("s" if single_file else "") + ("p" if reply_port else "")
    sent = validate_copy_target(target)
    if reply_port and not is_remote_copy_target(sent):
        raise InputError(f"copy target {_shown(target)} is a file: only a udp: copy replies with its port",
                         "leave out reply_port, or copy to udp:IPv4:PORT")
    words = [head, validate_call_id(call_id), sent, *_tags(from_tag, to_tag, medianum)]
    return validate_command(" ".join(words))


def stop_record(call_id: str, from_tag: str, to_tag: str | None = None, *, all_streams: bool = False) -> str:
    """`N` / `Na`: stop recording or copying. Bare tags."""
    return _session_command("Na" if all_streams else "N", call_id, from_tag, to_tag)


def creator_query(call_id: str, tag: str) -> str:
    """`Q <callid> <tag>;1`: a query the relay answers only when `tag` is the tag of the party whose
    offer (`U`) created the session, and with E50 (SESSION_NOT_FOUND) for the other party's.

    The relay looks a stream up by its first tag against the session's own (the creator's) and by
    its second against the other party's (find_stream, src/rtpp_session.c), so with one tag only
    the creator's matches. `Q` changes nothing on the relay."""
    return query(call_id, tag, None, medianum=1)


def query(call_id: str, from_tag: str, to_tag: str | None = None, counters: Iterable[str] = (), *,
          medianum: int | None = None, verbose: bool = False, subcommands: Iterable[str] = ()) -> str:
    """`Q[v]`: session counters; without names the relay answers QUERY_DEFAULT_COUNTERS."""
    names = _names(counters, "counter names", validate_counter_name)
    if len(names) > MAX_QUERY_COUNTERS:
        raise InputError(
            f"{len(names)} counters asked; Q takes at most {MAX_QUERY_COUNTERS}",
            "split the query in two",
        )
    if names and not to_tag:
        raise InputError(
            "counter names need a to-tag: RTPProxy reads the third argument of Q as the to-tag",
            "give the to-tag too",
        )
    words = ["Qv" if verbose else "Q", validate_call_id(call_id), *_tags(from_tag, to_tag, medianum), *names]
    return with_subcommands(" ".join(words), subcommands)


def get_stats(names: Iterable[str] = (), *, verbose: bool = False) -> str:
    """`G[v] [names...]`: relay-wide statistics."""
    return validate_command(" ".join(["Gv" if verbose else "G", *_names(names, "statistic names", validate_stat_name)]))


#: Relay-wide statistics the engine answers to `G` (probed against rtp.io 1.1.1; an unknown name
#: is E68). The engine refuses a command with too many arguments (E5), so ask in batches.
GLOBAL_STATS: tuple[str, ...] = (
    "nsess_created", "nsess_destroyed", "nsess_timeout", "nsess_complete", "nsess_nortp", "nsess_owrtp",
    "nsess_nortcp", "nsess_owrtcp", "nplrs_created", "nplrs_destroyed", "npkts_rcvd", "npkts_played",
    "npkts_relayed", "npkts_resizer_in", "npkts_resizer_out", "npkts_resizer_discard", "npkts_discard",
    "total_duration", "ncmds_rcvd", "ncmds_rcvd_ndups", "ncmds_succd", "ncmds_errs", "ncmds_repld",
    "rtpa_nsent", "rtpa_nrcvd", "rtpa_ndups", "rtpa_nlost", "rtpa_perrs",
)
MAX_STATS_PER_QUERY = 10
#: Of GLOBAL_STATS, the one the relay keeps as a double (RTPP_CNT_DBL, src/rtpp_stats.c); the rest
#: are 64-bit counters.
_INTEGER_STATS = frozenset(GLOBAL_STATS) - {"total_duration"}


def info(*, brief: bool = False, load: bool = False) -> str:
    """`I[b][l]`: the multi-line summary; `l` adds the average load."""
    return "I" + ("b" if brief else "") + ("l" if load else "")


def validate_raw_command(line: str, where: str) -> str:
    """Check a hand-written command (`rtppctl raw`) before it is framed and sent.

    The command's own syntax is the relay's business (it answers E<n>), but the line must stay one
    line: a newline or other control character would carry a second command on a stream socket;
    and it must fit the relay's buffer as every encoded command does (MAX_COMMAND_BYTES), or the
    relay would run the part that fits.
    """
    if not isinstance(line, str) or not line.strip():
        raise InputError(f"{where}: empty command")
    for index, char in enumerate(line):
        if char != "\t" and (char == "\x00" or unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp")):
            raise InputError(f"{where}: command {_shown(line)} contains the control character {char!r} at position {index}")
    try:
        _check_command_size(line, "split it into several commands")
    except InputError as err:
        raise InputError(f"{where}: {err.message}", err.hint) from None
    return line


# --------------------------------------------------------------------------------------------
# Decoders


def _text(reply: object) -> str:
    if not isinstance(reply, str):
        raise MalformedReply(f"reply must be text, not {type(reply).__name__}")
    return reply


def _quote(reply: str) -> str:
    return _shown(reply, 80)


def decode_reply_bytes(data: bytes) -> str:
    """Reply bytes (cookie already removed) as text, without its one trailing newline."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise MalformedReply(f"reply must be bytes, not {type(data).__name__}")
    raw = bytes(data)
    if b"\x00" in raw:
        raise MalformedReply(f"reply contains a NUL byte: {raw[:80]!r}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedReply(
            f"reply is not valid UTF-8 ({exc.reason} at byte {exc.start}): {raw[:80]!r}"
        ) from None
    return text[:-1] if text.endswith("\n") else text


def split_subcommand_results(reply: str) -> tuple[str, tuple[str, ...]]:
    """The main reply and the ` && <result>` parts after it, e.g. ("43394 127.0.0.1", ("-1",))."""
    parts = _text(reply).split(" && ")
    return parts[0].strip(), tuple(part.strip() for part in parts[1:])


_ERROR_RE = re.compile(r"E([0-9]{1,9})")


def error_code(reply: str) -> int | None:
    """n when the main part of the reply is `E<n>`, else None."""
    main, _ = split_subcommand_results(reply)
    match = _ERROR_RE.fullmatch(main)
    return int(match.group(1)) if match else None


def raise_for_error(reply: str, command: str | None = None, node: str | None = None) -> None:
    """Raise ProxyError when the relay answered `E<n>`."""
    code = error_code(reply)
    if code is not None:
        raise ProxyError(code, command=command, node=node)


@dataclass(frozen=True)
class PortReply:
    """The answer to U, L or Cp: where the other party must send its media."""

    #: Relay port; 0 from L means "no such session".
    port: int
    #: The relay's address (or its advertised one); None when the relay binds the wildcard.
    address: str | None
    #: True when the relay marked the address as IPv6 (third token `6`).
    ipv6: bool
    #: Sub-command results after ` && `, in order (e.g. ("-1",) when catch_dtmf refused).
    subcommand_results: tuple[str, ...]


# -- numbers in replies
#
# A relay writes its numbers with C's printf: %d and %lu/%llu/PRIu64 for counters, ttls, ports and
# results (at most 64 bits), %f for jitter, gaps, loads and durations (src/commands/rpcpv1_query.c,
# src/rtpp_stats.c, src/rtpp_command.c). `relay_number` is the one reader of all of them: it gives
# an int within 64 bits or a finite float, and anything else (nan, inf, -nan, 1e999, a 400-digit
# count, 1.5 where a count belongs) is a MalformedReply, so no reply can make rtppctl print
# Infinity or NaN in JSON, or fail inside a conversion.

#: Longest number a relay writes for a real value: 20 digits for 2**64, a %f with room to spare.
MAX_NUMBER_CHARS = 64
#: Integers span C's signed and unsigned 64-bit types.
MIN_RELAY_INT, MAX_RELAY_INT = -(2**63), 2**64 - 1
_RELAY_INT_RE = re.compile(r"-?[0-9]+")
_RELAY_FLOAT_RE = re.compile(r"-?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][-+]?[0-9]{1,4})?")


def relay_number(text: str, what: str, *, integer: bool = False, low: int = MIN_RELAY_INT,
                 high: int = MAX_RELAY_INT) -> int | float:
    """The number a relay wrote as `text`, bounded; `what` names it for the message ("counter
    'ttl' in the reply '60 0 0 0 0'").

    A decimal integer in low..high is an int; otherwise, unless `integer`, a finite decimal float
    is a float. Everything else raises MalformedReply: words that are not numbers, nan and inf in
    any spelling, floats that overflow (1e999), integers beyond 64 bits or the bounds, a fraction
    where the relay writes a whole number.
    """
    if not isinstance(text, str):
        raise MalformedReply(f"{what} is not text: {text!r}")
    if len(text) > MAX_NUMBER_CHARS:
        raise MalformedReply(f"{what} is {_shown(text, 40)}: longer than any number a relay writes "
                             f"({MAX_NUMBER_CHARS} characters)")
    if _RELAY_INT_RE.fullmatch(text):
        value = int(text)
        if not low <= value <= high:
            raise MalformedReply(f"{what} is {text}: out of range {low}..{high}",
                                 "a relay's counters are 64-bit integers at most")
        return value
    if integer:
        raise MalformedReply(f"{what} is {_shown(text, 40)}: not a whole number", "the relay writes it as an integer")
    if not _RELAY_FLOAT_RE.fullmatch(text):
        raise MalformedReply(f"{what} is {_shown(text, 40)}: not a number")
    number = float(text)
    if number - number != 0.0:  # inf (from 1e999 and the like): cannot be shown in JSON
        raise MalformedReply(f"{what} is {_shown(text, 40)}: too large to be a finite number")
    return number


def parse_port_reply(reply: str) -> PortReply:
    """`<port>[ <addr>[ 6]][ && <result>...]`; E<n> raises ProxyError."""
    main, results = split_subcommand_results(reply)
    error = _ERROR_RE.fullmatch(main)
    if error:
        raise ProxyError(int(error.group(1)))
    words = main.split()
    if not 1 <= len(words) <= 3:
        raise _bad_port_reply(reply)
    try:
        port = relay_number(words[0], "the port", integer=True, low=0, high=limits.MAX_PORT)
    except MalformedReply as exc:
        bad = _bad_port_reply(reply)
        raise MalformedReply(f"{bad.message}: {exc.message}", bad.hint) from None
    address = words[1] if len(words) >= 2 else None
    if address is not None and ip_literal(address) is None:
        raise _bad_port_reply(reply)
    if len(words) == 3 and words[2] != "6":
        raise _bad_port_reply(reply)
    return PortReply(int(port), address, len(words) == 3, results)


def _bad_port_reply(reply: str) -> MalformedReply:
    return MalformedReply(f"cannot read a port reply from {_quote(reply)}", "expected '<port> [<address> [6]]'")


def parse_version(reply: str) -> int:
    """The answer to V: the base protocol date as a number (20040107 for every RTPProxy)."""
    raise_for_error(reply)
    text = _text(reply).strip()
    if not _DATE_RE.fullmatch(text):
        raise MalformedReply(f"cannot read a protocol version from {_quote(reply)}")
    return int(relay_number(text, "the protocol version", integer=True))


def parse_capability(reply: str) -> bool:
    """The answer to VF: "1" supported; "0" or E<n> not (the module treats an error as absent)."""
    text = _text(reply).strip()
    if text == "1":
        return True
    if text == "0" or error_code(text) is not None:
        return False
    raise MalformedReply(f"cannot read a capability answer from {_quote(reply)}", "expected 0 or 1")


def parse_result(reply: str) -> int:
    """The answer to D, P, S, R, N, C, X: "0" on success; E<n> raises ProxyError."""
    raise_for_error(reply)
    text = _text(reply).strip()
    if not _RELAY_INT_RE.fullmatch(text):
        raise MalformedReply(f"cannot read a result from {_quote(reply)}", "expected 0 or E<n>")
    return int(relay_number(text, f"the result {_quote(reply)}", integer=True))


def parse_copy_reply(reply: str) -> PortReply | None:
    """The answer to C: "0" gives None; with `p` the relay gives "<port> <addr>"."""
    raise_for_error(reply)
    if _text(reply).strip() == "0":
        return None
    return parse_port_reply(reply)


#: What `Q` without counter names answers, in order (§6.1): rtpproxy_stats's counters.
QUERY_DEFAULT_COUNTERS = ("ttl", "npkts_ina", "npkts_ino", "nrelayed", "ndropped")
#: The RTP analysis counters of the second `Q` of rtpproxy_all_stats (§6.2), in the module's order.
QUERY_RTPA_COUNTERS = ("rtpa_nsent", "rtpa_nrcvd", "rtpa_ndups", "rtpa_nlost", "rtpa_perrs")
#: rtpproxy_all_stats: the counters of its two `Q` commands, in the module's order.
ALL_STATS = (QUERY_DEFAULT_COUNTERS, QUERY_RTPA_COUNTERS)
#: Q counters the relay writes as integers (%d, %lu) and as floats (%f), src/commands/rpcpv1_query.c;
#: a counter rtppctl does not know may be either. The float ones are not among the module's, and
#: some relays lack them (E62).
QUERY_INTEGER_COUNTERS = frozenset(QUERY_DEFAULT_COUNTERS + QUERY_RTPA_COUNTERS)
QUERY_FLOAT_COUNTERS = ("rtpa_jlast", "rtpa_jmax", "rtpa_javg", "longest_ipi")


def _values(reply: str, names: tuple[str, ...], plain_names: tuple[str, ...], what: str,
            integers: frozenset[str]) -> dict[str, int | float]:
    """Values by name, from `name=value` words or from plain words matched to `names`/`plain_names`;
    names in `integers` must be whole numbers."""
    raise_for_error(reply)
    main, _ = split_subcommand_results(reply)
    words = main.split()

    def number(name: str, value: str) -> int | float:
        return relay_number(value, f"{what} {_shown(name, 40)} in {_quote(reply)}", integer=name in integers)

    if words and all("=" in word for word in words):
        pairs = [word.split("=", 1) for word in words]
        if any(not name for name, _ in pairs):
            raise MalformedReply(f"empty {what} name in {_quote(reply)}")
        if names and [name for name, _ in pairs] != list(names):
            raise MalformedReply(
                f"{what} reply {_quote(reply)} does not answer the names asked ({', '.join(names)})"
            )
        return {name: number(name, value) for name, value in pairs}
    if any("=" in word for word in words):
        raise MalformedReply(f"{what} reply {_quote(reply)} mixes name=value and plain values")
    expected = names or plain_names
    if len(words) != len(expected):
        raise MalformedReply(
            f"{what} reply {_quote(reply)} has {len(words)} values for {len(expected)} names",
        )
    return {name: number(name, value) for name, value in zip(expected, words)}


def _asked(names: Iterable[str]) -> tuple[str, ...]:
    if isinstance(names, str) or not isinstance(names, Iterable):
        raise InputError(f"names must be a list of names, not {names!r}")
    return tuple(names)


def parse_counters(reply: str, names: Iterable[str] = ()) -> dict[str, int | float]:
    """The answer to Q/Qv: counters by name (plain lists use `names`, default QUERY_DEFAULT_COUNTERS)."""
    return _values(_text(reply), _asked(names), QUERY_DEFAULT_COUNTERS, "counter", QUERY_INTEGER_COUNTERS)


def parse_stats(reply: str, names: Iterable[str] = ()) -> dict[str, int | float]:
    """The answer to G/Gv: statistics by name; G without names answers an empty line, giving {}."""
    return _values(_text(reply), _asked(names), (), "statistic", _INTEGER_STATS)


#: Labels of the I reply and the keys rtppctl gives them.
INFO_FIELDS: dict[str, str] = {
    "sessions created": "sessions_created",
    "active sessions": "active_sessions",
    "active streams": "active_streams",
    "packets received": "packets_received",
    "packets transmitted": "packets_transmitted",
    "average load": "average_load",
}


def _snake(label: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", label.lower()).strip("_")


def parse_info(reply: str) -> dict[str, int | float]:
    """The multi-line answer to I: `<label>: <number>` lines by snake_case key.

    Labels rtppctl does not know are kept under their snake_cased name when their value is a
    number, and skipped otherwise, so a newer relay adding a text line does not break the reading.
    """
    raise_for_error(reply)
    result: dict[str, int | float] = {}
    for line in _text(reply).splitlines():
        if not line.strip():
            continue
        label, sep, value = line.partition(":")
        label = label.strip()
        if not sep or not label:
            raise MalformedReply(
                f"cannot read the I reply line {_quote(line)}", "expected '<label>: <number>'"
            )
        known = INFO_FIELDS.get(label)
        try:
            number = relay_number(value.strip(), f"{_shown(label, 40)} in the I reply",
                                  integer=known is not None and known != "average_load")
        except MalformedReply:
            if known:
                raise
            continue
        key = known or _snake(label)
        if key:
            result[key] = number
    if not result:
        raise MalformedReply(f"the I reply {_quote(reply)} has no values")
    return result


__all__ = [
    "ALL_STATS", "BASE_VERSION", "CAPABILITIES", "COOKIE_ALLOWANCE", "Capability", "EXTENDED_VERSION",
    "GLOBAL_STATS", "INFO_FIELDS", "MAX_COMMAND_BYTES", "MAX_NOTIFY_TAG_LENGTH",
    "MAX_QUERY_COUNTERS", "MAX_STATS_PER_QUERY", "MAX_SUBCOMMANDS", "MAX_TOKENS_PER_COMMAND",
    "MAX_TOKEN_LENGTH", "MODULE_PROBE_ORDER", "Modifiers", "PortReply", "QUERY_DEFAULT_COUNTERS",
    "MAX_COPY_NAME_BYTES", "MAX_COPY_PORT", "MAX_NUMBER_CHARS", "MAX_RELAY_INT", "MIN_RELAY_INT",
    "QUERY_FLOAT_COUNTERS", "QUERY_INTEGER_COUNTERS", "QUERY_RTPA_COUNTERS", "SESSION_NOT_FOUND",
    "capability", "copy", "creator_query", "decode_reply_bytes", "delete",
    "dtmf_subcommand", "encode_dtmf_tag", "encode_notify_tag", "error_code", "get_stats", "info",
    "is_remote_copy_target",
    "lookup", "parse_capability", "parse_copy_reply", "parse_counters",
    "parse_info", "parse_port_reply", "parse_result", "parse_stats", "parse_version", "play", "query",
    "raise_for_error", "record", "relay_number", "split_subcommand_results", "stop_play",
    "stop_record", "update", "validate_address", "validate_call_id", "validate_codec_list",
    "validate_command", "validate_copy_target", "validate_counter_name", "validate_media_address",
    "validate_media_number", "validate_notify_socket", "validate_port", "validate_prompt_name",
    "validate_raw_command", "validate_record_name", "validate_stat_name", "validate_tag",
    "validate_token", "version", "version_feature", "with_subcommands",
]
