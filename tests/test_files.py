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
