"""The secure-emu command line: exit codes, one-line messages, and each subcommand's output."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from emulator.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, main
from emulator.utrn import UtrnValueClass, parse_utrn

ESME_EUI = "00-DB-12-34-56-78-90-A1"


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_one_line_error(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


def test_utrn_prints_a_valid_token_for_the_meter_in_pence(capsys) -> None:
    status, out, _ = run_cli(["utrn", "--meter", ESME_EUI, "--counter", "7", "--pence", "1234"],
                             capsys)
    assert status == EXIT_OK
    utrn = out.strip()
    assert len(utrn) == 20 and utrn.isdigit()
    parsed = parse_utrn(utrn, bytes.fromhex(ESME_EUI.replace("-", "")))
    assert (parsed.counter, parsed.value_class, parsed.value) == (
        7, UtrnValueClass.PENNIES, 1234)


def test_utrn_in_pounds_uses_the_pounds_value_class(capsys) -> None:
    status, out, _ = run_cli(["utrn", "--meter", ESME_EUI, "--counter", "8", "--pounds", "20"],
                             capsys)
    assert status == EXIT_OK
    parsed = parse_utrn(out.strip(), bytes.fromhex(ESME_EUI.replace("-", "")))
    assert parsed.value_pence == 2000


def test_utrn_value_out_of_range_is_a_usage_error(capsys) -> None:
    status, _, err = run_cli(["utrn", "--meter", ESME_EUI, "--counter", "1", "--pence", "9000"],
                             capsys)
    assert status == EXIT_USAGE
    assert_one_line_error(err, "9000")


def test_utrn_bad_eui_is_a_usage_error(capsys) -> None:
    status, _, err = run_cli(["utrn", "--meter", "not-an-eui", "--counter", "1", "--pence", "1"],
                             capsys)
    assert status == EXIT_USAGE
    assert_one_line_error(err, "not-an-eui")


@pytest.mark.parametrize("argv, fragment", [
    ([], "COMMAND"),
    (["frobnicate"], "frobnicate"),
    (["serve"], "--pty"),
    (["serve", "--pty", "--tcp", "127.0.0.1:0"], "not allowed"),
    (["send", "request.xml"], "--port"),
    (["advance", "--tcp", "127.0.0.1:1", "soon"], "soon"),
    (["utrn", "--meter", ESME_EUI, "--counter", "1"], "--pence"),
    (["serve", "--pty", "--busy-poll-ms", "-1"], "--busy-poll-ms"),
])
def test_bad_usage_exits_2_with_one_line(capsys, argv: list[str], fragment: str) -> None:
    status, _, err = run_cli(argv, capsys)
    assert status == EXIT_USAGE
    assert_one_line_error(err, fragment)


def test_send_missing_request_file_names_it(capsys, tmp_path: Path) -> None:
    missing = tmp_path / "nope.xml"
    status, _, err = run_cli(["send", "--tcp", "127.0.0.1:1", str(missing)], capsys)
    assert status == EXIT_FAILURE
    assert_one_line_error(err, str(missing), "does not exist")


def test_send_to_an_absent_port_names_it(capsys, tmp_path: Path) -> None:
    request = tmp_path / "r.xml"
    request.write_text("<x/>")
    status, _, err = run_cli(["send", "--port", "/dev/ttyABSENT9", str(request)], capsys)
    assert status == EXIT_FAILURE
    assert_one_line_error(err, "/dev/ttyABSENT9")


def test_send_to_a_closed_tcp_port_names_it(capsys, tmp_path: Path) -> None:
    from protocol.transport import TcpListener

    with TcpListener() as listener:
        address = listener.address
    request = tmp_path / "r.xml"
    request.write_text("<x/>")
    status, _, err = run_cli(["send", "--tcp", address, str(request)], capsys)
    assert status == EXIT_FAILURE
    assert_one_line_error(err, address)


def test_advance_to_an_absent_port_fails_with_one_line(capsys) -> None:
    status, _, err = run_cli(["advance", "--port", "/dev/ttyABSENT9", "60"], capsys)
    assert status == EXIT_FAILURE
    assert_one_line_error(err, "/dev/ttyABSENT9")


def test_console_script_entry_point_runs_as_a_module() -> None:
    result = subprocess.run([sys.executable, "-m", "emulator.cli", "utrn", "--meter", ESME_EUI,
                             "--counter", "1", "--pence", "1"], capture_output=True, text=True,
                            timeout=30, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip()) == 20


def test_annex_c_prints_the_built_in_defaults_table(capsys) -> None:
    status, out, _ = run_cli(["annex-c"], capsys)
    assert status == EXIT_OK
    assert "emergency_credit_limit_pence" in out
    assert "cut_off_grace_period_minutes" in out


def test_profile_prints_the_built_in_profile_which_loads_back_unchanged(
        capsys, tmp_path: Path) -> None:
    from emulator.profile import Profile

    status, out, _ = run_cli(["profile"], capsys)
    assert status == EXIT_OK
    copy = tmp_path / "mine.toml"
    copy.write_text(out)
    assert Profile.load(copy).devices == Profile.default().devices


def test_annex_c_shows_an_override_from_a_file(capsys, tmp_path: Path) -> None:
    overrides = tmp_path / "annex_c.toml"
    overrides.write_text("emergency_credit_limit_pence = 777\n")
    status, out, _ = run_cli(["annex-c", "--annex-c", str(overrides)], capsys)
    assert status == EXIT_OK
    line = next(line for line in out.splitlines() if "emergency_credit_limit_pence" in line)
    assert line.split()[1] == "777"


def test_annex_c_unknown_key_is_one_line_naming_it(capsys, tmp_path: Path) -> None:
    overrides = tmp_path / "annex_c.toml"
    overrides.write_text("bogus_key = 1\n")
    status, _, err = run_cli(["annex-c", "--annex-c", str(overrides)], capsys)
    assert status == EXIT_FAILURE
    assert_one_line_error(err, "bogus_key")


# --------------------------------------------------------------------------------------------
# serve, send, advance and demo against real devices
# --------------------------------------------------------------------------------------------


def start_serve(*extra: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator.cli", "serve", "--pty", "--virtual-time", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert process.stdout is not None
    first_line = process.stdout.readline().strip()
    return process, first_line


def stop_serve(process: subprocess.Popen[str]) -> str:
    process.terminate()  # SIGTERM: must stop cleanly and save state
    try:
        _, err = process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert process.returncode == 0, err
    return err


def esme_balance_pence(path: str) -> int:
    from protocol.apdu import Command, Request
    from protocol.client import DeviceClient

    with DeviceClient.open(port=path) as client:
        response = client.request(16, Request(Command.READ_METER_BALANCE, 1))
    return int(response.body.meter_balance_pence)


def test_serve_pty_prints_the_client_path_first_and_saves_state_on_sigterm(
        tmp_path: Path) -> None:
    from protocol.apdu import AdjustMeterBalanceRequest, Command, Request
    from protocol.client import DeviceClient

    state = tmp_path / "state.json"
    process, path = start_serve("--state", str(state))
    try:
        assert path.startswith("/dev/"), path
        before = esme_balance_pence(path)
        with DeviceClient.open(port=path) as client:
            adjusted = client.request(16, Request(Command.ADJUST_METER_BALANCE, 1,
                                                  body=AdjustMeterBalanceRequest(adjustment_pence=321)))
        assert adjusted.body.meter_balance_pence == before + 321
    finally:
        err = stop_serve(process)
    assert "Traceback" not in err
    assert state.exists()
    # a restart from the saved state resumes the balance
    process, path = start_serve("--state", str(state))
    try:
        assert esme_balance_pence(path) == before + 321
    finally:
        stop_serve(process)


@pytest.mark.parametrize("busy_poll_us", ["0", "5000"])
def test_serve_busy_polling_answers_and_stops_cleanly(busy_poll_us: str) -> None:
    process, path = start_serve("--busy-poll-us", busy_poll_us)
    try:
        assert esme_balance_pence(path) == 1250  # the default profile's ESME
    finally:
        err = stop_serve(process)
    assert "Traceback" not in err


def test_serve_tcp_port_0_prints_the_bound_address_first_and_traces_frames() -> None:
    from protocol.apdu import Command, Request
    from protocol.client import DeviceClient

    process = subprocess.Popen(
        [sys.executable, "-m", "emulator.cli", "serve", "--tcp", "127.0.0.1:0", "--trace",
         "--virtual-time"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert process.stdout is not None
    try:
        address = process.stdout.readline().strip()
        host, _, port = address.rpartition(":")
        assert host == "127.0.0.1" and int(port) > 0
        with DeviceClient.open(tcp=address) as client:
            assert client.request(16, Request(Command.READ_METER_BALANCE, 1)).ok
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=10)
    assert process.returncode == 0
    assert " rx <- 7e " in out and "SNRM" in out
    assert "READ_METER_BALANCE response SUCCESS" in out


def test_serve_port_serves_on_a_serial_device_path() -> None:
    """A bench rig's ``serve --port /dev/ttyUSB0``, with a pty slave standing in for the
    serial device and the test talking through the pty master."""
    from protocol.apdu import Command, Request
    from protocol.client import DeviceClient
    from protocol.transport import PtyPair

    pair = PtyPair()
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator.cli", "serve", "--port", pair.client_path,
         "--virtual-time"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert process.stdout is not None
    try:
        assert process.stdout.readline().strip() == pair.client_path
        client = DeviceClient(pair.server, retransmit_timeout_ms=500, max_retransmissions=6)
        assert client.request(16, Request(Command.READ_METER_BALANCE, 1)).ok
    finally:
        stop_serve(process)
        pair.close()


def test_serve_on_an_absent_port_fails_with_one_line(capsys) -> None:
    status, _, err = run_cli(["serve", "--port", "/dev/ttyABSENT9"], capsys)
    assert status == EXIT_FAILURE
    assert_one_line_error(err, "/dev/ttyABSENT9")


def test_serve_with_a_missing_profile_names_it(capsys, tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    status, _, err = run_cli(["serve", "--pty", "--profile", str(missing)], capsys)
    assert status == EXIT_FAILURE
    assert_one_line_error(err, str(missing))


def test_serve_with_a_bad_profile_says_what_is_wrong(capsys, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[world]\nstart_device_time = 'yesterday'\n")
    status, _, err = run_cli(["serve", "--pty", "--profile", str(bad)], capsys)
    assert status == EXIT_FAILURE
    assert_one_line_error(err, str(bad))


def test_send_prints_the_duis_response_of_each_request_file(capsys, tmp_path: Path) -> None:
    from protocol.s1sp.builders import DuisMoney, DuisRequestBuilder

    builder = DuisRequestBuilder()
    read = tmp_path / "read.xml"
    read.write_text(builder.read_meter_balance(ESME_EUI))
    adjust = tmp_path / "adjust.xml"
    adjust.write_text(builder.update_meter_balance(ESME_EUI, adjust_pence=DuisMoney(-98765)))
    process, path = start_serve()
    try:
        status, out, err = run_cli(["send", "--port", path, str(read), str(adjust)], capsys)
    finally:
        stop_serve(process)
    assert status == EXIT_OK, err
    assert out.count("<sr:Response") == 2 or out.count(":Response ") == 2, out
    assert "-98000" in out  # 18.16: the truncated adjustment actually applied, x1000


def test_send_with_trace_prints_frames_on_stderr_and_only_xml_on_stdout(
        capsys, tmp_path: Path) -> None:
    from protocol.s1sp.builders import DuisRequestBuilder

    read = tmp_path / "read.xml"
    read.write_text(DuisRequestBuilder().read_meter_balance(ESME_EUI))
    process, path = start_serve()
    try:
        status, out, err = run_cli(["send", "--port", path, "--trace", str(read)], capsys)
    finally:
        stop_serve(process)
    assert status == EXIT_OK
    assert "READ_METER_BALANCE request" in err and "SNRM" in err
    assert out.lstrip().startswith("<")


def test_advance_moves_virtual_device_time(capsys) -> None:
    process, path = start_serve()
    try:
        status, out, _ = run_cli(["advance", "--port", path, "3600"], capsys)
    finally:
        stop_serve(process)
    assert status == EXIT_OK
    assert "device time now" in out and "2026-01-05T10:00:00Z" in out


def test_advance_longer_than_one_request_allows_goes_in_steps_with_progress(capsys) -> None:
    process, path = start_serve()
    try:
        status, out, err = run_cli(["advance", "--port", path, str(40 * 86400)], capsys)
    finally:
        stop_serve(process)
    assert status == EXIT_OK, err
    assert "s to go" in err  # progress between the steps
    assert "2026-02-14T09:00:00Z" in out  # 40 days after the profile's start


def test_demo_exits_0_and_prints_the_transcript(capsys) -> None:
    status, out, err = run_cli(["demo"], capsys)
    assert status == EXIT_OK, err
    for expected in (
        "AdjustMeterBalance=123000",  # 18.3/18.16: +123456 applied as 123 p
        "adjustment_pence=-98", "AdjustMeterBalance=-98000",  # truncated toward zero
        "disablement_threshold_pence=556", "DisablementThreshold=556000",  # 18.27
        "defaults={emergency_credit_limit_pence=",  # Annex C on the wire
        "EmergencyCreditBalance=500000",  # 18.8
        "UTRN_DUPLICATE",
        "LoadLimitPowerThreshold 70000 W", "wire: nothing sent",  # 18.37
        "load_limit_power_threshold_w=5000",
        "join_window_minutes=2",  # 18.62
        "FIRMWARE_UPDATE_IN_PROGRESS", "Outcome=Accepted",  # 18.63
        "ActiveEnergyUnit=Wh", "READ_PROFILE_DATA", "PrimaryValue=",  # metering reads
        "Demo finished",
    ):
        assert expected in out, expected
    assert "Traceback" not in out + err


# --------------------------------------------------------------------------------------------
# send's clock, --pretty, and serve's startup, profile names and prompt stop
# --------------------------------------------------------------------------------------------

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "duis"


def test_send_on_virtual_time_synchronises_the_meter_to_emulator_time_not_the_wall_clock(
        capsys) -> None:
    from protocol.apdu import Command, Request
    from protocol.client import DeviceClient

    process, path = start_serve()  # virtual time: the profile starts 2026-01-05T09:00:00Z
    try:
        status, out, err = run_cli(
            ["send", "--port", path, str(FIXTURES / "6.11_synchronise_clock.xml")], capsys)
        with DeviceClient.open(port=path) as client:
            clock = client.request(16, Request(Command.READ_CLOCK, 1))
    finally:
        stop_serve(process)
    assert status == EXIT_OK, err
    assert "<sr:ResponseCode>I0<" in out
    assert "<sr:DeviceDateTime>2026-01-05T09:00:" in out
    assert "<sr:ResponseDateTime>2026-01-05T09:00:" in out
    assert abs(clock.body.device_time_seconds - 1767603600) < 60


def _world_channel() -> tuple[object, object]:
    from emulator.clock import VirtualClock
    from emulator.profile import Profile
    from emulator.world import EmulatedWorld
    from protocol.s1sp.channel import InProcessChannel

    profile = Profile.default()
    world = EmulatedWorld(profile, VirtualClock(profile.start_device_time_seconds))
    return world, InProcessChannel(world.handle_apdu)


def test_send_clock_is_the_emulator_clock_advanced_by_elapsed_monotonic_time() -> None:
    from datetime import datetime, timezone

    from emulator.cli import emulator_response_clock

    _, channel = _world_channel()
    monotonic = [10_000_000_000]
    now = emulator_response_clock(channel, monotonic_ns=lambda: monotonic[0])
    assert now() == datetime(2026, 1, 5, 9, 0, 0, tzinfo=timezone.utc)
    monotonic[0] += 90_500_000_000  # 90.5 s later
    assert now() == datetime(2026, 1, 5, 9, 1, 30, tzinfo=timezone.utc)


def test_send_clock_falls_back_to_the_wall_clock_when_no_management_device_answers() -> None:
    from datetime import datetime, timezone

    from emulator.cli import emulator_response_clock
    from protocol.s1sp.channel import InProcessChannel

    wall = datetime(2031, 7, 1, 12, 0, 0, tzinfo=timezone.utc)
    now = emulator_response_clock(InProcessChannel(lambda address, apdu: None),
                                  wall_clock=lambda: wall)
    assert now() == wall


def test_send_pretty_prints_each_response_indented(capsys) -> None:
    process, path = start_serve()
    try:
        status, out, err = run_cli(["send", "--port", path, "--pretty",
                                    str(FIXTURES / "4.18_read_meter_balance.xml")], capsys)
    finally:
        stop_serve(process)
    assert status == EXIT_OK, err
    lines = out.splitlines()
    assert lines[0].startswith("<?xml")
    assert "  <sr:Header>" in lines
    assert any(line.startswith("    <sr:ResponseCode>I0</sr:ResponseCode>") for line in lines)


def test_serve_startup_line_promises_saving_state_only_with_a_state_file(
        tmp_path: Path) -> None:
    process, _ = start_serve()
    without_state = stop_serve(process)
    state = tmp_path / "state.json"
    process, _ = start_serve("--state", str(state))
    with_state = stop_serve(process)
    assert "Ctrl-C or SIGTERM stops" in without_state
    assert "saves state" not in without_state
    assert f"stops and saves state to {state}" in with_state


def test_serve_accepts_a_built_in_profile_by_name() -> None:
    process, path = start_serve("--profile", "dcc-duis-templates")
    err = stop_serve(process)
    assert path.startswith("/dev/"), path + err
    assert "serving server addresses" in err


def _unread_bytes(fd: int) -> int:
    import fcntl
    import struct
    import termios

    return int(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0])


def test_serve_stops_promptly_on_sigterm_while_a_pty_client_never_reads() -> None:
    import time
    import tty

    from protocol.hdlc import FrameType, HdlcFrame
    from protocol.hdlc_codec import encode_frame

    process, path = start_serve()
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        tty.setraw(fd)
        snrms = encode_frame(HdlcFrame.make(FrameType.SNRM, 16, 0x10)) * 50
        # send SNRMs and never read the UAs until the pty's buffer stays full: from then on
        # the server's every write waits for room (2 s) -- that is when SIGTERM comes
        last_unread, unchanged_since = -1, time.monotonic()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(BlockingIOError):
                os.write(fd, snrms)
            unread = _unread_bytes(fd)
            if unread != last_unread:
                last_unread, unchanged_since = unread, time.monotonic()
            elif unread and time.monotonic() - unchanged_since > 0.2:
                break
            time.sleep(0.005)  # waiting for the server process, not for device time
        started = time.monotonic()
        err = stop_serve(process)
        stopped_after_seconds = time.monotonic() - started
    finally:
        os.close(fd)
    assert "stopped" in err
    assert stopped_after_seconds < 1.0  # a stalled write waits up to 2 s unless abandoned
