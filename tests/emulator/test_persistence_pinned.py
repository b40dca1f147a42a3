"""The SQLite state store, pinned: each refusal's whole message, that a commit writes only
what changed (watched by triggers a second connection adds), the world row's canonical JSON,
firmware blocks after a new transfer, the order of applied keys across commits and reopenings,
a failed commit writing none of its devices, the connection's WAL, sync and lock-wait settings,
how a JSON state file is told from a database, the JSON import's roll-back when the
database cannot take the JSON file's name, the name a database is built under and its clean-up
after a kill, and what a database missing a table or column (another program's damage) says."""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import emulator.persistence as persistence
from emulator.errors import StateError
from emulator.persistence import DeviceRecord, StateStore, encode_state, load_state

ESME = {"eui64": "00-DB-12-34-56-78-90-A1", "type": "esme", "server_address": 16}
GSME = {"eui64": "00-DB-12-34-56-78-90-A2", "type": "gsme", "server_address": 17}
FINGERPRINT = [ESME, GSME]
ESME_HEX, GSME_HEX = "00db1234567890a1", "00db1234567890a2"
WORLD = {"now_seconds": 100, "clock_offset_seconds": 0}


def _record(eui: str = ESME_HEX, state: str = "{}", *, schedule: Any = (),
            received: bytes = b"", applied: Any = ()) -> DeviceRecord:
    return DeviceRecord(eui, state, tuple(schedule), received, tuple(applied))


def _exact(message: str) -> str:
    return f"^{re.escape(message)}$"


def _watch(path: Path) -> sqlite3.Connection:
    """A second connection with triggers logging every write to the store's tables."""
    watcher = sqlite3.connect(path, isolation_level=None)
    watcher.execute("CREATE TABLE write_log (what TEXT)")
    for table in ("devices", "scheduled_requests", "firmware_blocks", "applied_requests"):
        for action in ("INSERT", "UPDATE", "DELETE"):
            watcher.execute(f"CREATE TRIGGER log_{table}_{action} AFTER {action} ON {table} "
                            f"BEGIN INSERT INTO write_log VALUES ('{action} {table}'); END")
    return watcher


def _writes(watcher: sqlite3.Connection) -> list[str]:
    done = [what for (what,) in watcher.execute("SELECT what FROM write_log ORDER BY rowid")]
    watcher.execute("DELETE FROM write_log")
    return done


