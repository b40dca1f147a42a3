"""The metrology keys of a profile's ``[devices.meter]`` table: parsed values and the tariff and
load model built from them.

Keys (all optional; see :class:`emulator.meter_config.MeterConfig`):

- ``tariff_prices_millipence_per_kwh``: per TOU band, its block prices (``[[15000], [32000]]``
  is a two-band TOU tariff; ``[[10000, 20000]]`` a one-band two-block tariff). Left out: one
  band, one block at ``unit_rate_millipence_per_kwh``.
- ``tariff_block_thresholds_wh``: per band, its thresholds (one fewer than its prices).
- ``tariff_block_period_seconds``: default 86400 (a UTC day).
- ``tariff_day_profiles``: day profiles, each a list of ``[start_second_of_day, band]`` from 0.
- ``tariff_week``: 7 day-profile indices, Monday first (default all 0).
- ``load_shape_w``: 48 half-hour loads (W) of a daily shape, instead of ``load_w`` /
  ``load_profile``; with ``load_seed`` the loads are drawn around the shape
  (``load_spread_percent``, default 20).
- ``voltage_nominal_decivolts`` (default 2300 = 230.0 V), ``voltage_spread_decivolts``
  (default 100), ``voltage_seed`` (default 0), ``voltage_over_threshold_decivolts`` (default
  2530) and ``voltage_under_threshold_decivolts`` (default 2162): the ESME's network voltage
  model (:mod:`emulator.metrology.voltage`).

This module only parses and validates values; it never reads files or a clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emulator.consumption import LoadProfile
from emulator.errors import ProfileError
from emulator.metrology.load_model import HalfHourShape, LoadModel, LoadModelError, SeededShape
from emulator.metrology.tariff import Prices, SwitchingTable, Tariff
from emulator.metrology.voltage import VoltageModel, VoltageModelError

__all__ = ["METROLOGY_KEY_PARSERS", "load_model_of", "tariff_of", "voltage_model_of"]


def _whole(key: str, raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise ProfileError(f"{key} must hold whole numbers, got {raw!r}")
    return raw


def _list(key: str, raw: Any) -> list[Any]:
    if not isinstance(raw, list | tuple):
        raise ProfileError(f"{key} must be a list, got {raw!r}")
    return list(raw)


def _ints(key: str, raw: Any) -> tuple[int, ...]:
    return tuple(_whole(key, item) for item in _list(key, raw))


def _rows(key: str, raw: Any) -> tuple[tuple[int, ...], ...]:
    return tuple(_ints(key, row) for row in _list(key, raw))


def _day_profiles(key: str, raw: Any) -> tuple[tuple[tuple[int, int], ...], ...]:
    profiles = []
    for profile in _list(key, raw):
        pairs = []
        for pair in _list(key, profile):
            values = _ints(key, pair)
            if len(values) != 2:
                raise ProfileError(f"{key} entry {pair!r} is not [start_second_of_day, band]")
            pairs.append((values[0], values[1]))
        profiles.append(tuple(pairs))
    return tuple(profiles)


#: profile key -> parser of its raw TOML value
METROLOGY_KEY_PARSERS: dict[str, Callable[[str, Any], Any]] = {
    "tariff_prices_millipence_per_kwh": _rows,
    "tariff_block_thresholds_wh": _rows,
    "tariff_block_period_seconds": _whole,
    "tariff_day_profiles": _day_profiles,
    "tariff_week": _ints,
    "load_shape_w": _ints,
    "load_seed": _whole,
    "load_spread_percent": _whole,
    "voltage_nominal_decivolts": _whole,
    "voltage_spread_decivolts": _whole,
    "voltage_seed": _whole,
    "voltage_over_threshold_decivolts": _whole,
    "voltage_under_threshold_decivolts": _whole,
}


def tariff_of(config: Any) -> Tariff:
    """The tariff a :class:`emulator.meter_config.MeterConfig` describes; ProfileError if its
    keys do not make one."""
    try:
        prices = (Prices(config.tariff_prices_millipence_per_kwh,
                         config.standing_charge_millipence_per_day)
                  if config.tariff_prices_millipence_per_kwh else
                  Prices.flat(config.unit_rate_millipence_per_kwh,
                              config.standing_charge_millipence_per_day))
        switching = SwitchingTable(config.tariff_day_profiles or SwitchingTable().day_profiles,
                                   config.tariff_week)
        return Tariff(prices, switching, config.tariff_block_thresholds_wh,
                      config.tariff_block_period_seconds)
    except ValueError as error:
        raise ProfileError(f"tariff: {error}") from None


def load_model_of(config: Any) -> LoadModel:
    """The load model a config describes: its replayed CSV, its shape (seeded or not) or its
    load profile."""
    if config.load_replay is not None:
        return config.load_replay
    if not config.load_shape_w:
        if config.load_seed is not None:
            raise ProfileError("load_seed needs load_shape_w (the shape to draw around)")
        return LoadProfile(config.load_profile)
    try:
        if config.load_seed is None:
            return HalfHourShape(config.load_shape_w)
        return SeededShape(config.load_shape_w, config.load_seed, config.load_spread_percent)
    except LoadModelError as error:
        raise ProfileError(f"load_shape_w: {error}") from None


def voltage_model_of(config: Any) -> VoltageModel:
    """The network voltage model a config describes; ProfileError if its keys do not make
    one."""
    try:
        return VoltageModel(config.voltage_nominal_decivolts, config.voltage_spread_decivolts,
                            config.voltage_seed, config.voltage_over_threshold_decivolts,
                            config.voltage_under_threshold_decivolts)
    except VoltageModelError as error:
        raise ProfileError(f"voltage: {error}") from None
