"""A refusal for an out-of-range value names the DUIS element (issue 10 point 8)."""

from __future__ import annotations

from protocol.apdu import Command
from tests.protocol.s1sp.conftest import Rig, fixture_xml
from tests.protocol.s1sp.duis_answers import error_reason, response_code
from tests.protocol.s1sp.templates_rig import TemplatesRig, template_fixture_xml


def test_2_1_negative_threshold_is_refused_unsent_naming_the_element_and_range() -> None:
    rig = Rig()
    before = rig.esme.registers.prepayment_parameters
    xml = rig.submit(fixture_xml("2.1_prepay_configuration_negative_threshold"))
    assert response_code(xml) == "E-S1SR"
    assert error_reason(xml).startswith(
        "LowCreditThreshold -200000 (= -200 p) is outside the device register's range "
        "0..2147483 p (0..2147483000 in 1/100000 GBP)")
    assert rig.sent(Command.SET_PREPAYMENT_CONFIGURATION) == []
    assert rig.esme.registers.prepayment_parameters == before


def test_1_6_disablement_threshold_at_the_duis_minimum_fits_the_signed_register() -> None:
    """Every int32 DUIS value truncates into -2147483..2147483 p: nothing to refuse."""
    rig = Rig()
    text = fixture_xml("1.6_prepayment").decode()
    start = text.index("<sr:DisablementThreshold>") + len("<sr:DisablementThreshold>")
    xml = rig.submit(text[:start] + "-2147483648" + text[text.index("<", start):])
    assert response_code(xml) == "I0"
    assert rig.esme.registers.disablement_threshold_pence == -2_147_483


def test_1_5_device_out_of_range_refusal_names_adjust_meter_balance() -> None:
    rig = TemplatesRig()
    rig.submit(template_fixture_xml("1.5_adjust_meter_balance_int32_minimum"))
    xml = rig.submit(template_fixture_xml("1.5_adjust_meter_balance_int32_minimum"))
    assert response_code(xml) == "E-S1SR"
    assert error_reason(xml).startswith(
        "AdjustMeterBalance -2147483648: -2147483 p would take the meter balance outside its "
        "range -2147483..2147483 p")


def test_2_3_device_out_of_range_refusal_names_the_register_and_its_range() -> None:
    rig = Rig({"payment_debt_pence": 100})
    xml = rig.submit(fixture_xml("2.3_update_debt"))
    assert response_code(xml) == "E-S1SR"
    assert error_reason(xml).startswith("PaymentDebtRegister: device ")
    assert "the adjustment -250 p would take the register outside 0..2147483 p" in error_reason(xml)
