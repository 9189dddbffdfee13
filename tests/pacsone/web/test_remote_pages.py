"""Pages: the remote AE registry (System Administration), the remote search with retrieve
(Query, Move) against dcmtk's dcmqrscp, and synchronization settings and runs."""

import datetime

import pytest
from django.utils import timezone
from django_q.models import Schedule

from audit.models import Entry
from pacsone.dicom import remote as remotes
from pacsone.models import Instance, RemoteAE, RemoteSync, Study
from routing.models import Job
from tests.pacsone.dicom.remote_archive import start_remote_archive
from tests.people import make_user

UID1, UID2, UID3 = "1.2.826.0.1.3680043.12.1", "1.2.826.0.1.3680043.12.2", "1.2.826.0.1.3680043.12.3"


@pytest.fixture
def admin(client, db):
    client.force_login(make_user("admin", ["system_admin"]))
    return client


# --- Registry pages ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_links_an_ae_to_a_user_shows_and_journals_it(admin):
    make_user("jane", first_name="Jane", last_name="Smith")
    jane = make_user("jane2", first_name="Jane", last_name="Doe")
    page = admin.get("/aes/add/").content.decode()
    assert "Its queries and retrieves see" in page and "jane2 (Jane Doe)" in page
    response = admin.post("/aes/add/", {"ae_title": "JANEWS", "host": "10.0.0.5", "port": "104", "may_query": "on",
                                        "networks": "10.1.0.0/16, ws7.example.org", "scope": "user", "user": jane.pk})
    assert response.status_code == 302
    ae = RemoteAE.objects.get(ae_title="JANEWS")
    assert (ae.scope, ae.user, ae.networks) == ("user", jane, "10.1.0.0/16, ws7.example.org")
    listing = admin.get("/aes/").content.decode()
    assert "user jane2" in listing and "10.1.0.0/16, ws7.example.org" in listing
    entry = Entry.objects.filter(action="configuration", target="remote AE JANEWS").latest("id")
    assert "sees=user jane2" in entry.detail and "calls_from=10.1.0.0/16, ws7.example.org" in entry.detail


@pytest.mark.django_db
@pytest.mark.parametrize("data,error", [
    ({"scope": "user"}, "Choose the user whose studies it sees."),
    ({"scope": "group"}, "Choose the group whose studies it sees."),
    ({"networks": "10.1.0.0/33"}, "is not an IP address, a network"),
])
def test_it_refuses_an_incomplete_link_or_a_bad_network(admin, data, error):
    response = admin.post("/aes/add/", {"ae_title": "WS", "host": "10.0.0.5", "port": "104", **data})
    assert response.status_code == 200 and error in response.content.decode()
    assert not RemoteAE.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/aes/", "/aes/add/", "/remote/"])
def test_pages_need_login_and_privilege(client, url):
    assert client.get(url).status_code == 302
    client.force_login(make_user("nobody", ["view"]))
    assert client.get(url).status_code == 403


@pytest.mark.django_db
def test_add_edit_delete(admin):
    response = admin.post("/aes/add/", {"ae_title": "CT1", "host": "10.0.0.5", "port": "104", "description": "CT",
                                        "may_store": "on", "is_move_destination": "on"})
    assert response.status_code == 302
    ct = RemoteAE.objects.get(ae_title="CT1")
    assert ct.may_store and not ct.may_query and not ct.is_queryable
    assert "CT1" in admin.get("/aes/").content.decode()
    admin.post(f"/aes/{ct.pk}/", {"ae_title": "CT1", "host": "10.0.0.6", "port": "105", "is_queryable": "on"})
    ct.refresh_from_db()
    assert (ct.host, ct.port, ct.is_queryable) == ("10.0.0.6", 105, True)
    assert admin.get(f"/aes/{ct.pk}/delete/").status_code == 200
    assert admin.post(f"/aes/{ct.pk}/delete/").status_code == 302
    assert not RemoteAE.objects.exists()
    assert Entry.objects.filter(action="configuration", target="remote AE CT1", username="admin").count() == 3
    assert admin.get(f"/aes/{ct.pk}/").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("data,field", [
    ({"ae_title": "WAY_TOO_LONG_AE_TITLE", "host": "h", "port": "104"}, "ae_title"),
    ({"ae_title": "A\\B", "host": "h", "port": "104"}, "ae_title"),
    ({"ae_title": "OK", "host": "h", "port": "0"}, "port"),
    ({"ae_title": "OK", "host": "", "port": "104"}, "host"),
])
def test_bad_input_is_a_form_error(admin, data, field):
    response = admin.post("/aes/add/", data)
    assert response.status_code == 200 and field in response.context["form"].errors
    assert not RemoteAE.objects.exists()


def test_echo_button(admin, scp):
    _ae, port = scp
    ours = RemoteAE.objects.create(ae_title="PACSONE", host="127.0.0.1", port=port)
    page = admin.post(f"/aes/{ours.pk}/echo/", follow=True).content.decode()
    assert "answered C-ECHO: success" in page
    dead = RemoteAE.objects.create(ae_title="DEAD", host="127.0.0.1", port=1)
    assert "C-ECHO to DEAD failed" in admin.post(f"/aes/{dead.pk}/echo/", follow=True).content.decode()


