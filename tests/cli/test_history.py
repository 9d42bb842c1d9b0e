"""
cli/history.py: the rollout's story, and the pace its next command starts at.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from provisioner.cli.history import LIMITS_KEPT, Story
from provisioner.models import RunKind, RunRecord
from provisioner.settings import Settings

API = "https://api-usgov.webex.com/v1"
START = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def record(
    minutes: int, limits: tuple[tuple[str, float], ...], base_url: str = API
) -> RunRecord:
    return RunRecord(
        kind=RunKind.RUN,
        started_at=START + timedelta(minutes=minutes),
        finished_at=START + timedelta(minutes=minutes + 5),
        base_url=base_url,
        limits=limits,
    )


def story(*earlier: RunRecord) -> Story:
    return Story(
        earlier=earlier, source=Path("report.csv"), source_sha256=None, journal=None
    )


class TestKnownLimits:
    def test_the_latest_command_at_the_api_says_where_to_start(self) -> None:
        """The latest line that learned limits at this API wins; a line of another
        API, or one that learned none, says nothing here."""
        told = story(
            record(0, (("ORG-A", 40.0),)),
            record(10, (("ORG-A", 49.6), ("ORG-B", 5.0))),
            record(20, (("ORG-A", 7.0),), base_url="http://127.0.0.1:8080/v1"),
            record(30, ()),
        )

        later = START + timedelta(hours=1)
        assert told.known_limits(API + "/", later) == (("ORG-A", 49.6), ("ORG-B", 5.0))

    def test_a_limit_learned_too_long_ago_is_learned_again(self) -> None:
        told = story(record(0, (("ORG-A", 49.6),)))
        ended = START + timedelta(minutes=5)

        assert told.known_limits(API, ended + LIMITS_KEPT) == (("ORG-A", 49.6),)
        assert told.known_limits(API, ended + LIMITS_KEPT + timedelta(seconds=1)) == ()

    def test_no_history_no_limits(self) -> None:
        assert story().known_limits(API, START) == ()

    def test_paced_settings_start_each_org_at_its_limit(self) -> None:
        """The settings a command builds its client from: each org the history
        knows starts at its limit, under its own ceiling where it has one."""
        settings = Settings(token="t", base_url=API)
        # paced() reads the clock: a line from an hour ago, whatever today is.
        hour_ago = datetime.now(UTC) - timedelta(hours=1)
        line = RunRecord(
            kind=RunKind.RUN,
            started_at=hour_ago,
            finished_at=hour_ago,
            base_url=API,
            limits=(("ORG-A", 49.6),),
        )
        paced = story(line).paced(settings)

        controls = paced.org_controls()
        assert controls["ORG-A"].known_limit == 49.6
        assert paced.rate.known_limit is None
