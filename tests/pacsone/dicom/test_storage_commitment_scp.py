"""Storage Commitment as SCP: a modality (pynetdicom) asks us to commit what it sent; the
N-EVENT-REPORT comes on its own association when it waits there, else on an association we open
to its registered address (a job of the job layer); missing and mismatched instances are listed
as failed with 0x0112 and 0x0119; only AEs the policy lets store may ask; every answer journaled."""

import threading
import time

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import CTImageStorage, MRImageStorage, StorageCommitmentPushModel

from audit.models import Entry
from pacsone.dicom import commitment
from pacsone.models import RemoteAE
from routing.models import Job
from tests.helpers import free_port
from tests.routing.archive import store_study

pytestmark = pytest.mark.django_db(transaction=True)
INSTANCE = commitment.WELL_KNOWN_INSTANCE


def request(uid: str, references: list[tuple[str, str]]) -> Dataset:
    ds = Dataset()
    ds.TransactionUID = uid
    ds.ReferencedSOPSequence = []
    for sop_class, sop_instance in references:
        item = Dataset()
        item.ReferencedSOPClassUID = sop_class
        item.ReferencedSOPInstanceUID = sop_instance
        ds.ReferencedSOPSequence.append(item)
    return ds


class Reports:
    """N-EVENT-REPORTs a pynetdicom peer received."""

    def __init__(self):
        self.received: list[tuple[int, Dataset, str]] = []  # (event type, data set, how)
        self.arrived = threading.Event()

    def handler(self, how: str):
        def on_report(event):
            self.received.append((event.request.EventTypeID, event.event_information, how))
            self.arrived.set()
            return 0x0000, None
        return on_report


def references_of(ds: Dataset, keyword: str) -> dict[str, int | None]:
    return {str(item.ReferencedSOPInstanceUID): item.get("FailureReason") for item in ds.get(keyword, [])}


