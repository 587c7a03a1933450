"""`check`: does each relay carry a call's media, both ways? An observation, node by node.

For every node asked about (whatever its health: a disabled or off node is checked too, and its
state shown), a worker thread does what a proxy and two phones would: the module's probe (`V`,
`VF`), an offer (`U`) and an answer (`L`) built by the same planner as `offer`/`answer` for a fresh
call, RTP from two local parties both ways (`net.rtp_path`), the relay's own counters for the
session (`Q`, as `stats` reads them), and the delete (`D`) whatever happened. What arrived is
measured by `proto.media_path`; a loss is placed before the relay or at/after it by comparing
the relay's count of what it received with what was sent and what arrived.

A check never changes shared health, never writes the ledger and never fails over: each worker
has a client of its own (`RelayService.own_client`) and talks to its node only. The run has one
deadline: at it (or at Ctrl-C / SIGTERM) every worker stops, deletes its session, and the nodes
not done are reported unfinished. A session whose `D` could not be confirmed is named in the
node's reason with its Call-ID, so no session a relay holds is unknown to the operator.
"""

from __future__ import annotations

import queue
import secrets
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from rtppctl.proto import command as cmd
from rtppctl.proto.errors import MalformedReply, ProxyError, RtppctlError, TransportError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from rtppctl.net.client import RelayClient
    from rtppctl.net.rtp_path import Party
    from rtppctl.proto.url import NodeSpec
    from rtppctl.relays.service import Member, RelayService

#: PCMU: the codec every RTPProxy relays without looking, one byte a sample at 8 kHz.
_PAYLOAD_TYPE = 0
_CLOCK_RATE = 8000
#: Seconds to keep reading after the last packet, at least: the late threshold plus a margin.
_SETTLE_MARGIN = 0.05
#: Where the media address came from, in words for reasons.
_ADDRESS_WORDS = {"advertised": "the advertised address", "reply": "the address the relay answered",
                  "control": "the relay's control address"}


@dataclass(frozen=True)
class CheckSettings:
    """What one run sends and what counts as a pass."""

    packets: int
    ptime_ms: int
    late_ms: float
    max_loss_pct: float
    deadline_s: float
    parallel: int
    #: How long one command may take with its retries (timeout x retries): after the stop, a
    #: worker may still wait that long for the command in flight and again for its delete.
    command_seconds: float


@dataclass
class NodeCheck:
    """One node's check: the JSON object `check --json` prints per node (README)."""

    node: str
    set_id: int | None
    #: Its health as the state store has it (enabled, disabled, probing, off); None for a target.
    state: str | None
    #: pass, fail or unfinished.
    status: str = "unfinished"
    reason: str | None = None
    rtt_ms: float | None = None
    version: int | None = None
    capabilities: list[str] = field(default_factory=list)
    #: The check's call: its Call-ID (`rtppctl-check-...`) and the caller's and callee's tags.
    call_id: str = ""
    from_tag: str = ""
    to_tag: str = ""
    media_address: str | None = None
    #: advertised, reply or control: where `media_address` came from.
    address_source: str | None = None
    directions: list[dict[str, Any]] = field(default_factory=list)
    relay_counters: dict[str, int | float] | None = None


@dataclass
class CheckReport:
    """The whole run: `check --json`'s object."""

    ok: bool
    verdict: str
    packets: int
    ptime_ms: int
    late_ms: float
    max_loss_pct: float
    deadline_s: float
    elapsed_s: float
    nodes: list[NodeCheck]
    #: The run was ended by Ctrl-C or SIGTERM (after every session was deleted).
    interrupted: bool = False