def test_a_commit_writes_only_the_parts_of_a_device_that_changed(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = StateStore.create(path, FINGERPRINT, WORLD, [_record(), _record(GSME_HEX)])
    watcher = _watch(path)
    applied = ((b"\x01" * 16, b"d" * 16, b"r1"),)
    schedule = ((7, 500, b"\x01\x02"),)
    steps: list[tuple[DeviceRecord, list[str]]] = [
        (_record(state='{"a":1}'), ["UPDATE devices"]),
        (_record(state='{"a":1}', schedule=((7, 400, b"\x01"),)),
         ["INSERT scheduled_requests"]),
        (_record(state='{"a":1}', schedule=schedule),
         ["DELETE scheduled_requests", "INSERT scheduled_requests"]),
        (_record(state='{"a":1}', schedule=schedule, received=b"abc"),
         ["INSERT firmware_blocks"]),
        (_record(state='{"a":1}', schedule=schedule, received=b"abcdef"),
         ["INSERT firmware_blocks"]),
        (_record(state='{"a":1}', schedule=schedule, received=b"abcdef", applied=applied),
         ["INSERT applied_requests"]),
        (_record(state='{"a":2}', schedule=schedule, received=b"abcdef", applied=applied),
         ["UPDATE devices"]),
    ]
    for record, writes in steps:
        assert store.commit(WORLD, [record, _record(GSME_HEX)]) is True
        assert _writes(watcher) == writes
        assert store.commit(WORLD, [record, _record(GSME_HEX)]) is False
        assert _writes(watcher) == []
    store.close()
    watcher.close()


def test_an_unchanged_world_and_devices_write_nothing_even_after_reopening(
        tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    records = [_record(received=b"xyz", applied=((b"\x02" * 16, b"d" * 16, b"r"),)),
               _record(GSME_HEX)]
    StateStore.create(path, FINGERPRINT, WORLD, records).close()
    store, stored = StateStore.open(path, FINGERPRINT)
    assert store.commit(WORLD, list(stored.devices.values())) is False
    assert store.commit({"now_seconds": 101, "clock_offset_seconds": 0}, []) is True
    assert store.commit({"now_seconds": 101, "clock_offset_seconds": 0}, []) is False
    store.close()


def test_the_world_row_is_compact_json_with_sorted_keys(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    StateStore.create(path, FINGERPRINT, {"b": 2, "a": [1, 2]}, []).close()
    with sqlite3.connect(path) as db:
        (world,) = db.execute("SELECT value FROM meta WHERE key = 'world'").fetchone()
    assert world == '{"a":[1,2],"b":2}'
    store, _ = StateStore.open(path, FINGERPRINT)
    assert store.commit({"a": [1, 2], "b": 2}, []) is False
    store.close()


def test_a_shorter_received_image_is_a_new_transfer_that_replaces_the_old_blocks(
        tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = StateStore.create(path, FINGERPRINT, WORLD, [_record(received=b"abcdef")])
    watcher = _watch(path)
    store.commit(WORLD, [_record(received=b"xy")])
    assert _writes(watcher) == ["DELETE firmware_blocks", "INSERT firmware_blocks"]
    store.commit(WORLD, [_record(state='{"b":1}', received=b"xy")])
    assert _writes(watcher) == ["UPDATE devices"]
    store.close()
    watcher.close()
    _, stored = StateStore.open(path, FINGERPRINT)
    assert stored.devices[ESME_HEX].received == b"xy"


def test_only_a_grown_image_is_written_and_it_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = StateStore.create(path, FINGERPRINT, WORLD, [])
    assert store.commit(WORLD, [_record(received=b"abc")]) is True
    assert store.commit(WORLD, [_record(received=b"abcd")]) is True
    store.close()
    _, stored = StateStore.open(path, FINGERPRINT)
    assert stored.devices[ESME_HEX].received == b"abcd"


def test_applied_keys_read_back_oldest_first_across_commits(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    a, b, c, d = (bytes([n]) * 16 for n in (3, 5, 4, 1))
    first = ((a, b"da", b"ra"), (b, b"db", b"rb"))
    store = StateStore.create(path, FINGERPRINT, WORLD, [_record(applied=first)])
    store.commit(WORLD, [_record(applied=(*first, (c, b"dc", b"rc"), (d, b"dd", b"rd")))])
    store.commit(WORLD, [_record(applied=((b, b"db", b"rb"), (c, b"dc", b"rc"),
                                          (d, b"dd", b"rd")))])
    store.close()
    reopened, stored = StateStore.open(path, FINGERPRINT)
    assert [key for key, _, _ in stored.devices[ESME_HEX].applied] == [b, c, d]
    reopened.commit(WORLD, [_record(applied=((c, b"dc", b"rc"), (d, b"dd", b"rd"),
                                             (a, b"da2", b"ra2")))])
    reopened.close()
    _, stored = StateStore.open(path, FINGERPRINT)
    assert stored.devices[ESME_HEX].applied == ((c, b"dc", b"rc"), (d, b"dd", b"rd"),
                                                (a, b"da2", b"ra2"))


def test_a_failed_commit_names_the_file_and_says_nothing_was_applied(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = StateStore.create(path, FINGERPRINT, WORLD, [])
    store._db.close()  # every statement now fails as a sqlite3.Error
    with pytest.raises(StateError, match=_exact(
            f"cannot write the state file {path}: Cannot operate on a closed database.; "
            "the request was not applied")):
        store.commit(WORLD, [_record(state='{"c":1}')])
    store.close()


def test_a_database_that_cannot_be_created_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with pytest.raises(StateError, match=_exact(
            f"cannot create the state file {path}: UNIQUE constraint failed: devices.eui64")):
        StateStore.create(path, [ESME, ESME], WORLD, [])
    assert sorted(tmp_path.iterdir()) == []


def test_a_schema_version_or_a_missing_world_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    StateStore.create(path, FINGERPRINT, WORLD, []).close()
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM meta WHERE key = 'world'")
    with pytest.raises(StateError, match=_exact(f"state file {path} has no world state")):
        StateStore.open(path, FINGERPRINT)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    with pytest.raises(StateError, match=_exact(
            f"state file {path} has schema version '2'; this emulator reads version 1: "
            "delete it to start from the profile")):
        StateStore.open(path, FINGERPRINT)


def test_a_database_for_other_devices_lists_the_first_three_that_differ(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    saved = [ESME, GSME, {"eui64": "00-DB-00-00-00-00-00-05", "type": "esme",
                          "server_address": 20}]
    StateStore.create(path, saved, WORLD, []).close()
    profile = [dict(ESME, server_address=18), dict(GSME, type="esme"),
               {"eui64": "00-DB-00-00-00-00-00-03", "type": "ppmid", "server_address": 19},
               {"eui64": "00-DB-00-00-00-00-00-04", "type": "ppmid", "server_address": 21}]
    with pytest.raises(StateError, match=_exact(
            f"state file {path} was written for other devices (3 saved, 4 in the profile; "
            "00db000000000003: saved None, profile ('ppmid', 19); "
            "00db000000000004: saved None, profile ('ppmid', 21); "
            "00db000000000005: saved ('esme', 20), profile None): use the profile it was "
            "written for, or delete the file to start afresh")):
        StateStore.open(path, profile)
    with pytest.raises(StateError, match=_exact(
            f"state file {path} was written for other devices (3 saved, 2 in the profile; "
            "00db000000000005: saved ('esme', 20), profile None): use the profile it was "
            "written for, or delete the file to start afresh")):
        StateStore.open(path, FINGERPRINT)


def test_the_json_import_puts_the_json_file_back_when_the_database_cannot_take_its_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    json_path = tmp_path / "state.json"
    json_path.write_bytes(encode_state(FINGERPRINT, WORLD))
    real_replace = persistence.os.replace

    def replace(source: Any, target: Any) -> None:
        if Path(source).name == ".state.json.import.tmp":
            raise OSError("no room")
        real_replace(source, target)

    monkeypatch.setattr(persistence.os, "replace", replace)
    with pytest.raises(StateError, match=_exact(
            f"cannot import the JSON state file {json_path}: no room")):
        persistence.import_json_state(json_path, FINGERPRINT, WORLD, [])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
    assert json_path.read_bytes() == encode_state(FINGERPRINT, WORLD)


def test_the_json_import_refuses_when_its_backup_name_is_taken(tmp_path: Path) -> None:
    json_path = tmp_path / "state.json"
    json_path.write_bytes(encode_state(FINGERPRINT, WORLD))
    (tmp_path / "state.json.format1.json").write_text("{}")
    with pytest.raises(StateError, match=_exact(
            f"cannot import the JSON state file {json_path}: "
            f"{tmp_path / 'state.json.format1.json'} exists already; move it away first")):
        persistence.import_json_state(json_path, FINGERPRINT, WORLD, [])


def test_a_json_state_file_for_other_devices_describes_both_sets(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"state_format_version": 1, "devices": [ESME, "odd"],
                                "world": WORLD}))
    with pytest.raises(StateError, match=_exact(
            f"state file {path} was written for other devices (esme 00-DB-12-34-56-78-90-A1 "
            "at 16; 'odd') than this profile's (gsme 00-DB-12-34-56-78-90-A2 at 17): use the "
            "profile it was written for, or delete the file to start afresh")):
        load_state(path, [GSME])
    path.write_text(json.dumps({"state_format_version": 1, "devices": {"a": 1},
                                "world": WORLD}))
    with pytest.raises(StateError, match=_exact(
            f"state file {path} was written for other devices ({{'a': 1}}) than this "
            "profile's (none): use the profile it was written for, or delete the file to "
            "start afresh")):
        load_state(path, [])


def test_a_json_state_file_that_is_not_json_or_of_another_version_says_so(
        tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b"\xff")
    with pytest.raises(StateError, match=_exact(
            f"state file {path} is not JSON ('utf-8' codec can't decode byte 0xff in "
            "position 0: invalid start byte); delete it to start from the profile")):
        load_state(path, [])
    path.write_text('{"state_format_version": 2}')
    with pytest.raises(StateError, match=_exact(
            f"state file {path} has state_format_version 2; this emulator reads version 1: "
            "delete it to start from the profile")):
        load_state(path, [])
    with pytest.raises(StateError, match=_exact(
            f"cannot read the state file {tmp_path}: [Errno 21] Is a directory: "
            f"'{tmp_path}'")):
        load_state(tmp_path, [])


def test_a_gap_in_the_firmware_blocks_is_refused_naming_the_device_and_offset(
        tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = StateStore.create(path, FINGERPRINT, WORLD, [_record(received=b"abc")])
    store.commit(WORLD, [_record(received=b"abcdef")])
    store.close()
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM firmware_blocks WHERE offset_bytes = 0")
    with pytest.raises(StateError, match=_exact(
            f"state file {path}: firmware blocks of {ESME_HEX} have a gap at 0")):
        StateStore.open(path, FINGERPRINT)


def test_a_record_of_a_device_not_in_the_file_fails_the_commit(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = StateStore.create(path, FINGERPRINT, WORLD, [])
    with pytest.raises(StateError, match=_exact(
            f"cannot write the state file {path}: no device row 00db000000000009; the "
            "request was not applied")):
        store.commit(WORLD, [_record("00db000000000009", '{"a":1}')])
    store.close()


def test_a_json_state_file_is_told_by_its_first_64_bytes_leading_whitespace_skipped(
        tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b" \n\t\r" + encode_state(FINGERPRINT, WORLD))
    assert persistence.is_json_state_file(path) is True
    path.write_bytes(b" " * 63 + b"{}")
    assert persistence.is_json_state_file(path) is True
    path.write_bytes(b" " * 64 + b"{}")  # nothing but whitespace in the first 64 bytes
    assert persistence.is_json_state_file(path) is False
    path.write_bytes(b"SQLite format 3\x00{")
    assert persistence.is_json_state_file(path) is False


def test_a_path_that_cannot_be_read_is_not_a_json_state_file(tmp_path: Path) -> None:
    assert persistence.is_json_state_file(tmp_path / "absent.json") is False
    assert persistence.is_json_state_file(tmp_path) is False  # a directory


def test_keys_applied_after_reopening_read_back_after_the_older_keys_kept(
        tmp_path: Path) -> None:
    # five keys, then all but the newest dropped: the file holds one key at position 4, and
    # keys applied after reopening must be placed after it, not beside it
    path = tmp_path / "state.db"
    k9, k8, k7, k6, k5, k4, k3 = (bytes([n]) * 16 for n in (9, 8, 7, 6, 5, 4, 3))
    store = StateStore.create(path, FINGERPRINT, WORLD, [
        _record(applied=[(key, b"d", b"r") for key in (k9, k8, k7, k6, k5)])])
    store.commit(WORLD, [_record(applied=[(k5, b"d", b"r")])])
    store.close()
    store, _ = StateStore.open(path, FINGERPRINT)
    store.commit(WORLD, [_record(applied=[(k5, b"d", b"r"), (k4, b"d4", b"r4"),
                                          (k3, b"d3", b"r3")])])
    store.close()
    _, stored = StateStore.open(path, FINGERPRINT)
    assert stored.devices[ESME_HEX].applied == ((k5, b"d", b"r"), (k4, b"d4", b"r4"),
                                                (k3, b"d3", b"r3"))


def test_a_device_whose_applied_keys_all_went_writes_nothing_on_the_next_commit(
        tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = StateStore.create(path, FINGERPRINT, WORLD,
                              [_record(applied=[(b"\x01" * 16, b"d", b"r")])])
    assert store.commit(WORLD, [_record()]) is True
    assert store.commit(WORLD, [_record()]) is False
    store.close()
    _, stored = StateStore.open(path, FINGERPRINT)
    assert stored.devices[ESME_HEX].applied == ()


def test_a_device_without_firmware_blocks_reads_back_with_no_received_bytes(
        tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    StateStore.create(path, FINGERPRINT, WORLD, [_record(received=b"abc")]).close()
    _, stored = StateStore.open(path, FINGERPRINT)
    assert stored.devices[ESME_HEX].received == b"abc"
    assert stored.devices[GSME_HEX] == DeviceRecord(GSME_HEX, "", (), b"", ())


def test_keys_applied_one_commit_at_a_time_read_back_oldest_first(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    k9, k8, k7, k6, k5 = (bytes([n]) * 16 for n in (9, 8, 7, 6, 5))
    applied = [(k9, b"d9", b"r9"), (k8, b"d8", b"r8")]
    store = StateStore.create(path, FINGERPRINT, WORLD, [_record(applied=applied)])
    for key in (k7, k6, k5):
        applied.append((key, b"d", b"r"))
        assert store.commit(WORLD, [_record(applied=applied)]) is True
    store.close()
    _, stored = StateStore.open(path, FINGERPRINT)
    assert [key for key, _, _ in stored.devices[ESME_HEX].applied] == [k9, k8, k7, k6, k5]


def test_keys_applied_to_a_device_that_had_none_read_back_oldest_first(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    k9, k1 = b"\x09" * 16, b"\x01" * 16  # the newer key sorts first: order is by position
    store = StateStore.create(path, FINGERPRINT, WORLD, [])
    store.commit(WORLD, [_record(applied=[(k9, b"d9", b"r9")])])
    store.commit(WORLD, [_record(applied=[(k9, b"d9", b"r9"), (k1, b"d1", b"r1")])])
    store.close()
    _, stored = StateStore.open(path, FINGERPRINT)
    assert stored.devices[ESME_HEX].applied == ((k9, b"d9", b"r9"), (k1, b"d1", b"r1"))


def test_a_state_file_that_cannot_be_read_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(StateError, match=_exact(
            f"cannot read the state file {tmp_path}: [Errno 21] Is a directory: "
            f"'{tmp_path}'")):
        StateStore.open(tmp_path, FINGERPRINT)


@pytest.mark.parametrize(("content", "message"), [
    (b"not a state", "state file {path} is neither a secure-emu SQLite state file nor a JSON "
                     "state file: give another --state path or delete it"),
    (b"SQLite format 3\x00" + b"\x07" * 200,
     "cannot open the state file {path}: file is not a database"),
], ids=["neither-sqlite-nor-json", "sqlite-header-but-no-database"])
def test_a_file_that_is_no_state_database_is_refused_saying_what_to_do(
        tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(content)
    with pytest.raises(StateError, match=_exact(message.format(path=path))):
        StateStore.open(path, FINGERPRINT)


def test_another_programs_sqlite_database_is_refused_as_not_a_state_file(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with contextlib.closing(sqlite3.connect(path)) as other, other:
        other.execute("CREATE TABLE notes (text TEXT)")
    with pytest.raises(StateError, match=_exact(
            f"state file {path} is corrupt or not a secure-emu state file (no such table: "
            "meta): restore a backup or delete it to start from the profile")):
        StateStore.open(path, FINGERPRINT)


def test_the_store_writes_ahead_syncs_fully_and_waits_two_seconds_for_a_lock(
        tmp_path: Path) -> None:
    store = StateStore.create(tmp_path / "state.db", FINGERPRINT, WORLD, [])
    assert store._db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert store._db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    assert store._db.execute("PRAGMA busy_timeout").fetchone() == (2000,)
    store.close()


def test_a_database_that_cannot_write_ahead_is_refused() -> None:
    # an in-memory database keeps journal mode "memory" whatever is asked
    with pytest.raises(sqlite3.OperationalError, match=_exact(
            "cannot use write-ahead logging (journal mode memory)")):
        persistence._connect(Path(":memory:"))


def test_a_commit_that_fails_on_its_second_device_writes_nothing_of_the_first(
        tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = StateStore.create(path, FINGERPRINT, WORLD, [])
    with pytest.raises(StateError, match="no device row 00db000000000009"):
        store.commit({"now_seconds": 200, "clock_offset_seconds": 0},
                     [_record(state='{"a":1}'), _record("00db000000000009", '{"b":2}')])
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT state FROM devices WHERE eui64 = ?",
                          (ESME_HEX,)).fetchone() == ("",)
        assert db.execute("SELECT value FROM meta WHERE key = 'world'").fetchone() == (
            '{"clock_offset_seconds":0,"now_seconds":100}',)
    assert store.commit(WORLD, [_record(state='{"a":1}')]) is True  # the store knows it too
    store.close()


class _Killed(BaseException):
    """Stands for a kill: nothing in the store catches it."""


def test_a_database_killed_while_being_created_is_cleaned_up_by_the_next_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.db"

    def killed(*_: object) -> bool:
        assert (tmp_path / ".state.db.create.tmp").exists()  # built under this name
        raise _Killed

    monkeypatch.setattr(StateStore, "commit", killed)
    with pytest.raises(_Killed):
        StateStore.create(path, FINGERPRINT, WORLD, [])
    monkeypatch.undo()
    persistence.clean_up_after_a_kill(path)
    assert sorted(tmp_path.iterdir()) == []


def test_a_record_that_cannot_be_written_while_creating_names_the_file_being_built(
        tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with pytest.raises(StateError, match=_exact(
            f"cannot create the state file {path}: cannot write the state file "
            f"{tmp_path / '.state.db.create.tmp'}: no device row 00db000000000009; the "
            "request was not applied")):
        StateStore.create(path, FINGERPRINT, WORLD, [_record("00db000000000009", '{"a":1}')])
    assert sorted(tmp_path.iterdir()) == []


def test_a_json_state_file_nested_too_deeply_is_refused_saying_what_to_do(
        tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(StateError, match=_exact(
            f"state file {path} is nested too deeply to be a secure-emu state file; delete "
            "it to start from the profile")):
        load_state(path, [])


def test_a_world_row_that_is_not_json_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    StateStore.create(path, FINGERPRINT, WORLD, []).close()
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE meta SET value = '{' WHERE key = 'world'")
    with pytest.raises(StateError, match=_exact(
            f"state file {path}: its world row is not JSON or is nested too deeply: restore "
            "a backup or delete it")):
        StateStore.open(path, FINGERPRINT)


def test_a_state_file_deleted_after_its_import_leaves_the_json_backup_alone(
        tmp_path: Path) -> None:
    # the user deleted the imported database to start afresh: nothing to put in its place
    path = tmp_path / "state.json"
    backup = tmp_path / "state.json.format1.json"
    backup.write_bytes(encode_state(FINGERPRINT, WORLD))
    persistence.clean_up_after_a_kill(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json.format1.json"]
    assert backup.read_bytes() == encode_state(FINGERPRINT, WORLD)


def test_a_leftover_that_cannot_be_put_in_place_is_refused_naming_the_state_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.json"
    (tmp_path / "state.json.format1.json").write_bytes(encode_state(FINGERPRINT, WORLD))
    (tmp_path / ".state.json.import.tmp").write_bytes(b"imported")

    def replace(source: Any, target: Any) -> None:
        raise OSError("no room")

    monkeypatch.setattr(persistence.os, "replace", replace)
    with pytest.raises(StateError, match=_exact(
            f"cannot clean up after an interrupted run beside the state file {path}: "
            "no room")):
        persistence.clean_up_after_a_kill(path)


def test_each_applied_key_gets_a_position_of_its_own_across_commits(tmp_path: Path) -> None:
    # the order read back rests on the positions alone: two keys at one position would be
    # ordered by whatever SQLite does with ties
    path = tmp_path / "state.db"
    k1, k2, k3, k4 = (bytes([n]) * 16 for n in (1, 2, 3, 4))
    store = StateStore.create(path, FINGERPRINT, WORLD, [])
    applied = [(k1, b"d1", b"r1"), (k2, b"d2", b"r2")]
    store.commit(WORLD, [_record(applied=applied)])
    applied += [(k3, b"d3", b"r3"), (k4, b"d4", b"r4")]
    store.commit(WORLD, [_record(applied=applied)])
    store.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT idempotency_key, position FROM applied_requests "
                          "ORDER BY position").fetchall()
    assert [key for key, _ in rows] == [k1, k2, k3, k4]
    positions = [position for _, position in rows]
    assert len(set(positions)) == 4


@pytest.mark.parametrize(("damage", "error"), [
    ("DROP TABLE devices", "no such table: devices"),
    ("DROP TABLE scheduled_requests", "no such table: scheduled_requests"),
    ("DROP TABLE firmware_blocks", "no such table: firmware_blocks"),
    ("DROP TABLE applied_requests", "no such table: applied_requests"),
    pytest.param("ALTER TABLE applied_requests DROP COLUMN response", "no such column: response",
                 marks=pytest.mark.skipif(sqlite3.sqlite_version_info < (3, 35),
                                          reason="DROP COLUMN needs SQLite 3.35")),
], ids=["devices", "schedules", "firmware", "applied", "applied-response"])
def test_a_state_database_missing_a_table_or_column_is_refused_naming_it(
        tmp_path: Path, damage: str, error: str) -> None:
    path = tmp_path / "state.db"
    StateStore.create(path, FINGERPRINT, WORLD, []).close()
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute(damage)
    with pytest.raises(StateError, match=_exact(
            f"state file {path} is corrupt or not a secure-emu state file ({error}): restore "
            "a backup or delete it to start from the profile")):
        StateStore.open(path, FINGERPRINT)


_THREE_COLUMN_SCHEDULES = ("DROP TABLE scheduled_requests",
                           "CREATE TABLE scheduled_requests (eui64, command, request)")
_FOUR_COLUMN_APPLIED = ("DROP TABLE applied_requests",
                        "CREATE TABLE applied_requests (eui64, position, idempotency_key, "
                        "response)")


@pytest.mark.parametrize(("damage", "before", "after", "error"), [
    (("DROP TABLE devices",), {}, {"state": '{"a":1}'}, "no such table: devices"),
    (("DROP TABLE scheduled_requests",), {}, {"schedule": ((7, 500, b"\x01"),)},
     "no such table: scheduled_requests"),
    (_THREE_COLUMN_SCHEDULES, {}, {"schedule": ((7, 500, b"\x01"),)},
     "table scheduled_requests has 3 columns but 4 values were supplied"),
    (("DROP TABLE firmware_blocks",), {}, {"received": b"abc"},
     "no such table: firmware_blocks"),
    (("DROP TABLE firmware_blocks",), {"received": b"abc"}, {"received": b"x"},
     "no such table: firmware_blocks"),
    (("DROP TABLE applied_requests",), {"applied": ((b"\x01" * 16, b"d", b"r"),)}, {},
     "no such table: applied_requests"),
    (_FOUR_COLUMN_APPLIED, {}, {"applied": ((b"\x01" * 16, b"d", b"r"),)},
     "table applied_requests has 4 columns but 5 values were supplied"),
], ids=["device-row", "schedule-delete", "schedule-insert", "firmware-insert",
        "firmware-delete", "applied-delete", "applied-insert"])
def test_a_commit_to_a_table_another_program_broke_fails_naming_the_table(
        tmp_path: Path, damage: tuple[str, ...], before: dict[str, Any],
        after: dict[str, Any], error: str) -> None:
    path = tmp_path / "state.db"
    store = StateStore.create(path, FINGERPRINT, WORLD, [_record(**before)])
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        for statement in damage:
            db.execute(statement)
    with pytest.raises(StateError, match=_exact(
            f"cannot write the state file {path}: {error}; the request was not applied")):
        store.commit(WORLD, [_record(**after)])
    store.close()
