"""
codes_listing.py: the lines ``provisioner codes`` prints for each code row.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from provisioner.cli.codes_listing import render_listing
from provisioner.live.code_rules import CodeEntry, CodeState
from provisioner.models import Outcome, Row, Status

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def entry(number: int, **owner: str) -> CodeEntry:
    row = Row(number=number, cells=(), model="Cisco Desk Pro", **owner)  # type: ignore[arg-type]
    outcome = Outcome(
        row=number, status=Status.CODE_ISSUED, activation_code="1234567812345678"
    )
    return CodeEntry(
        row=row,
        outcome=outcome,
        device=None,
        state=CodeState.PENDING,
        expiry=NOW + timedelta(days=30),
    )


def line_of(item: CodeEntry) -> str:
    lines = render_listing(Path("r.csv"), [item], NOW, timedelta(days=7))
    (line,) = [text for text in lines if text.startswith(f"  row {item.row.number} ")]
    return line


class TestOwnerColumn:
    def test_an_owner_named_by_id_shows_the_tail_of_its_id(self) -> None:
        line = line_of(entry(3, workspace_id="Y2lzY29zcGFyazovL3VzL1BMQUNFL2FiY2RlZg"))

        assert "workspace …Y2RlZg " in line

    def test_an_owner_named_by_name_or_email_shows_that_name(self) -> None:
        """A row that named its workspace or person shows the name, not an empty id."""
        by_name = line_of(entry(4, workspace_name="Main Conference Room"))
        by_email = line_of(entry(5, person_email="alex@agency.example.gov"))

        assert "workspace Main Conference Room" in by_name
        assert "person alex@agency.example.gov" in by_email

    def test_a_long_name_is_cut_and_the_code_column_stays_aligned(self) -> None:
        long_name = line_of(
            entry(6, workspace_name="Washington Conference Room A 1 East")
        )
        short_name = line_of(entry(7, workspace_name="Lobby"))

        assert "workspace Washington Conference R… " in long_name
        assert long_name.index("code ") == short_name.index("code ")
        # Masked: the listing never shows a code unless asked.
        assert "1234567812345678" not in long_name


class TestExpiry:
    def test_a_code_the_api_calls_expired_is_not_said_to_expire_later(self) -> None:
        """The emulator's clock moved on (or this machine's lags): the device says
        offline_expired while the expiry is still ahead here. The line says expired,
        not "expires … (in 30 days)"."""
        expired = replace(entry(8, workspace_name="Lobby"), state=CodeState.EXPIRED)

        line = line_of(expired)

        assert "expired, the API says (its expiry by this machine's clock:" in line
        assert "expires" not in line
        assert "in 30 days" not in line

    def test_a_pending_code_says_when_it_expires(self) -> None:
        assert "expires 2026-12-29 12:00 UTC (in 30 days)" in line_of(entry(9))


class TestGone:
    def test_a_code_whose_device_was_deleted_is_counted_and_listed_gone(self) -> None:
        """Its line says the device was deleted, not when the code expires; no hint
        to renew it, but what it means."""
        gone = replace(entry(10, workspace_name="Lobby"), state=CodeState.GONE)

        lines = render_listing(Path("r.csv"), [gone], NOW, timedelta(days=7))

        assert "  activated 0 · pending 0 · expiring 0 · expired 0 · gone 1" in lines
        assert "gone:" in lines
        (line,) = [text for text in lines if text.startswith("  row 10 ")]
        assert line.endswith("device deleted: this code no longer works")
        assert "expires" not in line
        assert not [text for text in lines if "renew them with" in text]
        (said,) = [
            text
            for text in lines
            if text.startswith("1 code is gone: its device was deleted")
        ]
        assert "a renewal, a rollback, or a person in Control Hub deleted them" in said
        assert "--renew issues no new code for them" in said

    def test_a_renewal_beside_the_report_is_named(self, tmp_path: Path) -> None:
        """A renewal of the report voided its codes and wrote the new ones to its
        own report: the listing sends the reader there."""
        (tmp_path / "r-renewed.xlsx").write_bytes(b"")
        gone = replace(entry(10, workspace_name="Lobby"), state=CodeState.GONE)

        lines = render_listing(tmp_path / "r.csv", [gone], NOW, timedelta(days=7))

        (said,) = [
            text
            for text in lines
            if text.startswith("1 code is gone: its device was deleted")
        ]
        assert "a renewal of this report wrote r-renewed.xlsx" in said

    def test_no_gone_count_when_no_code_is_gone(self) -> None:
        lines = render_listing(Path("r.csv"), [entry(11)], NOW, timedelta(days=7))

        assert "  activated 0 · pending 1 · expiring 0 · expired 0" in lines


class TestStoppedRenewal:
    def test_a_renewal_journal_beside_the_report_is_named_with_its_command(
        self,
    ) -> None:
        """An unfinished codes --renew is said, with its journal and the command
        that finishes it (the listing's own window carried over)."""
        journal = Path("r-renewed.journal.sqlite")

        lines = render_listing(
            Path("r.csv"),
            [entry(12)],
            NOW,
            timedelta(days=31),
            stopped_renewal=journal,
        )

        (line,) = [text for text in lines if text.startswith("a codes --renew")]
        assert f"its journal is {journal}" in line
        assert line.endswith(
            "finish it with: provisioner codes r.csv --within 31d --renew"
        )

    def test_no_word_of_a_renewal_without_its_journal(self) -> None:
        lines = render_listing(Path("r.csv"), [entry(13)], NOW, timedelta(days=7))

        assert not [text for text in lines if "codes --renew" in text]


class TestOrgColumn:
    def test_codes_in_several_orgs_name_each_rows_org(self) -> None:
        """A partner's report: two rooms called "Board Room" in two customers' orgs
        are told apart by their org; a report of one org shows no org."""
        home = entry(15, workspace_name="Board Room")
        customer = replace(
            entry(35, workspace_name="Board Room"),
            row=Row(
                number=35,
                cells=(),
                model="Cisco Desk Pro",
                workspace_name="Board Room",
                org_id="Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi9hYmNkZWY",
            ),
        )

        lines = render_listing(Path("r.csv"), [home, customer], NOW, timedelta(days=7))
        alone = line_of(home)

        (first,) = [text for text in lines if text.startswith("  row 15 ")]
        (second,) = [text for text in lines if text.startswith("  row 35 ")]
        assert "org (the token's)" in first
        assert "org …mNkZWY" in second
        assert "org" not in alone.split("workspace")[0]
