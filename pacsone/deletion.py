"""Deleting studies: index rows first (one transaction), then the files no row points at."""

import logging

from django.db import transaction

from . import rendering, storage
from .models import Instance, Patient

log = logging.getLogger(__name__)


def delete_study(study) -> int:
    """Delete a study, its series, instances and notes, and its patient if nothing else of the
    patient is left. Returns the number of instances deleted."""
    instances = list(Instance.objects.filter(series__study=study).only("storage_location", "file_path", "sha256"))
    files = [(instance.storage_location_id, instance.file_path) for instance in instances]
    patient_pk = study.patient_id
    with transaction.atomic():
        study.delete()
        Patient.objects.filter(pk=patient_pk, studies__isnull=True).delete()
    locations = {}
    for location_pk, relative_path in files:
        if Instance.objects.filter(storage_location_id=location_pk, file_path=relative_path).exists():
            continue  # the same file is still indexed elsewhere
        location = locations.get(location_pk) or storage.StorageLocation.objects.get(pk=location_pk)
        locations[location_pk] = location
        storage.remove(location, relative_path)
    for instance in instances:
        rendering.forget(instance)
    log.info("study deleted study_pk=%s instances=%d", study.pk, len(files))
    return len(files)
