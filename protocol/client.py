"""A blocking request/response client for devices behind one link: the link-backed DeviceChannel.

:class:`DeviceClient` implements ``protocol.s1sp.channel.DeviceChannel`` over a
:class:`~protocol.transport.ByteTransport`: ``request(server_address, request) -> Response``.
It drives a :class:`~protocol.link_mux.LinkMux` (``Role.CLIENT``) with one
:class:`~protocol.link.LinkStation` per server address, connected lazily on first use, numbers
requests with an :class:`InvokeIdCounter` (the response handed back carries the caller's invoke
id again), and waits for the matching response. Retransmission is the link's: the client
sleeps in ``transport.read`` only until the link's ``next_timeout_ms`` and then calls
``handle_timeout``, on an injected clock.

Idempotency keys: every state-changing request (a command not in ``READ_ONLY_COMMANDS``)
goes as a keyed request (docs/protocol.md section 7). A request that has a key keeps it (the
S1SP adapter derives one from the DUIS RequestID; a caller may use
``protocol.apdu.idempotency_key_from_text``); one without gets 16 random bytes. To resend a
request whose outcome is unknown, on this client or a new one (after a reconnect, or a restart
of the emulator), send the ``request`` of the error again: it carries the same key, so the
device applies it at most once and answers a resend with the response it gave.

Errors, exact about whether the request left:

- nothing of the request was sent: the link cannot be brought up (no UA to SNRM after the
  retries, DM, FRMR), or the port failed before the request was written
  -> :class:`~protocol.errors.DeviceUnreachableError`; the device did not apply it;
- the request was written and the link is up, but no response came after the retries
  -> :class:`~protocol.errors.DeviceTimeoutError`, a
  :class:`~protocol.errors.RequestOutcomeUnknownError`;
- the request was written, then the link went away (DM from a restarted device, the port or
  connection closed) -> :class:`~protocol.errors.LinkDroppedError`, also a
  :class:`~protocol.errors.RequestOutcomeUnknownError` (and a ``DeviceUnreachableError``).

A read (READ_*) is sent once more on a fresh link when the link drops; a state-changing
request is not resent by the client itself: the caller decides (read first, then resend the
error's ``request``).

As a backstop, if nothing at all arrives for ``(max_retransmissions + 2) *
retransmit_timeout_ms`` while waiting, the wait ends with the same errors. A response whose
invoke id or command does not match (a stale answer) is dropped and counted.

With ``addressing=Addressing.DLMS`` the client writes each device's server address as the
IEC 62056-46 pair logical device 1, physical device = the device's address (to a server run
with ``serve --addressing dlms``); callers still name devices by their server address.

A DeviceClient is not thread-safe: one caller at a time. This module does no port I/O of its
own (that is :mod:`protocol.transport`) and must never sleep: it only waits in
``transport.read``.
"""

from __future__ import annotations

import dataclasses
import secrets

from protocol.apdu import (
    ADAPTER_CLIENT_ADDRESS,
    IDEMPOTENCY_KEY_SIZE_BYTES,
    READ_ONLY_COMMANDS,
    InvokeIdCounter,
    Request,
    Response,
    decode_apdu,
    encode_request,
)
from protocol.clock import MonotonicClock, RealMonotonicClock
from protocol.errors import (
    ApduError,
    DeviceTimeoutError,
    DeviceUnreachableError,
    LinkDroppedError,
    ProtocolError,
)
from protocol.hdlc import DLMS_MANAGEMENT_LOGICAL_DEVICE, Addressing, dlms_server_address
from protocol.link import (
    ApduReceived,
    Connected,
    Disconnected,
    LinkEvent,
    LinkFailed,
    LinkParameters,
    LinkState,
    LinkStation,
    Role,
)
from protocol.link_mux import AddressPair, LinkMux, MuxCounters
from protocol.stream import FrameStreamDecoder
from protocol.trace import FrameTrace
from protocol.transport import (
    DEFAULT_BAUDRATE,
    ByteTransport,
    SerialTransport,
    TransportError,
    connect_tcp,
    open_port,
)

# RealMonotonicClock (protocol.clock) stays importable from here, where callers found it.
__all__ = ["ClientCounters", "DeviceClient", "RealMonotonicClock"]

