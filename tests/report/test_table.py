"""
TableFile: one table to CSV or XLSX, atomically, record by record.
"""

from __future__ import annotations

import csv
import stat
from pathlib import Path

import openpyxl
import pytest

from provisioner.report.table import TableFile
from provisioner.report.xlsx import WIDTH_SAMPLE

HEADER = ("mac", "model", "status")


def records(count: int) -> list[list[str | int | None]]:
    return [[f"00AABB{n:06X}", "Cisco 8851", "deleted"] for n in range(count)]


class TestTableFile:
    def test_csv_has_header_then_every_record(self, tmp_path: Path) -> None:
        """A CSV table is the header and the records, empty cells as empty text."""
        path = tmp_path / "t.csv"

        with TableFile(path, HEADER) as table:
            table.append(["00AABB000001", None, "kept"])
            table.append(["00AABB000002", "Cisco 8851", "deleted"])

        with path.open(newline="", encoding="utf-8") as file:
            rows = list(csv.reader(file))
        assert rows == [
            list(HEADER),
            ["00AABB000001", "", "kept"],
            ["00AABB000002", "Cisco 8851", "deleted"],
        ]
        assert table.rows == 2

    def test_csv_marks_would_be_formulas_as_text_when_asked(
        self, tmp_path: Path
    ) -> None:
        """With mark_formulas a cell a spreadsheet would run (= + - @) starts with
        '; numbers and other text are written as they are. Without it, as given."""
        marked, plain = tmp_path / "marked.csv", tmp_path / "plain.csv"
        record = ["=1+1", "@Lobby", "-x", "+44", "hq", 3]

        for path, mark in ((marked, True), (plain, False)):
            with TableFile(path, (*HEADER, "a", "b", "c"), mark_formulas=mark) as table:
                table.append(record)

        with marked.open(newline="", encoding="utf-8") as file:
            assert list(csv.reader(file))[1] == [
                "'=1+1",
                "'@Lobby",
                "'-x",
                "'+44",
                "hq",
                "3",
            ]
        with plain.open(newline="", encoding="utf-8") as file:
            assert list(csv.reader(file))[1] == [
                "=1+1",
                "@Lobby",
                "-x",
                "+44",
                "hq",
                "3",
            ]

    def test_xlsx_beyond_the_width_sample_keeps_order_filters_and_frozen_header(
        self, tmp_path: Path
    ) -> None:
        """More records than the width sample are all written, in order, under a frozen
        header whose filter covers the last row; cells are text and the status is
        coloured."""
        path = tmp_path / "t.xlsx"
        count = WIDTH_SAMPLE + 37

        with TableFile(path, HEADER, status_column=2, sheet="Devices") as table:
            for record in records(count):
                table.append(record)
            table.summary = [("Export", None), ("devices", count)]

        book = openpyxl.load_workbook(path)
        sheet = book["Devices"]
        values = list(sheet.iter_rows(values_only=True))
        assert values[0] == HEADER
        assert [list(v) for v in values[1:]] == records(count)
        assert sheet.freeze_panes == "A2"
        assert sheet.auto_filter.ref == f"A1:C{count + 1}"
        assert sheet["A2"].data_type == "s"
        assert sheet["C2"].fill.fgColor.rgb.endswith("C6EFCE")
        assert book.sheetnames == ["Devices", "Summary"]

    def test_xlsx_with_few_records_still_fits_and_filters(self, tmp_path: Path) -> None:
        """A table shorter than the width sample is written whole when the block ends."""
        path = tmp_path / "t.xlsx"

        with TableFile(path, HEADER) as table:
            table.append(["=cmd|'/c calc'!A1", "Cisco 8851", "kept"])

        sheet = openpyxl.load_workbook(path).active
        assert sheet is not None
        assert sheet["A2"].value == "=cmd|'/c calc'!A1"
        assert sheet["A2"].data_type == "s"
        assert sheet.auto_filter.ref == "A1:C2"

    @pytest.mark.parametrize("name", ["t.csv", "t.xlsx"])
    def test_failure_half_way_keeps_the_old_file(
        self, tmp_path: Path, name: str
    ) -> None:
        """An exception inside the block leaves the earlier file and no temporary."""
        path = tmp_path / name
        path.write_bytes(b"old")

        def write_then_fail() -> None:
            with TableFile(path, HEADER) as table:
                table.append(["00AABB000001", "Cisco 8851", "kept"])
                raise RuntimeError("stop")

        with pytest.raises(RuntimeError):
            write_then_fail()

        assert path.read_bytes() == b"old"
        assert [path] == list(tmp_path.iterdir())

    def test_secret_table_is_private(self, tmp_path: Path) -> None:
        """A table holding codes is created with mode 0600."""
        path = tmp_path / "t.csv"

        with TableFile(path, HEADER, secret=True) as table:
            table.append(["", "Cisco 8875", "kept"])

        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    def test_other_extension_is_refused(self, tmp_path: Path) -> None:
        """Only .csv and .xlsx are tables."""
        with pytest.raises(ValueError, match="neither .csv nor .xlsx"):
            TableFile(tmp_path / "t.txt", HEADER)
