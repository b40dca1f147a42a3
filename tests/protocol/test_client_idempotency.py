"""DeviceClient keys every state-changing request and tells "nothing sent" (E20) from "sent,
no answer: outcome unknown" (E21); a resend with the same key is applied at most once; the
S1SP adapter keys from the DUIS RequestID, so the same DUIS request resent changes nothing
(issues 8.3 and 12.2)."""

from __future__ import annotations

import re

import pytest

from emulator.clock import VirtualClock
from emulator.profile import Profile
from emulator.world import EmulatedWorld
from protocol.apdu import (
    Command,
    Request,
    decode_apdu,
    idempotency_key_from_text,
)
from protocol.client import DeviceClient
from protocol.errors import (
    DeviceTimeoutError,
    DeviceUnreachableError,
    LinkDroppedError,
    RequestOutcomeUnknownError,
)
from protocol.link_mux import LinkServer
from protocol.s1sp.adapter import S1spAdapter
from protocol.transport import TransportClosedError

ESME_ADDRESS = 16
ESME = bytes.fromhex("00DB1234567890A1")
ADJUST_XML = """<?xml version="1.0" encoding="UTF-8"?>
<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.1">
  <sr:Header>
    <sr:RequestID>90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A1:{counter}</sr:RequestID>
    <sr:CommandVariant>4</sr:CommandVariant>
    <sr:ServiceReference>1.5</sr:ServiceReference>
    <sr:ServiceReferenceVariant>1.5</sr:ServiceReferenceVariant>
  </sr:Header>
  <sr:Body>
    <sr:UpdateMeterBalance><sr:PrepaymentMode>
      <sr:AdjustMeterBalance>250000</sr:AdjustMeterBalance>
    </sr:PrepaymentMode></sr:UpdateMeterBalance>
  </sr:Body>
</sr:Request>
"""


class LosingWorld:
    """An EmulatedWorld whose answers to the next ``lose`` requests are lost after it applied
    them; it records every request it decoded."""

    def __init__(self) -> None:
        profile = Profile.default()
        self.world = EmulatedWorld(profile, VirtualClock(profile.start_device_time_seconds))
        self.lose = 0
        self.requests: list[Request] = []

    def server_addresses(self) -> frozenset[int]:
        return self.world.server_addresses()

    def handle_apdu(self, server_address: int, apdu: bytes) -> bytes | None:
        request = decode_apdu(apdu)
        assert isinstance(request, Request)
        self.requests.append(request)
        answer = self.world.handle_apdu(server_address, apdu)
        if self.lose:
            self.lose -= 1
            return None
        return answer

    def advance(self) -> None:
        pass

    def save(self) -> None:
        pass

    @property
    def balance_pence(self) -> int:
        return self.world.meter(ESME).registers.meter_balance_pence


def _client(memory_link, manual_clock, world: LosingWorld) -> DeviceClient:  # type: ignore[no-untyped-def]
    return DeviceClient(memory_link(LinkServer(world)), clock=manual_clock,
                        retransmit_timeout_ms=100, max_retransmissions=1)


def test_every_state_changing_request_gets_its_own_key_and_reads_none(
        memory_link, manual_clock) -> None:
    world = LosingWorld()
    client = _client(memory_link, manual_clock, world)
    client.request(ESME_ADDRESS, Request(Command.READ_METER_BALANCE, 1))
    for _ in range(2):
        client.request(ESME_ADDRESS, Request(Command.ADJUST_METER_BALANCE, 2,
                                             {"adjustment_pence": 5}))
    given = idempotency_key_from_text("caller's own text")
    client.request(ESME_ADDRESS, Request(Command.ADJUST_METER_BALANCE, 3,
                                         {"adjustment_pence": 5}, idempotency_key=given))
    keys = [request.idempotency_key for request in world.requests]
    assert keys[0] is None
    assert all(key is not None and len(key) == 16 for key in keys[1:])
    assert keys[1] != keys[2] and keys[3] == given
    assert world.balance_pence == 1250 + 15


