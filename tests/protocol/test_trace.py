"""Frame traces: one readable line per frame, for serve --trace and send --trace."""

from __future__ import annotations

from protocol.apdu import (
    AdjustMeterBalanceRequest,
    Command,
    Request,
    Response,
    Status,
    encode_request,
    encode_response,
)
from protocol.hdlc import FrameType, HdlcFrame
from protocol.hdlc_codec import encode_frame
from protocol.trace import describe_frame, format_trace_line, line_trace

METER_ADDRESS = 16


def test_describe_frame_shows_type_addresses_sequence_numbers_and_the_apdu() -> None:
    information = bytes.fromhex("e6e600") + encode_request(
        Request(Command.ADJUST_METER_BALANCE, 5,
                body=AdjustMeterBalanceRequest(adjustment_pence=-42)))
    frame = HdlcFrame.make(FrameType.I, METER_ADDRESS, 0x10, information,
                           send_sequence=3, receive_sequence=2)
    text = describe_frame(frame)
    assert "I dst=16 src=16" in text
    assert "N(S)=3 N(R)=2" in text
    assert "ADJUST_METER_BALANCE request invoke=5" in text
    assert "adjustment_pence=-42" in text


def test_describe_frame_names_a_keyed_request_a_request() -> None:
    information = bytes.fromhex("e6e600") + encode_request(
        Request(Command.ADJUST_METER_BALANCE, 6, body=AdjustMeterBalanceRequest(
            adjustment_pence=7), idempotency_key=bytes(range(16))))
    text = describe_frame(HdlcFrame.make(FrameType.I, METER_ADDRESS, 0x10, information))
    assert "ADJUST_METER_BALANCE keyed request invoke=6 {adjustment_pence=7}" in text


def test_describe_frame_of_a_response_shows_the_status() -> None:
    information = bytes.fromhex("e6e700") + encode_response(
        Response(Command.TOP_UP, 8, Status.UTRN_DUPLICATE))
    frame = HdlcFrame.make(FrameType.I, 0x10, METER_ADDRESS, information)
    assert "TOP_UP response UTRN_DUPLICATE invoke=8" in describe_frame(frame)


def test_trace_line_has_time_direction_hex_and_decoding() -> None:
    frame = HdlcFrame.make(FrameType.RR, 0x10, METER_ADDRESS, receive_sequence=4)
    line = format_trace_line("tx", frame, timestamp="12:00:00.000", peer="pty")
    head, decoded = line.split("\n")
    assert head.startswith("12:00:00.000 pty tx -> 7e ")
    assert head.endswith(encode_frame(frame).hex(" "))
    assert decoded.strip() == "RR dst=16 src=16 N(R)=4 P/F=1"


def test_line_trace_hands_each_frame_to_the_sink_with_the_peer_name() -> None:
    lines: list[str] = []
    trace = line_trace(lines.append, peer="tcp 127.0.0.1:4059")
    trace("rx", HdlcFrame.make(FrameType.SNRM, METER_ADDRESS, 0x10), 0)
    assert len(lines) == 1
    head, decoded = lines[0].split("\n")
    assert " tcp 127.0.0.1:4059 rx <- 7e " in head
    assert decoded.strip() == "SNRM dst=16 src=16 P/F=1"
