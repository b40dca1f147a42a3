"""Small builders of device answers shared by the world's parts (routing, scheduler,
management device): a SUCCESS response with its typed body, a refusal.

This module holds no state and does no I/O.
"""

from __future__ import annotations

from protocol.apdu import ApduBody, Request, Response, Status

__all__ = ["ok", "refuse"]


def ok(request: Request, body: ApduBody) -> Response:
    """SUCCESS with ``body`` (an instance of ``RESPONSE_BODY_TYPES[request.command]``)."""
    return Response(request.command, request.invoke_id, Status.SUCCESS, body=body)


def refuse(request: Request, status: Status) -> Response:
    """A refusal: ``status`` and no body."""
    return Response(request.command, request.invoke_id, status)
