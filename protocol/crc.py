"""CRC-16/X.25, the HCS and FCS of every link frame, computed by crcmod (from crcmod-plus).

crcmod-plus ships prebuilt wheels with crcmod's C extension; crcmod still imports a pure-Python
fallback when the extension is missing (a platform without a wheel, built without a compiler),
so :data:`CRC_BACKEND` says which one is in use and tests and benchmarks record it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import crcmod.predefined

#: CRC-16/X.25 (poly 0x1021 reflected, init 0xFFFF, xorout 0xFFFF); check value 0x906E.
crc16_x25 = crcmod.predefined.mkPredefinedCrcFun("x-25")

#: "c-extension" when crcmod's compiled extension computes CRCs, else "pure-python".
CRC_BACKEND: str = (
    "c-extension" if getattr(sys.modules["crcmod.crcmod"], "_usingExtension", False)
    else "pure-python"
)

#: CRC-16/X.25 check value: the CRC of b"123456789".
CRC16_X25_CHECK_VALUE = 0x906E

#: The C kernel behind :data:`crc16_x25` and its arguments, for hot paths that check a
#: residue without the wrapper's Python frame: ``crc16_x25_kernel(block, CRC16_X25_KERNEL_INIT,
#: CRC16_X25_KERNEL_TABLE) == CRC16_X25_KERNEL_GOOD_RESIDUE`` when ``block`` ends with its
#: own correct CRC (low byte first). Taken from crcmod's function and checked below; when the
#: layout is not the expected one the kernel is :data:`crc16_x25` itself, with a neutral init.
crc16_x25_kernel: Callable[[bytes, int, Any], int]
CRC16_X25_KERNEL_INIT: int
CRC16_X25_KERNEL_TABLE: Any
CRC16_X25_KERNEL_GOOD_RESIDUE: int


def _residue_of(crc_function: Callable[[bytes], int]) -> int:
    return crc_function(crc_function(b"").to_bytes(2, "little"))


def _find_kernel() -> tuple[Callable[[bytes, int, Any], int], int, Any, int]:
    defaults = getattr(crc16_x25, "__defaults__", None) or ()
    good_residue = _residue_of(crc16_x25)
    if len(defaults) == 3 and callable(defaults[2]):
        init, table, kernel = defaults
        xor_out = 0xFFFF  # x-25 complements the register on the way in and out
        try:
            works = (kernel(b"123456789", init ^ xor_out, table) ^ xor_out
                     == CRC16_X25_CHECK_VALUE)
        except TypeError:
            works = False
        if works:
            return kernel, init ^ xor_out, table, good_residue ^ xor_out

    def wrapped(data: bytes, crc: int, table: Any) -> int:
        return crc16_x25(data, crc)

    return wrapped, crc16_x25(b""), None, good_residue


(crc16_x25_kernel, CRC16_X25_KERNEL_INIT, CRC16_X25_KERNEL_TABLE,
 CRC16_X25_KERNEL_GOOD_RESIDUE) = _find_kernel()
