"""The network voltage model (SR 4.10): a pure function of (seed, period), within the spread
around the nominal voltage, thresholds strict; bad models refused."""

from __future__ import annotations

import pytest

from emulator.metrology.voltage import VoltageModel, VoltageModelError

PERIOD_2026 = 1_767_225_600 // 1_800  # the half-hour starting 2026-01-01T00:00Z


def test_the_same_seed_and_period_always_give_the_same_voltage() -> None:
    first = [VoltageModel(seed=7).average_rms_decivolts(PERIOD_2026 + n) for n in range(4)]
    again = [VoltageModel(seed=7).average_rms_decivolts(PERIOD_2026 + n) for n in range(4)]
    assert first == again == [2_342, 2_232, 2_250, 2_357]


def test_another_seed_gives_other_voltages() -> None:
    assert [VoltageModel(seed=8).average_rms_decivolts(PERIOD_2026 + n) for n in range(4)] != [
        2_342, 2_232, 2_250, 2_357]


def test_voltages_stay_within_the_spread_and_reach_both_ends() -> None:
    model = VoltageModel(nominal_decivolts=2_300, spread_decivolts=3, seed=1)
    seen = {model.average_rms_decivolts(period) for period in range(-500, 500)}
    assert seen == {2_297, 2_298, 2_299, 2_300, 2_301, 2_302, 2_303}


def test_no_spread_gives_the_nominal_voltage() -> None:
    model = VoltageModel(nominal_decivolts=2_400, spread_decivolts=0, seed=99)
    assert {model.average_rms_decivolts(period) for period in range(100)} == {2_400}


def test_thresholds_are_strict() -> None:
    model = VoltageModel(over_threshold_decivolts=2_530, under_threshold_decivolts=2_162)
    assert (model.is_over_voltage(2_530), model.is_over_voltage(2_531)) == (False, True)
    assert (model.is_under_voltage(2_162), model.is_under_voltage(2_161)) == (False, True)


@pytest.mark.parametrize("values", [
    {"spread_decivolts": 2_301},
    {"spread_decivolts": -1},
    {"nominal_decivolts": 65_000, "spread_decivolts": 600},
    {"seed": -1},
    {"seed": 2**64},
    {"over_threshold_decivolts": 2_100, "under_threshold_decivolts": 2_200},
])
def test_a_model_that_cannot_be_reported_is_refused(values: dict[str, int]) -> None:
    with pytest.raises(VoltageModelError):
        VoltageModel(**values)
