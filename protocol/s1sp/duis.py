"""DUIS Service Request parsing: untrusted XML in, typed :class:`DuisRequest` out.

Input is untrusted. It is parsed with ``defusedxml`` with DTDs forbidden, so no external
entity, no entity expansion (billion laughs) and no DTD of any kind is accepted; a document
larger than :data:`MAX_REQUEST_BYTES` (1 MiB, enough for an 11.1 firmware image of about
700 KiB in base64) is refused before parsing. Every problem is an
:class:`~protocol.s1sp.errors.InvalidRequestError` with a reason a user can act on.

Structure (following the DCC's published DUIS request templates, schemaVersion 5.x):
root ``sr:Request`` in :data:`DUIS_NAMESPACE`; ``sr:Header`` with ``RequestID``
(``originatorEUI:targetEUI:counter``), ``CommandVariant``, ``ServiceReference``,
``ServiceReferenceVariant``; ``sr:Body`` with one element named after the SR; an enveloped
``ds:Signature`` may follow the body and is ignored (never required, never checked).

Tolerance (*decided*): inside the body, parameters are found by local name in the DUIS
namespace at any depth, so optional wrappers (``PrepaymentMode`` / ``CreditMode`` in 1.5,
``AddDeviceToCHFWhitelist`` in 8.11, per-fuel wrappers in 2.1) are accepted.

The SR is looked up in the registry (:data:`protocol.s1sp.service_requests.SERVICE_REQUESTS`);
its record's body parser reads the body (the body parameter names of each SR are described in
its family module), and for a record marked ``future_datable`` the ExecutionDateTime is read
into the body's ``execution`` (for any other SR it is not read).

This module never talks to a device and never converts units (see :mod:`.units`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as safe_fromstring

from protocol.eui64 import format_eui64
from protocol.s1sp.duis_xml import (
    DUIS_NAMESPACE,
    XMLDSIG_NAMESPACE,
    EmptyBody,
    SrBody,
    duis_children,
    element_eui64,
    find,
    local_name,
    parse_execution,
    text,
)
from protocol.s1sp.errors import InvalidRequestError
from protocol.s1sp.service_requests import SERVICE_REQUESTS
from protocol.s1sp.units import parse_duis_integer

__all__ = [
    "DUIS_NAMESPACE",
    "MAX_REQUEST_BYTES",
    "XMLDSIG_NAMESPACE",
    "DuisRequest",
    "RequestId",
    "parse_duis_request",
    "parse_request_id_leniently",
]

#: Largest request document accepted, in bytes (UTF-8 when given as text).
MAX_REQUEST_BYTES = 1024 * 1024


# --------------------------------------------------------------------------------------------
# Header
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestId:
    """``originatorEUI:targetEUI:counter``."""

    originator_eui64: bytes
    target_eui64: bytes
    counter: int

    @classmethod
    def parse(cls, text: str | None) -> RequestId:
        parts = (text or "").strip().split(":")
        if len(parts) != 3:
            raise InvalidRequestError(
                f"RequestID {text!r} is not originatorEUI:targetEUI:counter")
        counter = parse_duis_integer(parts[2], "RequestID counter")
        if counter < 0:
            raise InvalidRequestError(f"RequestID counter {counter} is negative")
        return cls(element_eui64(parts[0], "RequestID originator"),
                   element_eui64(parts[1], "RequestID target"), counter)

    def __str__(self) -> str:
        return (f"{format_eui64(self.originator_eui64)}:{format_eui64(self.target_eui64)}:"
                f"{self.counter}")

    def response_id(self) -> str:
        """``targetEUI:originatorEUI:counter``: the ResponseID answering this request."""
        return (f"{format_eui64(self.target_eui64)}:{format_eui64(self.originator_eui64)}:"
                f"{self.counter}")


@dataclass(frozen=True)
class DuisRequest:
    """One DUIS Service Request, parsed: ``body`` is the typed body its record's parser made."""

    request_id: RequestId
    command_variant: int
    service_reference: str
    service_reference_variant: str
    body: SrBody = field(default_factory=EmptyBody)


