"""
Manifest intake: a CSV, TSV or XLSX file → a validated, normalised ``Manifest``.

The public face of three modules, so the report module can reuse the first step to
read reports back:

``read_table`` (``sheet.py``)
    the file → a ``RawTable`` of trimmed cell texts, with the row numbers a
    spreadsheet shows (header = row 1). Nothing is ever read as a number or a date.
    The only place that touches openpyxl for input.
``match_headers`` (``header.py``)
    which column supplies which field.
``build_manifest`` (``validation.py``)
    header matching, normalisation and validation → ``Manifest``. A bad row becomes a
    ``Row`` with ``problems``; only a file that cannot be used at all raises.

No API call happens here: the model checks use the offline catalogue.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from pathlib import Path

from provisioner.intake.catalogue import Catalogue
from provisioner.intake.header import FIELD_ALIASES, header_key, match_headers
from provisioner.intake.sheet import RawTable, read_table
from provisioner.intake.validation import PASSWORD_MASK, build_manifest, split_tags
from provisioner.models import Manifest

__all__ = [
    "FIELD_ALIASES",
    "PASSWORD_MASK",
    "RawTable",
    "build_manifest",
    "header_key",
    "load_manifest",
    "match_headers",
    "read_table",
    "split_tags",
]


def load_manifest(
    path: Path, *, sheet: str | None = None, catalogue: Catalogue | None = None
) -> Manifest:
    """
    Read and validate a manifest file.

    Raises:
        ManifestReadError: the file cannot be read.
        ManifestError: the header row is unusable (``MissingColumnError`` when a
            required column is absent).
    """
    with collector_paused():
        return build_manifest(read_table(Path(path), sheet=sheet), catalogue=catalogue)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """
    Pause Python's cyclic garbage collector for the block; restore it after.

    Reading and checking 100,000 rows makes some 400,000 tuples and rows and no
    reference cycle: the collector would walk the growing heap hundreds of times for
    nothing, a sixth of the time the reading takes. Reference counting still frees
    every object as usual. A collector that was on is given back with every object
    made so far frozen (``gc.freeze``).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            # The objects made meanwhile (the manifest: they live as long as the
            # command) are set aside for good, or the first collection after this
            # would walk them all, and again as they age (~0.15 s for 100,000 rows).
            # The cost: a reference cycle already unreachable now is never freed.
            gc.freeze()
            gc.enable()
