"""
The run's report: every manifest row exactly once, in manifest order, with its outcome.

A report is the manifest with the result columns appended on the right, so ``rerun``
reads it back as a manifest (a person may fix a value in it first) plus the previous
outcomes. Deciding what goes in each cell is pure (``report_records``, ``error_cell``,
``error_kind``, ``summarise``); writing is one atomic replace per file, created with mode
0600 whenever the report holds activation codes.

The CSV is plain UTF-8 without a BOM, ``\\n`` line ends: it is the file for scripts,
and the XLSX written beside it by default is the file for people. Excel users who edit
the CSV and save it as "CSV UTF-8" get a BOM back, which ``load_report`` accepts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import structlog

from provisioner.errors import ConfigError, ManifestReadError, MissingColumnError
from provisioner.intake.manifest import (
    PASSWORD_MASK,
    RawTable,
    build_manifest,
    read_table,
)
from provisioner.models import Manifest, Outcome, RunStats, Status
from provisioner.report.cells import (
    NOT_STARTED_ERROR,
    RESULT_COLUMNS,
    TAGS_DEFERRED_PREFIX,
    Cell,
    decode_error_cell,
    error_cell,
    error_kind,
    outcome_cells,
    parse_outcome,
)
from provisioner.report.orgs import OrgCount, count_by_org, is_multi_org
from provisioner.report.table import SUFFIXES, TableFile

__all__ = [
    "NOT_STARTED_ERROR",
    "PASSWORD_MASK",
    "RESULT_COLUMNS",
    "TAGS_DEFERRED_PREFIX",
    "ReportSummary",
    "RunStats",
    "complete_outcomes",
    "decode_error_cell",
    "error_cell",
    "error_kind",
    "load_report",
    "org_counts_text",
    "report_paths",
    "report_records",
    "rows_to_rerun",
    "summarise",
    "summary_items",
    "write_report",
]

log = structlog.get_logger()


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


def report_paths(
    manifest_path: Path, report: Path | None, *, reports_dir: Path = Path("reports")
) -> tuple[Path, ...]:
    """
    Decide which report files a run writes.

    ``--report x.xlsx`` or ``x.csv`` writes that one file; a path without an extension
    writes both ``x.xlsx`` and ``x.csv``; an existing folder, or no ``--report``, writes
    both as ``<manifest stem>-report.*`` in it (by default under ``reports/``).

    Raises:
        ConfigError: the extension is neither ``.xlsx`` nor ``.csv``.
    """
    if report is None or report.is_dir():
        folder = reports_dir if report is None else report
        report = folder / f"{manifest_path.stem}-report"
        return tuple(Path(f"{report}{suffix}") for suffix in SUFFIXES)
    suffix = report.suffix.lower()
    if suffix in SUFFIXES:
        return (report,)
    if suffix:
        raise ConfigError(
            f'--report "{report}": a report is .xlsx or .csv, not "{report.suffix}"; '
            "give one of those extensions, or none to write both"
        )
    return tuple(Path(f"{report}{suffix}") for suffix in SUFFIXES)


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


def report_records(
    manifest: Manifest, outcomes: Mapping[int, Outcome]
) -> Iterator[list[Cell]]:
    """
    Yield one report record per manifest row: input cells, then the result cells.

    Input cells are as the manifest held them, except a non-empty password, which is
    masked. ``row``, ``httpStatus`` and ``attempts`` are numbers; an empty result cell
    is None.
    """
    width = len(manifest.columns)
    secret = _password_index(manifest)
    complete = complete_outcomes(manifest, outcomes)
    for row in manifest.rows:
        cells: list[Cell] = list(row.cells[:width])
        cells.extend([""] * (width - len(cells)))
        if secret is not None and cells[secret]:
            cells[secret] = PASSWORD_MASK
        cells.extend(outcome_cells(complete[row.number]))
        yield cells


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
    multi = is_multi_org(manifest, stats)
    return ReportSummary(
        rows=len(complete),
        by_status={status: by_status[status] for status in Status},
        by_error=dict(sorted(by_error.items(), key=lambda item: (-item[1], item[0]))),
        not_started=by_status[Status.NOT_STARTED],
        stats=stats,
        by_org=count_by_org(manifest, complete, stats) if multi else (),
    )


def summary_items(summary: ReportSummary, manifest: Manifest) -> list[tuple[str, Cell]]:
    """
    Lay a summary out as label/value pairs; a pair with value None is a heading.
    """
    stats = summary.stats
    throughput = summary.throughput
    items: list[tuple[str, Cell]] = [
        ("Run", None),
        ("manifest", str(manifest.path)),
        ("sheet", manifest.sheet or ""),
        *_target_items(stats),
        ("dry run", "yes" if stats.dry_run else "no"),
        ("interrupted", "yes" if stats.interrupted else "no"),
        ("started", stats.started_at.isoformat(timespec="seconds")),
        ("finished", stats.finished_at.isoformat(timespec="seconds")),
        ("duration (s)", f"{stats.duration:.1f}"),
        ("throughput (rows/s)", "" if throughput is None else f"{throughput:.1f}"),
        ("API calls", stats.api_calls),
        ("retries", stats.retries),
        ("rate limited (429)", stats.rate_limited),
        ("final rate (req/s)", _format_rate(stats.final_rate)),
        ("Rows by status", None),
        ("rows", summary.rows),
    ]
    if stats.rows_worked is not None:
        items.append(("worked on in this run", stats.rows_worked))
    if stats.codes_voided:
        items.append(("activation codes voided", stats.codes_voided))
    items.extend((status.value, count) for status, count in summary.by_status.items())
    items.append(("Rows by error", None))
    items.extend(summary.by_error.items())
    if not summary.by_error:
        items.append(("none", 0))
    if summary.by_org:
        items.append(("Rows by org", None))
        items.extend(
            (count.org.label(), org_counts_text(count)) for count in summary.by_org
        )
    return items


def org_counts_text(count: OrgCount) -> str:
    """
    One org's rows in a few words: ``300 rows: created 298 · failed 2``.
    """
    shown = [f"{status.value} {n}" for status, n in count.by_status.items() if n]
    return f"{count.rows} rows: " + (" · ".join(shown) or "none")


def write_report(
    manifest: Manifest,
    outcomes: Mapping[int, Outcome],
    paths: Sequence[Path],
    stats: RunStats,
) -> None:
    """
    Write the report to each path (by extension: ``.xlsx`` or ``.csv``), atomically.

    Each file is written to a temporary file beside it and renamed over the target, so
    a reader never sees half a report. It is created with mode 0600 when any row holds
    an activation code.

    Raises:
        ConfigError: a path has another extension, or the file cannot be written.
    """
    records = list(report_records(manifest, outcomes))
    header = (*manifest.columns, *RESULT_COLUMNS)
    complete = complete_outcomes(manifest, outcomes).values()
    has_codes = any(outcome.activation_code for outcome in complete)
    status_column = len(manifest.columns) + RESULT_COLUMNS.index("status")
    for path in paths:
        if path.suffix.lower() not in SUFFIXES:
            raise ConfigError(f'cannot write the report "{path}": use .xlsx or .csv')
        try:
            with TableFile(
                path, header, secret=has_codes, status_column=status_column
            ) as table:
                for record in records:
                    table.append(record)
                if path.suffix.lower() == ".xlsx":
                    summary = summarise(manifest, outcomes, stats)
                    table.summary = summary_items(summary, manifest)
        except OSError as error:
            raise ConfigError(
                f'cannot write the report "{path}": {error.strerror or error}; '
                "check that the folder is writable, or choose another path with --report"
            ) from error
        log.info("report_written", path=str(path), rows=len(records), secret=has_codes)


def rows_to_rerun(outcomes: Mapping[int, Outcome]) -> frozenset[int]:
    """
    Pick the rows ``rerun`` takes: failed, invalid, not started or only planned (a dry
    run's report), and deferred tags.
    """
    return frozenset(
        number
        for number, outcome in outcomes.items()
        if outcome.status.wants_rerun
        or (outcome.status is Status.CODE_ISSUED and outcome.tags_deferred)
    )


def _target_items(stats: RunStats) -> list[tuple[str, Cell]]:
    """
    Where the run wrote: API, org, tag mode and who ran it (none for an old report).
    """
    target = stats.target
    if target is None:
        return []
    return [
        ("API", target.base_url),
        ("org", target.org_label()),
        ("tag mode", target.tag_mode.value),
        ("run by", target.caller or ""),
    ]


def _password_index(manifest: Manifest) -> int | None:
    header = manifest.field_columns.get("password")
    if header is None or header not in manifest.columns:
        return None
    return manifest.columns.index(header)


def _format_rate(rate: float | None) -> str:
    return "" if rate is None else f"{rate:.1f}"


def load_report(path: Path) -> tuple[Manifest, dict[int, Outcome]]:
    """
    Read a report back (CSV or XLSX): its input columns as a manifest, and its outcomes.

    The manifest's rows keep their original row numbers (the ``row`` column) and are
    validated again like any manifest, so a value a person fixed in the report is the
    value a rerun uses. A masked password reads back as no password.

    Raises:
        ManifestReadError: the file cannot be read, or a result cell is unusable.
        MissingColumnError: the file is not a provisioner report.
    """
    table = read_table(Path(path))
    positions = _result_positions(table)
    width = positions["row"]
    outcomes: dict[int, Outcome] = {}
    lines: dict[int, int] = {}
    records: list[tuple[int, tuple[str, ...]]] = []
    for line, cells in table.records:
        values = {name: cells[index] for name, index in positions.items()}
        outcome = parse_outcome(table.path, line, values)
        if outcome.row in outcomes:
            raise ManifestReadError(
                f'{table.path}, row {line}, column "row": row {outcome.row} is also on '
                f"row {lines[outcome.row]}; each manifest row is in a report once: "
                "delete the copy, or use the report as the run wrote it"
            )
        outcomes[outcome.row] = outcome
        lines[outcome.row] = line
        records.append((outcome.row, cells[:width]))
    # A person may have sorted the report (say, by status) before saving it; the
    # manifest order is the row numbers' order.
    records.sort(key=lambda record: record[0])
    outcomes = dict(sorted(outcomes.items()))
    manifest = build_manifest(
        replace(table, columns=table.columns[:width], records=records)
    )
    return manifest, outcomes


def _result_positions(table: RawTable) -> dict[str, int]:
    """
    Find the result columns: the last ``row`` column, and each result column after it.

    Taking the last ``row`` keeps a manifest's own "row" or "status" column an input
    column; columns a person added after the result columns are ignored.
    """
    columns = table.columns
    last = {name: index for index, name in enumerate(columns)}
    if "status" not in last or "row" not in last:
        absent = "status" if "status" not in last else "row"
        raise MissingColumnError(
            f'{table.path}: this is not a provisioner report: no "{absent}" column; '
            "rerun takes a report written by `provisioner run` (its columns end with "
            f"{', '.join(RESULT_COLUMNS)})"
        )
    start = last["row"]
    positions = {name: last.get(name, -1) for name in RESULT_COLUMNS}
    missing = [name for name, index in positions.items() if index < start]
    if missing:
        raise MissingColumnError(
            f"{table.path}: the report has lost its result column(s) "
            f"{', '.join(missing)}; rerun needs every column a run writes "
            f"({', '.join(RESULT_COLUMNS)}): use the report as the run wrote it"
        )
    return positions
