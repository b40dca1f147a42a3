"""Device profiles: which devices an emulated world holds, read from TOML.

A profile names every device behind one link: its type, EUI-64, server address, manufacturer,
model and running firmware version, which comms hub's HAN a meter belongs to, whether it starts
on that HAN, how it joins, and (for meters) the table handed to
:meth:`emulator.meter.MeterConfig.from_mapping`. Layout::

    [world]
    start_device_time = "2026-01-05T09:00:00Z"   # ISO-8601 UTC (string or TOML datetime)
    management_password = "..."         # optional: ADVANCE_DEVICE_TIME needs it (ASCII)

    [[devices]]
    type = "comms_hub"                  # comms_hub | esme | gsme | gpf | ppmid
    eui64 = "00-DB-12-34-56-78-90-A0"
    server_address = 2                  # 2..268435455 (0x0FFFFFFF), unique; 1 is management
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

    [[devices]]
    type = "gpf"                        # the gas proxy function of hub ...; its gas reads are
    hub = "00-DB-12-34-56-78-90-A0"     # answered from the one GSME on that hub's HAN
    ...                                 # (no HAN keys, no meter table)

    [[devices]]
    type = "ppmid"                      # a type 2 device on the hub's HAN: firmware and HAN
    hub = "00-DB-12-34-56-78-90-A0"     # membership only (HAN keys as a meter, no meter table)

A fleet (any number of ``[[fleet]]`` tables, besides or instead of ``[[devices]]``) is many
hubs with the same meters on each, numbered from a first EUI-64 and a first server address::

    [[fleet]]
    hubs = 50000                          # how many comms hubs
    meters = ["esme"]                     # the meters on each hub, in order (esme | gsme)
    eui64_start = "00-DB-F0-00-00-00-00-00"   # device n of the fleet: eui64_start + n
    server_address_start = 2              # device n of the fleet: server_address_start + n
    on_han = true                         # meter keys as in [[devices]] (optional)
    [fleet.comms_hub]                     # copied to every hub
    manufacturer = "Secure Meters"
    model = "SECURE-CHF"
    firmware_version = "3.0.0"
    [fleet.esme]                          # copied to every ESME (and [fleet.gsme] likewise)
    manufacturer = "Secure Meters"
    model = "LIBERTY100"
    firmware_version = "1.0.0"
    [fleet.esme.meter]                    # MeterConfig keys, copied to every ESME
    payment_mode = "prepayment"

Devices are numbered hub by hub: hub, its meters, next hub... Server addresses above 16383
(the 2-byte HDLC reach) are carried in the 4-byte flat form, up to 0x0FFFFFFF. Loading is
linear in the number of devices (each meter table is checked once per fleet).
:func:`fleet_profile_text` writes such a profile for a number of devices.

Every error is a :class:`emulator.errors.ProfileError` naming the file, the device and the key.
EUI-64 text is read and written by :mod:`protocol.eui64`, the one text form.

This module only reads profile files; it never writes files and never reads a clock.
"""

from __future__ import annotations

import calendar
import copy
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
from protocol.apdu import MANAGEMENT_SERVER_ADDRESS, MAX_MANAGEMENT_PASSWORD_BYTES, DeviceType
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
    "fleet_profile_text",
]

#: Seconds a meter waits after being added to a join list before it tries to join.
DEFAULT_JOIN_DELAY_SECONDS = 30
#: Largest server address: the largest 4-byte (flat) HDLC address (28 bits); above 0x3FFF the
#: link carries it in the 4-byte form.
MAX_SERVER_ADDRESS = 0x0FFF_FFFF
#: Largest device time: the wire carries device time as an unsigned 32-bit integer.
MAX_DEVICE_TIME_SECONDS = 0xFFFF_FFFF

_DEVICE_TYPES: dict[str, DeviceType] = {
    "comms_hub": DeviceType.COMMS_HUB,
    "esme": DeviceType.ELECTRICITY_METER,
    "gsme": DeviceType.GAS_METER,
    "gpf": DeviceType.GAS_PROXY_FUNCTION,
    "ppmid": DeviceType.PPMID,
}
#: Device types with no meter table: the GPF (part of its hub, never on the HAN join list:
#: no HAN keys either) and the PPMID (on the HAN, moves no money).
_NO_METER_TYPES = frozenset({DeviceType.GAS_PROXY_FUNCTION, DeviceType.PPMID})
_GPF_ABSENT = frozenset({"on_han", "join_delay_seconds", "joins_han", "meter"})
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

    def gas_meter_of_gpf(self, profile: Profile) -> DeviceProfile | None:
        """For a GPF: the gas meter on its hub's HAN, whose data it answers with (the profile
        checks there is exactly one); None for any other device."""
        if self.device_type is not DeviceType.GAS_PROXY_FUNCTION:
            return None
        return next(d for d in profile.devices if d.hub_eui64 == self.hub_eui64
                    and d.device_type is DeviceType.GAS_METER)

    def describe(self) -> str:
        return f"{self.type_name} {format_eui64(self.eui64)} at address {self.server_address}"


