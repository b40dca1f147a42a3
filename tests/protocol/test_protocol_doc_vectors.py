"""docs/protocol.md is a contract: its hex examples are test vectors, its tables match the code.

Every line of every ```hex block in the doc is one whole frame, flag to flag, then ``# label``.
These tests prove each frame is valid (the fast decoder and the Construct reference agree, both
CRCs are good), that the APDUs inside say what the doc says, that the CRC worked example and
the address table are right, that every Command, Status and enum value is listed with its
code, and that a :class:`protocol.link.LinkStation` produces exactly the documented link
frames. Nothing here reads a clock or does I/O beyond reading two files of the repository.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import re
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol import apdu as apdu_module
from protocol.apdu import (
    REQUEST_BODY_TYPES,
    RESPONSE_BODY_TYPES,
    AdjustMeterBalanceRequest,
    AdjustMeterBalanceResponse,
    ApduBody,
    Balances,
    Command,
    DeviceType,
    FirmwareBeginRequest,
    FirmwareBlockRequest,
    FirmwareBlockResponse,
    Request,
    Response,
    Status,
    decode_apdu,
    encode_response,
)
from protocol.crc import CRC16_X25_CHECK_VALUE, crc16_x25
from protocol.errors import FrameError
from protocol.hdlc import (
    GOOD_FCS_RESIDUE,
    FrameType,
    HdlcFrame,
    build_frame_with_construct,
    encode_address,
    parse_frame_with_construct,
)
from protocol.hdlc_codec import decode_frame, encode_frame

REPO_ROOT = Path(__file__).resolve().parents[2]
DOC_PATH = REPO_ROOT / "docs" / "protocol.md"
ESME_IMAGE_PATH = REPO_ROOT / "firmware_images" / "esme_liberty100_1.1.0.sefw"
DOC_TEXT = DOC_PATH.read_text(encoding="utf-8")

ADAPTER = 0x10
ESME = 16
MANAGEMENT = 1
LLC_CLIENT_TO_SERVER = bytes.fromhex("E6E600")
LLC_SERVER_TO_CLIENT = bytes.fromhex("E6E700")

_HEX_BLOCK = re.compile(r"^```hex\n(.*?)^```", re.MULTILINE | re.DOTALL)


def extract_hex_frames(text: str) -> list[tuple[str, bytes]]:
    """``(label, frame bytes)`` for every line of every ```hex block, in document order."""
    frames = []
    for block in _HEX_BLOCK.findall(text):
        for line in block.splitlines():
            if not line.strip():
                continue
            hex_part, _, label = line.partition("#")
            frames.append((label.strip(), bytes.fromhex(hex_part)))
    return frames


DOC_FRAMES = extract_hex_frames(DOC_TEXT)
FRAMES: dict[str, bytes] = dict(DOC_FRAMES)

#: The session to the ESME (sections 11.1-11.5), in the order the frames go on the wire.
ESME_SESSION = [
    "snrm", "ua",
    "read_meter_balance_request", "read_meter_balance_response",
    "adjust_meter_balance_request", "adjust_meter_balance_response",
    "firmware_begin_request", "firmware_begin_response",
    "firmware_block_request_segment_1", "rr_after_segment_1",
    "firmware_block_request_segment_2", "firmware_block_response",
    "adjust_refused_request", "adjust_refused_response",
    "disc", "ua_disc",
]
#: The two connections to the management device (section 11.6): one frame, then segmented.
DIRECTORY_SESSION = [
    "snrm_defaults", "ua_defaults",
    "read_device_directory_request", "read_device_directory_response",
    "rr_after_complete_response", "rr_nothing_more_to_send",
]
DIRECTORY_SEGMENTED_SESSION = [
    "snrm_max_info_64", "ua_max_info_64",
    "read_device_directory_request_max_info_64", "read_device_directory_response_segment_1",
    "rr_for_next_segment", "read_device_directory_response_segment_2",
]
#: The error frames (section 11.7).
ERROR_EXAMPLES = [
    "i_frame_while_disconnected", "dm_not_connected",
    "i_frame_with_wrong_receive_sequence", "frmr_invalid_receive_sequence",
]


def frame(label: str) -> HdlcFrame:
    return decode_frame(FRAMES[label])


def apdu_of(*labels: str) -> Request | Response:
    """The APDU carried by the I-frames ``labels`` (one, or the segments in order)."""
    frames = [frame(label) for label in labels]
    assert [f.segmented for f in frames] == [True] * (len(frames) - 1) + [False]
    data = b"".join(f.information for f in frames)
    # the direction comes from the label: the ESME's server address and the adapter's client
    # address are both 16, so the addresses cannot tell it
    llc = LLC_SERVER_TO_CLIENT if "response" in labels[0] else LLC_CLIENT_TO_SERVER
    assert data[:3] == llc
    return decode_apdu(data[3:])


# --------------------------------------------------------------------------------------------
# The frames are valid
# --------------------------------------------------------------------------------------------


def test_doc_holds_every_worked_example_once_and_nothing_else() -> None:
    labels = [label for label, _ in DOC_FRAMES]
    assert len(labels) == len(set(labels)), "a label is used twice"
    assert sorted(labels) == sorted(ESME_SESSION + DIRECTORY_SESSION
                                    + DIRECTORY_SEGMENTED_SESSION + ERROR_EXAMPLES)


@pytest.mark.parametrize(("label", "data"), DOC_FRAMES, ids=[label for label, _ in DOC_FRAMES])
def test_doc_frame_decodes_the_same_through_fast_path_and_construct_reference(
        label: str, data: bytes) -> None:
    fast = decode_frame(data)
    assert parse_frame_with_construct(data) == fast
    assert encode_frame(fast) == data
    assert build_frame_with_construct(fast) == data


@pytest.mark.parametrize(("label", "data"), DOC_FRAMES, ids=[label for label, _ in DOC_FRAMES])
def test_doc_frame_crcs_leave_the_good_residue(label: str, data: bytes) -> None:
    assert crc16_x25(data[1:-1]) == GOOD_FCS_RESIDUE  # FCS over format .. information
    decoded = decode_frame(data)
    header_size = len(data) - 1 - 2 - (len(decoded.information) + 2 if decoded.information else 0)
    if decoded.information:  # HCS over format .. control, present only with information
        assert crc16_x25(data[1:header_size + 2]) == GOOD_FCS_RESIDUE
    assert (((data[1] & 0x07) << 8) | data[2]) == len(data) - 2  # length excludes both flags


@pytest.mark.parametrize(("label", "data"), DOC_FRAMES, ids=[label for label, _ in DOC_FRAMES])
def test_doc_frame_with_a_flipped_fcs_bit_is_refused(label: str, data: bytes) -> None:
    corrupted = bytearray(data)
    corrupted[-2] ^= 0x01
    with pytest.raises(FrameError):
        decode_frame(bytes(corrupted))


def test_doc_frames_carry_the_documented_types_sequence_numbers_and_segmentation() -> None:
    expected = {  # label: (type, N(S), N(R), P/F, segmented, destination, source)
        "snrm": (FrameType.SNRM, 0, 0, True, False, ESME, ADAPTER),
        "ua": (FrameType.UA, 0, 0, True, False, ADAPTER, ESME),
        "read_meter_balance_request": (FrameType.I, 0, 0, True, False, ESME, ADAPTER),
        "read_meter_balance_response": (FrameType.I, 0, 1, True, False, ADAPTER, ESME),
        "adjust_meter_balance_request": (FrameType.I, 1, 1, True, False, ESME, ADAPTER),
        "adjust_meter_balance_response": (FrameType.I, 1, 2, True, False, ADAPTER, ESME),
        "firmware_begin_request": (FrameType.I, 2, 2, True, False, ESME, ADAPTER),
        "firmware_begin_response": (FrameType.I, 2, 3, True, False, ADAPTER, ESME),
        "firmware_block_request_segment_1": (FrameType.I, 3, 3, True, True, ESME, ADAPTER),
        "rr_after_segment_1": (FrameType.RR, 0, 4, True, False, ADAPTER, ESME),
        "firmware_block_request_segment_2": (FrameType.I, 4, 3, True, False, ESME, ADAPTER),
        "firmware_block_response": (FrameType.I, 3, 5, True, False, ADAPTER, ESME),
        "adjust_refused_request": (FrameType.I, 5, 4, True, False, ESME, ADAPTER),
        "adjust_refused_response": (FrameType.I, 4, 6, True, False, ADAPTER, ESME),
        "disc": (FrameType.DISC, 0, 0, True, False, ESME, ADAPTER),
        "ua_disc": (FrameType.UA, 0, 0, True, False, ADAPTER, ESME),
        "snrm_defaults": (FrameType.SNRM, 0, 0, True, False, MANAGEMENT, ADAPTER),
        "ua_defaults": (FrameType.UA, 0, 0, True, False, ADAPTER, MANAGEMENT),
        "read_device_directory_request": (FrameType.I, 0, 0, True, False, MANAGEMENT, ADAPTER),
        "read_device_directory_response": (FrameType.I, 0, 1, True, False, ADAPTER, MANAGEMENT),
        "rr_after_complete_response": (FrameType.RR, 0, 1, True, False, MANAGEMENT, ADAPTER),
        "rr_nothing_more_to_send": (FrameType.RR, 0, 1, True, False, ADAPTER, MANAGEMENT),
        "snrm_max_info_64": (FrameType.SNRM, 0, 0, True, False, MANAGEMENT, ADAPTER),
        "ua_max_info_64": (FrameType.UA, 0, 0, True, False, ADAPTER, MANAGEMENT),
        "read_device_directory_request_max_info_64":
            (FrameType.I, 0, 0, True, False, MANAGEMENT, ADAPTER),
        "read_device_directory_response_segment_1":
            (FrameType.I, 0, 1, True, True, ADAPTER, MANAGEMENT),
        "rr_for_next_segment": (FrameType.RR, 0, 1, True, False, MANAGEMENT, ADAPTER),
        "read_device_directory_response_segment_2":
            (FrameType.I, 1, 1, True, False, ADAPTER, MANAGEMENT),
        "i_frame_while_disconnected": (FrameType.I, 0, 0, True, False, ESME, ADAPTER),
        "dm_not_connected": (FrameType.DM, 0, 0, True, False, ADAPTER, ESME),
        "i_frame_with_wrong_receive_sequence": (FrameType.I, 0, 3, True, False, ESME, ADAPTER),
        "frmr_invalid_receive_sequence": (FrameType.FRMR, 0, 0, True, False, ADAPTER, ESME),
    }
    for label, want in expected.items():
        f = frame(label)
        got = (f.frame_type, f.send_sequence, f.receive_sequence, f.poll_final, f.segmented,
               f.destination_address, f.source_address)
        assert got == want, label


def test_doc_frames_without_information_have_no_hcs() -> None:
    for label in ("rr_after_segment_1", "disc", "ua_disc", "snrm_defaults", "rr_for_next_segment",
                  "dm_not_connected"):
        data = FRAMES[label]
        assert len(data) == 9  # 7E, format 2, two 1-byte addresses, control, FCS 2, 7E
        assert decode_frame(data).information == b""


def test_doc_segments_fill_the_negotiated_length_except_the_last() -> None:
    for first, last, negotiated in (
            ("firmware_block_request_segment_1", "firmware_block_request_segment_2", 128),
            ("read_device_directory_response_segment_1",
             "read_device_directory_response_segment_2", 64)):
        assert len(frame(first).information) == negotiated
        assert 0 < len(frame(last).information) < negotiated
        assert FRAMES[first][1] & 0x08 and not FRAMES[last][1] & 0x08


# --------------------------------------------------------------------------------------------
# The APDUs say what the doc says
# --------------------------------------------------------------------------------------------


def test_snrm_and_ua_propose_and_agree_128_bytes_and_window_1() -> None:
    negotiation = bytes.fromhex("818012 050180 060180 0704 00000001 0804 00000001")
    for label in ("snrm", "ua", "ua_defaults"):
        assert frame(label).information == negotiation, label


def test_read_meter_balance_vectors_carry_1250_pence() -> None:
    assert apdu_of("read_meter_balance_request") == Request(Command.READ_METER_BALANCE, 1)
    response = apdu_of("read_meter_balance_response")
    assert response == Response(Command.READ_METER_BALANCE, 1, Status.SUCCESS, body=Balances(
        meter_balance_pence=1250, emergency_credit_balance_pence=0))


def test_adjust_meter_balance_vectors_take_250_pence_off_in_twos_complement() -> None:
    request = apdu_of("adjust_meter_balance_request")
    assert request == Request(Command.ADJUST_METER_BALANCE, 2,
                              body=AdjustMeterBalanceRequest(adjustment_pence=-250))
    assert frame("adjust_meter_balance_request").information.endswith(bytes.fromhex("FFFFFF06"))
    response = apdu_of("adjust_meter_balance_response")
    assert response == Response(Command.ADJUST_METER_BALANCE, 2, Status.SUCCESS,
                                body=AdjustMeterBalanceResponse(
        adjustment_applied_pence=-250, meter_balance_pence=1000))


def test_refused_adjustment_vector_is_a_five_byte_status_only_response() -> None:
    request = apdu_of("adjust_refused_request")
    assert request == Request(Command.ADJUST_METER_BALANCE, 5,
                              body=AdjustMeterBalanceRequest(adjustment_pence=1_000_000))
    response = apdu_of("adjust_refused_response")
    assert response == Response(Command.ADJUST_METER_BALANCE, 5,
                                Status.EXCEEDS_MAX_METER_BALANCE)
    assert frame("adjust_refused_response").information == bytes.fromhex("E6E700 81 0005 21 07")


def test_firmware_vectors_announce_and_carry_the_first_200_bytes_of_the_esme_image() -> None:
    image = ESME_IMAGE_PATH.read_bytes()
    assert apdu_of("firmware_begin_request") == Request(
        Command.FIRMWARE_BEGIN, 3, body=FirmwareBeginRequest(image_size_bytes=len(image)))
    begin = apdu_of("firmware_begin_response")
    assert isinstance(begin, Response) and begin.ok
    assert begin.body.running_version == "1.0.0" and begin.body.transfer_in_progress
    block = apdu_of("firmware_block_request_segment_1", "firmware_block_request_segment_2")
    assert block == Request(Command.FIRMWARE_BLOCK, 4,
                            body=FirmwareBlockRequest(block_offset_bytes=0, block_data=image[:200]))
    assert apdu_of("firmware_block_response") == Response(
        Command.FIRMWARE_BLOCK, 4, Status.SUCCESS, body=FirmwareBlockResponse(bytes_received=200))


def test_device_directory_vector_lists_hub_esme_and_gsme_addresses_not_management() -> None:
    assert apdu_of("read_device_directory_request") == Request(
        Command.READ_DEVICE_DIRECTORY, 1)
    assert FRAMES["read_device_directory_request_max_info_64"] \
        == FRAMES["read_device_directory_request"]
    response = apdu_of("read_device_directory_response")
    assert apdu_of("read_device_directory_response_segment_1",
                   "read_device_directory_response_segment_2") == response
    assert isinstance(response, Response) and response.ok
    devices = response.body.devices
    assert [(d.server_address, d.device_type) for d in devices] == [
        (2, DeviceType.COMMS_HUB), (16, DeviceType.ELECTRICITY_METER), (17, DeviceType.GAS_METER)]
    assert devices[1].device_eui64 == bytes.fromhex("00DB1234567890A1")
    assert devices[1].model == "LIBERTY100"
    assert len(frame("read_device_directory_response").information) == 125


# --------------------------------------------------------------------------------------------
# The prose and tables match the code
# --------------------------------------------------------------------------------------------


def test_crc_section_states_the_check_value_and_residue_crc16_x25_gives() -> None:
    assert crc16_x25(b"123456789") == CRC16_X25_CHECK_VALUE == 0x906E
    assert "**`0x906E`**" in DOC_TEXT and "**`0x0F47`**" in DOC_TEXT
    covered = bytes.fromhex("A0 07 03 21 93")
    value = crc16_x25(covered)
    assert f"CRC-16/X.25 of those bytes is `0x{value:04X}`" in DOC_TEXT
    wire = value.to_bytes(2, "little")
    assert f"sent low byte first as `{wire[0]:02X} {wire[1]:02X}`" in DOC_TEXT
    assert FRAMES["snrm_defaults"] == b"\x7e" + covered + wire + b"\x7e"
    assert crc16_x25(covered + wire) == GOOD_FCS_RESIDUE


def test_crc_step_table_follows_the_bitwise_algorithm_the_doc_gives() -> None:
    register = 0xFFFF
    for byte in bytes.fromhex("A0 07 03 21 93"):
        register ^= byte
        for _ in range(8):
            register = (register >> 1) ^ 0x8408 if register & 1 else register >> 1
        assert f"| `{byte:02X}` | `0x{register:04X}` |" in DOC_TEXT
    assert register ^ 0xFFFF == crc16_x25(bytes.fromhex("A0 07 03 21 93"))


def test_address_table_matches_encode_address() -> None:
    rows = re.findall(r"^\| (\d+) \(0x[0-9A-F]+\) \| `([0-9A-F ]+)` \|$", DOC_TEXT, re.MULTILINE)
    assert len(rows) >= 8
    sizes = set()
    for address, wire in rows:
        assert encode_address(int(address)) == bytes.fromhex(wire), address
        sizes.add(len(bytes.fromhex(wire)))
    assert sizes == {1, 2, 4}


def test_every_command_and_status_is_listed_with_its_code() -> None:
    for command in Command:
        assert f"| `{command.value:02X}` | {command.name} |" in DOC_TEXT, command.name
        assert f"#### `{command.value:02X}` {command.name}\n" in DOC_TEXT, command.name
    for status in Status:
        assert f"| `{status.value:02X}` | {status.name} |" in DOC_TEXT, status.name


def test_every_enum_value_is_listed() -> None:
    for enum_class in (apdu_module.PaymentMode, apdu_module.SupplyState,
                       apdu_module.SupplyOffReason, apdu_module.DeviceType,
                       apdu_module.DebtRegister, apdu_module.DebtRecoveryPeriod,
                       apdu_module.HanEntryState):
        section = DOC_TEXT.split(f" {enum_class.__name__} (u8)\n", 1)[1].split("###", 1)[0]
        for member in enum_class:
            assert f"| {member.value} | {member.name} |" in section, member
    flags = DOC_TEXT.split(" PrepaymentConfigurationField (u16 bit set)\n", 1)[1]
    for flag in apdu_module.PrepaymentConfigurationField:
        assert f"| 0x{flag.value:04X} | {flag.name} |" in flags.split("###", 1)[0]


def test_fixed_size_shared_layouts_state_their_construct_size() -> None:
    for name in ("PREPAYMENT_DEFAULTS", "PREPAYMENT_CONFIGURATION", "BALANCES",
                 "INSTANTANEOUS_PREPAY_VALUES", "SUPPLY_STATUS", "LOAD_LIMIT_DATA",
                 "HAN_ENTRY", "DEBT_STATE", "SCHEDULED_ENTRY"):
        section = DOC_TEXT.split(f"**{name}**\n", 1)[1].split("**", 1)[0]
        size = getattr(apdu_module, name).sizeof()
        assert f"Total: {size} byte" in section, name


# --------------------------------------------------------------------------------------------
# A LinkStation produces exactly the documented link frames
# --------------------------------------------------------------------------------------------


def _link() -> object:
    return pytest.importorskip(
        "protocol.link", reason="protocol/link.py has not landed: the link vectors wait for it")


def _one_frame(station: object) -> bytes:
    frames = station.frames_to_send()  # type: ignore[attr-defined]
    assert len(frames) == 1, frames
    return encode_frame(frames[0])


def _serve(server: object, data: bytes, now_ms: int, answer: Response | None) -> bytes:
    """Give ``server`` one client frame; queue ``answer`` if an APDU arrives; its one frame."""
    link = _link()
    events = server.receive_frame(decode_frame(data), now_ms)  # type: ignore[attr-defined]
    received = [e for e in events if isinstance(e, link.ApduReceived)]  # type: ignore[attr-defined]
    if answer is not None:
        assert len(received) == 1
        server.send_apdu(encode_response(answer), now_ms)  # type: ignore[attr-defined]
    else:
        assert received == []
    return _one_frame(server)


def _responses() -> dict[str, Response]:
    return {label: apdu_of(label) for label in (  # type: ignore[misc]
        "read_meter_balance_response", "adjust_meter_balance_response",
        "firmware_begin_response", "firmware_block_response", "adjust_refused_response")}


def test_link_stations_produce_the_documented_esme_session_byte_for_byte() -> None:
    link = _link()
    client = link.LinkStation(link.Role.CLIENT, ADAPTER, ESME)  # type: ignore[attr-defined]
    server = link.LinkStation(link.Role.SERVER, ESME, ADAPTER)  # type: ignore[attr-defined]
    responses = _responses()
    now_ms = 0
    client.connect(now_ms)
    assert _one_frame(client) == FRAMES["snrm"]
    assert _serve(server, FRAMES["snrm"], now_ms, None) == FRAMES["ua"]
    client.receive_frame(decode_frame(FRAMES["ua"]), now_ms)
    assert client.state is link.LinkState.CONNECTED  # type: ignore[attr-defined]

    for request_labels, response_label in (
            (["read_meter_balance_request"], "read_meter_balance_response"),
            (["adjust_meter_balance_request"], "adjust_meter_balance_response"),
            (["firmware_begin_request"], "firmware_begin_response"),
            (["firmware_block_request_segment_1", "firmware_block_request_segment_2"],
             "firmware_block_response"),
            (["adjust_refused_request"], "adjust_refused_response")):
        request_apdu = b"".join(frame(label).information for label in request_labels)[3:]
        client.send_apdu(request_apdu, now_ms)
        for index, label in enumerate(request_labels):
            assert _one_frame(client) == FRAMES[label], label
            if index < len(request_labels) - 1:  # a non-final segment: the server says RR
                assert _serve(server, FRAMES[label], now_ms, None) == FRAMES["rr_after_segment_1"]
                client.receive_frame(decode_frame(FRAMES["rr_after_segment_1"]), now_ms)
            else:
                answer = _serve(server, FRAMES[label], now_ms, responses[response_label])
                assert answer == FRAMES[response_label], response_label
                events = client.receive_frame(decode_frame(answer), now_ms)
                assert events == [link.ApduReceived(  # type: ignore[attr-defined]
                    frame(response_label).information[3:])]
        now_ms += 10

    client.disconnect(now_ms)
    assert _one_frame(client) == FRAMES["disc"]
    assert _serve(server, FRAMES["disc"], now_ms, None) == FRAMES["ua_disc"]


def test_link_station_answers_a_resent_money_request_with_the_same_bytes_and_applies_it_once(
        ) -> None:
    link = _link()
    server = link.LinkStation(link.Role.SERVER, ESME, ADAPTER)  # type: ignore[attr-defined]
    responses = _responses()
    _serve(server, FRAMES["snrm"], 0, None)
    _serve(server, FRAMES["read_meter_balance_request"], 0,
           responses["read_meter_balance_response"])
    first = _serve(server, FRAMES["adjust_meter_balance_request"], 0,
                   responses["adjust_meter_balance_response"])
    resent = _serve(server, FRAMES["adjust_meter_balance_request"], 1000, None)  # no ApduReceived
    assert first == resent == FRAMES["adjust_meter_balance_response"]


def test_link_stations_produce_the_documented_directory_exchange_with_a_segmented_response(
        ) -> None:
    link = _link()
    # the documented SNRM without parameters (the defaults): our client always sends them, so
    # that SNRM comes from the doc and the UA from the server
    defaults_server = link.LinkStation(  # type: ignore[attr-defined]
        link.Role.SERVER, MANAGEMENT, ADAPTER)
    assert _serve(defaults_server, FRAMES["snrm_defaults"], 0, None) == FRAMES["ua_defaults"]
    # the segmented exchange: a client offering 64 bytes, a server with the default 128
    client = link.LinkStation(link.Role.CLIENT, ADAPTER, MANAGEMENT,  # type: ignore[attr-defined]
                              parameters=link.LinkParameters(64))  # type: ignore[attr-defined]
    server = link.LinkStation(link.Role.SERVER, MANAGEMENT, ADAPTER)  # type: ignore[attr-defined]
    client.connect(0)
    assert _one_frame(client) == FRAMES["snrm_max_info_64"]
    assert _serve(server, FRAMES["snrm_max_info_64"], 0, None) == FRAMES["ua_max_info_64"]
    client.receive_frame(decode_frame(FRAMES["ua_max_info_64"]), 0)
    directory = apdu_of("read_device_directory_response_segment_1",
                        "read_device_directory_response_segment_2")
    request_apdu = frame("read_device_directory_request_max_info_64").information[3:]
    client.send_apdu(request_apdu, 0)
    assert _one_frame(client) == FRAMES["read_device_directory_request_max_info_64"]
    segment_1 = _serve(server, FRAMES["read_device_directory_request_max_info_64"], 0,
                       directory)
    assert segment_1 == FRAMES["read_device_directory_response_segment_1"]
    assert client.receive_frame(decode_frame(segment_1), 0) == []
    rr = _one_frame(client)
    assert rr == FRAMES["rr_for_next_segment"]
    segment_2 = _serve(server, rr, 0, None)
    assert segment_2 == FRAMES["read_device_directory_response_segment_2"]
    events = client.receive_frame(decode_frame(segment_2), 0)
    assert [decode_apdu(e.apdu) for e in events] == [directory]


def test_link_station_answers_the_documented_dm_and_frmr() -> None:
    link = _link()
    server = link.LinkStation(link.Role.SERVER, ESME, ADAPTER)  # type: ignore[attr-defined]
    assert _serve(server, FRAMES["i_frame_while_disconnected"], 0, None) \
        == FRAMES["dm_not_connected"]
    assert _serve(server, FRAMES["snrm"], 0, None) == FRAMES["ua"]
    assert _serve(server, FRAMES["i_frame_with_wrong_receive_sequence"], 0, None) \
        == FRAMES["frmr_invalid_receive_sequence"]
    assert frame("frmr_invalid_receive_sequence").information == bytes.fromhex("700008")
    assert link.describe_frame_reject(  # type: ignore[attr-defined]
        frame("frmr_invalid_receive_sequence").information).startswith("control byte 70 rejected")


def test_server_state_table_in_the_doc_is_the_one_link_py_implements() -> None:
    link = _link()
    table = link.describe_transitions(link.Role.SERVER)  # type: ignore[attr-defined]
    assert table in DOC_TEXT


def test_ua_states_the_agreed_lengths_from_the_servers_side_as_the_doc_says() -> None:
    link = _link()
    server = link.LinkStation(link.Role.SERVER, ESME, ADAPTER)  # type: ignore[attr-defined]
    # the client may send 256 bytes and receive 64; the server's own limit is 128
    proposal = link.encode_parameter_negotiation(  # type: ignore[attr-defined]
        link.ParameterNegotiation(256, 64, 1, 1))  # type: ignore[attr-defined]
    assert bytes.fromhex("05020100") in proposal and "(`05 02 01 00` = 256)" in DOC_TEXT
    snrm = HdlcFrame.make(FrameType.SNRM, ESME, ADAPTER, proposal)
    ua = decode_frame(_serve(server, encode_frame(snrm), 0, None))
    agreed = link.decode_parameter_negotiation(ua.information)  # type: ignore[attr-defined]
    assert (agreed.max_transmit_length_bytes, agreed.max_receive_length_bytes) == (64, 128)
    assert (agreed.window_transmit, agreed.window_receive) == (1, 1)


# --------------------------------------------------------------------------------------------
# The doc's own recipes are enough: a clean-room encoder written from sections 3 and 4 alone
# --------------------------------------------------------------------------------------------


def _doc_crc(data: bytes) -> int:
    """Section 3's bitwise algorithm, as written there."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


def _doc_address(address: int) -> bytes:
    """Section 4.3's table."""
    if address <= 0x7F:
        return bytes(((address << 1) | 1,))
    if address <= 0x3FFF:
        return bytes(((address >> 7) << 1, ((address & 0x7F) << 1) | 1))
    groups = [(address >> shift) & 0x7F for shift in (21, 14, 7, 0)]
    return bytes([g << 1 for g in groups[:3]] + [(groups[3] << 1) | 1])


_DOC_U_CONTROL = {FrameType.SNRM: 0x83, FrameType.UA: 0x63, FrameType.DISC: 0x43,
                  FrameType.DM: 0x0F, FrameType.FRMR: 0x87, FrameType.UI: 0x03}


def _doc_control(frame_type: FrameType, send_sequence: int, receive_sequence: int,
                 poll_final: bool) -> int:
    """Section 4.4's table."""
    pf = 0x10 if poll_final else 0
    if frame_type is FrameType.I:
        return (receive_sequence << 5) | pf | (send_sequence << 1)
    if frame_type is FrameType.RR:
        return 0x01 | pf | (receive_sequence << 5)
    return _DOC_U_CONTROL[frame_type] | pf


def _doc_frame(destination: int, source: int, control: int, information: bytes,
               segmented: bool) -> bytes:
    """Sections 4.1, 4.2 and 4.5."""
    addresses = _doc_address(destination) + _doc_address(source)
    length = 2 + len(addresses) + 1 + (2 + len(information) if information else 0) + 2
    header = bytes((0xA0 | (int(segmented) << 3) | (length >> 8), length & 0xFF)) + addresses \
        + bytes((control,))
    body = header + (_doc_crc(header).to_bytes(2, "little") + information if information
                     else b"")
    return b"\x7e" + body + _doc_crc(body).to_bytes(2, "little") + b"\x7e"


@pytest.mark.parametrize(("label", "data"), DOC_FRAMES, ids=[label for label, _ in DOC_FRAMES])
def test_doc_recipes_alone_rebuild_every_doc_frame(label: str, data: bytes) -> None:
    f = decode_frame(data)
    assert f.frame_type is not None
    control = _doc_control(f.frame_type, f.send_sequence, f.receive_sequence, f.poll_final)
    assert control == f.control
    assert _doc_frame(f.destination_address, f.source_address, control, f.information,
                      f.segmented) == data


@pytest.mark.parametrize("address", [0, 1, 16, 0x7F, 0x80, 0x1234, 0x3FFF, 0x4000, 0x0FFFFFFF])
def test_doc_address_recipe_matches_encode_address(address: int) -> None:
    assert _doc_address(address) == encode_address(address)


# --------------------------------------------------------------------------------------------
# The doc's body tables are enough: a clean-room APDU codec driven by sections 8.1 and 8.2
# --------------------------------------------------------------------------------------------

_ROW = re.compile(r"^\| [^|]* \| [^|]* \| ([^|]+) \| `(\w+)` \|", re.MULTILINE)
_INTEGER_SIZES = {"u8": 1, "u16": 2, "u32": 4, "i32": 4}
Layout = list[tuple[str, str]]


def _layout(text: str) -> Layout:
    """``(field, type)`` rows of the first table in ``text``; [] for "empty"; a record by name."""
    text = text.strip()
    if text.startswith("empty"):
        return []
    record = re.match(r"a (\w+) record", text)
    if record:
        return _shared_layout(record.group(1))
    table = text.split("\n\n", 2)[0 if text.startswith("|") else 1]
    return [(name, kind.strip()) for kind, name in _ROW.findall(table)]


def _shared_layout(name: str) -> Layout:
    return _layout(DOC_TEXT.split(f"**{name}**\n", 1)[1].split("\n**", 1)[0])


def _body_layouts(command: Command) -> tuple[Layout, Layout]:
    section = DOC_TEXT.split(f"#### `{command.value:02X}` {command.name}\n", 1)[1]
    section = section.split("\n####", 1)[0].split("\n### ", 1)[0]
    request_text, response_text = section.split("Response body:", 1)
    return _layout(request_text.split("Request body:", 1)[1]), _layout(response_text)


def _doc_parse(layout: Layout, data: bytes, offset: int = 0) -> tuple[dict[str, object], int]:
    fields: dict[str, object] = {}
    for name, kind in layout:
        word = kind.split()[0]
        if " count + " in kind:
            count_size = _INTEGER_SIZES[word]
            count = int.from_bytes(data[offset:offset + count_size], "big")
            offset += count_size
            items = []
            item_kind = kind.split(" + ")[1][:-2]
            for _ in range(count):
                if item_kind in _INTEGER_SIZES:  # an array of plain integers
                    parsed, offset = _doc_parse([("item", item_kind)], data, offset)
                    item = parsed["item"]
                else:
                    item, offset = _doc_parse(_shared_layout(item_kind), data, offset)
                items.append(item)
            fields[name] = items
        elif word in _INTEGER_SIZES:
            size = _INTEGER_SIZES[word]
            fields[name] = int.from_bytes(data[offset:offset + size], "big", signed=word == "i32")
            offset += size
        elif word == "bool":
            fields[name] = data[offset] != 0
            offset += 1
        elif word == "eui64":
            fields[name], offset = data[offset:offset + 8], offset + 8
        elif word == "text":
            size = data[offset]
            fields[name] = data[offset + 1:offset + 1 + size].decode("ascii")
            offset += 1 + size
        elif word == "bytes16":
            size = int.from_bytes(data[offset:offset + 2], "big")
            fields[name], offset = data[offset + 2:offset + 2 + size], offset + 2 + size
        elif kind.endswith(" bytes"):
            size = int(word)
            fields[name], offset = data[offset:offset + size], offset + size
        else:  # a record by name
            fields[name], offset = _doc_parse(_shared_layout(kind), data, offset)
    return fields, offset


def _sample(layout: Layout, serial: Iterator[int] | None = None) -> dict[str, object]:
    """A value for every field, from the doc's types alone; integers all differ, so a doc that
    swapped two fields of the same type would be caught."""
    serial = serial if serial is not None else itertools.count(1)
    values: dict[str, object] = {}
    for name, kind in layout:
        n = next(serial)
        word = kind.split()[0]
        if " count + " in kind and kind.split(" + ")[1][:-2] in _INTEGER_SIZES:
            item = [("item", kind.split(" + ")[1][:-2])]
            values[name] = [_sample(item, serial)["item"], _sample(item, serial)["item"]]
        elif " count + " in kind:
            record = _shared_layout(kind.split(" + ")[1][:-2])
            values[name] = [_sample(record, serial), _sample(record, serial)]
        elif word in _INTEGER_SIZES and len(kind.split()) == 2:  # an enum or a bit set
            values[name] = 0x0003 if word == "u16" else 1
        elif word in _INTEGER_SIZES:
            values[name] = {"u8": n, "u16": 0x1200 + n, "u32": 0x12340000 + n,
                            "i32": -1000 * n - 7}[word]
        elif word == "bool":
            values[name] = True
        elif word == "eui64":
            values[name] = bytes.fromhex("00DB1234567890") + bytes((n,))
        elif word == "text":
            values[name] = f"v{n}"
        elif word == "bytes16":
            values[name] = bytes((n, n + 1, n + 2))
        elif kind.endswith(" bytes"):
            values[name] = b"7" * int(word)
        else:
            values[name] = _sample(_shared_layout(kind), serial)
    return values


@pytest.mark.parametrize("command", list(Command), ids=[c.name for c in Command])
def test_doc_body_tables_alone_decode_what_the_code_encodes(command: Command) -> None:
    request_layout, response_layout = _body_layouts(command)
    request = Request(command, 0x0102,
                      _typed(REQUEST_BODY_TYPES[command], _sample(request_layout)))
    request_bytes = apdu_module.encode_request(request)
    assert request_bytes[:4] == bytes((0x01, 0x01, 0x02, command.value))
    parsed, end = _doc_parse(request_layout, request_bytes, 4)
    assert end == len(request_bytes) and parsed == _plain(request.body)
    assert _plain(decode_apdu(request_bytes).body) == parsed
    response = Response(command, 0x0102, Status.SUCCESS,
                        _typed(RESPONSE_BODY_TYPES[command], _sample(response_layout)))
    response_bytes = encode_response(response)
    assert response_bytes[:5] == bytes((0x81, 0x01, 0x02, command.value, 0x00))
    parsed, end = _doc_parse(response_layout, response_bytes, 5)
    assert end == len(response_bytes) and parsed == _plain(response.body)
    assert _plain(decode_apdu(response_bytes).body) == parsed


def _typed(body_type: type[ApduBody], sample: dict[str, object]) -> ApduBody:
    """The typed body holding a :func:`_sample` (lists as tuples, enum codes as enums)."""
    def value(python_type: object, raw: object) -> object:
        if isinstance(python_type, type) and issubclass(python_type, ApduBody):
            return _typed(python_type, raw)  # type: ignore[arg-type]
        if typing.get_origin(python_type) is tuple:
            item_type = typing.get_args(python_type)[0]
            return tuple(value(item_type, item) for item in raw)  # type: ignore[attr-defined]
        if isinstance(python_type, type) and issubclass(python_type, enum.Enum):
            return python_type(raw)
        return raw

    return body_type(**{field.name: value(field.type, sample[field.name])
                        for field in dataclasses.fields(body_type)})  # type: ignore[arg-type]


def _plain(body: object) -> object:
    """A typed body as the doc parser gives it: records as dicts, arrays as lists."""
    if dataclasses.is_dataclass(body):
        return {field.name: _plain(getattr(body, field.name))
                for field in dataclasses.fields(body)}
    if isinstance(body, tuple):
        return [_plain(item) for item in body]
    return body


def test_doc_body_tables_alone_decode_the_worked_examples() -> None:
    for labels in (["read_meter_balance_response"], ["adjust_meter_balance_request"],
                   ["firmware_begin_response"],
                   ["firmware_block_request_segment_1", "firmware_block_request_segment_2"],
                   ["read_device_directory_response_segment_1",
                    "read_device_directory_response_segment_2"]):
        apdu_bytes = b"".join(frame(label).information for label in labels)[3:]
        command = Command(apdu_bytes[3])
        is_response = apdu_bytes[0] == 0x81
        layout = _body_layouts(command)[1 if is_response else 0]
        parsed, end = _doc_parse(layout, apdu_bytes, 5 if is_response else 4)
        assert end == len(apdu_bytes)
        assert parsed == _plain(decode_apdu(apdu_bytes).body), labels
