"""Typed errors raised by the protocol package.

Every error says, in words a user can act on, what was wrong with the bytes or the request.
These are wire facts only: this module must never know the DUIS response codes an adapter
maps them to.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base class of every error raised by :mod:`protocol`."""


class FrameError(ProtocolError):
    """A link frame could not be encoded or decoded (bad flag, length, address, CRC)."""


class ApduError(ProtocolError):
    """An application message (APDU) could not be encoded or decoded."""


class LinkError(ProtocolError):
    """The link state machine was asked to do something its state does not allow."""


class DeviceUnreachableError(LinkError):
    """The link to the device could not be brought up or was lost. Unless the error is also a
    :class:`RequestOutcomeUnknownError` (:class:`LinkDroppedError`), nothing of the request was
    sent, so the device did not apply it."""


class RequestOutcomeUnknownError(LinkError):
    """The request went on the wire (at least one of its frames was written) and no answer
    came: the device may or may not have applied it. Read before resending; resending
    ``request`` (the request as sent, with its idempotency key) is safe on a device that keeps
    keys (docs/protocol.md section 7): it is applied at most once."""

    def __init__(self, message: str, *, request: object = None,
                 server_address: int | None = None) -> None:
        super().__init__(message)
        #: the request as sent (a ``protocol.apdu.Request``, idempotency key included), or None
        self.request = request
        self.server_address = server_address


class DeviceTimeoutError(RequestOutcomeUnknownError):
    """The link is up, the request was sent, but the device did not answer within the
    retries allowed (outcome unknown)."""


class LinkDroppedError(RequestOutcomeUnknownError, DeviceUnreachableError):
    """The request was sent, then the link went away (the device answered DM, or the port or
    connection closed) before an answer came: outcome unknown, and the next request
    reconnects."""


class TransportError(ProtocolError):
    """A port could not be opened, read or written (absent device, refused connection...)."""


class TransportClosedError(TransportError):
    """The peer closed the connection or the port went away."""
