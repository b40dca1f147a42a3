"""Every status docs/protocol.md section 9 lists, provoked by a request on the wire (issue 10
point 11): bytes in through EmulatedWorld.handle_apdu, the status byte out."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from emulator.clock import VirtualClock
from emulator.firmware import build_image
from emulator.management import ManagementPolicy
from emulator.profile import Profile
from emulator.utrn import UtrnValueClass, make_utrn
from emulator.world import EmulatedWorld
from protocol.apdu import (
    Command,
    Request,
    Response,
    Status,
    SupplyState,
    decode_apdu,
    encode_request,
)

HUB, ESME, GSME = 2, 16, 17  # the default profile's server addresses
ESME_EUI64 = bytes.fromhex("00DB1234567890A1")
OTHER_EUI64 = bytes.fromhex("00DB1234567890FF")
IMAGE = build_image("Secure Meters", "LIBERTY100", "9.9.9", b"payload" * 100)


class Wire:
    """The default world; requests go in as APDU bytes, statuses come out of the bytes."""

    def __init__(self) -> None:
        profile = Profile.default()
        self.world = EmulatedWorld(profile, VirtualClock(profile.start_device_time_seconds))

    def raw(self, address: int, apdu: bytes) -> Status:
        """The status byte (APDU offset 4, docs/protocol.md section 7) of the answer."""
        answer = self.world.handle_apdu(address, apdu)
        assert answer is not None and answer[0] == 0x81 and answer[1:4] == apdu[1:4]
        if answer[4] != Status.SUCCESS:
            assert len(answer) == 5  # no body with a failure status
        return Status(answer[4])

    def send(self, address: int, command: Command, **fields: object) -> Status:
        return self.raw(address, encode_request(Request(command, 1, dict(fields))))

    def top_up(self, utrn: str | bytes) -> Status:
        data = utrn.encode() if isinstance(utrn, str) else utrn
        return self.send(ESME, Command.TOP_UP, utrn=data)

    def firmware_to_esme(self, image: bytes) -> Status:
        self.send(ESME, Command.FIRMWARE_BEGIN, image_size_bytes=len(image))
        self.send(ESME, Command.FIRMWARE_BLOCK, block_offset_bytes=0, block_data=image)
        return self.send(ESME, Command.FIRMWARE_VERIFY)


def _utrn(counter: int, pounds: int, eui64: bytes = ESME_EUI64) -> str:
    return make_utrn(eui64, counter, UtrnValueClass.POUNDS, pounds)


def _malformed(w: Wire) -> Status:  # a 19-digit UTRN: the body is one byte short
    return w.raw(ESME, encode_request(Request(Command.TOP_UP, 1, {
        "utrn": _utrn(1, 1).encode()}))[:-1])


def _unknown_command(w: Wire) -> Status:
    apdu = bytearray(encode_request(Request(Command.READ_METER_BALANCE, 1, {})))
    apdu[3] = 0xEE
    return w.raw(ESME, bytes(apdu))


def _check_digit(w: Wire) -> Status:
    good = _utrn(1, 1)
    return w.top_up(good[:-1] + str((int(good[-1]) + 1) % 10))


def _duplicate(w: Wire) -> Status:
    assert w.top_up(_utrn(7, 1)) is Status.SUCCESS
    return w.top_up(_utrn(7, 1))


def _exceeds_max_meter_balance_by_top_up(w: Wire) -> Status:
    for counter in (1, 2):  # 12.50 + 100 + 100 GBP; max meter balance 250 GBP
        assert w.top_up(_utrn(counter, 100)) is Status.SUCCESS
    return w.top_up(_utrn(3, 100))


def _locked(w: Wire) -> Status:
    for _ in range(5):
        w.top_up(_utrn(1, 1, OTHER_EUI64))
    return w.top_up(_utrn(1, 1))


def _han_full(w: Wire) -> Status:
    statuses = [w.send(HUB, Command.HAN_ADD_DEVICE, device_eui64=bytes([0, 0xDB, 0, 0, 0, 0, 0,
                                                                          n]),
                       join_window_minutes=10) for n in range(1, 12)]
    return statuses[-1]


def _in_progress(w: Wire) -> Status:
    assert w.send(HUB, Command.FIRMWARE_BEGIN, image_size_bytes=10) is Status.SUCCESS
    return w.send(ESME, Command.FIRMWARE_BEGIN, image_size_bytes=10)


def _out_of_order(w: Wire) -> Status:
    w.send(ESME, Command.FIRMWARE_BEGIN, image_size_bytes=10)
    return w.send(ESME, Command.FIRMWARE_BLOCK, block_offset_bytes=5, block_data=b"x")


def _not_authorised(w: Wire) -> Status:
    w.world.management = ManagementPolicy(password="s3cret")  # as serve with a password
    return w.send(1, Command.ADVANCE_DEVICE_TIME, advance_seconds=60,
                  management_password="wrong")


def _key_reused(w: Wire) -> Status:
    key = bytes(range(16))

    def adjust(pence: int) -> Status:
        return w.raw(ESME, encode_request(Request(
            Command.ADJUST_METER_BALANCE, 1, {"adjustment_pence": pence}, idempotency_key=key)))

    assert adjust(100) is Status.SUCCESS
    return adjust(200)  # the same key on another request


def _bad_hash(w: Wire) -> Status:
    return w.firmware_to_esme(IMAGE[:-1] + bytes([IMAGE[-1] ^ 1]))


PROVOKE: dict[Status, Callable[[Wire], Status]] = {
    Status.SUCCESS: lambda w: w.send(ESME, Command.READ_METER_BALANCE),
    Status.MALFORMED_REQUEST: _malformed,
    Status.UNKNOWN_COMMAND: _unknown_command,
    Status.NOT_SUPPORTED_BY_DEVICE: lambda w: w.send(GSME, Command.READ_LOAD_LIMIT_DATA),
    Status.VALUE_OUT_OF_RANGE: lambda w: w.send(ESME, Command.ADJUST_METER_BALANCE,
                                                adjustment_pence=-2_147_483 - 1_251),
    Status.NOT_PERMITTED_IN_PAYMENT_MODE: lambda w: w.send(GSME,
                                                           Command.ACTIVATE_EMERGENCY_CREDIT),
    Status.NOT_PERMITTED_IN_STATE: lambda w: w.send(ESME, Command.SET_SUPPLY_STATE,
                                                    supply_state=SupplyState.ARMED),
    Status.EXCEEDS_MAX_METER_BALANCE: lambda w: w.send(ESME, Command.ADJUST_METER_BALANCE,
                                                       adjustment_pence=1_000_000),
    # 12.50 GBP is not below the 2 GBP emergency-credit threshold (section 9: code 08)
    Status.EMERGENCY_CREDIT_UNAVAILABLE: lambda w: w.send(ESME,
                                                          Command.ACTIVATE_EMERGENCY_CREDIT),
    Status.UTRN_INVALID_CHECK_DIGIT: _check_digit,
    Status.UTRN_WRONG_METER: lambda w: w.top_up(_utrn(1, 1, OTHER_EUI64)),
    Status.UTRN_DUPLICATE: _duplicate,
    Status.UTRN_EXCEEDS_MAX_CREDIT: lambda w: w.top_up(_utrn(1, 101)),
    Status.UTRN_EXCEEDS_MAX_METER_BALANCE: _exceeds_max_meter_balance_by_top_up,
    Status.UTRN_ENTRY_LOCKED: _locked,
    Status.UTRN_MALFORMED: lambda w: w.top_up(b"1234567890ABCDEFGHIJ"),
    Status.HAN_DEVICE_NOT_FOUND: lambda w: w.send(HUB, Command.HAN_REMOVE_DEVICE,
                                                  device_eui64=OTHER_EUI64),
    Status.HAN_TABLE_FULL: _han_full,
    Status.FIRMWARE_UPDATE_IN_PROGRESS: _in_progress,
    Status.FIRMWARE_NO_TRANSFER: lambda w: w.send(ESME, Command.FIRMWARE_BLOCK,
                                                  block_offset_bytes=0, block_data=b"x"),
    Status.FIRMWARE_BLOCK_OUT_OF_ORDER: _out_of_order,
    Status.FIRMWARE_WRONG_MODEL: lambda w: w.firmware_to_esme(
        build_image("Secure Meters", "SECURE-GSME", "9.9.9", b"payload")),
    Status.FIRMWARE_BAD_HASH: _bad_hash,
    Status.FIRMWARE_BAD_LENGTH: lambda w: w.firmware_to_esme(IMAGE + b"extra"),
    Status.FIRMWARE_BAD_HEADER: lambda w: w.firmware_to_esme(b"NOT A SEFW IMAGE" * 8),
    Status.FIRMWARE_NO_VERIFIED_IMAGE: lambda w: w.send(ESME, Command.FIRMWARE_ACTIVATE,
                                                        activation_time_seconds=0),
    Status.NOTHING_SCHEDULED: lambda w: w.send(ESME, Command.CANCEL_SCHEDULED_REQUEST,
                                               scheduled_command=int(Command.SET_PAYMENT_MODE)),
    Status.IDEMPOTENCY_KEY_REUSED: _key_reused,
    Status.NOT_AUTHORISED: _not_authorised,
}
#: Documented as reserved: the emulator never sends them.
RESERVED = {Status.DEVICE_BUSY}


@pytest.mark.parametrize("status", sorted(PROVOKE), ids=lambda status: status.name)
def test_each_documented_status_is_provoked_by_a_request(status: Status) -> None:
    assert PROVOKE[status](Wire()) is status


def test_every_status_is_either_provoked_or_documented_as_reserved() -> None:
    assert set(PROVOKE) | RESERVED == set(Status)
    assert not set(PROVOKE) & RESERVED


def test_nothing_held_answers_nothing_scheduled_with_no_body() -> None:
    wire = Wire()
    answer = decode_apdu(wire.world.handle_apdu(ESME, encode_request(Request(
        Command.CANCEL_SCHEDULED_REQUEST, 1, {"scheduled_command": 0x20}))))
    assert isinstance(answer, Response)
    assert (answer.status, answer.fields) == (Status.NOTHING_SCHEDULED, {})
