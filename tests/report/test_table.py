"""
TableFile: one table to CSV or XLSX, atomically, record by record.
"""

from __future__ import annotations

import csv
import fcntl
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest

from provisioner.report.table import TableFile, remove_stale_temporaries
from provisioner.report.xlsx import WIDTH_SAMPLE

HEADER = ("mac", "model", "status")


def records(count: int) -> list[list[str | int | None]]:
    return [[f"00AABB{n:06X}", "Cisco 8851", "deleted"] for n in range(count)]


# A writer that stops half-way through its table until it is killed.
HALF_WRITER = """
import sys
from pathlib import Path
from provisioner.report.table import atomic_file
with atomic_file(Path(sys.argv[1]), 0o644) as file:
    file.write(b"half a table")
    file.flush()
    print("writing", flush=True)
    sys.stdin.read()
"""


def gone_pid() -> int:
    """The number of a process that has ended (and been waited for)."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        check=True,
        text=True,
    )
    return int(done.stdout)


def temporaries(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f".{path.name}.*.tmp"))


@pytest.fixture(name="half_writer")
def _half_writer(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A process writing tmp_path/t.csv, stopped half-way (killed at the end)."""
    writer = subprocess.Popen(
        [sys.executable, "-c", HALF_WRITER, str(tmp_path / "t.csv")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline() == "writing\n"
        yield writer
    finally:
        writer.kill()
        writer.wait()
        for stream in (writer.stdin, writer.stdout):
            if stream is not None:
                stream.close()


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

    def test_csv_marks_would_be_formulas_as_text(self, tmp_path: Path) -> None:
        """Every CSV cell a spreadsheet would run (= + - @, tab, CR), the header's
        too, starts with '; numbers and other text are written as they are."""
        path = tmp_path / "t.csv"
        record = ["=1+1", "@Lobby", "-x", "+44", "\tx", "hq", "'quoted", 3, -4, None]

        with TableFile(path, ("=mac", "-b", *(f"c{n}" for n in range(8)))) as table:
            table.append(record)

        with path.open(newline="", encoding="utf-8") as file:
            header, line = list(csv.reader(file))
        assert header[:3] == ["'=mac", "'-b", "c0"]
        assert line == [
            "'=1+1",
            "'@Lobby",
            "'-x",
            "'+44",
            "'\tx",
            "hq",
            "'quoted",
            "3",
            "-4",
            "",
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


class TestStaleTemporaries:
    def test_a_killed_writers_file_goes_at_the_next_write_a_live_ones_stays(
        self, tmp_path: Path, half_writer: subprocess.Popen[str]
    ) -> None:
        """While its writer runs the temporary file is kept; once the writer is
        SIGKILLed, the next table written to the same path removes it."""
        path = tmp_path / "t.csv"
        (left,) = temporaries(path)

        kept_while_live = remove_stale_temporaries(path)
        half_writer.kill()
        half_writer.wait()
        with TableFile(path, HEADER) as table:
            table.append(["00AABB000001", "Cisco 8851", "kept"])

        assert kept_while_live == []
        assert f".{half_writer.pid}." in left.name
        assert not left.exists()
        assert temporaries(path) == []
        assert path.read_text(encoding="utf-8").splitlines()[1].startswith("00AABB")

    def test_a_locked_file_stays_though_its_process_is_gone(
        self, tmp_path: Path
    ) -> None:
        """The lock is the last word: a file someone holds (a writer this machine
        cannot see as a process) is kept; let go, it is removed."""
        path = tmp_path / "t.csv"
        left = tmp_path / f".t.csv.{gone_pid()}.0123abcd.tmp"
        left.write_bytes(b"half")
        holder = os.open(left, os.O_RDONLY)
        try:
            fcntl.flock(holder, fcntl.LOCK_EX)
            while_held = remove_stale_temporaries(path)
        finally:
            os.close(holder)

        assert while_held == []
        assert remove_stale_temporaries(path) == [left]
        assert not left.exists()

    def test_files_it_cannot_tell_or_that_are_not_its_own_are_kept(
        self, tmp_path: Path
    ) -> None:
        """A running process's file, one without a process number (older writers),
        another table's, and the table itself are never removed."""
        path = tmp_path / "t.csv"
        path.write_text("mac\n")
        kept = [
            tmp_path / f".t.csv.{os.getppid()}.0123abcd.tmp",
            tmp_path / ".t.csv.0123abcd.tmp",
            tmp_path / f".other.csv.{gone_pid()}.0123abcd.tmp",
        ]
        for file in kept:
            file.write_bytes(b"half")

        removed = remove_stale_temporaries(path)

        assert removed == []
        assert all(file.exists() for file in kept)
        assert path.read_text() == "mac\n"
