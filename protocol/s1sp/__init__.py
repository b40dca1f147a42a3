"""The S1SP adapter: DUIS Service Requests in, Secure-like APDUs out, DUIS responses back.

Public entry points: :class:`S1spAdapter` (``submit(xml) -> xml``, ``submit_request``),
:class:`DeviceChannel` / :class:`InProcessChannel`, :class:`AnnexCTable`,
:func:`parse_duis_request` / :class:`DuisRequest`, :class:`DuisResponse` (``from_xml`` and
typed accessors such as ``pence("MeterBalance")``) and :class:`DuisRequestBuilder` (a method
per SR returning the request document; money as :class:`DuisMoney` when not pence).
This package never talks to a port itself: every device exchange goes through a ``DeviceChannel``.
"""

from protocol.s1sp.adapter import S1spAdapter
from protocol.s1sp.annex_c import AnnexCTable, format_annex_c_table
from protocol.s1sp.builders import (
    CANCEL_FUTURE_DATED,
    DuisMoney,
    DuisRequestBuilder,
    PaymentDebtChange,
    TimeDebtChange,
)
from protocol.s1sp.channel import DeviceChannel, InProcessChannel
from protocol.s1sp.duis import DuisRequest, parse_duis_request
from protocol.s1sp.responses import DuisResponse

__all__ = [
    "CANCEL_FUTURE_DATED",
    "AnnexCTable",
    "DeviceChannel",
    "DuisMoney",
    "DuisRequest",
    "DuisRequestBuilder",
    "DuisResponse",
    "InProcessChannel",
    "PaymentDebtChange",
    "S1spAdapter",
    "TimeDebtChange",
    "format_annex_c_table",
    "parse_duis_request",
]
