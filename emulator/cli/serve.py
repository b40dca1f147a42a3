"""``secure-emu serve``: the profile's devices served on a pty, a serial port or TCP until
Ctrl-C or SIGTERM, state saved; logs and trace through sinks that never block serving.

Every serve option is added in ``add_parser`` (one place). This module wires the parts together
(profile, clock, world, ``emulator.serve.ServeLoop``, ports, signals, sinks) and must hold no
protocol or device logic of its own, nor do port I/O except through ``protocol/transport.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from emulator.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    add_management_password,
    management_password,
    out,
    positive_int,
)

__all__ = ["add_parser", "profile_start_time_seconds", "run"]

_LOGGER = logging.getLogger("secure_emu.cli")


def add_parser(subcommands: Any) -> None:
    """The ``serve`` subcommand and every one of its options."""
    from emulator.serve import DEFAULT_BUSY_POLL_US, DEFAULT_MAX_CONNECTIONS

    serve = subcommands.add_parser("serve", help="serve the profile's devices on a port")
    where = serve.add_mutually_exclusive_group(required=True)
    where.add_argument("--pty", action="store_true",
                       help="create a pty pair; the first line of output is the client path")
    where.add_argument("--port", metavar="DEVICE_OR_URL", help="serve on a serial port or URL")
    where.add_argument("--tcp", metavar="HOST:PORT",
                       help="listen on TCP (port 0 picks a free port; printed first)")
    serve.add_argument("--baudrate", type=positive_int, default=9600,
                       help="baud rate of the serial port given with --port (default 9600; "
                            "ptys and TCP ignore it)")
    serve.add_argument("--profile", type=Path,
                       help="device profile (TOML file), or a built-in one by name: "
                            "default, dcc-duis-templates")
    serve.add_argument("--state", type=Path, help="state file: resumed if present, kept saved")
    serve.add_argument("--trace", action="store_true",
                       help="print every frame both ways (on stdout, or to --trace-file)")
    serve.add_argument("--trace-file", type=Path, metavar="FILE",
                       help="append the --trace lines to FILE instead of stdout "
                            "(implies --trace)")
    serve.add_argument("--log-file", type=Path, metavar="FILE",
                       help="append log lines to FILE instead of stderr")
    serve.add_argument("--max-connections", type=positive_int, metavar="N",
                       default=DEFAULT_MAX_CONNECTIONS,
                       help="TCP clients served at once; more are accepted and closed at once "
                            "(default %(default)s)")
    serve.add_argument("--virtual-time", action="store_true",
                       help="device time starts at the profile's start time and moves only "
                            "on ADVANCE_DEVICE_TIME (secure-emu advance); without it "
                            "ADVANCE_DEVICE_TIME is refused")
    add_management_password(serve, "ADVANCE_DEVICE_TIME must carry (overrides the profile's "
                                   "[world] management_password)")
    # --faults and --link: the faults and the link of emulator/faults.py and emulator/served.py
    serve.add_argument("--faults", metavar="SPEC", type=_fault_spec, help=_faults_help())
    serve.add_argument("--link", type=Path, metavar="PATH",
                       help="with --pty: a symlink PATH to the pty, printed instead of the pty "
                            "path and removed on exit (like socat's link=)")
    serve.add_argument("--busy-poll-us", type=positive_int, metavar="US",
                       help="after any input, look for more without sleeping for this many "
                            "microseconds (lower latency per request, paid in CPU); 0 never "
                            f"does (default: {DEFAULT_BUSY_POLL_US} where more than one CPU is "
                            "usable, else 0)")
    serve.add_argument("--addressing", choices=("flat", "dlms"), default="flat",
                       help="how server addresses are read: flat numbers (default), or "
                            "IEC 62056-46 logical/physical pairs for DLMS clients")
    serve.set_defaults(handler=run)


def _faults_help() -> str:
    from emulator.faults import FAULT_KEYS

    keys = "; ".join(f"{key}: {meaning}" for key, meaning in FAULT_KEYS.items())
    return ("seeded faults on the served link, comma-separated, e.g. "
            "drop=0.01,corrupt=0.001,duplicate=0.01,delay=20ms,split=1,"
            f"stall=0.01:2s,seed=7 ({keys})")


def _fault_spec(text: str) -> Any:
    from emulator.faults import FaultSpec, FaultSpecError

    try:
        return FaultSpec.parse(text)
    except FaultSpecError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


def run(arguments: argparse.Namespace) -> int:
    from emulator.log_output import serve_logging
    from protocol.transport import raise_descriptor_limit

    _check_arguments(arguments)
    world = _start_world(arguments)
    # Logs and trace go through sinks written by threads of their own: a reader that stops
    # reading (or goes away) never blocks or stops the serving loop.
    log_sink = _open_sink(arguments.log_file, sys.stderr, "log")
    trace_sink = (_open_sink(arguments.trace_file, sys.stdout, "trace")
                  if arguments.trace or arguments.trace_file else None)
    handler = serve_logging(log_sink)
    cleanups: list[Callable[[], None]] = []
    try:
        # one descriptor per client, and a margin for the ports, files and pipes
        raise_descriptor_limit(arguments.max_connections + 64)
        _serve_until_stopped(world, arguments, trace_sink, cleanups)
        dropped = log_sink.dropped_lines + (trace_sink.dropped_lines if trace_sink else 0)
        _LOGGER.info("stopped%s%s", f"; state saved to {arguments.state}" if arguments.state
                     else "", f"; {dropped} log or trace lines dropped" if dropped else "")
    finally:
        for cleanup in cleanups:
            cleanup()
        logging.getLogger("secure_emu").removeHandler(handler)
        for sink in (trace_sink, log_sink):
            if sink is not None:
                sink.close()
    return EXIT_OK


def _check_arguments(arguments: argparse.Namespace) -> None:
    if arguments.link is not None and not arguments.pty:
        raise CliError("secure-emu serve: --link needs --pty", EXIT_USAGE)
    if arguments.max_connections < 1:
        raise CliError("secure-emu serve: --max-connections must be at least 1", EXIT_USAGE)


def _start_world(arguments: argparse.Namespace) -> Any:
    """The profile's devices on the system clock, or on a virtual one (``--virtual-time``),
    resumed from ``--state`` when it exists."""
    from emulator.clock import SystemClock, VirtualClock
    from emulator.errors import EmulatorError
    from emulator.management import ManagementPolicy
    from emulator.world import EmulatedWorld

    profile = _load_profile(arguments.profile)
    clock: Any
    if arguments.virtual_time:
        clock = VirtualClock(profile_start_time_seconds(profile))
    else:
        clock = SystemClock()
    management = ManagementPolicy(
        password=management_password(arguments) or profile.management_password,
        time_travel_allowed=arguments.virtual_time)
    try:
        return EmulatedWorld(profile, clock, state_path=arguments.state, management=management)
    except (EmulatorError, OSError) as error:
        raise CliError(f"secure-emu: cannot start the devices: {error}") from None


def _serve_until_stopped(world: Any, arguments: argparse.Namespace, trace_sink: Any,
                         cleanups: list[Callable[[], None]]) -> None:
    from emulator.serve import ServeLoop, default_busy_poll_us
    from protocol.clock import RealMonotonicClock
    from protocol.hdlc import Addressing

    loop = ServeLoop(world, RealMonotonicClock(),
                     advance_interval_ms=None if arguments.virtual_time else 1000,
                     trace_line=trace_sink.put if trace_sink is not None else None,
                     max_connections=arguments.max_connections,
                     addressing=Addressing(arguments.addressing),
                     busy_poll_us=(default_busy_poll_us() if arguments.busy_poll_us is None
                                   else arguments.busy_poll_us))
    # Handlers go in before the port is announced: a client (or a test) may send SIGTERM
    # the moment it reads the first line, and that must still stop cleanly, state saved.
    previous = _install_stop_handlers(loop.stop_from_signal)
    try:
        _open_where(loop, arguments, cleanups)
        addresses = _describe_addresses(sorted(world.server_addresses()))
        stopping = ("Ctrl-C or SIGTERM stops and saves state to " + str(arguments.state)
                    if arguments.state else "Ctrl-C or SIGTERM stops")
        _LOGGER.info("serving server addresses %s; %s", addresses, stopping)
        loop.run()
    finally:
        _restore_handlers(previous)


def _open_where(loop: Any, arguments: argparse.Namespace,
                cleanups: list[Callable[[], None]]) -> None:
    """Hand ``loop`` the pty, TCP listener or serial port asked for; announce it."""
    from protocol.transport import PtyPair, TcpListener, TransportError, open_port, parse_host_port

    try:
        if arguments.pty:
            pair = PtyPair()
            loop.add_stream(_with_faults(pair.server, arguments), name="pty")
            _announce(_pty_link(pair.client_path, arguments, cleanups))
        elif arguments.tcp is not None:
            host, port = parse_host_port(arguments.tcp)
            listener = TcpListener(host, port)
            loop.add_listener(_with_faults(listener, arguments))
            _announce(listener.address)
            if not _is_loopback(listener.host):
                _LOGGER.warning("listening on %s, not a loopback address: any host that "
                                "reaches it can read and change every device (there is no "
                                "access control)", listener.address)
        else:
            loop.add_stream(open_port(arguments.port, baudrate=arguments.baudrate),
                            name=arguments.port)
            _announce(arguments.port)
    except TransportError as error:
        raise CliError(f"secure-emu: {error}") from None


# --------------------------------------------------------------------------------------------
# The pieces
# --------------------------------------------------------------------------------------------


def _load_profile(path: Path | None) -> Any:
    from emulator.errors import EmulatorError
    from emulator.profile import BUILT_IN_PROFILES, Profile

    if path is None:
        return Profile.default()
    if not path.exists() and str(path) not in BUILT_IN_PROFILES:
        raise CliError(f"secure-emu: profile {path} does not exist (nor is it a built-in "
                       f"profile: {', '.join(BUILT_IN_PROFILES)})")
    try:
        return Profile.load(path)
    except (EmulatorError, OSError, ValueError) as error:
        message = str(error)
        if str(path) not in message:
            message = f"profile {path}: {message}"
        raise CliError(f"secure-emu: {message}") from None


def profile_start_time_seconds(profile: Any) -> int:
    """The profile's start device time (virtual time starts there)."""
    for name in ("start_device_time_seconds", "world_start_device_time_seconds"):
        value = getattr(profile, name, None)
        if isinstance(value, int):
            return value
    world = getattr(profile, "world", None)
    value = getattr(world, "start_device_time_seconds", None)
    if isinstance(value, int):
        return value
    raise CliError("secure-emu: the profile names no start device time for --virtual-time")


