"""The emulated world: every device behind one link, by server address.

:class:`EmulatedWorld` composes the parts: it builds the devices of a
:class:`emulator.profile.Profile` (comms hubs, ESMEs, GSMEs), hands each request to the
management device at ``MANAGEMENT_SERVER_ADDRESS`` (1, :mod:`emulator.management`) or routes
it to the part of a device that answers it (:mod:`emulator.routing`), runs device time forward
in event order (:mod:`emulator.scheduler` is the event queue), and saves its whole state
(:mod:`emulator.state` encodes it, :mod:`emulator.persistence` writes it) before any answer
leaves. The READ_* commands change nothing, so they are answered without building or writing
the state (what time alone changed is recomputed from the saved state on a restart); any other
request that changed the state has it written atomically before its answer is returned.

Time (*decided*, kept simple):

- **World device time** is the injected clock's ``device_time_seconds()``. Meters (metrology,
  debt, supply) run on it, so correcting a device's clock never bills or refunds energy.
- **A device's clock** is world device time plus a per-device offset, 0 at start. SYNCHRONISE_CLOCK
  sets the offset so that the clock reads the time given; READ_CLOCK reports it. Times a
  head-end gives a device (SCHEDULE_REQUEST execution times, FIRMWARE_ACTIVATE activation times)
  are on the device's clock.

Joining: when a meter of this world is added to a hub's join list, it tries to join
``join_delay_seconds`` later (profile), unless its profile says ``joins_han = false``.
Events due at the same second run in this order: firmware activations, abandoned idle firmware
transfers (emulator/firmware.py) and closing join windows, then join attempts, then scheduled
requests (by server address, then command code). Every device is reachable on the link
whether or not it is on a HAN (*decided*); the firmware lock a meter uses is that of the hub
its profile names.

This module does no I/O except through :mod:`emulator.persistence`, and reads time only from
the injected clock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from emulator.clock import Clock
from emulator.device import MAX_DEVICE_TIME_SECONDS, EmulatedDevice
from emulator.errors import EmulatorError, StateError
from emulator.firmware import FirmwareSlot, TransferLock
from emulator.hub import CommsHub, Han
from emulator.management import MAX_ADVANCE_SECONDS, handle_management_request
from emulator.meter import Meter
from emulator.persistence import encode_state, load_state, write_atomically
from emulator.profile import Profile
from emulator.routing import DeviceTable, route
from emulator.scheduler import (
    MAX_SCHEDULED_OUTCOMES,
    ScheduledOutcome,
    ScheduledRequest,
    next_event_time_seconds,
    pop_due,
    record_outcome,
)
from emulator.state import encode_world_state, restore_world_state
from protocol.apdu import (
    MANAGEMENT_SERVER_ADDRESS,
    Command,
    HanEntryState,
    Request,
    Response,
    decode_apdu,
    encode_response,
    failure_response_bytes,
)
from protocol.errors import ApduError
from protocol.eui64 import format_eui64

__all__ = [
    "MAX_ADVANCE_SECONDS",
    "MAX_DEVICE_TIME_SECONDS",
    "MAX_SCHEDULED_OUTCOMES",
    "EmulatedDevice",
    "EmulatedWorld",
    "ScheduledOutcome",
    "ScheduledRequest",
]

#: Rounds of due events run at one second before moving on (each round can make more due).
_MAX_ROUNDS_PER_SECOND = 8
#: Commands that only report: answering one changes no state, so nothing is saved after it
#: (every READ_* command; a new one must stay side-effect free or leave this set).
_READ_ONLY_COMMANDS = frozenset(c for c in Command if c.name.startswith("READ_"))


class EmulatedWorld:
    """Every device behind one link. See the module docstring for routing and time rules."""

    def __init__(self, profile: Profile, clock: Clock, *, state_path: Path | None = None) -> None:
        self.profile = profile
        self._clock = clock
        self._state_path = Path(state_path) if state_path is not None else None
        self._now_seconds = clock.device_time_seconds()
        self._devices = DeviceTable()
        #: meter EUI-64 -> (device time it tries to join, hub EUI-64)
        self._join_attempts: dict[bytes, tuple[int, bytes]] = {}
        self._fingerprint = profile.device_fingerprint()
        self._last_saved: bytes | None = None
        self._build_from_profile()
        saved = load_state(self._state_path, self._fingerprint) if self._state_path else None
        if saved is not None:
            self._restore(saved)
            self._last_saved = self._encode()
        self.advance()

    # ---- construction ------------------------------------------------------------------

    def _build_from_profile(self) -> None:
        now = self._now_seconds
        for device_profile in self.profile.devices:
            firmware = FirmwareSlot(device_profile.manufacturer, device_profile.model,
                                    device_profile.firmware_version)
            device = EmulatedDevice(device_profile, firmware)
            if device_profile.is_hub:
                device.hub = CommsHub(device_profile.eui64, firmware)
            elif device_profile.meter_config is not None:
                device.meter = Meter(device_profile.meter_config, now)
            self._devices.add(device)
        for device in self._devices:
            gas_meter = device.profile.gas_meter_of_gpf(self.profile)
            if gas_meter is not None:
                device.gas_proxy_of = self._devices.by_eui64(gas_meter.eui64)
        for device_profile in self.profile.meters:
            if device_profile.on_han and device_profile.hub_eui64 is not None:
                self._han_of_hub(device_profile.hub_eui64).add_joined(device_profile.eui64)

    def _han_of_hub(self, hub_eui64: bytes) -> Han:
        hub = self._devices.by_eui64(hub_eui64).hub
        assert hub is not None
        return hub.han

    def _lock_for(self, device: EmulatedDevice) -> TransferLock:
        if device.hub is not None:
            return device.hub.han
        assert device.profile.hub_eui64 is not None
        return self._han_of_hub(device.profile.hub_eui64)

    # ---- lookups -----------------------------------------------------------------------

    @property
    def now_seconds(self) -> int:
        """World device time the devices have been run to."""
        return self._now_seconds

    def server_addresses(self) -> frozenset[int]:
        """Every address that answers, the management device's included."""
        return self._devices.addresses() | {MANAGEMENT_SERVER_ADDRESS}

    @property
    def devices(self) -> tuple[EmulatedDevice, ...]:
        return self._devices.by_address_order()

    def device_by_eui64(self, eui64: bytes) -> EmulatedDevice:
        return self._devices.by_eui64(eui64)

    def meter(self, eui64: bytes) -> Meter:
        device = self.device_by_eui64(eui64)
        if device.meter is None:
            raise EmulatorError(f"device {format_eui64(eui64)} is not a meter")
        return device.meter

    def hub(self, eui64: bytes | None = None) -> CommsHub:
        """The hub with ``eui64``, or the profile's first hub."""
        if eui64 is None:
            hubs = self.profile.hubs
            if not hubs:
                raise EmulatorError("this world has no comms hub")
            eui64 = hubs[0].eui64
        device = self.device_by_eui64(eui64)
        if device.hub is None:
            raise EmulatorError(f"device {format_eui64(eui64)} is not a comms hub")
        return device.hub

    def device_clock_seconds(self, eui64: bytes) -> int:
        """What the device's clock reads now (world device time plus its offset)."""
        return self.device_by_eui64(eui64).clock_seconds(self._now_seconds)

    def scheduled_outcomes(self, eui64: bytes) -> tuple[ScheduledOutcome, ...]:
        """The responses of the device's scheduled requests that have run, oldest first."""
        return tuple(self.device_by_eui64(eui64).scheduled_outcomes)

    def pending_join_attempts(self) -> dict[bytes, int]:
        """Meter EUI-64 -> world device time it will try to join."""
        return {eui64: when for eui64, (when, _) in self._join_attempts.items()}

    # ---- requests ----------------------------------------------------------------------

    def handle_apdu(self, server_address: int, apdu: bytes) -> bytes | None:
        """Answer one request APDU for ``server_address``; None if no device has that address.

        Undecodable bytes get ``failure_response_bytes``; the world is run to the clock's time
        first, and its state is saved (if a state path was given, the request is not a READ_*
        one, and anything changed) before the answer is returned. Never raises for any bytes;
        raises :class:`StateError` only if the state file cannot be written (then nothing is
        answered)."""
        if server_address not in self.server_addresses():
            return None
        data = bytes(apdu)
        try:
            decoded = decode_apdu(data)
        except ApduError as error:
            return failure_response_bytes(data, error)
        if not isinstance(decoded, Request):
            return failure_response_bytes(data, ApduError("a device answers requests only"))
        return encode_response(self.handle_request(server_address, decoded))

    def handle_request(self, server_address: int, request: Request) -> Response:
        """The typed twin of :meth:`handle_apdu` (raises :class:`EmulatorError` for an address
        no device has)."""
        if server_address not in self.server_addresses():
            raise EmulatorError(f"no device at server address {server_address}")
        self.advance()
        device = self._devices.at_address(server_address)
        if device is None:
            response = handle_management_request(
                request, devices=self.devices, now_seconds=self._now_seconds,
                fast_forward=getattr(self._clock, "fast_forward", None),
                advance=self._advance_and_report)
        else:
            response = self._route(device, request)
            # a SYNCHRONISE_CLOCK may have made scheduled work or an activation due already
            self._step_to(self._now_seconds)
            self._run_due_now()
        if request.command not in _READ_ONLY_COMMANDS:
            self._persist_if_changed()
        return response

    def _route(self, device: EmulatedDevice, request: Request) -> Response:
        return route(device, request, now_seconds=self._now_seconds, lock=self._lock_for(device),
                     after_han_request=self._after_han_request)

    def attempt_join(self, eui64: bytes) -> bool:
        """Make the device try to join now, on whichever hub's join list is waiting for it
        (its own hub first). True if it joined."""
        device = self.device_by_eui64(eui64)
        self.advance()
        joined = self._join(device.eui64, self._now_seconds)
        self._persist_if_changed()
        return joined

    # ---- time --------------------------------------------------------------------------

    def advance(self) -> None:
        """Run every device to the clock's device time, event by event in time order.

        This does not write the state file: what time alone changes is recomputed from the
        saved state on a restart (the next request, or :meth:`save`, writes it)."""
        target = max(self._clock.device_time_seconds(), self._now_seconds)
        last_run_at: int | None = None
        while True:
            event = next_event_time_seconds(self._devices, self._join_attempts)
            if event is None or event > target:
                break
            when = max(event, self._now_seconds)
            if when == last_run_at:
                break  # everything due at this second has run; never spin on a stale event
            self._step_to(when)
            self._run_due_now()
            last_run_at = when
        self._step_to(target)

    def _advance_and_report(self) -> int:
        self.advance()
        return self._now_seconds

    def _step_to(self, now_seconds: int) -> None:
        """Run every device's own time forward (meters, firmware activations and idle
        transfers, join windows)."""
        if now_seconds < self._now_seconds:
            return
        self._now_seconds = now_seconds
        for device in self._devices:
            if device.meter is not None:
                device.meter.advance_to(now_seconds)
            device.firmware.advance_to(device.clock_seconds(now_seconds),
                                       self._lock_for(device), device.eui64)
            if device.hub is not None:
                device.hub.han.advance_to(now_seconds)

    def _run_due_now(self) -> None:
        """Join attempts, then scheduled requests, due at or before now; again while one of
        them made something else due now (a scheduled HAN_ADD_DEVICE with no join delay)."""
        for _ in range(_MAX_ROUNDS_PER_SECOND):
            if not self._run_due_round():
                return

    def _run_due_round(self) -> bool:
        ran = False
        now = self._now_seconds
        for eui64, (when, hub_eui64) in sorted(self._join_attempts.items(),
                                                key=lambda item: (item[1][0], item[0])):
            if when <= now:
                del self._join_attempts[eui64]
                self._han_of_hub(hub_eui64).join(eui64, now)
                ran = True
        for device in self.devices:
            for entry in pop_due(device, device.clock_seconds(now)):
                decoded = decode_apdu(entry.request_apdu)
                assert isinstance(decoded, Request)
                record_outcome(device, entry, encode_response(self._route(device, decoded)))
                ran = True
        return ran

    # ---- joining -----------------------------------------------------------------------

    def _join(self, eui64: bytes, now_seconds: int) -> bool:
        device = self._devices.by_eui64(eui64)
        hubs = [d for d in self.devices if d.hub is not None]
        hubs.sort(key=lambda d: d.eui64 != device.profile.hub_eui64)
        for hub_device in hubs:
            assert hub_device.hub is not None
            if hub_device.hub.han.join(eui64, now_seconds):
                self._join_attempts.pop(eui64, None)
                return True
        return False

    def _after_han_request(self, hub_device: EmulatedDevice, request: Request,
                           response: Response) -> None:
        """Schedule (or forget) the automatic join of a meter of this world."""
        if not response.ok or request.command not in (Command.HAN_ADD_DEVICE,
                                                      Command.HAN_REMOVE_DEVICE):
            return
        eui64 = bytes(response.fields["device_eui64"])
        if request.command is Command.HAN_REMOVE_DEVICE:
            self._join_attempts.pop(eui64, None)
            return
        joiner = self._devices.get(eui64)
        if (joiner is None or joiner.meter is None or not joiner.profile.joins_han
                or response.fields["state"] != HanEntryState.JOIN_WINDOW_OPEN):
            return
        self._join_attempts[eui64] = (self._now_seconds + joiner.profile.join_delay_seconds,
                                      hub_device.eui64)

    # ---- persistence -------------------------------------------------------------------

    def save(self) -> None:
        """Write the state file now (no-op without a state path)."""
        if self._state_path is None:
            return
        data = self._encode()
        write_atomically(self._state_path, data)
        self._last_saved = data

    def to_state(self) -> dict[str, Any]:
        """The whole world state, JSON-able (see :mod:`emulator.state`)."""
        clock_offset = getattr(self._clock, "offset_seconds", None)
        return encode_world_state(
            now_seconds=self._now_seconds,
            clock_offset_seconds=clock_offset if isinstance(clock_offset, int) else None,
            join_attempts=self._join_attempts, devices=self.devices)

    def _encode(self) -> bytes:
        return encode_state(self._fingerprint, self.to_state())

    def _persist_if_changed(self) -> None:
        if self._state_path is None:
            return
        data = self._encode()
        if data != self._last_saved:
            write_atomically(self._state_path, data)
            self._last_saved = data

    def _restore(self, state: dict[str, Any]) -> None:
        saved = restore_world_state(state, self._devices, f"state file {self._state_path}")
        self._join_attempts = saved.join_attempts
        self._restore_clock(saved.now_seconds, saved.clock_offset_seconds)
        self._now_seconds = saved.now_seconds
        for device in self._devices:
            if device.firmware.transfer_in_progress:
                self._lock_for(device).acquire(device.eui64)

    def _restore_clock(self, saved_now: int, saved_clock_offset: int | None) -> None:
        """Bring the clock back to where the saved world was: a SystemClock's fast-forward
        offset is restored; any clock behind the saved time is fast-forwarded to it."""
        fast_forward = getattr(self._clock, "fast_forward", None)
        current_offset = getattr(self._clock, "offset_seconds", None)
        if (fast_forward is not None and saved_clock_offset is not None
                and isinstance(current_offset, int) and saved_clock_offset > current_offset):
            fast_forward(saved_clock_offset - current_offset)
        behind = saved_now - self._clock.device_time_seconds()
        if behind > 0:
            if fast_forward is None:
                raise StateError(f"state file {self._state_path} was saved at device time "
                                 f"{saved_now}, after this clock's time, and the clock cannot "
                                 "be moved forward")
            fast_forward(behind)
