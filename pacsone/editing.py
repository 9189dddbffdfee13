"""Editing patient and study attributes (Modify): the index and the stored files agree.

Each stored file of the affected studies is read, changed and stored again through the one
ingest path (replacing the old copy), so downloads, exports and C-FIND answers show the new
values; then the patient and study rows are updated. Runs as a job: `edit_job(progress, ...)`.
Patient attributes change every study of the patient; study attributes one study.
"""

import datetime

from django.db import transaction
from pydicom import dcmread

from accounts.privileges import Privilege, has_privilege
from audit.journal import Action, record

from . import rendering, stats_rollup, storage
from .dicom import charsets
from .ingest import Origin, Outcome, PostIngestBatch, ingest_file
from .models import Instance, Patient, Study
from .humanize import count

# form field -> (DICOM keyword, the row it lives on, the row's field)
PATIENT_ATTRIBUTES = {
    "patient_name": "PatientName",
    "birth_date": "PatientBirthDate",
    "sex": "PatientSex",
}
STUDY_ATTRIBUTES = {
    "study_description": "StudyDescription",
    "accession_number": "AccessionNumber",
    "referring_physician_name": "ReferringPhysicianName",
    "reading_physician_name": "NameOfPhysiciansReadingStudy",
    "study_date": "StudyDate",
}


def dicom_value(value) -> str:
    if isinstance(value, datetime.date):
        return value.strftime("%Y%m%d")
    return "" if value is None else str(value)


def changed_attributes(patient: Patient, study: Study, cleaned: dict) -> tuple[dict, dict]:
    """The patient and study fields whose submitted value differs from the stored one."""
    patient_changes = {f: cleaned[f] for f in PATIENT_ATTRIBUTES if f in cleaned and cleaned[f] != getattr(patient, f)}
    study_changes = {f: cleaned[f] for f in STUDY_ATTRIBUTES if f in cleaned and cleaned[f] != getattr(study, f)}
    return patient_changes, study_changes


def do_edit_study(study: Study, cleaned: dict, *, acting_user, request=None):
    """A person edits a study they may see (Modify): the rewrite is queued as a job and the
    request journaled with it, in one transaction. Patient attributes are rewritten in every
    study of the patient, so changing them needs View (which sees them all). Returns the job,
    or None when nothing differs."""
    from routing.jobs import start_job
    from routing.models import Job

    from .access import deny
    from .actions import require_visible

    patient = study.patient
    patient_changes, study_changes = changed_attributes(patient, study, cleaned)
    if not patient_changes and not study_changes:
        return None
    subject = {"patient_id": patient.patient_id, "study_uid": study.study_instance_uid}
    if patient_changes and not has_privilege(acting_user, Privilege.VIEW):
        raise deny(request or acting_user, Action.MODIFY,
                   "changing the patient's name, birth date or sex rewrites all the patient's studies: "
                   "it needs the View privilege", target="study edit", **subject)
    studies = list(patient.studies.all()) if patient_changes else [study]
    require_visible(acting_user, studies, Action.MODIFY, request=request)
    as_text = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in {**patient_changes, **study_changes}.items()}
    what = "patient and study attributes" if patient_changes else "study attributes"
    with transaction.atomic():
        job = start_job(Job.Kind.EDIT, f"Edit of {what} ({count(len(studies), 'study', 'studies')})", acting_user,
                        "pacsone.editing.edit_job", study.pk,
                        {k: as_text[k] for k in patient_changes}, {k: as_text[k] for k in study_changes},
                        acting_user.get_username(), studies=studies)
        record(Action.MODIFY, request=request, user=acting_user, target=f"job {job.pk}",
               detail="; ".join(f"{k}={v}" for k, v in as_text.items())[:2000], **subject)
    return job


def _rewrite(instance: Instance, keywords: dict[str, str], origin: Origin, batch: PostIngestBatch) -> bool:
    with storage.open_stored(instance) as f:
        ds = dcmread(f)
    charsets.make_room_for(ds, list(keywords.values()))
    for keyword, value in keywords.items():
        setattr(ds, keyword, value)
    temp = storage.new_temp_path(storage.default_location())
    ds.save_as(temp, enforce_file_format=True)
    rendering.forget(instance)
    result = ingest_file(temp, origin, adopt=True, batch=batch)
    return result.outcome == Outcome.REPLACED


def edit_job(progress, study_pk: int, patient_changes: dict, study_changes: dict, username: str) -> str:
    study = Study.objects.select_related("patient").get(pk=study_pk)
    patient = study.patient
    # Dates travel through the job queue as ISO text.
    for changes in (patient_changes, study_changes):
        for field in ("birth_date", "study_date"):
            if changes.get(field):
                changes[field] = datetime.date.fromisoformat(str(changes[field]))
    keywords_for_patient = {PATIENT_ATTRIBUTES[f]: dicom_value(v) for f, v in patient_changes.items()}
    keywords_for_study = {STUDY_ATTRIBUTES[f]: dicom_value(v) for f, v in study_changes.items()}
    studies = list(patient.studies.all()) if patient_changes else [study]
    instances = list(Instance.objects.filter(series__study__in=studies).select_related("storage_location", "series"))
    progress.start(len(instances))
    origin = Origin("edit", username=username, replace_duplicates=True)
    batch = PostIngestBatch()
    failures = 0
    for instance in instances:
        keywords = dict(keywords_for_patient)
        if instance.series.study_id == study.pk:
            keywords.update(keywords_for_study)
        try:
            ok = _rewrite(instance, keywords, origin, batch)
        except Exception:
            ok = False
        failures += not ok
        progress.advance(1, failed=0 if ok else 1)
    with transaction.atomic():
        for field, value in patient_changes.items():
            setattr(patient, field, value)
        if "patient_name" in patient_changes:
            patient.patient_name_search = patient.patient_name.upper()
        if patient_changes:
            patient.save()
        for field, value in study_changes.items():
            setattr(study, field, value)
        if study_changes:
            study.save()
            stats_rollup.studies_changed([study.pk])  # its institution or physician, in the statistics
        changed = ", ".join(sorted([*patient_changes, *study_changes]))
        message = f"changed {changed} in {len(instances) - failures} of {count(len(instances), 'stored file', 'stored files')}"
        if failures:
            message += f"; {count(failures, 'file', 'files')} could not be rewritten and keep their old values"
        record(Action.MODIFY, username=username, patient_id=patient.patient_id, study_uid=study.study_instance_uid,
               target=f"job {progress.job.pk} done", detail=message)
    batch.flush()
    return message
