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
    """The link to the device could not be brought up or was lost."""


class DeviceTimeoutError(LinkError):
    """The link is up but the device did not answer within the retries allowed."""


class TransportError(ProtocolError):
    """A port could not be opened, read or written (absent device, refused connection...)."""


class TransportClosedError(TransportError):
    """The peer closed the connection or the port went away."""
