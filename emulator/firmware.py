"""Firmware images and the per-device firmware slot (SRs 11.1-11.3).

**Image format** (``SEFW``, header format version 1), defined with Construct in
:data:`IMAGE_HEADER`; every integer big-endian, every string ASCII, NUL-padded to its fixed
width (a string filling its whole width has no NUL)::

    offset size  field
         0    4  magic                  b"SEFW"
         4    1  header_format_version  1
         5   32  manufacturer           e.g. "Secure Meters"
        37   16  model                  e.g. "LIBERTY100"
        53   16  version                e.g. "1.1.0"
        69    4  payload_length_bytes   u32
        73   32  payload_sha256         SHA-256 of the payload
       105    n  payload                payload_length_bytes bytes, nothing after it

Strings are printable ASCII (0x20-0x7E), not empty. :func:`verify_image` refuses an image with
a typed :class:`FirmwareImageRefusedError` whose ``status`` is the protocol.apdu.Status the
device answers: FIRMWARE_BAD_HEADER (magic, format version, strings), FIRMWARE_WRONG_MODEL
(another manufacturer or model), FIRMWARE_BAD_LENGTH (truncated, or bytes after the payload),
FIRMWARE_BAD_HASH. Checks run in that order.

**Firmware slot**: :class:`FirmwareSlot`, one per device, sans-I/O. Device time comes in as
arguments; the HAN's one-transfer-at-a-time rule (domain 18.63) comes in as a
:class:`TransferLock`. Transitions::

    FIRMWARE_BEGIN(size)      size 0 or > MAX_FIRMWARE_IMAGE_BYTES -> VALUE_OUT_OF_RANGE
                              HAN lock held by another device      -> FIRMWARE_UPDATE_IN_PROGRESS
                              else: (re)start the transfer, hold the lock
    FIRMWARE_BLOCK(off, data) no transfer                          -> FIRMWARE_NO_TRANSFER
                              past the announced size              -> VALUE_OUT_OF_RANGE
                              (1..MAX_FIRMWARE_BLOCK_BYTES is checked when the APDU is decoded)
                              off == bytes received: append; an exact repeat of the previous
                              block: accepted, nothing changes; else FIRMWARE_BLOCK_OUT_OF_ORDER
    FIRMWARE_VERIFY           no transfer                          -> FIRMWARE_NO_TRANSFER
                              fewer bytes than announced, or the image refused
                                  -> its status; the transfer is discarded and the lock released
                              else: the image becomes the pending one (replacing any earlier
                              pending image and cancelling its scheduled activation); lock released
    FIRMWARE_ACTIVATE(t)      no pending image                     -> FIRMWARE_NO_VERIFIED_IMAGE
                              t == 0 or t <= device time: run it now; else at device time t
    READ_FIRMWARE_VERSION     FIRMWARE_STATUS
    device time reaches       an idle transfer is abandoned (below); a scheduled activation runs

A failed VERIFY is the one refusal that changes state (the transfer is gone, the HAN is free):
a head-end must start again with FIRMWARE_BEGIN. The running version changes only on
activation; an activation scheduled for the future runs from :meth:`FirmwareSlot.advance_to`.

**Idle transfers are abandoned** (*decided*): a transfer with no accepted FIRMWARE_BEGIN or
FIRMWARE_BLOCK for :data:`FIRMWARE_TRANSFER_IDLE_TIMEOUT_SECONDS` (600 s) of device time is
abandoned at exactly ``last activity + 600 s``: the received bytes are discarded, the HAN lock is
released, the running and pending firmware are untouched (a block arriving at that second finds
FIRMWARE_NO_TRANSFER). Refused requests and reads are not activity. Otherwise a head-end that
stopped mid-transfer would hold the HAN's one transfer (18.63) forever. The deadline is a slot
event (:meth:`FirmwareSlot.next_event_time_seconds`), so a world running time in event order
abandons the transfer at that very second; the last activity time is saved with the transfer,
so a restart keeps the same deadline. Times are on the device's clock, like activation times:
a SYNCHRONISE_CLOCK past the deadline abandons the transfer at once; one setting the clock back
delays the deadline by as much.

This module never does I/O, never reads a clock, and never changes the running version except
on activation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from construct import Bytes, Const, ConstructError, Int8ub, Int32ub, PaddedString, Struct

from emulator.errors import EmulatorError, StateError
from protocol.apdu import (
    ApduBody,
    Command,
    FirmwareActivateRequest,
    FirmwareBeginRequest,
    FirmwareBlockRequest,
    FirmwareBlockResponse,
    FirmwareStatus,
    Request,
    Response,
    Status,
)

__all__ = [
    "FIRMWARE_COMMANDS",
    "FIRMWARE_TRANSFER_IDLE_TIMEOUT_SECONDS",
    "IMAGE_FORMAT_VERSION",
    "IMAGE_HEADER",
    "IMAGE_HEADER_SIZE_BYTES",
    "IMAGE_MAGIC",
    "MANUFACTURER_FIELD_BYTES",
    "MAX_FIRMWARE_IMAGE_BYTES",
    "MODEL_FIELD_BYTES",
    "VERSION_FIELD_BYTES",
    "FirmwareBadHashError",
    "FirmwareBadHeaderError",
    "FirmwareBadLengthError",
    "FirmwareBuildError",
    "FirmwareError",
    "FirmwareImageRefusedError",
    "FirmwareSlot",
    "FirmwareWrongModelError",
    "ImageHeader",
    "TransferLock",
    "build_image",
    "parse_image_header",
    "verify_image",
]

IMAGE_MAGIC = b"SEFW"
IMAGE_FORMAT_VERSION = 1
MANUFACTURER_FIELD_BYTES = 32
MODEL_FIELD_BYTES = 16
VERSION_FIELD_BYTES = 16
#: Largest image a device accepts in FIRMWARE_BEGIN (1 MiB): room for any sample image while
#: keeping a saved mid-transfer state file small.
MAX_FIRMWARE_IMAGE_BYTES = 1024 * 1024
#: Device seconds without an accepted FIRMWARE_BEGIN or FIRMWARE_BLOCK after which a transfer is
#: abandoned and the HAN lock released (*decided*: 10 minutes, far beyond any retry a head-end
#: makes between two blocks, short enough that a dead head-end does not block the HAN for long).
FIRMWARE_TRANSFER_IDLE_TIMEOUT_SECONDS = 600

IMAGE_HEADER = Struct(
    "magic" / Const(IMAGE_MAGIC),
    "header_format_version" / Int8ub,
    "manufacturer" / PaddedString(MANUFACTURER_FIELD_BYTES, "ascii"),
    "model" / PaddedString(MODEL_FIELD_BYTES, "ascii"),
    "version" / PaddedString(VERSION_FIELD_BYTES, "ascii"),
    "payload_length_bytes" / Int32ub,
    "payload_sha256" / Bytes(32),
)
IMAGE_HEADER_SIZE_BYTES: int = IMAGE_HEADER.sizeof()

#: The commands :meth:`FirmwareSlot.handle_request` answers.
FIRMWARE_COMMANDS = frozenset({
    Command.FIRMWARE_BEGIN,
    Command.FIRMWARE_BLOCK,
    Command.FIRMWARE_VERIFY,
    Command.FIRMWARE_ACTIVATE,
    Command.READ_FIRMWARE_VERSION,
})

#: Version 2 adds the transfer's ``last_activity_time_seconds``; a version 1 transfer has none
#: and is treated as idle since time 0 (abandoned on the first step of time after a restart).
_STATE_FORMAT = 2
_READABLE_STATE_FORMATS = frozenset({1, 2})


# --------------------------------------------------------------------------------------------
# Errors (kept here because emulator/errors.py does not define them yet)
# --------------------------------------------------------------------------------------------


class FirmwareError(EmulatorError):
    """Base class of the firmware errors."""


class FirmwareBuildError(FirmwareError):
    """build_image was given a field that does not fit the image header."""


class FirmwareImageRefusedError(FirmwareError):
    """An image was refused; ``status`` is what the device answers to FIRMWARE_VERIFY."""

    status: Status = Status.FIRMWARE_BAD_HEADER


class FirmwareBadHeaderError(FirmwareImageRefusedError):
    """The bytes are not a SEFW image of a known header format version."""

    status = Status.FIRMWARE_BAD_HEADER


class FirmwareWrongModelError(FirmwareImageRefusedError):
    """The image is for another manufacturer or model."""

    status = Status.FIRMWARE_WRONG_MODEL


class FirmwareBadLengthError(FirmwareImageRefusedError):
    """The image is truncated, or has bytes after its payload."""

    status = Status.FIRMWARE_BAD_LENGTH


class FirmwareBadHashError(FirmwareImageRefusedError):
    """The payload's SHA-256 is not the one in the header: the image is corrupt."""

    status = Status.FIRMWARE_BAD_HASH


