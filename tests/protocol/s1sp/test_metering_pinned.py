"""Metering-data SR responses written out in full (issue 13): every element name, index and
value of 4.1.1, 4.1.2, 4.1.4, 4.6.1, 4.8.1, 4.12.1 and 4.11.1 on the ESME and the GSME, TOU
and block tariffs, so that a renamed element, an index counted from 0 or a value taken from the
wrong register fails a test.

Every test drives the adapter with the real world on a virtual clock (see conftest.py); the
expected values are written out (energy in Wh or m3 with three decimals, prices in 1/100000
GBP at the scale the response gives)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from protocol.apdu import Command
from protocol.s1sp.builders import CANCEL_FUTURE_DATED, DuisRequestBuilder
from tests.protocol.s1sp.conftest import ESME_EUI64, GSME_EUI64, START, Rig, fixture_xml
from tests.protocol.s1sp.duis_answers import (
    Tree,
    error_reason,
    request_body,
    response_code,
    result_tree,
)
from tests.protocol.s1sp.test_metering import DAY, HOUR, TWO_RATE
from tests.protocol.s1sp.test_tariff_srs import FLAT


def answered(rig: Rig, xml: str | bytes) -> list[Tree]:
    response = rig.submit(xml)
    assert response_code(response) == "I0", error_reason(response)
    return result_tree(response)


def _index_value(name: str, *values: str) -> list[Tree]:
    return [(name, [("Index", str(n)), ("Value", value)]) for n, value in enumerate(values, 1)]


def _week(name: str, *days: int) -> Tree:
    return ("WeekProfiles", [("WeekProfile", [("WeekName", "1"), *_index_value(
        name, *(str(day) for day in days))])])


def gas_block_rig(run_seconds: int) -> Rig:
    """The GSME on the gas block fixture's tariff (thresholds 8000 and 20000 Wh a day)."""
    rig = Rig()
    answered(rig, fixture_xml("1.1.1_update_import_tariff_gas_block"))
    rig.clock.fast_forward(run_seconds)
    return rig


# --- 4.1.1, 4.1.2, 4.1.4 ---------------------------------------------------------------------

def test_4_1_1_and_4_1_2_on_the_esme_in_full() -> None:
    rig = Rig(TWO_RATE)
    rig.clock.fast_forward(DAY + 15 * HOUR)  # to 2026-01-07T00:00Z
    assert answered(rig, fixture_xml("4.1.1_read_instantaneous_import_registers")) == [
        ("Electricity", [("ActiveImportRegister", [("Value", "46800"),
                                                   ("ActiveEnergyUnit", "Wh")])])]
    assert answered(rig, fixture_xml("4.1.2_read_instantaneous_import_tou_matrices")) == [
        ("Electricity", [("TariffTOURegisterCollection", _index_value(
            "TOUPrimaryRegisterValue", "10800", "36000"))])]


def test_4_1_2_and_4_1_4_on_a_gas_block_tariff_in_full() -> None:
    rig = gas_block_rig(DAY + 15 * HOUR)
    assert answered(rig, DuisRequestBuilder().read_instantaneous_import_tou_matrices(
        GSME_EUI64)) == [("Gas", [("TariffTOURegisterMatrix", _index_value(
            "TOURegisterMatrixValue", "2.780"))])]
    assert answered(rig, fixture_xml("4.1.4_read_instantaneous_import_block_counters_gas")) == [
        ("ImportBlockCounters", _index_value("TariffBlockCounterValue",
                                             "1.425", "1.354", "0.000"))]


# --- 4.6.1 -----------------------------------------------------------------------------------

def test_4_6_1_on_the_esme_tou_tariff_in_full() -> None:
    rig = Rig(TWO_RATE)
    rig.clock.fast_forward(DAY + 15 * HOUR)
    assert answered(rig, fixture_xml("4.6.1_retrieve_import_daily_read_log")) == [
        ("LogEntry", [("Timestamp", "2026-01-06T00:00:00Z"), ("Electricity", [
            ("ElecActiveImportRegisterConsumption", "18000"),
            *_index_value("TariffTOURegisterMatrixValue", "1200", "16800")])]),
        ("LogEntry", [("Timestamp", "2026-01-07T00:00:00Z"), ("Electricity", [
            ("ElecActiveImportRegisterConsumption", "46800"),
            *_index_value("TariffTOURegisterMatrixValue", "10800", "36000")])])]


