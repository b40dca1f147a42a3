"""Request builders: a typed Python method per supported Service Request that returns the DUIS
request document, so a user's test never writes or edits DUIS XML by hand.

    builder = DuisRequestBuilder()                       # originator and RequestID counter
    xml = builder.update_meter_balance("00-DB-12-34-56-78-90-A1", adjust_pence=250)
    response = DuisResponse.from_xml(adapter.submit(xml))

The methods are made from the registry
(:data:`~protocol.s1sp.service_requests.SERVICE_REQUESTS`), one per record, named by its
``builder_name`` (``update_meter_balance`` for 1.5): each takes the target device (EUI-64 text
or 8 bytes; none for an SR addressed to the DCC, whose target is ``dcc_eui``), then the
parameters of the record's body writer (``write_body``, beside the SR's body parser in its
family module, sharing its element names), then ``execute_at`` when the SR is future-datable.
``help(DuisRequestBuilder.update_meter_balance)`` shows each signature.

What the methods take (*decided*):

- device IDs: EUI-64 text (``00-DB-12-34-56-78-90-A1``, any form :mod:`protocol.eui64`
  reads) or 8 bytes;
- money: ``int`` pence (the x1000 to DUIS's 1/100000 GBP is done by the writers, through
  :mod:`.units`), or :class:`DuisMoney` to send a raw DUIS value (e.g. 123456, to watch S1SR
  18.3 truncate it to 123 p);
- durations: ``int`` seconds or a ``timedelta`` of whole seconds; date-times: aware
  ``datetime`` (fractions of a second dropped, as the parser drops them);
- ``execute_at`` on the future-datable SRs (the registry's ``future_datable``): an aware
  datetime, or :data:`CANCEL_FUTURE_DATED` to cancel the one pending.

Every method returns the document as ``str`` (what :meth:`S1spAdapter.submit` and
``secure-emu send`` take; ``.encode()`` gives UTF-8 bytes), with a fresh RequestID
``originator:target:counter`` (the counter counts up from ``counter_start``). The
ServiceReference, ServiceReferenceVariant, CommandVariant (the record's
``default_command_variant``: 4 critical, 1 non-critical, 8 to the DCC) and body element name
come from the SR's record. The writers check types and what DUIS can carry (int32 money, the
device clock's range), never the S1SR rules: a request the S1SP will refuse (a 70000 W load
limit) is built as asked, so a test can watch it refused.

This module holds no knowledge of one SR, never talks to a device and never parses a response
(see :mod:`.responses`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import datetime
from xml.etree.ElementTree import Element, SubElement, indent, register_namespace, tostring

from protocol.s1sp.duis_xml import (
    DUIS_NAMESPACE,
    BodyItem,
    DuisMoney,
    Eui64,
    Money,
    eui64_element_text,
    write_empty_body,
)
from protocol.s1sp.service_requests import SERVICE_REQUESTS
from protocol.s1sp.service_requests.prepayment import PaymentDebtChange, TimeDebtChange
from protocol.s1sp.service_requests.record import Addressee, ServiceRequest
from protocol.s1sp.units import (
    CANCELLATION_DATE_TIME,
    DEVICE_TIME_MAX_SECONDS,
    datetime_to_device_seconds,
    datetime_to_duis_date_time,
)

__all__ = [
    "CANCEL_FUTURE_DATED",
    "DEFAULT_DCC_EUI",
    "DEFAULT_ORIGINATOR_EUI",
    "REQUEST_SCHEMA_VERSION",
    "DuisMoney",
    "DuisRequestBuilder",
    "Eui64",
    "Money",
    "PaymentDebtChange",
    "TimeDebtChange",
]

#: The DCC user the requests come from unless told otherwise (the fixtures' originator).
DEFAULT_ORIGINATOR_EUI = "90-B3-D5-1F-30-01-00-00"
#: The RequestID target of an SR addressed to the DCC (11.1; the fixtures' DCC).
DEFAULT_DCC_EUI = "90-B3-D5-1F-30-00-00-02"
#: The schemaVersion the built requests declare (the DCC templates' 5.x).
REQUEST_SCHEMA_VERSION = "5.4"
#: ``execute_at=CANCEL_FUTURE_DATED``: cancel the future-dated request of this SR pending on
#: the device (the DUIS cancellation date 3000-12-31).
CANCEL_FUTURE_DATED = CANCELLATION_DATE_TIME

register_namespace("sr", DUIS_NAMESPACE)


class DuisRequestBuilder:
    """Builds DUIS request documents from one originator, numbering their RequestIDs.

    ``originator_eui``: the DCC user (RequestID's first part); ``counter_start``: the first
    RequestID counter (each document built takes the next); ``dcc_eui``: the RequestID target
    of SRs addressed to the DCC (11.1). One method per supported SR, named after it (made
    from the registry, see the module docstring); each returns the document as ``str``."""

    def __init__(self, originator_eui: Eui64 = DEFAULT_ORIGINATOR_EUI, *,
                 counter_start: int = 1, dcc_eui: Eui64 = DEFAULT_DCC_EUI) -> None:
        if counter_start < 0:
            raise ValueError(f"counter_start {counter_start} is negative")
        self.originator_eui = eui64_element_text(originator_eui, "originator_eui")
        self.dcc_eui = eui64_element_text(dcc_eui, "dcc_eui")
        #: The RequestID counter the next document will carry.
        self.next_counter = counter_start

    def _build(self, variant: str, target: Eui64, items: list[BodyItem],
               execute_at: datetime | None = None) -> str:
        record = SERVICE_REQUESTS[variant]
        if record.addressee is Addressee.DCC:
            target = self.dcc_eui
        if execute_at is not None:
            if not record.future_datable:
                raise ValueError(f"SR {variant} {record.name} cannot be future-dated")
            items = [("ExecutionDateTime", _execution_text(execute_at)), *items]
        root = Element(_tag("Request"), {"schemaVersion": REQUEST_SCHEMA_VERSION})
        header = SubElement(root, _tag("Header"))
        counter = self.next_counter
        self.next_counter += 1
        request_id = f"{self.originator_eui}:{eui64_element_text(target, 'target')}:{counter}"
        for name, value in (("RequestID", request_id),
                            ("CommandVariant", str(record.default_command_variant)),
                            ("ServiceReference", record.service_reference),
                            ("ServiceReferenceVariant", variant)):
            SubElement(header, _tag(name)).text = value
        _add_items(SubElement(SubElement(root, _tag("Body")), _tag(record.body_name)), items)
        indent(root, space="  ")
        return ('<?xml version="1.0" encoding="UTF-8"?>\n'
                + tostring(root, encoding="unicode") + "\n")


def _builder_method(record: ServiceRequest) -> Callable[..., str]:
    """The :class:`DuisRequestBuilder` method of one record: target (unless the SR is for the
    DCC), the writer's parameters, ``execute_at`` (future-datable SRs)."""
    variant, write = record.service_reference_variant, record.write_body
    if record.addressee is Addressee.DCC:
        def method(self: DuisRequestBuilder, *args: object, **kwargs: object) -> str:
            return self._build(variant, self.dcc_eui, write(*args, **kwargs))
    elif record.future_datable:
        def method(self: DuisRequestBuilder, target: Eui64, *args: object,
                   execute_at: datetime | None = None, **kwargs: object) -> str:
            return self._build(variant, target, write(*args, **kwargs), execute_at)
    else:
        def method(self: DuisRequestBuilder, target: Eui64,
                   *args: object, **kwargs: object) -> str:
            return self._build(variant, target, write(*args, **kwargs))
    written = list(inspect.signature(write).parameters.values())
    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    if record.addressee is not Addressee.DCC:
        parameters.append(inspect.Parameter("target", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                            annotation="Eui64"))
    parameters += written
    if record.future_datable:
        parameters.append(inspect.Parameter("execute_at", keyword, default=None,
                                            annotation="datetime | None"))
    method.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        parameters, return_annotation="str")
    method.__name__ = record.builder_name
    method.__qualname__ = f"DuisRequestBuilder.{record.builder_name}"
    method.__doc__ = f"SR {variant} {record.name}." + (
        f" {inspect.cleandoc(write.__doc__)}"
        if write.__doc__ and write is not write_empty_body else "")
    return method


