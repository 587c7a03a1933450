"""Where rtppctl keeps its files, reading input files byte-exact, and writing files atomically.

SDP and SIP line endings matter (CRLF vs LF is kept as it came), so text is read as bytes and
decoded without newline translation. Writes go to a temp file in the same directory, are flushed
to disk and renamed over the target: a failure at any point leaves the target as it was.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Mapping
from pathlib import Path

from rtppctl.proto.errors import InputError, RtppctlError

#: XDG base directories rtppctl uses: variable and the default when it is unset or relative.
_XDG_BASES = {"config": ("XDG_CONFIG_HOME", (".config",)), "state": ("XDG_STATE_HOME", (".local", "state"))}


def user_dir(kind: str, env: Mapping[str, str] | None = None) -> Path:
    """`$XDG_CONFIG_HOME/rtppctl` ("config") or `$XDG_STATE_HOME/rtppctl` ("state").

    A relative XDG value is ignored, as the XDG spec asks: it would move with the shell's cwd.
    """
    variable, default = _XDG_BASES[kind]
    base = (os.environ if env is None else env).get(variable) or ""
    root = Path(base) if os.path.isabs(base) else Path.home().joinpath(*default)
    return root / "rtppctl"


#: Inputs larger than this are refused before they are read whole (SDP bodies and SIP messages
#: are a few kilobytes; the SDP parser has its own, smaller limit).
MAX_INPUT_BYTES = 16 * 1024 * 1024


def read_input(path: str) -> tuple[str, str]:
    """(text, name for messages) of a file, or of stdin for "-"; line endings untouched."""
    if path == "-":
        data = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
        name = "stdin"
    else:
        try:
            with open(path, "rb") as handle:
                data = handle.read(MAX_INPUT_BYTES + 1)
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
        name = path
    if len(data) > MAX_INPUT_BYTES:
        raise InputError(f"{name} is larger than {MAX_INPUT_BYTES} bytes")
    try:
        return data.decode("utf-8"), name
    except UnicodeDecodeError as exc:
        raise InputError(f"{name}: binary data (not UTF-8) at byte {exc.start}") from None


def write_atomically(
    path: str | os.PathLike[str],
    text: str,
    *,
    error: type[RtppctlError] = InputError,
    mode: int | None = None,
    exclusive: bool = False,
) -> None:
    """Replace (or create) `path` with `text`; no reader ever sees a half-written file.

    The file gets `mode`, else an existing file's permission bits, else the umask's. With
    `exclusive` an existing file is never replaced: FileExistsError, even when one appears while
    writing. Any other failure raises `error` (an output file is the user's business: InputError;
    rtppctl's own config and state files are set-up: ConfigError).
    """
    import tempfile  # noqa: PLC0415

    target = Path(path)
    try:
        fd, temp = tempfile.mkstemp(dir=target.parent or ".", prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise error(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is None:
            try:
                mode = stat.S_IMODE(os.stat(target).st_mode)
            except FileNotFoundError:
                umask = os.umask(0)
                os.umask(umask)
                mode = 0o666 & ~umask
        os.chmod(temp, mode)
        if exclusive:
            _publish_new(temp, target)
        else:
            os.replace(temp, target)
    except FileExistsError:
        raise
    except OSError as exc:
        raise error(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)


def _publish_new(temp: str, target: Path) -> None:
    """Give `temp` the name `target` unless `target` exists, without a window where both race."""
    try:
        # link() fails if the file appeared meanwhile, where replace() would clobber it.
        os.link(temp, target)
    except FileExistsError:
        raise
    except OSError:
        # A filesystem without hard links: an existence check is the best there is.
        if target.exists():
            raise FileExistsError(str(target)) from None
        os.replace(temp, target)
