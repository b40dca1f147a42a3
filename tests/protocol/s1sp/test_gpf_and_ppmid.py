"""The DCC templates' other devices (issue 10 point 5): the GPF (-A3), the comms hub's gas proxy,
answers gas reads 4.3 and 4.18 from the gas meter's data; the PPMID (-A4), a type 2 device on the
HAN, answers 11.2 and is a HAN member, and nothing that moves money."""

from __future__ import annotations

from pathlib import Path
from xml.etree.ElementTree import fromstring

import pytest

from emulator.clock import VirtualClock
from emulator.errors import ProfileError
from emulator.profile import Profile, built_in_profile_text
from emulator.world import EmulatedWorld
from protocol.apdu import (
    REQUEST_BODY_TYPES,
    Command,
    DeviceType,
    Empty,
    HanEntryState,
    Request,
    Status,
)
from tests.protocol.s1sp.duis_answers import NS, response_code
from tests.protocol.s1sp.templates_rig import (
    TEMPLATES_GPF_EUI64,
    TEMPLATES_GSME_EUI64,
    TEMPLATES_HUB_EUI64,
    TEMPLATES_PPMID_EUI64,
    TemplatesRig,
    template_fixture_xml,
)

GPF_ADDRESS, PPMID_ADDRESS = 3, 18


def _results(xml: str) -> dict[str, str | None]:
    message = fromstring(xml).find("sr:Body/sr:ResponseMessage", NS)
    assert message is not None
    (body,) = [child for child in message if child.tag.endswith("Response")]
    return {child.tag.split("}")[1]: child.text for child in body}


@pytest.mark.parametrize(("gpf_fixture", "gas_fixture"), [
    ("4.3_read_instantaneous_prepay_values_gpf", "4.3_read_instantaneous_prepay_values_gas"),
    ("4.18_read_meter_balance_gpf", "4.18_read_meter_balance_gas"),
])
def test_a_gas_read_to_the_gpf_is_answered_from_the_gas_meters_data(
        gpf_fixture: str, gas_fixture: str) -> None:
    rig = TemplatesRig()
    rig.world.meter(TEMPLATES_GSME_EUI64).registers.meter_balance_pence = 4321
    through_gpf = rig.submit(template_fixture_xml(gpf_fixture))
    assert response_code(through_gpf) == "I0"
    assert [address for address, request in rig.requests()
            if request.command is not Command.READ_DEVICE_DIRECTORY] == [GPF_ADDRESS]
    assert _results(through_gpf)["MeterBalance"] == "4321000"
    direct = rig.submit(template_fixture_xml(gas_fixture))
    assert _results(through_gpf) == _results(direct)


def test_the_ppmid_answers_11_2_with_its_firmware_version() -> None:
    rig = TemplatesRig()
    xml = rig.submit(template_fixture_xml("11.2_read_firmware_version_ppmid"))
    assert response_code(xml) == "I0"
    assert _results(xml)["FirmwareVersion"] == "1.2.0"


def test_the_ppmid_is_a_member_of_the_hubs_han() -> None:
    rig = TemplatesRig()
    entries = rig.world.handle_request(rig.address(TEMPLATES_HUB_EUI64),
                                       Request(Command.READ_HAN_ENTRIES, 1, body=Empty()))
    states = {e.device_eui64: e.state for e in entries.body.entries}
    assert states[TEMPLATES_PPMID_EUI64] == HanEntryState.JOINED
    assert TEMPLATES_GPF_EUI64 not in states  # part of the hub, not a HAN member


def test_a_money_sr_to_the_ppmid_is_e11_and_nothing_sent() -> None:
    rig = TemplatesRig()
    xml = rig.submit(template_fixture_xml("1.5_adjust_meter_balance_ppmid"))
    assert response_code(xml) == "E11"
    assert rig.sent_commands() == []


@pytest.mark.parametrize(("address", "command", "fields"), [
    (GPF_ADDRESS, Command.ADJUST_METER_BALANCE, {"adjustment_pence": 1}),
    (GPF_ADDRESS, Command.HAN_REMOVE_DEVICE, {"device_eui64": TEMPLATES_PPMID_EUI64}),
    (PPMID_ADDRESS, Command.READ_METER_BALANCE, {}),
    (PPMID_ADDRESS, Command.TOP_UP, {"utrn": b"0" * 20}),
])
def test_gpf_and_ppmid_refuse_what_they_do_not_do(address: int, command: Command,
                                                  fields: dict[str, object]) -> None:
    rig = TemplatesRig()
    response = rig.world.handle_request(
        address, Request(command, 1, body=REQUEST_BODY_TYPES[command](**fields)))
    assert response.status is Status.NOT_SUPPORTED_BY_DEVICE


def test_the_directory_names_the_gpf_and_the_ppmid_by_type() -> None:
    rig = TemplatesRig()
    directory = rig.adapter.refresh_device_directory()
    assert directory[TEMPLATES_GPF_EUI64].device_type is DeviceType.GAS_PROXY_FUNCTION
    assert directory[TEMPLATES_PPMID_EUI64].device_type is DeviceType.PPMID


def test_a_world_with_gpf_and_ppmid_saves_and_restores(tmp_path: Path) -> None:
    profile = Profile.load("dcc-duis-templates")
    state = tmp_path / "state.json"
    world = EmulatedWorld(profile, VirtualClock(profile.start_device_time_seconds),
                          state_path=state)
    world.meter(TEMPLATES_GSME_EUI64).registers.meter_balance_pence = 777
    world.save()
    again = EmulatedWorld(profile, VirtualClock(profile.start_device_time_seconds),
                          state_path=state)
    answer = again.handle_request(GPF_ADDRESS,
                                  Request(Command.READ_METER_BALANCE, 1, body=Empty()))
    assert answer.body.meter_balance_pence == 777


def _templates_profile_with(old: str, new: str) -> bytes:
    text = built_in_profile_text("dcc-duis-templates")
    assert old in text
    return text.replace(old, new).encode()


def test_a_gpf_whose_han_has_no_gas_meter_is_a_profile_error() -> None:
    data = _templates_profile_with('type = "gsme"', 'type = "esme"')
    with pytest.raises(ProfileError, match="GPF answers for the one gas meter"):
        Profile.from_toml_bytes(data.replace(b'model = "SECURE-GSME"', b'model = "X"'))


def test_a_gpf_takes_no_han_keys() -> None:
    data = _templates_profile_with('type = "gpf"', 'type = "gpf"\non_han = true')
    with pytest.raises(ProfileError, match="a gpf takes none of"):
        Profile.from_toml_bytes(data)
