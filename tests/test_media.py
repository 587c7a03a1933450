"""WAV files in (every rate, width and layout a prompt comes in), prompt files out, and every way a
WAV file can be wrong: one InputError naming the file, and nothing written."""

from __future__ import annotations

import math
import os
import re
import struct
import wave
from pathlib import Path

import pytest

from rtppctl import media
from rtppctl.proto import rtp
from rtppctl.proto.errors import InputError


def tone(rate: int, seconds: float, *, freq: float = 1000.0, amplitude: float = 0.5) -> list[float]:
    """A sine in -1..1."""
    return [amplitude * math.sin(2 * math.pi * freq * n / rate) for n in range(round(rate * seconds))]


def write_wav(path: Path, rate: int, left: list[float], *, right: list[float] | None = None, width: int = 2) -> Path:
    """A PCM WAV file written with the wave module (stereo when `right` is given)."""
    def sample(value: float) -> bytes:
        if width == 1:
            return bytes([max(0, min(255, round(128 + 127 * value)))])
        return struct.pack("<h", max(-32768, min(32767, round(32767 * value))))

    channels = [left] if right is None else [left, right]
    frames = b"".join(sample(value) for frame in zip(*channels) for value in frame)
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(len(channels))
        writer.setsampwidth(width)
        writer.setframerate(rate)
        writer.writeframes(frames)
    return path


def riff(fmt: bytes, data: bytes | None = b"\x00\x00" * 8, *, data_size: int | None = None) -> bytes:
    """A WAV file assembled by hand, for headers the wave module will not write."""
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    if data is not None:
        chunks += b"data" + struct.pack("<I", len(data) if data_size is None else data_size) + data
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def fmt(tag: int = 1, channels: int = 1, rate: int = 8000, bits: int = 16) -> bytes:
    align = channels * ((bits + 7) // 8)
    return struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)


PCM_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")  # KSDATAFORMAT_SUBTYPE_*: tag, then this


