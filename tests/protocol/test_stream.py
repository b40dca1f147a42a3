"""FrameStreamDecoder: frames out of any chunking, resynchronisation after every kind of damage,
bounded memory, and discard counters that say what was thrown away and why."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.crc import crc16_x25
from protocol.hdlc import MAX_FRAME_SIZE_BYTES, FrameType, HdlcFrame
from protocol.hdlc_codec import FrameCodec, encode_frame
from protocol.stream import FrameStreamDecoder, StreamCounters

CLIENT, SERVER = 0x10, 0x01

SNRM = bytes.fromhex("7ea0070321930f017e")
GOOD_FRAMES = [
    HdlcFrame.make(FrameType.SNRM, SERVER, CLIENT),
    HdlcFrame.make(FrameType.UA, CLIENT, SERVER, bytes.fromhex("818012050180060180")),
    HdlcFrame.make(FrameType.I, SERVER, CLIENT, bytes(range(50)), send_sequence=1),
    HdlcFrame.make(FrameType.RR, CLIENT, SERVER, receive_sequence=2),
    HdlcFrame.make(FrameType.I, 0x1234, CLIENT, b"\x7e" * 20, segmented=True),
    HdlcFrame.make(FrameType.I, 0x0ABCDEF, 0x3FFF, bytes(300)),
    HdlcFrame.make(FrameType.DISC, SERVER, CLIENT),
]
GOOD_WIRE = [encode_frame(frame) for frame in GOOD_FRAMES]
GARBAGE = bytes.fromhex("00ff11a0a8e6e60013")
GARBAGE_WITH_FLAGS = bytes.fromhex("7e7ea07e00a8ff7ea7ff0321")


def with_fcs(body: bytes) -> bytes:
    return b"\x7e" + body + crc16_x25(body).to_bytes(2, "little") + b"\x7e"


def information_frame(payload: bytes) -> bytes:
    return encode_frame(HdlcFrame.make(FrameType.I, SERVER, CLIENT, payload))


# Damaged frames, each a candidate the decoder must reject for one reason
BAD_FCS = bytearray(information_frame(bytes(40)))
BAD_FCS[20] ^= 0x40
BAD_FCS = bytes(BAD_FCS)
_body = bytearray(information_frame(bytes(40))[1:-3])
_body[5] ^= 0x01  # HCS
BAD_HCS = with_fcs(bytes(_body))
TRUNCATED = information_frame(bytes(60))[:30]
BAD_LENGTH = with_fcs(bytes.fromhex("a005032193"))
BAD_FORMAT = with_fcs(bytes.fromhex("b007032193"))


# ------------------------------------------------------------------------------ arrival


def whole(data: bytes) -> Iterator[bytes]:
    yield data


def one_byte_at_a_time(data: bytes) -> Iterator[bytes]:
    for index in range(len(data)):
        yield data[index:index + 1]


def random_chunks(data: bytes, seed: int = 7, largest: int = 40) -> Iterator[bytes]:
    rng = random.Random(seed)
    index = 0
    while index < len(data):
        size = rng.randint(1, largest)
        yield data[index:index + size]
        index += size


ARRIVALS: dict[str, Callable[[bytes], Iterator[bytes]]] = {
    "whole": whole,
    "one-byte-at-a-time": one_byte_at_a_time,
    "random-chunks": random_chunks,
    "random-chunks-large": lambda data: random_chunks(data, seed=11, largest=512),
}


def decode_all(chunks: Iterator[bytes], decoder: FrameStreamDecoder | None = None
               ) -> tuple[list[HdlcFrame], FrameStreamDecoder]:
    decoder = decoder or FrameStreamDecoder()
    frames: list[HdlcFrame] = []
    for chunk in chunks:
        frames.extend(decoder.feed(chunk))
        assert decoder.pending_bytes < MAX_FRAME_SIZE_BYTES
    return frames, decoder


def placements(garbage: bytes) -> dict[str, bytes]:
    return {
        "before": garbage + b"".join(GOOD_WIRE),
        "inside": garbage.join(GOOD_WIRE),
        "after": b"".join(GOOD_WIRE) + garbage,
        "everywhere": garbage + garbage.join(GOOD_WIRE) + garbage,
    }


# ------------------------------------------------------------------------------ recovery


@pytest.mark.parametrize("arrival", list(ARRIVALS))
def test_back_to_back_frames_are_all_decoded_however_the_bytes_arrive(arrival: str) -> None:
    frames, decoder = decode_all(ARRIVALS[arrival](b"".join(GOOD_WIRE)))
    assert frames == GOOD_FRAMES
    assert decoder.counters == StreamCounters(frames_decoded=len(GOOD_FRAMES))
    assert decoder.pending_bytes == 1  # the last closing flag, which may open a next frame


def test_frames_survive_a_split_in_two_at_every_offset() -> None:
    wire = b"".join(GOOD_WIRE[:4]) + GARBAGE_WITH_FLAGS + GOOD_WIRE[4]
    for offset in range(len(wire) + 1):
        frames, decoder = decode_all(iter((wire[:offset], wire[offset:])))
        assert frames == GOOD_FRAMES[:5], offset
        assert decoder.counters.garbage_bytes == len(GARBAGE_WITH_FLAGS), offset


@pytest.mark.parametrize("arrival", list(ARRIVALS))
@pytest.mark.parametrize("garbage", [GARBAGE, GARBAGE_WITH_FLAGS],
                         ids=["garbage", "garbage-with-7e"])
@pytest.mark.parametrize("placement", ["before", "inside", "after", "everywhere"])
def test_garbage_anywhere_costs_no_frame_and_is_counted(arrival: str, garbage: bytes,
                                                        placement: str) -> None:
    wire = placements(garbage)[placement]
    frames, decoder = decode_all(ARRIVALS[arrival](wire))
    assert frames == GOOD_FRAMES
    garbage_sent = len(wire) - sum(len(w) for w in GOOD_WIRE)
    # garbage at the very end may still be held, as the prefix of a possible frame
    assert decoder.counters.garbage_bytes + decoder.pending_bytes - 1 <= garbage_sent
    assert decoder.counters.garbage_bytes >= garbage_sent - decoder.pending_bytes


@pytest.mark.parametrize("arrival", list(ARRIVALS))
def test_each_kind_of_damage_is_counted_and_the_next_frame_kept(arrival: str) -> None:
    good = GOOD_WIRE
    wire = b"".join([good[0], b"\x00\x01", BAD_FCS, good[1], BAD_HCS, good[2], BAD_LENGTH,
                     b"\x7e\x7e", BAD_FORMAT, good[4], TRUNCATED, good[3], good[5]])
    frames, decoder = decode_all(ARRIVALS[arrival](wire))
    assert frames == [GOOD_FRAMES[i] for i in (0, 1, 2, 4, 3, 5)]
    assert decoder.counters == StreamCounters(
        frames_decoded=6,
        garbage_bytes=2 + len(BAD_FCS) + len(BAD_HCS) + len(TRUNCATED) + len(BAD_LENGTH) + 2
        + len(BAD_FORMAT),
        bad_format=1, bad_length=1, bad_hcs=1, bad_fcs=1, truncated=1)
    assert decoder.counters.candidates_rejected == 5


# ------------------------------------------------------------------------------ counters
# Which counter counts what: each damaged candidate alone between two good frames, through a
# codec that has never seen its header (every field checked) and through one that has (the
# cached fast path), with every expected counter written out.

SMALLEST_I_FRAME = bytes.fromhex("7ea00a032110133c00ccc67e")  # length 10: HCS + 1 byte
I_FRAME_4 = bytes.fromhex("7ea00d032110326b000000008ff77e")  # 4 bytes of information
I_FRAME_4_TWO_BYTE_ADDRESS = bytes.fromhex("7ea00e48692110a356000000008ff77e")

# name -> (candidate, the counter it must land in, garbage bytes)
DAMAGE = {
    "bad-fcs-information-byte": ("7ea00d032110326b000001008ff77e", "bad_fcs", 15),
    "bad-fcs-fcs-byte": ("7ea00d032110326b000000008ff67e", "bad_fcs", 15),
    "bad-fcs-no-information": ("7ea0070321930f007e", "bad_fcs", 9),
    "bad-fcs-two-byte-address": ("7ea00e48692110a356000000018ff77e", "bad_fcs", 16),
    "bad-hcs": ("7ea00d032110336b000000008ff77e", "bad_hcs", 15),
    "bad-hcs-two-byte-address": ("7ea00e48692110a357000000008ff77e", "bad_hcs", 16),
    "no-closing-flag": ("7ea00d032110326b000000008ff700", "truncated", 15),
    "no-closing-flag-no-information": ("7ea0070321930f0100", "truncated", 9),
    "length-6-below-the-smallest-7": ("7ea006032193b41d7e", "bad_length", 9),
    "one-byte-after-the-header": ("7ea0080321930072627e", "bad_length", 10),
    "two-bytes-after-the-header": ("7ea0090321930000a4a47e", "bad_length", 11),
    "addresses-run-into-the-fcs": ("7ea007020321937a0d7e", "bad_length", 10),
    "format-type-b": ("7eb0070321934fb57e", "bad_format", 9),
    "three-byte-address": ("7ea00902020321930000def97e", "bad_format", 13),
    "five-byte-address": ("7ea00c02020202219312417e", "bad_format", 12),
}
REJECT_COUNTERS = ("bad_format", "bad_length", "bad_hcs", "bad_fcs", "truncated")


def codec_in_state(state: str) -> FrameCodec:
    """A fresh codec; "warm": after decoding good frames with the damaged ones' headers."""
    codec = FrameCodec()
    if state == "warm":
        warm_up = FrameStreamDecoder(codec)
        assert len(warm_up.feed(SNRM + I_FRAME_4 + I_FRAME_4_TWO_BYTE_ADDRESS)) == 3
    return codec


