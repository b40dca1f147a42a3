"""Money in DUIS responses never leaves int32 in 1/100000 GBP; a request that would take a
device register out of its documented range (+-2147483 p) is refused with nothing changed
(issue 10 point 4)."""

from __future__ import annotations

import pytest

from protocol.s1sp.errors import UnrepresentableValueError
from protocol.s1sp.units import pence_to_duis_money
from tests.protocol.s1sp.duis_answers import response_code, result
from tests.protocol.s1sp.templates_rig import (
    TEMPLATES_ESME_EUI64,
    TemplatesRig,
    template_fixture_xml,
)


def test_a_never_configured_credit_gas_meter_reports_limits_duis_can_hold() -> None:
    rig = TemplatesRig()
    xml = rig.submit(template_fixture_xml("4.13_read_prepayment_configuration_gas"))
    assert response_code(xml) == "I0"
    assert result(xml, "MaxMeterBalance") == "2147483000"
    assert result(xml, "MaxCreditThreshold") == "2147483000"
    assert result(xml, "DebtRecoveryRateCap") == "2147483000"


def test_adjust_meter_balance_past_the_register_minimum_is_refused_with_nothing_changed() -> None:
    rig = TemplatesRig()
    esme = rig.world.meter(TEMPLATES_ESME_EUI64)
    first = rig.submit(template_fixture_xml("1.5_adjust_meter_balance_int32_minimum"))
    assert response_code(first) == "I0"  # 1250 p - 2147483 p = -2146233 p, inside the range
    assert esme.registers.meter_balance_pence == -2_146_233
    second = rig.submit(template_fixture_xml("1.5_adjust_meter_balance_int32_minimum"))
    assert response_code(second) == "E-S1SR"
    assert esme.registers.meter_balance_pence == -2_146_233
    read = rig.submit(template_fixture_xml("4.18_read_meter_balance"))
    assert result(read, "MeterBalance") == "-2146233000"


@pytest.mark.parametrize("pence", [2_147_484, -2_147_484, 2**31 - 1])
def test_a_device_value_duis_cannot_carry_never_reaches_a_response(pence: int) -> None:
    with pytest.raises(UnrepresentableValueError, match=f"reported {pence} p"):
        pence_to_duis_money(pence)


@pytest.mark.parametrize(("pence", "duis"), [(2_147_483, 2_147_483_000),
                                             (-2_147_483, -2_147_483_000)])
def test_the_register_extremes_fit_duis_money(pence: int, duis: int) -> None:
    assert pence_to_duis_money(pence) == duis
