"""
Every command, every failure, one sentence: the matrix of what stops a command before
it can do anything, against an emulator process (or nothing at all), each ending with
exit 2 and a single ``Error:`` line saying what to do, never a traceback.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from emulated import (
    Emulator,
    code_rows,
    invoke,
    phone_rows,
    read_report,
    write_manifest,
)

from provisioner.cli import codes as codes_module
from provisioner.cli import export as export_module
from provisioner.cli import live_checks
from provisioner.cli import run as run_module
from provisioner.emulator.config import DEFAULT_TOKEN
from provisioner.emulator.harness import run_in_subprocess
from provisioner.intake.manifest import load_manifest
from provisioner.models import Outcome, RunStats, Status
from provisioner.report.files import write_report
from provisioner.settings import RetryPolicy, Settings

#: A token the emulator knows that may read people, and nothing else.
NO_DEVICE_SCOPES = "people-only-token"
#: Tokens for the refused-mid-run test: the one revoked, and the fresh one after it.
EXPIRING = "expiring-token"
FRESH = "fresh-token"
WRONG_TOKEN = "wrong-token-0f9e8d7c"
COMMANDS = ("validate --live", "run", "run --dry-run", "rerun", "codes", "export")
FAILURES = (
    "wrong token",
    "missing scope",
    "unknown host",
    "refused port",
    "not the API",
    "timeout",
    "5xx storm",
)
#: What the one sentence must say for each failure.
SAYS = {
    "wrong token": "check the token",
    "missing scope": "403 Forbidden",
    "unknown host": "Cannot reach the API",
    "refused port": "Cannot reach the API",
    "not the API": "did you mean",
    "timeout": "did not answer in time",
    "5xx storm": "kept failing",
}


@pytest.fixture(name="emulator", scope="module")
def _emulator_process() -> Iterator[Emulator]:
    tokens = [
        "--token",
        DEFAULT_TOKEN,
        "--token",
        f"{NO_DEVICE_SCOPES}:spark:people_read",
        "--token",
        EXPIRING,
        "--token",
        FRESH,
    ]
    with run_in_subprocess(tokens) as (_process, base_url):
        yield Emulator(base_url)


@pytest.fixture(name="clean")
def _clean(emulator: Emulator) -> Iterator[Emulator]:
    emulator.reset()
    yield emulator
    emulator.reset()


@pytest.fixture(name="quick")
def _quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short timeouts and few retries, so a timeout or a 5xx storm ends in seconds.

    The failure and its sentence are the same with the default minutes of retrying.
    """
    quick = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.01, max_total=5)
    for module in (run_module, codes_module, live_checks, export_module):
        build = module.build_settings

        def build_quickly(
            *args: Any, _build: Callable[..., Settings] = build, **kwargs: Any
        ) -> Settings:
            settings = _build(*args, **kwargs)
            return dataclasses.replace(settings, retry=quick, request_timeout=0.5)

        monkeypatch.setattr(module, "build_settings", build_quickly)


def refused_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


NO_SUCH_HOST = "no-such-host.invalid"


def _no_such_host(real: Callable[..., Any]) -> Callable[..., Any]:
    """``socket.getaddrinfo`` for which NO_SUCH_HOST does not exist: DNS is never
    asked about it (tests stay local); other names resolve as before."""

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> Any:
        if host == NO_SUCH_HOST:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    return getaddrinfo


def inputs(folder: Path) -> dict[str, Path]:
    """A manifest, a report with a failed row (for rerun) and one with codes."""
    manifest = write_manifest(folder / "site.csv", phone_rows(2) + code_rows(1))
    loaded = load_manifest(manifest)
    now = datetime.now(UTC)
    stats = RunStats(
        started_at=now, finished_at=now, api_calls=0, rate_limited=0, retries=0
    )
    outcomes = {
        2: Outcome(row=2, status=Status.CREATED, device_id="dev-2"),
        3: Outcome(row=3, status=Status.FAILED, error="create device: 503"),
        4: Outcome(
            row=4,
            status=Status.CODE_ISSUED,
            device_id="dev-4",
            activation_code="1234567812345678",
            activation_expiry="2099-01-01T00:00:00.000Z",
        ),
    }
    report = folder / "site-report.csv"
    write_report(loaded, outcomes, [report], stats)
    return {"manifest": manifest, "report": report}


def command_line(command: str, files: dict[str, Path], base_url: str) -> list[str]:
    where = ["--base-url", base_url]
    if command == "validate --live":
        return ["validate", str(files["manifest"]), "--live", *where]
    if command == "run":
        return ["run", str(files["manifest"]), "--report", str(files["out"]), *where]
    if command == "run --dry-run":
        out = str(files["out"])
        return ["run", str(files["manifest"]), "--dry-run", "--report", out, *where]
    if command == "rerun":
        return ["rerun", str(files["report"]), *where]
    if command == "export":
        return ["export", str(files["out"]), *where]
    return ["codes", str(files["report"]), *where]


