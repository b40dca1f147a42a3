"""Prepayment SRs whose refusals, edges and builder bodies no test pinned (issue 13): 1.6 and
2.3 bodies refused with their whole reason, the DebtRecoveryRate range edges, 2.1's signed
DisablementThreshold and the zero of thresholds not given, 2.3's request per register and the
registers already applied when one is refused, and the 1.6, 2.1 and 2.3 builders.

Every test drives the adapter with the real world on a virtual clock (see conftest.py); the
expected values are written out (DUIS money in 1/100000 GBP, device values in pence)."""

from __future__ import annotations

from typing import Any

import pytest

from protocol.apdu import (
    Command,
    DebtRecoveryPeriod,
    DebtRegister,
    PaymentMode,
    PrepaymentConfigurationField,
    SetPrepaymentConfigurationRequest,
    UpdateDebtRequest,
)
from protocol.s1sp.builders import DuisRequestBuilder
from protocol.s1sp.service_requests.prepayment import PaymentDebtChange, TimeDebtChange
from tests.protocol.s1sp.conftest import ESME_EUI64, Rig, fixture_xml
from tests.protocol.s1sp.duis_answers import (
    Tree,
    error_reason,
    request_body,
    response_code,
    result_tree,
)


def _fixture(name: str, old: str, new: str) -> str:
    text = fixture_xml(name).decode()
    assert old in text
    return text.replace(old, new, 1)


def _refused(rig: Rig, xml: str, code: str = "E-INVALID") -> str:
    response = rig.submit(xml)
    assert response_code(response) == code, error_reason(response)
    return error_reason(response)


def _answered(rig: Rig, xml: str) -> list[Tree]:
    response = rig.submit(xml)
    assert response_code(response) == "I0", error_reason(response)
    return result_tree(response)



# --- 1.6 -------------------------------------------------------------------------------------

_SUSPEND_DISABLED = "<sr:SuspendDebtDisabled>true</sr:SuspendDebtDisabled>"
_SUSPEND_EMERGENCY = "<sr:SuspendDebtEmergency>false</sr:SuspendDebtEmergency>"


@pytest.mark.parametrize(("old", "new", "reason"), [
    ("<sr:Prepayment>", "<sr:Prepayment/><sr:Prepayment>",
     "UpdatePaymentMode has 2 Prepayment elements; expected one"),
    ("<sr:Prepayment>", "<sr:Credit/><sr:Credit/><sr:Prepayment>",
     "UpdatePaymentMode has 2 Credit elements; expected one"),
    ("<sr:Prepayment>", "<sr:Credit/><sr:Prepayment>",
     "UpdatePaymentMode must hold exactly one of Prepayment or Credit"),
    ("<sr:DisablementThreshold>556677</sr:DisablementThreshold>", "",
     "UpdatePaymentMode/Prepayment is missing its DisablementThreshold element"),
    ("<sr:DisablementThreshold>556677<", "<sr:DisablementThreshold>2147483648<",
     "DisablementThreshold 2147483648 is outside the DUIS int32 range "
     "-2147483648..2147483647"),
    (_SUSPEND_DISABLED, _SUSPEND_DISABLED * 2,
     "UpdatePaymentMode/Prepayment has 2 SuspendDebtDisabled elements; expected one"),
    (_SUSPEND_EMERGENCY, _SUSPEND_EMERGENCY * 2,
     "UpdatePaymentMode/Prepayment has 2 SuspendDebtEmergency elements; expected one"),
])
def test_1_6_malformed_body_is_invalid_with_its_reason_and_nothing_sent(
        old: str, new: str, reason: str) -> None:
    rig = Rig()
    assert _refused(rig, _fixture("1.6_prepayment", old, new)) == reason
    assert rig.sent_commands() == []


