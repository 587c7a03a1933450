"""How an offer or an answer turns into `U`/`L` commands, one per proxied stream (docs/protocol.md §4.1-4.3, §9).

Given the call's identity (Call-ID, tags, whether the SDP travels in a request or a reply), the
parsed flags, the parsed SDP and the relay's capabilities, this decides the command letter, the
tag order, the per-stream modifiers, the notify arguments and the DTMF sub-command exactly as the
OpenSIPS module does, and says which requested features the relay cannot honour. Nothing is sent
here: the caller gets the command lines and a list of warnings.

The rule it keeps: whatever is wrong with the input is found before the relay is asked anything.
`check` raises every `InputError` that `plan` could raise with any relay's capabilities, so the
caller runs it before it connects, and `plan`, which needs the capabilities the relay answered,
never refuses what `check` let through.

It also owns the stand-in dialog ids rtppctl derives for notification tags when none is given
(`derived_dialog_id`): 12 + 32 bits of a hash of the Call-ID, so tags of different calls do not
meet by chance, and a numbered series of further candidates for the caller that finds one taken
by another live call (the ledger, in `ops.offer_answer`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from rtppctl.proto import command as cmd
from rtppctl.proto.errors import InputError
from rtppctl.proto.flags import Flags
from rtppctl.proto.sdp import Sdp

#: What the module sends as the second tag of a forced lookup when there is no To tag yet.
DUMMY_TAG = "dummy"
#: Every module capability bit (REPACK, CODECS, NOTIFY, NOTIFY_WILD, SUBCOMMAND, TTL_CHANGE, ...).
_EVERY_CAPABILITY = frozenset(cap.module_bit for cap in cmd.CAPABILITIES if cap.module_bit)
#: The capability sets `check` plans with. Each part of a command only grows with the capability
#: that lets it be sent (Z with REPACK, c with CODECS, t/T with TTL_CHANGE, notify arguments with
#: NOTIFY, the DTMF sub-command with SUBCOMMAND), except two that change shape when a capability
#: is missing: without NOTIFY_WILD the notify socket loses its `tcp:` prefix, and without NOTIFY
#: the DTMF tag is `Dc<call-id>` instead of `Dd<dialog id>`. So a refusal that some relay's
#: capabilities would cause also happens with all of them, or with all but one of those two.
_WIDEST_CAPABILITY_SETS = (
    _EVERY_CAPABILITY,
    _EVERY_CAPABILITY - {"NOTIFY_WILD"},
    _EVERY_CAPABILITY - {"NOTIFY"},
)
#: OpenSIPS dialog hash table size (the dialog module's default): a derived dialog id's entry
#: part stays below it, so rtppctl's tags look like the ones OpenSIPS sends.
DIALOG_HASH_SIZE = 4096
#: The id part of a derived dialog id is 32 bits (OpenSIPS keeps h_id in an unsigned int), so a
#: derived tag is at most `T` + 3 + `.` + 8 = 13 characters, well within the module's 30.
_DIALOG_ID_BITS = 32
#: The derived dialog id whose tags are the longest: what `check` plans with.
_LONGEST_DERIVED_DIALOG = (DIALOG_HASH_SIZE - 1, 2**_DIALOG_ID_BITS - 1)


@dataclass(frozen=True)
class CallLeg:
    """Who is talking: the SIP dialog identity the SDP belongs to."""

    #: The Call-ID.
    call_id: str
    #: The From tag.
    from_tag: str
    #: The To tag; None (or empty) before the callee answered.
    to_tag: str | None = None
    #: The SDP travels in a reply (200 OK, 183) rather than a request (INVITE, ACK, re-INVITE).
    in_reply: bool = False


@dataclass(frozen=True)
class StreamCommand:
    """The command for one proxied stream."""

    medianum: int
    #: The command line, without cookie or newline.
    command: str


@dataclass(frozen=True)
class Plan:
    """Everything an offer or answer sends, decided before anything is sent."""

    #: "U" (create/update) or "L" (lookup).
    letter: str
    #: The tags in the order sent, without the `;N` suffix.
    tags: tuple[str, ...]
    commands: tuple[StreamCommand, ...]
    #: Requested features the relay lacks or the module would not send, in words.
    warnings: tuple[str, ...] = field(default_factory=tuple)
    #: The timeout notification tag sent with U (flag n), as the relay will report it.
    notify_tag: str | None = None
    #: The DTMF tag sent (flag d), as the relay will report it (before percent-encoding).
    dtmf_tag: str | None = None


def command_and_tags(leg: CallLeg, *, offer: bool, force_lookup: bool) -> tuple[str, tuple[str, ...]]:
    """The command letter and tag order of §4.1: the message sender's SDP is always the one carried."""
    to_tag = leg.to_tag or None
    if force_lookup:
        second = to_tag or DUMMY_TAG
        return "L", ((second, leg.from_tag) if offer else (leg.from_tag, second))
    if offer:
        if not leg.in_reply:
            return "U", (leg.from_tag,) if to_tag is None else (leg.from_tag, to_tag)
        if to_tag is None:
            raise InputError("an offer in a reply (late negotiation) needs the To tag", "give --to-tag")
        return "U", (to_tag, leg.from_tag)
    if to_tag is None:
        raise InputError(
            "an answer needs the To tag: the relay looks the session up by both tags", "give --to-tag"
        )
    return "L", ((leg.from_tag, to_tag) if leg.in_reply else (to_tag, leg.from_tag))


