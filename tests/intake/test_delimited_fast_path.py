"""
A CSV without quotes is split on its line ends and separators instead of going
through the csv module: the table must be the one the csv module would give, for
every line end, blank line, stray character and separator.
"""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioner.errors import ManifestReadError
from provisioner.intake import sheet
from provisioner.intake.sheet import RawTable, read_table

HEADER = "mac,model,workspaceId"


def through_csv_module(path: Path, text: str, delimiter: str) -> RawTable:
    """
    The table the csv module makes of ``text``: what the fast path must equal.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    return sheet._table_from_rows(path, None, enumerate(reader, 1))


def read_both(text: str, delimiter: str = ",") -> tuple[object, object]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.csv"
        path.write_bytes(text.encode("utf-8"))
        try:
            fast: object = read_table(path)
        except ManifestReadError as error:
            fast = str(error)
        try:
            slow: object = through_csv_module(path, text, delimiter)
        except ManifestReadError as error:
            slow = str(error)
    return fast, slow


@pytest.mark.parametrize(
    "text",
    [
        f"{HEADER}\nAABBCCDDEE01,Cisco 8851,ws\n",
        f"{HEADER}\r\nAABBCCDDEE01,Cisco 8851,ws\r\n",
        f"{HEADER}\r\nAABBCCDDEE01,Cisco 8851,ws",
        f"{HEADER}\rAABBCCDDEE01,Cisco 8851,ws\r",  # old Mac line ends
        f"{HEADER}\r\nAABBCCDDEE01,Cisco 8851,ws\nAABBCCDDEE02,x,y\r\n",
        f"{HEADER}\r\nAABBCCDDEE01,Cisco 8851,ws\rAABBCCDDEE02,x,y\r\n",
        f"\n\n{HEADER}\n\n ,, \nAABBCCDDEE01 , Cisco 8851 ,ws,,\n\n",
        f"{HEADER}\na,b,c,d,e\nf\n",
        f"{HEADER}\na\x0bb\x0cc,\u2028d\x85,e\x1c\n",
        f"{HEADER}\n\n\n",
        "",
        "\r\n\r\n",
    ],
)
def test_table_equals_the_csv_modules(text: str) -> None:
    fast, slow = read_both(text)
    assert fast == slow


def test_rows_keep_the_numbers_a_spreadsheet_shows() -> None:
    """Blank lines count: the rows below keep their line numbers."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.csv"
        path.write_text(f"{HEADER}\r\n\r\nAABBCCDDEE01,Cisco 8851,ws\r\n")
        table = read_table(path)
    assert table.records == [(3, ("AABBCCDDEE01", "Cisco 8851", "ws"))]


def test_semicolon_sheet_takes_the_fast_path_too() -> None:
    text = "mac;model;workspaceId\r\nAABBCCDDEE01;Cisco 8851;ws\r\n"
    fast, slow = read_both(text, ";")
    assert fast == slow
    assert isinstance(fast, RawTable)
    assert fast.records == [(2, ("AABBCCDDEE01", "Cisco 8851", "ws"))]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.text(st.sampled_from("ab=;,\t \r\n\x0b\x85\u2028"), max_size=12),
        max_size=8,
    )
)
def test_any_unquoted_text_reads_as_the_csv_module_reads_it(lines: list[str]) -> None:
    text = "\n".join([HEADER, *lines])
    fast, slow = read_both(text)
    assert fast == slow


def test_a_quoted_sheet_still_reports_the_row_it_cannot_read() -> None:
    """The csv module's path: the row number of an unclosed quote."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.csv"
        path.write_text(f'{HEADER}\nAABBCCDDEE01,"Cisco 8851,ws\n\nx,y,z\n')
        with pytest.raises(ManifestReadError, match="row 2 cannot be read as CSV"):
            read_table(path)
