"""
A run's first reads: the ones that need no answer of another go out together, and
the rows are readied while the org's name is read; a refusal is still the one
GET /people/me gave.

Each concurrency test makes two calls wait for each other to have started: an engine
that made them one after the other would hang until the guard (a guard against a
hang, not a measure of speed).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pytest
import structlog
from fakes import FakeDevicesApi

from provisioner.errors import AuthError, NotFoundError
from provisioner.intake.manifest import load_manifest
from provisioner.live.target import NoApiError
from provisioner.models import Changes, Manifest, Status, Target
from provisioner.run.engine import provision
from provisioner.settings import Settings

DEADLOCK_GUARD = 5.0
HEADER = "mac,model,workspaceId,workspace,location,tags"


def settings(**changes: object) -> Settings:
    return replace(
        Settings(token="secret-token", base_url="http://127.0.0.1:1/v1"), **changes
    )  # type: ignore[arg-type]


def manifest(folder: Path, *lines: str) -> Manifest:
    path = folder / "m.csv"
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return load_manifest(path)


def by_id(folder: Path) -> Manifest:
    return manifest(folder, "00AABB000002,Cisco 8851,ws-1,,,a")


class Meeting(FakeDevicesApi):
    """
    A fake whose calls named in ``waits`` do not answer before the calls they wait
    for have started.
    """

    def __init__(self, waits: dict[str, set[str]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.waits = waits
        names = set(waits) | {name for wanted in waits.values() for name in wanted}
        self.started = {name: anyio.Event() for name in names}

    async def meet(self, op: str) -> None:
        if op in self.started:
            self.started[op].set()
        for other in self.waits.get(op, ()):
            await self.started[other].wait()

    async def get_me(self) -> Any:
        await self.meet("get_me")
        return await super().get_me()

    async def get_organization(self, org_id: str) -> Any:
        await self.meet("get_organization")
        return await super().get_organization(org_id)

    async def supported_devices(self, *, org_id: str | None = None) -> Any:
        await self.meet("supported_devices")
        return await super().supported_devices(org_id=org_id)

    async def find_workspaces(self, display_name: str, **kwargs: Any) -> Any:
        await self.meet("find_workspaces")
        return await super().find_workspaces(display_name, **kwargs)


async def test_people_me_and_the_catalogue_are_read_together(tmp_path: Path) -> None:
    """supportedDevices (sent without an org) does not wait for GET /people/me."""
    api = Meeting(
        {"get_me": {"supported_devices"}, "supported_devices": {"get_me"}},
        workspaces={"ws-1"},
    )

    with anyio.fail_after(DEADLOCK_GUARD):
        result = await provision(by_id(tmp_path), settings(), api=api)

    assert [o.status for o in result.outcomes.values()] == [Status.CREATED]
    assert api.count("supported_devices") == 1
    assert api.count("get_organization") == 1


async def test_with_org_id_the_three_first_reads_go_together(tmp_path: Path) -> None:
    """--org-id names the org: its name and list need nothing of GET /people/me."""
    api = Meeting(
        {"get_me": {"supported_devices", "get_organization"}},
        workspaces={"ws-1"},
    )
    seen: list[Target] = []

    with anyio.fail_after(DEADLOCK_GUARD):
        result = await provision(
            by_id(tmp_path),
            settings(org_id="org-given"),
            api=api,
            before_rows=lambda target, _: seen.append(target),
        )

    assert [o.status for o in result.outcomes.values()] == [Status.CREATED]
    assert [(t.org_id, t.org_name) for t in seen] == [("org-given", "Org org-given")]


async def test_rows_are_readied_while_the_org_name_is_read(tmp_path: Path) -> None:
    """
    Owners named by name are looked up before the org's name has answered; the
    confirmation still names the org, and comes before any write.
    """
    api = Meeting(
        {"get_organization": {"find_workspaces"}},
        workspace_names={"ws-board": ("Boardroom", None)},
    )
    seen: list[tuple[str | None, int]] = []

    def confirm(target: Target, changes: Changes) -> None:
        seen.append((target.org_name, api.count("create_device")))

    with anyio.fail_after(DEADLOCK_GUARD):
        result = await provision(
            manifest(tmp_path, "00AABB000002,Cisco 8851,,Boardroom,,a"),
            settings(),
            api=api,
            before_rows=confirm,
        )

    assert seen == [("Org org-fake", 0)]
    assert [o.status for o in result.outcomes.values()] == [Status.CREATED]
    assert api.devices[next(iter(api.devices))].workspace_id == "ws-board"
    assert result.stats.target is not None
    assert result.stats.target.org_name == "Org org-fake"


async def test_a_refused_token_wins_over_the_catalogue_read_beside_it(
    tmp_path: Path,
) -> None:
    """
    A 401 to GET /people/me is raised even when supportedDevices, sent beside it,
    answered otherwise; that answer is not judged (no warning about the list).
    """
    api = Meeting({"get_me": {"supported_devices"}}, workspaces={"ws-1"})
    api.fail_before("get_me", AuthError("token refused", status=401))
    api.fail_before("supported_devices", NotFoundError("no such path", status=404))

    with (
        anyio.fail_after(DEADLOCK_GUARD),
        structlog.testing.capture_logs() as logs,
        pytest.raises(AuthError),
    ):
        await provision(by_id(tmp_path), settings(), api=api)

    assert api.count("create_device") == 0
    assert api.count("get_organization") == 0
    assert "supported_devices_refused" not in [e["event"] for e in logs]


async def test_a_wrong_url_is_named_though_the_catalogue_is_still_out(
    tmp_path: Path,
) -> None:
    """A 404 to GET /people/me says "no Webex API" at once; the read beside it, still
    unanswered, is cancelled (it would hang here)."""

    class Hanging(FakeDevicesApi):
        async def supported_devices(self, *, org_id: str | None = None) -> Any:
            await anyio.sleep_forever()

    api = Hanging(workspaces={"ws-1"})
    api.fail_before("get_me", NotFoundError("not found", status=404))

    with anyio.fail_after(DEADLOCK_GUARD), pytest.raises(NoApiError):
        await provision(by_id(tmp_path), settings(), api=api)
