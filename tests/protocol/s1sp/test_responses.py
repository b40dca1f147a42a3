"""protocol.s1sp.responses, read typed: a DUIS response document gives its code and its values
as Python values (pence, seconds, aware datetimes, booleans, nested groups), the same whether
read from XML or built in process; a sub-penny amount or a missing element is an error that
says so, never a silent truncation or None."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from protocol.s1sp.builders import DuisRequestBuilder, PaymentDebtChange, TimeDebtChange
from protocol.s1sp.duis import parse_duis_request
from protocol.s1sp.responses import DuisResponse
from tests.protocol.s1sp.conftest import Rig

ESME = "00-DB-12-34-56-78-90-A1"
HUB = "00-DB-12-34-56-78-90-A0"

RESPONSE = """<?xml version="1.0" encoding="UTF-8"?>
<sr:Response xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4">
  <sr:Header>
    <sr:RequestID>90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:3</sr:RequestID>
    <sr:ResponseID>00-DB-12-34-56-78-90-A0:90-B3-D5-1F-30-01-00-00:3</sr:ResponseID>
    <sr:ResponseCode>I0</sr:ResponseCode>
    <sr:ResponseDateTime>2026-01-05T09:00:00Z</sr:ResponseDateTime>
  </sr:Header>
  <sr:Body><sr:ResponseMessage>
    <sr:ServiceReference>8.11</sr:ServiceReference>
    <sr:ServiceReferenceVariant>8.11</sr:ServiceReferenceVariant>
    <sr:UpdateHANDeviceLogResponse>
      <sr:DeviceID>00-DB-12-34-56-78-90-EE</sr:DeviceID>
      <sr:JoinTimePeriod>120</sr:JoinTimePeriod>
      <sr:JoinWindowEndDateTime>2026-01-05T09:02:00Z</sr:JoinWindowEndDateTime>
      <sr:AlreadyJoined>false</sr:AlreadyJoined>
      <sr:MeterBalance>1250000</sr:MeterBalance>
      <sr:Odd>123456</sr:Odd>
      <sr:TimeDebtRegister1><sr:DebtValue>5000</sr:DebtValue></sr:TimeDebtRegister1>
    </sr:UpdateHANDeviceLogResponse>
  </sr:ResponseMessage></sr:Body>
</sr:Response>
"""


def test_values_read_as_python_values() -> None:
    response = DuisResponse.from_xml(RESPONSE)
    assert response.ok and response.response_code == "I0"
    assert response.request_id is not None and response.request_id.counter == 3
    assert response.text("DeviceID") == "00-DB-12-34-56-78-90-EE"
    assert response.seconds("JoinTimePeriod") == 120
    assert response.date_time("JoinWindowEndDateTime") == datetime(2026, 1, 5, 9, 2,
                                                                   tzinfo=timezone.utc)
    assert response.boolean("AlreadyJoined") is False
    assert response.pence("MeterBalance") == 1250
    assert response.duis_money("Odd") == 123456
    assert response.group("TimeDebtRegister1").pence("DebtValue") == 5


def test_a_sub_penny_amount_is_an_error_not_a_truncation() -> None:
    with pytest.raises(ValueError, match="not a whole number of pence"):
        DuisResponse.from_xml(RESPONSE).pence("Odd")


def test_a_missing_element_names_those_present() -> None:
    with pytest.raises(KeyError, match="MeterBalance"):
        DuisResponse.from_xml(RESPONSE).pence("EmergencyCreditBalance")


def test_a_nested_element_is_read_with_group_not_as_a_leaf() -> None:
    response = DuisResponse.from_xml(RESPONSE)
    with pytest.raises(TypeError, match="group"):
        response.pence("TimeDebtRegister1")
    with pytest.raises(KeyError, match="0 nested"):
        response.group("TimeDebtRegister2")


def test_typed_values_built_in_process_read_the_same_as_from_xml() -> None:
    rig = Rig()
    request = DuisRequestBuilder().read_instantaneous_prepay_values(ESME)
    built = rig.adapter.submit_request(parse_duis_request(request))
    read = DuisResponse.from_xml(built.to_xml())
    for name in ("MeterBalance", "EmergencyCreditBalance", "TimeDebtRegister1"):
        assert built.pence(name) == read.pence(name)
    assert built.boolean("EmergencyCreditActive") is read.boolean("EmergencyCreditActive")
    assert built.text("PaymentMode") == read.text("PaymentMode")


def test_adapter_responses_read_typed_end_to_end() -> None:
    rig = Rig()
    builder = DuisRequestBuilder()
    join = DuisResponse.from_xml(rig.submit(builder.update_han_device_log(
        HUB, "00-DB-12-34-56-78-90-EE", join_time_period_seconds=90)))
    assert join.seconds("JoinTimePeriod") == 120  # S1SR 18.62: 90 s -> 2 whole minutes
    assert join.date_time("JoinWindowEndDateTime") == datetime(2026, 1, 5, 9, 2,
                                                               tzinfo=timezone.utc)
    debt = DuisResponse.from_xml(rig.submit(builder.update_debt(
        ESME, time_debt_register_1=TimeDebtChange(35, adjust_pence=100),
        payment_debt_register=PaymentDebtChange(10))))
    assert debt.response_code == "I0", debt.error_reason
    assert debt.group("TimeDebtRegister1").integer("DebtRecoveryRate") == 35
    assert debt.group("PaymentDebtRegister").integer("DebtRecoveryPerPayment") == 1000


def test_reading_a_value_of_an_error_response_says_the_code_and_reason() -> None:
    rig = Rig()
    refused = DuisResponse.from_xml(rig.submit(
        DuisRequestBuilder().update_load_limiting_general_settings(
            ESME, power_threshold_w=70000, period_seconds=300, restoration_period_seconds=600)))
    with pytest.raises(KeyError, match=r"E-S1SR: S1SR 18.37"):
        refused.integer("LoadLimitPowerThreshold")