def _with_faults(transport_or_listener: Any, arguments: argparse.Namespace) -> Any:
    from emulator.served import FaultyTransport, faulty_listener

    spec = arguments.faults
    if spec is None or spec.is_clean:
        return transport_or_listener
    if hasattr(transport_or_listener, "accept"):
        return faulty_listener(transport_or_listener, spec)
    return FaultyTransport(transport_or_listener, spec)


def _pty_link(client_path: str, arguments: argparse.Namespace,
              cleanups: list[Callable[[], None]]) -> str:
    from emulator.served import make_link, remove_link

    link: Path | None = arguments.link
    if link is None:
        return client_path
    try:
        path = make_link(client_path, link)
    except OSError as error:
        raise CliError(f"secure-emu: cannot make the link {link}: {error}") from None
    cleanups.append(lambda: remove_link(link))
    return path


def _open_sink(path: Path | None, stream: TextIO | None, name: str) -> Any:
    """A non-blocking line sink to ``path`` (appended) or to ``stream``'s descriptor."""
    from emulator.log_output import LineSink

    if path is not None:
        try:
            return LineSink(path=path, name=name)
        except OSError as error:
            raise CliError(f"secure-emu: cannot write the {name} file {path}: "
                           f"{error.strerror or error}") from None
    try:
        fd = stream.fileno() if stream is not None else None
    except (OSError, ValueError):  # no such stream (closed at start): a sink to nowhere
        fd = None
    if fd is None:
        fd = os.open(os.devnull, os.O_WRONLY)
    return LineSink(fd=fd, name=name)


