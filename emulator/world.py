"""The emulated world: every device behind one link, by server address.

:class:`EmulatedWorld` holds the devices of a :class:`emulator.profile.Profile` (comms hubs,
ESMEs, GSMEs) plus the management logical device at ``MANAGEMENT_SERVER_ADDRESS`` (1), routes
each request to the part of a device that answers it, runs device time forward in event order,
and saves its whole state (through :mod:`emulator.persistence`) before any answer leaves.
The READ_* commands change nothing, so they are answered without building or writing the state
(what time alone changed is recomputed from the saved state on a restart); any other request
that changed the state has it written atomically before its answer is returned.

Routing on a device (hub or meter)::

    READ_DEVICE_IDENTITY                      identity from the profile
    READ_CLOCK, SYNCHRONISE_CLOCK             the device clock (below)
    READ_FIRMWARE_VERSION, FIRMWARE_*         the device's FirmwareSlot, under its HAN's lock
    HAN_ADD_DEVICE, HAN_REMOVE_DEVICE,
    READ_HAN_ENTRIES                          the hub's HAN (on a meter: NOT_SUPPORTED_BY_DEVICE)
    SCHEDULE_REQUEST, CANCEL_SCHEDULED_REQUEST,
    READ_SCHEDULED_REQUESTS                   the device's scheduler (below)
    READ_DEVICE_DIRECTORY, ADVANCE_DEVICE_TIME NOT_SUPPORTED_BY_DEVICE (management only)
    anything else                             the meter (a hub: NOT_SUPPORTED_BY_DEVICE)

The management device answers READ_DEVICE_DIRECTORY (every device's identity, by address),
ADVANCE_DEVICE_TIME (fast-forward the clock, then run the world to the new time; at most
``MAX_ADVANCE_SECONDS`` per request), READ_CLOCK (world device time) and READ_DEVICE_IDENTITY.

Time (*decided*, kept simple):

- **World device time** is the injected clock's ``device_time_seconds()``. Meters (metrology,
  debt, supply) run on it, so correcting a device's clock never bills or refunds energy.
- **A device's clock** is world device time plus a per-device offset, 0 at start. SYNCHRONISE_CLOCK
  sets the offset so that the clock reads the time given; READ_CLOCK reports it. Times a
  head-end gives a device (SCHEDULE_REQUEST execution times, FIRMWARE_ACTIVATE activation times)
  are on the device's clock.

Scheduler: SCHEDULE_REQUEST holds a whole request APDU until the device clock reaches
``execution_time_seconds``. One entry per command code (scheduling a command again replaces
the entry). The embedded APDU must decode as a request (else MALFORMED_REQUEST), must not itself
be a scheduling or management command (NOT_SUPPORTED_BY_DEVICE), and the time must be later than
the device clock (else VALUE_OUT_OF_RANGE). When due it runs exactly as if it had arrived then,
and its response is kept in the device's log of scheduled outcomes (the last
``MAX_SCHEDULED_OUTCOMES``, :meth:`EmulatedWorld.scheduled_outcomes`).

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

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.clock import Clock
from emulator.errors import EmulatorError, StateError
from emulator.firmware import FIRMWARE_COMMANDS, FirmwareSlot, TransferLock
from emulator.hub import HAN_COMMANDS, CommsHub, Han
from emulator.meter import Meter
from emulator.persistence import encode_state, load_state, write_atomically
from emulator.profile import DeviceProfile, Profile, format_eui64
from protocol.apdu import (
    MANAGEMENT_SERVER_ADDRESS,
    Command,
    DeviceType,
    HanEntryState,
    Request,
    Response,
    Status,
    decode_apdu,
    encode_response,
    failure_response_bytes,
)
from protocol.errors import ApduError

__all__ = [
    "MAX_ADVANCE_SECONDS",
    "MAX_SCHEDULED_OUTCOMES",
    "EmulatedDevice",
    "EmulatedWorld",
    "ScheduledOutcome",
    "ScheduledRequest",
]

#: Longest ADVANCE_DEVICE_TIME one request may ask for (31 days, *decided*): the answer must
#: come back within link timeouts, and a meter with 30 s load-limit periods steps every period
#: (about 0.4 s for 31 days on a 2-core box). Send several requests to go further.
MAX_ADVANCE_SECONDS = 31 * 24 * 60 * 60
#: Scheduled outcomes kept per device (the oldest is dropped).
MAX_SCHEDULED_OUTCOMES = 32
MAX_DEVICE_TIME_SECONDS = 0xFFFF_FFFF
#: Rounds of due events run at one second before moving on (each round can make more due).
_MAX_ROUNDS_PER_SECOND = 8

_SCHEDULER_COMMANDS = frozenset({Command.SCHEDULE_REQUEST, Command.CANCEL_SCHEDULED_REQUEST,
                                 Command.READ_SCHEDULED_REQUESTS})
#: Commands that cannot be held by a scheduler.
_NOT_SCHEDULABLE = frozenset({Command.SCHEDULE_REQUEST, Command.CANCEL_SCHEDULED_REQUEST,
                              Command.READ_DEVICE_DIRECTORY, Command.ADVANCE_DEVICE_TIME})
_MANAGEMENT_ONLY = frozenset({Command.READ_DEVICE_DIRECTORY, Command.ADVANCE_DEVICE_TIME})
#: Commands that only report: answering one changes no state, so nothing is saved after it
#: (every READ_* command; a new one must stay side-effect free or leave this set).
_READ_ONLY_COMMANDS = frozenset(c for c in Command if c.name.startswith("READ_"))
_MANAGEMENT_IDENTITY = {
    "device_eui64": bytes(8),
    "device_type": DeviceType.MANAGEMENT,
    "server_address": MANAGEMENT_SERVER_ADDRESS,
    "manufacturer": "secure-emu",
    "model": "management",
}


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


@dataclass
class EmulatedDevice:
    """One device of the world: its profile, firmware, and its meter or hub."""

    profile: DeviceProfile
    firmware: FirmwareSlot
    meter: Meter | None = None
    hub: CommsHub | None = None
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


class EmulatedWorld:
    """Every device behind one link. See the module docstring for routing and time rules."""

    def __init__(self, profile: Profile, clock: Clock, *, state_path: Path | None = None) -> None:
        self.profile = profile
        self._clock = clock
        self._state_path = Path(state_path) if state_path is not None else None
        self._now_seconds = clock.device_time_seconds()
        self._devices: dict[bytes, EmulatedDevice] = {}
        self._by_address: dict[int, EmulatedDevice] = {}
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
            else:
                assert device_profile.meter_config is not None
                device.meter = Meter(device_profile.meter_config, now)
            self._devices[device.eui64] = device
            self._by_address[device.server_address] = device
        for device_profile in self.profile.meters:
            if device_profile.on_han and device_profile.hub_eui64 is not None:
                self._han_of_hub(device_profile.hub_eui64).add_joined(device_profile.eui64)

    def _han_of_hub(self, hub_eui64: bytes) -> Han:
        hub = self._devices[hub_eui64].hub
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
        return frozenset(self._by_address) | {MANAGEMENT_SERVER_ADDRESS}

    @property
    def devices(self) -> tuple[EmulatedDevice, ...]:
        return tuple(sorted(self._devices.values(), key=lambda d: d.server_address))

    def device_by_eui64(self, eui64: bytes) -> EmulatedDevice:
        try:
            return self._devices[bytes(eui64)]
        except KeyError:
            raise EmulatorError(f"no device {format_eui64(eui64)} in this world") from None

    def device_by_address(self, server_address: int) -> EmulatedDevice:
        try:
            return self._by_address[server_address]
        except KeyError:
            raise EmulatorError(f"no device at server address {server_address}") from None

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
        return self._device_clock(self.device_by_eui64(eui64))

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
        if server_address == MANAGEMENT_SERVER_ADDRESS:
            response = self._management(request)
        else:
            response = self._route(self._by_address[server_address], request)
            # a SYNCHRONISE_CLOCK may have made scheduled work or an activation due already
            self._step_to(self._now_seconds)
            self._run_due_now()
        if request.command not in _READ_ONLY_COMMANDS:
            self._persist_if_changed()
        return response

    def attempt_join(self, eui64: bytes) -> bool:
        """Make the device try to join now, on whichever hub's join list is waiting for it
        (its own hub first). True if it joined."""
        device = self.device_by_eui64(eui64)
        self.advance()
        joined = self._join(device.eui64, self._now_seconds)
        self._persist_if_changed()
        return joined

    def save(self) -> None:
        """Write the state file now (no-op without a state path)."""
        if self._state_path is None:
            return
        data = self._encode()
        write_atomically(self._state_path, data)
        self._last_saved = data

    # ---- time --------------------------------------------------------------------------

    def advance(self) -> None:
        """Run every device to the clock's device time, event by event in time order.

        This does not write the state file: what time alone changes is recomputed from the
        saved state on a restart (the next request, or :meth:`save`, writes it)."""
        target = max(self._clock.device_time_seconds(), self._now_seconds)
        last_run_at: int | None = None
        while True:
            event = self._next_event_time()
            if event is None or event > target:
                break
            when = max(event, self._now_seconds)
            if when == last_run_at:
                break  # everything due at this second has run; never spin on a stale event
            self._step_to(when)
            self._run_due_now()
            last_run_at = when
        self._step_to(target)

    def _next_event_time(self) -> int | None:
        times: list[int] = [when for when, _ in self._join_attempts.values()]
        for device in self._devices.values():
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

    def _step_to(self, now_seconds: int) -> None:
        """Run every device's own time forward (meters, firmware activations and idle
        transfers, join windows)."""
        if now_seconds < self._now_seconds:
            return
        self._now_seconds = now_seconds
        for device in self._devices.values():
            if device.meter is not None:
                device.meter.advance_to(now_seconds)
            device.firmware.advance_to(self._device_clock(device), self._lock_for(device),
                                       device.eui64)
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
            clock = self._device_clock(device)
            for command in sorted(device.schedule):
                entry = device.schedule[command]
                if entry.execution_time_seconds <= clock:
                    del device.schedule[command]
                    self._run_scheduled(device, entry)
                    ran = True
        return ran

    def _device_clock(self, device: EmulatedDevice) -> int:
        return min(max(self._now_seconds + device.clock_offset_seconds, 0),
                   MAX_DEVICE_TIME_SECONDS)

    # ---- joining -----------------------------------------------------------------------

    def _join(self, eui64: bytes, now_seconds: int) -> bool:
        device = self._devices[eui64]
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

    # ---- routing -----------------------------------------------------------------------

    def _route(self, device: EmulatedDevice, request: Request) -> Response:
        command = request.command
        now = self._now_seconds
        try:
            if command is Command.READ_DEVICE_IDENTITY:
                return _ok(request, device.identity())
            if command is Command.READ_CLOCK:
                return _ok(request, {"device_time_seconds": self._device_clock(device)})
            if command is Command.SYNCHRONISE_CLOCK:
                wanted = _whole(request.fields["device_time_seconds"], MAX_DEVICE_TIME_SECONDS)
                device.clock_offset_seconds = wanted - now
                return _ok(request, {"device_time_seconds": self._device_clock(device)})
            if command in FIRMWARE_COMMANDS:
                return device.firmware.handle_request(request, self._device_clock(device),
                                                      self._lock_for(device), device.eui64)
            if command in HAN_COMMANDS:
                if device.hub is None:
                    return _refuse(request, Status.NOT_SUPPORTED_BY_DEVICE)
                response = device.hub.han.handle_request(request, now)
                self._after_han_request(device, request, response)
                return response
            if command in _SCHEDULER_COMMANDS:
                return self._scheduler(device, request)
            if command in _MANAGEMENT_ONLY or device.meter is None:
                return _refuse(request, Status.NOT_SUPPORTED_BY_DEVICE)
            return device.meter.handle_request(request, now)
        except (KeyError, TypeError, ValueError):
            return _refuse(request, Status.MALFORMED_REQUEST)

    def _scheduler(self, device: EmulatedDevice, request: Request) -> Response:
        command = request.command
        if command is Command.READ_SCHEDULED_REQUESTS:
            entries = sorted(device.schedule.values(),
                             key=lambda e: (e.execution_time_seconds, e.command))
            return _ok(request, {"scheduled": [
                {"scheduled_command": int(e.command),
                 "execution_time_seconds": e.execution_time_seconds} for e in entries]})
        if command is Command.CANCEL_SCHEDULED_REQUEST:
            code = _whole(request.fields["scheduled_command"], 0xFF)
            for scheduled in list(device.schedule):
                if int(scheduled) == code:
                    del device.schedule[scheduled]
                    return _ok(request, {"cancelled": True})
            return _refuse(request, Status.NOTHING_SCHEDULED)
        execution_time_seconds = _whole(request.fields["execution_time_seconds"],
                                        MAX_DEVICE_TIME_SECONDS)
        embedded = request.fields["request"]
        if not isinstance(embedded, (bytes, bytearray)):
            raise TypeError("request must be bytes")
        embedded = bytes(embedded)
        try:
            decoded = decode_apdu(embedded)
        except ApduError:
            return _refuse(request, Status.MALFORMED_REQUEST)
        if not isinstance(decoded, Request):
            return _refuse(request, Status.MALFORMED_REQUEST)
        if decoded.command in _NOT_SCHEDULABLE:
            return _refuse(request, Status.NOT_SUPPORTED_BY_DEVICE)
        if execution_time_seconds <= self._device_clock(device):
            return _refuse(request, Status.VALUE_OUT_OF_RANGE)
        replaced = device.schedule.get(decoded.command)
        device.schedule[decoded.command] = ScheduledRequest(decoded.command,
                                                            execution_time_seconds, embedded)
        return _ok(request, {"scheduled_command": int(decoded.command),
                             "execution_time_seconds": execution_time_seconds,
                             "replaced_execution_time_seconds":
                                 replaced.execution_time_seconds if replaced else 0})

    def _run_scheduled(self, device: EmulatedDevice, entry: ScheduledRequest) -> None:
        decoded = decode_apdu(entry.request_apdu)
        assert isinstance(decoded, Request)
        response = self._route(device, decoded)
        device.scheduled_outcomes.append(ScheduledOutcome(
            entry.execution_time_seconds, entry.request_apdu, encode_response(response)))
        del device.scheduled_outcomes[:-MAX_SCHEDULED_OUTCOMES]

    def _management(self, request: Request) -> Response:
        command = request.command
        if command is Command.READ_DEVICE_DIRECTORY:
            return _ok(request, {"devices": [d.identity() for d in self.devices]})
        if command is Command.READ_CLOCK:
            return _ok(request, {"device_time_seconds": self._now_seconds})
        if command is Command.READ_DEVICE_IDENTITY:
            return _ok(request, dict(_MANAGEMENT_IDENTITY))
        if command is Command.ADVANCE_DEVICE_TIME:
            try:
                advance_seconds = _whole(request.fields["advance_seconds"], 0xFFFF_FFFF)
            except (KeyError, TypeError, ValueError):
                return _refuse(request, Status.MALFORMED_REQUEST)
            fast_forward = getattr(self._clock, "fast_forward", None)
            if fast_forward is None:
                return _refuse(request, Status.NOT_SUPPORTED_BY_DEVICE)
            if (advance_seconds > MAX_ADVANCE_SECONDS
                    or self._now_seconds + advance_seconds > MAX_DEVICE_TIME_SECONDS):
                return _refuse(request, Status.VALUE_OUT_OF_RANGE)
            fast_forward(advance_seconds)
            self.advance()
            return _ok(request, {"device_time_seconds": self._now_seconds})
        return _refuse(request, Status.NOT_SUPPORTED_BY_DEVICE)

    # ---- persistence -------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """The whole world state, JSON-able (see :mod:`emulator.persistence`)."""
        clock_offset = getattr(self._clock, "offset_seconds", None)
        return {
            "now_seconds": self._now_seconds,
            "clock_offset_seconds": clock_offset if isinstance(clock_offset, int) else None,
            "join_attempts": {eui64.hex(): [when, hub_eui64.hex()]
                              for eui64, (when, hub_eui64) in sorted(self._join_attempts.items())},
            "devices": {d.eui64.hex(): _device_state(d) for d in self.devices},
        }

    def _encode(self) -> bytes:
        return encode_state(self._fingerprint, self.to_state())

    def _persist_if_changed(self) -> None:
        if self._state_path is None:
            return
        data = self._encode()
        if data != self._last_saved:
            write_atomically(self._state_path, data)
            self._last_saved = data

    def _restore(self, state: Mapping[str, Any]) -> None:
        where = f"state file {self._state_path}"
        try:
            saved_now = _state_int(state["now_seconds"], "now_seconds")
            clock_offset = state["clock_offset_seconds"]
            join_attempts = state["join_attempts"]
            device_states = state["devices"]
            if not isinstance(device_states, Mapping) or not isinstance(join_attempts, Mapping):
                raise StateError("devices and join_attempts must be tables")
            for device in self._devices.values():
                raw = device_states.get(device.eui64.hex())
                if not isinstance(raw, Mapping):
                    raise StateError(f"no saved state for {device.profile.describe()}")
                self._restore_device(device, raw)
            self._join_attempts = {}
            for eui_hex, value in join_attempts.items():
                eui64 = _hex_eui64(eui_hex)
                when, hub_hex = value
                hub_eui64 = _hex_eui64(hub_hex)
                if eui64 not in self._devices or self._devices.get(hub_eui64) is None or (
                        self._devices[hub_eui64].hub is None):
                    raise StateError(f"join attempt names unknown devices {eui_hex}/{hub_hex}")
                self._join_attempts[eui64] = (_state_int(when, "join attempt time"), hub_eui64)
        except StateError as error:
            raise StateError(f"{where}: {error}") from None
        except (KeyError, TypeError, ValueError) as error:
            raise StateError(f"{where}: saved world state is malformed ({error!r}); delete it "
                             "to start from the profile") from None
        self._restore_clock(saved_now, clock_offset)
        self._now_seconds = saved_now
        for device in self._devices.values():
            if device.firmware.transfer_in_progress:
                self._lock_for(device).acquire(device.eui64)

    def _restore_device(self, device: EmulatedDevice, raw: Mapping[str, Any]) -> None:
        profile = device.profile
        device.firmware = FirmwareSlot.from_state(profile.manufacturer, profile.model,
                                                  raw["firmware"])
        if device.hub is not None:
            device.hub = CommsHub(device.eui64, device.firmware,
                                  Han.from_state(device.eui64, raw["han"]))
        if device.meter is not None:
            assert profile.meter_config is not None
            device.meter = Meter.from_state(profile.meter_config, raw["meter"])
        device.clock_offset_seconds = _state_int(raw["clock_offset_seconds"],
                                                 "clock_offset_seconds", signed=True)
        device.schedule = {}
        for entry in raw["schedule"]:
            request_apdu = bytes.fromhex(entry["request_hex"])
            decoded = decode_apdu(request_apdu)
            if not isinstance(decoded, Request):
                raise StateError(f"scheduled entry of {profile.describe()} is not a request")
            device.schedule[decoded.command] = ScheduledRequest(
                decoded.command, _state_int(entry["execution_time_seconds"], "execution time"),
                request_apdu)
        device.scheduled_outcomes = [
            ScheduledOutcome(_state_int(o["execution_time_seconds"], "execution time"),
                             bytes.fromhex(o["request_hex"]), bytes.fromhex(o["response_hex"]))
            for o in raw["scheduled_outcomes"]][-MAX_SCHEDULED_OUTCOMES:]

    def _restore_clock(self, saved_now: int, saved_clock_offset: Any) -> None:
        """Bring the clock back to where the saved world was: a SystemClock's fast-forward
        offset is restored; any clock behind the saved time is fast-forwarded to it."""
        fast_forward = getattr(self._clock, "fast_forward", None)
        current_offset = getattr(self._clock, "offset_seconds", None)
        if (fast_forward is not None and isinstance(saved_clock_offset, int)
                and isinstance(current_offset, int) and saved_clock_offset > current_offset):
            fast_forward(saved_clock_offset - current_offset)
        behind = saved_now - self._clock.device_time_seconds()
        if behind > 0:
            if fast_forward is None:
                raise StateError(f"state file {self._state_path} was saved at device time "
                                 f"{saved_now}, after this clock's time, and the clock cannot "
                                 "be moved forward")
            fast_forward(behind)


def _device_state(device: EmulatedDevice) -> dict[str, Any]:
    return {
        "clock_offset_seconds": device.clock_offset_seconds,
        "firmware": device.firmware.to_state(),
        "meter": device.meter.to_state() if device.meter is not None else None,
        "han": device.hub.han.to_state() if device.hub is not None else None,
        "schedule": [{"execution_time_seconds": e.execution_time_seconds,
                      "request_hex": e.request_apdu.hex()}
                     for e in sorted(device.schedule.values(), key=lambda e: e.command)],
        "scheduled_outcomes": [{"execution_time_seconds": o.execution_time_seconds,
                                "request_hex": o.request_apdu.hex(),
                                "response_hex": o.response_apdu.hex()}
                               for o in device.scheduled_outcomes],
    }


def _ok(request: Request, fields: dict[str, Any]) -> Response:
    return Response(request.command, request.invoke_id, Status.SUCCESS, fields)


def _refuse(request: Request, status: Status) -> Response:
    return Response(request.command, request.invoke_id, status)


def _whole(value: Any, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise ValueError(f"{value!r} is not a whole number 0..{maximum}")
    return value


def _state_int(value: Any, name: str, *, signed: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or (value < 0 and not signed):
        raise StateError(f"saved {name} {value!r} is not a whole number")
    return value


def _hex_eui64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise StateError(f"saved EUI-64 {text!r} is not hex text")
    value = bytes.fromhex(text)
    if len(value) != 8:
        raise StateError(f"saved EUI-64 {text!r} is not 8 bytes")
    return value
