"""The fast HDLC frame codec used on the hot path, derived from :mod:`protocol.hdlc`.

:class:`FrameCodec` encodes a frame (:attr:`~FrameCodec.encode`), decodes one whole frame
(:attr:`~FrameCodec.decode`) and tries one candidate frame in place inside a larger buffer
(:attr:`~FrameCodec.decode_at`, for :mod:`protocol.stream`), answering a :class:`FrameVerdict`.
It owns its caches, each bounded by :data:`CACHE_LIMIT`. :func:`encode_frame` and
:func:`decode_frame` are those of one shared codec, :data:`DEFAULT_CODEC`.

The codec never restates the layout: it keeps what Construct built or parsed through
:data:`protocol.hdlc.HDLC_FRAME` and its parts (whole headers with their HCS, format fields,
addresses, control bytes; tables of which bytes end an address or can start a format field)
and computes only CRCs itself, through crcmod's C kernel. A cache miss, and every frame the
fast path cannot classify, goes through Construct. Caches on the decode side are keyed by bytes
whose CRC has been checked, and a frame's length, closing flag and FCS are checked before any
cached or parsed view of it is trusted. No compiled Construct parser is used: the interpreted
one never runs on bytes whose CRC is unchecked except the two-byte format field, whose every
value it handles.

This module must never do I/O nor restate the frame layout by hand.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from construct import ConstructError

from protocol.crc import (
    CRC16_X25_KERNEL_GOOD_RESIDUE,
    CRC16_X25_KERNEL_INIT,
    CRC16_X25_KERNEL_TABLE,
    crc16_x25,
    crc16_x25_kernel,
)
from protocol.errors import FrameError
from protocol.hdlc import (
    CRC_SIZE_BYTES,
    FLAG,
    FLAG_BYTE,
    FORMAT_FIELD,
    HDLC_HEADER,
    MAX_ADDRESS_BY_SIZE,
    MAX_FRAME_SIZE_BYTES,
    MIN_FRAME_LENGTH,
    MIN_FRAME_SIZE_BYTES,
    HdlcAddress,
    HdlcFrame,
    build_frame_with_construct,
)

__all__ = ["CACHE_LIMIT", "CAN_START_FORMAT_FIELD", "DEFAULT_CODEC", "FrameAt", "FrameCodec",
           "FrameVerdict", "decode_frame", "encode_frame"]

#: Each cache of a :class:`FrameCodec` is cleared when it reaches this many entries.
CACHE_LIMIT = 1 << 16


class FrameVerdict(enum.IntEnum):
    """What :attr:`FrameCodec.decode_at` made of the candidate frame at a flag.

    ``DECODED`` comes with the frame. ``NEED_MORE`` means nothing is wrong yet: the candidate
    is a prefix of a possible frame. Every other verdict rejects the candidate at that flag.
    An IntEnum only for speed (its members hash as ints, in C; a plain Enum's ``__hash__`` is
    Python code, and the stream decoder looks a counter up by verdict for every rejected
    candidate); the values mean nothing, compare members with ``is``."""

    DECODED = 0
    NEED_MORE = 1
    BAD_FORMAT = 2  # format type is not 0xA, or an address of 3 or more than 4 bytes
    BAD_LENGTH = 3  # the 11-bit length cannot hold the header, FCS (HCS, information)
    BAD_HCS = 4  # header check sequence wrong
    TRUNCATED = 5  # no closing flag where the length says the frame ends
    BAD_FCS = 6  # frame check sequence wrong


#: What :attr:`FrameCodec.decode_at` returns: ``(frame, verdict, stop)``. ``frame`` is the
#: decoded frame when ``verdict`` is ``DECODED`` (else None) and ``stop`` the index after its
#: closing flag; with no frame, ``stop`` is the index of the candidate's opening flag. A plain
#: tuple, not a NamedTuple, so that no Python-level constructor runs per candidate on the
#: stream decoder's hot path.
FrameAt = tuple[HdlcFrame | None, FrameVerdict, int]

_DECODED = FrameVerdict.DECODED
_NEED_MORE = FrameVerdict.NEED_MORE
_BAD_FORMAT = FrameVerdict.BAD_FORMAT
_BAD_LENGTH = FrameVerdict.BAD_LENGTH
_BAD_HCS = FrameVerdict.BAD_HCS
_TRUNCATED = FrameVerdict.TRUNCATED
_BAD_FCS = FrameVerdict.BAD_FCS

_DECODE_ERRORS = {
    FrameVerdict.NEED_MORE: "the frame ends before its length field says it does",
    FrameVerdict.BAD_FORMAT: "not HDLC frame format type 3 (format field or address encoding)",
    FrameVerdict.BAD_LENGTH: "the length field cannot be right for this header",
    FrameVerdict.BAD_HCS: "HCS does not match the frame header",
    FrameVerdict.TRUNCATED: "no closing 7E flag where the length field says the frame ends",
    FrameVerdict.BAD_FCS: "FCS does not match the frame",
}

# The CRC kernel and its arguments as module globals (3.11 specialises global loads, so they
# cost about what a local would); the CRC of a block followed by its own correct CRC equals
# _KERNEL_GOOD.
_kernel = crc16_x25_kernel
_KERNEL_INIT = CRC16_X25_KERNEL_INIT
_KERNEL_TABLE = CRC16_X25_KERNEL_TABLE
_KERNEL_GOOD = CRC16_X25_KERNEL_GOOD_RESIDUE
# HdlcFrame(...) goes through NamedTuple.__new__ (a Python frame); tuple.__new__ builds the
# same object at well under half the cost (0.19 against 0.50 us measured under load), and a
# frame is made on every decode.
_new_tuple = tuple.__new__


# --------------------------------------------------------------------------------------------
# Tables derived from the Construct definitions in protocol.hdlc.
# --------------------------------------------------------------------------------------------


def _is_final_address_byte(byte: int) -> bool:
    try:
        HdlcAddress().parse(bytes((byte,)))
    except (FrameError, ConstructError):
        return False
    return True


#: For each byte: True when :class:`~protocol.hdlc.HdlcAddress` accepts it as the last byte of
#: an address.
_FINAL_ADDRESS_BYTE = tuple(_is_final_address_byte(b) for b in range(256))
_MAX_ADDRESS_SIZE_BYTES = max(MAX_ADDRESS_BY_SIZE)


def _can_start_format(byte: int) -> bool:
    try:
        FORMAT_FIELD.parse(bytes((byte, 0)))
    except ConstructError:
        return False
    return True


#: For each byte: True when :data:`~protocol.hdlc.FORMAT_FIELD` accepts it as the first byte of
#: a format field. A 7E followed by any other byte cannot open a frame.
CAN_START_FORMAT_FIELD: tuple[bool, ...] = tuple(_can_start_format(b) for b in range(256))

#: Where the header most frames have ends: opening flag, format, 1-byte destination and
#: source, control (measured on the smallest frame Construct builds). The 2 bytes after it
#: are the HCS or, with no information, the FCS.
_SHORT_HEADER_END = len(build_frame_with_construct(HdlcFrame(0, 0, 0))) - CRC_SIZE_BYTES - 1
_SHORT_KEY_END = _SHORT_HEADER_END + CRC_SIZE_BYTES


def _whole_frame_good_crcs() -> tuple[int, ...]:
    """For each frame size, the CRC register after a whole good frame, flags included.

    The register after ``7E | body + FCS | 7E`` is a bijection of the register after
    ``body + FCS`` alone (the CRC is affine in its start state, and fixed bytes map states
    one to one), so it equals this per-size value exactly when the FCS residue is good:
    one CRC over the frame as received, with no slice. Built by stepping zero bytes through
    the kernel, and checked against real frames below."""
    after_flag = _kernel(FLAG_BYTE, _KERNEL_INIT, _KERNEL_TABLE)
    zeros_state = after_flag ^ _KERNEL_INIT  # what the opening flag adds, carried along
    good_crcs = [-1] * (MAX_FRAME_SIZE_BYTES + 1)
    for size in range(2, MAX_FRAME_SIZE_BYTES + 1):  # the body + FCS is size - 2 bytes
        if size >= MIN_FRAME_SIZE_BYTES:
            good_crcs[size] = _kernel(FLAG_BYTE, _KERNEL_GOOD ^ zeros_state, _KERNEL_TABLE)
        zeros_state = _kernel(b"\x00", zeros_state, _KERNEL_TABLE)
    return tuple(good_crcs)


def _check_whole_frame_good_crcs(good_crcs: tuple[int, ...]) -> tuple[int, ...]:
    for information_size in (0, 1, 200):  # the derivation above, against real frames
        wire = build_frame_with_construct(HdlcFrame(1, 2, 3, bytes(information_size)))
        if _kernel(wire, _KERNEL_INIT, _KERNEL_TABLE) != good_crcs[len(wire)]:
            raise RuntimeError("whole-frame CRC table does not match a frame Construct built")
    return good_crcs


_WHOLE_FRAME_GOOD_CRC = _check_whole_frame_good_crcs(_whole_frame_good_crcs())


# --------------------------------------------------------------------------------------------
# Cache entries and the caches a codec owns.
# --------------------------------------------------------------------------------------------


# Entries are plain tuples, always unpacked into named locals, never indexed. Not
# NamedTuples: CPython 3.11 specialises unpacking only for exact tuples, and a NamedTuple entry
# made the stream decoder benchmark about 5% slower (measured 6.2 against 5.8 ms a pass).

#: Encode cache key: (destination address, source address, control, segmented, information
#: size): what fixes the bytes before a frame's information.
HeaderKey = tuple[int, int, int, bool, int]
#: Encode cache entry: (opening flag + header + HCS, or with no information the whole frame;
#: the CRC state after those bytes without the flag, to continue over the information, or -1
#: when the frame has no information).
EncodedHeader = tuple[bytes, int]
#: Format cache entry: (segmented, frame length from format field through FCS).
FormatField = tuple[bool, int]
#: Header cache entry: (destination address, source address, control).
HeaderFields = tuple[int, int, int]
#: Short-frame cache entry, for a frame with 1-byte addresses whose header (and the CRC after
#: it) checked before: (frame size flag to flag, the whole frame when it has no information
#: else None, destination address, source address, control, segmented).
ShortFrame = tuple[int, HdlcFrame | None, int, int, int, bool]


@dataclass(slots=True)
class _Caches:
    """A codec's caches, all filled from Construct and keyed by checked bytes on decode."""

    # encode: the frame's header shape -> its header bytes
    header: dict[HeaderKey, EncodedHeader] = field(default_factory=dict)
    # the two format bytes -> parsed, or None: not frame format type 3
    format: dict[bytes, FormatField | None] = field(default_factory=dict)
    # format..control of a frame without information (whose FCS checked) -> fields
    bare_header: dict[bytes, HeaderFields] = field(default_factory=dict)
    # format..control + a correct HCS -> fields
    checked_header: dict[bytes, HeaderFields] = field(default_factory=dict)
    # format..control + the CRC after it, 1-byte addresses, once the whole frame checked
    short_frame: dict[bytes, ShortFrame] = field(default_factory=dict)


