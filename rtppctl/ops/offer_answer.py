"""The module's SDP functions as operations (offer, answer, engage, unforce), and `Call`: one
call as every command about it addresses it.

Kept apart from the relay-level operations so that one-shot commands such as `version` do not pay
for loading them; `rtppctl.ops` re-exports every name here on first use.

A `Call` is built once (`find_call`) from a SIP message or the options, and the ledger: its
Call-ID, the tag of the party whose offer created the relay's session (the relay keys the session
by it and names recordings after it), the tags of the message's uac and uas, which of them sent
the message in hand, and where its commands go. `ops.media` and `unforce` take it whole. Every
command on a call the ledger knows marks it used (`Call.used`), so a call that is only played to,
recorded or watched is not pruned `ledger_ttl` after its last offer.

With a state store, an offer or answer reads the call's ledger entry before anything is sent (a
store that cannot be used stops the command with nothing on a relay; with `--target` too, whose
calls are recorded as well), picks the call's notification tags so that no other live call has
them, and afterwards changes the entry in one transaction that states what it read. When the
relay holds a session this command made and the ledger cannot record it, the session is deleted
again (`D` to the node that answered the `U`) and the command fails: a session a relay holds is
never unknown to rtppctl.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from rtppctl.proto import command as cmd
from rtppctl.proto import limits
from rtppctl.proto import offer as planner
from rtppctl.proto import sdp as sdp_mod
from rtppctl.proto.errors import ConfigError, ExitCode, InputError, ProxyError, RtppctlError
from rtppctl.proto.flags import parse_flags

if TYPE_CHECKING:
    from rtppctl.net.client import RelayClient
    from rtppctl.proto.sip import SipMessage
    from rtppctl.relays.service import Member, RelayService
    from rtppctl.relays.store import LedgerEntry

#: Derived dialog ids tried for a call before giving up: with 2**44 values, a second one is
#: needed only when another live call's tags meet the first by a rare chance.
_DIALOG_ATTEMPTS = 16


# -- offer / answer / engage / unforce ------------------------------------------------------------


class NoSession(RtppctlError):
    """A lookup (L) found no session: the relay answered port 0."""

    exit_code = ExitCode.PROXY_ERROR


@dataclass(frozen=True)
class RewriteRequest:
    """One SDP (or a whole SIP message carrying one) to put through a relay."""

    #: The input text: an SDP body or a whole SIP message.
    text: str
    #: Where it came from, for error messages ("offer.sdp", "stdin").
    source: str = "SDP"
    #: The module's flag string.
    flags: str = ""
    call_id: str | None = None
    from_tag: str | None = None
    to_tag: str | None = None
    #: The SDP travels in a reply; None: from the SIP message, else request for an offer, reply for an answer.
    in_reply: bool | None = None
    #: Where the SIP message came from; None: a request's top Via, else trust the SDP's address.
    source_ip: str | None = None
    #: The module's ip_address argument: the address written into the SDP.
    ip: str | None = None
    #: `H_ENTRY.H_ID` for notification tags; None: derived from the Call-ID when needed.
    dialog_id: str | None = None


@dataclass(frozen=True)
class StreamResult:
    """What one proxied stream became."""

    medianum: int
    media: str
    #: The relay's port and the address written into the SDP.
    port: int
    address: str
    family: str


@dataclass(frozen=True)
class RewriteResult:
    """The outcome of an offer or answer."""

    #: The rewritten SDP (unchanged with flag k).
    sdp: str
    #: The SDP as it came in.
    original_sdp: str
    #: The whole rewritten SIP message when the input was one, else None.
    message: str | None
    #: The relay used (the module's sock_var).
    node: str
    #: "<ip>:<port>" of the last proxied stream (the module's ret_var).
    ret: str | None
    #: The command letter sent for every stream: "U" or "L".
    letter: str
    streams: list[StreamResult]
    #: Every command sent for the streams and the relay's reply: {"command": ..., "reply": ...}.
    commands: list[dict[str, str]]
    warnings: list[str]

    @property
    def output(self) -> str:
        """What a user wants back: the whole message for a message, else the SDP."""
        return self.message if self.message is not None else self.sdp


@dataclass(frozen=True)
class Route:
    """Where an operation's commands go (the service, and the --target or --set the command was
    given), with what rtppctl's configuration says about SDP."""

    service: RelayService
    #: The --target specs; when given, they bypass the sets and health (the ledger still records the call).
    targets: Sequence[str] | None = None
    #: The set to choose from (None: the default set).
    set_id: int | None = None
    #: nortpproxy_str; empty disables the marker.
    marker: str = limits.DEFAULT_MARKER
    #: rtpp_notify_socket, as configured.
    notify_socket: str | None = None

    def describe(self) -> str:
        """The relays this names, for people: the target's url, or the set and its nodes."""
        members = self.service.members(self.targets, self.set_id)
        if self.targets:
            return members[0].node.url
        return f"set {members[0].set_id}: " + ", ".join(member.node.url for member in members)


