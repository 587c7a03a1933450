"""The error tree, the exit codes, and the table of RTPProxy `E<n>` reply codes.

Errors are split by whose fault they are, so the command line can say what to do next:
`InputError` (the user's data, found before anything is sent), `ProxyError` (the relay answered
`E<n>`), `TransportError` (nothing usable came back) and `ConfigError` (config file or database).
Each carries a one-line message and an optional hint; the CLI prints both and exits with the code
of the class. This module is the only place that knows the E-code table and the exit codes.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple


class ExitCode(IntEnum):
    """Process exit codes, documented in the README's table (checked by tests/cli/test_docgen.py)."""

    OK = 0
    UNEXPECTED = 1  # a bug: traceback only with -vv
    USAGE = 2  # bad command line (Click/Typer)
    PROXY_ERROR = 3  # the relay answered E<n>, or port 0 to L (no session)
    TRANSPORT = 4  # timeout, unreachable relay, no relay available
    CONFIG = 5  # config file or database error
    INPUT = 6  # bad input data: SDP, flags, node spec, token, SIP message, prompt file
    INTERRUPTED = 130


#: What each exit code means, in the words the README table, the man page and `--help` use.
#: One place: a test keeps the README's table equal to this one.
EXIT_MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "success",
    ExitCode.UNEXPECTED: "unexpected failure (a bug: traceback only with -vv)",
    ExitCode.USAGE: "usage error: unknown command or option, missing or invalid argument, number out of range",
    ExitCode.PROXY_ERROR: "the relay answered an error E<n>, or has no session for the call",
    ExitCode.TRANSPORT: "timeout, refused or unreachable relay, no relay available",
    ExitCode.CONFIG: "config file or database error",
    ExitCode.INPUT: "bad input data (SDP, flags, node spec, token, SIP message, prompt file, output path)",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C; for `listen`, `check`, `load`, `batch` and `metrics --serve`, SIGTERM too)",
}


class RtppctlError(Exception):
    """Base of every error rtppctl raises on purpose."""

    exit_code: ExitCode = ExitCode.UNEXPECTED

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class InputError(RtppctlError):
    """Bad data from the user or a file; raised before anything is sent to a relay."""

    exit_code = ExitCode.INPUT


class ConfigError(RtppctlError):
    """A config file, environment setting or database that cannot be used."""

    exit_code = ExitCode.CONFIG


class TransportError(RtppctlError):
    """No usable reply: timeout, connection refused, permission denied, no relay available."""

    exit_code = ExitCode.TRANSPORT


class ReplyTimeout(TransportError):
    """The relay did not answer within the timeout, retries included (no reply, half a reply, or no
    connection accepted): a relay that is slow, overloaded or gone silent, told apart from one that
    refused or went away (`load` counts them apart)."""


class ErrorCode(NamedTuple):
    """One row of RTPProxy's `E<n>` table."""

    code: int
    #: RTPProxy's own name for the code (rtpp_command_ecodes.h), e.g. "SESUNKN".
    name: str
    #: What it means, in an operator's words.
    meaning: str
    #: What to check or do next; empty when there is nothing useful to say.
    hint: str = ""


def _table(*rows: ErrorCode) -> dict[int, ErrorCode]:
    return {row.code: row for row in rows}


