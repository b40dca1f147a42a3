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

Writes never block the loop. Each client with a descriptor has an output buffer: what the
descriptor does not take at once waits there and is written when :mod:`selectors` says the
descriptor is writable; meanwhile that client's input is not read (backpressure: a client
that does not read its answers gets no more work done). Bounds (all keyword options of
:class:`ServeLoop`, defaults below):

- output: ``max_output_bytes`` per client (:data:`DEFAULT_MAX_OUTPUT_BYTES`, 256 KiB). A TCP
  client whose unread answers go over it, or that takes none of them for
  :data:`STALE_OUTPUT_MS` (2 s), is disconnected and logged at WARNING; on a stream (pty,
  serial port) the unread output is dropped instead (a pty with no client: the next client
  must not get stale answers). Accepted connections also get a fixed 64 KiB kernel send
  buffer (:class:`protocol.transport.TcpListener`);
- connections: ``max_connections`` TCP clients at once (:data:`DEFAULT_MAX_CONNECTIONS`); one
  more is accepted and closed at once (counted in ``stats.clients_refused``). Running out of
  descriptors (EMFILE) pauses accepting until a client closes or :data:`ACCEPT_RETRY_MS`
  pass; the waiting connections stay queued by the kernel and serving goes on;
- reassembly: each link reassembles at most ``max_reassembly_bytes`` of one APDU
  (:data:`SERVED_MAX_REASSEMBLY_BYTES`, 4 KiB: the largest request the S1SP sends, a
  SCHEDULE_REQUEST holding a 1024-byte FIRMWARE_BLOCK or a SET_TARIFF of
  ``MAX_TARIFF_REQUEST_BYTES``, is under 1.1 KiB; beyond it the link answers FRMR), and
  a connection has at most ``max_stations`` links (:data:`DEFAULT_MAX_STATIONS`, 64): at most
  256 KiB of partial messages per connection and ``max_connections`` x 256 KiB in total
  (256 MiB with the defaults). Everything a connection holds is released when it closes.

Reads are fair: at most :data:`READ_CHUNK_BYTES` (256) from one client per turn of the loop,
so a client that floods requests cannot take the loop from the others.

With ``busy_poll_us`` (``serve --busy-poll-us``; ``serve`` uses :data:`DEFAULT_BUSY_POLL_US`
where it may run on more than one CPU) the loop, after handling any input, keeps looking for
more without sleeping for that many microseconds before it waits as usual: a client sending
one request after another finds the server awake with warm caches instead of waking it from
idle, at the cost of up to that much CPU each time its clients fall quiet. The loop times the
spin on ``busy_clock_ns`` (integer nanoseconds, the operating system's monotonic clock unless
one is given). A loop in a thread of its clients' own process (``emulator.served``) must not
spin: it would hold the interpreter lock they need. :meth:`serve_once`
is one turn of the loop, for a caller that drives it itself.

Logging goes through :mod:`logging` (logger ``secure_emu.serve``; connects and disconnects at
INFO, refusals and bound breaches at WARNING) unless a ``log`` callable is given. Making the
log output itself non-blocking is the caller's part (``emulator.log_output``).

Stopping is prompt: the stop wakes the selector, and :meth:`ServeLoop.stop_from_signal` (what a
signal handler calls) also abandons a blocking write in progress (only transports without a
descriptor, polled, are written to blocking). Once stopping, nothing more is written to
clients. A client closing its end is logged as ``client disconnected``; other transport
failures as ``client gone`` with the reason.

Nothing a client sends may crash the server or stop it serving other clients: the decoder
never raises, and anything that escapes a station or the world for one frame is counted in
the LinkServer's counters, that station is dropped, and serving goes on. This module must never
do port I/O except through :mod:`protocol.transport`, and never read a clock except the one
it is given.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from protocol.clock import MonotonicClock
from protocol.hdlc import Addressing
from protocol.link import LinkParameters, LinkStation, Role
from protocol.link_mux import DEFAULT_MAX_STATIONS, ApduServer, LinkServer
from protocol.trace import FrameTrace, line_trace
from protocol.transport import (
    AcceptFailedError,
    ByteTransport,
    TcpListener,
    TransportClosedError,
    TransportError,
)

