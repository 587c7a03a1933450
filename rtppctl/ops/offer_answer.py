"""The module's SDP functions as operations: offer, answer, engage, unforce.

Kept apart from the relay-level operations so that one-shot commands such as `version` do not pay
for loading them; `rtppctl.ops` re-exports every name here on first use.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from rtppctl.ops import Connect, probe_capabilities
from rtppctl.proto import command as cmd
from rtppctl.proto import offer as planner
from rtppctl.proto import sdp as sdp_mod
from rtppctl.proto.errors import ExitCode, InputError, ProxyError, RtppctlError
from rtppctl.proto.flags import parse_flags
from rtppctl.proto.sip import looks_like_sip, parse_sip, with_body

if TYPE_CHECKING:
    from rtppctl.nodes import Member


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
    #: Where the SIP message came from; None: from the message's top Via, else trust the SDP.
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
class Relay:
    """The relay an operation talks to, with what rtppctl's configuration says about SDP."""

    connect: Connect
    member: Member
    #: nortpproxy_str; empty disables the marker.
    marker: str = "a=nortpproxy:yes"
    #: rtpp_notify_socket, as configured.
    notify_socket: str | None = None


def rewrite_sdp(relay: Relay, request: RewriteRequest, *, offer: bool) -> RewriteResult:
    """rtpproxy_offer (offer=True) or rtpproxy_answer: every check first, then the relay, then the SDP."""
    message = parse_sip(request.text, source=request.source) if looks_like_sip(request.text) else None
    body = message.body if message is not None else request.text
    call_id = request.call_id or (message.call_id if message else None)
    from_tag = request.from_tag or (message.from_tag if message else None)
    to_tag = request.to_tag if request.to_tag is not None else (message.to_tag if message else None)
    if request.in_reply is not None:
        in_reply = request.in_reply
    elif message is not None:
        in_reply = not message.is_request
    else:
        # A bare SDP: offers usually travel in the INVITE, answers in the 200 OK.
        in_reply = not offer
    source_ip = request.source_ip or (message.top_via_source if message else None)
    if not call_id:
        raise InputError(f"{request.source}: no Call-ID", "give --call-id, or a whole SIP message")
    if not from_tag:
        raise InputError(f"{request.source}: no From tag", "give --from-tag, or a whole SIP message")

    flags = parse_flags(request.flags)
    sdp = sdp_mod.parse_sdp(body, source=request.source if message is None else f"{request.source} (body)")
    if relay.marker:
        marked = sdp.marker_line(relay.marker)
        if marked is not None and not flags.ignore_marker:
            raise InputError(
                f"{request.source}: the SDP already carries {relay.marker!r} (line {marked + 1}): "
                "it went through a relay already",
                "use flag f to put it through another relay anyway",
            )
    dialog_id = planner.parse_dialog_id(request.dialog_id) if request.dialog_id else None
    # Tokens and addresses are checked now, so that bad input never reaches the relay.
    for value, what in ((call_id, "call-id"), (from_tag, "from-tag"), (to_tag, "to-tag")):
        if value:
            cmd.validate_token(value, what)
    for value, what in ((request.ip, "--ip"), (source_ip, "source address")):
        if value:
            cmd.validate_address(value, what)
    leg = planner.CallLeg(call_id, from_tag, to_tag, in_reply)
    # Everything that can be wrong with the input has been checked; now the relay.
    node = relay.member.node
    with relay.connect(node) as client:
        capabilities = probe_capabilities(client)
        steps = planner.plan(
            sdp, flags, leg, offer=offer, capabilities=capabilities, source_ip=source_ip,
            notify_socket=relay.notify_socket, dialog_id=dialog_id,
        )
        sent: list[dict[str, str]] = []
        replies = {}
        for step in steps.commands:
            reply = client.call(step.command)
            sent.append({"command": step.command, "reply": reply})
            replies[step.medianum] = cmd.parse_port_reply(reply)
    targets: dict[int, Any] = {}
    streams: list[StreamResult] = []
    by_medianum = {s.medianum: s for s in sdp.streams if s.medianum is not None}
    for medianum, reply in replies.items():
        stream = by_medianum[medianum]
        if reply.port == 0:
            raise NoSession(
                f"{node.url} has no session for call {call_id!r} (it answered {steps.letter} with port 0)",
                "send the offer first, or check the tags and that the same relay is used",
            )
        address, family = sdp_mod.choose_media_address(
            stream, reply_address=reply.address, reply_ipv6=reply.ipv6, ip_override=request.ip,
            advertised=node.advertised,
        )
        targets[medianum] = sdp_mod.MediaTarget(reply.port, address, family)
        streams.append(StreamResult(medianum, stream.media, reply.port, address, family))
    new_sdp = body if flags.keep_sdp else sdp_mod.rewrite(
        sdp, targets, rewrite_origin=flags.rewrite_origin,
        rewrite_session_connection=flags.rewrite_session_connection, marker=relay.marker or None,
    )
    return RewriteResult(
        sdp=new_sdp,
        original_sdp=body,
        message=with_body(message, new_sdp) if message is not None else None,
        node=node.url,
        ret=sdp_mod.ret_value(targets, sdp),
        letter=steps.letter,
        streams=streams,
        commands=sent,
        warnings=list(steps.warnings),
    )


