"""Maximum demand registers: the highest average demand over one demand period, and when.

Demand periods are the half-hours of device time (*decided*: the demand period is the profile
period, 1800 s, aligned to UTC half-hours). At the end of each period the average demand
``energy_ws // 1800`` (whole W, rounded down) is compared with two registers (DUIS 4.12.1):

- ``active``: every period (``MaxDemandActiveEnergyImport``);
- ``configurable_time``: only periods that start inside the configurable window
  ``[window_start_second_of_day, window_end_second_of_day)`` (UTC;
  ``MaxDemandConfigurableTimeActivePowerImport`` with ``MaxDemandConfigurableTimePeriod``).

A new maximum replaces the old one only when strictly higher, so the capture time is the end of
the first period that reached it. A reset sets both to 0 with the reset time. This module must
never read a clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from emulator.consumption import SECONDS_PER_DAY

__all__ = ["DEMAND_PERIOD_SECONDS", "MaxDemand", "MaxDemandRegisters"]

DEMAND_PERIOD_SECONDS = 1_800


@dataclass(slots=True)
class MaxDemand:
    """One register: the highest average demand (W), the end of its period, the last reset."""

    value_w: int = 0
    capture_seconds: int = 0
    last_reset_seconds: int = 0


@dataclass(slots=True)
class MaxDemandRegisters:
    """The two maximum demand registers and the configurable window."""

    active: MaxDemand
    configurable_time: MaxDemand
    window_start_second_of_day: int = 0
    window_end_second_of_day: int = SECONDS_PER_DAY

    def __post_init__(self) -> None:
        start, end = self.window_start_second_of_day, self.window_end_second_of_day
        if not 0 <= start < end <= SECONDS_PER_DAY:
            raise ValueError("the max demand window must satisfy 0 <= start < end <= 86400")

    @classmethod
    def new(cls, device_time_seconds: int, window_start_second_of_day: int = 0,
            window_end_second_of_day: int = SECONDS_PER_DAY) -> MaxDemandRegisters:
        return cls(MaxDemand(last_reset_seconds=device_time_seconds),
                   MaxDemand(last_reset_seconds=device_time_seconds),
                   window_start_second_of_day, window_end_second_of_day)

    def period_closed(self, period_start_seconds: int, energy_ws: int) -> None:
        """The demand period starting at ``period_start_seconds`` drew ``energy_ws``."""
        demand_w = energy_ws // DEMAND_PERIOD_SECONDS
        end = period_start_seconds + DEMAND_PERIOD_SECONDS
        _raise(self.active, demand_w, end)
        second_of_day = period_start_seconds % SECONDS_PER_DAY
        if self.window_start_second_of_day <= second_of_day < self.window_end_second_of_day:
            _raise(self.configurable_time, demand_w, end)

    def reset(self, device_time_seconds: int) -> None:
        for register in (self.active, self.configurable_time):
            register.value_w = 0
            register.capture_seconds = 0
            register.last_reset_seconds = device_time_seconds


def _raise(register: MaxDemand, demand_w: int, end_seconds: int) -> None:
    if demand_w > register.value_w:
        register.value_w = demand_w
        register.capture_seconds = end_seconds
