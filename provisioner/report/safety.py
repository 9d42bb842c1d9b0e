"""
Never overwrite a file unsafely: inputs, real reports, and reports holding codes.

The rules, checked by every command that writes a report:

- a report path that is one of the command's inputs (the manifest, the report a
  rerun reads) is refused: ``refuse_inputs``;
- a report whose folder cannot be written stops the command before it changes
  anything (the journal beside the report could not be kept either):
  ``prepare_folders``;
- a dry run never replaces the report of a real run: ``refuse_real_report``;
- a report holding activation codes is never replaced by one that drops any of them,
  nor one saying the rollout created devices by one that no longer says so (``--fresh``
  adopts them; another manifest's rows name others): a rollback of the earlier
  report is what deletes them. ``set_aside`` moves it beside itself with a timestamp
  first, and says where. A file at the report path that cannot be read as a report
  is moved aside too: what cannot be checked is not destroyed. Devices a rollback
  has deleted already (the run's journal says which: the caller passes them) are
  said so: the report is then the record of a run rolled back. A device the run's
  journal records as adopted is not one the rollout created, whatever the old
  report's status cell says (edited by hand): it is no reason to keep the report;
  nor is a code a renewal voided, when the new report holds its replacement.
  ``aside_origin`` reads the moved file's name back to the report it was moved
  from, so a rollback of it can find that report's journal; ``renewal_origin``
  does the same for the report ``codes --renew`` writes (``renewed_path``).
- a file given as a manifest that is a report is named as one (``looks_like_report``),
  so ``run`` can point at ``rerun``.

What the existing report holds is read back with ``load_report``; the decisions
(``codes_dropped``, ``created_dropped``) are pure.
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog

from provisioner.errors import ConfigError, ManifestError
from provisioner.models import Outcome, Status
from provisioner.report.cells import REPORT_MARKERS
from provisioner.report.files import load_report

__all__ = [
    "REPORT_MARKERS",
    "SetAside",
    "aside_origin",
    "aside_path",
    "codes_dropped",
    "created_dropped",
    "looks_like_report",
    "numbered_origin",
    "numbered_path",
    "prepare_folders",
    "refuse_inputs",
    "refuse_real_report",
    "renewal_origin",
    "renewals_of",
    "renewed_path",
    "set_aside",
    "what_a_report_keeps",
]

log = structlog.get_logger()


#: The statuses a dry run writes: a report holding only these changed nothing.
_DRY_RUN_STATUSES = frozenset({Status.PLANNED, Status.INVALID})
#: The stem ``aside_path`` gives a replaced report: ``<stem>-replaced-<UTC time>[-n]``.
_ASIDE_STEM = re.compile(r"^(?P<stem>.+)-replaced-\d{8}T\d{6}Z(?:-\d+)?$")
#: The stem ``renewed_path`` gives a renewal's report: ``<stem>-renewed[-N]``.


@dataclass(frozen=True, slots=True)
class SetAside:
    """
    A report moved out of the way before it was replaced, and why.
    """

    original: Path
    moved_to: Path
    reason: str


def looks_like_report(columns: Iterable[str]) -> bool:
    """
    True when a sheet's header has every result column a report is written with.
    """
    return set(columns) >= REPORT_MARKERS


def _same_file(one: Path, other: Path) -> bool:
    try:
        return one.exists() and other.exists() and os.path.samefile(one, other)
    except OSError:
        return False


def refuse_inputs(paths: Sequence[Path], inputs: Iterable[Path], *, flag: str) -> None:
    """
    Refuse report paths that are one of the command's inputs.

    Raises:
        ConfigError: naming the path and what to do.
    """
    for given in inputs:
        for path in paths:
            if path.resolve() == Path(given).resolve() or _same_file(path, given):
                raise ConfigError(
                    f"the report would be written over {given}, which this command "
                    f"reads: choose another {flag} path (the input is never overwritten)"
                )


def prepare_folders(paths: Iterable[Path], *, flag: str) -> None:
    """
    Create the folder of each path, and make sure a file can be written in it.

    Called before a command changes anything: a report (and the journal kept beside
    it) that cannot be written must stop the command then, not after the org changed.

    Raises:
        ConfigError: naming the folder and what to do (``flag`` names the option).
    """
    for folder in dict.fromkeys(path.parent for path in paths):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(
                f"cannot create the folder {folder}: {error.strerror or error}; "
                f"choose another {flag} path"
            ) from error
        try:
            # Writing is the only sure test: the mode bits do not bind root, and a
            # folder such as /proc refuses new files whatever they say. The file has
            # no name on Linux, and is gone when closed everywhere.
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as error:
            raise ConfigError(
                f"cannot write in the folder {folder}: {error.strerror or error}; "
                f"make it writable, or choose another {flag} path"
            ) from error


def refuse_real_report(paths: Sequence[Path]) -> None:
    """
    Refuse to let a dry run replace a report of a real run (or a file that is not a
    report at all).

    Raises:
        ConfigError: naming the path and what to do.
    """
    for path in paths:
        if not path.exists():
            continue
        outcomes = _outcomes_of(path)
        if outcomes is None:
            what = "a file that is not a dry run's report"
        elif any(o.status not in _DRY_RUN_STATUSES for o in outcomes.values()):
            what = "the report of a real run"
        else:
            continue
        raise ConfigError(
            f"{path} is {what}; a dry run never replaces it: leave out --report "
            "(a dry run writes …-report-dry-run.*) or choose another --report path"
        )


def codes_dropped(old: Mapping[int, Outcome], new: Iterable[Outcome]) -> frozenset[str]:
    """
    The activation codes the old report holds that the new one would not (pure).
    """
    kept = {o.activation_code for o in new if o.activation_code}
    return frozenset(
        o.activation_code
        for o in old.values()
        if o.activation_code and o.activation_code not in kept
    )


def created_dropped(
    old: Mapping[int, Outcome], new: Iterable[Outcome]
) -> frozenset[str]:
    """
    The devices the old report says the rollout created that the new one does not
    say so of (pure): their only record for a rollback would be lost.
    """
    kept = {o.device_id for o in new if o.status is Status.CREATED and o.device_id}
    return frozenset(
        o.device_id
        for o in old.values()
        if o.status is Status.CREATED and o.device_id and o.device_id not in kept
    )


def what_a_report_keeps(path: Path) -> str | None:
    """
    Say what the report at ``path`` holds that no other file does, when anything:
    activation codes, or devices the rollout created (what a rollback deletes by).
    None when the file holds neither, or is no report (an earlier export, say).
    """
    outcomes = _outcomes_of(path) if path.exists() else None
    if not outcomes:
        return None
    kept = []
    codes = codes_dropped(outcomes, ())
    if codes:
        kept.append(_codes(len(codes)))
    made = created_dropped(outcomes, ())
    if made:
        kept.append(f"the {_devices(len(made))} this rollout created")
    return " and ".join(kept) or None


def aside_path(path: Path, moment: datetime) -> Path:
    """
    Where a replaced report goes: ``<stem>-replaced-<UTC time><suffix>`` beside it.
    """
    stamp = moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    candidate = path.with_name(f"{path.stem}-replaced-{stamp}{path.suffix}")
    number = 2
    while candidate.exists():
        candidate = path.with_name(
            f"{path.stem}-replaced-{stamp}-{number}{path.suffix}"
        )
        number += 1
    return candidate


def aside_origin(path: Path) -> Path | None:
    """
    The report path a replaced report was moved aside from (``aside_path`` undone):
    beside it, without ``-replaced-<time>``. None when the name is not one
    ``aside_path`` gives.
    """
    match = _ASIDE_STEM.match(path.stem)
    if match is None:
        return None
    return path.with_name(match["stem"] + path.suffix)


def renewed_path(report: Path) -> Path:
    """
    Where ``codes --renew`` writes by default: beside REPORT, ``-renewed`` (then
    ``-renewed-2``, … for a renewal of a renewal), so the input stays as it was.
    """
    return numbered_path(report, "renewed")


def renewals_of(report: Path) -> list[Path]:
    """
    The reports ``codes --renew`` wrote by default from REPORT, in its format:
    ``-renewed``, then the renewal of that (``-renewed-2``), and so on while there
    is one, nearest first.
    """
    found: list[Path] = []
    path = renewed_path(report)
    while path.is_file():
        found.append(path)
        path = renewed_path(path)
    return found


def renewal_origin(path: Path) -> Path | None:
    """
    The report a ``codes --renew`` read to write ``path`` by default
    (``renewed_path`` undone): beside it, ``-renewed`` taken off or counted down.
    None when the name is not one ``renewed_path`` gives.
    """
    return numbered_origin(path, "renewed")


@functools.cache
def _numbered_stem(word: str) -> re.Pattern[str]:
    """
    A stem a command's numbered name gives: ``<base>-<word>`` or ``-<word>-<n>``.
    """
    return re.compile(rf"^(?P<base>.*)-{re.escape(word)}(?:-(?P<n>\d+))?$")


def numbered_path(path: Path, word: str) -> Path:
    """
    Where a command writes from ``path`` by default: beside it, ``-<word>`` (then
    ``-<word>-2``, … for the same command on its own output), so the input stays
    as it was (``rerun``, ``codes --renew``, ``rollback``).
    """
    match = _numbered_stem(word).match(path.stem)
    if match is None:
        stem = f"{path.stem}-{word}"
    else:
        stem = f"{match['base']}-{word}-{int(match['n'] or 1) + 1}"
    return path.with_name(stem + path.suffix)


def numbered_origin(path: Path, word: str) -> Path | None:
    """
    The file a command read to write ``path`` under a numbered name it gives
    (``numbered_path`` undone): beside it, ``-<word>`` taken off or counted down.
    None when the name is not one of those.
    """
    match = _numbered_stem(word).match(path.stem)
    if match is None or not match["base"]:
        return None
    number = int(match["n"] or 1)
    if match["n"] is not None and number < 2:
        return None
    stem = match["base"] if number == 1 else f"{match['base']}-{word}"
    if number > 2:
        stem += f"-{number - 1}"
    return path.with_name(stem + path.suffix)


def set_aside(
    paths: Sequence[Path],
    new: Iterable[Outcome],
    *,
    now: datetime | None = None,
    rolled_back: Collection[str] = frozenset(),
    adopted: Collection[str] = frozenset(),
    voided: Collection[str] = frozenset(),
) -> list[SetAside]:
    """
    Move aside each existing report the new outcomes would replace unsafely.

    A report is moved when it holds an activation code the new report drops, says
    the rollout created a device the new report does not, or cannot be read as a
    report. The move keeps the file as it was (mode included).

    Args:
        rolled_back: devices a rollback deleted already (``run.journal``'s
            ``read_rolled_back``): a report naming them is the record of what was
            rolled back, not what a rollback of it would delete.
        adopted: devices the run's journal records as adopted (``read_adopted``),
            when that journal wrote the old report (the run continued it): the
            old report's ``created`` for them is not the rollout's word, and a
            rollback of it must not be pointed at them.
        voided: activation codes a renewal (``codes --renew``) voided, whose
            replacements the new report holds: no code a person could still use
            is lost with them.

    Raises:
        ConfigError: a report cannot be moved (permissions): nothing was replaced.
    """
    new = list(new)
    moment = now or datetime.now(UTC)
    moved: list[SetAside] = []
    for path in paths:
        if not path.exists():
            continue
        outcomes = _outcomes_of(path)
        if outcomes is None:
            reason = "it could not be read as a report"
        else:
            reasons = _why_kept(outcomes, new, rolled_back, adopted, voided)
            if not reasons:
                continue
            reason = "; ".join(reasons)
        target = aside_path(path, moment)
        try:
            os.replace(path, target)
        except OSError as error:
            raise ConfigError(
                f"{path} must be kept ({reason}) but cannot be moved aside: "
                f"{error.strerror or error}; move it yourself, or choose another "
                "--report path"
            ) from error
        log.info("report_set_aside", path=str(path), moved_to=str(target))
        moved.append(SetAside(path, target, reason))
    return moved


def _why_kept(
    old: Mapping[int, Outcome],
    new: Iterable[Outcome],
    rolled_back: Collection[str],
    adopted: Collection[str],
    voided: Collection[str] = frozenset(),
) -> list[str]:
    """
    What the old report holds that the new one would lose, in words; none when
    nothing.
    """
    reasons = []
    dropped = codes_dropped(old, new) - frozenset(voided)
    if dropped:
        reasons.append(f"it holds {_codes(len(dropped))} the new report does not")
    made = created_dropped(old, new) - frozenset(adopted)
    live = made - frozenset(rolled_back)
    if live:
        reasons.append(
            f"it names {_devices(len(live))} this rollout created that the new "
            "report does not, which a rollback of it deletes"
        )
    if made - live:
        reasons.append(
            f"it is the record of {_devices(len(made - live))} this rollout created "
            "that a rollback has deleted since"
        )
    return reasons


def _outcomes_of(path: Path) -> dict[int, Outcome] | None:
    try:
        return load_report(path)[1]
    except (ManifestError, OSError):
        return None


def _codes(count: int) -> str:
    return f"{count} activation code" + ("" if count == 1 else "s")


def _devices(count: int) -> str:
    return f"{count} device" + ("" if count == 1 else "s")
