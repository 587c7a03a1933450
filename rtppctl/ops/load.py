"""`load`: offer, answer and delete cycles against a relay set, measured; an observation at scale.

Each call is what `offer`, `answer` and `unforce` would send for a fresh call with `--flags`: a `U`
with the caller's SDP, an `L` with the callee's once the `U` is answered, and a `D` once the `L` is
answered (after `--hold` seconds). The commands come from the planner (`proto.offer.plan`), once
per node: the flags and the two SDPs never change between calls, so the plan is made with
placeholder Call-ID and tags and each call's own values (checked by `validate_call_id` and
`validate_tag`) are put in their places (`CallTemplate`). Flags whose arguments depend on the
Call-ID (`n`, `d`: the notify and DTMF tags) are planned call by call instead.

Which node, which call next and when is decided by `Scheduler`, which does no I/O: requests go out
through a `submit` function and outcomes come back through `completed`, so it is tested with plain
values. The node of a Call-ID is the module's weighted choice (`proto.select.choose`) over the
set's nodes and the health read from the state store once at the start; nothing is written: a node
that fails during the run (no usable reply, or E7-E10 to U) is failed for this run only, in
memory. With `failover`, later calls, and the offer that failed, go to the module's next choice.

Latency is measured from each request's scheduled time, not from when it could be sent (no
coordinated omission): in an open loop (`rate`) call i is due at start + i/rate whether or not the
window has room, the `L` is due when the `U` is answered and the `D` when the `L` is answered plus
the hold. Percentiles come from HDR histograms (microseconds); with several worker processes each
sends its histograms encoded and they are merged exactly.

The rule it keeps: every session it made is deleted before it returns, also when interrupted or
when a node dies (a failed node's sessions are deleted at the end if it answers again; those whose
delete cannot be confirmed are named in the report). Like `check`, it never changes shared health,
never writes the ledger, and reads the relays' own command counters (`G`) before and after, so the
client's counts and the relay's can be compared.
"""

from __future__ import annotations

import math
import secrets
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rtppctl.proto import command as cmd
from rtppctl.proto import limits
from rtppctl.proto.errors import NODE_FAILURE_CODES, InputError, MalformedReply, ProxyError, ReplyTimeout, TransportError

if TYPE_CHECKING:
    from rtppctl.net.client import RelayClient
    from rtppctl.proto.flags import Flags
    from rtppctl.proto.url import NodeSpec
    from rtppctl.relays.service import Member, RelayService

# -- bounds: proto/limits.py's LOAD_* (the command line's options read them there) -----------------

MAX_CALLS = limits.LOAD_MAX_CALLS
DEFAULT_CALLS = limits.LOAD_DEFAULT_CALLS
MIN_DURATION = limits.LOAD_MIN_DURATION
MAX_DURATION = limits.LOAD_MAX_DURATION
MIN_RATE = limits.LOAD_MIN_RATE
MAX_RATE = limits.LOAD_MAX_RATE
MAX_HOLD = limits.LOAD_MAX_HOLD
MAX_WORKERS = limits.LOAD_MAX_WORKERS
DEFAULT_INTERVAL = limits.LOAD_DEFAULT_INTERVAL
MIN_INTERVAL = limits.LOAD_MIN_INTERVAL
MAX_INTERVAL = limits.LOAD_MAX_INTERVAL
DEFAULT_START_RATE = limits.LOAD_DEFAULT_START_RATE
DEFAULT_STEP = limits.LOAD_DEFAULT_STEP
DEFAULT_STEPS = limits.LOAD_DEFAULT_STEPS
MAX_STEPS = limits.LOAD_MAX_STEPS
DEFAULT_STEP_SECONDS = limits.LOAD_DEFAULT_STEP_SECONDS
DEFAULT_MAX_P99_MS = limits.LOAD_DEFAULT_MAX_P99_MS
MAX_P99_MS = limits.LOAD_MAX_P99_MS
DEFAULT_MAX_ERRORS_PCT = limits.LOAD_DEFAULT_MAX_ERRORS_PCT

#: Sessions held at once by one process: beyond it no new call starts until one is deleted.
MAX_HELD = 1_000_000
#: Sessions whose delete could not be confirmed, named one by one in the report (the rest counted).
MAX_NAMED_SESSIONS = 1000
#: A call due under --duration that has not started this long after the duration ended is missed.
MISSED_GRACE = 1.0
#: Latencies are kept in microseconds from 1 us to an hour with 3 significant digits; a longer one
#: counts as an hour.
_HISTOGRAM_LOWEST_US = 1
_HISTOGRAM_HIGHEST_US = 3_600_000_000
_HISTOGRAM_DIGITS = 3
#: Percentiles every latency is reported at: (JSON key, percentile).
PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9))
#: The relay's command counters read before and after (`G`).
RELAY_COUNTERS = ("ncmds_rcvd", "ncmds_succd", "ncmds_errs", "ncmds_rcvd_ndups")

#: The commands of a call, in order, and their names.
COMMANDS = (("U", "offer"), ("L", "answer"), ("D", "delete"))
#: Request kinds beside those: the end's probe of a failed node and the deletes that follow it.
_PROBE, _CLEANUP = "V", "C"

#: Documentation addresses (RFC 5737, RFC 3849): they appear only inside the SDP; no media is sent.
_PARTY_ADDRESSES = {"IP4": ("192.0.2.1", "192.0.2.2"), "IP6": ("2001:db8::1", "2001:db8::2")}
_PARTY_PORTS = (40000, 40002)
#: Placeholders for the template: tokens no other part of a U, L or D can contain (`@` is in no
#: modifier, address or port; the flags that put user text in a command are planned per call).
_CALL_SLOT, _FROM_SLOT, _TO_SLOT = "@CALL-ID@", "@FROM-TAG@", "@TO-TAG@"


# -- Call-IDs and tags ---------------------------------------------------------------------------


def _mix(seed: int, number: int) -> int:
    """splitmix64 of the seed and the call number: well spread, the same for the same inputs."""
    z = (seed * 0x9E3779B97F4A7C15 + number + 0x632BE59BD9B4E019) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return z ^ (z >> 31)


def call_identity(seed: int, number: int) -> tuple[str, str, str]:
    """(Call-ID, From tag, To tag) of call `number` of a run with `seed`: the same for the same
    pair, different for every other. The Call-ID carries 32 well-mixed bits so that the module's
    8-bit byte-sum hash spreads calls as it spreads real Call-IDs; the tags need only tell the two
    parties apart within the call (short, they cost less to check)."""
    return (f"load-{seed}-{_varying(seed, number)}@rtppctl", f"lf{number}", f"lt{number}")


def _varying(seed: int, number: int) -> str:
    """The part of a call's Call-ID that changes from call to call."""
    return f"{number}-{_mix(seed, number) & 0xFFFFFFFF:08x}"


class CallNames:
    """Call-IDs and tags of a run, checked by the token validators (`validate_call_id`,
    `validate_tag`) at a fraction of the cost of checking each whole value per call.

    The validators check each character on its own, and the whole value only for its length and
    for being the bare `&&`. So the constant parts (`load-<seed>-`, `@rtppctl`, `lf`, `lt`) are
    checked once, inside the longest Call-ID and tags the run can make (the length); no value
    starting with `load-` or `l` can be `&&`; and per call the part that changes (the number and
    the mixed bits: every character of it that the tags hold too) goes through `validate_token`.
    """

    def __init__(self, seed: int, last_number: int) -> None:
        self.seed = seed
        call_id, from_tag, to_tag = call_identity(seed, last_number)
        cmd.validate_call_id(call_id)
        cmd.validate_tag(from_tag, "from-tag")
        cmd.validate_tag(to_tag, "to-tag")
        self.last_number = last_number
        self._prefix = f"load-{seed}-"

    def __call__(self, number: int) -> tuple[str, str, str]:
        if not 0 <= number <= self.last_number:
            raise InputError(f"call number {number} is beyond the run's last, {self.last_number}")
        varying = cmd.validate_token(_varying(self.seed, number), "call-id")
        return f"{self._prefix}{varying}@rtppctl", f"lf{number}", f"lt{number}"


def new_seed() -> int:
    """A random seed (the default), reported so that a run can be repeated call for call."""
    return secrets.randbits(62)


# -- the commands of a call ----------------------------------------------------------------------


def party_sdp(family: str, party: int) -> str:
    """The SDP of the caller (party 0) or the callee (1): PCMU and telephone-event on a
    documentation address, as a phone would offer them."""
    address = _PARTY_ADDRESSES[family][party]
    version = party + 1
    return (f"v=0\r\no=rtppctl-load {version} {version} IN {family} {address}\r\ns=rtppctl load\r\n"
            f"c=IN {family} {address}\r\nt=0 0\r\nm=audio {_PARTY_PORTS[party]} RTP/AVP 0 101\r\n"
            f"a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n")


def media_family(node: NodeSpec) -> str:
    """IP6 for a relay reached over IPv6 (its media is taken to be IPv6 too, as `check` does)."""
    return "IP6" if node.scheme in ("udp6", "tcp6") else "IP4"


