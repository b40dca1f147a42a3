"""Typed errors of the S1SP adapter, and the one mapping from wire errors to DUIS codes.

Each error carries the DUIS response code it becomes and a reason a user can act on. The
adapter turns every one into a DUIS error response; none escapes :meth:`S1spAdapter.submit`.
These errors are the adapter's own tree (:class:`S1spError` is not a wire
:class:`protocol.errors.ProtocolError`): the wire layers know nothing of DUIS, and the DUIS
codes for wire failures (E20, E21) are decided here only, in :func:`device_communication_error`.

This module never talks to a device.
"""

from __future__ import annotations

from typing import Any

from protocol.errors import (
    ApduError,
    DeviceUnreachableError,
    LinkError,
    RequestOutcomeUnknownError,
)

#: Our one code for a request refused by an S1SR rule or by a device failure status
#: (*decided*: DUIS has no code for it). The reason names the rule or the device Status.
S1SR_REFUSAL_CODE = "E-S1SR"
#: Our code for a request that is not valid DUIS input (*decided*): malformed or hostile XML,
#: wrong namespace, missing element, value out of range, unknown Service Request.
INVALID_REQUEST_CODE = "E-INVALID"
#: Our code for a fault inside the adapter itself (*decided*); the reason says what failed.
INTERNAL_ERROR_CODE = "E-INTERNAL"
#: DUIS: the device is not known (no device with that EUI-64 behind the link).
UNKNOWN_DEVICE_CODE = "E19"
#: DUIS: the device could not be communicated with. Ours: nothing of the request was sent
#: (the link could not be brought up), so the device did not apply it; resend when it is back.
CANNOT_COMMUNICATE_CODE = "E20"
#: DUIS: no response from the device. Ours: the request went on the wire and no answer came,
#: so the outcome is unknown (the device may have applied it): :data:`OUTCOME_UNKNOWN_GUIDANCE`.
NO_RESPONSE_CODE = "E21"
#: What an E21 reason tells the user to do.
OUTCOME_UNKNOWN_GUIDANCE = ("outcome unknown: read before resending; resending the same "
                            "RequestID is safe (idempotency key)")


class S1spError(Exception):
    """Base class: something the adapter answers with a DUIS error response."""

    response_code: str = S1SR_REFUSAL_CODE
    #: the device's ``protocol.apdu.Status`` name when a device refused; None otherwise
    device_status: str | None = None
    #: DUIS result items the error response still carries (e.g. an 11.1's per-device list)
    result_items: tuple[tuple[str, Any], ...] = ()

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidRequestError(S1spError, ValueError):
    """The DUIS document is not a request we can act on; nothing was sent to a device."""

    response_code = INVALID_REQUEST_CODE


class InvalidCommandVariantError(S1spError):
    """The CommandVariant is not one the Service Request allows (DUIS E12)."""

    response_code = "E12"


class UnknownDeviceError(S1spError):
    """No device with that EUI-64 is behind the link (DUIS E19)."""

    response_code = UNKNOWN_DEVICE_CODE


class WrongDeviceTypeError(S1spError):
    """The Service Request is not valid for the target device's type (DUIS E11)."""

    response_code = "E11"


class S1srRefusalError(S1spError):
    """An S1SR rule or the device refused the request (our code :data:`S1SR_REFUSAL_CODE`).

    ``device_status`` names the device's ``protocol.apdu.Status`` when the device refused, and
    is None when the S1SP refused by itself (nothing was sent)."""

    response_code = S1SR_REFUSAL_CODE

    def __init__(self, reason: str, device_status: str | None = None) -> None:
        super().__init__(reason)
        self.device_status = device_status


class FirmwareUpdateRefusedError(S1srRefusalError):
    """No device of an 11.1 accepted the update. ``response_code`` is the devices' shared
    E19/E20/E21 code when they all failed alike, else :data:`S1SR_REFUSAL_CODE`;
    ``result_items`` (the DUIS result items, per-device outcomes included) stay in the error
    response's body."""

    def __init__(self, reason: str, *, response_code: str, device_status: str | None,
                 result_items: tuple[tuple[str, Any], ...]) -> None:
        super().__init__(reason, device_status=device_status)
        self.response_code = response_code
        self.result_items = result_items


class UnrepresentableValueError(S1spError):
    """The device reported a value its DUIS response element cannot hold (money outside
    int32 in 1/100000 GBP): the response carries the reason, never the value."""

    response_code = INTERNAL_ERROR_CODE


class DeviceCommunicationError(S1spError):
    """Nothing could be sent to the device (E20), or it was sent and no answer came (E21,
    outcome unknown)."""

    def __init__(self, reason: str, response_code: str) -> None:
        super().__init__(reason)
        self.response_code = response_code


def device_communication_error(error: ApduError | LinkError, subject: str
                               ) -> DeviceCommunicationError:
    """The DUIS answer to a wire failure while exchanging with ``subject`` (words such as
    ``device 00-DB-...``): E21 when the request went on the wire and no answer came
    (:class:`~protocol.errors.RequestOutcomeUnknownError`: outcome unknown, the reason says to
    read before resending), E20 for every failure before anything was sent."""
    if isinstance(error, RequestOutcomeUnknownError):
        return DeviceCommunicationError(
            f"no response from {subject}: {OUTCOME_UNKNOWN_GUIDANCE} ({error})",
            NO_RESPONSE_CODE)
    if isinstance(error, DeviceUnreachableError):
        return DeviceCommunicationError(
            f"cannot communicate with {subject}, nothing was sent: {error}",
            CANNOT_COMMUNICATE_CODE)
    return DeviceCommunicationError(f"the link to {subject} failed: {error}",
                                    CANNOT_COMMUNICATE_CODE)


class AnnexCError(S1spError, ValueError):
    """An Annex C override file is unreadable, names an unknown key or holds a bad value."""

    response_code = INVALID_REQUEST_CODE
