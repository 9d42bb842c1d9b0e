"""
Load the seeded org and the supported-devices catalogue once, at start-up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

__all__ = ["Catalog", "Model", "load_catalog"]

# supportedDevices ``type`` → Device ``type``; every telephony model is a phone.
DEVICE_TYPE_BY_MODEL_TYPE = {"MPP": "phone", "ATA": "phone", "DESK_PHONE": "phone"}


@dataclass(frozen=True, slots=True)
class Model:
    """
    One supported device model, with what create and activation need to know.
    """

    model: str
    display_name: str
    model_type: str
    managed_by: str
    supported_for: frozenset[str]
    onboarding: frozenset[str]

    @property
    def device_type(self) -> str:
        """
        The Device ``type`` a device of this model reports.
        """
        return DEVICE_TYPE_BY_MODEL_TYPE.get(self.model_type, "phone")

    @property
    def is_desk_phone(self) -> bool:
        """
        Whether create-by-MAC answers with an empty body (Cisco 98xx, PhoneOS).
        """
        return self.model_type == "DESK_PHONE"


@dataclass(frozen=True, slots=True)
class Catalog:
    """
    The org (workspaces, people, locations) and the supported models, indexed.
    """

    org_id: str
    org: dict[str, Any]
    workspaces: dict[str, dict[str, Any]]
    people: dict[str, dict[str, Any]]
    supported_devices: dict[str, Any]
    models: dict[str, Model]

    def find_model(self, name: str) -> Model | None:
        """
        Find a model by its API string or display name, ignoring case.
        """
        return self.models.get(name.strip().casefold())


def _read(name: str) -> Any:
    text = (
        resources.files("provisioner.emulator")
        .joinpath("data", name)
        .read_text(encoding="utf-8")
    )
    return json.loads(text)


def load_catalog() -> Catalog:
    """
    Read ``data/org.json`` and ``data/supported_devices.json`` into a ``Catalog``.
    """
    org = _read("org.json")
    supported = _read("supported_devices.json")
    org_id = org["orgId"]
    workspaces = {w["id"]: {**w, "orgId": org_id} for w in org["workspaces"]}
    people = {p["id"]: {**p, "orgId": org_id} for p in org["people"]}
    models: dict[str, Model] = {}
    for entry in supported["devices"]:
        model = Model(
            model=entry["model"],
            display_name=entry["displayName"],
            model_type=entry.get("type", "MPP"),
            managed_by=entry.get("managedBy", "CISCO"),
            supported_for=frozenset(entry.get("supportedFor", ())),
            onboarding=frozenset(entry.get("onboardingMethod", ())),
        )
        models.setdefault(model.model.casefold(), model)
        models.setdefault(model.display_name.casefold(), model)
    return Catalog(
        org_id=org_id,
        org=org,
        workspaces=workspaces,
        people=people,
        supported_devices=supported,
        models=models,
    )