def test_4_6_1_on_an_esme_block_tariff_gives_each_blocks_register_per_band() -> None:
    rig = Rig(FLAT)
    answered(rig, fixture_xml("1.1.1_update_import_tariff_block"))  # 5000 and 12000 Wh a day
    rig.clock.fast_forward(DAY + 15 * HOUR)  # 15000 Wh the first day, 24000 Wh the second
    assert answered(rig, fixture_xml("4.6.1_retrieve_import_daily_read_log")) == [
        ("LogEntry", [("Timestamp", "2026-01-06T00:00:00Z"), ("Electricity", [
            ("ElecActiveImportRegisterConsumption", "15000"),
            ("TariffTOURegisterMatrixValue", [("Index", "1"), ("Value", "15000")]),
            ("TariffTOUBlock1RegisterMatrixValue", [("Index", "1"), ("Value", "5000")]),
            ("TariffTOUBlock2RegisterMatrixValue", [("Index", "1"), ("Value", "7000")]),
            ("TariffTOUBlock3RegisterMatrixValue", [("Index", "1"), ("Value", "3000")])])]),
        ("LogEntry", [("Timestamp", "2026-01-07T00:00:00Z"), ("Electricity", [
            ("ElecActiveImportRegisterConsumption", "39000"),
            ("TariffTOURegisterMatrixValue", [("Index", "1"), ("Value", "39000")]),
            ("TariffTOUBlock1RegisterMatrixValue", [("Index", "1"), ("Value", "10000")]),
            ("TariffTOUBlock2RegisterMatrixValue", [("Index", "1"), ("Value", "14000")]),
            ("TariffTOUBlock3RegisterMatrixValue", [("Index", "1"), ("Value", "15000")])])])]


def test_4_6_1_on_a_gas_block_tariff_gives_the_block_counters_and_the_band_they_add_to() -> None:
    rig = gas_block_rig(DAY + 15 * HOUR)
    xml = DuisRequestBuilder().retrieve_import_daily_read_log(
        GSME_EUI64, start=START, end=START + timedelta(days=2))
    assert answered(rig, xml) == [
        ("LogEntry", [("Timestamp", "2026-01-06T00:00:00Z"), ("Gas", [
            ("GasActiveImportRegisterConsumption", "1.069"),
            *_index_value("TariffBlockCounterMatrix", "0.712", "0.356"),
            *_index_value("TariffTOURegisterMatrix", "1.068")])]),
        ("LogEntry", [("Timestamp", "2026-01-07T00:00:00Z"), ("Gas", [
            ("GasActiveImportRegisterConsumption", "2.780"),
            *_index_value("TariffBlockCounterMatrix", "1.425", "1.354"),
            *_index_value("TariffTOURegisterMatrix", "2.779")])])]


def test_4_6_1_on_a_gas_tou_tariff_gives_no_block_counters() -> None:
    rig = Rig()
    rig.clock.fast_forward(DAY)
    xml = DuisRequestBuilder().retrieve_import_daily_read_log(
        GSME_EUI64, start=START, end=START + timedelta(days=1))
    assert answered(rig, xml) == [
        ("LogEntry", [("Timestamp", "2026-01-06T00:00:00Z"), ("Gas", [
            ("GasActiveImportRegisterConsumption", "1.069"),
            *_index_value("TariffTOURegisterMatrix", "1.069")])])]


# --- 4.12.1 ----------------------------------------------------------------------------------

def test_4_12_1_in_full() -> None:
    rig = Rig(TWO_RATE)
    rig.clock.fast_forward(2 * HOUR)
    assert answered(rig, fixture_xml("4.12.1_read_maximum_demand_import_registers")) == [
        ("MaxDemandConfigurableTimeActivePowerImport", [
            ("Value", "1200"), ("CaptureTime", "2026-01-05T09:30:00Z"),
            ("LastResetDateTime", "2026-01-05T09:00:00Z")]),
        ("MaxDemandActiveEnergyImport", [
            ("Value", "1200"), ("CaptureTime", "2026-01-05T09:30:00Z"),
            ("LastResetDateTime", "2026-01-05T09:00:00Z")]),
        ("MaxDemandConfigurableTimePeriod", [("StartTime", "00:00:00"),
                                             ("EndTime", "00:00:00")])]


# --- 4.11.1 ----------------------------------------------------------------------------------

def test_4_11_1_of_a_two_rate_tou_tariff_in_full() -> None:
    rig = Rig(FLAT)
    answered(rig, DuisRequestBuilder().update_import_tariff(
        ESME_EUI64, day_profiles=[[(0, 1), (7 * HOUR + 30 * 60 + 15, 2), (23 * HOUR, 1)],
                                  [(0, 1)]],
        week=[0, 0, 0, 0, 0, 1, 1], prices_millipence_per_kwh=[[15_250], [32_000]],
        standing_charge_millipence_per_day=45_000))
    assert answered(rig, fixture_xml("4.11.1_read_tariff")) == [("Electricity", [
        ("CurrencyUnitsLabel", "GBP"), ("CurrencyUnitsName", "Millipence"),
        ("StandingCharge", "4500"), ("StandingChargeScale", "-4"), ("PriceScale", "-5"),
        ("TariffTOUPriceMatrix", _index_value("TariffTOUPrice", "15250", "32000")),
        ("TariffSwitchingTable", [
            ("DayProfiles", [
                ("DayProfile", [
                    ("Day", "1"),
                    ("ProfileSchedule", [("StartTime", "00:00:00"), ("TOUTariffAction", "1")]),
                    ("ProfileSchedule", [("StartTime", "07:30:15"), ("TOUTariffAction", "2")]),
                    ("ProfileSchedule", [("StartTime", "23:00:00"), ("TOUTariffAction", "1")])]),
                ("DayProfile", [
                    ("Day", "2"),
                    ("ProfileSchedule", [("StartTime", "00:00:00"),
                                         ("TOUTariffAction", "1")])])]),
            _week("ReferencedElecDay", 1, 1, 1, 1, 1, 2, 2)])])]


