"""The wire side of secure-emu: HDLC-style frames, the application messages (APDUs)
they carry, the sans-I/O stream decoder and link state machine, and the S1SP adapter.

Nothing in this package performs I/O except :mod:`protocol.transport`.
"""
