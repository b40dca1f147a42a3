"""11.1 Update Firmware responses and builder bodies no test pinned (issue 13): each device's
outcome written out in full when it is unknown, when the management address does not answer,
when a step is lost and the discarding FIRMWARE_VERIFY is lost too; the whole reason for a
non-SEFW image; the builder's body and its refusals.

Every test drives the adapter with the real world on a virtual clock (see conftest.py); the
expected values are written out."""

from __future__ import annotations

import base64
import re
from xml.etree.ElementTree import fromstring

import pytest

from protocol.apdu import MANAGEMENT_SERVER_ADDRESS, Command
from protocol.s1sp.builders import DuisRequestBuilder
from tests.protocol.s1sp.conftest import ESME_ADDRESS, ESME_EUI64, Rig, fixture_xml
from tests.protocol.s1sp.duis_answers import (
    NS,
    Tree,
    element_tree,
    error_reason,
    response_code,
    result_tree,
)

ESME = "00-DB-12-34-56-78-90-A1"
GSME = "00-DB-12-34-56-78-90-A2"
BOTH = f"{ESME} {GSME}"


def _update_firmware(device_ids: str) -> str:
    text = fixture_xml("11.1_update_firmware").decode()
    assert f"<sr:DeviceIDList>{BOTH}<" in text
    return text.replace(f"<sr:DeviceIDList>{BOTH}<", f"<sr:DeviceIDList>{device_ids}<")


def _refused_device(device_id: str, code: str, reason: str) -> Tree:
    return ("Device", [("DeviceID", device_id), ("Outcome", "Refused"), ("ResponseCode", code),
                       ("Reason", reason)])


def test_11_1_an_unknown_device_beside_an_accepted_one_in_full() -> None:
    response = Rig().submit(_update_firmware(f"{ESME} 00-DB-12-34-56-78-90-FF"))
    assert response_code(response) == "I0"
    assert result_tree(response) == [
        ("FirmwareVersion", "1.1.0"),
        ("Device", [("DeviceID", ESME), ("Outcome", "Accepted"), ("ResponseCode", "I0"),
                    ("PendingFirmwareVersion", "1.1.0")]),
        _refused_device("00-DB-12-34-56-78-90-FF", "E19",
                        "no device 00-DB-12-34-56-78-90-FF is behind this link (known: "
                        f"00-DB-12-34-56-78-90-A0, {ESME}, {GSME})")]


def test_11_1_when_the_device_directory_cannot_be_read_each_device_is_e20_in_full() -> None:
    rig = Rig()
    rig.link.silent.add(MANAGEMENT_SERVER_ADDRESS)
    response = rig.submit(_update_firmware(BOTH))
    assert response_code(response) == "E20"
    reason = ("cannot communicate with the devices' management address (reading the device "
              "directory), nothing was sent: no device answers at server address 1")
    assert result_tree(response) == [("FirmwareVersion", "1.1.0"),
                                     _refused_device(ESME, "E20", reason),
                                     _refused_device(GSME, "E20", reason)]


def test_11_1_a_lost_discarding_verify_is_ignored_and_the_lost_step_reported() -> None:
    rig = Rig()
    rig.link.lose_once |= {(ESME_ADDRESS, Command.FIRMWARE_BLOCK),
                           (ESME_ADDRESS, Command.FIRMWARE_VERIFY)}
    response = rig.submit(_update_firmware(ESME))
    assert response_code(response) == "E20"
    assert result_tree(response) == [("FirmwareVersion", "1.1.0"), _refused_device(
        ESME, "E20", f"cannot communicate with device {ESME}, nothing was sent: no device "
                     "answers at server address 16")]
    assert [request.command for address, request in rig.requests()
            if address == ESME_ADDRESS] == [Command.FIRMWARE_BEGIN, Command.FIRMWARE_BLOCK,
                                            Command.FIRMWARE_VERIFY]


def test_11_1_a_non_sefw_image_is_refused_with_the_whole_reason() -> None:
    gbcs_like = base64.b64encode(bytes.fromhex("0000012f") + bytes(300)).decode()
    xml = re.sub(r"<sr:FirmwareImage>[^<]*<", f"<sr:FirmwareImage>{gbcs_like}<",
                 _update_firmware(ESME))
    response = Rig().submit(xml)
    assert response_code(response) == "E-S1SR"
    assert error_reason(response) == (
        f"no device accepted the firmware update: {ESME}: device refused FIRMWARE_VERIFY: "
        "FIRMWARE_BAD_HEADER (the image is not a SEFW image: the emulated devices take SEFW "
        "images only, not GBCS ones; see firmware_images/README.md for the format and sample "
        "images)")


def _request_body(xml: str) -> list[Tree]:
    body = fromstring(xml).find("sr:Body", NS)
    assert body is not None
    return [element_tree(child) for child in body]


def test_the_11_1_builder_writes_the_version_between_image_and_devices_only_when_given(
) -> None:
    builder = DuisRequestBuilder()
    image = base64.b64encode(b"SEFW image").decode()
    assert _request_body(builder.update_firmware([ESME_EUI64, GSME], b"SEFW image")) == [
        ("UpdateFirmware", [("FirmwareImage", image), ("DeviceIDList", BOTH)])]
    assert _request_body(builder.update_firmware([ESME], b"SEFW image",
                                                 firmware_version="1.2.0")) == [
        ("UpdateFirmware", [("FirmwareImage", image), ("FirmwareVersion", "1.2.0"),
                            ("DeviceIDList", ESME)])]


def test_the_11_1_builder_refuses_one_eui64_for_a_list_and_a_bad_entry_naming_it() -> None:
    builder = DuisRequestBuilder()
    with pytest.raises(TypeError) as one:
        builder.update_firmware(ESME, b"SEFW image")
    assert str(one.value) == "device_ids is a sequence of EUI-64s, not one"
    with pytest.raises(ValueError) as bad:
        builder.update_firmware(["zz"], b"SEFW image")
    assert str(bad.value) == (
        "device_ids entry: 'zz' is not an EUI-64 such as 00-DB-12-34-56-78-90-A0")
