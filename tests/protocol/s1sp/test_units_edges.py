"""protocol.s1sp.units at its edges: what a user sees at the limits of each DUIS conversion.

Every expected value is written out here (worked by hand or with `date -u -d ... +%s`), never
taken from the module under test, so changing a constant or a bound in units.py fails a test.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from protocol.s1sp.errors import InvalidRequestError
from protocol.s1sp.units import (
    debt_recovery_per_payment_to_percentage,
    debt_recovery_rate_to_pence,
    device_seconds_to_duis_date_time,
    duis_date_time_to_device_seconds,
    duis_money_to_pence,
    duis_price_to_millipence,
    is_cancellation_date_time,
    join_time_period_seconds_to_minutes,
    parse_duis_integer,
)


def _refusal(call: Callable[..., object], *args: object) -> str:
    """The reason an :class:`InvalidRequestError` gives (what the E-INVALID response says)."""
    with pytest.raises(InvalidRequestError) as refused:
        call(*args)
    return str(refused.value)


# --- date-times ------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "device_seconds"), [
    ("2030-01-15T09:07:05Z", 1894698425),        # minutes and seconds both count
    ("2030-01-15T23:59:59Z", 1894751999),
    ("2038-01-19T03:14:07Z", 2147483647),        # the last second a signed 32-bit clock holds
    ("2038-01-19T03:14:08Z", 2147483648),        # and the first after it: still fine here
    ("2099-12-31T23:59:59+00:00", 4102444799),
    ("2106-02-07T06:28:15Z", 4294967295),        # the device clock's last second
])
def test_date_times_keep_minutes_and_seconds_and_reach_2106(
        text: str, device_seconds: int) -> None:
    assert duis_date_time_to_device_seconds(text) == device_seconds


def test_one_second_after_the_device_clock_ends_is_refused_with_the_range() -> None:
    assert _refusal(duis_date_time_to_device_seconds, "2106-02-07T06:28:16Z") == (
        "ExecutionDateTime '2106-02-07T06:28:16Z' is outside the device clock's range "
        "1970-01-01T00:00:00Z..2106-02-07T06:28:15Z")


def test_a_missing_date_time_is_named_as_empty_with_an_example() -> None:
    assert _refusal(duis_date_time_to_device_seconds, None) == (
        "ExecutionDateTime '' is not a UTC date-time such as 2030-01-15T09:00:00Z")


def test_a_bad_cancellation_date_time_names_execution_date_time_by_default() -> None:
    assert _refusal(is_cancellation_date_time, "soon") == (
        "ExecutionDateTime 'soon' is not a UTC date-time such as 2030-01-15T09:00:00Z")


@pytest.mark.parametrize(("device_seconds", "text"), [
    (0, "1970-01-01T00:00:00Z"),
    (1894698425, "2030-01-15T09:07:05Z"),
    (2147483648, "2038-01-19T03:14:08Z"),
    (4294967295, "2106-02-07T06:28:15Z"),
])
def test_device_seconds_become_utc_date_times(device_seconds: int, text: str) -> None:
    assert device_seconds_to_duis_date_time(device_seconds) == text


# --- money and integers ----------------------------------------------------------------------

@pytest.mark.parametrize(("duis_value", "pence"), [
    (2147483647, 2147483), (-2147483648, -2147483)])
def test_money_at_the_exact_int32_bounds_is_accepted(duis_value: int, pence: int) -> None:
    assert duis_money_to_pence(duis_value, "AdjustMeterBalance") == pence


def test_money_just_outside_int32_names_the_range() -> None:
    assert _refusal(duis_money_to_pence, 2147483648, "AdjustMeterBalance") == (
        "AdjustMeterBalance 2147483648 is outside the DUIS int32 range "
        "-2147483648..2147483647")


def test_a_missing_integer_is_named_as_empty() -> None:
    assert _refusal(parse_duis_integer, None, "CommandVariant") == (
        "CommandVariant must be a whole number, not ''")


# --- debt recovery ---------------------------------------------------------------------------

@pytest.mark.parametrize(("rate", "scale", "pence"), [
    (12345, -4, 123),          # 1.2345 GBP
    (12345, -5, 12),           # 0.12345 GBP
    (12399, -5, 12),           # truncated, not rounded
    (123456789, -8, 123),      # the lowest scale: 1.23456789 GBP
    (99999999, -8, 99),
    (0, 8, 0),                 # the highest scale
    (2, 4, 2000000),           # 20,000 GBP
    (2147483, -2, 2147483),    # exactly the largest pence the device holds (issue 10 point 4)
])
def test_debt_recovery_rate_at_every_scale_edge(rate: int, scale: int, pence: int) -> None:
    assert debt_recovery_rate_to_pence(rate, scale) == pence


@pytest.mark.parametrize(("rate", "scale", "reason"), [
    (1, 9, "DebtRecoveryRatePriceScale 9 is outside -8..8"),
    (1, -9, "DebtRecoveryRatePriceScale -9 is outside -8..8"),
    (2147484, -2,
     "DebtRecoveryRate 2147484 x 10^-2 GBP is 2147484 pence, outside the device's "
     "0..2147483 pence"),
    (-5, 0, "DebtRecoveryRate -5 x 10^0 GBP is -500 pence, outside the device's 0..2147483 pence"),
    (-12345, -5,
     "DebtRecoveryRate -12345 x 10^-5 GBP is -12 pence, outside the device's 0..2147483 pence"),
])
def test_debt_recovery_rate_refusals_say_why(rate: int, scale: int, reason: str) -> None:
    assert _refusal(debt_recovery_rate_to_pence, rate, scale) == reason


@pytest.mark.parametrize(("hundredths", "percent"), [(0, 0), (99, 0), (100, 1), (10000, 100)])
def test_debt_recovery_per_payment_from_zero_to_one_hundred_percent(
        hundredths: int, percent: int) -> None:
    assert debt_recovery_per_payment_to_percentage(hundredths) == percent


@pytest.mark.parametrize("hundredths", [-1, 10001])
def test_debt_recovery_per_payment_outside_0_to_10000_says_its_unit(hundredths: int) -> None:
    assert _refusal(debt_recovery_per_payment_to_percentage, hundredths) == (
        f"DebtRecoveryPerPayment {hundredths} is outside 0..10000 (hundredths of a percent)")


# --- join windows ----------------------------------------------------------------------------

def test_a_zero_join_time_period_is_refused_with_the_minimum() -> None:
    assert _refusal(join_time_period_seconds_to_minutes, 0) == (
        "JoinTimePeriod 0 s is not a positive number of seconds; a join window must be at least"
        " 1 s (it opens for at least 1 minute)")


# --- prices ----------------------------------------------------------------------------------

#: The schema types of DUIS prices, written out: electricity PriceType is xs:short, gas prices
#: xs:unsignedInt.
XS_SHORT = (-32768, 32767)
XS_UNSIGNED_INT = (0, 4294967295)


@pytest.mark.parametrize(("value", "value_range", "millipence"), [
    (32767, XS_SHORT, 32767), (0, XS_SHORT, 0), (0, XS_UNSIGNED_INT, 0),
    (4294967295, XS_UNSIGNED_INT, 4294967295)])
def test_prices_at_the_edges_of_their_duis_type_are_taken(
        value: int, value_range: tuple[int, int], millipence: int) -> None:
    assert duis_price_to_millipence(value, -5, "TOUPrice", value_range=value_range) == millipence


@pytest.mark.parametrize(("value", "value_range", "reason"), [
    (32768, XS_SHORT, "TOUPrice 32768 is outside the range of its DUIS type (-32768..32767)"),
    (4294967296, XS_UNSIGNED_INT,
     "TOUPrice 4294967296 is outside the range of its DUIS type (0..4294967295)"),
])
def test_a_price_over_its_duis_type_is_refused_with_the_range(
        value: int, value_range: tuple[int, int], reason: str) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        duis_price_to_millipence(value, -5, "TOUPrice", value_range=value_range)
    assert str(refused.value) == reason


@pytest.mark.parametrize(("value", "scale", "millipence"), [
    (0, -128, 0),  # the finest scale DUIS's PriceScale (an xs:byte) can give
    (1, 127, 10**132),  # the coarsest: 1 x 10^127 GBP is 10^132 millipence
    (12300, -7, 123),  # two digits finer than a millipenny, whole millipence
    (15, -4, 150),
])
def test_prices_are_exact_at_every_scale_from_minus_128_to_127(
        value: int, scale: int, millipence: int) -> None:
    assert duis_price_to_millipence(value, scale, "TOUPrice",
                                    value_range=XS_UNSIGNED_INT) == millipence


@pytest.mark.parametrize(("value", "scale", "reason"), [
    (1, -129, "TOUPrice: scale -129 is outside -128..127"),
    (1, 128, "TOUPrice: scale 128 is outside -128..127"),
    (12345, -7, "TOUPrice 12345 x 10^-7 GBP is finer than the 1/100000 GBP the meter holds; "
                "give it at scale -5 or coarser"),
])
def test_a_price_scale_out_of_range_or_too_fine_is_refused(
        value: int, scale: int, reason: str) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        duis_price_to_millipence(value, scale, "TOUPrice", value_range=XS_UNSIGNED_INT)
    assert str(refused.value) == reason
