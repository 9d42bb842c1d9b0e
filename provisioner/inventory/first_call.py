"""
Open an inventory command's API client and make its first call: who the token is and
which org the command acts on.

Like a run, ``export`` and ``rollback`` learn their target first
(``live.target.resolve_target``), so a wrong URL or a refused token stops them in one
sentence before anything else. The first call gets quick retries on a refused
connection (``run.engine.first_call_policy``): at the very start that means a wrong
URL or an API that is not running, which waiting does not mend. Any other transient
failure is retried by the command's own client, as every call is.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace

import structlog

from provisioner.errors import ConnectError, TransientError
from provisioner.live.target import resolve_target
from provisioner.models import Target
from provisioner.run.engine import first_call_policy
from provisioner.settings import Settings
from provisioner.webex.protocol import DevicesApi

__all__ = ["Opened", "open_api"]

log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class Opened:
    """
    The command's client, its target, and the first call's own figures (its quick
    client counts apart): calls, 429s, retries.
    """

    api: DevicesApi
    target: Target
    probed: tuple[int, int, int] = (0, 0, 0)


async def open_api(
    stack: contextlib.AsyncExitStack, settings: Settings, api: DevicesApi | None
) -> Opened:
    """
    Learn the target; open an ``ApiClient(settings)`` on ``stack`` unless ``api`` is
    given (a test's fake, asked directly).

    Raises:
        NoApiError, AuthError, ForbiddenError: from ``resolve_target``.
        ConnectError: nothing accepted the connection, after a few quick attempts.
        TransientError: the API kept failing, after the client's retries.
    """
    if api is not None:
        return Opened(api, await resolve_target(api, settings))
    from provisioner.webex.client import ApiClient

    quick = replace(settings, retry=first_call_policy(settings.retry))
    client = await stack.enter_async_context(ApiClient(settings))
    probe = await stack.enter_async_context(ApiClient(quick, limiter=client.limiter))
    try:
        target = await resolve_target(probe, settings)
    except ConnectError:
        raise
    except TransientError as error:
        log.info("first_call_retried", error=type(error).__name__)
        target = await resolve_target(client, settings)
    finally:
        seen = probe.statistics()
        probed = (seen.calls, seen.rate_limited, seen.retries)
    return Opened(client, target, probed)
