"""Every conversion between DUIS units and device units, in one place (integer math only).

- Money: DUIS carries signed integers in 1/100000 GBP (1/1000 penny) within the int32 range;
  the device holds whole pence. ``pence = trunc(value / 1000)`` toward zero (Python's ``//``
  floors negatives, so it is never used on a signed value here); a response reports
  ``pence * 1000``, and never a value outside int32 (the device's registers stay within
  +-2147483 p, :mod:`protocol.register_ranges`).
- JoinTimePeriod: DUIS seconds -> device whole minutes, ``ceil(seconds / 60)``, so a join
  window is never shorter than asked and any positive period is at least 1 minute. *Decided*:
  0 seconds is refused (a window that closes as it opens is meaningless; use RequestType Remove
  to take a device off the HAN). Read-back reports ``minutes * 60``.
- Debt recovery (SR 2.3): DebtRecoveryRate x 10^DebtRecoveryRatePriceScale is in GBP per
  period, so ``pence = rate x 10^(scale + 2)``, truncated toward zero. An element without a
  scale of its own is DUIS money (:data:`DUIS_MONEY_PRICE_SCALE`, -5: 1/100000 GBP), as the
  gas DebtRecoveryRate always is (its DUIS type has no scale element);
  DebtRecoveryPerPayment is in hundredths of a percent, so the device's whole percentage is
  ``trunc(value / 100)`` (0-100).
- Date-times: DUIS ``xs:dateTime`` (UTC, ``Z`` or ``+00:00``; fractions of a second dropped)
  -> device time, integer seconds since 1970-01-01T00:00:00Z in an unsigned 32-bit field. The
  DUIS cancellation date 3000-12-31 is recognised by :func:`is_cancellation_date_time`.
- Energy (issue 11): an ESME's registers, logs and profile are whole Wh, reported as DUIS
  integers with ``ActiveEnergyUnit`` ``Wh``; a GSME's are whole dm3, reported as DUIS decimal
  m3 with three decimals (``1234`` dm3 -> ``1.234``) and ``Unit`` ``m3``
  (:func:`register_to_duis_energy`, :data:`DUIS_ENERGY_UNIT_NAMES`).
- Voltage (SR 4.10): the ESME's average RMS voltages are whole decivolts, reported as DUIS
  decimal volts with one decimal (``2304`` -> ``230.4``; :func:`decivolts_to_duis_voltage`);
  the over/under voltage counters are counts of measurement periods (``Unit``
  :data:`DUIS_VOLTAGE_COUNTER_UNIT`), the measurement period seconds.
- Prices (SR 1.1.1 / 1.2.1 / 4.11.1): an electricity price is ``value x 10^PriceScale`` GBP
  per kWh and the standing charge ``value x 10^StandingChargeScale`` GBP per day; the meter
  holds millipence (1/100000 GBP), so ``millipence = value x 10^(scale + 5)``. A value finer
  than a millipenny is refused (*decided*: a price is never changed silently); gas prices and
  standing charge have no scale of their own: they are DUIS money units, i.e. millipence.
  Reading back, the scale is -5 unless a value does not fit the DUIS PriceType (xs:short),
  then the smallest scale at which every value fits exactly (:func:`millipence_to_duis_prices`).
- Read log periods (4.6.1, 4.8.1, 4.10, 4.14, 4.17): ``ReadLogPeriod`` StartDateTime..EndDateTime
  in device seconds, start before end (:func:`require_log_period`).
- The requester's direction (request builders, :mod:`.builders`; typed response reading,
  :mod:`.responses`): pence -> DUIS money (``pence * 1000``, int32 checked), DUIS money from a
  response -> pence (whole pence only: a sub-penny response value is an error, never
  truncated silently), durations as int seconds or whole-second ``timedelta``, aware
  ``datetime`` <-> DUIS date-time text (fractions of a second dropped), pence per period ->
  DebtRecoveryRate with price scale -2, whole percent -> DebtRecoveryPerPayment.

This module never uses floating point and never talks to a device.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from protocol.apdu import MAX_JOIN_WINDOW_MINUTES, RegisterUnit
from protocol.register_ranges import DEBT_REGISTER_RANGE_PENCE
from protocol.s1sp.errors import InvalidRequestError, UnrepresentableValueError

__all__ = [
    "CANCELLATION_DATE_TIME",
    "DEBT_RECOVERY_RATE_PENCE_PRICE_SCALE",
    "DEVICE_TIME_MAX_SECONDS",
    "DUIS_ENERGY_UNIT_NAMES",
    "DUIS_GAS_PRICE_RANGE",
    "DUIS_MONEY_PRICE_SCALE",
    "DUIS_MONEY_UNITS_PER_PENNY",
    "DUIS_PRICE_SHORT_RANGE",
    "DUIS_VOLTAGE_COUNTER_UNIT",
    "INT32_MAX",
    "INT32_MIN",
    "JOIN_WINDOW_MAX_MINUTES",
    "datetime_to_duis_date_time",
    "debt_recovery_per_payment_to_percentage",
    "debt_recovery_rate_to_pence",
    "decivolts_to_duis_voltage",
    "device_seconds_to_duis_date_time",
    "duis_date_time_to_datetime",
    "duis_date_time_to_device_seconds",
    "duis_money_to_pence",
    "duis_money_to_whole_pence",
    "duis_price_to_millipence",
    "duration_to_seconds",
    "is_cancellation_date_time",
    "join_time_period_seconds_to_minutes",
    "join_window_minutes_to_seconds",
    "millipence_to_duis_prices",
    "parse_duis_integer",
    "pence_to_debt_recovery_rate",
    "pence_to_duis_money",
    "pence_to_request_duis_money",
    "percentage_to_debt_recovery_per_payment",
    "register_to_duis_energy",
    "require_log_period",
]

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
#: 1 penny = 1000 DUIS money units (1/100000 GBP).
DUIS_MONEY_UNITS_PER_PENNY = 1000
#: The GBP exponent of DUIS money: a money element without a scale of its own is
#: value x 10^-5 GBP.
DUIS_MONEY_PRICE_SCALE = -5
SECONDS_PER_MINUTE = 60
#: The longest join window the hub accepts, whole minutes.
JOIN_WINDOW_MAX_MINUTES = MAX_JOIN_WINDOW_MINUTES
#: Device time is an unsigned 32-bit count of seconds.
DEVICE_TIME_MAX_SECONDS = 0xFFFFFFFF
#: The DUIS date meaning "cancel the future-dated request" (year, month, day).
CANCELLATION_DATE = (3000, 12, 31)

_INTEGER = re.compile(r"[+-]?[0-9]{1,20}")
_DATE_TIME = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})T(?P<hour>[0-9]{2}):"
    r"(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})(?:\.[0-9]+)?(?P<zone>Z|[+-]00:00)")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: The ExecutionDateTime that cancels a future-dated request (DUIS: 3000-12-31).
CANCELLATION_DATE_TIME = datetime(*CANCELLATION_DATE, tzinfo=timezone.utc)
#: The DebtRecoveryRatePriceScale at which DebtRecoveryRate counts whole pence (10^-2 GBP).
DEBT_RECOVERY_RATE_PENCE_PRICE_SCALE = -2


def parse_duis_integer(text: str | None, element_name: str) -> int:
    """The xs:integer in ``text``, or an :class:`InvalidRequestError` naming the element."""
    stripped = (text or "").strip()
    if not _INTEGER.fullmatch(stripped):
        raise InvalidRequestError(f"{element_name} must be a whole number, not {stripped!r}")
    return int(stripped)


def duis_money_to_pence(value: int, element_name: str) -> int:
    """DUIS money (1/100000 GBP, int32) -> whole pence, truncated toward zero."""
    if not INT32_MIN <= value <= INT32_MAX:
        raise InvalidRequestError(
            f"{element_name} {value} is outside the DUIS int32 range "
            f"{INT32_MIN}..{INT32_MAX}")
    pence = abs(value) // DUIS_MONEY_UNITS_PER_PENNY
    return pence if value >= 0 else -pence


def pence_to_duis_money(pence: int) -> int:
    """Whole pence -> DUIS money units (1/100000 GBP). A value DUIS cannot carry (outside
    int32) is never put in a response: :class:`UnrepresentableValueError` instead."""
    value = pence * DUIS_MONEY_UNITS_PER_PENNY
    if not INT32_MIN <= value <= INT32_MAX:
        raise UnrepresentableValueError(
            f"the device reported {pence} p, which DUIS money (int32 in 1/100000 GBP) cannot "
            f"carry (at most {INT32_MAX // DUIS_MONEY_UNITS_PER_PENNY} p either way)")
    return value


def join_time_period_seconds_to_minutes(join_time_period_seconds: int) -> int:
    """DUIS JoinTimePeriod (s) -> device join window (whole minutes, rounded up)."""
    if join_time_period_seconds <= 0:
        raise InvalidRequestError(
            f"JoinTimePeriod {join_time_period_seconds} s is not a positive number of seconds;"
            " a join window must be at least 1 s (it opens for at least 1 minute)")
    minutes = -(-join_time_period_seconds // SECONDS_PER_MINUTE)
    if minutes > JOIN_WINDOW_MAX_MINUTES:
        raise InvalidRequestError(
            f"JoinTimePeriod {join_time_period_seconds} s is longer than the device's longest "
            f"join window of {JOIN_WINDOW_MAX_MINUTES} minutes")
    return minutes


#: Allowed DebtRecoveryRatePriceScale values.
DEBT_RECOVERY_PRICE_SCALE_RANGE = (-8, 8)


def debt_recovery_rate_to_pence(debt_recovery_rate: int, price_scale: int) -> int:
    """DebtRecoveryRate x 10^price_scale GBP -> whole pence, truncated toward zero."""
    lowest, highest = DEBT_RECOVERY_PRICE_SCALE_RANGE
    if not lowest <= price_scale <= highest:
        raise InvalidRequestError(
            f"DebtRecoveryRatePriceScale {price_scale} is outside {lowest}..{highest}")
    exponent = price_scale + 2
    if exponent >= 0:
        pence = abs(debt_recovery_rate) * 10**exponent
    else:
        pence = abs(debt_recovery_rate) // 10**-exponent
    pence = pence if debt_recovery_rate >= 0 else -pence
    lowest, highest = DEBT_REGISTER_RANGE_PENCE
    if not lowest <= pence <= highest:
        raise InvalidRequestError(
            f"DebtRecoveryRate {debt_recovery_rate} x 10^{price_scale} GBP is {pence} pence, "
            f"outside the device's {lowest}..{highest} pence")
    return pence


def debt_recovery_per_payment_to_percentage(hundredths_of_percent: int) -> int:
    """DebtRecoveryPerPayment (hundredths of a percent) -> whole percent, truncated."""
    if not 0 <= hundredths_of_percent <= 10_000:
        raise InvalidRequestError(
            f"DebtRecoveryPerPayment {hundredths_of_percent} is outside 0..10000 "
            "(hundredths of a percent)")
    return hundredths_of_percent // 100


def join_window_minutes_to_seconds(join_window_minutes: int) -> int:
    """Device join window (minutes) -> DUIS seconds."""
    return join_window_minutes * SECONDS_PER_MINUTE


def _parse_date_time(text: str | None, element_name: str) -> datetime:
    stripped = (text or "").strip()
    match = _DATE_TIME.fullmatch(stripped)
    if match is None:
        raise InvalidRequestError(
            f"{element_name} {stripped!r} is not a UTC date-time such as "
            "2030-01-15T09:00:00Z")
    try:
        return datetime(int(match["year"]), int(match["month"]), int(match["day"]),
                        int(match["hour"]), int(match["minute"]), int(match["second"]),
                        tzinfo=timezone.utc)
    except ValueError as error:
        raise InvalidRequestError(f"{element_name} {stripped!r}: {error}") from None


def is_cancellation_date_time(text: str | None, element_name: str = "ExecutionDateTime") -> bool:
    """True for the DUIS cancellation form (3000-12-31 at any time)."""
    moment = _parse_date_time(text, element_name)
    return (moment.year, moment.month, moment.day) == CANCELLATION_DATE


def duis_date_time_to_device_seconds(text: str | None,
                                     element_name: str = "ExecutionDateTime") -> int:
    """A DUIS UTC date-time -> device seconds since 1970 (fractions dropped)."""
    moment = _parse_date_time(text, element_name)
    seconds = (moment - _EPOCH).days * 86_400 + (moment - _EPOCH).seconds
    if not 0 <= seconds <= DEVICE_TIME_MAX_SECONDS:
        raise InvalidRequestError(
            f"{element_name} {text!r} is outside the device clock's range "
            "1970-01-01T00:00:00Z..2106-02-07T06:28:15Z")
    return seconds


def datetime_to_device_seconds(moment: datetime) -> int:
    """An aware datetime -> device seconds (fractions dropped)."""
    delta = moment.astimezone(timezone.utc) - _EPOCH
    return delta.days * 86_400 + delta.seconds


def device_seconds_to_duis_date_time(device_time_seconds: int) -> str:
    """Device seconds -> DUIS UTC date-time text."""
    moment = datetime.fromtimestamp(device_time_seconds, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------------
# The requester's direction: Python values -> request text, response text -> Python values
# --------------------------------------------------------------------------------------------


def pence_to_request_duis_money(pence: int, element_name: str) -> int:
    """Whole pence -> DUIS money for a request; a :class:`ValueError` (an
    :class:`InvalidRequestError`) when the result is outside int32, which DUIS cannot carry."""
    if isinstance(pence, bool) or not isinstance(pence, int):
        raise TypeError(f"{element_name} must be whole pence (int), not {pence!r}")
    value = pence * DUIS_MONEY_UNITS_PER_PENNY
    if not INT32_MIN <= value <= INT32_MAX:
        raise InvalidRequestError(
            f"{element_name} {pence} p is {value} in DUIS money (1/100000 GBP), outside the "
            f"int32 range {INT32_MIN}..{INT32_MAX}")
    return value


def duis_money_to_whole_pence(value: int, element_name: str) -> int:
    """DUIS money read from a response -> pence; a value that is not whole pence is a
    :class:`ValueError` rather than a silent truncation (read it as DUIS money instead)."""
    if value % DUIS_MONEY_UNITS_PER_PENNY:
        raise ValueError(f"{element_name} {value} (1/100000 GBP) is not a whole number of "
                         "pence; read it as DUIS money")
    return value // DUIS_MONEY_UNITS_PER_PENNY


def duration_to_seconds(duration: int | timedelta, element_name: str) -> int:
    """A duration as int seconds, or a ``timedelta`` of whole seconds -> int seconds."""
    if isinstance(duration, timedelta):
        whole_seconds = duration // timedelta(seconds=1)
        if timedelta(seconds=whole_seconds) != duration:
            raise ValueError(f"{element_name} {duration} is not a whole number of seconds")
        return whole_seconds
    if isinstance(duration, bool) or not isinstance(duration, int):
        raise TypeError(f"{element_name} must be int seconds or a timedelta, not {duration!r}")
    return duration


def datetime_to_duis_date_time(moment: datetime, element_name: str) -> str:
    """An aware ``datetime`` -> DUIS UTC date-time text, fractions of a second dropped; a naive
    one is a :class:`ValueError` (its zone would be a guess)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{element_name} {moment!r} is a naive datetime; give an aware one "
                         "(e.g. tzinfo=timezone.utc)")
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def duis_date_time_to_datetime(text: str | None, element_name: str) -> datetime:
    """DUIS UTC date-time text -> an aware UTC ``datetime`` (fractions dropped)."""
    return _parse_date_time(text, element_name)