def finished_commitment_job(timeout: float = 10) -> Job:
    """The report job the SCP queued (it answers the release first, then queues it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.filter(kind="commitment").first()
        if job is not None and job.finished:
            return job
        time.sleep(0.05)
    raise AssertionError("no finished storage commitment job")


@pytest.fixture
def stored(tmp_path):
    return store_study(tmp_path, "1.2.826.0.1.3680043.10.77", 2)


def commitment_request_for(stored_uid_prefix: str):
    """Two stored instances, one that is not here, one named under another SOP class."""
    return [(str(CTImageStorage), f"{stored_uid_prefix}.1.1"), (str(CTImageStorage), "1.2.826.0.1.3680043.10.77.9.9"),
            (str(MRImageStorage), f"{stored_uid_prefix}.1.2")]


def test_the_report_comes_on_the_same_association_when_the_modality_waits_there(scp, stored):
    _ae_title, port = scp
    reports = Reports()
    modality = AE(ae_title="MODALITY")
    modality.add_requested_context(StorageCommitmentPushModel)
    assoc = modality.associate("127.0.0.1", port, ae_title="PACSONE",
                               evt_handlers=[(evt.EVT_N_EVENT_REPORT, reports.handler("same"))])
    assert assoc.is_established
    uid = generate_uid()
    try:
        status, _reply = assoc.send_n_action(request(uid, commitment_request_for(stored.study_instance_uid)), 1,
                                             StorageCommitmentPushModel, INSTANCE)
        assert status.Status == 0x0000
        assert reports.arrived.wait(10), "no N-EVENT-REPORT on the association"
    finally:
        assoc.release()
    event_type, report, how = reports.received[0]
    assert how == "same" and event_type == commitment.SOME_FAILED
    assert report.TransactionUID == uid
    assert references_of(report, "ReferencedSOPSequence") == {f"{stored.study_instance_uid}.1.1": None}
    assert references_of(report, "FailedSOPSequence") == {"1.2.826.0.1.3680043.10.77.9.9": 0x0112,
                                                          f"{stored.study_instance_uid}.1.2": 0x0119}
    entry = Entry.objects.get(target=f"storage commitment {uid}")
    assert entry.ae_title == "MODALITY" and "1 committed, 2 failed (reported on the same association)" in entry.detail
    assert not Job.objects.filter(kind="commitment").exists()


def test_a_modality_that_releases_gets_its_report_on_a_new_association_as_a_job(scp, stored):
    _ae_title, port = scp
    reports = Reports()
    modality_port = free_port()
    listener = AE(ae_title="MODALITY")
    listener.add_supported_context(StorageCommitmentPushModel, scu_role=True, scp_role=True)
    server = listener.start_server(("127.0.0.1", modality_port), block=False,
                                   evt_handlers=[(evt.EVT_N_EVENT_REPORT, reports.handler("new"))])
    RemoteAE.objects.create(ae_title="MODALITY", host="127.0.0.1", port=modality_port)
    uid = generate_uid()
    everything = [(str(CTImageStorage), f"{stored.study_instance_uid}.1.{n}") for n in (1, 2)]
    try:
        requestor = AE(ae_title="MODALITY")
        requestor.add_requested_context(StorageCommitmentPushModel)
        assoc = requestor.associate("127.0.0.1", port, ae_title="PACSONE")
        status, _reply = assoc.send_n_action(request(uid, everything), 1, StorageCommitmentPushModel, INSTANCE)
        assert status.Status == 0x0000
        assoc.release()
        assert reports.arrived.wait(15), "no N-EVENT-REPORT on a new association"
    finally:
        server.shutdown()
    event_type, report, how = reports.received[0]
    assert how == "new" and event_type == commitment.ALL_COMMITTED
    assert set(references_of(report, "ReferencedSOPSequence")) == {uid for _c, uid in everything}
    assert "FailedSOPSequence" not in report
    job = finished_commitment_job()
    assert job.state == "done" and "2 committed, 0 failed" in job.message
    details = list(Entry.objects.filter(target=f"storage commitment {uid}").values_list("detail", flat=True))
    assert any("report queued for a new association" in d for d in details)
    assert any("reported on a new association, answered 0x0000" in d for d in details)


def test_a_report_for_an_unregistered_modality_fails_its_job_with_the_reason(scp, stored):
    _ae_title, port = scp
    requestor = AE(ae_title="NOWHERE")
    requestor.add_requested_context(StorageCommitmentPushModel)
    assoc = requestor.associate("127.0.0.1", port, ae_title="PACSONE")
    status, _reply = assoc.send_n_action(request(generate_uid(), [(str(CTImageStorage), "1.2.3.4")]), 1,
                                         StorageCommitmentPushModel, INSTANCE)
    assoc.release()
    assert status.Status == 0x0000
    job = finished_commitment_job()
    assert job.state == "failed" and "NOWHERE is not in the remote AE registry" in job.last_error


def test_an_ae_the_policy_does_not_let_store_is_refused_and_journaled(scp, stored, settings):
    settings.PACS_ACCEPT_CALLING_AE = "registered"
    RemoteAE.objects.create(ae_title="VIEWER", host="127.0.0.1", port=104, may_store=False)
    _ae_title, port = scp
    requestor = AE(ae_title="VIEWER")
    requestor.add_requested_context(StorageCommitmentPushModel)
    assoc = requestor.associate("127.0.0.1", port, ae_title="PACSONE")
    assert assoc.is_established
    status, _reply = assoc.send_n_action(request(generate_uid(), [(str(CTImageStorage), "1.2.3.4")]), 1,
                                         StorageCommitmentPushModel, INSTANCE)
    assoc.release()
    assert status.Status == 0x0124
    entry = Entry.objects.get(target="storage commitment request")
    assert entry.outcome == "denied" and "VIEWER may not store here" in entry.detail
    assert not Job.objects.filter(kind="commitment").exists()


def test_a_request_without_a_transaction_uid_is_refused(scp):
    _ae_title, port = scp
    requestor = AE(ae_title="MODALITY")
    requestor.add_requested_context(StorageCommitmentPushModel)
    assoc = requestor.associate("127.0.0.1", port, ae_title="PACSONE")
    ds = request("", [(str(CTImageStorage), "1.2.3.4")])
    del ds.TransactionUID
    status, _reply = assoc.send_n_action(ds, 1, StorageCommitmentPushModel, INSTANCE)
    assoc.release()
    assert status.Status == commitment.INVALID_ARGUMENT
    assert "Transaction UID" in status.ErrorComment
