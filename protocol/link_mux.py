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
apdu_bytes) -> bytes | None``, queuing the answer on the station. It reads server addresses in
one :class:`~protocol.hdlc.Addressing` mode per link (:func:`dlms_device_address` for the DLMS
reading); in DLMS mode a poll to an address that selects no device is answered with DM.

This module must never do I/O, read a clock (time comes in as ``now_ms``) or sleep.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from protocol.apdu import MANAGEMENT_SERVER_ADDRESS
from protocol.errors import LinkError
from protocol.hdlc import (
    DLMS_ALL_STATION_ADDRESS,
    DLMS_CALLING_ADDRESS,
    DLMS_MANAGEMENT_LOGICAL_DEVICE,
    Addressing,
    FrameType,
    HdlcFrame,
    split_dlms_server_address,
)
from protocol.hdlc_codec import encode_frame
from protocol.link import ApduReceived, LinkEvent, LinkParameters, LinkState, LinkStation, Role
from protocol.stream import FrameStreamDecoder
from protocol.trace import FrameTrace

__all__ = ["DEFAULT_MAX_STATIONS", "DLMS_FIRST_OPEN_LOGICAL_DEVICE", "AddressPair",
           "ApduServer", "LinkMux", "LinkServer", "MuxCounters", "ServerCounters",
           "dlms_device_address"]

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
    #: of those, the polls answered with DM (server role, DLMS addressing)
    unknown_addresses_answered_with_dm: int = 0
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
                 counters: MuxCounters | None = None,
                 answer_unknown: Callable[[HdlcFrame], HdlcFrame | None] | None = None
                 ) -> None:
        """``accepts`` (checked for every frame) says which pairs are served at all;
        ``answer_unknown`` gives the frame (if any) that answers a frame ``accepts`` refused;
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
        self._answer_unknown = answer_unknown
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
                if self._answer_unknown is not None:
                    self._refuse(frame, now_ms, out)
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

    def _refuse(self, frame: HdlcFrame, now_ms: int, out: list[bytes]) -> None:
        assert self._answer_unknown is not None
        answer = self._answer_unknown(frame)
        if answer is None:
            return
        if self._trace is not None:
            self._trace("tx", answer, now_ms)
        out.append(encode_frame(answer))
        self.counters.frames_sent += 1
        self.counters.unknown_addresses_answered_with_dm += 1

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


#: The first upper HDLC address (logical device) IEC 62056-46 leaves open for assignment.
DLMS_FIRST_OPEN_LOGICAL_DEVICE = 0x10
#: Frames that command a station and may carry the poll bit: answered with DM when their
#: address selects no device (DLMS addressing); responses (UA, DM, FRMR) never are.
_COMMAND_FRAME_TYPES = frozenset({FrameType.SNRM, FrameType.DISC, FrameType.I, FrameType.RR,
                                  FrameType.RNR})


def dlms_device_address(server_address: int, served: frozenset[int]) -> int | None:
    """The device a server address selects under DLMS addressing, or None.

    The lower part (physical device) is the device's server address; without one (the 1-byte
    form) it is the management device's. The upper part (logical device) must be 1 (the
    management logical device) or open for assignment (16 up to, not including, the calling
    address): every emulated device is one logical device, reached under any of them."""
    logical, physical, size = split_dlms_server_address(server_address)
    if logical != DLMS_MANAGEMENT_LOGICAL_DEVICE and not (
            DLMS_FIRST_OPEN_LOGICAL_DEVICE <= logical < DLMS_CALLING_ADDRESS[size]):
        return None
    device = MANAGEMENT_SERVER_ADDRESS if physical is None else physical
    return device if device in served else None


class LinkServer(LinkMux):
    """The server role over one client byte stream: a station per (server address, client
    address) the devices serve; every received APDU goes to ``devices.handle_apdu`` and its
    answer back on the same link. Nothing a client sends may raise out of it.

    ``addressing`` says how a frame's server address selects a device: FLAT, the device at
    that address (a frame to any other address is ignored); DLMS, the device
    :func:`dlms_device_address` names, answering under the address the client wrote (a poll
    to an address that selects no device is answered with DM, except an all-station one)."""

    def __init__(self, devices: ApduServer, *, parameters: LinkParameters | None = None,
                 max_stations: int = DEFAULT_MAX_STATIONS, trace: FrameTrace | None = None,
                 station_factory: Callable[[int, int], LinkStation] | None = None,
                 on_error: Callable[[str], None] | None = None,
                 addressing: Addressing = Addressing.FLAT) -> None:
        self._devices = devices
        self._parameters = parameters or LinkParameters()
        self._station_factory = station_factory or self._default_station
        self.addressing = Addressing(addressing)
        dlms = self.addressing is Addressing.DLMS
        super().__init__(Role.SERVER, self._deliver,
                         accepts=self._accepts_dlms if dlms else
                         lambda pair: pair.server_address in devices.server_addresses(),
                         new_station=self._new_server_station, max_stations=max_stations,
                         trace=trace, on_error=on_error or _ignore_error,
                         counters=ServerCounters(),
                         answer_unknown=self._disconnected_mode if dlms else None)
        self.counters: ServerCounters

    def device_address(self, server_address: int) -> int | None:
        """The device (its server address in the profile) a frame's server address selects
        under this link's addressing, or None."""
        served = self._devices.server_addresses()
        if self.addressing is Addressing.DLMS:
            return dlms_device_address(server_address, served)
        return server_address if server_address in served else None

    def _accepts_dlms(self, pair: AddressPair) -> bool:
        return dlms_device_address(pair.server_address,
                                   self._devices.server_addresses()) is not None

    @staticmethod
    def _disconnected_mode(frame: HdlcFrame) -> HdlcFrame | None:
        """DM(F=1) for a poll to an address that selects no device; an all-station address
        is never answered (every station on a shared line would answer at once)."""
        if not frame.poll_final or frame.frame_type not in _COMMAND_FRAME_TYPES:
            return None
        logical, _, size = split_dlms_server_address(frame.destination_address)
        if logical == DLMS_ALL_STATION_ADDRESS[size]:
            return None
        return HdlcFrame.make(FrameType.DM, frame.source_address, frame.destination_address)

    def _default_station(self, server_address: int, client_address: int) -> LinkStation:
        return LinkStation(Role.SERVER, server_address, client_address,
                           parameters=self._parameters)

    def _new_server_station(self, pair: AddressPair) -> LinkStation:
        station = self._station_factory(pair.server_address, pair.client_address)
        if station.role is not Role.SERVER:
            raise LinkError(f"a LinkServer's stations are servers, not {station.role.name}")
        return station

    def next_timeout_ms(self) -> None:
        """None: a server station runs no timers (it answers the client's polls)."""
        return None

    def _deliver(self, pair: AddressPair, station: LinkStation, events: list[LinkEvent],
                 now_ms: int) -> None:
        for event in events:
            if isinstance(event, ApduReceived):
                self.counters.apdus_handled += 1
                device = pair.server_address if self.addressing is Addressing.FLAT \
                    else self.device_address(pair.server_address)
                if device is None:  # the device left the profile since the link came up
                    continue
                answer = self._devices.handle_apdu(device, event.apdu)
                if answer is not None:
                    station.send_apdu(answer, now_ms)


def _ignore_error(message: str) -> None:
    """A LinkServer without an error sink still drops the failing station and counts it."""