def pence_to_debt_recovery_rate(pence: int) -> tuple[int, int]:
    """Pence per period -> (DebtRecoveryRate, DebtRecoveryRatePriceScale), exactly: the rate
    in pence at price scale -2, which :func:`debt_recovery_rate_to_pence` reads back."""
    return pence, DEBT_RECOVERY_RATE_PENCE_PRICE_SCALE


def percentage_to_debt_recovery_per_payment(percentage: int) -> int:
    """Whole percent (the device's unit) -> DebtRecoveryPerPayment, hundredths of a percent."""
    return percentage * 100


# --------------------------------------------------------------------------------------------
# Metering data (issue 11): energy, prices, read log periods
# --------------------------------------------------------------------------------------------

#: The DUIS unit name of each device register unit (ActiveEnergyUnit / GasConsumptionUnit).
DUIS_ENERGY_UNIT_NAMES: dict[RegisterUnit, str] = {
    RegisterUnit.WATT_HOURS: "Wh",
    RegisterUnit.CUBIC_DECIMETRES: "m3",
}
_DM3_PER_M3 = 1000
#: DUIS PriceType (electricity prices and standing charge) is xs:short.
DUIS_PRICE_SHORT_RANGE = (-(2**15), 2**15 - 1)
#: Gas prices and standing charge are xs:unsignedInt.
DUIS_GAS_PRICE_RANGE = (0, 2**32 - 1)
#: The exponent of a millipenny in GBP: millipence = value x 10^(scale - this).
_MILLIPENCE_PRICE_SCALE = DUIS_MONEY_PRICE_SCALE
_PRICE_SCALE_RANGE = (-128, 127)