def check_management_password(password: object) -> str:
    """A management password as the wire carries it (a ``text``): 1-255 printable ASCII
    characters. Raises ValueError saying what is wrong."""
    if not isinstance(password, str):
        raise ValueError("must be a string")
    if not 1 <= len(password) <= MAX_MANAGEMENT_PASSWORD_BYTES:
        raise ValueError(f"must be 1-{MAX_MANAGEMENT_PASSWORD_BYTES} characters long")
    if not (password.isascii() and password.isprintable()):
        raise ValueError("must be printable ASCII (it travels as an ASCII text field)")
    return password


@dataclass(frozen=True)
class Profile:
    """Every device behind one link, and the world's start time."""

    devices: tuple[DeviceProfile, ...]
    start_device_time_seconds: int
    #: Where the profile came from (a path, or ``<default profile>``), for messages.
    source: str = "<profile>"
    #: ``[world] management_password``: what ADVANCE_DEVICE_TIME must carry (None: no password).
    management_password: str | None = None

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
        unknown = set(table) - {"world", "devices", "fleet"}
        if unknown:
            raise ProfileError(f"{where}: unknown top-level key(s) {sorted(unknown)}; "
                               "expected [world], [[devices]] and [[fleet]]")
        world = table.get("world", {})
        if not isinstance(world, Mapping):
            raise ProfileError(f"{where}: [world] must be a table")
        unknown = set(world) - {"start_device_time", "management_password"}
        if unknown:
            raise ProfileError(f"{where}: [world]: unknown key(s) {sorted(unknown)}; "
                               "expected start_device_time, management_password")
        password = world.get("management_password")
        if password is not None:
            try:
                password = check_management_password(password)
            except ValueError as error:
                raise ProfileError(f"{where}: [world]: management_password: {error}") from None
        if "start_device_time" not in world:
            raise ProfileError(f"{where}: [world]: start_device_time is missing "
                               "(e.g. \"2026-01-05T09:00:00Z\")")
        try:
            start_seconds = parse_utc_time_seconds(world["start_device_time"])
        except ValueError as error:
            raise ProfileError(f"{where}: [world]: start_device_time: {error}") from None
        raw_devices = table.get("devices", [])
        raw_fleets = table.get("fleet", [])
        if not isinstance(raw_devices, list) or not isinstance(raw_fleets, list) or not (
                raw_devices or raw_fleets):
            raise ProfileError(f"{where}: no devices: add at least one [[devices]] or "
                               "[[fleet]] table")
        read_load_csv = None if base_dir is None else _load_csv_reader(base_dir)
        devices = tuple(_device(raw, index, where, read_load_csv)
                        for index, raw in enumerate(raw_devices, 1))
        for index, raw in enumerate(raw_fleets, 1):
            devices += _fleet(raw, index, where)
        _check_world(devices, where)
        return cls(devices=devices, start_device_time_seconds=start_seconds, source=source,
                   management_password=password)

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


_Fail = Callable[[str, str], ProfileError]


