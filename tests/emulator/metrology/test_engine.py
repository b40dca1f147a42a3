"""The metrology engine: cost debited always equals the tariff applied to the energy
registered, rounded down with the remainder kept, for any steps and tariff changes."""

from __future__ import annotations

import itertools
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.consumption import LoadProfile
from emulator.metrology.engine import Metrology, gas_dm3
from emulator.metrology.load_model import HalfHourShape, SeededShape, constant_load
from emulator.metrology.tariff import (
    PendingChange,
    Prices,
    SwitchingTable,
    Tariff,
    TariffTimeline,
)

DAY = 86_400
HOUR = 3_600
HH = 1_800
MONDAY = 1_704_067_200  # 2024-01-01T00:00Z
BLOCKS = 4  # register cell = band x 4 + block


@st.composite
def tariffs(draw: st.DrawFn) -> Tariff:
    bands = draw(st.integers(1, 3))
    block_counts = [draw(st.integers(1, 3)) for _ in range(bands)]
    prices = Prices(tuple(tuple(draw(st.integers(0, 60_000)) for _ in range(n))
                          for n in block_counts), draw(st.integers(0, 90_000)))
    thresholds = tuple(tuple(sorted(draw(st.sets(st.integers(1, 3_000), min_size=n - 1,
                                                 max_size=n - 1))))
                       for n in block_counts)
    profiles = []
    for _ in range(draw(st.integers(1, 2))):
        starts = sorted(draw(st.sets(st.integers(1, DAY - 1), max_size=4)))
        profiles.append(((0, draw(st.integers(0, bands - 1))),
                         *((s, draw(st.integers(0, bands - 1))) for s in starts)))
    week = tuple(draw(st.integers(0, len(profiles) - 1)) for _ in range(7))
    return Tariff(prices, SwitchingTable(tuple(profiles), week), thresholds,
                  draw(st.sampled_from((HH, HOUR, DAY))))


@st.composite
def changes(draw: st.DrawFn, start: int, horizon: int, tariff: Tariff) -> list[PendingChange]:
    """Whole tariffs, and new prices shaped like ``tariff``'s (they may no longer fit if a
    whole tariff comes first)."""
    result = []
    for _ in range(draw(st.integers(0, 3))):
        when = draw(st.integers(start, start + horizon))
        if draw(st.booleans()):
            result.append(PendingChange(when, tariff=draw(tariffs())))
        else:
            result.append(PendingChange(when, prices=Prices(
                tuple(tuple(draw(st.integers(0, 60_000)) for _ in band)
                      for band in tariff.prices.block_prices_millipence_per_kwh),
                draw(st.integers(0, 90_000)))))
    return result


def prices_fit(tariff: Tariff, prices: Prices) -> bool:
    try:
        tariff.with_prices(prices)
    except ValueError:
        return False
    return True


def reference_run(start: int, tariff: Tariff, pending: list[PendingChange], model,
                  steps: list[tuple[int, bool]]) -> tuple[Fraction, dict[int, int]]:
    """Second by second, written independently of the engine: exact cost (pence, a
    Fraction) and energy per cell."""
    pending = sorted(pending, key=lambda change: change.effective_seconds)
    cells: dict[int, int] = {}
    used: dict[int, int] = {}
    period = None
    energy_price_sum = 0  # Ws x millipence/kWh
    standing_sum = 0  # s x millipence/day
    now = start
    for length, enabled in steps:
        for t in range(now, now + length):
            while pending and pending[0].effective_seconds <= t:
                change = pending.pop(0)
                if change.tariff is not None:  # a new tariff restarts the block counters
                    tariff = change.tariff
                    used = {}
                elif prices_fit(tariff, change.prices):  # prices that do not fit: dropped
                    tariff = tariff.with_prices(change.prices)
            if t // tariff.block_period_seconds != period:
                period = t // tariff.block_period_seconds
                used = {}
            standing_sum += tariff.prices.standing_charge_millipence_per_day
            energy = model.load_w_at(t) if enabled else 0
            band = tariff.switching.band_at(t)
            low = used.get(band, 0)
            used[band] = low + energy
            edges = [0, *(wh * 3_600 for wh in tariff.block_thresholds_wh[band]), None]
            for block, price in enumerate(
                    tariff.prices.block_prices_millipence_per_kwh[band]):
                bottom, top = edges[block], edges[block + 1]
                piece = max(0, (low + energy if top is None else min(low + energy, top))
                            - max(low, bottom))
                if piece:
                    cells[band * BLOCKS + block] = cells.get(band * BLOCKS + block, 0) + piece
                    energy_price_sum += piece * price
        now += length
    exact = (Fraction(energy_price_sum, 3_600_000 * 1_000)
             + Fraction(standing_sum, DAY * 1_000))
    return exact, cells


def run_engine(start: int, tariff: Tariff, pending: list[PendingChange], model,
               steps: list[tuple[int, bool]]) -> tuple[Metrology, int]:
    metrology = Metrology.start(start, TariffTimeline(tariff), model)
    for change in pending:
        metrology.schedule(change)
    pence = 0
    for length, enabled in steps:
        pence += metrology.accrue(metrology.now_seconds + length, enabled)
    return metrology, pence


