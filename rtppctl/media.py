"""Media files: WAV in and out, and RTPProxy prompt files (raw G.711 payload) made from them.

RTPProxy plays a prompt named PROMPT from the file `PROMPT.<payload type>`: `PROMPT.0` holds PCMU,
`PROMPT.8` PCMA, as bare payload bytes (8000 a second, no header; docs/protocol.md §8). This module
turns a WAV file (8-48 kHz, mono or stereo, 8- or 16-bit PCM, plain or WAVE_FORMAT_EXTENSIBLE)
into 8 kHz mono 16-bit audio, encodes it with `rtppctl.proto.rtp`, and writes the prompt files;
it also describes a prompt file and writes WAV files (for recordings decoded later).

Every check comes before the first byte is written: a bad WAV, an unknown codec or an output path
that cannot be written is one `InputError` naming the file, and then no file is created or changed.
Outputs go through `rtppctl.files`: regular files are written to temp files in their own
directories and renamed over the targets only once all of them are complete (all or nothing);
stdout, descriptors, FIFOs and devices are written through. Nothing here prints.
"""

from __future__ import annotations

import math
import operator
import os
import sys
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rtppctl.files import check_writable, same_file, write_files_atomically
from rtppctl.proto import rtp
from rtppctl.proto.errors import InputError

#: Sample rates read_wav accepts: telephony's 8 kHz up to studio 48 kHz.
MIN_RATE, MAX_RATE = 8000, 48000
#: Longer audio is refused before it is read whole (an hour of 48 kHz stereo is 660 MB).
MAX_SECONDS = 3600
#: The prompt file suffixes RTPProxy opens, and their codecs.
PROMPT_SUFFIXES: dict[str, rtp.Codec] = {f".{codec.payload_type}": codec for codec in rtp.CODECS.values()}

_RATE = rtp.CLOCK_RATE
_PACKET_BYTES = rtp.SAMPLES_PER_PACKET  # G.711: one byte per sample

#: Names of the WAV format tags people meet, for "compressed WAV" messages.
_WAV_FORMATS = {
    2: "Microsoft ADPCM", 3: "32-bit float", 6: "A-law", 7: "µ-law", 0x11: "IMA ADPCM", 0x31: "GSM 6.10",
    0x55: "MP3", 0xFFFE: "WAVE_FORMAT_EXTENSIBLE",
}
_CONVERT_HINT = "convert it to 16-bit PCM first, e.g. sox IN -b 16 -e signed-integer OUT.wav"


@dataclass(frozen=True)
class WavAudio:
    """A WAV file read and converted to 8 kHz mono signed 16-bit little-endian PCM."""

    path: str
    #: The file's own format.
    rate: int
    channels: int
    bits: int
    frames: int
    #: The converted audio.
    pcm: bytes

    @property
    def samples(self) -> int:
        return len(self.pcm) // 2

    @property
    def duration(self) -> float:
        return self.samples / _RATE


@dataclass(frozen=True)
class PromptFile:
    """One prompt file written by encode_prompt."""

    path: str
    codec: str
    payload_type: int
    encoding: str
    bytes: int
    packets: int


@dataclass(frozen=True)
class PromptEncoding:
    """What encode_prompt read and wrote."""

    source: str
    source_rate: int
    source_channels: int
    source_bits: int
    #: The name to give RTPProxy (`P... CALLID PROMPT ...`): it opens PROMPT.0, PROMPT.8.
    prompt: str
    duration: float
    samples: int
    #: 20 ms packets the relay sends per play (the last one may be shorter).
    packets: int
    peak_dbfs: float | None
    rms_dbfs: float | None
    files: tuple[PromptFile, ...]


@dataclass(frozen=True)
class PromptInfo:
    """A prompt file described: its codec from the suffix, its size, and its level."""

    path: str
    prompt: str
    codec: str
    payload_type: int
    encoding: str
    bytes: int
    duration: float
    packets: int
    peak_dbfs: float | None
    rms_dbfs: float | None


# -- reading WAV -----------------------------------------------------------------------------------


