"""Per-field codecs between device parts and the state file's JSON shape.

A meter's registers (:class:`emulator.meter_registers.MeterRegisters`) and a hub's HAN
(:class:`emulator.hub.Han`) are held as typed values; this module alone turns them into the
JSON-able values the state file keeps (enums as ints or names, bytes as hex) and back. Every
register has its codec named in :data:`METER_REGISTER_CODECS`; decoding checks each value and
raises :class:`emulator.errors.StateError` naming the register or key that is wrong.

The encoded shape is the state file format (``emulator.persistence.STATE_FORMAT_VERSION`` 1):
changing it breaks state files already written. This module never does I/O.
"""

from __future__ import annotations

import dataclasses
import enum
from array import array
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from emulator.errors import StateError
from emulator.hub import HAN_TABLE_MAX_ENTRIES, Han, HanEntry
from emulator.meter_registers import (
    PREPAYMENT_PARAMETERS,
    Debt,
    MeterRegisters,
    PrepaymentParameters,
)
from emulator.metrology.engine import EnergyRegisters
from emulator.metrology.logs import DeviationLog, PrepaymentDailyLog, RegisterSnapshots
from emulator.metrology.max_demand import MaxDemand, MaxDemandRegisters
from emulator.metrology.tariff import PendingChange, Prices, SwitchingTable, Tariff
from protocol.apdu import (
    DebtRecoveryPeriod,
    DebtRegister,
    HanEntryState,
    PaymentMode,
    SupplyOffReason,
    SupplyState,
)
from protocol.register_ranges import (
    METER_BALANCE_RANGE_PENCE,
    SIGNED_THRESHOLD_RANGE_PENCE,
    THRESHOLD_RANGE_PENCE,
)

__all__ = [
    "METER_REGISTER_CODECS",
    "decode_eui64_hex",
    "decode_han",
    "decode_meter_registers",
    "encode_han",
    "encode_meter_registers",
]


@dataclass(frozen=True)
class FieldCodec:
    """How one register is written to JSON and read back (``decode`` raises ValueError or
    TypeError saying what it expected)."""

    expected: str
    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


