"""The emulated ESME and GSME: money, prepayment, emergency credit, top-up, debt, supply,
load limiting, profile keys and saved state. Every test drives the meter through
protocol.apdu Requests and checks that SUCCESS responses encode with exactly their fields."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulator.errors import ProfileError, StateError
from emulator.meter import METER_COMMANDS, Meter
from emulator.meter_config import PREPAYMENT_PARAMETERS, MeterConfig
from emulator.meter_tables import (
    NON_DISABLEMENT_CALENDARS,
    SUPPLY_TRANSITIONS,
    UTRN_LOCKOUT_SECONDS,
    SupplyEvent,
)
from emulator.state_codecs import decode_meter_registers, encode_meter_registers
from emulator.utrn import UtrnValueClass, make_utrn, verhoeff_check_digit
from protocol.apdu import (
    REQUEST_BODY_TYPES,
    RESPONSE_BODIES,
    Command,
    DebtRecoveryPeriod,
    DebtRegister,
    DeviceType,
    PaymentMode,
    PrepaymentConfigurationField,
    PrepaymentDefaults,
    Request,
    Response,
    SetPaymentModeRequest,
    Status,
    SupplyOffReason,
    SupplyState,
    decode_apdu,
    encode_response,
)

EUI = bytes.fromhex("00DB1234567890A0")
OTHER_EUI = bytes.fromhex("00DB1234567890A1")
ESME = DeviceType.ELECTRICITY_METER
GSME = DeviceType.GAS_METER
HOUR = 3_600
DAY = 86_400
#: 2026-01-01T12:00:00Z, a Thursday, outside calendar 1's non-disablement windows.
T0 = 1_767_225_600 + 12 * HOUR
ANNEX_C_DEFAULTS: dict[str, int] = {
    "emergency_credit_limit_pence": 500,
    "emergency_credit_threshold_pence": 100,
    "low_credit_threshold_pence": 200,
    "max_meter_balance_pence": 25_000,
    "max_credit_threshold_pence": 10_000,
    "debt_recovery_rate_cap_pence": 100_000,  # a cap no test reaches (0 p would be a cap of 0)
    "low_emergency_credit_threshold_pence": 50,
    "cut_off_grace_period_minutes": 0,
    "keypad_lock_timeout_seconds": 60,
    "non_disablement_calendar_id": 0,
    "utrn_type": 1,
}
#: A prepayment meter with every parameter configured, no consumption unless a test sets it.
PREPAY: dict[str, Any] = {
    "payment_mode": "prepayment",
    "meter_balance_pence": 1_000,
    "disablement_threshold_pence": 0,
    **ANNEX_C_DEFAULTS,
    "unit_rate_millipence_per_kwh": 36_000,  # 1 kW costs 1 p per 100 s
    "standing_charge_millipence_per_day": 0,
    "load_w": 0,
}


def make_meter(device_type: DeviceType = ESME, start_seconds: int = T0,
               **profile: Any) -> Meter:
    table = {"standing_charge_millipence_per_day": 0, **profile}
    if "load_profile" not in table:
        table.setdefault("load_w", 0)
    return Meter(MeterConfig.from_mapping(table, eui64=EUI, device_type=device_type),
                 start_seconds)


def prepay_meter(device_type: DeviceType = ESME, **overrides: Any) -> Meter:
    return make_meter(device_type, **{**PREPAY, **overrides})


def send(meter: Meter, command: Command, at_seconds: int | None = None,
         **fields: Any) -> Response:
    """Send one request; a SUCCESS response must carry exactly its body's fields and encode."""
    when = meter.device_time_seconds if at_seconds is None else at_seconds
    # a command the meter does not handle is sent without its body (the meter never reads it)
    request = (Request(command, 7, body=REQUEST_BODY_TYPES[command](**fields)) if fields
               or command in METER_COMMANDS else Request(command, 7, {}))
    response = meter.handle_request(request, when)
    assert response.invoke_id == 7 and response.command is command
    wire = encode_response(response)
    decoded = decode_apdu(wire)
    assert isinstance(decoded, Response) and decoded.status is response.status
    if response.status is Status.SUCCESS:
        body_fields = {sub.name for sub in RESPONSE_BODIES[command].subcons}
        assert set(response.fields) == body_fields
    else:
        assert response.fields == {}
    return response


def state_of(meter: Meter) -> dict[str, Any]:
    return json.loads(json.dumps(encode_meter_registers(meter.registers)))


def restarted(meter: Meter, config: MeterConfig | None = None) -> Meter:
    """The meter a restart makes from ``meter``'s saved state (through JSON)."""
    return Meter.restore(config or meter.config, decode_meter_registers(state_of(meter)))


def assert_refused_with_nothing_changed(meter: Meter, status: Status, command: Command,
                                        **fields: Any) -> None:
    before = state_of(meter)
    assert send(meter, command, **fields).status is status
    assert state_of(meter) == before


def payment_mode_fields(mode: PaymentMode = PaymentMode.PREPAYMENT, *,
                        disablement_threshold_pence: int = 0,
                        suspend_debt_disabled: bool = False,
                        suspend_debt_emergency: bool = False,
                        **defaults: int) -> dict[str, Any]:
    return {"payment_mode": mode, "disablement_threshold_pence": disablement_threshold_pence,
            "suspend_debt_disabled": suspend_debt_disabled,
            "suspend_debt_emergency": suspend_debt_emergency,
            "defaults": PrepaymentDefaults(**{**ANNEX_C_DEFAULTS, **defaults})}


def top_up(meter: Meter, counter: int, pounds: int = 0, pence: int = 0,
           eui64: bytes = EUI) -> Response:
    if pounds:
        utrn = make_utrn(eui64, counter, UtrnValueClass.POUNDS, pounds)
    else:
        utrn = make_utrn(eui64, counter, UtrnValueClass.PENNIES, pence)
    return send(meter, Command.TOP_UP, utrn=utrn.encode("ascii"))


def supply(meter: Meter) -> tuple[SupplyState, SupplyOffReason]:
    fields = send(meter, Command.READ_SUPPLY_STATUS).fields
    return fields["supply_state"], fields["supply_off_reason"]


def balance(meter: Meter) -> int:
    return send(meter, Command.READ_METER_BALANCE).body.meter_balance_pence


# ---------------------------------------------------------------------------------------------
# Reads and routing
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("device_type", [ESME, GSME])
@pytest.mark.parametrize("command", [
    Command.READ_INSTANTANEOUS_PREPAY_VALUES, Command.READ_PREPAYMENT_CONFIGURATION,
    Command.READ_METER_BALANCE, Command.READ_SUPPLY_STATUS,
])
def test_meter_reads_answer_with_exactly_their_fields(device_type: DeviceType,
                                                      command: Command) -> None:
    assert send(prepay_meter(device_type), command).status is Status.SUCCESS


def test_read_instantaneous_prepay_values_reports_registers_in_pence() -> None:
    meter = prepay_meter(time_debt_1_pence=300, time_debt_2_pence=20, payment_debt_pence=5)
    fields = send(meter, Command.READ_INSTANTANEOUS_PREPAY_VALUES).fields
    assert fields["meter_balance_pence"] == 1_000
    assert fields["accumulated_debt_pence"] == 325
    assert (fields["time_debt_1_pence"], fields["time_debt_2_pence"],
            fields["payment_debt_pence"]) == (300, 20, 5)
    assert fields["payment_mode"] is PaymentMode.PREPAYMENT
    assert fields["supply_state"] is SupplyState.ENABLED


