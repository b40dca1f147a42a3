"""Firmware images (SEFW) and the per-device firmware slot: transfer, verify, activate."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.errors import StateError
from emulator.firmware import (
    FIRMWARE_TRANSFER_IDLE_TIMEOUT_SECONDS,
    IMAGE_HEADER_SIZE_BYTES,
    MAX_FIRMWARE_IMAGE_BYTES,
    FirmwareBadHashError,
    FirmwareBadHeaderError,
    FirmwareBadLengthError,
    FirmwareBuildError,
    FirmwareImageRefusedError,
    FirmwareSlot,
    FirmwareWrongModelError,
    build_image,
    parse_image_header,
    verify_image,
)
from protocol.apdu import (
    MAX_FIRMWARE_BLOCK_BYTES,
    Command,
    Request,
    Response,
    Status,
    decode_apdu,
    encode_response,
)

MANUFACTURER = "Secure Meters"
ESME_MODEL = "LIBERTY100"
ESME_EUI64 = bytes.fromhex("00124B0000000001")
GSME_EUI64 = bytes.fromhex("00124B0000000002")
T0_SECONDS = 1_767_225_600  # 2026-01-01T00:00:00Z
PAYLOAD = bytes(range(256)) * 12  # 3072 bytes: image of 3177 bytes, four blocks


class HanLock:
    """The HAN's one-transfer-at-a-time lock, as the HAN implements it."""

    def __init__(self) -> None:
        self._holder: bytes | None = None

    @property
    def holder_eui64(self) -> bytes | None:
        return self._holder

    def acquire(self, eui64: bytes) -> bool:
        if self._holder not in (None, eui64):
            return False
        self._holder = eui64
        return True

    def release(self, eui64: bytes) -> None:
        if self._holder == eui64:
            self._holder = None


class Device:
    """A slot on a HAN; every answer is checked to encode as a response APDU and decode back."""

    def __init__(self, slot: FirmwareSlot, lock: HanLock, eui64: bytes = ESME_EUI64) -> None:
        self.slot = slot
        self.lock = lock
        self.eui64 = eui64
        self.invoke_id = 0

    def ask(self, command: Command, fields: dict[str, Any] | None = None,
            now_seconds: int = T0_SECONDS) -> Response:
        self.invoke_id += 1
        response = self.slot.handle_request(Request(command, self.invoke_id, fields or {}),
                                            now_seconds, self.lock, self.eui64)
        decoded = decode_apdu(encode_response(response))
        assert isinstance(decoded, Response)
        assert (decoded.command, decoded.invoke_id, decoded.status) == (
            command, self.invoke_id, response.status)
        assert decoded.fields == dict(response.fields)
        return response

    def begin(self, image_size_bytes: int, now_seconds: int = T0_SECONDS) -> Response:
        return self.ask(Command.FIRMWARE_BEGIN, {"image_size_bytes": image_size_bytes},
                        now_seconds)

    def block(self, offset_bytes: int, data: bytes, now_seconds: int = T0_SECONDS) -> Response:
        return self.ask(Command.FIRMWARE_BLOCK,
                        {"block_offset_bytes": offset_bytes, "block_data": data}, now_seconds)

    def send(self, image: bytes) -> None:
        assert self.begin(len(image)).ok
        for offset in range(0, len(image), MAX_FIRMWARE_BLOCK_BYTES):
            response = self.block(offset, image[offset:offset + MAX_FIRMWARE_BLOCK_BYTES])
            assert response.ok
            assert response.body.bytes_received == min(
                len(image), offset + MAX_FIRMWARE_BLOCK_BYTES)

    def verify(self) -> Response:
        return self.ask(Command.FIRMWARE_VERIFY)

    def advance(self, now_seconds: int) -> None:
        self.slot.advance_to(now_seconds, self.lock, self.eui64)

    def activate(self, activation_time_seconds: int, now_seconds: int = T0_SECONDS) -> Response:
        return self.ask(Command.FIRMWARE_ACTIVATE,
                        {"activation_time_seconds": activation_time_seconds}, now_seconds)

    def read(self, now_seconds: int = T0_SECONDS) -> dict[str, Any]:
        response = self.ask(Command.READ_FIRMWARE_VERSION, now_seconds=now_seconds)
        assert response.ok
        return dict(response.fields)


def esme_image(version: str = "1.1.0", model: str = ESME_MODEL) -> bytes:
    return build_image(MANUFACTURER, model, version, PAYLOAD)


