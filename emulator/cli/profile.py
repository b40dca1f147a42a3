"""``secure-emu profile``: print a built-in device profile, or a fleet profile of N devices, as
TOML to copy and edit.

It must hold no protocol or device logic of its own.
"""

from __future__ import annotations

import argparse
from typing import Any

from emulator.cli.common import EXIT_OK, EXIT_USAGE, CliError, out

__all__ = ["add_parser", "run"]


def add_parser(subcommands: Any) -> None:
    profile = subcommands.add_parser(
        "profile", help="print a built-in device profile (TOML), to copy and edit")
    profile.add_argument("--name", default="default", metavar="NAME",
                         help="which built-in profile: default, dcc-duis-templates "
                              "(default: default)")
    profile.add_argument("--fleet", type=int, metavar="N",
                         help="instead, a fleet profile of N devices: hubs each with one "
                              "prepayment ESME, a few [[fleet]] lines however large N is")
    profile.set_defaults(handler=run)


def run(arguments: argparse.Namespace) -> int:
    from emulator.profile import BUILT_IN_PROFILES, built_in_profile_text, fleet_profile_text

    if arguments.fleet is not None:
        if arguments.fleet < 1:
            raise CliError("secure-emu profile: --fleet N takes a number of devices >= 1",
                           EXIT_USAGE)
        out(fleet_profile_text(arguments.fleet).rstrip("\n"))
        return EXIT_OK
    if arguments.name not in BUILT_IN_PROFILES:
        raise CliError(f"secure-emu profile: no built-in profile {arguments.name!r} (there are: "
                       f"{', '.join(BUILT_IN_PROFILES)})", EXIT_USAGE)
    out(built_in_profile_text(arguments.name).rstrip("\n"))
    return EXIT_OK
