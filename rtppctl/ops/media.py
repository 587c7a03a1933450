"""The module's media functions as operations: play and stop a prompt, record and copy, statistics.

rtpproxy_stream2uac/uas, rtpproxy_stop_stream2uac/uas, rtpproxy_start_recording, rtpproxy_stats
and rtpproxy_all_stats (docs/protocol.md §6-§8, §17), each on a `Call` (`ops.find_call`: who is who,
and the relay that holds the call, the ledger's node, else the hash's; never moved elsewhere), and
each marking the call used in the ledger before it is sent. Who "uac" is follows the module as
checked against a running OpenSIPS: the party that sent the request (the message's From party),
so from a callee's BYE the tags swap; without a message, the creator of the call's session.
Playing names the uac or uas as the module does (no swap for a reply); recording, copying and
statistics start with the party that sent the message, as the module's do (a reply's sender is
the uas). Recordings are named after the session's creator, whoever is recorded
(`proto.recording`). `watch_stats` reads the statistics again and again, with the rates between
readings. A reply these commands do not expect is a `MalformedReply`; every `E<n>` the relay gives
for them is explained in plain words with what to do.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rtppctl.ops.offer_answer import PARTIES, Call
from rtppctl.proto import command as cmd
from rtppctl.proto import recording
from rtppctl.proto.errors import InputError, ProxyError

if TYPE_CHECKING:
    from rtppctl.relays.service import Member, RelayService

#: The packet counts of a StatsResult, the ones `--watch` gives rates for.
RATE_FIELDS = ("up", "down", "relayed", "dropped")


def _party(call: Call, party: str | None) -> str:
    """`party`, or the party that sent the message when None; InputError for any other word."""
    if party is None:
        return call.sender
    if party not in PARTIES:
        raise InputError(f"{party!r} is no party of a call", "give uac or uas")
    return party


def _other(party: str) -> str:
    return "uas" if party == "uac" else "uac"


def _explain(err: ProxyError, what: str, hints: dict[int, tuple[str, str]]) -> ProxyError:
    """`err` with its meaning for this command in plain words, and what to do."""
    if err.code in hints:
        extra, hint = hints[err.code]
        err.message = f"{err.message}: {extra}"
        err.hint = hint
    elif err.code == cmd.SESSION_NOT_FOUND:
        err.message = f"{err.message}: the relay has no session for this call and these tags"
        err.hint = f"check --call-id and the tags (rtppctl sessions), or the call has ended; {what} needs a live session"
    return err


def _send(service: RelayService, member: Member, line: str, letter: str) -> str:
    return service.attempt(member, lambda client: client.call(line), letter=letter)


def _result(service: RelayService, member: Member, line: str, letter: str) -> str:
    """Send a command that answers 0 (P, S, R): any other reply is a MalformedReply, E<n> a ProxyError."""
    reply = _send(service, member, line, letter)
    cmd.parse_result(reply)
    return reply


def _node(call: Call) -> Member:
    """The node holding the call, the call marked used first: a command that reaches a relay is a
    use of the call, and a state store that cannot mark it stops the command before it is sent."""
    member = call.member()
    call.used()
    return member


# -- play -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlayResult:
    node: str
    call_id: str
    #: "uac" or "uas": the party that hears the prompt.
    to: str
    prompt: str
    count: int
    codecs: str
    command: str
    #: The files the relay opens, first found wins: "<prompt>.<pt>".
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def play(call: Call, prompt: str, *, to: str = "uac", count: int = 1, codecs: str = "session") -> PlayResult:
    """rtpproxy_stream2uac/uas: `P<count>` to the party `to` on stream 1; count -1 loops until
    stop_play, 0 only stops what plays. As in the module, the uac is the message's From party
    whether the message is a request or a reply."""
    first, second = call.tags_to(_party(call, to))
    line = cmd.play(call.call_id, prompt, first, second, medianum=1, codecs=codecs, count=count)
    if codecs == "session":
        known = call.entry.streams[0].codecs if call.entry is not None and call.entry.streams else ()
    else:
        known = tuple(int(c) for c in codecs.split(","))
    files = [f"{prompt}.{pt}" for pt in known]
    notes = []
    if not prompt.startswith("/"):
        notes.append(f"{prompt!r} is relative: the relay opens it in its own working directory")
    service = call.route.service
    member = _node(call)
    try:
        _result(service, member, line, "P")
    except ProxyError as err:
        looked = ", ".join(files) if files else f"{prompt}.<pt> for each codec of the stream"
        raise _explain(err, "play", {
            60: (f"no prompt file for the call's codecs: the relay looked for {looked}",
                 "encode one with rtppctl prompt encode IN.wav PROMPT (it writes PROMPT.0 and PROMPT.8), where "
                 "the relay can read it (an absolute path is safest)"),
            35: ("the stream has no codec list for 'session'",
                 "give --codecs 0,8, or offer the call through a relay with the CODECS capability"),
            17: ("the play count is not one the relay takes", "use --count N (N >= 1), or -1 to loop"),
        }) from None
    return PlayResult(member.node.url, call.call_id, to, prompt, count, codecs, line, files, notes)


@dataclass(frozen=True)
class CommandResult:
    """A command that answers 0, and where it went."""

    node: str
    call_id: str
    commands: list[str]
    replies: list[str]


def stop_play(call: Call, *, to: str = "uac") -> CommandResult:
    """rtpproxy_stop_stream2uac/uas: `S` with the tags of `to` first."""
    first, second = call.tags_to(_party(call, to))
    line = cmd.stop_play(call.call_id, first, second, medianum=1)
    service = call.route.service
    member = _node(call)
    try:
        reply = _result(service, member, line, "S")
    except ProxyError as err:
        raise _explain(err, "stop-play", {}) from None
    return CommandResult(member.node.url, call.call_id, [line], [reply])


# -- record -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordResult:
    node: str
    call_id: str
    commands: list[str]
    replies: list[str]
    #: What each command records, in words ("the uac's media (tag 'ft')"), in the commands' order.
    directions: list[str]
    #: The files the relay writes, relative to its record directory (-r), one per command in their
    #: order (or the one pcap file of --single-file on a relay run with -P), when they can be told.
    files: list[str]
    notes: list[str] = field(default_factory=list)
    #: The relay's record directory, when rtppctl knows it (the embedded relay); else None.
    record_dir: str | None = None


def _embedded_switches(url: str) -> list[str] | None:
    """The engine switches of the embedded relay when `url` is its control socket, else None:
    the one relay whose -r and -P rtppctl knows."""
    from rtppctl import embedded  # noqa: PLC0415
    from rtppctl.proto.errors import RtppctlError  # noqa: PLC0415

    try:
        status = embedded.status()
    except (RtppctlError, OSError):
        return None
    return list(status.engine_args) if status.running and url in status.control else None


def _switch(switches: list[str] | None, name: str) -> str | None:
    if not switches or name not in switches:
        return None
    index = switches.index(name)
    return switches[index + 1] if index + 1 < len(switches) else ""


def _media_of(call: Call, party: str) -> str:
    return f"the {party}'s media (tag {call.tag_of(party)!r})"


def _creator(call: Call, member: Member) -> str | None:
    """The tag of the party whose offer created the call's session: the ledger's, else the
    relay's answer to `cmd.creator_query` for each party; None when the relay says neither (no
    stream 1)."""
    if call.creator_tag is not None:
        return call.creator_tag
    for tag in (call.uac_tag, call.uas_tag):
        if tag:
            try:
                _send(call.route.service, member, cmd.creator_query(call.call_id, tag), "Q")
            except ProxyError as err:
                if err.code != cmd.SESSION_NOT_FOUND:
                    raise
                continue
            return tag
    return None


def record(call: Call, *, both: bool = True, single_file: bool = False, party: str | None = None,
           warn: Callable[[str], None] | None = None) -> RecordResult:
    """rtpproxy_start_recording without a destination: one `R` records the first-tag party only
    (§7, §15), so rtppctl sends one per direction, the party that sent the message first, unless
    `both` is False (then the party `party`, by default the sender, as the module does).

    The files are named after the session's creator, whoever is recorded (`proto.recording`)."""
    if both:
        parties = [call.sender] + ([_other(call.sender)] if call.uas_tag else [])
    else:
        parties = [_party(call, party)]
    orders = [(name, call.tags_to(name)) for name in parties]
    lines = [cmd.record(call.call_id, first, second, single_file=single_file) for _, (first, second) in orders]
    service = call.route.service
    member = call.member()
    switches = _embedded_switches(member.node.url)
    if single_file and _switch(switches, "-P") is None and warn is not None:
        # Said before anything is sent: the relay would accept `Rs` and quietly ignore the `s`.
        warn("--single-file works only when the relay runs with -P (pcap); without it the relay accepts it and "
             "writes one file per direction" + ("" if switches is None else " (the embedded relay runs without -P)"))
    call.used()
    replies = []
    for line in lines:
        try:
            replies.append(_result(service, member, line, "R"))
        except ProxyError as err:
            raise _explain(err, "record", {}) from None
    notes = []
    if both and not call.uas_tag:
        notes.append(f"the call has no To tag yet: only {_media_of(call, call.sender)} is recorded")
    creator = _creator(call, member)
    files = []
    if creator is None:
        notes.append(f"the relay did not say whose offer created the session: it names the files "
                     f"{recording.recording_name(call.call_id, 'TAG', 'TAG')} and .a.rtp after that party's tag")
    elif single_file and _switch(switches, "-P") is not None:
        files = [recording.pcap_name(call.call_id, creator)]  # both directions in one file (handle_copy shares it)
    else:
        files = [recording.recording_name(call.call_id, creator, first) for _, (first, _) in orders]
    return RecordResult(member.node.url, call.call_id, lines, replies, [_media_of(call, name) for name, _ in orders],
                        files, notes, _switch(switches, "-r"))


