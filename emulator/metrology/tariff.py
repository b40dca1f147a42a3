"""Tariffs as a meter holds them: TOU switching in device time, blocks, prices, future changes.

A :class:`Tariff` is a :class:`SwitchingTable` (which TOU band is in force at each second of
device time: day profiles of band switch times, one day profile per weekday), block thresholds
per band (energy in the current block period), and :class:`Prices` (per band, one price per
block, and the standing charge). A flat tariff is one band with one block. A
:class:`TariffTimeline` holds the tariff in force and changes that take effect at future
device times (a whole new tariff, as SR 1.1.1, or new prices only, as SR 1.2.1).

Units (*decided*): prices in millipence per kWh and standing charge in millipence per day, as
:class:`emulator.consumption.Tariff` holds them; block thresholds in Wh; device time is UTC
(no daylight saving); block periods are aligned to multiples of ``block_period_seconds`` since
1970-01-01 (default one UTC day), and each band counts its own energy against its thresholds
(the DUIS electricity threshold matrix is per band); a new tariff taking effect restarts the
block counters, new prices alone do not. Converting DUIS price scales to
millipence belongs to ``protocol/s1sp/units.py``.

This module must never use floats, read a clock or hold register values.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, replace

from emulator.consumption import (
    SECONDS_PER_DAY,
    UNITS_PER_SECOND_PER_MILLIPENCE_PER_DAY,
    UNITS_PER_WS_PER_MILLIPENCE_PER_KWH,
)

__all__ = [
    "MAX_BLOCKS",
    "MAX_TOU_BANDS",
    "Prices",
    "SwitchingTable",
    "Tariff",
    "TariffTimeline",
    "day_of_week",
]

#: DUIS electricity: TOUPrice 1..48; BlockPrice 1..4 per band (3 thresholds).
MAX_TOU_BANDS = 48
MAX_BLOCKS = 4
WS_PER_WH = 3_600
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)


def day_of_week(device_time_seconds: int) -> int:
    """Monday 0 .. Sunday 6 of the UTC day holding ``device_time_seconds``."""
    return (device_time_seconds // SECONDS_PER_DAY + _EPOCH_WEEKDAY) % 7


@dataclass(frozen=True)
class Prices:
    """What a price change (SR 1.2.1) replaces: ``[band][block]`` unit prices and the
    standing charge."""

    block_prices_millipence_per_kwh: tuple[tuple[int, ...], ...]
    standing_charge_millipence_per_day: int

    def __post_init__(self) -> None:
        bands = self.block_prices_millipence_per_kwh
        if not 1 <= len(bands) <= MAX_TOU_BANDS:
            raise ValueError(f"a tariff has 1..{MAX_TOU_BANDS} TOU bands, not {len(bands)}")
        for band, prices in enumerate(bands):
            if not 1 <= len(prices) <= MAX_BLOCKS:
                raise ValueError(f"band {band} has {len(prices)} block prices, not 1..{MAX_BLOCKS}")
            if any(price < 0 for price in prices):
                raise ValueError(f"band {band}: prices must not be negative")
        if self.standing_charge_millipence_per_day < 0:
            raise ValueError("the standing charge must not be negative")

    @classmethod
    def flat(cls, unit_rate_millipence_per_kwh: int,
             standing_charge_millipence_per_day: int) -> Prices:
        return cls(((unit_rate_millipence_per_kwh,),), standing_charge_millipence_per_day)

    @property
    def standing_units_per_second(self) -> int:
        return self.standing_charge_millipence_per_day * UNITS_PER_SECOND_PER_MILLIPENCE_PER_DAY


@dataclass(frozen=True)
class SwitchingTable:
    """Which band is in force when: ``day_profiles[i]`` is ``((start_second_of_day, band),
    ...)`` with strictly increasing starts, the first at 0; ``week[d]`` names the day profile
    of weekday ``d`` (Monday 0)."""

    day_profiles: tuple[tuple[tuple[int, int], ...], ...] = (((0, 0),),)
    week: tuple[int, ...] = (0, 0, 0, 0, 0, 0, 0)

    def __post_init__(self) -> None:
        if len(self.week) != 7:
            raise ValueError("a week profile names exactly 7 day profiles")
        if not self.day_profiles:
            raise ValueError("a switching table needs at least one day profile")
        for index in self.week:
            if not 0 <= index < len(self.day_profiles):
                raise ValueError(f"week names day profile {index}, which does not exist")
        for number, profile in enumerate(self.day_profiles):
            starts = [start for start, _ in profile]
            if not profile or starts[0] != 0:
                raise ValueError(f"day profile {number} must start with a switch at 0 s")
            if starts != sorted(set(starts)) or starts[-1] >= SECONDS_PER_DAY:
                raise ValueError(f"day profile {number}: starts must increase within 0..86399")
            if any(not 0 <= band < MAX_TOU_BANDS for _, band in profile):
                raise ValueError(f"day profile {number}: bands are 0..{MAX_TOU_BANDS - 1}")

    @property
    def bands_used(self) -> frozenset[int]:
        return frozenset(band for profile in self.day_profiles for _, band in profile)

    def _profile_of_day(self, device_time_seconds: int) -> tuple[tuple[int, int], ...]:
        return self.day_profiles[self.week[day_of_week(device_time_seconds)]]

    def band_at(self, device_time_seconds: int) -> int:
        """The band in force during the second starting at ``device_time_seconds``."""
        profile = self._profile_of_day(device_time_seconds)
        second_of_day = device_time_seconds % SECONDS_PER_DAY
        index = bisect.bisect_right(profile, (second_of_day, MAX_TOU_BANDS)) - 1
        return profile[index][1]

    def next_switch_after(self, device_time_seconds: int) -> int | None:
        """The first time after ``device_time_seconds`` at which the band changes, or None
        when the table has one band."""
        if len(self.bands_used) == 1:
            return None
        band = self.band_at(device_time_seconds)
        day_start = device_time_seconds - device_time_seconds % SECONDS_PER_DAY
        second_of_day = device_time_seconds - day_start
        for days_ahead in range(8):
            start_of = day_start + days_ahead * SECONDS_PER_DAY
            for start, next_band in self._profile_of_day(start_of):
                if (days_ahead or start > second_of_day) and next_band != band:
                    return start_of + start
        return None  # unreachable: two bands in use means one switch within a week


@dataclass(frozen=True)
class Tariff:
    """A switching table, block thresholds per band (Wh, increasing, one fewer than that
    band's block prices), the block period, and the prices."""

    prices: Prices
    switching: SwitchingTable = SwitchingTable()
    block_thresholds_wh: tuple[tuple[int, ...], ...] = ()
    block_period_seconds: int = SECONDS_PER_DAY

    def __post_init__(self) -> None:
        bands = len(self.prices.block_prices_millipence_per_kwh)
        thresholds = self.block_thresholds_wh or ((),) * bands
        object.__setattr__(self, "block_thresholds_wh", thresholds)
        if len(thresholds) != bands:
            raise ValueError(f"{len(thresholds)} threshold rows for {bands} bands")
        for band, row in enumerate(thresholds):
            if len(row) != len(self.prices.block_prices_millipence_per_kwh[band]) - 1:
                raise ValueError(f"band {band}: a block tariff has one threshold fewer "
                                 "than block prices")
            if list(row) != sorted(set(row)) or any(t <= 0 for t in row):
                raise ValueError(f"band {band}: thresholds must be positive and increasing")
        if max(self.switching.bands_used) >= bands:
            raise ValueError(f"the switching table uses band {max(self.switching.bands_used)} "
                             f"but the prices have {bands} bands")
        if self.block_period_seconds <= 0:
            raise ValueError("the block period must be positive")

    @classmethod
    def flat(cls, unit_rate_millipence_per_kwh: int,
             standing_charge_millipence_per_day: int) -> Tariff:
        return cls(Prices.flat(unit_rate_millipence_per_kwh, standing_charge_millipence_per_day))

    @property
    def band_count(self) -> int:
        return len(self.prices.block_prices_millipence_per_kwh)

    @property
    def has_blocks(self) -> bool:
        return any(self.block_thresholds_wh)

    def with_prices(self, prices: Prices) -> Tariff:
        """This tariff with new prices (a price change keeps switching and thresholds)."""
        return replace(self, prices=prices)

    def block_period_start(self, device_time_seconds: int) -> int:
        return device_time_seconds - device_time_seconds % self.block_period_seconds

    def split_into_blocks(self, band: int, used_ws: int, energy_ws: int) -> list[int]:
        """``energy_ws`` drawn in ``band`` after ``used_ws`` this block period, split by block
        (watt-seconds per block, summing to ``energy_ws``)."""
        pieces = []
        low = used_ws
        high = used_ws + energy_ws
        for threshold_wh in self.block_thresholds_wh[band]:
            limit = threshold_wh * WS_PER_WH
            pieces.append(max(0, min(high, limit) - low))
            low = max(low, limit)
        pieces.append(max(0, high - low))
        return pieces

    def energy_cost_units(self, band: int, block_ws: list[int]) -> int:
        """Cost units of the per-block energies ``block_ws`` drawn in ``band``."""
        prices = self.prices.block_prices_millipence_per_kwh[band]
        return sum(ws * price for ws, price in zip(block_ws, prices, strict=True)) * (
            UNITS_PER_WS_PER_MILLIPENCE_PER_KWH)

    def units_per_second(self, band: int, used_ws: int, load_w: int) -> int:
        """Cost units per second at ``load_w`` in ``band`` with ``used_ws`` used this block
        period (the rate until the next band switch or block threshold)."""
        thresholds = self.block_thresholds_wh[band]
        block = bisect.bisect_right([t * WS_PER_WH for t in thresholds], used_ws)
        price = self.prices.block_prices_millipence_per_kwh[band][block]
        return (load_w * price * UNITS_PER_WS_PER_MILLIPENCE_PER_KWH
                + self.prices.standing_units_per_second)

    def next_threshold_ws(self, band: int, used_ws: int) -> int | None:
        """The next block threshold above ``used_ws`` in ``band`` (watt-seconds), or None."""
        for threshold_wh in self.block_thresholds_wh[band]:
            if threshold_wh * WS_PER_WH > used_ws:
                return threshold_wh * WS_PER_WH
        return None


@dataclass(frozen=True)
class PendingChange:
    """A change taking effect at ``effective_seconds``: a whole tariff, or prices only."""

    effective_seconds: int
    tariff: Tariff | None = None
    prices: Prices | None = None

    def __post_init__(self) -> None:
        if (self.tariff is None) == (self.prices is None):
            raise ValueError("a pending change carries a tariff or prices, not both or none")

    def applied_to(self, tariff: Tariff) -> Tariff:
        """The tariff after this change. Prices that do not fit the tariff in force when they
        take effect (another number of bands or blocks) are dropped (*decided*: passing time
        never fails; the S1SP checks a request against the tariff it knows)."""
        if self.tariff is not None:
            return self.tariff
        try:
            return tariff.with_prices(self.prices)
        except ValueError:
            return tariff


@dataclass(frozen=True)
class TariffTimeline:
    """The tariff in force and the changes still to come, in order of effective time."""

    current: Tariff
    pending: tuple[PendingChange, ...] = ()

    def schedule(self, change: PendingChange) -> TariffTimeline:
        """A timeline with ``change`` added (after others of the same effective time)."""
        changes = sorted((*self.pending, change), key=lambda c: c.effective_seconds)
        return replace(self, pending=tuple(changes))

    def cancel_pending(self) -> TariffTimeline:
        return replace(self, pending=())

    def next_change_after(self, device_time_seconds: int) -> int | None:
        for change in self.pending:
            if change.effective_seconds > device_time_seconds:
                return change.effective_seconds
        return None

    def at(self, device_time_seconds: int) -> TariffTimeline:
        """The timeline with every change effective at or before ``device_time_seconds``
        applied (the tariff in force during the second starting then)."""
        tariff = self.current
        rest = list(self.pending)
        while rest and rest[0].effective_seconds <= device_time_seconds:
            tariff = rest.pop(0).applied_to(tariff)
        if tariff is self.current and len(rest) == len(self.pending):
            return self
        return TariffTimeline(tariff, tuple(rest))
