"""Where rtppctl keeps its files, reading input files byte-exact, and writing files atomically.

Every input path rtppctl opens goes through `open_input`: a FIFO, socket or device named as a
file is refused before anything waits on it.

SDP and SIP line endings matter (CRLF vs LF is kept as it came), so text is read as bytes and
decoded without newline translation. Writes to a regular file go to a temp file in the same
directory, are flushed to disk and renamed over the target: a failure at any point leaves the
target as it was. Symlinks are followed to the file they name; devices and FIFOs are written
through, never replaced. `check_writable` says in advance whether a write can start, so commands
can refuse a bad output path before they change anything on a relay.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

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


def stdin_is_terminal() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


#: Paths that name a descriptor this process already holds (`/dev/stdin`, the shell's `<(cmd)`
#: as `/dev/fd/63`): what the caller handed over, with its writer already there. Any other FIFO,
#: socket or device may have no writer and would block a read for ever.
_DESCRIPTOR_PATH = re.compile(r"/dev/(?:stdin|fd/\d+)|/proc/(?:self|\d+)/fd/\d+")

_SPECIAL_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                  (stat.S_ISBLK, "a block device"))


def special_kind(mode: int) -> str | None:
    """"a FIFO", "a socket", ... for a special file's `st_mode`; None for a regular file or folder."""
    for test, kind in _SPECIAL_KINDS:
        if test(mode):
            return kind
    return None


