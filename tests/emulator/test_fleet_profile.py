"""[[fleet]] tables: many hubs with the same meters, numbered from a first EUI-64 and address;
addresses beyond the 2-byte HDLC reach; the generated profile of N devices."""

from __future__ import annotations

import pytest

from emulator.clock import VirtualClock
from emulator.errors import ProfileError
from emulator.profile import Profile, fleet_profile_text
from emulator.world import EmulatedWorld
from protocol.apdu import Command, DeviceType, Request

FLEET = """
[world]
start_device_time = "2026-01-05T09:00:00Z"

[[fleet]]
hubs = 3
meters = ["esme", "gsme"]
eui64_start = "00-DB-00-00-00-00-FF-FE"
server_address_start = 16380
on_han = false

[fleet.comms_hub]
manufacturer = "Secure Meters"
model = "SECURE-CHF"
firmware_version = "3.0.0"

[fleet.esme]
manufacturer = "Secure Meters"
model = "LIBERTY100"
firmware_version = "1.0.0"

[fleet.esme.meter]
payment_mode = "prepayment"
meter_balance_pence = 777

[fleet.gsme]
manufacturer = "Secure Meters"
model = "SECURE-GSME"
firmware_version = "2.0.0"
"""


def test_a_fleet_numbers_its_devices_hub_by_hub_from_the_first_eui64_and_address() -> None:
    profile = Profile.from_toml_bytes(FLEET.encode())
    assert [(d.device_type, d.eui64.hex(), d.server_address,
             d.hub_eui64.hex() if d.hub_eui64 else None) for d in profile.devices] == [
        (DeviceType.COMMS_HUB, "00db00000000fffe", 16380, None),
        (DeviceType.ELECTRICITY_METER, "00db00000000ffff", 16381, "00db00000000fffe"),
        (DeviceType.GAS_METER, "00db000000010000", 16382, "00db00000000fffe"),
        (DeviceType.COMMS_HUB, "00db000000010001", 16383, None),
        (DeviceType.ELECTRICITY_METER, "00db000000010002", 16384, "00db000000010001"),
        (DeviceType.GAS_METER, "00db000000010003", 16385, "00db000000010001"),
        (DeviceType.COMMS_HUB, "00db000000010004", 16386, None),
        (DeviceType.ELECTRICITY_METER, "00db000000010005", 16387, "00db000000010004"),
        (DeviceType.GAS_METER, "00db000000010006", 16388, "00db000000010004"),
    ]
    esme = profile.devices[4]
    assert esme.meter_config.eui64 == esme.eui64
    assert esme.meter_config.meter_balance_pence == 777
    assert not esme.on_han


def test_a_fleet_meter_beyond_the_two_byte_reach_answers_at_its_address() -> None:
    profile = Profile.from_toml_bytes(FLEET.encode())
    world = EmulatedWorld(profile, VirtualClock(profile.start_device_time_seconds))
    response = world.handle_request(16387, Request(Command.READ_METER_BALANCE, 1))
    assert response.ok and response.body.meter_balance_pence == 777
    identity = world.handle_request(16387, Request(Command.READ_DEVICE_IDENTITY, 2))
    assert identity.body.device_eui64 == bytes.fromhex("00db000000010005")


@pytest.mark.parametrize(("old", "new", "message"), [
    ("server_address_start = 16380", "server_address_start = 268435450", "server_address_start"),
    ("server_address_start = 16380", "server_address_start = 1", "server_address_start"),
    ('meters = ["esme", "gsme"]', 'meters = ["ppmid"]', "meters"),
    ("hubs = 3", "hubs = 0", "hubs"),
    ("hubs = 3\n", "hubs = 3\ncolour = 1\n", "unknown key"),
    ('eui64_start = "00-DB-00-00-00-00-FF-FE"', 'eui64_start = "FF-FF-FF-FF-FF-FF-FF-FE"',
     "eui64_start"),
    ("meter_balance_pence = 777", "meter_balance_pence = true", "fleet.esme"),
    ("[fleet.gsme]\n", "[fleet.other]\n", "unknown key"),
])
def test_a_bad_fleet_table_is_a_profile_error_naming_the_key(old: str, new: str,
                                                             message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        Profile.from_toml_bytes(FLEET.replace(old, new).encode())


def test_a_fleet_and_devices_may_not_share_an_address() -> None:
    device = """
[[devices]]
type = "comms_hub"
eui64 = "00-DB-12-34-56-78-90-A0"
server_address = 16384
manufacturer = "Secure Meters"
model = "SECURE-CHF"
firmware_version = "3.0.0"
"""
    with pytest.raises(ProfileError, match="server_address: also used by"):
        Profile.from_toml_bytes((FLEET + device).encode())


@pytest.mark.parametrize("count", [1, 2, 7])
def test_the_generated_fleet_profile_holds_that_many_devices(count: int) -> None:
    profile = Profile.from_toml_bytes(fleet_profile_text(count).encode())
    assert len(profile.devices) == count
    assert [d.server_address for d in profile.devices] == list(range(2, 2 + count))
    assert sum(d.device_type is DeviceType.COMMS_HUB for d in profile.devices) == (count + 1) // 2
    world = EmulatedWorld(profile, VirtualClock(profile.start_device_time_seconds))
    if count > 1:
        balance = world.handle_request(3, Request(Command.READ_METER_BALANCE, 1))
        assert balance.body.meter_balance_pence == 1250


def test_a_generated_fleet_of_zero_devices_is_refused() -> None:
    with pytest.raises(ProfileError, match="not 0"):
        fleet_profile_text(0)
