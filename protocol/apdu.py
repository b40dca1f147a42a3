"""Application messages (APDUs) of the Secure-like protocol, defined with Construct.

An APDU rides in the information field of I-frames, after the 3-byte LLC header
(:mod:`protocol.link` adds and strips it). Layout, big-endian throughout::

    request:  apdu_type=0x01 | invoke_id (u16) | command (u8) | request body
    keyed request:
              apdu_type=0x02 | invoke_id (u16) | command (u8) | idempotency_key (16 bytes)
                             | request body
    response: apdu_type=0x81 | invoke_id (u16) | command (u8) | status (u8) | response body

A keyed request carries an idempotency key (:attr:`Request.idempotency_key`): a device that
has applied a request with that key answers a resend of it with the response it gave, and
changes nothing (docs/protocol.md section 7). :func:`idempotency_key_from_text` derives a key
from a text identifier such as a DUIS RequestID.

A response whose status is not SUCCESS has an empty body. The body layouts are the
``REQUEST_BODIES`` and ``RESPONSE_BODIES`` tables below: the single source of truth for every
byte, which docs/protocol.md describes. Each layout also has a typed, frozen dataclass
generated from it at import (``REQUEST_BODY_TYPES`` / ``RESPONSE_BODY_TYPES``, see
:class:`ApduBody`): :func:`decode_apdu` checks the bytes once and hands out ``Request.body`` /
``Response.body`` of those classes, and the encoders take them. A fixed-size body goes through
a ``struct`` codec derived from its layout at import (:mod:`protocol.apdu_codec`, proved equal
to Construct by the tests); everything else, and whatever that codec declines, through
Construct (:func:`build_body_with_construct` / :func:`parse_body_with_construct`, the
reference).

Money is integer pence (signed 32-bit) and time whole seconds or minutes, as each field's
name says: there is no floating point on the wire. Device time is seconds since
1970-01-01T00:00:00Z as an unsigned 32-bit integer.

This module does no I/O and keeps no state.
"""

from __future__ import annotations

import enum
import hashlib
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, make_dataclass
from typing import Any, ClassVar

from construct import (
    Adapter,
    Bytes,
    Construct,
    ConstructError,
    Default,
    Flag,
    FocusedSeq,
    FormatField,
    GreedyBytes,
    Int8ub,
    Int16ub,
    Int32sb,
    Int32ub,
    PascalString,
    Pass,
    Prefixed,
    PrefixedArray,
    Renamed,
    StringEncoded,
    Struct,
    Terminated,
    ValidationError,
    Validator,
)

from protocol.apdu_codec import FixedBodyCodec, derive_fixed_codec
from protocol.errors import ApduError
from protocol.eui64 import format_eui64


class ApduType(enum.IntEnum):
    REQUEST = 0x01
    KEYED_REQUEST = 0x02  # a request with an idempotency key after the command code
    RESPONSE = 0x81


class Command(enum.IntEnum):
    """What a request asks the device to do; the response carries the same code."""

    # reads
    READ_INSTANTANEOUS_PREPAY_VALUES = 0x01
    READ_PREPAYMENT_CONFIGURATION = 0x02
    READ_METER_BALANCE = 0x03
    READ_SUPPLY_STATUS = 0x04
    READ_FIRMWARE_VERSION = 0x05
    READ_CLOCK = 0x06
    READ_HAN_ENTRIES = 0x07
    READ_LOAD_LIMIT_DATA = 0x08
    READ_DEVICE_IDENTITY = 0x09
    READ_DEVICE_DIRECTORY = 0x0A
    READ_SCHEDULED_REQUESTS = 0x0B
    # metering data (energy registers, logs, tariff, maximum demand)
    READ_ENERGY_REGISTERS = 0x0C
    READ_PROFILE_DATA = 0x0D
    READ_DAILY_READ_LOG = 0x0E
    READ_PREPAYMENT_DAILY_LOG = 0x0F
    READ_TARIFF = 0x10
    READ_MAXIMUM_DEMAND = 0x11
    READ_ACTIVE_POWER = 0x12
    READ_DAILY_CONSUMPTION_LOG = 0x13
    READ_NETWORK_DATA = 0x14
    # prepayment and money
    SET_PAYMENT_MODE = 0x20
    ADJUST_METER_BALANCE = 0x21
    RESET_METER_BALANCE = 0x22
    SET_PREPAYMENT_CONFIGURATION = 0x23
    TOP_UP = 0x24
    UPDATE_DEBT = 0x25
    ACTIVATE_EMERGENCY_CREDIT = 0x26
    # tariff
    SET_TARIFF = 0x27
    SET_PRICES = 0x28
    # load limiting and supply
    SET_LOAD_LIMIT_SETTINGS = 0x30
    RESET_LOAD_LIMIT_COUNTER = 0x31
    SET_SUPPLY_STATE = 0x32
    # HAN
    HAN_ADD_DEVICE = 0x40
    HAN_REMOVE_DEVICE = 0x41
    # firmware
    FIRMWARE_BEGIN = 0x50
    FIRMWARE_BLOCK = 0x51
    FIRMWARE_VERIFY = 0x52
    FIRMWARE_ACTIVATE = 0x53
    # clock
    SYNCHRONISE_CLOCK = 0x60
    # future-dated execution: a whole request APDU held by the device until a device time
    SCHEDULE_REQUEST = 0x70
    CANCEL_SCHEDULED_REQUEST = 0x71
    # emulator only, served by the management logical device: move virtual time forward
    ADVANCE_DEVICE_TIME = 0x7E


#: Commands that change nothing on a device: a client may send them again on a fresh link, and
#: a device need not save its state after answering one.
READ_ONLY_COMMANDS = frozenset(command for command in Command
                               if command.name.startswith("READ_"))


class InvokeIdCounter:
    """Invoke ids for one sender's requests: 1..65535, then 1 again."""

    def __init__(self) -> None:
        self._next_invoke_id = 1

    def take(self) -> int:
        invoke_id = self._next_invoke_id
        self._next_invoke_id = invoke_id % 0xFFFF + 1
        return invoke_id


class Status(enum.IntEnum):
    """The outcome of a request. Anything but SUCCESS means the device changed nothing."""

    SUCCESS = 0x00
    MALFORMED_REQUEST = 0x01
    UNKNOWN_COMMAND = 0x02
    NOT_SUPPORTED_BY_DEVICE = 0x03
    VALUE_OUT_OF_RANGE = 0x04
    NOT_PERMITTED_IN_PAYMENT_MODE = 0x05
    NOT_PERMITTED_IN_STATE = 0x06
    EXCEEDS_MAX_METER_BALANCE = 0x07
    EMERGENCY_CREDIT_UNAVAILABLE = 0x08
    UTRN_INVALID_CHECK_DIGIT = 0x10
    UTRN_WRONG_METER = 0x11
    UTRN_DUPLICATE = 0x12
    UTRN_EXCEEDS_MAX_CREDIT = 0x13
    UTRN_EXCEEDS_MAX_METER_BALANCE = 0x14
    UTRN_ENTRY_LOCKED = 0x15
    UTRN_MALFORMED = 0x16
    HAN_DEVICE_NOT_FOUND = 0x20
    HAN_TABLE_FULL = 0x21
    FIRMWARE_UPDATE_IN_PROGRESS = 0x30
    FIRMWARE_NO_TRANSFER = 0x31
    FIRMWARE_BLOCK_OUT_OF_ORDER = 0x32
    FIRMWARE_WRONG_MODEL = 0x33
    FIRMWARE_BAD_HASH = 0x34
    FIRMWARE_BAD_LENGTH = 0x35
    FIRMWARE_BAD_HEADER = 0x36
    FIRMWARE_NO_VERIFIED_IMAGE = 0x37
    NOTHING_SCHEDULED = 0x40
    IDEMPOTENCY_KEY_REUSED = 0x41
    NOT_AUTHORISED = 0x42  # the management password is missing or wrong
    DEVICE_BUSY = 0x7F


