"""HDLC frame format type 3 (IEC 62056-46), the link layer of the Secure-like protocol.

A frame on the wire::

    7E | format (2) | destination address (1, 2 or 4) | source address (1, 2 or 4) |
    control (1) | [HCS (2) | information (n)] | FCS (2) | 7E

The Construct definition :data:`HDLC_FRAME` is the single source of truth for that layout.
:func:`encode_frame`, :func:`decode_frame` and :func:`decode_frame_at` (one candidate frame in
place inside a larger buffer, for :mod:`protocol.stream`) are the fast paths used on the hot
path. They never restate the layout: they keep what Construct built or parsed (whole headers
with their HCS, format fields, addresses, control bytes; tables of which bytes end an address
or can start a format field) and compute only CRCs themselves, through crcmod's C kernel. A
cache miss, and every frame the fast path cannot classify, goes through Construct. Caches on
the decode side are keyed by bytes whose CRC has been checked, and a frame's length, closing
flag and FCS are checked before any cached or parsed view of it is trusted. No compiled
Construct parser is used: the interpreted one never runs on bytes whose CRC is unchecked
except the two-byte format field, whose every value it handles.

This module does no I/O. It does not know about sequence numbers or connections: that is
:mod:`protocol.link`.
"""

from __future__ import annotations

import enum
from typing import Any, NamedTuple

from construct import (
    BitsInteger,
    BitStruct,
    Bytes,
    Checksum,
    Const,
    Construct,
    ConstructError,
    Flag,
    If,
    Int8ub,
    Int16ul,
    RawCopy,
    Rebuild,
    Struct,
    Terminated,
    this,
)

from protocol.crc import (
    CRC16_X25_KERNEL_GOOD_RESIDUE,
    CRC16_X25_KERNEL_INIT,
    CRC16_X25_KERNEL_TABLE,
    crc16_x25,
    crc16_x25_kernel,
)
from protocol.errors import FrameError

FLAG = 0x7E
FLAG_BYTE = b"\x7e"
#: The type nibble of the format field: frame format type 3.
FRAME_FORMAT_TYPE = 0xA
#: Largest value of the 11-bit frame length (format field through FCS).
MAX_FRAME_LENGTH = 0x7FF
#: Smallest whole frame on the wire: flags, format, two 1-byte addresses, control, FCS.
MIN_FRAME_SIZE_BYTES = 9
#: Largest whole frame on the wire: the 11-bit length plus the two flags.
MAX_FRAME_SIZE_BYTES = MAX_FRAME_LENGTH + 2
#: Bytes of CRC (HCS or FCS).
CRC_SIZE_BYTES = 2
#: The largest address each encoded size can carry (7 bits per byte).
MAX_ADDRESS_BY_SIZE = {1: 0x7F, 2: 0x3FFF, 4: 0x0FFFFFFF}


class FrameType(enum.IntEnum):
    """Frame types named by the control field."""

    I = 0  # noqa: E741  (the standard's name: information frame)
    RR = 1
    RNR = 2
    SNRM = 3
    UA = 4
    DISC = 5
    DM = 6
    FRMR = 7
    UI = 8


#: Control byte with P/F and sequence numbers clear, for each frame type.
CONTROL_BASE = {
    FrameType.I: 0x00,
    FrameType.RR: 0x01,
    FrameType.RNR: 0x05,
    FrameType.SNRM: 0x83,
    FrameType.UA: 0x63,
    FrameType.DISC: 0x43,
    FrameType.DM: 0x0F,
    FrameType.FRMR: 0x87,
    FrameType.UI: 0x03,
}
_SUPERVISORY = (FrameType.RR, FrameType.RNR)


# --------------------------------------------------------------------------------------------
# Construct definitions: the layout, once.
# --------------------------------------------------------------------------------------------


