"""LinkMux: one byte stream, many links, for either role (the server role is exercised through
LinkServer in tests/emulator/test_serve.py and tests/protocol/test_client.py)."""

from __future__ import annotations

import pytest

from protocol.hdlc import FrameType, HdlcFrame
from protocol.hdlc_codec import decode_frame, encode_frame
from protocol.link import Connected, LinkEvent, LinkState, LinkStation, Role
from protocol.link_mux import AddressPair, LinkMux

CLIENT_ADDRESS = 0x10
METER_ADDRESS = 16


def ua(destination: int, source: int) -> bytes:
    return encode_frame(HdlcFrame.make(FrameType.UA, destination, source))


def connecting_client(on_events=None, **options) -> tuple[LinkMux, LinkStation]:  # type: ignore[no-untyped-def]
    mux = LinkMux(Role.CLIENT, on_events or (lambda *args: None), **options)
    station = LinkStation(Role.CLIENT, CLIENT_ADDRESS, METER_ADDRESS)
    mux.add_station(AddressPair(CLIENT_ADDRESS, METER_ADDRESS), station)
    station.connect(0)
    return mux, station


def test_queued_frames_come_out_encoded_and_traced() -> None:
    traced: list[tuple[str, FrameType | None]] = []
    mux, _ = connecting_client(trace=lambda d, frame, now_ms: traced.append((d, frame.frame_type)))
    out = mux.bytes_to_send(0)
    assert decode_frame(out).frame_type is FrameType.SNRM
    assert traced == [("tx", FrameType.SNRM)]
    assert mux.bytes_to_send(0) == b""


def test_client_role_routes_a_frame_to_the_station_of_its_address_pair() -> None:
    seen: list[tuple[AddressPair, list[LinkEvent]]] = []
    mux, station = connecting_client(lambda pair, st, events, now_ms: seen.append((pair, events)))
    mux.bytes_to_send(0)
    mux.receive_bytes(ua(CLIENT_ADDRESS, METER_ADDRESS), 5)
    assert station.state is LinkState.CONNECTED
    assert [(pair, type(events[0])) for pair, events in seen] == [
        (AddressPair(CLIENT_ADDRESS, METER_ADDRESS), Connected)]


def test_client_role_never_makes_stations_and_counts_frames_for_other_pairs() -> None:
    mux, station = connecting_client()
    mux.bytes_to_send(0)
    mux.receive_bytes(ua(0x11, METER_ADDRESS) + ua(CLIENT_ADDRESS, 99), 5)
    assert mux.counters.frames_to_unknown_address == 2
    assert mux.station_count == 1
    assert station.state is LinkState.CONNECTING


def test_an_application_error_propagates_without_an_error_sink() -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("application bug")

    mux, _ = connecting_client(broken)
    mux.bytes_to_send(0)
    with pytest.raises(RuntimeError, match="application bug"):
        mux.receive_bytes(ua(CLIENT_ADDRESS, METER_ADDRESS), 5)


def test_with_an_error_sink_the_failing_station_is_dropped_and_reported() -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("application bug")

    reports: list[str] = []
    mux, _ = connecting_client(broken, on_error=reports.append)
    mux.bytes_to_send(0)
    assert mux.receive_bytes(ua(CLIENT_ADDRESS, METER_ADDRESS), 5) == b""
    assert mux.station_count == 0
    assert (mux.counters.internal_errors, mux.counters.stations_dropped) == (1, 1)
    assert reports == ["dropped the link of client 16 to server address 16 after an internal "
                       "error: RuntimeError: application bug"]


def test_timers_run_through_the_multiplexer_at_the_time_it_names() -> None:
    mux, _ = connecting_client()
    mux.bytes_to_send(0)
    assert mux.next_timeout_ms() == 1000
    assert mux.handle_timeout(999) == b""
    assert decode_frame(mux.handle_timeout(1000)).frame_type is FrameType.SNRM


def test_each_client_address_gets_its_own_link_to_a_server() -> None:
    from protocol.link_mux import LinkServer

    class Echo:
        def server_addresses(self) -> frozenset[int]:
            return frozenset({METER_ADDRESS})

        def handle_apdu(self, server_address: int, apdu: bytes) -> bytes | None:
            return apdu

    server = LinkServer(Echo())
    for client in (0x10, 0x20):
        snrm = HdlcFrame.make(FrameType.SNRM, METER_ADDRESS, client)
        assert decode_frame(server.receive_bytes(encode_frame(snrm), 0)).frame_type \
            is FrameType.UA
    # client 0x20 sends first; each link numbers its own frames from 0
    for client, apdu in ((0x20, b"b"), (0x10, b"a")):
        request = HdlcFrame.make(FrameType.I, METER_ADDRESS, client, b"\xe6\xe6\x00" + apdu)
        answer = decode_frame(server.receive_bytes(encode_frame(request), 0))
        assert (answer.destination_address, answer.send_sequence, answer.receive_sequence,
                answer.information) == (client, 0, 1, b"\xe6\xe7\x00" + apdu)
    assert server.station_count == 2


class _OneMeter:
    def server_addresses(self) -> frozenset[int]:
        return frozenset({METER_ADDRESS})

    def handle_apdu(self, server_address: int, apdu: bytes) -> bytes | None:
        return apdu


def test_a_link_server_runs_no_timers_even_with_a_link_up() -> None:
    from protocol.link_mux import LinkServer

    server = LinkServer(_OneMeter())
    snrm = HdlcFrame.make(FrameType.SNRM, METER_ADDRESS, CLIENT_ADDRESS)
    assert decode_frame(server.receive_bytes(encode_frame(snrm), 0)).frame_type is FrameType.UA
    assert server.station_count == 1
    assert server.next_timeout_ms() is None
    assert server.handle_timeout(10**9) == b""


def test_a_link_server_refuses_a_station_factory_that_makes_client_stations() -> None:
    from protocol.link_mux import LinkServer

    reports: list[str] = []
    server = LinkServer(_OneMeter(), on_error=reports.append,
                        station_factory=lambda server_address, client_address: LinkStation(
                            Role.CLIENT, client_address, server_address))
    snrm = HdlcFrame.make(FrameType.SNRM, METER_ADDRESS, CLIENT_ADDRESS)
    assert server.receive_bytes(encode_frame(snrm), 0) == b""
    assert server.station_count == 0
    assert reports == ["dropped the link of client 16 to server address 16 after an internal "
                       "error: LinkError: a LinkServer's stations are servers, not CLIENT"]
