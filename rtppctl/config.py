"""The TOML configuration: where it is looked up, what each key means, and its defaults.

The keys are exactly the OpenSIPS rtpproxy module's parameters, flat at the top level, so an operator
can carry `modparam("rtpproxy", KEY, VALUE)` lines over one for one; the defaults are the module's
(docs/protocol.md §1.5). One deliberate difference: with no `rtpproxy_sock` (and no `db_url`) the module
refuses to start, while rtppctl talks to the local embedded relay on udp:127.0.0.1:22222. An optional
`[embedded]` table holds the defaults of `rtppctl embedded start`.

Lookup order: `--config FILE`, then `$RTPPCTL_CONFIG`, then `$XDG_CONFIG_HOME/rtppctl/config.toml`
(~/.config by default), then `/etc/rtppctl/config.toml`. The first two must exist when given; the
last two are optional, and without any file every key has its default. The rule this module keeps:
a value that loads is a value the rest of rtppctl can use as it is; anything else is a `ConfigError`
naming the file, the key and what was expected. `tomllib` and `tomli_w` are imported only when a
file is read or written, so commands without a config file do not pay for them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from rtppctl.files import user_dir
from rtppctl.proto import limits
from rtppctl.proto.errors import ConfigError, InputError
from rtppctl.proto.text import ip_literal

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from rtppctl.proto.url import NodeSpec

#: The system-wide file, read when no other is found (module-level so tests can point it elsewhere).
SYSTEM_CONFIG = Path("/etc/rtppctl/config.toml")
ENV_VAR = "RTPPCTL_CONFIG"
DEFAULT = "default"


#: The embedded relay's control socket unless told otherwise; also the node rtppctl talks to when
#: no `rtpproxy_sock` is configured (config.py), so the two always agree.
DEFAULT_CONTROL_SOCKET = "udp:127.0.0.1:22222"
#: The engine's -l: media is relayed on loopback only unless the operator opens it up.
DEFAULT_LISTEN = "127.0.0.1"
#: The engine's -6: IPv6 media on loopback too, so IPv6 SDP works out of the box. Left out (and
#: said so) where this host cannot bind it (rtppctl.embedded.start).
DEFAULT_LISTEN6 = "::1"
#: The module's generated_sdp_port_min/_max defaults (§1.5), and the engine's -m/-M: one range,
#: easy to recognise.
DEFAULT_PORT_MIN = 35000
DEFAULT_PORT_MAX = 65000


@dataclass
class EmbeddedOptions:
    """How to run the embedded relay; each field maps to one of RTPProxy's own switches."""

    #: Control sockets (-s, repeatable), e.g. "udp:127.0.0.1:22222", "tcp:127.0.0.1:22223", "unix:/run/r.sock".
    control: list[str] = field(default_factory=lambda: [DEFAULT_CONTROL_SOCKET])
    #: Address media is relayed on (-l): "ADDR", "ADDR=ADVERTISED" or "ADDR_A/ADDR_B" for bridging.
    listen: str = DEFAULT_LISTEN
    #: IPv6 address media is relayed on as well (-6), same forms as `listen`; None: IPv4 only.
    listen6: str | None = DEFAULT_LISTEN6
    #: Media port range (-m/-M).
    port_min: int = DEFAULT_PORT_MIN
    port_max: int = DEFAULT_PORT_MAX
    #: Where timeout and DTMF notifications go (-n, repeatable): "tcp:HOST:PORT", "unix:/path".
    notify: list[str] = field(default_factory=list)
    #: Directory for recordings (-r); None: recording commands have nowhere to write.
    record_dir: str | None = None
    #: Record to pcap files instead of raw streams (-P); needs record_dir.
    pcap: bool = False
    #: Session inactivity timeout in seconds (-T); None: the engine's default (60).
    ttl: int | None = None
    #: Timeout in seconds for a session that never got media (-W); None: the engine's default.
    setup_ttl: int | None = None
    #: Further engine switches passed through verbatim, before --engine-arg's (an escape hatch,
    #: e.g. ["-d", "info"]).
    extra_args: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Config:
    """The effective configuration: one field per module parameter, named as the module names it."""

    #: Relay sets, one module `rtpproxy_sock` value each: "[SET ==] node [node ...]".
    rtpproxy_sock: tuple[str, ...] = (DEFAULT_CONTROL_SOCKET,)
    #: Seconds a relay found unreachable stays disabled; 0 or less: every selection probes it again.
    rtpproxy_disable_tout: int = limits.DEFAULT_DISABLE_SECONDS
    #: Seconds to wait for each reply.
    rtpproxy_timeout: float = 1.0
    #: Auto-bridging (the module's `rtpproxy_autobridge`).
    rtpproxy_autobridge: bool = False
    #: Sends per command on a datagram relay before giving up.
    rtpproxy_retr: int = 5
    #: Set used by nodes without "N ==" and by commands without --set.
    default_set: int = 0
    #: The SDP line marking a body as already rewritten, without CRLF; "" disables the marker.
    nortpproxy_str: str = limits.DEFAULT_MARKER
    #: Database table holding relay sets, added to `rtpproxy_sock` (or instead, see db_mode); None: none.
    db_url: str | None = None
    db_table: str = "rtpproxy_sockets"
    rtpp_socket_col: str = "rtpproxy_sock"
    set_id_col: str = "set_id"
    #: Where relays send timeout and DTMF notifications: "tcp:IPv4:port", "unix:/path" or "/path".
    rtpp_notify_socket: str | None = None
    #: Port range and address for SDP that rtppctl generates itself.
    generated_sdp_port_min: int = DEFAULT_PORT_MIN
    generated_sdp_port_max: int = DEFAULT_PORT_MAX
    generated_sdp_media_ip: str = "127.0.0.1"
    #: rtppctl's own: seconds a call's ledger entry lives unused before it is dropped.
    ledger_ttl: int = limits.DEFAULT_LEDGER_TTL
    #: rtppctl's own: "add" the db_url table's relays to rtpproxy_sock (the module's documentation),
    #: or "replace" them (what OpenSIPS's code does).
    db_mode: str = "add"
    #: rtppctl's own: where relay health and the session ledger are kept (a file or postgresql://);
    #: None: $XDG_STATE_HOME/rtppctl/state.sqlite3.
    state_url: str | None = None
    #: Defaults of `rtppctl embedded start` (the `[embedded]` table).
    embedded: EmbeddedOptions = field(default_factory=EmbeddedOptions)
    #: The file these values came from; None when every value is a default.
    path: Path | None = None
    #: Key (embedded keys as "embedded.KEY") -> "default" or the file it was read from.
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    def source(self, key: str) -> str:
        return self.sources.get(key, DEFAULT)

    def sets(self) -> dict[int, list[NodeSpec]]:
        """Set id -> nodes, from every `rtpproxy_sock` value; values naming the same set merge in order.

        A spec the module could not use is a `ConfigError` naming the file and the key. (With
        `db_url` the module reads only the database; that choice belongs to whoever reads it.)
        """
        from rtppctl.proto.url import parse_sock_line  # noqa: PLC0415

        sets: dict[int, list[NodeSpec]] = {}
        for value in self.rtpproxy_sock:
            if not value.strip():
                continue  # the module skips empty values
            try:
                set_id, nodes = parse_sock_line(value, self.default_set)
            except InputError as exc:
                raise ConfigError(f"{self._where('rtpproxy_sock')}rtpproxy_sock: {exc.message}", exc.hint) from None
            sets.setdefault(set_id, []).extend(nodes)
        return sets

    def as_dict(self) -> dict[str, Any]:
        """Every key with its value, shaped like the file (for `config show --json`)."""
        data: dict[str, Any] = {parameter.name: getattr(self, parameter.name) for parameter in PARAMETERS}
        data["rtpproxy_sock"] = list(self.rtpproxy_sock)
        data["embedded"] = {parameter.name: _plain(getattr(self.embedded, parameter.name)) for parameter in EMBEDDED_PARAMETERS}
        return data

    def _where(self, key: str) -> str:
        source = self.source(key)
        return "" if source == DEFAULT else f"{source}: "


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value