def _device(raw: Any, index: int, where: str,
            read_load_csv: Callable[[str], ReplayedLoad] | None = None) -> DeviceProfile:
    name = f"device {index}"
    if not isinstance(raw, Mapping):
        raise ProfileError(f"{where}: {name}: must be a [[devices]] table")
    if isinstance(raw.get("eui64"), str):
        name = f"device {index} ({raw['eui64']})"

    def fail(key: str, message: str) -> ProfileError:
        return ProfileError(f"{where}: {name}: {key}: {message}")

    device_type, identity = _device_identity(raw, where, name, fail)
    _check_keys_for_type(raw, device_type, fail)
    if device_type is DeviceType.COMMS_HUB:
        return DeviceProfile(device_type, **identity)
    han = _han_membership(raw, device_type, fail)
    meter_table = raw.get("meter", {})
    if not isinstance(meter_table, Mapping):
        raise fail("meter", "must be a [devices.meter] table")
    if device_type in _NO_METER_TYPES:
        return DeviceProfile(device_type, **identity, **han)
    try:
        meter_config = MeterConfig.from_mapping(meter_table, eui64=identity["eui64"],
                                                device_type=device_type,
                                                read_load_csv=read_load_csv)
    except ProfileError as error:
        raise ProfileError(f"{where}: {name}: [devices.meter]: {error}") from None
    except (TypeError, ValueError) as error:
        raise ProfileError(f"{where}: {name}: [devices.meter]: {error}") from None
    return DeviceProfile(device_type, **identity, **han, meter_table=_frozen(meter_table),
                         meter_config=meter_config)


def _device_identity(raw: Mapping[str, Any], where: str, name: str,
                     fail: _Fail) -> tuple[DeviceType, dict[str, Any]]:
    """A ``[[devices]]`` table's keys checked, and its type and identity: ``eui64``,
    ``server_address``, ``manufacturer``, ``model``, ``firmware_version``."""
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
    identity: dict[str, Any] = {"eui64": eui64, "server_address": server_address}
    for key in ("manufacturer", "model", "firmware_version"):
        value = raw[key]
        if not isinstance(value, str) or not value or not value.isascii() or len(value) > 255:
            raise fail(key, f"{value!r} must be non-empty ASCII text of at most 255 characters")
        identity[key] = value
    return _DEVICE_TYPES[type_name], identity


def _check_keys_for_type(raw: Mapping[str, Any], device_type: DeviceType, fail: _Fail) -> None:
    """No key its type does not take: a GPF no HAN keys nor meter table, a PPMID no meter
    table, a comms hub no meter keys."""
    if device_type in _NO_METER_TYPES:
        absent = _GPF_ABSENT if device_type is DeviceType.GAS_PROXY_FUNCTION else {"meter"}
        present = set(raw) & absent
        if present:
            raise fail(sorted(present)[0], f"a {raw['type']} takes none of "
                       f"{', '.join(sorted(absent))}")
    if device_type is DeviceType.COMMS_HUB:
        present = set(raw) & _HUB_ONLY_ABSENT
        if present:
            raise fail(sorted(present)[0], "a comms hub takes no meter keys "
                       f"({', '.join(sorted(_HUB_ONLY_ABSENT))})")


def _han_membership(raw: Mapping[str, Any], device_type: DeviceType,
                    fail: _Fail) -> dict[str, Any]:
    """A meter's (or GPF's, PPMID's) HAN keys: ``hub``, ``on_han``, ``joins_han``,
    ``join_delay_seconds`` (as ``hub_eui64`` ...)."""
    if "hub" not in raw:
        raise fail("hub", "is missing: name the comms hub whose HAN this meter is on")
    try:
        hub_eui64 = parse_eui64(raw["hub"])
    except ValueError as error:
        raise fail("hub", str(error)) from None
    han: dict[str, Any] = {"hub_eui64": hub_eui64}
    for key, default in (("on_han", device_type is not DeviceType.GAS_PROXY_FUNCTION),
                         ("joins_han", device_type is not DeviceType.GAS_PROXY_FUNCTION)):
        value = raw.get(key, default)
        if not isinstance(value, bool):
            raise fail(key, f"{value!r} must be true or false")
        han[key] = value
    join_delay_seconds = raw.get("join_delay_seconds", DEFAULT_JOIN_DELAY_SECONDS)
    if isinstance(join_delay_seconds, bool) or not isinstance(join_delay_seconds, int) or (
            join_delay_seconds < 0):
        raise fail("join_delay_seconds", f"{join_delay_seconds!r} must be a whole number >= 0")
    han["join_delay_seconds"] = join_delay_seconds
    return han


_FLEET_KEYS = frozenset({"hubs", "meters", "eui64_start", "server_address_start", "on_han",
                         "join_delay_seconds", "joins_han", "comms_hub", "esme", "gsme"})
_FLEET_DEVICE_KEYS = ("manufacturer", "model", "firmware_version")


