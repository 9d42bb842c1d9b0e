"""
``provisioner template``: write the blank XLSX manifest template.
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import click

from provisioner.cli.exit_codes import EXIT_UNUSABLE
from provisioner.intake.template import write_template

__all__ = ["template"]


@click.command()
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
def template(path: Path, force: bool) -> None:
    """
    Write a blank manifest template to PATH (.xlsx).

    The template has the manifest columns, Text-formatted cells (so Excel keeps a
    MAC's leading zeros), a model drop-down and a Notes sheet.
    """
    if path.suffix.lower() != ".xlsx":
        _fail(f"{path}: the template is an Excel workbook; give a path ending in .xlsx")
    if path.exists() and not force:
        _fail(f"{path} already exists; pass --force to overwrite it")
    if not path.parent.is_dir():
        _fail(f"{path.parent}: no such folder; create it first")
    try:
        write_template(path)
    except OSError as error:
        _fail(f"{path}: cannot be written ({error.strerror})")
    click.echo(
        f"wrote {path}: fill in the Devices sheet, then run: provisioner validate {path}"
    )


def _fail(message: str) -> NoReturn:
    # Imported here, not at the top: the group imports this module, and a cycle at
    # import time leaves mypy unable to type the command it registers.

    click.echo(f"Error: {message}", err=True)
    raise SystemExit(EXIT_UNUSABLE)
