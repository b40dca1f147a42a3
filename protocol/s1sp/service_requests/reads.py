"""Prepayment read Service Requests: 4.3, 4.13, 4.18 (empty bodies; device registers in DUIS
units back).

4.3 and 4.18 are valid for the GPF too (the DCC templates' RELIABLE_GPF variants, -A3): the
emulated GPF answers them from its gas meter's data. 4.13 is named ReadPrepaymentConfiguration
(*decided*; ReadPrepayConfiguration accepted too).
Money comes back as pence x 1000, CutOffGracePeriod in seconds.

This module never loads a document and never reaches a device except through its RuleContext.
"""

from __future__ import annotations

from protocol.apdu import Command
from protocol.s1sp.duis_xml import EmptyBody
from protocol.s1sp.rules import ResultItem, RuleContext, duis_enum_name
from protocol.s1sp.service_requests.record import (
    GAS_PROXY,
    METERS,
    NON_CRITICAL_VARIANTS,
    ServiceRequest,
)
from protocol.s1sp.service_requests.supply import supply_items
from protocol.s1sp.units import pence_to_duis_money

__all__ = ["RECORDS"]

#: 4.13: DUIS element -> READ_PREPAYMENT_CONFIGURATION field (pence), in response order.
_CONFIGURATION_MONEY: tuple[tuple[str, str], ...] = (
    ("DisablementThreshold", "disablement_threshold_pence"),
    ("EmergencyCreditLimit", "emergency_credit_limit_pence"),
    ("EmergencyCreditThreshold", "emergency_credit_threshold_pence"),
    ("LowCreditThreshold", "low_credit_threshold_pence"),
    ("MaxMeterBalance", "max_meter_balance_pence"),
    ("MaxCreditThreshold", "max_credit_threshold_pence"),
    ("DebtRecoveryRateCap", "debt_recovery_rate_cap_pence"),
    ("LowEmergencyCreditThreshold", "low_emergency_credit_threshold_pence"),
)


def _read_instantaneous_prepay_values(ctx: RuleContext, body: EmptyBody) -> list[ResultItem]:
    a = ctx.send(Command.READ_INSTANTANEOUS_PREPAY_VALUES)
    return [("PaymentMode", duis_enum_name(a.payment_mode)),
            ("MeterBalance", pence_to_duis_money(a.meter_balance_pence)),
            ("EmergencyCreditBalance", pence_to_duis_money(a.emergency_credit_balance_pence)),
            ("EmergencyCreditActive", a.emergency_credit_active),
            ("AccumulatedDebt", pence_to_duis_money(a.accumulated_debt_pence)),
            ("TimeDebtRegister1", pence_to_duis_money(a.time_debt_1_pence)),
            ("TimeDebtRegister2", pence_to_duis_money(a.time_debt_2_pence)),
            ("PaymentDebtRegister", pence_to_duis_money(a.payment_debt_pence)),
            *supply_items(a)]


def _read_prepayment_configuration(ctx: RuleContext, body: EmptyBody) -> list[ResultItem]:
    a = ctx.send(Command.READ_PREPAYMENT_CONFIGURATION)
    return [("PaymentMode", duis_enum_name(a.payment_mode)),
            ("SuspendDebtDisabled", a.suspend_debt_disabled),
            ("SuspendDebtEmergency", a.suspend_debt_emergency),
            *((name, pence_to_duis_money(getattr(a, field_name)))
              for name, field_name in _CONFIGURATION_MONEY),
            ("CutOffGracePeriod", a.cut_off_grace_period_minutes * 60),
            ("KeypadLockTimeout", a.keypad_lock_timeout_seconds),
            ("NonDisablementCalendarID", a.non_disablement_calendar_id),
            ("UTRNType", a.utrn_type)]


def _read_meter_balance(ctx: RuleContext, body: EmptyBody) -> list[ResultItem]:
    a = ctx.send(Command.READ_METER_BALANCE)
    return [("MeterBalance", pence_to_duis_money(a.meter_balance_pence)),
            ("EmergencyCreditBalance", pence_to_duis_money(a.emergency_credit_balance_pence))]


RECORDS: tuple[ServiceRequest, ...] = (
    ServiceRequest("4.3", "Read Instantaneous Prepay Values", ("ReadInstantaneousPrepayValues",),
                   NON_CRITICAL_VARIANTS, critical=False,
                   valid_device_types=METERS | GAS_PROXY,
                   handler=_read_instantaneous_prepay_values),
    ServiceRequest("4.13", "Read Prepayment Configuration",
                   ("ReadPrepaymentConfiguration", "ReadPrepayConfiguration"),
                   NON_CRITICAL_VARIANTS, critical=False, valid_device_types=METERS,
                   handler=_read_prepayment_configuration),
    ServiceRequest("4.18", "Read Meter Balance", ("ReadMeterBalance",), NON_CRITICAL_VARIANTS,
                   critical=False, valid_device_types=METERS | GAS_PROXY,
                   handler=_read_meter_balance),
)
