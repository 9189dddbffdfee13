"""The storage SCP over a real localhost association, with pynetdicom as the peer."""

import pytest
from pydicom import dcmread
from pynetdicom import AE, _config
from pynetdicom.sop_class import CTImageStorage, Verification

from pacsone import storage
from pacsone.models import Instance, Study
from tests.helpers import COMPRESSED_TEST_FILES, dataset_bytes, make_dataset, pydicom_file


def associate(port, contexts, ae_title="MODALITY"):
    ae = AE(ae_title=ae_title)
    for abstract_syntax, transfer_syntaxes in contexts:
        ae.add_requested_context(abstract_syntax, transfer_syntaxes)
    assoc = ae.associate("127.0.0.1", port, ae_title="PACSONE")
    assert assoc.is_established
    return assoc


def test_it_answers_c_echo(scp):
    _ae_title, port = scp
    assoc = associate(port, [(Verification, None)])
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()


def test_it_stores_and_indexes_before_answering_success(scp):
    _ae_title, port = scp
    ds = make_dataset(patient_name="SMITH^ANNA")
    assoc = associate(port, [(CTImageStorage, None)])

    status = assoc.send_c_store(ds)

    # Success is only sent once the row is committed, so it is visible right now.
    assert status.Status == 0x0000
    instance = Instance.objects.get(sop_instance_uid=ds.SOPInstanceUID)
    assert instance.source_ae == "MODALITY"
    assert Study.objects.get().patient.patient_name == "SMITH^ANNA"
    assoc.release()
    stored = storage.absolute_path(instance.storage_location, instance.file_path)
    assert dcmread(stored).PixelData == ds.PixelData


@pytest.mark.parametrize("name", sorted(COMPRESSED_TEST_FILES))
def test_compressed_data_is_stored_as_sent(scp, name, monkeypatch):
    _ae_title, port = scp
    # Send the file's bytes as they are (pynetdicom would otherwise decode and re-encode them).
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)
    source = pydicom_file(name)
    ds = dcmread(source)
    syntax = COMPRESSED_TEST_FILES[name]
    assoc = associate(port, [(ds.SOPClassUID, [syntax])])

    status = assoc.send_c_store(source)
    assoc.release()

    assert status.Status == 0x0000
    instance = Instance.objects.get(sop_instance_uid=ds.SOPInstanceUID)
    assert instance.transfer_syntax_uid == syntax
    stored = storage.absolute_path(instance.storage_location, instance.file_path)
    assert dataset_bytes(stored) == dataset_bytes(source)


@pytest.mark.parametrize("study_uid, reason", [
    ("1.2.840.abc", "malformed StudyInstanceUID"),
    ("1.2.3\\1.2.4", "malformed StudyInstanceUID"),  # two values
    ("", "missing StudyInstanceUID"),
    ("1." + "2" * 70, "malformed StudyInstanceUID"),  # longer than 64
])
def test_a_data_set_with_a_bad_study_uid_is_refused_with_the_reason(scp, study_uid, reason):
    """The received header's UIDs are read from its DICOM JSON: the same verdicts as from pydicom."""
    _ae_title, port = scp
    ds = make_dataset()
    ds.StudyInstanceUID = study_uid
    assoc = associate(port, [(CTImageStorage, None)])

    status = assoc.send_c_store(ds)
    assoc.release()

    assert status.Status == 0xA900
    assert status.ErrorComment == reason
    assert not Instance.objects.exists()