def read_wav(path: str | os.PathLike[str]) -> WavAudio:
    """Read a PCM WAV file and convert it to 8 kHz mono 16-bit.

    Stereo is mixed to mono (the mean of both channels), 8-bit samples are widened, other rates
    are low-passed and resampled (`resample_to_8k`). Anything else is an InputError naming the
    file and what is wrong with it.
    """
    import wave  # noqa: PLC0415

    from rtppctl.files import open_input  # noqa: PLC0415

    name = os.fspath(path)
    try:
        with open_input(path, what="WAV file") as handle:
            _check_riff(name, handle.read(12))
            extensible = _extensible_pcm(name, handle)
            if extensible is not None:
                channels, width, rate, start, size = extensible
                frames = size // (channels * width)
                _check_format(name, channels, width, rate, frames)
                handle.seek(start)
                data = handle.read(frames * channels * width)
            else:
                handle.seek(0)
                try:
                    reader = wave.open(handle, "rb")
                except wave.Error as exc:
                    raise _wave_error(name, str(exc)) from None
                except EOFError:
                    raise InputError(f"{name}: truncated WAV file: a header chunk ends early") from None
                channels, width, rate, frames = reader.getnchannels(), reader.getsampwidth(), reader.getframerate(), reader.getnframes()
                _check_format(name, channels, width, rate, frames)
                data = reader.readframes(frames)
    except OSError as exc:
        raise InputError(f"cannot read {name}: {exc.strerror or exc}") from None
    if len(data) < frames * channels * width:
        held = len(data) // (channels * width)
        raise InputError(f"{name}: truncated WAV file: the header announces {frames} frames, the file holds {held}",
                         "the file was cut short (an interrupted copy or recording?)")
    samples, gain = _mono(data, channels, width)
    pcm = _pcm_bytes(samples, gain) if rate == _RATE else _pack(resample_to_8k(samples, rate, gain=gain))
    return WavAudio(name, rate, channels, 8 * width, frames, pcm)


def _check_riff(name: str, head: bytes) -> None:
    if head[:4] in (b"RIFX", b"RF64"):
        raise InputError(f"{name}: {head[:4].decode()} WAV files are not supported, only RIFF", _CONVERT_HINT)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise InputError(f"{name}: not a WAV file (no RIFF/WAVE header)")


#: WAVE_FORMAT_EXTENSIBLE: the real format is the SubFormat GUID at the end of the fmt chunk, whose
#: first two bytes are a classic format tag and whose other 14 are KSDATAFORMAT's fixed tail.
_EXTENSIBLE = 0xFFFE
_SUBFORMAT_TAIL = bytes.fromhex("000000001000800000aa00389b71")
#: A WAV file has a handful of chunks; more before the audio is not a file worth walking.
_MAX_CHUNKS = 64


def _extensible_pcm(name: str, handle) -> tuple[int, int, int, int, int] | None:  # noqa: ANN001
    """(channels, bytes per sample, rate, data offset, data size) of a WAVE_FORMAT_EXTENSIBLE file
    whose subformat is PCM; None for any other format tag (the wave module reads those, and says
    what is wrong with them). Other subformats are refused here, named."""
    import struct  # noqa: PLC0415

    fmt = data = None
    position = 12
    for _ in range(_MAX_CHUNKS):
        handle.seek(position)
        head = handle.read(8)
        if len(head) < 8:
            break
        chunk, size = head[:4], struct.unpack("<I", head[4:])[0]
        if chunk == b"fmt ":
            fmt = handle.read(min(size, 1024))
            if len(fmt) < 2 or struct.unpack_from("<H", fmt)[0] != _EXTENSIBLE:
                return None
        elif chunk == b"data":
            data = (position + 8, size)
            break
        position += 8 + size + (size & 1)  # chunks are padded to an even size
    if fmt is None:
        return None
    if len(fmt) < 40:
        raise InputError(f"{name}: truncated WAV file: a WAVE_FORMAT_EXTENSIBLE fmt chunk of {len(fmt)} bytes "
                         "(it needs 40)")
    channels, rate, _, align, bits = struct.unpack_from("<HIIHH", fmt, 2)
    subformat = fmt[24:40]
    if subformat[2:] != _SUBFORMAT_TAIL:
        raise InputError(f"{name}: WAVE_FORMAT_EXTENSIBLE with the unknown subformat {subformat.hex()} is not "
                         "supported, only 8- or 16-bit PCM", _CONVERT_HINT)
    tag = struct.unpack_from("<H", subformat)[0]
    if tag != 1:
        kind = _WAV_FORMATS.get(tag, f"format tag {tag}")
        raise InputError(f"{name}: WAVE_FORMAT_EXTENSIBLE with {kind} data is not supported, only 8- or 16-bit "
                         "PCM", _CONVERT_HINT)
    if channels == 0:
        raise InputError(f"{name}: the WAV header says 0 channels")
    width = (bits + 7) // 8
    if width == 0 or align != channels * width:
        raise InputError(f"{name}: not a usable WAV file: {bits} bits per sample and {channels} channels, but "
                         f"{align} bytes per frame")
    if data is None:
        raise InputError(f"{name}: not a usable WAV file: fmt chunk and/or data chunk missing")
    return channels, width, rate, data[0], data[1]


