"""Two small readings every parser here needs, kept in one place.

`shown` quotes a value for an error message and keeps the message on one line, however long or
odd the value is. `ip_literal` reads a numeric IPv4 or IPv6 address the way RTPProxy and the module
take one: no host names, no zone ids (`fe80::1%eth0`) unless asked for, nothing but the address.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ipaddress


def shown(value: str, limit: int = 60) -> str:
    """repr() of `value`, shortened so that an error message stays one line."""
    if len(value) > limit:
        return repr(value[:limit]) + f"... ({len(value)} characters)"
    return repr(value)


def ip_literal(value: object, *, allow_zone: bool = False) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address `value` spells, or None when it is not a plain numeric IPv4 or IPv6 address.

    A zone id is refused unless `allow_zone`: the relay's media addresses cannot carry one, but a
    control socket on a link-local address (`udp6:fe80::1%eth0:22222`) needs it.
    """
    if not isinstance(value, str) or ("%" in value and not allow_zone):
        return None
    import ipaddress  # noqa: PLC0415 - one-shot commands that never read an address skip it

    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None
