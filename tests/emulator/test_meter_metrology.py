"""A meter's metrology: TOU tariff and load shape from the profile, registers, logs and money
in agreement, the prepayment daily log, and the metrology state surviving a save."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from emulator.errors import ProfileError
from emulator.meter import Meter, MeterConfig
from emulator.metrology.tariff import PendingChange, Prices, SwitchingTable, Tariff
from emulator.profile import Profile
from emulator.state_codecs import decode_meter_registers, encode_meter_registers
from protocol.apdu import DeviceType

EUI = bytes.fromhex("00DB1234567890A1")
DAY = 86_400
HOUR = 3_600
HH = 1_800
T0 = 1_767_225_600  # 2026-01-01T00:00Z, a Thursday
E7: dict[str, Any] = {
    "tariff_prices_millipence_per_kwh": [[15_000], [32_000]],
    "tariff_day_profiles": [[[0, 0], [7 * HOUR, 1], [23 * HOUR, 0]]],
    "standing_charge_millipence_per_day": 53_123,
    "load_shape_w": [300 + 25 * i for i in range(48)],
    "load_seed": 11,
    "load_spread_percent": 30,
}


def meter_with(table: dict[str, Any], device_type: DeviceType = DeviceType.ELECTRICITY_METER,
               start_seconds: int = T0) -> Meter:
    return Meter(MeterConfig.from_mapping(table, eui64=EUI, device_type=device_type),
                 start_seconds)


def test_forty_days_on_economy_7_registers_logs_and_money_agree() -> None:
    meter = meter_with(E7)
    for day in range(40):  # uneven steps, as a world's events would make them
        meter.advance_to(T0 + day * DAY + 7 * HOUR + 13)
        meter.advance_to(T0 + (day + 1) * DAY - 77)
    meter.advance_to(T0 + 40 * DAY)
    metrology = meter.metrology
    tou_ws = metrology.registers.tou_ws()
    exact_pence = (Fraction(tou_ws[0] * 15_000 + tou_ws[1] * 32_000, 3_600_000 * 1_000)
                   + Fraction(40 * 53_123, 1_000))
    assert meter.registers.consumption_debited_pence == int(exact_pence)
    assert meter.registers.meter_balance_pence == -int(exact_pence)
    assert sum(tou_ws.values()) == meter.registers.energy_imported_ws
    profile = metrology.half_hour_profile(0, 10**9)
    assert len(profile) == 40 * 48
    assert sum(value for _, value in profile) == meter.registers.energy_imported_ws // 3_600
    log = metrology.daily_read_log()
    assert len(log) == 31
    assert log[-1][1] == meter.registers.energy_imported_ws // 3_600
    assert log[-1][2] == {0: tou_ws[0] // 3_600, 4: tou_ws[1] // 3_600}
    daily = dict(metrology.daily_consumption(0, 10**6))
    assert daily[T0 + 39 * DAY] == log[-1][1] - log[-2][1]


def test_the_flat_tariff_and_constant_load_of_a_plain_profile_cost_as_before() -> None:
    meter = meter_with({"load_w": 1_000, "unit_rate_millipence_per_kwh": 36_000,
                        "standing_charge_millipence_per_day": 0})
    meter.advance_to(T0 + 1_050)
    assert meter.registers.meter_balance_pence == -10  # 1 p per 100 s
    assert meter.next_event_time_seconds() is None
    assert meter.metrology.total_register() == 291  # 1_050_000 Ws


def test_prepayment_daily_log_holds_the_balance_at_each_midnight() -> None:
    meter = meter_with({"payment_mode": "prepayment", "meter_balance_pence": 50_000,
                        "load_w": 1_000, "unit_rate_millipence_per_kwh": 10_000,
                        "standing_charge_millipence_per_day": 20_000,
                        "time_debt_1_pence": 1_000, "time_debt_1_recovery_rate_pence": 7},
                       start_seconds=T0 + 12 * HOUR)
    meter.advance_to(T0 + 35 * DAY + 5)
    entries = meter.registers.prepayment_daily_log.entries()
    assert len(entries) == 31
    first_midnight, first = entries[0]
    assert first_midnight == T0 + 5 * DAY
    # half a day then 4 whole days at 24 kWh x 10 p + 20 p, and 5 debt recoveries of 7 p
    assert first["meter_balance_pence"] == 50_000 - 130 - 4 * 260 - 5 * 7
    assert first["time_debt_1_pence"] == 1_000 - 5 * 7
    assert first["accumulated_debt_pence"] == 1_000 - 5 * 7
    assert entries[1][1]["meter_balance_pence"] == first["meter_balance_pence"] - 260 - 7


def test_gas_meter_registers_volume_in_dm3() -> None:
    meter = meter_with({"load_w": 11_220, "unit_rate_millipence_per_kwh": 0},
                       DeviceType.GAS_METER)
    meter.advance_to(T0 + HOUR)  # 11.22 kWh is 0.99993.. m3 at 39.5 MJ/m3 and 1.02264
    assert meter.metrology.total_register() == 999


def test_metrology_state_survives_a_save_and_restore_mid_run() -> None:
    straight = meter_with(E7)
    saved = meter_with(E7)
    for meter in (straight, saved):
        meter.advance_to(T0 + DAY + 4_321)
        meter.set_load_profile(((0, 700),))
    restored = Meter.restore(saved.config,
                             decode_meter_registers(encode_meter_registers(saved.registers)))
    restored.advance_to(T0 + 3 * DAY + 100)
    straight.advance_to(T0 + 3 * DAY + 100)
    assert restored.registers == straight.registers
    assert restored.metrology.half_hour_profile(0, 10**9) == (
        straight.metrology.half_hour_profile(0, 10**9))
    assert decode_meter_registers(encode_meter_registers(restored.registers)) == (
        restored.registers)


def test_an_unused_meter_saves_no_metrology_keys() -> None:
    state = encode_meter_registers(meter_with({}).registers)
    assert "energy" not in state and "half_hour_deviations" not in state
    assert "load_history" not in state and "max_demand" not in state


@pytest.mark.parametrize(("table", "message"), [
    ({"tariff_prices_millipence_per_kwh": [[1], [2]],
      "tariff_day_profiles": [[[0, 0], [60, 2]]]}, "tariff: the switching table uses band 2"),
    ({"tariff_block_thresholds_wh": [[5]]}, "tariff: band 0: a block tariff has one"),
    ({"tariff_week": [0, 0]}, "tariff: a week profile names exactly 7"),
    ({"load_shape_w": [1, 2]}, "load_shape_w: a daily shape has 48"),
    ({"load_seed": 5}, "load_seed needs load_shape_w"),
    ({"load_w": 5, "load_shape_w": [1] * 48}, "give one of load_w"),
    ({"tariff_day_profiles": [[[0]]]}, r"tariff_day_profiles entry \[0\]"),
    ({"tariff_prices_millipence_per_kwh": [["a"]]}, "must hold whole numbers"),
])
def test_bad_metrology_profile_keys_are_refused_naming_them(table: dict[str, Any],
                                                            message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        MeterConfig.from_mapping(table, eui64=EUI, device_type=DeviceType.ELECTRICITY_METER)


PROFILE_WITH_CSV = """
[world]
start_device_time = "2026-01-05T09:00:00Z"