@pytest.mark.parametrize("codec_state", ["cold", "warm"])
@pytest.mark.parametrize("name", list(DAMAGE))
def test_each_damaged_candidate_lands_in_its_own_counter(name: str, codec_state: str) -> None:
    candidate_hex, counter, garbage_bytes = DAMAGE[name]
    decoder = FrameStreamDecoder(codec_in_state(codec_state))
    frames = decoder.feed(SNRM + bytes.fromhex(candidate_hex) + SNRM)
    assert frames == [GOOD_FRAMES[0], GOOD_FRAMES[0]]
    expected = dict.fromkeys(REJECT_COUNTERS, 0)
    expected[counter] = 1
    assert decoder.counters == StreamCounters(frames_decoded=2, garbage_bytes=garbage_bytes,
                                              **expected)
    assert decoder.counters.candidates_rejected == 1


@pytest.mark.parametrize("codec_state", ["cold", "warm"])
def test_a_bad_hcs_and_a_bad_fcs_are_told_apart(codec_state: str) -> None:
    decoder = FrameStreamDecoder(codec_in_state(codec_state))
    bad_hcs = bytes.fromhex("7ea00d032110336b000000008ff77e")
    bad_fcs = bytes.fromhex("7ea00d032110326b000001008ff77e")
    decoder.feed(bad_hcs + bad_hcs + bad_fcs + SNRM)
    assert decoder.counters == StreamCounters(frames_decoded=1, garbage_bytes=45, bad_hcs=2,
                                              bad_fcs=1)


