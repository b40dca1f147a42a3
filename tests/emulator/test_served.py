"""``served()``: a profile served on a pty or TCP in a background thread, from Python."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from emulator.served import parse_advance_seconds, served
from protocol.apdu import Command, Request


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("transport", ["pty", "tcp"])
def test_served_answers_at_once_and_leaves_nothing_behind(transport: str) -> None:
    fds_before, threads_before = _open_fds(), set(threading.enumerate())
    with served("default", transport=transport) as meters:
        if transport == "pty":
            assert meters.path is not None and meters.path.startswith("/dev/")
            assert meters.address is None
        else:
            host, _, port = str(meters.address).rpartition(":")
            assert host == "127.0.0.1" and int(port) > 0
        with meters.client() as client:
            adjusted = client.request(16, Request(Command.ADJUST_METER_BALANCE, 1,
                                                  {"adjustment_pence": 5}))
        assert adjusted.body.meter_balance_pence == 1255
    assert set(threading.enumerate()) == threads_before
    assert _open_fds() <= fds_before


def test_served_stops_and_cleans_up_when_the_block_raises() -> None:
    fds_before, threads_before = _open_fds(), set(threading.enumerate())
    with pytest.raises(KeyError), served(transport="pty"):
        raise KeyError("the test failed")
    assert set(threading.enumerate()) == threads_before
    assert _open_fds() <= fds_before


def test_advance_moves_virtual_device_time_over_the_port() -> None:
    with served(transport="tcp") as meters:
        assert meters.advance("6h") == 1767603600 + 6 * 3600
        assert meters.advance("3d") == 1767603600 + 6 * 3600 + 3 * 86400


def test_served_pty_link_is_a_symlink_removed_on_exit(tmp_path: Path) -> None:
    link = tmp_path / "meter"
    with served(transport="pty", link=link) as meters:
        assert meters.path == str(link) and link.is_symlink()
        with meters.client() as client:
            assert client.request(16, Request(Command.READ_METER_BALANCE, 1)).ok
    assert not link.exists() and not link.is_symlink()


def test_served_refuses_to_replace_a_file_with_its_link(tmp_path: Path) -> None:
    keep = tmp_path / "keep"
    keep.write_text("mine")
    with pytest.raises(FileExistsError), served(transport="pty", link=keep):
        pass
    assert keep.read_text() == "mine"


@pytest.mark.parametrize("transport", ["pty", "tcp"])
def test_served_with_faults_still_applies_each_adjustment_once(transport: str) -> None:
    with served(transport=transport, faults="drop=0.15,duplicate=0.15,corrupt=0.05,seed=3"
                ) as meters, meters.client(retransmit_timeout_ms=100,
                                            max_retransmissions=20) as client:
        for pence in (1, 2, 3):
            assert client.request(16, Request(Command.ADJUST_METER_BALANCE, pence,
                                              {"adjustment_pence": pence})).ok
        end = client.request(16, Request(Command.READ_METER_BALANCE, 9))
    assert end.body.meter_balance_pence == 1256


def test_served_trace_gets_frame_lines() -> None:
    lines: list[str] = []
    with served(transport="tcp", trace=lines.append):
        pass
    assert any("READ_DEVICE_DIRECTORY" in line for line in lines)


@pytest.mark.parametrize("text, seconds", [
    ("3600", 3600), ("90s", 90), ("15m", 900), ("6h", 21600), ("3d", 259200), ("1w", 604800),
    (42, 42)])
def test_advance_durations(text: str | int, seconds: int) -> None:
    assert parse_advance_seconds(text) == seconds


@pytest.mark.parametrize("text", ["soon", "-5", "1.5h", ""])
def test_advance_durations_refuse_anything_else(text: str) -> None:
    with pytest.raises(ValueError):
        parse_advance_seconds(text)
