"""One emulated Secure prepayment meter (ESME or GSME), sans-I/O.

A :class:`Meter` holds the registers in whole pence, runs consumption, debt recovery, load
limiting and the supply rules as device time is advanced, and answers the meter commands of
:mod:`protocol.apdu`. Requests come in as :class:`protocol.apdu.Request` with their typed body
(decoding has checked it); answers go out as :class:`protocol.apdu.Response` with the typed body
``RESPONSE_BODY_TYPES[command]``. Each command has one handler method taking the typed request
body (the table :data:`_HANDLERS`); a handler returns the response body, or the Status of a
refusal. A bug in a handler raises: it never becomes a status on the wire.

Its configuration is :class:`emulator.meter_config.MeterConfig`; its registers are
:class:`emulator.meter_registers.MeterRegisters` (typed values), turned into the state file's
JSON only by :mod:`emulator.state_codecs` (the meter holds no persistence code).

Rules (decisions marked; constants and transition tables live in :mod:`emulator.meter_tables`):

- Any request that fails changes nothing, except that a refused UTRN counts towards the UTRN
  lockout (that count is the point of the lockout).
- Consumption debits the meter balance down to 0, then the emergency-credit balance, then takes
  the meter balance negative. Energy flows only while the supply is ENABLED; the standing
  charge runs always. Sub-penny cost stays private (:mod:`emulator.consumption`).
- Supply decisions are exact to the second: the meter computes the first whole second at which
  the available credit (meter balance + EC balance) falls below the disablement threshold, so
  advancing time in one step or many gives the same result.
- Top-up (*decided*): allowed in both payment modes. The token value first repays used
  emergency credit, then (prepayment) pays the payment-based debt its percentage of the rest,
  and the remainder is credited: ``credit_added + emergency_credit_repaid + debt_recovered =
  token value``. When used EC is fully repaid, EC ends (any unused EC headroom is withdrawn).
- Debt (*decided*): recovered only in prepayment. Time debt recovers ``rate`` pence at each
  UTC hour or day boundary; payment debt takes ``percentage``% (rounded down) of each top-up
  left after EC repayment. All recovery together is capped per UTC day by the
  debt-recovery-rate cap (a cap of 0 p recovers nothing; S1SR 18.27).
  ``accumulated_debt_pence`` is the sum of the three debt registers (what is still owed).
- Supply switch: a remote enable (SET_SUPPLY_STATE ENABLED) is for the ESME's contactor only;
  a GSME answers NOT_SUPPORTED_BY_DEVICE (its valve is armed remotely and opened at the meter,
  :meth:`Meter.press_button_to_enable`).
- Load limiting (ESME only): periods are aligned to device time (multiples of the period since
  1970). At each period end, if the energy drawn in that period exceeds threshold x period
  (average demand above the threshold) while ENABLED, the switch opens (DISABLED, LOAD_LIMIT),
  the counter counts it, and after the restoration period the switch is ARMED (*decided*): the
  customer presses the button (:meth:`Meter.press_button_to_enable`). Settings reset the period's
  energy; threshold 0 turns load limiting off.
- Prepayment parameters the profile does not set are *never configured*: they read back as 0
  (max meter balance, max credit threshold and debt-recovery cap at the register maximum,
  2147483 p, i.e. no limit) and take the
  request's defaults on a switch to prepayment (S1SR 18.4).
- Register ranges (:mod:`protocol.register_ranges`): every money register stays within what
  DUIS can carry (+-2147483 p); a request that would take one outside is VALUE_OUT_OF_RANGE
  with nothing changed (an accumulated debt above the maximum included), and consumption never
  takes the meter balance below the minimum (*decided*: the register saturates).
- Metering data (issue 11): energy registers, the half-hour profile (at most
  ``MAX_PROFILE_PERIODS_PER_READ`` half-hours an answer), the daily read, daily consumption and
  prepayment logs, the tariff and maximum demand are read from the metrology engine; a log
  range that does not start before it ends is MALFORMED_REQUEST. SET_TARIFF / SET_PRICES take
  effect now (future-dated ones arrive in SCHEDULE_REQUEST); one the engine cannot hold is
  VALUE_OUT_OF_RANGE with nothing changed. Maximum demand and active power are ESME only.
- Stored but not acted on: low-credit and low-EC thresholds (no alerts on this protocol), the
  cut-off grace period, keypad lock timeout and UTRN type.

This module must never read a clock, sleep or do I/O: time comes in as arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Any

from emulator.consumption import SECONDS_PER_DAY, CostAccumulator, LoadProfile
from emulator.errors import (
    StateError,
    UtrnCheckDigitError,
    UtrnError,
    UtrnWrongMeterError,
)
from emulator.meter_config import PARAMETER_MAXIMA, UNCONFIGURED_VALUES, MeterConfig
from emulator.meter_registers import (
    PREPAYMENT_PARAMETERS,
    Debt,
    MeterRegisters,
    PrepaymentParameters,
)
from emulator.meter_tables import (
    LOAD_LIMIT_PERIOD_MAX_SECONDS,
    LOAD_LIMIT_PERIOD_MIN_SECONDS,
    NON_DISABLEMENT_CALENDARS,
    SECONDS_PER_HOUR,
    UTRN_USED_COUNTER_WINDOW,
    NonDisablementCalendar,
    SupplyEvent,
    supply_transition,
)
from emulator.metrology.engine import Metrology, electricity_wh, gas_dm3
from emulator.metrology.load_model import HALF_HOUR_SECONDS
from emulator.metrology.logs import LoadHistory
from emulator.metrology.max_demand import MaxDemandRegisters
from emulator.metrology.profile_keys import load_model_of, tariff_of, voltage_model_of
from emulator.metrology.tariff import MAX_BLOCKS, PendingChange, TariffTimeline
from emulator.metrology.voltage import MEASUREMENT_PERIOD_SECONDS, VOLTAGE_LOG_DEPTH_PERIODS
from emulator.tariff_bodies import prices_body, prices_of_body, tariff_body, tariff_of_body
from emulator.utrn import parse_utrn
from protocol.apdu import (
    MAX_PROFILE_PERIODS_PER_READ,
    AdjustMeterBalanceRequest,
    AdjustMeterBalanceResponse,
    ApduBody,
    Balances,
    Command,
    DailyConsumptionEntry,
    DailyReadEntry,
    DebtRecoveryPeriod,
    DebtRegister,
    DebtState,
    DeviceType,
    Empty,
    EnergyRegisters,
    IndexedRegister,
    InstantaneousPrepayValues,
    LoadLimitData,
    LogRange,
    MaxDemand,
    PaymentMode,
    PrepaymentConfiguration,
    PrepaymentConfigurationField,
    PrepaymentDailyEntry,
    ReadActivePowerResponse,
    ReadDailyConsumptionLogResponse,
    ReadDailyReadLogResponse,
    ReadMaximumDemandResponse,
    ReadNetworkDataResponse,
    ReadPrepaymentDailyLogResponse,
    ReadProfileDataResponse,
    ReadTariffResponse,
    RegisterCell,
    RegisterUnit,
    Request,
    ResetMeterBalanceResponse,
    Response,
    SetLoadLimitSettingsRequest,
    SetPaymentModeRequest,
    SetPrepaymentConfigurationRequest,
    SetSupplyStateRequest,
    Status,
    SupplyOffReason,
    SupplyState,
    SupplyStatus,
    Tariff,
    TariffPrices,
    TopUpRequest,
    TopUpResponse,
    UpdateDebtRequest,
)
from protocol.register_ranges import (
    DEBT_REGISTER_RANGE_PENCE,
    METER_BALANCE_RANGE_PENCE,
    MONEY_REGISTER_MAX_PENCE,
    MONEY_REGISTER_MIN_PENCE,
    SIGNED_THRESHOLD_RANGE_PENCE,
    THRESHOLD_RANGE_PENCE,
    in_range,
)

#: MeterConfig is re-exported: a meter is built from one, and callers import both from here.
__all__ = ["METER_COMMANDS", "Meter", "MeterConfig"]

#: SET_PREPAYMENT_CONFIGURATION bit -> register name.
_CONFIGURATION_FIELDS: dict[PrepaymentConfigurationField, str] = {
    PrepaymentConfigurationField.DEBT_RECOVERY_RATE_CAP: "debt_recovery_rate_cap_pence",
    PrepaymentConfigurationField.EMERGENCY_CREDIT_LIMIT: "emergency_credit_limit_pence",
    PrepaymentConfigurationField.EMERGENCY_CREDIT_THRESHOLD: "emergency_credit_threshold_pence",
    PrepaymentConfigurationField.LOW_CREDIT_THRESHOLD: "low_credit_threshold_pence",
    PrepaymentConfigurationField.MAX_METER_BALANCE: "max_meter_balance_pence",
    PrepaymentConfigurationField.MAX_CREDIT_THRESHOLD: "max_credit_threshold_pence",
    PrepaymentConfigurationField.DISABLEMENT_THRESHOLD: "disablement_threshold_pence",
}
_DEBT_PERIOD_SECONDS: dict[DebtRecoveryPeriod, int] = {
    DebtRecoveryPeriod.HOURLY: SECONDS_PER_HOUR,
    DebtRecoveryPeriod.DAILY: SECONDS_PER_DAY,
}
_TIME_DEBTS = (DebtRegister.TIME_DEBT_1, DebtRegister.TIME_DEBT_2)
_LOAD_LIMIT_COMMANDS = frozenset({
    Command.READ_LOAD_LIMIT_DATA,
    Command.SET_LOAD_LIMIT_SETTINGS,
    Command.RESET_LOAD_LIMIT_COUNTER,
})

#: Metering reads only an ESME answers (a GSME has no demand registers, power or voltage
#: reading).
_ESME_ONLY_READS = frozenset({Command.READ_MAXIMUM_DEMAND, Command.READ_ACTIVE_POWER,
                              Command.READ_NETWORK_DATA})
#: What only an ESME answers (the two sets above).
_ESME_ONLY_COMMANDS = _LOAD_LIMIT_COMMANDS | _ESME_ONLY_READS

#: A request handler: the meter and the typed request body -> the response body, or the
#: Status of a refusal (which changed nothing but what the module docstring says).
_Handler = Callable[["Meter", Any], "ApduBody | Status"]


class Meter:
    """One ESME or GSME. Feed it requests and device time; read its registers."""

    def __init__(self, config: MeterConfig, device_time_seconds: int) -> None:
        self.config = config
        parameters: dict[str, int] = {}
        configured = []
        for name in PREPAYMENT_PARAMETERS:
            value = getattr(config, name)
            if value is None:
                value = UNCONFIGURED_VALUES.get(name, 0)
            else:
                configured.append(name)
            parameters[name] = value
        if config.disablement_threshold_pence is not None:
            configured.append("disablement_threshold_pence")
        debts = {
            DebtRegister.TIME_DEBT_1: Debt(
                config.time_debt_1_pence, config.time_debt_1_recovery_rate_pence,
                config.time_debt_1_recovery_period),
            DebtRegister.TIME_DEBT_2: Debt(
                config.time_debt_2_pence, config.time_debt_2_recovery_rate_pence,
                config.time_debt_2_recovery_period),
            DebtRegister.PAYMENT_DEBT: Debt(
                config.payment_debt_pence,
                debt_recovery_percentage=config.payment_debt_recovery_percentage),
        }
        self._r = MeterRegisters(
            now_seconds=device_time_seconds,
            payment_mode=PaymentMode(config.payment_mode),
            meter_balance_pence=config.meter_balance_pence,
            supply_state=SupplyState(config.supply_state),
            supply_off_reason=(SupplyOffReason.NONE if config.supply_state == SupplyState.ENABLED
                               else SupplyOffReason.REMOTE),
            disablement_threshold_pence=config.disablement_threshold_pence or 0,
            suspend_debt_disabled=config.suspend_debt_disabled,
            suspend_debt_emergency=config.suspend_debt_emergency,
            prepayment_parameters=PrepaymentParameters(**parameters),
            configured_parameters=configured,
            debts=debts,
            debt_recovery_day=device_time_seconds // SECONDS_PER_DAY,
            load_limit_power_threshold_w=config.load_limit_power_threshold_w,
            load_limit_period_seconds=config.load_limit_period_seconds,
            load_limit_restoration_period_seconds=config.load_limit_restoration_period_seconds,
        )
        self._rebuild_caches()
        self._evaluate_supply()

    @classmethod
    def restore(cls, config: MeterConfig, registers: MeterRegisters) -> Meter:
        """A meter with ``config`` holding ``registers`` as they are (nothing is re-run); the
        state file's registers are decoded by :mod:`emulator.state_codecs`."""
        meter = cls.__new__(cls)
        meter.config = config
        meter._r = registers
        try:
            meter._rebuild_caches()
        except (KeyError, ValueError) as error:
            raise StateError(f"saved meter state is inconsistent: {error}") from None
        return meter

    # -- public API ------------------------------------------------------------------------------

    @property
    def device_time_seconds(self) -> int:
        return self._r.now_seconds

    @property
    def registers(self) -> MeterRegisters:
        """The live registers (read them; change them only through requests)."""
        return self._r

    def handle_request(self, request: Request, device_time_seconds: int) -> Response:
        """Advance to ``device_time_seconds`` and answer one request (its body already checked
        by decoding): the handler of :data:`_HANDLERS` for its command."""
        self.advance_to(device_time_seconds)
        command = request.command
        handler = _HANDLERS.get(command)
        if handler is None or (command in _ESME_ONLY_COMMANDS
                               and not self._is_esme):
            return Response(command, request.invoke_id, Status.NOT_SUPPORTED_BY_DEVICE)
        answer = handler(self, request.body)
        if isinstance(answer, Status):
            return Response(command, request.invoke_id, answer)
        return Response(command, request.invoke_id, Status.SUCCESS, body=answer)

    def advance_to(self, device_time_seconds: int) -> None:
        """Run consumption, debt recovery, load limiting and supply rules up to
        ``device_time_seconds``. An earlier time is ignored: the meter never goes back."""
        r = self._r
        while r.now_seconds < device_time_seconds:
            event = self.next_event_time_seconds()
            step_end = device_time_seconds if event is None else min(event, device_time_seconds)
            self._accrue(r.now_seconds, step_end)
            r.now_seconds = step_end
            self._run_events(step_end)

    def next_event_time_seconds(self) -> int | None:
        """The next device time after now at which something discrete happens (a debt tick,
        a load-limit period end or restoration, credit crossing the disablement threshold, a
        non-disablement boundary, a load-profile change), or None."""
        r = self._r
        now = r.now_seconds
        candidates: list[int] = []
        enabled = r.supply_state == SupplyState.ENABLED
        change = self._metrology.next_change_after(enabled)
        if change is not None:
            candidates.append(change)
        if r.payment_mode == PaymentMode.PREPAYMENT:
            candidates.append((now // SECONDS_PER_DAY + 1) * SECONDS_PER_DAY)  # daily log
            boundary = self._calendar.next_boundary_after(now)
            if boundary is not None:
                candidates.append(boundary)
            crossing = self._credit_crossing_time()
            if crossing is not None:
                candidates.append(crossing)
            for register in _TIME_DEBTS:
                debt = r.debts[register]
                if debt.debt_value_pence > 0 and debt.debt_recovery_rate_pence > 0:
                    period = _DEBT_PERIOD_SECONDS[debt.debt_recovery_period]
                    candidates.append((now // period + 1) * period)
        if self._is_esme and r.load_limit_power_threshold_w > 0:
            period = r.load_limit_period_seconds
            candidates.append((now // period + 1) * period)
        if r.load_limit_restoration_ends_at_seconds > now:
            candidates.append(r.load_limit_restoration_ends_at_seconds)
        return min(candidates) if candidates else None

    def set_load_w(self, load_w: int, device_time_seconds: int | None = None) -> None:
        """Make the simulated load a constant ``load_w`` from now (advancing to
        ``device_time_seconds`` first when given, so the past is costed at the old load)."""
        if device_time_seconds is not None:
            self.advance_to(device_time_seconds)
        self.set_load_profile(((0, load_w),))

    def set_load_profile(self, segments: tuple[tuple[int, int], ...]) -> None:
        """Replace the daily load shape from now: ``(start_second_of_day, load_w)`` pairs.
        Kept in the saved state, so it outlives a restart; the profile's own load returns
        only with a fresh meter."""
        profile = LoadProfile(tuple((int(s), int(w)) for s, w in segments))
        self._r.load_profile_override = profile.segments
        self._metrology.set_load_model(profile)
        self._save_load_history()

    def press_button_to_enable(self, device_time_seconds: int | None = None) -> SupplyState:
        """The customer presses the button: an ARMED supply closes, if credit allows (in
        prepayment, available credit at or above the disablement threshold or a
        non-disablement period). Returns the supply state afterwards; anything but ARMED is
        left as it is."""
        if device_time_seconds is not None:
            self.advance_to(device_time_seconds)
        if self._credit_permits_supply():
            self._apply(SupplyEvent.BUTTON_PRESSED)
        return self._r.supply_state

    # -- time passing ------------------------------------------------------------------------------

    def _rebuild_caches(self) -> None:
        self._is_esme = self.config.device_type == DeviceType.ELECTRICITY_METER
        self._build_metrology()
        self._calendar_id = -1
        self._calendar = NON_DISABLEMENT_CALENDARS[0]
        _ = self._calendar_for_current_id()

    def _calendar_for_current_id(self) -> NonDisablementCalendar:
        calendar_id = self._r.prepayment_parameters.non_disablement_calendar_id
        if calendar_id != self._calendar_id:
            self._calendar = NON_DISABLEMENT_CALENDARS[calendar_id]
            self._calendar_id = calendar_id
        return self._calendar

    def _build_metrology(self) -> None:
        """The metrology engine over the registers' own energy registers and logs (shared
        objects). A meter restored from a state file written before them starts its logs at
        the restore; its earlier energy is in the total only."""
        c = self.config
        r = self._r
        r.energy.total_ws = r.energy_imported_ws
        self._config_load_model = load_model_of(c)
        self._voltage = voltage_model_of(c)
        history = [(start, self._config_load_model if segments is None else
                    LoadProfile(segments)) for start, segments in r.load_history]
        if not history:  # new, or saved before the history was kept
            history = [(r.now_seconds, LoadProfile(r.load_profile_override)
                        if r.load_profile_override else self._config_load_model)]
        timeline = TariffTimeline(r.tariff_in_force or tariff_of(c), r.tariff_changes)
        self._metrology = Metrology(
            r.now_seconds, timeline, LoadHistory(history), r.energy,
            CostAccumulator(r.cost_remainder_units),
            r.max_demand or MaxDemandRegisters.new(r.now_seconds), r.half_hour_deviations,
            r.register_snapshots, r.half_hour_energy_ws, r.half_hour_model_energy_ws,
            history[0][0], electricity_wh if self._is_esme else gas_dm3)

    def _save_load_history(self) -> None:
        self._r.load_history = tuple(
            (start, None if model is self._config_load_model else model.segments)
            for start, model in self._metrology.history.entries)

    def _save_tariffs(self) -> None:
        r = self._r
        timeline = self._metrology.timeline
        if timeline.pending != r.tariff_changes:
            r.tariff_changes = timeline.pending
            r.tariff_in_force = timeline.current

    def schedule_tariff_change(self, change: PendingChange,
                               device_time_seconds: int | None = None) -> None:
        """A new tariff (SR 1.1.1) or new prices (SR 1.2.1) from ``change.effective_seconds``
        (now if that has passed); time up to now is costed at the old tariff."""
        if device_time_seconds is not None:
            self.advance_to(device_time_seconds)
        self._metrology.schedule(change)
        self._r.tariff_changes = self._metrology.timeline.pending
        self._r.tariff_in_force = self._metrology.timeline.current

    @property
    def metrology(self) -> Metrology:
        """The energy registers, logs and maximum demand (read them; time moves only
        through :meth:`advance_to`)."""
        return self._metrology

    def _accrue(self, from_seconds: int, to_seconds: int) -> None:
        r = self._r
        m = self._metrology
        history_length = len(m.history.entries)
        pence = m.accrue(to_seconds, r.supply_state == SupplyState.ENABLED)
        energy_ws = m.registers.total_ws - r.energy_imported_ws
        r.cost_remainder_units = m.accumulator.remainder_units
        r.half_hour_energy_ws = m.half_hour_ws
        r.half_hour_model_energy_ws = m.half_hour_model_ws
        r.max_demand = m.max_demand
        self._save_tariffs()
        if len(m.history.entries) != history_length or not r.load_history:
            self._save_load_history()
        r.consumption_debited_pence += pence
        r.energy_imported_ws += energy_ws
        if r.load_limit_power_threshold_w > 0:
            r.load_limit_period_energy_ws += energy_ws
        self._debit(pence)

    def _debit(self, pence: int) -> None:
        """Take ``pence``: positive meter balance first, then EC, then balance goes negative."""
        r = self._r
        from_balance = min(pence, max(r.meter_balance_pence, 0))
        rest = pence - from_balance
        from_ec = min(rest, r.emergency_credit_balance_pence) if r.emergency_credit_active else 0
        r.emergency_credit_balance_pence -= from_ec
        r.meter_balance_pence = max(r.meter_balance_pence - (from_balance + rest - from_ec),
                                    MONEY_REGISTER_MIN_PENCE)

    def _run_events(self, now: int) -> None:
        r = self._r
        if self._is_esme and r.load_limit_power_threshold_w > 0:
            period = r.load_limit_period_seconds
            if now % period == 0:
                limit_ws = r.load_limit_power_threshold_w * period
                if (r.supply_state == SupplyState.ENABLED
                        and r.load_limit_period_energy_ws > limit_ws):
                    self._apply(SupplyEvent.LOAD_LIMIT_TRIPPED)
                    r.load_limit_counter += 1
                    r.load_limit_restoration_ends_at_seconds = (
                        now + r.load_limit_restoration_period_seconds)
                r.load_limit_period_energy_ws = 0
        if r.load_limit_restoration_ends_at_seconds and (
                now >= r.load_limit_restoration_ends_at_seconds):
            r.load_limit_restoration_ends_at_seconds = 0
            self._apply(SupplyEvent.LOAD_LIMIT_RESTORED)
        if r.payment_mode == PaymentMode.PREPAYMENT:
            for register in _TIME_DEBTS:
                period = _DEBT_PERIOD_SECONDS[r.debts[register].debt_recovery_period]
                if now % period == 0:
                    self._recover_time_debt(register)
            if now % SECONDS_PER_DAY == 0:
                self._record_prepayment_day(now)
        self._evaluate_supply()

    def _record_prepayment_day(self, midnight_seconds: int) -> None:
        """The prepayment daily read log (DUIS 4.14): money registers at midnight, after that
        midnight's debt recovery (*decided*)."""
        r = self._r
        debts = {register: debt.debt_value_pence for register, debt in r.debts.items()}
        r.prepayment_daily_log.record(midnight_seconds, [
            r.meter_balance_pence, r.emergency_credit_balance_pence, sum(debts.values()),
            debts[DebtRegister.PAYMENT_DEBT], debts[DebtRegister.TIME_DEBT_1],
            debts[DebtRegister.TIME_DEBT_2]])

    def _recover_time_debt(self, register: DebtRegister) -> None:
        r = self._r
        debt = r.debts[register]
        if debt.debt_value_pence <= 0 or debt.debt_recovery_rate_pence <= 0:
            return
        if r.suspend_debt_disabled and r.supply_state == SupplyState.DISABLED:
            return
        if r.suspend_debt_emergency and r.emergency_credit_active:
            return
        wanted = min(debt.debt_recovery_rate_pence, debt.debt_value_pence)
        recovered = min(wanted, self._debt_cap_left())
        if recovered <= 0:
            return
        r.debts[register] = replace(debt, debt_value_pence=debt.debt_value_pence - recovered)
        self._count_recovered(recovered)
        self._debit(recovered)

    def _debt_cap_left(self) -> int:
        r = self._r
        day = r.now_seconds // SECONDS_PER_DAY
        recovered_today = r.debt_recovered_today_pence if day == r.debt_recovery_day else 0
        cap = r.prepayment_parameters.debt_recovery_rate_cap_pence
        return max(cap - recovered_today, 0)

    def _count_recovered(self, pence: int) -> None:
        r = self._r
        day = r.now_seconds // SECONDS_PER_DAY
        if day != r.debt_recovery_day:
            r.debt_recovery_day = day
            r.debt_recovered_today_pence = 0
        r.debt_recovered_today_pence += pence
        r.debt_recovered_total_pence += pence

    # -- supply rules ------------------------------------------------------------------------------

    def _available_credit_pence(self) -> int:
        r = self._r
        ec = r.emergency_credit_balance_pence if r.emergency_credit_active else 0
        return r.meter_balance_pence + ec

    def _credit_below_threshold(self) -> bool:
        return self._available_credit_pence() < self._r.disablement_threshold_pence

    def _credit_permits_supply(self) -> bool:
        """In prepayment: credit at or above the disablement threshold, or a non-disablement
        period. Always true in credit mode."""
        if self._r.payment_mode != PaymentMode.PREPAYMENT:
            return True
        return (not self._credit_below_threshold()
                or self._calendar_for_current_id().is_active(self._r.now_seconds))

    def _credit_crossing_time(self) -> int | None:
        """First whole second after now at which available credit drops below the
        disablement threshold at the current rate (prepayment, supply not DISABLED)."""
        r = self._r
        if r.supply_state == SupplyState.DISABLED:
            return None
        if self._calendar_for_current_id().is_active(r.now_seconds):
            return None  # the calendar boundary is an event of its own
        needed_pence = self._available_credit_pence() - r.disablement_threshold_pence + 1
        if needed_pence <= 0:
            return None
        seconds = self._metrology.accumulator.seconds_until_pence(
            needed_pence, self._metrology.units_per_second(r.supply_state == SupplyState.ENABLED))
        if seconds is None:
            return None
        return r.now_seconds + max(seconds, 1)

    def _apply(self, event: SupplyEvent) -> bool:
        r = self._r
        target = supply_transition(r.payment_mode, event, r.supply_state, r.supply_off_reason)
        if target is None:
            return False
        r.supply_state, r.supply_off_reason = target
        return True

    def _evaluate_supply(self) -> None:
        if self._r.payment_mode != PaymentMode.PREPAYMENT:
            return
        if not self._credit_below_threshold():
            self._apply(SupplyEvent.CREDIT_RESTORED)
        elif not self._calendar_for_current_id().is_active(self._r.now_seconds):
            self._apply(SupplyEvent.CREDIT_EXHAUSTED)

    # -- response bodies ---------------------------------------------------------------------------

    def _prepayment_configuration(self) -> PrepaymentConfiguration:
        r = self._r
        return PrepaymentConfiguration(
            payment_mode=r.payment_mode,
            disablement_threshold_pence=r.disablement_threshold_pence,
            suspend_debt_disabled=r.suspend_debt_disabled,
            suspend_debt_emergency=r.suspend_debt_emergency,
            **asdict(r.prepayment_parameters))

    def _balances(self) -> Balances:
        return Balances(meter_balance_pence=self._r.meter_balance_pence,
                        emergency_credit_balance_pence=self._r.emergency_credit_balance_pence)

    def _supply_status(self) -> SupplyStatus:
        return SupplyStatus(supply_state=self._r.supply_state,
                            supply_off_reason=self._r.supply_off_reason)

    def _load_limit_data(self) -> LoadLimitData:
        r = self._r
        return LoadLimitData(
            load_limit_power_threshold_w=r.load_limit_power_threshold_w,
            load_limit_period_seconds=r.load_limit_period_seconds,
            load_limit_restoration_period_seconds=r.load_limit_restoration_period_seconds,
            load_limit_counter=r.load_limit_counter,
            load_limit_active=r.load_limit_restoration_ends_at_seconds > 0)

    def _debt_state(self, register: DebtRegister) -> DebtState:
        return DebtState(debt_register=register, **asdict(self._r.debts[register]))

    def _accumulated_debt_pence(self) -> int:
        return sum(debt.debt_value_pence for debt in self._r.debts.values())

    # -- request handlers (validate everything, then change) ---------------------------------------

    def _read_instantaneous_prepay_values(self, _: Empty) -> InstantaneousPrepayValues:
        r = self._r
        debts = r.debts
        return InstantaneousPrepayValues(
            payment_mode=r.payment_mode,
            meter_balance_pence=r.meter_balance_pence,
            emergency_credit_balance_pence=r.emergency_credit_balance_pence,
            emergency_credit_active=r.emergency_credit_active,
            accumulated_debt_pence=self._accumulated_debt_pence(),
            time_debt_1_pence=debts[DebtRegister.TIME_DEBT_1].debt_value_pence,
            time_debt_2_pence=debts[DebtRegister.TIME_DEBT_2].debt_value_pence,
            payment_debt_pence=debts[DebtRegister.PAYMENT_DEBT].debt_value_pence,
            supply_state=r.supply_state,
            supply_off_reason=r.supply_off_reason)

    def _read_prepayment_configuration(self, _: Empty) -> PrepaymentConfiguration:
        return self._prepayment_configuration()

    def _read_meter_balance(self, _: Empty) -> Balances:
        return self._balances()

    def _read_supply_status(self, _: Empty) -> SupplyStatus:
        return self._supply_status()

    def _read_load_limit_data(self, _: Empty) -> LoadLimitData:
        return self._load_limit_data()

    def _set_payment_mode(self, body: SetPaymentModeRequest) -> PrepaymentConfiguration | Status:
        r = self._r
        if body.payment_mode is PaymentMode.CREDIT:
            if r.payment_mode == PaymentMode.PREPAYMENT:
                self._end_emergency_credit_charging_used()
                r.payment_mode = PaymentMode.CREDIT
                self._apply(SupplyEvent.MODE_TO_CREDIT)
            return self._prepayment_configuration()
        if not in_range(body.disablement_threshold_pence, SIGNED_THRESHOLD_RANGE_PENCE):
            return Status.VALUE_OUT_OF_RANGE
        new_parameters = replace(r.prepayment_parameters, **{
            name: getattr(body.defaults, name) for name in PREPAYMENT_PARAMETERS
            if name not in r.configured_parameters})
        if not self._parameters_valid(new_parameters):
            return Status.VALUE_OUT_OF_RANGE
        if r.payment_mode != PaymentMode.PREPAYMENT:
            r.emergency_credit_active = False
            r.emergency_credit_balance_pence = 0
            r.emergency_credit_granted_pence = 0
        r.prepayment_parameters = new_parameters
        r.configured_parameters = sorted(
            set(r.configured_parameters) | set(PREPAYMENT_PARAMETERS)
            | {"disablement_threshold_pence"})
        r.disablement_threshold_pence = body.disablement_threshold_pence
        r.suspend_debt_disabled = body.suspend_debt_disabled
        r.suspend_debt_emergency = body.suspend_debt_emergency
        r.payment_mode = PaymentMode.PREPAYMENT
        self._evaluate_supply()
        return self._prepayment_configuration()

    @staticmethod
    def _parameters_valid(parameters: PrepaymentParameters) -> bool:
        for name, value in asdict(parameters).items():
            if not in_range(value, (0, PARAMETER_MAXIMA[name]) if name in PARAMETER_MAXIMA
                            else THRESHOLD_RANGE_PENCE):
                return False
        return parameters.non_disablement_calendar_id in NON_DISABLEMENT_CALENDARS

    def _end_emergency_credit_charging_used(self) -> None:
        """EC ends: EC actually used is charged to the meter balance, headroom withdrawn."""
        r = self._r
        if r.emergency_credit_active:
            used = r.emergency_credit_granted_pence - r.emergency_credit_balance_pence
            r.meter_balance_pence -= used
        r.emergency_credit_active = False
        r.emergency_credit_balance_pence = 0
        r.emergency_credit_granted_pence = 0

    def _adjust_meter_balance(self, body: AdjustMeterBalanceRequest
                              ) -> AdjustMeterBalanceResponse | Status:
        r = self._r
        adjustment_pence = body.adjustment_pence
        new_balance = r.meter_balance_pence + adjustment_pence
        if not in_range(new_balance, METER_BALANCE_RANGE_PENCE):
            return Status.VALUE_OUT_OF_RANGE
        if adjustment_pence > 0 and new_balance > r.prepayment_parameters.max_meter_balance_pence:
            return Status.EXCEEDS_MAX_METER_BALANCE
        r.meter_balance_pence = new_balance
        self._evaluate_supply()
        return AdjustMeterBalanceResponse(adjustment_applied_pence=adjustment_pence,
                                          meter_balance_pence=new_balance)

    def _reset_meter_balance(self, _: Empty) -> ResetMeterBalanceResponse:
        self._r.meter_balance_pence = 0
        self._evaluate_supply()
        return ResetMeterBalanceResponse(meter_balance_pence=0)

    def _set_prepayment_configuration(self, body: SetPrepaymentConfigurationRequest
                                      ) -> PrepaymentConfiguration | Status:
        r = self._r
        changed = {name: getattr(body, name) for flag, name in _CONFIGURATION_FIELDS.items()
                   if flag in body.fields_present}
        touched = set(changed)
        new_threshold = changed.pop("disablement_threshold_pence", r.disablement_threshold_pence)
        new_parameters = replace(r.prepayment_parameters, **changed)
        if not self._parameters_valid(new_parameters) or not in_range(
                new_threshold, SIGNED_THRESHOLD_RANGE_PENCE):
            return Status.VALUE_OUT_OF_RANGE
        r.prepayment_parameters = new_parameters
        r.disablement_threshold_pence = new_threshold
        r.configured_parameters = sorted(set(r.configured_parameters) | touched)
        self._evaluate_supply()
        return self._prepayment_configuration()

    def _top_up(self, body: TopUpRequest) -> TopUpResponse | Status:
        r = self._r
        if r.utrn_locked_until_seconds > r.now_seconds:
            return Status.UTRN_ENTRY_LOCKED
        checked = self._check_top_up(body.utrn)
        if isinstance(checked, Status):
            r.utrn_bad_entries_in_a_row += 1
            if r.utrn_bad_entries_in_a_row >= self.config.utrn_lockout_bad_entries:
                r.utrn_bad_entries_in_a_row = 0
                r.utrn_locked_until_seconds = r.now_seconds + self.config.utrn_lockout_seconds
            return checked
        counter, ec_repaid, debt_recovered, credit_added = checked
        r.utrn_bad_entries_in_a_row = 0
        r.utrn_used_counters = sorted({*r.utrn_used_counters, counter})[
            -UTRN_USED_COUNTER_WINDOW:]
        if r.emergency_credit_active:
            r.emergency_credit_balance_pence += ec_repaid
            if r.emergency_credit_balance_pence >= r.emergency_credit_granted_pence:
                self._end_emergency_credit_charging_used()
        if debt_recovered:
            debt = r.debts[DebtRegister.PAYMENT_DEBT]
            r.debts[DebtRegister.PAYMENT_DEBT] = replace(
                debt, debt_value_pence=debt.debt_value_pence - debt_recovered)
            self._count_recovered(debt_recovered)
        r.meter_balance_pence += credit_added
        self._evaluate_supply()
        return TopUpResponse(credit_added_pence=credit_added,
                             emergency_credit_repaid_pence=ec_repaid,
                             debt_recovered_pence=debt_recovered,
                             meter_balance_pence=r.meter_balance_pence)

    def _check_top_up(self, utrn: bytes) -> tuple[int, int, int, int] | Status:
        """(counter, EC repaid, debt recovered, credit added), or the refusal; changes
        nothing."""
        r = self._r
        try:
            parsed = parse_utrn(utrn, self.config.eui64)
        except UtrnCheckDigitError:
            return Status.UTRN_INVALID_CHECK_DIGIT
        except UtrnWrongMeterError:
            return Status.UTRN_WRONG_METER
        except UtrnError:
            return Status.UTRN_MALFORMED
        used = r.utrn_used_counters
        if parsed.counter in used or (len(used) >= UTRN_USED_COUNTER_WINDOW
                                      and parsed.counter <= used[0]):
            return Status.UTRN_DUPLICATE
        value_pence = parsed.value_pence
        if value_pence > r.prepayment_parameters.max_credit_threshold_pence:
            return Status.UTRN_EXCEEDS_MAX_CREDIT
        ec_used = (r.emergency_credit_granted_pence - r.emergency_credit_balance_pence
                   if r.emergency_credit_active else 0)
        ec_repaid = min(value_pence, ec_used)
        rest = value_pence - ec_repaid
        debt_recovered = 0
        if r.payment_mode == PaymentMode.PREPAYMENT:
            payment_debt = r.debts[DebtRegister.PAYMENT_DEBT]
            share = rest * payment_debt.debt_recovery_percentage // 100
            debt_recovered = max(min(share, payment_debt.debt_value_pence,
                                     self._debt_cap_left()), 0)
        credit_added = rest - debt_recovered
        new_balance = r.meter_balance_pence + credit_added
        if credit_added > 0 and new_balance > r.prepayment_parameters.max_meter_balance_pence:
            return Status.UTRN_EXCEEDS_MAX_METER_BALANCE
        return parsed.counter, ec_repaid, debt_recovered, credit_added

    def _update_debt(self, body: UpdateDebtRequest) -> DebtState | Status:
        register = body.debt_register
        debt = self._r.debts[register]
        new_value = debt.debt_value_pence + body.debt_adjustment_pence
        accumulated = self._accumulated_debt_pence() - debt.debt_value_pence + new_value
        if (not in_range(new_value, DEBT_REGISTER_RANGE_PENCE)
                or accumulated > MONEY_REGISTER_MAX_PENCE
                or not in_range(body.debt_recovery_rate_pence, DEBT_REGISTER_RANGE_PENCE)
                or not 0 <= body.debt_recovery_percentage <= 100):
            return Status.VALUE_OUT_OF_RANGE
        if register is DebtRegister.PAYMENT_DEBT:
            debt = replace(debt, debt_value_pence=new_value,
                           debt_recovery_percentage=body.debt_recovery_percentage)
        else:
            debt = replace(debt, debt_value_pence=new_value,
                           debt_recovery_rate_pence=body.debt_recovery_rate_pence,
                           debt_recovery_period=body.debt_recovery_period)
        self._r.debts[register] = debt
        return self._debt_state(register)

    def _activate_emergency_credit(self, _: Empty) -> Balances | Status:
        r = self._r
        if r.payment_mode != PaymentMode.PREPAYMENT:
            return Status.NOT_PERMITTED_IN_PAYMENT_MODE
        limit_pence = r.prepayment_parameters.emergency_credit_limit_pence
        if r.emergency_credit_active:
            return Status.NOT_PERMITTED_IN_STATE
        if limit_pence == 0 or (r.meter_balance_pence
                                >= r.prepayment_parameters.emergency_credit_threshold_pence):
            return Status.EMERGENCY_CREDIT_UNAVAILABLE
        r.emergency_credit_active = True
        r.emergency_credit_balance_pence = limit_pence
        r.emergency_credit_granted_pence = limit_pence
        self._evaluate_supply()
        return self._balances()

    def _set_load_limit_settings(self, body: SetLoadLimitSettingsRequest
                                 ) -> LoadLimitData | Status:
        r = self._r
        if not 0 <= body.load_limit_power_threshold_w <= (
                self.config.max_load_limit_power_threshold_w):
            return Status.VALUE_OUT_OF_RANGE
        for seconds in (body.load_limit_period_seconds,
                        body.load_limit_restoration_period_seconds):
            if not LOAD_LIMIT_PERIOD_MIN_SECONDS <= seconds <= LOAD_LIMIT_PERIOD_MAX_SECONDS:
                return Status.VALUE_OUT_OF_RANGE
        r.load_limit_power_threshold_w = body.load_limit_power_threshold_w
        r.load_limit_period_seconds = body.load_limit_period_seconds
        r.load_limit_restoration_period_seconds = body.load_limit_restoration_period_seconds
        r.load_limit_period_energy_ws = 0
        return self._load_limit_data()

    def _reset_load_limit_counter(self, _: Empty) -> LoadLimitData:
        self._r.load_limit_counter = 0
        return self._load_limit_data()

    # -- metering data (registers, logs, tariff, maximum demand) ----------------------------

    @property
    def _register_unit(self) -> RegisterUnit:
        return RegisterUnit.WATT_HOURS if self._is_esme else RegisterUnit.CUBIC_DECIMETRES

    def _read_energy_registers(self, _: Empty) -> EnergyRegisters:
        """The total, every TOU band of the tariff in force or ever counted, and (block
        tariffs, or blocks ever counted) every block; indexes from 1."""
        m = self._metrology
        tariff = m.timeline.current
        tou = m.tou_registers()
        blocks = m.block_registers()
        bands = range(max(tariff.band_count, max(tou, default=-1) + 1))
        tariff_blocks = (max(map(len, tariff.prices.block_prices_millipence_per_kwh))
                         if tariff.has_blocks else 0)
        block_count = max([tariff_blocks, *(block + 1 for block, value in blocks.items()
                                            if block > 0 and value > 0)])
        return EnergyRegisters(
            register_unit=self._register_unit,
            total_register=m.total_register(),
            tou_registers=tuple(IndexedRegister(band + 1, tou.get(band, 0)) for band in bands),
            block_registers=tuple(IndexedRegister(block + 1, blocks.get(block, 0))
                                  for block in range(block_count)),
        )

    def _read_profile_data(self, body: LogRange) -> ReadProfileDataResponse | Status:
        """The half-hours starting in ``[start, end)``, at most
        MAX_PROFILE_PERIODS_PER_READ of them from the first kept one: register units consumed
        in each (differences of the total register, so they add up to it)."""
        if body.start_seconds >= body.end_seconds:
            return Status.MALFORMED_REQUEST
        first = -(-body.start_seconds // HALF_HOUR_SECONDS)
        last = -(-body.end_seconds // HALF_HOUR_SECONDS)
        profile = self._metrology.half_hour_profile(first, last)[:MAX_PROFILE_PERIODS_PER_READ]
        return ReadProfileDataResponse(
            register_unit=self._register_unit,
            first_period_start_seconds=profile[0][0] if profile else 0,
            period_seconds=HALF_HOUR_SECONDS,
            values=tuple(value for _, value in profile),
        )

    def _read_daily_read_log(self, body: LogRange) -> ReadDailyReadLogResponse | Status:
        if body.start_seconds >= body.end_seconds:
            return Status.MALFORMED_REQUEST
        return ReadDailyReadLogResponse(register_unit=self._register_unit, entries=tuple(
            DailyReadEntry(midnight, total, tuple(
                RegisterCell(band=cell // MAX_BLOCKS + 1, block=cell % MAX_BLOCKS + 1,
                             register_value=value) for cell, value in sorted(cells.items())))
            for midnight, total, cells in self._metrology.daily_read_log()
            if body.start_seconds <= midnight < body.end_seconds))

    def _read_prepayment_daily_log(self, body: LogRange
                                   ) -> ReadPrepaymentDailyLogResponse | Status:
        if body.start_seconds >= body.end_seconds:
            return Status.MALFORMED_REQUEST
        return ReadPrepaymentDailyLogResponse(entries=tuple(
            PrepaymentDailyEntry(midnight_seconds=midnight, **values)
            for midnight, values in self._r.prepayment_daily_log.entries()
            if body.start_seconds <= midnight < body.end_seconds))

    def _read_daily_consumption_log(self, body: LogRange
                                    ) -> ReadDailyConsumptionLogResponse | Status:
        """The consumption of each whole past UTC day whose midnight is in the range (the
        last 731 days)."""
        if body.start_seconds >= body.end_seconds:
            return Status.MALFORMED_REQUEST
        days = self._metrology.daily_consumption(-(-body.start_seconds // SECONDS_PER_DAY),
                                                 -(-body.end_seconds // SECONDS_PER_DAY))
        return ReadDailyConsumptionLogResponse(
            register_unit=self._register_unit,
            entries=tuple(DailyConsumptionEntry(midnight, value) for midnight, value in days))

    def _read_active_power(self, _: Empty) -> ReadActivePowerResponse:
        """The load drawn now (W): the load model's, or 0 while the supply is not enabled."""
        m = self._metrology
        enabled = self._r.supply_state == SupplyState.ENABLED
        return ReadActivePowerResponse(
            active_power_import_w=m.load_model.load_w_at(m.now_seconds) if enabled else 0)

    def _read_network_data(self, body: LogRange) -> ReadNetworkDataResponse | Status:
        """The average RMS voltage of each closed measurement period (half-hour) starting in
        the range, oldest first, within the last 4320 (90 days) and since the meter started;
        the over- and under-voltage counts are those of the periods given."""
        if body.start_seconds >= body.end_seconds:
            return Status.MALFORMED_REQUEST
        periods = self._metrology.closed_half_hours(
            -(-body.start_seconds // MEASUREMENT_PERIOD_SECONDS),
            -(-body.end_seconds // MEASUREMENT_PERIOD_SECONDS), VOLTAGE_LOG_DEPTH_PERIODS)
        model = self._voltage
        voltages = tuple(map(model.average_rms_decivolts, periods))
        return ReadNetworkDataResponse(
            measurement_period_seconds=MEASUREMENT_PERIOD_SECONDS,
            first_period_start_seconds=periods.start * MEASUREMENT_PERIOD_SECONDS
            if voltages else 0,
            over_voltage_count=sum(map(model.is_over_voltage, voltages)),
            under_voltage_count=sum(map(model.is_under_voltage, voltages)),
            average_rms_voltages_decivolts=voltages)

    def _read_tariff(self, _: Empty) -> ReadTariffResponse:
        timeline = self._metrology.timeline
        return ReadTariffResponse(
            tariff=tariff_body(timeline.current),
            pending_effective_seconds=timeline.next_change_after(self._r.now_seconds) or 0)

    def _read_maximum_demand(self, _: Empty) -> ReadMaximumDemandResponse:
        registers = self._metrology.max_demand
        active, configurable = (
            MaxDemand(demand_w=register.value_w, capture_time_seconds=register.capture_seconds,
                      last_reset_seconds=register.last_reset_seconds)
            for register in (registers.active, registers.configurable_time))
        return ReadMaximumDemandResponse(
            active_import=active,
            configurable_time_active_import=configurable,
            configurable_window_start_second_of_day=registers.window_start_second_of_day,
            configurable_window_end_second_of_day=registers.window_end_second_of_day,
        )

    def _set_tariff(self, body: Tariff) -> Tariff | Status:
        """A new tariff from now (a future-dated one arrives in SCHEDULE_REQUEST)."""
        try:
            tariff = tariff_of_body(body)
        except ValueError:
            return Status.VALUE_OUT_OF_RANGE
        self.schedule_tariff_change(PendingChange(self._r.now_seconds, tariff=tariff))
        return tariff_body(self._metrology.timeline.current)

    def _set_prices(self, body: TariffPrices) -> TariffPrices | Status:
        """New prices for the tariff in force, from now: as many bands and blocks as it has
        (else VALUE_OUT_OF_RANGE, nothing changed)."""
        try:
            prices = prices_of_body(body)
            self._metrology.timeline.current.with_prices(prices)
        except ValueError:
            return Status.VALUE_OUT_OF_RANGE
        self.schedule_tariff_change(PendingChange(self._r.now_seconds, prices=prices))
        return prices_body(self._metrology.timeline.current.prices)

    def _set_supply_state(self, body: SetSupplyStateRequest) -> SupplyStatus | Status:
        r = self._r
        requested = body.supply_state
        if requested is SupplyState.ENABLED and not self._is_esme:
            return Status.NOT_SUPPORTED_BY_DEVICE  # a gas valve opens only at the meter
        event = _SUPPLY_REQUEST_EVENTS[requested]
        if event is not SupplyEvent.REMOTE_DISABLE and not self._credit_permits_supply():
            return Status.NOT_PERMITTED_IN_STATE
        if not self._apply(event):
            return Status.NOT_PERMITTED_IN_STATE
        if r.supply_off_reason != SupplyOffReason.LOAD_LIMIT:
            r.load_limit_restoration_ends_at_seconds = 0
        return self._supply_status()


_SUPPLY_REQUEST_EVENTS: dict[SupplyState, SupplyEvent] = {
    SupplyState.ENABLED: SupplyEvent.REMOTE_ENABLE,
    SupplyState.DISABLED: SupplyEvent.REMOTE_DISABLE,
    SupplyState.ARMED: SupplyEvent.REMOTE_ARM,
}

#: The meter's commands: each to its handler (the meter, the typed request body ->
#: the response body or a refusal Status). A new meter command is one method and one row.
_HANDLERS: dict[Command, _Handler] = {
    Command.READ_INSTANTANEOUS_PREPAY_VALUES: Meter._read_instantaneous_prepay_values,
    Command.READ_PREPAYMENT_CONFIGURATION: Meter._read_prepayment_configuration,
    Command.READ_METER_BALANCE: Meter._read_meter_balance,
    Command.READ_SUPPLY_STATUS: Meter._read_supply_status,
    Command.READ_LOAD_LIMIT_DATA: Meter._read_load_limit_data,
    Command.SET_PAYMENT_MODE: Meter._set_payment_mode,
    Command.ADJUST_METER_BALANCE: Meter._adjust_meter_balance,
    Command.RESET_METER_BALANCE: Meter._reset_meter_balance,
    Command.SET_PREPAYMENT_CONFIGURATION: Meter._set_prepayment_configuration,
    Command.TOP_UP: Meter._top_up,
    Command.UPDATE_DEBT: Meter._update_debt,
    Command.ACTIVATE_EMERGENCY_CREDIT: Meter._activate_emergency_credit,
    Command.SET_LOAD_LIMIT_SETTINGS: Meter._set_load_limit_settings,
    Command.RESET_LOAD_LIMIT_COUNTER: Meter._reset_load_limit_counter,
    Command.SET_SUPPLY_STATE: Meter._set_supply_state,
    Command.READ_ENERGY_REGISTERS: Meter._read_energy_registers,
    Command.READ_PROFILE_DATA: Meter._read_profile_data,
    Command.READ_DAILY_READ_LOG: Meter._read_daily_read_log,
    Command.READ_PREPAYMENT_DAILY_LOG: Meter._read_prepayment_daily_log,
    Command.READ_TARIFF: Meter._read_tariff,
    Command.READ_MAXIMUM_DEMAND: Meter._read_maximum_demand,
    Command.READ_ACTIVE_POWER: Meter._read_active_power,
    Command.READ_DAILY_CONSUMPTION_LOG: Meter._read_daily_consumption_log,
    Command.READ_NETWORK_DATA: Meter._read_network_data,
    Command.SET_TARIFF: Meter._set_tariff,
    Command.SET_PRICES: Meter._set_prices,
}
#: The commands a meter answers (the load-limiting ones on an ESME only).
METER_COMMANDS = frozenset(_HANDLERS)
