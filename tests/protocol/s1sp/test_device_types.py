"""Each SR's valid device types against the DUIS template targets and GBCS use cases (issue 10
point 3): an SR sent to a device type it does not apply to is E11, nothing sent."""

from __future__ import annotations

import pytest

from protocol.apdu import Command, DeviceType, Request, SetSupplyStateRequest, Status, SupplyState
from protocol.s1sp.service_requests import SERVICE_REQUESTS
from tests.protocol.s1sp.conftest import GSME_EUI64, Rig
from tests.protocol.s1sp.duis_answers import response_code
from tests.protocol.s1sp.templates_rig import (
    TEMPLATES_GSME_EUI64,
    TemplatesRig,
    template_fixture_xml,
)

ESME, GSME, HUB = DeviceType.ELECTRICITY_METER, DeviceType.GAS_METER, DeviceType.COMMS_HUB
GPF, PPMID = DeviceType.GAS_PROXY_FUNCTION, DeviceType.PPMID

#: Written out from docs/duis.md (template targets -A0 ESME, -A1 GSME, -A2 comms hub, -A3 GPF,
#: -A4 PPMID).
EXPECTED_DEVICE_TYPES: dict[str, set[DeviceType]] = {
    "1.1.1": {ESME, GSME}, "1.2.1": {ESME, GSME}, "4.11.1": {ESME, GSME},
    "1.5": {ESME, GSME}, "1.6": {ESME, GSME}, "2.1": {ESME, GSME}, "2.2": {ESME, GSME},
    "2.3": {ESME, GSME}, "2.5": {ESME, GSME},
    "4.3": {ESME, GSME, GPF}, "4.13": {ESME, GSME}, "4.15": {ESME}, "4.18": {ESME, GSME, GPF},
    "4.1.1": {ESME, GSME, GPF}, "4.1.2": {ESME, GSME, GPF}, "4.1.4": {GSME, GPF},
    "4.6.1": {ESME, GSME}, "4.8.1": {ESME, GSME}, "4.12.1": {ESME}, "4.14": {ESME, GSME, GPF},
    "4.10": {ESME}, "4.16": {ESME}, "4.17": {ESME, GSME, GPF},
    "6.4.1": {ESME}, "6.4.2": {ESME}, "6.11": {ESME, GSME},
    "7.1": {ESME}, "7.2": {ESME, GSME}, "7.3": {ESME, GSME}, "7.4": {ESME, GSME},
    "8.11": {HUB},
    "11.2": {ESME, GSME, HUB, GPF, PPMID}, "11.3": {ESME, GSME, HUB, GPF, PPMID},
}


@pytest.mark.parametrize("variant", sorted(EXPECTED_DEVICE_TYPES))
def test_each_sr_is_valid_for_the_device_types_duis_gives_it(variant: str) -> None:
    assert set(SERVICE_REQUESTS[variant].valid_device_types) == EXPECTED_DEVICE_TYPES[variant]


def test_7_1_enable_supply_to_a_gas_meter_is_e11_and_the_valve_stays_shut() -> None:
    """Issue 10 point 3: DUIS 7.1 is for the ESME only."""
    rig = TemplatesRig()
    gas = rig.world.meter(TEMPLATES_GSME_EUI64)
    rig.world.handle_request(rig.address(TEMPLATES_GSME_EUI64), Request(
        Command.SET_SUPPLY_STATE, 0, body=SetSupplyStateRequest(supply_state=SupplyState.DISABLED)))
    xml = rig.submit(template_fixture_xml("7.1_enable_supply_gas_meter"))
    assert response_code(xml) == "E11"
    assert Command.SET_SUPPLY_STATE not in rig.sent_commands()
    assert gas.registers.supply_state is SupplyState.DISABLED


def test_a_gas_meter_refuses_a_remote_enable_on_the_wire_too() -> None:
    rig = Rig()
    gas = rig.world.meter(GSME_EUI64)
    address = rig.world.device_by_eui64(GSME_EUI64).server_address
    rig.world.handle_request(address, Request(Command.SET_SUPPLY_STATE, 0,
                                              body=SetSupplyStateRequest(supply_state=SupplyState.DISABLED)))
    response = rig.world.handle_request(address, Request(
        Command.SET_SUPPLY_STATE, 0, body=SetSupplyStateRequest(supply_state=SupplyState.ENABLED)))
    assert response.status is Status.NOT_SUPPORTED_BY_DEVICE
    assert gas.registers.supply_state is SupplyState.DISABLED