def _remember(cache: dict[Any, Any], key: Any, entry: Any) -> None:
    """Store ``entry``, first clearing ``cache`` when it is full (never rebinding it: the
    codec's functions hold its bound ``get``)."""
    if len(cache) >= CACHE_LIMIT:
        cache.clear()
    cache[key] = entry


def _header_for(frame: HdlcFrame, cache: dict[HeaderKey, EncodedHeader]) -> EncodedHeader:
    """Header bytes built by Construct for a frame shaped like ``frame`` (then cached)."""
    destination, source, control, information, segmented = frame
    whole = build_frame_with_construct(frame)
    if information:
        header = whole[:len(whole) - len(information) - CRC_SIZE_BYTES - 1]
        entry = (header, crc16_x25(header[1:]))
    else:  # no information: the frame is all header, nothing follows but the FCS
        entry = (whole, -1)
    _remember(cache, (destination, source, control, segmented, len(information)), entry)
    return entry


def _parse_format(format_bytes: bytes, cache: dict[bytes, FormatField | None]
                  ) -> FormatField | None:
    """Format field through :data:`FORMAT_FIELD` (then cached; None when not type 3)."""
    try:
        parsed = FORMAT_FIELD.parse(format_bytes)
        entry: FormatField | None = (bool(parsed.segmented), int(parsed.frame_length))
    except ConstructError:
        entry = None
    _remember(cache, format_bytes, entry)  # 65536 two-byte keys at most: never cleared
    return entry


