"""The metrology engine: energy registers and cost advancing together, in exact integers.

:class:`Metrology` runs device time forward in pieces over which everything is constant (the
load, the TOU band, the block, the prices): a piece ends at a half-hour boundary, a band
switch, a tariff or price change taking effect, a block-period boundary or a load-model change.
In each piece the energy is ``load x seconds`` watt-seconds, split across block thresholds by
energy (so a threshold crossed inside a second is priced exactly), added to the register cell
``(band, block)``, and costed at that cell's price, plus the standing charge. All cost goes
through one :class:`emulator.consumption.CostAccumulator`, so the pence debited over any run are
the exact cost of the energy registered over that run (plus standing charge), rounded down, and
the remainder is kept: however time is stepped, no money is created or lost.

Registers read (DUIS 4.1.x) as ``floor(Ws / 3600)`` Wh for electricity and
:func:`emulator.metrology.gas_volume.volume_dm3_of_energy_ws` dm3 for gas; each register is
rounded down on its own. Logs (4.6.1, 4.8.1, 4.17) are recomputed from :mod:`.logs`.

This module must never read a clock, use floats or touch money registers (it returns pence).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from emulator.consumption import SECONDS_PER_DAY, CostAccumulator
from emulator.metrology.gas_volume import volume_dm3_of_energy_ws
from emulator.metrology.load_model import HALF_HOUR_SECONDS, LoadModel
from emulator.metrology.logs import (
    DAILY_CONSUMPTION_DEPTH_DAYS,
    HISTORY_DEPTH_SECONDS,
    PROFILE_DEPTH_HALF_HOURS,
    DeviationLog,
    LoadHistory,
    RegisterSnapshots,
    closed_energy_ws,
    half_hour_energies_ws,
)
from emulator.metrology.max_demand import MaxDemandRegisters
from emulator.metrology.tariff import MAX_BLOCKS, WS_PER_WH, PendingChange, TariffTimeline

__all__ = ["EnergyRegisters", "Metrology", "electricity_wh", "gas_dm3"]


def electricity_wh(energy_ws: int) -> int:
    """Electricity registers show whole Wh (rounded down)."""
    return energy_ws // WS_PER_WH


gas_dm3: Callable[[int], int] = volume_dm3_of_energy_ws


@dataclass(slots=True)
class EnergyRegisters:
    """Exact energy (Ws): the total and each ``(band, block)`` cell (``band x MAX_BLOCKS +
    block``), and the current block period's energy per band."""

    total_ws: int = 0
    cells_ws: dict[int, int] = field(default_factory=dict)
    block_period_start_seconds: int = 0
    block_period_used_ws: dict[int, int] = field(default_factory=dict)

    def tou_ws(self) -> dict[int, int]:
        """Energy per TOU band (all its blocks)."""
        bands: dict[int, int] = {}
        for cell, ws in self.cells_ws.items():
            bands[cell // MAX_BLOCKS] = bands.get(cell // MAX_BLOCKS, 0) + ws
        return bands

    def block_ws(self) -> dict[int, int]:
        """Energy per block (all bands): the block counters."""
        blocks: dict[int, int] = {}
        for cell, ws in self.cells_ws.items():
            blocks[cell % MAX_BLOCKS] = blocks.get(cell % MAX_BLOCKS, 0) + ws
        return blocks


@dataclass(slots=True)
class Metrology:
    """One meter's metrology state; :meth:`accrue` is the only way it moves forward."""

    now_seconds: int
    timeline: TariffTimeline
    history: LoadHistory
    registers: EnergyRegisters
    accumulator: CostAccumulator
    max_demand: MaxDemandRegisters
    deviations: DeviationLog = field(default_factory=DeviationLog)
    snapshots: RegisterSnapshots = field(default_factory=RegisterSnapshots)
    #: the open half-hour: energy registered so far, and what the load history drew so far
    half_hour_ws: int = 0
    half_hour_model_ws: int = 0
    #: when the registers started at 0: logs never reach before it
    started_seconds: int = 0
    #: the register unit: :func:`electricity_wh` or :func:`gas_dm3`
    register_unit: Callable[[int], int] = electricity_wh

    @classmethod
    def start(cls, device_time_seconds: int, timeline: TariffTimeline, model: LoadModel, *,
              remainder_units: int = 0,
              register_unit: Callable[[int], int] = electricity_wh) -> Metrology:
        """A new meter's metrology at ``device_time_seconds`` (registers at 0). Half-hours
        before the start count as having drawn nothing."""
        registers = EnergyRegisters(block_period_start_seconds=(
            timeline.current.block_period_start(device_time_seconds)))
        return cls(device_time_seconds, timeline, LoadHistory([(device_time_seconds, model)]),
                   registers, CostAccumulator(remainder_units),
                   MaxDemandRegisters.new(device_time_seconds),
                   started_seconds=device_time_seconds, register_unit=register_unit)

    # -- changes ---------------------------------------------------------------------------

    @property
    def load_model(self) -> LoadModel:
        return self.history.current

    def set_load_model(self, model: LoadModel) -> None:
        """``model`` from now on (the past keeps the model it had)."""
        self.history.set_from(self.now_seconds, model)

    def schedule(self, change: PendingChange) -> None:
        """A tariff or price change taking effect at its device time (now or later)."""
        self.timeline = self.timeline.schedule(change)
        self._apply_due_changes(self.now_seconds)

    def _apply_due_changes(self, now: int) -> None:
        """Put changes due by ``now`` in force; a new tariff (not new prices alone) restarts
        the block period's counters (*decided*)."""
        pending = self.timeline.pending
        if not pending or pending[0].effective_seconds > now:
            return
        if any(c.tariff is not None for c in pending if c.effective_seconds <= now):
            self.registers.block_period_used_ws.clear()
        self.timeline = self.timeline.at(now)
        self.registers.block_period_start_seconds = (
            self.timeline.current.block_period_start(now))

    # -- time passing ----------------------------------------------------------------------

    def accrue(self, to_seconds: int, supply_enabled: bool) -> int:
        """Run to ``to_seconds`` (energy flows only if ``supply_enabled``; the standing charge
        always runs) and return the whole pence now due."""
        pence = 0
        registers = self.registers
        while self.now_seconds < to_seconds:
            now = self.now_seconds
            self._apply_due_changes(now)
            timeline = self.timeline
            tariff = timeline.current
            block_start = tariff.block_period_start(now)
            if block_start != registers.block_period_start_seconds:
                registers.block_period_start_seconds = block_start
                registers.block_period_used_ws.clear()
            end = min(to_seconds, now - now % HALF_HOUR_SECONDS + HALF_HOUR_SECONDS)
            for boundary in (timeline.next_change_after(now),
                             tariff.switching.next_switch_after(now),
                             self.load_model.next_change_after(now),
                             block_start + tariff.block_period_seconds if tariff.has_blocks
                             else None):
                if boundary is not None and boundary < end:
                    end = boundary
            seconds = end - now
            model_ws = self.load_model.load_w_at(now) * seconds
            energy_ws = model_ws if supply_enabled else 0
            standing = seconds * tariff.prices.standing_units_per_second
            if energy_ws:
                band = tariff.switching.band_at(now)
                used = registers.block_period_used_ws.get(band, 0)
                blocks = tariff.split_into_blocks(band, used, energy_ws)
                for block, ws in enumerate(blocks):
                    if ws:
                        cell = band * MAX_BLOCKS + block
                        registers.cells_ws[cell] = registers.cells_ws.get(cell, 0) + ws
                registers.block_period_used_ws[band] = used + energy_ws
                registers.total_ws += energy_ws
                pence += self.accumulator.add(tariff.energy_cost_units(band, blocks) + standing)
            else:
                pence += self.accumulator.add(standing)
            self.half_hour_ws += energy_ws
            self.half_hour_model_ws += model_ws
            self.now_seconds = end
            if end % HALF_HOUR_SECONDS == 0:
                self._close_half_hour(end - HALF_HOUR_SECONDS)
        return pence

    def _close_half_hour(self, start_seconds: int) -> None:
        if self.half_hour_ws != self.half_hour_model_ws or self.history.entries[0][0] > (
                start_seconds):
            self.deviations.record(start_seconds // HALF_HOUR_SECONDS, self.half_hour_ws)
        self.max_demand.period_closed(start_seconds, self.half_hour_ws)
        self.half_hour_ws = self.half_hour_model_ws = 0
        end = start_seconds + HALF_HOUR_SECONDS
        if end % SECONDS_PER_DAY == 0:
            self.snapshots.record(end, self.registers.cells_ws)
            horizon = end - HISTORY_DEPTH_SECONDS
            self.history.forget_before(horizon)
            self.deviations.forget_before(horizon // HALF_HOUR_SECONDS)

    # -- what the meter asks between steps -------------------------------------------------

    def next_change_after(self, supply_enabled: bool) -> int | None:
        """The next time the cost rate changes (a load-model change, a band switch, a block
        threshold or period boundary, a tariff change): the meter's credit-crossing
        prediction holds until then. None when the rate never changes."""
        now = self.now_seconds
        tariff = self.timeline.current
        candidates = [self.timeline.next_change_after(now)]
        if supply_enabled:
            candidates.append(self.load_model.next_change_after(now))
            candidates.append(tariff.switching.next_switch_after(now))
            load_w = self.load_model.load_w_at(now)
            if tariff.has_blocks and load_w > 0:
                candidates.append(tariff.block_period_start(now) + tariff.block_period_seconds)
                band = tariff.switching.band_at(now)
                used = self.registers.block_period_used_ws.get(band, 0)
                threshold = tariff.next_threshold_ws(band, used)
                if threshold is not None:
                    candidates.append(now + max(1, -(-(threshold - used) // load_w)))
        found = [time for time in candidates if time is not None and time > now]
        return min(found) if found else None

    def units_per_second(self, supply_enabled: bool) -> int:
        """Cost units per second now (until :meth:`next_change_after`)."""
        tariff = self.timeline.current
        load_w = self.load_model.load_w_at(self.now_seconds) if supply_enabled else 0
        band = tariff.switching.band_at(self.now_seconds)
        return tariff.units_per_second(band, self.registers.block_period_used_ws.get(band, 0),
                                       load_w)

    # -- reads -----------------------------------------------------------------------------

    def total_register(self) -> int:
        return self.register_unit(self.registers.total_ws)

    def tou_registers(self) -> dict[int, int]:
        return {band: self.register_unit(ws) for band, ws in self.registers.tou_ws().items()}

    def block_registers(self) -> dict[int, int]:
        return {block: self.register_unit(ws)
                for block, ws in self.registers.block_ws().items()}

    def _first_kept_half_hour(self) -> int:
        """The oldest half-hour the logs can still answer for (never before the start)."""
        open_start = self.now_seconds - self.now_seconds % HALF_HOUR_SECONDS
        oldest = max(open_start - HISTORY_DEPTH_SECONDS + HALF_HOUR_SECONDS,
                     self.started_seconds)
        return oldest // HALF_HOUR_SECONDS

    def total_ws_at(self, half_hour_boundary_seconds: int) -> int:
        """The exact total register at a past half-hour boundary within the kept history
        (0 at or before the start)."""
        if half_hour_boundary_seconds % HALF_HOUR_SECONDS:
            raise ValueError("register history is kept at half-hour boundaries")
        open_half_hour = self.now_seconds // HALF_HOUR_SECONDS
        half_hour = half_hour_boundary_seconds // HALF_HOUR_SECONDS
        if half_hour > open_half_hour:
            raise ValueError("that time is in the future")
        if half_hour_boundary_seconds <= self.started_seconds:
            return 0
        if half_hour < self._first_kept_half_hour():
            raise ValueError("that time is outside the kept history")
        later = closed_energy_ws(self.history, self.deviations, half_hour, open_half_hour)
        return self.registers.total_ws - self.half_hour_ws - later

    def closed_half_hours(self, first_half_hour: int, end_half_hour: int, depth: int) -> range:
        """The closed half-hours ``first .. end - 1`` the meter has been running for, at most
        the last ``depth`` of them (what a log of that depth still answers for)."""
        first, end = self._clip(first_half_hour, end_half_hour, depth)
        return range(first, max(first, end))

    def _clip(self, first_half_hour: int, end_half_hour: int, depth: int) -> tuple[int, int]:
        open_half_hour = self.now_seconds // HALF_HOUR_SECONDS
        return (max(first_half_hour, open_half_hour - depth, self._first_kept_half_hour()),
                min(end_half_hour, open_half_hour))

    def _register_steps(self, first: int, energies_ws: list[int]) -> list[int]:
        """Register-unit advances over consecutive spans of ``energies_ws`` starting at
        half-hour ``first``: differences of the shown register, so they add up."""
        cumulative = self.total_ws_at(first * HALF_HOUR_SECONDS)
        shown = self.register_unit(cumulative)
        steps = []
        for energy_ws in energies_ws:
            cumulative += energy_ws
            now_shown = self.register_unit(cumulative)
            steps.append(now_shown - shown)
            shown = now_shown
        return steps

    def half_hour_profile(self, first_half_hour: int, end_half_hour: int
                          ) -> list[tuple[int, int]]:
        """``(half-hour start seconds, register units consumed)`` for each closed half-hour
        ``first .. end - 1`` (DUIS 4.8.1), clipped to the profile depth, the start and the
        half-hours closed so far; values are differences of the total register."""
        first, end = self._clip(first_half_hour, end_half_hour, PROFILE_DEPTH_HALF_HOURS)
        if first >= end:
            return []
        energies = half_hour_energies_ws(self.history, self.deviations, first, end)
        return [(half_hour * HALF_HOUR_SECONDS, value) for half_hour, value in
                zip(range(first, end), self._register_steps(first, energies), strict=True)]

    def daily_consumption(self, first_day: int, end_day: int) -> list[tuple[int, int]]:
        """``(midnight_seconds, register units consumed that UTC day)`` for each whole past
        day ``first_day .. end_day - 1`` (days since 1970) within 731 days (DUIS 4.17)."""
        per_day = SECONDS_PER_DAY // HALF_HOUR_SECONDS
        first, end = self._clip(first_day * per_day, end_day * per_day,
                                DAILY_CONSUMPTION_DEPTH_DAYS * per_day)
        first = -(-first // per_day) * per_day
        end -= end % per_day
        if first >= end:
            return []
        energies = [closed_energy_ws(self.history, self.deviations, h, h + per_day)
                    for h in range(first, end, per_day)]
        return [(h * HALF_HOUR_SECONDS, value) for h, value in
                zip(range(first, end, per_day), self._register_steps(first, energies),
                    strict=True)]

    def daily_read_log(self) -> list[tuple[int, int, dict[int, int]]]:
        """The last 31 midnights (DUIS 4.6.1): ``(midnight_seconds, total register, {cell:
        register})`` with cells ``band x MAX_BLOCKS + block``."""
        return [(midnight, self.register_unit(self.total_ws_at(midnight)),
                 {cell: self.register_unit(ws) for cell, ws in cells.items()})
                for midnight, cells in self.snapshots.entries()]

    def reset_max_demand(self) -> None:
        self.max_demand.reset(self.now_seconds)
