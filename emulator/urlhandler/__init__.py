"""pyserial URL handlers of secure-emu: ``secure-emu://`` (see :mod:`.protocol_secure_emu`).

pyserial finds a handler for ``SCHEME://`` as the module ``protocol_SCHEME`` of a package in
``serial.protocol_handler_packages``; importing :mod:`emulator` appends this package there. The
scheme has a hyphen, which no Python file name may carry, so the module is also registered
under the name pyserial asks for.
"""

from __future__ import annotations

import sys

from emulator.urlhandler import protocol_secure_emu

sys.modules.setdefault(f"{__name__}.protocol_secure-emu", protocol_secure_emu)
