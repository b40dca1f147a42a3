"""Metrology: what a simulated load and a tariff cost, in exact integers.

Energy is integer watt-seconds (joules); money is integer pence, with any sub-penny remainder
kept privately in *cost units* of 1/10_800_000_000 penny (the least common multiple of the
per-kWh and per-day denominators), so no money is created or lost by rounding: over any run,
the pence debited equal the exact cost rounded down, however time is stepped.

This module must never use floats, read a clock or touch meter registers.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "COST_UNITS_PER_PENNY",
    "SECONDS_PER_DAY",
    "UNITS_PER_SECOND_PER_MILLIPENCE_PER_DAY",
    "UNITS_PER_WS_PER_MILLIPENCE_PER_KWH",
    "CostAccumulator",
    "LoadProfile",
    "Tariff",
]

SECONDS_PER_DAY = 86_400
#: 1 penny in cost units: lcm(3_600_000 J/kWh x 1000 millipence/p, 86_400 s/day x 1000 mp/p).
COST_UNITS_PER_PENNY = 10_800_000_000
#: Cost units per watt-second at 1 millipence per kWh, and per second at 1 millipence per day.
UNITS_PER_WS_PER_MILLIPENCE_PER_KWH = COST_UNITS_PER_PENNY // 3_600_000_000  # 3
UNITS_PER_SECOND_PER_MILLIPENCE_PER_DAY = COST_UNITS_PER_PENNY // 86_400_000  # 125


@dataclass(frozen=True)
class Tariff:
    """A unit rate and a standing charge in millipence (1/1000 penny), so 24.567 p/kWh is
    expressible exactly as 24567."""

    unit_rate_millipence_per_kwh: int
    standing_charge_millipence_per_day: int

    def __post_init__(self) -> None:
        if self.unit_rate_millipence_per_kwh < 0 or self.standing_charge_millipence_per_day < 0:
            raise ValueError("tariff rates must not be negative")

    def cost_units(self, energy_ws: int, seconds: int) -> int:
        """Cost of ``energy_ws`` watt-seconds plus ``seconds`` of standing charge, in cost
        units (1/COST_UNITS_PER_PENNY penny)."""
        return (energy_ws * self.unit_rate_millipence_per_kwh * UNITS_PER_WS_PER_MILLIPENCE_PER_KWH
                + seconds * self.standing_charge_millipence_per_day
                * UNITS_PER_SECOND_PER_MILLIPENCE_PER_DAY)


@dataclass(frozen=True)
class LoadProfile:
    """A daily load shape: ``(start_second_of_day, load_w)`` segments, in UTC.

    Each segment runs from its start to the next segment's start; the last one runs on past
    midnight until the first start of the next day. A single segment is a constant load.
    """

    segments: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        if not self.segments:
            raise ValueError("a load profile needs at least one (start_second_of_day, load_w)")
        starts = [start for start, _ in self.segments]
        if starts != sorted(set(starts)):
            raise ValueError("load profile starts must be strictly increasing")
        for start, load_w in self.segments:
            if not 0 <= start < SECONDS_PER_DAY:
                raise ValueError(f"load profile start {start} s is outside 0..86399")
            if load_w < 0:
                raise ValueError(f"load {load_w} W must not be negative")

    @property
    def is_constant(self) -> bool:
        return len(self.segments) == 1

    def load_w_at(self, device_time_seconds: int) -> int:
        """The load in force during the second starting at ``device_time_seconds``."""
        second_of_day = device_time_seconds % SECONDS_PER_DAY
        load_w = self.segments[-1][1]
        for start, segment_load_w in self.segments:
            if start > second_of_day:
                break
            load_w = segment_load_w
        return load_w

    def next_change_after(self, device_time_seconds: int) -> int | None:
        """The first segment start strictly after ``device_time_seconds`` (None if constant)."""
        if self.is_constant:
            return None
        day_start = device_time_seconds - device_time_seconds % SECONDS_PER_DAY
        second_of_day = device_time_seconds - day_start
        for start, _ in self.segments:
            if start > second_of_day:
                return day_start + start
        return day_start + SECONDS_PER_DAY + self.segments[0][0]

    def energy_ws(self, from_seconds: int, to_seconds: int) -> int:
        """Energy drawn over ``[from_seconds, to_seconds)``, crossing segments as needed."""
        energy_ws = 0
        now = from_seconds
        while now < to_seconds:
            change = self.next_change_after(now)
            end = to_seconds if change is None else min(change, to_seconds)
            energy_ws += self.load_w_at(now) * (end - now)
            now = end
        return energy_ws


class CostAccumulator:
    """Turns cost units into whole pence, keeping the remainder below one penny."""

    __slots__ = ("remainder_units",)

    def __init__(self, remainder_units: int = 0) -> None:
        if not 0 <= remainder_units < COST_UNITS_PER_PENNY:
            raise ValueError(
                f"remainder {remainder_units} is outside 0..{COST_UNITS_PER_PENNY - 1}")
        self.remainder_units = remainder_units

    def add(self, cost_units: int) -> int:
        """Add ``cost_units``; return the whole pence now due (the rest is kept)."""
        pence, self.remainder_units = divmod(self.remainder_units + cost_units,
                                             COST_UNITS_PER_PENNY)
        return pence

    def seconds_until_pence(self, pence_needed: int, units_per_second: int) -> int | None:
        """Whole seconds at ``units_per_second`` until ``pence_needed`` pence are due
        (0 if already due, None if never)."""
        units_needed = pence_needed * COST_UNITS_PER_PENNY - self.remainder_units
        if units_needed <= 0:
            return 0
        if units_per_second <= 0:
            return None
        return -(-units_needed // units_per_second)
