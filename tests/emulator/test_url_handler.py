"""The ``secure-emu://`` pyserial URL: emulated meters behind pyserial's API, in process."""

from __future__ import annotations

import re

import pytest
import serial

import emulator  # noqa: F401  (importing the package registers the scheme)
from protocol.apdu import Command, Request
from protocol.client import DeviceClient

ESME_EUI = "00-DB-12-34-56-78-90-A1"


def test_importing_the_package_registers_the_handler_package() -> None:
    assert "emulator.urlhandler" in serial.protocol_handler_packages


def test_device_client_reads_and_adjusts_a_balance_through_the_url() -> None:
    with DeviceClient.open(port="secure-emu://?profile=default") as client:
        before = client.request(16, Request(Command.READ_METER_BALANCE, 1))
        adjusted = client.request(16, Request(Command.ADJUST_METER_BALANCE, 2,
                                              {"adjustment_pence": 250}))
    assert before.body.meter_balance_pence == 1250
    assert adjusted.body.meter_balance_pence == 1500


def test_the_adapter_drives_a_named_profile_through_the_url() -> None:
    from protocol.s1sp import DuisRequestBuilder, S1spAdapter

    # dcc-duis-templates puts the ESME at ...-A0
    with DeviceClient.open(port="secure-emu://?profile=dcc-duis-templates") as client:
        response = S1spAdapter(client).submit(
            DuisRequestBuilder().read_meter_balance("00-DB-12-34-56-78-90-A0"))
    assert "<sr:ResponseCode>I0</sr:ResponseCode>" in response


def test_virtual_time_is_the_default_and_starts_at_the_profile_start() -> None:
    port = serial.serial_for_url("secure-emu://")
    try:
        assert port.device_clock.device_time_seconds() == 1767603600  # 2026-01-05T09:00:00Z
    finally:
        port.close()
    port = serial.serial_for_url("secure-emu://?virtual_time=0")
    try:
        assert port.device_clock.device_time_seconds() > 1767603600
    finally:
        port.close()


def test_every_adjustment_is_applied_once_through_a_faulty_url() -> None:
    url = "secure-emu://?faults=drop=0.2;duplicate=0.2;corrupt=0.1;delay=2ms;seed=9"
    with DeviceClient.open(port=url, retransmit_timeout_ms=50, max_retransmissions=20) as client:
        for pence in range(1, 6):
            assert client.request(16, Request(Command.ADJUST_METER_BALANCE, pence,
                                              {"adjustment_pence": pence})).ok
        end = client.request(16, Request(Command.READ_METER_BALANCE, 9))
        assert client.counters.frames_sent > 0
    assert end.body.meter_balance_pence == 1250 + 15


def test_trace_writes_frames_to_stderr(capfd) -> None:
    with DeviceClient.open(port="secure-emu://?trace=1") as client:
        client.request(16, Request(Command.READ_METER_BALANCE, 1))
    err = capfd.readouterr().err
    assert "SNRM" in err and "READ_METER_BALANCE response SUCCESS" in err


def test_read_honours_the_port_timeout_with_nothing_to_read() -> None:
    port = serial.serial_for_url("secure-emu://", timeout=0)
    try:
        assert port.read(10) == b"" and port.in_waiting == 0
    finally:
        port.close()


@pytest.mark.parametrize("url, fragment", [
    ("secure-emu://?colour=red", "colour"),
    ("secure-emu://?profile=/no/such.toml", "no/such.toml"),
    ("secure-emu://?faults=drop=9", "drop"),
    ("secure-emu://?virtual_time=perhaps", "virtual_time"),
])
def test_bad_url_options_are_a_serial_exception_naming_them(url: str, fragment: str) -> None:
    with pytest.raises(serial.SerialException, match=re.escape(fragment)):
        serial.serial_for_url(url)
