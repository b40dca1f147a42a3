"""The state file's per-field codecs: meter registers and the HAN, typed in memory, JSON on disk."""

from __future__ import annotations

import json

import pytest

from emulator.errors import StateError
from emulator.hub import Han
from emulator.meter import Meter
from emulator.meter_config import MeterConfig
from emulator.state_codecs import (
    decode_han,
    decode_meter_registers,
    encode_han,
    encode_meter_registers,
)
from protocol.apdu import (
    DebtRecoveryPeriod,
    DebtRegister,
    DeviceType,
    PaymentMode,
    SupplyOffReason,
    SupplyState,
)

HUB = bytes.fromhex("00DB1234567890A0")
METER = bytes.fromhex("00DB1234567890A1")
T0 = 1_767_603_600


def prepay_meter() -> Meter:
    config = MeterConfig.from_mapping(
        {"payment_mode": "prepayment", "supply_state": "armed", "load_w": 1_000,
         "time_debt_1_pence": 50, "time_debt_1_recovery_rate_pence": 3,
         "time_debt_1_recovery_period": "hourly"},
        eui64=METER, device_type=DeviceType.ELECTRICITY_METER)
    return Meter(config, T0)


def test_meter_registers_are_enums_in_memory_and_ints_in_the_state() -> None:
    meter = prepay_meter()
    registers = meter.registers
    assert registers.payment_mode is PaymentMode.PREPAYMENT
    assert registers.supply_state is SupplyState.ARMED
    assert registers.supply_off_reason is SupplyOffReason.REMOTE
    time_debt_1 = registers.debts[DebtRegister.TIME_DEBT_1]
    assert time_debt_1.debt_recovery_period is DebtRecoveryPeriod.HOURLY
    state = json.loads(json.dumps(encode_meter_registers(registers)))
    assert (state["payment_mode"], state["supply_state"], state["supply_off_reason"]) == (1, 2, 1)
    assert state["debts"]["TIME_DEBT_1"] == {
        "debt_value_pence": 50, "debt_recovery_rate_pence": 3, "debt_recovery_period": 1,
        "debt_recovery_percentage": 0}
    assert decode_meter_registers(state) == registers


def test_a_run_time_load_is_a_list_of_pairs_in_the_state() -> None:
    meter = prepay_meter()
    meter.set_load_profile(((0, 500), (43_200, 2_000)))
    state = encode_meter_registers(meter.registers)
    assert state["load_profile_override"] == [[0, 500], [43_200, 2_000]]
    assert decode_meter_registers(state).load_profile_override == ((0, 500), (43_200, 2_000))


@pytest.mark.parametrize(("register", "value"), [
    ("payment_mode", 7),
    ("supply_state", True),
    ("debts", {"TIME_DEBT_1": {}}),
    ("load_profile_override", [[0, 1, 2]]),
    ("utrn_used_counters", ["3"]),
])
def test_a_register_of_the_wrong_shape_is_a_state_error_naming_it(register: str,
                                                                   value: object) -> None:
    state = {**encode_meter_registers(prepay_meter().registers), register: value}
    with pytest.raises(StateError, match=register):
        decode_meter_registers(state)


def test_a_missing_required_register_is_a_state_error() -> None:
    state = encode_meter_registers(prepay_meter().registers)
    del state["payment_mode"]
    with pytest.raises(StateError, match="payment_mode"):
        decode_meter_registers(state)


def add(han: Han, eui64: bytes, minutes: int, now: int = T0) -> None:
    status, _ = han.add_device(eui64, minutes, now)
    assert status.name == "SUCCESS"


def test_han_state_round_trip_keeps_entries_and_lock() -> None:
    han = Han(HUB)
    han.add_joined(METER)
    add(han, HUB[:7] + b"\x05", 4)
    han.acquire(METER)
    restored = decode_han(HUB, encode_han(han))
    assert restored.entries == han.entries
    assert restored.holder_eui64 == METER


@pytest.mark.parametrize("state", [
    {"entries": []},
    {"entries": [{"device_eui64": "zz", "state": "JOINED", "join_window_closes_at_seconds": 0}],
     "transfer_lock_holder_eui64": None},
    {"entries": [{"device_eui64": METER.hex(), "state": "LOST",
                  "join_window_closes_at_seconds": 0}], "transfer_lock_holder_eui64": None},
    {"entries": [{"device_eui64": METER.hex(), "state": "JOINED",
                  "join_window_closes_at_seconds": -1}], "transfer_lock_holder_eui64": None},
])
def test_bad_han_state_is_a_state_error(state: dict) -> None:
    with pytest.raises(StateError):
        decode_han(HUB, state)
