"""Encode and decode of whole APDUs with typed bodies: our codec against Construct interpreted,
side by side in one run (one benchmark group per operation and body).

- ``ours``: :func:`protocol.apdu.encode_request` / ``encode_response`` / ``decode_apdu`` as the
  product runs them: a fixed-size body through its ``struct`` codec derived from the layout
  (:mod:`protocol.apdu_codec`), anything else through Construct;
- ``construct``: the same functions with the fast path switched off (no fixed codecs), so every
  body goes through the interpreted Construct reference: what every APDU cost before.

The bodies: an empty request (every READ_*), READ_METER_BALANCE's ``Balances`` (two integers),
ADJUST_METER_BALANCE's request (one), READ_PREPAYMENT_CONFIGURATION's
``PrepaymentConfiguration`` (15 fields: enums, flags, integers), SET_PAYMENT_MODE's request (a
nested record) and READ_FIRMWARE_VERSION's ``FirmwareStatus`` (text: no fast codec, Construct
in both rows, for scale).

Compare: ``pytest benchmarks/test_apdu_codec.py --benchmark-only
--benchmark-columns=min,median,mean,rounds``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from protocol import apdu
from protocol.apdu import (
    AdjustMeterBalanceRequest,
    Balances,
    Command,
    FirmwareStatus,
    PaymentMode,
    PrepaymentConfiguration,
    PrepaymentDefaults,
    Request,
    Response,
    SetPaymentModeRequest,
    Status,
    decode_apdu,
    encode_request,
    encode_response,
)

_CONFIGURATION = PrepaymentConfiguration(
    payment_mode=PaymentMode.PREPAYMENT, disablement_threshold_pence=-500,
    suspend_debt_disabled=True, suspend_debt_emergency=False,
    emergency_credit_limit_pence=1000, emergency_credit_threshold_pence=200,
    low_credit_threshold_pence=300, max_meter_balance_pence=100000,
    max_credit_threshold_pence=5000, debt_recovery_rate_cap_pence=100,
    low_emergency_credit_threshold_pence=50, cut_off_grace_period_minutes=30,
    keypad_lock_timeout_seconds=60, non_disablement_calendar_id=1, utrn_type=2)

#: name -> the message (its invoke id 7)
MESSAGES: dict[str, Request | Response] = {
    "empty request": Request(Command.READ_METER_BALANCE, 7),
    "Balances response": Response(Command.READ_METER_BALANCE, 7, Status.SUCCESS,
                                  body=Balances(meter_balance_pence=1250,
                                                emergency_credit_balance_pence=-10)),
    "AdjustMeterBalance request": Request(Command.ADJUST_METER_BALANCE, 7,
                                          body=AdjustMeterBalanceRequest(adjustment_pence=-250)),
    "PrepaymentConfiguration response": Response(Command.READ_PREPAYMENT_CONFIGURATION, 7,
                                                 Status.SUCCESS, body=_CONFIGURATION),
    "SetPaymentMode request (nested)": Request(
        Command.SET_PAYMENT_MODE, 7, body=SetPaymentModeRequest(
            payment_mode=PaymentMode.PREPAYMENT, disablement_threshold_pence=-500,
            suspend_debt_disabled=False, suspend_debt_emergency=True,
            defaults=PrepaymentDefaults(
                emergency_credit_limit_pence=1000, emergency_credit_threshold_pence=200,
                low_credit_threshold_pence=300, max_meter_balance_pence=100000,
                max_credit_threshold_pence=5000, debt_recovery_rate_cap_pence=100,
                low_emergency_credit_threshold_pence=50, cut_off_grace_period_minutes=30,
                keypad_lock_timeout_seconds=60, non_disablement_calendar_id=1, utrn_type=2))),
    "FirmwareStatus response (Construct)": Response(
        Command.READ_FIRMWARE_VERSION, 7, Status.SUCCESS, body=FirmwareStatus(
            running_version="1.2.3", pending_version="", pending_activation_time_seconds=0,
            transfer_in_progress=False, pending_image_sha256=bytes(32))),
}
#: what each message's bytes are, written out (ours and Construct must both give them)
EXPECTED_HEX = {
    "empty request": "01 0007 03",
    "Balances response": "81 0007 03 00 000004e2 fffffff6",
    "AdjustMeterBalance request": "01 0007 21 ffffff06",
    "PrepaymentConfiguration response": (
        "81 0007 02 00 01 fffffe0c 01 00 000003e8 000000c8 0000012c 000186a0 00001388 00000064"
        " 00000032 001e 003c 01 02"),
    "SetPaymentMode request (nested)": (
        "01 0007 20 01 fffffe0c 00 01 000003e8 000000c8 0000012c 000186a0 00001388 00000064"
        " 00000032 001e 003c 01 02"),
    "FirmwareStatus response (Construct)": "81 0007 05 00 05 312e322e33 00 00000000 00"
                                           + " 00" * 32,
}


@pytest.fixture(params=["ours", "construct"])
def codec(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "construct":
        monkeypatch.setattr(apdu, "_FIXED_CODECS", {})
        monkeypatch.setattr(apdu, "_FIXED_DECODERS", {})
    yield request.param


def _encoder(message: Request | Response) -> Callable[[], bytes]:
    if isinstance(message, Request):
        return lambda: encode_request(message)
    return lambda: encode_response(message)


@pytest.mark.parametrize("name", list(MESSAGES))
def test_encode(record_environment: BenchmarkFixture, codec: str, name: str) -> None:
    record_environment.group = f"apdu encode {name}"
    record_environment.extra_info.update(apdu_codec=codec, body=name)
    data = record_environment(_encoder(MESSAGES[name]))
    assert data == bytes.fromhex(EXPECTED_HEX[name])


@pytest.mark.parametrize("name", list(MESSAGES))
def test_decode(record_environment: BenchmarkFixture, codec: str, name: str) -> None:
    record_environment.group = f"apdu decode {name}"
    record_environment.extra_info.update(apdu_codec=codec, body=name)
    data = bytes.fromhex(EXPECTED_HEX[name])
    decoded: Any = record_environment(decode_apdu, data)
    assert decoded == MESSAGES[name]
    assert type(decoded.body) is type(MESSAGES[name].body)