class HdlcAddress(Construct):
    """An HDLC address: 1, 2 or 4 bytes of 7 bits each, most significant first; the low bit
    of the last byte is 1, of every other byte 0. Builds the shortest form that fits."""

    def _parse(self, stream: Any, context: Any, path: str) -> int:
        value = 0
        for size in range(1, 5):
            byte = stream.read(1)
            if not byte:
                raise FrameError(f"address runs past the end of the frame ({path})")
            value = (value << 7) | (byte[0] >> 1)
            if byte[0] & 1:
                if size == 3:
                    raise FrameError(f"a 3-byte address is not allowed ({path})")
                return value
        raise FrameError(f"address longer than 4 bytes ({path})")

    def _build(self, obj: int, stream: Any, context: Any, path: str) -> int:
        stream.write(encode_address(obj))
        return obj

    def _sizeof(self, context: Any, path: str) -> int:
        raise FrameError("an HDLC address has no fixed size")


def address_size_bytes(address: int) -> int:
    """Bytes the shortest encoding of ``address`` takes (1, 2 or 4)."""
    for size, largest in MAX_ADDRESS_BY_SIZE.items():
        if 0 <= address <= largest:
            return size
    raise FrameError(f"address {address} is outside 0..{MAX_ADDRESS_BY_SIZE[4]}")


def encode_address(address: int) -> bytes:
    """The shortest wire form of ``address``."""
    size = address_size_bytes(address)
    groups = [(address >> (7 * (size - 1 - i))) & 0x7F for i in range(size)]
    return bytes((g << 1) | (1 if i == size - 1 else 0) for i, g in enumerate(groups))


#: The control byte: N(R) or modifier bits, poll/final, N(S) or modifier bits, frame class.
CONTROL_FIELD = BitStruct(
    "receive_sequence" / BitsInteger(3),
    "poll_final" / Flag,
    "send_sequence_or_modifier" / BitsInteger(3),
    "not_information" / Flag,
)


def _frame_length(ctx: Any) -> int:
    """Format field through FCS, for building (reads the sibling fields of the header)."""
    header = ctx._  # the format BitStruct sits inside the header, inside the body
    information = header._.information
    return (
        2
        + address_size_bytes(header.destination_address)
        + address_size_bytes(header.source_address)
        + 1
        + (CRC_SIZE_BYTES + len(information) if information else 0)
        + CRC_SIZE_BYTES
    )


#: The two-byte format field: type 0xA, segmentation bit, 11-bit frame length.
FORMAT_FIELD = BitStruct(
    "frame_format_type" / Const(FRAME_FORMAT_TYPE, BitsInteger(4)),
    "segmented" / Flag,
    "frame_length" / Rebuild(BitsInteger(11), _frame_length),
)

#: Format, addresses and control: what the HCS covers.
HDLC_HEADER = Struct(
    "format" / FORMAT_FIELD,
    "destination_address" / HdlcAddress(),
    "source_address" / HdlcAddress(),
    "control" / Int8ub,
)


def _information_length(ctx: Any) -> int:
    header = ctx.header
    length = header.value.format.frame_length - len(header.data) - CRC_SIZE_BYTES
    if length == 0:
        return 0
    length -= CRC_SIZE_BYTES
    if length <= 0:
        raise FrameError(f"frame length {header.value.format.frame_length} leaves no room")
    return length


#: Everything between the flags except the FCS: what the FCS covers.
HDLC_BODY = Struct(
    "header" / RawCopy(HDLC_HEADER),
    "hcs" / If(
        lambda ctx: _information_length(ctx) > 0 if ctx._parsing else bool(ctx.information),
        Checksum(Int16ul, crc16_x25, this.header.data),
    ),
    "information" / Bytes(
        lambda ctx: _information_length(ctx) if ctx._parsing else len(ctx.information)
    ),
)

#: A whole frame, flag to flag.
HDLC_FRAME = Struct(
    "opening_flag" / Const(FLAG_BYTE),
    "body" / RawCopy(HDLC_BODY),
    "fcs" / Checksum(Int16ul, crc16_x25, this.body.data),
    "closing_flag" / Const(FLAG_BYTE),
    Terminated,
)


# --------------------------------------------------------------------------------------------
# The Python view of a frame, and tables derived from the definitions above.
# --------------------------------------------------------------------------------------------


