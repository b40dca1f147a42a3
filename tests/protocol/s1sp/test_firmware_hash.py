"""11.3 FirmwareHash is checked against the SHA-256 of the image pending on the device, as its
FIRMWARE_STATUS reports it (issue 10 point 6)."""

from __future__ import annotations

import pytest

from protocol.apdu import Command
from tests.protocol.s1sp.conftest import ESME_EUI64, Rig, fixture_xml
from tests.protocol.s1sp.duis_answers import error_reason, response_code

#: the payload SHA-256 of firmware_images/esme_liberty100_1.1.0.sefw (its header, offset 73)
IMAGE_SHA256 = bytes.fromhex("5F401A3089384D21A9EE0D2DB2872D98DF26CF6F47129CF1C24829811B1F8F74")


def _rig_with_a_pending_image() -> Rig:
    rig = Rig()
    assert response_code(rig.submit(fixture_xml("11.1_update_firmware"))) == "I0"
    return rig


def test_the_device_reports_the_pending_images_sha256_in_its_firmware_status() -> None:
    rig = _rig_with_a_pending_image()
    firmware = rig.world.device_by_eui64(ESME_EUI64).firmware
    assert firmware.status().pending_image_sha256 == IMAGE_SHA256


@pytest.mark.parametrize("fixture", ["11.3_activate_firmware_wrong_hash",
                                     "11.3_activate_firmware_wrong_hash_future_dated"])
def test_an_activation_whose_hash_does_not_match_is_refused_and_nothing_activates(
        fixture: str) -> None:
    rig = _rig_with_a_pending_image()
    device = rig.world.device_by_eui64(ESME_EUI64)
    xml = rig.submit(fixture_xml(fixture))
    assert response_code(xml) == "E-S1SR"
    assert error_reason(xml).startswith("FirmwareHash AA7586")
    assert "does not match the SHA-256 of the image pending on device 00-DB-12-34-56-78-90-A1"\
        " (5F401A30" in error_reason(xml)
    assert device.firmware.running_version == "1.0.0"
    assert device.firmware.pending_version == "1.1.0"
    assert device.schedule == {}
    assert Command.FIRMWARE_ACTIVATE not in rig.sent_commands()
    assert Command.SCHEDULE_REQUEST not in rig.sent_commands()


def test_an_activation_whose_hash_matches_activates_the_pending_image() -> None:
    rig = _rig_with_a_pending_image()
    xml = rig.submit(fixture_xml("11.3_activate_firmware"))
    assert response_code(xml) == "I0"
    assert rig.world.device_by_eui64(ESME_EUI64).firmware.running_version == "1.1.0"


def test_a_firmware_hash_that_is_not_32_bytes_is_invalid() -> None:
    rig = _rig_with_a_pending_image()
    xml = rig.submit(fixture_xml("11.3_activate_firmware").replace(b"1B1F8F74<", b"1B1F8F<"))
    assert response_code(xml) == "E-INVALID"
    assert "FirmwareHash is 31 bytes" in error_reason(xml)
