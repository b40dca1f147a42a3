"""APDUs: every request and response body round-trips, bad bytes give typed errors.

The hypothesis strategies are derived from the Construct definitions themselves, so a field
added to protocol/apdu.py is covered without touching this file.
"""

from __future__ import annotations

import contextlib
import enum
from typing import Any

import construct
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.apdu import (
    REQUEST_BODIES,
    RESPONSE_BODIES,
    ApduError,
    Command,
    EnumAdapter,
    FlagsAdapter,
    PaymentMode,
    Request,
    Response,
    Status,
    UnknownCommandError,
    decode_apdu,
    describe_fields,
    encode_request,
    encode_response,
    failure_response_bytes,
)
from protocol.eui64 import format_eui64, parse_eui64

_INTEGER_RANGES = {
    ">B": (0, 0xFF), ">H": (0, 0xFFFF), ">L": (0, 0xFFFFFFFF),
    ">l": (-(2**31), 2**31 - 1),
}


def strategy_for(subcon: construct.Construct) -> st.SearchStrategy[Any]:
    """Values a Construct field accepts, read off the definition."""
    if isinstance(subcon, construct.Renamed):
        return strategy_for(subcon.subcon)
    if subcon is construct.Pass:
        return st.just({})
    if isinstance(subcon, construct.Struct):
        return st.fixed_dictionaries({
            field.name: strategy_for(field) for field in subcon.subcons if field.name})
    if isinstance(subcon, EnumAdapter):
        return st.sampled_from(list(subcon.enum_class))
    if isinstance(subcon, FlagsAdapter):
        every_bit = 0
        for member in subcon.flag_class:
            every_bit |= member
        return st.integers(0, every_bit).map(lambda bits: subcon.flag_class(bits & every_bit))
    if subcon is construct.Flag:
        return st.booleans()
    if isinstance(subcon, construct.FormatField):
        low, high = _INTEGER_RANGES[subcon.fmtstr]
        return st.integers(low, high)
    if isinstance(subcon, construct.StringEncoded):  # PascalString
        return st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
    if isinstance(subcon, construct.Bytes):
        return st.binary(min_size=subcon.length, max_size=subcon.length)
    if isinstance(subcon, construct.Prefixed):
        return st.binary(max_size=300)
    if isinstance(subcon, construct.FocusedSeq):  # PrefixedArray: a count, then the items
        items = next(field for field in subcon.subcons if field.name == subcon.parsebuildfrom)
        return strategy_for(items)
    if isinstance(subcon, construct.Array):
        return st.lists(strategy_for(subcon.subcon), max_size=4)
    raise AssertionError(f"no strategy for {subcon!r}: extend strategy_for")


REQUESTS = st.one_of([
    st.builds(Request, st.just(command), st.integers(0, 0xFFFF), strategy_for(body))
    for command, body in REQUEST_BODIES.items()
])
SUCCESS_RESPONSES = st.one_of([
    st.builds(Response, st.just(command), st.integers(0, 0xFFFF), st.just(Status.SUCCESS),
              strategy_for(body))
    for command, body in RESPONSE_BODIES.items()
])


def test_every_command_has_a_request_and_a_response_layout() -> None:
    assert set(REQUEST_BODIES) == set(Command) == set(RESPONSE_BODIES)


@settings(max_examples=400, deadline=None)
@given(REQUESTS)
def test_every_request_round_trips_through_its_bytes(request: Request) -> None:
    assert decode_apdu(encode_request(request)) == request


@settings(max_examples=400, deadline=None)
@given(SUCCESS_RESPONSES)
def test_every_success_response_round_trips_through_its_bytes(response: Response) -> None:
    assert decode_apdu(encode_response(response)) == response


@given(st.sampled_from(list(Command)), st.integers(0, 0xFFFF),
       st.sampled_from([status for status in Status if status is not Status.SUCCESS]))
def test_a_failure_response_is_five_bytes_with_no_body(command: Command, invoke_id: int,
                                                        status: Status) -> None:
    data = encode_response(Response(command, invoke_id, status, {"ignored": 1}))
    assert len(data) == 5
    assert decode_apdu(data) == Response(command, invoke_id, status, {})


