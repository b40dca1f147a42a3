"""``secure-emu advance``: fast-forward the emulator's device time over a link, by a duration
or to a UTC time.

It must hold no protocol or device logic of its own.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from emulator.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    add_link_target,
    add_management_password,
    link_client,
    management_password,
    out,
)
from emulator.errors import EmulatorError
from protocol.s1sp.units import device_seconds_to_duis_date_time as iso

__all__ = ["add_parser", "run"]


def add_parser(subcommands: Any) -> None:
    advance = subcommands.add_parser("advance", help="fast-forward device time")
    add_link_target(advance)
    how_far = advance.add_mutually_exclusive_group(required=True)
    how_far.add_argument("duration", nargs="?", metavar="DURATION",
                         help="how far to move device time: seconds (3600) or with a unit "
                              "(90s, 15m, 6h, 3d, 1w)")
    how_far.add_argument("--to", metavar="DATETIME",
                         help="move device time to this UTC time, e.g. 2026-02-01T00:00:00Z")
    add_management_password(advance, "the server's management password")
    advance.set_defaults(handler=run)


def run(arguments: argparse.Namespace) -> int:
    from emulator.served import advance_device_time, parse_advance_seconds
    from protocol.errors import LinkError

    seconds: int | None = None
    if arguments.duration is not None:
        try:
            seconds = parse_advance_seconds(arguments.duration)
        except ValueError as error:
            raise CliError(f"secure-emu advance: {error}", EXIT_USAGE) from None
    with link_client(arguments) as client:
        try:
            if seconds is None:
                seconds = _seconds_until(arguments.to, client)
            device_time_seconds = advance_device_time(
                client, seconds, management_password=management_password(arguments) or "",
                progress=lambda now, to_go: print(
                    f"device time {iso(now)}, {to_go} s to go", file=sys.stderr, flush=True))
        except LinkError as error:
            raise CliError(f"secure-emu: {error}") from None
        except EmulatorError as error:
            raise CliError(f"secure-emu: {error}") from None
    out(f"device time now {device_time_seconds} ({iso(device_time_seconds)})")
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
                       f"{iso(now_seconds)}: time never goes back", EXIT_USAGE)
    return target_seconds - now_seconds
