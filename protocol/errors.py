"""Typed errors raised by the protocol package.

Every error says, in words a user can act on, what was wrong with the bytes or the request.
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
    """The link to the device could not be brought up or was lost (DUIS E20)."""


class DeviceTimeoutError(LinkError):
    """The device did not answer within the retries allowed (DUIS E21)."""


class TransportError(ProtocolError):
    """A port could not be opened, read or written (absent device, refused connection...)."""


class TransportClosedError(TransportError):
    """The peer closed the connection or the port went away."""