def _parse_header(header_bytes: bytes, cache: dict[bytes, HeaderFields],
                  key: bytes) -> HeaderFields | None:
    """Addresses and control through :data:`HDLC_HEADER` (the caller checked its CRC); None
    if Construct refuses a header the fast path's own checks let through (never expected)."""
    try:
        parsed = HDLC_HEADER.parse(header_bytes)
    except (ConstructError, FrameError):
        return None
    entry = (int(parsed.destination_address), int(parsed.source_address), int(parsed.control))
    _remember(cache, key, entry)
    return entry


def _addresses_end(data: bytes, start: int, fcs_start: int) -> tuple[int, FrameVerdict | None]:
    """``(index of the control byte, None)`` after the destination and source addresses that
    start at ``data[start]``, each 1, 2 or 4 bytes and leaving room for the control byte before
    ``fcs_start``; else ``(start, verdict)``: need more bytes, or why the candidate is
    rejected."""
    available = len(data)
    final = _FINAL_ADDRESS_BYTE
    index = start
    for limit in (fcs_start - 2, fcs_start - 1):  # destination, then source
        address_start = index
        while True:
            if index >= limit:
                return start, _BAD_LENGTH
            if index >= available:
                return start, _NEED_MORE
            if final[data[index]]:
                break
            index += 1
            if index - address_start == _MAX_ADDRESS_SIZE_BYTES:
                return start, _BAD_FORMAT
        index += 1
        if index - address_start not in MAX_ADDRESS_BY_SIZE:
            return start, _BAD_FORMAT
    return index, None