#: The parties of a call as the module names them, relative to the message in hand.
PARTIES = ("uac", "uas")


@dataclass(frozen=True)
class Call:
    """One call as a command addresses it: who is who, and where its commands go.

    "uac" and "uas" are the module's words, relative to the message in hand: the uac is the party
    that sent the request (the message's From party), the uas the other. The relay knows neither:
    it keys the session by the tag of the party whose offer created it (`creator_tag`), and its
    record files are named after that tag whichever party a command names first (docs/protocol.md §7).
    From a callee's BYE the uac is the callee, while the creator is still the caller.
    """

    call_id: str
    #: The From tag of the message (or --from-tag; without either, the creator's): the uac's.
    uac_tag: str
    #: The To tag: the uas's; None before the callee answered.
    uas_tag: str | None
    #: The tag of the party whose offer created the relay's session, from the ledger; None when
    #: the ledger does not know the call (`ops.media` asks the relay when it matters).
    creator_tag: str | None
    #: Who sent the message in hand: "uac" for a request (and without a message), "uas" for a
    #: reply. The module's record, copy and stats put the sender's tag first (§6.1, §7).
    sender: str
    #: Where the call's commands go: the service, and the --target or --set given.
    route: Route
    #: Where the tags came from: "message", "options" or "ledger".
    source: str
    #: The call's ledger entry as read when the Call was built; None when the ledger does not know it.
    entry: LedgerEntry | None = None

    @property
    def other_tag(self) -> str | None:
        """The tag of the party that did not create the session, when the creator is known."""
        if self.creator_tag is None:
            return None
        return self.uas_tag if self.creator_tag == self.uac_tag else self.uac_tag

    def tag_of(self, party: str) -> str | None:
        return self.uac_tag if party == "uac" else self.uas_tag

    def tags_to(self, party: str) -> tuple[str, str | None]:
        """(first, second) tags so that the first-tag party is `party` ("uac" or "uas")."""
        if party == "uac":
            return self.uac_tag, self.uas_tag
        if not self.uas_tag:
            raise InputError(f"call {self.call_id!r} has no To tag yet, so there is no uas to address",
                             "give --to-tag, or a SIP message of the established dialog")
        return self.uas_tag, self.uac_tag

    def member(self) -> Member:
        """The node holding the call (`RelayService.for_call`: the target, the ledger's, the hash's)."""
        return self.route.service.for_call(self.call_id, targets=self.route.targets, set_id=self.route.set_id)

    def used(self) -> None:
        """Mark the call used in the ledger, when the ledger knows it: a call is pruned `ledger_ttl`
        after its last use, and playing to it, recording it or reading its counters is a use."""
        if self.entry is not None:
            self.route.service.touch(self.call_id)


