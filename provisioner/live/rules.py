"""
Decide what the live checks' answers mean for each row: pure, no I/O.

``provisioner.preflight`` makes the read calls and gathers what they answered into
``Answers``; everything here turns answers into values:

- reading a row: the header and cell text of a field, the owner it names
  (``owner_key``, ``distinct_owners``), its MACs grouped into ``validateMacs``
  batches (``mac_batches``);
- answers → problems: ``mac_problems`` (a MAC in use elsewhere, invalid or listed
  twice; one held by the row's own owner is adoptable, not a problem),
  ``owner_problems`` (a 404 or a refused id), ``with_catalogue`` (the offline model
  checks again, against the org's own supported models);
- ``decide``: all of it at once, giving the ``Preflight`` value that the CLI prints
  and the engine's dry run reads; an adoptable device of another model than its row
  says is a warning there (``live.adoption``), not a problem.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from provisioner.intake.catalogue import Catalogue
from provisioner.intake.manifest import RawTable, build_manifest
from provisioner.live.adoption import adopted_model_warning, other_model
from provisioner.models import Device, Manifest, OwnerKind, Problem, Row
from provisioner.webex.protocol import MacState, Owner, SupportedModel

__all__ = [
    "MAC_BATCH_SIZE",
    "Answers",
    "MacHolder",
    "OwnerKey",
    "OwnerLookup",
    "Preflight",
    "cell_text",
    "decide",
    "describe_owner",
    "distinct_owners",
    "header",
    "holder_of",
    "is_own_device",
    "mac_batches",
    "mac_message",
    "mac_problems",
    "merge_problems",
    "owner_key",
    "owner_problems",
    "with_catalogue",
]

MAC_BATCH_SIZE = 100
"""MACs per validateMacs call: few calls, small bodies."""


@dataclass(frozen=True, slots=True)
class OwnerKey:
    """
    One owner to look up: its kind, id and the org it lives in (None: the token's).
    """

    kind: OwnerKind
    id: str
    org_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OwnerLookup:
    """
    What looking an owner up answered: the owner, or why it could not be found.

    ``missing`` is True for a 404; ``refused`` holds the API's words for a 400 (an id
    the API cannot parse). Both make the rows that name this owner invalid.
    """

    owner: Owner | None = None
    missing: bool = False
    refused: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MacHolder:
    """
    The device that holds an in-use MAC, as far as a lookup could tell.
    """

    device_id: str
    owner_kind: OwnerKind | None = None
    owner_id: str | None = None
    owner_name: str | None = None
    org_id: str | None = None
    #: The device's model as the API shows it (``Device.product``).
    product: str | None = None
    #: The org it was found in, when another of the manifest's orgs than the row's.
    other_org: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Preflight:
    """
    The outcome of the live checks.

    Attributes:
        manifest: the manifest with every row's offline and live problems.
        live_problems: the problems the live checks found, by row number.
        adoptable: rows whose MAC is already registered to the row's own owner; a run
            adopts those devices instead of creating them, so they are no problem.
        in_use: rows whose MAC is registered elsewhere (another owner or org).
        owners: each distinct owner looked up, with its answer.
        supported: the models ``supportedDevices`` answered (empty: not read).
        warnings: checks that could not be made (a token without a needed scope), in
            words a person can act on; the rows are not marked invalid for those.
        names_looked_up: distinct owner names (workspace names, emails) looked up.
        names_unresolved: rows whose owner name matched no owner, or several.
        other_models: adoptable rows whose device the org holds as another model
            than the row says, with the warning that says so (by row number); a
            run adopts them all the same.
    """

    manifest: Manifest
    live_problems: Mapping[int, tuple[Problem, ...]]
    adoptable: frozenset[int]
    in_use: frozenset[int]
    owners: Mapping[OwnerKey, OwnerLookup]
    supported: tuple[SupportedModel, ...]
    warnings: tuple[str, ...] = ()
    names_looked_up: int = 0
    names_unresolved: int = 0
    other_models: Mapping[int, str] = dataclasses.field(default_factory=dict)

    @property
    def invalid_rows(self) -> tuple[Row, ...]:
        """
        Rows with at least one problem, offline or live, in manifest order.
        """
        return tuple(row for row in self.manifest.rows if row.problems)


# ---------------------------------------------------------------------------
# Pure helpers: reading a row


def header(manifest: Manifest, field: str) -> str:
    """
    Return the header the file used for a canonical field (its canonical name if none).
    """
    return manifest.field_columns.get(field, field)


def cell_text(manifest: Manifest, row: Row, field: str) -> str:
    """
    Return the cell text a row holds for a canonical field ('' when there is none).
    """
    column = manifest.field_columns.get(field)
    if column is None or column not in manifest.columns:
        return ""
    index = manifest.columns.index(column)
    return row.cells[index].strip() if index < len(row.cells) else ""


def row_org(row: Row, default_org: str | None) -> str | None:
    return row.org_id or default_org


def owner_key(row: Row, default_org: str | None) -> OwnerKey | None:
    """
    Return the owner a row names by id, or None when it names none (an offline
    problem) or named it by name (``live.owner_rules`` looked that one up).
    """
    if (row.workspace_id and row.person_id) or row.owner_name:
        return None
    kind = row.owner_kind
    owner_id = row.owner_id
    if kind is None or owner_id is None:
        return None
    return OwnerKey(kind, owner_id, row_org(row, default_org))


def distinct_owners(rows: Iterable[Row], default_org: str | None) -> list[OwnerKey]:
    """
    Return each owner the rows name once, in order of first appearance.
    """
    keys = (owner_key(row, default_org) for row in rows)
    return list(dict.fromkeys(key for key in keys if key is not None))


def mac_batches(
    rows: Iterable[Row], default_org: str | None, size: int = MAC_BATCH_SIZE
) -> list[tuple[str | None, tuple[str, ...]]]:
    """
    Group the rows' distinct MACs by org into batches of at most ``size``.

    Each MAC is sent once: the offline check already flags MACs repeated in the
    manifest, and a MAC split across two batches would escape the API's own
    ``DUPLICATE_IN_LIST`` anyway.
    """
    if size < 1:
        raise ValueError("batch size must be at least 1")
    by_org: dict[str | None, dict[str, None]] = {}
    for row in rows:
        if row.mac:
            by_org.setdefault(row_org(row, default_org), {})[row.mac] = None
    batches: list[tuple[str | None, tuple[str, ...]]] = []
    for org, macs in by_org.items():
        ordered = list(macs)
        for start in range(0, len(ordered), size):
            batches.append((org, tuple(ordered[start : start + size])))
    return batches


# ---------------------------------------------------------------------------
# Pure decisions: answers → problems


def describe_owner(
    kind: OwnerKind | None, owner_id: str | None, name: str | None
) -> str:
    """
    Name an owner for a message: kind, display name when known, and id.
    """
    noun = "person" if kind is OwnerKind.PERSON else "workspace"
    if kind is None:
        noun = "owner"
    if name:
        return f'{noun} "{name}" (id {owner_id})'
    return f"{noun} {owner_id}"


def mac_problems(
    manifest: Manifest,
    row: Row,
    state: MacState | None,
    holder: MacHolder | None,
    *,
    default_org: str | None = None,
) -> tuple[Problem, ...]:
    """
    Turn a row's validateMacs answer (and who holds the MAC) into problems.

    A MAC registered to the row's own owner is no problem: the run adopts that
    device. ``state`` None means the MAC was not checked.
    """
    if state is None or row.mac is None or state.state == "AVAILABLE":
        return ()
    if (
        state.state == "UNAVAILABLE"
        and holder is not None
        and is_own_device(row, holder, default_org)
    ):
        return ()
    value = cell_text(manifest, row, "mac") or row.mac
    return (Problem(header(manifest, "mac"), value, mac_message(state, holder)),)


def mac_message(state: MacState, holder: MacHolder | None) -> str:
    """
    Say what a validateMacs state means for the row, and what to do about it.
    """
    if state.state == "UNAVAILABLE" and holder is None:
        return (
            "this MAC is already registered, to a device this token cannot see "
            "(another org, perhaps); release it there first, or correct the MAC"
        )
    if state.state == "UNAVAILABLE" and holder is not None:
        owner = describe_owner(holder.owner_kind, holder.owner_id, holder.owner_name)
        where = (
            f" in org {holder.other_org} (another org of this manifest)"
            if holder.other_org
            else ""
        )
        return (
            f"this MAC is already registered to {owner}{where} as device "
            f"{holder.device_id}; delete that device first (Control Hub, Devices) "
            "if it is to move, or correct the MAC"
        )
    api_words = f" ({state.message})" if state.message else ""
    if state.state == "INVALID":
        return (
            f"the API refuses this MAC as invalid{api_words}; check it against the "
            "label on the device"
        )
    if state.state == "DUPLICATE_IN_LIST":
        return (
            "this MAC is listed more than once; each device needs its own row with "
            "its own MAC"
        )
    return f"the API answered {state.state} for this MAC{api_words}; check the MAC"


def is_own_device(row: Row, holder: MacHolder, default_org: str | None) -> bool:
    """
    Tell whether the device holding a row's MAC already belongs to the row's owner.
    """
    if holder.owner_id is None or holder.owner_id != row.owner_id:
        return False
    row_org_id = row_org(row, default_org)
    return holder.org_id is None or row_org_id is None or holder.org_id == row_org_id


def owner_problems(
    manifest: Manifest, row: Row, lookup: OwnerLookup | None
) -> tuple[Problem, ...]:
    """
    Turn the lookup of a row's owner into problems: a 404 or a refused id.
    """
    if lookup is None or not (lookup.missing or lookup.refused is not None):
        return ()
    is_person = row.owner_kind is OwnerKind.PERSON
    noun = "person" if is_person else "workspace"
    column = header(manifest, "personId" if is_person else "workspaceId")
    if lookup.refused is not None:
        message = (
            f"the API refuses this {noun} id ({lookup.refused}); check the id (copy "
            "it from Control Hub or the API)"
        )
    else:
        org = f" in org {row.org_id}" if row.org_id else " in the org"
        message = (
            f"no {noun} with this id exists{org}; check the id (copy it from "
            "Control Hub or the API), and that it is in the right column"
        )
    return (Problem(column, row.owner_id or "", message),)


def merge_problems(
    manifest: Manifest, live: Mapping[int, Sequence[Problem]]
) -> Manifest:
    """
    Return the manifest with the live problems appended to each row's own.

    A live problem identical to one the offline check already reported (same column
    and message) is not repeated.
    """
    rows = []
    for row in manifest.rows:
        extra = [p for p in live.get(row.number, ()) if p not in row.problems]
        if extra:
            row = dataclasses.replace(row, problems=row.problems + tuple(extra))
        rows.append(row)
    return dataclasses.replace(manifest, rows=tuple(rows))


# ---------------------------------------------------------------------------
# Answers → the outcome


@dataclass(slots=True)
class Answers:
    """
    What the live calls answered, as the async shell gathers them.

    MAC states and holders are keyed by (org, MAC); ``owners`` holds each owner
    looked up; ``warnings`` the checks a token's scopes did not allow.
    """

    supported: tuple[SupportedModel, ...] = ()
    states: dict[tuple[str | None, str], MacState] = dataclasses.field(
        default_factory=dict
    )
    holders: dict[tuple[str | None, str], MacHolder | None] = dataclasses.field(
        default_factory=dict
    )
    owners: dict[OwnerKey, OwnerLookup] = dataclasses.field(default_factory=dict)
    warnings: list[str] = dataclasses.field(default_factory=list)


def with_catalogue(manifest: Manifest, models: Sequence[SupportedModel]) -> Manifest:
    """
    Run the offline checks again against the org's own supported models (pure).

    The org's list decides: a model it lists goes through even when the bundled
    catalogue lacks it, and one it does not list is invalid. RoomOS models are the
    exception (``Catalogue.for_org``): their codes name no model.

    The rows are rebuilt from their cells, with each row's password put back in its
    (masked) cell, so the result is what ``build_manifest`` would have made from the
    file had it known the org's list.
    """
    password_column = manifest.field_columns.get("password")
    index = (
        manifest.columns.index(password_column)
        if password_column in manifest.columns
        else None
    )
    records = []
    for row in manifest.rows:
        cells = row.cells
        if index is not None and row.password:
            cells = (*cells[:index], row.password, *cells[index + 1 :])
        records.append((row.number, cells))
    table = RawTable(
        path=manifest.path,
        sheet=manifest.sheet,
        columns=manifest.columns,
        records=records,
        numbers=manifest.numbers,
    )
    return build_manifest(
        table, catalogue=Catalogue.for_org(models), elsewhere=manifest.elsewhere
    )


def decide(manifest: Manifest, answers: Answers, org_id: str | None) -> Preflight:
    """
    Turn the gathered answers into per-row problems (pure).
    """
    live: dict[int, tuple[Problem, ...]] = {}
    adoptable: set[int] = set()
    in_use: set[int] = set()
    other_models: dict[int, str] = {}
    for row in manifest.rows:
        problems: list[Problem] = []
        if row.mac is not None:
            key = (row_org(row, org_id), row.mac)
            holder = _named(answers.holders.get(key), answers.owners)
            state = answers.states.get(key)
            found = mac_problems(manifest, row, state, holder, default_org=org_id)
            problems.extend(found)
            if state is not None and state.state == "UNAVAILABLE":
                (in_use if found else adoptable).add(row.number)
            if row.number in adoptable and holder is not None:
                warning = _other_model_warning(manifest, row, holder, answers)
                if warning is not None:
                    other_models[row.number] = warning
        owner = owner_key(row, org_id)
        if owner is not None:
            problems.extend(owner_problems(manifest, row, answers.owners.get(owner)))
        if problems:
            live[row.number] = tuple(problems)
    return Preflight(
        manifest=merge_problems(manifest, live),
        live_problems=live,
        adoptable=frozenset(adoptable),
        in_use=frozenset(in_use),
        owners=dict(answers.owners),
        supported=answers.supported,
        warnings=tuple(dict.fromkeys(answers.warnings)),
        other_models=other_models,
    )


def _other_model_warning(
    manifest: Manifest, row: Row, holder: MacHolder, answers: Answers
) -> str | None:
    """
    Warn when the device a row would adopt is another model than the row says.
    """
    assert row.mac is not None
    org_has = other_model(holder.product, row.model, answers.supported)
    if org_has is None:
        return None
    said = cell_text(manifest, row, "model") or row.model or ""
    return adopted_model_warning(row.number, row.mac, said, org_has)


def _named(
    holder: MacHolder | None, owners: Mapping[OwnerKey, OwnerLookup]
) -> MacHolder | None:
    if holder is None or holder.owner_kind is None or holder.owner_id is None:
        return holder
    for key, lookup in owners.items():
        if key.id == holder.owner_id and lookup.owner is not None:
            return dataclasses.replace(holder, owner_name=lookup.owner.display_name)
    return holder


def holder_of(device: Device, org: str | None) -> MacHolder:
    """
    Describe the device that holds a MAC.
    """
    kind = (
        OwnerKind.WORKSPACE
        if device.workspace_id
        else OwnerKind.PERSON
        if device.person_id
        else None
    )
    return MacHolder(
        device_id=device.id,
        owner_kind=kind,
        owner_id=device.owner_id,
        org_id=device.org_id or org,
        product=device.product,
    )