# ------------------------------------------------------------------------------------------------
# The keys
# ------------------------------------------------------------------------------------------------


class _Unexpected(Exception):
    """A value of the wrong kind; carries what was expected, for the message."""

    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


class Parameter(NamedTuple):
    """One config key: how its value is checked, what the starter file says about it, and whether
    it is a parameter of the OpenSIPS module (the one list of them: `opensips_cfg` reads a
    modparam by it)."""

    name: str
    #: Value as read from TOML -> value as stored; raises _Unexpected.
    check: Callable[[Any], Any]
    #: Comment lines above the key in the starter file.
    help: str
    #: Written commented out in the starter file when the key has no default value.
    example: Any = None
    #: For a parameter of the OpenSIPS module (same name and meaning): the kind of value OpenSIPS
    #: takes for it, str or int (§1.5). None for rtppctl's own keys.
    kind: type | None = None

    @property
    def owner(self) -> str:
        """"module": a parameter of the OpenSIPS module; "rtppctl": rtppctl's own key."""
        return "rtppctl" if self.kind is None else "module"


def _integer(low: int, high: int | None = None) -> Callable[[Any], int]:
    expected = f"an integer >= {low}" if high is None else f"an integer {low}..{high}"

    def check(value: Any) -> int:
        # TOML booleans are Python ints: `rtpproxy_retr = true` must not read as 1.
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Unexpected(expected)
        if value < low or (high is not None and value > high):
            raise _Unexpected(expected)
        return value

    return check


