"""S1SR rules whose response values, edges and successful paths no test pinned (issue 13):
1.6 to credit, the values 1.5 and 1.6 report, 6.4.1's threshold of 0 and period limits, a
successful 8.11 Remove and the 8.11 Add response, and 11.1's version note only when it is true.

Every test drives the adapter with the real world on a virtual clock (see conftest.py); the
expected values are written out."""

from __future__ import annotations

from xml.etree.ElementTree import Element, fromstring

import pytest

from protocol.apdu import Command, PaymentMode, Request, Response, Status
from protocol.errors import ApduError
from protocol.s1sp.adapter import S1spAdapter
from protocol.s1sp.channel import InProcessChannel
from protocol.s1sp.duis import DUIS_NAMESPACE
from tests.protocol.s1sp.conftest import HUB_ADDRESS, Rig, fixture_xml

NS = {"sr": DUIS_NAMESPACE}
NEW_DEVICE = bytes.fromhex("00DB1234567890A3")  # the device the 8.11 fixtures name


def _result(xml: str, name: str) -> str | None:
    return fromstring(xml).findtext(f"sr:Body/sr:ResponseMessage/*/sr:{name}", namespaces=NS)


def _result_names(xml: str) -> list[str]:
    """The element names of the SR's response body (the last child of ResponseMessage)."""
    body = fromstring(xml).findall("sr:Body/sr:ResponseMessage/*", NS)[-1]
    return [child.tag.rsplit("}", 1)[1] for child in body]


def _code(xml: str) -> str | None:
    return fromstring(xml).findtext("sr:Header/sr:ResponseCode", namespaces=NS)


def _reason(xml: str) -> str | None:
    return fromstring(xml).findtext("sr:Body/sr:ResponseMessage/sr:ErrorReason", namespaces=NS)


def _with_value(fixture: str, old: str, new: str) -> str:
    text = fixture_xml(fixture).decode()
    assert old in text
    return text.replace(old, new)


def _han_euis(rig: Rig) -> list[bytes]:
    entries = rig.channel.request(HUB_ADDRESS, Request(Command.READ_HAN_ENTRIES, 0))
    return [entry["device_eui64"] for entry in entries.fields["entries"]]


# --- 1.5: ResetMeterBalance -------------------------------------------------------------------

def test_1_5_reset_response_says_reset_true_and_balance_zero() -> None:
    rig = Rig({"meter_balance_pence": -250})
    xml = rig.submit(fixture_xml("1.5_reset_meter_balance"))
    assert _code(xml) == "I0"
    assert _result(xml, "ResetMeterBalance") == "true"
    assert _result(xml, "MeterBalance") == "0"
    assert rig.sent_commands() == [Command.RESET_METER_BALANCE]


# --- 1.6: to credit, to prepayment -----------------------------------------------------------

def test_1_6_to_credit_puts_a_prepayment_meter_in_credit_and_says_credit() -> None:
    rig = Rig({"meter_balance_pence": 1234})
    assert _code(rig.submit(fixture_xml("1.6_prepayment"))) == "I0"
    assert rig.esme.registers.payment_mode == PaymentMode.PREPAYMENT
    xml = rig.submit(fixture_xml("1.6_credit"))
    assert _code(xml) == "I0"
    assert rig.esme.registers.payment_mode == PaymentMode.CREDIT
    assert _result(xml, "PaymentMode") == "Credit"
    assert _result_names(xml) == ["PaymentMode"]
    sent = rig.sent(Command.SET_PAYMENT_MODE)[-1]
    assert sent.fields["payment_mode"] == PaymentMode.CREDIT
    assert sent.fields["disablement_threshold_pence"] == 0
    assert (sent.fields["suspend_debt_disabled"], sent.fields["suspend_debt_emergency"]) == (
        False, False)


def test_1_6_to_prepayment_reports_mode_flags_and_threshold() -> None:
    rig = Rig()
    xml = rig.submit(fixture_xml("1.6_prepayment"))  # disabled true, emergency false, 556677
    assert _code(xml) == "I0"
    assert _result_names(xml) == ["PaymentMode", "SuspendDebtDisabled", "SuspendDebtEmergency",
                                  "DisablementThreshold"]
    assert _result(xml, "PaymentMode") == "Prepayment"
    assert _result(xml, "SuspendDebtDisabled") == "true"
    assert _result(xml, "SuspendDebtEmergency") == "false"
    assert _result(xml, "DisablementThreshold") == "556000"


