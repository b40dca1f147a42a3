"""``secure-emu annex-c``: print the Annex C defaults table (the built-in one, or with
``--annex-c`` overrides applied).

It must hold no protocol or device logic of its own.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from emulator.cli.common import EXIT_OK, load_annex_c, out

__all__ = ["add_parser", "run"]


def add_parser(subcommands: Any) -> None:
    annex_c = subcommands.add_parser("annex-c", help="print the Annex C defaults table")
    annex_c.add_argument("--annex-c", type=Path, metavar="FILE",
                         help="overrides (TOML) to apply to the built-in table")
    annex_c.set_defaults(handler=run)


def run(arguments: argparse.Namespace) -> int:
    from protocol.s1sp.annex_c import AnnexCTable, format_annex_c_table

    table = load_annex_c(arguments.annex_c)
    if table is None:
        table = AnnexCTable()
    out(format_annex_c_table(table))
    return EXIT_OK
