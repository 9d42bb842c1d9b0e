"""
Counting in words: "1 row", "2 rows". Pure.
"""

from __future__ import annotations

__all__ = ["count_of", "verb_for"]


def count_of(number: int, singular: str, plural: str | None = None) -> str:
    """
    ``number`` and the noun that agrees with it (``plural`` when not just an "s").
    """
    return f"{number} {singular if number == 1 else plural or singular + 's'}"


def verb_for(number: int, singular: str, plural: str) -> str:
    """
    The verb that agrees with ``number`` things ("is"/"are", "names"/"name").
    """
    return singular if number == 1 else plural
