"""
The model catalogue: every spelling people use resolves to the API's model string.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import provisioner
from provisioner.intake.catalogue import _PHONE_MARK, Catalogue, load_catalogue
from provisioner.models import SupportedModel

PACKAGE = Path(provisioner.__file__).parent
EMULATOR_DEVICES = PACKAGE / "emulator" / "data" / "supported_devices.json"
MODELS_JSON = PACKAGE / "intake" / "data" / "models.json"
SOURCES_MD = PACKAGE / "intake" / "data" / "SOURCES.md"


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


# The Cisco phones that help.webex.com article n9r1aac lists as registrable by
# activation code (data/SOURCES.md); every other Cisco phone there is MAC only.
ACTIVATION_CODE_PHONES = (
    *("6821", "6841", "6851", "6861", "6871", "7811", "7821", "7841", "7861"),
    *("8811", "8841", "8851", "8861", "8845", "8865", "7832", "8832", "8875"),
    *("9841", "9851", "9861", "9871"),
)
MAC_ONLY_PHONES = ("191", "192", "DBS110", "DBS210", "840", "860")


@pytest.mark.parametrize("number", ACTIVATION_CODE_PHONES)
def test_listed_phones_take_a_mac_or_an_activation_code(number: str) -> None:
    """Every Cisco phone Cisco lists for activation codes takes a MAC too (8875 included)."""
    entry = load_catalogue().resolve(f"Cisco {number}")

    assert entry is not None
    assert (entry.supports_mac, entry.supports_activation_code) == (True, True)
    assert not entry.is_roomos


@pytest.mark.parametrize("number", MAC_ONLY_PHONES)
def test_other_cisco_devices_take_a_mac_only(number: str) -> None:
    """ATAs, DECT bases and the wireless phones are registered by MAC only."""
    entry = load_catalogue().resolve(f"Cisco {number}")

    assert entry is not None
    assert (entry.supports_mac, entry.supports_activation_code) == (True, False)


def test_no_owner_kind_is_refused_without_a_source() -> None:
    """No Cisco source limits a bundled model to people or to workspaces: both allowed."""
    for entry in load_catalogue().models:
        assert (entry.model, entry.supports_people, entry.supports_places) == (
            entry.model,
            True,
            True,
        )


def test_third_party_facts_follow_the_spec_example() -> None:
    """The spec lists the Polycom EE400 as Cisco-managed; customer-managed needs a password."""
    catalogue = load_catalogue()
    ee400 = catalogue.resolve("Polycom EE400")
    two_n = catalogue.resolve("2N Customer Managed")
    yealink = catalogue.resolve("Yealink T54W")
    assert ee400 is not None
    assert two_n is not None
    assert yealink is not None

    assert (ee400.needs_password, two_n.needs_password, yealink.needs_password) == (
        False,
        True,
        True,
    )


ROOMOS_NAMES = [
    ("Cisco Room Kit", "Cisco Room Kit"),
    ("Room Kit", "Cisco Room Kit"),
    ("Webex Room Kit Mini", "Cisco Room Kit Mini"),
    ("Room Kit Plus", "Cisco Room Kit Plus"),
    ("Room Kit Pro", "Cisco Room Kit Pro"),
    ("Room Kit EQ", "Cisco Room Kit EQ"),
    ("Room Bar", "Cisco Room Bar"),
    ("Room Bar Pro", "Cisco Room Bar Pro"),
    ("Room 55", "Cisco Room 55"),
    ("Room 70 G2", "Cisco Room 70 G2"),
    ("Desk", "Cisco Desk"),
    ("Desk Mini", "Cisco Desk Mini"),
    ("Desk Pro", "Cisco Desk Pro"),
    ("Board Pro 75", "Cisco Board Pro"),
    ("Board Pro 55", "Cisco Board Pro"),
    ("Cisco Board Pro 75 G2", "Cisco Board Pro G2"),
    ("Webex Board 55", "Cisco Webex Board 55S"),
    ("DX80", "Cisco Webex DX80"),
]


@pytest.mark.parametrize(("text", "name"), ROOMOS_NAMES)
def test_roomos_names_and_aliases_resolve(text: str, name: str) -> None:
    """RoomOS devices resolve by display name and the aliases people type."""
    entry = load_catalogue().resolve(text)

    assert entry is not None
    assert entry.display_name == name
    assert entry.is_roomos


def test_roomos_devices_onboard_by_activation_code_for_either_owner() -> None:
    """Every RoomOS model takes an activation code only, for a workspace or a person."""
    roomos = [entry for entry in load_catalogue().models if entry.is_roomos]

    assert len(roomos) >= 20
    for entry in roomos:
        assert (entry.supports_mac, entry.supports_activation_code) == (False, True)
        assert (entry.supports_people, entry.supports_places) == (True, True)


@pytest.mark.parametrize(
    "text", ["Room Kitt", "Room Kit Ultra", "Board Pro 85", "Desk Max"]
)
def test_roomos_typos_suggest_roomos_devices(text: str) -> None:
    """A near miss on a RoomOS name suggests RoomOS devices, never a phone."""
    catalogue = load_catalogue()
    suggestions = catalogue.suggest(text)

    assert suggestions
    for name in suggestions:
        entry = catalogue.resolve(name)
        assert entry is not None
        assert entry.is_roomos, (text, suggestions)


def test_every_fact_names_its_source() -> None:
    """Each bundled model cites at least one source, and every cited source is described."""
    document = json.loads(MODELS_JSON.read_text(encoding="utf-8"))
    sources = document["sources"]
    notes = SOURCES_MD.read_text(encoding="utf-8")

    for entry in document["models"]:
        assert entry["sources"], entry["model"]
        assert set(entry["sources"]) <= set(sources), entry["model"]
        for alias in entry.get("aliases", ()):
            if isinstance(alias, dict):
                assert alias["sources"], alias["name"]
                assert set(alias["sources"]) <= set(sources), alias["name"]
    for other in document["other_products"]:
        assert other["sources"], other["names"]
        assert set(other["sources"]) <= set(sources), other["names"]
    for key, source in sources.items():
        assert source["url"].startswith("https://"), key
        assert key in notes, key
        assert source["url"] in notes, key


def test_packaged_catalogue_matches_the_emulator() -> None:
    """The emulator's org lists the bundled phones alike; it may refuse more owner kinds."""
    wire = json.loads(EMULATOR_DEVICES.read_text(encoding="utf-8"))["devices"]
    expected = {
        entry["model"]: (
            entry["displayName"],
            entry["managedBy"],
            tuple(entry["onboardingMethod"]),
        )
        for entry in wire
    }
    bundled = [entry for entry in load_catalogue().models if not entry.is_roomos]

    actual = {
        entry.model: (entry.display_name, entry.managed_by, entry.onboarding_methods)
        for entry in bundled
    }

    assert actual == expected
    for entry in wire:
        assert set(entry["supportedFor"]) <= {"PEOPLE", "PLACE"}


