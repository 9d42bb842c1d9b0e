"""
The exit codes of every command: the contract of ``shared/design.md``.

0 every row ended well, 1 at least one row failed or was invalid, 2 nothing could start
(unusable manifest, bad flags, authentication refused), 130 interrupted after saving state.
"""

from __future__ import annotations

__all__ = ["EXIT_FAILED_ROWS", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_UNUSABLE"]

EXIT_OK = 0
EXIT_FAILED_ROWS = 1
EXIT_UNUSABLE = 2
EXIT_INTERRUPTED = 130
