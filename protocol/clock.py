"""The link's clock: integer monotonic milliseconds, injected into everything that runs timers.

:class:`MonotonicClock` is the one clock protocol of the wire layers (``emulator.clock.Clock``
extends it with device time and fast-forward); :class:`RealMonotonicClock` reads the operating
system's monotonic clock. This module must never sleep and never return floats.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

__all__ = ["MonotonicClock", "RealMonotonicClock"]


@runtime_checkable
class MonotonicClock(Protocol):
    """Integer milliseconds that never go backwards, for link timers."""

    def monotonic_ms(self) -> int:
        """Integer milliseconds from an arbitrary origin; never goes backwards."""
        ...


class RealMonotonicClock:
    """The operating system's monotonic clock in integer milliseconds."""

    def monotonic_ms(self) -> int:
        return time.monotonic_ns() // 1_000_000
