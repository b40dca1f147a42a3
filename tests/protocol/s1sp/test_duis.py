"""protocol.s1sp.duis: every SR fixture parses; bad input becomes a DUIS error response with a
clear reason and nothing is sent to a device."""

from __future__ import annotations

from pathlib import Path
from xml.etree.ElementTree import fromstring

import pytest

from protocol.apdu import DebtRecoveryPeriod, DebtRegister
from protocol.s1sp.adapter import S1spAdapter
from protocol.s1sp.duis import DUIS_NAMESPACE, MAX_REQUEST_BYTES, parse_duis_request
from protocol.s1sp.duis_xml import EmptyBody
from protocol.s1sp.errors import INVALID_REQUEST_CODE, InvalidRequestError
from protocol.s1sp.service_requests import SERVICE_REQUESTS
from protocol.s1sp.service_requests.firmware import (
    MAX_FIRMWARE_DEVICE_IDS,
    FirmwareActivation,
    FirmwareUpdate,
)
from protocol.s1sp.service_requests.han import HanDeviceLogUpdate
from protocol.s1sp.service_requests.load_limiting import LoadLimitSettingsUpdate
from protocol.s1sp.service_requests.prepayment import (
    DebtRecovery,
    DebtRegisterUpdate,
    DebtUpdate,
    MeterBalanceUpdate,
    PaymentModeUpdate,
    PrepayConfigurationUpdate,
    TopUp,
)
from tests.protocol.s1sp.conftest import ESME_EUI64, FIXTURES, Rig, fixture_xml

NS = {"sr": DUIS_NAMESPACE}
FIXTURE_FILES = sorted(FIXTURES.glob("*.xml"))


def _code_and_reason(xml: str) -> tuple[str, str]:
    root = fromstring(xml)
    return (root.findtext("sr:Header/sr:ResponseCode", namespaces=NS) or "",
            root.findtext("sr:Body/sr:ResponseMessage/sr:ErrorReason", namespaces=NS) or "")


def test_there_is_a_fixture_for_every_supported_sr() -> None:
    variants = {path.name.split("_")[0] for path in FIXTURE_FILES}
    assert variants == set(SERVICE_REQUESTS)


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda path: path.stem)
def test_every_sr_fixture_parses_with_its_header(path: Path) -> None:
    request = parse_duis_request(path.read_bytes())
    variant = path.name.split("_")[0]
    assert request.service_reference_variant == variant
    assert request.service_reference == SERVICE_REQUESTS[variant].service_reference
    assert request.request_id.originator_eui64 == bytes.fromhex("90B3D51F30010000")
    assert request.command_variant in SERVICE_REQUESTS[variant].command_variants


def test_1_5_adjust_parsed_through_the_prepayment_mode_wrapper() -> None:
    body = parse_duis_request(fixture_xml("1.5_adjust_meter_balance")).body
    assert body == MeterBalanceUpdate(1234567)
    assert parse_duis_request(fixture_xml("1.5_reset_meter_balance")).body == \
        MeterBalanceUpdate(None, reset_meter_balance=True)


def test_1_6_prepayment_and_credit_and_future_dated_forms() -> None:
    body = parse_duis_request(fixture_xml("1.6_prepayment")).body
    assert body == PaymentModeUpdate(True, 556677, True, False, None)
    assert parse_duis_request(fixture_xml("1.6_credit")).body == PaymentModeUpdate(False)
    future = parse_duis_request(fixture_xml("1.6_prepayment_future_dated")).body
    assert isinstance(future, PaymentModeUpdate) and future.execution is not None
    assert future.execution.execution_time_seconds == 1894698000
    cancel = parse_duis_request(fixture_xml("1.6_prepayment_cancellation")).body
    assert isinstance(cancel, PaymentModeUpdate) and cancel.execution is not None
    assert cancel.execution.cancel


