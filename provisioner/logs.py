"""
Logging set-up for the command line: the only place that calls ``structlog.configure()``.

Library modules only call ``structlog.get_logger()`` (or, for events logged on every
API call or row, ``event_logger()``: see below) and log facts with key-value fields.
The CLI calls ``configure_logging`` once per command; events then go to two sinks from
one processor chain:

- every event, as one JSON object per line, to ``--log-file`` (when given);
- events at the console level and above (WARNING by default, INFO with ``-v``),
  rendered for people, to standard error.

Secrets are removed before either sink sees an event, by the one redaction every
writer shares (``provisioner.redaction``): values under secret-looking keys are
masked, and any registered secret (the access token, the manifest's device passwords)
is cut out of every string wherever it appears. That is a last line of defence; code
should never log them in the first place.

``structlog.get_logger()`` hands out a lazy proxy that assembles a new bound logger on
every event (so a later ``structlog.configure`` is always obeyed); on the run's hot
path (an event or two per API call) that assembly cost about as much as the rest of
the client's own bookkeeping. ``event_logger()`` keeps the assembled logger and
assembles it again only when structlog's configuration has changed since, so it
obeys every configuration (``configure_logging``, a test's ``capture_logs``) just as
the proxy does, and an event below the configured level costs one comparison and a
no-op call.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from provisioner.errors import ConfigError
from provisioner.redaction import add_secrets, registry

__all__ = ["EventLogger", "configure_logging", "event_logger", "reset_logging"]


class _JsonFileSink:
    """
    Write every event as one JSON line to a file, then pass the event on.

    Each line is flushed as it is written, so a run killed with SIGKILL keeps its log
    up to the last event.
    """

    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # 0600: the log holds ids and tracking ids of an org, not for other users.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as error:
            raise ConfigError(
                f"cannot open the log file {path}: {error.strerror or error}; "
                "check that its folder is writable, or choose another --log-file path"
            ) from error
        self._file: TextIO = os.fdopen(fd, "a", encoding="utf-8", buffering=1)
        self._lock = threading.Lock()

    def __call__(
        self, logger: WrappedLogger, method_name: str, event_dict: EventDict
    ) -> EventDict:
        line = json.dumps(event_dict, default=str, ensure_ascii=False)
        with self._lock:
            if not self._file.closed:
                self._file.write(line + "\n")
        return event_dict

    def close(self) -> None:
        with self._lock:
            self._file.close()


class _ConsoleLevelFilter:
    """
    Drop events below the console level (after the file sink has kept them).
    """

    def __init__(self, level: int) -> None:
        self._level = level

    def __call__(
        self, logger: WrappedLogger, method_name: str, event_dict: EventDict
    ) -> EventDict:
        name = str(event_dict.get("level", method_name)).upper()
        if logging.getLevelNamesMapping().get(name, logging.INFO) < self._level:
            raise structlog.DropEvent
        return event_dict


class _StderrLogger:
    """
    Print rendered lines to whatever ``sys.stderr`` is at the moment of the call.

    Looking ``sys.stderr`` up late lets rich's live progress display (which redirects
    it) print log lines above the bar instead of through it, and lets click's test
    runner capture them.
    """

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)  # noqa: T201 - this is the sink

    log = debug = info = warn = warning = error = critical = exception = msg


def _stderr_logger_factory(*args: Any) -> _StderrLogger:
    return _StderrLogger()


# The open log file (so it can be closed): this module's only global state. The
# secrets live in ``provisioner.redaction``'s registry, shared with every writer.
_file_sink: _JsonFileSink | None = None


def configure_logging(
    *,
    verbosity: int = 0,
    log_file: Path | None = None,
    secrets: Iterable[str | None] = (),
    colors: bool | None = None,
) -> None:
    """
    Configure structlog for one command.

    Args:
        verbosity: 0 shows warnings and errors on stderr, 1 adds info, 2 adds debug.
        log_file: where every event goes as JSON lines (appended; created 0600).
        secrets: values cut out of every event, registered with
            ``provisioner.redaction.add_secrets`` (as more can be, later).
        colors: force colours on or off on the console; None decides by the terminal.

    Raises:
        ConfigError: the log file cannot be opened (a folder that cannot be written).
    """
    global _file_sink
    reset_logging()
    add_secrets(*secrets)
    console_level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    if colors is None:
        colors = sys.stderr.isatty() and "NO_COLOR" not in os.environ

    processors: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        registry(),
    ]
    if log_file is not None:
        _file_sink = _JsonFileSink(log_file)
        processors.append(_file_sink)
    processors += [
        _ConsoleLevelFilter(console_level),
        structlog.dev.ConsoleRenderer(colors=colors, exception_formatter=_plain_exc),
    ]
    # The bound logger keeps debug events only when something will read them: the
    # file takes everything, the console only from its own level.
    min_level = logging.DEBUG if log_file is not None else console_level
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(min_level),
        logger_factory=_stderr_logger_factory,
        cache_logger_on_first_use=False,
    )


class EventLogger:
    """
    A logger for frequent events: structlog's configured logger, assembled once per
    configuration (see the module docstring). Logs like a bound logger's
    ``debug``/``info``/``warning``/``error``.
    """

    __slots__ = ("_config", "_logger")

    def __init__(self) -> None:
        self._config: tuple[object, ...] = ()
        self._logger: Any = None

    def _current(self) -> Any:
        config = structlog.get_config()
        processors = config["processors"]
        wrapper = config["wrapper_class"]
        factory = config["logger_factory"]
        context = config["context_class"]
        # ``is``, not ``==``: configure() always puts in new objects, and comparing
        # processor lists by value would call each processor's __eq__.
        cached = self._config
        if not (
            cached
            and cached[0] is processors
            and cached[1] is wrapper
            and cached[2] is factory
            and cached[3] is context
        ):
            self._logger = structlog.get_logger().bind()
            self._config = (processors, wrapper, factory, context)
        return self._logger

    # Properties handing out the bound method, not methods calling it: an event's
    # fields are packed into keyword arguments once, not twice.
    @property
    def debug(self) -> Callable[..., Any]:
        return self._current().debug  # type: ignore[no-any-return]

    @property
    def info(self) -> Callable[..., Any]:
        return self._current().info  # type: ignore[no-any-return]

    @property
    def warning(self) -> Callable[..., Any]:
        return self._current().warning  # type: ignore[no-any-return]

    @property
    def error(self) -> Callable[..., Any]:
        return self._current().error  # type: ignore[no-any-return]


def event_logger() -> EventLogger:
    """
    A module's logger for events logged on every API call or row (see the module
    docstring); anywhere else ``structlog.get_logger()`` is as good.
    """
    return EventLogger()


def _plain_exc(sio: TextIO, exc_info: Any) -> None:
    # ``format_exc_info`` already turned tracebacks into the redacted "exception" key;
    # nothing is left for the renderer to format.
    return None


def reset_logging() -> None:
    """
    Close the log file and restore structlog's defaults (for tests and re-configuration).
    """
    global _file_sink
    if _file_sink is not None:
        _file_sink.close()
        _file_sink = None
    structlog.reset_defaults()