class Control(NamedTuple):
    """A control byte, classified."""

    frame_type: FrameType | None  # None: a control byte this protocol does not use
    send_sequence: int  # N(S), I-frames only
    receive_sequence: int  # N(R), I-frames and RR/RNR only
    poll_final: bool


def _classify_control(byte: int) -> Control:
    bits = CONTROL_FIELD.parse(bytes((byte,)))
    poll_final = bool(bits.poll_final)
    if not bits.not_information:
        return Control(FrameType.I, bits.send_sequence_or_modifier, bits.receive_sequence,
                       poll_final)
    base = byte & ~0x10  # clear P/F
    for frame_type in _SUPERVISORY:
        if base & 0x0F == CONTROL_BASE[frame_type]:
            return Control(frame_type, 0, bits.receive_sequence, poll_final)
    for frame_type, control in CONTROL_BASE.items():
        if frame_type not in _SUPERVISORY and frame_type is not FrameType.I and base == control:
            return Control(frame_type, 0, 0, poll_final)
    return Control(None, 0, 0, poll_final)


#: Every control byte classified once, through :data:`CONTROL_FIELD`.
CONTROL_TABLE: tuple[Control, ...] = tuple(_classify_control(b) for b in range(256))


def _build_control_byte(frame_type: FrameType, send_sequence: int, receive_sequence: int,
                        poll_final: bool) -> int:
    if frame_type is FrameType.I:
        modifier, not_information, receive = send_sequence, False, receive_sequence
    else:
        base = CONTROL_BASE[frame_type]
        modifier, not_information = (base >> 1) & 0x07, True
        receive = receive_sequence if frame_type in _SUPERVISORY else base >> 5
    return CONTROL_FIELD.build(dict(receive_sequence=receive, poll_final=poll_final,
                                    send_sequence_or_modifier=modifier,
                                    not_information=not_information))[0]


#: (frame type, N(S), N(R), P/F) -> control byte, every combination built once through
#: :data:`CONTROL_FIELD` (N(S) only matters for I-frames, N(R) for I, RR and RNR).
_CONTROL_BYTES: dict[tuple[FrameType, int, int, bool], int] = {
    (frame_type, send, receive, poll_final): _build_control_byte(frame_type, send, receive,
                                                                 poll_final)
    for frame_type in FrameType for send in range(8) for receive in range(8)
    for poll_final in (False, True)
}


def control_byte(frame_type: FrameType, *, send_sequence: int = 0, receive_sequence: int = 0,
                 poll_final: bool = True) -> int:
    """The control byte for a frame type, sequence numbers (0-7) and the P/F bit."""
    byte = _CONTROL_BYTES.get((frame_type, send_sequence, receive_sequence, bool(poll_final)))
    if byte is None:
        raise FrameError(f"no control byte for {frame_type!r} with N(S)={send_sequence}, "
                         f"N(R)={receive_sequence}: sequence numbers run 0..7")
    return byte


class HdlcFrame(NamedTuple):
    """One link frame. ``control`` is the raw byte; see :attr:`frame_type` and friends."""

    destination_address: int
    source_address: int
    control: int
    information: bytes = b""
    segmented: bool = False

    @property
    def frame_type(self) -> FrameType | None:
        return CONTROL_TABLE[self.control].frame_type

    @property
    def send_sequence(self) -> int:
        return CONTROL_TABLE[self.control].send_sequence

    @property
    def receive_sequence(self) -> int:
        return CONTROL_TABLE[self.control].receive_sequence

    @property
    def poll_final(self) -> bool:
        return CONTROL_TABLE[self.control].poll_final

    @classmethod
    def make(cls, frame_type: FrameType, destination_address: int, source_address: int,
             information: bytes = b"", *, send_sequence: int = 0, receive_sequence: int = 0,
             poll_final: bool = True, segmented: bool = False) -> HdlcFrame:
        """Build a frame from its parts, naming the frame type instead of the control byte."""
        control = control_byte(frame_type, send_sequence=send_sequence,
                               receive_sequence=receive_sequence, poll_final=poll_final)
        return cls(destination_address, source_address, control, bytes(information), segmented)