# --------------------------------------------------------------------------------------------
# The codec.
# --------------------------------------------------------------------------------------------


class FrameCodec:
    """Fast encode and decode of HDLC frames, matching the Construct reference byte for byte.

    :attr:`encode`, :attr:`decode` and :attr:`decode_at` are plain functions (closures over
    this codec's caches), not methods: a method would look its caches up on ``self`` on every
    call, on a path that takes about half a microsecond. Separate codecs share nothing.
    """

    __slots__ = ("decode", "decode_at", "encode")

    #: The wire bytes of a frame, flag to flag; raises :class:`FrameError` if it cannot be
    #: encoded (address out of range, information too long for the 11-bit length).
    encode: Callable[[HdlcFrame], bytes]
    #: One whole frame, flag to flag; checks flags, length, HCS and FCS before any of it is
    #: trusted; raises :class:`FrameError` saying what is wrong.
    decode: Callable[[bytes], HdlcFrame]
    #: ``decode_at(data, start)``: the candidate frame whose opening flag is ``data[start]``,
    #: as a :data:`FrameAt`; rejects as early as the bytes allow (bad format, length or HCS
    #: long before the frame's end), so garbage is not waited for.
    decode_at: Callable[[bytes, int], FrameAt]

    def __init__(self) -> None:
        caches = _Caches()
        decode_at_checked = _make_decode_at_checked(caches)
        self.encode = _make_encode(caches)
        self.decode_at = _make_decode_at(caches, decode_at_checked)
        self.decode = _make_decode(caches, decode_at_checked)