def find_call(route: Route, *, call_id: str | None = None, from_tag: str | None = None, to_tag: str | None = None,
              message: SipMessage | None = None, source: str = "the message") -> Call:
    """The call the options and `message` name, with the ledger's knowledge of it. An option wins
    over the message; without a message, the options stand for a request from --from-tag's party,
    and what they leave out comes from the ledger (its creator's tag as the From tag)."""
    sender = "uac"
    if message is not None:
        call = call_id or message.call_id
        uac = from_tag or message.from_tag
        uas = to_tag if to_tag is not None else message.to_tag
        if not call or not uac:
            raise InputError(f"{source}: no Call-ID or From tag", "give --call-id and --from-tag")
        sender = "uac" if message.is_request else "uas"
        origin = "message"
    elif not call_id:
        raise InputError("no call given", "give --call-id ID (the ledger supplies the tags), or a SIP message")
    else:
        call, uac, uas, origin = call_id, from_tag, to_tag, "options"
    entry = route.service.ledger(call)
    if entry is None:
        if not uac:
            raise InputError(f"the ledger has no call {call!r}, so its tags are not known",
                             "give --from-tag (and --to-tag), or a SIP message of the call")
        return Call(call, uac, uas or None, None, sender, route, origin)
    if not uac:
        uac, origin = entry.from_tag, "ledger"
    if not uas:
        # The ledger's tag of the party that is not the uac.
        uas = entry.to_tag if uac == entry.from_tag else entry.from_tag if uac == entry.to_tag else None
    if entry.from_tag not in (uac, uas):
        raise InputError(
            f"the tags {uac!r}/{uas or '-'!r} are not those of call {call!r} in the ledger: its session was created "
            f"by {entry.from_tag!r}" + (f" with {entry.to_tag!r}" if entry.to_tag else ""),
            "give the call's own tags (rtppctl sessions lists them), or --state none to go by the message alone",
        )
    return Call(call, uac, uas or None, entry.from_tag, sender, route, origin, entry)


def call_node(service: RelayService, call_id: str | None, *, targets: Sequence[str] | None = None,
              set_id: int | None = None) -> Member:
    """The node a call's raw commands go to (`RelayService.for_call`), the call marked used in the
    ledger when it was looked up there (with a --target the ledger is not opened)."""
    member = service.for_call(call_id, targets=targets, set_id=set_id)
    if call_id is not None and not targets:
        service.touch(call_id)
    return member


@dataclass(frozen=True)
class Sourced:
    """A value an operation will use, and where it came from."""

    value: Any
    #: "given" (an option or a shell setting), "message" (the SIP message), "default", or None
    #: when there is no value.
    origin: str | None


@dataclass(frozen=True)
class ResolvedCall:
    """Where an offer's or answer's call leg comes from, value by value: the one place that
    weighs a SIP message against the options given with it."""

    #: The SIP message the input is; None for a bare SDP.
    message: SipMessage | None
    #: The SDP body (the whole input for a bare SDP).
    body: str
    call_id: Sourced
    from_tag: Sourced
    to_tag: Sourced
    #: The address sent to the relay instead of the SDP's (the module's SIP source address).
    source_ip: Sourced
    #: True when the SDP travels in a reply; None when it depends on offer or answer.
    in_reply: Sourced

    def leg(self, source: str) -> planner.CallLeg:
        """The call leg; InputError naming `source` when the Call-ID or From tag is missing."""
        if not self.call_id.value:
            raise InputError(f"{source}: no Call-ID", "give --call-id, or a whole SIP message")
        if not self.from_tag.value:
            raise InputError(f"{source}: no From tag", "give --from-tag, or a whole SIP message")
        return planner.CallLeg(self.call_id.value, self.from_tag.value, self.to_tag.value, bool(self.in_reply.value))


def read_message(text: str, source: str) -> SipMessage | None:
    """The SIP message `text` is, or None for a bare SDP (a broken message is an InputError)."""
    if text.lstrip().startswith("v="):
        return None  # an SDP body (its first line is v=): the SIP parser is not even loaded
    from rtppctl.proto.sip import looks_like_sip, parse_sip  # noqa: PLC0415

    return parse_sip(text, source=source) if looks_like_sip(text) else None


