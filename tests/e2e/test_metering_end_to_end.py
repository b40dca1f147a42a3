"""End to end, issue 11: a prepayment ESME on a two-rate TOU tariff runs 40 virtual days in
uneven steps; its registers (4.1.1, 4.1.2), daily read log (4.6.1), half-hours (4.8.1),
prepayment daily log (4.14) and balance (4.18), read through the S1SP adapter, agree with each
other and with the money debited. And a 13-month half-hour profile read through the adapter
over a pty (DeviceClient -> link -> pty -> ServeLoop -> world) answers all 19,056 half-hours.

The load is a daily pattern in whole hours so that every register is whole Wh and the expected
values can be written out: 400 W 00:00-07:00, 1500 W 07:00-19:00, 900 W 19:00-24:00; band 1
(15 p/kWh) 23:00-07:00, band 2 (32 p/kWh) 07:00-23:00; standing charge 50 p/day. A day: band 1
7 h x 400 W + 1 h x 900 W = 3700 Wh, band 2 12 h x 1500 W + 4 h x 900 W = 21600 Wh.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from itertools import pairwise
from typing import Any

from emulator.clock import VirtualClock
from emulator.profile import Profile
from emulator.serve import ServeLoop
from emulator.world import EmulatedWorld
from protocol.apdu import (
    MANAGEMENT_SERVER_ADDRESS,
    AdvanceDeviceTimeRequest,
    Command,
    Request,
)
from protocol.client import DeviceClient
from protocol.clock import RealMonotonicClock
from protocol.s1sp.adapter import S1spAdapter
from protocol.s1sp.builders import DuisRequestBuilder
from protocol.s1sp.responses import DuisResponse
from protocol.transport import PtyPair, open_port
from tests.protocol.s1sp.conftest import START, Rig

ESME = "00-DB-12-34-56-78-90-A1"
DAY = 86_400
HOUR = 3_600
UTC = timezone.utc
BALANCE_PENCE = 100_000
TOU: dict[str, Any] = {
    "payment_mode": "prepayment",
    "meter_balance_pence": BALANCE_PENCE,
    "disablement_threshold_pence": 0,
    "tariff_prices_millipence_per_kwh": [[15_000], [32_000]],
    "tariff_day_profiles": [[[0, 0], [7 * HOUR, 1], [23 * HOUR, 0]]],
    "standing_charge_millipence_per_day": 50_000,
    "load_profile": [[0, 400], [7 * HOUR, 1_500], [19 * HOUR, 900]],
}
BAND_1_WH_PER_DAY = 3_700
BAND_2_WH_PER_DAY = 21_600


def ok(rig: Rig, xml: str) -> DuisResponse:
    response = DuisResponse.from_xml(rig.submit(xml))
    assert response.response_code == "I0", response.error_reason
    return response


def cost_pence(band_1_wh: int, band_2_wh: int, elapsed_seconds: int) -> int:
    """The exact cost rounded down: Wh x millipence per kWh / 1000, standing charge pro rata."""
    millipence_x_day = ((band_1_wh * 15_000 + band_2_wh * 32_000) // 1_000 * DAY
                        + 50_000 * elapsed_seconds)
    return millipence_x_day // (1_000 * DAY)


def test_forty_days_of_registers_logs_half_hours_and_money_agree() -> None:
    rig = Rig(TOU)
    builder = DuisRequestBuilder()
    for step_hours in (5, 31, 7, 1, 100, 13, 200, 3, 150, 77):  # 587 h and 170 s, uneven
        rig.clock.fast_forward(step_hours * HOUR + 17)
        ok(rig, builder.read_meter_balance(ESME))  # the meter runs to here
    rig.clock.fast_forward(int(START.timestamp()) + 40 * DAY - rig.clock.device_time_seconds())
    end = START + timedelta(days=40)

    total_wh = ok(rig, builder.read_instantaneous_import_registers(ESME)).group(
        "Electricity").group("ActiveImportRegister").integer("Value")
    bands = ok(rig, builder.read_instantaneous_import_tou_matrices(ESME)).group(
        "Electricity").group("TariffTOURegisterCollection").groups("TOUPrimaryRegisterValue")
    band_wh = {group.integer("Index"): group.integer("Value") for group in bands}
    assert band_wh == {1: 40 * BAND_1_WH_PER_DAY, 2: 40 * BAND_2_WH_PER_DAY} == {
        1: 148_000, 2: 864_000}
    assert total_wh == 1_012_000

    # money: the balance went down by exactly the cost of the registered energy, rounded down
    balance = ok(rig, builder.read_meter_balance(ESME)).pence("MeterBalance")
    assert BALANCE_PENCE - balance == cost_pence(148_000, 864_000, 40 * DAY) == 31_868
    assert rig.esme.registers.consumption_debited_pence == 31_868

    # half-hours: 40 days of them, adding up to the register
    half_hours = ok(rig, builder.read_active_import_profile_data(ESME, start=START, end=end)
                    ).groups("LogEntry")
    assert len(half_hours) == 40 * 48
    values = {entry.text("Timestamp"): entry.group("Electricity").integer("PrimaryValue")
              for entry in half_hours}
    assert sum(values.values()) == total_wh
    assert values["2026-01-06T03:00:00Z"] == 200  # 400 W
    assert values["2026-01-06T12:30:00Z"] == 750  # 1500 W

    # daily read log: the last 31 midnights; between two, one day's energy; the half-hours of
    # each day add up to the difference; after the last, the half-hours to now
    entries = ok(rig, builder.retrieve_import_daily_read_log(
        ESME, start=START, end=end)).groups("LogEntry")
    assert len(entries) == 31
    midnights = [datetime.strptime(e.text("Timestamp"), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
                 for e in entries]
    totals = [e.group("Electricity").integer("ElecActiveImportRegisterConsumption")
              for e in entries]
    assert midnights[-1] == datetime(2026, 2, 14, tzinfo=UTC)
    assert {later - earlier for earlier, later in pairwise(totals)} == {25_300}
    for day_start, (day_total, next_total) in zip(midnights, pairwise(totals), strict=False):
        day = [values[(day_start + timedelta(minutes=30 * i)).strftime("%Y-%m-%dT%H:%M:%SZ")]
               for i in range(48)]
        assert sum(day) == next_total - day_total
    after_last = sum(value for stamp, value in values.items()
                     if stamp >= "2026-02-14T00:00:00Z")
    assert totals[-1] + after_last == total_wh
    tou_rows = [{g.integer("Index"): g.integer("Value") for g in
                 e.group("Electricity").groups("TariffTOURegisterMatrixValue")} for e in entries]
    assert all(row[1] + row[2] == total for row, total in zip(tou_rows, totals, strict=True))

    # prepayment daily log: each midnight's balance is the start balance less the cost of the
    # registers then
    prepayment = ok(rig, builder.read_prepayment_daily_read_log(
        ESME, start=START, end=end)).group("Electricity").groups("LogEntry")
    assert [e.text("Timestamp") for e in prepayment] == [e.text("Timestamp") for e in entries]
    for entry, midnight, row in zip(prepayment, midnights, tou_rows, strict=True):
        elapsed = int((midnight - START).total_seconds())
        assert entry.pence("MeterBalance") == BALANCE_PENCE - cost_pence(row[1], row[2],
                                                                          elapsed)


@contextmanager
def adapter_on_a_pty_after(days: int) -> Iterator[S1spAdapter]:
    """An adapter on a DeviceClient on a pty served by a ServeLoop thread over the default
    profile's world, ``days`` of virtual time after its start (ADVANCE_DEVICE_TIME, at most 31
    days a request)."""
    world = EmulatedWorld(Profile.default(), VirtualClock(int(START.timestamp())))
    loop = ServeLoop(world, RealMonotonicClock(), advance_interval_ms=None)
    pair = PtyPair()
    loop.add_stream(pair.server, name="pty")
    thread = threading.Thread(target=loop.run, name="serve", daemon=True)
    thread.start()
    client = DeviceClient(open_port(pair.client_path))
    try:
        while days > 0:
            advanced = client.request(MANAGEMENT_SERVER_ADDRESS, Request(
                Command.ADVANCE_DEVICE_TIME, 0,
                body=AdvanceDeviceTimeRequest(advance_seconds=min(days, 31) * DAY)))
            assert advanced.ok
            days -= 31
        yield S1spAdapter(client)
    finally:
        client.close()
        loop.request_stop()
        thread.join(5)


def test_a_13_month_profile_read_over_a_pty_answers_every_half_hour() -> None:
    with adapter_on_a_pty_after(397) as adapter:
        builder = DuisRequestBuilder()
        total = DuisResponse.from_xml(adapter.submit(
            builder.read_instantaneous_import_registers(ESME))).group("Electricity").group(
            "ActiveImportRegister").integer("Value")
        response = DuisResponse.from_xml(adapter.submit(builder.read_active_import_profile_data(
            ESME, start=START, end=START + timedelta(days=397))))
    assert response.response_code == "I0", response.error_reason
    entries = response.groups("LogEntry")
    assert len(entries) == 19_056
    assert entries[0].text("Timestamp") == "2026-01-05T09:00:00Z"
    assert entries[-1].text("Timestamp") == "2027-02-06T08:30:00Z"
    assert sum(e.group("Electricity").integer("PrimaryValue") for e in entries) == total
    # the default ESME draws 500 W until its prepayment credit runs out (97 h): the
    # half-hours after it are 0
    assert total == 500 * 97 == 48_500
