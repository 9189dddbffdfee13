"""Forward a study to a registered AE from its page: a pynetdicom storage SCP receives it; the
Forward privilege, visibility, an unknown AE and an unreachable one; the journal and the job."""

import datetime
import threading

import pytest
from pynetdicom import ALL_TRANSFER_SYNTAXES, AE, AllStoragePresentationContexts, evt

from audit.models import Entry
from pacsone.ingest import Origin, ingest_file
from pacsone.models import RemoteAE
from routing.models import Job
from tests.helpers import free_port, make_dataset, write_dataset
from tests.people import make_user

pytestmark = pytest.mark.django_db(transaction=True)

STUDY = "1.2.826.8.1"
HIDDEN = "1.2.826.8.2"


@pytest.fixture
def peer():
    """A storage SCP that keeps the SOP Instance UIDs it receives."""
    received = []
    lock = threading.Lock()

    def on_store(event):
        with lock:
            received.append(event.dataset.SOPInstanceUID)
        return 0x0000

    ae = AE(ae_title="PEER")
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    yield RemoteAE.objects.create(ae_title="PEER", host="127.0.0.1", port=port), received
    server.shutdown()


@pytest.fixture
def archive(tmp_path):
    for number in range(1, 4):
        ds = make_dataset(study_uid=STUDY, series_uid=STUDY + ".1", sop_uid=f"{STUDY}.1.{number}", InstanceNumber=number)
        ingest_file(write_dataset(ds, tmp_path / f"{number}.dcm"), Origin("import"))
    ingest_file(write_dataset(make_dataset(study_uid=HIDDEN, patient_id="P2", ReferringPhysicianName="JONES^BOB"),
                              tmp_path / "hidden.dcm"), Origin("import"))
    return make_user("fwd", ["view", "forward"])


def test_a_study_is_forwarded_as_a_job_and_journaled(client, archive, peer):
    remote, received = peer
    client.force_login(archive)
    page = client.get(f"/studies/{STUDY}/")
    assert b"Forward</button>" in page.content and b"PEER (127.0.0.1" in page.content
    response = client.post(f"/studies/{STUDY}/forward", {"ae": remote.pk})
    job = Job.objects.get(kind="forward")
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert job.state == "done" and job.done == 3 and job.failed == 0, job.message
    assert sorted(received) == [f"{STUDY}.1.{n}" for n in (1, 2, 3)]
    entries = Entry.objects.filter(action="forward", study_uid=STUDY)
    assert {e.outcome for e in entries} == {"success"} and entries.count() == 2  # asked, then done


def test_an_unreachable_remote_is_retried_then_fails_the_job_with_the_reason(client, archive, monkeypatch):
    from routing import clock
    from routing.runner import run_due

    remote = RemoteAE.objects.create(ae_title="GONE", host="127.0.0.1", port=free_port())
    client.force_login(archive)
    client.post(f"/studies/{STUDY}/forward", {"ae": remote.pk})
    job = Job.objects.get(kind="forward")
    assert job.state == "queued" and job.attempts == 1 and "cannot be reached" in job.last_error
    start = clock.now()
    for minutes in (2, 5):  # past each back-off (60 s, then 120 s)
        monkeypatch.setattr(clock, "now", lambda minutes=minutes: start + datetime.timedelta(minutes=minutes))
        assert run_due() == [job.pk]
    job.refresh_from_db()
    assert job.state == "failed" and job.attempts == 3 and job.failed == 3
    assert "0 of 3 images sent to GONE" in job.message and "cannot be reached" in job.last_error
    assert Entry.objects.filter(action="forward", outcome="failure", study_uid=STUDY).exists()


@pytest.mark.parametrize("ae", ["", "999", "abc"])
def test_an_unknown_remote_is_refused_and_nothing_starts(client, archive, ae):
    client.force_login(archive)
    response = client.post(f"/studies/{STUDY}/forward", {"ae": ae}, follow=True)
    assert b"Choose a registered remote AE" in response.content
    assert not Job.objects.exists()


def test_forward_needs_the_privilege_and_a_visible_study(client, archive, peer):
    remote, received = peer
    viewer = make_user("viewer", ["view"])
    client.force_login(viewer)
    assert b"Forward</button>" not in client.get(f"/studies/{STUDY}/").content
    assert client.post(f"/studies/{STUDY}/forward", {"ae": remote.pk}).status_code == 403
    no_view = make_user("forwarder", ["forward"])  # sees public studies only
    client.force_login(no_view)
    assert client.post(f"/studies/{HIDDEN}/forward", {"ae": remote.pk}).status_code == 404
    assert client.post("/studies/9.9.9/forward", {"ae": remote.pk}).status_code == 404
    client.force_login(archive)
    assert client.get(f"/studies/{STUDY}/forward").status_code == 405
    assert not Job.objects.exists() and not received
