"""The HAN's refusals answered as statuses, its limits written out (8 entries, 1-60 minutes),
the hub never on its own HAN, and the HAN's state file entries checked as whole numbers
(issue 13: behaviour no test guarded)."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.clock import VirtualClock
from emulator.errors import StateError
from emulator.firmware import FirmwareSlot
from emulator.hub import CommsHub, Han
from emulator.profile import Profile
from emulator.state_codecs import decode_han, encode_han
from emulator.world import EmulatedWorld
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


def _eui(index: int) -> bytes:
    return bytes.fromhex("00DB0000000000") + bytes([index])


def _add_request(eui64: bytes, minutes: int, invoke_id: int = 7) -> Request:
    """A HAN_ADD_DEVICE as the hub receives it: through the APDU bytes."""
    return decode_apdu(encode_request(Request(Command.HAN_ADD_DEVICE, invoke_id, {
        "device_eui64": eui64, "join_window_minutes": minutes})))


def _full_han() -> Han:
    han = Han(HUB)
    for index in range(1, 9):
        status, _ = han.add_device(_eui(index), 5, T0)
        assert status is Status.SUCCESS
    return han


# --- refusals are answered, never raised ----------------------------------------------------

@pytest.mark.parametrize(("eui64", "minutes"), [(METER, 0), (METER, 61), (HUB, 5), (HUB, 60)])
def test_refused_han_add_is_answered_value_out_of_range_with_no_fields(
        eui64: bytes, minutes: int) -> None:
    han = Han(HUB)
    response = han.handle_request(_add_request(eui64, minutes), T0)
    assert response.status is Status.VALUE_OUT_OF_RANGE
    assert response.fields == {}
    # 81 | invoke 0007 | command 40 | status VALUE_OUT_OF_RANGE, nothing more
    assert encode_response(response) == bytes.fromhex("8100074004")
    assert han.entries == ()


def test_han_add_to_a_full_table_is_answered_han_table_full_with_no_fields() -> None:
    han = _full_han()
    response = han.handle_request(_add_request(METER, 5), T0 + 1)
    assert response.status is Status.HAN_TABLE_FULL
    assert response.fields == {}
    assert encode_response(response) == bytes.fromhex("8100074021")
    assert len(han.entries) == 8
    assert han.entry(METER) is None


def test_han_table_holds_eight_entries_and_a_removal_makes_room_for_one_more() -> None:
    han = Han(HUB)
    for index in range(1, 9):
        status, _ = han.add_device(_eui(index), 5, T0)
        assert status is Status.SUCCESS
    status, entry = han.add_device(_eui(9), 5, T0)
    assert (status, entry) == (Status.HAN_TABLE_FULL, None)
    assert han.remove_device(_eui(3)) is Status.SUCCESS
    status, entry = han.add_device(_eui(9), 5, T0)
    assert status is Status.SUCCESS
    assert [e.device_eui64 for e in han.entries] == [
        _eui(1), _eui(2), _eui(4), _eui(5), _eui(6), _eui(7), _eui(8), _eui(9)]


def test_join_windows_of_one_and_sixty_minutes_are_accepted() -> None:
    han = Han(HUB)
    one = han.handle_request(_add_request(_eui(1), 1), T0).body
    sixty = han.handle_request(_add_request(_eui(2), 60), T0).body
    assert one.join_window_closes_at_seconds == T0 + 60
    assert sixty.join_window_closes_at_seconds == T0 + 3600


def test_hub_in_a_world_refuses_to_put_itself_on_its_own_han() -> None:
    profile = Profile.default()
    world = EmulatedWorld(profile, VirtualClock(profile.start_device_time_seconds))
    hub_address = profile.device(HUB).server_address
    response = world.handle_request(hub_address, Request(
        Command.HAN_ADD_DEVICE, 1, {"device_eui64": HUB, "join_window_minutes": 5}))
    assert response.status is Status.VALUE_OUT_OF_RANGE
    entries = world.handle_request(hub_address, Request(Command.READ_HAN_ENTRIES, 2))
    assert HUB not in [entry.device_eui64 for entry in entries.body.entries]


def test_comms_hub_keeps_its_identity_and_firmware_and_its_han_is_its_own() -> None:
    firmware = FirmwareSlot("Acme", "Hub-1", "1.0.0")
    hub = CommsHub(HUB, firmware)
    assert hub.eui64 == HUB
    assert hub.firmware is firmware
    assert hub.han.hub_eui64 == HUB
    assert hub.han.add_device(HUB, 5, T0) == (Status.VALUE_OUT_OF_RANGE, None)


def test_han_answers_a_command_it_does_not_handle_not_supported_by_device() -> None:
    response = Han(HUB).handle_request(Request(Command.READ_CLOCK, 4), T0)
    assert response.status is Status.NOT_SUPPORTED_BY_DEVICE
    assert response.fields == {}






def test_device_put_on_the_han_directly_is_joined_with_no_window() -> None:
    han = Han(HUB)
    han.add_joined(METER)
    entry = han.entry(METER)
    assert entry is not None
    assert (entry.state, entry.join_window_closes_at_seconds) == (HanEntryState.JOINED, 0)
    assert han.next_event_time_seconds() is None


# --- the HAN in the state file ----------------------------------------------------------------

def test_saved_han_with_a_full_table_of_eight_entries_loads_back() -> None:
    han = _full_han()
    han.join(_eui(2), T0 + 10)
    restored = decode_han(HUB, encode_han(han))
    assert restored.entries == han.entries
    assert len(restored.entries) == 8
    assert restored.add_device(METER, 5, T0 + 20) == (Status.HAN_TABLE_FULL, None)


def test_restored_han_is_the_hubs_own_and_refuses_the_hub_itself() -> None:
    restored = decode_han(HUB, encode_han(Han(HUB)))
    assert restored.hub_eui64 == HUB
    assert restored.add_device(HUB, 5, T0) == (Status.VALUE_OUT_OF_RANGE, None)


def _entry(eui64: bytes, closes_at: Any = T0 + 300) -> dict[str, Any]:
    return {"device_eui64": eui64.hex(), "state": "JOIN_WINDOW_OPEN",
            "join_window_closes_at_seconds": closes_at}


def test_saved_han_with_nine_entries_is_refused_naming_the_count() -> None:
    state = {"entries": [_entry(_eui(index)) for index in range(1, 10)],
             "transfer_lock_holder_eui64": None}
    with pytest.raises(StateError, match="holds 9 entries, more than 8"):
        decode_han(HUB, state)


@pytest.mark.parametrize("closes_at", [True, False, 1.5, 1767603900.0, "1767603900", None])
def test_saved_han_close_time_that_is_not_a_whole_number_is_refused(closes_at: Any) -> None:
    state = {"entries": [_entry(METER, closes_at)], "transfer_lock_holder_eui64": None}
    with pytest.raises(StateError) as raised:
        decode_han(HUB, state)
    assert str(raised.value) == (f"HAN entry join_window_closes_at_seconds {closes_at!r} is "
                                 "not a whole number >= 0")


@pytest.mark.parametrize(("state", "message"), [
    ({"entries": [{"device_eui64": METER.hex(), "state": "LOST",
                   "join_window_closes_at_seconds": 0}], "transfer_lock_holder_eui64": None},
     "HAN entry state 'LOST' is not one of JOIN_WINDOW_OPEN, JOINED"),
    ({"entries": []},
     "saved HAN state of hub 00db1234567890a0 lacks 'transfer_lock_holder_eui64'"),
    ({"entries": 5, "transfer_lock_holder_eui64": None},
     "saved HAN state of hub 00db1234567890a0 is malformed: 'int' object is not iterable"),
])
def test_saved_han_state_errors_say_what_is_wrong(state: dict[str, Any], message: str) -> None:
    with pytest.raises(StateError) as raised:
        decode_han(HUB, state)
    assert str(raised.value) == message


def test_saved_han_close_time_of_zero_loads() -> None:
    state = {"entries": [{"device_eui64": METER.hex(), "state": "JOINED",
                          "join_window_closes_at_seconds": 0}],
             "transfer_lock_holder_eui64": HUB.hex()}
    restored = decode_han(HUB, state)
    entry = restored.entry(METER)
    assert entry is not None
    assert (entry.state, entry.join_window_closes_at_seconds) == (HanEntryState.JOINED, 0)
    assert restored.holder_eui64 == HUB
