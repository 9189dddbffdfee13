"""The one ingest path: what is stored, what is rejected, and that nothing is half-done."""

import re
from pathlib import Path
from unittest import mock

import pytest
from pydicom import config, dcmread
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag

from pacsone import storage
from pacsone.dicom.net.implementation import IMPLEMENTATION_CLASS_UID
from pacsone.ingest import Origin, Outcome, ingest_file
from pacsone.models import Equipment, Instance, Patient, Series, Study
from tests.helpers import (
    dataset_bytes,
    make_dataset,
    make_file,
    stored_files,
    temp_leftovers,
    pydicom_file,
    write_dataset,
)

ORIGIN = Origin("import", ae_title="TESTER")
pytestmark = pytest.mark.django_db


def test_it_stores_and_indexes_an_instance(tmp_path):
    source = make_file(tmp_path, patient_name="DOE^JANE", AccessionNumber="A42", StationName="CT1")

    result = ingest_file(source, ORIGIN)

    assert result.outcome == Outcome.STORED
    instance = Instance.objects.select_related("series__study__patient").get()
    study = instance.series.study
    assert study.patient.patient_name == "DOE^JANE"
    assert study.patient.patient_name_search == "DOE^JANE"
    assert study.accession_number == "A42"
    assert str(study.study_date) == "2024-01-05"
    assert study.source_ae == "TESTER"
    assert instance.series.modality == "CT"
    assert instance.series.equipment.station_name == "CT1"
    assert instance.header["00100010"]["Value"] == [{"Alphabetic": "DOE^JANE"}]
    assert "7FE00010" not in instance.header  # no pixel data in the index
    stored = storage.absolute_path(instance.storage_location, instance.file_path)
    assert stored.read_bytes() == source.read_bytes()
    assert storage.checksum(stored) == (instance.sha256, instance.file_size)
    assert source.exists()  # an import copies; the source is left alone


def test_it_fills_the_study_summary_after_ingest(tmp_path):
    study_uid = "1.2.3.4"
    ingest_file(make_file(tmp_path, "a.dcm", study_uid=study_uid), ORIGIN)
    ingest_file(make_file(tmp_path, "b.dcm", study_uid=study_uid, Modality="PT"), ORIGIN)

    study = Study.objects.get(study_instance_uid=study_uid)
    assert study.number_of_series == 2
    assert study.number_of_instances == 2
    assert study.modalities_in_study == "CT\\PT"
    assert study.size_bytes == sum(i.file_size for i in Instance.objects.all())


def test_it_names_files_after_hashes_only(tmp_path):
    ds = make_dataset(patient_id="../../etc/passwd", patient_name="EVIL^NAME")
    ingest_file(write_dataset(ds, tmp_path / "x.dcm"), ORIGIN)

    (path,) = stored_files()
    relative = path.relative_to(storage.default_location().path).as_posix()
    assert re.fullmatch(r"[0-9a-f]{2}/[0-9a-f]{24}/[0-9a-f]{64}\.dcm", relative)
    for value in (ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID, "passwd", "EVIL"):
        assert value not in str(path)


@pytest.mark.parametrize("missing", ["SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"])
def test_it_rejects_a_dataset_missing_a_uid(tmp_path, missing):
    ds = make_dataset()
    delattr(ds, missing)

    result = ingest_file(write_dataset(ds, tmp_path / "bad.dcm"), ORIGIN)

    assert result.outcome == Outcome.INVALID
    assert result.reason == f"missing {missing}"
    assert not Instance.objects.exists() and not Study.objects.exists()
    assert stored_files() == [] and temp_leftovers() == []


def test_it_rejects_a_malformed_uid(tmp_path):
    result = ingest_file(make_file(tmp_path, study_uid="1.2.3/../4"), ORIGIN)
    assert (result.outcome, result.reason) == (Outcome.INVALID, "malformed StudyInstanceUID")