# --------------------------------------------------------------------------------------------
# Image format
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageHeader:
    """The header of a SEFW firmware image."""

    header_format_version: int
    manufacturer: str
    model: str
    version: str
    payload_length_bytes: int
    payload_sha256: bytes


def _is_printable_ascii(text: str) -> bool:
    return all(0x20 <= ord(char) <= 0x7E for char in text)


def _check_text_field(name: str, value: str, width_bytes: int) -> None:
    if not isinstance(value, str) or not value:
        raise FirmwareBuildError(f"{name} must be a non-empty string, not {value!r}")
    if not _is_printable_ascii(value):
        raise FirmwareBuildError(f"{name} {value!r} must be printable ASCII (0x20-0x7E)")
    if len(value) > width_bytes:
        raise FirmwareBuildError(
            f"{name} {value!r} is {len(value)} characters; the header holds {width_bytes}")


def build_image(manufacturer: str, model: str, version: str, payload: bytes) -> bytes:
    """The bytes of a SEFW image carrying ``payload``. Raises :class:`FirmwareBuildError` for a
    string that is empty, not printable ASCII or too long, or a payload over
    MAX_FIRMWARE_IMAGE_BYTES with its header."""
    _check_text_field("manufacturer", manufacturer, MANUFACTURER_FIELD_BYTES)
    _check_text_field("model", model, MODEL_FIELD_BYTES)
    _check_text_field("version", version, VERSION_FIELD_BYTES)
    payload = bytes(payload)
    if IMAGE_HEADER_SIZE_BYTES + len(payload) > MAX_FIRMWARE_IMAGE_BYTES:
        raise FirmwareBuildError(
            f"payload of {len(payload)} bytes makes an image over the"
            f" {MAX_FIRMWARE_IMAGE_BYTES}-byte maximum")
    header = IMAGE_HEADER.build({
        "header_format_version": IMAGE_FORMAT_VERSION,
        "manufacturer": manufacturer,
        "model": model,
        "version": version,
        "payload_length_bytes": len(payload),
        "payload_sha256": hashlib.sha256(payload).digest(),
    })
    return header + payload


