"""A READ_METER_BALANCE round trip over a pty against a raw pyserial echo on a pty (issue 8.6).

The servers run as processes of their own, side by side in one run: the emulator as
``secure-emu serve --pty --virtual-time`` (the default profile) with a ``DeviceClient`` on the
slave, as it runs by default (where more than one CPU is usable, it looks for the next request
without sleeping for 200 us after each: no wake-up from idle between requests sent back to
back), the same with ``--busy-poll-us 0`` (it sleeps as soon as it has answered), and the echo
as a process copying the master's input back, with a pyserial ``Serial`` on the slave writing
40 bytes and reading them back (about the size of the request and its answer). The clients
run in this process.
``test_read_meter_balance_in_one_process`` runs the same round trip with no I/O at all (the
client's transport hands each write straight to a ``LinkServer`` over the world, in this
process): the Python cost of both ends, which the pty round trip pays with cold caches and
process switches on top.
``test_round_trip_ratio`` alternates blocks of the three and prints each emulator's rate as a
fraction of the echo's (the target is at least 50%): from all the round trips (the rate), the
best block, the medians and the minimums, with each end's CPU time per round trip.
"""

from __future__ import annotations

import os
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


class _RoundTrip:
    """One round trip (call it) against a server process (``pid``)."""

    def __init__(self, call: Callable[[], object], pid: int) -> None:
        self.call = call
        self.pid = pid

    def __call__(self) -> object:
        return self.call()


def _process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux ``/proc``), or None where there is none."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _emulator_round_trip(*serve_options: str) -> Iterator[_RoundTrip]:
    process, path = _start([sys.executable, "-m", "emulator.cli", "serve", "--pty",
                            "--virtual-time", *serve_options])
    client = DeviceClient(open_port(path))
    request = Request(Command.READ_METER_BALANCE, 1)

    def round_trip() -> int:
        return int(client.request(ESME_ADDRESS, request).body.meter_balance_pence)

    try:
        yield _RoundTrip(round_trip, process.pid)
    finally:
        client.close()
        _stop(process)


@pytest.fixture
def emulator_round_trip() -> Iterator[_RoundTrip]:
    yield from _emulator_round_trip()


@pytest.fixture
def sleeping_emulator_round_trip() -> Iterator[_RoundTrip]:
    """The server sleeps as soon as it has answered (no busy polling)."""
    yield from _emulator_round_trip("--busy-poll-us", "0")


@pytest.fixture
def echo_round_trip() -> Iterator[_RoundTrip]:
    process, path = _start([sys.executable, "-c", ECHO_SERVER])
    port = serial.Serial(path, timeout=2)

    def round_trip() -> bytes:
        port.write(ECHO_BYTES)
        return bytes(port.read(len(ECHO_BYTES)))

    try:
        yield _RoundTrip(round_trip, process.pid)
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
        return int(client.request(ESME_ADDRESS, request).body.meter_balance_pence)

    assert record_environment(round_trip) == 1250


@pytest.mark.benchmark(group="pty round trip")
def test_read_meter_balance_over_a_pty(record_environment: BenchmarkFixture,
                                       emulator_round_trip: _RoundTrip) -> None:
    assert record_environment(emulator_round_trip) == 1250  # the default profile's ESME balance


@pytest.mark.benchmark(group="pty round trip")
def test_read_meter_balance_over_a_pty_without_busy_polling(
        record_environment: BenchmarkFixture,
        sleeping_emulator_round_trip: _RoundTrip) -> None:
    assert record_environment(sleeping_emulator_round_trip) == 1250


@pytest.mark.benchmark(group="pty round trip")
def test_raw_pyserial_echo_over_a_pty(record_environment: BenchmarkFixture,
                                      echo_round_trip: _RoundTrip) -> None:
    assert record_environment(echo_round_trip) == ECHO_BYTES


def test_round_trip_ratio(request: pytest.FixtureRequest,
                          emulator_round_trip: _RoundTrip,
                          sleeping_emulator_round_trip: _RoundTrip,
                          echo_round_trip: _RoundTrip) -> None:
    """Alternating blocks of the three, each round trip timed: each emulator's rate as a
    fraction of the echo's from all the round trips, the best block's mean (least disturbed),
    the medians and the minimums (the medians are the least sensitive to other load on the
    machine); and the CPU
    time each end spent per round trip (this process's, and the server process's where /proc
    has it)."""
    disabled = request.config.getoption("benchmark_disable", False)
    blocks, per_block = (1, 5) if disabled else (10, 300)
    servers = {"emulator": emulator_round_trip,
               "emulator --busy-poll-us 0": sleeping_emulator_round_trip,
               "echo": echo_round_trip}
    best = dict.fromkeys(servers, float("inf"))
    times: dict[str, list[float]] = {name: [] for name in servers}
    client_cpu = dict.fromkeys(servers, 0.0)
    server_cpu: dict[str, float | None] = dict.fromkeys(servers, 0.0)
    clock = time.perf_counter
    for _ in range(blocks):
        for name, round_trip in servers.items():
            block = []
            server_before = _process_cpu_seconds(round_trip.pid)
            client_before = time.process_time()
            for _ in range(per_block):
                start = clock()
                round_trip()
                block.append(clock() - start)
            client_cpu[name] += time.process_time() - client_before
            server_after = _process_cpu_seconds(round_trip.pid)
            spent = server_cpu[name]
            server_cpu[name] = (None if spent is None or server_before is None
                                or server_after is None
                                else spent + server_after - server_before)
            best[name] = min(best[name], sum(block) / per_block)
            times[name] += block
    assert emulator_round_trip() == sleeping_emulator_round_trip() == 1250
    assert echo_round_trip() == ECHO_BYTES
    mean = {name: statistics.fmean(values) for name, values in times.items()}
    median = {name: statistics.median(values) for name, values in times.items()}
    fastest = {name: min(values) for name, values in times.items()}
    count = blocks * per_block

    def us(seconds: float) -> str:
        return f"{seconds * 1e6:.0f} us"

    def cpu(name: str) -> str:
        server = server_cpu[name]
        return (f"CPU per round trip: client {us(client_cpu[name] / count)}, server "
                f"{'?' if server is None else us(server / count)}")

    echo = "echo"
    print(f"\npty round trip, READ_METER_BALANCE against a raw pyserial echo of 40 bytes "
          f"(echo: mean {us(mean[echo])}, best block {us(best[echo])}, median "
          f"{us(median[echo])}, minimum {us(fastest[echo])}; {cpu(echo)})")
    for name in servers:
        if name != echo:
            print(f"  {name}: mean {us(mean[name])} ({mean[echo] / mean[name]:.0%} of the "
                  f"echo rate), best block {us(best[name])} ({best[echo] / best[name]:.0%}), "
                  f"median {us(median[name])} "
                  f"({median[echo] / median[name]:.0%}), minimum {us(fastest[name])} "
                  f"({fastest[echo] / fastest[name]:.0%}); {cpu(name)}")
