"""Editing patient and study attributes (Modify): the index and the stored files agree.

Each stored file of the affected studies is read, changed and stored again through the one
ingest path (replacing the old copy), so downloads, exports and C-FIND answers show the new
values; then the patient and study rows are updated. Runs as a job: `edit_job(progress, ...)`.
Patient attributes change every study of the patient; study attributes one study.
"""

import datetime

from django.db import transaction
from pydicom import dcmread

from . import rendering, storage
from .ingest import Origin, Outcome, PostIngestBatch, ingest_file
from .models import Instance, Patient, Study

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


def _rewrite(instance: Instance, keywords: dict[str, str], origin: Origin, batch: PostIngestBatch) -> bool:
    path = storage.absolute_path(instance.storage_location, instance.file_path)
    ds = dcmread(path)
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
    batch.flush()
    changed = ", ".join(sorted([*patient_changes, *study_changes]))
    message = f"changed {changed} in {len(instances) - failures} of {len(instances)} stored file(s)"
    if failures:
        message += f"; {failures} file(s) could not be rewritten and keep their old values"
    return message
