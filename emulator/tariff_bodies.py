"""The meter's tariffs as typed APDU bodies and back (SET_TARIFF, SET_PRICES, READ_TARIFF).

On the wire TOU bands and blocks count from 1 (as DUIS indexes them); in
:mod:`emulator.metrology.tariff` they count from 0. This module is the one place that shifts
them. It must never read a clock, use floats or hold state.
"""

from __future__ import annotations

from emulator.metrology.tariff import Prices, SwitchingTable, Tariff
from protocol import apdu

__all__ = ["prices_body", "prices_of_body", "tariff_body", "tariff_of_body"]


def prices_body(prices: Prices) -> apdu.TariffPrices:
    return apdu.TariffPrices(
        standing_charge_millipence_per_day=prices.standing_charge_millipence_per_day,
        bands=tuple(apdu.BandPrices(tuple(apdu.BlockPrice(price) for price in band))
                    for band in prices.block_prices_millipence_per_kwh))


def prices_of_body(body: apdu.TariffPrices) -> Prices:
    """Raises ValueError for prices no tariff can hold."""
    return Prices(tuple(tuple(price.price_millipence_per_kwh for price in band.block_prices)
                        for band in body.bands),
                  body.standing_charge_millipence_per_day)


def tariff_body(tariff: Tariff) -> apdu.Tariff:
    switching = tariff.switching
    return apdu.Tariff(
        day_profiles=tuple(apdu.DayProfile(tuple(apdu.BandSwitch(start, band + 1)
                                                 for start, band in profile))
                           for profile in switching.day_profiles),
        week_day_profiles=bytes(switching.week),
        band_thresholds=tuple(apdu.BandThresholds(tuple(apdu.BlockThreshold(wh) for wh in row))
                              for row in tariff.block_thresholds_wh),
        block_period_seconds=tariff.block_period_seconds,
        prices=prices_body(tariff.prices),
    )


def tariff_of_body(body: apdu.Tariff) -> Tariff:
    """Raises ValueError for a tariff the meter cannot hold (a band 0, a switching table that
    does not start at midnight, thresholds that do not match the block prices, ...)."""
    profiles = []
    for profile in body.day_profiles:
        switches = []
        for switch in profile.switches:
            if switch.band < 1:
                raise ValueError("TOU bands count from 1")
            switches.append((switch.start_second_of_day, switch.band - 1))
        profiles.append(tuple(switches))
    return Tariff(prices_of_body(body.prices),
                  SwitchingTable(tuple(profiles), tuple(body.week_day_profiles)),
                  tuple(tuple(t.threshold_wh for t in row.thresholds)
                        for row in body.band_thresholds),
                  body.block_period_seconds)
