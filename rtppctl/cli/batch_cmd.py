"""batch: many operations in one process, NDJSON in, one JSON object per operation out.

The command opens the input and hands `rtppctl.ops.batch` one function, `_run`, that runs an
operation as its one-shot command does: the same `ops` call with the same arguments, the same
warnings, and the object that command's `--json` prints, built by the same function
(`ops.as_dict`, `sdp_cmd.rewrite_json`); the keys of each op are in `ops.batch.OPS`. Every result
goes out through the one renderer, as NDJSON whatever `--json` says: a batch is for scripts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rtppctl.cli.common import route_for, run_context
from rtppctl.proto import limits

if TYPE_CHECKING:
    from rtppctl.cli.common import RunContext
    from rtppctl.ops.batch import Done, Operation


def batch(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(metavar="FILE|-", help="Operations, one JSON object a line ('-' or nothing: stdin); blank lines and lines starting with # are skipped.")] = "-",
    window: Annotated[int, typer.Option("--window", metavar="N", min=1, max=limits.MAX_WINDOW, help="Operations running at once (and commands in flight per relay).")] = limits.DEFAULT_WINDOW,
    as_completed: Annotated[bool, typer.Option("--as-completed", help="Write each result as soon as its operation ends (default: in input order).")] = False,
    fail_fast: Annotated[bool, typer.Option("--fail-fast", help="Stop at the first failure: no later line is read or started (those already running finish).")] = False,
) -> int:
    """Run many operations in one process: one JSON object a line in, one result a line out.

    Each line names its op as typed on the command line (offer, answer, engage, unforce, play, stop-play, record, stop-record, stats, query, lb explain, raw) and its options as keys named after the long option (call_id, from_tag, flags, set, target...); sdp, offer, answer and message carry the text itself. Each result is {"id", "op", "result"} where result is what that command's --json prints, or {"id", "op", "error": {"message", "exit_code", "line", "key", "hint"}}; a bad line gets an error and the batch goes on. Operations on different calls run at once, those on one Call-ID in input order. A {"type": "summary"} object ends the output. Exits 0 when every operation succeeded, else the most severe exit code among the failures: 1, 5, 4, 3, 6, then 2; 130 on Ctrl-C (a second Ctrl-C abandons what waits for a relay).

    Examples:

      rtppctl batch calls.ndjson

      printf '%s\\n' '{"op": "unforce", "call_id": "c1@host", "id": 1}' | rtppctl batch -

      rtppctl batch --as-completed --window 64 calls.ndjson | jq -c 'select(.error)'
    """
    from rtppctl.cli.output import Output  # noqa: PLC0415
    from rtppctl.ops.batch import BatchRun  # noqa: PLC0415
    from rtppctl.ops.interrupts import Interrupts  # noqa: PLC0415

    s = run_context(ctx)
    source = _open(s, file)
    # NDJSON whatever --json says, through the one renderer.
    out = Output(json_mode=True, color=False, stdout=s.output.stdout, stderr=s.output.stderr)
    try:
        with Interrupts() as interrupts:
            summary = BatchRun(lambda operation: _run(ctx, operation), lambda record: out.emit(record, flush=False),
                               window=window, as_completed=as_completed, fail_fast=fail_fast,
                               signals=lambda: interrupts.signals, service=s.relays, status=s.output.status,
                               flush=out.flush).run(source)
    finally:
        if file != "-":
            source.close()
    out.emit(summary.record())
    if summary.interrupted:
        raise KeyboardInterrupt  # every result written: now the usual one line and exit 130
    return summary.exit_code


def _open(s: RunContext, path: str) -> Any:
    """The input as a binary stream: stdin for '-', else a regular file (`files.open_input`)."""
    import sys  # noqa: PLC0415

    from rtppctl.files import open_input, stdin_is_terminal  # noqa: PLC0415

    if path != "-":
        return open_input(path)
    if stdin_is_terminal():
        s.output.status("reading operations from stdin, one JSON object a line; end with Ctrl-D (or give a FILE)")
    return sys.stdin.buffer


def _run(ctx: typer.Context, operation: Operation) -> Done:
    """One operation, as its one-shot command runs it (in its own greenlet: see ops/batch.BatchRun)."""
    from rtppctl.cli.app import ClickException  # noqa: PLC0415
    from rtppctl.ops.batch import LineError  # noqa: PLC0415
    from rtppctl.proto.errors import ExitCode  # noqa: PLC0415

    try:
        return _HANDLERS[operation.name](ctx, operation)
    except ClickException as err:  # a usage error of the one-shot command's own checks
        raise LineError(f"line {operation.line}: {err.format_message()}", ExitCode.USAGE) from None  # type: ignore[attr-defined]


def _say(operation: Operation, say: Callable[[str], None]) -> Callable[[str], None]:
    """A warning or note of an operation, on stderr as its command says it, with its line."""
    return lambda text: say(f"line {operation.line}: {text}")


def _rewrite(ctx: typer.Context, operation: Operation, *, offer: bool) -> Done:
    """offer and answer (sdp_cmd._rewrite): the SDP or SIP message is `sdp`, the result goes to stdout."""
    from rtppctl import ops  # noqa: PLC0415
    from rtppctl.cli.sdp_cmd import rewrite_json  # noqa: PLC0415
    from rtppctl.ops.batch import Done  # noqa: PLC0415

    s = run_context(ctx)
    p = operation.params
    request = ops.RewriteRequest(
        text=p["sdp"], source=f"line {operation.line}", flags=p.get("flags", ""), call_id=p.get("call_id"),
        from_tag=p.get("from_tag"), to_tag=p.get("to_tag"), in_reply=p.get("reply"), source_ip=p.get("source_ip"),
        ip=p.get("ip"), dialog_id=p.get("dialog_id"),
    )
    result = ops.rewrite_sdp(_route(ctx, p), request, offer=offer)
    warn = _say(operation, s.output.warn)
    for warning in result.warnings:
        warn(warning)
    return Done(rewrite_json(result, None))


def _engage(ctx: typer.Context, operation: Operation) -> Done:
    from rtppctl import ops  # noqa: PLC0415
    from rtppctl.ops.batch import Done  # noqa: PLC0415

    s = run_context(ctx)
    p = operation.params
    requests = [ops.RewriteRequest(
        text=p[part], source=f"line {operation.line} ({part})", flags=p.get("flags", ""), call_id=p.get("call_id"),
        from_tag=p.get("from_tag"), to_tag=p.get("to_tag"), source_ip=p.get("source_ip"), ip=p.get("ip"),
        dialog_id=p.get("dialog_id"),
    ) for part in ("offer", "answer")]
    result = ops.engage(_route(ctx, p), requests[0], requests[1], late=p.get("late"))
    warn = _say(operation, s.output.warn)
    for warning in dict.fromkeys(result.offer.warnings + result.answer.warnings):
        warn(warning)
    return Done(ops.as_dict(result))


def _route(ctx: typer.Context, params: dict[str, Any]) -> Any:
    """`route_for` the line's target or set, once per batch for each: the run's sets and config
    do not change under it, and a batch of many calls names a few."""
    routes = ctx.meta.setdefault("rtppctl.batch.routes", {})
    targets, set_id = params.get("target"), params.get("set")
    key = (tuple(targets) if targets else None, set_id)
    route = routes.get(key)
    if route is None:
        route = routes[key] = route_for(run_context(ctx), targets, set_id)
    return route


def _call(s: RunContext, operation: Operation, *, route: Any = None) -> Any:
    """The `ops.Call` of a call command's keys (cli/options.call_of, as named_call for the one-shot)."""
    from rtppctl.cli.options import CallOptions, call_of  # noqa: PLC0415

    p = operation.params
    options = CallOptions(p.get("call_id"), p.get("from_tag"), p.get("to_tag"), None, p.get("target"), p.get("set"))
    return call_of(s, options, p.get("message"), f"line {operation.line} (message)", route)