def parse_image_header(data: bytes) -> ImageHeader:
    """The header of an image (the payload is not checked). Raises
    :class:`FirmwareBadHeaderError` for a wrong magic, an unknown header format version or a
    string that is not printable ASCII, and :class:`FirmwareBadLengthError` for bytes that start
    like an image but stop before the header ends."""
    data = bytes(data)
    prefix = data[: len(IMAGE_MAGIC)]
    if prefix != IMAGE_MAGIC[: len(prefix)] or not prefix:
        raise FirmwareBadHeaderError(
            f"image starts {prefix.hex() or 'with nothing'}, not the magic {IMAGE_MAGIC!r}:"
            " this is not a SEFW firmware image")
    if len(data) < IMAGE_HEADER_SIZE_BYTES:
        raise FirmwareBadLengthError(
            f"image of {len(data)} bytes is shorter than its {IMAGE_HEADER_SIZE_BYTES}-byte"
            " header: it is truncated")
    if data[len(IMAGE_MAGIC)] != IMAGE_FORMAT_VERSION:
        raise FirmwareBadHeaderError(
            f"header format version {data[len(IMAGE_MAGIC)]} is unknown; this device reads"
            f" version {IMAGE_FORMAT_VERSION}")
    try:
        parsed = IMAGE_HEADER.parse(data[:IMAGE_HEADER_SIZE_BYTES])
    except (ConstructError, UnicodeDecodeError) as error:
        raise FirmwareBadHeaderError(f"image header is unreadable: {error}") from error
    for name in ("manufacturer", "model", "version"):
        value = parsed[name]
        if not value or not _is_printable_ascii(value):
            raise FirmwareBadHeaderError(
                f"image header {name} {value!r} is not a non-empty printable ASCII string")
    return ImageHeader(
        header_format_version=parsed.header_format_version,
        manufacturer=parsed.manufacturer,
        model=parsed.model,
        version=parsed.version,
        payload_length_bytes=parsed.payload_length_bytes,
        payload_sha256=bytes(parsed.payload_sha256),
    )


