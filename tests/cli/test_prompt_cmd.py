"""`rtppctl prompt encode | info`: WAV files into RTPProxy prompt files, and prompt files described."""

from __future__ import annotations

import math
import struct
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from rtppctl.proto import rtp
from tests.cli.helpers import cli


def write_tone(path: Path, rate: int = 16000, seconds: float = 0.5, channels: int = 1) -> Path:
    frames = b"".join(
        struct.pack("<h", round(16000 * math.sin(2 * math.pi * 997 * n / rate))) * channels
        for n in range(round(rate * seconds))
    )
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(frames)
    return path


def test_encode_writes_both_prompt_files(capsys, tmp_path):
    source = write_tone(tmp_path / "welcome.wav", channels=2)
    result = cli(capsys, "prompt", "encode", str(source), str(tmp_path / "welcome"))
    assert result.code == 0, result.stderr
    assert (tmp_path / "welcome.0").stat().st_size == (tmp_path / "welcome.8").stat().st_size == 4000
    lines = result.stdout.splitlines()
    assert lines[0] == f"wrote {tmp_path / 'welcome.0'} (PCMU, payload type 0, 4000 bytes)"
    assert lines[1] == f"wrote {tmp_path / 'welcome.8'} (PCMA, payload type 8, 4000 bytes)"
    assert lines[2].startswith(f"{source}: 16000 Hz stereo 16-bit -> 8000 Hz mono, 0.50 s, 25 packets of 20 ms; peak -6.")
    assert lines[3] == f"prompt name for the relay: {tmp_path / 'welcome'}"
    assert result.stderr == ""


def test_encode_json(capsys, tmp_path):
    source = write_tone(tmp_path / "in.wav", rate=44100)
    result = cli(capsys, "prompt", "encode", str(source), str(tmp_path / "p"), "--codec", "pcma", "--json")
    assert result.code == 0, result.stderr
    data = result.json()
    assert (data["source"], data["source_rate"], data["source_channels"], data["source_bits"]) == (str(source), 44100, 1, 16)
    assert (data["prompt"], data["duration"], data["samples"], data["packets"]) == (str(tmp_path / "p"), 0.5, 4000, 25)
    assert data["files"] == [{"path": str(tmp_path / "p.8"), "codec": "pcma", "payload_type": 8, "encoding": "PCMA",
                              "bytes": 4000, "packets": 25}]
    assert -6.5 < data["peak_dbfs"] < -6 and -9.5 < data["rms_dbfs"] < -9
    assert not (tmp_path / "p.0").exists()


@pytest.mark.parametrize("value", ["pcmu", "PCMU", "0", "pcmu,pcmu", " pcmu , "])
def test_codec_spellings(capsys, tmp_path, value):
    source = write_tone(tmp_path / "in.wav")
    result = cli(capsys, "--json", "prompt", "encode", str(source), str(tmp_path / "p"), "--codec", value)
    assert result.code == 0 and [f["codec"] for f in result.json()["files"]] == ["pcmu"]


@pytest.mark.parametrize(("value", "message"), [("g729", "unknown codec 'g729'"), ("", "no codec given"), (",", "no codec given")])
def test_a_bad_codec_is_a_usage_error(capsys, tmp_path, value, message):
    source = write_tone(tmp_path / "in.wav")
    result = cli(capsys, "prompt", "encode", str(source), str(tmp_path / "p"), "--codec", value)
    assert result.code == 2 and "--codec" in result.stderr and message in result.stderr
    assert not list(tmp_path.glob("p.*"))


def test_a_bad_wav_is_exit_6_in_one_line_and_writes_nothing(capsys, tmp_path):
    source = tmp_path / "notes.wav"
    source.write_text("not audio at all\n")
    result = cli(capsys, "prompt", "encode", str(source), str(tmp_path / "p"))
    assert result.code == 6
    assert result.stderr == f"rtppctl: error: {source}: not a WAV file (no RIFF/WAVE header)\n"
    assert result.stdout == ""
    assert not list(tmp_path.glob("p.*"))


def test_an_unsupported_wav_says_how_to_convert_it(capsys, tmp_path):
    source = tmp_path / "float.wav"
    fmt = struct.pack("<HHIIHH", 3, 1, 8000, 32000, 4, 32)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", 8) + bytes(8)
    source.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks)
    result = cli(capsys, "prompt", "encode", str(source), str(tmp_path / "p"))
    assert result.code == 6
    first, hint = result.stderr.splitlines()
    assert first == f"rtppctl: error: {source}: 32-bit float WAV data is not supported, only 8- or 16-bit PCM"
    assert "sox" in hint


