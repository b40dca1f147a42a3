"""Load-limiting Service Requests: 4.15 Read Load Limit Data, 6.4.1 general settings, 6.4.2
counter reset.

6.4.1 UpdateDeviceConfigurationLoadLimitingGeneralSettings: ExecutionDateTime?,
LoadLimitPowerThreshold (W), LoadLimitPeriod (s), LoadLimitRestorationPeriod (s);
LoadLimitSupplyState is accepted and ignored (the Secure device always opens the switch, then
arms it after the restoration period). 4.15 and 6.4.2 bodies are empty.

- 18.37 (SR 6.4.1): LoadLimitPowerThreshold above ``protocol.apdu``'s
  MAX_LOAD_LIMIT_POWER_THRESHOLD_W is refused here, nothing sent (never clamped). LoadLimitPeriod
  and LoadLimitRestorationPeriod outside MIN/MAX_LOAD_LIMIT_PERIOD_SECONDS are E-INVALID,
  nothing sent or scheduled (a future-dated one would otherwise be acknowledged and fail later,
  on the device).

This module never loads a document and never reaches a device except through its RuleContext.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from xml.etree.ElementTree import Element

from protocol.apdu import (
    MAX_LOAD_LIMIT_PERIOD_SECONDS,
    MAX_LOAD_LIMIT_POWER_THRESHOLD_W,
    MIN_LOAD_LIMIT_PERIOD_SECONDS,
    Command,
    SetLoadLimitSettingsRequest,
)
from protocol.s1sp.duis_xml import BodyItem, EmptyBody, Execution, SrBody, seconds_text, text
from protocol.s1sp.errors import InvalidRequestError, S1srRefusalError
from protocol.s1sp.rules import ResponseBody, ResultItem, RuleContext
from protocol.s1sp.service_requests.record import (
    CRITICAL_VARIANTS,
    ELECTRICITY_METER,
    NON_CRITICAL_VARIANTS,
    ServiceRequest,
)
from protocol.s1sp.units import parse_duis_integer

__all__ = ["RECORDS", "LoadLimitSettingsUpdate"]


_POWER_THRESHOLD = "LoadLimitPowerThreshold"
_PERIOD = "LoadLimitPeriod"
_RESTORATION_PERIOD = "LoadLimitRestorationPeriod"


def _load_limit_items(answer: ResponseBody) -> list[ResultItem]:
    """The result of a LOAD_LIMIT_DATA answer."""
    return [(_POWER_THRESHOLD, answer.load_limit_power_threshold_w),
            (_PERIOD, answer.load_limit_period_seconds),
            (_RESTORATION_PERIOD, answer.load_limit_restoration_period_seconds),
            ("LoadLimitCounter", answer.load_limit_counter),
            ("LoadLimitActive", answer.load_limit_active)]


def _read_load_limit_data(ctx: RuleContext, body: EmptyBody) -> list[ResultItem]:
    return _load_limit_items(ctx.send(Command.READ_LOAD_LIMIT_DATA))


def _reset_load_limit_counter(ctx: RuleContext, body: EmptyBody) -> list[ResultItem]:
    return _load_limit_items(ctx.send(Command.RESET_LOAD_LIMIT_COUNTER))


@dataclass(frozen=True)
class LoadLimitSettingsUpdate(SrBody):
    """6.4.1: load-limiting general settings in DUIS units (W, s, s)."""

    load_limit_power_threshold_w: int
    load_limit_period_seconds: int
    load_limit_restoration_period_seconds: int
    execution: Execution | None = None


def _parse_load_limit_settings(body: Element, where: str) -> SrBody:
    return LoadLimitSettingsUpdate(*(parse_duis_integer(text(body, name, where), name)
                                     for name in (_POWER_THRESHOLD, _PERIOD,
                                                  _RESTORATION_PERIOD)))


def _write_load_limit_settings(*, power_threshold_w: int, period_seconds: int | timedelta,
                               restoration_period_seconds: int | timedelta) -> list[BodyItem]:
    """LoadLimitPowerThreshold (W), LoadLimitPeriod and LoadLimitRestorationPeriod (s);
    future-datable."""
    return [(_POWER_THRESHOLD, str(int(power_threshold_w))),
            (_PERIOD, seconds_text(period_seconds, _PERIOD)),
            (_RESTORATION_PERIOD, seconds_text(restoration_period_seconds,
                                               _RESTORATION_PERIOD))]


def rule_18_37_load_limit_power_threshold(ctx: RuleContext, body: LoadLimitSettingsUpdate
                                          ) -> list[ResultItem]:
    """18.37: a threshold above the device maximum is refused here, the meter untouched. A
    cancellation sends only the cancellation."""
    if body.execution is not None and body.execution.cancel:
        return ctx.cancel_scheduled(body.execution, Command.SET_LOAD_LIMIT_SETTINGS)
    threshold_w = body.load_limit_power_threshold_w
    if threshold_w > MAX_LOAD_LIMIT_POWER_THRESHOLD_W:
        raise S1srRefusalError(
            f"S1SR 18.37: {_POWER_THRESHOLD} {threshold_w} W is above the device maximum "
            f"of {MAX_LOAD_LIMIT_POWER_THRESHOLD_W} W; nothing was sent to the meter")
    if threshold_w < 0:
        raise InvalidRequestError(f"{_POWER_THRESHOLD} {threshold_w} W is negative")
    for name, seconds in ((_PERIOD, body.load_limit_period_seconds),
                          (_RESTORATION_PERIOD, body.load_limit_restoration_period_seconds)):
        if not MIN_LOAD_LIMIT_PERIOD_SECONDS <= seconds <= MAX_LOAD_LIMIT_PERIOD_SECONDS:
            raise InvalidRequestError(
                f"{name} {seconds} s is outside the {MIN_LOAD_LIMIT_PERIOD_SECONDS}.."
                f"{MAX_LOAD_LIMIT_PERIOD_SECONDS} s the device accepts; nothing was sent or "
                "scheduled")
    answer, scheduling = ctx.send_possibly_future_dated(
        body.execution, Command.SET_LOAD_LIMIT_SETTINGS, SetLoadLimitSettingsRequest(
            load_limit_power_threshold_w=threshold_w,
            load_limit_period_seconds=body.load_limit_period_seconds,
            load_limit_restoration_period_seconds=body.load_limit_restoration_period_seconds))
    if answer is None:
        return [(_POWER_THRESHOLD, threshold_w),
                (_PERIOD, body.load_limit_period_seconds),
                (_RESTORATION_PERIOD, body.load_limit_restoration_period_seconds),
                *scheduling]
    return _load_limit_items(answer)


RECORDS: tuple[ServiceRequest, ...] = (
    ServiceRequest("4.15", "Read Load Limit Data",
                   ("ReadLoadLimitData", "ReadLoadLimitDataCounter"), NON_CRITICAL_VARIANTS,
                   critical=False, valid_device_types=ELECTRICITY_METER,
                   handler=_read_load_limit_data),
    ServiceRequest("6.4.1", "Update Device Configuration (Load Limiting General Settings)",
                   ("UpdateDeviceConfigurationLoadLimitingGeneralSettings",
                    "UpdateDeviceConfigurationLoadLimiting"), CRITICAL_VARIANTS, critical=True,
                   valid_device_types=ELECTRICITY_METER,
                   handler=rule_18_37_load_limit_power_threshold,
                   parse_body=_parse_load_limit_settings,
                   write_body=_write_load_limit_settings,
                   builder_name="update_load_limiting_general_settings", future_datable=True),
    # *decided* tolerance: 6.4.2 accepts CommandVariants 1-6
    ServiceRequest("6.4.2", "Update Device Configuration (Load Limiting Counter Reset)",
                   ("UpdateDeviceConfigurationLoadLimitingCounterReset",
                    "ResetLoadLimitingCounter"), NON_CRITICAL_VARIANTS | CRITICAL_VARIANTS,
                   critical=False, valid_device_types=ELECTRICITY_METER,
                   handler=_reset_load_limit_counter,
                   builder_name="reset_load_limiting_counter"),
)
