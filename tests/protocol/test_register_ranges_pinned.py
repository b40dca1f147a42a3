"""The money register ranges, written out: the widest whole-pence value whose DUIS form
(pence x 1000) fits int32 is 2147483 p, and `in_range` includes both ends and nothing past
them."""

from __future__ import annotations

import pytest

from protocol.register_ranges import (
    DEBT_REGISTER_RANGE_PENCE,
    METER_BALANCE_RANGE_PENCE,
    MONEY_REGISTER_MAX_PENCE,
    MONEY_REGISTER_MIN_PENCE,
    SIGNED_THRESHOLD_RANGE_PENCE,
    THRESHOLD_RANGE_PENCE,
    in_range,
)


def test_the_ranges_are_the_documented_pence_values() -> None:
    assert MONEY_REGISTER_MAX_PENCE == 2147483
    assert MONEY_REGISTER_MIN_PENCE == -2147483
    assert METER_BALANCE_RANGE_PENCE == (-2147483, 2147483)
    assert SIGNED_THRESHOLD_RANGE_PENCE == (-2147483, 2147483)
    assert THRESHOLD_RANGE_PENCE == (0, 2147483)
    assert DEBT_REGISTER_RANGE_PENCE == (0, 2147483)


@pytest.mark.parametrize(("value", "inside"), [
    (-2147484, False), (-2147483, True), (-1, True), (0, True), (2147483, True),
    (2147484, False)])
def test_in_range_includes_both_ends_of_a_signed_range(value: int, inside: bool) -> None:
    assert in_range(value, (-2147483, 2147483)) is inside


@pytest.mark.parametrize(("value", "inside"), [(-1, False), (0, True), (1, True), (7, True),
                                                (8, False)])
def test_in_range_includes_both_ends_of_a_narrow_range(value: int, inside: bool) -> None:
    assert in_range(value, (0, 7)) is inside


def test_in_range_reads_the_lowest_first() -> None:
    assert in_range(5, (5, 5)) is True
    assert in_range(4, (5, 6)) is False
    assert in_range(7, (5, 6)) is False
