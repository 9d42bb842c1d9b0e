"""
A MAC the spreadsheet stored as a rounded number, end to end: invalid offline, and
still invalid live, in a run and in every rerun of its report, so no device is ever
made with digits the spreadsheet may have rounded. Judged by what the org holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from emulated import WORKSPACES, Emulator, invoke, read_report
from openpyxl import Workbook

from provisioner.emulator.harness import run_in_subprocess

ROUNDED = 112233000000  # Excel shows 1.12233E+11; the real MAC's last digits are gone
EXACT = "00451D000C02"


@pytest.fixture(name="emulator", scope="module")
def _emulator_process() -> Iterator[Emulator]:
    with run_in_subprocess() as (_process, url):
        yield Emulator(url)


@pytest.fixture(name="org")
def _org(emulator: Emulator) -> Emulator:
    emulator.reset()
    return emulator


@pytest.fixture(name="sheet")
def _sheet(tmp_path: Path) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["MAC", "Model", "workspaceId", "tags"])
    sheet.append([ROUNDED, "Cisco 8851", WORKSPACES[0], "lobby"])
    sheet.append([EXACT, "Cisco 8851", WORKSPACES[1], "lobby"])
    path = tmp_path / "site.xlsx"
    workbook.save(path)
    return path


def macs(org: Emulator) -> list[str]:
    return sorted(device["mac"] for device in org.devices())


def test_validate_live_keeps_the_rounded_mac_invalid(
    org: Emulator, sheet: Path
) -> None:
    result = invoke(["validate", str(sheet), "--live", "--base-url", org.base_url])

    assert result.exit_code == 1, result.output
    assert 'row 2, column "MAC"' in result.output
    assert "1 valid, 1 invalid" in result.output


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_no_run_or_rerun_makes_a_device_of_a_rounded_mac(
    org: Emulator, sheet: Path, tmp_path: Path, suffix: str
) -> None:
    report = tmp_path / f"report{suffix}"
    first = invoke(
        [
            "run",
            str(sheet),
            "--yes",
            "--report",
            str(report),
            "--base-url",
            org.base_url,
        ]
    )
    assert first.exit_code == 1, first.output
    assert macs(org) == [EXACT]

    again = tmp_path / f"rerun{suffix}"
    rerun = invoke(
        [
            "rerun",
            str(report),
            "--yes",
            "--report",
            str(again),
            "--base-url",
            org.base_url,
        ]
    )

    assert rerun.exit_code == 1, rerun.output
    assert macs(org) == [EXACT]
    if suffix == ".csv":
        (row, _) = read_report(again)
        assert (row["MAC"], row["status"]) == ("1.12233E+11", "invalid")
        assert "scientific notation" in row["error"]