def _wave_error(name: str, message: str) -> InputError:
    """The wave module's complaint in an operator's words."""
    if message.startswith("unknown format:"):
        try:
            tag = int(message.split(":", 1)[1])
        except ValueError:
            tag = -1
        kind = _WAV_FORMATS.get(tag, f"format tag {tag}")
        return InputError(f"{name}: {kind} WAV data is not supported, only 8- or 16-bit PCM", _CONVERT_HINT)
    if message == "bad # of channels":
        return InputError(f"{name}: the WAV header says 0 channels")
    if message == "bad sample width":
        return InputError(f"{name}: the WAV header says 0 bits per sample")
    return InputError(f"{name}: not a usable WAV file: {message}")


def _check_format(name: str, channels: int, width: int, rate: int, frames: int) -> None:
    if channels not in (1, 2):
        raise InputError(f"{name}: {channels} channels: only mono and stereo WAV files are supported", _CONVERT_HINT)
    if width not in (1, 2):
        raise InputError(f"{name}: {8 * width}-bit samples: only 8- and 16-bit PCM are supported", _CONVERT_HINT)
    if not MIN_RATE <= rate <= MAX_RATE:
        raise InputError(f"{name}: sample rate {rate} Hz is out of range {MIN_RATE}..{MAX_RATE}", _CONVERT_HINT)
    if frames == 0:
        raise InputError(f"{name}: the WAV file holds no audio (0 frames)")
    if frames > MAX_SECONDS * rate:
        raise InputError(f"{name}: {frames / rate:.0f} s of audio: longer than the {MAX_SECONDS} s rtppctl reads",
                         "a prompt can be played in a loop (count -1); cut the file")


#: Maps an unsigned 8-bit sample to the same value as a signed byte (128 -> 0).
_FLIP_SIGN = bytes(value ^ 0x80 for value in range(256))


def _mono(data: bytes, channels: int, width: int) -> tuple[array, float]:
    """(one number per frame, the gain that brings it to the 16-bit scale).

    Folding the 8-bit widening and the stereo halving into a gain lets the resampler apply them
    with its coefficients, instead of in a pass of their own over every sample."""
    if width == 1:
        samples, gain = array("b", data.translate(_FLIP_SIGN)), 256.0
    else:
        samples, gain = _int16(data), 1.0
    if channels == 2:
        samples, gain = array("i", map(operator.add, samples[0::2], samples[1::2])), gain / 2
    return samples, gain


def _int16(pcm: bytes) -> array:
    samples = array("h")
    samples.frombytes(pcm)
    if sys.byteorder == "big":
        samples.byteswap()  # WAV data and rtppctl's PCM buffers are little-endian
    return samples


def _pack(values: Iterable[float]) -> bytes:
    """Round and clip to signed 16 bits, as little-endian bytes."""
    samples = array("h", [-32768 if v < -32768 else 32767 if v > 32767 else v for v in map(round, values)])
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


def _pcm_bytes(samples: array, gain: float) -> bytes:
    if samples.typecode == "h" and gain == 1.0:
        return _pack_int16(samples)  # 16-bit mono at 8 kHz is already what is wanted
    return _pack(value * gain for value in samples)


def _pack_int16(samples: array) -> bytes:
    if sys.byteorder == "big":
        samples = array("h", samples)
        samples.byteswap()
    return samples.tobytes()


# -- resampling --------------------------------------------------------------------------------------

