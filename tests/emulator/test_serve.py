"""The serving loop: LinkServer (sans-I/O) and ServeLoop over a real pty pair and TCP."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.serve import ServeLoop, default_busy_poll_us
from protocol.apdu import (
    AdjustMeterBalanceRequest,
    AdjustMeterBalanceResponse,
    Balances,
    Command,
    Request,
    Response,
    Status,
    encode_request,
    encode_response,
)
from protocol.client import DeviceClient
from protocol.clock import RealMonotonicClock
from protocol.hdlc import FrameType, HdlcFrame
from protocol.hdlc_codec import encode_frame
from protocol.link_mux import LinkServer
from protocol.transport import ByteTransport, PtyPair, TcpListener, connect_tcp, open_port

METER_ADDRESS = 16


class FakeWorld:
    """Answers READ_METER_BALANCE and ADJUST_METER_BALANCE for one meter; counts calls."""

    def __init__(self) -> None:
        self.meter_balance_pence = 500
        self.handled: list[tuple[int, bytes]] = []
        self.advanced = 0
        self.saved = 0
        self.lock = threading.Lock()

    def server_addresses(self) -> frozenset[int]:
        return frozenset({1, METER_ADDRESS})

    def handle_apdu(self, server_address: int, apdu: bytes) -> bytes | None:
        from protocol.apdu import decode_apdu

        with self.lock:
            self.handled.append((server_address, apdu))
            request = decode_apdu(apdu)
            assert isinstance(request, Request)
            if request.command is Command.ADJUST_METER_BALANCE:
                self.meter_balance_pence += request.body.adjustment_pence
                return encode_response(Response(
                    request.command, request.invoke_id, Status.SUCCESS,
                    body=AdjustMeterBalanceResponse(
                        adjustment_applied_pence=request.body.adjustment_pence,
                        meter_balance_pence=self.meter_balance_pence)))
            return encode_response(Response(
                Command.READ_METER_BALANCE, request.invoke_id, Status.SUCCESS,
                body=Balances(meter_balance_pence=self.meter_balance_pence,
                              emergency_credit_balance_pence=0)))

    def advance(self) -> None:
        self.advanced += 1

    def save(self) -> None:
        self.saved += 1


def read_balance(client: DeviceClient) -> int:
    response = client.request(METER_ADDRESS, Request(Command.READ_METER_BALANCE, 1))
    return int(response.body.meter_balance_pence)


def snrm(destination: int, source: int) -> bytes:
    return encode_frame(HdlcFrame.make(FrameType.SNRM, destination, source))


def test_frames_to_unknown_addresses_are_ignored() -> None:
    server = LinkServer(FakeWorld())
    assert server.receive_bytes(snrm(99, 0x10), 0) == b""
    assert server.counters.frames_to_unknown_address == 1
    assert server.station_count == 0


def test_snrm_to_a_served_address_is_answered_with_ua() -> None:
    server = LinkServer(FakeWorld())
    reply = server.receive_bytes(snrm(METER_ADDRESS, 0x10), 0)
    assert reply.startswith(b"\x7e") and reply.endswith(b"\x7e")
    from protocol.hdlc_codec import decode_frame

    frame = decode_frame(reply)
    assert frame.frame_type is FrameType.UA
    assert (frame.destination_address, frame.source_address) == (0x10, METER_ADDRESS)


def test_one_station_per_server_and_client_address_pair() -> None:
    server = LinkServer(FakeWorld())
    for client_address in (0x10, 0x11):
        for server_address in (1, METER_ADDRESS):
            server.receive_bytes(snrm(server_address, client_address), 0)
    assert server.station_count == 4


def test_station_table_is_bounded_against_a_flood_of_client_addresses() -> None:
    server = LinkServer(FakeWorld(), max_stations=8)
    for client_address in range(0x10, 0x10 + 100):
        server.receive_bytes(snrm(METER_ADDRESS, client_address), 0)
    assert server.station_count == 8


def drive_one_request(server: LinkServer, client_address: int, request: Request,
                      now_ms: int) -> Response:
    """A bare client LinkStation against ``server``: connect, send, return the response."""
    from protocol.apdu import decode_apdu
    from protocol.hdlc_codec import decode_frame
    from protocol.link import ApduReceived, Connected, LinkStation, Role
    from protocol.stream import FrameStreamDecoder

    # a patient client: a decoder may hold a good frame until garbage before it is ruled out,
    # so this client retransmits like a real one would
    station = LinkStation(Role.CLIENT, client_address, METER_ADDRESS,
                          retransmit_timeout_ms=100, max_retransmissions=60)
    decoder = FrameStreamDecoder()
    station.connect(now_ms)
    sent_request = False
    for _ in range(120):
        wire = b"".join(encode_frame(f) for f in station.frames_to_send())
        for frame in decoder.feed(server.receive_bytes(wire, now_ms)):
            assert decode_frame(encode_frame(frame)) == frame
            for event in station.receive_frame(frame, now_ms):
                if isinstance(event, Connected) and not sent_request:
                    station.send_apdu(encode_request(request), now_ms)
                    sent_request = True
                if isinstance(event, ApduReceived):
                    answer = decode_apdu(event.apdu)
                    assert isinstance(answer, Response)
                    return answer
        now_ms += 100
        station.handle_timeout(now_ms)
    raise AssertionError("no response")


def test_link_server_answers_a_request_through_the_world() -> None:
    world = FakeWorld()
    response = drive_one_request(LinkServer(world), 0x10, Request(
        Command.ADJUST_METER_BALANCE, 9, body=AdjustMeterBalanceRequest(adjustment_pence=-120)), 0)
    assert response.ok and response.invoke_id == 9
    assert response.body.meter_balance_pence == 380
    assert len(world.handled) == 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(noise=st.lists(st.binary(max_size=300), max_size=8),
       flagged=st.lists(st.sampled_from([b"\x7e", b"\x7e\xa0", b"\x7e\xa0\x0a\x20"]),
                        max_size=4))
def test_random_bytes_never_crash_the_server_or_stop_it_serving(
        noise: list[bytes], flagged: list[bytes]) -> None:
    world = FakeWorld()
    server = LinkServer(world)
    now_ms = 0
    for chunk in [*noise, *flagged]:
        server.receive_bytes(chunk, now_ms)
        server.handle_timeout(now_ms)
        now_ms += 10
    # a well-behaved client on its own address is still served, balance as the world holds it
    server.receive_bytes(b"\x7e" * 3, now_ms)
    response = drive_one_request(server, 0x20, Request(Command.READ_METER_BALANCE, 3), now_ms)
    assert response.ok
    assert response.body.meter_balance_pence == world.meter_balance_pence
    assert server.counters.internal_errors == 0


# --------------------------------------------------------------------------------------------
# ServeLoop over real ports
# --------------------------------------------------------------------------------------------


@pytest.fixture
def tcp_loop() -> Iterator[tuple[ServeLoop, FakeWorld, str]]:
    world = FakeWorld()
    loop = ServeLoop(world, RealMonotonicClock(), advance_interval_ms=20)
    listener = TcpListener("127.0.0.1", 0)
    loop.add_listener(listener)
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    yield loop, world, listener.address
    loop.request_stop()
    thread.join(5)
    assert not thread.is_alive()


def test_tcp_serves_many_clients_at_once_over_one_shared_world(tcp_loop) -> None:
    loop, world, address = tcp_loop
    clients = [DeviceClient(connect_tcp(address)) for _ in range(3)]
    try:
        for index, client in enumerate(clients):
            client.request(METER_ADDRESS, Request(
                Command.ADJUST_METER_BALANCE, 1, body=AdjustMeterBalanceRequest(
                    adjustment_pence=index + 1)))
        # every client sees the shared balance: 500 + 1 + 2 + 3
        assert [read_balance(c) for c in clients] == [506, 506, 506]
        assert world.meter_balance_pence == 506
    finally:
        for client in clients:
            client.close()
    assert loop.stats.clients_accepted == 3


def test_garbage_from_one_tcp_client_does_not_stop_another(tcp_loop) -> None:
    _, _, address = tcp_loop
    noisy = connect_tcp(address)
    noisy.write(bytes(range(256)) * 8 + b"\x7e\xa0\xff" * 50)
    client = DeviceClient(connect_tcp(address))
    try:
        assert read_balance(client) == 500
    finally:
        client.close()
        noisy.close()


def test_serve_loop_advances_the_world_while_idle_and_saves_on_stop() -> None:
    world = FakeWorld()
    loop = ServeLoop(world, RealMonotonicClock(), advance_interval_ms=10)
    loop.add_listener(TcpListener())
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    import time

    deadline = time.monotonic() + 5
    while world.advanced < 2 and time.monotonic() < deadline:
        time.sleep(0.01)  # waiting for the real serving thread, not for device time
    loop.request_stop()
    thread.join(5)
    assert world.advanced >= 2
    assert world.saved == 1


def test_serve_loop_without_advance_interval_never_advances_the_world() -> None:
    world = FakeWorld()
    loop = ServeLoop(world, RealMonotonicClock(), advance_interval_ms=None)
    loop.request_stop()
    loop.run()
    assert world.advanced == 0
    assert world.saved == 1


def test_a_loop_driven_one_turn_at_a_time_answers_on_its_pty_and_saves_on_close() -> None:
    world = FakeWorld()
    loop = ServeLoop(world, RealMonotonicClock(), advance_interval_ms=None)
    pair = PtyPair()
    loop.add_stream(pair.server, name="pty")
    client = open_port(pair.client_path)
    try:
        loop.serve_once(max_wait_ms=0)  # nothing sent yet: nothing handled
        assert world.handled == [] and client.read(64, 0) == b""
        client.write(snrm(METER_ADDRESS, 0x10))
        loop.serve_once(max_wait_ms=5000)  # returns once the SNRM is read and answered
        from protocol.hdlc_codec import decode_frame

        answer = decode_frame(client.read(64, 5000))
        assert answer.frame_type is FrameType.UA
        assert (answer.destination_address, answer.source_address) == (0x10, METER_ADDRESS)
        assert world.saved == 0
    finally:
        client.close()
        loop.close()
    assert world.saved == 1


class _SteppingClock:
    """A monotonic clock that moves 1 ms each time it is read."""

    def __init__(self) -> None:
        self.now_ms = 0

    def monotonic_ms(self) -> int:
        self.now_ms += 1
        return self.now_ms


def _recorded_waits(loop: ServeLoop) -> list[float]:
    """Make the loop's selector record each wait it asks for and never sleep (a wait longer
    than 0 returns at once with nothing ready)."""
    waits: list[float] = []
    select = loop._selector.select

    def recording_select(timeout: float | None = None) -> list:
        waits.append(timeout or 0)
        return select(0)

    loop._selector.select = recording_select  # type: ignore[method-assign]
    return waits


class _SteppingNanoseconds:
    """A nanosecond clock that moves ``step_ns`` each time it is read (the busy clock)."""

    def __init__(self, step_ns: int) -> None:
        self.step_ns = step_ns
        self.now_ns = 0

    def __call__(self) -> int:
        self.now_ns += self.step_ns
        return self.now_ns


def _answered_snrm(loop: ServeLoop) -> ByteTransport:
    """A pty served by ``loop``, and a client whose SNRM the loop has read and answered."""
    pair = PtyPair()
    loop.add_stream(pair.server, name="pty")
    client = open_port(pair.client_path)
    client.write(snrm(METER_ADDRESS, 0x10))
    while not client.read(64, 0):
        loop.serve_once(max_wait_ms=0)
    return client


@pytest.mark.parametrize("busy_poll_us", [0, 40])
def test_a_loop_busy_polls_only_for_the_time_given_after_input(busy_poll_us: int) -> None:
    loop = ServeLoop(FakeWorld(), _SteppingClock(), advance_interval_ms=None,
                     busy_poll_us=busy_poll_us, busy_clock_ns=_SteppingNanoseconds(10_000))
    client = _answered_snrm(loop)
    try:
        waits = _recorded_waits(loop)
        loop.serve_once()  # nothing more comes: looks without sleeping, then sleeps
        *looks, sleep = waits
        assert set(looks) <= {0}
        # the longest wait, 1 s, less the time spent looking (the link clock moved 1 ms)
        assert sleep == (1.0 if busy_poll_us == 0 else 0.999)
        # the busy clock moves 10 us a reading, one look each: 3 before 40 us have passed
        assert len(looks) == (0 if busy_poll_us == 0 else 3)
        waits.clear()
        loop.serve_once()  # the busy time is over: sleeps at once
        assert waits == [1.0]
    finally:
        client.close()
        loop.close()


def test_a_loop_never_busy_polls_past_the_end_of_its_wait() -> None:
    """A timer due sooner than the busy time still fires on time: looking stops at the wait's
    end (here the longest wait, 1 s, on a busy clock moving 100 ms a reading)."""
    loop = ServeLoop(FakeWorld(), _SteppingClock(), advance_interval_ms=None,
                     busy_poll_us=5_000_000, busy_clock_ns=_SteppingNanoseconds(100_000_000))
    client = _answered_snrm(loop)
    try:
        waits = _recorded_waits(loop)
        loop.serve_once()
        *looks, _sleep = waits
        assert len(looks) == 10  # one a reading, 100 ms apart, for the 1 s wait: not 50 for 5 s
    finally:
        client.close()
        loop.close()


def test_a_negative_busy_poll_time_is_refused() -> None:
    with pytest.raises(ValueError, match="busy_poll_us must be 0 or more, not -1"):
        ServeLoop(FakeWorld(), RealMonotonicClock(), busy_poll_us=-1)


@pytest.mark.parametrize(("usable_cpus", "expected_us"), [({0}, 0), ({0, 1}, 200)])
def test_serve_busy_polls_200_us_only_where_more_than_one_cpu_is_usable(
        monkeypatch: pytest.MonkeyPatch, usable_cpus: set[int], expected_us: int) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: usable_cpus, raising=False)
    assert default_busy_poll_us() == expected_us


def test_pty_serving_with_trace_prints_both_directions() -> None:
    world = FakeWorld()
    lines: list[str] = []
    loop = ServeLoop(world, RealMonotonicClock(), advance_interval_ms=None,
                     trace_line=lines.append)
    pair = PtyPair()
    loop.add_stream(pair.server, name="pty")
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    try:
        with DeviceClient(open_port(pair.client_path)) as client:
            assert read_balance(client) == 500
    finally:
        loop.request_stop()
        thread.join(5)
    assert any(" rx <- " in line and "SNRM" in line for line in lines)
    assert any(" tx -> " in line and "READ_METER_BALANCE response SUCCESS" in line
               for line in lines)


class BrokenWorld(FakeWorld):
    def handle_apdu(self, server_address: int, apdu: bytes) -> bytes | None:
        raise RuntimeError("device model bug")


def test_an_error_inside_the_world_drops_that_link_reports_it_and_serving_goes_on() -> None:
    reports: list[str] = []
    server = LinkServer(BrokenWorld(), on_error=reports.append)
    with pytest.raises(AssertionError, match="no response"):
        drive_one_request(server, 0x10, Request(Command.READ_METER_BALANCE, 1), 0)
    assert server.counters.internal_errors >= 1
    assert "device model bug" in reports[0] and "server address 16" in reports[0]
    # the same LinkServer still answers link frames afterwards
    assert server.receive_bytes(snrm(METER_ADDRESS, 0x30), 10**6)


class _NeverReadClient:
    """A stream transport (no descriptor: polled) whose client sends one SNRM and never reads
    the answer: writing the answer is where a stop from a signal arrives."""

    def __init__(self, loop: ServeLoop) -> None:
        self.loop = loop
        self.pending = snrm(METER_ADDRESS, 0x10)
        self.writes_abandoned = 0
        self.closed = False

    def read(self, max_bytes: int, timeout_ms: int) -> bytes:
        data, self.pending = self.pending, b""
        return data

    def write(self, data: bytes) -> None:
        # the transport waits for room the client never makes; SIGTERM arrives meanwhile
        self.writes_abandoned += 1
        self.loop.stop_from_signal()
        raise AssertionError("the write went on after the stop")

    def close(self) -> None:
        self.closed = True


def test_a_stop_from_a_signal_abandons_a_write_the_client_never_reads() -> None:
    world = FakeWorld()
    loop = ServeLoop(world, RealMonotonicClock(), advance_interval_ms=None)
    client = _NeverReadClient(loop)
    loop.add_stream(client, name="stalled")  # type: ignore[arg-type]
    loop.run()  # returns once stopped: the write was abandoned, not waited out
    assert client.writes_abandoned == 1
    assert client.closed and world.saved == 1


def test_nothing_more_is_written_to_clients_once_stopping() -> None:
    world = FakeWorld()
    loop = ServeLoop(world, RealMonotonicClock(), advance_interval_ms=None)
    client = _NeverReadClient(loop)
    loop.add_stream(client, name="stalled")  # type: ignore[arg-type]
    loop.request_stop()
    server = loop._all_clients()[0]
    loop._read_from(server, poll_ms=0)  # an answer produced while stopping is not written
    assert client.writes_abandoned == 0
    loop.run()


def test_a_client_closing_its_connection_is_logged_as_a_disconnect_not_a_failure() -> None:
    import time

    world = FakeWorld()
    messages: list[str] = []
    loop = ServeLoop(world, RealMonotonicClock(), advance_interval_ms=None,
                     log=messages.append)
    loop.add_listener(listener := TcpListener())
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    try:
        with DeviceClient(connect_tcp(listener.address)) as client:
            assert read_balance(client) == 500
        deadline = time.monotonic() + 5
        while loop.stats.clients_closed == 0 and time.monotonic() < deadline:
            time.sleep(0.01)  # waiting for the serving thread to see the close
    finally:
        loop.request_stop()
        thread.join(5)
    closes = [m for m in messages if not m.startswith("client connected")]
    assert closes and closes[0].startswith("client disconnected: tcp 127.0.0.1:"), messages
    assert not any("client gone" in m for m in messages)