def test_org_catalogue_adds_the_roomos_family_to_the_org_list() -> None:
    """An org's catalogue is its own list plus the RoomOS models it does not name."""
    org = [SupportedModel(model="DMS Cisco 9999", display_name="Cisco 9999")]

    catalogue = Catalogue.for_org(org)

    assert catalogue.resolve("Cisco 9999") is not None
    assert catalogue.resolve("Cisco 8851") is None
    room_kit = catalogue.resolve("Room Kit")
    assert room_kit is not None
    assert room_kit.is_roomos


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


# The names Cisco's documents give these families (data/SOURCES.md): "Cisco Desk
# Phone 9841" (help.webex.com lukemeb), "Cisco IP Phone 7841" and "Cisco IP Conference
# Phone 8832" (the Multiplatform Firmware guides), "Cisco ATA 192" (ATA 190 Series).
CISCO_NAMES = [
    ("Cisco Desk Phone 9841", "Cisco 9841"),
    ("Cisco Desk Phone 9851", "Cisco 9851"),
    ("Cisco Desk Phone 9861", "Cisco 9861"),
    ("Cisco Desk Phone 9871", "Cisco 9871"),
    ("Desk Phone 9851", "Cisco 9851"),
    ("desk phone 9871", "Cisco 9871"),
    ("Cisco IP Phone 6871", "DMS Cisco 6871"),
    ("Cisco IP Phone 7841", "DMS Cisco 7841"),
    ("IP Phone 7821", "DMS Cisco 7821"),
    ("Cisco IP Phone 8865", "DMS Cisco 8865"),
    ("IP Phone 8851", "DMS Cisco 8851"),
    ("Cisco IP Conference Phone 7832", "DMS Cisco 7832"),
    ("IP Conference Phone 8832", "DMS Cisco 8832"),
    ("Cisco Video Phone 8875", "DMS Cisco 8875"),
    ("Cisco ATA 191", "DMS Cisco 191"),
    ("Cisco ATA 192", "DMS Cisco 192"),
    ("ATA 191", "DMS Cisco 191"),
    ("ATA 192", "DMS Cisco 192"),
    ("Cisco ATA 192 Multiplatform Analog Telephone Adapter", "DMS Cisco 192"),
]


@pytest.mark.parametrize(("text", "model"), CISCO_NAMES)
def test_cisco_product_names_resolve(text: str, model: str) -> None:
    """The names Cisco's documents give its phones and ATAs resolve to those models."""
    entry = load_catalogue().resolve(text)

    assert entry is not None
    assert (entry.model, entry.is_roomos) == (model, False)


