"""The S1SR Section 18 clauses, one test (or a few) per clause, each showing the value the
device holds and the value the DUIS response reports."""

from __future__ import annotations

from dataclasses import asdict
from xml.etree.ElementTree import fromstring

import pytest

from emulator.state_codecs import encode_meter_registers
from protocol.apdu import (
    MAX_FIRMWARE_BLOCK_BYTES,
    MAX_LOAD_LIMIT_PERIOD_SECONDS,
    MAX_LOAD_LIMIT_POWER_THRESHOLD_W,
    MIN_LOAD_LIMIT_PERIOD_SECONDS,
    Command,
    DebtRegister,
    Empty,
    PaymentMode,
    PrepaymentConfigurationField,
    Request,
    decode_apdu,
)
from protocol.s1sp.annex_c import AnnexCTable
from protocol.s1sp.duis import DUIS_NAMESPACE
from protocol.s1sp.errors import S1SR_REFUSAL_CODE
from tests.protocol.s1sp.conftest import (
    ESME_ADDRESS,
    ESME_EUI64,
    GSME_ADDRESS,
    GSME_EUI64,
    HUB_ADDRESS,
    SECOND_HUB_ADDRESS,
    START_SECONDS,
    Rig,
    fixture_xml,
)

NS = {"sr": DUIS_NAMESPACE}


def _result(xml: str, name: str) -> str | None:
    return fromstring(xml).findtext(f"sr:Body/sr:ResponseMessage/*/sr:{name}", namespaces=NS)


def _code(xml: str) -> str | None:
    return fromstring(xml).findtext("sr:Header/sr:ResponseCode", namespaces=NS)


def _message(xml: str, name: str) -> str | None:
    return fromstring(xml).findtext(f"sr:Body/sr:ResponseMessage/sr:{name}", namespaces=NS)


def _with_value(fixture: str, old: str, new: str) -> str:
    text = fixture_xml(fixture).decode()
    assert old in text
    return text.replace(old, new)


def _hold_the_han(rig: Rig, hub_address: int) -> None:
    """Start a firmware transfer to a hub: the transfer holds that hub's HAN (18.63)."""
    begin = rig.world.handle_request(hub_address, Request(
        Command.FIRMWARE_BEGIN, 0, {"image_size_bytes": 100}))
    assert begin.ok


def _verify_an_image(rig: Rig) -> None:
    """Give the ESME (and GSME) a verified image pending activation, as 11.1 does."""
    assert _code(rig.submit(fixture_xml("11.1_update_firmware"))) == "I0"
    assert rig.world.device_by_eui64(ESME_EUI64).firmware.pending_version == "1.1.0"


# --- 18.3 / 18.16 -----------------------------------------------------------------------------

def test_18_3_adjust_meter_balance_is_truncated_to_pence_and_added() -> None:
    rig = Rig({"meter_balance_pence": 100})
    xml = rig.submit(fixture_xml("1.5_adjust_meter_balance"))  # 1234567
    assert _code(xml) == "I0"
    assert rig.sent(Command.ADJUST_METER_BALANCE)[0].body.adjustment_pence == 1234
    assert rig.esme.registers.meter_balance_pence == 1334


def test_18_3_negative_adjustment_is_truncated_toward_zero_and_taken() -> None:
    rig = Rig({"meter_balance_pence": 100})
    xml = rig.submit(fixture_xml("1.5_adjust_meter_balance_negative"))  # -1999
    assert _code(xml) == "I0"
    assert rig.esme.registers.meter_balance_pence == 99
    assert _result(xml, "AdjustMeterBalance") == "-1000"


def test_18_3_reset_meter_balance_sets_zero() -> None:
    rig = Rig({"meter_balance_pence": -250})
    xml = rig.submit(fixture_xml("1.5_reset_meter_balance"))
    assert rig.esme.registers.meter_balance_pence == 0
    assert _result(xml, "MeterBalance") == "0"


def test_18_3_adjustment_above_max_meter_balance_is_refused_with_nothing_changed() -> None:
    rig = Rig({"meter_balance_pence": 900, "max_meter_balance_pence": 1000})
    xml = rig.submit(_with_value("1.5_adjust_meter_balance", ">1234567<",
                                             ">200000<"))
    assert _code(xml) == S1SR_REFUSAL_CODE
    assert _message(xml, "DeviceStatus") == "EXCEEDS_MAX_METER_BALANCE"
    assert "EXCEEDS_MAX_METER_BALANCE" in (_message(xml, "ErrorReason") or "")
    assert rig.esme.registers.meter_balance_pence == 900


def test_18_16_response_carries_adjustment_applied_and_resulting_balance_x1000() -> None:
    rig = Rig({"meter_balance_pence": 100})
    xml = rig.submit(fixture_xml("1.5_adjust_meter_balance"))  # asked 1234567
    assert _result(xml, "AdjustMeterBalance") == "1234000"
    assert _result(xml, "MeterBalance") == "1334000"
    assert rig.esme.registers.meter_balance_pence * 1000 == 1334000


# --- 18.4 / 18.27 / Annex C -------------------------------------------------------------------

