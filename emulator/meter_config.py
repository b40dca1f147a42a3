"""One meter's configuration: what a profile's ``[devices.meter]`` table can set, checked.

:class:`MeterConfig` is the frozen set of values a meter starts from (registers, tariff, load,
limits); :meth:`MeterConfig.from_mapping` reads one device's profile table into it, naming the
key for anything wrong. The prepayment parameters' names, bounds and never-configured values
live here too, because the meter checks requests against the same bounds.

This module only validates values; it never holds meter state, reads a clock or does I/O.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from emulator.consumption import SECONDS_PER_DAY, LoadProfile
from emulator.errors import ProfileError
from emulator.meter_registers import PREPAYMENT_PARAMETERS
from emulator.meter_tables import (
    DEFAULT_MAX_LOAD_LIMIT_POWER_THRESHOLD_W,
    LOAD_LIMIT_PERIOD_MAX_SECONDS,
    LOAD_LIMIT_PERIOD_MIN_SECONDS,
    NON_DISABLEMENT_CALENDARS,
    UTRN_LOCKOUT_BAD_ENTRIES,
    UTRN_LOCKOUT_SECONDS,
)
from emulator.metrology.load_model import LoadModelError, ReplayedLoad
from emulator.metrology.profile_keys import (
    METROLOGY_KEY_PARSERS,
    load_model_of,
    tariff_of,
    voltage_model_of,
)
from protocol.apdu import (
    MAX_LOAD_LIMIT_POWER_THRESHOLD_W,
    DebtRecoveryPeriod,
    DeviceType,
    PaymentMode,
    SupplyState,
)
from protocol.register_ranges import (
    DEBT_REGISTER_RANGE_PENCE,
    METER_BALANCE_RANGE_PENCE,
    MONEY_REGISTER_MAX_PENCE,
    SIGNED_THRESHOLD_RANGE_PENCE,
    in_range,
)

__all__ = [
    "INT32_MAX",
    "INT32_MIN",
    "PARAMETER_MAXIMA",
    "PREPAYMENT_PARAMETERS",
    "UNCONFIGURED_VALUES",
    "MeterConfig",
]

INT32_MAX = 2**31 - 1
INT32_MIN = -(2**31)

#: What a never-configured parameter reads back as (anything not listed: 0): the limits and
#: the debt-recovery cap are at their maximum, i.e. they limit nothing.
UNCONFIGURED_VALUES: dict[str, int] = {
    "max_meter_balance_pence": MONEY_REGISTER_MAX_PENCE,
    "max_credit_threshold_pence": MONEY_REGISTER_MAX_PENCE,
    "debt_recovery_rate_cap_pence": MONEY_REGISTER_MAX_PENCE,
}
#: Upper bounds of the non-pence prepayment parameters (their wire field widths); the pence
#: ones are in ``protocol.register_ranges.THRESHOLD_RANGE_PENCE``.
PARAMETER_MAXIMA: dict[str, int] = {
    "cut_off_grace_period_minutes": 0xFFFF,
    "keypad_lock_timeout_seconds": 0xFFFF,
    "non_disablement_calendar_id": 0xFF,
    "utrn_type": 0xFF,
}
_METER_TYPES = (DeviceType.ELECTRICITY_METER, DeviceType.GAS_METER)


@dataclass(frozen=True)
class MeterConfig:
    """Everything a profile can set for one meter. Integers only; money in whole pence.

    Profile keys (a TOML table for one device; every key optional):

    - ``payment_mode``: "credit" | "prepayment" (or 0 | 1); default credit.
    - ``meter_balance_pence``: signed starting balance; default 0.
    - ``supply_state``: "enabled" | "disabled" | "armed"; default enabled.
    - ``disablement_threshold_pence``, ``emergency_credit_limit_pence``,
      ``emergency_credit_threshold_pence``, ``low_credit_threshold_pence``,
      ``max_meter_balance_pence``, ``max_credit_threshold_pence``,
      ``debt_recovery_rate_cap_pence``, ``low_emergency_credit_threshold_pence``,
      ``cut_off_grace_period_minutes``, ``keypad_lock_timeout_seconds``,
      ``non_disablement_calendar_id`` (0 none, 1 weekday evenings/nights and weekends),
      ``utrn_type``: prepayment parameters; a key left out is *never configured* (S1SR 18.4).
    - ``suspend_debt_disabled``, ``suspend_debt_emergency``: booleans; default false.
    - ``time_debt_1_pence``, ``time_debt_1_recovery_rate_pence``,
      ``time_debt_1_recovery_period`` ("hourly" | "daily"), the same for ``time_debt_2_*``,
      ``payment_debt_pence``, ``payment_debt_recovery_percentage`` (0-100).
    - ``unit_rate_millipence_per_kwh`` (default 24500 = 24.5 p/kWh),
      ``standing_charge_millipence_per_day`` (default 53000 = 53 p/day).
    - ``load_w`` (constant load, default 0) or ``load_profile`` (list of
      ``[start_second_of_day, load_w]``, UTC), not both; or ``load_shape_w`` (48 half-hour
      loads, W), with ``load_seed`` and ``load_spread_percent`` for seeded randomness around it;
      or ``load_csv``: a CSV of half-hour consumption (``start,energy_wh``, UTC) replayed
      cyclically, its path relative to the profile file.
    - ``tariff_prices_millipence_per_kwh`` (per TOU band, its block prices; left out: one band
      at ``unit_rate_millipence_per_kwh``), ``tariff_block_thresholds_wh``,
      ``tariff_block_period_seconds``, ``tariff_day_profiles``, ``tariff_week``: the TOU and
      block tariff (:mod:`emulator.metrology.profile_keys`).
    - ``voltage_nominal_decivolts`` (default 2300), ``voltage_spread_decivolts`` (100),
      ``voltage_seed`` (0), ``voltage_over_threshold_decivolts`` (2530),
      ``voltage_under_threshold_decivolts`` (2162): the network voltage an ESME reports (SR
      4.10; :mod:`emulator.metrology.voltage`).
    - ``max_load_limit_power_threshold_w`` (default 65535, S1SR 18.37),
      ``load_limit_power_threshold_w`` (default 0 = off), ``load_limit_period_seconds``,
      ``load_limit_restoration_period_seconds`` (30-3600, default 300). ESME only.
    - ``utrn_lockout_bad_entries`` (default 5), ``utrn_lockout_seconds`` (default 1800).
    """

    eui64: bytes
    device_type: DeviceType
    payment_mode: PaymentMode = PaymentMode.CREDIT
    meter_balance_pence: int = 0
    supply_state: SupplyState = SupplyState.ENABLED
    disablement_threshold_pence: int | None = None
    suspend_debt_disabled: bool = False
    suspend_debt_emergency: bool = False
    emergency_credit_limit_pence: int | None = None
    emergency_credit_threshold_pence: int | None = None
    low_credit_threshold_pence: int | None = None
    max_meter_balance_pence: int | None = None
    max_credit_threshold_pence: int | None = None
    debt_recovery_rate_cap_pence: int | None = None
    low_emergency_credit_threshold_pence: int | None = None
    cut_off_grace_period_minutes: int | None = None
    keypad_lock_timeout_seconds: int | None = None
    non_disablement_calendar_id: int | None = None
    utrn_type: int | None = None
    time_debt_1_pence: int = 0
    time_debt_1_recovery_rate_pence: int = 0
    time_debt_1_recovery_period: DebtRecoveryPeriod = DebtRecoveryPeriod.DAILY
    time_debt_2_pence: int = 0
    time_debt_2_recovery_rate_pence: int = 0
    time_debt_2_recovery_period: DebtRecoveryPeriod = DebtRecoveryPeriod.DAILY
    payment_debt_pence: int = 0
    payment_debt_recovery_percentage: int = 0
    unit_rate_millipence_per_kwh: int = 24_500
    standing_charge_millipence_per_day: int = 53_000
    load_profile: tuple[tuple[int, int], ...] = ((0, 0),)
    max_load_limit_power_threshold_w: int = DEFAULT_MAX_LOAD_LIMIT_POWER_THRESHOLD_W
    load_limit_power_threshold_w: int = 0
    load_limit_period_seconds: int = 300
    load_limit_restoration_period_seconds: int = 300
    utrn_lockout_bad_entries: int = UTRN_LOCKOUT_BAD_ENTRIES
    utrn_lockout_seconds: int = UTRN_LOCKOUT_SECONDS
    tariff_prices_millipence_per_kwh: tuple[tuple[int, ...], ...] = ()
    tariff_block_thresholds_wh: tuple[tuple[int, ...], ...] = ()
    tariff_block_period_seconds: int = SECONDS_PER_DAY
    tariff_day_profiles: tuple[tuple[tuple[int, int], ...], ...] = ()
    tariff_week: tuple[int, ...] = (0, 0, 0, 0, 0, 0, 0)
    load_shape_w: tuple[int, ...] = ()
    load_seed: int | None = None
    load_spread_percent: int = 20
    load_csv: str = ""
    voltage_nominal_decivolts: int = 2_300
    voltage_spread_decivolts: int = 100
    voltage_seed: int = 0
    voltage_over_threshold_decivolts: int = 2_530
    voltage_under_threshold_decivolts: int = 2_162
    #: the model ``load_csv`` names, read by the profile (not a profile key)
    load_replay: ReplayedLoad | None = field(default=None, compare=False, repr=False)

    #: Keys :meth:`from_mapping` accepts (the field names, plus ``load_w``).
    PROFILE_KEYS: ClassVar[frozenset[str]]

    def __post_init__(self) -> None:
        self._check_meter_identity()
        self._check_prepayment_parameters()
        self._check_registers()
        try:
            LoadProfile(self.load_profile)
        except ValueError as error:
            raise ProfileError(f"load_profile: {error}") from None
        self._check_load_limiting()
        if self.utrn_lockout_bad_entries < 1 or self.utrn_lockout_seconds < 0:
            raise ProfileError("utrn_lockout_bad_entries must be >= 1 and utrn_lockout_seconds "
                               ">= 0")
        tariff_of(self)
        load_model_of(self)
        voltage_model_of(self)

    def _check_meter_identity(self) -> None:
        if not isinstance(self.eui64, bytes) or len(self.eui64) != 8:
            raise ProfileError(f"eui64 must be 8 bytes, got {self.eui64!r}")
        if self.device_type not in _METER_TYPES:
            raise ProfileError(f"device_type {self.device_type!r} is not a meter (ESME or GSME)")

    def _check_prepayment_parameters(self) -> None:
        """Each prepayment parameter given is within its bounds; the calendar is one we hold."""
        for name in PREPAYMENT_PARAMETERS:
            value = getattr(self, name)
            if value is None:
                continue
            if value < 0:
                raise ProfileError(f"{name} = {value} must not be negative")
            highest = PARAMETER_MAXIMA.get(name, MONEY_REGISTER_MAX_PENCE)
            if value > highest:
                raise ProfileError(f"{name} = {value} is above {highest}")
        calendar_id = self.non_disablement_calendar_id
        if calendar_id is not None and calendar_id not in NON_DISABLEMENT_CALENDARS:
            raise ProfileError(f"non_disablement_calendar_id = {calendar_id} is not one of "
                               f"{sorted(NON_DISABLEMENT_CALENDARS)}")

    def _check_registers(self) -> None:
        """Debts, rates and thresholds not negative; each money register within its range, the
        three debts together within a money register's."""
        for name in ("time_debt_1_pence", "time_debt_1_recovery_rate_pence", "time_debt_2_pence",
                     "time_debt_2_recovery_rate_pence", "payment_debt_pence",
                     "unit_rate_millipence_per_kwh", "standing_charge_millipence_per_day",
                     "max_load_limit_power_threshold_w", "load_limit_power_threshold_w"):
            if getattr(self, name) < 0:
                raise ProfileError(f"{name} = {getattr(self, name)} must not be negative")
        if not 0 <= self.payment_debt_recovery_percentage <= 100:
            raise ProfileError("payment_debt_recovery_percentage must be 0-100, got "
                               f"{self.payment_debt_recovery_percentage}")
        for name, value_range in (("meter_balance_pence", METER_BALANCE_RANGE_PENCE),
                                  ("disablement_threshold_pence", SIGNED_THRESHOLD_RANGE_PENCE),
                                  ("time_debt_1_pence", DEBT_REGISTER_RANGE_PENCE),
                                  ("time_debt_2_pence", DEBT_REGISTER_RANGE_PENCE),
                                  ("payment_debt_pence", DEBT_REGISTER_RANGE_PENCE)):
            value = getattr(self, name)
            if value is not None and not in_range(value, value_range):
                raise ProfileError(f"{name} = {value} is outside the register's range "
                                   f"{value_range[0]}..{value_range[1]} pence")
        if (self.time_debt_1_pence + self.time_debt_2_pence + self.payment_debt_pence
                > MONEY_REGISTER_MAX_PENCE):
            raise ProfileError("the three debt registers together are above "
                               f"{MONEY_REGISTER_MAX_PENCE} pence")

    def _check_load_limiting(self) -> None:
        """Thresholds within the 16-bit field and each other (none on a gas meter), periods
        within their bounds."""
        if self.max_load_limit_power_threshold_w > MAX_LOAD_LIMIT_POWER_THRESHOLD_W:
            raise ProfileError("max_load_limit_power_threshold_w must fit the 16-bit field "
                               f"(<= {MAX_LOAD_LIMIT_POWER_THRESHOLD_W}), "
                               f"got {self.max_load_limit_power_threshold_w}")
        if self.load_limit_power_threshold_w > self.max_load_limit_power_threshold_w:
            raise ProfileError(f"load_limit_power_threshold_w = {self.load_limit_power_threshold_w}"
                               f" is above max_load_limit_power_threshold_w = "
                               f"{self.max_load_limit_power_threshold_w}")
        if self.device_type == DeviceType.GAS_METER and self.load_limit_power_threshold_w:
            raise ProfileError("load_limit_power_threshold_w: a gas meter has no load limiting")
        for name in ("load_limit_period_seconds", "load_limit_restoration_period_seconds"):
            if not LOAD_LIMIT_PERIOD_MIN_SECONDS <= getattr(self, name) <= (
                    LOAD_LIMIT_PERIOD_MAX_SECONDS):
                raise ProfileError(f"{name} must be {LOAD_LIMIT_PERIOD_MIN_SECONDS}-"
                                   f"{LOAD_LIMIT_PERIOD_MAX_SECONDS} s, got {getattr(self, name)}")

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any], *, eui64: bytes, device_type: DeviceType,
                     read_load_csv: Callable[[str], ReplayedLoad] | None = None
                     ) -> MeterConfig:
        """A config from one device's profile table (keys: see the class docstring).

        Raises :class:`ProfileError` naming the key for an unknown key, a wrong type or a bad
        value.
        """
        values: dict[str, Any] = {}
        if len({"load_w", "load_profile", "load_shape_w", "load_csv"} & set(table)) > 1:
            raise ProfileError("give one of load_w (a constant load), load_profile, "
                               "load_shape_w or load_csv")
        for key, raw in table.items():
            if key not in cls.PROFILE_KEYS:
                raise ProfileError(f"unknown meter profile key {key!r}; known keys: "
                                   f"{', '.join(sorted(cls.PROFILE_KEYS))}")
            if key == "load_w":
                values["load_profile"] = ((0, _profile_int(key, raw)),)
            elif key == "load_profile":
                values["load_profile"] = _profile_load(raw)
            elif key == "load_csv":
                values[key] = raw
                values["load_replay"] = _read_load_csv(raw, read_load_csv)
            elif key in METROLOGY_KEY_PARSERS:
                values[key] = METROLOGY_KEY_PARSERS[key](key, raw)
            elif key in _ENUM_KEYS:
                values[key] = _profile_enum(key, raw, _ENUM_KEYS[key])
            elif key in _BOOL_KEYS:
                if not isinstance(raw, bool):
                    raise ProfileError(f"{key} must be true or false, got {raw!r}")
                values[key] = raw
            else:
                values[key] = _profile_int(key, raw)
        return cls(eui64=eui64, device_type=device_type, **values)