def reverse_hex(number: int) -> str:
    """OpenSIPS's int2reverse_hex: lower-case hex digits, least significant first (0x1a2 -> "2a1")."""
    if number < 0:
        raise InputError(f"dialog id parts must not be negative, got {number}")
    digits = "0123456789abcdef"
    text = ""
    while True:
        text += digits[number & 0xF]
        number >>= 4
        if not number:
            return text


#: Each part of a dialog id is an `unsigned int` in OpenSIPS (modules/dialog/dlg_hash.h: h_entry,
#: h_id), which int2reverse_hex (ut.h) writes in at most 8 hex digits.
MAX_DIALOG_ID_PART = 2**32 - 1


def parse_dialog_id(text: str) -> tuple[int, int]:
    """`H_ENTRY.H_ID` in decimal, as OpenSIPS's dialog MI commands show them."""
    entry, dot, ident = text.partition(".")
    if not dot or not entry.isdigit() or not ident.isdigit():
        raise InputError(f"dialog id {text!r} is not ENTRY.ID (the dialog hash entry and id, two decimal numbers, e.g. 1234.5678)")
    if int(entry) > MAX_DIALOG_ID_PART or int(ident) > MAX_DIALOG_ID_PART:
        raise InputError(f"dialog id {text[:40]!r}: each part is at most {MAX_DIALOG_ID_PART} (an unsigned int in OpenSIPS)")
    return int(entry), int(ident)


def derived_dialog_id(call_id: str, attempt: int = 0) -> tuple[int, int]:
    """A stable stand-in dialog id for a call when none is given (rtppctl's choice, not the module's:
    OpenSIPS takes it from its dialog table, which does not exist outside the proxy).

    Both parts come from one hash of the Call-ID: 12 bits for the entry (below DIALOG_HASH_SIZE)
    and 32 for the id, 2**44 values in all, so two calls share one only by a rare chance; the
    caller that finds the id taken by another live call asks for `attempt` 1, 2, ... in turn,
    each as stable as the first.
    """
    if attempt < 0:
        raise ValueError(f"attempt must not be negative, got {attempt}")
    data = call_id.encode("utf-8", "surrogatepass") + (b"" if attempt == 0 else b"\x00" + str(attempt).encode())
    number = int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")
    return (number >> _DIALOG_ID_BITS) % DIALOG_HASH_SIZE, number & ((1 << _DIALOG_ID_BITS) - 1)


def dialog_id_of_tag(tag: str | None) -> tuple[int, int] | None:
    """The dialog id inside a notify tag `T<did>` or a DTMF tag `Dd<did>` as `notify_tag` and
    `dtmf_tag` write them; None for any other tag (`Dc<callid>`, a tag from elsewhere)."""
    from rtppctl.proto.notify import dialog_id  # noqa: PLC0415 - the one reader of `<rhex>.<rhex>`

    if tag is None:
        return None
    for prefix in ("T", "Dd"):
        if tag.startswith(prefix):
            found = dialog_id(tag[len(prefix):])
            if found is not None:
                return found
    return None