def check(service: RelayService, members: Sequence[Member], settings: CheckSettings, *,
          interrupted: Callable[[], bool] = lambda: False) -> CheckReport:
    """Check every member at once (at most `settings.parallel` at a time) until they are done, the
    deadline passes or `interrupted()` turns true; every session made is deleted before this
    returns."""
    started = time.monotonic()
    deadline = started + settings.deadline_s
    stop = threading.Event()
    checks = [_new_check(service, member) for member in _unique(members)]
    work: queue.SimpleQueue[tuple[Member, NodeCheck]] = queue.SimpleQueue()
    for member, node_check in zip(_unique(members), checks, strict=True):
        work.put((member, node_check))

    started_nodes: list[NodeCheck] = []
    ended_nodes: list[NodeCheck] = []

    def worker() -> None:
        while not stop.is_set():
            try:
                member, node_check = work.get_nowait()
            except queue.Empty:
                return
            started_nodes.append(node_check)
            _check_node(service, member, node_check, settings, stop, deadline)
            ended_nodes.append(node_check)

    # Daemon threads: a worker stuck past the cleanup grace must not keep the process alive.
    threads = [threading.Thread(target=worker, name=f"rtppctl-check-{n}", daemon=True)
               for n in range(max(1, min(settings.parallel, len(checks))))]
    for thread in threads:
        thread.start()
    was_interrupted = False
    while not stop.is_set():
        alive = [thread for thread in threads if thread.is_alive()]
        if not alive:
            break
        alive[0].join(0.05)
        if interrupted():
            was_interrupted = True
            stop.set()
        if time.monotonic() >= deadline:
            stop.set()
    # Stopping: each worker ends its wait at once, finishes the command in flight (bounded by
    # the channel's timeout and retries) and deletes its session.
    grace = time.monotonic() + 2 * settings.command_seconds + 1.0
    for thread in threads:
        thread.join(max(0.0, grace - time.monotonic()))
    for node_check in started_nodes:
        if node_check not in ended_nodes:
            # Its worker is still waiting for the relay: whether its session was deleted is not
            # known, so the operator is told how to delete it.
            node_check.status = "unfinished" if node_check.status == "pass" else node_check.status
            node_check.reason = _join(node_check.reason, _left_behind(node_check))
    for node_check in checks:
        if node_check.status == "unfinished" and node_check.reason is None:
            node_check.reason = "interrupted before it finished" if was_interrupted else (
                f"not finished within --deadline {settings.deadline_s:g} s")
    passed = sum(1 for c in checks if c.status == "pass")
    return CheckReport(
        ok=bool(checks) and passed == len(checks),
        verdict=_verdict(checks, passed),
        packets=settings.packets, ptime_ms=settings.ptime_ms, late_ms=settings.late_ms,
        max_loss_pct=settings.max_loss_pct, deadline_s=settings.deadline_s,
        elapsed_s=round(time.monotonic() - started, 3), nodes=checks, interrupted=was_interrupted,
    )


def _unique(members: Sequence[Member]) -> list[Member]:
    # A node in two sets is one relay: checked once, under its first set.
    seen: dict[str, Member] = {}
    for member in members:
        seen.setdefault(member.node.url, member)
    return list(seen.values())


def _new_check(service: RelayService, member: Member) -> NodeCheck:
    state = service.node_info(member).health.state.value if member.set_id is not None else None
    return NodeCheck(member.node.url, member.set_id, state, call_id=_new_call_id(),
                     from_tag="chk" + secrets.token_hex(6), to_tag="chk" + secrets.token_hex(6))


def _new_call_id() -> str:
    # Recognisable in a relay's logs and captures; random so that runs on many hosts never meet.
    return f"rtppctl-check-{secrets.token_hex(8)}@{socket.gethostname() or 'localhost'}"


def _verdict(checks: list[NodeCheck], passed: int) -> str:
    # The count alone: each node that did not pass says why in its own `reason`.
    return f"{passed}/{len(checks)} relays forward media both ways" if checks else "no relay to check"


# -- one node ------------------------------------------------------------------------------------


@dataclass
class _Session:
    """Whether the node's call (its Call-ID and tags are the NodeCheck's) may exist on the relay:
    once U has been sent, it must be deleted."""

    sent_update: bool = False


def _check_node(service: RelayService, member: Member, result: NodeCheck, settings: CheckSettings,
                stop: threading.Event, deadline: float) -> None:
    """Fill `result` in; never raises for anything the node does."""
    session = _Session()
    parties: list[Party] = []
    client = None
    try:
        client = service.own_client(member.node)
        if _stopped(stop, deadline):
            return
        _probe(client, result)
        if _stopped(stop, deadline):
            return
        from rtppctl.net.rtp_path import Party, local_address_towards  # noqa: PLC0415

        family = socket.AF_INET6 if member.node.scheme in ("udp6", "tcp6") else socket.AF_INET
        local = local_address_towards(member.node.host, member.node.port, family)
        parties.extend((Party.open(local), Party.open(local)))
        to_callee, to_caller = _set_up(client, member.node, session, parties, local, result)
        if _stopped(stop, deadline):
            return
        _media(client, session, parties, (to_callee, to_caller), result, settings, stop, deadline)
    except (TransportError, ProxyError) as err:
        if result.reason is None:
            result.status, result.reason = "fail", _failure_words(err, session)
    except OSError as err:
        # This host's fault, not the relay's: the node is not checked (unfinished, UNKNOWN under
        # --nagios), never failed.
        result.status, result.reason = "unfinished", f"no local UDP port for the media: {err.strerror or err}"
    finally:
        for party in parties:
            party.close()
        _delete(service, member.node, client, session, result)
        if client is not None:
            client.close()


