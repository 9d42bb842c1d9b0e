"""Rows as the offline checks build them from a table's cells, for intake tests."""

from __future__ import annotations

from pathlib import Path

from provisioner.intake.catalogue import Catalogue
from provisioner.intake.manifest import RawTable, build_manifest
from provisioner.models import Row

PATH = Path("m.csv")


def rows_of(
    columns: tuple[str, ...],
    *records: tuple[str, ...],
    catalogue: Catalogue | None = None,
) -> list[Row]:
    """Build the rows of a table with ``columns`` and ``records`` (row 2 onwards)."""
    table = RawTable(
        path=PATH,
        sheet=None,
        columns=columns,
        records=[(n, cells) for n, cells in enumerate(records, start=2)],
    )
    return list(build_manifest(table, catalogue=catalogue).rows)
