"""
report/orgs.py: counts per org that add up, one complete report per org, its name.
"""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from provisioner.intake.manifest import RawTable, build_manifest
from provisioner.models import (
    Manifest,
    OrgInfo,
    Outcome,
    RunKind,
    RunRecord,
    RunStats,
    Status,
    Target,
)
from provisioner.report.files import load_report, rows_to_rerun, write_report
from provisioner.report.orgs import (
    count_by_org,
    is_multi_org,
    org_report_paths,
    split_by_org,
)
from provisioner.report.summary import LineKind, summarise, summary_lines
from provisioner.run.journal import split_origins

COLUMNS = ("mac", "model", "workspaceId", "orgId")
WS = "Y2lzY29zcGFyazovL3VzL1BMQUNFLzFhMmIzYzRk"


def webex_org(uuid: str) -> str:
    raw = f"ciscospark://us/ORGANIZATION/{uuid}".encode()
    return base64.b64encode(raw).decode().rstrip("=")


ORG_A = webex_org("0a1b2c3d-0000-4000-8000-000000000001")
ORG_B = webex_org("9f8e7d6c-0000-4000-8000-000000000002")


def manifest_of(orgs: list[str]) -> Manifest:
    records = [
        (n, (f"0A00000000{n:02X}", "Cisco 8851", WS, org))
        for n, org in enumerate(orgs, start=2)
    ]
    return build_manifest(
        RawTable(path=Path("m.csv"), sheet=None, columns=COLUMNS, records=records)
    )


def stats_of(*orgs: OrgInfo, default: str | None = None) -> RunStats:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    return RunStats(
        started_at=moment,
        finished_at=moment,
        api_calls=0,
        rate_limited=0,
        retries=0,
        target=Target(base_url="https://api.example/v1", org_id=default),
        orgs=orgs,
    )


MANIFEST = manifest_of(["", ORG_A, ORG_B, ORG_A, "", ORG_B, ORG_B])
STATUSES = [Status.CREATED, Status.CREATED, Status.FAILED, Status.INVALID]
OUTCOMES = {
    row.number: Outcome(row=row.number, status=STATUSES[i % len(STATUSES)])
    for i, row in enumerate(MANIFEST.rows)
}
STATS = stats_of(
    OrgInfo(key=None, id="HOME", name="Partner"),
    OrgInfo(key=ORG_A, id=ORG_A, name="Customer A"),
)


def test_counts_per_org_add_up_to_the_whole() -> None:
    """Every row is counted once, in its own org; per status the orgs sum to all."""
    counts = count_by_org(MANIFEST, OUTCOMES, STATS)

    assert [(c.org.label(), c.rows) for c in counts] == [
        ("Partner (HOME)", 2),
        (f"Customer A ({ORG_A})", 2),
        (ORG_B, 3),
    ]
    for status in Status:
        total = sum(1 for o in OUTCOMES.values() if o.status is status)
        assert sum(c.by_status[status] for c in counts) == total


def test_a_rerun_names_the_tokens_org_though_it_reran_none_of_its_rows() -> None:
    """
    A rerun that re-ran one org's rows looked up that org alone: the token's own org
    still has its name from the target (its rows key to its id there), and an org
    the rerun did not look up is shown by its id.
    """
    target = Target(
        base_url="https://api.example/v1", org_id="HOME", org_name="Partner"
    )
    stats = replace(stats_of(OrgInfo(key=ORG_B, id=ORG_B)), target=target)

    counts = count_by_org(MANIFEST, OUTCOMES, stats)

    assert [(c.org.label(), c.rows) for c in counts] == [
        ("Partner (HOME)", 2),
        (ORG_A, 2),
        (ORG_B, 3),
    ]


def test_a_rerun_names_the_orgs_it_did_not_look_up_as_the_run_did() -> None:
    """The run that wrote the report looked every org up; its line of the history
    keeps their names, so a rerun of one org's rows still names the others."""
    target = Target(
        base_url="https://api.example/v1", org_id="HOME", org_name="Partner"
    )
    earlier = RunRecord(
        kind=RunKind.RUN,
        started_at=datetime(2026, 11, 29, 9, 0, tzinfo=UTC),
        finished_at=datetime(2026, 11, 29, 9, 5, tzinfo=UTC),
        org_names=((ORG_A, "Customer A"), (ORG_B, "Old name of B")),
    )
    stats = replace(
        stats_of(OrgInfo(key=ORG_B, id=ORG_B, name="Customer B")),
        target=target,
        history=(earlier,),
    )

    counts = count_by_org(MANIFEST, OUTCOMES, stats)

    assert [c.org.label() for c in counts] == [
        "Partner (HOME)",
        f"Customer A ({ORG_A})",
        f"Customer B ({ORG_B})",
    ]


