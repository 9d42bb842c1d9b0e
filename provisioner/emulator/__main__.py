"""
``python -m provisioner.emulator`` serves the emulator (see ``--help``).
"""

from __future__ import annotations

import sys

from provisioner.emulator.main import main

sys.exit(main())