@pytest.mark.parametrize("command", [Command.READ_FIRMWARE_VERSION, Command.HAN_ADD_DEVICE,
                                     Command.READ_CLOCK, Command.SCHEDULE_REQUEST])
def test_commands_the_meter_does_not_handle_are_not_supported_by_device(
        command: Command) -> None:
    assert_refused_with_nothing_changed(prepay_meter(), Status.NOT_SUPPORTED_BY_DEVICE, command)


@pytest.mark.parametrize("command", [Command.READ_LOAD_LIMIT_DATA,
                                     Command.RESET_LOAD_LIMIT_COUNTER])
def test_gsme_has_no_load_limiting(command: Command) -> None:
    assert_refused_with_nothing_changed(prepay_meter(GSME), Status.NOT_SUPPORTED_BY_DEVICE,
                                        command)


def test_gsme_refuses_load_limit_settings_with_nothing_changed() -> None:
    assert_refused_with_nothing_changed(
        prepay_meter(GSME), Status.NOT_SUPPORTED_BY_DEVICE, Command.SET_LOAD_LIMIT_SETTINGS,
        load_limit_power_threshold_w=1_000, load_limit_period_seconds=60,
        load_limit_restoration_period_seconds=60)




# ---------------------------------------------------------------------------------------------
# 18.3 / 18.16 meter balance adjustment
# ---------------------------------------------------------------------------------------------


def test_18_3_adjustment_adds_whole_pence_and_reports_applied_and_resulting_balance() -> None:
    meter = prepay_meter()
    response = send(meter, Command.ADJUST_METER_BALANCE, adjustment_pence=556)
    assert response.fields == {"adjustment_applied_pence": 556, "meter_balance_pence": 1_556}
    assert balance(meter) == 1_556


def test_18_3_negative_adjustment_takes_from_the_balance() -> None:
    meter = make_meter(meter_balance_pence=100)
    response = send(meter, Command.ADJUST_METER_BALANCE, adjustment_pence=-250)
    assert response.fields == {"adjustment_applied_pence": -250, "meter_balance_pence": -150}


def test_18_3_adjustment_above_max_meter_balance_is_refused_with_nothing_changed() -> None:
    meter = prepay_meter(max_meter_balance_pence=1_500)
    assert_refused_with_nothing_changed(meter, Status.EXCEEDS_MAX_METER_BALANCE,
                                        Command.ADJUST_METER_BALANCE, adjustment_pence=501)
    assert send(meter, Command.ADJUST_METER_BALANCE, adjustment_pence=500).ok


def test_18_3_reset_meter_balance_sets_it_to_zero() -> None:
    meter = make_meter(meter_balance_pence=-4_321)
    assert send(meter, Command.RESET_METER_BALANCE).fields == {"meter_balance_pence": 0}
    assert balance(meter) == 0


# ---------------------------------------------------------------------------------------------
# 18.4 change to prepayment
# ---------------------------------------------------------------------------------------------


def test_18_4_change_to_prepayment_carries_the_balance_over_unchanged() -> None:
    meter = make_meter(meter_balance_pence=-1_234)
    assert send(meter, Command.SET_PAYMENT_MODE, **payment_mode_fields(
        disablement_threshold_pence=-5_000)).ok
    assert balance(meter) == -1_234


def test_18_4_unconfigured_parameters_take_the_defaults_configured_ones_keep_theirs() -> None:
    meter = make_meter(emergency_credit_limit_pence=750, max_meter_balance_pence=9_999)
    fields = send(meter, Command.SET_PAYMENT_MODE, **payment_mode_fields()).fields
    assert fields["emergency_credit_limit_pence"] == 750
    assert fields["max_meter_balance_pence"] == 9_999
    for name in set(PREPAYMENT_PARAMETERS) - {"emergency_credit_limit_pence",
                                               "max_meter_balance_pence"}:
        assert fields[name] == ANNEX_C_DEFAULTS[name], name


def test_18_4_change_to_prepayment_stores_threshold_and_suspend_flags_ec_not_active() -> None:
    meter = make_meter(meter_balance_pence=50)
    fields = send(meter, Command.SET_PAYMENT_MODE, **payment_mode_fields(
        disablement_threshold_pence=-200, suspend_debt_disabled=True,
        suspend_debt_emergency=True)).fields
    assert fields["payment_mode"] is PaymentMode.PREPAYMENT
    assert fields["disablement_threshold_pence"] == -200
    assert fields["suspend_debt_disabled"] and fields["suspend_debt_emergency"]
    values = send(meter, Command.READ_INSTANTANEOUS_PREPAY_VALUES).fields
    assert not values["emergency_credit_active"]
    assert values["emergency_credit_balance_pence"] == 0


def test_18_4_defaults_apply_only_once_later_defaults_do_not_overwrite() -> None:
    meter = make_meter()
    send(meter, Command.SET_PAYMENT_MODE, **payment_mode_fields())
    send(meter, Command.SET_PAYMENT_MODE, **payment_mode_fields(PaymentMode.CREDIT))
    fields = send(meter, Command.SET_PAYMENT_MODE, **payment_mode_fields(
        emergency_credit_limit_pence=1)).fields
    assert fields["emergency_credit_limit_pence"] == 500


def test_18_4_after_change_to_prepayment_supply_follows_prepayment_rules() -> None:
    meter = make_meter(meter_balance_pence=-10)
    assert supply(meter) == (SupplyState.ENABLED, SupplyOffReason.NONE)
    send(meter, Command.SET_PAYMENT_MODE, **payment_mode_fields(disablement_threshold_pence=0))
    assert supply(meter) == (SupplyState.DISABLED, SupplyOffReason.NO_CREDIT)


def test_18_4_change_to_prepayment_with_an_unknown_calendar_is_refused_with_nothing_changed(
) -> None:
    unknown = max(NON_DISABLEMENT_CALENDARS) + 1
    assert_refused_with_nothing_changed(
        make_meter(), Status.VALUE_OUT_OF_RANGE, Command.SET_PAYMENT_MODE,
        **payment_mode_fields(non_disablement_calendar_id=unknown))


def test_change_to_credit_mode_lifts_a_no_credit_disablement_to_armed() -> None:
    meter = prepay_meter(meter_balance_pence=-5)
    assert supply(meter) == (SupplyState.DISABLED, SupplyOffReason.NO_CREDIT)
    send(meter, Command.SET_PAYMENT_MODE, **payment_mode_fields(PaymentMode.CREDIT))
    assert supply(meter)[0] is SupplyState.ARMED


def test_credit_mode_never_disables_for_lack_of_credit() -> None:
    meter = make_meter(meter_balance_pence=-50_000, disablement_threshold_pence=0)
    meter.advance_to(T0 + 10 * DAY)
    assert supply(meter) == (SupplyState.ENABLED, SupplyOffReason.NONE)