@pytest.fixture
def lock() -> HanLock:
    return HanLock()


@pytest.fixture
def esme(lock: HanLock) -> Device:
    return Device(FirmwareSlot(MANUFACTURER, ESME_MODEL, "1.0.0"), lock)


# ---- image format ------------------------------------------------------------------------


def test_image_header_layout_is_magic_format_padded_strings_length_and_sha256() -> None:
    image = build_image(MANUFACTURER, ESME_MODEL, "1.1.0", b"abc")
    assert IMAGE_HEADER_SIZE_BYTES == 105
    assert image[:5] == bytes.fromhex("5345465701")
    assert image[5:37] == b"Secure Meters".ljust(32, b"\0")
    assert image[37:53] == b"LIBERTY100".ljust(16, b"\0")
    assert image[53:69] == b"1.1.0".ljust(16, b"\0")
    assert image[69:73] == bytes.fromhex("00000003")
    assert image[73:105] == hashlib.sha256(b"abc").digest()
    assert image[105:] == b"abc"


def test_parse_image_header_reads_back_what_build_image_wrote() -> None:
    header = parse_image_header(esme_image())
    assert (header.header_format_version, header.manufacturer, header.model, header.version,
            header.payload_length_bytes, header.payload_sha256) == (
        1, MANUFACTURER, ESME_MODEL, "1.1.0", len(PAYLOAD), hashlib.sha256(PAYLOAD).digest())


def test_verify_image_accepts_a_good_image_for_its_own_model() -> None:
    assert verify_image(esme_image(), MANUFACTURER, ESME_MODEL).version == "1.1.0"


