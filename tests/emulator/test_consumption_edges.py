"""emulator.consumption at its edges: the penny boundary, segment boundaries, zero rates.

Every expected value is worked out by hand in the test (1 penny = 10_800_000_000 cost units;
a watt-second at 1 millipence/kWh is 3 units, a second at 1 millipence/day is 125 units), never
taken from the module under test.
"""

from __future__ import annotations

import re

import pytest

from emulator.consumption import CostAccumulator, LoadProfile, Tariff

PENNY_UNITS = 10_800_000_000
DAY = 86_400


# --- tariff ----------------------------------------------------------------------------------

def test_cost_units_weigh_energy_by_3_and_standing_seconds_by_125() -> None:
    assert Tariff(7, 11).cost_units(13, 17) == 13 * 7 * 3 + 17 * 11 * 125  # 273 + 23_375
    assert Tariff(1, 0).cost_units(1, 1) == 3
    assert Tariff(0, 1).cost_units(1, 1) == 125


def test_a_free_tariff_is_allowed_and_costs_nothing() -> None:
    assert Tariff(0, 0).cost_units(3_600_000, DAY) == 0


@pytest.mark.parametrize(("unit_rate", "standing"), [(-1, 0), (0, -1), (-1, -1)])
def test_a_negative_rate_of_either_kind_is_refused(unit_rate: int, standing: int) -> None:
    with pytest.raises(ValueError, match=r"^tariff rates must not be negative$"):
        Tariff(unit_rate, standing)


# --- cost accumulator: the penny boundary ----------------------------------------------------

def test_exactly_one_penny_of_cost_is_one_penny_due_with_nothing_left() -> None:
    accumulator = CostAccumulator()
    assert accumulator.add(PENNY_UNITS - 1) == 0
    assert accumulator.remainder_units == PENNY_UNITS - 1
    assert accumulator.add(1) == 1
    assert accumulator.remainder_units == 0


def test_a_kept_remainder_is_0_up_to_one_unit_below_a_penny() -> None:
    assert CostAccumulator(0).remainder_units == 0
    assert CostAccumulator(PENNY_UNITS - 1).remainder_units == PENNY_UNITS - 1


@pytest.mark.parametrize("remainder", [-1, PENNY_UNITS])
def test_a_remainder_of_a_whole_penny_or_below_zero_is_refused(remainder: int) -> None:
    # The prefix only: the message's upper bound (0..10800000000) includes the refused value.
    with pytest.raises(ValueError, match=f"^remainder {remainder} is outside 0[.][.]"):
        CostAccumulator(remainder)


def test_seconds_until_pence_at_the_penny_boundary() -> None:
    almost = CostAccumulator(PENNY_UNITS - 1)
    assert almost.seconds_until_pence(1, 1) == 1         # one unit short: one second at 1/s
    assert almost.seconds_until_pence(1, 7) == 1
    assert almost.seconds_until_pence(2, 1) == PENNY_UNITS + 1
    fresh = CostAccumulator()
    assert fresh.seconds_until_pence(1, 1) == PENNY_UNITS
    assert fresh.seconds_until_pence(1, PENNY_UNITS - 1) == 2  # rounds up, never short
    assert fresh.seconds_until_pence(1, PENNY_UNITS) == 1


def test_nothing_needed_is_due_now_even_with_no_cost_running() -> None:
    assert CostAccumulator().seconds_until_pence(0, 0) == 0
    assert CostAccumulator(5).seconds_until_pence(0, 0) == 0


@pytest.mark.parametrize("units_per_second", [0, -1])
def test_a_penny_never_comes_without_a_positive_cost_rate(units_per_second: int) -> None:
    assert CostAccumulator().seconds_until_pence(1, units_per_second) is None


# --- load profile ----------------------------------------------------------------------------

def test_a_single_segment_is_constant_and_never_changes() -> None:
    profile = LoadProfile(((0, 250),))
    assert profile.is_constant
    assert profile.next_change_after(12_345) is None
    assert profile.load_w_at(DAY + 7) == 250
    assert profile.energy_ws(5, 15) == 2_500
    assert profile.energy_ws(15, 15) == 0


def test_two_segments_are_not_constant() -> None:
    assert not LoadProfile(((0, 1), (60, 2))).is_constant


def test_the_next_change_from_exactly_a_segment_start_is_the_following_start() -> None:
    profile = LoadProfile(((6 * 3600, 500), (22 * 3600, 100)))
    assert profile.next_change_after(6 * 3600 - 1) == 6 * 3600
    assert profile.next_change_after(6 * 3600) == 22 * 3600
    assert profile.next_change_after(22 * 3600) == DAY + 6 * 3600
    assert profile.next_change_after(3 * DAY + 22 * 3600) == 4 * DAY + 6 * 3600


def test_the_load_changes_exactly_at_a_segment_start_on_any_day() -> None:
    profile = LoadProfile(((0, 10), (6 * 3600, 500), (22 * 3600, 100)))
    assert profile.load_w_at(6 * 3600 - 1) == 10
    assert profile.load_w_at(6 * 3600) == 500
    assert profile.load_w_at(22 * 3600 - 1) == 500
    assert profile.load_w_at(22 * 3600) == 100
    assert profile.load_w_at(2 * DAY) == 10
    assert profile.load_w_at(2 * DAY - 1) == 100


def test_energy_across_segment_boundaries_counts_each_second_once() -> None:
    profile = LoadProfile(((0, 10), (6 * 3600, 500), (22 * 3600, 100)))
    assert profile.energy_ws(6 * 3600 - 2, 6 * 3600 + 3) == 2 * 10 + 3 * 500
    assert profile.energy_ws(22 * 3600 - 1, DAY + 1) == 500 + 2 * 3600 * 100 + 10


def test_edges_of_a_valid_profile_are_accepted() -> None:
    assert LoadProfile(((0, 0), (DAY - 1, 3))).load_w_at(DAY - 1) == 3


@pytest.mark.parametrize(("segments", "reason"), [
    ((), "a load profile needs at least one (start_second_of_day, load_w)"),
    (((0, 1), (0, 2)), "load profile starts must be strictly increasing"),
    (((100, 1), (50, 1)), "load profile starts must be strictly increasing"),
    (((-1, 1),), "load profile start -1 s is outside 0..86399"),
    (((DAY, 1),), "load profile start 86400 s is outside 0..86399"),
    (((0, -1),), "load -1 W must not be negative"),
])
def test_a_bad_profile_is_refused_saying_why(
        segments: tuple[tuple[int, int], ...], reason: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(reason)}$"):
        LoadProfile(segments)
