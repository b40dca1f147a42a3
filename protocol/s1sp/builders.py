"""Request builders: a typed Python method per supported Service Request that returns the DUIS
request document, so a user's test never writes or edits DUIS XML by hand.

    builder = DuisRequestBuilder()                       # originator and RequestID counter
    xml = builder.update_meter_balance("00-DB-12-34-56-78-90-A1", adjust_pence=250)
    response = DuisResponse.from_xml(adapter.submit(xml))

What the methods take (*decided*):

- device IDs: EUI-64 text (``00-DB-12-34-56-78-90-A1``, any form :mod:`protocol.eui64`
  reads) or 8 bytes;
- money: ``int`` pence (the x1000 to DUIS's 1/100000 GBP is done here, through
  :mod:`.units`), or :class:`DuisMoney` to send a raw DUIS value (e.g. 123456, to watch S1SR
  18.3 truncate it to 123 p);
- durations: ``int`` seconds or a ``timedelta`` of whole seconds; date-times: aware
  ``datetime`` (fractions of a second dropped, as the parser drops them);
- ``execute_at`` on the future-datable SRs (the registry's ``future_datable``): an aware
  datetime, or :data:`CANCEL_FUTURE_DATED` to cancel the one pending.

Every method returns the document as ``str`` (what :meth:`S1spAdapter.submit` and
``secure-emu send`` take; ``.encode()`` gives UTF-8 bytes), with a fresh RequestID
``originator:target:counter`` (the counter counts up from ``counter_start``). The
ServiceReference, ServiceReferenceVariant, CommandVariant (the record's
``default_command_variant``: 4 critical, 1 non-critical, 8 to the DCC) and body element name
come from the SR's record in :data:`~protocol.s1sp.service_requests.SERVICE_REQUESTS`; the
parameter element names are DUIS's, shared with the family modules' parsers where they hold
them. The builders check types and what DUIS can carry (int32 money, the device clock's
range), never the S1SR rules: a request the S1SP will refuse (a 70000 W load limit) is built
as asked, so a test can watch it refused.

This module never talks to a device and never parses a response (see :mod:`.responses`).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from xml.etree.ElementTree import Element, SubElement, indent, register_namespace, tostring

from protocol.apdu import DebtRecoveryPeriod, DebtRegister, PaymentMode
from protocol.eui64 import format_eui64, parse_eui64
from protocol.s1sp.duis_xml import DUIS_NAMESPACE
from protocol.s1sp.service_requests import SERVICE_REQUESTS
from protocol.s1sp.service_requests.prepayment import (
    DEBT_RECOVERY_WRAPPERS,
    DEBT_REGISTERS,
    PREPAY_CONFIGURATION_ELEMENTS,
)
from protocol.s1sp.service_requests.record import Addressee
from protocol.s1sp.units import (
    CANCELLATION_DATE_TIME,
    DEVICE_TIME_MAX_SECONDS,
    datetime_to_device_seconds,
    datetime_to_duis_date_time,
    duration_to_seconds,
    millipence_to_duis_prices,
    pence_to_debt_recovery_rate,
    pence_to_request_duis_money,
    percentage_to_debt_recovery_per_payment,
)

__all__ = [
    "CANCEL_FUTURE_DATED",
    "DEFAULT_DCC_EUI",
    "DEFAULT_ORIGINATOR_EUI",
    "REQUEST_SCHEMA_VERSION",
    "DuisMoney",
    "DuisRequestBuilder",
    "PaymentDebtChange",
    "TimeDebtChange",
]

#: The DCC user the requests come from unless told otherwise (the fixtures' originator).
DEFAULT_ORIGINATOR_EUI = "90-B3-D5-1F-30-01-00-00"
#: The RequestID target of an SR addressed to the DCC (11.1; the fixtures' DCC).
DEFAULT_DCC_EUI = "90-B3-D5-1F-30-00-00-02"
#: The schemaVersion the built requests declare (the DCC templates' 5.x).
REQUEST_SCHEMA_VERSION = "5.4"
#: ``execute_at=CANCEL_FUTURE_DATED``: cancel the future-dated request of this SR pending on
#: the device (the DUIS cancellation date 3000-12-31).
CANCEL_FUTURE_DATED = CANCELLATION_DATE_TIME

#: 2.1's per-fuel wrapper and 2.3's recovery wrapper are chosen by fuel.
Fuel = Literal["electricity", "gas"]
_PREPAY_CONFIGURATION_WRAPPERS = {"electricity": "UpdatePrepayConfigElectricity",
                                  "gas": "UpdatePrepayConfigGas"}
_FUEL_INDEX = {"electricity": 0, "gas": 1}

register_namespace("sr", DUIS_NAMESPACE)


@dataclass(frozen=True)
class DuisMoney:
    """A money value already in DUIS units (1/100000 GBP), sent unchanged: for the sub-penny
    values whose truncation a test wants to see. A plain ``int`` is always pence."""

    value: int


#: Money parameters: ``int`` pence, or :class:`DuisMoney`.
Money = int | DuisMoney
#: Device IDs: EUI-64 text or 8 bytes.
Eui64 = str | bytes


@dataclass(frozen=True)
class TimeDebtChange:
    """2.3, a time-debt register: its adjustment and its recovery, which the Secure device
    sets together (a rate of ``recovery_rate_pence`` per ``recovery_period``)."""

    recovery_rate_pence: int
    recovery_period: DebtRecoveryPeriod = DebtRecoveryPeriod.DAILY
    adjust_pence: Money = 0


@dataclass(frozen=True)
class PaymentDebtChange:
    """2.3, the payment-debt register: its adjustment and the whole percentage of each
    payment that recovers it."""

    recovery_percentage: int
    adjust_pence: Money = 0


# A body parameter: (element name, text | nested parameters | None for an empty element).
_Item = tuple[str, "str | list[_Item] | None"]


def _eui64_text(eui64: Eui64, what: str) -> str:
    """EUI-64 text or bytes -> the one text form (ValueError naming ``what``)."""
    try:
        if isinstance(eui64, (bytes, bytearray)):
            return format_eui64(bytes(eui64))
        return format_eui64(parse_eui64(eui64))
    except ValueError as error:
        raise ValueError(f"{what}: {error}") from None


def _money(value: Money, element_name: str) -> str:
    if isinstance(value, DuisMoney):
        return str(value.value)
    return str(pence_to_request_duis_money(value, element_name))


def _seconds(duration: int | timedelta, element_name: str) -> str:
    return str(duration_to_seconds(duration, element_name))


def _boolean(value: bool) -> str:
    return "true" if value else "false"


class DuisRequestBuilder:
    """Builds DUIS request documents from one originator, numbering their RequestIDs.

    ``originator_eui``: the DCC user (RequestID's first part); ``counter_start``: the first
    RequestID counter (each document built takes the next); ``dcc_eui``: the RequestID target
    of SRs addressed to the DCC (11.1). One method per supported SR, named after it; each
    returns the document as ``str``."""

    def __init__(self, originator_eui: Eui64 = DEFAULT_ORIGINATOR_EUI, *,
                 counter_start: int = 1, dcc_eui: Eui64 = DEFAULT_DCC_EUI) -> None:
        if counter_start < 0:
            raise ValueError(f"counter_start {counter_start} is negative")
        self.originator_eui = _eui64_text(originator_eui, "originator_eui")
        self.dcc_eui = _eui64_text(dcc_eui, "dcc_eui")
        #: The RequestID counter the next document will carry.
        self.next_counter = counter_start

    # ----------------------------------------------------------------------------------------
    # Prepayment: 1.5, 1.6, 2.1, 2.2, 2.3, 2.5
    # ----------------------------------------------------------------------------------------

    def update_meter_balance(self, target: Eui64, *, adjust_pence: Money | None = None,
                             reset: bool = False) -> str:
        """SR 1.5: adjust the balance by ``adjust_pence`` (negative to take credit away), or
        ``reset=True`` to set it to 0; exactly one of the two."""
        if (adjust_pence is None) == (not reset):
            raise ValueError("update_meter_balance takes exactly one of adjust_pence or "
                             "reset=True")
        item: _Item = (("ResetMeterBalance", None) if adjust_pence is None
                       else ("AdjustMeterBalance", _money(adjust_pence, "AdjustMeterBalance")))
        return self._build("1.5", target, [item])

    def update_payment_mode(self, target: Eui64, mode: PaymentMode, *,
                            disablement_threshold_pence: Money = 0,
                            suspend_debt_disabled: bool = False,
                            suspend_debt_emergency: bool = False,
                            execute_at: datetime | None = None) -> str:
        """SR 1.6: switch to ``PaymentMode.PREPAYMENT`` (with its disablement threshold and
        SuspendDebt flags) or ``PaymentMode.CREDIT`` (the prepayment parameters unused);
        future-datable."""
        if PaymentMode(mode) is PaymentMode.CREDIT:
            items: list[_Item] = [("Credit", None)]
        else:
            items = [("Prepayment", [
                ("SuspendDebtDisabled", _boolean(suspend_debt_disabled)),
                ("SuspendDebtEmergency", _boolean(suspend_debt_emergency)),
                ("DisablementThreshold", _money(disablement_threshold_pence,
                                                "DisablementThreshold"))])]
        return self._build("1.6", target, items, execute_at)

    def update_prepay_configuration(
            self, target: Eui64, *, fuel: Fuel = "electricity",
            debt_recovery_rate_cap_pence: Money | None = None,
            emergency_credit_limit_pence: Money | None = None,
            emergency_credit_threshold_pence: Money | None = None,
            low_credit_threshold_pence: Money | None = None,
            max_meter_balance_pence: Money | None = None,
            max_credit_threshold_pence: Money | None = None,
            disablement_threshold_pence: Money | None = None,
            execute_at: datetime | None = None) -> str:
        """SR 2.1: set the thresholds given (at least one), in the ``fuel``'s wrapper;
        future-datable."""
        given = {
            "debt_recovery_rate_cap_pence": debt_recovery_rate_cap_pence,
            "emergency_credit_limit_pence": emergency_credit_limit_pence,
            "emergency_credit_threshold_pence": emergency_credit_threshold_pence,
            "low_credit_threshold_pence": low_credit_threshold_pence,
            "max_meter_balance_pence": max_meter_balance_pence,
            "max_credit_threshold_pence": max_credit_threshold_pence,
            "disablement_threshold_pence": disablement_threshold_pence,
        }
        values: list[_Item] = []
        for element_name, field_name in PREPAY_CONFIGURATION_ELEMENTS.items():
            value = given.pop(field_name, None)
            if value is not None:
                values.append((element_name, _money(value, element_name)))
        assert not given, f"parameters without a 2.1 element: {sorted(given)}"
        if not values:
            raise ValueError("update_prepay_configuration sets nothing: give at least one "
                             "threshold")
        return self._build("2.1", target, [(_PREPAY_CONFIGURATION_WRAPPERS[fuel], values)],
                           execute_at)

    def top_up_device(self, target: Eui64, utrn: str) -> str:
        """SR 2.2: the 20-digit UTRN (make one with :func:`emulator.make_top_up_utrn`)."""
        return self._build("2.2", target, [("UTRN", str(utrn))])

    def update_debt(self, target: Eui64, *, fuel: Fuel = "electricity",
                    time_debt_register_1: TimeDebtChange | None = None,
                    time_debt_register_2: TimeDebtChange | None = None,
                    payment_debt_register: PaymentDebtChange | None = None) -> str:
        """SR 2.3: adjust debt registers with their recovery settings (at least one register;
        the recovery wrappers are the ``fuel``'s: ElecDebtRecovery1 or GasDebtRecovery1...)."""
        names = {register: name for name, register in DEBT_REGISTERS.items()}
        items: list[_Item] = []
        recoveries: list[_Item] = []
        for register, change in ((DebtRegister.TIME_DEBT_1, time_debt_register_1),
                                 (DebtRegister.TIME_DEBT_2, time_debt_register_2)):
            if change is None:
                continue
            name = names[register]
            items.append((name, _money(change.adjust_pence, name)))
            rate, scale = pence_to_debt_recovery_rate(change.recovery_rate_pence)
            recoveries.append((DEBT_RECOVERY_WRAPPERS[register][_FUEL_INDEX[fuel]], [
                ("DebtRecoveryRate", str(rate)),
                ("DebtRecoveryRatePriceScale", str(scale)),
                ("DebtRecoveryRatePeriod", DebtRecoveryPeriod(change.recovery_period).name)]))
        if payment_debt_register is not None:
            name = names[DebtRegister.PAYMENT_DEBT]
            items += [(name, _money(payment_debt_register.adjust_pence, name)),
                      ("DebtRecoveryPerPayment", str(percentage_to_debt_recovery_per_payment(
                          payment_debt_register.recovery_percentage)))]
        if not items:
            raise ValueError("update_debt names no debt register")
        return self._build("2.3", target, items + recoveries)

    def activate_emergency_credit(self, target: Eui64) -> str:
        """SR 2.5."""
        return self._build("2.5", target, [])

    # ----------------------------------------------------------------------------------------
    # Reads: 4.3, 4.13, 4.15, 4.18
    # ----------------------------------------------------------------------------------------

    def read_instantaneous_prepay_values(self, target: Eui64) -> str:
        """SR 4.3."""
        return self._build("4.3", target, [])

    def read_prepayment_configuration(self, target: Eui64) -> str:
        """SR 4.13."""
        return self._build("4.13", target, [])

    def read_load_limit_data(self, target: Eui64) -> str:
        """SR 4.15."""
        return self._build("4.15", target, [])

    def read_meter_balance(self, target: Eui64) -> str:
        """SR 4.18."""
        return self._build("4.18", target, [])

    # ----------------------------------------------------------------------------------------
    # Load limiting 6.4.1, 6.4.2; clock 6.11
    # ----------------------------------------------------------------------------------------

    def update_load_limiting_general_settings(
            self, target: Eui64, *, power_threshold_w: int,
            period_seconds: int | timedelta, restoration_period_seconds: int | timedelta,
            execute_at: datetime | None = None) -> str:
        """SR 6.4.1: LoadLimitPowerThreshold (W), LoadLimitPeriod and
        LoadLimitRestorationPeriod (s); future-datable."""
        return self._build("6.4.1", target, [
            ("LoadLimitPowerThreshold", str(int(power_threshold_w))),
            ("LoadLimitPeriod", _seconds(period_seconds, "LoadLimitPeriod")),
            ("LoadLimitRestorationPeriod", _seconds(restoration_period_seconds,
                                                    "LoadLimitRestorationPeriod"))],
            execute_at)

    def reset_load_limiting_counter(self, target: Eui64) -> str:
        """SR 6.4.2 (Load Limiting Counter Reset)."""
        return self._build("6.4.2", target, [])

    def synchronise_clock(self, target: Eui64, *, current_date_time: datetime,
                          tolerance_period_seconds: int | timedelta = 60) -> str:
        """SR 6.11. CurrentDateTime + TolerancePeriod are the validity window: the S1SP sets
        the device to its own clock only when it sends inside that window (docs/duis.md)."""
        items: list[_Item] = [
            ("CurrentDateTime", datetime_to_duis_date_time(current_date_time, "CurrentDateTime")),
            ("TolerancePeriod", _seconds(tolerance_period_seconds, "TolerancePeriod"))]
        return self._build("6.11", target, items)

    # ----------------------------------------------------------------------------------------
    # Supply: 7.1-7.4
    # ----------------------------------------------------------------------------------------

    def enable_supply(self, target: Eui64) -> str:
        """SR 7.1."""
        return self._build("7.1", target, [])

    def disable_supply(self, target: Eui64) -> str:
        """SR 7.2."""
        return self._build("7.2", target, [])

    def arm_supply(self, target: Eui64) -> str:
        """SR 7.3."""
        return self._build("7.3", target, [])

    def read_supply_status(self, target: Eui64) -> str:
        """SR 7.4."""
        return self._build("7.4", target, [])

    # ----------------------------------------------------------------------------------------
    # HAN 8.11; firmware 11.1-11.3
    # ----------------------------------------------------------------------------------------

    def update_han_device_log(self, target: Eui64, device_id: Eui64, *,
                              join_time_period_seconds: int | timedelta | None = None,
                              remove: bool = False) -> str:
        """SR 8.11 to the comms hub ``target``: add ``device_id`` to its join list for
        ``join_time_period_seconds``, or ``remove=True`` to take it off."""
        if remove == (join_time_period_seconds is not None):
            raise ValueError("update_han_device_log takes join_time_period_seconds to add a "
                             "device, or remove=True, not both")
        items: list[_Item] = [("DeviceID", _eui64_text(device_id, "device_id")),
                              ("RequestType", "Remove" if remove else "Add")]
        if join_time_period_seconds is not None:
            items.append(("JoinTimePeriod", _seconds(join_time_period_seconds,
                                                     "JoinTimePeriod")))
        return self._build("8.11", target, items)

    def update_firmware(self, device_ids: Sequence[Eui64], image: bytes, *,
                        firmware_version: str = "") -> str:
        """SR 11.1, addressed to the DCC (``dcc_eui``): ``image`` (bytes, sent in base64) for
        each of ``device_ids``."""
        if isinstance(device_ids, (str, bytes)):
            raise TypeError("device_ids is a sequence of EUI-64s, not one")
        items: list[_Item] = [
            ("FirmwareImage", base64.b64encode(bytes(image)).decode("ascii")),
            ("DeviceIDList", " ".join(_eui64_text(eui, "device_ids entry")
                                      for eui in device_ids))]
        if firmware_version:
            items.insert(1, ("FirmwareVersion", firmware_version))
        return self._build("11.1", self.dcc_eui, items)

    def read_firmware_version(self, target: Eui64) -> str:
        """SR 11.2."""
        return self._build("11.2", target, [])

    def activate_firmware(self, target: Eui64, *, firmware_hash: bytes,
                          execute_at: datetime | None = None) -> str:
        """SR 11.3: activate the verified image whose SHA-256 (the SEFW header's
        payload_sha256) is ``firmware_hash``; the S1SP refuses a mismatch. Future-datable."""
        return self._build("11.3", target, [("FirmwareHash", bytes(firmware_hash).hex())],
                           execute_at)

    # ----------------------------------------------------------------------------------------
    # Tariff 1.1.1, 1.2.1, 4.11.1 (electricity: prices in millipence, put at a DUIS PriceScale)
    # ----------------------------------------------------------------------------------------

    def update_import_tariff(self, target: Eui64, *,
                             day_profiles: Sequence[Sequence[tuple[int, int]]],
                             week: Sequence[int],
                             prices_millipence_per_kwh: Sequence[Sequence[int]],
                             standing_charge_millipence_per_day: int,
                             block_thresholds_wh: Sequence[Sequence[int]] = (),
                             execute_at: datetime | None = None) -> str:
        """SR 1.1.1, electricity: ``day_profiles`` of ``(start_second_of_day, band)`` (bands
        from 1), the day profile (from 0) of each weekday Monday first, per band its block
        prices (one price: a TOU tariff) and, for a block tariff, its thresholds (Wh).
        Future-datable."""
        block = any(block_thresholds_wh)
        action = "BlockTariffAction" if block else "TOUTariffAction"
        profiles: list[_Item] = [("DayProfile", [("DayName", str(number)), *(
            ("ProfileSchedule", [("StartTime", _time_of_day(start)), (action, str(band))])
            for start, band in profile)]) for number, profile in enumerate(day_profiles, 1)]
        days = [(f"ReferencedDayName@{weekday}", str(day + 1))
                for weekday, day in enumerate(week, start=1)]
        rows = list(block_thresholds_wh) + [()] * (8 - len(block_thresholds_wh))
        thresholds: list[_Item] = [(f"Thresholds@{n}", [
            (f"BlockThreshold@{k}", str(value))
            for k, value in enumerate(row or (_NO_THRESHOLD,), start=1)])
            for n, row in enumerate(rows, start=1)]
        items: list[_Item] = [("ElecTariffElements", [
            ("CurrencyUnits", "GBP"),
            ("SwitchingTable", [("DayProfiles", profiles),
                                ("WeekProfiles", [("WeekProfile", [("WeekName", "1"), *days])]),
                                ("Seasons", [("Season", [
                                    ("SeasonName", "all"),
                                    ("SeasonStartDate", _ANY_DATE),
                                    ("ReferencedWeekName", "1")])])]),
            ("ThresholdMatrix", thresholds)]),
            _price_elements(prices_millipence_per_kwh, standing_charge_millipence_per_day,
                            block)]
        return self._build("1.1.1", target, items, execute_at)

    def update_price(self, target: Eui64, *, prices_millipence_per_kwh: Sequence[Sequence[int]],
                     standing_charge_millipence_per_day: int,
                     execute_at: datetime | None = None) -> str:
        """SR 1.2.1, electricity: per band its block prices (one each: TOU prices).
        Future-datable."""
        block = any(len(band) > 1 for band in prices_millipence_per_kwh)
        return self._build("1.2.1", target, [_price_elements(
            prices_millipence_per_kwh, standing_charge_millipence_per_day, block)], execute_at)

    def read_tariff(self, target: Eui64) -> str:
        """SR 4.11.1 (ESME, GSME)."""
        return self._build("4.11.1", target, [])

    # ----------------------------------------------------------------------------------------
    # Metering data 4.1.x, 4.6.1, 4.8.1, 4.12.1, 4.14, 4.16, 4.17 (ReadLogPeriod: [start, end))
    # ----------------------------------------------------------------------------------------

    def read_instantaneous_import_registers(self, target: Eui64) -> str:
        """SR 4.1.1 (ESME, GSME, GPF)."""
        return self._build("4.1.1", target, [])

    def read_instantaneous_import_tou_matrices(self, target: Eui64) -> str:
        """SR 4.1.2 (ESME, GSME, GPF)."""
        return self._build("4.1.2", target, [])

    def read_instantaneous_import_block_counters(self, target: Eui64) -> str:
        """SR 4.1.4 (GSME, GPF)."""
        return self._build("4.1.4", target, [])

    def retrieve_import_daily_read_log(self, target: Eui64, *, start: datetime,
                                       end: datetime) -> str:
        """SR 4.6.1: the midnights in ``[start, end)``."""
        return self._build("4.6.1", target, _read_log_period(start, end))

    def read_active_import_profile_data(self, target: Eui64, *, start: datetime,
                                        end: datetime) -> str:
        """SR 4.8.1: the half-hours starting in ``[start, end)``."""
        return self._build("4.8.1", target, _read_log_period(start, end))

    def read_maximum_demand_import_registers(self, target: Eui64) -> str:
        """SR 4.12.1 (ESME)."""
        return self._build("4.12.1", target, [])

    def read_active_power_import(self, target: Eui64) -> str:
        """SR 4.16 (ESME)."""
        return self._build("4.16", target, [])

    def retrieve_daily_consumption_log(self, target: Eui64, *, start: datetime,
                                       end: datetime) -> str:
        """SR 4.17: the whole days whose midnight is in ``[start, end)``."""
        return self._build("4.17", target, _read_log_period(start, end))

    def read_prepayment_daily_read_log(self, target: Eui64, *, start: datetime,
                                       end: datetime) -> str:
        """SR 4.14: the midnights in ``[start, end)``."""
        return self._build("4.14", target, _read_log_period(start, end))

    # ----------------------------------------------------------------------------------------
    # The document
    # ----------------------------------------------------------------------------------------

    def _build(self, variant: str, target: Eui64, items: list[_Item],
               execute_at: datetime | None = None) -> str:
        record = SERVICE_REQUESTS[variant]
        if record.addressee is Addressee.DCC:
            target = self.dcc_eui
        if execute_at is not None:
            if not record.future_datable:
                raise ValueError(f"SR {variant} {record.name} cannot be future-dated")
            items = [("ExecutionDateTime", _execution_text(execute_at)), *items]
        root = Element(_tag("Request"), {"schemaVersion": REQUEST_SCHEMA_VERSION})
        header = SubElement(root, _tag("Header"))
        counter = self.next_counter
        self.next_counter += 1
        request_id = f"{self.originator_eui}:{_eui64_text(target, 'target')}:{counter}"
        for name, value in (("RequestID", request_id),
                            ("CommandVariant", str(record.default_command_variant)),
                            ("ServiceReference", record.service_reference),
                            ("ServiceReferenceVariant", variant)):
            SubElement(header, _tag(name)).text = value
        _add_items(SubElement(SubElement(root, _tag("Body")), _tag(record.body_name)), items)
        indent(root, space="  ")
        return ('<?xml version="1.0" encoding="UTF-8"?>\n'
                + tostring(root, encoding="unicode") + "\n")


#: A BlockThreshold meaning "no threshold"; a Season start that matches any date.
_NO_THRESHOLD = 0xFFFF_FFFF
_ANY_DATE: list[_Item] = [("Year", [("NonSpecifiedYear", None)]),
                          ("Month", [("NonSpecifiedMonth", None)]),
                          ("DayOfMonth", [("NonSpecifiedDayOfMonth", None)]),
                          ("DayOfWeek", [("NonSpecifiedDayOfWeek", None)])]


def _time_of_day(second_of_day: int) -> str:
    if not 0 <= second_of_day < 86_400:
        raise ValueError(f"a switch time is a second of the day 0..86399, not {second_of_day}")
    hours, rest = divmod(second_of_day, 3600)
    return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}.00Z"


def _price_elements(bands: Sequence[Sequence[int]], standing_millipence: int,
                    block: bool) -> _Item:
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
        tariff: _Item = ("BlockTariff", rows)
    else:
        tariff = ("TOUTariff", [(f"TOUPrice@{n}", str(price)) for n, price in
                                enumerate(flat, start=1)])
    return ("PriceElements", [("ElectricityPriceElements", [
        ("StandingCharge", str(standing)), ("StandingChargeScale", str(standing_scale)),
        ("PriceScale", str(scale)), tariff])])


def _read_log_period(start: datetime, end: datetime) -> list[_Item]:
    return [("ReadLogPeriod", [
        ("StartDateTime", datetime_to_duis_date_time(start, "start")),
        ("EndDateTime", datetime_to_duis_date_time(end, "end"))])]


def _execution_text(execute_at: datetime) -> str:
    """ExecutionDateTime text: the cancellation date, or a date-time the device clock holds."""
    text = datetime_to_duis_date_time(execute_at, "execute_at")
    if execute_at != CANCEL_FUTURE_DATED and not (
            0 <= datetime_to_device_seconds(execute_at) <= DEVICE_TIME_MAX_SECONDS):
        raise ValueError(f"execute_at {text} is outside the device clock's range "
                         "1970-01-01T00:00:00Z..2106-02-07T06:28:15Z (use "
                         "CANCEL_FUTURE_DATED to cancel)")
    return text


def _tag(local: str) -> str:
    return f"{{{DUIS_NAMESPACE}}}{local}"


def _add_items(parent: Element, items: list[_Item]) -> None:
    """``name@3`` makes ``<name index="3">``."""
    for name, value in items:
        name, _, index = name.partition("@")
        child = SubElement(parent, _tag(name), {"index": index} if index else {})
        if isinstance(value, list):
            _add_items(child, value)
        elif value is not None:
            child.text = value