def test_4_11_1_of_a_three_band_block_tariff_in_full() -> None:
    rig = Rig(FLAT)
    answered(rig, DuisRequestBuilder().update_import_tariff(
        ESME_EUI64, day_profiles=[[(0, 1), (8 * HOUR, 2), (20 * HOUR, 3)]], week=[0] * 7,
        prices_millipence_per_kwh=[[10_000, 11_000], [20_000, 21_000, 22_000],
                                   [30_000, 31_000]],
        standing_charge_millipence_per_day=45_000,
        block_thresholds_wh=[[1_000], [2_000, 3_000], [4_000]]))
    assert answered(rig, fixture_xml("4.11.1_read_tariff")) == [("Electricity", [
        ("CurrencyUnitsLabel", "GBP"), ("CurrencyUnitsName", "Millipence"),
        ("StandingCharge", "4500"), ("StandingChargeScale", "-4"), ("PriceScale", "-5"),
        ("TariffBlockPriceMatrix", [
            ("TariffBlockPrices", [("Index", "1"),
                                   *_index_value("BlockPrice", "10000", "11000")]),
            ("TariffBlockPrices", [("Index", "2"),
                                   *_index_value("BlockPrice", "20000", "21000", "22000")]),
            ("TariffBlockPrices", [("Index", "3"),
                                   *_index_value("BlockPrice", "30000", "31000")])]),
        ("TariffThresholdMatrix", [
            ("ElecTariffThresholds", [("Index", "1"), *_index_value("BlockThreshold", "1000")]),
            ("ElecTariffThresholds", [("Index", "2"),
                                      *_index_value("BlockThreshold", "2000", "3000")]),
            ("ElecTariffThresholds", [("Index", "3"),
                                      *_index_value("BlockThreshold", "4000")])]),
        ("TariffSwitchingTable", [
            ("DayProfiles", [("DayProfile", [
                ("Day", "1"),
                ("ProfileSchedule", [("StartTime", "00:00:00"), ("BlockTariffAction", "1")]),
                ("ProfileSchedule", [("StartTime", "08:00:00"), ("BlockTariffAction", "2")]),
                ("ProfileSchedule", [("StartTime", "20:00:00"), ("BlockTariffAction", "3")])])]),
            _week("ReferencedElecDay", 1, 1, 1, 1, 1, 1, 1)])])]


def test_the_tou_tariff_fixture_is_read_back_with_the_prices_it_gave() -> None:
    rig = Rig(FLAT)
    answered(rig, fixture_xml("1.1.1_update_import_tariff_tou"))
    answer = dict(answered(rig, fixture_xml("4.11.1_read_tariff"))[0][1])
    assert (answer["StandingCharge"], answer["StandingChargeScale"], answer["PriceScale"]) == (
        "5300", "-4", "-5")
    assert answer["TariffTOUPriceMatrix"] == _index_value("TariffTOUPrice", "15250", "32750")


def test_4_11_1_of_the_gas_meters_tou_tariff_in_full() -> None:
    assert answered(Rig(), fixture_xml("4.11.1_read_tariff_gas")) == [("Gas", [
        ("CurrencyUnitsLabel", "GBP"), ("StandingCharge", "31000"),
        ("TariffSwitchingTable", [
            ("DayProfiles", [("DayProfile", [
                ("Day", "1"),
                ("ProfileSchedule", [("StartTime", "00:00:00"), ("TOUTariffAction", "1")])])]),
            _week("ReferencedDay", 1, 1, 1, 1, 1, 1, 1)]),
        ("TOUTariff", _index_value("TariffTOUPrice", "6200"))])]


def test_4_11_1_of_a_gas_block_tariff_in_full() -> None:
    rig = gas_block_rig(0)
    assert answered(rig, DuisRequestBuilder().read_tariff(GSME_EUI64)) == [("Gas", [
        ("CurrencyUnitsLabel", "GBP"), ("StandingCharge", "29875"),
        ("TariffSwitchingTable", [
            ("DayProfiles", [("DayProfile", [
                ("Day", "1"),
                ("ProfileSchedule", [("StartTime", "00:00:00"),
                                     ("BlockTariffAction", "1")])])]),
            _week("ReferencedDay", 1, 1, 1, 1, 1, 1, 1)]),
        ("TariffThresholds", _index_value("BlockThreshold", "8000", "20000")),
        ("BlockTariff", _index_value("BlockPrice", "6150", "5800", "5500"))])]


# --- 1.1.1: what a malformed tariff is refused with ------------------------------------------

_START_07 = "<sr:StartTime>07:00:00.00Z</sr:StartTime>"
_ACTION_2 = "<sr:TOUTariffAction>2</sr:TOUTariffAction>"
_DAY_2_SCHEDULE = """<sr:DayName>2</sr:DayName>
              <sr:ProfileSchedule>
                <sr:StartTime>00:00:00.00Z</sr:StartTime>
                <sr:TOUTariffAction>1</sr:TOUTariffAction>
              </sr:ProfileSchedule>"""
_THRESHOLD_2 = '<sr:Thresholds index="2">\n            <sr:BlockThreshold index="1">'
_BODY = "UpdateImportTariffPrimaryElement"


