"""The meter's metrology: tariffs, load models, energy registers, logs and maximum demand.

Every module here is sans-I/O and integer-only (energy in watt-seconds, registers read in Wh,
gas volume in dm3, money in cost units of :data:`emulator.consumption.COST_UNITS_PER_PENNY`
per penny, time in UTC seconds of device time). None of them reads a clock, does I/O or knows
the DUIS units (those are converted only in ``protocol/s1sp/units.py``).

- :mod:`.tariff`: TOU switching tables, block thresholds, prices, future-dated changes.
- :mod:`.load_model`: constant, daily shape, seeded randomness, replayed CSV; exact energy.
- :mod:`.gas_volume`: the one energy -> gas volume conversion (calorific value, correction).
- :mod:`.max_demand`: maximum demand registers and their reset.
- :mod:`.voltage`: the ESME's network voltage per half-hour (DUIS 4.10), seeded, not stored.
- :mod:`.logs`: the half-hour profile, daily read and daily consumption logs (recomputed from
  the load model's history and a compact record of what differed), and the prepayment daily
  log (a fixed-width ring).
- :mod:`.engine`: :class:`~.engine.Metrology`, which advances the registers, the logs and the
  sub-penny remainder together, so cost and registered energy always agree.
"""
