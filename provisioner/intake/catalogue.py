"""
The catalogue of supported device models, and the lookup from what people type.

People write ``Cisco 8851``, ``cisco-8851`` or just ``8851``; the API wants
``DMS Cisco 8851`` — but ``Cisco 9841`` for the 98xx, which have no ``DMS`` prefix.
Lookups compare a key that ignores case, spaces and punctuation and an optional
``DMS`` prefix, so both spellings of every model resolve; a model's ``aliases``
(``Board Pro 75`` for the Cisco Board Pro, ``Cisco Desk Phone 9841`` for the 9841)
resolve too.

A name nothing resolves gets a "did you mean" from its own device class only: a
name that says phone, conference, ATA or DECT, or carries a phone's number, is never
offered a RoomOS device, nor a RoomOS name a phone. A product the data lists under
``other_products`` (the 8851NR, a product of its own) is offered nothing: it is
named for what it is instead of as a typo of another model.

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
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any

from provisioner.models import SupportedModel

__all__ = ["Catalogue", "Origin", "OtherProduct", "load_catalogue", "model_key"]

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
# What marks a phone's name, checked first ("Desk Phone 9841" is a phone): the words
# of the phone, ATA and DECT families, or a run of three digits, which every Cisco
# phone, ATA and DECT base number has and no RoomOS name does (a test keeps it so).
_PHONE_MARK = re.compile(r"phone|conference|\bata\b|dect|[0-9]{3}")
_NOT_DIGIT = re.compile(r"[^0-9]+")


class Origin(enum.StrEnum):
    """
    Where a catalogue's models come from: it decides what "unknown model" means.
    """

    BUNDLED = "bundled"
    ORG = "org"


@dataclass(frozen=True, slots=True, kw_only=True)
class OtherProduct:
    """
    A product a Cisco document names that the catalogue deliberately does not list.

    ``product`` is what Cisco calls it; ``note`` says why no listed model stands in
    for it, in words that follow "this is the <product>, ".
    """

    names: tuple[str, ...]
    product: str
    note: str


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
        others: products named so that a row naming one is told what it is.
    """

    def __init__(
        self,
        models: Iterable[SupportedModel],
        *,
        origin: Origin = Origin.BUNDLED,
        others: Iterable[OtherProduct] = (),
    ) -> None:
        self.models: tuple[SupportedModel, ...] = tuple(models)
        self.origin = origin
        self.others: tuple[OtherProduct, ...] = tuple(others)
        self._index = _build_index(self.models)
        self._others = {
            key: other
            for other in self.others
            for key in _name_keys(other.names, cisco=True, phone=True)
        }

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
        the bundled RoomOS models it does not name itself (and the bundled other
        products, for what an unknown name is told).

        Phones are created (or their codes issued) with the model the org lists, so
        only the org's list can say yes to them. A RoomOS code is requested without
        a model (reference §4.5), so no org list governs those devices.
        """
        bundled = load_catalogue()
        org = [_with_bundled_aliases(entry, bundled) for entry in models]
        known = {model_key(entry.model) for entry in org} | {
            model_key(entry.display_name) for entry in org
        }
        roomos = [
            entry
            for entry in bundled.models
            if entry.is_roomos
            and model_key(entry.model) not in known
            and model_key(entry.display_name) not in known
        ]
        return cls([*org, *roomos], origin=Origin.ORG, others=bundled.others)

    def __len__(self) -> int:
        return len(self.models)

    def bundled_entry(self, entry: SupportedModel) -> SupportedModel | None:
        """
        The entry of this catalogue for the same model as ``entry`` (an org's list
        names it by its API model or its display name), if there is one.
        """
        for name in (entry.model, entry.display_name):
            found = self._index.get(model_key(name))
            if found is not None:
                return found
        return None

    def resolve(self, text: str) -> SupportedModel | None:
        """
        Return the model ``text`` names, or None when it names none (or several).
        """
        key = model_key(text)
        found = self._index.get(key)
        if found is None:
            found = self._index.get(_without_noise(key))
        return found

    def other_product(self, text: str) -> OtherProduct | None:
        """
        Return the unlisted product ``text`` names, if the data names it.
        """
        key = model_key(text)
        return self._others.get(key) or self._others.get(_without_noise(key))

    def suggest(self, text: str, *, limit: int = 3) -> list[str]:
        """
        Return the display names closest to ``text``, best first (for "did you mean"),
        all of its device class; nothing for a product listed as another's.
        """
        key = _without_noise(model_key(text))
        if not key or self.other_product(text) is not None:
            return []
        # "Room Kit" typos get RoomOS names, "8815" gets phones: a suggestion from
        # the other class is never what was meant, and taking it would turn a phone's
        # MAC row into an activation-code row for another device. A phone's marks
        # win: "Desk Phone 9841" says "desk" too.
        roomos = _PHONE_MARK.search(text.casefold()) is None and any(
            word in key for word in _ROOMOS_WORDS
        )
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
        # candidate with exactly the same characters first, then one with the same
        # number ("8832 Conference Phone" is the 8832 before the 7832).
        digits = _NOT_DIGIT.sub("", key)
        matches.sort(
            key=lambda match: (
                sorted(match) != sorted(key),
                _NOT_DIGIT.sub("", match) != digits,
            )
        )
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


def _without_noise(key: str) -> str:
    for word in _NOISE_WORDS:
        key = key.replace(word, "")
    return key


def _keys_of(entry: SupportedModel) -> set[str]:
    return _name_keys(
        (entry.model, entry.display_name, *entry.aliases),
        cisco=entry.manufacturer in (None, "CISCO"),
        phone=not entry.is_roomos,
    )


def _name_keys(names: Iterable[str], *, cisco: bool, phone: bool) -> set[str]:
    """
    Return every key the names answer to: as written, without noise words, and
    (a Cisco product's) without "Cisco" or, a phone's, with its part number's "CP".
    """
    keys = {model_key(name) for name in names}
    for key in tuple(keys):
        for word in _NOISE_WORDS:
            keys.add(key.replace(word, ""))
    for key in tuple(keys):
        # "Cisco 8851" is also typed "8851" and, by its part number, "CP-8851";
        # "Cisco Room Kit" is typed "Room Kit".
        if key.startswith("cisco") and cisco:
            bare = key.removeprefix("cisco")
            keys.add(bare)
            if phone:
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
        (
            SupportedModel(
                model=entry["model"],
                display_name=entry.get("display_name") or entry["model"],
                type=entry.get("type"),
                manufacturer=entry.get("manufacturer"),
                managed_by=entry.get("managed_by"),
                supported_for=tuple(entry.get("supported_for", ())),
                onboarding_methods=tuple(entry.get("onboarding_methods", ())),
                aliases=tuple(map(_alias_name, entry.get("aliases", ()))),
            )
            for entry in document["models"]
        ),
        others=(
            OtherProduct(
                names=tuple(other["names"]),
                product=other["product"],
                note=other["note"],
            )
            for other in document.get("other_products", ())
        ),
    )


def _alias_name(alias: str | dict[str, Any]) -> str:
    # An alias is a bare name, or {"name", "sources"} citing the Cisco documents
    # that use it; the sources are for people (and a test), not for the lookup.
    return alias if isinstance(alias, str) else str(alias["name"])


def _with_bundled_aliases(entry: SupportedModel, bundled: Catalogue) -> SupportedModel:
    """
    An org's model with the names people type for it that the bundled catalogue
    knows ("Cisco Desk Phone 9841" for the 9841): the org's list gives only its API
    model and display name, so a name that passes offline would fail against it.
    """
    if entry.aliases:
        return entry
    found = bundled.bundled_entry(entry)
    if found is None or not found.aliases:
        return entry
    return replace(entry, aliases=found.aliases)
