"""``secure-emu demo``: the scripted tour of the S1SR clauses over a pty (``emulator/demo/``).

It must hold no protocol or device logic of its own.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(subcommands: Any) -> None:
    demo = subcommands.add_parser("demo", help="a scripted tour of the S1SR clauses over a pty")
    demo.add_argument("--xml", action="store_true", help="also print each full DUIS XML")
    demo.set_defaults(handler=run)


def run(arguments: argparse.Namespace) -> int:
    from emulator.demo import run_demo

    return run_demo(show_xml=arguments.xml, out=sys.stdout)