def copy(call: Call, destination: str, *, stream: int = 1, party: str | None = None) -> RecordResult:
    """rtpproxy_start_recording with a destination: `C` copies the first-tag party's packets of
    stream `stream` (`party`, by default the party that sent the message, as the module does) to
    `udp:IPv4:PORT` (from a fresh relay port) or to the file `<dest>.rtp` in the record dir. The
    destination is checked before anything is sent (`cmd.validate_copy_target`): a port or host
    the relay cannot use, or a name that would leave its record dir, is refused."""
    who = _party(call, party)
    first, second = call.tags_to(who)
    line = cmd.copy(call.call_id, destination, first, second, medianum=stream)
    member = _node(call)
    try:
        reply = _send(call.route.service, member, line, "C")
        cmd.parse_copy_reply(reply)
    except ProxyError as err:
        raise _explain(err, "copy", {65: ("the relay could not start the copy",
                                          "check the destination: a udp:IP:PORT it can reach, or a name it can write in its record dir")}) from None
    sent = cmd.validate_copy_target(destination)
    files = [] if cmd.is_remote_copy_target(sent) else [recording.copy_name(sent)]
    return RecordResult(member.node.url, call.call_id, [line], [reply], [f"{_media_of(call, who)} of stream {stream}"],
                        files)


