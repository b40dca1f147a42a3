"""The world's state document: every device's state, the join attempts and world time, to
and from the JSON-able table :mod:`emulator.persistence` writes.

Layout of the ``world`` table (state file format 1; a state file written by an earlier
version must keep loading)::

    {"now_seconds": int, "clock_offset_seconds": int | null,
     "join_attempts": {meter EUI-64 hex: [device time, hub EUI-64 hex]},
     "devices": {EUI-64 hex: {"clock_offset_seconds", "firmware", "meter" | null,
                              "han" | null, "schedule", "scheduled_outcomes"}}}

In the state database (:mod:`emulator.persistence`) each device is one
:class:`emulator.persistence.DeviceRecord` (:func:`encode_device_record`): the device's table
above without its schedule and without the firmware bytes received (those are stored in their
own tables, as are the keyed requests it applied), with its pending join attempt
(``"join_attempt": [device time, hub EUI-64 hex]`` or null) instead. The JSON ``world`` table
(format 1) holds no keyed requests.

Device parts are encoded by their codecs (:mod:`emulator.state_codecs` for meter registers
and the HAN, :meth:`emulator.firmware.FirmwareSlot.to_state` for firmware). Restoring
replaces the parts of the world's devices in place and raises :class:`StateError` naming the
state file and what is wrong. This module never does I/O and never reads a clock.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from emulator.device import EmulatedDevice
from emulator.errors import StateError
from emulator.firmware import FirmwareSlot
from emulator.hub import CommsHub
from emulator.idempotency import AppliedRequest
from emulator.meter import Meter
from emulator.persistence import DeviceRecord
from emulator.routing import DeviceTable
from emulator.scheduler import (
    MAX_SCHEDULED_OUTCOMES,
    ScheduledOutcome,
    ScheduledRequest,
)
from emulator.state_codecs import (
    decode_eui64_hex,
    decode_han,
    decode_meter_registers,
    encode_han,
    encode_meter_registers,
)
from protocol.apdu import Request, decode_apdu

__all__ = [
    "SavedWorld",
    "encode_device_record",
    "encode_world_state",
    "restore_device_record",
    "restore_world_state",
]


@dataclass(frozen=True)
class SavedWorld:
    """What a state document says about the world as a whole (its devices are restored in
    place by :func:`restore_world_state`)."""

    now_seconds: int
    #: a SystemClock's fast-forward offset when saved (None: not saved, or another clock)
    clock_offset_seconds: int | None
    #: meter EUI-64 -> (device time it tries to join, hub EUI-64)
    join_attempts: dict[bytes, tuple[int, bytes]]


def encode_world_state(*, now_seconds: int, clock_offset_seconds: int | None,
                       join_attempts: Mapping[bytes, tuple[int, bytes]],
                       devices: Iterable[EmulatedDevice]) -> dict[str, Any]:
    """The ``world`` table of the state file."""
    return {
        "now_seconds": now_seconds,
        "clock_offset_seconds": clock_offset_seconds,
        "join_attempts": {eui64.hex(): [when, hub_eui64.hex()]
                          for eui64, (when, hub_eui64) in sorted(join_attempts.items())},
        "devices": {d.eui64.hex(): _encode_device(d) for d in devices},
    }


def _encode_device(device: EmulatedDevice) -> dict[str, Any]:
    return {
        "clock_offset_seconds": device.clock_offset_seconds,
        "firmware": device.firmware.to_state(),
        "meter": (encode_meter_registers(device.meter.registers) if device.meter is not None
                  else None),
        "han": encode_han(device.hub.han) if device.hub is not None else None,
        "schedule": [{"execution_time_seconds": e.execution_time_seconds,
                      "request_hex": e.request_apdu.hex()}
                     for e in sorted(device.schedule.values(), key=lambda e: e.command)],
        "scheduled_outcomes": [{"execution_time_seconds": o.execution_time_seconds,
                                "request_hex": o.request_apdu.hex(),
                                "response_hex": o.response_apdu.hex()}
                               for o in device.scheduled_outcomes],
    }


def restore_world_state(state: Mapping[str, Any], devices: DeviceTable,
                        where: str) -> SavedWorld:
    """Restore every device of ``devices`` from ``state`` (the ``world`` table) and return the
    world-wide rest. ``where`` names the state file in errors."""
    try:
        saved_now = _state_int(state["now_seconds"], "now_seconds")
        clock_offset = state["clock_offset_seconds"]
        join_attempts = state["join_attempts"]
        device_states = state["devices"]
        if not isinstance(device_states, Mapping) or not isinstance(join_attempts, Mapping):
            raise StateError("devices and join_attempts must be tables")
        for device in devices:
            raw = device_states.get(device.eui64.hex())
            if not isinstance(raw, Mapping):
                raise StateError(f"no saved state for {device.profile.describe()}")
            _restore_device(device, raw)
        attempts: dict[bytes, tuple[int, bytes]] = {}
        for eui_hex, value in join_attempts.items():
            eui64 = decode_eui64_hex(eui_hex)
            when, hub_hex = value
            hub_eui64 = decode_eui64_hex(hub_hex)
            hub = devices.get(hub_eui64)
            if eui64 not in devices or hub is None or hub.hub is None:
                raise StateError(f"join attempt names unknown devices {eui_hex}/{hub_hex}")
            attempts[eui64] = (_state_int(when, "join attempt time"), hub_eui64)
    except StateError as error:
        raise StateError(f"{where}: {error}") from None
    except (KeyError, TypeError, ValueError) as error:
        raise StateError(f"{where}: saved world state is malformed ({error!r}); delete it "
                         "to start from the profile") from None
    return SavedWorld(saved_now, clock_offset if isinstance(clock_offset, int) else None,
                      attempts)


def _restore_device(device: EmulatedDevice, raw: Mapping[str, Any]) -> None:
    profile = device.profile
    device.firmware = FirmwareSlot.from_state(profile.manufacturer, profile.model,
                                              raw["firmware"])
    if device.hub is not None:
        device.hub = CommsHub(device.eui64, device.firmware, decode_han(device.eui64, raw["han"]))
    if device.meter is not None:
        assert profile.meter_config is not None
        device.meter = Meter.restore(profile.meter_config, decode_meter_registers(raw["meter"]))
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


def encode_device_record(device: EmulatedDevice,
                         join_attempt: tuple[int, bytes] | None) -> DeviceRecord:
    """The device as one database record (see the module docstring)."""
    row = _encode_device(device)
    del row["schedule"]
    received = b""
    transfer = row["firmware"].get("transfer")
    if transfer is not None:
        received = base64.b64decode(transfer.pop("received_base64"))
    row["join_attempt"] = (None if join_attempt is None
                           else [join_attempt[0], join_attempt[1].hex()])
    schedule = tuple((int(e.command), e.execution_time_seconds, e.request_apdu)
                     for e in sorted(device.schedule.values(), key=lambda e: e.command))
    applied = tuple((key, a.request_digest, a.response_apdu)
                    for key, a in device.applied_requests.items())
    return DeviceRecord(device.eui64.hex(), json.dumps(row, sort_keys=True,
                                                       separators=(",", ":")),
                        schedule, received, applied)


def restore_device_record(device: EmulatedDevice, record: DeviceRecord, devices: DeviceTable,
                          where: str) -> tuple[int, bytes] | None:
    """Restore ``device`` from its database record; returns its pending join attempt. Raises
    :class:`StateError` naming ``where`` and what is wrong."""
    try:
        row = json.loads(record.state_json)
        if not isinstance(row, dict):
            raise StateError(f"saved state of {device.profile.describe()} is not a table")
        transfer = row["firmware"].get("transfer")
        if transfer is not None:
            transfer["received_base64"] = base64.b64encode(record.received).decode("ascii")
        row["schedule"] = [{"execution_time_seconds": when, "request_hex": request.hex()}
                           for _, when, request in record.schedule]
        _restore_device(device, row)
        device.applied_requests = {key: AppliedRequest(digest, response)
                                   for key, digest, response in record.applied}
        attempt = row["join_attempt"]
        if attempt is None:
            return None
        when, hub_hex = attempt
        hub = devices.get(decode_eui64_hex(hub_hex))
        if hub is None or hub.hub is None:
            raise StateError(f"join attempt of {device.profile.describe()} names unknown hub "
                             f"{hub_hex}")
        return _state_int(when, "join attempt time"), hub.eui64
    except StateError as error:
        raise StateError(f"{where}: {error}") from None
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as error:
        raise StateError(f"{where}: saved state of {device.profile.describe()} is malformed "
                         f"({type(error).__name__}); delete the state file to start from the "
                         "profile") from None


def _state_int(value: Any, name: str, *, signed: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or (value < 0 and not signed):
        raise StateError(f"saved {name} {value!r} is not a whole number")
    return value
