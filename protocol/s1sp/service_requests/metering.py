"""Metering-data Service Requests (issue 11): energy registers, daily and half-hourly logs,
the prepayment daily log, maximum demand, active power, daily consumption, tariff and prices.

- 4.1.1 ReadInstantaneousImportRegisters, 4.1.2 ReadInstantaneousImportTOUMatrices (ESME,
  GSME, GPF) and 4.1.4 ReadInstantaneousImportBlockCounters (GSME, GPF): READ_ENERGY_REGISTERS.
- 4.6.1 RetrieveImportDailyReadLog (ESME, GSME): READ_DAILY_READ_LOG.
- 4.8.1 ReadActiveImportProfileData (ESME, GSME): READ_PROFILE_DATA, one request per
  ``MAX_PROFILE_PERIODS_PER_READ`` half-hours (each answer segmented on the link), gathered
  into one DUIS response of at most 19056 LogEntry (DUIS's bound, 397 days); a longer
  ReadLogPeriod is E-INVALID, nothing sent.
- 4.14 ReadPrepaymentDailyReadLog (ESME, GSME, GPF): READ_PREPAYMENT_DAILY_LOG.
- 4.12.1 ReadMaximumDemandImportRegisters (ESME): READ_MAXIMUM_DEMAND.
- 4.16 ReadActivePowerImport (ESME): READ_ACTIVE_POWER, the load drawn now in W.
- 4.17 RetrieveDailyConsumptionLog (ESME, GSME, GPF): READ_DAILY_CONSUMPTION_LOG, each whole
  UTC day whose midnight is in the period, at most the last 731.
- 4.10 ReadNetworkData (ESME; single phase): READ_NETWORK_DATA, the average RMS voltage of
  each closed half-hour starting in the period (at most the last 4320, DUIS's bound) and the
  over/under voltage counts of those periods.
- 1.1.1 UpdateImportTariffPrimaryElement, 1.2.1 UpdatePricePrimaryElement (ESME, GSME;
  future-datable) and 4.11.1 ReadTariffPrimaryElement: SET_TARIFF, SET_PRICES, READ_TARIFF
  (decisions in docs/duis.md, "Tariff and prices"); a tariff whose SET_TARIFF would be longer
  than ``MAX_TARIFF_REQUEST_BYTES`` (what SCHEDULE_REQUEST holds) is E-INVALID, nothing sent.

Read log bodies carry ``ReadLogPeriod/StartDateTime`` and ``EndDateTime``; an entry belongs
to the period when ``start <= Timestamp < end`` (*decided*). A half-hour's Timestamp is the
start of the half-hour, a daily log's the midnight it was taken at (*decided*), so a one-day
period gives 48 half-hours. KAPublicSecurityCredentials (unknown remote parties) is not read.
An ExecutionDateTime on these reads (DUIS's DSP-held form: the DCC holds the read) is not
read: the S1SP answers at once.

Result elements follow the DUIS response types (``Electricity`` / ``Gas`` branches; energy
through :mod:`protocol.s1sp.units`: Wh integers, gas m3 with three decimals; money pence x
1000). An indexed DUIS value (``TOUPrimaryRegisterValue index="2"``) is a nested element
with ``Index`` and ``Value`` children (*decided*: the response model has no attributes).

This module never loads a document and never reaches a device except through its RuleContext.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from xml.etree.ElementTree import Element

from protocol.apdu import (
    MAX_PROFILE_PERIODS_PER_READ,
    MAX_TARIFF_REQUEST_BYTES,
    BandPrices,
    BandSwitch,
    BandThresholds,
    BlockPrice,
    BlockThreshold,
    Command,
    DayProfile,
    DeviceType,
    LogRange,
    RegisterUnit,
    Request,
    Tariff,
    TariffPrices,
    encode_request,
)
from protocol.s1sp.duis_xml import (
    BodyItem,
    EmptyBody,
    Execution,
    SrBody,
    duis_children,
    find,
    local_name,
    text,
)
from protocol.s1sp.errors import InvalidRequestError
from protocol.s1sp.rules import ResultItem, RuleContext
from protocol.s1sp.service_requests.record import (
    CRITICAL_VARIANTS,
    ELECTRICITY_METER,
    GAS_PROXY,
    METERS,
    NON_CRITICAL_VARIANTS,
    ServiceRequest,
)
from protocol.s1sp.units import (
    DUIS_ENERGY_UNIT_NAMES,
    DUIS_GAS_PRICE_RANGE,
    DUIS_MONEY_PRICE_SCALE,
    DUIS_PRICE_SHORT_RANGE,
    DUIS_VOLTAGE_COUNTER_UNIT,
    datetime_to_duis_date_time,
    decivolts_to_duis_voltage,
    device_seconds_to_duis_date_time,
    duis_date_time_to_device_seconds,
    duis_price_to_millipence,
    millipence_to_duis_prices,
    parse_duis_integer,
    pence_to_duis_money,
    register_to_duis_energy,
    require_log_period,
)

__all__ = ["MAX_PROFILE_LOG_ENTRIES", "RECORDS", "LogPeriodRead", "PriceUpdate", "TariffUpdate"]

#: DUIS 4.8.1 carries at most this many LogEntry (397 days of half-hours).
MAX_PROFILE_LOG_ENTRIES = 19_056
_HALF_HOUR_SECONDS = 1_800
GAS_METER_OR_PROXY = frozenset({DeviceType.GAS_METER}) | GAS_PROXY
#: 4.14 LogEntry: DUIS element -> READ_PREPAYMENT_DAILY_LOG field (pence), in DUIS order.
_PREPAYMENT_LOG_MONEY: tuple[tuple[str, str], ...] = (
    ("AccumulatedDebtRegister", "accumulated_debt_pence"),
    ("EmergencyCreditBalance", "emergency_credit_balance_pence"),
    ("MeterBalance", "meter_balance_pence"),
    ("PaymentDebtRegister", "payment_debt_pence"),
    ("TimeDebtRegisters1", "time_debt_1_pence"),
    ("TimeDebtRegisters2", "time_debt_2_pence"),
)


@dataclass(frozen=True)
class LogPeriodRead(SrBody):
    """A read of a log over ``[start_seconds, end_seconds)`` of device time."""

    start_seconds: int
    end_seconds: int


def _parse_log_period(body: Element, where: str) -> LogPeriodRead:
    period = find(body, "ReadLogPeriod", required=True, where=where)
    assert period is not None
    where = f"{where}/ReadLogPeriod"
    return LogPeriodRead(*(duis_date_time_to_device_seconds(
        text(period, name, where), f"ReadLogPeriod/{name}")
        for name in ("StartDateTime", "EndDateTime")))


def _write_log_period(*, start: datetime, end: datetime) -> list[BodyItem]:
    """ReadLogPeriod: the entries whose Timestamp is in ``[start, end)``."""
    return [("ReadLogPeriod", [
        ("StartDateTime", datetime_to_duis_date_time(start, "start")),
        ("EndDateTime", datetime_to_duis_date_time(end, "end"))])]


def _log_range(body: LogPeriodRead) -> LogRange:
    """The device request body of a read log period (checked: start before end)."""
    require_log_period(body.start_seconds, body.end_seconds)
    return LogRange(start_seconds=body.start_seconds, end_seconds=body.end_seconds)


def _is_gas(ctx: RuleContext) -> bool:
    return ctx.device.device_type is not DeviceType.ELECTRICITY_METER


def _indexed(name: str, registers: Any, unit: RegisterUnit) -> list[ResultItem]:
    return [(name, [("Index", register.index),
                    ("Value", register_to_duis_energy(register.register_value, unit))])
            for register in registers]


# -- 4.1.1, 4.1.2, 4.1.4 ---------------------------------------------------------------------


def _read_instantaneous_import_registers(ctx: RuleContext, body: EmptyBody
                                         ) -> list[ResultItem]:
    registers = ctx.send(Command.READ_ENERGY_REGISTERS)
    unit = registers.register_unit
    value = register_to_duis_energy(registers.total_register, unit)
    if unit is RegisterUnit.CUBIC_DECIMETRES:
        return [("Gas", [("ConsumptionRegister", [
            ("Value", value), ("Unit", DUIS_ENERGY_UNIT_NAMES[unit])])])]
    return [("Electricity", [("ActiveImportRegister", [
        ("Value", value), ("ActiveEnergyUnit", DUIS_ENERGY_UNIT_NAMES[unit])])])]


def _read_instantaneous_import_tou_matrices(ctx: RuleContext, body: EmptyBody
                                            ) -> list[ResultItem]:
    registers = ctx.send(Command.READ_ENERGY_REGISTERS)
    unit = registers.register_unit
    if unit is RegisterUnit.CUBIC_DECIMETRES:
        return [("Gas", [("TariffTOURegisterMatrix", _indexed(
            "TOURegisterMatrixValue", registers.tou_registers, unit))])]
    return [("Electricity", [("TariffTOURegisterCollection", _indexed(
        "TOUPrimaryRegisterValue", registers.tou_registers, unit))])]


def _read_instantaneous_import_block_counters(ctx: RuleContext, body: EmptyBody
                                              ) -> list[ResultItem]:
    registers = ctx.send(Command.READ_ENERGY_REGISTERS)
    return [("ImportBlockCounters", _indexed(
        "TariffBlockCounterValue", registers.block_registers, registers.register_unit))]


# -- 4.6.1 ----------------------------------------------------------------------------------


def _sums(cells: Any, key: str) -> dict[int, int]:
    sums: dict[int, int] = {}
    for cell in cells:
        sums[getattr(cell, key)] = sums.get(getattr(cell, key), 0) + cell.register_value
    return sums


def _daily_read_entry(entry: Any, unit: RegisterUnit) -> ResultItem:
    """One 4.6.1 LogEntry: the total, the registers per TOU band (its blocks added up), and
    for a block tariff the block registers (gas: per block; electricity: one matrix per block,
    Index = TOU band)."""
    def value_of(register_value: int) -> int | str:
        return register_to_duis_energy(register_value, unit)

    block_tariff = any(cell.block > 1 for cell in entry.cells)
    stamp = ("Timestamp", device_seconds_to_duis_date_time(entry.midnight_seconds))
    bands = sorted(_sums(entry.cells, "band").items())
    if unit is RegisterUnit.CUBIC_DECIMETRES:
        blocks = sorted(_sums(entry.cells, "block").items()) if block_tariff else []
        return ("LogEntry", [stamp, ("Gas", [
            ("GasActiveImportRegisterConsumption", value_of(entry.total_register)),
            *(("TariffBlockCounterMatrix", [("Index", block), ("Value", value_of(total))])
              for block, total in blocks),
            *(("TariffTOURegisterMatrix", [("Index", band), ("Value", value_of(total))])
              for band, total in bands)])])
    cells = entry.cells if block_tariff else ()
    return ("LogEntry", [stamp, ("Electricity", [
        ("ElecActiveImportRegisterConsumption", value_of(entry.total_register)),
        *(("TariffTOURegisterMatrixValue", [("Index", band), ("Value", total)])
          for band, total in bands),
        *((f"TariffTOUBlock{cell.block}RegisterMatrixValue",
           [("Index", cell.band), ("Value", cell.register_value)]) for cell in cells)])])


def _retrieve_import_daily_read_log(ctx: RuleContext, body: LogPeriodRead
                                    ) -> list[ResultItem]:
    log = ctx.send(Command.READ_DAILY_READ_LOG, _log_range(body))
    return [_daily_read_entry(entry, log.register_unit) for entry in log.entries]


# -- 4.8.1 ----------------------------------------------------------------------------------


def _read_active_import_profile_data(ctx: RuleContext, body: LogPeriodRead
                                     ) -> list[ResultItem]:
    _log_range(body)
    first = -(-body.start_seconds // _HALF_HOUR_SECONDS)
    end = -(-body.end_seconds // _HALF_HOUR_SECONDS)
    if end - first > MAX_PROFILE_LOG_ENTRIES:
        raise InvalidRequestError(
            f"ReadLogPeriod covers {end - first} half-hours; DUIS 4.8.1 carries at most "
            f"{MAX_PROFILE_LOG_ENTRIES} (397 days): ask for a shorter period")
    items: list[ResultItem] = []
    page_seconds = MAX_PROFILE_PERIODS_PER_READ * _HALF_HOUR_SECONDS
    gas = _is_gas(ctx)
    for page_start in range(first * _HALF_HOUR_SECONDS, end * _HALF_HOUR_SECONDS, page_seconds):
        page = ctx.send(Command.READ_PROFILE_DATA, LogRange(
            start_seconds=page_start,
            end_seconds=min(page_start + page_seconds, end * _HALF_HOUR_SECONDS)))
        unit = page.register_unit
        for offset, value in enumerate(page.values):
            stamp = device_seconds_to_duis_date_time(
                page.first_period_start_seconds + offset * page.period_seconds)
            items.append(("LogEntry", [
                ("Timestamp", stamp),
                ("Gas" if gas else "Electricity",
                 [("PrimaryValue", register_to_duis_energy(value, unit))])]))
    return items


# -- 4.14 -----------------------------------------------------------------------------------


def _read_prepayment_daily_read_log(ctx: RuleContext, body: LogPeriodRead
                                    ) -> list[ResultItem]:
    log = ctx.send(Command.READ_PREPAYMENT_DAILY_LOG, _log_range(body))
    entries: list[ResultItem] = [
        ("LogEntry", [*((name, pence_to_duis_money(getattr(entry, field)))
                        for name, field in _PREPAYMENT_LOG_MONEY),
                      ("Timestamp", device_seconds_to_duis_date_time(entry.midnight_seconds))])
        for entry in log.entries]
    return [("Gas" if _is_gas(ctx) else "Electricity", entries)]


# -- 4.16, 4.17 -----------------------------------------------------------------------------


def _read_active_power_import(ctx: RuleContext, body: EmptyBody) -> list[ResultItem]:
    power = ctx.send(Command.READ_ACTIVE_POWER)
    return [("ActivePowerImport", [("Value", power.active_power_import_w), ("Unit", "W")])]


def _retrieve_daily_consumption_log(ctx: RuleContext, body: LogPeriodRead
                                    ) -> list[ResultItem]:
    """4.17: each whole UTC day whose midnight is in the period (at most the last 731)."""
    log = ctx.send(Command.READ_DAILY_CONSUMPTION_LOG, _log_range(body))
    entries: list[ResultItem] = [
        ("LogEntry", [("Value", register_to_duis_energy(entry.register_units,
                                                        log.register_unit)),
                      ("Timestamp", device_seconds_to_duis_date_time(entry.midnight_seconds))])
        for entry in log.entries]
    return [("Gas" if _is_gas(ctx) else "Electricity", entries)]


# -- 4.10 -----------------------------------------------------------------------------------


def _read_network_data(ctx: RuleContext, body: LogPeriodRead) -> list[ResultItem]:
    """4.10: ``Electricity/SinglePhaseESME`` (the emulated ESME has one phase): the over and
    under voltage counts of the periods given, then each period's average RMS voltage
    (Timestamp: the period's start) and the measurement period (seconds)."""
    data = ctx.send(Command.READ_NETWORK_DATA, _log_range(body))
    period_seconds = data.measurement_period_seconds
    entries: list[ResultItem] = [
        ("LogEntry", [("Value", decivolts_to_duis_voltage(decivolts)),
                      ("Timestamp", device_seconds_to_duis_date_time(
                          data.first_period_start_seconds + offset * period_seconds))])
        for offset, decivolts in enumerate(data.average_rms_voltages_decivolts)]
    return [("Electricity", [("SinglePhaseESME", [
        ("AvgRMSOverVoltageCounter", [("Value", data.over_voltage_count),
                                      ("Unit", DUIS_VOLTAGE_COUNTER_UNIT)]),
        ("AvgRMSUnderVoltageCounter", [("Value", data.under_voltage_count),
                                       ("Unit", DUIS_VOLTAGE_COUNTER_UNIT)]),
        ("AvgRMSVoltageProfileDataLog", [*entries, ("MeasurementPeriod", period_seconds)]),
    ])])]


# -- 4.12.1 ---------------------------------------------------------------------------------


def _max_demand_items(register: Any) -> list[ResultItem]:
    items: list[ResultItem] = [("Value", register.demand_w)]
    if register.capture_time_seconds:
        items.append(("CaptureTime",
                      device_seconds_to_duis_date_time(register.capture_time_seconds)))
    items.append(("LastResetDateTime",
                  device_seconds_to_duis_date_time(register.last_reset_seconds)))
    return items


def _time_of_day(second_of_day: int) -> str:
    hours, rest = divmod(second_of_day, 3600)
    return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"


def _read_maximum_demand_import_registers(ctx: RuleContext, body: EmptyBody
                                          ) -> list[ResultItem]:
    demand = ctx.send(Command.READ_MAXIMUM_DEMAND)
    return [("MaxDemandConfigurableTimeActivePowerImport",
             _max_demand_items(demand.configurable_time_active_import)),
            ("MaxDemandActiveEnergyImport", _max_demand_items(demand.active_import)),
            ("MaxDemandConfigurableTimePeriod", [
                ("StartTime", _time_of_day(demand.configurable_window_start_second_of_day)),
                ("EndTime", _time_of_day(demand.configurable_window_end_second_of_day % 86_400)),
            ])]


# -- 1.1.1, 1.2.1, 4.11.1: tariff and prices --------------------------------------------------

#: Block period the S1SP gives a tariff (*decided*: DUIS 1.1.1 carries none): one UTC day.
TARIFF_BLOCK_PERIOD_SECONDS = 86_400
#: A BlockThreshold of this value means "no threshold" (the DCC's TOU-only template fills every
#: threshold row with it).
NO_THRESHOLD = 0xFFFF_FFFF
#: ReferencedDayName index 1 is Monday (*decided*, as DLMS week profiles count).
_WEEKDAYS = 7
_TIME_OF_DAY = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.0+)?(?:Z|[+-]00:00)?")


