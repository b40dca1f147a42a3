"""Prepayment Service Requests: 1.5, 1.6, 2.1, 2.2, 2.3, 2.5 (body parsers, handlers, records).

Bodies (DUIS element names; confirmed in DCC templates unless marked *decided*):

- 1.5 UpdateMeterBalance: AdjustMeterBalance (money) | ResetMeterBalance (empty).
- 1.6 UpdatePaymentMode: ExecutionDateTime?, Prepayment {SuspendDebtDisabled,
  SuspendDebtEmergency, DisablementThreshold} | Credit.
- 2.1 UpdatePrepayConfiguration {UpdatePrepayConfigElectricity | ...Gas}: ExecutionDateTime?,
  any of DebtRecoveryRateCap, EmergencyCreditLimit, EmergencyCreditThreshold,
  LowCreditThreshold, and (*decided*) MaxMeterBalance, MaxCreditThreshold,
  DisablementThreshold; the non-disablement calendar is ignored (the Annex C calendar id
  stands).
- 2.2 TopUpDevice: UTRN (20 digits).
- 2.3 UpdateDebt: any of TimeDebtRegister1, TimeDebtRegister2, PaymentDebtRegister (money
  adjustments), ElecDebtRecovery1/2 {DebtRecoveryRate (xs:short), DebtRecoveryRatePriceScale,
  DebtRecoveryRatePeriod DAILY | HOURLY} or GasDebtRecovery1/2 {DebtRecoveryRate (xs:int, in
  1/100000 GBP: no scale element), DebtRecoveryRatePeriod}, DebtRecoveryPerPayment. The
  wrapper's fuel must be the target's (else E-INVALID); the response reports a gas rate in
  1/100000 GBP and an electricity rate in pence with DebtRecoveryRatePriceScale -2.
- 2.5 ActivateEmergencyCredit (empty).

S1SR rules:

- 18.3 / 18.16 (SR 1.5): AdjustMeterBalance truncated to pence and applied; ResetMeterBalance
  sets 0; the response carries the adjustment applied and the resulting balance (x 1000). A
  device refusal (EXCEEDS_MAX_METER_BALANCE) is our S1SR refusal, reason = the Status name.
- 18.4 / 18.27 (SR 1.6): DisablementThreshold truncated; SuspendDebt* passed; the Annex C
  defaults appended (the device applies them to parameters never configured).
- 18.5 / 18.8 (SR 2.5): the device refuses with EMERGENCY_CREDIT_UNAVAILABLE when ECL = 0;
  otherwise the response shows the EC balance made available (x 1000).
- 18.27 (SRs 1.6, 2.1): every threshold truncated to pence; the response returns the truncated
  values under the request's element names. A truncated value outside its device register's
  range (protocol.register_ranges) is refused before sending, the reason naming the element
  (a device VALUE_OUT_OF_RANGE to 1.5 or 2.3 is reported with the element named too).
- 18.27 (SR 2.1): truncation never becomes a refusal: DebtRecoveryRateCap 30 (0.03 p) is sent
  as 0 p and returned as 0; the device holds a cap of 0 p (no debt recovered), it gives 0 no
  special meaning.

This module never loads a document and never reaches a device except through its RuleContext.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from xml.etree.ElementTree import Element

from protocol.apdu import (
    AdjustMeterBalanceRequest,
    Command,
    DebtRecoveryPeriod,
    DebtRegister,
    DeviceType,
    PaymentMode,
    PrepaymentConfigurationField,
    SetPaymentModeRequest,
    SetPrepaymentConfigurationRequest,
    Status,
    TopUpRequest,
    UpdateDebtRequest,
)
from protocol.register_ranges import (
    DEBT_REGISTER_RANGE_PENCE,
    METER_BALANCE_RANGE_PENCE,
    SIGNED_THRESHOLD_RANGE_PENCE,
    THRESHOLD_RANGE_PENCE,
)
from protocol.s1sp.duis_xml import (
    DUIS_NAMESPACE,
    BodyItem,
    EmptyBody,
    Execution,
    Money,
    SrBody,
    boolean,
    boolean_text,
    duis_money,
    find,
    find_all,
    local_name,
    money_text,
    optional_integer,
    text,
)
from protocol.s1sp.errors import InvalidRequestError, S1srRefusalError
from protocol.s1sp.rules import (
    ResponseBody,
    ResultItem,
    RuleContext,
    name_out_of_range,
    require_register_range,
)
from protocol.s1sp.service_requests.record import (
    CRITICAL_VARIANTS,
    METERS,
    NON_CRITICAL_VARIANTS,
    ServiceRequest,
)
from protocol.s1sp.units import (
    DEBT_RECOVERY_RATE_PENCE_PRICE_SCALE,
    DUIS_MONEY_PRICE_SCALE,
    debt_recovery_per_payment_to_percentage,
    debt_recovery_rate_to_pence,
    duis_money_to_pence,
    parse_duis_integer,
    pence_to_debt_recovery_rate,
    pence_to_duis_money,
    percentage_to_debt_recovery_per_payment,
)

__all__ = [
    "DEBT_RECOVERY_PERIODS",
    "DEBT_RECOVERY_RATE_RANGES",
    "DEBT_RECOVERY_WRAPPERS",
    "DEBT_REGISTERS",
    "PREPAY_CONFIGURATION_ELEMENTS",
    "PREPAY_CONFIGURATION_WRAPPERS",
    "RECORDS",
    "DebtRecovery",
    "DebtRegisterUpdate",
    "DebtUpdate",
    "Fuel",
    "MeterBalanceUpdate",
    "PaymentDebtChange",
    "PaymentModeUpdate",
    "PrepayConfigurationUpdate",
    "TimeDebtChange",
    "TopUp",
    "debt_recovery_rate_items",
]

_UTRN = re.compile(r"[0-9]{20}")

#: 2.1's per-fuel wrapper and 2.3's recovery wrappers are chosen by the target's fuel.
Fuel = Literal["electricity", "gas"]
_FUEL_INDEX: dict[str, int] = {"electricity": 0, "gas": 1}


# --------------------------------------------------------------------------------------------
# 1.5 Update Meter Balance: 18.3, 18.16
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeterBalanceUpdate(SrBody):
    """1.5: exactly one of an adjustment (DUIS money) or a reset."""

    adjust_meter_balance: int | None
    reset_meter_balance: bool = False


_ADJUST_METER_BALANCE = "AdjustMeterBalance"
_RESET_METER_BALANCE = "ResetMeterBalance"
_METER_BALANCE = "MeterBalance"


def _parse_meter_balance(body: Element, where: str) -> SrBody:
    adjust = find(body, _ADJUST_METER_BALANCE, required=False, where=where)
    reset = find(body, _RESET_METER_BALANCE, required=False, where=where)
    if (adjust is None) == (reset is None):
        raise InvalidRequestError(f"{where} must hold exactly one of {_ADJUST_METER_BALANCE} "
                                  f"or {_RESET_METER_BALANCE}")
    if adjust is not None:
        return MeterBalanceUpdate(duis_money(adjust.text, _ADJUST_METER_BALANCE))
    return MeterBalanceUpdate(None, reset_meter_balance=True)


def _write_meter_balance(*, adjust_pence: Money | None = None, reset: bool = False
                         ) -> list[BodyItem]:
    """Adjust the balance by ``adjust_pence`` (negative to take credit away), or
    ``reset=True`` to set it to 0; exactly one of the two."""
    if (adjust_pence is None) == (not reset):
        raise ValueError("update_meter_balance takes exactly one of adjust_pence or "
                         "reset=True")
    if adjust_pence is None:
        return [(_RESET_METER_BALANCE, None)]
    return [(_ADJUST_METER_BALANCE, money_text(adjust_pence, _ADJUST_METER_BALANCE))]


def rule_18_3_meter_balance_adjustment(ctx: RuleContext, body: MeterBalanceUpdate
                                       ) -> list[ResultItem]:
    """18.3 + 18.16: adjust (truncated to pence) or reset; report applied and resulting."""
    if body.reset_meter_balance:
        answer = ctx.send(Command.RESET_METER_BALANCE)
        return [(_RESET_METER_BALANCE, True),
                (_METER_BALANCE, pence_to_duis_money(answer.meter_balance_pence))]
    assert body.adjust_meter_balance is not None
    adjustment_pence = duis_money_to_pence(body.adjust_meter_balance, _ADJUST_METER_BALANCE)
    try:
        answer = ctx.send(Command.ADJUST_METER_BALANCE,
                          AdjustMeterBalanceRequest(adjustment_pence=adjustment_pence))
    except S1srRefusalError as error:
        low, high = METER_BALANCE_RANGE_PENCE
        raise name_out_of_range(
            error, f"{_ADJUST_METER_BALANCE} {body.adjust_meter_balance}",
            f"{adjustment_pence} p would take the meter balance outside its range "
            f"{low}..{high} p") from None
    return rule_18_16_values_returned_after_adjustment(answer)


def rule_18_16_values_returned_after_adjustment(answer: ResponseBody) -> list[ResultItem]:
    """18.16: the adjustment actually applied and the resulting balance, x 1000
    (``answer``: ADJUST_METER_BALANCE's response body)."""
    return [(_ADJUST_METER_BALANCE, pence_to_duis_money(answer.adjustment_applied_pence)),
            (_METER_BALANCE, pence_to_duis_money(answer.meter_balance_pence))]


# --------------------------------------------------------------------------------------------
# 1.6 Update Payment Mode: 18.4, 18.27
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentModeUpdate(SrBody):
    """1.6: to prepayment (with its parameters) or to credit."""

    to_prepayment: bool
    disablement_threshold: int = 0  # DUIS money
    suspend_debt_disabled: bool = False
    suspend_debt_emergency: bool = False
    execution: Execution | None = None


_PREPAYMENT, _CREDIT = "Prepayment", "Credit"
_SUSPEND_DEBT_DISABLED = "SuspendDebtDisabled"
_SUSPEND_DEBT_EMERGENCY = "SuspendDebtEmergency"
_DISABLEMENT_THRESHOLD = "DisablementThreshold"


def _parse_payment_mode(body: Element, where: str) -> SrBody:
    prepayment = find(body, _PREPAYMENT, required=False, where=where)
    credit = find(body, _CREDIT, required=False, where=where)
    if (prepayment is None) == (credit is None):
        raise InvalidRequestError(
            f"{where} must hold exactly one of {_PREPAYMENT} or {_CREDIT}")
    if prepayment is None:
        return PaymentModeUpdate(False)
    inner = f"{where}/{_PREPAYMENT}"
    return PaymentModeUpdate(
        True,
        disablement_threshold=duis_money(text(prepayment, _DISABLEMENT_THRESHOLD, inner),
                                         _DISABLEMENT_THRESHOLD),
        suspend_debt_disabled=boolean(prepayment, _SUSPEND_DEBT_DISABLED, inner),
        suspend_debt_emergency=boolean(prepayment, _SUSPEND_DEBT_EMERGENCY, inner))


def _write_payment_mode(mode: PaymentMode, *, disablement_threshold_pence: Money = 0,
                        suspend_debt_disabled: bool = False,
                        suspend_debt_emergency: bool = False) -> list[BodyItem]:
    """Switch to ``PaymentMode.PREPAYMENT`` (with its disablement threshold and SuspendDebt
    flags) or ``PaymentMode.CREDIT`` (the prepayment parameters unused); future-datable."""
    if PaymentMode(mode) is PaymentMode.CREDIT:
        return [(_CREDIT, None)]
    return [(_PREPAYMENT, [
        (_SUSPEND_DEBT_DISABLED, boolean_text(suspend_debt_disabled)),
        (_SUSPEND_DEBT_EMERGENCY, boolean_text(suspend_debt_emergency)),
        (_DISABLEMENT_THRESHOLD, money_text(disablement_threshold_pence,
                                            _DISABLEMENT_THRESHOLD))])]


def rule_18_4_change_to_prepayment(ctx: RuleContext, body: PaymentModeUpdate
                                   ) -> list[ResultItem]:
    """18.4 (+ 18.27, Annex C): SET_PAYMENT_MODE with the truncated DisablementThreshold, the
    SuspendDebt flags and the Annex C defaults appended. A cancellation sends only the
    cancellation."""
    if body.execution is not None and body.execution.cancel:
        return ctx.cancel_scheduled(body.execution, Command.SET_PAYMENT_MODE)
    threshold_pence = rule_18_27_truncate_threshold(body.disablement_threshold,
                                                    _DISABLEMENT_THRESHOLD)
    request = SetPaymentModeRequest(
        payment_mode=PaymentMode.PREPAYMENT if body.to_prepayment else PaymentMode.CREDIT,
        disablement_threshold_pence=threshold_pence if body.to_prepayment else 0,
        suspend_debt_disabled=body.suspend_debt_disabled,
        suspend_debt_emergency=body.suspend_debt_emergency,
        defaults=ctx.annex_c.as_defaults())
    answer, scheduling = ctx.send_possibly_future_dated(
        body.execution, Command.SET_PAYMENT_MODE, request)
    if not body.to_prepayment:
        return [("PaymentMode", _CREDIT), *scheduling]
    if answer is not None:  # applied now: report what the device holds
        threshold_pence = answer.disablement_threshold_pence
    return [("PaymentMode", _PREPAYMENT),
            (_SUSPEND_DEBT_DISABLED, body.suspend_debt_disabled),
            (_SUSPEND_DEBT_EMERGENCY, body.suspend_debt_emergency),
            (_DISABLEMENT_THRESHOLD, pence_to_duis_money(threshold_pence)),
            *scheduling]


def rule_18_27_truncate_threshold(value: int, element_name: str) -> int:
    """18.27: a DUIS threshold truncated to whole pence (the response reports pence x 1000)."""
    return duis_money_to_pence(value, element_name)


# --------------------------------------------------------------------------------------------
# 2.1 Update Prepay Configuration: 18.27
# --------------------------------------------------------------------------------------------

#: 2.1 element name -> the SET_PREPAYMENT_CONFIGURATION field it sets (pence on the device),
#: which is also the builder's parameter name.
PREPAY_CONFIGURATION_ELEMENTS: dict[str, str] = {
    "DebtRecoveryRateCap": "debt_recovery_rate_cap_pence",
    "EmergencyCreditLimit": "emergency_credit_limit_pence",
    "EmergencyCreditThreshold": "emergency_credit_threshold_pence",
    "LowCreditThreshold": "low_credit_threshold_pence",
    "MaxMeterBalance": "max_meter_balance_pence",
    "MaxCreditThreshold": "max_credit_threshold_pence",
    _DISABLEMENT_THRESHOLD: "disablement_threshold_pence",
}
#: 2.1: the body's wrapper element, by the target's fuel (the parser accepts either).
PREPAY_CONFIGURATION_WRAPPERS: dict[str, str] = {
    "electricity": "UpdatePrepayConfigElectricity", "gas": "UpdatePrepayConfigGas"}


#: 2.1 elements whose device register is not 0..max (the rest: THRESHOLD_RANGE_PENCE).
PREPAY_CONFIGURATION_RANGES: dict[str, tuple[int, int]] = {
    _DISABLEMENT_THRESHOLD: SIGNED_THRESHOLD_RANGE_PENCE,
}


@dataclass(frozen=True)
class PrepayConfigurationUpdate(SrBody):
    """2.1: the thresholds present, DUIS element name -> DUIS money, in request order."""

    values: tuple[tuple[str, int], ...]
    execution: Execution | None = None


def _parse_prepay_configuration(body: Element, where: str) -> SrBody:
    values: list[tuple[str, int]] = []
    for node in body.iter():
        namespace, local = local_name(node.tag)
        if namespace == DUIS_NAMESPACE and local in PREPAY_CONFIGURATION_ELEMENTS:
            if any(name == local for name, _ in values):
                raise InvalidRequestError(f"{where} has more than one {local} element")
            values.append((local, duis_money(node.text, local)))
    if not values:
        raise InvalidRequestError(
            f"{where} sets nothing: give at least one of "
            f"{', '.join(PREPAY_CONFIGURATION_ELEMENTS)}")
    return PrepayConfigurationUpdate(tuple(values))


def _write_prepay_configuration(
        *, fuel: Fuel = "electricity", debt_recovery_rate_cap_pence: Money | None = None,
        emergency_credit_limit_pence: Money | None = None,
        emergency_credit_threshold_pence: Money | None = None,
        low_credit_threshold_pence: Money | None = None,
        max_meter_balance_pence: Money | None = None,
        max_credit_threshold_pence: Money | None = None,
        disablement_threshold_pence: Money | None = None) -> list[BodyItem]:
    """Set the thresholds given (at least one), in the ``fuel``'s wrapper; future-datable."""
    given = {
        "debt_recovery_rate_cap_pence": debt_recovery_rate_cap_pence,
        "emergency_credit_limit_pence": emergency_credit_limit_pence,
        "emergency_credit_threshold_pence": emergency_credit_threshold_pence,
        "low_credit_threshold_pence": low_credit_threshold_pence,
        "max_meter_balance_pence": max_meter_balance_pence,
        "max_credit_threshold_pence": max_credit_threshold_pence,
        "disablement_threshold_pence": disablement_threshold_pence,
    }
    values: list[BodyItem] = []
    for element_name, parameter in PREPAY_CONFIGURATION_ELEMENTS.items():
        value = given.pop(parameter)
        if value is not None:
            values.append((element_name, money_text(value, element_name)))
    assert not given, f"parameters without a 2.1 element: {sorted(given)}"
    if not values:
        raise ValueError("update_prepay_configuration sets nothing: give at least one "
                         "threshold")
    return [(PREPAY_CONFIGURATION_WRAPPERS[fuel], values)]


def rule_18_27_prepay_configuration(ctx: RuleContext, body: PrepayConfigurationUpdate
                                    ) -> list[ResultItem]:
    """18.27 (SR 2.1): every threshold truncated; the response echoes the truncated values
    under the request's element names. A cancellation sends only the cancellation."""
    if body.execution is not None and body.execution.cancel:
        return ctx.cancel_scheduled(body.execution, Command.SET_PREPAYMENT_CONFIGURATION)
    thresholds_pence = dict.fromkeys(PREPAY_CONFIGURATION_ELEMENTS.values(), 0)
    present = PrepaymentConfigurationField(0)
    echoed: list[ResultItem] = []
    for element_name, value in body.values:
        pence = rule_18_27_truncate_threshold(value, element_name)
        require_register_range(element_name, value, pence, PREPAY_CONFIGURATION_RANGES.get(
            element_name, THRESHOLD_RANGE_PENCE))
        field_name = PREPAY_CONFIGURATION_ELEMENTS[element_name]
        thresholds_pence[field_name] = pence
        present |= PrepaymentConfigurationField[field_name.removesuffix("_pence").upper()]
        echoed.append((element_name, pence_to_duis_money(pence)))
    _, scheduling = ctx.send_possibly_future_dated(
        body.execution, Command.SET_PREPAYMENT_CONFIGURATION,
        SetPrepaymentConfigurationRequest(fields_present=present, **thresholds_pence))
    return [*echoed, *scheduling]


# --------------------------------------------------------------------------------------------
# 2.2 Top Up Device
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TopUp(SrBody):
    """2.2: a 20-digit UTRN."""

    utrn: str


_UTRN_ELEMENT = "UTRN"


def _parse_top_up(body: Element, where: str) -> SrBody:
    utrn = text(body, _UTRN_ELEMENT, where)
    if not _UTRN.fullmatch(utrn):
        raise InvalidRequestError(f"{_UTRN_ELEMENT} {utrn!r} is not 20 digits")
    return TopUp(utrn)


def _write_top_up(utrn: str) -> list[BodyItem]:
    """The 20-digit UTRN (make one with :func:`emulator.make_top_up_utrn`)."""
    return [(_UTRN_ELEMENT, str(utrn))]


def _top_up(ctx: RuleContext, body: TopUp) -> list[ResultItem]:
    answer = ctx.send(Command.TOP_UP, TopUpRequest(utrn=body.utrn.encode("ascii")))
    return [("CreditAdded", pence_to_duis_money(answer.credit_added_pence)),
            ("EmergencyCreditRepaid", pence_to_duis_money(answer.emergency_credit_repaid_pence)),
            ("DebtRecovered", pence_to_duis_money(answer.debt_recovered_pence)),
            (_METER_BALANCE, pence_to_duis_money(answer.meter_balance_pence))]


# --------------------------------------------------------------------------------------------
# 2.3 Update Debt
# --------------------------------------------------------------------------------------------

#: 2.3: register element -> device register.
DEBT_REGISTERS: dict[str, DebtRegister] = {
    "TimeDebtRegister1": DebtRegister.TIME_DEBT_1,
    "TimeDebtRegister2": DebtRegister.TIME_DEBT_2,
    "PaymentDebtRegister": DebtRegister.PAYMENT_DEBT,
}
_DEBT_REGISTER_NAMES: dict[DebtRegister, str] = {
    register: name for name, register in DEBT_REGISTERS.items()}
#: 2.3: the recovery wrapper of each time-debt register (prefixed Elec or Gas in DUIS).
DEBT_RECOVERY_WRAPPERS: dict[DebtRegister, tuple[str, str]] = {
    DebtRegister.TIME_DEBT_1: ("ElecDebtRecovery1", "GasDebtRecovery1"),
    DebtRegister.TIME_DEBT_2: ("ElecDebtRecovery2", "GasDebtRecovery2"),
}
DEBT_RECOVERY_PERIODS: dict[str, DebtRecoveryPeriod] = {
    "HOURLY": DebtRecoveryPeriod.HOURLY,
    "DAILY": DebtRecoveryPeriod.DAILY,
}
_DEBT_RECOVERY_RATE = "DebtRecoveryRate"
_DEBT_RECOVERY_RATE_PRICE_SCALE = "DebtRecoveryRatePriceScale"
_DEBT_RECOVERY_RATE_PERIOD = "DebtRecoveryRatePeriod"
_DEBT_RECOVERY_PER_PAYMENT = "DebtRecoveryPerPayment"


#: 2.3: the XSD range of DebtRecoveryRate by fuel (electricity xs:short with its own
#: DebtRecoveryRatePriceScale; gas xs:int in 1/100000 GBP, no scale element).
DEBT_RECOVERY_RATE_RANGES: dict[DeviceType, tuple[int, int]] = {
    DeviceType.ELECTRICITY_METER: (-(2**15), 2**15 - 1),
    DeviceType.GAS_METER: (-(2**31), 2**31 - 1),
}


@dataclass(frozen=True)
class DebtRecovery:
    """A time-debt register's recovery: DebtRecoveryRate x 10^DebtRecoveryRatePriceScale GBP
    per DebtRecoveryRatePeriod (see :func:`protocol.s1sp.units.debt_recovery_rate_to_pence`).
    ``fuel``: the meter type its wrapper names (ElecDebtRecovery* or GasDebtRecovery*); the
    gas form has no scale element, its rate is DUIS money (scale -5)."""

    debt_recovery_rate: int
    debt_recovery_rate_price_scale: int
    debt_recovery_period: DebtRecoveryPeriod
    fuel: DeviceType = DeviceType.ELECTRICITY_METER


@dataclass(frozen=True)
class DebtRegisterUpdate:
    """One debt register of a 2.3: its adjustment (DUIS money, 0 when only its recovery is
    given) and its recovery settings (time debt: ``recovery``; payment debt:
    ``debt_recovery_per_payment`` in hundredths of a percent)."""

    debt_register: DebtRegister
    debt_adjustment: int = 0
    recovery: DebtRecovery | None = None
    debt_recovery_per_payment: int | None = None


@dataclass(frozen=True)
class DebtUpdate(SrBody):
    """2.3: the registers named, in register order."""

    registers: tuple[DebtRegisterUpdate, ...]


def _parse_debt_recovery(body: Element, register: DebtRegister, where: str
                         ) -> DebtRecovery | None:
    wrappers = [node for name in DEBT_RECOVERY_WRAPPERS[register]
                for node in find_all(body, name)]
    if not wrappers:
        return None
    if len(wrappers) > 1:
        raise InvalidRequestError(
            f"{where} has more than one recovery element for {register.name}")
    wrapper_name = local_name(wrappers[0].tag)[1]
    inner = f"{where}/{wrapper_name}"
    fuel = (DeviceType.GAS_METER if wrapper_name.startswith("Gas")
            else DeviceType.ELECTRICITY_METER)
    period_text = text(wrappers[0], _DEBT_RECOVERY_RATE_PERIOD, inner).upper()
    if period_text not in DEBT_RECOVERY_PERIODS:
        raise InvalidRequestError(
            f"{_DEBT_RECOVERY_RATE_PERIOD} {period_text!r} is not DAILY or HOURLY")
    rate = parse_duis_integer(text(wrappers[0], _DEBT_RECOVERY_RATE, inner),
                              f"{wrapper_name}/{_DEBT_RECOVERY_RATE}")
    lowest, highest = DEBT_RECOVERY_RATE_RANGES[fuel]
    if not lowest <= rate <= highest:
        raise InvalidRequestError(
            f"{wrapper_name}/DebtRecoveryRate {rate} is outside its DUIS type's range "
            f"{lowest}..{highest}")
    if fuel is DeviceType.GAS_METER:
        if find(wrappers[0], _DEBT_RECOVERY_RATE_PRICE_SCALE, required=False,
                where=inner) is not None:
            raise InvalidRequestError(
                f"{wrapper_name} has no DebtRecoveryRatePriceScale in DUIS: the gas "
                "DebtRecoveryRate is in 1/100000 GBP")
        scale = DUIS_MONEY_PRICE_SCALE
    else:
        scale = optional_integer(wrappers[0], _DEBT_RECOVERY_RATE_PRICE_SCALE, inner,
                                 DUIS_MONEY_PRICE_SCALE)
    return DebtRecovery(rate, scale, DEBT_RECOVERY_PERIODS[period_text], fuel)


def _parse_debt(body: Element, where: str) -> SrBody:
    updates: list[DebtRegisterUpdate] = []
    for name, register in DEBT_REGISTERS.items():
        node = find(body, name, required=False, where=where)
        adjustment = 0 if node is None else duis_money(node.text, name)
        if register is DebtRegister.PAYMENT_DEBT:
            per_payment_node = find(body, _DEBT_RECOVERY_PER_PAYMENT, required=False,
                                    where=where)
            per_payment = (None if per_payment_node is None else parse_duis_integer(
                per_payment_node.text, _DEBT_RECOVERY_PER_PAYMENT))
            if node is not None or per_payment is not None:
                updates.append(DebtRegisterUpdate(register, adjustment,
                                                  debt_recovery_per_payment=per_payment))
            continue
        recovery = _parse_debt_recovery(body, register, where)
        if node is not None or recovery is not None:
            updates.append(DebtRegisterUpdate(register, adjustment, recovery=recovery))
    if not updates:
        raise InvalidRequestError(
            f"{where} names no debt register: give TimeDebtRegister1, TimeDebtRegister2, "
            "PaymentDebtRegister or their recovery settings")
    return DebtUpdate(tuple(updates))


@dataclass(frozen=True)
class TimeDebtChange:
    """2.3 to write, a time-debt register: its adjustment and its recovery, which the Secure
    device sets together (a rate of ``recovery_rate_pence`` per ``recovery_period``)."""

    recovery_rate_pence: int
    recovery_period: DebtRecoveryPeriod = DebtRecoveryPeriod.DAILY
    adjust_pence: Money = 0


@dataclass(frozen=True)
class PaymentDebtChange:
    """2.3 to write, the payment-debt register: its adjustment and the whole percentage of
    each payment that recovers it."""

    recovery_percentage: int
    adjust_pence: Money = 0


def _write_debt(*, fuel: Fuel = "electricity",
                time_debt_register_1: TimeDebtChange | None = None,
                time_debt_register_2: TimeDebtChange | None = None,
                payment_debt_register: PaymentDebtChange | None = None) -> list[BodyItem]:
    """Adjust debt registers with their recovery settings (at least one register; the
    recovery wrappers are the ``fuel``'s: ElecDebtRecovery1 or GasDebtRecovery1...)."""
    items: list[BodyItem] = []
    recoveries: list[BodyItem] = []
    for register, change in ((DebtRegister.TIME_DEBT_1, time_debt_register_1),
                             (DebtRegister.TIME_DEBT_2, time_debt_register_2)):
        if change is None:
            continue
        name = _DEBT_REGISTER_NAMES[register]
        items.append((name, money_text(change.adjust_pence, name)))
        rate, scale = pence_to_debt_recovery_rate(change.recovery_rate_pence)
        recoveries.append((DEBT_RECOVERY_WRAPPERS[register][_FUEL_INDEX[fuel]], [
            (_DEBT_RECOVERY_RATE, str(rate)),
            (_DEBT_RECOVERY_RATE_PRICE_SCALE, str(scale)),
            (_DEBT_RECOVERY_RATE_PERIOD, DebtRecoveryPeriod(change.recovery_period).name)]))
    if payment_debt_register is not None:
        name = _DEBT_REGISTER_NAMES[DebtRegister.PAYMENT_DEBT]
        items += [(name, money_text(payment_debt_register.adjust_pence, name)),
                  (_DEBT_RECOVERY_PER_PAYMENT, str(percentage_to_debt_recovery_per_payment(
                      payment_debt_register.recovery_percentage)))]
    if not items:
        raise ValueError("update_debt names no debt register")
    return items + recoveries


def _update_debt_request(update: DebtRegisterUpdate, device_type: DeviceType
                         ) -> UpdateDebtRequest:
    """The UPDATE_DEBT request for one register. The Secure device sets a register's recovery
    together with its adjustment, so a register without its recovery settings is refused
    (rather than zeroing the device's rate)."""
    name = _DEBT_REGISTER_NAMES[update.debt_register]
    rate_pence, period, percentage = 0, DebtRecoveryPeriod.DAILY, 0
    if update.debt_register is DebtRegister.PAYMENT_DEBT:
        if update.debt_recovery_per_payment is None:
            raise S1srRefusalError(
                f"{name} needs {_DEBT_RECOVERY_PER_PAYMENT}: the Secure device sets the register "
                "and its recovery together; nothing was sent")
        percentage = debt_recovery_per_payment_to_percentage(update.debt_recovery_per_payment)
    else:
        if update.recovery is None:
            raise S1srRefusalError(
                f"{name} needs its ElecDebtRecovery/GasDebtRecovery settings: the Secure "
                "device sets the register and its recovery together; nothing was sent")
        if update.recovery.fuel is not device_type:
            wrapper = DEBT_RECOVERY_WRAPPERS[update.debt_register][
                update.recovery.fuel is DeviceType.GAS_METER]
            raise InvalidRequestError(
                f"{wrapper} is for a {update.recovery.fuel.name}, but the target is a "
                f"{device_type.name}; nothing was sent")
        rate_pence = debt_recovery_rate_to_pence(
            update.recovery.debt_recovery_rate, update.recovery.debt_recovery_rate_price_scale)
        period = update.recovery.debt_recovery_period
    return UpdateDebtRequest(
        debt_register=update.debt_register,
        debt_adjustment_pence=duis_money_to_pence(update.debt_adjustment, name),
        debt_recovery_rate_pence=rate_pence, debt_recovery_period=period,
        debt_recovery_percentage=percentage)


def debt_recovery_rate_items(device_type: DeviceType, rate_pence: int) -> list[ResultItem]:
    """A device's recovery rate as DUIS reports it: on a gas meter DebtRecoveryRate in
    1/100000 GBP (no scale element in DUIS); on an electricity meter the pence with
    DebtRecoveryRatePriceScale -2."""
    if device_type is DeviceType.GAS_METER:
        return [(_DEBT_RECOVERY_RATE, pence_to_duis_money(rate_pence))]
    return [(_DEBT_RECOVERY_RATE, rate_pence),
            (_DEBT_RECOVERY_RATE_PRICE_SCALE, DEBT_RECOVERY_RATE_PENCE_PRICE_SCALE)]


def _update_debt(ctx: RuleContext, body: DebtUpdate) -> list[ResultItem]:
    """2.3: one UPDATE_DEBT per register named, every one checked before anything is sent.
    Registers are sent in order; if the device refuses one, those before it stay applied (the
    reason says which)."""
    requests = [(_DEBT_REGISTER_NAMES[update.debt_register],
                 _update_debt_request(update, ctx.device.device_type))
                for update in body.registers]
    items: list[ResultItem] = []
    for name, request in requests:
        try:
            answer = ctx.send(Command.UPDATE_DEBT, request)
        except S1srRefusalError as error:
            applied = ", ".join(item_name for item_name, _ in items) or "none"
            low, high = DEBT_REGISTER_RANGE_PENCE
            if error.device_status == Status.VALUE_OUT_OF_RANGE.name:
                error = S1srRefusalError(
                    f"{error.reason}: the adjustment {request.debt_adjustment_pence} p would "
                    f"take the register outside {low}..{high} p, or the three debt registers "
                    f"together above {high} p", device_status=error.device_status)
            raise S1srRefusalError(f"{name}: {error.reason} (already applied: {applied})",
                                   device_status=error.device_status) from None
        register_items: list[ResultItem] = [
            ("DebtValue", pence_to_duis_money(answer.debt_value_pence))]
        if answer.debt_register is DebtRegister.PAYMENT_DEBT:
            register_items.append((_DEBT_RECOVERY_PER_PAYMENT,
                                   answer.debt_recovery_percentage * 100))
        else:
            register_items += debt_recovery_rate_items(ctx.device.device_type,
                                                       answer.debt_recovery_rate_pence)
            register_items.append((_DEBT_RECOVERY_RATE_PERIOD,
                                   answer.debt_recovery_period.name))
        items.append((name, register_items))
    return items


# --------------------------------------------------------------------------------------------
# 2.5 Activate Emergency Credit: 18.5, 18.8
# --------------------------------------------------------------------------------------------


def rule_18_5_and_18_8_emergency_credit(ctx: RuleContext, body: EmptyBody) -> list[ResultItem]:
    """18.5: ECL = 0 -> the device refuses (EMERGENCY_CREDIT_UNAVAILABLE), our refusal code.
    18.8: otherwise the EC balance made available, x 1000."""
    answer = ctx.send(Command.ACTIVATE_EMERGENCY_CREDIT)
    return [("EmergencyCreditBalance",
             pence_to_duis_money(answer.emergency_credit_balance_pence)),
            (_METER_BALANCE, pence_to_duis_money(answer.meter_balance_pence))]


RECORDS: tuple[ServiceRequest, ...] = (
    ServiceRequest("1.5", "Update Meter Balance", ("UpdateMeterBalance",), CRITICAL_VARIANTS,
                   critical=True, valid_device_types=METERS,
                   handler=rule_18_3_meter_balance_adjustment,
                   parse_body=_parse_meter_balance, write_body=_write_meter_balance),
    ServiceRequest("1.6", "Update Payment Mode", ("UpdatePaymentMode",), CRITICAL_VARIANTS,
                   critical=True, valid_device_types=METERS,
                   handler=rule_18_4_change_to_prepayment, parse_body=_parse_payment_mode,
                   write_body=_write_payment_mode, future_datable=True),
    ServiceRequest("2.1", "Update Prepay Configuration",
                   ("UpdatePrepayConfiguration", "UpdatePrepayConfigurations"),
                   CRITICAL_VARIANTS, critical=True, valid_device_types=METERS,
                   handler=rule_18_27_prepay_configuration,
                   parse_body=_parse_prepay_configuration,
                   write_body=_write_prepay_configuration, future_datable=True),
    ServiceRequest("2.2", "Top Up Device", ("TopUpDevice",), NON_CRITICAL_VARIANTS,
                   critical=False, valid_device_types=METERS, handler=_top_up,
                   parse_body=_parse_top_up, write_body=_write_top_up),
    ServiceRequest("2.3", "Update Debt", ("UpdateDebt",), CRITICAL_VARIANTS, critical=True,
                   valid_device_types=METERS, handler=_update_debt, parse_body=_parse_debt,
                   write_body=_write_debt),
    # *decided* tolerance: 2.5 (ECS09) is critical in GBCS, but CommandVariants 1-3 are
    # accepted for it too
    ServiceRequest("2.5", "Activate Emergency Credit", ("ActivateEmergencyCredit",),
                   CRITICAL_VARIANTS | NON_CRITICAL_VARIANTS, critical=True,
                   valid_device_types=METERS, handler=rule_18_5_and_18_8_emergency_credit),
)
