"""HAN Service Request: 8.11 Update HAN Device Log (add a device to the hub's join list, or
remove it).

Body UpdateHANDeviceLog: DeviceID, RequestType (Add | Remove), JoinTimePeriod (s, Add); an
``AddDeviceToCHFWhitelist`` wrapper is accepted.

- 18.62 (SR 8.11): JoinTimePeriod seconds -> whole minutes rounded up before it is sent. A
  device already JOINED (the hub answers state JOINED, no window) is reported as
  ``AlreadyJoined`` true, with no JoinTimePeriod: no window was opened.

This module never loads a document and never reaches a device except through its RuleContext.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element

from protocol.apdu import Command, HanEntryState
from protocol.eui64 import format_eui64
from protocol.s1sp.duis_xml import SrBody, element_eui64, text
from protocol.s1sp.errors import InvalidRequestError
from protocol.s1sp.rules import ResultItem, RuleContext
from protocol.s1sp.service_requests.record import COMMS_HUB, NON_CRITICAL_VARIANTS, ServiceRequest
from protocol.s1sp.units import (
    device_seconds_to_duis_date_time,
    join_time_period_seconds_to_minutes,
    join_window_minutes_to_seconds,
    parse_duis_integer,
)

__all__ = ["RECORDS", "HanDeviceLogUpdate"]


@dataclass(frozen=True)
class HanDeviceLogUpdate(SrBody):
    """8.11: add a device to the hub's join list (JoinTimePeriod s) or remove it."""

    device_eui64: bytes
    add: bool
    join_time_period_seconds: int | None = None


def _parse_han_device_log(body: Element, where: str) -> SrBody:
    device = element_eui64(text(body, "DeviceID", where), "DeviceID")
    request_type = text(body, "RequestType", where)
    if request_type == "Remove":
        return HanDeviceLogUpdate(device, add=False)
    if request_type != "Add":
        raise InvalidRequestError(f"RequestType {request_type!r} is not Add or Remove")
    return HanDeviceLogUpdate(device, add=True, join_time_period_seconds=parse_duis_integer(
        text(body, "JoinTimePeriod", where), "JoinTimePeriod"))


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


RECORDS: tuple[ServiceRequest, ...] = (
    ServiceRequest("8.11", "Update HAN Device Log", ("UpdateHANDeviceLog",),
                   NON_CRITICAL_VARIANTS, critical=False, valid_device_types=COMMS_HUB,
                   handler=rule_18_62_join_time_period, parse_body=_parse_han_device_log),
)