@dataclass(frozen=True)
class PriceUpdate(SrBody):
    """PriceElements (1.1.1, 1.2.1) in millipence: the standing charge per day, and TOU
    prices (TOUPrice index order) or block prices (BlockPrices index order, each its
    BlockPrice in index order) per kWh; ``threshold_count`` is gas's NumberOfThresholds."""

    standing_charge_millipence_per_day: int
    tou_prices_millipence_per_kwh: tuple[int, ...] = ()
    block_prices_millipence_per_kwh: tuple[tuple[int, ...], ...] = ()
    threshold_count: int | None = None
    execution: Execution | None = None


@dataclass(frozen=True)
class TariffUpdate(SrBody):
    """1.1.1: the switching table (day profiles of ``(start_second_of_day, action)``, actions
    counted from 1; the day profile of each weekday, Monday first), whether the actions are
    block-tariff actions, the threshold rows (Wh, "no threshold" dropped), the prices, and what
    the meter cannot hold and so was not applied (``(element, count)``)."""

    day_profiles: tuple[tuple[tuple[int, int], ...], ...]
    week: tuple[int, ...]
    block: bool
    thresholds_wh: tuple[tuple[int, ...], ...]
    prices: PriceUpdate
    not_applied: tuple[tuple[str, int], ...] = ()
    execution: Execution | None = None


