"""Serving under hostile load (issue 12.3, 12.4, 12.6; issue 8.5): a client that never reads,
many connections, running out of descriptors, partial messages held per connection."""

from __future__ import annotations

import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import pytest

from emulator.clock import VirtualClock
from emulator.profile import Profile
from emulator.serve import ServeLoop
from emulator.world import EmulatedWorld
from protocol.apdu import MANAGEMENT_SERVER_ADDRESS, Command, Request
from protocol.client import DeviceClient
from protocol.clock import RealMonotonicClock
from protocol.hdlc import FrameType, HdlcFrame
from protocol.hdlc_codec import encode_frame
from protocol.transport import TcpListener, connect_tcp, raise_descriptor_limit

#: the default profile's start of device time is fixed, so READ_CLOCK answers this on a
#: virtual clock nobody advances
CLIENT_ADDRESS = 0x10


def make_world() -> EmulatedWorld:
    profile = Profile.default()
    return EmulatedWorld(profile, VirtualClock(profile.start_device_time_seconds))


@contextmanager
def serving(world: EmulatedWorld | None = None, **options: object
            ) -> Iterator[tuple[ServeLoop, str, list[str]]]:
    """A ServeLoop on an ephemeral loopback port in a thread; its log lines collected."""
    messages: list[str] = []
    loop = ServeLoop(world or make_world(), RealMonotonicClock(), advance_interval_ms=None,
                     log=messages.append, **options)  # type: ignore[arg-type]
    listener = TcpListener("127.0.0.1", 0)
    loop.add_listener(listener)
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    try:
        yield loop, listener.address, messages
    finally:
        loop.request_stop()
        thread.join(5)
    assert not thread.is_alive()


def read_clock(client: DeviceClient) -> int:
    response = client.request(MANAGEMENT_SERVER_ADDRESS, Request(Command.READ_CLOCK, 1))
    return int(response.body.device_time_seconds)