# ---------------------------------------------------------------------------------------------
# Prepayment configuration (18.27: thresholds in pence)
# ---------------------------------------------------------------------------------------------


def test_set_prepayment_configuration_applies_only_the_fields_present() -> None:
    meter = prepay_meter()
    fields = send(meter, Command.SET_PREPAYMENT_CONFIGURATION,
                  fields_present=(PrepaymentConfigurationField.LOW_CREDIT_THRESHOLD
                                  | PrepaymentConfigurationField.DISABLEMENT_THRESHOLD),
                  debt_recovery_rate_cap_pence=1, emergency_credit_limit_pence=2,
                  emergency_credit_threshold_pence=3, low_credit_threshold_pence=556,
                  max_meter_balance_pence=5, max_credit_threshold_pence=6,
                  disablement_threshold_pence=-7).fields
    assert fields["low_credit_threshold_pence"] == 556
    assert fields["disablement_threshold_pence"] == -7
    assert fields["emergency_credit_limit_pence"] == 500
    assert fields["max_meter_balance_pence"] == 25_000


def test_set_prepayment_configuration_negative_limit_is_refused_with_nothing_changed() -> None:
    assert_refused_with_nothing_changed(
        prepay_meter(), Status.VALUE_OUT_OF_RANGE, Command.SET_PREPAYMENT_CONFIGURATION,
        fields_present=PrepaymentConfigurationField.EMERGENCY_CREDIT_LIMIT,
        debt_recovery_rate_cap_pence=0, emergency_credit_limit_pence=-1,
        emergency_credit_threshold_pence=0, low_credit_threshold_pence=0,
        max_meter_balance_pence=0, max_credit_threshold_pence=0, disablement_threshold_pence=0)


def test_18_5_thresholds_are_compared_with_the_balance_in_pence() -> None:
    meter = prepay_meter(meter_balance_pence=100, disablement_threshold_pence=100)
    assert supply(meter)[0] is SupplyState.ENABLED  # 100 is not below 100
    send(meter, Command.ADJUST_METER_BALANCE, adjustment_pence=-1)
    assert supply(meter) == (SupplyState.DISABLED, SupplyOffReason.NO_CREDIT)


# ---------------------------------------------------------------------------------------------
# Emergency credit (18.5, 18.8)
# ---------------------------------------------------------------------------------------------


def test_18_5_emergency_credit_limit_zero_makes_emergency_credit_unavailable() -> None:
    meter = prepay_meter(meter_balance_pence=0, emergency_credit_limit_pence=0)
    assert_refused_with_nothing_changed(meter, Status.EMERGENCY_CREDIT_UNAVAILABLE,
                                        Command.ACTIVATE_EMERGENCY_CREDIT)


def test_18_8_activation_makes_the_full_limit_available_below_the_threshold() -> None:
    meter = prepay_meter(meter_balance_pence=99)  # threshold 100, limit 500
    response = send(meter, Command.ACTIVATE_EMERGENCY_CREDIT)
    assert response.fields == {"meter_balance_pence": 99, "emergency_credit_balance_pence": 500}
    assert send(meter, Command.READ_INSTANTANEOUS_PREPAY_VALUES).body.emergency_credit_active


def test_18_8_activation_at_or_above_the_threshold_is_refused_with_nothing_changed() -> None:
    assert_refused_with_nothing_changed(prepay_meter(meter_balance_pence=100),
                                        Status.EMERGENCY_CREDIT_UNAVAILABLE,
                                        Command.ACTIVATE_EMERGENCY_CREDIT)


def test_18_8_activation_in_credit_mode_is_refused_with_nothing_changed() -> None:
    meter = make_meter(meter_balance_pence=0, emergency_credit_limit_pence=500,
                       emergency_credit_threshold_pence=100)
    assert_refused_with_nothing_changed(meter, Status.NOT_PERMITTED_IN_PAYMENT_MODE,
                                        Command.ACTIVATE_EMERGENCY_CREDIT)


def test_18_8_activation_twice_is_refused_with_nothing_changed() -> None:
    meter = prepay_meter(meter_balance_pence=0)
    assert send(meter, Command.ACTIVATE_EMERGENCY_CREDIT).ok
    assert_refused_with_nothing_changed(meter, Status.NOT_PERMITTED_IN_STATE,
                                        Command.ACTIVATE_EMERGENCY_CREDIT)


def test_emergency_credit_re_arms_a_supply_disabled_for_no_credit() -> None:
    meter = prepay_meter(meter_balance_pence=-10)
    assert supply(meter)[0] is SupplyState.DISABLED
    send(meter, Command.ACTIVATE_EMERGENCY_CREDIT)
    assert supply(meter) == (SupplyState.ARMED, SupplyOffReason.NO_CREDIT)


def test_consumption_debits_the_balance_then_emergency_credit() -> None:
    meter = prepay_meter(meter_balance_pence=50, load_w=1_000)  # 1 p per 100 s
    send(meter, Command.ACTIVATE_EMERGENCY_CREDIT)
    meter.advance_to(T0 + 100 * 80)
    fields = send(meter, Command.READ_METER_BALANCE).fields
    assert fields == {"meter_balance_pence": 0, "emergency_credit_balance_pence": 470}


def test_18_8_next_top_up_repays_used_emergency_credit_first() -> None:
    meter = prepay_meter(meter_balance_pence=0, load_w=1_000)
    send(meter, Command.ACTIVATE_EMERGENCY_CREDIT)
    meter.advance_to(T0 + 100 * 300)  # 300 p of EC used
    response = top_up(meter, counter=1, pounds=5)
    assert response.fields == {"credit_added_pence": 200, "emergency_credit_repaid_pence": 300,
                               "debt_recovered_pence": 0, "meter_balance_pence": 200}
    values = send(meter, Command.READ_INSTANTANEOUS_PREPAY_VALUES).fields
    assert not values["emergency_credit_active"]
    assert values["emergency_credit_balance_pence"] == 0


def test_top_up_smaller_than_used_emergency_credit_repays_part_and_keeps_it_active() -> None:
    meter = prepay_meter(meter_balance_pence=0, load_w=1_000)
    send(meter, Command.ACTIVATE_EMERGENCY_CREDIT)
    meter.advance_to(T0 + 100 * 300)
    response = top_up(meter, counter=1, pence=120)
    assert response.body.emergency_credit_repaid_pence == 120
    assert response.body.credit_added_pence == 0
    fields = send(meter, Command.READ_METER_BALANCE).fields
    assert fields["emergency_credit_balance_pence"] == 200 + 120


# ---------------------------------------------------------------------------------------------
# Consumption on the meter
# ---------------------------------------------------------------------------------------------


def test_disabled_supply_draws_no_energy_but_the_standing_charge_still_runs() -> None:
    meter = make_meter(load_w=1_000, unit_rate_millipence_per_kwh=36_000,
                       standing_charge_millipence_per_day=100_000, meter_balance_pence=0)
    send(meter, Command.SET_SUPPLY_STATE, supply_state=SupplyState.DISABLED)
    meter.advance_to(T0 + DAY)
    assert balance(meter) == -100
    assert meter.registers.energy_imported_ws == 0


