"""The documented ranges of a Secure device's money registers, in whole pence.

Money travels as i32 pence on the wire, but a register never holds more than DUIS can carry:
DUIS money is an int32 count of 1/100000 GBP, so the widest whole-pence value whose DUIS form
(pence x 1000) still fits is 2147483 p (21,474.83 GBP). The device refuses any request that
would take a register outside its range (VALUE_OUT_OF_RANGE, nothing changed); the S1SP checks
the same ranges before sending, so that its refusal names the DUIS element.

This module is data only: it never holds state, reads a clock or does I/O.
"""

from __future__ import annotations

__all__ = [
    "DEBT_REGISTER_RANGE_PENCE",
    "METER_BALANCE_RANGE_PENCE",
    "MONEY_REGISTER_MAX_PENCE",
    "MONEY_REGISTER_MIN_PENCE",
    "SIGNED_THRESHOLD_RANGE_PENCE",
    "THRESHOLD_RANGE_PENCE",
    "in_range",
]

#: The widest whole-pence values whose DUIS form (x 1000) fits int32.
MONEY_REGISTER_MAX_PENCE = (2**31 - 1) // 1000  # 2147483
MONEY_REGISTER_MIN_PENCE = -MONEY_REGISTER_MAX_PENCE
#: The meter balance is signed (credit below zero is debt to the supplier). Consumption never
#: takes it below the minimum (the register saturates there).
METER_BALANCE_RANGE_PENCE = (MONEY_REGISTER_MIN_PENCE, MONEY_REGISTER_MAX_PENCE)
#: The disablement threshold is compared with the (signed) available credit: it may be
#: negative (*decided*).
SIGNED_THRESHOLD_RANGE_PENCE = (MONEY_REGISTER_MIN_PENCE, MONEY_REGISTER_MAX_PENCE)
#: Every other prepayment threshold, limit and cap (emergency credit limit and threshold,
#: low-credit thresholds, max meter balance, max credit threshold, debt-recovery-rate cap).
THRESHOLD_RANGE_PENCE = (0, MONEY_REGISTER_MAX_PENCE)
#: Each debt register, a time-debt recovery rate, and the accumulated debt (their sum).
DEBT_REGISTER_RANGE_PENCE = (0, MONEY_REGISTER_MAX_PENCE)


def in_range(value: int, value_range: tuple[int, int]) -> bool:
    lowest, highest = value_range
    return lowest <= value <= highest
