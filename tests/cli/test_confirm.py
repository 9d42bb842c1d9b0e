"""
The confirmation before a command changes an org: what it shows, when it asks, and
what a refusal leaves behind.
"""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from provisioner.cli import confirm
from provisioner.cli.confirm import confirm_changes, describe_api, yes_option
from provisioner.errors import NotConfirmedError
from provisioner.models import Changes, OrgChanges, OrgInfo, TagMode, Target

ORG = Target(
    base_url="https://api-usgov.webex.com/v1",
    org_id="ORG-42",
    org_name="Acme Federal",
    tag_mode=TagMode.REPLACE,
    caller="admin@acme.gov",
)
LOOPBACK = Target(base_url="http://127.0.0.1:8080/v1", org_id="ORG-E")
CHANGES = Changes(creates=34, codes=6, tag_updates=40, deletions=2, voided_codes=3)


def _command(target: Target, changes: Changes) -> click.Command:
    @click.command()
    @yes_option()
    def write(yes: bool) -> None:
        try:
            confirm_changes(target, changes, yes=yes, command="provisioner run")
        except NotConfirmedError as error:
            click.echo(f"refused: {error}", err=True)
            raise SystemExit(2) from None
        click.echo("writing")

    return write


def _invoke(
    target: Target, changes: Changes, args: list[str], text: str | None = None
) -> tuple[int, str, str]:
    result = CliRunner().invoke(_command(target, changes), args, input=text)
    return result.exit_code, result.stdout, result.stderr


class TestConfirmation:
    def test_off_a_terminal_without_yes_nothing_is_changed(self) -> None:
        """In a script (stdin not a terminal) the command refuses and says --yes."""

        code, out, err = _invoke(ORG, CHANGES, [])

        assert (code, out) == (2, "")
        assert "nobody is at a terminal" in err
        assert "--yes" in err

    def test_the_block_names_org_api_caller_and_counts(self) -> None:
        """What will change and where: org name and id, the cloud, who, each count."""

        _, _, err = _invoke(ORG, CHANGES, ["--yes"])

        assert [line.strip() for line in err.splitlines()] == [
            "provisioner run will change:",
            "org:  Acme Federal (ORG-42)",
            "API:  https://api-usgov.webex.com/v1, Webex for Government (FedRAMP)",
            "as:   admin@acme.gov",
            "create up to 34 devices by MAC",
            "issue up to 6 activation codes (each makes a pending device)",
            "set tags on up to 40 devices (tag mode replace)",
            "delete 2 devices",
            "void 3 earlier activation codes (their pending devices are deleted)",
        ]

    def test_a_partners_run_lists_every_org_before_the_first_write(self) -> None:
        """Each org by name and id with its rows and counts; a refused one with why."""
        partner = Changes(
            creates=5,
            orgs=(
                OrgChanges(
                    org=OrgInfo(key="ORG-1", id="ORG-1", name="Customer One"),
                    rows=5,
                    changes=Changes(creates=5),
                ),
                OrgChanges(
                    org=OrgInfo(key="ORG-2", id="ORG-2", refused="no such org (404)"),
                    rows=2,
                ),
            ),
        )

        _, _, err = _invoke(ORG, partner, ["--yes"])

        assert [line.strip() for line in err.splitlines()] == [
            "provisioner run will change:",
            "API:  https://api-usgov.webex.com/v1, Webex for Government (FedRAMP)",
            "as:   admin@acme.gov",
            "create up to 5 devices by MAC",
            "in 2 orgs:",
            "Customer One (ORG-1): 5 rows: create up to 5 devices by MAC",
            "ORG-2: 2 rows will fail: no such org (404)",
        ]

    def test_yes_goes_ahead_without_asking(self) -> None:
        """--yes answers for the person: the command writes."""

        code, out, _ = _invoke(ORG, CHANGES, ["--yes"])

        assert (code, out) == (0, "writing\n")

    @pytest.mark.parametrize(
        ("answer", "expected"), [("y\n", 0), ("n\n", 2), ("\n", 2)]
    )
    def test_on_a_terminal_only_yes_goes_ahead(
        self, monkeypatch: pytest.MonkeyPatch, answer: str, expected: int
    ) -> None:
        """At a terminal the person is asked y/N; no answer means no."""
        monkeypatch.setattr(confirm, "stdin_is_terminal", lambda: True)

        code, out, err = _invoke(ORG, CHANGES, [], answer)

        assert code == expected
        assert "Go ahead? [y/N]" in err
        assert ("writing" in out) is (expected == 0)

    def test_loopback_is_never_asked_about(self) -> None:
        """The emulator (a loopback address) needs no --yes, even in a script."""

        code, out, err = _invoke(LOOPBACK, CHANGES, [])

        assert (code, out) == (0, "writing\n")
        assert "this machine (the emulator)" in err

    def test_nothing_to_change_is_not_asked_about(self) -> None:
        """A command with nothing to write says nothing and asks nothing."""

        assert _invoke(ORG, Changes(), []) == (0, "writing\n", "")

    def test_notes_are_shown_as_changes(self) -> None:
        """A change that cannot be counted beforehand is named in words."""

        code, _, err = _invoke(ORG, Changes(notes=("void earlier codes",)), [])

        assert code == 2
        assert "  void earlier codes" in err.splitlines()


class TestDescribeApi:
    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            ("https://webexapis.com/v1/", "https://webexapis.com/v1, Webex"),
            ("https://example.test/v1", "https://example.test/v1"),
            ("http://[::1]:9/v1", "http://[::1]:9/v1, this machine (the emulator)"),
        ],
    )
    def test_names(self, url: str, expected: str) -> None:
        """A base URL reads as its cloud, the emulator, or itself."""

        assert describe_api(url) == expected