# --------------------------------------------------------------------------------------------
# Construct-only codec (the reference), and the fast paths derived from it.
# --------------------------------------------------------------------------------------------


def build_frame_with_construct(frame: HdlcFrame) -> bytes:
    """Encode through :data:`HDLC_FRAME` alone: slow, the reference the fast path matches."""
    try:
        return HDLC_FRAME.build(dict(body=dict(value=dict(
            header=dict(value=dict(
                format=dict(segmented=frame.segmented),
                destination_address=frame.destination_address,
                source_address=frame.source_address,
                control=frame.control,
            )),
            information=frame.information,
        ))))
    except ConstructError as error:
        raise FrameError(f"cannot encode frame: {error}") from error


def parse_frame_with_construct(data: bytes) -> HdlcFrame:
    """Decode one whole frame through :data:`HDLC_FRAME` alone (checks both CRCs)."""
    try:
        parsed = HDLC_FRAME.parse(data)
    except ConstructError as error:
        raise FrameError(f"not a valid frame: {error}") from error
    header = parsed.body.value.header.value
    return HdlcFrame(header.destination_address, header.source_address, header.control,
                     parsed.body.value.information, header.format.segmented)


#: Caches filled from Construct: each is cleared when it reaches this many entries.
CACHE_LIMIT = 1 << 16
#: CRC-16/X.25 of any block followed by its own CRC (low byte first): the "good" residue,
#: so one CRC over header + HCS (or over the whole frame + FCS) checks it.
GOOD_FCS_RESIDUE = crc16_x25(crc16_x25(b"").to_bytes(CRC_SIZE_BYTES, "little"))
#: Smallest 11-bit frame length: format, two 1-byte addresses, control, FCS.
MIN_FRAME_LENGTH = MIN_FRAME_SIZE_BYTES - 2


class FrameVerdict(enum.IntEnum):
    """Why :func:`decode_frame_at` returned no frame (its second value when the first is None).

    ``NEED_MORE`` means nothing is wrong yet: the candidate is a prefix of a possible frame.
    Every other verdict rejects the candidate starting at that flag."""

    NEED_MORE = 0
    BAD_FORMAT = -1  # format type is not 0xA, or an address is 3 or more than 4 bytes long
    BAD_LENGTH = -2  # the 11-bit length cannot hold the header, FCS (and HCS + information)
    BAD_HCS = -3  # header check sequence wrong
    TRUNCATED = -4  # no closing flag where the length says the frame ends
    BAD_FCS = -5  # frame check sequence wrong


_NEED_MORE = FrameVerdict.NEED_MORE
_BAD_FORMAT = FrameVerdict.BAD_FORMAT
_BAD_LENGTH = FrameVerdict.BAD_LENGTH
_BAD_HCS = FrameVerdict.BAD_HCS
_TRUNCATED = FrameVerdict.TRUNCATED
_BAD_FCS = FrameVerdict.BAD_FCS

#: For each byte: True when :class:`HdlcAddress` accepts it as the last byte of an address.
_FINAL_ADDRESS_BYTE: tuple[bool, ...]


def _is_final_address_byte(byte: int) -> bool:
    try:
        HdlcAddress().parse(bytes((byte,)))
    except (FrameError, ConstructError):
        return False
    return True


_FINAL_ADDRESS_BYTE = tuple(_is_final_address_byte(b) for b in range(256))
_MAX_ADDRESS_SIZE_BYTES = max(MAX_ADDRESS_BY_SIZE)

# (destination, source, control, segmented, information length) -> (opening flag + header
# [+ HCS], CRC state after them, or -1 when the frame has no information and is all header)
_header_cache: dict[tuple[int, int, int, bool, int], tuple[bytes, int]] = {}
# the two format bytes -> (segmented, frame length), or None: not frame format type 3
_format_cache: dict[bytes, tuple[bool, int] | None] = {}
# format..control of a frame without information -> (destination, source, control)
_bare_header_cache: dict[bytes, tuple[int, int, int]] = {}
# format..control + a correct HCS -> (destination, source, control)
_checked_header_cache: dict[bytes, tuple[int, int, int]] = {}

