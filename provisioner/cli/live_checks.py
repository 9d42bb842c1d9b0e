"""
What ``validate --live`` adds to the offline checks: connection flags and the live run.

The checks themselves live in ``provisioner.preflight``; this module only builds the
Settings, opens the client, runs them and says what was checked.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from provisioner.cli.common import (
    ConnectionOptions,
    base_url_option,
    build_settings,
    bundle_options,
    cloud_option,
    log_file_option,
    org_id_option,
    token_file_option,
    verbose_option,
)
from provisioner.cli.failures import command_errors
from provisioner.models import Manifest
from provisioner.settings import Settings
from provisioner.words import count_of

if TYPE_CHECKING:
    # Imported where they are used: an offline ``validate`` imports this module for
    # its flags and needs none of them (anyio, structlog: a fifth of a second).
    from provisioner.live.preflight import Preflight

__all__ = ["LiveCheck", "describe_preflight", "live_options", "run_live_checks"]

F = TypeVar("F", bound=Callable[..., Any])

_OPTION_NAMES = ("token_file", "base_url", "cloud", "org_id", "log_file", "verbose")

# The flags only matter with --live, and their help says so.
_LIVE = "With --live: "


def live_options(func: F) -> F:
    """
    Add the connection flags ``--live`` needs; hand them over as ``connection``.
    """
    options = [
        token_file_option(_LIVE),
        base_url_option(_LIVE, loopback_note=False),
        cloud_option(_LIVE),
        org_id_option(_LIVE, purpose="check against this org (partner admins)"),
        log_file_option(_LIVE, events="every event"),
        verbose_option(_LIVE),
    ]
    return bundle_options(func, options, _OPTION_NAMES)


@dataclass(frozen=True, slots=True)
class LiveCheck:
    """
    The live checks' answer and where they were made.
    """

    preflight: Preflight
    base_url: str
    #: The org of rows without ``orgId`` (``--org-id``; None: the token's own).
    org_id: str | None = None

    def lines(self) -> list[str]:
        """
        Return the lines that say what the live checks covered.
        """
        return describe_preflight(self.preflight, self.base_url, org_id=self.org_id)


def run_live_checks(manifest: Manifest, connection: ConnectionOptions) -> LiveCheck:
    """
    Run the live checks on a validated manifest; exit 2 when they cannot run.

    A missing token, a refused token (401/403 on the first call) or an unreachable
    API stops the command with one sentence saying what to do, never the token.
    """
    import anyio

    from provisioner.logs import configure_logging

    with command_errors() as where:
        settings = build_settings(connection, os.environ)
        where.base_url = settings.base_url
        passwords = [row.password for row in manifest.rows if row.password]
        configure_logging(
            verbosity=connection.verbose,
            log_file=connection.log_file,
            secrets=[settings.token, *passwords],
        )
        checked = anyio.run(_check, manifest, settings, backend="asyncio")
    return LiveCheck(checked, settings.base_url, settings.org_id)


async def _check(manifest: Manifest, settings: Settings) -> Preflight:
    # Imported here: an offline validate never loads the HTTP client or anyio.
    from provisioner.errors import ConfigError, ForbiddenError, NotFoundError
    from provisioner.live.orgs import LIST_DEVICES, org_id_refusal
    from provisioner.live.preflight import preflight
    from provisioner.live.target import resolve_target
    from provisioner.webex.client import ApiClient

    async with ApiClient(settings) as api:
        # The first calls: a wrong URL, a refused token, or a token that may not even
        # read the org's devices (what a run needs first) stops here, rather than
        # each check being skipped with a warning and the command ending well.
        target = await resolve_target(api, settings)
        devices = api.list_devices(org_id=settings.org_id, page_size=1)
        try:
            async for _device in devices:
                break
        except (ForbiddenError, NotFoundError) as error:
            if settings.org_id is None:
                raise
            # The org --org-id names is unknown, or not this token's to act for:
            # said by the flag, as every other command says it.
            raise ConfigError(
                org_id_refusal(settings.org_id, error, read=LIST_DEVICES)
            ) from None
        finally:
            # Close the listing now rather than whenever it is collected.
            close = getattr(devices, "aclose", None)
            if close is not None:
                await close()
        # Rows that spell out the token's own org are checked with the rows that
        # name none: one org, as a run treats them.
        return await preflight(
            manifest,
            api,
            org_id=settings.org_id,
            concurrency=settings.concurrency,
            own_org=target.org_id,
        )


def describe_preflight(
    checked: Preflight, base_url: str | None = None, *, org_id: str | None = None
) -> list[str]:
    """
    Return the lines that say what the live checks covered, and what they could not.

    ``org_id`` is where rows without ``orgId`` go (``--org-id``): a row that names
    that org is in the same org, counted once.
    """
    rows = checked.manifest.rows
    macs = sum(1 for row in rows if row.mac)
    missing = sum(1 for lookup in checked.owners.values() if lookup.missing)
    where = f" at {base_url}" if base_url else ""
    lines = [f"live checks{where}:"]
    orgs = len({row.org_id or org_id for row in rows})
    if orgs > 1:
        lines.append(
            f"  models: each row checked against its own org's supported devices "
            f"({orgs} orgs)"
        )
    elif checked.supported:
        lines.append(
            f"  models: checked against the org's {len(checked.supported)} "
            "supported devices"
        )
    lines.append(f"  MACs: {macs} checked, {len(checked.in_use)} registered elsewhere")
    if checked.adoptable:
        numbers = sorted(checked.adoptable)
        noun = "row" if len(numbers) == 1 else "rows"
        lines.append(
            f"  {noun} {', '.join(map(str, numbers))}: the MAC is already registered "
            "to the row's own owner; a run takes that device as it is (created, if "
            "this rollout made it; else adopted)"
        )
    lines.extend(
        f"  warning: {warning}" for _, warning in sorted(checked.other_models.items())
    )
    lines.append(f"  owners: {len(checked.owners)} looked up, {missing} not found")
    if checked.names_looked_up:
        lines.append(
            f"  owners by name or email: {checked.names_looked_up} looked up, "
            f"{count_of(checked.names_unresolved, 'row')} not resolved"
        )
    lines.extend(f"  warning: {warning}" for warning in checked.warnings)
    return lines