class CallTemplate:
    """The offer (`U`), answer (`L`) and delete (`D`) of any call for one relay, planned once.

    `commands(call_id, from_tag, to_tag)` returns the three lines the planner and `cmd.delete`
    would build for that call (the test checks it call for call). Planned once with placeholders
    and filled in per call, unless the flags put something derived from the Call-ID into the
    commands (`n`: the notify tag; `d`: the DTMF tag): then each call is planned on its own.
    """

    def __init__(self, flags: Flags, capabilities: frozenset[str], family: str = "IP4", *,
                 notify_socket: str | None = None) -> None:
        from rtppctl.proto import sdp as sdp_mod  # noqa: PLC0415

        self.flags = flags
        self.capabilities = capabilities
        self.notify_socket = notify_socket
        self.sdps = tuple(sdp_mod.parse_sdp(party_sdp(family, party), source="load SDP") for party in (0, 1))
        self.warnings: tuple[str, ...] = ()
        # Planned once with placeholders whatever the flags: the plan's warnings, and any refusal
        # the capabilities cause, are known before the first call.
        lines = self.plan(_CALL_SLOT, _FROM_SLOT, _TO_SLOT)
        self._formats = None if flags.notify or flags.dtmf else self._compile(lines)

    @property
    def per_call(self) -> bool:
        """Each call is planned on its own (flags n or d)."""
        return self._formats is None

    def plan(self, call_id: str, from_tag: str, to_tag: str) -> tuple[str, str, str]:
        """The three commands as the planner builds them for this call (the slow way)."""
        from rtppctl.proto import offer as planner  # noqa: PLC0415

        lines = []
        warnings: list[str] = []
        for offer, sdp in ((True, self.sdps[0]), (False, self.sdps[1])):
            leg = planner.CallLeg(call_id, from_tag, None if offer else to_tag, in_reply=not offer)
            plan = planner.plan(sdp, self.flags, leg, offer=offer, capabilities=self.capabilities,
                                notify_socket=self.notify_socket)
            lines.append(plan.commands[0].command)
            warnings.extend(w for w in plan.warnings if w not in warnings)
        self.warnings = tuple(warnings)
        return lines[0], lines[1], cmd.delete(call_id, from_tag, to_tag)

    @staticmethod
    def _compile(lines: tuple[str, str, str]) -> tuple[str, str, str] | None:
        """The three commands as %-formats over the call's values, or None when the placeholders
        do not stand alone (then every call is planned)."""
        formats = []
        for line in lines:
            words = []
            for word in line.split(" "):
                head, semicolon, tail = word.partition(";")
                slot = {_CALL_SLOT: "%(c)s", _FROM_SLOT: "%(f)s", _TO_SLOT: "%(t)s"}.get(head)
                if slot is not None and (not semicolon or tail.isdigit()):
                    words.append(slot + semicolon + tail)
                elif "@" in word:
                    return None  # a placeholder inside another token: no template
                else:
                    words.append(word.replace("%", "%%"))
            formats.append(" ".join(words))
        return formats[0], formats[1], formats[2]

    def commands(self, call_id: str, from_tag: str, to_tag: str, *, checked: bool = False) -> tuple[str, str, str]:
        """U, L and D of this call. The Call-ID and tags are checked as every encoder checks them,
        unless `checked` says the caller did (they come from `CallNames`)."""
        formats = self._formats
        if formats is None:
            return self.plan(call_id, from_tag, to_tag)
        if not checked:
            cmd.validate_call_id(call_id)
            cmd.validate_tag(from_tag, "from-tag")
            cmd.validate_tag(to_tag, "to-tag")
        values = {"c": call_id, "f": from_tag, "t": to_tag}
        return formats[0] % values, formats[1] % values, formats[2] % values

    def check(self, call_id: str, from_tag: str, to_tag: str) -> None:
        """Every refusal any relay's capabilities could cause for this call, before anything is
        sent (`proto.offer.check`), and the delete's."""
        from rtppctl.proto import offer as planner  # noqa: PLC0415

        for offer, sdp in ((True, self.sdps[0]), (False, self.sdps[1])):
            leg = planner.CallLeg(call_id, from_tag, None if offer else to_tag, in_reply=not offer)
            planner.check(sdp, self.flags, leg, offer=offer, notify_socket=self.notify_socket)
        cmd.delete(call_id, from_tag, to_tag)


# -- settings and the run's nodes ------------------------------------------------------------------


@dataclass(frozen=True)
class FindMax:
    """--find-max: ramp the rate in steps until a step fails."""

    start_rate: float = DEFAULT_START_RATE
    step: float = DEFAULT_STEP
    steps: int = DEFAULT_STEPS
    step_s: float = DEFAULT_STEP_SECONDS
    max_p99_ms: float = DEFAULT_MAX_P99_MS
    max_errors_pct: float = DEFAULT_MAX_ERRORS_PCT


@dataclass(frozen=True)
class LoadSettings:
    """What one run sends, how fast, and how it is reported."""

    #: Calls to make; None: as many as --duration allows.
    calls: int | None = DEFAULT_CALLS
    #: Seconds during which calls are started; None: until --calls are made.
    duration_s: float | None = None
    #: Calls started per second (open loop); None: as fast as the window allows.
    rate: float | None = None
    hold_s: float = 0.0
    flags: str = ""
    window: int = 16
    workers: int = 1
    seed: int = 0
    failover: bool = False
    interval_s: float = DEFAULT_INTERVAL
    #: rtpp_notify_socket, for the flags n and d.
    notify_socket: str | None = None
    find_max: FindMax | None = None
    #: How long one request may take with its resends (timeout x retries): what winding down
    #: after a fault may wait for the replies still due.
    command_seconds: float = 5.0


@dataclass(frozen=True)
class LoadNode:
    """One node of the run as every worker sees it (picklable)."""

    index: int
    spec: NodeSpec
    set_id: int | None
    weight: int
    #: Selectable in the state store at the start (a -t relay always is); read once, never written.
    enabled: bool
    #: What the module's probe found (None: not probed, or the probe failed).
    capabilities: frozenset[str] | None
    #: Why the node is failed from the start (its probe), in words; None when it answered.
    failure: str | None = None


# -- counting --------------------------------------------------------------------------------------


def _histogram() -> Any:
    from hdrh.histogram import HdrHistogram  # noqa: PLC0415 - only load pays for it

    return HdrHistogram(_HISTOGRAM_LOWEST_US, _HISTOGRAM_HIGHEST_US, _HISTOGRAM_DIGITS)


def latency_summary(histogram: Any) -> dict[str, float] | None:
    """p50/p90/p99/p99.9/max in milliseconds; None when nothing was recorded."""
    if histogram is None or histogram.get_total_count() == 0:
        return None
    summary = {key: round(histogram.get_value_at_percentile(value) / 1000.0, 3) for key, value in PERCENTILES}
    summary["max"] = round(histogram.get_max_value() / 1000.0, 3)
    return summary


#: Latencies kept as plain numbers before they go into a histogram at once (a Counter and one
#: record per distinct value: about a fifth of the cost of one record per reply).
_PENDING_LATENCIES = 65536


class _CommandCounts:
    """One command letter's counts and latencies in one process."""

    __slots__ = ("letter", "sent", "replies", "errors", "timeouts", "unreachable", "malformed", "retransmits",
                 "histogram", "interval", "pending")

    def __init__(self, letter: str) -> None:
        self.letter = letter
        self.sent = 0
        self.replies = 0
        #: E<n> replies by n.
        self.errors: dict[int, int] = {}
        self.timeouts = 0
        self.unreachable = 0
        self.malformed = 0
        self.retransmits = 0
        self.histogram = _histogram()
        #: Latencies since the last progress tick; added to `histogram` at each tick.
        self.interval = _histogram()
        #: Latencies in microseconds not yet in `interval`.
        self.pending: list[int] = []

    def record(self, microseconds: int) -> None:
        pending = self.pending
        pending.append(microseconds)
        if len(pending) >= _PENDING_LATENCIES:
            self.flush()

    def flush(self) -> None:
        """The pending latencies into the interval histogram, one record per distinct value."""
        from collections import Counter  # noqa: PLC0415

        if self.pending:
            record = self.interval.record_value
            for value, count in Counter(self.pending).items():
                record(_HISTOGRAM_HIGHEST_US if value > _HISTOGRAM_HIGHEST_US
                       else value if value >= _HISTOGRAM_LOWEST_US else _HISTOGRAM_LOWEST_US, count)
            self.pending = []

    def fold(self) -> None:
        """The interval's latencies into the total."""
        self.flush()
        if self.interval.get_total_count():
            self.histogram.add(self.interval)
            self.interval.reset()


class _NodeCounts:
    """One node's part of a run in one process."""

    __slots__ = ("chosen", "carried", "moved", "not_sent", "replies_ok", "replies_error", "failures",
                 "retransmits", "sessions", "peak", "refusals", "failure", "failed_at", "deferred", "left", "errors")

    def __init__(self) -> None:
        #: Calls the module's choice sent here first; of them, moved by failover; not sent (failed).
        self.chosen = 0
        self.moved = 0
        self.not_sent = 0
        #: Calls whose offer was answered here (their session lived here).
        self.carried = 0
        #: Requests answered (E<n> or not), and those that ended without a usable reply.
        self.replies_ok = 0
        self.replies_error = 0
        self.failures = 0
        self.retransmits = 0
        #: Sessions held now (U answered, D not yet) and the most at once.
        self.sessions = 0
        self.peak = 0
        #: E71/E72/E98/E99 -> sessions held here when the relay first answered it.
        self.refusals: dict[int, int] = {}
        #: E<n> replies by n.
        self.errors: dict[int, int] = {}
        #: Why it failed during the run, in words; when (monotonic).
        self.failure: str | None = None
        self.failed_at: float | None = None
        #: Calls whose session may be here, to delete once the run is over (the node failed).
        self.deferred: list[_Call] = []
        #: Sessions that may remain here: (Call-ID, From tag, To tag).
        self.left: list[tuple[str, str, str]] = []


