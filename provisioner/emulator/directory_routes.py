"""
Answer the directory routes under ``/v1``: people, workspaces, locations, orgs.

Sources, each the public documentation of the real API:

- People (developer.webex.com "List People", "Get Person Details", "Get My Own
  Details"; wxc_sdk ``wxc_sdk/people/__init__.py``): ``GET /people`` answers
  ``{"items": [...]}``, an empty list when nothing matches; filters ``email``,
  ``displayName`` ("starts with"), ``id`` (up to 85), ``orgId``, ``locationId``.
  "For most users, either the email or displayName parameter is required. Admin
  users can omit these fields and list all users in their organization"; an admin
  token carries ``spark-admin:people_read``, searching needs ``spark:people_read``.
  "With the exception of partner admins and a managed org relationship, people
  lookup by email is only available for users in the same org": without
  ``orgId``, an email lookup spans every org the token may act for.
  Webex documents no status for a non-admin list without either filter: the
  emulator answers 400 (the generic "invalid request"). ``GET /people/me`` "is the
  same as GET /people/{personId} using the Person ID associated with your token".
- Workspaces (S1, the official spec, "List Workspaces" / "Get Workspace Details"):
  ``displayName``, ``locationId``, ``type``, ``calling``, ``orgId``, ``start``,
  ``max``; how ``displayName`` matches is in ``query.filter_workspaces``.
- Locations (S1, "List Locations" / "Get Location Details"): ``name`` "contains
  this string (case-insensitive)", ``id``, ``orgId``, ``max`` (default 500); the
  scopes are "any of ``spark-admin:locations_read``, ``spark-admin:people_read`` or
  ``spark-admin:device_read``" (sic; ``devices_read`` is accepted too).
- Organizations (developer.webex.com "Organizations"; wxc_sdk
  ``wxc_sdk/organizations/__init__.py``): ``GET /organizations`` lists "all
  organizations visible by your account", not paginated; ``GET
  /organizations/{orgId}`` answers ``{id, displayName, created}``; "accessed only
  by an admin" (``spark-admin:organizations_read``). An unknown org is a 404, one
  the token may not act for a 403.
"""

from __future__ import annotations

from aiohttp import web

from provisioner.emulator.query import (
    filter_locations,
    filter_people,
    filter_workspaces,
)
from provisioner.emulator.state import STATE_KEY
from provisioner.emulator.store import Problem
from provisioner.emulator.wire import json_response, paged

__all__ = ["DIRECTORY_SCOPES", "ORG_FREE_ROUTES", "directory_routes"]

NOT_FOUND = "The requested resource could not be found."
ADMIN_PEOPLE = "spark-admin:people_read"
PEOPLE_READ = frozenset({"spark:people_read", ADMIN_PEOPLE})
WORKSPACES_READ = frozenset({"spark-admin:workspaces_read"})
LOCATIONS_READ = frozenset(
    {
        "spark-admin:locations_read",
        ADMIN_PEOPLE,
        "spark-admin:device_read",
        "spark-admin:devices_read",
    }
)
ORGS_READ = frozenset({"spark-admin:organizations_read"})
#: List Locations: "max ... default 500" (S1).
LOCATIONS_PAGE = 500

#: Per route template: every group must share at least one scope with the token.
DIRECTORY_SCOPES: dict[str, tuple[frozenset[str], ...]] = {
    "GET /v1/people": (PEOPLE_READ,),
    "GET /v1/people/me": (PEOPLE_READ,),
    "GET /v1/people/{personId}": (PEOPLE_READ,),
    "GET /v1/workspaces": (WORKSPACES_READ,),
    "GET /v1/workspaces/{workspaceId}": (WORKSPACES_READ,),
    "GET /v1/locations": (LOCATIONS_READ,),
    "GET /v1/locations/{locationId}": (LOCATIONS_READ,),
    "GET /v1/organizations": (ORGS_READ,),
    "GET /v1/organizations/{orgId}": (ORGS_READ,),
}

#: Routes that take no ``orgId`` query: the caller, or the org in the path.
ORG_FREE_ROUTES = frozenset(
    {
        "GET /v1/people/me",
        "GET /v1/organizations",
        "GET /v1/organizations/{orgId}",
    }
)