_ENUM_KEYS: dict[str, type[enum.IntEnum]] = {
    "payment_mode": PaymentMode,
    "supply_state": SupplyState,
    "time_debt_1_recovery_period": DebtRecoveryPeriod,
    "time_debt_2_recovery_period": DebtRecoveryPeriod,
}
_BOOL_KEYS = frozenset({"suspend_debt_disabled", "suspend_debt_emergency"})
MeterConfig.PROFILE_KEYS = frozenset(
    {f.name for f in dataclasses.fields(MeterConfig)} - {"eui64", "device_type", "load_replay"}
    | {"load_w"})


def _read_load_csv(raw: Any, read: Callable[[str], ReplayedLoad] | None) -> ReplayedLoad:
    if not isinstance(raw, str) or not raw:
        raise ProfileError(f"load_csv must be a file name, got {raw!r}")
    if read is None:
        raise ProfileError("load_csv needs a profile file to find it from")
    try:
        return read(raw)
    except LoadModelError as error:
        raise ProfileError(f"load_csv: {error}") from None


def _profile_int(key: str, raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise ProfileError(f"{key} must be a whole number, got {raw!r}")
    return raw


def _profile_enum(key: str, raw: Any, enum_class: type[enum.IntEnum]) -> Any:
    try:
        if isinstance(raw, str):
            return enum_class[raw.upper()]
        if isinstance(raw, int) and not isinstance(raw, bool):
            return enum_class(raw)
    except (KeyError, ValueError):
        pass
    raise ProfileError(f"{key} must be one of {', '.join(m.name.lower() for m in enum_class)}, "
                       f"got {raw!r}")


def _profile_load(raw: Any) -> tuple[tuple[int, int], ...]:
    if not isinstance(raw, list | tuple) or not raw:
        raise ProfileError("load_profile must be a list of [start_second_of_day, load_w] pairs")
    pairs = []
    for item in raw:
        if not isinstance(item, list | tuple) or len(item) != 2:
            raise ProfileError(f"load_profile entry {item!r} is not [start_second_of_day, load_w]")
        pairs.append((_profile_int("load_profile", item[0]), _profile_int("load_profile", item[1])))
    return tuple(pairs)
