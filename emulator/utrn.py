"""UTRNs: the 20-digit top-up codes a customer types on the meter keypad.

A UTRN is 19 decimal digits of token followed by a Verhoeff check digit (computed with
python-stdnum's ``stdnum.verhoeff``). The 19 digits are a zero-padded decimal integer below
2**62 (so at most 4611686018427387903); bits, most significant first::

    61..38  binding tag (24 bits): the first 3 bytes of
            HMAC-SHA256(UTRN_BINDING_KEY, meter EUI-64 (8 bytes) || payload (5 bytes, big-endian))
    37..0   payload XOR mask, mask = low 38 bits of the first 5 bytes of
            HMAC-SHA256(UTRN_BINDING_KEY, b"mask" || meter EUI-64 || tag (3 bytes))

    payload bits: 37..14 counter (24 bits, 0..16777215)
                  13     value class (0 = pennies, 1 = pounds)
                  12..0  value (13 bits, 0..8191)

So a token is bound to one meter (the tag only checks out with that meter's EUI-64), any altered
digit that keeps the check digit right is caught by the tag (1 in 2**24 slips through), and
the counter and value are not readable by eye. The key is a product constant of this emulator,
not a secret: these codes protect against typing errors and mix-ups, not against attackers.

This module keeps no state (duplicates and lockout live in the meter) and never does I/O.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from dataclasses import dataclass

from stdnum import verhoeff

from emulator.errors import UtrnCheckDigitError, UtrnMalformedError, UtrnWrongMeterError
from protocol.eui64 import parse_eui64

__all__ = [
    "UTRN_BINDING_KEY",
    "UTRN_DIGITS",
    "UTRN_MAX_COUNTER",
    "UTRN_MAX_VALUE",
    "ParsedUtrn",
    "UtrnValueClass",
    "make_top_up_utrn",
    "make_utrn",
    "parse_utrn",
    "verhoeff_check_digit",
]

UTRN_DIGITS = 20
UTRN_TOKEN_DIGITS = 19
UTRN_BINDING_KEY = b"secure-emu UTRN binding key v1"
UTRN_MAX_COUNTER = (1 << 24) - 1
UTRN_MAX_VALUE = (1 << 13) - 1
_PAYLOAD_BITS = 38
_PAYLOAD_MASK = (1 << _PAYLOAD_BITS) - 1
_TAG_BITS = 24
_TOKEN_LIMIT = 1 << (_PAYLOAD_BITS + _TAG_BITS)


class UtrnValueClass(enum.IntEnum):
    """What one unit of a token's value is worth."""

    PENNIES = 0
    POUNDS = 1


#: Pence per unit of value, by value class.
PENCE_PER_VALUE_UNIT: dict[UtrnValueClass, int] = {
    UtrnValueClass.PENNIES: 1,
    UtrnValueClass.POUNDS: 100,
}


@dataclass(frozen=True)
class ParsedUtrn:
    """What a valid UTRN for this meter carries."""

    counter: int
    value_class: UtrnValueClass
    value: int

    @property
    def value_pence(self) -> int:
        return self.value * PENCE_PER_VALUE_UNIT[self.value_class]


def verhoeff_check_digit(digits: str) -> str:
    """The Verhoeff check digit of a string of decimal digits."""
    return str(verhoeff.calc_check_digit(digits))


def _check_eui64(meter_eui64: bytes) -> None:
    if not isinstance(meter_eui64, bytes | bytearray) or len(meter_eui64) != 8:
        raise ValueError(f"meter EUI-64 must be 8 bytes, got {meter_eui64!r}")


def _tag(meter_eui64: bytes, payload: int) -> int:
    message = bytes(meter_eui64) + payload.to_bytes(5, "big")
    digest = hmac.new(UTRN_BINDING_KEY, message, hashlib.sha256).digest()
    return int.from_bytes(digest[:3], "big")


def _mask(meter_eui64: bytes, tag: int) -> int:
    message = b"mask" + bytes(meter_eui64) + tag.to_bytes(3, "big")
    digest = hmac.new(UTRN_BINDING_KEY, message, hashlib.sha256).digest()
    return int.from_bytes(digest[:5], "big") & _PAYLOAD_MASK