def test_the_1_6_builder_writes_the_flags_false_unless_given_and_the_threshold() -> None:
    builder = DuisRequestBuilder()
    assert request_body(builder.update_payment_mode(ESME_EUI64, PaymentMode.PREPAYMENT)) == [
        ("UpdatePaymentMode", [("Prepayment", [
            ("SuspendDebtDisabled", "false"), ("SuspendDebtEmergency", "false"),
            ("DisablementThreshold", "0")])])]
    assert request_body(builder.update_payment_mode(
        ESME_EUI64, PaymentMode.PREPAYMENT, disablement_threshold_pence=-150,
        suspend_debt_disabled=True, suspend_debt_emergency=True)) == [
        ("UpdatePaymentMode", [("Prepayment", [
            ("SuspendDebtDisabled", "true"), ("SuspendDebtEmergency", "true"),
            ("DisablementThreshold", "-150000")])])]


def test_the_1_6_builder_refuses_a_threshold_outside_int32_naming_it() -> None:
    with pytest.raises(ValueError) as refused:
        DuisRequestBuilder().update_payment_mode(ESME_EUI64, PaymentMode.PREPAYMENT,
                                                 disablement_threshold_pence=2_147_484)
    assert "DisablementThreshold" in str(refused.value)


# --- 2.1 -------------------------------------------------------------------------------------

def test_2_1_negative_disablement_threshold_is_in_its_signed_range_and_sent() -> None:
    rig = Rig()
    xml = _fixture("2.1_prepay_configuration_electricity",
                   "<sr:DisablementThreshold>556677<", "<sr:DisablementThreshold>-50999<")
    assert ("DisablementThreshold", "-50000") in _answered(rig, xml)
    assert rig.sent(Command.SET_PREPAYMENT_CONFIGURATION)[0].body.disablement_threshold_pence \
        == -50


def test_2_1_thresholds_not_given_go_to_the_meter_as_zero_and_not_present() -> None:
    rig = Rig()
    _answered(rig, DuisRequestBuilder().update_prepay_configuration(
        ESME_EUI64, emergency_credit_limit_pence=500))
    assert rig.sent(Command.SET_PREPAYMENT_CONFIGURATION)[0].body == \
        SetPrepaymentConfigurationRequest(
            fields_present=PrepaymentConfigurationField.EMERGENCY_CREDIT_LIMIT,
            debt_recovery_rate_cap_pence=0, emergency_credit_limit_pence=500,
            emergency_credit_threshold_pence=0, low_credit_threshold_pence=0,
            max_meter_balance_pence=0, max_credit_threshold_pence=0,
            disablement_threshold_pence=0)


def test_2_1_threshold_outside_its_register_names_the_element() -> None:
    rig = Rig()
    xml = _fixture("2.1_prepay_configuration_electricity", "<sr:MaxCreditThreshold>15000999<",
                   "<sr:MaxCreditThreshold>-1000<")
    assert _refused(rig, xml, "E-S1SR") == (
        "MaxCreditThreshold -1000 (= -1 p) is outside the device register's range "
        "0..2147483 p (0..2147483000 in 1/100000 GBP); nothing was sent")
    assert rig.sent_commands() == []


def test_the_2_1_builder_names_the_element_of_a_value_outside_int32_or_that_none_is_given(
) -> None:
    builder = DuisRequestBuilder()
    with pytest.raises(ValueError) as too_big:
        builder.update_prepay_configuration(ESME_EUI64, low_credit_threshold_pence=2_147_484)
    assert "LowCreditThreshold" in str(too_big.value)
    with pytest.raises(ValueError) as nothing:
        builder.update_prepay_configuration(ESME_EUI64)
    assert str(nothing.value) == (
        "update_prepay_configuration sets nothing: give at least one threshold")


# --- 2.3 -------------------------------------------------------------------------------------

_DEBT = "2.3_update_debt"
_RECOVERY_PERIOD = "<sr:DebtRecoveryRatePeriod>DAILY</sr:DebtRecoveryRatePeriod>"
_PER_PAYMENT = "<sr:DebtRecoveryPerPayment>1250</sr:DebtRecoveryPerPayment>"
_GAS_RATE = "<sr:DebtRecoveryRate>50000</sr:DebtRecoveryRate>"
_PRICE_SCALE = "<sr:DebtRecoveryRatePriceScale>-2</sr:DebtRecoveryRatePriceScale>"


