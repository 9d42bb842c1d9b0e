"""
The mark that keeps a CSV cell a spreadsheet would run as a formula plain text.

Excel, LibreOffice and Google Sheets open a CSV cell that starts with ``=``, ``+``,
``-`` or ``@`` (or a tab or carriage return before one) as a formula, which can
fetch a URL or, in older Excel, start a program: CSV injection. Every CSV the tool
writes (an export of the org's devices, whose tags and display names anyone with a
device admin's rights may have typed; a run's or a rollback's report, forwarded to
whoever leads the rollout) puts a ``'`` before such a cell, the spreadsheets' own
mark for "this is text". The manifest reader (and so ``rerun`` of a report) takes
the mark off again, so the value read back is the value written. Both directions
live here so they cannot drift apart.
"""

from __future__ import annotations

__all__ = ["FORMULA_STARTS", "TEXT_MARK", "mark_as_text", "unmark_text", "unmarked"]

#: What a cell a spreadsheet runs as a formula starts with (OWASP's list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
TEXT_MARK = "'"
# What a cell that may need the mark starts with: one character each (a table marks
# every cell it writes, and most start with none of these).
_FIRST = frozenset((*FORMULA_STARTS, TEXT_MARK))


def mark_as_text(text: str) -> str:
    """
    Put the text mark before a cell a spreadsheet would run as a formula.

    A cell that looks marked already (``'=1+1`` as a value) is marked once more, so
    ``unmark_text`` gives back exactly the value, whatever it is.
    """
    if text[:1] not in _FIRST:
        return text
    return TEXT_MARK + text if _needs_mark(text) else text


def unmark_text(text: str) -> str | None:
    """
    The cell ``mark_as_text`` was given, when ``text`` is one it marked; else None.

    Only a mark before a formula's first character is taken off: any other cell
    starting with ``'`` was written so by a person, and stays as it is.
    """
    if text.startswith(TEXT_MARK) and _needs_mark(text[1:]):
        return text[1:]
    return None


def unmarked(text: str) -> str:
    """
    The value a CSV cell stands for: the cell ``mark_as_text`` was given when
    ``text`` is one it marked (``unmark_text``), else ``text`` as it is.
    """
    plain = unmark_text(text)
    return text if plain is None else plain


def _needs_mark(text: str) -> bool:
    return text.lstrip(TEXT_MARK).startswith(FORMULA_STARTS)
