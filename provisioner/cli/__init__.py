"""
The ``provisioner`` command: one click group, one module per command.

Each command module is a translator: flags → library call → summary → exit code (see
``exit_codes``).
"""

from __future__ import annotations

from provisioner.cli.interrupted import ends_on_ctrl_c

# Ctrl-C while the CLI itself loads (click, then the group below) ends as it does
# anywhere later: one sentence and exit 130, never a traceback.
with ends_on_ctrl_c():
    import importlib
    from collections.abc import Mapping
    from typing import Any

    import click

    from provisioner.cli.exit_codes import EXIT_UNUSABLE

__all__ = ["main"]


class _LazyGroup(click.Group):
    """
    A group that imports a command's module only when that command runs.

    ``provisioner validate`` then never pays for the HTTP client, the engine or the emulator
    (about half a second of imports); ``--help`` still lists every command.
    """

    def __init__(self, *args: Any, lazy: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            module_name, attribute = self.lazy[cmd_name].split(":")
            command = getattr(importlib.import_module(module_name), attribute)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        # Reading the group's own flags: --help lists (so imports) every command.
        with ends_on_ctrl_c():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            # Ctrl-C anywhere in a command that has not taken it over itself (its
            # module's imports, its manifest, its first API reads, its report):
            # one sentence and exit 130, not click's "Aborted!" and exit 1.
            with ends_on_ctrl_c():
                return super().invoke(ctx)
        except ModuleNotFoundError as error:
            # A dependency missing from the environment (a partial or interrupted
            # install): say which and how to mend it, for every command, rather
            # than print a traceback.
            click.echo(
                f"Error: provisioner's installation is incomplete: the module "
                f"{error.name!r} it needs is missing. Reinstall it with its "
                "dependencies (make install in a checkout, or pip install "
                "--force-reinstall provisioner), then run the same command again.",
                err=True,
            )
            raise SystemExit(EXIT_UNUSABLE) from None


# Each command lives in a module of its own: command name → "module:attribute".
_COMMANDS = {
    "emulator": "provisioner.cli.emulator:emulator",
    "template": "provisioner.cli.template:template",
    "validate": "provisioner.cli.validate:validate",
    "run": "provisioner.cli.run:run",
    "rerun": "provisioner.cli.run:rerun",
    "codes": "provisioner.cli.codes:codes_command",
    "export": "provisioner.cli.export:export_command",
    "rollback": "provisioner.cli.rollback:rollback_command",
}


@click.group(
    cls=_LazyGroup,
    lazy=_COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
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
