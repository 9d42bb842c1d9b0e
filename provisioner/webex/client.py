"""
The Webex Devices API over HTTP: the one module that sends requests.

``ApiClient`` owns one ``HttpPool`` of keep-alive connections per run (``async with
ApiClient(settings) as api:``; see ``http.py``) and implements
``provisioner.webex.protocol.DevicesApi``. Every
attempt goes through the rate limiter, carries a fresh ``TrackingID``, is counted in
the calling task's ``CallTally`` and logged as one ``api_call_finished`` event.
Connection failures and HTTP statuses become ``provisioner.errors`` in exactly one
place: ``error_for_exception`` and ``error_for_answer`` in ``answers.py``; every such error
cuts the token and the passwords the client has sent out of its message (an answer
may quote the request it refused). The camelCase wire
format (bodies, queries, answers into dataclasses) is ``wire.py``'s job.

The module is past 450 lines on purpose: one short method per endpoint sits beside
the one request loop they all share (``_call``/``_attempt``), so each endpoint's
retry rule can be read next to the loop that applies it.

Retries (see ``retry.py``) and what is replayed:

- GET, DELETE, validateMacs, tag ``replace``/``remove``: idempotent, retried on
  transient failures. A DELETE retried after an ambiguous failure that then finds the
  device gone counts as done.
- Create by MAC: replayed only after a 429/423 or a refused connection. After a
  timeout, a dropped connection or a 5xx it raises ``OutcomeUnknownError``: the
  caller looks the device up by MAC before trying again.
- Tag ``add``: the API appends, so a blind replay could duplicate tags. After an
  ambiguous failure the client reads the device and, unless the add already landed,
  sends ``replace`` with the union (an idempotent request).
- Activation codes: like a create. Each code makes a pending device, so a blind
  replay after an ambiguous failure could leave a second one behind; the client
  raises ``OutcomeUnknownError`` and the engine removes the lost code's device
  before it asks for a fresh code.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

import anyio
from yarl import URL

from provisioner.errors import (
    InvalidRequestError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitedError,
    TransientError,
)
from provisioner.logs import event_logger
from provisioner.models import ActivationCode, Device, TagMode
from provisioner.redaction import add_secrets
from provisioner.settings import Settings
from provisioner.webex.answers import (
    answer_from,
    clock_offset,
    error_for_answer,
    error_for_exception,
)
from provisioner.webex.endpoint import check_base_url, check_token
from provisioner.webex.http import HttpPool
from provisioner.webex.org_rates import HOME_ORG, OrgRateLimiter, Start
from provisioner.webex.protocol import (
    Caller,
    CallTally,
    ClientStatistics,
    Location,
    MacState,
    Organization,
    Owner,
    SupportedModel,
)
from provisioner.webex.retry import (
    first_call_policy,
    is_replay_safe,
    next_delay,
    retry_after_delay,
)
from provisioner.webex.wire import (
    Answer,
    activation_code_from,
    caller_from,
    device_from,
    expect_object,
    list_query,
    location_from,
    mac_state_from,
    next_link,
    organization_from,
    owner_body,
    owner_from,
    page_items,
    supported_model_from,
    wire_mac,
)

__all__ = ["TRACKING_PREFIX", "ApiClient", "ClientStatistics"]

log = event_logger()

TRACKING_PREFIX = "PROVISIONER_"
USER_AGENT = "provisioner"
PATCH_CONTENT_TYPE = "application/json-patch+json"

_current_tally: ContextVar[CallTally | None] = ContextVar(
    "provisioner_call_tally", default=None
)

#: Draws the tracking ids' random part. A tracking id must be unique (Cisco support
#: finds a request by it), not secret: a generator seeded once from the OS's entropy
#: is enough, and spares ``uuid.uuid4`` its system call and UUID object per request.
_tracking_random = random.Random()

#: The version (4) and variant (RFC 4122) bits of a random UUID, and their mask.
_UUID4_BITS = (0x4 << 76) | (0x2 << 62)
_UUID4_MASK = ~((0xF << 76) | (0x3 << 62))


def new_tracking_id() -> str:
    """
    A fresh ``TrackingID``: ``PROVISIONER_`` and a random (version 4) UUID.
    """
    text = f"{_tracking_random.getrandbits(128) & _UUID4_MASK | _UUID4_BITS:032x}"
    return (
        f"{TRACKING_PREFIX}{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-"
        f"{text[20:]}"
    )


class ApiClient:
    """
    The real ``DevicesApi``: one connection pool, a rate limiter and retries for a run.

    Args:
        settings: the run's settings (token, base URL, concurrency, retry, rate).
        clock: the rate controller's clock (tests inject a fake one).
        rand: the backoff's random source in ``[0, 1)``.
        limiter: another client's rate limiter, to pace both as one (the run's
            first-call probe shares the run client's); None for a limiter of its own.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
        limiter: OrgRateLimiter | None = None,
    ) -> None:
        check_token(settings.token)
        self._base = URL(check_base_url(settings.base_url))
        # Every row's calls go under /devices: joined once here, not per call (a
        # yarl join re-quotes the path; the device id's segment is the only new one).
        self._devices = self._base / "devices"
        self._settings = settings
        self._authorization = f"Bearer {settings.token}"
        # Registered for the redaction every error message passes through: an
        # answer (or a connection error) that quotes the token is written clean.
        add_secrets(settings.token)
        self._rand = rand
        # One rate controller per org (a partner's rows name several), one cap on
        # calls in flight for the whole run: see org_rates.py. Two clients of one
        # run share it: the API's bucket counts both clients' calls, and a
        # controller that missed some of them learns a limit too low.
        if limiter is None:
            limiter = OrgRateLimiter(
                settings.concurrency,
                settings.rate,
                by_org=settings.org_controls(),
                clock=clock,
            )
            # An org told a ceiling that no row names can only be the token's own:
            # its ceiling paces the first calls too, before GET /people/me confirms.
            limiter.rates.name_home(settings.rate_org_to_confirm)
        self._limiter = limiter
        self._http: HttpPool | None = None
        self._calls = 0
        self._rate_limited = 0
        self._retries = 0
        #: Whether any answer has arrived (see ``first_call_policy``).
        self._answered = False
        #: How far the API's clock is ahead of ours (``clock_offset``), from the
        #: first answer (zero when it had no readable Date); None until then.
        self._clock_offset: timedelta | None = None

    def __repr__(self) -> str:
        return f"ApiClient(base_url={str(self._base)!r})"

    @property
    def limiter(self) -> OrgRateLimiter:
        """
        The rate limiter pacing this client's calls (to share with another client).
        """
        return self._limiter

    async def __aenter__(self) -> Self:
        self._http = HttpPool(
            self._base,
            idle=self._settings.concurrency,
            timeout=self._settings.request_timeout,
            user_agent=USER_AGENT,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    @contextlib.contextmanager
    def tally(self) -> Iterator[CallTally]:
        """
        Count the calls the calling task makes inside the block in a fresh tally.
        """
        fresh = CallTally()
        token = _current_tally.set(fresh)
        try:
            yield fresh
        finally:
            _current_tally.reset(token)

    def server_now(self) -> datetime:
        """
        The API's "now": this machine's clock, corrected by the API's ``Date`` when
        the two differ by more than ``SKEW_TOLERANCE``.
        """
        return datetime.now(UTC) + (self._clock_offset or timedelta())

    def statistics(self) -> ClientStatistics:
        """
        Return a frozen snapshot of the run-wide figures.
        """
        rate = self._limiter.statistics()
        return ClientStatistics(
            calls=self._calls,
            rate_limited=self._rate_limited,
            retries=self._retries,
            in_flight=self._limiter.in_flight,
            rate=rate.rate,
            ceiling=rate.ceiling,
            phase=str(rate.phase),
            ceilings=()
            if rate.shared
            else tuple(
                (org, lane.ceiling)
                for org, lane in rate.by_lane.items()
                if lane.ceiling is not None
            ),
        )

    # -- the DevicesApi calls ---------------------------------------------------------

    async def create_device(
        self,
        *,
        mac: str,
        model: str,
        workspace_id: str | None = None,
        person_id: str | None = None,
        password: str | None = None,
        org_id: str | None = None,
    ) -> Device:
        """
        Create a device by MAC; an empty 2xx body is resolved by a lookup by MAC.
        """
        api_mac = wire_mac(mac)
        body: dict[str, Any] = {"mac": api_mac, "model": model}
        body.update(owner_body(workspace_id, person_id))
        if password is not None:
            # The answer to this request may quote its body: the error made from it
            # must not carry the password (see provisioner.redaction).
            add_secrets(password)
            body["password"] = password
        url = self._devices
        answer = await self._call(
            "POST", url, org_id=org_id, json_body=body, idempotent=False
        )
        if isinstance(answer.body, dict) and answer.body.get("id"):
            return device_from(answer.body)
        # 98xx desk phones: 2xx without a body. The device exists; find it.
        found = await self.find_device_by_mac(api_mac, org_id=org_id)
        if found is None:
            cause = NotFoundError(
                "the create answered without a device and none was found by MAC",
                status=answer.status,
                tracking_id=answer.tracking_id,
                method="GET",
                path=self._devices.path,
            )
            raise OutcomeUnknownError(
                cause.message, cause=cause, tracking_id=answer.tracking_id
            )
        return found

    async def find_device_by_mac(
        self, mac: str, *, org_id: str | None = None
    ) -> Device | None:
        """
        Return the device registered with this MAC, or None.
        """
        api_mac = wire_mac(mac)
        async for device in self.list_devices(org_id=org_id, mac=api_mac):
            if device.mac in (None, api_mac):
                return device
        return None

    async def list_devices(
        self,
        *,
        org_id: str | None = None,
        page_size: int | None = None,
        **filters: str,
    ) -> AsyncIterator[Device]:
        """
        Yield every device matching the filters, following ``Link rel="next"``.
        """
        pages = self.device_pages(org_id=org_id, page_size=page_size, **filters)
        async for page in pages:
            for device in page:
                yield device

    async def device_pages(
        self,
        *,
        org_id: str | None = None,
        page_size: int | None = None,
        **filters: str,
    ) -> AsyncIterator[list[Device]]:
        """
        Yield the device list page by page (for progress counted in pages), following
        ``Link rel="next"`` until the last page; only one page is held at a time.
        """
        params = list_query(filters, page_size)
        url: URL | None = self._devices
        while url is not None:
            # A next URL carries its own query: it is followed verbatim, nothing added.
            answer = await self._call("GET", url, org_id=org_id, params=params)
            params = {}
            items = page_items(answer.body)
            if items:
                yield [device_from(item) for item in items]
            url = self._next_url(answer) if items else None

    async def get_device(self, device_id: str, *, org_id: str | None = None) -> Device:
        """
        Return one device by id.
        """
        answer = await self._call("GET", self._devices / device_id, org_id=org_id)
        return device_from(expect_object(answer))

    async def create_activation_code(
        self,
        *,
        model: str | None,
        workspace_id: str | None = None,
        person_id: str | None = None,
        org_id: str | None = None,
    ) -> ActivationCode:
        """
        Issue an activation code for a workspace or a person.
        """
        body: dict[str, Any] = owner_body(workspace_id, person_id)
        if model:
            body["model"] = model
        url = self._devices / "activationCode"
        data = expect_object(
            await self._call(
                "POST", url, org_id=org_id, json_body=body, idempotent=False
            )
        )
        return activation_code_from(data)

    async def modify_tags(
        self,
        device_id: str,
        *,
        mode: TagMode | str,
        tags: Sequence[str],
        org_id: str | None = None,
    ) -> Device:
        """
        Apply tags with a single-object JSON Patch (``add``, ``replace``, ``remove``).
        """
        op = str(mode)
        if op not in ("add", "replace", "remove"):
            raise InvalidRequestError(f"unknown tag mode {op!r}: use add or replace")
        try:
            return await self._patch_tags(
                device_id, op, list(tags), org_id, op != "add"
            )
        except OutcomeUnknownError:
            current = await self.get_device(device_id, org_id=org_id)
            if all(tag in current.tags for tag in tags):
                return current
            union = list(dict.fromkeys([*current.tags, *tags]))
            return await self._patch_tags(device_id, "replace", union, org_id, True)

    async def delete_device(self, device_id: str, *, org_id: str | None = None) -> None:
        """
        Delete a device; a retry that finds it already gone counts as done.
        """
        url = self._devices / device_id
        await self._call("DELETE", url, org_id=org_id, gone_ok=True)

    async def supported_devices(
        self, *, org_id: str | None = None
    ) -> list[SupportedModel]:
        """
        Return the models the org can provision.
        """
        url = self._base / "telephony" / "config" / "supportedDevices"
        data = expect_object(await self._call("GET", url, org_id=org_id))
        return [supported_model_from(item) for item in data.get("devices") or []]

    async def validate_macs(
        self, macs: Sequence[str], *, org_id: str | None = None
    ) -> list[MacState]:
        """
        Ask which MACs are available.
        """
        url = self._base.joinpath(
            "telephony", "config", "devices", "actions", "validateMacs", "invoke"
        )
        body = {"macs": [wire_mac(mac) for mac in macs]}
        data = expect_object(
            await self._call("POST", url, org_id=org_id, json_body=body)
        )
        return [mac_state_from(item) for item in data.get("macStatus") or []]

    async def get_workspace(
        self, workspace_id: str, *, org_id: str | None = None
    ) -> Owner:
        """
        Return a workspace by id.
        """
        answer = await self._call(
            "GET", self._base / "workspaces" / workspace_id, org_id=org_id
        )
        return owner_from(expect_object(answer))

    async def get_person(self, person_id: str, *, org_id: str | None = None) -> Owner:
        """
        Return a person by id.
        """
        answer = await self._call(
            "GET", self._base / "people" / person_id, org_id=org_id
        )
        return owner_from(expect_object(answer))

    async def find_people(
        self, email: str, *, org_id: str | None = None
    ) -> list[Owner]:
        """
        Return the people ``GET /people?email=`` answers, every page.
        """
        url = self._base / "people"
        return [
            owner_from(item)
            async for item in self._items(url, {"email": email}, org_id)
        ]

    async def find_workspaces(
        self, display_name: str, *, org_id: str | None = None
    ) -> list[Owner]:
        """
        Return the workspaces ``GET /workspaces?displayName=`` answers, every page.

        Webex documents the filter only as "by display name"; the caller keeps the
        exact name (a contains or prefix match answers more).
        """
        url = self._base / "workspaces"
        query = {"displayName": display_name}
        return [owner_from(item) async for item in self._items(url, query, org_id)]

    async def get_location(
        self, location_id: str, *, org_id: str | None = None
    ) -> Location:
        """
        Return one location by id.
        """
        answer = await self._call(
            "GET", self._base / "locations" / location_id, org_id=org_id
        )
        return location_from(expect_object(answer))

    async def get_me(self) -> Caller:
        """
        Return the person behind the token (``GET /people/me``), with their org.
        """
        answer = await self._call("GET", self._base / "people" / "me", scoped=False)
        caller = caller_from(expect_object(answer))
        # Calls naming no org go to the token's: now known, its own --max-rate paces them.
        self._limiter.rates.name_home(caller.org_id)
        return caller

    async def get_organization(self, org_id: str) -> Organization:
        """
        Return an org's id and display name.
        """
        answer = await self._call(
            "GET", self._base / "organizations" / org_id, scoped=False
        )
        return organization_from(expect_object(answer))

    # -- one request, with retries ------------------------------------------------------

    async def _items(
        self, url: URL, params: Mapping[str, str], org_id: str | None
    ) -> AsyncIterator[Mapping[str, Any]]:
        """
        Yield the ``items`` of a list answer, following ``Link rel="next"``.
        """
        query = dict(params)
        next_url: URL | None = url
        while next_url is not None:
            # A next URL carries its own query: it is followed verbatim.
            answer = await self._call("GET", next_url, org_id=org_id, params=query)
            query = {}
            items = page_items(answer.body)
            for item in items:
                yield item
            next_url = self._next_url(answer) if items else None

    async def _patch_tags(
        self,
        device_id: str,
        op: str,
        tags: list[str],
        org_id: str | None,
        idempotent: bool,
    ) -> Device:
        patch: dict[str, Any] = {"op": op, "path": "tags"}
        if op != "remove":
            patch["value"] = tags
        answer = await self._call(
            "PATCH",
            self._devices / device_id,
            org_id=org_id,
            json_body=patch,
            content_type=PATCH_CONTENT_TYPE,
            idempotent=idempotent,
        )
        return device_from(expect_object(answer))

    async def _call(
        self,
        method: str,
        url: URL,
        *,
        org_id: str | None = None,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        content_type: str = "application/json",
        idempotent: bool = True,
        gone_ok: bool = False,
        scoped: bool = True,
    ) -> Answer:
        # ``scoped``: the call acts within an org, so it carries orgId; the caller's
        # own details and an org by id take none.
        query = dict(params) if params else {}
        org = (org_id or self._settings.org_id) if scoped else None
        if org and not url.query_string:
            query["orgId"] = org
        if query:
            url = url.extend_query(query)
        data = None if json_body is None else json.dumps(json_body).encode()
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            # Until the API has answered once, silence or a refused connection means
            # a wrong URL or no API running: a few quick tries, not minutes of them.
            policy = (
                self._settings.retry
                if self._answered
                else first_call_policy(self._settings.retry)
            )
            try:
                return await self._attempt(
                    method, url, data, content_type, attempt, org or HOME_ORG
                )
            except NotFoundError:
                if gone_ok and attempt > 1:
                    return Answer(status=404, body=None, tracking_id="")
                raise
            except TransientError as error:
                if not is_replay_safe(error, idempotent=idempotent):
                    raise OutcomeUnknownError(
                        f"{error.message}; the request may have taken effect",
                        cause=error,
                        status=error.status,
                        tracking_id=error.tracking_id,
                        method=method,
                        path=url.path,
                    ) from error
                delay = next_delay(
                    policy,
                    error,
                    attempt=attempt,
                    elapsed=time.monotonic() - started,
                    rand=self._rand,
                )
                if delay is None:
                    raise
                self._retries += 1
                log.info(
                    "retry_scheduled",
                    method=method,
                    path=url.path,
                    attempt=attempt,
                    delay_s=round(delay, 3),
                    error=type(error).__name__,
                    status=error.status,
                    tracking_id=error.tracking_id,
                )
                await anyio.sleep(delay)

    async def _attempt(
        self,
        method: str,
        url: URL,
        data: bytes | None,
        content_type: str,
        attempt: int,
        org: str,
    ) -> Answer:
        http = self._http
        if http is None:
            raise RuntimeError("use 'async with ApiClient(settings) as api:'")
        tracking_id = new_tracking_id()
        headers = {"Authorization": self._authorization, "TrackingID": tracking_id}
        if data is not None:
            headers["Content-Type"] = content_type
        tally = _current_tally.get()
        async with self._limiter.slot(org) as start:
            self._calls += 1
            if tally is not None:
                tally.calls += 1
                tally.last_tracking_id = tracking_id
            clock = time.perf_counter()
            answer: Answer | None = None
            try:
                raw = await http.request(method, url, headers, data)
                answer = answer_from(raw, tracking_id)
                if self._clock_offset is None:
                    # Once, on the first answer: without a readable Date, none.
                    offset = clock_offset(raw.header("date"), datetime.now(UTC))
                    self._clock_offset = offset or timedelta()
                self._answered = True
            except Exception as exc:
                # Connection failures become ApiErrors here, chained to the original
                # (an ``except``: no context manager entered on every request).
                error = error_for_exception(exc, method, url.path, tracking_id)
                if error is None:
                    raise
                raise error from exc
            finally:
                log.info(
                    "api_call_finished",
                    method=method,
                    path=url.path,
                    status=None if answer is None else answer.status,
                    attempt=attempt,
                    elapsed_ms=round((time.perf_counter() - clock) * 1000, 1),
                    tracking_id=tracking_id if answer is None else answer.tracking_id,
                )
        if tally is not None:
            tally.last_tracking_id = answer.tracking_id
        error = error_for_answer(answer, method=method, path=url.path)
        if isinstance(error, RateLimitedError):
            self._note_rate_limited(error, start, tally)
        if error is not None:
            raise error
        return answer

    def _note_rate_limited(
        self, error: RateLimitedError, start: Start, tally: CallTally | None
    ) -> None:
        self._rate_limited += 1
        if tally is not None:
            tally.rate_limited += 1
        pause = retry_after_delay(self._settings.retry, error.retry_after)
        # A 429 is about the whole app/org, not this request: pause the org's starts.
        self._limiter.rejected(start, pause)
        # What the controller made of it: a learned limit is what ``--max-rate``
        # would take next time, to start at the limit without learning it again.
        lane = self._limiter.rates.controller(start.lane).statistics()
        log.info(
            "rate_limited",
            method=error.method,
            path=error.path,
            status=error.status,
            retry_after_s=pause,
            tracking_id=error.tracking_id,
            org_id=start.org or None,
            phase=str(lane.phase),
            learned_limit=None if lane.ceiling is None else round(lane.ceiling, 2),
        )

    def _next_url(self, answer: Answer) -> URL | None:
        url = next_link(answer.links)
        if url is not None and url.origin() != self._base.origin():
            raise InvalidRequestError(
                "the API's next-page link points to another host; "
                "refusing to send the token there"
            )
        return url
