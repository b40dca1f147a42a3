"""The Annex C table: static defaults the S1SP appends to Secure commands.

Secure's SET_PAYMENT_MODE needs parameters DUIS does not carry (its ``defaults`` struct in
:data:`protocol.apdu.PREPAYMENT_DEFAULTS`). They come from ONE table, :class:`AnnexCTable`,
whose field names are exactly the APDU field names. The values below are *decided* by this
project (the real Annex C values are not public); a user sees them with
``secure-emu annex-c`` (:func:`format_annex_c_table`) and overrides any of them with a TOML
file (:meth:`AnnexCTable.load`) holding top-level keys, or keys under an ``[annex_c]`` table::

    emergency_credit_limit_pence = 1000
    keypad_lock_timeout_seconds = 120

An unknown key, a non-integer or an out-of-range value is an :class:`AnnexCError`.
This module never talks to a device.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from protocol.apdu import PrepaymentDefaults
from protocol.register_ranges import THRESHOLD_RANGE_PENCE
from protocol.s1sp.errors import AnnexCError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the tomli backport (a dependency there)
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = ["ANNEX_C_FIELD_RANGES", "AnnexCTable", "format_annex_c_table"]

#: A pence default's range: the device register's (``protocol.register_ranges``).
_PENCE = THRESHOLD_RANGE_PENCE
_U16 = (0, 0xFFFF)
_U8 = (0, 0xFF)


@dataclasses.dataclass(frozen=True)
class AnnexCTable:
    """Static defaults appended to SET_PAYMENT_MODE (money in pence, time as named)."""

    emergency_credit_limit_pence: int = 500
    emergency_credit_threshold_pence: int = 100
    low_credit_threshold_pence: int = 200
    max_meter_balance_pence: int = 25_000
    max_credit_threshold_pence: int = 10_000
    debt_recovery_rate_cap_pence: int = 1_000
    low_emergency_credit_threshold_pence: int = 100
    cut_off_grace_period_minutes: int = 30
    keypad_lock_timeout_seconds: int = 300
    non_disablement_calendar_id: int = 1
    utrn_type: int = 0

    def __post_init__(self) -> None:
        for name, (lowest, highest) in ANNEX_C_FIELD_RANGES.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise AnnexCError(f"Annex C {name} must be a whole number, not {value!r}")
            if not lowest <= value <= highest:
                raise AnnexCError(
                    f"Annex C {name} = {value} is outside {lowest}..{highest}")

    def as_defaults_fields(self) -> dict[str, int]:
        """The ``defaults`` struct of a SET_PAYMENT_MODE request, by field name."""
        return dataclasses.asdict(self)

    def as_defaults(self) -> PrepaymentDefaults:
        """The typed ``defaults`` body of a SET_PAYMENT_MODE request."""
        return PrepaymentDefaults(**self.as_defaults_fields())

    def with_overrides(self, overrides: dict[str, Any]) -> AnnexCTable:
        """A copy with ``overrides`` applied; an unknown key is an :class:`AnnexCError`."""
        unknown = sorted(set(overrides) - set(ANNEX_C_FIELD_RANGES))
        if unknown:
            raise AnnexCError(
                f"unknown Annex C key(s) {', '.join(unknown)}; known keys: "
                f"{', '.join(ANNEX_C_FIELD_RANGES)}")
        return dataclasses.replace(self, **overrides)

    @classmethod
    def load(cls, path: Path | str) -> AnnexCTable:
        """The default table with the overrides in the TOML file at ``path``."""
        try:
            with open(path, "rb") as handle:
                document = tomllib.load(handle)
        except OSError as error:
            raise AnnexCError(f"cannot read Annex C file {path}: {error.strerror}") from None
        except tomllib.TOMLDecodeError as error:
            raise AnnexCError(f"Annex C file {path} is not valid TOML: {error}") from None
        if set(document) == {"annex_c"} and isinstance(document["annex_c"], dict):
            document = document["annex_c"]
        return cls().with_overrides(document)


#: Allowed range of each field: a pence field's register range, else its APDU field width.
ANNEX_C_FIELD_RANGES: dict[str, tuple[int, int]] = {
    "emergency_credit_limit_pence": _PENCE,
    "emergency_credit_threshold_pence": _PENCE,
    "low_credit_threshold_pence": _PENCE,
    "max_meter_balance_pence": _PENCE,
    "max_credit_threshold_pence": _PENCE,
    "debt_recovery_rate_cap_pence": _PENCE,
    "low_emergency_credit_threshold_pence": _PENCE,
    "cut_off_grace_period_minutes": _U16,
    "keypad_lock_timeout_seconds": _U16,
    "non_disablement_calendar_id": _U8,
    "utrn_type": _U8,
}


def format_annex_c_table(table: AnnexCTable) -> str:
    """The table as aligned ``name  value`` lines, with a note of non-default values."""
    default = AnnexCTable()
    width = max(len(name) for name in ANNEX_C_FIELD_RANGES)
    lines = ["Annex C static defaults appended to SET_PAYMENT_MODE:"]
    for name in ANNEX_C_FIELD_RANGES:
        value = getattr(table, name)
        note = "" if value == getattr(default, name) else f"  (default {getattr(default, name)})"
        lines.append(f"  {name:<{width}}  {value}{note}")
    return "\n".join(lines)
