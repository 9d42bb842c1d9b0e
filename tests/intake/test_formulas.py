"""
formulas.py: the text mark a CSV export or report puts before a would-be formula, and
its undoing.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisioner.intake.formulas import (
    FORMULA_STARTS,
    mark_as_text,
    unmark_text,
    unmarked,
)


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+44 20 7946", "'+44 20 7946"),
        ("-lobby", "'-lobby"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1+1", "'\t=1+1"),
        ("'=1+1", "''=1+1"),
        ("lobby", "lobby"),
        ("'quoted", "'quoted"),
        ("", ""),
    ],
)
def test_a_would_be_formula_is_marked_as_text(value: str, written: str) -> None:
    """A cell starting = + - @ (or a tab or CR) gets a ' before it; so does one
    that would otherwise read as marked; any other cell is written as it is."""
    assert mark_as_text(value) == written


def test_a_cell_a_person_starts_with_a_quote_is_not_a_mark() -> None:
    """Only a ' before a formula's first character is a mark."""
    assert unmark_text("'quoted") is None
    assert unmark_text("lobby") is None


@given(st.text())
def test_every_value_reads_back_as_written(value: str) -> None:
    """Whatever the value, the marked cell starts no formula and reads back as the
    value; an unmarked one is not taken for marked."""
    written = mark_as_text(value)

    assert not written.startswith(FORMULA_STARTS)
    if written == value:
        assert unmark_text(written) is None
    else:
        assert unmark_text(written) == value


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("'=1+1", "=1+1"),
        ("'-5", "-5"),
        ("''-x", "'-x"),
        ("-5", "-5"),
        ("'quoted", "'quoted"),
        ("", ""),
    ],
)
def test_unmarked_is_the_value_a_cell_stands_for(cell: str, value: str) -> None:
    """A marked cell stands for the value it marks; any other for itself."""
    assert unmarked(cell) == value


@given(st.text())
def test_unmarked_undoes_the_mark(value: str) -> None:
    """Whatever the value, the cell written for it stands for it."""
    assert unmarked(mark_as_text(value)) == value
