"""rtppctl: an operator toolkit for RTPProxy media relays."""

__version__ = "0.1.0"