def _seconds(value: Any) -> float:
    """A positive number; a numeric string too, because the module's parameter is a string ("0.2")."""
    expected = f'a number of seconds from {limits.MIN_TIMEOUT:g} to {limits.MAX_TIMEOUT:g}, e.g. 1 or 0.2 (or "0.2")'
    if isinstance(value, bool):
        raise _Unexpected(expected)
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise _Unexpected(expected) from None
    # NaN fails every comparison, so it fails this one too.
    if not isinstance(value, (int, float)) or not limits.MIN_TIMEOUT <= value <= limits.MAX_TIMEOUT:
        raise _Unexpected(expected)
    return float(value)


def _switch(value: Any) -> bool:
    # The module takes 0/1; TOML has true/false. Both read the same.
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise _Unexpected("true or false (or 0 or 1)")


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Unexpected("a non-empty string")
    return value


def _db_url(value: Any) -> str:
    from rtppctl.dburl import parse_db_url  # noqa: PLC0415

    text = _text(value)
    parse_db_url(text)  # a URL rtppctl cannot use: ConfigError naming the part, password masked
    return text


def _state_url(value: Any) -> str:
    from rtppctl.dburl import is_db_url  # noqa: PLC0415

    text = _text(value)
    if is_db_url(text):
        from rtppctl.relays.store import state_database_url  # noqa: PLC0415 - the store says which databases hold it

        state_database_url(text, "state_url")
    return text


def _choice(*choices: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise _Unexpected(" or ".join(repr(c) for c in choices))
        return value

    return check


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TABLE = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_]*\.)?[A-Za-z_][A-Za-z0-9_]*")


def _identifier(pattern: re.Pattern[str], expected: str) -> Callable[[Any], str]:
    # Table and column names end up in SQL; refusing anything but plain identifiers keeps them inert.
    def check(value: Any) -> str:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise _Unexpected(expected)
        return value

    return check