def _fleet(raw: Any, index: int, where: str) -> tuple[DeviceProfile, ...]:
    """The devices of one ``[[fleet]]`` table (see the module docstring)."""
    name = f"{where}: fleet {index}"
    if not isinstance(raw, Mapping):
        raise ProfileError(f"{name}: must be a [[fleet]] table")
    unknown = set(raw) - _FLEET_KEYS
    if unknown:
        raise ProfileError(f"{name}: unknown key(s) {sorted(unknown)}; known keys: "
                           f"{', '.join(sorted(_FLEET_KEYS))}")
    for key in ("hubs", "meters", "eui64_start", "server_address_start", "comms_hub"):
        if key not in raw:
            raise ProfileError(f"{name}: {key}: is missing")
    hubs, meter_types, first_eui64, first_address = _fleet_numbering(raw, name)
    templates = _fleet_templates(raw, name, meter_types, first_address)
    devices: list[DeviceProfile] = []
    number = 0
    for _ in range(hubs):
        hub_eui64 = (first_eui64 + number).to_bytes(8, "big")
        devices.append(_fleet_device(templates["comms_hub"], hub_eui64, first_address + number,
                                     None))
        number += 1
        for type_name in meter_types:
            eui64 = (first_eui64 + number).to_bytes(8, "big")
            devices.append(_fleet_device(templates[type_name], eui64, first_address + number,
                                         hub_eui64))
            number += 1
    return tuple(devices)


def _fleet_numbering(raw: Mapping[str, Any], name: str) -> tuple[int, list[str], int, int]:
    """A fleet's size and numbering, checked: hubs, the meter types on each hub, the first
    EUI-64 (as an int) and the first server address."""
    hubs = raw["hubs"]
    if isinstance(hubs, bool) or not isinstance(hubs, int) or hubs < 1:
        raise ProfileError(f"{name}: hubs: {hubs!r} must be a whole number >= 1")
    meter_types = raw["meters"]
    if not isinstance(meter_types, list) or any(m not in ("esme", "gsme") for m in meter_types):
        raise ProfileError(f"{name}: meters: {meter_types!r} must be a list of \"esme\" and "
                           "\"gsme\"")
    try:
        first_eui64 = int.from_bytes(parse_eui64(raw["eui64_start"]), "big")
    except ValueError as error:
        raise ProfileError(f"{name}: eui64_start: {error}") from None
    count = hubs * (1 + len(meter_types))
    first_address = raw["server_address_start"]
    if isinstance(first_address, bool) or not isinstance(first_address, int) or not (
            first_address > MANAGEMENT_SERVER_ADDRESS
            and first_address + count - 1 <= MAX_SERVER_ADDRESS):
        raise ProfileError(f"{name}: server_address_start: {first_address!r} must be a whole "
                           f"number from {MANAGEMENT_SERVER_ADDRESS + 1} such that its "
                           f"{count} devices end at or below {MAX_SERVER_ADDRESS}")
    if first_eui64 + count - 1 > 0xFFFF_FFFF_FFFF_FFFF:
        raise ProfileError(f"{name}: eui64_start: its {count} devices run past FF-FF-...-FF")
    return hubs, meter_types, first_eui64, first_address


def _fleet_templates(raw: Mapping[str, Any], name: str, meter_types: list[str],
                     first_address: int) -> dict[str, DeviceProfile]:
    """One checked device per type of the fleet (``[fleet.comms_hub]``, ``[fleet.esme]``...),
    each table read once however many devices copy it."""
    meter_keys = {key: raw[key] for key in ("on_han", "join_delay_seconds", "joins_han")
                  if key in raw}
    templates: dict[str, DeviceProfile] = {}
    for type_name in ("comms_hub", *dict.fromkeys(meter_types)):
        table = raw.get(type_name)
        if not isinstance(table, Mapping):
            raise ProfileError(f"{name}: [fleet.{type_name}] is missing: give its "
                               f"{', '.join(_FLEET_DEVICE_KEYS)}")
        template = {"type": type_name, "eui64": raw["eui64_start"],
                    "server_address": first_address, **table}
        if type_name != "comms_hub":
            template.update(meter_keys, hub=raw["eui64_start"])
        templates[type_name] = _device(template, 1, f"{name}: [fleet.{type_name}]")
    return templates


