"""The meter's metering-data commands (issue 11): energy registers, half-hour profile (paged),
daily read log, prepayment daily log, tariff read and change, prices change, maximum demand;
each answer survives the wire codec, and a refused change changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.errors import ProfileError
from emulator.meter import Meter, MeterConfig
from emulator.state_codecs import encode_meter_registers
from protocol.apdu import (
    MAX_PROFILE_PERIODS_PER_READ,
    REQUEST_BODY_TYPES,
    ApduBody,
    BandPrices,
    BandSwitch,
    BandThresholds,
    BlockPrice,
    BlockThreshold,
    Command,
    DayProfile,
    DeviceType,
    LogRange,
    RegisterUnit,
    Request,
    Response,
    SetSupplyStateRequest,
    Status,
    SupplyState,
    Tariff,
    TariffPrices,
    decode_apdu,
    encode_response,
)

EUI = bytes.fromhex("00DB1234567890A1")
T0 = 1_767_225_600  # 2026-01-01T00:00Z, a Thursday
DAY = 86_400
HOUR = 3_600
HH = 1_800
#: a two-rate tariff: band 1 from 00:00, band 2 07:00-23:00; 1200 W all day
TWO_RATE: dict[str, Any] = {
    "tariff_prices_millipence_per_kwh": [[15_000], [32_000]],
    "tariff_day_profiles": [[[0, 0], [7 * HOUR, 1], [23 * HOUR, 0]]],
    "standing_charge_millipence_per_day": 50_000,
    "load_w": 1_200,
}
EVERYTHING = LogRange(start_seconds=0, end_seconds=0xFFFFFFFF)


def meter(table: dict[str, Any], device_type: DeviceType = DeviceType.ELECTRICITY_METER
          ) -> Meter:
    return Meter(MeterConfig.from_mapping(table, eui64=EUI, device_type=device_type), T0)


def ask(device: Meter, command: Command, body: ApduBody | None = None) -> Response:
    """Ask at the meter's own time (``body`` None: the command's empty body); the answer is
    checked to survive the wire codec."""
    request = (Request(command, 9, body=body) if body is not None
               else Request(command, 9, body=REQUEST_BODY_TYPES[command]()))
    response = device.handle_request(request, device.device_time_seconds)
    decoded = decode_apdu(encode_response(response))
    assert decoded == response
    assert isinstance(decoded, Response)
    return decoded


def test_energy_registers_give_the_total_and_each_tou_band_in_wh() -> None:
    device = meter(TWO_RATE)
    device.advance_to(T0 + 2 * DAY)
    body = ask(device, Command.READ_ENERGY_REGISTERS).body
    # 1200 W: 600 Wh a half-hour; band 1 8 h a day, band 2 16 h a day
    assert body.register_unit is RegisterUnit.WATT_HOURS
    assert body.total_register == 57_600
    assert [(r.index, r.register_value) for r in body.tou_registers] == [(1, 19_200),
                                                                          (2, 38_400)]
    assert body.block_registers == ()


def test_a_gas_meter_counts_in_dm3_and_a_block_tariff_has_block_counters() -> None:
    device = meter({"tariff_prices_millipence_per_kwh": [[5_000, 7_000]],
                    "tariff_block_thresholds_wh": [[1_000]], "load_w": 1_000},
                   DeviceType.GAS_METER)
    device.advance_to(T0 + 2 * HOUR)  # 2000 Wh = 7,200,000 J: 1000 Wh in each block
    body = ask(device, Command.READ_ENERGY_REGISTERS).body
    assert body.register_unit is RegisterUnit.CUBIC_DECIMETRES
    # dm3 = J x 100000 / (102264 x 39500), rounded down
    assert body.total_register == 7_200_000 * 100_000 // (102_264 * 39_500) == 178
    assert [(r.index, r.register_value) for r in body.block_registers] == [(1, 89), (2, 89)]


def test_profile_gives_each_closed_half_hour_in_the_range_from_its_start() -> None:
    device = meter(TWO_RATE)
    device.advance_to(T0 + 2 * HOUR + 600)  # four closed half-hours, one open
    body = ask(device, Command.READ_PROFILE_DATA,
               LogRange(start_seconds=T0 + HH - 1, end_seconds=T0 + DAY)).body
    assert body.first_period_start_seconds == T0 + HH  # the half-hour starting in range
    assert body.period_seconds == 1_800
    assert list(body.values) == [600, 600, 600]


def test_a_long_profile_read_is_cut_at_31_days_and_the_rest_read_from_there() -> None:
    device = meter(TWO_RATE)
    device.advance_to(T0 + 40 * DAY)
    first = ask(device, Command.READ_PROFILE_DATA,
                LogRange(start_seconds=T0, end_seconds=T0 + 40 * DAY)).body
    assert len(first.values) == MAX_PROFILE_PERIODS_PER_READ == 1_488
    rest = ask(device, Command.READ_PROFILE_DATA,
               LogRange(start_seconds=T0 + 31 * DAY, end_seconds=T0 + 40 * DAY)).body
    assert rest.first_period_start_seconds == T0 + 31 * DAY
    assert len(rest.values) == 9 * 48
    total = ask(device, Command.READ_ENERGY_REGISTERS).body.total_register
    assert sum(first.values + rest.values) == total == 1_152_000


def test_a_log_range_that_does_not_start_before_it_ends_is_malformed() -> None:
    device = meter(TWO_RATE)
    for command in (Command.READ_PROFILE_DATA, Command.READ_DAILY_READ_LOG,
                    Command.READ_PREPAYMENT_DAILY_LOG):
        response = ask(device, command, LogRange(start_seconds=T0, end_seconds=T0))
        assert response.status is Status.MALFORMED_REQUEST


def test_daily_read_log_holds_each_midnights_registers_per_band_and_block() -> None:
    device = meter(TWO_RATE)
    device.advance_to(T0 + 3 * DAY + 5)
    body = ask(device, Command.READ_DAILY_READ_LOG,
               LogRange(start_seconds=T0 + DAY, end_seconds=T0 + 3 * DAY)).body
    assert [(e.midnight_seconds, e.total_register) for e in body.entries] == [
        (T0 + DAY, 28_800), (T0 + 2 * DAY, 57_600)]
    assert [(c.band, c.block, c.register_value) for c in body.entries[1].cells] == [
        (1, 1, 19_200), (2, 1, 38_400)]


def test_prepayment_daily_log_holds_the_money_registers_at_each_midnight() -> None:
    device = meter({**TWO_RATE, "payment_mode": "prepayment", "meter_balance_pence": 5_000,
                    "disablement_threshold_pence": -100_000})
    device.advance_to(T0 + 2 * DAY + 1)
    entries = ask(device, Command.READ_PREPAYMENT_DAILY_LOG, EVERYTHING).body.entries
    # a day: 9600 Wh at 15 p/kWh = 144 p, 19200 Wh at 32 p/kWh = 614.4 p, 50 p standing
    assert [(e.midnight_seconds, e.meter_balance_pence) for e in entries] == [
        (T0 + DAY, 5_000 - 808), (T0 + 2 * DAY, 5_000 - 1_616)]
    assert entries[0].accumulated_debt_pence == entries[0].time_debt_1_pence == 0


def test_tariff_read_gives_switching_prices_and_no_pending_change() -> None:
    body = ask(meter(TWO_RATE), Command.READ_TARIFF).body
    assert [[(s.start_second_of_day, s.band) for s in p.switches]
            for p in body.tariff.day_profiles] == [[(0, 1), (25_200, 2), (82_800, 1)]]
    assert body.tariff.week_day_profiles == bytes(7)
    assert [[p.price_millipence_per_kwh for p in band.block_prices]
            for band in body.tariff.prices.bands] == [[15_000], [32_000]]
    assert body.tariff.prices.standing_charge_millipence_per_day == 50_000
    assert body.pending_effective_seconds == 0


def _prices(standing_millipence: int, bands: list[list[int]]) -> TariffPrices:
    return TariffPrices(standing_millipence, tuple(
        BandPrices(tuple(BlockPrice(p) for p in band)) for band in bands))


def _tariff(bands: list[list[int]], thresholds: list[list[int]]) -> Tariff:
    return Tariff(day_profiles=(DayProfile((BandSwitch(0, 1),)),),
                  week_day_profiles=bytes(7),
                  band_thresholds=tuple(BandThresholds(tuple(BlockThreshold(t) for t in row))
                                        for row in thresholds),
                  block_period_seconds=DAY,
                  prices=_prices(40_000, bands))


def test_a_new_tariff_takes_effect_now_and_costs_from_now() -> None:
    device = meter(TWO_RATE)
    device.advance_to(T0 + HOUR)
    block_tariff = _tariff([[10_000, 20_000]], [[500]])
    assert ask(device, Command.SET_TARIFF, block_tariff).body == block_tariff
    device.advance_to(T0 + 2 * HOUR)  # 1200 Wh: 500 Wh in block 1, 700 Wh in block 2
    body = ask(device, Command.READ_ENERGY_REGISTERS).body
    assert [(r.index, r.register_value) for r in body.block_registers] == [(1, 1_700),
                                                                            (2, 700)]
    # the first hour 1200 Wh at 15 p/kWh (18 p), the second 500 Wh at 10 p and 700 Wh at 20 p
    # (5 p + 14 p), standing charge an hour of 50 p/day then of 40 p/day (3.75 p): 40.75 p,
    # rounded down
    assert device.registers.consumption_debited_pence == 40


def test_a_tariff_the_meter_cannot_hold_is_refused_and_nothing_changes() -> None:
    device = meter(TWO_RATE)
    wrong = _tariff([[10_000, 20_000]], [[]])  # two block prices, no threshold
    assert ask(device, Command.SET_TARIFF, wrong).status is Status.VALUE_OUT_OF_RANGE
    assert ask(device, Command.READ_TARIFF).body.tariff.prices.standing_charge_millipence_per_day \
        == 50_000


def test_new_prices_keep_the_switching_and_must_fit_its_bands() -> None:
    device = meter(TWO_RATE)
    one_band = _prices(1, [[9]])
    assert ask(device, Command.SET_PRICES, one_band).status is Status.VALUE_OUT_OF_RANGE
    two_bands = _prices(60_000, [[11_000], [33_000]])
    assert ask(device, Command.SET_PRICES, two_bands).body == two_bands
    tariff = ask(device, Command.READ_TARIFF).body.tariff
    assert len(tariff.day_profiles[0].switches) == 3
    assert tariff.prices.standing_charge_millipence_per_day == 60_000


def test_maximum_demand_is_the_highest_half_hour_average_and_gas_has_none() -> None:
    device = meter({"load_profile": [[0, 1_000], [3 * HOUR, 2_500], [4 * HOUR, 1_000]]})
    device.advance_to(T0 + 6 * HOUR)
    body = ask(device, Command.READ_MAXIMUM_DEMAND).body
    assert (body.active_import.demand_w, body.active_import.capture_time_seconds,
            body.active_import.last_reset_seconds) == (2_500, T0 + 3 * HOUR + HH, T0)
    assert (body.configurable_window_start_second_of_day,
            body.configurable_window_end_second_of_day) == (0, DAY)
    gas = meter({"load_w": 100}, DeviceType.GAS_METER)
    assert ask(gas, Command.READ_MAXIMUM_DEMAND).status is Status.NOT_SUPPORTED_BY_DEVICE


def test_active_power_is_the_load_now_and_0_with_the_supply_off() -> None:
    device = meter({"load_profile": [[0, 700], [6 * HOUR, 2_100]]})
    device.advance_to(T0 + 6 * HOUR)
    assert ask(device, Command.READ_ACTIVE_POWER).body.active_power_import_w == 2_100
    ask(device, Command.SET_SUPPLY_STATE, SetSupplyStateRequest(SupplyState.DISABLED))
    assert ask(device, Command.READ_ACTIVE_POWER).body.active_power_import_w == 0
    gas = meter({"load_w": 100}, DeviceType.GAS_METER)
    assert ask(gas, Command.READ_ACTIVE_POWER).status is Status.NOT_SUPPORTED_BY_DEVICE


def test_daily_consumption_gives_each_whole_day_whose_midnight_is_in_the_range() -> None:
    device = meter(TWO_RATE)
    device.advance_to(T0 + 3 * DAY + HOUR)
    body = ask(device, Command.READ_DAILY_CONSUMPTION_LOG,
               LogRange(start_seconds=T0 + 1, end_seconds=T0 + 10 * DAY)).body
    assert [(e.midnight_seconds, e.register_units) for e in body.entries] == [
        (T0 + DAY, 28_800), (T0 + 2 * DAY, 28_800)]  # the day starting 3 days in is not over


@pytest.mark.parametrize("command", [Command.READ_ENERGY_REGISTERS, Command.READ_TARIFF])
def test_reads_change_nothing(command: Command) -> None:
    device = meter(TWO_RATE)
    device.advance_to(T0 + DAY)
    before = encode_meter_registers(device.registers)
    ask(device, command)
    assert encode_meter_registers(device.registers) == before


#: seed 7, +-30.0 V: the first six half-hours of 2026 average 216.6, 208.7, 226.1, 211.2,
#: 204.6 and 215.6 V
WIDE_VOLTAGE: dict[str, Any] = {
    "load_w": 500,
    "voltage_seed": 7,
    "voltage_spread_decivolts": 300,
    "voltage_over_threshold_decivolts": 2_250,
    "voltage_under_threshold_decivolts": 2_150,
}


def test_network_data_gives_each_closed_half_hours_average_voltage_and_the_counts() -> None:
    device = meter(WIDE_VOLTAGE)
    device.advance_to(T0 + 3 * HOUR + 600)  # six half-hours closed, the seventh open
    body = ask(device, Command.READ_NETWORK_DATA,
               LogRange(start_seconds=T0, end_seconds=T0 + DAY)).body
    assert (body.measurement_period_seconds, body.first_period_start_seconds) == (HH, T0)
    assert body.average_rms_voltages_decivolts == (2_166, 2_087, 2_261, 2_112, 2_046, 2_156)
    assert (body.over_voltage_count, body.under_voltage_count) == (1, 3)


def test_network_data_gives_the_half_hours_starting_in_the_range() -> None:
    device = meter(WIDE_VOLTAGE)
    device.advance_to(T0 + 3 * HOUR)
    body = ask(device, Command.READ_NETWORK_DATA,
               LogRange(start_seconds=T0 + 1, end_seconds=T0 + 2 * HOUR)).body
    assert body.first_period_start_seconds == T0 + HH
    assert body.average_rms_voltages_decivolts == (2_087, 2_261, 2_112)
    assert (body.over_voltage_count, body.under_voltage_count) == (1, 2)


def test_network_data_keeps_the_last_4320_half_hours() -> None:
    device = meter({"load_w": 500})
    device.advance_to(T0 + 91 * DAY)
    body = ask(device, Command.READ_NETWORK_DATA, EVERYTHING).body
    assert len(body.average_rms_voltages_decivolts) == 4_320
    assert body.first_period_start_seconds == T0 + DAY  # 90 days before now
    assert all(2_200 <= value <= 2_400 for value in body.average_rms_voltages_decivolts)
    assert (body.over_voltage_count, body.under_voltage_count) == (0, 0)


def test_network_data_before_the_meter_started_is_empty_and_a_backwards_range_refused(
        ) -> None:
    device = meter(WIDE_VOLTAGE)
    device.advance_to(T0 + DAY)
    body = ask(device, Command.READ_NETWORK_DATA,
               LogRange(start_seconds=T0 - DAY, end_seconds=T0)).body
    assert (body.first_period_start_seconds, body.average_rms_voltages_decivolts,
            body.over_voltage_count, body.under_voltage_count) == (0, (), 0, 0)
    assert ask(device, Command.READ_NETWORK_DATA,
               LogRange(start_seconds=T0, end_seconds=T0)).status is Status.MALFORMED_REQUEST


def test_network_data_is_esme_only() -> None:
    gas = meter({"load_w": 100}, DeviceType.GAS_METER)
    gas.advance_to(T0 + DAY)
    assert ask(gas, Command.READ_NETWORK_DATA, EVERYTHING).status is (
        Status.NOT_SUPPORTED_BY_DEVICE)


@pytest.mark.parametrize("table", [
    {"voltage_spread_decivolts": 3_000},
    {"voltage_over_threshold_decivolts": 2_000},
    {"voltage_seed": "seven"},
])
def test_a_bad_voltage_profile_key_is_a_profile_error(table: dict[str, Any]) -> None:
    with pytest.raises(ProfileError, match="voltage"):
        meter(table)
