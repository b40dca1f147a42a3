"""protocol.s1sp.builders: every supported SR has a builder whose document parses back, through
the adapter's own parser, to the values given (pence x 1000, seconds, date-times), with the
header the SR's record calls for; money and time round-trip for any value (hypothesis); a
built request drives the emulated meter end to end; misuse is refused before anything is
built."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.apdu import DebtRecoveryPeriod, DebtRegister, PaymentMode
from protocol.s1sp.builders import (
    CANCEL_FUTURE_DATED,
    DuisMoney,
    DuisRequestBuilder,
    PaymentDebtChange,
    TimeDebtChange,
)
from protocol.s1sp.duis import DuisRequest, RequestId, parse_duis_request
from protocol.s1sp.duis_xml import EmptyBody, Execution
from protocol.s1sp.errors import InvalidRequestError
from protocol.s1sp.responses import DuisResponse
from protocol.s1sp.service_requests import SERVICE_REQUESTS
from protocol.s1sp.service_requests.clock import ClockSynchronisation
from protocol.s1sp.service_requests.firmware import FirmwareActivation, FirmwareUpdate
from protocol.s1sp.service_requests.han import HanDeviceLogUpdate
from protocol.s1sp.service_requests.load_limiting import LoadLimitSettingsUpdate
from protocol.s1sp.service_requests.metering import LogPeriodRead, PriceUpdate, TariffUpdate
from protocol.s1sp.service_requests.prepayment import (
    PREPAY_CONFIGURATION_ELEMENTS,
    DebtRecovery,
    DebtRegisterUpdate,
    DebtUpdate,
    MeterBalanceUpdate,
    PaymentModeUpdate,
    PrepayConfigurationUpdate,
    TopUp,
)
from tests.protocol.s1sp.conftest import Rig

ESME = "00-DB-12-34-56-78-90-A1"
GSME = "00-DB-12-34-56-78-90-A2"
HUB = "00-DB-12-34-56-78-90-A0"
ESME_BYTES = bytes.fromhex("00DB1234567890A1")
ORIGINATOR = "90-B3-D5-1F-30-01-00-00"
DCC = "90-B3-D5-1F-30-00-00-02"
UTC = timezone.utc

Build = Callable[[DuisRequestBuilder], str]

# variant -> (build, expected target, expected CommandVariant, expected typed body)
CASES: dict[str, tuple[Build, str, int, object]] = {
    "1.5": (lambda b: b.update_meter_balance(ESME, adjust_pence=-250), ESME, 4,
            MeterBalanceUpdate(adjust_meter_balance=-250_000)),
    "1.6": (lambda b: b.update_payment_mode(
        ESME_BYTES, PaymentMode.PREPAYMENT, disablement_threshold_pence=556,
        suspend_debt_disabled=True, execute_at=datetime(2030, 1, 15, 9, tzinfo=UTC)),
        ESME, 4, PaymentModeUpdate(True, disablement_threshold=556_000,
                                   suspend_debt_disabled=True, suspend_debt_emergency=False,
                                   execution=Execution("2030-01-15T09:00:00Z", 1_894_698_000))),
    "2.1": (lambda b: b.update_prepay_configuration(
        GSME, fuel="gas", low_credit_threshold_pence=100, disablement_threshold_pence=0,
        emergency_credit_limit_pence=DuisMoney(500_999)), GSME, 4,
        PrepayConfigurationUpdate((("EmergencyCreditLimit", 500_999),
                                   ("LowCreditThreshold", 100_000),
                                   ("DisablementThreshold", 0)))),
    "2.2": (lambda b: b.top_up_device(ESME, "07043672717788334890"), ESME, 1,
            TopUp("07043672717788334890")),
    "2.3": (lambda b: b.update_debt(
        ESME, time_debt_register_1=TimeDebtChange(35, DebtRecoveryPeriod.HOURLY,
                                                  adjust_pence=5000),
        payment_debt_register=PaymentDebtChange(12, adjust_pence=-250)), ESME, 4,
        DebtUpdate((DebtRegisterUpdate(DebtRegister.TIME_DEBT_1, 5_000_000,
                                       recovery=DebtRecovery(35, -2, DebtRecoveryPeriod.HOURLY)),
                    DebtRegisterUpdate(DebtRegister.PAYMENT_DEBT, -250_000,
                                       debt_recovery_per_payment=1200)))),
    "2.5": (lambda b: b.activate_emergency_credit(ESME), ESME, 4, EmptyBody()),
    "4.3": (lambda b: b.read_instantaneous_prepay_values(ESME), ESME, 1, EmptyBody()),
    "4.13": (lambda b: b.read_prepayment_configuration(ESME), ESME, 1, EmptyBody()),
    "4.15": (lambda b: b.read_load_limit_data(ESME), ESME, 1, EmptyBody()),
    "4.18": (lambda b: b.read_meter_balance(ESME), ESME, 1, EmptyBody()),
    "6.4.1": (lambda b: b.update_load_limiting_general_settings(
        ESME, power_threshold_w=5000, period_seconds=timedelta(minutes=5),
        restoration_period_seconds=600), ESME, 4, LoadLimitSettingsUpdate(5000, 300, 600)),
    "6.4.2": (lambda b: b.reset_load_limiting_counter(ESME), ESME, 1, EmptyBody()),
    "6.11": (lambda b: b.synchronise_clock(
        ESME, current_date_time=datetime(2026, 1, 5, 9, tzinfo=UTC)), ESME, 4,
        ClockSynchronisation("2026-01-05T09:00:00Z", 1_767_603_600, 60)),
    "7.1": (lambda b: b.enable_supply(ESME), ESME, 4, EmptyBody()),
    "7.2": (lambda b: b.disable_supply(ESME), ESME, 4, EmptyBody()),
    "7.3": (lambda b: b.arm_supply(ESME), ESME, 4, EmptyBody()),
    "7.4": (lambda b: b.read_supply_status(ESME), ESME, 1, EmptyBody()),
    "8.11": (lambda b: b.update_han_device_log(HUB, "00:db:12:34:56:78:90:ee",
                                               join_time_period_seconds=90), HUB, 1,
             HanDeviceLogUpdate(bytes.fromhex("00DB1234567890EE"), add=True,
                                join_time_period_seconds=90)),
    "11.1": (lambda b: b.update_firmware([ESME, GSME], b"\x00image", firmware_version="1.1.0"),
             DCC, 8, FirmwareUpdate(b"\x00image", "1.1.0",
                                    (ESME_BYTES, bytes.fromhex("00DB1234567890A2")))),
    "11.2": (lambda b: b.read_firmware_version(ESME), ESME, 1, EmptyBody()),
    "1.1.1": (lambda b: b.update_import_tariff(
        ESME, day_profiles=[[(0, 1), (25_200, 2), (82_800, 1)], [(0, 1)]],
        week=[0, 0, 0, 0, 0, 1, 1], prices_millipence_per_kwh=[[15_000], [40_000]],
        standing_charge_millipence_per_day=53_000,
        execute_at=datetime(2030, 1, 15, 9, tzinfo=UTC)), ESME, 4,
        TariffUpdate(((((0, 1), (25_200, 2), (82_800, 1)), ((0, 1),))),
                     (0, 0, 0, 0, 0, 1, 1), False, ((),) * 8,
                     PriceUpdate(53_000, (15_000, 40_000)),
                     execution=Execution("2030-01-15T09:00:00Z", 1_894_698_000))),
    "1.2.1": (lambda b: b.update_price(ESME, prices_millipence_per_kwh=[[10_000, 20_000]],
                                       standing_charge_millipence_per_day=41_000), ESME, 4,
              PriceUpdate(41_000, block_prices_millipence_per_kwh=((10_000, 20_000),))),
    "4.11.1": (lambda b: b.read_tariff(GSME), GSME, 1, EmptyBody()),
    "4.16": (lambda b: b.read_active_power_import(ESME), ESME, 1, EmptyBody()),
    "4.10": (lambda b: b.read_network_data(
        ESME, start=datetime(2026, 1, 5, 9, tzinfo=UTC), end=datetime(2026, 1, 5, 11, tzinfo=UTC)),
        ESME, 1, LogPeriodRead(1_767_603_600, 1_767_610_800)),
    "4.17": (lambda b: b.retrieve_daily_consumption_log(
        ESME, start=datetime(2026, 1, 5, tzinfo=UTC), end=datetime(2026, 2, 5, tzinfo=UTC)),
        ESME, 1, LogPeriodRead(1_767_571_200, 1_770_249_600)),
    "4.1.1": (lambda b: b.read_instantaneous_import_registers(GSME), GSME, 1, EmptyBody()),
    "4.1.2": (lambda b: b.read_instantaneous_import_tou_matrices(ESME), ESME, 1, EmptyBody()),
    "4.1.4": (lambda b: b.read_instantaneous_import_block_counters(GSME), GSME, 1,
              EmptyBody()),
    "4.6.1": (lambda b: b.retrieve_import_daily_read_log(
        ESME, start=datetime(2026, 1, 5, tzinfo=UTC), end=datetime(2026, 2, 5, tzinfo=UTC)),
        ESME, 1, LogPeriodRead(1_767_571_200, 1_770_249_600)),
    "4.8.1": (lambda b: b.read_active_import_profile_data(
        ESME, start=datetime(2026, 1, 5, tzinfo=UTC), end=datetime(2026, 1, 6, tzinfo=UTC)),
        ESME, 1, LogPeriodRead(1_767_571_200, 1_767_657_600)),
    "4.12.1": (lambda b: b.read_maximum_demand_import_registers(ESME), ESME, 1, EmptyBody()),
    "4.14": (lambda b: b.read_prepayment_daily_read_log(
        GSME, start=datetime(2026, 1, 5, tzinfo=UTC), end=datetime(2026, 2, 5, tzinfo=UTC)),
        GSME, 1, LogPeriodRead(1_767_571_200, 1_770_249_600)),
    "11.3": (lambda b: b.activate_firmware(ESME, firmware_hash=b"\xab\xcd" * 16,
                                           execute_at=CANCEL_FUTURE_DATED), ESME, 4,
             FirmwareActivation(b"\xab\xcd" * 16, execution=Execution("3000-12-31T00:00:00Z",
                                                                      None, cancel=True))),
}


def test_every_supported_sr_has_a_builder_case() -> None:
    assert set(CASES) == set(SERVICE_REQUESTS)


@pytest.mark.parametrize("variant", list(CASES))
def test_each_builder_parses_back_to_the_values_given(variant: str) -> None:
    build, target, command_variant, body = CASES[variant]
    request = parse_duis_request(build(DuisRequestBuilder(counter_start=7)))
    assert request == DuisRequest(
        RequestId(bytes.fromhex(ORIGINATOR.replace("-", "")),
                  bytes.fromhex(target.replace("-", "")), 7),
        command_variant, variant.rsplit(".", 1)[0] if variant.count(".") == 2 else variant,
        variant, body)


def test_each_method_shows_the_parameters_it_takes_and_its_sr() -> None:
    def parameters(method: Callable[..., str]) -> list[str]:
        return list(inspect.signature(method).parameters)

    assert parameters(DuisRequestBuilder.update_meter_balance) == [
        "self", "target", "adjust_pence", "reset"]
    assert parameters(DuisRequestBuilder.activate_firmware) == [
        "self", "target", "firmware_hash", "execute_at"]
    assert parameters(DuisRequestBuilder.update_firmware) == [  # to the DCC: no target
        "self", "device_ids", "image", "firmware_version"]
    assert parameters(DuisRequestBuilder.read_meter_balance) == ["self", "target"]
    assert DuisRequestBuilder.read_meter_balance.__doc__ == "SR 4.18 Read Meter Balance."
    assert DuisRequestBuilder.top_up_device.__doc__.startswith(
        "SR 2.2 Top Up Device. The 20-digit UTRN")


def test_the_counter_counts_up_from_its_start_and_the_originator_is_the_builders() -> None:
    builder = DuisRequestBuilder("00:11:22:33:44:55:66:77", counter_start=41)
    ids = [parse_duis_request(builder.read_meter_balance(ESME)).request_id for _ in range(3)]
    assert [str(request_id) for request_id in ids] == [
        f"00-11-22-33-44-55-66-77:{ESME}:41", f"00-11-22-33-44-55-66-77:{ESME}:42",
        f"00-11-22-33-44-55-66-77:{ESME}:43"]
    assert builder.next_counter == 44


def test_credit_mode_and_reset_and_han_removal_build_their_other_forms() -> None:
    builder = DuisRequestBuilder()
    assert parse_duis_request(builder.update_payment_mode(ESME, PaymentMode.CREDIT)).body == \
        PaymentModeUpdate(False)
    assert parse_duis_request(builder.update_meter_balance(ESME, reset=True)).body == \
        MeterBalanceUpdate(None, reset_meter_balance=True)
    assert parse_duis_request(builder.update_han_device_log(HUB, GSME, remove=True)).body == \
        HanDeviceLogUpdate(bytes.fromhex("00DB1234567890A2"), add=False)


def test_every_prepay_configuration_threshold_can_be_set() -> None:
    xml = DuisRequestBuilder().update_prepay_configuration(
        ESME, debt_recovery_rate_cap_pence=1, emergency_credit_limit_pence=2,
        emergency_credit_threshold_pence=3, low_credit_threshold_pence=4,
        max_meter_balance_pence=5, max_credit_threshold_pence=6, disablement_threshold_pence=7)
    assert dict(parse_duis_request(xml).body.values) == {
        "DebtRecoveryRateCap": 1000, "EmergencyCreditLimit": 2000,
        "EmergencyCreditThreshold": 3000, "LowCreditThreshold": 4000, "MaxMeterBalance": 5000,
        "MaxCreditThreshold": 6000, "DisablementThreshold": 7000}
    assert "<sr:UpdatePrepayConfigElectricity>" in xml
    # a 2.1 element the parser knows but the builder cannot set would show here
    assert {name for name, _ in parse_duis_request(xml).body.values} == \
        set(PREPAY_CONFIGURATION_ELEMENTS)


# --------------------------------------------------------------------------------------------
# Round trips for any value
# --------------------------------------------------------------------------------------------

PENCE_IN_INT32 = st.integers(-(2**31) // 1000 + 1, (2**31 - 1) // 1000)


@given(PENCE_IN_INT32)
def test_any_pence_adjustment_round_trips_through_the_parser(pence: int) -> None:
    body = parse_duis_request(
        DuisRequestBuilder().update_meter_balance(ESME, adjust_pence=pence)).body
    assert body == MeterBalanceUpdate(adjust_meter_balance=pence * 1000)


@given(PENCE_IN_INT32, st.integers(0, 2**31 - 1))
def test_any_threshold_round_trips_in_pence_or_raw_duis_money(pence: int, raw: int) -> None:
    body = parse_duis_request(DuisRequestBuilder().update_prepay_configuration(
        ESME, low_credit_threshold_pence=pence,
        max_credit_threshold_pence=DuisMoney(raw))).body
    assert body.values == (("LowCreditThreshold", pence * 1000), ("MaxCreditThreshold", raw))


@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2106, 2, 5),
                    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)),
                                               timezone(timedelta(hours=-8))])))
def test_any_execution_date_time_round_trips_to_its_device_second(moment: datetime) -> None:
    body = parse_duis_request(DuisRequestBuilder().update_load_limiting_general_settings(
        ESME, power_threshold_w=1, period_seconds=60, restoration_period_seconds=60,
        execute_at=moment)).body
    assert body.execution.execution_time_seconds == (
        moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(seconds=1)
    assert not body.execution.cancel


@given(st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=1)).map(
    lambda d: timedelta(seconds=d // timedelta(seconds=1))))
def test_any_whole_second_duration_round_trips_as_seconds(duration: timedelta) -> None:
    builder = DuisRequestBuilder()
    body = parse_duis_request(builder.update_han_device_log(
        HUB, GSME, join_time_period_seconds=duration)).body
    assert body.join_time_period_seconds == duration.days * 86_400 + duration.seconds
    settings = parse_duis_request(builder.update_load_limiting_general_settings(
        ESME, power_threshold_w=1, period_seconds=duration,
        restoration_period_seconds=duration)).body
    assert settings.load_limit_period_seconds == body.join_time_period_seconds


# --------------------------------------------------------------------------------------------
# Misuse is refused before a document exists
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("build", "error", "words"), [
    (lambda b: b.update_meter_balance(ESME), ValueError, "exactly one"),
    (lambda b: b.update_meter_balance(ESME, adjust_pence=1, reset=True), ValueError,
     "exactly one"),
    (lambda b: b.update_meter_balance(ESME, adjust_pence=2_147_484), InvalidRequestError,
     "int32"),
    (lambda b: b.update_meter_balance(ESME, adjust_pence=1.5), TypeError, "whole pence"),
    (lambda b: b.read_meter_balance("00-DB-12"), ValueError, "target"),
    (lambda b: b.update_payment_mode(ESME, PaymentMode.CREDIT,
                                     execute_at=datetime(2030, 1, 1)), ValueError, "naive"),
    (lambda b: b.update_load_limiting_general_settings(
        ESME, power_threshold_w=1, period_seconds=timedelta(seconds=1.5),
        restoration_period_seconds=1), ValueError, "whole number of seconds"),
    (lambda b: b.update_load_limiting_general_settings(
        ESME, power_threshold_w=1, period_seconds=1, restoration_period_seconds=1,
        execute_at=datetime(2200, 1, 1, tzinfo=UTC)), ValueError, "device clock"),
    (lambda b: b.update_prepay_configuration(ESME), ValueError, "at least one"),
    (lambda b: b.update_debt(ESME), ValueError, "no debt register"),
    (lambda b: b.update_han_device_log(HUB, GSME), ValueError, "not both"),
    (lambda b: b.update_firmware(ESME, b"x"), TypeError, "sequence"),
])
def test_misuse_is_refused_with_a_reason(build: Build, error: type[Exception],
                                         words: str) -> None:
    builder = DuisRequestBuilder(counter_start=5)
    with pytest.raises(error, match=words):
        build(builder)


def test_execute_at_is_refused_for_an_sr_that_is_not_future_datable() -> None:
    builder = DuisRequestBuilder()
    with pytest.raises(ValueError, match="cannot be future-dated"):
        builder._build("4.18", ESME, [], datetime(2030, 1, 1, tzinfo=UTC))


# --------------------------------------------------------------------------------------------
# End to end: built requests drive the emulated meter, responses read typed
# --------------------------------------------------------------------------------------------


def test_a_built_adjustment_and_read_reach_the_meter_and_read_back_in_pence() -> None:
    rig = Rig()
    builder = DuisRequestBuilder()
    before = DuisResponse.from_xml(rig.submit(builder.read_meter_balance(ESME)))
    adjusted = DuisResponse.from_xml(rig.submit(
        builder.update_meter_balance(ESME, adjust_pence=DuisMoney(123_456))))
    assert adjusted.response_code == "I0"
    assert adjusted.pence("AdjustMeterBalance") == 123  # S1SR 18.3: truncated to pence
    assert adjusted.pence("MeterBalance") == before.pence("MeterBalance") + 123
    assert rig.esme.registers.meter_balance_pence == before.pence("MeterBalance") + 123
