"""Seeded link faults for users and tests: drop, corrupt, duplicate, split, delay and stall.

One implementation, used by ``serve --faults``, :func:`emulator.served.served`, the pytest
plugin, the ``secure-emu://`` pyserial URL and the project's own tests (tests/conftest.py):

- :class:`FaultPlan`: what one direction of a faulty link does to each chunk of bytes (lose
  it, flip one byte, deliver it twice, cut it in pieces), decided by its own seeded
  :class:`random.Random`, so a failing run can be replayed with the same seed.
- :class:`FaultyPipe`: one direction on a clock: chunks go in at ``now_ms`` and come out when
  due (a fixed ``delay_ms``; a ``stall`` holds everything for ``stall_ms``), in order.
- :class:`FaultSpec`: the user's text ``"drop=0.01,corrupt=0.001,duplicate=0.01,delay=20ms,
  split=1,stall=0.01:2s,seed=7"``, checked, giving the plans for both directions.
- :class:`MemoryLink`: a client-side byte transport wired straight to a sans-I/O server
  (``receive_bytes`` / ``handle_timeout``, e.g. :class:`protocol.link_mux.LinkServer`) through
  two pipes. It waits through an injected ``wait(ms)``: a virtual clock's ``advance_ms`` in
  tests, a real sleep only where a caller gives one.

This module must never do port I/O, read the wall clock or sleep on its own.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from protocol.clock import MonotonicClock

__all__ = ["FAULT_KEYS", "FaultPlan", "FaultSpec", "FaultSpecError", "FaultyPipe",
           "ManualClock", "MemoryLink", "parse_duration_ms"]

#: The keys ``--faults`` accepts, with what each does (``--help`` and the README show these).
FAULT_KEYS = {
    "drop": "probability that a chunk of bytes is lost (0..1)",
    "corrupt": "probability that one byte of a chunk is flipped (0..1)",
    "duplicate": "probability that a chunk is delivered twice (0..1)",
    "split": "1: deliver every chunk in random pieces of 1-7 bytes (no loss)",
    "delay": "fixed delay on every chunk, e.g. 20ms or 1s",
    "stall": "P:DURATION: with probability P a chunk holds the link for DURATION, e.g. 0.01:2s",
    "seed": "seed of the generator (an integer; the same seed replays the same faults)",
}

_DURATION_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


class FaultSpecError(ValueError):
    """A fault specification that cannot be used; the message names the key."""


class ManualClock:
    """Integer milliseconds that move only when told (a link clock for virtual time)."""

    def __init__(self, start_ms: int = 0) -> None:
        self.now_ms = start_ms

    def monotonic_ms(self) -> int:
        return self.now_ms

    def advance_ms(self, ms: int) -> None:
        self.now_ms += ms


@dataclass
class FaultPlan:
    """What a faulty link does to each chunk of bytes in one direction, seeded."""

    seed: int = 0
    drop_chunk: float = 0.0       # lose the whole chunk
    duplicate_chunk: float = 0.0  # deliver it twice
    corrupt_byte: float = 0.0     # flip one byte
    split: bool = False           # deliver in random pieces (no loss)
    delay_ms: int = 0             # every chunk arrives this much later
    stall_chance: float = 0.0     # a chunk stalls the link ...
    stall_ms: int = 0             # ... for this long
    rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    @property
    def is_clean(self) -> bool:
        return not (self.drop_chunk or self.duplicate_chunk or self.corrupt_byte or self.split
                    or self.delay_ms or (self.stall_chance and self.stall_ms))

    def apply(self, data: bytes) -> list[bytes]:
        """The pieces ``data`` arrives as (none when dropped)."""
        if self.rng.random() < self.drop_chunk:
            return []
        if self.rng.random() < self.corrupt_byte and data:
            index = self.rng.randrange(len(data))
            data = data[:index] + bytes((data[index] ^ 0x5A,)) + data[index + 1:]
        chunks = [data]
        if self.split and len(data) > 1:
            chunks = []
            start = 0
            while start < len(data):
                size = self.rng.randint(1, 7)
                chunks.append(data[start:start + size])
                start += size
        if self.rng.random() < self.duplicate_chunk:
            chunks = chunks + chunks
        return chunks

    def stalls(self) -> bool:
        """Whether this chunk stalls the link (draws from the generator only when stalls are
        asked for, so plans without them replay as before)."""
        return bool(self.stall_chance and self.stall_ms) and self.rng.random() < self.stall_chance


class FaultyPipe:
    """One direction of a faulty link: :meth:`send` at ``now_ms``, :meth:`receive` when due.

    Order is kept: a chunk never overtakes one sent before it."""

    def __init__(self, plan: FaultPlan | None = None) -> None:
        self.plan = plan or FaultPlan()
        self._queue: deque[tuple[int, bytes]] = deque()
        self._stalled_until_ms = 0
        self._last_due_ms = 0

    def send(self, data: bytes, now_ms: int) -> None:
        chunks = self.plan.apply(data)
        if self.plan.stalls():
            self._stalled_until_ms = now_ms + self.plan.stall_ms
        due_ms = max(now_ms + self.plan.delay_ms, self._stalled_until_ms, self._last_due_ms)
        self._last_due_ms = due_ms
        self._queue.extend((due_ms, chunk) for chunk in chunks)

    def receive(self, now_ms: int) -> list[bytes]:
        """Every chunk due by ``now_ms``, oldest first."""
        due: list[bytes] = []
        while self._queue and self._queue[0][0] <= now_ms:
            due.append(self._queue.popleft()[1])
        return due

    def next_due_ms(self) -> int | None:
        return self._queue[0][0] if self._queue else None

    def clear(self) -> None:
        self._queue.clear()


def parse_duration_ms(text: str, *, what: str = "duration") -> int:
    """``20ms``, ``2s``, ``1.5s``, ``3m``, ``1h`` (a bare number is milliseconds) -> ms."""
    from decimal import Decimal, InvalidOperation

    value = text.strip().lower()
    unit = "ms"
    for suffix in ("ms", "s", "m", "h"):
        if value.endswith(suffix):
            value, unit = value[: -len(suffix)], suffix
            break
    try:
        amount = Decimal(value) * _DURATION_UNITS_MS[unit]
    except InvalidOperation:
        raise FaultSpecError(f"{what} {text!r} is not a duration such as 20ms or 2s") from None
    if amount < 0 or amount != amount.to_integral_value():
        raise FaultSpecError(f"{what} {text!r} must be a whole number of milliseconds >= 0")
    return int(amount)


def _probability(key: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise FaultSpecError(f"faults: {key}={text!r} is not a probability (0..1)") from None
    if not 0.0 <= value <= 1.0:
        raise FaultSpecError(f"faults: {key}={text!r} must be between 0 and 1")
    return value


@dataclass(frozen=True)
class FaultSpec:
    """Faults on both directions of a link, as a user writes them (see :data:`FAULT_KEYS`).

    The direction to the devices uses ``seed``, the direction back ``seed + 1``."""

    drop: float = 0.0
    corrupt: float = 0.0
    duplicate: float = 0.0
    split: bool = False
    delay_ms: int = 0
    stall_chance: float = 0.0
    stall_ms: int = 0
    seed: int = 0

    @classmethod
    def parse(cls, text: str | None) -> FaultSpec:
        """Read ``"drop=0.01,corrupt=0.001,duplicate=0.01,delay=20ms,split=1,stall=0.01:2s,
        seed=7"`` (any subset, any order; empty means no faults)."""
        values: dict[str, Any] = {}
        for item in (text or "").replace(";", ",").split(","):
            item = item.strip()
            if not item:
                continue
            key, sep, value = item.partition("=")
            key, value = key.strip().lower(), value.strip()
            if not sep or key not in FAULT_KEYS:
                raise FaultSpecError(f"faults: {item!r} is not one of "
                                     f"{', '.join(k + '=...' for k in FAULT_KEYS)}")
            if key in ("drop", "corrupt", "duplicate"):
                values[key] = _probability(key, value)
            elif key == "split":
                if value not in ("0", "1", "true", "false", "yes", "no"):
                    raise FaultSpecError(f"faults: split={value!r} must be 0 or 1")
                values["split"] = value in ("1", "true", "yes")
            elif key == "delay":
                values["delay_ms"] = parse_duration_ms(value, what="faults: delay")
            elif key == "stall":
                chance, colon, duration = value.partition(":")
                if not colon:
                    raise FaultSpecError(f"faults: stall={value!r} must be P:DURATION, "
                                         "e.g. 0.01:2s")
                values["stall_chance"] = _probability("stall", chance)
                values["stall_ms"] = parse_duration_ms(duration, what="faults: stall")
            else:
                try:
                    values["seed"] = int(value, 10)
                except ValueError:
                    raise FaultSpecError(f"faults: seed={value!r} is not an integer") from None
        return cls(**values)

    @property
    def is_clean(self) -> bool:
        return self == FaultSpec(seed=self.seed)

    def plan(self, seed_offset: int = 0) -> FaultPlan:
        return FaultPlan(seed=self.seed + seed_offset, drop_chunk=self.drop,
                         duplicate_chunk=self.duplicate, corrupt_byte=self.corrupt,
                         split=self.split, delay_ms=self.delay_ms,
                         stall_chance=self.stall_chance, stall_ms=self.stall_ms)

    def plans(self) -> tuple[FaultPlan, FaultPlan]:
        """(towards the devices, back to the client)."""
        return self.plan(0), self.plan(1)


