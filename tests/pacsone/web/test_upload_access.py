"""Uploading a file with a guessed Patient ID does not reveal that patient: a user without View
cannot add files to a patient or a study already in the archive that they may not see (the
file would join it, and its name, birth date and sex would show through their own upload)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import Entry
from pacsone.models import Study
from routing.models import Job
from tests.helpers import make_file
from tests.people import make_study, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def uploader(client):
    user = make_user("eve", ["upload"], first_name="Eve", last_name="Guess")
    client.force_login(user)
    return user


def upload(client, tmp_path, **attributes):
    path = make_file(tmp_path, "guess.dcm", ReferringPhysicianName="GUESS^EVE", **attributes)
    response = client.post("/upload/", {"files": [SimpleUploadedFile("guess.dcm", path.read_bytes())]})
    assert response.status_code == 202
    return Job.objects.get(pk=response.json()["job"])


def test_an_upload_naming_a_hidden_patient_is_refused_and_reveals_nothing(client, tmp_path, uploader):
    secret = make_study("1.2.826.7.1", "MRN777", patient_name="SECRET^SALLY")
    job = upload(client, tmp_path, patient_id="MRN777", patient_name="X^Y", study_uid="1.2.826.7.2")
    assert "1 rejected" in job.message and "refused" in job.message
    assert not Study.objects.filter(study_instance_uid="1.2.826.7.2").exists()
    listing = client.get("/api/patients/").content.decode() + client.get("/api/studies/").content.decode()
    assert "SECRET" not in listing and "MRN777" not in listing
    entry = Entry.objects.get(action="upload", outcome="denied")
    assert entry.username == "eve" and entry.patient_id == "MRN777"
    assert secret.patient.studies.count() == 1


def test_an_upload_into_a_hidden_study_is_refused(client, tmp_path, uploader):
    make_study("1.2.826.7.1", "MRN777", patient_name="SECRET^SALLY")
    job = upload(client, tmp_path, patient_id="NEW1", study_uid="1.2.826.7.1")
    assert "refused" in job.message
    assert Study.objects.get(study_instance_uid="1.2.826.7.1").patient.patient_id == "MRN777"


def test_a_new_patient_uploads_and_shows_to_its_uploader(client, tmp_path, uploader):
    job = upload(client, tmp_path, patient_id="NEW1", patient_name="NEW^PAT", study_uid="1.2.826.7.3")
    assert "1 stored" in job.message
    assert [p["patient_id"] for p in client.get("/api/patients/").json()["results"]] == ["NEW1"]


def test_a_user_with_view_adds_to_any_patient(client, tmp_path):
    client.force_login(make_user("viewer", ["upload", "view"]))
    make_study("1.2.826.7.1", "MRN777", patient_name="SECRET^SALLY")
    job = upload(client, tmp_path, patient_id="MRN777", study_uid="1.2.826.7.4")
    assert "1 stored" in job.message


def test_the_images_of_one_new_upload_join_each_other(client, tmp_path, uploader):
    files = [make_file(tmp_path, f"{n}.dcm", patient_id="NEW2", study_uid=uid, ReferringPhysicianName="OTHER^DOC")
             for n, uid in enumerate(["1.2.826.7.5", "1.2.826.7.5", "1.2.826.7.6"])]
    response = client.post("/upload/", {"files": [SimpleUploadedFile(p.name, p.read_bytes()) for p in files]})
    job = Job.objects.get(pk=response.json()["job"])
    assert job.message.startswith("3 files: 3 stored"), job.message
    assert Study.objects.filter(patient__patient_id="NEW2").count() == 2
