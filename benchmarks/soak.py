"""The fault campaign of issue 12 as a soak test anyone can run.

    python -m benchmarks.soak --seconds 60 --seed 1

Rounds of a stream of money commands (ADJUST_METER_BALANCE +1 p to the ESME, each keyed) sent
by :class:`protocol.client.DeviceClient` to a ``secure-emu serve --tcp 127.0.0.1:0
--virtual-time --state FILE`` process, each round under one kind of fault:

- ``kill``: the server is SIGKILLed at random moments and restarted on the same state;
- ``write-failure``: the server runs under a file-size limit (RLIMIT_FSIZE), so its state
  writes fail after a few commands;
- ``faulty-link``: the server's link drops, corrupts, duplicates and splits bytes
  (``serve --faults``, emulator/faults.py);
- ``hostile``: beside the good client, a client floods SNRMs and never reads, one trickles a
  frame a byte at a time, and one sends random bytes.

After a command that got no SUCCESS the client does what the E21 guidance says: it reads the
balance (on a new connection; the server restarted if it was killed), then resends the command
with its own key if it was not applied. A command reported as not sent (or refused) that the
read shows applied is applied-but-failed; a balance that differs from what the answers add up
to is lost or doubled, and at the end of each round, on a clean server, the balance must be the
round's start plus one penny per command. A good
request that takes longer than ``HUNG_SECONDS`` counts as hung. The server's resident memory
is sampled in the hostile round (start, peak, after the hostile clients left).

It prints the figures and exits 1 on any loss, double application, applied-but-failed command
or hung request. Everything runs on 127.0.0.1 and within ``--seconds`` (plus server starts, the
resends, and what a round needs for its fault to bite: at least ``MIN_COMMANDS_PER_ROUND``
commands and, in a kill round, the first kill); ``--seed`` fixes every choice the campaign
makes (kill times, fault seeds, keys, hostile bytes), while the interleaving with the server
still follows the wall clock. It kills only the processes it started.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from protocol.apdu import Command, Request, Status
from protocol.client import DeviceClient
from protocol.errors import (
    DeviceUnreachableError,
    LinkError,
    RequestOutcomeUnknownError,
    TransportError,
)
from protocol.hdlc import FrameType, HdlcFrame
from protocol.hdlc_codec import encode_frame

ESME_ADDRESS = 16
ROUND_KINDS = ("kill", "write-failure", "faulty-link", "hostile")
#: A good request slower than this is hung (DeviceClient gives up well before: about 1.2 s).
HUNG_SECONDS = 5.0
#: Headroom RLIMIT_FSIZE leaves above the state file's size in a write-failure round.
WRITE_HEADROOM_BYTES = 40 * 1024
#: The balance is reset before a round that would start above this (max balance is 25000 p;
#: a 10 s round adds about 6000 p on this machine).
RESET_ABOVE_PENCE = 5_000
KILLS_PER_ROUND = 2
#: A round sends at least this many commands (a write-failure round's writes fail by then)...
MIN_COMMANDS_PER_ROUND = 12
#: ... and goes on at most this long past its time to let its fault bite.
MAX_OVERRUN_SECONDS = 20.0


@dataclass
class Figures:
    """What the campaign counted."""

    rounds: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ROUND_KINDS, 0))
    #: attempts not answered SUCCESS, by the fault of the round (evidence it bit)
    not_answered: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(ROUND_KINDS, 0))
    commands: int = 0
    succeeded: int = 0
    outcome_unknown: int = 0
    nothing_sent: int = 0
    refused: int = 0
    lost: int = 0
    doubled: int = 0
    applied_but_failed: int = 0
    hung: int = 0
    kills: int = 0
    rss_kib: tuple[int, int, int] | None = None  # hostile round: start, peak, after

    @property
    def failed(self) -> bool:
        return bool(self.lost or self.doubled or self.applied_but_failed or self.hung)

    def report(self) -> str:
        memory = ("not measured" if self.rss_kib is None else
                  "start {}, peak {}, after the hostile clients left {}".format(*self.rss_kib))
        rounds = ", ".join(f"{kind} {count}" for kind, count in self.rounds.items())
        bitten = ", ".join(f"{kind} {count}" for kind, count in self.not_answered.items())
        return "\n".join([
            f"rounds: {rounds}",
            f"commands {self.commands}: succeeded {self.succeeded}, outcome unknown "
            f"{self.outcome_unknown}, nothing sent {self.nothing_sent}, refused "
            f"{self.refused} (each read, then resent with its key if not applied)",
            f"attempts not answered SUCCESS, by fault: {bitten}",
            f"lost {self.lost}, doubled {self.doubled}, applied-but-failed "
            f"{self.applied_but_failed}, hung {self.hung}",
            f"kills {self.kills} (SIGKILL, restarted on the same state)",
            f"memory (server RSS, KiB, hostile round): {memory}",
        ])


class Server:
    """One ``secure-emu serve`` process on 127.0.0.1 (this campaign's own child)."""

    def __init__(self, state: Path, *, faults: str | None = None,
                 file_size_limit: int | None = None) -> None:
        command = [sys.executable, "-m", "emulator.cli", "serve", "--tcp", "127.0.0.1:0",
                   "--virtual-time", "--state", str(state)]
        if faults is not None:
            command += ["--faults", faults]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            preexec_fn=None if file_size_limit is None else _limit_file_size(file_size_limit))
        assert self.process.stdout is not None
        self.address = self.process.stdout.readline().decode().strip()
        if not self.address.startswith("127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"secure-emu serve did not start (it printed {self.address!r})")

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def client(self) -> DeviceClient:
        return DeviceClient.open(tcp=self.address, retransmit_timeout_ms=200,
                                 max_retransmissions=3)

    def rss_kib(self) -> int:
        with open(f"/proc/{self.process.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def kill(self) -> None:
        if self.alive:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        assert self.process.stdout is not None
        self.process.stdout.close()


def _limit_file_size(limit_bytes: int) -> Callable[[], None]:
    def limit() -> None:  # in the child, before exec: writes past the limit fail with EFBIG
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return limit


def _adjust(rng: random.Random) -> Request:
    return Request(Command.ADJUST_METER_BALANCE, 0, {"adjustment_pence": 1},
                   idempotency_key=rng.randbytes(16))


def _until_answered(server: Server, request: Request, attempts: int = 10) -> int:
    """Send ``request`` (resending it as it is, key included) until a response comes; the
    balance it reports (or -1 for a refusal)."""
    for _ in range(attempts):
        try:
            with server.client() as client:
                response = client.request(ESME_ADDRESS, request)
        except (LinkError, TransportError):
            continue
        if response.status is not Status.SUCCESS:
            return -1
        return int(response.fields.get("meter_balance_pence", -1))
    raise RuntimeError(f"a clean server did not answer {request.command.name} in {attempts} "
                       "attempts")


def _balance(server: Server) -> int:
    return _until_answered(server, Request(Command.READ_METER_BALANCE, 0))


# ---- hostile clients ------------------------------------------------------------------------


@contextlib.contextmanager
def _hostile_clients(address: str, rng: random.Random) -> Iterator[None]:
    """A flooder that never reads, a client trickling a frame a byte at a time, and one
    sending random bytes, each on its own connection (reconnecting when dropped)."""
    host, port_text = address.rsplit(":", 1)
    target = (host, int(port_text))
    snrm = encode_frame(HdlcFrame.make(FrameType.SNRM, 1, 0x3F))
    noise = random.Random(rng.getrandbits(64))
    stop = threading.Event()

    def connected(receive_buffer: int | None = None) -> socket.socket:
        sock = socket.socket()
        if receive_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.settimeout(0.2)
        sock.connect(target)
        return sock

    def flood() -> None:
        burst = snrm * 2000
        while not stop.is_set():
            with contextlib.suppress(OSError), connected(4096) as sock:
                while not stop.is_set():
                    with contextlib.suppress(socket.timeout):
                        sock.sendall(burst)

    def trickle() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError), connected() as sock:
                for byte in snrm:
                    if stop.wait(0.02):
                        return
                    sock.sendall(bytes((byte,)))
                with contextlib.suppress(socket.timeout):
                    sock.recv(4096)

    def random_bytes() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError), connected() as sock:
                for _ in range(200):
                    if stop.is_set():
                        return
                    sock.sendall(noise.randbytes(noise.randint(1, 512)))
                    with contextlib.suppress(socket.timeout, BlockingIOError):
                        sock.recv(65536, socket.MSG_DONTWAIT)

    threads = [threading.Thread(target=work, daemon=True) for work in (flood, trickle,
                                                                       random_bytes)]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)


