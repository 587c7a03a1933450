"""The Prometheus text exposition of rtppctl's readings, built with prometheus-client, and the small
HTTP server `metrics --serve` runs.

`relay_exposition` turns one scrape of `metrics` (ops/metrics.py: a reading per node) into the
exposition; `check_exposition` does the same for the object `check --json` prints. Every metric
name is defined here and listed in the README. Label values are node urls and set ids from the
configuration, health states and capability dates from rtppctl's own tables, and numbers: nothing
a relay writes reaches a label except through a number. prometheus-client escapes them anyway.

`MetricsServer` speaks HTTP on threads of its own (`http.server.ThreadingHTTPServer`) and speaks
to no relay: a request for /metrics asks the owner's thread for a scrape (`next_scrape`, `answer`)
and waits for it, bounded, so the relay service and its state store stay on one thread and
overlapping requests share one scrape. The server binds loopback unless told otherwise, holds a
bounded number of connections, gives a slow client a bounded time, and logs requests only to the
`log` it is given (-v).
"""

from __future__ import annotations

import errno
import queue
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from rtppctl.proto.errors import ConfigError, InputError
from rtppctl.proto.text import clip, ip_literal

#: Every metric of a node of `metrics` starts with this.
RELAY_PREFIX = "rtppctl_relay_"
#: Of `check --prometheus`.
CHECK_PREFIX = "rtppctl_check_"
#: The relay's global statistic that is a duration in seconds (a double), not a counter.
_DURATION_STAT = "total_duration"
#: `--serve` without a host binds this: the exporter is not on the network unless asked.
DEFAULT_SERVE_HOST = "127.0.0.1"
#: Seconds a client may take to send its request (and to read the answer): a slow or stuck client
#: holds its thread no longer.
REQUEST_TIMEOUT = 10.0
#: Connections served at once; more are closed at once (a Prometheus server needs one).
MAX_CONNECTIONS = 64
_TEXT = "text/plain; charset=utf-8"
_INDEX = (b"rtppctl metrics exporter\n\n"
          b"The relays as Prometheus metrics: GET /metrics (each request asks every relay, within the budget).\n")


# -- metrics --------------------------------------------------------------------------------------


class _Families:
    """A collector that yields metric families made already (a fresh registry per exposition)."""

    def __init__(self, families: list[Any]) -> None:
        self._families = families

    def collect(self) -> Iterable[Any]:
        return iter(self._families)


def _registry(families: list[Any]) -> Any:
    from prometheus_client import CollectorRegistry  # noqa: PLC0415

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return registry


def _labels(node: str, set_id: int | None) -> list[str]:
    # A --target belongs to no set: its set label is empty, which PromQL reads as absent.
    return [node, "" if set_id is None else str(set_id)]


