"""The meter's tables and constants: supply-switch transitions by payment mode, non-disablement
calendars, and the decided constants, each in one named place so it can change in one line.

Everything here is data plus tiny pure lookups; this module must never hold meter state,
read a clock or do I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from protocol.apdu import (
    MAX_LOAD_LIMIT_PERIOD_SECONDS,
    MAX_LOAD_LIMIT_POWER_THRESHOLD_W,
    MIN_LOAD_LIMIT_PERIOD_SECONDS,
    PaymentMode,
    SupplyOffReason,
    SupplyState,
)

__all__ = [
    "NON_DISABLEMENT_CALENDARS",
    "SUPPLY_TRANSITIONS",
    "UTRN_LOCKOUT_BAD_ENTRIES",
    "UTRN_LOCKOUT_SECONDS",
    "UTRN_USED_COUNTER_WINDOW",
    "NonDisablementCalendar",
    "SupplyEvent",
    "format_supply_transitions",
    "supply_transition",
]

# ---------------------------------------------------------------------------------------------
# Decided constants
# ---------------------------------------------------------------------------------------------

#: Bad UTRN entries in a row that lock UTRN entry (a good entry resets the count).
UTRN_LOCKOUT_BAD_ENTRIES = 5
#: How long UTRN entry stays locked, in device-time seconds (30 minutes).
UTRN_LOCKOUT_SECONDS = 30 * 60
#: How many of the highest accepted UTRN counters the meter remembers. A counter at or below
#: the lowest remembered one, once the window is full, is refused as a duplicate.
UTRN_USED_COUNTER_WINDOW = 64
#: The S1SR 18.37 device-profile constant: the threshold is an unsigned 16-bit field.
DEFAULT_MAX_LOAD_LIMIT_POWER_THRESHOLD_W = MAX_LOAD_LIMIT_POWER_THRESHOLD_W
#: Load-limit period and restoration period bounds, seconds.
LOAD_LIMIT_PERIOD_MIN_SECONDS = MIN_LOAD_LIMIT_PERIOD_SECONDS
LOAD_LIMIT_PERIOD_MAX_SECONDS = MAX_LOAD_LIMIT_PERIOD_SECONDS


# ---------------------------------------------------------------------------------------------
# Supply switch (contactor on the ESME, valve on the GSME)
# ---------------------------------------------------------------------------------------------


class SupplyEvent(enum.Enum):
    REMOTE_ENABLE = "remote enable (SR 7.1, ESME only)"
    REMOTE_DISABLE = "remote disable (SR 7.2)"
    REMOTE_ARM = "remote arm (SR 7.3)"
    BUTTON_PRESSED = "customer presses the button on an armed meter"
    CREDIT_EXHAUSTED = "available credit fell below the disablement threshold"
    CREDIT_RESTORED = "available credit is back at or above the disablement threshold"
    LOAD_LIMIT_TRIPPED = "average demand over a load-limit period exceeded the threshold"
    LOAD_LIMIT_RESTORED = "the load-limit restoration period ended"
    MODE_TO_CREDIT = "payment mode changed to credit"


_ANY = None  # wildcard for the off-reason in the table key
_Key = tuple[PaymentMode, SupplyEvent, SupplyState, "SupplyOffReason | None"]
_Target = tuple[SupplyState, "SupplyOffReason | None"]  # None reason: keep the current one

_P, _C = PaymentMode.PREPAYMENT, PaymentMode.CREDIT
_EN, _DIS, _ARM = SupplyState.ENABLED, SupplyState.DISABLED, SupplyState.ARMED
_R = SupplyOffReason


def _both(event: SupplyEvent, state: SupplyState, reason: SupplyOffReason | None,
          target: _Target) -> dict[_Key, _Target]:
    return {(_P, event, state, reason): target, (_C, event, state, reason): target}


#: (payment mode, event, supply state, off reason or _ANY) -> (new state, new reason or keep).
#: A pair missing from the table means: a request is refused with NOT_PERMITTED_IN_STATE, an
#: internal event changes nothing. Guards that depend on credit (remote enable and the button
#: in prepayment need available credit at or above the disablement threshold, or a
#: non-disablement period) are applied by the meter before it looks here.
#: Decided: load-limit restoration and credit restoration ARM the switch (the customer presses
#: the button to close it); ARMED keeps the reason it went off for, for display.
SUPPLY_TRANSITIONS: dict[_Key, _Target] = {
    # requests (SET_SUPPLY_STATE), both modes
    **_both(SupplyEvent.REMOTE_ENABLE, _EN, _ANY, (_EN, _R.NONE)),
    **_both(SupplyEvent.REMOTE_ENABLE, _DIS, _ANY, (_EN, _R.NONE)),
    **_both(SupplyEvent.REMOTE_ENABLE, _ARM, _ANY, (_EN, _R.NONE)),
    **_both(SupplyEvent.REMOTE_DISABLE, _EN, _ANY, (_DIS, _R.REMOTE)),
    **_both(SupplyEvent.REMOTE_DISABLE, _DIS, _ANY, (_DIS, _R.REMOTE)),
    **_both(SupplyEvent.REMOTE_DISABLE, _ARM, _ANY, (_DIS, _R.REMOTE)),
    **_both(SupplyEvent.REMOTE_ARM, _DIS, _ANY, (_ARM, None)),
    **_both(SupplyEvent.REMOTE_ARM, _ARM, _ANY, (_ARM, None)),
    # the customer's button
    **_both(SupplyEvent.BUTTON_PRESSED, _ARM, _ANY, (_EN, _R.NONE)),
    # load limiting (raised only by an ESME: a GSME has no load limiting)
    **_both(SupplyEvent.LOAD_LIMIT_TRIPPED, _EN, _ANY, (_DIS, _R.LOAD_LIMIT)),
    **_both(SupplyEvent.LOAD_LIMIT_RESTORED, _DIS, _R.LOAD_LIMIT, (_ARM, None)),
    # prepayment credit rules
    (_P, SupplyEvent.CREDIT_EXHAUSTED, _EN, _ANY): (_DIS, _R.NO_CREDIT),
    (_P, SupplyEvent.CREDIT_EXHAUSTED, _ARM, _ANY): (_DIS, _R.NO_CREDIT),
    (_P, SupplyEvent.CREDIT_RESTORED, _DIS, _R.NO_CREDIT): (_ARM, None),
    # leaving prepayment lifts a no-credit disablement to armed
    (_C, SupplyEvent.MODE_TO_CREDIT, _DIS, _R.NO_CREDIT): (_ARM, None),
}


def supply_transition(mode: PaymentMode, event: SupplyEvent, state: SupplyState,
                      reason: SupplyOffReason) -> tuple[SupplyState, SupplyOffReason] | None:
    """The new (state, reason) for ``event``, or None when the table does not allow it."""
    target = SUPPLY_TRANSITIONS.get((mode, event, state, reason))
    if target is None:
        target = SUPPLY_TRANSITIONS.get((mode, event, state, _ANY))
    if target is None:
        return None
    new_state, new_reason = target
    return new_state, reason if new_reason is None else new_reason


# ---------------------------------------------------------------------------------------------
# Non-disablement (friendly credit) calendars
# ---------------------------------------------------------------------------------------------

SECONDS_PER_HOUR = 3_600
SECONDS_PER_DAY = 86_400
SECONDS_PER_WEEK = 7 * SECONDS_PER_DAY
#: 1970-01-05T00:00:00Z, the first Monday of the epoch (1970-01-01 was a Thursday).
_FIRST_MONDAY_SECONDS = 4 * SECONDS_PER_DAY


@dataclass(frozen=True)
class NonDisablementCalendar:
    """Weekly windows, ``[start, end)`` seconds from Monday 00:00 UTC, during which the supply
    is never disabled for lack of credit. Windows are sorted and do not overlap."""

    name: str
    windows: tuple[tuple[int, int], ...]

    def is_active(self, device_time_seconds: int) -> bool:
        second_of_week = (device_time_seconds - _FIRST_MONDAY_SECONDS) % SECONDS_PER_WEEK
        return any(start <= second_of_week < end for start, end in self.windows)

    def next_boundary_after(self, device_time_seconds: int) -> int | None:
        """The first window start or end strictly after ``device_time_seconds``."""
        if not self.windows:
            return None
        week_start = device_time_seconds - (device_time_seconds - _FIRST_MONDAY_SECONDS) % (
            SECONDS_PER_WEEK)
        second_of_week = device_time_seconds - week_start
        edges = sorted({edge for window in self.windows for edge in window})
        for edge in edges:
            if edge > second_of_week:
                return week_start + edge
        return week_start + SECONDS_PER_WEEK + edges[0]


def _weekday_evenings_and_weekends() -> tuple[tuple[int, int], ...]:
    day, h = SECONDS_PER_DAY, SECONDS_PER_HOUR
    windows = [(0, 10 * h)]  # Monday until 10:00 (the tail of the weekend)
    windows += [(d * day + 16 * h, (d + 1) * day + 10 * h) for d in range(4)]  # Mon..Thu 16:00
    windows.append((4 * day + 16 * h, SECONDS_PER_WEEK))  # Friday 16:00 to Monday 00:00
    return tuple(windows)


#: non_disablement_calendar_id -> calendar. 0 = none. 1 = (decided) every weekday from 16:00
#: until 10:00 the next morning, and the whole weekend from Friday 16:00 to Monday 10:00, UTC.
NON_DISABLEMENT_CALENDARS: dict[int, NonDisablementCalendar] = {
    0: NonDisablementCalendar("none", ()),
    1: NonDisablementCalendar("weekday evenings and nights, and weekends",
                              _weekday_evenings_and_weekends()),
}


def format_supply_transitions() -> str:
    """The supply table as Markdown, for docs (one row per transition, in table order)."""
    lines = ["| mode | event | from | off reason | to | off reason after |",
             "|---|---|---|---|---|---|"]
    for (mode, event, state, reason), (new_state, new_reason) in SUPPLY_TRANSITIONS.items():
        lines.append(f"| {mode.name} | {event.name} | {state.name} | "
                     f"{'any' if reason is None else reason.name} | {new_state.name} | "
                     f"{'unchanged' if new_reason is None else new_reason.name} |")
    return "\n".join(lines)
