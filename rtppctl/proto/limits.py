"""Numeric bounds and defaults shared by the protocol core, command-line options and config keys.

A number a user gives travels into the relay's fields, socket timeouts and loop counts. Each bound
lives here once, so `--timeout` on the command line and `rtpproxy_timeout` in the config file
refuse the same values (a usage error there, a config error here), and no value can reach the
platform's limits (a 1e10 s socket timeout overflows time_t). Each bound says what it bounds and
why; an option borrows no bound made for something else. Constants only: cheap to import.
"""

#: The module's default `nortpproxy_str`: the SDP line that marks a body as rewritten already.
DEFAULT_MARKER = "a=nortpproxy:yes"

#: The largest value of a C int, which the relay keeps its ttls, play counts and media numbers in.
_C_INT_MAX = 2**31 - 1
#: A year in seconds: "for good" in practice, for waits and timeouts that may be long.
_YEAR = 365 * 24 * 3600

#: Seconds to wait for one reply: at least a millisecond, at most an hour.
MIN_TIMEOUT = 0.001
MAX_TIMEOUT = 3600.0
#: Sends per command on a datagram relay.
MAX_RETRIES = 100
#: Seconds a failed relay stays disabled (a year is "for good" in practice). The module takes any
#: int: 0 or less means a disabled relay is probed again by every selection (docs/protocol.md §2.2).
MAX_DISABLE_SECONDS = _YEAR
MIN_DISABLE_SECONDS = -MAX_DISABLE_SECONDS
#: Set ids are unsigned ints in the module.
MAX_SET_ID = 2**32 - 1
#: Ttls in seconds (the engine's -T and -W): at least a second, and a C int in RTPProxy.
MIN_TTL = 1
MAX_TTL = _C_INT_MAX
#: A prompt's play count (P<count>, -1 loops): the relay reads it into a C int (rpcpv1_play.c).
MIN_PLAY_COUNT = -1
MAX_PLAY_COUNT = _C_INT_MAX
#: The `;N` media number of a tag: the first proxied m= line is 1; a C int in the relay.
MAX_MEDIA_NUMBER = _C_INT_MAX
#: UDP/TCP ports.
MIN_PORT = 1
MAX_PORT = 65535
#: Seconds a session ledger entry lives unused (`ledger_ttl`): by default longer than any ordinary
#: call, short enough that abandoned calls do not pile up; from a minute to thirty days.
DEFAULT_LEDGER_TTL = 4 * 3600

#: rtpproxy_disable_tout's default (the module's): seconds a failed relay stays out of selection.
DEFAULT_DISABLE_SECONDS = 60

#: ping --count: version requests per relay.
MAX_PING_COUNT = 10_000
#: lb simulate --calls: generated Call-IDs to spread.
MAX_SIMULATED_CALLS = 100_000_000
#: Seeds and database row ids are signed 64-bit integers (Python's random takes any int; SQL BIGINT).
MAX_INT64 = 2**63 - 1
MIN_LEDGER_TTL = 60
MAX_LEDGER_TTL = 30 * 24 * 3600
#: Seconds between refreshes of a `--watch` view (and between `listen --status-interval` probes).
MIN_WATCH_SECONDS = 0.2
MAX_WATCH_SECONDS = 3600.0

# -- listen

#: Events `listen --count` waits for: a billion, more than a day of a busy relay set (without
#: --count a run has no limit at all).
MAX_LISTEN_EVENTS = 10**9
#: Seconds `listen --duration` runs: a tenth of a second (a shorter run cannot take a connection)
#: to a year.
MIN_LISTEN_SECONDS = 0.1
MAX_LISTEN_SECONDS = _YEAR
#: Relay connections the listener holds at once (`--max-peers`): by default far more relays than
#: a deployment has and far fewer than the usual 1024 file descriptors; at most what a process
#: could have descriptors for.
DEFAULT_LISTEN_PEERS = 256
MAX_LISTEN_PEERS = 65536
#: Commands from `listen --exec` running at once (`--exec-limit`): each is a process.
MAX_EXEC_RUNNING = 64
#: Seconds a command from `listen --exec` may run (`--exec-timeout`).
MIN_EXEC_TIMEOUT = 0.1
MAX_EXEC_TIMEOUT = 3600.0

