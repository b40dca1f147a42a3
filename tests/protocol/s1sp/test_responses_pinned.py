"""Whole DUIS response bodies of the read, supply and load-limiting SRs: every element name, in
order, with its value (issue 13: element names and several values were never asserted).

The ESME gets a meter table in which every value differs from its neighbours and from the
defaults, so that a value reported under the wrong name, or a name misspelt, fails. Expected
values are written out: money is pence x 1000, CutOffGracePeriod minutes x 60."""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element, fromstring

from protocol.s1sp.duis import DUIS_NAMESPACE
from tests.protocol.s1sp.conftest import Rig, fixture_xml

NS = {"sr": DUIS_NAMESPACE}

ESME_METER: dict[str, Any] = {
    "payment_mode": "prepayment", "meter_balance_pence": 150, "supply_state": "enabled",
    "disablement_threshold_pence": 7, "suspend_debt_disabled": True,
    "suspend_debt_emergency": True, "emergency_credit_limit_pence": 500,
    "emergency_credit_threshold_pence": 200, "low_credit_threshold_pence": 300,
    "max_meter_balance_pence": 25000, "max_credit_threshold_pence": 10000,
    "debt_recovery_rate_cap_pence": 400, "low_emergency_credit_threshold_pence": 150,
    "cut_off_grace_period_minutes": 5, "keypad_lock_timeout_seconds": 45,
    "non_disablement_calendar_id": 1, "utrn_type": 2,
    "time_debt_1_pence": 1500, "time_debt_1_recovery_rate_pence": 20,
    "time_debt_1_recovery_period": "daily",
    "time_debt_2_pence": 700, "time_debt_2_recovery_rate_pence": 5,
    "time_debt_2_recovery_period": "hourly",
    "payment_debt_pence": 2000, "payment_debt_recovery_percentage": 10,
    "load_limit_power_threshold_w": 4000, "load_limit_period_seconds": 900,
    "load_limit_restoration_period_seconds": 120,
}


def _items(node: Element) -> list[tuple[str, Any]]:
    return [(child.tag.rsplit("}", 1)[1], _items(child) if len(child) else child.text)
            for child in node]


def _response(rig: Rig, fixture: str) -> tuple[str | None, list[tuple[str, Any]]]:
    """The header's ResponseCode and the SR response body as (name, text) pairs."""
    root = fromstring(rig.submit(fixture_xml(fixture)))
    code = root.findtext("sr:Header/sr:ResponseCode", namespaces=NS)
    return code, _items(root.findall("sr:Body/sr:ResponseMessage/*", NS)[-1])


def test_4_13_reports_every_prepayment_setting_under_its_duis_name() -> None:
    assert _response(Rig(ESME_METER), "4.13_read_prepayment_configuration") == ("I0", [
        ("PaymentMode", "Prepayment"), ("SuspendDebtDisabled", "true"),
        ("SuspendDebtEmergency", "true"), ("DisablementThreshold", "7000"),
        ("EmergencyCreditLimit", "500000"), ("EmergencyCreditThreshold", "200000"),
        ("LowCreditThreshold", "300000"), ("MaxMeterBalance", "25000000"),
        ("MaxCreditThreshold", "10000000"), ("DebtRecoveryRateCap", "400000"),
        ("LowEmergencyCreditThreshold", "150000"), ("CutOffGracePeriod", "300"),
        ("KeypadLockTimeout", "45"), ("NonDisablementCalendarID", "1"), ("UTRNType", "2")])


def test_4_3_and_4_18_report_balances_and_debts_before_and_after_emergency_credit() -> None:
    rig = Rig(ESME_METER)
    debts = [("AccumulatedDebt", "4200000"), ("TimeDebtRegister1", "1500000"),
             ("TimeDebtRegister2", "700000"), ("PaymentDebtRegister", "2000000"),
             ("SupplyStatus", "On"), ("SupplyOffReason", "None")]
    assert _response(rig, "4.3_read_instantaneous_prepay_values") == ("I0", [
        ("PaymentMode", "Prepayment"), ("MeterBalance", "150000"),
        ("EmergencyCreditBalance", "0"), ("EmergencyCreditActive", "false"), *debts])
    assert _response(rig, "4.18_read_meter_balance") == ("I0", [
        ("MeterBalance", "150000"), ("EmergencyCreditBalance", "0")])
    assert _response(rig, "2.5_activate_emergency_credit") == ("I0", [
        ("EmergencyCreditBalance", "500000"), ("MeterBalance", "150000")])
    assert _response(rig, "4.3_read_instantaneous_prepay_values") == ("I0", [
        ("PaymentMode", "Prepayment"), ("MeterBalance", "150000"),
        ("EmergencyCreditBalance", "500000"), ("EmergencyCreditActive", "true"), *debts])
    assert _response(rig, "4.18_read_meter_balance") == ("I0", [
        ("MeterBalance", "150000"), ("EmergencyCreditBalance", "500000")])


def test_4_3_reports_a_credit_meter_as_credit() -> None:
    code, items = _response(Rig({**ESME_METER, "payment_mode": "credit"}),
                            "4.3_read_instantaneous_prepay_values")
    assert code == "I0"
    assert items[0] == ("PaymentMode", "Credit")


LOAD_LIMIT_SETTINGS = [("LoadLimitPowerThreshold", "4000"), ("LoadLimitPeriod", "900"),
                       ("LoadLimitRestorationPeriod", "120")]


def test_4_15_and_6_4_2_report_the_settings_counter_and_active_flag() -> None:
    rig = Rig({**ESME_METER, "load_w": 5000})
    assert _response(rig, "4.15_read_load_limit_data") == ("I0", [
        *LOAD_LIMIT_SETTINGS, ("LoadLimitCounter", "0"), ("LoadLimitActive", "false")])
    rig.clock.advance_ms(900 * 1000)  # 5000 W for a whole 900 s period: above 4000 W
    assert _response(rig, "4.15_read_load_limit_data") == ("I0", [
        *LOAD_LIMIT_SETTINGS, ("LoadLimitCounter", "1"), ("LoadLimitActive", "true")])
    assert _response(rig, "6.4.2_load_limit_counter_reset") == ("I0", [
        *LOAD_LIMIT_SETTINGS, ("LoadLimitCounter", "0"), ("LoadLimitActive", "true")])
    code, items = _response(rig, "4.3_read_instantaneous_prepay_values")
    assert code == "I0"
    assert items[-2:] == [("SupplyStatus", "Off"), ("SupplyOffReason", "LoadLimit")]


def test_7_x_report_the_supply_switch_state_and_why_it_is_off() -> None:
    rig = Rig(ESME_METER)
    assert _response(rig, "7.2_disable_supply") == ("I0", [
        ("SupplyStatus", "Off"), ("SupplyOffReason", "Remote")])
    assert _response(rig, "7.4_read_supply_status") == ("I0", [
        ("SupplyStatus", "Off"), ("SupplyOffReason", "Remote")])
    assert _response(rig, "7.3_arm_supply") == ("I0", [
        ("SupplyStatus", "Armed"), ("SupplyOffReason", "Remote")])
    assert _response(rig, "7.4_read_supply_status") == ("I0", [
        ("SupplyStatus", "Armed"), ("SupplyOffReason", "Remote")])
    assert _response(rig, "7.1_enable_supply") == ("I0", [
        ("SupplyStatus", "On"), ("SupplyOffReason", "None")])
