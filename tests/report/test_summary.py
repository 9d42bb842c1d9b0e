"""
What the Summary says, decided without a workbook: the lines, the next step, the
cloud's name, the history shown when none was kept, the counts per group.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import report_data as data

from provisioner.models import OrgInfo, Outcome, RunKind, RunStats, Status
from provisioner.report.summary import (
    Line,
    LineKind,
    cloud_name,
    counts_text,
    group_counts,
    natural_key,
    report_history,
    summarise,
    summary_lines,
)


def lines_for(
    stats: RunStats, outcomes: dict[int, Outcome] | None = None
) -> list[Line]:
    manifest = data.manifest()
    outcomes = data.outcomes() if outcomes is None else outcomes
    return summary_lines(
        summarise(manifest, outcomes, stats),
        manifest,
        report_name="site-report.xlsx",
        outcomes=outcomes,
    )


def pairs(lines: list[Line]) -> dict[object, object]:
    return {
        line.cells[0]: line.cells[1] for line in lines if line.kind is LineKind.PAIR
    }


class TestLines:
    def test_target_without_org_name_or_caller(self) -> None:
        """Parts of the target the API did not tell are said to be unknown."""

        target = dataclasses.replace(
            data.TARGET, org_name=None, caller=None, org_id=None
        )
        stats = dataclasses.replace(data.STATS, target=target)

        found = pairs(lines_for(stats))

        assert (found["organisation"], found["organisation id"], found["run by"]) == (
            "not recorded",
            "the token's own org",
            "not recorded",
        )

    def test_a_partner_runs_target_is_named_as_the_tokens_org(self) -> None:
        """In a partner's run the rows went to the orgs under "By org": the target
        pair says it is the token's organisation, which may have had no rows."""

        orgs = (OrgInfo(key="org-a", id="org-a", name="Customer A"),)
        stats = dataclasses.replace(data.STATS, orgs=orgs)

        found = pairs(lines_for(stats))

        assert found["the token's organisation"] == data.TARGET.org_name
        assert found["the token's organisation id"] == data.TARGET.org_id
        assert "organisation" not in found

    def test_voided_codes_are_counted(self) -> None:
        """Replaced activation codes a run voided are among the figures."""

        stats = dataclasses.replace(data.STATS, codes_voided=3)

        assert pairs(lines_for(stats))["replaced activation codes voided"] == 3

    def test_dry_run_says_nothing_changed(self) -> None:
        """A dry run's subtitle and next step say so."""

        stats = dataclasses.replace(data.STATS, dry_run=True)

        lines = lines_for(stats)

        assert "dry run: nothing was changed" in str(lines[1].cells[0])
        assert pairs(lines)["next step"] == (
            "run the same command without --dry-run to make these changes"
        )

    @pytest.mark.parametrize(
        ("statuses", "step"),
        [
            ((Status.CREATED, Status.NOT_STARTED), "run the same command again"),
            ((Status.CREATED, Status.CODE_ISSUED), "hand out the activation codes"),
            ((Status.CREATED, Status.ADOPTED), "none: every row ended well"),
        ],
    )
    def test_next_step(self, statuses: tuple[Status, ...], step: str) -> None:
        """The next step follows from what is left to do."""

        outcomes = {n: Outcome(row=n, status=statuses[n % 2]) for n in range(2, 10)}

        assert str(pairs(lines_for(data.STATS, outcomes))["next step"]).startswith(step)

    def test_figures_leave_out_what_was_not_measured(self) -> None:
        """No rate line when the run measured no rate."""

        stats = dataclasses.replace(data.STATS, final_rate=None)

        assert "request rate at the end (per second)" not in pairs(lines_for(stats))
        assert "API limit learned from 429s (per second)" not in pairs(lines_for(stats))

    def test_a_learned_limit_is_a_figure(self) -> None:
        """The API limit the run learned is among the engineers' figures."""

        stats = dataclasses.replace(data.STATS, learned_limit=49.63)

        assert pairs(lines_for(stats))["API limit learned from 429s (per second)"] == (
            49.6
        )

    def test_one_orgs_part_says_the_limit_is_that_orgs(self) -> None:
        """In one org's part of a partner's report, whose other figures are the
        whole run's, the learned limit is said to be the org's own."""

        stats = dataclasses.replace(data.STATS, learned_limit=19.9, part_of_orgs=3)

        found = pairs(lines_for(stats))

        assert found["this org's API limit learned from 429s (per second)"] == 19.9
        assert "API limit learned from 429s (per second)" not in found


