"""
What the commands that talk to the API share: options, token, base URL, Settings, errors.

The rules here are the user-facing contract of ``shared/design.md``:

- the token comes from ``WEBEX_ACCESS_TOKEN`` or ``--token-file``, never a flag value;
- the base URL comes from ``--base-url``, ``--cloud`` or ``WEBEX_BASE_URL``, FedRAMP by
  default, and plain ``http://`` is refused unless the host is loopback;
- an error that stops a command before any row ran becomes one sentence on stderr
  saying what to do, and exit code 2 (``failures.py``, re-exported here).
"""

from __future__ import annotations

import functools
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

import click

from provisioner.cli.exit_codes import (
    EXIT_FAILED_ROWS,
    EXIT_INTERRUPTED,
    EXIT_OK,
)
from provisioner.cli.failures import (
    BASE_URL_ENV,
    TOKEN_ENV,
    describe_error,
    fail,
)
from provisioner.cli.rates import (
    NO_MAX_RATE,
    MaxRates,
    limit_advice,
    max_rate_option,
    org_limits_advice,
    rate_settings,
)
from provisioner.errors import ConfigError
from provisioner.models import Manifest, Outcome, RunStats, TagMode
from provisioner.settings import (
    CLOUD_BASE_URLS,
    DEFAULT_CONCURRENCY,
    FEDRAMP_BASE_URL,
    Settings,
)
from provisioner.webex.endpoint import check_base_url
from provisioner.words import count_of, verb_for

__all__ = [
    "BASE_URL_ENV",
    "TOKEN_ENV",
    "ConnectionOptions",
    "api_options",
    "base_url_option",
    "build_settings",
    "bundle_options",
    "cloud_option",
    "connection_options",
    "describe_error",
    "exit_code_for",
    "fail",
    "format_summary",
    "log_file_option",
    "org_id_option",
    "read_token",
    "resolve_base_url",
    "token_file_option",
    "verbose_option",
]

_HOW_TO_GIVE_TOKEN = (
    f"set {TOKEN_ENV} in the environment, or pass --token-file PATH naming a file "
    "that holds only the token (never put the token itself on the command line)"
)

# How many kinds of error the summary lists (the report's Summary sheet has them all).
_ERROR_KINDS_SHOWN = 5


F = TypeVar("F", bound=Callable[..., Any])

# What click.option returns: it adds one flag to a command.
_OptionDecorator = Callable[[Callable[..., Any]], Callable[..., Any]]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionOptions:
    """
    The connection, rate and output flags shared by ``run`` and ``rerun``, as given.
    """

    token_file: Path | None = None
    base_url: str | None = None
    cloud: str | None = None
    org_id: str | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    max_rate: MaxRates = NO_MAX_RATE
    tag_mode: str = TagMode.ADD.value
    log_file: Path | None = None
    quiet: bool = False
    verbose: int = 0


# The flags connection_options adds: one per ConnectionOptions field.
_OPTION_NAMES = tuple(f.name for f in fields(ConnectionOptions))


def connection_options(func: F) -> F:
    """
    Add the shared flags to a command and hand them over as one ``connection`` argument.
    """
    return api_options()(func)


def api_options(
    *, tag_mode: bool = True, org_purpose: str | None = None
) -> Callable[[F], F]:
    """
    The connection, rate and output flags of a command that talks to the API.

    Args:
        tag_mode: offer ``--tag-mode`` (only commands that tag devices do).
        org_purpose: what ``--org-id`` does for this command, for its help.
    """
    options: list[_OptionDecorator] = [
        token_file_option(),
        base_url_option(),
        cloud_option(),
        org_id_option() if org_purpose is None else org_id_option(purpose=org_purpose),
        click.option(
            "--concurrency",
            type=click.IntRange(1, 256),
            default=DEFAULT_CONCURRENCY,
            show_default=True,
            help="Requests in flight at most.",
        ),
        max_rate_option(),
    ]
    if tag_mode:
        options.append(
            click.option(
                "--tag-mode",
                type=click.Choice([m.value for m in TagMode]),
                default=TagMode.ADD.value,
                show_default=True,
                help="Add the row's tags to the device's, or replace them.",
            )
        )
    options += [
        log_file_option(),
        click.option(
            "--quiet",
            "-q",
            is_flag=True,
            help="No progress display (the summary still prints).",
        ),
        verbose_option(),
    ]
    names = [name for name in _OPTION_NAMES if tag_mode or name != "tag_mode"]

    def decorate(func: F) -> F:
        return bundle_options(func, options, names)

    return decorate


def bundle_options(
    func: F, options: Sequence[_OptionDecorator], names: Iterable[str]
) -> F:
    """
    Add flags to a command and hand the values of ``names`` over as ``connection``.

    The ``ConnectionOptions`` fields not in ``names`` keep their defaults, so a
    command may take only some of the shared flags.
    """
    names = tuple(names)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = {name: kwargs.pop(name) for name in names}
        return func(*args, connection=ConnectionOptions(**given), **kwargs)

    command: Callable[..., Any] = wrapper
    for option in reversed(options):
        command = option(command)
    return command  # type: ignore[return-value]


