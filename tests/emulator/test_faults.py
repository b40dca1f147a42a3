"""Seeded link faults (emulator/faults.py): the spec users write, each fault kind, and every
money command applied exactly once through the adapter under each kind."""

from __future__ import annotations

import re

import pytest

from emulator.faults import (
    FaultPlan,
    FaultSpec,
    FaultSpecError,
    FaultyPipe,
    ManualClock,
    MemoryLink,
    parse_duration_ms,
)
from emulator.pytest_plugin import build_meters

ESME_EUI = "00-DB-12-34-56-78-90-A1"


def test_fault_spec_reads_every_key_users_write() -> None:
    spec = FaultSpec.parse("drop=0.01, corrupt=0.001,duplicate=0.01,delay=20ms,split=1,"
                           "stall=0.05:2s,seed=7")
    assert spec == FaultSpec(drop=0.01, corrupt=0.001, duplicate=0.01, delay_ms=20, split=True,
                             stall_chance=0.05, stall_ms=2000, seed=7)
    assert FaultSpec.parse("drop=0.5;seed=3") == FaultSpec(drop=0.5, seed=3)
    assert FaultSpec.parse("") == FaultSpec() and FaultSpec.parse(None).is_clean


@pytest.mark.parametrize("text, fragment", [
    ("drop=2", "drop"), ("lose=0.1", "lose=0.1"), ("delay=soon", "delay"),
    ("stall=0.1", "stall"), ("seed=x", "seed"), ("split=maybe", "split"), ("drop", "drop"),
])
def test_fault_spec_errors_name_the_key(text: str, fragment: str) -> None:
    with pytest.raises(FaultSpecError, match=re.escape(fragment)):
        FaultSpec.parse(text)


def test_durations_take_units_and_refuse_fractions_of_a_millisecond() -> None:
    assert [parse_duration_ms(t) for t in ("20ms", "2s", "1.5s", "3m", "1h", "7")] == [
        20, 2000, 1500, 180_000, 3_600_000, 7]
    with pytest.raises(FaultSpecError):
        parse_duration_ms("0.5ms")


def test_the_two_directions_get_different_seeds() -> None:
    to_server, to_client = FaultSpec(drop=0.5, seed=7).plans()
    assert (to_server.seed, to_client.seed) == (7, 8)


def test_same_seed_replays_the_same_faults() -> None:
    plan_a = FaultPlan(seed=5, drop_chunk=0.3, corrupt_byte=0.3, split=True)
    plan_b = FaultPlan(seed=5, drop_chunk=0.3, corrupt_byte=0.3, split=True)
    assert [plan_a.apply(b"abcdefgh") for _ in range(20)] == [
        plan_b.apply(b"abcdefgh") for _ in range(20)]


def test_split_loses_nothing_and_drop_loses_everything() -> None:
    assert b"".join(FaultPlan(seed=1, split=True).apply(b"0123456789" * 5)) == b"0123456789" * 5
    assert FaultPlan(seed=1, drop_chunk=1.0).apply(b"abc") == []
    assert FaultPlan(seed=1, duplicate_chunk=1.0).apply(b"abc") == [b"abc", b"abc"]
    corrupted = FaultPlan(seed=1, corrupt_byte=1.0).apply(b"abc")[0]
    assert len(corrupted) == 3 and sum(a != b for a, b in zip(corrupted, b"abc", strict=True)) == 1


def test_delay_holds_chunks_until_due_and_keeps_their_order() -> None:
    pipe = FaultyPipe(FaultPlan(delay_ms=20))
    pipe.send(b"one", 100)
    pipe.send(b"two", 105)
    assert pipe.receive(119) == [] and pipe.next_due_ms() == 120
    assert pipe.receive(120) == [b"one"]
    assert pipe.receive(125) == [b"two"]


def test_a_stall_holds_every_later_chunk_too() -> None:
    pipe = FaultyPipe(FaultPlan(stall_chance=1.0, stall_ms=2000))
    pipe.send(b"first", 0)
    pipe.plan.stall_chance = 0.0
    pipe.send(b"second", 10)
    assert pipe.receive(1999) == []
    assert pipe.receive(2000) == [b"first", b"second"]


class Echo:
    def receive_bytes(self, data: bytes, now_ms: int) -> bytes:
        return data.upper()

    def handle_timeout(self, now_ms: int) -> bytes:
        return b""


def test_memory_link_waits_on_its_clock_for_a_delayed_answer() -> None:
    clock = ManualClock()
    link = MemoryLink(Echo(), clock, wait=clock.advance_ms, to_client=FaultPlan(delay_ms=30))
    link.write(b"ping")
    assert link.read(100, 1000) == b""  # waited only until the answer was due
    assert clock.monotonic_ms() == 30
    assert link.read(100, 1000) == b"PING"


def _submit_money_commands(adapter: object) -> list[str]:
    from emulator.utrn import UtrnValueClass, make_utrn
    from protocol.eui64 import parse_eui64
    from protocol.s1sp import DuisMoney, DuisRequestBuilder

    submit = adapter.submit  # type: ignore[attr-defined]
    requests = DuisRequestBuilder()
    responses = [submit(requests.update_meter_balance(ESME_EUI,
                                                      adjust_pence=DuisMoney(123456)))]
    for counter in (1, 2):
        utrn = make_utrn(parse_eui64(ESME_EUI), counter, UtrnValueClass.POUNDS, 10)
        responses.append(submit(requests.top_up_device(ESME_EUI, utrn)))
    with open("tests/fixtures/duis/2.3_update_debt.xml", "rb") as fixture:
        responses.append(submit(fixture.read()))
    responses.append(submit(requests.read_instantaneous_prepay_values(ESME_EUI)))
    return responses


def _value(xml: str, element: str) -> str:
    found = re.search(f"<sr:{element}>(.*?)</sr:{element}>", xml)
    assert found is not None, xml
    return found.group(1)


@pytest.mark.parametrize("faults", [
    None, "drop=0.2,seed=1", "corrupt=0.2,seed=2", "duplicate=0.3,seed=3", "split=1,seed=4",
    "delay=300ms,seed=5", "stall=0.1:1s,seed=6",
    "drop=0.1,corrupt=0.1,duplicate=0.1,split=1,delay=20ms,stall=0.1:1s,seed=7",
])
def test_every_money_command_is_applied_exactly_once_under_each_fault_kind(
        faults: str | None) -> None:
    """1.5 adjust, two 2.2 top-ups and a 2.3 debt update, then 4.3: a command applied twice
    would show in the balance and debts (and a replayed top-up as a duplicate UTRN)."""
    meters = build_meters("default", faults)
    responses = _submit_money_commands(meters.adapter)
    assert [_value(xml, "ResponseCode") for xml in responses] == ["I0"] * 5
    final = responses[-1]
    # 1250 p + 123 p adjusted + 2 x (900 p credit, 100 p debt recovered): 3173 p
    assert _value(final, "MeterBalance") == "3173000"
    assert _value(final, "PaymentDebtRegister") == "1550000"
    assert _value(final, "TimeDebtRegister1") == "6500000"
    if faults is not None:
        counters = meters.channel.counters
        assert counters.requests_sent == counters.responses_received
