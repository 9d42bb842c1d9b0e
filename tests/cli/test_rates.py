"""
cli/rates.py: ``--max-rate R`` and ``--max-rate ORG=R`` parsed, checked against the
orgs of the manifest, turned into rate controls, and told back as advice.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from provisioner.cli.rates import (
    MaxRates,
    org_limits_advice,
    parse_max_rates,
    rate_settings,
    told_rate,
)
from provisioner.intake.manifest import load_manifest
from provisioner.models import Manifest, OrgInfo, RunStats
from provisioner.settings import DEFAULT_RATE, RateControl

# Webex org ids are base64 and may end in "=": ORG=R splits at the last "=".
ORG_A = "Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi9h"
ORG_B = "Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi9i=="


def manifest_of(tmp_path: Path, *orgs: str) -> Manifest:
    """One MAC row per org of ``orgs`` ("" for a row without orgId)."""
    lines = ["mac,model,workspaceId,orgId"]
    lines += [
        f"0A00000000{n:02X},Cisco 8851,ws-{n},{org}" for n, org in enumerate(orgs)
    ]
    path = tmp_path / "m.csv"
    path.write_text("\n".join(lines) + "\n")
    return load_manifest(path)


class TestParse:
    def test_a_bare_r_is_every_orgs_ceiling(self) -> None:
        """R alone, as before: one ceiling for every org, no org named."""
        assert parse_max_rates(["19.8"]) == MaxRates(every=19.8)

    def test_org_r_names_an_org_beside_a_bare_r(self) -> None:
        """ORG=R, repeatable, beside one bare R; an id ending in '=' keeps it."""
        parsed = parse_max_rates([f"{ORG_A}=19.8", "10", f" {ORG_B}=4.9 "])

        assert parsed == MaxRates(every=10.0, by_org=((ORG_A, 19.8), (ORG_B, 4.9)))

    def test_nothing_given_is_no_ceiling(self) -> None:
        assert parse_max_rates([]) == MaxRates()

    @pytest.mark.parametrize(
        ("values", "says"),
        [
            (["0"], "above 0"),
            (["-3"], "above 0"),
            (["fast"], "not R or ORG=R"),
            (["nan"], "above 0"),
            (["inf"], "above 0"),
            ([f"{ORG_A}=0"], "above 0"),
            ([f"{ORG_A}="], "not R or ORG=R"),
            ([f"{ORG_A}=x"], "not R or ORG=R"),
            (["=5"], "names no org"),
            (["5", "6"], "R is given twice (5 and 6)"),
            ([f"{ORG_A}=5", f"{ORG_A}=6"], f"org {ORG_A} is given twice (5 and 6)"),
        ],
    )
    def test_a_bad_value_says_what_to_give(self, values: list[str], says: str) -> None:
        """Each kind of bad value is refused with words that say what is wrong."""
        with pytest.raises(ValueError, match=re.escape(says)):
            parse_max_rates(values)


class TestRateSettings:
    def test_a_named_org_beats_the_bare_r(self, tmp_path: Path) -> None:
        """The bare R caps the orgs not named; ORG=R gives that org its own
        ceiling (above the bare R too), each starting no faster than it."""
        manifest = manifest_of(tmp_path, ORG_A, ORG_B)
        rates = MaxRates(every=4.0, by_org=((ORG_A, 50.0), (ORG_B, 2.0)))

        settled = rate_settings(rates, manifest=manifest, org_id=None)

        assert settled.rate == RateControl(initial_rate=4.0, max_rate=4.0, min_rate=0.5)
        assert dict(settled.org_rates) == {
            ORG_A: RateControl(initial_rate=20.0, max_rate=50.0, min_rate=0.5),
            ORG_B: RateControl(initial_rate=2.0, max_rate=2.0, min_rate=0.5),
        }
        assert settled.rate_org_to_confirm is None

    def test_without_a_bare_r_the_others_stay_adaptive(self, tmp_path: Path) -> None:
        manifest = manifest_of(tmp_path, ORG_A, ORG_B)
        rates = MaxRates(by_org=((ORG_A, 5.0),))

        settled = rate_settings(rates, manifest=manifest, org_id=None)

        assert settled.rate == DEFAULT_RATE

    def test_the_org_id_flag_names_an_org_too(self, tmp_path: Path) -> None:
        """Rows without orgId go to --org-id's org: ORG may name it."""
        manifest = manifest_of(tmp_path, "", ORG_A)

        settled = rate_settings(
            MaxRates(by_org=((ORG_B, 3.0),)), manifest=manifest, org_id=ORG_B
        )

        assert [org for org, _ in settled.org_rates] == [ORG_B]

    def test_an_org_no_row_goes_to_is_refused(self, tmp_path: Path) -> None:
        """Every row names its org: an ORG outside them is a mistake, refused
        with the orgs the rows do go to."""
        manifest = manifest_of(tmp_path, ORG_A, ORG_A)

        with pytest.raises(ValueError, match="no row of the manifest goes to") as e:
            rate_settings(
                MaxRates(by_org=((ORG_B, 3.0),)), manifest=manifest, org_id=None
            )

        assert f"go to are {ORG_A}" in str(e.value)

    def test_one_unknown_org_may_be_the_tokens_own(self, tmp_path: Path) -> None:
        """Rows without orgId go to the token's org, whose id only the first call
        says: one ORG outside the manifest is taken for it, to be confirmed."""
        manifest = manifest_of(tmp_path, "", ORG_A)

        settled = rate_settings(
            MaxRates(by_org=((ORG_B, 3.0),)), manifest=manifest, org_id=None
        )

        assert settled.rate_org_to_confirm == ORG_B
        assert dict(settled.org_rates)[ORG_B].max_rate == 3.0

    def test_two_unknown_orgs_cannot_both_be_the_tokens(self, tmp_path: Path) -> None:
        manifest = manifest_of(tmp_path, "", ORG_A)
        rates = MaxRates(by_org=((ORG_B, 3.0), ("elsewhere", 2.0)))

        with pytest.raises(ValueError, match=f"goes to {ORG_B}, elsewhere"):
            rate_settings(rates, manifest=manifest, org_id=None)

    def test_a_one_org_command_takes_its_own_org_only(self) -> None:
        """export acts in --org-id's org: an ORG=R naming another is refused."""
        rates = MaxRates(by_org=((ORG_B, 3.0),))

        with pytest.raises(ValueError, match=f"acts in one org \\({ORG_A}\\)"):
            rate_settings(rates, manifest=None, org_id=ORG_A)
        named = rate_settings(
            MaxRates(by_org=((ORG_A, 3.0),)), manifest=None, org_id=ORG_A
        )
        assert named.org_rates == ((ORG_A, DEFAULT_RATE.capped(3.0)),)

    def test_a_one_org_command_without_org_id_confirms_it(self) -> None:
        """Without --org-id the one org is the token's: its id is confirmed later."""
        settled = rate_settings(
            MaxRates(by_org=((ORG_A, 3.0),)), manifest=None, org_id=None
        )

        assert settled.rate_org_to_confirm == ORG_A


START = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def partner_stats(
    orgs: tuple[OrgInfo, ...], limits: tuple[tuple[str | None, float], ...]
) -> RunStats:
    return RunStats(
        started_at=START,
        finished_at=START + timedelta(seconds=60),
        api_calls=3000,
        rate_limited=9,
        retries=9,
        orgs=orgs,
        org_limits=limits,
    )


class TestAdvice:
    @pytest.mark.parametrize(
        ("limit", "told"), [(20.0, 19.8), (49.63, 49.1), (5.0, 4.9), (0.5, 0.4)]
    )
    def test_told_rate_is_a_percent_under_rounded_down(
        self, limit: float, told: float
    ) -> None:
        assert told_rate(limit) == told

    def test_each_org_that_learned_gets_its_flag_on_one_line(self) -> None:
        """The orgs that learned a limit, each by the id its rows name, in the
        run's order; an org that learned none gets no entry."""
        stats = partner_stats(
            (
                OrgInfo(key=ORG_A, id=ORG_A, name="Customer A"),
                OrgInfo(key="quiet-org", id="quiet-org"),
                OrgInfo(key=ORG_B, id=ORG_B),
            ),
            ((ORG_B, 5.0), (ORG_A, 20.0)),
        )

        advice = org_limits_advice(stats)

        assert advice is not None
        assert advice.endswith(f": --max-rate {ORG_A}=19.8 --max-rate {ORG_B}=4.9")
        assert "quiet-org" not in advice

    def test_the_tokens_own_org_is_named_by_its_id(self) -> None:
        """Rows without orgId name the token's org by leaving it empty: the advice
        names it by the id GET /people/me gave, which the next run accepts."""
        stats = partner_stats(
            (OrgInfo(key=None, id="HOME-ID", name="Partner"), OrgInfo(key=ORG_A)),
            ((None, 30.0),),
        )

        assert str(org_limits_advice(stats)).endswith(": --max-rate HOME-ID=29.7")

    def test_no_org_learned_no_advice(self) -> None:
        stats = partner_stats((OrgInfo(key=ORG_A), OrgInfo(key=ORG_B)), ())

        assert org_limits_advice(stats) is None
