"""Metering-data SRs through the adapter (issue 11): 4.1.1, 4.1.2, 4.1.4, 4.6.1, 4.8.1, 4.10,
4.12.1 and 4.14 on the ESME, the GSME and the GPF, from their fixtures and builders: energy in the
DUIS units (Wh integers, gas m3 with three decimals), logs over the requested ReadLogPeriod,
long profile reads paged on the device and answered in one response, bad periods E-INVALID
with nothing sent, device types outside the SR's E11."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from protocol.apdu import Command, PaymentMode
from protocol.s1sp.builders import DuisRequestBuilder
from protocol.s1sp.responses import DuisResponse, ResultGroup
from tests.protocol.s1sp.conftest import (
    ESME_EUI64,
    GSME_EUI64,
    START,
    START_SECONDS,
    Rig,
    fixture_xml,
)
from tests.protocol.s1sp.templates_rig import (
    TEMPLATES_GSME_EUI64,
    TemplatesRig,
    template_fixture_xml,
)

ESME = "00-DB-12-34-56-78-90-A1"
GSME = "00-DB-12-34-56-78-90-A2"
UTC = timezone.utc
DAY = 86_400
HOUR = 3_600
#: START is 2026-01-05T09:00Z, a Monday; the ESME's tariff: band 2 07:00-23:00, 1200 W
TWO_RATE: dict[str, Any] = {
    "payment_mode": "prepayment",
    "meter_balance_pence": 20_000,
    "disablement_threshold_pence": -100_000,
    "tariff_prices_millipence_per_kwh": [[15_000], [32_000]],
    "tariff_day_profiles": [[[0, 0], [7 * HOUR, 1], [23 * HOUR, 0]]],
    "standing_charge_millipence_per_day": 50_000,
    "load_w": 1_200,
}
MIDNIGHT = datetime(2026, 1, 6, tzinfo=UTC)


def two_rate_rig(run_seconds: int) -> Rig:
    rig = Rig(TWO_RATE)
    rig.clock.fast_forward(run_seconds)
    return rig


def answer(rig: Rig, xml: str | bytes) -> DuisResponse:
    response = DuisResponse.from_xml(rig.submit(xml))
    assert response.response_code == "I0", response.error_reason
    return response


def indexed(groups: list[ResultGroup]) -> list[tuple[int, str]]:
    return [(group.integer("Index"), group.text("Value")) for group in groups]


def test_4_1_1_reads_the_esme_register_in_wh() -> None:
    rig = two_rate_rig(15 * HOUR)  # 09:00 to 24:00 at 1200 W
    register = answer(rig, fixture_xml("4.1.1_read_instantaneous_import_registers")).group(
        "Electricity").group("ActiveImportRegister")
    assert register.integer("Value") == 18_000
    assert register.text("ActiveEnergyUnit") == "Wh"


def test_4_1_1_reads_the_gas_register_in_m3_with_three_decimals() -> None:
    rig = two_rate_rig(DAY)
    register = answer(rig, fixture_xml("4.1.1_read_instantaneous_import_registers_gas")).group(
        "Gas").group("ConsumptionRegister")
    dm3 = rig.world.meter(GSME_EUI64).metrology.total_register()
    assert dm3 > 1_000  # 800 W for a day: a few m3
    assert register.text("Value") == f"{dm3 // 1000}.{dm3 % 1000:03d}"
    assert register.text("Unit") == "m3"


def test_4_1_1_to_the_gpf_is_answered_from_the_gas_meter() -> None:
    rig = TemplatesRig()
    rig.clock.fast_forward(DAY)
    through_gpf = answer(rig, template_fixture_xml("4.1.1_read_instantaneous_import_registers_gpf"))
    dm3 = rig.world.meter(TEMPLATES_GSME_EUI64).metrology.total_register()
    assert through_gpf.group("Gas").group("ConsumptionRegister").text("Value") == (
        f"{dm3 // 1000}.{dm3 % 1000:03d}")


def test_4_1_2_reads_each_tou_band() -> None:
    rig = two_rate_rig(15 * HOUR)  # 09:00-23:00 in band 2, 23:00-24:00 in band 1
    collection = answer(rig, fixture_xml("4.1.2_read_instantaneous_import_tou_matrices")).group(
        "Electricity").group("TariffTOURegisterCollection")
    assert indexed(collection.groups("TOUPrimaryRegisterValue")) == [(1, "1200"),
                                                                      (2, "16800")]


def test_4_1_4_block_counters_are_for_gas_only() -> None:
    rig = two_rate_rig(HOUR)
    assert answer(rig, fixture_xml("4.1.4_read_instantaneous_import_block_counters_gas")
                  ).result == (("ImportBlockCounters", ""),)  # a flat tariff: no blocks
    esme = DuisRequestBuilder().read_instantaneous_import_block_counters(ESME)
    assert DuisResponse.from_xml(rig.submit(esme)).response_code == "E11"


def test_4_6_1_gives_the_registers_at_each_midnight_in_the_period() -> None:
    rig = two_rate_rig(2 * DAY + 15 * HOUR)
    entries = answer(rig, fixture_xml("4.6.1_retrieve_import_daily_read_log")).groups("LogEntry")
    assert [entry.text("Timestamp") for entry in entries] == [
        "2026-01-06T00:00:00Z", "2026-01-07T00:00:00Z", "2026-01-08T00:00:00Z"]
    second = entries[1].group("Electricity")
    # a whole day: 8 h in band 1 (9600 Wh), 16 h in band 2 (19200 Wh), plus the first 15 h
    assert second.integer("ElecActiveImportRegisterConsumption") == 18_000 + 28_800
    assert indexed(second.groups("TariffTOURegisterMatrixValue")) == [(1, "10800"),
                                                                       (2, "36000")]


def test_4_8_1_one_day_is_48_half_hours_stamped_at_their_start() -> None:
    rig = two_rate_rig(DAY)
    xml = DuisRequestBuilder().read_active_import_profile_data(
        ESME, start=START, end=START + timedelta(days=1))
    entries = answer(rig, xml).groups("LogEntry")
    assert len(entries) == 48
    assert entries[0].text("Timestamp") == "2026-01-05T09:00:00Z"
    assert entries[-1].text("Timestamp") == "2026-01-06T08:30:00Z"
    assert {entry.group("Electricity").integer("PrimaryValue") for entry in entries} == {600}


def test_4_8_1_gas_values_are_m3_and_add_up_to_the_register() -> None:
    rig = two_rate_rig(DAY)
    xml = DuisRequestBuilder().read_active_import_profile_data(
        GSME, start=START, end=START + timedelta(days=1))
    values = [entry.group("Gas").text("PrimaryValue")
              for entry in answer(rig, xml).groups("LogEntry")]
    assert len(values) == 48
    assert all(value.count(".") == 1 and len(value.split(".")[1]) == 3 for value in values)
    dm3 = sum(int(value.replace(".", "")) for value in values)
    assert dm3 == rig.world.meter(GSME_EUI64).metrology.total_register()


def test_4_8_1_forty_days_are_read_in_two_device_requests_and_one_response() -> None:
    rig = two_rate_rig(40 * DAY)
    xml = DuisRequestBuilder().read_active_import_profile_data(
        ESME, start=START, end=START + timedelta(days=40))
    entries = answer(rig, xml).groups("LogEntry")
    assert len(entries) == 40 * 48
    assert [(r.body.start_seconds, r.body.end_seconds)
            for r in rig.sent(Command.READ_PROFILE_DATA)] == [
        (START_SECONDS, START_SECONDS + 31 * DAY),
        (START_SECONDS + 31 * DAY, START_SECONDS + 40 * DAY)]
    stamps = [entry.text("Timestamp") for entry in entries]
    assert stamps == sorted(set(stamps))


@pytest.mark.parametrize(("fixture", "reason"), [
    ("4.8.1_read_active_import_profile_data_reversed_period",
     "ReadLogPeriod: StartDateTime 2026-01-06T00:00:00Z is not before EndDateTime "
     "2026-01-05T00:00:00Z"),
    ("4.8.1_read_active_import_profile_data_too_long",
     "ReadLogPeriod covers 19104 half-hours; DUIS 4.8.1 carries at most 19056 (397 days)"),
])
def test_4_8_1_a_bad_period_is_e_invalid_and_nothing_is_sent(fixture: str, reason: str) -> None:
    rig = Rig()
    response = DuisResponse.from_xml(rig.submit(fixture_xml(fixture)))
    assert response.response_code == "E-INVALID"
    assert reason in (response.error_reason or "")
    assert rig.sent_commands() == []


def test_4_12_1_gives_both_maximum_demand_registers_for_the_esme_only() -> None:
    rig = two_rate_rig(2 * HOUR)
    response = answer(rig, fixture_xml("4.12.1_read_maximum_demand_import_registers"))
    active = response.group("MaxDemandActiveEnergyImport")
    assert active.integer("Value") == 1_200
    assert active.text("CaptureTime") == "2026-01-05T09:30:00Z"
    assert active.text("LastResetDateTime") == "2026-01-05T09:00:00Z"
    assert response.group("MaxDemandConfigurableTimePeriod").text("StartTime") == "00:00:00"
    gas = DuisRequestBuilder().read_maximum_demand_import_registers(GSME)
    assert DuisResponse.from_xml(rig.submit(gas)).response_code == "E11"


def test_4_14_gives_the_money_registers_at_each_midnight_in_duis_money() -> None:
    rig = two_rate_rig(DAY)
    entries = answer(rig, fixture_xml("4.14_read_prepayment_daily_read_log")).group(
        "Electricity").groups("LogEntry")
    assert len(entries) == 1
    # 09:00-23:00 16800 Wh at 32 p (537.6 p), 23:00-24:00 1200 Wh at 15 p (18 p), 15 h of
    # 50 p/day standing charge (31.25 p): 586.85 p taken, rounded down
    assert entries[0].text("Timestamp") == "2026-01-06T00:00:00Z"
    assert entries[0].integer("MeterBalance") == (20_000 - 586) * 1000
    assert entries[0].integer("TimeDebtRegisters1") == 0


def test_4_14_to_the_gpf_is_the_gas_meters_log() -> None:
    rig = TemplatesRig()
    rig.world.meter(TEMPLATES_GSME_EUI64).registers.payment_mode = PaymentMode.PREPAYMENT
    rig.clock.fast_forward(2 * DAY)
    through_gpf = answer(rig, template_fixture_xml("4.14_read_prepayment_daily_read_log_gpf"))
    log = through_gpf.group("Gas")
    direct = rig.world.meter(TEMPLATES_GSME_EUI64).registers.prepayment_daily_log.entries()
    assert len(direct) == 2
    assert [entry.integer("MeterBalance") for entry in log.groups("LogEntry")] == [
        values["meter_balance_pence"] * 1000 for _, values in direct]


def test_a_log_period_outside_the_kept_logs_answers_no_entries() -> None:
    rig = two_rate_rig(HOUR)
    xml = DuisRequestBuilder().retrieve_import_daily_read_log(
        ESME_EUI64, start=MIDNIGHT - timedelta(days=400), end=MIDNIGHT - timedelta(days=300))
    assert answer(rig, xml).groups("LogEntry") == []


def test_4_16_reads_the_esme_load_now_in_w_and_is_e11_for_gas() -> None:
    rig = two_rate_rig(HOUR)
    power = answer(rig, fixture_xml("4.16_read_active_power_import")).group("ActivePowerImport")
    assert (power.integer("Value"), power.text("Unit")) == (1_200, "W")
    gas = DuisRequestBuilder().read_active_power_import(GSME)
    assert DuisResponse.from_xml(rig.submit(gas)).response_code == "E11"


def test_4_10_gives_the_esmes_average_voltages_in_volts_and_the_counts() -> None:
    rig = Rig({**TWO_RATE, "voltage_seed": 42, "voltage_over_threshold_decivolts": 2_300,
               "voltage_under_threshold_decivolts": 2_250})
    rig.clock.fast_forward(2 * HOUR + 60)  # to 11:01: 09:00 to 11:00 closed
    single = answer(rig, fixture_xml("4.10_read_network_data")).group("Electricity").group(
        "SinglePhaseESME")
    over, under = (single.group(name) for name in ("AvgRMSOverVoltageCounter",
                                                     "AvgRMSUnderVoltageCounter"))
    assert (over.integer("Value"), over.text("Unit")) == (1, "periods")
    assert (under.integer("Value"), under.text("Unit")) == (2, "periods")
    log = single.group("AvgRMSVoltageProfileDataLog")
    assert [(e.text("Timestamp"), e.text("Value")) for e in log.groups("LogEntry")] == [
        ("2026-01-05T09:00:00Z", "224.8"), ("2026-01-05T09:30:00Z", "228.1"),
        ("2026-01-05T10:00:00Z", "224.5"), ("2026-01-05T10:30:00Z", "235.4")]
    assert log.integer("MeasurementPeriod") == 1_800


def test_4_10_is_e11_for_the_gas_meter_and_a_backwards_period_e_invalid() -> None:
    rig = two_rate_rig(HOUR)
    start = datetime(2026, 1, 5, 9, tzinfo=UTC)
    gas = DuisRequestBuilder().read_network_data(GSME, start=start, end=start + timedelta(
        hours=1))
    assert DuisResponse.from_xml(rig.submit(gas)).response_code == "E11"
    backwards = DuisRequestBuilder().read_network_data(ESME, start=start, end=start)
    assert DuisResponse.from_xml(rig.submit(backwards)).response_code == "E-INVALID"


def test_4_17_gives_each_whole_day_whose_midnight_is_in_the_period() -> None:
    rig = two_rate_rig(3 * DAY)  # to 2026-01-08T09:00Z: two whole days
    entries = answer(rig, fixture_xml("4.17_retrieve_daily_consumption_log")).group(
        "Electricity").groups("LogEntry")
    assert [(e.text("Timestamp"), e.integer("Value")) for e in entries] == [
        ("2026-01-06T00:00:00Z", 28_800), ("2026-01-07T00:00:00Z", 28_800)]


def test_4_17_to_the_gpf_is_the_gas_meters_daily_consumption_in_m3() -> None:
    rig = TemplatesRig()
    rig.clock.fast_forward(3 * DAY)
    entries = answer(rig, template_fixture_xml("4.17_retrieve_daily_consumption_log_gpf")).group(
        "Gas").groups("LogEntry")
    days = rig.world.meter(TEMPLATES_GSME_EUI64).metrology.daily_consumption(0, 2**20)
    assert len(entries) == len(days) == 3
    assert [e.text("Value") for e in entries] == [f"{v // 1000}.{v % 1000:03d}" for _, v in days]
