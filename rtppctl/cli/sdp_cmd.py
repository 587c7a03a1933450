"""offer, answer, engage, unforce: the module's SDP functions from a shell.

Each command reads its input (a file, stdin, an SDP body or a whole SIP message), checks where its
result will go, calls one operation in `rtppctl.ops`, and hands the result to the renderer or
writes it to a file. Every check that can fail locally, the output path included, happens before
the first command reaches a relay; nothing is printed or written until the whole operation has
succeeded, so a failure leaves no partial output and an input file untouched.
"""

from typing import Annotated

import typer

from rtppctl.cli.common import SetOption, TargetOption, route_for, run_context
from rtppctl.cli.options import CallIdOption, CallOptions, FromTagOption, ToTagOption, call_options, named_call

InputArgument = Annotated[
    str, typer.Argument(metavar="FILE|-", help="An SDP body or a whole SIP message ('-' or nothing: stdin).")
]
FlagsOption = Annotated[
    str, typer.Option("--flags", metavar="FLAGS", help="The module's flags: a l k i e f r o c s w n[<SOCK>] d[PT] tNN TNN zNN.")
]
IpOption = Annotated[str | None, typer.Option("--ip", metavar="ADDR", help="Address to write into the SDP (the module's ip_address).", show_default=False)]
SourceIpOption = Annotated[
    str | None,
    typer.Option("--source-ip", metavar="ADDR", show_default=False,
                 help="Where the SIP message came from; sent to the relay instead of the SDP address unless flag r or a "
                      "(default: the top Via of a SIP request; for a reply or a bare SDP the SDP address is trusted)."),
]
ReplyOption = Annotated[
    bool | None,
    typer.Option("--reply/--request", show_default=False,
                 help="The SDP travels in a reply (swaps the tag order) or a request (default: from the SIP message; "
                      "else a request for offer, a reply for answer)."),
]
DialogIdOption = Annotated[
    str | None,
    typer.Option("--dialog-id", metavar="ENTRY.ID", show_default=False,
                 help="OpenSIPS dialog id for notification tags (flags n, d); default: derived from the Call-ID."),
]
OutputOption = Annotated[str | None, typer.Option("--output", "-o", metavar="FILE", help="Write the result to FILE ('-': stdout): a regular file atomically, a device or FIFO through.", show_default=False)]
InPlaceOption = Annotated[bool, typer.Option("--in-place", "-i", help="Rewrite FILE itself (atomically; untouched on error).")]
DiffOption = Annotated[bool, typer.Option("--diff", help="Show a before/after diff instead of the result.")]


def _rewrite_command(is_offer: bool, name: str, doc: str):  # noqa: ANN202 - a Typer command
    """offer and answer take the same options; one parameter list serves both."""

    def command(
        ctx: typer.Context,
        file: InputArgument = "-",
        call_id: CallIdOption = None,
        from_tag: FromTagOption = None,
        to_tag: ToTagOption = None,
        flags: FlagsOption = "",
        ip: IpOption = None,
        source_ip: SourceIpOption = None,
        reply: ReplyOption = None,
        dialog_id: DialogIdOption = None,
        target: TargetOption = None,
        set_id: SetOption = None,
        output: OutputOption = None,
        in_place: InPlaceOption = False,
        diff: DiffOption = False,
    ) -> None:
        _rewrite(ctx, is_offer, locals())

    command.__name__ = command.__qualname__ = name
    command.__doc__ = doc
    return command


offer = _rewrite_command(True, "offer", """Put an SDP offer through a relay (rtpproxy_offer): U per stream, SDP rewritten.

    Examples:

      rtppctl offer invite.txt                       # a whole SIP INVITE from a trace

      rtppctl offer offer.sdp --call-id c1 --from-tag ft --flags co

      rtppctl offer --in-place --diff offer.sdp --call-id c1 --from-tag ft

      rtppctl offer 200ok.txt --json | jq .ret       # late offer in a 200 OK
    """)

answer = _rewrite_command(False, "answer", """Put an SDP answer through a relay (rtpproxy_answer): L per stream, SDP rewritten.

    Examples:

      rtppctl answer 200ok.txt                       # a whole SIP 200 OK from a trace

      rtppctl answer answer.sdp --call-id c1 --from-tag ft --to-tag tt
    """)


def _rewrite(ctx: typer.Context, is_offer: bool, options: dict) -> None:
    from rtppctl import ops  # noqa: PLC0415

    s = run_context(ctx)
    destination = _destination(options["file"], options["output"], options["in_place"])
    text, name = _read(s, options["file"])
    request = ops.RewriteRequest(
        text=text, source=name, flags=options["flags"], call_id=options["call_id"], from_tag=options["from_tag"],
        to_tag=options["to_tag"], in_reply=options["reply"], source_ip=options["source_ip"], ip=options["ip"],
        dialog_id=options["dialog_id"],
    )
    result = ops.rewrite_sdp(route_for(s, options["target"], options["set_id"]), request, offer=is_offer)
    _deliver(s, result, text, destination, options["diff"])


def _read(s, path: str) -> tuple[str, str]:  # noqa: ANN001
    """The input text; on a terminal, say that stdin is being read (else it looks like a hang)."""
    from rtppctl.files import read_input, stdin_is_terminal  # noqa: PLC0415

    if path == "-" and stdin_is_terminal():
        s.output.status("reading an SDP body or a SIP message from stdin; end it with Ctrl-D (or give a FILE)")
    return read_input(path)