def test_1_6_suspend_debt_emergency_true_reaches_the_meter_and_the_response() -> None:
    rig = Rig()
    xml = rig.submit(_with_value(
        "1.6_prepayment",
        "<sr:SuspendDebtDisabled>true</sr:SuspendDebtDisabled>\n"
        "        <sr:SuspendDebtEmergency>false</sr:SuspendDebtEmergency>",
        "<sr:SuspendDebtDisabled>false</sr:SuspendDebtDisabled>\n"
        "        <sr:SuspendDebtEmergency>true</sr:SuspendDebtEmergency>"))
    assert _code(xml) == "I0"
    assert _result(xml, "SuspendDebtDisabled") == "false"
    assert _result(xml, "SuspendDebtEmergency") == "true"
    registers = rig.esme.registers
    assert (registers.suspend_debt_disabled, registers.suspend_debt_emergency) == (False, True)


# --- 6.4.1: threshold 0 and the period limits (30..3600 s) -----------------------------------

def test_6_4_1_load_limit_power_threshold_of_zero_is_sent_and_held() -> None:
    rig = Rig()
    xml = rig.submit(_with_value("6.4.1_load_limit_settings", ">6000<", ">0<"))
    assert _code(xml) == "I0"
    assert rig.sent(Command.SET_LOAD_LIMIT_SETTINGS)[0].fields[
        "load_limit_power_threshold_w"] == 0
    assert rig.esme.registers.load_limit_power_threshold_w == 0
    assert _result(xml, "LoadLimitPowerThreshold") == "0"


def test_6_4_1_negative_load_limit_power_threshold_is_invalid_and_unsent() -> None:
    rig = Rig()
    xml = rig.submit(_with_value("6.4.1_load_limit_settings", ">6000<", ">-1<"))
    assert _code(xml) == "E-INVALID"
    assert _reason(xml) == "LoadLimitPowerThreshold -1 W is negative"
    assert rig.sent(Command.SET_LOAD_LIMIT_SETTINGS) == []


def _submit_period(rig: Rig, element: str, seconds: int) -> str:
    """6.4.1 with ``element`` (LoadLimitPeriod or LoadLimitRestorationPeriod) set to seconds."""
    old = {"LoadLimitPeriod": 1800, "LoadLimitRestorationPeriod": 600}[element]
    return rig.submit(_with_value("6.4.1_load_limit_settings", f"<sr:{element}>{old}<",
                                  f"<sr:{element}>{seconds}<"))


@pytest.mark.parametrize("element", ["LoadLimitPeriod", "LoadLimitRestorationPeriod"])
@pytest.mark.parametrize("seconds", [30, 3600])
def test_6_4_1_periods_of_30_and_3600_seconds_are_sent_and_held(element: str,
                                                                seconds: int) -> None:
    rig = Rig()
    xml = _submit_period(rig, element, seconds)
    assert _code(xml) == "I0"
    assert _result(xml, element) == str(seconds)
    registers = rig.esme.registers
    held = {"LoadLimitPeriod": registers.load_limit_period_seconds,
            "LoadLimitRestorationPeriod": registers.load_limit_restoration_period_seconds}
    assert held[element] == seconds


@pytest.mark.parametrize("element", ["LoadLimitPeriod", "LoadLimitRestorationPeriod"])
@pytest.mark.parametrize("seconds", [29, 3601])
def test_6_4_1_periods_of_29_and_3601_seconds_are_invalid_and_unsent(element: str,
                                                                     seconds: int) -> None:
    rig = Rig()
    xml = _submit_period(rig, element, seconds)
    assert _code(xml) == "E-INVALID"
    assert _reason(xml) == (f"{element} {seconds} s is outside the 30..3600 s the device "
                            "accepts; nothing was sent or scheduled")
    assert rig.sent(Command.SET_LOAD_LIMIT_SETTINGS) == []


@pytest.mark.parametrize(("element", "value"), [("LoadLimitPowerThreshold", 6000),
                                              ("LoadLimitPeriod", 1800),
                                              ("LoadLimitRestorationPeriod", 600)])
def test_6_4_1_body_errors_are_invalid_and_name_the_element(element: str, value: int) -> None:
    for old, new, reason in [
            (f"<sr:{element}>{value}<", f"<sr:{element}>x<",
             f"{element} must be a whole number, not 'x'"),
            (f"<sr:{element}>{value}</sr:{element}>", "",
             f"UpdateDeviceConfigurationLoadLimitingGeneralSettings is missing its {element} "
             "element")]:
        rig = Rig()
        xml = rig.submit(_with_value("6.4.1_load_limit_settings", old, new))
        assert _code(xml) == "E-INVALID"
        assert _reason(xml) == reason
        assert rig.sent_commands() == []


