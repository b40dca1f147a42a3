"""The world's state file: one SQLite database (standard library ``sqlite3``, WAL,
``synchronous=FULL``), and the import of a JSON state file of format 1.

Schema (``SCHEMA_VERSION`` 1, stored in ``meta`` and checked on open)::

    meta(key TEXT PRIMARY KEY, value TEXT)          # schema_version, world (JSON: now_seconds,
                                                    # clock_offset_seconds)
    devices(eui64 TEXT PRIMARY KEY, type TEXT, server_address INTEGER,
            state TEXT)                             # one row per device: emulator.state's row;
                                                    # '' for a device as built from the profile
    firmware_blocks(eui64 TEXT, offset_bytes INTEGER, data BLOB,
                    PRIMARY KEY (eui64, offset_bytes))   # received image bytes, appended only
    scheduled_requests(eui64 TEXT, command INTEGER, execution_time_seconds INTEGER,
                       request BLOB, PRIMARY KEY (eui64, command))
    applied_requests(eui64 TEXT, position INTEGER, idempotency_key BLOB, request_digest BLOB,
                     response BLOB, PRIMARY KEY (eui64, idempotency_key))
                                                    # keyed requests applied, with responses

``devices`` (type, EUI-64, address) is the profile's fingerprint: a state written for another
set of devices is refused with a :class:`StateError` rather than half-restored. One call of
:meth:`StateStore.commit` is one transaction; it writes only the rows whose content changed
since they were last written (the store keeps a hash per row; a new database holds every
device as built, an empty ``state``, so creating one costs a short row per device), appends
only the firmware bytes received since the last commit, and rewrites a device's scheduled
requests only when they changed. A failed commit is rolled back and raised as
:class:`StateError`; the store's record of what is on disk is then unchanged.

A JSON state file of format 1 (``STATE_FORMAT_VERSION``, written by earlier versions) given as
the state file is imported once: the world is restored from it, written into a new database
next to it, the JSON file is kept as ``<name>.format1.json`` and the database takes its name.

What a kill can leave, and what the next start does with it (:func:`clean_up_after_a_kill`):
a new database is built as ``.<name>.create.tmp`` and renamed into place only once complete,
so a kill while creating leaves that file (removed at the next start, which creates afresh),
never a half-made state file; a kill during an import leaves ``.<name>.import.tmp``: removed
when the JSON file is still in place (the import runs again), or renamed into place when the
kill fell between the import's two renames (the JSON file already moved to
``<name>.format1.json``). SQLite's own ``-wal`` and ``-shm`` files beside the state file are
SQLite's: it replays or discards them when the database is next opened.

This module is the only place the emulator writes files; it never reads a clock and never
interprets a device's state beyond the row layout above.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.errors import StateError

__all__ = [
    "SCHEMA_VERSION",
    "STATE_FORMAT_VERSION",
    "DeviceRecord",
    "StateStore",
    "StoredWorld",
    "clean_up_after_a_kill",
    "encode_state",
    "is_json_state_file",
    "load_state",
]

#: The version of the JSON state file format that is imported.
STATE_FORMAT_VERSION = 1
#: The SQLite schema version written and accepted.
SCHEMA_VERSION = 1
#: Suffix the imported JSON state file is kept under.
IMPORTED_JSON_SUFFIX = ".format1.json"
#: Seconds a commit waits for another connection's lock before failing.
BUSY_TIMEOUT_SECONDS = 2.0

_SQLITE_MAGIC = b"SQLite format 3\x00"
_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE devices (eui64 TEXT PRIMARY KEY, type TEXT NOT NULL,
                      server_address INTEGER NOT NULL, state TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE firmware_blocks (eui64 TEXT NOT NULL, offset_bytes INTEGER NOT NULL,
                              data BLOB NOT NULL, PRIMARY KEY (eui64, offset_bytes));
CREATE TABLE scheduled_requests (eui64 TEXT NOT NULL, command INTEGER NOT NULL,
                                 execution_time_seconds INTEGER NOT NULL,
                                 request BLOB NOT NULL, PRIMARY KEY (eui64, command));
CREATE TABLE applied_requests (eui64 TEXT NOT NULL, position INTEGER NOT NULL,
                               idempotency_key BLOB NOT NULL, request_digest BLOB NOT NULL,
                               response BLOB NOT NULL, PRIMARY KEY (eui64, idempotency_key));
"""

