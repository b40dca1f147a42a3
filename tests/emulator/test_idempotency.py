"""Keyed requests are applied exactly once: a resend gets the stored response and changes
nothing, across a restart too, and across a server killed (SIGKILL) at any point: in process,
and through the real link to a `secure-emu serve` process with DeviceClient resending what was
left unanswered over a new connection."""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from emulator.clock import VirtualClock
from emulator.profile import Profile
from emulator.utrn import UtrnValueClass, make_utrn
from emulator.world import EmulatedWorld
from protocol.apdu import Command, Request, Status, decode_apdu, encode_request
from protocol.client import DeviceClient
from protocol.errors import DeviceUnreachableError, RequestOutcomeUnknownError

ESME = bytes.fromhex("00DB1234567890A1")
KEY = bytes(range(16))
REPO = Path(__file__).resolve().parents[2]


def _world(path: Path | None = None) -> EmulatedWorld:
    profile = Profile.default()
    return EmulatedWorld(profile, VirtualClock(profile.start_device_time_seconds),
                         state_path=path)


def _adjust(invoke_id: int, pence: int, key: bytes | None = KEY) -> Request:
    return Request(Command.ADJUST_METER_BALANCE, invoke_id, {"adjustment_pence": pence},
                   idempotency_key=key)


def _balance(world: EmulatedWorld) -> int:
    return world.meter(ESME).registers.meter_balance_pence


def test_a_resent_keyed_request_gets_the_stored_response_and_changes_nothing() -> None:
    world = _world()
    first = world.handle_request(16, _adjust(1, 250))
    again = world.handle_request(16, _adjust(2, 250))
    assert first.fields == {"adjustment_applied_pence": 250, "meter_balance_pence": 1500}
    assert again.invoke_id == 2 and again.status is Status.SUCCESS
    assert again.fields == first.fields
    assert _balance(world) == 1500
    # without a key the same request is applied again
    world.handle_request(16, _adjust(3, 250, key=None))
    assert _balance(world) == 1750


def test_a_key_used_again_for_another_request_is_refused_and_changes_nothing() -> None:
    world = _world()
    world.handle_request(16, _adjust(1, 250))
    reused = world.handle_request(16, _adjust(2, 100))
    assert reused.status is Status.IDEMPOTENCY_KEY_REUSED
    assert _balance(world) == 1500


def test_a_refusal_is_remembered_like_a_success() -> None:
    world = _world()
    utrn = make_utrn(ESME, 1, UtrnValueClass.POUNDS, 10).encode("ascii")
    plain = world.handle_request(16, Request(Command.TOP_UP, 1, {"utrn": utrn}))
    assert plain.ok
    balance = _balance(world)
    keyed = Request(Command.TOP_UP, 2, {"utrn": utrn}, idempotency_key=KEY)
    assert world.handle_request(16, keyed).status is Status.UTRN_DUPLICATE
    assert world.handle_request(16, keyed).status is Status.UTRN_DUPLICATE
    assert _balance(world) == balance


def test_a_device_keeps_its_last_64_keys_and_forgets_the_oldest() -> None:
    world = _world()
    keys = [index.to_bytes(16, "big") for index in range(65)]
    for index, key in enumerate(keys):
        assert world.handle_request(16, _adjust(index, 1, key)).ok
    assert _balance(world) == 1250 + 65
    world.handle_request(16, _adjust(100, 1, keys[1]))  # still held: not applied again
    assert _balance(world) == 1250 + 65
    world.handle_request(16, _adjust(101, 1, keys[0]))  # dropped: applied again
    assert _balance(world) == 1250 + 66


def test_keys_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    world = _world(path)
    first = world.handle_request(16, _adjust(1, 250))
    world.close()
    restarted = _world(path)
    again = restarted.handle_request(16, _adjust(2, 250))
    assert again.fields == first.fields and _balance(restarted) == 1500


def test_keys_on_different_devices_are_independent() -> None:
    world = _world()
    world.handle_request(16, _adjust(1, 250))
    gsme = world.handle_request(17, _adjust(2, 250))
    assert gsme.ok and world.meter(bytes.fromhex("00DB1234567890A2")).registers \
        .meter_balance_pence == gsme.body.meter_balance_pence


