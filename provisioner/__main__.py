"""
``python -m provisioner`` runs the command-line interface.
"""

from __future__ import annotations

from provisioner.cli import main

main()