def test_a_read_request_is_its_four_byte_header() -> None:
    request = Request(Command.READ_METER_BALANCE, 0x1234)
    assert encode_request(request) == bytes.fromhex("01 1234 03")


def test_money_is_signed_big_endian_pence_on_the_wire() -> None:
    request = Request(Command.ADJUST_METER_BALANCE, 7, {"adjustment_pence": -250})
    assert encode_request(request) == bytes.fromhex("01 0007 21 ffffff06")


@pytest.mark.parametrize(("data", "message"), [
    (b"", "shorter than its 4-byte header"),
    (bytes.fromhex("02 0001 03"), "neither request"),
    (bytes.fromhex("01 0001 21 0000"), "ADJUST_METER_BALANCE request body is malformed"),
    (bytes.fromhex("01 0001 03 00"), "READ_METER_BALANCE request body is malformed"),
    (bytes.fromhex("01 0001 20 07") + bytes(40), "is not a PaymentMode"),
    (bytes.fromhex("81 0001 03"), "no status byte"),
    (bytes.fromhex("81 0001 03 ee"), "not a known status"),
    (bytes.fromhex("81 0001 03 04 00"), "failure response carries a body"),
])
def test_a_malformed_apdu_is_a_typed_error_saying_what_is_wrong(data: bytes,
                                                                 message: str) -> None:
    with pytest.raises(ApduError, match=message):
        decode_apdu(data)


def test_an_unknown_command_is_answered_unknown_command_with_the_invoke_id() -> None:
    data = bytes.fromhex("01 abcd 99")
    with pytest.raises(UnknownCommandError) as caught:
        decode_apdu(data)
    assert failure_response_bytes(data, caught.value) == bytes.fromhex("81 abcd 99 02")


def test_a_malformed_body_is_answered_malformed_request_with_the_invoke_id() -> None:
    data = bytes.fromhex("01 0102 21 00")
    with pytest.raises(ApduError) as caught:
        decode_apdu(data)
    answer = failure_response_bytes(data, caught.value)
    assert decode_apdu(answer) == Response(Command.ADJUST_METER_BALANCE, 0x0102,
                                           Status.MALFORMED_REQUEST)


@given(st.binary(max_size=64))
def test_any_bytes_decode_or_raise_a_typed_error(data: bytes) -> None:
    with contextlib.suppress(ApduError):
        decode_apdu(data)


def test_a_field_out_of_range_is_an_apdu_error_naming_the_command() -> None:
    with pytest.raises(ApduError, match="SET_LOAD_LIMIT_SETTINGS"):
        encode_request(Request(Command.SET_LOAD_LIMIT_SETTINGS, 1, {
            "load_limit_power_threshold_w": 70000, "load_limit_period_seconds": 30,
            "load_limit_restoration_period_seconds": 30}))


def test_fields_are_described_readably_for_traces() -> None:
    text = describe_fields({
        "payment_mode": PaymentMode.PREPAYMENT,
        "device_eui64": bytes.fromhex("00db1234567890a1"),
        "utrn": b"12345678901234567890",
        "block_data": bytes(100),
        "entries": [{"state": enum.Enum("S", "JOINED")["JOINED"]}],
    })
    assert text.startswith("payment_mode=PREPAYMENT, device_eui64=00-DB-12-34-56-78-90-A1, "
                           "utrn='12345678901234567890', block_data=0000")
    assert "(100 bytes)" in text and "entries=[{state=JOINED}]" in text


@pytest.mark.parametrize("text", ["00-DB-12-34-56-78-90-A1", "00:db:12:34:56:78:90:a1",
                                  "00DB1234567890A1", " 00-DB-12-34-56-78-90-A1 "])
def test_an_eui64_is_read_with_dashes_colons_or_none(text: str) -> None:
    assert parse_eui64(text) == bytes.fromhex("00db1234567890a1")
    assert format_eui64(parse_eui64(text)) == "00-DB-12-34-56-78-90-A1"


@pytest.mark.parametrize("text", ["00-DB-12-34-56-78-90", "00-DB:12-34-56-78-90-A1",
                                  "00-DB-12-34-56-78-90-AG", ""])
def test_a_malformed_eui64_is_refused_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match="00-DB-12-34-56-78-90-A0"):
        parse_eui64(text)
