"""DUIS 4.8.1 over a pty: a whole 13-month half-hour profile (19,056 half-hours) read through
the S1SP adapter, ``DeviceClient`` -> link (128-byte segments, window 1) -> pty -> ``ServeLoop``
-> world, both ends in this process (the server in a thread). The meter has run 397 days of
virtual time before the timed reads; each round is one ``S1spAdapter.submit`` returning the
whole DUIS response (13 READ_PROFILE_DATA requests of up to 31 days, each answer segmented).
"""

from __future__ import annotations

from datetime import timedelta

from pytest_benchmark.fixture import BenchmarkFixture

from protocol.s1sp.builders import DuisRequestBuilder
from tests.e2e.test_metering_end_to_end import ESME, START, adapter_on_a_pty_after


def test_read_13_month_profile_over_a_pty(record_environment: BenchmarkFixture) -> None:
    xml = DuisRequestBuilder().read_active_import_profile_data(
        ESME, start=START, end=START + timedelta(days=397))
    with adapter_on_a_pty_after(397) as adapter:
        answer = record_environment.pedantic(lambda: adapter.submit(xml), rounds=5,
                                             warmup_rounds=1)
    assert answer.count("<sr:LogEntry>") == 19_056
    record_environment.extra_info["response_bytes"] = len(answer)
