"""
What a report's Summary sheet says, decided without a workbook in sight.

``summarise`` counts the rows; ``summary_lines`` lays the sheet out as lines of cells
for ``sheets.py`` to style: what happened (counts by status, the next step),
where and when (cloud, API, org, who, times, manifest and fingerprint, tool version),
problems by kind, counts per group (``--group-by``) and per org (a partner's
run across several orgs: ``report.orgs``), the run history (one line per
command of the rollout, so a rerun's report still tells the whole story) and, last
and apart, the figures engineers read (API calls, 429s, rates).
"""

from __future__ import annotations

import enum
import importlib.metadata
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from urllib.parse import urlsplit

from provisioner.models import (
    Manifest,
    Outcome,
    RunKind,
    RunRecord,
    RunStats,
    Status,
    Target,
)
from provisioner.report.cells import NOT_STARTED_ERROR, cell_time, error_kind
from provisioner.report.orgs import OrgCount, count_by_org, is_multi_org
from provisioner.settings import COMMERCIAL_BASE_URL, FEDRAMP_BASE_URL

__all__ = [
    "STATUS_MEANINGS",
    "Line",
    "LineKind",
    "ReportSummary",
    "SummaryCell",
    "cloud_name",
    "complete_outcomes",
    "counts_text",
    "group_counts",
    "natural_key",
    "report_history",
    "summarise",
    "summary_lines",
    "tool_version",
]

# One cell of the Summary: text, a number, a moment (UTC, shown as a date-time), or
# empty.
SummaryCell = str | int | float | datetime | None

# What each status means, for whoever the report is forwarded to.
STATUS_MEANINGS: Mapping[Status, str] = {
    Status.CREATED: "registered by MAC address",
    Status.ADOPTED: "was already registered to its owner; kept as it was",
    Status.CODE_ISSUED: "activation code issued: the device activates once it is entered",
    Status.CODE_PENDING: "the owner already had a pending code for this model; none issued",
    Status.FAILED: "needs attention: the error column says why",
    Status.INVALID: "the row's values need fixing: the error column says which",
    Status.NOT_STARTED: "the run stopped before it reached this row",
    Status.PLANNED: "dry run: the plan column says what a real run would do",
}
_NEEDS_RERUN = (Status.FAILED, Status.INVALID, Status.NOT_STARTED)


class LineKind(enum.StrEnum):
    """
    How a Summary line is shown.
    """

    TITLE = "title"
    SUBTITLE = "subtitle"
    HEADING = "heading"
    PAIR = "pair"
    TABLE_HEADER = "table header"
    TABLE_ROW = "table row"
    BLANK = "blank"


@dataclass(frozen=True, slots=True)
class Line:
    """
    One line of the Summary sheet; ``status`` colours its first cell.
    """

    kind: LineKind
    cells: tuple[SummaryCell, ...] = ()
    status: Status | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportSummary:
    """
    The counts a report's Summary sheet (and the CLI's summary) shows.
    """

    rows: int
    by_status: Mapping[Status, int]
    by_error: Mapping[str, int]
    not_started: int
    stats: RunStats
    #: Each org's rows by status, when the rows go to several orgs (else empty).
    by_org: tuple[OrgCount, ...] = ()

    @property
    def throughput(self) -> float | None:
        """
        Rows this run finished per second; None when it took no measurable time.
        """
        duration = self.stats.duration
        if duration <= 0:
            return None
        worked = self.stats.rows_worked
        if worked is None:
            worked = self.rows - self.not_started
        return worked / duration


def complete_outcomes(
    manifest: Manifest, outcomes: Mapping[int, Outcome]
) -> dict[int, Outcome]:
    """
    Give every manifest row an outcome, in manifest order.

    A row the run never reached (it was interrupted first) is ``not_started`` with
    ``NOT_STARTED_ERROR``, so the report is complete and ``rerun`` takes it.
    """
    complete = {}
    for row in manifest.rows:
        outcome = outcomes.get(row.number)
        if outcome is None:
            outcome = Outcome(
                row=row.number, status=Status.NOT_STARTED, error=NOT_STARTED_ERROR
            )
        elif outcome.row != row.number:
            # The row column must name the manifest row the line is for, whatever
            # number the outcome carried.
            outcome = replace(outcome, row=row.number)
        complete[row.number] = outcome
    return complete


