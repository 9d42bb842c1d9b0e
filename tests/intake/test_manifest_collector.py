"""
load_manifest pauses the cyclic garbage collector while it reads and checks (a
100,000-row sheet makes no reference cycle, and the collector cost a sixth of the
time), and always gives it back as it found it.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest

from provisioner.errors import ManifestError
from provisioner.intake import manifest as manifest_module
from provisioner.intake.manifest import load_manifest


class TestCollectorPaused:
    """load_manifest pauses the cyclic collector while it reads, and only then."""

    def test_the_collector_is_back_on_after_a_manifest(self, tmp_path: Path) -> None:
        path = tmp_path / "m.csv"
        path.write_text("mac,model,workspaceId\n,Cisco 8875,ws\n")
        seen: list[bool] = []
        original = manifest_module.build_manifest

        def spying(*args: Any, **kwargs: Any) -> Any:
            seen.append(gc.isenabled())
            return original(*args, **kwargs)

        assert gc.isenabled()
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(manifest_module, "build_manifest", spying)
            load_manifest(path)
        assert seen == [False]
        assert gc.isenabled()

    def test_the_collector_is_back_on_after_a_refused_file(
        self, tmp_path: Path
    ) -> None:
        with pytest.raises(ManifestError):
            load_manifest(tmp_path / "missing.csv")
        assert gc.isenabled()

    def test_the_objects_made_meanwhile_are_frozen_out_of_collections(
        self, tmp_path: Path
    ) -> None:
        """
        The manifest is set aside (``gc.freeze``): no collection after the load walks
        its rows, which cost ~0.15 s for 100,000 of them.
        """
        path = tmp_path / "m.csv"
        path.write_text("mac,model,workspaceId\n,Cisco 8875,ws\n")
        gc.unfreeze()
        try:
            manifest = load_manifest(path)
            assert gc.get_freeze_count() > 0
            assert not any(
                row is manifest.rows[0] for row in gc.get_objects(generation=2)
            )
        finally:
            gc.unfreeze()

    def test_a_collector_turned_off_before_stays_off(self, tmp_path: Path) -> None:
        path = tmp_path / "m.csv"
        path.write_text("mac,model,workspaceId\n,Cisco 8875,ws\n")
        gc.unfreeze()
        gc.disable()
        try:
            load_manifest(path)
            assert not gc.isenabled()
            assert gc.get_freeze_count() == 0  # the caller's collector: untouched
        finally:
            gc.enable()
