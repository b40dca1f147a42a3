"""Shared fixtures: the ``--port`` option for bench rigs, and an in-memory link with faults
(:class:`emulator.faults.MemoryLink`, the same seeded faults users get with ``--faults``).

``pytest --port /dev/ttyUSB0`` (or ``--port socket://10.0.0.5:4059``, ``--port tcp:HOST:PORT``)
points the end-to-end suite in tests/e2e at a real device or an emulator served elsewhere;
without it those tests serve the default profile themselves and hardware-only cases skip.
"""

from __future__ import annotations

import pytest

from emulator.faults import FaultPlan, ManualClock, MemoryLink

pytest_plugins = ["pytester"]


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


@pytest.fixture
def manual_clock() -> ManualClock:
    return ManualClock(start_ms=1_000_000)


@pytest.fixture
def memory_link(manual_clock: ManualClock):  # type: ignore[no-untyped-def]
    """``memory_link(server, to_server={...}, to_client={...})`` -> a MemoryLink on the manual
    clock whose fault plans take FaultPlan's keyword arguments (seed, drop_chunk,
    duplicate_chunk, corrupt_byte, split, delay_ms, stall_chance, stall_ms)."""

    def make(server: object, *, to_server: dict | None = None,
             to_client: dict | None = None) -> MemoryLink:
        return MemoryLink(server, manual_clock, wait=manual_clock.advance_ms,
                          to_server=FaultPlan(**(to_server or {})),
                          to_client=FaultPlan(**(to_client or {})))

    return make
