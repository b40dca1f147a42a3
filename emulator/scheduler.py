"""Future-dated requests and the world's event queue.

SCHEDULE_REQUEST holds a whole request APDU until the device clock reaches
``execution_time_seconds``. One entry per command code (scheduling a command again replaces
the entry), so a device holds at most ``MAX_SCHEDULED_REQUESTS_PER_DEVICE`` entries, each at
most ``protocol.apdu.MAX_SCHEDULED_REQUEST_BYTES`` long (a longer one does not decode). The
embedded APDU must decode as a request (else MALFORMED_REQUEST), must not itself be a
scheduling or management command (NOT_SUPPORTED_BY_DEVICE), and the time must be later than
the device clock (else VALUE_OUT_OF_RANGE). When due it runs exactly as if it had arrived then,
and its response is kept in the device's log of scheduled outcomes (the last
``MAX_SCHEDULED_OUTCOMES``).

:class:`EventQueue` is the world's event queue: each device's next event
(:func:`device_next_event_time_seconds`: its join attempt, closing join windows, firmware
activations and idle transfers, scheduled requests) in a heap.

This module never reads a clock and never does I/O: times come in as arguments.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from emulator.answers import ok, refuse
from emulator.device import EmulatedDevice
from protocol.apdu import (
    CancelScheduledRequestRequest,
    CancelScheduledRequestResponse,
    Command,
    ReadScheduledRequestsResponse,
    Request,
    Response,
    ScheduledEntry,
    ScheduleRequestRequest,
    ScheduleRequestResponse,
    Status,
    decode_apdu,
)
from protocol.errors import ApduError

__all__ = [
    "MAX_SCHEDULED_OUTCOMES",
    "MAX_SCHEDULED_REQUESTS_PER_DEVICE",
    "NOT_SCHEDULABLE",
    "SCHEDULER_COMMANDS",
    "EventQueue",
    "ScheduledOutcome",
    "ScheduledRequest",
    "device_next_event_time_seconds",
    "handle_scheduler_request",
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
#: Entries a device can hold at once: one per schedulable command code (docs/protocol.md 8.3).
MAX_SCHEDULED_REQUESTS_PER_DEVICE = sum(1 for command in Command
                                        if command not in NOT_SCHEDULABLE)


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
    ``device`` (the body already checked by decoding)."""
    body = request.body
    if request.command is Command.READ_SCHEDULED_REQUESTS:
        entries = sorted(device.schedule.values(),
                         key=lambda e: (e.execution_time_seconds, e.command))
        return ok(request, ReadScheduledRequestsResponse(tuple(
            ScheduledEntry(e.command, e.execution_time_seconds) for e in entries)))
    if isinstance(body, CancelScheduledRequestRequest):
        for scheduled in list(device.schedule):
            if scheduled == body.scheduled_command:
                del device.schedule[scheduled]
                return ok(request, CancelScheduledRequestResponse(cancelled=True))
        return refuse(request, Status.NOTHING_SCHEDULED)
    assert isinstance(body, ScheduleRequestRequest)
    execution_time_seconds = body.execution_time_seconds
    embedded = body.request
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
    return ok(request, ScheduleRequestResponse(
        decoded.command, execution_time_seconds,
        replaced.execution_time_seconds if replaced else 0))


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


def device_next_event_time_seconds(device: EmulatedDevice,
                                   join_attempt_seconds: int | None) -> int | None:
    """The earliest world device time something of ``device`` is due by itself: its join
    attempt, a join window closing on its HAN, a firmware activation or idle transfer, a
    scheduled request (the last two are on the device's clock). None if nothing is pending.

    A meter's own discrete events (debt ticks, load-limit periods, credit crossings) are not
    here: they concern only that meter, and :meth:`emulator.meter.Meter.advance_to` runs them
    exactly whenever the meter is next run."""
    times: list[int] = [] if join_attempt_seconds is None else [join_attempt_seconds]
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


class EventQueue:
    """Each device's next event in a heap: finding what is due is O(log N) per event.

    Entries are ``(world device time, server address, EUI-64)``; a device has at most one
    valid entry (the time in ``_queued``), older ones are skipped when they reach the top
    (lazy invalidation)."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, bytes]] = []
        self._queued: dict[bytes, int] = {}

    def update(self, eui64: bytes, server_address: int, when: int | None) -> None:
        """Make ``when`` the device's next event (None: it has none)."""
        if when is None:
            self._queued.pop(eui64, None)
        elif self._queued.get(eui64) != when:
            self._queued[eui64] = when
            heapq.heappush(self._heap, (when, server_address, eui64))

    def first_time(self) -> int | None:
        """The time of the earliest valid entry, or None."""
        heap = self._heap
        while heap:
            when, _, eui64 = heap[0]
            if self._queued.get(eui64) == when:
                return when
            heapq.heappop(heap)
        return None

    def pop_due(self, now_seconds: int) -> list[bytes]:
        """Take every device with an event at or before ``now_seconds`` off the queue."""
        due = []
        heap = self._heap
        while heap and heap[0][0] <= now_seconds:
            when, _, eui64 = heapq.heappop(heap)
            if self._queued.get(eui64) == when:
                del self._queued[eui64]
                due.append(eui64)
        return due