def resolve_call(request: RewriteRequest, message: SipMessage | None, *, offer: bool | None) -> ResolvedCall:
    """Weigh `request`'s options against `message` (from `read_message`).

    Options win over the message. The SIP source address comes from the top Via of a request
    only: a reply's Via describes the request's path, so it names the proxy, not where the reply
    or its media came from; for a reply (and a bare SDP) the SDP's own address is trusted unless
    --source-ip is given. A bare SDP travels in a request for an offer, a reply for an answer
    (`offer=None`: not decided yet).
    """

    def pick(given: Any, from_message: Any) -> Sourced:
        if given is not None and given != "":
            return Sourced(given, "given")
        if from_message:
            return Sourced(from_message, "message")
        return Sourced(None, None)

    if request.in_reply is not None:
        in_reply = Sourced(request.in_reply, "given")
    elif message is not None:
        in_reply = Sourced(not message.is_request, "message")
    elif offer is not None:
        in_reply = Sourced(not offer, "default")
    else:
        in_reply = Sourced(None, None)
    via_source = message.top_via_source if message is not None and message.is_request else None
    return ResolvedCall(
        message=message,
        body=message.body if message is not None else request.text,
        call_id=pick(request.call_id, message.call_id if message else None),
        from_tag=pick(request.from_tag, message.from_tag if message else None),
        to_tag=Sourced(request.to_tag, "given") if request.to_tag is not None else pick(None, message.to_tag if message else None),
        source_ip=pick(request.source_ip, via_source),
        in_reply=in_reply,
    )


@dataclass(frozen=True)
class PreparedRewrite:
    """An offer or answer with every local check done: what `send_rewrite` needs and nothing
    that can still fail before the relay is asked."""

    request: RewriteRequest
    call: ResolvedCall
    leg: planner.CallLeg
    flags: Any
    sdp: Any
    dialog_id: tuple[int, int] | None
    offer: bool


#: `prepare_rewrite`'s default: the request's text has not been read as a SIP message yet.
_UNREAD: Any = object()


def prepare_rewrite(route: Route, request: RewriteRequest, *, offer: bool,
                    message: SipMessage | None = _UNREAD) -> PreparedRewrite:
    """Every check of rtpproxy_offer (offer=True) or rtpproxy_answer that needs no relay: the
    message, the SDP, the flags, the marker, every token the commands will carry. `message` is
    the request's text already read by `read_message`, when the caller has it."""
    if message is _UNREAD:
        message = read_message(request.text, request.source)
    call = resolve_call(request, message, offer=offer)
    leg = call.leg(request.source)
    flags = parse_flags(request.flags)
    source = request.source if call.message is None else f"{request.source} (body)"
    sdp = sdp_mod.parse_sdp(call.body, source=source)
    if route.marker:
        marked = sdp.marker_line(route.marker)
        if marked is not None and not flags.ignore_marker:
            raise InputError(
                f"{request.source}: the SDP already carries {route.marker!r} (line {marked + 1}): "
                "it went through a relay already",
                "use flag f to put it through another relay anyway",
            )
    dialog_id = planner.parse_dialog_id(request.dialog_id) if request.dialog_id else None
    if request.ip:
        cmd.validate_address(request.ip, "--ip")  # written into the SDP, never sent
    # Every command the relay will get, built once for any capabilities it may have: a token,
    # address or length it would refuse is refused now, before anything is sent.
    planner.check(sdp, flags, leg, offer=offer, source_ip=call.source_ip.value,
                  notify_socket=route.notify_socket, dialog_id=dialog_id)
    return PreparedRewrite(request, call, leg, flags, sdp, dialog_id, offer)