__all__ = [
    "ACCEPT_RETRY_MS",
    "DEFAULT_ADVANCE_INTERVAL_MS",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_OUTPUT_BYTES",
    "LOGGER_NAME",
    "SERVED_MAX_REASSEMBLY_BYTES",
    "STALE_OUTPUT_MS",
    "ServeLoop",
    "ServeStoppedError",
    "World",
]

#: How often a serving loop on real time calls ``world.advance()`` while idle.
DEFAULT_ADVANCE_INTERVAL_MS = 1000
#: Most bytes read from one client in one turn of the loop: fairness between clients. A
#: well-behaved client has one frame in flight (window 1, 128-byte information fields by
#: default), which fits; a client with a backlog of frames gets a few of them handled per turn,
#: no more than the others.
READ_CHUNK_BYTES = 256
#: Longest a serving loop sleeps without looking at its stop flag.
MAX_WAIT_MS = 1000
#: TCP clients served at once; one more is accepted and closed at once.
DEFAULT_MAX_CONNECTIONS = 1024
#: ``serve``'s busy time after input (microseconds) where it may run on more than one CPU
#: (:func:`default_busy_poll_us`): a client sending requests back to back over a pty
#: (``DeviceClient``) sends the next well inside it; it is also Linux's halt-polling default.
DEFAULT_BUSY_POLL_US = 200
#: Unwritten answers one client may have waiting; a TCP client over it is disconnected.
DEFAULT_MAX_OUTPUT_BYTES = 256 * 1024
#: Output a stream (pty, serial port) has not taken for this long is dropped as stale.
STALE_OUTPUT_MS = 2000
#: Largest APDU one served link reassembles (the S1SP's largest request is under 1.1 KiB).
SERVED_MAX_REASSEMBLY_BYTES = 4096
#: After running out of descriptors, accepting resumes when a client closes or after this.
ACCEPT_RETRY_MS = 100
#: Connections taken from one listener in one turn of the loop.
ACCEPT_BATCH = 64
#: The logger the loop reports to when no ``log`` callable is given.
LOGGER_NAME = "secure_emu.serve"

_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE


def default_busy_poll_us() -> int:
    """:data:`DEFAULT_BUSY_POLL_US` where this process may run on more than one CPU, else 0
    (with one CPU the client cannot run while the server looks: over a pty, client and server
    pinned to one CPU, 200 us gave no faster round trip and cost the server more CPU)."""
    usable_cpus = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                   else os.cpu_count() or 1)
    return DEFAULT_BUSY_POLL_US if usable_cpus > 1 else 0


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


@dataclass(eq=False)
class _Client:
    transport: ByteTransport
    server: LinkServer
    name: str
    #: an accepted TCP connection (disconnected over its output bound; counts to the cap)
    is_connection: bool = False
    fd: int | None = None
    #: the transport's non-blocking write, or None: written to blocking (no descriptor)
    write_some: Callable[[bytes | memoryview], int] | None = None
    out: bytearray = field(default_factory=bytearray)
    #: when the output buffer last became non-empty (stream staleness)
    out_since_ms: int = 0
    closed: bool = False


@dataclass
class _LoopStats:
    clients_accepted: int = 0
    clients_closed: int = 0
    #: connections accepted and closed at once because ``max_connections`` were open
    clients_refused: int = 0
    #: TCP clients disconnected for leaving more than ``max_output_bytes`` unread
    clients_over_output_bound: int = 0
    #: times accepting paused because the process ran out of descriptors (EMFILE and kin)
    accept_pauses: int = 0
    #: bytes of unread output dropped on streams (over the bound or stale)
    output_bytes_dropped: int = 0
    errors: list[str] = field(default_factory=list)