def register_to_duis_energy(register_value: int, register_unit: RegisterUnit) -> int | str:
    """A device register value -> its DUIS value: Wh as an integer, dm3 as decimal m3 text
    with three decimals."""
    if register_unit is RegisterUnit.WATT_HOURS:
        return register_value
    whole, fraction = divmod(register_value, _DM3_PER_M3)
    return f"{whole}.{fraction:03d}"


#: DUIS 4.10 AvgRMSOverVoltageCounter / AvgRMSUnderVoltageCounter ``Unit`` (a free string in
#: DUIS; *decided*: the counters count measurement periods).
DUIS_VOLTAGE_COUNTER_UNIT = "periods"
_DECIVOLTS_PER_VOLT = 10


def decivolts_to_duis_voltage(decivolts: int) -> str:
    """A device voltage in decivolts -> DUIS decimal volts with one decimal."""
    if decivolts < 0:
        raise ValueError(f"a voltage is never negative, not {decivolts} dV")
    volts, tenths = divmod(decivolts, _DECIVOLTS_PER_VOLT)
    return f"{volts}.{tenths}"


def duis_price_to_millipence(value: int, scale: int, element_name: str, *,
                             value_range: tuple[int, int]) -> int:
    """``value x 10^scale`` GBP -> millipence (1/100000 GBP), exactly; a value finer than a
    millipenny, a negative one, or one outside ``value_range`` (its schema type:
    :data:`DUIS_PRICE_SHORT_RANGE` for electricity, :data:`DUIS_GAS_PRICE_RANGE` for gas) is an
    :class:`InvalidRequestError` naming the element."""
    if not _PRICE_SCALE_RANGE[0] <= scale <= _PRICE_SCALE_RANGE[1]:
        raise InvalidRequestError(f"{element_name}: scale {scale} is outside -128..127")
    if value < 0:
        raise InvalidRequestError(f"{element_name} {value} must not be negative")
    low, high = value_range
    if not low <= value <= high:
        raise InvalidRequestError(
            f"{element_name} {value} is outside the range of its DUIS type ({low}..{high})")
    shift = scale - _MILLIPENCE_PRICE_SCALE
    if shift >= 0:
        return value * 10**shift
    millipence, rest = divmod(value, 10**-shift)
    if rest:
        raise InvalidRequestError(
            f"{element_name} {value} x 10^{scale} GBP is finer than the 1/100000 GBP the meter "
            "holds; give it at scale -5 or coarser")
    return millipence


