"""Capture files (pcap, pcapng) read into SIP records, streaming: the file side of
`proto.capture.Decoder`.

`capture_kind(path)` tells a capture by its first bytes: "pcap" (every pcap magic: microsecond and
nanosecond, both byte orders, and the modified pcap of old Red Hat tcpdumps), "pcapng", or "text"
for anything else (a text trace, for `proto.text_trace`). `read_capture(path, media=False,
stats=None)` gives the records a pcap or pcapng file holds (`SipPacket`, and `MediaPacket` with
`media`) in capture order, as an iterator: the file is read forward in chunks of `CHUNK_BYTES`,
never whole, and stays open until the iterator is exhausted or closed. `stats`, when given, is
filled as the reading goes (`proto.capture.CaptureStats`).

The rules it keeps:

- Only regular files are opened (`files.open_input`, then a regular-file check): a folder, FIFO,
  socket or device is an InputError naming it, before anything waits on it. A file that cannot
  be read, or whose header is no pcap or pcapng header (a file shorter than one included), is an
  InputError naming the file.
- What the file holds past its header never raises: a file that ends inside a record counts
  `file_truncated` (and the cut record in `truncated`), and a record whose length cannot be
  right (the file lost its framing) counts `corrupt_records` and ends the reading, the records
  before it given. pcapng blocks of an unknown type are skipped.
- pcap: dpkt reads the file header (`dpkt.pcap.Reader`: magic, byte order, link type, snap
  length); the records are read here, with the record header dpkt gives for that magic
  (`dpkt.pcap.MAGIC_TO_PKT_HDR`), because dpkt's iterator drops each record's original length
  (a frame cut at the snap length looks whole) and reads a record cut by the end of the file as
  if it were whole.
- pcapng: read block by block here, because dpkt's reader follows the first interface only and
  does not say which interface a packet came on. dpkt's block classes read the Section Header
  and Interface Description Blocks; Enhanced, Simple and the old Packet Blocks are read with
  `struct`. Each interface has its own link type and timestamp resolution and offset
  (if_tsresol, if_tsoffset); its index, counted from 0 in each section, is the records'
  `interface`. A Simple Packet Block has no timestamp: it takes the time of the packet before
  it. Counters: `pcapng_unknown_interface` (a packet naming an interface not described).
"""

from __future__ import annotations

import io
import os
import stat
import struct
from collections.abc import Callable, Iterator
from typing import BinaryIO

import dpkt
import dpkt.pcap
import dpkt.pcapng

from rtppctl.files import open_input
from rtppctl.proto.capture import CaptureStats, Decoder, MediaPacket, SipPacket
from rtppctl.proto.errors import InputError

#: Bytes read from the file at a time: the most held at once, besides one record that is larger.
CHUNK_BYTES = 1 << 20
#: A record or block larger than this is taken for a broken file, not read: far above any snap
#: length in use (262144), so a bad length never makes the reader swallow the rest of the file.
MAX_RECORD_BYTES = 1 << 24

_PCAP_HEADER_BYTES = 24
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
_PCAPNG_BYTE_ORDERS = {b"\x1a\x2b\x3c\x4d": ">", b"\x4d\x3c\x2b\x1a": "<"}
_PCAPNG_IDB, _PCAPNG_PB, _PCAPNG_SPB, _PCAPNG_EPB = 1, 2, 3, 6
_IF_TSRESOL, _IF_TSOFFSET = 9, 14
#: pcap magic numbers, as the first four bytes read big-endian: dpkt's table of them.
_PCAP_MAGICS = frozenset(dpkt.pcap.MAGIC_TO_PKT_HDR)
_NANOSECOND_MAGICS = frozenset({dpkt.pcap.TCPDUMP_MAGIC_NANO, dpkt.pcap.PMUDPCT_MAGIC_NANO})


def _open_capture(path: str | os.PathLike[str]) -> BinaryIO:
    name = os.fspath(path)
    handle = open_input(name, what="capture file")
    try:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise InputError(f"{name}: is not a regular file",
                             "a capture is read twice (its kind, then its records): save it to a file first")
    except BaseException:
        handle.close()
        raise
    return handle


def _kind(head: bytes) -> str:
    if head[:4] == _PCAPNG_SHB:
        return "pcapng"
    if len(head) >= 4 and int.from_bytes(head[:4], "big") in _PCAP_MAGICS:
        return "pcap"
    return "text"


def capture_kind(path: str | os.PathLike[str]) -> str:
    """"pcap", "pcapng" or "text", by the file's first bytes; InputError when it cannot be read."""
    with _open_capture(path) as handle:
        try:
            return _kind(handle.read(4))
        except OSError as exc:
            raise InputError(f"cannot read {os.fspath(path)}: {exc.strerror or exc}") from None


