"""The ingest's own INSERT of an Instance row (pacsone/instance_insert.py) writes the row that
`Instance.objects.create()` would write."""

import datetime

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from pacsone import storage
from pacsone.instance_insert import insert_instance
from pacsone.models import Instance, Patient, Series, Study

pytestmark = pytest.mark.django_db


def row_values(series, number):
    return {
        "sop_instance_uid": f"1.2.3.{number}",
        "series_id": series.pk,
        "sop_class_uid": "1.2.840.10008.5.1.4.1.1.4",
        "instance_number": number,
        "transfer_syntax_uid": "1.2.840.10008.1.2.1",
        "storage_location": storage.default_location(),
        "file_path": f"ab/cd/{number}.dcm",
        "file_size": 131_000 + number,
        "sha256": "0" * 64,
        "header": {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Ünïcode^Näme"}]}, "00200013": {"vr": "IS"}},
        "source_ae": "MODALITY",
    }


@pytest.fixture
def series():
    patient = Patient.objects.create(patient_id="P1")
    study = Study.objects.create(study_instance_uid="1.2.3", patient=patient)
    return Series.objects.create(series_instance_uid="1.2.3.0", study=study)


def comparable(instance: Instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in Instance._meta.concrete_fields
            if field.attname not in ("id", "sop_instance_uid", "received_at")}


def test_it_writes_the_row_create_would_write(series):
    before = timezone.now()
    pk = insert_instance(row_values(series, 1))
    created = Instance.objects.create(**{**row_values(series, 2), "instance_number": 1, "file_size": 131_001,
                                         "file_path": "ab/cd/1.dcm"})

    inserted = Instance.objects.get(pk=pk)
    assert inserted.sop_instance_uid == "1.2.3.1"
    assert comparable(inserted) == comparable(Instance.objects.get(pk=created.pk))
    assert before <= inserted.received_at <= timezone.now() + datetime.timedelta(seconds=1)
    assert inserted.received_at.tzinfo is not None


def test_a_left_out_field_gets_its_default(series):
    values = row_values(series, 3)
    del values["source_ae"], values["header"]
    inserted = Instance.objects.get(pk=insert_instance(values))
    assert (inserted.source_ae, inserted.header) == ("", {})


def test_a_duplicate_sop_instance_uid_raises_the_integrity_error(series):
    insert_instance(row_values(series, 4))
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_instance(row_values(series, 4))
    assert Instance.objects.filter(sop_instance_uid="1.2.3.4").count() == 1