def dialog_tags(dialog_id: tuple[int, int]) -> tuple[str, str]:
    """The notify tag and the DTMF tag a dialog id gives: what must not belong to another call."""
    return notify_tag(dialog_id), dtmf_tag("", dialog_id)


def notify_tag(dialog_id: tuple[int, int]) -> str:
    """The timeout notification tag `T<did>` of §9.1 (at most 30 characters in the module)."""
    return "T" + reverse_hex(dialog_id[0]) + "." + reverse_hex(dialog_id[1])


def dtmf_tag(call_id: str, dialog_id: tuple[int, int] | None) -> str:
    """The DTMF tag of §9.3: `Dd<did>` with a dialog, else `Dc<callid>`, as DTMF lines will carry
    it; the relay gets it percent-encoded (`cmd.encode_dtmf_tag`), so any call-id survives."""
    if dialog_id is not None:
        return "Dd" + reverse_hex(dialog_id[0]) + "." + reverse_hex(dialog_id[1])
    return "Dc" + call_id


def notify_socket_for(configured: str | None, flags: Flags, *, notify_wild: bool) -> str | None:
    """The socket string sent on U (§9.1): `n<SOCK>` verbatim, else the configured socket with its
    `unix:` prefix stripped, and its `tcp:` prefix too for a relay without NOTIFY_WILD."""
    from rtppctl.proto.notify import parse_notify_socket  # noqa: PLC0415 - the socket grammar's one home

    if flags.notify_socket:
        return flags.notify_socket
    if not configured:
        return None
    socket = parse_notify_socket(configured)
    if socket.kind == "unix":
        return socket.path
    return socket.text if notify_wild else f"{socket.host}:{socket.port}"


def _check_dialog_id(dialog_id: tuple[int, int] | None) -> None:
    if dialog_id is None:
        return
    if (not isinstance(dialog_id, tuple) or len(dialog_id) != 2
            or not all(isinstance(part, int) and not isinstance(part, bool) and part >= 0 for part in dialog_id)):
        raise InputError(f"dialog id {dialog_id!r} is not a pair of non-negative integers (entry, id)",
                         "give it as ENTRY.ID, e.g. 1234.5678")


def check(
    sdp: Sdp,
    flags: Flags,
    leg: CallLeg,
    *,
    offer: bool,
    source_ip: str | None = None,
    notify_socket: str | None = None,
    dialog_id: tuple[int, int] | None = None,
    derived_dialog: tuple[int, int] | None = None,
) -> None:
    """Raise every InputError that `plan` could raise for this input, whatever the relay's
    capabilities: tokens, tags, the notify socket flags n and d need, notify and DTMF tags, the
    dialog id, modifiers, addresses, ports and the relay's command size and token limits.

    Pure and without the relay, so a caller runs it before the first byte is sent. It plans with
    the capability sets that together make every command as large and as strictly checked as any
    relay could (see _WIDEST_CAPABILITY_SETS) and drops the result.
    """
    # The caller may pick any derived dialog id later (a later attempt when one is taken): the
    # longest one any attempt can give stands in for it.
    derived = derived_dialog or _LONGEST_DERIVED_DIALOG
    # NOTIFY and NOTIFY_WILD shape only what flags n and d send: without them the sets plan alike.
    sets = _WIDEST_CAPABILITY_SETS if flags.notify or flags.dtmf else _WIDEST_CAPABILITY_SETS[:1]
    for capabilities in sets:
        plan(sdp, flags, leg, offer=offer, capabilities=capabilities, source_ip=source_ip,
             notify_socket=notify_socket, dialog_id=dialog_id, derived_dialog=derived)


