"""Exactly-once for keyed requests: what each device keeps of the requests it applied.

A keyed request (``protocol.apdu.Request.idempotency_key``) that changed or could change a
device is remembered on that device with a digest of its command and body and the response it
gave; the world commits them with the change in one transaction. A resend with a known key is
answered with the stored response (this request's invoke id) and changes nothing; the same key
with another request is IDEMPOTENCY_KEY_REUSED. A device keeps its last
``MAX_APPLIED_REQUESTS`` keys (the oldest is dropped first; docs/protocol.md section 7).

This module never reads a clock and never does I/O.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from emulator.answers import refuse
from emulator.device import EmulatedDevice
from protocol.apdu import Request, Response, Status, decode_apdu, encode_request, encode_response

__all__ = ["MAX_APPLIED_REQUESTS", "AppliedRequest", "known_response", "remember"]

#: Keyed requests a device remembers (*decided*: 64, about 5 KiB per busy device at most).
MAX_APPLIED_REQUESTS = 64


@dataclass(frozen=True)
class AppliedRequest:
    """A keyed request a device applied: what it was (a digest) and what it answered."""

    request_digest: bytes
    response_apdu: bytes


def request_digest(request: Request) -> bytes:
    """16 bytes naming the request's command and body (not its invoke id or key)."""
    unkeyed = Request(request.command, 0, body=request.body)
    return hashlib.sha256(encode_request(unkeyed)).digest()[:16]


def known_response(device: EmulatedDevice, request: Request) -> Response | None:
    """The answer to a resend of a request ``device`` applied with this key (None if the key is
    new): the stored response with this request's invoke id, or IDEMPOTENCY_KEY_REUSED."""
    key = request.idempotency_key
    applied = device.applied_requests.get(key) if key is not None else None
    if applied is None:
        return None
    if applied.request_digest != request_digest(request):
        return refuse(request, Status.IDEMPOTENCY_KEY_REUSED)
    stored = decode_apdu(applied.response_apdu)
    assert isinstance(stored, Response)
    return Response(stored.command, request.invoke_id, stored.status,
                    body=stored.body if stored.ok else None)


def remember(device: EmulatedDevice, request: Request, response: Response) -> None:
    """Keep a keyed request's response on ``device`` (the last MAX_APPLIED_REQUESTS)."""
    key = request.idempotency_key
    if key is None:
        return
    applied = device.applied_requests
    applied[key] = AppliedRequest(request_digest(request), encode_response(response))
    while len(applied) > MAX_APPLIED_REQUESTS:
        del applied[next(iter(applied))]
