"""The SQLite state file: created at start, refused when it cannot be written, a failed commit
leaves the device as it was, a JSON state file of format 1 is imported once."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

import pytest

from emulator.clock import VirtualClock
from emulator.errors import StateError
from emulator.profile import Profile
from emulator.world import EmulatedWorld
from protocol.apdu import Command, Request

ESME = bytes.fromhex("00DB1234567890A1")
DATA = Path(__file__).parent / "data"


def _world(path: Path) -> tuple[EmulatedWorld, VirtualClock]:
    profile = Profile.default()
    clock = VirtualClock(profile.start_device_time_seconds)
    return EmulatedWorld(profile, clock, state_path=path), clock


def _adjust(world: EmulatedWorld, pence: int) -> int:
    response = world.handle_request(16, Request(Command.ADJUST_METER_BALANCE, 1,
                                                {"adjustment_pence": pence}))
    assert response.ok
    return response.body.meter_balance_pence


def test_a_state_file_in_a_missing_directory_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="cannot create the state file"):
        _world(tmp_path / "nowhere" / "state.db")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_state_file_in_a_read_only_directory_refuses_to_start(tmp_path: Path) -> None:
    directory = tmp_path / "read-only"
    directory.mkdir()
    directory.chmod(0o555)
    try:
        with pytest.raises(StateError, match="cannot create the state file"):
            _world(directory / "state.db")
        assert list(directory.iterdir()) == []
    finally:
        directory.chmod(0o755)


def test_a_change_that_cannot_be_committed_leaves_the_device_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    world, _ = _world(path)
    assert _adjust(world, 100) == 1350
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("PRAGMA busy_timeout = 0")
        world._store._db.execute("PRAGMA busy_timeout = 0")  # fail at once, not in 2 s
        other.execute("BEGIN IMMEDIATE")  # another writer holds the database: a real failure
        with pytest.raises(StateError, match="cannot write the state file"):
            world.handle_request(16, Request(Command.ADJUST_METER_BALANCE, 2,
                                             {"adjustment_pence": 250}))
        assert world.meter(ESME).registers.meter_balance_pence == 1350
        other.execute("ROLLBACK")
    assert _adjust(world, 250) == 1600
    world.close()
    restarted, _ = _world(path)
    assert restarted.meter(ESME).registers.meter_balance_pence == 1600


def test_a_firmware_begin_that_cannot_be_committed_does_not_hold_the_han(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    world, _ = _world(path)
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as other:
        world._store._db.execute("PRAGMA busy_timeout = 0")
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StateError):
            world.handle_request(16, Request(Command.FIRMWARE_BEGIN, 1,
                                             {"image_size_bytes": 100}))
        other.execute("ROLLBACK")
    assert world.hub().han.holder_eui64 is None
    assert not world.device_by_eui64(ESME).firmware.transfer_in_progress


@pytest.mark.parametrize("content", [b"SQLite format 3\x00" + b"\x07" * 200, b"not a state"])
def test_a_corrupt_state_file_is_a_one_line_state_error_and_is_left_alone(
        tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(content)
    with pytest.raises(StateError, match=str(path)) as raised:
        _world(path)
    assert "\n" not in str(raised.value)
    assert path.read_bytes() == content


def test_a_state_database_of_another_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    _world(path)[0].close()
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StateError, match="schema version '99'"):
        _world(path)


def test_a_json_state_file_is_imported_once_and_kept_beside(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_bytes((DATA / "state_format_1.json").read_bytes())
    profile = Profile.load(DATA / "state_format_1_profile.toml")
    world = EmulatedWorld(profile, VirtualClock(profile.start_device_time_seconds),
                          state_path=path)
    balance = world.meter(ESME).registers.meter_balance_pence
    world.close()
    assert path.read_bytes().startswith(b"SQLite format 3\x00")
    assert (tmp_path / "state.json.format1.json").read_bytes() == \
        (DATA / "state_format_1.json").read_bytes()
    again = EmulatedWorld(profile, VirtualClock(profile.start_device_time_seconds),
                          state_path=path)
    assert again.meter(ESME).registers.meter_balance_pence == balance
    assert again.to_state() == world.to_state()


def test_only_the_rows_of_devices_that_changed_are_written(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    world, clock = _world(path)
    with contextlib.closing(sqlite3.connect(path)) as db:
        before = dict(db.execute("SELECT eui64, state FROM devices"))
    clock.advance_seconds(3600)
    _adjust(world, 5)
    with contextlib.closing(sqlite3.connect(path)) as db:
        after = dict(db.execute("SELECT eui64, state FROM devices"))
    assert [eui for eui in before if before[eui] != after[eui]] == [ESME.hex()]