def test_6_4_1_future_dated_carries_the_whole_request_apdu_inside_schedule_request() -> None:
    rig = Rig()
    assert _code(rig.submit(fixture_xml("6.4.1_load_limit_settings_future_dated"))) == "I0"
    # request 01 | invoke id 0000 | SET_LOAD_LIMIT_SETTINGS 30 | 6000 W | 1800 s | 600 s
    assert rig.sent(Command.SCHEDULE_REQUEST)[0].fields["request"] == bytes.fromhex(
        "01" "0000" "30" "1770" "0708" "0258")


def test_6_4_1_response_reports_what_the_meter_holds() -> None:
    rig = Rig()
    xml = rig.submit(fixture_xml("6.4.1_load_limit_settings"))
    assert _code(xml) == "I0"
    assert [(name, _result(xml, name)) for name in _result_names(xml)] == [
        ("LoadLimitPowerThreshold", "6000"), ("LoadLimitPeriod", "1800"),
        ("LoadLimitRestorationPeriod", "600"), ("LoadLimitCounter", "0"),
        ("LoadLimitActive", "false")]


# --- 8.11: Add and Remove ---------------------------------------------------------------------

def test_8_11_add_response_names_the_device_the_request_type_and_the_window_end() -> None:
    rig = Rig()  # device time 2026-01-05T09:00:00Z
    xml = rig.submit(fixture_xml("8.11_add_han_device"))  # JoinTimePeriod 90 s -> 2 minutes
    assert _code(xml) == "I0"
    assert [(name, _result(xml, name)) for name in _result_names(xml)] == [
        ("DeviceID", "00-DB-12-34-56-78-90-A3"), ("RequestType", "Add"),
        ("JoinTimePeriod", "120"), ("JoinWindowEndDateTime", "2026-01-05T09:02:00Z")]
    assert NEW_DEVICE in _han_euis(rig)


def test_8_11_remove_of_a_device_on_the_join_list_succeeds_and_it_is_gone() -> None:
    rig = Rig()
    assert _code(rig.submit(fixture_xml("8.11_add_han_device"))) == "I0"
    xml = rig.submit(fixture_xml("8.11_remove_han_device"))
    assert _code(xml) == "I0"
    assert [(name, _result(xml, name)) for name in _result_names(xml)] == [
        ("DeviceID", "00-DB-12-34-56-78-90-A3"), ("RequestType", "Remove")]
    assert rig.sent(Command.HAN_REMOVE_DEVICE)[0].fields["device_eui64"] == NEW_DEVICE
    assert NEW_DEVICE not in _han_euis(rig)


def test_8_11_remove_of_a_joined_meter_takes_it_off_the_han() -> None:
    rig = Rig()
    esme = bytes.fromhex("00DB1234567890A1")
    assert esme in _han_euis(rig)
    xml = rig.submit(_with_value("8.11_remove_han_device", "00-DB-12-34-56-78-90-A3",
                                 "00-DB-12-34-56-78-90-A1"))
    assert _code(xml) == "I0"
    assert _result(xml, "DeviceID") == "00-DB-12-34-56-78-90-A1"
    assert esme not in _han_euis(rig)


# --- 11.1: the version note only when the versions differ -------------------------------------

def test_11_1_request_version_matching_the_image_adds_no_version_note() -> None:
    rig = Rig()
    xml = rig.submit(fixture_xml("11.1_update_firmware"))  # FirmwareVersion 1.1.0, image 1.1.0
    assert _code(xml) == "I0"
    assert _result(xml, "FirmwareVersion") == "1.1.0"
    assert _result(xml, "RequestedFirmwareVersion") is None
    assert _result(xml, "FirmwareVersionNote") is None


def test_11_1_without_a_request_version_reports_the_image_version_and_no_note() -> None:
    rig = Rig()
    xml = rig.submit(_with_value("11.1_update_firmware",
                                 "<sr:FirmwareVersion>1.1.0</sr:FirmwareVersion>", ""))
    assert _code(xml) == "I0"
    assert _result(xml, "FirmwareVersion") == "1.1.0"
    assert _result(xml, "RequestedFirmwareVersion") is None
    assert _result(xml, "FirmwareVersionNote") is None


