"""The emulated world: routing by address and command family, management device, joining,
scheduling, event ordering, the per-HAN firmware lock, and robustness to any bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.clock import VirtualClock
from emulator.errors import EmulatorError
from emulator.firmware import FIRMWARE_TRANSFER_IDLE_TIMEOUT_SECONDS
from emulator.profile import Profile
from emulator.world import MAX_ADVANCE_SECONDS, EmulatedWorld
from protocol.apdu import (
    MANAGEMENT_SERVER_ADDRESS,
    REQUEST_BODY_TYPES,
    Command,
    DeviceType,
    HanEntryState,
    Request,
    Response,
    ScheduledEntry,
    Status,
    decode_apdu,
    encode_request,
)

HUB = bytes.fromhex("00DB1234567890A0")
ESME = bytes.fromhex("00DB1234567890A1")
GSME = bytes.fromhex("00DB1234567890A2")
FIRMWARE_IMAGES = Path(__file__).resolve().parents[2] / "firmware_images"
DEFAULT_TOML = (Path(__file__).resolve().parents[2] / "emulator" / "default_profile.toml"
                ).read_text()


def make_world(toml_text: str = DEFAULT_TOML) -> tuple[EmulatedWorld, VirtualClock]:
    profile = Profile.from_toml_bytes(toml_text.encode())
    clock = VirtualClock(profile.start_device_time_seconds)
    return EmulatedWorld(profile, clock), clock


@pytest.fixture
def world_and_clock() -> tuple[EmulatedWorld, VirtualClock]:
    return make_world()


def ask(world: EmulatedWorld, address: int, command: Command,
        fields: dict[str, Any] | None = None) -> Response:
    """Send one request as bytes, as the link would, and decode the answer."""
    answer = world.handle_apdu(address, encode_request(Request(command, 0x1234, fields or {})))
    assert answer is not None
    response = decode_apdu(answer)
    assert isinstance(response, Response) and response.invoke_id == 0x1234
    return response


def schedule(world: EmulatedWorld, address: int, at_seconds: int, command: Command,
             fields: dict[str, Any] | None = None) -> Response:
    embedded = encode_request(Request(command, 0x0BAD, fields or {}))
    return ask(world, address, Command.SCHEDULE_REQUEST,
               {"execution_time_seconds": at_seconds, "request": embedded})


# ---- addresses, management -------------------------------------------------------------------


def test_server_addresses_are_the_devices_and_the_management_device(world_and_clock) -> None:
    world, _ = world_and_clock
    assert world.server_addresses() == frozenset({MANAGEMENT_SERVER_ADDRESS, 2, 16, 17})


def test_unknown_address_gets_no_answer(world_and_clock) -> None:
    world, _ = world_and_clock
    assert world.handle_apdu(99, encode_request(Request(Command.READ_CLOCK, 1))) is None
    with pytest.raises(EmulatorError, match="99"):
        world.handle_request(99, Request(Command.READ_CLOCK, 1))


def test_directory_lists_every_device_by_address(world_and_clock) -> None:
    world, _ = world_and_clock
    response = ask(world, MANAGEMENT_SERVER_ADDRESS, Command.READ_DEVICE_DIRECTORY)
    assert [(d.server_address, d.device_type, d.device_eui64)
            for d in response.body.devices] == [
        (2, DeviceType.COMMS_HUB, HUB), (16, DeviceType.ELECTRICITY_METER, ESME),
        (17, DeviceType.GAS_METER, GSME)]


def test_advance_device_time_moves_the_clock_and_runs_the_meters(world_and_clock) -> None:
    world, clock = world_and_clock
    start = clock.device_time_seconds()
    before = ask(world, 16, Command.READ_METER_BALANCE).body.meter_balance_pence
    response = ask(world, MANAGEMENT_SERVER_ADDRESS, Command.ADVANCE_DEVICE_TIME,
                   {"advance_seconds": 3600})
    assert response.fields == {"device_time_seconds": start + 3600}
    assert clock.device_time_seconds() == start + 3600
    after = ask(world, 16, Command.READ_METER_BALANCE).body.meter_balance_pence
    assert after < before  # 500 W for an hour at 24.5 p/kWh plus standing charge


def test_advance_beyond_the_maximum_is_out_of_range_and_moves_nothing(world_and_clock) -> None:
    world, clock = world_and_clock
    start = clock.device_time_seconds()
    response = ask(world, MANAGEMENT_SERVER_ADDRESS, Command.ADVANCE_DEVICE_TIME,
                   {"advance_seconds": MAX_ADVANCE_SECONDS + 1})
    assert response.status is Status.VALUE_OUT_OF_RANGE
    assert clock.device_time_seconds() == start


def test_management_device_refuses_meter_commands(world_and_clock) -> None:
    world, _ = world_and_clock
    response = ask(world, MANAGEMENT_SERVER_ADDRESS, Command.READ_METER_BALANCE)
    assert response.status is Status.NOT_SUPPORTED_BY_DEVICE
    clock_reply = ask(world, MANAGEMENT_SERVER_ADDRESS, Command.READ_CLOCK)
    assert clock_reply.body.device_time_seconds == world.now_seconds


# ---- routing by command family ---------------------------------------------------------------


def test_identity_comes_from_the_profile(world_and_clock) -> None:
    world, _ = world_and_clock
    response = ask(world, 17, Command.READ_DEVICE_IDENTITY)
    assert response.fields == {"device_eui64": GSME, "device_type": DeviceType.GAS_METER,
                               "server_address": 17, "manufacturer": "Secure Meters",
                               "model": "SECURE-GSME"}


def test_synchronise_clock_sets_only_that_devices_clock(world_and_clock) -> None:
    world, clock = world_and_clock
    now = clock.device_time_seconds()
    response = ask(world, 16, Command.SYNCHRONISE_CLOCK, {"device_time_seconds": now + 120})
    assert response.fields == {"device_time_seconds": now + 120}
    clock.advance_seconds(10)
    assert ask(world, 16, Command.READ_CLOCK).body.device_time_seconds == now + 130
    assert ask(world, 17, Command.READ_CLOCK).body.device_time_seconds == now + 10


def test_firmware_version_comes_from_each_devices_own_slot(world_and_clock) -> None:
    world, _ = world_and_clock
    versions = {address: ask(world, address, Command.READ_FIRMWARE_VERSION)
                .body.running_version for address in (2, 16, 17)}
    assert versions == {2: "3.0.0", 16: "1.0.0", 17: "2.0.0"}


def test_han_commands_go_to_the_hub_and_are_not_supported_on_a_meter(world_and_clock) -> None:
    world, _ = world_and_clock
    entries = ask(world, 2, Command.READ_HAN_ENTRIES).body.entries
    assert {e.device_eui64 for e in entries} == {ESME, GSME}
    assert ask(world, 16, Command.READ_HAN_ENTRIES).status is Status.NOT_SUPPORTED_BY_DEVICE
    assert ask(world, 16, Command.HAN_ADD_DEVICE, {
        "device_eui64": GSME, "join_window_minutes": 1}).status is Status.NOT_SUPPORTED_BY_DEVICE


def test_meter_commands_go_to_the_meter_and_are_not_supported_on_the_hub(
        world_and_clock) -> None:
    world, _ = world_and_clock
    adjusted = ask(world, 16, Command.ADJUST_METER_BALANCE, {"adjustment_pence": 100})
    assert adjusted.fields == {"adjustment_applied_pence": 100, "meter_balance_pence": 1350}
    assert world.meter(ESME).registers.meter_balance_pence == 1350
    assert ask(world, 2, Command.READ_METER_BALANCE).status is Status.NOT_SUPPORTED_BY_DEVICE


def test_management_only_commands_are_not_supported_on_a_device(world_and_clock) -> None:
    world, _ = world_and_clock
    assert ask(world, 16, Command.READ_DEVICE_DIRECTORY).status is Status.NOT_SUPPORTED_BY_DEVICE
    assert ask(world, 2, Command.ADVANCE_DEVICE_TIME,
               {"advance_seconds": 5}).status is Status.NOT_SUPPORTED_BY_DEVICE


def test_undecodable_bytes_get_a_failure_response_with_the_invoke_id(world_and_clock) -> None:
    world, _ = world_and_clock
    # READ_METER_BALANCE takes no body: one extra byte is malformed
    assert world.handle_apdu(16, bytes.fromhex("01 0042 03 FF")) == bytes.fromhex("81004203 01")
    # command 0x99 does not exist
    assert world.handle_apdu(16, bytes.fromhex("01 0042 99")) == bytes.fromhex("81004299 02")
    # a response APDU sent to a device
    assert world.handle_apdu(16, bytes.fromhex("81 0042 03 00")) == bytes.fromhex("81004203 01")


@settings(max_examples=300, deadline=None)
@given(address=st.sampled_from([1, 2, 16, 17, 40]), data=st.binary(max_size=64))
def test_any_bytes_to_handle_apdu_never_raise(address: int, data: bytes) -> None:
    world, _ = make_world()
    answer = world.handle_apdu(address, data)
    if address == 40:
        assert answer is None
    else:
        assert answer is not None and answer[0] == 0x81


@settings(max_examples=200, deadline=None)
@given(command=st.sampled_from(list(Command)), body=st.binary(max_size=24),
       address=st.sampled_from([1, 2, 16, 17]))
def test_any_body_for_any_command_never_raises(command: Command, body: bytes,
                                               address: int) -> None:
    world, _ = make_world()
    answer = world.handle_apdu(address, bytes([0x01, 0x00, 0x01, command]) + body)
    assert answer is not None and answer[3] == command


# ---- HAN joining through the world ----------------------------------------------------------


def remove_and_re_add(world: EmulatedWorld, eui64: bytes, minutes: int) -> None:
    assert ask(world, 2, Command.HAN_REMOVE_DEVICE, {"device_eui64": eui64}).ok
    added = ask(world, 2, Command.HAN_ADD_DEVICE, {"device_eui64": eui64,
                                                   "join_window_minutes": minutes})
    assert added.body.state == HanEntryState.JOIN_WINDOW_OPEN


def test_meter_joins_by_itself_after_its_join_delay(world_and_clock) -> None:
    world, clock = world_and_clock
    remove_and_re_add(world, ESME, 1)
    clock.advance_seconds(29)
    world.advance()
    assert not world.hub().han.is_joined(ESME)
    clock.advance_seconds(1)  # join_delay_seconds = 30
    world.advance()
    assert world.hub().han.is_joined(ESME)


def test_meter_that_never_joins_has_its_entry_expire() -> None:
    world, clock = make_world(DEFAULT_TOML.replace("joins_han = true", "joins_han = false"))
    remove_and_re_add(world, ESME, 2)
    clock.advance_seconds(119)
    world.advance()
    assert world.hub().han.entry(ESME) is not None
    clock.advance_seconds(1)
    world.advance()
    assert world.hub().han.entry(ESME) is None


def test_join_delay_equal_to_the_window_fails_and_one_second_less_joins() -> None:
    for delay, joined in ((60, False), (59, True)):
        world, clock = make_world(DEFAULT_TOML.replace("join_delay_seconds = 30",
                                                       f"join_delay_seconds = {delay}"))
        remove_and_re_add(world, ESME, 1)
        clock.advance_seconds(600)  # in one step: events still run in time order
        world.advance()
        assert world.hub().han.is_joined(ESME) is joined, delay


def test_attempt_join_edges_at_n_times_60_seconds() -> None:
    world, clock = make_world(DEFAULT_TOML.replace("joins_han = true", "joins_han = false"))
    remove_and_re_add(world, ESME, 3)
    clock.advance_seconds(3 * 60 - 1)
    assert world.attempt_join(ESME)
    remove_and_re_add(world, GSME, 3)
    clock.advance_seconds(3 * 60)
    assert not world.attempt_join(GSME)
    assert world.hub().han.entry(GSME) is None


# ---- S1SR 18.63: one firmware transfer per HAN ----------------------------------------------


def test_one_firmware_transfer_at_a_time_across_the_han(world_and_clock) -> None:
    world, _ = world_and_clock
    image = (FIRMWARE_IMAGES / "esme_liberty100_1.1.0.sefw").read_bytes()
    assert ask(world, 16, Command.FIRMWARE_BEGIN, {"image_size_bytes": len(image)}).ok
    for address in (2, 17):
        refused = ask(world, address, Command.FIRMWARE_BEGIN, {"image_size_bytes": 100})
        assert refused.status is Status.FIRMWARE_UPDATE_IN_PROGRESS
    for offset in range(0, len(image), 1024):
        assert ask(world, 16, Command.FIRMWARE_BLOCK, {
            "block_offset_bytes": offset, "block_data": image[offset:offset + 1024]}).ok
    assert ask(world, 16, Command.FIRMWARE_VERIFY).body.pending_version == "1.1.0"
    assert ask(world, 17, Command.FIRMWARE_BEGIN, {"image_size_bytes": 100}).ok


def test_a_hub_firmware_transfer_blocks_a_meter_transfer_on_the_same_han(
        world_and_clock) -> None:
    world, _ = world_and_clock
    assert ask(world, 2, Command.FIRMWARE_BEGIN, {"image_size_bytes": 2205}).ok
    refused = ask(world, 16, Command.FIRMWARE_BEGIN, {"image_size_bytes": 2205})
    assert refused.status is Status.FIRMWARE_UPDATE_IN_PROGRESS


@pytest.mark.parametrize(("meter_begins_after_seconds", "expected"), [
    (FIRMWARE_TRANSFER_IDLE_TIMEOUT_SECONDS - 1, Status.FIRMWARE_UPDATE_IN_PROGRESS),
    (FIRMWARE_TRANSFER_IDLE_TIMEOUT_SECONDS, Status.SUCCESS),
])
def test_an_idle_hub_transfer_frees_the_han_at_exactly_its_deadline(
        meter_begins_after_seconds: int, expected: Status) -> None:
    world, clock = make_world()
    start = clock.device_time_seconds()
    assert ask(world, 2, Command.FIRMWARE_BEGIN, {"image_size_bytes": 2205}).ok
    clock.advance_seconds(meter_begins_after_seconds)
    assert ask(world, 16, Command.FIRMWARE_BEGIN, {"image_size_bytes": 2205}).status is expected
    hub_firmware = ask(world, 2, Command.READ_FIRMWARE_VERSION).fields
    assert hub_firmware["transfer_in_progress"] is (expected is not Status.SUCCESS)
    assert world.now_seconds == start + meter_begins_after_seconds


def _send_two_blocks(world: EmulatedWorld, address: int, image: bytes) -> None:
    assert ask(world, address, Command.FIRMWARE_BEGIN, {"image_size_bytes": len(image)}).ok
    for offset in (0, 1024):
        assert ask(world, address, Command.FIRMWARE_BLOCK, {
            "block_offset_bytes": offset, "block_data": image[offset:offset + 1024]}).ok


def test_an_interrupted_transfer_does_not_hold_the_han_after_thirty_days(
        world_and_clock) -> None:
    world, _ = world_and_clock
    image = (FIRMWARE_IMAGES / "esme_liberty100_1.1.0.sefw").read_bytes()
    _send_two_blocks(world, 16, image)
    assert ask(world, MANAGEMENT_SERVER_ADDRESS, Command.ADVANCE_DEVICE_TIME,
               {"advance_seconds": 30 * 86_400}).ok
    assert ask(world, 17, Command.FIRMWARE_BEGIN, {"image_size_bytes": 100}).ok
    esme_firmware = ask(world, 16, Command.READ_FIRMWARE_VERSION).fields
    assert esme_firmware["running_version"] == "1.0.0"
    assert esme_firmware["transfer_in_progress"] is False


@pytest.mark.parametrize(("gsme_begins_after_seconds", "expected"), [
    (FIRMWARE_TRANSFER_IDLE_TIMEOUT_SECONDS - 1, Status.FIRMWARE_UPDATE_IN_PROGRESS),
    (FIRMWARE_TRANSFER_IDLE_TIMEOUT_SECONDS, Status.SUCCESS),
])
def test_an_idle_transfer_frees_the_han_at_exactly_its_deadline_on_the_devices_clock(
        gsme_begins_after_seconds: int, expected: Status) -> None:
    world, clock = make_world()
    start = clock.device_time_seconds()
    assert ask(world, 16, Command.SYNCHRONISE_CLOCK,
               {"device_time_seconds": start + 5_000}).ok  # the ESME's clock runs ahead
    image = (FIRMWARE_IMAGES / "esme_liberty100_1.1.0.sefw").read_bytes()
    _send_two_blocks(world, 16, image)
    assert schedule(world, 17, start + gsme_begins_after_seconds, Command.FIRMWARE_BEGIN,
                    {"image_size_bytes": 100}).ok
    clock.advance_seconds(3_600)  # one long step: the world runs its events in time order
    world.advance()
    (outcome,) = world.scheduled_outcomes(GSME)
    assert outcome.response.status is expected


def test_firmware_activation_at_a_future_time_runs_when_time_gets_there(
        world_and_clock) -> None:
    world, clock = world_and_clock
    image = (FIRMWARE_IMAGES / "chf_secure-chf_3.1.0.sefw").read_bytes()
    ask(world, 2, Command.FIRMWARE_BEGIN, {"image_size_bytes": len(image)})
    for offset in range(0, len(image), 1024):
        ask(world, 2, Command.FIRMWARE_BLOCK, {"block_offset_bytes": offset,
                                               "block_data": image[offset:offset + 1024]})
    ask(world, 2, Command.FIRMWARE_VERIFY)
    at = clock.device_time_seconds() + 500
    ask(world, 2, Command.FIRMWARE_ACTIVATE, {"activation_time_seconds": at})
    clock.advance_seconds(499)
    assert ask(world, 2, Command.READ_FIRMWARE_VERSION).body.running_version == "3.0.0"
    clock.advance_seconds(1)
    assert ask(world, 2, Command.READ_FIRMWARE_VERSION).body.running_version == "3.1.0"


# ---- scheduling ------------------------------------------------------------------------------


def test_scheduled_request_runs_at_its_time_as_if_it_arrived_then(world_and_clock) -> None:
    world, clock = world_and_clock
    at = clock.device_time_seconds() + 600
    accepted = schedule(world, 16, at, Command.ADJUST_METER_BALANCE, {"adjustment_pence": 500})
    assert accepted.fields == {"scheduled_command": Command.ADJUST_METER_BALANCE,
                               "execution_time_seconds": at,
                               "replaced_execution_time_seconds": 0}
    clock.advance_seconds(599)
    world.advance()
    assert world.scheduled_outcomes(ESME) == ()
    balance_before = world.meter(ESME).registers.meter_balance_pence
    clock.advance_seconds(1)
    world.advance()
    (outcome,) = world.scheduled_outcomes(ESME)
    assert outcome.execution_time_seconds == at
    assert outcome.response.ok and outcome.response.invoke_id == 0x0BAD
    assert outcome.response.body.adjustment_applied_pence == 500
    assert world.meter(ESME).registers.meter_balance_pence == balance_before + 500
    assert ask(world, 16, Command.READ_SCHEDULED_REQUESTS).fields == {"scheduled": []}


def test_scheduled_request_sees_the_meter_as_at_its_time_within_a_long_advance(
        world_and_clock) -> None:
    world, clock = world_and_clock
    start = clock.device_time_seconds()
    schedule(world, 16, start + 3600, Command.READ_METER_BALANCE)
    clock.advance_seconds(3600)
    at_hour = ask(world, 16, Command.READ_METER_BALANCE).body.meter_balance_pence
    other, other_clock = make_world()
    schedule(other, 16, start + 3600, Command.READ_METER_BALANCE)
    other_clock.advance_seconds(86_400)  # one big step
    other.advance()
    (outcome,) = other.scheduled_outcomes(ESME)
    assert outcome.response.body.meter_balance_pence == at_hour


def test_scheduling_the_same_command_again_replaces_it(world_and_clock) -> None:
    world, clock = world_and_clock
    now = clock.device_time_seconds()
    first = schedule(world, 16, now + 100, Command.READ_METER_BALANCE)
    assert first.body.replaced_execution_time_seconds == 0
    schedule(world, 16, now + 50, Command.READ_SUPPLY_STATUS)
    again = schedule(world, 16, now + 200, Command.READ_METER_BALANCE)
    assert again.body.replaced_execution_time_seconds == now + 100  # said, not silent
    listed = ask(world, 16, Command.READ_SCHEDULED_REQUESTS).body.scheduled
    assert listed == (
        ScheduledEntry(scheduled_command=Command.READ_SUPPLY_STATUS,
                       execution_time_seconds=now + 50),
        ScheduledEntry(scheduled_command=Command.READ_METER_BALANCE,
                       execution_time_seconds=now + 200))


def test_cancel_removes_a_scheduled_request_and_nothing_scheduled_is_refused(
        world_and_clock) -> None:
    world, clock = world_and_clock
    schedule(world, 17, clock.device_time_seconds() + 100, Command.RESET_METER_BALANCE)
    cancelled = ask(world, 17, Command.CANCEL_SCHEDULED_REQUEST,
                    {"scheduled_command": Command.RESET_METER_BALANCE})
    assert cancelled.fields == {"cancelled": True}
    again = ask(world, 17, Command.CANCEL_SCHEDULED_REQUEST,
                {"scheduled_command": Command.RESET_METER_BALANCE})
    assert again.status is Status.NOTHING_SCHEDULED
    clock.advance_seconds(200)
    world.advance()
    assert world.scheduled_outcomes(GSME) == ()


@pytest.mark.parametrize("embedded", [
    bytes.fromhex("01 0001 03 FF"),  # READ_METER_BALANCE with a stray body byte
    bytes.fromhex("01 0001 99"),  # unknown command
    bytes.fromhex("81 0001 03 00"),  # a response, not a request
    b"",
])
def test_schedule_with_a_bad_embedded_apdu_is_malformed(world_and_clock,
                                                        embedded: bytes) -> None:
    world, clock = world_and_clock
    response = ask(world, 16, Command.SCHEDULE_REQUEST, {
        "execution_time_seconds": clock.device_time_seconds() + 60, "request": embedded})
    assert response.status is Status.MALFORMED_REQUEST
    assert ask(world, 16, Command.READ_SCHEDULED_REQUESTS).fields == {"scheduled": []}


def test_schedule_at_now_or_in_the_past_is_out_of_range(world_and_clock) -> None:
    world, clock = world_and_clock
    for at in (clock.device_time_seconds(), clock.device_time_seconds() - 1):
        response = schedule(world, 16, at, Command.READ_METER_BALANCE)
        assert response.status is Status.VALUE_OUT_OF_RANGE


def test_a_scheduling_command_cannot_itself_be_scheduled(world_and_clock) -> None:
    world, clock = world_and_clock
    response = schedule(world, 16, clock.device_time_seconds() + 60,
                        Command.CANCEL_SCHEDULED_REQUEST, {"scheduled_command": 3})
    assert response.status is Status.NOT_SUPPORTED_BY_DEVICE


def test_schedule_times_are_on_the_devices_own_clock(world_and_clock) -> None:
    world, clock = world_and_clock
    now = clock.device_time_seconds()
    ask(world, 16, Command.SYNCHRONISE_CLOCK, {"device_time_seconds": now + 1000})
    schedule(world, 16, now + 1100, Command.READ_SUPPLY_STATUS)
    clock.advance_seconds(99)
    world.advance()
    assert world.scheduled_outcomes(ESME) == ()
    clock.advance_seconds(1)
    world.advance()
    assert len(world.scheduled_outcomes(ESME)) == 1


# ---- event ordering --------------------------------------------------------------------------


def test_events_at_the_same_second_run_closing_windows_then_joins_then_schedules(
        world_and_clock) -> None:
    world, clock = world_and_clock
    now = clock.device_time_seconds()
    remove_and_re_add(world, ESME, 1)  # auto-join at now + 30
    # at now + 30 the hub reads its HAN: the scheduled read must see the ESME joined
    schedule(world, 2, now + 30, Command.READ_HAN_ENTRIES)
    # at now + 60 a scheduled add for a device whose earlier window closes at that second
    ask(world, 2, Command.HAN_ADD_DEVICE, {"device_eui64": bytes(8), "join_window_minutes": 1})
    schedule(world, 2, now + 60, Command.HAN_ADD_DEVICE,
             {"device_eui64": bytes(8), "join_window_minutes": 2})
    clock.advance_seconds(3600)
    world.advance()
    first, second = world.scheduled_outcomes(HUB)
    states = {e.device_eui64: e.state for e in first.response.body.entries}
    assert states[ESME] == HanEntryState.JOINED
    # the old window closed first, so the scheduled add made a fresh entry closing at +180
    assert second.response.body.join_window_closes_at_seconds == now + 60 + 120


def test_a_scheduled_add_with_no_join_delay_joins_at_that_second_within_a_long_advance() -> None:
    world, clock = make_world(DEFAULT_TOML.replace("join_delay_seconds = 30",
                                                   "join_delay_seconds = 0"))
    now = clock.device_time_seconds()
    assert ask(world, 2, Command.HAN_REMOVE_DEVICE, {"device_eui64": GSME}).ok
    schedule(world, 2, now + 10, Command.HAN_ADD_DEVICE,
             {"device_eui64": GSME, "join_window_minutes": 1})
    clock.advance_seconds(600)  # far past the window: the join must have run at now + 10
    world.advance()
    assert world.hub().han.is_joined(GSME)


def test_synchronising_a_clock_past_a_scheduled_time_runs_it_at_once(world_and_clock) -> None:
    world, clock = world_and_clock
    now = clock.device_time_seconds()
    schedule(world, 17, now + 3600, Command.READ_SUPPLY_STATUS)
    ask(world, 17, Command.SYNCHRONISE_CLOCK, {"device_time_seconds": now + 7200})
    (outcome,) = world.scheduled_outcomes(GSME)
    assert outcome.response.ok
    assert world.now_seconds == now  # world time did not move; only the GSME's clock


# ---- bodies are checked once, when decoded; a bug in a device part raises --------------------


@pytest.mark.parametrize(("address", "apdu_hex"), [
    (16, "01 0042 21 000000"),  # ADJUST_METER_BALANCE: adjustment_pence one byte short
    (16, "01 0042 21"),  # ADJUST_METER_BALANCE: no body
    (2, "01 0042 40 00DB1234567890 0005"),  # HAN_ADD_DEVICE: a 7-byte EUI-64
    (2, "01 0042 41 00DB1234567890A1 00"),  # HAN_REMOVE_DEVICE: a 9-byte EUI-64
    (16, "01 0042 50"),  # FIRMWARE_BEGIN: no image size
])
def test_a_malformed_body_is_refused_at_decoding_and_changes_nothing(
        world_and_clock, address: int, apdu_hex: str) -> None:
    world, _ = world_and_clock
    before = world.to_state()
    answer = world.handle_apdu(address, bytes.fromhex(apdu_hex))
    assert answer == bytes.fromhex("810042" + apdu_hex.split()[2] + "01")  # MALFORMED_REQUEST
    assert world.to_state() == before


def _broken(*_: Any, **__: Any) -> Any:
    raise KeyError("a bug")


@pytest.mark.parametrize(("address", "command", "part"), [
    (16, Command.READ_METER_BALANCE, "emulator.meter.Meter._balances"),
    (2, Command.READ_HAN_ENTRIES, "emulator.hub.HanEntry.body"),
    (16, Command.READ_FIRMWARE_VERSION, "emulator.firmware.FirmwareSlot.status"),
    (16, Command.READ_DEVICE_IDENTITY, "emulator.device.EmulatedDevice.identity"),
])
def test_a_bug_in_a_device_part_raises_instead_of_answering_malformed(
        world_and_clock, monkeypatch: pytest.MonkeyPatch, address: int, command: Command,
        part: str) -> None:
    world, _ = world_and_clock
    monkeypatch.setattr(part, _broken)
    with pytest.raises(KeyError, match="a bug"):
        world.handle_request(address, Request(command, 1, body=REQUEST_BODY_TYPES[command]()))
