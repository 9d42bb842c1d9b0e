"""
The engine across several orgs: per-org pre-flight, refused orgs, per-org changes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeDevicesApi
from org_manifests import HOME, workspaces_of, write_org_manifest

from provisioner.emulator import DEFAULT_TOKEN, OrgSpec, RunningEmulator, org_id_for
from provisioner.intake.manifest import load_manifest
from provisioner.models import Changes, Status, Target
from provisioner.run.engine import provision
from provisioner.settings import RetryPolicy, Settings
from provisioner.webex.protocol import ClientStatistics, SupportedModel

PARTNER = "partner-token"
ORG1, ORG2 = org_id_for("org1"), org_id_for("org2")


async def partner_emulator(start_emulator: Any) -> RunningEmulator:
    """org1 and org2 beside the seeded org; the partner token manages org1 only."""
    server: RunningEmulator = await start_emulator(
        orgs=(OrgSpec(key="org1"), OrgSpec(key="org2")),
        partners={PARTNER: ("org1",)},
    )
    return server


def settings_for(server: RunningEmulator, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "token": PARTNER,
        "base_url": server.base_url,
        "retry": RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02),
    }
    values.update(overrides)
    return Settings(**values)


class TestRefusedOrg:
    async def test_a_refused_org_fails_only_its_own_rows(
        self, start_emulator: Any, tmp_path: Path
    ) -> None:
        """
        The token may not act for org2: its rows fail with one reason, asked once;
        the seeded org's and org1's rows are created.
        """
        server = await partner_emulator(start_emulator)
        manifest = load_manifest(
            write_org_manifest(tmp_path / "m.csv", {None: 3, "org1": 3, "org2": 3})
        )
        seen: list[tuple[Target, Changes]] = []

        result = await provision(
            manifest,
            settings_for(server),
            before_rows=lambda target, changes: seen.append((target, changes)),
        )

        by_org: dict[str | None, set[Status]] = {}
        for row in manifest.rows:
            by_org.setdefault(row.org_id, set()).add(result.outcomes[row.number].status)
        assert by_org == {
            None: {Status.CREATED},
            ORG1: {Status.CREATED},
            ORG2: {Status.FAILED},
        }
        refused = [o for o in result.outcomes.values() if o.status is Status.FAILED]
        assert len({o.error for o in refused}) == 1
        assert refused[0].http_status == 403
        assert refused[0].error is not None
        assert refused[0].error.startswith("check org: the token may not act for")
        assert "not allowed" in refused[0].error
        # Asked once: the one supportedDevices read, nothing else, went to org2.
        assert [e["route"] for e in server.requests(org=ORG2)] == [
            "GET /v1/telephony/config/supportedDevices"
        ]
        assert server.state.tenancy.orgs[ORG2].store.devices == {}
        _, changes = seen[0]
        counted = {
            c.org.key: (c.rows, c.changes.creates, c.org.refused) for c in changes.orgs
        }
        assert counted[None][:2] == (3, 3)
        assert counted[ORG1][:2] == (3, 3)
        assert counted[ORG2][:2] == (3, 0)
        assert counted[ORG2][2] == refused[0].error.removeprefix("check org: ")
        assert changes.creates == 6
        # The whole says rows act on other orgs; an org's own line does not repeat it.
        assert any("other org" in note for note in changes.notes)
        assert all(not c.changes.notes for c in changes.orgs)

    async def test_a_dry_run_names_the_refused_org_on_its_rows(
        self, start_emulator: Any, tmp_path: Path
    ) -> None:
        """A dry run plans org1's rows and marks org2's invalid, in orgId."""
        server = await partner_emulator(start_emulator)
        manifest = load_manifest(
            write_org_manifest(tmp_path / "m.csv", {"org1": 2, "org2": 2})
        )

        result = await provision(manifest, settings_for(server, dry_run=True))

        statuses = {
            row.org_id: result.outcomes[row.number].status for row in manifest.rows
        }
        assert statuses == {ORG1: Status.PLANNED, ORG2: Status.INVALID}
        (error,) = {result.outcomes[r.number].error or "" for r in manifest.rows[1::2]}
        assert error.startswith("orgId: the token may not act for this org")
        assert [e["route"] for e in server.requests(org=ORG2)] == [
            "GET /v1/telephony/config/supportedDevices"
        ]

    async def test_orgs_are_named_for_the_confirmation_and_the_summary(
        self, start_emulator: Any, tmp_path: Path
    ) -> None:
        """Every org is shown by name and id; the token's own org is found too."""
        server = await partner_emulator(start_emulator)
        manifest = load_manifest(
            write_org_manifest(tmp_path / "m.csv", {None: 1, "org1": 1})
        )
        seen: list[Target] = []

        result = await provision(
            manifest,
            settings_for(server),
            before_rows=lambda target, changes: seen.append(target),
        )

        labels = [org.label() for org in result.stats.orgs]
        home = server.state.tenancy.home
        assert labels == [
            f"{home.catalog.display_name} ({home.id})",
            f"Customer org1 ({ORG1})",
        ]
        assert seen[0].org_name == home.catalog.display_name

    async def test_one_org_reads_nothing_more(
        self, emulator: RunningEmulator, tmp_path: Path
    ) -> None:
        """A run within the token's own org reads no other org and names none."""
        manifest = load_manifest(write_org_manifest(tmp_path / "m.csv", {None: 2}))

        result = await provision(manifest, settings_for(emulator, token=emulator.token))

        routes = [e["route"] for e in emulator.requests()]
        assert routes.count("GET /v1/organizations/{orgId}") == 1  # the target's
        assert routes.count("GET /v1/telephony/config/supportedDevices") == 1
        assert result.stats.orgs == ()


