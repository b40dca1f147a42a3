"""Stream decoder throughput in MB/s: 64-byte frames with 10% noise bytes between them, fed
in random chunks of 1 to 512 bytes (fixed seed), against a plain resynchronising decoder
written here (``bytes.find`` + ``struct`` + crcmod, 1-byte addresses only: the floor).

MB/s (10**6 bytes per second) of the mean and of the best round land in each result's
extra_info as ``megabytes_per_second`` and ``best_megabytes_per_second``;
``pytest benchmarks --benchmark-only -k stream`` prints both in the terminal summary
(benchmarks/conftest.py).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from protocol.crc import crc16_x25
from protocol.hdlc import FrameType, HdlcFrame
from protocol.hdlc_codec import encode_frame
from protocol.stream import FrameStreamDecoder

FRAME_SIZE_BYTES = 64
FRAME_COUNT = 4000
NOISE_SHARE_PERCENT = 10
SEED = 2024
LARGEST_CHUNK_BYTES = 512


def _make_stream() -> tuple[list[bytes], int, list[HdlcFrame]]:
    rng = random.Random(SEED)
    information_size = FRAME_SIZE_BYTES - len(encode_frame(
        HdlcFrame.make(FrameType.I, 1, 0x10, b"\x00"))) + 1
    frames = [HdlcFrame.make(FrameType.I, 1, 0x10, rng.randbytes(information_size),
                             send_sequence=index % 8, receive_sequence=(index // 8) % 8)
              for index in range(FRAME_COUNT)]
    noise_total = FRAME_COUNT * FRAME_SIZE_BYTES * NOISE_SHARE_PERCENT // (
        100 - NOISE_SHARE_PERCENT)
    pieces: list[bytes] = []
    for frame in frames:  # noise runs of 0..2x the average length, any byte value (7E too)
        pieces.append(rng.randbytes(rng.randint(0, 2 * noise_total // FRAME_COUNT)))
        pieces.append(encode_frame(frame))
    wire = b"".join(pieces)
    chunks: list[bytes] = []
    index = 0
    while index < len(wire):
        size = rng.randint(1, LARGEST_CHUNK_BYTES)
        chunks.append(wire[index:index + size])
        index += size
    return chunks, len(wire), frames


CHUNKS, STREAM_SIZE_BYTES, FRAMES = _make_stream()


def ours(chunks: list[bytes]) -> int:
    decoder = FrameStreamDecoder()
    decoded = 0
    for chunk in chunks:
        decoded += len(decoder.feed(chunk))
    return decoded


_HEADER = struct.Struct(">HBBB")
_GOOD_RESIDUE = 0x0F47


def floor(chunks: list[bytes]) -> int:
    """A plain resynchronising decoder: find the flag, read the length, check both CRCs."""
    pending = b""
    decoded = 0
    for chunk in chunks:
        buffer = pending + chunk if pending else chunk
        position = 0
        size = len(buffer)
        while True:
            flag = buffer.find(b"\x7e", position)
            if flag < 0 or flag + 10 > size:
                position = size if flag < 0 else flag
                break
            format_field, destination, source, control = _HEADER.unpack_from(buffer, flag + 1)
            stop = flag + (format_field & 0x7FF) + 2
            if format_field >> 12 != 0xA or stop - flag < 9:
                position = flag + 1
                continue
            if stop > size:
                if crc16_x25(buffer[flag + 1:flag + 8]) != _GOOD_RESIDUE:
                    position = flag + 1
                    continue
                position = flag
                break
            if (buffer[stop - 1] != 0x7E or crc16_x25(buffer[flag + 1:flag + 8]) != _GOOD_RESIDUE
                    or crc16_x25(buffer[flag + 1:stop - 1]) != _GOOD_RESIDUE):
                position = flag + 1
                continue
            _ = (destination >> 1, source >> 1, control, buffer[flag + 8:stop - 3])
            decoded += 1
            position = stop
        pending = buffer[position:]
    return decoded


DECODERS: dict[str, Callable[[list[bytes]], int]] = {"floor": floor, "ours": ours}


@pytest.mark.parametrize("decoder", list(DECODERS))
def test_stream_decoder_throughput(record_environment: BenchmarkFixture,
                                   record_throughput: Callable[[str, float], None],
                                   decoder: str) -> None:
    benchmark = record_environment
    benchmark.group = f"stream {FRAME_SIZE_BYTES} B frames, {NOISE_SHARE_PERCENT}% noise"
    benchmark.extra_info.update(decoder=decoder, stream_bytes=STREAM_SIZE_BYTES,
                                frames=FRAME_COUNT, chunks=len(CHUNKS))
    decoded = benchmark.pedantic(DECODERS[decoder], args=(CHUNKS,), rounds=15, iterations=1,
                                 warmup_rounds=1)
    assert decoded == FRAME_COUNT
    stats = getattr(benchmark, "stats", None)
    if stats is not None:  # None under --benchmark-disable
        megabytes_per_second = STREAM_SIZE_BYTES / stats.stats.mean / 1e6
        best_megabytes_per_second = STREAM_SIZE_BYTES / stats.stats.min / 1e6
        benchmark.extra_info["megabytes_per_second"] = round(megabytes_per_second, 1)
        benchmark.extra_info["best_megabytes_per_second"] = round(best_megabytes_per_second, 1)
        record_throughput(f"stream decoder, {decoder} (mean round)", megabytes_per_second)
        record_throughput(f"stream decoder, {decoder} (best round)", best_megabytes_per_second)


def test_ours_decodes_exactly_the_frames_sent() -> None:
    decoder = FrameStreamDecoder()
    decoded = [frame for chunk in CHUNKS for frame in decoder.feed(chunk)]
    assert decoded == FRAMES
    assert decoder.counters.garbage_bytes == STREAM_SIZE_BYTES - FRAME_COUNT * FRAME_SIZE_BYTES