def extensible_fmt(channels: int = 1, rate: int = 8000, bits: int = 16, subformat: int = 1,
                   tail: bytes = PCM_GUID_TAIL) -> bytes:
    """A WAVE_FORMAT_EXTENSIBLE fmt chunk body: the 16 classic bytes, cbSize 22, valid bits, channel
    mask, and the SubFormat GUID (its first two bytes are the classic format tag)."""
    align = channels * ((bits + 7) // 8)
    return (struct.pack("<HHIIHH", 0xFFFE, channels, rate, rate * align, align, bits)
            + struct.pack("<HHI", 22, bits, 0x3 if channels == 2 else 0x4) + struct.pack("<H", subformat) + tail)


def pcm_values(data: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(data) // 2}h", data))


def zero_crossings(values: list[int]) -> int:
    return sum(1 for a, b in zip(values, values[1:]) if (a < 0) != (b < 0))


def snr_db(reference: list[float], actual: list[int]) -> float:
    signal = sum(r * r for r in reference)
    noise = sum((r - a) ** 2 for r, a in zip(reference, actual))
    return 10 * math.log10(signal / noise)


# -- reading WAV files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000, 11025, 22050, 32000, 44101])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("width", [1, 2])
def test_a_tone_keeps_its_length_level_and_frequency(tmp_path, rate, channels, width):
    signal = tone(rate, 0.5)
    path = write_wav(tmp_path / "in.wav", rate, signal, right=signal if channels == 2 else None, width=width)
    audio = media.read_wav(path)
    assert (audio.rate, audio.channels, audio.bits, audio.frames) == (rate, channels, 8 * width, len(signal))
    assert audio.samples == 4000 and audio.duration == 0.5
    values = pcm_values(audio.pcm)
    # 1 kHz for 0.5 s crosses zero 1000 times (the first sample sits on zero).
    assert abs(zero_crossings(values) - 999) <= 2
    # The middle of the output is the same sine at 8 kHz (the ends see the filter's edge).
    ideal = [32767 * 0.5 * math.sin(2 * math.pi * 1000 * n / 8000) for n in range(len(values))]
    assert snr_db(ideal[200:-200], values[200:-200]) > (35 if width == 1 else 50)


def test_8k_mono_16_bit_is_taken_as_it_is(tmp_path):
    values = [0, 1, -1, 32767, -32768, 1234, -4321, 7]
    path = tmp_path / "in.wav"
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(struct.pack("<8h", *values))
    assert pcm_values(media.read_wav(path).pcm) == values


def test_stereo_is_the_mean_of_both_channels(tmp_path):
    path = tmp_path / "in.wav"
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(2)
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(struct.pack("<8h", 1000, 3000, -32768, -32768, 32767, 32767, 100, -100))
    assert pcm_values(media.read_wav(path).pcm) == [2000, -32768, 32767, 0]


def test_opposite_channels_cancel_at_any_rate(tmp_path):
    signal = tone(44100, 0.2)
    path = write_wav(tmp_path / "in.wav", 44100, signal, right=[-value for value in signal])
    assert max(map(abs, pcm_values(media.read_wav(path).pcm))) <= 1


def test_8_bit_samples_are_unsigned_and_widened(tmp_path):
    path = tmp_path / "in.wav"
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(1)
        writer.setframerate(8000)
        writer.writeframes(bytes([128, 0, 255, 129]))
    assert pcm_values(media.read_wav(path).pcm) == [0, -32768, 32512, 256]


def test_resampling_passes_the_telephone_band_and_stops_aliases():
    def gain_db(freq: float, rate: int) -> float:
        out = media.resample_to_8k(tone(rate, 0.25, freq=freq), rate)[200:-200]
        rms = math.sqrt(sum(v * v for v in out) / len(out))
        return 20 * math.log10(max(rms, 1e-12) / (0.5 / math.sqrt(2)))

    for rate in (16000, 44100, 48000):
        for freq in (300, 1000, 3400):
            assert abs(gain_db(freq, rate)) < 0.1, (rate, freq)
        for freq in (4700, 6000, 7500):  # would fold back to 3300, 2000 and 500 Hz
            assert gain_db(freq, rate) < -45, (rate, freq)


def test_resampled_length_is_rounded():
    assert len(media.resample_to_8k([0.0] * 44100, 44100)) == 8000
    assert len(media.resample_to_8k([0.0] * 6, 48000)) == 1
    assert len(media.resample_to_8k([0.0] * 2, 48000)) == 0
    assert media.resample_to_8k([1.0, 2.0], 8000, gain=2) == [2.0, 4.0]


def test_levels():
    full_square = struct.pack("<4h", 32767, -32768, 32767, -32768)
    peak, rms = media.levels(full_square)
    assert peak == 0.0 and -0.01 <= rms <= 0.0
    sine = struct.pack("<8000h", *(round(32767 * math.sin(2 * math.pi * 1000 * n / 8000)) for n in range(8000)))
    assert media.levels(sine) == (pytest.approx(0.0, abs=0.01), pytest.approx(-3.01, abs=0.01))
    assert media.levels(bytes(100)) == (None, None)
    assert media.levels(b"") == (None, None)


# -- every bad WAV file -------------------------------------------------------------------------------------


def _truncated(tmp_path: Path) -> bytes:
    whole = write_wav(tmp_path / "whole.wav", 8000, tone(8000, 0.1)).read_bytes()
    return whole[:-100]


BAD_WAVS = {
    "text": (lambda _: b"hello, this is not audio\n" * 4, "not a WAV file (no RIFF/WAVE header)"),
    "empty file": (lambda _: b"", "not a WAV file (no RIFF/WAVE header)"),
    "riff not wave": (lambda _: b"RIFF\x04\x00\x00\x00AVI LIST", "not a WAV file (no RIFF/WAVE header)"),
    "rifx": (lambda _: b"RIFX\x00\x00\x00\x24WAVE", "RIFX WAV files are not supported"),
    "float": (lambda _: riff(fmt(tag=3, bits=32)), "32-bit float WAV data is not supported, only 8- or 16-bit PCM"),
    "a-law": (lambda _: riff(fmt(tag=6, bits=8)), "A-law WAV data is not supported"),
    "mp3": (lambda _: riff(fmt(tag=0x55)), "MP3 WAV data is not supported"),
    "unknown tag": (lambda _: riff(fmt(tag=0x1234)), "format tag 4660 WAV data is not supported"),
    "24-bit": (lambda _: riff(fmt(bits=24), bytes(6)), "24-bit samples: only 8- and 16-bit PCM are supported"),
    "32-bit": (lambda _: riff(fmt(bits=32), bytes(8)), "32-bit samples: only 8- and 16-bit PCM are supported"),
    "0 channels": (lambda _: riff(fmt(channels=0)), "the WAV header says 0 channels"),
    "3 channels": (lambda _: riff(fmt(channels=3), bytes(12)), "3 channels: only mono and stereo WAV files are supported"),
    "rate too low": (lambda _: riff(fmt(rate=7999)), "sample rate 7999 Hz is out of range 8000..48000"),
    "rate too high": (lambda _: riff(fmt(rate=96000)), "sample rate 96000 Hz is out of range 8000..48000"),
    "rate 0": (lambda _: riff(fmt(rate=0)), "sample rate 0 Hz is out of range 8000..48000"),
    "no audio": (lambda _: riff(fmt(), b""), "the WAV file holds no audio (0 frames)"),
    "no data chunk": (lambda _: riff(fmt(), None), "not a usable WAV file: fmt chunk and/or data chunk missing"),
    "truncated header": (lambda _: riff(fmt())[:30], "truncated WAV file: a header chunk ends early"),
    "truncated data": (_truncated, "truncated WAV file: the header announces 800 frames, the file holds 750"),
    "data size lies": (lambda _: riff(fmt(), bytes(16), data_size=1000), "the header announces 500 frames, the file holds 8"),
    "too long": (lambda _: riff(fmt(), bytes(16), data_size=2 * 8000 * 3601), "3601 s of audio: longer than the 3600 s rtppctl reads"),
    "extensible float": (lambda _: riff(extensible_fmt(bits=32, subformat=3), bytes(8)),
                         "WAVE_FORMAT_EXTENSIBLE with 32-bit float data is not supported, only 8- or 16-bit PCM"),
    "extensible a-law": (lambda _: riff(extensible_fmt(bits=8, subformat=6), bytes(8)),
                         "WAVE_FORMAT_EXTENSIBLE with A-law data is not supported"),
    "extensible unknown": (lambda _: riff(extensible_fmt(tail=bytes(14)), bytes(8)),
                           "WAVE_FORMAT_EXTENSIBLE with the unknown subformat 0100" + "00" * 14 + " is not supported"),
    "extensible 24-bit": (lambda _: riff(extensible_fmt(bits=24), bytes(6)),
                          "24-bit samples: only 8- and 16-bit PCM are supported"),
    "extensible short": (lambda _: riff(extensible_fmt()[:24], bytes(8)), "a WAVE_FORMAT_EXTENSIBLE fmt chunk of 24 bytes"),
    "extensible 0 channels": (lambda _: riff(extensible_fmt(channels=0)), "the WAV header says 0 channels"),
    "extensible no data": (lambda _: riff(extensible_fmt(), None), "fmt chunk and/or data chunk missing"),
    "extensible truncated": (lambda _: riff(extensible_fmt(), bytes(16), data_size=1000),
                             "the header announces 500 frames, the file holds 8"),
}


@pytest.mark.parametrize(("channels", "bits", "rate"), [(1, 16, 8000), (2, 16, 44100), (1, 8, 16000), (2, 8, 8000)])
def test_wave_format_extensible_pcm_reads_as_the_plain_file(tmp_path, channels, bits, rate):
    # Many tools (sox, ffmpeg, Audacity) write 16-bit PCM this way; the samples are the same bytes.
    signal = tone(rate, 0.2)
    plain = write_wav(tmp_path / "plain.wav", rate, signal, right=signal if channels == 2 else None, width=bits // 8)
    frames = plain.read_bytes()[44:]
    extra = b"LIST" + struct.pack("<I", 3) + b"abc\x00"  # an odd-sized chunk, padded, before the audio
    body = b"fmt " + struct.pack("<I", 40) + extensible_fmt(channels, rate, bits) + extra
    body += b"data" + struct.pack("<I", len(frames)) + frames
    ext = tmp_path / "ext.wav"
    ext.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body)
    read = media.read_wav(ext)
    assert (read.rate, read.channels, read.bits, read.frames) == (rate, channels, bits, len(signal))
    assert read.pcm == media.read_wav(plain).pcm


@pytest.mark.parametrize("case", BAD_WAVS)
def test_every_bad_wav_is_one_input_error_naming_the_file_and_nothing_is_written(tmp_path, case):
    make, message = BAD_WAVS[case]
    source = tmp_path / "bad input.wav"
    source.write_bytes(make(tmp_path))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InputError) as caught:
        media.encode_prompt(source, out / "prompt")
    text = str(caught.value)
    assert text.startswith(f"{source}: ") and message in text, text
    assert "\n" not in text and caught.value.exit_code == 6
    assert list(out.iterdir()) == []


def test_a_file_that_cannot_be_read(tmp_path):
    with pytest.raises(InputError, match=re.escape(f"cannot read {tmp_path / 'missing.wav'}: No such file or directory")):
        media.read_wav(tmp_path / "missing.wav")
    with pytest.raises(InputError, match=re.escape(f"{tmp_path}: is a directory, not a WAV file")):
        media.read_wav(tmp_path)


# -- prompt files ---------------------------------------------------------------------------------------------


def test_encode_writes_both_codecs_and_they_decode_close_to_the_source(tmp_path):
    # 997 Hz, not 1000: a tone that divides the sample rate hits the same few values every period,
    # which makes G.711's error a distortion of those values instead of noise.
    source = write_wav(tmp_path / "in.wav", 8000, tone(8000, 1.0, freq=997))
    result = media.encode_prompt(source, tmp_path / "welcome")
    assert result.prompt == str(tmp_path / "welcome")
    assert (result.duration, result.samples, result.packets) == (1.0, 8000, 50)
    assert (result.source_rate, result.source_channels, result.source_bits) == (8000, 1, 16)
    assert [(f.path, f.codec, f.payload_type, f.encoding, f.bytes, f.packets) for f in result.files] == [
        (str(tmp_path / "welcome.0"), "pcmu", 0, "PCMU", 8000, 50),
        (str(tmp_path / "welcome.8"), "pcma", 8, "PCMA", 8000, 50),
    ]
    original = pcm_values(media.read_wav(source).pcm)
    for suffix, codec in ((".0", rtp.PCMU), (".8", rtp.PCMA)):
        payload = (tmp_path / f"welcome{suffix}").read_bytes()
        assert len(payload) == 8000
        assert snr_db(original, pcm_values(rtp.decode(codec, payload))) > 35  # G.711 gives ~38 dB
    assert result.peak_dbfs == pytest.approx(-6.02, abs=0.05)  # the source's level, before G.711
    assert result.rms_dbfs == pytest.approx(-9.03, abs=0.05)


def test_encode_from_44k_stereo_matches_the_ideal_8k_tone(tmp_path):
    signal = tone(44100, 1.0)
    source = write_wav(tmp_path / "in.wav", 44100, signal, right=signal)
    result = media.encode_prompt(source, tmp_path / "p", codecs=["pcma"])
    assert [f.path for f in result.files] == [str(tmp_path / "p.8")]
    assert not (tmp_path / "p.0").exists()
    decoded = pcm_values(rtp.alaw_decode((tmp_path / "p.8").read_bytes()))
    ideal = [32767 * 0.5 * math.sin(2 * math.pi * 1000 * n / 8000) for n in range(8000)]
    assert snr_db(ideal[200:-200], decoded[200:-200]) > 30


def test_codecs_are_checked_first_and_given_once(tmp_path):
    source = write_wav(tmp_path / "in.wav", 8000, tone(8000, 0.1))
    with pytest.raises(InputError, match="unknown codec 'g722'"):
        media.encode_prompt(source, tmp_path / "p", codecs=["pcmu", "g722"])
    with pytest.raises(InputError, match="no codec given"):
        media.encode_prompt(source, tmp_path / "p", codecs=[])
    assert not list(tmp_path.glob("p.*"))
    result = media.encode_prompt(source, tmp_path / "p", codecs=["PCMU", "0", rtp.PCMU])
    assert [f.codec for f in result.files] == ["pcmu"]


def test_an_output_that_cannot_be_written_writes_nothing(tmp_path):
    source = write_wav(tmp_path / "in.wav", 8000, tone(8000, 0.1))
    with pytest.raises(InputError, match=re.escape(f"cannot write {tmp_path / 'missing' / 'p.0'}: the directory ") + ".* does not exist"):
        media.encode_prompt(source, tmp_path / "missing" / "p")
    (tmp_path / "p.8").mkdir()  # the second output is a directory: the first must not be written either
    with pytest.raises(InputError, match="p.8: it is a directory"):
        media.encode_prompt(source, tmp_path / "p")
    assert not (tmp_path / "p.0").exists()
    with pytest.raises(InputError, match="has no file name part"):
        media.encode_prompt(source, str(tmp_path) + os.sep)


def test_the_input_is_never_overwritten(tmp_path):
    source = write_wav(tmp_path / "in.0", 8000, tone(8000, 0.1))
    before = source.read_bytes()
    with pytest.raises(InputError, match=re.escape(f"cannot write {source}: it is the input file")):
        media.encode_prompt(source, tmp_path / "in")
    assert source.read_bytes() == before


def test_existing_prompts_are_replaced_keeping_their_mode_and_links(tmp_path):
    source = write_wav(tmp_path / "in.wav", 8000, tone(8000, 0.1))
    (tmp_path / "p.0").write_bytes(b"old")
    os.chmod(tmp_path / "p.0", 0o640)
    real = tmp_path / "real.8"
    real.write_bytes(b"old")
    (tmp_path / "p.8").symlink_to(real)
    media.encode_prompt(source, tmp_path / "p")
    assert len((tmp_path / "p.0").read_bytes()) == 800
    assert (tmp_path / "p.0").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "p.8").is_symlink() and len(real.read_bytes()) == 800
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.endswith(".tmp")) == []


