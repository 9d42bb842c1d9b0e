"""
What a renewal of the run's report did to its code rows: which rows it holds, and
whether it replaced the code the run's journal holds.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from built_rows import rows_of

from provisioner.models import Manifest, Outcome, Status
from provisioner.run.identity import row_keys
from provisioner.run.renewals import Renewal, renewed_outcomes, renewed_since

RENEWED = Path("r-renewed.xlsx")
AGAIN = Path("r-renewed-2.xlsx")
OWN_ORG = "org-own"


def code(row: int, digits: str, expiry: str | None, device: str = "d") -> Outcome:
    return Outcome(
        row=row,
        status=Status.CODE_ISSUED,
        device_id=f"{device}{row}",
        activation_code=digits * 4,
        activation_expiry=expiry,
    )


def renewal(*records: tuple[str, ...], outcomes: dict[int, Outcome]) -> Renewal:
    columns = ("mac", "model", "workspaceId", "workspace", "orgId")
    rows = tuple(rows_of(columns, *records))
    manifest = Manifest(
        path=RENEWED, sheet=None, columns=columns, field_columns={}, rows=rows
    )
    return Renewal(path=RENEWED, manifest=manifest, outcomes=outcomes)


class TestRenewedSince:
    JOURNAL = code(2, "1111", "2026-12-30T01:00:00.000Z")
    RENEWED = code(5, "2222", "2027-01-24T01:00:00.000Z", device="n")

    def test_a_later_code_of_a_renewal_replaces_the_journals(self) -> None:
        """The renewal holds another code, issued later: the row is as it left it,
        numbered as the run's row."""
        expected = (RENEWED, replace(self.RENEWED, row=2))

        actual = renewed_since(self.JOURNAL, [(RENEWED, self.RENEWED)])

        assert expected == actual

    def test_the_latest_of_several_renewals_wins(self) -> None:
        """A renewal of a renewal (a later code still) beats the first, whatever
        order they come in."""
        later = code(2, "3333", "2027-02-20T01:00:00.000Z", device="m")
        renewals = [(AGAIN, later), (RENEWED, self.RENEWED)]

        assert (AGAIN, later) == renewed_since(self.JOURNAL, renewals)

    def test_the_journals_word_stands_otherwise(self) -> None:
        """The same code, an older one (the run issued its code after the renewal:
        --fresh, or a row a rollback made it forget), a code without an expiry on
        either side, and a row without a code keep the journal's outcome."""
        older = replace(self.RENEWED, activation_expiry="2026-12-01T00:00:00.000Z")
        no_expiry = replace(self.RENEWED, activation_expiry=None)
        journal_without = replace(self.JOURNAL, activation_expiry=None)
        created = Outcome(row=2, status=Status.CREATED, device_id="d2")

        assert renewed_since(self.JOURNAL, [(RENEWED, self.JOURNAL)]) is None
        assert renewed_since(self.JOURNAL, [(RENEWED, older)]) is None
        assert renewed_since(self.JOURNAL, [(RENEWED, no_expiry)]) is None
        assert renewed_since(journal_without, [(RENEWED, self.RENEWED)]) is None
        assert renewed_since(created, [(RENEWED, self.RENEWED)]) is None
        assert renewed_since(self.JOURNAL, []) is None


class TestRenewedOutcomes:
    def test_rows_are_keyed_as_the_run_keys_them(self) -> None:
        """A row named by workspace gets its report's owner id, a row spelling out
        the token's org is keyed as one naming none, and rows without a code on a
        device are left out."""
        outcomes = {
            2: replace(code(2, "1111", None), owner="Lobby (id ws-1)"),
            3: code(3, "2222", None),
            4: Outcome(row=4, status=Status.CREATED, device_id="d4"),
            5: replace(code(5, "3333", None), device_id=None),
        }
        found = renewal(
            ("", "Cisco 8865", "", "Lobby", ""),
            ("", "Cisco 8865", "ws-2", "", OWN_ORG),
            ("AA:BB:CC:00:00:01", "Cisco 8851", "ws-3", "", ""),
            ("", "Cisco 8865", "ws-4", "", ""),
            outcomes=outcomes,
        )
        run_rows = rows_of(
            ("model", "workspaceId"),
            ("Cisco 8865", "ws-1"),
            ("Cisco 8865", "ws-2"),
        )
        keys = row_keys(run_rows)
        expected = {keys[2]: outcomes[2], keys[3]: outcomes[3]}

        actual = renewed_outcomes(found, OWN_ORG)

        assert expected == actual
