"""The S1SR rules: how each DUIS Service Request becomes device requests, and what comes back.

One visible function per S1SR Section 18 clause (``rule_18_*``), each with a test named after
it in tests/protocol/s1sp/. Handlers for the other SRs follow the same shape: check what can be
checked before anything is sent (a refusal here leaves the device untouched), send through
:class:`RuleContext`, and return the DUIS result items (money in DUIS units, pence x 1000).

- 18.3 / 18.16 (SR 1.5): AdjustMeterBalance truncated to pence and applied; ResetMeterBalance
  sets 0; the response carries the adjustment applied and the resulting balance (x 1000). A
  device refusal (EXCEEDS_MAX_METER_BALANCE) is our S1SR refusal, reason = the Status name.
- 18.4 / 18.27 (SR 1.6): DisablementThreshold truncated; SuspendDebt* passed; the Annex C
  defaults appended (the device applies them to parameters never configured).
- 18.5 / 18.8 (SR 2.5): the device refuses with EMERGENCY_CREDIT_UNAVAILABLE when ECL = 0;
  otherwise the response shows the EC balance made available (x 1000).
- 18.27 (SRs 1.6, 2.1): every threshold truncated to pence; the response returns the truncated
  values under the request's element names.
- 18.27, *decided* addition (SR 2.1): a non-zero DebtRecoveryRateCap that truncates to 0 pence
  (e.g. 30, i.e. 0.03 p) is refused here, nothing sent: the device reads a cap of 0 as "no cap"
  (emulator/meter_rules.py DEBT_RECOVERY_CAP_ZERO_MEANS_UNCAPPED), the opposite of the small cap
  asked for. A DebtRecoveryRateCap of exactly 0 is sent (it means "no cap").
- 18.37 (SR 6.4.1): LoadLimitPowerThreshold above :data:`MAX_LOAD_LIMIT_POWER_THRESHOLD_W` is
  refused here, nothing sent (never clamped). LoadLimitPeriod and LoadLimitRestorationPeriod
  outside MIN/MAX_LOAD_LIMIT_PERIOD_SECONDS are E-INVALID, nothing sent or scheduled (a
  future-dated one would otherwise be acknowledged and fail later, on the device).
- 18.62 (SR 8.11): JoinTimePeriod seconds -> whole minutes rounded up before it is sent. A
  device already JOINED (the hub answers state JOINED, no window) is reported as
  ``AlreadyJoined`` true, with no JoinTimePeriod: no window was opened.
- 18.63 (SR 11.1): each named device in turn: FIRMWARE_BEGIN, FIRMWARE_BLOCKs of at most
  MAX_FIRMWARE_BLOCK_BYTES, FIRMWARE_VERIFY; a device answering FIRMWARE_UPDATE_IN_PROGRESS
  (its HAN already busy) is refused alone; the others go ahead. Devices are handled one after
  another, so a transfer this request finishes never blocks the next device. When a step after
  a successful FIRMWARE_BEGIN fails (link error or refusal), a FIRMWARE_VERIFY is sent
  best-effort, its outcome ignored: a short VERIFY discards the transfer and frees the HAN lock.
  The response's FirmwareVersion is the image's own version as the device read it from the
  header (VERIFY's pending_version); a request FirmwareVersion that differs is reported as
  RequestedFirmwareVersion. An image that is not SEFW (FIRMWARE_BAD_HEADER, e.g. a real GBCS
  image) is refused with a reason pointing to firmware_images/README.md. When every device is
  refused, the header code is the devices' shared E19/E20/E21 code (E-S1SR otherwise) and the
  per-device list stays in the body.
- Future-dated SRs (1.6, 2.1, 6.4.1, 11.3 with ExecutionDateTime): the whole request APDU is
  sent inside SCHEDULE_REQUEST(execution_time_seconds, ...); the cancellation form
  (3000-12-31) sends CANCEL_SCHEDULED_REQUEST for that command. 11.3 is scheduled the same way
  (FIRMWARE_ACTIVATE(0) inside SCHEDULE_REQUEST) so that it can be cancelled the same way;
  before scheduling it, READ_FIRMWARE_VERSION is read and a device with no verified image
  pending is refused as the immediate 11.3 is (FIRMWARE_NO_VERIFIED_IMAGE). A device answering
  SCHEDULE_REQUEST with VALUE_OUT_OF_RANGE is asked READ_CLOCK so that the reason names the
  ExecutionDateTime and the device's clock. When the device says the request replaced an
  earlier one for the same command, the result carries ``ReplacedExecutionDateTime``.

This module never parses XML and never reaches a device except through its RuleContext.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from protocol.apdu import (
    MAX_FIRMWARE_BLOCK_BYTES,
    MAX_LOAD_LIMIT_PERIOD_SECONDS,
    MAX_LOAD_LIMIT_POWER_THRESHOLD_W,
    MIN_LOAD_LIMIT_PERIOD_SECONDS,
    Command,
    DebtRecoveryPeriod,
    DebtRegister,
    DeviceType,
    HanEntryState,
    PaymentMode,
    PrepaymentConfigurationField,
    Request,
    Response,
    Status,
    SupplyOffReason,
    SupplyState,
    encode_request,
)
from protocol.errors import ApduError, DeviceTimeoutError, DeviceUnreachableError, LinkError
from protocol.s1sp.annex_c import AnnexCTable
from protocol.s1sp.channel import DeviceChannel
from protocol.s1sp.duis import (
    DEBT_REGISTERS,
    PREPAY_CONFIGURATION_ELEMENTS,
    DebtUpdate,
    DuisRequest,
    Execution,
    FirmwareActivation,
    FirmwareUpdate,
    HanDeviceLogUpdate,
    LoadLimitSettingsUpdate,
    MeterBalanceUpdate,
    PaymentModeUpdate,
    PrepayConfigurationUpdate,
    SrBody,
    TopUp,
    format_eui64,
)
from protocol.s1sp.errors import (
    DeviceCommunicationError,
    FirmwareUpdateRefusedError,
    InvalidRequestError,
    S1spError,
    S1srRefusalError,
    UnknownDeviceError,
)
from protocol.s1sp.units import (
    datetime_to_device_seconds,
    debt_recovery_per_payment_to_percentage,
    debt_recovery_rate_to_pence,
    device_seconds_to_duis_date_time,
    duis_money_to_pence,
    join_time_period_seconds_to_minutes,
    join_window_minutes_to_seconds,
    pence_to_duis_money,
)

__all__ = [
    "MAX_LOAD_LIMIT_POWER_THRESHOLD_W",
    "VALID_DEVICE_TYPES",
    "DeviceEntry",
    "ResultItem",
    "RuleContext",
    "run_rules",
]

#: Where a user finds what firmware images the emulated devices take.
FIRMWARE_IMAGES_README = "firmware_images/README.md"
#: Per-device codes that, shared by every device of a refused 11.1, become its header code.
_SHARED_FIRMWARE_CODES = frozenset({"E19", "E20", "E21"})

#: A DUIS result element: (name, value); a list value is a nested element.
ResultValue = str | int | bool | list["ResultItem"]
ResultItem = tuple[str, ResultValue]

_METERS = frozenset({DeviceType.ELECTRICITY_METER, DeviceType.GAS_METER})
_ESME = frozenset({DeviceType.ELECTRICITY_METER})
_HUB = frozenset({DeviceType.COMMS_HUB})
_ANY_DEVICE = _METERS | _HUB

#: The device types each SR variant is valid for (anything else is DUIS E11).
VALID_DEVICE_TYPES: dict[str, frozenset[DeviceType]] = {
    "1.5": _METERS, "1.6": _METERS, "2.1": _METERS, "2.2": _METERS, "2.3": _METERS,
    "2.5": _METERS, "4.3": _METERS, "4.13": _METERS, "4.15": _ESME, "4.18": _METERS,
    "6.4.1": _ESME, "6.4.2": _ESME, "6.11": _METERS, "7.1": _METERS, "7.2": _METERS,
    "7.3": _METERS, "7.4": _METERS, "8.11": _HUB, "11.1": _ANY_DEVICE, "11.2": _ANY_DEVICE,
    "11.3": _ANY_DEVICE,
}


@dataclass(frozen=True)
class DeviceEntry:
    """One device of the link's directory."""

    device_eui64: bytes
    device_type: DeviceType
    server_address: int


