"""The comms hub and its HAN: the join list (in whole minutes) and the one-transfer lock.

A :class:`Han` is the hub's join list plus the firmware :class:`emulator.firmware.TransferLock`
shared by the hub and every meter on it (S1SR 18.63: one firmware transfer at a time per HAN).
Join list rules (S1SR 18.62; *decided* values are the constants below):

    HAN_ADD_DEVICE(eui, N)   N == 0 or N > MAX_JOIN_WINDOW_MINUTES   -> VALUE_OUT_OF_RANGE
                             eui is the hub itself                    -> VALUE_OUT_OF_RANGE
                             eui already JOINED                       -> SUCCESS, entry unchanged
                             eui waiting to join                      -> window reopened for N min
                             table holds HAN_TABLE_MAX_ENTRIES others -> HAN_TABLE_FULL
                             else: entry JOIN_WINDOW_OPEN, closes at now + N * 60 s
    device joins at t        entry open and t < closes_at             -> JOINED (True)
                             anything else                            -> refused (False)
    time reaches closes_at   an entry still waiting is dropped (so a join at exactly
                             N * 60 s after opening fails, one at N * 60 - 1 s succeeds)
    HAN_REMOVE_DEVICE(eui)   not in the table                         -> HAN_DEVICE_NOT_FOUND
    READ_HAN_ENTRIES         every entry, in the order added

A :class:`CommsHub` is a device: its identity, its own firmware slot, and one HAN.

This module never reads a clock and never does I/O: device time comes in as arguments.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from emulator.firmware import FirmwareSlot
from protocol import apdu
from protocol.apdu import (
    MAX_JOIN_WINDOW_MINUTES,
    ApduBody,
    Command,
    HanAddDeviceRequest,
    HanEntryState,
    HanRemoveDeviceRequest,
    HanRemoveDeviceResponse,
    ReadHanEntriesResponse,
    Request,
    Response,
    Status,
)

__all__ = [
    "HAN_COMMANDS",
    "HAN_TABLE_MAX_ENTRIES",
    "MAX_JOIN_WINDOW_MINUTES",
    "SECONDS_PER_MINUTE",
    "CommsHub",
    "Han",
    "HanEntry",
]

#: Longest join window a hub accepts (*decided*: one hour, the longest DUIS JoinTimePeriod).
#: Entries the join list holds, joined or waiting (*decided*).
HAN_TABLE_MAX_ENTRIES = 8
SECONDS_PER_MINUTE = 60
#: The commands :meth:`Han.handle_request` answers.
HAN_COMMANDS = frozenset({Command.HAN_ADD_DEVICE, Command.HAN_REMOVE_DEVICE,
                          Command.READ_HAN_ENTRIES})


@dataclass
class HanEntry:
    """One row of the join list."""

    device_eui64: bytes
    state: HanEntryState
    #: Device time the join window closes; 0 once joined.
    join_window_closes_at_seconds: int = 0

    def body(self) -> apdu.HanEntry:
        """The entry as the wire's HAN_ENTRY body."""
        return apdu.HanEntry(device_eui64=self.device_eui64, state=self.state,
                             join_window_closes_at_seconds=self.join_window_closes_at_seconds)