# One declaration per flag that more than one command takes. ``help_prefix`` says
# when the flag applies (``"With --live: "``); without one the help is capitalised.


def token_file_option(help_prefix: str = "") -> _OptionDecorator:
    """
    Declare ``--token-file``: the file that holds the access token.
    """
    return click.option(
        "--token-file",
        type=click.Path(dir_okay=False, path_type=Path),
        help=_help(
            help_prefix, f"a file holding the access token (default: ${TOKEN_ENV})."
        ),
    )


def base_url_option(
    help_prefix: str = "", *, loopback_note: bool = True
) -> _OptionDecorator:
    """
    Declare ``--base-url``; ``loopback_note`` adds that http:// is for loopback only.
    """
    text = (
        f"the API base URL (default: ${BASE_URL_ENV}, else FedRAMP {FEDRAMP_BASE_URL})."
    )
    if loopback_note:
        text += " http:// only for a loopback host."
    return click.option("--base-url", metavar="URL", help=_help(help_prefix, text))


def cloud_option(help_prefix: str = "") -> _OptionDecorator:
    """
    Declare ``--cloud``: the base URL picked by the cloud's name.
    """
    return click.option(
        "--cloud",
        type=click.Choice(sorted(CLOUD_BASE_URLS)),
        help=_help(help_prefix, "pick the base URL by name instead of --base-url."),
    )


def org_id_option(
    help_prefix: str = "",
    *,
    purpose: str = "act on this org (partner admins); a row's own orgId wins",
) -> _OptionDecorator:
    """
    Declare ``--org-id``; ``purpose`` says what the command does with the org.
    """
    return click.option(
        "--org-id", metavar="ID", help=_help(help_prefix, f"{purpose}.")
    )


def log_file_option(
    help_prefix: str = "", *, events: str = "every event (one per API call)"
) -> _OptionDecorator:
    """
    Declare ``--log-file``; ``events`` says which events the file gets.
    """
    return click.option(
        "--log-file",
        type=click.Path(dir_okay=False, path_type=Path),
        help=_help(help_prefix, f"append {events} as JSON lines to this file."),
    )


def verbose_option(help_prefix: str = "") -> _OptionDecorator:
    """
    Declare ``--verbose``/``-v``, counted: info events on stderr, twice for debug.
    """
    return click.option(
        "--verbose",
        "-v",
        count=True,
        help=_help(help_prefix, "show info events on stderr (-vv: debug)."),
    )


def _help(prefix: str, text: str) -> str:
    return prefix + text if prefix else text[:1].upper() + text[1:]


def read_token(token_file: Path | None, environ: Mapping[str, str]) -> str:
    """
    Return the access token from ``--token-file`` or ``WEBEX_ACCESS_TOKEN``.

    Raises:
        ConfigError: there is no token, or the file cannot be read or is empty.
    """
    if token_file is not None:
        try:
            text = token_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise ConfigError(
                f"Cannot read the token file {token_file}: {reason}. Point "
                "--token-file at a text file that holds only the access token."
            ) from None
        token = text.strip()
        if not token:
            raise ConfigError(
                f"The token file {token_file} is empty. Put the access token in it, "
                f"or {_HOW_TO_GIVE_TOKEN}."
            )
        _warn_if_shared(token_file)
    else:
        token = environ.get(TOKEN_ENV, "").strip()
        if not token:
            raise ConfigError(f"No access token: {_HOW_TO_GIVE_TOKEN}.")
    if any(ch.isspace() for ch in token):
        raise ConfigError(
            "The access token contains spaces or line breaks. Give the token alone "
            "(without 'Bearer ' and on one line)."
        )
    return token


def _warn_if_shared(token_file: Path) -> None:
    try:
        mode = token_file.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        import structlog  # here: ``validate`` imports this module, and not structlog

        structlog.get_logger().warning(
            "token_file_readable_by_others",
            path=str(token_file),
            hint="chmod 600 the file",
        )


def resolve_base_url(
    base_url: str | None, cloud: str | None, environ: Mapping[str, str]
) -> str:
    """
    Pick the base URL: ``--base-url``, else ``--cloud``, else ``WEBEX_BASE_URL``, else
    FedRAMP; then check it with ``check_base_url``.
    """
    if base_url and cloud:
        raise ConfigError("Give either --base-url or --cloud, not both.")
    if base_url:
        return check_base_url(base_url)
    if cloud:
        return CLOUD_BASE_URLS[cloud]
    from_env = environ.get(BASE_URL_ENV, "").strip()
    if from_env:
        return check_base_url(from_env)
    return FEDRAMP_BASE_URL


