"""docs/protocol.md section 11's worked examples are what the running emulator sends.

Every exchange of section 11 is replayed against the real server: the doc's client frames, fed
to a :class:`emulator.serve.LinkServer` over an :class:`emulator.world.EmulatedWorld` of the
built-in profile on a virtual clock (no time passed), get exactly the doc's server frames back.
The directory examples of 11.6 (one frame, then segmented at a negotiated 64 bytes) are also
checked the other way: the emulator's own client station, configured as the doc says, sends
exactly the doc's client frames and reassembles the doc's segments into the directory the doc
describes. No port, no wall clock.
"""

from __future__ import annotations

import re
from pathlib import Path

from emulator.clock import VirtualClock
from emulator.profile import Profile
from emulator.world import EmulatedWorld
from protocol.apdu import Command, DeviceType, Request, Response, decode_apdu, encode_request
from protocol.hdlc_codec import decode_frame, encode_frame
from protocol.link import ApduReceived, LinkParameters, LinkStation, Role
from protocol.link_mux import LinkServer
from protocol.stream import FrameStreamDecoder

DOC_TEXT = (Path(__file__).resolve().parents[1] / "docs" / "protocol.md").read_text("utf-8")
EXAMPLES = DOC_TEXT.split("\n## 11. Worked examples", 1)[1].split("\n## ", 1)[0]
SECTION = EXAMPLES.split("### 11.6 ", 1)[1].split("\n### ", 1)[0]
ADAPTER = 0x10
MANAGEMENT = 1


def _doc_frames(text: str) -> dict[str, bytes]:
    """``{label: frame}`` for every ``HEX  # label`` line of the ```hex blocks in ``text``."""
    frames = {}
    for block in re.findall(r"^```hex\n(.*?)^```", text, re.MULTILINE | re.DOTALL):
        for line in block.splitlines():
            hex_part, _, label = line.partition("#")
            frames[label.strip()] = bytes.fromhex(hex_part)
    return frames


FRAMES = _doc_frames(SECTION)
ALL_FRAMES = _doc_frames(EXAMPLES)


def _emulator() -> LinkServer:
    profile = Profile.default()
    return LinkServer(EmulatedWorld(profile, VirtualClock(profile.start_device_time_seconds)))


def _frames_in(data: bytes) -> list[bytes]:
    return [encode_frame(f) for f in FrameStreamDecoder().feed(data)]


def test_section_holds_the_one_frame_and_the_segmented_directory_exchanges() -> None:
    assert list(FRAMES) == [
        "snrm_defaults", "ua_defaults", "read_device_directory_request",
        "read_device_directory_response", "rr_after_complete_response", "rr_nothing_more_to_send",
        "snrm_max_info_64", "ua_max_info_64", "read_device_directory_request_max_info_64",
        "read_device_directory_response_segment_1", "rr_for_next_segment",
        "read_device_directory_response_segment_2"]


def test_running_emulator_answers_the_doc_client_frames_with_the_doc_server_frames() -> None:
    for exchange in (
            [("snrm_defaults", "ua_defaults"),
             ("read_device_directory_request", "read_device_directory_response"),
             ("rr_after_complete_response", "rr_nothing_more_to_send")],
            [("snrm_max_info_64", "ua_max_info_64"),
             ("read_device_directory_request_max_info_64",
              "read_device_directory_response_segment_1"),
             ("rr_for_next_segment", "read_device_directory_response_segment_2")]):
        server = _emulator()  # each exchange is a new connection to a freshly started emulator
        for sent, answer in exchange:
            assert _frames_in(server.receive_bytes(FRAMES[sent], 0)) == [FRAMES[answer]], sent


def test_running_emulator_answers_the_esme_session_and_the_errors_as_the_doc_shows() -> None:
    for exchange in (
            [("snrm", "ua"),  # 11.1-11.5: one connection to the ESME, in order
             ("read_meter_balance_request", "read_meter_balance_response"),
             ("adjust_meter_balance_request", "adjust_meter_balance_response"),
             ("firmware_begin_request", "firmware_begin_response"),
             ("firmware_block_request_segment_1", "rr_after_segment_1"),
             ("firmware_block_request_segment_2", "firmware_block_response"),
             ("adjust_refused_request", "adjust_refused_response"),
             ("disc", "ua_disc")],
            [("i_frame_while_disconnected", "dm_not_connected"),  # 11.7
             ("snrm", "ua"),
             ("i_frame_with_wrong_receive_sequence", "frmr_invalid_receive_sequence")]):
        server = _emulator()
        for sent, answer in exchange:
            assert _frames_in(server.receive_bytes(ALL_FRAMES[sent], 0)) == [ALL_FRAMES[answer]], \
                sent


def test_one_frame_directory_is_125_bytes_listing_hub_esme_and_gsme_but_not_management() -> None:
    response = decode_frame(FRAMES["read_device_directory_response"])
    assert not response.segmented and len(response.information) == 125
    directory = decode_apdu(response.information[3:])
    assert isinstance(directory, Response) and directory.ok
    assert [(d.device_eui64.hex(), d.device_type, d.server_address, d.model)
            for d in directory.body.devices] == [
        ("00db1234567890a0", DeviceType.COMMS_HUB, 2, "SECURE-CHF"),
        ("00db1234567890a1", DeviceType.ELECTRICITY_METER, 16, "LIBERTY100"),
        ("00db1234567890a2", DeviceType.GAS_METER, 17, "SECURE-GSME")]


def test_emulator_client_sends_the_doc_frames_and_reassembles_the_doc_segments() -> None:
    client = LinkStation(Role.CLIENT, ADAPTER, MANAGEMENT, parameters=LinkParameters(64))
    client.connect(0)
    assert [encode_frame(f) for f in client.frames_to_send()] == [FRAMES["snrm_max_info_64"]]
    client.receive_frame(decode_frame(FRAMES["ua_max_info_64"]), 0)
    assert client.negotiated == LinkParameters(64)
    client.send_apdu(encode_request(Request(Command.READ_DEVICE_DIRECTORY, 1)), 0)
    assert [encode_frame(f) for f in client.frames_to_send()] == [
        FRAMES["read_device_directory_request_max_info_64"]]
    segment_1 = decode_frame(FRAMES["read_device_directory_response_segment_1"])
    assert segment_1.segmented and len(segment_1.information) == 64
    assert client.receive_frame(segment_1, 0) == []
    assert [encode_frame(f) for f in client.frames_to_send()] == [FRAMES["rr_for_next_segment"]]
    segment_2 = decode_frame(FRAMES["read_device_directory_response_segment_2"])
    assert not segment_2.segmented and len(segment_2.information) == 61
    events = client.receive_frame(segment_2, 0)
    one_frame = decode_frame(FRAMES["read_device_directory_response"]).information[3:]
    assert events == [ApduReceived(one_frame)]
