"""The one link driver: many HDLC links over one byte stream, for either role, sans-I/O.

A :class:`LinkMux` owns a :class:`~protocol.stream.FrameStreamDecoder` and one
:class:`~protocol.link.LinkStation` per :class:`AddressPair` (client address, server address).
Bytes in (:meth:`LinkMux.receive_bytes`) are decoded, each frame is routed by its addresses to
its station, the station's :data:`~protocol.link.LinkEvent` values go to the ``on_events``
callback (which may queue APDUs on the station), and the bytes the stations must send come
back out, encoded. Timers run through :meth:`LinkMux.handle_timeout` at the time
:meth:`LinkMux.next_timeout_ms` names; every frame in and out goes to the optional
:data:`~protocol.trace.FrameTrace`.

The client (:class:`protocol.client.DeviceClient`) creates its stations itself and routes only
to them; the server role (:class:`LinkServer`) creates a station for each new pair whose server
address it serves, bounded, and hands every received APDU to ``handle_apdu(server_address,
apdu_bytes) -> bytes | None``, queuing the answer on the station.

This module must never do I/O, read a clock (time comes in as ``now_ms``) or sleep.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from protocol.hdlc_codec import encode_frame
from protocol.link import ApduReceived, LinkEvent, LinkParameters, LinkState, LinkStation, Role
from protocol.stream import FrameStreamDecoder
from protocol.trace import FrameTrace

__all__ = ["DEFAULT_MAX_STATIONS", "AddressPair", "ApduServer", "LinkMux", "LinkServer",
           "MuxCounters", "ServerCounters"]

#: Link stations a server-role multiplexer keeps; beyond it the least recently used is dropped.
DEFAULT_MAX_STATIONS = 64


class AddressPair(NamedTuple):
    """The two ends of one link: the client's address and the server's."""

    client_address: int
    server_address: int


#: AddressPair without the keyword-argument handling of its ``__new__`` (once per frame).
_new_pair = tuple.__new__

#: ``on_events(pair, station, events, now_ms)``: what one station reported for one frame or
#: timer; the callback may queue APDUs on ``station``.
EventHandler = Callable[[AddressPair, LinkStation, "list[LinkEvent]", int], None]


@dataclass
class MuxCounters:
    """What a multiplexer has seen and done, for diagnostics."""

    frames_received: int = 0
    frames_sent: int = 0
    #: frames for a pair no station here takes (server: an address not served; client: not
    #: to our address, or from a server we have no link to)
    frames_to_unknown_address: int = 0
    stations_dropped: int = 0
    internal_errors: int = 0
    last_internal_error: str = ""


class LinkMux:
    """Sans-I/O: bytes in, events per address pair, bytes out."""

    def __init__(self, role: Role, on_events: EventHandler, *,
                 accepts: Callable[[AddressPair], bool] | None = None,
                 new_station: Callable[[AddressPair], LinkStation] | None = None,
                 max_stations: int | None = None, trace: FrameTrace | None = None,
                 on_error: Callable[[str], None] | None = None,
                 counters: MuxCounters | None = None) -> None:
        """``accepts`` (checked for every frame) says which pairs are served at all;
        ``new_station`` makes a station for a served pair not seen before (without it, frames
        go only to stations added with :meth:`add_station`); ``max_stations`` bounds them,
        least recently used dropped first. With ``on_error``, an exception from a station or
        ``on_events`` drops that station and is reported there; without it, it propagates."""
        self._is_server = role is Role.SERVER
        self._on_events = on_events
        self._accepts = accepts
        self._new_station = new_station
        self._max_stations = max_stations
        self._trace = trace
        self._on_error = on_error
        self._decoder = FrameStreamDecoder()
        self._stations: dict[AddressPair, LinkStation] = {}
        self.counters = counters if counters is not None else MuxCounters()

    @property
    def decoder(self) -> FrameStreamDecoder:
        """The stream decoder, whose counters say what was discarded and why."""
        return self._decoder

    @property
    def station_count(self) -> int:
        return len(self._stations)

    def station(self, pair: AddressPair) -> LinkStation | None:
        return self._stations.get(pair)

    def stations(self) -> list[LinkStation]:
        return list(self._stations.values())

    def add_station(self, pair: AddressPair, station: LinkStation) -> None:
        """Route ``pair``'s frames to ``station`` (replacing any station it had)."""
        self._stations[pair] = station

    def remove_station(self, pair: AddressPair) -> None:
        self._stations.pop(pair, None)

    def clear(self) -> None:
        self._stations.clear()

    # ----------------------------------------------------------------------------------------
    def receive_bytes(self, data: bytes, now_ms: int) -> bytes:
        """Feed bytes from the peer; return every byte to send back (possibly ``b""``)."""
        out: list[bytes] = []
        counters = self.counters
        for frame in self._decoder.feed(data):
            counters.frames_received += 1
            if self._trace is not None:
                self._trace("rx", frame, now_ms)
            if self._is_server:
                pair = _new_pair(AddressPair, (frame.source_address, frame.destination_address))
            else:
                pair = _new_pair(AddressPair, (frame.destination_address, frame.source_address))
            if self._accepts is not None and not self._accepts(pair):
                counters.frames_to_unknown_address += 1
                continue
            try:
                station = self._station_for(pair)
                if station is None:
                    counters.frames_to_unknown_address += 1
                    continue
                self._answer(pair, station, station.receive_frame(frame, now_ms), now_ms, out)
            except Exception as error:  # one station must not stop the others
                self._fail(pair, error)
        return b"".join(out)

    def handle_timeout(self, now_ms: int) -> bytes:
        """Run due link timers; return the bytes they produce."""
        out: list[bytes] = []
        for pair, station in list(self._stations.items()):
            deadline = station.next_timeout_ms()
            if deadline is None or deadline > now_ms:
                continue
            try:
                self._answer(pair, station, station.handle_timeout(now_ms), now_ms, out)
            except Exception as error:  # one station must not stop the others
                self._fail(pair, error)
        return b"".join(out)

    def bytes_to_send(self, now_ms: int) -> bytes:
        """Every frame any station has queued (after connect, send_apdu, disconnect)."""
        out: list[bytes] = []
        for station in self._stations.values():
            self._drain(station, now_ms, out)
        return b"".join(out)

    def next_timeout_ms(self) -> int | None:
        """Earliest link timer of any station, or ``None``."""
        deadlines = [d for s in self._stations.values() if (d := s.next_timeout_ms()) is not None]
        return min(deadlines, default=None)

    # ----------------------------------------------------------------------------------------
    def _station_for(self, pair: AddressPair) -> LinkStation | None:
        stations = self._stations
        station = stations.get(pair)
        if station is None:
            if self._new_station is None:
                return None
            if self._max_stations is not None and len(stations) >= self._max_stations:
                self._evict_one()
            station = stations[pair] = self._new_station(pair)
        elif self._max_stations is not None:
            del stations[pair]  # most recently used last
            stations[pair] = station
        return station

    def _evict_one(self) -> None:
        victim = next((pair for pair, station in self._stations.items()
                       if station.state is LinkState.DISCONNECTED),
                      next(iter(self._stations)))
        del self._stations[victim]
        self.counters.stations_dropped += 1

    def _answer(self, pair: AddressPair, station: LinkStation, events: list[LinkEvent],
                now_ms: int, out: list[bytes]) -> None:
        """Hand a station's events to the application, then take what the station must send."""
        if events:
            self._on_events(pair, station, events, now_ms)
        self._drain(station, now_ms, out)

    def _drain(self, station: LinkStation, now_ms: int, out: list[bytes]) -> None:
        for frame in station.frames_to_send():
            if self._trace is not None:
                self._trace("tx", frame, now_ms)
            out.append(encode_frame(frame))
            self.counters.frames_sent += 1

    def _fail(self, pair: AddressPair, error: Exception) -> None:
        if self._on_error is None:
            raise error
        self._stations.pop(pair, None)
        counters = self.counters
        counters.stations_dropped += 1
        counters.internal_errors += 1
        counters.last_internal_error = f"{type(error).__name__}: {error}"
        self._on_error(f"dropped the link of client {pair.client_address} to server address "
                       f"{pair.server_address} after an internal error: "
                       f"{counters.last_internal_error}")