def test_set_load_w_changes_the_cost_from_then_on() -> None:
    meter = make_meter(load_w=1_000, unit_rate_millipence_per_kwh=36_000)
    meter.set_load_w(3_000, device_time_seconds=T0 + 1_000)  # 10 p at 1 kW
    meter.advance_to(T0 + 2_000)  # 30 p at 3 kW
    assert balance(meter) == -40


def test_load_profile_from_the_profile_prices_each_segment_at_its_load() -> None:
    midnight = T0 - 12 * HOUR
    meter = make_meter(start_seconds=midnight, unit_rate_millipence_per_kwh=36_000,
                       load_profile=[[0, 100], [6 * HOUR, 1_000]])
    meter.advance_to(midnight + DAY)
    # 6 h at 100 W = 0.6 kWh = 21.6 p; 18 h at 1 kW = 18 kWh = 648 p; total 669.6 -> 669
    assert balance(meter) == -669


def test_advance_to_an_earlier_time_is_ignored() -> None:
    meter = make_meter(load_w=1_000, unit_rate_millipence_per_kwh=36_000)
    meter.advance_to(T0 + 500)
    meter.advance_to(T0 + 100)
    assert meter.device_time_seconds == T0 + 500
    assert balance(meter) == -5


# ---------------------------------------------------------------------------------------------
# Supply switch (SRs 7.1-7.4) and prepayment disablement
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("device_type", [ESME, GSME])
def test_supply_is_disabled_for_no_credit_the_second_credit_falls_below_threshold(
        device_type: DeviceType) -> None:
    meter = prepay_meter(device_type, meter_balance_pence=10, load_w=1_000)  # 1 p per 100 s
    # 11 p debited (balance -1, below 0) at exactly 1100 s
    assert meter.next_event_time_seconds() == T0 + 1_100
    meter.advance_to(T0 + 1_099)
    assert supply(meter)[0] is SupplyState.ENABLED
    meter.advance_to(T0 + 1_100)
    assert supply(meter) == (SupplyState.DISABLED, SupplyOffReason.NO_CREDIT)
    assert balance(meter) == -1


def test_no_credit_disablement_waits_for_the_end_of_a_non_disablement_period() -> None:
    thursday_17h = T0 + 5 * HOUR  # inside calendar 1: Thursday 16:00 - Friday 10:00
    meter = prepay_meter(start_seconds=thursday_17h, meter_balance_pence=0, load_w=1_000,
                         non_disablement_calendar_id=1)
    meter.advance_to(thursday_17h + 2 * HOUR)
    assert supply(meter)[0] is SupplyState.ENABLED
    friday_10h = T0 + 22 * HOUR
    meter.advance_to(friday_10h - 1)
    assert supply(meter)[0] is SupplyState.ENABLED
    meter.advance_to(friday_10h)
    assert supply(meter) == (SupplyState.DISABLED, SupplyOffReason.NO_CREDIT)


def test_calendar_1_protects_weekday_evenings_and_weekends_only() -> None:
    calendar = NON_DISABLEMENT_CALENDARS[1]
    assert not calendar.is_active(T0)  # Thursday 12:00
    assert calendar.is_active(T0 + 4 * HOUR)  # Thursday 16:00
    assert calendar.is_active(T0 + DAY + 2 * DAY)  # Sunday 12:00
    assert not calendar.is_active(T0 + 4 * DAY - 2 * HOUR + 1)  # Monday 10:00:01
    assert not NON_DISABLEMENT_CALENDARS[0].is_active(T0 + 4 * HOUR)


def test_top_up_that_restores_credit_arms_the_supply_and_the_button_enables_it() -> None:
    meter = prepay_meter(meter_balance_pence=-100)
    assert supply(meter) == (SupplyState.DISABLED, SupplyOffReason.NO_CREDIT)
    top_up(meter, counter=1, pounds=2)
    assert supply(meter)[0] is SupplyState.ARMED
    assert meter.press_button_to_enable() is SupplyState.ENABLED
    assert supply(meter) == (SupplyState.ENABLED, SupplyOffReason.NONE)


def test_top_up_that_does_not_restore_credit_leaves_the_supply_disabled() -> None:
    meter = prepay_meter(meter_balance_pence=-100)
    top_up(meter, counter=1, pence=50)
    assert supply(meter) == (SupplyState.DISABLED, SupplyOffReason.NO_CREDIT)
    assert meter.press_button_to_enable() is SupplyState.DISABLED


def test_remote_disable_arm_and_enable_follow_srs_7_1_to_7_3() -> None:
    meter = make_meter()
    assert send(meter, Command.SET_SUPPLY_STATE, supply_state=SupplyState.DISABLED).fields == {
        "supply_state": SupplyState.DISABLED, "supply_off_reason": SupplyOffReason.REMOTE}
    armed = send(meter, Command.SET_SUPPLY_STATE, supply_state=SupplyState.ARMED).body
    assert armed.supply_state is SupplyState.ARMED
    assert send(meter, Command.SET_SUPPLY_STATE, supply_state=SupplyState.ENABLED).fields == {
        "supply_state": SupplyState.ENABLED, "supply_off_reason": SupplyOffReason.NONE}


def test_remote_arm_of_an_enabled_supply_is_not_permitted_with_nothing_changed() -> None:
    assert_refused_with_nothing_changed(make_meter(), Status.NOT_PERMITTED_IN_STATE,
                                        Command.SET_SUPPLY_STATE, supply_state=SupplyState.ARMED)


def test_remote_enable_without_credit_in_prepayment_is_refused_with_nothing_changed() -> None:
    meter = prepay_meter(meter_balance_pence=-1)
    assert_refused_with_nothing_changed(meter, Status.NOT_PERMITTED_IN_STATE,
                                        Command.SET_SUPPLY_STATE,
                                        supply_state=SupplyState.ENABLED)


def test_supply_transition_table_has_credit_rules_only_for_prepayment() -> None:
    credit_events = {SupplyEvent.CREDIT_EXHAUSTED, SupplyEvent.CREDIT_RESTORED}
    assert all(mode is PaymentMode.PREPAYMENT
               for mode, event, _, _ in SUPPLY_TRANSITIONS if event in credit_events)


# ---------------------------------------------------------------------------------------------
# Top-up (SR 2.2)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("device_type", [ESME, GSME])
def test_top_up_adds_the_token_value_and_reports_the_split(device_type: DeviceType) -> None:
    meter = prepay_meter(device_type)
    response = top_up(meter, counter=1, pounds=20)
    assert response.fields == {"credit_added_pence": 2_000, "emergency_credit_repaid_pence": 0,
                               "debt_recovered_pence": 0, "meter_balance_pence": 3_000}


def _good_utrn(counter: int = 1) -> str:
    return make_utrn(EUI, counter, UtrnValueClass.POUNDS, 5)


def _bad_check_digit(utrn: str) -> str:
    return utrn[:19] + str((int(utrn[19]) + 1) % 10)