def test_18_4_change_to_prepayment_carries_balance_and_stores_flags() -> None:
    rig = Rig({"meter_balance_pence": 1234})
    xml = rig.submit(fixture_xml("1.6_prepayment"))
    registers = rig.esme.registers
    assert _code(xml) == "I0"
    assert registers.payment_mode == PaymentMode.PREPAYMENT
    assert registers.meter_balance_pence == 1234
    assert registers.emergency_credit_active is False
    assert registers.disablement_threshold_pence == 556
    assert (registers.suspend_debt_disabled, registers.suspend_debt_emergency) == (True, False)
    assert _result(xml, "SuspendDebtDisabled") == "true"


def test_18_4_annex_c_defaults_are_appended_and_fill_only_never_configured_parameters() -> None:
    annex_c = AnnexCTable(emergency_credit_limit_pence=700, low_credit_threshold_pence=250)
    rig = Rig({"emergency_credit_limit_pence": 300}, annex_c=annex_c)
    rig.submit(fixture_xml("1.6_prepayment"))
    sent = rig.sent(Command.SET_PAYMENT_MODE)[0]
    assert asdict(sent.body.defaults) == annex_c.as_defaults_fields()
    parameters = rig.esme.registers.prepayment_parameters
    assert parameters.emergency_credit_limit_pence == 300  # configured: kept
    assert parameters.low_credit_threshold_pence == 250  # never configured: Annex C


def test_18_4_annex_c_defaults_are_visible_in_the_request_bytes() -> None:
    rig = Rig()
    rig.submit(fixture_xml("1.6_prepayment"))
    apdu = next(request for address, request, _ in rig.channel.exchanges
                if address == ESME_ADDRESS and request[3] == Command.SET_PAYMENT_MODE)
    defaults = AnnexCTable()
    # payment mode, threshold 556 p, flags, then the defaults: ECL 500 p first
    assert apdu[4:11] == bytes.fromhex("01" "0000022c" "01" "00")
    assert apdu[11:15] == defaults.emergency_credit_limit_pence.to_bytes(4, "big")
    decoded = decode_apdu(apdu)
    assert asdict(decoded.body.defaults) == defaults.as_defaults_fields()


def test_18_27_disablement_threshold_556677_returns_556000() -> None:
    rig = Rig()
    xml = rig.submit(fixture_xml("1.6_prepayment"))
    assert rig.esme.registers.disablement_threshold_pence == 556
    assert _result(xml, "DisablementThreshold") == "556000"


def test_18_27_prepay_configuration_thresholds_truncated_under_request_names() -> None:
    rig = Rig()
    xml = rig.submit(fixture_xml("2.1_prepay_configuration_electricity"))
    assert _code(xml) == "I0"
    expected = {"DebtRecoveryRateCap": 250, "EmergencyCreditLimit": 1000,
                "EmergencyCreditThreshold": 200, "LowCreditThreshold": 300,
                "MaxMeterBalance": 30000, "MaxCreditThreshold": 15000,
                "DisablementThreshold": 556}
    for name, pence in expected.items():
        assert _result(xml, name) == str(pence * 1000)
    parameters = rig.esme.registers.prepayment_parameters
    assert parameters.emergency_credit_limit_pence == 1000
    assert parameters.debt_recovery_rate_cap_pence == 250
    assert rig.esme.registers.disablement_threshold_pence == 556
    sent = rig.sent(Command.SET_PREPAYMENT_CONFIGURATION)[0]
    assert sent.body.fields_present == PrepaymentConfigurationField(0x7F)


def test_18_27_prepay_configuration_to_gas_meter_reaches_the_gas_meter() -> None:
    rig = Rig()
    xml = rig.submit(fixture_xml("2.1_prepay_configuration_gas"))
    assert _code(xml) == "I0"
    assert [address for address, request in rig.requests()
            if request.command is Command.SET_PREPAYMENT_CONFIGURATION] == [GSME_ADDRESS]
    assert rig.world.meter(GSME_EUI64).registers.disablement_threshold_pence == 556
    assert rig.esme.registers.disablement_threshold_pence == 0  # the ESME is untouched


def test_18_27_only_the_thresholds_given_are_marked_present() -> None:
    rig = Rig({"emergency_credit_limit_pence": 400})
    text = fixture_xml("2.1_prepay_configuration_electricity").decode()
    start = text.index("<sr:DebtRecoveryRateCap>")
    end = text.index("<sr:DisablementThreshold>")
    xml = rig.submit(text[:start] + text[end:])
    assert _code(xml) == "I0"
    sent = rig.sent(Command.SET_PREPAYMENT_CONFIGURATION)[0]
    assert sent.body.fields_present == PrepaymentConfigurationField.DISABLEMENT_THRESHOLD
    assert rig.esme.registers.prepayment_parameters.emergency_credit_limit_pence == 400


# --- 18.5 / 18.8 ------------------------------------------------------------------------------

_PREPAY_BELOW_ECT = {"payment_mode": "prepayment", "meter_balance_pence": 50,
                     "emergency_credit_threshold_pence": 100, "disablement_threshold_pence": 0}