class _Call:
    """One call of the run: who it is, where it went, what is outstanding."""

    __slots__ = ("number", "call_id", "from_tag", "to_tag", "node", "commands", "maybe", "session", "failed",
                 "active")

    def __init__(self, number: int, call_id: str, from_tag: str, to_tag: str) -> None:
        self.number = number
        self.call_id = call_id
        self.from_tag = from_tag
        self.to_tag = to_tag
        self.node = -1
        self.commands: tuple[str, str, str] = ("", "", "")
        #: Nodes whose U got no usable reply: they may hold a session of this call.
        self.maybe: list[int] | None = None
        #: Its U was answered on `node` (a session exists there until its D is answered).
        self.session = False
        self.failed = False
        #: Counted among the calls with a request outstanding (not held, not over).
        self.active = False


def transport_kind(error: TransportError) -> str:
    """`timeout` (no reply in time), `malformed` (a reply that cannot be read) or `unreachable`
    (refused, reset, closed, cannot send)."""
    if isinstance(error, MalformedReply):
        return "malformed"
    return "timeout" if isinstance(error, ReplyTimeout) else "unreachable"


#: E<n> replies that say the relay reached a limit, and the words for them (docs/protocol.md §12.4
#: and the engine notes: a call holds 4 ports and 4 file descriptors once answered).
LIMIT_WORDS = {
    71: ("the relay ran out of ports for a session's answer (E71: no ports for an existing session, answered "
         "to L); each answered call holds 4 ports: widen its port range (-m/-M)"),
    72: ("the relay refused new sessions (E72: no ports or file descriptors for a new session, answered to U); "
         "each answered call holds 4 ports and 4 file descriptors: widen its port range (-m/-M) or raise its "
         "file descriptor limit"),
    98: "the relay refused commands as overloaded (E98)",
    99: "the relay is shutting down and refuses new sessions (E99)",
}



# -- the scheduler ---------------------------------------------------------------------------------


