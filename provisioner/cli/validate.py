"""
``provisioner validate``: check a manifest offline and say what to fix, row by row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from pathlib import Path

import click

from provisioner.cli.common import ConnectionOptions
from provisioner.cli.exit_codes import EXIT_FAILED_ROWS, EXIT_OK, EXIT_UNUSABLE
from provisioner.cli.live_checks import live_options, run_live_checks
from provisioner.errors import ManifestError
from provisioner.intake.catalogue import load_catalogue
from provisioner.intake.manifest import PASSWORD_MASK, load_manifest
from provisioner.intake.repeats import repeated_code_warnings
from provisioner.models import Manifest, Problem, Row
from provisioner.report.cells import REPORT_MARKERS, code_problem
from provisioner.words import count_of, verb_for

__all__ = [
    "code_problems",
    "format_problem",
    "render_validation",
    "row_problems",
    "validate",
]

_MAX_VALUE = 60
# The report's activation-code column (a report given to validate carries it).
CODE_COLUMN = "activationCode"


@click.command()
@click.argument("manifest", type=click.Path(path_type=Path, dir_okay=True))
@click.option(
    "--sheet",
    metavar="NAME",
    help="The XLSX sheet to read (default: the first visible one).",
)
@click.option(
    "--live",
    is_flag=True,
    help=(
        "Then check against the org with read-only calls: MACs in use, models the "
        "org supports, owners that exist (needs a token)."
    ),
)
@live_options
def validate(
    manifest: Path, sheet: str | None, live: bool, connection: ConnectionOptions
) -> None:
    """
    Check MANIFEST (CSV, TSV or XLSX) without calling the API (unless --live).

    Prints every problem with its row, column and value and what to do, then a
    summary. Exit status: 0 every row is valid, 1 some rows are invalid, 2 the file
    itself cannot be used. A report is checked as rerun reads it: its rows are named
    by its own row column.

    With --live, the rows are then checked against the org (WEBEX_ACCESS_TOKEN or
    --token-file; --base-url or --cloud): MACs through validateMacs (in use, and by
    whom), models against the org's supportedDevices, each owner looked up once. No
    write call is made. Exit 2 also when the token is refused.
    """
    try:
        loaded = load_manifest(manifest, sheet=sheet)
    except ManifestError as error:
        click.echo(f"Error: {error}", err=True)
        raise SystemExit(EXIT_UNUSABLE) from None
    if not loaded.rows:
        click.echo(
            f"Error: {manifest}: the header is there but no device rows are below "
            "it; add one row per device",
            err=True,
        )
        raise SystemExit(EXIT_UNUSABLE)
    loaded = _as_report(manifest, loaded) if sheet is None else loaded
    checked = run_live_checks(loaded, connection) if live else None
    if checked is not None:
        loaded = checked.preflight.manifest
    problems = row_problems(loaded)
    for number, found in code_problems(loaded).items():
        problems[number] = (*problems.get(number, ()), *found)
    for line in render_validation(loaded, problems, live=checked is not None):
        click.echo(line)
    if checked is not None:
        for line in checked.lines():
            click.echo(line)
    raise SystemExit(EXIT_FAILED_ROWS if problems else EXIT_OK)


def _as_report(path: Path, loaded: Manifest) -> Manifest:
    """
    A report's rows as ``rerun`` reads them: numbered by the report's own ``row``
    column (the manifest's rows, which its ``error`` cells and ``rerun`` name), not by
    their place in the sheet. A report that ``rerun`` could not read (a code a
    spreadsheet turned into a number, say) is checked as a sheet, whose problems say
    what to put back.
    """
    if not set(loaded.columns) >= REPORT_MARKERS:
        return loaded
    # Imported here: reading a report needs what a manifest does not (structlog).
    from provisioner.report.files import load_report

    try:
        return load_report(path)[0]
    except ManifestError:
        return loaded


def row_problems(manifest: Manifest) -> dict[int, tuple[Problem, ...]]:
    """
    Return the offline problems of each invalid row, by row number.
    """
    return {row.number: row.problems for row in manifest.rows if row.problems}


def code_problems(manifest: Manifest) -> dict[int, tuple[Problem, ...]]:
    """
    In a report (or a sheet made from one), the activation codes a spreadsheet turned
    into numbers, by row number: their digits are lost and must not be used.
    """
    if CODE_COLUMN not in manifest.columns:
        return {}
    # A report's own column is the last of that name (see load_report).
    index = len(manifest.columns) - 1 - manifest.columns[::-1].index(CODE_COLUMN)
    found: dict[int, tuple[Problem, ...]] = {}
    for row in manifest.rows:
        text = row.cells[index] if index < len(row.cells) else ""
        problem = code_problem(text)
        if problem is not None:
            # The value stays out: it is what is left of a secret.
            message = (
                f"{problem}; copy the code back from the .xlsx report, or from the "
                "report the run wrote"
            )
            found[row.number] = (Problem(CODE_COLUMN, PASSWORD_MASK, message),)
    return found


def render_validation(
    manifest: Manifest,
    problems: Mapping[int, Sequence[Problem]],
    *,
    live: bool = False,
) -> list[str]:
    """
    Return the lines ``validate`` prints: one per problem, then the summary.

    ``problems`` decides which rows count as invalid, so checks made elsewhere (the
    live ones) can be merged in before printing. ``live``: the live checks ran, so
    the names were looked up already (their own lines say how it went).
    """
    lines = [
        format_problem(number, problem)
        for number in sorted(problems)
        for problem in problems[number]
    ]
    if lines:
        lines.append("")
    lines.extend(_summary(manifest, problems, live=live))
    return lines


def format_problem(number: int, problem: Problem) -> str:
    """
    Render one problem as ``row N, column "C", value "V": what to do``.
    """
    value = problem.value
    if len(value) > _MAX_VALUE:
        value = value[: _MAX_VALUE - 1] + "…"
    shown = f'value "{value}"' if value else "empty"
    return f'row {number}, column "{problem.column}", {shown}: {problem.message}'


def _summary(
    manifest: Manifest, problems: Mapping[int, Sequence[Problem]], *, live: bool
) -> list[str]:
    rows = manifest.rows
    # Counted with map: a 100,000-row sheet is counted in C, not row by row.
    invalid = sum(map(bool, map(problems.get, map(attrgetter("number"), rows))))
    where = f"{manifest.path}" + (
        f' (sheet "{manifest.sheet}")' if manifest.sheet else ""
    )
    lines = [
        (
            f"{where}: {count_of(len(rows), 'row')}, {len(rows) - invalid} valid, "
            f"{invalid} invalid"
        )
    ]
    if "mac" in manifest.field_columns:
        index = manifest.columns.index(manifest.field_columns["mac"])
        by_mac = sum(map(bool, map(itemgetter(index), map(attrgetter("cells"), rows))))
        lines.append(
            f"  onboarding: {by_mac} by MAC, {len(rows) - by_mac} by activation code"
        )
    else:
        lines.append(
            "  onboarding: no MAC column, so every row gets an activation code"
        )
    owners = _Owners.count(rows)
    lines.append(
        f"  owners: {count_of(owners.on_workspaces, 'row')} for "
        f"{count_of(len(owners.workspaces), 'workspace')}, "
        f"{count_of(owners.on_people, 'row')} for "
        f"{count_of(len(owners.people), 'person', 'people')}"
    )
    if owners.by_name and not live:
        lines.append(
            f"  {count_of(owners.by_name, 'row')} "
            f"{verb_for(owners.by_name, 'names', 'name')} their owner by workspace name or "
            "email: `validate --live` (and a run) look each name up in the org"
        )
    models = Counter(filter(None, map(attrgetter("model"), rows)))
    if models:
        catalogue = load_catalogue()
        names = []
        for model, count in models.most_common():
            entry = catalogue.resolve(model)
            names.append(f"{entry.display_name if entry else model} ×{count}")
        lines.append("  models: " + ", ".join(names))
    # Warnings leave the rows valid: each row may well be meant.
    valid = (row for row in rows if row.number not in problems)
    lines.extend(f"  warning: {text}" for text in repeated_code_warnings(valid))
    if invalid:
        lines.append(
            f"{count_of(invalid, 'row')} to fix; a run skips invalid rows and reports "
            "them as invalid"
        )
    return lines


@dataclass
class _Owners:
    """
    Who the rows belong to, counted in one pass (as ``Row.owner_kind`` decides).

    An owner is told apart by its org too: a partner's "Lobby" in two customer
    orgs is two workspaces (and by ``location``: two same-named ones in one org).
    """

    workspaces: set[tuple[str | None, str, str | None]] = field(default_factory=set)
    people: set[tuple[str | None, str]] = field(default_factory=set)
    on_workspaces: int = 0
    on_people: int = 0
    by_name: int = 0

    @classmethod
    def count(cls, rows: Sequence[Row]) -> _Owners:
        found = cls()
        for row in rows:
            workspace = row.workspace_id or row.workspace_name
            if workspace:
                found.on_workspaces += 1
                found.workspaces.add((row.org_id, workspace, row.location))
            elif row.person_id or row.person_email:
                found.on_people += 1
                person = row.person_id or (row.person_email or "").casefold()
                found.people.add((row.org_id, person))
            else:
                continue
            if not (row.workspace_id or row.person_id):
                found.by_name += 1  # named by workspace name or email
        return found
