"""The SCU service layer against dcmtk's dcmqrscp: echo, find, move to us (through our SCP and
the one ingest path), store; and clear errors for unreachable or unwilling remotes."""

import time

import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE, evt

from pacsone.dicom import scu
from pacsone.models import Instance, RemoteAE, Study
from tests.helpers import free_port, make_file
from tests.pacsone.dicom.remote_archive import start_remote_archive

pytestmark = pytest.mark.peers

UID1, UID2 = "1.2.826.0.1.3680043.11.1", "1.2.826.0.1.3680043.11.2"


@pytest.fixture
def remote(scp, tmp_path):
    _ae, port = scp
    archive = start_remote_archive(tmp_path / "remote", port)
    archive.add_study(UID1, 3, patient_id="R1", patient_name="DOE^JANE", StudyDate="20240301")
    archive.add_study(UID2, 1, patient_id="R2", patient_name="ROE^JIM", StudyDate="20240302")
    yield archive
    archive.stop()


def study_query(**keys) -> Dataset:
    ds = scu.study_identifier("")
    for keyword, value in {"PatientName": "", "PatientID": "", "StudyDate": "", **keys}.items():
        setattr(ds, keyword, value)
    return ds


def test_echo(remote):
    assert scu.echo(remote.ae) == 0x0000


def test_find(remote):
    answers = scu.find(remote.ae, study_query(PatientName="DOE*"))
    assert [(a.StudyInstanceUID, a.PatientID) for a in answers] == [(UID1, "R1")]
    assert len(scu.find(remote.ae, study_query())) == 2
    assert len(scu.find(remote.ae, study_query(), limit=1)) == 1


def test_retrieve_a_study_into_the_archive(remote):
    result = scu.retrieve_study(remote.ae, UID1)
    assert result.ok and result.completed == 3
    study = Study.objects.get(study_instance_uid=UID1)
    assert study.source_ae == "REMOTE" and Instance.objects.filter(series__study=study).count() == 3


def test_store_to_the_remote(remote, tmp_path):
    files = [make_file(tmp_path / "out", f"{i}.dcm", study_uid="1.2.826.0.1.3680043.11.9", patient_id="S1")
             for i in range(2)]
    (tmp_path / "out" / "junk.dcm").write_bytes(b"not dicom")
    result = scu.store(remote.ae, [*files, tmp_path / "out" / "junk.dcm"])
    assert result.sent == 2 and len(result.failed) == 1 and "junk.dcm" in result.failed[0]
    assert [a.PatientID for a in scu.find(remote.ae, study_query(PatientID="S1"))] == ["S1"]


def test_unreachable_and_unwilling_remotes(remote, db):
    nobody = RemoteAE.objects.create(ae_title="NOBODY", host="127.0.0.1", port=free_port())
    with pytest.raises(scu.ScuError, match="cannot be reached"):
        scu.echo(nobody)
    wrong_title = RemoteAE(ae_title="WRONG", host="127.0.0.1", port=remote.ae.port)
    with pytest.raises(scu.ScuError, match="rejected"):
        scu.find(wrong_title, study_query())


def test_a_rejection_faster_than_pynetdicom_looks_is_still_a_rejection(scp, monkeypatch):
    """pynetdicom's negotiating thread, when it looks after the rejection was read and the socket
    closed, reports an abort (seen on a loaded CI): made certain here by delaying that thread."""
    associate = AE.associate

    def slow_to_look(self, *args, evt_handlers=(), **kwargs):
        late = (evt.EVT_REQUESTED, lambda event: time.sleep(0.5))  # on the negotiating thread
        return associate(self, *args, evt_handlers=[*evt_handlers, late], **kwargs)

    monkeypatch.setattr(AE, "associate", slow_to_look)
    _ae, port = scp
    with pytest.raises(scu.ScuError, match="WRONG rejected the association"):
        scu.echo(RemoteAE(ae_title="WRONG", host="127.0.0.1", port=port))


def test_a_remote_that_does_not_know_us(scp, tmp_path, settings):
    settings.PACS_AE_TITLE = "STRANGER"
    _ae, port = scp
    archive = start_remote_archive(tmp_path / "remote", port, our_ae="PACSONE")
    try:
        archive.add_study(UID1, 1)
        with pytest.raises(scu.ScuError, match="does not know our AE title"):
            scu.retrieve_study(archive.ae, UID1)
    finally:
        archive.stop()