def test_rows_of_the_runs_own_org_count_there() -> None:
    """A row without orgId goes to --org-id; one org alone is no partner's run."""
    manifest = manifest_of(["", ORG_A])
    stats = stats_of(default=ORG_A)

    counts = count_by_org(manifest, {2: OUTCOMES[2], 3: OUTCOMES[3]}, stats)

    assert [(c.org.key, c.rows) for c in counts] == [(ORG_A, 2)]
    assert not is_multi_org(manifest, stats)
    assert is_multi_org(MANIFEST, stats_of())


def test_split_parts_are_complete_reports_that_rerun(tmp_path: Path) -> None:
    """Each part holds its org's rows, numbers kept; read back, it is re-runnable."""
    parts = split_by_org(MANIFEST, OUTCOMES, STATS)
    b_part = parts[2]
    [paths] = org_report_paths([tmp_path / "r.csv"], [b_part.org])
    write_report(b_part.manifest, b_part.outcomes, paths, b_part.stats)

    manifest, previous = load_report(paths[0])

    numbers = sorted(n for part in parts for n in part.outcomes)
    assert numbers == sorted(OUTCOMES)
    assert [row.number for row in manifest.rows] == [4, 7, 8]
    assert {row.org_id for row in manifest.rows} == {ORG_B}
    assert previous == {n: OUTCOMES[n] for n in (4, 7, 8)}
    assert rows_to_rerun(previous) == {4, 8}
    assert b_part.stats.orgs == (b_part.org,)


def test_report_names_carry_the_orgs_name_and_short_id(tmp_path: Path) -> None:
    """Name, then the first block of the id's UUID; unnamed: the id; none: own."""
    named = OrgInfo(key=ORG_A, id=ORG_A, name="Customer A / East")

    [paths] = org_report_paths([tmp_path / "r.xlsx", tmp_path / "r.csv"], [named])

    assert [p.name for p in paths] == [
        "r-org-customer-a-east-0a1b2c3d.xlsx",
        "r-org-customer-a-east-0a1b2c3d.csv",
    ]
    assert names([Path("r.csv")], [OrgInfo(key=ORG_B), OrgInfo(key=None)]) == [
        "r-org-9f8e7d6c.csv",
        "r-org-own.csv",
    ]


def test_each_org_report_name_leads_back_to_its_combined_report() -> None:
    """The journal of an org's report is found by its name (run.journal's
    split_origins): every name this module gives leads back to the combined one."""
    combined = [Path("out/my-org-report.xlsx"), Path("out/my-org-report.csv")]
    orgs = [OrgInfo(key=ORG_A, id=ORG_A, name="Org - A"), OrgInfo(key=None)]

    named = org_report_paths(combined, orgs)

    for paths in named:
        for origin, path in zip(combined, paths, strict=True):
            assert origin in split_origins(path)


def names(paths: list[Path], orgs: list[OrgInfo]) -> list[str]:
    return [path.name for each in org_report_paths(paths, orgs) for path in each]


#: Two orgs whose UUIDs share their first block, neither named (refused, not found).
TWIN_1 = webex_org("5632e78c-1111-4000-8000-000000006f00")
TWIN_2 = webex_org("5632e78c-2222-4000-8000-000000006f11")


