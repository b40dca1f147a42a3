"""Load models: exact energy over any interval, seeded shapes as pure functions, CSV replay."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.metrology.load_model import (
    HalfHourShape,
    LoadModelError,
    SeededShape,
    constant_load,
    read_half_hour_csv,
)

HH = 1_800
DAY = 86_400
SHAPE = tuple(100 * (i % 7) for i in range(48))


def brute_force_energy_ws(model, from_seconds: int, to_seconds: int) -> int:
    return sum(model.load_w_at(t) for t in range(from_seconds, to_seconds))


def test_constant_load_draws_load_times_seconds() -> None:
    assert constant_load(750).energy_ws(10, 3_610) == 750 * 3_600


def test_half_hour_shape_repeats_daily() -> None:
    shape = HalfHourShape(SHAPE)
    assert shape.load_w_at(0) == 0
    assert shape.load_w_at(HH) == 100
    assert shape.load_w_at(DAY + 6 * HH + 5) == 600
    assert shape.energy_ws(0, DAY) == sum(SHAPE) * HH
    assert shape.energy_ws(HH - 10, HH + 10) == 0 * 10 + 100 * 10
    assert shape.next_change_after(0) == HH


@settings(max_examples=60, deadline=None)
@given(start=st.integers(0, 3 * DAY), length=st.integers(0, 3 * HH + 7),
       seed=st.integers(0, 2**64 - 1))
def test_energy_over_any_interval_equals_the_sum_of_its_seconds(
        start: int, length: int, seed: int) -> None:
    for model in (HalfHourShape(SHAPE), SeededShape(SHAPE, seed, 30)):
        assert model.energy_ws(start, start + length) == brute_force_energy_ws(
            model, start, start + length)


@settings(max_examples=40, deadline=None)
@given(start=st.integers(0, 400 * DAY), days=st.integers(0, 40), cut=st.integers(1, DAY))
def test_energy_is_additive_over_long_intervals(start: int, days: int, cut: int) -> None:
    shape = HalfHourShape(SHAPE)
    end = start + days * DAY + cut
    middle = start + cut
    assert shape.energy_ws(start, end) == (shape.energy_ws(start, middle)
                                           + shape.energy_ws(middle, end))


def test_seeded_shape_is_a_pure_function_of_seed_and_half_hour() -> None:
    first = SeededShape(SHAPE, seed=42, spread_percent=20)
    again = SeededShape(SHAPE, seed=42, spread_percent=20)
    other = SeededShape(SHAPE, seed=43, spread_percent=20)
    half_hours = range(20_000, 20_480)
    assert [first.half_hour_load_w(h) for h in half_hours] == [
        again.half_hour_load_w(h) for h in reversed(half_hours)][::-1]
    assert [first.half_hour_load_w(h) for h in half_hours] != [
        other.half_hour_load_w(h) for h in half_hours]
    for h in half_hours:
        base = SHAPE[h % 48]
        assert base * 80 // 100 <= first.half_hour_load_w(h) <= base * 120 // 100
    assert SeededShape(SHAPE, 7, 0).half_hour_load_w(12_345) == SHAPE[12_345 % 48]


def test_seeded_shape_values_are_stable_across_releases() -> None:
    # computed by hand with hashlib.blake2b(h as 8 bytes LE, key=seed as 8 bytes LE, 8-byte
    # digest) % 101 - 50 percent: a change here changes every seeded fleet
    model = SeededShape(tuple([1_000] * 48), seed=1, spread_percent=50)
    assert [model.half_hour_load_w(h) for h in range(4)] == [590, 730, 1_320, 510]


def test_shapes_refuse_wrong_lengths_and_negative_loads() -> None:
    with pytest.raises(LoadModelError, match="48 half-hour loads, not 47"):
        HalfHourShape(SHAPE[:47])
    with pytest.raises(LoadModelError, match="non-negative"):
        HalfHourShape((-1, *SHAPE[1:]))
    with pytest.raises(LoadModelError, match="spread_percent"):
        SeededShape(SHAPE, 1, 101)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "load.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_replayed_csv_gives_each_half_hour_its_energy_and_repeats(tmp_path: Path) -> None:
    path = write(tmp_path, "start,energy_wh\n2024-01-01T00:00:00Z,100\n"
                           "2024-01-01T00:30:00Z,250\n2024-01-01T01:00:00Z,0\n")
    model = read_half_hour_csv(path)
    t0 = 1_704_067_200
    assert model.load_w_at(t0) == 200  # 100 Wh in 1800 s is 200 W
    assert model.energy_ws(t0, t0 + 3 * HH) == (100 + 250) * 3_600
    assert model.load_w_at(t0 + 3 * HH) == 200  # the replay starts over
    assert model.load_w_at(t0 - HH) == 0  # and runs backwards cyclically too
    assert model.energy_ws(t0, t0 + 300 * HH) == 100 * (100 + 250) * 3_600
    assert model.energy_ws(t0 + 5, t0 + 300 * HH + 17) == brute_force_energy_ws(
        model, t0 + 5, t0 + 300 * HH + 17)


@pytest.mark.parametrize(("text", "message"), [
    ("when,wh\n", r"load\.csv:1: the header must be 'start,energy_wh'"),
    ("start,energy_wh\n2024-01-01T00:00:00Z,1\n2024-01-01T01:00:00Z,1\n",
     r"load\.csv:3: start '2024-01-01T01:00:00Z' does not follow"),
    ("start,energy_wh\n2024-01-01T00:10:00Z,1\n", r"load\.csv:2: .* not on a half-hour"),
    ("start,energy_wh\n2024-01-01T00:00:00,1\n", r"load\.csv:2: .* must be in UTC"),
    ("start,energy_wh\n2024-01-01T00:00:00Z,1.5\n", r"load\.csv:2: energy_wh '1\.5'"),
    ("start,energy_wh\n2024-01-01T00:00:00Z,-3\n", r"load\.csv:2: energy_wh '-3'"),
    ("start,energy_wh\nyesterday,3\n", r"load\.csv:2: start 'yesterday' is not an ISO 8601"),
    ("start,energy_wh\n2024-01-01T00:00:00Z\n", r"load\.csv:2: expected 2 fields"),
    ("start,energy_wh\n", r"load\.csv: no half-hour rows"),
])
def test_bad_csv_is_refused_naming_file_and_line(tmp_path: Path, text: str,
                                                  message: str) -> None:
    with pytest.raises(LoadModelError, match=message):
        read_half_hour_csv(write(tmp_path, text))


def test_missing_csv_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LoadModelError, match=r"nothing\.csv: cannot read"):
        read_half_hour_csv(tmp_path / "nothing.csv")
