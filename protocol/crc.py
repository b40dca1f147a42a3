"""CRC-16/X.25, the HCS and FCS of every link frame, computed by crcmod.

crcmod builds a C extension at install time and silently falls back to pure Python when it
cannot; :data:`CRC_BACKEND` says which one is in use so tests and benchmarks can record it.
"""

from __future__ import annotations

import sys

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
