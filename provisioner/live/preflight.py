"""
Check a manifest against the live org before anything is written.

Pre-flight follows the offline checks and makes read calls only (the validateMacs
POST reads too: it changes nothing):

- ``supportedDevices``, once for each org the rows go to: the offline model checks
  run again against each row's own org's list (``Catalogue.from_supported``): the
  model is supported at all, allows the row's onboarding method (MAC vs activation
  code), fits the owner kind (person vs workspace), and a third-party
  (customer-managed) model has a password. An org that refuses the read (401, 403,
  404) gives its rows that one problem, in ``orgId``, and nothing more is asked
  about them (``live.orgs``);
- ``validateMacs`` in batches: a MAC in use (and, where a lookup can tell, by whom),
  invalid, or listed twice;
- each distinct owner looked up once: a 404 names the column and says to check the id;
  owners named by workspace name or email are resolved to ids first (``live.owners``).

The decisions are pure functions of what the calls answered, in
``provisioner.live.rules`` (``mac_problems``, ``owner_problems``, ``with_catalogue``,
``decide``); ``preflight`` only gathers the answers and delegates. The result is the
manifest with the live problems on its rows, so the offline printing, the exit codes
and the engine's dry run treat both kinds alike. The pure names are re-exported here,
so callers import the whole pre-flight from this one module.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import anyio
import structlog

from provisioner.errors import (
    ApiError,
    AuthError,
    ForbiddenError,
    InvalidRequestError,
    NotFoundError,
)
from provisioner.live.orgs import (
    RERUN_ROWS,
    OrgAccess,
    acted_for,
    merge_rows,
    org_keys,
    org_problem,
    own_org_as_default,
    refusal,
    with_catalogues,
)
from provisioner.live.owners import resolve_owners
from provisioner.live.rules import (
    MAC_BATCH_SIZE,
    Answers,
    MacHolder,
    OwnerKey,
    OwnerLookup,
    Preflight,
    cell_text,
    decide,
    distinct_owners,
    holder_of,
    mac_batches,
    mac_message,
    mac_problems,
    merge_problems,
    owner_problems,
    row_org,
    with_catalogue,
)
from provisioner.models import Manifest, OrgInfo, OwnerKind
from provisioner.webex.protocol import DevicesApi, SupportedModel

__all__ = [
    "MAC_BATCH_SIZE",
    "MacHolder",
    "OrgAccess",
    "OwnerKey",
    "OwnerLookup",
    "Preflight",
    "cell_text",
    "distinct_owners",
    "first_device_refused",
    "mac_batches",
    "mac_message",
    "mac_problems",
    "merge_problems",
    "name_orgs",
    "owner_problems",
    "preflight",
    "read_orgs",
    "survey_orgs",
    "with_catalogue",
    "with_catalogues",
]

log = structlog.get_logger()

DEFAULT_LOOKUP_CONCURRENCY = 8


async def preflight(
    manifest: Manifest,
    api: DevicesApi,
    *,
    org_id: str | None = None,
    batch_size: int = MAC_BATCH_SIZE,
    concurrency: int = DEFAULT_LOOKUP_CONCURRENCY,
    supported: Sequence[SupportedModel] | None = None,
    orgs: Mapping[str | None, OrgAccess] | None = None,
    own_org: str | None = None,
) -> Preflight:
    """
    Run the live checks for every row of a manifest; make no write call.

    Args:
        manifest: the manifest after the offline checks.
        api: an open client (``ApiClient``) or any ``DevicesApi``.
        org_id: the org of rows without an ``orgId`` (None: the token's).
        batch_size: MACs per validateMacs call.
        concurrency: owner and MAC-holder lookups in flight at once.
        supported: the org's supportedDevices answer when the caller already has it
            (the engine reads it first); None reads it here, as the first call.
        orgs: what reading the other orgs the rows name answered, when the caller
            has read them; each org not in it is read here, once. Each row is
            judged against its own org's list; a refused org's rows get that as
            their problem, and nothing more is asked about them.
        own_org: the token's own org's id, when known: without ``org_id``, rows
            whose ``orgId`` spells it out are checked with the rows that name no
            org (one org, read once), not as an org of their own.

    Raises:
        AuthError: the token was refused (401) on the first call; nothing else ran.
        ApiError: a call failed for good after the client's retries.
    """
    gathered = Answers()
    home = own_org if org_id is None else None
    if home is not None:
        manifest = own_org_as_default(manifest, home)
    if supported is None:
        # The first call doubles as the authentication check: a 401 ends here.
        read = await _supported(api, org_id, gathered.warnings)
        gathered.supported = read or ()
    else:
        read = gathered.supported = tuple(supported)
    accesses = dict(orgs or {})
    accesses.setdefault(
        org_id, OrgAccess(info=OrgInfo(key=org_id, id=org_id), supported=read or ())
    )
    unread = [key for key in org_keys(manifest.rows, org_id) if key not in accesses]
    if read is not None:
        # (When the token may not read the list at all, a refusal in another org
        # would say nothing about that org: its rows keep the bundled catalogue.)
        accesses.update(await read_orgs(api, unread, concurrency=concurrency))
    lists = {key: access.supported for key, access in accesses.items()}
    manifest = with_catalogues(manifest, lists, org_id)
    if home is not None:
        # The rows were rebuilt from their cells, orgId as typed.
        manifest = own_org_as_default(manifest, home)
    refused = {key: access for key, access in accesses.items() if access.is_refused}
    # Owners named by name get their ids first: the MAC holder and adoption checks
    # compare owner ids. A refused org's rows are that org's problem alone: nothing
    # more is asked about them.
    resolution = await resolve_owners(
        acted_for(manifest, accesses, org_id),
        api,
        org_id=org_id,
        concurrency=concurrency,
    )
    manifest = merge_rows(manifest, resolution.manifest)
    gathered.warnings.extend(resolution.warnings)
    rows = list(acted_for(manifest, accesses, org_id).rows)
    for org, batch in mac_batches(rows, org_id, batch_size):
        if not await _validate_batch(api, org, batch, gathered):
            break
    limiter = anyio.CapacityLimiter(max(1, concurrency))
    readable = [key for key, access in accesses.items() if not access.is_refused]
    async with anyio.create_task_group() as group:
        for key, state in gathered.states.items():
            if state.state == "UNAVAILABLE":
                # A partner's manifest: the MAC may be in another of its orgs.
                others = [org for org in readable if org != key[0]]
                group.start_soon(_find_holder, api, key, others, gathered, limiter)
        for owner in distinct_owners(rows, org_id):
            group.start_soon(_lookup_owner, api, owner, gathered, limiter)
    # The holders' names come through the same cache: each owner is read once.
    holder_owners = dict.fromkeys(
        OwnerKey(h.owner_kind, h.owner_id, org)
        for (org, _mac), h in gathered.holders.items()
        if h is not None and h.owner_kind is not None and h.owner_id is not None
    )
    async with anyio.create_task_group() as group:
        for owner in holder_owners:
            group.start_soon(_lookup_owner, api, owner, gathered, limiter)
    checked = decide(manifest, gathered, org_id)
    live = dict(checked.live_problems)
    for number, problems in resolution.problems.items():
        live[number] = problems + live.get(number, ())
    refusals = {
        row.number: (org_problem(manifest, row, refused[org]),)
        for row in manifest.rows
        if (org := row_org(row, org_id)) in refused
    }
    return dataclasses.replace(
        checked,
        manifest=merge_problems(checked.manifest, refusals),
        live_problems={**live, **refusals},
        names_looked_up=len(resolution.lookups),
        names_unresolved=len(resolution.problems),
    )


async def read_orgs(
    api: DevicesApi,
    keys: Sequence[str | None],
    *,
    concurrency: int = DEFAULT_LOOKUP_CONCURRENCY,
) -> dict[str | None, OrgAccess]:
    """
    Read each org's supportedDevices once: its models, or why the token may not act
    for it (401, 403, 404). Any other failure leaves the org without a list.
    """
    found: dict[str | None, OrgAccess] = {}
    limiter = anyio.CapacityLimiter(max(1, concurrency))
    async with anyio.create_task_group() as group:
        for key in keys:
            group.start_soon(_read_org, api, key, found, limiter)
    return {key: found[key] for key in keys}


async def survey_orgs(
    api: DevicesApi,
    keys: Sequence[str | None],
    *,
    concurrency: int = DEFAULT_LOOKUP_CONCURRENCY,
    then: str = RERUN_ROWS,
) -> dict[str | None, OrgAccess]:
    """
    Check, once per org, that the token may act for it, and name it: for commands
    that read and change devices (``rollback``), not models.

    Each org's device list is asked for one device (what those commands need the
    token to do there anyway); a 401, 403 or 404 refuses the org, in the words of
    ``refusal`` ending with ``then``. The orgs' names are looked up as a run's are.
    """
    found: dict[str | None, OrgAccess] = {}
    limiter = anyio.CapacityLimiter(max(1, concurrency))

    async def probe(key: str | None) -> None:
        info = OrgInfo(key=key, id=key)
        async with limiter:
            error = await first_device_refused(api, key)
        if error is None:
            found[key] = OrgAccess(info=info)
            return
        log.info("org_refused", org_id=key, status=error.status)
        refused = dataclasses.replace(info, refused=refusal(error, then=then))
        found[key] = OrgAccess(info=refused, error=error)

    async with anyio.create_task_group() as group:
        for key in keys:
            group.start_soon(probe, key)
    infos = [found[key].info for key in keys]
    for named in await name_orgs(api, infos, concurrency=concurrency):
        found[named.key] = dataclasses.replace(found[named.key], info=named)
    return {key: found[key] for key in keys}


async def first_device_refused(api: DevicesApi, key: str | None) -> ApiError | None:
    """
    Ask an org's device list for one device; return the refusal, or None.

    Any other failure is not the org's: the command's own calls meet it (or not).
    """
    pages = api.device_pages(org_id=key, page_size=1)
    try:
        async for _page in pages:
            break
    except (AuthError, ForbiddenError, NotFoundError) as error:
        return error
    except ApiError as error:
        log.warning("org_not_checked", org_id=key, status=error.status)
    finally:
        # Close the listing now rather than whenever it is collected.
        close = getattr(pages, "aclose", None)
        if close is not None:
            await close()
    return None


async def name_orgs(
    api: DevicesApi,
    infos: Sequence[OrgInfo],
    *,
    concurrency: int = DEFAULT_LOOKUP_CONCURRENCY,
) -> list[OrgInfo]:
    """
    Fill in each org's id and display name, where the token may read them.

    The token's own org (key None) is found through ``GET /people/me``. A name the
    API will not give stays unknown: the org is then shown by its id.
    """
    named: dict[int, OrgInfo] = {}
    limiter = anyio.CapacityLimiter(max(1, concurrency))

    async def name(index: int, info: OrgInfo) -> None:
        async with limiter:
            named[index] = await _named(api, info)

    async with anyio.create_task_group() as group:
        for index, info in enumerate(infos):
            group.start_soon(name, index, info)
    return [named[index] for index in range(len(infos))]


async def _named(api: DevicesApi, info: OrgInfo) -> OrgInfo:
    try:
        org_id = info.id
        if org_id is None:
            org_id = (await api.get_me()).org_id
        if org_id is None:
            return info
        org = await api.get_organization(org_id)
    except ApiError as error:
        log.info("org_name_unknown", org_id=info.id, status=error.status)
        return info
    return dataclasses.replace(info, id=org_id, name=org.display_name)


async def _read_org(
    api: DevicesApi,
    key: str | None,
    found: dict[str | None, OrgAccess],
    limiter: anyio.CapacityLimiter,
) -> None:
    info = OrgInfo(key=key, id=key)
    async with limiter:
        try:
            models = await api.supported_devices(org_id=key)
        except (AuthError, ForbiddenError, NotFoundError) as error:
            # Said in words by the confirmation, the rows and the summary.
            log.info("org_refused", org_id=key, status=error.status)
            refused = dataclasses.replace(info, refused=refusal(error))
            found[key] = OrgAccess(info=refused, error=error)
            return
        except ApiError as error:
            log.warning("supported_devices_refused", org_id=key, status=error.status)
            models = []
    log.info("supported_devices_read", org_id=key, models=len(models))
    found[key] = OrgAccess(info=info, supported=tuple(models))


async def _supported(
    api: DevicesApi, org: str | None, warnings: list[str]
) -> tuple[SupportedModel, ...] | None:
    """
    Read the run's org's list; None when the token may not read it at all.
    """
    try:
        models = await api.supported_devices(org_id=org)
    except ForbiddenError:
        warnings.append(
            "models were checked against the bundled catalogue only: the token may "
            "not read supportedDevices (it needs spark-admin:telephony_config_read)"
        )
        return None
    log.info("supported_devices_read", org_id=org, models=len(models))
    return tuple(models)


async def _validate_batch(
    api: DevicesApi, org: str | None, batch: Sequence[str], gathered: Answers
) -> bool:
    try:
        states = await api.validate_macs(batch, org_id=org)
    except ForbiddenError:
        gathered.warnings.append(
            "MACs were not checked against the org: the token may not call "
            "validateMacs (it needs spark-admin:telephony_config_write)"
        )
        return False
    for state in states:
        gathered.states[(org, state.mac)] = state
    log.info("macs_validated", org_id=org, macs=len(batch), answered=len(states))
    return True


async def _find_holder(
    api: DevicesApi,
    key: tuple[str | None, str],
    others: Sequence[str | None],
    gathered: Answers,
    limiter: anyio.CapacityLimiter,
) -> None:
    """
    Find the device holding an in-use MAC: in the row's org, else in the other orgs
    the manifest names (``others``), whose holder says which org it is in.
    """
    org, mac = key
    holder = None
    for where in (org, *others):
        async with limiter:
            try:
                device = await api.find_device_by_mac(mac, org_id=where)
            except AuthError:
                raise
            except ForbiddenError:
                gathered.warnings.append(
                    "who holds an in-use MAC was not looked up: the token may not "
                    "list devices (it needs spark-admin:devices_read)"
                )
                device = None
            except ApiError as error:
                log.info("mac_holder_unknown", mac=mac, reason=type(error).__name__)
                device = None
        if device is not None:
            holder = holder_of(device, where)
            if where != org:
                holder = dataclasses.replace(
                    holder, other_org=where or "the token's own org"
                )
            break
    gathered.holders[key] = holder


async def _lookup_owner(
    api: DevicesApi,
    key: OwnerKey,
    gathered: Answers,
    limiter: anyio.CapacityLimiter,
) -> None:
    if key in gathered.owners:
        return
    # Claim the key before awaiting, so a concurrent task never looks it up twice.
    gathered.owners[key] = OwnerLookup()
    async with limiter:
        try:
            if key.kind is OwnerKind.PERSON:
                owner = await api.get_person(key.id, org_id=key.org_id)
            else:
                owner = await api.get_workspace(key.id, org_id=key.org_id)
        except NotFoundError:
            gathered.owners[key] = OwnerLookup(missing=True)
            return
        except InvalidRequestError as error:
            gathered.owners[key] = OwnerLookup(refused=error.message)
            return
        except ForbiddenError:
            del gathered.owners[key]
            gathered.warnings.append(
                "owners were not checked: the token may not read workspaces or people"
            )
            return
    gathered.owners[key] = OwnerLookup(owner=owner)
