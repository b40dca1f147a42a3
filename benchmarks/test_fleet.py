"""Fleets: the cost of one request to ``EmulatedWorld.handle_apdu`` at 10, 10,000 and 100,000
devices, side by side (target: within 1.5x of the cost at 10 devices), the time to load and
build a 100,000-device fleet profile (target: under 10 s), and memory per device.

Worlds are ``fleet_profile_text(N)`` (hubs each with one prepayment ESME) with a state file
(SQLite) in a temporary directory, on a virtual clock moved on 1 s before each request (so
every request runs time and commits a changed row). Requests go round 64 ESMEs spread over the
fleet. ``ADJUST_METER_BALANCE`` alternates +1 p and -1 p so every one changes the meter.

Set ``SECURE_EMU_BENCH_FLEET_SIZES`` (e.g. ``10,10000``) to run fewer sizes; by default all
three run, and the disabled run CI makes (``--benchmark-disable``) builds each world once.
"""

from __future__ import annotations

import os
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from emulator.clock import VirtualClock
from emulator.profile import Profile, fleet_profile_text
from emulator.world import EmulatedWorld
from protocol.apdu import (
    AdjustMeterBalanceRequest,
    ApduBody,
    Balances,
    Command,
    Request,
    Response,
    decode_apdu,
    encode_request,
)

FLEET_SIZES = tuple(int(size) for size in
                    os.environ.get("SECURE_EMU_BENCH_FLEET_SIZES", "10,10000,100000").split(","))
#: Meters a benchmark's requests go round.
TARGET_METERS = 64
#: Devices in the memory measurement (tracemalloc slows building several times over).
MEMORY_FLEET_SIZE = 10_000


class Fleet:
    """A world of ``size`` devices with a state file, and the ESMEs requests go to."""

    def __init__(self, size: int, state_path: Path) -> None:
        self.profile = Profile.from_toml_bytes(fleet_profile_text(size).encode())
        self.clock = VirtualClock(self.profile.start_device_time_seconds)
        self.world = EmulatedWorld(self.profile, self.clock, state_path=state_path)
        meters = [d.server_address for d in self.profile.meters]
        step = max(1, len(meters) // TARGET_METERS)
        self.addresses = meters[::step][:TARGET_METERS]
        self._next = 0

    def request(self, command: Command, body: ApduBody | None = None) -> Response:
        """Move the clock 1 s on and send one request to the next ESME in turn."""
        self.clock.advance_seconds(1)
        address = self.addresses[self._next % len(self.addresses)]
        self._next += 1
        answer = self.world.handle_apdu(address, encode_request(Request(command, 1,
                                                                        body)))
        assert answer is not None
        decoded = decode_apdu(answer)
        assert isinstance(decoded, Response) and decoded.ok, decoded
        return decoded


@pytest.fixture(scope="module", params=FLEET_SIZES, ids=lambda size: f"{size}-devices")
def fleet(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    directory = tmp_path_factory.mktemp(f"fleet-{request.param}")
    built = Fleet(request.param, directory / "state.db")
    yield built
    built.world.close()


@pytest.mark.benchmark(group="fleet: READ_METER_BALANCE per request")
def test_read_meter_balance(record_environment: BenchmarkFixture, fleet: Fleet) -> None:
    record_environment.extra_info["devices"] = len(fleet.profile.devices)
    response = record_environment(fleet.request, Command.READ_METER_BALANCE)
    assert isinstance(response.body, Balances)


@pytest.mark.benchmark(group="fleet: ADJUST_METER_BALANCE per request, state file")
def test_adjust_meter_balance_with_a_state_file(record_environment: BenchmarkFixture,
                                                fleet: Fleet) -> None:
    record_environment.extra_info["devices"] = len(fleet.profile.devices)
    sign = [1]

    def adjust() -> Response:
        sign[0] = -sign[0]
        return fleet.request(Command.ADJUST_METER_BALANCE,
                             AdjustMeterBalanceRequest(adjustment_pence=sign[0]))

    response = record_environment(adjust)
    assert response.body.adjustment_applied_pence in (1, -1)


@pytest.mark.benchmark(group="fleet: load and build 100,000 devices")
def test_load_and_build_a_100000_device_fleet(record_environment: BenchmarkFixture) -> None:
    text = fleet_profile_text(100_000).encode()

    def load_and_build() -> EmulatedWorld:
        profile = Profile.from_toml_bytes(text)
        return EmulatedWorld(profile, VirtualClock(profile.start_device_time_seconds))

    started = time.perf_counter()
    world = record_environment.pedantic(load_and_build, rounds=1, iterations=1)
    record_environment.extra_info["seconds"] = time.perf_counter() - started
    assert len(world.devices) == 100_000


def _traced_bytes(make: Callable[[], object]) -> tuple[int, object]:
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        made = make()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    return sum(stat.size_diff for stat in after.compare_to(before, "filename")), made


@pytest.mark.benchmark(group="fleet: memory per device")
def test_memory_per_device(record_environment: BenchmarkFixture,
                           capsys: pytest.CaptureFixture[str]) -> None:
    """Bytes per device (tracemalloc) of the profile plus the world as built (meters built on
    first use), and of every meter built (after ``advance`` with a meter read each)."""
    text = fleet_profile_text(MEMORY_FLEET_SIZE).encode()

    def build() -> EmulatedWorld:
        profile = Profile.from_toml_bytes(text)
        return EmulatedWorld(profile, VirtualClock(profile.start_device_time_seconds))

    def measure() -> tuple[float, float]:
        built_bytes, world = _traced_bytes(build)
        assert isinstance(world, EmulatedWorld)
        meters_bytes, _ = _traced_bytes(lambda: [d.meter for d in world.devices])
        return (built_bytes / MEMORY_FLEET_SIZE,
                (built_bytes + meters_bytes) / MEMORY_FLEET_SIZE)

    as_built, every_meter_built = record_environment.pedantic(measure, rounds=1, iterations=1)
    record_environment.extra_info.update(bytes_per_device_as_built=round(as_built),
                                         bytes_per_device_every_meter_built=round(
                                             every_meter_built))
    with capsys.disabled():
        print(f"\nmemory per device ({MEMORY_FLEET_SIZE} devices): {as_built / 1024:.2f} KiB as "
              f"built, {every_meter_built / 1024:.2f} KiB with every meter built")
    assert 0 < as_built < every_meter_built
