"""The one injected clock: monotonic milliseconds for link timers, device time for devices.

Device time is integer UTC seconds since 1970-01-01; monotonic time is integer milliseconds.
:class:`Clock` is :class:`protocol.clock.MonotonicClock` (what link timers need) plus device
time, fast-forward and ``offset_seconds``, which every clock has: callers call them, never probe
for them.
``SystemClock`` reads the real clocks (plus a fast-forward offset on device time);
``VirtualClock`` only moves when told to, for tests and ``--virtual-time`` serving.
This module must never sleep, and never return floats.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

from emulator.errors import StateError
from protocol.clock import MonotonicClock, RealMonotonicClock

__all__ = ["Clock", "SystemClock", "VirtualClock"]


@runtime_checkable
class Clock(MonotonicClock, Protocol):
    """What links and devices need from a clock."""

    def device_time_seconds(self) -> int:
        """Integer UTC seconds since 1970-01-01 as the devices see it."""
        ...

    def fast_forward(self, seconds: int) -> None:
        """Move device time ahead by ``seconds`` (>= 0); raises StateError if negative."""
        ...

    @property
    def offset_seconds(self) -> int | None:
        """Seconds fast-forwarded beyond the real UTC time (a state file keeps them, so that a
        restart resumes there); None for a clock whose device time is not real time plus an
        offset (a virtual clock)."""
        ...


def _require_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    return value


class SystemClock(RealMonotonicClock):
    """Real time. ``fast_forward(seconds)`` moves device time ahead; link time is untouched."""

    def __init__(self, offset_seconds: int = 0) -> None:
        self._offset_seconds = _require_int("offset_seconds", offset_seconds)

    @property
    def offset_seconds(self) -> int:
        """Seconds added to the real UTC time to give device time."""
        return self._offset_seconds

    def device_time_seconds(self) -> int:
        return time.time_ns() // 1_000_000_000 + self._offset_seconds

    def fast_forward(self, seconds: int) -> None:
        """Move device time ahead by ``seconds`` (>= 0)."""
        _require_int("seconds", seconds)
        if seconds < 0:
            raise StateError(f"cannot fast-forward by {seconds} s: device time never goes back")
        self._offset_seconds += seconds


class VirtualClock:
    """A clock that only moves when advanced; monotonic and device time move together.

    Device time = ``start_device_time_seconds + elapsed_ms // 1000``.
    """

    def __init__(self, start_device_time_seconds: int, start_monotonic_ms: int = 0) -> None:
        self._start_device_time_seconds = _require_int(
            "start_device_time_seconds", start_device_time_seconds
        )
        self._start_monotonic_ms = _require_int("start_monotonic_ms", start_monotonic_ms)
        self._elapsed_ms = 0

    def monotonic_ms(self) -> int:
        return self._start_monotonic_ms + self._elapsed_ms

    def device_time_seconds(self) -> int:
        return self._start_device_time_seconds + self._elapsed_ms // 1000

    def advance_ms(self, ms: int) -> None:
        """Move both clocks ahead by ``ms`` milliseconds (>= 0)."""
        _require_int("ms", ms)
        if ms < 0:
            raise StateError(f"cannot advance a clock by {ms} ms: time never goes back")
        self._elapsed_ms += ms

    def advance_seconds(self, seconds: int) -> None:
        """Move both clocks ahead by ``seconds`` (>= 0)."""
        _require_int("seconds", seconds)
        if seconds < 0:
            raise StateError(f"cannot advance a clock by {seconds} s: time never goes back")
        self._elapsed_ms += seconds * 1000

    def fast_forward(self, seconds: int) -> None:
        """Same as :meth:`advance_seconds` (the clock protocol's name for it)."""
        self.advance_seconds(seconds)

    @property
    def offset_seconds(self) -> None:
        """None: virtual device time is not real time plus an offset (a fast-forward moves the
        clock itself, and a restart brings it to the saved device time)."""
        return None
