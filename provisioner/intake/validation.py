"""
Building a ``Manifest`` from a ``RawTable``: normalise and validate every row.

MACs are normalised, models resolved against the offline catalogue, ids checked for
their kind, owners and model fit checked, passwords masked, and MACs listed twice
flagged on every row that has them. A bad row becomes a ``Row`` with ``problems``;
only a header row that cannot be used raises. No API call happens here.
"""

from __future__ import annotations

import re
from dataclasses import replace

from provisioner.errors import MissingColumnError
from provisioner.intake.catalogue import Catalogue, Origin, load_catalogue
from provisioner.intake.header import looks_like_header, match_headers
from provisioner.intake.mac import normalise_mac, numeric_mac_problem
from provisioner.intake.owners import email_problem, id_problem, owner_count_problem
from provisioner.intake.sheet import DELIMITED_SUFFIXES, RawTable
from provisioner.models import Manifest, Problem, Row, SupportedModel

__all__ = ["PASSWORD_MASK", "build_manifest", "split_tags"]

PASSWORD_MASK = "••••"
"""What a password cell shows in problems and reports; read back, it means "unknown"."""

_TAG_SPLIT = re.compile(r"[;,|]")


def _find_late_header(table: RawTable) -> int | None:
    """
    Return the number of a row below the header that looks like the real header.
    """
    for number, cells in table.records[:10]:
        if looks_like_header(cells):
            return number
    return None


def build_manifest(table: RawTable, *, catalogue: Catalogue | None = None) -> Manifest:
    """
    Match the headers, then normalise and validate every row.

    Args:
        catalogue: the models to check against; the packaged one when None.

    Raises:
        MissingColumnError: a required column is absent.
        ManifestError: the header row is otherwise unusable.
    """
    try:
        fields = match_headers(table.path, table.columns)
    except MissingColumnError:
        late = _find_late_header(table)
        if late is None:
            raise
        shown = ", ".join(f'"{column}"' for column in table.columns if column)
        raise MissingColumnError(
            f"{table.path}: the header must be the first row, but it seems to be row "
            f"{late}; the row above it holds {shown} (a title?). Delete the rows above "
            "the header and run again"
        ) from None
    checker = _RowChecker(table, fields, catalogue or load_catalogue())
    rows = [checker.check(number, cells) for number, cells in table.records]
    if "mac" in fields:
        _flag_duplicate_macs(rows, table.columns, fields["mac"])
    return Manifest(
        path=table.path,
        sheet=table.sheet,
        columns=table.columns,
        field_columns={name: table.columns[index] for name, index in fields.items()},
        rows=tuple(rows),
    )


def split_tags(text: str) -> tuple[str, ...]:
    """
    Split a tags cell on ``;``, ``,`` or ``|``; trim, drop empties, keep first order.
    """
    if not text:
        return ()
    return tuple(
        dict.fromkeys(tag for tag in map(str.strip, _TAG_SPLIT.split(text)) if tag)
    )


