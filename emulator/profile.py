"""Device profiles: which devices an emulated world holds, read from TOML.

A profile names every device behind one link: its type, EUI-64, server address, manufacturer,
model and running firmware version, which comms hub's HAN a meter belongs to, whether it starts
on that HAN, how it joins, and (for meters) the table handed to
:meth:`emulator.meter.MeterConfig.from_mapping`. Layout::

    [world]
    start_device_time = "2026-01-05T09:00:00Z"   # ISO-8601 UTC (string or TOML datetime)

    [[devices]]
    type = "comms_hub"                  # comms_hub | esme | gsme
    eui64 = "00-DB-12-34-56-78-90-A0"
    server_address = 2                  # 2..16383, unique; 1 is the management device
    manufacturer = "Secure Meters"
    model = "SECURE-CHF"
    firmware_version = "3.0.0"

    [[devices]]
    type = "esme"
    ...
    hub = "00-DB-12-34-56-78-90-A0"     # meters: the hub whose HAN this meter is on
    on_han = true                       # JOINED at start (default true)
    join_delay_seconds = 30             # seconds after HAN_ADD_DEVICE before it tries to join
    joins_han = true                    # false: never joins, so its join window expires
    [devices.meter]                     # registers, tariff, load, limits (MeterConfig keys)
    payment_mode = "prepayment"

Every error is a :class:`emulator.errors.ProfileError` naming the file, the device and the key.
EUI-64 text is read and written by :mod:`protocol.eui64`, the one text form.

This module only reads profile files; it never writes files and never reads a clock.
"""

from __future__ import annotations

import calendar
import datetime
import importlib.resources
import sys
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.errors import ProfileError
from emulator.hub import HAN_TABLE_MAX_ENTRIES
from emulator.meter_config import MeterConfig
from emulator.metrology.load_model import ReplayedLoad, read_half_hour_csv
from protocol.apdu import MANAGEMENT_SERVER_ADDRESS, DeviceType
from protocol.eui64 import format_eui64, parse_eui64

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "BUILT_IN_PROFILES",
    "DEFAULT_JOIN_DELAY_SECONDS",
    "MAX_SERVER_ADDRESS",
    "DeviceProfile",
    "Profile",
    "built_in_profile_text",
    "default_profile_text",
]

#: Seconds a meter waits after being added to a join list before it tries to join.
DEFAULT_JOIN_DELAY_SECONDS = 30
#: Largest server address: the largest 2-byte HDLC address (14 bits).
MAX_SERVER_ADDRESS = 0x3FFF
#: Largest device time: the wire carries device time as an unsigned 32-bit integer.
MAX_DEVICE_TIME_SECONDS = 0xFFFF_FFFF

_DEVICE_TYPES: dict[str, DeviceType] = {
    "comms_hub": DeviceType.COMMS_HUB,
    "esme": DeviceType.ELECTRICITY_METER,
    "gsme": DeviceType.GAS_METER,
}
_TYPE_NAMES = {device_type: name for name, device_type in _DEVICE_TYPES.items()}
_DEVICE_KEYS = frozenset({
    "type", "eui64", "server_address", "manufacturer", "model", "firmware_version", "hub",
    "on_han", "join_delay_seconds", "joins_han", "meter",
})
_HUB_ONLY_ABSENT = frozenset({"hub", "on_han", "join_delay_seconds", "joins_han", "meter"})


def parse_utc_time_seconds(value: Any) -> int:
    """An ISO-8601 UTC time (``2026-01-05T09:00:00Z``, or a TOML offset datetime) as integer
    seconds since 1970-01-01. Raises :class:`ValueError` saying what is wrong."""
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO-8601 time such as "
                             "2026-01-05T09:00:00Z") from None
    elif isinstance(value, datetime.datetime):
        moment = value
    else:
        raise ValueError(f"{value!r} is not an ISO-8601 time such as 2026-01-05T09:00:00Z")
    if moment.tzinfo is None or moment.utcoffset() != datetime.timedelta(0):
        raise ValueError(f"{value!r} must be UTC (end it with Z)")
    if moment.microsecond:
        raise ValueError(f"{value!r} must be whole seconds")
    seconds = calendar.timegm(moment.utctimetuple())
    if not 0 <= seconds <= MAX_DEVICE_TIME_SECONDS:
        raise ValueError(f"{value!r} is outside the device time range 1970-2106")
    return seconds


