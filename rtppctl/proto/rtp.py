"""RTP packets (RFC 3550), RFC 4733 telephone-event payloads, and G.711 (PCMU and PCMA) codecs.

Everything here is pure: bytes and numbers in, bytes and values out. Packets are built and
parsed with `struct`; a packet that cannot be RTP raises `MalformedPacket` (an `InputError`)
saying which field is wrong. G.711 works on whole buffers of little-endian signed 16-bit linear
PCM, through lookup tables: encoding indexes a 65536-entry table (built once, on first use) by the
16-bit sample, decoding translates each code byte to its low and high output byte with
`bytes.translate`, so a few minutes of audio never go through a per-sample Python function.

The G.711 quantisers follow the ITU-T G.711 segment layout. µ-law looks at the top 14 bits of a
sample (its magnitude after an arithmetic shift, so -1 has magnitude 1), A-law at the top 13
(negative values are taken as their one's complement, making A-law symmetric around -0.5); both
choices are those of the `audioop` module, so prompt files match what other Python tools produce.
"""

from __future__ import annotations

import struct
import sys
from array import array
from dataclasses import dataclass

from rtppctl.proto.errors import InputError

RTP_VERSION = 2
#: The fixed part of an RTP header, before CSRCs and the extension.
RTP_HEADER_SIZE = 12
MAX_CSRC = 15

#: G.711 runs at 8000 samples per second, one byte per sample.
CLOCK_RATE = 8000
#: RTPProxy's players (and most phones) send 20 ms of G.711 per packet.
PACKET_MS = 20
SAMPLES_PER_PACKET = CLOCK_RATE * PACKET_MS // 1000

_FIXED_HEADER = struct.Struct("!BBHII")


class MalformedPacket(InputError):
    """Bytes that are not a valid RTP packet or telephone-event payload."""


@dataclass(frozen=True)
class RtpPacket:
    """One parsed RTP packet. `payload` excludes the header, CSRCs, extension and padding."""

    payload_type: int
    marker: bool
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    csrcs: tuple[int, ...] = ()
    #: (profile-defined 16 bits, extension data) when the X bit is set, else None.
    extension: tuple[int, bytes] | None = None
    #: Padding octets removed from the end (the P bit), 0 without padding.
    padding: int = 0

    def to_bytes(self) -> bytes:
        return build_rtp(self.payload_type, self.sequence, self.timestamp, self.ssrc, self.payload,
                         marker=self.marker, csrcs=self.csrcs, extension=self.extension, padding=self.padding)


