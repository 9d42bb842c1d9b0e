"""
Tests for the tag rule every command shares (``provisioner.tags``).
"""

from __future__ import annotations

import pytest

from provisioner.models import TagMode
from provisioner.tags import tags_to_send


class TestTagsToSend:
    @pytest.mark.parametrize(
        ("current", "wanted", "mode", "expected"),
        [
            ((), (), TagMode.ADD, None),
            ((), ("a",), TagMode.ADD, ("a",)),
            (("x",), ("a", "x"), TagMode.ADD, ("x", "a")),
            (("x", "a"), ("a",), TagMode.ADD, None),
            (("x",), ("a",), TagMode.REPLACE, ("a",)),
            (("a",), ("a",), TagMode.REPLACE, None),
            ((), ("a", "a"), TagMode.REPLACE, ("a",)),
            (("x",), (), TagMode.REPLACE, None),  # an empty cell is not "no tags"
        ],
    )
    def test_union_or_replacement(
        self,
        current: tuple[str, ...],
        wanted: tuple[str, ...],
        mode: TagMode,
        expected: tuple[str, ...] | None,
    ) -> None:
        """add sends the union, replace the row's tags, and nothing when already so."""

        assert tags_to_send(current, wanted, mode) == expected