class PaymentMode(enum.IntEnum):
    CREDIT = 0
    PREPAYMENT = 1


class SupplyState(enum.IntEnum):
    ENABLED = 0
    DISABLED = 1
    ARMED = 2


class SupplyOffReason(enum.IntEnum):
    NONE = 0
    REMOTE = 1  # disabled by a request (SR 7.2)
    NO_CREDIT = 2  # prepayment: available credit below the disablement threshold
    LOAD_LIMIT = 3  # load limiting opened the switch


class DeviceType(enum.IntEnum):
    COMMS_HUB = 1
    ELECTRICITY_METER = 2  # ESME
    GAS_METER = 3  # GSME
    MANAGEMENT = 4  # the link's management logical device (address 1)
    GAS_PROXY_FUNCTION = 5  # GPF: the comms hub's gas proxy, answers gas reads for the GSME
    PPMID = 6  # prepayment meter interface device: a type 2 device on the HAN


class RegisterUnit(enum.IntEnum):
    """The unit of a meter's energy registers and logs."""

    WATT_HOURS = 1  # ESME: whole Wh
    CUBIC_DECIMETRES = 2  # GSME: whole dm3 (litres) of gas


class DebtRegister(enum.IntEnum):
    TIME_DEBT_1 = 1
    TIME_DEBT_2 = 2
    PAYMENT_DEBT = 3


class DebtRecoveryPeriod(enum.IntEnum):
    HOURLY = 1
    DAILY = 2


class HanEntryState(enum.IntEnum):
    JOIN_WINDOW_OPEN = 1  # added, waiting for the device to join
    JOINED = 2  # on the HAN


class PrepaymentConfigurationField(enum.IntFlag):
    """Bits of ``fields_present`` in SET_PREPAYMENT_CONFIGURATION: which values to apply."""

    DEBT_RECOVERY_RATE_CAP = 0x0001
    EMERGENCY_CREDIT_LIMIT = 0x0002
    EMERGENCY_CREDIT_THRESHOLD = 0x0004
    LOW_CREDIT_THRESHOLD = 0x0008
    MAX_METER_BALANCE = 0x0010
    MAX_CREDIT_THRESHOLD = 0x0020
    DISABLEMENT_THRESHOLD = 0x0040


#: The well-known server address of the management logical device, which answers
#: READ_DEVICE_DIRECTORY for every device behind the link.
MANAGEMENT_SERVER_ADDRESS = 0x01
#: Client address the S1SP adapter uses.
ADAPTER_CLIENT_ADDRESS = 0x10
#: Largest number of bytes a FIRMWARE_BLOCK may carry (and the smallest: 1).
MAX_FIRMWARE_BLOCK_BYTES = 1024
#: Most half-hour values one READ_PROFILE_DATA answer carries (31 days): a longer range is
#: read in several requests.
MAX_PROFILE_PERIODS_PER_READ = 31 * 48
#: Longest request APDU SCHEDULE_REQUEST may hold: a keyed FIRMWARE_BLOCK of the largest block
#: (20-byte keyed header, 4-byte offset, 2-byte length, 1024 bytes); the S1SP's longest
#: SET_TARIFF is bounded to it too (MAX_TARIFF_REQUEST_BYTES).
MAX_SCHEDULED_REQUEST_BYTES = 20 + 4 + 2 + MAX_FIRMWARE_BLOCK_BYTES
#: Longest SET_TARIFF request APDU (4-byte header, then the TARIFF body) the S1SP sends: what
#: SCHEDULE_REQUEST holds, so that a tariff fits whether it is sent now or future-dated.
MAX_TARIFF_REQUEST_BYTES = MAX_SCHEDULED_REQUEST_BYTES
#: Longest management password (a ``text`` field).
MAX_MANAGEMENT_PASSWORD_BYTES = 255

# Device limits of the Secure profile, shared by the emulated devices and the S1SP so that each
# is written once.
#: S1SR 18.37: the device holds the load-limit threshold in an unsigned 16-bit field.
MAX_LOAD_LIMIT_POWER_THRESHOLD_W = 0xFFFF
#: LoadLimitPeriod and LoadLimitRestorationPeriod the device accepts, inclusive.
MIN_LOAD_LIMIT_PERIOD_SECONDS = 30
MAX_LOAD_LIMIT_PERIOD_SECONDS = 3600
#: Longest HAN join window the hub accepts, whole minutes (decided).
MAX_JOIN_WINDOW_MINUTES = 60


# --------------------------------------------------------------------------------------------
# Field types
# --------------------------------------------------------------------------------------------


class EnumAdapter(Adapter):  # type: ignore[misc]
    """A u8 on the wire, a Python IntEnum in memory (an unknown value is an ApduError)."""

    def __init__(self, enum_class: type[enum.IntEnum]) -> None:
        super().__init__(Int8ub)
        self.enum_class = enum_class

    def _decode(self, obj: int, context: Any, path: str) -> enum.IntEnum:
        try:
            return self.enum_class(obj)
        except ValueError:
            raise ApduError(f"{path}: {obj} is not a {self.enum_class.__name__}") from None

    def _encode(self, obj: Any, context: Any, path: str) -> int:
        if isinstance(obj, str):
            return int(self.enum_class[obj])
        return int(self.enum_class(obj))


class FlagsAdapter(Adapter):  # type: ignore[misc]
    """A u16 bit set on the wire, a Python IntFlag in memory."""

    def __init__(self, flag_class: type[enum.IntFlag]) -> None:
        super().__init__(Int16ub)
        self.flag_class = flag_class

    def _decode(self, obj: int, context: Any, path: str) -> enum.IntFlag:
        return self.flag_class(obj)

    def _encode(self, obj: Any, context: Any, path: str) -> int:
        return int(obj)


class SizeBounded(Validator):  # type: ignore[misc]
    """A variable-length field (bytes or text) whose length must be within ``min_size`` ..
    ``max_size``: checked when decoded and when encoded (a ValidationError, so an ApduError)."""

    def __init__(self, subcon: Construct, min_size: int, max_size: int) -> None:
        super().__init__(subcon)
        self.min_size = min_size
        self.max_size = max_size

    def _validate(self, obj: Any, context: Any, path: str) -> bool:
        return self.min_size <= len(obj) <= self.max_size

    def _check(self, obj: Any, path: str) -> Any:
        if not self._validate(obj, None, path):
            raise ValidationError(f"{len(obj)} bytes, outside the {self.min_size}-"
                                  f"{self.max_size} the layout allows", path=path)
        return obj

    def _parse(self, stream: Any, context: Any, path: str) -> Any:
        return self._check(self.subcon._parsereport(stream, context, path), path)

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        self._check(obj, path)
        return self.subcon._build(obj, stream, context, path)