# --------------------------------------------------------------------------------------------
# The server role
# --------------------------------------------------------------------------------------------


class ApduServer(Protocol):
    """What the server role needs from the devices behind it (``emulator.world`` fits)."""

    def server_addresses(self) -> frozenset[int]: ...

    def handle_apdu(self, server_address: int, apdu: bytes) -> bytes | None: ...


@dataclass
class ServerCounters(MuxCounters):
    """What one LinkServer has seen, for diagnostics."""

    apdus_handled: int = 0


class LinkServer(LinkMux):
    """The server role over one client byte stream: a station per (server address, client
    address) the devices serve; every received APDU goes to ``devices.handle_apdu`` and its
    answer back on the same link. Nothing a client sends may raise out of it."""

    def __init__(self, devices: ApduServer, *, parameters: LinkParameters | None = None,
                 max_stations: int = DEFAULT_MAX_STATIONS, trace: FrameTrace | None = None,
                 station_factory: Callable[[int, int], LinkStation] | None = None,
                 on_error: Callable[[str], None] | None = None) -> None:
        self._devices = devices
        self._parameters = parameters or LinkParameters()
        self._station_factory = station_factory or self._default_station
        super().__init__(Role.SERVER, self._deliver,
                         accepts=lambda pair: pair.server_address in devices.server_addresses(),
                         new_station=self._new_server_station, max_stations=max_stations,
                         trace=trace, on_error=on_error or _ignore_error,
                         counters=ServerCounters())
        self.counters: ServerCounters

    def _default_station(self, server_address: int, client_address: int) -> LinkStation:
        return LinkStation(Role.SERVER, server_address, client_address,
                           parameters=self._parameters)

    def _new_server_station(self, pair: AddressPair) -> LinkStation:
        return self._station_factory(pair.server_address, pair.client_address)

    def _deliver(self, pair: AddressPair, station: LinkStation, events: list[LinkEvent],
                 now_ms: int) -> None:
        for event in events:
            if isinstance(event, ApduReceived):
                self.counters.apdus_handled += 1
                answer = self._devices.handle_apdu(pair.server_address, event.apdu)
                if answer is not None:
                    station.send_apdu(answer, now_ms)


def _ignore_error(message: str) -> None:
    """A LinkServer without an error sink still drops the failing station and counts it."""
