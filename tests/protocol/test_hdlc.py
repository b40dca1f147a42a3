"""HDLC frame type 3: real frames as bytes, fast path == Construct reference both ways, errors,
and interoperability with dlms-cosem (standard DLMS tooling)."""

from __future__ import annotations

import pytest
from dlms_cosem.hdlc import frames as dlms_frames
from dlms_cosem.hdlc.address import HdlcAddress as DlmsAddress
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.crc import crc16_x25
from protocol.errors import FrameError
from protocol.hdlc import (
    CONTROL_TABLE,
    MAX_ADDRESS_BY_SIZE,
    MAX_FRAME_LENGTH,
    MAX_FRAME_SIZE_BYTES,
    MIN_FRAME_SIZE_BYTES,
    FrameType,
    HdlcFrame,
    address_size_bytes,
    build_frame_with_construct,
    encode_address,
    parse_frame_with_construct,
)
from protocol.hdlc_codec import DEFAULT_CODEC, FrameVerdict, decode_frame, encode_frame

CLIENT = 0x10
SERVER = 0x01

# Real frames: SNRM / UA / I / RR / DISC between client 0x10 and server 1 (checked with
# dlms-cosem below).
SNRM = bytes.fromhex("7ea0070321930f017e")
I_FRAME_TO_CLIENT = bytes.fromhex("7ea00e032152e92fe6e600601d2fcd7e")
I_FRAME_TWO_BYTE_SERVER = bytes.fromhex("7ea00f02232152e483e6e600601d2fcd7e")

SMALLEST_ADDRESS_BY_SIZE = {1: 0, 2: MAX_ADDRESS_BY_SIZE[1] + 1, 4: MAX_ADDRESS_BY_SIZE[2] + 1}


def with_fcs(body: bytes) -> bytes:
    """Flags and a correct FCS around ``body`` (format field through information)."""
    return b"\x7e" + body + crc16_x25(body).to_bytes(2, "little") + b"\x7e"


def addresses(size: int | None = None) -> st.SearchStrategy[int]:
    sizes = st.just(size) if size else st.sampled_from(sorted(MAX_ADDRESS_BY_SIZE))
    return sizes.flatmap(lambda n: st.integers(SMALLEST_ADDRESS_BY_SIZE[n],
                                               MAX_ADDRESS_BY_SIZE[n]))


def max_information_bytes(destination: int, source: int) -> int:
    header = 2 + address_size_bytes(destination) + address_size_bytes(source) + 1
    return MAX_FRAME_LENGTH - header - 4


@st.composite
def frames(draw: st.DrawFn, frame_type: FrameType | None = None) -> HdlcFrame:
    kind = frame_type if frame_type is not None else draw(st.sampled_from(list(FrameType)))
    destination, source = draw(addresses()), draw(addresses())
    largest = max_information_bytes(destination, source)
    size = draw(st.one_of(st.integers(0, 80), st.integers(0, largest), st.just(largest)))
    return HdlcFrame.make(kind, destination, source, draw(st.binary(min_size=size, max_size=size)),
                          send_sequence=draw(st.integers(0, 7)),
                          receive_sequence=draw(st.integers(0, 7)),
                          poll_final=draw(st.booleans()), segmented=draw(st.booleans()))


# ------------------------------------------------------------------------------ vectors


def test_snrm_vector_decodes_and_encodes_byte_for_byte() -> None:
    frame = HdlcFrame.make(FrameType.SNRM, SERVER, CLIENT)
    assert decode_frame(SNRM) == frame
    assert encode_frame(frame) == SNRM == build_frame_with_construct(frame)


def test_information_frame_vector_carries_sequence_numbers_and_hcs() -> None:
    frame = decode_frame(I_FRAME_TO_CLIENT)
    assert frame == HdlcFrame.make(FrameType.I, SERVER, CLIENT, bytes.fromhex("e6e600601d"),
                                   send_sequence=1, receive_sequence=2)
    assert (frame.frame_type, frame.send_sequence, frame.receive_sequence,
            frame.poll_final) == (FrameType.I, 1, 2, True)
    assert encode_frame(frame) == I_FRAME_TO_CLIENT


def test_two_byte_server_address_is_upper_then_lower_seven_bits() -> None:
    frame = decode_frame(I_FRAME_TWO_BYTE_SERVER)
    assert frame.destination_address == (1 << 7) | 17
    assert encode_address(frame.destination_address) == bytes.fromhex("0223")
    assert encode_frame(frame) == I_FRAME_TWO_BYTE_SERVER


def test_control_table_classifies_every_frame_type_made() -> None:
    for frame_type in FrameType:
        control = HdlcFrame.make(frame_type, SERVER, CLIENT, receive_sequence=5).control
        assert CONTROL_TABLE[control].frame_type is frame_type


# ------------------------------------------------------------------------------ properties