@pytest.mark.django_db
def test_sync_settings(admin):
    ae = RemoteAE.objects.create(ae_title="ARCH", host="h", port=104, is_queryable=True)
    response = admin.post(f"/aes/{ae.pk}/sync/", {"enabled": "on", "hour_choices": []})
    assert "hour_choices" in response.context["form"].errors
    response = admin.post(f"/aes/{ae.pk}/sync/", {"enabled": "on", "hour_choices": ["14", "2"], "days": "7"})
    assert response.status_code == 302
    sync = RemoteSync.objects.get(remote=ae)
    assert (sync.hours, sync.days, sync.hour_list()) == ("2,14", 7, [2, 14])
    assert Schedule.objects.filter(name=remotes.SYNC_SCHEDULE_NAME, schedule_type=Schedule.HOURLY).count() == 1
    assert "at 2,14 h, last 7 days" in admin.get("/aes/").content.decode()


# --- Search and retrieve against dcmqrscp --------------------------------------------------------------------


@pytest.fixture
def remote(scp, tmp_path):
    _ae, port = scp
    archive = start_remote_archive(tmp_path / "remote", port)
    archive.add_study(UID1, 2, patient_id="R1", patient_name="DOE^JANE", StudyDate="20240301", Modality="CT")
    archive.add_study(UID2, 1, patient_id="R2", patient_name="DOE^JIM", StudyDate="20240302", Modality="MR")
    yield archive
    archive.stop()


@pytest.mark.peers
def test_search_and_retrieve(client, remote):
    user = make_user("reader", ["query", "move"])
    client.force_login(user)
    page = client.get("/remote/", {"remote": remote.ae.pk, "patient_name": "DOE*"})
    assert page.status_code == 200
    assert [r["StudyInstanceUID"] for r in page.context["results"]] == [UID1, UID2]
    assert "DOE^JANE" in page.content.decode() and "Retrieve selected studies" in page.content.decode()
    # Series keys are asked per study at SERIES level.
    page = client.get("/remote/", {"remote": remote.ae.pk, "modality": "mr"})
    assert [r["StudyInstanceUID"] for r in page.context["results"]] == [UID2]
    assert Entry.objects.filter(action="query", username="reader", ae_title="REMOTE").count() == 2

    response = client.post("/remote/retrieve/", {"remote": remote.ae.pk, "study": [UID1],
                                                 "back": f"remote={remote.ae.pk}&patient_name=DOE*"})
    assert response.status_code == 302 and response.url.startswith("/remote/?")
    job = Job.objects.get(kind="retrieve")
    assert job.state == "done" and job.owner == user and "2 received" in job.message
    assert Instance.objects.filter(series__study__study_instance_uid=UID1).count() == 2
    entry = Entry.objects.get(action="retrieve", study_uid=UID1)
    assert entry.username == "reader" and entry.outcome == "success" and entry.patient_id == "R1"
    assert "Retrieve 1.2.826.0.1.3680043.12.1 from REMOTE" in client.get("/remote/").content.decode()


@pytest.mark.peers
def test_search_problems_are_shown(client, remote):
    client.force_login(make_user("reader", ["query"]))
    page = client.get("/remote/", {"remote": remote.ae.pk, "study_date": "2024-03"})
    assert "study_date" in page.context["form"].errors and page.context["results"] is None
    remote.stop()
    page = client.get("/remote/", {"remote": remote.ae.pk})
    assert "cannot be reached" in page.context["error"]
    assert "Retrieve selected" not in page.content.decode()  # no Move privilege, no results


@pytest.mark.peers
def test_retrieve_needs_move(client, remote):
    client.force_login(make_user("reader", ["query"]))
    assert client.post("/remote/retrieve/", {"remote": remote.ae.pk, "study": [UID1]}).status_code == 403
    assert not Job.objects.exists()


@pytest.mark.peers
def test_a_failed_retrieve_shows_in_its_job(client, remote):
    client.force_login(make_user("reader", ["query", "move"]))
    client.post("/remote/retrieve/", {"remote": remote.ae.pk, "study": ["1.2.3.999"]})
    job = Job.objects.get(kind="retrieve")
    assert job.state in ("done", "failed")
    # dcmqrscp answers a retrieve of nothing with success and no sub-operations.
    assert Entry.objects.filter(action="retrieve", study_uid="1.2.3.999").exists()


# --- Synchronization ------------------------------------------------------------------------------------------


@pytest.mark.peers
def test_sync_pulls_what_we_lack(remote):
    RemoteSync.objects.create(remote=remote.ae, enabled=True, hours="3")
    # Due only at its hours.
    assert "none" in remotes.run_due_syncs(timezone.make_aware(datetime.datetime(2024, 1, 1, 4, 0)))
    assert "REMOTE" in remotes.run_due_syncs(timezone.make_aware(datetime.datetime(2024, 1, 1, 3, 0)))
    job = Job.objects.get(kind="sync")
    assert job.state == "done" and job.total == 2 and "2 pulled (3 instances)" in job.message
    assert set(Study.objects.values_list("study_instance_uid", flat=True)) == {UID1, UID2}
    # A new study appears remotely: the next run pulls only that one.
    remote.add_study(UID3, 1, patient_id="R3", StudyDate=timezone.localdate().strftime("%Y%m%d"))
    assert remotes.studies_we_lack(remote.ae, None) == [UID3]
    remotes.start_sync(remote.ae)
    assert Study.objects.filter(study_instance_uid=UID3).exists()
    assert RemoteSync.objects.get(remote=remote.ae).last_result.startswith("1 study lacking, 1 pulled")
    assert Entry.objects.filter(action="retrieve", target="sync with REMOTE").count() == 2


@pytest.mark.peers
def test_sync_of_the_last_days_only(remote):
    remote.add_study(UID3, 1, patient_id="R3", StudyDate=timezone.localdate().strftime("%Y%m%d"))
    assert remotes.studies_we_lack(remote.ae, 30) == [UID3]
    assert remotes.studies_we_lack(remote.ae, None) == [UID1, UID2, UID3]
