"""
Does a row's model fit the row: how the model onboards (by MAC, by activation code),
who may own it (a person, a workspace) and whether it needs a password.

Pure: the row's cells by field in, (field, value, message) of each problem out;
``validation.py`` turns them into ``Problem``s and asks once per kind of row.
"""

from __future__ import annotations

from collections.abc import Mapping

from provisioner.models import SupportedModel

__all__ = ["fit_problems"]


def fit_problems(
    model: SupportedModel,
    values: Mapping[str, str],
    mac: str | None,
    password: str | None,
    *,
    masked: bool,
) -> list[tuple[str, str, str]]:
    """
    Check a row against what its model supports; return (field, value, message)
    of each problem.

    Args:
        values: the row's cells by field, for the fields the header has.
        mac: the row's MAC, normalised; None when it has none or a broken one.
        password: the password to send; None when none was given.
        masked: the password cell holds the mask a report writes.
    """
    problems: list[tuple[str, str, str]] = []
    shown = values.get("model", "")
    if mac is not None and not model.supports_mac:
        problems.append(
            (
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
        column = "mac" if "mac" in values else "model"
        problems.append(
            (
                column,
                values.get(column, ""),
                (
                    f"the {model.display_name} can only be added by MAC address "
                    "(it takes no activation code); fill in its MAC"
                ),
            )
        )
    on_workspace = bool(values.get("workspaceId") or values.get("workspace"))
    on_person = bool(values.get("personId") or values.get("personEmail"))
    if on_workspace and not model.supports_places:
        problems.append(
            (
                "model",
                shown,
                (
                    f"the {model.display_name} can only belong to a person, not to "
                    "a workspace; name a person (personId or personEmail) instead, or "
                    "pick another model"
                ),
            )
        )
    if on_person and not model.supports_people:
        problems.append(
            (
                "model",
                shown,
                (
                    f"the {model.display_name} can only belong to a workspace, not "
                    "to a person; name a workspace (workspaceId or workspace) "
                    "instead, or pick another model"
                ),
            )
        )
    # The reference states no rule for the password beyond its presence: POST
    # /devices' `password` is a plain string, "only required with third party
    # devices" (shared/specs/webex-device.openapi.json; webex-devices-api.md §4.6),
    # and no minimum length or character rule is given there or in the emulator. So
    # none is checked, nor claimed in the message: the API has the last word.
    if model.needs_password and password is None and mac is not None:
        column = "password" if "password" in values else "model"
        problems.append(
            (
                column,
                values.get(column, ""),
                (
                    "the password was masked in the report; type it again"
                    if masked
                    else f"the {model.display_name} is a third-party device and "
                    "needs a password (its SIP password): add a password column "
                    "and fill it in"
                ),
            )
        )
    return problems
