"""DUIS 4.8.1 over a pty: a whole 13-month half-hour profile (19,056 half-hours) read through
the S1SP adapter, ``DeviceClient`` -> link (128-byte segments, window 1) -> pty -> ``ServeLoop``
-> world, both ends in this process (the server in a thread). The meter has run 397 days of
virtual time before the timed reads; each round is one ``S1spAdapter.submit`` returning the
whole DUIS response (13 READ_PROFILE_DATA requests of up to 31 days, each answer segmented).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from emulator.clock import VirtualClock
from emulator.profile import Profile
from emulator.serve import ServeLoop
from emulator.world import EmulatedWorld
from protocol.apdu import MANAGEMENT_SERVER_ADDRESS, Command, Request
from protocol.client import DeviceClient
from protocol.clock import RealMonotonicClock
from protocol.s1sp.adapter import S1spAdapter
from protocol.s1sp.builders import DuisRequestBuilder
from protocol.transport import PtyPair, open_port

START = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)  # the default profile's start
DAY = 86_400


@pytest.fixture
def served_adapter() -> Iterator[S1spAdapter]:
    world = EmulatedWorld(Profile.default(), VirtualClock(int(START.timestamp())))
    loop = ServeLoop(world, RealMonotonicClock(), advance_interval_ms=None)
    pair = PtyPair()
    loop.add_stream(pair.server, name="pty")
    thread = threading.Thread(target=loop.run, name="serve", daemon=True)
    thread.start()
    client = DeviceClient(open_port(pair.client_path))
    for days in [31] * 12 + [25]:
        assert client.request(MANAGEMENT_SERVER_ADDRESS, Request(
            Command.ADVANCE_DEVICE_TIME, 0, {"advance_seconds": days * DAY})).ok
    yield S1spAdapter(client)
    client.close()
    loop.request_stop()
    thread.join(5)


def test_read_13_month_profile_over_a_pty(record_environment: BenchmarkFixture,
                                          served_adapter: S1spAdapter) -> None:
    builder = DuisRequestBuilder()
    xml = builder.read_active_import_profile_data(
        "00-DB-12-34-56-78-90-A1", start=START, end=START + timedelta(days=397))
    answer = record_environment.pedantic(lambda: served_adapter.submit(xml), rounds=5,
                                         warmup_rounds=1)
    assert answer.count("<sr:LogEntry>") == 19_056
    record_environment.extra_info["response_bytes"] = len(answer)