def read_capture(path: str | os.PathLike[str], *, media: bool = False,
                 stats: CaptureStats | None = None) -> Iterator[SipPacket | MediaPacket]:
    """The SIP messages (and with `media`, the other UDP datagrams) of a pcap or pcapng file, in
    capture order. The file's header is read at once: a file that is no capture fails here, not
    at the first record."""
    name = os.fspath(path)
    handle = _open_capture(name)
    try:
        head = handle.read(_PCAP_HEADER_BYTES)
        kind = _kind(head)
        decoder = Decoder(media=media, stats=stats)
        if kind == "pcap":
            frames = _pcap_frames(handle, name, head, decoder)
        elif kind == "pcapng":
            frames = _pcapng_frames(handle, name, head, decoder)
        else:
            raise InputError(f"{name}: not a pcap or pcapng file (its first bytes are no capture's magic number)")
    except OSError as exc:
        handle.close()
        raise InputError(f"cannot read {name}: {exc.strerror or exc}") from None
    except BaseException:
        handle.close()
        raise
    return _records(handle, name, frames, decoder)


def _records(handle: BinaryIO, name: str, frames: Iterator[list[SipPacket | MediaPacket]],
             decoder: Decoder) -> Iterator[SipPacket | MediaPacket]:
    with handle:
        try:
            for records in frames:
                yield from records
        except OSError as exc:
            raise InputError(f"cannot read {name}: {exc.strerror or exc}") from None
        yield from decoder.finish()


# -- pcap ----------------------------------------------------------------------------------------


def _pcap_frames(handle: BinaryIO, name: str, head: bytes, decoder: Decoder) -> Iterator[list[SipPacket | MediaPacket]]:
    """Checks the file header now; the returned generator decodes the records, frame by frame."""
    try:
        header = dpkt.pcap.Reader(io.BytesIO(head))
    except (ValueError, dpkt.UnpackError):
        raise InputError(f"{name}: not a pcap file, or its header is cut short "
                         f"({len(head)} of {_PCAP_HEADER_BYTES} bytes)") from None
    magic = int.from_bytes(head[:4], "big")
    record_class = dpkt.pcap.MAGIC_TO_PKT_HDR[magic]
    # Seconds, fraction, captured length, original length: the first four fields of every layout.
    record = struct.Struct(record_class.__hdr_fmt__[0] + "IIII")
    return _pcap_records(handle, decoder, header.datalink(), record, record_class.__hdr_len__,
                         1e9 if magic in _NANOSECOND_MAGICS else 1e6)


def _pcap_records(handle: BinaryIO, decoder: Decoder, link_type: int, record: struct.Struct, header_size: int,
                  divisor: float) -> Iterator[list[SipPacket | MediaPacket]]:
    stats = decoder.stats
    decode = decoder.frame
    unpack_record = record.unpack_from
    read = handle.read
    chunk = b""
    position = 0
    while True:
        if len(chunk) - position < header_size:
            chunk = _refill(read, chunk, position, header_size)
            position = 0
            if len(chunk) < header_size:
                if chunk:
                    _file_ends_in_a_record(stats)
                return
        seconds, fraction, captured, length = unpack_record(chunk, position)
        if captured > MAX_RECORD_BYTES:
            stats.count("corrupt_records")
            return
        start = position + header_size
        end = start + captured
        if end > len(chunk):
            chunk = _refill(read, chunk, position, header_size + captured)
            position, start, end = 0, header_size, header_size + captured
            if end > len(chunk):
                stats.count("file_truncated")
                yield decode(seconds + fraction / divisor, link_type, chunk[start:], original_length=captured)
                return
        records = decode(seconds + fraction / divisor, link_type, chunk[start:end], original_length=length)
        if records:
            yield records
        position = end


def _refill(read: Callable[[int], bytes], chunk: bytes, position: int, needed: int) -> bytes:
    """What is left of `chunk` from `position`, then what the file gives, until that holds
    `needed` bytes or the file ends: a chunk at a time, or the one record larger than a chunk."""
    parts = [chunk[position:]]
    held = len(parts[0])
    while held < needed:
        more = read(max(CHUNK_BYTES, needed - held))
        if not more:
            break
        parts.append(more)
        held += len(more)
    return b"".join(parts)


def _file_ends_in_a_record(stats: CaptureStats) -> None:
    stats.count("file_truncated")
    stats.truncated += 1


# -- pcapng --------------------------------------------------------------------------------------


class _Interface:
    """What a pcapng Interface Description Block says about the packets of that interface."""

    __slots__ = ("link_type", "snap_length", "divisor", "offset")

    def __init__(self, block: bytes, order: str) -> None:
        self.link_type, self.snap_length = struct.unpack_from(order + "H2xI", block, 8)
        #: Timestamp units per second (if_tsresol; microseconds unless it says otherwise).
        self.divisor = 1e6
        #: Seconds added to every timestamp (if_tsoffset).
        self.offset = 0
        description = (dpkt.pcapng.InterfaceDescriptionBlockLE if order == "<"
                       else dpkt.pcapng.InterfaceDescriptionBlock)
        try:
            options = description(block).opts
        except (dpkt.UnpackError, ValueError, struct.error):
            options = []  # the packets still read, with the default resolution
        for option in options:
            if option.code == _IF_TSRESOL and option.data:
                exponent = option.data[0]
                # High bit set: a negative power of 2, else of 10.
                self.divisor = float(2 ** (exponent & 0x7F) if exponent & 0x80 else 10 ** exponent)
            elif option.code == _IF_TSOFFSET and len(option.data) == 8:
                self.offset = struct.unpack(order + "q", option.data)[0]