def rewrite_sdp(route: Route, request: RewriteRequest, *, offer: bool) -> RewriteResult:
    """rtpproxy_offer (offer=True) or rtpproxy_answer: every check first, then the relay, then the SDP."""
    return send_rewrite(route, prepare_rewrite(route, request, offer=offer))


def send_rewrite(route: Route, prepared: PreparedRewrite) -> RewriteResult:
    """The relay part of an offer or answer, and the SDP rewritten from its replies.

    An offer (U) goes to the node the service picks and fails over to the next one; everything
    else goes to the node of the call (the ledger's, else the hash's) and stays there.
    """
    request, sdp, flags, leg = prepared.request, prepared.sdp, prepared.flags, prepared.leg
    source_ip = prepared.call.source_ip.value
    service = route.service
    letter, _ = planner.command_and_tags(leg, offer=prepared.offer, force_lookup=flags.force_lookup)
    # Read before anything is sent: a state store that cannot be used ends the command here, with
    # nothing left on a relay; the entry read is what the ledger write afterwards expects.
    known = service.ledger(leg.call_id)
    derived, take_tags, warnings = _dialog_for(service, prepared, known)

    def send(member: Member, client: RelayClient) -> tuple[Member, planner.Plan, list[dict[str, str]], dict[int, Any]]:
        steps = planner.plan(
            sdp, flags, leg, offer=prepared.offer, capabilities=service.capabilities(member), source_ip=source_ip,
            notify_socket=route.notify_socket, dialog_id=prepared.dialog_id, derived_dialog=derived,
        )
        sent: list[dict[str, str]] = []
        replies = {}
        for step in steps.commands:
            reply = client.call(step.command)
            sent.append({"command": step.command, "reply": reply})
            replies[step.medianum] = cmd.parse_port_reply(reply)
        return member, steps, sent, replies

    if letter == "U":
        member, steps, sent, replies = service.offer(leg.call_id, send, targets=route.targets, set_id=route.set_id,
                                                     read=known)
    else:
        chosen = service.for_call(leg.call_id, targets=route.targets, set_id=route.set_id)
        member, steps, sent, replies = service.attempt(chosen, lambda client: send(chosen, client), letter=letter)
    node = member.node
    targets: dict[int, Any] = {}
    streams: list[StreamResult] = []
    by_medianum = {s.medianum: s for s in sdp.streams if s.medianum is not None}
    for medianum, reply in replies.items():
        stream = by_medianum[medianum]
        if reply.port == 0:
            raise NoSession(
                f"{node.url} has no session for call {leg.call_id!r} (it answered {steps.letter} with port 0)",
                "send the offer first, or check the tags and that the same relay is used",
            )
        address, family = sdp_mod.choose_media_address(
            stream, reply_address=reply.address, reply_ipv6=reply.ipv6, ip_override=request.ip,
            advertised=node.advertised,
        )
        targets[medianum] = sdp_mod.MediaTarget(reply.port, address, family)
        streams.append(StreamResult(medianum, stream.media, reply.port, address, family))
    warnings += _keep_in_ledger(service, member, prepared, steps, streams, by_medianum, known, take_tags)
    body = prepared.call.body
    new_sdp = body if flags.keep_sdp else sdp_mod.rewrite(
        sdp, targets, rewrite_origin=flags.rewrite_origin,
        rewrite_session_connection=flags.rewrite_session_connection, marker=route.marker or None,
    )
    message = prepared.call.message
    return RewriteResult(
        sdp=new_sdp,
        original_sdp=body,
        message=_with_body(message, new_sdp) if message is not None else None,
        node=node.url,
        ret=sdp_mod.ret_value(targets, sdp),
        letter=steps.letter,
        streams=streams,
        commands=sent,
        warnings=[*warnings, *steps.warnings],
    )


