"""Server addresses read per link: flat numbers, or IEC 62056-46 upper/lower pairs (DLMS).

Frames go through the real codec as bytes; the devices are a fake serving 1, 2, 16 and 17.
"""

from __future__ import annotations

import pytest

from protocol.apdu import Balances, Command, Request, Response, Status, decode_apdu, encode_response
from protocol.client import DeviceClient
from protocol.crc import crc16_x25
from protocol.errors import FrameError
from protocol.hdlc import (
    Addressing,
    DlmsServerAddress,
    FrameType,
    HdlcFrame,
    dlms_server_address,
    split_dlms_server_address,
)
from protocol.hdlc_codec import decode_frame, encode_frame
from protocol.link_mux import LinkServer, dlms_device_address
from protocol.stream import FrameStreamDecoder

CLIENT = 0x10
SERVED = frozenset({1, 2, 16, 17})


class Devices:
    """Answers READ_METER_BALANCE with the asked device's address as the balance; records
    which device was asked."""

    def __init__(self) -> None:
        self.asked: list[int] = []

    def server_addresses(self) -> frozenset[int]:
        return SERVED

    def handle_apdu(self, server_address: int, apdu: bytes) -> bytes | None:
        self.asked.append(server_address)
        request = decode_apdu(apdu)
        return encode_response(Response(
            Command.READ_METER_BALANCE, request.invoke_id, Status.SUCCESS,
            body=Balances(meter_balance_pence=server_address, emergency_credit_balance_pence=0)))


def snrm_bytes(server_address_hex: str, *, poll: bool = True) -> bytes:
    """A SNRM from client 0x10 with the server address written out as its wire bytes."""
    frame = HdlcFrame.make(FrameType.SNRM, 0, CLIENT, poll_final=poll)
    wire = encode_frame(frame)  # 7E A0 07 01 21 93 FCS 7E: patch in the address bytes
    address = bytes.fromhex(server_address_hex)
    body = bytes((0xA0, 6 + len(address))) + address + wire[4:6]
    return b"\x7e" + body + crc16_x25(body).to_bytes(2, "little") + b"\x7e"


def frames(data: bytes) -> list[HdlcFrame]:
    return list(FrameStreamDecoder().feed(data))


# --------------------------------------------------------------------------------------------
# reading an address both ways


@pytest.mark.parametrize(("wire_hex", "value", "reading"), [
    ("03", 1, DlmsServerAddress(1, None, 1)),
    ("21", 16, DlmsServerAddress(16, None, 1)),
    ("0221", 144, DlmsServerAddress(1, 16, 2)),  # dlms-cosem: logical 1, physical 16
    ("0223", 145, DlmsServerAddress(1, 17, 2)),
    ("FEFF", 0x3FFF, DlmsServerAddress(0x7F, 0x7F, 2)),
    ("00020021", 16400, DlmsServerAddress(1, 16, 4)),
    ("00200023", 262161, DlmsServerAddress(16, 17, 4)),  # gurux: logical 16, physical 17
    ("FEFEFEFF", 0x0FFFFFFF, DlmsServerAddress(0x3FFF, 0x3FFF, 4)),
])
def test_each_address_form_reads_as_one_flat_number_and_one_dlms_pair(
        wire_hex: str, value: int, reading: DlmsServerAddress) -> None:
    frame = decode_frame(snrm_bytes(wire_hex))
    assert frame.destination_address == value
    assert split_dlms_server_address(value) == reading
    assert dlms_server_address(reading.logical, reading.physical, reading.size_bytes) == value


@pytest.mark.parametrize(("logical", "physical"), [(0, 16), (0x80, None), (0x4000, 1),
                                                   (1, 0x4000), (1, -1)])
def test_a_pair_no_form_can_carry_is_refused(logical: int, physical: int | None) -> None:
    with pytest.raises(FrameError, match="upper part"):
        dlms_server_address(logical, physical)


@pytest.mark.parametrize("wire_hex", ["0021", "00000221", "00000003", "0003"])
def test_an_address_longer_than_its_shortest_form_makes_the_frame_invalid(
        wire_hex: str) -> None:
    data = snrm_bytes(wire_hex)
    with pytest.raises(FrameError, match="format"):
        decode_frame(data)
    decoder = FrameStreamDecoder()
    assert list(decoder.feed(data)) == []
    assert decoder.counters.bad_format == 1


@pytest.mark.parametrize(("address", "device"), [
    (1, 1),  # 1 byte, logical 1, no physical: the management device
    (16, 1),  # logical 16, no physical: the management device too
    (dlms_server_address(1, 16), 16),
    (dlms_server_address(1, 1), 1),
    (dlms_server_address(16, 17), 17),
    (dlms_server_address(0x7D, 2), 2),  # the last open logical device in the 2-byte form
    (dlms_server_address(0x3FFD, 16), 16),  # ... and in the 4-byte form
    (dlms_server_address(1, 99), None),  # no device 99
    (dlms_server_address(2, 16), None),  # logical 2-15 are reserved
    (dlms_server_address(15, 16), None),
    (dlms_server_address(0x7E, 16), None),  # the calling address
    (dlms_server_address(0x7F, 16), None),  # all stations
    (dlms_server_address(0x3FFE, 16), None),
    (dlms_server_address(1, 0), None),
    (2, None),  # 1 byte, logical 2: reserved
])
def test_dlms_device_address_is_the_physical_part_under_an_accepted_logical_part(
        address: int, device: int | None) -> None:
    assert dlms_device_address(address, SERVED) == device