def summarise(
    manifest: Manifest, outcomes: Mapping[int, Outcome], stats: RunStats
) -> ReportSummary:
    """
    Count the rows by status and by error kind.
    """
    complete = complete_outcomes(manifest, outcomes)
    by_status = Counter(outcome.status for outcome in complete.values())
    kinds = (error_kind(outcome) for outcome in complete.values())
    by_error = Counter(kind for kind in kinds if kind is not None)
    multi_org = is_multi_org(manifest, stats)
    return ReportSummary(
        rows=len(complete),
        by_status={status: by_status[status] for status in Status},
        by_error=dict(sorted(by_error.items(), key=lambda item: (-item[1], item[0]))),
        not_started=by_status[Status.NOT_STARTED],
        stats=stats,
        by_org=count_by_org(manifest, complete, stats) if multi_org else (),
    )


def report_history(summary: ReportSummary, source: str) -> tuple[RunRecord, ...]:
    """
    The run history a report shows: the stats' own, or this run alone when the caller
    kept none (a library caller, an old journal).
    """
    stats = summary.stats
    if stats.history:
        return stats.history
    counts = stats.worked
    if counts is None:
        counts = {status: n for status, n in summary.by_status.items() if n}
    kind = RunKind.DRY_RUN if stats.dry_run else RunKind.RUN
    if stats.resumed and not stats.dry_run:
        kind = RunKind.RESUME
    return (
        RunRecord(
            kind=kind,
            started_at=stats.started_at,
            finished_at=stats.finished_at,
            source=source,
            caller=stats.target.caller if stats.target else None,
            counts=counts,
            interrupted=stats.interrupted,
        ),
    )


def counts_text(counts: Mapping[Status, int]) -> str:
    """
    Counts by status as people read them: ``created 34 · code_issued 6``.
    """
    shown = [
        f"{status.value} {counts[status]}" for status in Status if counts.get(status)
    ]
    return " · ".join(shown) or "no rows"


def group_counts(
    manifest: Manifest, outcomes: Mapping[int, Outcome], column: str
) -> dict[str, Counter[Status]]:
    """
    Count the rows of each value of ``column`` by status, groups in natural order
    (floor 2 before floor 10; an empty cell is the group "(blank)").
    """
    index = manifest.columns.index(column)
    complete = complete_outcomes(manifest, outcomes)
    groups: dict[str, Counter[Status]] = {}
    for row in manifest.rows:
        value = row.cells[index].strip() if index < len(row.cells) else ""
        groups.setdefault(value or "(blank)", Counter())[
            complete[row.number].status
        ] += 1
    return {name: groups[name] for name in sorted(groups, key=natural_key)}


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """
    Sort key that orders numbers within text by value: "n2" before "n10".
    """
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part.casefold())
        for part in re.split(r"(\d+)", text)
        if part
    )


def cloud_name(base_url: str) -> str:
    """
    Name the Webex cloud a base URL belongs to, as people call it.
    """
    url = base_url.rstrip("/")
    if url == FEDRAMP_BASE_URL.rstrip("/"):
        return "Webex for Government (FedRAMP)"
    if url == COMMERCIAL_BASE_URL.rstrip("/"):
        return "Webex (commercial)"
    host = (urlsplit(url).hostname or "").lower()
    if host in ("localhost", "::1") or host.startswith("127."):
        return "a local emulator (nothing real was changed)"
    return "another API (not a Webex cloud this tool knows)"


def tool_version() -> str:
    """
    This tool's name and version, as installed.
    """
    try:
        return f"provisioner {importlib.metadata.version('provisioner')}"
    except importlib.metadata.PackageNotFoundError:
        return "provisioner (version unknown)"


