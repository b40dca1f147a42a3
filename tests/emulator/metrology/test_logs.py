"""Half-hour profile, daily read / consumption logs and the prepayment daily log: recomputed
or kept compactly, and always in agreement with the registers."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.metrology.engine import Metrology
from emulator.metrology.load_model import HalfHourShape, SeededShape, constant_load
from emulator.metrology.logs import (
    DeviationLog,
    LoadHistory,
    PrepaymentDailyLog,
    RegisterSnapshots,
)
from emulator.metrology.tariff import Prices, SwitchingTable, Tariff, TariffTimeline

DAY = 86_400
HOUR = 3_600
HH = 1_800
MONDAY = 1_704_067_200  # 2024-01-01T00:00Z
SHAPE = tuple(200 + 37 * i for i in range(48))
E7 = Tariff(Prices(((10_000,), (30_000,)), 50_000),
            SwitchingTable((((0, 0), (7 * HOUR, 1), (23 * HOUR, 0)),), (0,) * 7))


def brute_force_wh_per_half_hour(model, start: int, end: int,
                                 off: tuple[int, int] | None) -> list[int]:
    """Energy per half-hour from the model second by second, supply off inside ``off``,
    shown as differences of the floor(Ws / 3600) register."""
    cumulative = 0
    shown = []
    for half_hour_start in range(start, end, HH):
        for t in range(half_hour_start, half_hour_start + HH):
            if off is None or not off[0] <= t < off[1]:
                cumulative += model.load_w_at(t)
        shown.append(cumulative // 3_600)
    return [b - a for a, b in zip([0, *shown], shown, strict=False)]


def test_profile_is_the_energy_of_each_half_hour_with_a_supply_off_spell() -> None:
    model = SeededShape(SHAPE, seed=99, spread_percent=25)
    metrology = Metrology.start(MONDAY, TariffTimeline(E7), model)
    off = (MONDAY + 5 * HOUR + 17, MONDAY + 9 * HOUR + 1_234)
    metrology.accrue(off[0], True)
    metrology.accrue(off[1], False)
    metrology.accrue(MONDAY + 2 * DAY + 77, True)
    profile = metrology.half_hour_profile(0, 10**9)
    assert [start for start, _ in profile] == list(range(MONDAY, MONDAY + 2 * DAY, HH))
    assert [value for _, value in profile] == brute_force_wh_per_half_hour(
        model, MONDAY, MONDAY + 2 * DAY, off)
    # the off spell is one run of 0 Ws between its two partial half-hours
    assert list(metrology.deviations.counts) == [1, 7, 1]
    assert metrology.deviations.energies_ws[1] == 0


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**64 - 1), start_offset=st.integers(0, DAY),
       spells=st.lists(st.tuples(st.integers(1, 3 * DAY), st.booleans()), min_size=1,
                       max_size=8))
def test_profile_and_daily_logs_add_up_to_the_register(
        seed: int, start_offset: int, spells: list[tuple[int, bool]]) -> None:
    start = MONDAY + start_offset
    metrology = Metrology.start(start, TariffTimeline(E7),
                                SeededShape(SHAPE, seed, 50))
    for length, enabled in spells:
        metrology.accrue(metrology.now_seconds + length, enabled)
    now = metrology.now_seconds
    closed_end = now - now % HH
    profile = metrology.half_hour_profile(0, 10**9)
    assert sum(value for _, value in profile) == metrology.total_ws_at(closed_end) // 3_600
    daily = metrology.daily_consumption(0, 10**6)
    log = metrology.daily_read_log()
    totals = {midnight: total for midnight, total, _ in log}
    for midnight, consumed in daily:
        if midnight in totals and midnight + DAY in totals:
            assert consumed == totals[midnight + DAY] - totals[midnight]
    for midnight, consumed in daily:
        day_values = [v for s, v in profile if midnight <= s < midnight + DAY]
        assert consumed == sum(day_values)


def test_daily_read_log_keeps_31_midnights_with_tou_registers() -> None:
    metrology = Metrology.start(MONDAY, TariffTimeline(E7), constant_load(1_000))
    metrology.accrue(MONDAY + 40 * DAY + 5, True)
    log = metrology.daily_read_log()
    assert len(log) == 31
    first_midnight, total_wh, cells = log[0]
    assert first_midnight == MONDAY + 10 * DAY
    assert total_wh == 10 * 24_000
    assert cells == {0: 10 * 8_000, 4: 10 * 16_000}  # band 0 and band 1, block 0
    assert log[-1][0] == MONDAY + 40 * DAY


def test_a_meter_with_its_supply_on_stores_no_half_hour_values() -> None:
    metrology = Metrology.start(MONDAY, TariffTimeline(E7), HalfHourShape(SHAPE))
    metrology.accrue(MONDAY + 400 * DAY, True)
    assert len(metrology.deviations.firsts) == 0
    profile = metrology.half_hour_profile(0, 10**9)
    assert len(profile) == 19_056  # 397 days x 48, the DUIS 4.8.1 depth
    assert profile[0][0] == MONDAY + 3 * DAY
    assert len(metrology.daily_consumption(0, 10**6)) == 400


def test_consumption_log_reaches_back_731_days_and_history_is_pruned() -> None:
    metrology = Metrology.start(MONDAY, TariffTimeline(E7), constant_load(100))
    for day in range(800):
        metrology.accrue(MONDAY + day * DAY + HOUR, True)
        metrology.set_load_model(constant_load(100 + day % 3))
    metrology.accrue(MONDAY + 800 * DAY, True)
    daily = metrology.daily_consumption(0, 10**6)
    assert len(daily) == 731
    assert daily[0][0] == MONDAY + 69 * DAY
    # day 69: 1 h at 100 + (68 % 3) W, then 23 h at 100 + (69 % 3) W
    assert daily[0][1] == (102 * HOUR + 100 * 23 * HOUR) // 3_600
    assert len(metrology.history.entries) <= 733


def test_load_history_uses_each_model_from_its_start() -> None:
    history = LoadHistory([(0, constant_load(10))])
    history.set_from(100, constant_load(20))
    history.set_from(200, constant_load(30))
    assert history.energy_ws(50, 250) == 50 * 10 + 100 * 20 + 50 * 30
    history.set_from(150, constant_load(5))  # a change now drops any planned later
    assert history.energy_ws(50, 250) == 50 * 10 + 50 * 20 + 100 * 5
    history.forget_before(160)
    assert [start for start, _ in history.entries] == [150]


def test_deviation_runs_merge_only_consecutive_equal_half_hours() -> None:
    log = DeviationLog()
    for half_hour, energy in ((10, 0), (11, 0), (12, 5), (14, 5), (15, 5)):
        log.record(half_hour, energy)
    assert list(zip(log.firsts, log.counts, log.energies_ws, strict=True)) == [
        (10, 2, 0), (12, 1, 5), (14, 2, 5)]
    assert log.runs_between(11, 15) == [(11, 12, 0), (12, 13, 5), (14, 15, 5)]
    log.forget_before(13)
    assert list(log.firsts) == [14]


def test_register_snapshots_keep_the_newest_depth_entries() -> None:
    snapshots = RegisterSnapshots(depth=2)
    snapshots.record(1 * DAY, {0: 5})
    snapshots.record(2 * DAY, {0: 6, 4: 1})
    snapshots.record(3 * DAY, {0: 7, 4: 2})
    assert snapshots.entries() == [(2 * DAY, {0: 6, 4: 1}), (3 * DAY, {0: 7, 4: 2})]


def test_prepayment_daily_log_is_a_ring_of_the_newest_31_midnights() -> None:
    log = PrepaymentDailyLog()
    for day in range(40):
        log.record(day * DAY, [day, -day, 0, 1, 2, 3])
    entries = log.entries()
    assert len(entries) == 31
    assert entries[0] == (9 * DAY, {
        "meter_balance_pence": 9, "emergency_credit_balance_pence": -9,
        "accumulated_debt_pence": 0, "payment_debt_pence": 1, "time_debt_1_pence": 2,
        "time_debt_2_pence": 3})
    assert entries[-1][0] == 39 * DAY
    assert len(log.ring) == 31 * 7
