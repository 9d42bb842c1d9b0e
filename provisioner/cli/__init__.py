"""
The ``provisioner`` command: one click group, one module per command.

Each command module is a translator: flags → library call → summary → exit code. Exit
codes are the contract of ``shared/design.md``: 0 every row ended well, 1 at least one
row failed or was invalid, 2 nothing could start, 130 interrupted after saving state.
"""

from __future__ import annotations

import click

__all__ = ["EXIT_FAILED_ROWS", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_UNUSABLE", "main"]

EXIT_OK = 0
EXIT_FAILED_ROWS = 1
EXIT_UNUSABLE = 2
EXIT_INTERRUPTED = 130


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


# Commands register themselves here, one module each.
from provisioner.cli.emulator import emulator

main.add_command(emulator)

from provisioner.cli.template import template

main.add_command(template)

from provisioner.cli.validate import validate

main.add_command(validate)

from provisioner.cli.run import rerun, run

main.add_command(run)
main.add_command(rerun)

from provisioner.cli.codes import codes_command

main.add_command(codes_command)
