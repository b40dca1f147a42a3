"""The state file: atomic replacement, version, devices fingerprint; a restart resumes exactly."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

import pytest

from emulator.clock import SystemClock, VirtualClock
from emulator.errors import StateError
from emulator.firmware import FIRMWARE_TRANSFER_IDLE_TIMEOUT_SECONDS
from emulator.persistence import STATE_FORMAT_VERSION, StateStore, encode_state, load_state
from emulator.profile import Profile
from emulator.utrn import UtrnValueClass, make_utrn
from emulator.world import EmulatedWorld
from protocol.apdu import (
    Command,
    DebtRecoveryPeriod,
    DebtRegister,
    HanEntryState,
    PaymentMode,
    Request,
    Status,
)

DEVICES = [{"type": "esme", "eui64": "00-DB-12-34-56-78-90-A1", "server_address": 16}]
HUB = bytes.fromhex("00DB1234567890A0")
ESME = bytes.fromhex("00DB1234567890A1")
GSME = bytes.fromhex("00DB1234567890A2")
FIRMWARE_IMAGES = Path(__file__).resolve().parents[2] / "firmware_images"


def _saved_esme_meter(path: Path) -> dict:
    """The ESME's meter registers as committed to the state database at ``path``."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        (state,) = db.execute("SELECT state FROM devices WHERE eui64 = ?", (ESME.hex(),)).fetchone()
    return json.loads(state)["meter"]


