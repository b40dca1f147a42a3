"""The world's state file: one JSON document, written atomically.

Layout (``STATE_FORMAT_VERSION`` 1)::

    {"state_format_version": 1,
     "devices": [{"type": "esme", "eui64": "00-DB-...", "server_address": 16}, ...],
     "world": {...}}        # EmulatedWorld.to_state(): the document of emulator.state

``devices`` is the profile's fingerprint: a state written for another set of devices is refused
with a :class:`StateError` rather than half-restored. A write goes to a temporary file in the
same directory, is flushed and fsynced, then replaces the old file with ``os.replace``; a
failure at any point leaves the old file as it was.

This module is the only place the emulator writes files; it never reads a clock and never
interprets the world's state beyond the version and the device list.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from emulator.errors import StateError

__all__ = ["STATE_FORMAT_VERSION", "encode_state", "load_state", "write_atomically"]

STATE_FORMAT_VERSION = 1


def encode_state(devices: list[dict[str, Any]], world_state: Mapping[str, Any]) -> bytes:
    """The state file's bytes (sorted keys, so equal states give equal bytes)."""
    document = {"state_format_version": STATE_FORMAT_VERSION, "devices": devices,
                "world": world_state}
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8") + b"\n"


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` all at once: temp file in the same directory, fsync,
    ``os.replace``. Raises :class:`StateError` (the old file untouched) if anything fails."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    temp_name: str | None = None
    try:
        fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
        temp_name = None
        _fsync_directory(directory)
    except OSError as error:
        raise StateError(f"cannot write the state file {path}: {error}; the previous state "
                         "file (if any) is unchanged") from None
    finally:
        if temp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp_name)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def load_state(path: Path, devices: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The world state saved in ``path``, or None if there is no such file.

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