class Scheduler:
    """Which call next, when, to which node: requests go out through `submit`, outcomes come in
    through `completed`. No I/O and no clock of its own (every time is passed in), so it is tested
    with plain values; `request(node, command, key, tag, scheduled)` builds what is submitted
    (`net.pipeline.Request`).

    `numbers` are the global call numbers this process makes (a worker takes every Nth); in an
    open loop call n is due at `start + (n - offset) / rate`, and without a rate as soon as fewer
    than `cap` calls have a request outstanding. At most MAX_HELD sessions are held at once.
    Requests carry `key` = the Call-ID, so a call's commands never overlap.
    """

    def __init__(self, nodes: Sequence[LoadNode], templates: Sequence[CallTemplate | None], *, seed: int,
                 numbers: range, offset: int, start: float, rate: float | None, end: float | None, hold: float,
                 failover: bool, cap: int, submit: Callable[[Any], None], request: Callable[..., Any]) -> None:
        self.nodes = list(nodes)
        self.templates = list(templates)
        self.seed = seed
        self.numbers = numbers
        self.offset = offset
        self.start = start
        self.rate = rate
        self.end = end
        self.hold = hold
        self.failover = failover
        self.cap = max(1, cap)
        self._submit = submit
        self._request = request
        self._names = CallNames(seed, numbers[-1] if len(numbers) else offset)
        self.commands = {letter: _CommandCounts(letter) for letter, _ in COMMANDS}
        self.counts = [_NodeCounts() for _ in self.nodes]
        for node, counts in zip(self.nodes, self.counts, strict=True):
            counts.failure = node.failure
        self._next = 0
        self._outstanding = 0
        self._held: deque[tuple[float, _Call]] = deque()
        self._table = self._choices()
        self.stopping = False
        self._cleaning = False
        self._cleanup_pending = 0
        self._cleaned = False
        # What the report counts.
        self.started = 0
        self.setup = 0
        self.completed_calls = 0
        self.failed = 0
        self.missed = 0
        #: Failures of calls by what went wrong beside the replies: not sent, no relay, no session.
        self.call_failures: dict[str, int] = {}
        self.first_scheduled: float | None = None
        self.last_done: float | None = None
        self.last_setup: float | None = None
        self.sessions = 0
        self.peak_sessions = 0

    # -- choosing a node

    def _usable(self, index: int) -> bool:
        """May the module's choice fall on this node now? Enabled at the start, planned for (it
        answered the probe), and, with --failover, not failed during the run."""
        node = self.nodes[index]
        if not node.enabled or self.templates[index] is None:
            return False
        return not (self.failover and self.counts[index].failure is not None)

    def _choices(self) -> list[int | None]:
        """The node of each of the 256 hash values, as the module would pick it now: the walk
        depends on nothing else (as `lb simulate` works it out)."""
        from rtppctl.proto.select import HASH_VALUES, Candidate, choose  # noqa: PLC0415

        candidates = [Candidate(node.weight, self._usable(index)) for index, node in enumerate(self.nodes)]
        return [choose(bytes([value]), candidates).index for value in range(HASH_VALUES)]

    def choose(self, call_id: str) -> int | None:
        """The node the module picks for `call_id` now (None: none is left)."""
        return self._table[sum(call_id.encode("utf-8", "surrogateescape")) & 0xFF]

    # -- starting calls

    @property
    def more_calls(self) -> bool:
        return not self.stopping and self._next < len(self.numbers)

    def due(self, now: float) -> None:
        """Submit what is due at `now`: held sessions' deletes, then the new calls the cap allows;
        once the calls are over, the end's clean-up."""
        held = self._held
        while held and (self.stopping or held[0][0] <= now):
            due_at, call = held.popleft()
            self._delete(call, min(due_at, now))
        if self.more_calls:
            self._start_calls(now)
        if self._idle():
            self._clean_up()

    def _start_calls(self, now: float) -> None:
        numbers = self.numbers
        rate = self.rate
        end = self.end
        while self._outstanding < self.cap and self._next < len(numbers) and len(self._held) < MAX_HELD:
            number = numbers[self._next]
            if rate is not None:
                scheduled = self.start + (number - self.offset) / rate
                if end is not None and now > end + MISSED_GRACE:
                    # Due during the duration and never started: the rate was not reached.
                    self.missed += len(numbers) - self._next
                    self._next = len(numbers)
                    return
                if scheduled > now:
                    return
            else:
                if end is not None and now >= end:
                    self._next = len(numbers)
                    return
                scheduled = now
            self._next += 1
            self._begin(number, scheduled)

    def _begin(self, number: int, scheduled: float) -> None:
        call_id, from_tag, to_tag = self._names(number)
        call = _Call(number, call_id, from_tag, to_tag)
        self.started += 1
        if self.first_scheduled is None:
            self.first_scheduled = scheduled
        index = self._table[sum(call_id.encode("utf-8", "surrogateescape")) & 0xFF]  # self.choose, inlined
        if index is None:
            self._failed_unsent(call, "no relay")
            return
        counts = self.counts[index]
        counts.chosen += 1
        if counts.failure is not None:
            # Without --failover a call stays on its node, which failed earlier in this run.
            counts.not_sent += 1
            self._failed_unsent(call, "not sent")
            return
        self._activate(call)
        self._offer(call, index, scheduled)

    def _offer(self, call: _Call, index: int, scheduled: float) -> None:
        template = self.templates[index]
        if template is None:  # not reachable: such nodes are never chosen
            raise InputError(f"no plan for {self.nodes[index].spec.url}")
        call.node = index
        call.commands = template.commands(call.call_id, call.from_tag, call.to_tag, checked=True)
        self.commands["U"].sent += 1
        self._submit(self._request(self.nodes[index].spec, call.commands[0], call.call_id, (call, "U", index),
                                   scheduled))

    def _failed_unsent(self, call: _Call, reason: str) -> None:
        call.failed = True
        self.failed += 1
        self._count(reason)

    def _count(self, reason: str) -> None:
        self.call_failures[reason] = self.call_failures.get(reason, 0) + 1

    def _activate(self, call: _Call) -> None:
        if not call.active:
            call.active = True
            self._outstanding += 1

    def _deactivate(self, call: _Call) -> None:
        if call.active:
            call.active = False
            self._outstanding -= 1

    # -- outcomes

    def completed(self, outcome: Any) -> None:
        """Take one request's outcome and submit what follows from it. (The path every reply
        takes: kept short.)"""
        call, kind, index = outcome.request.tag
        counts = self.counts[index]
        done_at = outcome.done_at
        if self.last_done is None or done_at > self.last_done:
            self.last_done = done_at
        stats = self.commands.get(kind)
        retransmits = outcome.retransmits
        if retransmits:
            counts.retransmits += retransmits
            if stats is not None:
                stats.retransmits += retransmits
        error = outcome.error
        if error is not None:
            counts.failures += 1
            self._transport_failure(call, kind, index, error, done_at, outcome.scheduled, stats)
            return
        reply = outcome.reply
        if reply[:1] == "E":
            code = cmd.error_code(reply)
        else:
            code = None
        if code is None:
            counts.replies_ok += 1
        else:
            counts.replies_error += 1
            counts.errors[code] = counts.errors.get(code, 0) + 1
        if stats is not None:
            stats.replies += 1
            stats.record(int((done_at - outcome.scheduled) * 1_000_000))
            if code is not None and not (kind == "D" and code == cmd.SESSION_NOT_FOUND):
                stats.errors[code] = stats.errors.get(code, 0) + 1
        if kind == "U":
            self._offer_answered(call, index, code, reply, done_at, outcome.scheduled)
        elif kind == "L":
            self._answer_answered(call, index, code, reply, done_at)
        elif kind == "D":
            self._deleted(call, index, code)
        elif kind == _PROBE:
            self._probe_answered(index)
        else:  # _CLEANUP
            self._cleaned_up(call, index, code is None or code == cmd.SESSION_NOT_FOUND)

    def _offer_answered(self, call: _Call, index: int, code: int | None, reply: str, done_at: float,
                        scheduled: float) -> None:
        if code is None:
            call.session = True  # whatever the reply says, the relay may hold a session now
            self._session_up(index)
            if not reply.split(" ", 1)[0].isdigit():
                self.commands["U"].malformed += 1
                self._call_failed(call)
                self._delete(call, done_at)
                return
            self.counts[index].carried += 1
            if self.stopping:
                self._delete(call, done_at)
                return
            self.commands["L"].sent += 1
            self._submit(self._request(self.nodes[index].spec, call.commands[1], call.call_id, (call, "L", index),
                                       done_at))
            return
        if code in NODE_FAILURE_CODES:
            # The module takes E7-E10 to U for a broken relay: failed, and the offer fails over.
            self._node_failed(index, f"answered E{code} to an offer, which the module takes for a broken relay",
                              done_at)
            if self._fail_over(call, index, scheduled):
                return
        self._limit(index, code)
        self._call_failed(call)
        # Refused; a D makes sure nothing of it is left (E50 when nothing is, as expected).
        self._delete(call, done_at)

    def _answer_answered(self, call: _Call, index: int, code: int | None, reply: str, done_at: float) -> None:
        if code is None:
            port = reply.split(" ", 1)[0]
            if port == "0" or not port.isdigit():
                if port == "0":
                    self._count("no session")  # docs/protocol.md §15.14: L answers 0, not E50
                else:
                    self.commands["L"].malformed += 1
                self._call_failed(call)
                self._delete(call, done_at)
                return
            self.setup += 1
            if self.last_setup is None or done_at > self.last_setup:
                self.last_setup = done_at
            if self.hold > 0 and not self.stopping:
                self._deactivate(call)
                self._held.append((done_at + self.hold, call))
                return
            self._delete(call, done_at)
            return
        self._limit(index, code)
        self._call_failed(call)
        self._delete(call, done_at)

    def _deleted(self, call: _Call, index: int, code: int | None) -> None:
        if code is not None and code != cmd.SESSION_NOT_FOUND:
            # The relay did not delete it: it may still be there.
            self.counts[index].left.append((call.call_id, call.from_tag, call.to_tag))
            self._call_failed(call)
        else:
            self._session_down(call, index)
        self._over(call)

    def _over(self, call: _Call, *, deferred: bool = False) -> None:
        """The call is over for now: nodes that did not answer its offer may hold a session of
        it (deleted at the end); a call whose D was put off is counted when it goes out then."""
        self._deactivate(call)
        if call.maybe:
            for index in call.maybe:
                self.counts[index].deferred.append(call)
            call.maybe = None
        if not call.failed and not deferred:
            self.completed_calls += 1

    def _defer(self, call: _Call) -> None:
        """Its relay failed: the call's D waits for the end, when the relay is asked whether it is
        back (one V, not one timeout per held session). The call completes if that D is answered."""
        self.counts[call.node].deferred.append(call)
        self._over(call, deferred=True)

    def _cleaned_up(self, call: _Call, index: int, deleted: bool) -> None:
        """The end's D of a session on a failed relay: gone, or named. The relay that held the
        call's own session decides how the call ends; one that only may have held one (its offer
        got no reply) adds a name at most."""
        own = call.node == index
        if deleted:
            self._session_down(call, index)
            if own and not call.failed:
                self.completed_calls += 1
        else:
            self.counts[index].left.append((call.call_id, call.from_tag, call.to_tag))
            if own:
                self._call_failed(call)
        self._cleanup_step()

    def _call_failed(self, call: _Call) -> None:
        if not call.failed:
            call.failed = True
            self.failed += 1

    def _session_up(self, index: int) -> None:
        counts = self.counts[index]
        counts.sessions += 1
        if counts.sessions > counts.peak:
            counts.peak = counts.sessions
        self.sessions += 1
        if self.sessions > self.peak_sessions:
            self.peak_sessions = self.sessions

    def _session_down(self, call: _Call, index: int) -> None:
        if call.session and call.node == index:
            call.session = False
            self.counts[index].sessions -= 1
            self.sessions -= 1

    def _delete(self, call: _Call, scheduled: float) -> None:
        if self.counts[call.node].failure is not None:
            self._defer(call)
            return
        self._activate(call)
        self.commands["D"].sent += 1
        self._submit(self._request(self.nodes[call.node].spec, call.commands[2], call.call_id,
                                   (call, "D", call.node), scheduled))

    def _limit(self, index: int, code: int) -> None:
        counts = self.counts[index]
        if code in LIMIT_WORDS and code not in counts.refusals:
            counts.refusals[code] = counts.sessions

    def _transport_failure(self, call: _Call | None, kind: str, index: int, error: TransportError, done_at: float,
                           scheduled: float, stats: _CommandCounts | None) -> None:
        how = transport_kind(error)
        if stats is not None:
            if how == "timeout":
                stats.timeouts += 1
            elif how == "malformed":
                stats.malformed += 1
            else:
                stats.unreachable += 1
        self._node_failed(index, self._failure_words(index, error, how), done_at)
        if kind == "U":
            call.maybe = [*(call.maybe or ()), index]
            if self._fail_over(call, index, scheduled):
                return
            self._call_failed(call)
            self._over(call)
        elif kind in ("L", "D"):
            # No usable reply: the call failed; its session is deleted at the end if the relay is back.
            self._call_failed(call)
            self._defer(call)
        elif kind == _PROBE:
            # Not back: every session it may hold is named.
            for deferred in self.counts[index].deferred:
                self._cleanup_pending += 1
                self._cleaned_up(deferred, index, False)
            self._cleanup_step()
        else:  # _CLEANUP
            self._cleaned_up(call, index, False)

    def _fail_over(self, call: _Call, index: int, scheduled: float) -> bool:
        """With --failover, the failed offer goes to the module's next choice (the failed node is
        out of the choice now); True when it went. Its latency still counts from the first try."""
        if not self.failover or self.stopping:
            return False
        target = self.choose(call.call_id)
        if target is None or target == index:
            return False
        self.counts[index].moved += 1
        self._offer(call, target, scheduled)
        return True

    def _failure_words(self, index: int, error: TransportError, how: str) -> str:
        counts = self.counts[index]
        answered = counts.replies_ok + counts.replies_error
        if answered == 0:
            return f"did not answer: {error.message}"
        held = f"after {answered} replies, with {counts.sessions} sessions held"
        if how == "timeout":
            return f"stopped answering under load {held}: {error.message}"
        if how == "malformed":
            return f"sent a reply that cannot be read {held}: {error.message}"
        return f"went away {held}: {error.message}"

    def _node_failed(self, index: int, words: str, when: float) -> None:
        counts = self.counts[index]
        if counts.failure is not None:
            return
        counts.failure = words
        counts.failed_at = when
        if self.failover:
            self._table = self._choices()

    # -- the end

    def stop(self) -> None:
        """Interrupted: no new call; held sessions are deleted at once, and an offer answered
        from now on gets its D instead of an L."""
        self.stopping = True

    def _idle(self) -> bool:
        return not self.more_calls and self._outstanding == 0 and not self._held

    def _clean_up(self) -> None:
        """Once the calls are over: each failed node that may hold sessions is asked V; when it
        answers, its sessions get their D; when it does not, they are named."""
        if self._cleaning:
            return
        self._cleaning = True
        for index, counts in enumerate(self.counts):
            if counts.deferred:
                self._cleanup_pending += 1
                self._submit(self._request(self.nodes[index].spec, cmd.version(), None, (None, _PROBE, index), None))
        self._cleaned = self._cleanup_pending == 0

    def _probe_answered(self, index: int) -> None:
        for call in self.counts[index].deferred:
            self._cleanup_pending += 1
            self._submit(self._request(self.nodes[index].spec, call.commands[2], call.call_id,
                                       (call, _CLEANUP, index), None))
        self._cleanup_step()

    def _cleanup_step(self) -> None:
        self._cleanup_pending -= 1
        if self._cleanup_pending == 0:
            self._cleaned = True

    @property
    def finished(self) -> bool:
        """Every call is over and every session it made is deleted or named."""
        return self._cleaned and self._idle()

    def next_wakeup(self, now: float) -> float | None:
        """When something becomes due without an outcome arriving (None: only outcomes)."""
        wake = self._held[0][0] if self._held else None
        if self.more_calls and self._outstanding < self.cap:
            if self.rate is None:
                return now
            scheduled = self.start + (self.numbers[self._next] - self.offset) / self.rate
            if self.end is not None:
                scheduled = min(scheduled, self.end + MISSED_GRACE)
            wake = scheduled if wake is None else min(wake, scheduled)
        return wake

    # -- progress

    def tick(self) -> dict[str, Any]:
        """This process's counters now and the latencies since the last tick (each command's
        interval histogram, encoded, then folded into its total)."""
        intervals = {}
        for letter, stats in self.commands.items():
            stats.flush()
            intervals[letter] = stats.interval.encode() if stats.interval.get_total_count() else None
            stats.fold()
        return {"started": self.started, "setup": self.setup, "completed": self.completed_calls,
                "failed": self.failed, "sessions": self.sessions,
                "timeouts": sum(s.timeouts for s in self.commands.values()), "intervals": intervals}


