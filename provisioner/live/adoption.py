"""
A device found by MAC with the row's own owner is adopted as it is: is it the model
the row says? Pure: the device's product and the row's model in, words out.

The API cannot change a device's model: adopting a Cisco 8865 for a row that says
Cisco 8851 leaves an 8865 in the org, and the report would call it the row's device.
Nothing is refused (the row's owner has the device; the MAC is right or the row would
not have found it), but the person is told: ``validate --live`` and the dry run warn,
and the run's report says so beside the adopted row.

A device's ``product`` is its display name (``Cisco 8865``, ``Cisco Wireless Phone
840``) where the row holds the API's model (``DMS Cisco 8865``, ``DMS Cisco 840``), so
the two are compared through the catalogues, which know both spellings. A product no
catalogue knows says nothing certain: no warning is made on a guess.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from provisioner.intake.catalogue import Catalogue, load_catalogue, model_key
from provisioner.models import SupportedModel

__all__ = [
    "adopted_model_note",
    "adopted_model_warning",
    "model_name",
    "other_model",
    "planned_model_note",
]


def other_model(
    product: str | None,
    model: str | None,
    supported: Sequence[SupportedModel] = (),
) -> str | None:
    """
    Return the device's product when it is known to be another model than ``model``
    (the row's, as the API names it), else None.

    Args:
        supported: the org's supportedDevices answer, read before the bundled
            catalogue (the org's names are the ones its devices carry).
    """
    if not product or not model or model_key(product) == model_key(model):
        return None  # the common case, without a lookup: "Cisco 8851" is the 8851
    for catalogue in _catalogues(tuple(supported)):
        found = catalogue.resolve(product)
        if found is not None:
            wanted = catalogue.resolve(model)
            said = wanted.model if wanted is not None else model
            return None if model_key(found.model) == model_key(said) else product
    return None


def model_name(model: str, supported: Sequence[SupportedModel] = ()) -> str:
    """
    Name a model as people know it (``Cisco 8851`` for ``DMS Cisco 8851``).
    """
    for catalogue in _catalogues(tuple(supported)):
        found = catalogue.resolve(model)
        if found is not None:
            return found.display_name
    return model


def adopted_model_warning(number: int, mac: str, said: str, org_has: str) -> str:
    """
    The live checks' warning for a row whose device the org holds as another model.

    ``said`` is the row's model cell as typed; ``org_has`` the device's product.
    """
    return (
        f"row {number}: MAC {mac} is already registered to the row's owner as a "
        f"{org_has}, but the row says {said}; a run adopts that device as it is (its "
        "model is not changed): correct the row's model, or delete that device "
        "first (Control Hub, Devices) if it is to be replaced"
    )


def adopted_model_note(said: str, org_has: str) -> str:
    """
    The report's words beside a row adopted with a device of another model.
    """
    return (
        f"model differs: the org has this MAC as a {org_has}, not the {said} the row "
        "says; the device was adopted as it is (its model was not changed): correct "
        "the model in the manifest, or delete the device and provision the row again "
        "if it is to be replaced"
    )


def planned_model_note(said: str, org_has: str) -> str:
    """
    The dry run's words, after its plan to adopt a device of another model.
    """
    return (
        f"but the org has this MAC as a {org_has}, not the {said} the row says: it "
        "would be adopted as it is (its model is not changed); correct the row's "
        "model, or delete that device first if it is to be replaced"
    )


@functools.lru_cache(maxsize=8)
def _catalogues(supported: tuple[SupportedModel, ...]) -> tuple[Catalogue, ...]:
    # Asked once per adopted row whose product is not spelled as its model (the
    # 840 and 860, or a real difference): the org's list is indexed once per run.
    bundled = load_catalogue()
    if not supported:
        return (bundled,)
    return (Catalogue.from_supported(supported), bundled)
