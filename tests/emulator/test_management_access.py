"""The management device's access rules (issue 12.8): ADVANCE_DEVICE_TIME needs the management
password when one is configured (profile or `serve --management-password` / environment), is
refused on a real-time server, and the directory stays readable without a password."""

from __future__ import annotations

import os
import subprocess
import sys

from emulator.clock import VirtualClock
from emulator.management import ManagementPolicy
from emulator.profile import Profile, default_profile_text
from emulator.world import EmulatedWorld
from protocol.apdu import MANAGEMENT_SERVER_ADDRESS, Command, Request, Status
from protocol.client import DeviceClient

DAY_SECONDS = 86_400


def _world(policy: ManagementPolicy | None = None,
           profile: Profile | None = None) -> EmulatedWorld:
    profile = profile or Profile.default()
    return EmulatedWorld(profile, VirtualClock(profile.start_device_time_seconds),
                         management=policy)


def _advance(world: EmulatedWorld, password: str | None = None) -> Status:
    fields: dict[str, object] = {"advance_seconds": DAY_SECONDS}
    if password is not None:
        fields["management_password"] = password
    return world.handle_request(MANAGEMENT_SERVER_ADDRESS, Request(
        Command.ADVANCE_DEVICE_TIME, 1, fields)).status


def test_advance_device_time_without_the_right_password_is_refused_and_changes_nothing(
        ) -> None:
    world = _world(ManagementPolicy(password="s3cret"))
    start = world.now_seconds
    assert _advance(world) is Status.NOT_AUTHORISED
    assert _advance(world, "wrong") is Status.NOT_AUTHORISED
    assert _advance(world, "s3cret!") is Status.NOT_AUTHORISED
    assert world.now_seconds == start
    assert _advance(world, "s3cret") is Status.SUCCESS
    assert world.now_seconds == start + DAY_SECONDS


def test_the_directory_and_clock_are_readable_without_the_password() -> None:
    world = _world(ManagementPolicy(password="s3cret"))
    for command in (Command.READ_DEVICE_DIRECTORY, Command.READ_CLOCK,
                    Command.READ_DEVICE_IDENTITY):
        assert world.handle_request(MANAGEMENT_SERVER_ADDRESS, Request(command, 1, {})).ok


def test_time_travel_not_allowed_is_not_supported_even_with_the_password() -> None:
    world = _world(ManagementPolicy(password="s3cret", time_travel_allowed=False))
    start = world.now_seconds
    assert _advance(world, "s3cret") is Status.NOT_SUPPORTED_BY_DEVICE
    assert world.now_seconds == start


def test_the_profile_world_table_sets_the_management_password() -> None:
    text = default_profile_text().replace(
        "[world]\n", '[world]\nmanagement_password = "from-profile"\n', 1)
    profile = Profile.from_toml_bytes(text.encode())
    assert profile.management_password == "from-profile"
    world = _world(profile=profile)
    assert _advance(world) is Status.NOT_AUTHORISED
    assert _advance(world, "from-profile") is Status.SUCCESS


# ---- `secure-emu serve` ------------------------------------------------------------------------

def _serve(*extra: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator.cli", "serve", "--tcp", "127.0.0.1:0", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})})
    assert process.stdout is not None
    address = process.stdout.readline().decode().strip()
    assert address.startswith("127.0.0.1:"), address
    return process, address


def _served_advance_statuses(process: subprocess.Popen[bytes], address: str,
                             passwords: list[str]) -> list[Status]:
    try:
        with DeviceClient.open(tcp=address) as client:
            return [client.request(MANAGEMENT_SERVER_ADDRESS, Request(
                Command.ADVANCE_DEVICE_TIME, 1, {"advance_seconds": 60,
                                                 "management_password": password})).status
                    for password in passwords]
    finally:
        process.terminate()
        process.wait(10)


def test_a_real_time_server_refuses_advance_device_time() -> None:
    process, address = _serve()
    assert _served_advance_statuses(process, address, [""]) == [Status.NOT_SUPPORTED_BY_DEVICE]


def test_serve_takes_the_password_from_the_environment() -> None:
    process, address = _serve("--virtual-time",
                              env={"SECURE_EMU_MANAGEMENT_PASSWORD": "from-env"})
    assert _served_advance_statuses(process, address, ["", "from-env"]) == [
        Status.NOT_AUTHORISED, Status.SUCCESS]


def test_serve_management_password_option_overrides_the_environment() -> None:
    process, address = _serve("--virtual-time", "--management-password", "from-option",
                              env={"SECURE_EMU_MANAGEMENT_PASSWORD": "from-env"})
    assert _served_advance_statuses(process, address, ["from-env", "from-option"]) == [
        Status.NOT_AUTHORISED, Status.SUCCESS]