@pytest.mark.parametrize("codec_state", ["cold", "warm"])
def test_the_boundaries_of_the_length_field_decode(codec_state: str) -> None:
    # length 7 (the smallest) and HCS + 1 byte of information: the first lengths that fit
    decoder = FrameStreamDecoder(codec_in_state(codec_state))
    frames = decoder.feed(SNRM + SMALLEST_I_FRAME)
    assert frames == [GOOD_FRAMES[0], HdlcFrame.make(FrameType.I, SERVER, CLIENT, b"\x00")]
    assert decoder.counters == StreamCounters(frames_decoded=2)


# A frame's closing flag followed by a byte that can start a format field is tried as the
# opening flag of a next frame. The flag belongs to the frame just decoded: it is never
# garbage (every byte after it up to the next frame is), and a candidate it opens is counted
# only when it is rejected for something other than its format (name -> (candidate without
# its opening flag, counter or None, garbage bytes)).
SHARED_FLAG_DAMAGE = {
    "bad-fcs": ("a00d032110326b000001008ff77e", "bad_fcs", 14),
    "bad-hcs": ("a00d032110336b000000008ff77e", "bad_hcs", 14),
    "no-closing-flag": ("a00d032110326b000000008ff700", "truncated", 14),
    "one-byte-after-the-header": ("a0080321930072627e", "bad_length", 9),
    "three-byte-address": ("a00902020321930000def97e", None, 12),
}