# The anti-alias filter: a Kaiser-windowed sinc cut at 4 kHz (the new Nyquist frequency), whose
# transition runs from 3.4 to 4.6 kHz. The telephone band (300-3400 Hz) passes untouched; what
# lies between 4.0 and 4.6 kHz folds back above 3.4 kHz, out of that band; above 4.6 kHz it is
# 50 dB down, under G.711's own ~38 dB signal-to-noise ratio. (Each extra 10 dB would lengthen
# the filter, and the time it takes, by a fifth.)
_CUTOFF_HZ = 4000.0
_TRANSITION_HZ = 1200.0
_STOPBAND_DB = 50.0
_KAISER_BETA = 0.1102 * (_STOPBAND_DB - 8.7)
#: Half the filter's length in seconds (Kaiser's estimate of the length for this transition).
_HALF_SPAN_S = (_STOPBAND_DB - 7.95) / (14.36 * _TRANSITION_HZ) / 2
#: Most fractional positions a filter bank holds. A rate whose ratio to 8 kHz needs more (44101 Hz
#: needs 8000) takes the nearest of these: a timing error under 1/1000 of an input sample.
_MAX_PHASES = 512


def _sum_of_products(a: Iterable[float], b: Iterable[float]) -> float:
    return sum(map(operator.mul, a, b))


# math.sumprod (3.12) is a dot product in C; before it, sum(map(mul)) is the fastest pure spelling.
_dot = getattr(math, "sumprod", None) or _sum_of_products


def _bessel_i0(x: float) -> float:
    """The modified Bessel function I0, by its power series (converges fast for the betas used)."""
    total = term = 1.0
    k = 0
    while term > 1e-12 * total:
        k += 1
        term *= (x / (2 * k)) ** 2
        total += term
    return total


def _filter_bank(phases: int, half_taps: int, rate: int, gain: float) -> list[list[float]]:
    """One set of 2 * half_taps coefficients per fractional position p/phases of an input sample.

    Tap j of phase p weighs the input sample j - half_taps + 1 places from the one before the
    output instant. Each set is scaled to add up to `gain`, so every phase passes DC unchanged."""
    bandwidth = 2 * _CUTOFF_HZ / rate
    norm = _bessel_i0(_KAISER_BETA)
    bank = []
    for phase in range(phases):
        fraction = phase / phases
        taps = []
        for j in range(2 * half_taps):
            t = j - half_taps + 1 - fraction  # distance in input samples from the output instant
            x = t / half_taps
            if abs(x) >= 1:
                taps.append(0.0)
                continue
            window = _bessel_i0(_KAISER_BETA * math.sqrt(1 - x * x)) / norm
            arg = math.pi * bandwidth * t
            taps.append(window * (math.sin(arg) / arg if arg else 1.0))
        scale = gain / sum(taps)
        bank.append([tap * scale for tap in taps])
    return bank