def _dialog_for(service: RelayService, prepared: PreparedRewrite,
                known: LedgerEntry | None) -> tuple[tuple[int, int] | None, bool, list[str]]:
    """The stand-in dialog id for the call's notification tags, whether the ledger write may take
    tags from other calls, and warnings.

    A dialog id the user gave is theirs: kept, with a warning when a live call of the ledger has
    its tags already (that call loses them in the ledger). Otherwise, with flag n, a call the
    ledger knows keeps the dialog id of its tags; a new one gets the first derived id whose tags
    no other live call holds. The ledger write checks again (another process may take a tag in
    between): a tag can never belong to two calls in the ledger.
    """
    flags, leg = prepared.flags, prepared.leg
    if prepared.dialog_id is not None:
        if not (flags.notify or flags.dtmf):
            return None, False, []
        notify, dtmf = planner.dialog_tags(prepared.dialog_id)
        warnings = []
        for wanted, tag in ((flags.notify, notify), (flags.dtmf, dtmf)):
            holder = service.tag_holder(tag, leg.call_id) if wanted else None
            if holder is not None:
                entry, ident = prepared.dialog_id
                warnings.append(
                    f"dialog id {entry}.{ident}: the tag {tag!r} is also live call {holder.call_id!r}'s; the relay "
                    f"will report both calls with it, and the ledger now gives it to call {leg.call_id!r}")
        return None, True, warnings
    if not flags.notify:
        return None, False, []
    if known is not None:
        kept = planner.dialog_id_of_tag(known.notify_tag) or planner.dialog_id_of_tag(known.dtmf_tag)
        if kept is not None:
            return kept, False, []
    for attempt in range(_DIALOG_ATTEMPTS):
        candidate = planner.derived_dialog_id(leg.call_id, attempt)
        if not any(service.tag_holder(tag, leg.call_id) for tag in planner.dialog_tags(candidate)):
            return candidate, False, []
    raise ConfigError(
        f"{service.state_shown}: every notification tag rtppctl can derive for call {leg.call_id!r} belongs to "
        "another live call in the ledger",
        "give the call a dialog id of its own with --dialog-id, or prune the ledger (rtppctl sessions --prune)",
    )


def _keep_in_ledger(service: RelayService, member: Member, prepared: PreparedRewrite, steps: planner.Plan,
                    streams: list[StreamResult], by_medianum: dict[int, Any], known: LedgerEntry | None,
                    take_tags: bool) -> list[str]:
    """An offer (re)writes the call's ledger entry; an answer adds the To tag to it (or, for a
    call the ledger does not know, writes one, so the call's later commands find its node).
    Each is one transaction expecting `known`, the entry read before the relay was asked.

    The entry's From tag is the session creator's (`_creator`), whichever party's message this is.

    A call that changed meanwhile (another command ended or moved it) is not written over: an
    answer or lookup says so in a warning; an offer's U made or changed a session the ledger
    cannot hold, so it is deleted again, as when the store fails after the U (both ConfigError)."""
    if service.store is None:
        return []  # --state none: no ledger, and the store's module is never loaded
    from rtppctl.relays.store import LedgerChanged, LedgerEntry, LedgerStream  # noqa: PLC0415

    leg = prepared.leg
    creator, other = _creator(known, member, leg, steps)
    try:
        if known is not None and not prepared.offer:
            if service.add_to_tag(known, other) is None:
                return [f"the ledger's entry for call {leg.call_id!r} was removed or moved by another command while "
                        "this answer ran; it was left as it is"]
            return []
        now = service.now()
        service.remember(LedgerEntry(
            call_id=leg.call_id,
            from_tag=creator,
            to_tag=other,
            set_id=member.set_id,
            node_url=member.node.url,
            advertised=member.node.advertised,
            streams=tuple(LedgerStream(s.medianum, s.port, tuple(by_medianum[s.medianum].codecs)) for s in streams),
            notify_tag=steps.notify_tag,
            dtmf_tag=steps.dtmf_tag,
            created_at=known.created_at if known is not None else now,
            last_used_at=now,
        ), replacing=known, offer=steps.letter == "U", take_tags=take_tags)
    except LedgerChanged as err:
        if steps.letter != "U":
            return [f"{err.message}; it was left as it is"]
        # The call changed meanwhile: whatever session this U made or changed is no longer the
        # ledger's, so it goes, whatever node it is on.
        undo = err.holder is None or known is None or known.node_url != member.node.url
        raise _undo_offer(service, member, leg, steps, err) if undo else err from None
    except ConfigError as err:
        # The store failed for good (its budget ran out, the server went). A session that was
        # there before (the ledger has the call on this node) stays known; a new one goes.
        if steps.letter == "U" and (known is None or known.node_url != member.node.url):
            raise _undo_offer(service, member, leg, steps, err) from None
        raise
    return []