[[devices]]
type = "comms_hub"
eui64 = "00-DB-12-34-56-78-90-A0"
server_address = 2
manufacturer = "Secure Meters"
model = "M"
firmware_version = "1.0.0"

[[devices]]
type = "esme"
eui64 = "00-DB-12-34-56-78-90-A1"
server_address = 16
manufacturer = "Secure Meters"
model = "M"
firmware_version = "1.0.0"
hub = "00-DB-12-34-56-78-90-A0"

[devices.meter]
load_csv = "loads/home.csv"

[[devices]]
type = "gsme"
eui64 = "00-DB-12-34-56-78-90-A2"
server_address = 17
manufacturer = "Secure Meters"
model = "M"
firmware_version = "1.0.0"
hub = "00-DB-12-34-56-78-90-A0"

[devices.meter]
load_csv = "loads/home.csv"
"""


def test_a_profile_replays_a_csv_found_next_to_it_read_once_for_all_meters(
        tmp_path: Path) -> None:
    (tmp_path / "loads").mkdir()
    (tmp_path / "loads" / "home.csv").write_text(
        "start,energy_wh\n2026-01-05T09:00:00Z,150\n2026-01-05T09:30:00Z,0\n",
        encoding="utf-8")
    (tmp_path / "profile.toml").write_text(PROFILE_WITH_CSV, encoding="utf-8")
    profile = Profile.load(tmp_path / "profile.toml")
    esme, gsme = (device.meter_config for device in profile.meters)
    assert esme.load_replay is gsme.load_replay  # one model shared
    meter = Meter(esme, profile.start_device_time_seconds)
    meter.advance_to(profile.start_device_time_seconds + 4 * HH)
    assert [value for _, value in meter.metrology.half_hour_profile(0, 10**9)] == [
        150, 0, 150, 0]


def test_a_bad_replay_csv_is_refused_naming_the_device_and_the_line(tmp_path: Path) -> None:
    (tmp_path / "loads").mkdir()
    (tmp_path / "loads" / "home.csv").write_text("start,energy_wh\nsoon,1\n", encoding="utf-8")
    (tmp_path / "profile.toml").write_text(PROFILE_WITH_CSV, encoding="utf-8")
    with pytest.raises(ProfileError, match=r"device 2 .*load_csv: .*home\.csv:2: start 'soon'"):
        Profile.load(tmp_path / "profile.toml")


def test_load_csv_needs_a_profile_file() -> None:
    with pytest.raises(ProfileError, match="load_csv needs a profile file"):
        MeterConfig.from_mapping({"load_csv": "x.csv"}, eui64=EUI,
                                 device_type=DeviceType.ELECTRICITY_METER)


def test_a_future_price_change_takes_effect_at_its_time_and_survives_a_save() -> None:
    table = {"load_w": 1_000, "unit_rate_millipence_per_kwh": 10_000,
             "standing_charge_millipence_per_day": 0}
    straight = meter_with(table)
    saved = meter_with(table)
    change = PendingChange(T0 + 10 * HOUR, prices=Prices.flat(30_000, 24_000))
    for meter in (straight, saved):
        meter.schedule_tariff_change(change, T0 + HOUR)
    saved.advance_to(T0 + 5 * HOUR)
    restored = Meter.restore(saved.config,
                             decode_meter_registers(encode_meter_registers(saved.registers)))
    for meter in (straight, restored):
        meter.advance_to(T0 + 12 * HOUR)
    # 10 h at 10 p/kWh, then 2 h at 30 p/kWh and 24 p/day (2 p for 2 h)
    assert straight.registers.consumption_debited_pence == 100 + 60 + 2
    assert restored.registers == straight.registers
    assert straight.registers.tariff_changes == ()
    assert straight.registers.tariff_in_force == Tariff(Prices.flat(30_000, 24_000))


def test_a_new_tariff_from_now_switches_to_tou_bands() -> None:
    meter = meter_with({"load_w": 1_000, "standing_charge_millipence_per_day": 0})
    e7 = Tariff(Prices(((10_000,), (20_000,)), 0), SwitchingTable(
        (((0, 0), (7 * HOUR, 1)),), (0,) * 7))
    meter.schedule_tariff_change(PendingChange(T0, tariff=e7), T0)
    meter.advance_to(T0 + 8 * HOUR)
    assert meter.metrology.tou_registers() == {0: 7_000, 1: 1_000}
    assert meter.registers.consumption_debited_pence == 70 + 20