def _children(element: Element, name: str) -> list[Element]:
    return [child for child in duis_children(element) if local_name(child.tag)[1] == name]


def _child(element: Element, name: str, where: str, required: bool = True) -> Element | None:
    found = _children(element, name)
    if len(found) > 1 or (required and not found):
        raise InvalidRequestError(f"{where} needs exactly one {name} element")
    return found[0] if found else None


def _integer(element: Element, name: str, where: str) -> int:
    node = _child(element, name, where)
    assert node is not None
    return parse_duis_integer(node.text, name)


def _by_index(elements: list[Element], name: str) -> list[Element]:
    """``elements`` in the order of their ``index`` attribute, 1, 2, ... with none missing."""
    try:
        indexed = sorted((int(element.get("index", "")), n) for n, element in enumerate(elements))
    except ValueError:
        raise InvalidRequestError(f"every {name} needs a whole-number index attribute") from None
    if [index for index, _ in indexed] != list(range(1, len(elements) + 1)):
        raise InvalidRequestError(f"{name} indexes must be 1..{len(elements)}, each once")
    return [elements[n] for _, n in indexed]


def _second_of_day(value_text: str | None) -> int:
    match = _TIME_OF_DAY.fullmatch((value_text or "").strip())
    if match is None or int(match[1]) > 23 or int(match[2]) > 59 or int(match[3]) > 59:
        raise InvalidRequestError(f"StartTime {value_text!r} is not a whole-second UTC time of "
                                  "day such as 07:00:00.00Z")
    return int(match[1]) * 3600 + int(match[2]) * 60 + int(match[3])


