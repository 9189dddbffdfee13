"""Change Storage (seed 004; privilege Change Storage): move selected studies to another storage
location, as a job. Each file is copied to the target and its SHA-256 checked there before the
index points at the copy; only then is the source removed. A study moves whole or not at all:
a failed copy leaves it where it was (its partial copies are removed). Every study moved or
left behind is journaled."""

import logging

from django.db import transaction

from audit.journal import Action, Outcome, record

from . import storage
from .models import Instance, StorageLocation, Study
from .humanize import count

log = logging.getLogger(__name__)


def do_change_storage(studies: list[Study], target: StorageLocation, *, acting_user, request=None):
    """A person moves studies they may see to `target` (the caller checked Change Storage):
    queued as a job, journaled with it."""
    from routing.jobs import start_job
    from routing.models import Job

    from .actions import require_visible

    require_visible(acting_user, studies, Action.CHANGE_STORAGE, request=request)
    with transaction.atomic():
        job = start_job(Job.Kind.CHANGE_STORAGE, f"Move of {count(len(studies), 'study', 'studies')} to storage {target.name}",
                        acting_user, "pacsone.change_storage.change_storage_job",
                        [study.pk for study in studies], target.pk, acting_user.get_username(), studies=studies)
        for study in studies:
            record(Action.CHANGE_STORAGE, request=request, user=acting_user, target=f"job {job.pk} to {target.name}",
                   patient_id=study.patient.patient_id, study_uid=study.study_instance_uid, detail="queued")
    return job


def change_storage_job(progress, study_pks: list[int], target_pk: int, username: str) -> str:
    target = StorageLocation.objects.get(pk=target_pk)
    studies = list(Study.objects.filter(pk__in=study_pks).select_related("patient").order_by("pk"))
    progress.start(Instance.objects.filter(series__study__in=studies).count())
    moved, problems = 0, []
    for study in studies:
        try:
            files, size = move_study(study, target, username, progress)
        except (OSError, storage.StorageError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            problems.append(f"study {study.pk}: {reason}")
            record(Action.CHANGE_STORAGE, username=username, patient_id=study.patient.patient_id,
                   study_uid=study.study_instance_uid, target=f"to {target.name}", outcome=Outcome.FAILURE,
                   detail=f"left where it was: {reason}"[:2000])
            continue
        moved += 1
        log.info("study moved study_pk=%s location=%s files=%d bytes=%d", study.pk, target.name, files, size)
    summary = f"{moved} of {count(len(studies), 'study', 'studies')} moved to storage {target.name}"
    if problems:
        raise RuntimeError("\n".join([summary, *problems]))
    return summary


def move_study(study: Study, target: StorageLocation, username: str, progress=None) -> tuple[int, int]:
    """Copy every file of the study not yet in `target`, verified; point the index at the
    copies and journal it in one transaction; then remove the sources. (files, bytes) moved."""
    instances = list(Instance.objects.filter(series__study=study).exclude(storage_location=target)
                     .only("pk", "sop_instance_uid", "file_path", "file_size", "sha256", "storage_location_id"))
    copied = []
    try:
        for instance in instances:
            storage.copy_to(instance, target)
            copied.append(instance)
            if progress:
                progress.advance()
    except BaseException:
        _remove_unindexed(target.pk, [instance.file_path for instance in copied])
        raise
    sources = {(instance.storage_location_id, instance.file_path) for instance in instances}
    size = sum(instance.file_size for instance in instances)
    with transaction.atomic():
        updated = Instance.objects.filter(pk__in=[i.pk for i in instances]).exclude(storage_location=target) \
            .update(storage_location=target)
        Study.objects.filter(pk=study.pk).update(storage_location=target)
        record(Action.CHANGE_STORAGE, username=username, patient_id=study.patient.patient_id,
               study_uid=study.study_instance_uid, target=f"to {target.name}",
               detail=f"{count(updated, 'file', 'files')}, {size} bytes moved, each SHA-256 checked at the target")
    for location_pk, relative_path in sources:
        _remove_unindexed(location_pk, [relative_path])
    return len(instances), size


def _remove_unindexed(location_pk: int, relative_paths: list[str]) -> None:
    """Remove files of a location that no index row points at (a file may be shared by
    several instances with the same content in one study)."""
    location = storage.location_by_pk(location_pk)
    for relative_path in relative_paths:
        if not Instance.objects.filter(storage_location_id=location_pk, file_path=relative_path).exists():
            storage.remove(location, relative_path)
