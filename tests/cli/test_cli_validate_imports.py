"""
An offline ``provisioner validate`` loads only what it uses: not the logging stack
(structlog, rich), the async stack (anyio, asyncio, the HTTP pool), the live checks or the
XLSX writer. Each of those costs a user tenths of a second on every validate.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

WS = "Y2lzY29zcGFyazovL3VzL1BMQUNFLzhmYmQyYjA4LWYwYmEtNWVjMi1iNDlhLWY1NjUwNThlZjZhNA"

# Runs the command as ``python -m provisioner validate`` would, then lists the
# modules it loaded.
PROGRAM = """
import json, sys
from provisioner.cli import main
try:
    main(["validate", sys.argv[1]])
except SystemExit as stop:
    code = stop.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""

NOT_LOADED = (
    "structlog",
    "rich",
    "anyio",
    "asyncio",
    "aiohttp",
    "provisioner.webex.http",
    "openpyxl",
    "provisioner.live.preflight",
    "provisioner.run.engine",
    "provisioner.report.files",
    "provisioner.webex.client",
)


def loaded_by_validate(manifest: Path) -> tuple[int, set[str]]:
    finished = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(manifest)],
        capture_output=True,
        text=True,
        check=True,
    )
    answer = json.loads(finished.stdout.splitlines()[-1])
    return answer["code"], set(answer["modules"])


def test_offline_validate_of_a_csv_loads_no_heavy_module(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        f"mac,model,workspaceId\nAABBCCDDEE01,Cisco 8851,{WS}\n,Cisco 8875,{WS}\n"
    )
    code, modules = loaded_by_validate(manifest)
    assert code == 0
    assert "provisioner.intake.validation" in modules  # it did validate
    loaded = sorted(
        name
        for name in modules
        if any(name == heavy or name.startswith(heavy + ".") for heavy in NOT_LOADED)
    )
    assert loaded == []


def test_offline_validate_of_an_invalid_csv_loads_no_heavy_module(
    tmp_path: Path,
) -> None:
    """The problem path (messages, suggestions) stays light too."""
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"mac,model,workspaceId\nzz,Cisco 88511,{WS}\n")
    code, modules = loaded_by_validate(manifest)
    assert code == 1
    assert not {"structlog", "rich", "anyio", "aiohttp"} & modules
