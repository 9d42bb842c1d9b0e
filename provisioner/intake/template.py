"""
The blank XLSX manifest template users fill in.

The first sheet is the one ``provisioner`` reads; its cells are formatted as Text so
Excel cannot turn a MAC into a number, and the model column has a drop-down of the
catalogue (kept on a hidden sheet). A Notes sheet explains every column.
"""

from __future__ import annotations

from pathlib import Path

from provisioner.intake.catalogue import Catalogue, load_catalogue

__all__ = ["TEMPLATE_COLUMNS", "write_template"]

TEMPLATE_COLUMNS: tuple[tuple[str, str], ...] = (
    (
        "mac",
        (
            "12 hex digits in any notation (AABBCCDDEEFF, aa:bb:cc:dd:ee:ff, "
            "aabb.ccdd.eeff). Leave empty to get an activation code instead."
        ),
    ),
    (
        "model",
        (
            "Pick from the drop-down (the display name, e.g. Cisco 8851, or the API "
            "model string, e.g. DMS Cisco 8851)."
        ),
    ),
    (
        "workspaceId",
        (
            "The id of the workspace that owns the device. Each row names its owner "
            "in exactly one of workspaceId, personId, workspace and personEmail."
        ),
    ),
    ("personId", "The id of the person who owns the device."),
    (
        "workspace",
        (
            "Or the workspace's name, exactly as in Control Hub; it is looked up in "
            "the org (validate --live, and the run)."
        ),
    ),
    (
        "location",
        (
            "Optional, with workspace: the location's name, to tell apart workspaces "
            "that share a name."
        ),
    ),
    ("personEmail", "Or the email of the person who owns the device."),
    ("tags", "Optional. Tags separated by ; (or , or |), e.g. lobby;floor-2."),
    ("orgId", "Optional. The customer org id, for partner admins."),
    (
        "password",
        (
            "Third-party (customer-managed) devices only: the SIP password. Never "
            "written to reports or logs."
        ),
    ),
)
"""The template's columns, in order, with the note the Notes sheet gives each."""

DATA_SHEET = "Devices"
LIST_SHEET = "Models"
NOTES_SHEET = "Notes"
TEMPLATE_ROWS = 5000
"""How many rows get the model drop-down."""

_WIDTHS = {
    "mac": 20,
    "model": 26,
    "workspaceId": 44,
    "personId": 44,
    "workspace": 26,
    "location": 22,
    "personEmail": 30,
    "tags": 24,
}


def write_template(path: Path, *, catalogue: Catalogue | None = None) -> Path:
    """
    Write the blank template to ``path`` (overwriting it) and return the path.
    """
    # Imported here: only this command and the manifest reader need openpyxl.
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.worksheet.datavalidation import DataValidation

    catalogue = catalogue or load_catalogue()
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = DATA_SHEET
    bold = Font(bold=True)
    for index, (name, _) in enumerate(TEMPLATE_COLUMNS, start=1):
        cell = sheet.cell(row=1, column=index, value=name)
        cell.font = bold
        letter = cell.column_letter
        dimension = sheet.column_dimensions[letter]
        dimension.width = _WIDTHS.get(name, 18)
        # The Text format on the whole column: Excel then keeps a typed
        # 001122334455 as it is instead of turning it into a number.
        dimension.number_format = "@"
    sheet.freeze_panes = "A2"

    notes = workbook.create_sheet(NOTES_SHEET)
    notes.append(["column", "what to put in it"])
    for cell in notes[1]:
        cell.font = bold
    for name, note in TEMPLATE_COLUMNS:
        notes.append([name, note])
    notes.append([])
    for line in _GENERAL_NOTES:
        notes.append([line])
    notes.column_dimensions["A"].width = 16
    notes.column_dimensions["B"].width = 100
    for row in notes.iter_rows(min_row=2, max_col=2):
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")

    models = workbook.create_sheet(LIST_SHEET)
    models.append(["model", "API model string", "onboarding", "owners", "password"])
    for entry in catalogue.models:
        models.append(
            [
                entry.display_name,
                entry.model,
                " / ".join(entry.onboarding_methods),
                " / ".join(entry.supported_for),
                "required" if entry.needs_password else "",
            ]
        )
    models.column_dimensions["A"].width = 34
    models.column_dimensions["B"].width = 34
    models.sheet_state = "hidden"

    model_column = 1 + [name for name, _ in TEMPLATE_COLUMNS].index("model")
    letter = sheet.cell(row=1, column=model_column).column_letter
    validation = DataValidation(
        type="list",
        formula1=f"={LIST_SHEET}!$A$2:$A${len(catalogue.models) + 1}",
        allow_blank=True,
        showErrorMessage=False,  # a typed API model string is valid too
        promptTitle="model",
        prompt="Pick a model, or type its name",
        showInputMessage=True,
    )
    validation.add(f"{letter}2:{letter}{TEMPLATE_ROWS + 1}")
    sheet.add_data_validation(validation)

    workbook.save(path)
    return path


_GENERAL_NOTES = (
    "Fill in the Devices sheet, one device per row; provisioner reads the first sheet.",
    (
        "Headers are matched ignoring case, spaces, underscores and hyphens "
        "(MAC Address, Workspace ID, Device Model work too). Extra columns are kept "
        "in the report as they are."
    ),
    (
        "The full model list, with what each model supports, is on the hidden Models "
        "sheet (right-click a sheet tab → Unhide)."
    ),
    "Check the sheet before a run: provisioner validate <this file>.",
)
