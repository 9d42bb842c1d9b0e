"""
adoption.py: is the device a row would adopt the model the row says? Spellings of
one model agree; another model is named; a product no catalogue knows says nothing.
"""

from __future__ import annotations

import pytest

from provisioner.live.adoption import (
    adopted_model_note,
    adopted_model_warning,
    model_name,
    other_model,
    planned_model_note,
)
from provisioner.models import SupportedModel


class TestOtherModel:
    @pytest.mark.parametrize(
        ("product", "model"),
        [
            ("Cisco 8851", "DMS Cisco 8851"),
            ("Cisco 9861", "Cisco 9861"),
            # Its display name shares no spelling with its API model.
            ("Cisco Wireless Phone 840", "DMS Cisco 840"),
        ],
    )
    def test_the_same_model_spelled_two_ways_is_the_same(
        self, product: str, model: str
    ) -> None:
        assert other_model(product, model) is None

    def test_another_model_is_named_as_the_org_shows_it(self) -> None:
        assert other_model("Cisco 8865", "DMS Cisco 8851") == "Cisco 8865"
        assert other_model("Cisco Wireless Phone 860", "DMS Cisco 840") == (
            "Cisco Wireless Phone 860"
        )

    @pytest.mark.parametrize("product", [None, "", "Acme Deskphone 1"])
    def test_a_product_no_catalogue_knows_says_nothing(
        self, product: str | None
    ) -> None:
        """No warning on a guess: an unknown or missing product is not a difference."""
        assert other_model(product, "DMS Cisco 8851") is None

    def test_the_orgs_own_list_knows_its_names(self) -> None:
        """A model only the org lists is told by the org's display name for it."""
        org = (
            SupportedModel(model="DMS Acme 1", display_name="Acme One"),
            SupportedModel(model="DMS Acme 2", display_name="Acme Two"),
        )

        assert other_model("Acme One", "DMS Acme 1", org) is None
        assert other_model("Acme Two", "DMS Acme 1", org) == "Acme Two"
        assert other_model("Acme Two", "DMS Acme 1") is None  # bundled: unknown


def test_model_name_is_the_display_name_where_known() -> None:
    assert model_name("DMS Cisco 840") == "Cisco Wireless Phone 840"
    assert model_name("DMS Acme 1") == "DMS Acme 1"


def test_the_words_name_the_row_the_mac_and_both_models() -> None:
    assert adopted_model_warning(5, "0A0B0C0D0E02", "8851", "Cisco 8865") == (
        "row 5: MAC 0A0B0C0D0E02 is already registered to the row's owner as a "
        "Cisco 8865, but the row says 8851; a run adopts that device as it is (its "
        "model is not changed): correct the row's model, or delete that device first "
        "(Control Hub, Devices) if it is to be replaced"
    )
    assert adopted_model_note("Cisco 8851", "Cisco 8865") == (
        "model differs: the org has this MAC as a Cisco 8865, not the Cisco 8851 the "
        "row says; the device was adopted as it is (its model was not changed): "
        "correct the model in the manifest, or delete the device and provision the "
        "row again if it is to be replaced"
    )
    assert planned_model_note("Cisco 8851", "Cisco 8865").startswith(
        "but the org has this MAC as a Cisco 8865, not the Cisco 8851 the row says: "
        "it would be adopted as it is"
    )