@pytest.mark.parametrize(("data", "error"), [
    (b"", FirmwareBadHeaderError),
    (b"MZ\x90\x00" + bytes(200), FirmwareBadHeaderError),
    (b"SEFW\x02" + esme_image()[5:], FirmwareBadHeaderError),
    (esme_image()[:5] + "Sécure".encode().ljust(32, b"\0") + esme_image()[37:],
     FirmwareBadHeaderError),
    (esme_image()[:37] + bytes(16) + esme_image()[53:], FirmwareBadHeaderError),
    (b"SEF", FirmwareBadLengthError),
    (esme_image()[:60], FirmwareBadLengthError),
])
def test_unreadable_headers_are_refused_as_bad_header_or_truncated(
        data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_image_header(data)


def test_image_for_another_model_or_manufacturer_is_refused_as_wrong_model() -> None:
    with pytest.raises(FirmwareWrongModelError, match="LIBERTY200"):
        verify_image(esme_image(model="LIBERTY200"), MANUFACTURER, ESME_MODEL)
    other_maker = build_image("Landis+Gyr", ESME_MODEL, "1.1.0", PAYLOAD)
    with pytest.raises(FirmwareWrongModelError, match="Landis"):
        verify_image(other_maker, MANUFACTURER, ESME_MODEL)


def test_truncated_or_overlong_image_is_refused_as_bad_length() -> None:
    with pytest.raises(FirmwareBadLengthError, match="truncated"):
        verify_image(esme_image()[:-1], MANUFACTURER, ESME_MODEL)
    with pytest.raises(FirmwareBadLengthError, match="overlong"):
        verify_image(esme_image() + b"\0", MANUFACTURER, ESME_MODEL)


def test_image_with_a_flipped_payload_bit_is_refused_as_bad_hash() -> None:
    image = bytearray(esme_image())
    image[-1] ^= 0x80
    with pytest.raises(FirmwareBadHashError, match="corrupt"):
        verify_image(bytes(image), MANUFACTURER, ESME_MODEL)


def test_refusals_carry_the_status_the_device_answers() -> None:
    assert FirmwareBadHeaderError.status is Status.FIRMWARE_BAD_HEADER
    assert FirmwareWrongModelError.status is Status.FIRMWARE_WRONG_MODEL
    assert FirmwareBadLengthError.status is Status.FIRMWARE_BAD_LENGTH
    assert FirmwareBadHashError.status is Status.FIRMWARE_BAD_HASH


@settings(max_examples=300, deadline=None)
@given(prefix_length=st.integers(0, 200), tail=st.binary(max_size=300))
def test_any_bytes_are_either_a_good_image_or_refused_with_a_typed_error(
        prefix_length: int, tail: bytes) -> None:
    data = esme_image()[:prefix_length] + tail
    try:
        header = verify_image(data, MANUFACTURER, ESME_MODEL)
    except FirmwareImageRefusedError as error:
        assert error.status.name.startswith("FIRMWARE_")
    else:
        assert header.payload_length_bytes == len(data) - IMAGE_HEADER_SIZE_BYTES


@pytest.mark.parametrize(("manufacturer", "model", "version"), [
    ("", ESME_MODEL, "1.1.0"),
    (MANUFACTURER, "A-MODEL-NAME-OVER-16", "1.1.0"),
    (MANUFACTURER, ESME_MODEL, "1.1.0\n"),
    (MANUFACTURER, "LIBERTY\u00e9", "1.1.0"),
])
def test_build_image_refuses_strings_that_do_not_fit_the_header(
        manufacturer: str, model: str, version: str) -> None:
    with pytest.raises(FirmwareBuildError):
        build_image(manufacturer, model, version, PAYLOAD)


# ---- transfer, verify, activate ----------------------------------------------------------


def test_begin_request_from_wire_bytes_starts_a_transfer(esme: Device, lock: HanLock) -> None:
    request = decode_apdu(bytes.fromhex("01" "0007" "50" "00000C69"))
    assert isinstance(request, Request)
    response = esme.slot.handle_request(request, T0_SECONDS, lock, ESME_EUI64)
    assert encode_response(response) == bytes.fromhex(
        "81" "0007" "50" "00" "05" "312E302E30" "00" "00000000" "01" + "00" * 32)
    assert esme.slot.bytes_received == 0 and lock.holder_eui64 == ESME_EUI64


def test_good_image_transferred_in_blocks_verified_and_activated_now(
        esme: Device, lock: HanLock) -> None:
    esme.send(esme_image())
    assert esme.read()["transfer_in_progress"] is True
    verified = esme.verify()
    assert verified.ok
    assert verified.fields == {"running_version": "1.0.0", "pending_version": "1.1.0",
                               "pending_activation_time_seconds": 0,
                               "transfer_in_progress": False,
                               "pending_image_sha256": hashlib.sha256(PAYLOAD).digest()}
    assert lock.holder_eui64 is None
    activated = esme.activate(0)
    assert activated.ok and activated.body.running_version == "1.1.0"
    assert esme.read() == {"running_version": "1.1.0", "pending_version": "",
                           "pending_activation_time_seconds": 0, "transfer_in_progress": False,
                           "pending_image_sha256": bytes(32)}


def test_activation_at_a_future_device_time_leaves_the_version_unchanged_until_then(
        esme: Device) -> None:
    esme.send(esme_image())
    assert esme.verify().ok
    at_seconds = T0_SECONDS + 3600
    scheduled = esme.activate(at_seconds)
    assert scheduled.ok
    assert scheduled.body.running_version == "1.0.0"
    assert scheduled.body.pending_activation_time_seconds == at_seconds
    assert esme.slot.next_event_time_seconds() == at_seconds
    esme.advance(at_seconds - 1)
    assert esme.read(at_seconds - 1)["running_version"] == "1.0.0"
    esme.advance(at_seconds)
    assert esme.slot.running_version == "1.1.0"
    assert esme.slot.next_event_time_seconds() is None


def test_a_due_activation_runs_before_the_next_request_is_answered(esme: Device) -> None:
    esme.send(esme_image())
    assert esme.verify().ok
    assert esme.activate(T0_SECONDS + 60).ok
    assert esme.read(T0_SECONDS + 61)["running_version"] == "1.1.0"


def test_activation_time_in_the_past_activates_now(esme: Device) -> None:
    esme.send(esme_image())
    assert esme.verify().ok
    response = esme.activate(T0_SECONDS - 86_400)
    assert response.ok and response.body.running_version == "1.1.0"
    assert esme.slot.next_event_time_seconds() is None


def test_activate_without_a_verified_image_is_refused(esme: Device) -> None:
    assert esme.activate(0).status is Status.FIRMWARE_NO_VERIFIED_IMAGE
    esme.send(esme_image())
    assert esme.activate(0).status is Status.FIRMWARE_NO_VERIFIED_IMAGE
    assert esme.slot.running_version == "1.0.0"


def test_a_newly_verified_image_replaces_the_pending_one_and_cancels_its_schedule(
        esme: Device) -> None:
    esme.send(esme_image("1.1.0"))
    assert esme.verify().ok
    assert esme.activate(T0_SECONDS + 600).ok
    esme.send(esme_image("1.2.0"))
    verified = esme.verify()
    assert verified.body.pending_version == "1.2.0"
    assert verified.body.pending_activation_time_seconds == 0
    esme.advance(T0_SECONDS + 600)
    assert esme.slot.running_version == "1.0.0"


@pytest.mark.parametrize(("image", "expected"), [
    (esme_image(model="LIBERTY200"), Status.FIRMWARE_WRONG_MODEL),
    (build_image(MANUFACTURER, "SECURE-GSME", "2.1.0", PAYLOAD), Status.FIRMWARE_WRONG_MODEL),
    (esme_image()[:-1] + bytes((esme_image()[-1] ^ 1,)), Status.FIRMWARE_BAD_HASH),
    (esme_image()[:2048], Status.FIRMWARE_BAD_LENGTH),
    (b"XXFW" + esme_image()[4:], Status.FIRMWARE_BAD_HEADER),
], ids=["wrong_model", "gsme_image_on_esme", "bad_hash", "truncated", "bad_magic"])
def test_bad_image_is_refused_with_its_reason_and_running_firmware_untouched(
        esme: Device, lock: HanLock, image: bytes, expected: Status) -> None:
    esme.send(image)
    assert esme.verify().status is expected
    assert esme.read() == {"running_version": "1.0.0", "pending_version": "",
                           "pending_activation_time_seconds": 0, "transfer_in_progress": False,
                           "pending_image_sha256": bytes(32)}
    assert lock.holder_eui64 is None
    assert esme.verify().status is Status.FIRMWARE_NO_TRANSFER


def test_a_refused_image_leaves_an_earlier_pending_image_and_its_schedule(
        esme: Device) -> None:
    esme.send(esme_image("1.1.0"))
    assert esme.verify().ok
    assert esme.activate(T0_SECONDS + 600).ok
    esme.send(esme_image("1.2.0", model="LIBERTY200"))
    assert esme.verify().status is Status.FIRMWARE_WRONG_MODEL
    assert esme.read()["pending_version"] == "1.1.0"
    esme.advance(T0_SECONDS + 600)
    assert esme.slot.running_version == "1.1.0"


def test_verify_before_every_byte_arrived_is_bad_length_and_discards_the_transfer(
        esme: Device, lock: HanLock) -> None:
    image = esme_image()
    assert esme.begin(len(image)).ok
    assert esme.block(0, image[:1024]).ok
    assert esme.verify().status is Status.FIRMWARE_BAD_LENGTH
    assert not esme.slot.transfer_in_progress and lock.holder_eui64 is None
    assert esme.block(1024, image[1024:2048]).status is Status.FIRMWARE_NO_TRANSFER


def test_verify_is_bad_length_when_fewer_bytes_than_announced_arrived_even_a_whole_image(
        esme: Device) -> None:
    image = esme_image()
    assert esme.begin(len(image) + 10).ok
    for offset in range(0, len(image), MAX_FIRMWARE_BLOCK_BYTES):
        assert esme.block(offset, image[offset:offset + MAX_FIRMWARE_BLOCK_BYTES]).ok
    assert esme.verify().status is Status.FIRMWARE_BAD_LENGTH
    assert esme.slot.pending_version == ""


# ---- one transfer per HAN ----------------------------------------------------------------


def test_second_transfer_on_the_same_han_is_refused_while_the_first_is_in_progress(
        esme: Device, lock: HanLock) -> None:
    gsme = Device(FirmwareSlot(MANUFACTURER, "SECURE-GSME", "2.0.0"), lock, GSME_EUI64)
    image = esme_image()
    assert esme.begin(len(image)).ok
    assert esme.block(0, image[:1024]).ok
    assert gsme.begin(2605).status is Status.FIRMWARE_UPDATE_IN_PROGRESS
    assert gsme.read()["transfer_in_progress"] is False
    assert lock.holder_eui64 == ESME_EUI64
    assert esme.slot.bytes_received == 1024


def test_second_transfer_is_allowed_once_the_first_is_verified(
        esme: Device, lock: HanLock) -> None:
    gsme = Device(FirmwareSlot(MANUFACTURER, "SECURE-GSME", "2.0.0"), lock, GSME_EUI64)
    esme.send(esme_image())
    assert gsme.begin(2605).status is Status.FIRMWARE_UPDATE_IN_PROGRESS
    assert esme.verify().ok
    assert gsme.begin(2605).ok
    assert lock.holder_eui64 == GSME_EUI64


def test_second_transfer_is_allowed_once_the_first_failed_verification(
        esme: Device, lock: HanLock) -> None:
    gsme = Device(FirmwareSlot(MANUFACTURER, "SECURE-GSME", "2.0.0"), lock, GSME_EUI64)
    esme.send(esme_image(model="LIBERTY200"))
    assert esme.verify().status is Status.FIRMWARE_WRONG_MODEL
    assert gsme.begin(2605).ok


def test_a_new_begin_by_the_same_device_restarts_its_transfer(
        esme: Device, lock: HanLock) -> None:
    image = esme_image()
    assert esme.begin(len(image)).ok
    assert esme.block(0, image[:1024]).ok
    assert esme.begin(len(image)).ok
    assert esme.slot.bytes_received == 0
    assert esme.block(1024, image[1024:2048]).status is Status.FIRMWARE_BLOCK_OUT_OF_ORDER
    esme.send(image)
    assert esme.verify().ok


@pytest.mark.parametrize("image_size_bytes", [0, MAX_FIRMWARE_IMAGE_BYTES + 1])
def test_begin_with_a_size_of_zero_or_over_the_maximum_is_out_of_range_and_takes_no_lock(
        esme: Device, lock: HanLock, image_size_bytes: int) -> None:
    assert esme.begin(image_size_bytes).status is Status.VALUE_OUT_OF_RANGE
    assert lock.holder_eui64 is None and not esme.slot.transfer_in_progress


# ---- idle transfers are abandoned ----------------------------------------------------------

IDLE_SECONDS = FIRMWARE_TRANSFER_IDLE_TIMEOUT_SECONDS


def test_idle_timeout_is_ten_minutes() -> None:
    assert FIRMWARE_TRANSFER_IDLE_TIMEOUT_SECONDS == 600


def test_an_interrupted_transfer_no_longer_blocks_the_han_thirty_days_later(
        esme: Device, lock: HanLock) -> None:
    gsme = Device(FirmwareSlot(MANUFACTURER, "SECURE-GSME", "2.0.0"), lock, GSME_EUI64)
    image = esme_image()
    assert esme.begin(len(image)).ok
    assert esme.block(0, image[:1024]).ok
    assert esme.block(1024, image[1024:2048]).ok
    later = T0_SECONDS + 30 * 86_400
    esme.advance(later)
    assert gsme.begin(2605, now_seconds=later).ok
    assert lock.holder_eui64 == GSME_EUI64
    assert esme.read(later) == {"running_version": "1.0.0", "pending_version": "",
                                "pending_activation_time_seconds": 0,
                                "transfer_in_progress": False,
                                "pending_image_sha256": bytes(32)}
    assert esme.block(2048, image[2048:3072], later).status is Status.FIRMWARE_NO_TRANSFER


def test_an_idle_transfer_is_abandoned_exactly_the_timeout_after_its_last_accepted_block(
        esme: Device, lock: HanLock) -> None:
    image = esme_image()
    assert esme.begin(len(image)).ok
    assert esme.slot.next_event_time_seconds() == T0_SECONDS + IDLE_SECONDS
    last_block_at = T0_SECONDS + IDLE_SECONDS - 1
    assert esme.block(0, image[:1024], last_block_at).ok  # activity: the deadline moves
    deadline = last_block_at + IDLE_SECONDS
    assert esme.slot.next_event_time_seconds() == deadline
    esme.advance(deadline - 1)
    assert esme.slot.transfer_in_progress and lock.holder_eui64 == ESME_EUI64
    esme.advance(deadline)
    assert not esme.slot.transfer_in_progress and lock.holder_eui64 is None
    assert esme.slot.next_event_time_seconds() is None


def test_a_block_arriving_at_the_deadline_finds_no_transfer(esme: Device, lock: HanLock) -> None:
    image = esme_image()
    assert esme.begin(len(image)).ok
    late = esme.block(0, image[:1024], T0_SECONDS + IDLE_SECONDS)
    assert late.status is Status.FIRMWARE_NO_TRANSFER
    assert lock.holder_eui64 is None


def test_refused_blocks_and_reads_do_not_keep_a_transfer_alive(
        esme: Device, lock: HanLock) -> None:
    image = esme_image()
    assert esme.begin(len(image)).ok
    assert esme.block(0, image[:1024]).ok
    nearly = T0_SECONDS + IDLE_SECONDS - 1
    out_of_order = esme.block(4096, image[:1024], nearly)
    assert out_of_order.status is Status.FIRMWARE_BLOCK_OUT_OF_ORDER
    assert esme.read(nearly)["transfer_in_progress"] is True
    assert esme.slot.next_event_time_seconds() == T0_SECONDS + IDLE_SECONDS
    esme.advance(T0_SECONDS + IDLE_SECONDS)
    assert not esme.slot.transfer_in_progress and lock.holder_eui64 is None


def test_an_accepted_repeat_of_the_last_block_keeps_the_transfer_alive(esme: Device) -> None:
    image = esme_image()
    assert esme.begin(len(image)).ok
    assert esme.block(0, image[:1024]).ok
    repeat_at = T0_SECONDS + 300
    assert esme.block(0, image[:1024], repeat_at).ok
    assert esme.slot.next_event_time_seconds() == repeat_at + IDLE_SECONDS


def test_abandoning_a_transfer_keeps_the_pending_image_and_its_scheduled_activation(
        esme: Device, lock: HanLock) -> None:
    esme.send(esme_image("1.1.0"))
    assert esme.verify().ok
    activation_at = T0_SECONDS + 3600
    assert esme.activate(activation_at).ok
    assert esme.begin(len(esme_image("1.2.0"))).ok
    assert esme.slot.next_event_time_seconds() == T0_SECONDS + IDLE_SECONDS
    esme.advance(T0_SECONDS + IDLE_SECONDS)
    assert esme.read(T0_SECONDS + IDLE_SECONDS) == {
        "running_version": "1.0.0", "pending_version": "1.1.0",
        "pending_activation_time_seconds": activation_at, "transfer_in_progress": False,
        "pending_image_sha256": hashlib.sha256(PAYLOAD).digest()}
    assert lock.holder_eui64 is None
    assert esme.slot.next_event_time_seconds() == activation_at


def test_abandoning_a_transfer_never_releases_a_lock_another_device_holds(
        esme: Device, lock: HanLock) -> None:
    assert esme.begin(100).ok
    lock.release(ESME_EUI64)
    assert lock.acquire(GSME_EUI64)  # e.g. the HAN was restored with another holder
    esme.advance(T0_SECONDS + IDLE_SECONDS)
    assert not esme.slot.transfer_in_progress
    assert lock.holder_eui64 == GSME_EUI64


# ---- blocks ------------------------------------------------------------------------------


def test_block_that_skips_ahead_or_goes_back_is_out_of_order(esme: Device) -> None:
    image = esme_image()
    assert esme.begin(len(image)).ok
    assert esme.block(1024, image[1024:2048]).status is Status.FIRMWARE_BLOCK_OUT_OF_ORDER
    assert esme.block(0, image[:1024]).ok
    assert esme.block(1024, image[1024:2048]).ok
    assert esme.block(0, image[:1024]).status is Status.FIRMWARE_BLOCK_OUT_OF_ORDER
    assert esme.block(3072, image[3072:]).status is Status.FIRMWARE_BLOCK_OUT_OF_ORDER
    assert esme.slot.bytes_received == 2048


def test_repeat_of_the_previous_block_is_accepted_without_changing_anything(
        esme: Device) -> None:
    image = esme_image()
    assert esme.begin(len(image)).ok
    assert esme.block(0, image[:1024]).ok
    repeat = esme.block(0, image[:1024])
    assert repeat.ok and repeat.fields == {"bytes_received": 1024}
    assert esme.block(1024, image[1024:2048]).ok
    assert esme.block(1024, image[1024:2048]).fields == {"bytes_received": 2048}
    for offset in range(2048, len(image), 1024):
        assert esme.block(offset, image[offset:offset + 1024]).ok
    assert esme.verify().ok


def test_repeat_of_the_previous_offset_with_other_data_is_out_of_order(esme: Device) -> None:
    image = esme_image()
    assert esme.begin(len(image)).ok
    assert esme.block(0, image[:1024]).ok
    assert esme.block(0, bytes(1024)).status is Status.FIRMWARE_BLOCK_OUT_OF_ORDER


def test_block_past_the_announced_size_is_out_of_range(esme: Device) -> None:
    assert esme.begin(1500).ok
    assert esme.block(0, bytes(1024)).ok
    assert esme.block(1024, bytes(477)).status is Status.VALUE_OUT_OF_RANGE
    assert esme.block(1024, bytes(476)).fields == {"bytes_received": 1500}


def test_block_or_verify_without_a_transfer_is_refused(esme: Device) -> None:
    assert esme.block(0, b"SEFW").status is Status.FIRMWARE_NO_TRANSFER
    assert esme.verify().status is Status.FIRMWARE_NO_TRANSFER


_OPERATIONS = st.lists(st.one_of(
    st.tuples(st.just("begin"), st.sampled_from([0, 1500, len(esme_image())])),
    st.tuples(st.just("block"), st.integers(0, 4)),
    st.tuples(st.just("corrupt_block"), st.integers(0, 4)),
    st.just(("verify",)),
    st.tuples(st.just("activate"), st.sampled_from([0, T0_SECONDS - 1, T0_SECONDS + 60])),
), max_size=25)


@settings(max_examples=150, deadline=None)
@given(operations=_OPERATIONS)
def test_any_request_sequence_answers_encodable_responses_and_changes_version_only_on_activate(
        operations: list[tuple[Any, ...]]) -> None:
    lock = HanLock()
    esme = Device(FirmwareSlot(MANUFACTURER, ESME_MODEL, "1.0.0"), lock)
    image = esme_image()
    for operation in operations:
        before = esme.slot.running_version
        name = operation[0]
        if name == "begin":
            esme.begin(operation[1])
        elif name in ("block", "corrupt_block"):
            offset = operation[1] * MAX_FIRMWARE_BLOCK_BYTES
            data = image[offset:offset + MAX_FIRMWARE_BLOCK_BYTES] or b"x"
            esme.block(offset, bytes(len(data)) if name == "corrupt_block" else data)
        elif name == "verify":
            esme.verify()
        else:
            esme.activate(operation[1])
        if name != "activate":
            assert esme.slot.running_version == before
        assert (lock.holder_eui64 == ESME_EUI64) is esme.slot.transfer_in_progress
        assert esme.slot.bytes_received <= max(len(image), 1500)


# ---- requests the slot does not answer ---------------------------------------------------


def test_non_firmware_command_is_not_supported(esme: Device) -> None:
    assert esme.ask(Command.READ_CLOCK).status is Status.NOT_SUPPORTED_BY_DEVICE




# ---- persistence -------------------------------------------------------------------------


def _round_trip(slot: FirmwareSlot) -> FirmwareSlot:
    state = json.loads(json.dumps(slot.to_state()))
    return FirmwareSlot.from_state(MANUFACTURER, ESME_MODEL, state)


def test_state_round_trip_mid_transfer_lets_the_transfer_continue(
        esme: Device, lock: HanLock) -> None:
    image = esme_image()
    assert esme.begin(len(image)).ok
    assert esme.block(0, image[:1024]).ok
    assert esme.block(1024, image[1024:2048]).ok
    restored = Device(_round_trip(esme.slot), lock)
    assert restored.slot.to_state() == esme.slot.to_state()
    assert restored.block(1024, image[1024:2048]).fields == {"bytes_received": 2048}
    assert restored.block(2048, image[2048:3072]).ok
    assert restored.block(3072, image[3072:]).ok
    assert restored.verify().body.pending_version == "1.1.0"


def test_restored_transfer_takes_the_han_lock_again_when_it_is_free(esme: Device) -> None:
    image = esme_image()
    assert esme.begin(len(image)).ok
    assert esme.block(0, image[:1024]).ok
    fresh_lock = HanLock()
    restored = Device(_round_trip(esme.slot), fresh_lock)
    assert restored.block(1024, image[1024:2048]).ok
    assert fresh_lock.holder_eui64 == ESME_EUI64


def test_state_round_trip_keeps_the_idle_deadline_of_a_transfer(
        esme: Device, lock: HanLock) -> None:
    image = esme_image()
    assert esme.begin(len(image)).ok
    last_block_at = T0_SECONDS + 50
    assert esme.block(0, image[:1024], last_block_at).ok
    state = json.loads(json.dumps(esme.slot.to_state()))
    assert state["transfer"]["last_activity_time_seconds"] == last_block_at
    restored = Device(FirmwareSlot.from_state(MANUFACTURER, ESME_MODEL, state), lock)
    assert restored.slot.next_event_time_seconds() == last_block_at + IDLE_SECONDS
    restored.advance(last_block_at + IDLE_SECONDS - 1)
    assert restored.slot.transfer_in_progress and lock.holder_eui64 == ESME_EUI64
    restored.advance(last_block_at + IDLE_SECONDS)
    assert not restored.slot.transfer_in_progress and lock.holder_eui64 is None


def test_a_transfer_saved_by_state_format_1_is_abandoned_on_the_first_step_of_time(
        esme: Device, lock: HanLock) -> None:
    image = esme_image()
    assert esme.begin(len(image)).ok
    assert esme.block(0, image[:1024]).ok
    state = esme.slot.to_state()
    state["state_format"] = 1
    del state["transfer"]["last_activity_time_seconds"]
    restored = Device(FirmwareSlot.from_state(MANUFACTURER, ESME_MODEL, state), lock)
    assert restored.slot.transfer_in_progress
    restored.advance(T0_SECONDS)
    assert not restored.slot.transfer_in_progress and lock.holder_eui64 is None
    assert restored.slot.running_version == "1.0.0"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=MAX_FIRMWARE_BLOCK_BYTES), min_size=1,
                max_size=12))
