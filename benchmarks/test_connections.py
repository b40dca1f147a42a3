"""Many connections (issue 8.5): ``secure-emu serve --tcp`` holding 1,000 client connections,
each its own link, on one event loop, with and without 10 silent clients.

The server runs as ``secure-emu serve --tcp 127.0.0.1:0 --virtual-time`` (the default profile)
in a process of its own. This process opens the connections on loopback and drives them all
from one ``selectors`` loop: each connection is a client :class:`~protocol.link_mux.LinkMux`
with one :class:`~protocol.link.LinkStation` to the ESME (the product's own sans-I/O client
link, no I/O of its own), brought up with SNRM/UA, 64 connections at a time (the listen
backlog). A round sends one READ_METER_BALANCE on every connection, in an order shuffled by a
seeded generator, then waits until every one is answered; each request's latency runs from
its write to the decode of its answer. The benchmark's round is one such round; requests/s,
p50/p99 latency over every round (the warm-up round included) and the CPU time per request of
the server process (``/proc``) and of this one land in ``extra_info`` and are printed.

The silent clients connect once the connections are up, each with a 4 KiB receive buffer,
send 7,000 SNRMs (whose 32-byte UAs are more than the server's 64 KiB kernel send buffer and
their own receive buffer hold, so the server keeps answers for them it cannot write, and stops
reading their input) and then never read or send again; the rounds start once the server is
stalled on every one (its end of each holds unread SNRMs and neither of its queues moves, as
``/proc/net/tcp`` shows; skipped without it). The server drops a client that takes none of its
answers for 2 s (``emulator.serve``): the rounds take less than that on a quiet machine, and
the report says how many it had dropped by the end.

``SECURE_EMU_BENCH_CONNECTIONS`` sets the number of connections (default 1,000, also under
``--benchmark-disable``, where one round runs); the benchmark process raises its own soft
descriptor limit (inherited by the server) and skips when the hard limit is too low. Every
wait is bounded (``DEADLINE_S``); the client links never retransmit within it.
"""

from __future__ import annotations

import os
import random
import selectors
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from protocol.apdu import (
    ADAPTER_CLIENT_ADDRESS,
    Command,
    Request,
    Response,
    decode_apdu,
    encode_request,
)
from protocol.hdlc import FrameType, HdlcFrame
from protocol.hdlc_codec import encode_frame
from protocol.link import ApduReceived, Connected, LinkEvent, LinkStation, Role
from protocol.link_mux import AddressPair, LinkMux
from protocol.transport import raise_descriptor_limit

CONNECTIONS = int(os.environ.get("SECURE_EMU_BENCH_CONNECTIONS", "1000"))
SILENT_CLIENTS = 10
#: SNRMs each silent client sends before falling silent.
SILENT_SNRMS = 7000
#: Rounds (one request per connection each) in a measured run; one under --benchmark-disable.
ROUNDS = 6
SEED = 2026
#: The default profile's prepayment ESME and its balance.
ESME_ADDRESS = 16
ESME_BALANCE_PENCE = 1250
#: Connections brought up at a time (under the listen backlog of 128).
CONNECT_BATCH = 64
#: Longest any one wait (a batch connecting, a round answering) may take.
DEADLINE_S = 60.0
#: Far beyond any wait: the client links never retransmit during a run.
RETRANSMIT_TIMEOUT_MS = 600_000

SERVE = [sys.executable, "-m", "emulator.cli", "serve", "--tcp", "127.0.0.1:0",
         "--virtual-time"]


def _now_ms() -> int:
    return time.monotonic_ns() // 1_000_000


