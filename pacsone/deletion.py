"""Deleting studies.

A person's delete puts the study in the trash (`do_trash_study`): it disappears for everyone
(pacsone.visibility) but keeps its rows and files for PACS_TRASH_DAYS, during which System
Administration may restore it (`do_restore_study`). Emptying the trash (`do_empty_trash`, by
hand or by the daily schedule) deletes for good, one journal entry per study. `delete_study`
deletes at once (emptying the trash, purges): index rows first (one transaction), then the
files no row points at.
"""

import datetime
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.privileges import Privilege, has_privilege
from audit.journal import Action, record

from . import rendering, stats_rollup, storage
from .humanize import count
from .models import Instance, Patient, Study
from .visibility import trashed_studies


log = logging.getLogger(__name__)


def delete_study(study, journal=None, check=None) -> int:
    """Delete a study, its series, instances and notes, and its patient if nothing else of the
    patient is left. `journal(count)` runs inside the rows' transaction (the journal entry);
    `check(study)`, when given, too, before anything is deleted: an exception it raises rolls
    back and leaves the study and its files. Returns the number of instances deleted."""
    instances = list(Instance.objects.filter(series__study=study).only("storage_location", "file_path", "sha256"))
    files = [(instance.storage_location_id, instance.file_path) for instance in instances]
    patient_pk = study.patient_id
    study_pk = study.pk
    days = stats_rollup.study_days([study_pk])
    with transaction.atomic():
        if check is not None:
            check(study)
        study.delete()
        Patient.objects.filter(pk=patient_pk, studies__isnull=True).delete()
        if journal is not None:
            journal(len(files))
    stats_rollup.days_changed(days)
    locations = {}
    for location_pk, relative_path in files:
        if Instance.objects.filter(storage_location_id=location_pk, file_path=relative_path).exists():
            continue  # the same file is still indexed elsewhere
        location = locations.get(location_pk) or storage.StorageLocation.objects.get(pk=location_pk)
        locations[location_pk] = location
        storage.remove(location, relative_path)
    for instance in instances:
        rendering.forget(instance)
    log.info("study deleted study_pk=%s instances=%d", study_pk, len(files))
    return len(files)


def _subject(study) -> dict[str, str]:
    return {"patient_id": study.patient.patient_id, "study_uid": study.study_instance_uid}


def trash_expiry(study) -> datetime.datetime | None:
    """When a trashed study leaves the trash for good."""
    if study.trashed_at is None:
        return None
    return study.trashed_at + datetime.timedelta(days=settings.PACS_TRASH_DAYS)


def do_trash_study(study, *, acting_user, request=None) -> int:
    """A person (Modify) deletes a study they may see: it goes to the trash, hidden from
    everyone, restorable by System Administration for PACS_TRASH_DAYS. Journaled as a delete in
    the same transaction. Returns the number of its images."""
    from .actions import require_visible

    require_visible(acting_user, [study], Action.DELETE, request=request)
    with transaction.atomic():
        # Conditional: two deletes of the same study at once trash it (and journal it) once.
        moved = Study.objects.filter(pk=study.pk, trashed_at__isnull=True).update(
            trashed_at=timezone.now(), trashed_by=acting_user.get_username()[:150])
        if moved:
            record(Action.DELETE, request=request, user=acting_user, target="study",
                   detail=f"moved to the trash ({count(study.number_of_instances, 'image', 'images')}), "
                          f"kept {count(settings.PACS_TRASH_DAYS, 'day', 'days')}", **_subject(study))
    log.info("study trashed study_pk=%s", study.pk)
    return study.number_of_instances


def _require_system_admin(acting_user, request, target: str) -> None:
    from .access import deny

    if not has_privilege(acting_user, Privilege.SYSTEM_ADMIN):
        raise deny(request or acting_user, Action.MODIFY, "the trash is managed by System Administration",
                   target=target)


def access_trashed_study(acting_user, study_pk, *, request=None):
    """A study in the trash, for System Administration only (404 otherwise, as a missing one)."""
    from django.http import Http404

    from .access import journal_denial

    _require_system_admin(acting_user, request, "trash")
    study = trashed_studies(Study.objects.select_related("patient")).filter(pk=int(study_pk)).first()
    if study is None:
        journal_denial(request or acting_user, Action.MODIFY, f"trashed study {study_pk}", "not in the trash")
        raise Http404("Not found.")
    return study


def do_restore_study(study, *, acting_user, request=None) -> bool:
    """Take a study out of the trash (System Administration). False if it was no longer there."""
    _require_system_admin(acting_user, request, "trash")
    with transaction.atomic():
        restored = trashed_studies().filter(pk=study.pk).update(trashed_at=None, trashed_by="")
        if restored:
            record(Action.MODIFY, request=request, user=acting_user, target="study",
                   detail="restored from the trash", **_subject(study))
    return bool(restored)


def do_empty_trash(*, acting_user=None, request=None, expired_only: bool = True, now=None) -> int:
    """Delete for good the studies in the trash: those kept PACS_TRASH_DAYS (the schedule, and
    `acting_user=None`), or all of them when System Administration empties it by hand. One
    journal entry per study, written with its rows' deletion. Returns how many were deleted."""
    if acting_user is not None:
        _require_system_admin(acting_user, request, "trash")
    candidates = trashed_studies(Study.objects.select_related("patient"))
    if expired_only:
        limit = (now or timezone.now()) - datetime.timedelta(days=settings.PACS_TRASH_DAYS)
        candidates = candidates.filter(trashed_at__lte=limit)
    deleted = 0
    for study in candidates.order_by("trashed_at", "pk"):
        subject = _subject(study)
        why = "trash emptied" if not expired_only else f"kept in the trash {count(settings.PACS_TRASH_DAYS, 'day', 'days')}"

        def journal(images: int, subject=subject, why=why) -> None:
            record(Action.DELETE, request=request, user=acting_user, username="" if acting_user else "system",
                   target="study", detail=f"deleted for good: {why} ({count(images, 'image', 'images')})", **subject)

        delete_study(study, journal)
        deleted += 1
    return deleted


def empty_expired_trash() -> str:
    """The daily django-q2 schedule's entry point."""

    return f"{count(do_empty_trash(), 'study', 'studies')} deleted from the trash"



class PurgeRefused(Exception):
    """The study may no longer be purged (a job or a legal hold came between plan and purge)."""


def do_purge_study(study, *, location_name: str, freed_bytes: int, reason: str, still_allowed=None,
                   acting_user=None, request=None) -> int:
    """Purge a study to free space in a storage location (routing/purge.py), journaled with what
    was freed in the rows' transaction. `still_allowed(study)` is asked again inside that
    transaction; a '' answer lets the purge go on, anything else rolls it back (PurgeRefused).
    `acting_user` None: the scheduled watermark check. Returns the number of instances."""
    subject = _subject(study)

    def check(study) -> None:
        why_not = still_allowed(study) if still_allowed else ""
        if why_not:
            raise PurgeRefused(why_not)

    def journal(instances: int) -> None:
        record(Action.PURGE, request=request, user=acting_user, username="" if acting_user else "system",
               target=f"storage {location_name}"[:255],
               detail=f"{count(instances, 'instance', 'instances')}, {freed_bytes} bytes freed: {reason}", **subject)

    return delete_study(study, journal, check)
