"""The adapter against the real emulator.world.EmulatedWorld on the default profile (hub A0,
prepayment ESME A1, GSME A2), on a VirtualClock: no wall clock, no sleeping."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from xml.etree.ElementTree import fromstring

import pytest

from emulator.clock import VirtualClock
from emulator.profile import Profile
from emulator.world import EmulatedWorld
from protocol.apdu import Command, Request
from protocol.s1sp.adapter import S1spAdapter
from protocol.s1sp.channel import InProcessChannel
from protocol.s1sp.duis import DUIS_NAMESPACE
from tests.protocol.s1sp.conftest import FIXTURES, fixture_xml

NS = {"sr": DUIS_NAMESPACE}
START_SECONDS = 1767603600  # 2026-01-05T09:00:00Z, the default profile's start
HUB = bytes.fromhex("00DB1234567890A0")
ESME = bytes.fromhex("00DB1234567890A1")
GSME = bytes.fromhex("00DB1234567890A2")


class Rig:
    def __init__(self) -> None:
        self.clock = VirtualClock(START_SECONDS)
        self.world = EmulatedWorld(Profile.default(), self.clock)
        self.channel = InProcessChannel(self.world.handle_apdu)
        self.adapter = S1spAdapter(self.channel, response_clock=self._now)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.device_time_seconds(), tz=timezone.utc)

    def submit(self, xml: bytes | str) -> str:
        return self.adapter.submit(xml)

    def address(self, eui64: bytes) -> int:
        return self.world.device_by_eui64(eui64).server_address


@pytest.fixture
def rig() -> Rig:
    return Rig()


def _code(xml: str) -> str | None:
    return fromstring(xml).findtext("sr:Header/sr:ResponseCode", namespaces=NS)


def _result(xml: str, name: str) -> str | None:
    return fromstring(xml).findtext(f"sr:Body/sr:ResponseMessage/*/sr:{name}", namespaces=NS)


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.xml")), ids=lambda path: path.stem)
def test_every_fixture_is_answered_by_the_emulated_world(rig: Rig, path: Path) -> None:
    xml = rig.submit(path.read_bytes())
    assert _code(xml) in {"I0", "E-S1SR"}
    assert fromstring(xml).findtext("sr:Header/sr:ResponseID", namespaces=NS)


def test_18_27_and_18_4_on_the_default_esme(rig: Rig) -> None:
    xml = rig.submit(fixture_xml("1.6_prepayment"))
    assert _code(xml) == "I0"
    assert _result(xml, "DisablementThreshold") == "556000"
    assert rig.world.meter(ESME).registers.disablement_threshold_pence == 556


def test_18_16_adjustment_on_the_default_esme(rig: Rig) -> None:
    before = rig.world.meter(ESME).registers.meter_balance_pence
    xml = rig.submit(fixture_xml("1.5_adjust_meter_balance"))  # 1234567 -> 1234 p
    after = rig.world.meter(ESME).registers.meter_balance_pence
    assert after - before == 1234
    assert _result(xml, "AdjustMeterBalance") == "1234000"
    assert _result(xml, "MeterBalance") == str(after * 1000)


def test_18_62_join_window_of_90_s_closes_two_minutes_of_device_time_later(rig: Rig) -> None:
    xml = rig.submit(fixture_xml("8.11_add_han_device"))
    assert _code(xml) == "I0"
    assert _result(xml, "JoinTimePeriod") == "120"
    entries = rig.channel.request(rig.address(HUB), Request(Command.READ_HAN_ENTRIES, 0))
    added = [e for e in entries.fields["entries"]
             if e["device_eui64"] == bytes.fromhex("00DB1234567890A3")]
    assert added[0]["join_window_closes_at_seconds"] == START_SECONDS + 120


def test_18_63_busy_han_refuses_the_update_and_the_running_firmware_is_untouched(
        rig: Rig) -> None:
    begin = rig.channel.request(rig.address(GSME), Request(
        Command.FIRMWARE_BEGIN, 0, {"image_size_bytes": 100}))
    assert begin.ok  # a transfer to the gas meter now holds the hub's HAN
    text = fixture_xml("11.1_update_firmware").decode().replace(
        "00-DB-12-34-56-78-90-A1 00-DB-12-34-56-78-90-A2", "00-DB-12-34-56-78-90-A1")
    xml = rig.submit(text)
    assert _code(xml) == "E-S1SR"
    assert "FIRMWARE_UPDATE_IN_PROGRESS" in xml
    status = rig.channel.request(rig.address(ESME), Request(Command.READ_FIRMWARE_VERSION, 0))
    assert status.fields["running_version"] == "1.0.0"
    assert status.fields["pending_version"] == ""


def test_future_dated_load_limit_settings_apply_at_the_execution_time(rig: Rig) -> None:
    text = fixture_xml("6.4.1_load_limit_settings_future_dated").decode().replace(
        "2030-01-15T09:00:00Z", "2026-01-05T10:00:00Z")
    assert _code(rig.submit(text)) == "I0"
    assert rig.world.meter(ESME).registers.load_limit_power_threshold_w == 0
    rig.clock.advance_ms(3600 * 1000)
    xml = rig.submit(fixture_xml("4.15_read_load_limit_data"))
    assert _result(xml, "LoadLimitPowerThreshold") == "6000"
