"""
A corpus of malformed manifests, each through ``provisioner validate``: the right exit
code, a message that says what to do, and never a traceback.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import Workbook

from provisioner.cli import main

WS = "Y2lzY29zcGFyazovL3VzL1BMQUNFLzhmYmQyYjA4LWYwYmEtNWVjMi1iNDlhLWY1NjUwNThlZjZhNA"
WS2 = "Y2lzY29zcGFyazovL3VzL1BMQUNFLzhhYTU2NDk5LTEwY2QtNTIzNi05ZDdmLWUzOGNlMDE3NWZkMQ"
PERSON = (
    "Y2lzY29zcGFyazovL3VzL1BFT1BMRS8wZDA2MTJjMy1jMzM0LTUyMzYtYjJlNi0zMTAzMGQ1MmJiODM"
)
GOOD = f"AABBCCDDEE01,Cisco 8851,{WS},,lobby"
HEADER = "mac,model,workspaceId,personId,tags"

Build = Callable[[Path], Path]


@dataclass(frozen=True)
class Case:
    build: Build
    exit_code: int
    fragments: tuple[str, ...]
    args: tuple[str, ...] = ()


def csv_file(text: str, *, name: str = "m.csv", encoding: str = "utf-8") -> Build:
    def build(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(text.encode(encoding))
        return path

    return build


def raw_file(data: bytes, name: str) -> Build:
    def build(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path

    return build


def xlsx_file(
    *sheets: tuple[str, list[list[object]]], merge: str | None = None
) -> Build:
    def build(folder: Path) -> Path:
        workbook = Workbook()
        workbook.remove(workbook.active)
        for title, rows in sheets:
            sheet = workbook.create_sheet(title)
            for row in rows:
                sheet.append(row)
            if merge:
                sheet.merge_cells(merge)
        path = folder / "m.xlsx"
        workbook.save(path)
        return path

    return build


def rows(*lines: str, header: str = HEADER) -> str:
    return "\n".join([header, *lines]) + "\n"


def xlsx_rows(*lines: list[object]) -> list[list[object]]:
    return [HEADER.split(","), *[list(line) for line in lines]]


def corrupt_xlsx(folder: Path) -> Path:
    path = folder / "m.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "not a workbook")
    return path


def folder_path(folder: Path) -> Path:
    path = folder / "manifest.csv"
    path.mkdir()
    return path


def xlsx_named_csv(folder: Path) -> Path:
    built = xlsx_file(("S", xlsx_rows(GOOD.split(","))))(folder)
    return built.rename(folder / "m.csv")


CORPUS: dict[str, Case] = {
    "latin-1 csv": Case(
        csv_file(
            rows(GOOD + ",", f"AABBCCDDEE02,Cisco 8851,{WS},,café"), encoding="latin-1"
        ),
        2,
        ("line 3 is not UTF-8 text (byte 0xE9)", "CSV UTF-8 (Comma delimited)"),
    ),
    "utf-16 with bom": Case(
        csv_file(rows(GOOD), encoding="utf-16"), 2, ("UTF-16", "CSV UTF-8")
    ),
    "utf-16 without bom": Case(
        csv_file(rows(GOOD), encoding="utf-16-le"), 2, ("UTF-16",)
    ),
    "utf-8 bom is fine": Case(
        csv_file("\ufeff" + rows(GOOD)), 0, ("1 row, 1 valid, 0 invalid",)
    ),
    "missing model column": Case(
        csv_file(rows(f"AABBCCDDEE01,{WS}", header="mac,workspaceId")),
        2,
        ("no model column", 'Columns found: "mac", "workspaceId"', "Expected: model"),
    ),
    "missing owner columns": Case(
        csv_file(rows("AABBCCDDEE01,Cisco 8851,Lobby", header="MAC,Model,Owner")),
        2,
        (
            "no owner (workspaceId, personId, workspace or personEmail) column",
            'Columns found: "MAC", "Model", "Owner"',
        ),
    ),
    "duplicated header": Case(
        csv_file(rows(GOOD + ",AA", header=HEADER + ",MAC Address")),
        2,
        ('columns "mac" and "MAC Address" both give the mac', "keep one of them"),
    ),
    "merged title above the header": Case(
        xlsx_file(
            ("Devices", [["Rollout wave 3"], *xlsx_rows(GOOD.split(","))]),
            merge="A1:E1",
        ),
        2,
        (
            "the header must be the first row, but it seems to be row 2",
            '"Rollout wave 3" (a title?)',
        ),
    ),
    "data on a second sheet": Case(
        xlsx_file(
            ("Cover", [["Rollout wave 3"]]), ("Devices", xlsx_rows(GOOD.split(",")))
        ),
        2,
        ('the devices seem to be on sheet "Devices": pass --sheet "Devices"',),
    ),
    "missing sheet": Case(
        xlsx_file(("Cover", [["x"]]), ("Devices", xlsx_rows(GOOD.split(",")))),
        2,
        ('there is no sheet "Phones"; the sheets are "Cover", "Devices"',),
        ("--sheet", "Phones"),
    ),
    "extra sheets with --sheet": Case(
        xlsx_file(("Cover", [["x"]]), ("Devices", xlsx_rows(GOOD.split(",")))),
        0,
        ('(sheet "Devices"): 1 row, 1 valid',),
        ("--sheet", "Devices"),
    ),
    "uncalculated formula": Case(
        xlsx_file(
            ("S", xlsx_rows(['="AABB"&"CCDDEE01"', "Cisco 8851", WS, None, None]))
        ),
        1,
        ('row 2, column "mac", value "="AABB"&"CCDDEE01"": this cell holds a formula',),
    ),
    "numeric mac lost its zeros": Case(
        xlsx_file(("S", xlsx_rows([1122334455, "Cisco 8851", WS, None, None]))),
        1,
        ('row 2, column "mac", value "1122334455": this MAC has only 10 digits',),
    ),
    "scientific notation mac": Case(
        csv_file(
            rows(
                GOOD,
                "",
                "",
                "",
                "",
                f"1.23457E+11,Cisco 8851,{WS},,",
                header=HEADER.replace("mac", "MAC Address"),
            )
        ),
        1,
        (
            (
                'row 7, column "MAC Address", value "1.23457E+11": the spreadsheet turned '
                "this MAC into a number in scientific notation; format the column as Text "
                "and re-enter the MAC"
            ),
        ),
    ),
    "blank rows in the middle": Case(
        csv_file(
            rows(
                GOOD,
                "",
                ",,,,",
                f"AABBCCDDEE02,Cisco 8851,{WS},,",
                "",
                f"AABBCCDDEE03,Cisco 8851,{WS},,",
            )
        ),
        0,
        ("3 rows, 3 valid, 0 invalid",),
    ),
    "both owners": Case(
        csv_file(rows(f"AABBCCDDEE01,Cisco 8851,{WS},{PERSON},")),
        1,
        ('row 2, column "personId"', "both a workspaceId and a personId"),
    ),
    "neither owner": Case(
        csv_file(rows("AABBCCDDEE01,Cisco 8851,,,")),
        1,
        ('row 2, column "workspaceId", empty: no owner',),
    ),
    "unknown model": Case(
        csv_file(rows(f"AABBCCDDEE01,Cisco 8815,{WS},,")),
        1,
        (
            (
                'value "Cisco 8815": not a model the bundled catalogue knows: did you '
                'mean "Cisco 8851"'
            ),
            "validate --live` checks it against the org's own list",
        ),
    ),
    "duplicate macs": Case(
        csv_file(rows(GOOD, f"aa:bb:cc:dd:ee:01,Cisco 8865,{WS2},,")),
        1,
        ("row 2, ", "is also on row 3;", "row 3, ", "is also on row 2;", "2 invalid"),
    ),
    "non-ascii cells": Case(
        csv_file(
            rows(f"AABBCCDDEE01,Cisco 8851,{WS},,Zürich;ロビー;🚀", header=HEADER)
        ),
        0,
        ("1 row, 1 valid",),
    ),
    "empty file": Case(csv_file(""), 2, ("the file is empty",)),
    "only blank lines": Case(csv_file("\n \n,,,\n"), 2, ("the file is empty",)),
    "header only": Case(csv_file(rows()), 2, ("no device rows are below it",)),
    "header only xlsx": Case(
        xlsx_file(("S", xlsx_rows())), 2, ("no device rows are below it",)
    ),
    "wrong extension": Case(
        csv_file(rows(GOOD), name="m.txt"),
        2,
        ("not a manifest file type (.txt)", ".csv"),
    ),
    "not a spreadsheet": Case(
        raw_file(b"%PDF-1.7 binary junk \x00\x01\x02", "m.xlsx"),
        2,
        ("not an Excel workbook",),
    ),
    "binary named csv": Case(
        raw_file(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "m.csv"),
        2,
        ("not a text file",),
    ),
    "xlsx named csv": Case(xlsx_named_csv, 2, ("rename it to .xlsx",)),
    "old xls": Case(
        raw_file(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "m.xls"),
        2,
        (".xls files are not supported",),
    ),
    "corrupt xlsx": Case(corrupt_xlsx, 2, ("cannot be opened as an Excel workbook",)),
    "missing file": Case(
        lambda folder: folder / "gone.csv", 2, ("gone.csv: no such file",)
    ),
    "a folder": Case(folder_path, 2, ("is a folder",)),
    "unquoted comma shifts cells": Case(
        csv_file(
            rows(
                f"AABBCCDDEE01,Cisco 8851,{WS},,lobby,floor 2",
                header="mac,model,workspaceId,personId,tags",
            )
        ),
        1,
        ('column "column F (no header)", value "floor 2"', "unquoted comma"),
    ),
    "roomos model with mac": Case(
        csv_file(rows(f"AABBCCDDEE01,Room Kit,{WS},,")),
        1,
        ("the Cisco Room Kit is a RoomOS device: clear the MAC",),
    ),
    "8875 by mac": Case(csv_file(rows(f"AABBCCDDEE01,Cisco 8875,{WS},,")), 0, ()),
    "unclosed quote": Case(
        csv_file(rows(GOOD, f'AABBCCDDEE02,"Cisco 8851,{WS},,', GOOD)),
        2,
        (
            "row 3 cannot be read as CSV (unexpected end of data); check its double quotes",
        ),
    ),
    "text after a closing quote": Case(
        csv_file(rows(GOOD, f'AABBCCDDEE02,"Cisco" 8851,{WS},,')),
        2,
        ("row 3 cannot be read as CSV", 'a quoted value must end with a "'),
    ),
    "semicolon csv": Case(
        csv_file(rows(GOOD.replace(",", ";"), header=HEADER.replace(",", ";"))),
        0,
        ("1 row, 1 valid",),
    ),
}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus(name: str, tmp_path: Path) -> None:
    """Each malformed manifest gets its exit code and message, and no traceback."""
    case = CORPUS[name]
    path = case.build(tmp_path)

    result = CliRunner().invoke(main, ["validate", str(path), *case.args])

    assert result.exit_code == case.exit_code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    for fragment in case.fragments:
        assert fragment in result.output


def test_corpus_is_big_enough() -> None:
    """The corpus holds at least 25 distinct malformed manifests."""
    malformed = [name for name, case in CORPUS.items() if case.exit_code != 0]

    assert len(malformed) >= 25


def test_password_never_echoed(tmp_path: Path) -> None:
    """A row with a password and a problem prints the mask, never the password."""
    path = csv_file(
        rows(
            f"AABBCCDDEE0G,Yealink T54W,{WS},,,Hunter2-secret",
            header=HEADER + ",password",
        ),
    )(tmp_path)

    result = CliRunner().invoke(main, ["validate", str(path)])

    assert result.exit_code == 1
    assert "Hunter2-secret" not in result.output
