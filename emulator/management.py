"""The management logical device at ``MANAGEMENT_SERVER_ADDRESS`` (1).

It answers READ_DEVICE_DIRECTORY (every device's identity, by address), ADVANCE_DEVICE_TIME
(fast-forward the clock, then run the world to the new time; at most ``MAX_ADVANCE_SECONDS``
per request, and only on a clock that can be moved forward), READ_CLOCK (world device time)
and READ_DEVICE_IDENTITY; anything else is NOT_SUPPORTED_BY_DEVICE.

Access (:class:`ManagementPolicy`, docs/protocol.md section 8.3): ADVANCE_DEVICE_TIME is
NOT_SUPPORTED_BY_DEVICE when time travel is not allowed (``secure-emu serve`` allows it only
with ``--virtual-time``), and NOT_AUTHORISED unless its ``management_password`` equals the
policy's password (when there is one). The reads need no password: the S1SP adapter finds
devices through the directory.

This module never reads a clock and never does I/O: the world hands it what it needs.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from emulator.answers import ok, refuse
from emulator.device import MAX_DEVICE_TIME_SECONDS, EmulatedDevice
from protocol.apdu import (
    MANAGEMENT_SERVER_ADDRESS,
    AdvanceDeviceTimeRequest,
    Command,
    DeviceClock,
    DeviceIdentity,
    DeviceType,
    ReadDeviceDirectoryResponse,
    Request,
    Response,
    Status,
)

__all__ = ["MANAGEMENT_IDENTITY", "MAX_ADVANCE_SECONDS", "ManagementPolicy",
           "handle_management_request"]

#: Longest ADVANCE_DEVICE_TIME one request may ask for (31 days, *decided*): the answer must
#: come back within link timeouts, and a meter with 30 s load-limit periods steps every period
#: (about 0.4 s for 31 days on a 2-core box). Send several requests to go further.
MAX_ADVANCE_SECONDS = 31 * 24 * 60 * 60
#: The management device's DEVICE_IDENTITY.
MANAGEMENT_IDENTITY = DeviceIdentity(
    device_eui64=bytes(8),
    device_type=DeviceType.MANAGEMENT,
    server_address=MANAGEMENT_SERVER_ADDRESS,
    manufacturer="secure-emu",
    model="management",
)


@dataclass(frozen=True)
class ManagementPolicy:
    """Who may move time: ``password`` (None: anyone who reaches the management device) and
    whether ADVANCE_DEVICE_TIME is allowed at all (a real-time server refuses it)."""

    password: str | None = None
    time_travel_allowed: bool = True

    def password_matches(self, given: object) -> bool:
        if self.password is None:
            return True
        if not isinstance(given, str):
            return False
        return hmac.compare_digest(given.encode("utf-8"), self.password.encode("utf-8"))


def handle_management_request(request: Request, *, devices: Iterable[EmulatedDevice],
                              now_seconds: int,
                              fast_forward: Callable[[int], None] | None,
                              advance: Callable[[], int],
                              policy: ManagementPolicy = ManagementPolicy()) -> Response:
    """Answer one request to the management device. ``devices`` in address order;
    ``now_seconds`` is world device time; ``fast_forward`` moves the clock on (None: this clock
    cannot); ``advance`` runs the world to the clock's time and returns world device time;
    ``policy`` says who may move time."""
    command = request.command
    if command is Command.READ_DEVICE_DIRECTORY:
        return ok(request, ReadDeviceDirectoryResponse(tuple(d.identity() for d in devices)))
    if command is Command.READ_CLOCK:
        return ok(request, DeviceClock(now_seconds))
    if command is Command.READ_DEVICE_IDENTITY:
        return ok(request, MANAGEMENT_IDENTITY)
    if isinstance(request.body, AdvanceDeviceTimeRequest):
        advance_seconds = request.body.advance_seconds
        if fast_forward is None or not policy.time_travel_allowed:
            return refuse(request, Status.NOT_SUPPORTED_BY_DEVICE)
        if not policy.password_matches(request.body.management_password):
            return refuse(request, Status.NOT_AUTHORISED)
        if (advance_seconds > MAX_ADVANCE_SECONDS
                or now_seconds + advance_seconds > MAX_DEVICE_TIME_SECONDS):
            return refuse(request, Status.VALUE_OUT_OF_RANGE)
        fast_forward(advance_seconds)
        return ok(request, DeviceClock(advance()))
    return refuse(request, Status.NOT_SUPPORTED_BY_DEVICE)
