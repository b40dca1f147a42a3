"""What a kill leaves behind is dealt with at the next start, a hostile JSON state file is a
one-line StateError, and a top-up resent after a crash gets its original answer
(issue 12.9)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from emulator.clock import VirtualClock
from emulator.errors import StateError
from emulator.profile import Profile
from emulator.utrn import UtrnValueClass, make_utrn
from emulator.world import EmulatedWorld
from protocol.apdu import Command, Request, Status

ESME = bytes.fromhex("00DB1234567890A1")
DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parents[2]
FORMAT_1_PROFILE = DATA / "state_format_1_profile.toml"


def _world(path: Path, profile: Profile | None = None) -> EmulatedWorld:
    profile = profile or Profile.default()
    return EmulatedWorld(profile, VirtualClock(profile.start_device_time_seconds),
                         state_path=path)


def _killed_while(setup: str, tmp_path: Path, path: Path, profile: Path | None = None) -> None:
    """Run a world on ``path`` in a process that SIGKILLs itself where ``setup`` says."""
    script = ("import os, signal, sys\n" + setup + "\n"
              "from emulator.clock import VirtualClock\n"
              "from emulator.profile import Profile\n"
              "from emulator.world import EmulatedWorld\n"
              "profile = Profile.load(sys.argv[2]) if len(sys.argv) > 2 else Profile.default()\n"
              "EmulatedWorld(profile, VirtualClock(profile.start_device_time_seconds), "
              "state_path=sys.argv[1])\n")
    arguments = [sys.executable, "-c", script, str(path)]
    if profile is not None:
        arguments.append(str(profile))
    assert subprocess.run(arguments, cwd=REPO, check=False).returncode == -9


def test_a_state_file_killed_while_being_created_is_started_afresh_and_nothing_is_left(
        tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    _killed_while("from emulator.persistence import StateStore\n"
                  "StateStore.commit = lambda *a: os.kill(os.getpid(), signal.SIGKILL)",
                  tmp_path, path)
    world = _world(path)  # no half-made database in the way
    world.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.db"]


def test_an_import_killed_between_its_renames_is_finished_at_the_next_start(
        tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_bytes((DATA / "state_format_1.json").read_bytes())
    _killed_while("replace = os.replace\n"
                  "def killing_replace(source, target):\n"
                  "    replace(source, target)\n"
                  "    if str(target).endswith('.format1.json'):\n"
                  "        os.kill(os.getpid(), signal.SIGKILL)\n"
                  "os.replace = killing_replace",
                  tmp_path, path, FORMAT_1_PROFILE)
    assert not path.exists()  # the JSON file moved aside, the database not yet in its place
    world = _world(path, Profile.load(FORMAT_1_PROFILE))
    assert world.meter(ESME).registers.meter_balance_pence == 1212  # restored, not fresh
    world.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json",
                                                         "state.json.format1.json"]


def _format_1_with(tmp_path: Path, edit: object) -> Path:
    document = json.loads((DATA / "state_format_1.json").read_bytes())
    document["world"]["devices"][ESME.hex()]["meter"]["meter_balance_pence"] = edit
    path = tmp_path / "state.json"
    path.write_text(json.dumps(document))
    return path


def test_a_json_state_file_with_a_balance_of_ten_to_the_thirty_is_refused_in_one_line(
        tmp_path: Path) -> None:
    path = _format_1_with(tmp_path, 10**30)
    before = path.read_bytes()
    with pytest.raises(StateError, match="meter_balance_pence") as raised:
        _world(path, Profile.load(FORMAT_1_PROFILE))
    assert "\n" not in str(raised.value)
    assert path.read_bytes() == before


def test_a_deeply_nested_json_state_file_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text('{"state_format_version": ' + "[" * 200_000 + "]" * 200_000 + "}")
    with pytest.raises(StateError, match="nested") as raised:
        _world(path)
    assert "\n" not in str(raised.value)


def test_a_top_up_resent_after_a_crash_gets_its_original_answer(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    utrn = make_utrn(ESME, 1, UtrnValueClass.POUNDS, 10).encode("ascii")
    top_up = Request(Command.TOP_UP, 1, {"utrn": utrn}, idempotency_key=bytes(range(16)))
    first = _world(path).handle_request(16, top_up)  # then the process dies: no close
    assert first.ok
    restarted = _world(path)
    again = restarted.handle_request(16, top_up)
    assert again.status is Status.SUCCESS and again.fields == first.fields
    unkeyed = Request(Command.TOP_UP, 2, {"utrn": utrn})
    assert restarted.handle_request(16, unkeyed).status is Status.UTRN_DUPLICATE
    # 1250 p + 10 pounds, of which 100 p went to the payment debt: applied once
    assert first.fields["meter_balance_pence"] == 2150
    assert restarted.meter(ESME).registers.meter_balance_pence == 2150