def summary_lines(
    summary: ReportSummary,
    manifest: Manifest,
    *,
    report_name: str,
    outcomes: Mapping[int, Outcome],
    group_by: str | None = None,
) -> list[Line]:
    """
    Lay the Summary sheet out, top to bottom.

    Args:
        report_name: the report's file name, for the next step it names.
        outcomes: the rows' outcomes, for the counts per group.
        group_by: a manifest column to count the rows of each of its values by.
    """
    stats = summary.stats
    history = report_history(summary, manifest.path.name)
    first = _manifest_record(history)
    lines = [
        Line(LineKind.TITLE, ("Device provisioning report",)),
        Line(LineKind.SUBTITLE, (_subtitle(summary, first),)),
        Line(LineKind.BLANK),
        *_outcome_lines(summary, report_name),
        Line(LineKind.BLANK),
        *_where_lines(stats.target, first, stats),
    ]
    if summary.by_error:
        lines += [Line(LineKind.BLANK), Line(LineKind.HEADING, ("Problems by kind",))]
        lines += [Line(LineKind.PAIR, item) for item in summary.by_error.items()]
    if group_by is not None:
        lines += [Line(LineKind.BLANK), *_group_lines(manifest, outcomes, group_by)]
    if summary.by_org:
        lines += [Line(LineKind.BLANK), *_org_lines(summary.by_org)]
    lines += [
        Line(LineKind.BLANK),
        *_history_lines(history, part_of_orgs=stats.part_of_orgs),
    ]
    lines += [Line(LineKind.BLANK), *_engineering_lines(summary)]
    return lines


def _manifest_record(history: tuple[RunRecord, ...]) -> RunRecord:
    """
    The latest command that read the manifest itself (a run, a resume, a dry run), not
    a report: the sheet as it was last run, edited or not. A history of reruns alone
    (a report from an older version) names what the first of them read.
    """
    for record in reversed(history):
        if record.kind in _READ_THE_MANIFEST:
            return record
    return history[0]


_READ_THE_MANIFEST = frozenset({RunKind.RUN, RunKind.RESUME, RunKind.DRY_RUN})


def _subtitle(summary: ReportSummary, first: RunRecord) -> str:
    text = f"{first.source or 'manifest'}: {summary.rows} rows"
    if summary.stats.dry_run:
        text += " · dry run: nothing was changed in the org"
    if summary.stats.interrupted:
        text += f" · interrupted: {summary.not_started} rows not started"
    return text


def _outcome_lines(summary: ReportSummary, report_name: str) -> list[Line]:
    lines = [
        Line(LineKind.HEADING, ("What happened", "rows", "meaning")),
        Line(LineKind.PAIR, ("all rows", summary.rows)),
    ]
    lines += [
        Line(LineKind.PAIR, (status.value, count, STATUS_MEANINGS[status]), status)
        for status, count in summary.by_status.items()
        if count
    ]
    lines.append(Line(LineKind.PAIR, ("next step", _next_step(summary, report_name))))
    return lines


def _next_step(summary: ReportSummary, report_name: str) -> str:
    counts = summary.by_status
    if summary.stats.dry_run:
        return "run the same command without --dry-run to make these changes"
    if counts[Status.FAILED] or counts[Status.INVALID]:
        return (
            "fix the failed and invalid rows in the Report sheet, then run: "
            f"provisioner rerun {report_name}"
        )
    if counts[Status.NOT_STARTED]:
        return "run the same command again: it continues where the run stopped"
    if counts[Status.CODE_ISSUED]:
        return "hand out the activation codes (Activation codes sheet) to whoever sets up the devices"
    return "none: every row ended well"


