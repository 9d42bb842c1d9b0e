"""
Ctrl-C at startup, from every command: one sentence and exit 130, never a traceback.

A run's own signal watcher answers Ctrl-C once its rows are about to start
(``test_cli_run.TestInterruptedRuns``); these are the moments before it: the CLI's own
imports, the import of a command's module, the command's first steps. The Ctrl-C is
made to land there on purpose, not by timing: in a subprocess, an import hook stops
the CLI inside a chosen import until the test sends SIGINT; in process, the step
raises ``KeyboardInterrupt`` itself.
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from emulated import Emulator, invoke, phone_rows, read_report, write_manifest
from paths import MANIFESTS, REPO

from provisioner.cli import main
from provisioner.cli.exit_codes import EXIT_INTERRUPTED
from provisioner.cli.interrupted import INTERRUPTED_MESSAGE
from provisioner.emulator.config import DEFAULT_TOKEN
from provisioner.emulator.harness import run_in_subprocess
from provisioner.run import steps
from provisioner.webex.client import ApiClient

# The modules, not the commands of the same names that provisioner.cli exports.
run_module = importlib.import_module("provisioner.cli.run")
rollback_module = importlib.import_module("provisioner.cli.rollback")

EXAMPLE = MANIFESTS / "example.csv"

#: Runs ``python -m provisioner ARGS`` with the import of MODULE held until SIGINT:
#: ``python -c HOLD MODULE ARGS...``. It says "held" on stderr once it waits.
HOLD = """
import runpy, sys, time

HELD = sys.argv[1]

class Hold:
    def find_spec(self, name, path=None, target=None):
        if name == HELD:
            sys.meta_path.remove(self)
            sys.stderr.write("held\\n")
            sys.stderr.flush()
            while True:
                time.sleep(1)  # until SIGINT raises KeyboardInterrupt here
        return None

sys.meta_path.insert(0, Hold())
sys.argv = ["provisioner", *sys.argv[2:]]
runpy.run_module("provisioner", run_name="__main__", alter_sys=True)
"""

#: Every command that reads or writes an org, as typed (before its own arguments).
COMMANDS: dict[str, list[str]] = {
    "run": ["run", str(EXAMPLE), "--yes"],
    "rerun": ["rerun", "report.csv", "--yes"],
    "codes": ["codes", "report.csv"],
    "export": ["export", "devices.csv"],
    "rollback": ["rollback", "report.csv", "--yes"],
    "validate": ["validate", str(EXAMPLE)],
    "validate --live": ["validate", str(EXAMPLE), "--live"],
}


def _interrupted_while_importing(
    module: str, args: list[str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """
    Start the CLI, hold it inside the import of ``module``, press Ctrl-C there.
    """
    env = {**os.environ, "WEBEX_ACCESS_TOKEN": DEFAULT_TOKEN, "PYTHONUNBUFFERED": "1"}
    env.pop("WEBEX_BASE_URL", None)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO), env.get("PYTHONPATH")])
    )
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, module, *args],
        cwd=cwd,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    line = process.stderr.readline()
    assert line == "held\n", line + process.stderr.read()
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def _assert_one_sentence(returncode: int, err: str, message: str) -> None:
    assert returncode == EXIT_INTERRUPTED, err
    assert "Traceback" not in err
    assert "Aborted!" not in err
    assert [line for line in err.splitlines() if line.strip()] == [message]


class TestWhileTheCliLoads:
    @pytest.mark.parametrize(
        "module",
        [
            # provisioner/cli/__init__.py's own first import.
            "click",
            # What the package's face used to build as it was imported, before
            # any of the command line's code could answer.
            "provisioner.models",
        ],
    )
    def test_ctrl_c_in_the_first_imports(self, module: str, tmp_path: Path) -> None:
        """Ctrl-C while the CLI itself loads: one sentence, exit 130."""
        done = _interrupted_while_importing(module, COMMANDS["run"], tmp_path)

        _assert_one_sentence(done.returncode, done.stderr, INTERRUPTED_MESSAGE)
        assert done.stdout == ""

    @pytest.mark.parametrize("name", sorted(COMMANDS))
    def test_ctrl_c_while_a_command_loads(self, name: str, tmp_path: Path) -> None:
        """Ctrl-C while a command's module is imported (the slow part of startup):
        one sentence and exit 130, not click's "Aborted!" and exit 1."""
        args = COMMANDS[name]
        module = main.lazy[args[0]].split(":")[0]

        done = _interrupted_while_importing(module, args, tmp_path)

        _assert_one_sentence(done.returncode, done.stderr, INTERRUPTED_MESSAGE)


def _raise_interrupt(*_: Any, **__: Any) -> Any:
    raise KeyboardInterrupt


