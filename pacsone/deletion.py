"""Deleting studies: index rows first (one transaction), then the files no row points at."""

import logging

from django.db import transaction

from audit.journal import Action, record

from . import rendering, storage
from .models import Instance, Patient

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
    with transaction.atomic():
        if check is not None:
            check(study)
        study.delete()
        Patient.objects.filter(pk=patient_pk, studies__isnull=True).delete()
        if journal is not None:
            journal(len(files))
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


def do_delete_study(study, *, acting_user, request=None) -> int:
    """A person deletes a study they may see (Modify); the journal entry is written with the
    rows' deletion, in its transaction."""
    from .actions import require_visible

    require_visible(acting_user, [study], Action.DELETE, request=request)
    subject = {"patient_id": study.patient.patient_id, "study_uid": study.study_instance_uid}

    def journal(count: int) -> None:
        record(Action.DELETE, request=request, user=acting_user, target="study", detail=f"{count} instance(s)",
               **subject)

    return delete_study(study, journal)


class PurgeRefused(Exception):
    """The study may no longer be purged (a job or a legal hold came between plan and purge)."""


def do_purge_study(study, *, location_name: str, freed_bytes: int, reason: str, still_allowed=None,
                   acting_user=None, request=None) -> int:
    """Purge a study to free space in a storage location (routing/purge.py), journaled with what
    was freed in the rows' transaction. `still_allowed(study)` is asked again inside that
    transaction; a '' answer lets the purge go on, anything else rolls it back (PurgeRefused).
    `acting_user` None: the scheduled watermark check. Returns the number of instances."""
    subject = {"patient_id": study.patient.patient_id, "study_uid": study.study_instance_uid}

    def check(study) -> None:
        why_not = still_allowed(study) if still_allowed else ""
        if why_not:
            raise PurgeRefused(why_not)

    def journal(count: int) -> None:
        record(Action.PURGE, request=request, user=acting_user, username="" if acting_user else "system",
               target=f"storage {location_name}"[:255],
               detail=f"{count} instance(s), {freed_bytes} bytes freed: {reason}", **subject)

    return delete_study(study, journal, check)
