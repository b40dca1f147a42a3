"""The meter's tariffs as APDU fields and back (SET_TARIFF, SET_PRICES, READ_TARIFF).

On the wire TOU bands and blocks count from 1 (as DUIS indexes them); in
:mod:`emulator.metrology.tariff` they count from 0. This module is the one place that shifts
them. It must never read a clock, use floats or hold state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulator.metrology.tariff import Prices, SwitchingTable, Tariff

__all__ = ["prices_fields", "prices_of_fields", "tariff_fields", "tariff_of_fields"]


def prices_fields(prices: Prices) -> dict[str, Any]:
    return {"standing_charge_millipence_per_day": prices.standing_charge_millipence_per_day,
            "bands": [{"block_prices": [{"price_millipence_per_kwh": price} for price in band]}
                      for band in prices.block_prices_millipence_per_kwh]}


def prices_of_fields(fields: Mapping[str, Any]) -> Prices:
    """Raises ValueError for prices no tariff can hold."""
    return Prices(tuple(tuple(int(price["price_millipence_per_kwh"])
                              for price in band["block_prices"]) for band in fields["bands"]),
                  int(fields["standing_charge_millipence_per_day"]))


def tariff_fields(tariff: Tariff) -> dict[str, Any]:
    switching = tariff.switching
    return {
        "day_profiles": [{"switches": [{"start_second_of_day": start, "band": band + 1}
                                       for start, band in profile]}
                         for profile in switching.day_profiles],
        "week_day_profiles": bytes(switching.week),
        "band_thresholds": [{"thresholds": [{"threshold_wh": wh} for wh in row]}
                            for row in tariff.block_thresholds_wh],
        "block_period_seconds": tariff.block_period_seconds,
        "prices": prices_fields(tariff.prices),
    }


def tariff_of_fields(fields: Mapping[str, Any]) -> Tariff:
    """Raises ValueError for a tariff the meter cannot hold (a band 0, a switching table that
    does not start at midnight, thresholds that do not match the block prices, ...)."""
    profiles = []
    for profile in fields["day_profiles"]:
        switches = []
        for switch in profile["switches"]:
            if int(switch["band"]) < 1:
                raise ValueError("TOU bands count from 1")
            switches.append((int(switch["start_second_of_day"]), int(switch["band"]) - 1))
        profiles.append(tuple(switches))
    return Tariff(prices_of_fields(fields["prices"]),
                  SwitchingTable(tuple(profiles), tuple(bytes(fields["week_day_profiles"]))),
                  tuple(tuple(int(t["threshold_wh"]) for t in row["thresholds"])
                        for row in fields["band_thresholds"]),
                  int(fields["block_period_seconds"]))
