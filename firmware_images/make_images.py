"""Regenerate every sample firmware image in this directory, byte for byte.

Usage: ``python firmware_images/make_images.py [OUTPUT_DIR]`` (default: this directory).

Payloads are deterministic: SHA-256 in counter mode over a seed naming the image
(``sha256(seed || counter as u32 big-endian)`` blocks, concatenated and cut to length), so the
same script always writes the same bytes. Images use the SEFW format of
:mod:`emulator.firmware`. This script writes only the ``*.sefw`` files it names.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

from emulator.firmware import IMAGE_HEADER_SIZE_BYTES, build_image

MANUFACTURER = "Secure Meters"
ESME_MODEL = "LIBERTY100"
GSME_MODEL = "SECURE-GSME"
HUB_MODEL = "SECURE-CHF"


def deterministic_payload(seed: str, payload_length_bytes: int) -> bytes:
    """``payload_length_bytes`` bytes of SHA-256 counter-mode output seeded by ``seed``."""
    seed_bytes = seed.encode("ascii")
    blocks = []
    for counter in range((payload_length_bytes + 31) // 32):
        blocks.append(hashlib.sha256(seed_bytes + counter.to_bytes(4, "big")).digest())
    return b"".join(blocks)[:payload_length_bytes]


@dataclass(frozen=True)
class SampleImage:
    file_name: str
    description: str
    image: bytes


def _good(model: str, version: str, payload_length_bytes: int) -> bytes:
    payload = deterministic_payload(f"secure-emu {model} {version}", payload_length_bytes)
    return build_image(MANUFACTURER, model, version, payload)


def sample_images() -> list[SampleImage]:
    """Every sample image, good and bad, in the order the README lists them."""
    esme = _good(ESME_MODEL, "1.1.0", 3000)
    gsme = _good(GSME_MODEL, "2.1.0", 2500)
    hub = _good(HUB_MODEL, "3.1.0", 2100)
    wrong_model = _good("LIBERTY200", "1.1.0", 3000)
    # One payload byte flipped after the header was built: the hash no longer matches.
    flip_at = IMAGE_HEADER_SIZE_BYTES + 1500
    bad_hash = esme[:flip_at] + bytes((esme[flip_at] ^ 0x01,)) + esme[flip_at + 1:]
    truncated = esme[:2048]
    bad_magic = b"XXFW" + esme[4:]
    return [
        SampleImage("esme_liberty100_1.1.0.sefw",
                    "good ESME image, Secure Meters LIBERTY100 1.1.0", esme),
        SampleImage("gsme_secure-gsme_2.1.0.sefw",
                    "good GSME image, Secure Meters SECURE-GSME 2.1.0", gsme),
        SampleImage("chf_secure-chf_3.1.0.sefw",
                    "good comms hub image, Secure Meters SECURE-CHF 3.1.0", hub),
        SampleImage("bad_wrong_model_liberty200_1.1.0.sefw",
                    "well-formed image for LIBERTY200: FIRMWARE_WRONG_MODEL on every device",
                    wrong_model),
        SampleImage("bad_hash_liberty100_1.1.0.sefw",
                    "the ESME image with payload byte 1500 flipped: FIRMWARE_BAD_HASH", bad_hash),
        SampleImage("bad_truncated_liberty100_1.1.0.sefw",
                    "the first 2048 bytes of the ESME image: FIRMWARE_BAD_LENGTH", truncated),
        SampleImage("bad_magic_liberty100_1.1.0.sefw",
                    "the ESME image with magic XXFW: FIRMWARE_BAD_HEADER", bad_magic),
    ]


def write_images(output_dir: Path) -> list[Path]:
    """Write every sample image into ``output_dir`` (created if missing); the paths written."""
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for sample in sample_images():
        path = output_dir / sample.file_name
        path.write_bytes(sample.image)
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        print("usage: make_images.py [OUTPUT_DIR]", file=sys.stderr)
        return 2
    output_dir = Path(argv[0]) if argv else Path(__file__).resolve().parent
    for path in write_images(output_dir):
        print(f"{path.stat().st_size:6d}  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