def _day_profile(profile: Element, where: str) -> tuple[tuple[int, int], ...]:
    """One DayProfile's switches from midnight: a profile whose first switch is later than
    00:00 starts the day in the band of its last switch (*decided*: the day wraps)."""
    switches: dict[int, int] = {}
    for schedule in _children(profile, "ProfileSchedule"):
        start = _second_of_day(text(schedule, "StartTime", where))
        actions = [child for child in duis_children(schedule)
                   if local_name(child.tag)[1] in ("TOUTariffAction", "BlockTariffAction",
                                                   "BlockTariff")]
        if len(actions) != 1 or start in switches:
            raise InvalidRequestError(f"{where}: each ProfileSchedule needs one action and a "
                                      "StartTime of its own")
        name = local_name(actions[0].tag)[1]
        action = 1 if name == "BlockTariff" else parse_duis_integer(actions[0].text, name)
        if action < 1:
            raise InvalidRequestError(f"{where}: {name} {action}: tariff actions count from 1")
        switches[start] = -action if name != "TOUTariffAction" else action
    if not switches:
        raise InvalidRequestError(f"{where}: a DayProfile needs a ProfileSchedule")
    ordered = sorted(switches.items())
    if ordered[0][0] != 0:
        ordered.insert(0, (0, ordered[-1][1]))
    return tuple(ordered)