class PerOrgLists(FakeDevicesApi):
    """A fake whose orgs list different supported models."""

    lists: dict[str | None, list[SupportedModel]]

    async def supported_devices(
        self, *, org_id: str | None = None
    ) -> list[SupportedModel]:
        async with self._call("supported_devices", org_id):
            return list(self.lists[org_id])


def model(name: str) -> SupportedModel:
    return SupportedModel(
        model=f"DMS Cisco {name}",
        display_name=f"Cisco {name}",
        managed_by="CISCO",
        supported_for=("PEOPLE", "PLACE"),
        onboarding_methods=("MAC_ADDRESS", "ACTIVATION_CODE"),
    )


async def test_rows_are_judged_against_their_own_orgs_list(tmp_path: Path) -> None:
    """An 8851 goes through in the org that lists it and is invalid in the other."""
    path = tmp_path / "m.csv"
    path.write_text(
        "mac,model,workspaceId,orgId\n"
        "0A0000000001,Cisco 8851,ws-1,org-a\n"
        "0A0000000002,Cisco 8851,ws-1,org-b\n"
        "0A0000000003,Cisco 8865,ws-1,org-b\n"
    )
    api = PerOrgLists(workspaces={"ws-1"})
    api.lists = {
        None: [model("8851")],
        "org-a": [model("8851")],
        "org-b": [model("8865")],
    }
    settings = Settings(token="t", base_url="http://127.0.0.1:1/v1")

    result = await provision(load_manifest(path), settings, api=api)

    statuses = [result.outcomes[n].status for n in (2, 3, 4)]
    assert statuses == [Status.CREATED, Status.INVALID, Status.CREATED]
    assert "model" in (result.outcomes[3].error or "")
    assert api.count("supported_devices") == 3


