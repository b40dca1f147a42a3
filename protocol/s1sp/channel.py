"""How the S1SP adapter reaches devices: the ``DeviceChannel`` protocol and an in-process channel.

``DeviceChannel.request(server_address, request) -> Response`` is the one operation the adapter
needs. Implementations raise :class:`~protocol.errors.DeviceUnreachableError` when the device
cannot be reached and :class:`~protocol.errors.DeviceTimeoutError` when it did not answer (the
adapter maps them to DUIS codes in :mod:`protocol.s1sp.errors`).
:class:`protocol.client.DeviceClient` is the link-backed implementation; :class:`InProcessChannel`
drives an APDU handler in the same process (for example
``emulator.world.EmulatedWorld.handle_apdu``), encoding and decoding real APDU bytes so that
every exchange goes through the wire format.

This module does no I/O and never sleeps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from protocol.apdu import InvokeIdCounter, Request, Response, decode_apdu, encode_request
from protocol.errors import ApduError, DeviceUnreachableError

__all__ = ["ApduHandler", "DeviceChannel", "InProcessChannel"]

#: ``handle_apdu(server_address, request_apdu_bytes) -> response_apdu_bytes``; ``None`` means
#: no device answers at that address.
ApduHandler = Callable[[int, bytes], "bytes | None"]


class DeviceChannel(Protocol):
    """Request/response exchange with the device at one server address."""

    def request(self, server_address: int, request: Request) -> Response:
        """Send ``request`` and return the device's response (with the request's invoke id).

        Raises DeviceUnreachableError or DeviceTimeoutError."""
        ...


class InProcessChannel:
    """A :class:`DeviceChannel` over an in-process APDU handler.

    Each request gets a fresh invoke id from a counter (1..65535, wrapping); the response must
    carry the same invoke id and command, else the exchange is treated as a device that cannot
    be understood (:class:`DeviceUnreachableError`). The caller's own invoke id is put back on
    the response handed back.
    """

    def __init__(self, handle_apdu: ApduHandler) -> None:
        self._handle_apdu = handle_apdu
        self._invoke_ids = InvokeIdCounter()
        #: every (server_address, request bytes, response bytes or None), oldest first
        self.exchanges: list[tuple[int, bytes, bytes | None]] = []

    def request(self, server_address: int, request: Request) -> Response:
        invoke_id = self._invoke_ids.take()
        apdu = encode_request(Request(request.command, invoke_id, body=request.body))
        answer = self._handle_apdu(server_address, apdu)
        self.exchanges.append((server_address, apdu, answer))
        if answer is None:
            raise DeviceUnreachableError(
                f"no device answers at server address {server_address}")
        try:
            response = decode_apdu(answer)
        except ApduError as error:
            raise DeviceUnreachableError(
                f"the device at server address {server_address} sent an APDU that cannot be "
                f"decoded: {error}") from error
        if not isinstance(response, Response):
            raise DeviceUnreachableError(
                f"the device at server address {server_address} answered with a request APDU")
        if response.invoke_id != invoke_id or response.command != request.command:
            raise DeviceUnreachableError(
                f"the device at server address {server_address} answered invoke id "
                f"{response.invoke_id} ({response.command.name}) to invoke id {invoke_id} "
                f"({request.command.name})")
        return Response(response.command, request.invoke_id, response.status,
                        body=response.body)
