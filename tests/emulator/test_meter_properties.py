"""Properties of the meter over long runs: exact consumption whatever the step pattern, and
the same final state whether time is advanced in one step or many."""

from __future__ import annotations

from fractions import Fraction
from itertools import pairwise
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from emulator.meter import Meter
from emulator.meter_config import MeterConfig
from emulator.state_codecs import encode_meter_registers
from protocol.apdu import DeviceType

EUI = bytes.fromhex("00DB1234567890A0")
DAY = 86_400
START = 1_767_225_600  # 2026-01-01T00:00:00Z

tariffs = st.tuples(st.integers(0, 99_999), st.integers(0, 199_999))
profiles = st.lists(st.tuples(st.integers(0, DAY - 1), st.integers(0, 15_000)), min_size=1,
                    max_size=4, unique_by=lambda pair: pair[0]).map(sorted)
step_patterns = st.lists(st.integers(1, 3 * DAY), min_size=1, max_size=25)


def independent_energy_ws(segments: list[tuple[int, int]], start: int, end: int) -> int:
    """Energy by summing every piece between segment starts, day by day."""
    first_day = start // DAY
    edges = {start, end}
    for day in range(first_day, end // DAY + 2):
        edges.update(day * DAY + s for s, _ in segments)
    points = sorted(e for e in edges if start <= e <= end)
    energy = 0
    for left, right in pairwise(points):
        second_of_day = left % DAY
        running = [w for s, w in segments if s <= second_of_day]
        load_w = running[-1] if running else segments[-1][1]
        energy += load_w * (right - left)
    return energy


def meter_from(table: dict[str, Any], start: int) -> Meter:
    return Meter(MeterConfig.from_mapping(table, eui64=EUI,
                                          device_type=DeviceType.ELECTRICITY_METER), start)


@settings(max_examples=120, deadline=None)
@given(tariff=tariffs, segments=profiles, offset=st.integers(0, 7 * DAY), steps=step_patterns)
def test_meter_consumption_debits_exact_cost_rounded_down_over_any_step_pattern(
        tariff: tuple[int, int], segments: list[tuple[int, int]], offset: int,
        steps: list[int]) -> None:
    unit_rate, standing = tariff
    start = START + offset
    meter = meter_from({"unit_rate_millipence_per_kwh": unit_rate,
                        "standing_charge_millipence_per_day": standing,
                        "load_profile": [list(pair) for pair in segments]}, start)
    now = start
    for step in steps:
        now += step
        meter.advance_to(now)
    energy_ws = independent_energy_ws(segments, start, now)
    exact_pence = (Fraction(energy_ws * unit_rate, 3_600_000 * 1_000)
                   + Fraction((now - start) * standing, DAY * 1_000))
    assert meter.registers.consumption_debited_pence == exact_pence.numerator // (
        exact_pence.denominator)
    assert meter.registers.meter_balance_pence == -meter.registers.consumption_debited_pence


@settings(max_examples=150, deadline=None)
@example(tariff=(0, 19_763), segments=[(0, 1)], balance_pence=0, threshold_pence=0,
         calendar_id=0, time_debt=(0, 0, 1), cap_pence=0, load_limit=(0, 30, 30), offset=0,
         steps=[4_372, 1])  # found when credit crossing was not an event of its own
@given(
    tariff=tariffs,
    segments=profiles,
    balance_pence=st.integers(-50, 400),
    threshold_pence=st.integers(-100, 100),
    calendar_id=st.sampled_from([0, 1]),
    time_debt=st.tuples(st.integers(0, 500), st.sampled_from([0, 0, 7, 40]),
                        st.sampled_from([1, 2])),
    cap_pence=st.integers(0, 60),
    load_limit=st.tuples(st.sampled_from([0, 0, 2_000, 9_000]), st.integers(30, 3_600),
                         st.integers(30, 3_600)),
    offset=st.integers(0, 7 * DAY),
    steps=step_patterns,
)
def test_prepayment_meter_ends_in_the_same_state_whether_advanced_in_one_step_or_many(
        tariff: tuple[int, int], segments: list[tuple[int, int]], balance_pence: int,
        threshold_pence: int, calendar_id: int, time_debt: tuple[int, int, int],
        cap_pence: int, load_limit: tuple[int, int, int], offset: int,
        steps: list[int]) -> None:
    table = {
        "payment_mode": "prepayment",
        "meter_balance_pence": balance_pence,
        "disablement_threshold_pence": threshold_pence,
        "non_disablement_calendar_id": calendar_id,
        "unit_rate_millipence_per_kwh": tariff[0],
        "standing_charge_millipence_per_day": tariff[1],
        "load_profile": [list(pair) for pair in segments],
        "time_debt_1_pence": time_debt[0],
        "time_debt_1_recovery_rate_pence": time_debt[1],
        "time_debt_1_recovery_period": time_debt[2],
        "debt_recovery_rate_cap_pence": cap_pence,
        "load_limit_power_threshold_w": load_limit[0],
        "load_limit_period_seconds": load_limit[1],
        "load_limit_restoration_period_seconds": load_limit[2],
    }
    start = START + offset
    stepped = meter_from(table, start)
    now = start
    for step in steps:
        now += step
        stepped.advance_to(now)
    one_step = meter_from(table, start)
    one_step.advance_to(now)
    assert encode_meter_registers(stepped.registers) == encode_meter_registers(one_step.registers)
