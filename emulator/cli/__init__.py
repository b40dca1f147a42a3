"""The ``secure-emu`` command: serve emulated meters, send DUIS requests, watch the frames.

Subcommands: ``serve``, ``send``, ``annex-c``, ``profile``, ``advance``, ``utrn`` and ``demo``
(see ``secure-emu --help``), one module each in this package, each adding its parser with
``add_parser(subcommands)`` and running it with ``run(arguments)``; what they share (exit
statuses, ``CliError``, output helpers, the link-target options) is in ``common.py``. This
module assembles the parser and dispatches.

Every failure a user can cause (a missing file, an absent port, a bad
argument) ends with one clear line on stderr and a non-zero exit status, never a traceback:
exit 2 for usage errors, 1 for files, ports and devices. The package wires the parts together
and must hold no protocol or device logic of its own.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from emulator.cli import advance, annex_c, demo, profile, send, serve, utrn
from emulator.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_RESPONSE_ERROR,
    EXIT_USAGE,
    CliError,
    CliParser,
    print_error,
    retry_notices,
)
from emulator.cli.send import RESPONSE_END_MARK, emulator_response_clock, pretty_xml
from emulator.cli.serve import profile_start_time_seconds
from emulator.errors import EmulatorError
from protocol.errors import ProtocolError

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_RESPONSE_ERROR", "EXIT_USAGE", "RESPONSE_END_MARK",
           "CliError", "build_parser", "emulator_response_clock", "main", "pretty_xml",
           "profile_start_time_seconds", "retry_notices"]

#: The subcommand modules, in the order ``secure-emu --help`` lists them.
SUBCOMMANDS = (serve, send, annex_c, profile, advance, utrn, demo)


def build_parser() -> argparse.ArgumentParser:
    parser = CliParser(prog="secure-emu",
                       description="Emulated SMETS1 Secure-cohort meters and the S1SP adapter.")
    parser.add_argument("--version", action="version", version=f"secure-emu {_version()}",
                        help="print the installed version of secure-emu and exit")
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                        parser_class=CliParser)
    for module in SUBCOMMANDS:
        module.add_parser(subcommands)
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
        print_error(str(error))
        return error.exit_status
    except (ProtocolError, EmulatorError) as error:
        print_error(f"secure-emu: {error}")
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print_error("secure-emu: interrupted")
        return 130
    except BrokenPipeError:
        return EXIT_FAILURE
