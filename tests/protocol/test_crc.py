"""CRC-16/X.25 (HCS and FCS): check value, byte order on the wire, the C backend in use."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from protocol.crc import (
    CRC16_X25_CHECK_VALUE,
    CRC16_X25_KERNEL_GOOD_RESIDUE,
    CRC16_X25_KERNEL_INIT,
    CRC16_X25_KERNEL_TABLE,
    CRC_BACKEND,
    crc16_x25,
    crc16_x25_kernel,
)
from protocol.hdlc import GOOD_FCS_RESIDUE


def test_crc16_x25_check_value_is_906e() -> None:
    assert CRC16_X25_CHECK_VALUE == 0x906E
    assert crc16_x25(b"123456789") == 0x906E


def test_crcmod_c_extension_computes_the_crcs() -> None:
    # crcmod silently falls back to pure Python (10-24x slower) when its extension did not build
    assert CRC_BACKEND == "c-extension"


def test_fcs_is_sent_low_byte_first_in_a_real_snrm_frame() -> None:
    snrm = bytes.fromhex("7ea0070321930f017e")  # SNRM to server 1 from client 0x10
    fcs = crc16_x25(snrm[1:-3])
    assert fcs == 0x010F
    assert snrm[-3:-1] == fcs.to_bytes(2, "little")


def test_block_followed_by_its_crc_gives_the_good_residue() -> None:
    block = b"123456789" + (0x906E).to_bytes(2, "little")
    assert crc16_x25(block) == GOOD_FCS_RESIDUE == 0x0F47


@given(st.binary(max_size=300))
def test_kernel_and_crcmod_function_agree_on_any_bytes(data: bytes) -> None:
    with_crc = data + crc16_x25(data).to_bytes(2, "little")
    result = crc16_x25_kernel(with_crc, CRC16_X25_KERNEL_INIT, CRC16_X25_KERNEL_TABLE)
    assert result == CRC16_X25_KERNEL_GOOD_RESIDUE
    flipped = bytes([with_crc[0] ^ 0x01]) + with_crc[1:]
    result = crc16_x25_kernel(flipped, CRC16_X25_KERNEL_INIT, CRC16_X25_KERNEL_TABLE)
    assert result != CRC16_X25_KERNEL_GOOD_RESIDUE


@given(st.binary(max_size=100), st.binary(max_size=100))
def test_crc_continues_from_a_previous_block(first: bytes, second: bytes) -> None:
    assert crc16_x25(second, crc16_x25(first)) == crc16_x25(first + second)