def test_18_5_emergency_credit_limit_zero_fails_2_5_with_our_refusal_code() -> None:
    rig = Rig({**_PREPAY_BELOW_ECT, "emergency_credit_limit_pence": 0})
    xml = rig.submit(fixture_xml("2.5_activate_emergency_credit"))
    assert _code(xml) == S1SR_REFUSAL_CODE
    assert _message(xml, "DeviceStatus") == "EMERGENCY_CREDIT_UNAVAILABLE"
    assert rig.esme.registers.emergency_credit_balance_pence == 0
    assert rig.esme.registers.emergency_credit_active is False


def test_18_8_activation_reports_the_emergency_credit_made_available_x1000() -> None:
    rig = Rig({**_PREPAY_BELOW_ECT, "emergency_credit_limit_pence": 500})
    xml = rig.submit(fixture_xml("2.5_activate_emergency_credit"))
    assert _code(xml) == "I0"
    assert rig.esme.registers.emergency_credit_balance_pence == 500
    assert _result(xml, "EmergencyCreditBalance") == "500000"
    assert _result(xml, "MeterBalance") == "50000"


# --- 2.3 debt (decided units) -----------------------------------------------------------------

def test_2_3_each_register_named_is_updated_with_its_recovery_in_device_units() -> None:
    rig = Rig({"payment_debt_pence": 1000, "payment_mode": "prepayment"})
    xml = rig.submit(fixture_xml("2.3_update_debt"))
    assert _code(xml) == "I0"
    debts = rig.esme.registers.debts
    assert debts[DebtRegister.TIME_DEBT_1].debt_value_pence == 5000  # 5000999 truncated
    assert debts[DebtRegister.TIME_DEBT_1].debt_recovery_rate_pence == 35  # 35 x 10^-2 GBP
    assert debts[DebtRegister.PAYMENT_DEBT].debt_value_pence == 1000 - 250  # -250500 truncated
    assert debts[DebtRegister.PAYMENT_DEBT].debt_recovery_percentage == 12  # 1250 hundredths of %
    root = fromstring(xml)
    register = "sr:Body/sr:ResponseMessage/sr:UpdateDebtResponse/sr:TimeDebtRegister1"
    assert root.findtext(f"{register}/sr:DebtValue", namespaces=NS) == "5000000"
    assert root.findtext(f"{register}/sr:DebtRecoveryRate", namespaces=NS) == "35"
    assert root.findtext(f"{register}/sr:DebtRecoveryRatePriceScale", namespaces=NS) == "-2"
    payment = "sr:Body/sr:ResponseMessage/sr:UpdateDebtResponse/sr:PaymentDebtRegister"
    assert root.findtext(f"{payment}/sr:DebtRecoveryPerPayment", namespaces=NS) == "1200"


def _debt_result(xml: str, register: str, name: str) -> str | None:
    return fromstring(xml).findtext(
        f"sr:Body/sr:ResponseMessage/sr:UpdateDebtResponse/sr:{register}/sr:{name}",
        namespaces=NS)


def test_2_3_gas_debt_recovery_rate_is_in_duis_money_units_both_ways() -> None:
    """Issue 10 point 2: the GSME template's DebtRecoveryRate 50000 (no scale element in DUIS
    for gas) is 1/100000 GBP: 50 p per period on the meter, 50000 back, with no PriceScale."""
    rig = Rig()
    xml = rig.submit(fixture_xml("2.3_update_debt_gas"))
    assert _code(xml) == "I0"
    debts = rig.world.meter(GSME_EUI64).registers.debts
    assert debts[DebtRegister.TIME_DEBT_1].debt_recovery_rate_pence == 50
    assert debts[DebtRegister.TIME_DEBT_2].debt_recovery_rate_pence == 50
    assert debts[DebtRegister.TIME_DEBT_1].debt_value_pence == 1000
    assert debts[DebtRegister.PAYMENT_DEBT].debt_recovery_percentage == 1  # 100 hundredths of a %
    assert _debt_result(xml, "TimeDebtRegister1", "DebtRecoveryRate") == "50000"
    assert _debt_result(xml, "TimeDebtRegister1", "DebtRecoveryRatePriceScale") is None
    assert _debt_result(xml, "TimeDebtRegister2", "DebtRecoveryRatePeriod") == "HOURLY"
    assert _debt_result(xml, "TimeDebtRegister1", "DebtValue") == "1000000"


def test_2_3_electricity_debt_recovery_rate_uses_its_own_price_scale() -> None:
    rig = Rig()
    xml = rig.submit(fixture_xml("2.3_update_debt_electricity"))
    assert _code(xml) == "I0"
    debts = rig.esme.registers.debts
    assert debts[DebtRegister.TIME_DEBT_1].debt_recovery_rate_pence == 30  # 3 x 10^-1 GBP
    assert debts[DebtRegister.TIME_DEBT_2].debt_recovery_rate_pence == 150  # 15 x 10^-1 GBP
    assert _debt_result(xml, "TimeDebtRegister1", "DebtRecoveryRate") == "30"
    assert _debt_result(xml, "TimeDebtRegister1", "DebtRecoveryRatePriceScale") == "-2"