def _sock_values(value: Any) -> tuple[str, ...]:
    """One rtpproxy_sock value or a list of them; parsed into nodes by Config.sets()."""
    expected = 'a string or a list of strings, e.g. ["1 == udp:10.0.0.5:22222 udp:10.0.0.6:22222=2"]'
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(item, str) for item in values):
        raise _Unexpected(expected)
    return tuple(values)


def _marker(value: Any) -> str:
    """The nortpproxy line; trailing CR/LF stripped as the module does (it adds CRLF itself)."""
    if not isinstance(value, str):
        raise _Unexpected(f'a string, e.g. "{limits.DEFAULT_MARKER}" (or "" to disable the marker)')
    # A TOML literal string ('a=x\r\n') keeps the backslashes an OpenSIPS config would have turned
    # into CR LF: strip those spelled-out line ends too.
    marker = re.sub(r"(?:\r|\n|\\r|\\n)+\Z", "", value)
    if "\r" in marker or "\n" in marker:
        raise _Unexpected("one SDP line (a line break only at the end)")
    return marker


def _notify_socket(value: Any) -> str:
    """"tcp:IPv4:port", "unix:/path" or "/path": what `listen` binds (`proto.notify`, §9.1)."""
    from rtppctl.proto.notify import NOTIFY_SOCKET_FORMS, parse_notify_socket  # noqa: PLC0415

    try:
        parse_notify_socket(value)
    except InputError:
        raise _Unexpected(NOTIFY_SOCKET_FORMS) from None
    return value


def _ip_address(value: Any) -> str:
    if ip_literal(value) is None:
        raise _Unexpected('an IPv4 or IPv6 address, e.g. "127.0.0.1"')
    return value


def _engine_args(value: Any) -> list[str]:
    """Engine switches passed as they are, each one argument (no shell): any text but NUL, which
    no argument can hold."""
    expected = 'a list of strings, one engine switch or value each, e.g. ["-d", "info"]'
    if not isinstance(value, list) or not all(isinstance(item, str) and item and "\0" not in item for item in value):
        raise _Unexpected(expected)
    return list(value)


def _tokens(what: str, *, allow_empty: bool) -> Callable[[Any], list[str]]:
    """A string or a list of strings, each one engine switch value (no whitespace)."""
    expected = f"a string or a list of strings ({what})"

    def check(value: Any) -> list[str]:
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or (not values and not allow_empty):
            raise _Unexpected(expected)
        for item in values:
            if not isinstance(item, str) or not item or any(char.isspace() for char in item):
                raise _Unexpected(expected + ", without spaces")
        return list(values)

    return check


def _control_sockets(value: Any) -> list[str]:
    """Engine control sockets, checked as node specs so the message can name the file."""
    from rtppctl.proto.url import parse_node  # noqa: PLC0415

    specs = _tokens('control sockets, e.g. "udp:127.0.0.1:22222"', allow_empty=False)(value)
    for spec in specs:
        try:
            node = parse_node(spec)
        except InputError as exc:
            raise _Unexpected(f"control sockets ({exc.message})") from None
        if node.advertised is not None or "=" in spec:
            raise _Unexpected("control sockets without |advertised or =weight, e.g. \"udp:127.0.0.1:22222\"")
    return specs


def _token(value: Any) -> str:
    if not isinstance(value, str) or not value or any(char.isspace() for char in value):
        raise _Unexpected("a non-empty string without spaces")
    return value