def _make_encode(caches: _Caches) -> Callable[[HdlcFrame], bytes]:
    header_cache = caches.header
    cached_header = header_cache.get
    join = b"".join

    def encode(frame: HdlcFrame) -> bytes:
        """The wire bytes of ``frame``, flag to flag. Raises :class:`FrameError` if it cannot
        be encoded (address out of range, information too long for the 11-bit length)."""
        destination, source, control, information, segmented = frame
        entry = cached_header((destination, source, control, segmented, len(information)))
        if entry is None:
            entry = _header_for(frame, header_cache)
        header, crc_state = entry
        if crc_state < 0:
            return header
        return join((header, information, crc16_x25(information, crc_state).to_bytes(2, "little"),
                     FLAG_BYTE))

    return encode


def _make_decode_at_checked(caches: _Caches) -> Callable[[bytes, int], FrameAt]:
    format_cache = caches.format
    cached_format = format_cache.get
    checked_header_cache = caches.checked_header
    bare_header_cache = caches.bare_header
    short_frame_cache = caches.short_frame

    def decode_at_checked(data: bytes, start: int) -> FrameAt:
        """``decode_at`` for every frame: each field checked, header caches filled."""
        available = len(data)
        if available - start < 3:
            return None, _NEED_MORE, start
        format_bytes = data[start + 1:start + 3]
        format_entry = cached_format(format_bytes, False)
        if format_entry is False:
            format_entry = _parse_format(format_bytes, format_cache)
        if format_entry is None:
            return None, _BAD_FORMAT, start
        segmented, frame_length = format_entry
        if frame_length < MIN_FRAME_LENGTH:
            return None, _BAD_LENGTH, start
        stop = start + frame_length + 2
        fcs_start = stop - 3
        control_index, refusal = _addresses_end(data, start + 3, fcs_start)
        if refusal is not None:
            return None, refusal, start
        header_end = control_index + 1
        information_size = fcs_start - header_end
        if information_size > CRC_SIZE_BYTES:  # HCS and at least one byte of information
            information_start = header_end + CRC_SIZE_BYTES
            if information_start > available:
                return None, _NEED_MORE, start
            key = data[start + 1:information_start]
            header = checked_header_cache.get(key)
            if header is None:
                if _kernel(key, _KERNEL_INIT, _KERNEL_TABLE) != _KERNEL_GOOD:
                    return None, _BAD_HCS, start
                header = _parse_header(key[:-CRC_SIZE_BYTES], checked_header_cache, key)
                if header is None:
                    return None, _BAD_FORMAT, start
        elif information_size:
            return None, _BAD_LENGTH, start  # 1 or 2 bytes: no room for HCS and information
        if stop > available:
            return None, _NEED_MORE, start
        if data[stop - 1] != FLAG:
            return None, _TRUNCATED, start
        if _kernel(data[start + 1:stop - 1], _KERNEL_INIT, _KERNEL_TABLE) != _KERNEL_GOOD:
            return None, _BAD_FCS, start
        if information_size:
            destination, source, control = header
            if header_end == start + _SHORT_HEADER_END:
                _remember(short_frame_cache, key,
                          (frame_length + 2, None, destination, source, control, segmented))
            return _new_tuple(HdlcFrame, (destination, source, control,
                                          data[information_start:fcs_start], segmented)
                              ), _DECODED, stop
        key = data[start + 1:header_end]  # no information: the FCS checked the header
        header = bare_header_cache.get(key)
        if header is None:
            header = _parse_header(key, bare_header_cache, key)
            if header is None:
                return None, _BAD_FORMAT, start
        destination, source, control = header
        frame = _new_tuple(HdlcFrame, (destination, source, control, b"", segmented))
        if header_end == start + _SHORT_HEADER_END:
            _remember(short_frame_cache, data[start + 1:stop - 1],
                      (frame_length + 2, frame, destination, source, control, segmented))
        return frame, _DECODED, stop

    return decode_at_checked


