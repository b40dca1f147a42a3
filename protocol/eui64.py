"""EUI-64 device IDs: the one place their text form is parsed and written.

DUIS, profiles, the CLI and traces all write an EUI-64 as eight hex pairs separated by dashes,
``00-DB-12-34-56-78-90-A0``; on the wire it is 8 bytes. Colons or no separators are accepted
on input, in any case.
"""

from __future__ import annotations

import re

EUI64_SIZE_BYTES = 8
_EUI64_TEXT = re.compile(r"[0-9A-Fa-f]{2}([-:]?)[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){6}")


def parse_eui64(text: str) -> bytes:
    """``00-DB-12-34-56-78-90-A0`` as 8 bytes. Raises :class:`ValueError` saying what was
    expected; callers turn it into their own typed error."""
    stripped = text.strip() if isinstance(text, str) else ""
    if not _EUI64_TEXT.fullmatch(stripped):
        raise ValueError(f"{text!r} is not an EUI-64 such as 00-DB-12-34-56-78-90-A0")
    return bytes.fromhex(re.sub(r"[-:]", "", stripped))


def format_eui64(eui64: bytes) -> str:
    """8 bytes as ``00-DB-12-34-56-78-90-A0``."""
    if len(eui64) != EUI64_SIZE_BYTES:
        raise ValueError(f"an EUI-64 is {EUI64_SIZE_BYTES} bytes, got {len(eui64)}")
    return "-".join(f"{byte:02X}" for byte in eui64)
