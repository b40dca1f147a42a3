"""Byte transports over a real pty pair, TCP on an ephemeral port, and pyserial URLs."""

from __future__ import annotations

import os
import time

import pytest
import serial

from protocol.transport import (
    FdTransport,
    PtyPair,
    SerialTransport,
    SocketTransport,
    TcpListener,
    TransportClosedError,
    TransportError,
    connect_tcp,
    is_pty_slave_path,
    open_port,
    parse_host_port,
)

ALL_BYTE_VALUES = bytes(range(256))
# a frame with flag, XON/XOFF, CR/LF and ^C inside: a cooked tty would eat or change these
AWKWARD_BYTES = bytes.fromhex("7ea00a0010021311130d0a037e")


def read_exactly(transport: object, size: int, timeout_ms: int = 2000) -> bytes:
    deadline = time.monotonic() + timeout_ms / 1000
    data = b""
    while len(data) < size and time.monotonic() < deadline:
        data += transport.read(size - len(data), 100)  # type: ignore[attr-defined]
    return data


@pytest.fixture
def pty_pair():
    pair = PtyPair()
    yield pair
    pair.close()


def test_pty_pair_passes_every_byte_value_unchanged_both_ways(pty_pair: PtyPair) -> None:
    client = open_port(pty_pair.client_path)
    try:
        client.write(ALL_BYTE_VALUES + AWKWARD_BYTES)
        assert read_exactly(pty_pair.server, 256 + len(AWKWARD_BYTES)) == (
            ALL_BYTE_VALUES + AWKWARD_BYTES)
        pty_pair.server.write(AWKWARD_BYTES + ALL_BYTE_VALUES)
        assert read_exactly(client, 256 + len(AWKWARD_BYTES)) == AWKWARD_BYTES + ALL_BYTE_VALUES
    finally:
        client.close()


def test_pty_client_path_is_recognised_as_a_pty_slave(pty_pair: PtyPair) -> None:
    assert is_pty_slave_path(pty_pair.client_path)
    assert not is_pty_slave_path("/dev/null")
    assert isinstance(open_port(pty_pair.client_path), FdTransport)


def test_pyserial_client_can_open_the_pty_slave_path(pty_pair: PtyPair) -> None:
    port = serial.Serial(pty_pair.client_path, timeout=1)
    try:
        port.write(AWKWARD_BYTES)
        assert read_exactly(pty_pair.server, len(AWKWARD_BYTES)) == AWKWARD_BYTES
        pty_pair.server.write(ALL_BYTE_VALUES)
        assert port.read(256) == ALL_BYTE_VALUES
    finally:
        port.close()


def test_pty_read_times_out_with_no_bytes_instead_of_blocking(pty_pair: PtyPair) -> None:
    started = time.monotonic()
    assert pty_pair.server.read(10, 50) == b""
    assert time.monotonic() - started < 1.0


def test_pty_server_survives_a_client_closing_and_serves_the_next(pty_pair: PtyPair) -> None:
    first = open_port(pty_pair.client_path)
    first.write(b"one")
    assert read_exactly(pty_pair.server, 3) == b"one"
    first.close()
    assert pty_pair.server.read(10, 20) == b""  # no hang-up error for the server
    second = open_port(pty_pair.client_path)
    second.write(b"two")
    assert read_exactly(pty_pair.server, 3) == b"two"
    second.close()


def test_pty_server_write_never_blocks_when_no_client_reads(pty_pair: PtyPair) -> None:
    pty_pair.server._write_timeout_ms = 50  # type: ignore[attr-defined]
    started = time.monotonic()
    for _ in range(64):  # far more than a pty buffers
        pty_pair.server.write(bytes(1024))
    assert time.monotonic() - started < 10


def test_tcp_listener_on_port_zero_picks_a_free_port_and_exchanges_bytes() -> None:
    with TcpListener("127.0.0.1", 0) as listener:
        assert listener.port > 0
        assert listener.address == f"127.0.0.1:{listener.port}"
        client = connect_tcp(listener.address)
        server = listener.accept(2000)
        assert isinstance(server, SocketTransport)
        client.write(ALL_BYTE_VALUES)
        assert read_exactly(server, 256) == ALL_BYTE_VALUES
        server.write(AWKWARD_BYTES)
        assert read_exactly(client, len(AWKWARD_BYTES)) == AWKWARD_BYTES
        client.close()
        with pytest.raises(TransportClosedError):
            read_exactly(server, 1)
        server.close()


def test_tcp_accept_returns_none_when_nobody_connects() -> None:
    with TcpListener() as listener:
        assert listener.accept(20) is None


def test_tcp_connect_to_a_closed_port_says_which_address() -> None:
    with TcpListener() as listener:
        address = listener.address
    with pytest.raises(TransportError, match=address.replace(".", r"\.")):
        connect_tcp(address, timeout_ms=1000)


def test_pyserial_url_transport_over_tcp_socket_url() -> None:
    with TcpListener() as listener:
        client = SerialTransport.open(f"socket://{listener.address}")
        server = listener.accept(2000)
        assert server is not None
        client.write(AWKWARD_BYTES)
        assert read_exactly(server, len(AWKWARD_BYTES)) == AWKWARD_BYTES
        server.write(ALL_BYTE_VALUES)
        assert read_exactly(client, 256) == ALL_BYTE_VALUES
        client.close()
        server.close()


def test_pyserial_loop_url_echoes_and_times_out() -> None:
    with SerialTransport.open("loop://") as loop:
        loop.write(AWKWARD_BYTES)
        assert read_exactly(loop, len(AWKWARD_BYTES)) == AWKWARD_BYTES
        assert loop.read(10, 10) == b""


def test_open_port_names_an_absent_device_in_its_error() -> None:
    with pytest.raises(TransportError, match="/dev/ttyDOESNOTEXIST"):
        open_port("/dev/ttyDOESNOTEXIST")


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:4059", ("127.0.0.1", 4059)),
    ("localhost:0", ("localhost", 0)),
    ("[::1]:80", ("::1", 80)),
    (":4059", ("127.0.0.1", 4059)),
])
def test_parse_host_port_accepts_host_and_port(text: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(text) == expected


@pytest.mark.parametrize("text", ["4059", "host:", "host:port", "host:70000"])
def test_parse_host_port_rejects_what_is_not_host_colon_port(text: str) -> None:
    with pytest.raises(TransportError, match="HOST:PORT"):
        parse_host_port(text)


def test_closed_transport_refuses_io(pty_pair: PtyPair) -> None:
    client = open_port(pty_pair.client_path)
    client.close()
    with pytest.raises(TransportClosedError):
        client.read(1, 0)
    assert os.path.exists(pty_pair.client_path)


def test_raising_the_descriptor_limit_never_lowers_it_and_says_what_is_in_force() -> None:
    import resource

    from protocol.transport import raise_descriptor_limit

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert raise_descriptor_limit(1) == soft  # already enough: untouched
    wanted = soft + 1 if hard == resource.RLIM_INFINITY else min(soft + 1, hard)
    assert raise_descriptor_limit(wanted) == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= wanted