class TestInProcess:
    @pytest.mark.parametrize("name", sorted(COMMANDS))
    def test_ctrl_c_while_the_command_is_looked_up(
        self, name: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The group's lazy import of a command, interrupted: exit 130."""
        command = COMMANDS[name][0]
        monkeypatch.delitem(main.commands, command, raising=False)
        real = importlib.import_module

        def import_module(module: str, package: str | None = None) -> Any:
            if module.startswith("provisioner.cli."):
                raise KeyboardInterrupt
            return real(module, package)

        monkeypatch.setattr(importlib, "import_module", import_module)

        result = invoke(COMMANDS[name])

        _assert_one_sentence(result.exit_code, result.stderr, INTERRUPTED_MESSAGE)

    @pytest.mark.parametrize(
        ("name", "step"),
        [
            ("run", "provisioner.cli.run:build_settings"),
            ("rerun", "provisioner.cli.run:load_report"),
            ("codes", "provisioner.cli.codes:load_report"),
            ("export", "provisioner.cli.export:build_settings"),
            ("rollback", "provisioner.cli.rollback:load_report"),
            ("validate", "provisioner.cli.validate:load_manifest"),
            ("validate --live", "provisioner.cli.live_checks:build_settings"),
        ],
    )
    def test_ctrl_c_in_the_first_steps(
        self,
        name: str,
        step: str,
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
    ) -> None:
        """Ctrl-C while a command reads its input or its settings: exit 130."""
        module, attribute = step.split(":")
        monkeypatch.setattr(
            importlib.import_module(module), attribute, _raise_interrupt
        )
        monkeypatch.chdir(tmp_path)

        result = invoke(COMMANDS[name])

        message = (
            "Interrupted: devices.csv was not written (an export starts over when "
            "run again)."
            if name == "export"
            else INTERRUPTED_MESSAGE
        )
        _assert_one_sentence(result.exit_code, result.stderr, message)
        assert list(tmp_path.iterdir()) == []


def test_the_package_face_builds_nothing_as_it_is_imported() -> None:
    """``import provisioner`` (the first thing every command line runs) leaves the
    models, errors and settings for first use: until the CLI's guard is in place, a
    Ctrl-C could only end in a traceback, so that stretch stays as short as it can."""
    code = "import sys, provisioner; print(sorted(sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )

    loaded = done.stdout.strip("[]\n").split(", ")
    assert [name for name in loaded if name.startswith("'provisioner.")] == []
    assert "'provisioner'" in loaded
    assert "'typing'" not in loaded


@pytest.fixture(name="emulator", scope="module")
def _emulator() -> Iterator[Emulator]:
    with run_in_subprocess() as (_process, base_url):
        yield Emulator(base_url)


class TestCtrlCAfterTheLastRowStarted:
    def test_stopping_said_means_exit_130_with_the_whole_report(
        self,
        emulator: Emulator,
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
    ) -> None:
        """Ctrl-C once the last row has started: "Stopping" is said, every row
        finishes (its device made, the report complete), and the command exits 130,
        saying the report is complete, as any Ctrl-C of a run does."""
        emulator.reset()
        manifest = write_manifest(tmp_path / "phones.csv", phone_rows(3))
        report = tmp_path / "r.csv"
        stops: list[Any] = []
        started: list[int] = []
        real_watch = run_module.watch_signals
        real_row = steps.provision_mac_row

        async def watch_signals(stop: Any, *args: Any, **kwargs: Any) -> None:
            stops.append(stop)
            await real_watch(stop, *args, **kwargs)

        async def provision_mac_row(ctx: Any, row: Any, *args: Any) -> Any:
            started.append(row.number)
            if len(started) == 3:
                # The last row has started: Ctrl-C now, and wait for the run's
                # watcher to take it before the row goes on.
                os.kill(os.getpid(), signal.SIGINT)
                await stops[0].wait()
            return await real_row(ctx, row, *args)

        monkeypatch.setattr(run_module, "watch_signals", watch_signals)
        monkeypatch.setattr(steps, "provision_mac_row", provision_mac_row)

        result = invoke(
            ["run", str(manifest), "--report", str(report), "--concurrency", "1"]
            + ["--base-url", emulator.base_url]
        )

        assert result.exit_code == EXIT_INTERRUPTED, result.output
        assert "Stopping" in result.stderr
        assert "every row had started when Ctrl-C came" in result.stderr
        assert [r["status"] for r in read_report(report)] == ["created"] * 3
        assert len(emulator.devices()) == 3

    def test_a_rollback_exits_130_as_well(
        self,
        emulator: Emulator,
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
    ) -> None:
        """The same Ctrl-C in a rollback, once its last delete has started: every
        device is deleted, the report is complete, and the command exits 130."""
        emulator.reset()
        manifest = write_manifest(tmp_path / "phones.csv", phone_rows(3))
        report = tmp_path / "r.csv"
        base = ["--base-url", emulator.base_url]
        assert (
            invoke(["run", str(manifest), "--report", str(report), *base]).exit_code
            == 0
        )
        stops: list[Any] = []
        deletes: list[str] = []
        real_watch = rollback_module.watch_signals
        real_delete = ApiClient.delete_device

        async def watch_signals(stop: Any, *args: Any, **kwargs: Any) -> None:
            stops.append(stop)
            await real_watch(stop, *args, **kwargs)

        async def delete_device(self: ApiClient, device_id: str, **kwargs: Any) -> Any:
            deletes.append(device_id)
            if len(deletes) == 3:
                os.kill(os.getpid(), signal.SIGINT)
                await stops[0].wait()
            return await real_delete(self, device_id, **kwargs)

        monkeypatch.setattr(rollback_module, "watch_signals", watch_signals)
        monkeypatch.setattr(ApiClient, "delete_device", delete_device)

        result = invoke(["rollback", str(report), "--yes", "--concurrency", "1", *base])

        assert result.exit_code == EXIT_INTERRUPTED, result.output
        assert "Stopping" in result.stderr
        assert "every row had started when Ctrl-C came" in result.stderr
        assert emulator.devices() == []
