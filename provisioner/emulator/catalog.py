"""
Load the seeded org and the supported-devices catalogue once, at start-up.

An org's directory (locations, workspaces, people) is read from data shaped like
``data/org.json``; every org shares the one supported-devices catalogue.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
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

    Workspaces, people and locations are kept in wire format, each with its
    ``orgId``; ``org`` is the raw data they came from.
    """

    org_id: str
    org: dict[str, Any]
    workspaces: dict[str, dict[str, Any]]
    people: dict[str, dict[str, Any]]
    supported_devices: dict[str, Any]
    models: dict[str, Model]
    locations: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def display_name(self) -> str:
        """
        The org's display name.
        """
        return str(self.org.get("orgName", ""))

    @property
    def admin_id(self) -> str:
        """
        The id of the person behind the org's admin token (``GET /people/me``).
        """
        return str(self.org.get("adminPersonId") or next(iter(self.people), ""))

    def find_model(self, name: str) -> Model | None:
        """
        Find a model by its API string or display name, ignoring case.
        """
        return self.models.get(name.strip().casefold())

    def for_org(self, org: dict[str, Any]) -> Catalog:
        """
        Return the catalogue of another org (same models) from its directory data.
        """
        return _with_directory(org, self.supported_devices, self.models)


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
    supported = _read("supported_devices.json")
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
    return _with_directory(_read("org.json"), supported, models)


def _with_directory(
    org: dict[str, Any], supported: dict[str, Any], models: dict[str, Model]
) -> Catalog:
    org_id = org["orgId"]

    def index(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return {item["id"]: {**item, "orgId": org_id} for item in items}

    return Catalog(
        org_id=org_id,
        org=org,
        workspaces=index(org["workspaces"]),
        people=index(org["people"]),
        supported_devices=supported,
        models=models,
        locations=index(org.get("locations", [])),
    )