def _renamed(text: str, element: str, new_name: str) -> str:
    return text.replace(f"<sr:{element}>", f"<sr:{new_name}>").replace(
        f"</sr:{element}>", f"</sr:{new_name}>")


def _tou_fixture(old: str, new: str) -> str:
    text = fixture_xml("1.1.1_update_import_tariff_tou").decode()
    assert old in text
    return text.replace(old, new, 1)


def _refusal(rig: Rig, xml: str) -> str:
    response = rig.submit(xml)
    assert response_code(response) == "E-INVALID", error_reason(response)
    return error_reason(response)


@pytest.mark.parametrize(("old", "new", "reason"), [
    ("<sr:CurrencyUnits>GBP</sr:CurrencyUnits>",
     "<sr:CurrencyUnits>GBP</sr:CurrencyUnits><sr:CurrencyUnits>GBP</sr:CurrencyUnits>",
     f"{_BODY} needs exactly one CurrencyUnits element"),
    ("<sr:CurrencyUnits>GBP</sr:CurrencyUnits>", "<sr:CurrencyUnits>EUR</sr:CurrencyUnits>",
     "the meter holds prices in GBP only: CurrencyUnits GBP"),
    ("<sr:DayName>1</sr:DayName>", "", f"{_BODY} needs exactly one DayName element"),
    ("<sr:DayName>2</sr:DayName>", "<sr:DayName>1</sr:DayName>", "DayName 1 is given twice"),
    ("<sr:DayName>2</sr:DayName>", "<sr:DayName>x</sr:DayName>",
     "DayName must be a whole number, not 'x'"),
    ('<sr:ReferencedDayName index="3">', "<sr:ReferencedDayName>",
     "every ReferencedDayName needs a whole-number index attribute"),
    ('<sr:ReferencedDayName index="3">', '<sr:ReferencedDayName index="2">',
     "ReferencedDayName indexes must be 1..7, each once"),
    ('<sr:ReferencedDayName index="7">2</sr:ReferencedDayName>', "",
     "a WeekProfile names exactly 7 days"),
    ('<sr:ReferencedDayName index="7">2<', '<sr:ReferencedDayName index="7">x<',
     "ReferencedDayName must be a whole number, not 'x'"),
    ('<sr:ReferencedDayName index="7">2<', '<sr:ReferencedDayName index="7">3<',
     "ReferencedDayName 3 is not a DayName given"),
    (_START_07, "<sr:StartTime>24:00:00.00Z</sr:StartTime>",
     "StartTime '24:00:00.00Z' is not a whole-second UTC time of day such as 07:00:00.00Z"),
    (_START_07, "<sr:StartTime>07:60:00.00Z</sr:StartTime>",
     "StartTime '07:60:00.00Z' is not a whole-second UTC time of day such as 07:00:00.00Z"),
    (_START_07, "<sr:StartTime>07:00:60.00Z</sr:StartTime>",
     "StartTime '07:00:60.00Z' is not a whole-second UTC time of day such as 07:00:00.00Z"),
    (_START_07, "<sr:StartTime>7am</sr:StartTime>",
     "StartTime '7am' is not a whole-second UTC time of day such as 07:00:00.00Z"),
    (_START_07, "", f"{_BODY}/DayProfile 1 is missing its StartTime element"),
    (_START_07, "<sr:StartTime>23:00:00.00Z</sr:StartTime>",
     f"{_BODY}/DayProfile 1: each ProfileSchedule needs one action and a StartTime of its own"),
    (_ACTION_2, _ACTION_2 * 2,
     f"{_BODY}/DayProfile 1: each ProfileSchedule needs one action and a StartTime of its own"),
    (_ACTION_2, "<sr:TOUTariffAction>x</sr:TOUTariffAction>",
     "TOUTariffAction must be a whole number, not 'x'"),
    (_ACTION_2, "<sr:TOUTariffAction>0</sr:TOUTariffAction>",
     f"{_BODY}/DayProfile 1: TOUTariffAction 0: tariff actions count from 1"),
    (_ACTION_2, "<sr:BlockTariffAction>2</sr:BlockTariffAction>",
     "a switching table mixing TOUTariffAction and block actions (a hybrid tariff) is not "
     "supported by the meter"),
    (_DAY_2_SCHEDULE, "<sr:DayName>2</sr:DayName>",
     f"{_BODY}/DayProfile 2: a DayProfile needs a ProfileSchedule"),
    ("<sr:ReferencedWeekName>1</sr:ReferencedWeekName>", "",
     f"{_BODY} needs exactly one ReferencedWeekName element"),
    ("<sr:ReferencedWeekName>1</sr:ReferencedWeekName>",
     "<sr:ReferencedWeekName>2</sr:ReferencedWeekName>",
     "Season refers to WeekName 2, which is not given"),
    ("<sr:WeekName>1</sr:WeekName>", "", f"{_BODY} needs exactly one WeekName element"),
    ("<sr:ThresholdMatrix>", "<sr:SpecialDays/><sr:SpecialDays/><sr:ThresholdMatrix>",
     f"{_BODY} needs exactly one SpecialDays element"),
    ("<sr:ThresholdMatrix>", "<sr:ThresholdMatrix/><sr:ThresholdMatrix>",
     f"{_BODY} needs exactly one ThresholdMatrix element"),
    ('<sr:Thresholds index="2">', "<sr:Thresholds>",
     "every Thresholds needs a whole-number index attribute"),
    (_THRESHOLD_2 + "4294967295<", _THRESHOLD_2 + "x<",
     "BlockThreshold must be a whole number, not 'x'"),
    (_THRESHOLD_2, '<sr:Thresholds index="2">\n            <sr:BlockThreshold>',
     "every BlockThreshold needs a whole-number index attribute"),
    ('<sr:TOUPrice index="2">32750<', '<sr:TOUPrice index="2">x<',
     "TOUPrice must be a whole number, not 'x'"),
    ('<sr:TOUPrice index="2">', "<sr:TOUPrice>",
     "every TOUPrice needs a whole-number index attribute"),
    ("<sr:PriceScale>-5</sr:PriceScale>", "", f"{_BODY} needs exactly one PriceScale element"),
])
def test_1_1_1_malformed_tariff_is_invalid_with_its_reason_and_nothing_sent(
        old: str, new: str, reason: str) -> None:
    rig = Rig(FLAT)
    assert _refusal(rig, _tou_fixture(old, new)) == reason
    assert rig.sent_commands() == []


