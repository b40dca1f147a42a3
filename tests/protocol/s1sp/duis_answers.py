"""Reading a DUIS response in tests: its header code, error reason and result elements."""

from __future__ import annotations

from xml.etree.ElementTree import Element, fromstring

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


#: A DUIS element as a test writes it out: (name, text) for a leaf, (name, [children]) else.
Tree = tuple[str, "str | list[Tree]"]


def element_tree(element: Element) -> Tree:
    name = element.tag.rsplit("}", 1)[1]
    children = list(element)
    if children:
        return (name, [element_tree(child) for child in children])
    return (name, element.text or "")


def result_tree(xml: str) -> list[Tree]:
    """The whole body of the SR's ...Response element, every element in document order, so a
    test can compare a response with one written out in full."""
    body = fromstring(xml).findall("sr:Body/sr:ResponseMessage/*", NS)[-1]
    return [element_tree(child) for child in body]


def request_body(xml: str) -> list[Tree]:
    """The whole Body of a DUIS request (as a builder writes it), in document order."""
    body = fromstring(xml).find("sr:Body", NS)
    assert body is not None
    return [element_tree(child) for child in body]
