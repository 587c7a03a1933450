"""Where the state store is: `--state`, else `RTPPCTL_STATE`, else the config's `state_url`, else
`$XDG_STATE_HOME/rtppctl/state.sqlite3`; "none" keeps no state.

Kept apart from `store.py` because every command that may touch the ledger asks this first, and
most of them (`offer -t`, `--state none`) must not pay for loading the store to learn "none" or a
file's path: only a value written as a database URL brings in `dburl` and the store's rule of which
databases may hold the state (`store.state_database_url`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from rtppctl.files import user_dir

#: The environment variable naming the state store, below `--state` and above `state_url`.
STATE_ENV = "RTPPCTL_STATE"

#: The value of `--state` or `RTPPCTL_STATE` that keeps no state at all.
NO_STATE = "none"


def default_state_path(env: Mapping[str, str] | None = None) -> Path:
    """`$XDG_STATE_HOME/rtppctl/state.sqlite3` (`~/.local/state/...` when unset)."""
    return user_dir("state", env) / "state.sqlite3"


def resolve_state_path(option: str | None, env: Mapping[str, str] | None = None,
                       state_url: str | None = None) -> Path | str | None:
    """The state store to use: `--state`, else `RTPPCTL_STATE`, else the config's `state_url`,
    else the default file; None for "none". A database URL is returned as a string (a sqlite://
    URL as its file's Path), a file as a Path.

    An empty value counts as unset, as is the custom for environment variables. `~` is expanded
    because `--state=~/x` and a quoted variable reach rtppctl unexpanded.
    """
    environ = os.environ if env is None else env
    for value in (option, environ.get(STATE_ENV), state_url):
        if not value:
            continue
        if value == NO_STATE:
            return None
        # A URL is dburl's to read (the scheme) and the store's to accept; a path needs neither.
        if "://" in value:
            from rtppctl.dburl import is_db_url  # noqa: PLC0415

            if is_db_url(value):
                from rtppctl.relays.store import state_database_url  # noqa: PLC0415

                url = state_database_url(value)
                return url.path if url.backend == "sqlite" else value
        return Path(value).expanduser()
    return default_state_path(env)


__all__ = ["NO_STATE", "STATE_ENV", "default_state_path", "resolve_state_path"]
