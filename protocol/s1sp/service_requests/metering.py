"""Metering-data Service Requests (issue 11): energy registers, daily and half-hourly logs,
the prepayment daily log, maximum demand.

- 4.1.1 ReadInstantaneousImportRegisters, 4.1.2 ReadInstantaneousImportTOUMatrices (ESME,
  GSME, GPF) and 4.1.4 ReadInstantaneousImportBlockCounters (GSME, GPF): READ_ENERGY_REGISTERS.
- 4.6.1 RetrieveImportDailyReadLog (ESME, GSME): READ_DAILY_READ_LOG.
- 4.8.1 ReadActiveImportProfileData (ESME, GSME): READ_PROFILE_DATA, one request per
  ``MAX_PROFILE_PERIODS_PER_READ`` half-hours (each answer segmented on the link), gathered
  into one DUIS response of at most 19056 LogEntry (DUIS's bound, 397 days); a longer
  ReadLogPeriod is E-INVALID, nothing sent.
- 4.14 ReadPrepaymentDailyReadLog (ESME, GSME, GPF): READ_PREPAYMENT_DAILY_LOG.
- 4.12.1 ReadMaximumDemandImportRegisters (ESME): READ_MAXIMUM_DEMAND.

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

from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element

from protocol.apdu import (
    MAX_PROFILE_PERIODS_PER_READ,
    Command,
    DeviceType,
    RegisterUnit,
)
from protocol.s1sp.duis_xml import EmptyBody, SrBody, find, text
from protocol.s1sp.errors import InvalidRequestError
from protocol.s1sp.rules import ResultItem, RuleContext, require_success
from protocol.s1sp.service_requests.record import (
    ELECTRICITY_METER,
    GAS_PROXY,
    METERS,
    NON_CRITICAL_VARIANTS,
    ServiceRequest,
)
from protocol.s1sp.units import (
    DUIS_ENERGY_UNIT_NAMES,
    device_seconds_to_duis_date_time,
    duis_date_time_to_device_seconds,
    pence_to_duis_money,
    register_to_duis_energy,
    require_log_period,
)

__all__ = ["MAX_PROFILE_LOG_ENTRIES", "RECORDS", "LogPeriodRead"]

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


def _log_range(body: LogPeriodRead) -> dict[str, int]:
    """The device request fields of a read log period (checked: start before end)."""
    require_log_period(body.start_seconds, body.end_seconds)
    return {"start_seconds": body.start_seconds, "end_seconds": body.end_seconds}


def _read(ctx: RuleContext, command: Command, fields: dict[str, int] | None = None) -> Any:
    """The typed body of the target device's SUCCESS answer (read values by attribute)."""
    response = ctx.send_to(ctx.device, command, fields)
    require_success(response, ctx.device)
    return response.body


def _is_gas(ctx: RuleContext) -> bool:
    return ctx.device.device_type is not DeviceType.ELECTRICITY_METER


def _indexed(name: str, registers: Any, unit: RegisterUnit) -> list[ResultItem]:
    return [(name, [("Index", register.index),
                    ("Value", register_to_duis_energy(register.register_value, unit))])
            for register in registers]


# -- 4.1.1, 4.1.2, 4.1.4 ---------------------------------------------------------------------


def _read_instantaneous_import_registers(ctx: RuleContext, body: EmptyBody
                                         ) -> list[ResultItem]:
    registers = _read(ctx, Command.READ_ENERGY_REGISTERS)
    unit = registers.register_unit
    value = register_to_duis_energy(registers.total_register, unit)
    if unit is RegisterUnit.CUBIC_DECIMETRES:
        return [("Gas", [("ConsumptionRegister", [
            ("Value", value), ("Unit", DUIS_ENERGY_UNIT_NAMES[unit])])])]
    return [("Electricity", [("ActiveImportRegister", [
        ("Value", value), ("ActiveEnergyUnit", DUIS_ENERGY_UNIT_NAMES[unit])])])]


def _read_instantaneous_import_tou_matrices(ctx: RuleContext, body: EmptyBody
                                            ) -> list[ResultItem]:
    registers = _read(ctx, Command.READ_ENERGY_REGISTERS)
    unit = registers.register_unit
    if unit is RegisterUnit.CUBIC_DECIMETRES:
        return [("Gas", [("TariffTOURegisterMatrix", _indexed(
            "TOURegisterMatrixValue", registers.tou_registers, unit))])]
    return [("Electricity", [("TariffTOURegisterCollection", _indexed(
        "TOUPrimaryRegisterValue", registers.tou_registers, unit))])]


def _read_instantaneous_import_block_counters(ctx: RuleContext, body: EmptyBody
                                              ) -> list[ResultItem]:
    registers = _read(ctx, Command.READ_ENERGY_REGISTERS)
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
    log = _read(ctx, Command.READ_DAILY_READ_LOG, _log_range(body))
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
        page = _read(ctx, Command.READ_PROFILE_DATA, {
            "start_seconds": page_start,
            "end_seconds": min(page_start + page_seconds, end * _HALF_HOUR_SECONDS)})
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
    log = _read(ctx, Command.READ_PREPAYMENT_DAILY_LOG, _log_range(body))
    entries: list[ResultItem] = [
        ("LogEntry", [*((name, pence_to_duis_money(getattr(entry, field)))
                        for name, field in _PREPAYMENT_LOG_MONEY),
                      ("Timestamp", device_seconds_to_duis_date_time(entry.midnight_seconds))])
        for entry in log.entries]
    return [("Gas" if _is_gas(ctx) else "Electricity", entries)]


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
    demand = _read(ctx, Command.READ_MAXIMUM_DEMAND)
    return [("MaxDemandConfigurableTimeActivePowerImport",
             _max_demand_items(demand.configurable_time_active_import)),
            ("MaxDemandActiveEnergyImport", _max_demand_items(demand.active_import)),
            ("MaxDemandConfigurableTimePeriod", [
                ("StartTime", _time_of_day(demand.configurable_window_start_second_of_day)),
                ("EndTime", _time_of_day(demand.configurable_window_end_second_of_day % 86_400)),
            ])]


RECORDS: tuple[ServiceRequest, ...] = (
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
                   handler=_retrieve_import_daily_read_log, parse_body=_parse_log_period),
    ServiceRequest("4.8.1", "Read Active Import Profile Data", ("ReadActiveImportProfileData",),
                   NON_CRITICAL_VARIANTS, critical=False, valid_device_types=METERS,
                   handler=_read_active_import_profile_data, parse_body=_parse_log_period),
    ServiceRequest("4.12.1", "Read Maximum Demand Import Registers",
                   ("ReadMaximumDemandImportRegisters",), NON_CRITICAL_VARIANTS,
                   critical=False, valid_device_types=ELECTRICITY_METER,
                   handler=_read_maximum_demand_import_registers),
    ServiceRequest("4.14", "Read Prepayment Daily Read Log", ("ReadPrepaymentDailyReadLog",),
                   NON_CRITICAL_VARIANTS, critical=False, valid_device_types=METERS | GAS_PROXY,
                   handler=_read_prepayment_daily_read_log, parse_body=_parse_log_period),
)
