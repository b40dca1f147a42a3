"""APDUs: every request and response body round-trips, bad bytes give typed errors, and every
body has a typed dataclass matching its Construct layout field by field.

The hypothesis strategies are derived from the Construct definitions themselves, so a field
added to protocol/apdu.py is covered without touching this file.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import pickle
import typing
from typing import Any

import construct
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import apdu
from protocol.apdu import (
    REQUEST_BODIES,
    REQUEST_BODY_TYPES,
    RESPONSE_BODIES,
    RESPONSE_BODY_TYPES,
    AdjustMeterBalanceRequest,
    ApduBody,
    ApduError,
    Balances,
    Command,
    DeviceClock,
    EnumAdapter,
    FirmwareBlockRequest,
    FlagsAdapter,
    HanAddDeviceRequest,
    HanEntry,
    HanEntryState,
    PaymentMode,
    PrepaymentDefaults,
    ReadHanEntriesResponse,
    Request,
    Response,
    SetLoadLimitSettingsRequest,
    SetPaymentModeRequest,
    SetSupplyStateRequest,
    SizeBounded,
    Status,
    SupplyState,
    TopUpRequest,
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
    """Values a Construct field of one value accepts, read off the definition."""
    if isinstance(subcon, (construct.Renamed, construct.Default)):
        return strategy_for(subcon.subcon)
    if isinstance(subcon, SizeBounded):  # bytes16 within the layout's bounds
        return st.binary(min_size=subcon.min_size, max_size=min(subcon.max_size, 300))
    if subcon is construct.Pass:  # an empty body, as the codec tests draw it
        return st.just({})
    if isinstance(subcon, construct.Struct):  # a record as the codec tests draw it
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
    if isinstance(subcon, construct.Array):
        return st.lists(strategy_for(subcon.subcon), max_size=4)
    raise AssertionError(f"no strategy for {subcon!r}: extend strategy_for")


def test_every_command_has_a_request_and_a_response_layout() -> None:
    assert set(REQUEST_BODIES) == set(Command) == set(RESPONSE_BODIES)


def expected_python_type(subcon: construct.Construct) -> Any:
    """The Python type a body class must give a Construct field, written out here so that the
    generated classes are checked against an independent reading of the layout (a nested
    record is checked recursively and stands for its own body class)."""
    if isinstance(subcon, construct.Renamed | construct.Default | SizeBounded):
        return expected_python_type(subcon.subcon)
    if isinstance(subcon, EnumAdapter):
        return subcon.enum_class
    if isinstance(subcon, FlagsAdapter):
        return subcon.flag_class
    if subcon is construct.Flag:
        return bool
    if isinstance(subcon, construct.FormatField) and subcon.fmtstr in _INTEGER_RANGES:
        return int
    if isinstance(subcon, construct.StringEncoded):
        return str
    if isinstance(subcon, construct.Bytes | construct.Prefixed):
        return bytes
    raise AssertionError(f"no expected type for {subcon!r}: extend expected_python_type")


def assert_body_class_matches_layout(body_class: type, layout: construct.Construct) -> None:
    assert issubclass(body_class, ApduBody)
    assert dataclasses.is_dataclass(body_class)
    assert body_class.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert "__slots__" in body_class.__dict__
    subcons = [] if layout is construct.Pass else [sub for sub in layout.subcons if sub.name]
    fields = dataclasses.fields(body_class)
    assert [f.name for f in fields] == [sub.name for sub in subcons], body_class.__name__
    for field, sub in zip(fields, subcons, strict=True):
        inner = sub.subcon
        if isinstance(inner, construct.Struct):
            assert_body_class_matches_layout(field.type, inner)
        elif isinstance(inner, construct.FocusedSeq):  # PrefixedArray: a tuple of its items
            items = next(f for f in inner.subcons if f.name == inner.parsebuildfrom).subcon
            assert typing.get_origin(field.type) is tuple
            item_type, ellipsis = typing.get_args(field.type)
            assert ellipsis is Ellipsis
            if isinstance(items.subcon, construct.Struct):
                assert_body_class_matches_layout(item_type, items.subcon)
            else:  # an array of plain values (READ_PROFILE_DATA's values)
                assert item_type is expected_python_type(items.subcon)
        else:
            assert field.type is expected_python_type(sub), (body_class.__name__, field.name)


@pytest.mark.parametrize("command", list(Command), ids=lambda command: command.name)
def test_every_command_has_request_and_response_dataclasses_matching_its_layouts(
        command: Command) -> None:
    assert_body_class_matches_layout(REQUEST_BODY_TYPES[command], REQUEST_BODIES[command])
    assert_body_class_matches_layout(RESPONSE_BODY_TYPES[command], RESPONSE_BODIES[command])


def test_a_layout_shared_by_commands_is_one_class_named_after_it() -> None:
    assert RESPONSE_BODY_TYPES[Command.READ_METER_BALANCE] is Balances
    assert RESPONSE_BODY_TYPES[Command.ACTIVATE_EMERGENCY_CREDIT] is Balances
    assert REQUEST_BODY_TYPES[Command.SYNCHRONISE_CLOCK] is DeviceClock
    assert RESPONSE_BODY_TYPES[Command.READ_CLOCK] is DeviceClock
    assert REQUEST_BODY_TYPES[Command.ADJUST_METER_BALANCE] is AdjustMeterBalanceRequest
    assert REQUEST_BODY_TYPES[Command.READ_CLOCK] is apdu.Empty


def test_a_field_with_no_python_type_fails_when_its_class_is_made() -> None:
    with pytest.raises(TypeError, match="no Python type"):
        apdu._body_type(construct.Struct("ratio" / construct.Float32b), "RATIO_REQUEST")


def typed_strategy_for(subcon: construct.Construct, python_type: Any) -> st.SearchStrategy[Any]:
    """Typed values for a field: body classes for records, tuples for arrays, otherwise the
    values :func:`strategy_for` reads off the layout."""
    if isinstance(subcon, construct.Renamed):
        return typed_strategy_for(subcon.subcon, python_type)
    if subcon is construct.Pass:
        return st.builds(python_type)
    if isinstance(subcon, construct.Struct):
        return st.builds(python_type, **{
            field.name: typed_strategy_for(sub, field.type)
            for field, sub in zip(dataclasses.fields(python_type),
                                  [sub for sub in subcon.subcons if sub.name], strict=True)})
    if isinstance(subcon, construct.FocusedSeq):
        items = next(field for field in subcon.subcons if field.name == subcon.parsebuildfrom)
        item_type = typing.get_args(python_type)[0]
        return st.lists(typed_strategy_for(items.subcon.subcon, item_type), max_size=4).map(tuple)
    return strategy_for(subcon)


TYPED_REQUESTS = st.one_of([
    st.builds(lambda command, invoke_id, body: Request(command, invoke_id, body=body),
              st.just(command), st.integers(0, 0xFFFF),
              typed_strategy_for(body, REQUEST_BODY_TYPES[command]))
    for command, body in REQUEST_BODIES.items()
])
TYPED_SUCCESS_RESPONSES = st.one_of([
    st.builds(lambda command, invoke_id, body: Response(command, invoke_id, Status.SUCCESS,
                                                        body=body),
              st.just(command), st.integers(0, 0xFFFF),
              typed_strategy_for(body, RESPONSE_BODY_TYPES[command]))
    for command, body in RESPONSE_BODIES.items()
])


@settings(max_examples=800, deadline=None)
@given(st.one_of(TYPED_REQUESTS, TYPED_SUCCESS_RESPONSES))
def test_every_typed_body_round_trips_through_its_bytes(message: Request | Response) -> None:
    data = encode_request(message) if isinstance(message, Request) else encode_response(message)
    decoded = decode_apdu(data)
    assert type(decoded) is type(message)
    assert type(decoded.body) is type(message.body)
    assert decoded.body == message.body


@settings(max_examples=400, deadline=None)
@given(TYPED_REQUESTS)
def test_every_request_round_trips_through_its_bytes(request: Request) -> None:
    assert decode_apdu(encode_request(request)) == request


@settings(max_examples=400, deadline=None)
@given(TYPED_SUCCESS_RESPONSES)
def test_every_success_response_round_trips_through_its_bytes(response: Response) -> None:
    assert decode_apdu(encode_response(response)) == response


def test_a_decoded_body_has_typed_attributes() -> None:
    request = decode_apdu(bytes.fromhex("01 0007 21 ffffff06"))
    assert request == Request(Command.ADJUST_METER_BALANCE, 7,
                              body=AdjustMeterBalanceRequest(adjustment_pence=-250))
    assert request.body.adjustment_pence == -250  # type: ignore[union-attr]
    response = decode_apdu(bytes.fromhex(
        "81 0009 07 00 01 00db1234567890a1 01 000003e8"))
    assert isinstance(response, Response)
    assert isinstance(response.body, ReadHanEntriesResponse)
    (entry,) = response.body.entries
    assert entry == HanEntry(device_eui64=bytes.fromhex("00db1234567890a1"),
                             state=HanEntryState.JOIN_WINDOW_OPEN,
                             join_window_closes_at_seconds=1000)
    assert entry.state is HanEntryState.JOIN_WINDOW_OPEN


def test_a_failure_response_has_no_body() -> None:
    response = decode_apdu(bytes.fromhex("81 0001 03 04"))
    assert isinstance(response, Response) and response.body is None
    with pytest.raises(TypeError, match="has no body"):
        Response(Command.READ_METER_BALANCE, 1, Status.VALUE_OUT_OF_RANGE,
                 body=Balances(meter_balance_pence=0, emergency_credit_balance_pence=0))


def test_replacing_the_invoke_id_keeps_the_typed_body() -> None:
    request = Request(Command.SET_SUPPLY_STATE, 1,
                      body=SetSupplyStateRequest(supply_state=SupplyState.ARMED))
    renumbered = dataclasses.replace(request, invoke_id=2)
    assert renumbered.invoke_id == 2 and renumbered.body is request.body
    assert encode_request(renumbered) == bytes.fromhex("01 0002 32 02")


def test_a_message_copies_and_pickles_with_its_typed_body() -> None:
    request = Request(Command.SET_SUPPLY_STATE, 5,
                      body=SetSupplyStateRequest(supply_state=SupplyState.DISABLED))
    response = Response(Command.READ_METER_BALANCE, 5, Status.SUCCESS,
                        body=Balances(meter_balance_pence=-10, emergency_credit_balance_pence=0))
    for message in (request, response):
        assert copy.copy(message) == message
        assert pickle.loads(pickle.dumps(message)).body == message.body


def test_a_body_of_another_command_is_refused_when_the_request_is_made() -> None:
    with pytest.raises(TypeError, match="AdjustMeterBalanceRequest, not a SetSupplyStateRequest"):
        Request(Command.ADJUST_METER_BALANCE, 1,
                body=SetSupplyStateRequest(supply_state=SupplyState.ENABLED))


def test_a_message_without_the_body_its_command_needs_is_refused_when_made() -> None:
    with pytest.raises(TypeError, match="AdjustMeterBalanceRequest, not none"):
        Request(Command.ADJUST_METER_BALANCE, 1)
    with pytest.raises(TypeError, match="Balances, not a dict"):
        Response(Command.READ_METER_BALANCE, 1, Status.SUCCESS,
                 {"meter_balance_pence": 0})  # type: ignore[arg-type]


@pytest.mark.parametrize("request_", [
    Request(Command.ADJUST_METER_BALANCE, 1,
            body=AdjustMeterBalanceRequest(adjustment_pence=2**31)),
    Request(Command.SET_SUPPLY_STATE, 1,
            body=SetSupplyStateRequest(supply_state=7)),  # type: ignore[arg-type]
    Request(Command.ADJUST_METER_BALANCE, 1,
            body=AdjustMeterBalanceRequest(adjustment_pence="250")),  # type: ignore[arg-type]
], ids=["pence_beyond_i32", "unknown_supply_state", "pence_as_text"])
def test_a_typed_body_out_of_range_is_an_apdu_error_at_encode(request_: Request) -> None:
    with pytest.raises(ApduError, match=f"cannot encode {request_.command.name} request"):
        encode_request(request_)


@given(st.sampled_from(list(Command)), st.integers(0, 0xFFFF),
       st.sampled_from([status for status in Status if status is not Status.SUCCESS]))
def test_a_failure_response_is_five_bytes_with_no_body(command: Command, invoke_id: int,
                                                        status: Status) -> None:
    data = encode_response(Response(command, invoke_id, status))
    assert len(data) == 5
    assert decode_apdu(data) == Response(command, invoke_id, status)


def test_a_read_request_is_its_four_byte_header() -> None:
    request = Request(Command.READ_METER_BALANCE, 0x1234)
    assert encode_request(request) == bytes.fromhex("01 1234 03")


def test_money_is_signed_big_endian_pence_on_the_wire() -> None:
    request = Request(Command.ADJUST_METER_BALANCE, 7,
                      body=AdjustMeterBalanceRequest(adjustment_pence=-250))
    assert encode_request(request) == bytes.fromhex("01 0007 21 ffffff06")


@pytest.mark.parametrize(("data", "message"), [
    (b"", "shorter than its 4-byte header"),
    (bytes.fromhex("03 0001 03"), "neither request"),
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
        encode_request(Request(Command.SET_LOAD_LIMIT_SETTINGS, 1,
                               body=SetLoadLimitSettingsRequest(
                                   load_limit_power_threshold_w=70000,
                                   load_limit_period_seconds=30,
                                   load_limit_restoration_period_seconds=30)))


def test_fields_are_described_readably_for_traces() -> None:
    eui64 = bytes.fromhex("00db1234567890a1")
    text = ", ".join(describe_fields(body) for body in (
        SetPaymentModeRequest(payment_mode=PaymentMode.PREPAYMENT,
                              disablement_threshold_pence=0, suspend_debt_disabled=False,
                              suspend_debt_emergency=False, defaults=PrepaymentDefaults(
                                  *[0] * len(dataclasses.fields(PrepaymentDefaults)))),
        HanAddDeviceRequest(device_eui64=eui64, join_window_minutes=1),
        TopUpRequest(utrn=b"12345678901234567890"),
        FirmwareBlockRequest(block_offset_bytes=0, block_data=bytes(100)),
        ReadHanEntriesResponse(entries=(HanEntry(device_eui64=eui64, state=HanEntryState.JOINED,
                                                 join_window_closes_at_seconds=0),))))
    assert text.startswith("payment_mode=PREPAYMENT, ")
    assert "device_eui64=00-DB-12-34-56-78-90-A1, " in text
    assert "utrn='12345678901234567890', block_offset_bytes=0, block_data=0000" in text
    assert "(100 bytes)" in text and "state=JOINED" in text
    assert "entries=[{device_eui64=00-DB-12-34-56-78-90-A1, state=JOINED, " in text


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


@pytest.mark.parametrize("message", [
    Request(Command.SET_SUPPLY_STATE, 1,
            body=SetSupplyStateRequest(supply_state=SupplyState.ARMED)),
    Request(Command.ADJUST_METER_BALANCE, 1,
            body=AdjustMeterBalanceRequest(adjustment_pence=-250),
            idempotency_key=bytes(range(16))),
    Request(Command.READ_METER_BALANCE, 1),
    Response(Command.READ_METER_BALANCE, 1, Status.SUCCESS,
             body=Balances(meter_balance_pence=-10, emergency_credit_balance_pence=0)),
    Response(Command.TOP_UP, 1, Status.UTRN_DUPLICATE),
], ids=["typed", "keyed", "empty", "response", "failure"])
def test_with_invoke_id_is_replacing_the_invoke_id(message: Request | Response) -> None:
    renumbered = message.with_invoke_id(0x0203)
    assert renumbered == dataclasses.replace(message, invoke_id=0x0203)
    assert renumbered.invoke_id == 0x0203 and message.invoke_id == 1
    encode = encode_request if isinstance(message, Request) else encode_response
    assert encode(renumbered)[1:3] == bytes.fromhex("0203")
    assert encode(renumbered)[3:] == encode(message)[3:]
