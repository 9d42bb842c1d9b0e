"""
Decide, without I/O, what to do about activation codes issued before this run.

Each activation code makes a pending device that waits for someone to type the code.
A second code for the same row leaves two such devices and a code nobody holds, so
before a code row gets a code the engine looks at what its owner already has:

- a pending device of the row's model that this run did not make (no journalled row
  claims it, and it is older than the run) is an earlier run's code: the row gets
  no second code but ``code_pending``, naming that device (``earlier_pending``,
  ``code_pending_outcome``), unless ``--reissue-codes`` asks to void it;
- a code this run replaces (``--fresh``, ``--reissue-codes``) is voided by deleting
  its pending device, but only while it is still unactivated (``still_pending``).

``steps.py`` makes the calls; this module only decides.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from provisioner.live.code_rules import fits_row, is_activated
from provisioner.models import Device, Outcome, Row, Status, utc_moment
from provisioner.run.plan import PENDING_STATUSES

__all__ = [
    "code_pending_outcome",
    "earlier_pending",
    "still_pending",
]


def still_pending(device: Device) -> bool:
    """
    True while a device waits for its code: no MAC, never online, not expired out.
    """
    return (
        not is_activated(device)
        and (device.connection_status or "activating") in PENDING_STATUSES
    )


def earlier_pending(
    devices: Iterable[Device],
    row: Row,
    claimed: Iterable[str],
    run_started: datetime,
) -> tuple[Device, ...]:
    """
    The owner's pending devices of the row's model that an earlier run made, oldest
    first.

    A device qualifies when it still waits for its code, its product is the row's
    model (for a RoomOS row, whose code names none: it is a ``roomdesk``), no
    journalled row of this run claims it, and it was created before the run
    began (an unclaimed device from this run is a lost code's, which the lost-code
    check removes). A device without a readable ``created`` stamp counts as earlier.
    """
    taken = set(claimed)
    before = run_started
    found = [
        device
        for device in devices
        if device.id not in taken
        and still_pending(device)
        and fits_row(device, row)
        and _created(device) < before
    ]
    return tuple(sorted(found, key=_created))


def code_pending_outcome(row: Row, device: Device) -> Outcome:
    """
    The outcome of a code row that gets no second code: the device, when it was
    made, and the way forward.
    """
    when = f" created {device.created}" if device.created else ""
    # That device is the earlier run's: this row's tags are not put on it.
    tags = "; this row's tags were not applied" if row.tags else ""
    return Outcome(
        row=row.number,
        status=Status.CODE_PENDING,
        device_id=device.id,
        error=(
            f"no second code issued: the owner already has pending device "
            f"{device.id}{when} of this model from an earlier run; renew its code "
            "with `provisioner codes --renew EARLIER-REPORT`, or run again with "
            f"--reissue-codes to void it and issue a new code{tags}"
        ),
    )


def _created(device: Device) -> datetime:
    return utc_moment(device.created) or datetime.min.replace(tzinfo=UTC)