class _RowChecker:
    """
    Validates rows of one table; caches per distinct value, since a 100,000-row sheet
    holds a few dozen models and owners.
    """

    def __init__(
        self, table: RawTable, fields: dict[str, int], catalogue: Catalogue
    ) -> None:
        self.columns = table.columns
        self.fields = fields
        self.catalogue = catalogue
        self.is_text_file = table.path.suffix.lower() in DELIMITED_SUFFIXES
        self.unnamed = [index for index, name in enumerate(table.columns) if not name]
        self.models: dict[str, SupportedModel | str] = {}
        self.ids: dict[tuple[str, str], str | None] = {}
        self.tags: dict[str, tuple[str, ...]] = {}
        self.numbers = table.numbers

    def check(self, number: int, cells: tuple[str, ...]) -> Row:
        fields = self.fields
        problems: list[Problem] = []
        values = {name: cells[index] for name, index in fields.items()}
        for name, value in values.items():
            if value.startswith("=") and name != "password":
                problems.append(self._problem(name, value, _FORMULA))
                values[name] = ""
        mac = self._mac(values.get("mac", ""), problems, number)
        model = self._model(values.get("model", ""), problems)
        if values.get("mac") and not cells[fields["model"]]:
            problems.append(self._problem("model", "", _NO_MODEL))
        workspace_id = self._owner_id("workspaceId", values, problems)
        person_id = self._owner_id("personId", values, problems)
        person_email = self._email(values, problems)
        org_id = self._owner_id("orgId", values, problems)
        self._check_owner(values, problems)
        password = values.get("password") or None
        if password == PASSWORD_MASK:
            password = None
        if isinstance(model, SupportedModel):
            password = self._check_fit(model, values, mac, password, problems)
        if self.is_text_file and self.unnamed:
            self._check_unnamed(cells, problems)
        if "password" in fields and cells[fields["password"]]:
            cells = _masked(cells, fields["password"])
        return Row(
            number=number,
            cells=cells,
            mac=mac,
            model=model.model if isinstance(model, SupportedModel) else None,
            roomos=isinstance(model, SupportedModel) and model.is_roomos,
            workspace_id=workspace_id,
            person_id=person_id,
            workspace_name=values.get("workspace") or None,
            person_email=person_email,
            location=values.get("location") or None,
            tags=self._tags(values.get("tags", "")),
            org_id=org_id,
            password=password,
            problems=tuple(problems),
        )

    def _tags(self, text: str) -> tuple[str, ...]:
        found = self.tags.get(text)
        if found is None:
            found = self.tags[text] = split_tags(text)
        return found

    def _problem(self, name: str, value: str, message: str) -> Problem:
        # Defence in depth: no check of the password column reports its value today
        # (a formula there is allowed, and a masked cell shows the mask anyway), so
        # mutating this line cannot change a result.
        secret = name == "password" and bool(value)  # pragma: no mutate
        shown = PASSWORD_MASK if secret else value  # pragma: no mutate
        return Problem(
            column=self.columns[self.fields[name]], value=shown, message=message
        )

    def _mac(self, text: str, problems: list[Problem], number: int) -> str | None:
        if not text:
            return None
        stored = (
            self.numbers.get((number, self.fields["mac"])) if self.numbers else None
        )
        if stored is not None:
            # An XLSX cell stored as a number: its text may be a rounded MAC.
            message = numeric_mac_problem(stored)
            if message is not None:
                problems.append(self._problem("mac", text, message))
                return None
        try:
            return normalise_mac(text)
        except ValueError as error:
            problems.append(self._problem("mac", text, str(error)))
            return None

    def _model(self, text: str, problems: list[Problem]) -> SupportedModel | str | None:
        if not text:
            return None
        found = self.models.get(text)
        if found is None:
            found = self.catalogue.resolve(text) or _unknown_model(self.catalogue, text)
            self.models[text] = found
        if isinstance(found, str):
            problems.append(self._problem("model", text, found))
        return found

    def _owner_id(
        self, name: str, values: dict[str, str], problems: list[Problem]
    ) -> str | None:
        text = values.get(name, "")
        if not text:
            return None
        key = (name, text)
        if key not in self.ids:
            self.ids[key] = id_problem(name, text)
        message = self.ids[key]
        if message is not None:
            problems.append(self._problem(name, text, message))
            return None
        return text

    def _check_owner(self, values: dict[str, str], problems: list[Problem]) -> None:
        found = owner_count_problem(values, self.fields)
        if found is not None:
            problems.append(self._problem(*found))

    def _email(self, values: dict[str, str], problems: list[Problem]) -> str | None:
        text = values.get("personEmail", "")
        if not text:
            return None
        message = email_problem(text)
        if message is not None:
            problems.append(self._problem("personEmail", text, message))
            return None
        return text

    def _check_fit(
        self,
        model: SupportedModel,
        values: dict[str, str],
        mac: str | None,
        password: str | None,
        problems: list[Problem],
    ) -> str | None:
        """
        Check the row against what the model supports; return the password to use.
        """
        shown = values.get("model", "")
        if mac is not None and not model.supports_mac:
            problems.append(
                self._problem(
                    "mac",
                    values["mac"],
                    (
                        f"the {model.display_name} is a RoomOS device: clear the MAC, "
                        "RoomOS devices onboard with an activation code"
                    )
                    if model.is_roomos
                    else f"the {model.display_name} cannot be added by MAC address; "
                    "clear the MAC to get an activation code for it instead",
                )
            )
        elif not values.get("mac") and not model.supports_activation_code:
            column = "mac" if "mac" in self.fields else "model"
            problems.append(
                self._problem(
                    column,
                    values.get(column, ""),
                    f"the {model.display_name} can only be added by MAC address "
                    "(it takes no activation code); fill in its MAC",
                )
            )
        on_workspace = bool(values.get("workspaceId") or values.get("workspace"))
        on_person = bool(values.get("personId") or values.get("personEmail"))
        if on_workspace and not model.supports_places:
            problems.append(
                self._problem(
                    "model",
                    shown,
                    f"the {model.display_name} can only belong to a person, not to a "
                    "workspace; name a person (personId or personEmail) instead, or pick "
                    "another model",
                )
            )
        if on_person and not model.supports_people:
            problems.append(
                self._problem(
                    "model",
                    shown,
                    f"the {model.display_name} can only belong to a workspace, not "
                    "to a person; name a workspace (workspaceId or workspace) instead, or "
                    "pick another model",
                )
            )
        if not model.needs_password:
            return None
        if password is None and mac is not None:
            column = "password" if "password" in self.fields else "model"
            masked = values.get("password") == PASSWORD_MASK
            problems.append(
                self._problem(
                    column,
                    values.get(column, ""),
                    (
                        "the password was masked in the report; type it again"
                        if masked
                        else f"the {model.display_name} is a third-party device and "
                        "needs a password (its SIP password, at least 8 characters): "
                        "add a password column and fill it in"
                    ),
                )
            )
        return password

    def _check_unnamed(self, cells: tuple[str, ...], problems: list[Problem]) -> None:
        for index in self.unnamed:
            if cells[index]:
                # A shifted row may have pushed part of a password here.
                secret = "password" in self.fields
                problems.append(
                    Problem(
                        column=f"column {_column_letter(index)} (no header)",
                        value=PASSWORD_MASK if secret else cells[index],
                        message=(
                            "this row has more cells than the header has columns; a "
                            "value probably contains an unquoted comma: put double "
                            "quotes around it"
                        ),
                    )
                )
                return


