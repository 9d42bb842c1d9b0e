"""
``--max-rate ORG=R`` end to end against the emulator's several orgs, each with its
own token bucket: a told org meets no 429 where an untold one does, the token's own
org is named by its id, and every command that takes the flag refuses an org none
of its rows go to before any call.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from emulated import ORG_ID as HOME_ID
from org_manifests import PARTNER, run_partner_manifest

from provisioner.cli import main
from provisioner.emulator import org_id_for
from provisioner.emulator.harness import run_in_subprocess

ORG1, ORG2 = org_id_for("org1"), org_id_for("org2")
# org1 and the seeded org: 10/s with a burst of 2, which a cold start at 20/s
# overruns at once; org2 has no limit. Told 8/s, an org stays under its bucket.
LIMITED = ["--org-rate-limit", "org1=10", "--org-burst", "org1=2"]
HOME_LIMITED = ["--rate-limit", "10", "--burst", "2"]


@pytest.fixture(name="base_url", scope="module")
def _base_url() -> Iterator[str]:
    args = [
        "--orgs",
        "2",
        *LIMITED,
        *HOME_LIMITED,
        "--partner",
        f"{PARTNER}=org1,org2",
    ]
    with run_in_subprocess(args) as (_process, base_url):
        yield base_url


def invoke(args: Sequence[str]) -> Result:
    return CliRunner().invoke(
        main, list(args), env={"WEBEX_ACCESS_TOKEN": PARTNER}, catch_exceptions=False
    )


def admin(base_url: str, method: str, path: str) -> Any:
    url = base_url.removesuffix("/v1") + "/_emulator" + path
    request = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def refused_by_org(base_url: str) -> dict[str, int]:
    """The 429s each org answered since the last reset."""
    by_org = admin(base_url, "GET", "/stats")["by_org"]
    return {org: counts["rate_limited"] for org, counts in by_org.items()}


def run_partner(
    base_url: str, folder: Path, rows: dict[str | None, int], *flags: str
) -> tuple[Result, Path]:
    """Reset the emulator, then run ``rows`` per org with ``flags``."""
    admin(base_url, "POST", "/reset")
    folder.mkdir(parents=True, exist_ok=True)
    result, report = run_partner_manifest(base_url, folder, rows, *flags)
    return result, Path(f"{report}.csv")


def test_a_told_org_meets_no_429_where_an_untold_one_does(
    base_url: str, tmp_path: Path
) -> None:
    """
    The same partner run twice. Told org2's rate (no limit there), org1 starts
    at the adaptive default and its 10/s bucket refuses it; told org1's, org1
    starts at its ceiling and is never refused.
    """
    rows: dict[str | None, int] = {"org1": 6, "org2": 6}
    untold, _ = run_partner(base_url, tmp_path / "a", rows, "--max-rate", f"{ORG2}=8")
    untold_refused = refused_by_org(base_url)

    told, _ = run_partner(base_url, tmp_path / "b", rows, "--max-rate", f"{ORG1}=8")
    told_refused = refused_by_org(base_url)

    assert untold.exit_code == told.exit_code == 0, told.output
    assert untold_refused.get(ORG1, 0) >= 1
    assert told_refused.get(ORG1, 0) == 0
    assert "Run: 12 rows · created 12" in told.stdout


def test_the_tokens_own_org_is_told_by_its_id(base_url: str, tmp_path: Path) -> None:
    """
    Rows without orgId go to the token's own org (the seeded one, 10/s): named by
    the id GET /people/me gives, which no row spells out, its ceiling applies.
    """
    rows: dict[str | None, int] = {None: 6, "org2": 2}

    result, _ = run_partner(
        base_url, tmp_path, rows, "--max-rate", f"{HOME_ID}=8", "--max-rate", "50"
    )

    assert result.exit_code == 0, result.output
    assert refused_by_org(base_url).get(HOME_ID, 0) == 0


def test_the_rollouts_next_command_starts_at_the_limit_it_learned(
    base_url: str, tmp_path: Path
) -> None:
    """
    A run learns the token's own org's 10/s from its 429s and keeps it in its run
    history (by the org's id); the rollback of its report starts at it, and the API
    refuses none of its calls, where a start at the default 20/s meets a 429 at once.
    """
    run, report = run_partner(base_url, tmp_path, {None: 40})
    refused_in_run = refused_by_org(base_url).get(HOME_ID, 0)

    rollback = invoke(["rollback", str(report), "--base-url", base_url, "--yes"])

    assert run.exit_code == 0, run.output
    assert refused_in_run >= 1
    assert "limited this org to about" in run.stdout
    assert rollback.exit_code == 0, rollback.output
    assert admin(base_url, "GET", "/devices")["items"] == []
    assert refused_by_org(base_url).get(HOME_ID, 0) == refused_in_run


def test_an_org_taken_for_the_tokens_that_is_not_stops_the_run(
    base_url: str, tmp_path: Path
) -> None:
    """One ORG no row names may be the token's own org; when GET /people/me says
    it is not, the run stops before any row, naming the flag."""
    result, report = run_partner(
        base_url, tmp_path, {None: 1, "org1": 1}, "--max-rate", "someone-else=5"
    )

    assert result.exit_code == 2
    assert "--max-rate names org someone-else, but no row goes there" in result.stderr
    assert HOME_ID in result.stderr
    assert not report.exists()
    assert admin(base_url, "GET", "/devices")["items"] == []


@pytest.fixture(name="partner_report", scope="module")
def _partner_report(base_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A partner run's report (org1 and org2 rows), for the commands that read one."""
    folder = tmp_path_factory.mktemp("report")
    result, report = run_partner(base_url, folder, {"org1": 1, "org2": 1})
    assert result.exit_code == 0, result.output
    return report


@pytest.mark.parametrize("command", ["rerun", "rollback", "codes"])
def test_every_command_refuses_an_org_its_rows_do_not_go_to(
    base_url: str, partner_report: Path, command: str
) -> None:
    """rerun, rollback and codes check ORG against the report's orgId column as
    run checks it against the manifest's: a click error, exit 2, no call."""
    before = admin(base_url, "GET", "/stats")["requests_total"]

    result = invoke(
        [command, str(partner_report), "--base-url", base_url, "--max-rate", "nope=5"]
    )

    assert result.exit_code == 2
    assert "Invalid value for '--max-rate'" in result.stderr
    assert "no row of the manifest goes to nope" in result.stderr
    assert ORG1 in result.stderr
    assert "Traceback" not in result.output
    assert admin(base_url, "GET", "/stats")["requests_total"] == before


def test_a_command_accepts_an_org_of_its_report(
    base_url: str, partner_report: Path
) -> None:
    """codes on the partner's report, org1 told: the flag is taken, the command runs."""
    result = invoke(
        [
            "codes",
            str(partner_report),
            "--base-url",
            base_url,
            "--max-rate",
            f"{ORG1}=8",
            "--max-rate",
            "30",
        ]
    )

    assert result.exit_code == 0, result.output
    assert "no activation codes in this report" in result.stdout


def test_export_takes_only_the_org_it_reads(base_url: str, tmp_path: Path) -> None:
    """export reads one org: an ORG=R naming another is refused before any call."""
    result = invoke(
        [
            "export",
            str(tmp_path / "devices.csv"),
            "--base-url",
            base_url,
            "--org-id",
            ORG1,
            "--max-rate",
            f"{ORG2}=5",
        ]
    )

    assert result.exit_code == 2
    assert f"this command acts in one org ({ORG1}), not {ORG2}" in result.stderr
    assert not (tmp_path / "devices.csv").exists()


@pytest.mark.parametrize(
    ("values", "says"),
    [
        (["0"], "above 0"),
        (["fast"], "is not R or ORG=R"),
        ([f"{ORG1}=5", f"{ORG1}=6"], f"org {ORG1} is given twice"),
        (["5", "6"], "R is given twice"),
    ],
)
def test_a_bad_value_is_a_click_error(
    tmp_path: Path, values: list[str], says: str
) -> None:
    """Refused while the flags are read: no manifest, no call is needed."""
    flags = [word for value in values for word in ("--max-rate", value)]

    result = invoke(["run", str(tmp_path / "none.csv"), *flags])

    assert result.exit_code == 2
    assert "Invalid value for '--max-rate'" in result.stderr
    assert says in result.stderr


def test_help_teaches_both_forms() -> None:
    result = CliRunner().invoke(main, ["run", "--help"], terminal_width=200)

    assert "--max-rate [ORG=]R" in result.output
    assert "ORG=R caps one org" in result.output
