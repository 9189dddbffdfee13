"""After Change Storage, the DICOM engine sends the files from their new location, through the
storage interface: as stored (the zero-copy path) and transcoded (the decoding path)."""

from pydicom.dataset import Dataset

from pacsone import storage
from pacsone.change_storage import move_study
from pacsone.ingest import Origin, ingest_file
from pacsone.models import Instance, StorageLocation, Study
from tests.helpers import pydicom_file
from tests.pacsone.dicom.test_cmove_cget import get

RLE = "1.2.840.10008.1.2.5"


def test_a_moved_study_is_retrieved_from_its_new_location(scp, tmp_path, settings):
    settings.PACS_DICOM_QUERY_POLICY = "open"
    assert ingest_file(pydicom_file("MR_small_RLE.dcm"), Origin("import")).outcome.accepted
    source = storage.default_location()
    study = Study.objects.select_related("patient").get()
    target = StorageLocation.objects.create(name="second", path=str(tmp_path / "second"))
    move_study(study, target, "test")
    instance = Instance.objects.get()
    assert instance.storage_location_id == target.pk and not storage.exists(source, instance.file_path)

    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = study.study_instance_uid
    _ae, port = scp
    responses, as_stored = get(port, ds, syntaxes=[RLE])
    assert responses[-1].Status == 0x0000 and len(as_stored) == 1
    assert as_stored[0].file_meta.TransferSyntaxUID == RLE
    responses, decoded = get(port, ds)  # uncompressed only: decoded from the new location's file
    assert responses[-1].Status == 0x0000 and len(decoded) == 1
    assert not decoded[0].file_meta.TransferSyntaxUID.is_compressed
    assert decoded[0].SOPInstanceUID == instance.sop_instance_uid