def _debt_rig() -> Rig:
    return Rig({"payment_debt_pence": 1000})


@pytest.mark.parametrize(("old", "new", "reason"), [
    ("<sr:ElecDebtRecovery1>",
     "<sr:GasDebtRecovery1><sr:DebtRecoveryRate>1</sr:DebtRecoveryRate>"
     f"{_RECOVERY_PERIOD}</sr:GasDebtRecovery1><sr:ElecDebtRecovery1>",
     "UpdateDebt has more than one recovery element for TIME_DEBT_1"),
    (_RECOVERY_PERIOD, "",
     "UpdateDebt/ElecDebtRecovery1 is missing its DebtRecoveryRatePeriod element"),
    ("<sr:DebtRecoveryRatePeriod>DAILY<", "<sr:DebtRecoveryRatePeriod>WEEKLY<",
     "DebtRecoveryRatePeriod 'WEEKLY' is not DAILY or HOURLY"),
    ("<sr:DebtRecoveryRate>35</sr:DebtRecoveryRate>", "",
     "UpdateDebt/ElecDebtRecovery1 is missing its DebtRecoveryRate element"),
    ("<sr:DebtRecoveryRate>35<", "<sr:DebtRecoveryRate>x<",
     "ElecDebtRecovery1/DebtRecoveryRate must be a whole number, not 'x'"),
    ("<sr:DebtRecoveryRate>35<", "<sr:DebtRecoveryRate>32768<",
     "ElecDebtRecovery1/DebtRecoveryRate 32768 is outside its DUIS type's range -32768..32767"),
    ("<sr:DebtRecoveryRate>35<", "<sr:DebtRecoveryRate>-32769<",
     "ElecDebtRecovery1/DebtRecoveryRate -32769 is outside its DUIS type's range "
     "-32768..32767"),
    # in the XSD's range, so refused only as a negative rate
    ("<sr:DebtRecoveryRate>35<", "<sr:DebtRecoveryRate>-32768<",
     "DebtRecoveryRate -32768 x 10^-2 GBP is -32768 pence, outside the device's 0..2147483 "
     "pence"),
    (_PRICE_SCALE, _PRICE_SCALE * 2,
     "UpdateDebt/ElecDebtRecovery1 has 2 DebtRecoveryRatePriceScale elements; expected one"),
    ("<sr:DebtRecoveryRatePriceScale>-2<", "<sr:DebtRecoveryRatePriceScale>x<",
     "DebtRecoveryRatePriceScale must be a whole number, not 'x'"),
    ("<sr:TimeDebtRegister1>5000999<", "<sr:TimeDebtRegister1>2147483648<",
     "TimeDebtRegister1 2147483648 is outside the DUIS int32 range -2147483648..2147483647"),
    ("<sr:TimeDebtRegister1>5000999</sr:TimeDebtRegister1>",
     "<sr:TimeDebtRegister1>1</sr:TimeDebtRegister1>" * 2,
     "UpdateDebt has 2 TimeDebtRegister1 elements; expected one"),
    (_PER_PAYMENT, _PER_PAYMENT * 2,
     "UpdateDebt has 2 DebtRecoveryPerPayment elements; expected one"),
])
def test_2_3_malformed_body_is_invalid_with_its_reason_and_nothing_sent(
        old: str, new: str, reason: str) -> None:
    rig = _debt_rig()
    assert _refused(rig, _fixture(_DEBT, old, new)) == reason
    assert rig.sent_commands() == []


def test_2_3_largest_electricity_debt_recovery_rate_is_taken() -> None:
    rig = _debt_rig()
    _answered(rig, _fixture(_DEBT, "<sr:DebtRecoveryRate>35<", "<sr:DebtRecoveryRate>32767<"))
    assert rig.esme.registers.debts[DebtRegister.TIME_DEBT_1].debt_recovery_rate_pence == 32_767