#: Every top-level key, in the order of the module's documentation (§1.5), then rtppctl's own.
PARAMETERS: tuple[Parameter, ...] = (
    Parameter(
        "rtpproxy_sock", _sock_values,
        "Relay sets: one string per rtpproxy_sock modparam, \"[SET ==] node [node ...]\" with\n"
        "node = scheme:host:port[|advertised_ip][=weight]; values naming the same set are merged.\n"
        f"Without it (and without db_url) rtppctl talks to the embedded relay on {DEFAULT_CONTROL_SOCKET}.\n"
        "With db_url set, the module reads the database instead of these values.",
        kind=str,
    ),
    Parameter(
        "rtpproxy_disable_tout", _integer(limits.MIN_DISABLE_SECONDS, limits.MAX_DISABLE_SECONDS),
        "Seconds an unreachable relay stays disabled; 0 or less: probed again on every call, as in the module.",
        kind=int,
    ),
    Parameter("rtpproxy_timeout", _seconds, "Seconds to wait for each reply (the module writes it as a string, \"0.2\").",
              kind=str),
    Parameter("rtpproxy_autobridge", _switch, "Auto-bridging (true/false or 0/1); does not work with forking.", kind=int),
    Parameter("rtpproxy_retr", _integer(1, limits.MAX_RETRIES), "Sends per command to a udp relay before it counts as unreachable.",
              kind=int),
    Parameter("default_set", _integer(0, limits.MAX_SET_ID), "Set for nodes without \"N ==\" and for commands without --set.",
              kind=int),
    Parameter(
        "nortpproxy_str", _marker,
        "SDP line marking a body as already rewritten (CRLF is added on insert); \"\" disables it.",
        kind=str,
    ),
    Parameter(
        "db_url", _db_url,
        "Database with OpenSIPS's rtpproxy_sockets table (sqlite, postgresql or mysql URL); its relays are\n"
        "added to rtpproxy_sock (db_mode) and read again by rtppctl reload.",
        example="postgresql://opensips:secret@db.example.net/opensips", kind=str,
    ),
    Parameter("db_table", _identifier(_TABLE, "a table name (letters, digits, _; optionally schema.table)"),
              "Table holding the relay sets.", kind=str),
    Parameter("rtpp_socket_col", _identifier(_IDENTIFIER, "a column name (letters, digits, _)"),
              "Column with the node specs.", kind=str),
    Parameter("set_id_col", _identifier(_IDENTIFIER, "a column name (letters, digits, _)"),
              "Column with the set id.", kind=str),
    Parameter(
        "rtpp_notify_socket", _notify_socket,
        "Where relays send timeout and DTMF notifications: tcp:IPv4:port, unix:/path or /path.",
        example="tcp:127.0.0.1:9999", kind=str,
    ),
    Parameter("generated_sdp_port_min", _integer(limits.MIN_PORT, limits.MAX_PORT), "Lowest port in SDP that rtppctl generates itself.",
              kind=int),
    Parameter("generated_sdp_port_max", _integer(limits.MIN_PORT, limits.MAX_PORT), "Highest port in SDP that rtppctl generates itself.",
              kind=int),
    Parameter("generated_sdp_media_ip", _ip_address, "Address in the c= and o= lines of generated SDP.", kind=str),
    Parameter("ledger_ttl", _integer(limits.MIN_LEDGER_TTL, limits.MAX_LEDGER_TTL),
              "rtppctl's own: seconds a call stays in the session ledger after its last command."),
    Parameter("db_mode", _choice("add", "replace"),
              "rtppctl's own: \"add\" the db_url table's relays to rtpproxy_sock (the module's documentation)\n"
              "or \"replace\" rtpproxy_sock with them (what OpenSIPS's code does)."),
    Parameter("state_url", _state_url,
              "rtppctl's own: where relay health and the session ledger live: a file, or postgresql://... to\n"
              "share them between hosts (--state and RTPPCTL_STATE win over it).",
              example="postgresql://rtppctl:secret@db.example.net/rtppctl"),
)


def _listen6(value: Any) -> str | None:
    """The engine's -6 address; "" turns IPv6 media off (TOML has no null)."""
    if value == "":
        return None
    try:
        return _token(value)
    except _Unexpected:
        raise _Unexpected('an IPv6 address without spaces, e.g. "::1", or "" for IPv4 only') from None


