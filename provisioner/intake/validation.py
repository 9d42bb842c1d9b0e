"""
Building a ``Manifest`` from a ``RawTable``: normalise and validate every row.

MACs are normalised, models resolved against the offline catalogue, ids checked for
their kind, owners and model fit checked, passwords masked, and MACs listed twice
flagged on every row that has them (and on a row whose MAC a row of the same run outside
the table has: ``Manifest.elsewhere``). A bad row becomes a ``Row`` with ``problems``;
only a header row that cannot be used raises. No API call happens here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from operator import attrgetter, itemgetter

from provisioner.errors import MissingColumnError
from provisioner.intake.catalogue import Catalogue, Origin, load_catalogue
from provisioner.intake.fit import fit_problems
from provisioner.intake.formulas import unmark_text
from provisioner.intake.header import looks_like_header, match_headers
from provisioner.intake.mac import normalise_mac, numeric_mac_problem
from provisioner.intake.owners import (
    email_problem,
    id_problem,
    owner_count_problem,
    visible_text,
)
from provisioner.intake.rows import make_row
from provisioner.intake.sheet import DELIMITED_SUFFIXES, RawTable
from provisioner.models import Manifest, Problem, Row, SupportedModel

__all__ = [
    "PASSWORD_MASK",
    "build_manifest",
    "formula_problem",
    "marked_columns",
    "split_tags",
]

PASSWORD_MASK = "••••"
"""What a password cell shows in problems and reports; read back, it means "unknown"."""

_TAG_SPLIT = re.compile(r"[;,|]")
# The field whose cells are taken as typed, never as a formula, an error value or a
# marked cell: a password may start with "=", "#" or "'".
_AS_TYPED = "password"


def _find_late_header(table: RawTable) -> int | None:
    """
    Return the number of a row below the header that looks like the real header.
    """
    for number, cells in table.records[:10]:
        if looks_like_header(cells):
            return number
    return None


def build_manifest(
    table: RawTable,
    *,
    catalogue: Catalogue | None = None,
    elsewhere: Mapping[str, tuple[int, ...]] | None = None,
) -> Manifest:
    """
    Match the headers, then normalise and validate every row.

    Args:
        catalogue: the models to check against; the packaged one when None.
        elsewhere: MACs on rows of the same run outside this table, with their row
            numbers (``Manifest.elsewhere``): a row with one of them is a duplicate.

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
    elsewhere = dict(elsewhere or {})
    if "mac" in fields:
        _flag_duplicate_macs(rows, table.columns, fields["mac"], elsewhere)
    return Manifest(
        path=table.path,
        sheet=table.sheet,
        columns=table.columns,
        field_columns={name: table.columns[index] for name, index in fields.items()},
        rows=tuple(rows),
        numbers=table.numbers,
        elsewhere=elsewhere,
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


def marked_columns(fields: Mapping[str, int]) -> frozenset[int]:
    """
    The columns (``match_headers``' indexes) whose CSV cells are read without the
    text mark (``'=1+1`` is the value ``=1+1``: ``formulas.py``): every field's but
    the password's. Other columns are carried as they are.
    """
    return frozenset(index for name, index in fields.items() if name != _AS_TYPED)


def formula_problem(text: str) -> str | None:
    """
    Say why a cell in a column the tool uses is not a value: it holds a formula nobody
    calculated, or a spreadsheet error (``#N/A``); None when it is a value.
    """
    if text.startswith("="):
        return _FORMULA
    if text.upper() in _ERROR_VALUES:
        return _error_value(text)
    return None


class _RowChecker:
    """
    Validates rows of one table.

    Built for 100,000-row sheets: a row's cells are taken in one ``itemgetter``
    call, and every check whose answer depends on a cell's text alone (models,
    owner ids, emails, tags) or on a few facts of the row (does the model fit) is
    made once per distinct value, since a large sheet holds a few dozen models and
    owners. Only MACs, unique per row, are checked row by row. The rare paths (a
    formula, a problem) take the plain, slower route.
    """

    def __init__(
        self, table: RawTable, fields: dict[str, int], catalogue: Catalogue
    ) -> None:
        self.columns = table.columns
        self.fields = fields
        self.catalogue = catalogue
        self.is_text_file = table.path.suffix.lower() in DELIMITED_SUFFIXES
        self.unnamed = [index for index, name in enumerate(table.columns) if not name]
        self.numbers = table.numbers
        # Every known field, present or not: an absent one reads the "" appended
        # after the row's last cell (index ``len(columns)``).
        width = len(table.columns)
        self.take = itemgetter(*[fields.get(name, width) for name in _FIELDS])
        # The fields a formula, an error value or a text mark is looked for in, in
        # column order (as problems are listed), by their position in _FIELDS; a
        # password may start with "=" or "#" (``marked_columns``).
        marked = marked_columns(fields)
        self.formula_fields = [
            _FIELDS.index(name)
            for name, index in sorted(fields.items(), key=lambda item: item[1])
            if index in marked
        ]
        self.model_index = fields["model"]
        self.password_index = fields.get("password")
        self.models: dict[str, _Resolved] = {}
        # What is wrong with each id seen (None: nothing), by column.
        self.ids: dict[str, dict[str, str | None]] = {
            name: {} for name in ("workspaceId", "personId", "orgId")
        }
        self.workspace_ids = self.ids["workspaceId"]
        self.person_ids = self.ids["personId"]
        self.emails: dict[str, str | None] = {}
        self.tags: dict[str, tuple[str, ...]] = {}
        self.fits: dict[tuple[str, bool, bool, bool, bool, bool], bool] = {}

    def check(self, number: int, cells: tuple[str, ...]) -> Row:
        problems: list[Problem] = []
        texts: tuple[str, ...] = self.take((*cells, ""))
        joined = "\0" + "\0".join(texts)
        if (
            "\0=" in joined
            or "\0#" in joined
            or (self.is_text_file and "\0'" in joined)
        ):
            # Some field starts with "=" or "#", or with the text mark an export
            # writes (or a cell holds a NUL): the exact check for formulas,
            # spreadsheet errors and marked cells.
            texts = self._clear_formulas(texts, problems)
        (
            mac_text,
            model_text,
            workspace_id_text,
            person_id_text,
            workspace,
            email_text,
            location,
            tags_text,
            org_id_text,
            password_text,
        ) = texts
        # Names and emails are matched exactly against the API's: a no-break space
        # or a zero-width one pasted from a web page would make a name that reads
        # the same match nothing. ASCII cells (nearly all) skip it.
        if not workspace.isascii():
            workspace = visible_text(workspace)
        if not email_text.isascii():
            email_text = visible_text(email_text)
        if not location.isascii():
            location = visible_text(location)
        mac = None
        if mac_text:
            if self.numbers:
                mac = self._mac(mac_text, problems, number)
            else:
                try:
                    mac = normalise_mac(mac_text)
                except ValueError as error:
                    problems.append(self._problem("mac", mac_text, str(error)))
        model: SupportedModel | None = None
        api_model: str | None = None
        roomos = needs_password = False
        if model_text:
            found = self.models.get(model_text)
            if found is None:
                found = self.models[model_text] = self._resolve_model(model_text)
            model, unknown, api_model, roomos, needs_password = found
            if unknown is not None:
                problems.append(self._problem("model", model_text, unknown))
        if mac_text and not cells[self.model_index]:
            problems.append(self._problem("model", "", _NO_MODEL))
        # A cached None means a good id: the hot path is one lookup.
        workspace_id = person_id = org_id = None
        if (
            workspace_id_text
            and self.workspace_ids.get(workspace_id_text, 0) is not None
        ):
            workspace_id = self._owner_id("workspaceId", workspace_id_text, problems)
        elif workspace_id_text:
            workspace_id = workspace_id_text
        if person_id_text and self.person_ids.get(person_id_text, 0) is not None:
            person_id = self._owner_id("personId", person_id_text, problems)
        elif person_id_text:
            person_id = person_id_text
        person_email = self._email(email_text, problems) if email_text else None
        if org_id_text:
            org_id = self._owner_id("orgId", org_id_text, problems)
        on_workspace = bool(workspace_id_text or workspace)
        on_person = bool(person_id_text or email_text)
        if on_workspace == on_person or (
            (workspace_id_text and workspace) or (person_id_text and email_text)
        ):
            # No owner, or more than one: the message names them.
            self._check_owner(self._values(texts), problems)
        password = password_text or None
        if password == PASSWORD_MASK:
            password = None
        if model is not None:
            key = (
                model_text,
                mac is not None,
                bool(mac_text),
                on_workspace,
                on_person,
                password is None,
            )
            # Whether the model fits the row depends on these facts alone; the
            # messages quote the row's cells, so they are made for each row.
            if not self.fits.get(key):
                values = self._values(texts)
                masked = values.get("password") == PASSWORD_MASK
                found_fit = fit_problems(model, values, mac, password, masked=masked)
                self.fits[key] = not found_fit
                problems.extend(self._problem(*found) for found in found_fit)
            if not needs_password:
                password = None
        if self.unnamed and self.is_text_file:
            self._check_unnamed(cells, problems)
        if self.password_index is not None and cells[self.password_index]:
            cells = _masked(cells, self.password_index)
        tags = self.tags.get(tags_text)
        if tags is None:
            tags = self.tags[tags_text] = split_tags(tags_text)
        # In ROW_FIELDS order.
        return make_row(
            number,
            cells,
            mac,
            api_model,
            roomos,
            workspace_id,
            person_id,
            workspace or None,
            person_email,
            location or None,
            tags,
            org_id,
            password,
            tuple(problems),
        )

    def _clear_formulas(
        self, texts: tuple[str, ...], problems: list[Problem]
    ) -> tuple[str, ...]:
        """
        Report each field holding a formula or a spreadsheet error (``#N/A``), and
        read it as empty from here on; read a CSV cell marked as text (``'=…``,
        ``formulas.py``) as the value it marks.
        """
        values = list(texts)
        for position in self.formula_fields:
            value = values[position]
            plain = unmark_text(value) if self.is_text_file else None
            if plain is not None:
                # Marked so a spreadsheet shows it as text (an export does): the
                # value, never a formula. An XLSX cell is text already, unmarked.
                values[position] = plain
                continue
            message = formula_problem(value)
            if message is None:
                continue
            problems.append(self._problem(_FIELDS[position], value, message))
            values[position] = ""
        return tuple(values)

    def _values(self, texts: tuple[str, ...]) -> dict[str, str]:
        """
        The row's field values by name, for the fields the header has.
        """
        return {
            name: text
            for name, text in zip(_FIELDS, texts, strict=True)
            if name in self.fields
        }

    def _resolve_model(self, text: str) -> _Resolved:
        """
        Return the model ``text`` names, or None and what to do about it.
        """
        found = self.catalogue.resolve(text)
        if found is None:
            return None, _unknown_model(self.catalogue, text), None, False, False
        return found, None, found.model, found.is_roomos, found.needs_password

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
        stored = self.numbers.get((number, self.fields["mac"]))
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

    def _owner_id(self, name: str, text: str, problems: list[Problem]) -> str | None:
        known = self.ids[name]
        message = known.get(text, _UNSEEN)
        if message is _UNSEEN:
            message = known[text] = id_problem(name, text)
        if message is not None:
            problems.append(self._problem(name, text, message))
            return None
        return text

    def _check_owner(self, values: dict[str, str], problems: list[Problem]) -> None:
        found = owner_count_problem(values, self.fields)
        if found is not None:
            problems.append(self._problem(*found))

    def _email(self, text: str, problems: list[Problem]) -> str | None:
        message = self.emails.get(text, _UNSEEN)
        if message is _UNSEEN:
            message = self.emails[text] = email_problem(text)
        if message is not None:
            problems.append(self._problem("personEmail", text, message))
            return None
        return text

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


_Resolved = tuple[SupportedModel | None, str | None, str | None, bool, bool]
"""What a model cell names: the model, or why none; the model's API name, whether
it is a RoomOS device and whether it needs a password (read once per model)."""

_FIELDS = (
    "mac",
    "model",
    "workspaceId",
    "personId",
    "workspace",
    "personEmail",
    "location",
    "tags",
    "orgId",
    "password",
)
"""Every field a column can supply (``FIELD_ALIASES``), in the order
``_RowChecker.check`` unpacks them."""

# What a cache answers for a value it has not seen (None is a cached answer).
_UNSEEN = "\0unseen"


_NO_MODEL = (
    "a device added by MAC needs its model: fill it in (e.g. Cisco 8851), or clear "
    "the MAC to get an activation code"
)
_FORMULA = (
    "this cell holds a formula that was never calculated, not a value; replace it "
    "with its value (copy the column, then Paste Special → Values)"
)


# What a spreadsheet shows in a cell whose formula failed (Excel's error values; an
# XLSX error cell and a CSV saved from one both hold this text). In a column the tool
# uses it is never the value meant: #N/A in tags would become a tag.
_ERROR_VALUES = frozenset(
    {
        "#N/A",
        "#REF!",
        "#VALUE!",
        "#DIV/0!",
        "#NAME?",
        "#NUM!",
        "#NULL!",
        "#SPILL!",
        "#CALC!",
        "#FIELD!",
        "#BLOCKED!",
        "#CONNECT!",
        "#BUSY!",
        "#UNKNOWN!",
        "#GETTING_DATA",
    }
)


def _error_value(text: str) -> str:
    return (
        f"this cell holds the spreadsheet error {text}: its formula failed (a lookup "
        "that found nothing gives #N/A); fix the formula or type the value, then save "
        "the sheet again"
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
    other = catalogue.other_product(text)
    if other is not None:
        # Another model in its place would register a device as what it is not.
        return f"{head}: this is the {other.product}, {other.note}; {advice}"
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


def _flag_duplicate_macs(
    rows: list[Row],
    columns: tuple[str, ...],
    index: int,
    elsewhere: Mapping[str, tuple[int, ...]],
) -> None:
    """
    Flag every row whose MAC appears on another row too, naming the other rows:
    of this table, and ``elsewhere`` (rows of the same run outside it; a row of one
    of their numbers here is the same row, not another).
    """
    macs = list(filter(None, map(attrgetter("mac"), rows)))
    if len(set(macs)) == len(macs) and not elsewhere.keys() & set(macs):
        return  # every MAC once (the common case), found without a loop per row
    here = {row.number for row in rows}
    first: dict[str, int] = {}
    repeated: dict[str, list[int]] = {}
    for position, row in enumerate(rows):
        mac = row.mac
        if mac is not None:
            seen = first.setdefault(mac, position)
            if seen != position or mac in elsewhere:
                repeated.setdefault(mac, [seen] if seen != position else [])
                repeated[mac].append(position)
    for mac, positions in repeated.items():
        outside = [number for number in elsewhere.get(mac, ()) if number not in here]
        for position in positions:
            row = rows[position]
            numbers = [rows[other].number for other in positions if other != position]
            others = ", ".join(str(number) for number in sorted(numbers + outside))
            if not others:
                continue
            problem = Problem(
                column=columns[index],
                value=row.cells[index],
                message=(
                    f"MAC {mac} is also on row {others}; a device can be listed "
                    "once: delete the extra rows or correct the MAC"
                ),
            )
            rows[position] = replace(row, problems=(*row.problems, problem))
