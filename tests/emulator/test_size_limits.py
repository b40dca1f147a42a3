"""Every documented size limit holds on the wire: a FIRMWARE_BLOCK is 1-1024 bytes, a
SCHEDULE_REQUEST holds at most 1050 bytes, and what a client can make a device hold in its
schedule is bounded (issue 12.7: 60,000-byte blocks held in the schedule grew the state to
11.5 MB and slowed every later command)."""

from __future__ import annotations

from pathlib import Path

from emulator.clock import VirtualClock
from emulator.profile import Profile
from emulator.scheduler import MAX_SCHEDULED_REQUESTS_PER_DEVICE
from emulator.world import EmulatedWorld
from protocol.apdu import (
    AdvanceDeviceTimeRequest,
    Command,
    FirmwareBeginRequest,
    FirmwareBlockResponse,
    Request,
    Response,
    ScheduledEntry,
    Status,
    decode_apdu,
    encode_request,
)

ESME_ADDRESS = 16


def _world(path: Path | None = None) -> EmulatedWorld:
    profile = Profile.default()
    return EmulatedWorld(profile, VirtualClock(profile.start_device_time_seconds),
                         state_path=path)


def _block_request_bytes(data_size: int, *, command: int = 0x51) -> bytes:
    """A FIRMWARE_BLOCK request written out by hand (the encoder refuses a bad size)."""
    return (bytes((0x01, 0x00, 0x07, command)) + (0).to_bytes(4, "big")
            + data_size.to_bytes(2, "big") + bytes(data_size))


def _schedule_bytes(execution_time_seconds: int, inner: bytes) -> bytes:
    return (bytes((0x01, 0x00, 0x08, 0x70)) + execution_time_seconds.to_bytes(4, "big")
            + len(inner).to_bytes(2, "big") + inner)


def _answer(world: EmulatedWorld, data: bytes) -> Response:
    response = decode_apdu(world.handle_apdu(ESME_ADDRESS, data) or b"")
    assert isinstance(response, Response)
    return response


def test_a_firmware_block_of_0_or_more_than_1024_bytes_is_malformed_on_the_wire() -> None:
    world = _world()
    assert world.handle_request(ESME_ADDRESS, Request(
        Command.FIRMWARE_BEGIN, 1, body=FirmwareBeginRequest(image_size_bytes=70_000))).ok
    for size in (0, 1025, 60_000):
        assert _answer(world, _block_request_bytes(size)).status is Status.MALFORMED_REQUEST
    assert _answer(world, _block_request_bytes(1024)).body == FirmwareBlockResponse(
        bytes_received=1024)


def test_a_scheduled_request_longer_than_1050_bytes_is_refused_and_nothing_is_held(
        tmp_path: Path) -> None:
    world = _world(tmp_path / "state.db")
    later = world.now_seconds + 3600
    huge = _schedule_bytes(later, _block_request_bytes(60_000))
    assert _answer(world, huge).status is Status.MALFORMED_REQUEST
    longest = bytes((0x02, 0x00, 0x09, 0x51)) + bytes(16) + _block_request_bytes(1024)[4:]
    assert len(longest) == 1050
    assert _answer(world, _schedule_bytes(later, longest)).ok
    assert _answer(world, _schedule_bytes(later, longest + b"\x00")).status \
        is Status.MALFORMED_REQUEST
    scheduled = world.handle_request(ESME_ADDRESS, Request(
        Command.READ_SCHEDULED_REQUESTS, 2)).body.scheduled
    assert scheduled == (ScheduledEntry(scheduled_command=0x51, execution_time_seconds=later),)


def test_a_device_holds_at_most_one_entry_per_schedulable_command() -> None:
    world = _world()
    later = world.now_seconds + 3600
    for code in range(0x100):
        inner = bytes((0x01, 0x00, 0x01, code))
        for extra in range(3):  # scheduling a command again replaces its entry
            _answer(world, _schedule_bytes(later + extra, inner))
    scheduled = world.handle_request(ESME_ADDRESS, Request(
        Command.READ_SCHEDULED_REQUESTS, 2)).body.scheduled
    assert len(scheduled) == len({entry.scheduled_command for entry in scheduled})
    assert 0 < len(scheduled) <= MAX_SCHEDULED_REQUESTS_PER_DEVICE == 38


def test_the_documented_advance_device_time_example_decodes_to_its_fields() -> None:
    request = decode_apdu(bytes.fromhex("0100057E00000E1006733363726574"))
    assert request == Request(Command.ADVANCE_DEVICE_TIME, 5, body=AdvanceDeviceTimeRequest(
        advance_seconds=3600, management_password="s3cret"))
    assert encode_request(Request(Command.ADVANCE_DEVICE_TIME, 5,
                                  body=AdvanceDeviceTimeRequest(advance_seconds=60))) \
        == bytes.fromhex("0100057E0000003C00")
