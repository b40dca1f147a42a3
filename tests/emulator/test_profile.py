"""TOML profiles: the default profile, EUI-64 text, start time, and errors naming what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.errors import ProfileError
from emulator.hub import HAN_TABLE_MAX_ENTRIES
from emulator.profile import (
    Profile,
    parse_utc_time_seconds,
)
from protocol.apdu import DeviceType, PaymentMode
from protocol.eui64 import format_eui64

MINIMAL = """
[world]
start_device_time = "2026-01-05T09:00:00Z"

[[devices]]
type = "comms_hub"
eui64 = "00-DB-12-34-56-78-90-A0"
server_address = 2
manufacturer = "Secure Meters"
model = "SECURE-CHF"
firmware_version = "3.0.0"

[[devices]]
type = "esme"
eui64 = "00-DB-12-34-56-78-90-A1"
server_address = 16
manufacturer = "Secure Meters"
model = "LIBERTY100"
firmware_version = "1.0.0"
hub = "00-DB-12-34-56-78-90-A0"
{extra}
[devices.meter]
payment_mode = "prepayment"
meter_balance_pence = 100
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bench.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_default_profile_has_hub_esme_and_gsme_at_their_addresses() -> None:
    profile = Profile.default()
    by_address = {d.server_address: d for d in profile.devices}
    assert by_address[2].device_type is DeviceType.COMMS_HUB
    assert by_address[16].device_type is DeviceType.ELECTRICITY_METER
    assert by_address[17].device_type is DeviceType.GAS_METER
    esme = by_address[16].meter_config
    assert esme is not None
    assert esme.payment_mode is PaymentMode.PREPAYMENT
    assert esme.meter_balance_pence > 0
    assert esme.load_profile == ((0, 500),)
    assert by_address[16].hub_eui64 == by_address[2].eui64 and by_address[16].on_han
    assert profile.start_device_time_seconds == 1_767_603_600  # 2026-01-05T09:00:00Z


def test_default_profile_models_match_the_sample_firmware_images() -> None:
    models = {d.server_address: (d.model, d.firmware_version) for d in Profile.default().devices}
    assert models == {2: ("SECURE-CHF", "3.0.0"), 16: ("LIBERTY100", "1.0.0"),
                      17: ("SECURE-GSME", "2.0.0")}


@pytest.mark.parametrize("text", ["00-DB-12-34-56-78-90-A1", "00:db:12:34:56:78:90:a1",
                                  "00DB1234567890A1"])
def test_eui64_text_forms_in_a_profile_parse_to_the_same_bytes(text: str) -> None:
    toml = MINIMAL.format(extra="").replace('eui64 = "00-DB-12-34-56-78-90-A1"',
                                            f'eui64 = "{text}"')
    profile = Profile.from_toml_bytes(toml.encode())
    assert profile.devices[1].eui64 == bytes.fromhex("00DB1234567890A1")


@pytest.mark.parametrize("text", ["00-DB-12-34-56-78-90", "00-DB-12-34-56-78-90-A0-01",
                                  "00-DB:12-34-56-78-90-A0", "GG-DB-12-34-56-78-90-A0", ""])
def test_bad_eui64_text_in_a_profile_is_a_profile_error(text: str) -> None:
    toml = MINIMAL.format(extra="").replace('eui64 = "00-DB-12-34-56-78-90-A1"',
                                            f'eui64 = "{text}"')
    with pytest.raises(ProfileError, match=r"eui64: .*EUI-64"):
        Profile.from_toml_bytes(toml.encode())
    toml = MINIMAL.format(extra="").replace('hub = "00-DB-12-34-56-78-90-A0"', f'hub = "{text}"')
    with pytest.raises(ProfileError, match=r"hub: .*EUI-64"):
        Profile.from_toml_bytes(toml.encode())


def test_a_device_is_described_with_its_eui64_in_dashed_upper_case() -> None:
    profile = Profile.from_toml_bytes(MINIMAL.format(extra="").encode())
    assert profile.devices[0].describe() == "comms_hub 00-DB-12-34-56-78-90-A0 at address 2"


def test_start_time_is_whole_utc_seconds() -> None:
    assert parse_utc_time_seconds("1970-01-01T00:01:00Z") == 60
    assert parse_utc_time_seconds("2026-01-05T09:00:00+00:00") == 1_767_603_600
    for bad in ("2026-01-05T09:00:00+01:00", "2026-01-05T09:00:00", "2026-01-05T09:00:00.5Z",
                "yesterday", "1969-12-31T23:59:59Z"):
        with pytest.raises(ValueError):
            parse_utc_time_seconds(bad)


