"""
What an export asks for and what each of its lines says (pure).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from provisioner.errors import ConfigError
from provisioner.intake.header import FIELD_ALIASES, header_key, match_headers
from provisioner.inventory.export_rules import (
    EXPORT_COLUMNS,
    MANIFEST_COLUMNS,
    ExportQuery,
    ExportResult,
    export_record,
    list_filters,
    model_as_typed,
    summary_items,
    tags_read_back,
)
from provisioner.models import Device, Target

DEVICE = Device(
    id="DEV1",
    mac="00AABB112233",
    product="Cisco 8851",
    type="phone",
    display_name="Lobby",
    workspace_id="WS1",
    tags=("hq", "floor-1"),
    connection_status="connected",
    created="2026-05-10T09:15:02.417Z",
    serial="FCH2",
    software="sip88xx.14-2",
    ip="10.0.0.7",
)


class TestListFilters:
    def test_every_filter_becomes_its_list_keyword(self) -> None:
        """Each flag given becomes the list call's filter of the same meaning."""
        query = ExportQuery(
            tags=("hq", "floor-1"),
            workspace_id="WS1",
            person_id="P1",
            type="phone",
            connection_status="connected",
            mac="00:aa:bb:11:22:33",
            display_name="Lobby",
            product="Cisco 8851",
        )

        filters = list_filters(query)

        assert filters == {
            "tag": "hq,floor-1",
            "mac": "00AABB112233",
            "workspace_id": "WS1",
            "person_id": "P1",
            "type": "phone",
            "connection_status": "connected",
            "display_name": "Lobby",
            "product": "Cisco 8851",
        }

    def test_no_filter_lists_every_device(self) -> None:
        """An export without flags asks for the whole org."""
        assert list_filters(ExportQuery()) == {}

    def test_repeated_tag_is_asked_once(self) -> None:
        """A tag given twice is one filter."""
        assert list_filters(ExportQuery(tags=("hq", "hq")))["tag"] == "hq"

    def test_tag_with_a_comma_is_refused(self) -> None:
        """The API reads a comma as between two tags, so such a tag is refused."""
        with pytest.raises(ConfigError, match="comma"):
            list_filters(ExportQuery(tags=("a,b",)))

    @pytest.mark.parametrize("tag", ["", "  "])
    def test_an_empty_tag_is_refused_not_dropped(self, tag: str) -> None:
        """--tag "" would otherwise filter nothing: every device exported."""
        with pytest.raises(ConfigError, match="an empty tag filters nothing"):
            list_filters(ExportQuery(tags=("hq", tag)))

    def test_bad_mac_is_refused_with_the_reason(self) -> None:
        """A MAC filter that is not a MAC says why, naming the flag."""
        with pytest.raises(ConfigError, match="--mac"):
            list_filters(ExportQuery(mac="00AABB11223"))


class TestModelAsTyped:
    @pytest.mark.parametrize(
        ("product", "typed"),
        [
            ("DMS Cisco 8851", "Cisco 8851"),
            ("Cisco 8851", "Cisco 8851"),
            ("Cisco 9841", "Cisco 9841"),
            ("DMS Unheard Of 1", "Unheard Of 1"),
            (None, ""),
        ],
    )
    def test_names_the_model_as_people_type_it(
        self, product: str | None, typed: str
    ) -> None:
        """The catalogue's display name, else the product without DMS."""
        assert model_as_typed(product) == typed


class TestExportRecord:
    def test_manifest_columns_first_then_the_device(self) -> None:
        """A line is the manifest's cells, then what the API says, in column order."""
        record = export_record(DEVICE, {"WS1": "Lobby Workspace"})

        assert dict(zip(EXPORT_COLUMNS, record, strict=True)) == {
            "mac": "00AABB112233",
            "model": "Cisco 8851",
            "workspaceId": "WS1",
            "personId": None,
            "tags": "hq;floor-1",
            "deviceId": "DEV1",
            "displayName": "Lobby",
            "productName": "Cisco 8851",
            "type": "phone",
            "connectionStatus": "connected",
            "serial": "FCH2",
            "software": "sip88xx.14-2",
            "ip": "10.0.0.7",
            "created": "2026-05-10T09:15:02.417Z",
            "ownerName": "Lobby Workspace",
        }

    def test_person_device_names_the_person_only(self) -> None:
        """A person's device has a personId and no workspaceId; no name unless known."""
        device = Device(id="DEV2", person_id="P1", tags=())

        record = dict(zip(EXPORT_COLUMNS, export_record(device), strict=True))

        assert (record["workspaceId"], record["personId"]) == (None, "P1")
        assert (record["tags"], record["ownerName"], record["mac"]) == (
            None,
            None,
            None,
        )


class TestTagsReadBack:
    @pytest.mark.parametrize(
        "tags",
        [(), ("hq",), ("hq", "floor-1"), ("hq", "hq"), ("1+1",), ("Room 4 (east)",)],
    )
    def test_tags_a_manifest_splits_back_as_they_were(
        self, tags: tuple[str, ...]
    ) -> None:
        """Tags without a separator, trimmed and not empty come back as they are
        (a tag given twice is written, and read, once)."""
        assert tags_read_back(tags)

    @pytest.mark.parametrize(
        "tags",
        [
            ("a,b",),
            ("hq", "x|y"),
            ("a;b",),
            (" lobby",),
            ("hq", ""),
            ("=1+1",),
            ("#N/A",),
        ],
        ids=["comma", "bar", "semicolon", "spaces", "empty", "formula", "error"],
    )
    def test_tags_a_manifest_reads_as_others(self, tags: tuple[str, ...]) -> None:
        """A separator inside a tag, spaces at its ends, an empty tag, or a cell a
        manifest takes for a formula or a spreadsheet error: other tags come back."""
        assert not tags_read_back(tags)


class TestColumns:
    def test_only_the_manifest_columns_are_manifest_fields(self) -> None:
        """No device column is read as a manifest field (``product`` would be a
        second model column), so an export loads as a manifest."""
        aliases = {key for keys in FIELD_ALIASES.values() for key in keys}

        clashing = [
            column
            for column in EXPORT_COLUMNS
            if column not in MANIFEST_COLUMNS and header_key(column) in aliases
        ]

        assert clashing == []
        assert set(match_headers(Path("x.csv"), EXPORT_COLUMNS)) == {
            "mac",
            "model",
            "workspaceId",
            "personId",
            "tags",
        }


def test_summary_lists_figures_and_filters() -> None:
    """The Summary sheet names the target, the figures and every filter given."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    result = ExportResult(
        devices=2500,
        pages=3,
        started_at=start,
        finished_at=start + timedelta(seconds=2),
        api_calls=4,
        rate_limited=1,
        retries=1,
        final_rate=9.5,
    )

    result = replace(
        result,
        target=Target(base_url="http://127.0.0.1:1/v1", org_id="O1", org_name="Agency"),
    )

    items = dict(summary_items(ExportQuery(tags=("hq",), type="phone"), result))

    assert items["devices"] == 2500
    assert items["pages"] == 3
    assert items["devices/s"] == "1250"
    assert (items["--tag"], items["--type"]) == ("hq", "phone")
    assert items["org"] == "Agency (O1)"