@dataclass(frozen=True)
class StopRecordResult:
    """`N` for each direction, and whether anything was recording."""

    node: str
    call_id: str
    commands: list[str]
    replies: list[str]
    #: False when the relay has the call but was recording or copying none of it.
    was_recording: bool = True


def stop_record(call: Call) -> StopRecordResult:
    """`N` for both tag orders (a recording per direction); a direction that was not recording
    (E50 on the second) is not an error.

    The relay answers E50 both for a call it does not have and for a call with nothing to stop
    (handle_norecord in src/commands/rpcpv1_norecord.c counts the streams it stopped); when both
    directions say E50, a `Q` tells the two apart: a call that is there but not being recorded is
    not an error (was_recording False), a call that is not there is E50."""
    orders = [call.tags_to(call.sender)] + ([call.tags_to(_other(call.sender))] if call.uas_tag else [])
    service = call.route.service
    member = _node(call)
    lines, replies = [], []
    for first, second in orders:
        line = cmd.stop_record(call.call_id, first, second)
        reply = service.attempt(member, lambda client, line=line: client.exchange(line).reply, letter="N")
        lines.append(line)
        replies.append(reply)
    codes = [cmd.error_code(reply) for reply in replies]
    if all(code is not None for code in codes):
        code = codes[0] or 0
        if code != cmd.SESSION_NOT_FOUND or not _has_session(member, call):
            raise _explain(ProxyError(code, command=lines[0], node=member.node.url), "stop-record", {})
        return StopRecordResult(member.node.url, call.call_id, lines, replies, was_recording=False)
    return StopRecordResult(member.node.url, call.call_id, lines, replies)


def _has_session(member: Member, call: Call) -> bool:
    """Does the relay hold stream 1 of this call? `Q` changes nothing on the relay."""
    first, second = call.tags_to("uac")
    line = cmd.query(call.call_id, first, second, medianum=1)
    try:
        _send(call.route.service, member, line, "Q")
    except ProxyError:
        return False
    return True


# -- statistics -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatsResult:
    node: str
    call_id: str
    stream: int
    #: The party whose packets "up" counts: "uac" or "uas" (by default the party that sent the message).
    up_is: str
    up: int
    down: int
    relayed: int
    dropped: int
    ttl: int
    #: With --all: every counter of §6.2 and those of QUERY_FLOAT_COUNTERS the relay has.
    counters: dict[str, int | float] = field(default_factory=dict)


