"""DUIS response XML built from the adapter's typed :class:`DuisResponse`.

Form (*decided* where DUIS leaves S1SP results open)::

    <sr:Response xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4">
      <sr:Header>
        <sr:RequestID>originatorEUI:targetEUI:counter</sr:RequestID>
        <sr:ResponseID>targetEUI:originatorEUI:counter</sr:ResponseID>
        <sr:ResponseCode>I0</sr:ResponseCode>
        <sr:ResponseDateTime>2026-11-29T05:25:12Z</sr:ResponseDateTime>
      </sr:Header>
      <sr:Body>
        <sr:ResponseMessage>
          <sr:ServiceReference>1.5</sr:ServiceReference>
          <sr:ServiceReferenceVariant>1.5</sr:ServiceReferenceVariant>
          <sr:UpdateMeterBalanceResponse> ...result elements... </sr:UpdateMeterBalanceResponse>
        </sr:ResponseMessage>
      </sr:Body>
    </sr:Response>

- The result element is ``<SR body name>Response``; its children use DUIS element names and
  DUIS units (money = pence x 1000, JoinTimePeriod = minutes x 60, date-times UTC ``Z``).
- An error response (any code but I0 / I99) has no result element, except an 11.1 that no
  device accepted, which keeps its per-device outcomes; ResponseMessage carries
  ``ErrorReason`` (words a user can act on) and, when the device refused, ``DeviceStatus``
  (the ``protocol.apdu.Status`` name).
- When the request was too broken to yield a RequestID, RequestID and ResponseID are omitted;
  when it yielded no SR, ServiceReference and ServiceReferenceVariant are omitted.
- Acknowledgement: :meth:`S1spAdapter.submit` returns the final response (I0 or an error
  code); :meth:`S1spAdapter.submit_acknowledged` returns the I99 acknowledgement (no body
  result) followed by that final response.

Reading a response in a test: ``DuisResponse.from_xml(xml)`` then the typed accessors, which
convert through :mod:`.units`: ``pence("MeterBalance")`` (int, whole pence),
``duis_money(...)``, ``integer(...)``, ``seconds("JoinTimePeriod")``,
``date_time("JoinWindowEndDateTime")`` (aware UTC datetime), ``boolean(...)``, ``text(...)``;
``group("TimeDebtRegister1")`` / ``groups("Device")`` for nested results, with the same
accessors. A missing element is a :class:`KeyError` naming the ones present.

Response codes: I99 acknowledged, I0 success, E11 SR not valid for the device type, E12 bad
CommandVariant, E19 unknown device, E20 cannot communicate, E21 no response; and ours:
``E-S1SR`` (:data:`~protocol.s1sp.errors.S1SR_REFUSAL_CODE`) refused by an S1SR rule or by the
device, ``E-INVALID`` (:data:`~protocol.s1sp.errors.INVALID_REQUEST_CODE`) not a valid
request, ``E-INTERNAL`` a fault inside the adapter.

This module only builds text; it never parses untrusted input and never talks to a device.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from xml.etree.ElementTree import Element, ParseError, SubElement, register_namespace, tostring

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as safe_fromstring

from protocol.s1sp.duis import DUIS_NAMESPACE, RequestId
from protocol.s1sp.rules import ResultItem, ResultValue
from protocol.s1sp.units import (
    duis_date_time_to_datetime,
    duis_money_to_whole_pence,
    parse_duis_integer,
)

__all__ = [
    "ACKNOWLEDGED",
    "RESPONSE_SCHEMA_VERSION",
    "SUCCESS",
    "DuisResponse",
    "ResultGroup",
    "TypedResult",
    "format_response_date_time",
]

ACKNOWLEDGED = "I99"
SUCCESS = "I0"
RESPONSE_SCHEMA_VERSION = "5.4"

register_namespace("sr", DUIS_NAMESPACE)


def format_response_date_time(moment: datetime) -> str:
    """UTC, whole seconds, ``Z``."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class TypedResult:
    """Typed reading of result elements (held in ``result``), shared by :class:`DuisResponse`
    and the nested :class:`ResultGroup`. Values may be text (read from XML) or already typed
    (a response built in process); both read the same."""

    result: tuple[ResultItem, ...]

    def _leaf(self, name: str) -> str | int | bool:
        for item_name, value in self.result:
            if item_name == name:
                if isinstance(value, list):
                    raise TypeError(f"{name} holds nested elements: read it with group()")
                return value
        present = ", ".join(item_name for item_name, _ in self.result) or "none"
        code, reason = self._answered()
        answered = "" if code is None else f"; the response is {code}" + (
            f": {reason}" if reason else "")
        raise KeyError(f"no result element {name} (present: {present}){answered}")

    def _answered(self) -> tuple[str | None, str | None]:
        """The response code and error reason a missing element's error names (a nested
        group has none)."""
        return None, None

    def text(self, name: str) -> str:
        """The element's text."""
        value = self._leaf(name)
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    def integer(self, name: str) -> int:
        """A whole-number element (W, counters, DUIS money as written)."""
        value = self._leaf(name)
        if isinstance(value, bool):
            raise TypeError(f"{name} is a boolean, not a number")
        return value if isinstance(value, int) else parse_duis_integer(value, name)

    def duis_money(self, name: str) -> int:
        """A money element in DUIS units (1/100000 GBP), unconverted."""
        return self.integer(name)

    def pence(self, name: str) -> int:
        """A money element in whole pence (a sub-penny value is a :class:`ValueError`)."""
        return duis_money_to_whole_pence(self.integer(name), name)

    def seconds(self, name: str) -> int:
        """A duration element (JoinTimePeriod, LoadLimitPeriod, ...) in seconds."""
        return self.integer(name)

    def date_time(self, name: str) -> datetime:
        """A date-time element as an aware UTC datetime."""
        return duis_date_time_to_datetime(self.text(name), name)

    def boolean(self, name: str) -> bool:
        """A true/false element."""
        value = self._leaf(name)
        if isinstance(value, bool):
            return value
        if str(value) not in ("true", "false", "1", "0"):
            raise ValueError(f"{name} {value!r} is not true or false")
        return str(value) in ("true", "1")

    def groups(self, name: str) -> list[ResultGroup]:
        """Every nested element called ``name`` (11.1's per-device ``Device`` outcomes)."""
        return [ResultGroup(item_name, tuple(value)) for item_name, value in self.result
                if item_name == name and isinstance(value, list)]

    def group(self, name: str) -> ResultGroup:
        """The one nested element called ``name`` (2.3's ``TimeDebtRegister1``...)."""
        found = self.groups(name)
        if len(found) != 1:
            raise KeyError(f"{len(found)} nested result elements {name}; expected one")
        return found[0]


