"""
The ``provisioner`` command: one click group, one module per command.

Each command module is a translator: flags → library call → summary → exit code (see
``exit_codes``).
"""

from __future__ import annotations

import click

from provisioner.cli.codes import codes_command
from provisioner.cli.emulator import emulator
from provisioner.cli.run import rerun, run
from provisioner.cli.template import template
from provisioner.cli.validate import validate

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="provisioner")
def main() -> None:
    """
    Provision Webex devices in bulk from a CSV or XLSX manifest.

    \b
    Typical session:
      provisioner validate manifests/example.csv      # check the sheet offline
      provisioner emulator --port 0 &                 # or point at a real org
      provisioner run manifests/example.csv           # create devices, write the report
      provisioner rerun reports/example-report.xlsx   # retry only what failed

    The access token comes from WEBEX_ACCESS_TOKEN or --token-file, never from the
    command line.
    """


for command in (emulator, template, validate, run, rerun, codes_command):
    main.add_command(command)