def _parse_switching(tariff: Element, where: str
                     ) -> tuple[tuple[tuple[tuple[int, int], ...], ...], tuple[int, ...],
                                bool, list[tuple[str, int]]]:
    """Day profiles, the week of the first Season, whether actions are block actions, and
    what is not applied: Seasons naming another week, SpecialDays (*decided*: the meter holds
    one week profile and no special days; the response says how many were not applied)."""
    switching = _child(tariff, "SwitchingTable", where)
    assert switching is not None
    profiles_element = _child(switching, "DayProfiles", where)
    weeks_element = _child(switching, "WeekProfiles", where)
    seasons_element = _child(switching, "Seasons", where)
    assert profiles_element is not None and weeks_element is not None
    assert seasons_element is not None
    names: dict[int, int] = {}
    profiles = []
    for profile in _children(profiles_element, "DayProfile"):
        day_name = _integer(profile, "DayName", where)
        if day_name in names:
            raise InvalidRequestError(f"DayName {day_name} is given twice")
        names[day_name] = len(profiles)
        profiles.append(_day_profile(profile, f"{where}/DayProfile {day_name}"))
    kinds = {action > 0 for profile in profiles for _, action in profile}
    if len(kinds) != 1:
        raise InvalidRequestError("a switching table mixing TOUTariffAction and block actions "
                                  "(a hybrid tariff) is not supported by the meter")
    seasons = _children(seasons_element, "Season")
    if not seasons:
        raise InvalidRequestError(f"{where}: Seasons needs a Season")
    week_names = [_integer(season, "ReferencedWeekName", where) for season in seasons]
    week_element = next((week for week in _children(weeks_element, "WeekProfile")
                         if _integer(week, "WeekName", where) == week_names[0]), None)
    if week_element is None:
        raise InvalidRequestError(f"Season refers to WeekName {week_names[0]}, which is not given")
    days = _by_index(_children(week_element, "ReferencedDayName"), "ReferencedDayName")
    if len(days) != _WEEKDAYS:
        raise InvalidRequestError("a WeekProfile names exactly 7 days")
    week = []
    for day in days:
        day_name = parse_duis_integer(day.text, "ReferencedDayName")
        if day_name not in names:
            raise InvalidRequestError(f"ReferencedDayName {day_name} is not a DayName given")
        week.append(names[day_name])
    not_applied = []
    other_seasons = sum(1 for name in week_names[1:] if name != week_names[0])
    if other_seasons:
        not_applied.append(("Season", other_seasons))
    special = _child(tariff, "SpecialDays", where, required=False)
    special_days = len(_children(special, "SpecialDay")) if special is not None else 0
    if special_days:
        not_applied.append(("SpecialDay", special_days))
    block = not kinds.pop()
    return (tuple(tuple((start, abs(action)) for start, action in profile)
                  for profile in profiles), tuple(week), block, not_applied)


def _threshold_row(elements: list[Element]) -> tuple[int, ...]:
    values = [parse_duis_integer(element.text, "BlockThreshold")
              for element in _by_index(elements, "BlockThreshold")]
    return tuple(value for value in values if value != NO_THRESHOLD)


def _parse_thresholds(tariff: Element, gas: bool, where: str) -> tuple[tuple[int, ...], ...]:
    matrix = _child(tariff, "ThresholdMatrix", where, required=False)
    if matrix is None:
        return ()
    if gas:
        return (_threshold_row(_children(matrix, "BlockThreshold")),)
    return tuple(_threshold_row(_children(row, "BlockThreshold"))
                 for row in _by_index(_children(matrix, "Thresholds"), "Thresholds"))


def _prices(elements: list[Element], name: str, scale: int, value_range: tuple[int, int]
            ) -> tuple[int, ...]:
    return tuple(duis_price_to_millipence(parse_duis_integer(element.text, name), scale, name,
                                          value_range=value_range)
                 for element in _by_index(elements, name))


def _fuel_branch(element: Element, electricity: str, gas: str, where: str
                 ) -> tuple[Element, bool]:
    """The one child called ``electricity`` or ``gas``, and whether it is gas; a branch
    holding CurrencyUnits must say GBP."""
    found = _children(element, electricity) + _children(element, gas)
    if len(found) != 1:
        raise InvalidRequestError(f"{where} needs one {electricity} or {gas}")
    branch = found[0]
    currency = _child(branch, "CurrencyUnits", where, required=False)
    if currency is not None and (currency.text or "").strip() != "GBP":
        raise InvalidRequestError("the meter holds prices in GBP only: CurrencyUnits GBP")
    return branch, local_name(branch.tag)[1] == gas


def _parse_prices(body: Element, where: str) -> PriceUpdate:
    """PriceElements (the whole 1.2.1 body): electricity prices x 10^PriceScale GBP, standing
    charge x 10^StandingChargeScale GBP; gas prices and standing charge in 1/100000 GBP."""
    price_elements = _child(body, "PriceElements", where)
    assert price_elements is not None
    prices, gas = _fuel_branch(price_elements, "ElectricityPriceElements", "GasPriceElements",
                               where)
    if gas:
        price_scale = standing_scale = DUIS_MONEY_PRICE_SCALE
        value_range = DUIS_GAS_PRICE_RANGE
    else:
        price_scale = _integer(prices, "PriceScale", where)
        standing_scale = _integer(prices, "StandingChargeScale", where)
        value_range = DUIS_PRICE_SHORT_RANGE
    standing = duis_price_to_millipence(_integer(prices, "StandingCharge", where),
                                        standing_scale, "StandingCharge",
                                        value_range=value_range)
    tou = _child(prices, "TOUTariff", where, required=False)
    block = _child(prices, "BlockTariff", where, required=False)
    if (tou is None) == (block is None):
        raise InvalidRequestError("prices need a TOUTariff or a BlockTariff (a HybridTariff is "
                                  "not supported by the meter)")
    if tou is not None:
        return PriceUpdate(standing, _prices(_children(tou, "TOUPrice"), "TOUPrice",
                                             price_scale, value_range))
    assert block is not None
    if not gas:
        rows = tuple(_prices(_children(row, "BlockPrice"), "BlockPrice", price_scale,
                             value_range)
                     for row in _by_index(_children(block, "BlockPrices"), "BlockPrices"))
        return PriceUpdate(standing, block_prices_millipence_per_kwh=rows)
    count = _child(block, "NumberOfThresholds", where, required=False)
    return PriceUpdate(standing, block_prices_millipence_per_kwh=(
        _prices(_children(block, "BlockPrice"), "BlockPrice", price_scale, value_range),),
        threshold_count=None if count is None else parse_duis_integer(count.text,
                                                                      "NumberOfThresholds"))


def _parse_tariff_update(body: Element, where: str) -> TariffUpdate:
    tariff, gas = _fuel_branch(body, "ElecTariffElements", "GasTariffElements", where)
    profiles, week, block, not_applied = _parse_switching(tariff, where)
    return TariffUpdate(profiles, week, block, _parse_thresholds(tariff, gas, where),
                        _parse_prices(body, where), tuple(not_applied))


