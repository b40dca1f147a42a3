"""The APDU body fast path (protocol/apdu_codec.py) equals Construct for every command and body.

For each body layout with a fast codec, hypothesis draws typed bodies and field mappings (valid
ones, read off the layout as in test_apdu.py, and values out of range or of the wrong kind) and
byte strings, and checks the fast codec against the interpreted Construct reference: the same
bytes, the same bodies, and whatever the fast codec declines is refused by Construct too (so
the errors stay Construct's).
"""

from __future__ import annotations

import dataclasses
import enum
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
    ApduError,
    Balances,
    Command,
    EnumAdapter,
    FlagsAdapter,
    build_body_with_construct,
    parse_body_with_construct,
)
from protocol.apdu_codec import FixedBodyCodec, derive_fixed_codec
from tests.protocol.test_apdu import strategy_for, typed_strategy_for


@dataclasses.dataclass(frozen=True)
class FixedBody:
    """One request or response body that has a fast codec."""

    is_request: bool
    command: Command
    layout: construct.Construct
    body_type: type
    codec: FixedBodyCodec

    def __str__(self) -> str:
        return f"{self.command.name}_{'request' if self.is_request else 'response'}"


FIXED = [
    FixedBody(is_request, command, layout, types[command], codec)
    for is_request, layouts, types in ((True, REQUEST_BODIES, REQUEST_BODY_TYPES),
                                       (False, RESPONSE_BODIES, RESPONSE_BODY_TYPES))
    for command, layout in layouts.items()
    if (codec := apdu._FIXED_CODECS.get(id(layout))) is not None]
every_fixed_body = pytest.mark.parametrize("case", FIXED, ids=str)


def _construct_bytes(layout: construct.Construct, body: Any) -> bytes | Exception:
    """Construct's bytes, or what it raised (an ApduError; for a typed body holding something
    other than a record where a record goes, whatever converting it raised)."""
    try:
        return build_body_with_construct(layout, body, "body")
    except Exception as error:
        return error


def _construct_body(is_request: bool, command: Command, data: bytes) -> Any:
    try:
        return parse_body_with_construct(is_request, command, data)
    except ApduError as error:
        return error


def test_the_hot_bodies_have_a_fast_codec() -> None:
    fixed = {(case.is_request, case.command) for case in FIXED}
    assert (False, Command.READ_METER_BALANCE) in fixed
    assert (True, Command.ADJUST_METER_BALANCE) in fixed
    assert (False, Command.ADJUST_METER_BALANCE) in fixed
    assert (False, Command.SET_PAYMENT_MODE) in fixed  # enums and flags
    assert (True, Command.SET_PAYMENT_MODE) in fixed  # a nested record
    assert (True, Command.TOP_UP) in fixed  # fixed bytes
    assert all((True, command) in fixed for command in Command if command.name.startswith("READ_"))


def test_a_variable_size_body_has_none() -> None:
    assert id(REQUEST_BODIES[Command.FIRMWARE_BLOCK]) not in apdu._FIXED_CODECS
    assert id(RESPONSE_BODIES[Command.READ_HAN_ENTRIES]) not in apdu._FIXED_CODECS
    assert id(RESPONSE_BODIES[Command.READ_FIRMWARE_VERSION]) not in apdu._FIXED_CODECS


@every_fixed_body
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_a_typed_body_encodes_and_decodes_as_construct_does(
        case: FixedBody, data: st.DataObject) -> None:
    body = data.draw(typed_strategy_for(case.layout, case.body_type))
    expected = _construct_bytes(case.layout, body)
    assert isinstance(expected, bytes)
    assert case.codec.encode(body) == expected
    decoded = case.codec.decode(expected)
    assert type(decoded) is case.body_type
    assert decoded == body == _construct_body(case.is_request, case.command, expected)


@every_fixed_body
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_a_field_mapping_encodes_as_construct_does(
        case: FixedBody, data: st.DataObject) -> None:
    fields = data.draw(strategy_for(case.layout))
    assert case.codec.encode(fields) == _construct_bytes(case.layout, fields)


def _wild_strategy_for(subcon: construct.Construct) -> st.SearchStrategy[Any]:
    """Values a field may be given, in range or not, of its kind or not."""
    if isinstance(subcon, construct.Renamed):
        return _wild_strategy_for(subcon.subcon)
    if isinstance(subcon, construct.Struct):
        return st.one_of(
            st.fixed_dictionaries({sub.name: _wild_strategy_for(sub)
                                   for sub in subcon.subcons if sub.name}),
            st.dictionaries(st.sampled_from([sub.name for sub in subcon.subcons if sub.name]),
                            st.integers(-1, 2)),  # fields missing
            st.none())
    return st.one_of(strategy_for(subcon), st.integers(-(2**33), 2**33), st.booleans(),
                     st.binary(max_size=24), st.text(max_size=3), st.floats(-2.0, 2.0),
                     st.sampled_from([*PaymentModeLike, None]))


