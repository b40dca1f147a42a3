"""protocol.s1sp.units: DUIS <-> device conversions, integer math only."""

from __future__ import annotations

import pytest

from protocol.apdu import MAX_JOIN_WINDOW_MINUTES
from protocol.s1sp.errors import InvalidRequestError
from protocol.s1sp.units import (
    INT32_MAX,
    INT32_MIN,
    debt_recovery_per_payment_to_percentage,
    debt_recovery_rate_to_pence,
    decivolts_to_duis_voltage,
    duis_date_time_to_device_seconds,
    duis_money_to_pence,
    is_cancellation_date_time,
    join_time_period_seconds_to_minutes,
    join_window_minutes_to_seconds,
    pence_to_duis_money,
)


@pytest.mark.parametrize(("duis_value", "pence"), [
    (556677, 556), (1000, 1), (999, 0), (0, 0), (-999, 0), (-1000, -1), (-1999, -1),
    (-556677, -556), (INT32_MAX, 2147483), (INT32_MIN, -2147483),
])
def test_money_truncates_toward_zero_for_both_signs(duis_value: int, pence: int) -> None:
    assert duis_money_to_pence(duis_value, "AdjustMeterBalance") == pence


@pytest.mark.parametrize("duis_value", [INT32_MAX + 1, INT32_MIN - 1, 10**12])
def test_money_outside_int32_is_a_clear_error(duis_value: int) -> None:
    with pytest.raises(InvalidRequestError, match=r"DisablementThreshold .* int32"):
        duis_money_to_pence(duis_value, "DisablementThreshold")


def test_response_money_is_pence_times_1000() -> None:
    assert pence_to_duis_money(556) == 556000
    assert pence_to_duis_money(-1) == -1000


@pytest.mark.parametrize(("seconds", "minutes"), [
    (1, 1), (59, 1), (60, 1), (61, 2), (90, 2), (3600, 60),
])
def test_join_time_period_rounds_up_to_whole_minutes(seconds: int, minutes: int) -> None:
    assert join_time_period_seconds_to_minutes(seconds) == minutes
    assert join_window_minutes_to_seconds(minutes) >= seconds


@pytest.mark.parametrize("seconds", [0, -60])
def test_join_time_period_zero_or_negative_is_refused(seconds: int) -> None:
    with pytest.raises(InvalidRequestError, match="JoinTimePeriod"):
        join_time_period_seconds_to_minutes(seconds)


def test_join_time_period_longer_than_the_hubs_longest_window_is_refused_before_sending(
        ) -> None:
    # 3601 s would round up to 61 minutes, one more than the hub accepts
    with pytest.raises(InvalidRequestError, match="longest join window of 60 minutes"):
        join_time_period_seconds_to_minutes(MAX_JOIN_WINDOW_MINUTES * 60 + 1)


@pytest.mark.parametrize(("rate", "scale", "pence"), [
    (35, -2, 35), (3, -1, 30), (15, 0, 1500), (7, -3, 0), (19, -3, 1), (0, 5, 0)])
def test_debt_recovery_rate_is_gbp_times_ten_to_the_scale_in_whole_pence(
        rate: int, scale: int, pence: int) -> None:
    assert debt_recovery_rate_to_pence(rate, scale) == pence


@pytest.mark.parametrize(("rate", "scale"), [(-1, 0), (1, 9), (1, -9), (2**31, 0)])
def test_debt_recovery_rate_outside_the_device_range_is_refused(rate: int, scale: int) -> None:
    with pytest.raises(InvalidRequestError, match="DebtRecoveryRate"):
        debt_recovery_rate_to_pence(rate, scale)


def test_debt_recovery_per_payment_is_hundredths_of_a_percent_truncated() -> None:
    assert debt_recovery_per_payment_to_percentage(1250) == 12
    assert debt_recovery_per_payment_to_percentage(10000) == 100
    with pytest.raises(InvalidRequestError, match="DebtRecoveryPerPayment"):
        debt_recovery_per_payment_to_percentage(10001)


def test_execution_date_time_becomes_device_seconds_dropping_fractions() -> None:
    assert duis_date_time_to_device_seconds("2030-01-15T09:00:00.00Z") == 1894698000
    assert duis_date_time_to_device_seconds("2030-01-15T09:00:00.99+00:00") == 1894698000
    assert duis_date_time_to_device_seconds("1970-01-01T00:00:00Z") == 0


@pytest.mark.parametrize("text", ["2030-01-15", "2030-01-15T09:00:00+01:00",
                                  "2030-02-30T00:00:00Z", "1969-12-31T23:59:59Z", ""])
def test_bad_or_unrepresentable_date_times_are_refused(text: str) -> None:
    with pytest.raises(InvalidRequestError, match="ExecutionDateTime"):
        duis_date_time_to_device_seconds(text)


def test_cancellation_date_is_3000_12_31() -> None:
    assert is_cancellation_date_time("3000-12-31T00:00:00.00Z")
    assert not is_cancellation_date_time("2030-12-31T00:00:00Z")


@pytest.mark.parametrize(("decivolts", "text"), [(2_304, "230.4"), (2_300, "230.0"),
                                                 (5, "0.5"), (0, "0.0"), (65_535, "6553.5")])
def test_decivolts_are_reported_as_volts_with_one_decimal(decivolts: int, text: str) -> None:
    assert decivolts_to_duis_voltage(decivolts) == text


def test_a_negative_voltage_is_never_reported() -> None:
    with pytest.raises(ValueError):
        decivolts_to_duis_voltage(-1)
