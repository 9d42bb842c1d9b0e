"""
Make the README's pictures of a report: docs/report-sheet.png, docs/summary-sheet.png
and docs/codes-sheet.png.

A small rollout is run for real against the bundled emulator: ``run`` (one row for a
workspace that does not exist, one with a model nobody makes), the model fixed in
the XLSX as a person would, then ``rerun`` of that workbook. The rerun's report is
printed by LibreOffice to PDF and each sheet's first page rendered as a PNG, so the
pictures show what a printed report looks like.

Needs LibreOffice and poppler (tools for making the pictures, not for the project):

    apt-get install -y libreoffice-calc-nogui poppler-utils fonts-crosextra-carlito

Usage: ``.venv/bin/python scripts/report_pictures.py``
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path

import click
import openpyxl

from provisioner.emulator.config import DEFAULT_TOKEN
from provisioner.emulator.harness import run_in_subprocess

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PROVISIONER = Path(sys.executable).with_name("provisioner")
# Page → picture, its resolution, and the part of the page worth showing (x, y,
# width, height in pixels at that resolution).
PICTURES = {
    1: ("report-sheet.png", 150, (0, 62, 1650, 188)),
    2: ("summary-sheet.png", 100, (0, 30, 1100, 790)),
    3: ("codes-sheet.png", 110, (0, 40, 1210, 165)),
}
MISSING_WORKSPACE = "Y2lzY29zcGFyazovL3VzL1BMQUNFL25vLXN1Y2gtd29ya3NwYWNl"


def manifest_rows() -> list[dict[str, str]]:
    """
    Ten rows on three floors: phones by MAC for named workspaces, three activation
    codes (one for a person by email), and two mistakes.
    """
    org = json.loads(
        resources.files("provisioner.emulator")
        .joinpath("data", "org.json")
        .read_text(encoding="utf-8")
    )
    rooms = [w["displayName"] for w in org["workspaces"]]
    email = org["people"][3]["emails"][0]
    models = ["Cisco 8851", "Cisco 8865", "Cisco 8845", "Cisco 9861"]
    rows = []
    for n in range(7):
        rows.append(
            {
                "mac": f"00:45:1D:00:01:{n:02X}",
                "model": models[n % len(models)],
                "workspace": rooms[n],
                "tags": "lobby" if n % 2 else "floor-2;phones",
                "floor": f"Floor {n % 3 + 1}",
            }
        )
    # Three mistakes: an id of no workspace (the create fails), a name of none (the
    # row is invalid), a model nobody makes (invalid, fixed before the rerun).
    rows[1]["workspace"] = ""
    rows[1]["workspaceId"] = MISSING_WORKSPACE
    rows[3]["workspace"] = "Washington Lobby 99"
    rows[5]["model"] = "Cisco 9999"
    for n, owner in enumerate([rooms[20], rooms[21]]):
        rows.append(
            {"model": "Cisco 8865", "workspace": owner, "floor": f"Floor {n + 1}"}
        )
    rows.append({"model": "Cisco 8875", "personEmail": email, "floor": "Floor 3"})
    return rows


def write_manifest(path: Path) -> None:
    columns = [
        "mac",
        "model",
        "workspace",
        "workspaceId",
        "personEmail",
        "tags",
        "floor",
    ]
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in manifest_rows():
            writer.writerow({column: row.get(column, "") for column in columns})


def provision(folder: Path, base_url: str) -> Path:
    """
    Run, fix the model in the workbook, rerun; return the rerun's XLSX report.
    """
    env = {**os.environ, "WEBEX_ACCESS_TOKEN": DEFAULT_TOKEN}
    manifest = folder / "site.csv"
    write_manifest(manifest)
    report = folder / "site-report.xlsx"
    common = ["--base-url", base_url, "--group-by", "floor", "--quiet"]
    subprocess.run(
        [PROVISIONER, "run", manifest, "--report", report, *common],
        env=env,
        check=False,
    )
    book = openpyxl.load_workbook(report)
    sheet = book["Report"]
    header = [cell.value for cell in sheet[1]]
    sheet.cell(7, header.index("model") + 1).value = "Cisco 8851"
    book.save(report)
    subprocess.run([PROVISIONER, "rerun", report, *common], env=env, check=False)
    return folder / "site-report-rerun.xlsx"


def render(report: Path, folder: Path) -> None:
    """
    Print the workbook to PDF with LibreOffice, then each sheet's page to a PNG.
    """
    subprocess.run(
        ["soffice", "--headless", "--convert-to", "pdf", "--outdir", folder, report],
        check=True,
        capture_output=True,
    )
    pdf = folder / f"{report.stem}.pdf"
    DOCS.mkdir(exist_ok=True)
    for page, (name, dpi, (x, y, width, height)) in PICTURES.items():
        stem = folder / f"page{page}"
        subprocess.run(
            [
                "pdftoppm", "-png", "-r", str(dpi), "-f", str(page), "-l", str(page),
                "-x", str(x), "-y", str(y), "-W", str(width), "-H", str(height),
                "-singlefile", pdf, stem,
            ],
            check=True,
        )  # fmt: skip
        shutil.copyfile(f"{stem}.png", DOCS / name)
        click.echo(f"wrote {DOCS / name}")


def main() -> None:
    missing = [tool for tool in ("soffice", "pdftoppm") if not shutil.which(tool)]
    if missing:
        sys.exit(
            f"needs {' and '.join(missing)}: apt-get install -y "
            "libreoffice-calc-nogui poppler-utils fonts-crosextra-carlito"
        )
    with tempfile.TemporaryDirectory() as name, run_in_subprocess() as (_, base_url):
        folder = Path(name)
        render(provision(folder, base_url), folder)


if __name__ == "__main__":
    main()
