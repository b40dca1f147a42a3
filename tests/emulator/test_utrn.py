"""UTRNs: Verhoeff check digit, the token layout, binding to one meter, typed rejections."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulator import make_top_up_utrn
from emulator.errors import UtrnCheckDigitError, UtrnMalformedError, UtrnWrongMeterError
from emulator.utrn import (
    UTRN_MAX_COUNTER,
    UTRN_MAX_VALUE,
    UtrnValueClass,
    make_utrn,
    parse_utrn,
    verhoeff_check_digit,
)

METER = bytes.fromhex("00DB1234567890A0")
OTHER_METER = bytes.fromhex("00DB1234567890A1")


@pytest.mark.parametrize(("digits", "check"), [
    ("236", "3"),  # the worked example in Verhoeff's scheme descriptions
    ("12345", "1"),
    ("142857", "0"),
    ("123456789012", "0"),
    ("8473643095483728456789", "2"),
])
def test_verhoeff_check_digit_matches_published_vectors(digits: str, check: str) -> None:
    assert verhoeff_check_digit(digits) == check


def test_utrn_is_20_digits_ending_in_its_verhoeff_check_digit() -> None:
    utrn = make_utrn(METER, counter=1, value_class=UtrnValueClass.POUNDS, value=20)
    assert len(utrn) == 20 and utrn.isdigit()
    assert verhoeff_check_digit(utrn[:19]) == utrn[19]


@given(counter=st.integers(0, UTRN_MAX_COUNTER), value_class=st.sampled_from(UtrnValueClass),
       value=st.integers(0, UTRN_MAX_VALUE))
def test_utrn_round_trips_counter_value_class_and_value(counter: int,
                                                        value_class: UtrnValueClass,
                                                        value: int) -> None:
    parsed = parse_utrn(make_utrn(METER, counter, value_class, value), METER)
    assert (parsed.counter, parsed.value_class, parsed.value) == (counter, value_class, value)


def test_utrn_value_in_pounds_credits_100_pence_per_unit() -> None:
    assert parse_utrn(make_utrn(METER, 7, UtrnValueClass.POUNDS, 25), METER).value_pence == 2500
    assert parse_utrn(make_utrn(METER, 8, UtrnValueClass.PENNIES, 25), METER).value_pence == 25


def test_utrn_accepts_ascii_bytes_as_sent_on_the_wire() -> None:
    utrn = make_utrn(METER, 3, UtrnValueClass.PENNIES, 8191)
    assert parse_utrn(utrn.encode("ascii"), METER).value == 8191


def test_utrn_for_another_meter_is_rejected_as_wrong_meter() -> None:
    utrn = make_utrn(OTHER_METER, 1, UtrnValueClass.POUNDS, 10)
    with pytest.raises(UtrnWrongMeterError, match="00-DB-12-34-56-78-90-A0"):
        parse_utrn(utrn, METER)


def test_utrn_with_one_digit_mistyped_fails_the_check_digit() -> None:
    utrn = make_utrn(METER, 1, UtrnValueClass.POUNDS, 10)
    for position in range(20):
        wrong = str((int(utrn[position]) + 1) % 10)
        with pytest.raises(UtrnCheckDigitError):
            parse_utrn(utrn[:position] + wrong + utrn[position + 1:], METER)


def test_utrn_with_adjacent_digits_swapped_fails_the_check_digit() -> None:
    utrn = make_utrn(METER, 12, UtrnValueClass.PENNIES, 345)
    for position in range(19):
        if utrn[position] != utrn[position + 1]:
            swapped = (utrn[:position] + utrn[position + 1] + utrn[position]
                       + utrn[position + 2:])
            with pytest.raises(UtrnCheckDigitError):
                parse_utrn(swapped, METER)


#: The last entry is 20 full-width digits: str.isdigit() accepts them, a UTRN must not.
@pytest.mark.parametrize("bad", ["1234", "1" * 21, "1234567890123456789x", "",
                                 "".join(chr(0xFF10 + int(c)) for c in "12345678901234567890")])
def test_utrn_not_20_ascii_digits_is_malformed(bad: str) -> None:
    with pytest.raises(UtrnMalformedError):
        parse_utrn(bad, METER)


def test_utrn_token_above_the_layout_is_malformed_even_with_a_good_check_digit() -> None:
    digits = "9" * 19
    with pytest.raises(UtrnMalformedError, match="not a token"):
        parse_utrn(digits + verhoeff_check_digit(digits), METER)


def test_make_utrn_refuses_values_outside_the_token_fields() -> None:
    with pytest.raises(ValueError, match="8191"):
        make_utrn(METER, 1, UtrnValueClass.PENNIES, 8192)
    with pytest.raises(ValueError, match="counter"):
        make_utrn(METER, UTRN_MAX_COUNTER + 1, UtrnValueClass.PENNIES, 1)


@pytest.mark.parametrize(("pence", "value_class", "value"), [
    (0, UtrnValueClass.PENNIES, 0),
    (1234, UtrnValueClass.PENNIES, 1234),
    (8191, UtrnValueClass.PENNIES, 8191),
    (10_000, UtrnValueClass.POUNDS, 100),
    (819_100, UtrnValueClass.POUNDS, 8191),
])
def test_a_top_up_utrn_in_pence_opens_to_that_amount(pence: int, value_class: UtrnValueClass,
                                                    value: int) -> None:
    for meter in (METER, "00-db-12-34-56-78-90-a0"):
        parsed = parse_utrn(make_top_up_utrn(meter, 9, pence=pence), METER)
        assert (parsed.counter, parsed.value_class, parsed.value) == (9, value_class, value)
        assert parsed.value_pence == pence


@pytest.mark.parametrize("pence", [8192 + 50, 819_200, -1])
def test_a_top_up_no_utrn_can_carry_is_refused_naming_the_unit(pence: int) -> None:
    with pytest.raises(ValueError, match=r"pence| p "):
        make_top_up_utrn(METER, 1, pence=pence)
