"""
``provisioner emulator``: run the local Webex Devices API emulator.
"""

from __future__ import annotations

import click

from provisioner.emulator.main import main as emulator_main

__all__ = ["emulator"]


@click.command(
    name="emulator",
    context_settings={
        "ignore_unknown_options": True,
        "allow_extra_args": True,
        "help_option_names": [],
    },
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def emulator(args: tuple[str, ...]) -> None:
    """
    Serve a local Webex Devices API for rehearsals, tests and benchmarks.

    Binds 127.0.0.1; the first line printed is the base URL. Flags are passed to
    the emulator unchanged.
    """
    raise SystemExit(emulator_main(list(args)))
