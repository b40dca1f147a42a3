"""Property tests: conversions agree with exact rational arithmetic, and submit answers every
input with a well-formed DUIS response (never a traceback)."""

from __future__ import annotations

from fractions import Fraction
from xml.etree.ElementTree import fromstring

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.apdu import MAX_JOIN_WINDOW_MINUTES
from protocol.s1sp.adapter import S1spAdapter
from protocol.s1sp.duis import DUIS_NAMESPACE
from protocol.s1sp.units import (
    INT32_MAX,
    INT32_MIN,
    duis_money_to_pence,
    join_time_period_seconds_to_minutes,
)
from tests.protocol.s1sp.conftest import FIXTURES, Rig

NS = {"sr": DUIS_NAMESPACE}
KNOWN_CODES = {"I0", "E11", "E12", "E19", "E20", "E21", "E-S1SR", "E-INVALID"}
FIXTURE_TEXTS = [path.read_text() for path in sorted(FIXTURES.glob("*.xml"))]


@given(st.integers(INT32_MIN, INT32_MAX))
def test_money_is_exact_truncation_toward_zero(duis_value: int) -> None:
    pence = duis_money_to_pence(duis_value, "AdjustMeterBalance")
    assert pence == int(Fraction(duis_value, 1000))  # int() of a Fraction truncates
    assert abs(pence * 1000) <= abs(duis_value) < abs(pence * 1000) + 1000


@given(st.integers(1, MAX_JOIN_WINDOW_MINUTES * 60))
def test_join_window_is_the_shortest_whole_minutes_not_shorter_than_asked(seconds: int) -> None:
    minutes = join_time_period_seconds_to_minutes(seconds)
    assert (minutes - 1) * 60 < seconds <= minutes * 60


def _answer_code(adapter: S1spAdapter, document: str | bytes) -> str:
    xml = adapter.submit(document)
    code = fromstring(xml).findtext("sr:Header/sr:ResponseCode", namespaces=NS)
    assert code is not None
    return code


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_get_an_invalid_request_response_and_nothing_is_sent(data: bytes) -> None:
    rig = Rig()
    assert _answer_code(rig.adapter, data) == "E-INVALID"
    assert rig.channel.exchanges == []


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(FIXTURE_TEXTS), st.data())
def test_damaged_fixtures_always_get_a_well_formed_duis_response(text: str,
                                                                 data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(text)))
    length = data.draw(st.integers(0, 40))
    insert = data.draw(st.text(alphabet="<>/&;:-0123456789AZaz \"'=!", max_size=8))
    damaged = text[:start] + insert + text[start + length:]
    assert _answer_code(Rig().adapter, damaged) in KNOWN_CODES
