"""`listen`: the notification socket watched until a count, a duration or a signal, and what it
makes of each notification: one event record in the schema shared with `show --watch`.

`Listening` is one run: it binds the socket (`net.listener`), hands each read's records to the
caller as they come (`events()`), runs `--exec` for them (`ops.exec_runner`), probes the relays
every `--status-interval`, and ends with a `ListenSummary`. Its rules:

- The end. A count or a duration: the socket is closed, then every command still waiting for
  --exec runs (each bounded by its timeout); then the summary. SIGINT or SIGTERM (the same for
  both): the socket is closed (a unix socket file removed), waiting commands are not run and are
  counted as dropped, running ones get the rest of their timeout, and a second signal kills them;
  `interrupted` then says so (the command line exits 130). The signals are counted, not raised,
  and caught from before the socket is bound, so no event is half-counted and a SIGTERM at any
  point still removes the socket file. A failure (or the caller stopping early) ends the run
  as a signal does.
- What arrived in one read is handed over together (`Batch`), after the peers' news of that read;
  with a count, no record past it is handed over or run.

Every record has a `type` ("timeout", "dtmf", "status" or "unknown") and a `time`; a
notification's record has the `relay` (peer) it came from, and each has only the keys of its type:

- timeout: `tag` (as the relay decoded it), `dialog` (the module's dialog id, `h_entry.h_id`, or
  null), `call_id` (what the session ledger knows for that tag: rtppctl records the notify and DTMF
  tags it sends with each call);
- dtmf: the same, plus `id`, `digit`, `duration`, `volume`, `stream` and `is_callid` as
  E_RTPPROXY_DTMF has them (the Call-ID of a `Dc` tag is taken from the tag when the ledger does not know it);
- status: E_RTPPROXY_STATUS, the right way round, exactly as `show --watch` writes it:
  `relays.health.StatusEvent.as_record()`, with `socket` (the relay's url) instead of `relay`,
  `set`, `status` ("active"/"inactive"), `state`, `reason`;
- unknown: `reason`, `raw`: a line that starts with neither `T` nor `D` (the module ignores
  those), the placeholder `I`, a `D` line without its fields, an overlong or cut-off line. An
  unknown record is never a timeout, and runs no --exec unless asked (`fires_exec`).

`raw`, the line as received with anything unprintable escaped, is in unknown records, and in
every record with `listen --raw`.

--exec gets a record as environment variables (`exec_environment`), which cannot hold a NUL byte:
every `RTPPCTL_<KEY>` is the record's value as `--json` shows it (true/false, numbers in decimal,
empty for null), percent-encoded where it holds `%` or a character that is not printable (NUL and
the other controls, C1 controls, format characters), and, in `RTPPCTL_RAW`, a byte that is not
UTF-8; so any URL decoder gives back the exact value, and a value without those reads as it is.
`RTPPCTL_RAW` is always the line as received (exact bytes, not the escaped `raw` of the record).
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from rtppctl.ops.interrupts import Interrupts
from rtppctl.proto import limits
from rtppctl.proto.notify import Dtmf, Ignored, NotifySocket, Overlong, Timeout

if TYPE_CHECKING:
    from rtppctl.net.listener import Listener, Notifications, PeerNews
    from rtppctl.ops.exec_runner import ExecCounts, ExecRunner
    from rtppctl.relays.service import RelayService
    from rtppctl.relays.store import LedgerEntry


def shown_raw(data: bytes) -> str:
    """Bytes as text with anything unprintable escaped (never a second line)."""
    if data.isascii() and b"\\" not in data:
        text = data.decode("ascii")
        if text.isprintable():
            return text  # the common case, without the escaping pass
    return data.decode("utf-8", "backslashreplace").encode("unicode_escape").decode("ascii")


#: Every key --exec passes on: RTPPCTL_<KEY> for each, empty when the record has none. A status
#: record's `state` is not among them: RTPPCTL_STATE names the state file rtppctl uses, and the
#: command --exec runs may well run rtppctl.
ALL_KEYS = ("type", "time", "relay", "socket", "tag", "call_id", "dialog", "id", "digit", "duration", "volume",
            "stream", "is_callid", "status", "set", "reason", "raw")


def fires_exec(record: dict[str, Any], *, unknown: bool = False) -> bool:
    """Whether --exec runs for this record: every type but unknown, unless `unknown` (--exec-unknown)."""
    return unknown or record["type"] != "unknown"


def exec_value(text: str) -> str:
    """A value an environment variable can hold, and any URL decoder undoes: `%` and every
    character that is not printable (NUL and the other controls, C1 controls, format characters
    such as bidi overrides, separators other than the space) written as `%XX` per UTF-8 byte, and
    the stand-in of an undecodable byte (a surrogate escape) as that byte."""
    if text.isprintable() and "%" not in text:
        return text  # the common case, without the escaping pass
    parts = []
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape): the byte itself
            parts.append(f"%{code - 0xDC00:02X}")
        elif char == "%" or not char.isprintable():
            parts.append("".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass")))
        else:
            parts.append(char)
    return "".join(parts)


def exec_environment(record: dict[str, Any], raw: bytes | None = None) -> dict[str, str]:
    """`RTPPCTL_<KEY>` for every key a record can have (empty when its type has none), the values
    as `--json` writes them (true/false, numbers in decimal), escaped by `exec_value`; `raw`, the
    line as received, makes `RTPPCTL_RAW` exact."""
    environment = {}
    for key in ALL_KEYS:
        value = record.get(key)
        if value is None:
            text = ""
        elif value is True or value is False:
            text = "true" if value else "false"
        else:
            text = exec_value(str(value))
        environment[f"RTPPCTL_{key.upper()}"] = text
    if raw is not None:
        environment["RTPPCTL_RAW"] = exec_value(raw.decode("utf-8", "surrogateescape"))
    return environment


def event_records(batch: Notifications, lookup: Callable[[str], LedgerEntry | None] | None, *,
                  raw: bool = False) -> list[dict[str, Any]]:
    """The records of what one read brought, without `time` and `relay`, which all of them share
    (`batch_common`); `lookup` finds a tag's call in the ledger (None: no ledger); `raw` adds the
    line as received."""
    records = []
    append = records.append
    for event in batch.events:
        kind = type(event)
        if kind is Timeout:
            entry = lookup(event.tag) if lookup is not None else None
            did = event.dialog
            record = {"type": "timeout", "tag": event.tag,
                      "call_id": entry.call_id if entry else None, "dialog": f"{did[0]}.{did[1]}" if did else None}
        elif kind is Dtmf:
            entry = lookup(event.tag) if lookup is not None else None
            call_id = entry.call_id if entry else (event.id if event.is_callid else None)
            record = {"type": "dtmf", "tag": event.tag, "call_id": call_id,
                      "dialog": None if event.is_callid else event.id, "id": event.id, "digit": event.digit,
                      "duration": event.duration, "volume": event.volume, "stream": event.stream,
                      "is_callid": event.is_callid}
        else:
            if kind is Ignored:
                reason = "I: the placeholder tag sent when only DTMF was asked; the module ignores it"
            elif kind is Overlong:
                reason = f"a line of {event.skipped} bytes, longer than the listener takes; dropped"
            else:
                reason = event.reason
            record = {"type": "unknown", "reason": reason,
                      "raw": shown_raw(event.raw)}
        if raw:
            record["raw"] = shown_raw(event.raw)
        append(record)
    return records


def batch_common(batch: Notifications) -> dict[str, Any]:
    """The keys every record of one read shares: when it came, and from which relay."""
    return {"time": batch.time, "relay": batch.peer}


def source(record: dict[str, Any]) -> str:
    """Where a record came from: the peer of a notification, the relay of a status event."""
    return record.get("relay") or record["socket"]


def relay_addresses(service: RelayService) -> set[str]:
    """The IP addresses of every configured relay: TCP notification peers are accepted from these
    only (§9.1). Names are resolved once, here; unix relays have no address."""
    addresses: set[str] = set()
    for member in service.members(all_sets=True):
        host = member.node.host
        if not host:
            continue
        try:
            for info in socket.getaddrinfo(host.strip("[]"), None):
                addresses.add(str(info[4][0]))
        except socket.gaierror:
            continue
    return addresses


# -- one run ------------------------------------------------------------------------------------------

#: Seconds one wait for notifications lasts at most when nothing else is due.
IDLE_WAIT = 0.5


class Batch(NamedTuple):
    """Records that arrived together (one read from one peer, or one probe's status events)."""

    records: list[dict[str, Any]]
    #: Keys every record shares (`time`, `relay`), kept apart so that they are encoded once; None
    #: for status events, which carry their own.
    common: dict[str, Any] | None


@dataclass(frozen=True)
class ListenSummary:
    """How a run went: the summary record `listen` ends with."""

    #: Records by type.
    counts: dict[str, int]
    #: Records by the peer (or, for status events, the relay) they came from.
    peers: dict[str, int]
    #: Connections refused for their address, and for being over --max-peers.
    refused_connections: int
    refused_max_peers: int
    #: Times accepting paused for want of file descriptors (or another accept error).
    accept_pauses: int
    seconds: float
    #: What became of the events --exec was for; None without --exec.
    exec: ExecCounts | None = None

    @property
    def events(self) -> int:
        return sum(self.counts.values())

    def as_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "type": "summary", "events": self.events, "counts": dict(self.counts), "peers": dict(self.peers),
            "refused_connections": self.refused_connections, "refused_max_peers": self.refused_max_peers,
            "accept_pauses": self.accept_pauses, "seconds": round(self.seconds, 3)}
        if self.exec is not None:
            record["exec"] = {"events": self.exec.events, "started": self.exec.started, "dropped": self.exec.dropped,
                              "failed": self.exec.failed, "timed_out": self.exec.timed_out}
        return record


