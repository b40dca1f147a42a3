"""The S1SP adapter (skeleton: signature fixed, behaviour landing next)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from protocol.s1sp.annex_c import AnnexCTable
from protocol.s1sp.channel import DeviceChannel


class S1spAdapter:
    """DUIS XML in, APDUs through a DeviceChannel, DUIS XML back."""

    def __init__(self, channel: DeviceChannel, *, annex_c: AnnexCTable | None = None,
                 response_clock: Callable[[], datetime] | None = None) -> None:
        self._channel = channel
        self._annex_c = annex_c or AnnexCTable()
        self._response_clock = response_clock

    def submit(self, xml: bytes | str) -> str:
        """The DUIS response XML for one request document; never raises for bad input."""
        raise NotImplementedError
