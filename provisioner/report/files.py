"""
The run's report: every manifest row exactly once, in manifest order, with its outcome.

A report is the manifest with the result columns appended on the right, so ``rerun``
reads it back as a manifest (a person may fix a value in it first) plus the previous
outcomes. Deciding what goes in each cell is pure (``report_records``, ``error_cell``,
``error_kind``, ``summarise``); writing is one atomic replace per file, created with mode
0600 whenever the report holds activation codes.

The CSV is plain UTF-8 without a BOM, ``\\n`` line ends: it is the file for scripts,
though forwarded and opened in a spreadsheet too, so a cell a spreadsheet would run as
a formula (a tag ``=1+1``, an error starting with ``-``) is written after the text
mark ``'`` (``table.py``, ``intake/formulas.py``), which ``load_report`` takes off
again. The XLSX written beside it by default is the file for people, with the same rows
(ids as Text, the expiry a date-time, long text wrapped: ``report_column_kinds``), a
Summary (``summary.py``), an Activation codes sheet when codes were issued
(``codes_sheet.py``) and the run history, hidden (``history.py``). Excel users who
edit the CSV and save it as "CSV UTF-8" get a BOM back, which ``load_report`` accepts.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from provisioner.errors import (
    ConfigError,
    ManifestError,
    ManifestReadError,
    MissingColumnError,
)
from provisioner.intake.formulas import unmarked
from provisioner.intake.mac import numeric_mac_text
from provisioner.intake.manifest import (
    PASSWORD_MASK,
    RawTable,
    build_manifest,
    match_headers,
    read_table,
)
from provisioner.intake.sheet import DELIMITED_SUFFIXES
from provisioner.intake.validation import marked_columns
from provisioner.models import Manifest, Outcome, RunStats, Status
from provisioner.report.cells import (
    NOT_STARTED_ERROR,
    OPTIONAL_COLUMNS,
    RESULT_COLUMNS,
    TAGS_DEFERRED_PREFIX,
    Cell,
    decode_error_cell,
    error_cell,
    error_kind,
    outcome_cells,
    parse_outcome,
)
from provisioner.report.codes_sheet import CODES_SHEET, code_lines
from provisioner.report.history import HISTORY_SHEET
from provisioner.report.summary import (
    ReportSummary,
    complete_outcomes,
    report_history,
    summarise,
    summary_lines,
)
from provisioner.report.table import SECRET_MODE, SUFFIXES, TableFile, atomic_file

if TYPE_CHECKING:
    from provisioner.report.xlsx import ColumnKinds

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
    "report_column_kinds",
    "report_paths",
    "report_records",
    "rows_to_rerun",
    "summarise",
    "write_codes_sheet",
    "write_report",
]

log = structlog.get_logger()

# Result columns that hold ids or codes (Text in the workbook), and the wrapped ones
# with their widths: long sentences read better as a paragraph.
TEXT_RESULTS = frozenset({"deviceId", "activationCode", "trackingId"})
WRAPPED_WIDTHS = {"error": 60, "plan": 48}


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


def report_records(
    manifest: Manifest, outcomes: Mapping[int, Outcome]
) -> Iterator[list[Cell]]:
    """
    Yield one report record per manifest row: input cells, then the result cells.

    Input cells are as the manifest held them, except a CSV manifest's cell in a
    column the tool uses that is marked as text (``'=1+1``: ``intake/formulas.py``),
    which is the value it marks (a CSV report marks it again, once), a non-empty
    password, which is masked, and a MAC the sheet stored as a suspect number, which
    is written as the spreadsheet showed it (``numeric_mac_text``: read back as text
    by a rerun, its digits would pass for a MAC). ``row``, ``httpStatus`` and
    ``attempts`` are numbers; an empty result cell is None.
    """
    width = len(manifest.columns)
    secret = _field_index(manifest, "password")
    mac = _field_index(manifest, "mac")
    complete = complete_outcomes(manifest, outcomes)
    # The value: kept marked, a CSV manifest's tag '-x would be marked once more by
    # each rerun of its report, and would show its mark in the XLSX.
    marked = _marked_inputs(manifest) if _is_text_file(manifest.path) else ()
    for row in manifest.rows:
        cells: list[Cell] = list(row.cells[:width])
        cells.extend([""] * (width - len(cells)))
        for index in marked:
            text = cells[index]
            if isinstance(text, str):
                cells[index] = unmarked(text)
        if secret is not None and cells[secret]:
            cells[secret] = PASSWORD_MASK
        stored = manifest.numbers.get((row.number, mac)) if mac is not None else None
        if stored is not None and mac is not None:
            cells[mac] = numeric_mac_text(stored, row.cells[mac])
        cells.extend(outcome_cells(complete[row.number]))
        yield cells


def write_report(
    manifest: Manifest,
    outcomes: Mapping[int, Outcome],
    paths: Sequence[Path],
    stats: RunStats,
    *,
    group_by: str | None = None,
) -> None:
    """
    Write the report to each path (by extension: ``.xlsx`` or ``.csv``), atomically.

    Each file is written to a temporary file beside it and renamed over the target, so
    a reader never sees half a report. It is created with mode 0600 when any row holds
    an activation code.

    Args:
        group_by: a manifest column whose values the Summary counts the rows by.

    Raises:
        ConfigError: a path has another extension, ``group_by`` is not a column, or
            the file cannot be written.
    """
    records = list(report_records(manifest, outcomes))
    header = (*manifest.columns, *RESULT_COLUMNS)
    complete = complete_outcomes(manifest, outcomes).values()
    has_codes = any(outcome.activation_code for outcome in complete)
    if group_by is not None and group_by not in manifest.columns:
        raise ConfigError(_no_such_column(manifest, group_by))
    width = len(manifest.columns)
    for path in paths:
        if path.suffix.lower() not in SUFFIXES:
            raise ConfigError(f'cannot write the report "{path}": use .xlsx or .csv')
        is_xlsx = path.suffix.lower() == ".xlsx"
        try:
            with TableFile(
                path,
                header,
                secret=has_codes,
                status_column=width + RESULT_COLUMNS.index("status"),
                # Only a workbook shows column kinds; asking for them imports
                # openpyxl, a fifth of a CSV-only run's start-up.
                kinds=report_column_kinds(manifest) if is_xlsx else None,
            ) as table:
                for record in records:
                    table.append(record)
                if is_xlsx:
                    _add_sheets(table, path, manifest, outcomes, stats, group_by)
        except OSError as error:
            raise ConfigError(
                f'cannot write the report "{path}": {error.strerror or error}; '
                "check that the folder is writable, or choose another path with --report"
            ) from error
        log.info("report_written", path=str(path), rows=len(records), secret=has_codes)


def write_codes_sheet(
    manifest: Manifest,
    outcomes: Mapping[int, Outcome],
    path: Path,
    *,
    only: frozenset[int] | None = None,
    group_by: str | None = None,
    org_names: Mapping[str | None, str] | None = None,
) -> int:
    """
    Write an XLSX holding only the Activation codes sheet (mode 0600: codes are
    secrets), atomically; return how many codes it lists.

    Args:
        only: the rows to list (the codes still pending); None lists every code.
        org_names: the orgs' names by the key rows give (``code_lines``).

    Raises:
        ConfigError: the path is not .xlsx, ``group_by`` is not a column, or the file
            cannot be written.
    """
    if path.suffix.lower() != ".xlsx":
        raise ConfigError(f'cannot write the codes sheet "{path}": name it .xlsx')
    if group_by is not None and group_by not in manifest.columns:
        raise ConfigError(_no_such_column(manifest, group_by))
    lines = code_lines(
        manifest, outcomes, only=only, group_by=group_by, org_names=org_names
    )
    # Imported here: openpyxl is for writing, and validate never writes.
    from provisioner.report.sheets import write_codes_workbook

    try:
        with atomic_file(path, SECRET_MODE) as file:
            write_codes_workbook(
                file, lines, group_by=group_by, title=f"Activation codes · {path.name}"
            )
    except OSError as error:
        raise ConfigError(
            f'cannot write the codes sheet "{path}": {error.strerror or error}; '
            "check that the folder is writable, or choose another path"
        ) from error
    log.info("codes_sheet_written", path=str(path), codes=len(lines))
    return len(lines)


def _no_such_column(manifest: Manifest, column: str) -> str:
    names = ", ".join(f'"{name}"' for name in manifest.columns)
    return (
        f'--group-by "{column}": the manifest has no such column; its columns are '
        f"{names} (the name is matched exactly)"
    )


def _add_sheets(
    table: TableFile,
    path: Path,
    manifest: Manifest,
    outcomes: Mapping[int, Outcome],
    stats: RunStats,
    group_by: str | None,
) -> None:
    """
    Give an XLSX report its Summary, its Activation codes sheet (when codes were
    issued) and its hidden run history.
    """
    # Imported here: openpyxl is for writing, and validate never writes.
    from provisioner.report.sheets import write_codes_sheet as codes_sheet
    from provisioner.report.sheets import write_history_sheet

    summary = summarise(manifest, outcomes, stats)
    table.summary = summary_lines(
        summary, manifest, report_name=path.name, outcomes=outcomes, group_by=group_by
    )
    names = {info.key: info.name or info.id or "" for info in stats.orgs}
    codes = code_lines(manifest, outcomes, group_by=group_by, org_names=names)
    if codes:
        title = f"Activation codes · {path.name}"
        table.sheets.append(
            lambda book: codes_sheet(
                book.create_sheet(CODES_SHEET), codes, group_by=group_by, title=title
            )
        )
    history = report_history(summary, manifest.path.name)
    table.sheets.append(
        lambda book: write_history_sheet(book.create_sheet(HISTORY_SHEET), history)
    )


def report_column_kinds(manifest: Manifest) -> ColumnKinds:
    """
    The report's MAC, id and code columns (Text), its expiry (a date-time) and its
    long-text columns (wrapped); a rollback's report extends them.
    """
    from provisioner.report.xlsx import ColumnKinds

    width = len(manifest.columns)
    result = {name: width + at for at, name in enumerate(RESULT_COLUMNS)}
    return ColumnKinds(
        text=_text_inputs(manifest) | {result[name] for name in TEXT_RESULTS},
        dates=frozenset({result["activationExpiry"]}),
        wrapped={result[name]: size for name, size in WRAPPED_WIDTHS.items()},
    )


def _text_inputs(manifest: Manifest) -> frozenset[int]:
    """
    The input columns holding MACs and ids: Text in the workbook.
    """
    return frozenset(
        manifest.columns.index(header)
        for name, header in manifest.field_columns.items()
        if (name == "mac" or name.endswith("Id")) and header in manifest.columns
    )


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


def _field_index(manifest: Manifest, name: str) -> int | None:
    header = manifest.field_columns.get(name)
    if header is None or header not in manifest.columns:
        return None
    return manifest.columns.index(header)


def load_report(
    path: Path, *, elsewhere: Mapping[str, tuple[int, ...]] | None = None
) -> tuple[Manifest, dict[int, Outcome]]:
    """
    Read a report back (CSV or XLSX): its input columns as a manifest, and its outcomes.

    The manifest's rows keep their original row numbers (the ``row`` column) and are
    validated again like any manifest, so a value a person fixed in the report is the
    value a rerun uses. A masked password reads back as no password. ``elsewhere``:
    the MACs of the run's rows outside the report (``Manifest.elsewhere``).

    A CSV's cells marked as text (``'=1+1``: ``intake/formulas.py``) read as the
    value they mark: in the columns the tool uses, the manifest reader takes the
    mark off, so a ``'`` a person typed there means what it means in a manifest; in
    the header, the other input columns and the result columns, this function does,
    so they read back exactly as they were written.

    Raises:
        ManifestReadError: the file cannot be read, or a result cell is unusable.
        MissingColumnError: the file is not a provisioner report.
    """
    table = read_table(Path(path))
    is_marked = _is_text_file(table.path)
    if is_marked:
        table = replace(table, columns=tuple(map(unmarked, table.columns)))
    positions = _result_positions(table)
    width = positions["row"]
    plain = _plain_columns(table, width) if is_marked else ()
    outcomes: dict[int, Outcome] = {}
    lines: dict[int, int] = {}
    records: list[tuple[int, tuple[str, ...]]] = []
    for line, cells in table.records:
        if plain and "\0'" in "\0" + "\0".join(cells):
            # Some cell starts with the mark (the join finds it in one C call:
            # most rows have none).
            cells = _unmark_cells(cells, plain)
        values = dict.fromkeys(OPTIONAL_COLUMNS, "")
        values.update({name: cells[index] for name, index in positions.items()})
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
        replace(table, columns=table.columns[:width], records=records),
        elsewhere=elsewhere,
    )
    return manifest, outcomes


def _is_text_file(path: Path) -> bool:
    """
    True for a CSV (or TSV): its cells may carry the text mark; an XLSX's never do.
    """
    return path.suffix.lower() in DELIMITED_SUFFIXES


def _marked_inputs(manifest: Manifest) -> tuple[int, ...]:
    """
    The manifest's columns whose CSV cells the manifest reader reads without the
    text mark (``marked_columns``): the columns the tool uses, but the password.
    """
    fields = {
        name: manifest.columns.index(header)
        for name, header in manifest.field_columns.items()
        if header in manifest.columns
    }
    return tuple(sorted(marked_columns(fields)))


def _plain_columns(table: RawTable, width: int) -> tuple[int, ...]:
    """
    The columns of a CSV report whose cells ``load_report`` takes the text mark off:
    every column but those the tool uses among the first ``width`` (the manifest's).
    Theirs go to ``build_manifest`` as a CSV manifest's would, and it reads them by
    its own rule (taken off twice, ``'=1+1`` would read as a formula).
    """
    try:
        fields = match_headers(table.path, table.columns[:width])
    except ManifestError:
        fields = {}  # build_manifest says what is wrong with the header
    used = set(fields.values())
    return tuple(index for index in range(len(table.columns)) if index not in used)


def _unmark_cells(cells: tuple[str, ...], columns: Sequence[int]) -> tuple[str, ...]:
    plain = list(cells)
    for index in columns:
        plain[index] = unmarked(plain[index])
    return tuple(plain)


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
            "give a report written by `provisioner run` (its columns end with "
            f"{', '.join(RESULT_COLUMNS)})"
        )
    start = last["row"]
    positions = {name: last.get(name, -1) for name in RESULT_COLUMNS}
    missing = [
        name
        for name, index in positions.items()
        if index < start and name not in OPTIONAL_COLUMNS
    ]
    if missing:
        raise MissingColumnError(
            f"{table.path}: the report has lost its result column(s) "
            f"{', '.join(missing)}; rerun needs every column a run writes "
            f"({', '.join(RESULT_COLUMNS)}): use the report as the run wrote it"
        )
    # A column a report written before it existed lacks is read as empty.
    return {name: index for name, index in positions.items() if index >= start}