def test_saved_transfer_holds_the_base64_of_every_byte_received_however_blocks_split(
        block_sizes: list[int]) -> None:
    data = bytes(i * 7 % 251 for i in range(sum(block_sizes)))
    device = Device(FirmwareSlot(MANUFACTURER, ESME_MODEL, "1.0.0"), HanLock())
    assert device.begin(len(data)).ok
    offset = 0
    for size in block_sizes:
        assert device.block(offset, data[offset:offset + size]).ok
        offset += size
        saved = device.slot.to_state()["transfer"]["received_base64"]
        assert saved == base64.b64encode(data[:offset]).decode("ascii")


def test_state_round_trip_keeps_a_pending_activation(esme: Device) -> None:
    esme.send(esme_image())
    assert esme.verify().ok
    at_seconds = T0_SECONDS + 7200
    assert esme.activate(at_seconds).ok
    restored = _round_trip(esme.slot)
    assert restored.next_event_time_seconds() == at_seconds
    assert restored.running_version == "1.0.0" and restored.pending_version == "1.1.0"
    restored.advance_to(at_seconds, HanLock(), ESME_EUI64)
    assert restored.running_version == "1.1.0"


@pytest.mark.parametrize(("key", "value", "message"), [
    ("running_version", None, "running_version"),
    ("state_format", 99, "state_format"),
    ("pending_activation_time_seconds", -1, "pending_activation_time_seconds"),
    ("transfer", {"image_size_bytes": 10, "received_base64": "***",
                  "last_block_offset_bytes": None, "last_activity_time_seconds": 0}, "base64"),
    ("transfer", {"image_size_bytes": 2, "received_base64": "AAAA",
                  "last_block_offset_bytes": 0, "last_activity_time_seconds": 0}, "3 of 2"),
    ("transfer", {"image_size_bytes": 2, "received_base64": "",
                  "last_block_offset_bytes": None, "last_activity_time_seconds": -5},
     "last_activity_time_seconds"),
])
def test_corrupt_state_is_refused_with_the_key_named(
        esme: Device, key: str, value: Any, message: str) -> None:
    state = esme.slot.to_state()
    state[key] = value
    with pytest.raises(StateError, match=message):
        FirmwareSlot.from_state(MANUFACTURER, ESME_MODEL, state)


def test_state_without_a_key_is_refused_with_the_key_named(esme: Device) -> None:
    state = esme.slot.to_state()
    del state["pending_version"]
    with pytest.raises(StateError, match="pending_version"):
        FirmwareSlot.from_state(MANUFACTURER, ESME_MODEL, state)


def test_the_pending_images_sha256_is_kept_across_save_and_restore(esme: Device) -> None:
    esme.send(esme_image())
    assert esme.verify().ok
    state = esme.slot.to_state()
    assert state["pending_image_sha256"] == hashlib.sha256(PAYLOAD).hexdigest()
    restored = FirmwareSlot.from_state(MANUFACTURER, ESME_MODEL, state)
    assert restored.status().pending_image_sha256 == hashlib.sha256(PAYLOAD).digest()


def test_a_state_saved_before_the_hash_was_kept_loads_with_the_hash_unknown(
        esme: Device) -> None:
    esme.send(esme_image())
    assert esme.verify().ok
    state = esme.slot.to_state()
    del state["pending_image_sha256"]
    restored = FirmwareSlot.from_state(MANUFACTURER, ESME_MODEL, state)
    assert restored.pending_version == "1.1.0"
    assert restored.status().pending_image_sha256 == bytes(32)
    assert restored.to_state() == state