Pence = Int32sb
Eui64 = Bytes(8)
DeviceTimeSeconds = Int32ub
ShortText = PascalString(Int8ub, "ascii")

#: Parameters DUIS does not carry, appended by the S1SP from its Annex C table of defaults.
#: On a switch to prepayment the device applies each to any parameter never configured.
PREPAYMENT_DEFAULTS = Struct(
    "emergency_credit_limit_pence" / Pence,
    "emergency_credit_threshold_pence" / Pence,
    "low_credit_threshold_pence" / Pence,
    "max_meter_balance_pence" / Pence,
    "max_credit_threshold_pence" / Pence,
    "debt_recovery_rate_cap_pence" / Pence,
    "low_emergency_credit_threshold_pence" / Pence,
    "cut_off_grace_period_minutes" / Int16ub,
    "keypad_lock_timeout_seconds" / Int16ub,
    "non_disablement_calendar_id" / Int8ub,
    "utrn_type" / Int8ub,
)

#: All prepayment parameters a device holds: the mode, the disablement threshold and the
#: suspend flags, then the PREPAYMENT_DEFAULTS fields in their order.
PREPAYMENT_CONFIGURATION = Struct(
    "payment_mode" / EnumAdapter(PaymentMode),
    "disablement_threshold_pence" / Pence,
    "suspend_debt_disabled" / Flag,
    "suspend_debt_emergency" / Flag,
    *PREPAYMENT_DEFAULTS.subcons,
)

BALANCES = Struct(
    "meter_balance_pence" / Pence,
    "emergency_credit_balance_pence" / Pence,
)

INSTANTANEOUS_PREPAY_VALUES = Struct(
    "payment_mode" / EnumAdapter(PaymentMode),
    "meter_balance_pence" / Pence,
    "emergency_credit_balance_pence" / Pence,
    "emergency_credit_active" / Flag,
    "accumulated_debt_pence" / Pence,
    "time_debt_1_pence" / Pence,
    "time_debt_2_pence" / Pence,
    "payment_debt_pence" / Pence,
    "supply_state" / EnumAdapter(SupplyState),
    "supply_off_reason" / EnumAdapter(SupplyOffReason),
)

SUPPLY_STATUS = Struct(
    "supply_state" / EnumAdapter(SupplyState),
    "supply_off_reason" / EnumAdapter(SupplyOffReason),
)

LOAD_LIMIT_DATA = Struct(
    "load_limit_power_threshold_w" / Int16ub,
    "load_limit_period_seconds" / Int16ub,
    "load_limit_restoration_period_seconds" / Int16ub,
    "load_limit_counter" / Int32ub,
    "load_limit_active" / Flag,
)

FIRMWARE_STATUS = Struct(
    "running_version" / ShortText,
    "pending_version" / ShortText,  # "" when no verified image waits for activation
    "pending_activation_time_seconds" / DeviceTimeSeconds,  # 0: none scheduled
    "transfer_in_progress" / Flag,
    # the SHA-256 the pending image's header carries (of its payload); zeros when none
    "pending_image_sha256" / Bytes(32),
)

HAN_ENTRY = Struct(
    "device_eui64" / Eui64,
    "state" / EnumAdapter(HanEntryState),
    "join_window_closes_at_seconds" / DeviceTimeSeconds,  # 0 once joined
)

DEVICE_IDENTITY = Struct(
    "device_eui64" / Eui64,
    "device_type" / EnumAdapter(DeviceType),
    "server_address" / Int32ub,
    "manufacturer" / ShortText,
    "model" / ShortText,
)

DEBT_STATE = Struct(
    "debt_register" / EnumAdapter(DebtRegister),
    "debt_value_pence" / Pence,
    "debt_recovery_rate_pence" / Pence,
    "debt_recovery_period" / EnumAdapter(DebtRecoveryPeriod),
    "debt_recovery_percentage" / Int8ub,
)

#: A request the device holds for future-dated execution; one per command code: scheduling a
#: command again replaces the earlier entry.
SCHEDULED_ENTRY = Struct(
    "scheduled_command" / Int8ub,
    "execution_time_seconds" / DeviceTimeSeconds,
)

#: A time range of a log read: entries with ``start_seconds <= time < end_seconds``.
LOG_RANGE = Struct(
    "start_seconds" / DeviceTimeSeconds,
    "end_seconds" / DeviceTimeSeconds,
)

#: One indexed energy register (a TOU band or a block, counted from 1), in register units.
INDEXED_REGISTER = Struct(
    "index" / Int8ub,
    "register_value" / Int32ub,
)

#: The energy registers (DUIS 4.1.1, 4.1.2, 4.1.4): the total, per TOU band and per block.
ENERGY_REGISTERS = Struct(
    "register_unit" / EnumAdapter(RegisterUnit),
    "total_register" / Int32ub,
    "tou_registers" / PrefixedArray(Int8ub, INDEXED_REGISTER),
    "block_registers" / PrefixedArray(Int8ub, INDEXED_REGISTER),
)

#: One register cell of the daily read log: TOU band and block (both from 1).
REGISTER_CELL = Struct(
    "band" / Int8ub,
    "block" / Int8ub,
    "register_value" / Int32ub,
)

DAILY_READ_ENTRY = Struct(
    "midnight_seconds" / DeviceTimeSeconds,
    "total_register" / Int32ub,
    "cells" / PrefixedArray(Int16ub, REGISTER_CELL),
)

#: One day's consumption (DUIS 4.17): the register units consumed in the UTC day starting at
#: ``midnight_seconds``.
DAILY_CONSUMPTION_ENTRY = Struct(
    "midnight_seconds" / DeviceTimeSeconds,
    "register_units" / Int32ub,
)

PREPAYMENT_DAILY_ENTRY = Struct(
    "midnight_seconds" / DeviceTimeSeconds,
    "meter_balance_pence" / Pence,
    "emergency_credit_balance_pence" / Pence,
    "accumulated_debt_pence" / Pence,
    "payment_debt_pence" / Pence,
    "time_debt_1_pence" / Pence,
    "time_debt_2_pence" / Pence,
)

#: One switch of a day profile: from ``start_second_of_day`` the TOU band ``band`` (from 1).
BAND_SWITCH = Struct(
    "start_second_of_day" / Int32ub,
    "band" / Int8ub,
)

DAY_PROFILE = Struct("switches" / PrefixedArray(Int8ub, BAND_SWITCH))

BLOCK_PRICE = Struct("price_millipence_per_kwh" / Int32ub)
#: Prices (SR 1.2.1): per TOU band, one price per block; and the standing charge.
BAND_PRICES = Struct("block_prices" / PrefixedArray(Int8ub, BLOCK_PRICE))
TARIFF_PRICES = Struct(
    "standing_charge_millipence_per_day" / Int32ub,
    "bands" / PrefixedArray(Int8ub, BAND_PRICES),
)

BLOCK_THRESHOLD = Struct("threshold_wh" / Int32ub)
#: A TOU band's block thresholds: energy in the block period at which the next block starts.
BAND_THRESHOLDS = Struct("thresholds" / PrefixedArray(Int8ub, BLOCK_THRESHOLD))

