"""
Logging: JSON lines to the log file, a level-filtered console, secrets never written.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from provisioner.errors import ConfigError
from provisioner.logs import configure_logging, event_logger, reset_logging
from provisioner.redaction import REDACTED, add_secrets, redact

TOKEN = "tok-RECOGNISABLE-0123456789"


@pytest.fixture(name="clean_logging", autouse=True)
def _clean_logging() -> Iterator[None]:
    yield
    reset_logging()


def _read_events(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


class TestConfigureLogging:
    def test_log_file_gets_every_event_as_json(self, tmp_path: Path) -> None:
        """Debug and info events go to the file as JSON objects with level and time."""
        log_file = tmp_path / "logs" / "run.jsonl"
        configure_logging(log_file=log_file)

        structlog.get_logger().debug("call_made", method="GET", status=200)
        structlog.get_logger().info("row_provisioned", row=2)
        reset_logging()

        events = _read_events(log_file)
        assert [e["event"] for e in events] == ["call_made", "row_provisioned"]
        assert events[0]["level"] == "debug"
        assert events[0]["status"] == 200
        assert "timestamp" in events[1]

    def test_a_log_file_that_cannot_be_opened_is_a_config_error(
        self, unwritable: Path
    ) -> None:
        """A log file in a folder that takes no file gives a ConfigError naming it
        and the flag to change, not the OSError."""
        log_file = unwritable / "run.jsonl"

        with pytest.raises(ConfigError, match=r"choose another --log-file path"):
            configure_logging(log_file=log_file)

    def test_log_file_is_private(self, tmp_path: Path) -> None:
        """The log file is created readable by its owner only."""
        log_file = tmp_path / "run.jsonl"
        configure_logging(log_file=log_file)

        mode = stat.S_IMODE(log_file.stat().st_mode)

        assert mode == 0o600

    def test_console_shows_warnings_only_by_default(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Without -v the console shows warnings, not info events."""
        configure_logging(colors=False)

        structlog.get_logger().info("row_provisioned", row=2)
        structlog.get_logger().warning("rate_limited", retry_after=3)

        err = capsys.readouterr().err
        assert "rate_limited" in err
        assert "row_provisioned" not in err

    def test_verbose_console_shows_info(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """With -v the console shows info events too."""
        configure_logging(verbosity=1, colors=False)

        structlog.get_logger().info("row_provisioned", row=2)

        assert "row_provisioned" in capsys.readouterr().err

    def test_secrets_never_reach_either_sink(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The token and a password added later appear in neither file nor console."""
        log_file = tmp_path / "run.jsonl"
        configure_logging(log_file=log_file, secrets=[TOKEN], colors=False)
        add_secrets("Dev1cePassw0rd")

        log = structlog.get_logger()
        log.warning("header_seen", value=f"Bearer {TOKEN}")
        log.warning("row_failed", detail="rejected password Dev1cePassw0rd")
        try:
            raise RuntimeError(f"boom {TOKEN}")
        except RuntimeError:
            log.exception("bug_hit")
        reset_logging()

        written = log_file.read_text() + capsys.readouterr().err
        assert TOKEN not in written
        assert "Dev1cePassw0rd" not in written
        assert written.count(REDACTED) >= 3

    def test_redact_cleans_printed_messages(self) -> None:
        """Messages printed by the CLI go through the same redactor."""
        configure_logging(secrets=[TOKEN])

        assert f"token {REDACTED} refused" == redact(f"token {TOKEN} refused")

    def test_bound_context_is_merged(self, tmp_path: Path) -> None:
        """Context bound with contextvars (the engine's row) is in every event."""
        log_file = tmp_path / "run.jsonl"
        configure_logging(log_file=log_file)

        with structlog.contextvars.bound_contextvars(row=7):
            structlog.get_logger().info("row_provisioned")
        reset_logging()

        assert _read_events(log_file)[0]["row"] == 7


class TestEventLogger:
    def test_follows_every_configuration(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """One event logger, made before any configuration, obeys each one in turn:
        the log file, a capture, then the console's own level."""
        log = event_logger()
        log_file = tmp_path / "run.jsonl"

        configure_logging(log_file=log_file, colors=False)
        log.info("api_call_finished", status=200)
        log.debug("detail", n=1)
        with structlog.testing.capture_logs() as captured:
            log.info("captured_call", status=201)
        configure_logging(colors=False)
        log.info("filtered_out")
        log.warning("rate_limited", retry_after=3)

        file_events = [e["event"] for e in _read_events(log_file)]
        assert file_events == ["api_call_finished", "detail"]
        assert [(e["event"], e["status"]) for e in captured] == [("captured_call", 201)]
        err = capsys.readouterr().err
        assert "rate_limited" in err
        assert "filtered_out" not in err

    def test_events_carry_bound_context_and_are_redacted(self, tmp_path: Path) -> None:
        """The event logger's events pass through the same chain: the row bound with
        contextvars is merged, and a registered secret is cut out."""
        log_file = tmp_path / "run.jsonl"
        configure_logging(log_file=log_file, secrets=[TOKEN])
        log = event_logger()

        with structlog.contextvars.bound_contextvars(row=7):
            log.error("api_call_finished", message=f"refused {TOKEN}")
        reset_logging()

        (event,) = _read_events(log_file)
        assert event["row"] == 7
        assert event["level"] == "error"
        assert TOKEN not in json.dumps(event)
