"""HDLC frame format type 3 (IEC 62056-46), the link layer of the Secure-like protocol.

A frame on the wire::

    7E | format (2) | destination address (1, 2 or 4) | source address (1, 2 or 4) |
    control (1) | [HCS (2) | information (n)] | FCS (2) | 7E

The Construct definition :data:`HDLC_FRAME` is the single source of truth for that layout.
This module holds it, the Python view of a frame (:class:`HdlcFrame`, :data:`CONTROL_TABLE`,
address and control helpers; the two readings of a server address, :class:`Addressing`) and
the Construct-only reference codec (:func:`build_frame_with_construct`,
:func:`parse_frame_with_construct`). The fast codec used
on the hot path, derived from these definitions, is :mod:`protocol.hdlc_codec`.

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

from protocol.crc import crc16_x25
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
    of the last byte is 1, of every other byte 0. Only the shortest form that fits is valid,
    so every address has exactly one spelling (and its DLMS upper/lower reading, see
    :func:`split_dlms_server_address`, follows from its value alone); builds that form."""

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
                if size != address_size_bytes(value):
                    raise FrameError(f"address {value} in {size} bytes is not its shortest "
                                     f"form ({path})")
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


class Addressing(enum.Enum):
    """How a server reads the server address of a frame (one mode per link, see
    docs/protocol.md section 4.3.1)."""

    #: the address is one number: the device at that server address answers
    FLAT = "flat"
    #: IEC 62056-46: an upper (logical device) and an optional lower (physical device) part
    DLMS = "dlms"


class DlmsServerAddress(NamedTuple):
    """A server address read as IEC 62056-46 upper and lower HDLC address."""

    logical: int  # upper HDLC address: the logical device
    physical: int | None  # lower HDLC address: the physical device; None in the 1-byte form
    size_bytes: int  # 1, 2 or 4: the form it was written in


#: Upper HDLC address (logical device) values IEC 62056-46 gives a meaning, per form
#: (2 bytes: 7-bit parts, 4 bytes: 14-bit parts; the 1-byte form uses the 2-byte values;
#: 0 is "no station", 2-15 are reserved).
DLMS_MANAGEMENT_LOGICAL_DEVICE = 0x01
DLMS_CALLING_ADDRESS = {1: 0x7E, 2: 0x7E, 4: 0x3FFE}
DLMS_ALL_STATION_ADDRESS = {1: 0x7F, 2: 0x7F, 4: 0x3FFF}


def split_dlms_server_address(address: int) -> DlmsServerAddress:
    """Read a (shortest-form) server address as IEC 62056-46 upper/lower parts: 1 byte is the
    upper part alone; 2 bytes a 7-bit upper and a 7-bit lower part; 4 bytes a 14-bit upper and
    a 14-bit lower part."""
    size = address_size_bytes(address)
    if size == 1:
        return DlmsServerAddress(address, None, 1)
    half_bits = 7 * size // 2
    return DlmsServerAddress(address >> half_bits, address & ((1 << half_bits) - 1), size)


def dlms_server_address(logical: int, physical: int | None = None,
                        size_bytes: int | None = None) -> int:
    """The server address value whose (shortest) encoding carries ``logical`` as the upper and
    ``physical`` as the lower part: the 1-byte form without ``physical``; else the 2-byte
    form when both fit 7 bits (unless ``size_bytes`` is 4), else the 4-byte form. Raises
    :class:`FrameError` when no form holds them (``logical`` must be 1 or more: an upper part
    of 0 would make the value shorter than its form)."""
    if physical is None:
        if 1 <= logical <= 0x7F and size_bytes in (None, 1):
            return logical
    elif 1 <= logical <= 0x7F and 0 <= physical <= 0x7F and size_bytes in (None, 2):
        return (logical << 7) | physical
    elif 1 <= logical <= 0x3FFF and 0 <= physical <= 0x3FFF and size_bytes in (None, 4):
        return (logical << 14) | physical
    raise FrameError(f"no HDLC server address of {size_bytes or 'any'} bytes has upper part "
                     f"{logical} and lower part {physical}: the upper part is 1..16383 "
                     "(1..127 in 1 or 2 bytes), the lower part 0..16383 (0..127 in 2 bytes)")


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
# Construct-only codec: the reference that protocol.hdlc_codec's fast paths match.
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


#: CRC-16/X.25 of any block followed by its own CRC (low byte first): the "good" residue,
#: so one CRC over header + HCS (or over the whole frame + FCS) checks it.
GOOD_FCS_RESIDUE = crc16_x25(crc16_x25(b"").to_bytes(CRC_SIZE_BYTES, "little"))
#: Smallest 11-bit frame length: format, two 1-byte addresses, control, FCS.
MIN_FRAME_LENGTH = MIN_FRAME_SIZE_BYTES - 2
