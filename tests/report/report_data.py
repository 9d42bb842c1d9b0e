"""
A small rollout for the workbook tests: a manifest with a Site column, outcomes of
every kind, the target it ran against and a two-command history.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from provisioner.models import (
    Manifest,
    Outcome,
    Row,
    RunKind,
    RunRecord,
    RunStats,
    Status,
    TagMode,
    Target,
)

COLUMNS = ("MAC Address", "Model", "Workspace ID", "Tags", "Site", "Notes")
FIELDS = {
    "mac": "MAC Address",
    "model": "Model",
    "workspaceId": "Workspace ID",
    "tags": "Tags",
}
CODE = "0417328563929315"
GROUPED = "0417-3285-6392-9315"
EXPIRY = "2026-12-26T10:00:00.000Z"
LONG_ERROR = (
    "create device: the API answered 500 Internal Server Error eight times in a row; "
    "the service may be having trouble: run `provisioner rerun` on this report later, "
    "and if it keeps failing, give Cisco support the tracking id"
)
PLAN = "would create the device by MAC and apply tags lobby"
START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
TARGET = Target(
    base_url="https://api-usgov.webex.com/v1",
    org_id="Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi9hY21l",
    org_name="Acme Federal",
    tag_mode=TagMode.ADD,
    caller="rollout.lead@acme.test",
)
FIRST = RunRecord(
    kind=RunKind.RUN,
    started_at=START,
    finished_at=START + timedelta(minutes=2),
    source="site.csv",
    source_sha256="ab" * 32,
    caller="rollout.lead@acme.test",
    counts={Status.CREATED: 3, Status.CODE_ISSUED: 2, Status.FAILED: 2},
)
SECOND = RunRecord(
    kind=RunKind.RERUN,
    started_at=START + timedelta(hours=1),
    finished_at=START + timedelta(hours=1, minutes=1),
    source="site-report.xlsx",
    source_sha256="cd" * 32,
    caller="site.tech@acme.test",
    counts={Status.ADOPTED: 1, Status.FAILED: 1},
)
STATS = RunStats(
    started_at=SECOND.started_at,
    finished_at=SECOND.finished_at,
    api_calls=640,
    rate_limited=4,
    retries=9,
    final_rate=12.5,
    rows_worked=2,
    target=TARGET,
    history=(FIRST, SECOND),
)


def mac(n: int) -> str:
    return f"00:1B:D4:00:00:{n:02X}"


def row(number: int, *, code: bool = False, site: str = "HQ") -> Row:
    mac_text = "" if code else mac(number)
    return Row(
        number=number,
        cells=(mac_text, "Cisco 8851", f"ws-{number}", "lobby", site, f"note {number}"),
        mac=mac_text.replace(":", "") or None,
        model="DMS Cisco 8851",
        workspace_id=f"ws-{number}",
        tags=("lobby",),
    )


def manifest(path: Path = Path("site.csv")) -> Manifest:
    """
    Rows 2-9: four at "HQ", three on "Floor 10", one on "Floor 2"; rows 4 and 7 are
    activation-code rows.
    """
    sites = {2: "HQ", 3: "HQ", 4: "Floor 10", 5: "HQ", 6: "Floor 10", 7: "Floor 2"}
    sites |= {8: "HQ", 9: "Floor 10"}
    rows = tuple(row(n, code=n in (4, 7), site=sites[n]) for n in range(2, 10))
    return Manifest(
        path=path, sheet=None, columns=COLUMNS, field_columns=FIELDS, rows=rows
    )


def outcomes() -> dict[int, Outcome]:
    """
    created, adopted, two codes, a long failure, invalid, planned; row 9 not started.
    """
    return {
        2: Outcome(row=2, status=Status.CREATED, device_id="Y2lzY29-dev-2", attempts=2),
        3: Outcome(row=3, status=Status.ADOPTED, device_id="Y2lzY29-dev-3", attempts=1),
        4: Outcome(
            row=4,
            status=Status.CODE_ISSUED,
            device_id="Y2lzY29-dev-4",
            activation_code=CODE,
            activation_expiry=EXPIRY,
            attempts=1,
        ),
        5: Outcome(
            row=5,
            status=Status.FAILED,
            error=LONG_ERROR,
            http_status=500,
            tracking_id="ROUTER_65A1",
            attempts=8,
        ),
        6: Outcome(row=6, status=Status.INVALID, error='column "Model": unknown'),
        7: Outcome(
            row=7,
            status=Status.CODE_ISSUED,
            device_id="Y2lzY29-dev-7",
            activation_code="5555666677778888",
            activation_expiry="2026-12-27T11:30:00.250Z",
            attempts=1,
        ),
        8: Outcome(row=8, status=Status.PLANNED, plan=PLAN),
    }