def _band_prices(prices: PriceUpdate, band_blocks: list[int] | None) -> list[list[int]]:
    """Prices per band: TOU prices one per band, or each band's first ``band_blocks[band]``
    block prices (too few is E-INVALID; more are not used)."""
    if prices.tou_prices_millipence_per_kwh:
        return [[price] for price in prices.tou_prices_millipence_per_kwh]
    rows = prices.block_prices_millipence_per_kwh
    if band_blocks is None:
        return [list(row) for row in rows]
    if len(rows) < len(band_blocks):
        raise InvalidRequestError(f"{len(rows)} BlockPrices for {len(band_blocks)} block "
                                  "tariffs")
    for band, (row, blocks) in enumerate(zip(rows, band_blocks, strict=False), start=1):
        if len(row) < blocks:
            raise InvalidRequestError(f"BlockPrices {band} has {len(row)} BlockPrice for "
                                      f"{blocks} blocks")
    return [list(row[:blocks]) for row, blocks in zip(rows, band_blocks, strict=False)]


def _prices_body(standing_millipence: int, bands: list[list[int]]) -> TariffPrices:
    return TariffPrices(
        standing_charge_millipence_per_day=standing_millipence,
        bands=tuple(BandPrices(tuple(BlockPrice(price) for price in band)) for band in bands))


def _tariff_body(body: TariffUpdate) -> Tariff:
    """The SET_TARIFF body of a 1.1.1: TOU actions and block-tariff actions alike become
    TOU bands (an action n is band n); a block tariff's band n takes threshold row n and the
    first (thresholds + 1) prices of BlockPrices n."""
    bands_used = max(action for profile in body.day_profiles for _, action in profile)
    prices = body.prices
    if body.block:
        rows = list(body.thresholds_wh[:bands_used]) or [()]
        if prices.threshold_count is not None:
            rows = [row[:prices.threshold_count] for row in rows]
        rows += [()] * (bands_used - len(rows))
        bands = _band_prices(prices, [len(row) + 1 for row in rows])
    else:
        if prices.block_prices_millipence_per_kwh:
            raise InvalidRequestError("a switching table of TOUTariffAction needs TOUTariff "
                                      "prices")
        bands = _band_prices(prices, None)
        rows = [()] * len(bands)
    if bands_used > len(bands):
        raise InvalidRequestError(f"the switching table uses tariff action {bands_used} but "
                                  f"the prices give {len(bands)}")
    rows += [()] * (len(bands) - len(rows))
    tariff = Tariff(
        day_profiles=tuple(DayProfile(tuple(BandSwitch(start, action) for start, action in profile))
                           for profile in body.day_profiles),
        week_day_profiles=bytes(body.week),
        band_thresholds=tuple(BandThresholds(tuple(BlockThreshold(wh) for wh in row))
                              for row in rows),
        block_period_seconds=TARIFF_BLOCK_PERIOD_SECONDS,
        prices=_prices_body(prices.standing_charge_millipence_per_day, bands),
    )
    size_bytes = len(encode_request(Request(Command.SET_TARIFF, 0, body=tariff)))
    if size_bytes > MAX_TARIFF_REQUEST_BYTES:
        raise InvalidRequestError(
            f"ElecTariffElements/SwitchingTable, ThresholdMatrix and PriceElements make a "
            f"SET_TARIFF of {size_bytes} bytes; the meter takes at most "
            f"{MAX_TARIFF_REQUEST_BYTES} (fewer DayProfiles, ProfileSchedules or bands); "
            "nothing was sent")
    return tariff


#: A Season start that matches any date (the builders' one Season).
_ANY_DATE: list[BodyItem] = [("Year", [("NonSpecifiedYear", None)]),
                             ("Month", [("NonSpecifiedMonth", None)]),
                             ("DayOfMonth", [("NonSpecifiedDayOfMonth", None)]),
                             ("DayOfWeek", [("NonSpecifiedDayOfWeek", None)])]
#: Threshold rows a 1.1.1 ThresholdMatrix carries (the DCC template's eight).
_THRESHOLD_ROWS = 8


def _start_time_text(second_of_day: int) -> str:
    if not 0 <= second_of_day < 86_400:
        raise ValueError(f"a switch time is a second of the day 0..86399, not {second_of_day}")
    return f"{_time_of_day(second_of_day)}.00Z"


def _write_price_elements(bands: Sequence[Sequence[int]], standing_millipence: int,
                          block: bool) -> BodyItem:
    """ElectricityPriceElements: the prices and the standing charge each at the scale
    :func:`~protocol.s1sp.units.millipence_to_duis_prices` gives."""
    scale, flat = millipence_to_duis_prices([price for band in bands for price in band])
    standing_scale, (standing,) = millipence_to_duis_prices([standing_millipence])
    if block:
        rows, offset = [], 0
        for n, band in enumerate(bands, start=1):
            rows.append((f"BlockPrices@{n}", [(f"BlockPrice@{k}", str(price)) for k, price in
                                              enumerate(flat[offset:offset + len(band)], 1)]))
            offset += len(band)
        tariff: BodyItem = ("BlockTariff", rows)
    else:
        tariff = ("TOUTariff", [(f"TOUPrice@{n}", str(price)) for n, price in
                                enumerate(flat, start=1)])
    return ("PriceElements", [("ElectricityPriceElements", [
        ("StandingCharge", str(standing)), ("StandingChargeScale", str(standing_scale)),
        ("PriceScale", str(scale)), tariff])])