def _check_range(name: str, value: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise InputError(f"RTP {name} {value!r} is out of range 0..{high}")


def build_rtp(
    payload_type: int,
    sequence: int,
    timestamp: int,
    ssrc: int,
    payload: bytes = b"",
    *,
    marker: bool = False,
    csrcs: tuple[int, ...] | list[int] = (),
    extension: tuple[int, bytes] | None = None,
    padding: int = 0,
) -> bytes:
    """An RTP version 2 packet. Fields out of range raise InputError rather than being masked,
    so a wrapped sequence number is the caller's explicit `% 65536`, never a silent accident."""
    _check_range("payload type", payload_type, 127)
    _check_range("sequence number", sequence, 0xFFFF)
    _check_range("timestamp", timestamp, 0xFFFFFFFF)
    _check_range("SSRC", ssrc, 0xFFFFFFFF)
    if len(csrcs) > MAX_CSRC:
        raise InputError(f"RTP packet with {len(csrcs)} CSRCs: at most {MAX_CSRC} fit in the header")
    for csrc in csrcs:
        _check_range("CSRC", csrc, 0xFFFFFFFF)
    _check_range("padding", padding, 255)
    first = (RTP_VERSION << 6) | (0x20 if padding else 0) | (0x10 if extension is not None else 0) | len(csrcs)
    parts = [_FIXED_HEADER.pack(first, (0x80 if marker else 0) | payload_type, sequence, timestamp, ssrc)]
    parts.extend(struct.pack("!I", csrc) for csrc in csrcs)
    if extension is not None:
        profile, data = extension
        _check_range("extension profile", profile, 0xFFFF)
        if len(data) % 4 or len(data) > 0xFFFF * 4:
            raise InputError(f"RTP header extension of {len(data)} bytes: it must be a multiple of 4, at most {0xFFFF * 4}")
        parts.append(struct.pack("!HH", profile, len(data) // 4) + bytes(data))
    parts.append(bytes(payload))
    if padding:
        # The last padding octet counts the padding, itself included (RFC 3550 §5.1).
        parts.append(bytes(padding - 1) + bytes([padding]))
    return b"".join(parts)


def parse_rtp(data: bytes) -> RtpPacket:
    """Decode an RTP packet; raise MalformedPacket naming the first field that does not fit."""
    data = bytes(data)
    if len(data) < RTP_HEADER_SIZE:
        raise MalformedPacket(f"RTP packet of {len(data)} bytes: shorter than the {RTP_HEADER_SIZE}-byte header")
    first, second, sequence, timestamp, ssrc = _FIXED_HEADER.unpack_from(data)
    version = first >> 6
    if version != RTP_VERSION:
        raise MalformedPacket(f"RTP packet with version {version}: only version {RTP_VERSION} exists")
    has_padding, has_extension, csrc_count = bool(first & 0x20), bool(first & 0x10), first & 0x0F
    offset = RTP_HEADER_SIZE + 4 * csrc_count
    if len(data) < offset:
        raise MalformedPacket(f"RTP packet of {len(data)} bytes: too short for its {csrc_count} CSRCs ({offset} bytes)")
    csrcs = struct.unpack_from(f"!{csrc_count}I", data, RTP_HEADER_SIZE)
    extension = None
    if has_extension:
        if len(data) < offset + 4:
            raise MalformedPacket(f"RTP packet of {len(data)} bytes: the X bit is set but the extension header is missing")
        profile, words = struct.unpack_from("!HH", data, offset)
        start, offset = offset + 4, offset + 4 + 4 * words
        if len(data) < offset:
            raise MalformedPacket(f"RTP packet of {len(data)} bytes: its header extension claims {4 * words} bytes")
        extension = (profile, data[start:offset])
    end, padding = len(data), 0
    if has_padding:
        padding = data[-1] if len(data) > offset else 0
        if padding == 0 or padding > len(data) - offset:
            raise MalformedPacket(f"RTP packet with padding count {padding}: the packet has {len(data) - offset} bytes after its header")
        end -= padding
    return RtpPacket(second & 0x7F, bool(second & 0x80), sequence, timestamp, ssrc, data[offset:end],
                     tuple(csrcs), extension, padding)


def packetize(
    payload: bytes,
    *,
    payload_type: int,
    ssrc: int,
    sequence: int = 0,
    timestamp: int = 0,
    samples: int = SAMPLES_PER_PACKET,
) -> list[bytes]:
    """Cut a G.711 payload (one byte per sample) into RTP packets of `samples` samples each.

    The first packet carries the marker (the start of a talkspurt); sequence numbers and
    timestamps wrap as RFC 3550 says. The last packet may be shorter."""
    if samples < 1:
        raise InputError(f"packets of {samples} samples: at least 1 is needed")
    return [
        build_rtp(payload_type, (sequence + index) % 0x10000, (timestamp + index * samples) % 0x1_0000_0000, ssrc,
                  payload[start:start + samples], marker=index == 0)
        for index, start in enumerate(range(0, len(payload), samples))
    ]


# -- RFC 4733 telephone events -------------------------------------------------------------------

#: Events 0-15 are the DTMF keys, in this order (RFC 4733 §3.2).
DTMF_DIGITS = "0123456789*#ABCD"
#: A telephone-event payload is one 4-byte block: event, E|R|volume, duration.
TELEPHONE_EVENT_SIZE = 4
MAX_VOLUME = 63
MAX_DURATION = 0xFFFF


@dataclass(frozen=True)
class TelephoneEvent:
    """One RFC 4733 telephone-event payload."""

    event: int
    end: bool
    #: Power level in -dBm0 (0 loudest, 63 quietest).
    volume: int
    #: Duration so far, in timestamp units (1/8000 s for the usual 8000 Hz clock).
    duration: int

    @property
    def digit(self) -> str | None:
        """The DTMF key of events 0-15, None for the other events (flash, tones)."""
        return DTMF_DIGITS[self.event] if self.event < len(DTMF_DIGITS) else None


def digit_to_event(digit: str) -> int:
    """The event code of a DTMF key: "0"-"9", "*", "#", "A"-"D" (a-d accepted)."""
    index = DTMF_DIGITS.find(digit.upper()) if len(digit) == 1 else -1
    if index < 0:
        raise InputError(f"{digit!r} is not a DTMF key: use one of {DTMF_DIGITS}")
    return index


def event_to_digit(event: int) -> str:
    """The DTMF key of event code 0-15."""
    if isinstance(event, bool) or not isinstance(event, int) or not 0 <= event < len(DTMF_DIGITS):
        raise InputError(f"telephone event {event!r} is not a DTMF key (0..{len(DTMF_DIGITS) - 1})")
    return DTMF_DIGITS[event]


def build_telephone_event(event: int | str, *, end: bool = False, volume: int = 10, duration: int = 0) -> bytes:
    """A 4-byte telephone-event payload; `event` is a code 0-255 or a DTMF key ("5", "#")."""
    code = digit_to_event(event) if isinstance(event, str) else event
    if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= 255:
        raise InputError(f"telephone event {event!r} is out of range 0..255")
    if isinstance(volume, bool) or not isinstance(volume, int) or not 0 <= volume <= MAX_VOLUME:
        raise InputError(f"telephone-event volume {volume!r} is out of range 0..{MAX_VOLUME}")
    if isinstance(duration, bool) or not isinstance(duration, int) or not 0 <= duration <= MAX_DURATION:
        raise InputError(f"telephone-event duration {duration!r} is out of range 0..{MAX_DURATION}")
    # The R bit is reserved: sent as 0, ignored on receipt.
    return struct.pack("!BBH", code, (0x80 if end else 0) | volume, duration)


def parse_telephone_event(payload: bytes) -> TelephoneEvent:
    """Decode a telephone-event payload (the RTP payload, padding already removed)."""
    if len(payload) != TELEPHONE_EVENT_SIZE:
        raise MalformedPacket(f"telephone-event payload of {len(payload)} bytes: it must be {TELEPHONE_EVENT_SIZE}")
    code, flags, duration = struct.unpack("!BBH", payload)
    return TelephoneEvent(code, bool(flags & 0x80), flags & 0x3F, duration)


# -- G.711 ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Codec:
    """A G.711 codec as SDP and RTPProxy name it."""

    name: str  # rtppctl's name, as given to --codec
    payload_type: int  # the static RTP payload type, also the suffix of RTPProxy's prompt files
    encoding: str  # the SDP encoding name (a=rtpmap)


PCMU = Codec("pcmu", 0, "PCMU")
PCMA = Codec("pcma", 8, "PCMA")
CODECS: dict[str, Codec] = {PCMU.name: PCMU, PCMA.name: PCMA}
CODECS_BY_PAYLOAD_TYPE: dict[int, Codec] = {codec.payload_type: codec for codec in CODECS.values()}


def codec_named(name: str) -> Codec:
    """The codec for "pcmu"/"pcma" (any case), their SDP names, or payload type "0"/"8"."""
    key = name.strip().lower()
    for codec in CODECS.values():
        if key in (codec.name, str(codec.payload_type)):
            return codec
    raise InputError(f"unknown codec {name!r}: use {', '.join(CODECS)} (or payload type "
                     f"{', '.join(str(codec.payload_type) for codec in CODECS.values())})")


_ULAW_SHIFT = 2  # 16-bit samples -> the 14 bits µ-law quantises
_ALAW_SHIFT = 3  # -> the 13 bits A-law quantises


def ulaw_encode_sample(sample: int) -> int:
    """The µ-law code of one signed 16-bit sample."""
    # µ-law quantises the top 14 bits; an arithmetic shift, so negatives round down.
    return _ulaw_code(sample >> _ULAW_SHIFT)


def _ulaw_code(top: int) -> int:
    """The µ-law code of a signed 14-bit value."""
    sign_mask = 0x7F if top < 0 else 0xFF  # codes are sent inverted; the sign bit is set for >= 0
    # Biasing by 33 puts every segment boundary on a power of two, so the segment is a bit length.
    magnitude = min(abs(top), 8159) + 33
    segment = max(0, magnitude.bit_length() - 6)
    if segment > 7:
        return 0x7F ^ sign_mask  # the largest code, reached only by a clipped magnitude
    mantissa = (magnitude >> (segment + 1)) & 0x0F
    return ((segment << 4) | mantissa) ^ sign_mask


def alaw_encode_sample(sample: int) -> int:
    """The A-law code of one signed 16-bit sample."""
    return _alaw_code(sample >> _ALAW_SHIFT)  # A-law quantises the top 13 bits


def _alaw_code(top: int) -> int:
    """The A-law code of a signed 13-bit value."""
    # Negative values use their one's complement: -1 and 0 are the two smallest steps either side.
    magnitude, mask = (top, 0xD5) if top >= 0 else (-top - 1, 0x55)
    segment = max(0, magnitude.bit_length() - 5)
    mantissa = (magnitude >> (segment if segment > 1 else 1)) & 0x0F
    return ((segment << 4) | mantissa) ^ mask  # even bits inverted, as the line format asks


def ulaw_decode_sample(code: int) -> int:
    """The linear value of a µ-law code: the middle of its quantisation step."""
    inverted = ~code & 0xFF
    segment, mantissa = (inverted >> 4) & 0x07, inverted & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << segment) - 0x84
    return -magnitude if inverted & 0x80 else magnitude


def alaw_decode_sample(code: int) -> int:
    """The linear value of an A-law code: the middle of its quantisation step."""
    plain = code ^ 0x55
    segment, mantissa = (plain >> 4) & 0x07, plain & 0x0F
    if segment == 0:
        magnitude = (mantissa << 4) + 8
    else:
        magnitude = ((mantissa << 4) + 0x108) << (segment - 1)
    return magnitude if plain & 0x80 else -magnitude


_encode_tables: dict[str, bytes] = {}
_decode_tables: dict[str, tuple[bytes, bytes]] = {}
#: Per codec: (code of a top-bits value, how many low bits of a sample it ignores).
_TOP_ENCODERS = {"pcmu": (_ulaw_code, _ULAW_SHIFT), "pcma": (_alaw_code, _ALAW_SHIFT)}
_SAMPLE_DECODERS = {"pcmu": ulaw_decode_sample, "pcma": alaw_decode_sample}


def _encode_table(name: str) -> bytes:
    """65536 codes indexed by the sample's 16 bits read as unsigned (0x8000 is -32768)."""
    table = _encode_tables.get(name)
    if table is None:
        code_of, shift = _TOP_ENCODERS[name]
        # The code depends on the top bits only: encode each top value once (in the unsigned
        # order of the samples sharing it) and repeat it over the 2**shift samples that share it,
        # with slice assignments instead of 65536 Python calls.
        half = 0x8000 >> shift
        tops = bytes(map(code_of, [*range(0, half), *range(-half, 0)]))
        spread = bytearray(0x10000)
        for low_bits in range(1 << shift):
            spread[low_bits::1 << shift] = tops
        table = _encode_tables[name] = bytes(spread)
    return table


def _decode_table(name: str) -> tuple[bytes, bytes]:
    """(low bytes, high bytes) of each code's little-endian 16-bit value, as translate tables."""
    tables = _decode_tables.get(name)
    if tables is None:
        values = [_SAMPLE_DECODERS[name](code) & 0xFFFF for code in range(256)]
        tables = bytes(value & 0xFF for value in values), bytes(value >> 8 for value in values)
        _decode_tables[name] = tables
    return tables


def _samples(pcm: bytes) -> array:
    if len(pcm) % 2:
        raise InputError(f"linear PCM of {len(pcm)} bytes: 16-bit samples need an even number")
    samples = array("H")
    samples.frombytes(pcm)
    if sys.byteorder == "big":
        samples.byteswap()  # the buffer is little-endian whatever the host is
    return samples


def _encode(name: str, pcm: bytes) -> bytes:
    # map() over a bound __getitem__ keeps the per-sample work in C.
    return bytes(map(_encode_table(name).__getitem__, _samples(pcm)))


def _decode(name: str, codes: bytes) -> bytes:
    low, high = _decode_table(name)
    codes = bytes(codes)
    out = bytearray(2 * len(codes))
    out[0::2] = codes.translate(low)
    out[1::2] = codes.translate(high)
    return bytes(out)


def ulaw_encode(pcm: bytes) -> bytes:
    """Little-endian signed 16-bit PCM -> µ-law (PCMU) bytes, one per sample."""
    return _encode("pcmu", pcm)


def alaw_encode(pcm: bytes) -> bytes:
    """Little-endian signed 16-bit PCM -> A-law (PCMA) bytes, one per sample."""
    return _encode("pcma", pcm)


def ulaw_decode(codes: bytes) -> bytes:
    """µ-law (PCMU) bytes -> little-endian signed 16-bit PCM."""
    return _decode("pcmu", codes)


def alaw_decode(codes: bytes) -> bytes:
    """A-law (PCMA) bytes -> little-endian signed 16-bit PCM."""
    return _decode("pcma", codes)


def encode(codec: Codec | str, pcm: bytes) -> bytes:
    """Encode 16-bit PCM with a codec given as a `Codec` or a name `codec_named` knows."""
    return _encode((codec if isinstance(codec, Codec) else codec_named(codec)).name, pcm)


def decode(codec: Codec | str, codes: bytes) -> bytes:
    """Decode G.711 bytes with a codec given as a `Codec` or a name `codec_named` knows."""
    return _decode((codec if isinstance(codec, Codec) else codec_named(codec)).name, codes)
