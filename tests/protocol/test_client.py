"""DeviceClient: the link-backed DeviceChannel, against a LinkServer on an in-memory link.

The in-memory link (tests/conftest.py) passes bytes straight into a sans-I/O LinkServer and
advances a manual clock instead of sleeping, so retransmission runs on virtual time.
"""

from __future__ import annotations

import pytest

from protocol.apdu import (
    ADAPTER_CLIENT_ADDRESS,
    AdjustMeterBalanceRequest,
    AdjustMeterBalanceResponse,
    Balances,
    Command,
    Request,
    Response,
    Status,
    decode_apdu,
    encode_response,
)
from protocol.client import DeviceClient
from protocol.errors import DeviceTimeoutError, DeviceUnreachableError
from protocol.link_mux import LinkServer
from protocol.transport import TransportError

METER_ADDRESS = 16


class CountingMeter:
    """A one-meter world: applies ADJUST_METER_BALANCE and counts every application."""

    def __init__(self, addresses: frozenset[int] = frozenset({1, METER_ADDRESS})) -> None:
        self.addresses = addresses
        self.meter_balance_pence = 1000
        self.adjustments_applied: list[int] = []
        self.silent = False
        self.saved = 0

    def server_addresses(self) -> frozenset[int]:
        return self.addresses

    def handle_apdu(self, server_address: int, apdu: bytes) -> bytes | None:
        if self.silent:
            return None
        request = decode_apdu(apdu)
        assert isinstance(request, Request)
        if request.command is Command.ADJUST_METER_BALANCE:
            adjustment = request.body.adjustment_pence
            self.meter_balance_pence += adjustment
            self.adjustments_applied.append(adjustment)
            body = AdjustMeterBalanceResponse(adjustment_applied_pence=adjustment,
                                              meter_balance_pence=self.meter_balance_pence)
            return encode_response(Response(request.command, request.invoke_id,
                                            Status.SUCCESS, body))
        if request.command is Command.READ_METER_BALANCE:
            body = Balances(meter_balance_pence=self.meter_balance_pence,
                            emergency_credit_balance_pence=0)
            return encode_response(Response(request.command, request.invoke_id,
                                            Status.SUCCESS, body))
        return encode_response(Response(request.command, request.invoke_id,
                                        Status.NOT_SUPPORTED_BY_DEVICE))

    def advance(self) -> None:
        pass

    def save(self) -> None:
        self.saved += 1


def adjust(pence: int, invoke_id: int = 7) -> Request:
    return Request(Command.ADJUST_METER_BALANCE, invoke_id,
                   body=AdjustMeterBalanceRequest(adjustment_pence=pence))


def test_request_returns_the_devices_response_with_the_callers_invoke_id(
        memory_link, manual_clock) -> None:
    world = CountingMeter()
    client = DeviceClient(memory_link(LinkServer(world)), clock=manual_clock)
    response = client.request(METER_ADDRESS, adjust(250, invoke_id=4242))
    assert response.ok
    assert response.invoke_id == 4242
    assert response.body == AdjustMeterBalanceResponse(adjustment_applied_pence=250,
                                                       meter_balance_pence=1250)
    assert world.adjustments_applied == [250]


def test_link_connects_lazily_once_per_server_address(memory_link, manual_clock) -> None:
    server = LinkServer(CountingMeter())
    client = DeviceClient(memory_link(server), clock=manual_clock)
    assert server.station_count == 0
    for _ in range(3):
        client.request(METER_ADDRESS, Request(Command.READ_METER_BALANCE, 1))
    client.request(1, Request(Command.READ_CLOCK, 1))
    assert server.station_count == 2
    assert client.counters.requests_sent == 4


def test_device_failure_status_is_returned_not_raised(memory_link, manual_clock) -> None:
    client = DeviceClient(memory_link(LinkServer(CountingMeter())), clock=manual_clock)
    response = client.request(METER_ADDRESS, Request(Command.READ_CLOCK, 1))
    assert response.status is Status.NOT_SUPPORTED_BY_DEVICE


def test_no_device_at_the_address_is_unreachable_e20(memory_link, manual_clock) -> None:
    client = DeviceClient(memory_link(LinkServer(CountingMeter())), clock=manual_clock,
                          retransmit_timeout_ms=100, max_retransmissions=2)
    started_ms = manual_clock.monotonic_ms()
    with pytest.raises(DeviceUnreachableError, match="server address 99"):
        client.request(99, adjust(1))
    # connect + 2 retransmissions, each waiting the 100 ms timeout: virtual time, no sleeping
    assert 300 <= manual_clock.monotonic_ms() - started_ms <= 1000


def test_device_that_never_answers_the_request_times_out_e21(memory_link, manual_clock) -> None:
    world = CountingMeter()
    world.silent = True
    client = DeviceClient(memory_link(LinkServer(world)), clock=manual_clock,
                          retransmit_timeout_ms=100, max_retransmissions=2)
    with pytest.raises(DeviceTimeoutError, match="ADJUST_METER_BALANCE"):
        client.request(METER_ADDRESS, adjust(5))