def _write_import_tariff(*, day_profiles: Sequence[Sequence[tuple[int, int]]],
                         week: Sequence[int], prices_millipence_per_kwh: Sequence[Sequence[int]],
                         standing_charge_millipence_per_day: int,
                         block_thresholds_wh: Sequence[Sequence[int]] = ()) -> list[BodyItem]:
    """Electricity: ``day_profiles`` of ``(start_second_of_day, band)`` (bands from 1), the
    day profile (from 0) of each weekday Monday first, per band its block prices (one price: a
    TOU tariff) and, for a block tariff, its thresholds (Wh). Future-datable."""
    block = any(block_thresholds_wh)
    action = "BlockTariffAction" if block else "TOUTariffAction"
    profiles: list[BodyItem] = [("DayProfile", [("DayName", str(number)), *(
        ("ProfileSchedule", [("StartTime", _start_time_text(start)), (action, str(band))])
        for start, band in profile)]) for number, profile in enumerate(day_profiles, 1)]
    days = [(f"ReferencedDayName@{weekday}", str(day + 1))
            for weekday, day in enumerate(week, start=1)]
    rows = list(block_thresholds_wh) + [()] * (_THRESHOLD_ROWS - len(block_thresholds_wh))
    thresholds: list[BodyItem] = [(f"Thresholds@{n}", [
        (f"BlockThreshold@{k}", str(value))
        for k, value in enumerate(row or (NO_THRESHOLD,), start=1)])
        for n, row in enumerate(rows, start=1)]
    return [("ElecTariffElements", [
        ("CurrencyUnits", "GBP"),
        ("SwitchingTable", [("DayProfiles", profiles),
                            ("WeekProfiles", [("WeekProfile", [("WeekName", "1"), *days])]),
                            ("Seasons", [("Season", [
                                ("SeasonName", "all"),
                                ("SeasonStartDate", _ANY_DATE),
                                ("ReferencedWeekName", "1")])])]),
        ("ThresholdMatrix", thresholds)]),
        _write_price_elements(prices_millipence_per_kwh, standing_charge_millipence_per_day,
                              block)]


def _write_price(*, prices_millipence_per_kwh: Sequence[Sequence[int]],
                 standing_charge_millipence_per_day: int) -> list[BodyItem]:
    """Electricity: per band its block prices (one each: TOU prices). Future-datable."""
    block = any(len(band) > 1 for band in prices_millipence_per_kwh)
    return [_write_price_elements(prices_millipence_per_kwh,
                                  standing_charge_millipence_per_day, block)]


def _send_tariff_change(ctx: RuleContext, execution: Execution | None, command: Command,
                        body: Tariff | TariffPrices, not_applied: tuple[tuple[str, int], ...]
                        ) -> list[ResultItem]:
    _, scheduling = ctx.send_possibly_future_dated(execution, command, body)
    return [*scheduling, *((f"{name}NotApplied", count) for name, count in not_applied)]


def _update_import_tariff(ctx: RuleContext, body: TariffUpdate) -> list[ResultItem]:
    if body.execution is not None and body.execution.cancel:
        return ctx.cancel_scheduled(body.execution, Command.SET_TARIFF)
    return _send_tariff_change(ctx, body.execution, Command.SET_TARIFF, _tariff_body(body),
                               body.not_applied)


def _update_price(ctx: RuleContext, body: PriceUpdate) -> list[ResultItem]:
    """1.2.1: new prices for the tariff the meter holds now (READ_TARIFF gives its bands and
    blocks: surplus BlockPrice elements are not used, too few is E-INVALID)."""
    if body.execution is not None and body.execution.cancel:
        return ctx.cancel_scheduled(body.execution, Command.SET_PRICES)
    held = ctx.send(Command.READ_TARIFF).tariff
    blocks = [len(band.block_prices) for band in held.prices.bands]
    if body.tou_prices_millipence_per_kwh and any(count > 1 for count in blocks):
        raise InvalidRequestError("the meter holds a block tariff: give BlockTariff prices")
    bands = _band_prices(body, None if body.tou_prices_millipence_per_kwh else blocks)
    if len(bands) != len(blocks):
        raise InvalidRequestError(f"the meter's tariff has {len(blocks)} band(s); the prices "
                                  f"give {len(bands)}")
    return _send_tariff_change(ctx, body.execution, Command.SET_PRICES,
                               _prices_body(body.standing_charge_millipence_per_day, bands),
                               ())


def _indexed_prices(name: str, values: list[int]) -> list[ResultItem]:
    return [(name, [("Index", index), ("Value", value)])
            for index, value in enumerate(values, start=1)]


