"""What a device keeps of a keyed request, pinned value by value: the 16-byte digest stored in
state files (SHA-256 of the request APDU with invoke id 0 and no key), the answer to a resend
(this request's invoke id, the stored status and body), and which keys a device forgets."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import cast

from emulator.device import EmulatedDevice
from emulator.idempotency import (
    AppliedRequest,
    known_response,
    remember,
    request_digest,
)
from protocol.apdu import (
    AdjustMeterBalanceRequest,
    AdjustMeterBalanceResponse,
    Command,
    Request,
    Response,
    Status,
    encode_response,
)

KEY = bytes(range(16))
OTHER_KEY = bytes(range(1, 17))
#: ADJUST_METER_BALANCE (0x21) by the invoke id 0, adjustment_pence 250, no key
UNKEYED_ADJUST_250_APDU = bytes.fromhex("01000021000000fa")


@dataclass
class _Device:
    """All of a device that known_response and remember read or write."""

    applied_requests: dict[bytes, AppliedRequest] = field(default_factory=dict)


def _esme() -> EmulatedDevice:
    return cast(EmulatedDevice, _Device())


def _adjust(invoke_id: int, pence: int, key: bytes | None = KEY) -> Request:
    return Request(Command.ADJUST_METER_BALANCE, invoke_id,
                   body=AdjustMeterBalanceRequest(adjustment_pence=pence),
                   idempotency_key=key)


def _applied(pence: int, *, balance_pence: int = 1500) -> Response:
    return Response(Command.ADJUST_METER_BALANCE, 1, Status.SUCCESS,
                    body=AdjustMeterBalanceResponse(adjustment_applied_pence=pence,
                                                    meter_balance_pence=balance_pence))


def test_the_digest_is_16_bytes_of_sha256_over_the_request_with_invoke_id_0_and_no_key() -> None:
    expected = hashlib.sha256(UNKEYED_ADJUST_250_APDU).digest()[:16]
    assert expected == bytes.fromhex("3bddf16de540c9dbff481f9d2b0bb97d")
    assert request_digest(_adjust(7, 250)) == expected
    assert request_digest(_adjust(200, 250, key=OTHER_KEY)) == expected
    assert request_digest(_adjust(7, 250, key=None)) == expected
    assert request_digest(_adjust(7, 251)) != expected


def test_remember_stores_the_digest_and_the_encoded_response_under_the_key() -> None:
    device = _esme()
    response = _applied(250)
    remember(device, _adjust(3, 250), response)
    assert device.applied_requests == {KEY: AppliedRequest(
        bytes.fromhex("3bddf16de540c9dbff481f9d2b0bb97d"), encode_response(response))}


def test_an_unkeyed_request_is_not_remembered() -> None:
    device = _esme()
    remember(device, _adjust(3, 250, key=None), _applied(250))
    assert device.applied_requests == {}


def test_a_resend_gets_the_stored_status_and_body_under_its_own_invoke_id() -> None:
    device = _esme()
    remember(device, _adjust(3, 250), _applied(250))
    answer = known_response(device, _adjust(9, 250))
    assert answer is not None
    assert (answer.command, answer.invoke_id, answer.status) == (
        Command.ADJUST_METER_BALANCE, 9, Status.SUCCESS)
    assert answer.body == AdjustMeterBalanceResponse(adjustment_applied_pence=250,
                                                     meter_balance_pence=1500)


def test_a_stored_refusal_is_answered_as_that_refusal_without_a_body() -> None:
    device = _esme()
    refusal = Response(Command.ADJUST_METER_BALANCE, 3, Status.VALUE_OUT_OF_RANGE)
    remember(device, _adjust(3, 250), refusal)
    answer = known_response(device, _adjust(4, 250))
    assert answer is not None
    assert (answer.command, answer.invoke_id, answer.status, answer.body) == (
        Command.ADJUST_METER_BALANCE, 4, Status.VALUE_OUT_OF_RANGE, None)


def test_the_same_key_with_another_request_is_key_reused_with_this_invoke_id() -> None:
    device = _esme()
    remember(device, _adjust(3, 250), _applied(250))
    answer = known_response(device, _adjust(5, 100))
    assert answer is not None
    assert (answer.command, answer.invoke_id, answer.status, answer.body) == (
        Command.ADJUST_METER_BALANCE, 5, Status.IDEMPOTENCY_KEY_REUSED, None)


def test_an_unknown_key_or_no_key_has_no_known_response() -> None:
    device = _esme()
    remember(device, _adjust(3, 250), _applied(250))
    assert known_response(device, _adjust(4, 250, key=OTHER_KEY)) is None
    assert known_response(device, _adjust(4, 250, key=None)) is None


def test_a_device_holds_exactly_64_keys_dropping_the_oldest_first() -> None:
    device = _esme()
    keys = [index.to_bytes(16, "big") for index in range(66)]
    for index, key in enumerate(keys[:64]):
        remember(device, _adjust(index, 1, key), _applied(1))
    assert list(device.applied_requests) == keys[:64]
    remember(device, _adjust(64, 1, keys[64]), _applied(1))
    assert list(device.applied_requests) == keys[1:65]
    remember(device, _adjust(65, 1, keys[65]), _applied(1))
    assert list(device.applied_requests) == keys[2:66]
