"""Supply Service Requests: 7.1 Enable, 7.2 Disable, 7.3 Arm, 7.4 Read Supply Status.

Bodies are empty (7.2 and 7.3 element names *decided* by analogy with 7.1 and 7.4). 7.1 is
valid for the ESME only (E11 for a GSME: its valve is armed with 7.3 and opened at the meter);
7.2-7.4 for both meters. The
response names the switch state as DUIS does (On, Off, Armed) and the reason it is off.

This module never loads a document and never reaches a device except through its RuleContext.
"""

from __future__ import annotations

from protocol.apdu import Command, SetSupplyStateRequest, SupplyState
from protocol.s1sp.duis_xml import EmptyBody
from protocol.s1sp.rules import ResponseBody, ResultItem, RuleContext, duis_enum_name
from protocol.s1sp.service_requests.record import (
    CRITICAL_VARIANTS,
    ELECTRICITY_METER,
    METERS,
    NON_CRITICAL_VARIANTS,
    ServiceRequest,
)

__all__ = ["RECORDS", "SUPPLY_STATUS_NAMES", "supply_items"]

#: DUIS SupplyStatus values for the device's supply switch states.
SUPPLY_STATUS_NAMES: dict[SupplyState, str] = {
    SupplyState.ENABLED: "On", SupplyState.DISABLED: "Off", SupplyState.ARMED: "Armed"}


def supply_items(answer: ResponseBody) -> list[ResultItem]:
    """SupplyStatus and SupplyOffReason from a device answer carrying the switch state (its
    ``supply_state`` and ``supply_off_reason``)."""
    return [("SupplyStatus", SUPPLY_STATUS_NAMES[answer.supply_state]),
            ("SupplyOffReason", duis_enum_name(answer.supply_off_reason))]


def _set_supply(ctx: RuleContext, state: SupplyState) -> list[ResultItem]:
    return supply_items(ctx.send(Command.SET_SUPPLY_STATE,
                                 SetSupplyStateRequest(supply_state=state)))


# Ordinary functions rather than handlers made by a factory at import: mutation testing (which
# switches a mutant on only inside a call) reaches their code.
def _enable_supply(ctx: RuleContext, body: EmptyBody) -> list[ResultItem]:
    return _set_supply(ctx, SupplyState.ENABLED)


def _disable_supply(ctx: RuleContext, body: EmptyBody) -> list[ResultItem]:
    return _set_supply(ctx, SupplyState.DISABLED)


def _arm_supply(ctx: RuleContext, body: EmptyBody) -> list[ResultItem]:
    return _set_supply(ctx, SupplyState.ARMED)


def _read_supply_status(ctx: RuleContext, body: EmptyBody) -> list[ResultItem]:
    return supply_items(ctx.send(Command.READ_SUPPLY_STATUS))


RECORDS: tuple[ServiceRequest, ...] = (
    # 7.1 is for the ESME only: a gas valve is armed (7.3) and opened at the meter
    ServiceRequest("7.1", "Enable Supply", ("EnableSupply",), CRITICAL_VARIANTS, critical=True,
                   valid_device_types=ELECTRICITY_METER,
                   handler=_enable_supply),
    ServiceRequest("7.2", "Disable Supply", ("DisableSupply",), CRITICAL_VARIANTS,
                   critical=True, valid_device_types=METERS,
                   handler=_disable_supply),
    ServiceRequest("7.3", "Arm Supply", ("ArmSupply",), CRITICAL_VARIANTS, critical=True,
                   valid_device_types=METERS, handler=_arm_supply),
    ServiceRequest("7.4", "Read Supply Status", ("ReadSupplyStatus",), NON_CRITICAL_VARIANTS,
                   critical=False, valid_device_types=METERS, handler=_read_supply_status),
)