def test_11_1_version_note_names_both_versions() -> None:
    rig = Rig()
    xml = rig.submit(_with_value("11.1_update_firmware", "<sr:FirmwareVersion>1.1.0<",
                                 "<sr:FirmwareVersion>9.9.9<"))
    assert _code(xml) == "I0"
    assert _result(xml, "FirmwareVersionNote") == (
        "the image header says 1.1.0, not the request's FirmwareVersion 9.9.9")


@pytest.mark.parametrize(("old", "new", "reason"), [
    ("<sr:DeviceID>00-DB-12-34-56-78-90-A3<", "<sr:DeviceID>00-DB-12<",
     "DeviceID '00-DB-12' is not an EUI-64 such as 00-DB-12-34-56-78-90-A0"),
    ("<sr:DeviceID>00-DB-12-34-56-78-90-A3</sr:DeviceID>", "",
     "UpdateHANDeviceLog is missing its DeviceID element"),
    ("<sr:RequestType>Add</sr:RequestType>", "",
     "UpdateHANDeviceLog is missing its RequestType element"),
    ("<sr:RequestType>Add<", "<sr:RequestType>Swap<", "RequestType 'Swap' is not Add or Remove"),
    ("<sr:JoinTimePeriod>90</sr:JoinTimePeriod>", "",
     "UpdateHANDeviceLog is missing its JoinTimePeriod element"),
    ("<sr:JoinTimePeriod>90<", "<sr:JoinTimePeriod>ninety<",
     "JoinTimePeriod must be a whole number, not 'ninety'"),
])
def test_8_11_body_errors_are_invalid_and_name_the_element(old: str, new: str,
                                                           reason: str) -> None:
    rig = Rig()
    xml = rig.submit(_with_value("8.11_add_han_device", old, new))
    assert _code(xml) == "E-INVALID"
    assert _reason(xml) == reason
    assert rig.sent(Command.HAN_ADD_DEVICE) == []


# --- what every handler shares: scheduling items, the link failure reason, last_sent ---------

_SETTINGS = [("LoadLimitPowerThreshold", "6000"), ("LoadLimitPeriod", "1800"),
             ("LoadLimitRestorationPeriod", "600")]


def _items(xml: str) -> list[tuple[str, str | None]]:
    return [(name, _result(xml, name)) for name in _result_names(xml)]


def test_future_dated_6_4_1_scheduled_replaced_and_cancelled_responses_in_full() -> None:
    rig = Rig()
    xml = rig.submit(fixture_xml("6.4.1_load_limit_settings_future_dated"))
    assert (_code(xml), _items(xml)) == ("I0", [
        *_SETTINGS, ("ExecutionDateTime", "2030-01-15T09:00:00Z"), ("Scheduled", "true")])
    xml = rig.submit(_with_value("6.4.1_load_limit_settings_future_dated",
                                 "2030-01-15T09:00:00Z", "2030-01-16T09:00:00Z"))
    assert (_code(xml), _items(xml)) == ("I0", [
        *_SETTINGS, ("ExecutionDateTime", "2030-01-16T09:00:00Z"), ("Scheduled", "true"),
        ("ReplacedExecutionDateTime", "2030-01-15T09:00:00Z")])
    xml = rig.submit(_with_value("6.4.1_load_limit_settings_future_dated",
                                 "2030-01-15T09:00:00Z", "3000-12-31T00:00:00.00Z"))
    # a cancellation is sent before (and whatever) the body's values: it echoes none of them
    assert (_code(xml), _items(xml)) == ("I0", [
        ("ExecutionDateTime", "3000-12-31T00:00:00.00Z"), ("Cancelled", "true")])


def test_device_that_does_not_answer_is_e20_naming_the_device() -> None:
    rig = Rig()
    rig.link.silent.add(16)  # the ESME's server address
    xml = rig.submit(fixture_xml("1.5_adjust_meter_balance"))
    assert _code(xml) == "E20"
    assert _reason(xml) == (
        "cannot communicate with device 00-DB-12-34-56-78-90-A1, nothing was sent: no device "
        "answers at server address 16")


def test_adapter_last_sent_holds_each_request_of_the_last_sr_as_the_handler_built_it() -> None:
    rig = Rig()
    rig.submit(fixture_xml("1.5_adjust_meter_balance"))  # 1234567 -> 1234 p
    assert rig.adapter.last_sent == [
        (16, Request(Command.ADJUST_METER_BALANCE, 0, {"adjustment_pence": 1234}))]


@pytest.mark.parametrize(("read_clock_lost", "clock_text"), [
    (False, "2026-01-05T09:00:00Z"), (True, "unknown (READ_CLOCK was not answered)")])