class TestOwnOrgNamedExplicitly:
    @pytest.mark.parametrize("dry_run", [False, True])
    async def test_rows_naming_the_tokens_own_org_are_one_org_with_the_others(
        self, start_emulator: Any, tmp_path: Path, dry_run: bool
    ) -> None:
        """
        Some rows name the token's own org in ``orgId``, the rest leave it empty: one
        org, not two (one confirmation line, one rate controller, no partner run).
        """
        server: RunningEmulator = await start_emulator()
        home = HOME["orgId"]
        owners = workspaces_of(None)
        path = tmp_path / "m.csv"
        path.write_text(
            "mac,model,workspaceId,orgId\n"
            + "".join(
                f"0A0B0C0D0E{n:02X},Cisco 8851,{owners[n % len(owners)]},"
                f"{home if n % 2 else ''}\n"
                for n in range(6)
            ),
            encoding="utf-8",
        )
        manifest = load_manifest(path)
        seen: list[Changes] = []

        result = await provision(
            manifest,
            Settings(token=DEFAULT_TOKEN, base_url=server.base_url, dry_run=dry_run),
            before_rows=lambda _target, changes: seen.append(changes),
        )

        expected = Status.PLANNED if dry_run else Status.CREATED
        assert {o.status for o in result.outcomes.values()} == {expected}
        assert seen[0].orgs == ()
        assert result.stats.orgs == ()
        # Every write went to the one org, none named it as another.
        writes = [
            e
            for e in server.requests()
            if e["method"] != "GET" and "validateMacs" not in e["path"]
        ]
        assert len(writes) == (0 if dry_run else 6)
        assert {e["org"] for e in writes} <= {home}


class LimitLearned(PerOrgLists):
    """A fake whose client says it learned the API's limits: 30/s for calls that
    name no org, 19.9/s for org-a's, 49.9/s in all."""

    def statistics(self) -> ClientStatistics:
        return dataclasses.replace(
            super().statistics(),
            ceiling=49.9,
            ceilings=(("", 30.0), ("org-a", 19.9)),
        )


@pytest.mark.parametrize(
    ("orgs", "learned", "by_org"),
    [
        (("",), 49.9, ()),
        (("org-a", ""), None, (("org-a", 19.9), (None, 30.0))),
    ],
)
async def test_the_learned_limit_is_one_orgs_only(
    tmp_path: Path,
    orgs: tuple[str, ...],
    learned: float | None,
    by_org: tuple[tuple[str | None, float], ...],
) -> None:
    """A run to one org reports the limit its client learned; a partner's run, whose
    client ceiling is the sum of several orgs' limits, reports each org's."""
    path = tmp_path / "m.csv"
    path.write_text(
        "mac,model,workspaceId,orgId\n"
        + "".join(
            f"0A000000000{n},Cisco 8851,ws-1,{org}\n" for n, org in enumerate(orgs)
        ),
        encoding="utf-8",
    )
    api = LimitLearned(workspaces={"ws-1"})
    api.lists = {None: [model("8851")], "org-a": [model("8851")]}
    settings = Settings(token="t", base_url="http://127.0.0.1:1/v1")

    result = await provision(load_manifest(path), settings, api=api)

    assert {o.status for o in result.outcomes.values()} == {Status.CREATED}
    assert result.stats.learned_limit == learned
    assert result.stats.org_limits == by_org


class TestMacInAnotherOrg:
    async def test_a_mac_held_in_another_org_of_the_run_is_named_there(
        self, start_emulator: Any, tmp_path: Path
    ) -> None:
        """
        An org1 row's MAC is already registered in the seeded org, another org of
        the same partner run: the row fails naming that org and the device, not "a
        device this token cannot see".
        """
        from provisioner.webex.client import ApiClient

        server = await partner_emulator(start_emulator)
        home_room = workspaces_of(None)[0]
        path = tmp_path / "m.csv"
        path.write_text(
            "mac,model,workspaceId,orgId\n"
            f"0A0B0C0D0E0F,Cisco 8851,{workspaces_of('org1')[0]},{ORG1}\n"
            f"0A0B0C0D0E10,Cisco 8851,{home_room},\n",
            encoding="utf-8",
        )
        async with ApiClient(settings_for(server)) as api:
            held = await api.create_device(
                mac="0A0B0C0D0E0F", model="DMS Cisco 8851", workspace_id=home_room
            )

        result = await provision(load_manifest(path), settings_for(server))

        failed = result.outcomes[2]
        assert failed.status is Status.FAILED
        assert "(another org of this run)" in (failed.error or "")
        assert held.id in (failed.error or "")
        assert result.outcomes[3].status is Status.CREATED