def _destination(file: str, output: str | None, in_place: bool) -> str | None:
    """The file the result goes to (None: stdout), checked before anything is sent to a relay."""
    from rtppctl.files import check_writable  # noqa: PLC0415

    if in_place and file == "-":
        raise typer.BadParameter("--in-place needs a FILE, not stdin", param_hint="--in-place")
    if in_place and output:
        raise typer.BadParameter("give either --output or --in-place", param_hint="--in-place")
    destination = file if in_place else output
    if destination == "-":
        return None
    if destination:
        check_writable(destination)
    return destination


def _deliver(s, result, original: str, destination: str | None, diff: bool) -> None:  # noqa: ANN001
    """Warnings to stderr; the result to a file (then JSON or a diff on stdout), or to stdout."""
    from rtppctl.cli.output import Diff, Verbatim  # noqa: PLC0415
    from rtppctl.files import write_atomically  # noqa: PLC0415

    out = s.output
    for warning in result.warnings:
        out.warn(warning)
    if destination:
        write_atomically(destination, result.output)
    data = rewrite_json(result, destination)
    if diff:
        out.emit(data, Diff(original, result.output))
    elif destination:
        out.emit(data)
    else:
        out.emit(data, Verbatim(result.output))


def rewrite_json(result, destination: str | None) -> dict:  # noqa: ANN001 - ops.RewriteResult
    """The object `offer --json` and `answer --json` print (and `batch` for each offer and answer):
    the result, and the file it was written to (None: stdout)."""
    from rtppctl import ops  # noqa: PLC0415

    data = ops.as_dict(result)
    data["output"] = destination
    return data


def engage(
    ctx: typer.Context,
    offer_file: Annotated[str, typer.Option("--offer", metavar="FILE", help="The message or SDP carrying the offer (INVITE; 200 OK when late).")],
    answer_file: Annotated[str, typer.Option("--answer", metavar="FILE", help="The message or SDP carrying the answer (200 OK; ACK when late).")],
    call_id: CallIdOption = None,
    from_tag: FromTagOption = None,
    to_tag: ToTagOption = None,
    flags: FlagsOption = "",
    ip: IpOption = None,
    source_ip: SourceIpOption = None,
    late: Annotated[
        bool | None,
        typer.Option("--late/--normal", show_default=False,
                     help="Late negotiation: the INVITE had no SDP, the offer is in the 200 OK and the answer in the ACK "
                          "(default: late when the offer is a SIP reply)."),
    ] = None,
    dialog_id: DialogIdOption = None,
    target: TargetOption = None,
    set_id: SetOption = None,
) -> None:
    """A dialog's whole offer/answer exchange through one relay (rtpproxy_engage); prints both bodies.

    Examples:

      rtppctl engage --offer invite.txt --answer 200ok.txt

      rtppctl engage --offer offer.sdp --answer answer.sdp --call-id c1 --from-tag ft --to-tag tt

      rtppctl engage --late --offer 200ok.txt --answer ack.txt --json
    """
    from rtppctl import ops  # noqa: PLC0415
    from rtppctl.cli.output import Verbatim  # noqa: PLC0415

    s = run_context(ctx)
    out = s.output
    requests = []
    for path in (offer_file, answer_file):
        text, name = _read(s, path)
        requests.append(ops.RewriteRequest(
            text=text, source=name, flags=flags, call_id=call_id, from_tag=from_tag, to_tag=to_tag,
            source_ip=source_ip, ip=ip, dialog_id=dialog_id,
        ))
    result = ops.engage(route_for(s, target, set_id), requests[0], requests[1], late=late)
    for warning in dict.fromkeys(result.offer.warnings + result.answer.warnings):
        out.warn(warning)
    mode = "late negotiation" if result.late else "normal negotiation"
    offer_text = result.offer.output if result.offer.output.endswith("\n") else result.offer.output + "\n"
    # The bodies are the data on stdout; which is which is said on stderr, so a pipe gets SDP only.
    out.status(f"# offer ({result.offer.letter}, {mode}) via {result.offer.node}, then the answer ({result.answer.letter})")
    out.emit(ops.as_dict(result), Verbatim(offer_text), Verbatim(result.answer.output))


@call_options
def unforce(ctx: typer.Context, call: CallOptions = CallOptions()) -> None:
    """Tear a call's relay session down (rtpproxy_unforce): D, every stream of the call.

    D carries the message's From and To tags as they are; without a message, the options', else the ledger's. Says whether the relay had the session; a session already gone is not an error.

    Examples:

      rtppctl unforce --call-id c1@host --from-tag ft --to-tag tt

      rtppctl unforce --message bye.txt

      rtppctl unforce --call-id c1@host --json
    """
    from rtppctl import ops  # noqa: PLC0415

    s = run_context(ctx)
    out = s.output
    found = named_call(ctx, call, route_for(s, call.target, call.set_id))
    result = ops.unforce(found)
    line = (
        f"deleted the session of {found.call_id} on {result.node}"
        if result.had_session
        else f"{result.node} had no session for {found.call_id} (nothing to delete)"
    )
    out.emit(ops.as_dict(result), line)
