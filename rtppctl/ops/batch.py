"""batch: many operations in one run; NDJSON in, one JSON object per operation out.

This module owns the batch format and the run; the command line (`cli/batch_cmd.py`) hands it
one function that runs an operation as its one-shot command does (the same `ops` calls, the same
code building the object that command's `--json` prints).

The format (`parse_line`): one JSON object a line, `op` the command as typed ("offer",
"lb explain"...), the other keys named after the command's long options and arguments (`OPS`).
A line is checked whole before it runs: an unknown key, a missing one, a wrong type, a number
out of the option's bounds (`proto/limits.py`), a token the protocol would misread: each is an
error result naming the line and the key, and the batch goes on.

The run (`BatchRun`): up to W operations at once, each a greenlet on the calling thread. The
run's relay clients (`PipelinedClient`, put in with `RelayService.clients_from`) send every
command through one pipelined engine (`net.pipeline`) and switch to the run's hub while they
wait for the reply; the hub drives the engine and switches back when the reply is in. The relay
service, the state store and the ops are not thread-safe and need not be: one operation at a
time runs between waits, and the network waits of up to W operations overlap, with no lock and
no thread handoff per command. Operations on one Call-ID run one after another in input order
(a queue per Call-ID); one without a Call-ID (`lb explain`, `raw` without `call_id`) runs
whenever a slot is free. The input is read by a thread of its own (a pipe may block). Results are written in input order, or as they complete; at most
`pending_limit(W)` operations are read ahead, so memory stays bounded whatever the input's size.
A summary closes the run, with the exit code of the most severe failure (`EXIT_PRIORITY`).
"""

from __future__ import annotations

import contextlib
import heapq
import json
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

from rtppctl.proto import command as cmd
from rtppctl.proto import limits
from rtppctl.proto.errors import ExitCode, RtppctlError
from rtppctl.proto.text import clip, shown

if TYPE_CHECKING:
    from rtppctl.net.client import Exchange
    from rtppctl.net.pipeline import Outcome, Pipeline
    from rtppctl.proto.url import NodeSpec
    from rtppctl.relays.service import RelayService

#: One line holds one operation, whose SDP or SIP message is a few kilobytes: a longer line is
#: refused (its bytes are skipped, never held), so a runaway input cannot take the memory.
MAX_LINE_BYTES = 1 << 20

#: An `id` is echoed in every result of its line: bounded, as every echo of outside text.
MAX_ID_CHARS = 256

#: The exit code of a batch with failures: the first of these that any failure has. A failure
#: that says rtppctl or the run's environment is broken comes before one that says a relay is
#: out of reach, before one relay's refusal of one call, before bad data in one line, before a
#: malformed line: the code a script acts on is the one whose fix is the broadest.
EXIT_PRIORITY = (ExitCode.UNEXPECTED, ExitCode.CONFIG, ExitCode.TRANSPORT, ExitCode.PROXY_ERROR, ExitCode.INPUT,
                 ExitCode.USAGE)

#: Where a summary counts the lines whose `op` is missing or unknown (no op name has brackets).
UNKNOWN_OP = "(unknown)"


def pending_limit(window: int) -> int:
    """Operations read but not yet written at most: enough to keep `window` workers busy while
    one slow operation holds up the results after it (input order), few enough to stay small."""
    return max(1024, 16 * window)


def worst_exit(codes: Iterator[int] | list[int]) -> int:
    """The exit code of a batch whose failures had `codes` (0 when there are none)."""
    failed = {int(code) for code in codes if code}
    for code in EXIT_PRIORITY:
        if int(code) in failed:
            return int(code)
    return max(failed, default=0)


