"""The one audit call (DESIGN.md invariant 4): `record(action, ...)` appends a journal entry.

`record()` may be called inside the caller's transaction (a `do_*` function writes its change
and its entry together; if it rolls back, so does the entry). Appending locks the one head row
(SELECT ... FOR UPDATE on MariaDB/PostgreSQL; SQLite's transactions take the write lock at
BEGIN IMMEDIATE), so concurrent writers chain one after the other.

`once_per=`: a viewer fetches every frame of a study as a request of its own (OHIF: hundreds
per CT); the journal records a person viewing a study, not each frame. With `once_per` a
successful entry is written only when no entry of the same action, user, address and study was
written within that time: the first access is journaled at once, later ones within the window
are covered by it. Refusals and failures never pass here unwritten.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from . import chain
from .models import Action, Entry, JournalHead, Outcome

log = logging.getLogger(__name__)

GENESIS_HASH = chain.GENESIS

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
    once_per: timedelta | None = None,
) -> Entry | None:
    """Append one entry. `request` supplies the user and address when given; DICOM and HL7
    callers pass `ae_title` and `address` instead; queued tasks pass the `username` they carry.
    `once_per`: see the module's note; None when an earlier entry covers this one."""
    if request is not None:
        user = user if user is not None else getattr(request, "user", None)
        address = address or client_address(request)
    if user is not None and user.is_authenticated:
        username = user.get_username()
    coalesce = once_per if once_per and outcome == Outcome.SUCCESS else None
    same = dict(action=str(action), username=_text(username)[:150], address=_text(address)[:64],
                study_uid=_text(study_uid)[:64], outcome=Outcome.SUCCESS)
    # A read first, so that covered requests (nearly all of a viewer's) never take the write lock.
    if coalesce and _covered(same, coalesce):
        return None
    _ensure_head()
    with transaction.atomic():
        head = JournalHead.objects.select_for_update().get(pk=1)
        if coalesce and _covered(same, coalesce):  # written meanwhile by another process
            return None
        entry = Entry(
            timestamp=timezone.now(),
            username=_text(username)[:150],
            address=_text(address)[:64],
            ae_title=_text(ae_title)[:16],
            action=str(action),
            patient_id=_text(patient_id)[:64],
            study_uid=_text(study_uid)[:64],
            target=_text(target)[:255],
            outcome=str(outcome),
            detail=_text(detail),
            previous_hash=head.last_hash,
        )
        entry.hash = entry.compute_hash()
        entry.save()
        JournalHead.objects.filter(pk=head.pk).update(
            last_entry_id=entry.pk, last_hash=entry.hash, count=head.count + 1
        )
        exported = chain.Head(entry.pk, head.count + 1, entry.hash)
        # Only a committed head leaves the database: a rolled-back one would look like a deletion.
        transaction.on_commit(lambda: chain.maybe_export_head(exported))
    return entry


def _covered(same: dict, window: timedelta) -> bool:
    return Entry.objects.filter(timestamp__gte=timezone.now() - window, **same).exists()


def _text(value: str | None) -> str:
    """A field as every database stores it: PostgreSQL cannot hold NUL (a stray one in a DICOM
    value or a query), and the MAC must cover what is stored, or the chain would look broken."""
    return (value or "").replace("\x00", "")


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
    heads_checked: int = 0

    @property
    def ok(self) -> bool:
        return self.broken_at is None and not self.reason


def verify_chain(progress=None, heads: list[chain.Head] = ()) -> ChainReport:
    """Walk the journal in order and recompute every MAC with the key; then check that each
    head exported off the database (log, syslog, mail) is still in it, unchanged. Raises
    chain.JournalKeyError when the key file is missing or unusable."""
    key = chain.journal_key(create=False) if Entry.objects.exists() else None
    previous = GENESIS_HASH
    checked = 0
    last_id = 0
    for entry in Entry.objects.order_by("id").iterator(chunk_size=2000):
        if entry.previous_hash != previous:
            return ChainReport(checked, entry.pk, "an entry before it was removed or changed")
        if entry.compute_hash(key) != entry.hash:
            return ChainReport(checked, entry.pk, "its contents were changed (or the journal key is not the one "
                                                  "it was written with)")
        previous = entry.hash
        last_id = entry.pk
        checked += 1
        if progress:
            progress(1)
    head = JournalHead.objects.filter(pk=1).first()
    if head is not None and (head.last_hash != previous or head.count != checked):
        return ChainReport(checked, None, f"the newest entries after id {last_id} were removed")
    for exported in heads:
        kept = Entry.objects.filter(pk=exported.entry_id).values_list("hash", flat=True).first()
        if kept is None:
            return ChainReport(checked, None, f"entry id {exported.entry_id}, an exported head, is no longer in the "
                                              f"database: the newest entries were removed")
        if kept != exported.mac:
            return ChainReport(checked, exported.entry_id, "it differs from the head exported for it")
    return ChainReport(checked, heads_checked=len(heads))


def current_head() -> chain.Head | None:
    head = JournalHead.objects.filter(pk=1).first()
    if head is None or not head.count:
        return None
    return chain.Head(head.last_entry_id, head.count, head.last_hash)
