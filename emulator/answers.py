"""Small builders of device answers shared by the world's parts (routing, scheduler,
management device): a SUCCESS response, a refusal, a checked whole-number request field.

This module holds no state and does no I/O.
"""

from __future__ import annotations

from typing import Any

from protocol.apdu import Request, Response, Status

__all__ = ["ok", "refuse", "whole"]


def ok(request: Request, fields: dict[str, Any]) -> Response:
    """SUCCESS with ``fields``."""
    return Response(request.command, request.invoke_id, Status.SUCCESS, fields)


def refuse(request: Request, status: Status) -> Response:
    """A refusal: ``status`` and no fields."""
    return Response(request.command, request.invoke_id, status)


def whole(value: Any, maximum: int) -> int:
    """``value`` if it is a whole number 0..maximum; ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise ValueError(f"{value!r} is not a whole number 0..{maximum}")
    return value
