"""
provisioner: bulk provisioning of Webex devices from a spreadsheet.

The documented library API is what ``__all__`` lists; the CLI is a thin layer over it.
"""

from __future__ import annotations

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