#: The keys of the [embedded] table: one per field of EmbeddedOptions, each one of the engine's
#: switches (and one per option of `rtppctl embedded start`).
EMBEDDED_PARAMETERS: tuple[Parameter, ...] = (
    Parameter("control", _control_sockets,
              "Control sockets (-s): udp:HOST:PORT, udp6:, tcp:, tcp6:, unix:/path, cunix:/path."),
    Parameter("listen", _token, "Address media is relayed on (-l); ADDR=ADVERTISED or ADDR_A/ADDR_B also work."),
    Parameter("listen6", _listen6,
              "IPv6 address media is relayed on too (-6); \"\" for IPv4 only. Left out when this host\n"
              "cannot bind it (no IPv6); `rtppctl embedded status` says so."),
    Parameter("port_min", _integer(limits.MIN_PORT, limits.MAX_PORT), "Lowest media port (-m)."),
    Parameter("port_max", _integer(limits.MIN_PORT, limits.MAX_PORT), "Highest media port (-M)."),
    Parameter("notify", _tokens("notification targets, e.g. \"tcp:127.0.0.1:9999\"", allow_empty=True),
              "Where the relay sends timeout and DTMF notifications (-n): tcp:HOST:PORT or unix:/path."),
    Parameter("record_dir", _text, "Directory for recordings (-r).", example="/var/spool/rtppctl/recordings"),
    Parameter("pcap", _switch, "Record to pcap files instead of raw streams (-P); needs record_dir."),
    Parameter("ttl", _integer(limits.MIN_TTL, limits.MAX_TTL), "Seconds without media before a session ends (-T).", example=60),
    Parameter("setup_ttl", _integer(limits.MIN_TTL, limits.MAX_TTL), "Seconds a session may wait for its first media (-W).",
              example=60),
    Parameter("extra_args", _engine_args,
              "More engine switches, passed as they are before those of --engine-arg, e.g. [\"-d\", \"info\"]."),
)

_KEYS = {parameter.name: parameter for parameter in PARAMETERS}
_EMBEDDED_KEYS = {parameter.name: parameter for parameter in EMBEDDED_PARAMETERS}


# ------------------------------------------------------------------------------------------------
# Lookup
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigCandidate:
    """One place the config file is looked for, in lookup order."""

    #: Where the path comes from: "--config", "$RTPPCTL_CONFIG", "user" or "system".
    origin: str
    path: Path
    exists: bool
    #: --config and $RTPPCTL_CONFIG must exist; the user and system files are optional.
    required: bool


def user_config_path(env: Mapping[str, str] | None = None) -> Path:
    """`$XDG_CONFIG_HOME/rtppctl/config.toml` (XDG_CONFIG_HOME defaulting to ~/.config)."""
    return user_dir("config", env) / "config.toml"


def config_candidates(path: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None) -> list[ConfigCandidate]:
    """Every place looked at, in order (an explicit path or $RTPPCTL_CONFIG only when given)."""
    env = os.environ if env is None else env
    places: list[tuple[str, Path, bool]] = []
    if path is not None and str(path):
        places.append(("--config", Path(path).expanduser(), True))
    if env.get(ENV_VAR):
        places.append((f"${ENV_VAR}", Path(env[ENV_VAR]).expanduser(), True))
    places.append(("user", user_config_path(env), False))
    places.append(("system", SYSTEM_CONFIG, False))
    return [ConfigCandidate(origin, place, place.exists(), required) for origin, place, required in places]


def find_config(path: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None) -> Path | None:
    """The file load_config reads, or None; ConfigError when --config or $RTPPCTL_CONFIG is missing."""
    for candidate in config_candidates(path, env=env):
        if candidate.exists:
            return candidate.path
        if candidate.required:
            raise ConfigError(
                f"config file {candidate.path} (from {candidate.origin}) does not exist",
                "create one with: rtppctl config init " + str(candidate.path),
            )
    return None


# ------------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------------


