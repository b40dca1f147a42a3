"""Metrology: bytes per meter after 13 months, and the time to advance and to read its logs.

- ``bytes per meter``: tracemalloc's traced memory held by 10 meters (a
  :class:`emulator.metrology.engine.Metrology` and a
  :class:`emulator.metrology.logs.PrepaymentDailyLog` each, written every midnight), after
  397 days of device time, divided by 10. The tariff and the 48-value shape are shared, as a
  fleet built from one profile shares them. Three load patterns: a seeded shape with the
  supply always on (the common case: no half-hour is stored), the same with the supply off for
  one hour every day (three half-hours stored per day: two partial, one off), and a constant load.
  Printed with ``-s`` and kept in each result's ``extra_info``.
- ``whole meter``: the same for 10 whole prepayment :class:`emulator.meter.Meter` objects
  built from one profile table (Economy 7, seeded shape).
- ``advance``: one meter through 397 days in one step (19,056 half-hours closed).
- ``profile read``: the whole 13-month half-hour profile (19,056 values) of such a meter.
- ``consumption read``: the 731-day daily consumption log of a meter that has run 740 days.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from emulator.metrology.engine import Metrology
from emulator.metrology.load_model import LoadModel, SeededShape, constant_load
from emulator.metrology.logs import PrepaymentDailyLog
from emulator.metrology.tariff import Prices, SwitchingTable, Tariff, TariffTimeline

DAY = 86_400
HOUR = 3_600
T0 = 1_704_067_200  # 2024-01-01T00:00Z
RUN_DAYS = 397
METERS = 10
SHAPE = tuple(300 + (1_200 if 34 <= i < 44 else 0) + 10 * i for i in range(48))
ECONOMY_7 = TariffTimeline(Tariff(Prices(((15_000,), (32_000,)), 53_000), SwitchingTable(
    (((0, 0), (7 * HOUR, 1), (23 * HOUR, 0)),), (0,) * 7)))


def run_days(metrology: Metrology, log: PrepaymentDailyLog, days: int,
             off_hour_daily: bool) -> None:
    for day in range(days):
        midnight = T0 + day * DAY
        if off_hour_daily:
            metrology.accrue(midnight + 17 * HOUR + 600, True)
            metrology.accrue(midnight + 18 * HOUR + 600, False)
        metrology.accrue(midnight + DAY, True)
        log.record(midnight + DAY, [day, 0, 0, 0, 0, 0])


MODELS: dict[str, Callable[[int], LoadModel]] = {
    "seeded shape": lambda seed: SeededShape(SHAPE, seed, 20),
    "constant": lambda seed: constant_load(400 + seed),
}


@pytest.mark.parametrize(("model_name", "off_hour_daily", "bound_bytes"), [
    ("seeded shape", False, 8_000), ("seeded shape", True, 32_000), ("constant", False, 8_000)])
def test_bytes_per_meter_after_13_months(record_environment: BenchmarkFixture,
                                         model_name: str, off_hour_daily: bool,
                                         bound_bytes: int) -> None:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    meters = []
    for seed in range(METERS):
        metrology = Metrology.start(T0, ECONOMY_7, MODELS[model_name](seed))
        log = PrepaymentDailyLog()
        run_days(metrology, log, RUN_DAYS, off_hour_daily)
        meters.append((metrology, log))
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    bytes_per_meter = held // METERS
    record_environment.extra_info["bytes_per_meter"] = bytes_per_meter
    print(f"\n{model_name}, supply off 1 h daily={off_hour_daily}: "
          f"{bytes_per_meter} bytes per meter after {RUN_DAYS} days")
    record_environment.pedantic(lambda: None, rounds=1)
    metrology = meters[0][0]
    assert len(metrology.half_hour_profile(0, 10**9)) == RUN_DAYS * 48
    assert len(metrology.deviations.firsts) == (3 * RUN_DAYS if off_hour_daily else 0)
    assert bytes_per_meter < bound_bytes


def test_advance_13_months_in_one_step(record_environment: BenchmarkFixture) -> None:
    def advance() -> Metrology:
        metrology = Metrology.start(T0, ECONOMY_7, SeededShape(SHAPE, 1, 20))
        metrology.accrue(T0 + RUN_DAYS * DAY, True)
        return metrology

    metrology = record_environment.pedantic(advance, rounds=3)
    assert len(metrology.snapshots.days) == 31


def test_read_13_month_half_hour_profile(record_environment: BenchmarkFixture) -> None:
    metrology = Metrology.start(T0, ECONOMY_7, SeededShape(SHAPE, 1, 20))
    run_days(metrology, PrepaymentDailyLog(), RUN_DAYS, True)
    profile = record_environment.pedantic(
        lambda: metrology.half_hour_profile(0, 10**9), rounds=5)
    assert len(profile) == 19_056
    assert sum(value for _, value in profile) == metrology.total_register()


def test_read_731_day_consumption_log(record_environment: BenchmarkFixture) -> None:
    metrology = Metrology.start(T0, ECONOMY_7, SeededShape(SHAPE, 1, 20))
    metrology.accrue(T0 + 740 * DAY, True)
    daily = record_environment.pedantic(
        lambda: metrology.daily_consumption(0, 10**6), rounds=3)
    assert len(daily) == 731


def test_bytes_per_whole_prepayment_meter_after_13_months(
        record_environment: BenchmarkFixture) -> None:
    """The same measure for whole :class:`emulator.meter.Meter` objects (all registers, the
    metrology and the prepayment daily log written by the meter), prepayment, Economy 7 and a
    seeded shape from one profile table."""
    from emulator.meter import Meter, MeterConfig
    from protocol.apdu import DeviceType

    table = {"payment_mode": "prepayment", "meter_balance_pence": 2_000_000,
             "tariff_prices_millipence_per_kwh": [[15_000], [32_000]],
             "tariff_day_profiles": [[[0, 0], [7 * HOUR, 1], [23 * HOUR, 0]]],
             "load_shape_w": list(SHAPE), "load_spread_percent": 20}
    configs = [MeterConfig.from_mapping({**table, "load_seed": seed},
                                        eui64=seed.to_bytes(8, "big"),
                                        device_type=DeviceType.ELECTRICITY_METER)
               for seed in range(METERS)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    meters = []
    for config in configs:
        meter = Meter(config, T0)
        meter.advance_to(T0 + RUN_DAYS * DAY)
        meters.append(meter)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    bytes_per_meter = held // METERS
    record_environment.extra_info["bytes_per_meter"] = bytes_per_meter
    print(f"\nwhole prepayment Meter: {bytes_per_meter} bytes per meter after {RUN_DAYS} days")
    record_environment.pedantic(lambda: None, rounds=1)
    assert len(meters[0].registers.prepayment_daily_log.entries()) == 31
    assert bytes_per_meter < 16_000
