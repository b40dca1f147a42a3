"""The injected clock: virtual time moves only when told, both scales together."""

from __future__ import annotations

import pytest

from emulator.clock import Clock, SystemClock, VirtualClock
from emulator.errors import StateError

START_SECONDS = 1_767_225_600  # 2026-01-01T00:00:00Z


def test_virtual_clock_does_not_move_by_itself() -> None:
    clock = VirtualClock(START_SECONDS, start_monotonic_ms=5)
    assert (clock.device_time_seconds(), clock.monotonic_ms()) == (START_SECONDS, 5)
    assert (clock.device_time_seconds(), clock.monotonic_ms()) == (START_SECONDS, 5)


def test_virtual_clock_device_time_counts_whole_seconds_of_elapsed_ms() -> None:
    clock = VirtualClock(START_SECONDS)
    clock.advance_ms(999)
    assert clock.device_time_seconds() == START_SECONDS
    clock.advance_ms(1)
    assert clock.device_time_seconds() == START_SECONDS + 1
    clock.advance_ms(1_500)
    assert clock.device_time_seconds() == START_SECONDS + 2
    assert clock.monotonic_ms() == 2_500


def test_virtual_clock_advance_seconds_moves_both_scales() -> None:
    clock = VirtualClock(START_SECONDS, start_monotonic_ms=100)
    clock.advance_seconds(90)
    assert clock.device_time_seconds() == START_SECONDS + 90
    assert clock.monotonic_ms() == 100 + 90_000


def test_virtual_clock_fast_forward_is_advance_seconds() -> None:
    clock = VirtualClock(START_SECONDS)
    clock.fast_forward(86_400)
    assert clock.device_time_seconds() == START_SECONDS + 86_400
    assert clock.monotonic_ms() == 86_400_000


@pytest.mark.parametrize("call", ["advance_ms", "advance_seconds", "fast_forward"])
def test_virtual_clock_refuses_to_go_backwards(call: str) -> None:
    clock = VirtualClock(START_SECONDS)
    with pytest.raises(StateError, match="never goes back"):
        getattr(clock, call)(-1)
    assert clock.device_time_seconds() == START_SECONDS


def test_virtual_clock_refuses_float_time() -> None:
    with pytest.raises(TypeError):
        VirtualClock(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        VirtualClock(START_SECONDS).advance_ms(0.5)  # type: ignore[arg-type]


def test_system_clock_fast_forward_offsets_device_time_but_not_link_time() -> None:
    clock = SystemClock()
    before_device = clock.device_time_seconds()
    clock.fast_forward(10 * 86_400)
    after_device = clock.device_time_seconds()
    assert 10 * 86_400 <= after_device - before_device <= 10 * 86_400 + 5
    assert clock.offset_seconds == 10 * 86_400
    first_ms = clock.monotonic_ms()
    assert isinstance(first_ms, int) and clock.monotonic_ms() >= first_ms


def test_system_clock_refuses_negative_fast_forward() -> None:
    with pytest.raises(StateError):
        SystemClock(offset_seconds=3).fast_forward(-1)


def test_both_clocks_satisfy_the_clock_protocol() -> None:
    assert isinstance(VirtualClock(START_SECONDS), Clock)
    assert isinstance(SystemClock(), Clock)
    assert isinstance(SystemClock().device_time_seconds(), int)
