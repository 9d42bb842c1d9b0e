"""Where things are in the repository, for tests in any folder below ``tests/``."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MANIFESTS = REPO / "manifests"
EMULATOR_ORG = REPO / "provisioner" / "emulator" / "data" / "org.json"
TESTS = REPO / "tests"