# ---- a server killed at random points ----------------------------------------------------------

#: What both killing servers share: ``killing_commit``, which they put in place of
#: StateStore.commit, SIGKILLs the process at commit number ``kill_at``, before or after
#: writing (``point``).
KILLING_COMMIT = r"""
import os, signal, sys
from emulator.persistence import StateStore

path, kill_at, point = sys.argv[1], int(sys.argv[2]), sys.argv[3]
commits = 0
commit = StateStore.commit

def killing_commit(store, world_row, records):
    global commits
    commits += 1
    if commits == kill_at and point == "before-commit":
        os.kill(os.getpid(), signal.SIGKILL)
    written = commit(store, world_row, records)
    if commits == kill_at and point == "after-commit":
        os.kill(os.getpid(), signal.SIGKILL)
    return written
"""
#: The server: the default profile's world on a state file, APDUs for the ESME on stdin and
#: answers on stdout (2-byte length first). It kills itself with SIGKILL at the commit and the
#: point named on its command line: before the commit, after it (before the answer leaves), or
#: after the answer left.
SERVER = KILLING_COMMIT + r"""
from emulator.clock import VirtualClock
from emulator.profile import Profile
from emulator.world import EmulatedWorld

profile = Profile.default()
world = EmulatedWorld(profile, VirtualClock(profile.start_device_time_seconds), state_path=path)
StateStore.commit = killing_commit
stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
while len(head := stdin.read(2)) == 2:
    answer = world.handle_apdu(16, stdin.read(int.from_bytes(head, "big")))
    stdout.write(len(answer).to_bytes(2, "big") + answer)
    stdout.flush()
    if commits == kill_at and point == "after-answer":
        os.kill(os.getpid(), signal.SIGKILL)
"""
KILL_POINTS = ("before-commit", "after-commit", "after-answer")
SEEDS = int(os.environ.get("SECURE_EMU_KILL_SEEDS", "4"))


class _Server:
    def __init__(self, path: Path, kill_at: int, point: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(path), str(kill_at), point],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO)

    def request(self, apdu: bytes) -> bytes | None:
        """The answer, or None if the server died first."""
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.write(len(apdu).to_bytes(2, "big") + apdu)
            self.process.stdin.flush()
        except BrokenPipeError:
            return None
        head = self.process.stdout.read(2)
        if len(head) < 2:
            return None
        return self.process.stdout.read(int.from_bytes(head, "big"))

    def stop(self) -> int:
        assert self.process.stdin is not None and self.process.stdout is not None
        with contextlib.suppress(BrokenPipeError):
            self.process.stdin.close()
        self.process.stdout.close()
        return self.process.wait()


