"""What every Service Request handler shares: the device it targets and how it reaches it.

:class:`RuleContext` is what a handler may use (the channel, the target device, the Annex C
table, the clock, device resolution); handlers live beside their body parsers in the family
modules of :mod:`protocol.s1sp.service_requests`, one visible ``rule_18_*`` function per S1SR
Section 18 clause. A handler checks what can be checked before anything is sent (a refusal
there leaves the device untouched), sends typed APDU bodies through its context
(``ctx.send(Command.TOP_UP, TopUpRequest(utrn=...))`` returns the typed response body, read by
attribute), and returns the DUIS result items (money in DUIS units, pence x 1000).

Future-dated SRs (the records marked ``future_datable``: 1.6, 2.1, 6.4.1, 11.3 with an
ExecutionDateTime): :meth:`RuleContext.send_possibly_future_dated` sends the whole request APDU
inside SCHEDULE_REQUEST(execution_time_seconds, ...); the cancellation form (3000-12-31) sends
CANCEL_SCHEDULED_REQUEST for that command (:meth:`RuleContext.cancel_scheduled`, called by the
handlers before any check of the body's values: a cancellation never depends on them). A
device answering SCHEDULE_REQUEST with VALUE_OUT_OF_RANGE is asked READ_CLOCK so that the
reason names the ExecutionDateTime and the device's clock. When the device says the request
replaced an earlier one for the same command, the result carries ``ReplacedExecutionDateTime``.

This module never parses XML and never reaches a device except through its channel.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from protocol.apdu import (
    REQUEST_BODY_TYPES,
    ApduBody,
    CancelScheduledRequestRequest,
    Command,
    DeviceType,
    Request,
    Response,
    ScheduleRequestRequest,
    Status,
    encode_request,
)
from protocol.errors import ApduError, LinkError
from protocol.eui64 import format_eui64
from protocol.s1sp.annex_c import AnnexCTable
from protocol.s1sp.channel import DeviceChannel
from protocol.s1sp.duis_xml import Execution
from protocol.s1sp.errors import (
    InvalidRequestError,
    S1spError,
    S1srRefusalError,
    device_communication_error,
)
from protocol.s1sp.units import device_seconds_to_duis_date_time, pence_to_duis_money

__all__ = [
    "DeviceEntry",
    "ResponseBody",
    "ResultItem",
    "ResultValue",
    "RuleContext",
    "duis_enum_name",
    "name_out_of_range",
    "require_register_range",
    "require_success",
]

#: A DUIS result element: (name, value); a list value is a nested element.
ResultValue = str | int | bool | list["ResultItem"]
ResultItem = tuple[str, ResultValue]
#: A SUCCESS response's typed body: an instance of ``protocol.apdu.RESPONSE_BODY_TYPES[command]``
#: (generated at import from the Construct layouts, so typed here as Any).
ResponseBody = Any


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
                body: ApduBody | None = None) -> Response:
        """Send one request (``body``: an instance of ``REQUEST_BODY_TYPES[command]``; None
        for a command whose request body is empty); E20/E21 become
        :class:`DeviceCommunicationError`."""
        request = Request(command, 0, body=_request_body(command, body))
        self.sent.append((device.server_address, request))
        try:
            return self.channel.request(device.server_address, request)
        except ApduError as error:
            raise InvalidRequestError(
                f"a value does not fit the device's {command.name} request: {error}") from None
        except LinkError as error:
            raise device_communication_error(
                error, f"device {format_eui64(device.device_eui64)}") from None

    def send(self, command: Command, body: ApduBody | None = None) -> ResponseBody:
        """Send to the target device; the typed response body (an instance of
        ``RESPONSE_BODY_TYPES[command]``); a failure status is an :class:`S1srRefusalError`."""
        return require_success(self.send_to(self.device, command, body), self.device)

    def send_possibly_future_dated(self, execution: Execution | None, command: Command,
                                   body: ApduBody | None = None
                                   ) -> tuple[ResponseBody | None, list[ResultItem]]:
        """Send now, or schedule / cancel per ExecutionDateTime. Returns the device's typed
        response body when sent now (else None) and result items describing the
        scheduling."""
        if execution is None:
            return self.send(command, body), []
        if execution.cancel:
            return None, self.cancel_scheduled(execution, command)
        try:
            inner = encode_request(Request(command, 0, body=_request_body(command, body)))
        except ApduError as error:
            raise InvalidRequestError(
                f"a value does not fit the device's {command.name} request: {error}") from None
        assert execution.execution_time_seconds is not None
        response = self.send_to(self.device, Command.SCHEDULE_REQUEST, ScheduleRequestRequest(
            execution_time_seconds=execution.execution_time_seconds, request=inner))
        if response.status is Status.VALUE_OUT_OF_RANGE:
            raise self._not_after_device_clock(execution, command)
        answer = require_success(response, self.device)
        items: list[ResultItem] = [("ExecutionDateTime", device_seconds_to_duis_date_time(
            answer.execution_time_seconds)), ("Scheduled", True)]
        if answer.replaced_execution_time_seconds:
            items.append(("ReplacedExecutionDateTime",
                          device_seconds_to_duis_date_time(
                              answer.replaced_execution_time_seconds)))
        return None, items

    def cancel_scheduled(self, execution: Execution, command: Command) -> list[ResultItem]:
        """The cancellation form (3000-12-31): CANCEL_SCHEDULED_REQUEST for ``command``. A
        handler calls it before checking the body's values: a cancellation never depends on
        them."""
        self.send(Command.CANCEL_SCHEDULED_REQUEST,
                  CancelScheduledRequestRequest(scheduled_command=command))
        return [("ExecutionDateTime", execution.text), ("Cancelled", True)]

    def _not_after_device_clock(self, execution: Execution, command: Command
                                ) -> S1srRefusalError:
        """The refusal of a SCHEDULE_REQUEST answered VALUE_OUT_OF_RANGE: the device's clock
        (READ_CLOCK) named beside the ExecutionDateTime when the device tells it."""
        device_text = format_eui64(self.device.device_eui64)
        clock_text = "unknown (READ_CLOCK was not answered)"
        try:
            clock = self.send_to(self.device, Command.READ_CLOCK)
            if clock.ok:
                clock_text = device_seconds_to_duis_date_time(clock.body.device_time_seconds)
        except S1spError:
            pass
        return S1srRefusalError(
            f"device {device_text} refused to schedule {command.name}: ExecutionDateTime "
            f"{execution.text} is not after the device's clock ({clock_text}); give a later "
            "ExecutionDateTime, or synchronise the device clock (SR 6.11)",
            device_status=Status.VALUE_OUT_OF_RANGE.name)


def require_register_range(element_name: str, duis_value: int, pence: int,
                           value_range: tuple[int, int]) -> None:
    """Refuse (nothing sent) a DUIS money value whose pence fall outside the device register's
    documented range (:mod:`protocol.register_ranges`), naming the element and the range."""
    lowest, highest = value_range
    if not lowest <= pence <= highest:
        raise S1srRefusalError(
            f"{element_name} {duis_value} (= {pence} p) is outside the device register's range "
            f"{lowest}..{highest} p ({pence_to_duis_money(lowest)}..{pence_to_duis_money(highest)}"
            " in 1/100000 GBP); nothing was sent")


def name_out_of_range(error: S1srRefusalError, element_name: str, what: str
                      ) -> S1srRefusalError:
    """A device refusal, with the DUIS element named when the device said VALUE_OUT_OF_RANGE
    (``what``: the register the element would have taken out of its range)."""
    if error.device_status != Status.VALUE_OUT_OF_RANGE.name:
        return error
    return S1srRefusalError(f"{element_name}: {what}; {error.reason}",
                            device_status=error.device_status)


def require_success(response: Response, device: DeviceEntry) -> ResponseBody:
    """The response's typed body; a failure status is an :class:`S1srRefusalError` naming
    it."""
    if response.status is not Status.SUCCESS:
        raise S1srRefusalError(
            f"device {format_eui64(device.device_eui64)} refused {response.command.name}: "
            f"{response.status.name}", device_status=response.status.name)
    return response.body


def duis_enum_name(value: enum.Enum) -> str:
    """``SupplyOffReason.NO_CREDIT`` -> ``NoCredit``: device enum names in DUIS's CamelCase
    style."""
    return "".join(part.capitalize() for part in value.name.split("_"))


def _request_body(command: Command, body: ApduBody | None) -> ApduBody:
    """``body``, or the empty body of a command whose request carries none."""
    return REQUEST_BODY_TYPES[command]() if body is None else body