@pytest.mark.parametrize(("utrn", "status"), [
    (_bad_check_digit(_good_utrn()), Status.UTRN_INVALID_CHECK_DIGIT),
    ("12345678901234567890"[:19] + "x", Status.UTRN_MALFORMED),
    ("9" * 19 + verhoeff_check_digit("9" * 19), Status.UTRN_MALFORMED),
    (make_utrn(OTHER_EUI, 1, UtrnValueClass.POUNDS, 5), Status.UTRN_WRONG_METER),
    (make_utrn(EUI, 2, UtrnValueClass.POUNDS, 101), Status.UTRN_EXCEEDS_MAX_CREDIT),
    (make_utrn(EUI, 3, UtrnValueClass.POUNDS, 100), Status.UTRN_EXCEEDS_MAX_METER_BALANCE),
])
def test_bad_utrn_is_refused_with_its_reason_and_no_register_changed(
        utrn: str, status: Status) -> None:
    meter = prepay_meter(max_credit_threshold_pence=10_000, max_meter_balance_pence=10_999)
    before = state_of(meter)
    assert send(meter, Command.TOP_UP, utrn=utrn.encode("ascii")).status is status
    after = state_of(meter)
    assert after.pop("utrn_bad_entries_in_a_row") == 1
    before.pop("utrn_bad_entries_in_a_row")
    assert after == before


def test_utrn_counter_already_used_is_refused_as_duplicate() -> None:
    meter = prepay_meter()
    assert top_up(meter, counter=5, pounds=1).ok
    assert top_up(meter, counter=5, pounds=1).status is Status.UTRN_DUPLICATE
    assert top_up(meter, counter=4, pounds=1).ok  # counters may arrive out of order
    assert balance(meter) == 1_200


def test_utrn_counter_below_the_remembered_window_is_refused_as_duplicate() -> None:
    meter = prepay_meter(max_meter_balance_pence=1_000_000)
    for counter in range(100, 164):
        assert top_up(meter, counter=counter, pence=1).ok
    assert top_up(meter, counter=99, pence=1).status is Status.UTRN_DUPLICATE
    assert top_up(meter, counter=164, pence=1).ok


def test_five_bad_utrn_entries_in_a_row_lock_entry_for_30_minutes() -> None:
    meter = prepay_meter()
    bad = _bad_check_digit(_good_utrn())
    for _ in range(5):
        assert send(meter, Command.TOP_UP, utrn=bad.encode()).status is (
            Status.UTRN_INVALID_CHECK_DIGIT)
    assert top_up(meter, counter=1, pounds=1).status is Status.UTRN_ENTRY_LOCKED
    meter.advance_to(T0 + UTRN_LOCKOUT_SECONDS - 1)
    assert top_up(meter, counter=1, pounds=1).status is Status.UTRN_ENTRY_LOCKED
    meter.advance_to(T0 + UTRN_LOCKOUT_SECONDS)
    assert top_up(meter, counter=1, pounds=1).ok


def test_a_good_utrn_entry_resets_the_bad_entry_count() -> None:
    meter = prepay_meter()
    bad = _bad_check_digit(_good_utrn(9))
    for _ in range(4):
        send(meter, Command.TOP_UP, utrn=bad.encode())
    assert top_up(meter, counter=1, pounds=1).ok
    for _ in range(4):
        send(meter, Command.TOP_UP, utrn=bad.encode())
    assert top_up(meter, counter=2, pounds=1).ok


# ---------------------------------------------------------------------------------------------
# Debt (SR 2.3)
# ---------------------------------------------------------------------------------------------


def debt_fields(register: DebtRegister, adjustment_pence: int, rate_pence: int = 0,
                period: DebtRecoveryPeriod = DebtRecoveryPeriod.DAILY,
                percentage: int = 0) -> dict[str, Any]:
    return {"debt_register": register, "debt_adjustment_pence": adjustment_pence,
            "debt_recovery_rate_pence": rate_pence, "debt_recovery_period": period,
            "debt_recovery_percentage": percentage}


def test_update_debt_adds_to_the_register_and_reports_it() -> None:
    meter = prepay_meter()
    response = send(meter, Command.UPDATE_DEBT, **debt_fields(
        DebtRegister.TIME_DEBT_1, 1_000, rate_pence=7, period=DebtRecoveryPeriod.HOURLY))
    assert response.fields == {"debt_register": DebtRegister.TIME_DEBT_1,
                               "debt_value_pence": 1_000, "debt_recovery_rate_pence": 7,
                               "debt_recovery_period": DebtRecoveryPeriod.HOURLY,
                               "debt_recovery_percentage": 0}


def test_update_debt_below_zero_is_refused_with_nothing_changed() -> None:
    assert_refused_with_nothing_changed(prepay_meter(), Status.VALUE_OUT_OF_RANGE,
                                        Command.UPDATE_DEBT,
                                        **debt_fields(DebtRegister.TIME_DEBT_2, -1))


def test_update_debt_percentage_above_100_is_refused_with_nothing_changed() -> None:
    assert_refused_with_nothing_changed(prepay_meter(), Status.VALUE_OUT_OF_RANGE,
                                        Command.UPDATE_DEBT, **debt_fields(
                                            DebtRegister.PAYMENT_DEBT, 10, percentage=101))


def test_time_debt_is_recovered_at_its_rate_on_each_hour() -> None:
    meter = prepay_meter()
    send(meter, Command.UPDATE_DEBT, **debt_fields(
        DebtRegister.TIME_DEBT_1, 100, rate_pence=7, period=DebtRecoveryPeriod.HOURLY))
    assert meter.next_event_time_seconds() == T0 + HOUR
    meter.advance_to(T0 + 3 * HOUR - 1)
    values = send(meter, Command.READ_INSTANTANEOUS_PREPAY_VALUES).fields
    assert (values["time_debt_1_pence"], values["meter_balance_pence"]) == (86, 986)
    meter.advance_to(T0 + 20 * HOUR)
    values = send(meter, Command.READ_INSTANTANEOUS_PREPAY_VALUES).fields
    assert (values["time_debt_1_pence"], values["meter_balance_pence"]) == (0, 900)


def test_time_debt_is_recovered_daily_at_utc_midnight() -> None:
    meter = prepay_meter(time_debt_2_pence=100, time_debt_2_recovery_rate_pence=30,
                         time_debt_2_recovery_period="daily")
    meter.advance_to(T0 + 12 * HOUR - 1)
    assert balance(meter) == 1_000
    meter.advance_to(T0 + 12 * HOUR)
    assert balance(meter) == 970


def test_time_debt_is_not_recovered_in_credit_mode() -> None:
    meter = make_meter(meter_balance_pence=0, time_debt_1_pence=100,
                       time_debt_1_recovery_rate_pence=10, time_debt_1_recovery_period="hourly")
    meter.advance_to(T0 + 5 * HOUR)
    assert balance(meter) == 0


def test_debt_recovery_is_capped_per_day_by_the_recovery_rate_cap() -> None:
    meter = prepay_meter(time_debt_1_pence=1_000, time_debt_1_recovery_rate_pence=10,
                         time_debt_1_recovery_period="hourly", debt_recovery_rate_cap_pence=25)
    meter.advance_to(T0 + 11 * HOUR)  # 11 hourly ticks before midnight, cap 25
    assert balance(meter) == 975
    meter.advance_to(T0 + 12 * HOUR + 5 * HOUR)  # a new day: 6 more ticks, capped at 25
    assert balance(meter) == 950