@pytest.mark.parametrize(("new", "reason"), [
    (_GAS_RATE + _PRICE_SCALE,
     "GasDebtRecovery1 has no DebtRecoveryRatePriceScale in DUIS: the gas DebtRecoveryRate is "
     "in 1/100000 GBP"),
    (_GAS_RATE + _PRICE_SCALE * 2,
     "UpdateDebt/GasDebtRecovery1 has 2 DebtRecoveryRatePriceScale elements; expected one"),
])
def test_2_3_gas_recovery_with_a_price_scale_is_invalid_with_its_reason(new: str,
                                                                         reason: str) -> None:
    rig = Rig()
    assert _refused(rig, _fixture("2.3_update_debt_gas", _GAS_RATE, new)) == reason
    assert rig.sent_commands() == []


def test_2_3_electricity_rate_without_its_scale_is_duis_money_truncated_to_pence() -> None:
    """35 x 10^-5 GBP is 0.035 p: the meter is sent a rate of 0 p."""
    rig = _debt_rig()
    xml = _fixture(_DEBT, "<sr:DebtRecoveryRatePriceScale>-2</sr:DebtRecoveryRatePriceScale>", "")
    assert _answered(rig, xml) == [
        ("TimeDebtRegister1", [("DebtValue", "5000000"), ("DebtRecoveryRate", "0"),
                               ("DebtRecoveryRatePriceScale", "-2"),
                               ("DebtRecoveryRatePeriod", "DAILY")]),
        ("PaymentDebtRegister", [("DebtValue", "750000"), ("DebtRecoveryPerPayment", "1200")])]


def test_2_3_sends_each_register_with_only_its_own_kind_of_recovery() -> None:
    """A time-debt register goes with its rate and no percentage; the payment-debt register
    with its percentage and no rate; a register given only its recovery adjusts by 0."""
    rig = _debt_rig()
    _answered(rig, _fixture(_DEBT, "<sr:TimeDebtRegister1>5000999</sr:TimeDebtRegister1>", ""))
    assert [request.body for request in rig.sent(Command.UPDATE_DEBT)] == [
        UpdateDebtRequest(debt_register=DebtRegister.TIME_DEBT_1, debt_adjustment_pence=0,
                          debt_recovery_rate_pence=35,
                          debt_recovery_period=DebtRecoveryPeriod.DAILY,
                          debt_recovery_percentage=0),
        UpdateDebtRequest(debt_register=DebtRegister.PAYMENT_DEBT, debt_adjustment_pence=-250,
                          debt_recovery_rate_pence=0,
                          debt_recovery_period=DebtRecoveryPeriod.DAILY,
                          debt_recovery_percentage=12)]


def test_2_3_payment_debt_without_its_recovery_is_refused_with_the_whole_reason() -> None:
    rig = _debt_rig()
    assert _refused(rig, _fixture(_DEBT, _PER_PAYMENT, ""), "E-S1SR") == (
        "PaymentDebtRegister needs DebtRecoveryPerPayment: the Secure device sets the register "
        "and its recovery together; nothing was sent")
    assert rig.sent_commands() == []


def test_2_3_time_debt_without_its_recovery_is_refused_with_the_whole_reason() -> None:
    text = fixture_xml(_DEBT).decode()
    start, end = text.index("<sr:ElecDebtRecovery1>"), text.index("</sr:ElecDebtRecovery1>")
    rig = _debt_rig()
    assert _refused(rig, text[:start] + text[end + len("</sr:ElecDebtRecovery1>"):],
                    "E-S1SR") == (
        "TimeDebtRegister1 needs its ElecDebtRecovery/GasDebtRecovery settings: the Secure "
        "device sets the register and its recovery together; nothing was sent")


def _debt_refusal(meter: dict[str, Any]) -> str:
    rig = Rig(meter)
    return _refused(rig, fixture_xml("2.3_update_debt_electricity").decode(), "E-S1SR")


def test_2_3_refusal_of_the_first_register_says_none_was_applied() -> None:
    # the fixture adds 30 p to TimeDebtRegister1, past the 2147483 p a register may hold
    reason = _debt_refusal({"time_debt_1_pence": 2_147_470})
    assert reason.startswith("TimeDebtRegister1: ")
    assert reason.endswith(" (already applied: none)")


