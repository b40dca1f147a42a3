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
import logging
import os
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

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_RESPONSE_ERROR", "EXIT_USAGE",
           "emulator_response_clock", "main", "pretty_xml"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
#: ``send --fail-on-error``: every request was answered, and some answer was an error code.
EXIT_RESPONSE_ERROR = 3


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


#: The environment variable a management password may come in (an option shows in ps).
MANAGEMENT_PASSWORD_VARIABLE = "SECURE_EMU_MANAGEMENT_PASSWORD"


def _add_management_password(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--management-password", metavar="PASSWORD",
                        help=f"{what}; better in the environment variable "
                             f"{MANAGEMENT_PASSWORD_VARIABLE}, which ps does not show")


def _management_password(arguments: argparse.Namespace) -> str | None:
    """--management-password, else $SECURE_EMU_MANAGEMENT_PASSWORD, else None (checked)."""
    from emulator.profile import check_management_password

    password = arguments.management_password
    if password is None:
        password = os.environ.get(MANAGEMENT_PASSWORD_VARIABLE) or None
    if password is None:
        return None
    try:
        return check_management_password(password)
    except ValueError as error:
        raise CliError(f"secure-emu: the management password {error}", EXIT_USAGE) from None


def _serve_default(name: str) -> Any:
    from emulator import serve

    return getattr(serve, name)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="secure-emu",
                     description="Emulated SMETS1 Secure-cohort meters and the S1SP adapter.")
    parser.add_argument("--version", action="version", version=f"secure-emu {_version()}",
                        help="print the installed version of secure-emu and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=_Parser)

    serve = commands.add_parser("serve", help="serve the profile's devices on a port")
    where = serve.add_mutually_exclusive_group(required=True)
    where.add_argument("--pty", action="store_true",
                       help="create a pty pair; the first line of output is the client path")
    where.add_argument("--port", metavar="DEVICE_OR_URL", help="serve on a serial port or URL")
    where.add_argument("--tcp", metavar="HOST:PORT",
                       help="listen on TCP (port 0 picks a free port; printed first)")
    serve.add_argument("--baudrate", type=_positive_int, default=9600,
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
    serve.add_argument("--max-connections", type=_positive_int, metavar="N",
                       default=_serve_default("DEFAULT_MAX_CONNECTIONS"),
                       help="TCP clients served at once; more are accepted and closed at once "
                            "(default %(default)s)")
    serve.add_argument("--virtual-time", action="store_true",
                       help="device time starts at the profile's start time and moves only "
                            "on ADVANCE_DEVICE_TIME (secure-emu advance); without it "
                            "ADVANCE_DEVICE_TIME is refused")
    _add_management_password(serve, "ADVANCE_DEVICE_TIME must carry (overrides the profile's "
                                     "[world] management_password)")
    _add_serve_harness_options(serve)
    serve.add_argument("--addressing", choices=("flat", "dlms"), default="flat",
                       help="how server addresses are read: flat numbers (default), or "
                            "IEC 62056-46 logical/physical pairs for DLMS clients")
    serve.set_defaults(handler=_cmd_serve)

    send = commands.add_parser("send", help="send DUIS request files through the S1SP adapter")
    _add_link_target(send)
    send.add_argument("requests", nargs="+", type=Path, metavar="REQUEST.xml",
                      help="DUIS request files, sent in order; - reads one from standard input")
    send.add_argument("--annex-c", type=Path, metavar="FILE", help="Annex C defaults (TOML)")
    send.add_argument("--trace", action="store_true", help="print every frame on stderr")
    send.add_argument("--pretty", action="store_true",
                      help="print each response XML indented, one element a line")
    send.add_argument("--fail-on-error", action="store_true",
                      help=f"exit {EXIT_RESPONSE_ERROR} when any response carries an error "
                           "code (anything but I0 and I99), for scripts")
    send.add_argument("--out", type=Path, metavar="DIR",
                      help="write each response to DIR/NNN_<request name>.xml instead of stdout")
    send.set_defaults(handler=_cmd_send)

    annex_c = commands.add_parser("annex-c", help="print the Annex C defaults table")
    annex_c.add_argument("--annex-c", type=Path, metavar="FILE",
                         help="overrides (TOML) to apply to the built-in table")
    annex_c.set_defaults(handler=_cmd_annex_c)

    profile = commands.add_parser(
        "profile", help="print a built-in device profile (TOML), to copy and edit")
    profile.add_argument("--name", default="default", metavar="NAME",
                         help="which built-in profile: default, dcc-duis-templates "
                              "(default: default)")
    profile.add_argument("--fleet", type=int, metavar="N",
                         help="instead, a fleet profile of N devices: hubs each with one "
                              "prepayment ESME, a few [[fleet]] lines however large N is")
    profile.set_defaults(handler=_cmd_profile)

    advance = commands.add_parser("advance", help="fast-forward device time")
    _add_link_target(advance)
    how_far = advance.add_mutually_exclusive_group(required=True)
    how_far.add_argument("duration", nargs="?", metavar="DURATION",
                         help="how far to move device time: seconds (3600) or with a unit "
                              "(90s, 15m, 6h, 3d, 1w)")
    how_far.add_argument("--to", metavar="DATETIME",
                         help="move device time to this UTC time, e.g. 2026-02-01T00:00:00Z")
    _add_management_password(advance, "the server's management password")
    advance.set_defaults(handler=_cmd_advance)

    utrn = commands.add_parser("utrn", help="print a valid UTRN for a top-up")
    utrn.add_argument("--meter", required=True, metavar="EUI",
                      help="meter EUI-64, e.g. 00-DB-12-34-56-78-90-A1")
    utrn.add_argument("--counter", type=_positive_int, metavar="N",
                      help="the token's counter, 0..16777215: each UTRN the meter accepts "
                           "must have a counter it has not used before")
    value = utrn.add_mutually_exclusive_group(required=True)
    value.add_argument("--pence", type=_positive_int, metavar="X",
                       help="credit in whole pence, 0..8191")
    value.add_argument("--pounds", metavar="X",
                       help="credit in pounds: whole pounds 0..8191, or pounds and pence "
                            "(10.50) up to 81.91")
    value.add_argument("--decode", metavar="UTRN",
                       help="instead of making one, check and decode this UTRN for --meter")
    utrn.set_defaults(handler=_cmd_utrn)

    demo = commands.add_parser("demo", help="a scripted tour of the S1SR clauses over a pty")
    demo.add_argument("--xml", action="store_true", help="also print each full DUIS XML")
    demo.set_defaults(handler=_cmd_demo)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("secure-emu")
    except PackageNotFoundError:  # pragma: no cover - running from an uninstalled tree
        return "unknown (not installed)"


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

    notices = retry_notices(lambda line: _out(line, sys.stderr))
    frame_trace = line_trace(lambda line: _out(line, sys.stderr)) if trace else None

    def both(direction: str, frame: Any, now_ms: int) -> None:
        notices(direction, frame, now_ms)
        if frame_trace is not None:
            frame_trace(direction, frame, now_ms)

    options: dict[str, Any] = {"trace": both}
    try:
        client = DeviceClient.open(port=arguments.port, tcp=arguments.tcp,
                                   baudrate=arguments.baudrate, **options)
    except TransportError as error:
        raise CliError(f"secure-emu: {error}") from None
    try:
        yield client
    finally:
        client.close()


def retry_notices(sink: Callable[[str], None]) -> Callable[[str, Any, int], None]:
    """A frame trace that tells ``sink`` when the client sends again because no answer came:
    a link request (SNRM) or a poll (RR with P=1) sent while the last frame to that device
    was still unanswered."""
    from protocol.hdlc import FrameType

    unanswered: dict[int, int] = {}  # server address -> frames sent since it last answered

    def notice(direction: str, frame: Any, now_ms: int) -> None:
        if direction == "rx":
            unanswered.pop(frame.source_address, None)
            return
        address = frame.destination_address
        count = unanswered.get(address, 0)
        unanswered[address] = count + 1
        if count and (frame.frame_type is FrameType.SNRM
                      or (frame.frame_type is FrameType.RR and frame.poll_final)):
            what = "connecting" if frame.frame_type is FrameType.SNRM else "asking"
            sink(f"secure-emu: no answer from server address {address} yet; retrying "
                 f"({what} again, try {count + 1})")

    return notice


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
    from emulator.log_output import serve_logging
    from emulator.management import ManagementPolicy
    from emulator.serve import ServeLoop
    from emulator.world import EmulatedWorld
    from protocol.clock import RealMonotonicClock
    from protocol.hdlc import Addressing
    from protocol.transport import PtyPair, TcpListener, TransportError, parse_host_port

    if arguments.link is not None and not arguments.pty:
        raise CliError("secure-emu serve: --link needs --pty", EXIT_USAGE)
    if arguments.max_connections < 1:
        raise CliError("secure-emu serve: --max-connections must be at least 1", EXIT_USAGE)
    profile = _load_profile(arguments.profile)
    clock: Any
    if arguments.virtual_time:
        clock = VirtualClock(profile_start_time_seconds(profile))
    else:
        clock = SystemClock()
    management = ManagementPolicy(
        password=_management_password(arguments) or profile.management_password,
        time_travel_allowed=arguments.virtual_time)
    try:
        world = EmulatedWorld(profile, clock, state_path=arguments.state, management=management)
    except (EmulatorError, OSError) as error:
        raise CliError(f"secure-emu: cannot start the devices: {error}") from None

    # Logs and trace go through sinks written by threads of their own: a reader that stops
    # reading (or goes away) never blocks or stops the serving loop.
    log_sink = _open_sink(arguments.log_file, sys.stderr, "log")
    trace_sink = (_open_sink(arguments.trace_file, sys.stdout, "trace")
                  if arguments.trace or arguments.trace_file else None)
    handler = serve_logging(log_sink)
    logger = logging.getLogger("secure_emu.cli")
    cleanups: list[Callable[[], None]] = []
    try:
        _raise_descriptor_limit(arguments.max_connections)
        loop = ServeLoop(world, RealMonotonicClock(),
                         advance_interval_ms=None if arguments.virtual_time else 1000,
                         trace_line=trace_sink.put if trace_sink is not None else None,
                         max_connections=arguments.max_connections,
                         addressing=Addressing(arguments.addressing))
        # Handlers go in before the port is announced: a client (or a test) may send SIGTERM
        # the moment it reads the first line, and that must still stop cleanly, state saved.
        previous = _install_stop_handlers(loop.stop_from_signal)
        try:
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
                        logger.warning("listening on %s, not a loopback address: any host "
                                       "that reaches it can read and change every device "
                                       "(there is no access control)", listener.address)
                else:
                    from protocol.transport import open_port
                    loop.add_stream(open_port(arguments.port, baudrate=arguments.baudrate),
                                    name=arguments.port)
                    _announce(arguments.port)
            except TransportError as error:
                raise CliError(f"secure-emu: {error}") from None

            addresses = ", ".join(str(a) for a in sorted(world.server_addresses()))
            stopping = ("Ctrl-C or SIGTERM stops and saves state to " + str(arguments.state)
                        if arguments.state else "Ctrl-C or SIGTERM stops")
            logger.info("serving server addresses %s; %s", addresses, stopping)
            loop.run()
        finally:
            _restore_handlers(previous)
        dropped = log_sink.dropped_lines + (trace_sink.dropped_lines if trace_sink else 0)
        logger.info("stopped%s%s", f"; state saved to {arguments.state}" if arguments.state
                    else "", f"; {dropped} log or trace lines dropped" if dropped else "")
    finally:
        for cleanup in cleanups:
            cleanup()
        logging.getLogger("secure_emu").removeHandler(handler)
        for sink in (trace_sink, log_sink):
            if sink is not None:
                sink.close()
    return EXIT_OK


def _add_serve_harness_options(serve: argparse.ArgumentParser) -> None:
    """``serve --faults`` and ``serve --link`` (the faults and the link of emulator/faults.py and
    emulator/served.py)."""
    from emulator.faults import FAULT_KEYS

    keys = "; ".join(f"{key}: {meaning}" for key, meaning in FAULT_KEYS.items())
    serve.add_argument("--faults", metavar="SPEC", type=_fault_spec,
                       help="seeded faults on the served link, comma-separated, e.g. "
                            "drop=0.01,corrupt=0.001,duplicate=0.01,delay=20ms,split=1,"
                            f"stall=0.01:2s,seed=7 ({keys})")
    serve.add_argument("--link", type=Path, metavar="PATH",
                       help="with --pty: a symlink PATH to the pty, printed instead of the pty "
                            "path and removed on exit (like socat's link=)")


def _fault_spec(text: str) -> Any:
    from emulator.faults import FaultSpec, FaultSpecError

    try:
        return FaultSpec.parse(text)
    except FaultSpecError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


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
        _out(text)
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


def _raise_descriptor_limit(max_connections: int) -> None:
    """Raise the soft descriptor limit toward the hard one so that ``max_connections``
    clients fit (one descriptor each, plus a margin); never needs root."""
    import resource

    wanted = max_connections + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


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
    documents = [_read_request(path) for path in arguments.requests]
    annex_c = _load_annex_c(arguments.annex_c)
    if arguments.out is not None:
        try:
            arguments.out.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CliError(f"secure-emu: cannot make --out {arguments.out}: "
                           f"{error.strerror}") from None
    from protocol.s1sp.adapter import S1spAdapter

    failed = 0
    with _client(arguments, trace=arguments.trace) as client:
        adapter = S1spAdapter(client, annex_c=annex_c,
                              response_clock=emulator_response_clock(client))
        for number, (name, document) in enumerate(documents, start=1):
            response = adapter.submit(document)
            if _response_code(response) not in ("I0", "I99"):
                failed += 1
            text = pretty_xml(response) if arguments.pretty else response.rstrip("\n")
            _write_response(text, number, len(documents), name, arguments.out)
    if failed and arguments.fail_on_error:
        _print_error(f"secure-emu: {failed} of {len(documents)} responses carried an error "
                     "code")
        return EXIT_RESPONSE_ERROR
    return EXIT_OK


#: What ``send`` prints after each response document on stdout: a line no response can
#: contain (its text escapes every ``<``), so that several documents split unambiguously.
RESPONSE_END_MARK = "<!-- secure-emu: end of response {number} of {total} ({name}) -->"


def _read_request(path: Path) -> tuple[str, bytes]:
    if str(path) == "-":
        return "stdin", sys.stdin.buffer.read()
    return path.name, _read_file(path, "request file")


def _response_code(document: str) -> str:
    from defusedxml.ElementTree import fromstring

    for element in fromstring(document.encode("utf-8")).iter():
        if element.tag.rpartition("}")[2] == "ResponseCode":
            return (element.text or "").strip()
    return ""


def _write_response(text: str, number: int, total: int, name: str, out: Path | None) -> None:
    if out is None:
        _out(text)
        # "--" may not appear inside an XML comment
        _out(RESPONSE_END_MARK.format(number=number, total=total,
                                      name=name.replace("--", "- -")))
        return
    stem = name.removesuffix(".xml") or "request"
    path = out / f"{number:03d}_{stem}.xml"
    try:
        path.write_text(text + "\n", encoding="utf-8")
    except OSError as error:
        raise CliError(f"secure-emu: cannot write {path}: {error.strerror}") from None
    _out(str(path))


def emulator_response_clock(channel: Any, *,
                            monotonic_ns: Callable[[], int] = time.monotonic_ns,
                            wall_clock: Callable[[], datetime] | None = None
                            ) -> Callable[[], datetime]:
    """The adapter's "now": the emulator's device time (READ_CLOCK on the management device,
    read once here) advanced by the monotonic time elapsed since; the wall clock (UTC) when
    the management device does not answer READ_CLOCK (a real device, or none there)."""
    from protocol.apdu import MANAGEMENT_SERVER_ADDRESS, Command, Empty, Request

    fallback = wall_clock or (lambda: datetime.now(timezone.utc))
    try:
        response = channel.request(MANAGEMENT_SERVER_ADDRESS,
                                   Request(Command.READ_CLOCK, 0, body=Empty()))
    except ProtocolError:
        return fallback
    if not response.ok:
        return fallback
    start_seconds = response.body.device_time_seconds
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
    from emulator.served import advance_device_time, parse_advance_seconds
    from protocol.errors import LinkError

    seconds: int | None = None
    if arguments.duration is not None:
        try:
            seconds = parse_advance_seconds(arguments.duration)
        except ValueError as error:
            raise CliError(f"secure-emu advance: {error}", EXIT_USAGE) from None
    with _client(arguments) as client:
        try:
            if seconds is None:
                seconds = _seconds_until(arguments.to, client)
            device_time_seconds = advance_device_time(
                client, seconds, management_password=_management_password(arguments) or "",
                progress=lambda now, to_go: print(
                    f"device time {_iso(now)}, {to_go} s to go", file=sys.stderr, flush=True))
        except LinkError as error:
            raise CliError(f"secure-emu: {error}") from None
        except EmulatorError as error:
            raise CliError(f"secure-emu: {error}") from None
    _out(f"device time now {device_time_seconds} ({_iso(device_time_seconds)})")
    return EXIT_OK


def _seconds_until(text: str, client: Any) -> int:
    """Seconds from the emulator's device time to ``--to DATETIME``."""
    from emulator.profile import parse_utc_time_seconds
    from protocol.apdu import MANAGEMENT_SERVER_ADDRESS, Command, Empty, Request

    try:
        target_seconds = parse_utc_time_seconds(text)
    except ValueError as error:
        raise CliError(f"secure-emu advance: --to {error}", EXIT_USAGE) from None
    response = client.request(MANAGEMENT_SERVER_ADDRESS,
                              Request(Command.READ_CLOCK, 0, body=Empty()))
    if not response.ok:
        raise CliError("secure-emu advance: the device does not tell its time (READ_CLOCK)")
    now_seconds = response.body.device_time_seconds
    if target_seconds < now_seconds:
        raise CliError(f"secure-emu advance: --to {text} is before the device time "
                       f"{_iso(now_seconds)}: time never goes back", EXIT_USAGE)
    return target_seconds - now_seconds


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
    from emulator.profile import BUILT_IN_PROFILES, built_in_profile_text, fleet_profile_text

    if arguments.fleet is not None:
        if arguments.fleet < 1:
            raise CliError("secure-emu profile: --fleet N takes a number of devices >= 1",
                           EXIT_USAGE)
        _out(fleet_profile_text(arguments.fleet).rstrip("\n"))
        return EXIT_OK
    if arguments.name not in BUILT_IN_PROFILES:
        raise CliError(f"secure-emu profile: no built-in profile {arguments.name!r} (there are: "
                       f"{', '.join(BUILT_IN_PROFILES)})", EXIT_USAGE)
    _out(built_in_profile_text(arguments.name).rstrip("\n"))
    return EXIT_OK


def _cmd_utrn(arguments: argparse.Namespace) -> int:
    from emulator.utrn import UTRN_MAX_VALUE, UtrnValueClass, make_utrn, utrn_value_for_pounds
    from protocol.eui64 import parse_eui64

    try:
        meter_eui64 = parse_eui64(arguments.meter)
    except ValueError as error:
        raise CliError(f"secure-emu: {error}", EXIT_USAGE) from None
    if arguments.decode is not None:
        return _decode_utrn(arguments.decode, meter_eui64)
    if arguments.counter is None:
        raise CliError("secure-emu utrn: --counter N is needed to make a UTRN", EXIT_USAGE)
    if arguments.pence is not None:
        if arguments.pence > UTRN_MAX_VALUE:
            raise CliError(f"secure-emu utrn: --pence {arguments.pence} pence is more than a "
                           f"UTRN carries in pence ({UTRN_MAX_VALUE} pence); use --pounds",
                           EXIT_USAGE)
        value_class, value = UtrnValueClass.PENNIES, arguments.pence
    else:
        try:
            value_class, value = utrn_value_for_pounds(arguments.pounds)
        except ValueError as error:
            raise CliError(f"secure-emu utrn: --pounds {error}", EXIT_USAGE) from None
    try:
        _out(make_utrn(meter_eui64, arguments.counter, value_class, value))
    except ValueError as error:
        raise CliError(f"secure-emu: {error}", EXIT_USAGE) from None
    return EXIT_OK


def _decode_utrn(utrn: str, meter_eui64: bytes) -> int:
    from emulator.errors import UtrnError
    from emulator.utrn import parse_utrn

    try:
        parsed = parse_utrn(utrn.strip(), meter_eui64)
    except UtrnError as error:
        raise CliError(f"secure-emu utrn: {utrn}: {error}") from None
    unit = "pence" if parsed.value_class.name == "PENNIES" else "pounds"
    pence = parsed.value_pence
    _out(f"counter {parsed.counter}; value {parsed.value} {unit}; credit {pence} pence "
         f"({pence // 100}.{pence % 100:02d} GBP)")
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------------


def _cmd_demo(arguments: argparse.Namespace) -> int:
    from emulator.demo import run_demo

    return run_demo(show_xml=arguments.xml, out=sys.stdout)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