def _announce(text: str) -> None:
    """The first line of output (the pty path, the bound address), written at once; if
    nobody is reading it, serving goes on (stdout is pointed at /dev/null)."""
    try:
        out(text)
    except (OSError, ValueError, AttributeError):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, sys.stdout.fileno())
            os.close(null)


def _is_loopback(host: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _install_stop_handlers(stop: Callable[[], None]) -> dict[int, Any]:
    previous: dict[int, Any] = {}
    if threading.current_thread() is not threading.main_thread():
        return previous

    signals_seen: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        signals_seen.append(signum)
        if len(signals_seen) > 1:  # the loop did not stop on the first: give up at once
            raise KeyboardInterrupt
        stop()

    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, handler)
    return previous


def _restore_handlers(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)


#: Up to this many server addresses are listed one by one in the start-up line; a larger
#: world (a fleet) is summarised as a count and a range.
LISTED_ADDRESSES_MAX = 16


def _describe_addresses(addresses: list[int]) -> str:
    """``1, 2, 16, 17``, or for a fleet ``100001 addresses, 1..100001``."""
    if len(addresses) <= LISTED_ADDRESSES_MAX:
        return ", ".join(str(address) for address in addresses)
    return f"{len(addresses)} addresses, {addresses[0]}..{addresses[-1]}"
