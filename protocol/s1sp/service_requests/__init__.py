"""The registry of Service Requests: one :class:`ServiceRequest` record per SR variant.

:data:`SERVICE_REQUESTS` maps each ServiceReferenceVariant to its record and is the only list
of SRs: the parser (:func:`protocol.s1sp.duis.parse_duis_request`), the adapter and the demo
read it and nothing else. It is built from the family modules, each holding its SRs' typed
bodies, body parsers, handlers and records side by side; a variant defined twice is refused at
import. Adding an SR: see docs/architecture.md, "Adding a Service Request".

This module never talks to a device.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType, ModuleType

from protocol.s1sp.service_requests import (
    clock,
    firmware,
    han,
    load_limiting,
    metering,
    prepayment,
    reads,
    supply,
)
from protocol.s1sp.service_requests.record import Addressee, ServiceRequest

__all__ = ["FAMILIES", "SERVICE_REQUESTS", "Addressee", "ServiceRequest", "build_registry"]

#: The family modules, each with a ``RECORDS`` tuple.
FAMILIES: tuple[ModuleType, ...] = (prepayment, reads, load_limiting, clock, supply, han,
                                    firmware, metering)


def _variant_order(variant: str) -> tuple[int, ...]:
    return tuple(int(part) for part in variant.split("."))


def build_registry(records: Iterable[ServiceRequest]) -> Mapping[str, ServiceRequest]:
    """The records by variant, in variant order (1.5 < 1.6 < 2.1 < ... < 11.3); a variant
    given twice is a :class:`ValueError`."""
    registry: dict[str, ServiceRequest] = {}
    for record in records:
        variant = record.service_reference_variant
        if variant in registry:
            raise ValueError(f"SR {variant} is defined twice: {registry[variant].name!r} and "
                             f"{record.name!r}")
        registry[variant] = record
    return MappingProxyType(dict(sorted(registry.items(),
                                        key=lambda item: _variant_order(item[0]))))


#: Every SR variant the adapter supports, by ServiceReferenceVariant.
SERVICE_REQUESTS: Mapping[str, ServiceRequest] = build_registry(
    record for family in FAMILIES for record in family.RECORDS)