def test_2_3_refusal_of_the_third_register_lists_the_two_applied() -> None:
    # 30 p, 15 p, then 50 p: the three together would pass 2147483 p only with the third
    reason = _debt_refusal({"time_debt_1_pence": 2_147_400})
    assert reason.startswith("PaymentDebtRegister: ")
    assert reason.endswith(" (already applied: TimeDebtRegister1, TimeDebtRegister2)")


def test_the_2_3_builder_writes_the_second_time_register_alone() -> None:
    xml = DuisRequestBuilder().update_debt(
        ESME_EUI64, time_debt_register_2=TimeDebtChange(recovery_rate_pence=40,
                                                        adjust_pence=120))
    assert request_body(xml) == [("UpdateDebt", [
        ("TimeDebtRegister2", "120000"),
        ("ElecDebtRecovery2", [("DebtRecoveryRate", "40"), ("DebtRecoveryRatePriceScale", "-2"),
                               ("DebtRecoveryRatePeriod", "DAILY")])])]


@pytest.mark.parametrize(("change", "element"), [
    ({"time_debt_register_1": TimeDebtChange(recovery_rate_pence=1, adjust_pence=2_147_484)},
     "TimeDebtRegister1"),
    ({"payment_debt_register": PaymentDebtChange(recovery_percentage=1,
                                                 adjust_pence=2_147_484)},
     "PaymentDebtRegister"),
])
def test_the_2_3_builder_names_the_register_of_an_adjustment_outside_int32(
        change: dict[str, Any], element: str) -> None:
    with pytest.raises(ValueError) as refused:
        DuisRequestBuilder().update_debt(ESME_EUI64, **change)
    assert element in str(refused.value)


def test_the_2_3_builder_refuses_a_request_naming_no_register() -> None:
    with pytest.raises(ValueError) as refused:
        DuisRequestBuilder().update_debt(ESME_EUI64)
    assert str(refused.value) == "update_debt names no debt register"


def _emptied(name: str, wrapper: str) -> str:
    """The fixture with everything inside ``wrapper`` left out."""
    text = fixture_xml(name).decode()
    start = text.index(f"<sr:{wrapper}>") + len(f"<sr:{wrapper}>")
    return text[:start] + text[text.index(f"</sr:{wrapper}>"):]


@pytest.mark.parametrize(("old", "new", "reason"), [
    ("<sr:DebtRecoveryPerPayment>1250<", "<sr:DebtRecoveryPerPayment>x<",
     "DebtRecoveryPerPayment must be a whole number, not 'x'"),
])
def test_2_3_malformed_per_payment_is_invalid_with_its_reason(old: str, new: str,
                                                               reason: str) -> None:
    assert _refused(_debt_rig(), _fixture(_DEBT, old, new)) == reason


def test_2_3_naming_no_register_is_invalid_with_the_whole_reason() -> None:
    assert _refused(Rig(), _emptied(_DEBT, "UpdateDebt")) == (
        "UpdateDebt names no debt register: give TimeDebtRegister1, TimeDebtRegister2, "
        "PaymentDebtRegister or their recovery settings")


def test_2_3_one_time_register_alone_sends_only_that_register() -> None:
    rig = _debt_rig()
    xml = _fixture(_DEBT, "<sr:PaymentDebtRegister>-250500</sr:PaymentDebtRegister>", "")
    assert _answered(rig, xml.replace(_PER_PAYMENT, "")) == [
        ("TimeDebtRegister1", [("DebtValue", "5000000"), ("DebtRecoveryRate", "35"),
                               ("DebtRecoveryRatePriceScale", "-2"),
                               ("DebtRecoveryRatePeriod", "DAILY")])]
    assert [request.body.debt_register for request in rig.sent(Command.UPDATE_DEBT)] == [
        DebtRegister.TIME_DEBT_1]


# --- 1.5, 2.1, 2.2: bodies -------------------------------------------------------------------

