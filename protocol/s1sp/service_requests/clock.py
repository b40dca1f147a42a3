"""Clock Service Request: 6.11 Synchronise Clock.

Body SynchroniseClock {CurrentDateTime, TolerancePeriod}: accepted, not used (*decided*): the
S1SP, standing for the DCC as the trusted time source, sets the device to its own "now" (its
response clock: the emulator's clock when ``secure-emu send`` talks to an emulator) when it
sends the request. CurrentDateTime is the requester's belief, often a template's stale date;
setting the device to it would move the clock back to whenever the file was written.

This module never loads a document and never reaches a device except through its RuleContext.
"""

from __future__ import annotations

from protocol.apdu import Command
from protocol.s1sp.duis_xml import EmptyBody
from protocol.s1sp.rules import ResultItem, RuleContext
from protocol.s1sp.service_requests.record import (
    CRITICAL_VARIANTS,
    METERS,
    NON_CRITICAL_VARIANTS,
    ServiceRequest,
)
from protocol.s1sp.units import datetime_to_device_seconds, device_seconds_to_duis_date_time

__all__ = ["RECORDS"]


def _synchronise_clock(ctx: RuleContext, body: EmptyBody) -> list[ResultItem]:
    a = ctx.send(Command.SYNCHRONISE_CLOCK,
                 {"device_time_seconds": datetime_to_device_seconds(ctx.now())})
    return [("DeviceDateTime", device_seconds_to_duis_date_time(int(a["device_time_seconds"])))]


RECORDS: tuple[ServiceRequest, ...] = (
    # *decided* tolerance: 6.11 (ECS70) is critical in GBCS, but CommandVariants 1-3 are
    # accepted for it too
    ServiceRequest("6.11", "Synchronise Clock", ("SynchroniseClock",),
                   CRITICAL_VARIANTS | NON_CRITICAL_VARIANTS, critical=True,
                   valid_device_types=METERS, handler=_synchronise_clock),
)
