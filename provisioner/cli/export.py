"""
``provisioner export OUTPUT.(csv|xlsx)``: the org's devices, as a manifest-shaped table.

A translator: flags → ``ExportQuery`` and Settings → ``export_devices`` writing into a
``TableFile`` → summary → exit code. The file appears only when the last page is in
(it is written beside and renamed), so a failed or interrupted export leaves no
half-list behind, and an existing file is replaced only with ``--overwrite``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import click

from provisioner.cli.common import (
    ConnectionOptions,
    api_options,
    build_settings,
    fail,
)
from provisioner.cli.exit_codes import EXIT_INTERRUPTED, EXIT_OK
from provisioner.cli.failures import command_errors
from provisioner.cli.progress import ListingDisplay
from provisioner.inventory.export_rules import (
    CONNECTION_STATUSES,
    DEVICE_TYPES,
    EXPORT_COLUMNS,
    PAGE_SIZE,
    ExportQuery,
    ExportResult,
    list_filters,
    summary_items,
)
from provisioner.logs import configure_logging
from provisioner.redaction import add_secrets
from provisioner.report.safety import prepare_folders, what_a_report_keeps
from provisioner.report.table import SUFFIXES, TableFile
from provisioner.settings import Settings

if TYPE_CHECKING:
    from provisioner.report.xlsx import ColumnKinds

__all__ = ["export_command", "format_export_summary", "format_tags_warning"]


@click.command(name="export")
@click.argument(
    "output", metavar="OUTPUT", type=click.Path(path_type=Path, dir_okay=False)
)
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="TAG",
    help="Only devices with this tag; repeat it for several (all must match).",
)
@click.option("--workspace-id", metavar="ID", help="Only this workspace's devices.")
@click.option("--person-id", metavar="ID", help="Only this person's devices.")
@click.option(
    "--type",
    "device_type",
    type=click.Choice(DEVICE_TYPES, case_sensitive=False),
    help="Only devices of this type.",
)
@click.option(
    "--connection-status",
    type=click.Choice(CONNECTION_STATUSES, case_sensitive=False),
    help="Only devices in this connection status.",
)
@click.option("--mac", metavar="MAC", help="Only the device with this MAC.")
@click.option(
    "--display-name", metavar="NAME", help="Only devices with this display name."
)
@click.option(
    "--product",
    metavar="PRODUCT",
    help="Only devices of this product, as the API names it (e.g. 'Cisco 8851').",
)
@click.option(
    "--owner-names",
    is_flag=True,
    help=(
        "Fill ownerName with each owner's workspace name or email (one more call "
        "per distinct owner)."
    ),
)
@click.option(
    "--page-size",
    type=click.IntRange(1),
    default=PAGE_SIZE,
    show_default=True,
    help="Devices asked for per page (lower it if the API refuses the size).",
)
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
@api_options(
    tag_mode=False, org_purpose="export the devices of this org (partner admins)"
)
def export_command(
    output: Path,
    tags: tuple[str, ...],
    workspace_id: str | None,
    person_id: str | None,
    device_type: str | None,
    connection_status: str | None,
    mac: str | None,
    display_name: str | None,
    product: str | None,
    owner_names: bool,
    page_size: int,
    overwrite: bool,
    connection: ConnectionOptions,
) -> None:
    """
    Write the org's devices to OUTPUT (.csv or .xlsx), one line per device.

    The filters are the API's own (every one given must match). The columns are a
    manifest's first (mac, model, workspaceId, personId, tags), then deviceId,
    displayName, productName, type, connectionStatus, serial, software, ip, created
    and ownerName: the MAC rows validate as a manifest, so an export can seed the
    next wave's sheet. Exit status: 0 written, 2 nothing could be exported (bad
    flags, refused token, unreachable API), 130 interrupted (no file written).
    """
    query = ExportQuery(
        tags=tags,
        workspace_id=workspace_id,
        person_id=person_id,
        type=device_type.lower() if device_type else None,
        connection_status=connection_status.lower() if connection_status else None,
        mac=mac,
        display_name=display_name,
        product=product,
    )
    try:
        with command_errors() as where:
            _check_output(output, overwrite=overwrite)
            list_filters(query)  # an unusable filter stops here, before any call
            configure_logging(
                verbosity=connection.verbose, log_file=connection.log_file
            )
            settings = build_settings(connection, os.environ)
            where.base_url = settings.base_url
            add_secrets(settings.token)
            display = ListingDisplay(mode="quiet" if connection.quiet else None)
            with display:
                result = _export(
                    query, settings, output, display, owner_names, page_size
                )
    except KeyboardInterrupt:
        # Reached only from inside the export: the half-written file is gone.
        click.echo(
            f"Interrupted: {output} was not written (an export starts over when run "
            "again).",
            err=True,
        )
        raise SystemExit(EXIT_INTERRUPTED) from None
    click.echo(format_export_summary(result, output))
    warning = format_tags_warning(result, output)
    if warning is not None:
        click.echo(warning, err=True)
    raise SystemExit(EXIT_OK)


def _check_output(output: Path, *, overwrite: bool) -> None:
    if output.suffix.lower() not in SUFFIXES:
        fail(
            f'"{output}": an export is a .csv or .xlsx file; give OUTPUT one of '
            "those extensions."
        )
    if output.exists() and not overwrite:
        fail(
            f'"{output}" exists already: choose another name, or add --overwrite to '
            "replace it."
        )
    kept = what_a_report_keeps(output) if output.exists() else None
    if kept is not None:
        # --overwrite is for an earlier export; a run's report is the only record
        # of its codes and of what a rollback deletes.
        fail(
            f'"{output}" is a run\'s report holding {kept}: an export never replaces '
            "it, even with --overwrite; choose another name"
        )
    prepare_folders([output], flag="OUTPUT")


def _export(
    query: ExportQuery,
    settings: Settings,
    output: Path,
    display: ListingDisplay,
    owner_names: bool,
    page_size: int,
) -> ExportResult:
    """
    Stream the export into OUTPUT; the file is put in place only when it is complete.
    """
    from provisioner.inventory.export import export_devices

    # A CSV marks the cells a spreadsheet would run as formulas (a tag "=1+1", a
    # display name "@Lobby"; TableFile does): anyone with device rights types those,
    # and the file is opened by whoever takes the inventory. An XLSX holds them as
    # text cells.
    is_csv = output.suffix.lower() == ".csv"
    try:
        with TableFile(
            output,
            EXPORT_COLUMNS,
            sheet="Devices",
            kinds=_export_kinds(),
        ) as table:
            result = anyio.run(
                lambda: export_devices(
                    query,
                    settings,
                    table.append,
                    page_size=page_size,
                    owner_names=owner_names,
                    on_progress=display,
                    marks_formulas=is_csv,
                ),
                backend="asyncio",
            )
            table.summary = summary_items(query, result)
    except OSError as error:
        fail(
            f'Cannot write "{output}": {error.strerror or error}; check that the '
            "folder is writable, or choose another OUTPUT."
        )
    return result


def _export_kinds() -> ColumnKinds:
    """
    The MAC column as Text, so a MAC of digits only (112233445566) stays text when a
    person edits it. Ids hold letters, which a spreadsheet never takes for a number,
    and ``created`` stays the API's ISO text: styling those cells (a date cell, Text
    ids) made an XLSX export three times slower to write (measured on 5,000 lines).
    """
    from provisioner.report.xlsx import ColumnKinds

    return ColumnKinds(text=frozenset({EXPORT_COLUMNS.index("mac")}))


def format_export_summary(result: ExportResult, output: Path) -> str:
    """
    The end-of-export summary: devices and pages, duration, devices/s, calls, file.
    """
    speed = result.devices_per_second
    shown = "-" if speed is None else f"{speed:.0f} devices/s"
    noun = "device" if result.devices == 1 else "devices"
    pages = "page" if result.pages == 1 else "pages"
    exported = f"Exported {result.devices} {noun} ({result.pages} {pages}) to {output}"
    if not result.devices:
        exported = (
            f"Exported 0 devices to {output}: the API listed none (the file has "
            "its header and no device lines)"
        )
    lines = [
        exported,
        (
            f"  took {result.duration:.1f}s · {shown} · {result.api_calls} API calls"
            f" · {result.rate_limited} rate-limited (429) · {result.retries} retries"
        ),
    ]
    if result.owners_unnamed:
        lines.append(f"  {result.owners_unnamed} owners' names could not be read")
    return "\n".join(lines)


def format_tags_warning(result: ExportResult, output: Path) -> str | None:
    """
    The warning naming the devices whose tags ``output``, run as a manifest, would
    give other tags (None when every device's come back as they are): a run would
    otherwise apply the mangled tags without a word.
    """
    count = result.tags_not_read_back
    if not count:
        return None
    shown = ", ".join(result.tags_not_read_back_shown)
    more = count - len(result.tags_not_read_back_shown)
    if more > 0:
        shown += f" and {more} more"
    devices = "1 device has" if count == 1 else f"{count} devices have"
    return (
        f"Warning: {devices} tags that {output} would not give back as they are if "
        "run as a manifest (a manifest splits tags on ; , and |, trims them, drops "
        "empty ones, and refuses a cell that reads as a formula or a spreadsheet "
        f"error): {shown}; fix those rows' tags cells, or leave the rows out, before "
        "running the file."
    )