#: A whole tariff (SR 1.1.1 with its prices): switching table (day profiles, the day profile
#: of each weekday Monday first, counted from 0), block thresholds per band, block period.
TARIFF = Struct(
    "day_profiles" / PrefixedArray(Int8ub, DAY_PROFILE),
    "week_day_profiles" / Bytes(7),
    "band_thresholds" / PrefixedArray(Int8ub, BAND_THRESHOLDS),
    "block_period_seconds" / Int32ub,
    "prices" / TARIFF_PRICES,
)

#: One maximum demand register: the highest half-hour average (W), the end of its half-hour,
#: and when it was last reset (0: never captured).
MAX_DEMAND = Struct(
    "demand_w" / Int32ub,
    "capture_time_seconds" / DeviceTimeSeconds,
    "last_reset_seconds" / DeviceTimeSeconds,
)

#: The device's clock, as SYNCHRONISE_CLOCK sets it and READ_CLOCK reads it.
DEVICE_CLOCK = Struct("device_time_seconds" / DeviceTimeSeconds)

EMPTY = Pass

#: Request body layout for each command.
REQUEST_BODIES: dict[Command, Construct] = {
    Command.READ_INSTANTANEOUS_PREPAY_VALUES: EMPTY,
    Command.READ_PREPAYMENT_CONFIGURATION: EMPTY,
    Command.READ_METER_BALANCE: EMPTY,
    Command.READ_SUPPLY_STATUS: EMPTY,
    Command.READ_FIRMWARE_VERSION: EMPTY,
    Command.READ_CLOCK: EMPTY,
    Command.READ_HAN_ENTRIES: EMPTY,
    Command.READ_LOAD_LIMIT_DATA: EMPTY,
    Command.READ_DEVICE_IDENTITY: EMPTY,
    Command.READ_DEVICE_DIRECTORY: EMPTY,
    Command.READ_ENERGY_REGISTERS: EMPTY,
    Command.READ_PROFILE_DATA: LOG_RANGE,
    Command.READ_DAILY_READ_LOG: LOG_RANGE,
    Command.READ_PREPAYMENT_DAILY_LOG: LOG_RANGE,
    Command.READ_TARIFF: EMPTY,
    Command.READ_MAXIMUM_DEMAND: EMPTY,
    Command.READ_ACTIVE_POWER: EMPTY,
    Command.READ_DAILY_CONSUMPTION_LOG: LOG_RANGE,
    Command.READ_NETWORK_DATA: LOG_RANGE,
    Command.SET_TARIFF: TARIFF,
    Command.SET_PRICES: TARIFF_PRICES,
    Command.SET_PAYMENT_MODE: Struct(
        "payment_mode" / EnumAdapter(PaymentMode),
        "disablement_threshold_pence" / Pence,
        "suspend_debt_disabled" / Flag,
        "suspend_debt_emergency" / Flag,
        "defaults" / PREPAYMENT_DEFAULTS,
    ),
    Command.ADJUST_METER_BALANCE: Struct("adjustment_pence" / Pence),
    Command.RESET_METER_BALANCE: EMPTY,
    Command.SET_PREPAYMENT_CONFIGURATION: Struct(
        "fields_present" / FlagsAdapter(PrepaymentConfigurationField),
        "debt_recovery_rate_cap_pence" / Pence,
        "emergency_credit_limit_pence" / Pence,
        "emergency_credit_threshold_pence" / Pence,
        "low_credit_threshold_pence" / Pence,
        "max_meter_balance_pence" / Pence,
        "max_credit_threshold_pence" / Pence,
        "disablement_threshold_pence" / Pence,
    ),
    Command.TOP_UP: Struct("utrn" / Bytes(20)),  # 20 ASCII digits
    Command.UPDATE_DEBT: Struct(
        "debt_register" / EnumAdapter(DebtRegister),
        "debt_adjustment_pence" / Pence,
        "debt_recovery_rate_pence" / Pence,  # time debt: per period; ignored for payment debt
        "debt_recovery_period" / EnumAdapter(DebtRecoveryPeriod),
        "debt_recovery_percentage" / Int8ub,  # payment debt: share of each top-up, 0-100
    ),
    Command.ACTIVATE_EMERGENCY_CREDIT: EMPTY,
    Command.SET_LOAD_LIMIT_SETTINGS: Struct(
        "load_limit_power_threshold_w" / Int16ub,
        "load_limit_period_seconds" / Int16ub,
        "load_limit_restoration_period_seconds" / Int16ub,
    ),
    Command.RESET_LOAD_LIMIT_COUNTER: EMPTY,
    Command.SET_SUPPLY_STATE: Struct("supply_state" / EnumAdapter(SupplyState)),
    Command.HAN_ADD_DEVICE: Struct(
        "device_eui64" / Eui64,
        "join_window_minutes" / Int16ub,
    ),
    Command.HAN_REMOVE_DEVICE: Struct("device_eui64" / Eui64),
    Command.FIRMWARE_BEGIN: Struct("image_size_bytes" / Int32ub),
    Command.FIRMWARE_BLOCK: Struct(
        "block_offset_bytes" / Int32ub,
        "block_data" / SizeBounded(Prefixed(Int16ub, GreedyBytes), 1, MAX_FIRMWARE_BLOCK_BYTES),
    ),
    Command.FIRMWARE_VERIFY: EMPTY,
    Command.FIRMWARE_ACTIVATE: Struct(
        "activation_time_seconds" / DeviceTimeSeconds,  # 0: now
    ),
    Command.SYNCHRONISE_CLOCK: DEVICE_CLOCK,
    Command.READ_SCHEDULED_REQUESTS: EMPTY,
    Command.SCHEDULE_REQUEST: Struct(
        "execution_time_seconds" / DeviceTimeSeconds,
        # a whole request APDU
        "request" / SizeBounded(Prefixed(Int16ub, GreedyBytes), 0, MAX_SCHEDULED_REQUEST_BYTES),
    ),
    Command.CANCEL_SCHEDULED_REQUEST: Struct("scheduled_command" / Int8ub),
    Command.ADVANCE_DEVICE_TIME: Struct(
        "advance_seconds" / Int32ub,
        # the server's management password; "" (one 00 byte) when it has none
        "management_password" / Default(ShortText, ""),
    ),
}

