"""
Secrets stay secret: the token and device passwords never reach a log, a report, the
journal or the terminal; reports with activation codes are private; the token never
crosses the network unencrypted; a refused token stops the run without being shown.
"""

from __future__ import annotations

import csv
import json
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from paths import EMULATOR_ORG

from provisioner.cli import main
from provisioner.emulator.harness import run_in_subprocess

TOKEN = "SECRET-TOKEN-7f3a9c1e5b2d4f60"
PASSWORDS = ("Pa55-Polycom-Alpha", "Pa55-Yealink-Bravo")
ORG = json.loads((EMULATOR_ORG).read_text())
WORKSPACES = [w["id"] for w in ORG["workspaces"]]


@pytest.fixture(name="base_url", scope="module")
def _base_url() -> Iterator[str]:
    # An emulator that accepts only the recognisable token of this module.
    with run_in_subprocess(["--token", TOKEN]) as (_process, base_url):
        yield base_url


def write_manifest(path: Path) -> Path:
    """
    Two third-party phones with passwords, a Cisco phone, and two activation-code rows.
    """
    rows = [
        ["AA:00:00:00:01:01", "Polycom VVX 411", WORKSPACES[0], "", PASSWORDS[0]],
        ["AA:00:00:00:01:02", "Yealink T54W", WORKSPACES[1], "vip", PASSWORDS[1]],
        ["AA:00:00:00:01:03", "Cisco 8851", WORKSPACES[2], "", ""],
        ["", "Cisco 8851", WORKSPACES[3], "", ""],
        ["", "Cisco 9861", WORKSPACES[4], "", ""],
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["MAC Address", "Model", "Workspace ID", "Tags", "Password"])
        writer.writerows(rows)
    return path


def invoke(args: list[str], token: str) -> Result:
    return CliRunner().invoke(
        main, args, env={"WEBEX_ACCESS_TOKEN": token}, catch_exceptions=False
    )


def everything_written(folder: Path) -> str:
    """
    Every byte the run left in ``folder``: text files, XLSX parts, SQLite pages.
    """
    chunks = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        if path.suffix == ".xlsx":
            with zipfile.ZipFile(path) as archive:
                chunks += [archive.read(name) for name in archive.namelist()]
        else:
            chunks.append(path.read_bytes())
    return b"\n".join(chunks).decode("utf-8", errors="replace")


@pytest.fixture(name="finished_run", scope="module")
def _finished_run(
    base_url: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Result, Path]:
    # One run for the module, as the emulator is: a second run of the same rows
    # would adopt the devices the first made, whichever test ran first.
    folder = tmp_path_factory.mktemp("secret-run")
    manifest = write_manifest(folder / "input" / "secret.csv")
    out = folder / "out"
    result = invoke(
        [
            "run",
            str(manifest),
            "--report",
            str(out / "secret-report"),
            "--base-url",
            base_url,
            "--log-file",
            str(out / "run.jsonl"),
            "-vv",
        ],
        token=TOKEN,
    )
    return result, out


def test_run_with_secrets_succeeds(finished_run: tuple[Result, Path]) -> None:
    """The secret-laden manifest runs through (so the checks below see real output)."""
    result, out = finished_run

    report = (out / "secret-report.csv").read_text(encoding="utf-8").splitlines()
    statuses = [r["status"] for r in csv.DictReader(report)]
    assert result.exit_code == 0, result.output
    assert statuses == ["created", "created", "created", "code_issued", "code_issued"]
    assert (out / "run.jsonl").stat().st_size > 0


def test_token_and_passwords_are_never_written(
    finished_run: tuple[Result, Path],
) -> None:
    """Neither the token nor a password is in the log, reports, journal or output."""
    result, out = finished_run

    written = everything_written(out) + result.stdout + result.stderr
    assert len(written) > 1000
    assert TOKEN not in written
    assert [p for p in PASSWORDS if p in written] == []