def _whole(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("not a whole number")
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("not true or false")
    return value


def _enum_codec(enum_class: type[enum.IntEnum]) -> FieldCodec:
    return FieldCodec(f"one of {', '.join(str(int(m)) for m in enum_class)}", int,
                      lambda value: enum_class(_whole(value)))


def _list_of(item: Callable[[Any], Any]) -> Callable[[Any], list[Any]]:
    def decode(value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise TypeError("not a list")
        return [item(v) for v in value]
    return decode


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("not text")
    return value


def _decode_parameters(value: Any) -> PrepaymentParameters:
    if not isinstance(value, dict) or set(value) != set(PREPAYMENT_PARAMETERS):
        raise ValueError(f"not a table of {', '.join(PREPAYMENT_PARAMETERS)}")
    return PrepaymentParameters(**{name: _whole(v) for name, v in value.items()})


_DEBT_CODECS: dict[str, FieldCodec] = {
    "debt_value_pence": FieldCodec("a whole number", int, _whole),
    "debt_recovery_rate_pence": FieldCodec("a whole number", int, _whole),
    "debt_recovery_period": _enum_codec(DebtRecoveryPeriod),
    "debt_recovery_percentage": FieldCodec("a whole number", int, _whole),
}


#: The debt registers, under their names (``TIME_DEBT_1``, ...) in the state file.
_DEBT_REGISTER_NAMES: tuple[str, ...] = tuple(register.name for register in DebtRegister)


def _encode_debts(debts: Mapping[DebtRegister, Debt]) -> dict[str, dict[str, int]]:
    return {register.name: {key: _DEBT_CODECS[key].encode(value)
                             for key, value in dataclasses.asdict(debt).items()}
            for register, debt in debts.items()}


def _decode_debts(value: Any) -> dict[DebtRegister, Debt]:
    if not isinstance(value, dict) or set(value) != set(_DEBT_REGISTER_NAMES):
        raise ValueError(f"not a table of {', '.join(_DEBT_REGISTER_NAMES)}")
    debts: dict[DebtRegister, Debt] = {}
    for name, raw in value.items():
        if not isinstance(raw, dict) or set(raw) != set(_DEBT_CODECS):
            raise ValueError(f"{name} is not a table of {', '.join(_DEBT_CODECS)}")
        debts[DebtRegister[name]] = Debt(**{key: codec.decode(raw[key])
                                            for key, codec in _DEBT_CODECS.items()})
    return debts


def _decode_segments(value: Any) -> tuple[tuple[int, int], ...]:
    pairs = []
    for pair in _list_of(_list_of(_whole))(value):
        if len(pair) != 2:
            raise ValueError("not [start_second_of_day, load_w] pairs")
        pairs.append((pair[0], pair[1]))
    return tuple(pairs)


_INT = FieldCodec("a whole number", int, _whole)


def _money(value_range: tuple[int, int]) -> FieldCodec:
    """A money register within its documented range (protocol.register_ranges): a state file
    holding more than the wire and DUIS can carry is refused, not loaded."""
    lowest, highest = value_range

    def decode(value: Any) -> int:
        pence = _whole(value)
        if not lowest <= pence <= highest:
            raise ValueError(f"outside the register's range {lowest}..{highest} p")
        return pence

    return FieldCodec(f"whole pence within {lowest}..{highest}", int, decode)

_BOOL = FieldCodec("true or false", bool, _flag)


# ---- metrology registers and logs (emulator.metrology) -----------------------------------------


def _table(value: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) != set(keys):
        raise ValueError(f"not a table of {', '.join(keys)}")
    return value


def _encode_int_table(table: Mapping[int, int]) -> dict[str, int]:
    return {str(key): value for key, value in sorted(table.items())}


def _decode_int_table(value: Any) -> dict[int, int]:
    if not isinstance(value, dict):
        raise TypeError("not a table")
    return {int(_text(key)): _whole(v) for key, v in value.items()}


#: total_ws is not among them: it is saved as energy_imported_ws (the meter sets it back)
_ENERGY_KEYS = ("cells_ws", "block_period_start_seconds", "block_period_used_ws")


def _encode_energy(energy: EnergyRegisters) -> dict[str, Any]:
    return {"cells_ws": _encode_int_table(energy.cells_ws),
            "block_period_start_seconds": energy.block_period_start_seconds,
            "block_period_used_ws": _encode_int_table(energy.block_period_used_ws)}


def _decode_energy(value: Any) -> EnergyRegisters:
    table = _table(value, _ENERGY_KEYS)
    return EnergyRegisters(0, _decode_int_table(table["cells_ws"]),
                           _whole(table["block_period_start_seconds"]),
                           _decode_int_table(table["block_period_used_ws"]))


def _columns_codec(kind: type, columns: Mapping[str, str], whole: tuple[str, ...] = ()
                   ) -> FieldCodec:
    """A log of :mod:`array` ``columns`` (name -> typecode) and whole-number fields, as a table
    of lists and numbers."""
    keys = (*columns, *whole)

    def encode(log: Any) -> dict[str, Any]:
        return {**{name: getattr(log, name).tolist() for name in columns},
                **{name: getattr(log, name) for name in whole}}

    def decode(value: Any) -> Any:
        table = _table(value, keys)
        try:
            arrays = {name: array(code, _list_of(_whole)(table[name]))
                      for name, code in columns.items()}
        except OverflowError as error:
            raise ValueError(str(error)) from None
        return kind(**arrays, **{name: _whole(table[name]) for name in whole})

    return FieldCodec(f"a table of {', '.join(keys)}", encode, decode)


_MAX_DEMAND_KEYS = ("value_w", "capture_seconds", "last_reset_seconds")


def _encode_max_demand(registers: MaxDemandRegisters | None) -> dict[str, Any] | None:
    if registers is None:
        return None
    return {"active": dataclasses.asdict(registers.active),
            "configurable_time": dataclasses.asdict(registers.configurable_time),
            "window_start_second_of_day": registers.window_start_second_of_day,
            "window_end_second_of_day": registers.window_end_second_of_day}


def _decode_max_demand(value: Any) -> MaxDemandRegisters | None:
    if value is None:
        return None
    table = _table(value, ("active", "configurable_time", "window_start_second_of_day",
                           "window_end_second_of_day"))
    active, configurable = (
        MaxDemand(**{key: _whole(v) for key, v in _table(table[name], _MAX_DEMAND_KEYS).items()})
        for name in ("active", "configurable_time"))
    return MaxDemandRegisters(active, configurable, _whole(table["window_start_second_of_day"]),
                              _whole(table["window_end_second_of_day"]))


def _encode_prices(prices: Prices) -> dict[str, Any]:
    return {"block_prices_millipence_per_kwh": [list(band) for band in
                                                prices.block_prices_millipence_per_kwh],
            "standing_charge_millipence_per_day": prices.standing_charge_millipence_per_day}


def _decode_prices(value: Any) -> Prices:
    table = _table(value, ("block_prices_millipence_per_kwh",
                           "standing_charge_millipence_per_day"))
    return Prices(tuple(tuple(row) for row in _list_of(_list_of(_whole))(
        table["block_prices_millipence_per_kwh"])),
        _whole(table["standing_charge_millipence_per_day"]))


_TARIFF_KEYS = ("prices", "day_profiles", "week", "block_thresholds_wh", "block_period_seconds")


def _encode_tariff(tariff: Tariff | None) -> dict[str, Any] | None:
    if tariff is None:
        return None
    return {"prices": _encode_prices(tariff.prices),
            "day_profiles": [[list(pair) for pair in profile]
                             for profile in tariff.switching.day_profiles],
            "week": list(tariff.switching.week),
            "block_thresholds_wh": [list(row) for row in tariff.block_thresholds_wh],
            "block_period_seconds": tariff.block_period_seconds}


def _decode_tariff(value: Any) -> Tariff | None:
    if value is None:
        return None
    table = _table(value, _TARIFF_KEYS)
    profiles = tuple(_decode_segments(profile) for profile in _list_of(
        lambda item: item)(table["day_profiles"]))
    return Tariff(_decode_prices(table["prices"]),
                  SwitchingTable(profiles, tuple(_list_of(_whole)(table["week"]))),
                  tuple(tuple(row) for row in _list_of(_list_of(_whole))(
                      table["block_thresholds_wh"])),
                  _whole(table["block_period_seconds"]))


def _encode_changes(changes: tuple[PendingChange, ...]) -> list[dict[str, Any]]:
    return [{"effective_seconds": change.effective_seconds,
             "tariff": _encode_tariff(change.tariff),
             "prices": None if change.prices is None else _encode_prices(change.prices)}
            for change in changes]


def _decode_changes(value: Any) -> tuple[PendingChange, ...]:
    changes = []
    for raw in _list_of(lambda item: item)(value):
        table = _table(raw, ("effective_seconds", "tariff", "prices"))
        changes.append(PendingChange(
            _whole(table["effective_seconds"]), _decode_tariff(table["tariff"]),
            None if table["prices"] is None else _decode_prices(table["prices"])))
    return tuple(changes)


def _decode_load_history(value: Any
                         ) -> tuple[tuple[int, tuple[tuple[int, int], ...] | None], ...]:
    entries = []
    for entry in _list_of(lambda item: item)(value):
        if not isinstance(entry, list) or len(entry) != 2:
            raise ValueError("not [start_seconds, segments or null] entries")
        entries.append((_whole(entry[0]),
                        None if entry[1] is None else _decode_segments(entry[1])))
    return tuple(entries)


def _encode_load_history(history: tuple[tuple[int, Any], ...]) -> list[list[Any]]:
    return [[start, None if segments is None else [list(pair) for pair in segments]]
            for start, segments in history]

#: Register name -> its codec: one entry per field of MeterRegisters (checked at import).
METER_REGISTER_CODECS: dict[str, FieldCodec] = {
    "now_seconds": _INT,
    "payment_mode": _enum_codec(PaymentMode),
    "meter_balance_pence": _money(METER_BALANCE_RANGE_PENCE),
    "supply_state": _enum_codec(SupplyState),
    "supply_off_reason": _enum_codec(SupplyOffReason),
    "disablement_threshold_pence": _money(SIGNED_THRESHOLD_RANGE_PENCE),
    "suspend_debt_disabled": _BOOL,
    "suspend_debt_emergency": _BOOL,
    "prepayment_parameters": FieldCodec("a table of whole numbers", dataclasses.asdict,
                                        _decode_parameters),
    "configured_parameters": FieldCodec("a list of names", list, _list_of(_text)),
    "debts": FieldCodec("a table of debt registers", _encode_debts, _decode_debts),
    "load_profile_override": FieldCodec(
        "a list of [start_second_of_day, load_w] pairs",
        lambda segments: [list(pair) for pair in segments], _decode_segments),
    "emergency_credit_active": _BOOL,
    "emergency_credit_balance_pence": _money(THRESHOLD_RANGE_PENCE),
    "emergency_credit_granted_pence": _INT,
    "debt_recovered_today_pence": _INT,
    "debt_recovery_day": _INT,
    "debt_recovered_total_pence": _INT,
    "cost_remainder_units": _INT,
    "consumption_debited_pence": _INT,
    "energy_imported_ws": _INT,
    "load_limit_power_threshold_w": _INT,
    "load_limit_period_seconds": _INT,
    "load_limit_restoration_period_seconds": _INT,
    "load_limit_counter": _INT,
    "load_limit_period_energy_ws": _INT,
    "load_limit_restoration_ends_at_seconds": _INT,
    "utrn_used_counters": FieldCodec("a list of whole numbers", list, _list_of(_whole)),
    "utrn_bad_entries_in_a_row": _INT,
    "utrn_locked_until_seconds": _INT,
    "energy": FieldCodec(f"a table of {', '.join(_ENERGY_KEYS)}", _encode_energy,
                         _decode_energy),
    "half_hour_energy_ws": _INT,
    "half_hour_model_energy_ws": _INT,
    "load_history": FieldCodec("a list of [start_seconds, segments or null]",
                               _encode_load_history, _decode_load_history),
    "max_demand": FieldCodec("a table of the max demand registers, or null",
                             _encode_max_demand, _decode_max_demand),
    "half_hour_deviations": _columns_codec(
        DeviationLog, {"firsts": "i", "counts": "i", "energies_ws": "q"}),
    "register_snapshots": _columns_codec(
        RegisterSnapshots, {"days": "i", "offsets": "H", "cells": "H", "values_ws": "q"},
        ("depth",)),
    "prepayment_daily_log": _columns_codec(
        PrepaymentDailyLog, {"ring": "i"}, ("depth", "next_slot")),
    "tariff_in_force": FieldCodec("a tariff table or null", _encode_tariff, _decode_tariff),
    "tariff_changes": FieldCodec("a list of tariff changes", _encode_changes, _decode_changes),
}
_REGISTER_FIELDS = {f.name: f for f in dataclasses.fields(MeterRegisters)}
if set(METER_REGISTER_CODECS) != set(_REGISTER_FIELDS):  # pragma: no cover - a coding error
    raise RuntimeError("METER_REGISTER_CODECS must name every MeterRegisters field once")
_REQUIRED_REGISTERS = frozenset(
    name for name, f in _REGISTER_FIELDS.items()
    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)


#: Registers added with the metrology: saved only when they differ from their default, so a
#: state file written before them re-encodes to the same bytes until the meter advances.
_SAVED_WHEN_USED = ("energy", "half_hour_energy_ws", "half_hour_model_energy_ws",
                    "load_history", "max_demand", "half_hour_deviations",
                    "register_snapshots", "prepayment_daily_log", "tariff_in_force",
                    "tariff_changes")


def _encoded_default(name: str) -> Any:
    f = _REGISTER_FIELDS[name]
    default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
    return METER_REGISTER_CODECS[name].encode(default)


_ENCODED_DEFAULTS = {name: _encoded_default(name) for name in _SAVED_WHEN_USED}


def encode_meter_registers(registers: MeterRegisters) -> dict[str, Any]:
    """Every register, JSON-able (fresh containers: later changes to the meter do not show);
    the metrology registers only once used."""
    state = {}
    for name, codec in METER_REGISTER_CODECS.items():
        value = codec.encode(getattr(registers, name))
        if name not in _ENCODED_DEFAULTS or value != _ENCODED_DEFAULTS[name]:
            state[name] = value
    return state


def decode_meter_registers(state: Mapping[str, Any]) -> MeterRegisters:
    """The registers of :func:`encode_meter_registers`'s output. A register left out takes
    its default if it has one. Raises :class:`StateError` naming what is missing, unknown or
    of the wrong type."""
    unknown = set(state) - set(METER_REGISTER_CODECS)
    if unknown:
        raise StateError(f"saved meter state has unknown keys {sorted(unknown)}; it was "
                         "written by another version: delete the state file to start afresh")
    missing = _REQUIRED_REGISTERS - set(state)
    if missing:
        raise StateError(f"saved meter state lacks {sorted(missing)}")
    values = {}
    for name, value in state.items():
        codec = METER_REGISTER_CODECS[name]
        try:
            values[name] = codec.decode(value)
        except (TypeError, ValueError) as error:
            raise StateError(f"saved meter state: {name} should be {codec.expected}, got "
                             f"{value!r} ({error})") from None
    registers = MeterRegisters(**values)
    registers.energy.total_ws = registers.energy_imported_ws  # saved once, under that name
    return registers


# ---- the HAN ------------------------------------------------------------------------------------


def encode_han(han: Han) -> dict[str, Any]:
    holder = han.holder_eui64
    return {
        "entries": [{"device_eui64": e.device_eui64.hex(), "state": e.state.name,
                     "join_window_closes_at_seconds": e.join_window_closes_at_seconds}
                    for e in han.entries],
        "transfer_lock_holder_eui64": None if holder is None else holder.hex(),
    }


def decode_han(hub_eui64: bytes, state: Mapping[str, Any]) -> Han:
    """A HAN restored from :func:`encode_han`; :class:`StateError` names what is wrong."""
    entries: list[HanEntry] = []
    try:
        for raw in state["entries"]:
            eui64 = decode_eui64_hex(raw["device_eui64"])
            closes_at = raw["join_window_closes_at_seconds"]
            if isinstance(closes_at, bool) or not isinstance(closes_at, int) or closes_at < 0:
                raise StateError(f"HAN entry join_window_closes_at_seconds {closes_at!r} is "
                                 "not a whole number >= 0")
            state_name = raw["state"]
            if state_name not in HanEntryState.__members__:
                raise StateError(f"HAN entry state {state_name!r} is not one of "
                                 f"{', '.join(HanEntryState.__members__)}")
            entries.append(HanEntry(eui64, HanEntryState[state_name], closes_at))
        holder = state["transfer_lock_holder_eui64"]
        holder_eui64 = None if holder is None else decode_eui64_hex(holder)
    except KeyError as error:
        raise StateError(f"saved HAN state of hub {hub_eui64.hex()} lacks "
                         f"{error.args[0]!r}") from None
    except TypeError as error:
        raise StateError(f"saved HAN state of hub {hub_eui64.hex()} is malformed: "
                         f"{error}") from None
    if len({e.device_eui64 for e in entries}) > HAN_TABLE_MAX_ENTRIES:
        raise StateError(f"saved HAN state of hub {hub_eui64.hex()} holds "
                         f"{len({e.device_eui64 for e in entries})} entries, more than "
                         f"{HAN_TABLE_MAX_ENTRIES}")
    return Han(hub_eui64, entries, holder_eui64)


def decode_eui64_hex(text: Any) -> bytes:
    """A saved EUI-64 (16 hex digits) as 8 bytes; :class:`StateError` otherwise."""
    if not isinstance(text, str):
        raise StateError(f"saved EUI-64 {text!r} is not hex text")
    try:
        value = bytes.fromhex(text)
    except ValueError:
        raise StateError(f"saved EUI-64 {text!r} is not hex text") from None
    if len(value) != 8:
        raise StateError(f"saved EUI-64 {text!r} is not 8 bytes")
    return value