def test_orgs_whose_short_ids_clash_take_their_whole_ids() -> None:
    """Two orgs a short id would give one file take their whole UUIDs; others stay."""
    orgs = [OrgInfo(key=TWIN_1), OrgInfo(key=ORG_A, name="A"), OrgInfo(key=TWIN_2)]

    actual = names([Path("r.csv")], orgs)

    assert actual == [
        "r-org-5632e78c-1111-4000-8000-000000006f00.csv",
        "r-org-a-0a1b2c3d.csv",
        "r-org-5632e78c-2222-4000-8000-000000006f11.csv",
    ]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        # One UUID under two clouds: even the whole UUIDs are one.
        (
            webex_org("5632e78c-1111-4000-8000-000000006f00"),
            base64.b64encode(
                b"ciscospark://eu/ORGANIZATION/5632e78c-1111-4000-8000-000000006f00"
            ).decode(),
        ),
        # Ids that are no Webex ids, the same but for case (one file on macOS).
        ("org-ABC", "org-abc"),
    ],
)
def test_orgs_whose_whole_ids_clash_are_numbered(first: str, second: str) -> None:
    """Where even whole ids would share a file, the second org's name is numbered."""
    orgs = [OrgInfo(key=first), OrgInfo(key=second)]

    actual = names([Path("r.xlsx"), Path("r.csv")], orgs)

    assert len({name.casefold() for name in actual}) == 4
    assert actual[2].casefold() == actual[0].casefold().replace(".xlsx", "-2.xlsx")


def test_no_orgs_report_is_the_combined_one() -> None:
    """An org's name that would be one of the combined report's files is changed."""
    combined = [Path("r.csv"), Path("r-org-own.csv")]

    actual = names(combined, [OrgInfo(key=None)])

    assert actual == ["r-org-own-2.csv", "r-org-own-org-own-2.csv"]


def test_a_number_takes_no_other_orgs_own_name() -> None:
    """An org whose own name ends ``-2`` keeps it; a clashing org takes the next."""
    orgs = [OrgInfo(key="X"), OrgInfo(key="x"), OrgInfo(key="2", name="x")]

    actual = names([Path("r.csv")], orgs)

    assert actual == ["r-org-X.csv", "r-org-x-3.csv", "r-org-x-2.csv"]


def test_every_row_is_in_exactly_one_orgs_file(tmp_path: Path) -> None:
    """
    Split and written, the parts of a run whose refused orgs' UUIDs share their
    first block are one file each, which together hold every row once.
    """
    manifest = manifest_of(["", TWIN_1, ORG_A, TWIN_2, TWIN_1, TWIN_2])
    outcomes = {
        row.number: Outcome(row=row.number, status=Status.FAILED)
        for row in manifest.rows
    }
    parts = split_by_org(manifest, outcomes, STATS)
    named = org_report_paths([tmp_path / "r.csv"], [part.org for part in parts])
    for part, paths in zip(parts, named, strict=True):
        write_report(part.manifest, part.outcomes, paths, part.stats)

    files = sorted(tmp_path.glob("r-org-*.csv"))
    rows = [row.number for path in files for row in load_report(path)[0].rows]

    assert len(files) == 4
    assert sorted(outcomes) == sorted(rows)


def test_an_orgs_part_says_its_api_figures_are_the_whole_runs() -> None:
    """A customer's report must not pass the partner run's call counts off as its own."""
    parts = split_by_org(MANIFEST, OUTCOMES, STATS)

    def headings(manifest: Manifest, stats: RunStats) -> list[str]:
        outcomes = {row.number: OUTCOMES[row.number] for row in manifest.rows}
        lines = summary_lines(
            summarise(manifest, outcomes, stats),
            manifest,
            report_name="r.csv",
            outcomes=outcomes,
        )
        return [line.cells[0] for line in lines if line.kind is LineKind.HEADING]

    part_headings = headings(parts[1].manifest, parts[1].stats)
    whole_headings = headings(MANIFEST, STATS)

    assert (
        "For engineers: this command's API figures (the whole run, all 3 orgs)"
        in part_headings
    )
    assert "For engineers: this command's API figures" in whole_headings


@pytest.mark.parametrize("home_id", [None, "HOME"])
def test_each_part_says_the_limit_its_org_learned(home_id: str | None) -> None:
    """A part's learned limit is its own org's (the token's own org found by its id
    when the target knows it); an org that learned none says none."""
    stats = replace(
        stats_of(*STATS.orgs, default=home_id),
        org_limits=((None, 30.0), (ORG_A, 19.9)),
    )

    parts = split_by_org(MANIFEST, OUTCOMES, stats)

    assert [part.stats.learned_limit for part in parts] == [30.0, 19.9, None]
    assert {part.stats.org_limits for part in parts} == {()}