def test_2_3_gas_debt_recovery_with_a_price_scale_is_invalid() -> None:
    rig = Rig()
    xml = rig.submit(_with_value(
        "2.3_update_debt_gas", "<sr:DebtRecoveryRate>50000</sr:DebtRecoveryRate>",
        "<sr:DebtRecoveryRate>50000</sr:DebtRecoveryRate>"
        "<sr:DebtRecoveryRatePriceScale>-2</sr:DebtRecoveryRatePriceScale>"))
    assert _code(xml) == "E-INVALID"
    assert "GasDebtRecovery1 has no DebtRecoveryRatePriceScale" in (
        _message(xml, "ErrorReason") or "")
    assert rig.sent(Command.UPDATE_DEBT) == []


def test_2_3_gas_debt_recovery_to_an_electricity_meter_is_invalid() -> None:
    rig = Rig()
    xml = rig.submit(_with_value("2.3_update_debt_gas", "00-DB-12-34-56-78-90-A2",
                                 "00-DB-12-34-56-78-90-A1"))
    assert _code(xml) == "E-INVALID"
    assert "GasDebtRecovery1 is for a GAS_METER" in (_message(xml, "ErrorReason") or "")
    assert rig.sent(Command.UPDATE_DEBT) == []


def test_2_3_time_register_without_its_recovery_is_refused_before_sending() -> None:
    rig = Rig()
    text = fixture_xml("2.3_update_debt").decode()
    start, end = text.index("<sr:ElecDebtRecovery1>"), text.index("</sr:ElecDebtRecovery1>")
    xml = rig.submit(text[:start] + text[end + len("</sr:ElecDebtRecovery1>"):])
    assert _code(xml) == S1SR_REFUSAL_CODE
    assert "ElecDebtRecovery" in (_message(xml, "ErrorReason") or "")
    assert rig.sent(Command.UPDATE_DEBT) == []


def test_2_3_device_refusal_names_what_was_already_applied() -> None:
    rig = Rig({"payment_debt_pence": 100})  # -250 p would take it below zero
    xml = rig.submit(fixture_xml("2.3_update_debt"))
    assert _code(xml) == S1SR_REFUSAL_CODE
    assert _message(xml, "DeviceStatus") == "VALUE_OUT_OF_RANGE"
    assert "already applied: TimeDebtRegister1" in (_message(xml, "ErrorReason") or "")
    assert rig.esme.registers.debts[DebtRegister.PAYMENT_DEBT].debt_value_pence == 100


# --- 18.37 ------------------------------------------------------------------------------------

def test_18_37_load_limit_power_threshold_above_65535_refused_meter_untouched() -> None:
    rig = Rig()
    before = rig.esme.registers.load_limit_power_threshold_w
    xml = rig.submit(fixture_xml("6.4.1_load_limit_settings_above_maximum"))
    assert MAX_LOAD_LIMIT_POWER_THRESHOLD_W == 65535
    assert _code(xml) == S1SR_REFUSAL_CODE
    assert "65536 W is above the device maximum of 65535 W" in (_message(xml, "ErrorReason")
                                                                or "")
    assert _message(xml, "DeviceStatus") is None
    assert rig.sent(Command.SET_LOAD_LIMIT_SETTINGS) == []
    assert rig.esme.registers.load_limit_power_threshold_w == before


def test_18_37_threshold_of_exactly_65535_is_sent_unclamped() -> None:
    rig = Rig()
    xml = rig.submit(_with_value("6.4.1_load_limit_settings", ">6000<", ">65535<"))
    assert _code(xml) == "I0"
    assert rig.esme.registers.load_limit_power_threshold_w == 65535
    assert _result(xml, "LoadLimitPowerThreshold") == "65535"


def test_6_4_1_to_a_gas_meter_is_e11() -> None:
    rig = Rig()
    xml = rig.submit(_with_value(
        "6.4.1_load_limit_settings", "00-DB-12-34-56-78-90-A1:", "00-DB-12-34-56-78-90-A2:"))
    assert _code(xml) == "E11"
    assert rig.sent_commands() == []


# --- 18.62 ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("join_time_period_seconds", "minutes"), [(1, 1), (60, 1), (90, 2),
                                                                   (3600, 60)])
def test_18_62_join_time_period_seconds_reach_the_hub_as_minutes_rounded_up(
        join_time_period_seconds: int, minutes: int) -> None:
    rig = Rig()
    xml = rig.submit(_with_value(
        "8.11_add_han_device", "<sr:JoinTimePeriod>90<",
        f"<sr:JoinTimePeriod>{join_time_period_seconds}<"))
    assert _code(xml) == "I0"
    sent = rig.sent(Command.HAN_ADD_DEVICE)[0]
    assert sent.body.join_window_minutes == minutes
    assert _result(xml, "JoinTimePeriod") == str(minutes * 60)
    entries = rig.channel.request(HUB_ADDRESS,
                                  Request(Command.READ_HAN_ENTRIES, 0, body=Empty()))
    added = [entry for entry in entries.body.entries
             if entry.device_eui64 == bytes.fromhex("00DB1234567890A3")]
    assert [entry.join_window_closes_at_seconds for entry in added] == [
        START_SECONDS + minutes * 60]