@pytest.mark.parametrize(("element", "reason"), [
    ("ElecTariffElements", f"{_BODY} needs one ElecTariffElements or GasTariffElements"),
    ("SwitchingTable", f"{_BODY} needs exactly one SwitchingTable element"),
    ("DayProfiles", f"{_BODY} needs exactly one DayProfiles element"),
    ("WeekProfiles", f"{_BODY} needs exactly one WeekProfiles element"),
    ("Seasons", f"{_BODY} needs exactly one Seasons element"),
    ("Season", f"{_BODY}: Seasons needs a Season"),
    ("ElectricityPriceElements",
     f"{_BODY} needs one ElectricityPriceElements or GasPriceElements"),
])
def test_1_1_1_without_a_required_element_is_invalid_naming_it(element: str,
                                                               reason: str) -> None:
    text = _renamed(fixture_xml("1.1.1_update_import_tariff_tou").decode(), element, "Other")
    assert _refusal(Rig(FLAT), text) == reason


def _with_tou_prices_as_block_prices(text: str) -> str:
    for n, price in ((1, 15_250), (2, 32_750)):
        text = text.replace(
            f'<sr:TOUPrice index="{n}">{price}</sr:TOUPrice>',
            f'<sr:BlockPrices index="{n}"><sr:BlockPrice index="1">{price}</sr:BlockPrice>'
            "</sr:BlockPrices>")
    return _renamed(text, "TOUTariff", "BlockTariff")


@pytest.mark.parametrize(("old", "new", "reason"), [
    ('<sr:TOUPrice index="2">32750<', '<sr:TOUPrice index="2">-1<',
     "TOUPrice -1 must not be negative"),
    ('<sr:TOUPrice index="2">32750<', '<sr:TOUPrice index="2">32768<',
     "TOUPrice 32768 is outside the range of its DUIS type (-32768..32767)"),
    ("<sr:StandingCharge>5300</sr:StandingCharge>", "<sr:StandingCharge>32768</sr:StandingCharge>",
     "StandingCharge 32768 is outside the range of its DUIS type (-32768..32767)"),
    ("<sr:StandingCharge>5300</sr:StandingCharge>\n          <sr:StandingChargeScale>-4<",
     "<sr:StandingCharge>5301</sr:StandingCharge><sr:StandingChargeScale>-6<",
     "StandingCharge 5301 x 10^-6 GBP is finer than the 1/100000 GBP the meter holds; give it "
     "at scale -5 or coarser"),
    ("<sr:StandingChargeScale>-4</sr:StandingChargeScale>", "",
     f"{_BODY} needs exactly one StandingChargeScale element"),
    ("<sr:StandingCharge>5300</sr:StandingCharge>", "",
     f"{_BODY} needs exactly one StandingCharge element"),
    ("</sr:TOUTariff>",
     '</sr:TOUTariff><sr:TOUTariff><sr:TOUPrice index="1">1</sr:TOUPrice></sr:TOUTariff>',
     f"{_BODY} needs exactly one TOUTariff element"),
    ("</sr:TOUTariff>", "</sr:TOUTariff><sr:BlockTariff/>",
     "prices need a TOUTariff or a BlockTariff (a HybridTariff is not supported by the meter)"),
])
def test_1_1_1_malformed_prices_are_invalid_with_their_reason(old: str, new: str,
                                                              reason: str) -> None:
    assert _refusal(Rig(FLAT), _tou_fixture(old, new)) == reason


def test_1_1_1_price_refusals_name_the_elements_missing() -> None:
    text = fixture_xml("1.1.1_update_import_tariff_tou").decode()
    assert _refusal(Rig(FLAT), _renamed(text, "PriceElements", "Other")) == (
        f"{_BODY} needs exactly one PriceElements element")
    assert _refusal(Rig(FLAT), _renamed(text, "TOUTariff", "Other")) == (
        "prices need a TOUTariff or a BlockTariff (a HybridTariff is not supported by the meter)")
    assert _refusal(Rig(FLAT), _with_tou_prices_as_block_prices(text)) == (
        "a switching table of TOUTariffAction needs TOUTariff prices")