def verify_image(data: bytes, manufacturer: str, model: str) -> ImageHeader:
    """The header of ``data`` once the whole image checks out for a device of ``manufacturer``
    and ``model``: header, then manufacturer and model, then length, then SHA-256. Raises the
    :class:`FirmwareImageRefusedError` subclass for the first check that fails."""
    data = bytes(data)
    header = parse_image_header(data)
    if (header.manufacturer, header.model) != (manufacturer, model):
        raise FirmwareWrongModelError(
            f"image is for {header.manufacturer} {header.model}; this device is"
            f" {manufacturer} {model}")
    payload = data[IMAGE_HEADER_SIZE_BYTES:]
    if len(payload) != header.payload_length_bytes:
        how = "truncated" if len(payload) < header.payload_length_bytes else "overlong"
        raise FirmwareBadLengthError(
            f"image is {how}: the header announces {header.payload_length_bytes} payload bytes,"
            f" the image carries {len(payload)}")
    if hashlib.sha256(payload).digest() != header.payload_sha256:
        raise FirmwareBadHashError(
            f"payload SHA-256 {hashlib.sha256(payload).hexdigest()} is not the header's"
            f" {header.payload_sha256.hex()}: the image is corrupt")
    return header


# --------------------------------------------------------------------------------------------
# The firmware slot
# --------------------------------------------------------------------------------------------


class TransferLock(Protocol):
    """One firmware transfer at a time per HAN; implemented by the HAN. ``acquire`` by the
    device already holding the lock answers True."""

    @property
    def holder_eui64(self) -> bytes | None: ...

    def acquire(self, eui64: bytes) -> bool: ...

    def release(self, eui64: bytes) -> None: ...


def _hold(transfer_lock: TransferLock, device_eui64: bytes) -> bool:
    return transfer_lock.holder_eui64 == device_eui64 or transfer_lock.acquire(device_eui64)


@dataclass
class _Transfer:
    image_size_bytes: int
    received: bytearray
    #: Device time of the last accepted BEGIN or BLOCK.
    last_activity_time_seconds: int
    last_block_offset_bytes: int | None = None  # None until the first block
    #: base64 of ``received[:_encoded_bytes]`` (a multiple of 3 bytes), so saving the state
    #: after each block encodes only the new bytes (``received`` only ever grows).
    _encoded_base64: str = field(default="", repr=False, compare=False)
    _encoded_bytes: int = field(default=0, repr=False, compare=False)

    @property
    def expires_at_seconds(self) -> int:
        return self.last_activity_time_seconds + FIRMWARE_TRANSFER_IDLE_TIMEOUT_SECONDS

    def received_base64(self) -> str:
        aligned_bytes = len(self.received) - len(self.received) % 3
        if aligned_bytes > self._encoded_bytes:
            self._encoded_base64 += base64.b64encode(
                self.received[self._encoded_bytes:aligned_bytes]).decode("ascii")
            self._encoded_bytes = aligned_bytes
        return self._encoded_base64 + base64.b64encode(
            self.received[aligned_bytes:]).decode("ascii")


