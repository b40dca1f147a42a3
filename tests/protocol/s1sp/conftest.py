"""A small device world for the S1SP adapter tests: real emulator meters and firmware slots
behind a management directory, a hub with a join list, and future-dated scheduling, all driven
through real APDU bytes by :class:`protocol.s1sp.channel.InProcessChannel`.

It stands in for ``emulator.world.EmulatedWorld`` until that lands; time is virtual
(``world.now_seconds``), never the wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from emulator.firmware import FirmwareSlot
from emulator.meter import Meter, MeterConfig
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
from protocol.s1sp.adapter import S1spAdapter
from protocol.s1sp.channel import InProcessChannel

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "duis"

ESME_EUI64 = bytes.fromhex("00DB1234567890A1")
GSME_EUI64 = bytes.fromhex("00DB1234567890A2")
HUB_EUI64 = bytes.fromhex("00DB1234567890A0")
ESME_ADDRESS, GSME_ADDRESS, HUB_ADDRESS = 0x11, 0x12, 0x13
START_SECONDS = 1_900_000_000  # 2030-03-17
START = datetime.fromtimestamp(START_SECONDS, tz=timezone.utc)


class HanLock:
    """One firmware transfer at a time per HAN."""

    def __init__(self) -> None:
        self.holder_eui64: bytes | None = None

    def acquire(self, eui64: bytes) -> bool:
        if self.holder_eui64 in (None, eui64):
            self.holder_eui64 = eui64
            return True
        return False

    def release(self, eui64: bytes) -> None:
        if self.holder_eui64 == eui64:
            self.holder_eui64 = None


@dataclass
class FakeDevice:
    eui64: bytes
    device_type: DeviceType
    address: int
    firmware: FirmwareSlot
    meter: Meter | None = None
    han: dict[bytes, tuple[HanEntryState, int]] = field(default_factory=dict)
    scheduled: dict[int, tuple[int, bytes]] = field(default_factory=dict)
    clock_seconds: int | None = None


class FakeWorld:
    """Devices by server address; ``handle_apdu`` is what InProcessChannel drives."""

    def __init__(self, esme_config: dict[str, Any] | None = None, *,
                 gas_meter_on_its_own_han: bool = False) -> None:
        self.now_seconds = START_SECONDS
        self.han_lock = HanLock()
        #: the gas meter's HAN lock: the shared one unless it is on a HAN of its own
        self.gas_han_lock = HanLock() if gas_meter_on_its_own_han else self.han_lock
        self.reachable = True
        self.received: list[tuple[int, Request]] = []
        esme = Meter(MeterConfig(eui64=ESME_EUI64, device_type=DeviceType.ELECTRICITY_METER,
                                 **(esme_config or {})), START_SECONDS)
        gsme = Meter(MeterConfig(eui64=GSME_EUI64, device_type=DeviceType.GAS_METER),
                     START_SECONDS)
        self.devices = {
            ESME_ADDRESS: FakeDevice(ESME_EUI64, DeviceType.ELECTRICITY_METER, ESME_ADDRESS,
                                     FirmwareSlot("Secure Meters", "LIBERTY100", "1.0.0"), esme),
            GSME_ADDRESS: FakeDevice(GSME_EUI64, DeviceType.GAS_METER, GSME_ADDRESS,
                                     FirmwareSlot("Secure Meters", "SECURE-GSME", "2.0.0"), gsme),
            HUB_ADDRESS: FakeDevice(HUB_EUI64, DeviceType.COMMS_HUB, HUB_ADDRESS,
                                    FirmwareSlot("Secure Meters", "SECURE-CHF", "3.0.0")),
        }

    @property
    def esme(self) -> Meter:
        meter = self.devices[ESME_ADDRESS].meter
        assert meter is not None
        return meter

    def handle_apdu(self, server_address: int, apdu: bytes) -> bytes | None:
        if not self.reachable:
            return None
        try:
            request = decode_apdu(apdu)
        except ApduError as error:
            return failure_response_bytes(apdu, error)
        assert isinstance(request, Request)
        self.received.append((server_address, request))
        if server_address == MANAGEMENT_SERVER_ADDRESS:
            response = self._management(request)
        elif server_address in self.devices:
            response = self._device(self.devices[server_address], request)
        else:
            return None
        return encode_response(response)

    def _management(self, request: Request) -> Response:
        if request.command is not Command.READ_DEVICE_DIRECTORY:
            return Response(request.command, request.invoke_id, Status.NOT_SUPPORTED_BY_DEVICE)
        devices = [{"device_eui64": d.eui64, "device_type": d.device_type,
                    "server_address": d.address, "manufacturer": "Secure Meters",
                    "model": d.firmware.model} for d in self.devices.values()]
        return Response(request.command, request.invoke_id, Status.SUCCESS,
                        {"devices": devices})

    def _device(self, device: FakeDevice, request: Request) -> Response:
        command, invoke_id = request.command, request.invoke_id
        if command is Command.SCHEDULE_REQUEST:
            inner = request.fields["request"]
            device.scheduled[inner[3]] = (request.fields["execution_time_seconds"], inner)
            return Response(command, invoke_id, Status.SUCCESS, {
                "scheduled_command": inner[3],
                "execution_time_seconds": request.fields["execution_time_seconds"]})
        if command is Command.CANCEL_SCHEDULED_REQUEST:
            if device.scheduled.pop(request.fields["scheduled_command"], None) is None:
                return Response(command, invoke_id, Status.NOTHING_SCHEDULED)
            return Response(command, invoke_id, Status.SUCCESS, {"cancelled": True})
        if command is Command.SYNCHRONISE_CLOCK:
            device.clock_seconds = request.fields["device_time_seconds"]
            return Response(command, invoke_id, Status.SUCCESS,
                            {"device_time_seconds": device.clock_seconds})
        if command.name.startswith("FIRMWARE") or command is Command.READ_FIRMWARE_VERSION:
            lock = self.gas_han_lock if device.address == GSME_ADDRESS else self.han_lock
            return device.firmware.handle_request(request, self.now_seconds, lock, device.eui64)
        if command is Command.HAN_ADD_DEVICE and device.meter is None:
            closes = self.now_seconds + 60 * request.fields["join_window_minutes"]
            device.han[request.fields["device_eui64"]] = (HanEntryState.JOIN_WINDOW_OPEN, closes)
            return Response(command, invoke_id, Status.SUCCESS, {
                "device_eui64": request.fields["device_eui64"],
                "state": HanEntryState.JOIN_WINDOW_OPEN, "join_window_closes_at_seconds": closes})
        if command is Command.HAN_REMOVE_DEVICE and device.meter is None:
            if device.han.pop(request.fields["device_eui64"], None) is None:
                return Response(command, invoke_id, Status.HAN_DEVICE_NOT_FOUND)
            return Response(command, invoke_id, Status.SUCCESS,
                            {"device_eui64": request.fields["device_eui64"]})
        if device.meter is None:
            return Response(command, invoke_id, Status.NOT_SUPPORTED_BY_DEVICE)
        return device.meter.handle_request(request, self.now_seconds)

    def sent_commands(self) -> list[Command]:
        return [request.command for _, request in self.received
                if request.command is not Command.READ_DEVICE_DIRECTORY]


@pytest.fixture
def world() -> FakeWorld:
    return FakeWorld()


@pytest.fixture
def adapter(world: FakeWorld) -> S1spAdapter:
    return S1spAdapter(InProcessChannel(world.handle_apdu), response_clock=lambda: START)


def fixture_xml(name: str) -> bytes:
    return (FIXTURES / f"{name}.xml").read_bytes()