def test_load_reads_a_file_and_defaults_join_behaviour(tmp_path: Path) -> None:
    profile = Profile.load(write(tmp_path, MINIMAL.format(extra="")))
    esme = profile.device(bytes.fromhex("00DB1234567890A1"))
    assert esme.on_han and esme.joins_han and esme.join_delay_seconds == 30
    assert esme.meter_config is not None and esme.meter_config.meter_balance_pence == 100


def test_toml_datetime_is_accepted_for_the_start_time(tmp_path: Path) -> None:
    text = MINIMAL.format(extra="").replace('"2026-01-05T09:00:00Z"', "2026-01-05T09:00:00Z")
    assert Profile.load(write(tmp_path, text)).start_device_time_seconds == 1_767_603_600


@pytest.mark.parametrize(("extra", "names"), [
    ("colour = 'blue'", ["device 2 (00-DB-12-34-56-78-90-A1)", "colour"]),
    ("join_delay_seconds = -1", ["device 2", "join_delay_seconds"]),
    ("joins_han = 'no'", ["device 2", "joins_han"]),
])
def test_profile_errors_name_the_file_the_device_and_the_key(
        tmp_path: Path, extra: str, names: list[str]) -> None:
    path = write(tmp_path, MINIMAL.format(extra=extra))
    with pytest.raises(ProfileError) as caught:
        Profile.load(path)
    message = str(caught.value)
    assert str(path) in message
    for name in names:
        assert name in message


@pytest.mark.parametrize(("old", "new", "key"), [
    ("server_address = 16", "server_address = 2", "server_address"),
    ("server_address = 16", "server_address = 1", "server_address"),
    ('type = "esme"', 'type = "water"', "type"),
    ('eui64 = "00-DB-12-34-56-78-90-A1"', 'eui64 = "00-DB-12-34-56-78-90-A0"', "eui64"),
    ('hub = "00-DB-12-34-56-78-90-A0"', 'hub = "00-DB-12-34-56-78-90-FF"', "hub"),
    ('model = "LIBERTY100"', "", "model"),
    ("meter_balance_pence = 100", "meter_balance_pence = 1.5", "meter_balance_pence"),
    ("meter_balance_pence = 100", "balance = 100", "balance"),
    ('start_device_time = "2026-01-05T09:00:00Z"', 'start_device_time = "soon"',
     "start_device_time"),
])
def test_bad_values_are_profile_errors_naming_the_key(
        tmp_path: Path, old: str, new: str, key: str) -> None:
    text = MINIMAL.format(extra="").replace(old, new, 1)
    with pytest.raises(ProfileError, match=key):
        Profile.load(write(tmp_path, text))


def test_invalid_toml_is_a_profile_error_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[world\n")
    with pytest.raises(ProfileError, match="not valid TOML") as caught:
        Profile.load(path)
    assert str(path) in str(caught.value)


def test_hub_with_meter_keys_is_a_profile_error(tmp_path: Path) -> None:
    text = MINIMAL.format(extra="").replace('firmware_version = "3.0.0"',
                                            'firmware_version = "3.0.0"\njoins_han = true', 1)
    with pytest.raises(ProfileError, match="joins_han"):
        Profile.load(write(tmp_path, text))


def test_profile_without_devices_is_a_profile_error() -> None:
    with pytest.raises(ProfileError, match="no devices"):
        Profile.from_toml_bytes(b'[world]\nstart_device_time = "2026-01-05T09:00:00Z"\n')


def test_more_meters_on_a_han_than_its_join_list_holds_is_a_profile_error() -> None:
    head, meter = MINIMAL.format(extra="").split("[[devices]]\ntype = \"esme\"")
    meters = []
    for index in range(HAN_TABLE_MAX_ENTRIES + 1):
        meters.append(("[[devices]]\ntype = \"esme\"" + meter)
                      .replace("90-A1", f"91-{index:02X}")
                      .replace("server_address = 16", f"server_address = {16 + index}"))
    with pytest.raises(ProfileError, match="join list holds"):
        Profile.from_toml_bytes((head + "".join(meters)).encode())


def test_built_in_dcc_duis_templates_profile_loads_by_name_with_the_templates_device_ids(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no file of that name here: the built-in one is taken
    profile = Profile.load("dcc-duis-templates")
    kinds = {format_eui64(device.eui64): device.device_type for device in profile.devices}
    assert kinds == {"00-DB-12-34-56-78-90-A0": DeviceType.ELECTRICITY_METER,
                     "00-DB-12-34-56-78-90-A1": DeviceType.GAS_METER,
                     "00-DB-12-34-56-78-90-A2": DeviceType.COMMS_HUB,
                     "00-DB-12-34-56-78-90-A3": DeviceType.GAS_PROXY_FUNCTION,
                     "00-DB-12-34-56-78-90-A4": DeviceType.PPMID}


def test_a_file_named_like_a_built_in_profile_is_read_as_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "default").write_text("not = [valid")
    with pytest.raises(ProfileError, match="default"):
        Profile.load("default")