class TestHistory:
    def test_kept_history_is_shown(self) -> None:
        """The stats' history is the report's."""

        summary = summarise(data.manifest(), data.outcomes(), data.STATS)

        assert report_history(summary, "x.csv") == data.STATS.history

    @pytest.mark.parametrize(
        ("changes", "kind"),
        [
            ({}, RunKind.RUN),
            ({"resumed": True}, RunKind.RESUME),
            ({"dry_run": True}, RunKind.DRY_RUN),
        ],
    )
    def test_without_history_this_run_alone(
        self, changes: dict[str, bool], kind: RunKind
    ) -> None:
        """A caller that kept no history gets this run as the only line, counted
        from what it worked on (or from the rows when it did not count)."""

        stats = dataclasses.replace(
            data.STATS, history=(), worked={Status.CREATED: 1}, **changes
        )
        summary = summarise(data.manifest(), data.outcomes(), stats)

        (record,) = report_history(summary, "site.csv")

        assert (record.kind, record.source, dict(record.counts)) == (
            kind,
            "site.csv",
            {Status.CREATED: 1},
        )
        assert record.caller == data.TARGET.caller

    def test_uncounted_run_counts_every_row(self) -> None:
        stats = dataclasses.replace(data.STATS, history=(), worked=None)
        summary = summarise(data.manifest(), data.outcomes(), stats)

        (record,) = report_history(summary, "site.csv")

        assert sum(record.counts.values()) == 8

    def test_the_manifest_named_is_the_one_last_run(self) -> None:
        """The sheet was edited and run again between the run and the rerun: the
        Summary names the edited sheet (its SHA-256), not the first one, and not the
        report the rerun read."""
        edited = dataclasses.replace(
            data.FIRST,
            kind=RunKind.RESUME,
            started_at=data.FIRST.finished_at,
            finished_at=data.SECOND.started_at,
            source="site-v2.csv",
            source_sha256="ef" * 32,
        )
        history = (data.FIRST, edited, data.SECOND)
        stats = dataclasses.replace(data.STATS, history=history)

        found = pairs(lines_for(stats))

        assert (found["manifest"], found["manifest SHA-256"]) == (
            "site-v2.csv",
            "ef" * 32,
        )


class TestSmallParts:
    @pytest.mark.parametrize(
        ("url", "name"),
        [
            ("https://api-usgov.webex.com/v1", "Webex for Government (FedRAMP)"),
            ("https://webexapis.com/v1/", "Webex (commercial)"),
            ("http://127.0.0.1:8080/v1", "a local emulator (nothing real was changed)"),
            (
                "https://example.test/v1",
                "another API (not a Webex cloud this tool knows)",
            ),
        ],
    )
    def test_cloud_name(self, url: str, name: str) -> None:
        assert cloud_name(url) == name

    def test_counts_text(self) -> None:
        """Counts in status order, zeros left out."""

        counts = {Status.FAILED: 2, Status.CREATED: 34, Status.ADOPTED: 0}

        assert counts_text(counts) == "created 34 · failed 2"
        assert counts_text({}) == "no rows"

    def test_natural_order(self) -> None:
        names = ["Floor 10", "floor 2", "B", "Floor 1"]

        assert sorted(names, key=natural_key) == ["B", "Floor 1", "floor 2", "Floor 10"]

    def test_group_counts_blank_group(self) -> None:
        """Rows with an empty group cell are counted as "(blank)"."""

        manifest = data.manifest()
        rows = tuple(
            dataclasses.replace(r, cells=(*r.cells[:4], "", r.cells[5]))
            if r.number == 2
            else r
            for r in manifest.rows
        )
        manifest = dataclasses.replace(manifest, rows=rows, path=Path("m.csv"))

        groups = group_counts(manifest, data.outcomes(), "Site")

        assert groups["(blank)"] == {Status.CREATED: 1}
        assert sum(groups["HQ"].values()) == 3
