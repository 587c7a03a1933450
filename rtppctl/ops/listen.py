"""What `listen` makes of a notification: one event record in the schema shared with `show --watch`.

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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rtppctl.proto.notify import Dtmf, Ignored, Overlong, Timeout

if TYPE_CHECKING:
    from rtppctl.net.listener import Notifications
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


__all__ = ["ALL_KEYS", "batch_common", "event_records", "exec_environment", "exec_value", "fires_exec", "relay_addresses",
           "shown_raw"]
