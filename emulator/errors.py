"""Typed errors raised by the emulator package.

Every error says, in words a user can act on, what was wrong: which profile key, which state.
This module must never import anything from the rest of the emulator (everyone imports it).
"""

from __future__ import annotations


class EmulatorError(Exception):
    """Base class of every error raised by :mod:`emulator`."""


class ProfileError(EmulatorError):
    """A profile (TOML table or mapping) has an unknown key, a wrong type or a bad value."""


class StateError(EmulatorError):
    """Saved device state cannot be restored, or an operation is impossible in this state."""


class UtrnError(EmulatorError):
    """A UTRN (top-up code) was refused before it touched any register."""


class UtrnMalformedError(UtrnError):
    """The UTRN is not 20 ASCII digits, or its token is outside the layout."""


class UtrnCheckDigitError(UtrnError):
    """The 20th digit is not the Verhoeff check digit of the first 19: a mistyped code."""


class UtrnWrongMeterError(UtrnError):
    """The token is well formed but was not made for this meter (or was altered)."""
