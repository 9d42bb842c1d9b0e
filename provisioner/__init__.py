"""
provisioner: bulk provisioning of Webex devices from a spreadsheet.

The documented library API is what ``__all__`` lists; the CLI is a thin layer over it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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
from provisioner.models import Manifest, Outcome, Row, Status, TagMode
from provisioner.settings import RateControl, RetryPolicy, Settings

if TYPE_CHECKING:
    from provisioner.intake.manifest import load_manifest
    from provisioner.run.engine import provision

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

# Imported on first use: ``provisioner validate`` needs neither the engine (the HTTP
# client, anyio) nor, until it reads a file, the intake modules.
_LAZY = {
    "load_manifest": "provisioner.intake.manifest",
    "provision": "provisioner.run.engine",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'provisioner' has no attribute {name!r}")