def _creator(known: LedgerEntry | None, member: Member, leg: planner.CallLeg,
             steps: planner.Plan) -> tuple[str, str | None]:
    """(creator's tag, the other tag) of the call's session after this offer or answer.

    RTPProxy keys a session by the first tag of the U that created it (src/rtpp_session.c keeps
    it as the session's from_tag) and names record files after it (src/rtpp_record.c). That is
    the offer's From tag for an INVITE, but its To tag for a late offer in a 200 OK (U ttag ftag),
    and a callee's re-INVITE (U callee caller) finds the caller's session, which keeps its
    creator. So: a session the ledger has on this node keeps its creator; otherwise the first
    tag sent is the creator's (for an answer to a call the ledger does not know, the module's tag
    order puts it first too, except after a callee's re-offer, which nothing here can see)."""
    tags = [tag for tag in (leg.from_tag, leg.to_tag or None) if tag]
    if known is not None and known.node_url == member.node.url and known.from_tag in tags:
        creator = known.from_tag
    else:
        creator = next((tag for tag in steps.tags if tag in tags), leg.from_tag)
    other = next((tag for tag in tags if tag != creator), None)
    return creator, other


def _undo_offer(service: RelayService, member: Member, leg: planner.CallLeg, steps: planner.Plan,
                cause: ConfigError) -> ConfigError:
    """Delete the session the offer's U made on `member` (with the U's tags), because the ledger
    could not record it; the error to raise, saying what happened to the session."""
    line = cmd.delete(leg.call_id, steps.tags[0], steps.tags[1] if len(steps.tags) > 1 else None)
    node = member.node.url
    hint = "run it again once the state database can be used, or with --state none to run without the ledger"
    try:
        reply = service.attempt(member, lambda client: client.exchange(line).reply, letter="D")
        code = cmd.error_code(reply)
        if code is not None and code != cmd.SESSION_NOT_FOUND:
            raise ProxyError(code, command=line, node=node)
    except RtppctlError as err:
        return ConfigError(
            f"{cause.message}; deleting the session {node} had just made for call {leg.call_id!r} failed too "
            f"({err.message}): the relay holds a call the ledger does not know",
            "once the relay answers, remove it with: rtppctl --state none unforce -t "
            + " ".join(shlex.quote(word) for word in (node, "--call-id", leg.call_id, "--from-tag", steps.tags[0])),
        )
    return ConfigError(
        f"{cause.message}; so that no call is left that the ledger does not know, the session {node} had just made "
        f"for call {leg.call_id!r} was deleted again (D)",
        hint,
    )


@dataclass(frozen=True)
class EngageResult:
    """Both halves of a dialog's offer/answer exchange."""

    late: bool
    offer: RewriteResult
    answer: RewriteResult


