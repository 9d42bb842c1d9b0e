"""
The result columns of a report: how an Outcome becomes cells, and back.

Encoding and decoding live side by side so they cannot drift apart: whatever
``outcome_cells`` writes, ``parse_outcome`` reads back as the same Outcome.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from provisioner.errors import ManifestReadError
from provisioner.models import Outcome, Status

__all__ = [
    "NOT_STARTED_ERROR",
    "OPTIONAL_RESULT_COLUMNS",
    "RESULT_COLUMNS",
    "TAGS_DEFERRED_PREFIX",
    "Cell",
    "decode_error_cell",
    "error_cell",
    "error_kind",
    "outcome_cells",
    "parse_outcome",
]

#: Result columns a report from before they existed lacks; reading one, they are empty.
OPTIONAL_RESULT_COLUMNS = frozenset({"owner"})

RESULT_COLUMNS = (
    "row",
    "status",
    "deviceId",
    "owner",
    "activationCode",
    "activationExpiry",
    "error",
    "httpStatus",
    "trackingId",
    "attempts",
)
TAGS_DEFERRED_PREFIX = "tags deferred:"
TAGS_DEFERRED_REASON = (
    "the device has not activated yet; after it activates, run `provisioner rerun` "
    "on this report to apply the tags"
)
NOT_STARTED_ERROR = (
    "not started: the run was interrupted; run the same command again to continue"
)
# An error kind longer than this is free text, not a step name; it is cut so the
# Summary's "by error" list stays a short list of kinds.
MAX_KIND_LENGTH = 60

_MANGLED_NUMBER = re.compile(r"^\d+(\.\d+)?[eE]\+?\d+$")

# One cell value of a report record: text, a number (row, httpStatus, attempts), or
# empty.
Cell = str | int | None


def error_cell(outcome: Outcome) -> str:
    """
    Return the ``error`` cell text of an outcome; deferred tags are encoded here.

    A row whose tags wait for its device to activate stays ``code_issued`` and its
    error text starts with ``tags deferred:``; ``decode_error_cell`` reads it back.
    """
    if not outcome.tags_deferred:
        return outcome.error or ""
    if outcome.error and outcome.error.startswith(TAGS_DEFERRED_PREFIX):
        return outcome.error
    return f"{TAGS_DEFERRED_PREFIX} {outcome.error or TAGS_DEFERRED_REASON}"


def decode_error_cell(status: Status, text: str) -> tuple[str | None, bool]:
    """
    Read an ``error`` cell back into ``(error, tags_deferred)``; inverse of error_cell.
    """
    if status is Status.CODE_ISSUED and text.startswith(TAGS_DEFERRED_PREFIX):
        reason = text.removeprefix(TAGS_DEFERRED_PREFIX).strip()
        return (None if reason in ("", TAGS_DEFERRED_REASON) else reason), True
    return (text or None), False


def error_kind(outcome: Outcome) -> str | None:
    """
    Name the kind of problem a row had, for the Summary's "by error" counts.

    The kind is the step before the first colon of the error text (``create device``,
    ``apply tags``, ``not started``) with the HTTP status when there was one; rows that
    ended well have none, except deferred tags.
    """
    if outcome.tags_deferred:
        return "tags deferred"
    if outcome.status.is_ok:
        return None
    head = (outcome.error or "").partition(":")[0].strip()
    if not head:
        head = "no reason given"
    elif len(head) > MAX_KIND_LENGTH:
        head = head[: MAX_KIND_LENGTH - 1].rstrip() + "…"
    if outcome.status is Status.INVALID:
        head = f"invalid row: {head}"
    if outcome.http_status is not None:
        return f"{head} (HTTP {outcome.http_status})"
    return head


def outcome_cells(outcome: Outcome) -> list[Cell]:
    """
    Return the result cells of an outcome, in ``RESULT_COLUMNS`` order.
    """
    return [
        outcome.row,
        outcome.status.value,
        outcome.device_id,
        outcome.owner,
        outcome.activation_code,
        outcome.activation_expiry,
        error_cell(outcome) or None,
        outcome.http_status,
        outcome.tracking_id,
        outcome.attempts,
    ]


def parse_outcome(path: Path, line: int, values: Mapping[str, str]) -> Outcome:
    """
    Read one report line's result cells (by column name) back into an Outcome.

    Raises:
        ManifestReadError: a cell is unusable; the message names the file, the
            line (``line``, as the report's spreadsheet shows it) and the column.
    """
    number = _parse_count(path, line, "row", values["row"], minimum=1)
    text = values["status"]
    try:
        status = Status(text.strip().lower())
    except ValueError:
        raise ManifestReadError(
            f'{path}, row {line}, column "status": "{text}" is not a status; use one '
            f"of {', '.join(status.value for status in Status)}"
        ) from None
    error, tags_deferred = decode_error_cell(status, values["error"])
    http_status = values["httpStatus"]
    return Outcome(
        row=number,
        status=status,
        device_id=values["deviceId"] or None,
        owner=values.get("owner") or None,
        activation_code=_parse_code(path, line, values["activationCode"]),
        activation_expiry=values["activationExpiry"] or None,
        error=error,
        http_status=(
            _parse_count(path, line, "httpStatus", http_status, minimum=100)
            if http_status
            else None
        ),
        tracking_id=values["trackingId"] or None,
        attempts=_parse_count(path, line, "attempts", values["attempts"] or "0"),
        tags_deferred=tags_deferred,
    )


def _parse_code(path: Path, line: int, text: str) -> str | None:
    if _MANGLED_NUMBER.match(text):
        # Excel shows a 16-digit code as 4.41733E+15 and saves it so: the digits are
        # gone. The value stays out of the message: it is what is left of a secret.
        raise ManifestReadError(
            f'{path}, row {line}, column "activationCode": a spreadsheet turned this '
            "activation code into a number in scientific notation, so the code is "
            "lost in this file; edit the .xlsx report instead (its cells are text), "
            "or copy the code back from the report the run wrote"
        )
    return text or None


def _parse_count(
    path: Path, line: int, column: str, text: str, *, minimum: int = 0
) -> int:
    # A spreadsheet may have turned 12 into 12.0; that is still the number 12.
    try:
        number = float(text)
    except ValueError:
        number = -1.0
    if number < minimum or not number.is_integer():
        raise ManifestReadError(
            f'{path}, row {line}, column "{column}": "{text}" is not a whole number of '
            f"at least {minimum}; put back the number the run wrote"
        )
    return int(number)