def _block_fixture(old: str, new: str) -> str:
    text = fixture_xml("1.1.1_update_import_tariff_block").decode()
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize(("old", "new", "reason"), [
    ('<sr:BlockPrice index="2">24000<', '<sr:BlockPrice index="2">x<',
     "BlockPrice must be a whole number, not 'x'"),
    ('<sr:BlockPrices index="1">', "<sr:BlockPrices>",
     "every BlockPrices needs a whole-number index attribute"),
    ('<sr:BlockPrice index="3">31000</sr:BlockPrice>\n'
     '              <sr:BlockPrice index="4">31000</sr:BlockPrice>', "",
     "BlockPrices 1 has 2 BlockPrice for 3 blocks"),
    ("</sr:BlockTariff>", "</sr:BlockTariff><sr:BlockTariff/>",
     f"{_BODY} needs exactly one BlockTariff element"),
    ("<sr:BlockTariffAction>1</sr:BlockTariffAction>",
     "<sr:BlockTariffAction>2</sr:BlockTariffAction>", "1 BlockPrices for 2 block tariffs"),
])
def test_1_1_1_malformed_block_prices_are_invalid_with_their_reason(
        old: str, new: str, reason: str) -> None:
    rig = Rig(FLAT)
    assert _refusal(rig, _block_fixture(old, new)) == reason
    assert rig.sent_commands() == []


def test_1_1_1_block_prices_for_bands_the_switching_table_never_uses_are_not_used() -> None:
    rig = Rig(FLAT)
    answered(rig, _block_fixture("</sr:BlockPrices>", '</sr:BlockPrices><sr:BlockPrices index="2">'
                                 '<sr:BlockPrice index="1">1000</sr:BlockPrice></sr:BlockPrices>'))
    assert rig.esme.metrology.timeline.current.prices.block_prices_millipence_per_kwh == (
        (18_000, 24_000, 31_000),)


def test_1_1_1_without_a_threshold_matrix_is_a_tou_tariff() -> None:
    text = fixture_xml("1.1.1_update_import_tariff_tou").decode()
    matrix = text[text.index("<sr:ThresholdMatrix>"):text.index("</sr:ThresholdMatrix>")]
    rig = Rig(FLAT)
    answered(rig, text.replace(matrix + "</sr:ThresholdMatrix>", ""))
    assert rig.esme.metrology.timeline.current.block_thresholds_wh == ((), ())


def _gas_block_fixture(old: str, new: str) -> str:
    text = fixture_xml("1.1.1_update_import_tariff_gas_block").decode()
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize(("number_of_thresholds", "thresholds_wh", "prices_millipence"), [
    ("<sr:NumberOfThresholds>1</sr:NumberOfThresholds>", ((8_000,),), ((6_150, 5_800),)),
    ("", ((8_000, 20_000),), ((6_150, 5_800, 5_500),)),
])
def test_1_1_1_gas_number_of_thresholds_keeps_that_many_thresholds_or_all_without_it(
        number_of_thresholds: str, thresholds_wh: tuple[tuple[int, ...], ...],
        prices_millipence: tuple[tuple[int, ...], ...]) -> None:
    rig = Rig()
    answered(rig, _gas_block_fixture("<sr:NumberOfThresholds>2</sr:NumberOfThresholds>",
                                     number_of_thresholds))
    tariff = rig.world.meter(GSME_EUI64).metrology.timeline.current
    assert tariff.block_thresholds_wh == thresholds_wh
    assert tariff.prices.block_prices_millipence_per_kwh == prices_millipence


@pytest.mark.parametrize(("old", "new", "reason"), [
    ("<sr:NumberOfThresholds>2<", "<sr:NumberOfThresholds>x<",
     "NumberOfThresholds must be a whole number, not 'x'"),
    ("<sr:NumberOfThresholds>2</sr:NumberOfThresholds>",
     "<sr:NumberOfThresholds>2</sr:NumberOfThresholds>" * 2,
     f"{_BODY} needs exactly one NumberOfThresholds element"),
    ('<sr:BlockPrice index="2">5800<', '<sr:BlockPrice index="2">x<',
     "BlockPrice must be a whole number, not 'x'"),
    ('<sr:BlockPrice index="2">5800<', '<sr:BlockPrice index="2">-1<',
     "BlockPrice -1 must not be negative"),
])
def test_1_1_1_malformed_gas_prices_are_invalid_with_their_reason(old: str, new: str,
                                                                  reason: str) -> None:
    assert _refusal(Rig(), _gas_block_fixture(old, new)) == reason


def test_1_1_1_too_long_for_the_meter_is_invalid_with_the_whole_reason() -> None:
    tariff = {"day_profiles": [[(n * 1_800, (n + shift) % 48 + 1) for n in range(48)]
                               for shift in range(4)],
              "week": [n % 4 for n in range(7)],
              "prices_millipence_per_kwh": [[10_000 + 100 * band] for band in range(48)],
              "standing_charge_millipence_per_day": 48_000}
    xml = DuisRequestBuilder().update_import_tariff(ESME_EUI64, **tariff)
    assert _refusal(Rig(FLAT), xml) == (
        "ElecTariffElements/SwitchingTable, ThresholdMatrix and PriceElements make a SET_TARIFF "
        "of 1274 bytes; the meter takes at most 1050 (fewer DayProfiles, ProfileSchedules or "
        "bands); nothing was sent")