def test_prompt_info(tmp_path):
    source = write_wav(tmp_path / "in.wav", 16000, tone(16000, 0.5))
    media.encode_prompt(source, tmp_path / "p")
    for suffix, codec in ((".0", "pcmu"), (".8", "pcma")):
        info = media.prompt_info(tmp_path / f"p{suffix}")
        assert (info.path, info.prompt, info.codec) == (str(tmp_path / f"p{suffix}"), str(tmp_path / "p"), codec)
        assert (info.bytes, info.duration, info.packets) == (4000, 0.5, 25)
        # The decoded audio's level: G.711's steps near the peak are 3% of it (0.25 dB).
        assert info.peak_dbfs == pytest.approx(-6.0, abs=0.5) and info.rms_dbfs == pytest.approx(-9.0, abs=0.2)
    (tmp_path / "odd.8").write_bytes(b"\xd5" * 170)
    silent = media.prompt_info(tmp_path / "odd.8")
    assert (silent.packets, silent.duration, silent.rms_dbfs) == (2, 170 / 8000, -72.25)
    (tmp_path / "zero.0").write_bytes(b"\xff" * 160)
    assert (media.prompt_info(tmp_path / "zero.0").peak_dbfs, media.prompt_info(tmp_path / "zero.0").rms_dbfs) == (None, None)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("welcome.wav", "welcome.wav: suffix '.wav': prompt files end in the payload type of their codec: .0 (PCMU), .8 (PCMA)"),
        ("welcome", "welcome: no suffix: prompt files end in"),
        ("welcome.9", "suffix '.9'"),
    ],
)
def test_prompt_info_knows_two_suffixes(tmp_path, name, message):
    (tmp_path / name).write_bytes(b"\xff" * 160)
    with pytest.raises(InputError, match=re.escape(message)):
        media.prompt_info(tmp_path / name)