@pytest.mark.parametrize("frame_type", list(FrameType), ids=lambda t: t.name)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_fast_path_matches_construct_both_ways_for_every_frame_type(
        frame_type: FrameType, data: st.DataObject) -> None:
    frame = data.draw(frames(frame_type))
    wire = encode_frame(frame)
    assert wire == build_frame_with_construct(frame)
    assert decode_frame(wire) == parse_frame_with_construct(wire) == frame
    assert DEFAULT_CODEC.decode_at(b"\x00" + wire + b"\x7e\xa0", 1) == (
        frame, FrameVerdict.DECODED, len(wire) + 1)


@pytest.mark.parametrize("address_size", sorted(MAX_ADDRESS_BY_SIZE))
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_round_trip_for_each_address_size(address_size: int, data: st.DataObject) -> None:
    destination = data.draw(addresses(address_size))
    source = data.draw(addresses(address_size))
    frame = HdlcFrame.make(FrameType.I, destination, source, data.draw(st.binary(max_size=64)),
                           segmented=data.draw(st.booleans()))
    wire = encode_frame(frame)
    assert len(wire) == MIN_FRAME_SIZE_BYTES - 2 + 2 * address_size + (
        len(frame.information) + 2 if frame.information else 0)
    assert decode_frame(wire) == parse_frame_with_construct(wire) == frame


@settings(max_examples=150, deadline=None)
@given(frame=frames(), index=st.integers(0, 10_000), bit=st.integers(0, 7))
def test_any_single_bit_error_is_rejected_by_both_codecs(frame: HdlcFrame, index: int,
                                                          bit: int) -> None:
    wire = bytearray(encode_frame(frame))
    wire[index % len(wire)] ^= 1 << bit
    with pytest.raises(FrameError):
        decode_frame(bytes(wire))
    with pytest.raises(FrameError):
        parse_frame_with_construct(bytes(wire))


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=40))
def test_fast_path_and_construct_agree_on_arbitrary_bytes(tail: bytes) -> None:
    for wire in (b"\x7e" + tail, b"\x7e\xa0" + tail, SNRM[:3] + tail, with_fcs(b"\xa0" + tail)):
        try:
            expected: HdlcFrame | None = parse_frame_with_construct(wire)
        except FrameError:
            expected = None
        try:
            got: HdlcFrame | None = decode_frame(wire)
        except FrameError:
            got = None
        assert got == expected


def test_largest_information_field_fits_and_one_more_byte_is_refused() -> None:
    largest = max_information_bytes(SERVER, CLIENT)
    frame = HdlcFrame.make(FrameType.I, SERVER, CLIENT, bytes(largest))
    wire = encode_frame(frame)
    assert len(wire) == MAX_FRAME_SIZE_BYTES
    assert decode_frame(wire) == frame
    with pytest.raises(FrameError, match="cannot encode"):
        encode_frame(HdlcFrame.make(FrameType.I, SERVER, CLIENT, bytes(largest + 1)))