@dataclass(frozen=True)
class ResultGroup(TypedResult):
    """A nested result element: its name and its children, read with the same accessors."""

    name: str
    result: tuple[ResultItem, ...]


@dataclass(frozen=True)
class DuisResponse(TypedResult):
    """One DUIS response, before it becomes XML (or read back from it with :meth:`from_xml`);
    the result values read typed through :class:`TypedResult`."""

    response_code: str
    response_date_time: datetime
    request_id: RequestId | None = None
    service_reference: str | None = None
    service_reference_variant: str | None = None
    result_name: str | None = None
    result: tuple[ResultItem, ...] = field(default_factory=tuple)
    error_reason: str | None = None
    device_status: str | None = None

    @property
    def ok(self) -> bool:
        return self.response_code in (SUCCESS, ACKNOWLEDGED)

    def _answered(self) -> tuple[str | None, str | None]:
        return self.response_code, self.error_reason

    def result_value(self, name: str) -> ResultValue | None:
        """The first top-level result element called ``name`` (None when absent)."""
        for item_name, value in self.result:
            if item_name == name:
                return value
        return None

    @classmethod
    def from_xml(cls, xml: bytes | str) -> DuisResponse:
        """Read back a response this module wrote (for head-end test code). Leaf values come
        back as text; nested elements as lists. Raises ValueError for anything else."""
        try:
            root = safe_fromstring(xml, forbid_dtd=True)
        except (ParseError, DefusedXmlException) as error:
            raise ValueError(f"not a DUIS response document: {error}") from None
        if root.tag != _tag("Response"):
            raise ValueError(f"root element is {root.tag}, not {_tag('Response')}")

        def text(path: str) -> str | None:
            return root.findtext(path, namespaces={"sr": DUIS_NAMESPACE})

        code = text("sr:Header/sr:ResponseCode")
        stamp = text("sr:Header/sr:ResponseDateTime")
        if code is None or stamp is None:
            raise ValueError("response has no ResponseCode or ResponseDateTime")
        request_id_text = text("sr:Header/sr:RequestID")
        message = root.find("sr:Body/sr:ResponseMessage", {"sr": DUIS_NAMESPACE})
        known = {_tag(name) for name in ("ServiceReference", "ServiceReferenceVariant",
                                         "ErrorReason", "DeviceStatus")}
        result_element = None if message is None else next(
            (child for child in message if child.tag not in known), None)
        return cls(
            response_code=code,
            response_date_time=datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(
                tzinfo=timezone.utc),
            request_id=None if request_id_text is None else RequestId.parse(request_id_text),
            service_reference=text("sr:Body/sr:ResponseMessage/sr:ServiceReference"),
            service_reference_variant=text(
                "sr:Body/sr:ResponseMessage/sr:ServiceReferenceVariant"),
            result_name=None if result_element is None else _local_name(result_element.tag),
            result=() if result_element is None else tuple(_read_items(result_element)),
            error_reason=text("sr:Body/sr:ResponseMessage/sr:ErrorReason"),
            device_status=text("sr:Body/sr:ResponseMessage/sr:DeviceStatus"))

    def to_xml(self) -> str:
        """The response document (UTF-8 XML declaration included)."""
        root = Element(_tag("Response"), {"schemaVersion": RESPONSE_SCHEMA_VERSION})
        header = SubElement(root, _tag("Header"))
        if self.request_id is not None:
            _leaf(header, "RequestID", str(self.request_id))
            _leaf(header, "ResponseID", self.request_id.response_id())
        _leaf(header, "ResponseCode", self.response_code)
        _leaf(header, "ResponseDateTime", format_response_date_time(self.response_date_time))
        message = SubElement(SubElement(root, _tag("Body")), _tag("ResponseMessage"))
        if self.service_reference is not None:
            _leaf(message, "ServiceReference", self.service_reference)
        if self.service_reference_variant is not None:
            _leaf(message, "ServiceReferenceVariant", self.service_reference_variant)
        if self.error_reason is not None:
            _leaf(message, "ErrorReason", self.error_reason)
        if self.device_status is not None:
            _leaf(message, "DeviceStatus", self.device_status)
        if self.result_name is not None and (self.ok or self.result):
            _items(SubElement(message, _tag(self.result_name)), self.result)
        text = tostring(root, encoding="unicode")
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + text + "\n"


def _tag(local: str) -> str:
    return f"{{{DUIS_NAMESPACE}}}{local}"


def _leaf(parent: Element, local: str, text: str) -> None:
    SubElement(parent, _tag(local)).text = text


def _local_name(tag: str) -> str:
    return tag.rpartition("}")[2]


def _read_items(parent: Element) -> list[ResultItem]:
    items: list[ResultItem] = []
    for child in parent:
        if len(child):
            items.append((_local_name(child.tag), _read_items(child)))
        else:
            items.append((_local_name(child.tag), child.text or ""))
    return items


def _items(parent: Element, items: tuple[ResultItem, ...] | list[ResultItem]) -> None:
    for name, value in items:
        if isinstance(value, list):
            _items(SubElement(parent, _tag(name)), value)
        elif isinstance(value, bool):
            _leaf(parent, name, "true" if value else "false")
        else:
            _leaf(parent, name, str(value))
