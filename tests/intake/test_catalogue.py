"""
The model catalogue: every spelling people use resolves to the API's model string.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import provisioner
from provisioner.intake.catalogue import Catalogue, load_catalogue
from provisioner.webex.protocol import SupportedModel

EMULATOR_DEVICES = (
    Path(provisioner.__file__).parent / "emulator" / "data" / "supported_devices.json"
)


@pytest.mark.parametrize(
    ("text", "model"),
    [
        ("Cisco 8851", "DMS Cisco 8851"),
        ("DMS Cisco 8851", "DMS Cisco 8851"),
        ("  cisco   8851 ", "DMS Cisco 8851"),
        ("CISCO-8851", "DMS Cisco 8851"),
        ("8851", "DMS Cisco 8851"),
        ("CP-8851-3PCC", "DMS Cisco 8851"),
        ("Cisco IP Phone 8851", "DMS Cisco 8851"),
        ("Cisco 9841", "Cisco 9841"),
        ("DMS Cisco 9841", "Cisco 9841"),
        ("Cisco Wireless Phone 840", "DMS Cisco 840"),
        ("polycom vvx 411", "DMS Polycom VVX 411"),
        ("2N Customer Managed", "2N Customer Managed"),
    ],
)
def test_resolve_accepts_what_people_type(text: str, model: str) -> None:
    """Display names, API strings, bare numbers and part numbers resolve to the API model."""
    entry = load_catalogue().resolve(text)

    assert entry is not None
    assert entry.model == model


def test_unknown_model_resolves_to_none() -> None:
    """A model nobody supports resolves to None."""
    assert load_catalogue().resolve("Cisco 1234") is None


def test_suggest_ranks_swapped_digits_first() -> None:
    """``Cisco 8815`` suggests ``Cisco 8851`` first (swapped digits are the usual typo)."""
    assert load_catalogue().suggest("Cisco 8815")[0] == "Cisco 8851"


def test_suggest_gives_nothing_for_noise() -> None:
    """Text resembling no model gives no suggestion."""
    assert load_catalogue().suggest("banana") == []


def test_capabilities_come_from_the_data() -> None:
    """The 8875 is activation-code only, the 840 people only, third-party needs a password."""
    catalogue = load_catalogue()
    c8875 = catalogue.resolve("Cisco 8875")
    c840 = catalogue.resolve("840")
    yealink = catalogue.resolve("Yealink T54W")
    assert c8875 is not None
    assert c840 is not None
    assert yealink is not None

    assert (c8875.supports_mac, c8875.supports_activation_code) == (False, True)
    assert (c840.supports_people, c840.supports_places) == (True, False)
    assert yealink.needs_password


def test_packaged_catalogue_matches_the_emulator() -> None:
    """The offline catalogue lists exactly the models the emulator supports, alike."""
    wire = json.loads(EMULATOR_DEVICES.read_text(encoding="utf-8"))["devices"]
    expected = {
        entry["model"]: (
            entry["displayName"],
            entry["managedBy"],
            tuple(entry["supportedFor"]),
            tuple(entry["onboardingMethod"]),
        )
        for entry in wire
    }

    actual = {
        entry.model: (
            entry.display_name,
            entry.managed_by,
            entry.supported_for,
            entry.onboarding_methods,
        )
        for entry in load_catalogue().models
    }

    assert actual == expected


def test_from_supported_builds_a_working_catalogue() -> None:
    """A catalogue built from the live answer resolves its own models by display name."""
    catalogue = Catalogue.from_supported(
        [
            SupportedModel(
                model="DMS Cisco 9999",
                display_name="Cisco 9999",
                managed_by="CISCO",
                supported_for=("PLACE",),
                onboarding_methods=("MAC_ADDRESS",),
            )
        ]
    )

    entry = catalogue.resolve("cisco 9999")

    assert len(catalogue) == 1
    assert entry is not None
    assert (entry.model, entry.supports_people) == ("DMS Cisco 9999", False)
    assert catalogue.resolve("Cisco 8851") is None


def test_a_key_two_models_share_is_not_guessed() -> None:
    """When two models answer to the same spelling, resolve refuses to pick one."""
    catalogue = Catalogue.from_supported(
        [
            SupportedModel(model="DMS Cisco 100", display_name="Cisco 100"),
            SupportedModel(model="Cisco 100", display_name="Cisco 100"),
        ]
    )

    assert catalogue.resolve("Cisco 100") is None
