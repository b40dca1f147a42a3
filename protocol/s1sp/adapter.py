"""The S1SP adapter: DUIS XML in, S1SR rules applied, APDUs through a DeviceChannel, DUIS back.

``S1spAdapter(channel).submit(xml) -> response xml`` never raises for bad input: every problem
becomes a DUIS error response (see :mod:`.responses` for the codes and the form), a fault of
the adapter itself E-INTERNAL, unless the adapter is built with ``raise_internal_errors=True``
(what our own tests do): then such a fault raises, so that a bug in a handler fails a test
instead of answering E-INTERNAL. A request
that is invalid (malformed or hostile XML, wrong namespace, missing element, value out of
range, unknown SR) or refused by an S1SR check before sending leaves the devices untouched.

Order of checks: parse (E-INVALID) -> CommandVariant (E12) -> target device resolution (E19,
E20/E21 when the directory cannot be read) -> device type (E11) -> the SR's rules (E-S1SR,
E-INVALID) and device exchanges (E20/E21, device refusals E-S1SR with the Status name).

Device resolution: on first use the adapter sends READ_DEVICE_DIRECTORY to
``MANAGEMENT_SERVER_ADDRESS`` and maps each EUI-64 to its server address and device type; an
unknown EUI-64 triggers a refresh before the answer is E19, at most one refresh per submitted
request (an 11.1 naming many unknown devices costs one directory read, not one each). 11.1 is
addressed to the DCC, not a device (its registry record says so): its RequestID target is not
resolved; each device of its DeviceIDList is. An 11.1 that no device accepted keeps its
per-device outcomes in the error response's body.

Exactly once: every state-changing request a DUIS request sends carries an idempotency key
derived from its RequestID (:class:`RequestIdKeyedChannel`), so the same DUIS request resent
(after an E21, a reconnect or a restart of the emulator) gets the responses the devices gave
the first time and changes nothing more.

This module never talks to a port: only through the DeviceChannel it is given.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timezone

from protocol.apdu import (
    MANAGEMENT_SERVER_ADDRESS,
    READ_ONLY_COMMANDS,
    Command,
    DeviceType,
    Empty,
    Request,
    Response,
    Status,
    idempotency_key_from_text,
)
from protocol.errors import ApduError, LinkError
from protocol.eui64 import format_eui64
from protocol.s1sp.annex_c import AnnexCTable
from protocol.s1sp.channel import DeviceChannel
from protocol.s1sp.duis import DuisRequest, parse_duis_request, parse_request_id_leniently
from protocol.s1sp.errors import (
    CANNOT_COMMUNICATE_CODE,
    INTERNAL_ERROR_CODE,
    DeviceCommunicationError,
    InvalidCommandVariantError,
    S1spError,
    UnknownDeviceError,
    WrongDeviceTypeError,
    device_communication_error,
)
from protocol.s1sp.responses import ACKNOWLEDGED, SUCCESS, DuisResponse
from protocol.s1sp.rules import DeviceEntry, RuleContext
from protocol.s1sp.service_requests import SERVICE_REQUESTS, Addressee, ServiceRequest

__all__ = ["RequestIdKeyedChannel", "S1spAdapter"]


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class RequestIdKeyedChannel:
    """The adapter's channel for one DUIS request: each state-changing request gets the
    idempotency key of the RequestID's text (``idempotency_key_from_text``); the n-th (n >= 2)
    to the same device within the request gets that of ``"<RequestID>#<n>"``, so a request
    sending several commands to one device (an 11.1's firmware blocks) keys each apart, and a
    resend of the DUIS request derives the same keys in the same order."""

    def __init__(self, channel: DeviceChannel, request_id_text: str) -> None:
        self._channel = channel
        self._request_id_text = request_id_text
        self._sent_to: dict[int, int] = {}

    def request(self, server_address: int, request: Request) -> Response:
        if request.command not in READ_ONLY_COMMANDS and request.idempotency_key is None:
            count = self._sent_to.get(server_address, 0) + 1
            self._sent_to[server_address] = count
            text = self._request_id_text if count == 1 else f"{self._request_id_text}#{count}"
            request = dataclasses.replace(request,
                                          idempotency_key=idempotency_key_from_text(text))
        return self._channel.request(server_address, request)


class S1spAdapter:
    """DUIS Service Requests in, device requests out, DUIS responses back."""

    def __init__(self, channel: DeviceChannel, *, annex_c: AnnexCTable | None = None,
                 response_clock: Callable[[], datetime] | None = None,
                 raise_internal_errors: bool = False) -> None:
        self._channel = channel
        #: a fault of the adapter itself raises instead of answering E-INTERNAL (for tests)
        self._raise_internal_errors = raise_internal_errors
        self._annex_c = annex_c or AnnexCTable()
        self._clock = response_clock or _utc_now
        self._directory: dict[bytes, DeviceEntry] | None = None
        #: whether the directory was read during the request being processed
        self._directory_read_this_request = False
        #: every (server_address, request) the last submitted request sent, oldest first
        self.last_sent: list[tuple[int, Request]] = []

    @property
    def annex_c(self) -> AnnexCTable:
        return self._annex_c

    # ----------------------------------------------------------------------------------------
    def submit(self, xml: bytes | str) -> str:
        """The final DUIS response (I0 or an error code) to one request document."""
        return self._submit_document(xml).to_xml()

    def submit_acknowledged(self, xml: bytes | str) -> list[str]:
        """The I99 acknowledgement then the final response; only the final (error) response
        when the request was not accepted for processing (invalid, E12)."""
        parsed = self._parse(xml)
        if isinstance(parsed, DuisResponse):
            return [parsed.to_xml()]
        request, record = parsed
        acknowledgement = DuisResponse(
            ACKNOWLEDGED, self._clock(), request.request_id, request.service_reference,
            request.service_reference_variant)
        return [acknowledgement.to_xml(), self._safe_submit_request(request, record).to_xml()]

    def submit_request(self, request: DuisRequest) -> DuisResponse:
        """Apply the S1SR rules to a parsed request; the typed response (never raises an
        :class:`S1spError`)."""
        return self._submit_request(request, None)

    # ----------------------------------------------------------------------------------------
    def _submit_document(self, xml: bytes | str) -> DuisResponse:
        parsed = self._parse(xml)
        if isinstance(parsed, DuisResponse):
            return parsed
        return self._safe_submit_request(*parsed)

    def _parse(self, xml: bytes | str) -> tuple[DuisRequest, ServiceRequest] | DuisResponse:
        """The request and its record (its CommandVariant checked), or the error response."""
        try:
            request = parse_duis_request(xml)
        except S1spError as error:
            return DuisResponse(error.response_code, self._clock(),
                                request_id=parse_request_id_leniently(xml),
                                error_reason=error.reason)
        except Exception as error:  # submit never raises for bad input
            if self._raise_internal_errors:
                raise
            return DuisResponse(INTERNAL_ERROR_CODE, self._clock(),
                                error_reason=f"cannot read the request: {error!r}")
        try:
            return request, self._record(request)
        except S1spError as error:
            return self._error(request, error)

    def _submit_request(self, request: DuisRequest, record: ServiceRequest | None
                        ) -> DuisResponse:
        """``record``: the request's, when already looked up and checked (else None)."""
        self.last_sent = []
        self._directory_read_this_request = False
        try:
            return self._process(request, record or self._record(request))
        except S1spError as error:
            return self._error(request, error)

    def _safe_submit_request(self, request: DuisRequest, record: ServiceRequest
                             ) -> DuisResponse:
        try:
            return self._submit_request(request, record)
        except Exception as error:  # submit never raises
            if self._raise_internal_errors:
                raise
            return DuisResponse(
                INTERNAL_ERROR_CODE, self._clock(), request.request_id,
                request.service_reference, request.service_reference_variant,
                error_reason=f"the adapter failed while processing the request: {error!r}")

    @staticmethod
    def _record(request: DuisRequest) -> ServiceRequest:
        """The request's registry record, once its CommandVariant is checked (E12)."""
        record = SERVICE_REQUESTS.get(request.service_reference_variant)
        if record is None:
            raise S1spError(f"SR {request.service_reference_variant} is not supported")
        if request.command_variant not in record.command_variants:
            raise InvalidCommandVariantError(
                f"CommandVariant {request.command_variant} is not valid for SR "
                f"{record.service_reference_variant} {record.name} (valid: "
                f"{', '.join(str(v) for v in sorted(record.command_variants))})")
        return record

    def _process(self, request: DuisRequest, record: ServiceRequest) -> DuisResponse:
        if record.addressee is Addressee.DCC:
            device = DeviceEntry(request.request_id.target_eui64, DeviceType.MANAGEMENT,
                                 MANAGEMENT_SERVER_ADDRESS)
        else:
            device = self.resolve_device(request.request_id.target_eui64)
            valid = record.valid_device_types
            if device.device_type not in valid:
                raise WrongDeviceTypeError(
                    f"SR {record.service_reference_variant} {record.name} is not valid for "
                    f"device {format_eui64(device.device_eui64)}, a "
                    f"{device.device_type.name} (valid for: "
                    f"{', '.join(sorted(t.name for t in valid))})")
        channel = RequestIdKeyedChannel(self._channel, str(request.request_id))
        context = RuleContext(channel, device, self._annex_c, self._clock,
                              self.resolve_device, sent=self.last_sent)
        result = record.handler(context, request.body)
        return DuisResponse(SUCCESS, self._clock(), request.request_id,
                            request.service_reference, request.service_reference_variant,
                            result_name=f"{record.body_name}Response", result=tuple(result))

    def _error(self, request: DuisRequest, error: S1spError) -> DuisResponse:
        record = SERVICE_REQUESTS.get(request.service_reference_variant)
        result_name = (f"{record.body_name}Response" if error.result_items and record is not None
                       else None)
        return DuisResponse(error.response_code, self._clock(), request.request_id,
                            request.service_reference, request.service_reference_variant,
                            result_name=result_name, result=tuple(error.result_items),
                            error_reason=error.reason, device_status=error.device_status)

    # ----------------------------------------------------------------------------------------
    def refresh_device_directory(self) -> dict[bytes, DeviceEntry]:
        """Read the directory from the management logical device (E20/E21 on failure)."""
        try:
            response = self._channel.request(
                MANAGEMENT_SERVER_ADDRESS, Request(Command.READ_DEVICE_DIRECTORY, 0, body=Empty()))
        except (ApduError, LinkError) as error:
            raise device_communication_error(
                error, "the devices' management address (reading the device directory)"
            ) from None
        if response.status is not Status.SUCCESS:
            raise DeviceCommunicationError(
                f"the management device refused READ_DEVICE_DIRECTORY: {response.status.name}",
                CANNOT_COMMUNICATE_CODE)
        directory = {entry.device_eui64: DeviceEntry(entry.device_eui64, entry.device_type,
                                                     entry.server_address)
                     for entry in response.body.devices}
        self._directory = directory
        self._directory_read_this_request = True
        return dict(directory)

    def resolve_device(self, eui64: bytes) -> DeviceEntry:
        """The directory entry of ``eui64`` (a refresh on a miss unless the directory was
        already read for this request, then E19)."""
        if self._directory is None or (eui64 not in self._directory
                                       and not self._directory_read_this_request):
            self.refresh_device_directory()
        assert self._directory is not None
        entry = self._directory.get(eui64)
        if entry is None or entry.device_type is DeviceType.MANAGEMENT:
            raise UnknownDeviceError(
                f"no device {format_eui64(eui64)} is behind this link (known: "
                f"{', '.join(format_eui64(e) for e in self._directory) or 'none'})")
        return entry
