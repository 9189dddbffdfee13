"""Storage Commitment with a real Orthanc (1.10, Debian), both ways: routing to Orthanc asks it to
commit and records its answer per instance (Orthanc reports on an association it opens to our
SCP); Orthanc asking us (REST /modalities/pacs/store with StorageCommitment) gets our report."""

import time

import pytest

from routing.models import Delivery, Job, RoutingRule
from tests.helpers import make_dataset, write_dataset
from tests.routing.archive import sop_uids, store_study
from tests.routing.orthanc import Orthanc

pytestmark = [pytest.mark.peers, pytest.mark.django_db(transaction=True)]
STUDY = "1.2.826.0.1.3680043.10.93"


@pytest.fixture
def orthanc(tmp_path, scp, settings):
    settings.PACS_ROUTING_QUIET_SECONDS = 0
    settings.PACS_COMMITMENT_WAIT_SECONDS = 2
    _ae, port = scp
    peer = Orthanc(tmp_path / "orthanc", our_port=port).start()
    yield peer
    peer.stop()


def wait_until(condition, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_routing_to_orthanc_records_its_commitment_per_instance(tmp_path, orthanc):
    rule = RoutingRule.objects.create(name="to-orthanc", match_keyword="PatientID", match_pattern="*")
    rule.destinations.set([orthanc.register(requests_storage_commitment=True)])
    store_study(tmp_path, STUDY, 3)
    job = Job.objects.get(kind="route")
    assert job.state == "done", job.last_error
    assert orthanc.rest("/statistics")["CountInstances"] == 3
    committed = lambda: set(Delivery.objects.values_list("commitment", flat=True)) == {"committed"}  # noqa: E731
    assert wait_until(committed), (list(Delivery.objects.values_list("commitment", "commitment_reason")), orthanc.log())
    assert set(Delivery.objects.values_list("instance__sop_instance_uid", flat=True)) == sop_uids(STUDY, 3)
    assert set(Delivery.objects.values_list("confirmation", flat=True)) == {"commitment"}
    assert wait_until(lambda: Job.objects.get(kind="commitment").state == "done")


def test_orthanc_asking_us_to_commit_gets_our_report(tmp_path, orthanc):
    orthanc.register()  # where our report goes
    ours = write_dataset(make_dataset(study_uid=STUDY, sop_uid=f"{STUDY}.1.1"), tmp_path / "ours.dcm")
    uploaded = orthanc.rest("/instances", ours.read_bytes())
    answer = orthanc.rest("/modalities/pacs/store", {"Resources": [uploaded["ID"]], "StorageCommitment": True,
                                                     "Synchronous": True})
    transaction_uid = answer["StorageCommitmentTransactionUID"]
    report = {}

    def reported() -> bool:
        report.update(orthanc.rest(f"/storage-commitment/{transaction_uid}"))
        return report.get("Status") != "Pending"

    assert wait_until(reported), orthanc.log()
    assert report["Status"] == "Success", report
    assert [item["SOPInstanceUID"] for item in report["Success"]] == [f"{STUDY}.1.1"]
    assert Job.objects.get(kind="commitment").state == "done"