_PREPAY = "2.1_prepay_configuration_electricity"
_LOW_CREDIT = "<sr:LowCreditThreshold>300001</sr:LowCreditThreshold>"


@pytest.mark.parametrize(("name", "old", "new", "reason"), [
    ("1.5_adjust_meter_balance", "<sr:AdjustMeterBalance>",
     "<sr:AdjustMeterBalance>1</sr:AdjustMeterBalance><sr:AdjustMeterBalance>",
     "UpdateMeterBalance has 2 AdjustMeterBalance elements; expected one"),
    ("1.5_reset_meter_balance", "<sr:ResetMeterBalance",
     "<sr:ResetMeterBalance/><sr:ResetMeterBalance",
     "UpdateMeterBalance has 2 ResetMeterBalance elements; expected one"),
    ("1.5_adjust_meter_balance", "<sr:AdjustMeterBalance>1234567<",
     "<sr:AdjustMeterBalance>2147483648<",
     "AdjustMeterBalance 2147483648 is outside the DUIS int32 range -2147483648..2147483647"),
    ("1.5_adjust_meter_balance", "<sr:AdjustMeterBalance>1234567<",
     "<sr:ResetMeterBalance/><sr:AdjustMeterBalance>1234567<",
     "UpdateMeterBalance must hold exactly one of AdjustMeterBalance or ResetMeterBalance"),
    (_PREPAY, "<sr:LowCreditThreshold>300001<", "<sr:LowCreditThreshold>2147483648<",
     "LowCreditThreshold 2147483648 is outside the DUIS int32 range -2147483648..2147483647"),
    (_PREPAY, _LOW_CREDIT, _LOW_CREDIT * 2,
     "UpdatePrepayConfiguration has more than one LowCreditThreshold element"),
    ("2.2_top_up_device", "<sr:UTRN>20206380815746810663</sr:UTRN>", "<sr:UTRN>123</sr:UTRN>",
     "UTRN '123' is not 20 digits"),
    ("2.2_top_up_device", "<sr:UTRN>20206380815746810663</sr:UTRN>", "",
     "TopUpDevice is missing its UTRN element"),
])
def test_malformed_1_5_2_1_and_2_2_bodies_are_invalid_with_their_reason(
        name: str, old: str, new: str, reason: str) -> None:
    rig = Rig()
    assert _refused(rig, _fixture(name, old, new)) == reason
    assert rig.sent_commands() == []


def test_2_1_setting_nothing_is_invalid_naming_every_element_it_takes() -> None:
    assert _refused(Rig(), _emptied(_PREPAY, "UpdatePrepayConfigElectricity")) == (
        "UpdatePrepayConfiguration sets nothing: give at least one of DebtRecoveryRateCap, "
        "EmergencyCreditLimit, EmergencyCreditThreshold, LowCreditThreshold, MaxMeterBalance, "
        "MaxCreditThreshold, DisablementThreshold")


def test_2_2_response_in_full() -> None:
    assert _answered(Rig(), fixture_xml("2.2_top_up_device").decode()) == [
        ("CreditAdded", "450000"), ("EmergencyCreditRepaid", "0"), ("DebtRecovered", "50000"),
        ("MeterBalance", "1700000")]


@pytest.mark.parametrize("arguments", [{}, {"adjust_pence": 1, "reset": True}])
def test_the_1_5_builder_takes_exactly_one_of_an_adjustment_or_a_reset(
        arguments: dict[str, Any]) -> None:
    with pytest.raises(ValueError) as refused:
        DuisRequestBuilder().update_meter_balance(ESME_EUI64, **arguments)
    assert str(refused.value) == (
        "update_meter_balance takes exactly one of adjust_pence or reset=True")


def test_the_1_5_builder_names_an_adjustment_outside_int32() -> None:
    with pytest.raises(ValueError) as refused:
        DuisRequestBuilder().update_meter_balance(ESME_EUI64, adjust_pence=2_147_484)
    assert str(refused.value) == (
        "AdjustMeterBalance 2147484 p is 2147484000 in DUIS money (1/100000 GBP), outside the "
        "int32 range -2147483648..2147483647")
