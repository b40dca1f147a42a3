"""Tariffs: TOU switching in device time, block splitting, price changes at future times."""

from __future__ import annotations

import pytest

from emulator.metrology.tariff import (
    PendingChange,
    Prices,
    SwitchingTable,
    Tariff,
    TariffTimeline,
    day_of_week,
)

DAY = 86_400
HOUR = 3_600
MONDAY_2024_01_01 = 1_704_067_200
#: weekdays: band 0 until 07:00, band 1 07:00-23:00, band 0 after; weekends band 0 all day
ECONOMY_7 = SwitchingTable(
    day_profiles=(((0, 0), (7 * HOUR, 1), (23 * HOUR, 0)), ((0, 0),)),
    week=(0, 0, 0, 0, 0, 1, 1),
)


def test_day_of_week_counts_from_monday_in_utc() -> None:
    assert day_of_week(0) == 3  # 1970-01-01 was a Thursday
    assert day_of_week(MONDAY_2024_01_01) == 0
    assert day_of_week(MONDAY_2024_01_01 + 6 * DAY + DAY - 1) == 6


def test_band_follows_the_day_profile_of_each_weekday() -> None:
    assert ECONOMY_7.band_at(MONDAY_2024_01_01 + 7 * HOUR - 1) == 0
    assert ECONOMY_7.band_at(MONDAY_2024_01_01 + 7 * HOUR) == 1
    assert ECONOMY_7.band_at(MONDAY_2024_01_01 + 23 * HOUR) == 0
    assert ECONOMY_7.band_at(MONDAY_2024_01_01 + 5 * DAY + 12 * HOUR) == 0  # Saturday


def test_next_switch_skips_switches_to_the_same_band_and_crosses_the_weekend() -> None:
    monday = MONDAY_2024_01_01
    assert ECONOMY_7.next_switch_after(monday) == monday + 7 * HOUR
    assert ECONOMY_7.next_switch_after(monday + 7 * HOUR) == monday + 23 * HOUR
    assert ECONOMY_7.next_switch_after(monday + 23 * HOUR) == monday + DAY + 7 * HOUR
    friday_late = monday + 4 * DAY + 23 * HOUR
    assert ECONOMY_7.next_switch_after(friday_late) == monday + 7 * DAY + 7 * HOUR
    assert SwitchingTable().next_switch_after(monday) is None


def test_switching_table_refuses_bad_profiles() -> None:
    with pytest.raises(ValueError, match="start with a switch at 0"):
        SwitchingTable(day_profiles=(((60, 0),),))
    with pytest.raises(ValueError, match="exactly 7"):
        SwitchingTable(week=(0,))
    with pytest.raises(ValueError, match="does not exist"):
        SwitchingTable(week=(0, 0, 0, 0, 0, 0, 1))
    with pytest.raises(ValueError, match="increase"):
        SwitchingTable(day_profiles=(((0, 0), (DAY, 1)),))


def test_block_split_is_by_energy_across_thresholds() -> None:
    tariff = Tariff(Prices(((10_000, 20_000, 30_000),), 0), block_thresholds_wh=((1, 3),))
    # 1 Wh = 3600 Ws; 3 Wh = 10800 Ws
    assert tariff.split_into_blocks(0, 0, 3_000) == [3_000, 0, 0]
    assert tariff.split_into_blocks(0, 3_000, 1_000) == [600, 400, 0]
    assert tariff.split_into_blocks(0, 3_600, 10_000) == [0, 7_200, 2_800]
    assert tariff.split_into_blocks(0, 20_000, 5) == [0, 0, 5]
    # 600 Ws at 10 p/kWh + 400 Ws at 20 p/kWh, in cost units (3 per Ws per millipence/kWh)
    assert tariff.energy_cost_units(0, [600, 400, 0]) == (600 * 10_000 + 400 * 20_000) * 3


def test_tariff_refuses_thresholds_that_do_not_match_the_block_prices() -> None:
    with pytest.raises(ValueError, match="one threshold fewer"):
        Tariff(Prices(((1, 2),), 0), block_thresholds_wh=((5, 6),))
    with pytest.raises(ValueError, match="increasing"):
        Tariff(Prices(((1, 2, 3),), 0), block_thresholds_wh=((6, 5),))
    with pytest.raises(ValueError, match="uses band 1"):
        Tariff(Prices(((1,),), 0), switching=ECONOMY_7)
    with pytest.raises(ValueError, match=r"1\.\.4"):
        Prices(((1, 2, 3, 4, 5),), 0)


def test_units_per_second_uses_the_block_reached() -> None:
    tariff = Tariff(Prices(((10_000, 20_000),), 86_400), block_thresholds_wh=((1,),))
    # standing 86.4 p/day = 1 millipence/s = 125 units/s; 1 kW at 10 p/kWh = 30_000_000 units/s
    assert tariff.units_per_second(0, 0, 1_000) == 1_000 * 10_000 * 3 + 86_400 * 125
    assert tariff.units_per_second(0, 3_600, 1_000) == 1_000 * 20_000 * 3 + 86_400 * 125
    assert tariff.next_threshold_ws(0, 0) == 3_600
    assert tariff.next_threshold_ws(0, 3_600) is None


def test_future_price_change_applies_at_its_time_and_keeps_the_switching() -> None:
    tariff = Tariff(Prices(((10_000,), (20_000,)), 5_000), switching=ECONOMY_7)
    later = MONDAY_2024_01_01 + DAY
    timeline = TariffTimeline(tariff).schedule(
        PendingChange(later, prices=Prices(((11_000,), (22_000,)), 6_000)))
    assert timeline.next_change_after(MONDAY_2024_01_01) == later
    assert timeline.at(later - 1).current is tariff
    changed = timeline.at(later)
    assert changed.pending == ()
    assert changed.current.prices.block_prices_millipence_per_kwh == ((11_000,), (22_000,))
    assert changed.current.switching is ECONOMY_7


def test_a_whole_tariff_change_replaces_a_price_change_scheduled_before_it() -> None:
    flat = Tariff.flat(10_000, 0)
    timeline = TariffTimeline(flat).schedule(
        PendingChange(200, tariff=Tariff.flat(30_000, 0))).schedule(
        PendingChange(100, prices=Prices.flat(20_000, 0)))
    assert [c.effective_seconds for c in timeline.pending] == [100, 200]
    assert timeline.at(150).current.prices == Prices.flat(20_000, 0)
    assert timeline.at(200).current == Tariff.flat(30_000, 0)
    with pytest.raises(ValueError, match="not both or none"):
        PendingChange(5)


def test_prices_that_do_not_fit_the_tariff_in_force_are_dropped() -> None:
    timeline = TariffTimeline(Tariff.flat(10_000, 0)).schedule(
        PendingChange(100, prices=Prices(((1,), (2,)), 0)))
    assert timeline.at(100).current == Tariff.flat(10_000, 0)
    assert timeline.at(100).pending == ()
