"""Which device, and which part of it, answers a request.

:class:`DeviceTable` finds a device by server address or EUI-64. :func:`route` hands one
request to the part of a device (hub or meter) that answers it::

    READ_DEVICE_IDENTITY                      identity from the profile
    READ_CLOCK, SYNCHRONISE_CLOCK             the device clock (world time plus its offset)
    READ_FIRMWARE_VERSION, FIRMWARE_*         the device's FirmwareSlot, under its HAN's lock
    HAN_ADD_DEVICE, HAN_REMOVE_DEVICE,
    READ_HAN_ENTRIES                          the hub's HAN (on a meter: NOT_SUPPORTED_BY_DEVICE)
    SCHEDULE_REQUEST, CANCEL_SCHEDULED_REQUEST,
    READ_SCHEDULED_REQUESTS                   the device's scheduler (emulator.scheduler)
    GPF_READS on a GPF                        the gas meter of its hub's HAN (the GPF's data)
    READ_DEVICE_DIRECTORY, ADVANCE_DEVICE_TIME NOT_SUPPORTED_BY_DEVICE (management only)
    anything else                             the meter (a hub, GPF or PPMID:
                                              NOT_SUPPORTED_BY_DEVICE)

The management device at address 1 is :mod:`emulator.management`. This module never reads a
clock and never does I/O: world device time comes in as an argument.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from emulator.answers import ok, refuse
from emulator.device import EmulatedDevice
from emulator.errors import EmulatorError
from emulator.firmware import FIRMWARE_COMMANDS, TransferLock
from emulator.hub import HAN_COMMANDS
from emulator.scheduler import SCHEDULER_COMMANDS, handle_scheduler_request
from protocol.apdu import Command, DeviceClock, Request, Response, Status
from protocol.eui64 import format_eui64

__all__ = ["GPF_READS", "MANAGEMENT_ONLY", "DeviceTable", "HanResponseHook", "route"]

#: The gas reads a GPF answers from its gas meter's data (DUIS 4.3, 4.18, 4.1.1, 4.1.2, 4.1.4,
#: 4.14 and 4.17 to the GPF).
GPF_READS = frozenset({Command.READ_INSTANTANEOUS_PREPAY_VALUES, Command.READ_METER_BALANCE,
                       Command.READ_ENERGY_REGISTERS, Command.READ_PREPAYMENT_DAILY_LOG,
                       Command.READ_DAILY_CONSUMPTION_LOG})

#: Commands only the management device answers.
MANAGEMENT_ONLY = frozenset({Command.READ_DEVICE_DIRECTORY, Command.ADVANCE_DEVICE_TIME})

#: Called after the HAN of ``hub_device`` answered ``request`` with ``response``.
HanResponseHook = Callable[[EmulatedDevice, Request, Response], None]


class DeviceTable:
    """The devices of one world, by EUI-64 and by server address."""

    def __init__(self) -> None:
        self._by_eui64: dict[bytes, EmulatedDevice] = {}
        self._by_address: dict[int, EmulatedDevice] = {}

    def add(self, device: EmulatedDevice) -> None:
        self._by_eui64[device.eui64] = device
        self._by_address[device.server_address] = device

    def __iter__(self) -> Iterator[EmulatedDevice]:
        """Every device, in profile order."""
        return iter(self._by_eui64.values())

    def __contains__(self, eui64: object) -> bool:
        return eui64 in self._by_eui64

    def get(self, eui64: bytes) -> EmulatedDevice | None:
        return self._by_eui64.get(eui64)

    def by_eui64(self, eui64: bytes) -> EmulatedDevice:
        try:
            return self._by_eui64[bytes(eui64)]
        except KeyError:
            raise EmulatorError(f"no device {format_eui64(eui64)} in this world") from None

    def at_address(self, server_address: int) -> EmulatedDevice | None:
        return self._by_address.get(server_address)

    def addresses(self) -> frozenset[int]:
        return frozenset(self._by_address)

    def by_address_order(self) -> tuple[EmulatedDevice, ...]:
        return tuple(sorted(self._by_eui64.values(), key=lambda d: d.server_address))


def route(device: EmulatedDevice, request: Request, *, now_seconds: int,
          lock_of: Callable[[EmulatedDevice], TransferLock],
          after_han_request: HanResponseHook) -> Response:
    """Answer ``request`` on ``device`` at world device time ``now_seconds`` (see the module
    docstring). The request's body was checked when it was decoded: a part that raises has a
    bug, and the exception goes up (it is never answered as MALFORMED_REQUEST)."""
    command = request.command
    body = request.body
    if command is Command.READ_DEVICE_IDENTITY:
        return ok(request, device.identity())
    if command is Command.READ_CLOCK:
        return ok(request, DeviceClock(device_time_seconds=device.clock_seconds(now_seconds)))
    if isinstance(body, DeviceClock):  # SYNCHRONISE_CLOCK
        device.clock_offset_seconds = body.device_time_seconds - now_seconds
        return ok(request, DeviceClock(device_time_seconds=device.clock_seconds(now_seconds)))
    if command in FIRMWARE_COMMANDS:
        return device.firmware.handle_request(request, device.clock_seconds(now_seconds),
                                              lock_of(device), device.eui64)
    if command in HAN_COMMANDS:
        if device.hub is None:
            return refuse(request, Status.NOT_SUPPORTED_BY_DEVICE)
        response = device.hub.han.handle_request(request, now_seconds)
        after_han_request(device, request, response)
        return response
    if command in SCHEDULER_COMMANDS:
        return handle_scheduler_request(device, request, device.clock_seconds(now_seconds))
    gas = device.gas_proxy_of
    if gas is not None and gas.meter is not None and command in GPF_READS:
        return gas.meter.handle_request(request, now_seconds)
    if command in MANAGEMENT_ONLY or device.meter is None:
        return refuse(request, Status.NOT_SUPPORTED_BY_DEVICE)
    return device.meter.handle_request(request, now_seconds)
