"""
Two copies of one command at once: the second stops before any write while the first
holds the report's journal, so no row is started twice (no second activation code).
Judged by what the org holds.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from emulated import Emulator, code_rows, invoke, phone_rows, write_manifest

from provisioner.emulator.harness import run_in_subprocess
from provisioner.run.journal import hold_journal, journal_path_for


@pytest.fixture(name="org", scope="module")
def _org() -> Iterator[Emulator]:
    with run_in_subprocess() as (_process, url):
        emulator = Emulator(url)
        emulator.reset()
        yield emulator


def test_a_second_copy_of_a_run_writes_nothing(org: Emulator, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "site.csv", phone_rows(2) + code_rows(2))
    report = tmp_path / "r.csv"
    command = ["run", str(manifest), "--yes", "--report", str(report)]
    command += ["--base-url", org.base_url]
    held = hold_journal(journal_path_for(report))  # the first copy, still running
    assert held is not None
    try:
        second = invoke(command)
    finally:
        os.close(held)

    assert second.exit_code == 2, second.output
    assert "another provisioner command is working with the journal" in second.stderr
    assert org.write_calls() == 0
    assert org.devices() == []

    after = invoke(command)

    assert after.exit_code == 0, after.output
    assert len(org.devices()) == 4