class FirmwareSlot:
    """The firmware of one device: running version, one transfer in progress, one verified image
    waiting for activation. See the module docstring for every transition.

    A device restored with :meth:`from_state` in the middle of a transfer must hold the HAN lock
    again: the HAN re-acquires it for each slot whose :attr:`transfer_in_progress` is true (the
    slot also re-acquires it on its next block or verify when it is free).

    Every method that lets time pass (:meth:`handle_request`, :meth:`advance_to`) takes the HAN's
    :class:`TransferLock` and the device's EUI-64, since an idle transfer abandoned then gives the
    lock back."""

    def __init__(self, manufacturer: str, model: str, running_version: str) -> None:
        self.manufacturer = manufacturer
        self.model = model
        self.running_version = running_version
        self.pending_version = ""
        self.pending_activation_time_seconds = 0  # 0: none scheduled
        #: the pending image's SHA-256 (its header's payload_sha256); b"" when none or unknown
        #: (a state saved before the hash was kept)
        self.pending_image_sha256 = b""
        self._transfer: _Transfer | None = None

    # ---- reads -------------------------------------------------------------------------

    @property
    def transfer_in_progress(self) -> bool:
        return self._transfer is not None

    @property
    def bytes_received(self) -> int:
        return len(self._transfer.received) if self._transfer is not None else 0

    def status(self) -> FirmwareStatus:
        """The slot as the wire's FIRMWARE_STATUS body."""
        return FirmwareStatus(
            running_version=self.running_version,
            pending_version=self.pending_version,
            pending_activation_time_seconds=self.pending_activation_time_seconds,
            transfer_in_progress=self.transfer_in_progress,
            pending_image_sha256=self.pending_image_sha256 or bytes(32))

    # ---- requests ----------------------------------------------------------------------

    def handle_request(self, request: Request, device_time_seconds: int,
                       transfer_lock: TransferLock, device_eui64: bytes) -> Response:
        """Answer one firmware request at ``device_time_seconds`` (the body already checked by
        decoding). A command outside :data:`FIRMWARE_COMMANDS` answers
        NOT_SUPPORTED_BY_DEVICE."""
        self.advance_to(device_time_seconds, transfer_lock, device_eui64)
        command = request.command
        body = request.body
        answer: ApduBody | Status
        if isinstance(body, FirmwareBeginRequest):
            answer = self._begin(body, device_time_seconds, transfer_lock, device_eui64)
        elif isinstance(body, FirmwareBlockRequest):
            answer = self._block(body, device_time_seconds, transfer_lock, device_eui64)
        elif command is Command.FIRMWARE_VERIFY:
            answer = self._verify(transfer_lock, device_eui64)
        elif isinstance(body, FirmwareActivateRequest):
            answer = self._activate(body, device_time_seconds)
        elif command is Command.READ_FIRMWARE_VERSION:
            answer = self.status()
        else:
            answer = Status.NOT_SUPPORTED_BY_DEVICE
        if isinstance(answer, Status):
            return Response(command, request.invoke_id, answer)
        return Response(command, request.invoke_id, Status.SUCCESS, body=answer)

    def _begin(self, body: FirmwareBeginRequest, device_time_seconds: int,
               transfer_lock: TransferLock, device_eui64: bytes) -> FirmwareStatus | Status:
        if not 0 < body.image_size_bytes <= MAX_FIRMWARE_IMAGE_BYTES:
            return Status.VALUE_OUT_OF_RANGE
        if not _hold(transfer_lock, device_eui64):
            return Status.FIRMWARE_UPDATE_IN_PROGRESS
        self._transfer = _Transfer(body.image_size_bytes, bytearray(), device_time_seconds)
        return self.status()

    def _block(self, body: FirmwareBlockRequest, device_time_seconds: int,
               transfer_lock: TransferLock, device_eui64: bytes
               ) -> FirmwareBlockResponse | Status:
        block_offset_bytes = body.block_offset_bytes
        block_data = body.block_data
        transfer = self._transfer
        if transfer is None:
            return Status.FIRMWARE_NO_TRANSFER
        received_bytes = len(transfer.received)
        if block_offset_bytes == received_bytes:
            if block_offset_bytes + len(block_data) > transfer.image_size_bytes:
                return Status.VALUE_OUT_OF_RANGE
            if not _hold(transfer_lock, device_eui64):
                return Status.FIRMWARE_UPDATE_IN_PROGRESS
            transfer.received += block_data
            transfer.last_block_offset_bytes = block_offset_bytes
        elif not (block_offset_bytes == transfer.last_block_offset_bytes
                  and transfer.received[block_offset_bytes:] == block_data):
            return Status.FIRMWARE_BLOCK_OUT_OF_ORDER
        transfer.last_activity_time_seconds = device_time_seconds
        return FirmwareBlockResponse(bytes_received=len(transfer.received))

    def _verify(self, transfer_lock: TransferLock,
                device_eui64: bytes) -> FirmwareStatus | Status:
        transfer = self._transfer
        if transfer is None:
            return Status.FIRMWARE_NO_TRANSFER
        if not _hold(transfer_lock, device_eui64):
            return Status.FIRMWARE_UPDATE_IN_PROGRESS
        self._transfer = None
        transfer_lock.release(device_eui64)
        if len(transfer.received) != transfer.image_size_bytes:
            return Status.FIRMWARE_BAD_LENGTH
        try:
            header = verify_image(bytes(transfer.received), self.manufacturer, self.model)
        except FirmwareImageRefusedError as error:
            return error.status
        self.pending_version = header.version
        self.pending_image_sha256 = header.payload_sha256
        self.pending_activation_time_seconds = 0
        return self.status()

    def _activate(self, body: FirmwareActivateRequest,
                  device_time_seconds: int) -> FirmwareStatus | Status:
        activation_time_seconds = body.activation_time_seconds
        if not self.pending_version:
            return Status.FIRMWARE_NO_VERIFIED_IMAGE
        if activation_time_seconds == 0 or activation_time_seconds <= device_time_seconds:
            self._run_pending()
        else:
            self.pending_activation_time_seconds = activation_time_seconds
        return self.status()

    def _run_pending(self) -> None:
        self.running_version = self.pending_version
        self.pending_version = ""
        self.pending_image_sha256 = b""
        self.pending_activation_time_seconds = 0

    # ---- time --------------------------------------------------------------------------

    def advance_to(self, device_time_seconds: int, transfer_lock: TransferLock,
                   device_eui64: bytes) -> None:
        """Run what is due at ``device_time_seconds``: abandon a transfer idle since
        FIRMWARE_TRANSFER_IDLE_TIMEOUT_SECONDS or more (releasing ``device_eui64``'s hold on
        ``transfer_lock``), and run a scheduled activation."""
        transfer = self._transfer
        if transfer is not None and device_time_seconds >= transfer.expires_at_seconds:
            self._transfer = None
            transfer_lock.release(device_eui64)
        due = self.pending_activation_time_seconds
        if due and self.pending_version and device_time_seconds >= due:
            self._run_pending()

    @property
    def has_timed_work(self) -> bool:
        """A transfer that may go idle, or an activation scheduled: something
        :meth:`advance_to` may have to do (when False it does nothing at any time)."""
        return self._transfer is not None or bool(
            self.pending_activation_time_seconds and self.pending_version)

    def next_event_time_seconds(self) -> int | None:
        """The earliest device time something happens by itself (an idle transfer abandoned,
        a scheduled activation), or None."""
        times = [t for t in (
            self.pending_activation_time_seconds or None,
            self._transfer.expires_at_seconds if self._transfer is not None else None,
        ) if t is not None]
        return min(times) if times else None

    # ---- persistence -------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """A JSON-able snapshot; received image bytes in base64."""
        transfer = self._transfer
        state: dict[str, Any] = {
            "state_format": _STATE_FORMAT,
            "running_version": self.running_version,
            "pending_version": self.pending_version,
            "pending_activation_time_seconds": self.pending_activation_time_seconds,
        }
        if self.pending_image_sha256:  # left out when unknown: older files re-encode the same
            state["pending_image_sha256"] = self.pending_image_sha256.hex()
        state["transfer"] = None if transfer is None else {
            "image_size_bytes": transfer.image_size_bytes,
            "received_base64": transfer.received_base64(),
            "last_block_offset_bytes": transfer.last_block_offset_bytes,
            "last_activity_time_seconds": transfer.last_activity_time_seconds,
        }
        return state

    @classmethod
    def from_state(cls, manufacturer: str, model: str,
                   state: Mapping[str, Any]) -> FirmwareSlot:
        """A slot restored from :meth:`to_state`. Raises :class:`emulator.errors.StateError`
        naming the first key that is missing or wrong."""
        try:
            state_format = state["state_format"]
            if isinstance(state_format, bool) or state_format not in _READABLE_STATE_FORMATS:
                raise StateError(f"firmware state_format {state_format!r} is not one of"
                                 f" {sorted(_READABLE_STATE_FORMATS)}")
            slot = cls(manufacturer, model, _text(state, "running_version"))
            slot.pending_version = _text(state, "pending_version", allow_empty=True)
            slot.pending_activation_time_seconds = _count(state, "pending_activation_time_seconds")
            slot.pending_image_sha256 = _sha256(state, slot.pending_version)
            if slot.pending_activation_time_seconds and not slot.pending_version:
                raise StateError("firmware pending_activation_time_seconds is set but no"
                                 " pending_version")
            transfer = state["transfer"]
        except KeyError as error:
            raise StateError(f"firmware state has no {error.args[0]!r}") from None
        if transfer is not None:
            slot._transfer = _transfer_from_state(transfer, state_format)
        return slot


