"""A meter's registers: every value a :class:`emulator.meter.Meter` changes, as typed values.

Enumerated registers hold their :mod:`protocol.apdu` enums, money is whole pence, time whole
seconds. The state file's JSON shape is made from these (and back) only in
:mod:`emulator.state`.

This module is data only: it never holds behaviour, reads a clock or does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from emulator.metrology.engine import EnergyRegisters
from emulator.metrology.logs import DeviationLog, PrepaymentDailyLog, RegisterSnapshots
from emulator.metrology.max_demand import MaxDemandRegisters
from emulator.metrology.tariff import PendingChange, Tariff
from protocol.apdu import (
    PREPAYMENT_DEFAULTS,
    DebtRecoveryPeriod,
    DebtRegister,
    PaymentMode,
    SupplyOffReason,
    SupplyState,
)

__all__ = ["PREPAYMENT_PARAMETERS", "Debt", "MeterRegisters", "PrepaymentParameters"]


@dataclass(frozen=True)
class Debt:
    """One debt register's state (the UPDATE_DEBT response body but the register itself)."""

    debt_value_pence: int = 0
    #: time debt: pence recovered per period; 0 for the payment debt
    debt_recovery_rate_pence: int = 0
    debt_recovery_period: DebtRecoveryPeriod = DebtRecoveryPeriod.DAILY
    #: payment debt: share of each top-up, 0-100; 0 for a time debt
    debt_recovery_percentage: int = 0


@dataclass(frozen=True)
class PrepaymentParameters:
    """The prepayment parameters a meter holds (what SET_PAYMENT_MODE's Annex C defaults can
    fill): money in whole pence, the rest in the units their names carry. Its fields are
    exactly those of ``protocol.apdu.PREPAYMENT_DEFAULTS`` (checked at import)."""

    emergency_credit_limit_pence: int = 0
    emergency_credit_threshold_pence: int = 0
    low_credit_threshold_pence: int = 0
    max_meter_balance_pence: int = 0
    max_credit_threshold_pence: int = 0
    debt_recovery_rate_cap_pence: int = 0
    low_emergency_credit_threshold_pence: int = 0
    cut_off_grace_period_minutes: int = 0
    keypad_lock_timeout_seconds: int = 0
    non_disablement_calendar_id: int = 0
    utrn_type: int = 0


#: The prepayment parameters' names, in the order of ``protocol.apdu.PREPAYMENT_DEFAULTS``.
PREPAYMENT_PARAMETERS: tuple[str, ...] = tuple(
    sub.name for sub in PREPAYMENT_DEFAULTS.subcons  # type: ignore[attr-defined]
)
if tuple(f.name for f in fields(PrepaymentParameters)) != PREPAYMENT_PARAMETERS:
    raise RuntimeError("PrepaymentParameters must have the fields of PREPAYMENT_DEFAULTS")


@dataclass
class MeterRegisters:
    """Every value a meter changes."""

    now_seconds: int
    payment_mode: PaymentMode
    meter_balance_pence: int
    supply_state: SupplyState
    supply_off_reason: SupplyOffReason
    disablement_threshold_pence: int
    suspend_debt_disabled: bool
    suspend_debt_emergency: bool
    prepayment_parameters: PrepaymentParameters
    #: the parameters a profile or request has set (the rest are *never configured*)
    configured_parameters: list[str]
    #: every debt register
    debts: dict[DebtRegister, Debt]
    #: set at run time by set_load_w / set_load_profile; empty: the config's load profile
    load_profile_override: tuple[tuple[int, int], ...] = ()
    emergency_credit_active: bool = False
    emergency_credit_balance_pence: int = 0
    emergency_credit_granted_pence: int = 0
    debt_recovered_today_pence: int = 0
    debt_recovery_day: int = 0
    debt_recovered_total_pence: int = 0
    cost_remainder_units: int = 0
    consumption_debited_pence: int = 0
    energy_imported_ws: int = 0
    load_limit_power_threshold_w: int = 0
    load_limit_period_seconds: int = 300
    load_limit_restoration_period_seconds: int = 300
    load_limit_counter: int = 0
    load_limit_period_energy_ws: int = 0
    load_limit_restoration_ends_at_seconds: int = 0
    utrn_used_counters: list[int] = field(default_factory=list)
    utrn_bad_entries_in_a_row: int = 0
    utrn_locked_until_seconds: int = 0
    # -- metrology (emulator.metrology): saved only once they differ from these defaults
    #: exact energy per (TOU band, block) cell and the block period's use; its total_ws is
    #: energy_imported_ws (saved once, under that name)
    energy: EnergyRegisters = field(default_factory=EnergyRegisters)
    #: the open half-hour: energy registered, and what the load history drew
    half_hour_energy_ws: int = 0
    half_hour_model_energy_ws: int = 0
    #: (start, override segments or None for the profile's load model), oldest first; the
    #: first start is when metering started (logs never reach before it); empty: from the
    #: first time the meter advances after a restore of a state file written without it
    load_history: tuple[tuple[int, tuple[tuple[int, int], ...] | None], ...] = ()
    max_demand: MaxDemandRegisters | None = None
    half_hour_deviations: DeviationLog = field(default_factory=DeviationLog)
    register_snapshots: RegisterSnapshots = field(default_factory=RegisterSnapshots)
    prepayment_daily_log: PrepaymentDailyLog = field(default_factory=PrepaymentDailyLog)
    #: the tariff in force once a scheduled change has taken effect (None: the profile's)
    tariff_in_force: Tariff | None = None
    #: tariff and price changes still to take effect, in order
    tariff_changes: tuple[PendingChange, ...] = ()
