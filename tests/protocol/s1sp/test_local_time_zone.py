"""Date-times in responses are UTC whatever the process's local time zone (the suite usually
runs in UTC, which would hide a conversion made in local time)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from protocol.s1sp.units import device_seconds_to_duis_date_time, duis_date_time_to_device_seconds
from tests.protocol.s1sp.conftest import Rig, fixture_xml


@pytest.fixture
def local_time_is_india() -> Iterator[None]:
    """The process's local time zone is UTC+05:30 (a POSIX TZ string: needs no tz database)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", "IST-5:30")
        time.tzset()
        try:
            yield
        finally:
            patch.undo()
            time.tzset()


def test_response_date_times_are_utc_whatever_the_local_time_zone(
        local_time_is_india: None) -> None:
    assert time.strftime("%H:%M", time.localtime(0)) == "05:30"  # the zone really is changed
    assert device_seconds_to_duis_date_time(1894698425) == "2030-01-15T09:07:05Z"
    assert duis_date_time_to_device_seconds("2030-01-15T09:07:05Z") == 1894698425


def test_a_response_made_in_another_local_time_zone_still_says_utc(
        local_time_is_india: None) -> None:
    assert time.strftime("%H:%M", time.localtime(0)) == "05:30"
    xml = Rig().adapter.submit(fixture_xml("8.11_add_han_device"))
    assert re.findall(r"<sr:(ResponseDateTime|JoinWindowEndDateTime)>([^<]*)<", xml) == [
        ("ResponseDateTime", "2026-01-05T09:00:00Z"),
        ("JoinWindowEndDateTime", "2026-01-05T09:02:00Z"),   # 90 s rounds up to 2 minutes
    ]