def test_desk_phone_9841_is_the_phone_not_a_desk() -> None:
    """``Cisco Desk Phone 9841`` is the 9841 phone (MAC or code), not a RoomOS Desk."""
    entry = load_catalogue().resolve("Cisco Desk Phone 9841")

    assert entry is not None
    assert (entry.display_name, entry.type, entry.supports_mac) == (
        "Cisco 9841",
        "DESK_PHONE",
        True,
    )


def test_every_phone_alias_cites_its_source() -> None:
    """Each alias of a phone, ATA or DECT model names the Cisco documents that use it."""
    document = json.loads(MODELS_JSON.read_text(encoding="utf-8"))
    phones = [entry for entry in document["models"] if entry["type"] != "ROOM_OS"]

    aliases = [alias for entry in phones for alias in entry.get("aliases", ())]

    assert len(aliases) >= 25
    for alias in aliases:
        assert isinstance(alias, dict), alias
        assert alias["sources"], alias["name"]


def test_every_alias_resolves_to_its_own_model() -> None:
    """No alias is shared with (and so lost to) another model."""
    catalogue = load_catalogue()

    for entry in catalogue.models:
        for alias in entry.aliases:
            assert catalogue.resolve(alias) is entry, alias


@pytest.mark.parametrize(
    "text",
    [
        "Cisco Desk Phone 9841",
        "Desk Phone 9851",
        "Cisco Desk Phone 9800",
        "Desk Phone",
        "Desk Phone 9814",
        "Cisco Desk 9841",
        "8832 Conference Phone",
        "Conference Phone",
        "Cisco ATA 19",
        "Board 8851",
    ],
)
def test_phone_like_names_are_never_offered_a_roomos_device(text: str) -> None:
    """A name saying phone, conference or ATA, or with a phone's number, gets phones only."""
    catalogue = load_catalogue()

    suggestions = catalogue.suggest(text)

    assert suggestions, text
    for name in suggestions:
        entry = catalogue.resolve(name)
        assert entry is not None
        assert not entry.is_roomos, (text, suggestions)


def test_no_roomos_name_looks_like_a_phone() -> None:
    """No RoomOS name or alias carries a phone's marks, so the class rule never misfires."""
    for entry in load_catalogue().models:
        if entry.is_roomos:
            for name in (entry.model, entry.display_name, *entry.aliases):
                assert _PHONE_MARK.search(name.casefold()) is None, name


def test_a_reordered_conference_phone_suggests_its_number_first() -> None:
    """``8832 Conference Phone`` suggests the Cisco 8832 first, not the 7832."""
    assert load_catalogue().suggest("8832 Conference Phone")[0] == "Cisco 8832"


@pytest.mark.parametrize(
    "text", ["8851NR", "Cisco 8851NR", "Cisco IP Phone 8851NR", "CP-8851NR"]
)
def test_the_8851nr_is_not_taken_for_the_8851(text: str) -> None:
    """The 8851 No Radio variant, a product of its own, is named, never offered the 8851."""
    catalogue = load_catalogue()

    other = catalogue.other_product(text)

    assert catalogue.resolve(text) is None
    assert catalogue.suggest(text) == []
    assert other is not None
    assert other.product == "Cisco IP Phone 8851 No Radio variant (CP-8851NR)"


def test_an_org_catalogue_names_other_products_it_does_not_list() -> None:
    """A run's catalogue still knows the 8851NR for what it is; an org listing it wins."""
    lists_it = SupportedModel(model="DMS Cisco 8851NR", display_name="Cisco 8851NR")

    without = Catalogue.for_org(
        [SupportedModel(model="DMS Cisco 8851", display_name="Cisco 8851")]
    )
    with_it = Catalogue.for_org([lists_it])

    assert without.other_product("8851NR") is not None
    assert without.suggest("8851NR") == []
    assert with_it.resolve("8851NR") is lists_it


@pytest.mark.parametrize(
    ("typed", "model"),
    [
        ("Cisco Desk Phone 9841", "Cisco 9841"),
        ("Desk Phone 9841", "Cisco 9841"),
        ("Cisco ATA 192", "DMS Cisco 192"),
        ("ATA 192", "DMS Cisco 192"),
    ],
)
def test_an_orgs_list_knows_the_names_people_type_too(typed: str, model: str) -> None:
    """The org's supportedDevices gives a model's API name and display name alone:
    the names the bundled catalogue knows for it resolve against the org's list
    too, or a row valid offline is refused by validate --live and the run."""
    org = Catalogue.for_org(
        [
            SupportedModel(
                model="Cisco 9841",
                display_name="Cisco 9841",
                onboarding_methods=("MAC_ADDRESS",),
            ),
            SupportedModel(
                model="DMS Cisco 192",
                display_name="Cisco 192",
                onboarding_methods=("MAC_ADDRESS",),
            ),
        ]
    )

    found = org.resolve(typed)

    assert found is not None
    assert found.model == model
