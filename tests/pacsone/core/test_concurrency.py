"""The SCP under concurrent associations, bad data sets in the middle of an association, and
the calling-AE policy; pynetdicom is the peer."""

import hashlib
import threading
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, _config
from pynetdicom.sop_class import CTImageStorage, Verification

from pacsone import storage
from pacsone.models import Instance, Patient, RemoteAE, Series, Study
from tests.helpers import dataset_bytes, make_dataset, make_file, rejection, stored_files, temp_leftovers

SUCCESS = 0x0000
CANNOT_UNDERSTAND = 0xC000
CALLING_AE_NOT_RECOGNIZED = (0x01, 0x01, 0x03)  # permanent, service user (PS3.8 9.3.4)
DATASET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
NOT_AUTHORIZED = 0x0124
TIMEOUT = 30


def client(ae_title: str = "MODALITY") -> AE:
    ae = AE(ae_title=ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TIMEOUT
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    ae.add_requested_context(Verification)
    return ae


def associate(port: int, ae_title: str = "MODALITY"):
    return client(ae_title).associate("127.0.0.1", port, ae_title="PACSONE")


def status_of(rsp) -> int | None:
    return rsp.Status if "Status" in rsp else None


def assert_stored_intact(sop_uids) -> None:
    for instance in Instance.objects.filter(sop_instance_uid__in=sop_uids):
        path = storage.absolute_path(instance.storage_location, instance.file_path)
        assert storage.checksum(path) == (instance.sha256, instance.file_size)


# --- Concurrent associations ---------------------------------------------------------------------

SENDERS = 4
FILES_PER_SENDER = 25


def datasets_for(sender: int, shared_study: str, shared_series: str) -> list:
    """25 instances: 8 into one series every sender writes to, 8 into this sender's own series of
    the same study, 9 into two series of a study of this sender's own patient."""
    own_series_in_shared = generate_uid()
    own_study = generate_uid()
    own_series = [generate_uid(), generate_uid()]
    datasets = []
    for n in range(FILES_PER_SENDER):
        if n < 8:
            study, series, patient = shared_study, shared_series, "SHARED"
        elif n < 16:
            study, series, patient = shared_study, own_series_in_shared, "SHARED"
        else:
            study, series, patient = own_study, own_series[n % 2], f"OWN{sender}"
        datasets.append(
            make_dataset(study_uid=study, series_uid=series, patient_id=patient, rows=16, InstanceNumber=n + 1)
        )
    return datasets


def test_concurrent_associations_lose_nothing_and_duplicate_nothing(scp):
    _ae_title, port = scp
    shared_study, shared_series = generate_uid(), generate_uid()
    work = [datasets_for(sender, shared_study, shared_series) for sender in range(SENDERS)]
    statuses: dict[str, int | None] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()
    everyone_associated = threading.Barrier(SENDERS, timeout=TIMEOUT)

    def send(sender: int) -> None:
        try:
            assoc = associate(port, ae_title=f"SENDER{sender}")
            assert assoc.is_established
            everyone_associated.wait()  # all four associations are open before the first store
            try:
                for ds in work[sender]:
                    status = status_of(assoc.send_c_store(ds))
                    with lock:
                        statuses[ds.SOPInstanceUID] = status
            finally:
                assoc.release()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
            everyone_associated.abort()

    threads = [threading.Thread(target=send, args=(n,), name=f"sender-{n}") for n in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a sender did not finish in 120 s"
    assert errors == []

    total = SENDERS * FILES_PER_SENDER
    assert len(statuses) == total
    assert {uid: s for uid, s in statuses.items() if s != SUCCESS} == {}
    assert Instance.objects.count() == total
    assert set(Instance.objects.values_list("sop_instance_uid", flat=True)) == set(statuses)
    assert Patient.objects.count() == 1 + SENDERS
    assert Patient.objects.filter(patient_id="SHARED").count() == 1
    assert Study.objects.count() == 1 + SENDERS
    assert Series.objects.count() == 1 + SENDERS + 2 * SENDERS
    assert Series.objects.get(series_instance_uid=shared_series).instances.count() == 8 * SENDERS
    assert Instance.objects.filter(series__study__study_instance_uid=shared_study).count() == 16 * SENDERS
    assert len(stored_files()) == total
    assert temp_leftovers() == []
    assert_stored_intact(statuses)


# --- Bad data sets inside one association ----------------------------------------------------------


def garbage(size: int) -> bytes:
    """Deterministic bytes that are no DICOM data set."""
    out = b""
    block = b"not a data set"
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return out[:size]


def part10_with_garbage_dataset(folder: Path) -> tuple[Path, str]:
    """A valid preamble and file meta (CT, explicit VR little endian), then garbage."""
    source = make_file(folder / "src", "source.dcm")
    raw = source.read_bytes()
    meta_end = len(raw) - len(dataset_bytes(source))
    damaged = folder / "garbage.dcm"
    damaged.write_bytes(raw[:meta_end] + garbage(4096))
    return damaged, dcmread(source, stop_before_pixels=True).SOPInstanceUID


@pytest.fixture
def send_files_raw():
    """Make pynetdicom send a file's data set bytes as they are (no decoding); restored after."""
    previous = _config.STORE_SEND_CHUNKED_DATASET
    _config.STORE_SEND_CHUNKED_DATASET = True
    yield
    _config.STORE_SEND_CHUNKED_DATASET = previous


def test_bad_data_sets_get_failure_statuses_and_the_association_goes_on(scp, tmp_path, send_files_raw):
    _ae_title, port = scp
    first = make_file(tmp_path, "first.dcm")
    unreadable, unreadable_uid = part10_with_garbage_dataset(tmp_path)
    no_study_uid = make_dataset()
    del no_study_uid.StudyInstanceUID
    last = make_file(tmp_path, "last.dcm")
    assoc = associate(port)
    assert assoc.is_established
    try:
        rsp_first = assoc.send_c_store(first)
        rsp_unreadable = assoc.send_c_store(unreadable)
        rsp_invalid = assoc.send_c_store(no_study_uid)
        rsp_last = assoc.send_c_store(last)
        rsp_echo = assoc.send_c_echo()
        assert assoc.is_established
    finally:
        assoc.release()

    assert status_of(rsp_first) == SUCCESS
    assert status_of(rsp_unreadable) == CANNOT_UNDERSTAND, f"garbage after the file meta got:\n{rsp_unreadable}"
    assert rsp_unreadable.ErrorComment
    assert status_of(rsp_invalid) == DATASET_DOES_NOT_MATCH_SOP_CLASS
    assert rsp_invalid.ErrorComment == "missing StudyInstanceUID"
    assert status_of(rsp_last) == SUCCESS
    assert status_of(rsp_echo) == SUCCESS
    stored = set(Instance.objects.values_list("sop_instance_uid", flat=True))
    assert stored == {dcmread(first).SOPInstanceUID, dcmread(last).SOPInstanceUID}
    assert unreadable_uid not in stored and no_study_uid.SOPInstanceUID not in stored
    assert len(stored_files()) == 2
    assert temp_leftovers() == []  # the rejected data sets' received files are gone
    assert_stored_intact(stored)


# --- Calling-AE policy --------------------------------------------------------------------------------


def test_only_registered_calling_aes_may_associate_when_so_configured(scp, settings):
    _ae_title, port = scp
    settings.PACS_ACCEPT_CALLING_AE = "registered"

    assert rejection(port, "MODALITY1") == CALLING_AE_NOT_RECOGNIZED

    RemoteAE.objects.create(ae_title="MODALITY1", host="127.0.0.1", port=104)
    ds = make_dataset()
    assoc = associate(port, ae_title="MODALITY1")
    assert assoc.is_established
    try:
        status = status_of(assoc.send_c_store(ds))
    finally:
        assoc.release()

    assert status == SUCCESS
    assert Instance.objects.get().sop_instance_uid == ds.SOPInstanceUID
    assert Study.objects.get().source_ae == "MODALITY1"
    assert rejection(port, "MODALITY2") == CALLING_AE_NOT_RECOGNIZED  # still only the registered one


def test_a_registered_ae_without_store_permission_is_refused_per_store(scp, settings):
    _ae_title, port = scp
    settings.PACS_ACCEPT_CALLING_AE = "registered"
    RemoteAE.objects.create(ae_title="VIEWER", host="127.0.0.1", port=104, may_store=False)

    assoc = associate(port, ae_title="VIEWER")
    assert assoc.is_established
    try:
        rsp = assoc.send_c_store(make_dataset())
        echo = status_of(assoc.send_c_echo())
    finally:
        assoc.release()

    assert status_of(rsp) == NOT_AUTHORIZED
    assert "VIEWER" in rsp.ErrorComment
    assert echo == SUCCESS
    assert not Instance.objects.exists()
    assert stored_files() == []


def test_any_calling_ae_may_store_by_default(scp, settings):
    _ae_title, port = scp
    settings.PACS_ACCEPT_CALLING_AE = "any"

    assoc = associate(port, ae_title="UNKNOWN_AE")
    assert assoc.is_established
    try:
        status = status_of(assoc.send_c_store(make_dataset()))
    finally:
        assoc.release()

    assert status == SUCCESS
    assert Instance.objects.count() == 1
