"""
Remember each org's API rate limit between commands, so the next one starts at it.

Webex does not publish its limits, and learning one costs a command two 429s, each
pausing the org's calls for ``Retry-After`` (a second at least): a few percent of a
minute's run (``webex/ratelimit.py``). A rollout is many commands in the same orgs
(the dry run, the batches, the reruns, ``codes``, ``export``), and the limit belongs
to the org and the app, not to one command. So a limit a command learned is kept
here, and the next command in that org starts settled just under it
(``RateControl.known_limit``): no ramp, no 429 to learn it again. A limit that fell
since is followed down by the 429s it brings, as after any learning; one that rose
is found by the settled controller's slow probe. ``--max-rate`` still caps.

Where: ``$XDG_STATE_HOME/provisioner/limits.json`` (``~/.local/state/provisioner/``
without it), one entry per API and org id, with when it was learned (or last met
without a 429). Entries older than ``MAX_AGE`` are forgotten; deleting the file
forgets everything. It holds no secret: API addresses, org ids and numbers.

A memory only saves time, so it never stops a command: a damaged or unreadable file
is ignored (and replaced by the next command that learns a limit), and a file that
cannot be written is logged and skipped. Two commands saving at once: the file is
replaced whole (a temporary file renamed over it), so the last one wins and the
other's limit is learned again next time; a half-written file is never read.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from provisioner.report.table import atomic_file

__all__ = ["MAX_AGE", "MAX_ENTRIES", "memory_path", "recall", "remember"]

log = structlog.get_logger()

#: How long a learned limit is trusted: a rollout's batches fall within weeks,
#: and a limit Webex changed since is found again by the controller anyway.
MAX_AGE = timedelta(days=30)
#: The most entries kept, the latest first: emulators on passing ports add an API
#: each, and the file is read by every command.
MAX_ENTRIES = 200

_VERSION = 1


def memory_path(environ: Mapping[str, str]) -> Path:
    """
    The file the learned limits are kept in (XDG's state directory).
    """
    state = environ.get("XDG_STATE_HOME", "").strip()
    base = Path(state) if state else Path.home() / ".local" / "state"
    return base / "provisioner" / "limits.json"


def recall(
    base_url: str, environ: Mapping[str, str], *, now: datetime
) -> tuple[tuple[str, float], ...]:
    """
    The limits earlier commands learned at ``base_url``, by org id, still fresh.
    """
    api = _api(base_url)
    return tuple(
        (entry["org"], entry["limit"])
        for entry in _fresh_entries(memory_path(environ), now)
        if entry["api"] == api
    )


def remember(
    base_url: str,
    limits: Mapping[str, float],
    environ: Mapping[str, str],
    *,
    now: datetime,
) -> None:
    """
    Keep the limits a command learned at ``base_url`` (by org id) for the next one.
    """
    if not limits:
        return
    api = _api(base_url)
    path = memory_path(environ)
    learned = [
        {"api": api, "org": org, "limit": round(limit, 3), "learned": now.isoformat()}
        for org, limit in limits.items()
        if math.isfinite(limit) and limit > 0
    ]
    replaced = {(entry["api"], entry["org"]) for entry in learned}
    kept = [
        entry
        for entry in _fresh_entries(path, now)
        if (entry["api"], entry["org"]) not in replaced
    ]
    entries = (learned + kept)[:MAX_ENTRIES]
    document = {"version": _VERSION, "limits": entries}
    try:
        with atomic_file(path, 0o644) as handle:
            handle.write(json.dumps(document, indent=1).encode())
    except OSError as exc:
        # Only the next command's head start is lost: say so in the log, go on.
        log.warning("limits_not_remembered", path=str(path), error=str(exc))


def _api(base_url: str) -> str:
    return base_url.rstrip("/")


def _fresh_entries(path: Path, now: datetime) -> list[dict[str, Any]]:
    """
    The file's well-formed entries learned within ``MAX_AGE``; none if unreadable.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return []
    if not isinstance(data, dict) or data.get("version") != _VERSION:
        return []
    entries = data.get("limits")
    if not isinstance(entries, list):
        return []
    fresh = []
    for entry in entries:
        learned = _learned_at(entry)
        if learned is not None and timedelta(0) <= now - learned <= MAX_AGE:
            fresh.append(entry)
    return fresh


def _learned_at(entry: object) -> datetime | None:
    """
    When a well-formed entry was learned; None for anything else.
    """
    if not isinstance(entry, dict):
        return None
    api, org, limit = entry.get("api"), entry.get("org"), entry.get("limit")
    if not (isinstance(api, str) and isinstance(org, str) and org):
        return None
    if isinstance(limit, bool) or not isinstance(limit, int | float):
        return None
    if not math.isfinite(limit) or limit <= 0:
        return None
    try:
        learned = datetime.fromisoformat(str(entry.get("learned")))
    except ValueError:
        return None
    return learned if learned.tzinfo is not None else None
