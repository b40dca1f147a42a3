"""``served()``: emulated meters served on a pty or TCP in a background thread, from Python.

::

    from emulator.served import served

    with served("default", transport="tcp") as meters:      # or transport="pty"
        client = DeviceClient.open(tcp=meters.address)       # meters.path for a pty
        ...
        meters.advance("6h")                                  # virtual device time

The context manager builds the world of a profile (by name or file), serves it with its own
:class:`emulator.serve.ServeLoop` in a daemon thread, returns once a client has had an answer
from the management device over the port (so the path or address is ready to use), and on exit
stops the loop, joins the thread and closes every descriptor it opened (the pty pair, the
listener, any ``link`` symlink), even when the body raised. ``faults`` puts seeded
:mod:`emulator.faults` on the served port (:class:`FaultyTransport`).

This module holds no protocol or device logic, and waits only in the serving thread's own
selector (plus the joins): it never sleeps.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.faults import FaultPlan, FaultSpec, FaultyPipe
from protocol.clock import MonotonicClock, RealMonotonicClock
from protocol.transport import ByteTransport, TcpListener

__all__ = ["FaultyTransport", "Served", "advance_device_time", "faulty_listener", "make_link",
           "parse_advance_seconds", "remove_link", "served"]

#: Longest ``served()`` waits for the serving thread to stop.
STOP_TIMEOUT_SECONDS = 5.0

_ADVANCE_UNITS_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_advance_seconds(text: str | int) -> int:
    """``3600``, ``90s``, ``15m``, ``6h``, ``3d``, ``1w`` -> whole seconds (>= 0)."""
    if isinstance(text, int):
        seconds = text
    else:
        value = text.strip().lower()
        unit = value[-1:] if value[-1:] in _ADVANCE_UNITS_SECONDS else "s"
        number = value[:-1] if value[-1:] in _ADVANCE_UNITS_SECONDS else value
        if not number.isdigit():
            raise ValueError(f"{text!r} is not a duration such as 3600, 90s, 15m, 6h or 3d")
        seconds = int(number) * _ADVANCE_UNITS_SECONDS[unit]
    if seconds < 0:
        raise ValueError(f"{text!r}: time never goes back")
    return seconds


class FaultyTransport:
    """A served transport with seeded faults both ways (see :mod:`emulator.faults`).

    Drop, corrupt, duplicate and split apply to each chunk read or written. Delay and stall
    hold the server's answers: the write waits (``wait_ms``) until they are due, which holds
    the serving loop meanwhile, like a slow line. ``fileno`` is the wrapped transport's, so
    the loop still waits on it with its selector."""

    def __init__(self, inner: ByteTransport, spec: FaultSpec, *,
                 clock: MonotonicClock | None = None,
                 wait_ms: Callable[[int], None] | None = None) -> None:
        to_server, to_client = spec.plans()
        self._inner = inner
        self._to_server = FaultyPipe(FaultPlan(seed=to_server.seed,
                                               drop_chunk=to_server.drop_chunk,
                                               duplicate_chunk=to_server.duplicate_chunk,
                                               corrupt_byte=to_server.corrupt_byte))
        self._to_client = FaultyPipe(to_client)
        self._clock = clock or RealMonotonicClock()
        self._wait_ms = wait_ms or (lambda ms: threading.Event().wait(ms / 1000))
        self.name = getattr(inner, "name", "port")

    def fileno(self) -> int:
        return self._inner.fileno()  # type: ignore[attr-defined, no-any-return]

    def read(self, max_bytes: int, timeout_ms: int) -> bytes:
        data = self._inner.read(max_bytes, timeout_ms)
        if not data:
            return b""
        now_ms = self._clock.monotonic_ms()
        self._to_server.send(data, now_ms)
        return b"".join(self._to_server.receive(now_ms))

    def write(self, data: bytes) -> None:
        self._to_client.send(data, self._clock.monotonic_ms())
        while True:
            now_ms = self._clock.monotonic_ms()
            for chunk in self._to_client.receive(now_ms):
                self._inner.write(chunk)
            due_ms = self._to_client.next_due_ms()
            if due_ms is None:
                return
            self._wait_ms(max(1, due_ms - now_ms))

    def close(self) -> None:
        self._inner.close()


def faulty_listener(listener: TcpListener, spec: FaultSpec) -> Any:
    """``listener`` whose accepted connections each get their own :class:`FaultyTransport`
    (seeds ``spec.seed``, ``+2``, ``+4``... so connections do not replay one another)."""
    return _FaultyListener(listener, spec)


class _FaultyListener:
    """A TcpListener whose accepted connections get their own :class:`FaultyTransport`."""

    def __init__(self, inner: TcpListener, spec: FaultSpec) -> None:
        self._inner = inner
        self._spec = spec
        self._accepted = 0

    @property
    def address(self) -> str:
        return self._inner.address

    def fileno(self) -> int:
        return self._inner.fileno()

    def accept(self, timeout_ms: int = 0) -> Any:
        return self._wrap(self._inner.accept(timeout_ms))

    def accept_nowait(self) -> Any:
        return self._wrap(self._inner.accept_nowait())

    def _wrap(self, transport: Any) -> Any:
        if transport is None:
            return None
        # each connection its own seeds, so they do not replay one another's faults
        spec = FaultSpec(**{**self._spec.__dict__, "seed": self._spec.seed + 2 * self._accepted})
        self._accepted += 1
        return FaultyTransport(transport, spec)

    def close(self) -> None:
        self._inner.close()


@dataclass
class Served:
    """What :func:`served` hands back: where to connect, and controls."""

    #: ``"pty"`` or ``"tcp"``
    transport: str
    #: the pty path to open (a ``link`` symlink when asked for), or None on TCP
    path: str | None
    #: ``host:port`` on TCP, or None on a pty
    address: str | None
    #: the world being served; read it only after the block (it lives in the serving thread)
    world: Any
    #: the device clock (a VirtualClock with virtual time)
    device_clock: Any
    loop: Any = field(repr=False)

    @property
    def target(self) -> dict[str, str]:
        """``DeviceClient.open(**meters.target)``: ``{"port": path}`` or ``{"tcp": address}``."""
        return {"port": self.path} if self.path is not None else {"tcp": str(self.address)}

    def client(self, **options: Any) -> Any:
        """A new :class:`protocol.client.DeviceClient` on the served port (close it)."""
        from protocol.client import DeviceClient

        return DeviceClient.open(**self.target, **options)

    def advance(self, duration: str | int) -> int:
        """Fast-forward device time (``3600``, ``"6h"``, ``"3d"``) through the management
        device over the port, as ``secure-emu advance`` does; returns the new device time."""
        with self.client() as client:
            return advance_device_time(client, parse_advance_seconds(duration))


def advance_device_time(channel: Any, seconds: int,
                        progress: Callable[[int, int], None] | None = None, *,
                        management_password: str = "") -> int:
    """ADVANCE_DEVICE_TIME in steps the link can wait for; the device time reached.
    ``progress(device_time_seconds, seconds_to_go)`` after every step but the last;
    ``management_password`` the server's, if it has one."""
    from emulator.errors import StateError
    from emulator.world import MAX_ADVANCE_SECONDS
    from protocol.apdu import MANAGEMENT_SERVER_ADDRESS, Command, Request

    remaining_seconds = seconds
    device_time_seconds: int | None = None
    while remaining_seconds > 0 or device_time_seconds is None:
        step_seconds = min(remaining_seconds, MAX_ADVANCE_SECONDS)
        response = channel.request(MANAGEMENT_SERVER_ADDRESS, Request(
            Command.ADVANCE_DEVICE_TIME, 0, {"advance_seconds": step_seconds,
                                             "management_password": management_password}))
        if not response.ok:
            raise StateError(f"the emulator refused to advance time: {response.status.name}")
        remaining_seconds -= step_seconds
        device_time_seconds = int(response.fields["device_time_seconds"])
        if remaining_seconds > 0 and progress is not None:
            progress(device_time_seconds, remaining_seconds)
    return device_time_seconds


