"""The emulated world: every device behind one link, by server address.

:class:`EmulatedWorld` composes the parts: it builds the devices of a
:class:`emulator.profile.Profile` (comms hubs, ESMEs, GSMEs), hands each request to the
management device at ``MANAGEMENT_SERVER_ADDRESS`` (1, :mod:`emulator.management`) or routes
it to the part of a device that answers it (:mod:`emulator.routing`), runs device time forward
in event order (:mod:`emulator.scheduler` is the event queue), and commits what a request
changed (:mod:`emulator.state` encodes a device, :mod:`emulator.persistence` writes it) before
its answer leaves. The READ_* commands change nothing, so they are answered without writing
the state (what time alone changed is recomputed from the saved state on a restart); any other
request has the rows it changed committed in one transaction before its answer is returned,
and if that commit fails the device is put back as it was before the request. A keyed request
(an idempotency key, :mod:`emulator.idempotency`) is remembered with its response in the same
transaction, and a resend of it is answered with that response and changes nothing.

Each device runs on its own time: it is run to now only when it is addressed, when one of its
own events falls due (the event queue holds each device's next event: finding the next due one
is O(log N)), or when every device is asked for (:meth:`EmulatedWorld.advance`,
:meth:`EmulatedWorld.to_state`). A meter's own discrete events (debt ticks, load-limit periods)
concern only that meter and run inside :meth:`emulator.meter.Meter.advance_to`, exactly however
its time is cut. A meter is built from its profile when first used.

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

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.clock import Clock
from emulator.device import MAX_DEVICE_TIME_SECONDS, EmulatedDevice
from emulator.errors import EmulatorError, StateError
from emulator.firmware import FIRMWARE_COMMANDS, FirmwareSlot, TransferLock
from emulator.hub import CommsHub, Han
from emulator.idempotency import known_response, remember
from emulator.management import MAX_ADVANCE_SECONDS, ManagementPolicy, handle_management_request
from emulator.meter import Meter
from emulator.persistence import (
    DeviceRecord,
    StateStore,
    clean_up_after_a_kill,
    import_json_state,
    is_json_state_file,
    load_state,
)
from emulator.profile import Profile
from emulator.routing import DeviceTable, route
from emulator.scheduler import (
    MAX_SCHEDULED_OUTCOMES,
    EventQueue,
    ScheduledOutcome,
    ScheduledRequest,
    device_next_event_time_seconds,
    pop_due,
    record_outcome,
)
from emulator.state import (
    encode_device_record,
    encode_world_state,
    restore_device_record,
    restore_world_state,
)
from protocol.apdu import (
    MANAGEMENT_SERVER_ADDRESS,
    READ_ONLY_COMMANDS,
    Command,
    HanEntry,
    HanEntryState,
    HanRemoveDeviceResponse,
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


class EmulatedWorld:
    """Every device behind one link. See the module docstring for routing and time rules."""

    def __init__(self, profile: Profile, clock: Clock, *, state_path: Path | None = None,
                 management: ManagementPolicy | None = None) -> None:
        self.profile = profile
        self._clock = clock
        #: who may move time (default: the profile's management password, time travel allowed)
        self.management = management or ManagementPolicy(profile.management_password)
        self._state_path = Path(state_path) if state_path is not None else None
        self._now_seconds = clock.device_time_seconds()
        self._devices = DeviceTable()
        #: meter EUI-64 -> (device time it tries to join, hub EUI-64)
        self._join_attempts: dict[bytes, tuple[int, bytes]] = {}
        self._events = EventQueue()
        #: devices changed (beyond what time alone does) since the last commit
        self._dirty: dict[bytes, EmulatedDevice] = {}
        #: devices whose next event may have moved since the queue last saw them
        self._recheck: dict[bytes, EmulatedDevice] = {}
        self._store: StateStore | None = None
        #: world device time the devices were built at (a device never changed is as built)
        self._born_seconds = self._now_seconds
        self._build_from_profile()
        self._by_address = self._devices.by_address_order()
        self._hub_devices = tuple(d for d in self._by_address if d.hub is not None)
        self._server_addresses = self._devices.addresses() | {MANAGEMENT_SERVER_ADDRESS}
        # a device as built has no events pending: only restored ones go in the queue
        if self._state_path is not None and self._open_state(self._state_path):
            for device in self._devices:
                self._requeue(device)
        self.run_due_events()

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
                device.meter_start_seconds = now
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

    def _lock_owner(self, device: EmulatedDevice) -> EmulatedDevice:
        """The hub whose HAN holds ``device``'s firmware transfer lock (a hub: itself)."""
        if device.hub is not None:
            return device
        assert device.profile.hub_eui64 is not None
        return self._devices.by_eui64(device.profile.hub_eui64)

    def _lock_for(self, device: EmulatedDevice) -> TransferLock:
        hub = self._lock_owner(device).hub
        assert hub is not None
        return hub.han

    # ---- lookups -----------------------------------------------------------------------

    @property
    def now_seconds(self) -> int:
        """World device time the world has been run to."""
        return self._now_seconds

    def server_addresses(self) -> frozenset[int]:
        """Every address that answers, the management device's included."""
        return self._server_addresses

    @property
    def devices(self) -> tuple[EmulatedDevice, ...]:
        """Every device, in address order."""
        return self._by_address

    def device_by_eui64(self, eui64: bytes) -> EmulatedDevice:
        return self._devices.by_eui64(eui64)

    def meter(self, eui64: bytes) -> Meter:
        """The meter ``eui64``, run to now, for in-process use: what the caller changes in it
        is written by the next :meth:`save` (or the next request's commit)."""
        device = self.device_by_eui64(eui64)
        if device.meter is None:
            raise EmulatorError(f"device {format_eui64(eui64)} is not a meter")
        self._step_device(device, self._now_seconds)
        self._dirty[device.eui64] = device
        return device.meter

    def hub(self, eui64: bytes | None = None) -> CommsHub:
        """The hub with ``eui64``, or the profile's first hub."""
        if eui64 is None:
            if not self._hub_devices:
                raise EmulatorError("this world has no comms hub")
            eui64 = self._hub_devices[0].eui64
        device = self.device_by_eui64(eui64)
        if device.hub is None:
            raise EmulatorError(f"device {format_eui64(eui64)} is not a comms hub")
        self._step_device(device, self._now_seconds)
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

        Undecodable bytes get ``failure_response_bytes``; due events are run to the clock's
        time first, and what the request changed is committed to the state file (if a state
        path was given and the request is not a READ_* one) before the answer is returned.
        Never raises for any bytes; raises :class:`StateError` only if the change cannot be
        committed (then nothing is answered and the device is as it was before)."""
        if server_address not in self._server_addresses:
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
        if server_address not in self._server_addresses:
            raise EmulatorError(f"no device at server address {server_address}")
        self.run_due_events()
        device = self._devices.at_address(server_address)
        read_only = request.command in READ_ONLY_COMMANDS
        if device is None:
            response = handle_management_request(
                request, devices=self._by_address, now_seconds=self._now_seconds,
                fast_forward=self._clock.fast_forward,
                advance=self._advance_and_report, policy=self.management)
            if not read_only:
                self._commit()
            return response
        self._step_device(device, self._now_seconds)
        if read_only:
            return self._route(device, request)
        known = known_response(device, request)
        if known is not None:
            return known  # a resend of a keyed request this device applied: nothing changes
        snapshot = self._snapshot(device, request)
        try:
            response = self._route(device, request)
            remember(device, request, response)
            # a SYNCHRONISE_CLOCK may have made scheduled work or an activation due already
            self._run_events_until(self._now_seconds)
            self._commit()
        except StateError:
            self._roll_back(snapshot)
            raise
        return response

    def _route(self, device: EmulatedDevice, request: Request) -> Response:
        if request.command not in READ_ONLY_COMMANDS:
            self._touch(device, lock=request.command in FIRMWARE_COMMANDS)
        response = route(device, request, now_seconds=self._now_seconds,
                         lock_of=self._lock_for, after_han_request=self._after_han_request)
        self._requeue_touched()
        return response

    def attempt_join(self, eui64: bytes) -> bool:
        """Make the device try to join now, on whichever hub's join list is waiting for it
        (its own hub first). True if it joined."""
        device = self.device_by_eui64(eui64)
        self.run_due_events()
        joined = self._join(device.eui64, self._now_seconds)
        self._requeue_touched()
        self._commit()
        return joined

    # ---- time --------------------------------------------------------------------------

    def advance(self) -> None:
        """Run every device to the clock's device time: due events in time order, then each
        device's own time (metrology) to now.

        This does not write the state file: what time alone changes is recomputed from the
        saved state on a restart (the next request, or :meth:`save`, writes it)."""
        self.run_due_events()
        for device in self._devices:
            self._step_device(device, self._now_seconds)

    def run_due_events(self) -> None:
        """Run the events due by the clock's device time (join attempts, closing join windows,
        firmware activations and idle transfers, scheduled requests), each device they
        concern at the event's time; other devices are left where they are (cost: O(log N) per
        event, nothing per idle device)."""
        target = max(self._clock.device_time_seconds(), self._now_seconds)
        self._run_events_until(target)
        self._now_seconds = target

    def _advance_and_report(self) -> int:
        self.advance()
        return self._now_seconds

    def _run_events_until(self, target: int) -> None:
        rounds_at: int | None = None
        rounds = 0
        while True:
            first = self._events.first_time()
            if first is None or first > target:
                return
            when = max(first, self._now_seconds)
            rounds = rounds + 1 if when == rounds_at else 1
            rounds_at = when
            self._now_seconds = when
            self._run_due(self._events.pop_due(when), when)
            # never spin on an event that stays due at this second
            self._requeue_touched(stale_at=when if rounds >= _MAX_ROUNDS_PER_SECOND else None)

    def _step_device(self, device: EmulatedDevice, now_seconds: int) -> None:
        """Run one device's own time forward to ``now_seconds`` (meter, firmware activation
        and idle transfer, join windows). Exact however a device's time is cut."""
        meter = device.built_meter
        if meter is not None:
            meter.advance_to(now_seconds)
        firmware = device.firmware
        if firmware.has_timed_work:
            firmware.advance_to(device.clock_seconds(now_seconds), self._lock_for(device),
                                device.eui64)
        if device.hub is not None:
            device.hub.han.advance_to(now_seconds)

    def _run_due(self, due: list[bytes], now: int) -> None:
        """Run what is due at ``now`` for the devices ``due``: their own time (firmware,
        join windows), then join attempts, then scheduled requests (by address, then code)."""
        devices = sorted((self._devices.by_eui64(eui64) for eui64 in due),
                         key=lambda d: d.server_address)
        for device in devices:
            self._touch(device, lock=True)
            self._step_device(device, now)
        joining = sorted((self._join_attempts[d.eui64], d.eui64) for d in devices
                         if d.eui64 in self._join_attempts)
        for (when, hub_eui64), eui64 in joining:
            if when <= now:
                del self._join_attempts[eui64]
                hub_device = self._devices.by_eui64(hub_eui64)
                self._touch(hub_device)
                self._step_device(hub_device, now)
                self._han_of_hub(hub_eui64).join(eui64, now)
        for device in devices:
            for entry in pop_due(device, device.clock_seconds(now)):
                decoded = decode_apdu(entry.request_apdu)
                assert isinstance(decoded, Request)
                self._step_device(device, now)
                record_outcome(device, entry, encode_response(self._route(device, decoded)))

    # ---- the event queue and what changed ----------------------------------------------

    def _touch(self, device: EmulatedDevice, *, lock: bool = False) -> None:
        """``device`` (and with ``lock`` the hub holding its firmware lock) may have changed."""
        for changed in (device, self._lock_owner(device)) if lock else (device,):
            self._dirty[changed.eui64] = changed
            self._recheck[changed.eui64] = changed

    def _requeue(self, device: EmulatedDevice, *, stale_at: int | None = None) -> None:
        attempt = self._join_attempts.get(device.eui64)
        when = device_next_event_time_seconds(device, attempt[0] if attempt else None)
        if when is not None and stale_at is not None and when <= stale_at:
            when = None
        self._events.update(device.eui64, device.server_address, when)

    def _requeue_touched(self, *, stale_at: int | None = None) -> None:
        while self._recheck:
            _, device = self._recheck.popitem()
            self._requeue(device, stale_at=stale_at)

    # ---- joining -----------------------------------------------------------------------

    def _join(self, eui64: bytes, now_seconds: int) -> bool:
        device = self._devices.by_eui64(eui64)
        hubs = sorted(self._hub_devices, key=lambda d: d.eui64 != device.profile.hub_eui64)
        for hub_device in hubs:
            assert hub_device.hub is not None
            self._step_device(hub_device, now_seconds)
            if hub_device.hub.han.join(eui64, now_seconds):
                self._touch(hub_device)
                if self._join_attempts.pop(eui64, None) is not None:
                    self._touch(device)
                return True
        return False

    def _after_han_request(self, hub_device: EmulatedDevice, request: Request,
                           response: Response) -> None:
        """Schedule (or forget) the automatic join of a meter of this world."""
        if not response.ok or request.command not in (Command.HAN_ADD_DEVICE,
                                                      Command.HAN_REMOVE_DEVICE):
            return
        body = response.body
        assert isinstance(body, HanEntry | HanRemoveDeviceResponse)
        eui64 = body.device_eui64
        joiner = self._devices.get(eui64)
        if request.command is Command.HAN_REMOVE_DEVICE:
            if self._join_attempts.pop(eui64, None) is not None and joiner is not None:
                self._touch(joiner)
            return
        if (joiner is None or joiner.profile.is_hub or not joiner.profile.joins_han
                or not isinstance(body, HanEntry) or body.state != HanEntryState.JOIN_WINDOW_OPEN):
            return
        self._join_attempts[eui64] = (self._now_seconds + joiner.profile.join_delay_seconds,
                                      hub_device.eui64)
        self._touch(joiner)

    # ---- persistence -------------------------------------------------------------------

    def save(self) -> None:
        """Commit what changed to the state file now (no-op without a state path)."""
        self._commit()

    def close(self) -> None:
        """Close the state file (the world must not be used afterwards)."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def to_state(self) -> dict[str, Any]:
        """The whole world state, every device run to now, JSON-able (the ``world`` table of a
        JSON state file, :mod:`emulator.state`)."""
        for device in self._devices:
            _ = device.meter  # build it
            self._step_device(device, self._now_seconds)
        return encode_world_state(
            now_seconds=self._now_seconds, clock_offset_seconds=self._clock.offset_seconds,
            join_attempts=self._join_attempts, devices=self._by_address)

    def _world_row(self) -> dict[str, Any]:
        return {"now_seconds": self._now_seconds,
                "clock_offset_seconds": self._clock.offset_seconds,
                "born_seconds": self._born_seconds}

    def _records(self, devices: Iterable[EmulatedDevice]) -> list[DeviceRecord]:
        return [encode_device_record(d, self._join_attempts.get(d.eui64)) for d in devices]

    def _commit(self) -> None:
        """Write what changed since the last commit in one transaction (raises StateError)."""
        if self._store is not None:
            self._store.commit(self._world_row(), self._records(self._dirty.values()))
        self._dirty.clear()

    def _snapshot(self, device: EmulatedDevice, request: Request) -> _Snapshot:
        """What ``request`` to ``device`` may change: the device, its firmware lock's hub (a
        firmware command), the join attempts."""
        changing = ((device, self._lock_owner(device)) if request.command in FIRMWARE_COMMANDS
                    else (device,))
        parts = {d.eui64: encode_device_record(d, None) for d in changing}
        return _Snapshot(parts, dict(self._join_attempts))

    def _roll_back(self, snapshot: _Snapshot) -> None:
        where = "rolling back a request that was not saved"
        for eui64, record in snapshot.devices.items():
            device = self._devices.by_eui64(eui64)
            restore_device_record(device, record, self._devices, where)
            lock = self._lock_for(device)  # a transfer begun by a scheduled request is undone
            if lock.holder_eui64 == eui64 and not device.firmware.transfer_in_progress:
                lock.release(eui64)
        self._join_attempts = dict(snapshot.join_attempts)
        for eui64 in set(snapshot.devices) | set(self._recheck):
            self._requeue(self._devices.by_eui64(eui64))
        self._recheck.clear()

    def _open_state(self, path: Path) -> bool:
        """Restore from the state file at ``path`` (a database, or a JSON state file imported
        once), or create it; True if restored. Raises :class:`StateError` if it cannot be read
        or written."""
        clean_up_after_a_kill(path)
        try:
            exists = path.exists()
        except OSError as error:
            raise StateError(f"cannot read the state file {path}: {error}") from None
        where = f"state file {path}"
        fingerprint = self.profile.device_fingerprint()
        if not exists:
            self._store = StateStore.create(path, fingerprint, self._world_row(), [])
            return False
        if is_json_state_file(path):
            saved = load_state(path, fingerprint)
            assert saved is not None
            restored = restore_world_state(saved, self._devices, where)
            self._join_attempts = restored.join_attempts
            self._after_restore(restored.now_seconds, restored.clock_offset_seconds)
            self._store = import_json_state(path, fingerprint, self._world_row(),
                                            self._records(self._devices))
            return True
        store, stored = StateStore.open(path, fingerprint)
        try:
            world = stored.world
            now_seconds = world["now_seconds"]
            clock_offset = world["clock_offset_seconds"]
            born_seconds = world["born_seconds"]
            for name, value in (("now_seconds", now_seconds), ("born_seconds", born_seconds)):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise StateError(f"{where}: saved {name} {value!r} is not a whole number")
            self._born_seconds = born_seconds
            for device in self._devices:
                record = stored.devices[device.eui64.hex()]
                if not record.state_json:  # never changed: as built from the profile
                    if device.meter_start_seconds is not None:
                        device.meter_start_seconds = born_seconds
                    continue
                attempt = restore_device_record(device, record, self._devices, where)
                if attempt is not None:
                    self._join_attempts[device.eui64] = attempt
            self._after_restore(now_seconds,
                                clock_offset if isinstance(clock_offset, int) else None)
        except (KeyError, TypeError) as error:
            store.close()
            raise StateError(f"{where}: saved world state is malformed ({error!r}); delete "
                             "it to start from the profile") from None
        except StateError:
            store.close()
            raise
        self._store = store
        return True

    def _after_restore(self, saved_now: int, saved_clock_offset: int | None) -> None:
        self._restore_clock(saved_now, saved_clock_offset)
        self._now_seconds = saved_now
        for device in self._devices:
            if device.firmware.transfer_in_progress:
                self._lock_for(device).acquire(device.eui64)

    def _restore_clock(self, saved_now: int, saved_clock_offset: int | None) -> None:
        """Bring the clock back to where the saved world was: a SystemClock's fast-forward
        offset is restored; any clock behind the saved time is fast-forwarded to it."""
        current_offset = self._clock.offset_seconds
        if (saved_clock_offset is not None and current_offset is not None
                and saved_clock_offset > current_offset):
            self._clock.fast_forward(saved_clock_offset - current_offset)
        behind = saved_now - self._clock.device_time_seconds()
        if behind > 0:
            self._clock.fast_forward(behind)


@dataclass(frozen=True)
class _Snapshot:
    """The parts of the world one request may change, as they were before it."""

    devices: dict[bytes, DeviceRecord]
    join_attempts: dict[bytes, tuple[int, bytes]]