def test_a_debt_recovery_rate_cap_of_0_pence_is_a_cap_of_0_and_recovers_nothing() -> None:
    """Issue 10 point 1: 0 p has no special meaning (S1SR 18.27 sends a truncated 0)."""
    meter = prepay_meter(time_debt_1_pence=100, time_debt_1_recovery_rate_pence=10,
                         time_debt_1_recovery_period="hourly", payment_debt_pence=300,
                         payment_debt_recovery_percentage=25, debt_recovery_rate_cap_pence=0)
    meter.advance_to(T0 + 5 * HOUR)
    assert balance(meter) == 1_000
    assert top_up(meter, counter=1, pounds=10).body.debt_recovered_pence == 0
    values = send(meter, Command.READ_INSTANTANEOUS_PREPAY_VALUES).fields
    assert (values["time_debt_1_pence"], values["payment_debt_pence"]) == (100, 300)


def test_a_never_configured_debt_recovery_rate_cap_limits_nothing() -> None:
    table = {key: value for key, value in PREPAY.items()
             if key != "debt_recovery_rate_cap_pence"}
    meter = make_meter(**{**table, "time_debt_1_pence": 100,
                          "time_debt_1_recovery_rate_pence": 10,
                          "time_debt_1_recovery_period": "hourly"})
    meter.advance_to(T0 + 5 * HOUR)
    assert balance(meter) == 950


def test_payment_debt_takes_its_percentage_of_each_top_up() -> None:
    meter = prepay_meter(payment_debt_pence=300, payment_debt_recovery_percentage=25)
    response = top_up(meter, counter=1, pounds=10)
    assert response.fields == {"credit_added_pence": 750, "emergency_credit_repaid_pence": 0,
                               "debt_recovered_pence": 250, "meter_balance_pence": 1_750}
    response = top_up(meter, counter=2, pounds=10)
    assert response.body.debt_recovered_pence == 50  # only 50 p left to recover
    assert send(meter, Command.READ_INSTANTANEOUS_PREPAY_VALUES).body.payment_debt_pence == 0


def test_payment_debt_share_respects_the_daily_cap() -> None:
    meter = prepay_meter(payment_debt_pence=300, payment_debt_recovery_percentage=50,
                         debt_recovery_rate_cap_pence=40)
    assert top_up(meter, counter=1, pounds=10).body.debt_recovered_pence == 40


def test_suspend_debt_disabled_stops_time_debt_recovery_while_the_supply_is_disabled() -> None:
    meter = prepay_meter(time_debt_1_pence=100, time_debt_1_recovery_rate_pence=10,
                         time_debt_1_recovery_period="hourly", suspend_debt_disabled=True)
    send(meter, Command.SET_SUPPLY_STATE, supply_state=SupplyState.DISABLED)
    meter.advance_to(T0 + 5 * HOUR)
    assert balance(meter) == 1_000
    send(meter, Command.SET_SUPPLY_STATE, supply_state=SupplyState.ENABLED)
    meter.advance_to(T0 + 6 * HOUR)
    assert balance(meter) == 990


def test_suspend_debt_emergency_stops_time_debt_recovery_while_on_emergency_credit() -> None:
    meter = prepay_meter(meter_balance_pence=0, time_debt_1_pence=100,
                         time_debt_1_recovery_rate_pence=10,
                         time_debt_1_recovery_period="hourly", suspend_debt_emergency=True)
    send(meter, Command.ACTIVATE_EMERGENCY_CREDIT)
    meter.advance_to(T0 + 5 * HOUR)
    assert send(meter, Command.READ_METER_BALANCE).fields == {
        "meter_balance_pence": 0, "emergency_credit_balance_pence": 500}


def test_time_debt_recovery_without_suspension_draws_on_emergency_credit() -> None:
    meter = prepay_meter(meter_balance_pence=0, time_debt_1_pence=100,
                         time_debt_1_recovery_rate_pence=10,
                         time_debt_1_recovery_period="hourly")
    send(meter, Command.ACTIVATE_EMERGENCY_CREDIT)
    meter.advance_to(T0 + 5 * HOUR)
    assert send(meter, Command.READ_METER_BALANCE).body.emergency_credit_balance_pence == 450


# ---------------------------------------------------------------------------------------------
# Load limiting (SR 6.4.1, 6.4.2, 4.15), ESME only
# ---------------------------------------------------------------------------------------------


def load_limit_fields(threshold_w: int, period_seconds: int = 60,
                      restoration_seconds: int = 120) -> dict[str, int]:
    return {"load_limit_power_threshold_w": threshold_w,
            "load_limit_period_seconds": period_seconds,
            "load_limit_restoration_period_seconds": restoration_seconds}


def test_18_37_load_limit_threshold_above_the_device_maximum_is_refused_never_clamped() -> None:
    meter = make_meter(max_load_limit_power_threshold_w=10_000)
    assert_refused_with_nothing_changed(meter, Status.VALUE_OUT_OF_RANGE,
                                        Command.SET_LOAD_LIMIT_SETTINGS,
                                        **load_limit_fields(10_001))
    settings = send(meter, Command.SET_LOAD_LIMIT_SETTINGS, **load_limit_fields(10_000)).body
    assert settings.load_limit_power_threshold_w == 10_000


def test_18_37_default_maximum_is_65535_watts() -> None:
    meter = make_meter()
    assert send(meter, Command.SET_LOAD_LIMIT_SETTINGS, **load_limit_fields(65_535)).ok


@pytest.mark.parametrize(("period", "restoration"), [(29, 60), (3_601, 60), (60, 29),
                                                     (60, 3_601)])
def test_load_limit_periods_outside_30_to_3600_seconds_are_refused(period: int,
                                                                   restoration: int) -> None:
    assert_refused_with_nothing_changed(make_meter(), Status.VALUE_OUT_OF_RANGE,
                                        Command.SET_LOAD_LIMIT_SETTINGS,
                                        **load_limit_fields(1_000, period, restoration))


def test_average_demand_above_threshold_opens_the_switch_counts_it_then_re_arms() -> None:
    start = T0 - T0 % 60  # T0 is on a minute already; periods align to device time
    meter = make_meter(start_seconds=start, load_w=3_001)
    send(meter, Command.SET_LOAD_LIMIT_SETTINGS, **load_limit_fields(3_000, 60, 120))
    meter.advance_to(start + 59)
    assert supply(meter)[0] is SupplyState.ENABLED
    meter.advance_to(start + 60)
    assert supply(meter) == (SupplyState.DISABLED, SupplyOffReason.LOAD_LIMIT)
    data = send(meter, Command.READ_LOAD_LIMIT_DATA).fields
    assert (data["load_limit_counter"], data["load_limit_active"]) == (1, True)
    meter.advance_to(start + 60 + 119)
    assert supply(meter)[0] is SupplyState.DISABLED
    meter.advance_to(start + 60 + 120)
    assert supply(meter) == (SupplyState.ARMED, SupplyOffReason.LOAD_LIMIT)
    assert not send(meter, Command.READ_LOAD_LIMIT_DATA).body.load_limit_active
    assert meter.press_button_to_enable() is SupplyState.ENABLED
    meter.advance_to(start + 240)
    assert send(meter, Command.READ_LOAD_LIMIT_DATA).body.load_limit_counter == 2