# --- the 1.1.1 and 1.2.1 builders ------------------------------------------------------------


_ANY_DATE: list[Tree] = [("Year", [("NonSpecifiedYear", "")]),
                         ("Month", [("NonSpecifiedMonth", "")]),
                         ("DayOfMonth", [("NonSpecifiedDayOfMonth", "")]),
                         ("DayOfWeek", [("NonSpecifiedDayOfWeek", "")])]


def test_the_1_1_1_builder_writes_the_whole_switching_table_and_eight_threshold_rows() -> None:
    xml = DuisRequestBuilder().update_import_tariff(
        ESME_EUI64, day_profiles=[[(0, 1), (27_015, 2)]], week=[0] * 7,
        prices_millipence_per_kwh=[[15_000], [32_000]], standing_charge_millipence_per_day=45_000)
    assert request_body(xml) == [("UpdateImportTariffPrimaryElement", [
        ("ElecTariffElements", [
            ("CurrencyUnits", "GBP"),
            ("SwitchingTable", [
                ("DayProfiles", [("DayProfile", [
                    ("DayName", "1"),
                    ("ProfileSchedule", [("StartTime", "00:00:00.00Z"),
                                         ("TOUTariffAction", "1")]),
                    ("ProfileSchedule", [("StartTime", "07:30:15.00Z"),
                                         ("TOUTariffAction", "2")])])]),
                ("WeekProfiles", [("WeekProfile", [("WeekName", "1"), *(
                    ("ReferencedDayName", "1") for _ in range(7))])]),
                ("Seasons", [("Season", [("SeasonName", "all"), ("SeasonStartDate", _ANY_DATE),
                                         ("ReferencedWeekName", "1")])])]),
            ("ThresholdMatrix", [("Thresholds", [("BlockThreshold", "4294967295")])] * 8)]),
        ("PriceElements", [("ElectricityPriceElements", [
            ("StandingCharge", "4500"), ("StandingChargeScale", "-4"), ("PriceScale", "-5"),
            ("TOUTariff", [("TOUPrice", "15000"), ("TOUPrice", "32000")])])])])]


def test_the_1_1_1_builder_refuses_a_switch_at_86400_seconds() -> None:
    with pytest.raises(ValueError) as refused:
        DuisRequestBuilder().update_import_tariff(
            ESME_EUI64, day_profiles=[[(0, 1), (86_400, 2)]], week=[0] * 7,
            prices_millipence_per_kwh=[[1], [2]], standing_charge_millipence_per_day=1)
    assert str(refused.value) == "a switch time is a second of the day 0..86399, not 86400"


@pytest.mark.parametrize(("prices", "tariff"), [
    ([[15_000], [32_000]], ("TOUTariff", [("TOUPrice", "15000"), ("TOUPrice", "32000")])),
    ([[15_000, 16_000]], ("BlockTariff", [("BlockPrices", [("BlockPrice", "15000"),
                                                           ("BlockPrice", "16000")])])),
])
def test_the_1_2_1_builder_writes_tou_prices_for_one_price_a_band_else_block_prices(
        prices: list[list[int]], tariff: Tree) -> None:
    xml = DuisRequestBuilder().update_price(ESME_EUI64, prices_millipence_per_kwh=prices,
                                            standing_charge_millipence_per_day=45_000)
    assert request_body(xml) == [("UpdatePricePrimaryElement", [
        ("PriceElements", [("ElectricityPriceElements", [
            ("StandingCharge", "4500"), ("StandingChargeScale", "-4"), ("PriceScale", "-5"),
            tariff])])])]


@pytest.mark.parametrize("bound", ["start", "end"])
def test_a_log_period_builder_refuses_a_naive_datetime_naming_which(bound: str) -> None:
    naive = datetime(2026, 1, 5)
    period = {"start": START, "end": START + timedelta(days=1), bound: naive}
    with pytest.raises(ValueError) as refused:
        DuisRequestBuilder().read_active_import_profile_data(ESME_EUI64, **period)
    assert str(refused.value) == (f"{bound} datetime.datetime(2026, 1, 5, 0, 0) is a naive "
                                  "datetime; give an aware one (e.g. tzinfo=timezone.utc)")


# --- 1.2.1 -----------------------------------------------------------------------------------

def test_1_2_1_tou_prices_for_a_meter_holding_a_two_block_tariff_are_invalid() -> None:
    rig = Rig(FLAT)
    answered(rig, DuisRequestBuilder().update_import_tariff(
        ESME_EUI64, day_profiles=[[(0, 1)]], week=[0] * 7,
        prices_millipence_per_kwh=[[10_000, 11_000]], standing_charge_millipence_per_day=45_000,
        block_thresholds_wh=[[1_000]]))
    xml = DuisRequestBuilder().update_price(ESME_EUI64, prices_millipence_per_kwh=[[12_000]],
                                            standing_charge_millipence_per_day=45_000)
    assert _refusal(rig, xml) == "the meter holds a block tariff: give BlockTariff prices"


