"""Each device runs on its own cuts of time: addressing one device never changes what another
meter consumes, and the world's event queue runs only the devices something is due for."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.clock import VirtualClock
from emulator.profile import Profile
from emulator.world import EmulatedWorld
from protocol.apdu import Command, Request

ESME = bytes.fromhex("00DB1234567890A1")
GSME = bytes.fromhex("00DB1234567890A2")


def _world() -> tuple[EmulatedWorld, VirtualClock]:
    profile = Profile.default()
    clock = VirtualClock(profile.start_device_time_seconds)
    return EmulatedWorld(profile, clock), clock


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 40_000), st.sampled_from([16, 17, 2])),
                min_size=1, max_size=25))
def test_consumption_is_the_same_however_each_devices_time_is_cut(
        steps: list[tuple[int, int]]) -> None:
    cut, cut_clock = _world()
    whole, whole_clock = _world()
    for seconds, address in steps:
        cut_clock.advance_seconds(seconds)
        assert cut.handle_request(address, Request(Command.READ_CLOCK, 1)).ok
    whole_clock.advance_seconds(sum(seconds for seconds, _ in steps))
    whole.advance()
    cut.advance()
    for eui64 in (ESME, GSME):
        assert cut.meter(eui64).registers == whole.meter(eui64).registers
    # a device that was not addressed was not run until it was asked for
    assert cut.to_state() == whole.to_state()


def test_a_device_not_addressed_is_not_run_until_every_device_is_asked_for() -> None:
    world, clock = _world()
    start = clock.device_time_seconds()
    clock.advance_seconds(3600)
    world.handle_request(16, Request(Command.READ_METER_BALANCE, 1))
    assert world.device_by_eui64(ESME).meter.device_time_seconds == start + 3600
    assert world.device_by_eui64(GSME).meter.device_time_seconds == start
    world.advance()
    assert world.device_by_eui64(GSME).meter.device_time_seconds == start + 3600