#: Response body layout for each command (sent only with status SUCCESS).
RESPONSE_BODIES: dict[Command, Construct] = {
    Command.READ_INSTANTANEOUS_PREPAY_VALUES: INSTANTANEOUS_PREPAY_VALUES,
    Command.READ_PREPAYMENT_CONFIGURATION: PREPAYMENT_CONFIGURATION,
    Command.READ_METER_BALANCE: BALANCES,
    Command.READ_SUPPLY_STATUS: SUPPLY_STATUS,
    Command.READ_FIRMWARE_VERSION: FIRMWARE_STATUS,
    Command.READ_CLOCK: DEVICE_CLOCK,
    Command.READ_HAN_ENTRIES: Struct("entries" / PrefixedArray(Int8ub, HAN_ENTRY)),
    Command.READ_LOAD_LIMIT_DATA: LOAD_LIMIT_DATA,
    Command.READ_DEVICE_IDENTITY: DEVICE_IDENTITY,
    Command.READ_DEVICE_DIRECTORY: Struct("devices" / PrefixedArray(Int16ub, DEVICE_IDENTITY)),
    Command.READ_ENERGY_REGISTERS: ENERGY_REGISTERS,
    Command.READ_PROFILE_DATA: Struct(
        "register_unit" / EnumAdapter(RegisterUnit),
        "first_period_start_seconds" / DeviceTimeSeconds,
        "period_seconds" / Int16ub,
        # register units consumed in each period (differences of the total register); plain
        # integers, not records, so that a 1488-value answer codes in bulk
        "values" / PrefixedArray(Int16ub, Int32ub),
    ),
    Command.READ_DAILY_READ_LOG: Struct(
        "register_unit" / EnumAdapter(RegisterUnit),
        "entries" / PrefixedArray(Int8ub, DAILY_READ_ENTRY),
    ),
    Command.READ_PREPAYMENT_DAILY_LOG: Struct(
        "entries" / PrefixedArray(Int8ub, PREPAYMENT_DAILY_ENTRY)),
    Command.READ_TARIFF: Struct(
        "tariff" / TARIFF,
        # when the next change the device holds takes effect (0: none pending)
        "pending_effective_seconds" / DeviceTimeSeconds,
    ),
    Command.READ_MAXIMUM_DEMAND: Struct(
        "active_import" / MAX_DEMAND,
        "configurable_time_active_import" / MAX_DEMAND,
        "configurable_window_start_second_of_day" / Int32ub,
        "configurable_window_end_second_of_day" / Int32ub,
    ),
    Command.READ_ACTIVE_POWER: Struct("active_power_import_w" / Int32ub),
    Command.READ_DAILY_CONSUMPTION_LOG: Struct(
        "register_unit" / EnumAdapter(RegisterUnit),
        "entries" / PrefixedArray(Int16ub, DAILY_CONSUMPTION_ENTRY),
    ),
    Command.READ_NETWORK_DATA: Struct(
        "measurement_period_seconds" / Int16ub,
        "first_period_start_seconds" / DeviceTimeSeconds,
        # measurement periods among those given whose average was above / below the threshold
        "over_voltage_count" / Int16ub,
        "under_voltage_count" / Int16ub,
        # the average RMS voltage of each consecutive period, decivolts; plain integers, not
        # records, so that a 4320-value answer codes in bulk
        "average_rms_voltages_decivolts" / PrefixedArray(Int16ub, Int16ub),
    ),
    Command.SET_TARIFF: TARIFF,
    Command.SET_PRICES: TARIFF_PRICES,
    Command.SET_PAYMENT_MODE: PREPAYMENT_CONFIGURATION,
    Command.ADJUST_METER_BALANCE: Struct(
        "adjustment_applied_pence" / Pence,
        "meter_balance_pence" / Pence,
    ),
    Command.RESET_METER_BALANCE: Struct("meter_balance_pence" / Pence),
    Command.SET_PREPAYMENT_CONFIGURATION: PREPAYMENT_CONFIGURATION,
    Command.TOP_UP: Struct(
        "credit_added_pence" / Pence,
        "emergency_credit_repaid_pence" / Pence,
        "debt_recovered_pence" / Pence,
        "meter_balance_pence" / Pence,
    ),
    Command.UPDATE_DEBT: DEBT_STATE,
    Command.ACTIVATE_EMERGENCY_CREDIT: BALANCES,
    Command.SET_LOAD_LIMIT_SETTINGS: LOAD_LIMIT_DATA,
    Command.RESET_LOAD_LIMIT_COUNTER: LOAD_LIMIT_DATA,
    Command.SET_SUPPLY_STATE: SUPPLY_STATUS,
    Command.HAN_ADD_DEVICE: HAN_ENTRY,
    Command.HAN_REMOVE_DEVICE: Struct("device_eui64" / Eui64),
    Command.FIRMWARE_BEGIN: FIRMWARE_STATUS,
    Command.FIRMWARE_BLOCK: Struct("bytes_received" / Int32ub),
    Command.FIRMWARE_VERIFY: FIRMWARE_STATUS,
    Command.FIRMWARE_ACTIVATE: FIRMWARE_STATUS,
    Command.SYNCHRONISE_CLOCK: DEVICE_CLOCK,
    Command.READ_SCHEDULED_REQUESTS: Struct("scheduled" / PrefixedArray(Int8ub, SCHEDULED_ENTRY)),
    Command.SCHEDULE_REQUEST: Struct(
        "scheduled_command" / Int8ub,
        "execution_time_seconds" / DeviceTimeSeconds,
        # the entry for the same command this one replaced; 0: none was pending
        "replaced_execution_time_seconds" / DeviceTimeSeconds,
    ),
    Command.CANCEL_SCHEDULED_REQUEST: Struct("cancelled" / Flag),
    Command.ADVANCE_DEVICE_TIME: DEVICE_CLOCK,
}

# --------------------------------------------------------------------------------------------
# Headers
# --------------------------------------------------------------------------------------------

#: The header every APDU starts with; a response adds its status byte after it.
REQUEST_HEADER = Struct(
    "apdu_type" / Int8ub,  # an ApduType
    "invoke_id" / Int16ub,
    "command" / Int8ub,  # a Command
)
RESPONSE_HEADER = Struct(*REQUEST_HEADER.subcons, "status" / Int8ub)  # status: a Status
#: Bytes of an idempotency key.
IDEMPOTENCY_KEY_SIZE_BYTES = 16
#: The header of a keyed request (apdu_type KEYED_REQUEST): the request header, then the key.
KEYED_REQUEST_HEADER = Struct(*REQUEST_HEADER.subcons,
                              "idempotency_key" / Bytes(IDEMPOTENCY_KEY_SIZE_BYTES))


def _header_packer(header: Struct) -> struct.Struct:
    """The header layout as a :mod:`struct` format for the fast path, derived from the
    Construct definition (never kept by hand)."""
    codes = []
    for field_ in header.subcons:
        subcon = field_.subcon
        if isinstance(subcon, FormatField) and subcon.fmtstr.startswith(">"):
            codes.append(subcon.fmtstr[1:])
        elif isinstance(subcon, Bytes):
            codes.append(f"{subcon.sizeof()}s")
        else:
            raise TypeError(f"header field {field_.name} is neither a big-endian integer nor "
                            "fixed bytes")
    packer = struct.Struct(">" + "".join(codes))
    if packer.size != header.sizeof():
        raise TypeError(f"header format {packer.format} does not match its layout")
    return packer


_REQUEST_HEAD = _header_packer(REQUEST_HEADER)
_RESPONSE_HEAD = _header_packer(RESPONSE_HEADER)
_KEYED_REQUEST_HEAD = _header_packer(KEYED_REQUEST_HEADER)
HEADER_SIZE_BYTES = _REQUEST_HEAD.size


def idempotency_key_from_text(text: str) -> bytes:
    """A 16-byte idempotency key derived from a text identifier (such as a DUIS RequestID):
    the first 16 bytes of the SHA-256 of its UTF-8 bytes, so the same text always gives the
    same key."""
    return hashlib.sha256(text.encode("utf-8")).digest()[:IDEMPOTENCY_KEY_SIZE_BYTES]

