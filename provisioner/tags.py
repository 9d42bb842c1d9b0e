"""
What a tag mode makes of a device's tags: one rule for every command that sends tags.

Tags are always sent as a JSON Patch ``replace`` of the whole list: ``add`` becomes the
union of the device's tags and the row's, so sending it twice (a retry after a lost
answer, a resumed run, a renewal) never adds a tag twice.
"""

from __future__ import annotations

from collections.abc import Sequence

from provisioner.models import TagMode

__all__ = ["tags_to_send"]


def tags_to_send(
    current: Sequence[str], wanted: Sequence[str], mode: TagMode
) -> tuple[str, ...] | None:
    """
    The full tag list to ``replace`` on the device, or None when no call is needed.

    None when the row names no tags (an empty cell never touches the device's tags,
    whatever the mode) or when the device already carries exactly the list.
    """
    if not wanted:
        return None
    if mode is TagMode.REPLACE:
        target = tuple(dict.fromkeys(wanted))
    else:
        target = tuple(dict.fromkeys((*current, *wanted)))
    return None if target == tuple(current) else target