#: `check`: RTP packets per direction. The meter maps 16-bit sequence numbers back to packets
#: through what was sent, so a run must stay well below 65536 packets.
MIN_CHECK_PACKETS = 1
MAX_CHECK_PACKETS = 10_000
DEFAULT_CHECK_PACKETS = 50
#: `check --ptime`: milliseconds of audio per packet (G.711: 8 bytes a millisecond, so 10 to 200
#: ms is 80 to 1600 bytes, one datagram each), as SDP's a=ptime allows in practice.
MIN_CHECK_PTIME_MS = 10
MAX_CHECK_PTIME_MS = 200
DEFAULT_CHECK_PTIME_MS = 20
#: `check --late`: a packet whose one-way latency is above this is late (ITU-T G.114's 150 ms
#: one-way budget for good conversational quality).
DEFAULT_CHECK_LATE_MS = 150.0
MAX_CHECK_LATE_MS = 60_000.0
#: `check --max-loss`: a direction losing more than this percentage fails the node.
DEFAULT_CHECK_MAX_LOSS_PCT = 5.0
#: `check --deadline`: the whole run; the default stays under Nagios's usual 60 s plugin timeout.
DEFAULT_CHECK_DEADLINE = 45.0
MIN_CHECK_DEADLINE = 1.0
MAX_CHECK_DEADLINE = 3600.0
#: `check --parallel`: nodes checked at once (each one thread and four UDP sockets).
DEFAULT_CHECK_PARALLEL = 16
MAX_CHECK_PARALLEL = 256

#: `metrics --budget`: seconds one scrape may take. The default stays well inside Prometheus's
#: default scrape timeout (10 s); at least a tenth of a second (a command then waits 25 ms a
#: send, still many loopback round trips), at most five minutes (a scrape is not a soak test).
DEFAULT_SCRAPE_BUDGET = 5.0
MIN_SCRAPE_BUDGET = 0.1
MAX_SCRAPE_BUDGET = 300.0

#: Requests in flight per node in the pipelined engine (`raw --window`, `load`, `batch`). The
#: engine's UDP control socket has a 32 KB receive buffer and drops datagrams past about 24-30
#: outstanding requests (docs/protocol.md, engine notes): 16 stays below that.
DEFAULT_WINDOW = 16
MAX_WINDOW = 256

#: `load`'s bounds and defaults.
#: --calls: calls one run makes (a million calls at 10k/s is 100 s; a hundred million is a soak).
LOAD_MAX_CALLS = 100_000_000
LOAD_DEFAULT_CALLS = 1000
#: --duration: seconds new calls are started (a tenth of a second to a year).
LOAD_MIN_DURATION = 0.1
LOAD_MAX_DURATION = 365 * 24 * 3600.0
#: --rate: calls started per second in the open loop.
LOAD_MIN_RATE = 0.1
LOAD_MAX_RATE = 1_000_000.0
#: --hold: seconds a session is held between its answer and its delete (a day at most).
LOAD_MAX_HOLD = 86_400.0
#: --workers: processes, each with its own engine and cookie prefix.
LOAD_MAX_WORKERS = 64
#: --interval: seconds between progress objects.
LOAD_DEFAULT_INTERVAL = 1.0
LOAD_MIN_INTERVAL = 0.1
LOAD_MAX_INTERVAL = 3600.0
#: --find-max: the first rate, the rate added per step, the steps at most, seconds per step, and
#: what a step must stay under to pass: its worst command's p99 and its failed calls in percent.
LOAD_DEFAULT_START_RATE = 100.0
LOAD_DEFAULT_STEP = 100.0
LOAD_DEFAULT_STEPS = 20
LOAD_MAX_STEPS = 1000
LOAD_DEFAULT_STEP_SECONDS = 5.0
LOAD_DEFAULT_MAX_P99_MS = 50.0
LOAD_MAX_P99_MS = 3_600_000.0
LOAD_DEFAULT_MAX_ERRORS_PCT = 0.1