# --------------------------------------------------------------------------------------------
# Typed bodies, generated from the Construct layouts above
# --------------------------------------------------------------------------------------------


class ApduBody:
    """Base of every typed APDU body.

    Each body class is a frozen, slotted dataclass generated at import from one Construct
    layout of :data:`REQUEST_BODIES` / :data:`RESPONSE_BODIES`, with the layout's field names
    and order: an integer field is an ``int`` (named with its unit), ``Flag`` a ``bool``, an
    enum field its enum, bit sets their ``IntFlag``, EUI-64s and byte strings ``bytes``, text
    ``str``, a nested record its own body class and an array a ``tuple`` of them. A layout held
    in a module constant gives its class that name (``PREPAYMENT_CONFIGURATION`` ->
    :class:`PrepaymentConfiguration`, shared by every command using it); an inline layout is
    named after its command (``ADJUST_METER_BALANCE`` -> ``AdjustMeterBalanceRequest`` and
    ``AdjustMeterBalanceResponse``); empty bodies are :class:`Empty`. Look them up with
    :data:`REQUEST_BODY_TYPES` and :data:`RESPONSE_BODY_TYPES`.
    """

    __slots__ = ()
    #: the Construct layout the class was generated from
    layout: ClassVar[Construct]


_Convert = Callable[[Any], Any]
#: per body class: parsed Construct Container -> body, and body -> plain mapping for build
_FROM_PARSED: dict[type[ApduBody], _Convert] = {}
_AS_FIELDS: dict[type[ApduBody], _Convert] = {}
_BODY_TYPES_BY_LAYOUT: dict[int, type[ApduBody]] = {}
_BODY_TYPES_BY_NAME: dict[str, type[ApduBody]] = {}
#: layouts held in module constants, by identity: their body classes take the constant's name
_LAYOUT_NAMES = {id(value): name for name, value in globals().items()
                 if isinstance(value, Struct) and name.isupper()} | {id(EMPTY): "EMPTY"}


def _camel(name: str) -> str:
    return "".join(word.capitalize() for word in name.split("_"))


def _field_type(subcon: Construct, class_name: str) -> tuple[Any, _Convert | None,
                                                               _Convert | None]:
    """The Python type of one Construct field, and the converters (None: the value as is)
    from a parsed value and to a buildable one."""
    while isinstance(subcon, (Renamed, Default, Validator)):
        subcon = subcon.subcon
    if isinstance(subcon, Struct):
        nested = _body_type(subcon, class_name)
        return nested, _FROM_PARSED[nested], _AS_FIELDS[nested]
    if isinstance(subcon, FocusedSeq):  # PrefixedArray: a count, then the items
        items = next(f for f in subcon.subcons if f.name == subcon.parsebuildfrom).subcon
        item_type, item_from, item_as = _field_type(items.subcon, class_name)
        if item_from is None or item_as is None:
            return tuple[item_type, ...], tuple, list
        return (tuple[item_type, ...], lambda values: tuple(map(item_from, values)),
                lambda values: list(map(item_as, values)))
    if isinstance(subcon, EnumAdapter):
        return subcon.enum_class, None, None
    if isinstance(subcon, FlagsAdapter):
        return subcon.flag_class, None, None
    if subcon is Flag:
        return bool, None, None
    if isinstance(subcon, FormatField) and subcon.fmtstr[-1] in "bBhHlLqQ":
        return int, None, None
    if isinstance(subcon, StringEncoded):
        return str, None, None
    if isinstance(subcon, Bytes) or (isinstance(subcon, Prefixed)
                                     and subcon.subcon is GreedyBytes):
        return bytes, None, None
    raise TypeError(f"{class_name}: no Python type for {subcon!r}: extend _field_type")


def _body_type(layout: Construct, name: str) -> type[ApduBody]:
    """The body class of one layout, generated once per layout object."""
    known = _BODY_TYPES_BY_LAYOUT.get(id(layout))
    if known is not None:
        return known
    name = _camel(_LAYOUT_NAMES.get(id(layout), name))
    subcons = [] if layout is EMPTY else [sub for sub in layout.subcons if sub.name]
    if name in _BODY_TYPES_BY_NAME:
        raise TypeError(f"two body layouts would both be named {name}")
    specs = [(sub.name, *_field_type(sub, name)) for sub in subcons]
    # a field the layout gives a Default gets it in the class too (it comes last)
    defaults = {sub.name: field(default=sub.subcon.value) for sub in subcons
                if isinstance(sub.subcon, Default)}
    cls: type[ApduBody] = make_dataclass(
        name, [(field_name, python_type, *([defaults[field_name]] if field_name in defaults
                                           else []))
               for field_name, python_type, _, _ in specs],
        bases=(ApduBody,), frozen=True, slots=True, namespace={"layout": layout})
    cls.__module__ = __name__
    cls.__doc__ = f"Typed APDU body generated from its Construct layout: {cls.__doc__}"
    names = tuple(field_name for field_name, _, _, _ in specs)
    if all(from_parsed is None for _, _, from_parsed, _ in specs):
        def from_parsed(parsed: Any) -> ApduBody:
            return cls(*[parsed[field_name] for field_name in names])

        def as_fields(body: Any) -> dict[str, Any]:
            return {field_name: getattr(body, field_name) for field_name in names}
    else:
        converters = [(field_name, parse or _same, build or _same)
                      for field_name, _, parse, build in specs]

        def from_parsed(parsed: Any) -> ApduBody:
            return cls(*[parse(parsed[field_name]) for field_name, parse, _ in converters])

        def as_fields(body: Any) -> dict[str, Any]:
            return {field_name: build(getattr(body, field_name))
                    for field_name, _, build in converters}
    _FROM_PARSED[cls] = from_parsed
    _AS_FIELDS[cls] = as_fields
    _BODY_TYPES_BY_LAYOUT[id(layout)] = _BODY_TYPES_BY_NAME[name] = cls
    return cls


def _same(value: Any) -> Any:
    return value


#: The typed request body class of each command.
REQUEST_BODY_TYPES: dict[Command, type[ApduBody]] = {
    command: _body_type(layout, f"{command.name}_REQUEST")
    for command, layout in REQUEST_BODIES.items()}
#: The typed response body class of each command (a SUCCESS response's body).
RESPONSE_BODY_TYPES: dict[Command, type[ApduBody]] = {
    command: _body_type(layout, f"{command.name}_RESPONSE")
    for command, layout in RESPONSE_BODIES.items()}
# Every body class by its name, as a module attribute: protocol.apdu.AdjustMeterBalanceRequest
globals().update(_BODY_TYPES_BY_NAME)

#: Per (is_request, command): the body layout that must use up the bytes, and the converter
#: of its parse result to the typed body.
_BODY_PARSERS: dict[tuple[bool, Command], tuple[Construct, _Convert]] = {
    (is_request, command): (Struct("body" / layout, Terminated), _FROM_PARSED[types[command]])
    for is_request, layouts, types in ((True, REQUEST_BODIES, REQUEST_BODY_TYPES),
                                       (False, RESPONSE_BODIES, RESPONSE_BODY_TYPES))
    for command, layout in layouts.items()}