# --------------------------------------------------------------------------------------------
# The profile
# --------------------------------------------------------------------------------------------


#: Profiles shipped with the package, by the name ``--profile`` accepts: the default, and one
#: whose device IDs match the DCC's published DUIS request templates.
BUILT_IN_PROFILES = {
    "default": "default_profile.toml",
    "dcc-duis-templates": "dcc_duis_templates_profile.toml",
}


def built_in_profile_text(name: str) -> str:
    """A built-in profile's TOML text, comments included."""
    resource = importlib.resources.files("emulator") / BUILT_IN_PROFILES[name]
    return resource.read_text(encoding="utf-8")


def default_profile_text() -> str:
    """The default profile's TOML text, comments included (``secure-emu profile`` prints it
    as a starting point for a profile of one's own)."""
    return built_in_profile_text("default")


@dataclass(frozen=True)
class DeviceProfile:
    """One device of a profile."""

    device_type: DeviceType
    eui64: bytes
    server_address: int
    manufacturer: str
    model: str
    firmware_version: str
    #: The comms hub whose HAN this meter is on (None for a hub).
    hub_eui64: bytes | None = None
    #: True: the meter is JOINED on its hub's HAN at start.
    on_han: bool = False
    join_delay_seconds: int = DEFAULT_JOIN_DELAY_SECONDS
    joins_han: bool = True
    #: The meter's table as written (for MeterConfig.from_mapping); empty for a hub.
    meter_table: Mapping[str, Any] = field(default_factory=dict)
    #: The meter's configuration, built from ``meter_table`` (None for a hub).
    meter_config: MeterConfig | None = None

    @property
    def is_hub(self) -> bool:
        return self.device_type is DeviceType.COMMS_HUB

    @property
    def type_name(self) -> str:
        """``comms_hub``, ``esme`` or ``gsme``."""
        return _TYPE_NAMES[self.device_type]

    def describe(self) -> str:
        return f"{self.type_name} {format_eui64(self.eui64)} at address {self.server_address}"