def _unforce(ctx: typer.Context, operation: Operation) -> Done:
    from rtppctl import ops  # noqa: PLC0415
    from rtppctl.ops.batch import Done  # noqa: PLC0415

    s = run_context(ctx)
    p = operation.params
    found = _call(s, operation, route=_route(ctx, p))
    return Done(ops.as_dict(ops.unforce(found)))


def _play(ctx: typer.Context, operation: Operation) -> Done:
    from rtppctl import ops  # noqa: PLC0415
    from rtppctl.ops import media  # noqa: PLC0415
    from rtppctl.ops.batch import Done  # noqa: PLC0415

    s = run_context(ctx)
    p = operation.params
    result = media.play(_call(s, operation), p["prompt"], to=p["to"], count=p.get("count", 1),
                        codecs=p.get("codecs", "session"))
    note = _say(operation, s.output.status)
    for text in result.notes:
        note(text)
    return Done(ops.as_dict(result))


def _stop_play(ctx: typer.Context, operation: Operation) -> Done:
    from rtppctl import ops  # noqa: PLC0415
    from rtppctl.ops import media  # noqa: PLC0415
    from rtppctl.ops.batch import Done  # noqa: PLC0415

    s = run_context(ctx)
    return Done(ops.as_dict(media.stop_play(_call(s, operation), to=operation.params["to"])))


