"""One device of an emulated world: its profile, firmware slot, meter or hub, clock offset and
scheduled requests.

A device's clock is world device time plus its own offset (SYNCHRONISE_CLOCK sets the offset),
held within the wire's unsigned 32-bit range. This module holds data only: no routing, no
event loop, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from emulator.firmware import FirmwareSlot
from emulator.hub import CommsHub
from emulator.meter import Meter
from emulator.profile import DeviceProfile
from protocol.apdu import Command

if TYPE_CHECKING:
    from emulator.scheduler import ScheduledOutcome, ScheduledRequest

__all__ = ["MAX_DEVICE_TIME_SECONDS", "EmulatedDevice"]

#: Device time is an unsigned 32-bit number of seconds on the wire.
MAX_DEVICE_TIME_SECONDS = 0xFFFF_FFFF


@dataclass
class EmulatedDevice:
    """One device of the world: its profile, firmware, and its meter or hub (a GPF or a PPMID
    has neither)."""

    profile: DeviceProfile
    firmware: FirmwareSlot
    meter: Meter | None = None
    hub: CommsHub | None = None
    #: A GPF: the gas meter's device whose data answers the gas reads sent to it.
    gas_proxy_of: EmulatedDevice | None = None
    clock_offset_seconds: int = 0
    schedule: dict[Command, ScheduledRequest] = field(default_factory=dict)
    scheduled_outcomes: list[ScheduledOutcome] = field(default_factory=list)

    @property
    def eui64(self) -> bytes:
        return self.profile.eui64

    @property
    def server_address(self) -> int:
        return self.profile.server_address

    def identity(self) -> dict[str, Any]:
        """The DEVICE_IDENTITY fields of protocol.apdu."""
        return {"device_eui64": self.eui64, "device_type": self.profile.device_type,
                "server_address": self.server_address,
                "manufacturer": self.profile.manufacturer, "model": self.profile.model}

    def clock_seconds(self, world_now_seconds: int) -> int:
        """What the device's clock reads when world device time is ``world_now_seconds``."""
        return min(max(world_now_seconds + self.clock_offset_seconds, 0),
                   MAX_DEVICE_TIME_SECONDS)
