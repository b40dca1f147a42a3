"""End to end: DeviceClient -> link -> port -> ServeLoop -> EmulatedWorld (real devices).

Without ``--port`` each test serves the default profile itself (virtual device time) on a pty
pair or TCP. With ``pytest --port /dev/ttyUSB0`` (or a pyserial URL, or ``tcp:HOST:PORT``) the
same link-level tests run against that port instead; cases that need to control the emulator
(virtual time, state) skip, and hardware-only cases run.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from emulator.clock import VirtualClock
from emulator.profile import Profile
from emulator.serve import ServeLoop
from emulator.world import EmulatedWorld
from protocol.apdu import (
    MANAGEMENT_SERVER_ADDRESS,
    AdjustMeterBalanceRequest,
    AdvanceDeviceTimeRequest,
    Command,
    DeviceIdentity,
    DeviceType,
    Request,
    TopUpRequest,
)
from protocol.client import DeviceClient
from protocol.clock import RealMonotonicClock
from protocol.link_mux import LinkServer
from protocol.transport import PtyPair, TcpListener, connect_tcp, open_port

#: Start of virtual device time for the served world: 2026-01-05T00:00:00Z.
START_DEVICE_TIME_SECONDS = 1_767_571_200


def make_world() -> tuple[EmulatedWorld, VirtualClock]:
    clock = VirtualClock(START_DEVICE_TIME_SECONDS)
    return EmulatedWorld(Profile.default(), clock), clock


def serve_in_thread(loop: ServeLoop) -> threading.Thread:
    thread = threading.Thread(target=loop.run, name="serve", daemon=True)
    thread.start()
    return thread


@pytest.fixture
def served_pty() -> Iterator[tuple[str, EmulatedWorld]]:
    world, _ = make_world()
    loop = ServeLoop(world, RealMonotonicClock(), advance_interval_ms=None)
    pair = PtyPair()
    loop.add_stream(pair.server, name="pty")
    thread = serve_in_thread(loop)
    yield pair.client_path, world
    loop.request_stop()
    thread.join(5)


def open_external(port: str) -> DeviceClient:
    """A client on a --port value: ``tcp:HOST:PORT``, a device path or a pyserial URL."""
    if port.startswith("tcp:"):
        return DeviceClient.open(tcp=port[4:])
    return DeviceClient.open(port=port)


@pytest.fixture
def client(external_port: str | None, request: pytest.FixtureRequest
           ) -> Iterator[DeviceClient]:
    """A client on --port when given, else on a pty this test serves."""
    if external_port is None:
        path, _ = request.getfixturevalue("served_pty")
        device_client = DeviceClient(open_port(path))
    else:
        device_client = open_external(external_port)
    yield device_client
    device_client.close()


@pytest.fixture
def emulator_only(external_port: str | None) -> None:
    if external_port is not None:
        pytest.skip("controls the emulator's world directly; not possible against --port")


@pytest.fixture
def hardware_only(external_port: str | None) -> str:
    if external_port is None:
        pytest.skip("needs a real port: run with --port /dev/ttyUSB0 (or a URL)")
    return external_port


def directory(client: DeviceClient) -> list[DeviceIdentity]:
    response = client.request(MANAGEMENT_SERVER_ADDRESS,
                              Request(Command.READ_DEVICE_DIRECTORY, 1))
    assert response.ok, response.status
    return list(response.body.devices)


def address_of(client: DeviceClient, device_type: DeviceType) -> int:
    for device in directory(client):
        if device.device_type is device_type:
            return device.server_address
    raise AssertionError(f"no {device_type.name} in the directory")


def test_directory_lists_hub_and_meters_behind_one_link(client: DeviceClient) -> None:
    types = {device.device_type for device in directory(client)}
    assert {DeviceType.COMMS_HUB, DeviceType.ELECTRICITY_METER} <= types


def test_meter_balance_read_round_trips_over_the_port(client: DeviceClient) -> None:
    esme = address_of(client, DeviceType.ELECTRICITY_METER)
    response = client.request(esme, Request(Command.READ_METER_BALANCE, 1))
    assert response.ok
    assert isinstance(response.body.meter_balance_pence, int)


def test_adjust_meter_balance_is_applied_once_and_read_back(client: DeviceClient) -> None:
    esme = address_of(client, DeviceType.ELECTRICITY_METER)
    before = client.request(esme, Request(Command.READ_METER_BALANCE, 1))
    adjusted = client.request(esme, Request(Command.ADJUST_METER_BALANCE, 2,
                                            body=AdjustMeterBalanceRequest(adjustment_pence=123)))
    assert adjusted.ok, adjusted.status
    assert adjusted.body.adjustment_applied_pence == 123
    after = client.request(esme, Request(Command.READ_METER_BALANCE, 3))
    assert adjusted.body.meter_balance_pence == after.body.meter_balance_pence
    # consumption may debit between reads on real time; never more credit than was added
    assert (after.body.meter_balance_pence
            <= before.body.meter_balance_pence + 123)


def test_advance_device_time_moves_virtual_time(emulator_only, client: DeviceClient) -> None:
    response = client.request(MANAGEMENT_SERVER_ADDRESS, Request(
        Command.ADVANCE_DEVICE_TIME, 1, body=AdvanceDeviceTimeRequest(advance_seconds=3600)))
    assert response.ok
    assert response.body.device_time_seconds >= START_DEVICE_TIME_SECONDS + 3600


def test_many_tcp_clients_share_one_world(emulator_only) -> None:
    world, _ = make_world()
    loop = ServeLoop(world, RealMonotonicClock(), advance_interval_ms=None)
    listener = TcpListener()
    loop.add_listener(listener)
    thread = serve_in_thread(loop)
    clients = [DeviceClient(connect_tcp(listener.address), client_address=0x10 + i)
               for i in range(3)]
    try:
        esme = address_of(clients[0], DeviceType.ELECTRICITY_METER)
        start = clients[0].request(esme, Request(Command.READ_METER_BALANCE, 1))
        for client in clients:
            assert client.request(esme, Request(Command.ADJUST_METER_BALANCE, 1,
                                                body=AdjustMeterBalanceRequest(adjustment_pence=10))).ok
        end = clients[2].request(esme, Request(Command.READ_METER_BALANCE, 1))
        assert (end.body.meter_balance_pence
                == start.body.meter_balance_pence + 30)
    finally:
        for client in clients:
            client.close()
        loop.request_stop()
        thread.join(5)


def lossy_client(memory_link: Any, manual_clock: Any, *, duplicate_chunk: float,
                 seeds: tuple[int, int]) -> DeviceClient:
    """A client talking to real devices over a link that drops, duplicates, corrupts and
    splits chunks both ways (fixed seeds), retransmitting on the manual clock."""
    world, _ = make_world()
    faults = dict(drop_chunk=0.2, duplicate_chunk=duplicate_chunk, corrupt_byte=0.1, split=True)
    transport = memory_link(LinkServer(world), to_server=dict(faults, seed=seeds[0]),
                            to_client=dict(faults, seed=seeds[1]))
    return DeviceClient(transport, clock=manual_clock, retransmit_timeout_ms=200,
                        max_retransmissions=10)


def test_lossy_link_to_real_meter_applies_each_adjustment_exactly_once(
        emulator_only, memory_link, manual_clock) -> None:
    client = lossy_client(memory_link, manual_clock, duplicate_chunk=0.2, seeds=(11, 12))
    esme = address_of(client, DeviceType.ELECTRICITY_METER)
    start = client.request(esme, Request(Command.READ_METER_BALANCE, 1))
    total = 0
    for pence in range(1, 21):
        response = client.request(esme, Request(Command.ADJUST_METER_BALANCE, pence,
                                                body=AdjustMeterBalanceRequest(adjustment_pence=pence)))
        assert response.ok and response.body.adjustment_applied_pence == pence
        total += pence
    end = client.request(esme, Request(Command.READ_METER_BALANCE, 1))
    assert end.body.meter_balance_pence == start.body.meter_balance_pence + total


def test_real_port_answers_a_directory_read(hardware_only: str) -> None:
    with open_external(hardware_only) as client:
        assert directory(client)


def test_lossy_link_applies_each_top_up_exactly_once(
        emulator_only, memory_link, manual_clock) -> None:
    """A top-up delivered twice would come back UTRN_DUPLICATE: every one must succeed."""
    from emulator.utrn import UtrnValueClass, make_utrn

    client = lossy_client(memory_link, manual_clock, duplicate_chunk=0.25, seeds=(21, 22))
    esme = next(d for d in directory(client)
                if d.device_type is DeviceType.ELECTRICITY_METER)
    address, eui64 = esme.server_address, esme.device_eui64
    for counter in range(1, 9):
        utrn = make_utrn(eui64, counter, UtrnValueClass.PENNIES, 50)
        response = client.request(address, Request(Command.TOP_UP, counter,
                                                   body=TopUpRequest(utrn=utrn.encode("ascii"))))
        assert response.ok, response.status
        body = response.body
        assert (body.credit_added_pence + body.debt_recovered_pence
                + body.emergency_credit_repaid_pence) == 50