def test_average_demand_at_the_threshold_does_not_trip() -> None:
    meter = make_meter(load_w=3_000)
    send(meter, Command.SET_LOAD_LIMIT_SETTINGS, **load_limit_fields(3_000, 60, 60))
    meter.advance_to(T0 + 3_600)
    assert supply(meter)[0] is SupplyState.ENABLED


def test_load_limit_averages_over_the_period_not_the_peak() -> None:
    midnight = T0 - 12 * HOUR
    # 30 s at 5 kW then 30 s at 1 kW: 3 kW average over each minute-aligned period
    meter = make_meter(start_seconds=midnight, load_profile=[[0, 5_000], [30, 1_000]])
    send(meter, Command.SET_LOAD_LIMIT_SETTINGS, **load_limit_fields(3_999, 60, 60))
    meter.advance_to(midnight + 60)
    assert supply(meter)[0] is SupplyState.ENABLED


def test_reset_load_limit_counter_zeroes_it() -> None:
    meter = make_meter(load_w=5_000)
    send(meter, Command.SET_LOAD_LIMIT_SETTINGS, **load_limit_fields(1_000, 60, 60))
    meter.advance_to(T0 + 60)
    assert send(meter, Command.RESET_LOAD_LIMIT_COUNTER).body.load_limit_counter == 0


def test_load_limit_threshold_zero_turns_load_limiting_off() -> None:
    meter = make_meter(load_w=60_000)
    send(meter, Command.SET_LOAD_LIMIT_SETTINGS, **load_limit_fields(0, 30, 30))
    assert meter.next_event_time_seconds() is None
    meter.advance_to(T0 + DAY)
    assert supply(meter)[0] is SupplyState.ENABLED


# ---------------------------------------------------------------------------------------------
# Profile keys and saved state
# ---------------------------------------------------------------------------------------------


def test_profile_table_sets_registers_tariff_and_load() -> None:
    config = MeterConfig.from_mapping(
        {"payment_mode": "prepayment", "meter_balance_pence": 1_234, "load_w": 500,
         "unit_rate_millipence_per_kwh": 24_567, "suspend_debt_disabled": True,
         "time_debt_1_recovery_period": "hourly"}, eui64=EUI, device_type=GSME)
    assert config.payment_mode is PaymentMode.PREPAYMENT
    assert config.load_profile == ((0, 500),)
    assert config.time_debt_1_recovery_period is DebtRecoveryPeriod.HOURLY
    assert config.emergency_credit_limit_pence is None  # never configured


@pytest.mark.parametrize(("table", "key"), [
    ({"meter_balance": 5}, "meter_balance"),
    ({"meter_balance_pence": 5.5}, "meter_balance_pence"),
    ({"meter_balance_pence": True}, "meter_balance_pence"),
    ({"payment_mode": "pay-as-you-go"}, "payment_mode"),
    ({"suspend_debt_disabled": 1}, "suspend_debt_disabled"),
    ({"load_limit_period_seconds": 10}, "load_limit_period_seconds"),
    ({"emergency_credit_limit_pence": -1}, "emergency_credit_limit_pence"),
    ({"load_limit_power_threshold_w": 70_000}, "load_limit_power_threshold_w"),
    ({"load_profile": [[0]]}, "load_profile"),
])
def test_profile_with_unknown_key_wrong_type_or_bad_value_names_the_key(
        table: dict[str, Any], key: str) -> None:
    with pytest.raises(ProfileError, match=key):
        MeterConfig.from_mapping(table, eui64=EUI, device_type=ESME)


def test_gsme_profile_with_a_load_limit_is_refused() -> None:
    with pytest.raises(ProfileError, match="gas meter"):
        MeterConfig.from_mapping({"load_limit_power_threshold_w": 100}, eui64=EUI,
                                 device_type=GSME)


def test_meter_state_round_trips_through_json_and_carries_on_identically() -> None:
    meter = prepay_meter(meter_balance_pence=0, load_w=1_234,
                         time_debt_1_pence=50, time_debt_1_recovery_rate_pence=3,
                         time_debt_1_recovery_period="hourly")
    send(meter, Command.ACTIVATE_EMERGENCY_CREDIT)
    top_up(meter, counter=3, pence=17)
    meter.advance_to(T0 + 777)
    restored = restarted(meter)
    assert state_of(restored) == state_of(meter)
    meter.advance_to(T0 + 2 * DAY + 5)
    restored.advance_to(T0 + 2 * DAY + 5)
    assert state_of(restored) == state_of(meter)


def test_meter_state_with_an_unknown_key_is_refused_with_a_state_error() -> None:
    meter = make_meter()
    state = {**encode_meter_registers(meter.registers), "surprise": 1}
    with pytest.raises(StateError, match="surprise"):
        Meter.restore(meter.config, decode_meter_registers(state))


def test_meter_state_with_a_wrong_type_is_refused_with_a_state_error() -> None:
    meter = make_meter()
    state = {**encode_meter_registers(meter.registers), "meter_balance_pence": "12"}
    with pytest.raises(StateError, match="meter_balance_pence"):
        Meter.restore(meter.config, decode_meter_registers(state))


# ---------------------------------------------------------------------------------------------
# Over the wire, and odd corners
# ---------------------------------------------------------------------------------------------


def test_every_meter_command_round_trips_through_apdu_bytes() -> None:
    from protocol.apdu import decode_apdu as decode
    from protocol.apdu import encode_request

    meter = prepay_meter(meter_balance_pence=0)
    requests = [
        Request(Command.SET_PAYMENT_MODE, 1, body=SetPaymentModeRequest(**payment_mode_fields())),
        Request(Command.ACTIVATE_EMERGENCY_CREDIT, 2),
        Request(Command.TOP_UP, 3, {"utrn": make_utrn(EUI, 1, UtrnValueClass.POUNDS, 3).encode()}),
        Request(Command.ADJUST_METER_BALANCE, 4, {"adjustment_pence": -12}),
        Request(Command.UPDATE_DEBT, 5, debt_fields(DebtRegister.PAYMENT_DEBT, 40,
                                                     percentage=10)),
        Request(Command.SET_PREPAYMENT_CONFIGURATION, 6, {
            "fields_present": PrepaymentConfigurationField.MAX_CREDIT_THRESHOLD,
            "debt_recovery_rate_cap_pence": 0, "emergency_credit_limit_pence": 0,
            "emergency_credit_threshold_pence": 0, "low_credit_threshold_pence": 0,
            "max_meter_balance_pence": 0, "max_credit_threshold_pence": 9_000,
            "disablement_threshold_pence": 0}),
        Request(Command.SET_LOAD_LIMIT_SETTINGS, 7, load_limit_fields(4_000)),
        Request(Command.RESET_LOAD_LIMIT_COUNTER, 8),
        Request(Command.SET_SUPPLY_STATE, 9, {"supply_state": SupplyState.DISABLED}),
        Request(Command.RESET_METER_BALANCE, 10),
        Request(Command.READ_INSTANTANEOUS_PREPAY_VALUES, 11),
        Request(Command.READ_PREPAYMENT_CONFIGURATION, 12),
        Request(Command.READ_METER_BALANCE, 13),
        Request(Command.READ_SUPPLY_STATUS, 14),
        Request(Command.READ_LOAD_LIMIT_DATA, 15),
    ]
    for request in requests:
        decoded = decode(encode_request(request))
        assert isinstance(decoded, Request)
        response = meter.handle_request(decoded, T0)
        assert response.status is Status.SUCCESS, request.command
        assert decode(encode_response(response)) == response
    assert response.body.load_limit_power_threshold_w == 4_000


