"""Shared pieces of the benchmark suites: what every result records about where it ran.

Benchmarks are collected only when pytest is pointed here (``pytest benchmarks``); the test
command (``pytest``) runs tests/ alone. They must also pass with ``--benchmark-disable``
(CI runs them once that way), so each benchmark checks what its function returned.
"""

from __future__ import annotations

import platform
from collections.abc import Callable

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from protocol.crc import CRC_BACKEND

#: Interpreter and CRC backend, recorded in every result's extra_info.
ENVIRONMENT = {
    "python_implementation": platform.python_implementation(),
    "python_version": platform.python_version(),
    "crc_backend": CRC_BACKEND,
}


@pytest.fixture
def record_environment(benchmark: BenchmarkFixture) -> BenchmarkFixture:
    """The benchmark fixture with the interpreter and CRC backend in its extra_info."""
    benchmark.extra_info.update(ENVIRONMENT)
    return benchmark


_THROUGHPUT = pytest.StashKey[dict[str, float]]()


@pytest.fixture
def record_throughput(request: pytest.FixtureRequest) -> Callable[[str, float], None]:
    """Keep a measured MB/s under a name; the terminal summary prints them all."""
    rates = request.config.stash.setdefault(_THROUGHPUT, {})

    def record(name: str, megabytes_per_second: float) -> None:
        rates[name] = megabytes_per_second

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    for name, rate in config.stash.get(_THROUGHPUT, {}).items():
        terminalreporter.write_line(f"{name}: {rate:.1f} MB/s")


def pytest_report_header(config: pytest.Config) -> str:
    return ("secure-emu benchmarks: "
            + ", ".join(f"{key}={value}" for key, value in ENVIRONMENT.items()))
