"""A meter's logs, kept compactly: what can be recomputed is recomputed, the rest is stored.

- :class:`LoadHistory`: which load model was in force from when (a few entries per meter). The
  energy a model *would* have drawn over any interval is recomputed from it exactly.
- :class:`DeviationLog`: the half-hours whose registered energy differs from the load history
  (supply off, or a meter started mid half-hour), run-length encoded in three fixed-width
  integer arrays (16 bytes a run): a long supply-off spell is one run. A meter whose supply
  stayed on stores none.
- :class:`RegisterSnapshots`: the TOU / block register cells at each of the last 31 midnights
  (DUIS 4.6.1 LogEntry 0..31), sparse (only cells that ever counted), in fixed-width arrays.
  A snapshot holds at most 65535 cells in all (48 bands x 4 blocks x 31 is 5952).
- :class:`PrepaymentDailyLog`: money registers at each of the last 31 midnights (DUIS 4.14),
  a ring of fixed-width integers; money history cannot be recomputed.

Depths (DUIS 4.8.1 / 4.6.1 / 4.14 / 4.17): :data:`PROFILE_DEPTH_HALF_HOURS` (397 days x 48),
:data:`DAILY_LOG_DEPTH_DAYS` (31), :data:`DAILY_CONSUMPTION_DEPTH_DAYS` (731). History and
deviations are kept for the longest depth. This module must never read a clock or use floats.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field

from emulator.consumption import SECONDS_PER_DAY
from emulator.metrology.load_model import HALF_HOUR_SECONDS, HALF_HOURS_PER_DAY, LoadModel

__all__ = [
    "DAILY_CONSUMPTION_DEPTH_DAYS",
    "DAILY_LOG_DEPTH_DAYS",
    "PREPAYMENT_LOG_FIELDS",
    "PROFILE_DEPTH_HALF_HOURS",
    "DeviationLog",
    "LoadHistory",
    "PrepaymentDailyLog",
    "RegisterSnapshots",
]

PROFILE_DEPTH_HALF_HOURS = 397 * HALF_HOURS_PER_DAY  # 19,056
DAILY_LOG_DEPTH_DAYS = 31
DAILY_CONSUMPTION_DEPTH_DAYS = 731
#: Everything older than this many seconds before now may be forgotten.
HISTORY_DEPTH_SECONDS = (DAILY_CONSUMPTION_DEPTH_DAYS + 1) * SECONDS_PER_DAY
#: The money registers of one 4.14 log entry, in the order they are stored.
PREPAYMENT_LOG_FIELDS = (
    "meter_balance_pence", "emergency_credit_balance_pence", "accumulated_debt_pence",
    "payment_debt_pence", "time_debt_1_pence", "time_debt_2_pence",
)


@dataclass(slots=True)
class LoadHistory:
    """``(effective_from_seconds, model)`` in time order: each model is in force until the
    next one's start."""

    entries: list[tuple[int, LoadModel]]

    def __post_init__(self) -> None:
        if not self.entries:
            raise ValueError("a load history needs the model in force")

    @property
    def current(self) -> LoadModel:
        return self.entries[-1][1]

    def set_from(self, device_time_seconds: int, model: LoadModel) -> None:
        while len(self.entries) > 1 and self.entries[-1][0] >= device_time_seconds:
            self.entries.pop()
        if self.entries[-1][0] >= device_time_seconds:
            self.entries[-1] = (self.entries[-1][0], model)
        else:
            self.entries.append((device_time_seconds, model))

    def energy_ws(self, from_seconds: int, to_seconds: int) -> int:
        """What the models in force would have drawn over ``[from_seconds, to_seconds)``."""
        total = 0
        starts = [start for start, _ in self.entries]
        index = max(bisect.bisect_right(starts, from_seconds) - 1, 0)
        while index < len(self.entries) and from_seconds < to_seconds:
            end = (self.entries[index + 1][0] if index + 1 < len(self.entries) else to_seconds)
            end = min(end, to_seconds)
            if end > from_seconds:
                total += self.entries[index][1].energy_ws(from_seconds, end)
                from_seconds = end
            index += 1
        return total

    def forget_before(self, device_time_seconds: int) -> None:
        while len(self.entries) > 1 and self.entries[1][0] <= device_time_seconds:
            self.entries.pop(0)


@dataclass(slots=True)
class DeviationLog:
    """Runs of consecutive half-hours that each registered ``energy_ws`` where the load history
    says otherwise: ``(first half-hour index, count, energy_ws)``."""

    firsts: array = field(default_factory=lambda: array("i"))
    counts: array = field(default_factory=lambda: array("i"))
    energies_ws: array = field(default_factory=lambda: array("q"))

    def record(self, half_hour: int, energy_ws: int) -> None:
        """Half-hour ``half_hour`` (later than any recorded) registered ``energy_ws``."""
        if (self.firsts and self.firsts[-1] + self.counts[-1] == half_hour
                and self.energies_ws[-1] == energy_ws):
            self.counts[-1] += 1
            return
        self.firsts.append(half_hour)
        self.counts.append(1)
        self.energies_ws.append(energy_ws)

    def runs_between(self, first: int, end: int) -> list[tuple[int, int, int]]:
        """The runs' parts inside half-hours ``first .. end - 1``: ``(first, end, ws)``."""
        index = max(bisect.bisect_right(self.firsts, first) - 1, 0)
        parts = []
        while index < len(self.firsts) and self.firsts[index] < end:
            run_first = max(self.firsts[index], first)
            run_end = min(self.firsts[index] + self.counts[index], end)
            if run_first < run_end:
                parts.append((run_first, run_end, self.energies_ws[index]))
            index += 1
        return parts

    def forget_before(self, half_hour: int) -> None:
        drop = 0
        while drop < len(self.firsts) and self.firsts[drop] + self.counts[drop] <= half_hour:
            drop += 1
        for column in (self.firsts, self.counts, self.energies_ws):
            del column[:drop]