def test_it_rejects_a_file_that_is_not_dicom(tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_bytes(b"this is not DICOM at all\n" * 10)

    result = ingest_file(junk, ORIGIN)

    assert result.outcome == Outcome.UNREADABLE
    assert stored_files() == []


def test_it_rejects_a_truncated_header(tmp_path):
    good = make_file(tmp_path)
    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(good.read_bytes()[:300])

    result = ingest_file(truncated, ORIGIN)

    assert not result.outcome.accepted
    assert stored_files() == []


def test_it_adopts_a_temp_file_by_moving_it(tmp_path):
    location = storage.default_location()
    temp = storage.new_temp_path(location)
    temp.write_bytes(make_file(tmp_path).read_bytes())

    result = ingest_file(temp, ORIGIN, adopt=True)

    assert result.outcome == Outcome.STORED
    assert not temp.exists()
    assert temp_leftovers() == []


def test_a_rejected_adopted_file_is_removed(tmp_path):
    location = storage.default_location()
    temp = storage.new_temp_path(location)
    temp.write_bytes(b"garbage")

    assert ingest_file(temp, ORIGIN, adopt=True).outcome == Outcome.UNREADABLE
    assert temp_leftovers() == []


def test_a_bare_dataset_without_file_meta_is_wrapped_in_a_part10_file(tmp_path):
    ds = make_dataset()
    del ds.file_meta
    bare = tmp_path / "bare.dcm"
    ds.save_as(bare, implicit_vr=True, little_endian=True, enforce_file_format=False)
    assert bare.read_bytes()[128:132] != b"DICM"

    result = ingest_file(bare, ORIGIN)

    assert result.outcome == Outcome.STORED
    (path,) = stored_files()
    assert dcmread(path).SOPInstanceUID == ds.SOPInstanceUID
    assert dcmread(path).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
    assert dcmread(path).file_meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID  # we wrote the meta


def test_a_resent_instance_is_ignored_by_default(tmp_path, settings):
    settings.PACS_DUPLICATE_POLICY = "ignore"
    first = make_file(tmp_path, "first.dcm", sop_uid="1.2.3.9", patient_name="FIRST^COPY")
    second = make_file(tmp_path, "second.dcm", sop_uid="1.2.3.9", patient_name="SECOND^COPY")

    assert ingest_file(first, ORIGIN).outcome == Outcome.STORED
    result = ingest_file(second, ORIGIN)

    assert result.outcome == Outcome.IGNORED
    instance = Instance.objects.get()
    assert instance.header["00100010"]["Value"] == [{"Alphabetic": "FIRST^COPY"}]
    assert len(stored_files()) == 1


def test_a_resent_instance_replaces_the_first_when_configured(tmp_path, settings):
    settings.PACS_DUPLICATE_POLICY = "replace"
    first = make_file(tmp_path, "first.dcm", sop_uid="1.2.3.9", SeriesDescription="v1")
    second = make_file(tmp_path, "second.dcm", sop_uid="1.2.3.9", SeriesDescription="v2")

    ingest_file(first, ORIGIN)
    result = ingest_file(second, ORIGIN)

    assert result.outcome == Outcome.REPLACED
    instance = Instance.objects.get()
    assert instance.header["0008103E"]["Value"] == ["v2"]
    (path,) = stored_files()  # the first copy's file is gone
    assert path.read_bytes() == second.read_bytes()


def test_the_same_bytes_sent_twice_with_replace_keep_the_file(tmp_path, settings):
    settings.PACS_DUPLICATE_POLICY = "replace"
    source = make_file(tmp_path)
    ingest_file(source, ORIGIN)
    assert ingest_file(source, ORIGIN).outcome == Outcome.REPLACED
    instance = Instance.objects.get()
    assert storage.absolute_path(instance.storage_location, instance.file_path).exists()


def test_a_database_failure_leaves_no_file_and_no_rows(tmp_path):
    with mock.patch("pacsone.ingest.Series.objects.get_or_create", side_effect=RuntimeError("db down")):
        result = ingest_file(make_file(tmp_path), ORIGIN)

    assert result.outcome == Outcome.FAILED
    assert "db down" in result.reason
    assert stored_files() == [] and temp_leftovers() == []
    assert not Patient.objects.exists() and not Study.objects.exists()


def test_a_disk_failure_is_reported_not_raised(tmp_path):
    with mock.patch("pacsone.storage.place", side_effect=OSError(28, "No space left on device")):
        result = ingest_file(make_file(tmp_path), ORIGIN)

    assert result.outcome == Outcome.FAILED
    assert "No space left" in result.reason
    assert not Instance.objects.exists()


def test_a_bad_optional_value_does_not_reject_the_instance(tmp_path):
    with config.disable_value_validation():
        ds = make_dataset(StudyDate="2024-13-45")
        ds[0x00200013] = RawDataElement(Tag(0x00200013), "IS", 12, b"not-a-number", 0, False, True)
        path = write_dataset(ds, tmp_path / "odd.dcm")

    result = ingest_file(path, ORIGIN)

    assert result.outcome == Outcome.STORED
    study = Study.objects.get()
    assert study.study_date is None


def test_equipment_is_shared_between_series_from_one_device(tmp_path):
    ingest_file(make_file(tmp_path, "a.dcm", StationName="CT1"), ORIGIN)
    ingest_file(make_file(tmp_path, "b.dcm", StationName="CT1"), ORIGIN)
    assert Series.objects.count() == 2
    assert Equipment.objects.count() == 1


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "JPEG2000.dcm", "MR_small_bigendian.dcm"])
def test_compressed_files_are_stored_byte_for_byte(name):
    source = pydicom_file(name)
    assert ingest_file(source, ORIGIN).outcome == Outcome.STORED
    (path,) = stored_files()
    assert Path(path).read_bytes() == source.read_bytes()
    assert dataset_bytes(path) == dataset_bytes(source)


def test_it_rejects_a_data_set_whose_pixel_data_runs_past_the_end(tmp_path):
    good = make_file(tmp_path)
    truncated = tmp_path / "cut.dcm"
    truncated.write_bytes(good.read_bytes()[:-512])

    result = ingest_file(truncated, ORIGIN)

    assert result.outcome == Outcome.UNREADABLE
    assert result.reason == "truncated data set: (7FE0,0010) runs 512 bytes past the end"
    assert not Instance.objects.exists() and stored_files() == [] and temp_leftovers() == []


def test_it_rejects_pydicoms_truncated_file(tmp_path):
    result = ingest_file(pydicom_file("MR_truncated.dcm"), ORIGIN)
    assert result.outcome == Outcome.UNREADABLE and result.reason.startswith("truncated data set")
    assert not Instance.objects.exists() and stored_files() == []


@pytest.mark.parametrize("meta_keyword,keyword", [("MediaStorageSOPInstanceUID", "SOPInstanceUID"),
                                                  ("MediaStorageSOPClassUID", "SOPClassUID")])
def test_it_rejects_a_file_whose_meta_names_another_instance(tmp_path, meta_keyword, keyword):
    ds = make_dataset()
    setattr(ds.file_meta, meta_keyword, "1.2.826.0.1.3680043.99.77")
    ds.preamble = b"\0" * 128
    source = tmp_path / "mismatch.dcm"
    ds.save_as(source, enforce_file_format=False)  # as written, not made consistent by pydicom

    result = ingest_file(source, ORIGIN)

    assert result.outcome == Outcome.INVALID
    assert result.reason == f"{keyword} differs from the file meta / C-STORE command"
    assert not Instance.objects.exists() and stored_files() == []
