"""
Making many ``Row`` objects fast: a 100,000-row manifest makes 100,000 of them.

``Row`` is a frozen, slotted dataclass; its ``__init__`` sets each of its 14 fields
through ``object.__setattr__`` (and parses keywords), which took as long as all the
checks of a row. ``make_row`` sets the slots through their descriptors instead: the
same object, about three times as fast. It must set every field of ``Row`` and only
those, and ``Row`` must have no ``__post_init__`` for it to skip:
tests/intake/test_validation_caches.py checks both, so a change to ``Row`` that
forgets this module fails there.
"""

from __future__ import annotations

from provisioner.models import Problem, Row

__all__ = ["ROW_FIELDS", "make_row"]

ROW_FIELDS = (
    "number",
    "cells",
    "mac",
    "model",
    "roomos",
    "workspace_id",
    "person_id",
    "workspace_name",
    "person_email",
    "location",
    "tags",
    "org_id",
    "password",
    "problems",
)
"""The fields of ``Row``, in the order ``make_row`` takes their values."""

_new = object.__new__
(
    _set_number,
    _set_cells,
    _set_mac,
    _set_model,
    _set_roomos,
    _set_workspace_id,
    _set_person_id,
    _set_workspace_name,
    _set_person_email,
    _set_location,
    _set_tags,
    _set_org_id,
    _set_password,
    _set_problems,
) = (getattr(Row, name).__set__ for name in ROW_FIELDS)


def make_row(
    number: int,
    cells: tuple[str, ...],
    mac: str | None,
    model: str | None,
    roomos: bool,
    workspace_id: str | None,
    person_id: str | None,
    workspace_name: str | None,
    person_email: str | None,
    location: str | None,
    tags: tuple[str, ...],
    org_id: str | None,
    password: str | None,
    problems: tuple[Problem, ...],
) -> Row:
    """
    Return ``Row(number=number, cells=cells, ...)``, made without ``Row.__init__``.
    """
    row: Row = _new(Row)
    _set_number(row, number)
    _set_cells(row, cells)
    _set_mac(row, mac)
    _set_model(row, model)
    _set_roomos(row, roomos)
    _set_workspace_id(row, workspace_id)
    _set_person_id(row, person_id)
    _set_workspace_name(row, workspace_name)
    _set_person_email(row, person_email)
    _set_location(row, location)
    _set_tags(row, tags)
    _set_org_id(row, org_id)
    _set_password(row, password)
    _set_problems(row, problems)
    return row
