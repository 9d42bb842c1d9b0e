"""
Run configuration: frozen value objects and their named defaults.

Settings are built at the edge (the CLI, from flags, then the environment, then these
defaults) and passed down explicitly; library code never reads ``os.environ``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from provisioner.models import TagMode

__all__ = [
    "COMMERCIAL_BASE_URL",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_RATE",
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT",
    "FEDRAMP_BASE_URL",
    "RateControl",
    "RetryPolicy",
    "Settings",
]

FEDRAMP_BASE_URL = "https://api-usgov.webex.com/v1"
COMMERCIAL_BASE_URL = "https://webexapis.com/v1"
CLOUD_BASE_URLS = {"fedramp": FEDRAMP_BASE_URL, "commercial": COMMERCIAL_BASE_URL}


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """
    How transient failures are retried: full-jitter exponential backoff within bounds.

    Attributes:
        max_attempts: calls per request at most, the first included.
        base_delay: seconds; the backoff window doubles from here per attempt.
        max_delay: seconds; the cap on one backoff window.
        max_total: seconds; no retry starts after this long since the first attempt.
        retry_after_cap: seconds; a longer ``Retry-After`` is cut to this.
        retry_after_default: seconds to wait on a 429 that names no ``Retry-After``.
    """

    max_attempts: int = 8
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_total: float = 600.0
    retry_after_cap: float = 120.0
    retry_after_default: float = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RateControl:
    """
    The adaptive rate controller's knobs (request starts per second).

    Attributes:
        initial_rate: where the controller starts before anything pushes back.
        max_rate: a ceiling the controller never exceeds (``--max-rate``); None for none.
        min_rate: a floor it never goes below after backing off.
        known_limit: the org's limit an earlier command of the rollout learned (its
            run history, ``cli.history.Story.paced``): the controller starts settled
            just under it instead of ramping and paying two 429s to learn it again.
            None: unknown.
    """

    initial_rate: float = 20.0
    max_rate: float | None = None
    min_rate: float = 0.5
    known_limit: float | None = None

    def capped(self, ceiling: float) -> RateControl:
        """
        The same control under ``ceiling``: it starts no faster, and never exceeds it.
        """
        return RateControl(
            initial_rate=min(self.initial_rate, ceiling),
            max_rate=ceiling,
            min_rate=min(self.min_rate, ceiling),
            known_limit=self.known_limit,
        )

    def knowing(self, limit: float) -> RateControl:
        """
        The same control, starting at ``limit`` as a limit learned earlier.
        """
        return replace(self, known_limit=limit)


DEFAULT_CONCURRENCY = 16
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRY = RetryPolicy()
DEFAULT_RATE = RateControl()


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """
    Everything one run needs to know, fixed before it starts.

    ``token`` is the access token; it is kept out of ``repr`` and never logged.
    """

    token: str = field(repr=False)
    base_url: str = FEDRAMP_BASE_URL
    org_id: str | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    request_timeout: float = DEFAULT_TIMEOUT
    retry: RetryPolicy = DEFAULT_RETRY
    #: The rate control of every org not in ``org_rates`` (``--max-rate R``).
    rate: RateControl = DEFAULT_RATE
    #: An org's own rate control, by org id (``--max-rate ORG=R``): it beats ``rate``.
    org_rates: tuple[tuple[str, RateControl], ...] = ()
    #: An org of ``org_rates`` that no row names: it can only be the token's own
    #: org (where rows without ``orgId`` go), which ``GET /people/me`` must confirm.
    rate_org_to_confirm: str | None = None
    #: Limits the rollout's earlier commands learned at this API, by org id (the
    #: run history): an org's controller starts settled at its own, under any
    #: ceiling it has.
    known_limits: tuple[tuple[str, float], ...] = ()
    tag_mode: TagMode = TagMode.ADD
    dry_run: bool = False
    #: Void an owner's pending code of the row's model from an earlier run and issue
    #: a new one, instead of reporting the row ``code_pending``.
    reissue_codes: bool = False

    def org_controls(self) -> dict[str, RateControl]:
        """
        Each org's own rate control, by org id: its ``--max-rate ORG=R`` (else the
        run's), starting at the limit an earlier command learned there, if any.
        """
        controls = dict(self.org_rates)
        for org, limit in self.known_limits:
            controls[org] = controls.get(org, self.rate).knowing(limit)
        return controls
