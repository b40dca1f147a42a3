"""Serving emulated devices on a port: the I/O shell around the sans-I/O link multiplexer.

The core is :class:`protocol.link_mux.LinkServer`, one per client byte stream (a pty, a serial
port, one TCP connection): bytes in, bytes out, every received APDU handed to the shared world
(``world.handle_apdu``) and the answer queued on its link. Frames to addresses the world does
not serve are ignored and counted there.

:class:`ServeLoop` is this module: it waits on every transport and listener with
:mod:`selectors`, gives each TCP connection its own :class:`LinkServer` over one shared world,
runs link timers, calls ``world.advance()`` periodically so timers run while idle (not with a
virtual clock: there time moves only when told), and on :meth:`ServeLoop.request_stop` (from
Ctrl-C or SIGTERM) stops, closes its clients and saves the world state.

Stopping is prompt: the stop wakes the selector, and :meth:`ServeLoop.stop_from_signal` (what a
signal handler calls) also abandons a write in progress. A write to a client that does not
read (a pty nobody reads: the transport waits up to its write timeout, 2 s, for room) would
otherwise hold the stop that long. Once stopping, nothing more is written to clients.
A client closing its end is logged as ``client disconnected``; other transport failures as
``client gone`` with the reason.

Nothing a client sends may crash the server or stop it serving other clients: the decoder
never raises, and anything that escapes a station or the world for one frame is counted in
the LinkServer's counters, that station is dropped, and serving goes on. This module must never
do port I/O except through :mod:`protocol.transport`, and never read a clock except the one
it is given.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from protocol.clock import MonotonicClock
from protocol.hdlc import Addressing
from protocol.link import LinkParameters
from protocol.link_mux import ApduServer, LinkServer
from protocol.trace import FrameTrace, line_trace
from protocol.transport import ByteTransport, TcpListener, TransportClosedError, TransportError

__all__ = [
    "DEFAULT_ADVANCE_INTERVAL_MS",
    "ServeLoop",
    "ServeStoppedError",
    "World",
]

#: How often a serving loop on real time calls ``world.advance()`` while idle.
DEFAULT_ADVANCE_INTERVAL_MS = 1000
#: Bytes read from a transport at a time.
READ_CHUNK_BYTES = 65536
#: Longest a serving loop sleeps without looking at its stop flag.
MAX_WAIT_MS = 1000


class ServeStoppedError(Exception):
    """Raised by :meth:`ServeLoop.stop_from_signal` into a write in progress, to abandon it."""


class World(ApduServer, Protocol):
    """What serving needs from :class:`emulator.world.EmulatedWorld`: the devices
    (``server_addresses``, ``handle_apdu``), periodic advance and saving."""

    def advance(self) -> None: ...

    def save(self) -> None: ...


# --------------------------------------------------------------------------------------------
# The I/O shell
# --------------------------------------------------------------------------------------------


@dataclass
class _Client:
    transport: ByteTransport
    server: LinkServer
    name: str
    closes_with_loop: bool = True


@dataclass
class _LoopStats:
    clients_accepted: int = 0
    clients_closed: int = 0
    errors: list[str] = field(default_factory=list)


class ServeLoop:
    """Serve one world on streams (pty, serial) and TCP listeners until told to stop."""

    def __init__(self, world: World, link_clock: MonotonicClock, *,
                 advance_interval_ms: int | None = DEFAULT_ADVANCE_INTERVAL_MS,
                 parameters: LinkParameters | None = None,
                 trace_line: Callable[[str], None] | None = None,
                 log: Callable[[str], None] | None = None,
                 addressing: Addressing = Addressing.FLAT) -> None:
        self._world = world
        self._addressing = addressing
        self._clock = link_clock
        self._advance_interval_ms = advance_interval_ms
        self._parameters = parameters
        self._trace_line = trace_line
        self._log = log or (lambda message: None)
        self._selector = selectors.DefaultSelector()
        self._clients: dict[int, _Client] = {}
        self._pollers: list[_Client] = []  # transports without a descriptor
        self._listeners: dict[int, TcpListener] = {}
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._selector.register(self._wake_read, selectors.EVENT_READ)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._wake_closed = False
        self._writing = False  # inside a transport write, which a stop may abandon
        self.stats = _LoopStats()

    def _make_server(self, name: str) -> LinkServer:
        trace: FrameTrace | None = None
        if self._trace_line is not None:
            trace = line_trace(self._trace_line, peer=name)
        return LinkServer(self._world, parameters=self._parameters, trace=trace,
                          on_error=self._log, addressing=self._addressing)

    def add_stream(self, transport: ByteTransport, *, name: str = "port") -> LinkServer:
        """Serve one byte stream (pty master, serial port). The loop closes it when done."""
        client = _Client(transport, self._make_server(name), name)
        fileno = getattr(transport, "fileno", None)
        try:
            fd = fileno() if fileno is not None else None
        except OSError:
            fd = None
        if fd is None:
            self._pollers.append(client)
        else:
            self._clients[fd] = client
            self._selector.register(fd, selectors.EVENT_READ)
        return client.server

    def add_listener(self, listener: TcpListener) -> None:
        """Accept TCP clients; each gets its own LinkServer over the shared world."""
        self._listeners[listener.fileno()] = listener
        self._selector.register(listener.fileno(), selectors.EVENT_READ)

    def request_stop(self) -> None:
        """Ask the loop to stop soon; safe from a signal handler or another thread."""
        self._stop.set()
        with self._lock:
            if not self._wake_closed:
                with contextlib.suppress(OSError):
                    os.write(self._wake_write, b"\0")

    def stop_from_signal(self) -> None:
        """:meth:`request_stop`, for a signal handler: a write in progress at that moment is
        abandoned (ServeStoppedError is raised into it) so that the loop stops at once."""
        self.request_stop()
        if self._writing:
            raise ServeStoppedError

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        """Serve until :meth:`request_stop`; then close clients and save the world."""
        next_advance_ms = self._next_advance(self._clock.monotonic_ms())
        try:
            while not self._stop.is_set():
                now_ms = self._clock.monotonic_ms()
                wait_ms = self._wait_ms(now_ms, next_advance_ms)
                for key, _ in self._selector.select(wait_ms / 1000 if wait_ms else 0):
                    self._on_ready(key.fd)
                for client in list(self._pollers):
                    self._read_from(client, poll_ms=min(wait_ms, 50))
                now_ms = self._clock.monotonic_ms()
                self._run_timers(now_ms)
                if next_advance_ms is not None and now_ms >= next_advance_ms:
                    self._advance_world()
                    next_advance_ms = self._next_advance(now_ms)
        finally:
            self._shutdown()

    def _next_advance(self, now_ms: int) -> int | None:
        if self._advance_interval_ms is None:
            return None
        return now_ms + self._advance_interval_ms

    def _wait_ms(self, now_ms: int, next_advance_ms: int | None) -> int:
        deadlines = [now_ms + MAX_WAIT_MS]
        if next_advance_ms is not None:
            deadlines.append(next_advance_ms)
        for client in self._all_clients():
            deadline = client.server.next_timeout_ms()
            if deadline is not None:
                deadlines.append(deadline)
        return max(0, min(deadlines) - now_ms)

    def _all_clients(self) -> list[_Client]:
        return [*self._clients.values(), *self._pollers]

    def _on_ready(self, fd: int) -> None:
        if fd == self._wake_read:
            with contextlib.suppress(OSError):
                os.read(self._wake_read, 4096)
            return
        listener = self._listeners.get(fd)
        if listener is not None:
            transport = listener.accept(0)
            if transport is not None:
                name = getattr(transport, "name", "tcp")
                client = _Client(transport, self._make_server(name), name)
                self._clients[transport.fileno()] = client
                self._selector.register(transport.fileno(), selectors.EVENT_READ)
                self.stats.clients_accepted += 1
                self._log(f"client connected: {name}")
            return
        client = self._clients.get(fd)
        if client is not None:
            self._read_from(client, poll_ms=0)

    def _read_from(self, client: _Client, *, poll_ms: int) -> None:
        try:
            data = client.transport.read(READ_CHUNK_BYTES, poll_ms)
            if not data:
                return
            reply = client.server.receive_bytes(data, self._clock.monotonic_ms())
        except TransportClosedError:
            self._close_client(client, None)
            return
        except TransportError as error:
            self._close_client(client, str(error))
            return
        if reply:
            self._write(client, reply)

    def _write(self, client: _Client, data: bytes) -> None:
        """Write to a client unless stopping; a stop from a signal abandons the write."""
        if self._stop.is_set():
            return
        try:
            self._writing = True
            try:
                client.transport.write(data)
            finally:
                self._writing = False
        except ServeStoppedError:
            self._writing = False
        except TransportError as error:
            self._close_client(client, str(error))

    def _run_timers(self, now_ms: int) -> None:
        for client in self._all_clients():
            deadline = client.server.next_timeout_ms()
            if deadline is None or deadline > now_ms:
                continue
            reply = client.server.handle_timeout(now_ms)
            if reply:
                self._write(client, reply)

    def _advance_world(self) -> None:
        try:
            self._world.advance()
        except Exception as error:  # keep serving; report it
            self.stats.errors.append(f"world.advance failed: {error}")
            self._log(f"world.advance failed: {error}")

    def _close_client(self, client: _Client, reason: str | None) -> None:
        """Forget a client; ``reason`` None means it closed its end (a normal disconnect)."""
        if client not in self._all_clients():
            return
        self._log(f"client disconnected: {client.name}" if reason is None
                  else f"client gone: {reason}")
        self.stats.clients_closed += 1
        if client in self._pollers:
            self._pollers.remove(client)
        for fd, known in list(self._clients.items()):
            if known is client:
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.unregister(fd)
                del self._clients[fd]
        client.transport.close()

    def _shutdown(self) -> None:
        for client in self._all_clients():
            client.transport.close()
        self._clients.clear()
        self._pollers.clear()
        for listener in self._listeners.values():
            listener.close()
        self._listeners.clear()
        self._selector.close()
        with self._lock:
            self._wake_closed = True
            for fd in (self._wake_read, self._wake_write):
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._world.save()
