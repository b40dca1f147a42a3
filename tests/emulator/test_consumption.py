"""Metrology: exact integer cost of a load and a tariff; no money made or lost by rounding."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.consumption import COST_UNITS_PER_PENNY, CostAccumulator, LoadProfile, Tariff

DAY = 86_400


def exact_cost_pence(energy_ws: int, seconds: int, tariff: Tariff) -> Fraction:
    kwh = Fraction(energy_ws, 3_600_000)
    return (kwh * Fraction(tariff.unit_rate_millipence_per_kwh, 1000)
            + Fraction(seconds, DAY) * Fraction(tariff.standing_charge_millipence_per_day, 1000))


def test_one_kw_for_one_hour_at_24_5p_per_kwh_costs_24_pence_and_keeps_half_a_penny() -> None:
    tariff = Tariff(unit_rate_millipence_per_kwh=24_500, standing_charge_millipence_per_day=0)
    accumulator = CostAccumulator()
    assert accumulator.add(tariff.cost_units(1_000 * 3_600, 3_600)) == 24
    assert accumulator.remainder_units == COST_UNITS_PER_PENNY // 2


def test_standing_charge_of_a_whole_day_costs_exactly_the_daily_charge() -> None:
    tariff = Tariff(unit_rate_millipence_per_kwh=0, standing_charge_millipence_per_day=53_123)
    accumulator = CostAccumulator()
    assert accumulator.add(tariff.cost_units(0, DAY)) == 53
    assert Fraction(accumulator.remainder_units, COST_UNITS_PER_PENNY) == Fraction(123, 1000)


def test_load_profile_segments_wrap_past_midnight() -> None:
    profile = LoadProfile(((6 * 3600, 500), (22 * 3600, 100)))
    assert profile.load_w_at(0) == 100  # before 06:00 the 22:00 segment is still running
    assert profile.load_w_at(6 * 3600) == 500
    assert profile.next_change_after(0) == 6 * 3600
    assert profile.next_change_after(23 * 3600) == DAY + 6 * 3600
    assert profile.energy_ws(0, DAY) == 100 * 8 * 3600 + 500 * 16 * 3600


def test_load_profile_rejects_unsorted_or_negative_segments() -> None:
    with pytest.raises(ValueError, match="increasing"):
        LoadProfile(((100, 1), (50, 1)))
    with pytest.raises(ValueError, match="negative"):
        LoadProfile(((0, -5),))
    with pytest.raises(ValueError, match=r"0\.\.86399"):
        LoadProfile(((DAY, 5),))


def test_seconds_until_pence_is_exact_to_the_second() -> None:
    accumulator = CostAccumulator()
    per_second = Tariff(36_000, 0).cost_units(1_000, 1)  # 1 kW at 36 p/kWh: 1 p per 100 s
    assert accumulator.seconds_until_pence(1, per_second) == 100
    assert accumulator.add(per_second * 99) == 0
    assert accumulator.seconds_until_pence(1, per_second) == 1
    assert accumulator.seconds_until_pence(1, 0) is None


@settings(max_examples=200, deadline=None)
@given(
    unit_rate=st.integers(0, 99_999),
    standing=st.integers(0, 99_999),
    segments=st.lists(st.tuples(st.integers(0, DAY - 1), st.integers(0, 20_000)),
                      min_size=1, max_size=5, unique_by=lambda pair: pair[0]),
    start=st.integers(0, 10 * DAY),
    steps=st.lists(st.integers(1, 7 * DAY), min_size=1, max_size=30),
)
def test_consumption_debits_exact_cost_rounded_down_over_any_step_pattern(
        unit_rate: int, standing: int, segments: list[tuple[int, int]], start: int,
        steps: list[int]) -> None:
    tariff = Tariff(unit_rate, standing)
    profile = LoadProfile(tuple(sorted(segments)))
    accumulator = CostAccumulator()
    debited_pence = 0
    now = start
    for step in steps:
        debited_pence += accumulator.add(
            tariff.cost_units(profile.energy_ws(now, now + step), step))
        now += step
    total_seconds = now - start
    exact = exact_cost_pence(profile.energy_ws(start, now), total_seconds, tariff)
    assert debited_pence == exact.numerator // exact.denominator
    one_step = CostAccumulator().add(
        tariff.cost_units(profile.energy_ws(start, now), total_seconds))
    assert debited_pence == one_step