def millipence_to_duis_prices(values_millipence: list[int]) -> tuple[int, list[int]]:
    """Millipence -> (scale, values) such that each value x 10^scale GBP is exact and fits
    the DUIS PriceType (xs:short): scale -5, or coarser while a value does not fit and every
    value is divisible by 10. A set that cannot be put exactly is
    :class:`UnrepresentableValueError`."""
    scale = _MILLIPENCE_PRICE_SCALE
    values = list(values_millipence)
    low, high = DUIS_PRICE_SHORT_RANGE
    while any(not low <= value <= high for value in values):
        if any(value % 10 for value in values):
            raise UnrepresentableValueError(
                f"prices {values_millipence} (1/100000 GBP) cannot all be put exactly in the "
                "DUIS PriceType (-32768..32767) at one scale")
        values = [value // 10 for value in values]
        scale += 1
    return scale, values


def require_log_period(start_seconds: int, end_seconds: int) -> None:
    """A ReadLogPeriod (device seconds) must start before it ends: else an
    :class:`InvalidRequestError` naming both date-times."""
    if start_seconds >= end_seconds:
        raise InvalidRequestError(
            f"ReadLogPeriod: StartDateTime {device_seconds_to_duis_date_time(start_seconds)} is "
            f"not before EndDateTime {device_seconds_to_duis_date_time(end_seconds)}")
