"""
words.py: counts that agree with their nouns and verbs.
"""

from __future__ import annotations

from provisioner.words import count_of, verb_for


def test_one_is_singular_and_every_other_count_plural() -> None:
    assert count_of(1, "row") == "1 row"
    assert count_of(0, "row") == "0 rows"
    assert count_of(2, "person", "people") == "2 people"
    assert count_of(1, "person", "people") == "1 person"


def test_the_verb_agrees_with_the_count() -> None:
    assert f"{count_of(1, 'row')} {verb_for(1, 'is', 'are')} invalid" == (
        "1 row is invalid"
    )
    assert f"{count_of(3, 'row')} {verb_for(3, 'is', 'are')} invalid" == (
        "3 rows are invalid"
    )
