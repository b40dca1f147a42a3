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
from datetime import timedelta
from xml.etree.ElementTree import Element

from protocol.apdu import Command, HanAddDeviceRequest, HanEntryState, HanRemoveDeviceRequest
from protocol.eui64 import format_eui64
from protocol.s1sp.duis_xml import (
    BodyItem,
    Eui64,
    SrBody,
    element_eui64,
    eui64_element_text,
    seconds_text,
    text,
)
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


_DEVICE_ID, _REQUEST_TYPE, _JOIN_TIME_PERIOD = "DeviceID", "RequestType", "JoinTimePeriod"
_ADD, _REMOVE = "Add", "Remove"


def _parse_han_device_log(body: Element, where: str) -> SrBody:
    device = element_eui64(text(body, _DEVICE_ID, where), _DEVICE_ID)
    request_type = text(body, _REQUEST_TYPE, where)
    if request_type == _REMOVE:
        return HanDeviceLogUpdate(device, add=False)
    if request_type != _ADD:
        raise InvalidRequestError(
            f"{_REQUEST_TYPE} {request_type!r} is not {_ADD} or {_REMOVE}")
    return HanDeviceLogUpdate(device, add=True, join_time_period_seconds=parse_duis_integer(
        text(body, _JOIN_TIME_PERIOD, where), _JOIN_TIME_PERIOD))


def _write_han_device_log(device_id: Eui64, *,
                          join_time_period_seconds: int | timedelta | None = None,
                          remove: bool = False) -> list[BodyItem]:
    """To the comms hub: add ``device_id`` to its join list for ``join_time_period_seconds``,
    or ``remove=True`` to take it off."""
    if remove == (join_time_period_seconds is not None):
        raise ValueError("update_han_device_log takes join_time_period_seconds to add a "
                         "device, or remove=True, not both")
    items: list[BodyItem] = [(_DEVICE_ID, eui64_element_text(device_id, "device_id")),
                             (_REQUEST_TYPE, _REMOVE if remove else _ADD)]
    if join_time_period_seconds is not None:
        items.append((_JOIN_TIME_PERIOD, seconds_text(join_time_period_seconds,
                                                      _JOIN_TIME_PERIOD)))
    return items


def rule_18_62_join_time_period(ctx: RuleContext, body: HanDeviceLogUpdate) -> list[ResultItem]:
    """18.62: JoinTimePeriod seconds -> whole minutes rounded up before it reaches the hub."""
    if not body.add:
        answer = ctx.send(Command.HAN_REMOVE_DEVICE,
                          HanRemoveDeviceRequest(device_eui64=body.device_eui64))
        return [(_DEVICE_ID, format_eui64(answer.device_eui64)), (_REQUEST_TYPE, _REMOVE)]
    assert body.join_time_period_seconds is not None
    minutes = join_time_period_seconds_to_minutes(body.join_time_period_seconds)
    answer = ctx.send(Command.HAN_ADD_DEVICE, HanAddDeviceRequest(
        device_eui64=body.device_eui64, join_window_minutes=minutes))
    items: list[ResultItem] = [(_DEVICE_ID, format_eui64(answer.device_eui64)),
                               (_REQUEST_TYPE, _ADD)]
    closes_at = answer.join_window_closes_at_seconds
    if answer.state is HanEntryState.JOINED and not closes_at:
        # already on the HAN: the hub opened no window, so no JoinTimePeriod is echoed
        return [*items, ("AlreadyJoined", True)]
    items.append((_JOIN_TIME_PERIOD, join_window_minutes_to_seconds(minutes)))
    if closes_at:
        items.append(("JoinWindowEndDateTime", device_seconds_to_duis_date_time(closes_at)))
    return items


RECORDS: tuple[ServiceRequest, ...] = (
    ServiceRequest("8.11", "Update HAN Device Log", ("UpdateHANDeviceLog",),
                   NON_CRITICAL_VARIANTS, critical=False, valid_device_types=COMMS_HUB,
                   handler=rule_18_62_join_time_period, parse_body=_parse_han_device_log,
                   write_body=_write_han_device_log),
)
