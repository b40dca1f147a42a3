"""S1spAdapter and InProcessChannel: response envelopes and IDs, E-codes, device resolution,
the acknowledgement form, and that submit never raises."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from xml.etree.ElementTree import fromstring

import pytest

from protocol.apdu import (
    MANAGEMENT_SERVER_ADDRESS,
    Balances,
    Command,
    Request,
    Response,
    Status,
    encode_response,
)
from protocol.errors import DeviceTimeoutError, DeviceUnreachableError, LinkError
from protocol.s1sp.adapter import S1spAdapter
from protocol.s1sp.channel import InProcessChannel
from protocol.s1sp.duis import DUIS_NAMESPACE, parse_duis_request
from protocol.s1sp.errors import INTERNAL_ERROR_CODE
from protocol.s1sp.responses import DuisResponse
from protocol.s1sp.service_requests import SERVICE_REQUESTS
from tests.protocol.s1sp.conftest import (
    ESME_ADDRESS,
    ESME_EUI64,
    FIXTURES,
    GSME_ADDRESS,
    START,
    START_SECONDS,
    Rig,
    fixture_xml,
)

NS = {"sr": DUIS_NAMESPACE}


def _header(xml: str, name: str) -> str | None:
    return fromstring(xml).findtext(f"sr:Header/sr:{name}", namespaces=NS)


def _message(xml: str, name: str) -> str | None:
    return fromstring(xml).findtext(f"sr:Body/sr:ResponseMessage/sr:{name}", namespaces=NS)


#: What each fixture gets from a fresh rig: I0, or E-S1SR with the reason it is refused.
FIXTURE_OUTCOMES: dict[str, tuple[str, str]] = {
    "1.1.1_update_import_tariff_block": ("I0", ""),
    "1.1.1_update_import_tariff_gas_block": ("I0", ""),
    "1.1.1_update_import_tariff_price_missing": (
        "E-INVALID", "the switching table uses tariff action 3 but the prices give 2"),
    "1.1.1_update_import_tariff_tou": ("I0", ""),
    "1.1.1_update_import_tariff_tou_cancellation": (
        "E-S1SR", "CANCEL_SCHEDULED_REQUEST: NOTHING_SCHEDULED"),
    "1.1.1_update_import_tariff_tou_future_dated": ("I0", ""),
    "1.2.1_update_price": ("I0", ""),
    "1.2.1_update_price_future_dated": ("I0", ""),
    "1.2.1_update_price_too_many_bands": ("E-INVALID", "the meter's tariff has 1 band"),
    "4.11.1_read_tariff": ("I0", ""),
    "4.11.1_read_tariff_gas": ("I0", ""),
    "1.5_adjust_meter_balance": ("I0", ""),
    "1.5_adjust_meter_balance_negative": ("I0", ""),
    "1.5_reset_meter_balance": ("I0", ""),
    "1.6_credit": ("I0", ""),
    "1.6_prepayment": ("I0", ""),
    "1.6_prepayment_cancellation": ("E-S1SR", "CANCEL_SCHEDULED_REQUEST: NOTHING_SCHEDULED"),
    "1.6_prepayment_future_dated": ("I0", ""),
    "11.1_update_firmware": ("I0", ""),
    "11.2_read_firmware_version": ("I0", ""),
    "11.3_activate_firmware": ("E-S1SR", "FIRMWARE_ACTIVATE: FIRMWARE_NO_VERIFIED_IMAGE"),
    "11.3_activate_firmware_cancellation": ("E-S1SR",
                                            "CANCEL_SCHEDULED_REQUEST: NOTHING_SCHEDULED"),
    "11.3_activate_firmware_future_dated": ("E-S1SR", "has no verified firmware image pending"),
    # nothing pending on a fresh rig, so the hash is not compared (test_firmware_hash.py)
    "11.3_activate_firmware_wrong_hash": ("E-S1SR",
                                          "FIRMWARE_ACTIVATE: FIRMWARE_NO_VERIFIED_IMAGE"),
    "11.3_activate_firmware_wrong_hash_future_dated": ("E-S1SR",
                                                       "has no verified firmware image pending"),
    "2.1_prepay_configuration_electricity": ("I0", ""),
    "2.1_prepay_configuration_future_dated": ("I0", ""),
    "2.1_prepay_configuration_gas": ("I0", ""),
    "2.1_prepay_configuration_negative_threshold": (
        "E-S1SR", "LowCreditThreshold -200000 (= -200 p) is outside the device register's"),
    "2.1_prepay_configuration_small_debt_cap": ("I0", ""),
    "2.1_prepay_configuration_small_debt_cap_cancellation": (
        "E-S1SR", "CANCEL_SCHEDULED_REQUEST: NOTHING_SCHEDULED"),
    "2.1_prepay_configuration_small_debt_cap_future_dated": ("I0", ""),
    "2.2_top_up_device": ("I0", ""),
    "2.3_update_debt": ("I0", ""),
    "2.3_update_debt_electricity": ("I0", ""),
    "2.3_update_debt_gas": ("I0", ""),
    # 12.50 GBP is not below the EC threshold: code 08 (issue 10 point 11)
    "2.5_activate_emergency_credit": ("E-S1SR",
                                      "ACTIVATE_EMERGENCY_CREDIT: EMERGENCY_CREDIT_UNAVAILABLE"),
    "4.1.1_read_instantaneous_import_registers": ("I0", ""),
    "4.1.1_read_instantaneous_import_registers_gas": ("I0", ""),
    "4.1.2_read_instantaneous_import_tou_matrices": ("I0", ""),
    "4.1.4_read_instantaneous_import_block_counters_gas": ("I0", ""),
    "4.6.1_retrieve_import_daily_read_log": ("I0", ""),
    "4.8.1_read_active_import_profile_data": ("I0", ""),
    "4.8.1_read_active_import_profile_data_gas": ("I0", ""),
    "4.8.1_read_active_import_profile_data_reversed_period": (
        "E-INVALID", "StartDateTime 2026-01-06T00:00:00Z is not before EndDateTime"),
    "4.8.1_read_active_import_profile_data_too_long": (
        "E-INVALID", "covers 19104 half-hours; DUIS 4.8.1 carries at most 19056"),
    "4.12.1_read_maximum_demand_import_registers": ("I0", ""),
    "4.14_read_prepayment_daily_read_log": ("I0", ""),
    "4.14_read_prepayment_daily_read_log_gas": ("I0", ""),
    "4.13_read_prepayment_configuration": ("I0", ""),
    "4.16_read_active_power_import": ("I0", ""),
    "4.17_retrieve_daily_consumption_log": ("I0", ""),
    "4.10_read_network_data": ("I0", ""),
    "4.15_read_load_limit_data": ("I0", ""),
    "4.18_read_meter_balance": ("I0", ""),
    "4.3_read_instantaneous_prepay_values": ("I0", ""),
    "6.11_synchronise_clock": ("I0", ""),
    "6.4.1_load_limit_settings": ("I0", ""),
    "6.4.1_load_limit_settings_above_maximum": ("E-S1SR", "above the device maximum of 65535 W"),
    "6.4.1_load_limit_settings_future_dated": ("I0", ""),
    "6.4.2_load_limit_counter_reset": ("I0", ""),
    "7.1_enable_supply": ("I0", ""),
    "7.2_disable_supply": ("I0", ""),
    "7.3_arm_supply": ("E-S1SR", "SET_SUPPLY_STATE: NOT_PERMITTED_IN_STATE"),
    "7.4_read_supply_status": ("I0", ""),
    "8.11_add_han_device": ("I0", ""),
    # A3 is not on a fresh hub's HAN; Add then Remove is I0 (test_han_add_then_remove.py).
    "8.11_remove_han_device": ("E-S1SR", "HAN_REMOVE_DEVICE: HAN_DEVICE_NOT_FOUND"),
}


def test_every_fixture_has_an_expected_outcome() -> None:
    assert sorted(path.stem for path in FIXTURES.glob("*.xml")) == sorted(FIXTURE_OUTCOMES)


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.xml")), ids=lambda path: path.stem)
def test_every_fixture_gets_a_parseable_response_with_the_right_ids(
        path: Path, adapter: S1spAdapter) -> None:
    request = parse_duis_request(path.read_bytes())
    xml = adapter.submit(path.read_bytes())
    root = fromstring(xml)
    assert root.tag == f"{{{DUIS_NAMESPACE}}}Response"
    originator, target, counter = str(request.request_id).split(":")
    assert _header(xml, "RequestID") == f"{originator}:{target}:{counter}"
    assert _header(xml, "ResponseID") == f"{target}:{originator}:{counter}"
    assert _header(xml, "ResponseDateTime") == "2026-01-05T09:00:00Z"  # the world's time
    assert _message(xml, "ServiceReference") == request.service_reference
    assert _message(xml, "ServiceReferenceVariant") == request.service_reference_variant
    code, reason_part = FIXTURE_OUTCOMES[path.stem]
    assert _header(xml, "ResponseCode") == code
    assert reason_part in (_message(xml, "ErrorReason") or "")
    if _header(xml, "ResponseCode") == "I0":
        spec = SERVICE_REQUESTS[request.service_reference_variant]
        assert root.find(f"sr:Body/sr:ResponseMessage/sr:{spec.body_name}Response", NS) \
            is not None


def test_reads_return_money_in_duis_units() -> None:
    rig = Rig({"meter_balance_pence": 1234})
    response = rig.adapter.submit_request(
        parse_duis_request(fixture_xml("4.18_read_meter_balance")))
    assert response.response_code == "I0"
    assert rig.esme.registers.meter_balance_pence == 1234
    assert response.result_value("MeterBalance") == 1234000


def test_unknown_target_device_is_e19_after_one_directory_refresh(rig: Rig) -> None:
    rig.submit(fixture_xml("7.4_read_supply_status"))  # directory read once
    text = fixture_xml("7.4_read_supply_status").decode().replace(
        "00-DB-12-34-56-78-90-A1:", "00-DB-12-34-56-78-90-FF:")
    rig.channel.exchanges.clear()
    xml = rig.submit(text)
    assert _header(xml, "ResponseCode") == "E19"
    assert "00-DB-12-34-56-78-90-FF" in (_message(xml, "ErrorReason") or "")
    assert [request.command for _, request in rig.requests()] == [
        Command.READ_DEVICE_DIRECTORY]


def test_a_device_that_appears_later_is_found_by_the_refresh(rig: Rig) -> None:
    rig.link.hidden.add(GSME_ADDRESS)
    rig.submit(fixture_xml("7.4_read_supply_status"))  # directory read without the GSME
    rig.link.hidden.clear()
    rig.channel.exchanges.clear()
    xml = rig.submit(fixture_xml("2.1_prepay_configuration_gas"))
    assert _header(xml, "ResponseCode") == "I0"
    assert [request.command for _, request in rig.requests()] == [
        Command.READ_DEVICE_DIRECTORY, Command.SET_PREPAYMENT_CONFIGURATION]


def test_sr_not_valid_for_the_device_type_is_e11_and_nothing_sent(rig: Rig) -> None:
    text = fixture_xml("1.5_adjust_meter_balance").decode().replace(
        "00-DB-12-34-56-78-90-A1:", "00-DB-12-34-56-78-90-A0:")  # the comms hub
    xml = rig.submit(text)
    assert _header(xml, "ResponseCode") == "E11"
    assert "COMMS_HUB" in (_message(xml, "ErrorReason") or "")
    assert rig.sent_commands() == []


def test_invalid_command_variant_is_e12_and_nothing_sent(rig: Rig) -> None:
    text = fixture_xml("1.5_adjust_meter_balance").decode().replace(
        "<sr:CommandVariant>4<", "<sr:CommandVariant>1<")
    xml = rig.submit(text)
    assert _header(xml, "ResponseCode") == "E12"
    assert "CommandVariant 1" in (_message(xml, "ErrorReason") or "")
    assert rig.channel.exchanges == []


def test_device_that_does_not_answer_at_all_is_e20(rig: Rig) -> None:
    rig.link.silent.add(ESME_ADDRESS)  # the directory still lists it
    before = rig.esme.registers.meter_balance_pence
    xml = rig.submit(fixture_xml("1.5_adjust_meter_balance"))
    assert _header(xml, "ResponseCode") == "E20"
    assert [request.command for address, request in rig.requests()
            if address == ESME_ADDRESS] == [Command.ADJUST_METER_BALANCE]
    assert rig.esme.registers.meter_balance_pence == before


class _ScriptedChannel:
    """Answers the directory, then raises what it is told for device requests."""

    def __init__(self, rig: Rig, error: Exception) -> None:
        self._inner = InProcessChannel(rig.world.handle_apdu)
        self._error = error

    def request(self, server_address: int, request: Request) -> Response:
        if server_address == MANAGEMENT_SERVER_ADDRESS:
            return self._inner.request(server_address, request)
        raise self._error


@pytest.mark.parametrize(("error", "code"), [
    (DeviceTimeoutError("no answer after 3 retries"), "E21"),
    (DeviceUnreachableError("no UA to SNRM"), "E20"),
    (LinkError("FRMR received"), "E20"),
])
def test_link_errors_become_e21_and_e20(rig: Rig, error: Exception, code: str) -> None:
    adapter = S1spAdapter(_ScriptedChannel(rig, error), response_clock=rig.now,
                          raise_internal_errors=True)
    xml = adapter.submit(fixture_xml("7.1_enable_supply"))
    assert _header(xml, "ResponseCode") == code
    assert str(error) in (_message(xml, "ErrorReason") or "")


def test_directory_unreachable_is_e20() -> None:
    def nobody(address: int, apdu: bytes) -> bytes | None:
        return None
    adapter = S1spAdapter(InProcessChannel(nobody), response_clock=lambda: START,
                          raise_internal_errors=True)
    assert _header(adapter.submit(fixture_xml("7.4_read_supply_status")),
                   "ResponseCode") == "E20"


def test_acknowledged_form_returns_i99_then_the_result(adapter: S1spAdapter) -> None:
    first, second = adapter.submit_acknowledged(fixture_xml("7.4_read_supply_status"))
    assert _header(first, "ResponseCode") == "I99"
    assert _header(first, "ResponseID") == _header(second, "ResponseID")
    assert _header(second, "ResponseCode") == "I0"


def test_acknowledged_form_of_an_invalid_request_is_the_error_alone(
        adapter: S1spAdapter) -> None:
    responses = adapter.submit_acknowledged(b"<not-duis/>")
    assert len(responses) == 1
    assert _header(responses[0], "ResponseCode") == "E-INVALID"


def test_submit_never_raises_even_when_the_channel_fails_unexpectedly(rig: Rig) -> None:
    adapter = S1spAdapter(_ScriptedChannel(rig, RuntimeError("boom")), response_clock=rig.now)
    xml = adapter.submit(fixture_xml("7.1_enable_supply"))
    assert _header(xml, "ResponseCode") == INTERNAL_ERROR_CODE
    assert "boom" in (_message(xml, "ErrorReason") or "")


def test_a_strict_adapter_raises_a_fault_of_its_own_instead_of_answering_e_internal(
        rig: Rig) -> None:
    adapter = S1spAdapter(_ScriptedChannel(rig, RuntimeError("boom")), response_clock=rig.now,
                          raise_internal_errors=True)
    with pytest.raises(RuntimeError, match="boom"):
        adapter.submit(fixture_xml("7.1_enable_supply"))
    with pytest.raises(RuntimeError, match="boom"):
        adapter.submit_acknowledged(fixture_xml("7.1_enable_supply"))
    # bad input is still answered, never raised
    assert _header(adapter.submit(b"<not-duis/>"), "ResponseCode") == "E-INVALID"


def test_response_clock_defaults_to_utc_now(rig: Rig) -> None:
    adapter = S1spAdapter(rig.channel, raise_internal_errors=True)
    stamp = _header(adapter.submit(fixture_xml("7.4_read_supply_status")), "ResponseDateTime")
    assert stamp is not None and stamp.endswith("Z")
    assert datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").year >= 2024


def test_synchronise_clock_sets_the_device_to_the_adapter_clock(rig: Rig) -> None:
    adapter_now = START + timedelta(minutes=90)  # the adapter's clock is ahead of the ESME's
    adapter = S1spAdapter(rig.channel, response_clock=lambda: adapter_now,
                          raise_internal_errors=True)
    assert rig.world.device_clock_seconds(ESME_EUI64) == START_SECONDS
    xml = adapter.submit(fixture_xml("6.11_synchronise_clock").replace(
        b"2026-01-05T09:00:00.00Z", b"2026-01-05T10:30:00.00Z"))  # the window holds its time
    assert rig.world.device_clock_seconds(ESME_EUI64) == START_SECONDS + 90 * 60
    assert rig.world.now_seconds == START_SECONDS  # world device time is not moved
    assert fromstring(xml).findtext(
        "sr:Body/sr:ResponseMessage/sr:SynchroniseClockResponse/sr:DeviceDateTime",
        namespaces=NS) == "2026-01-05T10:30:00Z"


# --- InProcessChannel -------------------------------------------------------------------------

def test_in_process_channel_numbers_requests_and_returns_the_callers_invoke_id(
        rig: Rig) -> None:
    channel = InProcessChannel(rig.world.handle_apdu)
    first = channel.request(ESME_ADDRESS, Request(Command.READ_METER_BALANCE, 77))
    second = channel.request(ESME_ADDRESS, Request(Command.READ_METER_BALANCE, 77))
    assert first.invoke_id == second.invoke_id == 77
    assert first.body.meter_balance_pence == rig.esme.registers.meter_balance_pence
    assert [apdu[1:3] for _, apdu, _ in channel.exchanges] == [b"\x00\x01", b"\x00\x02"]
    assert channel.exchanges[0][1] == bytes.fromhex("01000103")


def test_in_process_channel_rejects_a_mismatched_invoke_id_or_command() -> None:
    def stale(address: int, apdu: bytes) -> bytes:
        return encode_response(Response(Command.READ_METER_BALANCE, 999, Status.SUCCESS,
                                        body=Balances(meter_balance_pence=0,
                                                      emergency_credit_balance_pence=0)))
    with pytest.raises(DeviceUnreachableError, match="invoke id 999"):
        InProcessChannel(stale).request(ESME_ADDRESS, Request(Command.READ_METER_BALANCE, 0))

    def wrong_command(address: int, apdu: bytes) -> bytes:
        return bytes.fromhex("81") + apdu[1:3] + bytes((Command.READ_SUPPLY_STATUS, 0, 0, 0))
    with pytest.raises(DeviceUnreachableError, match="READ_SUPPLY_STATUS"):
        InProcessChannel(wrong_command).request(ESME_ADDRESS,
                                                Request(Command.READ_METER_BALANCE, 0))


def test_in_process_channel_turns_garbage_and_silence_into_unreachable() -> None:
    with pytest.raises(DeviceUnreachableError, match="cannot be decoded"):
        InProcessChannel(lambda address, apdu: b"\x81").request(
            ESME_ADDRESS, Request(Command.READ_METER_BALANCE, 0))
    with pytest.raises(DeviceUnreachableError, match="no device answers"):
        InProcessChannel(lambda address, apdu: None).request(
            ESME_ADDRESS, Request(Command.READ_METER_BALANCE, 0))


# --- DuisResponse -----------------------------------------------------------------------------

def test_response_xml_reads_back_into_the_same_typed_response(adapter: S1spAdapter) -> None:
    request = parse_duis_request(fixture_xml("11.1_update_firmware"))
    response = adapter.submit_request(request)
    again = DuisResponse.from_xml(response.to_xml())
    assert again.response_code == response.response_code == "I0"
    assert again.request_id == request.request_id
    assert again.response_date_time == START
    assert again.result_name == "UpdateFirmwareResponse"
    devices = [value for name, value in again.result if name == "Device"]
    assert [dict(device)["Outcome"] for device in devices] == ["Accepted", "Refused"]


def test_error_response_reads_back_with_reason_and_device_status(adapter: S1spAdapter) -> None:
    again = DuisResponse.from_xml(adapter.submit(fixture_xml("1.6_prepayment_cancellation")))
    assert again.response_code == "E-S1SR"
    assert again.device_status == "NOTHING_SCHEDULED"
    assert again.result == () and again.result_name is None
    with pytest.raises(ValueError, match="not a DUIS response"):
        DuisResponse.from_xml("<unclosed")
