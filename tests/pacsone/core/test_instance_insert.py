"""The ingest's own INSERT of an Instance row (pacsone/instance_insert.py) writes the row that
`Instance.objects.create()` would write; its fast-path transaction (`insert_counted`) counts the
row exactly and undoes everything when a statement fails."""

import datetime

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from pacsone import storage
from pacsone.instance_insert import insert_counted, insert_instance
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


def counts(series) -> tuple:
    study = Study.objects.get(pk=series.study_id)
    return study.number_of_instances, study.size_bytes, Series.objects.get(pk=series.pk).number_of_instances


@pytest.mark.django_db(transaction=True)  # insert_counted commits its own transaction
def test_the_fast_path_transaction_writes_the_row_and_its_counts(series):
    pk = insert_counted(series.study_id, series.pk, row_values(series, 5))
    created = Instance.objects.create(**{**row_values(series, 6), "instance_number": 5, "file_size": 131_005,
                                         "file_path": "ab/cd/5.dcm"})
    assert comparable(Instance.objects.get(pk=pk)) == comparable(Instance.objects.get(pk=created.pk))
    assert counts(series) == (1, 131_005, 1)


@pytest.mark.django_db(transaction=True)
def test_the_fast_path_rolls_back_its_counts_with_a_duplicate(series):
    insert_counted(series.study_id, series.pk, row_values(series, 7))
    with pytest.raises(IntegrityError):  # Django's, not the driver's: the ingest catches that one
        insert_counted(series.study_id, series.pk, {**row_values(series, 7), "file_size": 5})
    assert counts(series) == (1, 131_007, 1)
    assert Instance.objects.filter(sop_instance_uid="1.2.3.7").count() == 1
    insert_counted(series.study_id, series.pk, row_values(series, 8))  # the connection is usable again
    assert counts(series) == (2, 131_007 + 131_008, 2)


@pytest.mark.django_db(transaction=True)
def test_the_fast_path_refuses_a_series_deleted_meanwhile(series):
    """A stale entry of the ingest's parent cache: the foreign key fails the transaction whole."""
    study_pk, series_pk = series.study_id, series.pk
    Series.objects.filter(pk=series_pk).delete()
    with pytest.raises(IntegrityError):
        insert_counted(study_pk, series_pk, row_values(series, 9))
    assert not Instance.objects.filter(sop_instance_uid="1.2.3.9").exists()
    assert Study.objects.get(pk=study_pk).number_of_instances == 0


def test_the_fast_path_is_not_for_a_callers_transaction(series):
    with pytest.raises(RuntimeError):
        insert_counted(series.study_id, series.pk, row_values(series, 10))