def _record(ctx: typer.Context, operation: Operation) -> Done:
    from rtppctl import ops  # noqa: PLC0415
    from rtppctl.ops import media  # noqa: PLC0415
    from rtppctl.ops.batch import Done  # noqa: PLC0415

    s = run_context(ctx)
    p = operation.params
    found = _call(s, operation)
    if p.get("dest") is not None:
        result = media.copy(found, p["dest"], stream=p.get("stream", 1), party=p.get("party"))
    else:
        result = media.record(found, both=not p.get("one_way", False), single_file=p.get("single_file", False),
                              party=p.get("party"), warn=_say(operation, s.output.warn))
    note = _say(operation, s.output.status)
    for text in result.notes:
        note(text)
    return Done(ops.as_dict(result))


def _stop_record(ctx: typer.Context, operation: Operation) -> Done:
    from rtppctl import ops  # noqa: PLC0415
    from rtppctl.ops import media  # noqa: PLC0415
    from rtppctl.ops.batch import Done  # noqa: PLC0415

    return Done(ops.as_dict(media.stop_record(_call(run_context(ctx), operation))))


def _stats(ctx: typer.Context, operation: Operation) -> Done:
    from rtppctl import ops  # noqa: PLC0415
    from rtppctl.ops import media  # noqa: PLC0415
    from rtppctl.ops.batch import Done  # noqa: PLC0415

    p = operation.params
    result = media.stats(_call(run_context(ctx), operation), stream=p.get("stream", 1),
                         all_counters=p.get("all", False))
    return Done(ops.as_dict(result))


def _query(ctx: typer.Context, operation: Operation) -> Done:
    from rtppctl import ops  # noqa: PLC0415
    from rtppctl.ops import media  # noqa: PLC0415
    from rtppctl.ops.batch import Done  # noqa: PLC0415

    p = operation.params
    result = media.query(_call(run_context(ctx), operation), p["counters"], stream=p.get("stream", 1))
    return Done(ops.as_dict(result))


def _lb_explain(ctx: typer.Context, operation: Operation) -> Done:
    from rtppctl.cli.lb_cmd import set_nodes  # noqa: PLC0415
    from rtppctl.ops import as_dict, lb  # noqa: PLC0415
    from rtppctl.ops.batch import Done  # noqa: PLC0415

    s = run_context(ctx)
    p = operation.params
    set_id, nodes, disabled = set_nodes(ctx, p.get("target"), p.get("set"), p.get("disable"))
    result = lb.explain(p["call_id"], nodes, set_id=set_id, disabled=disabled)
    warn = _say(operation, s.output.warn)
    for warning in result.warnings:
        warn(warning)
    return Done(as_dict(result))


def _raw(ctx: typer.Context, operation: Operation) -> Done:
    """raw with one COMMAND (relay_cmd.raw): the reply, E<n> included, is the result; an E<n>
    makes the operation count as failed with exit 3, as the one-shot exits 3 after its JSON."""
    from rtppctl import ops  # noqa: PLC0415
    from rtppctl.ops.batch import Done  # noqa: PLC0415
    from rtppctl.ops.relay import raw_records  # noqa: PLC0415
    from rtppctl.proto import command as cmd  # noqa: PLC0415
    from rtppctl.proto.errors import ExitCode  # noqa: PLC0415

    s = run_context(ctx)
    p = operation.params
    line = p["command"]
    cmd.validate_raw_command(line, f"line {operation.line} (command)")
    member = ops.call_node(s.relays, p.get("call_id"), targets=p.get("target"), set_id=p.get("set"))
    replies = ops.raw(s.relays, member, [line])
    failed = any(r.error_code is not None for r in replies)
    # The object `raw --json` prints (cli/relay_cmd.raw builds it the same way).
    data = {"node": member.node.url, "replies": raw_records(replies), "ok": not failed}
    return Done(data, int(ExitCode.PROXY_ERROR) if failed else 0)


_HANDLERS: dict[str, Callable[[typer.Context, Operation], Done]] = {
    "offer": lambda ctx, operation: _rewrite(ctx, operation, offer=True),
    "answer": lambda ctx, operation: _rewrite(ctx, operation, offer=False),
    "engage": _engage,
    "unforce": _unforce,
    "play": _play,
    "stop-play": _stop_play,
    "record": _record,
    "stop-record": _stop_record,
    "stats": _stats,
    "query": _query,
    "lb explain": _lb_explain,
    "raw": _raw,
}
