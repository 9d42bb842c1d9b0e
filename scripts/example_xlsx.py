"""
Write ``manifests/example.xlsx`` from ``manifests/example.csv``: the same rows, as a workbook.

Run it after editing the CSV (``.venv/bin/python scripts/example_xlsx.py``); a test
checks that the two hold the same cells. Every cell is written as Text, the way a
person should format a MAC column in Excel, so nothing is turned into a number.
"""

from __future__ import annotations

import csv
from pathlib import Path

import click
from openpyxl import Workbook
from openpyxl.styles import Font

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "manifests" / "example.csv"
TARGET = ROOT / "manifests" / "example.xlsx"
WIDTHS = {
    "mac": 20,
    "model": 26,
    "workspaceId": 44,
    "personId": 44,
    "workspace": 24,
    "location": 22,
    "personEmail": 34,
    "tags": 22,
    "password": 20,
    "notes": 40,
}


def main() -> None:
    with SOURCE.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Devices"
    header, *records = rows
    sheet.append(header)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for record in records:
        sheet.append(record)
    for column, name in enumerate(header, start=1):
        letter = sheet.cell(row=1, column=column).column_letter
        sheet.column_dimensions[letter].width = WIDTHS.get(name, 18)
        for (cell,) in sheet.iter_rows(min_row=2, min_col=column, max_col=column):
            cell.number_format = "@"
            if cell.value == "":
                cell.value = None
    sheet.freeze_panes = "A2"
    workbook.save(TARGET)
    click.echo(f"wrote {TARGET.relative_to(ROOT)}: {len(records)} rows")


if __name__ == "__main__":
    main()
