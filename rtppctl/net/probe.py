"""Probing many relays at once: one channel and one thread per node, answers in the nodes' order.

A datagram relay that does not answer costs its whole timeout x retries, so probing the nodes of a
set one after another adds those waits up. `probe_nodes` runs one probe per node concurrently (at
most `MAX_PARALLEL` at a time), each over a channel of its own, and returns one `ProbeResult` per
node in the order given. The rule it keeps: one node's failure never raises. A result carries
either what the node answered or the `TransportError`/`ProxyError` the node caused; only a fault
that is no node's doing (a bug, a bad option) reaches the caller, after every probe has ended.

`module_probe` is the probe the OpenSIPS module runs on every node (docs/protocol.md §2.1), built with the
protocol core's encoders and decoders; `supported_capabilities` is its `VF` part on its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from rtppctl.proto import command as cmd
from rtppctl.proto.errors import MalformedReply, ProxyError, TransportError

if TYPE_CHECKING:
    from rtppctl.net.channel import Trace
    from rtppctl.net.client import RelayClient
    from rtppctl.proto.url import NodeSpec

T = TypeVar("T")

#: Nodes probed at the same time. Each waits on a socket, not the CPU; the bound keeps the number
#: of threads and sockets modest for a large set while 16 dead nodes still cost one timeout.
MAX_PARALLEL = 16


@dataclass(frozen=True)
class RelayCapabilities:
    """What the module's probe (docs/protocol.md §2.1) learned from one relay."""

    #: The node's url.
    node: str
    #: The answer to `V`: 20040107 for every RTPProxy.
    version: int
    #: Module bit names (REPACK, CODECS, ...) of the optional capabilities the relay has, in the
    #: order the module asks for them (`MODULE_PROBE_ORDER`).
    capabilities: tuple[str, ...]
    #: Round trip of the `V` request in milliseconds, retransmits included.
    rtt_ms: float


@dataclass(frozen=True)
class ProbeResult(Generic[T]):
    """One node's outcome: its answer, or the error it caused; never both."""

    node: NodeSpec
    #: What the probe returned; None when it failed.
    answer: T | None
    #: Why the probe failed: no usable reply (TransportError, MalformedReply among them) or an
    #: `E<n>` reply (ProxyError); None when it succeeded.
    error: TransportError | ProxyError | None
    #: Wall time of the whole probe in milliseconds, opening the channel included.
    elapsed_ms: float

    @property
    def ok(self) -> bool:
        return self.error is None


def supported_capabilities(client: RelayClient, dates: Iterable[str] = cmd.MODULE_PROBE_ORDER) -> tuple[str, ...]:
    """Names of the capabilities among `dates` the relay answers `VF <date>` with 1, in `dates`
    order; asked in one pipelined batch where the transport allows. An `E<n>` answer means absent,
    as in the module."""
    dates = list(dates)
    answers = client.replies([cmd.version_feature(date) for date in dates])
    return tuple(
        cmd.capability(date).name for date, answer in zip(dates, answers, strict=True) if cmd.parse_capability(answer)
    )


def module_probe(client: RelayClient) -> RelayCapabilities:
    """The module's probe (§2.1): `V` must be 20040107 and `VF 20050322` must be 1, else
    MalformedReply (the node is no usable RTPProxy); then one `VF` per optional capability."""
    exchange = client.exchange(cmd.version())
    base = cmd.parse_version(exchange.reply)
    url = client.node.url
    if base != int(cmd.BASE_VERSION):
        raise MalformedReply(f"{url} answered V with {base}, not {cmd.BASE_VERSION}: not an RTPProxy")
    dates = [cmd.EXTENDED_VERSION, *cmd.MODULE_PROBE_ORDER]
    found = supported_capabilities(client, dates)
    extended = cmd.capability(cmd.EXTENDED_VERSION).name
    if extended not in found:
        raise MalformedReply(f"{url} does not support the extended protocol (VF {cmd.EXTENDED_VERSION})")
    return RelayCapabilities(url, base, tuple(name for name in found if name != extended), exchange.rtt_ms)


def probe_nodes(
    nodes: Sequence[NodeSpec],
    probe: Callable[[RelayClient], T] = module_probe,  # type: ignore[assignment] - T is RelayCapabilities then
    *,
    timeout: float = 1.0,
    retries: int = 5,
    trace: Trace | None = None,
    connect: Callable[[NodeSpec], RelayClient] | None = None,
    parallel: int = MAX_PARALLEL,
) -> list[ProbeResult[T]]:
    """Run `probe` on every node at once, each over its own client; one result per node, in order.

    The client comes from `connect(node)` when given (the command line's, which adds its notes
    and trace), else from `RelayClient.open` with `timeout`, `retries` and `trace`; it is closed
    when its probe ends. At most `parallel` probes run at a time. A TransportError or ProxyError
    from opening or probing a node becomes that node's result; anything else raised in a probe
    is re-raised here once all probes have ended (the first in node order).
    """
    nodes = list(nodes)
    if connect is None:
        from rtppctl.net.client import RelayClient  # noqa: PLC0415

        def connect(node: NodeSpec) -> RelayClient:
            return RelayClient.open(node, timeout=timeout, retries=retries, trace=trace)

    results: list[ProbeResult[T] | None] = [None] * len(nodes)
    faults: list[BaseException | None] = [None] * len(nodes)
    workers = max(1, min(parallel, len(nodes)))
    if workers == 1:
        # One node (a one-shot command) or no concurrency asked for: no thread to start.
        for index, node in enumerate(nodes):
            results[index] = _probe_one(node, probe, connect)
        return results  # type: ignore[return-value] - every slot is filled

    pending = iter(range(len(nodes)))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                index = next(pending, None)
            if index is None:
                return
            try:
                results[index] = _probe_one(nodes[index], probe, connect)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller below
                faults[index] = exc

    # Daemon threads: on Ctrl-C the caller's join is interrupted and the process may exit without
    # waiting for probes that still sit out their timeouts.
    threads = [threading.Thread(target=work, name=f"rtppctl-probe-{n}", daemon=True) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for fault in faults:
        if fault is not None:
            raise fault
    return results  # type: ignore[return-value] - every slot is filled once no fault was raised


def _probe_one(
    node: NodeSpec, probe: Callable[[RelayClient], T], connect: Callable[[NodeSpec], RelayClient]
) -> ProbeResult[T]:
    started = time.perf_counter()
    try:
        with connect(node) as client:
            answer = probe(client)
    except (TransportError, ProxyError) as err:
        return ProbeResult(node, None, err, (time.perf_counter() - started) * 1000.0)
    return ProbeResult(node, answer, None, (time.perf_counter() - started) * 1000.0)