@dataclass(frozen=True)
class EngageResult:
    """Both halves of a dialog's offer/answer exchange."""

    late: bool
    offer: RewriteResult
    answer: RewriteResult


def engage(relay: Relay, offer_request: RewriteRequest, answer_request: RewriteRequest, *, late: bool | None = None) -> EngageResult:
    """rtpproxy_engage's whole exchange (§4.8): normal negotiation sends U for the INVITE's SDP and
    L for the 200 OK's; late negotiation (the INVITE had no SDP) sends U for the 200 OK's SDP (tags
    swapped) and U again for the ACK's."""
    if late is None:
        # The offer travelling in a reply means the INVITE came without SDP.
        late = looks_like_sip(offer_request.text) and not parse_sip(offer_request.text, source=offer_request.source).is_request
    first = rewrite_sdp(relay, _with_direction(offer_request, in_reply=late), offer=True)
    # The answer belongs to the same dialog: reuse what the offer learnt unless given again.
    answer_request = _inherit_call(answer_request, offer_request)
    second = rewrite_sdp(relay, _with_direction(answer_request, in_reply=not late), offer=late)
    return EngageResult(bool(late), first, second)


def _with_direction(request: RewriteRequest, *, in_reply: bool) -> RewriteRequest:
    return request if request.in_reply is not None else replace(request, in_reply=in_reply)


def _inherit_call(answer: RewriteRequest, offer: RewriteRequest) -> RewriteRequest:
    return replace(
        answer,
        call_id=answer.call_id or offer.call_id,
        from_tag=answer.from_tag or offer.from_tag,
        to_tag=answer.to_tag if answer.to_tag is not None else offer.to_tag,
        flags=answer.flags or offer.flags,
        ip=answer.ip or offer.ip,
        dialog_id=answer.dialog_id or offer.dialog_id,
    )


@dataclass(frozen=True)
class UnforceResult:
    """What D said."""

    node: str
    command: str
    reply: str
    #: The relay had (and has now deleted) a session matching the tags.
    had_session: bool


def unforce(relay: Relay, call_id: str, from_tag: str, to_tag: str | None = None) -> UnforceResult:
    """rtpproxy_unforce: `D callid ftag [ttag]`, tags never swapped, no medianum (every stream goes)."""
    line = cmd.delete(call_id, from_tag, to_tag or None)
    with relay.connect(relay.member.node) as client:
        reply = client.exchange(line).reply
    code = cmd.error_code(reply)
    if code is not None and code != 50:
        raise ProxyError(code, command=line, node=relay.member.node.url)
    return UnforceResult(relay.member.node.url, line, reply, code is None)