class Listening:
    """One run of `listen` on `address`. Use as a context manager (it binds the socket and catches
    the signals), iterate `events()`, then read `summary()` and `interrupted`.

    TCP peers are accepted from the configured relays' addresses only, unless `any_peer` (the
    module's rule, §9.1); events name their call when the session ledger knows the tag; `raw` adds
    each line as received to its record; `runner` runs --exec for each record; the run ends after
    `count` records or `duration` seconds, if given, or at a signal; `status_interval` seconds
    apart, every configured relay is probed (an operator's probe: the health table judges each
    answer) and the status events it raised are records too.
    """

    def __init__(self, service: RelayService, address: NotifySocket, *, any_peer: bool = False,
                 max_peers: int = limits.DEFAULT_LISTEN_PEERS, raw: bool = False, runner: ExecRunner | None = None,
                 count: int | None = None, duration: float | None = None,
                 status_interval: float | None = None) -> None:
        self.service = service
        self.address = address
        self.any_peer = any_peer
        self.max_peers = max_peers
        self.raw = raw
        self.runner = runner
        self.count = count
        self.duration = duration
        self.status_interval = status_interval
        self._interrupts = Interrupts()
        self._listener: Listener | None = None
        self._counts: Counter[str] = Counter()
        self._peers: Counter[str] = Counter()
        self._seen = 0
        self._started = time.monotonic()
        self._ended = False

    def __enter__(self) -> Listening:
        from rtppctl.net.listener import Listener  # noqa: PLC0415

        # Names are resolved before anything is bound or caught.
        allowed = None if self.any_peer or self.address.kind == "unix" else relay_addresses(self.service)
        # Signals are caught before the socket is bound, so a SIGTERM at any point still removes it.
        self._interrupts.__enter__()
        try:
            self._listener = Listener(self.address, allowed=allowed, max_peers=self.max_peers).__enter__()
        except BaseException:
            self._interrupts.__exit__()
            raise
        self._interrupts.wake(self._listener.wakeup_fd)
        self._started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._end(drop_waiting=True)  # nothing left to do after a normal end
        finally:
            if self._listener is not None:
                self._listener.close()
            self._interrupts.__exit__()

    @property
    def bound(self) -> str:
        """The socket as bound (the real port when 0 was asked)."""
        return self._listener.bound if self._listener is not None else self.address.text

    @property
    def interrupted(self) -> bool:
        """A signal ended the run."""
        return self._interrupts.signals > 0

    def events(self) -> Iterator[Batch | PeerNews]:
        """What happens, as it happens: a `Batch` of records per read (and per probe), and the
        peers' news (`net.listener.PeerNews`: connected, closed, refused...), until the end."""
        from rtppctl.net.listener import Notifications  # noqa: PLC0415
        from rtppctl.ops.exec_runner import EXEC_POLL  # noqa: PLC0415

        assert self._listener is not None, "enter the run first"
        listener, runner, count = self._listener, self.runner, self.count
        stop = self._interrupts
        # Without a state store there is no ledger to name calls from: no lookup per event.
        lookup = self.service.ledger_by_tag if self.service.state_path is not None else None
        try:
            next_probe = time.monotonic() + self.status_interval if self.status_interval else None
            while (count is None or self._seen < count) and not stop.signals:
                now = time.monotonic()
                if self.duration is not None and now - self._started >= self.duration:
                    break
                # While --exec has commands to start or check, they are checked that often.
                wait = EXEC_POLL if runner is not None and runner.busy else IDLE_WAIT
                if self.duration is not None:
                    wait = max(0.0, min(wait, self.duration - (now - self._started)))
                if next_probe is not None:
                    wait = max(0.0, min(wait, next_probe - now))
                # (records, the keys they share, the events they came from) per read, and the
                # status events of a probe.
                groups: list[tuple[list[dict[str, Any]], dict[str, Any] | None, list[Any] | None]] = []
                for item in listener.events(wait):
                    if isinstance(item, Notifications):
                        groups.append((event_records(item, lookup, raw=self.raw), batch_common(item),
                                       item.events if runner is not None else None))
                    else:
                        yield item
                if next_probe is not None and time.monotonic() >= next_probe:
                    groups.append((self._status_records(), None, None))
                    next_probe = time.monotonic() + self.status_interval  # type: ignore[operator]
                for records, common, events in groups:
                    if count is not None and self._seen + len(records) > count:
                        records = records[: count - self._seen]
                    self._seen += len(records)
                    self._counts.update([record["type"] for record in records])
                    if common is not None:
                        self._peers[common["relay"]] += len(records)
                    else:
                        self._peers.update([source(record) for record in records])
                    if runner is not None:
                        for index, record in enumerate(records):
                            runner.submit({**common, **record} if common else record,
                                          events[index].raw if events is not None else None)
                    yield Batch(records, common)
                if runner is not None:
                    runner.pump()
        except BaseException:
            self._end(drop_waiting=True)
            raise
        self._end(drop_waiting=False)

    def _status_records(self) -> list[dict[str, Any]]:
        """An operator's probe of every configured relay; the status events it raised, as records."""
        service = self.service
        with service.capturing_status() as raised:
            service.probe(service.members(all_sets=True))
        return [event.as_record() for event in raised]

    def _end(self, *, drop_waiting: bool) -> None:
        """Close the socket (relays see it gone, not ignored, while commands drain), then let --exec
        finish: what waits runs unless `drop_waiting` or a signal came."""
        if self._ended:
            return
        self._ended = True
        self._interrupts.wake(None)
        if self._listener is not None:
            self._listener.close()
        if self.runner is not None:
            self.runner.drain(lambda: self._interrupts.signals, drop_waiting=drop_waiting)

    def summary(self) -> ListenSummary:
        listener = self._listener
        return ListenSummary(
            dict(self._counts), dict(self._peers), listener.refused if listener else 0,
            listener.refused_max_peers if listener else 0, listener.accept_pauses if listener else 0,
            time.monotonic() - self._started, self.runner.counts if self.runner is not None else None)


__all__ = ["ALL_KEYS", "Batch", "Interrupts", "ListenSummary", "Listening", "batch_common", "event_records",
           "exec_environment", "exec_value", "fires_exec", "relay_addresses", "shown_raw", "source"]
