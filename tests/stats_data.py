"""Index rows received at chosen times, for the statistics tests: a study with one series of
`instances` instances of `size` bytes each, all received at `when`."""

import datetime
import itertools

from django.utils import timezone

from pacsone import storage
from pacsone.models import Instance, Patient, Series, Study

_numbers = itertools.count(1)
# "Now" of the report tests: Wednesday 18 November 2026, 10:00 UTC.
NOW = datetime.datetime(2026, 11, 18, 10, 0, tzinfo=datetime.timezone.utc)


def at(year, month, day, hour=12, minute=0) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime(year, month, day, hour, minute))


def received(when: datetime.datetime, modality="CT", ae="CT_ROOM1", institution="GENERAL HOSPITAL",
             referring="SMITH^JANE", instances=3, size=1000) -> Study:
    n = next(_numbers)
    location = storage.default_location()
    patient = Patient.objects.create(patient_id=f"ST{n}", patient_name=f"STAT^{n}", patient_name_search=f"STAT^{n}")
    study = Study.objects.create(study_instance_uid=f"1.2.826.0.1.99.{n}", patient=patient, source_ae=ae,
                                 institution_name=institution, referring_physician_name=referring,
                                 storage_location=location, modalities_in_study=modality, number_of_series=1,
                                 number_of_instances=instances, size_bytes=instances * size)
    series = Series.objects.create(series_instance_uid=f"{study.study_instance_uid}.1", study=study, modality=modality,
                                   number_of_instances=instances)
    Instance.objects.bulk_create([
        Instance(sop_instance_uid=f"{series.series_instance_uid}.{i}", sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
                 series=series, transfer_syntax_uid="1.2.840.10008.1.2.1", storage_location=location,
                 file_path=f"x/{n}/{i}", file_size=size, sha256="0" * 64, source_ae=ae)
        for i in range(instances)])
    Study.objects.filter(pk=study.pk).update(received_at=when)
    Series.objects.filter(pk=series.pk).update(received_at=when)
    Instance.objects.filter(series=series).update(received_at=when)
    return study
