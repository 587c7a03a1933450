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