# --------------------------------------------------------------------------------------------
# the server role


@pytest.mark.parametrize(("wire_hex", "device"), [
    ("03", 1), ("0221", 16), ("00200023", 17), ("0205", 2)])
def test_dlms_server_answers_under_the_address_the_client_wrote(
        wire_hex: str, device: int) -> None:
    devices = Devices()
    server = LinkServer(devices, addressing=Addressing.DLMS)
    [ua] = frames(server.receive_bytes(snrm_bytes(wire_hex), 0))
    assert ua.frame_type is FrameType.UA
    assert encode_frame(ua)[3:4] == b"\x21"  # to the client
    assert encode_frame(ua)[4:4 + len(bytes.fromhex(wire_hex))] == bytes.fromhex(wire_hex)
    request = HdlcFrame.make(FrameType.I, ua.source_address, CLIENT, bytes.fromhex(
        "E6E600") + bytes.fromhex("01000903"))  # READ_METER_BALANCE, invoke 9
    [answer] = frames(server.receive_bytes(encode_frame(request), 0))
    assert answer.frame_type is FrameType.I and answer.source_address == ua.source_address
    assert devices.asked == [device]


@pytest.mark.parametrize("wire_hex", [
    "02C7",  # logical 1, physical 99: no such device
    "0421",  # logical 2 (reserved), physical 16
    "05",  # 1 byte, logical 2
    "FC21",  # logical 0x7E (calling), physical 16
])
def test_dlms_server_answers_a_poll_to_an_address_with_no_device_with_dm(wire_hex: str) -> None:
    server = LinkServer(Devices(), addressing=Addressing.DLMS)
    reply = server.receive_bytes(snrm_bytes(wire_hex), 0)
    address = bytes.fromhex(wire_hex)
    # DM(F=1) = 1F, from the address as written, to the client
    assert reply[3:5 + len(address)] == b"\x21" + address + b"\x1f"
    assert server.station_count == 0
    assert server.counters.frames_to_unknown_address == 1
    assert server.counters.unknown_addresses_answered_with_dm == 1


@pytest.mark.parametrize(("wire_hex", "poll"), [
    ("FE21", True),  # logical 0x7F: all stations, never answered
    ("FF", True),  # 1-byte all-station address
    ("02C7", False),  # no device, but no poll: nothing may be sent
])
def test_dlms_server_is_silent_to_broadcasts_and_to_frames_without_poll(
        wire_hex: str, poll: bool) -> None:
    server = LinkServer(Devices(), addressing=Addressing.DLMS)
    assert server.receive_bytes(snrm_bytes(wire_hex, poll=poll), 0) == b""
    assert server.counters.unknown_addresses_answered_with_dm == 0


def test_flat_server_reads_a_dlms_pair_as_one_number_and_stays_silent() -> None:
    server = LinkServer(Devices())
    assert server.addressing is Addressing.FLAT
    assert server.receive_bytes(snrm_bytes("0221"), 0) == b""  # flat 144: no device
    assert server.counters.frames_to_unknown_address == 1
    [ua] = frames(server.receive_bytes(snrm_bytes("21"), 0))  # flat 16: the meter
    assert ua.frame_type is FrameType.UA and ua.source_address == 16


def test_two_spellings_of_one_device_are_two_links() -> None:
    server = LinkServer(Devices(), addressing=Addressing.DLMS)
    server.receive_bytes(snrm_bytes("0221") + snrm_bytes("00020021"), 0)
    assert server.station_count == 2


def test_addressing_is_taken_by_name_too() -> None:
    assert LinkServer(Devices(), addressing="dlms").addressing is Addressing.DLMS  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# our own client


def test_device_client_in_dlms_mode_reaches_each_device_through_a_dlms_server(
        memory_link, manual_clock) -> None:
    devices = Devices()
    server = LinkServer(devices, addressing=Addressing.DLMS)
    client = DeviceClient(memory_link(server), clock=manual_clock, addressing=Addressing.DLMS)
    assert client.wire_address(16) == 144
    for device in (16, 1, 17):
        response = client.request(device, Request(Command.READ_METER_BALANCE, 5))
        assert response.body.meter_balance_pence == device
    assert devices.asked == [16, 1, 17]
    client.close()


def test_device_client_in_flat_mode_gets_no_answer_from_a_dlms_pair_it_did_not_mean(
        memory_link, manual_clock) -> None:
    # flat 144 through a DLMS server is logical 1, physical 16: the meter answers
    devices = Devices()
    client = DeviceClient(memory_link(LinkServer(devices, addressing=Addressing.DLMS)),
                          clock=manual_clock)
    assert client.wire_address(144) == 144
    client.request(144, Request(Command.READ_METER_BALANCE, 5))
    assert devices.asked == [16]
    client.close()