def test_1_2_1_future_dated_is_scheduled_and_its_cancellation_cancels_it() -> None:
    rig = Rig(FLAT)
    prices: dict[str, Any] = {"prices_millipence_per_kwh": [[26_000]],
                              "standing_charge_millipence_per_day": 45_000}
    scheduled = answered(rig, DuisRequestBuilder().update_price(
        ESME_EUI64, **prices, execute_at=START + timedelta(hours=2)))
    assert scheduled == [("ExecutionDateTime", "2026-01-05T11:00:00Z"), ("Scheduled", "true")]
    assert rig.sent_commands() == [Command.READ_TARIFF, Command.SCHEDULE_REQUEST]
    cancelled = answered(rig, DuisRequestBuilder().update_price(
        ESME_EUI64, **prices, execute_at=CANCEL_FUTURE_DATED))
    assert cancelled == [("ExecutionDateTime", "3000-12-31T00:00:00Z"), ("Cancelled", "true")]
    assert [request.body.scheduled_command for request in rig.sent(
        Command.CANCEL_SCHEDULED_REQUEST)] == [
        Command.SET_PRICES]
    rig.clock.fast_forward(3 * HOUR)
    assert rig.esme.metrology.timeline.current.prices.block_prices_millipence_per_kwh == (
        (20_000,),)


# --- 4.8.1 and the other log reads: the ReadLogPeriod ----------------------------------------

_PROFILE_READ = "ReadActiveImportProfileData"


@pytest.mark.parametrize(("old", "new", "reason"), [
    ("<sr:StartDateTime>2026-01-05T00:00:00Z</sr:StartDateTime>", "",
     f"{_PROFILE_READ}/ReadLogPeriod is missing its StartDateTime element"),
    ("<sr:StartDateTime>2026-01-05T00:00:00Z<", "<sr:StartDateTime>yesterday<",
     "ReadLogPeriod/StartDateTime 'yesterday' is not a UTC date-time such as "
     "2030-01-15T09:00:00Z"),
    ("<sr:EndDateTime>2026-01-06T00:00:00Z<", "<sr:EndDateTime>tomorrow<",
     "ReadLogPeriod/EndDateTime 'tomorrow' is not a UTC date-time such as 2030-01-15T09:00:00Z"),
])
def test_a_malformed_read_log_period_is_invalid_with_its_reason(old: str, new: str,
                                                                reason: str) -> None:
    text = fixture_xml("4.8.1_read_active_import_profile_data").decode()
    assert old in text
    rig = Rig()
    assert _refusal(rig, text.replace(old, new)) == reason
    assert rig.sent_commands() == []


def test_a_log_read_without_its_read_log_period_is_invalid_naming_it() -> None:
    text = _renamed(fixture_xml("4.8.1_read_active_import_profile_data").decode(),
                    "ReadLogPeriod", "Other")
    assert _refusal(Rig(), text) == f"{_PROFILE_READ} is missing its ReadLogPeriod element"


def test_1_1_1_of_exactly_the_1050_bytes_the_meter_takes_is_sent() -> None:
    # 44 bands; 3 day profiles of 48 switches and one of 8: a SET_TARIFF of 1050 bytes
    profiles = [[(n * 1_800, n % 44 + 1) for n in range(48)]] * 3 + [
        [(n * 1_800, n % 44 + 1) for n in range(8)]]
    rig = Rig(FLAT)
    answered(rig, DuisRequestBuilder().update_import_tariff(
        ESME_EUI64, day_profiles=profiles, week=[0] * 7,
        prices_millipence_per_kwh=[[10_000 + band] for band in range(44)],
        standing_charge_millipence_per_day=48_000))
    assert rig.sent_commands() == [Command.SET_TARIFF]
    assert len(rig.channel.exchanges[-1][1]) == 1050


def test_the_1_1_1_builder_writes_a_block_tariffs_thresholds_in_eight_rows() -> None:
    xml = DuisRequestBuilder().update_import_tariff(
        ESME_EUI64, day_profiles=[[(0, 1)]], week=[0] * 7,
        prices_millipence_per_kwh=[[10_000, 11_000, 12_000]],
        standing_charge_millipence_per_day=45_000, block_thresholds_wh=[[1_000, 2_000]])
    elements = dict(request_body(xml)[0][1])
    assert dict(elements["ElecTariffElements"])["ThresholdMatrix"] == [
        ("Thresholds", [("BlockThreshold", "1000"), ("BlockThreshold", "2000")]),
        *[("Thresholds", [("BlockThreshold", "4294967295")])] * 7]
    assert elements["PriceElements"] == [("ElectricityPriceElements", [
        ("StandingCharge", "4500"), ("StandingChargeScale", "-4"), ("PriceScale", "-5"),
        ("BlockTariff", [("BlockPrices", [("BlockPrice", "10000"), ("BlockPrice", "11000"),
                                          ("BlockPrice", "12000")])])])]


def test_1_1_1_a_switch_at_the_last_second_of_an_hour_is_taken() -> None:
    rig = Rig(FLAT)
    answered(rig, _tou_fixture(_START_07, "<sr:StartTime>07:59:59.00Z</sr:StartTime>"))
    assert rig.esme.metrology.timeline.current.switching.day_profiles[0] == (
        (0, 0), (28_799, 1), (82_800, 0))
