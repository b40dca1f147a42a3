"""The comms hub's HAN: minute join windows (S1SR 18.62), the join list, the transfer lock."""

from __future__ import annotations

import pytest

from emulator.hub import Han
from protocol.apdu import (
    Command,
    HanEntryState,
    Request,
    Status,
    decode_apdu,
    encode_request,
    encode_response,
)

HUB = bytes.fromhex("00DB1234567890A0")
METER = bytes.fromhex("00DB1234567890A1")
T0 = 1_767_603_600


def add(han: Han, eui64: bytes, minutes: int, now: int = T0) -> Status:
    status, _ = han.add_device(eui64, minutes, now)
    return status


def test_join_window_open_closes_exactly_n_minutes_after_it_opened() -> None:
    han = Han(HUB)
    status, entry = han.add_device(METER, 5, T0)
    assert status is Status.SUCCESS
    assert entry is not None and entry.state is HanEntryState.JOIN_WINDOW_OPEN
    assert entry.join_window_closes_at_seconds == T0 + 300
    assert han.next_event_time_seconds() == T0 + 300


def test_join_one_second_before_the_window_closes_succeeds() -> None:
    han = Han(HUB)
    add(han, METER, 2)
    assert han.join(METER, T0 + 2 * 60 - 1)
    entry = han.entry(METER)
    assert entry is not None and entry.state is HanEntryState.JOINED
    assert entry.join_window_closes_at_seconds == 0
    assert han.is_joined(METER)


def test_join_at_the_second_the_window_closes_fails_and_the_entry_is_dropped() -> None:
    han = Han(HUB)
    add(han, METER, 2)
    assert not han.join(METER, T0 + 2 * 60)
    assert han.entry(METER) is None


def test_expired_entry_is_dropped_when_time_reaches_the_close() -> None:
    han = Han(HUB)
    add(han, METER, 1)
    han.advance_to(T0 + 59)
    assert han.entry(METER) is not None
    han.advance_to(T0 + 60)
    assert han.entries == ()
    assert han.next_event_time_seconds() is None


def test_joined_entry_never_expires() -> None:
    han = Han(HUB)
    add(han, METER, 1)
    han.join(METER, T0 + 10)
    han.advance_to(T0 + 10 * 86_400)
    assert han.is_joined(METER)


@pytest.mark.parametrize("minutes", [0, 61, 0xFFFF])
def test_join_window_of_zero_or_above_the_maximum_is_out_of_range(minutes: int) -> None:
    han = Han(HUB)
    assert add(han, METER, minutes) is Status.VALUE_OUT_OF_RANGE
    assert han.entries == ()


def test_join_window_of_the_maximum_is_accepted() -> None:
    assert add(Han(HUB), METER, 60) is Status.SUCCESS


def test_adding_the_hub_itself_is_out_of_range() -> None:
    assert add(Han(HUB), HUB, 5) is Status.VALUE_OUT_OF_RANGE


def test_table_full_refuses_a_new_device_but_reopens_an_existing_one() -> None:
    han = Han(HUB)
    euis = [bytes([0, 0, 0, 0, 0, 0, 0, i + 1]) for i in range(8)]
    for eui64 in euis:
        assert add(han, eui64, 5) is Status.SUCCESS
    assert add(han, METER, 5) is Status.HAN_TABLE_FULL
    status, entry = han.add_device(euis[0], 10, T0 + 60)
    assert status is Status.SUCCESS
    assert entry is not None and entry.join_window_closes_at_seconds == T0 + 60 + 600


def test_re_adding_a_joined_device_leaves_it_joined() -> None:
    han = Han(HUB)
    han.add_joined(METER)
    status, entry = han.add_device(METER, 5, T0)
    assert status is Status.SUCCESS
    assert entry is not None and entry.state is HanEntryState.JOINED


def test_remove_unknown_device_is_not_found_and_known_device_goes() -> None:
    han = Han(HUB)
    assert han.remove_device(METER) is Status.HAN_DEVICE_NOT_FOUND
    han.add_joined(METER)
    assert han.remove_device(METER) is Status.SUCCESS
    assert not han.is_joined(METER)


def test_han_requests_round_trip_through_apdu_bytes() -> None:
    han = Han(HUB)
    request = decode_apdu(encode_request(Request(
        Command.HAN_ADD_DEVICE, 7, {"device_eui64": METER, "join_window_minutes": 3})))
    response = han.handle_request(request, T0)
    # 81 | invoke 0007 | command 40 | SUCCESS | eui64 | state 1 | closes at T0 + 180
    assert encode_response(response) == bytes.fromhex(
        "810007400000DB1234567890A101") + (T0 + 180).to_bytes(4, "big")
    read = han.handle_request(Request(Command.READ_HAN_ENTRIES, 8), T0 + 1)
    assert read.body.entries[0].device_eui64 == METER
    removed = han.handle_request(Request(Command.HAN_REMOVE_DEVICE, 9, {"device_eui64": METER}),
                                 T0 + 2)
    assert removed.ok and removed.fields == {"device_eui64": METER}
    again = han.handle_request(Request(Command.HAN_REMOVE_DEVICE, 10, {"device_eui64": METER}),
                               T0 + 3)
    assert again.status is Status.HAN_DEVICE_NOT_FOUND and again.fields == {}




def test_transfer_lock_is_held_by_one_device_at_a_time() -> None:
    han = Han(HUB)
    assert han.acquire(METER)
    assert han.acquire(METER)  # the holder again
    assert not han.acquire(HUB)
    han.release(HUB)  # not the holder: nothing happens
    assert han.holder_eui64 == METER
    han.release(METER)
    assert han.holder_eui64 is None
    assert han.acquire(HUB)
