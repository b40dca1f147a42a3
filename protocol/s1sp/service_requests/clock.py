"""Clock Service Request: 6.11 Synchronise Clock.

Body SynchroniseClock {CurrentDateTime, TolerancePeriod (seconds, 0-86400)}. They give a
validity window, as GBCS's set-clock command does: the clock may be set only at a time inside
``[CurrentDateTime, CurrentDateTime + TolerancePeriod]``; a command that arrives too late (or
too early) is refused.

*Decided* (:func:`rule_6_11_validity_window`): the S1SP, standing for the DCC as the trusted time
source, checks the window against its own time of sending (its response clock: the emulator's
device time when ``secure-emu send`` talks to an emulator) and sets the device to that time.
Outside the window it refuses (E-S1SR), nothing sent. The device is never set to
CurrentDateTime itself: that is the requester's belief, often a template's stale date. The DCC
templates (ECS70, GCS28) have windows around 2015-01-01T00:00:00Z; the built-in
``dcc-duis-templates`` profile starts its world there, so they succeed against an emulator
serving that profile on virtual time.

This module never loads a document and never reaches a device except through its RuleContext.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from xml.etree.ElementTree import Element

from protocol.apdu import Command, DeviceClock
from protocol.s1sp.duis_xml import BodyItem, SrBody, seconds_text, text
from protocol.s1sp.errors import InvalidRequestError, S1srRefusalError
from protocol.s1sp.rules import ResultItem, RuleContext
from protocol.s1sp.service_requests.record import (
    CRITICAL_VARIANTS,
    METERS,
    NON_CRITICAL_VARIANTS,
    ServiceRequest,
)
from protocol.s1sp.units import (
    datetime_to_device_seconds,
    datetime_to_duis_date_time,
    device_seconds_to_duis_date_time,
    duis_date_time_to_device_seconds,
    parse_duis_integer,
)

__all__ = ["RECORDS", "TOLERANCE_PERIOD_RANGE_SECONDS", "ClockSynchronisation",
           "rule_6_11_validity_window"]

#: DUIS sr:tolerancePeriod: xs:int 0..86400 seconds (at most one day).
TOLERANCE_PERIOD_RANGE_SECONDS = (0, 86_400)


@dataclass(frozen=True)
class ClockSynchronisation(SrBody):
    """6.11: the validity window, device seconds."""

    current_date_time: str
    window_start_seconds: int
    tolerance_period_seconds: int

    @property
    def window_end_seconds(self) -> int:
        return self.window_start_seconds + self.tolerance_period_seconds


_CURRENT_DATE_TIME, _TOLERANCE_PERIOD = "CurrentDateTime", "TolerancePeriod"


def _parse_synchronise_clock(body: Element, where: str) -> SrBody:
    current = text(body, _CURRENT_DATE_TIME, where)
    tolerance = parse_duis_integer(text(body, _TOLERANCE_PERIOD, where), _TOLERANCE_PERIOD)
    lowest, highest = TOLERANCE_PERIOD_RANGE_SECONDS
    if not lowest <= tolerance <= highest:
        raise InvalidRequestError(
            f"{_TOLERANCE_PERIOD} {tolerance} s is outside DUIS's {lowest}..{highest} s")
    return ClockSynchronisation(current, duis_date_time_to_device_seconds(
        current, _CURRENT_DATE_TIME), tolerance)


def _write_synchronise_clock(*, current_date_time: datetime,
                             tolerance_period_seconds: int | timedelta = 60) -> list[BodyItem]:
    """CurrentDateTime + TolerancePeriod are the validity window: the S1SP sets the device to
    its own clock only when it sends inside that window (docs/duis.md)."""
    return [(_CURRENT_DATE_TIME, datetime_to_duis_date_time(current_date_time,
                                                            _CURRENT_DATE_TIME)),
            (_TOLERANCE_PERIOD, seconds_text(tolerance_period_seconds, _TOLERANCE_PERIOD))]


def rule_6_11_validity_window(ctx: RuleContext, body: ClockSynchronisation
                              ) -> list[ResultItem]:
    """The S1SP's time of sending must lie in [CurrentDateTime, + TolerancePeriod]; then the
    device is set to that time."""
    sending_seconds = datetime_to_device_seconds(ctx.now())
    start, end = body.window_start_seconds, body.window_end_seconds
    if not start <= sending_seconds <= end:
        when = "after" if sending_seconds > end else "before"
        raise S1srRefusalError(
            f"6.11: the S1SP's time of sending, {device_seconds_to_duis_date_time(sending_seconds)}"
            f", is {when} the validity window {device_seconds_to_duis_date_time(start)}.."
            f"{device_seconds_to_duis_date_time(end)} (CurrentDateTime + TolerancePeriod "
            f"{body.tolerance_period_seconds} s); nothing was sent. Give a CurrentDateTime "
            "near the S1SP's time (the emulator's clock when sent to an emulator)")
    answer = ctx.send(Command.SYNCHRONISE_CLOCK, DeviceClock(device_time_seconds=sending_seconds))
    return [("DeviceDateTime", device_seconds_to_duis_date_time(answer.device_time_seconds))]


RECORDS: tuple[ServiceRequest, ...] = (
    # *decided* tolerance: 6.11 (ECS70) is critical in GBCS, but CommandVariants 1-3 are
    # accepted for it too
    ServiceRequest("6.11", "Synchronise Clock", ("SynchroniseClock",),
                   CRITICAL_VARIANTS | NON_CRITICAL_VARIANTS, critical=True,
                   valid_device_types=METERS, handler=rule_6_11_validity_window,
                   parse_body=_parse_synchronise_clock, write_body=_write_synchronise_clock),
)
