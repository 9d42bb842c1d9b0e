"""
The result columns of a report: how an Outcome becomes cells, and back.

Encoding and decoding live side by side so they cannot drift apart: whatever
``outcome_cells`` writes, ``parse_outcome`` reads back as the same Outcome.

Activation codes are written grouped ``1234-5678-9012-3456``: that is how people read
them off, and no spreadsheet takes it for a number (a 16-digit number keeps only 15
digits in Excel, and a CSV saved back then holds ``6.58237E+15``). Every form a code
may come back in is read: grouped, spaced, plain digits (older reports), Excel's
``="…"`` and ``'…``. A code a spreadsheet turned into a number is named, never used.
An expiry a spreadsheet holds as a date-time cell (the XLSX report writes one) reads
back as the ISO 8601 text the API gave.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from provisioner.errors import ManifestReadError
from provisioner.models import Outcome, Status

__all__ = [
    "CODE_LENGTH",
    "NOT_STARTED_ERROR",
    "OPTIONAL_COLUMNS",
    "REPORT_MARKERS",
    "RESULT_COLUMNS",
    "TAGS_DEFERRED_PREFIX",
    "Cell",
    "cell_time",
    "code_problem",
    "decode_error_cell",
    "error_cell",
    "error_kind",
    "format_code",
    "outcome_cells",
    "parse_outcome",
    "read_code",
]

#: Result columns that only a report has: a sheet holding all of them is a report.
REPORT_MARKERS = frozenset(
    {"row", "status", "deviceId", "activationCode", "activationExpiry", "error"}
)

RESULT_COLUMNS = (
    "row",
    "status",
    "deviceId",
    "owner",
    "activationCode",
    "activationExpiry",
    "error",
    "plan",
    "httpStatus",
    "trackingId",
    "attempts",
)
# Result columns a report written before they existed lacks; it still reads back.
OPTIONAL_COLUMNS = frozenset({"owner", "plan"})
TAGS_DEFERRED_PREFIX = "tags deferred:"
# Older reports put a dry run's plan in the error column, after this prefix.
_OLD_PLAN_PREFIX = "dry run: "
# Webex activation codes are 16 digits (webex-devices-api.md §4.5).
CODE_LENGTH = 16
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

# What a spreadsheet makes of a long number: 6.58237E+15, 6,58237E+15 (a decimal
# comma), 6582371234567890.0, 6582371234567890,00.
_NUMBER_FORM = re.compile(r"^\d+([.,]\d*)?([eE][+-]?\d+)?$")
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015]")

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


def format_code(code: str | None) -> str | None:
    """
    Write a 16-digit code grouped ``1234-5678-9012-3456``; any other text as it is.
    """
    if not code:
        return None
    digits = _SEPARATORS.sub("", code)
    if len(digits) == CODE_LENGTH and digits.isdigit():
        return "-".join(digits[i : i + 4] for i in range(0, CODE_LENGTH, 4))
    return code


def code_problem(text: str) -> str | None:
    """
    Say what is wrong with an ``activationCode`` cell, or None when it is a code (or
    empty). The message never repeats the value: it is what is left of a secret.
    """
    value = _unwrap(text)
    if not value:
        return None
    if ("." in value or "," in value or "e" in value.lower()) and _NUMBER_FORM.match(
        value
    ):
        return (
            "a spreadsheet turned this activation code into a number "
            "(scientific notation or decimals), so its digits are lost in this file"
        )
    if value.isdigit() and len(value) < CODE_LENGTH:
        return (
            f"this activation code has {len(value)} digits where codes have "
            f"{CODE_LENGTH}: a spreadsheet that read it as a number dropped its "
            "leading zeros"
        )
    return None


def read_code(text: str) -> str | None:
    """
    Read an ``activationCode`` cell in any form a report or spreadsheet gives it back
    as the code's digits (other text as it is); call ``code_problem`` first.
    """
    value = _unwrap(text)
    if not value:
        return None
    digits = _SEPARATORS.sub("", value)
    return digits if digits.isdigit() else value


def _unwrap(text: str) -> str:
    # Excel's ways of keeping a number as text in a CSV: ="1234…" and '1234….
    value = text.strip()
    if value.startswith('="') and value.endswith('"'):
        value = value[2:-1]
    return value.removeprefix("'").strip()


def cell_time(moment: datetime) -> datetime:
    """
    A moment as a spreadsheet cell holds it: naive (cells have no time zone), in
    UTC, to the second.
    """
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.replace(microsecond=0)


def _read_expiry(text: str) -> str | None:
    """
    Read an ``activationExpiry`` cell: ISO 8601 text as it is; a date-time cell (which
    reads as ISO text without a zone) as the API's form, in UTC.
    """
    value = text.strip()
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is not None:
        return value
    # A spreadsheet stores a date-time as a fraction of a day: round off its error.
    moment += timedelta(microseconds=500)
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def outcome_cells(outcome: Outcome) -> list[Cell]:
    """
    Return the result cells of an outcome, in ``RESULT_COLUMNS`` order.
    """
    return [
        outcome.row,
        outcome.status.value,
        outcome.device_id,
        outcome.owner,
        format_code(outcome.activation_code),
        outcome.activation_expiry,
        error_cell(outcome) or None,
        outcome.plan,
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
    plan = values.get("plan") or None
    if plan is None and status is Status.PLANNED and error:
        # A report from before the plan column: its plan is in the error column.
        plan, error = error.removeprefix(_OLD_PLAN_PREFIX), None
    http_status = values["httpStatus"]
    return Outcome(
        row=number,
        status=status,
        device_id=values["deviceId"] or None,
        owner=values.get("owner") or None,
        activation_code=_parse_code(path, line, values["activationCode"]),
        activation_expiry=_read_expiry(values["activationExpiry"]),
        error=error,
        plan=plan,
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
    problem = code_problem(text)
    if problem is not None:
        raise ManifestReadError(
            f'{path}, row {line}, column "activationCode": {problem}. Copy the code '
            "back from the .xlsx report (its codes are text), or from the report the "
            "run wrote; a code is written 1234-5678-9012-3456 so spreadsheets keep it"
        )
    return read_code(text)


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
