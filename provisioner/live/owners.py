"""
Resolve owners named by name against the org: each distinct name looked up once.

Rows may name their owner by workspace display name or by person email. For each
distinct name (per org) this asks ``GET /workspaces?displayName=`` or
``GET /people?email=``, then ``GET /locations/{id}`` for the locations that tell
same-named workspaces apart; every call goes through the client, so the rate
controller paces them with the rest. What the answers mean is decided in
``live.owner_rules``; ``resolve_owners`` only gathers them and delegates.

Used by ``validate --live`` and the dry run (through ``live.preflight``) and by a run
before its first write.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import anyio
import structlog

from provisioner.errors import (
    AuthError,
    ForbiddenError,
    InvalidRequestError,
    NotFoundError,
)
from provisioner.live.owner_rules import (
    LocationKey,
    NameKey,
    NameLookup,
    distinct_names,
    locations_needed,
    resolve_rows,
)
from provisioner.models import Manifest, OwnerKind, Problem
from provisioner.webex.protocol import DevicesApi

__all__ = ["DEFAULT_LOOKUP_CONCURRENCY", "Resolution", "resolve_owners"]

log = structlog.get_logger()

DEFAULT_LOOKUP_CONCURRENCY = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolution:
    """
    The manifest with named owners resolved, and what the lookups found.

    Attributes:
        manifest: rows whose name matched one owner carry its id; the others carry
            a problem saying what was looked for and what to do.
        problems: those problems, by row number.
        lookups: each distinct name looked up, with its answer.
        warnings: lookups the token's scopes did not allow, in words to act on.
    """

    manifest: Manifest
    problems: Mapping[int, tuple[Problem, ...]] = field(default_factory=dict)
    lookups: Mapping[NameKey, NameLookup] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


async def resolve_owners(
    manifest: Manifest,
    api: DevicesApi,
    *,
    org_id: str | None = None,
    concurrency: int = DEFAULT_LOOKUP_CONCURRENCY,
) -> Resolution:
    """
    Look every distinct owner name up once and resolve the rows that give one.

    Raises:
        AuthError: the token was refused.
        ApiError: a lookup failed for good after the client's retries.
    """
    keys = distinct_names(manifest.rows, org_id)
    if not keys:
        return Resolution(manifest=manifest)
    lookups: dict[NameKey, NameLookup] = {}
    warnings: list[str] = []
    limiter = anyio.CapacityLimiter(max(1, concurrency))
    async with anyio.create_task_group() as group:
        for key in keys:
            group.start_soon(_look_up_name, api, key, lookups, warnings, limiter)
    locations: dict[LocationKey, str | None] = {}
    async with anyio.create_task_group() as group:
        for place in locations_needed(manifest.rows, lookups, org_id):
            group.start_soon(
                _look_up_location, api, place, locations, warnings, limiter
            )
    resolved, problems = resolve_rows(manifest, lookups, locations, org_id)
    log.info(
        "owner_names_resolved",
        names=len(keys),
        locations=len(locations),
        rows_unresolved=len(problems),
    )
    return Resolution(
        manifest=resolved,
        problems=problems,
        lookups=lookups,
        warnings=tuple(dict.fromkeys(warnings)),
    )


async def _look_up_name(
    api: DevicesApi,
    key: NameKey,
    lookups: dict[NameKey, NameLookup],
    warnings: list[str],
    limiter: anyio.CapacityLimiter,
) -> None:
    async with limiter:
        try:
            if key.kind is OwnerKind.PERSON:
                found = await api.find_people(key.name, org_id=key.org_id)
            else:
                found = await api.find_workspaces(key.name, org_id=key.org_id)
        except AuthError:
            raise
        except ForbiddenError:
            noun = "people" if key.kind is OwnerKind.PERSON else "workspaces"
            warnings.append(
                f"owners named by {'email' if noun == 'people' else 'name'} could not "
                f"be looked up: the token may not list {noun}"
            )
            lookups[key] = NameLookup(forbidden=True)
            return
        except InvalidRequestError as error:
            lookups[key] = NameLookup(refused=error.message)
            return
    lookups[key] = NameLookup(found=tuple(found))


async def _look_up_location(
    api: DevicesApi,
    place: LocationKey,
    locations: dict[LocationKey, str | None],
    warnings: list[str],
    limiter: anyio.CapacityLimiter,
) -> None:
    org, location_id = place
    async with limiter:
        try:
            location = await api.get_location(location_id, org_id=org)
        except AuthError:
            raise
        except ForbiddenError:
            warnings.append(
                "locations were not named: the token may not read locations (it "
                "needs spark-admin:locations_read); same-named workspaces are told "
                "apart by location id"
            )
            locations[place] = None
            return
        except (NotFoundError, InvalidRequestError):
            locations[place] = None
            return
    locations[place] = location.name