def _stat_families() -> dict[str, Any]:
    """A counter per integer statistic of G, named as the relay names it; total_duration a gauge."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily  # noqa: PLC0415
    from rtppctl.proto import command as cmd  # noqa: PLC0415

    families: dict[str, Any] = {}
    for name in cmd.GLOBAL_STATS:
        if name == _DURATION_STAT:
            families[name] = GaugeMetricFamily(f"{RELAY_PREFIX}total_duration_seconds",
                                               "Seconds of every session the relay has ended, added up (G total_duration).",
                                               labels=["node", "set"])
        else:
            families[name] = CounterMetricFamily(f"{RELAY_PREFIX}{name}", f"The relay's own counter {name} (G).",
                                                 labels=["node", "set"])
    return families


def relay_families(scrape: Any) -> list[Any]:
    """The metric families of one scrape (`ops.metrics.Scrape`). A node that is down has only
    `up` 0, its health, weight and ledger sessions: no stale counters."""
    from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily  # noqa: PLC0415
    from rtppctl.proto import command as cmd  # noqa: PLC0415
    from rtppctl.relays.health import State  # noqa: PLC0415

    labels = ["node", "set"]
    up = GaugeMetricFamily(f"{RELAY_PREFIX}up", "1 when the relay answered V, VF, I and G within the scrape's budget, else 0.",
                           labels=labels)
    health = GaugeMetricFamily(f"{RELAY_PREFIX}health_state",
                               "The relay's health in the state store, one series per state, 1 for the one it is in "
                               "(not for a --target).", labels=[*labels, "state"])
    weight = GaugeMetricFamily(f"{RELAY_PREFIX}weight", "The relay's weight in its set.", labels=labels)
    rtt = GaugeMetricFamily(f"{RELAY_PREFIX}probe_rtt_seconds", "Round trip of the probe's V request, retransmits included.",
                            labels=labels)
    info = InfoMetricFamily(f"{RELAY_PREFIX[:-1]}",
                            "The relay's protocol version (V) and the dates of the optional capabilities it has (VF), "
                            "comma-separated.", labels=labels)
    active = GaugeMetricFamily(f"{RELAY_PREFIX}sessions_active", "Sessions the relay has now (I: active sessions).",
                               labels=labels)
    stats = _stat_families()
    ledger = GaugeMetricFamily("rtppctl_ledger_sessions", "Calls rtppctl's session ledger holds on the relay.", labels=labels)
    states = [state.value for state in State]
    for node in scrape.nodes:
        where = _labels(node.node, node.set_id)
        up.add_metric(where, 1 if node.up else 0)
        if node.state is not None:
            for state in states:
                health.add_metric([*where, state], 1 if node.state == state else 0)
        weight.add_metric(where, node.weight)
        ledger.add_metric(where, node.ledger_sessions)
        if not node.up:
            continue
        if node.rtt_ms is not None:
            rtt.add_metric(where, round(node.rtt_ms / 1000.0, 6))
        dates = sorted(cmd.capability(name).date for name in node.capabilities)
        info.add_metric(where, {"version": "" if node.version is None else str(node.version), "capabilities": ",".join(dates)})
        if node.sessions_active is not None:
            active.add_metric(where, node.sessions_active)
        for name, value in node.stats.items():
            family = stats.get(name)
            if family is not None:
                family.add_metric(where, value)
    scraped = [
        _single("rtppctl_scrape_duration_seconds", "Seconds the scrape took.", scrape.elapsed_s),
        _single("rtppctl_scrape_nodes", "Relays that answered the scrape.", scrape.answered),
    ]
    return [up, health, weight, rtt, info, active, *stats.values(), ledger, *scraped]


def relay_exposition(scrape: Any, encoder: Callable[[Any], bytes] | None = None) -> bytes:
    """One scrape as the text exposition (0.0.4), or in what `encoder` writes (an encoder from
    prometheus-client's `choose_encoder`: OpenMetrics for a client that asks for it)."""
    if encoder is None:
        from prometheus_client import generate_latest as encoder  # noqa: PLC0415
    return encoder(_registry(relay_families(scrape)))


def check_families(report: Mapping[str, Any], now: float) -> list[Any]:
    """The metric families of one `check` run: its JSON object (`check --json`), run at `now`
    (seconds since the epoch). Values that are null are left out."""
    from prometheus_client.core import GaugeMetricFamily  # noqa: PLC0415

    node_labels = ["node", "set"]
    direction_labels = [*node_labels, "direction"]

    def gauge(name: str, text: str, labels: list[str] | None = None) -> Any:
        return GaugeMetricFamily(CHECK_PREFIX + name, text, labels=labels)

    up = gauge("up", "1 when the relay passed the check, else 0.", node_labels)
    rtt = gauge("rtt_seconds", "Round trip of the probe's V request.", node_labels)
    packets = {key: gauge(f"packets_{key}", f"RTP packets {words}, per direction.", direction_labels) for key, words in (
        ("sent", "sent"), ("received", "received"), ("lost", "lost"), ("duplicates", "received more than once"),
        ("reordered", "received out of order"), ("late", "received later than --late"),
        ("corrupted", "received with a payload other than the one sent"))}
    loss = gauge("loss_ratio", "Packets lost over packets sent (0 to 1), per direction.", direction_labels)
    latency = {stat: gauge(f"latency_{stat}_seconds", f"One-way latency, {words}, per direction.", direction_labels)
               for stat, words in (("min", "the least"), ("avg", "the average"), ("p99", "the 99th percentile"),
                                   ("max", "the most"))}
    jitter = gauge("jitter_seconds", "RFC 3550 interarrival jitter, per direction.", direction_labels)
    latched = gauge("latched", "1 when the relay latched to the sender's real source port, per direction.", direction_labels)
    for node in report.get("nodes") or []:
        where = _labels(str(node.get("node")), node.get("set_id"))
        up.add_metric(where, 1 if node.get("status") == "pass" else 0)
        if node.get("rtt_ms") is not None:
            rtt.add_metric(where, node["rtt_ms"] / 1000.0)
        for direction in node.get("directions") or []:
            labels = [*where, str(direction.get("direction"))]
            for key, family in packets.items():
                if direction.get(key) is not None:
                    family.add_metric(labels, direction[key])
            if direction.get("loss_pct") is not None:
                loss.add_metric(labels, direction["loss_pct"] / 100.0)
            for stat, family in latency.items():
                value = (direction.get("latency_ms") or {}).get(stat)
                if value is not None:
                    family.add_metric(labels, value / 1000.0)
            if direction.get("jitter_ms") is not None:
                jitter.add_metric(labels, direction["jitter_ms"] / 1000.0)
            if direction.get("latched") is not None:
                latched.add_metric(labels, 1 if direction["latched"] else 0)
    run = []
    if report.get("ok") is not None:
        run.append(_single(CHECK_PREFIX + "success", "1 when every relay passed, else 0.", 1 if report["ok"] else 0))
    if report.get("elapsed_s") is not None:
        run.append(_single(CHECK_PREFIX + "duration_seconds", "Seconds the check took.", report["elapsed_s"]))
    run.append(_single(CHECK_PREFIX + "last_run_timestamp_seconds", "When the check ran, in seconds since the epoch.", now))
    return [up, rtt, *packets.values(), loss, *latency.values(), jitter, latched, *run]


def _single(name: str, text: str, value: float) -> Any:
    """A gauge without labels."""
    from prometheus_client.core import GaugeMetricFamily  # noqa: PLC0415

    return GaugeMetricFamily(name, text, value=value)


def check_exposition(report: Mapping[str, Any], now: float) -> str:
    """The object `check --json` prints, run at `now`, as the text exposition (for node-exporter's
    textfile collector)."""
    from prometheus_client import generate_latest  # noqa: PLC0415

    return generate_latest(_registry(check_families(report, now))).decode("utf-8")


# -- --serve --------------------------------------------------------------------------------------


def parse_serve_address(text: str) -> tuple[str, int]:
    """`PORT`, `IPv4:PORT` or `[IPv6]:PORT` -> (host, port); the host defaults to loopback.
    Numeric addresses only (a name is not resolved); port 0 asks for any free port. InputError
    naming what is wrong otherwise."""
    shown = repr(clip(text, 60)) if isinstance(text, str) else repr(text)
    forms = "write PORT, IPv4:PORT or [IPv6]:PORT, e.g. 9100, 0.0.0.0:9100 or [::1]:9100"
    if not isinstance(text, str) or not text or any(char.isspace() for char in text):
        raise InputError(f"--serve {shown}: {forms}")
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        address = ip_literal(host)
        if not sep or address is None or address.version != 6:
            raise InputError(f"--serve {shown}: {forms}", "an IPv6 address goes in brackets, then :PORT")
    elif ":" in text:
        host, _, port = text.rpartition(":")
        address = ip_literal(host)
        if address is None or address.version != 4:
            hint = ("an IPv6 address goes in brackets: [::1]:9100" if ip_literal(host) is not None or ":" in host
                    else "give a numeric address (names are not resolved); 0.0.0.0 is every IPv4 address")
            raise InputError(f"--serve {shown}: {forms}", hint)
    else:
        host, port = DEFAULT_SERVE_HOST, text
    if not (port.isascii() and port.isdigit()) or len(port) > 5 or int(port) > 65535:
        raise InputError(f"--serve {shown}: the port must be 0 to 65535 (0: any free port)")
    return host, int(port)


def http_url(host: str, port: int, path: str = "/metrics") -> str:
    return f"http://[{host}]:{port}{path}" if ":" in host else f"http://{host}:{port}{path}"


class _Request:
    """A scrape that HTTP requests wait for: every request that comes before it is answered
    gets the same readings."""

    __slots__ = ("done", "scrape", "error", "status")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.scrape: Any = None
        self.error = "shutting down"
        self.status = 503


class _Handler(BaseHTTPRequestHandler):
    server_version = "rtppctl"
    sys_version = ""
    #: Seconds a client may take to send its request, and each write of the answer.
    timeout = REQUEST_TIMEOUT
    server: _Server

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._metrics()
        elif path == "/":
            self._send(200, _TEXT, _INDEX)
        else:
            self._send(404, _TEXT, b"not found: the metrics are at /metrics\n")

    def _metrics(self) -> None:
        from prometheus_client.exposition import choose_encoder  # noqa: PLC0415

        owner = self.server.owner
        request = owner.request_scrape()
        if not request.done.wait(owner.wait):
            self._send(503, _TEXT, b"the scrape did not end in time\n")
            return
        if request.scrape is None:
            self._send(request.status, _TEXT, (request.error + "\n").encode("utf-8", "backslashreplace"))
            return
        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
        self._send(200, content_type, relay_exposition(request.scrape, encoder))

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        log = self.server.owner.log
        if log is not None:
            log(f"http {self.address_string()}: {format % args}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    #: Closing the server does not wait for the connections still open (a slow client's).
    block_on_close = False
    owner: MetricsServer

    def server_bind(self) -> None:
        # HTTPServer's own looks the host's name up (getfqdn), which may wait on DNS: not needed.
        import socketserver  # noqa: PLC0415

        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.owner.slots.acquire(blocking=False):
            self.owner.note(f"http {client_address[0]}: refused, {MAX_CONNECTIONS} connections already")
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.owner.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.owner.slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away or was too slow: one line with -v, never a traceback.
        exc = sys.exc_info()[1]
        self.owner.note(f"http {client_address[0]}: {type(exc).__name__}: {exc}")


class _Server6(_Server):
    address_family = socket.AF_INET6


class MetricsServer:
    """GET /metrics on `host`:`port` (a thread of its own); the owner runs the scrapes. Use as a
    context manager: it binds on entry (ConfigError when it cannot) and stops on exit."""

    def __init__(self, host: str, port: int, *, wait: float, log: Callable[[str], None] | None = None) -> None:
        self.host = host
        self.port = port
        #: Seconds a request waits for its scrape.
        self.wait = wait
        self.log = log
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._requests: queue.Queue[_Request] = queue.Queue()
        self._lock = threading.Lock()
        #: The scrape requests join until it is answered.
        self._pending: _Request | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> MetricsServer:
        kind = _Server6 if ":" in self.host else _Server
        try:
            server = kind((self.host, self.port), _Handler)
        except OSError as exc:
            raise self._bind_error(exc) from None
        server.owner = self
        self._server = server
        self.port = int(server.server_address[1])
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="rtppctl-metrics-http", daemon=True)
        self._thread.start()
        return self

    def _bind_error(self, exc: OSError) -> ConfigError:
        where = http_url(self.host, self.port, "")
        reason = exc.strerror or str(exc)
        if exc.errno == errno.EADDRINUSE:
            return ConfigError(f"cannot serve metrics on {where}: the port is busy ({reason})",
                               "stop the program that listens there, or give --serve another port")
        if exc.errno == errno.EADDRNOTAVAIL:
            return ConfigError(f"cannot serve metrics on {where}: not an address of this host ({reason})")
        if exc.errno == errno.EACCES:
            return ConfigError(f"cannot serve metrics on {where}: {reason}",
                               "ports below 1024 need privileges: give --serve a higher port")
        return ConfigError(f"cannot serve metrics on {where}: cannot bind ({reason})")

    @property
    def url(self) -> str:
        return http_url(self.host, self.port)

    def note(self, text: str) -> None:
        if self.log is not None:
            self.log(text)

    # -- the owner's side and the requests' side of a scrape --------------------------------------

    def request_scrape(self) -> _Request:
        """The scrape an HTTP request waits for: the one not answered yet, else a new one."""
        with self._lock:
            if self._pending is None:
                self._pending = _Request()
                self._requests.put(self._pending)
            return self._pending

    def next_scrape(self, timeout: float) -> _Request | None:
        """A scrape requests wait for, within `timeout` seconds; None when none came."""
        try:
            return self._requests.get(timeout=timeout)
        except queue.Empty:
            return None

    def answer(self, request: _Request, scrape: Any, error: str = "", *, status: int = 503) -> None:
        """Hand `scrape` (None: `error`, answered with `status`) to every request waiting for it."""
        with self._lock:
            if self._pending is request:
                self._pending = None
        request.scrape, request.error, request.status = scrape, error, status
        request.done.set()

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            pending.done.set()  # "shutting down": 503
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


__all__ = ["DEFAULT_SERVE_HOST", "MetricsServer", "check_exposition", "check_families", "http_url",
           "parse_serve_address", "relay_exposition", "relay_families"]