# ---- one round ----------------------------------------------------------------------------


class Round:
    """The stream of commands under one kind of fault, then the check on a clean server."""

    def __init__(self, kind: str, state: Path, rng: random.Random, figures: Figures,
                 seconds: float) -> None:
        self.kind, self.state, self.rng, self.figures = kind, state, rng, figures
        self.seconds = seconds
        self.unresolved: list[Request] = []
        self.sent = 0
        self.balance = 0
        self.kills_left = KILLS_PER_ROUND if kind == "kill" else 0
        self.kills_before = figures.kills
        self.killer: threading.Timer | None = None

    def _start(self) -> Server:
        if self.kind == "faulty-link":
            return Server(self.state, faults=f"drop=0.03,corrupt=0.01,duplicate=0.03,split=1,"
                                             f"seed={self.rng.randrange(1 << 30)}")
        if self.kind == "write-failure":
            size = max((self.state.stat().st_size, 32 * 1024))
            return Server(self.state, file_size_limit=size + WRITE_HEADROOM_BYTES)
        server = Server(self.state)
        if self.kills_left:
            self.kills_left -= 1
            self.killer = threading.Timer(self.rng.uniform(0.1, 0.6) * self.seconds,
                                          server.kill)
            self.killer.start()
        return server

    def run(self) -> None:
        figures = self.figures
        figures.rounds[self.kind] += 1
        server = Server(self.state)  # clean: the round's starting balance
        start_pence = _balance(server)
        if start_pence > RESET_ABOVE_PENCE:
            start_pence = _until_answered(server, Request(Command.RESET_METER_BALANCE, 0,
                                                          idempotency_key=self.rng.randbytes(16)))
        if self.kind != "hostile":
            server.stop()
            server = self._start()
        hostile = (_hostile_clients(server.address, self.rng) if self.kind == "hostile"
                   else contextlib.nullcontext())
        rss_start = server.rss_kib()
        rss_peak = rss_start
        with hostile:
            server = self._stream(server, start_pence)
            rss_peak = max(rss_peak, server.rss_kib()) if server.alive else rss_peak
        if self.kind == "hostile" and server.alive:
            time.sleep(0.2)  # the server notices the hostile connections closing
            figures.rss_kib = (rss_start, rss_peak, server.rss_kib())
        if self.killer is not None:
            self.killer.cancel()
        if self.kind in ("faulty-link", "write-failure") or not server.alive:
            if server.alive:
                server.stop()
            else:
                server.kill()
                server.stop()
            server = Server(self.state)
        try:
            self._check(server, start_pence)
        finally:
            server.stop()

    def _stream(self, server: Server, start_pence: int) -> Server:
        """Commands until the round's time is up. After a command that got no SUCCESS, the
        balance is read (on a new connection, the server restarted if it was killed) before
        anything else is sent: moved by one penny, the command was applied (which a command
        reported as not sent, or refused, must not have been); unmoved, it is resent with its
        key at once (or, in a write-failure round, once writes work again)."""
        figures = self.figures
        self.balance = start_pence  # what the balance is, as far as the client knows
        deadline = time.monotonic() + self.seconds
        server, client = self._reconnect(server)
        try:
            while self._going_on(deadline):
                request = _adjust(self.rng)
                self.sent += 1
                figures.commands += 1
                unknown_once = False  # an attempt of this command had an unknown outcome
                while True:
                    failure = self._send(client, request)
                    if failure is None:
                        break
                    unknown_once = unknown_once or failure == "outcome unknown"
                    figures.not_answered[self.kind] += 1
                    server, client, read = self._read_anew(server, client)
                    if read == self.balance + 1:  # applied, though unanswered
                        figures.applied_but_failed += not unknown_once
                        self.balance = read
                        break
                    self._account(read)
                    if self.kind == "write-failure":  # writes fail until the round ends
                        self.unresolved.append(request)
                        break
        finally:
            client.close()
        return server

    def _going_on(self, deadline: float) -> bool:
        """Until the round's time is up, and the fault has had its chance: at least
        ``MIN_COMMANDS_PER_ROUND`` commands, and in a kill round the first kill (within
        ``MAX_OVERRUN_SECONDS`` past the deadline)."""
        now = time.monotonic()
        if now >= deadline + MAX_OVERRUN_SECONDS:
            return False
        return (now < deadline or self.sent < MIN_COMMANDS_PER_ROUND
                or (self.kind == "kill" and self.figures.kills == self.kills_before))

    def _send(self, client: DeviceClient, request: Request) -> str | None:
        """None once the device answered SUCCESS, else what went wrong."""
        figures = self.figures
        started = time.monotonic()
        try:
            response = client.request(ESME_ADDRESS, request)
        except RequestOutcomeUnknownError:
            figures.outcome_unknown += 1
            return "outcome unknown"
        except DeviceUnreachableError:
            figures.nothing_sent += 1
            return "nothing sent"
        finally:
            if time.monotonic() - started > HUNG_SECONDS:
                figures.hung += 1
        if response.status is not Status.SUCCESS:
            figures.refused += 1
            return "refused"
        figures.succeeded += 1
        self._account(int(response.fields["meter_balance_pence"]) - 1)
        self.balance += 1
        return None

    def _read_anew(self, server: Server, client: DeviceClient
                   ) -> tuple[Server, DeviceClient, int]:
        """The balance, read on a new connection (reconnecting until a read is answered)."""
        for _ in range(20):
            client.close()
            server, client = self._reconnect(server)
            try:
                response = client.request(ESME_ADDRESS, Request(Command.READ_METER_BALANCE, 0))
            except LinkError:
                continue
            if response.ok:
                return server, client, int(response.fields["meter_balance_pence"])
        raise RuntimeError(f"the server at {server.address} answers no READ_METER_BALANCE")

    def _account(self, balance_before_pence: int) -> None:
        """The device's balance before the next command should be what the client knows."""
        difference = balance_before_pence - self.balance
        self.figures.doubled += max(0, difference)
        self.figures.lost += max(0, -difference)
        self.balance = balance_before_pence

    def _reconnect(self, server: Server) -> tuple[Server, DeviceClient]:
        """A new connection; a server that was killed (or dies meanwhile) is restarted on the
        same state first."""
        for _ in range(3):
            if server.alive:
                try:
                    return server, server.client()
                except TransportError:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        server.process.wait(2)  # a kill on its way
            if not server.alive:
                server.stop()
                self.figures.kills += 1
                server = self._start()
        raise RuntimeError(f"cannot reconnect to the server at {server.address}")

    def _check(self, server: Server, start_pence: int) -> None:
        """On a clean server: what the client knows is on the device, the commands held back
        are resent with their keys, and the balance is the start plus a penny a command."""
        self._account(_balance(server))
        for request in self.unresolved:
            _until_answered(server, request)
        difference = _balance(server) - (start_pence + self.sent)
        self.figures.doubled += max(0, difference)
        self.figures.lost += max(0, -difference)