def open_input(path: str | os.PathLike[str], *, error: type[RtppctlError] = InputError,
               what: str = "file") -> BinaryIO:
    """Open `path` for reading without ever blocking in open() or in a later read.

    The open itself is non-blocking (a FIFO with no writer opens at once instead of waiting for
    one), then the open file is judged, so nothing can be swapped in between a check and the
    open: a folder, a FIFO, a socket or a device is refused with `error` naming it, unless the
    path names a descriptor the caller handed over (`/dev/stdin`, `/dev/fd/N`). A regular file
    is returned in blocking mode.
    """
    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            # What open() answers for a unix socket file.
            raise error(f"{name}: is a socket, not a {what}") from None
        raise error(f"cannot read {name}: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise error(f"{name}: is a directory, not a {what}")
        kind = special_kind(mode)
        if kind is not None and not _DESCRIPTOR_PATH.fullmatch(name):
            raise error(f"{name}: is {kind}, not a {what}",
                        "rtppctl opens only regular files by name (a FIFO or device could keep it waiting for "
                        "ever); where the command reads stdin, give - and redirect the data to it")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes_input(path: str, limit: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of a file, or of stdin for "-", refused (InputError) when larger than `limit`."""
    name = "stdin" if path == "-" else path
    if path == "-":
        data = sys.stdin.buffer.read(limit + 1)
    else:
        with open_input(path) as handle:
            try:
                data = handle.read(limit + 1)
            except OSError as exc:
                raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise InputError(f"{name} is larger than {limit} bytes")
    return data


def read_input(path: str) -> tuple[str, str]:
    """(text, name for messages) of a file, or of stdin for "-"; line endings untouched."""
    data = read_bytes_input(path)
    name = "stdin" if path == "-" else path
    try:
        return data.decode("utf-8"), name
    except UnicodeDecodeError as exc:
        raise InputError(_not_utf8(name, data, exc.start)) from None


def _not_utf8(name: str, data: bytes, offset: int) -> str:
    """Say what the bytes are: text in another encoding, or not text at all."""
    line = data.count(b"\n", 0, offset) + 1
    if b"\x00" in data[:8192]:
        return f"{name}: binary data, not text (a NUL byte; line {line}, byte {offset})"
    return f"{name}: line {line}, byte {offset}: not UTF-8 text (Latin-1 or another encoding?); convert it with iconv -t UTF-8"


def _resolved(path: str | os.PathLike[str]) -> Path:
    """The file a write to `path` must change: symlinks followed to their final target, so the
    link stays a link and the file it points at gets the new text."""
    return Path(os.path.realpath(path))


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """`a` and `b` name one existing file (an output that would replace its own input); "-" and
    paths that do not exist yet are never the same file."""
    if os.fspath(a) == "-" or os.fspath(b) == "-":
        return False
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_writable(path: str | os.PathLike[str], *, error: type[RtppctlError] = InputError) -> None:
    """Raise `error` now if `write_atomically(path, ...)` could not even start.

    Commands call this before the first command reaches a relay, so that a typo in `-o` does not
    leave a session behind with its result lost. A device or FIFO must accept writes; a regular
    file (or a new one) needs an existing, writable directory.
    """
    target = _resolved(path)
    try:
        info = os.stat(target)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise error(f"cannot write {path}: {exc.strerror or exc}") from None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise error(f"cannot write {path}: it is a directory")
    if info is not None and not stat.S_ISREG(info.st_mode):
        if not os.access(target, os.W_OK):
            raise error(f"cannot write {path}: permission denied")
        return
    folder = target.parent
    if not folder.is_dir():
        raise error(f"cannot write {path}: the directory {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise error(f"cannot write {path}: the directory {folder} is not writable")


def write_atomically(
    path: str | os.PathLike[str],
    text: str | bytes,
    *,
    error: type[RtppctlError] = InputError,
    mode: int | None = None,
    exclusive: bool = False,
) -> None:
    """Replace (or create) `path` with `text` (UTF-8 when str); no reader ever sees a half-written file.

    A symlink is followed and its target rewritten (the link stays). A device, FIFO or other
    special file (`/dev/stdout`, a pipe) is written through, never replaced. A regular file gets
    `mode`, else the replaced file's permission bits, else the umask's. With `exclusive` an
    existing file is never replaced: FileExistsError, even when one appears while writing. Any
    other failure raises `error` (an output file is the user's business: InputError; rtppctl's own
    config and state files are set-up: ConfigError).
    """
    data = text.encode("utf-8") if isinstance(text, str) else text
    if exclusive:
        target = _resolved(path)
        if target.exists() and not target.is_file():
            raise FileExistsError(str(path))
        staged = _stage(path, data, mode, error)
        if staged is None:
            raise FileExistsError(str(path))
        temp, target = staged
        try:
            _publish_new(temp, target)
        except FileExistsError:
            raise
        except OSError as exc:
            raise error(f"cannot write {path}: {exc.strerror or exc}") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        return
    write_files_atomically({os.fspath(path): data}, error=error, mode=mode)


def write_files_atomically(contents: dict[str, bytes], *, error: type[RtppctlError] = InputError,
                           mode: int | None = None) -> None:
    """Replace (or create) every file of `contents` with its bytes, all or (nearly) nothing: each
    regular file is first written whole to a temp file beside it, and only when every one is
    complete are they renamed over their targets. Special files are written through after that.
    The rules of `write_atomically` apply to each file."""
    staged: list[tuple[str, str, Path]] = []
    through: list[tuple[str, Path, bytes]] = []
    try:
        for name, data in contents.items():
            one = _stage(name, data, mode, error)
            if one is None:
                through.append((name, _resolved(name), data))
            else:
                staged.append((name, *one))
        for name, temp, target in staged:
            try:
                os.replace(temp, target)
            except OSError as exc:
                raise error(f"cannot write {name}: {exc.strerror or exc}") from None
        for name, target, data in through:
            _write_through(name, target, data, error)
    finally:
        for _, temp, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)


def _stage(path: str | os.PathLike[str], data: bytes, mode: int | None,
           error: type[RtppctlError]) -> tuple[str, Path] | None:
    """Write `data` whole into a temp file beside `path`'s target, with its final mode; (temp,
    target). None when the target is a special file, to be written through instead."""
    import tempfile  # noqa: PLC0415

    target = _resolved(path)
    try:
        existing = os.stat(target)
    except OSError:
        existing = None
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        if stat.S_ISDIR(existing.st_mode):
            raise error(f"cannot write {path}: it is a directory")
        return None
    try:
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise error(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is None:
            if existing is not None:
                mode = stat.S_IMODE(existing.st_mode)
            else:
                umask = os.umask(0)
                os.umask(umask)
                mode = 0o666 & ~umask
        os.chmod(temp, mode)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise error(f"cannot write {path}: {exc.strerror or exc}") from None
    return temp, target


def _write_through(path: str | os.PathLike[str], target: Path, data: bytes, error: type[RtppctlError]) -> None:
    """Write into a special file as it is: replacing /dev/null or a FIFO with a regular file
    would break every other user of it."""
    try:
        with open(target, "wb") as handle:
            handle.write(data)
            handle.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise error(f"cannot write {path}: {exc.strerror or exc}") from None


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
