"""Numeric bounds and defaults shared by the protocol core, command-line options and config keys.

A number a user gives travels into the relay's fields, socket timeouts and loop counts. Each bound
lives here once, so `--timeout` on the command line and `rtpproxy_timeout` in the config file
refuse the same values (a usage error there, a config error here), and no value can reach the
platform's limits (a 1e10 s socket timeout overflows time_t). Constants only: cheap to import.
"""

#: The module's default `nortpproxy_str`: the SDP line that marks a body as rewritten already.
DEFAULT_MARKER = "a=nortpproxy:yes"

#: Seconds to wait for one reply: at least a millisecond, at most an hour.
MIN_TIMEOUT = 0.001
MAX_TIMEOUT = 3600.0
#: Sends per command on a datagram relay.
MAX_RETRIES = 100
#: Seconds a failed relay stays disabled (a year is "for good" in practice). The module takes any
#: int: 0 or less means a disabled relay is probed again by every selection (protocol.md §2.2).
MAX_DISABLE_SECONDS = 365 * 24 * 3600
MIN_DISABLE_SECONDS = -MAX_DISABLE_SECONDS
#: Set ids are unsigned ints in the module.
MAX_SET_ID = 2**32 - 1
#: Ttls in seconds: RTPProxy keeps them in a C int.
MAX_TTL = 2**31 - 1
#: UDP/TCP ports.
MIN_PORT = 1
MAX_PORT = 65535
#: Seconds a session ledger entry lives unused (`ledger_ttl`): by default longer than any ordinary
#: call, short enough that abandoned calls do not pile up; from a minute to thirty days.
DEFAULT_LEDGER_TTL = 4 * 3600
MIN_LEDGER_TTL = 60
MAX_LEDGER_TTL = 30 * 24 * 3600
#: Seconds between refreshes of a `--watch` view.
MIN_WATCH_SECONDS = 0.2
MAX_WATCH_SECONDS = 3600.0
