"""
``--max-rate``: a ceiling on request starts for every org, or one per org, and the
advice a run ends with.

The flag is repeatable. ``R`` caps every org (as it always did); ``ORG=R`` caps one
org, and beats a bare ``R`` there. ORG is an org id as the manifest's ``orgId``
column (or ``--org-id``) has it, which is what a partner's summary prints in its
advice, so the advice is pasted as it is. Org names are not taken: they are known
only after the first calls (a mistyped one could not be refused before the run),
two orgs may share one, and a name with spaces needs quoting in a shell.

An ORG no row goes to is refused before any call, with one exception: rows without
``orgId`` (and no ``--org-id``) go to the token's own org, whose id only the first
call says. One such ORG is taken to be that org, and ``GET /people/me`` confirms it
or stops the command (``live.target.find_caller``). ``export`` acts in one org: its
ORG must be ``--org-id``'s, or without one the token's own (refused rather than
ignored, since a ceiling a person relied on would silently not apply).

The learned limit is told back one percent under, rounded down to a tenth: a run told
so runs at the limit from its first second and meets no 429 unless the limit fell.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import click

from provisioner.models import Manifest, RunStats
from provisioner.settings import DEFAULT_RATE, RateControl

__all__ = [
    "NO_MAX_RATE",
    "MaxRates",
    "RateSettings",
    "limit_advice",
    "max_rate_option",
    "org_limits_advice",
    "parse_max_rates",
    "rate_settings",
    "told_rate",
]

FLAG = "--max-rate"

# How many of the manifest's orgs an error about an unknown ORG lists.
_ORGS_SHOWN = 5


@dataclass(frozen=True, slots=True)
class MaxRates:
    """
    ``--max-rate`` as given: a ceiling for every org, and ceilings of named orgs.
    """

    every: float | None = None
    by_org: tuple[tuple[str, float], ...] = ()


#: No ``--max-rate``: every org adaptive, under no ceiling.
NO_MAX_RATE = MaxRates()


@dataclass(frozen=True, slots=True)
class RateSettings:
    """
    What ``--max-rate`` makes of a command's Settings (see ``Settings``' fields).
    """

    rate: RateControl = DEFAULT_RATE
    org_rates: tuple[tuple[str, RateControl], ...] = ()
    rate_org_to_confirm: str | None = None


def max_rate_option() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """
    Declare ``--max-rate``, repeatable, parsed into ``MaxRates``.
    """
    return click.option(
        FLAG,
        "max_rate",
        multiple=True,
        metavar="[ORG=]R",
        callback=_parse_option,
        help=(
            "Never start more than R requests per second in an org (default: "
            "adaptive, each org on its own). ORG=R caps one org (ORG: its id as in "
            "the manifest's orgId column), beating a bare R there; repeat the flag "
            "for more orgs. A run that learned the limits ends by printing the "
            "--max-rate to give here next time."
        ),
    )


def _parse_option(
    _ctx: click.Context, _param: click.Parameter, values: Sequence[str]
) -> MaxRates:
    try:
        return parse_max_rates(values)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def parse_max_rates(values: Iterable[str]) -> MaxRates:
    """
    Parse the values of ``--max-rate``: ``R`` or ``ORG=R``, each ORG once, R once.

    Raises:
        ValueError: a value is not a positive number of requests per second, or an
            org (or the bare R) is given twice; the message says what to give.
    """
    every: float | None = None
    by_org: dict[str, float] = {}
    for value in values:
        # The last "=": an id in standard base64 may end in "=" itself.
        org, equals, text = value.strip().rpartition("=")
        org = org.strip()
        rate = _rate(text.strip(), value)
        if not equals:
            if every is not None:
                raise ValueError(
                    f"R is given twice ({every:g} and {rate:g}): give one bare R "
                    "for every org, and ORG=R for each org that differs"
                )
            every = rate
        elif not org:
            raise ValueError(
                f"{value!r} names no org: give ORG=R with the org's id before '='"
            )
        elif org in by_org:
            raise ValueError(
                f"org {org} is given twice ({by_org[org]:g} and {rate:g}): "
                "give each org one ORG=R"
            )
        else:
            by_org[org] = rate
    return MaxRates(every=every, by_org=tuple(by_org.items()))


def _rate(text: str, value: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        rate = math.nan
    if not math.isfinite(rate) or rate <= 0:
        raise ValueError(
            f"{value!r} is not R or ORG=R with R a number of requests per second "
            "above 0 (e.g. 19.8, or ORG=4.9)"
        )
    return rate


def rate_settings(
    rates: MaxRates, *, manifest: Manifest | None, org_id: str | None
) -> RateSettings:
    """
    Turn ``--max-rate`` into rate controls, each ORG checked against the orgs the
    command's calls go to: the manifest's ``orgId`` values and ``--org-id``, or, for
    a command without a manifest (``export``), ``--org-id`` alone.

    Raises:
        ValueError: an ORG names an org no call of the command goes to.
    """
    control = DEFAULT_RATE if rates.every is None else DEFAULT_RATE.capped(rates.every)
    named = {org_id} if org_id else set()
    if manifest is None:
        own_org_open = org_id is None
    else:
        named |= {row.org_id for row in manifest.rows if row.org_id}
        own_org_open = org_id is None and any(not row.org_id for row in manifest.rows)
    unknown = [org for org, _ in rates.by_org if org not in named]
    to_confirm = None
    if unknown:
        if own_org_open and len(unknown) == 1:
            # Rows without orgId go to the token's own org; GET /people/me says
            # whether this is it.
            to_confirm = unknown[0]
        else:
            raise ValueError(
                _unknown_orgs(unknown, named, manifest=manifest, org_id=org_id)
            )
    return RateSettings(
        rate=control,
        org_rates=tuple((org, DEFAULT_RATE.capped(r)) for org, r in rates.by_org),
        rate_org_to_confirm=to_confirm,
    )


def _unknown_orgs(
    unknown: Sequence[str],
    named: set[str],
    *,
    manifest: Manifest | None,
    org_id: str | None,
) -> str:
    listed = ", ".join(unknown)
    if manifest is None:
        return (
            f"this command acts in one org ({org_id}), not {listed}: give a bare R, "
            f"or ORG=R naming {org_id}"
        )
    if not named:
        where = "the manifest names no org (no orgId), nor does --org-id"
    else:
        known = sorted(named)
        shown = ", ".join(known[:_ORGS_SHOWN])
        if len(known) > _ORGS_SHOWN:
            shown += f" and {len(known) - _ORGS_SHOWN} more"
        where = f"the orgs its rows go to are {shown}"
    return (
        f"no row of the manifest goes to {listed} ({where}): name each org by its id "
        "as the manifest's orgId column (or the run's summary) has it"
    )


def told_rate(limit: float) -> float:
    """
    The ``--max-rate`` that starts the next run at ``limit``: one percent under it
    (where the controller runs once settled), rounded down to a tenth.
    """
    return math.floor(limit * 0.99 * 10) / 10


def limit_advice(limit: float) -> str:
    """
    Say what the API's limit was and how the next run there can start at it; the
    rollout's own later commands start there without being told (``Story.paced``).
    """
    return (
        f"  The API limited this org to about {limit:.1f} requests/s: "
        f"--max-rate {told_rate(limit):g} starts the next run there at that pace, "
        "without learning it again (a rerun, codes or rollback of this report "
        "starts there on its own)."
    )


def org_limits_advice(stats: RunStats) -> str | None:
    """
    In a partner's run, the ``--max-rate ORG=R`` of each org that learned a limit,
    as one line to paste; None when none did.

    Each org is named as its rows name it (``OrgInfo.key``); the token's own org,
    which rows name by leaving ``orgId`` empty, by the id ``GET /people/me`` gave.
    """
    flags = []
    for info in stats.orgs:
        limit = stats.limit_of(info.key)
        name = info.key if info.key is not None else info.id
        if limit is None or name is None or told_rate(limit) <= 0:
            continue
        flags.append(f"{FLAG} {shlex.quote(name)}={told_rate(limit):g}")
    if not flags:
        return None
    return (
        "  Next run, start each org at the limit it learned (no 429s to learn it "
        "again): " + " ".join(flags)
    )