def wait_until(condition, timeout_s: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    """Poll a condition on the serving thread's progress (real time, bounded)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def snrm(server_address: int, client_address: int) -> bytes:
    return encode_frame(HdlcFrame.make(FrameType.SNRM, server_address, client_address))


# --------------------------------------------------------------------------------------------
# A client that floods requests and never reads (12.3)
# --------------------------------------------------------------------------------------------


def good_clients_rate(address: str, *, clients: int, window_s: float) -> float:
    """Requests per second that ``clients`` well-behaved clients complete in the window."""
    start = threading.Barrier(clients + 1)
    stop = threading.Event()
    counts = [0] * clients
    failures: list[BaseException] = []

    def work(index: int) -> None:
        try:
            with DeviceClient(connect_tcp(address)) as client:
                read_clock(client)  # connected before the window opens
                start.wait()
                while not stop.is_set():
                    read_clock(client)
                    counts[index] += 1
        except Exception as error:  # a client starved into a timeout counts as a failure
            failures.append(error)
            with suppress(threading.BrokenBarrierError):
                start.wait()

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    stop.wait(window_s)
    stop.set()
    total = sum(counts)
    for thread in threads:
        thread.join(10)
    return total / window_s


#: A client in its own process (not competing with the measured clients for this
#: interpreter's lock) sending SNRMs as fast as it can, reading nothing, reconnecting when
#: dropped; it prints a line once it has sent its first 2 MiB.
FLOODER = """
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
burst = bytes.fromhex(sys.argv[3]) * 2000
sent = 0
while True:
    try:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect((host, port))
            while True:
                sock.sendall(burst)
                sent += len(burst)
                if sent >= 2 * 1024 * 1024 and sent - len(burst) < 2 * 1024 * 1024:
                    print("flooding", flush=True)
    except OSError:
        continue
"""


@contextmanager
def flooding(address: str) -> Iterator[None]:
    host, port = _split(address)
    flooder = subprocess.Popen(
        [sys.executable, "-c", FLOODER, host, str(port),
         snrm(MANAGEMENT_SERVER_ADDRESS, 0x3F).hex()], stdout=subprocess.PIPE, text=True)
    try:
        assert flooder.stdout is not None and flooder.stdout.readline() == "flooding\n"
        yield
    finally:
        flooder.kill()
        flooder.wait(10)


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def test_a_client_that_floods_and_never_reads_does_not_slow_ten_good_clients(
        record_property: pytest.RecordProperty) -> None:
    with serving() as (_, address, _messages):
        alone = good_clients_rate(address, clients=10, window_s=1.5)
        with flooding(address):
            flooded = good_clients_rate(address, clients=10, window_s=1.5)
        for _ in range(2):  # other work on a shared machine: measure both again, best of 3
            if flooded >= 0.5 * alone:
                break
            alone = max(alone, good_clients_rate(address, clients=10, window_s=1.5))
            with flooding(address):
                flooded = max(flooded, good_clients_rate(address, clients=10, window_s=1.5))
    record_property("good_clients_requests_per_second_alone", round(alone))
    record_property("good_clients_requests_per_second_with_flooder", round(flooded))
    print(f"\nten good clients: {alone:.0f} requests/s alone, {flooded:.0f} requests/s with a "
          f"flooding client ({flooded / alone:.0%})")
    assert alone > 100
    assert flooded >= 0.5 * alone


def test_a_tcp_client_over_its_output_bound_is_disconnected_and_logged() -> None:
    # one turn's answers to 256 bytes of SNRMs (28 UAs) are far more than 100 bytes; even a
    # short read of a few SNRMs (the client's bytes arrive as they arrive) answers over it
    with serving(max_output_bytes=100) as (loop, address, messages):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(_split(address))
            payload = snrm(MANAGEMENT_SERVER_ADDRESS, CLIENT_ADDRESS) * 1000
            with pytest.raises(OSError):  # reset once the server gives up on us
                for _ in range(2000):
                    sock.sendall(payload)
        assert wait_until(lambda: loop.connection_count == 0)
        assert loop.stats.clients_over_output_bound == 1
        # and the server goes on serving others
        with DeviceClient(connect_tcp(address)) as client:
            assert read_clock(client) == Profile.default().start_device_time_seconds
    gone = [m for m in messages if m.startswith("client gone")]
    assert gone and "over the bound of 100" in gone[0], messages


def test_a_tcp_client_that_takes_none_of_its_answers_is_disconnected_after_a_while() -> None:
    with serving() as (loop, address, messages):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(_split(address))
            sock.settimeout(10)
            payload = snrm(MANAGEMENT_SERVER_ADDRESS, CLIENT_ADDRESS) * 1000
            with pytest.raises(OSError):  # reset once the server gives up on us
                for _ in range(2000):
                    sock.sendall(payload)
        assert wait_until(lambda: loop.connection_count == 0)
    gone = [m for m in messages if m.startswith("client gone")]
    assert gone and "none taken for 2000 ms" in gone[0], messages


# --------------------------------------------------------------------------------------------
# Many connections on one loop (8.5) and the connection cap (12.4)
# --------------------------------------------------------------------------------------------


def test_two_hundred_concurrent_connections_are_all_held_and_answered() -> None:
    if (have := raise_descriptor_limit(1024)) < 1024:
        pytest.skip(f"needs 1024 descriptors; the hard limit allows {have}")
    with serving() as (loop, address, _):
        clients = [DeviceClient(connect_tcp(address)) for _ in range(200)]
        try:
            assert wait_until(lambda: loop.connection_count == 200)
            start = Profile.default().start_device_time_seconds
            assert [read_clock(c) for c in clients] == [start] * 200
            # every connection is still open and answers a second time
            assert [read_clock(c) for c in reversed(clients)] == [start] * 200
        finally:
            for client in clients:
                client.close()
        assert loop.stats.clients_accepted == 200


def test_connections_over_the_cap_are_closed_at_once_and_serving_goes_on() -> None:
    with serving(max_connections=3) as (loop, address, messages):
        held = [DeviceClient(connect_tcp(address)) for _ in range(3)]
        try:
            for client in held:
                read_clock(client)
            with socket.create_connection(_split(address), timeout=5) as extra:
                assert extra.recv(16) == b""  # accepted and closed: end of stream
            # the serving thread may count the refusal just after the close reaches us
            assert wait_until(lambda: loop.stats.clients_refused == 1)
            assert read_clock(held[0]) == Profile.default().start_device_time_seconds
        finally:
            held[0].close()
        assert wait_until(lambda: loop.connection_count == 2)
        with DeviceClient(connect_tcp(address)) as late:  # a freed place is taken again
            assert read_clock(late) == Profile.default().start_device_time_seconds
        for client in held[1:]:
            client.close()
    assert sum("refusing connections" in m for m in messages) == 1


# --------------------------------------------------------------------------------------------
# `secure-emu serve` as a subprocess: descriptors run out (12.4), its output is not read or
# its reader goes away (12.5, 9.6)
# --------------------------------------------------------------------------------------------

SERVE = [sys.executable, "-m", "emulator.cli", "serve", "--tcp", "127.0.0.1:0", "--virtual-time"]


def start_serve(*extra: str, stderr: int | None = subprocess.PIPE,
                preexec_fn=None) -> tuple[subprocess.Popen[bytes], str]:  # type: ignore[no-untyped-def]
    """A `serve --tcp` subprocess with stdout piped; its first line is the address."""
    process = subprocess.Popen([*SERVE, *extra], stdout=subprocess.PIPE, stderr=stderr,
                               preexec_fn=preexec_fn)
    assert process.stdout is not None
    address = process.stdout.readline().decode().strip()
    assert address.startswith("127.0.0.1:"), address
    return process, address


def shrink_pipe(stream: object) -> None:
    """Make a pipe hold one page, so that a server that blocks on it does so at once."""
    import fcntl

    f_setpipe_sz = getattr(fcntl, "F_SETPIPE_SZ", 1031)
    fcntl.fcntl(stream.fileno(), f_setpipe_sz, 4096)  # type: ignore[attr-defined]


def stop_within_a_second(process: subprocess.Popen[bytes]) -> int:
    import signal

    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=1.0)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)


def one_request_per_connection(address: str, connections: int) -> int:
    answered = 0
    for _ in range(connections):
        with DeviceClient(connect_tcp(address), retransmit_timeout_ms=500,
                          max_retransmissions=2) as client:
            if read_clock(client) == Profile.default().start_device_time_seconds:
                answered += 1
    return answered


def test_serve_with_stdout_and_stderr_piped_and_unread_keeps_answering_and_stops() -> None:
    # `serve --trace` with both pipes filled by hundreds of connections' log and trace lines
    process, address = start_serve("--trace")
    shrink_pipe(process.stdout)
    shrink_pipe(process.stderr)
    serves_then_stops_within_a_second(process, address, connections=300)


def test_serve_whose_output_reader_goes_away_keeps_serving_and_stops() -> None:
    # `secure-emu serve --tcp ... 2>&1 | head -1`: the first line is read, then the pipe closes
    process, address = start_serve(stderr=subprocess.STDOUT)
    assert process.stdout is not None
    process.stdout.close()
    serves_then_stops_within_a_second(process, address, connections=50)  # a log line each


def serves_then_stops_within_a_second(process: subprocess.Popen[bytes], address: str, *,
                                      connections: int) -> None:
    try:
        assert one_request_per_connection(address, connections) == connections
        assert process.poll() is None
        assert stop_within_a_second(process) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(5)


def test_serve_out_of_descriptors_refuses_connections_and_keeps_serving() -> None:
    # a descriptor limit of 48 (serve needs about 20 for itself): connections past it hit
    # EMFILE on accept
    def low_descriptor_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))

    process, address = start_serve(stderr=subprocess.DEVNULL, preexec_fn=low_descriptor_limit)
    held: list[socket.socket] = []
    try:
        for _ in range(80):
            held.append(socket.create_connection(_split(address), timeout=5))
        # the server is alive, and once some clients leave it serves again
        assert process.poll() is None
        for sock in held[:40]:
            sock.close()
        del held[:40]
        assert one_request_per_connection(address, 5) == 5
        assert process.poll() is None
        assert stop_within_a_second(process) == 0
    finally:
        for sock in held:
            sock.close()
        if process.poll() is None:
            process.kill()
        process.wait(5)


# --------------------------------------------------------------------------------------------
# Memory: partial messages are bounded per connection and freed on close (12.6)
# --------------------------------------------------------------------------------------------

HOSTILE_STATIONS = 64
HOSTILE_BYTES_PER_STATION = 16 * 1024


def hostile_partial_messages() -> tuple[bytes, int]:
    """SNRM then never-finished segmented I-frames (16 KiB each) to 64 client addresses;
    the bytes and the number of frames."""
    frames: list[bytes] = []
    segment = bytes(120)
    for client_address in range(0x10, 0x10 + HOSTILE_STATIONS):
        frames.append(snrm(MANAGEMENT_SERVER_ADDRESS, client_address))
        for sequence in range(HOSTILE_BYTES_PER_STATION // len(segment)):
            frames.append(encode_frame(HdlcFrame.make(
                FrameType.I, MANAGEMENT_SERVER_ADDRESS, client_address, segment,
                send_sequence=sequence % 8, receive_sequence=0, segmented=True)))
    return b"".join(frames), len(frames)


class HostileBurst:
    """Connections that each send :func:`hostile_partial_messages`, drained by threads."""

    def __init__(self, loop: ServeLoop, address: str, connections: int) -> None:
        self.payload, self.frame_count = hostile_partial_messages()
        self.loop, self.address, self.connections = loop, address, connections
        self.socks: list[socket.socket] = []
        self.drains: list[threading.Thread] = []

    def send(self) -> None:
        self.socks = [socket.create_connection(_split(self.address))
                      for _ in range(self.connections)]
        self.drains = [threading.Thread(target=_drain, args=(s,), daemon=True)
                       for s in self.socks]
        for drain in self.drains:
            drain.start()
        for sock in self.socks:
            sock.sendall(self.payload)
        assert wait_until(lambda: sum(c.server.counters.frames_received
                                      for c in self.loop._all_clients())
                          == self.connections * self.frame_count, timeout_s=60)

    def close(self) -> None:
        for sock in self.socks:
            sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for drain in self.drains:
            drain.join(5)
        self.socks, self.drains = [], []
        assert wait_until(lambda: self.loop.connection_count == 0)


def test_partial_messages_are_bounded_per_connection_and_freed_when_it_closes(
        record_property: pytest.RecordProperty) -> None:
    import gc
    import tracemalloc

    connections = 1
    with serving() as (loop, address, _):
        burst = HostileBurst(loop, address, connections)
        tracemalloc.start()
        try:
            burst.send()  # the first burst fills the codec's bounded per-address caches
            burst.close()
            gc.collect()
            baseline = tracemalloc.get_traced_memory()[0]
            burst.send()
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - baseline
            burst.close()
            gc.collect()
            after = tracemalloc.get_traced_memory()[0] - baseline
        finally:
            tracemalloc.stop()
    per_connection = held / connections
    record_property("held_bytes_per_hostile_connection", round(per_connection))
    record_property("bytes_left_after_close", after)
    print(f"\nheld per hostile connection: {per_connection / 1024:.0f} KiB; "
          f"after they closed: {after / 1024:.1f} KiB over the baseline")
    # 64 links x 4 KiB of partial message (256 KiB), the 64 links themselves (about 150
    # KiB) and the test's own receive buffers; 64 x 16 KiB would be held without the bound
    assert per_connection < 640 * 1024
    assert after < 16 * 1024


def _drain(sock: socket.socket) -> None:
    with suppress(OSError):
        while sock.recv(4096):
            pass
