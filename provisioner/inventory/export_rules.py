"""
Decide what an export asks the API for and what each device's line says: pure, no I/O.

An export is manifest-shaped, so it can seed the next wave's sheet: the manifest
columns first (``mac`` as 12 upper-case hex digits, ``model`` as people type it,
``workspaceId``, ``personId``, ``tags`` joined with ``;``), then what the API says
about the device. Two names differ from the API's on purpose, because the manifest
reader would take the API's name for a manifest column:

- ``productName`` (the API's ``product``): ``product`` is an alias of ``model`` in a
  manifest, and two model columns make a sheet unusable;
- ``ownerName`` (the owner's workspace name or person email, with ``--owner-names``):
  ``workspace`` and ``personEmail`` name an owner in a manifest, and a row names one
  owner only.

So the MAC rows of an export validate as a manifest without a problem (except a
third-party device, whose SIP password no API returns: type it in).

A manifest has no way to escape a tag separator, so some tags cannot make the round
trip: ``tags_read_back`` tells which devices' tags a manifest would read as other
tags, and the export names them (``ExportResult.tags_not_read_back``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from provisioner.errors import ConfigError
from provisioner.intake.catalogue import load_catalogue
from provisioner.intake.formulas import mark_as_text
from provisioner.intake.mac import normalise_mac
from provisioner.intake.validation import formula_problem, split_tags
from provisioner.models import Device, Target

__all__ = [
    "CONNECTION_STATUSES",
    "DEVICE_TYPES",
    "EXPORT_COLUMNS",
    "MANIFEST_COLUMNS",
    "PAGE_SIZE",
    "TAGS_SHOWN",
    "TAG_SEPARATOR",
    "ExportProgress",
    "ExportQuery",
    "ExportResult",
    "device_label",
    "export_record",
    "list_filters",
    "model_as_typed",
    "summary_items",
    "tags_read_back",
]

#: The ``max`` an export asks for: the reference documents no maximum for
#: ``GET /devices`` (shared/webex-devices-api.md §5); 1000 is the largest page seen in
#: use against it. ``--page-size`` lowers it if an API refuses it (a 504 on a list
#: means "reduce max", §6.1).
PAGE_SIZE = 1000

#: The manifest's columns, in the order a manifest template has them.
MANIFEST_COLUMNS = ("mac", "model", "workspaceId", "personId", "tags")
EXPORT_COLUMNS = (
    *MANIFEST_COLUMNS,
    "deviceId",
    "displayName",
    "productName",
    "type",
    "connectionStatus",
    "serial",
    "software",
    "ip",
    "created",
    "ownerName",
)
TAG_SEPARATOR = ";"
#: Devices the warning about tags that cannot make the round trip names by MAC or id
#: (the count says how many there are in all).
TAGS_SHOWN = 5

#: The ``type`` filter's values (an enum on the List Devices filter, §4.1).
DEVICE_TYPES = ("roomdesk", "phone", "accessory", "webexgo", "unknown")
#: ``connectionStatus`` values (§3; ``pending`` is newer than the spec).
CONNECTION_STATUSES = (
    "connected",
    "disconnected",
    "connected_with_issues",
    "offline_expired",
    "activating",
    "unknown",
    "offline_deep_sleep",
    "pending",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportQuery:
    """
    The List Devices filters an export was given; every one given must match (AND).
    """

    tags: tuple[str, ...] = ()
    workspace_id: str | None = None
    person_id: str | None = None
    type: str | None = None
    connection_status: str | None = None
    mac: str | None = None
    display_name: str | None = None
    product: str | None = None

    def describe(self) -> list[tuple[str, str]]:
        """
        The filters given, as ``(flag, value)`` pairs for people (the Summary sheet).
        """
        pairs = [("--tag", tag) for tag in self.tags]
        for flag, value in (
            ("--workspace-id", self.workspace_id),
            ("--person-id", self.person_id),
            ("--type", self.type),
            ("--connection-status", self.connection_status),
            ("--mac", self.mac),
            ("--display-name", self.display_name),
            ("--product", self.product),
        ):
            if value:
                pairs.append((flag, value))
        return pairs


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportProgress:
    """
    A snapshot of an export, handed to ``on_progress`` after each page.
    """

    pages: int
    devices: int
    api_calls: int
    rate_limited: int
    current_rate: float | None
    elapsed: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportResult:
    """
    What an export did: devices and pages written, and the API's figures.
    """

    devices: int
    pages: int
    started_at: datetime
    finished_at: datetime
    api_calls: int
    rate_limited: int
    retries: int
    final_rate: float | None
    #: Owners whose name could not be read (with ``owner_names``).
    owners_unnamed: int = 0
    #: Where the devices were listed (the org as the API named it).
    target: Target | None = None
    #: Devices whose tags a manifest would read back as other tags
    #: (``tags_read_back``), and the first ``TAGS_SHOWN`` of them (``device_label``).
    tags_not_read_back: int = 0
    tags_not_read_back_shown: tuple[str, ...] = ()

    @property
    def duration(self) -> float:
        """
        Seconds from start to finish (never negative).
        """
        return max(0.0, (self.finished_at - self.started_at).total_seconds())

    @property
    def devices_per_second(self) -> float | None:
        """
        Devices written per second; None when it took no measurable time.
        """
        return self.devices / self.duration if self.duration > 0 else None


def list_filters(query: ExportQuery) -> dict[str, str]:
    """
    Turn an export's filters into ``list_devices`` keywords (the client makes them
    camelCase); several tags go in one comma-separated ``tag``, which the API reads
    as "all of them".

    Raises:
        ConfigError: a tag is empty or holds a comma (the API would read it as two
            tags), or the MAC is not a MAC.
    """
    filters: dict[str, str] = {}
    for tag in query.tags:
        if not tag.strip():
            # Dropped, an empty tag would export every device: the opposite of a filter.
            raise ConfigError(
                '--tag "": an empty tag filters nothing; give the tag, or leave --tag '
                "out to export every device"
            )
        if "," in tag:
            raise ConfigError(
                f'--tag "{tag}": the API reads a comma as between two tags, so a tag '
                "with a comma cannot be filtered on; give each tag as its own --tag"
            )
    tags = [tag.strip() for tag in query.tags if tag.strip()]
    if tags:
        filters["tag"] = ",".join(dict.fromkeys(tags))
    if query.mac:
        try:
            filters["mac"] = normalise_mac(query.mac)
        except ValueError as error:
            raise ConfigError(f'--mac "{query.mac}": {error}') from None
    for name in (
        "workspace_id",
        "person_id",
        "type",
        "connection_status",
        "display_name",
        "product",
    ):
        value = getattr(query, name)
        if value:
            filters[name] = value
    return filters


def model_as_typed(product: str | None) -> str:
    """
    Name a device's model as people type it in a manifest: the catalogue's display
    name when the catalogue knows the product, else the product without ``DMS``.
    """
    if not product:
        return ""
    found = load_catalogue().resolve(product)
    if found is not None:
        return found.display_name
    return product.removeprefix("DMS ").strip()


def export_record(
    device: Device, owner_names: Mapping[str, str] | None = None
) -> list[str | None]:
    """
    One export line for a device, in ``EXPORT_COLUMNS`` order (None for no value).

    Args:
        owner_names: owner id → the owner's name (workspace name or person email),
            for the owners looked up; an owner not in it gets no name.
    """
    owner = device.owner_id
    name = (owner_names or {}).get(owner) if owner else None
    return [
        device.mac,
        model_as_typed(device.product) or None,
        device.workspace_id,
        # A manifest row names one owner; the API names the workspace for a device in
        # one (``placeId`` is the same id), the person otherwise.
        None if device.workspace_id else device.person_id,
        _join_tags(device.tags),
        device.id or None,
        device.display_name,
        device.product,
        device.type,
        device.connection_status,
        device.serial,
        device.software,
        device.ip,
        device.created,
        name,
    ]


def _join_tags(tags: Sequence[str]) -> str | None:
    # A manifest splits tags on ; , and |; the tags keep their order and repeat once.
    return TAG_SEPARATOR.join(dict.fromkeys(tags)) or None


def tags_read_back(tags: Sequence[str], *, marked: bool = False) -> bool:
    """
    Whether a manifest reading this device's ``tags`` cell gets the device's tags back.

    It reads other tags when a tag holds ``;``, ``,`` or ``|`` (a manifest splits on
    each, and has no way to escape one), has spaces at its ends or is empty (a
    manifest trims tags and drops empty ones); and none when the cell reads as a
    formula or a spreadsheet error (the row is invalid). The manifest's own rules
    decide (``split_tags``, ``formula_problem``), so the two cannot drift apart.

    Args:
        marked: the file marks a cell a spreadsheet would run as a formula as text
            (a CSV export): such a cell reads back as written, not as a formula.
    """
    cell = _join_tags(tags) or ""
    is_marked = marked and mark_as_text(cell) != cell
    if not is_marked and formula_problem(cell) is not None:
        return False
    return split_tags(cell) == tuple(dict.fromkeys(tags))


def device_label(device: Device) -> str:
    """
    Name a device for people: its MAC, else (an activation-code device) its id.
    """
    return device.mac or device.id


def summary_items(
    query: ExportQuery, result: ExportResult
) -> list[tuple[str, str | int | None]]:
    """
    Lay an export's Summary sheet out as label/value pairs (value None: a heading).
    """
    speed = result.devices_per_second
    target = result.target
    items: list[tuple[str, str | int | None]] = [
        ("Export", None),
        ("API", target.base_url if target else ""),
        ("org", target.org_label() if target else ""),
        ("run by", (target.caller or "") if target else ""),
        ("started", result.started_at.isoformat(timespec="seconds")),
        ("finished", result.finished_at.isoformat(timespec="seconds")),
        ("duration (s)", f"{result.duration:.1f}"),
        ("devices", result.devices),
        ("pages", result.pages),
        ("devices/s", "" if speed is None else f"{speed:.0f}"),
        ("API calls", result.api_calls),
        ("retries", result.retries),
        ("rate limited (429)", result.rate_limited),
    ]
    if result.owners_unnamed:
        items.append(("owners whose name was not found", result.owners_unnamed))
    if result.tags_not_read_back:
        items.append(
            (
                "devices whose tags a manifest reads back as others",
                result.tags_not_read_back,
            )
        )
    items.append(("Filters", None))
    items.extend(query.describe() or [("none", "every device of the org")])
    return items