@pytest.mark.parametrize("codec_state", ["cold", "warm"])
@pytest.mark.parametrize("name", list(SHARED_FLAG_DAMAGE))
def test_a_candidate_opened_by_a_shared_flag_is_counted_unless_its_format_is_bad(
        name: str, codec_state: str) -> None:
    after_flag_hex, counter, garbage_bytes = SHARED_FLAG_DAMAGE[name]
    decoder = FrameStreamDecoder(codec_in_state(codec_state))
    frames = decoder.feed(SNRM + bytes.fromhex(after_flag_hex) + SNRM)
    assert frames == [GOOD_FRAMES[0], GOOD_FRAMES[0]]
    expected = dict.fromkeys(REJECT_COUNTERS, 0)
    if counter is not None:
        expected[counter] = 1
    assert decoder.counters == StreamCounters(frames_decoded=2, garbage_bytes=garbage_bytes,
                                              **expected)


# SNRM's closing flag, one byte A0, then a whole SNRM: the closing flag opens the candidate
# 7E A0 7E A0 07 03 21 93 0F ..., whose format field is valid (type A, length 126) and whose HCS
# is not, so it is one bad HCS; the A0 is the only garbage byte. However the bytes are split
# (the kept closing flag alone or with the A0, before a chunk that starts with a flag or not),
# the held flag must be tried, never dropped.
SHARED_FLAG_BAD_HCS_WIRE = SNRM + b"\xa0" + SNRM
SHARED_FLAG_BAD_HCS_COUNTERS = StreamCounters(frames_decoded=2, garbage_bytes=1, bad_hcs=1)


@pytest.mark.parametrize("arrival", list(ARRIVALS))
def test_a_shared_flag_candidate_is_counted_the_same_however_the_bytes_arrive(
        arrival: str) -> None:
    frames, decoder = decode_all(ARRIVALS[arrival](SHARED_FLAG_BAD_HCS_WIRE))
    assert frames == [GOOD_FRAMES[0], GOOD_FRAMES[0]]
    assert decoder.counters == SHARED_FLAG_BAD_HCS_COUNTERS


def test_a_shared_flag_candidate_is_counted_the_same_split_in_two_at_every_offset() -> None:
    wire = SHARED_FLAG_BAD_HCS_WIRE
    for offset in range(len(wire) + 1):
        frames, decoder = decode_all(iter((wire[:offset], wire[offset:])))
        assert frames == [GOOD_FRAMES[0], GOOD_FRAMES[0]], offset
        assert decoder.counters == SHARED_FLAG_BAD_HCS_COUNTERS, offset
        assert decoder.pending_bytes == 1, offset  # the second SNRM's closing flag


def test_the_same_bad_format_with_its_own_flag_is_counted() -> None:
    decoder = FrameStreamDecoder()
    decoder.feed(SNRM + bytes.fromhex("7ea00902020321930000def97e") + SNRM)
    assert decoder.counters == StreamCounters(frames_decoded=2, garbage_bytes=13, bad_format=1)


def test_a_closing_flag_before_noise_is_not_tried_as_an_opening_flag() -> None:
    decoder = FrameStreamDecoder()
    decoder.feed(SNRM + bytes.fromhex("00a00d032110336b000000008ff77e") + SNRM)
    # the noise byte keeps SNRM's flag from opening the bad-HCS bytes: no candidate at all
    assert decoder.counters == StreamCounters(frames_decoded=2, garbage_bytes=15)


def test_a_flag_inside_garbage_does_not_swallow_the_following_frame() -> None:
    # garbage "7E A0" makes the frame's own flag look like the second format byte
    frames, decoder = decode_all(iter([b"\x7e\xa0" + SNRM]))
    assert frames == [GOOD_FRAMES[0]]
    assert decoder.counters.garbage_bytes == 2


def test_a_truncated_frame_holds_the_next_frame_only_until_its_length_has_arrived() -> None:
    decoder = FrameStreamDecoder()
    cut = information_frame(bytes(200))[:20]  # correct HCS: a real frame, cut short
    assert decoder.feed(cut + SNRM) == []  # still possibly the 200-byte frame's middle
    frames = decoder.feed(bytes(200))
    assert frames == [GOOD_FRAMES[0]]
    assert decoder.counters.truncated == 1


def test_frames_sharing_one_flag_are_all_decoded() -> None:
    wire = GOOD_WIRE[0] + GOOD_WIRE[1][1:] + GOOD_WIRE[2][1:] + GOOD_WIRE[3][1:]
    for arrival in ARRIVALS.values():
        frames, decoder = decode_all(arrival(wire))
        assert frames == GOOD_FRAMES[:4]
        assert decoder.counters.candidates_rejected == decoder.counters.garbage_bytes == 0


