"""``secure-emu://``: emulated meters behind pyserial's API, in process, with no pty or process.

``serial.serial_for_url("secure-emu://?profile=default&virtual_time=1&faults=drop=0.1;seed=3")``
returns a port whose writes go straight into a :class:`protocol.link_mux.LinkServer` over an
:class:`emulator.world.EmulatedWorld` of the profile, and whose reads return the link's
answers: code that takes a pyserial URL talks to emulated meters unchanged. URL options:

- ``profile``: a built-in profile by name (``default``, ``dcc-duis-templates``) or a TOML file
  (default: ``default``);
- ``virtual_time``: ``1`` (default) device time starts at the profile's start time and moves only
  on ADVANCE_DEVICE_TIME (or ``port.device_clock.advance_seconds``); ``0`` the system clock;
- ``faults``: an :class:`emulator.faults.FaultSpec` (``drop=0.01,corrupt=0.001,...``; inside a
  URL write ``;`` or ``%2C`` between faults if your tool splits on commas);
- ``trace``: ``1`` writes every frame both ways to stderr.

The link's timers (and any ``delay``/``stall`` fault) run on the monotonic clock, as a real
port's would: a read waits as long as its timeout says (or until a delayed answer is due).
``port.world`` and ``port.device_clock`` are there for tests to inspect. Each URL opened is its
own world. This module must never open a port or a socket.
"""

from __future__ import annotations

import sys
import threading
import urllib.parse
from typing import Any

from serial.serialutil import PortNotOpenError, SerialBase, SerialException, to_bytes

__all__ = ["Serial"]

#: Longest one wait inside a read with no timeout (it loops; the port may be closed meanwhile).
_BLOCKING_STEP_MS = 200
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _flag(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SerialException(f"secure-emu:// option {name}={text!r} must be 1 or 0")


class Serial(SerialBase):
    """An emulated world behind pyserial's ``Serial`` API."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.world: Any = None
        self.device_clock: Any = None
        self._link: Any = None
        self._link_clock: Any = None
        self._pending = bytearray()
        self._closed_event = threading.Event()
        super().__init__(*args, **kwargs)

    # -- pyserial's hooks ------------------------------------------------------------------
    def open(self) -> None:
        if self.is_open:
            raise SerialException("Port is already open.")
        if self._port is None:
            raise SerialException("Port must be configured before it can be used.")
        self._build(str(self._port))
        self._closed_event.clear()
        self.is_open = True

    def _build(self, url: str) -> None:
        from emulator.cli import profile_start_time_seconds
        from emulator.clock import SystemClock, VirtualClock
        from emulator.errors import EmulatorError
        from emulator.faults import FaultSpec, FaultSpecError, MemoryLink
        from emulator.profile import Profile
        from emulator.world import EmulatedWorld
        from protocol.clock import RealMonotonicClock
        from protocol.link_mux import LinkServer
        from protocol.trace import line_trace

        parts = urllib.parse.urlsplit(url)
        if parts.scheme.lower().replace("_", "-") != "secure-emu":
            raise SerialException(f"expected a secure-emu:// URL, not {url!r}")
        options = {"profile": "default", "virtual_time": "1", "faults": "", "trace": "0"}
        for name, values in urllib.parse.parse_qs(parts.query, keep_blank_values=True).items():
            if name not in options:
                raise SerialException(f"secure-emu:// has no option {name!r} (options: "
                                      f"{', '.join(options)})")
            options[name] = values[-1]
        try:
            profile = Profile.load(options["profile"])
            faults = FaultSpec.parse(options["faults"])
        except (EmulatorError, FaultSpecError, OSError) as error:
            raise SerialException(f"secure-emu://: {error}") from error
        if _flag("virtual_time", options["virtual_time"]):
            self.device_clock = VirtualClock(profile_start_time_seconds(profile))
        else:
            self.device_clock = SystemClock()
        self.world = EmulatedWorld(profile, self.device_clock)
        trace = None
        if _flag("trace", options["trace"]):
            trace = line_trace(lambda line: print(line, file=sys.stderr, flush=True),
                               peer="secure-emu://")
        server = LinkServer(self.world, trace=trace)
        self._link_clock = RealMonotonicClock()
        to_server, to_client = faults.plans()
        self._link = MemoryLink(server, self._link_clock, wait=self._wait_ms,
                                to_server=to_server, to_client=to_client)

    def _wait_ms(self, ms: int) -> None:
        # The only wait: the link's time passing, cut short when the port is closed.
        self._closed_event.wait(ms / 1000)

    def close(self) -> None:
        if self.is_open:
            self.is_open = False
            self._closed_event.set()
            if self._link is not None:
                self._link.close()
        super().close()

    def _reconfigure_port(self) -> None:
        """Baud rate, parity and the rest mean nothing to an in-memory link."""

    def _update_rts_state(self) -> None:
        pass

    def _update_dtr_state(self) -> None:
        pass

    def _update_break_state(self) -> None:
        pass

    @property
    def cts(self) -> bool:
        return True

    @property
    def dsr(self) -> bool:
        return True

    @property
    def ri(self) -> bool:
        return False

    @property
    def cd(self) -> bool:
        return True

    # -- bytes ---------------------------------------------------------------------------
    def _require_open(self) -> None:
        if not self.is_open:
            raise PortNotOpenError()

    @property
    def in_waiting(self) -> int:
        self._require_open()
        return len(self._pending) + self._link.pump()

    def write(self, data: Any) -> int:
        self._require_open()
        payload = to_bytes(data)
        self._link.write(payload)
        return len(payload)

    def read(self, size: int = 1) -> bytes:
        self._require_open()
        deadline_ms: int | None = None
        if self._timeout is not None:
            deadline_ms = self._link_clock.monotonic_ms() + int(self._timeout * 1000)
        while len(self._pending) < size and self.is_open:
            if self._link.pump():
                self._pending += self._link.read(size - len(self._pending), 0)
                continue
            now_ms = self._link_clock.monotonic_ms()
            if deadline_ms is not None and now_ms >= deadline_ms:
                break
            left_ms = _BLOCKING_STEP_MS if deadline_ms is None else deadline_ms - now_ms
            self._pending += self._link.read(size - len(self._pending), left_ms)
        data = bytes(self._pending[:size])
        del self._pending[:size]
        return data

    def reset_input_buffer(self) -> None:
        self._require_open()
        self._pending.clear()
        self._link.discard_input()

    def reset_output_buffer(self) -> None:
        self._require_open()

    @property
    def out_waiting(self) -> int:
        return 0