async def list_people(request: web.Request) -> web.Response:
    """
    GET /people: filter by email, displayName, id, locationId; page.

    A partner's email lookup without ``orgId`` also finds people of its orgs.
    """
    state = request.app[STATE_KEY]
    identity, org = state.caller(request)
    query = request.query
    is_admin = ADMIN_PEOPLE in identity.scopes
    if not is_admin and not (query.get("email") or query.get("displayName")):
        raise Problem(400, "Either email or displayName is required to list people.")
    orgs = [org]
    if query.get("email") and not query.get("orgId"):
        orgs = [each for each in state.tenancy if each.id in identity.org_ids]
    candidates = [person for each in orgs for person in each.catalog.people.values()]
    people = filter_people(candidates, query)
    return paged(request, people, state.config.page_size)


async def get_me(request: web.Request) -> web.Response:
    """
    GET /people/me: the person behind the token, in its home org.
    """
    state = request.app[STATE_KEY]
    identity = state.identity(request)
    home = state.tenancy.orgs[identity.home_id]
    return json_response(home.catalog.people[identity.person_id])


async def get_person(request: web.Request) -> web.Response:
    """
    GET /people/{personId}.
    """
    _, org = request.app[STATE_KEY].caller(request)
    found = org.catalog.people.get(request.match_info["personId"])
    if found is None:
        raise Problem(404, NOT_FOUND)
    return json_response(found)


async def list_workspaces(request: web.Request) -> web.Response:
    """
    GET /workspaces: filter by displayName, locationId, type, calling; page.
    """
    state = request.app[STATE_KEY]
    _, org = state.caller(request)
    items = filter_workspaces(org.catalog.workspaces.values(), request.query)
    return paged(request, items, state.config.page_size)


async def get_workspace(request: web.Request) -> web.Response:
    """
    GET /workspaces/{workspaceId}.
    """
    _, org = request.app[STATE_KEY].caller(request)
    found = org.catalog.workspaces.get(request.match_info["workspaceId"])
    if found is None:
        raise Problem(404, NOT_FOUND)
    return json_response(found)


async def list_locations(request: web.Request) -> web.Response:
    """
    GET /locations: filter by name (contains) and id; page (default max 500).
    """
    _, org = request.app[STATE_KEY].caller(request)
    items = filter_locations(org.catalog.locations.values(), request.query)
    return paged(request, items, LOCATIONS_PAGE)


async def get_location(request: web.Request) -> web.Response:
    """
    GET /locations/{locationId}.
    """
    _, org = request.app[STATE_KEY].caller(request)
    found = org.catalog.locations.get(request.match_info["locationId"])
    if found is None:
        raise Problem(404, NOT_FOUND)
    return json_response(found)


async def list_organizations(request: web.Request) -> web.Response:
    """
    GET /organizations: every org the token may act for, home first; no paging.
    """
    state = request.app[STATE_KEY]
    identity = state.identity(request)
    items = [org.details() for org in state.tenancy if org.id in identity.org_ids]
    return json_response({"items": items})


async def get_organization(request: web.Request) -> web.Response:
    """
    GET /organizations/{orgId}: 404 if unknown, 403 if the token may not act for it.
    """
    state = request.app[STATE_KEY]
    identity = state.identity(request)
    org = state.tenancy.target(identity, request.match_info["orgId"])
    return json_response(org.details())


def directory_routes() -> list[web.RouteDef]:
    """
    Return the directory route table (``people/me`` before ``{personId}``).
    """
    return [
        web.get("/v1/people", list_people, allow_head=False),
        web.get("/v1/people/me", get_me, allow_head=False),
        web.get("/v1/people/{personId}", get_person, allow_head=False),
        web.get("/v1/workspaces", list_workspaces, allow_head=False),
        web.get("/v1/workspaces/{workspaceId}", get_workspace, allow_head=False),
        web.get("/v1/locations", list_locations, allow_head=False),
        web.get("/v1/locations/{locationId}", get_location, allow_head=False),
        web.get("/v1/organizations", list_organizations, allow_head=False),
        web.get("/v1/organizations/{orgId}", get_organization, allow_head=False),
    ]
