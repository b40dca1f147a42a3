"""The S1SP adapter tests drive the real :class:`emulator.world.EmulatedWorld` (the built-in
profile: hub A0, ESME A1, GSME A2) on a :class:`emulator.clock.VirtualClock`, through real APDU
bytes over :class:`protocol.s1sp.channel.InProcessChannel`.

A :class:`Rig` can give the ESME a meter table of its own, or put the GSME on a second
hub's HAN. The only stand-in is :class:`Link`, a tap between channel and world that can make one
address silent or hide it from the directory (behaviours no real device offers on demand).
Time is virtual; nothing here reads the wall clock or sleeps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from emulator.clock import VirtualClock
from emulator.meter import Meter, MeterConfig
from emulator.profile import DeviceProfile, Profile
from emulator.world import EmulatedWorld
from protocol.apdu import (
    MANAGEMENT_SERVER_ADDRESS,
    Command,
    Request,
    Response,
    decode_apdu,
    encode_response,
)
from protocol.s1sp.adapter import S1spAdapter
from protocol.s1sp.annex_c import AnnexCTable
from protocol.s1sp.channel import InProcessChannel

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "duis"

DEFAULT_PROFILE = Profile.default()
HUB_EUI64 = bytes.fromhex("00DB1234567890A0")
ESME_EUI64 = bytes.fromhex("00DB1234567890A1")
GSME_EUI64 = bytes.fromhex("00DB1234567890A2")
#: a second comms hub, present only with ``gas_meter_on_its_own_han``
SECOND_HUB_EUI64 = bytes.fromhex("00DB1234567890A4")
SECOND_HUB_ADDRESS = 3
HUB_ADDRESS = DEFAULT_PROFILE.device(HUB_EUI64).server_address
ESME_ADDRESS = DEFAULT_PROFILE.device(ESME_EUI64).server_address
GSME_ADDRESS = DEFAULT_PROFILE.device(GSME_EUI64).server_address
START_SECONDS = DEFAULT_PROFILE.start_device_time_seconds  # 2026-01-05T09:00:00Z
START = datetime.fromtimestamp(START_SECONDS, tz=timezone.utc)


def _profile(esme_meter: Mapping[str, Any] | None, gas_meter_on_its_own_han: bool) -> Profile:
    devices: list[DeviceProfile] = list(DEFAULT_PROFILE.devices)
    for index, device in enumerate(devices):
        if device.eui64 == ESME_EUI64 and esme_meter is not None:
            devices[index] = replace(device, meter_table=dict(esme_meter),
                                     meter_config=MeterConfig.from_mapping(
                                         esme_meter, eui64=ESME_EUI64,
                                         device_type=device.device_type))
        if device.eui64 == GSME_EUI64 and gas_meter_on_its_own_han:
            devices[index] = replace(device, hub_eui64=SECOND_HUB_EUI64)
    if gas_meter_on_its_own_han:
        devices.append(replace(DEFAULT_PROFILE.device(HUB_EUI64), eui64=SECOND_HUB_EUI64,
                               server_address=SECOND_HUB_ADDRESS))
    return replace(DEFAULT_PROFILE, devices=tuple(devices), source="<s1sp test profile>")


class Link:
    """Passes APDUs to the world; an address in ``silent`` answers nothing, one in ``hidden``
    answers nothing and is left out of the device directory; each (address, command) in
    ``lose_once`` loses the next such request (it never reaches the device) and is then
    forgotten; ``rewrite``, when set, is a fault on the link: each request reaches the world as
    it returns it."""

    def __init__(self, world: EmulatedWorld) -> None:
        self.world = world
        self.silent: set[int] = set()
        self.hidden: set[int] = set()
        self.lose_once: set[tuple[int, Command]] = set()
        self.rewrite: Callable[[int, bytes], bytes] | None = None

    def __call__(self, server_address: int, apdu: bytes) -> bytes | None:
        if server_address in self.silent | self.hidden:
            return None
        key = (server_address, Command(apdu[3]))
        if key in self.lose_once:
            self.lose_once.discard(key)
            return None
        if self.rewrite is not None:
            apdu = self.rewrite(server_address, apdu)
        answer = self.world.handle_apdu(server_address, apdu)
        if server_address != MANAGEMENT_SERVER_ADDRESS or not self.hidden or answer is None:
            return answer
        response = decode_apdu(answer)
        if not isinstance(response, Response) or response.command is not \
                Command.READ_DEVICE_DIRECTORY or not response.ok:
            return answer
        devices = tuple(d for d in response.body.devices
                        if d.server_address not in self.hidden)
        return encode_response(Response(response.command, response.invoke_id, response.status,
                                        body=replace(response.body, devices=devices)))


class Rig:
    """A real world on a virtual clock, the channel into it and an adapter on that channel
    whose response clock is the world's device time.

    ``esme_meter`` replaces the ESME's whole ``[devices.meter]`` table (MeterConfig keys; a
    prepayment parameter left out is never configured); ``gas_meter_on_its_own_han`` adds hub
    A4 at address 3 and puts the GSME on its HAN."""

    def __init__(self, esme_meter: Mapping[str, Any] | None = None, *,
                 annex_c: AnnexCTable | None = None,
                 gas_meter_on_its_own_han: bool = False) -> None:
        profile = _profile(esme_meter, gas_meter_on_its_own_han)
        self.clock = VirtualClock(profile.start_device_time_seconds)
        self.world = EmulatedWorld(profile, self.clock)
        self.link = Link(self.world)
        self.channel = InProcessChannel(self.link)
        # strict: a bug of ours in a handler raises in the test instead of answering E-INTERNAL
        self.adapter = S1spAdapter(self.channel, annex_c=annex_c, response_clock=self.now,
                                   raise_internal_errors=True)

    @property
    def esme(self) -> Meter:
        return self.world.meter(ESME_EUI64)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.device_time_seconds(), tz=timezone.utc)

    def submit(self, xml: bytes | str) -> str:
        return self.adapter.submit(xml)

    def requests(self) -> list[tuple[int, Request]]:
        """Every request the channel has sent, decoded, oldest first."""
        decoded = [(address, decode_apdu(apdu)) for address, apdu, _ in self.channel.exchanges]
        return [(address, request) for address, request in decoded
                if isinstance(request, Request)]

    def sent(self, command: Command) -> list[Request]:
        return [request for _, request in self.requests() if request.command is command]

    def sent_commands(self) -> list[Command]:
        """Commands sent to devices (the management device's directory reads left out)."""
        return [request.command for address, request in self.requests()
                if address != MANAGEMENT_SERVER_ADDRESS]


@pytest.fixture
def rig() -> Rig:
    return Rig()


@pytest.fixture
def adapter(rig: Rig) -> S1spAdapter:
    return rig.adapter


def fixture_xml(name: str) -> bytes:
    return (FIXTURES / f"{name}.xml").read_bytes()