def test_prompt_info_on_files_that_are_not_prompts(tmp_path):
    (tmp_path / "empty.0").write_bytes(b"")
    with pytest.raises(InputError, match="empty.0: the prompt file is empty"):
        media.prompt_info(tmp_path / "empty.0")
    (tmp_path / "dir.8").mkdir()
    with pytest.raises(InputError, match="dir.8: is a directory"):
        media.prompt_info(tmp_path / "dir.8")
    with pytest.raises(InputError, match="cannot read .*missing.0: No such file"):
        media.prompt_info(tmp_path / "missing.0")


# -- writing WAV files ---------------------------------------------------------------------------------------------


def test_write_wav_round_trips(tmp_path):
    pcm = struct.pack("<5h", 0, 32767, -32768, 5, -5)
    media.write_wav(tmp_path / "out.wav", pcm)
    with wave.open(str(tmp_path / "out.wav"), "rb") as reader:
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate(), reader.getnframes()) == (1, 2, 8000, 5)
    assert media.read_wav(tmp_path / "out.wav").pcm == pcm


def test_write_wav_refuses_half_samples_and_bad_paths(tmp_path):
    with pytest.raises(InputError, match="3 bytes of 16-bit PCM is not a whole number of samples"):
        media.write_wav(tmp_path / "out.wav", b"abc")
    with pytest.raises(InputError, match="does not exist"):
        media.write_wav(tmp_path / "no" / "out.wav", b"ab")
    assert not (tmp_path / "out.wav").exists()