def test_address_beyond_four_bytes_cannot_be_encoded() -> None:
    with pytest.raises(FrameError, match="outside"):
        encode_frame(HdlcFrame.make(FrameType.UI, MAX_ADDRESS_BY_SIZE[4] + 1, CLIENT))


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(("wire", "message"), [
    pytest.param(SNRM[:-1], "at least", id="too-short"),
    pytest.param(SNRM[:-1] + b"\x00", "closing 7E", id="no-closing-flag"),
    pytest.param(b"\x00" + SNRM[1:], "at least", id="no-opening-flag"),
    pytest.param(SNRM[:-3] + b"\x0f\x02\x7e", "FCS", id="bad-fcs"),
    pytest.param(SNRM + b"\x7e", "length field says", id="longer-than-length"),
    pytest.param(with_fcs(bytes.fromhex("b007032193")), "format type 3", id="format-type-b"),
    pytest.param(with_fcs(bytes.fromhex("a005032193")), "length field", id="length-below-min"),
    pytest.param(with_fcs(bytes.fromhex("a00803219300")), "length field", id="one-byte-gap"),
    pytest.param(with_fcs(bytes.fromhex("a00902020321930000")), "format type 3",
                 id="three-byte-address"),
    pytest.param(with_fcs(bytes.fromhex("a00c020202022193")), "format type 3",
                 id="five-byte-address"),
])
def test_malformed_frame_is_refused_with_reason(wire: bytes, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        decode_frame(wire)
    with pytest.raises(FrameError):
        parse_frame_with_construct(wire)


def test_bad_hcs_is_refused_even_with_a_correct_fcs() -> None:
    body = bytearray(I_FRAME_TO_CLIENT[1:-3])
    body[5] ^= 0xFF  # first HCS byte
    with pytest.raises(FrameError, match="HCS"):
        decode_frame(with_fcs(bytes(body)))


def test_cached_header_does_not_excuse_a_bad_fcs_or_missing_flag() -> None:
    decode_frame(I_FRAME_TO_CLIENT)  # header and HCS now cached
    corrupted = bytearray(I_FRAME_TO_CLIENT)
    corrupted[9] ^= 0x01  # an information byte
    with pytest.raises(FrameError, match="FCS"):
        decode_frame(bytes(corrupted))
    assert DEFAULT_CODEC.decode_at(I_FRAME_TO_CLIENT[:-1] + b"\x00", 0) == (
        None, FrameVerdict.TRUNCATED, 0)
    assert DEFAULT_CODEC.decode_at(I_FRAME_TO_CLIENT[:-2], 0) == (None, FrameVerdict.NEED_MORE, 0)


def test_decode_frame_at_rejects_a_bad_hcs_before_the_frame_ends() -> None:
    claims_long_frame = bytes.fromhex("7ea7ff03215200007a")
    assert DEFAULT_CODEC.decode_at(claims_long_frame, 0) == (None, FrameVerdict.BAD_HCS, 0)


# ------------------------------------------------------------------------------ dlms-cosem


def dlms_server(address: int) -> DlmsAddress:
    return DlmsAddress(address, None, "server")


def dlms_client(address: int) -> DlmsAddress:
    return DlmsAddress(address, None, "client")


def test_dlms_cosem_frames_match_our_vectors() -> None:
    snrm = dlms_frames.SetNormalResponseModeFrame(dlms_server(SERVER), dlms_client(CLIENT))
    assert snrm.to_bytes() == SNRM
    information = dlms_frames.InformationFrame(
        DlmsAddress(SERVER, 17, "server"), dlms_client(CLIENT), bytes.fromhex("e6e600601d"),
        send_sequence_number=1, receive_sequence_number=2)
    assert information.to_bytes() == I_FRAME_TWO_BYTE_SERVER


@settings(max_examples=60, deadline=None)
@given(client=st.integers(1, 0x7F), server=st.integers(1, 0x7F),
       payload=st.binary(min_size=1, max_size=200), send=st.integers(0, 7),
       receive=st.integers(0, 7), segmented=st.booleans())
def test_dlms_cosem_parses_our_information_frames(client: int, server: int, payload: bytes,
                                                  send: int, receive: int,
                                                  segmented: bool) -> None:
    wire = encode_frame(HdlcFrame.make(FrameType.I, client, server, payload, send_sequence=send,
                                       receive_sequence=receive, segmented=segmented))
    parsed = dlms_frames.InformationFrame.from_bytes(wire)
    assert parsed.destination_address.logical_address == client
    assert parsed.source_address.logical_address == server
    assert (parsed.payload, parsed.send_sequence_number, parsed.receive_sequence_number,
            parsed.segmented, parsed.final) == (payload, send, receive, segmented, True)


@settings(max_examples=60, deadline=None)
@given(client=st.integers(1, 0x7F), server=st.integers(1, 0x7F),
       payload=st.binary(min_size=1, max_size=200), send=st.integers(0, 7),
       receive=st.integers(0, 7))
def test_we_decode_dlms_cosem_information_frames(client: int, server: int, payload: bytes,
                                                 send: int, receive: int) -> None:
    wire = dlms_frames.InformationFrame(dlms_server(server), dlms_client(client), payload,
                                        send_sequence_number=send,
                                        receive_sequence_number=receive).to_bytes()
    assert decode_frame(wire) == HdlcFrame.make(FrameType.I, server, client, payload,
                                                send_sequence=send, receive_sequence=receive)


def test_dlms_cosem_parses_our_ua_rr_disc_and_ui_frames() -> None:
    ua = encode_frame(HdlcFrame.make(FrameType.UA, CLIENT, SERVER, bytes.fromhex("818012")))
    assert dlms_frames.UnNumberedAcknowledgmentFrame.from_bytes(ua).payload == \
        bytes.fromhex("818012")
    rr = encode_frame(HdlcFrame.make(FrameType.RR, CLIENT, SERVER, receive_sequence=6))
    assert dlms_frames.ReceiveReadyFrame.from_bytes(rr).receive_sequence_number == 6
    disc = encode_frame(HdlcFrame.make(FrameType.DISC, SERVER, CLIENT))
    assert dlms_frames.DisconnectFrame.from_bytes(disc).destination_address.logical_address \
        == SERVER
    ui = encode_frame(HdlcFrame.make(FrameType.UI, CLIENT, SERVER, b"\x01\x02"))
    assert dlms_frames.UnnumberedInformationFrame.from_bytes(ui).payload == b"\x01\x02"


def test_we_decode_dlms_cosem_supervisory_and_unnumbered_frames() -> None:
    server, client = dlms_server(SERVER), dlms_client(CLIENT)
    for dlms_frame, expected in [
        (dlms_frames.DisconnectFrame(server, client),
         HdlcFrame.make(FrameType.DISC, SERVER, CLIENT)),
        (dlms_frames.ReceiveReadyFrame(server, client, receive_sequence_number=3),
         HdlcFrame.make(FrameType.RR, SERVER, CLIENT, receive_sequence=3)),
        (dlms_frames.UnNumberedAcknowledgmentFrame(client, server, b"\x81\x80"),
         HdlcFrame.make(FrameType.UA, CLIENT, SERVER, b"\x81\x80")),
        (dlms_frames.UnnumberedInformationFrame(server, client, b"\xaa"),
         HdlcFrame.make(FrameType.UI, SERVER, CLIENT, b"\xaa")),
    ]:
        assert decode_frame(dlms_frame.to_bytes()) == expected