#: The fast path (:mod:`protocol.apdu_codec`): per layout (by identity), its ``struct`` codec
#: derived from it, for every fixed-size layout; Construct decides whatever it declines.
_FIXED_CODECS: dict[int, FixedBodyCodec] = {
    id(layout): codec
    for layout in {id(layout): layout
                   for layout in (*REQUEST_BODIES.values(), *RESPONSE_BODIES.values())}.values()
    if (codec := derive_fixed_codec(layout, _BODY_TYPES_BY_LAYOUT[id(layout)],
                                    lambda nested: _BODY_TYPES_BY_LAYOUT[id(nested)],
                                    (EnumAdapter, FlagsAdapter))) is not None}
#: Per (is_request, command): the fast decoder of its body, if its layout has one.
_FIXED_DECODERS: dict[tuple[bool, Command], Callable[[bytes], Any]] = {
    (is_request, command): _FIXED_CODECS[id(layout)].decode
    for is_request, layouts in ((True, REQUEST_BODIES), (False, RESPONSE_BODIES))
    for command, layout in layouts.items() if id(layout) in _FIXED_CODECS}

# --------------------------------------------------------------------------------------------
# The Python view
# --------------------------------------------------------------------------------------------

class _Message:
    """What Request and Response share: the typed body, checked against the command at
    construction."""

    __slots__ = ("body",)
    _is_request: ClassVar[bool]

    def _set_body(self, command: Command, body: ApduBody | None) -> None:
        expected = (REQUEST_BODY_TYPES if self._is_request else RESPONSE_BODY_TYPES)[command]
        if body is None and expected.layout is EMPTY:
            body = expected()
        if type(body) is not expected:
            kind = "request" if self._is_request else "response"
            given = "none" if body is None else f"a {type(body).__name__}"
            raise TypeError(f"a {Command(command).name} {kind} body is a {expected.__name__}, "
                            f"not {given}")
        object.__setattr__(self, "body", body)


@dataclass(frozen=True, init=False, repr=False, eq=False)
class Request(_Message):
    """A request to one device, its body typed: ``Request(Command.ADJUST_METER_BALANCE, 7,
    body=AdjustMeterBalanceRequest(adjustment_pence=-250))``; the body may be left out when
    the command's request body is :class:`Empty`. ``idempotency_key`` (16 bytes, or None)
    makes it a keyed request."""

    __slots__ = ("command", "idempotency_key", "invoke_id")
    _is_request = True
    command: Command
    invoke_id: int
    idempotency_key: bytes | None
    body: ApduBody

    def __init__(self, command: Command, invoke_id: int, body: ApduBody | None = None, *,
                 idempotency_key: bytes | None = None) -> None:
        object.__setattr__(self, "command", command)
        object.__setattr__(self, "invoke_id", invoke_id)
        object.__setattr__(self, "idempotency_key", idempotency_key)
        self._set_body(command, body)

    def __reduce__(self) -> tuple[Any, ...]:  # copy and pickle, as __init__ does
        return _request, (self.command, self.invoke_id, self.body, self.idempotency_key)

    def with_invoke_id(self, invoke_id: int) -> Request:
        """This request with another invoke id (``dataclasses.replace(request,
        invoke_id=...)``, without the generic field walk: once per request sent)."""
        return Request(self.command, invoke_id, self.body, idempotency_key=self.idempotency_key)

    def __eq__(self, other: object) -> bool:
        if type(other) is not Request:
            return NotImplemented
        return (self.command == other.command and self.invoke_id == other.invoke_id
                and self.idempotency_key == other.idempotency_key and self.body == other.body)

    def __repr__(self) -> str:
        key = (f", idempotency_key={self.idempotency_key.hex()}"
               if self.idempotency_key is not None else "")
        return (f"Request(command={self.command!r}, invoke_id={self.invoke_id!r}, "
                f"body={self.body!r}{key})")


def _request(command: Command, invoke_id: int, body: ApduBody,
             idempotency_key: bytes | None) -> Request:
    return Request(command, invoke_id, body, idempotency_key=idempotency_key)


@dataclass(frozen=True, init=False, repr=False, eq=False)
class Response(_Message):
    """A device's answer; ``body`` is typed for a SUCCESS response (and may be left out when
    the command's response body is :class:`Empty`) and None otherwise:
    ``Response(Command.READ_METER_BALANCE, 7, Status.SUCCESS, body=Balances(...))``."""

    __slots__ = ("command", "invoke_id", "status")
    _is_request = False
    command: Command
    invoke_id: int
    status: Status
    body: ApduBody | None

    def __init__(self, command: Command, invoke_id: int, status: Status,
                 body: ApduBody | None = None) -> None:
        object.__setattr__(self, "command", command)
        object.__setattr__(self, "invoke_id", invoke_id)
        object.__setattr__(self, "status", status)
        if status is Status.SUCCESS:
            self._set_body(command, body)
        elif body is not None:
            raise TypeError(f"a {Status(status).name} response has no body")
        else:
            object.__setattr__(self, "body", None)

    @property
    def ok(self) -> bool:
        return self.status is Status.SUCCESS

    def __reduce__(self) -> tuple[Any, ...]:  # copy and pickle, as __init__ does
        return Response, (self.command, self.invoke_id, self.status, self.body)

    def with_invoke_id(self, invoke_id: int) -> Response:
        """This response with another invoke id (``dataclasses.replace(response,
        invoke_id=...)``, without the generic field walk: once per response received)."""
        return Response(self.command, invoke_id, self.status, self.body)

    def __eq__(self, other: object) -> bool:
        if type(other) is not Response:
            return NotImplemented
        return (self.command == other.command and self.invoke_id == other.invoke_id
                and self.status == other.status and self.body == other.body)

    def __repr__(self) -> str:
        return (f"Response(command={self.command!r}, invoke_id={self.invoke_id!r}, "
                f"status={self.status!r}, body={self.body!r})")


def describe_fields(body: ApduBody) -> str:
    """A typed APDU body as one readable line for traces and transcripts: enums by name,
    EUI-64s (fields named ``*_eui64``) in their dashed text form, short printable ASCII as
    text, other bytes as hex (long ones shortened), nested records and lists in braces and
    brackets."""
    return _describe_mapping(_AS_FIELDS[type(body)](body))


def _describe_mapping(fields: Mapping[str, Any]) -> str:
    return ", ".join(f"{name}={_describe_value(name, value)}" for name, value in fields.items())


def _describe_value(name: str, value: Any) -> str:
    if isinstance(value, bytes):
        if name.endswith("eui64") and len(value) == 8:
            return format_eui64(value)
        if value and len(value) <= 32 and value.isascii() and value.decode().isprintable():
            return repr(value.decode())  # e.g. a UTRN's digits
        text = value.hex()
        return text if len(value) <= 20 else f"{text[:40]}...({len(value)} bytes)"
    if isinstance(value, Mapping):
        return "{" + _describe_mapping(value) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_describe_value(name, item) for item in value) + "]"
    if isinstance(value, enum.Enum):
        return str(value.name)
    return str(value)


def _build_body(layout: Construct, body: ApduBody, command: Command, kind: str) -> bytes:
    """``body`` as the bytes of ``command``'s ``kind`` ("request" or "response") body: the
    layout's fast codec builds it when it can, Construct otherwise (and says what is wrong)."""
    if layout is EMPTY:
        return b""
    fixed = _FIXED_CODECS.get(id(layout))
    if fixed is not None:
        data = fixed.encode(body)
        if data is not None:
            return data
    return build_body_with_construct(layout, body, f"{command.name} {kind}")


