"""Writing results: nothing destroyed, nothing half done; reading input: the real cause in errors."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from rtppctl.files import check_writable, read_input, write_atomically
from rtppctl.proto.errors import InputError


def test_a_regular_file_is_replaced_whole_and_keeps_its_mode(tmp_path):
    target = tmp_path / "out.sdp"
    target.write_text("old\n")
    target.chmod(0o640)
    write_atomically(target, "new\n")
    assert target.read_text() == "new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_a_symlink_is_followed_and_stays_a_link(tmp_path):
    real = tmp_path / "real.sdp"
    real.write_text("old\n")
    real.chmod(0o600)
    link = tmp_path / "link.sdp"
    link.symlink_to(real)
    write_atomically(link, "new\n")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == "new\n" and stat.S_IMODE(real.stat().st_mode) == 0o600


def test_a_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "link.sdp"
    link.symlink_to(tmp_path / "made.sdp")
    write_atomically(link, "x\n")
    assert link.is_symlink() and (tmp_path / "made.sdp").read_text() == "x\n"


def test_a_device_is_written_through_not_replaced():
    before = os.stat("/dev/null")
    write_atomically("/dev/null", "anything\n")
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_device_is_an_error_and_stays_a_device():
    with pytest.raises(InputError, match="cannot write /dev/full"):
        write_atomically("/dev/full", "x" * 10000)
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_a_fifo_is_written_through(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()), daemon=True)
    reader.start()
    write_atomically(fifo, "through the pipe\n")
    reader.join(10)
    assert received == ["through the pipe\n"]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_check_writable_refuses_what_could_not_be_written(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        check_writable(tmp_path / "missing" / "out.sdp")
    with pytest.raises(InputError, match="is a directory"):
        check_writable(tmp_path)
    check_writable(tmp_path / "new.sdp")
    check_writable("/dev/null")
    assert not (tmp_path / "new.sdp").exists()


def test_latin1_text_is_not_utf8_and_binary_is_binary(tmp_path):
    latin = tmp_path / "latin.sdp"
    latin.write_bytes("v=0\ns=Caf\xe9\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"line 2.*not UTF-8") as caught:
        read_input(str(latin))
    assert "binary" not in caught.value.message
    blob = tmp_path / "blob"
    blob.write_bytes(b"\x00\x01\xff\xfe")
    with pytest.raises(InputError, match="binary data"):
        read_input(str(blob))


# -- input paths: nothing rtppctl reads by name can keep it waiting -------------------------------


def _special_inputs(tmp_path):
    """A FIFO with no writer, a unix socket file, a character device and a folder."""
    import socket

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    sock_path = tmp_path / "sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock_path))
    return server, {"a FIFO": fifo, "a socket": sock_path, "a character device": "/dev/zero",
                    "a directory": tmp_path}


def test_every_kind_of_special_input_is_refused_at_once_by_name(tmp_path):
    import time

    from rtppctl.files import open_input, read_bytes_input

    server, paths = _special_inputs(tmp_path)
    try:
        for kind, path in paths.items():
            started = time.monotonic()
            with pytest.raises(InputError) as caught:
                read_bytes_input(str(path))
            # A FIFO without a writer would block open() for ever; /dev/zero would read for ever.
            assert time.monotonic() - started < 2, kind
            assert str(caught.value).startswith(f"{path}: is {kind}"), str(caught.value)
            with pytest.raises(InputError):
                open_input(path, what="prompt file")
    finally:
        server.close()


def test_a_descriptor_handed_over_is_read(tmp_path):
    # The shell's <(cmd) and /dev/stdin name a pipe whose writer already exists: allowed.
    from rtppctl.files import read_bytes_input

    read_end, write_end = os.pipe()
    os.write(write_end, b"v=0\r\n")
    os.close(write_end)
    try:
        assert read_bytes_input(f"/dev/fd/{read_end}") == b"v=0\r\n"
    finally:
        os.close(read_end)


def test_special_inputs_are_refused_by_every_reader(tmp_path):
    # The config file and prompt/WAV files have their own readers; they share open_input.
    from rtppctl import media
    from rtppctl.config import load_config
    from rtppctl.proto.errors import ConfigError

    fifo = tmp_path / "prompt.0"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="is a FIFO, not a prompt file"):
        media.read_prompt(fifo)
    wav = tmp_path / "in.wav"
    os.mkfifo(wav)
    with pytest.raises(InputError, match="is a FIFO, not a WAV file"):
        media.read_wav(wav)
    config = tmp_path / "config.toml"
    os.mkfifo(config)
    with pytest.raises(ConfigError, match="is a FIFO, not a config file"):
        load_config(config)


# -- output paths: stdout, descriptors, FIFOs, links to them ---------------------------------------


def _pipe():
    read_end, write_end = os.pipe()
    return read_end, write_end


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("name", ["/dev/fd/{fd}", "/proc/self/fd/{fd}", "link"])
def test_a_descriptor_is_written_as_it_is_not_looked_up_through_proc(tmp_path, name):
    # /dev/fd/N of a pipe resolves through /proc to "pipe:[NNN]": no file of that name exists.
    from rtppctl.files import writes_through

    read_end, write_end = _pipe()
    path = name.format(fd=write_end)
    if name == "link":
        path = str(tmp_path / "out.sdp")
        os.symlink(f"/dev/fd/{write_end}", path)
    try:
        assert not os.path.exists(os.path.realpath(f"/dev/fd/{write_end}"))  # what the old lookup found
        assert writes_through(path)
        check_writable(path)
        write_atomically(path, "v=0\r\n")
        write_atomically(path, b"more")
        os.close(write_end)
        write_end = -1
        assert _read_all(read_end) == b"v=0\r\nmore"
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)
    if name == "link":
        assert os.path.islink(path)


def test_descriptors_that_cannot_take_a_write_are_refused_early():
    read_end, write_end = _pipe()
    os.close(write_end)
    try:
        with pytest.raises(InputError, match=f"cannot write /dev/fd/{read_end}: descriptor {read_end} is open for reading only"):
            check_writable(f"/dev/fd/{read_end}")
    finally:
        os.close(read_end)
    with pytest.raises(InputError, match=f"descriptor {write_end} is not open") as caught:
        check_writable(f"/dev/fd/{write_end}")
    assert f"{write_end}>FILE" in caught.value.hint


def test_dash_is_stdout(capsysbinary):
    from rtppctl.files import writes_through, writes_to_stdout

    check_writable("-")
    write_atomically("-", b"\x00RIFF bytes as they are\n")
    assert capsysbinary.readouterr().out == b"\x00RIFF bytes as they are\n"
    assert writes_to_stdout("-") and writes_to_stdout("/dev/stdout") and writes_to_stdout("/dev/fd/1")
    assert not writes_to_stdout("/dev/stderr") and not writes_to_stdout("out.wav") and writes_through("/dev/stderr")
    assert not writes_through("/tmp/new-file-that-is-not-there")
    assert not os.path.exists("-")


def test_a_fifo_without_a_reader_is_refused_within_the_deadline(tmp_path, monkeypatch):
    import time

    from rtppctl import files

    monkeypatch.setattr(files, "FIFO_READER_WAIT", 0.3)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for attempt in (lambda: check_writable(fifo), lambda: write_atomically(fifo, "x")):
        started = time.monotonic()
        with pytest.raises(InputError, match=f"cannot write {fifo}: no process reads from the FIFO") as caught:
            attempt()
        assert 0.25 < time.monotonic() - started < 2
        assert "start its reader first" in caught.value.hint
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_fifo_checked_early_keeps_its_reader_until_the_write(tmp_path):
    # check_writable opens the FIFO and keeps it open: closing it before the write would give the
    # reader end-of-file, and the data would then have nowhere to go.
    import time

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []

    def reader():
        with open(fifo, "rb") as handle:
            received.append(handle.read())

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    check_writable(fifo)
    time.sleep(0.2)  # the reader would have seen end-of-file by now
    link = tmp_path / "link"
    link.symlink_to(fifo)
    write_atomically(link, b"x" * 200_000)  # more than a pipe holds: written as the reader takes it
    thread.join(10)
    assert received == [b"x" * 200_000]


def test_a_reader_that_takes_nothing_ends_the_write_after_the_stall_deadline(monkeypatch):
    import time

    from rtppctl import files

    monkeypatch.setattr(files, "WRITE_STALL_SECONDS", 0.3)
    read_end, write_end = _pipe()
    try:
        started = time.monotonic()
        with pytest.raises(InputError, match=f"cannot write /dev/fd/{write_end}: its reader took nothing for 0.3 s"):
            write_atomically(f"/dev/fd/{write_end}", b"x" * 1_000_000)
        assert time.monotonic() - started < 3
    finally:
        os.close(read_end)
        os.close(write_end)


def test_a_reader_that_went_away_is_an_error_naming_the_path():
    read_end, write_end = _pipe()
    os.close(read_end)
    try:
        with pytest.raises(InputError, match=f"cannot write /dev/fd/{write_end}: its reader has gone"):
            write_atomically(f"/dev/fd/{write_end}", b"x")
    finally:
        os.close(write_end)


def test_sockets_and_link_loops_are_refused(tmp_path):
    import socket

    sock_path = tmp_path / "sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock_path))
    try:
        with pytest.raises(InputError, match="it is a socket"):
            check_writable(sock_path)
    finally:
        server.close()
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(InputError, match="too many levels of symbolic links"):
        check_writable(tmp_path / "a")


# -- several files: all or nothing -------------------------------------------------------------------


def test_a_failed_rename_puts_back_every_file_already_replaced(tmp_path, monkeypatch):
    from rtppctl.files import write_files_atomically

    first, second, new = tmp_path / "p.0", tmp_path / "p.8", tmp_path / "p.9"
    first.write_bytes(b"old 0")
    first.chmod(0o640)
    second.write_bytes(b"old 8")
    real_replace = os.replace

    def failing_replace(source, target, *args, **kwargs):
        if os.fspath(target) == str(second):
            raise PermissionError(1, "Operation not permitted")
        return real_replace(source, target, *args, **kwargs)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(InputError, match=f"cannot write {second}: Operation not permitted"):
        write_files_atomically({str(first): b"new 0", str(new): b"new 9", str(second): b"new 8"})
    monkeypatch.setattr(os, "replace", real_replace)
    assert first.read_bytes() == b"old 0" and stat.S_IMODE(first.stat().st_mode) == 0o640
    assert second.read_bytes() == b"old 8" and not new.exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["p.0", "p.8", "xdg"]


def test_a_file_another_user_owns_in_a_sticky_directory_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    # rename() there fails for anyone but the file's owner, the folder's owner and root (sticky bit).
    from rtppctl.files import write_files_atomically

    sticky = tmp_path / "shared"
    sticky.mkdir()
    sticky.chmod(0o1777)
    mine, theirs = sticky / "p.0", sticky / "p.8"
    mine.write_bytes(b"old 0")
    theirs.write_bytes(b"old 8")
    if os.geteuid() != 0:
        pytest.skip("needs root to give a file and the folder to another user")
    os.chown(theirs, 4242, 4242)
    os.chown(sticky, 4242, 4242)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # rtppctl run by an ordinary user, not the owner
    with pytest.raises(InputError, match=f"cannot write {theirs}: it belongs to another user in the sticky directory"):
        check_writable(theirs)
    with pytest.raises(InputError, match="sticky directory"):
        write_files_atomically({str(mine): b"new 0", str(theirs): b"new 8"})
    assert mine.read_bytes() == b"old 0" and theirs.read_bytes() == b"old 8"


def test_dev_null_reads_as_empty_config_and_input():
    # `--config /dev/null` is the usual "no config": a device, but its reads never wait.
    from rtppctl.config import load_config
    from rtppctl.files import read_bytes_input

    assert read_bytes_input(os.devnull) == b""
    assert load_config(os.devnull).sources is not None
