"""One device of an emulated world: its profile, firmware slot, meter or hub, clock offset,
scheduled requests and the keyed requests it applied.

A device's clock is world device time plus its own offset (SYNCHRONISE_CLOCK sets the offset),
held within the wire's unsigned 32-bit range. A meter is built from its profile when first used
(``meter_start_seconds`` says the world device time it starts at), so a large world costs
little until its devices are addressed; a meter built later and run to now is the same as one
built at the start and run along. This module holds data only: no routing, no event loop, no
I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from emulator.firmware import FirmwareSlot
from emulator.hub import CommsHub
from emulator.meter import Meter
from emulator.profile import DeviceProfile
from protocol.apdu import Command, DeviceIdentity

if TYPE_CHECKING:
    from emulator.idempotency import AppliedRequest
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
    hub: CommsHub | None = None
    #: A GPF: the gas meter's device whose data answers the gas reads sent to it.
    gas_proxy_of: EmulatedDevice | None = None
    clock_offset_seconds: int = 0
    schedule: dict[Command, ScheduledRequest] = field(default_factory=dict)
    scheduled_outcomes: list[ScheduledOutcome] = field(default_factory=list)
    #: idempotency key -> the keyed request applied and its response, oldest first
    applied_requests: dict[bytes, AppliedRequest] = field(default_factory=dict)
    #: World device time a meter not yet built starts at (None: no meter to build).
    meter_start_seconds: int | None = None
    _meter: Meter | None = field(default=None, repr=False)

    @property
    def meter(self) -> Meter | None:
        """The device's meter (built now from its profile if not yet), or None for a hub."""
        if self._meter is None and self.meter_start_seconds is not None:
            assert self.profile.meter_config is not None
            self._meter = Meter(self.profile.meter_config, self.meter_start_seconds)
        return self._meter

    @meter.setter
    def meter(self, meter: Meter | None) -> None:
        self._meter = meter

    @property
    def built_meter(self) -> Meter | None:
        """The meter if it has been built (a meter not yet built has nothing to run)."""
        return self._meter

    @property
    def eui64(self) -> bytes:
        return self.profile.eui64

    @property
    def server_address(self) -> int:
        return self.profile.server_address

    def identity(self) -> DeviceIdentity:
        """The device as the wire's DEVICE_IDENTITY body."""
        return DeviceIdentity(device_eui64=self.eui64, device_type=self.profile.device_type,
                              server_address=self.server_address,
                              manufacturer=self.profile.manufacturer, model=self.profile.model)

    def clock_seconds(self, world_now_seconds: int) -> int:
        """What the device's clock reads when world device time is ``world_now_seconds``."""
        return min(max(world_now_seconds + self.clock_offset_seconds, 0),
                   MAX_DEVICE_TIME_SECONDS)