def plan(
    sdp: Sdp,
    flags: Flags,
    leg: CallLeg,
    *,
    offer: bool,
    capabilities: frozenset[str],
    source_ip: str | None = None,
    notify_socket: str | None = None,
    dialog_id: tuple[int, int] | None = None,
    derived_dialog: tuple[int, int] | None = None,
) -> Plan:
    """The commands of an offer (`offer=True`) or answer for every proxied stream of `sdp`.

    `capabilities` holds the module bit names the relay answered 1 to (REPACK, CODECS, NOTIFY,
    NOTIFY_WILD, SUBCOMMAND, TTL_CHANGE, ...). `source_ip` is where the SIP message came from;
    without it (or with flag r or a) the SDP's own address is sent, as for the module's body_var.
    `dialog_id` is the one the user gave; `derived_dialog` the stand-in the caller chose for the
    call (see `derived_dialog_id`), used only where the module would have its dialog, that is
    when the notify tag is sent and no `dialog_id` was given (default: attempt 0).
    It raises no InputError that `check` would not have raised for the same input.
    """
    cmd.validate_call_id(leg.call_id)
    cmd.validate_tag(leg.from_tag, "from-tag")
    if leg.to_tag:
        cmd.validate_tag(leg.to_tag, "to-tag")
    _check_dialog_id(dialog_id)
    _check_dialog_id(derived_dialog)
    letter, tags = command_and_tags(leg, offer=offer, force_lookup=flags.force_lookup)
    if not (flags.notify or flags.dtmf):
        # Nothing derived from the Call-ID goes out (no notify or DTMF tag): the call's names
        # stand alone in the commands, which are the same for every call but for them.
        return _from_template(sdp, flags, leg, offer, capabilities, source_ip)
    return _plan(sdp, flags, leg, offer=offer, capabilities=capabilities, source_ip=source_ip,
                 notify_socket=notify_socket, dialog_id=dialog_id, derived_dialog=derived_dialog)


def _plan(sdp: Sdp, flags: Flags, leg: CallLeg, *, offer: bool, capabilities: frozenset[str],
          source_ip: str | None, notify_socket: str | None, dialog_id: tuple[int, int] | None,
          derived_dialog: tuple[int, int] | None) -> Plan:
    """`plan` once its checks of the call's names are done: every command built by the encoders."""
    letter, tags = command_and_tags(leg, offer=offer, force_lookup=flags.force_lookup)
    warnings: list[str] = []

    repacketize = flags.repacketize_ms
    if repacketize is not None and "REPACK" not in capabilities:
        warnings.append(f"flag z{repacketize}: the relay has no REPACK capability; Z not sent")
        repacketize = None
    ttl = flags.ttl_modifiers
    if ttl and "TTL_CHANGE" not in capabilities:
        # Upstream RTPProxy answers VF 20170313 with 0 and rejects t/T with E35 (§15.3). A bare t
        # or T is dropped the same way; with TTL_CHANGE the letters go as given ("t", "t30").
        warnings.append(f"flags {ttl}: the relay has no TTL_CHANGE capability; t/T not sent")
        ttl = ""
    use_codecs = "CODECS" in capabilities

    notify_args: tuple[str, str] | None = None
    dtmf_subcommand: str | None = None
    sent_dtmf_tag: str | None = None
    sent_notify_tag: str | None = None
    wants_notify = flags.notify and "NOTIFY" in capabilities
    wants_dtmf = flags.dtmf and "SUBCOMMAND" in capabilities
    if flags.notify and not wants_notify:
        warnings.append("flag n: the relay has no NOTIFY capability; no timeout notification requested")
    if flags.dtmf and not wants_dtmf:
        warnings.append("flag d: the relay has no SUBCOMMAND capability; DTMF not requested")
    if wants_notify or wants_dtmf:
        dialog = dialog_id
        if dialog is None and wants_notify:
            dialog = derived_dialog or derived_dialog_id(leg.call_id)
        socket = notify_socket_for(notify_socket, flags, notify_wild="NOTIFY_WILD" in capabilities)
        if socket is None:
            raise InputError(
                f"flag {'n' if wants_notify else 'd'} needs a notification socket",
                "set rtpp_notify_socket in the config, or name the socket in the flags: n<tcp:HOST:PORT>",
            )
        if letter == "U":
            # L takes at most 6 arguments: notify arguments there are E1 (§9.1).
            # Without flag n (only d), a placeholder tag holds the notify socket's place.
            sent_notify_tag = notify_tag(dialog) if wants_notify and dialog else None
            notify_args = (socket, sent_notify_tag or "I")
        if wants_dtmf:
            sent_dtmf_tag = dtmf_tag(leg.call_id, dialog)
            dtmf_subcommand = cmd.dtmf_subcommand(sent_dtmf_tag, flags.dtmf_payload_type)

    commands = []
    for stream in sdp.streams:
        if not stream.proxied or stream.medianum is None:
            continue
        address = stream.address if (flags.trust_address or source_ip is None) else source_ip
        modifiers = cmd.Modifiers(
            letters=flags.slot0,
            ipv6=":" in address,
            repacketize_ms=repacketize,
            codecs=tuple(stream.codecs) if use_codecs else (),
            ttl=ttl,
        )
        port = stream.port.split("/", 1)[0]
        subcommands = (dtmf_subcommand,) if dtmf_subcommand else ()
        if letter == "U":
            line = cmd.update(
                leg.call_id, address, port, tags[0], tags[1] if len(tags) > 1 else None,
                medianum=stream.medianum,
                modifiers=modifiers,
                notify_socket=notify_args[0] if notify_args else None,
                notify_tag=notify_args[1] if notify_args else None,
                subcommands=subcommands,
            )
        else:
            line = cmd.lookup(leg.call_id, address, port, tags[0], tags[1], medianum=stream.medianum,
                              modifiers=modifiers, subcommands=subcommands)
        commands.append(StreamCommand(stream.medianum, line))
    return Plan(letter, tags, tuple(commands), tuple(warnings), sent_notify_tag, sent_dtmf_tag)


