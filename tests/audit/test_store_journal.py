"""Images received or imported are journaled: one STORE/IMPORT entry per study and association."""

import time
from io import StringIO

import pytest
from django.core.management import call_command
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage

from audit.models import Entry
from tests.helpers import make_dataset, make_file


def test_a_c_store_association_is_journaled_with_the_calling_ae(scp):
    _ae_title, port = scp
    ae = AE(ae_title="CT_SCANNER")
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", port, ae_title="PACSONE")
    study_uid = generate_uid()
    for _ in range(3):
        assert assoc.send_c_store(make_dataset(study_uid=study_uid, patient_id="JRNL1")).Status == 0
    assoc.release()
    deadline = time.monotonic() + 10
    while not Entry.objects.filter(action="store").exists() and time.monotonic() < deadline:
        time.sleep(0.1)  # the entry is written when the association ends
    entry = Entry.objects.get(action="store")
    assert (entry.ae_title, entry.patient_id, entry.study_uid) == ("CT_SCANNER", "JRNL1", study_uid)
    assert entry.target == "3 instances via dicom" and entry.address == "127.0.0.1"


@pytest.mark.django_db
def test_an_import_is_journaled(tmp_path):
    make_file(tmp_path, patient_id="JRNL2")
    call_command("importdicom", str(tmp_path), "--no-progress", stdout=StringIO())
    entry = Entry.objects.get(action="import")
    assert entry.patient_id == "JRNL2" and entry.target == "1 instance via import"


@pytest.mark.django_db
def test_the_store_entry_is_written_even_when_the_post_ingest_task_fails(tmp_path, monkeypatch):
    def broken_queue(*args, **kwargs):
        raise ConnectionError("the task broker is down")

    monkeypatch.setattr("pacsone.tasks.async_task", broken_queue)
    make_file(tmp_path, patient_id="JRNL3")
    call_command("importdicom", str(tmp_path), "--no-progress", stdout=StringIO())
    entry = Entry.objects.get(action="import")
    assert entry.patient_id == "JRNL3" and entry.target == "1 instance via import"
