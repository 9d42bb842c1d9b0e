"""
Run the README's demo: the example manifest into the bundled emulator, end to end.

``make demo`` runs this. It starts the emulator in its own process on a free loopback
port, with a little latency and a rate limit so the progress bar and the adaptive rate
control have something to show, then runs

    WEBEX_ACCESS_TOKEN=emulator-token \
        provisioner run manifests/example.csv --base-url <emulator> --fresh

(the token travels in the environment, never on the command line), lets it print its
progress, summary and report paths, stops the emulator and exits with the run's code.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click

from provisioner.emulator.config import DEFAULT_TOKEN
from provisioner.emulator.harness import run_in_subprocess

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = Path("manifests") / "example.csv"

# Enough friction to watch: ~120 ms per call and a 20 requests/s limit (burst 5) that
# the run has to find by itself. The example manifest still finishes in seconds.
EMULATOR_ARGS = (
    "--latency-ms",
    "120",
    "--jitter-ms",
    "60",
    "--rate-limit",
    "20",
    "--burst",
    "5",
)


def main() -> int:
    """
    Run the demo and return the run's exit code.
    """
    os.chdir(ROOT)
    if not MANIFEST.exists():
        click.echo(f"demo: {MANIFEST} is missing from this checkout", err=True)
        return 2
    with run_in_subprocess(EMULATOR_ARGS) as (_emulator, base_url):
        click.secho(f"emulator listening on {base_url}", fg="cyan")
        command = ["run", str(MANIFEST), "--base-url", base_url, "--fresh"]
        click.secho(
            f"$ WEBEX_ACCESS_TOKEN=… provisioner {' '.join(command)}", fg="cyan"
        )
        env = {**os.environ, "WEBEX_ACCESS_TOKEN": DEFAULT_TOKEN}
        env.pop("WEBEX_BASE_URL", None)
        process = subprocess.Popen(
            [sys.executable, "-m", "provisioner", *command], env=env
        )
        while True:
            try:
                code = process.wait()
                break
            except KeyboardInterrupt:
                # The run got the same Ctrl-C: let it save its state and exit 130.
                continue
    click.secho(f"demo finished with exit code {code}", fg="cyan")
    return code


if __name__ == "__main__":
    sys.exit(main())