def test_execution_time_not_after_the_device_clock_is_refused_with_the_whole_reason(
        read_clock_lost: bool, clock_text: str) -> None:
    rig = Rig()
    if read_clock_lost:
        rig.link.lose_once.add((16, Command.READ_CLOCK))
    xml = rig.submit(_with_value("6.4.1_load_limit_settings_future_dated",
                                 "2030-01-15T09:00:00Z", "2025-01-15T09:00:00Z"))
    assert _code(xml) == "E-S1SR"
    assert _reason(xml) == (
        "device 00-DB-12-34-56-78-90-A1 refused to schedule SET_LOAD_LIMIT_SETTINGS: "
        "ExecutionDateTime 2025-01-15T09:00:00Z is not after the device's clock "
        f"({clock_text}); give a later ExecutionDateTime, or synchronise the device clock "
        "(SR 6.11)")


class _DeviceSide:
    """The real world behind the channel, except for the one command it is told to answer
    itself: with ``status`` (no fields), or by raising ``error`` as a channel would."""

    def __init__(self, rig: Rig, command: Command, *, status: Status | None = None,
                 error: Exception | None = None) -> None:
        self._inner = InProcessChannel(rig.world.handle_apdu)
        self._command, self._status, self._error = command, status, error

    def request(self, server_address: int, request: Request) -> Response:
        if request.command is not self._command:
            return self._inner.request(server_address, request)
        if self._error is not None:
            raise self._error
        assert self._status is not None
        return Response(request.command, request.invoke_id, self._status, {})


def test_request_the_channel_cannot_encode_is_invalid_naming_the_command() -> None:
    rig = Rig()
    adapter = S1spAdapter(_DeviceSide(rig, Command.SET_SUPPLY_STATE,
                                      error=ApduError("supply_state out of range")),
                          response_clock=rig.now)
    xml = adapter.submit(fixture_xml("7.1_enable_supply"))
    assert _code(xml) == "E-INVALID"
    assert _reason(xml) == (
        "a value does not fit the device's SET_SUPPLY_STATE request: supply_state out of range")


def test_schedule_request_refused_for_another_reason_names_the_device_and_status() -> None:
    rig = Rig()
    adapter = S1spAdapter(_DeviceSide(rig, Command.SCHEDULE_REQUEST,
                                      status=Status.NOT_SUPPORTED_BY_DEVICE),
                          response_clock=rig.now)
    xml = adapter.submit(fixture_xml("6.4.1_load_limit_settings_future_dated"))
    assert _code(xml) == "E-S1SR"
    assert _reason(xml) == ("device 00-DB-12-34-56-78-90-A1 refused SCHEDULE_REQUEST: "
                            "NOT_SUPPORTED_BY_DEVICE")


# --- 11.1 refused for every device -----------------------------------------------------------

def _firmware_body(xml: str) -> list[tuple[str, object]]:
    def items(node: Element) -> list[tuple[str, object]]:
        return [(c.tag.rsplit("}", 1)[1], items(c) if len(c) else c.text) for c in node]
    body = fromstring(xml).find("sr:Body/sr:ResponseMessage/sr:UpdateFirmwareResponse", NS)
    assert body is not None
    return items(body)


def test_11_1_refused_everywhere_keeps_the_request_version_and_joins_the_reasons() -> None:
    rig = Rig()
    assert rig.world.handle_request(HUB_ADDRESS, Request(  # the HAN's one transfer is taken
        Command.FIRMWARE_BEGIN, 0, {"image_size_bytes": 100})).ok
    xml = rig.submit(fixture_xml("11.1_update_firmware"))
    busy = "S1SR 18.63: a firmware update is already in progress on this device's HAN"
    assert _code(xml) == "E-S1SR"
    assert _reason(xml) == ("no device accepted the firmware update: "
                            f"00-DB-12-34-56-78-90-A1: {busy}; 00-DB-12-34-56-78-90-A2: {busy}")
    assert _firmware_body(xml)[0] == ("FirmwareVersion", "1.1.0")


def test_11_1_refused_with_e20_and_e19_is_our_refusal_code_not_either_of_them() -> None:
    rig = Rig()
    rig.link.silent.add(16)  # the ESME does not answer: E20
    xml = rig.submit(_with_value("11.1_update_firmware", "00-DB-12-34-56-78-90-A2<",
                                 "00-DB-12-34-56-78-90-FF<"))  # unknown: E19
    assert _code(xml) == "E-S1SR"
    assert [dict(items)["ResponseCode"] for name, items in _firmware_body(xml)
            if name == "Device"] == ["E20", "E19"]
