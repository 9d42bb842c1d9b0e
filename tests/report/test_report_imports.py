"""
Writing a CSV report loads no XLSX writer: openpyxl costs a CSV-only run (``run
--report x.csv``) a fifth of its start-up, and only a workbook needs it.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

WS = "Y2lzY29zcGFyazovL3VzL1BMQUNFLzhmYmQyYjA4LWYwYmEtNWVjMi1iNDlhLWY1NjUwNThlZjZhNA"

# Writes a one-row report in a fresh interpreter, then lists the modules it loaded.
PROGRAM = """
import json, sys
from datetime import UTC, datetime
from pathlib import Path
from provisioner.intake.manifest import load_manifest
from provisioner.models import Outcome, RunStats, Status
from provisioner.report.files import write_report

manifest = load_manifest(Path(sys.argv[1]))
now = datetime.now(UTC)
stats = RunStats(started_at=now, finished_at=now, api_calls=2, rate_limited=0, retries=0)
outcomes = {2: Outcome(row=2, status=Status.CREATED, device_id="DEV2")}
write_report(manifest, outcomes, [Path(sys.argv[2])], stats)
print(json.dumps(sorted(sys.modules)))
"""


def test_a_csv_report_is_written_without_openpyxl(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"mac,model,workspaceId\nAABBCCDDEE01,Cisco 8851,{WS}\n")
    report = tmp_path / "report.csv"

    finished = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(manifest), str(report)],
        capture_output=True,
        text=True,
        check=True,
    )

    modules = set(json.loads(finished.stdout.splitlines()[-1]))
    with report.open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [(row["mac"], row["status"], row["deviceId"]) for row in rows] == [
        ("AABBCCDDEE01", "created", "DEV2")
    ]
    assert not {name for name in modules if name.split(".")[0] == "openpyxl"}
    assert "provisioner.report.xlsx" not in modules
