"""``secure-emu utrn``: make a valid UTRN (top-up token) for a meter, or check and decode one.

It must hold no protocol or device logic of its own (the token is ``emulator/utrn.py``'s).
"""

from __future__ import annotations

import argparse
from typing import Any

from emulator.cli.common import EXIT_OK, EXIT_USAGE, CliError, out, positive_int

__all__ = ["add_parser", "run"]


def add_parser(subcommands: Any) -> None:
    utrn = subcommands.add_parser("utrn", help="print a valid UTRN for a top-up")
    utrn.add_argument("--meter", required=True, metavar="EUI",
                      help="meter EUI-64, e.g. 00-DB-12-34-56-78-90-A1")
    utrn.add_argument("--counter", type=positive_int, metavar="N",
                      help="the token's counter, 0..16777215: each UTRN the meter accepts "
                           "must have a counter it has not used before")
    value = utrn.add_mutually_exclusive_group(required=True)
    value.add_argument("--pence", type=positive_int, metavar="X",
                       help="credit in whole pence, 0..8191")
    value.add_argument("--pounds", metavar="X",
                       help="credit in pounds: whole pounds 0..8191, or pounds and pence "
                            "(10.50) up to 81.91")
    value.add_argument("--decode", metavar="UTRN",
                       help="instead of making one, check and decode this UTRN for --meter")
    utrn.set_defaults(handler=run)


def run(arguments: argparse.Namespace) -> int:
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
        out(make_utrn(meter_eui64, arguments.counter, value_class, value))
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
    out(f"counter {parsed.counter}; value {parsed.value} {unit}; credit {pence} pence "
        f"({pence // 100}.{pence % 100:02d} GBP)")
    return EXIT_OK