def test_leaving_prepayment_charges_used_emergency_credit_to_the_balance() -> None:
    meter = prepay_meter(meter_balance_pence=0, load_w=1_000)
    send(meter, Command.ACTIVATE_EMERGENCY_CREDIT)
    meter.advance_to(T0 + 100 * 120)  # 120 p of EC used
    send(meter, Command.SET_PAYMENT_MODE, **payment_mode_fields(PaymentMode.CREDIT))
    assert send(meter, Command.READ_METER_BALANCE).fields == {
        "meter_balance_pence": -120, "emergency_credit_balance_pence": 0}


def test_pressing_the_button_on_an_enabled_or_remotely_disabled_supply_changes_nothing() -> None:
    meter = make_meter()
    assert meter.press_button_to_enable() is SupplyState.ENABLED
    send(meter, Command.SET_SUPPLY_STATE, supply_state=SupplyState.DISABLED)
    assert meter.press_button_to_enable() is SupplyState.DISABLED
    assert supply(meter) == (SupplyState.DISABLED, SupplyOffReason.REMOTE)


def test_remote_enable_during_load_limit_restoration_ends_the_restoration() -> None:
    meter = make_meter(load_w=5_000)
    send(meter, Command.SET_LOAD_LIMIT_SETTINGS, **load_limit_fields(1_000, 60, 600))
    meter.advance_to(T0 + 60)
    assert send(meter, Command.READ_LOAD_LIMIT_DATA).body.load_limit_active
    send(meter, Command.SET_SUPPLY_STATE, supply_state=SupplyState.ENABLED)
    assert not send(meter, Command.READ_LOAD_LIMIT_DATA).body.load_limit_active


def test_every_profile_key_is_documented_in_the_meter_config_docstring() -> None:
    doc = MeterConfig.__doc__ or ""
    undocumented = [key for key in MeterConfig.PROFILE_KEYS
                    if f"``{key}``" not in doc and key.replace("_2_", "_1_") not in doc]
    assert undocumented == []


def test_an_idle_credit_meter_has_no_next_event() -> None:
    assert make_meter().next_event_time_seconds() is None


def test_load_limit_restoration_arms_only_a_supply_the_load_limit_opened() -> None:
    from emulator.meter_tables import supply_transition

    event = SupplyEvent.LOAD_LIMIT_RESTORED
    assert supply_transition(PaymentMode.CREDIT, event, SupplyState.DISABLED,
                             SupplyOffReason.LOAD_LIMIT) == (SupplyState.ARMED,
                                                             SupplyOffReason.LOAD_LIMIT)
    assert supply_transition(PaymentMode.CREDIT, event, SupplyState.DISABLED,
                             SupplyOffReason.REMOTE) is None


def test_supply_table_renders_one_markdown_row_per_transition() -> None:
    from emulator.meter_tables import format_supply_transitions

    rows = format_supply_transitions().splitlines()[2:]
    assert len(rows) == len(SUPPLY_TRANSITIONS)
    assert "| PREPAYMENT | CREDIT_EXHAUSTED | ENABLED | any | DISABLED | NO_CREDIT |" in rows


def test_restored_meter_takes_the_profile_load_unless_it_was_set_at_run_time() -> None:
    meter = make_meter(load_w=1_000, unit_rate_millipence_per_kwh=36_000)
    edited = MeterConfig.from_mapping({"load_w": 2_000, "unit_rate_millipence_per_kwh": 36_000,
                                       "standing_charge_millipence_per_day": 0},
                                      eui64=EUI, device_type=ESME)
    restored = restarted(meter, edited)
    restored.advance_to(T0 + 100)
    assert balance(restored) == -2  # the edited profile's 2 kW
    meter.set_load_w(3_000)
    restored = restarted(meter, edited)
    restored.advance_to(T0 + 100)
    assert balance(restored) == -3  # the run-time 3 kW survives the restart


# --- register ranges (issue 10 point 4): +-2147483 p, what DUIS money can carry ------------

def test_adjustment_past_the_meter_balance_minimum_is_refused_with_nothing_changed() -> None:
    meter = make_meter(meter_balance_pence=-5_000)
    assert_refused_with_nothing_changed(meter, Status.VALUE_OUT_OF_RANGE,
                                        Command.ADJUST_METER_BALANCE,
                                        adjustment_pence=-2_147_483)


def test_adjustment_to_exactly_the_meter_balance_minimum_is_accepted() -> None:
    meter = make_meter(meter_balance_pence=-5_000)
    send(meter, Command.ADJUST_METER_BALANCE, adjustment_pence=-2_142_483)
    assert balance(meter) == -2_147_483


def test_consumption_never_takes_the_meter_balance_below_its_minimum() -> None:
    meter = make_meter(meter_balance_pence=-2_147_480, load_w=10_000,
                       unit_rate_millipence_per_kwh=36_000)  # 10 kW: 10 p per 100 s
    meter.advance_to(T0 + 3_600)
    assert balance(meter) == -2_147_483


def test_prepayment_threshold_above_the_register_maximum_is_refused_with_nothing_changed(
        ) -> None:
    assert_refused_with_nothing_changed(
        prepay_meter(), Status.VALUE_OUT_OF_RANGE, Command.SET_PREPAYMENT_CONFIGURATION,
        fields_present=PrepaymentConfigurationField.MAX_METER_BALANCE,
        debt_recovery_rate_cap_pence=0, emergency_credit_limit_pence=0,
        emergency_credit_threshold_pence=0, low_credit_threshold_pence=0,
        max_meter_balance_pence=2_147_484, max_credit_threshold_pence=0,
        disablement_threshold_pence=0)


def test_debt_that_would_take_the_accumulated_debt_past_the_maximum_is_refused() -> None:
    meter = prepay_meter(time_debt_1_pence=2_000_000)
    assert_refused_with_nothing_changed(meter, Status.VALUE_OUT_OF_RANGE, Command.UPDATE_DEBT,
                                        **debt_fields(DebtRegister.PAYMENT_DEBT, 147_484))
    send(meter, Command.UPDATE_DEBT, **debt_fields(DebtRegister.PAYMENT_DEBT, 147_483))
    values = send(meter, Command.READ_INSTANTANEOUS_PREPAY_VALUES).body
    assert values.accumulated_debt_pence == 2_147_483


def test_a_never_configured_limit_reads_as_the_register_maximum() -> None:
    fields = send(make_meter(GSME), Command.READ_PREPAYMENT_CONFIGURATION).fields
    assert fields["max_meter_balance_pence"] == 2_147_483
    assert fields["max_credit_threshold_pence"] == 2_147_483