def _section_order(block_start: bytes, name: str | None) -> str | None:
    order = _PCAPNG_BYTE_ORDERS.get(block_start[8:12])
    if order is None and name is not None:
        raise InputError(f"{name}: not a pcapng file (its Section Header Block has no byte-order magic)")
    return order


def _pcapng_frames(handle: BinaryIO, name: str, head: bytes,
                   decoder: Decoder) -> Iterator[list[SipPacket | MediaPacket]]:
    """Checks the first Section Header Block now; the returned generator decodes the blocks."""
    if len(head) < 12:
        raise InputError(f"{name}: a pcapng file cut short in its Section Header Block")
    order = _section_order(head, name)
    length = struct.unpack_from(order + "I", head, 4)[0]
    if not 28 <= length <= MAX_RECORD_BYTES or length % 4:
        raise InputError(f"{name}: a pcapng Section Header Block of {length} bytes cannot be right")
    block = head + handle.read(length - len(head))
    if len(block) < length:
        raise InputError(f"{name}: a pcapng file cut short in its Section Header Block")
    section = (dpkt.pcapng.SectionHeaderBlockLE if order == "<" else dpkt.pcapng.SectionHeaderBlock)
    try:
        version = section(block).v_major
    except (dpkt.UnpackError, ValueError, struct.error):
        raise InputError(f"{name}: its pcapng Section Header Block does not parse") from None
    if version != dpkt.pcapng.PCAPNG_VERSION_MAJOR:
        raise InputError(f"{name}: pcapng version {version} is not supported, only 1")
    return _pcapng_blocks(handle, decoder, order)


def _pcapng_blocks(handle: BinaryIO, decoder: Decoder, order: str) -> Iterator[list[SipPacket | MediaPacket]]:
    stats = decoder.stats
    decode = decoder.frame
    read = handle.read
    block_header = struct.Struct(order + "II").unpack_from
    enhanced = struct.Struct(order + "IIIII").unpack_from  # interface, time high and low, lengths
    old_packet = struct.Struct(order + "H2xIIII").unpack_from
    word = struct.Struct(order + "I").unpack_from
    interfaces: list[_Interface] = []
    time = 0.0
    chunk = b""
    position = 0
    while True:
        if len(chunk) - position < 12:
            chunk = _refill(read, chunk, position, 12)
            position = 0
            if len(chunk) < 12:
                if chunk:
                    _file_ends_in_a_record(stats)
                return
        if chunk[position:position + 4] == _PCAPNG_SHB:
            # A new section: its own byte order and interfaces.
            new_order = _section_order(chunk[position:position + 12], None)
            if new_order is None:
                stats.count("corrupt_records")
                return
            if new_order != order:
                order = new_order
                block_header = struct.Struct(order + "II").unpack_from
                enhanced = struct.Struct(order + "IIIII").unpack_from
                old_packet = struct.Struct(order + "H2xIIII").unpack_from
                word = struct.Struct(order + "I").unpack_from
            interfaces = []
        block_type, length = block_header(chunk, position)
        if length < 12 or length % 4 or length > MAX_RECORD_BYTES:
            stats.count("corrupt_records")
            return
        end = position + length
        if end > len(chunk):
            chunk = _refill(read, chunk, position, length)
            position, end = 0, length
            if end > len(chunk):
                stats.count("file_truncated")
                stats.truncated += 1
                return
        if word(chunk, end - 4)[0] != length:
            stats.count("corrupt_records")
            return
        if block_type == _PCAPNG_EPB or block_type == _PCAPNG_PB:
            if block_type == _PCAPNG_EPB:
                index, high, low, captured, original = enhanced(chunk, position + 8)
            else:
                index, high, low, captured, original = old_packet(chunk, position + 8)
            start = position + 28
            if start + captured > end - 4 or index >= len(interfaces):
                if index >= len(interfaces):
                    stats.count("pcapng_unknown_interface")
                else:
                    stats.count("corrupt_records")
                position = end
                continue
            interface = interfaces[index]
            time = interface.offset + ((high << 32) | low) / interface.divisor
            records = decode(time, interface.link_type, chunk[start:start + captured], interface=index,
                             original_length=original)
            if records:
                yield records
        elif block_type == _PCAPNG_SPB:
            if not interfaces:
                stats.count("pcapng_unknown_interface")
            else:
                interface = interfaces[0]
                original = word(chunk, position + 8)[0]
                # The block holds the packet cut at the interface's snap length, padded to 4 bytes.
                captured = min(original, length - 16, interface.snap_length or original)
                records = decode(time, interface.link_type, chunk[position + 12:position + 12 + captured],
                                 original_length=original)
                if records:
                    yield records
        elif block_type == _PCAPNG_IDB:
            interfaces.append(_Interface(chunk[position:end], order))
        position = end
