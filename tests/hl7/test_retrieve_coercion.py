"""Patient changes from ADT reach what C-GET and C-MOVE send (coerced at send time), while the
stored files stay as they were received."""

import hashlib

import numpy as np
import pytest
from pydicom import dcmread

from hl7.inbound import handle
from pacsone.ingest import Origin, ingest_file
from pacsone.models import Instance
from pacsone.storage import absolute_path
from tests.helpers import ingest_instance, make_file, pydicom_file
from tests.pacsone.dicom.test_cmove_cget import get, identifier, received, storescp  # noqa: F401 (fixture)
from tests.pacsone.dicom.test_dcmtk_interop import dcmtk

from .messages import adt_a40, adt_a08, msa


def applied(text: str, charset: str = "utf-8") -> None:
    assert msa(handle(text.encode(charset), "127.0.0.1").decode(charset))[1] == "AA"


def stored_sha256(instance: Instance) -> str:
    return hashlib.sha256(absolute_path(instance.storage_location, instance.file_path).read_bytes()).hexdigest()


@pytest.fixture
def retrievable(scp, settings):
    settings.PACS_DICOM_QUERY_POLICY = "open"
    return scp[1]


def test_c_get_sends_the_new_name_and_leaves_the_file_alone(retrievable, tmp_path):
    instance = ingest_instance(make_file(tmp_path, patient_id="P1", patient_name="OLD^NAME"))
    before = stored_sha256(instance)
    applied(adt_a08("P1", "MÜLLER^JÜRGEN", birth="19650304", sex="M", charset="UNICODE UTF-8"))
    responses, (got,) = get(retrievable, identifier("STUDY", StudyInstanceUID=instance.series.study.study_instance_uid))
    assert responses[-1].Status == 0
    assert (str(got.PatientName), got.PatientBirthDate, got.SpecificCharacterSet) == ("MÜLLER^JÜRGEN", "19650304",
                                                                                       "ISO_IR 192")
    original = dcmread(absolute_path(instance.storage_location, instance.file_path))
    assert np.array_equal(got.pixel_array, original.pixel_array)
    assert stored_sha256(instance) == before and str(original.PatientName) == "OLD^NAME"


def test_c_get_of_merged_studies_sends_the_surviving_id(retrievable, tmp_path):
    kept = ingest_instance(make_file(tmp_path / "a", patient_id="KEEP", patient_name="KEEP^ER"))
    moved = ingest_instance(make_file(tmp_path / "b", patient_id="DUP", patient_name="DUP^LICATE"))
    applied(adt_a40("KEEP", "DUP"))
    _responses, arrived = get(retrievable, identifier("STUDY", PatientID="DUP"))  # the prior ID finds both
    assert sorted((got.SOPInstanceUID, got.PatientID, str(got.PatientName)) for got in arrived) == sorted([
        (kept.sop_instance_uid, "KEEP", "KEEP^ER"), (moved.sop_instance_uid, "KEEP", "KEEP^ER")])


def test_a_compressed_file_is_coerced_as_stored_or_decompressed(retrievable):
    rle = dcmread(pydicom_file("MR_small_RLE.dcm"))
    assert ingest_file(pydicom_file("MR_small_RLE.dcm"), Origin("import")).outcome.accepted
    applied(adt_a08(rle.PatientID, "RENAMED^RLE"))
    for syntaxes, compressed in ((["1.2.840.10008.1.2.5"], True), (None, False)):
        responses, (got,) = get(retrievable, identifier("STUDY", StudyInstanceUID=rle.StudyInstanceUID), syntaxes)
        assert responses[-1].Status == 0
        assert str(got.PatientName) == "RENAMED^RLE"
        assert got.file_meta.TransferSyntaxUID.is_compressed == compressed
        assert np.array_equal(got.pixel_array, rle.pixel_array)


def test_movescu_delivers_the_new_name(retrievable, storescp, tmp_path):  # noqa: F811 (the fixture)
    instance = ingest_instance(make_file(tmp_path, patient_id="P2", patient_name="BEFORE^MOVE"))
    applied(adt_a08("P2", "AFTER^MOVE"))
    result = dcmtk("movescu", "-S", "-aet", "MOVESCU", "-aec", "PACSONE", "-aem", "STORESCP",
                   "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={instance.series.study.study_instance_uid}",
                   "127.0.0.1", retrievable)
    assert result.returncode == 0, result.stdout
    (got,) = received(storescp)
    assert str(got.PatientName) == "AFTER^MOVE"


def test_an_untouched_patient_is_sent_byte_for_byte(retrievable, tmp_path):
    path = make_file(tmp_path, patient_id="P3", patient_name="NEVER^CHANGED")
    instance = ingest_instance(path)
    _responses, (got,) = get(retrievable, identifier("STUDY", StudyInstanceUID=instance.series.study.study_instance_uid))
    assert str(got.PatientName) == "NEVER^CHANGED" and "SpecificCharacterSet" not in got
