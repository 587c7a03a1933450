"""Every command that takes an output path writes "-", /dev/stdout, /dev/stderr, /dev/fd/N, FIFOs,
terminals and links to them through, tested through real pipes: rtppctl runs as a child process
whose stdout is a pipe, or is handed the write end of one.

On Linux /dev/stdout of a process whose stdout is a pipe leads through /proc/self/fd/1 to a name
like "pipe:[123456]" that no open() can find: a path resolved by name instead of written as a
descriptor fails there with "No such file or directory".
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from rtppctl import media
from tests.cli.helpers import cli

ROOT = Path(__file__).resolve().parents[2]
OFFER = "v=0\no=- 1 1 IN IP4 10.7.0.1\ns=-\nc=IN IP4 10.7.0.1\nt=0 0\nm=audio 40000 RTP/AVP 0\n"
OPENSIPS = 'modparam("rtpproxy", "rtpproxy_sock", "udp:127.0.0.1:22222")\nmodparam("rtpproxy", "rtpproxy_retr", 2)\n'


def rtppctl(*args: str, pass_fds: tuple[int, ...] = (), cwd: Path | None = None, stdin: bytes | None = None,
            timeout: float = 30) -> subprocess.CompletedProcess:
    """`python -m rtppctl ARGS` with stdout and stderr each a pipe; bytes in and out."""
    return subprocess.run([sys.executable, "-m", "rtppctl", *args], input=stdin, capture_output=True,
                          pass_fds=pass_fds, cwd=cwd or ROOT, timeout=timeout, check=False)


class Reader:
    """Reads a FIFO or a pipe's read end to its end in a thread, as `cat` would."""

    def __init__(self, path: Path | None = None, fd: int | None = None) -> None:
        self.data: list[bytes] = []
        self.path, self.fd = path, fd
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        if self.path is not None:
            with open(self.path, "rb") as handle:
                self.data.append(handle.read())
            return
        chunks = []
        while chunk := os.read(self.fd, 65536):
            chunks.append(chunk)
        self.data.append(b"".join(chunks))

    def result(self) -> bytes:
        self.thread.join(20)
        return self.data[0] if self.data else b"<nothing>"


