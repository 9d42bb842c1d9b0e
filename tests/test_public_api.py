"""
The documented API is what ``__all__`` says, and the emulator stays independent.
"""

from __future__ import annotations

from pathlib import Path

import provisioner

PACKAGE = Path(provisioner.__file__).parent


def test_all_is_sorted_and_importable() -> None:
    """Every name in ``provisioner.__all__`` exists, and the list is sorted."""

    names = list(provisioner.__all__)

    assert sorted(names) == names
    assert [n for n in names if not hasattr(provisioner, n)] == []