class ServeLoop:
    """Serve one world on streams (pty, serial) and TCP listeners until told to stop."""

    def __init__(self, world: World, link_clock: MonotonicClock, *,
                 advance_interval_ms: int | None = DEFAULT_ADVANCE_INTERVAL_MS,
                 parameters: LinkParameters | None = None,
                 trace_line: Callable[[str], None] | None = None,
                 log: Callable[[str], None] | None = None,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
                 max_stations: int = DEFAULT_MAX_STATIONS,
                 max_reassembly_bytes: int = SERVED_MAX_REASSEMBLY_BYTES,
                 addressing: Addressing = Addressing.FLAT,
                 busy_poll_us: int = 0,
                 busy_clock_ns: Callable[[], int] = time.monotonic_ns) -> None:
        """``log`` receives every message as one string (else the ``secure_emu.serve``
        logger); the ``max_*`` bounds are described in the module docstring. With
        ``busy_poll_us``, the loop keeps looking for input without sleeping for that many
        microseconds (on ``busy_clock_ns``) after it last handled any."""
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, not {max_connections}")
        self._world = world
        self._addressing = addressing
        self._clock = link_clock
        self._advance_interval_ms = advance_interval_ms
        self._parameters = parameters or LinkParameters()
        self._trace_line = trace_line
        self._log_callable = log
        self._logger = logging.getLogger(LOGGER_NAME)
        self._max_connections = max_connections
        self._max_output_bytes = max_output_bytes
        self._max_stations = max_stations
        self._max_reassembly_bytes = max_reassembly_bytes
        self._selector = selectors.DefaultSelector()
        self._clients: dict[int, _Client] = {}
        self._pollers: list[_Client] = []  # transports without a descriptor
        self._timed: set[_Client] = set()  # clients with a link timer set
        self._stale_watch: set[_Client] = set()  # streams with output waiting
        self._connections = 0
        self._listeners: dict[int, TcpListener] = {}
        self._paused_listeners: dict[int, TcpListener] = {}
        self._resume_accept_ms: int | None = None
        self._next_advance_ms: int | None = None  # set on the first turn (real time only)
        if busy_poll_us < 0:
            raise ValueError(f"busy_poll_us must be 0 or more, not {busy_poll_us}")
        self._busy_poll_ns = busy_poll_us * 1000
        self._busy_clock_ns = busy_clock_ns
        self._busy_until_ns = 0  # look without sleeping until then (busy_poll_us after input)
        self._refusing = False  # at the cap: the first refusal is logged, the rest counted
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._selector.register(self._wake_read, _READ)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._wake_closed = False
        self._writing = False  # inside a blocking transport write, which a stop may abandon
        self.stats = _LoopStats()

    # ----------------------------------------------------------------------------------------
    def _log(self, message: str, level: int = logging.INFO) -> None:
        if self._log_callable is not None:
            self._log_callable(message)
        else:
            self._logger.log(level, "%s", message)

    def _warn(self, message: str) -> None:
        self._log(message, logging.WARNING)

    def _make_server(self, name: str) -> LinkServer:
        trace: FrameTrace | None = None
        if self._trace_line is not None:
            trace = line_trace(self._trace_line, peer=name)
        return LinkServer(self._world, parameters=self._parameters, trace=trace,
                          max_stations=self._max_stations,
                          station_factory=self._new_station,
                          on_error=self._warn, addressing=self._addressing)

    def _new_station(self, server_address: int, client_address: int) -> LinkStation:
        return LinkStation(Role.SERVER, server_address, client_address,
                           parameters=self._parameters,
                           max_reassembly_bytes=self._max_reassembly_bytes)

    def _register(self, client: _Client) -> None:
        """Wait on the client's descriptor (non-blocking writes) or poll it (blocking)."""
        fileno = getattr(client.transport, "fileno", None)
        try:
            fd = fileno() if fileno is not None else None
        except OSError:
            fd = None
        if fd is None:
            self._pollers.append(client)
            return
        client.fd = fd
        client.write_some = getattr(client.transport, "write_some", None)
        self._clients[fd] = client
        self._selector.register(fd, _READ, client)

    def add_stream(self, transport: ByteTransport, *, name: str = "port") -> LinkServer:
        """Serve one byte stream (pty master, serial port). The loop closes it when done."""
        client = _Client(transport, self._make_server(name), name)
        self._register(client)
        return client.server

    def add_listener(self, listener: TcpListener) -> None:
        """Accept TCP clients; each gets its own LinkServer over the shared world."""
        self._listeners[listener.fileno()] = listener
        self._selector.register(listener.fileno(), _READ, listener)

    def request_stop(self) -> None:
        """Ask the loop to stop soon; safe from a signal handler or another thread."""
        self._stop.set()
        with self._lock:
            if not self._wake_closed:
                with contextlib.suppress(OSError):
                    os.write(self._wake_write, b"\0")

    def stop_from_signal(self) -> None:
        """:meth:`request_stop`, for a signal handler: a blocking write in progress at that
        moment is abandoned (ServeStoppedError is raised into it) so that the loop stops at
        once."""
        self.request_stop()
        if self._writing:
            raise ServeStoppedError

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def connection_count(self) -> int:
        """TCP clients connected now."""
        return self._connections

    def run(self) -> None:
        """Serve until :meth:`request_stop`; then close clients and save the world."""
        try:
            while not self._stop.is_set():
                self.serve_once()
        finally:
            self._shutdown()

    def serve_once(self, max_wait_ms: int = MAX_WAIT_MS) -> None:
        """One turn of the loop: wait until a descriptor is ready, a timer is due or
        ``max_wait_ms`` pass (0: do not wait), handle what is ready, run the timers that are
        due. :meth:`run` calls it until stopped; a caller driving the loop itself (a load
        generator in the same process) calls it and then :meth:`close` when done."""
        now_ms = self._clock.monotonic_ms()
        if self._next_advance_ms is None and self._advance_interval_ms is not None:
            self._next_advance_ms = now_ms + self._advance_interval_ms
        wait_ms = self._wait_ms(now_ms, min(max_wait_ms, MAX_WAIT_MS))
        ready = self._ready(now_ms, wait_ms)
        for key, mask in ready:
            self._on_ready(key, mask)
        if ready and self._busy_poll_ns:
            self._busy_until_ns = self._busy_clock_ns() + self._busy_poll_ns
        if self._pollers:
            for client in list(self._pollers):
                self._read_from(client, poll_ms=min(wait_ms, 50))
        if not (self._timed or self._stale_watch or self._next_advance_ms is not None
                or self._resume_accept_ms is not None):
            return
        now_ms = self._clock.monotonic_ms()
        self._run_timers(now_ms)
        if self._resume_accept_ms is not None and now_ms >= self._resume_accept_ms:
            self._resume_accepting()
        if self._next_advance_ms is not None and now_ms >= self._next_advance_ms:
            self._advance_world()
            assert self._advance_interval_ms is not None  # set: advancing on real time
            self._next_advance_ms = now_ms + self._advance_interval_ms

    def close(self) -> None:
        """Close every client and listener and save the world (what :meth:`run` does when
        it stops); for a caller driving :meth:`serve_once` itself."""
        self._shutdown()

    def _ready(self, now_ms: int, wait_ms: int) -> list[tuple[selectors.SelectorKey, int]]:
        """What is ready, waiting up to ``wait_ms``: without sleeping while busy polling."""
        select = self._selector.select
        if wait_ms and self._busy_poll_ns:
            busy_clock_ns = self._busy_clock_ns
            started_ns = busy_clock_ns()
            if started_ns < self._busy_until_ns:
                # never past the wait's own end (a timer due sooner than the busy time)
                spin_until_ns = min(self._busy_until_ns, started_ns + wait_ms * 1_000_000)
                while True:
                    if ready := select(0):
                        return ready
                    if busy_clock_ns() >= spin_until_ns:
                        break
                # a timer still fires on time: the wait is shortened by the time spent looking
                wait_ms = max(0, now_ms + wait_ms - self._clock.monotonic_ms())
        return select(wait_ms / 1000 if wait_ms else 0)

    def _wait_ms(self, now_ms: int, longest_ms: int) -> int:
        """How long the next wait may last: ``longest_ms``, or less to the first deadline."""
        deadline_ms = now_ms + longest_ms
        if self._next_advance_ms is not None:
            deadline_ms = min(deadline_ms, self._next_advance_ms)
        if self._resume_accept_ms is not None:
            deadline_ms = min(deadline_ms, self._resume_accept_ms)
        for client in self._timed:
            deadline = client.server.next_timeout_ms()
            if deadline is not None:
                deadline_ms = min(deadline_ms, deadline)
        for client in self._stale_watch:
            deadline_ms = min(deadline_ms, client.out_since_ms + STALE_OUTPUT_MS)
        return max(0, deadline_ms - now_ms)

    def _all_clients(self) -> list[_Client]:
        return [*self._clients.values(), *self._pollers]

    def _on_ready(self, key: selectors.SelectorKey, mask: int) -> None:
        target = key.data
        if target is None:  # the wake pipe
            with contextlib.suppress(OSError):
                os.read(self._wake_read, 4096)
        elif isinstance(target, _Client):
            if mask & selectors.EVENT_WRITE:
                self._flush(target)
            if mask & _READ and not target.closed:
                self._read_from(target, poll_ms=0)
        else:
            self._accept_from(target)

    # ---------------------------------------------------------------------------- accepting
    def _accept_from(self, listener: TcpListener) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                transport = listener.accept_nowait()
            except AcceptFailedError as error:
                if error.out_of_resources:
                    self._pause_accepting(listener, str(error))
                else:
                    self._warn(str(error))
                return
            if transport is None:
                return
            if self._connections >= self._max_connections:
                transport.close()
                self.stats.clients_refused += 1
                if not self._refusing:
                    self._refusing = True
                    self._warn(f"refusing connections: {self._max_connections} clients "
                               "connected (--max-connections); serving goes on")
                continue
            name = getattr(transport, "name", "tcp")
            client = _Client(transport, self._make_server(name), name, is_connection=True)
            self._register(client)
            self._connections += 1
            self.stats.clients_accepted += 1
            self._log(f"client connected: {name}")

    def _pause_accepting(self, listener: TcpListener, reason: str) -> None:
        fd = listener.fileno()
        if fd in self._paused_listeners:
            return
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(fd)
        self._paused_listeners[fd] = listener
        self._resume_accept_ms = self._clock.monotonic_ms() + ACCEPT_RETRY_MS
        self.stats.accept_pauses += 1
        self._warn(f"{reason}; accepting paused until a client closes ({self._connections} "
                   "clients connected; raise the descriptor limit, ulimit -n, to serve more)")

    def _resume_accepting(self) -> None:
        self._resume_accept_ms = None
        for fd, listener in list(self._paused_listeners.items()):
            del self._paused_listeners[fd]
            self._selector.register(fd, _READ, listener)

    # ----------------------------------------------------------------------------- reading
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
            self._send(client, reply)
        self._note_timer(client)

    def _note_timer(self, client: _Client) -> None:
        if client.closed:
            return
        if client.server.next_timeout_ms() is None:
            self._timed.discard(client)
        else:
            self._timed.add(client)

    # ----------------------------------------------------------------------------- writing
    def _send(self, client: _Client, data: bytes) -> None:
        """Queue ``data`` for a client and write what its descriptor takes now, unless
        stopping. Never waits, except on a transport without a descriptor."""
        if self._stop.is_set() or client.closed:
            return
        if client.write_some is None:
            self._write_blocking(client, data)
            return
        if client.out:
            client.out += data
        else:
            try:
                written = client.write_some(data)
            except TransportError as error:
                self._close_client(client, str(error))
                return
            if written == len(data):
                return
            client.out += memoryview(data)[written:]
            client.out_since_ms = self._clock.monotonic_ms()
            if client.fd is not None:  # backpressure: not read until it takes its answers
                self._selector.modify(client.fd, _WRITE, client)
            self._stale_watch.add(client)
        if len(client.out) > self._max_output_bytes:
            self._over_output_bound(client)

    def _flush(self, client: _Client) -> None:
        """The descriptor is writable: write what is waiting."""
        if client.write_some is None or client.closed:
            return
        try:
            written = client.write_some(client.out) if client.out else 0
        except TransportError as error:
            self._close_client(client, str(error))
            return
        del client.out[:written]
        if not client.out:
            self._output_drained(client)
        elif written:
            client.out_since_ms = self._clock.monotonic_ms()

    def _output_drained(self, client: _Client) -> None:
        client.out = bytearray()
        self._stale_watch.discard(client)
        if client.fd is not None and not client.closed:
            self._selector.modify(client.fd, _READ, client)

    def _over_output_bound(self, client: _Client) -> None:
        self._give_up_output(client, f"over the bound of {self._max_output_bytes}")

    def _output_stalled(self, client: _Client) -> None:
        self._give_up_output(client, f"none taken for {STALE_OUTPUT_MS} ms")

    def _give_up_output(self, client: _Client, why: str) -> None:
        """A client does not read: disconnect a TCP client, drop a stream's output."""
        if client.is_connection:
            self.stats.clients_over_output_bound += 1
            self._close_client(client, f"{client.name} left {len(client.out)} bytes of answers "
                                       f"unread ({why}); disconnected", level=logging.WARNING)
        else:
            self._drop_stream_output(client, why)

    def _drop_stream_output(self, client: _Client, why: str) -> None:
        """A stream nobody reads: drop what waits for it (and what its peer left unread)."""
        dropped = len(client.out)
        self.stats.output_bytes_dropped += dropped
        discard = getattr(client.transport, "discard_unread_output", None)
        if discard is not None:
            discard()
        self._output_drained(client)
        self._warn(f"dropped {dropped} bytes nobody read on {client.name} ({why})")

    def _write_blocking(self, client: _Client, data: bytes) -> None:
        """Write to a transport without a descriptor; a stop from a signal abandons it."""
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

    # ------------------------------------------------------------------------------ timers
    def _run_timers(self, now_ms: int) -> None:
        for client in list(self._timed):
            deadline = client.server.next_timeout_ms()
            if deadline is not None and deadline <= now_ms:
                reply = client.server.handle_timeout(now_ms)
                if reply:
                    self._send(client, reply)
            self._note_timer(client)
        for client in list(self._stale_watch):
            if client.out and now_ms - client.out_since_ms >= STALE_OUTPUT_MS:
                self._output_stalled(client)

    def _advance_world(self) -> None:
        try:
            self._world.advance()
        except Exception as error:  # keep serving; report it
            self.stats.errors.append(f"world.advance failed: {error}")
            self._warn(f"world.advance failed: {error}")

    # ----------------------------------------------------------------------------- closing
    def _close_client(self, client: _Client, reason: str | None, *,
                      level: int = logging.INFO) -> None:
        """Forget a client and release all it holds; ``reason`` None means it closed its
        end (a normal disconnect)."""
        if client.closed:
            return
        client.closed = True
        self._log(f"client disconnected: {client.name}" if reason is None
                  else f"client gone: {reason}", level)
        self.stats.clients_closed += 1
        if client in self._pollers:
            self._pollers.remove(client)
        if client.fd is not None and self._clients.get(client.fd) is client:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(client.fd)
            del self._clients[client.fd]
        self._timed.discard(client)
        self._stale_watch.discard(client)
        client.out = bytearray()
        client.server.clear()
        client.transport.close()
        if client.is_connection:
            self._connections -= 1
            if self._connections < self._max_connections:
                self._refusing = False
            if self._paused_listeners:  # a descriptor was freed: try accepting again
                self._resume_accepting()

    def _shutdown(self) -> None:
        for client in self._all_clients():
            client.closed = True
            client.transport.close()
        self._clients.clear()
        self._pollers.clear()
        self._timed.clear()
        self._stale_watch.clear()
        for listener in [*self._listeners.values(), *self._paused_listeners.values()]:
            listener.close()
        self._listeners.clear()
        self._paused_listeners.clear()
        self._selector.close()
        with self._lock:
            self._wake_closed = True
            for fd in (self._wake_read, self._wake_write):
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._world.save()
