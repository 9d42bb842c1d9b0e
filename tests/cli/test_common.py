"""
cli/common.py: the end-of-run summary's lines.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from provisioner.cli.common import format_summary
from provisioner.intake.manifest import load_manifest
from provisioner.models import OrgInfo, Outcome, RunStats, Status

START = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def stats_of(**fields: Any) -> RunStats:
    """A 40-second run of 2,005 calls, two of them answered 429, and ``fields``."""
    return RunStats(
        started_at=START,
        finished_at=START + timedelta(seconds=40),
        api_calls=2005,
        rate_limited=2,
        retries=2,
        **fields,
    )


def summary_with(tmp_path: Path, learned: float | None) -> str:
    path = tmp_path / "m.csv"
    path.write_text("mac,model,workspaceId\n0A0000000001,Cisco 8851,ws-1\n")
    stats = stats_of(final_rate=49.1, learned_limit=learned)
    outcomes = {2: Outcome(row=2, status=Status.CREATED)}
    return format_summary(load_manifest(path), outcomes, stats, [])


@pytest.mark.parametrize(("learned", "told"), [(49.63, "49.1"), (20.0, "19.8")])
def test_a_learned_limit_is_said_with_the_flag_that_tells_it(
    tmp_path: Path, learned: float, told: str
) -> None:
    """The limit the run learned from 429s, and --max-rate a percent under it,
    rounded down to a tenth: a later run told so starts at the limit."""
    text = summary_with(tmp_path, learned)

    assert f"about {learned:.1f} requests/s" in text
    assert f"--max-rate {told} starts the next run there" in text


def test_no_limit_learned_no_advice(tmp_path: Path) -> None:
    """A run that learned no limit gives no --max-rate advice."""
    assert "--max-rate" not in summary_with(tmp_path, None)


def test_a_partner_run_says_each_orgs_learned_limit(tmp_path: Path) -> None:
    """Each org's line in a partner's summary carries the limit that org's
    controller learned; an org that learned none says none, and gets no
    --max-rate in the advice."""
    path = tmp_path / "m.csv"
    path.write_text(
        "mac,model,workspaceId,orgId\n"
        "0A0000000001,Cisco 8851,ws-1,\n"
        "0A0000000002,Cisco 8851,ws-2,org-a\n"
    )
    stats = stats_of(
        orgs=(
            OrgInfo(key=None, id="HOME", name="Partner"),
            OrgInfo(key="org-a", id="org-a", name="Customer A"),
        ),
        org_limits=(("org-a", 19.94),),
    )
    outcomes = {n: Outcome(row=n, status=Status.CREATED) for n in (2, 3)}

    lines = format_summary(load_manifest(path), outcomes, stats, []).splitlines()

    (home,) = [line for line in lines if "Partner (HOME)" in line]
    (customer,) = [line for line in lines if "Customer A (org-a)" in line]
    assert "API limit" not in home
    assert customer.endswith("· API limit about 19.9 requests/s")
    (advice,) = [line for line in lines if "--max-rate" in line]
    assert advice.endswith(": --max-rate org-a=19.7")


@pytest.mark.parametrize(
    ("worked", "voided", "said"),
    [({}, 0, True), ({Status.CREATED: 1}, 0, False), ({}, 2, False)],
    ids=["journal had every row", "a row was worked", "codes were voided"],
)
def test_the_same_command_again_says_it_had_nothing_to_do(
    tmp_path: Path, worked: dict[Status, int], voided: int, said: bool
) -> None:
    """A resumed run whose journal had every row only read: the summary says so,
    rather than leaving "created 1 · 0.0 rows/s" to puzzle over."""
    path = tmp_path / "m.csv"
    path.write_text("mac,model,workspaceId\n0A0000000001,Cisco 8851,ws-1\n")
    stats = stats_of(resumed=True, worked=worked, codes_voided=voided)
    outcomes = {2: Outcome(row=2, status=Status.CREATED)}

    text = format_summary(load_manifest(path), outcomes, stats, [])

    assert ("nothing to do: every row was done by an earlier run" in text) is said


@pytest.mark.parametrize(
    ("worked", "said"),
    [
        (None, "took 40.0s · 0.1 rows/s · 2005 API calls"),
        (4, "took 40.0s · 0.1 rows/s · 2005 API calls"),
        (2, "took 40.0s · 0.1 rows/s of the 2 rows it worked · 2005 API calls"),
        (1, "took 40.0s · 0.0 rows/s of the 1 row it worked · 2005 API calls"),
        (0, "took 40.0s · 2005 API calls"),
    ],
    ids=["unknown", "every row", "some rows", "one row", "none"],
)
def test_rows_per_second_are_of_the_rows_the_run_worked(
    tmp_path: Path, worked: int | None, said: str
) -> None:
    """A resumed run's rows/s are of the rows it worked, said when it did not work
    them all; a run that worked none says no rate (not "0.0 rows/s")."""
    path = tmp_path / "m.csv"
    path.write_text(
        "mac,model,workspaceId\n"
        + "".join(f"0A000000000{n},Cisco 8851,ws-{n}\n" for n in range(1, 5))
    )
    stats = stats_of(resumed=worked is not None, rows_worked=worked)
    outcomes = {n: Outcome(row=n, status=Status.CREATED) for n in range(2, 6)}

    lines = format_summary(load_manifest(path), outcomes, stats, []).splitlines()

    assert lines[1] == f"  {said} · 2 rate-limited (429) · 2 retries"
