"""What every ``secure-emu`` subcommand shares: ``CliError`` and the exit statuses, the
one-line-error argument parser, output helpers, file loading that fails on one line, and the
link-target options (``--port`` / ``--tcp`` / ``--baudrate``) with the client they open.

It must hold no protocol or device logic, and no subcommand of its own.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_RESPONSE_ERROR", "EXIT_USAGE",
           "MANAGEMENT_PASSWORD_VARIABLE", "CliError", "CliParser", "add_link_target",
           "add_management_password", "link_client", "load_annex_c",
           "management_password", "out", "positive_int", "print_error", "read_file",
           "retry_notices"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
#: ``send --fail-on-error``: every request was answered, and some answer was an error code.
EXIT_RESPONSE_ERROR = 3


#: The environment variable a management password may come in (an option shows in ps).
MANAGEMENT_PASSWORD_VARIABLE = "SECURE_EMU_MANAGEMENT_PASSWORD"


class CliError(Exception):
    """A failure to report on one line (exit status in ``exit_status``)."""

    def __init__(self, message: str, exit_status: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_status = exit_status


class CliParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (no usage dump)."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise CliError(f"{self.prog}: {message} (see {self.prog} --help)", EXIT_USAGE)


# --------------------------------------------------------------------------------------------
# Arguments and output
# --------------------------------------------------------------------------------------------


def positive_int(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def print_error(message: str) -> None:
    print(message.splitlines()[0] if message else "secure-emu: failed", file=sys.stderr)


def out(text: str, stream: TextIO | None = None) -> None:
    target = stream or sys.stdout
    target.write(text + "\n")
    target.flush()


def read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CliError(f"secure-emu: {what} {path} does not exist") from None
    except OSError as error:
        raise CliError(f"secure-emu: cannot read {what} {path}: {error.strerror}") from None


def load_annex_c(path: Path | None) -> Any:
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


# --------------------------------------------------------------------------------------------
# The link target (send, advance)
# --------------------------------------------------------------------------------------------


def add_link_target(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--port", metavar="PORT_OR_URL",
                        help="serial device, pty path or pyserial URL (e.g. /dev/ttyUSB0, "
                             "/dev/pts/3, socket://127.0.0.1:4059)")
    target.add_argument("--tcp", metavar="HOST:PORT", help="emulator served over TCP")
    parser.add_argument("--baudrate", type=positive_int, default=9600,
                        help="serial baud rate (default 9600)")


@contextlib.contextmanager
def link_client(arguments: argparse.Namespace, *, trace: bool = False) -> Iterator[Any]:
    from protocol.client import DeviceClient
    from protocol.trace import line_trace
    from protocol.transport import TransportError

    notices = retry_notices(lambda line: out(line, sys.stderr))
    frame_trace = line_trace(lambda line: out(line, sys.stderr)) if trace else None

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


def add_management_password(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--management-password", metavar="PASSWORD",
                        help=f"{what}; better in the environment variable "
                             f"{MANAGEMENT_PASSWORD_VARIABLE}, which ps does not show")


def management_password(arguments: argparse.Namespace) -> str | None:
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
