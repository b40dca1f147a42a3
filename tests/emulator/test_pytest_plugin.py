"""The pytest plugin (emulator/pytest_plugin.py), run in inner pytest sessions (pytester), and
the README's "Using secure-emu in your own tests" example run as a user would run it."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest

# Imported here so that pytester's in-process inner sessions find them loaded (it drops the
# modules an inner session imported when that session ends, and each would import them again).
import emulator.demo
import emulator.pytest_plugin
import emulator.served  # noqa: F401
import protocol.client
import protocol.s1sp  # noqa: F401

README = Path(__file__).resolve().parents[2] / "README.md"


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def run_inner(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """An inner pytest session as a user's suite (without this suite's slow-starting
    hypothesis plugin, which the plugin does not need)."""
    return pytester.runpytest("-p", "no:cacheprovider", "-p", "no:hypothesispytest", *args)


def readme_example(name: str) -> str:
    """The python block after ``<!-- readme-example: NAME -->`` in the README."""
    text = README.read_text(encoding="utf-8")
    found = re.search(rf"<!-- readme-example: {re.escape(name)} -->\n```python\n(.*?)```",
                      text, re.S)
    assert found is not None, f"no readme example {name}"
    return found.group(1)


def test_the_readme_example_passes_and_is_under_20_lines(pytester: pytest.Pytester) -> None:
    code = readme_example("test_top_up.py")
    assert len(code.strip().splitlines()) < 20
    pytester.makepyfile(test_top_up=code)
    run_inner(pytester).assert_outcomes(passed=1)


def test_the_readme_example_would_catch_a_wrong_balance(pytester: pytest.Pytester) -> None:
    code = readme_example("test_top_up.py")
    assert "== 2150" in code
    code = code.replace("== 2150", "== 2151")
    pytester.makepyfile(test_top_up=code)
    run_inner(pytester).assert_outcomes(failed=1)


def test_fixtures_serve_on_pty_and_tcp_and_leave_nothing_behind_even_on_failure(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user="""
        from protocol.apdu import Command, Request

        def test_pty(secure_emu_pty):
            with secure_emu_pty.client() as client:
                assert client.request(16, Request(Command.READ_METER_BALANCE, 1)).ok
            assert secure_emu_pty.path.startswith("/dev/")

        def test_tcp(secure_emu_tcp):
            host, _, port = secure_emu_tcp.address.rpartition(":")
            with secure_emu_tcp.client() as client:
                assert client.request(16, Request(Command.READ_METER_BALANCE, 1)).ok

        def test_pty_failing(secure_emu_pty):
            assert False, "a user's test fails"

        def test_tcp_failing(secure_emu_tcp):
            raise RuntimeError("a user's test errors")
    """)
    fds_before, threads_before = _open_fds(), set(threading.enumerate())
    result = run_inner(pytester)
    result.assert_outcomes(passed=2, failed=2)
    assert set(threading.enumerate()) == threads_before
    assert _open_fds() <= fds_before


def test_world_fixture_advances_virtual_time_and_shares_the_adapter_world(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user="""
        def test_advance(secure_emu_world, secure_emu_adapter):
            start = secure_emu_world.clock.device_time_seconds()
            assert start == 1767603600
            assert secure_emu_world.advance("6h") == start + 6 * 3600
            assert secure_emu_world.advance("3d") == start + 6 * 3600 + 3 * 86400
            assert secure_emu_adapter is secure_emu_world.adapter
    """)
    run_inner(pytester).assert_outcomes(passed=1)


def test_marker_and_parameter_choose_the_profile_and_faults(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user="""
        import pytest

        @pytest.mark.secure_emu(profile="dcc-duis-templates", faults="drop=0.2,seed=4")
        def test_marker(secure_emu_world, secure_emu_profile, secure_emu_faults):
            assert secure_emu_profile == "dcc-duis-templates"
            assert secure_emu_faults == "drop=0.2,seed=4"
            assert secure_emu_world.world.profile.source == "<built-in profile dcc-duis-templates>"
            assert secure_emu_world.channel.counters.frames_sent == 0

        @pytest.mark.parametrize("secure_emu_profile", ["default", "dcc-duis-templates"])
        def test_parameter(secure_emu_world, secure_emu_profile):
            assert secure_emu_profile in secure_emu_world.world.profile.source
    """)
    run_inner(pytester).assert_outcomes(passed=3)


def test_command_line_options_point_the_fixtures_at_a_running_server(
        pytester: pytest.Pytester) -> None:
    from emulator.served import served

    pytester.makepyfile(test_user="""
        from protocol.apdu import Command, Request

        def test_external(secure_emu_tcp, secure_emu_adapter, secure_emu_profile):
            assert secure_emu_tcp.world is None  # nothing served by the fixture
            with secure_emu_tcp.client() as client:
                response = client.request(16, Request(Command.ADJUST_METER_BALANCE, 1,
                                                      {"adjustment_pence": 7}))
            assert response.body.meter_balance_pence == 1257
            assert secure_emu_profile == "dcc-duis-templates"
    """)
    with served(transport="tcp") as meters:
        result = run_inner(pytester, "--secure-emu-tcp",
                                    str(meters.address), "--secure-emu-profile",
                                    "dcc-duis-templates")
    result.assert_outcomes(passed=1)


def test_secure_emu_port_option_reaches_a_served_pty(pytester: pytest.Pytester) -> None:
    from emulator.served import served

    pytester.makepyfile(test_user="""
        from protocol.s1sp import DuisRequestBuilder

        def test_external(secure_emu_pty, secure_emu_adapter):
            assert secure_emu_pty.world is None
            response = secure_emu_adapter.submit(
                DuisRequestBuilder().read_meter_balance("00-DB-12-34-56-78-90-A1"))
            assert "<sr:MeterBalance>1250000</sr:MeterBalance>" in response
    """)
    with served(transport="pty") as meters:
        result = run_inner(pytester, "--secure-emu-port",
                                    str(meters.path))
    result.assert_outcomes(passed=1)


def test_plugin_is_registered_through_the_pytest11_entry_point() -> None:
    from importlib.metadata import entry_points

    plugins = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert plugins.get("secure_emu") == "emulator.pytest_plugin"