loads = st.one_of(
    st.integers(0, 9_000).map(constant_load),
    st.lists(st.tuples(st.integers(0, DAY - 1), st.integers(0, 9_000)), min_size=1,
             max_size=4, unique_by=lambda pair: pair[0]).map(
        lambda segments: LoadProfile(tuple(sorted(segments)))),
    st.integers(0, 2**64 - 1).map(
        lambda seed: SeededShape(tuple(range(0, 4_800, 100)), seed, 40)),
)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), start=st.integers(MONDAY, MONDAY + 7 * DAY), tariff=tariffs(),
       model=loads,
       steps=st.lists(st.tuples(st.integers(1, 3 * HOUR), st.booleans()), min_size=1,
                      max_size=6))
def test_cost_debited_is_the_tariff_applied_to_the_energy_registered(
        data: st.DataObject, start: int, tariff: Tariff, model,
        steps: list[tuple[int, bool]]) -> None:
    horizon = sum(length for length, _ in steps)
    pending = data.draw(changes(start, horizon, tariff))
    exact_pence, cells = reference_run(start, tariff, pending, model, steps)
    metrology, pence = run_engine(start, tariff, pending, model, steps)
    assert metrology.registers.cells_ws == cells
    assert metrology.registers.total_ws == sum(cells.values())
    assert pence == exact_pence.numerator // exact_pence.denominator
    assert Fraction(metrology.accumulator.remainder_units, 10_800_000_000) == (
        exact_pence - pence)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), start=st.integers(MONDAY, MONDAY + 7 * DAY), tariff=tariffs(),
       model=loads, cuts=st.lists(st.integers(1, 40 * DAY), max_size=25))
def test_one_big_step_equals_many_small_steps(data: st.DataObject, start: int,
                                              tariff: Tariff, model, cuts: list[int]) -> None:
    horizon = 40 * DAY
    pending = data.draw(changes(start, horizon, tariff))
    bounds = sorted({0, *cuts, horizon})
    small_steps = [(b - a, True) for a, b in itertools.pairwise(bounds)]
    big, big_pence = run_engine(start, tariff, pending, model, [(horizon, True)])
    small, small_pence = run_engine(start, tariff, pending, model, small_steps)
    assert small_pence == big_pence
    assert small.accumulator.remainder_units == big.accumulator.remainder_units
    assert small.registers == big.registers
    assert small.max_demand == big.max_demand
    assert small.deviations == big.deviations
    assert small.snapshots == big.snapshots


def test_economy_7_registers_night_and_day_energy_in_their_bands() -> None:
    e7 = Tariff(Prices(((10_000,), (30_000,)), 0), SwitchingTable(
        (((0, 0), (7 * HOUR, 1), (23 * HOUR, 0)),), (0,) * 7))
    metrology = Metrology.start(MONDAY, TariffTimeline(e7), constant_load(1_000))
    pence = metrology.accrue(MONDAY + DAY, True)
    assert metrology.tou_registers() == {0: 8_000, 1: 16_000}  # Wh
    assert pence == 8 * 10 + 16 * 30  # 8 kWh at 10 p + 16 kWh at 30 p
    assert metrology.next_change_after(True) == MONDAY + DAY + 7 * HOUR


def test_block_counters_fill_block_1_then_block_2_each_block_period() -> None:
    blocks = Tariff(Prices(((10_000, 20_000),), 0), block_thresholds_wh=((1_500,),))
    metrology = Metrology.start(MONDAY, TariffTimeline(blocks), constant_load(1_000))
    assert metrology.next_change_after(True) == MONDAY + 5_400  # 1.5 kWh at 1 kW
    pence = metrology.accrue(MONDAY + 2 * DAY, True)
    assert metrology.block_registers() == {0: 3_000, 1: 45_000}
    assert pence == 2 * (15 + 450)  # per day: 1.5 kWh at 10 p + 22.5 kWh at 20 p


def test_gas_registers_show_dm3_from_energy() -> None:
    metrology = Metrology.start(MONDAY, TariffTimeline(Tariff.flat(0, 0)),
                                constant_load(1_000), register_unit=gas_dm3)
    metrology.accrue(MONDAY + 1_000 * HOUR, True)  # 1000 kWh
    # 1000 kWh / (1.02264 x 39.5 MJ/m3 / 3.6) = 89.121.. m3
    assert metrology.total_register() == 89_121


def test_standing_charge_runs_while_supply_is_off_but_no_energy_registers() -> None:
    metrology = Metrology.start(MONDAY, TariffTimeline(Tariff.flat(24_500, 53_000)),
                                constant_load(2_000))
    assert metrology.accrue(MONDAY + DAY, False) == 53
    assert metrology.registers.total_ws == 0
    assert metrology.units_per_second(False) == 53_000 * 125
    assert metrology.units_per_second(True) == 53_000 * 125 + 2_000 * 24_500 * 3


def test_max_demand_keeps_the_highest_half_hour_and_resets() -> None:
    shape = HalfHourShape(tuple(1_000 + 10 * i for i in range(48)))
    metrology = Metrology.start(MONDAY, TariffTimeline(Tariff.flat(0, 0)), shape)
    metrology.accrue(MONDAY + DAY + 10, True)
    assert metrology.max_demand.active.value_w == 1_470
    assert metrology.max_demand.active.capture_seconds == MONDAY + DAY
    metrology.reset_max_demand()
    assert metrology.max_demand.active.value_w == 0
    assert metrology.max_demand.active.last_reset_seconds == MONDAY + DAY + 10
    metrology.accrue(MONDAY + DAY + HOUR, True)  # two more half-hours: 1000 W, 1010 W
    assert metrology.max_demand.active.value_w == 1_010
    assert metrology.max_demand.active.capture_seconds == MONDAY + DAY + HOUR
