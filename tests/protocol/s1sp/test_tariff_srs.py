"""Tariff SRs through the adapter (issue 11): 1.1.1 Update Import Tariff (TOU and block,
immediate, future-dated, cancelled), 1.2.1 Update Price, 4.11.1 Read Tariff. DUIS prices
x 10^PriceScale GBP become the meter's millipence exactly; what the meter cannot hold is
E-INVALID with nothing sent; a change takes effect at its time and costs from then."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from protocol.apdu import Command
from protocol.s1sp.builders import DuisRequestBuilder
from protocol.s1sp.duis import parse_duis_request
from protocol.s1sp.responses import DuisResponse
from protocol.s1sp.service_requests.metering import TariffUpdate
from tests.protocol.s1sp.conftest import GSME_EUI64, START, Rig, fixture_xml

ESME = "00-DB-12-34-56-78-90-A1"
HOUR = 3_600
DAY = 86_400
FLAT: dict[str, Any] = {"unit_rate_millipence_per_kwh": 20_000,
                        "standing_charge_millipence_per_day": 48_000, "load_w": 1_000}


def ok(rig: Rig, xml: str | bytes) -> DuisResponse:
    response = DuisResponse.from_xml(rig.submit(xml))
    assert response.response_code == "I0", response.error_reason
    return response


def test_a_tou_tariff_from_its_fixture_is_what_the_meter_holds() -> None:
    rig = Rig(FLAT)
    ok(rig, fixture_xml("1.1.1_update_import_tariff_tou"))
    tariff = rig.esme.metrology.timeline.current
    assert tariff.switching.day_profiles == (((0, 0), (25_200, 1), (82_800, 0)), ((0, 0),))
    assert tariff.switching.week == (0, 0, 0, 0, 0, 1, 1)
    assert tariff.prices.block_prices_millipence_per_kwh == ((15_250,), (32_750,))
    assert tariff.prices.standing_charge_millipence_per_day == 53_000
    assert not tariff.has_blocks


def test_a_block_tariff_takes_its_thresholds_and_one_price_more_than_thresholds() -> None:
    rig = Rig(FLAT)
    ok(rig, fixture_xml("1.1.1_update_import_tariff_block"))
    tariff = rig.esme.metrology.timeline.current
    assert tariff.block_thresholds_wh == ((5_000, 12_000),)
    assert tariff.prices.block_prices_millipence_per_kwh == ((18_000, 24_000, 31_000),)
    assert tariff.block_period_seconds == DAY


def test_a_tariff_using_a_band_without_a_price_is_e_invalid_and_nothing_sent() -> None:
    rig = Rig(FLAT)
    response = DuisResponse.from_xml(rig.submit(
        fixture_xml("1.1.1_update_import_tariff_price_missing")))
    assert response.response_code == "E-INVALID"
    assert Command.SET_TARIFF not in rig.sent_commands()


def test_a_future_dated_tariff_is_held_then_costs_from_its_time() -> None:
    rig = Rig({**FLAT, "payment_mode": "prepayment", "meter_balance_pence": 50_000})
    xml = DuisRequestBuilder().update_import_tariff(
        ESME, day_profiles=[[(0, 1)]], week=[0] * 7, prices_millipence_per_kwh=[[40_000]],
        standing_charge_millipence_per_day=48_000, execute_at=START + timedelta(hours=2))
    response = ok(rig, xml)
    assert response.text("ExecutionDateTime") == "2026-01-05T11:00:00Z"
    assert [r.command for r in rig.sent(Command.SCHEDULE_REQUEST)] == [Command.SCHEDULE_REQUEST]
    rig.clock.fast_forward(4 * HOUR)
    ok(rig, DuisRequestBuilder().read_meter_balance(ESME))
    # 2 h of 1000 W at 20 p/kWh (40 p), then 2 h at 40 p/kWh (80 p), 4 h of 48 p/day (8 p)
    assert rig.esme.registers.consumption_debited_pence == 128
    assert rig.esme.metrology.timeline.current.prices.block_prices_millipence_per_kwh == (
        (40_000,),)


def test_a_cancelled_tariff_change_never_takes_effect() -> None:
    rig = Rig(FLAT)
    builder = DuisRequestBuilder()
    tariff: dict[str, Any] = {"day_profiles": [[(0, 1)]], "week": [0] * 7,
                              "prices_millipence_per_kwh": [[40_000]],
                              "standing_charge_millipence_per_day": 48_000}
    ok(rig, builder.update_import_tariff(ESME, **tariff, execute_at=START + timedelta(hours=2)))
    cancelled = ok(rig, fixture_xml("1.1.1_update_import_tariff_tou_cancellation"))
    assert cancelled.boolean("Cancelled")
    rig.clock.fast_forward(3 * HOUR)
    ok(rig, builder.read_meter_balance(ESME))
    assert rig.esme.metrology.timeline.current.prices.block_prices_millipence_per_kwh == (
        (20_000,),)


def test_seasons_after_the_first_and_special_days_are_named_as_not_applied() -> None:
    text = fixture_xml("1.1.1_update_import_tariff_tou").decode()
    text = text.replace("</sr:Seasons>", """  <sr:Season>
              <sr:SeasonName>summer</sr:SeasonName>
              <sr:SeasonStartDate>
                <sr:Year><sr:NonSpecifiedYear/></sr:Year>
                <sr:Month><sr:SpecifiedMonth>04</sr:SpecifiedMonth></sr:Month>
                <sr:DayOfMonth><sr:SpecifiedDayOfMonth>01</sr:SpecifiedDayOfMonth></sr:DayOfMonth>
                <sr:DayOfWeek><sr:NonSpecifiedDayOfWeek/></sr:DayOfWeek>
              </sr:SeasonStartDate>
              <sr:ReferencedWeekName>2</sr:ReferencedWeekName>
            </sr:Season>
          </sr:Seasons>""").replace("<sr:ThresholdMatrix>", """<sr:SpecialDays>
          <sr:SpecialDay><sr:Date/><sr:ReferencedDayName>2</sr:ReferencedDayName></sr:SpecialDay>
        </sr:SpecialDays>
        <sr:ThresholdMatrix>""")
    response = ok(Rig(FLAT), text)
    assert response.integer("SeasonNotApplied") == 1
    assert response.integer("SpecialDayNotApplied") == 1


def test_a_day_profile_starting_after_midnight_starts_in_its_last_band() -> None:
    text = fixture_xml("1.1.1_update_import_tariff_tou").decode().replace(
        "<sr:StartTime>00:00:00.00Z</sr:StartTime>\n                <sr:TOUTariffAction>1",
        "<sr:StartTime>06:30:00.00Z</sr:StartTime>\n                <sr:TOUTariffAction>1", 1)
    body = parse_duis_request(text).body
    assert isinstance(body, TariffUpdate)
    assert body.day_profiles[0] == ((0, 1), (23_400, 1), (25_200, 2), (82_800, 1))


def test_new_prices_apply_to_the_bands_the_meter_holds_and_read_back() -> None:
    rig = Rig(FLAT)
    ok(rig, fixture_xml("1.2.1_update_price"))
    assert rig.esme.metrology.timeline.current.prices.block_prices_millipence_per_kwh == (
        (26_125,),)
    electricity = ok(rig, fixture_xml("4.11.1_read_tariff")).group("Electricity")
    assert electricity.integer("PriceScale") == -5
    assert electricity.group("TariffTOUPriceMatrix").group("TariffTOUPrice").integer(
        "Value") == 26_125
    # 48000 millipence a day does not fit the DUIS xs:short at scale -5: 4800 at -4
    assert (electricity.integer("StandingCharge"), electricity.integer("StandingChargeScale")) \
        == (4_800, -4)


def test_prices_for_more_bands_than_the_meter_holds_are_e_invalid_and_nothing_set() -> None:
    rig = Rig(FLAT)
    response = DuisResponse.from_xml(rig.submit(
        fixture_xml("1.2.1_update_price_too_many_bands")))
    assert response.response_code == "E-INVALID"
    assert rig.sent_commands() == [Command.READ_TARIFF]


def test_block_prices_for_a_block_tariff_keep_as_many_blocks_as_it_has() -> None:
    rig = Rig(FLAT)
    ok(rig, fixture_xml("1.1.1_update_import_tariff_block"))
    ok(rig, DuisRequestBuilder().update_price(
        ESME, prices_millipence_per_kwh=[[19_000, 25_000, 32_000, 99_000]],
        standing_charge_millipence_per_day=42_000))
    assert rig.esme.metrology.timeline.current.prices.block_prices_millipence_per_kwh == (
        (19_000, 25_000, 32_000),)
    electricity = ok(rig, DuisRequestBuilder().read_tariff(ESME)).group("Electricity")
    row = electricity.group("TariffBlockPriceMatrix").group("TariffBlockPrices")
    assert [price.integer("Value") for price in row.groups("BlockPrice")] == [
        19_000, 25_000, 32_000]
    thresholds = electricity.group("TariffThresholdMatrix").group("ElecTariffThresholds")
    assert [t.integer("Value") for t in thresholds.groups("BlockThreshold")] == [5_000, 12_000]


def test_4_11_1_on_the_gas_meter_answers_the_gas_branch_in_duis_money() -> None:
    rig = Rig()
    gas = rig.world.meter(GSME_EUI64).metrology.timeline.current.prices
    response = ok(rig, fixture_xml("4.11.1_read_tariff_gas")).group("Gas")
    assert response.integer("StandingCharge") == gas.standing_charge_millipence_per_day
    assert response.group("TOUTariff").group("TariffTOUPrice").integer("Value") == (
        gas.block_prices_millipence_per_kwh[0][0])


def test_a_gas_block_tariff_takes_number_of_thresholds_and_prices_in_duis_money() -> None:
    rig = Rig()
    ok(rig, fixture_xml("1.1.1_update_import_tariff_gas_block"))
    tariff = rig.world.meter(GSME_EUI64).metrology.timeline.current
    assert tariff.block_thresholds_wh == ((8_000, 20_000),)
    assert tariff.prices.block_prices_millipence_per_kwh == ((6_150, 5_800, 5_500),)
    assert tariff.prices.standing_charge_millipence_per_day == 29_875
    gas = ok(rig, DuisRequestBuilder().read_tariff(GSME_EUI64)).group("Gas")
    assert [p.integer("Value") for p in gas.group("BlockTariff").groups("BlockPrice")] == [
        6_150, 5_800, 5_500]
    assert [t.integer("Value") for t in gas.group("TariffThresholds").groups(
        "BlockThreshold")] == [8_000, 20_000]


def _half_hourly_tariff(day_profile_count: int) -> dict[str, Any]:
    """48 TOU bands, each day profile switching band every half-hour: 241 bytes a profile."""
    return {"day_profiles": [[(n * 1_800, (n + shift) % 48 + 1) for n in range(48)]
                             for shift in range(day_profile_count)],
            "week": [n % day_profile_count for n in range(7)],
            "prices_millipence_per_kwh": [[10_000 + 100 * band] for band in range(48)],
            "standing_charge_millipence_per_day": 48_000}


def test_the_longest_tariff_the_meter_takes_is_sent_now_or_future_dated() -> None:
    # 4-byte header, 1 + 3 x 241 day profiles, 7 week, 1 + 48 threshold rows, 4 block period,
    # 4 + 1 + 48 x 5 prices: 1033 bytes, within the 1050 SCHEDULE_REQUEST holds
    rig = Rig(FLAT)
    ok(rig, DuisRequestBuilder().update_import_tariff(ESME, **_half_hourly_tariff(3)))
    assert len(rig.esme.metrology.timeline.current.switching.day_profiles) == 3
    ok(rig, DuisRequestBuilder().update_import_tariff(
        ESME, **_half_hourly_tariff(3), execute_at=START + timedelta(hours=2)))
    assert [r.command for r in rig.sent(Command.SCHEDULE_REQUEST)] == [Command.SCHEDULE_REQUEST]


def test_a_tariff_longer_than_the_meter_takes_is_e_invalid_naming_it_and_nothing_sent() -> None:
    rig = Rig(FLAT)
    for execute_at in (None, START + timedelta(hours=2)):
        response = DuisResponse.from_xml(rig.submit(DuisRequestBuilder().update_import_tariff(
            ESME, **_half_hourly_tariff(4), execute_at=execute_at)))  # 1274 bytes
        assert response.response_code == "E-INVALID"
        assert "SwitchingTable" in response.error_reason
        assert "1274 bytes" in response.error_reason and "at most 1050" in response.error_reason
    assert not {Command.SET_TARIFF, Command.SCHEDULE_REQUEST} & set(rig.sent_commands())
