"""The one conversion between gas energy and gas volume on the meter.

A GSME measures volume; GB gas is priced per kWh. The emulated GSME draws energy from its load
model (so one metrology serves both fuels) and shows volume converted with the standard GB
formula ``kWh = m3 x correction factor x calorific value / 3.6``, in exact integers:

- volume is held in dm3 (litres), 1/1000 of the DUIS unit m3 (*decided*: DUIS gas registers are
  xs:decimal m3; 3 decimals are whole dm3);
- calorific value 39.5 MJ/m3 and volume correction factor 1.02264 (*decided*, the usual GB
  defaults), each named once here.

The register shows ``floor(total energy / energy per dm3)``, so volume never runs ahead of the
energy that was costed. This module must never use floats.
"""

from __future__ import annotations

__all__ = [
    "CALORIFIC_VALUE_KJ_PER_M3",
    "VOLUME_CORRECTION_FACTOR_PER_100000",
    "volume_dm3_of_energy_ws",
]

CALORIFIC_VALUE_KJ_PER_M3 = 39_500
VOLUME_CORRECTION_FACTOR_PER_100000 = 102_264
#: ws -> dm3: dm3 = J x 1000 / (m3 -> J) = J x 1000 x 100000 / (CF x CV_kJ x 1000)
_NUMERATOR = 100_000
_DENOMINATOR = VOLUME_CORRECTION_FACTOR_PER_100000 * CALORIFIC_VALUE_KJ_PER_M3


def volume_dm3_of_energy_ws(energy_ws: int) -> int:
    """Whole dm3 of gas holding ``energy_ws`` joules (rounded down)."""
    return energy_ws * _NUMERATOR // _DENOMINATOR