# --------------------------------------------------------------------------------------------
# The document
# --------------------------------------------------------------------------------------------


def _load_root(xml: bytes | str) -> Element:
    try:
        data = xml.encode("utf-8") if isinstance(xml, str) else bytes(xml)
    except (UnicodeError, TypeError, ValueError) as error:
        raise InvalidRequestError(
            f"request cannot be read as UTF-8 text: {error} (a lone surrogate or a character "
            "that is not Unicode text)") from None
    if len(data) > MAX_REQUEST_BYTES:
        raise InvalidRequestError(
            f"request of {len(data)} bytes is larger than the {MAX_REQUEST_BYTES}-byte limit")
    if not data.strip():
        raise InvalidRequestError("request is empty")
    try:
        root = safe_fromstring(data, forbid_dtd=True, forbid_entities=True,
                                   forbid_external=True)
    except DefusedXmlException as error:
        raise InvalidRequestError(
            f"request refused: it declares a DTD or entities ({type(error).__name__}); "
            "DUIS requests never need one") from None
    except ParseError as error:
        raise InvalidRequestError(f"request is not well-formed XML: {error}") from None
    except (ValueError, LookupError) as error:  # LookupError: an unknown declared encoding
        raise InvalidRequestError(f"request cannot be read as XML: {error}") from None
    return root


def parse_request_id_leniently(xml: bytes | str) -> RequestId | None:
    """The RequestID of a document that may be invalid otherwise, or None (used to address
    an error response as well as possible)."""
    try:
        root = _load_root(xml)
        node = find(root, "RequestID", required=False, where="Request")
        return None if node is None else RequestId.parse(node.text)
    except InvalidRequestError:
        return None


def parse_duis_request(xml: bytes | str) -> DuisRequest:
    """Parse one DUIS request document; :class:`InvalidRequestError` says what is wrong."""
    root = _load_root(xml)
    namespace, local = local_name(root.tag)
    if local != "Request" or namespace != DUIS_NAMESPACE:
        raise InvalidRequestError(
            f"root element is {{{namespace or ''}}}{local}; expected Request in namespace "
            f"{DUIS_NAMESPACE}")
    children = {(local_name(child.tag)[1]): child for child in duis_children(root)}
    header = children.get("Header")
    body_wrapper = children.get("Body")
    if header is None:
        raise InvalidRequestError("request has no Header element in the DUIS namespace")
    if body_wrapper is None:
        raise InvalidRequestError("request has no Body element in the DUIS namespace")
    request_id = RequestId.parse(text(header, "RequestID", "Header"))
    command_variant = parse_duis_integer(text(header, "CommandVariant", "Header"),
                                         "CommandVariant")
    service_reference = text(header, "ServiceReference", "Header")
    variant = text(header, "ServiceReferenceVariant", "Header")
    record = SERVICE_REQUESTS.get(variant)
    if record is None:
        raise InvalidRequestError(
            f"ServiceReferenceVariant {variant!r} is not a Service Request this S1SP supports "
            f"(supported: {', '.join(SERVICE_REQUESTS)})")
    if service_reference != record.service_reference:
        raise InvalidRequestError(
            f"ServiceReference {service_reference!r} does not match ServiceReferenceVariant "
            f"{variant!r} (expected {record.service_reference!r})")
    bodies = list(duis_children(body_wrapper))
    if len(bodies) != 1:
        raise InvalidRequestError(f"Body must hold exactly one element, not {len(bodies)}")
    body_name = local_name(bodies[0].tag)[1]
    if body_name not in record.body_names:
        raise InvalidRequestError(
            f"Body element {body_name} does not match ServiceReferenceVariant {variant} "
            f"(expected {record.body_name})")
    body = record.parse_body(bodies[0], body_name)
    if record.future_datable:
        body = replace(body, execution=parse_execution(bodies[0], body_name))
    return DuisRequest(request_id, command_variant, service_reference, variant, body)
