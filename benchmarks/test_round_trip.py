"""A READ_METER_BALANCE round trip over a pty against a raw pyserial echo on a pty (issue 8.6).

Both servers run as processes of their own, side by side in one run: the emulator as
``secure-emu serve --pty --virtual-time`` (the default profile) with a ``DeviceClient`` on the
slave; the echo as a process copying the master's input back, with a pyserial ``Serial`` on
the slave writing 40 bytes and reading them back (about the size of the request and its
answer). The clients run in this process.
``test_read_meter_balance_in_one_process`` runs the same round trip with no I/O at all (the
client's transport hands each write straight to a ``LinkServer`` over the world, in this
process): the Python cost of both ends, which the pty round trip pays with cold caches and
process switches on top.
``test_round_trip_ratio`` alternates blocks of both and prints the emulator's rate as a
fraction of the echo's (the target is at least 50%): from the best block, the medians and the
minimums.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest
import serial
from pytest_benchmark.fixture import BenchmarkFixture

from emulator.clock import VirtualClock
from emulator.profile import Profile
from emulator.world import EmulatedWorld
from protocol.apdu import Command, Request
from protocol.client import DeviceClient
from protocol.clock import RealMonotonicClock
from protocol.link_mux import LinkServer
from protocol.transport import open_port

ESME_ADDRESS = 16
ECHO_BYTES = bytes(range(40))


#: The echo server: a process copying a pty master's input back, printing the slave's path.
ECHO_SERVER = """
import os
master_fd, slave_fd = os.openpty()
print(os.ttyname(slave_fd), flush=True)
while True:
    os.write(master_fd, os.read(master_fd, 4096))
"""


def _start(arguments: list[str]) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(arguments, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True)
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@pytest.fixture
def emulator_round_trip() -> Iterator[Callable[[], int]]:
    process, path = _start([sys.executable, "-m", "emulator.cli", "serve", "--pty",
                            "--virtual-time"])
    client = DeviceClient(open_port(path))
    request = Request(Command.READ_METER_BALANCE, 1)

    def round_trip() -> int:
        return int(client.request(ESME_ADDRESS, request).fields["meter_balance_pence"])

    try:
        yield round_trip
    finally:
        client.close()
        _stop(process)


@pytest.fixture
def echo_round_trip() -> Iterator[Callable[[], bytes]]:
    process, path = _start([sys.executable, "-c", ECHO_SERVER])
    port = serial.Serial(path, timeout=2)

    def round_trip() -> bytes:
        port.write(ECHO_BYTES)
        return bytes(port.read(len(ECHO_BYTES)))

    try:
        yield round_trip
    finally:
        port.close()
        _stop(process)


class _Loopback:
    """A client transport handing each write straight to a LinkServer (no I/O): what the
    server answers is what the next read returns."""

    name = "loopback"

    def __init__(self, server: LinkServer) -> None:
        self._server = server
        self._clock = RealMonotonicClock()
        self._answer = b""

    def write(self, data: bytes) -> None:
        self._answer += self._server.receive_bytes(data, self._clock.monotonic_ms())

    def read(self, max_bytes: int, timeout_ms: int) -> bytes:
        answer, self._answer = self._answer[:max_bytes], self._answer[max_bytes:]
        return answer

    def close(self) -> None:
        pass


@pytest.mark.benchmark(group="round trip without I/O")
def test_read_meter_balance_in_one_process(record_environment: BenchmarkFixture) -> None:
    profile = Profile.load("default")
    world = EmulatedWorld(profile, VirtualClock(profile.start_device_time_seconds))
    client = DeviceClient(_Loopback(LinkServer(world)))  # type: ignore[arg-type]
    request = Request(Command.READ_METER_BALANCE, 1)

    def round_trip() -> int:
        return int(client.request(ESME_ADDRESS, request).fields["meter_balance_pence"])

    assert record_environment(round_trip) == 1250


@pytest.mark.benchmark(group="pty round trip")
def test_read_meter_balance_over_a_pty(record_environment: BenchmarkFixture,
                                       emulator_round_trip: Callable[[], int]) -> None:
    assert record_environment(emulator_round_trip) == 1250  # the default profile's ESME balance


@pytest.mark.benchmark(group="pty round trip")
def test_raw_pyserial_echo_over_a_pty(record_environment: BenchmarkFixture,
                                      echo_round_trip: Callable[[], bytes]) -> None:
    assert record_environment(echo_round_trip) == ECHO_BYTES


def test_round_trip_ratio(request: pytest.FixtureRequest,
                          emulator_round_trip: Callable[[], int],
                          echo_round_trip: Callable[[], bytes]) -> None:
    """Alternating blocks of both, each round trip timed: the emulator's rate as a fraction of
    the echo's from the best block's mean (least disturbed), the medians and the minimums (the
    medians are the least sensitive to other load on the machine)."""
    disabled = request.config.getoption("benchmark_disable", False)
    blocks, per_block = (1, 5) if disabled else (10, 300)
    best = {"emulator": float("inf"), "echo": float("inf")}
    times: dict[str, list[float]] = {"emulator": [], "echo": []}
    clock = time.perf_counter
    for _ in range(blocks):
        for name, round_trip in (("emulator", emulator_round_trip),
                                 ("echo", echo_round_trip)):
            block = []
            for _ in range(per_block):
                start = clock()
                round_trip()
                block.append(clock() - start)
            best[name] = min(best[name], sum(block) / per_block)
            times[name] += block
    assert emulator_round_trip() == 1250 and echo_round_trip() == ECHO_BYTES
    median = {name: statistics.median(values) for name, values in times.items()}
    fastest = {name: min(values) for name, values in times.items()}
    print(f"\npty round trip, READ_METER_BALANCE against a raw pyserial echo of 40 bytes: "
          f"best block {best['emulator'] * 1e6:.0f} us against {best['echo'] * 1e6:.0f} us "
          f"({best['echo'] / best['emulator']:.0%} of the echo rate); "
          f"median {median['emulator'] * 1e6:.0f} us against {median['echo'] * 1e6:.0f} us "
          f"({median['echo'] / median['emulator']:.0%}); "
          f"minimum {fastest['emulator'] * 1e6:.0f} us against {fastest['echo'] * 1e6:.0f} us "
          f"({fastest['echo'] / fastest['emulator']:.0%})")
