"""Small readings and showings every parser here needs, kept in one place.

`shown` quotes a value for an error message and keeps the message on one line, however long or
odd the value is. `clip` and `excerpt` bound any outside text (a database row, a node spec, a URL,
a driver's message) that a message or a JSON result echoes: a fixed number of characters and a
marker saying how long the text was, so a 10 MB row costs a line, not 10 MB, wherever it is
echoed. `ip_literal` reads a numeric IPv4 or IPv6 address the way RTPProxy and the module take
one: no host names, no zone ids (`fe80::1%eth0`) unless asked for, nothing but the address.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ipaddress

#: The most characters of one piece of outside text a message echoes.
ECHO_LIMIT = 200


def clip(value: str, limit: int = ECHO_LIMIT) -> str:
    """`value` itself when it has at most `limit` characters, else its first `limit` characters
    and a marker: "... (N characters)". Nothing is quoted or escaped."""
    if len(value) > limit:
        return value[:limit] + f"... ({len(value)} characters)"
    return value


def shown(value: str, limit: int = 60) -> str:
    """repr() of `value`, shortened so that an error message stays one line."""
    if len(value) > limit:
        return repr(value[:limit]) + f"... ({len(value)} characters)"
    return repr(value)


def shown_any(value: Any, limit: int = 60) -> str:
    """`shown` for a value of any type (a database cell may be text, a number, bytes or None)."""
    return shown(value, limit) if isinstance(value, str) else clip(repr(value), limit)


def excerpt(value: Any, limit: int = ECHO_LIMIT) -> Any:
    """A value for a JSON result: text longer than `limit` becomes its first `limit` characters
    and the marker; numbers, None and short text stay as they are; anything else is its bounded
    repr(). Pair it with the original length when the length matters."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return clip(value, limit)
    return clip(repr(value), limit)


def ip_literal(value: object, *, allow_zone: bool = False) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address `value` spells, or None when it is not a plain numeric IPv4 or IPv6 address.

    A zone id is refused unless `allow_zone`: the relay's media addresses cannot carry one, but a
    control socket on a link-local address (`udp6:fe80::1%eth0:22222`) needs it.
    """
    if not isinstance(value, str) or ("%" in value and not allow_zone):
        return None
    return _parsed_address(value)


@lru_cache(maxsize=1024)
def _parsed_address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    # Addresses repeat (the same relay, the same SDP hosts over and over in a batch or a load run);
    # the parsed values are immutable, so a bounded cache hands the same one back.
    import ipaddress  # noqa: PLC0415 - one-shot commands that never read an address skip it

    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None
