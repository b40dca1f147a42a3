"""The ``secure-emu`` command: serve emulated meters, send DUIS requests, watch the frames.

Subcommands: ``serve``, ``send``, ``annex-c``, ``profile``, ``advance``, ``utrn`` and ``demo``
(see ``secure-emu --help``).

``send``'s notion of "now" (each response's ResponseDateTime, and the time a 6.11
SynchroniseClock sets) comes from the emulator when one is there: the management device's
READ_CLOCK, read once at start and advanced by the elapsed monotonic time, so that with
``serve --virtual-time`` a 6.11 never moves a meter to the host's wall clock. A link whose
management device does not tell the time (a real device) falls back to the wall clock.

Every failure a user can cause (a missing file, an absent port, a bad
argument) ends with one clear line on stderr and a non-zero exit status, never a traceback:
exit 2 for usage errors, 1 for files, ports and devices. This module wires the parts together
and must hold no protocol or device logic of its own.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from emulator.errors import EmulatorError
from protocol.errors import ProtocolError

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "emulator_response_clock", "main",
           "pretty_xml"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A failure to report on one line (exit status in ``exit_status``)."""

    def __init__(self, message: str, exit_status: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_status = exit_status


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (no usage dump)."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise CliError(f"{self.prog}: {message} (see {self.prog} --help)", EXIT_USAGE)


# --------------------------------------------------------------------------------------------
# Argument parsing
# --------------------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def _add_link_target(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--port", metavar="PORT_OR_URL",
                        help="serial device, pty path or pyserial URL (e.g. /dev/ttyUSB0, "
                             "/dev/pts/3, socket://127.0.0.1:4059)")
    target.add_argument("--tcp", metavar="HOST:PORT", help="emulator served over TCP")
    parser.add_argument("--baudrate", type=_positive_int, default=9600,
                        help="serial baud rate (default 9600)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="secure-emu",
                     description="Emulated SMETS1 Secure-cohort meters and the S1SP adapter.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=_Parser)

    serve = commands.add_parser("serve", help="serve the profile's devices on a port")
    where = serve.add_mutually_exclusive_group(required=True)
    where.add_argument("--pty", action="store_true",
                       help="create a pty pair; the first line of output is the client path")
    where.add_argument("--port", metavar="DEVICE_OR_URL", help="serve on a serial port or URL")
    where.add_argument("--tcp", metavar="HOST:PORT",
                       help="listen on TCP (port 0 picks a free port; printed first)")
    serve.add_argument("--baudrate", type=_positive_int, default=9600)
    serve.add_argument("--profile", type=Path,
                       help="device profile (TOML file), or a built-in one by name: "
                            "default, dcc-duis-templates")
    serve.add_argument("--state", type=Path, help="state file: resumed if present, kept saved")
    serve.add_argument("--trace", action="store_true", help="print every frame both ways")
    serve.add_argument("--virtual-time", action="store_true",
                       help="device time starts at the profile's start time and moves only "
                            "on ADVANCE_DEVICE_TIME (secure-emu advance)")
    serve.add_argument("--addressing", choices=("flat", "dlms"), default="flat",
                       help="how server addresses are read: flat numbers (default), or "
                            "IEC 62056-46 logical/physical pairs for DLMS clients")
    serve.set_defaults(handler=_cmd_serve)

    send = commands.add_parser("send", help="send DUIS request files through the S1SP adapter")
    _add_link_target(send)
    send.add_argument("requests", nargs="+", type=Path, metavar="REQUEST.xml")
    send.add_argument("--annex-c", type=Path, metavar="FILE", help="Annex C defaults (TOML)")
    send.add_argument("--trace", action="store_true", help="print every frame on stderr")
    send.add_argument("--pretty", action="store_true",
                      help="print each response XML indented, one element a line")
    send.set_defaults(handler=_cmd_send)

    annex_c = commands.add_parser("annex-c", help="print the Annex C defaults table")
    annex_c.add_argument("--annex-c", type=Path, metavar="FILE",
                         help="overrides (TOML) to apply to the built-in table")
    annex_c.set_defaults(handler=_cmd_annex_c)

    profile = commands.add_parser(
        "profile", help="print the built-in device profile (TOML), to copy and edit")
    profile.set_defaults(handler=_cmd_profile)

    advance = commands.add_parser("advance", help="fast-forward device time")
    _add_link_target(advance)
    advance.add_argument("seconds", type=_positive_int, metavar="SECONDS")
    advance.set_defaults(handler=_cmd_advance)

    utrn = commands.add_parser("utrn", help="print a valid UTRN for a top-up")
    utrn.add_argument("--meter", required=True, metavar="EUI",
                      help="meter EUI-64, e.g. 00-DB-12-34-56-78-90-A1")
    utrn.add_argument("--counter", required=True, type=_positive_int, metavar="N")
    value = utrn.add_mutually_exclusive_group(required=True)
    value.add_argument("--pence", type=_positive_int, metavar="X")
    value.add_argument("--pounds", type=_positive_int, metavar="X")
    utrn.set_defaults(handler=_cmd_utrn)

    demo = commands.add_parser("demo", help="a scripted tour of the S1SR clauses over a pty")
    demo.add_argument("--xml", action="store_true", help="also print each full DUIS XML")
    demo.set_defaults(handler=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    try:
        arguments = build_parser().parse_args(argv)
        handler: Callable[[argparse.Namespace], int] = arguments.handler
        return handler(arguments)
    except CliError as error:
        _print_error(str(error))
        return error.exit_status
    except (ProtocolError, EmulatorError) as error:
        _print_error(f"secure-emu: {error}")
        return EXIT_FAILURE
    except KeyboardInterrupt:
        _print_error("secure-emu: interrupted")
        return 130
    except BrokenPipeError:
        return EXIT_FAILURE


def _print_error(message: str) -> None:
    print(message.splitlines()[0] if message else "secure-emu: failed", file=sys.stderr)


def _out(text: str, stream: TextIO | None = None) -> None:
    target = stream or sys.stdout
    target.write(text + "\n")
    target.flush()


# --------------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _client(arguments: argparse.Namespace, *, trace: bool = False) -> Iterator[Any]:
    from protocol.client import DeviceClient
    from protocol.trace import line_trace
    from protocol.transport import TransportError

    options: dict[str, Any] = {}
    if trace:
        options["trace"] = line_trace(lambda line: _out(line, sys.stderr))
    try:
        client = DeviceClient.open(port=arguments.port, tcp=arguments.tcp,
                                   baudrate=arguments.baudrate, **options)
    except TransportError as error:
        raise CliError(f"secure-emu: {error}") from None
    try:
        yield client
    finally:
        client.close()


def _read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CliError(f"secure-emu: {what} {path} does not exist") from None
    except OSError as error:
        raise CliError(f"secure-emu: cannot read {what} {path}: {error.strerror}") from None


def _load_annex_c(path: Path | None) -> Any:
    from protocol.s1sp.annex_c import AnnexCTable

    if path is None:
        return None
    if not path.exists():
        raise CliError(f"secure-emu: Annex C file {path} does not exist")
    from protocol.s1sp.errors import AnnexCError

    try:
        return AnnexCTable.load(path)
    except (AnnexCError, OSError, ValueError) as error:
        raise CliError(f"secure-emu: Annex C file {path}: {error}") from None


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


# --------------------------------------------------------------------------------------------
# serve
# --------------------------------------------------------------------------------------------


def _cmd_serve(arguments: argparse.Namespace) -> int:
    from emulator.clock import SystemClock, VirtualClock
    from emulator.errors import EmulatorError
    from emulator.serve import ServeLoop
    from emulator.world import EmulatedWorld
    from protocol.clock import RealMonotonicClock
    from protocol.hdlc import Addressing
    from protocol.transport import PtyPair, TcpListener, TransportError, parse_host_port

    profile = _load_profile(arguments.profile)
    clock: Any
    if arguments.virtual_time:
        clock = VirtualClock(profile_start_time_seconds(profile))
    else:
        clock = SystemClock()
    try:
        world = EmulatedWorld(profile, clock, state_path=arguments.state)
    except (EmulatorError, OSError) as error:
        raise CliError(f"secure-emu: cannot start the devices: {error}") from None

    trace_line = (lambda line: _out(line)) if arguments.trace else None
    loop = ServeLoop(world, RealMonotonicClock(),
                     advance_interval_ms=None if arguments.virtual_time else 1000,
                     trace_line=trace_line,
                     log=lambda message: _out(f"secure-emu: {message}", sys.stderr),
                     addressing=Addressing(arguments.addressing))
    # Handlers go in before the port is announced: a client (or a test) may send SIGTERM the
    # moment it reads the first line, and that must still stop cleanly with state saved.
    previous = _install_stop_handlers(loop.stop_from_signal)
    try:
        try:
            if arguments.pty:
                pair = PtyPair()
                loop.add_stream(pair.server, name="pty")
                _out(pair.client_path)
            elif arguments.tcp is not None:
                host, port = parse_host_port(arguments.tcp)
                listener = TcpListener(host, port)
                loop.add_listener(listener)
                _out(listener.address)
            else:
                from protocol.transport import open_port
                loop.add_stream(open_port(arguments.port, baudrate=arguments.baudrate),
                                name=arguments.port)
                _out(arguments.port)
        except TransportError as error:
            raise CliError(f"secure-emu: {error}") from None

        addresses = ", ".join(str(a) for a in sorted(world.server_addresses()))
        stopping = ("Ctrl-C or SIGTERM stops and saves state to " + str(arguments.state)
                    if arguments.state else "Ctrl-C or SIGTERM stops")
        _out(f"secure-emu: serving server addresses {addresses}; {stopping}", sys.stderr)
        loop.run()
    finally:
        _restore_handlers(previous)
    _out("secure-emu: stopped" + (f"; state saved to {arguments.state}"
                                 if arguments.state else ""), sys.stderr)
    return EXIT_OK


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


# --------------------------------------------------------------------------------------------
# send, advance, annex-c, utrn
# --------------------------------------------------------------------------------------------


def _cmd_send(arguments: argparse.Namespace) -> int:
    documents = [(path, _read_file(path, "request file")) for path in arguments.requests]
    annex_c = _load_annex_c(arguments.annex_c)
    from protocol.s1sp.adapter import S1spAdapter

    with _client(arguments, trace=arguments.trace) as client:
        adapter = S1spAdapter(client, annex_c=annex_c,
                              response_clock=emulator_response_clock(client))
        for _, document in documents:
            response = adapter.submit(document)
            _out(pretty_xml(response) if arguments.pretty else response.rstrip("\n"))
    return EXIT_OK


def emulator_response_clock(channel: Any, *,
                            monotonic_ns: Callable[[], int] = time.monotonic_ns,
                            wall_clock: Callable[[], datetime] | None = None
                            ) -> Callable[[], datetime]:
    """The adapter's "now": the emulator's device time (READ_CLOCK on the management device,
    read once here) advanced by the monotonic time elapsed since; the wall clock (UTC) when
    the management device does not answer READ_CLOCK (a real device, or none there)."""
    from protocol.apdu import MANAGEMENT_SERVER_ADDRESS, Command, Request

    fallback = wall_clock or (lambda: datetime.now(timezone.utc))
    try:
        response = channel.request(MANAGEMENT_SERVER_ADDRESS, Request(Command.READ_CLOCK, 0))
    except ProtocolError:
        return fallback
    if not response.ok or "device_time_seconds" not in response.fields:
        return fallback
    start_seconds = int(response.fields["device_time_seconds"])
    start_ns = monotonic_ns()

    def now() -> datetime:
        elapsed_seconds = (monotonic_ns() - start_ns) // 1_000_000_000
        return datetime.fromtimestamp(start_seconds + elapsed_seconds, tz=timezone.utc)

    return now


def pretty_xml(document: str) -> str:
    """A response document indented two spaces a level (its text unchanged otherwise)."""
    from defusedxml.minidom import parseString

    parsed = parseString(document.encode("utf-8"))
    lines = parsed.toprettyxml(indent="  ", encoding="UTF-8").decode("utf-8").splitlines()
    return "\n".join(line for line in lines if line.strip())


def _cmd_advance(arguments: argparse.Namespace) -> int:
    from emulator.world import MAX_ADVANCE_SECONDS
    from protocol.apdu import MANAGEMENT_SERVER_ADDRESS, Command, Request
    from protocol.errors import LinkError

    remaining_seconds: int = arguments.seconds
    device_time_seconds: int | None = None
    with _client(arguments) as client:
        while remaining_seconds > 0 or device_time_seconds is None:
            step_seconds = min(remaining_seconds, MAX_ADVANCE_SECONDS)
            try:
                response = client.request(MANAGEMENT_SERVER_ADDRESS, Request(
                    Command.ADVANCE_DEVICE_TIME, 0, {"advance_seconds": step_seconds}))
            except LinkError as error:
                raise CliError(f"secure-emu: {error}") from None
            if not response.ok:
                raise CliError(f"secure-emu: the emulator refused to advance time: "
                               f"{response.status.name}")
            remaining_seconds -= step_seconds
            device_time_seconds = response.fields["device_time_seconds"]
            if remaining_seconds > 0:  # long advances go in steps the link can wait for
                print(f"device time {_iso(device_time_seconds)}, {remaining_seconds} s to go",
                      file=sys.stderr, flush=True)
    _out(f"device time now {device_time_seconds} ({_iso(device_time_seconds)})")
    return EXIT_OK


def _iso(device_time_seconds: int) -> str:
    import datetime

    moment = datetime.datetime.fromtimestamp(device_time_seconds, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _cmd_annex_c(arguments: argparse.Namespace) -> int:
    from protocol.s1sp.annex_c import AnnexCTable, format_annex_c_table

    table = _load_annex_c(arguments.annex_c)
    if table is None:
        table = AnnexCTable()
    _out(format_annex_c_table(table))
    return EXIT_OK


def _cmd_profile(arguments: argparse.Namespace) -> int:
    from emulator.profile import default_profile_text

    _out(default_profile_text().rstrip("\n"))
    return EXIT_OK


def _cmd_utrn(arguments: argparse.Namespace) -> int:
    from emulator.utrn import UtrnValueClass, make_utrn
    from protocol.eui64 import parse_eui64

    try:
        meter_eui64 = parse_eui64(arguments.meter)
    except ValueError as error:
        raise CliError(f"secure-emu: {error}", EXIT_USAGE) from None
    if arguments.pence is not None:
        value_class, value = UtrnValueClass.PENNIES, arguments.pence
    else:
        value_class, value = UtrnValueClass.POUNDS, arguments.pounds
    try:
        _out(make_utrn(meter_eui64, arguments.counter, value_class, value))
    except ValueError as error:
        raise CliError(f"secure-emu: {error}", EXIT_USAGE) from None
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------------


def _cmd_demo(arguments: argparse.Namespace) -> int:
    from emulator.demo import run_demo

    return run_demo(show_xml=arguments.xml, out=sys.stdout)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
