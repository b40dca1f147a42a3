"""protocol.s1sp.units, the requester's direction: pence -> DUIS money within int32, DUIS money
from a response -> whole pence only, durations and date-times from Python values, debt
recovery in pence and percent, each with its values written out."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from protocol.s1sp.errors import InvalidRequestError
from protocol.s1sp.units import (
    CANCELLATION_DATE_TIME,
    datetime_to_duis_date_time,
    debt_recovery_per_payment_to_percentage,
    debt_recovery_rate_to_pence,
    duis_date_time_to_datetime,
    duis_money_to_whole_pence,
    duration_to_seconds,
    is_cancellation_date_time,
    pence_to_debt_recovery_rate,
    pence_to_request_duis_money,
    percentage_to_debt_recovery_per_payment,
)


@pytest.mark.parametrize(("pence", "duis"), [
    (0, 0), (123, 123_000), (-98, -98_000), (2_147_483, 2_147_483_000),
    (-2_147_483, -2_147_483_000)])
def test_pence_become_duis_money_times_1000(pence: int, duis: int) -> None:
    assert pence_to_request_duis_money(pence, "AdjustMeterBalance") == duis


@pytest.mark.parametrize("pence", [2_147_484, -2_147_484])
def test_pence_beyond_int32_in_duis_money_are_refused(pence: int) -> None:
    with pytest.raises(InvalidRequestError, match=r"AdjustMeterBalance .*int32"):
        pence_to_request_duis_money(pence, "AdjustMeterBalance")


@pytest.mark.parametrize("value", [1.0, True, "12"])
def test_pence_must_be_an_int(value: object) -> None:
    with pytest.raises(TypeError, match="whole pence"):
        pence_to_request_duis_money(value, "LowCreditThreshold")  # type: ignore[arg-type]


def test_response_money_reads_as_whole_pence_or_refuses() -> None:
    assert duis_money_to_whole_pence(1_250_000, "MeterBalance") == 1250
    assert duis_money_to_whole_pence(-98_000, "AdjustMeterBalance") == -98
    with pytest.raises(ValueError, match=r"MeterBalance 123456 .*not a whole number of pence"):
        duis_money_to_whole_pence(123_456, "MeterBalance")


def test_durations_are_int_seconds_or_whole_second_timedeltas() -> None:
    assert duration_to_seconds(90, "JoinTimePeriod") == 90
    assert duration_to_seconds(timedelta(hours=1, seconds=5), "LoadLimitPeriod") == 3605
    with pytest.raises(ValueError, match=r"LoadLimitPeriod .*whole number of seconds"):
        duration_to_seconds(timedelta(milliseconds=1500), "LoadLimitPeriod")
    with pytest.raises(TypeError, match="JoinTimePeriod"):
        duration_to_seconds(1.5, "JoinTimePeriod")  # type: ignore[arg-type]


def test_aware_datetimes_become_utc_text_and_back() -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    moment = datetime(2030, 1, 15, 14, 30, 0, 999_999, tzinfo=india)
    assert datetime_to_duis_date_time(moment, "ExecutionDateTime") == "2030-01-15T09:00:00Z"
    assert duis_date_time_to_datetime("2030-01-15T09:00:00.25Z", "ExecutionDateTime") == \
        datetime(2030, 1, 15, 9, 0, 0, tzinfo=timezone.utc)
    with pytest.raises(ValueError, match=r"ExecutionDateTime .*naive"):
        datetime_to_duis_date_time(datetime(2030, 1, 15, 9), "ExecutionDateTime")


def test_the_cancellation_date_time_is_recognised_as_one() -> None:
    text = datetime_to_duis_date_time(CANCELLATION_DATE_TIME, "ExecutionDateTime")
    assert text == "3000-12-31T00:00:00Z"
    assert is_cancellation_date_time(text)


def test_debt_recovery_in_pence_and_percent_reads_back_exactly() -> None:
    assert pence_to_debt_recovery_rate(35) == (35, -2)
    assert debt_recovery_rate_to_pence(*pence_to_debt_recovery_rate(35)) == 35
    assert percentage_to_debt_recovery_per_payment(12) == 1200
    assert debt_recovery_per_payment_to_percentage(percentage_to_debt_recovery_per_payment(12)) \
        == 12