# -- one process's part of a phase -----------------------------------------------------------------


@dataclass(frozen=True)
class _Phase:
    """One stretch of calls at one rate: the whole run, or one step of --find-max."""

    #: Global number of its first call; calls first .. limit-1 (workers take every Nth).
    first: int
    limit: int
    #: Monotonic time of call `first` (an open loop's zero), the end of --duration, the rate.
    start: float
    end: float | None
    rate: float | None
    step: int | None = None


@dataclass
class _Run:
    """What every process of a run shares (inherited by forked workers, never pickled)."""

    service: RelayService
    settings: LoadSettings
    nodes: list[LoadNode]
    templates: list[CallTemplate | None]

    @property
    def cap(self) -> int:
        """Calls with a request outstanding at once, per process: one and a half windows' worth
        per usable node (a call has one request out at a time). The half window waits in the
        engine's queue and goes out the moment replies free the window, while this process is
        still busy with them, so the relay is never idle for want of a request; more would only
        wait longer in that queue (which counts as latency)."""
        usable = sum(1 for t in self.templates if t is not None) or 1
        return self.settings.window * usable * 3 // 2


def _slice(run: _Run, phase: _Phase, worker: int, *, interrupted: Callable[[], bool],
           on_tick: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Run this process's calls of `phase` (numbers worker, worker + N, ...) to the end, every
    session deleted or named; what it counted, ready to merge."""
    from rtppctl.net.pipeline import Request  # noqa: PLC0415

    settings = run.settings
    pipeline = run.service.pipeline(settings.window)
    try:
        scheduler = Scheduler(
            run.nodes, run.templates, seed=settings.seed,
            numbers=range(phase.first + worker, phase.limit, settings.workers), offset=phase.first,
            start=phase.start, rate=phase.rate, end=phase.end, hold=settings.hold_s, failover=settings.failover,
            cap=run.cap, submit=pipeline.submit, request=Request,
        )
        try:
            was_interrupted = _drive(pipeline, scheduler, interrupted=interrupted, on_tick=on_tick,
                                     tick_s=settings.interval_s)
        except BaseException:
            # Whatever broke the loop (a reader that went away, a bug), the sessions made so far
            # are deleted before it goes on up, as far as the time a request may take allows.
            _wind_down(pipeline, scheduler, 2 * settings.command_seconds + 1.0)
            raise
    finally:
        pipeline.close()
    return _slice_result(scheduler, was_interrupted)


def _wind_down(pipeline: Any, scheduler: Scheduler, seconds: float) -> None:
    """Stop the calls and take outcomes until every session is deleted (or named), at most
    `seconds`; never raises."""
    try:
        scheduler.stop()
        limit = time.monotonic() + seconds
        while not scheduler.finished and time.monotonic() < limit:
            scheduler.due(time.monotonic())
            for outcome in pipeline.poll(0.05):
                scheduler.completed(outcome)
    except Exception:  # noqa: BLE001 - the fault that brought us here is the one to report
        pass


def _drive(pipeline: Any, scheduler: Scheduler, *, interrupted: Callable[[], bool],
           on_tick: Callable[[dict[str, Any]], None], tick_s: float) -> bool:
    """The loop: submit what is due, poll the engine, hand each outcome to the scheduler, tick
    the progress, look at `interrupted` (every 50 ms); until every call is over. True when it was
    interrupted."""
    clock = time.monotonic
    poll = pipeline.poll
    completed = scheduler.completed
    next_tick = clock() + tick_s
    next_look = 0.0
    was_interrupted = False
    idle_since: float | None = None
    while True:
        now = clock()
        scheduler.due(now)
        if scheduler.finished:
            break
        if now >= next_look:
            next_look = now + 0.05
            if not was_interrupted and interrupted():
                was_interrupted = True
                scheduler.stop()
                continue
        if now >= next_tick:
            on_tick(scheduler.tick())
            next_tick = now + tick_s
        wake = scheduler.next_wakeup(now)
        wait = min(0.05, next_tick - now) if wake is None else min(max(0.0, wake - now), 0.05, next_tick - now)
        outcomes = poll(max(0.0, wait))
        for outcome in outcomes:
            completed(outcome)
        if not outcomes and wake is None and not pipeline.pending:
            # Nothing outstanding, nothing due, and not finished: a bug, never a hang.
            idle_since = idle_since or now
            if now - idle_since > 1.0:
                raise RuntimeError("load: calls are outstanding but the engine has nothing pending")
        else:
            idle_since = None
    on_tick(scheduler.tick())
    return was_interrupted


def _slice_result(scheduler: Scheduler, interrupted: bool) -> dict[str, Any]:
    """What one process counted, as plain values (a worker pickles it to the parent)."""
    commands = {}
    for letter, stats in scheduler.commands.items():
        stats.fold()
        commands[letter] = {
            "sent": stats.sent, "replies": stats.replies, "errors": dict(stats.errors), "timeouts": stats.timeouts,
            "unreachable": stats.unreachable, "malformed": stats.malformed, "retransmits": stats.retransmits,
            "histogram": stats.histogram.encode() if stats.histogram.get_total_count() else None,
        }
    nodes = []
    for counts in scheduler.counts:
        nodes.append({name: getattr(counts, name) for name in (
            "chosen", "carried", "moved", "not_sent", "replies_ok", "replies_error", "failures",
            "retransmits", "peak", "refusals", "errors", "failure", "failed_at", "left")})
    return {
        "commands": commands, "nodes": nodes, "started": scheduler.started, "setup": scheduler.setup,
        "completed": scheduler.completed_calls, "failed": scheduler.failed, "missed": scheduler.missed,
        "call_failures": dict(scheduler.call_failures), "first_scheduled": scheduler.first_scheduled,
        "last_done": scheduler.last_done, "last_setup": scheduler.last_setup,
        "peak_sessions": scheduler.peak_sessions, "interrupted": interrupted,
    }


def _merge(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Several processes' (or steps') results as one: counts added, histograms added exactly, a
    node failed when any process saw it fail (the first failure's words), times widened."""
    merged: dict[str, Any] = {"commands": {}, "nodes": [], "call_failures": {}}
    for result in results:
        for letter, stats in result["commands"].items():
            into = merged["commands"].setdefault(letter, {
                "sent": 0, "replies": 0, "errors": {}, "timeouts": 0, "unreachable": 0, "malformed": 0,
                "retransmits": 0, "histogram": None})
            for key in ("sent", "replies", "timeouts", "unreachable", "malformed", "retransmits"):
                into[key] += stats[key]
            _add_counts(into["errors"], stats["errors"])
            if stats["histogram"] is not None:
                into["histogram"] = _add_histogram(into["histogram"], stats["histogram"])
        for index, node in enumerate(result["nodes"]):
            if index == len(merged["nodes"]):
                merged["nodes"].append({**node, "refusals": dict(node["refusals"]), "errors": dict(node["errors"]),
                                        "left": list(node["left"])})
                continue
            into = merged["nodes"][index]
            for key in ("chosen", "carried", "moved", "not_sent", "replies_ok", "replies_error", "failures",
                        "retransmits", "peak"):
                into[key] += node[key]
            _add_counts(into["errors"], node["errors"])
            for code, held in node["refusals"].items():
                into["refusals"][code] = max(into["refusals"].get(code, 0), held)
            into["left"].extend(node["left"])
            if node["failure"] is not None and (into["failed_at"] is None or (
                    node["failed_at"] is not None and node["failed_at"] < into["failed_at"])):
                into["failure"], into["failed_at"] = node["failure"], node["failed_at"]
        for key in ("started", "setup", "completed", "failed", "missed", "peak_sessions"):
            merged[key] = merged.get(key, 0) + result[key]
        _add_counts(merged["call_failures"], result["call_failures"])
        merged["first_scheduled"] = _earliest(merged.get("first_scheduled"), result["first_scheduled"])
        merged["last_done"] = _latest(merged.get("last_done"), result["last_done"])
        merged["last_setup"] = _latest(merged.get("last_setup"), result["last_setup"])
        merged["interrupted"] = merged.get("interrupted", False) or result["interrupted"]
    return merged


def _add_counts(into: dict, more: dict) -> None:
    for key, value in more.items():
        into[key] = into.get(key, 0) + value


def _add_histogram(into: Any, more: Any) -> Any:
    """`into` (None, an encoded histogram or one) with `more` (encoded or not) added exactly."""
    from hdrh.histogram import HdrHistogram  # noqa: PLC0415

    if into is None:
        into = _histogram()
    elif isinstance(into, (bytes, str)):
        into = HdrHistogram.decode(into)
    into.add(HdrHistogram.decode(more) if isinstance(more, (bytes, str)) else more)
    return into


def _earliest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _latest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


# -- progress --------------------------------------------------------------------------------------


class _Progress:
    """The processes' ticks as one progress object per interval (`"type": "progress"`)."""

    def __init__(self, started: float, planned: int | None, phase: _Phase, before: dict[str, int]) -> None:
        self.started = started
        self.planned = planned
        self.phase = phase
        #: Totals of the steps before this one (find-max), so the counts run on.
        self.before = before
        self.latest: dict[int, dict[str, Any]] = {}
        self.intervals: dict[str, Any] = {}
        self.last_at = time.monotonic()
        self.last_setup = 0

    def add(self, worker: int, tick: dict[str, Any]) -> None:
        from hdrh.histogram import HdrHistogram  # noqa: PLC0415

        self.latest[worker] = tick
        for letter, encoded in tick["intervals"].items():
            if encoded is not None:
                histogram = self.intervals.get(letter)
                if histogram is None:
                    self.intervals[letter] = HdrHistogram.decode(encoded)
                else:
                    histogram.add(HdrHistogram.decode(encoded))

    def record(self, now: float) -> dict[str, Any]:
        totals = {key: sum(t[key] for t in self.latest.values())
                  for key in ("started", "setup", "completed", "failed", "sessions", "timeouts")}
        span = max(now - self.last_at, 1e-9)
        per_s = (totals["setup"] - self.last_setup) / span
        self.last_at, self.last_setup = now, totals["setup"]
        p99s = [h.get_value_at_percentile(99.0) for h in self.intervals.values() if h.get_total_count()]
        self.intervals = {}
        return {
            "type": "progress", "elapsed_s": round(now - self.started, 3), "step": self.phase.step,
            "rate": self.phase.rate, "calls_planned": self.planned,
            "calls_started": totals["started"] + self.before.get("started", 0),
            "calls_setup": totals["setup"] + self.before.get("setup", 0),
            "calls_completed": totals["completed"] + self.before.get("completed", 0),
            "calls_failed": totals["failed"] + self.before.get("failed", 0),
            "sessions": totals["sessions"], "calls_per_s": round(per_s, 1),
            "p99_ms": round(max(p99s) / 1000.0, 3) if p99s else None,
            "timeouts": totals["timeouts"] + self.before.get("timeouts", 0),
        }


def _run_phase(run: _Run, phase: _Phase, *, interrupted: Callable[[], bool], progress: _Progress,
               on_progress: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """One phase over every process: in this one, or in --workers forked processes whose results
    are merged."""
    if run.settings.workers == 1:
        def on_tick(tick: dict[str, Any]) -> None:
            progress.add(0, tick)
            on_progress(progress.record(time.monotonic()))

        return _slice(run, phase, 0, interrupted=interrupted, on_tick=on_tick)
    return _run_workers(run, phase, interrupted=interrupted, progress=progress, on_progress=on_progress)


def _run_workers(run: _Run, phase: _Phase, *, interrupted: Callable[[], bool], progress: _Progress,
                 on_progress: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """--workers N: N forked processes, each with its own engine (and, after the fork, its own
    cookie prefix: net/channel.py renews it), each making every Nth call; their ticks feed the
    progress, their results are merged. Interrupted here, they are told to stop (a terminal's
    Ctrl-C reaches them too) and each deletes its own sessions."""
    import multiprocessing  # noqa: PLC0415
    from multiprocessing.connection import wait  # noqa: PLC0415

    context = multiprocessing.get_context("fork")
    stop = context.Event()
    processes, readers = [], {}
    for worker in range(run.settings.workers):
        reader, writer = context.Pipe(duplex=False)
        process = context.Process(target=_worker_main, args=(writer, run, phase, worker, stop),
                                  name=f"rtppctl-load-{worker}", daemon=True)
        process.start()
        writer.close()
        processes.append(process)
        readers[reader] = worker
    results: dict[int, dict[str, Any]] = {}
    errors: dict[int, str] = {}
    tick_s = run.settings.interval_s
    next_tick = time.monotonic() + tick_s
    while readers:
        for reader in wait(list(readers), timeout=min(0.05, max(0.0, next_tick - time.monotonic()))):
            worker = readers[reader]
            try:
                kind, payload = reader.recv()
            except (EOFError, OSError):
                errors.setdefault(worker, "ended without a result")
                del readers[reader]
                reader.close()
                continue
            if kind == "tick":
                progress.add(worker, payload)
            elif kind == "result":
                results[worker] = payload
                del readers[reader]
                reader.close()
            else:
                errors[worker] = payload
                del readers[reader]
                reader.close()
        if not stop.is_set() and interrupted():
            stop.set()
        now = time.monotonic()
        if now >= next_tick:
            on_progress(progress.record(now))
            next_tick = now + tick_s
    for process in processes:
        process.join(5.0)
        if process.is_alive():
            process.kill()
            process.join(1.0)
    merged = _merge([results[w] for w in sorted(results)]) if results else _merge([])
    if errors:
        merged["worker_errors"] = [
            f"worker {w} {why} (exit code {processes[w].exitcode}): its sessions (Call-IDs load-{run.settings.seed}-N-... "
            f"with N % {run.settings.workers} == {w}) may remain" for w, why in sorted(errors.items())]
    merged["interrupted"] = merged.get("interrupted", False) or stop.is_set()
    return merged


def _worker_main(writer: Any, run: _Run, phase: _Phase, worker: int, stop: Any) -> None:
    """A forked worker: its own signal counting (Ctrl-C on a terminal reaches the whole process
    group), its slice, its result sent to the parent."""
    from rtppctl.ops.interrupts import Interrupts  # noqa: PLC0415

    try:
        with Interrupts() as caught:
            result = _slice(run, phase, worker, interrupted=lambda: caught.signals > 0 or stop.is_set(),
                            on_tick=lambda tick: writer.send(("tick", tick)))
        writer.send(("result", result))
    except BaseException as exc:  # noqa: BLE001 - the parent names it; the process ends either way
        try:
            writer.send(("error", f"failed: {type(exc).__name__}: {exc}"))
        except (OSError, ValueError):
            pass
    finally:
        writer.close()


# -- the report ------------------------------------------------------------------------------------


@dataclass
class CommandReport:
    """One command of the calls (U offer, L answer, D delete): what was sent and how it went."""

    command: str
    name: str
    #: Requests sent (a failed-over offer counts once per relay tried).
    sent: int
    #: Requests answered (E<n> replies included).
    replies: int
    #: E<n> replies by "E<n>" (E50 to a D is not one: the session was gone, as wanted).
    errors: dict[str, int]
    #: Requests with no usable reply: none in time (after every resend), refused/reset, unreadable.
    timeouts: int
    unreachable: int
    malformed: int
    #: Datagram resends (same cookie).
    retransmits: int
    #: p50, p90, p99, p99.9, max in ms from each request's scheduled time; None without replies.
    latency_ms: dict[str, float] | None


@dataclass
class NodeReport:
    """One relay's part of the run: its share of calls against its weight, its failure, its
    limits, and the relay's own command counters against the client's."""

    node: str
    set_id: int | None
    weight: int
    #: Selectable at the start (state store); a node that is not gets no call.
    enabled: bool
    #: weight / the enabled nodes' weights: the share the module's choice promises.
    expected_share: float
    #: Calls the module's choice sent here first, and their share of all calls chosen.
    calls: int
    share: float
    #: Calls whose session lived here (their offer answered here, after failover too).
    carried: int
    #: Of `calls`, moved to the next node by --failover; not sent (it had failed, no --failover).
    failed_over: int
    not_sent: int
    #: The most sessions held here at once (with --workers: the sum of each worker's most).
    sessions_peak: int
    #: Why it failed during the run (or at its probe), in words; None when it did not.
    failure: str | None
    #: The limits it reached, in words (E71, E72, E98, E99), with the sessions held at the first.
    limits: list[str]
    capabilities: list[str] | None
    #: What rtppctl sent and got: requests ended, answered, answered E<n>, failed; resends.
    client: dict[str, int]
    #: The relay's own counters (G) before and after the run, and between them without the two
    #: reads' own commands (ncmds_rcvd and ncmds_succd count one G each); None when unread.
    relay_before: dict[str, int] | None
    relay_after: dict[str, int] | None
    relay_during: dict[str, int] | None
    #: Sessions here whose delete could not be confirmed.
    sessions_left: int


@dataclass
class StepReport:
    """One step of --find-max."""

    step: int
    rate: float
    calls_started: int
    calls_failed: int
    calls_missed: int
    calls_per_s: float
    #: The worst command's p99 in the step, ms; None without replies.
    p99_ms: float | None
    errors_pct: float
    passed: bool
    #: Why it failed, in words; None when it passed.
    reason: str | None


@dataclass
class FindMaxReport:
    max_p99_ms: float
    max_errors_pct: float
    start_rate: float
    step: float
    step_s: float
    #: The highest rate whose step passed; None when even the first failed.
    knee_rate: float | None
    steps: list[StepReport]
    #: Every step passed: the limit lies above the last rate tried.
    limit_not_reached: bool


@dataclass(kw_only=True)
class LoadReport:
    """The whole run: `load --json`'s summary object (the README lists the keys)."""

    type: str = "summary"
    ok: bool
    verdict: str
    seed: int
    set_id: int | None
    flags: str
    calls: int | None
    duration_s: float | None
    rate: float | None
    hold_s: float
    window: int
    workers: int
    failover: bool
    elapsed_s: float
    calls_started: int
    calls_setup: int
    calls_completed: int
    calls_failed: int
    calls_missed: int
    #: Calls set up (offer and answer answered) per second, first call to last answer.
    calls_per_s: float
    #: Calls completed (offer, answer and delete) per second over the whole run.
    cycles_per_s: float
    sessions_peak: int
    retransmits: int
    commands: list[CommandReport]
    #: What went wrong, by kind: "E<n>", "timeout", "unreachable", "malformed", "no session",
    #: "not sent", "no relay", "missed".
    errors: dict[str, int]
    nodes: list[NodeReport]
    #: Limits reached and relays that failed, in words, one per relay and kind.
    limits: list[str]
    #: Sessions whose delete could not be confirmed (at most MAX_NAMED_SESSIONS), and how many.
    sessions_left: list[dict[str, str]]
    sessions_left_count: int
    notes: list[str]
    find_max: FindMaxReport | None
    interrupted: bool


def _command_reports(merged: dict[str, Any]) -> list[CommandReport]:
    reports = []
    for letter, name in COMMANDS:
        stats = merged["commands"].get(letter)
        if stats is None:
            reports.append(CommandReport(letter, name, 0, 0, {}, 0, 0, 0, 0, None))
            continue
        histogram = stats["histogram"]
        if isinstance(histogram, bytes):
            histogram = _add_histogram(None, histogram)
        reports.append(CommandReport(
            letter, name, stats["sent"], stats["replies"],
            {f"E{code}": count for code, count in sorted(stats["errors"].items())},
            stats["timeouts"], stats["unreachable"], stats["malformed"], stats["retransmits"],
            latency_summary(histogram)))
    return reports


def _errors(merged: dict[str, Any], commands: list[CommandReport]) -> dict[str, int]:
    errors: dict[str, int] = {}
    for report in commands:
        _add_counts(errors, report.errors)
        for key in ("timeouts", "unreachable", "malformed"):
            value = getattr(report, key)
            if value:
                name = {"timeouts": "timeout"}.get(key, key)
                errors[name] = errors.get(name, 0) + value
    _add_counts(errors, merged["call_failures"])
    if merged.get("missed"):
        errors["missed"] = merged["missed"]
    return errors


def _worst_p99(commands: list[CommandReport]) -> float | None:
    values = [c.latency_ms["p99"] for c in commands if c.latency_ms is not None]
    return max(values) if values else None


def _during(before: dict[str, int] | None, after: dict[str, int] | None) -> dict[str, int] | None:
    if before is None or after is None:
        return None
    own = {"ncmds_rcvd": 1, "ncmds_succd": 1}  # the second G is received, the first one succeeded
    return {name: int(after[name]) - int(before[name]) - own.get(name, 0) for name in RELAY_COUNTERS}


def _node_reports(run: _Run, merged: dict[str, Any], before: list, after: list) -> list[NodeReport]:
    enabled_weight = sum(node.weight for node in run.nodes if node.enabled)
    chosen_total = sum(node["chosen"] for node in merged["nodes"]) or 0
    reports = []
    for node, counts, read_before, read_after in zip(run.nodes, merged["nodes"], before, after, strict=True):
        limits = [f"{LIMIT_WORDS[code]}; {held} session{'' if held == 1 else 's'} held here when it first did"
                  for code, held in sorted(counts["refusals"].items())]
        reports.append(NodeReport(
            node=node.spec.url, set_id=node.set_id, weight=node.weight, enabled=node.enabled,
            expected_share=round(node.weight / enabled_weight, 4) if node.enabled and enabled_weight else 0.0,
            calls=counts["chosen"], share=round(counts["chosen"] / chosen_total, 4) if chosen_total else 0.0,
            carried=counts["carried"], failed_over=counts["moved"], not_sent=counts["not_sent"],
            sessions_peak=counts["peak"], failure=counts["failure"], limits=limits,
            capabilities=sorted(node.capabilities) if node.capabilities is not None else None,
            client={"requests": counts["replies_ok"] + counts["replies_error"] + counts["failures"],
                    "replies": counts["replies_ok"] + counts["replies_error"],
                    "error_replies": counts["replies_error"], "failures": counts["failures"],
                    "retransmits": counts["retransmits"]},
            relay_before=read_before, relay_after=read_after, relay_during=_during(read_before, read_after),
            sessions_left=len(counts["left"]),
        ))
    return reports


def _empty_slice(nodes: Sequence[LoadNode]) -> dict[str, Any]:
    return {"commands": {}, "nodes": [{"chosen": 0, "carried": 0, "moved": 0, "not_sent": 0, "replies_ok": 0, "replies_error": 0, "failures": 0, "retransmits": 0,
                                       "peak": 0, "refusals": {}, "errors": {},
                                       "failure": node.failure, "failed_at": None, "left": []} for node in nodes],
            "started": 0, "setup": 0, "completed": 0, "failed": 0, "missed": 0, "call_failures": {},
            "first_scheduled": None, "last_done": None, "last_setup": None, "peak_sessions": 0,
            "interrupted": False}


# -- the run ---------------------------------------------------------------------------------------


def run_load(service: RelayService, members: Sequence[Member], settings: LoadSettings, *,
             interrupted: Callable[[], bool] = lambda: False,
             on_progress: Callable[[dict[str, Any]], None] = lambda record: None) -> LoadReport:
    """Make the calls `settings` ask for over `members` (a set's nodes in order, or targets), and
    report. Every local check comes first; every session made is deleted (or named) before this
    returns, also when `interrupted()` turns true (then the report says so)."""
    from rtppctl.proto.flags import parse_flags  # noqa: PLC0415

    if not members:
        raise InputError("no relay to load")
    flags = parse_flags(settings.flags)
    families = {media_family(member.node) for member in members}
    longest = call_identity(settings.seed, _last_number(settings))
    for family in sorted(families):
        CallTemplate(flags, frozenset(), family, notify_socket=settings.notify_socket).check(*longest)
    enabled = [member.set_id is None or service.node_info(member).health.selectable for member in members]
    if not any(enabled):
        set_id = members[0].set_id
        raise TransportError(f"no relay of set {set_id} is enabled: load never sends calls to a disabled relay",
                             "see rtppctl show; rtppctl enable URL 1 puts a relay back")

    started = time.monotonic()
    found = _probe(service, [m for m, on in zip(members, enabled, strict=True) if on])
    nodes, templates, notes = [], [], []
    plans: dict[tuple[frozenset[str], str], CallTemplate] = {}
    for index, (member, on) in enumerate(zip(members, enabled, strict=True)):
        capabilities, before, failure = found.get(member.node.url, (None, None, None)) if on else (None, None, None)
        nodes.append(LoadNode(index, member.node, member.set_id, member.node.weight, on,
                              frozenset(capabilities) if capabilities is not None else None, failure))
        template = None
        if capabilities is not None:
            key = (frozenset(capabilities), media_family(member.node))
            template = plans.get(key)
            if template is None:
                template = plans[key] = CallTemplate(flags, key[0], key[1], notify_socket=settings.notify_socket)
            for warning in template.warnings:
                note = f"{member.node.url}: {warning}"
                if note not in notes:
                    notes.append(note)
        templates.append(template)
    if any(t is not None and t.per_call for t in templates):
        notes.append("flags n and d put tags derived from the Call-ID into the commands: each call is planned on "
                     "its own (slower than the template the other flags allow)")
    run = _Run(service, settings, nodes, templates)
    before = [found.get(node.spec.url, (None, None, None))[1] if node.enabled else None for node in nodes]

    steps: list[StepReport] = []
    results: list[dict[str, Any]] = []
    totals: dict[str, int] = {}
    knee: float | None = None
    if settings.find_max is None:
        phase = _phase(settings, first=0, rate=settings.rate, duration=settings.duration_s,
                       calls=settings.calls, lead=_lead(settings))
        progress = _Progress(started, _planned(settings.calls, settings.rate, settings.duration_s), phase, totals)
        results.append(_run_phase(run, phase, interrupted=interrupted, progress=progress, on_progress=on_progress))
    else:
        knee = _find_max(run, settings.find_max, started, interrupted, on_progress, results, steps)
    merged = _merge(results) if results else _empty_slice(nodes)
    after = _read_counters(service, [node for node in nodes if before[node.index] is not None], len(nodes))
    elapsed = time.monotonic() - started
    return _report(run, merged, before, after, elapsed, notes, steps, knee)


def _last_number(settings: LoadSettings) -> int:
    """The largest call number this run could reach (its Call-ID is the longest)."""
    if settings.find_max is not None:
        fm = settings.find_max
        rate = fm.start_rate + fm.step * (fm.steps - 1)
        return int(math.ceil(rate * fm.step_s)) * fm.steps
    if settings.calls is not None:
        return settings.calls
    if settings.rate is not None and settings.duration_s is not None:
        return int(math.ceil(settings.rate * settings.duration_s))
    return MAX_CALLS


def _lead(settings: LoadSettings) -> float:
    # Forked workers need a moment to start: an open loop's zero is put that far ahead, so the
    # fork is not measured as the first calls' latency.
    return 0.1 if settings.workers > 1 else 0.0


def _phase(settings: LoadSettings, *, first: int, rate: float | None, duration: float | None, calls: int | None,
           lead: float, step: int | None = None) -> _Phase:
    limit = MAX_CALLS
    if calls is not None:
        limit = calls
    if rate is not None and duration is not None:
        limit = min(limit, int(math.ceil(rate * duration - 1e-9)))
    start = time.monotonic() + lead
    return _Phase(first, first + limit, start, start + duration if duration is not None else None, rate, step)


def _planned(calls: int | None, rate: float | None, duration: float | None) -> int | None:
    if rate is not None and duration is not None:
        return min(calls, int(math.ceil(rate * duration - 1e-9))) if calls is not None else int(
            math.ceil(rate * duration - 1e-9))
    return calls if duration is None else None


def _find_max(run: _Run, fm: FindMax, started: float, interrupted: Callable[[], bool],
              on_progress: Callable[[dict[str, Any]], None], results: list[dict[str, Any]],
              steps: list[StepReport]) -> float | None:
    """Steps at start_rate, +step, ... for step_s seconds each, until one fails (its worst
    command's p99 over max_p99_ms, or its failed and missed calls over max_errors_pct of those it
    started), a relay fails, the run is interrupted, or `steps` steps passed."""
    knee = None
    first = 0
    totals: dict[str, int] = {}
    for number in range(1, fm.steps + 1):
        rate = fm.start_rate + fm.step * (number - 1)
        phase = _phase(run.settings, first=first, rate=rate, duration=fm.step_s, calls=None,
                       lead=_lead(run.settings), step=number)
        progress = _Progress(started, phase.limit - phase.first, phase, totals)
        result = _run_phase(run, phase, interrupted=interrupted, progress=progress, on_progress=on_progress)
        results.append(result)
        for key, name in (("started", "started"), ("setup", "setup"), ("completed", "completed"),
                          ("failed", "failed")):
            totals[name] = totals.get(name, 0) + result[key]
        step = _judge_step(number, rate, result, fm, run.nodes)
        steps.append(step)
        first = phase.limit
        if not step.passed or result["interrupted"]:
            break
        knee = rate
    return knee


def _judge_step(number: int, rate: float, result: dict[str, Any], fm: FindMax, nodes: Sequence[LoadNode]) -> StepReport:
    commands = _command_reports(result)
    p99 = _worst_p99(commands)
    attempted = result["started"] + result["missed"]
    bad = result["failed"] + result["missed"]
    errors_pct = round(100.0 * bad / attempted, 3) if attempted else 0.0
    span = (result["last_setup"] - result["first_scheduled"]) if result["last_setup"] and result["first_scheduled"] else 0
    per_s = round(result["setup"] / span, 1) if span > 0 else 0.0
    failed_nodes = [n["failure"] for n, node in zip(result["nodes"], nodes, strict=True)
                    if n["failure"] is not None and node.failure is None]
    reason = None
    if result["interrupted"]:
        reason = "interrupted"
    elif failed_nodes:
        reason = f"a relay failed: {failed_nodes[0]}"
    elif p99 is None:
        reason = "no reply at all"
    elif p99 > fm.max_p99_ms:
        reason = f"p99 {p99:g} ms is over --max-p99 {fm.max_p99_ms:g} ms"
    elif errors_pct > fm.max_errors_pct:
        reason = f"{errors_pct:g}% of calls failed, over --max-errors {fm.max_errors_pct:g}%"
    return StepReport(number, rate, result["started"], result["failed"], result["missed"], per_s, p99, errors_pct,
                      reason is None, reason)


def _probe(service: RelayService, members: Sequence[Member]) -> dict[str, tuple]:
    """The module's probe and the command counters of every node at once, over clients of their
    own (no health event): url -> (capabilities, counters, failure words)."""
    from rtppctl.net.probe import module_probe, probe_nodes  # noqa: PLC0415

    def work(client: RelayClient) -> tuple[tuple[str, ...], dict[str, int] | None]:
        found = module_probe(client)
        return found.capabilities, _counters(client)

    unique = list({member.node.url: member.node for member in members}.values())
    found = {}
    for result in probe_nodes(unique, work, connect=service.own_client):
        if result.ok and result.answer is not None:
            found[result.node.url] = (result.answer[0], result.answer[1], None)
        else:
            message = result.error.message if result.error is not None else "no answer"
            found[result.node.url] = (None, None, f"did not answer the probe: {message}")
    return found


def _counters(client: RelayClient) -> dict[str, int] | None:
    """G of the command counters (None when the relay does not know them)."""
    try:
        values = cmd.parse_stats(client.call(cmd.get_stats(RELAY_COUNTERS)), RELAY_COUNTERS)
    except ProxyError:
        return None
    return {name: int(value) for name, value in values.items()}


def _read_counters(service: RelayService, nodes: Sequence[LoadNode], count: int) -> list[dict[str, int] | None]:
    from rtppctl.net.probe import probe_nodes  # noqa: PLC0415

    after: list[dict[str, int] | None] = [None] * count
    unique = list({node.spec.url: node.spec for node in nodes}.values())
    by_url = {result.node.url: result.answer for result in probe_nodes(unique, _counters, connect=service.own_client)}
    for node in nodes:
        after[node.index] = by_url.get(node.spec.url)
    return after


def _report(run: _Run, merged: dict[str, Any], before: list, after: list, elapsed: float, notes: list[str],
            steps: list[StepReport], knee: float | None) -> LoadReport:
    settings = run.settings
    commands = _command_reports(merged)
    nodes = _node_reports(run, merged, before, after)
    errors = _errors(merged, commands)
    limits = []
    for node, report in zip(run.nodes, nodes, strict=True):
        if report.failure is not None:
            limits.append(f"{node.spec.url} {report.failure}")
        limits.extend(f"{node.spec.url}: {words}" for words in report.limits)
    left = []
    count = 0
    for node, counts in zip(run.nodes, merged["nodes"], strict=True):
        for call_id, from_tag, to_tag in counts["left"]:
            count += 1
            if len(left) < MAX_NAMED_SESSIONS:
                left.append({"node": node.spec.url, "call_id": call_id, "from_tag": from_tag, "to_tag": to_tag})
    notes = [*notes, *merged.get("worker_errors", ())]
    if merged["missed"] and settings.find_max is None:
        notes.append(f"{merged['missed']} calls due during --duration were never started: {settings.rate:g} calls/s "
                     "was more than the window let through (the relays or this client could not keep up)")
    span = (merged["last_setup"] - merged["first_scheduled"]) if merged["last_setup"] and merged["first_scheduled"] else 0
    calls_per_s = round(merged["setup"] / span, 1) if span > 0 else 0.0
    cycles_per_s = round(merged["completed"] / elapsed, 1) if elapsed > 0 else 0.0
    failed_nodes = [n for n in nodes if n.failure is not None]
    find_max = None
    if settings.find_max is not None:
        fm = settings.find_max
        find_max = FindMaxReport(fm.max_p99_ms, fm.max_errors_pct, fm.start_rate, fm.step, fm.step_s, knee, steps,
                                 bool(steps) and all(s.passed for s in steps) and len(steps) == fm.steps)
        ok = knee is not None and not count and not merged.get("worker_errors")
    else:
        ok = (not merged["failed"] and not merged["missed"] and not failed_nodes and not count
              and not merged.get("worker_errors") and merged["started"] > 0)
    return LoadReport(
        ok=ok, verdict=_verdict(merged, calls_per_s, count, failed_nodes, find_max, settings),
        seed=settings.seed, set_id=run.nodes[0].set_id if run.nodes else None, flags=settings.flags,
        calls=settings.calls if settings.find_max is None else None,
        duration_s=settings.duration_s if settings.find_max is None else None,
        rate=settings.rate if settings.find_max is None else None, hold_s=settings.hold_s,
        window=settings.window, workers=settings.workers, failover=settings.failover, elapsed_s=round(elapsed, 3),
        calls_started=merged["started"], calls_setup=merged["setup"], calls_completed=merged["completed"],
        calls_failed=merged["failed"], calls_missed=merged["missed"], calls_per_s=calls_per_s,
        cycles_per_s=cycles_per_s, sessions_peak=merged["peak_sessions"],
        retransmits=sum(c.retransmits for c in commands), commands=commands, errors=errors, nodes=nodes,
        limits=limits, sessions_left=left, sessions_left_count=count, notes=notes, find_max=find_max,
        interrupted=bool(merged["interrupted"]),
    )


def _verdict(merged: dict[str, Any], calls_per_s: float, left: int, failed_nodes: list[NodeReport],
             find_max: FindMaxReport | None, settings: LoadSettings) -> str:
    words = [f"{merged['started']} calls: {merged['completed']} completed, {merged['failed']} failed"]
    if merged["missed"]:
        words.append(f"{merged['missed']} missed")
    words.append(f"{calls_per_s:g} calls/s")
    if failed_nodes:
        words.append(f"{len(failed_nodes)} relay{'s' if len(failed_nodes) != 1 else ''} failed")
    if left:
        words.append(f"{left} session{'s' if left != 1 else ''} may remain")
    text = "; ".join(words)
    if find_max is not None:
        if find_max.knee_rate is None:
            head = "no step passed: even the first rate was too much"
        elif find_max.limit_not_reached:
            head = f"every step passed, up to {find_max.knee_rate:g} calls/s: the limit lies higher"
        else:
            head = f"highest rate that passed: {find_max.knee_rate:g} calls/s"
        text = f"{head} ({text})"
    return f"{text}; seed {settings.seed}"


__all__ = [
    "COMMANDS", "CallTemplate", "CommandReport", "FindMax", "FindMaxReport", "LoadNode", "LoadReport", "LoadSettings",
    "NodeReport", "Scheduler", "StepReport", "call_identity", "latency_summary", "new_seed", "party_sdp",
    "run_load", "transport_kind",
]