@pytest.mark.usefixtures("quick")
@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_stops_with_one_sentence(
    clean: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    failure: str,
) -> None:
    """Each command, for each failure that stops it before it can work, exits 2 with
    one ``Error:`` sentence that says what went wrong, no traceback, no write."""
    files = {**inputs(tmp_path), "out": tmp_path / "out.csv"}
    base_url, token = clean.base_url, DEFAULT_TOKEN
    if failure == "wrong token":
        token = WRONG_TOKEN
    elif failure == "missing scope":
        token = NO_DEVICE_SCOPES
    elif failure == "unknown host":
        base_url = f"https://{NO_SUCH_HOST}/v1"
        monkeypatch.setattr(socket, "getaddrinfo", _no_such_host(socket.getaddrinfo))
    elif failure == "refused port":
        base_url = f"http://127.0.0.1:{refused_port()}/v1"
    elif failure == "not the API":
        base_url = clean.base_url.removesuffix("/v1")
    elif failure == "timeout":
        clean.admin("POST", "/faults", {"latency_ms": 2000})
    elif failure == "5xx storm":
        clean.admin("POST", "/faults", {"fault_rate": 1.0})

    result = invoke(command_line(command, files, base_url), token=token)

    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error: ")]
    # rerun says first which rows it takes up; nothing else may be printed.
    others = [line for line in lines if line not in errors]
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "ExceptionGroup" not in result.output
    assert len(errors) == 1, result.stderr
    assert all(line.startswith("Re-running ") for line in others), result.stderr
    assert SAYS[failure] in errors[0]
    assert token not in result.output
    assert clean.write_calls() == 0
    if failure == "not the API":
        assert f"{base_url}/v1" in errors[0]


def _run_in_a_process(args: list[str], token: str) -> subprocess.Popen[str]:
    env = {**os.environ, "WEBEX_ACCESS_TOKEN": token, "PYTHONUNBUFFERED": "1"}
    env.pop("WEBEX_BASE_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "provisioner", *args],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_a_token_refused_mid_run_stops_saves_and_continues(
    clean: Emulator, tmp_path: Path
) -> None:
    """The token is revoked while rows run: no new row starts, rows in flight end, the
    report is saved, exit 2 with the way forward; the same command with a fresh token
    then finishes every row once."""
    rows = 24
    clean.admin("POST", "/faults", {"latency_ms": 150})
    manifest = write_manifest(tmp_path / "site.csv", phone_rows(rows))
    report = tmp_path / "r.csv"
    args = ["run", str(manifest), "--report", str(report), "--concurrency", "2"]
    args += ["--base-url", clean.base_url, "--quiet"]
    process = _run_in_a_process(args, EXPIRING)
    deadline = time.monotonic() + 30
    while len(clean.devices()) < 3:
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise AssertionError("the run did not start: " + process.communicate()[1])
        time.sleep(0.05)

    clean.admin("POST", "/tokens/revoke", {"token": EXPIRING})
    out, err = process.communicate(timeout=60)
    first = Counter(r["status"] for r in read_report(report))
    made = len(clean.devices())
    clean.admin("POST", "/faults", {"latency_ms": 0})
    again = invoke(args, token=FRESH)

    assert process.returncode == 2, out + err
    assert (
        "the token was refused mid-run; the run is saved — set a fresh token and "
        "run the same command to continue"
    ) in err
    assert "Traceback" not in err
    assert first["failed"] <= 2  # only the rows in flight met the refusal
    assert first["not_started"] >= 1
    assert sum(first.values()) == rows
    assert made < rows
    assert again.exit_code == 0, again.output
    macs = [d["mac"] for d in clean.devices()]
    assert len(macs) == len(set(macs)) == rows
    assert {r["status"] for r in read_report(report)} <= {"created", "adopted"}


@pytest.mark.parametrize("command", [*COMMANDS, "rollback"])
def test_no_token_in_a_fresh_process_prints_one_sentence_and_no_log_line(
    tmp_path: Path, command: str
) -> None:
    """Without a token each command, in a process of its own (where logging is not
    set up yet when the token is looked for), prints one ``Error:`` sentence on
    standard error and nothing on standard output: no log line of its stopping."""
    files = {**inputs(tmp_path), "out": tmp_path / "out.csv"}
    args = (
        ["rollback", str(files["report"]), "--yes"]
        if command == "rollback"
        else command_line(command, files, "http://127.0.0.1:9/v1")
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBEX_")}
    finished = subprocess.run(
        [sys.executable, "-m", "provisioner", *args],
        env=env,
        text=True,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 2, finished.stderr
    assert finished.stdout == ""
    lines = [line for line in finished.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, finished.stderr
    assert lines[-1].startswith("Error: No access token")


def test_an_api_that_stops_answering_mid_run_stops_saves_and_continues(
    clean: Emulator, tmp_path: Path, quick: None
) -> None:
    """The API stops answering while rows run (every request dropped): a few rows
    fail after their tries, then no new row starts, exit 2 with the way forward,
    instead of every row failing after all its retries; the same command, the API
    back, does every row once."""
    rows = 30
    clean.admin("POST", "/faults", {"latency_ms": 50})
    manifest = write_manifest(tmp_path / "site.csv", phone_rows(rows))
    report = tmp_path / "r.csv"
    args = ["run", str(manifest), "--report", str(report), "--concurrency", "2"]
    args += ["--base-url", clean.base_url, "--quiet"]

    def drop_everything_once_rows_run() -> None:
        deadline = time.monotonic() + 30
        while len(clean.devices()) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        clean.admin("POST", "/faults", {"drop_rate": 1.0})

    dropper = threading.Thread(target=drop_everything_once_rows_run)
    dropper.start()
    first = invoke(args)
    dropper.join()
    statuses = Counter(r["status"] for r in read_report(report))
    clean.admin("POST", "/faults", {"drop_rate": 0.0, "latency_ms": 0})
    again = invoke(args)

    assert first.exit_code == 2, first.output
    assert "Error: the API stopped answering" in first.stderr
    assert "Run the same command once the API answers again" in first.stderr
    assert "Traceback" not in first.output
    assert 5 <= statuses["failed"] <= 7  # the rows in a row, and one in flight
    assert statuses["not_started"] >= 1
    assert sum(statuses.values()) == rows
    assert again.exit_code == 0, again.output
    macs = [d["mac"] for d in clean.devices()]
    assert len(macs) == len(set(macs)) == rows
    assert {r["status"] for r in read_report(report)} <= {"created", "adopted"}
