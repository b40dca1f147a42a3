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
