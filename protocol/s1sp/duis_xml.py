"""DUIS XML helpers shared by the request parser and the Service Request body parsers and
writers.

Reading: element lookup by local name in :data:`DUIS_NAMESPACE` (at any depth, see :mod:`.duis`
for the tolerance decided), typed leaf values (integers, DUIS money, booleans, EUI-64s), the
future-dated :class:`Execution` and :class:`SrBody`, the base of every typed body. Every
problem is an :class:`~protocol.s1sp.errors.InvalidRequestError` naming the element.

Writing (the body writers beside the parsers, used by :mod:`.builders`): :data:`BodyItem`, the
element texts of Python values (:func:`money_text` for pence or :class:`DuisMoney`,
:func:`seconds_text`, :func:`boolean_text`, :func:`eui64_element_text`).

This module never loads a document (see :func:`.duis.parse_duis_request`), never talks to a
device and converts no units itself (see :mod:`.units`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from xml.etree.ElementTree import Element

from protocol import eui64 as eui64_text
from protocol.s1sp.errors import InvalidRequestError
from protocol.s1sp.units import (
    duis_date_time_to_device_seconds,
    duis_money_to_pence,
    duration_to_seconds,
    is_cancellation_date_time,
    parse_duis_integer,
    pence_to_request_duis_money,
)

__all__ = [
    "DUIS_NAMESPACE",
    "XMLDSIG_NAMESPACE",
    "BodyItem",
    "BodyWriter",
    "DuisMoney",
    "EmptyBody",
    "Eui64",
    "Execution",
    "Money",
    "SrBody",
    "boolean",
    "boolean_text",
    "duis_children",
    "duis_money",
    "element_eui64",
    "eui64_element_text",
    "find",
    "find_all",
    "local_name",
    "money_text",
    "optional_integer",
    "parse_execution",
    "seconds_text",
    "text",
    "write_empty_body",
]

DUIS_NAMESPACE = "http://www.dccinterface.co.uk/ServiceUserGateway"
XMLDSIG_NAMESPACE = "http://www.w3.org/2000/09/xmldsig#"

_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


@dataclass(frozen=True)
class SrBody:
    """Base of every parsed Service Request body."""


@dataclass(frozen=True)
class EmptyBody(SrBody):
    """An SR whose body carries no parameters."""


@dataclass(frozen=True)
class Execution:
    """A future-dated request's ExecutionDateTime, or its cancellation form."""

    text: str
    execution_time_seconds: int | None  # None for the cancellation form
    cancel: bool = False


def local_name(tag: Any) -> tuple[str | None, str]:
    """``{namespace}local`` -> (namespace, local); (None, "") for comments and the like."""
    if not isinstance(tag, str):
        return None, ""
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return None, tag


def duis_children(element: Element) -> Iterator[Element]:
    """The children of ``element`` in the DUIS namespace."""
    for child in element:
        namespace, _ = local_name(child.tag)
        if namespace == DUIS_NAMESPACE:
            yield child


def find_all(element: Element, name: str) -> list[Element]:
    """Descendants in the DUIS namespace with local name ``name``."""
    return [node for node in element.iter(f"{{{DUIS_NAMESPACE}}}{name}") if node is not element]


def find(element: Element, name: str, *, required: bool, where: str) -> Element | None:
    """The one descendant called ``name`` (None when absent and not required)."""
    found = find_all(element, name)
    if len(found) > 1:
        raise InvalidRequestError(f"{where} has {len(found)} {name} elements; expected one")
    if not found:
        if required:
            raise InvalidRequestError(f"{where} is missing its {name} element")
        return None
    return found[0]


def text(element: Element, name: str, where: str) -> str:
    """The stripped text of the required descendant ``name``."""
    node = find(element, name, required=True, where=where)
    assert node is not None
    return (node.text or "").strip()


def duis_money(value_text: str | None, name: str) -> int:
    """A DUIS money value (1/100000 GBP): an integer within int32, checked at parse time so
    that nothing is sent for an out-of-range value."""
    value = parse_duis_integer(value_text, name)
    duis_money_to_pence(value, name)  # raises InvalidRequestError outside int32
    return value


def optional_integer(element: Element, name: str, where: str, default: int) -> int:
    node = find(element, name, required=False, where=where)
    return default if node is None else parse_duis_integer(node.text, name)


def boolean(element: Element, name: str, where: str, default: bool = False) -> bool:
    node = find(element, name, required=False, where=where)
    if node is None:
        return default
    value_text = (node.text or "").strip()
    if value_text not in _BOOLEANS:
        raise InvalidRequestError(f"{name} must be true or false, not {value_text!r}")
    return _BOOLEANS[value_text]


def element_eui64(value_text: str | None, element_name: str) -> bytes:
    """An element's EUI-64 text (:mod:`protocol.eui64`, the one text form) as 8 bytes."""
    try:
        return eui64_text.parse_eui64((value_text or "").strip())
    except ValueError as error:
        raise InvalidRequestError(f"{element_name} {error}") from None


def parse_execution(body: Element, where: str) -> Execution | None:
    """The body's ExecutionDateTime (None when absent): read only for future-datable SRs."""
    node = find(body, "ExecutionDateTime", required=False, where=where)
    if node is None:
        return None
    value_text = (node.text or "").strip()
    if is_cancellation_date_time(value_text):
        return Execution(value_text, None, cancel=True)
    return Execution(value_text, duis_date_time_to_device_seconds(value_text))


# --------------------------------------------------------------------------------------------
# Writing: what the body writers of the family modules return
# --------------------------------------------------------------------------------------------

#: A body element to write: (element name, text | nested elements | None for an empty one);
#: ``name@3`` writes ``<name index="3">``.
BodyItem = tuple[str, "str | list[BodyItem] | None"]
#: ``write_body(*parameters) -> the body's elements``: an SR's body writer, beside its parser;
#: its parameters are Python values (pence, seconds, aware datetimes, EUI-64s).
BodyWriter = Callable[..., list[BodyItem]]


@dataclass(frozen=True)
class DuisMoney:
    """A money value already in DUIS units (1/100000 GBP), sent unchanged: for the sub-penny
    values whose truncation a test wants to see. A plain ``int`` is always pence."""

    value: int


#: Money parameters of a body writer: ``int`` pence, or :class:`DuisMoney`.
Money = int | DuisMoney
#: Device IDs a body writer takes: EUI-64 text or 8 bytes.
Eui64 = str | bytes


def write_empty_body() -> list[BodyItem]:
    """The writer of an SR whose body carries no parameters."""
    return []


def money_text(value: Money, element_name: str) -> str:
    """Pence (x 1000) or a raw :class:`DuisMoney` as the element's text."""
    if isinstance(value, DuisMoney):
        return str(value.value)
    return str(pence_to_request_duis_money(value, element_name))


def seconds_text(duration: int | timedelta, element_name: str) -> str:
    return str(duration_to_seconds(duration, element_name))


def boolean_text(value: bool) -> str:
    return "true" if value else "false"


def eui64_element_text(eui64: Eui64, what: str) -> str:
    """EUI-64 text or bytes -> the one text form (:mod:`protocol.eui64`); a ValueError naming
    ``what``."""
    try:
        if isinstance(eui64, (bytes, bytearray)):
            return eui64_text.format_eui64(bytes(eui64))
        return eui64_text.format_eui64(eui64_text.parse_eui64(eui64))
    except ValueError as error:
        raise ValueError(f"{what}: {error}") from None