def make_utrn(meter_eui64: bytes, counter: int, value_class: UtrnValueClass | int,
              value: int) -> str:
    """The 20-digit UTRN crediting ``value`` units of ``value_class`` to one meter.

    Raises ValueError for a counter outside 0..16777215 or a value outside 0..8191.
    """
    _check_eui64(meter_eui64)
    value_class = UtrnValueClass(value_class)
    if not 0 <= counter <= UTRN_MAX_COUNTER:
        raise ValueError(f"UTRN counter {counter} is outside 0..{UTRN_MAX_COUNTER}")
    if not 0 <= value <= UTRN_MAX_VALUE:
        raise ValueError(f"UTRN value {value} is outside 0..{UTRN_MAX_VALUE}")
    payload = (counter << 14) | (int(value_class) << 13) | value
    tag = _tag(meter_eui64, payload)
    token = (tag << _PAYLOAD_BITS) | (payload ^ _mask(meter_eui64, tag))
    digits = f"{token:0{UTRN_TOKEN_DIGITS}d}"
    return digits + verhoeff_check_digit(digits)


def make_top_up_utrn(meter_eui: str | bytes, counter: int, *, pence: int) -> str:
    """The UTRN that tops up the meter ``meter_eui`` (EUI-64 text or 8 bytes) by ``pence``,
    the ``counter``-th top-up (each counter is accepted once by the meter).

    Up to 8191 p the token counts pennies; above that it counts whole pounds, so ``pence``
    must then be a multiple of 100 (at most 819100 p). Raises ValueError naming the unit.
    """
    meter_eui64 = (bytes(meter_eui) if isinstance(meter_eui, bytes | bytearray)
                   else parse_eui64(meter_eui))
    if isinstance(pence, bool) or not isinstance(pence, int) or pence < 0:
        raise ValueError(f"a top-up is a whole number of pence >= 0, not {pence!r}")
    if pence <= UTRN_MAX_VALUE:
        return make_utrn(meter_eui64, counter, UtrnValueClass.PENNIES, pence)
    pence_per_pound = PENCE_PER_VALUE_UNIT[UtrnValueClass.POUNDS]
    if pence % pence_per_pound or pence // pence_per_pound > UTRN_MAX_VALUE:
        raise ValueError(
            f"a top-up of {pence} p cannot be one UTRN: up to {UTRN_MAX_VALUE} p in pence, "
            f"above that whole pounds up to {UTRN_MAX_VALUE * pence_per_pound} p")
    return make_utrn(meter_eui64, counter, UtrnValueClass.POUNDS, pence // pence_per_pound)


def parse_utrn(utrn: str | bytes, meter_eui64: bytes) -> ParsedUtrn:
    """Check and open a UTRN typed on (or sent to) the meter with this EUI-64.

    Raises, in this order: UtrnMalformedError (not 20 ASCII digits), UtrnCheckDigitError
    (Verhoeff check fails), UtrnMalformedError (token outside the layout), UtrnWrongMeterError
    (not made for this meter).
    """
    _check_eui64(meter_eui64)
    if isinstance(utrn, bytes | bytearray):
        try:
            utrn = bytes(utrn).decode("ascii")
        except UnicodeDecodeError:
            raise UtrnMalformedError("a UTRN must be 20 ASCII digits; it has non-ASCII bytes"
                                     ) from None
    if len(utrn) != UTRN_DIGITS or not all("0" <= c <= "9" for c in utrn):
        raise UtrnMalformedError(f"a UTRN must be exactly {UTRN_DIGITS} digits 0-9, got {utrn!r}")
    token_digits, check_digit = utrn[:UTRN_TOKEN_DIGITS], utrn[UTRN_TOKEN_DIGITS]
    if verhoeff_check_digit(token_digits) != check_digit:
        raise UtrnCheckDigitError(f"UTRN {utrn} fails its check digit: re-type it")
    token = int(token_digits)
    if token >= _TOKEN_LIMIT:
        raise UtrnMalformedError(f"UTRN {utrn} is not a token of this meter family")
    tag = token >> _PAYLOAD_BITS
    payload = (token & _PAYLOAD_MASK) ^ _mask(meter_eui64, tag)
    if tag != _tag(meter_eui64, payload):
        raise UtrnWrongMeterError(f"UTRN {utrn} was not issued for meter "
                                  f"{'-'.join(f'{b:02X}' for b in meter_eui64)}")
    return ParsedUtrn(counter=payload >> 14, value_class=UtrnValueClass((payload >> 13) & 1),
                      value=payload & UTRN_MAX_VALUE)