_new_tuple = tuple.__new__
_kernel = crc16_x25_kernel
_KERNEL_INIT = CRC16_X25_KERNEL_INIT
_KERNEL_TABLE = CRC16_X25_KERNEL_TABLE
_KERNEL_GOOD = CRC16_X25_KERNEL_GOOD_RESIDUE


def _can_start_format(byte: int) -> bool:
    try:
        FORMAT_FIELD.parse(bytes((byte, 0)))
    except ConstructError:
        return False
    return True


#: For each byte: True when :data:`FORMAT_FIELD` accepts it as the first byte of a format
#: field. A 7E followed by any other byte cannot open a frame.
CAN_START_FORMAT_FIELD: tuple[bool, ...] = tuple(_can_start_format(b) for b in range(256))


def _header_for(frame: HdlcFrame) -> tuple[bytes, int]:
    """Header bytes built by Construct for a frame shaped like ``frame`` (cached)."""
    key = (frame.destination_address, frame.source_address, frame.control, frame.segmented,
           len(frame.information))
    whole = build_frame_with_construct(frame)
    header_size = len(whole) - len(frame.information) - CRC_SIZE_BYTES - 1
    if frame.information:
        header = whole[:header_size]
        entry = (header, crc16_x25(header[1:]))
    else:  # no information: the frame is all header, nothing follows but the FCS
        entry = (whole, -1)
    if len(_header_cache) >= CACHE_LIMIT:
        _header_cache.clear()
    _header_cache[key] = entry
    return entry


def encode_frame(frame: HdlcFrame, _cache_get: Any = _header_cache.get, _crc: Any = crc16_x25,
                 _join: Any = b"".join) -> bytes:
    """The wire bytes of ``frame``, flag to flag. Raises :class:`FrameError` if it cannot be
    encoded (address out of range, information too long for the 11-bit length)."""
    information = frame[3]
    entry = _cache_get((frame[0], frame[1], frame[2], frame[4], len(information)))
    if entry is None:
        entry = _header_for(frame)
    header, crc_state = entry
    if crc_state < 0:
        return header
    return _join((header, information, _crc(information, crc_state).to_bytes(2, "little"),
                  FLAG_BYTE))


def _parse_format(format_bytes: bytes) -> tuple[bool, int] | None:
    """Format field through :data:`FORMAT_FIELD` (cached; None when not type 3)."""
    try:
        parsed = FORMAT_FIELD.parse(format_bytes)
        entry: tuple[bool, int] | None = (bool(parsed.segmented), int(parsed.frame_length))
    except ConstructError:
        entry = None
    if len(_format_cache) >= CACHE_LIMIT:  # cannot happen: 65536 two-byte keys at most
        _format_cache.clear()
    _format_cache[format_bytes] = entry
    return entry


def _parse_header(header_bytes: bytes, cache: dict[bytes, tuple[int, int, int]],
                  key: bytes) -> tuple[int, int, int] | None:
    """Addresses and control through :data:`HDLC_HEADER` (the caller checked its CRC); None
    if Construct refuses a header the fast path's own checks let through (never expected)."""
    try:
        parsed = HDLC_HEADER.parse(header_bytes)
    except (ConstructError, FrameError):
        return None
    entry = (int(parsed.destination_address), int(parsed.source_address), int(parsed.control))
    if len(cache) >= CACHE_LIMIT:
        cache.clear()
    cache[key] = entry
    return entry


def _address_end(data: bytes, start: int, limit: int) -> int:
    """Index after the address starting at ``data[start]``, which must end before ``limit``;
    or a :class:`FrameVerdict` (negative or zero) when it does not."""
    available = len(data)
    final = _FINAL_ADDRESS_BYTE
    for index in range(start, start + _MAX_ADDRESS_SIZE_BYTES):
        if index >= limit:
            return _BAD_LENGTH
        if index >= available:
            return _NEED_MORE
        if final[data[index]]:
            size = index + 1 - start
            return index + 1 if size in MAX_ADDRESS_BY_SIZE else _BAD_FORMAT
    return _BAD_FORMAT