@contextlib.contextmanager
def served(profile: Any = "default", *, transport: str = "pty", host: str = "127.0.0.1",
           port: int = 0, virtual_time: bool = True, faults: str | FaultSpec | None = None,
           trace: Callable[[str], None] | None = None,
           log: Callable[[str], None] | None = None,
           state_path: Path | str | None = None,
           link: Path | str | None = None) -> Iterator[Served]:
    """Serve ``profile`` (a name, a TOML path or an :class:`emulator.profile.Profile`) on a pty
    (``transport="pty"``; ``link`` makes a symlink to its path) or on TCP (``host``, ``port``:
    0 picks a free one) until the block ends. ``trace`` gets every frame line, ``log`` the
    loop's messages."""
    from emulator.clock import SystemClock, VirtualClock
    from emulator.profile import Profile
    from emulator.serve import ServeLoop
    from emulator.world import EmulatedWorld
    from protocol.transport import PtyPair

    if transport not in ("pty", "tcp"):
        raise ValueError(f"transport must be 'pty' or 'tcp', not {transport!r}")
    loaded = profile if isinstance(profile, Profile) else Profile.load(profile)
    spec = faults if isinstance(faults, FaultSpec) else FaultSpec.parse(faults)
    device_clock: Any = (VirtualClock(loaded.start_device_time_seconds) if virtual_time
                         else SystemClock())
    world = EmulatedWorld(loaded, device_clock,
                          state_path=Path(state_path) if state_path is not None else None)
    loop = ServeLoop(world, RealMonotonicClock(),
                     advance_interval_ms=None if virtual_time else 1000,
                     trace_line=trace, log=log)
    cleanups: list[Callable[[], None]] = []
    path: str | None = None
    address: str | None = None
    try:
        if transport == "pty":
            pair = PtyPair()
            cleanups.append(pair.close)
            stream: ByteTransport = pair.server
            if not spec.is_clean:
                stream = FaultyTransport(stream, spec)
            loop.add_stream(stream, name="pty")
            path = pair.client_path
            if link is not None:
                path = make_link(pair.client_path, Path(link))
                cleanups.append(lambda: remove_link(Path(link)))
        else:
            listener = TcpListener(host, port)
            cleanups.append(listener.close)
            address = listener.address
            loop.add_listener(listener if spec.is_clean  # type: ignore[arg-type]
                              else faulty_listener(listener, spec))
        thread = threading.Thread(target=loop.run, name=f"secure-emu served {transport}",
                                  daemon=True)
        thread.start()
        cleanups.append(lambda: _stop(loop, thread))
        meters = Served(transport, path, address, world, device_clock, loop)
        _wait_until_answering(meters, thread)
        yield meters
    finally:
        for cleanup in reversed(cleanups):
            cleanup()