class LineError(RtppctlError):
    """A line that cannot run: its exit code (2 for a malformed operation, as the command line's
    usage errors; 6 for bad data, as the one-shot commands' input errors) and the key at fault."""

    def __init__(self, message: str, exit_code: int = ExitCode.USAGE, *, key: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.exit_code = ExitCode(exit_code)
        self.key = key


class Aborted(BaseException):
    """The second Ctrl-C: an operation waiting for its reply is abandoned. Not an RtppctlError
    (nor an Exception), so no operation takes it for a failed relay: no node is disabled, no
    offer fails over."""


# -- the format ----------------------------------------------------------------------------------


class _Refused(Exception):
    def __init__(self, message: str, exit_code: int = ExitCode.USAGE, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.exit_code, self.hint = message, exit_code, hint


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _text(value: Any, key: str) -> str:
    """A document (SDP, SIP message): any text, carried as it is."""
    if not isinstance(value, str):
        raise _Refused(f"{key} must be a string (the text itself), not {_kind(value)}")
    return value


def _string(value: Any, key: str) -> str:
    """An option's value. NUL is refused: no command line can carry one."""
    if not isinstance(value, str):
        raise _Refused(f"{key} must be a string, not {_kind(value)}")
    if "\x00" in value:
        raise _Refused(f"{key} {shown(value)} contains the control character '\\x00' at position {value.index(chr(0))}",
                       ExitCode.INPUT, "control characters cannot be sent to the relay; remove them")
    return value


def _call_id(value: Any, key: str) -> str:
    """A Call-ID the relay will get: one protocol token (`proto.command.validate_token`)."""
    return _token(lambda text: cmd.validate_token(text, key), value, key)


def _tag(value: Any, key: str) -> str:
    return _token(lambda text: cmd.validate_tag(text, key), value, key)


def _token(validate: Callable[[str], str], value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise _Refused(f"{key} must be a string, not {_kind(value)}")
    try:
        return validate(value)
    except RtppctlError as err:
        raise _Refused(err.message, int(err.exit_code), err.hint) from None


def _flag(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise _Refused(f"{key} must be true or false, not {_kind(value)}")
    return value


def _integer(low: int, high: int) -> Callable[[Any, str], int]:
    def check(value: Any, key: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _Refused(f"{key} must be an integer, not {_kind(value)}")
        if not low <= value <= high:
            raise _Refused(f"{key} {value} is not in the range {low} to {high}")
        return value

    return check


def _party(value: Any, key: str) -> str:
    """uac or uas, as the commands' --to and --party read it (case and spaces aside)."""
    from rtppctl.ops.offer_answer import PARTIES  # noqa: PLC0415

    word = _string(value, key).strip().lower()
    if word not in PARTIES:
        raise _Refused(f"{key} {shown(value)}: give uac or uas")
    return word


def _strings(value: Any, key: str) -> list[str]:
    """A repeatable option (or an argument taking several words): a list of strings, or one string."""
    if isinstance(value, str):
        return [_string(value, key)]
    if not isinstance(value, list):
        raise _Refused(f"{key} must be a string or a list of strings, not {_kind(value)}")
    if not value:
        raise _Refused(f"{key} is an empty list", hint=f"leave {key} out, or give at least one value")
    return [_string(item, f"{key}[{index}]") for index, item in enumerate(value)]


class Key(NamedTuple):
    """One key of an operation: how its value is checked, and whether it must be there."""

    check: Callable[[Any, str], Any]
    required: bool = False


_SET = Key(_integer(0, limits.MAX_SET_ID))
_TARGET = Key(_strings)
_STREAM = Key(_integer(1, limits.MAX_MEDIA_NUMBER))
#: The six call-addressing options (cli/options.call_options); `message` is the SIP message itself.
_CALL = {"call_id": Key(_call_id), "from_tag": Key(_tag), "to_tag": Key(_tag), "message": Key(_text),
         "target": _TARGET, "set": _SET}
#: What offer, answer and engage share (the options of `sdp_cmd`, files and --diff aside).
_REWRITE = {"call_id": Key(_call_id), "from_tag": Key(_tag), "to_tag": Key(_tag), "flags": Key(_string),
            "ip": Key(_string), "source_ip": Key(_string), "dialog_id": Key(_string), "target": _TARGET, "set": _SET}


def _sip_call_id(text: Any) -> str | None:
    """The Call-ID of a SIP message's text (None for a bare SDP or a message that does not
    parse: the operation then fails on it, before it sends anything, and needs no order)."""
    if not isinstance(text, str) or not text or text.lstrip().startswith("v="):
        return None
    from rtppctl.proto.sip import looks_like_sip, parse_sip  # noqa: PLC0415

    try:
        return parse_sip(text).call_id if looks_like_sip(text) else None
    except RtppctlError:
        return None


def _rewrite_key(params: dict[str, Any]) -> str | None:
    return params.get("call_id") or _sip_call_id(params.get("sdp"))


def _engage_key(params: dict[str, Any]) -> str | None:
    return params.get("call_id") or _sip_call_id(params.get("offer")) or _sip_call_id(params.get("answer"))


def _call_key(params: dict[str, Any]) -> str | None:
    return params.get("call_id") or _sip_call_id(params.get("message"))


@dataclass(frozen=True)
class OpSpec:
    """An op's keys, and its ordering key (the Call-ID its commands are about; None: free)."""

    keys: dict[str, Key]
    order_key: Callable[[dict[str, Any]], str | None]


#: Every op a batch takes, under the name typed on the command line, with its keys. Bounds are the
#: command-line options' (proto/limits.py); defaults are the commands' own (cli/batch_cmd.py).
OPS: dict[str, OpSpec] = {
    "offer": OpSpec({"sdp": Key(_text, True), **_REWRITE, "reply": Key(_flag)}, _rewrite_key),
    "answer": OpSpec({"sdp": Key(_text, True), **_REWRITE, "reply": Key(_flag)}, _rewrite_key),
    "engage": OpSpec({"offer": Key(_text, True), "answer": Key(_text, True), **_REWRITE, "late": Key(_flag)},
                     _engage_key),
    "unforce": OpSpec(dict(_CALL), _call_key),
    "play": OpSpec({"prompt": Key(_string, True), "to": Key(_party, True),
                    "count": Key(_integer(limits.MIN_PLAY_COUNT, limits.MAX_PLAY_COUNT)), "codecs": Key(_string),
                    **_CALL}, _call_key),
    "stop-play": OpSpec({"to": Key(_party, True), **_CALL}, _call_key),
    "record": OpSpec({"dest": Key(_string), "stream": _STREAM, "party": Key(_party), "one_way": Key(_flag),
                      "single_file": Key(_flag), **_CALL}, _call_key),
    "stop-record": OpSpec(dict(_CALL), _call_key),
    "stats": OpSpec({"all": Key(_flag), "stream": _STREAM, **_CALL}, _call_key),
    "query": OpSpec({"counters": Key(_strings, True), "stream": _STREAM, **_CALL}, _call_key),
    "lb explain": OpSpec({"call_id": Key(_string, True), "set": _SET, "target": _TARGET, "disable": Key(_strings)},
                         lambda params: None),
    "raw": OpSpec({"command": Key(_string, True), "call_id": Key(_string), "target": _TARGET, "set": _SET},
                  lambda params: params.get("call_id")),
}

#: Options of the one-shot commands a batch has no use for, and why (said when a line has one).
_NOT_IN_BATCH = {
    "output": "a batch writes no files: the result is in the result object (sdp, message)",
    "in_place": "a batch writes no files: the result is in the result object (sdp, message)",
    "diff": "a batch prints JSON only",
    "watch": "stats --watch is a stream; ask stats again in later lines",
    "file": "a batch's raw takes one command per line in command",
}


@dataclass(frozen=True)
class Operation:
    """One line that passed every check: ready to run."""

    #: The line's number in the input (from 1, blank and comment lines counted).
    line: int
    #: The line's `id`, echoed in its result (None when it gave none).
    id: str | int | None
    #: The op as typed: "offer", "lb explain"...
    name: str
    #: The keys given, checked (a key given as null is left out).
    params: dict[str, Any]
    #: The Call-ID its commands are about (None: it can run in any order).
    key: str | None
    #: Its place in the input among the lines that are operations (from 0).
    seq: int = 0


@dataclass(frozen=True)
class BadLine:
    """A line that is no operation: why, and the key at fault."""

    line: int
    id: str | int | None
    #: The op, when the line named a known one.
    name: str | None
    message: str
    exit_code: int
    key: str | None = None
    hint: str | None = None

    def record(self) -> dict[str, Any]:
        return error_record(self.id, self.name, self.message, self.exit_code, self.line, key=self.key, hint=self.hint)


class _Duplicate(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _Duplicate(key)
        seen[key] = value
    return seen


#: One decoder for every line (json.loads with a hook builds a new one per call).
_DECODER = json.JSONDecoder(object_pairs_hook=_object)


def parse_line(number: int, data: bytes) -> Operation | BadLine:
    """Line `number` of the input (its bytes, the line end included) as an Operation, or the
    BadLine that says what is wrong with it."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return BadLine(number, None, None, f"line {number}: not UTF-8 text (byte {exc.start + 1})", ExitCode.INPUT)
    try:
        decoded = _DECODER.decode(text)
    except _Duplicate as dup:
        return BadLine(number, None, None, f"line {number}: the key {shown(dup.key)} is given twice", ExitCode.USAGE,
                       key=clip(dup.key, 64))
    except ValueError as exc:  # json.JSONDecodeError, and numbers too long to read
        return BadLine(number, None, None, f"line {number}: not JSON: {clip(str(exc), 120)}", ExitCode.INPUT,
                       hint="one JSON object a line, e.g. {\"op\": \"unforce\", \"call_id\": \"c1@host\"}")
    if not isinstance(decoded, dict):
        return BadLine(number, None, None, f"line {number}: not a JSON object but {_kind(decoded)}", ExitCode.INPUT,
                       hint="one JSON object a line, e.g. {\"op\": \"unforce\", \"call_id\": \"c1@host\"}")
    ident = decoded.get("id")
    if not (ident is None or isinstance(ident, str) and len(ident) <= MAX_ID_CHARS
            or isinstance(ident, int) and not isinstance(ident, bool) and abs(ident) <= limits.MAX_INT64):
        return BadLine(number, None, None,
                       f"line {number}: id must be a string of at most {MAX_ID_CHARS} characters or an integer, "
                       f"not {_kind(ident) if not isinstance(ident, str) else 'a longer string'}", ExitCode.USAGE, key="id")
    name = decoded.get("op")
    if name is None:
        return BadLine(number, ident, None, f"line {number}: no op", ExitCode.USAGE, key="op",
                       hint="give op: " + ", ".join(OPS))
    if not isinstance(name, str) or name not in OPS:
        what = shown(name, 40) if isinstance(name, str) else _kind(name)
        return BadLine(number, ident, None, f"line {number}: op {what} is not an op a batch runs", ExitCode.USAGE,
                       key="op", hint="give one of: " + ", ".join(OPS))
    spec = OPS[name]
    params: dict[str, Any] = {}
    for key, value in decoded.items():
        if key in ("op", "id"):
            continue
        rule = spec.keys.get(key)
        if rule is None:
            why = _NOT_IN_BATCH.get(key)
            return BadLine(number, ident, name, f"line {number}: {name} has no key {shown(key, 40)}", ExitCode.USAGE,
                           key=clip(key, 64), hint=why or f"{name} takes: " + ", ".join(spec.keys))
        if value is None:
            continue
        try:
            params[key] = rule.check(value, key)
        except _Refused as refused:
            return BadLine(number, ident, name, f"line {number}: {refused.message}", refused.exit_code, key=key,
                           hint=refused.hint)
    for key, rule in spec.keys.items():
        if rule.required and key not in params:
            return BadLine(number, ident, name, f"line {number}: {name} needs {key}", ExitCode.USAGE, key=key)
    return Operation(number, ident, name, params, spec.order_key(params))


def skipped_line(data: bytes) -> bool:
    """Blank lines and lines starting with # (comments) are no operations."""
    stripped = data.strip()
    return not stripped or stripped.startswith(b"#")


# -- results -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Done:
    """What an operation gave: the object its command's --json prints, and the exit code that
    command would end with after printing it (nonzero for `raw` with an E<n> reply)."""

    result: dict[str, Any]
    exit_code: int = 0


def result_record(operation: Operation, result: dict[str, Any]) -> dict[str, Any]:
    return {"id": operation.id, "op": operation.name, "result": result}


def error_record(ident: str | int | None, name: str | None, message: str, exit_code: int, line: int, *,
                 key: str | None = None, hint: str | None = None) -> dict[str, Any]:
    return {"id": ident, "op": name,
            "error": {"message": message, "exit_code": int(exit_code), "line": line, "key": key, "hint": hint}}


@dataclass
class BatchSummary:
    """How a batch went: per op, the operations that succeeded and failed."""

    ops: dict[str, dict[str, int]]
    ok: int
    failed: int
    #: Operations read but never started (--fail-fast, Ctrl-C).
    skipped: int
    elapsed_s: float
    exit_code: int
    interrupted: bool

    def record(self) -> dict[str, Any]:
        return {"type": "summary", "ops": self.ops, "total": self.ok + self.failed, "ok": self.ok,
                "failed": self.failed, "skipped": self.skipped, "elapsed_s": self.elapsed_s,
                "exit_code": self.exit_code, "interrupted": self.interrupted}


# -- the run -------------------------------------------------------------------------------------

#: What an operation's greenlet hands the hub when it waits (for a reply, or a pause).
_WAITING = object()

#: The longest the hub sleeps with nothing to do before it looks at the signals again.
_IDLE_WAIT = 0.2


class PipelinedClient:
    """A relay client (the interface of `net.client.RelayClient`) whose commands go through the
    batch's one pipelined engine: while one operation waits for its reply, the others run."""

    def __init__(self, node: NodeSpec, run: BatchRun) -> None:
        self.node = node
        self._run = run

    def exchange(self, command: str) -> Exchange:
        """Send `command`, return the reply as it came (an `E<n>` reply is returned, not raised)."""
        from rtppctl.net.client import Exchange  # noqa: PLC0415

        outcome = self._run.send(self.node, command)
        if outcome.error is not None:
            raise outcome.error
        return Exchange(command, outcome.reply or "", outcome.rtt_ms)

    def replies(self, commands: list[str]) -> list[str]:
        """Reply texts to independent commands, in order (the capability probe's VFs: once a node)."""
        return [self.exchange(command).reply for command in commands]

    def call(self, command: str) -> str:
        """Send `command` and return the reply text; an `E<n>` reply raises ProxyError."""
        reply = self.exchange(command).reply
        cmd.raise_for_error(reply, command, self.node.url)
        return reply

    def close(self) -> None:
        """Nothing of its own to close: the engine is the batch's."""

    def __enter__(self) -> PipelinedClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BatchRun:
    """One batch: the reader, the operations, the order of results, the summary.

    Everything but reading the input runs on the calling thread. Each operation is a greenlet; the
    run's hub (the calling thread's own greenlet) starts operations, drives the pipelined engine
    and switches to an operation when its reply is in. An operation gives the hub the thread back
    only where it waits (`send`, `pause`), so the service, the store and the ops code, none of
    them thread-safe, see one operation at a time between waits, with no lock and no thread
    handoff per command. The input is read by a thread of its own (a pipe may block).
    """

    def __init__(self, run: Callable[[Operation], Done], emit: Callable[[dict[str, Any]], None], *,
                 window: int = limits.DEFAULT_WINDOW, as_completed: bool = False, fail_fast: bool = False,
                 signals: Callable[[], int] = lambda: 0, service: RelayService | None = None,
                 status: Callable[[str], None] = lambda text: None, flush: Callable[[], None] = lambda: None) -> None:
        self._run_operation = run
        self._emit = emit
        self._flush = flush
        self._window = window
        self._as_completed = as_completed
        self._fail_fast = fail_fast
        self._signals = signals
        self._service = service
        self._status = status
        #: The second Ctrl-C: operations waiting for a reply are abandoned.
        self.aborted = False
        self._pipeline: Pipeline | None = None
        self._hub: Any = None
        #: What the reader thread read: ("line", number, bytes), ("overlong", ...), ("end",)...
        self._events: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        # Ready operations, the earliest in the input first: a call's next operation goes before
        # the calls read after it, so about `window` calls are open at once, not every call read.
        self._ready: list[tuple[int, Operation]] = []
        #: Operations started and not ended (each a greenlet waiting for the hub).
        self._running = 0
        #: Paused operations: (when to wake, a tie-breaker, the greenlet).
        self._timers: list[tuple[float, int, Any]] = []
        # Lines read and not yet written: at most pending_limit. A reader that found no room
        # waits for a quarter of the limit to be free, then reads that many lines at once: a
        # thread handoff per burst of lines, not per line.
        self._room = threading.Condition()
        self._free = pending_limit(window)
        self._low_water = max(1, pending_limit(window) // 4)
        self._stop_reading = threading.Event()
        self._next_seq = 0
        self._next_to_write = 0
        self._finished: dict[int, dict[str, Any] | None] = {}
        self._pending = 0
        self._by_key: dict[str, deque[Operation]] = {}
        self._counts: dict[str, dict[str, int]] = {}
        self._codes: list[int] = []
        self._ok = self._failed = self._skipped = 0
        # No operation after this one starts (--fail-fast), none at all (Ctrl-C).
        self._stopping = False
        self._interrupted = False
        self._first_failure: int | None = None

    # -- what an operation calls --------------------------------------------------------------------

    def send(self, node: NodeSpec, command: str) -> Outcome:
        """`command`'s outcome from `node`, through the engine; the other operations run while
        this one waits. Only from an operation of this run."""
        from rtppctl.net.pipeline import Request  # noqa: PLC0415

        current = self._operation()
        if self.aborted:
            raise Aborted
        assert self._pipeline is not None
        self._pipeline.submit(Request(node, command, tag=current))
        outcome = self._hub.switch(_WAITING)
        if self.aborted:
            raise Aborted
        return outcome

    def pause(self, seconds: float) -> None:
        """Wait `seconds` while the other operations run (a stand-in for a relay's reply in tests)."""
        current = self._operation()
        heapq.heappush(self._timers, (time.monotonic() + seconds, id(current), current))
        self._hub.switch(_WAITING)
        if self.aborted:
            raise Aborted

    def _operation(self) -> Any:
        import greenlet  # noqa: PLC0415

        current = greenlet.getcurrent()
        if self._hub is None or current is self._hub or current.parent is not self._hub:
            raise RuntimeError("only an operation of the batch, on the batch's thread, waits through it")
        return current

    # -- the hub ------------------------------------------------------------------------------------

    def run(self, source: BinaryIO) -> BatchSummary:
        """Run every operation of `source`; the summary once every result was written."""
        import greenlet  # noqa: PLC0415

        started = time.monotonic()
        self._hub = greenlet.getcurrent()
        if self._service is not None:
            self._pipeline = self._service.pipeline(self._window)
            # Clients that wait through the hub: usable from this thread only, so the service
            # asks several nodes one after another (other operations run meanwhile).
            self._service.clients_from(lambda node, **_: PipelinedClient(node, self), threads=False)
        reader = threading.Thread(target=self._read, args=(source,), name="rtppctl-batch-reader", daemon=True)
        reader.start()
        try:
            self._loop()
        finally:
            self._shut_down()
        order = [*OPS, UNKNOWN_OP]
        counts = {name: self._counts[name] for name in sorted(self._counts, key=order.index)}
        exit_code = int(ExitCode.INTERRUPTED) if self._interrupted else worst_exit(self._codes)
        return BatchSummary(counts, self._ok, self._failed, self._skipped, round(time.monotonic() - started, 3),
                            exit_code, self._interrupted)

    def _loop(self) -> None:
        at_end = False
        events = self._events
        ready = self._ready
        pipeline = self._pipeline
        while not ((at_end or self._stopping) and self._pending == 0):
            self._look_at_signals()
            while True:
                try:
                    event = events.get_nowait()
                except queue.Empty:
                    break
                at_end = self._on_event(event) or at_end
            while ready and self._running < self._window:
                self._start(heapq.heappop(ready)[1])
            if self._timers:
                self._wake_timers()
            # Sleep only with nothing to start: results go out before it, so a reader of the
            # output never waits on this run's buffer.
            idle = not events.qsize() and not (ready and self._running < self._window)
            if idle:
                self._flush()
            wait = self._idle_wait() if idle else 0.0
            if pipeline is not None:
                for outcome in pipeline.poll(wait):
                    self._resume(outcome.request.tag, outcome)
            elif wait:
                with contextlib.suppress(queue.Empty):
                    at_end = self._on_event(events.get(timeout=wait)) or at_end

    def _idle_wait(self) -> float:
        if not self._timers:
            return _IDLE_WAIT
        return min(_IDLE_WAIT, max(0.0, self._timers[0][0] - time.monotonic()))

    def _wake_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            self._resume(heapq.heappop(self._timers)[2], None)

    def _on_event(self, event: tuple[Any, ...]) -> bool:
        """Take one event of the reader; True at the end of the input."""
        kind = event[0]
        if kind == "line":
            self._take(event[1], event[2])
        elif kind == "overlong":
            self._bad(BadLine(event[1], None, None,
                              f"line {event[1]}: {event[2]} bytes long; a line holds at most {MAX_LINE_BYTES}",
                              ExitCode.INPUT, hint="one operation a line; an SDP or SIP message is a few KB"))
        elif kind == "unreadable":
            self._bad(BadLine(event[1], None, None, f"line {event[1]}: cannot read the input: {event[2]}",
                              ExitCode.INPUT))
            return True
        elif kind == "end":
            return True
        return False

    def _start(self, operation: Operation) -> None:
        if self._interrupted or (self._first_failure is not None and operation.seq > self._first_failure):
            self._release(operation)
            self._skipped += 1
            self._settle(operation.seq, None)
            return
        import greenlet  # noqa: PLC0415

        self._running += 1
        self._resume(greenlet.greenlet(self._execute, parent=self._hub), operation)

    def _resume(self, operation: Any, value: Any) -> None:
        """Switch to an operation's greenlet with what it waited for (its Operation to start it);
        back here when it waits again or ends."""
        ended = operation.switch(value)
        if ended is not _WAITING:
            self._running -= 1
            done, record, exit_code = ended
            self._done(done, record, exit_code)

    def _look_at_signals(self) -> None:
        signals = self._signals()
        if signals and not self._interrupted:
            # The first Ctrl-C: nothing more is read or started; what runs finishes (every wait
            # is bounded), so no session is left that the ledger does not know.
            self._interrupted = self._stopping = True
            self._stop_reading.set()
            self._status("interrupted: no more lines are read; the operations running finish "
                         "(Ctrl-C again abandons them)")
        if signals > 1 and not self.aborted:
            # The second: what waits is abandoned at once.
            self._abandon()

    def _abandon(self) -> None:
        """Every operation waiting ends now with Aborted (the engine fails what is in flight)."""
        self.aborted = True
        if self._pipeline is not None:
            with contextlib.suppress(Exception):
                self._pipeline.close()
        while self._timers:
            self._resume(heapq.heappop(self._timers)[2], None)

    def _take(self, number: int, data: bytes) -> None:
        if self._stopping:
            self._give_room()  # read after the end was decided: never run, never written
            return
        parsed = parse_line(number, data)
        if isinstance(parsed, BadLine):
            self._bad(parsed)
            return
        operation = Operation(parsed.line, parsed.id, parsed.name, parsed.params, parsed.key, self._next_seq)
        self._next_seq += 1
        self._pending += 1
        if operation.key is None:
            heapq.heappush(self._ready, (operation.seq, operation))
        elif operation.key in self._by_key:
            self._by_key[operation.key].append(operation)  # after the operations on its Call-ID before it
        else:
            self._by_key[operation.key] = deque()
            heapq.heappush(self._ready, (operation.seq, operation))

    def _bad(self, bad: BadLine) -> None:
        if self._stopping:
            self._give_room()
            return
        seq = self._next_seq
        self._next_seq += 1
        self._pending += 1
        self._count(bad.name or UNKNOWN_OP, bad.exit_code)
        if self._fail_fast:
            self._stop_after(seq)
        self._settle(seq, bad.record())

    def _done(self, operation: Operation, record: dict[str, Any], exit_code: int) -> None:
        self._release(operation)
        self._count(operation.name, exit_code)
        if exit_code and self._fail_fast:
            self._stop_after(operation.seq)
        self._settle(operation.seq, record)

    def _release(self, operation: Operation) -> None:
        """The next operation on its Call-ID may start."""
        if operation.key is None:
            return
        waiting = self._by_key[operation.key]
        if waiting:
            following = waiting.popleft()
            heapq.heappush(self._ready, (following.seq, following))
        else:
            del self._by_key[operation.key]

    def _count(self, name: str, exit_code: int) -> None:
        counts = self._counts.get(name)
        if counts is None:
            counts = self._counts[name] = {"ok": 0, "error": 0}
        if exit_code:
            counts["error"] += 1
            self._failed += 1
            self._codes.append(exit_code)
        else:
            counts["ok"] += 1
            self._ok += 1

    def _stop_after(self, seq: int) -> None:
        """--fail-fast: nothing more is read, and no operation after `seq` starts."""
        self._stopping = True
        self._stop_reading.set()
        if self._first_failure is None or seq < self._first_failure:
            self._first_failure = seq

    def _settle(self, seq: int, record: dict[str, Any] | None) -> None:
        """Operation `seq` is over: its record (None: it never ran) written now, or when every
        operation before it was (input order)."""
        if self._as_completed:
            self._write(record)
            return
        self._finished[seq] = record
        while self._next_to_write in self._finished:
            self._write(self._finished.pop(self._next_to_write))
            self._next_to_write += 1

    def _write(self, record: dict[str, Any] | None) -> None:
        self._pending -= 1
        self._give_room()
        if record is not None:
            self._emit(record)

    def _give_room(self) -> None:
        with self._room:
            self._free += 1
            if self._free == self._low_water:
                self._room.notify()

    def _shut_down(self) -> None:
        self._stop_reading.set()
        if self._running or self._pending:
            # Ended by an error of the hub (the reader of stdout went away): as on Ctrl-C, nothing
            # more starts; what waits is abandoned, its result unwritten.
            self._stopping = self._interrupted = True
            self._emit = lambda record: None
            self._abandon()
            if self._pipeline is not None:
                for outcome in self._pipeline.poll():
                    with contextlib.suppress(Exception):
                        self._resume(outcome.request.tag, outcome)
        if self._pipeline is not None:
            with contextlib.suppress(Exception):
                self._pipeline.close()
        with contextlib.suppress(Exception):
            self._flush()

    # -- the reader thread ------------------------------------------------------------------------

    def _read(self, source: BinaryIO) -> None:
        number = 0
        try:
            while not self._stop_reading.is_set():
                data = source.readline(MAX_LINE_BYTES + 1)
                if not data:
                    break
                number += 1
                if len(data) > MAX_LINE_BYTES and not data.endswith(b"\n"):
                    event: tuple[Any, ...] = ("overlong", number, self._skip_rest(source, len(data)))
                elif skipped_line(data):
                    continue
                else:
                    event = ("line", number, data)
                # Every line the hub gets holds a slot until its result is written.
                if not self._slot():
                    return
                self._put(event)
        except (OSError, ValueError) as exc:  # ValueError: the file was closed under a stopped run
            if not self._stop_reading.is_set() and self._slot():
                self._put(("unreadable", number + 1, getattr(exc, "strerror", None) or str(exc)))
            return
        self._put(("end",))

    def _put(self, event: tuple[Any, ...]) -> None:
        self._events.put(event)
        if self._pipeline is not None:
            self._pipeline.wake()  # the hub may sleep in the engine's poll

    def _slot(self) -> bool:
        """Take room for one more line (waiting, when there is none, for `_low_water` of it);
        False when the run stops meanwhile."""
        with self._room:
            while not self._free:
                if self._stop_reading.is_set():
                    return False
                self._room.wait(0.2)
            self._free -= 1
        return True

    @staticmethod
    def _skip_rest(source: BinaryIO, length: int) -> int:
        while True:
            more = source.readline(65536)
            length += len(more)
            if not more or more.endswith(b"\n"):
                return length

    # -- inside an operation's greenlet ------------------------------------------------------------

    def _execute(self, operation: Operation) -> tuple[Operation, dict[str, Any], int]:
        try:
            done = self._run_operation(operation)
        except Aborted:
            return operation, error_record(
                operation.id, operation.name,
                "interrupted: abandoned while it waited for the relay (a session it made may remain)",
                ExitCode.INTERRUPTED, operation.line), int(ExitCode.INTERRUPTED)
        except RtppctlError as err:
            return operation, error_record(operation.id, operation.name, err.message, int(err.exit_code),
                                           operation.line, key=getattr(err, "key", None),
                                           hint=err.hint), int(err.exit_code)
        except Exception as err:  # noqa: BLE001 - a bug: this operation's result says so, the batch goes on
            return operation, error_record(
                operation.id, operation.name, f"internal error: {type(err).__name__}: {clip(str(err), 200)}",
                ExitCode.UNEXPECTED, operation.line), int(ExitCode.UNEXPECTED)
        return operation, result_record(operation, done.result), int(done.exit_code)


__all__ = [
    "EXIT_PRIORITY", "MAX_LINE_BYTES", "OPS", "Aborted", "BadLine", "BatchRun", "BatchSummary", "Done", "LineError",
    "Operation", "PipelinedClient", "error_record", "parse_line", "pending_limit", "result_record",
    "skipped_line", "worst_exit",
]
