"""The shape of one Service Request record: everything the S1SP knows about one SR variant.

A record is complete when built (checked in ``__post_init__``): the family modules
(:mod:`.prepayment`, :mod:`.supply`, ...) each hold their records, and
:mod:`protocol.s1sp.service_requests` gathers them into the one registry.

This module holds no SR itself and never talks to a device.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element

from protocol.apdu import DeviceType
from protocol.s1sp.duis_xml import BodyWriter, EmptyBody, SrBody, write_empty_body
from protocol.s1sp.rules import ResultItem, RuleContext

__all__ = [
    "ANY_DEVICE",
    "COMMS_HUB",
    "CRITICAL_VARIANTS",
    "ELECTRICITY_METER",
    "GAS_PROXY",
    "METERS",
    "NON_CRITICAL_VARIANTS",
    "NON_DEVICE_VARIANTS",
    "Addressee",
    "BodyParser",
    "Handler",
    "ServiceRequest",
    "parse_empty_body",
]

#: DUIS CommandVariants: 1-3 non-critical SRs to a device, 4-6 critical ones, 8 non-device.
#: Which SRs are critical follows the GBCS use cases (SME.C.C) behind them.
NON_CRITICAL_VARIANTS = frozenset({1, 2, 3})
CRITICAL_VARIANTS = frozenset({4, 5, 6})
NON_DEVICE_VARIANTS = frozenset({8})

#: Device-type sets an SR may be valid for (anything else is DUIS E11).
METERS = frozenset({DeviceType.ELECTRICITY_METER, DeviceType.GAS_METER})
ELECTRICITY_METER = frozenset({DeviceType.ELECTRICITY_METER})
COMMS_HUB = frozenset({DeviceType.COMMS_HUB})
#: The comms hub's gas proxy function (the templates' -A3): gas reads only.
GAS_PROXY = frozenset({DeviceType.GAS_PROXY_FUNCTION})
ANY_DEVICE = METERS | COMMS_HUB | GAS_PROXY | frozenset({DeviceType.PPMID})

#: ``parse_body(body_element, body_element_name) -> typed body``
BodyParser = Callable[[Element, str], SrBody]
#: ``handler(context, typed body) -> DUIS result items``
Handler = Callable[[RuleContext, Any], list[ResultItem]]

_VARIANT = re.compile(r"[0-9]+(\.[0-9]+){1,2}")


class Addressee(enum.Enum):
    """Who an SR is for: the device named in the RequestID, or the DCC (11.1: its devices
    are listed in the body)."""

    DEVICE = "device"
    DCC = "DCC"


def parse_empty_body(body: Element, where: str) -> SrBody:
    """The parser of an SR whose body carries no parameters."""
    return EmptyBody()


@dataclass(frozen=True)
class ServiceRequest:
    """One SR variant: what it looks like in DUIS and how the S1SP carries it out.

    ``body_names``: the first is the canonical name, used in responses. ``critical``: the
    GBCS use case behind it is critical (the CommandVariant a requester normally uses is 4,
    else 1; a DCC-addressed SR uses 8). ``future_datable``: the body may carry an
    ExecutionDateTime, read by :func:`protocol.s1sp.duis.parse_duis_request` into the body's
    ``execution`` field and scheduled on the device by
    :meth:`~protocol.s1sp.rules.RuleContext.send_possibly_future_dated`; for any other SR an
    ExecutionDateTime is not read. ``write_body``: the body writer, beside the parser and
    sharing its element names: Python values (pence, seconds, aware datetimes) -> the body's
    elements (an ExecutionDateTime aside); :class:`protocol.s1sp.builders.DuisRequestBuilder`
    offers it as the method ``builder_name`` (by default the name in snake_case: Read Meter
    Balance -> ``read_meter_balance``), taking the target device first unless the SR is
    addressed to the DCC, and ``execute_at`` when it is future-datable."""

    service_reference_variant: str
    name: str
    body_names: tuple[str, ...]
    command_variants: frozenset[int]
    critical: bool
    valid_device_types: frozenset[DeviceType]
    handler: Handler
    parse_body: BodyParser = parse_empty_body
    future_datable: bool = False
    addressee: Addressee = Addressee.DEVICE
    write_body: BodyWriter = write_empty_body
    builder_name: str = ""

    def __post_init__(self) -> None:
        where = f"SR {self.service_reference_variant!r}"
        if not self.builder_name:
            object.__setattr__(self, "builder_name",
                               re.sub(r"[^a-z0-9]+", "_", self.name.lower()).strip("_"))
        if not self.builder_name.isidentifier() or self.builder_name.startswith("_"):
            raise ValueError(f"{where}: builder name {self.builder_name!r} is not a public "
                             "method name")
        if not _VARIANT.fullmatch(self.service_reference_variant):
            raise ValueError(f"{where}: not a ServiceReferenceVariant such as 6.4.1")
        if not self.name or not self.body_names or not all(self.body_names):
            raise ValueError(f"{where}: a name and at least one body element name are needed")
        allowed = NON_CRITICAL_VARIANTS | CRITICAL_VARIANTS | NON_DEVICE_VARIANTS
        if not self.command_variants or not self.command_variants <= allowed:
            raise ValueError(f"{where}: CommandVariants must be among {sorted(allowed)}")
        if self.addressee is Addressee.DCC:
            misplaced = self.command_variants != NON_DEVICE_VARIANTS
        else:
            misplaced = bool(self.command_variants & NON_DEVICE_VARIANTS)
        if misplaced:
            raise ValueError(f"{where}: CommandVariant 8 is for, and only for, DCC-addressed SRs")
        if self.default_command_variant not in self.command_variants:
            raise ValueError(f"{where}: its usual CommandVariant "
                             f"{self.default_command_variant} is not allowed")
        if not self.valid_device_types:
            raise ValueError(f"{where}: it must be valid for at least one device type")
        if not all(map(callable, (self.handler, self.parse_body, self.write_body))):
            raise ValueError(f"{where}: its handler, body parser and body writer must be "
                             "callables")

    @property
    def service_reference(self) -> str:
        return ".".join(self.service_reference_variant.split(".")[:2])

    @property
    def body_name(self) -> str:
        return self.body_names[0]

    @property
    def default_command_variant(self) -> int:
        """The CommandVariant a requester normally sends: 8 to the DCC, 4 critical, else 1."""
        if self.addressee is Addressee.DCC:
            return min(NON_DEVICE_VARIANTS)
        return min(CRITICAL_VARIANTS if self.critical else NON_CRITICAL_VARIANTS)