@pytest.mark.parametrize("seed", range(SEEDS))
def test_a_server_killed_at_random_points_applies_every_command_exactly_once(
        tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    path = tmp_path / "state.db"
    commands: list[Request] = []
    for index in range(12):
        key = rng.randbytes(16)
        if rng.random() < 0.3:
            pounds = rng.randint(1, 5)
            utrn = make_utrn(ESME, index + 1, UtrnValueClass.POUNDS, pounds).encode("ascii")
            commands.append(Request(Command.TOP_UP, index, {"utrn": utrn}, idempotency_key=key))
        else:
            commands.append(_adjust(index, rng.randint(-200, 400), key))
    once = _world()  # every command applied once, nothing killed
    for request in commands:
        assert once.handle_request(16, request).ok
    kills: list[str] = []

    def start() -> _Server:
        if len(kills) < 3:  # the first kill falls between a commit and its answer
            point = rng.choice(KILL_POINTS) if kills else "after-commit"
            kills.append(point)
            return _Server(path, rng.randint(1, 4), point)
        return _Server(path, 0, "never")

    server = start()
    for request in commands:
        apdu = encode_request(request)
        while (answer := server.request(apdu)) is None:  # died: restart and resend
            assert server.stop() == -9
            server = start()
        response = decode_apdu(answer)
        assert response.status is Status.SUCCESS, response
    server.stop()
    restarted = _world(path)
    assert _balance(restarted) == _balance(once)
    assert restarted.to_state() == once.to_state()  # UTRN counters, debts: nothing doubled


# ---- the same through the real link: `secure-emu serve` killed, DeviceClient resending --------

#: `secure-emu serve --tcp 127.0.0.1:0 --virtual-time --state PATH` run by emulator.cli.main,
#: with a SIGKILL at the commit named on its command line (before or after the commit).
KILLING_SERVE = KILLING_COMMIT + r"""
from emulator.cli import main

StateStore.commit = killing_commit
sys.exit(main(["serve", "--tcp", "127.0.0.1:0", "--virtual-time", "--state", path]))
"""
SERVE_KILL_SEEDS = int(os.environ.get("SECURE_EMU_SERVE_KILL_SEEDS", "3"))


class _ServeProcess:
    def __init__(self, path: Path, kill_at: int, point: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", KILLING_SERVE, str(path), str(kill_at), point],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO)
        assert self.process.stdout is not None
        self.address = self.process.stdout.readline().decode().strip()
        assert self.address.startswith("127.0.0.1:"), self.address

    def client(self) -> DeviceClient:
        return DeviceClient.open(tcp=self.address, retransmit_timeout_ms=300,
                                 max_retransmissions=2)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        code = self.process.wait(10)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return code


@pytest.mark.parametrize("seed", range(SERVE_KILL_SEEDS))
def test_secure_emu_serve_killed_at_random_points_with_device_client_resending_applies_each_once(
        tmp_path: Path, seed: int) -> None:
    rng = random.Random(1000 + seed)
    path = tmp_path / "state.db"
    commands: list[Request] = []  # no keys: DeviceClient gives each its own
    for index in range(10):
        if rng.random() < 0.3:
            utrn = make_utrn(ESME, index + 1, UtrnValueClass.POUNDS, rng.randint(1, 5))
            commands.append(Request(Command.TOP_UP, index, {"utrn": utrn.encode("ascii")}))
        else:
            commands.append(_adjust(index, rng.randint(-200, 400), key=None))
    once = _world()
    for request in commands:
        assert once.handle_request(16, request).ok
    _world(path).close()  # the state file exists: every commit counted is a request's
    plan = ["after-commit", rng.choice(("before-commit", "after-commit", "after-answer"))]
    kills: list[str] = []
    answers_left: list[int] = []  # after-answer: answers this server gives before its kill

    def start() -> _ServeProcess:
        point = plan[len(kills)] if len(kills) < len(plan) else "never"
        kills.append(point)
        answers_left[:] = [rng.randint(1, 3)] if point == "after-answer" else []
        kill_at = rng.randint(1, 3) if point.endswith("-commit") else 0
        return _ServeProcess(path, kill_at, point)

    server = start()
    client = server.client()
    outcomes_unknown = 0
    for request in commands:
        pending = request
        while True:
            try:
                response = client.request(16, pending)
                break
            except RequestOutcomeUnknownError as error:  # sent, no answer: resend it, same key
                outcomes_unknown += 1
                assert isinstance(error.request, Request)
                pending = error.request
            except DeviceUnreachableError:  # nothing sent: sending it again is safe anyway
                pass
            client.close()
            assert server.stop() == -9
            server = start()
            client = server.client()
        assert response.status is Status.SUCCESS, response
        if answers_left:
            answers_left[0] -= 1
            if answers_left[0] == 0:  # killed between an answer and the next request
                server.process.kill()
                server.process.wait(10)
    client.close()
    server.stop()
    assert outcomes_unknown >= 1  # the first kill falls after a commit: its answer is lost
    restarted = _world(path)
    assert _balance(restarted) == _balance(once)  # 0 lost, 0 doubled
    assert restarted.to_state()["devices"][ESME.hex()]["meter"] \
        == once.to_state()["devices"][ESME.hex()]["meter"]  # UTRN counters, debts too