def run_campaign(seconds: float, seed: int, work_dir: Path | None = None) -> Figures:
    """Rounds of every kind in turn (shuffled by the seed) until ``seconds`` have gone."""
    rng = random.Random(seed)
    figures = Figures()
    with contextlib.ExitStack() as stack:
        if work_dir is None:
            work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(
                prefix="secure-emu-soak-")))
        state = work_dir / "soak-state.db"
        kinds = list(ROUND_KINDS)
        rng.shuffle(kinds)
        round_seconds = max(0.5, min(10.0, seconds / len(ROUND_KINDS)))
        deadline = time.monotonic() + seconds
        index = 0
        while index < len(kinds) or time.monotonic() < deadline:
            Round(kinds[index % len(kinds)], state, rng, figures, round_seconds).run()
            index += 1
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="how long to run (at least one round of each fault is run)")
    parser.add_argument("--seed", type=int, default=1, help="seed of every choice made")
    arguments = parser.parse_args(argv)
    started = time.monotonic()
    figures = run_campaign(arguments.seconds, arguments.seed)
    print(f"soak: seed {arguments.seed}, {time.monotonic() - started:.1f} s, "
          f"pid {os.getpid()}")
    print(figures.report())
    print("FAILED: lost, doubled, applied-but-failed or hung" if figures.failed else "ok")
    return 1 if figures.failed else 0


if __name__ == "__main__":
    sys.exit(main())