def _stopped(stop: threading.Event, deadline: float) -> bool:
    if time.monotonic() >= deadline:
        stop.set()
    return stop.is_set()


def _probe(client: RelayClient, result: NodeCheck) -> None:
    from rtppctl.net.probe import module_probe  # noqa: PLC0415

    found = module_probe(client)
    result.rtt_ms = round(found.rtt_ms, 3)
    result.version = found.version
    result.capabilities = list(found.capabilities)


def _failure_words(err: RtppctlError, session: _Session) -> str:
    if isinstance(err, MalformedReply):
        return err.message
    if isinstance(err, TransportError):
        return f"cannot reach the relay: {err.message}" if not session.sent_update else (
            f"the relay stopped answering: {err.message}")
    return f"the relay refused the session: {err.message}"


def _sdp(address: str, port: int, session_version: int) -> str:
    family = "IP6" if ":" in address else "IP4"
    return (f"v=0\r\no=rtppctl {session_version} {session_version} IN {family} {address}\r\ns=rtppctl check\r\n"
            f"c=IN {family} {address}\r\nt=0 0\r\nm=audio {port} RTP/AVP {_PAYLOAD_TYPE}\r\n"
            f"a=rtpmap:{_PAYLOAD_TYPE} PCMU/{_CLOCK_RATE}\r\n")


def _set_up(client: RelayClient, node: NodeSpec, session: _Session, parties: list[Party], local: str,
            result: NodeCheck) -> tuple[tuple[str, int], tuple[str, int]]:
    """Offer (caller's SDP, U) and answer (callee's SDP, L), as `offer` and `answer` build them;
    where each party must send its media."""
    from rtppctl.proto import offer as planner  # noqa: PLC0415
    from rtppctl.proto import sdp as sdp_mod  # noqa: PLC0415
    from rtppctl.proto.flags import parse_flags  # noqa: PLC0415

    capabilities = frozenset(result.capabilities)
    flags = parse_flags("")
    destinations = []
    for offer, party in ((True, parties[0]), (False, parties[1])):
        sdp = sdp_mod.parse_sdp(_sdp(local, party.declared_port, 1 if offer else 2), source="check SDP")
        leg = planner.CallLeg(result.call_id, result.from_tag, None if offer else result.to_tag, in_reply=not offer)
        plan = planner.plan(sdp, flags, leg, offer=offer, capabilities=capabilities)
        session.sent_update = True  # from here on the relay may hold a session, whatever comes back
        reply = cmd.parse_port_reply(client.call(plan.commands[0].command))
        if reply.port == 0:
            raise ProxyError(cmd.SESSION_NOT_FOUND, command=plan.commands[0].command, node=node.url)
        address, source = _media_address(sdp.streams[0], reply, node, sdp_mod)
        destinations.append((address, reply.port))
        if offer:
            result.media_address, result.address_source = address, source
    # The offer's reply is where the callee sends (to reach the caller), the answer's where the
    # caller sends: the caller's packets go to the port the answer gave.
    return destinations[1], destinations[0]


def _media_address(stream: Any, reply: cmd.PortReply, node: NodeSpec, sdp_mod: Any) -> tuple[str, str]:
    """The address a proxy would write into the SDP (the module's precedence, `sdp.choose_media_address`)
    and where it came from; a relay binding the wildcard answers none: its control address then."""
    control = node.host.strip("[]") if node.host else ("::1" if reply.ipv6 else "127.0.0.1")
    address, _family = sdp_mod.choose_media_address(stream, reply_address=reply.address, reply_ipv6=reply.ipv6,
                                                    advertised=node.advertised, local_address=control)
    if node.advertised and address == node.advertised:
        return address, "advertised"
    return address, "reply" if reply.address and address == reply.address else "control"