def test_a_lost_answer_is_outcome_unknown_and_resending_its_request_applies_it_once(
        memory_link, manual_clock) -> None:
    world = LosingWorld()
    world.lose = 1  # the answer is lost (a retransmission is a link duplicate: no answer)
    client = _client(memory_link, manual_clock, world)
    with pytest.raises(DeviceTimeoutError, match="outcome unknown") as caught:
        client.request(ESME_ADDRESS, Request(Command.ADJUST_METER_BALANCE, 1,
                                             {"adjustment_pence": 300}))
    error = caught.value
    assert isinstance(error, RequestOutcomeUnknownError)
    assert not isinstance(error, DeviceUnreachableError)
    assert world.balance_pence == 1250 + 300  # applied, though the client heard nothing
    resent = error.request
    assert isinstance(resent, Request) and resent.idempotency_key is not None
    fresh = _client(memory_link, manual_clock, world)  # a new connection
    response = fresh.request(error.server_address, resent)
    assert response.fields == {"adjustment_applied_pence": 300, "meter_balance_pence": 1550}
    assert world.balance_pence == 1550  # not applied twice


def test_nothing_sent_is_unreachable_and_not_outcome_unknown(memory_link, manual_clock) -> None:
    world = LosingWorld()
    client = _client(memory_link, manual_clock, world)
    with pytest.raises(DeviceUnreachableError) as caught:
        client.request(99, Request(Command.ADJUST_METER_BALANCE, 1, {"adjustment_pence": 1}))
    assert not isinstance(caught.value, RequestOutcomeUnknownError)


class ClosingAfterRequest:
    """A transport that takes the SNRM and answers UA, takes the request, then closes."""

    name = "closing"

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner = inner
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.inner.write(data)

    def read(self, max_bytes: int, timeout_ms: int) -> bytes:
        if self.writes >= 2:
            raise TransportClosedError("closing: the peer closed the connection")
        return self.inner.read(max_bytes, timeout_ms)

    def close(self) -> None:
        self.inner.close()


def test_the_connection_closing_after_the_request_left_is_outcome_unknown(
        memory_link, manual_clock) -> None:
    world = LosingWorld()
    client = DeviceClient(ClosingAfterRequest(memory_link(LinkServer(world))),
                          clock=manual_clock)
    with pytest.raises(LinkDroppedError, match="outcome unknown") as caught:
        client.request(ESME_ADDRESS, Request(Command.ADJUST_METER_BALANCE, 1,
                                             {"adjustment_pence": 7}))
    assert isinstance(caught.value, RequestOutcomeUnknownError)
    assert world.balance_pence == 1257


# ---- the S1SP adapter ----------------------------------------------------------------------------

def _code(xml: str) -> str:
    match = re.search(r"<sr:ResponseCode>(\w+)</sr:ResponseCode>", xml)
    assert match is not None, xml
    return match.group(1)


def test_the_adapter_keys_a_request_from_its_duis_request_id(memory_link, manual_clock) -> None:
    world = LosingWorld()
    adapter = S1spAdapter(_client(memory_link, manual_clock, world))
    assert _code(adapter.submit(ADJUST_XML.format(counter=1))) == "I0"
    adjust = [r for r in world.requests if r.command is Command.ADJUST_METER_BALANCE]
    assert [r.idempotency_key for r in adjust] == [idempotency_key_from_text(
        "90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A1:1")]


def test_an_unanswered_duis_request_is_e21_outcome_unknown_and_resending_it_is_safe(
        memory_link, manual_clock) -> None:
    world = LosingWorld()
    adapter = S1spAdapter(_client(memory_link, manual_clock, world))
    adapter.refresh_device_directory()
    world.lose = 1
    first = adapter.submit(ADJUST_XML.format(counter=7))
    assert _code(first) == "E21"
    assert ("outcome unknown: read before resending; resending the same RequestID is safe "
            "(idempotency key)") in first
    assert world.balance_pence == 1250 + 250  # it was applied
    again = adapter.submit(ADJUST_XML.format(counter=7))
    assert _code(again) == "I0"
    assert "1500000" in again  # the balance the first (unanswered) application gave
    assert world.balance_pence == 1500  # and not applied twice
    other = adapter.submit(ADJUST_XML.format(counter=8))  # a new RequestID is a new request
    assert _code(other) == "I0" and world.balance_pence == 1750


def test_a_duis_request_that_could_not_be_sent_is_e20_nothing_sent() -> None:
    class Unreachable:
        def request(self, server_address: int, request: Request) -> object:
            raise DeviceUnreachableError("cannot bring up the link: no UA")

    xml = S1spAdapter(Unreachable()).submit(ADJUST_XML.format(counter=1))
    assert _code(xml) == "E20" and "nothing was sent" in xml
