"""11.1 Update Firmware responses and builder bodies no test pinned (issue 13): each device's
outcome written out in full when it is unknown, when the management address does not answer,
when a step is lost and the discarding FIRMWARE_VERIFY is lost too; the whole reason for a
non-SEFW image; the builder's body and its refusals.

Every test drives the adapter with the real world on a virtual clock (see conftest.py); the
expected values are written out."""

from __future__ import annotations

import base64
import re
from dataclasses import replace

import pytest

from protocol.apdu import (
    MANAGEMENT_SERVER_ADDRESS,
    Command,
    FirmwareActivateRequest,
    Request,
    decode_apdu,
    encode_request,
)
from protocol.s1sp.builders import DuisRequestBuilder
from tests.protocol.s1sp.conftest import ESME_ADDRESS, ESME_EUI64, Rig, fixture_xml
from tests.protocol.s1sp.duis_answers import (
    Tree,
    error_reason,
    request_body,
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
    rig = Rig()
    response = rig.submit(xml)
    assert response_code(response) == "E-S1SR"
    # the refused VERIFY has discarded the transfer: no second VERIFY
    assert [request.command for _, request in rig.requests()][-1:] == [Command.FIRMWARE_VERIFY]
    assert len(rig.sent(Command.FIRMWARE_VERIFY)) == 1
    assert error_reason(response) == (
        f"no device accepted the firmware update: {ESME}: device refused FIRMWARE_VERIFY: "
        "FIRMWARE_BAD_HEADER (the image is not a SEFW image: the emulated devices take SEFW "
        "images only, not GBCS ones; see firmware_images/README.md for the format and sample "
        "images)")



def test_the_11_1_builder_writes_the_version_between_image_and_devices_only_when_given(
) -> None:
    builder = DuisRequestBuilder()
    image = base64.b64encode(b"SEFW image").decode()
    assert request_body(builder.update_firmware([ESME_EUI64, GSME], b"SEFW image")) == [
        ("UpdateFirmware", [("FirmwareImage", image), ("DeviceIDList", BOTH)])]
    assert request_body(builder.update_firmware([ESME], b"SEFW image",
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


def _image_text() -> str:
    found = re.search(r"<sr:FirmwareImage>([^<]*)<", _update_firmware(BOTH))
    assert found is not None
    return found[1]


def _unknown_devices(count: int) -> str:
    return " ".join(f"00-DB-12-34-56-78-91-{n:02X}" for n in range(count))


@pytest.mark.parametrize(("old", "new", "reason"), [
    ("<sr:FirmwareImage>U0VGV", "<sr:FirmwareImage>!!!!U0VGV",
     "FirmwareImage is not valid base64"),
    (f"<sr:DeviceIDList>{BOTH}</sr:DeviceIDList>", "",
     "UpdateFirmware is missing its DeviceIDList element"),
    (f"<sr:DeviceIDList>{BOTH}</sr:DeviceIDList>", "<sr:DeviceIDList/>",
     "DeviceIDList names no device"),
    (f"<sr:DeviceIDList>{BOTH}</sr:DeviceIDList>",
     "<sr:DeviceIDList><sr:DeviceID/></sr:DeviceIDList>",
     "DeviceIDList entry '' is not an EUI-64 such as 00-DB-12-34-56-78-90-A0"),
    (BOTH, "zz", "DeviceIDList entry 'zz' is not an EUI-64 such as 00-DB-12-34-56-78-90-A0"),
    (BOTH, f"{ESME} {ESME}", "DeviceIDList names a device more than once"),
    ("<sr:FirmwareVersion>1.1.0</sr:FirmwareVersion>",
     "<sr:FirmwareVersion>1.1.0</sr:FirmwareVersion>" * 2,
     "UpdateFirmware has 2 FirmwareVersion elements; expected one"),
    (BOTH, _unknown_devices(65), "DeviceIDList names 65 devices; at most 64 are accepted in one "
                                 "request: split it into several"),
])
def test_11_1_malformed_body_is_invalid_with_its_reason_and_nothing_sent(
        old: str, new: str, reason: str) -> None:
    text = _update_firmware(BOTH)
    assert old in text
    rig = Rig()
    response = rig.submit(text.replace(old, new))
    assert (response_code(response), error_reason(response)) == ("E-INVALID", reason)
    assert rig.sent_commands() == []


@pytest.mark.parametrize(("image", "reason"), [
    ("", "FirmwareImage is empty"),
    (None, "UpdateFirmware is missing its FirmwareImage element"),
])
def test_11_1_without_an_image_is_invalid_with_its_reason(image: str | None,
                                                          reason: str) -> None:
    element = f"<sr:FirmwareImage>{_image_text()}</sr:FirmwareImage>"
    new = "" if image is None else f"<sr:FirmwareImage>{image}</sr:FirmwareImage>"
    response = Rig().submit(_update_firmware(BOTH).replace(element, new))
    assert (response_code(response), error_reason(response)) == ("E-INVALID", reason)


def test_11_1_an_image_in_base64_lines_is_read_whole() -> None:
    image = _image_text()
    lines = "\n".join(image[n:n + 76] for n in range(0, len(image), 76))
    rig = Rig()
    response = rig.submit(_update_firmware(ESME).replace(image, lines))
    assert response_code(response) == "I0", error_reason(response)
    assert rig.world.device_by_eui64(ESME_EUI64).firmware.pending_version == "1.1.0"


def test_11_1_names_at_most_64_devices() -> None:
    response = Rig().submit(_update_firmware(_unknown_devices(64)))
    assert response_code(response) == "E19"  # each refused alone, none refused as too many
    assert [device for device in result_tree(response) if device[0] == "Device"] == [
        _refused_device(f"00-DB-12-34-56-78-91-{n:02X}", "E19",
                        f"no device 00-DB-12-34-56-78-91-{n:02X} is behind this link (known: "
                        f"00-DB-12-34-56-78-90-A0, {ESME}, {GSME})") for n in range(64)]


def test_11_1_a_refused_block_is_followed_by_a_verify_that_discards_the_transfer() -> None:
    """The first FIRMWARE_BLOCK reaches the ESME one byte late (a fault on the link): the ESME
    refuses it as out of order, and the S1SP sends a FIRMWARE_VERIFY that ends the transfer."""
    shifted: list[Request] = []

    def shift_first_block(server_address: int, apdu: bytes) -> bytes:
        request = decode_apdu(apdu)
        if (server_address == ESME_ADDRESS and isinstance(request, Request)
                and request.command is Command.FIRMWARE_BLOCK and not shifted):
            shifted.append(request)
            return encode_request(replace(request, body=replace(request.body,
                                                                block_offset_bytes=1)))
        return apdu

    rig = Rig()
    rig.link.rewrite = shift_first_block
    response = rig.submit(_update_firmware(ESME))
    assert response_code(response) == "E-S1SR"
    assert result_tree(response)[1] == ("Device", [
        ("DeviceID", ESME), ("Outcome", "Refused"), ("ResponseCode", "E-S1SR"),
        ("DeviceStatus", "FIRMWARE_BLOCK_OUT_OF_ORDER"),
        ("Reason", "device refused FIRMWARE_BLOCK: FIRMWARE_BLOCK_OUT_OF_ORDER")])
    assert [request.command for address, request in rig.requests()
            if address == ESME_ADDRESS] == [Command.FIRMWARE_BEGIN, Command.FIRMWARE_BLOCK,
                                            Command.FIRMWARE_VERIFY]
    assert rig.world.device_by_eui64(ESME_EUI64).firmware.transfer_in_progress is False


def test_11_1_an_empty_request_firmware_version_is_no_version_to_note() -> None:
    response = Rig().submit(_update_firmware(ESME).replace(
        "<sr:FirmwareVersion>1.1.0</sr:FirmwareVersion>", "<sr:FirmwareVersion/>"))
    assert response_code(response) == "I0"
    assert [name for name, _ in result_tree(response)] == ["FirmwareVersion", "Device"]


# --- 11.2, 11.3 ------------------------------------------------------------------------------

def _rig_with_a_pending_image() -> Rig:
    rig = Rig()
    assert response_code(rig.submit(_update_firmware(ESME))) == "I0"
    return rig


def test_11_2_in_full_with_an_activation_pending_on_the_device() -> None:
    rig = _rig_with_a_pending_image()
    rig.channel.request(ESME_ADDRESS, Request(Command.FIRMWARE_ACTIVATE, 0,
                                              body=FirmwareActivateRequest(1_893_488_400)))
    response = rig.submit(fixture_xml("11.2_read_firmware_version"))
    assert result_tree(response) == [
        ("FirmwareVersion", "1.0.0"), ("PendingFirmwareVersion", "1.1.0"),
        ("TransferInProgress", "false"), ("PendingActivationDateTime", "2030-01-01T09:00:00Z")]


def test_11_3_now_sends_an_activation_for_now_and_answers_the_new_status_in_full() -> None:
    rig = _rig_with_a_pending_image()
    response = rig.submit(fixture_xml("11.3_activate_firmware"))
    assert result_tree(response) == [
        ("FirmwareVersion", "1.1.0"), ("PendingFirmwareVersion", ""),
        ("TransferInProgress", "false")]
    assert [request.body for request in rig.sent(Command.FIRMWARE_ACTIVATE)] == [
        FirmwareActivateRequest(activation_time_seconds=0)]


def test_11_3_with_a_hash_not_the_pending_images_is_refused_with_the_whole_reason() -> None:
    response = _rig_with_a_pending_image().submit(
        fixture_xml("11.3_activate_firmware_wrong_hash"))
    assert (response_code(response), error_reason(response)) == ("E-S1SR", (
        "FirmwareHash AA7586112233445566778899AABBCCDDEEFF00112233445566778899AA455667 does "
        f"not match the SHA-256 of the image pending on device {ESME} (5F401A3089384D21A9EE0D2"
        "DB2872D98DF26CF6F47129CF1C24829811B1F8F74, version 1.1.0); nothing was activated or "
        "scheduled"))


def test_11_3_future_dated_without_a_pending_image_is_refused_with_the_whole_reason() -> None:
    response = Rig().submit(fixture_xml("11.3_activate_firmware_future_dated"))
    assert (response_code(response), error_reason(response)) == ("E-S1SR", (
        f"device {ESME} has no verified firmware image pending (send 11.1 UpdateFirmware "
        "first), so FIRMWARE_ACTIVATE cannot be scheduled for 2030-01-15T09:00:00.00Z: "
        "FIRMWARE_NO_VERIFIED_IMAGE; nothing was scheduled"))


@pytest.mark.parametrize(("hash_element", "reason"), [
    ("<sr:FirmwareHash>zz</sr:FirmwareHash>", "FirmwareHash is not hexadecimal"),
    ("", "ActivateFirmware is missing its FirmwareHash element"),
])
def test_11_3_malformed_firmware_hash_is_invalid_with_its_reason(hash_element: str,
                                                                 reason: str) -> None:
    text = re.sub(r"<sr:FirmwareHash>[^<]*</sr:FirmwareHash>", hash_element,
                  fixture_xml("11.3_activate_firmware").decode())
    response = Rig().submit(text)
    assert (response_code(response), error_reason(response)) == ("E-INVALID", reason)