#: (command code, execution time on the device clock, request APDU)
ScheduleRows = tuple[tuple[int, int, bytes], ...]
#: (idempotency key, request digest, response APDU), oldest first
AppliedRows = tuple[tuple[bytes, bytes, bytes], ...]


@dataclass(frozen=True)
class DeviceRecord:
    """One device as stored: its row, its scheduled requests, its received firmware bytes."""

    eui64_hex: str
    state_json: str
    schedule: ScheduleRows
    #: bytes received by a firmware transfer under way (empty: none)
    received: bytes = b""
    applied: AppliedRows = ()


@dataclass(frozen=True)
class StoredWorld:
    """What a database holds: the world row and every device's record, by EUI-64 hex."""

    world: dict[str, Any]
    devices: dict[str, DeviceRecord]


class StateStore:
    """An open state database (see the module docstring)."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection
        self._row_hash: dict[str, int] = {}
        self._schedule_hash: dict[str, int] = {}
        self._received_bytes: dict[str, int] = {}
        #: EUI-64 hex -> keys in applied_requests (devices with none are absent)
        self._applied_keys: dict[str, set[bytes]] = {}
        self._applied_hash: dict[str, int] = {}
        self._next_position = 0
        self._world_json: str | None = None

    # ---- opening -----------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path, fingerprint: list[dict[str, Any]], world: Mapping[str, Any],
               records: Iterable[DeviceRecord]) -> StateStore:
        """A new database at ``path`` (which must not exist) holding ``records``; raises
        :class:`StateError` (leaving no file behind) if it cannot be written."""
        path = Path(path)
        building = _temporary(path, "create")
        _remove_database(building)
        try:
            store = cls(building, _connect(building))
        except (sqlite3.Error, OSError) as error:
            _remove_database(building)
            raise StateError(f"cannot create the state file {path}: {error}") from None
        try:
            store._db.executescript(_SCHEMA)
            with store._db:
                store._db.execute("INSERT INTO meta VALUES ('schema_version', ?)",
                                  (str(SCHEMA_VERSION),))
                store._db.executemany(
                    "INSERT INTO devices VALUES (?, ?, ?, '')",
                    ((d["eui64"].replace("-", "").lower(), d["type"], d["server_address"])
                     for d in fingerprint))
            store.commit(world, records)
            store.close()  # checkpoints the WAL into the file: the file alone is complete
            os.replace(building, path)
        except (sqlite3.Error, OSError, StateError) as error:
            store.close()
            _remove_database(building)
            raise StateError(f"cannot create the state file {path}: {error}") from None
        return cls.open(path, fingerprint)[0]

    @classmethod
    def open(cls, path: Path, fingerprint: list[dict[str, Any]]) -> tuple[StateStore, StoredWorld]:
        """Open an existing database and read it whole; raises :class:`StateError` naming the
        file if it is not a state database of this schema, or was written for other devices."""
        path = Path(path)
        try:
            with path.open("rb") as handle:
                magic = handle.read(len(_SQLITE_MAGIC))
        except OSError as error:
            raise StateError(f"cannot read the state file {path}: {error}") from None
        if magic != _SQLITE_MAGIC:
            raise StateError(f"state file {path} is neither a secure-emu SQLite state file nor "
                             "a JSON state file: give another --state path or delete it")
        try:
            store = cls(path, _connect(path))
        except sqlite3.Error as error:
            raise StateError(f"cannot open the state file {path}: {error}") from None
        try:
            stored = store._read(fingerprint)
        except sqlite3.Error as error:
            store.close()
            raise StateError(f"state file {path} is corrupt or not a secure-emu state file "
                             f"({error}): restore a backup or delete it to start from the "
                             "profile") from None
        except StateError:
            store.close()
            raise
        return store, stored

    def _read(self, fingerprint: list[dict[str, Any]]) -> StoredWorld:
        path = self.path
        meta = dict(self._db.execute("SELECT key, value FROM meta"))
        version = meta.get("schema_version")
        if version != str(SCHEMA_VERSION):
            raise StateError(f"state file {path} has schema version {version!r}; this emulator "
                             f"reads version {SCHEMA_VERSION}: delete it to start from the "
                             "profile")
        rows = {eui: (type_name, address, state) for eui, type_name, address, state
                in self._db.execute("SELECT eui64, type, server_address, state FROM devices")}
        wanted = {d["eui64"].replace("-", "").lower(): (d["type"], d["server_address"])
                  for d in fingerprint}
        saved = {eui: (t, a) for eui, (t, a, _) in rows.items()}
        if saved != wanted:
            raise StateError(f"state file {path} was written for other devices "
                             f"({_difference(saved, wanted)}): use the profile it was written "
                             "for, or delete the file to start afresh")
        if "world" not in meta:
            raise StateError(f"state file {path} has no world state")
        try:
            world = json.loads(meta["world"])
        except (ValueError, RecursionError):
            raise StateError(f"state file {path}: its world row is not JSON or is nested "
                             "too deeply: restore a backup or delete it") from None
        self._world_json = meta["world"]
        schedules: dict[str, list[tuple[int, int, bytes]]] = {}
        for eui, command, when, request in self._db.execute(
                "SELECT eui64, command, execution_time_seconds, request FROM scheduled_requests "
                "ORDER BY eui64, command"):
            schedules.setdefault(eui, []).append((command, when, bytes(request)))
        received: dict[str, bytearray] = {}
        for eui, offset, data in self._db.execute(
                "SELECT eui64, offset_bytes, data FROM firmware_blocks "
                "ORDER BY eui64, offset_bytes"):
            image = received.setdefault(eui, bytearray())
            if offset != len(image):
                raise StateError(f"state file {path}: firmware blocks of {eui} have a gap at "
                                 f"{len(image)}")
            image += data
        applied: dict[str, list[tuple[bytes, bytes, bytes]]] = {}
        for eui, position, key, digest, response in self._db.execute(
                "SELECT eui64, position, idempotency_key, request_digest, response "
                "FROM applied_requests ORDER BY eui64, position"):
            applied.setdefault(eui, []).append((bytes(key), bytes(digest), bytes(response)))
            self._next_position = max(self._next_position, position + 1)
        devices: dict[str, DeviceRecord] = {}
        for eui, (_, _, state) in rows.items():
            record = DeviceRecord(eui, state, tuple(schedules.get(eui, ())),
                                  bytes(received.get(eui, b"")), tuple(applied.get(eui, ())))
            devices[eui] = record
            self._remember(record)
        return StoredWorld(world, devices)

    # ---- writing -----------------------------------------------------------------------

    def commit(self, world: Mapping[str, Any], records: Iterable[DeviceRecord]) -> bool:
        """Write, in one transaction, the world row and those of ``records`` that changed
        since last written. True if anything was written. Raises :class:`StateError` (nothing
        written, the store's record of the disk unchanged) if the transaction fails."""
        world_json = json.dumps(world, sort_keys=True, separators=(",", ":"))
        changed = [r for r in records if self._changed(r)]
        if not changed and world_json == self._world_json:
            return False
        db = self._db
        try:
            with db:
                if world_json != self._world_json:
                    db.execute("INSERT OR REPLACE INTO meta VALUES ('world', ?)", (world_json,))
                for record in changed:
                    self._write(record)
        except sqlite3.Error as error:
            raise StateError(f"cannot write the state file {self.path}: {error}; the request "
                             "was not applied") from None
        self._world_json = world_json
        for record in changed:
            self._remember(record)
        return True

    def _changed(self, record: DeviceRecord) -> bool:
        eui = record.eui64_hex
        return (self._row_hash.get(eui) != hash(record.state_json)
                or self._schedule_hash.get(eui) != hash(record.schedule)
                or self._received_bytes.get(eui, 0) != len(record.received)
                or self._applied_hash.get(eui, hash(())) != hash(record.applied))

    def _write(self, record: DeviceRecord) -> None:
        db = self._db
        eui = record.eui64_hex
        if self._row_hash.get(eui) != hash(record.state_json):
            cursor = db.execute("UPDATE devices SET state = ? WHERE eui64 = ?",
                                (record.state_json, eui))
            if cursor.rowcount != 1:
                raise sqlite3.IntegrityError(f"no device row {eui}")
        if self._schedule_hash.get(eui) != hash(record.schedule):
            db.execute("DELETE FROM scheduled_requests WHERE eui64 = ?", (eui,))
            db.executemany("INSERT INTO scheduled_requests VALUES (?, ?, ?, ?)",
                           ((eui, command, when, request)
                            for command, when, request in record.schedule))
        stored = self._received_bytes.get(eui, 0)
        if len(record.received) < stored:  # a new transfer (or none): the old one's blocks go
            db.execute("DELETE FROM firmware_blocks WHERE eui64 = ?", (eui,))
            stored = 0
        if len(record.received) > stored:
            db.execute("INSERT INTO firmware_blocks VALUES (?, ?, ?)",
                       (eui, stored, record.received[stored:]))
        if self._applied_hash.get(eui, hash(())) != hash(record.applied):
            held = self._applied_keys.get(eui, set())
            keys = {key for key, _, _ in record.applied}
            db.executemany("DELETE FROM applied_requests WHERE eui64 = ? AND idempotency_key = ?",
                           ((eui, key) for key in held - keys))
            position = self._next_position
            for key, digest, response in record.applied:
                if key not in held:
                    db.execute("INSERT INTO applied_requests VALUES (?, ?, ?, ?, ?)",
                               (eui, position, key, digest, response))
                    position += 1

    def _remember(self, record: DeviceRecord) -> None:
        eui = record.eui64_hex
        self._row_hash[eui] = hash(record.state_json)
        self._schedule_hash[eui] = hash(record.schedule)
        self._received_bytes[eui] = len(record.received)
        if record.applied or eui in self._applied_keys:
            held = self._applied_keys.get(eui, set())
            self._next_position += sum(1 for key, _, _ in record.applied if key not in held)
            self._applied_keys[eui] = {key for key, _, _ in record.applied}
            self._applied_hash[eui] = hash(record.applied)

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    connection.isolation_level = "DEFERRED"  # `with connection:` is one transaction
    mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        connection.close()
        raise sqlite3.OperationalError(f"cannot use write-ahead logging (journal mode {mode})")
    connection.execute("PRAGMA synchronous=FULL")
    return connection


def _remove_database(path: Path) -> None:
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        with contextlib.suppress(OSError):
            os.unlink(name)


def _temporary(path: Path, purpose: str) -> Path:
    """Where a database for ``path`` is built before it takes that name (``create``,
    ``import``)."""
    return path.with_name(f".{path.name}.{purpose}.tmp")


def clean_up_after_a_kill(path: Path) -> None:
    """Deal with what a kill left beside the state file ``path`` (module docstring): a
    database half-built by :meth:`StateStore.create` is removed; an import's database is put
    in place if the kill fell between the import's renames, else removed. Raises
    :class:`StateError` if a leftover cannot be dealt with."""
    path = Path(path)
    imported = _temporary(path, "import")
    try:
        _remove_database(_temporary(path, "create"))
        if (imported.exists() and not path.exists()
                and path.with_name(path.name + IMPORTED_JSON_SUFFIX).exists()):
            os.replace(imported, path)  # the import was complete but for its last rename
        _remove_database(imported)
    except OSError as error:
        raise StateError(f"cannot clean up after an interrupted run beside the state file "
                         f"{path}: {error}") from None


def _difference(saved: Mapping[str, Any], wanted: Mapping[str, Any]) -> str:
    """The first few devices that differ between a saved set and a profile's."""
    parts = []
    for eui in sorted(set(saved) | set(wanted)):
        if saved.get(eui) != wanted.get(eui):
            parts.append(f"{eui}: saved {saved.get(eui)}, profile {wanted.get(eui)}")
            if len(parts) == 3:
                break
    return f"{len(saved)} saved, {len(wanted)} in the profile; " + "; ".join(parts)


def import_json_state(json_path: Path, fingerprint: list[dict[str, Any]],
                      world: Mapping[str, Any], records: Iterable[DeviceRecord]) -> StateStore:
    """Replace the JSON state file at ``json_path`` by a database holding ``records`` (the
    world restored from it): the database is built beside it, the JSON file is kept as
    ``<name>.format1.json``, then the database takes its name. Raises :class:`StateError` (the
    JSON file where it was) if any step fails."""
    json_path = Path(json_path)
    backup = json_path.with_name(json_path.name + IMPORTED_JSON_SUFFIX)
    temporary = _temporary(json_path, "import")
    if backup.exists():
        raise StateError(f"cannot import the JSON state file {json_path}: {backup} exists "
                         "already; move it away first")
    _remove_database(temporary)
    store = StateStore.create(temporary, fingerprint, world, records)
    store.close()
    try:
        os.replace(json_path, backup)
        try:
            os.replace(temporary, json_path)
        except OSError:
            os.replace(backup, json_path)
            raise
    except OSError as error:
        _remove_database(temporary)
        raise StateError(f"cannot import the JSON state file {json_path}: {error}") from None
    store, _ = StateStore.open(json_path, fingerprint)
    return store


# ---- the JSON state file of format 1 (read for the import) ------------------------------------


def is_json_state_file(path: Path) -> bool:
    """True if ``path`` exists and starts like a JSON document (a format-1 state file)."""
    try:
        with Path(path).open("rb") as handle:
            start = handle.read(64).lstrip()
    except OSError:
        return False
    return start.startswith(b"{")


def encode_state(devices: list[dict[str, Any]], world_state: Mapping[str, Any]) -> bytes:
    """A JSON state file of format 1 (sorted keys, so equal states give equal bytes)::

        {"state_format_version": 1,
         "devices": [{"type": "esme", "eui64": "00-DB-...", "server_address": 16}, ...],
         "world": {...}}        # EmulatedWorld.to_state(): the document of emulator.state
    """
    document = {"state_format_version": STATE_FORMAT_VERSION, "devices": devices,
                "world": world_state}
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8") + b"\n"


def load_state(path: Path, devices: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The world state saved in the JSON state file ``path``, or None if there is no such file.

    Raises :class:`StateError` if the file is not a state file of this version or was written
    for other devices (saying which), so a user can delete it or pick the right profile."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise StateError(f"cannot read the state file {path}: {error}") from None
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise StateError(f"state file {path} is not JSON ({error}); delete it to start from "
                         "the profile") from None
    except RecursionError:
        raise StateError(f"state file {path} is nested too deeply to be a secure-emu state "
                         "file; delete it to start from the profile") from None
    if not isinstance(document, dict):
        raise StateError(f"state file {path} is not a secure-emu state file")
    version = document.get("state_format_version")
    if version != STATE_FORMAT_VERSION:
        raise StateError(f"state file {path} has state_format_version {version!r}; this "
                         f"emulator reads version {STATE_FORMAT_VERSION}: delete it to start "
                         "from the profile")
    saved_devices = document.get("devices")
    if saved_devices != devices:
        raise StateError(f"state file {path} was written for other devices "
                         f"({_describe(saved_devices)}) than this profile's "
                         f"({_describe(devices)}): use the profile it was written for, or "
                         "delete the file to start afresh")
    world_state = document.get("world")
    if not isinstance(world_state, dict):
        raise StateError(f"state file {path} has no world state")
    return world_state


def _describe(devices: Any) -> str:
    if not isinstance(devices, list):
        return repr(devices)
    parts = []
    for device in devices:
        if isinstance(device, dict):
            parts.append(f"{device.get('type')} {device.get('eui64')} at "
                         f"{device.get('server_address')}")
        else:
            parts.append(repr(device))
    return "; ".join(parts) or "none"