def test_18_62_join_time_period_zero_is_refused_before_sending() -> None:
    rig = Rig()
    xml = rig.submit(_with_value("8.11_add_han_device", "<sr:JoinTimePeriod>90<",
                                             "<sr:JoinTimePeriod>0<"))
    assert _code(xml) == "E-INVALID"
    assert rig.sent(Command.HAN_ADD_DEVICE) == []


# --- 18.63 ------------------------------------------------------------------------------------

def test_18_63_refused_only_for_the_device_whose_han_has_an_update_in_progress() -> None:
    rig = Rig(gas_meter_on_its_own_han=True)
    _hold_the_han(rig, SECOND_HUB_ADDRESS)  # the GSME's hub is taking a firmware update
    xml = rig.submit(fixture_xml("11.1_update_firmware"))  # ESME and GSME
    assert _code(xml) == "I0"
    devices = fromstring(xml).findall(
        "sr:Body/sr:ResponseMessage/sr:UpdateFirmwareResponse/sr:Device", NS)
    outcomes = {d.findtext("sr:DeviceID", namespaces=NS): d for d in devices}
    gsme, esme = outcomes["00-DB-12-34-56-78-90-A2"], outcomes["00-DB-12-34-56-78-90-A1"]
    assert gsme.findtext("sr:Outcome", namespaces=NS) == "Refused"
    assert gsme.findtext("sr:ResponseCode", namespaces=NS) == S1SR_REFUSAL_CODE
    assert gsme.findtext("sr:DeviceStatus", namespaces=NS) == "FIRMWARE_UPDATE_IN_PROGRESS"
    assert "18.63" in (gsme.findtext("sr:Reason", namespaces=NS) or "")
    assert esme.findtext("sr:Outcome", namespaces=NS) == "Accepted"
    assert rig.world.device_by_eui64(ESME_EUI64).firmware.pending_version == "1.1.0"
    assert rig.world.device_by_eui64(GSME_EUI64).firmware.pending_version == ""
    assert [request.command for address, request in rig.requests()
            if address == GSME_ADDRESS] == [Command.FIRMWARE_BEGIN]


def test_18_63_others_go_ahead_in_blocks_of_at_most_max_firmware_block_bytes() -> None:
    rig = Rig()
    xml = rig.submit(fixture_xml("11.1_update_firmware"))
    assert _code(xml) == "I0"
    esme_requests = [request for address, request in rig.requests() if address == ESME_ADDRESS]
    commands = [request.command for request in esme_requests]
    assert commands[0] is Command.FIRMWARE_BEGIN and commands[-1] is Command.FIRMWARE_VERIFY
    blocks = [request for request in esme_requests if request.command is Command.FIRMWARE_BLOCK]
    assert len(blocks) == 4  # 3105 bytes
    assert all(len(block.body.block_data) <= MAX_FIRMWARE_BLOCK_BYTES for block in blocks)
    assert b"".join(block.body.block_data for block in blocks)[:4] == b"SEFW"
    firmware = rig.world.device_by_eui64(ESME_EUI64).firmware
    assert (firmware.running_version, firmware.pending_version) == ("1.0.0", "1.1.0")


def test_18_63_every_device_refused_is_our_refusal_code_with_per_device_reasons() -> None:
    rig = Rig()
    _hold_the_han(rig, HUB_ADDRESS)  # the hub itself is taking a firmware update
    xml = rig.submit(fixture_xml("11.1_update_firmware"))
    assert _code(xml) == S1SR_REFUSAL_CODE
    assert _message(xml, "DeviceStatus") == "FIRMWARE_UPDATE_IN_PROGRESS"
    reason = _message(xml, "ErrorReason") or ""
    assert "00-DB-12-34-56-78-90-A1" in reason and "00-DB-12-34-56-78-90-A2" in reason
    assert rig.sent(Command.FIRMWARE_BLOCK) == []
    for eui64 in (ESME_EUI64, GSME_EUI64):
        firmware = rig.world.device_by_eui64(eui64).firmware
        assert (firmware.pending_version, firmware.transfer_in_progress) == ("", False)


def test_18_63_unknown_device_in_the_list_is_refused_alone_with_e19() -> None:
    rig = Rig()
    xml = rig.submit(_with_value(
        "11.1_update_firmware", "00-DB-12-34-56-78-90-A2</sr:DeviceIDList>",
        "00-DB-12-34-56-78-90-FF</sr:DeviceIDList>"))
    assert _code(xml) == "I0"
    devices = fromstring(xml).findall(
        "sr:Body/sr:ResponseMessage/sr:UpdateFirmwareResponse/sr:Device", NS)
    assert [d.findtext("sr:ResponseCode", namespaces=NS) for d in devices] == ["I0", "E19"]


# --- future-dated -----------------------------------------------------------------------------

