"""
Export the org's devices: List Devices, page after page, each line written as it comes.

``export_devices`` follows ``Link rel="next"`` from the first page to the last with
``max`` at ``PAGE_SIZE``, hands each device's line (``export_rules.export_record``) to
``write`` and forgets the page, so memory stays flat whatever the org's size (a page
is fetched while the one before it is written: two pages at most are held). Every
request goes through the client's rate controller and retries, like a run's; progress
is reported per page. With ``owner_names`` each owner is looked up once (a bounded
cache: owners come back page after page) and named by its workspace name or email.
Devices whose tags a manifest would read back as other tags are counted, and the
first few named, so the command can say so.
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime

import anyio
import structlog
from anyio.abc import ObjectSendStream

from provisioner.errors import (
    ApiError,
    ConfigError,
    ForbiddenError,
    NotFoundError,
)
from provisioner.inventory.export_rules import (
    PAGE_SIZE,
    TAGS_SHOWN,
    ExportProgress,
    ExportQuery,
    ExportResult,
    device_label,
    export_record,
    list_filters,
    tags_read_back,
)
from provisioner.inventory.first_call import open_api
from provisioner.live.orgs import LIST_DEVICES, org_id_refusal
from provisioner.models import Device
from provisioner.settings import Settings
from provisioner.webex.protocol import DevicesApi

__all__ = ["OWNER_CACHE_SIZE", "ExportProgress", "ExportResult", "export_devices"]

log = structlog.get_logger()

#: Owners whose names are remembered; beyond that the least recently seen is dropped
#: (and looked up again if it comes back), so memory does not grow with the org.
OWNER_CACHE_SIZE = 10_000
#: Owner lookups in flight at once (they share the rate controller with the pages).
OWNER_LOOKUPS = 8


async def export_devices(
    query: ExportQuery,
    settings: Settings,
    write: Callable[[list[str | None]], None],
    *,
    api: DevicesApi | None = None,
    page_size: int = PAGE_SIZE,
    owner_names: bool = False,
    on_progress: Callable[[ExportProgress], None] | None = None,
    marks_formulas: bool = False,
) -> ExportResult:
    """
    List every device matching ``query`` and hand each one's export line to ``write``.

    Args:
        api: the Devices API; None opens an ``ApiClient(settings)`` for the export.
            Either way the first call learns the target (``first_call.open_api``).
        page_size: the ``max`` asked for on each page.
        owner_names: look each owner up (one call per distinct owner) for
            ``ownerName``.
        on_progress: called with an ``ExportProgress`` after each page.
        marks_formulas: ``write`` marks a cell a spreadsheet would run as a formula
            as text (a CSV: ``TableFile`` marks every CSV cell), which a manifest
            reads back as written: such tags make the round trip.

    Raises:
        ConfigError: a filter is unusable (see ``list_filters``), the base URL is
            not the API, or the org ``--org-id`` names refused the first page (403:
            the token may not act for it; 404: no such org).
        ApiError: the list failed even after retries (a refused token, an unreachable
            API); the lines written so far are incomplete, so the caller drops them.
    """
    filters = list_filters(query)
    started_at = datetime.now(UTC)
    clock = time.monotonic()
    async with contextlib.AsyncExitStack() as stack:
        opened = await open_api(stack, settings, api)
        api, probed = opened.api, opened.probed
        names = _OwnerNames(api, settings.org_id) if owner_names else None
        unread = _TagsNotReadBack(marked=marks_formulas)
        pages = devices = 0
        # One page ahead: the next page is asked for while this one is written, so
        # the API's time to answer and ours to write overlap; one page is held at most.
        send, receive = anyio.create_memory_object_stream[list[Device]](1)
        with _org_refused(settings.org_id, lambda: pages == 0), _one_error():
            async with anyio.create_task_group() as group:
                group.start_soon(_fetch, api, send, settings.org_id, page_size, filters)
                async with receive:
                    async for page in receive:
                        known = await names.look_up(page) if names else None
                        for device in page:
                            write(export_record(device, known))
                            unread.check(device)
                        pages += 1
                        devices += len(page)
                        if on_progress is not None:
                            on_progress(_progress(api, pages, devices, clock))
        figures = api.statistics()
    log.info("export_finished", devices=devices, pages=pages)
    return ExportResult(
        devices=devices,
        pages=pages,
        started_at=started_at,
        finished_at=datetime.now(UTC),
        api_calls=figures.calls + probed[0],
        rate_limited=figures.rate_limited + probed[1],
        retries=figures.retries + probed[2],
        final_rate=figures.rate,
        owners_unnamed=names.unnamed if names is not None else 0,
        target=opened.target,
        tags_not_read_back=unread.count,
        tags_not_read_back_shown=tuple(unread.shown),
    )


@contextlib.contextmanager
def _one_error() -> Iterator[None]:
    """
    Raise the error that ended the listing (or the writing) itself, not the task
    group around it: callers catch ``ApiError`` and ``OSError``.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


