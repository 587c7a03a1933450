"""The options that name a call, defined once, with one help text each.

`--call-id`, `--from-tag` and `--to-tag` are Annotated aliases that every command naming a call
uses (offer, answer and engage read the rest of the call from their input). The commands about a
call on its relay (play, stop-play, record, stop-record, stats, query, unforce) take all six
call-addressing options (those three, `--message`, `--target`, `--set`) through `call_options`,
which adds them to the command and hands it one `CallOptions`; `named_call` turns that into the
`ops.Call` the operation takes.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rtppctl.cli.common import SetOption, TargetOption, run_context

if TYPE_CHECKING:
    from rtppctl.cli.common import RunContext
    from rtppctl.ops import Call, Route

CallIdOption = Annotated[
    str | None,
    typer.Option("--call-id", metavar="ID", show_default=False,
                 help="The call's Call-ID (default: the message's). It picks the relay: the ledger's for the call, "
                      "else the one the Call-ID hashes to."),
]
FromTagOption = Annotated[
    str | None,
    typer.Option("--from-tag", metavar="TAG", show_default=False,
                 help="The From tag, the uac's: the party that sent the request (default: the message's; for media "
                      "commands and unforce, else the ledger's: the tag of the party whose offer created the call)."),
]
ToTagOption = Annotated[
    str | None,
    typer.Option("--to-tag", metavar="TAG", show_default=False,
                 help="The To tag, the uas's; none before the callee answers (default: the message's; for media "
                      "commands and unforce, else the ledger's)."),
]
MessageOption = Annotated[
    str | None,
    typer.Option("--message", "-m", metavar="FILE", show_default=False,
                 help="A SIP message of the call from a trace (BYE, re-INVITE, 200 OK, ...; '-': stdin): its Call-ID "
                      "and tags. The uac is its From party; a request was sent by the uac, a reply by the uas."),
]


@dataclass(frozen=True)
class CallOptions:
    """The six call-addressing options as given."""

    call_id: str | None = None
    from_tag: str | None = None
    to_tag: str | None = None
    message: str | None = None
    target: list[str] | None = None
    set_id: int | None = None


#: (parameter name, annotation) of each option `call_options` adds, in the order help lists them.
_CALL_PARAMETERS: tuple[tuple[str, Any], ...] = (
    ("call_id", CallIdOption),
    ("from_tag", FromTagOption),
    ("to_tag", ToTagOption),
    ("message", MessageOption),
    ("target", TargetOption),
    ("set_id", SetOption),
)


def call_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give `command` the six call-addressing options. It declares a parameter `call` and gets
    them there as one `CallOptions`; Typer sees them as the command's own options (the wrapper's
    signature), so help, completions and the man page list them as before."""
    signature = inspect.signature(command, eval_str=True)
    kept = [parameter for name, parameter in signature.parameters.items() if name != "call"]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)
             for name, annotation in _CALL_PARAMETERS]

    @functools.wraps(command)
    def with_call(*args: Any, **kwargs: Any) -> Any:
        given = {name: kwargs.pop(name, None) for name, _ in _CALL_PARAMETERS}
        return command(*args, call=CallOptions(**given), **kwargs)

    with_call.__signature__ = signature.replace(parameters=[*kept, *added])  # type: ignore[attr-defined]
    with_call.__annotations__ = {parameter.name: parameter.annotation for parameter in [*kept, *added]}
    return with_call


def named_call(ctx: typer.Context, options: CallOptions, route: Route | None = None) -> Call:
    """The `ops.Call` the options name: the message read (a file or stdin), then `call_of`.
    `route`: where its commands go, when the command built it already (default: the options'
    --target or --set, with the configuration's defaults)."""
    text, source = None, "the message"
    if options.message is not None:
        from rtppctl.files import read_input  # noqa: PLC0415

        text, source = read_input(options.message)
    return call_of(run_context(ctx), options, text, source, route)


def call_of(s: RunContext, options: CallOptions, message: str | None, source: str = "the message",
            route: Route | None = None) -> Call:
    """The `ops.Call` the options and a SIP message's text (`message`, read from `source`) name,
    through `ops.find_call` (`batch` has the message's text itself, not a file)."""
    from rtppctl import ops  # noqa: PLC0415

    parsed = None
    if message is not None:
        from rtppctl.proto.sip import parse_sip  # noqa: PLC0415

        parsed = parse_sip(message, source=source)
    if route is None:
        route = ops.Route(s.relays, options.target, options.set_id)
    return ops.find_call(route, call_id=options.call_id, from_tag=options.from_tag, to_tag=options.to_tag,
                         message=parsed, source=source)