# -- plans as templates ------------------------------------------------------------------------

#: What stands for the call's names in a template plan: a word no address, port, modifier or
#: literal tag of a U or L can be, so a template finds them by position and nothing else.
_SLOTS = {"{call-id}": "c", "{from-tag}": "f", "{to-tag}": "t"}
_CALL_SLOT, _FROM_SLOT, _TO_SLOT = _SLOTS
#: Templates kept, by everything but the call's names that a plan without flags n and d depends
#: on; a batch of many calls with a few SDPs plans each shape once. Bounded: cleared when full.
_TEMPLATES: dict[tuple[Any, ...], tuple[Plan, tuple[str, ...] | None]] = {}
_TEMPLATE_LIMIT = 256


def _from_template(sdp: Sdp, flags: Flags, leg: CallLeg, offer: bool, capabilities: frozenset[str],
                   source_ip: str | None) -> Plan:
    """The plan `_plan` builds for this call (flags without n and d), filled in from the template
    planned once for its shape. The names were checked by `plan`; each command is checked whole
    as the encoders check it (its size grows with the names), and anything unusual is planned
    the slow way, so the result and any refusal are the same."""
    shape = (sdp, flags, offer, capabilities, source_ip, bool(leg.to_tag), leg.in_reply)
    known = _TEMPLATES.get(shape)
    if known is None:
        if len(_TEMPLATES) >= _TEMPLATE_LIMIT:
            _TEMPLATES.clear()
        stand_in = CallLeg(_CALL_SLOT, _FROM_SLOT, _TO_SLOT if leg.to_tag else None, in_reply=leg.in_reply)
        template = _plan(sdp, flags, stand_in, offer=offer, capabilities=capabilities, source_ip=source_ip,
                         notify_socket=None, dialog_id=None, derived_dialog=None)
        known = _TEMPLATES[shape] = (template, _formats(template))
    template, formats = known
    if formats is None:
        return _plan(sdp, flags, leg, offer=offer, capabilities=capabilities, source_ip=source_ip,
                     notify_socket=None, dialog_id=None, derived_dialog=None)
    names = {"c": leg.call_id, "f": leg.from_tag, "t": leg.to_tag}
    commands = tuple(StreamCommand(step.medianum, cmd.validate_command(text % names))
                     for step, text in zip(template.commands, formats, strict=True))
    tags = tuple(names[_SLOTS[tag]] if tag in _SLOTS else tag for tag in template.tags)
    return Plan(template.letter, tags, commands, template.warnings)


def _formats(template: Plan) -> tuple[str, ...] | None:
    """Each command of a template as a %-format over the names; None when a stand-in is found
    anywhere but as a word of its own (then every call is planned the slow way)."""
    formats = []
    for step in template.commands:
        words = []
        for word in step.command.split(" "):
            head, semicolon, tail = word.partition(";")
            slot = _SLOTS.get(head)
            if slot is not None and (not semicolon or tail.isdigit()):
                words.append(f"%({slot})s{semicolon}{tail}")
            elif "{" in word:
                return None
            else:
                words.append(word.replace("%", "%%"))
        formats.append(" ".join(words))
    return tuple(formats)