@pytest.mark.parametrize(("fixture", "command"), [
    ("1.6_prepayment_future_dated", Command.SET_PAYMENT_MODE),
    ("2.1_prepay_configuration_future_dated", Command.SET_PREPAYMENT_CONFIGURATION),
    ("6.4.1_load_limit_settings_future_dated", Command.SET_LOAD_LIMIT_SETTINGS),
    ("11.3_activate_firmware_future_dated", Command.FIRMWARE_ACTIVATE),
])
def test_future_dated_request_is_sent_whole_inside_schedule_request(
        fixture: str, command: Command) -> None:
    rig = Rig()
    if command is Command.FIRMWARE_ACTIVATE:
        _verify_an_image(rig)
    esme = rig.world.device_by_eui64(ESME_EUI64)
    meter_before = encode_meter_registers(rig.esme.registers)
    firmware_before = esme.firmware.to_state()
    xml = rig.submit(fixture_xml(fixture))
    assert _code(xml) == "I0"
    assert rig.sent(command) == []
    scheduled = rig.sent(Command.SCHEDULE_REQUEST)[0]
    assert scheduled.body.execution_time_seconds == 1894698000
    inner = decode_apdu(scheduled.body.request)
    assert isinstance(inner, Request) and inner.command is command
    assert _result(xml, "ExecutionDateTime") == "2030-01-15T09:00:00Z"
    assert esme.schedule[command].execution_time_seconds == 1894698000
    assert (encode_meter_registers(rig.esme.registers), esme.firmware.to_state()) == (
        meter_before, firmware_before)


def test_future_dated_load_limit_settings_apply_at_the_execution_time() -> None:
    rig = Rig()
    xml = rig.submit(_with_value("6.4.1_load_limit_settings_future_dated",
                                 "2030-01-15T09:00:00Z", "2026-01-05T10:00:00Z"))
    assert _code(xml) == "I0"
    assert rig.esme.registers.load_limit_power_threshold_w == 0
    rig.clock.advance_ms(3600 * 1000)
    xml = rig.submit(fixture_xml("4.15_read_load_limit_data"))
    assert rig.esme.registers.load_limit_power_threshold_w == 6000
    assert _result(xml, "LoadLimitPowerThreshold") == "6000"
    outcomes = rig.world.scheduled_outcomes(ESME_EUI64)
    assert [(o.execution_time_seconds, o.response.ok) for o in outcomes] == [
        (START_SECONDS + 3600, True)]


def test_future_dated_1_6_still_returns_the_truncated_threshold() -> None:
    rig = Rig()
    xml = rig.submit(fixture_xml("1.6_prepayment_future_dated"))
    assert rig.esme.registers.disablement_threshold_pence == 0  # not yet
    scheduled = decode_apdu(rig.sent(Command.SCHEDULE_REQUEST)[0].body.request)
    assert scheduled.body.disablement_threshold_pence == 556
    assert _result(xml, "DisablementThreshold") == "556000"


@pytest.mark.parametrize(("scheduled_fixture", "cancel_fixture", "command"), [
    ("1.6_prepayment_future_dated", "1.6_prepayment_cancellation", Command.SET_PAYMENT_MODE),
    ("11.3_activate_firmware_future_dated", "11.3_activate_firmware_cancellation",
     Command.FIRMWARE_ACTIVATE),
])
def test_cancellation_form_sends_cancel_scheduled_request_for_that_command(
        scheduled_fixture: str, cancel_fixture: str, command: Command) -> None:
    rig = Rig()
    if command is Command.FIRMWARE_ACTIVATE:
        _verify_an_image(rig)
    rig.submit(fixture_xml(scheduled_fixture))
    esme = rig.world.device_by_eui64(ESME_EUI64)
    assert command in esme.schedule
    xml = rig.submit(fixture_xml(cancel_fixture))
    assert _code(xml) == "I0"
    cancel = rig.sent(Command.CANCEL_SCHEDULED_REQUEST)[0]
    assert cancel.body.scheduled_command == command
    assert esme.schedule == {}
    assert _result(xml, "Cancelled") == "true"


def test_cancelling_when_nothing_is_scheduled_is_our_refusal_code() -> None:
    rig = Rig()
    xml = rig.submit(fixture_xml("1.6_prepayment_cancellation"))
    assert rig.world.device_by_eui64(ESME_EUI64).schedule == {}
    assert _code(xml) == S1SR_REFUSAL_CODE
    assert _message(xml, "DeviceStatus") == "NOTHING_SCHEDULED"


# --- review and field-trial fixes ---------------------------------------------------------------

def _devices(xml: str) -> list[dict[str, str | None]]:
    found = fromstring(xml).findall(
        "sr:Body/sr:ResponseMessage/sr:UpdateFirmwareResponse/sr:Device", NS)
    return [{child.tag.rpartition("}")[2]: child.text for child in device} for device in found]


def test_18_63_a_step_lost_after_begin_is_followed_by_a_verify_that_frees_the_han() -> None:
    rig = Rig()
    rig.link.lose_once.add((ESME_ADDRESS, Command.FIRMWARE_BLOCK))
    xml = rig.submit(_with_value("11.1_update_firmware",
                                 "00-DB-12-34-56-78-90-A1 00-DB-12-34-56-78-90-A2",
                                 "00-DB-12-34-56-78-90-A1"))
    assert _code(xml) == "E20"
    esme_commands = [request.command for address, request in rig.requests()
                     if address == ESME_ADDRESS]
    assert esme_commands == [Command.FIRMWARE_BEGIN, Command.FIRMWARE_BLOCK,
                             Command.FIRMWARE_VERIFY]
    assert rig.world.device_by_eui64(ESME_EUI64).firmware.transfer_in_progress is False
    _hold_the_han(rig, GSME_ADDRESS)  # the HAN is free again for another device's transfer


