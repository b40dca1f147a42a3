"""Frame traces: one line per frame in or out, for ``serve --trace`` and ``send --trace``.

A :data:`FrameTrace` is called with ``(direction, frame, now_ms)`` for every frame a link
multiplexer receives (``"rx"``) or sends (``"tx"``); :func:`line_trace` makes one that writes
:func:`format_trace_line` lines to a sink. This module only formats: it must never write to a
port or read the link's clock (trace lines carry the local wall time, for people).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from protocol.apdu import Response, decode_apdu, describe_fields
from protocol.errors import ProtocolError
from protocol.hdlc import FrameType, HdlcFrame
from protocol.hdlc_codec import encode_frame
from protocol.link import LLC_CLIENT_TO_SERVER, LLC_SERVER_TO_CLIENT

__all__ = ["FrameTrace", "describe_frame", "format_trace_line", "line_trace",
           "wall_clock_text"]

#: ``(direction, frame, now_ms)`` for every frame in (``"rx"``) and out (``"tx"``).
FrameTrace = Callable[[str, HdlcFrame, int], None]


def _describe_apdu(information: bytes) -> str:
    for llc in (LLC_CLIENT_TO_SERVER, LLC_SERVER_TO_CLIENT):
        if information.startswith(llc):
            apdu_bytes = information[len(llc):]
            break
    else:
        return "continuation segment"
    try:
        apdu = decode_apdu(apdu_bytes)
    except ProtocolError as error:
        return f"APDU not decodable here ({error})"
    fields = describe_fields(apdu.body) if apdu.body is not None else ""
    if isinstance(apdu, Response):
        kind = f"response {apdu.status.name}"
    else:
        kind = "request" if apdu.idempotency_key is None else "keyed request"
    return f"{apdu.command.name} {kind} invoke={apdu.invoke_id} {{{fields}}}"


def describe_frame(frame: HdlcFrame) -> str:
    """One line: frame type, addresses, sequence numbers, and the APDU when one is inside."""
    frame_type = frame.frame_type
    name = frame_type.name if frame_type is not None else f"control=0x{frame.control:02X}"
    parts = [f"{name} dst={frame.destination_address} src={frame.source_address}"]
    if frame_type is FrameType.I:
        parts.append(f"N(S)={frame.send_sequence} N(R)={frame.receive_sequence}")
    elif frame_type in (FrameType.RR, FrameType.RNR):
        parts.append(f"N(R)={frame.receive_sequence}")
    parts.append(f"P/F={int(frame.poll_final)}")
    if frame.segmented:
        parts.append("segmented")
    if frame_type is FrameType.I and frame.information:
        parts.append("| " + _describe_apdu(frame.information))
    elif frame.information:
        parts.append(f"| info {frame.information.hex()}")
    return " ".join(parts)


def wall_clock_text() -> str:
    """Local wall time as HH:MM:SS.mmm, for trace lines."""
    now_ns = time.time_ns()
    return time.strftime("%H:%M:%S", time.localtime(now_ns // 1_000_000_000)) + (
        f".{now_ns // 1_000_000 % 1000:03d}")


def format_trace_line(direction: str, frame: HdlcFrame, *, timestamp: str, peer: str = "") -> str:
    """``time peer rx|tx hex`` then the decoded frame on an indented second line."""
    arrow = "<-" if direction == "rx" else "->"
    who = f" {peer}" if peer else ""
    wire_hex = encode_frame(frame).hex(" ")
    return f"{timestamp}{who} {direction} {arrow} {wire_hex}\n    {describe_frame(frame)}"


def line_trace(sink: Callable[[str], None], *, peer: str = "") -> FrameTrace:
    """A :data:`FrameTrace` that hands each frame's :func:`format_trace_line` text, stamped
    with the local wall time, to ``sink``."""

    def trace(direction: str, frame: HdlcFrame, now_ms: int) -> None:
        sink(format_trace_line(direction, frame, timestamp=wall_clock_text(), peer=peer))

    return trace