@dataclass(eq=False)
class Connection:
    """One TCP connection with its own client link to the ESME."""

    sock: socket.socket
    connected: bool = False
    sent_at: float = 0.0
    latencies: list[float] = field(default_factory=list)
    answered: int = 0

    def __post_init__(self) -> None:
        self.mux = LinkMux(Role.CLIENT, self._on_events)
        self.station = LinkStation(Role.CLIENT, ADAPTER_CLIENT_ADDRESS, ESME_ADDRESS,
                                   retransmit_timeout_ms=RETRANSMIT_TIMEOUT_MS)
        self.mux.add_station(AddressPair(ADAPTER_CLIENT_ADDRESS, ESME_ADDRESS), self.station)

    def _on_events(self, pair: AddressPair, station: LinkStation, events: list[LinkEvent],
                   now_ms: int) -> None:
        for event in events:
            if isinstance(event, Connected):
                self.connected = True
            elif isinstance(event, ApduReceived):
                response = decode_apdu(event.apdu)
                assert isinstance(response, Response) and response.ok, response
                assert response.body.meter_balance_pence == ESME_BALANCE_PENCE
                self.latencies.append(time.perf_counter() - self.sent_at)
                self.answered += 1

    def connect(self) -> None:
        self.station.connect(_now_ms())
        self.write(self.mux.bytes_to_send(_now_ms()))

    def request(self, invoke_id: int) -> None:
        self.sent_at = time.perf_counter()
        self.station.send_apdu(encode_request(
            Request(Command.READ_METER_BALANCE, invoke_id)), _now_ms())
        self.write(self.mux.bytes_to_send(_now_ms()))

    def on_readable(self) -> None:
        data = self.sock.recv(4096)
        assert data, "the server closed a connection"
        self.write(self.mux.receive_bytes(data, _now_ms()))

    def write(self, data: bytes) -> None:
        if data:  # a few dozen bytes: the kernel takes them at once
            self.sock.sendall(data)


class Clients:
    """Connections to one server, read from one selector."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.selector = selectors.DefaultSelector()
        self.connections: list[Connection] = []
        self.rng = random.Random(SEED)
        self.invoke_id = 0

    def pump_until(self, done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while not done():
            if time.monotonic() > deadline:
                pytest.fail(f"{what}: not done within {DEADLINE_S} s")
            for key, _ in self.selector.select(1.0):
                key.data.on_readable()

    def open(self, count: int) -> None:
        for start in range(0, count, CONNECT_BATCH):
            batch = []
            for _ in range(min(CONNECT_BATCH, count - start)):
                connection = Connection(socket.create_connection(self.address, timeout=10))
                connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                connection.sock.setblocking(False)
                self.selector.register(connection.sock, selectors.EVENT_READ, connection)
                connection.connect()
                batch.append(connection)
            self.pump_until(lambda batch=batch: all(c.connected for c in batch),
                            f"connections {start}..{start + len(batch) - 1} linking")
            self.connections += batch

    def round(self) -> int:
        """Every connection reads the balance once; the requests answered."""
        order = list(self.connections)
        self.rng.shuffle(order)
        before = sum(c.answered for c in order)
        self.invoke_id = self.invoke_id % 255 + 1
        for connection in order:
            connection.request(self.invoke_id)
        expected = before + len(order)
        self.pump_until(lambda: sum(c.answered for c in order) == expected,
                        f"a round over {len(order)} connections")
        return sum(c.answered for c in order) - before

    def close(self) -> None:
        for connection in self.connections:
            self.selector.unregister(connection.sock)
            connection.sock.close()
        self.selector.close()


def silent_client(address: tuple[str, int]) -> socket.socket:
    """Connects, sends SNRMs enough to back its answers up in the server, reads nothing."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(address)
    sock.sendall(encode_frame(HdlcFrame.make(FrameType.SNRM, ESME_ADDRESS,
                                             ADAPTER_CLIENT_ADDRESS)) * SILENT_SNRMS)
    return sock


def _server_queues(server_port: int, client_ports: list[int]) -> list[tuple[int, int]] | None:
    """For each client port, the (unsent, unread) bytes of the server's end of that connection
    as /proc/net/tcp shows them; None where the kernel does not show them."""
    try:
        with open("/proc/net/tcp") as table:
            rows = table.read().splitlines()[1:]
    except OSError:
        return None
    queues: dict[int, tuple[int, int]] = {}
    for row in rows:
        local, remote, _, queue = row.split()[1:5]
        if int(local.rpartition(":")[2], 16) == server_port:
            unsent, unread = queue.split(":")
            queues[int(remote.rpartition(":")[2], 16)] = (int(unsent, 16), int(unread, 16))
    return [queues.get(port, (0, 0)) for port in client_ports]


def wait_until_stalled(server_port: int, socks: list[socket.socket]) -> None:
    """Until the server's end of every silent connection holds unread SNRMs (it stopped reading:
    its answers are backed up) and neither of its queues has moved for 100 ms."""
    ports = [sock.getsockname()[1] for sock in socks]
    deadline = time.monotonic() + DEADLINE_S
    held = None
    while time.monotonic() < deadline:
        now = _server_queues(server_port, ports)
        if now is None:
            pytest.skip("needs /proc/net/tcp to see when the server stalls on the silent clients")
        if now == held and all(unread for _, unread in now):
            return
        held = now
        time.sleep(0.1)  # wall clock on purpose: waiting for another process's kernel buffers
    pytest.fail(f"the server did not stall on the silent clients within {DEADLINE_S} s: {held}")


