"""Jobs never show patient data to someone who may not see it: titles name no patient, the
message shows to the owner and to those who may see the job's studies, and the result (an
export ZIP) downloads only for its owner."""

import pytest

from audit.models import Entry
from pacsone.models import RemoteAE
from routing.models import Job
from tests.helpers import free_port
from tests.people import make_world_with_files

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(tmp_path):
    return make_world_with_files(tmp_path)


def export_as_root(client, world, name="other"):
    client.force_login(world.users["root"])
    response = client.post("/export/", {"study": world.studies[name].study_instance_uid})
    assert response.status_code == 302
    return Job.objects.get(kind=Job.Kind.EXPORT)


def test_an_export_title_names_no_patient_and_its_result_is_the_owners(client, world):
    job = export_as_root(client, world)
    patient = world.studies["other"].patient
    assert job.state == Job.State.DONE and job.title == "Export of 1 study to DICOM media (ZIP)"
    assert client.get(f"/jobs/{job.pk}/result").status_code == 200

    client.force_login(world.users["sysadmin"])  # lists every job, but has no View
    for url in ("/jobs/", f"/jobs/{job.pk}/", f"/jobs/{job.pk}/status.json", "/api/jobs/", f"/api/jobs/{job.pk}/"):
        response = client.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        assert patient.patient_name not in body and patient.patient_id not in body, url
        assert ".zip" not in body, url  # the message (it names the file) is hidden
    assert client.get(f"/jobs/{job.pk}/status.json").json()["has_result"] is False
    before = Entry.objects.filter(outcome="denied").count()
    assert client.get(f"/jobs/{job.pk}/result").status_code == 404
    assert Entry.objects.filter(outcome="denied").count() == before + 1


def test_a_system_administrator_sees_the_message_of_a_job_on_studies_she_may_see(client, world):
    job = export_as_root(client, world, "public")
    client.force_login(world.users["sysadmin"])
    status = client.get(f"/jobs/{job.pk}/status.json").json()
    assert "written to" in status["message"] and status["has_result"] is False


def test_forward_and_edit_titles_name_no_patient(client, world):
    remote = RemoteAE.objects.create(ae_title="NOWHERE", host="127.0.0.1", port=free_port())
    client.force_login(world.users["root"])
    study = world.studies["own"]
    client.post(f"/studies/{study.study_instance_uid}/forward", {"ae": remote.pk})
    client.post(f"/actions/study/{study.study_instance_uid}/edit/", {
        "patient_name": "OWN^PAT", "birth_date": "1970-01-01", "sex": "M", "study_description": "KNEE",
        "accession_number": "ACC1", "referring_physician_name": "SMITH^JANE", "study_date": "2024-01-05",
        "confirmed": "yes"})
    titles = dict(Job.objects.values_list("kind", "title"))
    assert titles["forward"] == "Forward of a study to NOWHERE"
    assert titles["edit"].startswith("Edit of ") and "OWN" not in titles["edit"]
    assert all(list(job.studies.all()) == [study] for job in Job.objects.all())


def test_jobs_name_the_patient_and_study_to_those_who_may_see_them(client, world):
    job = export_as_root(client, world, "other")
    study = world.studies["other"]
    for url in ("/jobs/", f"/jobs/{job.pk}/"):
        body = client.get(url).content.decode()
        # The title names no patient, the line under it does, as people write names.
        assert "OTHER, Pat" in body and 'title="OTHER^PAT"' in body, url
        assert f">{study.study_instance_uid}" not in body, url  # no bare UID shown
    client.force_login(world.users["sysadmin"])  # may not see the study: no name, no description
    assert "OTHER" not in client.get("/jobs/").content.decode()