def test_18_63_image_version_is_reported_and_a_different_request_version_noted() -> None:
    rig = Rig()
    xml = rig.submit(_with_value("11.1_update_firmware", "<sr:FirmwareVersion>1.1.0<",
                                 "<sr:FirmwareVersion>9.9.9<"))
    assert _code(xml) == "I0"
    assert _result(xml, "FirmwareVersion") == "1.1.0"  # what the image header says
    assert _result(xml, "RequestedFirmwareVersion") == "9.9.9"
    assert "1.1.0" in (_result(xml, "FirmwareVersionNote") or "")


def test_18_63_a_non_sefw_image_is_refused_with_a_pointer_to_the_image_format() -> None:
    import base64
    import re

    rig = Rig()
    text = fixture_xml("11.1_update_firmware").decode()
    gbcs_like = base64.b64encode(bytes.fromhex("0000012f") + bytes(300)).decode()
    xml = rig.submit(re.sub(r"<sr:FirmwareImage>[^<]*<",
                            f"<sr:FirmwareImage>{gbcs_like}<", text))
    assert _code(xml) == S1SR_REFUSAL_CODE
    reason = _message(xml, "ErrorReason") or ""
    assert "FIRMWARE_BAD_HEADER" in reason
    assert "SEFW" in reason and "firmware_images/README.md" in reason


def test_18_63_every_device_unknown_is_e19_in_the_header_with_the_device_list_kept() -> None:
    rig = Rig()
    xml = rig.submit(_with_value("11.1_update_firmware",
                                 "00-DB-12-34-56-78-90-A1 00-DB-12-34-56-78-90-A2",
                                 "00-DB-12-34-56-78-90-FE 00-DB-12-34-56-78-90-FF"))
    assert _code(xml) == "E19"
    assert [(d["DeviceID"], d["ResponseCode"]) for d in _devices(xml)] == [
        ("00-DB-12-34-56-78-90-FE", "E19"), ("00-DB-12-34-56-78-90-FF", "E19")]


def test_18_63_refusals_of_different_kinds_stay_our_refusal_code_with_the_list_kept() -> None:
    rig = Rig()
    _hold_the_han(rig, HUB_ADDRESS)
    xml = rig.submit(_with_value("11.1_update_firmware", "00-DB-12-34-56-78-90-A2<",
                                 "00-DB-12-34-56-78-90-FF<"))
    assert _code(xml) == S1SR_REFUSAL_CODE
    assert [d["ResponseCode"] for d in _devices(xml)] == [S1SR_REFUSAL_CODE, "E19"]


def test_18_63_unknown_device_ids_cost_one_directory_read_per_request() -> None:
    rig = Rig()
    unknown = " ".join(f"00-DB-12-34-56-78-91-{i:02X}" for i in range(10))
    xml = rig.submit(_with_value("11.1_update_firmware",
                                 "00-DB-12-34-56-78-90-A1 00-DB-12-34-56-78-90-A2",
                                 f"00-DB-12-34-56-78-90-A1 {unknown}"))
    assert _code(xml) == "I0"
    directory_reads = [request for _, request in rig.requests()
                       if request.command is Command.READ_DEVICE_DIRECTORY]
    assert len(directory_reads) == 1
    assert [d["ResponseCode"] for d in _devices(xml)] == ["I0"] + ["E19"] * 10


def test_future_dated_request_replacing_an_earlier_one_reports_its_execution_time() -> None:
    rig = Rig()
    first = rig.submit(_with_value("6.4.1_load_limit_settings_future_dated",
                                   "2030-01-15T09:00:00Z", "2029-06-01T00:00:00Z"))
    assert _result(first, "ReplacedExecutionDateTime") is None
    xml = rig.submit(fixture_xml("6.4.1_load_limit_settings_future_dated"))
    assert _code(xml) == "I0"
    assert _result(xml, "ReplacedExecutionDateTime") == "2029-06-01T00:00:00Z"


@pytest.mark.parametrize(("element", "seconds"), [
    ("LoadLimitPeriod", MIN_LOAD_LIMIT_PERIOD_SECONDS - 1),
    ("LoadLimitPeriod", MAX_LOAD_LIMIT_PERIOD_SECONDS + 1),
    ("LoadLimitRestorationPeriod", MAX_LOAD_LIMIT_PERIOD_SECONDS + 1),
])
def test_6_4_1_future_dated_period_outside_the_device_range_is_invalid_and_not_scheduled(
        element: str, seconds: int) -> None:
    rig = Rig()
    old = {"LoadLimitPeriod": ">1800<", "LoadLimitRestorationPeriod": ">600<"}[element]
    xml = rig.submit(_with_value("6.4.1_load_limit_settings_future_dated", old, f">{seconds}<"))
    assert _code(xml) == "E-INVALID"
    assert f"{element} {seconds} s is outside" in (_message(xml, "ErrorReason") or "")
    assert rig.sent_commands() == []
    assert rig.world.device_by_eui64(ESME_EUI64).schedule == {}