def _media(client: RelayClient, session: _Session, parties: list[Party], destinations: tuple[tuple[str, int], ...],
           result: NodeCheck, settings: CheckSettings, stop: threading.Event, deadline: float) -> None:
    from rtppctl.net.rtp_path import exchange  # noqa: PLC0415
    from rtppctl.proto.media_path import DIRECTIONS, DirectionMeter, payload_for, relay_split  # noqa: PLC0415

    samples = _CLOCK_RATE * settings.ptime_ms // 1000
    seed = secrets.token_bytes(16)
    meters, datagrams = [], []
    for index, name in enumerate(DIRECTIONS):
        meter = DirectionMeter(name, ssrc=secrets.randbits(32), payload_type=_PAYLOAD_TYPE,
                               clock_rate=_CLOCK_RATE, late_ms=settings.late_ms)
        first_seq, first_timestamp = secrets.randbelow(65536), secrets.randbits(32)
        datagrams.append([
            meter.packet(n, first_seq=first_seq, first_timestamp=first_timestamp, samples_per_packet=samples,
                         payload=payload_for(index, n, samples, seed))
            for n in range(settings.packets)
        ])
        meters.append(meter)
    settle = max(settings.late_ms / 1000.0, 4 * settings.ptime_ms / 1000.0) + _SETTLE_MARGIN
    outcome = exchange(parties, destinations, meters, datagrams, interval=settings.ptime_ms / 1000.0,
                       settle=settle, stop=stop, deadline=deadline)
    # The relay's own counts, before the delete: the caller's tag first, so npkts_ina is what
    # the relay received from the caller; the stream number as U and L sent it (docs/protocol.md
    # §6.1, §12.1: a stream created with `tag;1` answers only to `tag;1`).
    counters = None
    try:
        query = cmd.query(result.call_id, result.from_tag, result.to_tag, medianum=1)
        counters = cmd.parse_counters(client.call(query))
    except (ProxyError, MalformedReply):
        pass  # reported as unknown; the media verdict stands on what arrived
    result.relay_counters = counters
    relay_received = (counters.get("npkts_ina"), counters.get("npkts_ino")) if counters else (None, None)
    for index, meter in enumerate(meters):
        record = asdict(meter.result())
        got = relay_received[index]
        got = int(got) if got is not None else None
        before, after = relay_split(record["sent"], got, record["received"])
        record.update(relay_received=got, lost_before_relay=before, lost_after_relay=after)
        result.directions.append(record)
    if outcome.cut:
        return  # unfinished: the run's end says why
    result.status, result.reason = _judge(result, outcome.send_errors, settings)


def _judge(result: NodeCheck, send_errors: list[str | None], settings: CheckSettings) -> tuple[str, str | None]:
    """pass, or fail with the first reason in words."""
    where = f"{result.media_address} ({_ADDRESS_WORDS.get(result.address_source or '', 'the media address')})"
    for record, error in zip(result.directions, send_errors, strict=True):
        if error is not None:
            return "fail", f"cannot send {direction_words(record['direction'])} media to {where}: {error}"
    if all(r["received"] == 0 for r in result.directions):
        if all(r["relay_received"] == 0 for r in result.directions):
            return "fail", f"no media reached the relay at {where}: this host cannot reach that address"
        return "fail", "no media came back either way"
    for record in result.directions:
        direction = direction_words(record["direction"])
        if record["received"] == 0:
            seen = record["relay_received"]
            tail = f" (the relay received {seen} and forwarded none)" if seen else (
                " (the relay received none of them)" if seen == 0 else "")
            return "fail", f"{direction}: none of {record['sent']} packets arrived{tail}"
        if record["corrupted"]:
            return "fail", f"{direction}: {record['corrupted']} packets arrived altered"
        if record["loss_pct"] > settings.max_loss_pct:
            placed = ""
            if record["lost_before_relay"] is not None:
                placed = f" ({record['lost_before_relay']} before the relay, {record['lost_after_relay']} at or after it)"
            return "fail", (f"{direction}: lost {record['loss_pct']:g}% of packets{placed}, "
                            f"more than --max-loss {settings.max_loss_pct:g}%")
    return "pass", None


def direction_words(direction: str) -> str:
    """`caller-to-callee` as people read it: `caller to callee`."""
    return direction.replace("-to-", " to ")


def _delete(service: RelayService, node: NodeSpec, client: RelayClient | None, session: _Session,
            result: NodeCheck) -> None:
    """D for the session, whatever happened before; a fresh client when the first one failed.
    A session whose delete is not confirmed is named, so the operator can remove it."""
    if not session.sent_update:
        return
    command = cmd.delete(result.call_id, result.from_tag, result.to_tag)
    for attempt in range(2):
        try:
            use = client if attempt == 0 and client is not None else service.own_client(node)
            try:
                use.call(command)
            finally:
                if use is not client:
                    use.close()
            return
        except ProxyError as err:
            if err.code == cmd.SESSION_NOT_FOUND:
                return  # nothing was made (the U was refused) or it is gone already
            break
        except (TransportError, OSError):
            continue
    result.reason = _join(result.reason, _left_behind(result))
    if result.status == "pass":
        result.status = "fail"


def _left_behind(result: NodeCheck) -> str:
    return (f"its session may remain on the relay: delete it with rtppctl unforce --call-id {result.call_id} "
            f"--from-tag {result.from_tag} --to-tag {result.to_tag} -t {result.node}")


def _join(reason: str | None, more: str) -> str:
    return f"{reason}; {more}" if reason else more


__all__ = ["CheckReport", "CheckSettings", "NodeCheck", "check"]