def engage(route: Route, offer_request: RewriteRequest, answer_request: RewriteRequest, *, late: bool | None = None) -> EngageResult:
    """rtpproxy_engage's whole exchange (§4.8): normal negotiation sends U for the INVITE's SDP and
    L for the 200 OK's; late negotiation (the INVITE had no SDP) sends U for the 200 OK's SDP (tags
    swapped) and U again for the ACK's.

    Both inputs are checked, and checked to belong to one call, before the offer is sent: an
    answer that cannot go through must not leave the offer's session behind on the relay.
    """
    # Each message is read once, here, and handed on.
    offer_message = read_message(offer_request.text, offer_request.source)
    answer_message = read_message(answer_request.text, answer_request.source)
    if late is None:
        # The offer travelling in a reply means the INVITE came without SDP.
        late = offer_message is not None and not offer_message.is_request
    first = prepare_rewrite(route, _with_direction(offer_request, in_reply=late), offer=True, message=offer_message)
    # The answer belongs to the same dialog: what it does not say, it takes from the offer.
    answer_request = _inherit_call(answer_request, answer_message, first)
    second = prepare_rewrite(route, _with_direction(answer_request, in_reply=not late), offer=late,
                             message=answer_message)
    _check_same_call(first, second)
    return EngageResult(bool(late), send_rewrite(route, first), send_rewrite(route, second))


def _with_direction(request: RewriteRequest, *, in_reply: bool) -> RewriteRequest:
    return request if request.in_reply is not None else replace(request, in_reply=in_reply)


def _inherit_call(answer: RewriteRequest, message: SipMessage | None, offer: PreparedRewrite) -> RewriteRequest:
    """The answer's request with the offer's call identity where the answer has none of its own."""
    own = resolve_call(answer, message, offer=None)
    return replace(
        answer,
        call_id=answer.call_id or (None if own.call_id.value else offer.leg.call_id),
        from_tag=answer.from_tag or (None if own.from_tag.value else offer.leg.from_tag),
        to_tag=answer.to_tag if answer.to_tag is not None else (None if own.to_tag.value else offer.leg.to_tag),
        flags=answer.flags or offer.request.flags,
        ip=answer.ip or offer.request.ip,
        dialog_id=answer.dialog_id or offer.request.dialog_id,
    )


def _check_same_call(offer: PreparedRewrite, answer: PreparedRewrite) -> None:
    """The offer and the answer must name one call: the same Call-ID and From tag, and the same
    To tag when both have one (the INVITE of a new call has none yet)."""
    pairs = (
        ("Call-ID", offer.leg.call_id, answer.leg.call_id),
        ("From tag", offer.leg.from_tag, answer.leg.from_tag),
        ("To tag", offer.leg.to_tag, answer.leg.to_tag),
    )
    for what, mine, theirs in pairs:
        if mine and theirs and mine != theirs:
            raise InputError(
                f"the offer ({offer.request.source}) and the answer ({answer.request.source}) are from "
                f"different calls: {what} {mine!r} and {theirs!r}",
                "give the INVITE and the 200 OK of one dialog (or the same --call-id and tags for both)",
            )


@dataclass(frozen=True)
class UnforceResult:
    """What D said."""

    node: str
    command: str
    reply: str
    #: The relay had (and has now deleted) a session matching the tags.
    had_session: bool


def unforce(call: Call) -> UnforceResult:
    """rtpproxy_unforce: `D callid ftag [ttag]` with the message's From and To tags, never
    swapped, no medianum (every stream goes)."""
    line = cmd.delete(call.call_id, call.uac_tag, call.uas_tag)
    service = call.route.service
    member = call.member()
    reply = service.attempt(member, lambda client: client.exchange(line).reply, letter="D")
    code = cmd.error_code(reply)
    if code is not None and code != cmd.SESSION_NOT_FOUND:
        raise ProxyError(code, command=line, node=member.node.url)
    # Deleted, or already gone: either way the relay holds no session for the call any more. The
    # entry goes only while it names this node: a call another command moved meanwhile stays.
    service.forget(call.call_id, node_url=member.node.url)
    return UnforceResult(member.node.url, line, reply, code is None)


def _with_body(message: SipMessage, body: str) -> str:
    from rtppctl.proto.sip import with_body  # noqa: PLC0415 - loaded only for a SIP message

    return with_body(message, body)