def _stop(loop: Any, thread: threading.Thread) -> None:
    loop.request_stop()
    thread.join(STOP_TIMEOUT_SECONDS)
    if thread.is_alive():  # pragma: no cover - the loop wakes within a second of a stop
        raise RuntimeError("the served emulator did not stop within "
                           f"{STOP_TIMEOUT_SECONDS} s")


def _wait_until_answering(meters: Served, thread: threading.Thread) -> None:
    """One READ_DEVICE_DIRECTORY over the port: the path or address answers before we return."""
    from protocol.apdu import MANAGEMENT_SERVER_ADDRESS, Command, Request

    if not thread.is_alive():
        raise RuntimeError("the served emulator stopped at once")
    with meters.client(retransmit_timeout_ms=200, max_retransmissions=20) as client:
        client.request(MANAGEMENT_SERVER_ADDRESS, Request(Command.READ_DEVICE_DIRECTORY, 0))


def make_link(target: str, link: Path) -> str:
    """A symlink ``link`` -> ``target`` (socat's ``link=``); an existing symlink there is
    replaced, anything else is refused. Returns the link's path."""
    if link.is_symlink():
        link.unlink()
    elif link.exists():
        raise FileExistsError(f"{link} exists and is not a symlink: not replacing it")
    os.symlink(target, link)
    return str(link)


def remove_link(link: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if link.is_symlink():
            link.unlink()
