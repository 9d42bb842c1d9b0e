"""
provisioner: bulk provisioning of Webex devices from a spreadsheet.

The documented library API is what ``__all__`` lists; the CLI is a thin layer over it.
"""

from __future__ import annotations

import importlib

# Not ``typing.TYPE_CHECKING``: importing ``typing`` would cost the command line a few
# milliseconds before it can answer Ctrl-C (see ``_LAZY``); type checkers know both.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from provisioner.errors import (
        ApiError,
        AuthError,
        ConfigError,
        ManifestError,
        OutcomeUnknownError,
        PermanentError,
        ProvisionerError,
        TransientError,
    )
    from provisioner.intake.manifest import load_manifest
    from provisioner.models import Manifest, Outcome, Row, Status, TagMode
    from provisioner.run.engine import provision
    from provisioner.settings import RateControl, RetryPolicy, Settings

__all__ = [
    "ApiError",
    "AuthError",
    "ConfigError",
    "Manifest",
    "ManifestError",
    "Outcome",
    "OutcomeUnknownError",
    "PermanentError",
    "ProvisionerError",
    "RateControl",
    "RetryPolicy",
    "Row",
    "Settings",
    "Status",
    "TagMode",
    "TransientError",
    "load_manifest",
    "provision",
]

# Every name is imported on first use. ``provisioner validate`` needs neither the
# engine (the HTTP client, anyio) nor, until it reads a file, the intake modules; and
# the command line's first statements run before the models are built (a tenth of a
# second), so a Ctrl-C then is the command's to answer (``cli.interrupted``).
_LAZY = {
    **dict.fromkeys(
        (
            "ApiError",
            "AuthError",
            "ConfigError",
            "ManifestError",
            "OutcomeUnknownError",
            "PermanentError",
            "ProvisionerError",
            "TransientError",
        ),
        "provisioner.errors",
    ),
    **dict.fromkeys(
        ("Manifest", "Outcome", "Row", "Status", "TagMode"), "provisioner.models"
    ),
    **dict.fromkeys(("RateControl", "RetryPolicy", "Settings"), "provisioner.settings"),
    "load_manifest": "provisioner.intake.manifest",
    "provision": "provisioner.run.engine",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'provisioner' has no attribute {name!r}")
