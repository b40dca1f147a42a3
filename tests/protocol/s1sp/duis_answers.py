"""Reading a DUIS response in tests: its header code, error reason and result elements."""

from __future__ import annotations

from xml.etree.ElementTree import fromstring

from protocol.s1sp.duis import DUIS_NAMESPACE

NS = {"sr": DUIS_NAMESPACE}


def response_code(xml: str) -> str | None:
    return fromstring(xml).findtext("sr:Header/sr:ResponseCode", namespaces=NS)


def error_reason(xml: str) -> str:
    return fromstring(xml).findtext("sr:Body/sr:ResponseMessage/sr:ErrorReason",
                                    namespaces=NS) or ""


def result(xml: str, name: str) -> str | None:
    """The text of result element ``name`` (any depth below the ...Response element)."""
    return fromstring(xml).findtext(f"sr:Body/sr:ResponseMessage/*/sr:{name}", namespaces=NS)