def build_settings(
    connection: ConnectionOptions,
    environ: Mapping[str, str],
    *,
    dry_run: bool = False,
    manifest: Manifest | None = None,
) -> Settings:
    """
    Build the run's Settings from the flags, then the environment, then the defaults.

    ``manifest`` holds the rows the command works on: each org ``--max-rate ORG=R``
    names must be one they go to. Without one (``export``), the command acts in
    one org, which ORG must name.

    Raises:
        click.BadParameter: ``--max-rate`` names an org no call goes to.
    """
    base_url = resolve_base_url(connection.base_url, connection.cloud, environ)
    token = read_token(connection.token_file, environ)
    org_id = connection.org_id or None
    try:
        rates = rate_settings(connection.max_rate, manifest=manifest, org_id=org_id)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="'--max-rate'") from None
    return Settings(
        token=token,
        base_url=base_url,
        org_id=org_id,
        concurrency=connection.concurrency,
        rate=rates.rate,
        org_rates=rates.org_rates,
        rate_org_to_confirm=rates.rate_org_to_confirm,
        tag_mode=TagMode(connection.tag_mode),
        dry_run=dry_run,
    )


def exit_code_for(outcomes: Iterable[Outcome], *, interrupted: bool) -> int:
    """
    0 when every row ended well, 1 when one failed or was invalid, 130 if interrupted.
    """
    if interrupted:
        return EXIT_INTERRUPTED
    if any(not o.status.is_ok for o in outcomes):
        return EXIT_FAILED_ROWS
    return EXIT_OK


def _speed(throughput: float | None, worked: int | None, rows: int) -> str | None:
    """
    The rows/s of the rows this run worked, saying how many when it did not work
    them all (the others were settled before it began: by its journal, the report a
    rerun reads, or as invalid); None when it worked none, where a rate means nothing.
    """
    if worked == 0:
        return None
    if throughput is None:
        return "-"
    speed = f"{throughput:.1f} rows/s"
    if worked is not None and worked < rows:
        speed += f" of the {worked} row{'' if worked == 1 else 's'} it worked"
    return speed


def format_summary(
    manifest: Manifest,
    outcomes: Mapping[int, Outcome],
    stats: RunStats,
    paths: Iterable[Path],
) -> str:
    """
    The end-of-run summary: counts by status, duration, rows/s, calls, 429s, reports.
    """
    # Imported here: ``validate`` imports this module for its flags, and these
    # modules (and structlog with them) cost it a tenth of a second.
    from provisioner.report.files import summarise
    from provisioner.report.summary import counts_text

    summary = summarise(manifest, outcomes, stats)
    shown = [f"{status.value} {n}" for status, n in summary.by_status.items() if n]
    heading = "Dry run" if stats.dry_run else "Run"
    if stats.interrupted:
        heading += " interrupted"
    first = f"{heading}: {count_of(summary.rows, 'row')} · " + (
        " · ".join(shown) or "no rows"
    )
    # Hundredths under ten seconds: a short run's time is read by make bench too.
    took = f"{stats.duration:.2f}" if stats.duration < 10 else f"{stats.duration:.1f}"
    second = f"  took {took}s"
    speed = _speed(summary.throughput, stats.rows_worked, summary.rows)
    if speed is not None:
        second += f" · {speed}"
    second += (
        f" · {stats.api_calls} API calls"
        f" · {stats.rate_limited} rate-limited (429) · {stats.retries} retries"
    )
    if stats.final_rate is not None:
        second += f" · ended at {stats.final_rate:.1f} requests/s"
    lines = [first, second]
    if (
        stats.resumed
        and not stats.dry_run
        and stats.worked is not None
        and not any(stats.worked.values())
        and not stats.codes_voided
    ):
        # The same command again: its journal had every row, so the run only read.
        lines.append(
            "  nothing to do: every row was done by an earlier run of this command "
            "(its journal); the org was not changed, the report was written again"
        )
    if stats.learned_limit is not None:
        lines.append(limit_advice(stats.learned_limit))
    for org in summary.by_org:
        line = f"  {org.org.label()}: {org.rows} rows: {counts_text(org.by_status)}"
        limit = stats.limit_of(org.org.key)
        if limit is not None:
            line += f" · API limit about {limit:.1f} requests/s"
        lines.append(line)
    advice = org_limits_advice(stats)
    if advice is not None:
        lines.append(advice)
    if stats.codes_voided:
        lines.append(
            f"  {count_of(stats.codes_voided, 'replaced activation code')} voided "
            f"({verb_for(stats.codes_voided, 'its pending device', 'their pending devices')}"
            " deleted)"
        )
    errors = list(summary.by_error.items())
    for kind, count in errors[:_ERROR_KINDS_SHOWN]:
        lines.append(f"  {count} × {kind}")
    if len(errors) > _ERROR_KINDS_SHOWN:
        lines.append(f"  … and {len(errors) - _ERROR_KINDS_SHOWN} more kinds of error")
    lines += [f"  report: {path}" for path in paths]
    return "\n".join(lines)
