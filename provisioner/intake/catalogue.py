"""
The catalogue of supported device models, and the lookup from what people type.

People write ``Cisco 8851``, ``cisco-8851`` or just ``8851``; the API wants
``DMS Cisco 8851`` — but ``Cisco 9841`` for the 98xx, which have no ``DMS`` prefix.
Lookups compare a key that ignores case, spaces and punctuation and an optional
``DMS`` prefix, so both spellings of every model resolve; a model's ``aliases``
(``Board Pro 75`` for the Cisco Board Pro) resolve too.

Two catalogues exist. The bundled one is package data (``data/models.json``, each
fact cited in ``data/SOURCES.md``): ``validate`` checks against it offline. The
org's (``Catalogue.for_org``) is built from the live ``supportedDevices`` answer,
plus the bundled RoomOS family: a RoomOS device's activation code is requested
without a model, so the org's telephony list has no say over it.
"""

from __future__ import annotations

import enum
import functools
import json
import re
from collections.abc import Iterable, Mapping
from importlib import resources

from provisioner.models import SupportedModel

__all__ = ["Catalogue", "Origin", "load_catalogue", "model_key"]

_NOT_ALNUM = re.compile(r"[^0-9a-z]+")
# Words people add or drop around a model name that never tell two models apart.
_NOISE_WORDS = (
    "ipconferencephone",
    "ipphone",
    "videophone",
    "multiplatform",
    "mpp",
    "3pcc",
    "webex",
)

# Words that mark a RoomOS name (Board, Desk and Room Series; the DX models).
_ROOMOS_WORDS = ("room", "desk", "board", "dx")


class Origin(enum.StrEnum):
    """
    Where a catalogue's models come from: it decides what "unknown model" means.
    """

    BUNDLED = "bundled"
    ORG = "org"


def model_key(text: str) -> str:
    """
    Return the comparison key of a model name: lower case, letters and digits only,
    without a leading ``DMS``.
    """
    key = _NOT_ALNUM.sub("", text.casefold())
    return key.removeprefix("dms")


class Catalogue:
    """
    The supported models, indexed by every spelling people use for them.

    Args:
        models: the entries, in the order they are listed (the template's drop-down
            keeps this order).
        origin: the bundled catalogue, or an org's live list.
    """

    def __init__(
        self, models: Iterable[SupportedModel], *, origin: Origin = Origin.BUNDLED
    ) -> None:
        self.models: tuple[SupportedModel, ...] = tuple(models)
        self.origin = origin
        self._index = _build_index(self.models)

    @classmethod
    def from_supported(cls, models: Iterable[SupportedModel]) -> Catalogue:
        """
        Build a catalogue from the live ``supportedDevices`` answer alone.
        """
        return cls(models, origin=Origin.ORG)

    @classmethod
    def for_org(cls, models: Iterable[SupportedModel]) -> Catalogue:
        """
        Build the catalogue rows are judged by in a run: the org's own list, plus
        the bundled RoomOS models it does not name itself.

        Phones are created (or their codes issued) with the model the org lists, so
        only the org's list can say yes to them. A RoomOS code is requested without
        a model (reference §4.5), so no org list governs those devices.
        """
        org = list(models)
        known = {model_key(entry.model) for entry in org} | {
            model_key(entry.display_name) for entry in org
        }
        roomos = [
            entry
            for entry in load_catalogue().models
            if entry.is_roomos
            and model_key(entry.model) not in known
            and model_key(entry.display_name) not in known
        ]
        return cls([*org, *roomos], origin=Origin.ORG)

    def __len__(self) -> int:
        return len(self.models)

    def resolve(self, text: str) -> SupportedModel | None:
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
        for word in _NOISE_WORDS:
            key = key.replace(word, "")
        if not key:
            return []
        # "Room Kit" typos get RoomOS names, "8815" gets phones: a suggestion from
        # the other family is never what was meant.
        roomos = any(word in key for word in _ROOMOS_WORDS)
        names: dict[str, str] = {}
        for entry in self.models:
            if entry.is_roomos != roomos:
                continue
            for spelling in (entry.display_name, entry.model, *entry.aliases):
                full = model_key(spelling)
                names.setdefault(full, entry.display_name)
                # A bare "8815" is far from "cisco8851" as a whole string; compare
                # it with the bare numbers (and "Room Kit" with "roomkit") too.
                names.setdefault(full.removeprefix("cisco"), entry.display_name)
        import difflib  # here: only a model nobody knows needs it

        matches = difflib.get_close_matches(key, list(names), n=limit * 4, cutoff=0.6)
        # Swapped characters ("8815" for "8851") are the commonest typo: rank a
        # candidate with exactly the same characters first.
        matches.sort(key=lambda match: sorted(match) != sorted(key))
        return list(dict.fromkeys(names[match] for match in matches))[:limit]


def _build_index(models: Iterable[SupportedModel]) -> Mapping[str, SupportedModel]:
    """
    Map every key a model answers to onto it; a key two models share is dropped.
    """
    index: dict[str, SupportedModel] = {}
    ambiguous: set[str] = set()
    for entry in models:
        for key in _keys_of(entry):
            if key in index and index[key] is not entry:
                ambiguous.add(key)
            index.setdefault(key, entry)
    for key in ambiguous:
        del index[key]
    return index


def _keys_of(entry: SupportedModel) -> set[str]:
    keys = {model_key(entry.model), model_key(entry.display_name)}
    keys.update(model_key(alias) for alias in entry.aliases)
    for key in tuple(keys):
        for word in _NOISE_WORDS:
            keys.add(key.replace(word, ""))
    for key in tuple(keys):
        # "Cisco 8851" is also typed "8851" and, by its part number, "CP-8851";
        # "Cisco Room Kit" is typed "Room Kit".
        if key.startswith("cisco") and entry.manufacturer in (None, "CISCO"):
            bare = key.removeprefix("cisco")
            keys.add(bare)
            if not entry.is_roomos:
                keys.add("cp" + bare)
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
        SupportedModel(
            model=entry["model"],
            display_name=entry.get("display_name") or entry["model"],
            type=entry.get("type"),
            manufacturer=entry.get("manufacturer"),
            managed_by=entry.get("managed_by"),
            supported_for=tuple(entry.get("supported_for", ())),
            onboarding_methods=tuple(entry.get("onboarding_methods", ())),
            aliases=tuple(entry.get("aliases", ())),
        )
        for entry in document["models"]
    )
