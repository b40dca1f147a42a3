"""The device side of secure-emu: emulated Secure electricity and gas meters, the comms hub
and its HAN, their clock, firmware, persistence, and serving them on a port."""