class Han:
    """A hub's join list and the HAN's firmware transfer lock."""

    def __init__(self, hub_eui64: bytes, entries: Iterable[HanEntry] = (),
                 lock_holder_eui64: bytes | None = None) -> None:
        self.hub_eui64 = hub_eui64
        self._entries: dict[bytes, HanEntry] = {e.device_eui64: e for e in entries}
        self._lock_holder_eui64 = lock_holder_eui64

    # ---- the join list -----------------------------------------------------------------

    @property
    def entries(self) -> tuple[HanEntry, ...]:
        return tuple(self._entries.values())

    def entry(self, eui64: bytes) -> HanEntry | None:
        return self._entries.get(eui64)

    def is_joined(self, eui64: bytes) -> bool:
        entry = self._entries.get(eui64)
        return entry is not None and entry.state is HanEntryState.JOINED

    def add_joined(self, eui64: bytes) -> None:
        """Put a device on the HAN directly (a profile's ``on_han = true``)."""
        self._entries[eui64] = HanEntry(eui64, HanEntryState.JOINED, 0)

    def add_device(self, eui64: bytes, join_window_minutes: int,
                   now_seconds: int) -> tuple[Status, HanEntry | None]:
        """Open a join window of ``join_window_minutes`` whole minutes from ``now_seconds``."""
        self.advance_to(now_seconds)
        if not 0 < join_window_minutes <= MAX_JOIN_WINDOW_MINUTES or eui64 == self.hub_eui64:
            return Status.VALUE_OUT_OF_RANGE, None
        existing = self._entries.get(eui64)
        if existing is not None and existing.state is HanEntryState.JOINED:
            return Status.SUCCESS, existing
        if existing is None and len(self._entries) >= HAN_TABLE_MAX_ENTRIES:
            return Status.HAN_TABLE_FULL, None
        entry = HanEntry(eui64, HanEntryState.JOIN_WINDOW_OPEN,
                         now_seconds + join_window_minutes * SECONDS_PER_MINUTE)
        self._entries[eui64] = entry
        return Status.SUCCESS, entry

    def remove_device(self, eui64: bytes) -> Status:
        if self._entries.pop(eui64, None) is None:
            return Status.HAN_DEVICE_NOT_FOUND
        return Status.SUCCESS

    def join(self, eui64: bytes, now_seconds: int) -> bool:
        """A device tries to join at ``now_seconds``: True if its window was still open."""
        self.advance_to(now_seconds)
        entry = self._entries.get(eui64)
        if entry is None or entry.state is not HanEntryState.JOIN_WINDOW_OPEN:
            return False
        entry.state = HanEntryState.JOINED
        entry.join_window_closes_at_seconds = 0
        return True

    def advance_to(self, now_seconds: int) -> None:
        """Drop every entry whose window has closed (closes_at <= now) before it joined."""
        for eui64, entry in list(self._entries.items()):
            if (entry.state is HanEntryState.JOIN_WINDOW_OPEN
                    and entry.join_window_closes_at_seconds <= now_seconds):
                del self._entries[eui64]

    def next_event_time_seconds(self) -> int | None:
        """The next time a join window closes, or None."""
        closing = [e.join_window_closes_at_seconds for e in self._entries.values()
                   if e.state is HanEntryState.JOIN_WINDOW_OPEN]
        return min(closing) if closing else None

    def handle_request(self, request: Request, now_seconds: int) -> Response:
        """Answer HAN_ADD_DEVICE, HAN_REMOVE_DEVICE or READ_HAN_ENTRIES (the body already
        checked by decoding)."""
        command = request.command
        body = request.body
        self.advance_to(now_seconds)
        answer: ApduBody | None = None
        if isinstance(body, HanAddDeviceRequest):
            status, entry = self.add_device(body.device_eui64, body.join_window_minutes,
                                            now_seconds)
            answer = entry.body() if entry is not None else None
        elif isinstance(body, HanRemoveDeviceRequest):
            status = self.remove_device(body.device_eui64)
            answer = HanRemoveDeviceResponse(device_eui64=body.device_eui64)
        elif command is Command.READ_HAN_ENTRIES:
            status = Status.SUCCESS
            answer = ReadHanEntriesResponse(
                entries=tuple(entry.body() for entry in self._entries.values()))
        else:
            status = Status.NOT_SUPPORTED_BY_DEVICE
        return Response(command, request.invoke_id, status,
                        body=answer if status is Status.SUCCESS else None)

    # ---- TransferLock (S1SR 18.63) -----------------------------------------------------

    @property
    def holder_eui64(self) -> bytes | None:
        return self._lock_holder_eui64

    def acquire(self, eui64: bytes) -> bool:
        """Take the HAN's one firmware transfer; True if free or already held by ``eui64``."""
        if self._lock_holder_eui64 is None:
            self._lock_holder_eui64 = eui64
        return self._lock_holder_eui64 == eui64

    def release(self, eui64: bytes) -> None:
        """Give the transfer up (only its holder can)."""
        if self._lock_holder_eui64 == eui64:
            self._lock_holder_eui64 = None


class CommsHub:
    """A comms hub device: its firmware slot and its HAN (which is also its TransferLock).

    What answers which request, and when the hub's parts run, is the world's routing and
    event loop (:mod:`emulator.routing`, :mod:`emulator.world`)."""

    def __init__(self, eui64: bytes, firmware: FirmwareSlot, han: Han | None = None) -> None:
        self.eui64 = eui64
        self.firmware = firmware
        self.han = han if han is not None else Han(eui64)
