"""The network voltage an ESME measures (DUIS 4.10 Read Network Data): a small deterministic
model of the average RMS voltage in each measurement period, nothing stored.

The average RMS voltage of half-hour ``h`` (index = seconds // 1800, the measurement period)
is ``nominal_decivolts + offset``, the offset drawn uniformly from
``-spread_decivolts .. +spread_decivolts`` by the seeded load shape's draw
(:func:`~emulator.metrology.load_model.seeded_draw`, a keyed BLAKE2b hash of ``(seed, h)``):
a pure function of (seed, period index), so any period is recomputed on demand and the same
seed always gives the same voltages. A period is an over
(under) voltage when its average is above ``over_threshold_decivolts`` (below
``under_threshold_decivolts``). The voltage is the network's: it does not depend on the
meter's supply state (*decided*: measured on the supply side of the contactor).

Defaults: 230.0 V nominal, +-10.0 V spread, thresholds 253.0 V and 216.2 V (230 V +10 % / -6 %,
the UK statutory limits). This module must never use floats, read a clock or do I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from emulator.metrology.load_model import HALF_HOUR_SECONDS, seeded_draw

__all__ = [
    "MEASUREMENT_PERIOD_SECONDS",
    "VOLTAGE_LOG_DEPTH_PERIODS",
    "VoltageModel",
    "VoltageModelError",
]

#: One average RMS voltage per half-hour (the periods the meter's logs count in).
MEASUREMENT_PERIOD_SECONDS = HALF_HOUR_SECONDS
#: Periods the voltage profile log holds: DUIS 4.10's bound, 4320 LogEntry (90 days).
VOLTAGE_LOG_DEPTH_PERIODS = 4_320


class VoltageModelError(ValueError):
    """A voltage model that cannot be built."""


@dataclass(frozen=True)
class VoltageModel:
    """Average RMS voltage per measurement period, in decivolts (2300 = 230.0 V)."""

    nominal_decivolts: int = 2_300
    spread_decivolts: int = 100
    seed: int = 0
    over_threshold_decivolts: int = 2_530
    under_threshold_decivolts: int = 2_162

    def __post_init__(self) -> None:
        if not 0 <= self.spread_decivolts <= self.nominal_decivolts:
            raise VoltageModelError("voltage_spread_decivolts must be 0..nominal")
        if self.nominal_decivolts + self.spread_decivolts > 0xFFFF:
            raise VoltageModelError("voltage_nominal_decivolts + spread must fit 16 bits "
                                    "(6553.5 V)")
        if not 0 <= self.seed < 2**64:
            raise VoltageModelError("voltage_seed must be 0..2**64-1")
        if self.under_threshold_decivolts > self.over_threshold_decivolts:
            raise VoltageModelError("the under-voltage threshold must not exceed the over-"
                                    "voltage threshold")

    def average_rms_decivolts(self, period: int) -> int:
        """The average RMS voltage of measurement period ``period`` (seconds // 1800)."""
        return (self.nominal_decivolts - self.spread_decivolts
                + seeded_draw(self.seed, period, 2 * self.spread_decivolts + 1))

    def is_over_voltage(self, decivolts: int) -> bool:
        return decivolts > self.over_threshold_decivolts

    def is_under_voltage(self, decivolts: int) -> bool:
        return decivolts < self.under_threshold_decivolts