def _add_builder_methods() -> None:
    for record in SERVICE_REQUESTS.values():
        if hasattr(DuisRequestBuilder, record.builder_name):
            raise TypeError(f"SR {record.service_reference_variant}: DuisRequestBuilder "
                            f"already has {record.builder_name}")
        setattr(DuisRequestBuilder, record.builder_name, _builder_method(record))


def _execution_text(execute_at: datetime) -> str:
    """ExecutionDateTime text: the cancellation date, or a date-time the device clock holds."""
    text = datetime_to_duis_date_time(execute_at, "execute_at")
    if execute_at != CANCEL_FUTURE_DATED and not (
            0 <= datetime_to_device_seconds(execute_at) <= DEVICE_TIME_MAX_SECONDS):
        raise ValueError(f"execute_at {text} is outside the device clock's range "
                         "1970-01-01T00:00:00Z..2106-02-07T06:28:15Z (use "
                         "CANCEL_FUTURE_DATED to cancel)")
    return text


def _tag(local: str) -> str:
    return f"{{{DUIS_NAMESPACE}}}{local}"


def _add_items(parent: Element, items: list[BodyItem]) -> None:
    """``name@3`` makes ``<name index="3">``."""
    for name, value in items:
        name, _, index = name.partition("@")
        child = SubElement(parent, _tag(name), {"index": index} if index else {})
        if isinstance(value, list):
            _add_items(child, value)
        elif value is not None:
            child.text = value


_add_builder_methods()