def test_a_16_bit_pcm_wav_in_wave_format_extensible_is_encoded(capsys, tmp_path):
    # sox, ffmpeg and Audacity write WAVE_FORMAT_EXTENSIBLE headers: the format tag 0xFFFE, and the
    # real one (1, PCM) at the start of the SubFormat GUID.
    plain = write_tone(tmp_path / "plain.wav", rate=16000)
    frames = plain.read_bytes()[44:]
    fmt = (struct.pack("<HHIIHH", 0xFFFE, 1, 16000, 32000, 2, 16) + struct.pack("<HHI", 22, 16, 4)
           + struct.pack("<H", 1) + bytes.fromhex("000000001000800000aa00389b71"))
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(frames)) + frames
    source = tmp_path / "extensible.wav"
    source.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks)
    result = cli(capsys, "prompt", "encode", str(source), str(tmp_path / "ext"))
    assert result.code == 0, result.stderr
    assert cli(capsys, "prompt", "encode", str(plain), str(tmp_path / "plain")).code == 0
    for suffix in (".0", ".8"):
        assert (tmp_path / f"ext{suffix}").read_bytes() == (tmp_path / f"plain{suffix}").read_bytes()
    floats = tmp_path / "float.wav"
    floats.write_bytes(source.read_bytes().replace(
        struct.pack("<H", 1) + bytes.fromhex("000000001000800000aa00389b71"),
        struct.pack("<H", 3) + bytes.fromhex("000000001000800000aa00389b71")))
    refused = cli(capsys, "prompt", "encode", str(floats), str(tmp_path / "float"))
    assert refused.code == 6
    first, hint = refused.stderr.splitlines()
    assert first == (f"rtppctl: error: {floats}: WAVE_FORMAT_EXTENSIBLE with 32-bit float data is not supported, "
                     "only 8- or 16-bit PCM")
    assert "sox" in hint and not list(tmp_path.glob("float.[08]"))


def test_every_output_is_checked_before_any_is_replaced(capsys, tmp_path, monkeypatch):
    import os

    from rtppctl import files

    monkeypatch.setattr(files, "FIFO_READER_WAIT", 0.2)
    source = write_tone(tmp_path / "in.wav")
    (tmp_path / "p.0").write_bytes(b"old prompt")
    os.mkfifo(tmp_path / "p.8")  # nobody reads it: the write would fail after p.0 was replaced
    result = cli(capsys, "prompt", "encode", str(source), str(tmp_path / "p"))
    assert result.code == 6 and f"cannot write {tmp_path / 'p.8'}: no process reads from the FIFO" in result.stderr
    assert (tmp_path / "p.0").read_bytes() == b"old prompt"


def test_an_output_in_a_missing_directory_is_exit_6(capsys, tmp_path):
    source = write_tone(tmp_path / "in.wav")
    result = cli(capsys, "prompt", "encode", str(source), str(tmp_path / "no" / "p"))
    assert result.code == 6 and f"cannot write {tmp_path / 'no' / 'p.0'}" in result.stderr


def test_info(capsys, tmp_path):
    # ±16896 are A-law step values: the decoded audio has exactly this level, 20 log10(16896/32768).
    (tmp_path / "p.8").write_bytes(rtp.alaw_encode(struct.pack("<170h", *([16896, -16896] * 85))))
    result = cli(capsys, "prompt", "info", str(tmp_path / "p.8"))
    assert result.code == 0, result.stderr
    assert result.stdout == (f"{tmp_path / 'p.8'}: PCMA (payload type 8), 0.02 s, 170 bytes, 2 packets of 20 ms "
                             "(the last one 10 bytes); peak -5.8 dBFS, RMS -5.8 dBFS\n")
    data = cli(capsys, "prompt", "info", str(tmp_path / "p.8"), "--json").json()
    assert data == {"path": str(tmp_path / "p.8"), "prompt": str(tmp_path / "p"), "codec": "pcma", "payload_type": 8,
                    "encoding": "PCMA", "bytes": 170, "duration": 170 / 8000, "packets": 2,
                    "peak_dbfs": -5.75, "rms_dbfs": -5.75}


def test_info_of_silence_and_of_what_encode_wrote(capsys, tmp_path):
    (tmp_path / "quiet.0").write_bytes(b"\xff" * 320)
    result = cli(capsys, "prompt", "info", str(tmp_path / "quiet.0"))
    assert result.stdout.endswith("2 packets of 20 ms; peak silent, RMS silent\n")
    source = write_tone(tmp_path / "in.wav", rate=8000)
    assert cli(capsys, "prompt", "encode", str(source), str(tmp_path / "p")).code == 0
    data = cli(capsys, "--json", "prompt", "info", str(tmp_path / "p.0")).json()
    assert (data["codec"], data["bytes"], data["packets"], data["duration"]) == ("pcmu", 4000, 25, 0.5)


@pytest.mark.parametrize("name", ["p.wav", "p", "p.9"])
def test_info_on_an_unknown_suffix_names_the_known_ones(capsys, tmp_path, name):
    (tmp_path / name).write_bytes(b"\xff" * 160)
    result = cli(capsys, "prompt", "info", str(tmp_path / name))
    assert result.code == 6
    assert f"{tmp_path / name}: " in result.stderr and ".0 (PCMU), .8 (PCMA)" in result.stderr


def test_info_on_a_missing_file(capsys, tmp_path):
    result = cli(capsys, "prompt", "info", str(tmp_path / "missing.0"))
    assert result.code == 6 and "No such file or directory" in result.stderr


HELP_IMPORTS = """
import sys
from rtppctl.cli.app import run
code = run(["prompt", "encode", "--help"])
print(code, "rtppctl.media" in sys.modules, "rtppctl.proto.rtp" in sys.modules, "wave" in sys.modules, file=sys.stderr)
"""


def test_help_lists_the_group_without_importing_the_media_code(capsys):
    result = cli(capsys, "--help")
    assert result.code == 0 and "prompt" in result.stdout
    child = subprocess.run([sys.executable, "-c", HELP_IMPORTS], capture_output=True, text=True, timeout=60, check=False)
    assert child.stderr.split() == ["0", "False", "False", "False"], child.stderr
