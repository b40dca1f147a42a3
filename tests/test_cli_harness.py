"""The secure-emu command line, the things a new user hit: --version, help on every option,
--pounds with pence, utrn --decode, profile --name, explained profile keys, serve --link and
--faults, advance 6h / --to, send - / --out / --fail-on-error / retry notices."""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from emulator.cli import EXIT_FAILURE, EXIT_OK, EXIT_RESPONSE_ERROR, EXIT_USAGE, build_parser, main
from emulator.served import served
from emulator.utrn import UtrnValueClass, parse_utrn
from tests.test_cli import stop_serve

ESME_EUI = "00-DB-12-34-56-78-90-A1"
ESME = bytes.fromhex("00DB1234567890A1")
FIXTURES = Path(__file__).parent / "fixtures" / "duis"


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# --- --version and help ------------------------------------------------------------------


def test_version_prints_the_package_name_and_version() -> None:
    result = subprocess.run([sys.executable, "-m", "emulator.cli", "--version"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert re.fullmatch(r"secure-emu \d+\.\d+\.\d+\S*\n", result.stdout), result.stdout


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_every_option_of_every_subcommand_has_help() -> None:
    commands = _subparsers(build_parser())
    assert {"serve", "send", "advance", "utrn", "profile"} <= set(commands)
    missing = [f"{name} {'/'.join(action.option_strings) or action.dest}"
               for name, parser in commands.items() for action in parser._actions
               if not action.help and not isinstance(action, argparse._HelpAction)]
    assert missing == []


def test_serve_help_documents_every_fault_key(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for key in ("drop:", "corrupt:", "duplicate:", "split:", "delay:", "stall:", "seed:",
                "--baudrate", "--link"):
        assert key in out


# --- utrn --------------------------------------------------------------------------------


def test_pounds_and_pence_make_a_pennies_utrn_of_exactly_that_amount(capsys) -> None:
    status, out, _ = run_cli(["utrn", "--meter", ESME_EUI, "--counter", "4", "--pounds",
                              "10.50"], capsys)
    assert status == EXIT_OK
    parsed = parse_utrn(out.strip(), ESME)
    assert (parsed.value_class, parsed.value, parsed.value_pence) == (
        UtrnValueClass.PENNIES, 1050, 1050)


def test_whole_pounds_written_with_pence_stay_a_pounds_utrn(capsys) -> None:
    status, out, _ = run_cli(["utrn", "--meter", ESME_EUI, "--counter", "4", "--pounds",
                              "200.00"], capsys)
    assert status == EXIT_OK
    parsed = parse_utrn(out.strip(), ESME)
    assert (parsed.value_class, parsed.value) == (UtrnValueClass.POUNDS, 200)


@pytest.mark.parametrize("option, value, fragments", [
    ("--pence", "9000", ("9000 pence", "8191 pence")),
    ("--pounds", "9000", ("9000 pounds", "8191 pounds")),
    ("--pounds", "100.50", ("100.50 pounds", "10050 pence")),
    ("--pounds", "1.001", ("1.001 pounds", "whole number of pence")),
    ("--pounds", "ten", ("ten", "pounds")),
])
def test_utrn_value_errors_name_the_unit(capsys, option: str, value: str,
                                         fragments: tuple[str, ...]) -> None:
    status, _, err = run_cli(["utrn", "--meter", ESME_EUI, "--counter", "1", option, value],
                             capsys)
    assert status == EXIT_USAGE
    line = one_line(err)
    for fragment in fragments:
        assert fragment in line


def test_utrn_decode_shows_counter_value_and_credit(capsys) -> None:
    _, made, _ = run_cli(["utrn", "--meter", ESME_EUI, "--counter", "77", "--pounds", "12.34"],
                         capsys)
    status, out, _ = run_cli(["utrn", "--meter", ESME_EUI, "--decode", made.strip()], capsys)
    assert status == EXIT_OK
    assert out.strip() == "counter 77; value 1234 pence; credit 1234 pence (12.34 GBP)"


def test_utrn_decode_for_another_meter_says_so(capsys) -> None:
    _, made, _ = run_cli(["utrn", "--meter", ESME_EUI, "--counter", "1", "--pounds", "5"],
                         capsys)
    status, _, err = run_cli(["utrn", "--meter", "00-DB-12-34-56-78-90-A2", "--decode",
                              made.strip()], capsys)
    assert status == EXIT_FAILURE
    assert "00-DB-12-34-56-78-90-A2" in one_line(err)


def test_making_a_utrn_without_a_counter_is_a_usage_error(capsys) -> None:
    status, _, err = run_cli(["utrn", "--meter", ESME_EUI, "--pence", "5"], capsys)
    assert status == EXIT_USAGE
    assert "--counter" in one_line(err)


# --- profile -----------------------------------------------------------------------------


def test_profile_name_prints_that_built_in_profile(capsys) -> None:
    from emulator.profile import Profile

    status, out, _ = run_cli(["profile", "--name", "dcc-duis-templates"], capsys)
    assert status == EXIT_OK
    profile = Profile.from_toml_bytes(out.encode("utf-8"))
    esme = next(device for device in profile.devices if device.type_name == "esme")
    assert esme.eui64 == bytes.fromhex("00DB1234567890A0")


def test_profile_with_an_unknown_name_lists_the_built_in_ones(capsys) -> None:
    status, _, err = run_cli(["profile", "--name", "mine"], capsys)
    assert status == EXIT_USAGE
    assert "dcc-duis-templates" in one_line(err)


@pytest.mark.parametrize("name", ["default", "dcc-duis-templates"])
def test_every_key_of_a_printed_profile_is_explained_on_its_line(capsys, name: str) -> None:
    status, out, _ = run_cli(["profile", "--name", name], capsys)
    assert status == EXIT_OK
    key_lines = [line for line in out.splitlines() if re.match(r"^[a-z_0-9]+ = ", line)]
    assert len(key_lines) > 40
    unexplained = [line for line in key_lines if not re.search(r"#\s*\S", line)]
    assert unexplained == []


# --- serve --link and --faults -----------------------------------------------------------


def _serve(*extra: str) -> tuple[subprocess.Popen[str], str]:
    """``secure-emu serve --virtual-time EXTRA...`` and its first line (without --pty)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator.cli", "serve", "--virtual-time", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def test_serve_pty_link_is_printed_usable_and_removed_on_exit(tmp_path: Path) -> None:
    from protocol.apdu import Command, Request
    from protocol.client import DeviceClient

    link = tmp_path / "meter"
    process, first_line = _serve("--pty", "--link", str(link))
    try:
        assert first_line == str(link) and link.is_symlink()
        assert os.readlink(link).startswith("/dev/")
        with DeviceClient.open(port=str(link)) as client:
            assert client.request(16, Request(Command.READ_METER_BALANCE, 1)).ok
    finally:
        stop_serve(process)
    assert not link.is_symlink()


def test_serve_link_needs_a_pty(capsys, tmp_path: Path) -> None:
    status, _, err = run_cli(["serve", "--tcp", "127.0.0.1:0", "--link",
                              str(tmp_path / "x")], capsys)
    assert status == EXIT_USAGE
    assert "--pty" in one_line(err)


def test_serve_with_faults_still_applies_each_adjustment_once() -> None:
    from protocol.apdu import AdjustMeterBalanceRequest, Command, Request
    from protocol.client import DeviceClient

    process, address = _serve("--tcp", "127.0.0.1:0", "--faults",
                              "drop=0.2,duplicate=0.2,corrupt=0.05,seed=5")
    try:
        with DeviceClient.open(tcp=address, retransmit_timeout_ms=100,
                               max_retransmissions=20) as client:
            for pence in (10, 20):
                assert client.request(16, Request(Command.ADJUST_METER_BALANCE, 1,
                                                  body=AdjustMeterBalanceRequest(adjustment_pence=pence))).ok
            end = client.request(16, Request(Command.READ_METER_BALANCE, 2))
    finally:
        stop_serve(process)
    assert end.body.meter_balance_pence == 1280


def test_serve_with_a_bad_fault_spec_names_the_key(capsys) -> None:
    status, _, err = run_cli(["serve", "--pty", "--faults", "drop=3"], capsys)
    assert status == EXIT_USAGE
    assert "drop" in one_line(err)


# --- advance -----------------------------------------------------------------------------


@pytest.mark.parametrize("duration, expected", [
    ("6h", "2026-01-05T15:00:00Z"), ("3d", "2026-01-08T09:00:00Z"), ("90", "09:01:30Z")])
def test_advance_takes_durations_with_units(capsys, duration: str, expected: str) -> None:
    with served(transport="tcp") as meters:
        status, out, _ = run_cli(["advance", "--tcp", str(meters.address), duration], capsys)
    assert status == EXIT_OK
    assert expected in out


def test_advance_to_a_datetime(capsys) -> None:
    with served(transport="tcp") as meters:
        status, out, _ = run_cli(["advance", "--tcp", str(meters.address), "--to",
                                  "2026-02-01T00:00:00Z"], capsys)
        again, _, err = run_cli(["advance", "--tcp", str(meters.address), "--to",
                                 "2026-01-31T00:00:00Z"], capsys)
    assert status == EXIT_OK
    assert "device time now 1769904000 (2026-02-01T00:00:00Z)" in out
    assert again == EXIT_USAGE and "time never goes back" in one_line(err)


def test_advance_with_a_bad_duration_is_a_usage_error(capsys) -> None:
    status, _, err = run_cli(["advance", "--tcp", "127.0.0.1:1", "6 hours"], capsys)
    assert status == EXIT_USAGE
    assert "6 hours" in one_line(err)


# --- send --------------------------------------------------------------------------------


def test_send_dash_reads_a_request_from_standard_input(capsys, monkeypatch) -> None:
    request = (FIXTURES / "4.18_read_meter_balance.xml").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(request)))
    with served(transport="tcp") as meters:
        status, out, _ = run_cli(["send", "--tcp", str(meters.address), "-"], capsys)
    assert status == EXIT_OK
    assert "<sr:MeterBalance>1250000</sr:MeterBalance>" in out


def test_several_responses_split_unambiguously_into_one_document_each(capsys) -> None:
    from defusedxml.ElementTree import fromstring

    requests = [str(FIXTURES / name) for name in (
        "4.18_read_meter_balance.xml", "7.4_read_supply_status.xml",
        "4.3_read_instantaneous_prepay_values.xml")]
    with served(transport="tcp") as meters:
        status, out, _ = run_cli(["send", "--pretty", "--tcp", str(meters.address), *requests],
                                 capsys)
    assert status == EXIT_OK
    documents = re.split(r"^<!-- secure-emu: end of response \d+ of 3 \(.*\) -->$", out,
                         flags=re.M)
    assert documents[-1].strip() == ""
    roots = [fromstring(document.strip().encode("utf-8")) for document in documents[:-1]]
    assert [root.tag.rpartition("}")[2] for root in roots] == ["Response"] * 3


def test_send_out_writes_one_file_per_response(capsys, tmp_path: Path) -> None:
    requests = [str(FIXTURES / "4.18_read_meter_balance.xml"),
                str(FIXTURES / "7.4_read_supply_status.xml")]
    with served(transport="tcp") as meters:
        status, out, _ = run_cli(["send", "--tcp", str(meters.address), "--out",
                                  str(tmp_path / "responses"), *requests], capsys)
    assert status == EXIT_OK
    written = sorted(p.name for p in (tmp_path / "responses").iterdir())
    assert written == ["001_4.18_read_meter_balance.xml", "002_7.4_read_supply_status.xml"]
    assert out.split() == [str(tmp_path / "responses" / name) for name in written]
    assert "ReadMeterBalanceResponse" in (tmp_path / "responses" / written[0]).read_text()


def test_send_fail_on_error_exits_non_zero_on_an_error_code(capsys, tmp_path: Path) -> None:
    unknown = tmp_path / "unknown.xml"
    unknown.write_text((FIXTURES / "4.18_read_meter_balance.xml").read_text().replace(
        "00-DB-12-34-56-78-90-A1", "00-DB-12-34-56-78-90-FF"))
    good = str(FIXTURES / "4.18_read_meter_balance.xml")
    with served(transport="tcp") as meters:
        plain, _, _ = run_cli(["send", "--tcp", str(meters.address), str(unknown)], capsys)
        strict_ok, _, _ = run_cli(["send", "--fail-on-error", "--tcp", str(meters.address),
                                   good], capsys)
        strict, out, err = run_cli(["send", "--fail-on-error", "--tcp", str(meters.address),
                                    good, str(unknown)], capsys)
    assert plain == EXIT_OK and strict_ok == EXIT_OK
    assert strict == EXIT_RESPONSE_ERROR == 3
    assert "E19" in out and "1 of 2 responses" in one_line(err)


def test_send_says_when_it_is_retrying(capsys) -> None:
    """Through the in-process URL, whose seeded faults replay exactly: this seed loses one
    frame, and send says it asks again."""
    request = str(FIXTURES / "4.18_read_meter_balance.xml")
    status, out, err = run_cli(["send", "--port", "secure-emu://?faults=drop=0.2;seed=10",
                                request], capsys)
    assert status == EXIT_OK, err
    assert "<sr:MeterBalance>1250000</sr:MeterBalance>" in out
    assert re.findall(r"no answer from server address \d+ yet; retrying", err) != [], err


def test_retry_notices_name_a_repeated_link_request_or_poll_only() -> None:
    from emulator.cli import retry_notices
    from protocol.hdlc import FrameType, HdlcFrame

    lines: list[str] = []
    notice = retry_notices(lines.append)
    snrm = HdlcFrame.make(FrameType.SNRM, 16, 0x10)
    ua = HdlcFrame.make(FrameType.UA, 0x10, 16)
    i_frame = HdlcFrame.make(FrameType.I, 16, 0x10, b"\x00")
    poll = HdlcFrame.make(FrameType.RR, 16, 0x10)
    for direction, frame in [("tx", snrm), ("rx", ua), ("tx", i_frame), ("rx", i_frame)]:
        notice(direction, frame, 0)
    assert lines == []  # answered every time
    notice("tx", snrm, 0)
    notice("tx", snrm, 1000)
    notice("rx", ua, 1100)
    notice("tx", i_frame, 1100)
    notice("tx", poll, 2100)
    assert lines == [
        "secure-emu: no answer from server address 16 yet; retrying (connecting again, try 2)",
        "secure-emu: no answer from server address 16 yet; retrying (asking again, try 2)"]


def test_profile_fleet_prints_a_fleet_that_loads_with_that_many_devices(capsys) -> None:
    from emulator.profile import Profile

    code, out, _ = run_cli(["profile", "--fleet", "5"], capsys)
    assert code == 0
    profile = Profile.from_toml_bytes(out.encode())
    # two hubs with an ESME each, and a last hub alone
    assert len(profile.devices) == 5
    assert [d.server_address for d in profile.devices] == [2, 3, 4, 5, 6]


def test_profile_fleet_of_no_devices_is_a_usage_error(capsys) -> None:
    code, _, err = run_cli(["profile", "--fleet", "0"], capsys)
    assert code == 2
    assert "--fleet N takes a number of devices >= 1" in err


def test_serve_summarises_the_addresses_of_a_large_world_in_its_start_up_line() -> None:
    from emulator.cli.serve import _describe_addresses

    assert _describe_addresses([1, 2, 16, 17]) == "1, 2, 16, 17"
    assert _describe_addresses(list(range(1, 100_002))) == "100001 addresses, 1..100001"