def _sha256(state: Mapping[str, Any], pending_version: str) -> bytes:
    """The saved pending image hash: 32 bytes in hex, only with a pending version; absent in
    states saved before it was kept (then unknown: b"")."""
    text = state.get("pending_image_sha256")
    if text is None:
        return b""
    try:
        digest = bytes.fromhex(text) if isinstance(text, str) else b""
    except ValueError:
        digest = b""
    if len(digest) != 32 or not pending_version:
        raise StateError("firmware pending_image_sha256 must be 64 hex digits, with a"
                         " pending_version")
    return digest


def _text(state: Mapping[str, Any], key: str, allow_empty: bool = False) -> str:
    value = state[key]
    if not isinstance(value, str) or not (value or allow_empty):
        raise StateError(f"firmware {key} must be a{'' if allow_empty else ' non-empty'}"
                         f" string, not {value!r}")
    return value


def _count(state: Mapping[str, Any], key: str) -> int:
    value = state[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise StateError(f"firmware {key} must be a whole number >= 0, not {value!r}")
    return value


def _transfer_from_state(transfer: Any, state_format: int) -> _Transfer:
    if not isinstance(transfer, Mapping):
        raise StateError(f"firmware transfer must be a table or null, not {transfer!r}")
    try:
        image_size_bytes = _count(transfer, "image_size_bytes")
        encoded = transfer["received_base64"]
        last_block_offset_bytes = transfer["last_block_offset_bytes"]
        last_activity_time_seconds = (0 if state_format == 1
                                      else _count(transfer, "last_activity_time_seconds"))
    except KeyError as error:
        raise StateError(f"firmware transfer has no {error.args[0]!r}") from None
    try:
        received = base64.b64decode(encoded, validate=True)
    except (binascii.Error, TypeError, ValueError) as error:
        raise StateError(f"firmware transfer received_base64 is not base64: {error}") from None
    if not 0 < image_size_bytes <= MAX_FIRMWARE_IMAGE_BYTES or len(received) > image_size_bytes:
        raise StateError(f"firmware transfer holds {len(received)} of {image_size_bytes} bytes:"
                         f" the size must be 1..{MAX_FIRMWARE_IMAGE_BYTES} and not below what"
                         " was received")
    if last_block_offset_bytes is not None and (
            isinstance(last_block_offset_bytes, bool)
            or not isinstance(last_block_offset_bytes, int)
            or not 0 <= last_block_offset_bytes < len(received)):
        raise StateError(f"firmware transfer last_block_offset_bytes {last_block_offset_bytes!r}"
                         f" is not null or an offset below the {len(received)} bytes received")
    return _Transfer(image_size_bytes, bytearray(received), last_activity_time_seconds,
                     last_block_offset_bytes)
