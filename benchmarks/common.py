"""
Share what the benchmark scripts need: manifests, the emulator process, runs, figures.

Everything here measures from outside, as a user would see it: the emulator runs in its
own process (``provisioner.emulator.run_in_subprocess``) and is driven through its
admin view; ``provisioner run`` runs as a child process whose CPU time and peak RSS
come from ``os.wait4`` for that one child, so other children never blur the figures.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioner.emulator import DEFAULT_TOKEN, run_in_subprocess

__all__ = [
    "OUT",
    "PEOPLE",
    "ROOT",
    "WORKSPACES",
    "CliRun",
    "Emulator",
    "Spread",
    "manifest_rows",
    "markdown_table",
    "owner_rows",
    "run_cli",
    "start_emulator",
    "write_manifest",
    "write_rows",
]

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
ORG = json.loads(
    (ROOT / "provisioner" / "emulator" / "data" / "org.json").read_text("utf-8")
)
WORKSPACES = [item["id"] for item in ORG["workspaces"]]
PEOPLE = [item["id"] for item in ORG["people"]]
MAC_MODEL = "Cisco 8851"  # what people type; the tool maps it to "DMS Cisco 8851"
API_MODEL = "DMS Cisco 8851"
CODE_MODEL = "Cisco 8875"
HEADER = ("mac", "model", "workspaceId", "personId", "tags", "notes")


# -- figures ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Spread:
    """
    The median of repeated measurements with their minimum and maximum.
    """

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        """
        Summarise ``values`` (at least one).
        """
        return cls(statistics.median(values), min(values), max(values))

    def show(self, fmt: str = "{:.2f}", scale: float = 1.0) -> str:
        """
        Format as ``median (min–max)``; one run shows just the value.
        """
        mid = fmt.format(self.median * scale)
        low, high = fmt.format(self.low * scale), fmt.format(self.high * scale)
        if low == high:
            return mid
        return f"{mid} ({low}–{high})"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """
    Render rows as a GitHub-flavoured markdown table with padded columns.
    """
    widths = [
        max(len(str(cells[i])) for cells in [header, *rows]) for i in range(len(header))
    ]

    def line(cells: Sequence[str]) -> str:
        padded = (str(c).ljust(w) for c, w in zip(cells, widths, strict=True))
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


# -- manifests ----------------------------------------------------------------------


def manifest_rows(
    rows: int, *, prefix: int = 0x0B, tags: bool = True, code_every: int = 0
) -> Iterator[dict[str, str]]:
    """
    Yield ``rows`` manifest rows: unique MACs, owners spread over the seeded org.

    Owners alternate between workspaces and people (every seeded owner, more than a hundred), so a pool of
    32 workers never waits on one owner's lock. ``code_every`` > 0 makes every n-th
    row an activation-code row (no MAC).
    """
    for index in range(rows):
        is_code = code_every > 0 and index % code_every == code_every - 1
        on_workspace = index % 2 == 0
        owner = index // 2 % len(WORKSPACES)
        yield {
            "mac": "" if is_code else f"{prefix:02X}{index:010X}",
            "model": CODE_MODEL if is_code else MAC_MODEL,
            "workspaceId": WORKSPACES[owner] if on_workspace else "",
            "personId": "" if on_workspace else PEOPLE[owner],
            "tags": f"wave-{index % 5};floor-{index % 9}" if tags else "",
            "notes": f"desk {index}",
        }


def owner_rows(
    owners: Sequence[tuple[str, str, int]], *, prefix: int = 0x0B, tags: bool = True
) -> Iterator[dict[str, str]]:
    """
    Yield MAC rows for each ``(kind, id, count)`` owner, an owner's rows together (as
    a sheet sorted by place lists them); ``kind`` is "workspace" or "person".
    """
    index = 0
    for kind, owner, count in owners:
        for _ in range(count):
            yield {
                "mac": f"{prefix:02X}{index:010X}",
                "model": MAC_MODEL,
                "workspaceId": owner if kind == "workspace" else "",
                "personId": owner if kind == "person" else "",
                "tags": f"wave-{index % 5};floor-{index % 9}" if tags else "",
                "notes": f"desk {index}",
            }
            index += 1


def write_rows(path: Path, rows: Iterator[dict[str, str]]) -> Path:
    """
    Write manifest rows as a CSV manifest and return its path.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=HEADER, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_manifest(path: Path, rows: int, **options: Any) -> Path:
    """
    Write a CSV manifest of ``rows`` rows (see ``manifest_rows``) and return its path.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=HEADER, lineterminator="\n")
        writer.writeheader()
        writer.writerows(manifest_rows(rows, **options))
    return path


# -- the emulator -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Emulator:
    """
    An emulator running in its own process, driven through its admin view.
    """

    process: subprocess.Popen[str]
    base_url: str

    @property
    def admin_url(self) -> str:
        """
        The admin view's root, ``http://127.0.0.1:PORT/_emulator``.
        """
        return self.base_url.removesuffix("/v1") + "/_emulator"

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.admin_url}/{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # loopback only
            raw = response.read()
        return json.loads(raw) if raw else None

    def reset(self) -> None:
        """
        Forget every device and counter; the fault knobs stay.
        """
        self._call("POST", "reset", {})

    def set_faults(self, **knobs: Any) -> dict[str, Any]:
        """
        Change fault knobs (rate_limit, burst, latency_ms, fault_rate, drop_rate, ...).
        """
        answer: dict[str, Any] = self._call("PATCH", "faults", knobs)
        return answer

    def stats(self) -> dict[str, Any]:
        """
        The emulator's request counters.
        """
        answer: dict[str, Any] = self._call("GET", "stats", None)
        return answer

    def devices(self, org_id: str | None = None) -> list[dict[str, Any]]:
        """
        Every device of an org (default: the seeded one), wire JSON, in creation order.
        """
        path = "devices" if org_id is None else f"devices?orgId={org_id}"
        answer: dict[str, Any] = self._call("GET", path, None)
        return list(answer["items"])


@contextlib.contextmanager
def start_emulator(
    args: Sequence[str] = (), *, log: Path | None = None
) -> Iterator[Emulator]:
    """
    Run ``python -m provisioner.emulator --port 0 ARGS`` until the block ends.

    With ``log``, the emulator's stderr goes to that file: aiohttp prints a traceback
    there for every request a SIGKILLed client abandoned, which is expected noise.
    """
    with contextlib.ExitStack() as stack:
        with _stderr_to(log):
            process, base_url = stack.enter_context(run_in_subprocess(args))
        yield Emulator(process, base_url)


@contextlib.contextmanager
def _stderr_to(path: Path | None) -> Iterator[None]:
    """
    Point file descriptor 2 at ``path`` while a child is started (it inherits it).
    """
    if path is None:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with path.open("ab") as log:
            os.dup2(log.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


# -- provisioner runs ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CliRun:
    """
    One finished ``provisioner`` child process, measured from outside.

    ``duration`` is the run's own figure from its summary ("took 12.3s": the time
    ``provision()`` ran, start-up and report writing excluded); ``wall`` is what the
    user waited for the whole command.
    """

    code: int
    wall: float
    cpu: float
    max_rss_mb: float
    stdout: str
    stderr: str

    @property
    def duration(self) -> float | None:
        """
        The run's duration from its summary line, or None when it printed none.
        """
        match = re.search(r"took ([0-9.]+)s", self.stdout)
        return float(match[1]) if match else None


def provisioner_command(*args: str) -> list[str]:
    """
    The command line of ``provisioner ARGS`` with this interpreter.
    """
    return [sys.executable, "-m", "provisioner", *args]


def run_cli(
    args: Sequence[str],
    *,
    base_url: str | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
) -> CliRun:
    """
    Run ``provisioner ARGS`` as a child process; measure its wall, CPU and peak RSS.

    The token goes in through the environment, as the design asks of users.
    """
    env = {**os.environ, "WEBEX_ACCESS_TOKEN": DEFAULT_TOKEN}
    if base_url is not None:
        env["WEBEX_BASE_URL"] = base_url
    with (
        tempfile.TemporaryFile("w+") as out,
        tempfile.TemporaryFile("w+") as err,
    ):
        started = time.perf_counter()
        process = subprocess.Popen(
            provisioner_command(*args), stdout=out, stderr=err, env=env, cwd=cwd
        )
        code, usage = wait_child(process, timeout)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    return CliRun(
        code=code,
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        max_rss_mb=usage.ru_maxrss / 1024,  # KiB on Linux
        stdout=stdout,
        stderr=stderr,
    )


def wait_child(
    process: subprocess.Popen[Any], timeout: float | None = None
) -> tuple[int, Any]:
    """
    Reap one child with ``os.wait4`` and return its exit code and its own rusage.

    ``RUSAGE_CHILDREN`` would mix every child this process ever waited for (and keep
    the largest peak RSS of them all); ``wait4`` reports this child alone.
    """
    if timeout is None:
        _, status, usage = os.wait4(process.pid, 0)
        return _reaped(process, status), usage
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid == process.pid:
            break
        if time.monotonic() > deadline:
            process.kill()
            pid, status, usage = os.wait4(process.pid, 0)
            break
        time.sleep(0.02)
    return _reaped(process, status), usage


def _reaped(process: subprocess.Popen[Any], status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    process.returncode = code  # Popen must not try to reap it again
    return code