#: Where the header most frames have ends: opening flag, format, 1-byte destination and
#: source, control (measured on the smallest frame Construct builds). The 2 bytes after it
#: are the HCS or, with no information, the FCS.
_SHORT_HEADER_END = len(build_frame_with_construct(HdlcFrame(0, 0, 0))) - CRC_SIZE_BYTES - 1
_SHORT_KEY_END = _SHORT_HEADER_END + CRC_SIZE_BYTES
# format..control + the CRC after it, for 1-byte addresses, once the whole frame checked ->
# (frame size, the frame if it has no information else None, destination, source, control,
# segmented)
_ShortFrameEntry = tuple[int, HdlcFrame | None, int, int, int, bool]
_short_frame_cache: dict[bytes, _ShortFrameEntry] = {}


def decode_frame_at(data: bytes, start: int = 0) -> tuple[HdlcFrame | None, int]:
    """Try the frame whose opening flag is ``data[start]`` (the caller found the flag).

    Returns ``(frame, stop)`` for a complete frame whose length, HCS, closing flag and FCS
    all check, ``stop`` being the index after its closing flag; else ``(None, verdict)``
    with a :class:`FrameVerdict`: ``NEED_MORE`` when ``data`` ends inside a candidate that
    is still possible, or the reason to reject it. Rejects as early as the bytes allow (bad
    format, length or HCS long before the frame's end), so garbage is not waited for.
    Header fields come from caches filled by Construct, keyed by bytes whose CRC checked."""
    # fast path: 1-byte addresses and a header (with its CRC) seen and checked before
    key_end = start + _SHORT_KEY_END
    available = len(data)
    if key_end <= available:
        entry = _short_frame_cache.get(data[start + 1:key_end])
        if entry is not None:
            frame_size, bare_frame, destination, source, control, segmented = entry
            stop = start + frame_size
            if stop > available:
                return None, _NEED_MORE
            if data[stop - 1] != FLAG:
                return None, _TRUNCATED
            if bare_frame is not None:  # no information: the key held the FCS
                return bare_frame, stop
            if _kernel(data[start + 1:stop - 1], _KERNEL_INIT, _KERNEL_TABLE) != _KERNEL_GOOD:
                return None, _BAD_FCS
            return _new_tuple(HdlcFrame, (destination, source, control,
                                          data[key_end:stop - 3], segmented)), stop
    return _decode_frame_at_checked(data, start)


