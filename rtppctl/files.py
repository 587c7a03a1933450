"""Where rtppctl keeps its files, reading input files byte-exact, and writing output paths.

Every input path rtppctl opens goes through `open_input`: a FIFO, socket or device named as a
file is refused before anything waits on it.

SDP and SIP line endings matter (CRLF vs LF is kept as it came), so text is read as bytes and
decoded without newline translation. Every output path goes through `check_writable` (before a
command changes anything on a relay) and `write_atomically` / `write_files_atomically`: "-" is
stdout; `/dev/stdout`, `/dev/stderr`, `/dev/fd/N` and links to them are the descriptor this
process holds, written as it is; FIFOs, terminals and other devices are written through, never
replaced, and never waited on for ever (a FIFO needs a reader within a deadline, a reader that
stops taking data ends the write after another). A regular file is written to a temp file in its
own directory, flushed to disk and renamed over the target, symlinks followed: a failure at any
point leaves every target as it was.
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

#: Devices whose reads never wait: `--config /dev/null` is the usual way to say "no config".
_NEVER_WAITS = frozenset({os.devnull})

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
        if kind is not None and name not in _NEVER_WAITS and not _DESCRIPTOR_PATH.fullmatch(name):
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


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """`a` and `b` name one existing file (an output that would replace its own input); "-" and
    paths that do not exist yet are never the same file."""
    if os.fspath(a) == "-" or os.fspath(b) == "-":
        return False
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


# -- output paths ------------------------------------------------------------------------------------
#
# An output path names one of four things. "-" is rtppctl's own stdout. `/dev/stdout`, `/dev/stderr`,
# `/dev/fd/N` and `/proc/self/fd/N` name a descriptor this process already holds: it is written as it
# is, never opened again by name (on Linux those names lead through /proc to "pipe:[NNN]" or
# "socket:[NNN]", which no open() can find). A FIFO, a terminal or another device is opened and
# written through, never replaced. Anything else is a regular file (or a new one), written
# atomically. Symlinks are followed one link at a time, so a link to /dev/stdout is the descriptor.

#: Seconds a write into a FIFO waits for a reader to open it: open() alone would block for ever.
FIFO_READER_WAIT = 2.0
#: Seconds a write into a special file may go on without the reader taking anything.
WRITE_STALL_SECONDS = 30.0

#: Names of a descriptor this process holds, and the descriptor's number.
_DESCRIPTOR_OUTPUT = re.compile(r"/dev/(?:(?P<std>stdin|stdout|stderr)|fd/(?P<fd>[0-9]{1,9}))"
                                r"|/proc/(?P<pid>self|[0-9]{1,9})/fd/(?P<pfd>[0-9]{1,9})")
_STANDARD = {"stdin": 0, "stdout": 1, "stderr": 2}
#: More links in a row than this is a loop (the kernel's own limit is 40).
_MAX_LINKS = 40
#: A blocking write of at most PIPE_BUF bytes to a pipe that polls writable does not block.
_SMALL_WRITE = 4096
_LARGE_WRITE = 1 << 16

#: Special files opened by check_writable, kept open until the write: a FIFO's reader would see
#: end-of-file if rtppctl closed its end between the check and the write.
_held: dict[str, int] = {}


class _Output:
    """Where a write to an output path goes: `kind` is "stdout", "descriptor", "special" or "file"."""

    __slots__ = ("fd", "kind", "mode", "name", "path")

    def __init__(self, name: str, kind: str, *, fd: int | None = None, path: Path | None = None,
                 mode: int | None = None) -> None:
        self.name, self.kind, self.fd, self.path, self.mode = name, kind, fd, path, mode


def _descriptor_named(name: str) -> int | None:
    match = _DESCRIPTOR_OUTPUT.fullmatch(name)
    if match is None or (match["pid"] not in (None, "self") and int(match["pid"]) != os.getpid()):
        return None
    if match["std"]:
        return _STANDARD[match["std"]]
    return int(match["fd"] or match["pfd"])


def _output(path: str | os.PathLike[str], error: type[RtppctlError]) -> _Output:
    """What a write to `path` reaches, found without opening anything."""
    name = os.fspath(path)
    if name == "-":
        return _Output(name, "stdout")
    current = name
    for _ in range(_MAX_LINKS):
        fd = _descriptor_named(current)
        if fd is not None:
            return _Output(name, "descriptor", fd=fd)
        try:
            link = os.readlink(current)
        except OSError:
            break  # not a link (or not there): the file itself
        current = os.path.join(os.path.dirname(current), link)
    else:
        raise error(f"cannot write {name}: too many levels of symbolic links")
    target = Path(os.path.realpath(current))
    try:
        mode: int | None = os.stat(target).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise error(f"cannot write {name}: {exc.strerror or exc}") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise error(f"cannot write {name}: it is a directory")
    if mode is not None and stat.S_ISSOCK(mode):
        raise error(f"cannot write {name}: it is a socket", "give a file, a FIFO, a device or - (stdout)")
    kind = "file" if mode is None or stat.S_ISREG(mode) else "special"
    return _Output(name, kind, path=target, mode=mode)


def writes_to_stdout(path: str | os.PathLike[str]) -> bool:
    """True when output to `path` lands on this process's stdout ("-", /dev/stdout, /dev/fd/1, a
    link to one of them): a command then says what it did on stderr, not beside the data."""
    try:
        target = _output(path, InputError)
    except InputError:
        return False
    return target.kind == "stdout" or (target.kind == "descriptor" and target.fd == 1)


def writes_through(path: str | os.PathLike[str]) -> bool:
    """True when output to `path` is written through, not as a file replaced: "-", a descriptor,
    a FIFO, a terminal or another device (a link to one of them included)."""
    try:
        return _output(path, InputError).kind != "file"
    except InputError:
        return False


def check_writable(path: str | os.PathLike[str], *, error: type[RtppctlError] = InputError) -> None:
    """Raise `error` now if a write to `path` could not even start.

    Commands call this before the first command reaches a relay, so that a typo in `-o` does not
    leave a session behind with its result lost. A descriptor must be open for writing; a FIFO
    needs a reader within FIFO_READER_WAIT seconds (it is opened now, and kept open for the
    write); a device must open for writing; a regular file (or a new one) needs an existing,
    writable directory in which it may be replaced.
    """
    target = _output(path, error)
    if target.kind == "descriptor":
        _check_descriptor(target, error)
    elif target.kind == "special":
        key = str(target.path)
        if key not in _held:
            _held[key] = _open_special(target, error)
    elif target.kind == "file":
        _check_replaceable(target, error)


def _check_descriptor(target: _Output, error: type[RtppctlError]) -> None:
    import fcntl  # noqa: PLC0415

    assert target.fd is not None
    try:
        flags = fcntl.fcntl(target.fd, fcntl.F_GETFL)
    except OSError:
        raise error(f"cannot write {target.name}: descriptor {target.fd} is not open",
                    f"open it for rtppctl, e.g. {target.fd}>FILE or a pipe") from None
    if flags & os.O_ACCMODE == os.O_RDONLY:
        raise error(f"cannot write {target.name}: descriptor {target.fd} is open for reading only")


def _check_replaceable(target: _Output, error: type[RtppctlError]) -> None:
    """A regular file is replaced by a rename in its directory: that directory must exist and be
    writable, and a sticky one (/tmp) lets only the file's owner replace it."""
    assert target.path is not None
    folder = target.path.parent
    if not folder.is_dir():
        raise error(f"cannot write {target.name}: the directory {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise error(f"cannot write {target.name}: the directory {folder} is not writable")
    if target.mode is None:
        return
    try:
        folder_info, file_info = os.stat(folder), os.stat(target.path)
    except OSError as exc:
        raise error(f"cannot write {target.name}: {exc.strerror or exc}") from None
    uid = os.geteuid()
    if folder_info.st_mode & stat.S_ISVTX and uid not in (0, folder_info.st_uid, file_info.st_uid):
        raise error(f"cannot write {target.name}: it belongs to another user in the sticky directory {folder}",
                    "write to another path")


def _open_special(target: _Output, error: type[RtppctlError]) -> int:
    """Open a FIFO or device for writing without ever blocking: a FIFO with no reader is given
    FIFO_READER_WAIT seconds for one to appear, then refused."""
    import time  # noqa: PLC0415

    assert target.path is not None
    deadline = time.monotonic() + FIFO_READER_WAIT
    flags = os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
    while True:
        try:
            return os.open(target.path, flags)
        except OSError as exc:
            if exc.errno != errno.ENXIO or not stat.S_ISFIFO(target.mode or 0):
                raise error(f"cannot write {target.name}: {exc.strerror or exc}") from None
            if time.monotonic() >= deadline:
                raise error(f"cannot write {target.name}: no process reads from the FIFO "
                            f"(waited {FIFO_READER_WAIT:g} s)",
                            "start its reader first (e.g. cat FIFO &), then rtppctl") from None
            time.sleep(0.02)


def write_atomically(
    path: str | os.PathLike[str],
    text: str | bytes,
    *,
    error: type[RtppctlError] = InputError,
    mode: int | None = None,
    exclusive: bool = False,
) -> None:
    """Replace (or create) `path` with `text` (UTF-8 when str); no reader ever sees a half-written file.

    A symlink is followed and its target rewritten (the link stays). "-", a descriptor
    (`/dev/stdout`, `/dev/fd/N`), a FIFO or a device is written through, never replaced. A regular
    file gets `mode`, else the replaced file's permission bits, else the umask's. With `exclusive`
    an existing file is never replaced: FileExistsError, even when one appears while writing. Any
    other failure raises `error` (an output file is the user's business: InputError; rtppctl's own
    config and state files are set-up: ConfigError).
    """
    data = text.encode("utf-8") if isinstance(text, str) else text
    if exclusive:
        target = _output(path, error)
        if target.kind != "file":
            raise FileExistsError(str(path))
        temp, final = _stage(target, data, mode, error)
        try:
            _publish_new(temp, final)
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
    """Replace (or create) every file of `contents` with its bytes, all or nothing.

    Every target is checked first; each regular file is then written whole to a temp file beside
    it, and only when every one is complete are they renamed over their targets. Should a rename
    still fail, the files already renamed get their old contents back (or are removed when they
    are new). Special files and descriptors are written through after that: what went into them
    cannot be taken back. The rules of `write_atomically` apply to each file.
    """
    targets = [(_output(name, error), data) for name, data in contents.items()]
    for target, _ in targets:
        if target.kind == "file":
            _check_replaceable(target, error)
        elif target.kind == "descriptor":
            _check_descriptor(target, error)
        elif target.kind == "special" and str(target.path) not in _held:
            # Opened before any file is replaced: a FIFO nobody reads fails the whole write.
            _held[str(target.path)] = _open_special(target, error)
    staged: list[tuple[str, str, Path]] = []
    try:
        for target, data in targets:
            if target.kind == "file":
                staged.append((target.name, *_stage(target, data, mode, error)))
        _publish(staged, error)
    finally:
        for _, temp, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
    for target, data in targets:
        if target.kind != "file":
            _write_through(target, data, error)


def _publish(staged: list[tuple[str, str, Path]], error: type[RtppctlError]) -> None:
    """Rename each temp file over its target; on a failure, undo the renames already done."""
    done: list[tuple[Path, str | None]] = []
    keep_old = len(staged) > 1  # one file needs no undo: its rename either happens or not
    try:
        for name, temp, target in staged:
            old = None
            if keep_old and target.exists():
                old = temp + ".old"
                try:
                    os.link(target, old)  # the old contents, under a name of their own
                except OSError as exc:
                    raise error(f"cannot write {name}: {exc.strerror or exc}") from None
            try:
                os.replace(temp, target)
            except OSError as exc:
                if old is not None:
                    os.unlink(old)
                raise error(f"cannot write {name}: {exc.strerror or exc}") from None
            done.append((target, old))
    except BaseException:
        for target, old in reversed(done):
            with contextlib.suppress(OSError):
                if old is None:
                    os.unlink(target)
                else:
                    os.replace(old, target)
        raise
    finally:
        for _, old in done:
            if old is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(old)


def _stage(target: _Output, data: bytes, mode: int | None, error: type[RtppctlError]) -> tuple[str, Path]:
    """Write `data` whole into a temp file beside the target, with its final mode; (temp, target)."""
    import tempfile  # noqa: PLC0415

    assert target.path is not None
    final = target.path
    try:
        fd, temp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp")
    except OSError as exc:
        raise error(f"cannot write {target.name}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is None:
            if target.mode is not None:
                mode = stat.S_IMODE(target.mode)
            else:
                umask = os.umask(0)
                os.umask(umask)
                mode = 0o666 & ~umask
        os.chmod(temp, mode)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise error(f"cannot write {target.name}: {exc.strerror or exc}") from None
    return temp, final


def _write_through(target: _Output, data: bytes, error: type[RtppctlError]) -> None:
    """Write into stdout, a descriptor, a FIFO or a device as it is: replacing /dev/null or a FIFO
    with a regular file would break every other user of it."""
    if target.kind == "stdout":
        sys.stdout.flush()
        sys.stdout.buffer.write(data)  # a closed stdout raises BrokenPipeError: the run ends quietly
        sys.stdout.buffer.flush()
        return
    if target.kind == "descriptor":
        assert target.fd is not None
        for number, stream in ((1, sys.stdout), (2, sys.stderr)):
            if target.fd == number:
                stream.flush()  # what rtppctl printed there comes first
        _write_fd(target.fd, data, target, error)
        return
    fd = _held.pop(str(target.path), None)
    if fd is None:
        fd = _open_special(target, error)
    try:
        _write_fd(fd, data, target, error)
    finally:
        os.close(fd)


def _write_fd(fd: int, data: bytes, target: _Output, error: type[RtppctlError]) -> None:
    """All of `data` into `fd`, waiting at most WRITE_STALL_SECONDS for the reader each time it
    takes nothing. Works on blocking descriptors too (rtppctl must not change the O_NONBLOCK of a
    descriptor it shares with its parent): they get writes no larger than a pipe takes at once."""
    import select  # noqa: PLC0415

    blocking = os.get_blocking(fd)
    chunk = _SMALL_WRITE if blocking else _LARGE_WRITE
    view = memoryview(data)
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    while view:
        if not poller.poll(WRITE_STALL_SECONDS * 1000):
            raise error(f"cannot write {target.name}: its reader took nothing for {WRITE_STALL_SECONDS:g} s")
        try:
            written = os.write(fd, view[:chunk])
        except BlockingIOError:
            continue
        except BrokenPipeError:
            if fd == 1:
                raise  # stdout closed by its reader (| head): the run ends quietly
            raise error(f"cannot write {target.name}: its reader has gone (broken pipe)") from None
        except OSError as exc:
            raise error(f"cannot write {target.name}: {exc.strerror or exc}") from None
        view = view[written:]


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