@dataclass(frozen=True)
class Profile:
    """Every device behind one link, and the world's start time."""

    devices: tuple[DeviceProfile, ...]
    start_device_time_seconds: int
    #: Where the profile came from (a path, or ``<default profile>``), for messages.
    source: str = "<profile>"

    @classmethod
    def load(cls, path: Path | str) -> Profile:
        """Read a TOML profile, or a built-in one by name (:data:`BUILT_IN_PROFILES`) when no
        such file exists. Raises :class:`ProfileError` naming the file, the device and the key
        for anything wrong (OSError if the file cannot be read)."""
        path = Path(path)
        if not path.exists() and str(path) in BUILT_IN_PROFILES:
            return cls.from_toml_bytes(built_in_profile_text(str(path)).encode("utf-8"),
                                       source=f"<built-in profile {path}>")
        data = path.read_bytes()
        return cls.from_toml_bytes(data, source=str(path), base_dir=path.parent)

    @classmethod
    def default(cls) -> Profile:
        """The built-in profile (``emulator/default_profile.toml``): a comms hub at address 2,
        a prepayment ESME at 16 and a GSME at 17, both on the hub's HAN."""
        return cls.from_toml_bytes(default_profile_text().encode("utf-8"),
                                   source="<default profile>")

    @classmethod
    def from_toml_bytes(cls, data: bytes, *, source: str = "<profile>",
                        base_dir: Path | None = None) -> Profile:
        try:
            table = tomllib.loads(data.decode("utf-8"))
        except UnicodeDecodeError as error:
            raise ProfileError(f"profile {source}: not UTF-8 text: {error}") from None
        except tomllib.TOMLDecodeError as error:
            raise ProfileError(f"profile {source}: not valid TOML: {error}") from None
        return cls.from_mapping(table, source=source, base_dir=base_dir)

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any], *, source: str = "<profile>",
                     base_dir: Path | None = None) -> Profile:
        """A profile from an already-parsed table (the TOML layout in the module docstring).
        A meter's ``load_csv`` is read relative to ``base_dir`` (the profile file's
        directory), once per file for all the meters naming it."""
        where = f"profile {source}"
        unknown = set(table) - {"world", "devices"}
        if unknown:
            raise ProfileError(f"{where}: unknown top-level key(s) {sorted(unknown)}; "
                               "expected [world] and [[devices]]")
        world = table.get("world", {})
        if not isinstance(world, Mapping):
            raise ProfileError(f"{where}: [world] must be a table")
        unknown = set(world) - {"start_device_time"}
        if unknown:
            raise ProfileError(f"{where}: [world]: unknown key(s) {sorted(unknown)}; "
                               "expected start_device_time")
        if "start_device_time" not in world:
            raise ProfileError(f"{where}: [world]: start_device_time is missing "
                               "(e.g. \"2026-01-05T09:00:00Z\")")
        try:
            start_seconds = parse_utc_time_seconds(world["start_device_time"])
        except ValueError as error:
            raise ProfileError(f"{where}: [world]: start_device_time: {error}") from None
        raw_devices = table.get("devices")
        if not isinstance(raw_devices, list) or not raw_devices:
            raise ProfileError(f"{where}: no devices: add at least one [[devices]] table")
        read_load_csv = None if base_dir is None else _load_csv_reader(base_dir)
        devices = tuple(_device(raw, index, where, read_load_csv)
                        for index, raw in enumerate(raw_devices, 1))
        _check_world(devices, where)
        return cls(devices=devices, start_device_time_seconds=start_seconds, source=source)

    # ---- reads -------------------------------------------------------------------------

    def device(self, eui64: bytes) -> DeviceProfile:
        for device in self.devices:
            if device.eui64 == eui64:
                return device
        raise KeyError(format_eui64(eui64))

    @property
    def hubs(self) -> tuple[DeviceProfile, ...]:
        return tuple(d for d in self.devices if d.is_hub)

    @property
    def meters(self) -> tuple[DeviceProfile, ...]:
        return tuple(d for d in self.devices if not d.is_hub)

    def device_fingerprint(self) -> list[dict[str, Any]]:
        """Who is in this world (type, EUI-64, address), JSON-able: a saved state must match."""
        return [{"type": d.type_name, "eui64": format_eui64(d.eui64),
                 "server_address": d.server_address} for d in self.devices]


def _load_csv_reader(base_dir: Path) -> Callable[[str], ReplayedLoad]:
    """Reads a meter's ``load_csv`` relative to ``base_dir``; each file once."""
    models: dict[Path, ReplayedLoad] = {}

    def read(name: str) -> ReplayedLoad:
        path = (base_dir / name).resolve()
        if path not in models:
            models[path] = read_half_hour_csv(path)
        return models[path]

    return read