def _read_tariff(ctx: RuleContext, body: EmptyBody) -> list[ResultItem]:
    """4.11.1: the tariff in force. Electricity prices at one PriceScale (-5 unless a value
    does not fit xs:short), the standing charge at its own; gas in 1/100000 GBP."""
    answer = ctx.send(Command.READ_TARIFF)
    tariff = answer.tariff
    bands = [[price.price_millipence_per_kwh for price in band.block_prices]
             for band in tariff.prices.bands]
    block = any(len(band.thresholds) for band in tariff.band_thresholds)
    action = "BlockTariffAction" if block else "TOUTariffAction"
    day_profiles: list[ResultItem] = [("DayProfile", [
        ("Day", number), *(("ProfileSchedule", [("StartTime", _time_of_day(
            switch.start_second_of_day)), (action, switch.band)]) for switch in profile.switches)])
        for number, profile in enumerate(tariff.day_profiles, start=1)]
    week: list[ResultItem] = [("WeekProfile", [("WeekName", 1), *(
        ("ReferencedElecDay" if not _is_gas(ctx) else "ReferencedDay",
         [("Index", weekday), ("Value", day + 1)])
        for weekday, day in enumerate(tariff.week_day_profiles, start=1))])]
    switching: ResultItem = ("TariffSwitchingTable", [("DayProfiles", day_profiles),
                                                      ("WeekProfiles", week)])
    standing = tariff.prices.standing_charge_millipence_per_day
    if _is_gas(ctx):
        items: list[ResultItem] = [("CurrencyUnitsLabel", "GBP"), ("StandingCharge", standing),
                                   switching]
        if block:
            thresholds = tariff.band_thresholds[0].thresholds
            items.append(("TariffThresholds", [
                ("BlockThreshold", [("Index", n), ("Value", threshold.threshold_wh)])
                for n, threshold in enumerate(thresholds, start=1)]))
            items.append(("BlockTariff", _indexed_prices("BlockPrice", bands[0])))
        else:
            items.append(("TOUTariff", _indexed_prices(
                "TariffTOUPrice", [band[0] for band in bands])))
        return [("Gas", items)]
    scale, flat = millipence_to_duis_prices([price for band in bands for price in band])
    standing_scale, (standing_value,) = millipence_to_duis_prices([standing])
    items = [("CurrencyUnitsLabel", "GBP"), ("CurrencyUnitsName", "Millipence"),
             ("StandingCharge", standing_value), ("StandingChargeScale", standing_scale),
             ("PriceScale", scale)]
    if block:
        rows, offset = [], 0
        for band in bands:
            rows.append(flat[offset:offset + len(band)])
            offset += len(band)
        items.append(("TariffBlockPriceMatrix", [
            ("TariffBlockPrices", [("Index", n), *_indexed_prices("BlockPrice", row)])
            for n, row in enumerate(rows, start=1)]))
        items.append(("TariffThresholdMatrix", [
            ("ElecTariffThresholds", [("Index", n), *(
                ("BlockThreshold", [("Index", k), ("Value", t.threshold_wh)])
                for k, t in enumerate(row.thresholds, start=1))])
            for n, row in enumerate(tariff.band_thresholds, start=1)]))
    else:
        items.append(("TariffTOUPriceMatrix", _indexed_prices("TariffTOUPrice", flat)))
    items.append(switching)
    return [("Electricity", items)]


RECORDS: tuple[ServiceRequest, ...] = (
    ServiceRequest("1.1.1", "Update Import Tariff (Primary Element)",
                   ("UpdateImportTariffPrimaryElement",), CRITICAL_VARIANTS, critical=True,
                   valid_device_types=METERS, handler=_update_import_tariff,
                   parse_body=_parse_tariff_update, write_body=_write_import_tariff,
                   builder_name="update_import_tariff", future_datable=True),
    ServiceRequest("1.2.1", "Update Price (Primary Element)", ("UpdatePricePrimaryElement",),
                   CRITICAL_VARIANTS, critical=True, valid_device_types=METERS,
                   handler=_update_price, parse_body=_parse_prices, write_body=_write_price,
                   builder_name="update_price", future_datable=True),
    ServiceRequest("4.1.1", "Read Instantaneous Import Registers",
                   ("ReadInstantaneousImportRegisters",), NON_CRITICAL_VARIANTS,
                   critical=False, valid_device_types=METERS | GAS_PROXY,
                   handler=_read_instantaneous_import_registers),
    ServiceRequest("4.1.2", "Read Instantaneous Import TOU Matrices",
                   ("ReadInstantaneousImportTOUMatrices",), NON_CRITICAL_VARIANTS,
                   critical=False, valid_device_types=METERS | GAS_PROXY,
                   handler=_read_instantaneous_import_tou_matrices),
    ServiceRequest("4.1.4", "Read Instantaneous Import Block Counters",
                   ("ReadInstantaneousImportBlockCounters",), NON_CRITICAL_VARIANTS,
                   critical=False, valid_device_types=GAS_METER_OR_PROXY,
                   handler=_read_instantaneous_import_block_counters),
    ServiceRequest("4.6.1", "Retrieve Import Daily Read Log", ("RetrieveImportDailyReadLog",),
                   NON_CRITICAL_VARIANTS, critical=False, valid_device_types=METERS,
                   handler=_retrieve_import_daily_read_log, parse_body=_parse_log_period,
                   write_body=_write_log_period),
    ServiceRequest("4.8.1", "Read Active Import Profile Data", ("ReadActiveImportProfileData",),
                   NON_CRITICAL_VARIANTS, critical=False, valid_device_types=METERS,
                   handler=_read_active_import_profile_data, parse_body=_parse_log_period,
                   write_body=_write_log_period),
    ServiceRequest("4.12.1", "Read Maximum Demand Import Registers",
                   ("ReadMaximumDemandImportRegisters",), NON_CRITICAL_VARIANTS,
                   critical=False, valid_device_types=ELECTRICITY_METER,
                   handler=_read_maximum_demand_import_registers),
    ServiceRequest("4.16", "Read Active Power Import", ("ReadActivePowerImport",),
                   NON_CRITICAL_VARIANTS, critical=False, valid_device_types=ELECTRICITY_METER,
                   handler=_read_active_power_import),
    ServiceRequest("4.17", "Retrieve Daily Consumption Log", ("RetrieveDailyConsumptionLog",),
                   NON_CRITICAL_VARIANTS, critical=False, valid_device_types=METERS | GAS_PROXY,
                   handler=_retrieve_daily_consumption_log, parse_body=_parse_log_period,
                   write_body=_write_log_period),
    ServiceRequest("4.10", "Read Network Data", ("ReadNetworkData",), NON_CRITICAL_VARIANTS,
                   critical=False, valid_device_types=ELECTRICITY_METER,
                   handler=_read_network_data, parse_body=_parse_log_period,
                   write_body=_write_log_period),
    ServiceRequest("4.11.1", "Read Tariff (Primary Element)", ("ReadTariffPrimaryElement",),
                   NON_CRITICAL_VARIANTS, critical=False, valid_device_types=METERS,
                   handler=_read_tariff, builder_name="read_tariff"),
    ServiceRequest("4.14", "Read Prepayment Daily Read Log", ("ReadPrepaymentDailyReadLog",),
                   NON_CRITICAL_VARIANTS, critical=False, valid_device_types=METERS | GAS_PROXY,
                   handler=_read_prepayment_daily_read_log, parse_body=_parse_log_period,
                   write_body=_write_log_period),
)
