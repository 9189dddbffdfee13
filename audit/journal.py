"""The one audit call (DESIGN.md invariant 4): `record(action, ...)` appends a journal entry."""

import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import Action, Entry, JournalHead, Outcome

log = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64

__all__ = ["Action", "Outcome", "record", "client_address", "verify_chain"]


def client_address(request) -> str:
    """The address the request came from (as the web server saw it)."""
    return request.META.get("REMOTE_ADDR", "") if request is not None else ""


def record(
    action: str,
    *,
    request=None,
    user=None,
    username: str = "",
    address: str = "",
    ae_title: str = "",
    patient_id: str = "",
    study_uid: str = "",
    target: str = "",
    outcome: str = Outcome.SUCCESS,
    detail: str = "",
) -> Entry:
    """Append one entry. `request` supplies the user and address when given; DICOM and HL7
    callers pass `ae_title` and `address` instead; queued tasks pass the `username` they carry."""
    if request is not None:
        user = user if user is not None else getattr(request, "user", None)
        address = address or client_address(request)
    if user is not None and user.is_authenticated:
        username = user.get_username()
    _ensure_head()
    with transaction.atomic():
        head = JournalHead.objects.select_for_update().get(pk=1)
        entry = Entry(
            timestamp=timezone.now(),
            username=username[:150],
            address=(address or "")[:64],
            ae_title=(ae_title or "")[:16],
            action=str(action),
            patient_id=(patient_id or "")[:64],
            study_uid=(study_uid or "")[:64],
            target=(target or "")[:255],
            outcome=str(outcome),
            detail=detail or "",
            previous_hash=head.last_hash,
        )
        entry.hash = entry.compute_hash()
        entry.save()
        JournalHead.objects.filter(pk=head.pk).update(
            last_entry_id=entry.pk, last_hash=entry.hash, count=head.count + 1
        )
    return entry


def _ensure_head() -> None:
    """Create the head row in a transaction of its own: creating it inside the locking one lets
    two first writers deadlock on MariaDB's gap locks."""
    if JournalHead.objects.filter(pk=1).exists():
        return
    try:
        with transaction.atomic():
            JournalHead.objects.create(pk=1, last_hash=GENESIS_HASH)
    except IntegrityError:
        pass  # another process created it first


@dataclass
class ChainReport:
    checked: int
    broken_at: int | None = None  # id of the first entry whose link does not hold
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_at is None and not self.reason


def verify_chain(progress=None) -> ChainReport:
    """Walk the journal in order and recompute every link."""
    previous = GENESIS_HASH
    checked = 0
    last_id = 0
    for entry in Entry.objects.order_by("id").iterator(chunk_size=2000):
        if entry.previous_hash != previous:
            return ChainReport(checked, entry.pk, "an entry before it was removed or changed")
        if entry.compute_hash() != entry.hash:
            return ChainReport(checked, entry.pk, "its contents were changed")
        previous = entry.hash
        last_id = entry.pk
        checked += 1
        if progress:
            progress(1)
    head = JournalHead.objects.filter(pk=1).first()
    if head is not None and (head.last_hash != previous or head.count != checked):
        return ChainReport(checked, None, f"the newest entries after id {last_id} were removed")
    return ChainReport(checked)