def load_config(path: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None) -> Config:
    """The effective configuration: the first file found (see module docs), over the defaults."""
    found = find_config(path, env=env)
    if found is None:
        return Config(sources=_all_sources({}))
    return config_from_mapping(_read_toml(found), found)


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib  # noqa: PLC0415 - only when there is a file to read

    from rtppctl.files import open_input  # noqa: PLC0415

    try:
        with open_input(path, error=ConfigError, what="config file") as handle:
            raw = handle.read()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (bad byte at offset {exc.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # The message carries "(at line L, column C)".
        raise ConfigError(f"{path}: not valid TOML: {exc}", "see https://toml.io for the syntax") from None


def config_from_mapping(data: Mapping[str, Any], path: Path) -> Config:
    """A Config from a parsed TOML document read from `path`; ConfigError naming key and expectation."""
    where = str(path)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key, value in data.items():
        if key == "embedded":
            continue
        parameter = _KEYS.get(key)
        if parameter is None:
            raise _unknown_key(where, key, value, _KEYS)
        values[key] = _checked(where, key, parameter, value)
        sources[key] = where

    embedded_values: dict[str, Any] = {}
    if "embedded" in data:
        table = data["embedded"]
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: embedded: expected a table ([embedded]), got {toml_spelling(table)}")
        for key, value in table.items():
            parameter = _EMBEDDED_KEYS.get(key)
            if parameter is None:
                raise _unknown_key(where, f"embedded.{key}", value, _EMBEDDED_KEYS, prefix="embedded.")
            embedded_values[key] = _checked(where, f"embedded.{key}", parameter, value)
            sources[f"embedded.{key}"] = where

    # An explicitly empty rtpproxy_sock reads as "not configured": the embedded relay then, as
    # without the key; with db_url the database supplies the sets.
    if not [value for value in values.get("rtpproxy_sock", ()) if value.strip()]:
        values.pop("rtpproxy_sock", None)
        sources.pop("rtpproxy_sock", None)
        if "db_url" in values:
            values["rtpproxy_sock"] = ()
    low = values.get("generated_sdp_port_min", Config.generated_sdp_port_min)
    high = values.get("generated_sdp_port_max", Config.generated_sdp_port_max)
    if low > high:
        # The module swaps a reversed range rather than failing; a config it takes, we take.
        values["generated_sdp_port_min"], values["generated_sdp_port_max"] = high, low

    embedded = EmbeddedOptions(**embedded_values)
    if not embedded.port_min < embedded.port_max:
        raise ConfigError(
            f"{where}: embedded.port_min ({embedded.port_min}) must be below embedded.port_max ({embedded.port_max})"
        )
    return Config(**values, embedded=embedded, path=path, sources=_all_sources(sources))


def _all_sources(from_file: dict[str, str]) -> dict[str, str]:
    """Every key, in file order, with "default" where the file did not set it."""
    keys = [p.name for p in PARAMETERS] + [f"embedded.{p.name}" for p in EMBEDDED_PARAMETERS]
    return {key: from_file.get(key, DEFAULT) for key in keys}


def _checked(where: str, key: str, parameter: Parameter, value: Any) -> Any:
    try:
        return parameter.check(value)
    except _Unexpected as exc:
        # A URL's password never reaches a message, even when the URL is wrong.
        from rtppctl.dburl import mask  # noqa: PLC0415

        shown = toml_spelling(mask(value) if isinstance(value, str) else value)
        raise ConfigError(f"{where}: {key}: expected {exc.expected}, got {shown}") from None
    except ConfigError as exc:
        # A database URL with a malformed part: its message names the key and the part.
        raise ConfigError(f"{where}: {exc.message}", exc.hint) from None


def _unknown_key(where: str, key: str, value: Any, known: Mapping[str, Parameter], prefix: str = "") -> ConfigError:
    import difflib  # noqa: PLC0415

    bare = key.removeprefix(prefix)
    if not prefix and isinstance(value, dict) and value and all(name in known for name in value):
        # modparam("rtpproxy", ...) invites a [rtpproxy] table; the keys belong at the top.
        return ConfigError(
            f"{where}: [{key}]: the module's parameters go at the top level of the file, not in a table",
            f"move the keys of [{key}] above every [table] header",
        )
    close = difflib.get_close_matches(bare, list(known), n=1, cutoff=0.6)
    if close:
        return ConfigError(f"{where}: unknown key {key!r}; did you mean {prefix + close[0]!r}?")
    return ConfigError(
        f"{where}: unknown key {key!r}",
        "the keys are the OpenSIPS rtpproxy module's parameter names; `rtppctl config init` writes them all",
    )


def toml_spelling(value: Any, limit: int | None = 80) -> str:
    """A value as TOML spells it, so it can be pasted into the file: strings in double quotes,
    booleans as true/false, lists in brackets; "(not set)" for a key without a value."""
    import json  # noqa: PLC0415

    if value is None:
        return "(not set)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, (list, tuple)):
        text = "[" + ", ".join(toml_spelling(item, None) for item in value) + "]"
    else:
        try:
            text = json.dumps(value, ensure_ascii=False)  # TOML basic strings escape as JSON does
        except (TypeError, ValueError):
            text = str(value)  # dates and times
    return text if limit is None or len(text) <= limit else text[: limit - 3] + "..."


# ------------------------------------------------------------------------------------------------
# The starter file
# ------------------------------------------------------------------------------------------------

_STARTER_HEADER = """\
# rtppctl configuration.
#
# The keys are the parameters of the OpenSIPS rtpproxy module, with the module's defaults:
#   modparam("rtpproxy", "rtpproxy_retr", 2)   ->   rtpproxy_retr = 2
# Looked up at: --config FILE, $RTPPCTL_CONFIG, $XDG_CONFIG_HOME/rtppctl/config.toml
# (~/.config/rtppctl/config.toml), /etc/rtppctl/config.toml. Check with: rtppctl config show
"""


def starter_config_text() -> str:
    """A config file with every key at its default, each under a comment saying what it is."""
    import tomli_w  # noqa: PLC0415 - only when writing

    defaults = Config()
    parts = [_STARTER_HEADER]
    for parameter in PARAMETERS:
        parts.append(_starter_entry(tomli_w, parameter, _plain(getattr(defaults, parameter.name))))
    parts.append(
        "\n# Defaults of `rtppctl embedded start`: the real RTPProxy engine (rtp.io) on this machine.\n"
        "[embedded]\n"
    )
    for parameter in EMBEDDED_PARAMETERS:
        parts.append(_starter_entry(tomli_w, parameter, _plain(getattr(defaults.embedded, parameter.name))))
    return "".join(parts)


def _starter_entry(tomli_w: Any, parameter: Parameter, value: Any) -> str:
    comment = "".join(f"# {line}\n" for line in parameter.help.splitlines())
    if value is None:
        # TOML has no null: a key without a default is shown commented out, with an example.
        return f"\n{comment}# {tomli_w.dumps({parameter.name: parameter.example}).strip()}\n"
    return f"\n{comment}{tomli_w.dumps({parameter.name: value})}"


def write_starter_config(path: Path, force: bool = False) -> Path:
    """Write the starter file to `path` atomically; refuses to replace an existing file without force."""
    from rtppctl.files import write_atomically  # noqa: PLC0415

    path = Path(path).expanduser()
    if path.is_dir():
        raise ConfigError(f"{path} is a directory", "give the path of the file to write, e.g. .../config.toml")
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists", "use --force to replace it")
    text = starter_config_text()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # 0600: the file may later hold a db_url with a password.
        write_atomically(path, text, error=ConfigError, mode=0o600, exclusive=not force)
    except FileExistsError:
        raise ConfigError(f"{path} already exists", "use --force to replace it") from None
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