def _make_decode_at(caches: _Caches, decode_at_checked: Callable[[bytes, int], FrameAt]
                    ) -> Callable[[bytes, int], FrameAt]:
    cached_short_frame = caches.short_frame.get

    def decode_at(data: bytes, start: int = 0) -> FrameAt:
        """Try the frame whose opening flag is ``data[start]`` (the caller found the flag).

        Returns ``(frame, DECODED, stop)`` for a complete frame whose length, HCS, closing
        flag and FCS all check, ``stop`` being the index after its closing flag; else
        ``(None, verdict, start)``: ``NEED_MORE`` when ``data`` ends inside a candidate that
        is still possible, or the reason to reject it. Rejects as early as the bytes allow
        (bad format, length or HCS long before the frame's end), so garbage is not waited
        for. Header fields come from caches filled by Construct, keyed by checked bytes."""
        # fast path: 1-byte addresses and a header (with its CRC) seen and checked before
        key_end = start + _SHORT_KEY_END
        available = len(data)
        if key_end <= available:
            entry = cached_short_frame(data[start + 1:key_end])
            if entry is not None:
                frame_size, bare_frame, destination, source, control, segmented = entry
                stop = start + frame_size
                if stop > available:
                    return None, _NEED_MORE, start
                if data[stop - 1] != FLAG:
                    return None, _TRUNCATED, start
                if bare_frame is not None:  # no information: the key held the FCS
                    return bare_frame, _DECODED, stop
                if (_kernel(data[start + 1:stop - 1], _KERNEL_INIT, _KERNEL_TABLE)
                        != _KERNEL_GOOD):
                    return None, _BAD_FCS, start
                return _new_tuple(HdlcFrame, (destination, source, control,
                                              data[key_end:stop - 3], segmented)
                                  ), _DECODED, stop
        return decode_at_checked(data, start)

    return decode_at


def _make_decode(caches: _Caches, decode_at_checked: Callable[[bytes, int], FrameAt]
                 ) -> Callable[[bytes], HdlcFrame]:
    cached_short_frame = caches.short_frame.get

    def decode(data: bytes) -> HdlcFrame:
        """Decode one whole frame, flag to flag. Checks flags, length, HCS and FCS before any
        of the frame is trusted; raises :class:`FrameError` saying what is wrong."""
        # the fast path of decode_at, inline: a header (with its CRC) seen and checked
        # before, then flags, size and one CRC over the whole frame as received
        entry = cached_short_frame(data[1:_SHORT_KEY_END])
        if entry is not None:
            frame_size, bare_frame, destination, source, control, segmented = entry
            if (frame_size == len(data) and data[0] == FLAG and data[-1] == FLAG
                    and _kernel(data, _KERNEL_INIT, _KERNEL_TABLE)
                    == _WHOLE_FRAME_GOOD_CRC[frame_size]):
                if bare_frame is not None:
                    return bare_frame
                return _new_tuple(HdlcFrame, (destination, source, control,
                                              data[_SHORT_KEY_END:-3], segmented))
        if len(data) < MIN_FRAME_SIZE_BYTES or data[0] != FLAG:
            raise FrameError(
                f"a frame is at least {MIN_FRAME_SIZE_BYTES} bytes between two 7E flags")
        frame, verdict, stop = decode_at_checked(data, 0)
        if frame is None:
            raise FrameError(f"{_DECODE_ERRORS[verdict]} ({len(data)} bytes)")
        if stop != len(data):
            raise FrameError(f"the length field says {stop - 2} bytes between the flags, "
                             f"frame has {len(data) - 2}")
        return frame

    return decode


#: The codec the module-level functions use (one set of caches for the whole process).
DEFAULT_CODEC = FrameCodec()
#: :attr:`FrameCodec.encode` of :data:`DEFAULT_CODEC`.
encode_frame: Callable[[HdlcFrame], bytes] = DEFAULT_CODEC.encode
#: :attr:`FrameCodec.decode` of :data:`DEFAULT_CODEC`.
decode_frame: Callable[[bytes], HdlcFrame] = DEFAULT_CODEC.decode