def closed_energy_ws(history: LoadHistory, deviations: DeviationLog, first_half_hour: int,
                     end_half_hour: int) -> int:
    """Energy registered over closed half-hours ``first .. end - 1``: the history's energy,
    corrected by the deviations inside."""
    total = history.energy_ws(first_half_hour * HALF_HOUR_SECONDS,
                              end_half_hour * HALF_HOUR_SECONDS)
    for run_first, run_end, energy_ws in deviations.runs_between(first_half_hour,
                                                                 end_half_hour):
        expected = history.energy_ws(run_first * HALF_HOUR_SECONDS, run_end * HALF_HOUR_SECONDS)
        total += energy_ws * (run_end - run_first) - expected
    return total


def half_hour_energies_ws(history: LoadHistory, deviations: DeviationLog,
                          first_half_hour: int, end_half_hour: int) -> list[int]:
    """Registered energy of each closed half-hour ``first .. end - 1``."""
    energies = [history.energy_ws(h * HALF_HOUR_SECONDS, (h + 1) * HALF_HOUR_SECONDS)
                for h in range(first_half_hour, end_half_hour)]
    for run_first, run_end, energy_ws in deviations.runs_between(first_half_hour,
                                                                 end_half_hour):
        energies[run_first - first_half_hour:run_end - first_half_hour] = (
            [energy_ws] * (run_end - run_first))
    return energies


@dataclass(slots=True)
class RegisterSnapshots:
    """The register cells (``band x blocks + block`` -> Ws) at up to ``depth`` midnights,
    oldest first; each snapshot is a slice of two flat arrays."""

    depth: int = DAILY_LOG_DEPTH_DAYS
    days: array = field(default_factory=lambda: array("i"))
    offsets: array = field(default_factory=lambda: array("H", [0]))
    cells: array = field(default_factory=lambda: array("H"))
    values_ws: array = field(default_factory=lambda: array("q"))

    def record(self, midnight_seconds: int, cells_ws: dict[int, int]) -> None:
        self.days.append(midnight_seconds // SECONDS_PER_DAY)
        for cell in sorted(cells_ws):
            self.cells.append(cell)
            self.values_ws.append(cells_ws[cell])
        self.offsets.append(len(self.cells))
        if len(self.days) > self.depth:
            cut = self.offsets[1]
            del self.days[0], self.offsets[0], self.cells[:cut], self.values_ws[:cut]
            for index in range(len(self.offsets)):
                self.offsets[index] -= cut

    def entries(self) -> list[tuple[int, dict[int, int]]]:
        return [(self.days[i] * SECONDS_PER_DAY,
                 dict(zip(self.cells[self.offsets[i]:self.offsets[i + 1]],
                          self.values_ws[self.offsets[i]:self.offsets[i + 1]], strict=True)))
                for i in range(len(self.days))]


@dataclass(slots=True)
class PrepaymentDailyLog:
    """Money registers (:data:`PREPAYMENT_LOG_FIELDS`) at up to ``depth`` midnights, in a
    ring of fixed-width signed 32-bit integers (the meter's registers are int32 pence): the
    day number since 1970, then the fields."""

    depth: int = DAILY_LOG_DEPTH_DAYS
    ring: array = field(default_factory=lambda: array("i"))
    next_slot: int = 0

    @property
    def width(self) -> int:
        return 1 + len(PREPAYMENT_LOG_FIELDS)

    def record(self, midnight_seconds: int, values_pence: Sequence[int]) -> None:
        if len(values_pence) != len(PREPAYMENT_LOG_FIELDS):
            raise ValueError(f"a prepayment log entry has {len(PREPAYMENT_LOG_FIELDS)} values")
        if midnight_seconds % SECONDS_PER_DAY:
            raise ValueError("prepayment log entries are taken at midnight")
        row = array("i", [midnight_seconds // SECONDS_PER_DAY, *values_pence])
        if len(self.ring) < self.depth * self.width:
            self.ring.extend(row)
        else:
            start = self.next_slot * self.width
            self.ring[start:start + self.width] = row
        self.next_slot = (self.next_slot + 1) % self.depth

    def entries(self) -> list[tuple[int, dict[str, int]]]:
        """Oldest first: ``(midnight_seconds, {field: pence})``."""
        rows = len(self.ring) // self.width
        order = range(rows) if rows < self.depth else [
            (self.next_slot + i) % self.depth for i in range(rows)]
        result = []
        for row in order:
            values = self.ring[row * self.width:(row + 1) * self.width]
            result.append((values[0] * SECONDS_PER_DAY,
                           dict(zip(PREPAYMENT_LOG_FIELDS, values[1:], strict=True))))
        return result