ECHO_PASSWORD = "Echoed-Sip-Pa55-9d2f"
MISSING_WORKSPACE = "Y2lzY29zcGFyazovL3VzL1BMQUNFL25vLXN1Y2gtd29ya3NwYWNl"


def test_a_password_echoed_by_an_error_answer_is_written_nowhere(
    tmp_path: Path,
) -> None:
    """A third-party phone whose owner does not exist is refused with a 4xx that
    quotes the request body, password and all: the journal, both reports, the log
    and the terminal still never hold the password (the error text is redacted)."""
    manifest = tmp_path / "input" / "echo.csv"
    manifest.parent.mkdir()
    manifest.write_text(
        "MAC Address,Model,Workspace ID,Password\n"
        f"AA:00:00:00:02:01,Polycom VVX 411,{MISSING_WORKSPACE},{ECHO_PASSWORD}\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"

    with run_in_subprocess(["--token", TOKEN, "--echo-request-body"]) as (_, url):
        result = invoke(
            ["run", str(manifest), "--report", str(out / "echo-report")]
            + ["--base-url", url, "--log-file", str(out / "run.jsonl"), "-vv"],
            token=TOKEN,
        )

    written = everything_written(out) + result.stdout + result.stderr
    (row,) = csv.DictReader(
        (out / "echo-report.csv").read_text(encoding="utf-8").splitlines()
    )
    assert result.exit_code == 1, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "echo-report.csv",
        "echo-report.journal.sqlite",
        "echo-report.xlsx",
        "run.jsonl",
    ]
    # The answer did quote the body (the echo was exercised), with the password cut.
    assert row["status"] == "failed"
    assert "Request body:" in row["error"]
    assert '"password": "[redacted]"' in row["error"]
    assert ECHO_PASSWORD not in written
    assert ECHO_PASSWORD[:10] not in written


def test_reports_with_activation_codes_are_private(
    finished_run: tuple[Result, Path],
) -> None:
    """Reports holding activation codes, the journal and the log are mode 0600."""
    _result, out = finished_run
    files = [
        "secret-report.csv",
        "secret-report.xlsx",
        "secret-report.journal.sqlite",
        "run.jsonl",
    ]

    modes = {name: stat.S_IMODE((out / name).stat().st_mode) for name in files}

    assert modes == dict.fromkeys(files, 0o600)


@pytest.mark.parametrize(
    "url",
    ["http://10.1.2.3/v1", "http://api-usgov.webex.com/v1", "http://[fe80::1]/v1"],
)
def test_non_loopback_http_is_refused(tmp_path: Path, url: str) -> None:
    """The token is never sent over plain http:// to a non-loopback host: exit 2."""
    manifest = write_manifest(tmp_path / "m.csv")

    result = invoke(["run", str(manifest), "--base-url", url], token=TOKEN)

    assert result.exit_code == 2
    assert "Refusing plain http://" in result.stderr
    assert TOKEN not in result.output


def test_refused_token_stops_the_run_without_showing_it(
    base_url: str, tmp_path: Path
) -> None:
    """A 401 at the start: exit 2, a 'check the token' message, the token not shown."""
    manifest = write_manifest(tmp_path / "m.csv")
    wrong = "WRONG-TOKEN-0d1e2a3d4b5e6e7f"
    log_file = tmp_path / "run.jsonl"

    result = invoke(
        [
            "run",
            str(manifest),
            "--report",
            str(tmp_path / "r.csv"),
            "--base-url",
            base_url,
            "--log-file",
            str(log_file),
        ],
        token=wrong,
    )

    assert result.exit_code == 2
    assert "check the token" in result.stderr
    assert wrong not in result.output
    assert wrong not in log_file.read_text()
    assert not (tmp_path / "r.csv").exists()


def test_token_is_not_accepted_as_a_flag(tmp_path: Path) -> None:
    """There is no flag that takes the token itself (it would show in ps)."""
    manifest = write_manifest(tmp_path / "m.csv")

    result = invoke(["run", str(manifest), "--token", TOKEN], token=TOKEN)

    assert result.exit_code == 2
    assert "No such option" in result.output
