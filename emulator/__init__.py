"""The device side of secure-emu: emulated Secure electricity and gas meters, the comms hub
and its HAN, their clock, firmware, persistence, and serving them on a port.

Public helpers for a user's own tests: :func:`make_top_up_utrn` (a UTRN the emulated meter
accepts; :func:`make_utrn` for a chosen value class).
"""

from emulator.utrn import make_top_up_utrn, make_utrn

__all__ = ["make_top_up_utrn", "make_utrn"]