_NO_MODEL = (
    "a device added by MAC needs its model: fill it in (e.g. Cisco 8851), or clear "
    "the MAC to get an activation code"
)
_FORMULA = (
    "this cell holds a formula that was never calculated, not a value; replace it "
    "with its value (copy the column, then Paste Special → Values)"
)


def _unknown_model(catalogue: Catalogue, text: str) -> str:
    """
    Say that a model is unknown, by which list, and what to do instead.
    """
    suggestions = catalogue.suggest(text)
    if catalogue.origin is Origin.ORG:
        head = "this org does not list this model among its supported devices"
        advice = "correct the model, or ask the org's admin which models it supports"
    else:
        head = "not a model the bundled catalogue knows"
        advice = (
            "`provisioner validate --live` checks it against the org's own list of "
            "supported devices"
        )
    if suggestions:
        quoted = [f'"{name}"' for name in suggestions]
        options = " or ".join(
            [", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 1 else quoted
        )
        return f"{head}: did you mean {options}? Otherwise {advice}"
    if catalogue.origin is Origin.ORG:
        return f"{head}: {advice}"
    return (
        f"{head}: use a model name from the Models list of manifests/template.xlsx "
        f'(for example "Cisco 8851"); {advice}'
    )


def _masked(cells: tuple[str, ...], index: int) -> tuple[str, ...]:
    return (*cells[:index], PASSWORD_MASK, *cells[index + 1 :])


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _flag_duplicate_macs(rows: list[Row], columns: tuple[str, ...], index: int) -> None:
    """
    Flag every row whose MAC appears on another row too, naming the other rows.
    """
    by_mac: dict[str, list[int]] = {}
    for position, row in enumerate(rows):
        if row.mac is not None:
            by_mac.setdefault(row.mac, []).append(position)
    for mac, positions in by_mac.items():
        if len(positions) < 2:
            continue
        for position in positions:
            row = rows[position]
            others = ", ".join(
                str(rows[other].number) for other in positions if other != position
            )
            problem = Problem(
                column=columns[index],
                value=row.cells[index],
                message=(
                    f"MAC {mac} is also on row {others}; a device can be listed "
                    "once: delete the extra rows or correct the MAC"
                ),
            )
            rows[position] = replace(row, problems=(*row.problems, problem))