def test_other_bodies_parse_to_their_typed_objects() -> None:
    conf = parse_duis_request(fixture_xml("2.1_prepay_configuration_gas")).body
    assert isinstance(conf, PrepayConfigurationUpdate)
    assert dict(conf.values)["DisablementThreshold"] == 556677
    assert isinstance(parse_duis_request(fixture_xml("2.2_top_up_device")).body, TopUp)
    assert parse_duis_request(fixture_xml("2.3_update_debt")).body == DebtUpdate((
        DebtRegisterUpdate(DebtRegister.TIME_DEBT_1, 5000999,
                           recovery=DebtRecovery(35, -2, DebtRecoveryPeriod.DAILY)),
        DebtRegisterUpdate(DebtRegister.PAYMENT_DEBT, -250500, debt_recovery_per_payment=1250)))
    assert parse_duis_request(fixture_xml("6.4.1_load_limit_settings")).body == \
        LoadLimitSettingsUpdate(6000, 1800, 600)
    assert parse_duis_request(fixture_xml("8.11_add_han_device")).body == HanDeviceLogUpdate(
        bytes.fromhex("00DB1234567890A3"), True, 90)
    firmware = parse_duis_request(fixture_xml("11.1_update_firmware")).body
    assert isinstance(firmware, FirmwareUpdate)
    assert firmware.firmware_image[:4] == b"SEFW"
    assert firmware.device_eui64s == (ESME_EUI64, bytes.fromhex("00DB1234567890A2"))
    assert isinstance(parse_duis_request(fixture_xml("11.3_activate_firmware")).body,
                      FirmwareActivation)
    assert parse_duis_request(fixture_xml("7.4_read_supply_status")).body == EmptyBody()


def test_signature_is_optional_and_ignored() -> None:
    text = fixture_xml("1.6_prepayment").decode()
    start, end = text.index("<ds:Signature"), text.index("</ds:Signature>")
    unsigned = text[:start] + text[end + len("</ds:Signature>"):]
    assert parse_duis_request(unsigned) == parse_duis_request(text)


def test_firmware_device_list_accepts_device_id_children() -> None:
    text = fixture_xml("11.1_update_firmware").decode().replace(
        "<sr:DeviceIDList>00-DB-12-34-56-78-90-A1 00-DB-12-34-56-78-90-A2</sr:DeviceIDList>",
        "<sr:DeviceIDList><sr:DeviceID>00-DB-12-34-56-78-90-A2</sr:DeviceID></sr:DeviceIDList>")
    body = parse_duis_request(text).body
    assert isinstance(body, FirmwareUpdate)
    assert body.device_eui64s == (bytes.fromhex("00DB1234567890A2"),)


# --------------------------------------------------------------------------------------------
# Bad input: a DUIS error response, a clear reason, nothing sent
# --------------------------------------------------------------------------------------------

_PREPAY = fixture_xml("1.6_prepayment").decode()

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway">&lol3;</sr:Request>
"""
EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway">&xxe;</sr:Request>
"""

