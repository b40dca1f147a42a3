"""Shared fixtures: the ``--port`` option for bench rigs, and an in-memory link with faults.

``pytest --port /dev/ttyUSB0`` (or ``--port socket://10.0.0.5:4059``, ``--port tcp:HOST:PORT``)
points the end-to-end suite in tests/e2e at a real device or an emulator served elsewhere;
without it those tests serve the default profile themselves and hardware-only cases skip.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--port", action="store", default=None, metavar="PORT_OR_URL",
        help="run tests/e2e against this serial port / pyserial URL, or tcp:HOST:PORT, "
             "instead of an emulator served by the tests",
    )


@pytest.fixture
def external_port(request: pytest.FixtureRequest) -> str | None:
    """The ``--port`` given on the command line, or None."""
    value = request.config.getoption("--port")
    return str(value) if value else None


class ManualClock:
    """Integer milliseconds that move only when a test (or a fake transport) says."""

    def __init__(self, start_ms: int = 0) -> None:
        self.now_ms = start_ms

    def monotonic_ms(self) -> int:
        return self.now_ms

    def advance_ms(self, ms: int) -> None:
        self.now_ms += ms


@dataclass
class FaultPlan:
    """What a faulty link does to each chunk of bytes, decided by a seeded generator."""

    seed: int = 0
    drop_chunk: float = 0.0       # lose the whole chunk
    duplicate_chunk: float = 0.0  # deliver it twice
    corrupt_byte: float = 0.0     # flip one byte
    split: bool = False           # deliver in random pieces (no loss)
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def apply(self, data: bytes) -> list[bytes]:
        if self.rng.random() < self.drop_chunk:
            return []
        if self.rng.random() < self.corrupt_byte and data:
            index = self.rng.randrange(len(data))
            data = data[:index] + bytes((data[index] ^ 0x5A,)) + data[index + 1:]
        chunks = [data]
        if self.split and len(data) > 1:
            chunks = []
            start = 0
            while start < len(data):
                size = self.rng.randint(1, 7)
                chunks.append(data[start:start + size])
                start += size
        if self.rng.random() < self.duplicate_chunk:
            chunks = chunks + chunks
        return chunks


class MemoryLinkTransport:
    """A client-side ByteTransport wired straight to a sans-I/O server (``receive_bytes``).

    Bytes the client writes pass through ``to_server`` faults into the server; its answer
    passes through ``to_client`` faults into the client's inbox. ``read`` with nothing waiting
    advances the shared ManualClock by the timeout instead of sleeping, so retransmission runs
    on virtual time.
    """

    name = "memory link"

    def __init__(self, server: object, clock: ManualClock, *,
                 to_server: FaultPlan | None = None, to_client: FaultPlan | None = None) -> None:
        self.server = server
        self.clock = clock
        self.to_server = to_server or FaultPlan()
        self.to_client = to_client or FaultPlan()
        self.inbox: deque[bytes] = deque()
        self.closed = False
        self.bytes_written = 0

    def write(self, data: bytes) -> None:
        self.bytes_written += len(data)
        for chunk in self.to_server.apply(data):
            reply = self.server.receive_bytes(chunk, self.clock.monotonic_ms())  # type: ignore[attr-defined]
            if reply:
                self.inbox.extend(self.to_client.apply(reply))

    def read(self, max_bytes: int, timeout_ms: int) -> bytes:
        if not self.inbox:
            self.clock.advance_ms(max(1, timeout_ms))
            reply = self.server.handle_timeout(self.clock.monotonic_ms())  # type: ignore[attr-defined]
            if reply:
                self.inbox.extend(self.to_client.apply(reply))
            return b""
        chunk = self.inbox.popleft()
        if len(chunk) > max_bytes:
            self.inbox.appendleft(chunk[max_bytes:])
            chunk = chunk[:max_bytes]
        return chunk

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def manual_clock() -> ManualClock:
    return ManualClock(start_ms=1_000_000)


@pytest.fixture
def memory_link(manual_clock: ManualClock):  # type: ignore[no-untyped-def]
    """``memory_link(server, to_server={...}, to_client={...})`` -> a MemoryLinkTransport whose
    fault plans take FaultPlan's keyword arguments (seed, drop_chunk, duplicate_chunk,
    corrupt_byte, split)."""

    def make(server: object, *, to_server: dict | None = None,
             to_client: dict | None = None) -> MemoryLinkTransport:
        return MemoryLinkTransport(server, manual_clock,
                                   to_server=FaultPlan(**(to_server or {})),
                                   to_client=FaultPlan(**(to_client or {})))

    return make