def _fleet_device(template: DeviceProfile, eui64: bytes, server_address: int,
                  hub_eui64: bytes | None) -> DeviceProfile:
    """A copy of a checked fleet ``template`` with its own EUI-64, address and hub. A meter's
    MeterConfig is copied rather than checked again (only the EUI-64, itself checked by the
    fleet's range, differs): checking every copy would make a 100,000-device fleet load slow."""
    config = template.meter_config
    if config is not None:
        config = copy.copy(config)
        object.__setattr__(config, "eui64", eui64)
    return DeviceProfile(template.device_type, eui64, server_address, template.manufacturer,
                         template.model, template.firmware_version, hub_eui64,
                         template.on_han, template.join_delay_seconds, template.joins_han,
                         template.meter_table, config)


def fleet_profile_text(device_count: int, *,
                       start_device_time: str = "2026-01-05T09:00:00Z") -> str:
    """A profile (TOML text) of ``device_count`` devices: hubs each with one prepayment ESME
    (the default profile's settings), and a last hub alone when the count is odd. Addresses
    start at 2 and EUI-64s at 00-DB-F0-00-00-00-00-00; above 16383 the link uses the 4-byte
    address form. ``secure-emu profile --fleet N`` prints it."""
    if not 1 <= device_count <= MAX_SERVER_ADDRESS - MANAGEMENT_SERVER_ADDRESS:
        raise ProfileError(f"a fleet holds 1..{MAX_SERVER_ADDRESS - MANAGEMENT_SERVER_ADDRESS} "
                           f"devices, not {device_count}")
    pairs, alone = divmod(device_count, 2)
    hub = ('manufacturer = "Secure Meters"\nmodel = "SECURE-CHF"\n'
           'firmware_version = "3.0.0"\n')
    esme = ('manufacturer = "Secure Meters"\nmodel = "LIBERTY100"\n'
            'firmware_version = "1.0.0"\n')
    meter = ('payment_mode = "prepayment"\nmeter_balance_pence = 1250\n'
             'supply_state = "enabled"\nemergency_credit_limit_pence = 500\n'
             'emergency_credit_threshold_pence = 200\nlow_credit_threshold_pence = 300\n'
             'max_meter_balance_pence = 25000\nmax_credit_threshold_pence = 10000\n'
             'unit_rate_millipence_per_kwh = 24500\n'
             'standing_charge_millipence_per_day = 53000\nload_w = 500\n')
    parts = [f"# A fleet of {device_count} devices (secure-emu profile --fleet {device_count}):"
             " hubs each with one\n# prepayment ESME; keys in emulator/profile.py.\n\n"
             f'[world]\nstart_device_time = "{start_device_time}"\n']
    if pairs:
        parts.append(f'\n[[fleet]]\nhubs = {pairs}\nmeters = ["esme"]\n'
                     'eui64_start = "00-DB-F0-00-00-00-00-00"\nserver_address_start = 2\n'
                     f"\n[fleet.comms_hub]\n{hub}\n[fleet.esme]\n{esme}"
                     f"\n[fleet.esme.meter]\n{meter}")
    if alone:
        number = 2 * pairs
        eui64 = format_eui64((0x00DB_F000_0000_0000 + number).to_bytes(8, "big"))
        parts.append(f'\n[[fleet]]\nhubs = 1\nmeters = []\neui64_start = "{eui64}"\n'
                     f"server_address_start = {2 + number}\n\n[fleet.comms_hub]\n{hub}")
    return "".join(parts)


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
    gas_meters_by_hub: dict[bytes, int] = {}
    for device in devices:
        if device.device_type is DeviceType.GAS_METER and device.hub_eui64 is not None:
            gas_meters_by_hub[device.hub_eui64] = gas_meters_by_hub.get(device.hub_eui64, 0) + 1
    for gpf in devices:
        if gpf.device_type is DeviceType.GAS_PROXY_FUNCTION:
            gas_meters = gas_meters_by_hub.get(gpf.hub_eui64, 0) if gpf.hub_eui64 else 0
            if gas_meters != 1:
                raise ProfileError(f"{where}: {gpf.describe()}: hub: a GPF answers for the one "
                                   f"gas meter of its hub's HAN; that HAN has {gas_meters}")
    on_han: dict[bytes, int] = {}
    for device in devices:
        if device.hub_eui64 is not None and device.on_han:
            on_han[device.hub_eui64] = on_han.get(device.hub_eui64, 0) + 1
    for hub_eui64, count in on_han.items():
        if count > HAN_TABLE_MAX_ENTRIES:
            raise ProfileError(f"{where}: {seen_eui[hub_eui64].describe()}: {count} meters "
                               f"start on its HAN (on_han = true) but its join list holds "
                               f"{HAN_TABLE_MAX_ENTRIES}")