def stats(call: Call, *, stream: int = 1, all_counters: bool = False, party: str | None = None) -> StatsResult:
    """rtpproxy_stats (and rtpproxy_all_stats): `Q` with the tags of `party` first (by default
    the party that sent the message, as the module does), so "up" counts the packets that party
    sent (§6.1)."""
    who = _party(call, party)
    first, second = call.tags_to(who)
    service = call.route.service
    member = _node(call)

    def ask(names: tuple[str, ...]) -> dict[str, int | float]:
        line = cmd.query(call.call_id, first, second, names, medianum=stream)
        try:
            return cmd.parse_counters(_send(service, member, line, "Q"), names)
        except ProxyError as err:
            raise _explain(err, "stats", _counter_hints(err, member, call, list(names), stream)) from None

    base = ask(())
    counters: dict[str, int | float] = {}
    if all_counters:
        # Q without names answers the first group (QUERY_DEFAULT_COUNTERS): asked once, not twice.
        counters.update(base)
        for group in cmd.ALL_STATS[1:]:
            counters.update(ask(group))
        # Counters some relays have and others do not (E62): asked one by one, left out when unknown.
        for name in cmd.QUERY_FLOAT_COUNTERS:
            try:
                counters.update(ask((name,)))
            except ProxyError as err:
                if err.code != 62:  # E62: this relay has no such counter
                    raise
    # The decoder gives these as ints (QUERY_INTEGER_COUNTERS), bounded: int() only tells the type checker.
    return StatsResult(member.node.url, call.call_id, stream, who, int(base["npkts_ina"]), int(base["npkts_ino"]),
                       int(base["nrelayed"]), int(base["ndropped"]), int(base["ttl"]), counters)


@dataclass(frozen=True)
class StatsSample:
    """One reading of `watch_stats`: the counters, and their change per second since the last."""

    result: StatsResult
    #: RATE_FIELDS -> packets per second, to one decimal.
    rates: dict[str, float]
    #: When it was read (seconds since the epoch).
    time: float


def watch_stats(call: Call, first: StatsResult, *, interval: float, stream: int = 1, all_counters: bool = False,
                party: str | None = None) -> Iterator[StatsSample]:
    """`stats` read again every `interval` seconds, for ever (the caller stops): each reading with
    the rates since the one before, the first since `first`."""
    previous, then = first, time.monotonic()
    while True:
        time.sleep(interval)
        current, now = stats(call, stream=stream, all_counters=all_counters, party=party), time.monotonic()
        span = max(now - then, 1e-6)
        rates = {key: round((getattr(current, key) - getattr(previous, key)) / span, 1) for key in RATE_FIELDS}
        yield StatsSample(current, rates, time.time())
        previous, then = current, now


@dataclass(frozen=True)
class QueryResult:
    node: str
    call_id: str
    command: str
    counters: dict[str, int | float]


def query(call: Call, counters: list[str], *, stream: int = 1) -> QueryResult:
    """Any `Q` counters by name (the relay answers E62 for a name it does not know), with the tags
    of the party that sent the message first, as rtpproxy_all_stats sends them."""
    first, second = call.tags_to(call.sender)
    line = cmd.query(call.call_id, first, second, counters, medianum=stream)
    member = _node(call)
    try:
        values = cmd.parse_counters(_send(call.route.service, member, line, "Q"), counters)
    except ProxyError as err:
        raise _explain(err, "query", _counter_hints(err, member, call, counters, stream)) from None
    return QueryResult(member.node.url, call.call_id, line, values)


def _counter_hints(err: ProxyError, member: Member, call: Call, counters: list[str],
                   stream: int) -> dict[int, tuple[str, str]]:
    """For `_explain`: E62 with the names of the counters the relay does not know."""
    if err.code != 62:
        return {}
    unknown = _unknown_counters(member, call, counters, stream)
    names = ", ".join(repr(name) for name in unknown) or "one of them"
    return {62: (f"the relay knows no counter named {names}" if len(unknown) < 2 else
                 f"the relay knows no counters named {names}",
                 "ask for counters it has, e.g. npkts_ina npkts_ino nrelayed ndropped rtpa_nlost rtpa_jmax")}


def _unknown_counters(member: Member, call: Call, counters: list[str], stream: int) -> list[str]:
    """The names the relay answers E62 to. Its E62 does not say which name it refused (it logs it,
    src/commands/rpcpv1_query.c), so with several names each is asked alone: Q changes nothing."""
    if len(counters) == 1:
        return list(counters)
    first, second = call.tags_to("uac")
    unknown = []
    for name in dict.fromkeys(counters):
        try:
            _send(call.route.service, member, cmd.query(call.call_id, first, second, [name], medianum=stream), "Q")
        except ProxyError as err:
            if err.code == 62:
                unknown.append(name)
    return unknown
