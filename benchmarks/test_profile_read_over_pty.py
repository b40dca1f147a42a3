"""DUIS 4.8.1 over a pty: a whole 13-month half-hour profile (19,056 half-hours) read through
the S1SP adapter, ``DeviceClient`` -> link (128-byte segments, window 1) -> pty -> ``ServeLoop``
-> world, both ends in this process (the server in a thread). The meter has run 397 days of
virtual time before the timed reads; each round is one ``S1spAdapter.submit`` returning the
whole DUIS response (13 READ_PROFILE_DATA requests of up to 31 days, each answer segmented).
DUIS 4.10 the same way: the whole 90-day voltage profile log.
"""

from __future__ import annotations

from datetime import timedelta

from pytest_benchmark.fixture import BenchmarkFixture

from protocol.s1sp.builders import DuisRequestBuilder
from tests.e2e.test_metering_end_to_end import ESME, START, adapter_on_a_pty_after


def _timed_read(benchmark: BenchmarkFixture, xml: str, days: int) -> str:
    """The answer to ``xml`` over a pty after ``days`` of virtual time, timed."""
    with adapter_on_a_pty_after(days) as adapter:
        answer = benchmark.pedantic(lambda: adapter.submit(xml), rounds=5, warmup_rounds=1)
    benchmark.extra_info["response_bytes"] = len(answer)
    return answer


def test_read_13_month_profile_over_a_pty(record_environment: BenchmarkFixture) -> None:
    xml = DuisRequestBuilder().read_active_import_profile_data(
        ESME, start=START, end=START + timedelta(days=397))
    assert _timed_read(record_environment, xml, 397).count("<sr:LogEntry>") == 19_056


def test_read_90_day_network_data_over_a_pty(record_environment: BenchmarkFixture) -> None:
    """DUIS 4.10: the whole voltage profile log (4,320 half-hours, one READ_NETWORK_DATA
    whose 8,652-byte body is segmented) after 91 days of virtual time."""
    xml = DuisRequestBuilder().read_network_data(
        ESME, start=START, end=START + timedelta(days=91))
    assert _timed_read(record_environment, xml, 91).count("<sr:LogEntry>") == 4_320
