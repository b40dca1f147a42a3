"""Future-dated requests and the world's event queue.

SCHEDULE_REQUEST holds a whole request APDU until the device clock reaches
``execution_time_seconds``. One entry per command code (scheduling a command again replaces
the entry). The embedded APDU must decode as a request (else MALFORMED_REQUEST), must not itself
be a scheduling or management command (NOT_SUPPORTED_BY_DEVICE), and the time must be later than
the device clock (else VALUE_OUT_OF_RANGE). When due it runs exactly as if it had arrived then,
and its response is kept in the device's log of scheduled outcomes (the last
``MAX_SCHEDULED_OUTCOMES``).

:func:`next_event_time_seconds` is the event queue: the earliest world device time at which
anything of any device is due (join attempts, closing join windows, firmware activations and
idle transfers, scheduled requests).

This module never reads a clock and never does I/O: times come in as arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from emulator.answers import ok, refuse, whole
from emulator.device import MAX_DEVICE_TIME_SECONDS, EmulatedDevice
from protocol.apdu import Command, Request, Response, Status, decode_apdu
from protocol.errors import ApduError

__all__ = [
    "MAX_SCHEDULED_OUTCOMES",
    "NOT_SCHEDULABLE",
    "SCHEDULER_COMMANDS",
    "ScheduledOutcome",
    "ScheduledRequest",
    "handle_scheduler_request",
    "next_event_time_seconds",
    "pop_due",
    "record_outcome",
]

#: Scheduled outcomes kept per device (the oldest is dropped).
MAX_SCHEDULED_OUTCOMES = 32
#: The commands :func:`handle_scheduler_request` answers.
SCHEDULER_COMMANDS = frozenset({Command.SCHEDULE_REQUEST, Command.CANCEL_SCHEDULED_REQUEST,
                                Command.READ_SCHEDULED_REQUESTS})
#: Commands that cannot be held by a scheduler.
NOT_SCHEDULABLE = frozenset({Command.SCHEDULE_REQUEST, Command.CANCEL_SCHEDULED_REQUEST,
                             Command.READ_DEVICE_DIRECTORY, Command.ADVANCE_DEVICE_TIME})


@dataclass(frozen=True)
class ScheduledRequest:
    """A request a device holds until its clock reaches ``execution_time_seconds``."""

    command: Command
    execution_time_seconds: int
    request_apdu: bytes


@dataclass(frozen=True)
class ScheduledOutcome:
    """What a scheduled request answered when it ran."""

    execution_time_seconds: int
    request_apdu: bytes
    response_apdu: bytes

    @property
    def response(self) -> Response:
        decoded = decode_apdu(self.response_apdu)
        assert isinstance(decoded, Response)
        return decoded


def handle_scheduler_request(device: EmulatedDevice, request: Request,
                             device_clock_seconds: int) -> Response:
    """Answer SCHEDULE_REQUEST, CANCEL_SCHEDULED_REQUEST or READ_SCHEDULED_REQUESTS for
    ``device`` (raises KeyError, TypeError or ValueError for malformed fields)."""
    command = request.command
    if command is Command.READ_SCHEDULED_REQUESTS:
        entries = sorted(device.schedule.values(),
                         key=lambda e: (e.execution_time_seconds, e.command))
        return ok(request, {"scheduled": [
            {"scheduled_command": int(e.command),
             "execution_time_seconds": e.execution_time_seconds} for e in entries]})
    if command is Command.CANCEL_SCHEDULED_REQUEST:
        code = whole(request.fields["scheduled_command"], 0xFF)
        for scheduled in list(device.schedule):
            if int(scheduled) == code:
                del device.schedule[scheduled]
                return ok(request, {"cancelled": True})
        return refuse(request, Status.NOTHING_SCHEDULED)
    execution_time_seconds = whole(request.fields["execution_time_seconds"],
                                   MAX_DEVICE_TIME_SECONDS)
    embedded = request.fields["request"]
    if not isinstance(embedded, (bytes, bytearray)):
        raise TypeError("request must be bytes")
    embedded = bytes(embedded)
    try:
        decoded = decode_apdu(embedded)
    except ApduError:
        return refuse(request, Status.MALFORMED_REQUEST)
    if not isinstance(decoded, Request):
        return refuse(request, Status.MALFORMED_REQUEST)
    if decoded.command in NOT_SCHEDULABLE:
        return refuse(request, Status.NOT_SUPPORTED_BY_DEVICE)
    if execution_time_seconds <= device_clock_seconds:
        return refuse(request, Status.VALUE_OUT_OF_RANGE)
    replaced = device.schedule.get(decoded.command)
    device.schedule[decoded.command] = ScheduledRequest(decoded.command,
                                                        execution_time_seconds, embedded)
    return ok(request, {"scheduled_command": int(decoded.command),
                        "execution_time_seconds": execution_time_seconds,
                        "replaced_execution_time_seconds":
                            replaced.execution_time_seconds if replaced else 0})


def pop_due(device: EmulatedDevice, device_clock_seconds: int) -> list[ScheduledRequest]:
    """Take the device's entries due at ``device_clock_seconds`` off its schedule, in command
    code order (the order they run in)."""
    due = []
    for command in sorted(device.schedule):
        if device.schedule[command].execution_time_seconds <= device_clock_seconds:
            due.append(device.schedule.pop(command))
    return due


def record_outcome(device: EmulatedDevice, entry: ScheduledRequest,
                   response_apdu: bytes) -> None:
    """Keep what a scheduled request answered (the last MAX_SCHEDULED_OUTCOMES)."""
    device.scheduled_outcomes.append(ScheduledOutcome(
        entry.execution_time_seconds, entry.request_apdu, response_apdu))
    del device.scheduled_outcomes[:-MAX_SCHEDULED_OUTCOMES]


def next_event_time_seconds(devices: Iterable[EmulatedDevice],
                            join_attempts: Mapping[bytes, tuple[int, bytes]]) -> int | None:
    """The earliest world device time anything is due: a join attempt, a join window
    closing, a firmware activation or idle transfer, a scheduled request (the last two are on
    each device's clock). None if nothing is pending."""
    times: list[int] = [when for when, _ in join_attempts.values()]
    for device in devices:
        if device.hub is not None:
            closing = device.hub.han.next_event_time_seconds()
            if closing is not None:
                times.append(closing)
        firmware_event = device.firmware.next_event_time_seconds()  # on the device clock
        if firmware_event is not None:
            times.append(firmware_event - device.clock_offset_seconds)
        times.extend(entry.execution_time_seconds - device.clock_offset_seconds
                     for entry in device.schedule.values())
    return min(times) if times else None