def build_body_with_construct(layout: Construct, body: ApduBody | Mapping[str, Any],
                              what: str) -> bytes:
    """The reference body encoder, Construct interpreted (the fast path must equal it):
    ``body`` (a typed body, or the same values as a mapping named as in the layout, which the
    codec tests draw from the layout) as ``layout``'s bytes; :class:`ApduError` naming
    ``what`` if it does not build."""
    as_fields = _AS_FIELDS.get(type(body))
    try:
        return layout.build(as_fields(body) if as_fields is not None else dict(body))
    except (ConstructError, KeyError, ValueError, TypeError) as error:
        raise ApduError(f"cannot encode {what}: {error}") from error


def _check_invoke_id(invoke_id: int) -> None:
    if not 0 <= invoke_id <= 0xFFFF:
        raise ApduError(f"invoke_id {invoke_id} is outside 0..65535")


def _command(code: int) -> Command:
    """``Command(code)``: a member is itself (calling an enum costs Python frames)."""
    return code if type(code) is Command else Command(code)


def encode_request(request: Request, *, invoke_id: int | None = None) -> bytes:
    """The bytes of a request APDU, carrying ``invoke_id`` if given (else the request's own).
    Raises :class:`ApduError` for a missing or out-of-range field."""
    command = _command(request.command)
    if invoke_id is None:
        invoke_id = request.invoke_id
    _check_invoke_id(invoke_id)
    key = request.idempotency_key
    if key is None:
        head = _REQUEST_HEAD.pack(ApduType.REQUEST, invoke_id, command)
    elif isinstance(key, bytes) and len(key) == IDEMPOTENCY_KEY_SIZE_BYTES:
        head = _KEYED_REQUEST_HEAD.pack(ApduType.KEYED_REQUEST, invoke_id, command, key)
    else:
        raise ApduError(f"an idempotency key is {IDEMPOTENCY_KEY_SIZE_BYTES} bytes, got {key!r}")
    return head + _build_body(REQUEST_BODIES[command], request.body, command, "request")


def encode_response(response: Response) -> bytes:
    """The bytes of a response APDU (the body only when the status is SUCCESS)."""
    status = response.status
    if type(status) is not Status:  # a member is itself; anything else is looked up
        status = Status(status)
    _check_invoke_id(response.invoke_id)
    head = _RESPONSE_HEAD.pack(ApduType.RESPONSE, response.invoke_id, response.command, status)
    if status is not Status.SUCCESS:
        return head
    command = _command(response.command)
    return head + _build_body(RESPONSE_BODIES[command], response.body, command, "response")


def _parse_body(is_request: bool, command: Command, data: bytes) -> ApduBody:
    fixed = _FIXED_DECODERS.get((is_request, command))
    if fixed is not None:
        body: ApduBody | None = fixed(data)
        if body is not None:
            return body
    return parse_body_with_construct(is_request, command, data)


def parse_body_with_construct(is_request: bool, command: Command, data: bytes) -> ApduBody:
    """The reference body decoder, Construct interpreted (the fast path must equal it): the
    typed request (``is_request``) or response body of ``command`` in ``data``, which it must
    use up; :class:`ApduError` saying what is wrong otherwise."""
    layout, from_parsed = _BODY_PARSERS[is_request, command]
    try:
        parsed = layout.parse(data)
    except ApduError:
        raise
    except ConstructError as error:
        kind = "request" if is_request else "response"
        raise ApduError(f"{command.name} {kind} body is malformed: {error}") from error
    return from_parsed(parsed.body)


#: Each enum's members by wire code (a dict lookup: calling the enum costs a Python frame).
_APDU_TYPES: dict[int, ApduType] = {int(member): member for member in ApduType}
_COMMANDS: dict[int, Command] = {int(member): member for member in Command}
_STATUSES: dict[int, Status] = {int(member): member for member in Status}


def decode_apdu(data: bytes) -> Request | Response:
    """Parse one APDU into a Request or Response with a typed ``body``. Raises
    :class:`ApduError` saying what is wrong: too short, unknown type, unknown command, unknown
    status, a body of the wrong length or with a bad value."""
    if len(data) < HEADER_SIZE_BYTES:
        raise ApduError(f"APDU of {len(data)} bytes is shorter than its {HEADER_SIZE_BYTES}-byte"
                        " header")
    type_code, invoke_id, command_code = _REQUEST_HEAD.unpack_from(data)
    apdu_type = _APDU_TYPES.get(type_code)
    if apdu_type is None:
        raise ApduError(f"APDU type 0x{type_code:02X} is neither request (0x01), keyed request"
                        " (0x02) nor response (0x81)")
    command = _COMMANDS.get(command_code)
    if command is None:
        raise UnknownCommandError(command_code, invoke_id)
    if apdu_type is ApduType.REQUEST:
        return Request(command, invoke_id,
                       body=_parse_body(True, command, data[HEADER_SIZE_BYTES:]))
    if apdu_type is ApduType.KEYED_REQUEST:
        if len(data) < _KEYED_REQUEST_HEAD.size:
            raise ApduError(f"keyed request APDU of {len(data)} bytes is shorter than its "
                            f"{_KEYED_REQUEST_HEAD.size}-byte header")
        key = _KEYED_REQUEST_HEAD.unpack_from(data)[3]
        return Request(command, invoke_id,
                       body=_parse_body(True, command, data[_KEYED_REQUEST_HEAD.size:]),
                       idempotency_key=key)
    if len(data) < _RESPONSE_HEAD.size:
        raise ApduError("response APDU has no status byte")
    status = _STATUSES.get(data[HEADER_SIZE_BYTES])
    if status is None:
        raise ApduError(f"status 0x{data[HEADER_SIZE_BYTES]:02X} is not a known status")
    if status is not Status.SUCCESS:
        if len(data) != _RESPONSE_HEAD.size:
            raise ApduError(f"{command.name} failure response carries a body")
        return Response(command, invoke_id, status)
    return Response(command, invoke_id, status,
                    body=_parse_body(False, command, data[_RESPONSE_HEAD.size:]))


class UnknownCommandError(ApduError):
    """A request named a command code this protocol does not define."""

    def __init__(self, command_code: int, invoke_id: int) -> None:
        super().__init__(f"command 0x{command_code:02X} is not a known command")
        self.command_code = command_code
        self.invoke_id = invoke_id


def failure_response_bytes(data: bytes, error: ApduError) -> bytes:
    """What a server answers to request bytes it could not decode: a response APDU with the
    request's invoke id and command code (0 where unreadable), status UNKNOWN_COMMAND for an
    unknown command code, else MALFORMED_REQUEST, and no body."""
    invoke_id = int.from_bytes(data[1:3], "big") if len(data) >= 3 else 0
    command_code = data[3] if len(data) >= 4 else 0
    status = (Status.UNKNOWN_COMMAND if isinstance(error, UnknownCommandError)
              else Status.MALFORMED_REQUEST)
    return _RESPONSE_HEAD.pack(ApduType.RESPONSE, invoke_id, command_code, status)