def _decode_frame_at_checked(data: bytes, start: int) -> tuple[HdlcFrame | None, int]:
    """:func:`decode_frame_at` for every frame: each field checked, header caches filled."""
    available = len(data)
    if available - start < 3:
        return None, _NEED_MORE
    format_bytes = data[start + 1:start + 3]
    format_entry = _format_cache.get(format_bytes, False)
    if format_entry is False:
        format_entry = _parse_format(format_bytes)
    if format_entry is None:
        return None, _BAD_FORMAT
    segmented, frame_length = format_entry
    if frame_length < MIN_FRAME_LENGTH:
        return None, _BAD_LENGTH
    stop = start + frame_length + 2
    fcs_start = stop - 3
    index = _address_end(data, start + 3, fcs_start - 2)
    if index <= 0:
        return None, index
    index = _address_end(data, index, fcs_start - 1)
    if index <= 0:
        return None, index
    header_end = index + 1  # after the control byte
    information_size = fcs_start - header_end
    if information_size > CRC_SIZE_BYTES:  # HCS and at least one byte of information
        information_start = header_end + CRC_SIZE_BYTES
        if information_start > available:
            return None, _NEED_MORE
        key = data[start + 1:information_start]
        header = _checked_header_cache.get(key)
        if header is None:
            if _kernel(key, _KERNEL_INIT, _KERNEL_TABLE) != _KERNEL_GOOD:
                return None, _BAD_HCS
            header = _parse_header(key[:-CRC_SIZE_BYTES], _checked_header_cache, key)
            if header is None:
                return None, _BAD_FORMAT
        if stop > available:
            return None, _NEED_MORE
        if data[stop - 1] != FLAG:
            return None, _TRUNCATED
        if _kernel(data[start + 1:stop - 1], _KERNEL_INIT, _KERNEL_TABLE) != _KERNEL_GOOD:
            return None, _BAD_FCS
        if header_end == start + _SHORT_HEADER_END:
            _remember_short_frame(key, (frame_length + 2, None, *header, segmented))
        return _new_tuple(HdlcFrame, (*header, data[information_start:fcs_start],
                                      segmented)), stop
    if information_size:
        return None, _BAD_LENGTH  # one or two bytes: no room for an HCS and information
    if stop > available:
        return None, _NEED_MORE
    if data[stop - 1] != FLAG:
        return None, _TRUNCATED
    if _kernel(data[start + 1:stop - 1], _KERNEL_INIT, _KERNEL_TABLE) != _KERNEL_GOOD:
        return None, _BAD_FCS
    key = data[start + 1:header_end]
    header = _bare_header_cache.get(key)
    if header is None:
        header = _parse_header(key, _bare_header_cache, key)
        if header is None:
            return None, _BAD_FORMAT
    frame = _new_tuple(HdlcFrame, (*header, b"", segmented))
    if header_end == start + _SHORT_HEADER_END:
        _remember_short_frame(data[start + 1:stop - 1], (frame_length + 2, frame, *header,
                                                          segmented))
    return frame, stop


def _remember_short_frame(key: bytes, entry: _ShortFrameEntry) -> None:
    if len(_short_frame_cache) >= CACHE_LIMIT:
        _short_frame_cache.clear()
    _short_frame_cache[key] = entry


_DECODE_ERRORS = {
    FrameVerdict.NEED_MORE: "the frame ends before its length field says it does",
    FrameVerdict.BAD_FORMAT: "not HDLC frame format type 3 (format field or address encoding)",
    FrameVerdict.BAD_LENGTH: "the length field cannot be right for this header",
    FrameVerdict.BAD_HCS: "HCS does not match the frame header",
    FrameVerdict.TRUNCATED: "no closing 7E flag where the length field says the frame ends",
    FrameVerdict.BAD_FCS: "FCS does not match the frame",
}


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


def decode_frame(data: bytes) -> HdlcFrame:
    """Decode one whole frame, flag to flag. Checks flags, length, HCS and FCS before any of
    the frame is trusted; raises :class:`FrameError` saying what is wrong."""
    # the fast path of decode_frame_at, inline: a header (with its CRC) seen and checked
    # before, then flags, size and one CRC over the whole frame as received
    entry = _short_frame_cache.get(data[1:_SHORT_KEY_END])
    if entry is not None:
        size, bare_frame, destination, source, control, segmented = entry
        if (size == len(data) and data[0] == FLAG and data[-1] == FLAG
                and _kernel(data, _KERNEL_INIT, _KERNEL_TABLE) == _WHOLE_FRAME_GOOD_CRC[size]):
            if bare_frame is not None:
                return bare_frame
            return _new_tuple(HdlcFrame, (destination, source, control,
                                          data[_SHORT_KEY_END:-3], segmented))
    if len(data) < MIN_FRAME_SIZE_BYTES or data[0] != FLAG:
        raise FrameError(f"a frame is at least {MIN_FRAME_SIZE_BYTES} bytes between two 7E flags")
    frame, stop = _decode_frame_at_checked(data, 0)
    if frame is None:
        raise FrameError(f"{_DECODE_ERRORS[FrameVerdict(stop)]} ({len(data)} bytes)")
    if stop != len(data):
        raise FrameError(f"the length field says {stop - 2} bytes between the flags, "
                         f"frame has {len(data) - 2}")
    return frame
