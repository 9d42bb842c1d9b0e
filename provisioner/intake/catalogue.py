"""
The catalogue of supported device models, and the lookup from what people type.

People write ``Cisco 8851``, ``cisco-8851`` or just ``8851``; the API wants
``DMS Cisco 8851`` — but ``Cisco 9841`` for the 98xx, which have no ``DMS`` prefix.
Lookups compare a key that ignores case, spaces and punctuation and an optional
``DMS`` prefix, so both spellings of every model resolve. The offline catalogue is
package data (``data/models.json``); ``Catalogue.from_supported`` builds one from the
live supportedDevices answer instead.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources

from provisioner.models import SupportedModel

__all__ = ["Catalogue", "CatalogueModel", "load_catalogue", "model_key"]

_NOT_ALNUM = re.compile(r"[^0-9a-z]+")
# Words people add or drop around a model number that never tell two models apart.
_NOISE_WORDS = (
    "ipconferencephone",
    "ipphone",
    "videophone",
    "multiplatform",
    "mpp",
    "3pcc",
)


def model_key(text: str) -> str:
    """
    Return the comparison key of a model name: lower case, letters and digits only,
    without a leading ``DMS``.
    """
    key = _NOT_ALNUM.sub("", text.casefold())
    return key.removeprefix("dms")


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogueModel:
    """
    One supported model: ``model`` is the string the API takes, ``display_name`` the
    one people know.
    """

    model: str
    display_name: str
    type: str | None = None
    manufacturer: str | None = None
    managed_by: str | None = None
    supported_for: tuple[str, ...] = ()
    onboarding_methods: tuple[str, ...] = ()

    @property
    def needs_password(self) -> bool:
        """
        Customer-managed (third-party) devices are created with a SIP password.
        """
        return self.managed_by == "CUSTOMER"

    @property
    def supports_mac(self) -> bool:
        return "MAC_ADDRESS" in self.onboarding_methods

    @property
    def supports_activation_code(self) -> bool:
        return "ACTIVATION_CODE" in self.onboarding_methods

    @property
    def supports_people(self) -> bool:
        return not self.supported_for or "PEOPLE" in self.supported_for

    @property
    def supports_places(self) -> bool:
        return not self.supported_for or "PLACE" in self.supported_for


class Catalogue:
    """
    The supported models, indexed by every spelling people use for them.

    Args:
        models: the entries, in the order they are listed (the template's drop-down
            keeps this order).
    """

    def __init__(self, models: Iterable[CatalogueModel]) -> None:
        self.models: tuple[CatalogueModel, ...] = tuple(models)
        self._index = _build_index(self.models)

    @classmethod
    def from_supported(cls, models: Iterable[SupportedModel]) -> Catalogue:
        """
        Build a catalogue from the live ``supportedDevices`` answer.
        """
        return cls(
            CatalogueModel(
                model=entry.model,
                display_name=entry.display_name or entry.model,
                type=entry.type,
                manufacturer=entry.manufacturer,
                managed_by=entry.managed_by,
                supported_for=tuple(entry.supported_for),
                onboarding_methods=tuple(entry.onboarding_methods),
            )
            for entry in models
        )

    def __len__(self) -> int:
        return len(self.models)

    def resolve(self, text: str) -> CatalogueModel | None:
        """
        Return the model ``text`` names, or None when it names none (or several).
        """
        key = model_key(text)
        found = self._index.get(key)
        if found is None:
            for word in _NOISE_WORDS:
                key = key.replace(word, "")
            found = self._index.get(key)
        return found

    def suggest(self, text: str, *, limit: int = 3) -> list[str]:
        """
        Return the display names closest to ``text``, best first (for "did you mean").
        """
        key = model_key(text)
        if not key:
            return []
        names: dict[str, str] = {}
        for entry in self.models:
            for spelling in (entry.display_name, entry.model):
                full = model_key(spelling)
                names.setdefault(full, entry.display_name)
                # A bare "8815" is far from "cisco8851" as a whole string; compare
                # it with the bare numbers too.
                names.setdefault(full.removeprefix("cisco"), entry.display_name)
        matches = difflib.get_close_matches(key, list(names), n=limit * 4, cutoff=0.6)
        # Swapped characters ("8815" for "8851") are the commonest typo: rank a
        # candidate with exactly the same characters first.
        matches.sort(key=lambda match: sorted(match) != sorted(key))
        return list(dict.fromkeys(names[match] for match in matches))[:limit]


def _build_index(models: Iterable[CatalogueModel]) -> Mapping[str, CatalogueModel]:
    """
    Map every key a model answers to onto it; a key two models share is dropped.
    """
    index: dict[str, CatalogueModel] = {}
    ambiguous: set[str] = set()
    for entry in models:
        for key in _keys_of(entry):
            if key in index and index[key] is not entry:
                ambiguous.add(key)
            index.setdefault(key, entry)
    for key in ambiguous:
        del index[key]
    return index


def _keys_of(entry: CatalogueModel) -> set[str]:
    keys = {model_key(entry.model), model_key(entry.display_name)}
    for key in tuple(keys):
        for word in _NOISE_WORDS:
            keys.add(key.replace(word, ""))
        # "Cisco 8851" is also typed "8851" and, by its part number, "CP-8851".
        if key.startswith("cisco") and entry.manufacturer in (None, "CISCO"):
            bare = key.removeprefix("cisco")
            keys.update({bare, "cp" + bare})
        if key.startswith("ciscowirelessphone"):
            bare = key.removeprefix("ciscowirelessphone")
            keys.update({bare, "wirelessphone" + bare, "cisco" + bare})
    keys.discard("")
    return keys


@functools.cache
def load_catalogue() -> Catalogue:
    """
    Return the catalogue shipped with the package (``provisioner/intake/data/models.json``).
    """
    source = resources.files("provisioner.intake").joinpath("data", "models.json")
    document = json.loads(source.read_text(encoding="utf-8"))
    return Catalogue(
        CatalogueModel(
            model=entry["model"],
            display_name=entry.get("display_name") or entry["model"],
            type=entry.get("type"),
            manufacturer=entry.get("manufacturer"),
            managed_by=entry.get("managed_by"),
            supported_for=tuple(entry.get("supported_for", ())),
            onboarding_methods=tuple(entry.get("onboarding_methods", ())),
        )
        for entry in document["models"]
    )