def resample_to_8k(samples: Sequence[float], rate: int, *, gain: float = 1.0) -> list[float]:
    """Low-pass `samples` (at `rate` Hz, 8000 or more) and take them at 8 kHz; times `gain`.

    A polyphase windowed-sinc resampler: output sample n sits at input position n * rate / 8000;
    it is the dot product of the input around it with the coefficient set of that position's
    fraction. When rate / 8000 reduces to p/q with q <= 512 (every common rate) the positions are
    exact; otherwise the nearest of 512 fractions is used. The output has
    round(len(samples) * 8000 / rate) samples; the input is taken as silent beyond its ends.
    """
    if rate < _RATE:
        raise ValueError(f"resample_to_8k only lowers the rate; {rate} Hz is below {_RATE}")
    count = (len(samples) * _RATE + rate // 2) // rate
    if rate == _RATE:
        return [value * gain for value in samples]
    step = _RATE // math.gcd(rate, _RATE)  # input positions repeat their fraction every `step` outputs
    phases = step if step <= _MAX_PHASES else _MAX_PHASES
    half_taps = max(2, math.ceil(_HALF_SPAN_S * rate))
    width = 2 * half_taps
    bank = _filter_bank(phases, half_taps, rate, gain)
    # Position of output n in units of 1/phases input sample, rounded (exact when phases == step).
    numerator, denominator, rounding = rate * phases, _RATE, _RATE // 2

    def first_tap(n: int) -> tuple[int, int]:
        """(input index of output n's first tap, its phase)."""
        base, phase = divmod((n * numerator + rounding) // denominator, phases)
        return base - half_taps + 1, phase

    dot = _dot
    out: list[float] = []
    append = out.append
    for start in range(0, count, _BLOCK):
        stop = min(count, start + _BLOCK)
        low = first_tap(start)[0]
        # The block's input as a list of floats: float-by-float products are the fastest
        # sum(map(mul)) can do, and a block at a time keeps the memory small.
        span = _span(samples, low, first_tap(stop - 1)[0] + width)
        # first_tap(n), inlined: this loop runs 8000 times per second of audio.
        offset = half_taps - 1 + low
        for n in range(start, stop):
            base, phase = divmod((n * numerator + rounding) // denominator, phases)
            at = base - offset
            append(dot(bank[phase], span[at:at + width]))
    return out


#: Output samples computed per block of input converted to floats.
_BLOCK = 8000


def _span(samples: Sequence[float], start: int, stop: int) -> list[float]:
    """samples[start:stop] as floats, with zeros for the indices outside the input."""
    inside = list(map(float, samples[max(start, 0):max(min(stop, len(samples)), 0)]))
    return [0.0] * max(0, -start) + inside + [0.0] * max(0, stop - max(start, len(samples)))


# -- levels ------------------------------------------------------------------------------------------


def levels(pcm: bytes) -> tuple[float | None, float | None]:
    """(peak, RMS) of 16-bit PCM in dBFS (full scale 32768; a full-scale sine's RMS is -3.01),
    rounded to 0.01 dB; None for silence (its level is minus infinity, which JSON cannot hold)."""
    samples = _int16(pcm)
    if not samples:
        return None, None
    peak = max(max(samples), -min(samples))
    power = _dot(samples, samples) / len(samples)
    return _dbfs(peak), _dbfs(math.sqrt(power))


def _dbfs(value: float) -> float | None:
    return round(20 * math.log10(value / 32768), 2) if value > 0 else None


# -- prompt files ------------------------------------------------------------------------------------


def _codecs(names: Iterable[str | rtp.Codec]) -> list[rtp.Codec]:
    chosen: list[rtp.Codec] = []
    for name in names:
        codec = name if isinstance(name, rtp.Codec) else rtp.codec_named(name)
        if codec not in chosen:
            chosen.append(codec)
    if not chosen:
        raise InputError(f"no codec given: use {', '.join(rtp.CODECS)}")
    return chosen


def _packets(size: int) -> int:
    return -(-size // _PACKET_BYTES)


def encode_prompt(
    wav_path: str | os.PathLike[str],
    out_template: str | os.PathLike[str],
    codecs: Iterable[str | rtp.Codec] = ("pcmu", "pcma"),
) -> PromptEncoding:
    """Write OUT_TEMPLATE.0 (PCMU) and/or OUT_TEMPLATE.8 (PCMA) from a WAV file.

    Checks first (codecs, every output path, the WAV file), writes afterwards: on any error
    nothing is written. The outputs replace existing files atomically, together.
    """
    chosen = _codecs(codecs)
    template = os.fspath(out_template)
    if not Path(template).name or template.endswith(os.sep):
        raise InputError(f"prompt name {template!r} has no file name part: give e.g. prompts/welcome",
                         "rtppctl writes NAME.0 and NAME.8; the relay is given NAME")
    source = os.fspath(wav_path)
    targets = [f"{template}.{codec.payload_type}" for codec in chosen]
    for target in targets:
        check_writable(target)
        if same_file(target, source):
            raise InputError(f"cannot write {target}: it is the input file {source}")
    audio = read_wav(source)
    contents = {target: rtp.encode(codec, audio.pcm) for target, codec in zip(targets, chosen, strict=True)}
    write_files_atomically(contents)
    peak, rms = levels(audio.pcm)
    return PromptEncoding(
        source=source, source_rate=audio.rate, source_channels=audio.channels, source_bits=audio.bits,
        prompt=template, duration=audio.duration, samples=audio.samples, packets=_packets(audio.samples),
        peak_dbfs=peak, rms_dbfs=rms,
        files=tuple(PromptFile(target, codec.name, codec.payload_type, codec.encoding, len(contents[target]),
                               _packets(len(contents[target])))
                    for target, codec in zip(targets, chosen, strict=True)),
    )


def read_prompt(path: str | os.PathLike[str]) -> tuple[rtp.Codec, bytes]:
    """(codec from the suffix, payload bytes) of a prompt file; InputError for anything else."""
    name = os.fspath(path)
    suffix = Path(name).suffix
    codec = PROMPT_SUFFIXES.get(suffix)
    if codec is None:
        known = ", ".join(f"{s} ({c.encoding})" for s, c in PROMPT_SUFFIXES.items())
        said = f"suffix {suffix!r}" if suffix else "no suffix"
        raise InputError(f"{name}: {said}: prompt files end in the payload type of their codec: {known}",
                         "the relay opens PROMPT.<payload type> for the PROMPT it is given")
    limit = MAX_SECONDS * _RATE
    from rtppctl.files import open_input  # noqa: PLC0415

    try:
        with open_input(name, what="prompt file") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise InputError(f"cannot read {name}: {exc.strerror or exc}") from None
    if not data:
        raise InputError(f"{name}: the prompt file is empty")
    if len(data) > limit:
        raise InputError(f"{name}: longer than the {MAX_SECONDS} s rtppctl reads ({limit} bytes)")
    return codec, data


def prompt_info(path: str | os.PathLike[str]) -> PromptInfo:
    """Codec, size, duration, 20 ms packets and level of a prompt file."""
    name = os.fspath(path)
    codec, data = read_prompt(name)
    peak, rms = levels(rtp.decode(codec, data))
    return PromptInfo(
        path=name, prompt=name[: -len(Path(name).suffix)], codec=codec.name, payload_type=codec.payload_type,
        encoding=codec.encoding, bytes=len(data), duration=len(data) / _RATE, packets=_packets(len(data)),
        peak_dbfs=peak, rms_dbfs=rms,
    )


# -- writing -------------------------------------------------------------------------------------------


def write_wav(path: str | os.PathLike[str], pcm: bytes, *, rate: int = _RATE) -> None:
    """Write mono signed 16-bit little-endian PCM (8 kHz unless told) as a WAV file, atomically."""
    import io  # noqa: PLC0415
    import wave  # noqa: PLC0415

    if len(pcm) % 2:
        raise InputError(f"cannot write {os.fspath(path)}: {len(pcm)} bytes of 16-bit PCM is not a whole number of samples")
    check_writable(path)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(pcm)  # wave writes the frames as given: little-endian, as WAV wants
    write_files_atomically({os.fspath(path): buffer.getvalue()})


#: A relay's recording of one direction grows by about 10 kB a second of G.711 audio: 256 MB is
#: about seven hours, more than any call, and still small enough to read at once.
_MAX_RECORDING_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class DecodedRecording:
    """What `record decode` made of a relay's recording."""

    source: str
    output: str
    #: "pcmu" or "pcma": the codec of the packets decoded.
    codec: str
    packets: int
    #: Packets of another payload type (RFC 4733 events, other codecs), left out.
    skipped: int
    duration: float
    #: Distinct RTP sources in the file (a prompt played into the call is one more).
    ssrcs: int


def decode_recording(path: str | os.PathLike[str], out_wav: str | os.PathLike[str]) -> DecodedRecording:
    """A recording the relay wrote (`CALLID=TAG.o.rtp`) back into 8 kHz audio, as a WAV file.

    The G.711 payloads (PCMU or PCMA, whichever comes first; packets of any other payload type are
    counted and left out) are decoded in the order the relay received them. Checks first, then
    writes: nothing is written when the file is not a recording or holds no G.711 audio.
    """
    from rtppctl.files import read_bytes_input  # noqa: PLC0415
    from rtppctl.proto.recording import parse_recording  # noqa: PLC0415

    source = os.fspath(path)
    output = os.fspath(out_wav)
    check_writable(output)
    if same_file(output, source):
        raise InputError(f"cannot write {output}: it is the recording being read")
    data = read_bytes_input(source, limit=_MAX_RECORDING_BYTES)
    recorded = parse_recording(data, source)
    codec: rtp.Codec | None = None
    pieces: list[bytes] = []
    skipped = 0
    ssrcs = set()
    for item in recorded:
        packet = rtp.parse_rtp(item.packet)
        ssrcs.add(packet.ssrc)
        found = rtp.CODECS_BY_PAYLOAD_TYPE.get(packet.payload_type)
        if found is None or (codec is not None and found != codec):
            skipped += 1
            continue
        codec = found
        pieces.append(packet.payload)
    if codec is None:
        raise InputError(f"{source}: no PCMU or PCMA packets among {len(recorded)} (only G.711 can be decoded)",
                         "is it the recording of a G.711 call?")
    pcm = rtp.decode(codec, b"".join(pieces))
    write_wav(output, pcm)
    return DecodedRecording(source, output, codec.name, len(pieces), skipped, len(pcm) / 2 / _RATE, len(ssrcs))