class MemoryLink:
    """A client-side ByteTransport wired straight to a sans-I/O server (``receive_bytes``).

    Bytes the client writes pass through the ``to_server`` pipe into the server; its answers
    pass through ``to_client`` into the client's inbox. ``read`` with nothing waiting calls
    ``wait(ms)`` for the timeout (or until the next delayed chunk is due) instead of blocking:
    with a virtual clock's ``advance_ms`` retransmission runs on virtual time.
    """

    name = "memory link"

    def __init__(self, server: Any, clock: MonotonicClock, *, wait: Callable[[int], None],
                 to_server: FaultPlan | None = None, to_client: FaultPlan | None = None) -> None:
        self.server = server
        self.clock = clock
        self._wait = wait
        self.to_server = FaultyPipe(to_server)
        self.to_client = FaultyPipe(to_client)
        self.inbox: deque[bytes] = deque()
        self.closed = False
        self.bytes_written = 0

    def write(self, data: bytes) -> None:
        self.bytes_written += len(data)
        now_ms = self.clock.monotonic_ms()
        self.to_server.send(data, now_ms)
        self._deliver(now_ms)

    def _deliver(self, now_ms: int) -> None:
        for chunk in self.to_server.receive(now_ms):
            reply = self.server.receive_bytes(chunk, now_ms)
            if reply:
                self.to_client.send(reply, now_ms)
        self.inbox.extend(self.to_client.receive(now_ms))

    def _next_due_ms(self) -> int | None:
        dues = [due for due in (self.to_server.next_due_ms(), self.to_client.next_due_ms())
                if due is not None]
        return min(dues) if dues else None

    def pump(self) -> int:
        """Deliver whatever is due now; the bytes waiting for the client."""
        self._deliver(self.clock.monotonic_ms())
        return sum(len(chunk) for chunk in self.inbox)

    def read(self, max_bytes: int, timeout_ms: int) -> bytes:
        self._deliver(self.clock.monotonic_ms())
        if not self.inbox:
            wait_ms = max(1, timeout_ms)
            due_ms = self._next_due_ms()
            if due_ms is not None:
                wait_ms = max(1, min(wait_ms, due_ms - self.clock.monotonic_ms()))
            self._wait(wait_ms)
            now_ms = self.clock.monotonic_ms()
            self._deliver(now_ms)
            reply = self.server.handle_timeout(now_ms)
            if reply:
                self.to_client.send(reply, now_ms)
                self.inbox.extend(self.to_client.receive(now_ms))
            return b""
        chunk = self.inbox.popleft()
        if len(chunk) > max_bytes:
            self.inbox.appendleft(chunk[max_bytes:])
            chunk = chunk[:max_bytes]
        return chunk

    def discard_input(self) -> None:
        self.inbox.clear()
        self.to_client.clear()

    def close(self) -> None:
        self.closed = True
