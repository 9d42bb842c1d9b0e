"""
cli/limits_memory.py: the rate limits one command learned, kept for the next.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from provisioner.cli.limits_memory import (
    MAX_AGE,
    MAX_ENTRIES,
    memory_path,
    recall,
    remember,
)

API = "https://webexapis.com/v1"
GOV = "https://api-usgov.webex.com/v1"
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.fixture(name="environ")
def _environ(tmp_path: Path) -> dict[str, str]:
    return {"XDG_STATE_HOME": str(tmp_path / "state")}


def test_a_limit_remembered_is_recalled_for_its_api_alone(
    environ: dict[str, str],
) -> None:
    """Each API keeps its own orgs' limits; a trailing slash is the same API."""
    remember(API, {"org-a": 49.63, "org-b": 19.9}, environ, now=NOW)
    remember(GOV, {"org-a": 5.0}, environ, now=NOW)

    assert dict(recall(API + "/", environ, now=NOW)) == {"org-a": 49.63, "org-b": 19.9}
    assert dict(recall(GOV, environ, now=NOW)) == {"org-a": 5.0}
    assert recall("http://127.0.0.1:8080/v1", environ, now=NOW) == ()


def test_the_file_is_under_xdg_state_home(environ: dict[str, str]) -> None:
    remember(API, {"org-a": 10.0}, environ, now=NOW)

    path = Path(environ["XDG_STATE_HOME"]) / "provisioner" / "limits.json"
    assert memory_path(environ) == path
    assert json.loads(path.read_text())["limits"][0]["org"] == "org-a"


def test_without_xdg_state_home_it_is_under_the_home_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))

    assert memory_path({}) == tmp_path / ".local/state/provisioner/limits.json"


def test_a_newer_limit_replaces_the_older(environ: dict[str, str]) -> None:
    remember(API, {"org-a": 49.6}, environ, now=NOW)
    remember(API, {"org-a": 30.0}, environ, now=NOW + timedelta(hours=1))

    assert recall(API, environ, now=NOW + timedelta(hours=1)) == (("org-a", 30.0),)
    entries = json.loads(memory_path(environ).read_text())["limits"]
    assert len(entries) == 1


def test_a_limit_older_than_max_age_is_forgotten(environ: dict[str, str]) -> None:
    remember(API, {"org-a": 49.6}, environ, now=NOW)

    assert recall(API, environ, now=NOW + MAX_AGE) == (("org-a", 49.6),)
    assert recall(API, environ, now=NOW + MAX_AGE + timedelta(seconds=1)) == ()


def test_the_file_keeps_the_latest_entries(environ: dict[str, str]) -> None:
    """Emulators on passing ports add an API each: the file stays bounded."""
    for number in range(MAX_ENTRIES + 5):
        at = NOW + timedelta(seconds=number)
        remember(f"http://127.0.0.1:{number}/v1", {"org": 1.0}, environ, now=at)

    later = NOW + timedelta(seconds=MAX_ENTRIES + 5)
    entries = json.loads(memory_path(environ).read_text())["limits"]
    assert len(entries) == MAX_ENTRIES
    assert recall(f"http://127.0.0.1:{MAX_ENTRIES + 4}/v1", environ, now=later)
    assert recall("http://127.0.0.1:0/v1", environ, now=later) == ()


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "[]",
        '{"version": 2, "limits": []}',
        '{"version": 1, "limits": {}}',
        "\udcff",
    ],
    ids=["damaged", "a list", "another version", "limits not a list", "not UTF-8"],
)
def test_a_damaged_file_is_ignored_then_replaced(
    environ: dict[str, str], text: str
) -> None:
    """A memory only saves time: what cannot be read is no memory, and the next
    command that learns a limit writes a good file."""
    path = memory_path(environ)
    path.parent.mkdir(parents=True)
    path.write_bytes(text.encode("utf-8", "surrogateescape"))

    assert recall(API, environ, now=NOW) == ()
    remember(API, {"org-a": 20.0}, environ, now=NOW)
    assert recall(API, environ, now=NOW) == (("org-a", 20.0),)


@pytest.mark.parametrize(
    "entry",
    [
        {"api": API, "org": "org-a", "limit": "fast", "learned": NOW.isoformat()},
        {"api": API, "org": "org-a", "limit": True, "learned": NOW.isoformat()},
        {"api": API, "org": "org-a", "limit": -3, "learned": NOW.isoformat()},
        {"api": API, "org": "", "limit": 5, "learned": NOW.isoformat()},
        {"api": API, "org": "org-a", "limit": 5, "learned": "yesterday"},
        {"api": API, "org": "org-a", "limit": 5, "learned": "2026-11-29T12:00:00"},
        "org-a=5",
    ],
    ids=["text", "bool", "negative", "no org", "bad time", "naive time", "a string"],
)
def test_a_malformed_entry_is_skipped(environ: dict[str, str], entry: object) -> None:
    good = {"api": API, "org": "org-b", "limit": 7.5, "learned": NOW.isoformat()}
    path = memory_path(environ)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"version": 1, "limits": [entry, good]}))

    assert recall(API, environ, now=NOW) == (("org-b", 7.5),)


def test_a_folder_that_takes_no_file_is_no_error(unwritable: Path) -> None:
    """Only the next command's head start is lost: no exception reaches the run."""
    environ = {"XDG_STATE_HOME": str(unwritable)}

    remember(API, {"org-a": 20.0}, environ, now=NOW)

    assert recall(API, environ, now=NOW) == ()
