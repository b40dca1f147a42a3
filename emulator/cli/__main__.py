"""``python -m emulator.cli``: the ``secure-emu`` command."""

import sys

from emulator.cli import main

sys.exit(main())
