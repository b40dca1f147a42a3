"""6.11 Synchronise Clock: CurrentDateTime and TolerancePeriod are a validity window checked
against the S1SP's time of sending (issue 10 point 7); the DCC's 6.11 templates succeed
against the dcc-duis-templates world (virtual time at 2015-01-01T00:00:00Z)."""

from __future__ import annotations

from xml.etree.ElementTree import fromstring

import pytest

from protocol.apdu import Command
from tests.protocol.s1sp.duis_answers import NS, error_reason, response_code
from tests.protocol.s1sp.templates_rig import (
    TEMPLATES_ESME_EUI64,
    TEMPLATES_GSME_EUI64,
    TemplatesRig,
    template_fixture_xml,
)

START_2015 = 1_420_070_400  # 2015-01-01T00:00:00Z


def _device_date_time(xml: str) -> str | None:
    return fromstring(xml).findtext(
        "sr:Body/sr:ResponseMessage/sr:SynchroniseClockResponse/sr:DeviceDateTime",
        namespaces=NS)


@pytest.mark.parametrize(("fixture", "eui64"), [
    ("6.11_synchronise_clock_electricity", TEMPLATES_ESME_EUI64),
    ("6.11_synchronise_clock_gas", TEMPLATES_GSME_EUI64),
])
def test_the_dcc_6_11_templates_succeed_inside_their_window(fixture: str, eui64: bytes) -> None:
    rig = TemplatesRig()
    assert rig.clock.device_time_seconds() == START_2015
    rig.world.device_by_eui64(eui64).clock_offset_seconds = -600  # the meter runs 10 min slow
    xml = rig.submit(template_fixture_xml(fixture))
    assert response_code(xml) == "I0"
    assert _device_date_time(xml) == "2015-01-01T00:00:00Z"
    assert rig.world.device_clock_seconds(eui64) == START_2015


def test_the_window_end_itself_is_inside() -> None:
    rig = TemplatesRig()
    rig.clock.advance_seconds(10)  # 23:59:10 + 60 s = 00:00:10
    xml = rig.submit(template_fixture_xml("6.11_synchronise_clock_electricity"))
    assert response_code(xml) == "I0"
    assert _device_date_time(xml) == "2015-01-01T00:00:10Z"


def test_a_6_11_sent_after_its_window_is_refused_and_nothing_sent() -> None:
    rig = TemplatesRig()
    rig.clock.advance_seconds(11)
    xml = rig.submit(template_fixture_xml("6.11_synchronise_clock_electricity"))
    assert response_code(xml) == "E-S1SR"
    assert error_reason(xml).startswith(
        "6.11: the S1SP's time of sending, 2015-01-01T00:00:11Z, is after the validity window "
        "2014-12-31T23:59:10Z..2015-01-01T00:00:10Z")
    assert Command.SYNCHRONISE_CLOCK not in rig.sent_commands()


def test_a_6_11_sent_before_its_window_is_refused_and_nothing_sent() -> None:
    rig = TemplatesRig()
    xml = rig.submit(template_fixture_xml("6.11_synchronise_clock_electricity").replace(
        b"2014-12-31T23:59:10.00Z", b"2015-01-01T00:00:01.00Z"))
    assert response_code(xml) == "E-S1SR"
    assert "is before the validity window 2015-01-01T00:00:01Z" in error_reason(xml)
    assert Command.SYNCHRONISE_CLOCK not in rig.sent_commands()


@pytest.mark.parametrize("tolerance", ["-1", "86401"])
def test_tolerance_period_outside_duis_range_is_invalid(tolerance: str) -> None:
    rig = TemplatesRig()
    xml = rig.submit(template_fixture_xml("6.11_synchronise_clock_electricity").replace(
        b">60<", f">{tolerance}<".encode()))
    assert response_code(xml) == "E-INVALID"
    assert f"TolerancePeriod {tolerance} s is outside" in error_reason(xml)