def test_surplus_fill_flags_are_garbage_but_not_bad_frames() -> None:
    # three flags of fill before the first frame's own, two between the frames
    frames, decoder = decode_all(iter([b"\x7e\x7e\x7e" + SNRM + b"\x7e\x7e" + SNRM]))
    assert frames == [GOOD_FRAMES[0]] * 2
    assert decoder.counters == StreamCounters(frames_decoded=2, garbage_bytes=5)


def test_bytearray_and_memoryview_chunks_are_accepted() -> None:
    decoder = FrameStreamDecoder()
    assert decoder.feed(bytearray(SNRM[:4])) == []
    assert decoder.feed(memoryview(SNRM[4:])) == [GOOD_FRAMES[0]]


# ------------------------------------------------------------------------------ memory


def test_a_new_decoder_holds_nothing_and_counts_nothing() -> None:
    decoder = FrameStreamDecoder()
    assert decoder.pending_bytes == 0
    assert decoder.counters == StreamCounters(frames_decoded=0, garbage_bytes=0, bad_format=0,
                                              bad_length=0, bad_hcs=0, bad_fcs=0, truncated=0)
    assert decoder.feed(b"") == []
    assert decoder.pending_bytes == 0


def test_a_frame_claiming_the_largest_length_is_held_below_one_maximum_frame() -> None:
    largest_information = MAX_FRAME_SIZE_BYTES - len(information_frame(b"\x00")) + 1
    cut = information_frame(bytes(largest_information))[:40]
    decoder = FrameStreamDecoder()
    decoder.feed(cut)
    largest = 0
    for _ in range(MAX_FRAME_SIZE_BYTES):
        decoder.feed(b"\x00")
        largest = max(largest, decoder.pending_bytes)
    assert largest == MAX_FRAME_SIZE_BYTES - 1
    assert decoder.pending_bytes == 0
    assert decoder.counters.truncated == 1


def test_megabytes_of_noise_in_64_kib_chunks_never_grow_the_buffer() -> None:
    rng = random.Random(3)
    decoder = FrameStreamDecoder()
    for _ in range(16):
        assert decoder.feed(rng.randbytes(64 * 1024)) == []
        assert decoder.pending_bytes < MAX_FRAME_SIZE_BYTES
    assert decoder.counters.garbage_bytes + decoder.pending_bytes == 16 * 64 * 1024


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=3000), seed=st.integers(0, 2**16), largest=st.integers(1, 700))
def test_arbitrary_bytes_never_raise_and_memory_stays_bounded(data: bytes, seed: int,
                                                             largest: int) -> None:
    frames, decoder = decode_all(random_chunks(data, seed, largest))
    assert decoder.counters.frames_decoded == len(frames)
    assert decoder.counters.garbage_bytes <= len(data)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(range(len(GOOD_FRAMES))),
                          st.binary(max_size=40)), max_size=12),
       st.integers(0, 2**16), st.integers(1, 300))
def test_frames_interleaved_with_noise_are_all_recovered(
        pieces: list[tuple[int, bytes]], seed: int, largest: int) -> None:
    wire = b"".join(noise + GOOD_WIRE[index] for index, noise in pieces)
    trailer = bytes(MAX_FRAME_SIZE_BYTES)  # completes (and so rules out) any held candidate
    frames, decoder = decode_all(random_chunks(wire + trailer, seed, largest))
    assert frames == [GOOD_FRAMES[index] for index, _ in pieces]
    assert decoder.pending_bytes == 0
    noise_bytes = sum(len(noise) for _, noise in pieces)
    assert decoder.counters.garbage_bytes == noise_bytes + len(trailer)


def test_a_lone_flag_after_a_frame_is_held_as_one_byte_however_it_arrives() -> None:
    in_one_chunk = FrameStreamDecoder()
    assert in_one_chunk.feed(SNRM + b"\x7e") == [HdlcFrame(1, 16, 0x93)]
    in_two_chunks = FrameStreamDecoder()
    assert in_two_chunks.feed(SNRM) == [HdlcFrame(1, 16, 0x93)]
    assert in_two_chunks.feed(b"\x7e") == []
    assert in_one_chunk.pending_bytes == in_two_chunks.pending_bytes == 1
    # and the next frame, behind that flag, decodes from both
    for decoder in (in_one_chunk, in_two_chunks):
        assert decoder.feed(SNRM[1:]) == [HdlcFrame(1, 16, 0x93)]
        assert decoder.counters == StreamCounters(frames_decoded=2)
