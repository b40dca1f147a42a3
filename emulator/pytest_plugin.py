"""The secure-emu pytest plugin: emulated meters as fixtures in your own test suite.

Registered through the ``pytest11`` entry point, so installing secure-emu is enough. Fixtures:

- ``secure_emu_world``: an in-process world on a virtual clock (:class:`EmulatedMeters`:
  ``world``, ``clock``, ``adapter``, ``channel``, ``advance("6h")``); no port, no thread;
- ``secure_emu_adapter``: an :class:`protocol.s1sp.adapter.S1spAdapter` bound to the meters:
  the in-process world, or the port / server named by ``--secure-emu-port`` /
  ``--secure-emu-tcp`` on a bench rig;
- ``secure_emu_pty`` / ``secure_emu_tcp``: the world served on a pty / on TCP in a background
  thread (:class:`emulator.served.Served`: ``path`` / ``address``, ``client()``,
  ``advance(...)``), or the port / server given on the command line;
- ``secure_emu_profile`` / ``secure_emu_faults``: the profile (``default``) and the faults
  (none), from ``@pytest.mark.secure_emu(profile=..., faults=...)``, from
  ``--secure-emu-profile`` / ``--secure-emu-faults``, or parametrized by name
  (``@pytest.mark.parametrize("secure_emu_profile", ["default", "dcc-duis-templates"])``).

Every fixture stops what it started when the test ends, passed or failed: no thread, process,
pty or socket is left behind. This module holds no protocol or device logic.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pytest

__all__ = ["EmulatedMeters"]

_MARKER = "secure_emu"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("secure-emu", "secure-emu emulated meters")
    group.addoption("--secure-emu-port", metavar="PORT_OR_URL", default=None,
                    help="point secure_emu_pty and secure_emu_adapter at this serial port or "
                         "pyserial URL (a bench rig) instead of serving an emulator")
    group.addoption("--secure-emu-tcp", metavar="HOST:PORT", default=None,
                    help="point secure_emu_tcp and secure_emu_adapter at this running "
                         "secure-emu server instead of serving one")
    group.addoption("--secure-emu-profile", metavar="NAME_OR_FILE", default=None,
                    help="profile for the secure_emu fixtures (default: the built-in "
                         "'default'; a marker's profile= wins)")
    group.addoption("--secure-emu-faults", metavar="SPEC", default=None,
                    help="seeded link faults for the secure_emu fixtures, e.g. "
                         "'drop=0.05,duplicate=0.05,seed=7' (a marker's faults= wins)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "secure_emu(profile=NAME_OR_FILE, faults=SPEC, virtual_time=True): "
                   "how the secure_emu fixtures build the emulated meters (virtual_time=False: "
                   "secure_emu_pty and secure_emu_tcp run on the system clock)")


def _marker_option(request: pytest.FixtureRequest, name: str) -> Any:
    marker = request.node.get_closest_marker(_MARKER)
    return marker.kwargs.get(name) if marker is not None else None


@pytest.fixture
def secure_emu_profile(request: pytest.FixtureRequest) -> str:
    """The profile the fixtures serve: a built-in name or a TOML file."""
    return str(_marker_option(request, "profile")
               or request.config.getoption("--secure-emu-profile") or "default")


@pytest.fixture
def secure_emu_faults(request: pytest.FixtureRequest) -> str | None:
    """The link faults (:class:`emulator.faults.FaultSpec` text), or None."""
    value = (_marker_option(request, "faults")
             or request.config.getoption("--secure-emu-faults"))
    return str(value) if value else None


def _virtual_time(request: pytest.FixtureRequest) -> bool:
    value = _marker_option(request, "virtual_time")
    return True if value is None else bool(value)


@dataclass
class EmulatedMeters:
    """An in-process world on a virtual clock, and an adapter bound to it."""

    world: Any
    clock: Any
    channel: Any
    adapter: Any
    closers: list[Any] = field(default_factory=list, repr=False)

    def advance(self, duration: str | int) -> int:
        """Move device time on (``3600``, ``"90s"``, ``"6h"``, ``"3d"``) and run the devices to
        it; the new device time (UTC seconds)."""
        from emulator.served import parse_advance_seconds

        self.clock.advance_seconds(parse_advance_seconds(duration))
        self.world.advance()
        return int(self.clock.device_time_seconds())

    def now(self) -> datetime:
        """Device time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.clock.device_time_seconds(), tz=timezone.utc)