#: an IntEnum that no field holds, with values some enums have
PaymentModeLike = enum.IntEnum("PaymentModeLike", {"ZERO": 0, "ONE": 1})


@every_fixed_body
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_any_field_values_encode_as_construct_encodes_them_or_are_left_to_it(
        case: FixedBody, data: st.DataObject) -> None:
    fields = data.draw(_wild_strategy_for(case.layout) if case.layout is not construct.Pass
                       else st.just({}))
    if not isinstance(fields, dict):
        return
    if data.draw(st.booleans(), label="as a typed body"):
        names = [field.name for field in dataclasses.fields(case.body_type)]
        if set(names) != set(fields):
            return
        # a typed body holding the same (possibly wrong) values, nested records as given
        body: Any = case.body_type(**fields)
    else:
        body = fields
    # the fast path gives Construct's bytes or declines (then Construct builds or refuses it:
    # it takes some values the fast path leaves to it, such as an int for fixed bytes)
    fast = case.codec.encode(body)
    if fast is not None:
        assert fast == _construct_bytes(case.layout, body)


@every_fixed_body
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_any_bytes_decode_as_construct_decodes_them(
        case: FixedBody, data: st.DataObject) -> None:
    size = case.codec.size
    wire = data.draw(st.one_of(st.binary(min_size=size, max_size=size),
                               st.binary(max_size=size + 2)))
    expected = _construct_body(case.is_request, case.command, wire)
    decoded = case.codec.decode(wire)
    if decoded is None:  # declined: Construct refuses it and says why
        assert isinstance(expected, ApduError)
    else:
        assert len(wire) == size
        assert decoded == expected


def test_bytes_of_another_length_are_never_decoded_by_the_fast_path() -> None:
    codec = apdu._FIXED_CODECS[id(RESPONSE_BODIES[Command.READ_METER_BALANCE])]
    assert codec.decode(bytes.fromhex("000004e2 00000000")) == Balances(
        meter_balance_pence=1250, emergency_credit_balance_pence=0)
    assert codec.decode(bytes.fromhex("000004e2 000000")) is None
    assert codec.decode(bytes.fromhex("000004e2 00000000 00")) is None


def test_a_body_of_another_class_is_left_to_construct() -> None:
    codec = apdu._FIXED_CODECS[id(RESPONSE_BODIES[Command.READ_METER_BALANCE])]
    assert codec.encode(apdu.DeviceClock(device_time_seconds=5)) is None


_ADAPTERS = (EnumAdapter, FlagsAdapter)


@pytest.mark.parametrize("layout", [
    construct.Struct("x" / construct.Int32sb, construct.Terminated),  # an unnamed member
    construct.Struct("x" / construct.Int32sl),  # little-endian
    construct.Struct("x" / construct.PascalString(construct.Int8ub, "ascii")),
    construct.Struct("x" / construct.Prefixed(construct.Int16ub, construct.GreedyBytes)),
    construct.Struct("x" / construct.Float32b),
    construct.Struct("x" / construct.ExprValidator(construct.Int8ub, lambda obj, ctx: obj < 9)),
    construct.Struct("x" / construct.Enum(construct.Int8ub, a=1)),  # an adapter not listed
    construct.Struct("x" / construct.Struct("y" / construct.GreedyBytes)),
    construct.Int8ub,
], ids=["unnamed", "little_endian", "text", "prefixed", "float", "validator",
        "unlisted_adapter", "nested_variable", "not_a_record"])
def test_a_layout_with_a_field_it_does_not_know_gets_no_fast_codec(
        layout: construct.Construct) -> None:
    assert derive_fixed_codec(layout, Balances, lambda _: Balances, _ADAPTERS) is None


def test_every_fast_codec_is_the_size_of_its_layout() -> None:
    for case in FIXED:
        expected = 0 if case.layout is construct.Pass else case.layout.sizeof()
        assert case.codec.size == expected


def test_an_apdu_decodes_the_same_without_the_fast_path(
        monkeypatch: pytest.MonkeyPatch) -> None:
    data = bytes.fromhex("81 0007 03 00 000004e2 fffffff6")
    fast = apdu.decode_apdu(data)
    monkeypatch.delitem(apdu._FIXED_DECODERS, (False, Command.READ_METER_BALANCE))
    assert apdu.decode_apdu(data) == fast
    assert fast.body == Balances(meter_balance_pence=1250, emergency_credit_balance_pence=-10)