class Target:
    """One kind of special output path, set up in `tmp_path`: what to pass as -o, which descriptors
    the child gets, and where the written bytes are read back from."""

    KINDS = ("-", "/dev/stdout", "link to /dev/stdout", "/dev/stderr", "/dev/fd/N", "link to /dev/fd/N", "FIFO",
             "link to a FIFO")

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.pass_fds: tuple[int, ...] = ()
        self.reader: Reader | None = None
        self._write_end: int | None = None
        self._read_end: int | None = None
        if kind in ("-", "/dev/stdout", "/dev/stderr"):
            self.path = kind
        elif kind == "link to /dev/stdout":
            self.path = str(tmp_path / "to-stdout")
            os.symlink("/dev/stdout", self.path)
        elif kind.endswith("/dev/fd/N"):
            self._read_end, self._write_end = os.pipe()
            self.pass_fds = (self._write_end,)
            self.path = f"/dev/fd/{self._write_end}"
            if kind.startswith("link"):
                self.path = str(tmp_path / "to-fd")
                os.symlink(f"/dev/fd/{self._write_end}", self.path)
        else:
            fifo = tmp_path / "fifo"
            os.mkfifo(fifo)
            self.reader = Reader(path=fifo)
            self.path = str(fifo)
            if kind.startswith("link"):
                self.path = str(tmp_path / "to-fifo")
                os.symlink(fifo, self.path)

    def run(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        if self._read_end is not None:
            self.reader = Reader(fd=self._read_end)
        try:
            return rtppctl(*args, pass_fds=self.pass_fds, cwd=cwd)
        finally:
            if self._write_end is not None:
                os.close(self._write_end)  # the child's copy was the other writer: the reader ends

    def written(self, done: subprocess.CompletedProcess) -> bytes:
        """The bytes that reached the output."""
        if self.kind in ("-", "/dev/stdout", "link to /dev/stdout"):
            return done.stdout
        if self.kind == "/dev/stderr":
            return done.stderr
        assert self.reader is not None
        data = self.reader.result()
        if self._read_end is not None:
            os.close(self._read_end)
        return data


@pytest.fixture(params=Target.KINDS)
def target(request, tmp_path) -> Target:
    return Target(request.param, tmp_path)


def test_offer_writes_the_sdp_to_every_kind_of_output(relay, capsys, tmp_path, target):
    body = tmp_path / "offer.sdp"
    body.write_text(OFFER)
    call_id = f"out-{uuid.uuid4().hex[:8]}@test"
    done = target.run("offer", str(body), "--call-id", call_id, "--from-tag", "ft", "-t", relay.udp, "-o", target.path)
    try:
        assert done.returncode == 0, done.stderr
        sdp = target.written(done).decode()
        assert sdp.startswith("v=0\n") and "a=nortpproxy:yes" in sdp and "m=audio 40000" not in sdp
        assert sdp.count("v=0") == 1
    finally:
        cli(capsys, "unforce", "--call-id", call_id, "--from-tag", "ft", "-t", relay.udp)


def test_answer_to_a_descriptor_and_the_readme_example_through_cat(relay, capsys, tmp_path):
    body = tmp_path / "offer.sdp"
    body.write_text(OFFER)
    call_id = f"out-{uuid.uuid4().hex[:8]}@test"
    try:
        # The README's own example: rtppctl offer ... -o /dev/stdout | cat
        piped = subprocess.run(
            f"{sys.executable} -m rtppctl offer {body} --call-id {call_id} --from-tag ft -t {relay.udp} -o /dev/stdout | cat",
            shell=True, capture_output=True, cwd=ROOT, timeout=30, check=False)
        assert piped.returncode == 0 and piped.stdout.startswith(b"v=0\n"), piped.stderr
        assert b"No such file or directory" not in piped.stderr
        answer = Target("/dev/fd/N", tmp_path)
        done = answer.run("answer", str(body), "--call-id", call_id, "--from-tag", "ft", "--to-tag", "tt",
                          "-t", relay.udp, "-o", answer.path)
        assert done.returncode == 0, done.stderr
        assert answer.written(done).startswith(b"v=0\n")
    finally:
        cli(capsys, "unforce", "--call-id", call_id, "--from-tag", "ft", "-t", relay.udp)


def test_a_fifo_nobody_reads_is_refused_before_the_offer_reaches_the_relay(relay, tmp_path):
    body = tmp_path / "offer.sdp"
    body.write_text(OFFER)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    started = time.monotonic()
    done = rtppctl("-vv", "offer", str(body), "--call-id", "nobody@test", "--from-tag", "ft", "-t", relay.udp,
                   "-o", str(fifo))
    assert done.returncode == 6 and done.stdout == b""
    assert f"rtppctl: error: cannot write {fifo}: no process reads from the FIFO".encode() in done.stderr
    assert b"\n> " not in done.stderr and b"U " not in done.stderr  # no datagram: nothing to undo on the relay
    assert time.monotonic() - started < 15
    closed = rtppctl("-vv", "offer", str(body), "--call-id", "nobody@test", "--from-tag", "ft", "-t", relay.udp,
                     "-o", "/dev/fd/9")
    assert closed.returncode == 6 and closed.stdout == b""
    assert b"rtppctl: error: cannot write /dev/fd/9: descriptor 9 is not open" in closed.stderr
    assert b"\n> " not in closed.stderr


def recording(path: Path) -> Path:
    """A recording as the relay writes it (src/rtpp_record_adhoc.h): two PCMU packets from 127.0.0.1."""
    data = b""
    for seq in (1, 2):
        packet = struct.pack("!BBHII", 0x80, 0, seq, seq * 160, 0xABC) + bytes(range(160))
        data += struct.pack("<H", 2) + (40000).to_bytes(2, "big") + bytes([127, 0, 0, 1]) + bytes(12)
        data += struct.pack("<dH", 1.8e9 + seq, len(packet)) + packet
    path.write_bytes(data)
    return path


def test_record_decode_writes_the_wav_to_every_kind_of_output(tmp_path, target):
    source = recording(tmp_path / "c1=ft.o.rtp")
    reference = tmp_path / "reference.wav"
    media.decode_recording(source, reference)
    done = target.run("record", "decode", str(source), target.path, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert target.written(done) == reference.read_bytes()
    said = f"wrote {'stdout' if target.path == '-' else target.path}: 0.04 s of pcmu from 2 packets\n".encode()
    if "stdout" in target.kind or target.kind == "-":
        assert done.stderr == said  # stdout holds the WAV file: what was done is said on stderr
    else:
        assert done.stdout == said
    assert not (tmp_path / "-").exists()  # "-" is stdout, not a file of that name


@pytest.mark.parametrize("kind", [kind for kind in Target.KINDS if kind != "-"])  # a prompt file is OUT.0, never "-"
def test_prompt_encode_writes_through_a_link_to_an_output(tmp_path, kind):
    import wave

    target = Target(kind, tmp_path)

    source = tmp_path / "in.wav"
    with wave.open(str(source), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(struct.pack("<800h", *((n * 37) % 20000 - 10000 for n in range(800))))
    media.encode_prompt(source, tmp_path / "reference", ["pcmu"])
    os.symlink(target.path if target.path.startswith("/") else tmp_path / target.path, tmp_path / "p.0")
    done = target.run("prompt", "encode", str(source), str(tmp_path / "p"), "--codec", "pcmu")
    assert done.returncode == 0, done.stderr
    assert target.written(done) == (tmp_path / "reference.0").read_bytes()
    assert (tmp_path / "p.0").is_symlink()
    said = f"wrote {tmp_path / 'p.0'} (PCMU, payload type 0, 800 bytes)".encode()
    assert said in (done.stderr if "stdout" in kind else done.stdout)  # never after the data on stdout


def test_config_init_writes_the_starter_file_to_every_kind_of_output(tmp_path, target):
    from rtppctl.config import starter_config_text

    done = target.run("config", "init", target.path)
    assert done.returncode == 0, done.stderr
    assert target.written(done).decode() == starter_config_text()
    if "stdout" in target.kind or target.kind == "-":
        assert done.stderr == b"wrote the starter config to stdout\n"
    else:
        assert done.stdout.startswith(f"wrote {target.path}\n".encode())


@pytest.mark.parametrize("kind", ["/dev/stdout", "link to /dev/stdout", "/dev/fd/N", "FIFO"])
def test_config_import_o_writes_only_the_toml_there(capsys, tmp_path, kind):
    source = tmp_path / "opensips.cfg"
    source.write_text(OPENSIPS)
    expected = cli(capsys, "config", "import-opensips", str(source))
    assert expected.code == 0 and expected.stdout.startswith("#")
    output = Target(kind, tmp_path)
    done = output.run("config", "import-opensips", str(source), "-o", output.path)
    assert done.returncode == 0, done.stderr
    assert output.written(done).decode() == expected.stdout
    said = f"wrote {output.path} (2 keys)\n".encode()
    assert said in (done.stderr if "stdout" in kind else done.stdout)


@pytest.mark.parametrize("kind", ["/dev/fd/N", "FIFO", "link to /dev/stdout"])
def test_shell_save_writes_to_a_descriptor_or_fifo(relay, tmp_path, kind):
    output = Target(kind, tmp_path)
    script = (f"call-id save-{uuid.uuid4().hex[:6]}@shell\nfrom-tag ft\npaste\n{OFFER}.\noffer\n"
              f"save {output.path}\nunforce\n")
    from tests.cli.test_shell import shell_argv

    if output._read_end is not None:
        output.reader = Reader(fd=output._read_end)
    try:
        done = subprocess.run([sys.executable, *shell_argv("-t", relay.udp, "--history", str(tmp_path / "h"))],
                              input=script.encode(), capture_output=True, pass_fds=output.pass_fds, cwd=ROOT,
                              timeout=30, check=False)
    finally:
        if output._write_end is not None:
            os.close(output._write_end)
    assert done.returncode == 0, done.stderr
    assert f"saved the offer to {output.path}".encode() in done.stdout
    if kind == "link to /dev/stdout":
        saved = done.stdout[:done.stdout.index(b"saved the offer to")]
        assert saved.endswith(b"a=nortpproxy:yes\n") and saved[saved.rindex(b"v=0\n") - 1:][:1] == b"\n"
        return
    saved = output.reader.result()
    assert saved.startswith(b"v=0\n") and b"a=nortpproxy:yes" in saved


def test_offer_to_the_terminal_it_runs_on(relay, capsys, tmp_path):
    import pexpect

    body = tmp_path / "offer.sdp"
    body.write_text(OFFER)
    call_id = f"tty-{uuid.uuid4().hex[:6]}@test"
    child = pexpect.spawn(sys.executable, ["-m", "rtppctl", "offer", str(body), "--call-id", call_id, "--from-tag", "ft",
                                           "-t", relay.udp, "-o", "/dev/tty"],
                          cwd=str(ROOT), encoding="utf-8", timeout=20, env={**os.environ, "NO_COLOR": "1"})
    try:
        child.expect("a=nortpproxy:yes")
        child.expect(pexpect.EOF)
    finally:
        child.close()
        cli(capsys, "unforce", "--call-id", call_id, "--from-tag", "ft", "-t", relay.udp)
    assert child.exitstatus == 0