#: Bytes read from the transport at a time.
READ_CHUNK_BYTES = 4096
#: Longest :meth:`DeviceClient.close` waits for the devices to confirm a disconnect.
CLOSE_WAIT_MS = 500


@dataclasses.dataclass
class ClientCounters(MuxCounters):
    """What the client has seen, for diagnostics and tests (the link multiplexer's counters
    included)."""

    requests_sent: int = 0
    responses_received: int = 0
    stale_responses_dropped: int = 0
    undecodable_apdus: int = 0


#: What one wait watches for: the outcome to fill in, and the (invoke id, command) of the
#: wanted response (None: waiting for the link to connect).
_Watch = dict[int, "tuple[_Outcome, tuple[int, object] | None]"]


class _Outcome:
    """What a wait for one station ended with."""

    def __init__(self) -> None:
        self.connected = False
        self.response: Response | None = None
        self.failure: LinkFailed | Disconnected | None = None


class DeviceClient:
    """Requests to devices behind one link; implements ``DeviceChannel``."""

    def __init__(self, transport: ByteTransport, *,
                 client_address: int = ADAPTER_CLIENT_ADDRESS,
                 clock: MonotonicClock | None = None,
                 parameters: LinkParameters | None = None,
                 retransmit_timeout_ms: int = 1000, max_retransmissions: int = 3,
                 trace: FrameTrace | None = None, name: str | None = None,
                 addressing: Addressing = Addressing.FLAT) -> None:
        self._transport = transport
        self._addressing = Addressing(addressing)
        self._client_address = client_address
        self._clock = clock or RealMonotonicClock()
        self._parameters = parameters or LinkParameters()
        self._retransmit_timeout_ms = retransmit_timeout_ms
        self._max_retransmissions = max_retransmissions
        self._name = name or getattr(transport, "name", "the port")
        self.counters = ClientCounters()
        self._mux = LinkMux(Role.CLIENT, self._on_events, trace=trace, counters=self.counters)
        self._unsent: list[bytes] = []  # answers the multiplexer produced, not yet written
        self._watch: _Watch = {}
        self._invoke_ids = InvokeIdCounter()
        self._closed = False
        #: set when a request is handed to its station; True once a write carried its frames
        self._request_pending_write = False
        self._request_written = False

    # ----------------------------------------------------------------------------------------
    @classmethod
    def open(cls, *, port: str | None = None, tcp: str | None = None,
             baudrate: int = DEFAULT_BAUDRATE, **options: object) -> DeviceClient:
        """A client on a serial device / pty path / pyserial URL (``port``) or a TCP
        ``host:port`` (``tcp``). Raises :class:`~protocol.transport.TransportError` naming the
        port when it cannot be opened."""
        if (port is None) == (tcp is None):
            raise ValueError("give exactly one of port= or tcp=")
        transport: ByteTransport
        if port is not None:
            transport = open_port(port, baudrate=baudrate)
            if isinstance(transport, SerialTransport):
                transport.reset_input()
            name = port
        else:
            assert tcp is not None
            transport = connect_tcp(tcp)
            name = f"tcp {tcp}"
        return cls(transport, name=name, **options)  # type: ignore[arg-type]

    def __enter__(self) -> DeviceClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def client_address(self) -> int:
        return self._client_address

    @property
    def decoder(self) -> FrameStreamDecoder:
        return self._mux.decoder

    # ----------------------------------------------------------------------------------------
    def request(self, server_address: int, request: Request) -> Response:
        """Send ``request`` to the device at ``server_address`` and return its response.

        A state-changing request without an idempotency key is given one (16 random bytes).
        Raises DeviceUnreachableError (nothing sent), RequestOutcomeUnknownError (sent, no
        answer: DeviceTimeoutError or LinkDroppedError, whose ``request`` is the keyed request
        to resend); ApduError if the request itself cannot be encoded."""
        if self._closed:
            raise DeviceUnreachableError(f"the client for {self._name} is closed")
        read_only = request.command in READ_ONLY_COMMANDS
        if not read_only and request.idempotency_key is None:
            request = dataclasses.replace(
                request, idempotency_key=secrets.token_bytes(IDEMPOTENCY_KEY_SIZE_BYTES))
        # A device that lost the link (restarted) answers DM; a read is safe to send again on
        # a fresh link; a state-changing request goes back to the caller, key attached.
        attempts = 2 if read_only else 1
        wire_address = self.wire_address(server_address)
        for attempt in range(1, attempts + 1):
            outcome = self._exchange(wire_address, request, server_address)
            if outcome.response is not None:
                self.counters.responses_received += 1
                return outcome.response.with_invoke_id(request.invoke_id)
            self._mux.remove_station(self._pair(wire_address))
            if not isinstance(outcome.failure, Disconnected) or attempt == attempts:
                break
        reason = outcome.failure.reason if outcome.failure is not None else "no answer"
        if isinstance(outcome.failure, Disconnected):
            raise LinkDroppedError(
                f"the device at server address {server_address} on {self._name} dropped the "
                f"link while answering {request.command.name}: {reason}; outcome unknown "
                "(read before resending; resending the same request, same idempotency key, "
                "is safe); the next request reconnects",
                request=request, server_address=server_address)
        raise DeviceTimeoutError(
            f"no response from the device at server address {server_address} on "
            f"{self._name} to {request.command.name} after {self._max_retransmissions} "
            f"retransmissions ({reason}); outcome unknown (read before resending; resending "
            "the same request, same idempotency key, is safe)",
            request=request, server_address=server_address)

    def _exchange(self, wire_address: int, request: Request, server_address: int) -> _Outcome:
        invoke_id = self._invoke_ids.take()
        apdu = encode_request(request, invoke_id=invoke_id)
        station = self._connected_station(wire_address)
        station.send_apdu(apdu, self._clock.monotonic_ms())
        self.counters.requests_sent += 1
        self._request_pending_write, self._request_written = True, False
        try:
            return self._wait(wire_address, want_response=(invoke_id, request.command))
        except DeviceUnreachableError as error:
            if not self._request_written:
                raise
            raise LinkDroppedError(
                f"{error}; {request.command.name} to server address {server_address} was "
                "sent: outcome unknown (read before resending; resending the same request, "
                "same idempotency key, is safe)",
                request=request, server_address=server_address) from error
        finally:
            self._request_pending_write = False

    def close(self) -> None:
        """Disconnect every link politely (best effort, briefly), then close the transport."""
        if self._closed:
            return
        self._closed = True
        self._watch = {}
        try:
            now_ms = self._clock.monotonic_ms()
            connected = [s for s in self._mux.stations() if s.state is LinkState.CONNECTED]
            for station in connected:
                station.disconnect(now_ms)
            if connected:
                deadline_ms = now_ms + min(CLOSE_WAIT_MS, self._retransmit_timeout_ms)
                self._queue_station_frames(now_ms)
                self._flush()
                while (any(s.state is not LinkState.DISCONNECTED for s in connected)
                       and self._clock.monotonic_ms() < deadline_ms):
                    data = self._transport.read(
                        READ_CHUNK_BYTES, max(0, deadline_ms - self._clock.monotonic_ms()))
                    if not data:
                        break
                    # closing: whatever the stations would answer now is not sent
                    self._mux.receive_bytes(data, self._clock.monotonic_ms())
        except (ProtocolError, OSError):
            pass  # closing anyway
        finally:
            self._mux.clear()
            self._transport.close()

    def wire_address(self, server_address: int) -> int:
        """The server address the frames to the device at ``server_address`` carry: itself
        (flat), or logical device 1 with it as the physical device (DLMS)."""
        if self._addressing is Addressing.DLMS:
            return dlms_server_address(DLMS_MANAGEMENT_LOGICAL_DEVICE, server_address)
        return server_address

    # ----------------------------------------------------------------------------------------
    def _pair(self, server_address: int) -> AddressPair:
        return AddressPair(self._client_address, server_address)

    def _connected_station(self, server_address: int) -> LinkStation:
        pair = self._pair(server_address)
        station = self._mux.station(pair)
        if station is not None and station.state is LinkState.CONNECTED:
            return station
        station = LinkStation(Role.CLIENT, self._client_address, server_address,
                              parameters=self._parameters,
                              retransmit_timeout_ms=self._retransmit_timeout_ms,
                              max_retransmissions=self._max_retransmissions)
        self._mux.add_station(pair, station)
        station.connect(self._clock.monotonic_ms())
        outcome = self._wait(server_address, want_response=None)
        if outcome.connected:
            return station
        self._mux.remove_station(pair)
        reason = outcome.failure.reason if outcome.failure is not None else "no answer"
        raise DeviceUnreachableError(
            f"cannot bring up the link to server address {server_address} on {self._name}: "
            f"{reason}. Check the port, the device address and that the device is served")

    def _backstop_ms(self) -> int:
        return (self._max_retransmissions + 2) * self._retransmit_timeout_ms

    def _wait(self, server_address: int, *, want_response: tuple[int, object] | None
              ) -> _Outcome:
        """Pump frames until the station connects (``want_response`` None), the wanted
        response arrives, or the link gives up."""
        outcome = _Outcome()
        self._watch = {server_address: (outcome, want_response)}
        clock, mux, unsent = self._clock, self._mux, self._unsent
        backstop_ms = self._backstop_ms()
        last_activity_ms = clock.monotonic_ms()
        self._queue_station_frames(last_activity_ms)  # what connect / send_apdu queued
        while True:
            if unsent:
                self._flush()
            if outcome.connected and want_response is None:
                return outcome
            if outcome.response is not None or outcome.failure is not None:
                return outcome
            now_ms = clock.monotonic_ms()
            backstop_at_ms = last_activity_ms + backstop_ms
            if now_ms >= backstop_at_ms:
                outcome.failure = LinkFailed(f"nothing received for {backstop_ms} ms")
                return outcome
            timer_ms = mux.next_timeout_ms()
            wake_ms = backstop_at_ms if timer_ms is None else min(backstop_at_ms, timer_ms)
            try:
                data = self._transport.read(READ_CHUNK_BYTES, max(0, wake_ms - now_ms))
            except TransportError as error:
                mux.clear()
                raise DeviceUnreachableError(f"{self._name}: {error}") from error
            now_ms = clock.monotonic_ms()
            if data:
                last_activity_ms = now_ms
                if reply := mux.receive_bytes(data, now_ms):
                    unsent.append(reply)
            # a timer due now was set before the read (a station sets its timers ahead of
            # the time it is given), so none is due unless the earliest one was
            if timer_ms is not None and timer_ms <= now_ms and (
                    reply := mux.handle_timeout(now_ms)):
                unsent.append(reply)

    def _on_events(self, pair: AddressPair, station: LinkStation, events: list[LinkEvent],
                   now_ms: int) -> None:
        entry = self._watch.get(pair.server_address)
        for event in events:
            if isinstance(event, ApduReceived):
                self._on_apdu(event.apdu, entry)
            elif entry is None:
                continue
            elif isinstance(event, Connected):
                entry[0].connected = True
            elif isinstance(event, (LinkFailed, Disconnected)):
                entry[0].failure = event

    def _on_apdu(self, apdu_bytes: bytes,
                 entry: tuple[_Outcome, tuple[int, object] | None] | None) -> None:
        try:
            apdu = decode_apdu(apdu_bytes)
        except ApduError:
            self.counters.undecodable_apdus += 1
            return
        wanted = entry[1] if entry is not None else None
        if (entry is None or wanted is None or not isinstance(apdu, Response)
                or (apdu.invoke_id, apdu.command) != wanted):
            self.counters.stale_responses_dropped += 1
            return
        entry[0].response = apdu

    def _queue_station_frames(self, now_ms: int) -> None:
        if data := self._mux.bytes_to_send(now_ms):
            self._unsent.append(data)

    def _flush(self) -> None:
        """Write what the stations answered (the multiplexer's output, gathered since the
        last write) in one go."""
        data = b"".join(self._unsent)
        self._unsent.clear()
        if data:
            try:
                self._transport.write(data)
            except TransportError as error:
                self._mux.clear()
                raise DeviceUnreachableError(f"{self._name}: {error}") from error
            if self._request_pending_write:
                self._request_written = True