def build_meters(profile: str, faults: str | None = None) -> EmulatedMeters:
    """The world of ``profile`` on a virtual clock; with ``faults``, its adapter reaches it
    through a seeded faulty in-memory link (retransmitting on a virtual link clock)."""
    from emulator.clock import VirtualClock
    from emulator.faults import FaultSpec, ManualClock, MemoryLink
    from emulator.profile import Profile
    from emulator.world import EmulatedWorld
    from protocol.client import DeviceClient
    from protocol.link_mux import LinkServer
    from protocol.s1sp import InProcessChannel, S1spAdapter

    loaded = Profile.load(profile)
    clock = VirtualClock(loaded.start_device_time_seconds)
    world = EmulatedWorld(loaded, clock)
    spec = FaultSpec.parse(faults)
    channel: Any
    closers: list[Any] = []
    if spec.is_clean:
        channel = InProcessChannel(world.handle_apdu)
    else:
        link_clock = ManualClock()
        to_server, to_client = spec.plans()
        link = MemoryLink(LinkServer(world), link_clock, wait=link_clock.advance_ms,
                          to_server=to_server, to_client=to_client)
        channel = DeviceClient(link, clock=link_clock, retransmit_timeout_ms=200,
                               max_retransmissions=20)
        closers.append(channel.close)
    meters = EmulatedMeters(world, clock, channel, None, closers)
    meters.adapter = S1spAdapter(channel, response_clock=meters.now)
    return meters


@pytest.fixture
def secure_emu_world(request: pytest.FixtureRequest, secure_emu_profile: str,
                     secure_emu_faults: str | None) -> Iterator[EmulatedMeters]:
    """The profile's devices in process on a virtual clock (``advance(...)`` moves it)."""
    meters = build_meters(secure_emu_profile, secure_emu_faults)
    try:
        yield meters
    finally:
        for close in meters.closers:
            close()


def _external(transport: str, path: str | None, address: str | None) -> Any:
    from emulator.served import Served

    return Served(transport, path, address, None, None, None)


@pytest.fixture
def secure_emu_pty(request: pytest.FixtureRequest, secure_emu_profile: str,
                   secure_emu_faults: str | None) -> Iterator[Any]:
    """The meters served on a pty in a background thread (``.path``), or the port given with
    ``--secure-emu-port``."""
    external = request.config.getoption("--secure-emu-port")
    if external:
        yield _external("external", str(external), None)
        return
    from emulator.served import served

    with served(secure_emu_profile, transport="pty", faults=secure_emu_faults,
                virtual_time=_virtual_time(request)) as meters:
        yield meters


@pytest.fixture
def secure_emu_tcp(request: pytest.FixtureRequest, secure_emu_profile: str,
                   secure_emu_faults: str | None) -> Iterator[Any]:
    """The meters served on TCP in a background thread (``.address``, ``host:port``), or the
    server given with ``--secure-emu-tcp``."""
    external = request.config.getoption("--secure-emu-tcp")
    if external:
        yield _external("external", None, str(external))
        return
    from emulator.served import served

    with served(secure_emu_profile, transport="tcp", faults=secure_emu_faults,
                virtual_time=_virtual_time(request)) as meters:
        yield meters


@pytest.fixture
def secure_emu_adapter(request: pytest.FixtureRequest) -> Iterator[Any]:
    """An S1spAdapter bound to the meters: ``secure_emu_world``'s (the same world), or the
    port / server given with ``--secure-emu-port`` / ``--secure-emu-tcp``."""
    port = request.config.getoption("--secure-emu-port")
    tcp = request.config.getoption("--secure-emu-tcp")
    if port or tcp:
        from emulator.cli import emulator_response_clock
        from protocol.client import DeviceClient
        from protocol.s1sp import S1spAdapter

        client = DeviceClient.open(port=port or None, tcp=None if port else tcp)
        try:
            yield S1spAdapter(client, response_clock=emulator_response_clock(client))
        finally:
            client.close()
        return
    meters: EmulatedMeters = request.getfixturevalue("secure_emu_world")
    yield meters.adapter