def _device(raw: Any, index: int, where: str,
            read_load_csv: Callable[[str], ReplayedLoad] | None = None) -> DeviceProfile:
    name = f"device {index}"
    if not isinstance(raw, Mapping):
        raise ProfileError(f"{where}: {name}: must be a [[devices]] table")
    if isinstance(raw.get("eui64"), str):
        name = f"device {index} ({raw['eui64']})"

    def fail(key: str, message: str) -> ProfileError:
        return ProfileError(f"{where}: {name}: {key}: {message}")

    unknown = set(raw) - _DEVICE_KEYS
    if unknown:
        raise ProfileError(f"{where}: {name}: unknown key(s) {sorted(unknown)}; known keys: "
                           f"{', '.join(sorted(_DEVICE_KEYS))}")
    for key in ("type", "eui64", "server_address", "manufacturer", "model",
                "firmware_version"):
        if key not in raw:
            raise fail(key, "is missing")
    type_name = raw["type"]
    if type_name not in _DEVICE_TYPES:
        raise fail("type", f"{type_name!r} is not one of {', '.join(_DEVICE_TYPES)}")
    device_type = _DEVICE_TYPES[type_name]
    try:
        eui64 = parse_eui64(raw["eui64"])
    except ValueError as error:
        raise fail("eui64", str(error)) from None
    server_address = raw["server_address"]
    if isinstance(server_address, bool) or not isinstance(server_address, int) or not (
            MANAGEMENT_SERVER_ADDRESS < server_address <= MAX_SERVER_ADDRESS):
        raise fail("server_address", f"{server_address!r} must be a whole number "
                   f"{MANAGEMENT_SERVER_ADDRESS + 1}..{MAX_SERVER_ADDRESS} "
                   f"({MANAGEMENT_SERVER_ADDRESS} is the management device)")
    texts = {}
    for key in ("manufacturer", "model", "firmware_version"):
        value = raw[key]
        if not isinstance(value, str) or not value or not value.isascii() or len(value) > 255:
            raise fail(key, f"{value!r} must be non-empty ASCII text of at most 255 characters")
        texts[key] = value
    if device_type is DeviceType.COMMS_HUB:
        present = set(raw) & _HUB_ONLY_ABSENT
        if present:
            raise fail(sorted(present)[0], "a comms hub takes no meter keys "
                       f"({', '.join(sorted(_HUB_ONLY_ABSENT))})")
        return DeviceProfile(device_type, eui64, server_address, **texts)
    if "hub" not in raw:
        raise fail("hub", "is missing: name the comms hub whose HAN this meter is on")
    try:
        hub_eui64 = parse_eui64(raw["hub"])
    except ValueError as error:
        raise fail("hub", str(error)) from None
    flags = {}
    for key, default in (("on_han", True), ("joins_han", True)):
        value = raw.get(key, default)
        if not isinstance(value, bool):
            raise fail(key, f"{value!r} must be true or false")
        flags[key] = value
    join_delay_seconds = raw.get("join_delay_seconds", DEFAULT_JOIN_DELAY_SECONDS)
    if isinstance(join_delay_seconds, bool) or not isinstance(join_delay_seconds, int) or (
            join_delay_seconds < 0):
        raise fail("join_delay_seconds", f"{join_delay_seconds!r} must be a whole number >= 0")
    meter_table = raw.get("meter", {})
    if not isinstance(meter_table, Mapping):
        raise fail("meter", "must be a [devices.meter] table")
    try:
        meter_config = MeterConfig.from_mapping(meter_table, eui64=eui64, device_type=device_type,
                                                read_load_csv=read_load_csv)
    except ProfileError as error:
        raise ProfileError(f"{where}: {name}: [devices.meter]: {error}") from None
    except (TypeError, ValueError) as error:
        raise ProfileError(f"{where}: {name}: [devices.meter]: {error}") from None
    return DeviceProfile(device_type, eui64, server_address, **texts, hub_eui64=hub_eui64,
                         on_han=flags["on_han"], join_delay_seconds=join_delay_seconds,
                         joins_han=flags["joins_han"], meter_table=_frozen(meter_table),
                         meter_config=meter_config)


def _frozen(table: Mapping[str, Any]) -> Mapping[str, Any]:
    return types.MappingProxyType(dict(table))


def _check_world(devices: tuple[DeviceProfile, ...], where: str) -> None:
    seen_eui: dict[bytes, DeviceProfile] = {}
    seen_address: dict[int, DeviceProfile] = {}
    for device in devices:
        if device.eui64 in seen_eui:
            raise ProfileError(f"{where}: {device.describe()}: eui64: also used by "
                               f"{seen_eui[device.eui64].describe()}")
        if device.server_address in seen_address:
            raise ProfileError(f"{where}: {device.describe()}: server_address: also used by "
                               f"{seen_address[device.server_address].describe()}")
        seen_eui[device.eui64] = device
        seen_address[device.server_address] = device
    for device in devices:
        if device.hub_eui64 is None:
            continue
        hub = seen_eui.get(device.hub_eui64)
        if hub is None or not hub.is_hub:
            raise ProfileError(f"{where}: {device.describe()}: hub: "
                               f"{format_eui64(device.hub_eui64)} is not a comms_hub of this "
                               "profile")
    for hub in devices:
        on_han = [d for d in devices if d.hub_eui64 == hub.eui64 and d.on_han]
        if len(on_han) > HAN_TABLE_MAX_ENTRIES:
            raise ProfileError(f"{where}: {hub.describe()}: {len(on_han)} meters start on its "
                               f"HAN (on_han = true) but its join list holds "
                               f"{HAN_TABLE_MAX_ENTRIES}")
