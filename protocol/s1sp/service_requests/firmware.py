"""Firmware Service Requests: 11.1 Update Firmware (to the DCC), 11.2 Read Firmware Version,
11.3 Activate Firmware.

Bodies: 11.1 UpdateFirmware: FirmwareImage (base64), FirmwareVersion, DeviceIDList (EUI-64s
separated by white space, or DeviceID children; at most :data:`MAX_FIRMWARE_DEVICE_IDS`,
*decided*); 11.2 ReadFirmwareVersion (empty); 11.3 ActivateFirmware: ExecutionDateTime?,
FirmwareHash (hex, 32 bytes, required).

- 18.63 (SR 11.1): each named device in turn: FIRMWARE_BEGIN, FIRMWARE_BLOCKs of at most
  MAX_FIRMWARE_BLOCK_BYTES, FIRMWARE_VERIFY; a device answering FIRMWARE_UPDATE_IN_PROGRESS
  (its HAN already busy) is refused alone; the others go ahead. Devices are handled one after
  another, so a transfer this request finishes never blocks the next device. When a step after
  a successful FIRMWARE_BEGIN fails (link error or refusal), a FIRMWARE_VERIFY is sent
  best-effort, its outcome ignored: a short VERIFY discards the transfer and frees the HAN lock.
  The response's FirmwareVersion is the image's own version as the device read it from the
  header (VERIFY's pending_version); a request FirmwareVersion that differs is reported as
  RequestedFirmwareVersion. An image that is not SEFW (FIRMWARE_BAD_HEADER, e.g. a real GBCS
  image) is refused with a reason pointing to firmware_images/README.md. When every device is
  refused, the header code is the devices' shared E19/E20/E21 code (E-S1SR otherwise) and the
  per-device list stays in the body. 11.1 is addressed to the DCC: its RequestID target is not
  resolved, each device of its DeviceIDList is.
- 11.3: FirmwareHash is checked against the SHA-256 the device reports for its pending image
  (FIRMWARE_STATUS pending_image_sha256: the SEFW header's payload_sha256) before anything is
  activated or scheduled; a mismatch is refused (E-S1SR). With no image pending the immediate
  11.3 is left to the device (FIRMWARE_NO_VERIFIED_IMAGE).
- 11.3 future-dated is scheduled like the other future-dated SRs (FIRMWARE_ACTIVATE(0) inside
  SCHEDULE_REQUEST) so that it can be cancelled the same way; before scheduling it,
  READ_FIRMWARE_VERSION is read and a device with no verified image pending is refused as the
  immediate 11.3 is (FIRMWARE_NO_VERIFIED_IMAGE).

This module never loads a document and never reaches a device except through its RuleContext.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from protocol.apdu import (
    MAX_FIRMWARE_BLOCK_BYTES,
    ApduBody,
    Command,
    FirmwareActivateRequest,
    FirmwareBeginRequest,
    FirmwareBlockRequest,
    Status,
)
from protocol.eui64 import format_eui64
from protocol.s1sp.duis_xml import (
    BodyItem,
    EmptyBody,
    Eui64,
    Execution,
    SrBody,
    element_eui64,
    eui64_element_text,
    find,
    find_all,
    text,
)
from protocol.s1sp.errors import (
    CANNOT_COMMUNICATE_CODE,
    NO_RESPONSE_CODE,
    UNKNOWN_DEVICE_CODE,
    DeviceCommunicationError,
    FirmwareUpdateRefusedError,
    InvalidRequestError,
    S1spError,
    S1srRefusalError,
    UnknownDeviceError,
)
from protocol.s1sp.rules import DeviceEntry, ResponseBody, ResultItem, RuleContext
from protocol.s1sp.service_requests.record import (
    ANY_DEVICE,
    CRITICAL_VARIANTS,
    NON_CRITICAL_VARIANTS,
    NON_DEVICE_VARIANTS,
    Addressee,
    ServiceRequest,
)
from protocol.s1sp.units import device_seconds_to_duis_date_time

#: DUIS FirmwareHash: hexBinary of exactly 32 bytes (a SHA-256).
FIRMWARE_HASH_BYTES = 32

__all__ = ["MAX_FIRMWARE_DEVICE_IDS", "RECORDS", "FirmwareActivation", "FirmwareUpdate"]

#: Most devices one 11.1 DeviceIDList may name (*decided*: each is a whole image transfer, one
#: after another, on one link; more is E-INVALID).
MAX_FIRMWARE_DEVICE_IDS = 64
#: Where a user finds what firmware images the emulated devices take.
FIRMWARE_IMAGES_README = "firmware_images/README.md"
#: Per-device codes that, shared by every device of a refused 11.1, become its header code.
_SHARED_FIRMWARE_CODES = frozenset({UNKNOWN_DEVICE_CODE, CANNOT_COMMUNICATE_CODE,
                                    NO_RESPONSE_CODE})


@dataclass(frozen=True)
class FirmwareUpdate(SrBody):
    """11.1: an image and the devices it is for."""

    firmware_image: bytes
    firmware_version: str
    device_eui64s: tuple[bytes, ...]


@dataclass(frozen=True)
class FirmwareActivation(SrBody):
    """11.3: activate the verified image, now or at ExecutionDateTime."""

    firmware_hash: bytes
    execution: Execution | None = None


_FIRMWARE_IMAGE, _FIRMWARE_VERSION = "FirmwareImage", "FirmwareVersion"
_DEVICE_ID_LIST, _DEVICE_ID = "DeviceIDList", "DeviceID"
_FIRMWARE_HASH = "FirmwareHash"


def _parse_firmware_update(body: Element, where: str) -> SrBody:
    image_text = "".join(text(body, _FIRMWARE_IMAGE, where).split())
    try:
        image = base64.b64decode(image_text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequestError(f"{_FIRMWARE_IMAGE} is not valid base64") from None
    if not image:
        raise InvalidRequestError(f"{_FIRMWARE_IMAGE} is empty")
    list_node = find(body, _DEVICE_ID_LIST, required=True, where=where)
    assert list_node is not None
    nested = find_all(list_node, _DEVICE_ID)
    texts = ([node.text or "" for node in nested] if nested
             else (list_node.text or "").split())
    if len(texts) > MAX_FIRMWARE_DEVICE_IDS:
        raise InvalidRequestError(
            f"DeviceIDList names {len(texts)} devices; at most {MAX_FIRMWARE_DEVICE_IDS} are "
            "accepted in one request: split it into several")
    devices = tuple(element_eui64(entry, "DeviceIDList entry") for entry in texts)
    if not devices:
        raise InvalidRequestError("DeviceIDList names no device")
    if len(set(devices)) != len(devices):
        raise InvalidRequestError("DeviceIDList names a device more than once")
    version_node = find(body, _FIRMWARE_VERSION, required=False, where=where)
    version = "" if version_node is None else (version_node.text or "").strip()
    return FirmwareUpdate(image, version, devices)


def _write_firmware_update(device_ids: Sequence[Eui64], image: bytes, *,
                           firmware_version: str = "") -> list[BodyItem]:
    """Addressed to the DCC (the builder's ``dcc_eui``): ``image`` (bytes, sent in base64)
    for each of ``device_ids``."""
    if isinstance(device_ids, (str, bytes)):
        raise TypeError("device_ids is a sequence of EUI-64s, not one")
    items: list[BodyItem] = [
        (_FIRMWARE_IMAGE, base64.b64encode(bytes(image)).decode("ascii")),
        (_DEVICE_ID_LIST, " ".join(eui64_element_text(eui, "device_ids entry")
                                   for eui in device_ids))]
    if firmware_version:
        items.insert(1, (_FIRMWARE_VERSION, firmware_version))
    return items


def _parse_firmware_activation(body: Element, where: str) -> SrBody:
    hash_text = text(body, _FIRMWARE_HASH, where)  # a missing element is named as missing
    try:
        firmware_hash = bytes.fromhex(hash_text)
    except ValueError:
        raise InvalidRequestError(f"{_FIRMWARE_HASH} is not hexadecimal") from None
    if len(firmware_hash) != FIRMWARE_HASH_BYTES:
        raise InvalidRequestError(
            f"{_FIRMWARE_HASH} is {len(firmware_hash)} bytes; DUIS gives it as the "
            f"{FIRMWARE_HASH_BYTES}-byte SHA-256 of the image")
    return FirmwareActivation(firmware_hash)


def _write_firmware_activation(*, firmware_hash: bytes) -> list[BodyItem]:
    """Activate the verified image whose SHA-256 (the SEFW header's payload_sha256) is
    ``firmware_hash``; the S1SP refuses a mismatch. Future-datable."""
    return [(_FIRMWARE_HASH, bytes(firmware_hash).hex())]


def rule_18_63_firmware_update(ctx: RuleContext, body: FirmwareUpdate) -> list[ResultItem]:
    """18.63: per device: refused only where its HAN already has an update in progress."""
    outcomes = [_firmware_update_one(ctx, eui64, body.firmware_image)
                for eui64 in body.device_eui64s]
    image_versions = [str(dict(items)["PendingFirmwareVersion"]) for items in outcomes
                      if dict(items)["Outcome"] == "Accepted"]
    image_version = image_versions[0] if image_versions else ""
    version_items: list[ResultItem] = [(_FIRMWARE_VERSION,
                                        image_version or body.firmware_version)]
    if image_version and body.firmware_version and body.firmware_version != image_version:
        version_items += [
            ("RequestedFirmwareVersion", body.firmware_version),
            ("FirmwareVersionNote", f"the image header says {image_version}, not the "
                                    f"request's FirmwareVersion {body.firmware_version}")]
    device_items: list[ResultItem] = [("Device", items) for items in outcomes]
    if not image_versions:
        reasons = "; ".join(f"{dict(items)['DeviceID']}: {dict(items)['Reason']}"
                            for items in outcomes)
        codes = {str(dict(items)["ResponseCode"]) for items in outcomes}
        shared_code = next(iter(codes)) if len(codes) == 1 else ""
        statuses = [dict(items).get("DeviceStatus") for items in outcomes]
        raise FirmwareUpdateRefusedError(
            f"no device accepted the firmware update: {reasons}",
            response_code=(shared_code if shared_code in _SHARED_FIRMWARE_CODES
                           else S1srRefusalError.response_code),
            device_status=next((str(s) for s in statuses if s is not None), None),
            result_items=(*version_items, *device_items))
    return [*version_items, *device_items]


def _firmware_refusal_reason(command: Command, status: Status) -> str:
    if status is Status.FIRMWARE_UPDATE_IN_PROGRESS:
        return "S1SR 18.63: a firmware update is already in progress on this device's HAN"
    reason = f"device refused {command.name}: {status.name}"
    if status is Status.FIRMWARE_BAD_HEADER:
        reason += (" (the image is not a SEFW image: the emulated devices take SEFW images "
                   f"only, not GBCS ones; see {FIRMWARE_IMAGES_README} for the format and "
                   "sample images)")
    return reason


def _firmware_update_one(ctx: RuleContext, eui64: bytes, image: bytes) -> list[ResultItem]:
    items: list[ResultItem] = [("DeviceID", format_eui64(eui64))]
    try:
        device = ctx.resolve_device(eui64)
    except UnknownDeviceError as error:
        return [*items, ("Outcome", "Refused"), ("ResponseCode", UNKNOWN_DEVICE_CODE),
                ("Reason", error.reason)]
    except DeviceCommunicationError as error:
        return [*items, ("Outcome", "Refused"), ("ResponseCode", error.response_code),
                ("Reason", error.reason)]
    steps: list[tuple[Command, ApduBody | None]] = [
        (Command.FIRMWARE_BEGIN, FirmwareBeginRequest(image_size_bytes=len(image)))]
    for offset in range(0, len(image), MAX_FIRMWARE_BLOCK_BYTES):
        steps.append((Command.FIRMWARE_BLOCK, FirmwareBlockRequest(
            block_offset_bytes=offset,
            block_data=image[offset:offset + MAX_FIRMWARE_BLOCK_BYTES])))
    steps.append((Command.FIRMWARE_VERIFY, None))
    pending_version = ""
    for command, request in steps:
        began = command is not Command.FIRMWARE_BEGIN  # BEGIN was accepted before this step
        try:
            response = ctx.send_to(device, command, request)
        except DeviceCommunicationError as error:
            if began:
                _discard_transfer(ctx, device)
            return [*items, ("Outcome", "Refused"), ("ResponseCode", error.response_code),
                    ("Reason", error.reason)]
        if response.status is not Status.SUCCESS:
            if began and command is not Command.FIRMWARE_VERIFY:
                _discard_transfer(ctx, device)  # a refused VERIFY has discarded it already
            return [*items, ("Outcome", "Refused"),
                    ("ResponseCode", S1srRefusalError.response_code),
                    ("DeviceStatus", response.status.name),
                    ("Reason", _firmware_refusal_reason(command, response.status))]
        if command is Command.FIRMWARE_VERIFY:
            pending_version = response.body.pending_version
    return [*items, ("Outcome", "Accepted"), ("ResponseCode", "I0"),
            ("PendingFirmwareVersion", pending_version)]


def _discard_transfer(ctx: RuleContext, device: DeviceEntry) -> None:
    """Best effort: a FIRMWARE_VERIFY after a failed step, so that the device discards the
    unfinished transfer and frees its HAN's lock (18.63). Its outcome is ignored."""
    with contextlib.suppress(S1spError):
        ctx.send_to(device, Command.FIRMWARE_VERIFY)


def _firmware_status_items(a: ResponseBody) -> list[ResultItem]:
    """The result of a FIRMWARE_STATUS answer."""
    items: list[ResultItem] = [(_FIRMWARE_VERSION, a.running_version),
                               ("PendingFirmwareVersion", a.pending_version),
                               ("TransferInProgress", a.transfer_in_progress)]
    if a.pending_activation_time_seconds:
        items.append(("PendingActivationDateTime", device_seconds_to_duis_date_time(
            a.pending_activation_time_seconds)))
    return items


def _read_firmware_version(ctx: RuleContext, body: EmptyBody) -> list[ResultItem]:
    return _firmware_status_items(ctx.send(Command.READ_FIRMWARE_VERSION))


def rule_11_3_firmware_hash(ctx: RuleContext, body: FirmwareActivation) -> list[ResultItem]:
    """11.3: the FirmwareHash must equal the pending image's SHA-256 (READ_FIRMWARE_VERSION's
    pending_image_sha256), else refused with nothing activated or scheduled. A cancellation
    sends only the cancellation."""
    if body.execution is not None and body.execution.cancel:
        return ctx.cancel_scheduled(body.execution, Command.FIRMWARE_ACTIVATE)
    status = ctx.send(Command.READ_FIRMWARE_VERSION)
    pending_sha256 = status.pending_image_sha256
    if status.pending_version and body.firmware_hash != pending_sha256:
        raise S1srRefusalError(
            f"{_FIRMWARE_HASH} {body.firmware_hash.hex().upper()} does not match the SHA-256 "
            f"of the image pending on device {format_eui64(ctx.device.device_eui64)} "
            f"({pending_sha256.hex().upper()}, version {status.pending_version}); nothing "
            "was activated or scheduled")
    # scheduling needs a verified image now, as activating now does
    if body.execution is not None and not status.pending_version:
        raise S1srRefusalError(
            f"device {format_eui64(ctx.device.device_eui64)} has no verified firmware image "
            "pending (send 11.1 UpdateFirmware first), so FIRMWARE_ACTIVATE cannot be "
            f"scheduled for {body.execution.text}: FIRMWARE_NO_VERIFIED_IMAGE; nothing was "
            "scheduled", device_status=Status.FIRMWARE_NO_VERIFIED_IMAGE.name)
    answer, scheduling = ctx.send_possibly_future_dated(
        body.execution, Command.FIRMWARE_ACTIVATE,
        FirmwareActivateRequest(activation_time_seconds=0))
    return scheduling if answer is None else _firmware_status_items(answer)


RECORDS: tuple[ServiceRequest, ...] = (
    ServiceRequest("11.1", "Update Firmware", ("UpdateFirmware",), NON_DEVICE_VARIANTS,
                   critical=False, valid_device_types=ANY_DEVICE,
                   handler=rule_18_63_firmware_update, parse_body=_parse_firmware_update,
                   write_body=_write_firmware_update, addressee=Addressee.DCC),
    ServiceRequest("11.2", "Read Firmware Version", ("ReadFirmwareVersion",),
                   NON_CRITICAL_VARIANTS, critical=False, valid_device_types=ANY_DEVICE,
                   handler=_read_firmware_version),
    ServiceRequest("11.3", "Activate Firmware", ("ActivateFirmware",), CRITICAL_VARIANTS,
                   critical=True, valid_device_types=ANY_DEVICE, handler=rule_11_3_firmware_hash,
                   parse_body=_parse_firmware_activation,
                   write_body=_write_firmware_activation, future_datable=True),
)