@dataclass
class RuleContext:
    """What a rule may use: the channel, the target device, the Annex C table, the clock."""

    channel: DeviceChannel
    device: DeviceEntry
    annex_c: AnnexCTable
    now: Callable[[], datetime]
    resolve_device: Callable[[bytes], DeviceEntry]
    #: every (server_address, request) sent, oldest first
    sent: list[tuple[int, Request]] = field(default_factory=list)

    def send_to(self, device: DeviceEntry, command: Command,
                fields: Mapping[str, Any] | None = None) -> Response:
        """Send one request; E20/E21 become :class:`DeviceCommunicationError`."""
        request = Request(command, 0, dict(fields or {}))
        self.sent.append((device.server_address, request))
        try:
            return self.channel.request(device.server_address, request)
        except ApduError as error:
            raise InvalidRequestError(
                f"a value does not fit the device's {command.name} request: {error}") from None
        except DeviceTimeoutError as error:
            raise DeviceCommunicationError(
                f"no response from device {format_eui64(device.device_eui64)}: {error}",
                "E21") from None
        except DeviceUnreachableError as error:
            raise DeviceCommunicationError(
                f"cannot communicate with device {format_eui64(device.device_eui64)}: {error}",
                "E20") from None
        except LinkError as error:
            raise DeviceCommunicationError(
                f"the link to device {format_eui64(device.device_eui64)} failed: {error}",
                "E20") from None

    def send(self, command: Command, fields: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
        """Send to the target device; a failure status is an :class:`S1srRefusalError`."""
        return _require_success(self.send_to(self.device, command, fields), self.device)

    def send_possibly_future_dated(self, execution: Execution | None, command: Command,
                                   fields: Mapping[str, Any] | None = None
                                   ) -> tuple[Mapping[str, Any] | None, list[ResultItem]]:
        """Send now, or schedule / cancel per ExecutionDateTime. Returns the device's fields
        when sent now (else None) and result items describing the scheduling."""
        if execution is None:
            return self.send(command, fields), []
        if execution.cancel:
            self.send(Command.CANCEL_SCHEDULED_REQUEST, {"scheduled_command": int(command)})
            return None, [("ExecutionDateTime", execution.text), ("Cancelled", True)]
        try:
            inner = encode_request(Request(command, 0, dict(fields or {})))
        except ApduError as error:
            raise InvalidRequestError(
                f"a value does not fit the device's {command.name} request: {error}") from None
        assert execution.execution_time_seconds is not None
        response = self.send_to(self.device, Command.SCHEDULE_REQUEST, {
            "execution_time_seconds": execution.execution_time_seconds, "request": inner})
        if response.status is Status.VALUE_OUT_OF_RANGE:
            raise self._not_after_device_clock(execution, command)
        answer = _require_success(response, self.device)
        items: list[ResultItem] = [("ExecutionDateTime", device_seconds_to_duis_date_time(
            int(answer["execution_time_seconds"]))), ("Scheduled", True)]
        replaced_seconds = int(answer.get("replaced_execution_time_seconds", 0))
        if replaced_seconds:
            items.append(("ReplacedExecutionDateTime",
                          device_seconds_to_duis_date_time(replaced_seconds)))
        return None, items

    def _not_after_device_clock(self, execution: Execution, command: Command
                                ) -> S1srRefusalError:
        """The refusal of a SCHEDULE_REQUEST answered VALUE_OUT_OF_RANGE: the device's clock
        (READ_CLOCK) named beside the ExecutionDateTime when the device tells it."""
        device_text = format_eui64(self.device.device_eui64)
        clock_text = "unknown (READ_CLOCK was not answered)"
        try:
            clock = self.send_to(self.device, Command.READ_CLOCK)
            if clock.ok:
                clock_text = device_seconds_to_duis_date_time(
                    int(clock.fields["device_time_seconds"]))
        except S1spError:
            pass
        return S1srRefusalError(
            f"device {device_text} refused to schedule {command.name}: ExecutionDateTime "
            f"{execution.text} is not after the device's clock ({clock_text}); give a later "
            "ExecutionDateTime, or synchronise the device clock (SR 6.11)",
            device_status=Status.VALUE_OUT_OF_RANGE.name)


def _require_success(response: Response, device: DeviceEntry) -> Mapping[str, Any]:
    if response.status is not Status.SUCCESS:
        raise S1srRefusalError(
            f"device {format_eui64(device.device_eui64)} refused {response.command.name}: "
            f"{response.status.name}", device_status=response.status.name)
    return response.fields


def _money(pence: Any) -> int:
    return pence_to_duis_money(int(pence))


def _enum_name(value: Any, enum_class: type[Any]) -> str:
    """``NO_CREDIT`` -> ``NoCredit``: device enum names in DUIS's CamelCase style."""
    name = str(enum_class(int(value)).name)
    return "".join(part.capitalize() for part in name.split("_"))


#: DUIS SupplyStatus values for the device's supply switch states.
SUPPLY_STATUS_NAMES: dict[SupplyState, str] = {
    SupplyState.ENABLED: "On", SupplyState.DISABLED: "Off", SupplyState.ARMED: "Armed"}


# --------------------------------------------------------------------------------------------
# Clause rules
# --------------------------------------------------------------------------------------------


def rule_18_3_meter_balance_adjustment(ctx: RuleContext, body: MeterBalanceUpdate
                                       ) -> list[ResultItem]:
    """18.3 + 18.16: adjust (truncated to pence) or reset; report applied and resulting."""
    if body.reset_meter_balance:
        answer = ctx.send(Command.RESET_METER_BALANCE)
        return [("ResetMeterBalance", True),
                ("MeterBalance", _money(answer["meter_balance_pence"]))]
    assert body.adjust_meter_balance is not None
    adjustment_pence = duis_money_to_pence(body.adjust_meter_balance, "AdjustMeterBalance")
    answer = ctx.send(Command.ADJUST_METER_BALANCE, {"adjustment_pence": adjustment_pence})
    return rule_18_16_values_returned_after_adjustment(answer)


def rule_18_16_values_returned_after_adjustment(answer: Mapping[str, Any]) -> list[ResultItem]:
    """18.16: the adjustment actually applied and the resulting balance, x 1000."""
    return [("AdjustMeterBalance", _money(answer["adjustment_applied_pence"])),
            ("MeterBalance", _money(answer["meter_balance_pence"]))]


def rule_18_4_change_to_prepayment(ctx: RuleContext, body: PaymentModeUpdate
                                   ) -> list[ResultItem]:
    """18.4 (+ 18.27, Annex C): SET_PAYMENT_MODE with the truncated DisablementThreshold, the
    SuspendDebt flags and the Annex C defaults appended."""
    threshold_pence = rule_18_27_truncate_threshold(body.disablement_threshold,
                                                    "DisablementThreshold")
    fields = {
        "payment_mode": PaymentMode.PREPAYMENT if body.to_prepayment else PaymentMode.CREDIT,
        "disablement_threshold_pence": threshold_pence if body.to_prepayment else 0,
        "suspend_debt_disabled": body.suspend_debt_disabled,
        "suspend_debt_emergency": body.suspend_debt_emergency,
        "defaults": ctx.annex_c.as_defaults_fields(),
    }
    answer, scheduling = ctx.send_possibly_future_dated(
        body.execution, Command.SET_PAYMENT_MODE, fields)
    if not body.to_prepayment:
        return [("PaymentMode", "Credit"), *scheduling]
    if answer is not None:  # applied now: report what the device holds
        threshold_pence = int(answer["disablement_threshold_pence"])
    return [("PaymentMode", "Prepayment"),
            ("SuspendDebtDisabled", body.suspend_debt_disabled),
            ("SuspendDebtEmergency", body.suspend_debt_emergency),
            ("DisablementThreshold", pence_to_duis_money(threshold_pence)),
            *scheduling]


def rule_18_27_truncate_threshold(value: int, element_name: str) -> int:
    """18.27: a DUIS threshold truncated to whole pence (the response reports pence x 1000)."""
    return duis_money_to_pence(value, element_name)


def rule_18_27_prepay_configuration(ctx: RuleContext, body: PrepayConfigurationUpdate
                                    ) -> list[ResultItem]:
    """18.27 (SR 2.1): every threshold truncated; the response echoes the truncated values
    under the request's element names."""
    fields: dict[str, Any] = {name: 0 for name in PREPAY_CONFIGURATION_ELEMENTS.values()}
    present = PrepaymentConfigurationField(0)
    echoed: list[ResultItem] = []
    for element_name, value in body.values:
        pence = rule_18_27_truncate_threshold(value, element_name)
        if element_name == "DebtRecoveryRateCap" and value != 0 and pence == 0:
            raise S1srRefusalError(
                f"S1SR 18.27: DebtRecoveryRateCap {value} (1/100000 GBP) truncates to 0 pence, "
                "which the device reads as no cap at all, the opposite of the small cap asked "
                "for; give at least 1000 (1 p), or 0 for no cap; nothing was sent")
        field_name = PREPAY_CONFIGURATION_ELEMENTS[element_name]
        fields[field_name] = pence
        present |= PrepaymentConfigurationField[field_name.removesuffix("_pence").upper()]
        echoed.append((element_name, pence_to_duis_money(pence)))
    fields["fields_present"] = present
    _, scheduling = ctx.send_possibly_future_dated(
        body.execution, Command.SET_PREPAYMENT_CONFIGURATION, fields)
    return [*echoed, *scheduling]


def rule_18_5_and_18_8_emergency_credit(ctx: RuleContext) -> list[ResultItem]:
    """18.5: ECL = 0 -> the device refuses (EMERGENCY_CREDIT_UNAVAILABLE), our refusal code.
    18.8: otherwise the EC balance made available, x 1000."""
    answer = ctx.send(Command.ACTIVATE_EMERGENCY_CREDIT)
    return [("EmergencyCreditBalance", _money(answer["emergency_credit_balance_pence"])),
            ("MeterBalance", _money(answer["meter_balance_pence"]))]


def rule_18_37_load_limit_power_threshold(ctx: RuleContext, body: LoadLimitSettingsUpdate
                                          ) -> list[ResultItem]:
    """18.37: a threshold above the device maximum is refused here, the meter untouched."""
    threshold_w = body.load_limit_power_threshold_w
    if threshold_w > MAX_LOAD_LIMIT_POWER_THRESHOLD_W:
        raise S1srRefusalError(
            f"S1SR 18.37: LoadLimitPowerThreshold {threshold_w} W is above the device maximum "
            f"of {MAX_LOAD_LIMIT_POWER_THRESHOLD_W} W; nothing was sent to the meter")
    if threshold_w < 0:
        raise InvalidRequestError(f"LoadLimitPowerThreshold {threshold_w} W is negative")
    for name, seconds in (("LoadLimitPeriod", body.load_limit_period_seconds),
                          ("LoadLimitRestorationPeriod",
                           body.load_limit_restoration_period_seconds)):
        if not MIN_LOAD_LIMIT_PERIOD_SECONDS <= seconds <= MAX_LOAD_LIMIT_PERIOD_SECONDS:
            raise InvalidRequestError(
                f"{name} {seconds} s is outside the {MIN_LOAD_LIMIT_PERIOD_SECONDS}.."
                f"{MAX_LOAD_LIMIT_PERIOD_SECONDS} s the device accepts; nothing was sent or "
                "scheduled")
    answer, scheduling = ctx.send_possibly_future_dated(
        body.execution, Command.SET_LOAD_LIMIT_SETTINGS, {
            "load_limit_power_threshold_w": threshold_w,
            "load_limit_period_seconds": body.load_limit_period_seconds,
            "load_limit_restoration_period_seconds": body.load_limit_restoration_period_seconds,
        })
    if answer is None:
        return [("LoadLimitPowerThreshold", threshold_w),
                ("LoadLimitPeriod", body.load_limit_period_seconds),
                ("LoadLimitRestorationPeriod", body.load_limit_restoration_period_seconds),
                *scheduling]
    return _load_limit_items(answer)


def rule_18_62_join_time_period(ctx: RuleContext, body: HanDeviceLogUpdate) -> list[ResultItem]:
    """18.62: JoinTimePeriod seconds -> whole minutes rounded up before it reaches the hub."""
    if not body.add:
        answer = ctx.send(Command.HAN_REMOVE_DEVICE, {"device_eui64": body.device_eui64})
        return [("DeviceID", format_eui64(bytes(answer["device_eui64"]))),
                ("RequestType", "Remove")]
    assert body.join_time_period_seconds is not None
    minutes = join_time_period_seconds_to_minutes(body.join_time_period_seconds)
    answer = ctx.send(Command.HAN_ADD_DEVICE, {"device_eui64": body.device_eui64,
                                               "join_window_minutes": minutes})
    items: list[ResultItem] = [("DeviceID", format_eui64(bytes(answer["device_eui64"]))),
                               ("RequestType", "Add")]
    closes_at = int(answer["join_window_closes_at_seconds"])
    if int(answer["state"]) == HanEntryState.JOINED and not closes_at:
        # already on the HAN: the hub opened no window, so no JoinTimePeriod is echoed
        return [*items, ("AlreadyJoined", True)]
    items.append(("JoinTimePeriod", join_window_minutes_to_seconds(minutes)))
    if closes_at:
        items.append(("JoinWindowEndDateTime", device_seconds_to_duis_date_time(closes_at)))
    return items


def rule_18_63_firmware_update(ctx: RuleContext, body: FirmwareUpdate) -> list[ResultItem]:
    """18.63: per device: refused only where its HAN already has an update in progress."""
    outcomes = [_firmware_update_one(ctx, eui64, body.firmware_image)
                for eui64 in body.device_eui64s]
    image_versions = [str(dict(items)["PendingFirmwareVersion"]) for items in outcomes
                      if dict(items)["Outcome"] == "Accepted"]
    image_version = image_versions[0] if image_versions else ""
    version_items: list[ResultItem] = [("FirmwareVersion", image_version or body.firmware_version)]
    if image_version and body.firmware_version and body.firmware_version != image_version:
        version_items += [
            ("RequestedFirmwareVersion", body.firmware_version),
            ("FirmwareVersionNote", f"the image header says {image_version}, not the "
                                    f"request's FirmwareVersion {body.firmware_version}")]
    device_items: list[ResultItem] = [("Device", items) for items in outcomes]
    if not image_versions:
        reasons = "; ".join(f"{dict(items)['DeviceID']}: {dict(items)['Reason']}"
                            for items in outcomes)
        codes = {str(dict(items)["ResponseCode"]) for items in outcomes}
        shared_code = next(iter(codes)) if len(codes) == 1 else ""
        statuses = [dict(items).get("DeviceStatus") for items in outcomes]
        raise FirmwareUpdateRefusedError(
            f"no device accepted the firmware update: {reasons}",
            response_code=(shared_code if shared_code in _SHARED_FIRMWARE_CODES
                           else S1srRefusalError.response_code),
            device_status=next((str(s) for s in statuses if s is not None), None),
            result_items=(*version_items, *device_items))
    return [*version_items, *device_items]


def _firmware_refusal_reason(command: Command, status: Status) -> str:
    if status is Status.FIRMWARE_UPDATE_IN_PROGRESS:
        return "S1SR 18.63: a firmware update is already in progress on this device's HAN"
    reason = f"device refused {command.name}: {status.name}"
    if status is Status.FIRMWARE_BAD_HEADER:
        reason += (" (the image is not a SEFW image: the emulated devices take SEFW images "
                   f"only, not GBCS ones; see {FIRMWARE_IMAGES_README} for the format and "
                   "sample images)")
    return reason


def _firmware_update_one(ctx: RuleContext, eui64: bytes, image: bytes) -> list[ResultItem]:
    items: list[ResultItem] = [("DeviceID", format_eui64(eui64))]
    try:
        device = ctx.resolve_device(eui64)
    except UnknownDeviceError as error:
        return [*items, ("Outcome", "Refused"), ("ResponseCode", "E19"),
                ("Reason", error.reason)]
    except DeviceCommunicationError as error:
        return [*items, ("Outcome", "Refused"), ("ResponseCode", error.response_code),
                ("Reason", error.reason)]
    steps: list[tuple[Command, dict[str, Any]]] = [
        (Command.FIRMWARE_BEGIN, {"image_size_bytes": len(image)})]
    for offset in range(0, len(image), MAX_FIRMWARE_BLOCK_BYTES):
        steps.append((Command.FIRMWARE_BLOCK, {
            "block_offset_bytes": offset,
            "block_data": image[offset:offset + MAX_FIRMWARE_BLOCK_BYTES]}))
    steps.append((Command.FIRMWARE_VERIFY, {}))
    answer: Mapping[str, Any] = {}
    for command, fields in steps:
        began = command is not Command.FIRMWARE_BEGIN  # BEGIN was accepted before this step
        try:
            response = ctx.send_to(device, command, fields)
        except DeviceCommunicationError as error:
            if began:
                _discard_transfer(ctx, device)
            return [*items, ("Outcome", "Refused"), ("ResponseCode", error.response_code),
                    ("Reason", error.reason)]
        if response.status is not Status.SUCCESS:
            if began and command is not Command.FIRMWARE_VERIFY:
                _discard_transfer(ctx, device)  # a refused VERIFY has discarded it already
            return [*items, ("Outcome", "Refused"),
                    ("ResponseCode", S1srRefusalError.response_code),
                    ("DeviceStatus", response.status.name),
                    ("Reason", _firmware_refusal_reason(command, response.status))]
        answer = response.fields
    return [*items, ("Outcome", "Accepted"), ("ResponseCode", "I0"),
            ("PendingFirmwareVersion", str(answer.get("pending_version", "")))]


def _discard_transfer(ctx: RuleContext, device: DeviceEntry) -> None:
    """Best effort: a FIRMWARE_VERIFY after a failed step, so that the device discards the
    unfinished transfer and frees its HAN's lock (18.63). Its outcome is ignored."""
    with contextlib.suppress(S1spError):
        ctx.send_to(device, Command.FIRMWARE_VERIFY)


# --------------------------------------------------------------------------------------------
# Other SRs
# --------------------------------------------------------------------------------------------


def _load_limit_items(answer: Mapping[str, Any]) -> list[ResultItem]:
    return [("LoadLimitPowerThreshold", int(answer["load_limit_power_threshold_w"])),
            ("LoadLimitPeriod", int(answer["load_limit_period_seconds"])),
            ("LoadLimitRestorationPeriod", int(answer["load_limit_restoration_period_seconds"])),
            ("LoadLimitCounter", int(answer["load_limit_counter"])),
            ("LoadLimitActive", bool(answer["load_limit_active"]))]


def _supply_items(answer: Mapping[str, Any]) -> list[ResultItem]:
    return [("SupplyStatus", SUPPLY_STATUS_NAMES[SupplyState(int(answer["supply_state"]))]),
            ("SupplyOffReason", _enum_name(answer["supply_off_reason"], SupplyOffReason))]


_CONFIGURATION_MONEY: tuple[tuple[str, str], ...] = (
    ("DisablementThreshold", "disablement_threshold_pence"),
    ("EmergencyCreditLimit", "emergency_credit_limit_pence"),
    ("EmergencyCreditThreshold", "emergency_credit_threshold_pence"),
    ("LowCreditThreshold", "low_credit_threshold_pence"),
    ("MaxMeterBalance", "max_meter_balance_pence"),
    ("MaxCreditThreshold", "max_credit_threshold_pence"),
    ("DebtRecoveryRateCap", "debt_recovery_rate_cap_pence"),
    ("LowEmergencyCreditThreshold", "low_emergency_credit_threshold_pence"),
)


def _top_up(ctx: RuleContext, body: TopUp) -> list[ResultItem]:
    answer = ctx.send(Command.TOP_UP, {"utrn": body.utrn.encode("ascii")})
    return [("CreditAdded", _money(answer["credit_added_pence"])),
            ("EmergencyCreditRepaid", _money(answer["emergency_credit_repaid_pence"])),
            ("DebtRecovered", _money(answer["debt_recovered_pence"])),
            ("MeterBalance", _money(answer["meter_balance_pence"]))]


def _update_debt(ctx: RuleContext, body: DebtUpdate) -> list[ResultItem]:
    """2.3: one UPDATE_DEBT per register named. The Secure device sets a register's recovery
    together with its adjustment, so a register without its recovery settings is refused here
    (rather than zeroing the device's rate), before anything is sent. Registers are sent in
    order; if the device refuses one, those before it stay applied (the reason says which)."""
    fields_list: list[tuple[str, dict[str, Any]]] = []
    for update in body.registers:
        name = _DEBT_REGISTER_NAMES[update.debt_register]
        rate_pence, period, percentage = 0, DebtRecoveryPeriod.DAILY, 0
        if update.debt_register is DebtRegister.PAYMENT_DEBT:
            if update.debt_recovery_per_payment is None:
                raise S1srRefusalError(
                    f"{name} needs DebtRecoveryPerPayment: the Secure device sets the register "
                    "and its recovery together; nothing was sent")
            percentage = debt_recovery_per_payment_to_percentage(update.debt_recovery_per_payment)
        else:
            if update.recovery is None:
                raise S1srRefusalError(
                    f"{name} needs its ElecDebtRecovery/GasDebtRecovery settings: the Secure "
                    "device sets the register and its recovery together; nothing was sent")
            rate_pence = debt_recovery_rate_to_pence(
                update.recovery.debt_recovery_rate, update.recovery.debt_recovery_rate_price_scale)
            period = update.recovery.debt_recovery_period
        fields_list.append((name, {
            "debt_register": update.debt_register,
            "debt_adjustment_pence": duis_money_to_pence(update.debt_adjustment, name),
            "debt_recovery_rate_pence": rate_pence,
            "debt_recovery_period": period,
            "debt_recovery_percentage": percentage,
        }))
    items: list[ResultItem] = []
    for name, fields in fields_list:
        try:
            answer = ctx.send(Command.UPDATE_DEBT, fields)
        except S1srRefusalError as error:
            applied = ", ".join(item_name for item_name, _ in items) or "none"
            raise S1srRefusalError(f"{name}: {error.reason} (already applied: {applied})",
                                   device_status=error.device_status) from None
        register_items: list[ResultItem] = [
            ("DebtValue", _money(answer["debt_value_pence"]))]
        if answer["debt_register"] == DebtRegister.PAYMENT_DEBT:
            register_items.append(("DebtRecoveryPerPayment",
                                   int(answer["debt_recovery_percentage"]) * 100))
        else:
            register_items += [
                ("DebtRecoveryRate", int(answer["debt_recovery_rate_pence"])),
                ("DebtRecoveryRatePriceScale", -2),
                ("DebtRecoveryRatePeriod", DebtRecoveryPeriod(
                    int(answer["debt_recovery_period"])).name)]
        items.append((name, register_items))
    return items


_DEBT_REGISTER_NAMES: dict[DebtRegister, str] = {
    register: name for name, register in DEBT_REGISTERS.items()}


def _read_instantaneous_prepay_values(ctx: RuleContext, body: SrBody) -> list[ResultItem]:
    a = ctx.send(Command.READ_INSTANTANEOUS_PREPAY_VALUES)
    return [("PaymentMode", _enum_name(a["payment_mode"], PaymentMode)),
            ("MeterBalance", _money(a["meter_balance_pence"])),
            ("EmergencyCreditBalance", _money(a["emergency_credit_balance_pence"])),
            ("EmergencyCreditActive", bool(a["emergency_credit_active"])),
            ("AccumulatedDebt", _money(a["accumulated_debt_pence"])),
            ("TimeDebtRegister1", _money(a["time_debt_1_pence"])),
            ("TimeDebtRegister2", _money(a["time_debt_2_pence"])),
            ("PaymentDebtRegister", _money(a["payment_debt_pence"])),
            *_supply_items(a)]


def _read_prepayment_configuration(ctx: RuleContext, body: SrBody) -> list[ResultItem]:
    a = ctx.send(Command.READ_PREPAYMENT_CONFIGURATION)
    return [("PaymentMode", _enum_name(a["payment_mode"], PaymentMode)),
            ("SuspendDebtDisabled", bool(a["suspend_debt_disabled"])),
            ("SuspendDebtEmergency", bool(a["suspend_debt_emergency"])),
            *((name, _money(a[key])) for name, key in _CONFIGURATION_MONEY),
            ("CutOffGracePeriod", int(a["cut_off_grace_period_minutes"]) * 60),
            ("KeypadLockTimeout", int(a["keypad_lock_timeout_seconds"])),
            ("NonDisablementCalendarID", int(a["non_disablement_calendar_id"])),
            ("UTRNType", int(a["utrn_type"]))]


def _read_load_limit_data(ctx: RuleContext, body: SrBody) -> list[ResultItem]:
    return _load_limit_items(ctx.send(Command.READ_LOAD_LIMIT_DATA))


def _reset_load_limit_counter(ctx: RuleContext, body: SrBody) -> list[ResultItem]:
    return _load_limit_items(ctx.send(Command.RESET_LOAD_LIMIT_COUNTER))


def _read_meter_balance(ctx: RuleContext, body: SrBody) -> list[ResultItem]:
    a = ctx.send(Command.READ_METER_BALANCE)
    return [("MeterBalance", _money(a["meter_balance_pence"])),
            ("EmergencyCreditBalance", _money(a["emergency_credit_balance_pence"]))]


def _synchronise_clock(ctx: RuleContext, body: SrBody) -> list[ResultItem]:
    a = ctx.send(Command.SYNCHRONISE_CLOCK,
                 {"device_time_seconds": datetime_to_device_seconds(ctx.now())})
    return [("DeviceDateTime", device_seconds_to_duis_date_time(int(a["device_time_seconds"])))]


def _supply(state: SupplyState) -> Callable[[RuleContext, SrBody], list[ResultItem]]:
    def handler(ctx: RuleContext, body: SrBody) -> list[ResultItem]:
        return _supply_items(ctx.send(Command.SET_SUPPLY_STATE, {"supply_state": state}))
    return handler


def _read_supply_status(ctx: RuleContext, body: SrBody) -> list[ResultItem]:
    return _supply_items(ctx.send(Command.READ_SUPPLY_STATUS))


def _firmware_status_items(a: Mapping[str, Any]) -> list[ResultItem]:
    items: list[ResultItem] = [("FirmwareVersion", str(a["running_version"])),
                               ("PendingFirmwareVersion", str(a["pending_version"])),
                               ("TransferInProgress", bool(a["transfer_in_progress"]))]
    if int(a["pending_activation_time_seconds"]):
        items.append(("PendingActivationDateTime", device_seconds_to_duis_date_time(
            int(a["pending_activation_time_seconds"]))))
    return items


def _read_firmware_version(ctx: RuleContext, body: SrBody) -> list[ResultItem]:
    return _firmware_status_items(ctx.send(Command.READ_FIRMWARE_VERSION))


def _activate_firmware(ctx: RuleContext, body: FirmwareActivation) -> list[ResultItem]:
    if body.execution is not None and not body.execution.cancel:
        # scheduling needs a verified image now, as activating now does
        status = ctx.send(Command.READ_FIRMWARE_VERSION)
        if not str(status["pending_version"]):
            raise S1srRefusalError(
                f"device {format_eui64(ctx.device.device_eui64)} has no verified firmware image "
                "pending (send 11.1 UpdateFirmware first), so FIRMWARE_ACTIVATE cannot be "
                f"scheduled for {body.execution.text}: FIRMWARE_NO_VERIFIED_IMAGE; nothing was "
                "scheduled", device_status=Status.FIRMWARE_NO_VERIFIED_IMAGE.name)
    answer, scheduling = ctx.send_possibly_future_dated(
        body.execution, Command.FIRMWARE_ACTIVATE, {"activation_time_seconds": 0})
    return scheduling if answer is None else _firmware_status_items(answer)


_Handler = Callable[[RuleContext, Any], list[ResultItem]]

#: The handler for each SR variant.
HANDLERS: dict[str, _Handler] = {
    "1.5": rule_18_3_meter_balance_adjustment,
    "1.6": rule_18_4_change_to_prepayment,
    "2.1": rule_18_27_prepay_configuration,
    "2.2": _top_up,
    "2.3": _update_debt,
    "2.5": lambda ctx, body: rule_18_5_and_18_8_emergency_credit(ctx),
    "4.3": _read_instantaneous_prepay_values,
    "4.13": _read_prepayment_configuration,
    "4.15": _read_load_limit_data,
    "4.18": _read_meter_balance,
    "6.4.1": rule_18_37_load_limit_power_threshold,
    "6.4.2": _reset_load_limit_counter,
    "6.11": _synchronise_clock,
    "7.1": _supply(SupplyState.ENABLED),
    "7.2": _supply(SupplyState.DISABLED),
    "7.3": _supply(SupplyState.ARMED),
    "7.4": _read_supply_status,
    "8.11": rule_18_62_join_time_period,
    "11.1": rule_18_63_firmware_update,
    "11.2": _read_firmware_version,
    "11.3": _activate_firmware,
}


def run_rules(ctx: RuleContext, request: DuisRequest) -> list[ResultItem]:
    """Apply the rules of ``request``'s SR against ``ctx.device``; the DUIS result items."""
    return HANDLERS[request.service_reference_variant](ctx, request.body)
