"""`secure-emu serve --addressing flat|dlms`: the option reaches every link of the server."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from emulator.cli import CliError, build_parser
from protocol.apdu import Command, Request, Status
from protocol.client import DeviceClient
from protocol.hdlc import Addressing


def test_addressing_defaults_to_flat_and_accepts_only_flat_or_dlms() -> None:
    parser = build_parser()
    assert parser.parse_args(["serve", "--pty"]).addressing == "flat"
    assert parser.parse_args(["serve", "--pty", "--addressing", "dlms"]).addressing == "dlms"
    with pytest.raises(CliError, match="--addressing: invalid choice: 'upper-lower'"):
        parser.parse_args(["serve", "--pty", "--addressing", "upper-lower"])


def test_serve_with_dlms_addressing_reads_server_addresses_as_logical_physical_pairs() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator.cli", "serve", "--pty", "--virtual-time",
         "--addressing", "dlms"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert process.stdout is not None
    try:
        path = process.stdout.readline().strip()
        with DeviceClient.open(port=path, addressing=Addressing.DLMS) as client:
            balance = client.request(16, Request(Command.READ_METER_BALANCE, 1))  # 02 21
        assert balance.ok and balance.body.meter_balance_pence == 1250
        # flat 16 (21) is logical 16 without a physical part here: the management device
        with DeviceClient.open(port=path) as client:
            answer = client.request(16, Request(Command.READ_METER_BALANCE, 2))
        assert answer.status is not Status.SUCCESS
    finally:
        process.terminate()
        _, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
