"""
``provisioner validate``: problems row by row, a summary, and the exit code.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from paths import MANIFESTS

from provisioner.cli import main
from provisioner.cli.validate import format_problem, render_validation, row_problems
from provisioner.intake.manifest import load_manifest
from provisioner.models import Outcome, Problem, RunStats, Status
from provisioner.report.files import write_report

WS = "Y2lzY29zcGFyazovL3VzL1BMQUNFLzhmYmQyYjA4LWYwYmEtNWVjMi1iNDlhLWY1NjUwNThlZjZhNA"
PERSON = (
    "Y2lzY29zcGFyazovL3VzL1BFT1BMRS8wZDA2MTJjMy1jMzM0LTUyMzYtYjJlNi0zMTAzMGQ1MmJiODM"
)


def _write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["example.csv", "example.xlsx"])
def test_examples_validate_cleanly(name: str) -> None:
    """The shipped examples exit 0 with a summary of onboarding, owners and models."""
    result = CliRunner().invoke(main, ["validate", str(MANIFESTS / name)])

    assert result.exit_code == 0, result.output
    assert "48 rows, 48 valid, 0 invalid" in result.output
    assert "onboarding: 37 by MAC, 11 by activation code" in result.output
    assert "owners: 24 rows for 24 workspaces, 24 rows for 23 people" in result.output
    assert "8 rows name their owner by workspace name or email" in result.output
    assert "models: Cisco 8851 ×4" in result.output
    assert "Cisco Room Kit ×1" in result.output


def test_owners_are_counted_per_org_and_location(tmp_path: Path) -> None:
    """A "Lobby" in two customer orgs, or in two locations of one, is two workspaces."""
    org_a = "Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi8xMTExMTExMQ"
    org_b = "Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi8yMjIyMjIyMg"
    path = _write(
        tmp_path / "partner.csv",
        "mac,model,workspace,location,personEmail,orgId",
        f"0A0000000001,Cisco 8851,Lobby,,,{org_a}",
        f"0A0000000002,Cisco 8851,Lobby,,,{org_a}",
        f"0A0000000003,Cisco 8851,Lobby,,,{org_b}",
        f"0A0000000004,Cisco 8851,Lobby,East,,{org_b}",
        f"0A0000000005,Cisco 8851,,,ann@a.example,{org_a}",
        f"0A0000000006,Cisco 8851,,,ANN@a.example,{org_a}",
        f"0A0000000007,Cisco 8851,,,ann@a.example,{org_b}",
    )

    result = CliRunner().invoke(main, ["validate", str(path)])

    assert result.exit_code == 0, result.output
    assert "owners: 4 rows for 3 workspaces, 3 rows for 2 people" in result.output


def test_invalid_rows_exit_1_with_problems_before_summary(tmp_path: Path) -> None:
    """Problems are printed one per line, in row order, before the summary; exit 1."""
    path = _write(
        tmp_path / "m.csv",
        "MAC Address,Model,Workspace ID,Person ID",
        f"AABBCCDDEE01,Cisco 8851,{WS},",
        f"AABBCCDDEE02,Cisco 9999,{WS},",
        f"1.23457E+11,Cisco 8851,{WS},",
    )

    result = CliRunner().invoke(main, ["validate", str(path)])
    lines = result.output.splitlines()

    assert result.exit_code == 1
    assert lines[0].startswith(
        'row 3, column "Model", value "Cisco 9999": not a model the bundled '
        "catalogue knows"
    )
    assert "`provisioner validate --live` checks it against the org's own" in lines[0]
    assert lines[1].startswith('row 4, column "MAC Address", value "1.23457E+11"')
    assert f"{path}: 3 rows, 1 valid, 2 invalid" in lines
    assert (
        lines[-1]
        == "2 rows to fix; a run skips invalid rows and reports them as invalid"
    )


def test_no_mac_column_is_said_in_the_summary(tmp_path: Path) -> None:
    """A sheet without a mac column is summarised as all activation-code rows."""
    path = _write(tmp_path / "m.csv", "model,personId", f"Cisco 8851,{PERSON}")

    result = CliRunner().invoke(main, ["validate", str(path)])

    assert result.exit_code == 0
    assert "no MAC column, so every row gets an activation code" in result.output


def test_format_problem() -> None:
    """A problem renders as row, column, value and message; long values are cut."""
    short = format_problem(
        7, Problem(column="MAC Address", value="1.2E+11", message="fix it")
    )
    long = format_problem(2, Problem(column="c", value="x" * 100, message="m"))
    empty = format_problem(
        3, Problem(column="workspaceId", value="", message="no owner")
    )

    assert short == 'row 7, column "MAC Address", value "1.2E+11": fix it'
    assert long == 'row 2, column "c", value "' + "x" * 59 + '…": m'
    assert empty == 'row 3, column "workspaceId", empty: no owner'


def test_render_takes_problems_from_elsewhere(tmp_path: Path) -> None:
    """Problems merged in from another check count the row as invalid."""
    manifest = load_manifest(
        _write(tmp_path / "m.csv", "model,workspaceId", f"8851,{WS}")
    )
    problems = dict(row_problems(manifest))
    problems[2] = (
        Problem(column="workspaceId", value=WS, message="no such workspace"),
    )

    lines = render_validation(manifest, problems)

    assert row_problems(manifest) == {}
    assert (
        lines[0]
        == f'row 2, column "workspaceId", value "{WS[:59]}…": no such workspace'
    )
    assert f"{tmp_path / 'm.csv'}: 1 row, 0 valid, 1 invalid" in lines


def test_names_are_pointed_to_the_live_checks_until_they_ran(tmp_path: Path) -> None:
    """Offline, rows naming owners by name are told that --live looks them up; once
    the live checks ran (and resolved some), that advice is not repeated."""
    manifest = load_manifest(
        _write(
            tmp_path / "m.csv",
            "mac,model,workspace,personEmail",
            "0A0000000001,Cisco 8851,Lobby,",
            "0A0000000002,Cisco 8851,,a@example.com",
        )
    )

    offline = render_validation(manifest, {})
    live = render_validation(manifest, {}, live=True)

    advice = "2 rows name their owner by workspace name or email"
    assert any(advice in line for line in offline)
    assert not any("name their owner" in line for line in live)
    assert [line for line in offline if advice not in line] == live


def test_code_rows_repeated_are_a_warning_not_a_problem(tmp_path: Path) -> None:
    """Two code rows for one owner and model stay valid (exit 0); a warning in the
    summary names both rows, the owner and the model."""
    path = _write(
        tmp_path / "m.csv",
        "mac,model,workspaceId",
        f",Cisco 8851,{WS}",
        f"0A0000000001,Cisco 8851,{WS}",
        f",8851,{WS}",
    )

    result = CliRunner().invoke(main, ["validate", str(path)])

    assert result.exit_code == 0, result.output
    assert "3 rows, 3 valid, 0 invalid" in result.output
    assert (
        f"  warning: rows 2 and 4 each ask for an activation code for the same owner "
        f"(workspace {WS}) and model (Cisco 8851): each row issues its own code."
    ) in result.output


def test_a_report_is_checked_by_its_own_row_numbers(tmp_path: Path) -> None:
    """A report given to validate names its rows as its ``row`` column, its error
    cells and rerun do (the manifest's rows), not by their place in the sheet: a
    blank line in the manifest put row 4 on the report's third line."""
    manifest = _write(
        tmp_path / "m.csv",
        "mac,model,workspaceId",
        "0A0000000001,Cisco 8851,ws-1",
        "",
        "0A00000000ZZ,Cisco 8851,ws-2",
    )
    loaded = load_manifest(manifest)
    now = datetime.now(UTC)
    outcomes = {
        2: Outcome(row=2, status=Status.CREATED, device_id="D-1"),
        4: Outcome(row=4, status=Status.INVALID, error="mac: not a MAC"),
    }
    report = tmp_path / "r.csv"
    write_report(
        loaded,
        outcomes,
        [report],
        RunStats(
            started_at=now, finished_at=now, api_calls=0, rate_limited=0, retries=0
        ),
    )

    result = CliRunner().invoke(main, ["validate", str(report)])

    assert result.exit_code == 1
    assert "row 4" in result.output
    assert "row 3" not in result.output