def test_after_a_timeout_the_next_request_reconnects_and_succeeds(
        memory_link, manual_clock) -> None:
    world = CountingMeter()
    world.silent = True
    client = DeviceClient(memory_link(LinkServer(world)), clock=manual_clock,
                          retransmit_timeout_ms=100, max_retransmissions=1)
    with pytest.raises(DeviceTimeoutError):
        client.request(METER_ADDRESS, Request(Command.READ_METER_BALANCE, 1))
    world.silent = False
    assert client.request(METER_ADDRESS, Request(Command.READ_METER_BALANCE, 1)).ok


class ClosedTransport:
    name = "gone"

    def write(self, data: bytes) -> None:
        raise TransportError("gone: the other end went away")

    def read(self, max_bytes: int, timeout_ms: int) -> bytes:
        raise TransportError("gone: the other end went away")

    def close(self) -> None:
        pass


def test_transport_failure_is_unreachable_e20(manual_clock) -> None:
    client = DeviceClient(ClosedTransport(), clock=manual_clock)
    with pytest.raises(DeviceUnreachableError, match="went away"):
        client.request(METER_ADDRESS, adjust(1))


@pytest.mark.parametrize("faults", [
    pytest.param(dict(to_server=dict(split=True, seed=1), to_client=dict(split=True, seed=2)),
                 id="one-to-seven-byte-pieces"),
    pytest.param(dict(to_server=dict(drop_chunk=0.25, seed=3),
                      to_client=dict(drop_chunk=0.25, seed=4)), id="drop-a-quarter"),
    pytest.param(dict(to_server=dict(duplicate_chunk=0.3, seed=5),
                      to_client=dict(duplicate_chunk=0.3, seed=6)), id="duplicate"),
    pytest.param(dict(to_server=dict(corrupt_byte=0.2, seed=7),
                      to_client=dict(corrupt_byte=0.2, seed=8)), id="corrupt"),
    pytest.param(dict(to_server=dict(drop_chunk=0.15, duplicate_chunk=0.15, corrupt_byte=0.1,
                                     split=True, seed=9),
                      to_client=dict(drop_chunk=0.15, duplicate_chunk=0.15, corrupt_byte=0.1,
                                     split=True, seed=10)), id="everything"),
])
def test_lossy_link_applies_each_money_command_exactly_once(
        memory_link, manual_clock, faults: dict) -> None:
    world = CountingMeter()
    client = DeviceClient(memory_link(LinkServer(world), **faults), clock=manual_clock,
                          retransmit_timeout_ms=200, max_retransmissions=8)
    sent: list[int] = []
    for number in range(1, 31):
        try:
            response = client.request(METER_ADDRESS, adjust(number))
        except (DeviceTimeoutError, DeviceUnreachableError):
            continue  # outcome unknown to the client; the device may or may not have it
        assert response.body.adjustment_applied_pence == number
        sent.append(number)
    # every acknowledged adjustment applied once, none applied twice, and in order
    assert len(set(world.adjustments_applied)) == len(world.adjustments_applied)
    assert world.adjustments_applied == sorted(world.adjustments_applied)
    assert set(sent) <= set(world.adjustments_applied)
    assert len(sent) >= 25
    assert world.meter_balance_pence == 1000 + sum(world.adjustments_applied)


def test_open_needs_exactly_one_of_port_or_tcp() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        DeviceClient.open()
    with pytest.raises(ValueError, match="exactly one"):
        DeviceClient.open(port="loop://", tcp="127.0.0.1:1")


def test_open_absent_port_names_it() -> None:
    with pytest.raises(TransportError, match="/dev/ttyNOTHERE"):
        DeviceClient.open(port="/dev/ttyNOTHERE")


def test_client_uses_the_adapter_client_address_by_default(memory_link, manual_clock) -> None:
    client = DeviceClient(memory_link(LinkServer(CountingMeter())), clock=manual_clock)
    assert client.client_address == ADAPTER_CLIENT_ADDRESS


def test_after_the_device_restarts_a_read_reconnects_and_succeeds(
        memory_link, manual_clock) -> None:
    world = CountingMeter()
    transport = memory_link(LinkServer(world))
    client = DeviceClient(transport, clock=manual_clock)
    assert client.request(METER_ADDRESS, Request(Command.READ_METER_BALANCE, 1)).ok
    transport.server = LinkServer(world)  # a restarted device: no link, answers DM
    response = client.request(METER_ADDRESS, Request(Command.READ_METER_BALANCE, 1))
    assert response.body.meter_balance_pence == 1000


def test_after_the_device_restarts_a_money_command_is_not_resent_blindly(
        memory_link, manual_clock) -> None:
    world = CountingMeter()
    transport = memory_link(LinkServer(world))
    client = DeviceClient(transport, clock=manual_clock)
    assert client.request(METER_ADDRESS, adjust(5)).ok
    transport.server = LinkServer(world)
    with pytest.raises(DeviceUnreachableError, match="next request reconnects"):
        client.request(METER_ADDRESS, adjust(7))
    assert world.adjustments_applied == [5]
    assert client.request(METER_ADDRESS, adjust(7)).ok
    assert world.adjustments_applied == [5, 7]
