"""Encode and decode of one whole HDLC frame, side by side with the floor, the peer and the
Construct reference, at 8, 64 and 256 bytes of information (one benchmark group per size).

- ``floor``: plain ``struct`` + crcmod for the same bytes, written here and only here (it
  restates the layout by hand, which the product must never do);
- ``pymodbus-rtu``: pymodbus 3.x ``FramerRTU.encode`` / ``FramerRTU.decode`` of a PDU of the
  same size (framing only, like ours: the peer);
- ``pymodbus-rtu+pdu``: ``FramerRTU.buildFrame`` / ``FramerRTU.handleFrame``, which also
  encode / decode the register PDU object (shown for context, not the like-for-like peer);
- ``construct``: :func:`build_frame_with_construct` / :func:`parse_frame_with_construct`;
- ``ours``: :func:`encode_frame` / :func:`decode_frame`.

Compare: ``pytest benchmarks --benchmark-only --benchmark-columns=min,mean,median``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU
from pymodbus.pdu.register_message import ReadHoldingRegistersResponse
from pytest_benchmark.fixture import BenchmarkFixture

from protocol.crc import crc16_x25
from protocol.hdlc import (
    FrameType,
    HdlcFrame,
    build_frame_with_construct,
    parse_frame_with_construct,
)
from protocol.hdlc_codec import decode_frame, encode_frame

INFORMATION_SIZES_BYTES = (8, 64, 256)
SERVER, CLIENT = 0x01, 0x10
#: LLC header then a request APDU header (type, invoke id, command), then its body.
APDU_PREFIX = bytes.fromhex("e6e600" "01" "0001" "03")


def information_of(size_bytes: int) -> bytes:
    return (APDU_PREFIX + bytes(range(256)) * 2)[:size_bytes]


def frame_of(size_bytes: int) -> HdlcFrame:
    return HdlcFrame.make(FrameType.I, SERVER, CLIENT, information_of(size_bytes),
                          send_sequence=2, receive_sequence=5)


# ---------------------------------------------------------------------------- the floor

_HEADER = struct.Struct(">BHBBB")  # flag, format + length, 1-byte addresses, control
_CRC = struct.Struct("<H")
_GOOD_RESIDUE = 0x0F47


def floor_encode(destination: int, source: int, control: int, information: bytes) -> bytes:
    header = _HEADER.pack(0x7E, 0xA000 | (len(information) + 9), (destination << 1) | 1,
                          (source << 1) | 1, control)
    head = header + _CRC.pack(crc16_x25(header[1:]))
    body = head + information
    return body + _CRC.pack(crc16_x25(body[1:])) + b"\x7e"


def floor_decode(data: bytes) -> tuple[int, int, int, bytes]:
    flag, format_field, destination, source, control = _HEADER.unpack_from(data)
    if flag != 0x7E or data[-1] != 0x7E or (format_field & 0x7FF) != len(data) - 2:
        raise ValueError("bad frame")
    if crc16_x25(data[1:8]) != _GOOD_RESIDUE or crc16_x25(data[1:-1]) != _GOOD_RESIDUE:
        raise ValueError("bad CRC")
    return destination >> 1, source >> 1, control, data[8:-3]


# ---------------------------------------------------------------------------- the peer

_RTU = FramerRTU(DecodePDU(is_server=False))
_MODBUS_DEVICE_ID = 0x11


def modbus_pdu_of(size_bytes: int) -> bytes:
    """A read-holding-registers response PDU of ``size_bytes``: code, byte count, data."""
    return bytes((0x03, size_bytes - 2)) + information_of(size_bytes - 2)


def modbus_response_of(size_bytes: int) -> ReadHoldingRegistersResponse:
    """The same PDU as :func:`modbus_pdu_of`, as pymodbus's message object."""
    data = information_of(size_bytes - 2)
    registers = [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]
    return ReadHoldingRegistersResponse(registers=registers, dev_id=_MODBUS_DEVICE_ID)


# ---------------------------------------------------------------------------- cases


def _rtu_handle_frame(rtu_wire: bytes) -> int:
    used_bytes, message = _RTU.handleFrame(rtu_wire, _MODBUS_DEVICE_ID, 0)
    assert message is not None
    return used_bytes


def _encode_cases(size_bytes: int) -> dict[str, tuple[Callable[..., Any], tuple[Any, ...], Any]]:
    frame = frame_of(size_bytes)
    wire = encode_frame(frame)
    pdu = modbus_pdu_of(size_bytes)
    return {
        "floor": (floor_encode, (SERVER, CLIENT, frame.control, frame.information), wire),
        "pymodbus-rtu": (_RTU.encode, (pdu, _MODBUS_DEVICE_ID, 0), None),
        "pymodbus-rtu+pdu": (_RTU.buildFrame, (modbus_response_of(size_bytes),), None),
        "construct": (build_frame_with_construct, (frame,), wire),
        "ours": (encode_frame, (frame,), wire),
    }


def _decode_cases(size_bytes: int) -> dict[str, tuple[Callable[..., Any], tuple[Any, ...], Any]]:
    frame = frame_of(size_bytes)
    wire = encode_frame(frame)
    pdu = modbus_pdu_of(size_bytes)
    rtu_wire = _RTU.encode(pdu, _MODBUS_DEVICE_ID, 0)
    return {
        "floor": (floor_decode, (wire,), (SERVER, CLIENT, frame.control, frame.information)),
        "pymodbus-rtu": (_RTU.decode, (rtu_wire,), (len(rtu_wire), _MODBUS_DEVICE_ID, 0, pdu)),
        "pymodbus-rtu+pdu": (_rtu_handle_frame, (rtu_wire,), len(rtu_wire)),
        "construct": (parse_frame_with_construct, (wire,), frame),
        "ours": (decode_frame, (wire,), frame),
    }


CODECS = ("floor", "pymodbus-rtu", "pymodbus-rtu+pdu", "construct", "ours")


@pytest.mark.parametrize("size_bytes", INFORMATION_SIZES_BYTES)
@pytest.mark.parametrize("codec", CODECS)
def test_encode_one_frame(record_environment: BenchmarkFixture, codec: str,
                          size_bytes: int) -> None:
    function, arguments, expected = _encode_cases(size_bytes)[codec]
    record_environment.group = f"encode {size_bytes:>3} B"
    record_environment.extra_info.update(codec=codec, information_bytes=size_bytes)
    result = record_environment(function, *arguments)
    if expected is not None:
        assert result == expected
    else:
        assert len(result) == size_bytes + 3


@pytest.mark.parametrize("size_bytes", INFORMATION_SIZES_BYTES)
@pytest.mark.parametrize("codec", CODECS)
def test_decode_one_frame(record_environment: BenchmarkFixture, codec: str,
                          size_bytes: int) -> None:
    function, arguments, expected = _decode_cases(size_bytes)[codec]
    record_environment.group = f"decode {size_bytes:>3} B"
    record_environment.extra_info.update(codec=codec, information_bytes=size_bytes)
    assert record_environment(function, *arguments) == expected