def test_future_dated_request_not_after_the_device_clock_names_both_times() -> None:
    rig = Rig()
    xml = rig.submit(_with_value("6.4.1_load_limit_settings_future_dated",
                                 "2030-01-15T09:00:00Z", "2020-01-01T00:00:00Z"))
    assert _code(xml) == S1SR_REFUSAL_CODE
    reason = _message(xml, "ErrorReason") or ""
    assert "ExecutionDateTime 2020-01-01T00:00:00Z is not after the device's clock" in reason
    assert "2026-01-05T09:00:00Z" in reason  # the ESME's clock, read with READ_CLOCK
    assert _message(xml, "DeviceStatus") == "VALUE_OUT_OF_RANGE"


def test_2_1_debt_recovery_rate_cap_30_is_truncated_sent_as_0_and_returned_as_0() -> None:
    """Issue 10 point 1: the ESME 2.1 template's DebtRecoveryRateCap 30 (0.03 p) truncates to
    0 p (S1SR 18.27); it is sent, returned as 0, and the meter holds a cap of 0 p."""
    rig = Rig()
    xml = rig.submit(fixture_xml("2.1_prepay_configuration_small_debt_cap"))
    assert _code(xml) == "I0"
    assert _result(xml, "DebtRecoveryRateCap") == "0"
    assert _result(xml, "EmergencyCreditLimit") == "300000"
    assert _result(xml, "MaxMeterBalance") == "5000000"
    (sent,) = rig.sent(Command.SET_PREPAYMENT_CONFIGURATION)
    assert sent.body.debt_recovery_rate_cap_pence == 0
    parameters = rig.esme.registers.prepayment_parameters
    assert parameters.debt_recovery_rate_cap_pence == 0
    assert parameters.emergency_credit_limit_pence == 300


def test_2_1_debt_recovery_rate_cap_30_future_dated_is_scheduled_with_a_cap_of_0() -> None:
    rig = Rig()
    xml = rig.submit(fixture_xml("2.1_prepay_configuration_small_debt_cap_future_dated"))
    assert _code(xml) == "I0"
    assert _result(xml, "DebtRecoveryRateCap") == "0"
    scheduled = decode_apdu(rig.sent(Command.SCHEDULE_REQUEST)[0].body.request)
    assert scheduled.body.debt_recovery_rate_cap_pence == 0


def test_2_1_cancellation_never_depends_on_the_bodys_values() -> None:
    rig = Rig()
    rig.submit(fixture_xml("2.1_prepay_configuration_small_debt_cap_future_dated"))
    cancellation = _with_value("2.1_prepay_configuration_small_debt_cap_cancellation",
                               "<sr:EmergencyCreditLimit>300000<",
                               "<sr:EmergencyCreditLimit>-300000<")
    xml = rig.submit(cancellation)
    assert _code(xml) == "I0"
    assert _result(xml, "Cancelled") == "true"
    assert rig.sent_commands()[-1] is Command.CANCEL_SCHEDULED_REQUEST
    assert rig.world.device_by_eui64(ESME_EUI64).schedule == {}


def test_6_4_1_cancellation_above_the_maximum_threshold_still_cancels() -> None:
    rig = Rig()
    rig.submit(fixture_xml("6.4.1_load_limit_settings_future_dated"))
    text = fixture_xml("6.4.1_load_limit_settings_future_dated").decode()
    text = text.replace("2030-01-15T09:00:00Z", "3000-12-31T00:00:00Z")
    start = text.index("<sr:LoadLimitPowerThreshold>") + len("<sr:LoadLimitPowerThreshold>")
    text = text[:start] + "70000" + text[text.index("<", start):]
    xml = rig.submit(text)
    assert _code(xml) == "I0"
    assert rig.world.device_by_eui64(ESME_EUI64).schedule == {}


def test_11_3_future_dated_without_a_verified_image_is_refused_and_not_scheduled() -> None:
    rig = Rig()
    xml = rig.submit(fixture_xml("11.3_activate_firmware_future_dated"))
    assert _code(xml) == S1SR_REFUSAL_CODE
    assert _message(xml, "DeviceStatus") == "FIRMWARE_NO_VERIFIED_IMAGE"
    assert rig.sent(Command.SCHEDULE_REQUEST) == []
    assert rig.world.device_by_eui64(ESME_EUI64).schedule == {}


def test_18_62_add_of_a_device_already_joined_says_so_and_echoes_no_join_time() -> None:
    rig = Rig()
    xml = rig.submit(_with_value("8.11_add_han_device", "00-DB-12-34-56-78-90-A3",
                                 "00-DB-12-34-56-78-90-A1"))  # the ESME, on the HAN already
    assert _code(xml) == "I0"
    assert _result(xml, "AlreadyJoined") == "true"
    assert _result(xml, "JoinTimePeriod") is None
    assert _result(xml, "JoinWindowEndDateTime") is None