@contextlib.contextmanager
def _org_refused(org_id: str | None, first_page: Callable[[], bool]) -> Iterator[None]:
    """
    Say a refusal of the first page in the org ``--org-id`` names as that org's.

    A 403 there means the token may not act for that org (a partner admin's token
    that does not manage it) far more often than a missing scope, and a 404 that no
    such org exists; both name the flag, as a run's do.
    """
    try:
        yield
    except (ForbiddenError, NotFoundError) as error:
        if org_id is None or not first_page():
            raise
        raise ConfigError(org_id_refusal(org_id, error, read=LIST_DEVICES)) from None


async def _fetch(
    api: DevicesApi,
    send: ObjectSendStream[list[Device]],
    org_id: str | None,
    page_size: int,
    filters: dict[str, str],
) -> None:
    """
    Hand the device list over page by page, to the last.
    """
    async with send:
        pages = api.device_pages(org_id=org_id, page_size=page_size, **filters)
        async for page in pages:
            await send.send(page)


def _progress(
    api: DevicesApi, pages: int, devices: int, clock: float
) -> ExportProgress:
    figures = api.statistics()
    return ExportProgress(
        pages=pages,
        devices=devices,
        api_calls=figures.calls,
        rate_limited=figures.rate_limited,
        current_rate=figures.rate,
        elapsed=time.monotonic() - clock,
    )


class _TagsNotReadBack:
    """
    The devices whose tags a manifest would read back as other tags: how many, and
    the first ``TAGS_SHOWN`` by name (not all: memory stays flat whatever the org).
    """

    def __init__(self, *, marked: bool) -> None:
        self.count = 0
        self.shown: list[str] = []
        self._marked = marked

    def check(self, device: Device) -> None:
        if tags_read_back(device.tags, marked=self._marked):
            return
        self.count += 1
        if len(self.shown) < TAGS_SHOWN:
            self.shown.append(device_label(device))


class _OwnerNames:
    """
    Owner id → name (workspace name, else the person's email or name), looked up
    once per owner, in a bounded least-recently-seen cache.
    """

    def __init__(self, api: DevicesApi, org_id: str | None) -> None:
        self._api = api
        self._org_id = org_id
        self._names: OrderedDict[str, str | None] = OrderedDict()
        self.unnamed = 0

    async def look_up(self, page: Sequence[Device]) -> dict[str, str]:
        """
        The names of this page's owners, looking up those not remembered.
        """
        wanted: dict[str, Device] = {}
        for device in page:
            owner = device.owner_id
            if owner is None:
                continue
            if owner in self._names:
                self._names.move_to_end(owner)
            else:
                wanted.setdefault(owner, device)
        found: dict[str, str | None] = {}
        limiter = anyio.CapacityLimiter(OWNER_LOOKUPS)
        async with anyio.create_task_group() as group:
            for owner, device in wanted.items():
                group.start_soon(self._one, owner, device, found, limiter)
        for owner, name in found.items():
            self._names[owner] = name
        while len(self._names) > OWNER_CACHE_SIZE:
            self._names.popitem(last=False)
        return {
            owner: name
            for device in page
            if (owner := device.owner_id) and (name := self._names.get(owner))
        }

    async def _one(
        self,
        owner: str,
        device: Device,
        found: dict[str, str | None],
        limiter: anyio.CapacityLimiter,
    ) -> None:
        async with limiter:
            try:
                if device.workspace_id:
                    record = await self._api.get_workspace(owner, org_id=self._org_id)
                    name = record.display_name
                else:
                    record = await self._api.get_person(owner, org_id=self._org_id)
                    name = record.extra.get("email") or record.display_name
            except NotFoundError:
                name = None
            except ApiError as error:
                # The device line is what matters; a missing name is counted, not fatal.
                log.warning("owner_name_unread", owner=owner, status=error.status)
                name = None
        if name is None:
            self.unnamed += 1
        found[owner] = name