def _write_json(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def test_load_of_a_missing_file_is_none(tmp_path: Path) -> None:
    assert load_state(tmp_path / "absent.json", DEVICES) is None


def test_load_returns_the_world_state_written(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    _write_json(path, encode_state(DEVICES, {"now_seconds": 5}))
    assert json.loads(path.read_text())["state_format_version"] == STATE_FORMAT_VERSION
    assert load_state(path, DEVICES) == {"now_seconds": 5}


@pytest.mark.parametrize(("content", "message"), [
    (b"{not json", "not JSON"),
    (b"[]", "not a secure-emu state file"),
    (json.dumps({"state_format_version": 99, "devices": DEVICES, "world": {}}).encode(),
     "state_format_version 99"),
    (json.dumps({"state_format_version": STATE_FORMAT_VERSION, "devices": DEVICES}).encode(),
     "no world state"),
])
def test_unreadable_state_file_is_a_state_error(tmp_path: Path, content: bytes,
                                                message: str) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with pytest.raises(StateError, match=message):
        load_state(path, DEVICES)


def test_state_written_for_other_devices_is_a_state_error(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    other = [dict(DEVICES[0], server_address=17)]
    _write_json(path, encode_state(other, {}))
    with pytest.raises(StateError, match="other devices"):
        load_state(path, DEVICES)


def test_world_refuses_a_state_file_of_another_profile(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    profile = Profile.default()
    world = EmulatedWorld(profile, VirtualClock(profile.start_device_time_seconds),
                          state_path=path)
    world.save()
    text = (Path(__file__).resolve().parents[2] / "emulator" / "default_profile.toml").read_text()
    other = Profile.from_toml_bytes(text.replace("server_address = 17", "server_address = 18")
                                    .encode())
    with pytest.raises(StateError, match="other devices"):
        EmulatedWorld(other, VirtualClock(other.start_device_time_seconds), state_path=path)


# ---- a restart resumes exactly -----------------------------------------------------------


def _request(world: EmulatedWorld, address: int, command: Command, fields: dict | None = None,
             ) -> object:
    response = world.handle_request(address, Request(command, 1, fields or {}))
    assert response.ok, response
    return response


def test_restart_from_the_state_file_resumes_balances_debts_utrns_han_and_firmware(
        tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    profile = Profile.default()
    clock = VirtualClock(profile.start_device_time_seconds)
    world = EmulatedWorld(profile, clock, state_path=path)
    utrn = make_utrn(ESME, 7, UtrnValueClass.POUNDS, 10).encode("ascii")
    _request(world, 16, Command.TOP_UP, {"utrn": utrn})
    _request(world, 16, Command.UPDATE_DEBT, {
        "debt_register": DebtRegister.TIME_DEBT_2, "debt_adjustment_pence": 700,
        "debt_recovery_rate_pence": 5, "debt_recovery_period": DebtRecoveryPeriod.HOURLY,
        "debt_recovery_percentage": 0})
    clock.advance_seconds(3 * 3600 + 17)
    image = (FIRMWARE_IMAGES / "esme_liberty100_1.1.0.sefw").read_bytes()
    _request(world, 16, Command.FIRMWARE_BEGIN, {"image_size_bytes": len(image)})
    _request(world, 16, Command.FIRMWARE_BLOCK, {"block_offset_bytes": 0,
                                                  "block_data": image[:1024]})
    _request(world, 2, Command.HAN_ADD_DEVICE, {"device_eui64": bytes(7) + b"\x09",
                                                "join_window_minutes": 10})
    before = world.handle_request(16, Request(Command.READ_INSTANTANEOUS_PREPAY_VALUES, 2))
    saved = _saved_rows(path)

    # a new process: same profile, a fresh clock back at the profile's start time
    restarted = EmulatedWorld(profile, VirtualClock(profile.start_device_time_seconds),
                              state_path=path)
    assert restarted.now_seconds == world.now_seconds
    assert restarted.to_state() == world.to_state()
    after = restarted.handle_request(16, Request(Command.READ_INSTANTANEOUS_PREPAY_VALUES, 2))
    assert after == before
    assert after.body.time_debt_2_pence == 700 - 3 * 5
    # the UTRN counter is remembered: the same code is a duplicate after the restart
    duplicate = restarted.handle_request(16, Request(Command.TOP_UP, 3, {"utrn": utrn}))
    assert duplicate.status is Status.UTRN_DUPLICATE
    entries = restarted.hub().han.entries
    assert [e.state for e in entries] == [HanEntryState.JOINED, HanEntryState.JOINED,
                                          HanEntryState.JOIN_WINDOW_OPEN]
    # the transfer continues where it stopped, and still holds the HAN
    assert restarted.hub().han.holder_eui64 == ESME
    block = restarted.handle_request(16, Request(Command.FIRMWARE_BLOCK, 4, {
        "block_offset_bytes": 1024, "block_data": image[1024:2048]}))
    assert block.fields == {"bytes_received": 2048}
    gsme_begin = restarted.handle_request(17, Request(Command.FIRMWARE_BEGIN, 5,
                                                      {"image_size_bytes": 100}))
    assert gsme_begin.status is Status.FIRMWARE_UPDATE_IN_PROGRESS
    assert saved != _saved_rows(path)


def _saved_rows(path: Path) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return (db.execute("SELECT * FROM devices ORDER BY eui64").fetchall()
                + db.execute("SELECT * FROM firmware_blocks ORDER BY eui64, offset_bytes")
                .fetchall())


def _start_esme_transfer(world: EmulatedWorld) -> bytes:
    image = (FIRMWARE_IMAGES / "esme_liberty100_1.1.0.sefw").read_bytes()
    _request(world, 16, Command.FIRMWARE_BEGIN, {"image_size_bytes": len(image)})
    _request(world, 16, Command.FIRMWARE_BLOCK, {"block_offset_bytes": 0,
                                                  "block_data": image[:1024]})
    return image


def _gsme_begin(world: EmulatedWorld) -> Status:
    return world.handle_request(17, Request(Command.FIRMWARE_BEGIN, 9,
                                            {"image_size_bytes": 100})).status


def test_restart_mid_transfer_keeps_the_han_lock_and_the_idle_deadline(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    profile = Profile.default()
    clock = VirtualClock(profile.start_device_time_seconds)
    world = EmulatedWorld(profile, clock, state_path=path)
    clock.advance_seconds(100)
    _start_esme_transfer(world)
    last_activity = world.now_seconds

    restarted_clock = VirtualClock(profile.start_device_time_seconds)
    restarted = EmulatedWorld(profile, restarted_clock, state_path=path)
    assert restarted.hub().han.holder_eui64 == ESME
    restarted_clock.advance_seconds(last_activity + FIRMWARE_TRANSFER_IDLE_TIMEOUT_SECONDS - 1
                                    - restarted_clock.device_time_seconds())
    assert _gsme_begin(restarted) is Status.FIRMWARE_UPDATE_IN_PROGRESS
    restarted_clock.advance_seconds(1)
    assert _gsme_begin(restarted) is Status.SUCCESS
    assert restarted.hub().han.holder_eui64 == GSME


def test_a_transfer_that_went_idle_while_the_emulator_was_stopped_is_abandoned_on_restart(
        tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    profile = Profile.default()
    world = EmulatedWorld(profile, VirtualClock(profile.start_device_time_seconds),
                          state_path=path)
    _start_esme_transfer(world)
    an_hour_later = VirtualClock(world.now_seconds + 3600)
    restarted = EmulatedWorld(profile, an_hour_later, state_path=path)
    assert restarted.hub().han.holder_eui64 is None
    assert not restarted.device_by_eui64(ESME).firmware.transfer_in_progress
    assert _gsme_begin(restarted) is Status.SUCCESS


_READS = [(16, Command.READ_INSTANTANEOUS_PREPAY_VALUES), (16, Command.READ_METER_BALANCE),
          (16, Command.READ_PREPAYMENT_CONFIGURATION), (16, Command.READ_SUPPLY_STATUS),
          (16, Command.READ_LOAD_LIMIT_DATA), (16, Command.READ_FIRMWARE_VERSION),
          (16, Command.READ_CLOCK), (16, Command.READ_DEVICE_IDENTITY),
          (16, Command.READ_SCHEDULED_REQUESTS), (2, Command.READ_HAN_ENTRIES),
          (1, Command.READ_DEVICE_DIRECTORY), (1, Command.READ_CLOCK)]


def test_a_read_writes_no_state_while_a_change_is_written_before_its_answer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.json"
    profile = Profile.default()
    clock = VirtualClock(profile.start_device_time_seconds)
    world = EmulatedWorld(profile, clock, state_path=path)
    writes: list[bool] = []
    commit = StateStore.commit
    monkeypatch.setattr(StateStore, "commit", lambda store, world, records: (
        written := commit(store, world, records), writes.extend([True] if written else []))[0])
    clock.advance_seconds(3600)  # the meters ran: a read now sees a changed balance
    for address, command in _READS:
        assert world.handle_request(address, Request(command, 1)).ok, command
    assert writes == []
    adjusted = world.handle_request(16, Request(Command.ADJUST_METER_BALANCE, 2,
                                                {"adjustment_pence": 250}))
    assert adjusted.ok and len(writes) == 1
    saved = _saved_esme_meter(path)
    assert saved["meter_balance_pence"] == adjusted.body.meter_balance_pence
    # a refusal that changes state (a failed verify discards the transfer) is written too
    _request(world, 16, Command.FIRMWARE_BEGIN, {"image_size_bytes": 500})
    assert len(writes) == 2
    failed = world.handle_request(16, Request(Command.FIRMWARE_VERIFY, 3))
    assert failed.status is Status.FIRMWARE_BAD_LENGTH and len(writes) == 3
    with contextlib.closing(sqlite3.connect(path)) as db:
        (state,) = db.execute("SELECT state FROM devices WHERE eui64 = ?",
                              (ESME.hex(),)).fetchone()
        (blocks,) = db.execute("SELECT COUNT(*) FROM firmware_blocks").fetchone()
    assert json.loads(state)["firmware"]["transfer"] is None and blocks == 0


def test_state_is_saved_before_the_answer_leaves(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    profile = Profile.default()
    world = EmulatedWorld(profile, VirtualClock(profile.start_device_time_seconds),
                          state_path=path)
    with contextlib.closing(sqlite3.connect(path)) as db:  # nothing changed yet: as built
        assert db.execute("SELECT state FROM devices WHERE eui64 = ?",
                          (ESME.hex(),)).fetchone() == ("",)
    world.handle_request(16, Request(Command.ADJUST_METER_BALANCE, 1, {"adjustment_pence": 250}))
    assert _saved_esme_meter(path)["meter_balance_pence"] == 1250 + 250


def test_restart_with_a_system_clock_keeps_the_fast_forward_offset(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    profile = Profile.default()
    clock = SystemClock()
    world = EmulatedWorld(profile, clock, state_path=path)
    response = world.handle_request(1, Request(Command.ADVANCE_DEVICE_TIME, 1,
                                               {"advance_seconds": 86_400}))
    assert response.ok
    new_clock = SystemClock()
    EmulatedWorld(profile, new_clock, state_path=path)
    assert new_clock.offset_seconds == 86_400


def test_corrupt_world_state_is_a_state_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    profile = Profile.default()
    _write_json(path, encode_state(profile.device_fingerprint(), {"now_seconds": 1}))
    with pytest.raises(StateError, match=str(path)):
        EmulatedWorld(profile, VirtualClock(profile.start_device_time_seconds), state_path=path)


def test_restart_resumes_schedules_clock_offsets_and_pending_joins(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    profile = Profile.default()
    clock = VirtualClock(profile.start_device_time_seconds)
    world = EmulatedWorld(profile, clock, state_path=path)
    now = clock.device_time_seconds()
    _request(world, 16, Command.SYNCHRONISE_CLOCK, {"device_time_seconds": now + 40})
    embedded = bytes.fromhex("01 0005 21 00000064")  # ADJUST_METER_BALANCE by 100 p
    _request(world, 16, Command.SCHEDULE_REQUEST, {"execution_time_seconds": now + 100,
                                                   "request": embedded})
    _request(world, 2, Command.HAN_REMOVE_DEVICE, {"device_eui64": GSME})
    _request(world, 2, Command.HAN_ADD_DEVICE, {"device_eui64": GSME, "join_window_minutes": 1})

    restarted_clock = VirtualClock(profile.start_device_time_seconds)
    restarted = EmulatedWorld(profile, restarted_clock, state_path=path)
    assert restarted.device_clock_seconds(ESME) == now + 40
    assert restarted.pending_join_attempts() == {GSME: now + 30}
    restarted_clock.advance_seconds(30)
    restarted.advance()
    assert restarted.hub().han.is_joined(GSME)
    assert restarted.scheduled_outcomes(ESME) == ()
    # the schedule runs on the ESME's clock, 40 s ahead: at world time now + 60
    restarted_clock.advance_seconds(30)
    restarted.advance()
    (outcome,) = restarted.scheduled_outcomes(ESME)
    assert outcome.response.body.adjustment_applied_pence == 100
    assert outcome.execution_time_seconds == now + 100


# ---- a state file written before the registers were typed -----------------------------------

STATE_FORMAT_1 = Path(__file__).parent / "data" / "state_format_1.json"
STATE_FORMAT_1_PROFILE = Path(__file__).parent / "data" / "state_format_1_profile.toml"


def test_a_state_file_written_by_the_earlier_code_loads_and_re_encodes_to_the_same_bytes(
        tmp_path: Path) -> None:
    """state_format_1.json was written by the code before the world and meter were split (a
    prepayment ESME with a time debt, a run-time load, a clock offset and a firmware transfer
    under way; a HAN join window and join attempt for the GSME, which holds a scheduled
    request; two hours and ten seconds on)."""
    path = tmp_path / "state.json"
    path.write_bytes(STATE_FORMAT_1.read_bytes())
    profile = Profile.load(STATE_FORMAT_1_PROFILE)
    world = EmulatedWorld(profile, VirtualClock(profile.start_device_time_seconds),
                          state_path=path)
    assert encode_state(profile.device_fingerprint(), world.to_state()) == \
        STATE_FORMAT_1.read_bytes()
    registers = world.meter(bytes.fromhex("00DB1234567890A1")).registers
    assert registers.payment_mode is PaymentMode.PREPAYMENT
    time_debt_1 = registers.debts[DebtRegister.TIME_DEBT_1]
    assert time_debt_1.debt_recovery_period is DebtRecoveryPeriod.HOURLY
    assert time_debt_1.debt_value_pence == 1990
    assert registers.load_profile_override == ((0, 1234),)
    assert world.now_seconds == 1_767_603_600 + 7_210
    assert world.pending_join_attempts() == {GSME: 1_767_603_600 + 7_230}
    assert world.hub().han.holder_eui64 == ESME
