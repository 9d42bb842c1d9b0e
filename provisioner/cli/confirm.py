"""
Ask before changing an org: show what will change and where, then y/N (or ``--yes``).

Every command that writes to an org (``run``, ``rerun``, ``codes --renew``,
``rollback``) calls ``confirm_changes`` once, after it knows its target and its counts
and before its first write call, and declares ``yes_option()``. The rules, as
``terraform apply`` has them:

- the block naming the org (name and id), the API (cloud or base URL), who the token
  belongs to and the counts is always printed on standard error; when the rows go
  to several orgs (a partner's run), every org is listed with its name, id, rows
  and counts, and an org the token may not act for with the reason its rows fail;
- a loopback target (the emulator) is never asked about;
- ``--yes`` answers for the person;
- on a terminal the person is asked y/N, and anything but yes changes nothing;
- off a terminal, without ``--yes``, nothing is changed and the message says to add it.

A refusal raises ``NotConfirmedError`` (a ``ConfigError``): the commands already turn
that into one sentence and exit 2, and nothing has been written.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import click

from provisioner.errors import NotConfirmedError
from provisioner.models import Changes, Target
from provisioner.settings import CLOUD_BASE_URLS
from provisioner.webex.endpoint import is_loopback

__all__ = [
    "change_lines",
    "confirm_changes",
    "describe_api",
    "is_loopback_target",
    "org_lines",
    "stdin_is_terminal",
    "target_lines",
    "yes_option",
]

_CLOUD_NAMES = {"fedramp": "Webex for Government (FedRAMP)", "commercial": "Webex"}


def yes_option() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """
    Declare ``--yes``/``-y``: go ahead without asking (needed off a terminal).
    """
    return click.option(
        "--yes",
        "-y",
        is_flag=True,
        help=(
            "Change the org without asking (needed when not at a terminal, as in "
            "scripts and CI). The target and the changes are still printed."
        ),
    )


def is_loopback_target(target: Target) -> bool:
    """
    True when the target's API is on this machine (the emulator): nothing to ask.
    """
    host = urlsplit(target.base_url).hostname
    return host is not None and is_loopback(host)


def describe_api(base_url: str) -> str:
    """
    Name an API base URL as people know it: the cloud, the emulator, or the URL.
    """
    url = base_url.rstrip("/")
    for name, known in CLOUD_BASE_URLS.items():
        if url == known.rstrip("/"):
            return f"{url}, {_CLOUD_NAMES.get(name, name)}"
    host = urlsplit(url).hostname
    if host is not None and is_loopback(host):
        return f"{url}, this machine (the emulator)"
    return url


def target_lines(target: Target) -> list[str]:
    """
    Say where a command writes: the org, the API and whose token it is.
    """
    lines = [
        f"  org:  {target.org_label()}",
        f"  API:  {describe_api(target.base_url)}",
    ]
    if target.caller:
        lines.append(f"  as:   {target.caller}")
    return lines


def change_lines(changes: Changes, target: Target) -> list[str]:
    """
    Say what a command will change, one line per kind of change.
    """
    lines = []
    if changes.creates:
        lines.append(f"  create up to {_count(changes.creates, 'device')} by MAC")
    if changes.codes:
        lines.append(
            f"  issue up to {_count(changes.codes, 'activation code')} "
            "(each makes a pending device)"
        )
    if changes.tag_updates:
        lines.append(
            f"  set tags on up to {_count(changes.tag_updates, 'device')} "
            f"(tag mode {target.tag_mode.value})"
        )
    if changes.deletions:
        lines.append(f"  delete {_count(changes.deletions, 'device')}")
    if changes.voided_codes:
        lines.append(
            f"  void {_count(changes.voided_codes, 'earlier activation code')} "
            "(their pending devices are deleted)"
        )
    lines.extend(f"  {note}" for note in changes.notes)
    return lines


def org_lines(changes: Changes, target: Target) -> list[str]:
    """
    Say, org by org, how many rows go there and what may change (a partner's run).

    An org the token may not act for is named with the reason its rows will fail.
    """
    if not changes.orgs:
        return []
    lines = [f"  in {_count(len(changes.orgs), 'org')}:"]
    for org in changes.orgs:
        rows = _count(org.rows, "row")
        if org.org.refused:
            lines.append(f"    {org.org.label()}: {rows} will fail: {org.org.refused}")
            continue
        what = [line.strip() for line in change_lines(org.changes, target)]
        lines.append(
            f"    {org.org.label()}: {rows}: "
            + (" · ".join(what) or "nothing to change")
        )
    return lines


def stdin_is_terminal() -> bool:
    """
    True when a person can answer on standard input.
    """
    isatty = getattr(sys.stdin, "isatty", None)
    return bool(isatty and isatty())


def confirm_changes(
    target: Target, changes: Changes, *, yes: bool, command: str
) -> None:
    """
    Show what ``command`` will change and where; return only when it may go ahead.

    Args:
        target: where the command writes (org, API, whose token).
        changes: what it will write, counted.
        yes: ``--yes`` was given: go ahead without asking.
        command: the command as typed, for the messages (``provisioner run``).

    Raises:
        NotConfirmedError: the person said no (or pressed Ctrl-C), or nobody can be
            asked (standard input is not a terminal) and ``yes`` is False.
    """
    if changes.is_empty:
        return
    click.echo(f"{command} will change:", err=True)
    where = target_lines(target)
    if changes.orgs:
        # The orgs are listed one by one below; the run's own org may not be one.
        where = where[1:]
    for line in [*where, *change_lines(changes, target), *org_lines(changes, target)]:
        click.echo(line, err=True)
    if is_loopback_target(target) or yes:
        return
    if not stdin_is_terminal():
        raise NotConfirmedError(
            f"{command} changes {_org_phrase(target)} and nobody is at a terminal "
            "to confirm it: nothing was changed; read what it will change above, "
            "then run the same command with --yes"
        )
    with _ctrl_c_interrupts():
        try:
            agreed = click.confirm("Go ahead?", default=False, err=True)
        except click.Abort:
            agreed = False
    if not agreed:
        raise NotConfirmedError(
            f"not confirmed: nothing was changed in {_org_phrase(target)}"
        )


@contextlib.contextmanager
def _ctrl_c_interrupts() -> Iterator[None]:
    """
    Let Ctrl-C interrupt the question, even inside an event loop.

    asyncio's runner (and a signal watcher) replace the SIGINT handler with one that
    only schedules work on the loop; while the loop waits on the prompt, that would
    leave Ctrl-C unanswered. Python's own handler raises KeyboardInterrupt at once.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _org_phrase(target: Target) -> str:
    return f"org {target.org_label()}" if target.org_id else "the token's org"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")
