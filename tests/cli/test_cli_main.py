"""
The ``provisioner`` group: every command is reachable and documents itself.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from paths import MANIFESTS

from provisioner.cli import main

# The group imports a command's module only when it is asked for that command.
CONTEXT = click.Context(main)
NAMES = main.list_commands(CONTEXT)
CLICK_COMMANDS = [name for name in NAMES if name != "emulator"]


def command_named(name: str) -> click.Command:
    command = main.get_command(CONTEXT, name)
    assert command is not None
    return command


def test_the_group_lists_every_command() -> None:
    """``provisioner --help`` names each command with its one-line summary."""
    result = CliRunner().invoke(main, ["--help"])

    assert result.exit_code == 0
    assert set(NAMES) >= {"codes", "emulator", "rerun", "run", "template", "validate"}
    for name in NAMES:
        command = command_named(name)
        # The listing cuts summaries to the terminal's width: their opening words.
        opening = " ".join(command.get_short_help_str(limit=200).split()[:4])
        assert f"  {name}  " in result.output
        assert opening
        assert opening in result.output


@pytest.mark.parametrize("name", CLICK_COMMANDS)
def test_every_command_documents_itself_and_each_option(name: str) -> None:
    """``COMMAND --help`` shows its usage, its docstring and every option it takes."""
    command = command_named(name)

    result = CliRunner().invoke(main, [name, "--help"])

    assert result.exit_code == 0
    assert f"Usage: main {name}" in result.output
    first_line = (command.help or "").strip().splitlines()[0]
    assert first_line in " ".join(result.output.split())
    options = [p for p in command.params if isinstance(p, click.Option)]
    assert options
    for option in options:
        assert option.help, f"{name} {option.opts} has no help text"
        for flag in option.opts:
            assert flag in result.output, f"{name} --help does not show {flag}"


def test_emulator_help_is_its_own() -> None:
    """``emulator --help`` is handed to the emulator's own parser, knobs and all."""
    result = CliRunner().invoke(main, ["emulator", "--help"])

    assert result.exit_code == 0
    assert "usage: provisioner emulator" in result.output
    for knob in ("--rate-limit", "--fault-rate", "--seed", "--port"):
        assert knob in result.output


def test_a_missing_dependency_is_one_sentence_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An install without python-calamine: validate of an XLSX says what to do, exit 2."""
    workbook = tmp_path / "m.xlsx"
    shutil.copy(MANIFESTS / "example.xlsx", workbook)
    # None in sys.modules makes the import fail as a missing module does.
    monkeypatch.setitem(sys.modules, "python_calamine", None)

    result = CliRunner().invoke(main, ["validate", str(workbook)])

    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "the module 'python_calamine' it needs is missing" in result.output
    assert "make install" in result.output
