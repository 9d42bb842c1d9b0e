"""
cli/common.py: the end-of-run summary's lines.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from provisioner.cli.common import format_summary
from provisioner.intake.manifest import load_manifest
from provisioner.models import Outcome, RunStats, Status

START = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def summary_with(tmp_path: Path, learned: float | None) -> str:
    path = tmp_path / "m.csv"
    path.write_text("mac,model,workspaceId\n0A0000000001,Cisco 8851,ws-1\n")
    stats = RunStats(
        started_at=START,
        finished_at=START + timedelta(seconds=40),
        api_calls=2005,
        rate_limited=2,
        retries=2,
        final_rate=49.1,
        learned_limit=learned,
    )
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