#: Modern RTPProxy error codes (docs/protocol.md §12.4).
ERROR_CODES: dict[int, ErrorCode] = _table(
    ErrorCode(0, "CMDUNKN", "unknown command letter"),
    ErrorCode(1, "PARSE_NARGS", "wrong number of arguments",
              "notify arguments are accepted on U only"),
    ErrorCode(2, "PARSE_MODS", "modifiers on a command that takes none"),
    ErrorCode(3, "PARSE_SUBC", "bad or unsupported sub-command, or unknown module",
              "DTMF needs the catch_dtmf module loaded in the relay"),
    ErrorCode(5, "PARSE_1", "general syntax error (missing cookie, too many arguments, NUL byte)"),
    ErrorCode(6, "PARSE_2", "bad N modifier, or p on R"),
    ErrorCode(7, "PARSE_3", "unknown N/R/C modifier"),
    ErrorCode(8, "PARSE_4", "unknown D modifier"),
    ErrorCode(9, "PARSE_5", "unknown G modifier"),
    ErrorCode(10, "PARSE_10", "bad URL-encoding in the notify tag"),
    ErrorCode(11, "PARSE_11", "E (external interface) without bridge mode",
              "the relay must run with -l ADDR_A/ADDR_B for the i/e flags"),
    ErrorCode(12, "PARSE_12", "I (internal interface) without bridge mode",
              "the relay must run with -l ADDR_A/ADDR_B for the i/e flags"),
    ErrorCode(13, "PARSE_13", "Z ptime out of 1..999"),
    ErrorCode(14, "PARSE_14", "bad or duplicate codec list"),
    ErrorCode(15, "PARSE_15", "bad local address syntax in l",
              "IPv6 local addresses need the 6 modifier and brackets, e.g. U6l[::1]"),
    ErrorCode(16, "PARSE_16", "bad R address syntax"),
    ErrorCode(17, "PARSE_6", "bad P (play) count"),
    ErrorCode(18, "PARSE_7", "bad I modifier"),
    ErrorCode(19, "PARSE_8", "bad Q modifier"),
    ErrorCode(25, "RTOOBIG_1", "G reply too big", "ask for fewer statistics at once"),
    ErrorCode(26, "RTOOBIG_2", "Q reply too big", "ask for fewer counters at once"),
    ErrorCode(31, "INVLARG_1", "invalid or unknown local address or label in l"),
    ErrorCode(32, "INVLARG_2", "no local address reaches the R address"),
    ErrorCode(35, "INVLARG_5", "unknown U/L modifier, or P with 'session' but no codecs for the stream",
              "the relay does not know this modifier; check the flags and the relay's capabilities"),
    ErrorCode(36, "INVLARG_6", "no local address of the stream's family",
              "an IPv6 stream needs the relay to run with -6"),
    ErrorCode(37, "INVLARG_7", "remote address is not a valid numeric IP"),
    ErrorCode(50, "SESUNKN", "session or tags not found",
              "check the call-id and tags, and that the same relay set is used"),
    ErrorCode(60, "PLRFAIL", "player could not start (prompt file missing for every codec)",
              "the relay opens PROMPT.<payload type>; check the path on the relay's host"),
    ErrorCode(62, "QRYFAIL", "unknown Q counter name"),
    ErrorCode(65, "CPYFAIL", "copy failed"),
    ErrorCode(68, "STSFAIL", "unknown G statistic name"),
    ErrorCode(71, "LSTFAIL_1", "cannot allocate ports for an existing session",
              "the relay's port range is exhausted"),
    ErrorCode(72, "LSTFAIL_2", "cannot allocate ports for a new session",
              "the relay's port range or file descriptors are exhausted"),
    ErrorCode(75, "NSOFF", "notify arguments given but the relay has no notify target (-n)"),
    *(ErrorCode(n, f"NOMEM_{n - 80}", "relay out of memory") for n in range(81, 90)),
    ErrorCode(98, "OVERLOAD", "relay overloaded, command refused", "try another relay or later"),
    ErrorCode(99, "SLOWSHTDN", "relay shutting down, new sessions refused", "use another relay"),
)


def describe_error_code(code: int) -> ErrorCode:
    """Row for `code`; an unknown code still gets a row so every `E<n>` decodes."""
    return ERROR_CODES.get(code) or ErrorCode(code, "UNKNOWN", f"error code {code} not known to rtppctl")


#: Error codes the module takes for a broken relay (§2.2, from legacy RTPProxy's internal
#: failures): an offer answered with one disables the node and goes to the next. Today's RTPProxy
#: uses them for parse errors (§15.2), which rtppctl's checks keep from being sent.
NODE_FAILURE_CODES = frozenset({7, 8, 9, 10})


class ProxyError(RtppctlError):
    """The relay answered `E<n>`."""

    exit_code = ExitCode.PROXY_ERROR

    def __init__(self, code: int, command: str | None = None, node: str | None = None) -> None:
        self.code = code
        self.error = describe_error_code(code)
        self.command = command
        self.node = node
        where = f" from {node}" if node else ""
        verb = f" to {command.split()[0]!r}" if command and command.split() else ""
        super().__init__(
            f"relay answered E{code} ({self.error.name}: {self.error.meaning}){verb}{where}",
            self.error.hint or None,
        )

    @property
    def name(self) -> str:
        return self.error.name

    @property
    def meaning(self) -> str:
        return self.error.meaning


class MalformedReply(TransportError):
    """The relay's reply could not be understood (bad UTF-8, NUL, wrong shape or numbers)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