def dropped_by_the_server(sock: socket.socket) -> bool:
    """Whether the server has closed or reset this (never read) connection: read what it holds
    until the end, a reset or nothing more for now."""
    sock.setblocking(False)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


@dataclass
class Server:
    host: str
    port: int
    pid: int

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def cpu_seconds(self) -> float | None:
        """User and system CPU time the server process has used (None without /proc)."""
        try:
            with open(f"/proc/{self.pid}/stat") as stat:
                fields = stat.read().rpartition(")")[2].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture
def server() -> Iterator[Server]:
    wanted = CONNECTIONS + SILENT_CLIENTS + 256  # the server inherits the limit
    if (have := raise_descriptor_limit(wanted)) < wanted:
        pytest.skip(f"needs {wanted} descriptors; the hard limit allows {have}")
    process = subprocess.Popen(SERVE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True)
    try:
        assert process.stdout is not None
        host, _, port = process.stdout.readline().strip().rpartition(":")
        assert host == "127.0.0.1", host
        yield Server(host, int(port), process.pid)
        assert process.poll() is None, "the server exited"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@pytest.mark.parametrize("silent", [0, SILENT_CLIENTS], ids=["alone", "10-silent-clients"])
@pytest.mark.benchmark(group="many connections: one READ_METER_BALANCE on every connection")
def test_every_connection_reads_its_balance(record_environment: BenchmarkFixture,
                                            request: pytest.FixtureRequest,
                                            capsys: pytest.CaptureFixture[str],
                                            server: Server, silent: int) -> None:
    clients = Clients(server.address)
    silent_socks: list[socket.socket] = []
    try:
        clients.open(CONNECTIONS)
        silent_socks = [silent_client(server.address) for _ in range(silent)]
        wait_until_stalled(server.port, silent_socks)
        cpu_before = server.cpu_seconds()
        client_cpu_before = time.process_time()
        disabled = request.config.getoption("benchmark_disable", False)
        started = time.perf_counter()
        record_environment.pedantic(clients.round, rounds=1 if disabled else ROUNDS,
                                    iterations=1, warmup_rounds=0 if disabled else 1)
        elapsed = time.perf_counter() - started
        cpu_after = server.cpu_seconds()
        client_cpu = time.process_time() - client_cpu_before
        answered = [c.answered for c in clients.connections]
        rounds = answered[0]
        assert answered == [rounds] * CONNECTIONS and rounds >= 1  # every one, every round
        latencies = [latency for c in clients.connections for latency in c.latencies]
        dropped = sum(dropped_by_the_server(sock) for sock in silent_socks)
    finally:
        clients.close()
        for sock in silent_socks:
            sock.close()
    figures = {
        "connections": CONNECTIONS, "silent_clients": silent,
        "silent_clients_dropped_by_the_server": dropped, "requests": len(latencies),
        "requests_per_second": round(len(latencies) / elapsed),
        "p50_latency_ms": round(statistics.median(latencies) * 1e3, 2),
        "p99_latency_ms": round(_percentile(latencies, 0.99) * 1e3, 2),
        "max_latency_ms": round(max(latencies) * 1e3, 2),
        "server_cpu_us_per_request": (None if cpu_before is None or cpu_after is None else
                                      round((cpu_after - cpu_before) / len(latencies) * 1e6)),
        "client_cpu_us_per_request": round(client_cpu / len(latencies) * 1e6),
    }
    record_environment.extra_info.update(figures)
    with capsys.disabled():
        print(f"\n{CONNECTIONS} connections, {silent} silent clients ({dropped} dropped by the "
              f"server by the end): all answered, {len(latencies)} requests in {elapsed:.2f} s, "
              f"{figures['requests_per_second']} requests/s, p50 {figures['p50_latency_ms']} ms, "
              f"p99 {figures['p99_latency_ms']} ms, max {figures['max_latency_ms']} ms; server "
              f"CPU {figures['server_cpu_us_per_request']} us per request, this process's "
              f"{figures['client_cpu_us_per_request']} us")