def _where_lines(
    target: Target | None, first: RunRecord, stats: RunStats
) -> list[Line]:
    unknown = "not recorded"
    lines = [Line(LineKind.HEADING, ("Where and when",))]
    if target is None:
        lines.append(Line(LineKind.PAIR, ("cloud", unknown)))
    else:
        org_id = target.org_id or "the token's own org"
        # A partner's rows went to the orgs under "By org"; the target is the
        # token's own org, which may have had no rows at all.
        org = "the token's organisation" if stats.orgs else "organisation"
        lines += [
            Line(LineKind.PAIR, ("cloud", cloud_name(target.base_url))),
            Line(LineKind.PAIR, ("API base URL", target.base_url)),
            Line(LineKind.PAIR, (org, target.org_name or unknown)),
            Line(LineKind.PAIR, (f"{org} id", org_id)),
            Line(LineKind.PAIR, ("run by", target.caller or unknown)),
            Line(LineKind.PAIR, ("tag mode", target.tag_mode.value)),
        ]
    lines += [
        Line(LineKind.PAIR, ("started (UTC)", cell_time(stats.started_at))),
        Line(LineKind.PAIR, ("finished (UTC)", cell_time(stats.finished_at))),
        Line(LineKind.PAIR, ("manifest", first.source or unknown)),
        Line(LineKind.PAIR, ("manifest SHA-256", first.source_sha256 or unknown)),
        Line(LineKind.PAIR, ("tool", tool_version())),
    ]
    return lines


def _group_lines(
    manifest: Manifest, outcomes: Mapping[int, Outcome], column: str
) -> list[Line]:
    groups = group_counts(manifest, outcomes, column)
    lines = [
        Line(LineKind.HEADING, (f"By {column}",)),
        Line(LineKind.TABLE_HEADER, (column, "rows", "by status")),
    ]
    for value, counts in groups.items():
        cells = (value, sum(counts.values()), counts_text(counts))
        lines.append(Line(LineKind.TABLE_ROW, cells))
    return lines


def _org_lines(counts: Sequence[OrgCount]) -> list[Line]:
    lines = [
        Line(LineKind.HEADING, ("By org",)),
        Line(LineKind.TABLE_HEADER, ("org", "rows", "by status")),
    ]
    for count in counts:
        cells = (count.org.label(), count.rows, counts_text(count.by_status))
        lines.append(Line(LineKind.TABLE_ROW, cells))
    return lines


def _history_lines(
    history: Sequence[RunRecord], *, part_of_orgs: int = 0
) -> list[Line]:
    """
    The Run history table. In one org's report of a partner run a command's counts
    are the org's own only where known (``orgs._org_history``): the others say
    where the whole run's are.
    """
    lines = [
        Line(LineKind.HEADING, ("Run history",)),
        Line(
            LineKind.TABLE_HEADER,
            (
                "command",
                "started (UTC)",
                "finished (UTC)",
                "run by",
                "input",
                "rows it decided",
            ),
        ),
    ]
    for number, record in enumerate(history, start=1):
        what = f"{number} · {record.kind.value}"
        if record.interrupted:
            what += " (interrupted)"
        lines.append(
            Line(
                LineKind.TABLE_ROW,
                (
                    what,
                    cell_time(record.started_at),
                    cell_time(record.finished_at),
                    record.caller or "",
                    record.source,
                    "in the combined report"
                    if part_of_orgs and not record.counts
                    else counts_text(record.counts),
                ),
            )
        )
    return lines


def _engineering_lines(summary: ReportSummary) -> list[Line]:
    stats = summary.stats
    pairs: list[tuple[str, SummaryCell]] = [
        ("API calls (retries included)", stats.api_calls),
        ("retries", stats.retries),
        ("answers 'too many requests' (HTTP 429)", stats.rate_limited),
        ("duration (seconds)", round(stats.duration, 1)),
    ]
    if summary.throughput is not None:
        pairs.append(("rows per second", round(summary.throughput, 1)))
    if stats.final_rate is not None:
        pairs.append(
            ("request rate at the end (per second)", round(stats.final_rate, 1))
        )
    if stats.learned_limit is not None:
        # In one org's part of a partner's report the limit is that org's own.
        owner = "this org's " if stats.part_of_orgs else ""
        pairs.append(
            (
                f"{owner}API limit learned from 429s (per second)",
                round(stats.learned_limit, 1),
            )
        )
    if stats.codes_voided:
        pairs.append(("replaced activation codes voided", stats.codes_voided))
    heading = "For engineers: this command's API figures"
    if stats.part_of_orgs:
        # One org's report of a partner run: the client counts calls for the run.
        heading += f" (the whole run, all {stats.part_of_orgs} orgs)"
    return [
        Line(LineKind.HEADING, (heading,)),
        *(Line(LineKind.PAIR, pair) for pair in pairs),
    ]
