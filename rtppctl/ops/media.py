"""The module's media functions as operations: play and stop a prompt, record and copy, statistics.

rtpproxy_stream2uac/uas, rtpproxy_stop_stream2uac/uas, rtpproxy_start_recording, rtpproxy_stats
and rtpproxy_all_stats (protocol.md §6-§8, §17), each sent to the relay that holds the call (the
ledger's node, else the hash's; never moved elsewhere). Who "uac" is follows the module as checked
against a running OpenSIPS: the party that sent the SIP message (its From tag), so from a callee's
request the tags swap; without a message, the caller (the From tag of the offer). Every `E<n>` the
relay gives for these commands is explained in plain words with what to do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rtppctl.proto import command as cmd
from rtppctl.proto.errors import InputError, ProxyError

if TYPE_CHECKING:
    from rtppctl.proto.sip import SipMessage
    from rtppctl.relays.service import Member, RelayService

#: Counters of rtpproxy_all_stats (§6.2), in the module's order, asked in two Q commands.
ALL_STATS = (
    ("ttl", "npkts_ina", "npkts_ino", "nrelayed", "ndropped"),
    ("rtpa_nsent", "rtpa_nrcvd", "rtpa_ndups", "rtpa_nlost", "rtpa_perrs"),
)
#: Counters some relays have and others do not (E62): asked one by one, left out when unknown.
EXTRA_STATS = ("rtpa_jlast", "rtpa_jmax", "rtpa_javg", "longest_ipi")


@dataclass(frozen=True)
class CallParties:
    """A call and its two parties' tags: `uac` is the party that sent the message (or the
    caller), `uas` the other."""

    call_id: str
    uac_tag: str
    uas_tag: str | None
    #: Where the tags came from: "options", "ledger" or "message".
    source: str

    def tags_to(self, party: str) -> tuple[str, str | None]:
        """(first, second) tags so that the first-tag party is `party` ("uac" or "uas")."""
        if party == "uac":
            return self.uac_tag, self.uas_tag
        if not self.uas_tag:
            raise InputError(f"call {self.call_id!r} has no To tag yet, so there is no uas to address",
                             "give --to-tag, or a SIP message of the established dialog")
        return self.uas_tag, self.uac_tag


def resolve_parties(service: RelayService, *, call_id: str | None, from_tag: str | None, to_tag: str | None,
                    message: SipMessage | None = None, source: str = "the message") -> CallParties:
    """The call and its parties from the options, a SIP message, or the ledger (in that order of
    weight: an option wins over the message, the message over the ledger)."""
    if message is not None:
        call = call_id or message.call_id
        first = from_tag or message.from_tag
        second = to_tag if to_tag is not None else message.to_tag
        if not call or not first:
            raise InputError(f"{source}: no Call-ID or From tag", "give --call-id and --from-tag")
        return CallParties(call, first, second or None, "message")
    if not call_id:
        raise InputError("no call given", "give --call-id ID (the ledger supplies the tags), or a SIP message")
    entry = service.ledger(call_id)
    if from_tag is None and entry is None:
        raise InputError(f"the ledger has no call {call_id!r}, so its tags are not known",
                         "give --from-tag (and --to-tag), or a SIP message of the call")
    first = from_tag if from_tag is not None else entry.from_tag  # type: ignore[union-attr]
    second = to_tag if to_tag is not None else (entry.to_tag if entry is not None else None)
    return CallParties(call_id, first, second or None, "options" if from_tag is not None else "ledger")


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


def _session_codecs(service: RelayService, call_id: str) -> tuple[int, ...]:
    entry = service.ledger(call_id)
    if entry is None or not entry.streams:
        return ()
    return entry.streams[0].codecs


def play(service: RelayService, parties: CallParties, prompt: str, *, to: str = "uac", count: int = 1,
         codecs: str = "session", targets: Any = None, set_id: int | None = None) -> PlayResult:
    """rtpproxy_stream2uac/uas: `P<count>` to the party `to` on stream 1; count -1 loops until
    stop_play, 0 only stops what plays."""
    first, second = parties.tags_to(to)
    line = cmd.play(parties.call_id, prompt, first, second, medianum=1, codecs=codecs, count=count)
    known = _session_codecs(service, parties.call_id) if codecs == "session" else tuple(
        int(c) for c in codecs.split(","))
    files = [f"{prompt}.{pt}" for pt in known]
    notes = []
    if not prompt.startswith("/"):
        notes.append(f"{prompt!r} is relative: the relay opens it in its own working directory")
    member = service.for_call(parties.call_id, targets=targets, set_id=set_id)
    try:
        _send(service, member, line, "P")
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
    return PlayResult(member.node.url, parties.call_id, to, prompt, count, codecs, line, files, notes)


@dataclass(frozen=True)
class CommandResult:
    """A command that answers 0, and where it went."""

    node: str
    call_id: str
    commands: list[str]
    replies: list[str]


def stop_play(service: RelayService, parties: CallParties, *, to: str = "uac", targets: Any = None,
              set_id: int | None = None) -> CommandResult:
    """rtpproxy_stop_stream2uac/uas: `S` with the tags of `to` first."""
    first, second = parties.tags_to(to)
    line = cmd.stop_play(parties.call_id, first, second, medianum=1)
    member = service.for_call(parties.call_id, targets=targets, set_id=set_id)
    try:
        reply = _send(service, member, line, "S")
    except ProxyError as err:
        raise _explain(err, "stop-play", {}) from None
    return CommandResult(member.node.url, parties.call_id, [line], [reply])


# -- record -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordResult:
    node: str
    call_id: str
    commands: list[str]
    replies: list[str]
    #: What each command records, in words ("the caller's media (uac)").
    directions: list[str]
    #: The files the relay writes, relative to its record directory (-r), when they can be told.
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


def record(service: RelayService, parties: CallParties, *, both: bool = True, single_file: bool = False,
           party: str = "uac", targets: Any = None, set_id: int | None = None,
           warn: Callable[[str], None] | None = None) -> RecordResult:
    """rtpproxy_start_recording without a destination: one `R` records the first-tag party only
    (§7, §15), so rtppctl sends one per direction unless `both` is False (then the party `party`)."""
    orders = [("uac", parties.tags_to("uac"))]
    if both and parties.uas_tag:
        orders.append(("uas", parties.tags_to("uas")))
    elif not both:
        orders = [(party, parties.tags_to(party))]
    lines = [cmd.record(parties.call_id, first, second, single_file=single_file) for _, (first, second) in orders]
    member = service.for_call(parties.call_id, targets=targets, set_id=set_id)
    switches = _embedded_switches(member.node.url)
    if single_file and _switch(switches, "-P") is None and warn is not None:
        # Said before anything is sent: the relay would accept `Rs` and quietly ignore the `s`.
        warn("--single-file works only when the relay runs with -P (pcap); without it the relay accepts it and "
             "writes one file per direction" + ("" if switches is None else " (the embedded relay runs without -P)"))
    replies = []
    for line in lines:
        try:
            replies.append(_send(service, member, line, "R"))
        except ProxyError as err:
            raise _explain(err, "record", {}) from None
    # The relay names files after the call-id and the session's creator tag: .o for the party that
    # created the session (the offerer), .a for the other (§7).
    files = []
    for name, _ in orders:
        suffix = "o" if name == "uac" else "a"
        files.append(f"{parties.call_id}={parties.uac_tag}.{suffix}.rtp")
    directions = [f"the {'caller' if name == 'uac' else 'callee'}'s media ({name})" for name, _ in orders]
    notes = []
    if both and not parties.uas_tag:
        notes.append("the call has no To tag yet: only the caller's direction is recorded")
    return RecordResult(member.node.url, parties.call_id, lines, replies, directions, files, notes,
                        _switch(switches, "-r"))


def copy(service: RelayService, parties: CallParties, destination: str, *, stream: int = 1, party: str = "uac",
         targets: Any = None, set_id: int | None = None) -> RecordResult:
    """rtpproxy_start_recording with a destination: `C` copies the first-tag party's packets of
    stream `stream` to `udp:IPv4:PORT` (from a fresh relay port) or to the file `<dest>.rtp` in the
    record dir. The destination is checked before anything is sent (`cmd.validate_copy_target`):
    a port or host the relay cannot use, or a name that would leave its record dir, is refused."""
    first, second = parties.tags_to(party)
    line = cmd.copy(parties.call_id, destination, first, second, medianum=stream)
    member = service.for_call(parties.call_id, targets=targets, set_id=set_id)
    try:
        reply = _send(service, member, line, "C")
    except ProxyError as err:
        raise _explain(err, "copy", {65: ("the relay could not start the copy",
                                          "check the destination: a udp:IP:PORT it can reach, or a name it can write in its record dir")}) from None
    sent = cmd.validate_copy_target(destination)
    who = f"the {'caller' if party == 'uac' else 'callee'}'s media ({party}) of stream {stream}"
    files = [] if cmd.is_remote_copy_target(sent) else [f"{sent}.rtp"]
    return RecordResult(member.node.url, parties.call_id, [line], [reply], [who], files)


@dataclass(frozen=True)
class StopRecordResult:
    """`N` for each direction, and whether anything was recording."""

    node: str
    call_id: str
    commands: list[str]
    replies: list[str]
    #: False when the relay has the call but was recording or copying none of it.
    was_recording: bool = True


def stop_record(service: RelayService, parties: CallParties, *, targets: Any = None,
                set_id: int | None = None) -> StopRecordResult:
    """`N` for both tag orders (a recording per direction); a direction that was not recording
    (E50 on the second) is not an error.

    The relay answers E50 both for a call it does not have and for a call with nothing to stop
    (handle_norecord in src/commands/rpcpv1_norecord.c counts the streams it stopped); when both
    directions say E50, a `Q` tells the two apart: a call that is there but not being recorded is
    not an error (was_recording False), a call that is not there is E50."""
    orders = [parties.tags_to("uac")] + ([parties.tags_to("uas")] if parties.uas_tag else [])
    member = service.for_call(parties.call_id, targets=targets, set_id=set_id)
    lines, replies = [], []
    for first, second in orders:
        line = cmd.stop_record(parties.call_id, first, second)
        reply = service.attempt(member, lambda client, line=line: client.exchange(line).reply, letter="N")
        lines.append(line)
        replies.append(reply)
    codes = [cmd.error_code(reply) for reply in replies]
    if all(code is not None for code in codes):
        code = codes[0] or 0
        if code != cmd.SESSION_NOT_FOUND or not _has_session(service, member, parties):
            raise _explain(ProxyError(code, command=lines[0], node=member.node.url), "stop-record", {})
        return StopRecordResult(member.node.url, parties.call_id, lines, replies, was_recording=False)
    return StopRecordResult(member.node.url, parties.call_id, lines, replies)


def _has_session(service: RelayService, member: Member, parties: CallParties) -> bool:
    """Does the relay hold stream 1 of this call? `Q` changes nothing on the relay."""
    first, second = parties.tags_to("uac")
    line = cmd.query(parties.call_id, first, second, medianum=1)
    try:
        _send(service, member, line, "Q")
    except ProxyError:
        return False
    return True


# -- statistics -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatsResult:
    node: str
    call_id: str
    stream: int
    #: The party whose packets "up" counts ("uac": the party that sent the message, or the caller).
    up_is: str
    up: int
    down: int
    relayed: int
    dropped: int
    ttl: int
    #: With --all: every counter of §6.2 and those of EXTRA_STATS the relay has.
    counters: dict[str, int | float] = field(default_factory=dict)


def stats(service: RelayService, parties: CallParties, *, stream: int = 1, all_counters: bool = False,
          party: str = "uac", targets: Any = None, set_id: int | None = None) -> StatsResult:
    """rtpproxy_stats (and rtpproxy_all_stats): `Q` with the tags of `party` first, so "up" counts
    the packets that party sent (§6.1)."""
    first, second = parties.tags_to(party)
    member = service.for_call(parties.call_id, targets=targets, set_id=set_id)

    def ask(names: tuple[str, ...]) -> dict[str, int | float]:
        line = cmd.query(parties.call_id, first, second, names, medianum=stream)
        try:
            return cmd.parse_counters(_send(service, member, line, "Q"), names)
        except ProxyError as err:
            raise _explain(err, "stats", _counter_hints(err, service, member, parties, list(names), stream)) from None

    base = ask(())
    counters: dict[str, int | float] = {}
    if all_counters:
        # Q without names answers the first group (QUERY_DEFAULT_COUNTERS): asked once, not twice.
        counters.update(base)
        for group in ALL_STATS[1:]:
            counters.update(ask(group))
        for name in EXTRA_STATS:
            try:
                counters.update(ask((name,)))
            except ProxyError as err:
                if err.code != 62:  # E62: this relay has no such counter
                    raise
    # The decoder gives these as ints (QUERY_INTEGER_COUNTERS), bounded: int() only tells the type checker.
    return StatsResult(member.node.url, parties.call_id, stream, party, int(base["npkts_ina"]), int(base["npkts_ino"]),
                       int(base["nrelayed"]), int(base["ndropped"]), int(base["ttl"]), counters)


@dataclass(frozen=True)
class QueryResult:
    node: str
    call_id: str
    command: str
    counters: dict[str, int | float]


def query(service: RelayService, parties: CallParties, counters: list[str], *, stream: int = 1,
          targets: Any = None, set_id: int | None = None) -> QueryResult:
    """Any `Q` counters by name (the relay answers E62 for a name it does not know)."""
    first, second = parties.tags_to("uac")
    line = cmd.query(parties.call_id, first, second, counters, medianum=stream)
    member = service.for_call(parties.call_id, targets=targets, set_id=set_id)
    try:
        values = cmd.parse_counters(_send(service, member, line, "Q"), counters)
    except ProxyError as err:
        raise _explain(err, "query", _counter_hints(err, service, member, parties, counters, stream)) from None
    return QueryResult(member.node.url, parties.call_id, line, values)


def _counter_hints(err: ProxyError, service: RelayService, member: Member, parties: CallParties, counters: list[str],
                   stream: int) -> dict[int, tuple[str, str]]:
    """For `_explain`: E62 with the names of the counters the relay does not know."""
    if err.code != 62:
        return {}
    unknown = _unknown_counters(service, member, parties, counters, stream)
    names = ", ".join(repr(name) for name in unknown) or "one of them"
    return {62: (f"the relay knows no counter named {names}" if len(unknown) < 2 else
                 f"the relay knows no counters named {names}",
                 "ask for counters it has, e.g. npkts_ina npkts_ino nrelayed ndropped rtpa_nlost rtpa_jmax")}


def _unknown_counters(service: RelayService, member: Member, parties: CallParties, counters: list[str],
                      stream: int) -> list[str]:
    """The names the relay answers E62 to. Its E62 does not say which name it refused (it logs it,
    src/commands/rpcpv1_query.c), so with several names each is asked alone: Q changes nothing."""
    if len(counters) == 1:
        return list(counters)
    first, second = parties.tags_to("uac")
    unknown = []
    for name in dict.fromkeys(counters):
        try:
            _send(service, member, cmd.query(parties.call_id, first, second, [name], medianum=stream), "Q")
        except ProxyError as err:
            if err.code == 62:
                unknown.append(name)
    return unknown