BAD_INPUTS: dict[str, tuple[str | bytes, str]] = {
    "malformed_xml": (_PREPAY[:-40], "not well-formed"),
    "empty_document": (b"", "empty"),
    "not_utf8_bytes": (b"\xff\xfe<\x00a\x00", "XML"),
    "wrong_namespace": (_PREPAY.replace(DUIS_NAMESPACE, "http://example.com/other"),
                        "namespace"),
    "wrong_root": (_PREPAY.replace("sr:Request", "sr:Response"), "expected Request"),
    "missing_request_id": (_PREPAY.replace("<sr:RequestID>", "<sr:RequestIdentifier>")
                           .replace("</sr:RequestID>", "</sr:RequestIdentifier>"),
                           "missing its RequestID"),
    "bad_request_id": (_PREPAY.replace("00-DB-12-34-56-78-90-A1:", "00-DB-12:"),
                       "not an EUI-64"),
    "missing_disablement_threshold": (
        _PREPAY.replace("<sr:DisablementThreshold>556677</sr:DisablementThreshold>", ""),
        "missing its DisablementThreshold"),
    "value_above_int32": (_PREPAY.replace(">556677<", ">2147483648<"), "int32"),
    "value_below_int32": (_PREPAY.replace(">556677<", ">-2147483649<"), "int32"),
    "value_not_a_number": (_PREPAY.replace(">556677<", ">55.6<"), "whole number"),
    "boolean_not_a_boolean": (_PREPAY.replace(">true<", ">yes<"), "true or false"),
    "unknown_sr": (_PREPAY.replace(">1.6<", ">9.99<"), "not a Service Request"),
    "reference_does_not_match_variant": (
        _PREPAY.replace("<sr:ServiceReference>1.6", "<sr:ServiceReference>1.5"),
        "does not match"),
    "body_does_not_match_sr": (_PREPAY.replace("UpdatePaymentMode", "UpdateMeterBalance"),
                               "does not match ServiceReferenceVariant"),
    "external_entity": (EXTERNAL_ENTITY, "DTD or entities"),
    "entity_expansion_billion_laughs": (BILLION_LAUGHS, "DTD or entities"),
    "lone_surrogate_in_a_str_request": (_PREPAY.replace(">556677<", ">\ud800<"),
                                        "cannot be read as UTF-8"),
    "device_id_list_longer_than_its_maximum": (
        fixture_xml("11.1_update_firmware").decode().replace(
            "00-DB-12-34-56-78-90-A1 00-DB-12-34-56-78-90-A2",
            " ".join(f"00-DB-12-34-56-78-{i // 256:02X}-{i % 256:02X}"
                     for i in range(MAX_FIRMWARE_DEVICE_IDS + 1))),
        f"at most {MAX_FIRMWARE_DEVICE_IDS}"),
    "oversized_document": (_PREPAY.replace("</sr:Request>", "<!--" + "x" * MAX_REQUEST_BYTES
                                           + "--></sr:Request>"), "larger than"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_an_error_response_and_nothing_is_sent(
        case: str, rig: Rig, adapter: S1spAdapter) -> None:
    document, reason_part = BAD_INPUTS[case]
    xml = adapter.submit(document)
    code, reason = _code_and_reason(xml)
    assert code == INVALID_REQUEST_CODE
    assert reason_part in reason
    assert rig.channel.exchanges == []


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_raises_invalid_request_error_from_the_parser(case: str) -> None:
    with pytest.raises(InvalidRequestError):
        parse_duis_request(BAD_INPUTS[case][0])


def test_error_response_keeps_the_request_id_when_it_could_be_read(
        adapter: S1spAdapter) -> None:
    xml = adapter.submit(BAD_INPUTS["value_above_int32"][0])
    root = fromstring(xml)
    assert root.findtext("sr:Header/sr:RequestID", namespaces=NS) == \
        "90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A1:1004"
    assert root.findtext("sr:Header/sr:ResponseID", namespaces=NS) == \
        "00-DB-12-34-56-78-90-A1:90-B3-D5-1F-30-01-00-00:1004"


@pytest.mark.parametrize("xml", [_PREPAY.replace('encoding="UTF-8"', 'encoding="TF-8"'),
                                 _PREPAY.replace('encoding="UTF-8"', 'encoding="TF-8"').encode()])
def test_unknown_declared_encoding_is_e_invalid_not_an_internal_error(
        xml: str | bytes, rig: Rig, adapter: S1spAdapter) -> None:
    assert 'encoding="TF-8"' in (xml if isinstance(xml, str) else xml.decode())
    code, reason = _code_and_reason(adapter.submit(xml))
    assert (code, reason) == ("E-INVALID", "request cannot be read as XML: unknown encoding: TF-8")
    assert rig.channel.exchanges == []
    with pytest.raises(InvalidRequestError, match="unknown encoding: TF-8"):
        parse_duis_request(xml)
