"""The device side of secure-emu: emulated Secure electricity and gas meters, the comms hub
and its HAN, their clock, firmware, persistence, and serving them on a port.

Importing this package registers the ``secure-emu://`` pyserial URL scheme
(:mod:`emulator.urlhandler`)."""

import serial as _serial

if "emulator.urlhandler" not in _serial.protocol_handler_packages:
    _serial.protocol_handler_packages.append("emulator.urlhandler")
