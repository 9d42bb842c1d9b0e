"""
Ctrl-C that no command has taken over ends the command with one sentence and exit 130.

The one place a ``KeyboardInterrupt`` is turned into words: around the CLI's own
imports (``provisioner.cli``), and around everything the ``provisioner`` group does
(reading its flags, importing a command's module, the command itself: its manifest,
its first API reads, its confirmation, its report). A run's own signal watcher takes
Ctrl-C over once its rows are about to start; this is what answers before that, and
after it (while the report is written).

Imports the standard library only (and ``exit_codes``, which imports nothing): it
guards the import of ``click``, so it comes first and costs next to nothing.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from provisioner.cli.exit_codes import EXIT_INTERRUPTED

__all__ = ["INTERRUPTED_MESSAGE", "ends_on_ctrl_c"]

INTERRUPTED_MESSAGE = (
    "Interrupted. Nothing more was started; whatever finished is saved, and the same "
    "command continues from there."
)


@contextlib.contextmanager
def ends_on_ctrl_c() -> Iterator[None]:
    """
    Run the block; a ``KeyboardInterrupt`` inside it says ``INTERRUPTED_MESSAGE`` on
    stderr and exits 130, instead of a traceback (or click's "Aborted!" and exit 1).
    """
    try:
        yield
    except KeyboardInterrupt:
        with contextlib.suppress(OSError, ValueError):  # stderr may be gone
            # A newline first: the ^C a terminal echoes ends the line above.
            sys.stderr.write(f"\n{INTERRUPTED_MESSAGE}\n")
            sys.stderr.flush()
        raise SystemExit(EXIT_INTERRUPTED) from None
