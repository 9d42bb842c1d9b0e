"""
The rules that keep a command from writing unsafely, each on its own.
"""

from __future__ import annotations

import errno
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from report_data import STATS, manifest

from provisioner.errors import ConfigError
from provisioner.models import Outcome, Status
from provisioner.report.files import write_report
from provisioner.report.safety import (
    aside_origin,
    aside_path,
    created_dropped,
    prepare_folders,
    renewal_origin,
    renewed_path,
    set_aside,
)


class TestPrepareFolders:
    def test_missing_folders_are_created_and_left_empty(self, tmp_path: Path) -> None:
        """Each path's folder is made; the check of it leaves no file behind."""
        paths = [tmp_path / "a" / "b" / "r.csv", tmp_path / "a" / "b" / "r.xlsx"]

        prepare_folders(paths, flag="--report")

        assert list((tmp_path / "a" / "b").iterdir()) == []

    def test_a_folder_that_takes_no_file_is_refused(self, unwritable: Path) -> None:
        """A folder that exists but takes no file is named, with the flag to change."""
        with pytest.raises(ConfigError) as caught:
            prepare_folders([unwritable / "r.csv"], flag="--report")

        assert f"cannot write in the folder {unwritable}" in str(caught.value)
        assert "choose another --report path" in str(caught.value)

    def test_permission_denied_is_refused_whoever_runs_the_tests(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A read-only folder, as a user other than root meets it (simulated, so the
        test runs as root too), is refused with the reason the system gave."""

        def refuse(*_args: Any, **_kwargs: Any) -> Any:
            raise PermissionError(errno.EACCES, "Permission denied")

        monkeypatch.setattr(tempfile, "TemporaryFile", refuse)

        with pytest.raises(ConfigError, match=r"Permission denied; make it writable"):
            prepare_folders([tmp_path / "r.csv"], flag="--report")

    def test_a_file_where_the_folder_should_be_is_refused(self, tmp_path: Path) -> None:
        """A parent that is a file cannot become a folder: the message says so."""
        blocker = tmp_path / "notes.txt"
        blocker.write_text("not a folder")

        with pytest.raises(ConfigError, match=r"cannot create the folder .*notes\.txt"):
            prepare_folders([blocker / "r.csv"], flag="OUTPUT")


def test_created_devices_the_new_report_no_longer_claims_are_named() -> None:
    """Adopted now, or gone from the rows: the old report's word that the rollout
    created them would be lost; still created with the same device, it is kept."""
    old = {
        2: Outcome(row=2, status=Status.CREATED, device_id="d2"),
        3: Outcome(row=3, status=Status.CREATED, device_id="d3"),
        4: Outcome(row=4, status=Status.CREATED, device_id="d4"),
        5: Outcome(row=5, status=Status.ADOPTED, device_id="d5"),
    }
    new = [
        Outcome(row=2, status=Status.CREATED, device_id="d2"),
        Outcome(row=3, status=Status.ADOPTED, device_id="d3"),
    ]

    assert created_dropped(old, new) == {"d3", "d4"}


def test_aside_origin_undoes_aside_path(tmp_path: Path) -> None:
    """A replaced report's name leads back to the report it was moved from (a
    second one in the same second too); any other name leads nowhere."""
    report = tmp_path / "site-report-replaced.csv"
    first = aside_path(report, datetime(2026, 11, 29, 10, 0, tzinfo=UTC))
    first.touch()
    second = aside_path(report, datetime(2026, 11, 29, 10, 0, tzinfo=UTC))

    assert second.name == "site-report-replaced-replaced-20261129T100000Z-2.csv"
    assert aside_origin(first) == aside_origin(second) == report
    assert aside_origin(report) is None
    assert aside_origin(tmp_path / "x-replaced-yesterday.csv") is None


def test_renewal_origin_undoes_renewed_path(tmp_path: Path) -> None:
    """A renewal's report leads back to the report it renewed, down a chain of
    renewals; a name no renewal gives leads nowhere."""
    report = tmp_path / "site-report.xlsx"
    chain = [report]
    for _ in range(3):
        chain.append(renewed_path(chain[-1]))

    assert [path.name for path in chain[1:]] == [
        "site-report-renewed.xlsx",
        "site-report-renewed-2.xlsx",
        "site-report-renewed-3.xlsx",
    ]
    assert [renewal_origin(path) for path in chain[1:]] == chain[:-1]
    assert renewal_origin(report) is None
    assert renewal_origin(tmp_path / "x-renewed-1.csv") is None
    assert renewal_origin(tmp_path / "-renewed.csv") is None


class TestSetAside:
    """A report the new one would replace while it still names devices the rollout
    created is moved aside, and the reason says what it is now."""

    NOW = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)

    def old_report(self, tmp_path: Path) -> Path:
        """Rows 2, 3 and 5 created (dev-2, dev-3, dev-5), the others as nothing."""
        path = tmp_path / "site-report.csv"
        outcomes = {
            n: Outcome(row=n, status=Status.CREATED, device_id=f"dev-{n}")
            for n in (2, 3, 5)
        }
        write_report(manifest(), outcomes, [path], STATS)
        return path

    def test_devices_a_rollback_deleted_are_the_record_of_it(
        self, tmp_path: Path
    ) -> None:
        """After a rollback the same rows are created again: the old report names
        devices that are gone, so it is kept as the record, not as what a rollback
        of it deletes."""
        path = self.old_report(tmp_path)
        again = [
            Outcome(row=n, status=Status.CREATED, device_id=f"new-{n}") for n in (2, 3)
        ]

        (moved,) = set_aside(
            [path], again, now=self.NOW, rolled_back={"dev-2", "dev-3", "dev-5"}
        )

        assert moved.reason == (
            "it is the record of 3 devices this rollout created that a rollback has "
            "deleted since"
        )
        assert "a rollback of it deletes" not in moved.reason
        assert moved.moved_to.is_file()

    def test_devices_the_journal_records_adopted_are_no_reason_to_keep_it(
        self, tmp_path: Path
    ) -> None:
        """The old report says created, the run's journal adopted (a status cell
        edited by hand): that device is not the rollout's, so a report kept for it
        alone is replaced; kept for others, only they are counted."""
        path = self.old_report(tmp_path)
        same = [
            Outcome(row=2, status=Status.ADOPTED, device_id="dev-2"),
            Outcome(row=3, status=Status.CREATED, device_id="dev-3"),
            Outcome(row=5, status=Status.CREATED, device_id="dev-5"),
        ]

        untouched = set_aside([path], same, now=self.NOW, adopted={"dev-2"})
        (moved,) = set_aside([path], same[:2], now=self.NOW, adopted={"dev-2"})

        assert untouched == []
        assert moved.reason == (
            "it names 1 device this rollout created that the new report does not, "
            "which a rollback of it deletes"
        )

    def test_only_the_devices_still_there_are_for_a_rollback_of_it(
        self, tmp_path: Path
    ) -> None:
        """Some rolled back, one not: each is said as it is."""
        path = self.old_report(tmp_path)

        (moved,) = set_aside([path], [], now=self.NOW, rolled_back={"dev-2", "dev-3"})

        assert moved.reason == (
            "it names 1 device this rollout created that the new report does not, "
            "which a rollback of it deletes; it is the record of 2 devices this "
            "rollout created that a rollback has deleted since"
        )
