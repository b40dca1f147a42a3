"""``secure-emu send``: DUIS request files through the S1SP adapter over a link, the responses
printed (or written to ``--out``).

``send``'s notion of "now" (each response's ResponseDateTime, and the time a 6.11
SynchroniseClock sets) comes from the emulator when one is there: the management device's
READ_CLOCK, read once at start and advanced by the elapsed monotonic time, so that with
``serve --virtual-time`` a 6.11 never moves a meter to the host's wall clock. A link whose
management device does not tell the time (a real device) falls back to the wall clock.

It must hold no protocol or device logic of its own.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from emulator.cli.common import (
    EXIT_OK,
    EXIT_RESPONSE_ERROR,
    CliError,
    add_link_target,
    link_client,
    load_annex_c,
    out,
    print_error,
    read_file,
)
from protocol.errors import ProtocolError

__all__ = ["RESPONSE_END_MARK", "add_parser", "emulator_response_clock", "pretty_xml", "run"]

#: What ``send`` prints after each response document on stdout: a line no response can
#: contain (its text escapes every ``<``), so that several documents split unambiguously.
RESPONSE_END_MARK = "<!-- secure-emu: end of response {number} of {total} ({name}) -->"


def add_parser(subcommands: Any) -> None:
    send = subcommands.add_parser("send", help="send DUIS request files through the S1SP adapter")
    add_link_target(send)
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
    send.set_defaults(handler=run)


def run(arguments: argparse.Namespace) -> int:
    documents = [_read_request(path) for path in arguments.requests]
    annex_c = load_annex_c(arguments.annex_c)
    if arguments.out is not None:
        try:
            arguments.out.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CliError(f"secure-emu: cannot make --out {arguments.out}: "
                           f"{error.strerror}") from None
    from protocol.s1sp.adapter import S1spAdapter

    failed = 0
    with link_client(arguments, trace=arguments.trace) as client:
        adapter = S1spAdapter(client, annex_c=annex_c,
                              response_clock=emulator_response_clock(client))
        for number, (name, document) in enumerate(documents, start=1):
            response = adapter.submit(document)
            if _response_code(response) not in ("I0", "I99"):
                failed += 1
            text = pretty_xml(response) if arguments.pretty else response.rstrip("\n")
            _write_response(text, number, len(documents), name, arguments.out)
    if failed and arguments.fail_on_error:
        print_error(f"secure-emu: {failed} of {len(documents)} responses carried an error "
                    "code")
        return EXIT_RESPONSE_ERROR
    return EXIT_OK


def _read_request(path: Path) -> tuple[str, bytes]:
    if str(path) == "-":
        return "stdin", sys.stdin.buffer.read()
    return path.name, read_file(path, "request file")


def _response_code(document: str) -> str:
    from defusedxml.ElementTree import fromstring

    for element in fromstring(document.encode("utf-8")).iter():
        if element.tag.rpartition("}")[2] == "ResponseCode":
            return (element.text or "").strip()
    return ""


def _write_response(text: str, number: int, total: int, name: str, out_dir: Path | None) -> None:
    if out_dir is None:
        out(text)
        # "--" may not appear inside an XML comment
        out(RESPONSE_END_MARK.format(number=number, total=total,
                                     name=name.replace("--", "- -")))
        return
    stem = name.removesuffix(".xml") or "request"
    path = out_dir / f"{number:03d}_{stem}.xml"
    try:
        path.write_text(text + "\n", encoding="utf-8")
    except OSError as error:
        raise CliError(f"secure-emu: cannot write {path}: {error.strerror}") from None
    out(str(path))


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
