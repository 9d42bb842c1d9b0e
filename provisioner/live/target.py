"""
Learn where a command writes: the API, the org and who the token belongs to.

Every command that talks to the API makes this its first call, so a wrong base URL,
a refused token or a missing scope stops it before anything else, in one sentence:

- ``GET /people/me``: the token's person and their org. A 404 (or an answer that is
  not JSON) here means the base URL is not the Webex API: ``no_api_message`` says so
  and suggests the URL with ``/v1``. A 401 or 403 is raised as it is.
- ``GET /organizations/{orgId}``: the org's name, for people to read. It needs an
  admin's organizations scope; without it the org is shown by id alone.

The org a run acts on is ``--org-id`` when given, else the token's own org.
"""

from __future__ import annotations

import structlog

from provisioner.errors import (
    ApiError,
    AuthError,
    ConfigError,
    ForbiddenError,
    NotFoundError,
    ServerError,
    TransientError,
)
from provisioner.models import Target
from provisioner.settings import Settings
from provisioner.webex.protocol import Caller, DevicesApi

__all__ = [
    "NoApiError",
    "acted_on",
    "find_caller",
    "name_org",
    "no_api_message",
    "resolve_target",
    "target_of",
]

log = structlog.get_logger()

_API_VERSION = "/v1"


class NoApiError(ConfigError):
    """
    The base URL answers, but not as the Webex API does.
    """


def no_api_message(base_url: str, status: int | None) -> str:
    """
    Say that ``base_url`` is not the API, and which URL probably is (pure).
    """
    url = base_url.rstrip("/")
    answered = f"{status} to GET /people/me" if status else "no JSON to GET /people/me"
    if not url.endswith(_API_VERSION):
        return (
            f"no Webex API at {url} (it answered {answered}); did you mean "
            f"{url}{_API_VERSION}? Give that with --base-url (or $WEBEX_BASE_URL)"
        )
    return (
        f"no Webex API at {url} (it answered {answered}); check --base-url (or "
        "$WEBEX_BASE_URL): the API's base URL ends in /v1, e.g. "
        "https://webexapis.com/v1"
    )


async def resolve_target(api: DevicesApi, settings: Settings) -> Target:
    """
    Ask the API who the token is and name the org the command acts on.

    Raises:
        NoApiError: the base URL is not the Webex API.
        AuthError: the token was refused (401).
        TransientError: the API could not be reached, or kept failing.
    """
    caller = await find_caller(api, settings)
    return target_of(settings, caller, await name_org(api, acted_on(settings, caller)))


def acted_on(settings: Settings, caller: Caller | None) -> str | None:
    """
    Return the org a command acts on: ``--org-id``, else the token's own org.
    """
    return settings.org_id or (caller.org_id if caller else None)


def target_of(
    settings: Settings, caller: Caller | None, org_name: str | None
) -> Target:
    """
    Assemble the target from the caller and the org's name (None when unknown).
    """
    return Target(
        base_url=settings.base_url,
        org_id=acted_on(settings, caller),
        org_name=org_name,
        tag_mode=settings.tag_mode,
        caller=(caller.email or caller.display_name) if caller else None,
    )


async def find_caller(api: DevicesApi, settings: Settings) -> Caller | None:
    """
    Ask ``GET /people/me`` who the token is; None when the token may not say.

    Raises:
        NoApiError: the base URL is not the Webex API.
        AuthError: the token was refused (401).
        TransientError: the API could not be reached, or kept failing.
        ConfigError: ``--max-rate ORG=R`` named an org taken to be the token's own,
            and it is not.
    """
    try:
        caller = await api.get_me()
    except (AuthError, TransientError) as error:
        if isinstance(error, ServerError) and (error.status or 500) < 500:
            # A success without JSON: a web page, not the API.
            raise NoApiError(no_api_message(settings.base_url, None)) from error
        raise
    except NotFoundError as error:
        raise NoApiError(no_api_message(settings.base_url, error.status)) from error
    except ForbiddenError:
        # A token without a people scope still works for devices; the org is then
        # known only from --org-id.
        log.warning("caller_unknown", reason="GET /people/me refused (403)")
        if settings.rate_org_to_confirm is not None:
            log.warning(
                "max_rate_org_unconfirmed",
                org_id=settings.rate_org_to_confirm,
                reason="the token's own org is unknown: its ceiling paces the calls "
                "without orgId all the same",
            )
        return None
    _confirm_rate_org(settings, caller)
    return caller


def _confirm_rate_org(settings: Settings, caller: Caller) -> None:
    """
    Refuse an ``--max-rate ORG=R`` that no row names unless ORG is the token's org.
    """
    named = settings.rate_org_to_confirm
    if named is not None and named != caller.org_id:
        raise ConfigError(
            f"--max-rate names org {named}, but no row goes there: rows without "
            f"orgId go to the token's own org, {caller.org_id or 'whose id is unknown'}"
            ". Name an org by its id as the manifest's orgId column (or the run's "
            "summary) has it"
        )


async def name_org(api: DevicesApi, org_id: str | None) -> str | None:
    """
    Return the org's display name, or None when there is no org or it may not be read.

    Raises:
        AuthError: the token was refused (401).
        TransientError: the API could not be reached, or kept failing.
    """
    if org_id is None:
        return None
    try:
        return (await api.get_organization(org_id)).display_name
    except (AuthError, TransientError):
        raise
    except ApiError as error:
        # Reading an org needs an organizations scope an admin token may lack.
        log.info("org_name_unknown", status=error.status)
        return None
