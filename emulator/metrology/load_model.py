"""Load models: the simulated demand of one meter, integrable exactly over any interval.

Every model is piecewise constant in whole watts, so the energy over ``[t0, t1)`` is an exact
integer of watt-seconds. The models:

- :class:`emulator.consumption.LoadProfile` (constant, or daily ``(start_second, W)``
  segments) already is one; :func:`constant_load` builds the constant kind.
- :class:`HalfHourShape`: a daily shape of 48 half-hour loads (W), UTC.
- :class:`SeededShape`: seeded randomness around a 48-value shape; each half-hour's load is a
  pure function of (seed, half-hour index), so any half-hour is recomputed without replaying
  history, and the same seed always gives the same loads.
- :class:`ReplayedLoad`: half-hour consumption (Wh) replayed from a CSV file, repeating
  cyclically from its first half-hour (*decided*); ``E`` Wh in a half-hour is the constant load
  ``2 x E`` W for its 1800 s, so energy stays exact.

This module must never use floats or read a clock; only :func:`read_half_hour_csv` reads a file.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from emulator.consumption import LoadProfile

__all__ = [
    "HALF_HOURS_PER_DAY",
    "HALF_HOUR_SECONDS",
    "HalfHourShape",
    "LoadModel",
    "LoadModelError",
    "ReplayedLoad",
    "SeededShape",
    "constant_load",
    "read_half_hour_csv",
    "seeded_draw",
]

HALF_HOUR_SECONDS = 1_800
HALF_HOURS_PER_DAY = 48


class LoadModelError(ValueError):
    """A load model that cannot be built (bad values, or a CSV naming its file and line)."""


class LoadModel(Protocol):
    """What the metrology needs of a load model."""

    def load_w_at(self, device_time_seconds: int) -> int: ...

    def next_change_after(self, device_time_seconds: int) -> int | None: ...

    def energy_ws(self, from_seconds: int, to_seconds: int) -> int: ...


def constant_load(load_w: int) -> LoadProfile:
    return LoadProfile(((0, load_w),))


class _HalfHourModel:
    """A load constant within each half-hour (index = seconds // 1800); subclasses give
    :meth:`half_hour_load_w` and may give the exact sum over whole half-hours faster."""

    def half_hour_load_w(self, half_hour: int) -> int:
        raise NotImplementedError

    def sum_half_hours_w(self, first: int, end: int) -> int:
        """Sum of the loads of half-hours ``first .. end - 1``."""
        return sum(self.half_hour_load_w(h) for h in range(first, end))

    def load_w_at(self, device_time_seconds: int) -> int:
        return self.half_hour_load_w(device_time_seconds // HALF_HOUR_SECONDS)

    def next_change_after(self, device_time_seconds: int) -> int | None:
        half_hour = device_time_seconds // HALF_HOUR_SECONDS + 1
        load_w = self.load_w_at(device_time_seconds)
        for _ in range(HALF_HOURS_PER_DAY * 8):
            if self.half_hour_load_w(half_hour) != load_w:
                return half_hour * HALF_HOUR_SECONDS
            half_hour += 1
        return half_hour * HALF_HOUR_SECONDS  # a model's load may change later: look again

    def energy_ws(self, from_seconds: int, to_seconds: int) -> int:
        if to_seconds <= from_seconds:
            return 0
        first = from_seconds // HALF_HOUR_SECONDS
        last = (to_seconds - 1) // HALF_HOUR_SECONDS
        if first == last:
            return self.half_hour_load_w(first) * (to_seconds - from_seconds)
        head = self.half_hour_load_w(first) * ((first + 1) * HALF_HOUR_SECONDS - from_seconds)
        tail = self.half_hour_load_w(last) * (to_seconds - last * HALF_HOUR_SECONDS)
        return head + tail + self.sum_half_hours_w(first + 1, last) * HALF_HOUR_SECONDS


def seeded_draw(seed: int, index: int, choices: int) -> int:
    """A draw from ``0 .. choices - 1`` that is a pure function of ``(seed, index)``: a
    BLAKE2b hash of ``index`` keyed by ``seed`` (0..2**64-1), reduced modulo ``choices``."""
    digest = hashlib.blake2b(index.to_bytes(8, "little", signed=True), digest_size=8,
                             key=seed.to_bytes(8, "little")).digest()
    return int.from_bytes(digest, "little") % choices


def _check_shape(shape_w: tuple[int, ...]) -> None:
    if len(shape_w) != HALF_HOURS_PER_DAY:
        raise LoadModelError(f"a daily shape has {HALF_HOURS_PER_DAY} half-hour loads, "
                             f"not {len(shape_w)}")
    if any(not isinstance(w, int) or w < 0 for w in shape_w):
        raise LoadModelError("half-hour loads must be whole, non-negative watts")


@dataclass(frozen=True)
class HalfHourShape(_HalfHourModel):
    """The same 48 half-hour loads (W) every UTC day."""

    shape_w: tuple[int, ...]

    def __post_init__(self) -> None:
        _check_shape(self.shape_w)

    def half_hour_load_w(self, half_hour: int) -> int:
        return self.shape_w[half_hour % HALF_HOURS_PER_DAY]

    def sum_half_hours_w(self, first: int, end: int) -> int:
        days, extra = divmod(end - first, HALF_HOURS_PER_DAY)
        return days * sum(self.shape_w) + sum(
            self.shape_w[h % HALF_HOURS_PER_DAY] for h in range(first, first + extra))


@dataclass(frozen=True)
class SeededShape(_HalfHourModel):
    """``shape_w[h % 48]`` scaled by a factor drawn uniformly from ``100 +- spread_percent``
    percent (rounded down to whole watts) by a keyed BLAKE2b hash of ``(seed, h)``."""

    shape_w: tuple[int, ...]
    seed: int
    spread_percent: int = 20

    def __post_init__(self) -> None:
        _check_shape(self.shape_w)
        if not 0 <= self.spread_percent <= 100:
            raise LoadModelError("spread_percent must be 0..100")
        if not 0 <= self.seed < 2**64:
            raise LoadModelError("seed must be 0..2**64-1")

    def half_hour_load_w(self, half_hour: int) -> int:
        percent = 100 - self.spread_percent + seeded_draw(self.seed, half_hour,
                                                           2 * self.spread_percent + 1)
        return self.shape_w[half_hour % HALF_HOURS_PER_DAY] * percent // 100


@dataclass(frozen=True)
class ReplayedLoad(_HalfHourModel):
    """Half-hour energies (Wh) from ``first_half_hour`` on, repeated cyclically both ways."""

    first_half_hour: int
    energies_wh: array = field(compare=False)
    #: running sums of ``energies_wh``, for exact energy over many half-hours at once
    _prefix_wh: array = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.energies_wh:
            raise LoadModelError("a replayed load needs at least one half-hour")
        prefix = array("q", [0])
        for wh in self.energies_wh:
            prefix.append(prefix[-1] + wh)
        object.__setattr__(self, "_prefix_wh", prefix)

    def half_hour_load_w(self, half_hour: int) -> int:
        return 2 * self.energies_wh[(half_hour - self.first_half_hour) % len(self.energies_wh)]

    def _cumulative_wh(self, offset: int) -> int:
        cycles, rest = divmod(offset, len(self.energies_wh))
        return cycles * self._prefix_wh[-1] + self._prefix_wh[rest]

    def sum_half_hours_w(self, first: int, end: int) -> int:
        return 2 * (self._cumulative_wh(end - self.first_half_hour)
                    - self._cumulative_wh(first - self.first_half_hour))


def _parse_utc_half_hour(text: str, where: str) -> int:
    try:
        moment = datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise LoadModelError(f"{where}: start {text!r} is not an ISO 8601 date-time") from None
    if moment.tzinfo is None or moment.utcoffset() != datetime.timedelta(0):
        raise LoadModelError(f"{where}: start {text!r} must be in UTC (end it with Z)")
    seconds = (moment - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
               ) // datetime.timedelta(seconds=1)
    if seconds % HALF_HOUR_SECONDS:
        raise LoadModelError(f"{where}: start {text!r} is not on a half-hour boundary")
    return seconds // HALF_HOUR_SECONDS


def read_half_hour_csv(path: Path | str) -> ReplayedLoad:
    """A :class:`ReplayedLoad` from a CSV with a header row ``start,energy_wh``: ``start``
    an ISO 8601 UTC half-hour (``2024-01-01T00:30:00Z``), ``energy_wh`` whole Wh >= 0, rows
    consecutive half-hours. Errors name the file and line."""
    path = Path(path)
    energies = array("q")
    first_half_hour = 0
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or [n.strip() for n in reader.fieldnames] != [
                    "start", "energy_wh"]:
                raise LoadModelError(f"{path}:1: the header must be 'start,energy_wh'")
            for row in reader:
                where = f"{path}:{reader.line_num}"
                if None in row or None in row.values():
                    raise LoadModelError(f"{where}: expected 2 fields, start and energy_wh")
                half_hour = _parse_utc_half_hour(row["start"], where)
                if not energies:
                    first_half_hour = half_hour
                elif half_hour != first_half_hour + len(energies):
                    raise LoadModelError(f"{where}: start {row['start'].strip()!r} does not "
                                         "follow the previous row's half-hour")
                text = row["energy_wh"].strip()
                if not text.isdigit():
                    raise LoadModelError(f"{where}: energy_wh {text!r} is not whole Wh >= 0")
                energies.append(int(text))
    except OSError as error:
        raise LoadModelError(f"{path}: cannot read: {error.strerror}") from None
    except csv.Error as error:
        raise LoadModelError(f"{path}: not CSV: {error}") from None
    if not energies:
        raise LoadModelError(f"{path}: no half-hour rows")
    return ReplayedLoad(first_half_hour, energies)

